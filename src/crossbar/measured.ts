// Measured read-back: conductances read from a chip, in the layout of the `*.programmed.csv` files
// of a crossbar folder (one CSV per array, the same file names, rows and columns, uS), replace the
// simulated programmed state of a loaded network, so that evaluation and in-situ training start
// from what the chip holds. Cells that read at a bound of the window while their target is far
// from it are reported as likely stuck.
import * as path from 'path';
import { FileFormatError } from '../errors';
import { parseArrayCsv } from './files';
import type { CrossbarNetwork } from './network';
import { readTextFile, requireFolder } from '../input_files';

/** A cell reads "at a bound" within this fraction of the nominal window (gMax - gMin). */
export const STUCK_BOUND_FRACTION = 0.02;
/** ... and is likely stuck when its target is farther than this fraction of the window from it. */
export const STUCK_TARGET_FRACTION = 0.25;

export interface MeasuredArrayReport {
  id: string;
  file: string;
  /** Mean and largest |G_measured - G_target|, uS. */
  meanAbsError: number;
  maxAbsError: number;
  /** Cells at gMin (resp. gMax) whose target is far from it. */
  likelyStuckAtGMin: number;
  likelyStuckAtGMax: number;
  /** The first few likely stuck cells: [row, col, measured, target]. */
  examples: [number, number, number, number][];
}

export interface MeasuredReport {
  dir: string;
  arrays: MeasuredArrayReport[];
  cells: number;
  likelyStuck: number;
}

/**
 * Reads the measured CSV of every array of `net` from `dir` and puts it in place of the array's
 * programmed conductances. Every problem is a FileFormatError naming the CSV: missing (the array
 * id named), another shape than the manifest's, a value that is not a finite number >= 0.
 */
export function applyMeasured(net: CrossbarNetwork, dir: string): MeasuredReport {
  requireFolder(dir, 'the measured conductances: one *.programmed.csv per array');
  const { gMin, gMax } = net.device;
  const win = gMax - gMin;
  const reports: MeasuredArrayReport[] = [];
  let cells = 0;
  const parsed: { data: Float32Array; target: Float32Array; apply: (d: Float32Array) => void }[] = [];
  for (const layer of net.layers) {
    for (const a of layer.arrays) {
      const file = path.join(dir, a.files.programmed);
      const text = readTextFile(file, `missing: the measured conductances of array '${a.id}' (layer ${layer.name}, ${a.tile.rows}x${a.tile.arrayCols})`);
      const { data } = parseArrayCsv(file, text, a.tile.rows, a.tile.arrayCols, a.id);
      for (let i = 0; i < data.data.length; i++) {
        if (data.data[i] < 0) {
          throw new FileFormatError(file, `row ${Math.floor(i / data.cols) + 1}, column ${(i % data.cols) + 1}: ${data.data[i]} uS is negative (a conductance is >= 0)`);
        }
      }
      parsed.push({ data: data.data, target: a.target, apply: (d) => a.programmed.set(d) });
      // Statistics against the targets, and the cells that look stuck.
      let sum = 0;
      let max = 0;
      let atMin = 0;
      let atMax = 0;
      const examples: [number, number, number, number][] = [];
      const tol = STUCK_BOUND_FRACTION * win;
      const far = STUCK_TARGET_FRACTION * win;
      for (let i = 0; i < data.data.length; i++) {
        const g = data.data[i];
        const t = a.target[i];
        const e = Math.abs(g - t);
        sum += e;
        if (e > max) max = e;
        const low = g <= gMin + tol && t - gMin > far;
        const high = g >= gMax - tol && gMax - t > far;
        if (low) atMin++;
        if (high) atMax++;
        if ((low || high) && examples.length < 5) examples.push([Math.floor(i / a.tile.arrayCols), i % a.tile.arrayCols, g, t]);
      }
      cells += data.data.length;
      reports.push({ id: a.id, file, meanAbsError: sum / data.data.length, maxAbsError: max, likelyStuckAtGMin: atMin, likelyStuckAtGMax: atMax, examples });
    }
  }
  // Only once every file read and checked: a bad folder leaves the network as it was.
  for (const p of parsed) p.apply(p.data);
  // the inference state (tensors, calibration) was built from the old conductances
  (net.runtime as { dispose?: () => void } | null)?.dispose?.();
  net.runtime = null;
  return { dir: path.resolve(dir), arrays: reports, cells, likelyStuck: reports.reduce((n, r) => n + r.likelyStuckAtGMin + r.likelyStuckAtGMax, 0) };
}

/** Lines for people: the read-back's error against the targets and the likely stuck cells. */
export function formatMeasured(r: MeasuredReport): string {
  const lines = [`measured read-back from ${r.dir}: ${r.arrays.length} arrays, ${r.cells} cells, ${r.likelyStuck} likely stuck`];
  for (const a of r.arrays) {
    if (a.likelyStuckAtGMin + a.likelyStuckAtGMax === 0) continue;
    const ex = a.examples.map(([row, col, g, t]) => `(${row},${col}) ${g.toFixed(2)} uS, target ${t.toFixed(2)}`).join('; ');
    lines.push(`  ${a.id}: ${a.likelyStuckAtGMin} at gMin and ${a.likelyStuckAtGMax} at gMax far from their targets, e.g. ${ex}`);
  }
  return lines.join('\n');
}
