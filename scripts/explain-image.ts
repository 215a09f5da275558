/**
 * The README's example of `koner explain`: runs the command on the bundled model, opens the file
 * it writes in headless Chromium, clicks an entity and saves the view as docs/explain.png.
 *
 * Usage: npm run docs:explain (after npm run compile). Needs Chromium and a Korean font
 * (Debian: fonts-nanum or fonts-noto-cjk); without the font the image would show empty boxes.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

import { chromium } from 'playwright-core';

const root = path.resolve(import.meta.dirname, '..');
const SENTENCE = '한국해양대학교는 부산 영도구에 있으며 1945년에 개교했다.';
const OUT = path.join(root, 'docs', 'explain.png');
// The map shown: a head whose lines from a place name are easy to follow.
const LAYER = '3';
const HEAD = '1';

function koreanFontInstalled(): boolean {
  try {
    return execFileSync('fc-list', [':lang=ko'], { encoding: 'utf8' }).trim() !== '';
  } catch {
    return false;
  }
}

async function main(): Promise<void> {
  if (!koreanFontInstalled()) {
    throw new Error(
      'no Korean font installed (fc-list :lang=ko is empty): apt-get install fonts-nanum',
    );
  }
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'koner-explain-image-'));
  try {
    const html = path.join(tmp, 'explain.html');
    execFileSync(
      process.execPath,
      [path.join(root, 'dist', 'cli', 'main.js'), 'explain', '--out', html, SENTENCE],
      { stdio: 'inherit' },
    );
    const browser = await chromium.launch({
      executablePath: '/usr/bin/chromium',
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
    });
    try {
      const page = await browser.newPage({ viewport: { width: 860, height: 600 } });
      await page.goto(pathToFileURL(html).href);
      await page.waitForSelector('.kv-svg');
      await page.selectOption('select.kv-layer', LAYER);
      await page.selectOption('select.kv-head', HEAD);
      await page.click('.kv-sentence mark.ent >> nth=1'); // 부산 영도구
      await page.locator('main').screenshot({ path: OUT });
    } finally {
      await browser.close();
    }
    console.log(`wrote ${path.relative(root, OUT)} (${statSync(OUT).size} bytes)`);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

main().catch((error: unknown) => {
  console.error(`explain-image: ${(error as Error).message}`);
  process.exitCode = 1;
});
