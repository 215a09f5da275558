#!/usr/bin/env node
/** The `koner` command: a table of subcommands, each run the same way (lib/cli/args.ts). */
import { runCommand, type CliCommand } from './args.js';
import { demoCommand } from './demo.js';
import { evalCommand } from './eval.js';
import { explainCommand } from './explain.js';
import { importCommand } from './import.js';
import { pretrainCommand } from './pretrain.js';
import { serveCommand } from './serve.js';
import { tagCommand } from './tag.js';
import { trainCommand } from './train.js';

const COMMANDS: readonly CliCommand[] = [
  demoCommand,
  importCommand,
  pretrainCommand,
  trainCommand,
  tagCommand,
  evalCommand,
  serveCommand,
  explainCommand,
];

const usage = `usage: koner <command>

commands:
${COMMANDS.map((c) => `  ${c.name.padEnd(9)}${c.summary}`).join('\n')}
  help     this text`;

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === 'help' || name === '--help' || name === '-h') {
    console.log(usage);
    return 0;
  }
  const command = COMMANDS.find((c) => c.name === name);
  if (!command) {
    console.error(`koner: unknown command '${name}'\n\n${usage}`);
    return 2;
  }
  return runCommand(command, rest);
}

void main(process.argv.slice(2)).then((code) => (process.exitCode = code));
