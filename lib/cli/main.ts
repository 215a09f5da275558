#!/usr/bin/env node
/** The `koner` command. */
import { demoCommand } from './demo.js';
import { evalCommand } from './eval.js';
import { explainCommand } from './explain.js';
import { importCommand } from './import.js';
import { pretrainCommand } from './pretrain.js';
import { trainCommand } from './train.js';
import { serveCommand } from './serve.js';
import { tagCommand } from './tag.js';

const usage = `usage: koner <command>

commands:
  demo     runtime facts, then the bundled model tagging a few sentences
  import   a checkpoint (safetensors or torch.save) to a model directory
  pretrain an encoder on raw text, masked-LM (koner pretrain --help)
  train    a model as a train.json says (koner train --help)
  tag      find entities in sentences: interactive, or lines / JSONL in, JSONL out
  eval     score a model on a KMOU directory or CoNLL files; confusion matrix as SVG
  serve    HTTP API (POST /v1/ner) and a demo page
  explain  an HTML file showing a sentence's tag probabilities and attention
  help     this text`;

function main(argv: string[]): number {
  const [command] = argv;
  switch (command) {
    case 'demo':
      demoCommand().then(
        (code) => (process.exitCode = code),
        (error: unknown) => {
          console.error(`koner demo: ${(error as Error).message}`);
          process.exitCode = 1;
        },
      );
      return 0;
    case 'import':
      // Asynchronous: the exit code is set when the import settles.
      importCommand(argv.slice(1)).then(
        (code) => (process.exitCode = code),
        (error: unknown) => {
          console.error(`koner: ${(error as Error).message}`);
          process.exitCode = 1;
        },
      );
      return 0;
    case 'tag':
      void tagCommand(argv.slice(1)).then((code) => (process.exitCode = code));
      return 0;
    case 'eval':
      void evalCommand(argv.slice(1)).then((code) => (process.exitCode = code));
      return 0;
    case 'serve':
      void serveCommand(argv.slice(1)).then((code) => (process.exitCode = code));
      return 0;
    case 'pretrain':
      pretrainCommand(argv.slice(1)).then(
        (code) => (process.exitCode = code),
        (error: unknown) => {
          console.error(`koner pretrain: ${(error as Error).message}`);
          process.exitCode = 1;
        },
      );
      return 0;
    case 'explain':
      void explainCommand(argv.slice(1)).then((code) => (process.exitCode = code));
      return 0;
    case 'train':
      // Asynchronous, as import: the exit code is set when training settles.
      trainCommand(argv.slice(1)).then(
        (code) => (process.exitCode = code),
        (error: unknown) => {
          console.error(`koner train: ${(error as Error).message}`);
          process.exitCode = 1;
        },
      );
      return 0;
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      console.log(usage);
      return 0;
    default:
      console.error(`koner: unknown command '${command}'\n\n${usage}`);
      return 2;
  }
}

try {
  process.exitCode = main(process.argv.slice(2));
} catch (error) {
  console.error(`koner: ${(error as Error).message}`);
  process.exitCode = 1;
}
