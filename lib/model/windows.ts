/**
 * Text longer than the model's positions is never truncated: its pieces are cut into
 * overlapping windows, each encoded as `[CLS] window [SEP]`, and every piece takes its
 * emissions from the window in which it sits farthest from an edge (where its context is
 * widest). The CRF then decodes the stitched sequence as a whole.
 */

/** A window over piece indices `[start, end)`. */
export interface PieceWindow {
  start: number;
  end: number;
}

/**
 * Windows of at most `maxPieces` pieces covering `numPieces`, consecutive windows overlapping by
 * `overlap` pieces (clamped so that every window advances). One window when the text fits.
 */
export function planWindows(numPieces: number, maxPieces: number, overlap: number): PieceWindow[] {
  if (!Number.isInteger(maxPieces) || maxPieces < 1) {
    throw new RangeError(`maxPieces must be a positive integer, got ${maxPieces}`);
  }
  if (numPieces <= maxPieces) return [{ start: 0, end: numPieces }];
  const step = Math.max(1, maxPieces - Math.max(0, Math.min(overlap, maxPieces - 1)));
  const windows: PieceWindow[] = [];
  for (let start = 0; ; start += step) {
    const end = Math.min(start + maxPieces, numPieces);
    windows.push({ start, end });
    if (end === numPieces) break;
  }
  return windows;
}

/**
 * For each piece, the index of the window that should provide its emissions: the one where
 * the piece's distance to the nearer window edge is largest (earlier window on ties).
 */
export function windowOwners(numPieces: number, windows: readonly PieceWindow[]): Int32Array {
  const owners = new Int32Array(numPieces).fill(-1);
  const best = new Int32Array(numPieces).fill(-1);
  windows.forEach((w, index) => {
    for (let p = w.start; p < w.end; p++) {
      const margin = Math.min(p - w.start, w.end - 1 - p);
      if (margin > best[p]) {
        best[p] = margin;
        owners[p] = index;
      }
    }
  });
  return owners;
}

/**
 * Stitches per-window emissions into one sequence `[CLS] pieces [SEP]` of `numPieces + 2`
 * rows × `numTags`. `windowRows[w]` holds window w's rows including its own [CLS] and [SEP]
 * (row 0 and the last row); the whole text's [CLS] row comes from the first window and its
 * [SEP] row from the last.
 */
export function stitchEmissions(
  numPieces: number,
  numTags: number,
  windows: readonly PieceWindow[],
  windowRows: readonly Float32Array[],
): Float32Array {
  const owners = windowOwners(numPieces, windows);
  const out = new Float32Array((numPieces + 2) * numTags);
  const first = windowRows[0];
  const last = windowRows[windows.length - 1];
  const lastWindow = windows[windows.length - 1];
  out.set(first.subarray(0, numTags), 0);
  for (let p = 0; p < numPieces; p++) {
    const w = windows[owners[p]];
    const row = p - w.start + 1;
    out.set(windowRows[owners[p]].subarray(row * numTags, (row + 1) * numTags), (p + 1) * numTags);
  }
  const sepRow = lastWindow.end - lastWindow.start + 1;
  out.set(last.subarray(sepRow * numTags, (sepRow + 1) * numTags), (numPieces + 1) * numTags);
  return out;
}

/**
 * Where each token of `[CLS] pieces [SEP]` (`numPieces + 2` tokens) takes its row from, by the
 * rule of {@link stitchEmissions}: `[CLS]` from the first window, `[SEP]` from the last, a piece
 * from its owner. Rows are indices into a window's own tokens (its [CLS] is row 0).
 */
export function tokenSources(
  numPieces: number,
  windows: readonly PieceWindow[],
): { window: number; row: number }[] {
  const owners = windowOwners(numPieces, windows);
  const last = windows.length - 1;
  const sources = [{ window: 0, row: 0 }];
  for (let p = 0; p < numPieces; p++) {
    sources.push({ window: owners[p], row: p - windows[owners[p]].start + 1 });
  }
  sources.push({ window: last, row: windows[last].end - windows[last].start + 1 });
  return sources;
}

/**
 * Stitches per-window attention maps into one `N × N` map over the whole text's tokens
 * (`N = numPieces + 2`). Token q's row is its source window's row (see {@link tokenSources}),
 * with that window's columns placed at their tokens in the text and the window's own [CLS] and
 * [SEP] at the text's; columns outside the window are 0, so every row still sums to 1.
 * `windowMaps[w]` is window w's map, `stride` floats per row (its padded length), starting at
 * its [CLS] row.
 */
export function stitchAttention(
  numPieces: number,
  windows: readonly PieceWindow[],
  windowMaps: readonly Float32Array[],
  strides: readonly number[],
): Float32Array {
  const N = numPieces + 2;
  const out = new Float32Array(N * N);
  tokenSources(numPieces, windows).forEach(({ window, row }, q) => {
    const w = windows[window];
    const size = w.end - w.start + 2;
    const src = windowMaps[window].subarray(row * strides[window], row * strides[window] + size);
    const dst = q * N;
    out[dst] = src[0];
    out.set(src.subarray(1, size - 1), dst + w.start + 1);
    out[dst + N - 1] = src[size - 1];
  });
  return out;
}
