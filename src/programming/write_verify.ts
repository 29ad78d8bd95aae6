// Write-verify (closed-loop) programming of all cells of an array or layer at once, and its report.
//
// Each round, every cell still in play is read (with read noise, a new draw per read); a cell whose
// read is within tolerance * (gMax - gMin) of its target is done (converged); any other cell gets
// one SET pulse (read below target) or one RESET pulse (read above) from the pulse model, unless it
// has had maxPulses already (then it stops where it is, not converged). Stuck cells never move,
// but the programmer does not know they are stuck: they take pulses like any cell that is off
// target (the pulse count, and the energy, of a real tuning run). Vectorized over flat typed
// arrays: the work is proportional to the pulses given, with a shrinking list of active cells.
import type { DeviceConfig } from '../device/config';
import { SeededRandom } from '../random';
import { DeviceInstances, STUCK_AT_GMAX, STUCK_AT_GMIN, STUCK_NONE, initialConductances } from './instances';
import { pulseCell } from './pulse';
import { normalStream } from './normal';

const { abs } = Math;

export interface WriteVerifyOptions {
  /**
   * Conductances the cells hold before programming, uS (e.g. the previous state for re-tuning),
   * clipped into each cell's window; stuck cells are at their stuck value whatever is given.
   * Default: fresh cells at their gMinCell (after forming and RESET).
   */
  startFrom?: Float32Array;
  /** Overrides cfg.writeVerify.tolerance (for tolerance sweeps, Park et al.). */
  tolerance?: number;
  /** Overrides cfg.writeVerify.maxPulses. */
  maxPulses?: number;
}

export interface WriteVerifyResult {
  /** The true conductance of each cell after programming, uS (without read noise). */
  programmed: Float32Array;
  /** Pulses each cell received (SET + RESET). */
  pulses: Int32Array;
  /** Of them, SET (potentiating) and RESET (depressing) pulses: the pulse plan `map` records. */
  setPulses: Int32Array;
  resetPulses: Int32Array;
  /** 1 where the last verify read was within tolerance (what the programmer believes), else 0. */
  converged: Uint8Array;
  /** The tolerance used, uS (tolerance * (gMax - gMin)). */
  toleranceUS: number;
  /** The pulse limit used. */
  maxPulses: number;
}

/**
 * Programs every cell towards its target conductance (uS). targets[i] belongs to the cell
 * described by inst[i]; `rng` draws read noise and pulse noise (seeded: same rng state, same
 * result). cfg.writeVerify.mode 'exact' sets each cell to its target clipped to its own window
 * without pulses (the ideal device).
 */
export function writeVerify(
  targets: Float32Array,
  cfg: DeviceConfig,
  inst: DeviceInstances,
  rng: SeededRandom,
  opts: WriteVerifyOptions = {},
): WriteVerifyResult {
  const n = targets.length;
  if (inst.count !== n) throw new RangeError(`targets has ${n} cells but the device instances have ${inst.count}`);
  const tolerance = opts.tolerance ?? cfg.writeVerify.tolerance;
  const maxPulses = opts.maxPulses ?? cfg.writeVerify.maxPulses;
  if (!(tolerance >= 0 && tolerance < 1)) throw new RangeError(`tolerance must be in [0, 1), got ${tolerance}`);
  if (!Number.isInteger(maxPulses) || maxPulses < 0) throw new RangeError(`maxPulses must be an integer >= 0, got ${maxPulses}`);
  const tolUS = tolerance * (cfg.gMax - cfg.gMin);

  const g = initialConductances(inst);
  if (opts.startFrom) {
    if (opts.startFrom.length !== n) throw new RangeError(`startFrom has ${opts.startFrom.length} cells, targets has ${n}`);
    for (let i = 0; i < n; i++) {
      if (inst.stuck[i] !== STUCK_NONE) continue;
      const v = opts.startFrom[i];
      const lo = inst.gMinCell[i];
      const hi = inst.gMaxCell[i];
      g[i] = v < lo ? lo : v > hi ? hi : Number.isNaN(v) ? lo : v;
    }
  }
  const pulses = new Int32Array(n);
  const setPulses = new Int32Array(n);
  const resetPulses = new Int32Array(n);
  const converged = new Uint8Array(n);

  if (cfg.writeVerify.mode === 'exact') {
    for (let i = 0; i < n; i++) {
      if (inst.stuck[i] === STUCK_NONE) {
        const t = targets[i];
        const lo = inst.gMinCell[i];
        const hi = inst.gMaxCell[i];
        g[i] = t < lo ? lo : t > hi ? hi : t;
      }
      converged[i] = abs(g[i] - targets[i]) <= tolUS ? 1 : 0;
    }
    return { programmed: g, pulses, setPulses, resetPulses, converged, toleranceUS: tolUS, maxPulses };
  }

  const s = cfg.read.noiseSigma;
  const nrm = normalStream(rng);
  const active = new Int32Array(n);
  for (let i = 0; i < n; i++) active[i] = i;
  let nActive = n;
  while (nActive > 0) {
    let m = 0;
    for (let k = 0; k < nActive; k++) {
      const i = active[k];
      let read = g[i];
      if (s > 0) {
        read *= 1 + s * nrm.normal();
        if (read < 0) read = 0;
      }
      const e = read - targets[i];
      if (e <= tolUS && e >= -tolUS) {
        converged[i] = 1;
        continue;
      }
      if (pulses[i] >= maxPulses) continue;
      pulseCell(g, i, e < 0 ? 1 : -1, cfg, inst, nrm);
      pulses[i]++;
      if (e < 0) setPulses[i]++;
      else resetPulses[i]++;
      active[m++] = i;
    }
    nActive = m;
  }
  return { programmed: g, pulses, setPulses, resetPulses, converged, toleranceUS: tolUS, maxPulses };
}

/** What programming an array or layer did (ProgrammingReport of the issue: per layer, per array). */
export interface ProgrammingReport {
  /** Cells programmed. */
  cells: number;
  /** Mean |G - G_target| over the cells, uS (true conductance, no read noise). */
  meanAbsError: number;
  /** Max |G - G_target|, uS. */
  maxAbsError: number;
  /** Pulses per cell: mean and max, and the total (for the programming energy). */
  meanPulses: number;
  maxPulses: number;
  totalPulses: number;
  /** Cells whose true |G - G_target| exceeds the tolerance (stuck cells included). */
  outsideTolerance: number;
  /** Cells the verify read did not accept before the pulse limit. */
  notConverged: number;
  /** Stuck cells, and how many at each bound. */
  stuck: number;
  stuckAtGMin: number;
  stuckAtGMax: number;
  /** The tolerance, uS. */
  toleranceUS: number;
}

/**
 * The report of the cells [start, start + count) (default all) of one writeVerify run: one array
 * of a layer programmed at once, or the whole layer.
 */
export function programmingReport(
  targets: Float32Array,
  result: WriteVerifyResult,
  inst: DeviceInstances,
  range: { start: number; count: number } = { start: 0, count: targets.length },
): ProgrammingReport {
  const { start, count } = range;
  if (start < 0 || count < 0 || start + count > targets.length) {
    throw new RangeError(`cells [${start}, ${start + count}) are outside the ${targets.length} cells`);
  }
  const g = result.programmed;
  let sumErr = 0;
  let maxErr = 0;
  let sumP = 0;
  let maxP = 0;
  let outside = 0;
  let notConv = 0;
  let sMin = 0;
  let sMax = 0;
  for (let i = start; i < start + count; i++) {
    const e = abs(g[i] - targets[i]);
    sumErr += e;
    if (e > maxErr) maxErr = e;
    if (e > result.toleranceUS) outside++;
    const p = result.pulses[i];
    sumP += p;
    if (p > maxP) maxP = p;
    if (!result.converged[i]) notConv++;
    if (inst.stuck[i] === STUCK_AT_GMIN) sMin++;
    else if (inst.stuck[i] === STUCK_AT_GMAX) sMax++;
  }
  return {
    cells: count,
    meanAbsError: count ? sumErr / count : 0,
    maxAbsError: maxErr,
    meanPulses: count ? sumP / count : 0,
    maxPulses: maxP,
    totalPulses: sumP,
    outsideTolerance: outside,
    notConverged: notConv,
    stuck: sMin + sMax,
    stuckAtGMin: sMin,
    stuckAtGMax: sMax,
    toleranceUS: result.toleranceUS,
  };
}

/** Reports of several arrays (or replicas) added into one (a layer's, or the network's). */
export function combineReports(reports: readonly ProgrammingReport[]): ProgrammingReport {
  const cells = reports.reduce((a, r) => a + r.cells, 0);
  const sum = (f: (r: ProgrammingReport) => number) => reports.reduce((a, r) => a + f(r), 0);
  const totalPulses = sum((r) => r.totalPulses);
  return {
    cells,
    meanAbsError: cells ? sum((r) => r.meanAbsError * r.cells) / cells : 0,
    maxAbsError: reports.reduce((a, r) => Math.max(a, r.maxAbsError), 0),
    meanPulses: cells ? totalPulses / cells : 0,
    maxPulses: reports.reduce((a, r) => Math.max(a, r.maxPulses), 0),
    totalPulses,
    outsideTolerance: sum((r) => r.outsideTolerance),
    notConverged: sum((r) => r.notConverged),
    stuck: sum((r) => r.stuck),
    stuckAtGMin: sum((r) => r.stuckAtGMin),
    stuckAtGMax: sum((r) => r.stuckAtGMax),
    toleranceUS: reports.length ? Math.max(...reports.map((r) => r.toleranceUS)) : 0,
  };
}

/** One printable line of a report. */
export function formatProgrammingReport(label: string, r: ProgrammingReport): string {
  const f = (x: number) => Number(x.toPrecision(3)).toString();
  return (
    `${label}: ${r.cells} cells, |G - target| mean ${f(r.meanAbsError)} max ${f(r.maxAbsError)} uS, ` +
    `pulses mean ${f(r.meanPulses)} max ${r.maxPulses}, outside tolerance (${f(r.toleranceUS)} uS) ${r.outsideTolerance}, ` +
    `not converged ${r.notConverged}, stuck ${r.stuck} (${r.stuckAtGMin} at gMin, ${r.stuckAtGMax} at gMax)`
  );
}
