/**
 * The whole path of a user's `npm install koner`: the prebuilt binary, the packed tarball, an
 * install into a fresh app (its own npm cache, no ../shared, no KONER_* variables) that
 * type-checks a TypeScript file against the shipped .d.ts and tags Korean text, `npx koner tag`,
 * and once the build from source with the prebuilt binary removed. README's "Install" section
 * shows these steps.
 */
import { execFileSync, spawnSync, type SpawnSyncOptions } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

import { packageRoot } from '../lib/native.js';

const tmp = mkdtempSync(path.join(os.tmpdir(), 'koner-package-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const app = path.join(tmp, 'app');
const platform = `${process.platform}-${process.arch}`;

/** What ships: package.json "files" plus what npm always adds. */
const SHIPPED = [
  /^dist\/.+\.(js|d\.ts)$/,
  /^binding\/.+\.(cc|cu|h)$/,
  /^CMakeLists\.txt$/,
  /^models\/kmou-small\/(config\.json|eval\.json|tokenizer\.model|vocab\.json|README\.md|member-[0-3]\/(config\.json|model\.safetensors))$/,
  new RegExp(`^prebuilds/${platform}/koner\\.glibc\\.node$`),
  /^third_party\/.+$/,
  /^scripts\/install\.mjs$/,
  /^schemas\/(train|pretrain)\.schema\.json$/,
  /^(README\.md|LICENSE|package\.json)$/,
];

/** A user's environment: no KONER_* or Torch_DIR, no npm settings of this repository's run. */
function userEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (/^(KONER_|npm_|Torch_DIR$|NODE_OPTIONS$|INIT_CWD$|VITEST)/i.test(key)) continue;
    env[key] = value;
  }
  return {
    ...env,
    npm_config_cache: path.join(tmp, 'npm-cache'),
    npm_config_update_notifier: 'false',
    npm_config_fund: 'false',
    npm_config_audit: 'false',
    ...extra,
  };
}

/** Runs a command in the app; returns its combined output, failing with it on a non-zero exit. */
function inApp(command: string, args: string[], options: SpawnSyncOptions = {}): string {
  const result = spawnSync(command, args, {
    cwd: app,
    env: userEnv(),
    encoding: 'utf8',
    maxBuffer: 64 * 1024 * 1024,
    ...options,
  });
  const output = `${String(result.stdout)}${String(result.stderr)}`;
  if (result.status !== 0) {
    throw new Error(`${command} ${args.join(' ')} exited ${result.status}:\n${output}`);
  }
  return output;
}

// The demo's sentence (koner demo), as the bundled model tags it (koner demo prints the same).
const SENTENCE = '한국해양대학교는 부산 영도구에 있으며 1945년에 개교했다.';
const EXPECTED = ['한국해양대학교:ORG:0', '부산:LOC:9', '영도구:LOC:12', '1945년:DAT:21'];

const TS_APP = `import { NerModel, type NerEntity } from 'koner';

const model = await NerModel.loadDefault();
const entities: NerEntity[] = await model.predict('${SENTENCE}');
console.log(JSON.stringify({ dir: model.dir, entities }));
model.dispose();

export function typeErrors(m: NerModel): void {
  // @ts-expect-error predict takes text: proof that the shipped .d.ts is what tsc checks
  void m.predict(42);
}
`;

const TSCONFIG = {
  compilerOptions: {
    target: 'ES2022',
    module: 'NodeNext',
    moduleResolution: 'NodeNext',
    strict: true,
    skipLibCheck: false,
    types: ['node'],
    outDir: 'out',
  },
  include: ['tag.ts'],
};

interface Tagged {
  dir: string;
  entities: { entity: string; text: string; start: number; end: number; score: number }[];
}

/** Compiles and runs the app's TypeScript file; returns what it printed. */
function runTsApp(): Tagged {
  inApp(path.join(app, 'node_modules', '.bin', 'tsc'), ['-p', '.']);
  return JSON.parse(inApp(process.execPath, ['out/tag.js']).trim()) as Tagged;
}

function expectTagged(entities: Tagged['entities']): void {
  expect(entities.map((e) => `${e.text}:${e.entity}:${e.start}`)).toEqual(EXPECTED);
  for (const e of entities) expect(SENTENCE.slice(e.start, e.end)).toBe(e.text);
}

function expectTaggedByApp(result: Tagged): void {
  expect(result.dir).toBe(path.join(app, 'node_modules', 'koner', 'models', 'kmou-small'));
  expectTagged(result.entities);
}

describe('npm install koner in a fresh app', () => {
  let tarball = '';

  it('npm run prebuild writes the one prebuilt binary', () => {
    execFileSync('npm', ['run', '--silent', 'prebuild'], { cwd: packageRoot, stdio: 'pipe' });
    const prebuilds = path.join(packageRoot, 'prebuilds', platform);
    expect(readdirSync(prebuilds)).toEqual(['koner.glibc.node']);
    expect(statSync(path.join(prebuilds, 'koner.glibc.node')).size).toBeGreaterThan(0);
  }, 900_000);

  it('packs only what a user needs', () => {
    const out = execFileSync(
      'npm',
      ['pack', '--json', '--ignore-scripts', '--pack-destination', tmp],
      { cwd: packageRoot, encoding: 'utf8' },
    );
    const [pack] = JSON.parse(out) as {
      filename: string;
      size: number;
      unpackedSize: number;
      files: { path: string }[];
    }[];
    tarball = path.join(tmp, pack.filename);
    const files = pack.files.map((f) => f.path);
    const stray = files.filter((f) => !SHIPPED.some((re) => re.test(f)));
    expect(stray).toEqual([]);
    for (const needed of [
      'dist/index.js',
      'dist/index.d.ts',
      'dist/cli/main.js',
      'dist/install/index.js',
      'scripts/install.mjs',
      'schemas/train.schema.json',
      'binding/addon.cc',
      'binding/pch.h',
      'CMakeLists.txt',
      `prebuilds/${platform}/koner.glibc.node`,
      'models/kmou-small/tokenizer.model',
      'models/kmou-small/vocab.json',
      'models/kmou-small/README.md',
      'models/kmou-small/member-0/model.safetensors',
      'models/kmou-small/member-1/model.safetensors',
      'models/kmou-small/member-2/model.safetensors',
      'models/kmou-small/member-3/model.safetensors',
      'third_party/kobert-tokenizer/LICENSE',
      'third_party/kmou-ner/LICENSE',
      'third_party/kowiki/README.md',
      'LICENSE',
      'README.md',
    ]) {
      expect(files).toContain(needed);
    }
    // Benchmarks and test support compile into dist-test/ (tsconfig.test.json), never dist/.
    const devOnly = /^(bench|dist-test|test|dist\/bench)\/|\.map$/;
    expect(files.filter((f) => devOnly.test(f))).toEqual([]);
    console.log(
      `package: ${pack.filename}: ${(pack.size / 2 ** 20).toFixed(1)} MiB packed, ` +
        `${(pack.unpackedSize / 2 ** 20).toFixed(1)} MiB unpacked, ${files.length} files`,
    );
  });

  it('installs with the prebuilt binary and no engine warnings', () => {
    mkdirSync(app);
    writeFileSync(
      path.join(app, 'package.json'),
      JSON.stringify({ name: 'koner-user-app', version: '1.0.0', private: true, type: 'module' }),
    );
    // The app cannot see the repository's data, as a user's cannot.
    expect(existsSync(path.join(app, '..', 'shared'))).toBe(false);
    const dev = JSON.parse(readFileSync(path.join(packageRoot, 'package.json'), 'utf8'))
      .devDependencies as Record<string, string>;
    const output = inApp('npm', [
      'install',
      '--foreground-scripts',
      tarball,
      `typescript@${dev.typescript}`,
      `@types/node@${dev['@types/node']}`,
    ]);
    expect(output).not.toMatch(/EBADENGINE/);
    expect(output).toContain(`koner: native addon prebuilds/${platform}/koner.glibc.node loads`);
    expect(existsSync(path.join(app, 'node_modules', 'shared'))).toBe(false);
    // npm 11.19+ asks that a dependency's install step be approved once.
    inApp('npm', ['install-scripts', 'approve', 'koner']);
    const { allowScripts } = JSON.parse(readFileSync(path.join(app, 'package.json'), 'utf8'));
    expect(allowScripts).toEqual({ [`file:${tarball}`]: true });
  }, 600_000);

  it('type-checks a TypeScript file against the shipped .d.ts and tags Korean text', () => {
    writeFileSync(path.join(app, 'tag.ts'), TS_APP);
    writeFileSync(path.join(app, 'tsconfig.json'), JSON.stringify(TSCONFIG, null, 2));
    expectTaggedByApp(runTsApp());
  }, 300_000);

  it('runs npx koner tag on stdin', () => {
    const out = inApp('npx', ['--no', 'koner', 'tag'], { input: `${SENTENCE}\n` });
    const lines = out.trim().split('\n');
    const record = JSON.parse(lines[lines.length - 1]) as Tagged & { text: string };
    expect(record.text).toBe(SENTENCE);
    expectTagged(record.entities);
  }, 300_000);

  it('builds from source when the prebuilt binary is gone, and the app still runs', () => {
    const koner = path.join(app, 'node_modules', 'koner');
    rmSync(path.join(koner, 'prebuilds'), { recursive: true });
    // Niced: the suite's other files run meanwhile, some of them timing-sensitive.
    const output = inApp('nice', ['-n', '10', 'npm', 'rebuild', 'koner', '--foreground-scripts'], {
      env: userEnv({ CMAKE_BUILD_PARALLEL_LEVEL: String(os.availableParallelism()) }),
    });
    expect(output).not.toMatch(/not yet covered by allowScripts/);
    expect(output).toMatch(/building the addon from source/);
    expect(output).toMatch(/building against LibTorch 1\.13\.\d+ from system/);
    expect(output).toContain('koner: built build/Release/koner.node');
    // Only the binary is kept: the objects and precompiled header weigh hundreds of MB.
    expect(readdirSync(path.join(koner, 'build'))).toEqual(['Release']);
    expect(readdirSync(path.join(koner, 'build', 'Release'))).toEqual(['koner.node']);
    expectTaggedByApp(runTsApp());
  }, 1_800_000);
});
