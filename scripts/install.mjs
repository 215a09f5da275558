// npm's `install` step (package.json "install"): makes sure a native addon loads, building one
// from source when the prebuilt binary does not (lib/install/index.ts, shipped as dist/install/).
// In a source checkout `npm ci` runs this before anything is compiled: there `npm run setup`
// builds the addon instead.
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
if (existsSync(path.join(root, 'lib', 'index.ts'))) {
  console.error('koner: source checkout: `npm run setup` builds the native addon');
} else {
  const { install } = await import('../dist/install/index.js');
  process.exitCode = install({ root });
}
