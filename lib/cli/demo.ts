/**
 * `koner demo` (the README's `npm start`): the runtime facts, then the bundled model tagging a few
 * Korean sentences, each shown in the corpus' `<text:TAG>` markup and as JSON entities.
 */
import { renderMarkup } from '../labels/markup.js';
import { defaultModelDir } from '../model/default-model.js';
import { NerModel } from '../model/ner-model.js';
import { runtimeInfo } from '../runtime.js';
import { noPositionals, type CliCommand } from './args.js';

const SENTENCES = [
  '이순신 장군은 1545년 4월 28일 한성에서 태어났다.',
  '한국해양대학교는 부산 영도구에 있으며 1945년에 개교했다.',
  '삼성전자는 지난 분기에 영업이익 10조 원을 기록했다고 31일 밝혔다.',
  '손흥민은 토트넘에서 8시즌 동안 173골을 넣었다.',
];

/** Prints the demo to `out`; resolves with the exit code. */
export async function demo(out: NodeJS.WritableStream = process.stdout): Promise<number> {
  const info = runtimeInfo();
  const print = (line = '') => out.write(`${line}\n`);
  print(`koner on LibTorch ${info.torchVersion}`);
  print(
    `  CUDA available: ${info.cudaAvailable ? 'yes' : 'no'}` +
      ` (addon built with CUDA kernels: ${info.compiledWithCuda ? 'yes' : 'no'})`,
  );
  print(`  CUDA devices:   ${info.cudaDeviceCount}`);
  print(`  CPU threads:    ${info.threads}`);
  print();
  const started = performance.now();
  const model = await NerModel.loadDefault();
  const ms = Math.round(performance.now() - started);
  print(`model: ${defaultModelDir()} (${model.placement.dtype}, loaded in ${ms} ms)`);
  const results = await model.predict(SENTENCES);
  SENTENCES.forEach((text, i) => {
    const entities = results[i];
    print();
    print(renderMarkup({ text, entities: entities.map((e) => ({ ...e, label: e.entity })) }));
    for (const e of entities) {
      print(`  ${JSON.stringify({ ...e, score: Number(e.score.toFixed(4)) })}`);
    }
  });
  await model.dispose();
  return 0;
}

export const demoCommand: CliCommand = {
  name: 'demo',
  summary: 'runtime facts, then the bundled model tagging a few sentences',
  usage:
    'usage: koner demo\n\nPrints the runtime facts, then the bundled model tagging a few Korean sentences.',
  run: (argv) => {
    noPositionals(argv);
    return demo();
  },
};
