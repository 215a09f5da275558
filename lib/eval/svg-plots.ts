/**
 * Standalone SVG plots for training runs: a confusion-matrix heatmap and line charts of training
 * curves. Plain string building, no dependencies, so the images can be written from a training
 * loop and opened in any browser.
 *
 * @packageDocumentation
 */

import { writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';

import { makeDirectory } from '../output-dir.js';
import { normalizeConfusionMatrix, type ConfusionMatrix } from './confusion.js';

/** One point of a curve. Non-finite values break the line instead of breaking the chart. */
export interface CurvePoint {
  readonly x: number;
  readonly y: number;
}

/** A named curve. */
export interface Series {
  readonly name: string;
  readonly points: readonly CurvePoint[];
  /** Any SVG colour; default from a 10-colour palette by position. */
  readonly color?: string;
  /** Draw dashed, e.g. to tell a training curve from its dev counterpart. */
  readonly dashed?: boolean;
}

/** One chart: axes, curves and a legend. */
export interface ChartPanel {
  readonly title?: string;
  readonly xLabel?: string;
  readonly yLabel?: string;
  readonly series: readonly Series[];
  /** Fixed lower bound of the y axis (e.g. 0 for F1); default from the data. */
  readonly yMin?: number;
  /** Fixed upper bound of the y axis (e.g. 1 for F1); default from the data. */
  readonly yMax?: number;
}

/** Size of a single chart. */
export interface LineChartOptions {
  /** Default 640. */
  readonly width?: number;
  /** Default 400. */
  readonly height?: number;
  /** Prefix of element ids, to keep several SVGs inlined in one page apart; default `koner`. */
  readonly idPrefix?: string;
}

/** Layout of several charts in one image. */
export interface TrainingCurvesOptions {
  /** Title over all panels. */
  readonly title?: string;
  /** Default 520. */
  readonly panelWidth?: number;
  /** Default 360. */
  readonly panelHeight?: number;
  /** Panels per row; default all in one row. */
  readonly columns?: number;
  /** See {@link LineChartOptions.idPrefix}. */
  readonly idPrefix?: string;
}

/** Options for {@link confusionMatrixSvg}. */
export interface HeatmapOptions {
  readonly title?: string;
  /**
   * What the colour shows: `'true'` (default) the share of each gold row, so rare labels are as
   * readable as frequent ones; `'pred'` the share of each predicted column; `'all'` the share of
   * all pieces; `'none'` the count relative to the largest cell. Cells always print counts.
   */
  readonly normalize?: 'true' | 'pred' | 'all' | 'none';
  /** Side of a cell in px; default fits the matrix in about 560 px, between 18 and 48. */
  readonly cellSize?: number;
}

const PALETTE = [
  '#4e79a7',
  '#f28e2b',
  '#e15759',
  '#76b7b2',
  '#59a14f',
  '#edc948',
  '#b07aa1',
  '#ff9da7',
  '#9c755f',
  '#bab0ac',
];
const BLUES = [
  '#f7fbff',
  '#deebf7',
  '#c6dbef',
  '#9ecae1',
  '#6baed6',
  '#4292c6',
  '#2171b5',
  '#08519c',
  '#08306b',
];
// No `u` flag: surrogates must be seen one code unit at a time to find the unpaired ones.
const INVALID_XML =
  // eslint-disable-next-line no-control-regex
  /[\u0000-\u0008\u000b\u000c\u000e-\u001f\ufffe\uffff]|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;
const FONT = "'DejaVu Sans', 'Noto Sans', 'Noto Sans CJK KR', Arial, sans-serif";

/**
 * Escapes text for SVG content and attribute values. Characters XML 1.0 forbids (most C0
 * controls, lone surrogates, U+FFFE/U+FFFF) become U+FFFD so the file always parses.
 */
export function escapeXml(text: string): string {
  return text
    .replace(INVALID_XML, '\ufffd')
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&apos;');
}

// Coordinates with two decimals keep files small and diffs readable.
function n2(v: number): string {
  const r = Math.round(v * 100) / 100;
  return Object.is(r, -0) ? '0' : String(r);
}

// A rough advance-width model (fraction of the font size) so margins fit labels without a font
// engine; Hangul and CJK are full-width.
function textWidth(s: string, fontSize: number): number {
  let w = 0;
  for (const ch of s) {
    const c = ch.codePointAt(0)!;
    if (
      (c >= 0x1100 && c <= 0x115f) ||
      (c >= 0x2e80 && c <= 0xa4cf) ||
      (c >= 0xac00 && c <= 0xd7a3) ||
      (c >= 0xf900 && c <= 0xfaff) ||
      (c >= 0xff00 && c <= 0xff60) ||
      c >= 0x20000
    ) {
      w += 1;
    } else if ("iIl.,:;|!'` ".includes(ch)) w += 0.3;
    else if ('mwMW@%'.includes(ch)) w += 0.9;
    else if (ch >= 'A' && ch <= 'Z') w += 0.68;
    else if (ch >= '0' && ch <= '9') w += 0.6;
    else w += 0.56;
  }
  return w * fontSize;
}

function text(
  x: number,
  y: number,
  content: string,
  attrs: Record<string, string | number> = {},
): string {
  const extra = Object.entries(attrs)
    .map(([k, v]) => ` ${k}="${escapeXml(String(v))}"`)
    .join('');
  return `<text x="${n2(x)}" y="${n2(y)}"${extra}>${escapeXml(content)}</text>`;
}

function svgDocument(width: number, height: number, body: string[]): string {
  return [
    '<?xml version="1.0" encoding="UTF-8"?>',
    `<svg xmlns="http://www.w3.org/2000/svg" width="${n2(width)}" height="${n2(height)}" ` +
      `viewBox="0 0 ${n2(width)} ${n2(height)}" font-family="${escapeXml(FONT)}" ` +
      `font-size="12" fill="#222">`,
    `<rect x="0" y="0" width="${n2(width)}" height="${n2(height)}" fill="#ffffff"/>`,
    ...body,
    '</svg>',
    '',
  ].join('\n');
}

/** Ticks at 1, 2 or 5 × 10^k covering [lo, hi], about `target` of them. */
function niceTicks(lo: number, hi: number, target = 5): { ticks: number[]; step: number } {
  const raw = (hi - lo) / target;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const f = raw / mag;
  const step = (f < 1.5 ? 1 : f < 3.5 ? 2 : f < 7.5 ? 5 : 10) * mag;
  const ticks: number[] = [];
  const first = Math.ceil(lo / step - 1e-9);
  const last = Math.floor(hi / step + 1e-9);
  for (let i = first; i <= last; i++) ticks.push(Number((i * step).toPrecision(12)));
  return { ticks, step };
}

function tickFormatter(step: number, maxAbs: number): (v: number) => string {
  const decimalsFor = (unit: number) => Math.max(0, -Math.floor(Math.log10(step / unit) + 1e-9));
  if (maxAbs > 0 && maxAbs < 1e-3) {
    // Learning rates and the like: 5e-5 reads better than 0.00005.
    const exp = Math.floor(Math.log10(maxAbs));
    const d = Math.min(decimalsFor(10 ** exp), 20);
    return (v) => (v === 0 ? '0' : `${(v / 10 ** exp).toFixed(d)}e${exp}`);
  }
  const unit = maxAbs >= 1e10 ? 1e9 : maxAbs >= 1e7 ? 1e6 : maxAbs >= 1e4 ? 1e3 : 1;
  const suffix = unit === 1e9 ? 'G' : unit === 1e6 ? 'M' : unit === 1e3 ? 'k' : '';
  const d = Math.min(decimalsFor(unit), 20);
  return (v) => (v === 0 ? '0' : (v / unit).toFixed(d) + suffix);
}

// Domain of one axis: the data range (or the caller's bounds), widened to tick multiples so the
// curve never touches the frame, and never empty.
function axisDomain(values: number[], fixedLo?: number, fixedHi?: number): [number, number] {
  let lo = fixedLo ?? (values.length ? Math.min(...values) : 0);
  let hi = fixedHi ?? (values.length ? Math.max(...values) : 1);
  // One fixed bound beyond all the data: the other bound follows it.
  if (fixedHi === undefined && hi < lo) hi = lo;
  if (fixedLo === undefined && lo > hi) lo = hi;
  if (lo > hi) [lo, hi] = [hi, lo];
  if (lo === hi) {
    const pad = lo === 0 ? 1 : Math.abs(lo) * 0.1;
    if (fixedLo === undefined) lo -= pad;
    if (fixedHi === undefined) hi += pad;
    if (lo === hi) hi += pad;
  }
  const { step } = niceTicks(lo, hi);
  if (fixedLo === undefined) lo = Math.floor(lo / step + 1e-9) * step;
  if (fixedHi === undefined) hi = Math.ceil(hi / step - 1e-9) * step;
  return [lo, hi];
}

function renderPanel(
  panel: ChartPanel,
  x0: number,
  y0: number,
  width: number,
  height: number,
  clipId: string,
): string[] {
  const out: string[] = [];
  const finite = panel.series.map((s) =>
    s.points.filter((p) => Number.isFinite(p.x) && Number.isFinite(p.y)),
  );
  const xs = finite.flatMap((ps) => ps.map((p) => p.x));
  const ys = finite.flatMap((ps) => ps.map((p) => p.y));
  const [xLo, xHi] = axisDomain(xs);
  const [yLo, yHi] = axisDomain(ys, panel.yMin, panel.yMax);
  const xt = niceTicks(xLo, xHi, 6);
  const yt = niceTicks(yLo, yHi, 5);
  const xFmt = tickFormatter(xt.step, Math.max(Math.abs(xLo), Math.abs(xHi)));
  const yFmt = tickFormatter(yt.step, Math.max(Math.abs(yLo), Math.abs(yHi)));

  const titleH = panel.title ? 26 : 8;
  const legendW = panel.series.length
    ? Math.max(...panel.series.map((s) => textWidth(s.name, 12))) + 40
    : 0;
  const yTickW = Math.max(...yt.ticks.map((t) => textWidth(yFmt(t), 11)), 10);
  const left = x0 + (panel.yLabel ? 22 : 4) + yTickW + 8;
  const right = x0 + width - legendW - 12;
  const top = y0 + titleH + 8;
  const bottom = y0 + height - (panel.xLabel ? 44 : 26);
  const pw = Math.max(1, right - left);
  const ph = Math.max(1, bottom - top);
  const px = (x: number) => left + ((x - xLo) / (xHi - xLo)) * pw;
  const py = (y: number) => bottom - ((y - yLo) / (yHi - yLo)) * ph;

  out.push('<g>');
  if (panel.title) {
    out.push(
      text(x0 + width / 2, y0 + 18, panel.title, {
        'text-anchor': 'middle',
        'font-size': 14,
        'font-weight': 'bold',
      }),
    );
  }
  for (const t of yt.ticks) {
    const y = py(t);
    out.push(
      `<line x1="${n2(left)}" y1="${n2(y)}" x2="${n2(right)}" y2="${n2(y)}" stroke="#e5e5e5"/>`,
    );
    out.push(text(left - 6, y + 4, yFmt(t), { 'text-anchor': 'end', 'font-size': 11 }));
  }
  for (const t of xt.ticks) {
    const x = px(t);
    out.push(
      `<line x1="${n2(x)}" y1="${n2(top)}" x2="${n2(x)}" y2="${n2(bottom)}" stroke="#f0f0f0"/>`,
    );
    out.push(text(x, bottom + 16, xFmt(t), { 'text-anchor': 'middle', 'font-size': 11 }));
  }
  out.push(
    `<rect x="${n2(left)}" y="${n2(top)}" width="${n2(pw)}" height="${n2(ph)}" fill="none" ` +
      `stroke="#888"/>`,
  );
  if (panel.xLabel) {
    out.push(text(left + pw / 2, y0 + height - 8, panel.xLabel, { 'text-anchor': 'middle' }));
  }
  if (panel.yLabel) {
    const cx = x0 + 14;
    const cy = top + ph / 2;
    out.push(
      text(cx, cy, panel.yLabel, {
        'text-anchor': 'middle',
        transform: `rotate(-90 ${n2(cx)} ${n2(cy)})`,
      }),
    );
  }
  if (xs.length === 0) {
    out.push(
      text(left + pw / 2, top + ph / 2, 'no data', { 'text-anchor': 'middle', fill: '#888' }),
    );
  }

  // Curves may leave a caller-fixed y range; clip them to the frame rather than clamp them.
  out.push(
    `<clipPath id="${escapeXml(clipId)}"><rect x="${n2(left)}" y="${n2(top)}" ` +
      `width="${n2(pw)}" height="${n2(ph)}"/></clipPath>`,
  );
  out.push(`<g clip-path="url(#${escapeXml(clipId)})" fill="none" stroke-width="2">`);
  panel.series.forEach((s, k) => {
    const color = s.color ?? PALETTE[k % PALETTE.length];
    const dash = s.dashed ? ' stroke-dasharray="6 4"' : '';
    const segments: CurvePoint[][] = [[]];
    for (const p of s.points) {
      if (Number.isFinite(p.x) && Number.isFinite(p.y)) segments[segments.length - 1].push(p);
      else if (segments[segments.length - 1].length) segments.push([]);
    }
    out.push(`<g stroke="${escapeXml(color)}"><title>${escapeXml(s.name)}</title>`);
    for (const seg of segments) {
      if (seg.length > 1) {
        const pts = seg.map((p) => `${n2(px(p.x))},${n2(py(p.y))}`).join(' ');
        out.push(`<polyline points="${pts}"${dash} stroke-linejoin="round"/>`);
      }
    }
    // Markers show where sparse evaluations happened; a lone point would be invisible otherwise.
    const count = finite[k].length;
    for (const seg of segments) {
      if (count <= 60 || seg.length === 1) {
        for (const p of seg) {
          out.push(
            `<circle cx="${n2(px(p.x))}" cy="${n2(py(p.y))}" r="2.5" fill="${escapeXml(color)}" ` +
              `stroke="none"/>`,
          );
        }
      }
    }
    out.push('</g>');
  });
  out.push('</g>');

  // Legend to the right of the frame, so it never hides a curve.
  panel.series.forEach((s, k) => {
    const color = s.color ?? PALETTE[k % PALETTE.length];
    const lx = right + 12;
    const ly = top + 8 + k * 20;
    const dash = s.dashed ? ' stroke-dasharray="6 4"' : '';
    out.push(
      `<line x1="${n2(lx)}" y1="${n2(ly)}" x2="${n2(lx + 22)}" y2="${n2(ly)}" ` +
        `stroke="${escapeXml(color)}" stroke-width="2"${dash}/>`,
    );
    out.push(text(lx + 28, ly + 4, s.name));
  });
  out.push('</g>');
  return out;
}

/**
 * Renders one line chart (several named series, axes, grid, legend) as a standalone SVG document.
 */
export function lineChartSvg(panel: ChartPanel, options: LineChartOptions = {}): string {
  const width = options.width ?? 640;
  const height = options.height ?? 400;
  const prefix = options.idPrefix ?? 'koner';
  return svgDocument(width, height, renderPanel(panel, 0, 0, width, height, `${prefix}-clip-0`));
}

/**
 * Renders training curves as panels side by side (e.g. loss on one, token and entity F1 on the
 * other, each with several series) in one standalone SVG document.
 */
export function trainingCurvesSvg(
  panels: readonly ChartPanel[],
  options: TrainingCurvesOptions = {},
): string {
  const pw = options.panelWidth ?? 520;
  const ph = options.panelHeight ?? 360;
  const columns = Math.max(1, Math.min(options.columns ?? panels.length, panels.length || 1));
  const rows = Math.max(1, Math.ceil(panels.length / columns));
  const titleH = options.title ? 34 : 0;
  const prefix = options.idPrefix ?? 'koner';
  const body: string[] = [];
  if (options.title) {
    body.push(
      text((pw * columns) / 2, 24, options.title, {
        'text-anchor': 'middle',
        'font-size': 16,
        'font-weight': 'bold',
      }),
    );
  }
  panels.forEach((p, i) => {
    const x = (i % columns) * pw;
    const y = titleH + Math.floor(i / columns) * ph;
    body.push(...renderPanel(p, x, y, pw, ph, `${prefix}-clip-${i}`));
  });
  return svgDocument(pw * columns, titleH + ph * rows, body);
}

function hexToRgb(hex: string): [number, number, number] {
  const v = parseInt(hex.slice(1), 16);
  return [(v >> 16) & 255, (v >> 8) & 255, v & 255];
}

// Blues, interpolated: light for 0, dark for 1.
function blue(v: number): string {
  const t = Math.min(1, Math.max(0, Number.isFinite(v) ? v : 0)) * (BLUES.length - 1);
  const i = Math.min(BLUES.length - 2, Math.floor(t));
  const a = hexToRgb(BLUES[i]);
  const b = hexToRgb(BLUES[i + 1]);
  const f = t - i;
  const c = a.map((x, k) => Math.round(x + (b[k] - x) * f));
  return '#' + c.map((x) => x.toString(16).padStart(2, '0')).join('');
}

/**
 * Renders a confusion matrix as a heatmap (gold labels down, predicted labels across) with counts
 * in the cells, a colour bar, and a tooltip per cell, as a standalone SVG document.
 */
export function confusionMatrixSvg(cm: ConfusionMatrix, options: HeatmapOptions = {}): string {
  const n = cm.labels.length;
  const mode = options.normalize ?? 'true';
  const cell = options.cellSize ?? Math.min(48, Math.max(18, Math.ceil(560 / Math.max(1, n))));
  const max = Math.max(0, ...cm.counts.flat());
  const shade =
    mode === 'none'
      ? cm.counts.map((r) => r.map((c) => (max === 0 ? 0 : c / max)))
      : normalizeConfusionMatrix(cm, mode);
  const labelW = Math.max(20, ...cm.labels.map((l) => textWidth(l, 12)));
  const diag = labelW * Math.SQRT1_2; // x labels are turned 45°
  const titleH = options.title ? 36 : 12;
  const left = Math.max(24 + labelW + 8, diag + 8);
  const top = titleH + 8;
  const grid = n * cell;
  const barX = left + grid + 20;
  const width = barX + 14 + 8 + textWidth(mode === 'none' ? String(max) : '100%', 11) + 16;
  const height = top + grid + 10 + diag + 34;
  const countFont = Math.max(
    7,
    Math.min(12, (cell - 4) / (0.62 * Math.max(1, String(max).length))),
  );

  const body: string[] = [];
  if (options.title) {
    body.push(
      text(width / 2, 24, options.title, {
        'text-anchor': 'middle',
        'font-size': 15,
        'font-weight': 'bold',
      }),
    );
  }
  if (n === 0) {
    body.push(text(left, top + 20, 'no labels', { fill: '#888' }));
  }
  const shareName =
    mode === 'true' ? 'of gold row' : mode === 'pred' ? 'of predicted column' : 'of all';
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < n; j++) {
      const v = shade[i][j];
      const x = left + j * cell;
      const y = top + i * cell;
      const count = cm.counts[i][j];
      const share = mode === 'none' ? '' : ` (${(v * 100).toFixed(1)}% ${shareName})`;
      body.push(
        `<g><title>${escapeXml(`gold ${cm.labels[i]} → predicted ${cm.labels[j]}: ${count}${share}`)}</title>` +
          `<rect x="${n2(x)}" y="${n2(y)}" width="${n2(cell)}" height="${n2(cell)}" ` +
          `fill="${blue(v)}"/>` +
          (count > 0
            ? text(x + cell / 2, y + cell / 2 + countFont * 0.35, String(count), {
                'text-anchor': 'middle',
                'font-size': n2(countFont),
                fill: v > 0.55 ? '#ffffff' : '#222222',
              })
            : '') +
          '</g>',
      );
    }
  }
  if (n > 0) {
    body.push(
      `<rect x="${n2(left)}" y="${n2(top)}" width="${n2(grid)}" height="${n2(grid)}" ` +
        `fill="none" stroke="#888"/>`,
    );
  }
  // Diagonal outline: the correct predictions are what a reader looks for first.
  for (let i = 0; i < n; i++) {
    body.push(
      `<rect x="${n2(left + i * cell)}" y="${n2(top + i * cell)}" width="${n2(cell)}" ` +
        `height="${n2(cell)}" fill="none" stroke="#f28e2b" stroke-width="1.5"/>`,
    );
  }
  cm.labels.forEach((l, i) => {
    body.push(
      text(left - 6, top + i * cell + cell / 2 + 4, l, { 'text-anchor': 'end', 'font-size': 12 }),
    );
    const x = left + i * cell + cell / 2;
    const y = top + grid + 10;
    body.push(
      text(x, y, l, {
        'text-anchor': 'end',
        'font-size': 12,
        transform: `rotate(-45 ${n2(x)} ${n2(y)})`,
      }),
    );
  });
  const gx = 12;
  const gy = top + grid / 2;
  body.push(
    text(gx, gy, 'gold', {
      'text-anchor': 'middle',
      'font-weight': 'bold',
      transform: `rotate(-90 ${n2(gx)} ${n2(gy)})`,
    }),
  );
  body.push(
    text(left + grid / 2, height - 10, 'predicted', {
      'text-anchor': 'middle',
      'font-weight': 'bold',
    }),
  );

  // Colour bar: stacked bands rather than a gradient, so the file needs no ids.
  const bands = 32;
  const barH = Math.max(grid, 60);
  for (let b = 0; b < bands; b++) {
    const v = 1 - (b + 0.5) / bands;
    body.push(
      `<rect x="${n2(barX)}" y="${n2(top + (b * barH) / bands)}" width="14" ` +
        `height="${n2(barH / bands + 0.5)}" fill="${blue(v)}"/>`,
    );
  }
  body.push(
    `<rect x="${n2(barX)}" y="${n2(top)}" width="14" height="${n2(barH)}" fill="none" stroke="#888"/>`,
  );
  const marks: [number, string][] =
    mode === 'none'
      ? [
          [0, '0'],
          ...(max >= 2
            ? [[Math.round(max / 2) / max, String(Math.round(max / 2))] as [number, string]]
            : []),
          [max > 0 ? 1 : 0, String(max)],
        ]
      : [
          [0, '0%'],
          [0.5, '50%'],
          [1, '100%'],
        ];
  for (const [v, label] of marks) {
    body.push(text(barX + 20, top + (1 - v) * barH + 4, label, { 'font-size': 11 }));
  }
  return svgDocument(width, Math.max(height, top + barH + 20), body);
}

/** Writes an SVG document to `path`, creating its directory. */
export async function writeSvg(path: string, svg: string): Promise<void> {
  await makeDirectory(dirname(path));
  await writeFile(path, svg, 'utf8');
}
