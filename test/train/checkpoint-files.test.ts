import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import {
  checkpointDir,
  parseTrainerState,
  readTrainerState,
  recoverAtomicDir,
  TRAINER_STATE_FILE,
  trainerStateToJson,
  writeAtomicDir,
  writeFileAtomic,
  writeTrainerState,
  type AtomicWriteStage,
  type TrainerState,
} from '../../lib/train/checkpoint-files.js';
import { Rng } from '../../lib/train/rng.js';
import { withField } from '../fixtures/train-config.js';

let tmp: string;

beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'koner-train-test-'));
});

afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

async function writeCheckpoint(dir: string, version: string): Promise<void> {
  await mkdir(path.join(dir, 'sub'));
  await writeFile(path.join(dir, 'model.safetensors'), `weights ${version}`);
  await writeFile(path.join(dir, 'sub', 'optimizer.bin'), `optimizer ${version}`);
}

async function contents(dir: string): Promise<string | null> {
  if (!existsSync(dir)) return null;
  const a = await readFile(path.join(dir, 'model.safetensors'), 'utf8');
  const b = await readFile(path.join(dir, 'sub', 'optimizer.bin'), 'utf8');
  expect(a.split(' ')[1]).toBe(b.split(' ')[1]);
  return a.split(' ')[1];
}

class Crash extends Error {}

function sampleState(): TrainerState {
  return {
    step: 120,
    epoch: 1,
    cursor: { epoch: 1, batchIndex: 7 },
    rng: { trainer: Rng.fromSeed(100).state(), native: 'AAEC' },
    earlyStop: { best: 0.81, bestStep: 100, badEvaluations: 1 },
    schedule: { step: 120 },
    best: { metric: 'entityF1', value: 0.81, step: 100 },
    dataFingerprint: 'abc123',
    elapsedSeconds: 42.5,
  };
}

describe('checkpoint files', () => {
  it('writes, replaces and leaves no leftovers', async () => {
    const parent = path.join(tmp, 'ckpt-basic');
    const target = checkpointDir(parent, 'last');
    expect(target).toBe(path.join(parent, 'last'));
    await writeAtomicDir(target, (d) => writeCheckpoint(d, 'v1'));
    expect(await contents(target)).toBe('v1');
    await writeAtomicDir(target, (d) => writeCheckpoint(d, 'v2'));
    expect(await contents(target)).toBe('v2');
    expect(await readdir(parent)).toEqual(['last']);
    // A failing fill leaves the old checkpoint and no temporary directory.
    await expect(
      writeAtomicDir(target, async (d) => {
        await writeFile(path.join(d, 'model.safetensors'), 'half');
        throw new Error('disk full');
      }),
    ).rejects.toThrow('disk full');
    expect(await contents(target)).toBe('v2');
    expect(await readdir(parent)).toEqual(['last']);
  });

  const stages: AtomicWriteStage[] = ['filled', 'synced', 'moved-old', 'moved-new', 'done'];
  it.each(stages)('recovers from a crash after stage "%s"', async (stage) => {
    for (const hadOld of [true, false]) {
      if (!hadOld && stage === 'moved-old') continue; // never reached without an old checkpoint
      const parent = path.join(tmp, `ckpt-crash-${stage}-${hadOld}`);
      const target = path.join(parent, 'best');
      if (hadOld) await writeAtomicDir(target, (d) => writeCheckpoint(d, 'old'));
      await expect(
        writeAtomicDir(target, (d) => writeCheckpoint(d, 'new'), {
          afterStage: (s) => {
            if (s === stage) throw new Crash(s);
          },
        }),
      ).rejects.toBeInstanceOf(Crash);
      const report = await recoverAtomicDir(target);
      const committed = stage === 'moved-new' || stage === 'done';
      expect(await contents(target)).toBe(committed ? 'new' : hadOld ? 'old' : null);
      expect(report.rolledBack).toBe(stage === 'moved-old');
      expect(await readdir(parent)).toEqual(committed || hadOld ? ['best'] : []);
      // Recovery is idempotent, and the next write works.
      expect(await recoverAtomicDir(target)).toEqual({ rolledBack: false, removed: [] });
      await writeAtomicDir(target, (d) => writeCheckpoint(d, 'next'));
      expect(await contents(target)).toBe('next');
    }
  });

  it('removes a half-written temporary directory left by a crash during the fill', async () => {
    const parent = path.join(tmp, 'ckpt-partial');
    const target = path.join(parent, 'last');
    await writeAtomicDir(target, (d) => writeCheckpoint(d, 'good'));
    const stray = `${target}.tmp-99999-0`;
    await mkdir(stray);
    await writeFile(path.join(stray, 'model.safetensors'), 'trunc');
    const report = await recoverAtomicDir(target);
    expect(report.removed).toEqual([stray]);
    expect(await contents(target)).toBe('good');
    expect(await readdir(parent)).toEqual(['last']);
  });

  it('writes single files atomically', async () => {
    const file = path.join(tmp, 'atomic', 'a.json');
    await writeFileAtomic(file, '{"a":1}');
    await writeFileAtomic(file, new TextEncoder().encode('{"a":2}'));
    expect(await readFile(file, 'utf8')).toBe('{"a":2}');
    expect(await readdir(path.dirname(file))).toEqual(['a.json']);
  });

  it('round-trips the trainer state', async () => {
    const dir = path.join(tmp, 'state');
    const state = sampleState();
    await writeTrainerState(dir, state);
    expect(await readTrainerState(dir)).toEqual(state);
    const noNative = {
      ...sampleState(),
      rng: { trainer: sampleState().rng.trainer },
      earlyStop: null,
    };
    expect(parseTrainerState(JSON.parse(trainerStateToJson(noNative)))).toEqual(noNative);
    await expect(readTrainerState(path.join(tmp, 'nowhere'))).rejects.toThrow(
      /trainer-state\.json: cannot read the trainer state \(ENOENT\)/,
    );
  });

  it('rejects an invalid trainer state, naming the field', async () => {
    const good = JSON.parse(trainerStateToJson(sampleState()));
    const cases: [string, unknown, RegExp][] = [
      ['step', -1, /field "step" must be an integer ≥ 0/],
      ['cursor.batchIndex', 1.5, /cursor\.batchIndex must be an integer/],
      ['epoch', 0, /field "epoch" \(0\) must equal cursor\.epoch \(1\)/],
      ['rng.trainer', [0, 0, 0, 0], /rng\.trainer must not be all zero/],
      ['rng.native', 5, /field "rng\.native"/],
      ['earlyStop.badEvaluations', -2, /earlyStop\.badEvaluations/],
      ['schedule', { step: 'x' }, /field "schedule\.step"/],
      ['best.value', 'high', /field "best\.value"/],
      ['best.step', 500, /field "best\.step" \(500\) must not be after step/],
      ['dataFingerprint', '', /field "dataFingerprint"/],
      ['elapsedSeconds', -1, /field "elapsedSeconds"/],
      ['version', 2, /field "version" must be 1/],
      ['format', 'other', /field "format"/],
      ['extra', true, /field "extra" is not a known field/],
    ];
    for (const [field, value, message] of cases) {
      const s = withField(field, value, structuredClone(good));
      expect(() => parseTrainerState(s, 'x/trainer-state.json')).toThrow(message);
      expect(() => parseTrainerState(s, 'x/trainer-state.json')).toThrow(
        /^x\/trainer-state\.json: /,
      );
    }
    const dir = path.join(tmp, 'state-bad');
    await mkdir(dir, { recursive: true });
    await writeFile(path.join(dir, TRAINER_STATE_FILE), '{"step": 1');
    await expect(readTrainerState(dir)).rejects.toThrow(/not valid JSON/);
    await expect(writeTrainerState(dir, { ...sampleState(), step: -5 })).rejects.toThrow(
      /field "step"/,
    );
  });
});
