#!/usr/bin/env node
/** The `koner` command. */
import { runtimeInfo } from '../runtime.js';
import { importCommand } from './import.js';

const usage = `usage: koner <command>

commands:
  demo     print the LibTorch runtime facts (device, threads)
  import   a checkpoint (safetensors or torch.save) to a model directory
  help     this text`;

function demo(): void {
  const info = runtimeInfo();
  console.log(`koner on LibTorch ${info.torchVersion}`);
  console.log(
    `  CUDA available: ${info.cudaAvailable ? 'yes' : 'no'}` +
      ` (addon built with CUDA kernels: ${info.compiledWithCuda ? 'yes' : 'no'})`,
  );
  console.log(`  CUDA devices:   ${info.cudaDeviceCount}`);
  console.log(`  CPU threads:    ${info.threads}`);
}

function main(argv: string[]): number {
  const [command] = argv;
  switch (command) {
    case 'demo':
      demo();
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
