/**
 * A long-lived Python benchmark process (scripts/bench/python/*.py, request loop in serve.py):
 * one JSON request per line on its stdin, one JSON reply per line on its stdout. Keeping it alive
 * lets a benchmark interleave koner's and Python's timed rounds in one run.
 */
import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { createInterface } from 'node:readline';

import { packageRoot } from '../lib/native.js';

/** scripts/bench/python/<name>. */
export function pythonScript(name: string): string {
  return path.join(packageRoot, 'scripts', 'bench', 'python', name);
}

/**
 * The interpreter: `$KONER_BENCH_PYTHON`, else Debian's `/usr/bin/python3` (python3-torch, the
 * LibTorch koner links on these machines) on the CPU, else the first `python3` on the PATH (on a
 * CUDA machine, the PyTorch install koner was built against).
 */
export function defaultPython(device = 'cpu'): string {
  if (process.env.KONER_BENCH_PYTHON) return process.env.KONER_BENCH_PYTHON;
  return device === 'cpu' && existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';
}

/**
 * Starts one of the Python twins that load a koner model directory (encoder.py, inference.py,
 * train.py): they all take the model, the thread count and the device the same way.
 */
export function startModelServer(
  options: { python: string; threads: number; device: string },
  script: string,
  modelDir: string,
): Promise<PythonServer> {
  return PythonServer.start(options.python, pythonScript(script), [
    '--model',
    modelDir,
    '--threads',
    String(options.threads),
    '--device',
    options.device,
  ]);
}

type Reply = Record<string, unknown>;

export class PythonServer {
  readonly info: Reply;
  readonly #child: ChildProcessWithoutNullStreams;
  readonly #pending: { resolve: (r: Reply) => void; reject: (e: Error) => void }[] = [];
  #stderr = '';
  #exited: Error | null = null;
  readonly #label: string;

  private constructor(child: ChildProcessWithoutNullStreams, label: string, info: Reply) {
    this.#child = child;
    this.#label = label;
    this.info = info;
  }

  /** Starts `python script ...args` and waits for its ready line. */
  static start(python: string, script: string, args: string[]): Promise<PythonServer> {
    const label = `${python} ${path.relative(packageRoot, script)}`;
    const child = spawn(python, ['-u', script, ...args], {
      stdio: ['pipe', 'pipe', 'pipe'],
      env: { ...process.env, PYTHONDONTWRITEBYTECODE: '1' },
    });
    return new Promise((resolve, reject) => {
      let server: PythonServer | null = null;
      let stderr = '';
      child.stderr.setEncoding('utf8');
      child.stderr.on('data', (chunk: string) => {
        stderr = (stderr + chunk).slice(-8000);
        if (server) server.#stderr = stderr;
      });
      const lines = createInterface({ input: child.stdout });
      lines.on('line', (line) => {
        let message: Reply;
        try {
          message = JSON.parse(line) as Reply;
        } catch {
          stderr += `\n(unparsed stdout) ${line}`;
          return;
        }
        if (!server) {
          server = new PythonServer(child, label, message);
          server.#stderr = stderr;
          resolve(server);
          return;
        }
        const waiter = server.#pending.shift();
        if (!waiter) return;
        if (message.ok === false) {
          waiter.reject(new Error(`${label}: ${String(message.error)}`));
        } else waiter.resolve(message);
      });
      child.on('error', (error) => {
        const e = new Error(`${label}: could not start: ${error.message}`);
        if (!server) reject(e);
        else server.#fail(e);
      });
      child.on('exit', (code, signal) => {
        const tail = server ? server.#stderr : stderr;
        const e = new Error(`${label} exited (${signal ?? `status ${code}`}):\n${tail.trim()}`);
        if (!server) reject(e);
        else server.#fail(e);
      });
    });
  }

  #fail(error: Error): void {
    this.#exited = error;
    for (const waiter of this.#pending.splice(0)) waiter.reject(error);
  }

  /** Sends `{ op, ...args }` and resolves with the reply (rejects with Python's traceback). */
  request<T = Reply>(op: string, args: Record<string, unknown> = {}): Promise<T> {
    if (this.#exited) return Promise.reject(this.#exited);
    return new Promise<T>((resolve, reject) => {
      this.#pending.push({ resolve: resolve as (r: Reply) => void, reject });
      this.#child.stdin.write(JSON.stringify({ op, ...args }) + '\n');
    });
  }

  /** Asks the script to exit and waits for it. */
  async close(): Promise<void> {
    if (this.#exited) return;
    const exited = new Promise<void>((resolve) => this.#child.once('exit', () => resolve()));
    await this.request('exit').catch(() => undefined);
    this.#child.stdin.end();
    await exited;
  }

  /** The last lines Python wrote to stderr (warnings, progress). */
  get stderr(): string {
    return this.#stderr;
  }

  get label(): string {
    return this.#label;
  }
}
