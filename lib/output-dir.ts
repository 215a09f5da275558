/**
 * Creating output directories. Node's own `mkdir(dir, { recursive: true })` spins for ever at
 * 100% CPU on a path such as `/proc/1/x`, where mkdir answers ENOENT under a parent that exists;
 * this walks the path itself, so every failure is an Error naming the directory.
 */
import { mkdir, stat } from 'node:fs/promises';
import path from 'node:path';

function codeOf(error: unknown): string {
  return (error as NodeJS.ErrnoException).code ?? String(error);
}

/** What is at `p`: a directory, something else, or nothing. */
async function kindOf(p: string, target: string): Promise<'dir' | 'other' | 'missing'> {
  try {
    return (await stat(p)).isDirectory() ? 'dir' : 'other';
  } catch (error) {
    // ENOTDIR: a file stands higher up the path; the walk up finds and names it.
    if (codeOf(error) === 'ENOENT' || codeOf(error) === 'ENOTDIR') return 'missing';
    throw new Error(`cannot create ${target}: ${p} (${codeOf(error)})`);
  }
}

/**
 * Creates `dir` and its missing parents (as `mkdir -p`).
 *
 * @throws Error naming the directory: a part of the path is a file, or the system refuses
 */
export async function makeDirectory(dir: string): Promise<void> {
  const target = path.resolve(dir);
  const missing: string[] = [];
  for (let p = target; ; p = path.dirname(p)) {
    const kind = await kindOf(p, target);
    if (kind === 'dir') break;
    if (kind === 'other') throw new Error(`cannot create ${target}: ${p} is not a directory`);
    missing.push(p);
  }
  for (const d of missing.reverse()) {
    try {
      await mkdir(d);
    } catch (error) {
      // Made meanwhile by someone else (another rank, say): as good as made here.
      if (codeOf(error) === 'EEXIST' && (await kindOf(d, target)) === 'dir') continue;
      throw new Error(`cannot create ${d} (${codeOf(error)})`);
    }
  }
}
