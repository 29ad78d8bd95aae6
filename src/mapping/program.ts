// Programming the arrays of a layer: every cell of every array is tuned by write-verify towards its
// target, each replica group with device instances of its own (device-to-device variation, stuck
// cells), all seeded. The cells of one replica are programmed in one vectorized writeVerify call
// and the report is cut per array.
import type { DeviceConfig } from '../device/config';
import { SeededRandom } from '../random';
import {
  DeviceInstances,
  ProgrammingReport,
  WriteVerifyOptions,
  combineReports,
  programmingReport,
  sampleDeviceInstances,
  writeVerify,
} from '../programming';

export interface ProgrammedArrays {
  /** Programmed conductances of each array (same order and sizes as the targets), uS. */
  programmed: Float32Array[];
  /** The report of each array. */
  reports: ProgrammingReport[];
  /** The SET and RESET pulses write-verify gave each cell of each array. */
  pulses: WriteVerifyPulses[];
  /** All arrays together. */
  total: ProgrammingReport;
}

/** Per cell of an array (row-major, as its conductances): the write-verify pulses it received. */
export interface WriteVerifyPulses {
  set: Int32Array;
  reset: Int32Array;
}

/**
 * The device instances (d2d variation, stuck cells) of the cells of one replica, in array order:
 * what programArrays draws from the same rng. In-situ training regenerates them from the mapping
 * seed, so that the cells it pulses are the ones that were programmed.
 */
export function replicaInstances(device: DeviceConfig, cellCount: number, rng: SeededRandom): DeviceInstances {
  return sampleDeviceInstances(device, cellCount, rng.fork('cells'));
}

/**
 * Programs a group of arrays (one replica of a layer) with fresh device instances drawn from
 * `rng` (fork 'cells') and write-verify noise from fork 'verify'. The same rng seed gives the
 * same cells and the same programmed values.
 */
export function programArrays(targets: readonly Float32Array[], device: DeviceConfig, rng: SeededRandom, opts: WriteVerifyOptions = {}): ProgrammedArrays {
  const n = targets.reduce((a, t) => a + t.length, 0);
  const all = new Float32Array(n);
  let o = 0;
  for (const t of targets) {
    all.set(t, o);
    o += t.length;
  }
  const inst = replicaInstances(device, n, rng);
  const result = writeVerify(all, device, inst, rng.fork('verify'), opts);
  const programmed: Float32Array[] = [];
  const reports: ProgrammingReport[] = [];
  const pulses: WriteVerifyPulses[] = [];
  o = 0;
  for (const t of targets) {
    programmed.push(result.programmed.slice(o, o + t.length));
    pulses.push({ set: result.setPulses.slice(o, o + t.length), reset: result.resetPulses.slice(o, o + t.length) });
    reports.push(programmingReport(all, result, inst, { start: o, count: t.length }));
    o += t.length;
  }
  return { programmed, reports, pulses, total: programmingReport(all, result, inst) };
}

/** The programming report of one mapped layer (the map command prints one per layer). */
export interface LayerProgrammingReport extends ProgrammingReport {
  layer: string;
  kind: string;
  /** The layer's weight matrix: rows (inputs) x outputs. */
  rows: number;
  outputs: number;
  scheme: string;
  arrays: number;
  replicas: number;
  /** Wall time of the programming of this layer, seconds. */
  seconds: number;
  /**
   * The error of rounding the weights to the device's levels (before any programming error): mean
   * and largest |W - W_levels| as a fraction of max|W| (e.g. 15-level weights on an 8-level
   * reference scheme lose what 8 levels cannot hold). Absent in folders written before it.
   */
  levelError?: { mean: number; max: number };
}

/** Reports of several layers as one (the whole network). */
export function totalReport(layers: readonly LayerProgrammingReport[]): ProgrammingReport & { arrays: number; seconds: number } {
  const t = combineReports(layers);
  return { ...t, arrays: layers.reduce((a, l) => a + l.arrays, 0), seconds: layers.reduce((a, l) => a + l.seconds, 0) };
}

function f3(x: number): string {
  return Number(x.toPrecision(3)).toString();
}

/** A printable table of per-layer programming reports, with a total line. */
export function formatLayerReports(layers: readonly LayerProgrammingReport[]): string {
  const head = ['layer', 'kind', 'matrix', 'scheme', 'replicas', 'level err %', 'arrays', 'cells', '|dG| mean uS', '|dG| max uS', 'pulses mean', 'pulses max', 'outside tol', 'stuck'];
  const row = (r: LayerProgrammingReport | (ProgrammingReport & { arrays: number }), label: string, kind: string, matrix: string, scheme: string, replicas: string) => [
    label,
    kind,
    matrix,
    scheme,
    replicas,
    'levelError' in r && r.levelError ? `${f3(100 * r.levelError.mean)}/${f3(100 * r.levelError.max)}` : '',
    String(r.arrays),
    String(r.cells),
    f3(r.meanAbsError),
    f3(r.maxAbsError),
    f3(r.meanPulses),
    String(r.maxPulses),
    String(r.outsideTolerance),
    String(r.stuck),
  ];
  const rows = layers.map((l) => row(l, l.layer, l.kind, `${l.rows}x${l.outputs}`, l.scheme, String(l.replicas)));
  const total = totalReport(layers);
  rows.push(row(total, 'total', '', '', '', ''));
  const widths = head.map((h, j) => Math.max(h.length, ...rows.map((r) => r[j].length)));
  const line = (cells: string[]) => cells.map((c, j) => (j < 4 ? c.padEnd(widths[j]) : c.padStart(widths[j]))).join('  ').trimEnd();
  const tol = layers.length ? f3(layers[0].toleranceUS) : '0';
  return [line(head), line(widths.map((w) => '-'.repeat(w))), ...rows.slice(0, -1).map(line), line(widths.map((w) => '-'.repeat(w))), line(rows[rows.length - 1])].join('\n') +
    `\n(level err = mean/max |W - W on the device's levels| in % of max|W|, before programming; tolerance ${tol} uS; outside tol = cells whose programmed |G - target| exceeds it, stuck cells included; programming took ${f3(total.seconds)} s)`;
}
