// Tiling a layer's conductance matrix onto crossbar arrays of a fixed size (arrayRows x arrayCols):
// row tiles of arrayRows inputs, column tiles of as many outputs as an array holds (differential:
// floor(arrayCols / 2) pairs; reference: arrayCols - 1 columns plus the reference column). The last
// tile of each direction takes what is left, so any layer fits (a 37 x 23 layer on 16 x 8 arrays:
// row tiles of 16, 16, 5 rows; differential column tiles of 4, 4, 4, 4, 4, 3 outputs). The partial
// sums of the row tiles are added digitally.
import { ConfigError } from '../errors';
import { devicesPerWeight, Scheme } from './schemes';

/** One array's place in a layer. */
export interface TileSpec {
  /** Row tile and column tile index. */
  rowTile: number;
  colTile: number;
  /** The layer weight-matrix rows it holds: [rowStart, rowStart + rows). */
  rowStart: number;
  rows: number;
  /** The outputs (weight-matrix columns) it holds: [outStart, outStart + outs). */
  outStart: number;
  outs: number;
  /** Its columns in the layer's conductance matrix (rows x devicesPerWeight * outputs): [colStart, colStart + cols). */
  colStart: number;
  cols: number;
  /** Physical columns the array uses: cols, plus the reference column (the last) for the reference scheme. */
  arrayCols: number;
}

/** Outputs one array of `arrayCols` columns holds. */
export function outputsPerArray(arrayCols: number, scheme: Scheme): number {
  return scheme === 'differential' ? Math.floor(arrayCols / 2) : arrayCols - 1;
}

export function checkArraySize(arrayRows: number, arrayCols: number, scheme: Scheme): void {
  if (!Number.isInteger(arrayRows) || arrayRows < 1) throw new ConfigError('arrayRows', `must be an integer >= 1, got ${arrayRows}`);
  if (!Number.isInteger(arrayCols) || arrayCols < 1) throw new ConfigError('arrayCols', `must be an integer >= 1, got ${arrayCols}`);
  if (outputsPerArray(arrayCols, scheme) < 1) {
    throw new ConfigError('arrayCols', `an array of ${arrayCols} column(s) holds no output with the ${scheme} scheme (needs >= 2 columns)`);
  }
}

/** The tiles of a rows x outputs layer, row tile by row tile, each left to right. */
export function tileLayer(rows: number, outputs: number, arrayRows: number, arrayCols: number, scheme: Scheme): TileSpec[] {
  checkArraySize(arrayRows, arrayCols, scheme);
  if (!Number.isInteger(rows) || rows < 1 || !Number.isInteger(outputs) || outputs < 1) {
    throw new RangeError(`a layer needs rows, outputs >= 1, got ${rows} x ${outputs}`);
  }
  const per = outputsPerArray(arrayCols, scheme);
  const dpw = devicesPerWeight(scheme);
  const ref = scheme === 'reference' ? 1 : 0;
  const tiles: TileSpec[] = [];
  for (let rt = 0, r0 = 0; r0 < rows; rt++, r0 += arrayRows) {
    for (let ct = 0, o0 = 0; o0 < outputs; ct++, o0 += per) {
      const outs = Math.min(per, outputs - o0);
      tiles.push({
        rowTile: rt,
        colTile: ct,
        rowStart: r0,
        rows: Math.min(arrayRows, rows - r0),
        outStart: o0,
        outs,
        colStart: o0 * dpw,
        cols: outs * dpw,
        arrayCols: outs * dpw + ref,
      });
    }
  }
  return tiles;
}

/**
 * One tile's cells (rows x arrayCols, row-major) cut from a layer conductance matrix
 * (rows x totalCols); the reference column, where the tile has one, is filled with `refValue`.
 */
export function extractTile(G: ArrayLike<number>, totalCols: number, tile: TileSpec, refValue?: number): Float32Array {
  const out = new Float32Array(tile.rows * tile.arrayCols);
  for (let r = 0; r < tile.rows; r++) {
    const src = (tile.rowStart + r) * totalCols + tile.colStart;
    const dst = r * tile.arrayCols;
    for (let c = 0; c < tile.cols; c++) out[dst + c] = G[src + c];
    if (tile.arrayCols > tile.cols) {
      if (refValue === undefined) throw new RangeError('the tile has a reference column: give its value');
      out[dst + tile.cols] = refValue;
    }
  }
  return out;
}

/** Puts tiles back into a layer conductance matrix (rows x totalCols), dropping reference columns. */
export function assembleTiles(tiles: readonly { tile: TileSpec; data: ArrayLike<number> }[], rows: number, totalCols: number): Float32Array {
  const G = new Float32Array(rows * totalCols).fill(NaN);
  for (const { tile, data } of tiles) {
    if (data.length !== tile.rows * tile.arrayCols) throw new RangeError(`tile data has ${data.length} values, ${tile.rows}x${tile.arrayCols} needs ${tile.rows * tile.arrayCols}`);
    for (let r = 0; r < tile.rows; r++) {
      for (let c = 0; c < tile.cols; c++) G[(tile.rowStart + r) * totalCols + tile.colStart + c] = data[r * tile.arrayCols + c];
    }
  }
  return G;
}

/**
 * Checks that rectangles [rowStart, +rows) x [colStart, +cols) cover a rows x totalCols matrix
 * exactly once. Returns null when they do, else a sentence saying what is wrong.
 */
export function checkCoverage(
  rects: readonly { rowStart: number; rows: number; colStart: number; cols: number; label: string }[],
  rows: number,
  totalCols: number,
): string | null {
  const seen = new Uint8Array(rows * totalCols);
  for (const t of rects) {
    if (t.rowStart < 0 || t.colStart < 0 || t.rowStart + t.rows > rows || t.colStart + t.cols > totalCols) {
      return `${t.label} (rows ${t.rowStart}..${t.rowStart + t.rows - 1}, columns ${t.colStart}..${t.colStart + t.cols - 1}) reaches outside the ${rows}x${totalCols} conductance matrix of the layer`;
    }
    for (let r = t.rowStart; r < t.rowStart + t.rows; r++) {
      for (let c = t.colStart; c < t.colStart + t.cols; c++) {
        if (seen[r * totalCols + c]) return `${t.label} overlaps another array at row ${r}, column ${c} of the layer's conductance matrix`;
        seen[r * totalCols + c] = 1;
      }
    }
  }
  for (let i = 0; i < seen.length; i++) {
    if (!seen[i]) return `no array holds row ${Math.floor(i / totalCols)}, column ${i % totalCols} of the layer's ${rows}x${totalCols} conductance matrix`;
  }
  return null;
}

/** "RxC" -> [R, C]; null when the text is not of that form. */
export function parseArraySize(text: string): [number, number] | null {
  const m = /^\s*(\d+)\s*[xX*]\s*(\d+)\s*$/.exec(text);
  if (!m) return null;
  const r = Number(m[1]);
  const c = Number(m[2]);
  if (!Number.isSafeInteger(r) || !Number.isSafeInteger(c) || r < 1 || c < 1) return null;
  return [r, c];
}
