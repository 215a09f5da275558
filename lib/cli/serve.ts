/** `koner serve --model DIR`: the HTTP API and demo page, until SIGINT or SIGTERM. */
import { parseArgs } from 'node:util';

import { createServer } from '../serve/server.js';
import { noPositionals, optionalIntegerFlag, type CliCommand } from './args.js';
import { loadModel, MODEL_OPTIONS, MODEL_USAGE, modelFlags } from './model-flags.js';

export const serveUsage = `usage: koner serve [--model <dir>] [options]

Serves the model over HTTP until SIGINT or SIGTERM (requests in progress are answered first):
  POST /v1/ner   {"text": "…"} → {"entities": […]}; {"texts": ["…", …]} → {"results": [{"entities": […]}, …]}
                 optional: "nBest" (1-10), "constrained" (default true), "withProbabilities"
  POST /v1/explain {"text": "…"} → tokens, their likeliest tags and attention maps (koner explain's
                 view); optional: "layers", "heads", "topTags", "constrained"
  GET  /healthz  model, labels, device, batching counters
  GET  /         a page to try the model in a browser

options:
  --port <n>            TCP port (default 8080; 0 picks a free one)
  --host <addr>         address to listen on (default 127.0.0.1; 0.0.0.0 for every interface)
  --batch-size <n>      most texts in one model call (default 32)
  --max-wait-ms <n>     how long a text waits for others to share its model call (default 5)
${MODEL_USAGE}`;

/** Resolves with the exit code once the server has stopped. */
export const serveCommand: CliCommand = {
  name: 'serve',
  summary: 'HTTP API (POST /v1/ner) and a demo page',
  usage: serveUsage,
  run: serve,
};

async function serve(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      port: { type: 'string' },
      host: { type: 'string' },
      'batch-size': { type: 'string' },
      'max-wait-ms': { type: 'string' },
      ...MODEL_OPTIONS,
    },
  });
  noPositionals(positionals);
  const flags = modelFlags(values);
  const port = optionalIntegerFlag(values.port, '--port', 8080, 0, 65535);
  const maxBatch = optionalIntegerFlag(values['batch-size'], '--batch-size', 32, 1);
  const maxWaitMs = optionalIntegerFlag(values['max-wait-ms'], '--max-wait-ms', 5, 0, 10_000);

  const model = await loadModel(flags);
  const server = createServer(model, {
    maxBatch,
    maxWaitMs,
    onError: (error) => console.error(`koner serve: ${(error as Error).stack ?? String(error)}`),
  });
  const url = await server.listen({ port, host: values.host ?? '127.0.0.1' });
  const { device } = model.placement;
  console.log(`koner serve: ${flags.dir} on ${device}, listening on ${url}`);

  await new Promise<void>((resolve) => {
    let stopping = false;
    const stop = (signal: NodeJS.Signals): void => {
      // A second signal means "now": the close below may be waiting on a slow client.
      if (stopping) process.exit(signal === 'SIGINT' ? 130 : 143);
      stopping = true;
      console.log(`koner serve: ${signal}, finishing the requests in progress`);
      server.close().then(resolve, (error: unknown) => {
        console.error(`koner serve: ${(error as Error).message}`);
        resolve();
      });
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
  await model.dispose();
  console.log('koner serve: stopped');
  return 0;
}
