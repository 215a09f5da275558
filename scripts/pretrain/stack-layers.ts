/**
 * Writes a deeper copy of a pretrained encoder for continued pretraining (lib/pretrain/stack.ts):
 * each layer repeated so that the result has <layers> layers.
 *
 *   npx tsx scripts/pretrain/stack-layers.ts <pretrained-dir> <out-dir> <layers>
 */
import { stackEncoderLayers } from '../../lib/pretrain/stack.js';

const [from, to, layers] = process.argv.slice(2);
if (!from || !to || !layers) {
  console.error(
    'usage: npx tsx scripts/pretrain/stack-layers.ts <pretrained-dir> <out-dir> <layers>',
  );
  process.exit(2);
}
try {
  const result = await stackEncoderLayers(from, to, Number(layers));
  console.log(`${to}: ${result.from} → ${result.to} layers, ${result.tensors} tensors as float32`);
} catch (error) {
  console.error(`stack-layers: ${(error as Error).message}`);
  process.exit(2);
}
