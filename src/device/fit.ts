// Fitting a device model to measured pulse trains (`memristor-tfjs fit-device`): the conductance
// window of every measured device (their spread is the device-to-device variation), the step of
// one pulse and how it depends on G, the SET/RESET asymmetry and the cycle-to-cycle noise, as the
// fields of a DeviceConfig that extends a preset. Pure library: text in, numbers out.
//
// Input (CSV, one reading a row, in pulse order):
//   device,cycle,pulse,polarity,conductance_uS   polarity set or reset; row `pulse` k is the
//                                                conductance read after k pulses of its train
//   pulse,conductance_uS                         one device, potentiation then depression: the
//                                                turn-around is detected (or the pulse numbers
//                                                restart once, at the depression)
// Models:
//   'soft-bounds'  per device, the SET steps regressed on G give dG = aS (hi - G), the RESET steps
//                  dG = -aR (G - lo): the bounds hi, lo are where the steps vanish (extrapolated,
//                  so ramps that never saturate still give their bound), dgSet = aS (hi - lo),
//                  dgReset = aR (hi - lo). aihwkit's SoftBounds, the project's 'softBounds'.
//   'exponential'  NeuroSim's nonlinear LTP/LTD: the step linear in the place x in the device's
//                  window (from its plateaus), dG = dgSet (1 - nlSet x); pulse model 'exponential'.
//   'lookup'       the mean and the spread of dG per polarity in bins of x: pulse model 'lookup'.
// Every model: nominal gMax, gMin = the geometric means of the devices' bounds (the medians of the
// lognormal d2d model), rOnSigma, rOffSigma = the standard deviations of their logs less the part
// that estimation noise explains; each device's step scale s (stepSigma the same way); c2cSigma
// the relative spread of the steps around the model, steps clipped at a bound left out.
import { FileFormatError } from '../errors';
import { SeededRandom } from '../random';
import type { DeviceConfig, PulseConfig, PulseTable } from './config';
import { D2D_TRUNCATION, LOOKUP_MAX_BINS, mergeDeviceConfig, validateDeviceConfig } from './config';
import { meanStep, pulseCell } from '../programming/pulse';
import { normalStream } from '../programming/normal';
import type { DeviceInstances } from '../programming/instances';
import { readTextFile } from '../input_files';

const { abs, exp, log, max, min, sqrt, round, floor, ceil } = Math;

export type Polarity = 'set' | 'reset';

/** One measured pulse train: the readings of one device during consecutive pulses of one polarity. */
export interface PulseTrain {
  device: string;
  cycle: string;
  polarity: Polarity;
  /** Pulse numbers, increasing (fractional where a curve was digitised). */
  pulse: Float64Array;
  /** Conductance read at each, uS. */
  g: Float64Array;
  /** The 1-based line of each reading in the file. */
  rows: Int32Array;
}

export interface PulseData {
  /** The file (or name) the data came from, for messages. */
  source: string;
  /** 'long': device,cycle,pulse,polarity,conductance_uS; 'two-column': pulse,conductance_uS. */
  form: 'long' | 'two-column';
  trains: PulseTrain[];
  /** Device names in order of first appearance. */
  devices: string[];
  /** Readings (data rows). */
  readings: number;
}

export const FIT_MODELS = ['soft-bounds', 'exponential', 'lookup'] as const;
export type FitModel = (typeof FIT_MODELS)[number];

/** Columns of the long form, as the header names them (case does not matter). */
export const LONG_COLUMNS = ['device', 'cycle', 'pulse', 'polarity', 'conductance_uS'] as const;
/** Fewest readings a file must hold, and fewest steps of each polarity for each device. */
export const MIN_READINGS = 10;
export const MIN_STEPS_PER_DEVICE = 3;

const POLARITY_WORDS: Record<string, Polarity> = {
  set: 'set',
  reset: 'reset',
  ltp: 'set',
  ltd: 'reset',
  potentiation: 'set',
  depression: 'reset',
};

function fail(source: string, row: number, column: string | null, problem: string): never {
  throw new FileFormatError(source, `row ${row}${column ? `, column ${column}` : ''}: ${problem}`);
}

function showField(s: string): string {
  return s.length > 30 ? `'${s.slice(0, 27)}...'` : `'${s}'`;
}

/**
 * Parses pulse trains from CSV text (see the file comment for the two forms). Blank lines and
 * lines starting with '#' are skipped; columns are found by their header names, extra columns are
 * ignored. Every problem is a FileFormatError naming `source`, the row (1-based line) and the
 * column: a missing column, a field that is not a number, a negative or NaN conductance, an
 * unknown polarity, pulse numbers that do not increase within a train, too few readings, a file
 * or a device with one polarity only.
 */
export function parsePulseCsv(text: string, source: string, progress: { onLines?: (done: number, total: number) => void; every?: number } = {}): PulseData {
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  const lines = text.split('\n');
  let li = 0;
  const clean = (l: string) => (l.endsWith('\r') ? l.slice(0, -1) : l).trim();
  while (li < lines.length && (clean(lines[li]) === '' || clean(lines[li]).startsWith('#'))) li++;
  if (li >= lines.length) fail(source, 1, null, `no header: expected ${LONG_COLUMNS.join(',')} or pulse,conductance_uS`);
  const headerRow = li + 1;
  const names = clean(lines[li]).split(',').map((h) => h.trim().replace(/^"(.*)"$/, '$1'));
  const lower = names.map((h) => h.toLowerCase());
  const col = (name: string) => lower.indexOf(name.toLowerCase());
  const isLong = ['device', 'cycle', 'polarity'].some((c) => col(c) >= 0);
  const required: readonly string[] = isLong ? LONG_COLUMNS : ['pulse', 'conductance_uS'];
  for (const c of required) {
    if (col(c) < 0) {
      fail(
        source,
        headerRow,
        c,
        `missing from the header (it has ${names.join(', ') || 'nothing'}; expected ${LONG_COLUMNS.join(',')} or pulse,conductance_uS)`,
      );
    }
  }
  const iPulse = col('pulse');
  const iG = col('conductance_uS');
  const iDev = col('device');
  const iCyc = col('cycle');
  const iPol = col('polarity');
  const nCols = names.length;

  // Readings of each train (long form) or of the one curve (two-column form).
  interface Builder { device: string; cycle: string; polarity: Polarity; pulse: number[]; g: number[]; rows: number[] }
  const trains = new Map<string, Builder>();
  const order: Builder[] = [];
  const curve: Builder = { device: '0', cycle: '0', polarity: 'set', pulse: [], g: [], rows: [] };
  let readings = 0;
  let lastRow = headerRow;
  let restartAt = 0;
  let prevDevice = '';
  let prevCycle = '';
  let prevWord = '';
  let prev: Builder | null = null;
  // a file of many millions of lines takes seconds to parse: say how far it got
  const every = progress.every ?? 1_000_000;
  for (li = headerRow; li < lines.length; li++) {
    if (progress.onLines && li > headerRow && (li - headerRow) % every === 0) progress.onLines(li - headerRow, lines.length - headerRow);
    let line = lines[li];
    if (line.charCodeAt(line.length - 1) === 13) line = line.slice(0, -1);
    if (line === '' || line.charCodeAt(0) <= 32) line = line.trim();
    if (line === '' || line.charCodeAt(0) === 35 /* # */) continue;
    const row = li + 1;
    lastRow = row;
    const f = line.split(',');
    if (f.length < nCols) fail(source, row, names[f.length], `missing: the row has ${f.length} fields, the header ${nCols}`);
    if (f.length > nCols) fail(source, row, `${nCols + 1}`, `the row has ${f.length} fields, the header only ${nCols}`);
    const ps = f[iPulse];
    const p = ps.trim() === '' ? NaN : Number(ps);
    if (!Number.isFinite(p)) fail(source, row, names[iPulse], `not a number: ${showField(ps.trim())}`);
    const gs = f[iG];
    const g = gs.trim() === '' ? NaN : Number(gs);
    if (!Number.isFinite(g)) fail(source, row, names[iG], `not a conductance: ${showField(gs.trim())} (a finite number of uS is needed)`);
    if (g < 0) fail(source, row, names[iG], `negative conductance ${gs.trim()} (conductances in uS are >= 0; convert relative units or currents to uS first)`);
    readings++;
    let b: Builder;
    if (isLong) {
      const dv = f[iDev];
      const cy = f[iCyc];
      const wd = f[iPol];
      if (prev !== null && dv === prevDevice && cy === prevCycle && wd === prevWord) b = prev;
      else {
        const device = dv.trim();
        const cycle = cy.trim();
        const word = wd.trim();
        const polarity = POLARITY_WORDS[word.toLowerCase()];
        if (device === '') fail(source, row, names[iDev], 'empty (every reading names its device)');
        if (!polarity) fail(source, row, names[iPol], `must be set or reset, got ${showField(word)}`);
        const key = `${device}\u0000${cycle}\u0000${polarity}`;
        let t = trains.get(key);
        if (!t) {
          t = { device, cycle, polarity, pulse: [], g: [], rows: [] };
          trains.set(key, t);
          order.push(t);
        }
        b = t;
        prev = t;
        prevDevice = dv;
        prevCycle = cy;
        prevWord = wd;
      }
      const last = b.pulse.length ? b.pulse[b.pulse.length - 1] : -Infinity;
      if (!(p > last)) {
        fail(
          source,
          row,
          names[iPulse],
          `pulse ${ps.trim()} does not follow pulse ${last} (row ${b.rows[b.rows.length - 1]}) of the same train ` +
            `(device ${b.device}, cycle ${b.cycle}, ${b.polarity}): rows must be in pulse order`,
        );
      }
    } else {
      b = curve;
      const last = b.pulse.length ? b.pulse[b.pulse.length - 1] : -Infinity;
      if (!(p > last)) {
        // The depression may be numbered anew (once); anything else is out of order.
        if (p < last && restartAt === 0 && b.pulse.length >= 2) restartAt = b.pulse.length;
        else {
          fail(
            source,
            row,
            names[iPulse],
            `pulse ${ps.trim()} does not follow pulse ${last} (row ${b.rows[b.rows.length - 1]}): rows must be in pulse order ` +
              '(the two-column form may restart its numbering once, where depression begins)',
          );
        }
      }
    }
    b.pulse.push(p);
    b.g.push(g);
    b.rows.push(row);
  }
  if (readings < MIN_READINGS) {
    fail(source, lastRow, names[iG], `too few points: ${readings} reading${readings === 1 ? '' : 's'}, fit-device needs at least ${MIN_READINGS}`);
  }
  const built = isLong ? order : splitCurve(curve, restartAt, source, names[iG]);
  const out: PulseTrain[] = built.map((t) => ({
    device: t.device,
    cycle: t.cycle,
    polarity: t.polarity,
    pulse: Float64Array.from(t.pulse),
    g: Float64Array.from(t.g),
    rows: Int32Array.from(t.rows),
  }));
  const data: PulseData = { source, form: isLong ? 'long' : 'two-column', trains: out, devices: [...new Set(out.map((t) => t.device))], readings };
  checkCoverage(data, isLong ? names[iPol] : names[iG], names[iG]);
  return data;
}

/** Reads and parses a pulse-train CSV file (parsePulseCsv); a missing file is a FileFormatError. */
export function readPulseCsv(file: string, onLines?: (done: number, total: number) => void): PulseData {
  return parsePulseCsv(readTextFile(file), file, { onLines });
}

interface Piece { device: string; cycle: string; polarity: Polarity; pulse: number[]; g: number[]; rows: number[] }

/**
 * The two-column curve cut into trains: at the restart of the pulse numbers if there is one, else
 * at every turn-around of the smoothed curve (a zigzag with a hysteresis of a quarter of its
 * range, so noise does not make turns); the turning reading ends one train and starts the next.
 */
function splitCurve(c: Piece, restartAt: number, source: string, gColumn: string): Piece[] {
  const n = c.g.length;
  const cuts: { end: number; start: number }[] = []; // train k is [start_k, end_{k+1}]
  if (restartAt > 0) cuts.push({ end: restartAt - 1, start: restartAt });
  else {
    const h = max(1, floor(n / 40));
    const sm = movingAverage(c.g, h);
    let lo = Infinity;
    let hi = -Infinity;
    for (const v of sm) {
      lo = min(lo, v);
      hi = max(hi, v);
    }
    const thr = 0.25 * (hi - lo);
    let dir = 0;
    let i0 = 1;
    for (; i0 < n && dir === 0; i0++) if (abs(sm[i0] - sm[0]) >= thr && thr > 0) dir = sm[i0] > sm[0] ? 1 : -1;
    let ext = 0;
    for (let i = 1; i < n && dir !== 0; i++) {
      if (dir > 0 ? sm[i] >= sm[ext] : sm[i] <= sm[ext]) ext = i;
      else if (abs(sm[ext] - sm[i]) >= thr) {
        // the raw extreme near the smoothed one is the turning reading
        let t = ext;
        for (let j = max(0, ext - h); j <= min(n - 1, ext + h); j++) if (dir > 0 ? c.g[j] > c.g[t] : c.g[j] < c.g[t]) t = j;
        const prev = cuts.length ? cuts[cuts.length - 1].start : 0;
        if (t > prev && t < n - 1) cuts.push({ end: t, start: t });
        dir = -dir;
        ext = i;
      }
    }
  }
  const bounds = [0, ...cuts.map((k) => k.start)];
  const ends = [...cuts.map((k) => k.end), n - 1];
  const pieces: Piece[] = [];
  for (let k = 0; k < bounds.length; k++) {
    const a = bounds[k];
    const b = ends[k];
    if (b - a < 1) continue;
    const g = c.g.slice(a, b + 1);
    const q = max(1, ceil(g.length / 10));
    const trend = mean(g.slice(g.length - q)) - mean(g.slice(0, q));
    pieces.push({
      device: c.device,
      cycle: String(pieces.length >> 1),
      polarity: trend >= 0 ? 'set' : 'reset',
      pulse: c.pulse.slice(a, b + 1),
      g,
      rows: c.rows.slice(a, b + 1),
    });
  }
  if (pieces.length < 2) {
    const rising = pieces.length === 1 && pieces[0].polarity === 'set';
    fail(
      source,
      c.rows[n - 1],
      gColumn,
      `one polarity only: the curve ${rising ? 'rises' : 'falls'} throughout (no turn-around between potentiation and depression found)`,
    );
  }
  return pieces;
}

function movingAverage(v: number[], h: number): Float64Array {
  const n = v.length;
  const out = new Float64Array(n);
  const pre = new Float64Array(n + 1);
  for (let i = 0; i < n; i++) pre[i + 1] = pre[i] + v[i];
  for (let i = 0; i < n; i++) {
    const a = max(0, i - h);
    const b = min(n, i + h + 1);
    out[i] = (pre[b] - pre[a]) / (b - a);
  }
  return out;
}

function mean(v: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < v.length; i++) s += v[i];
  return v.length ? s / v.length : NaN;
}

/** Both polarities in the file and, for every device, at least MIN_STEPS_PER_DEVICE steps of each. */
function checkCoverage(data: PulseData, polColumn: string, gColumn: string): void {
  const steps = new Map<string, { set: number; reset: number; row: number }>();
  for (const t of data.trains) {
    let s = steps.get(t.device);
    if (!s) steps.set(t.device, (s = { set: 0, reset: 0, row: t.rows[0] }));
    s[t.polarity] += t.g.length - 1;
    s.row = min(s.row, t.rows[0]);
  }
  const all = { set: 0, reset: 0 };
  for (const s of steps.values()) {
    all.set += s.set;
    all.reset += s.reset;
  }
  for (const pol of ['set', 'reset'] as const) {
    if (all[pol] === 0) {
      const other = pol === 'set' ? 'reset' : 'set';
      fail(data.source, data.trains[0].rows[0], polColumn, `one polarity only: every train is ${other}, fit-device needs both set and reset pulse trains`);
    }
  }
  for (const [device, s] of steps) {
    for (const pol of ['set', 'reset'] as const) {
      if (s[pol] < MIN_STEPS_PER_DEVICE) {
        const column = s[pol] === 0 ? polColumn : gColumn;
        const what = s[pol] === 0 ? `has no ${pol} train (one polarity only)` : `has ${s[pol]} ${pol} step${s[pol] === 1 ? '' : 's'} (too few points)`;
        fail(data.source, s.row, column, `device ${device} ${what}: fit-device needs at least ${MIN_STEPS_PER_DEVICE} steps of each polarity per device`);
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Fitting

/** What fit-device writes: the fields of a DeviceConfig that the fit sets (over a preset). */
export interface FittedFields {
  gMin: number;
  gMax: number;
  pulse: PulseConfig;
  variation: { rOnSigma: number; rOffSigma: number; stepSigma: number };
}

/** How well the fitted model explains the steps of one polarity. */
export interface FitQuality {
  /** 1 - SS(residual) / SS(total) of the measured per-pulse steps dG against the model's mean step. */
  r2: number;
  /** RMS of dG - model, uS. */
  rmsUS: number;
  /** Steps (pulses) used. */
  points: number;
  devices: number;
  trains: number;
  /** R^2 of a lookup table of the same data (the mean dG in bins of G): what any G-only step model can reach. */
  r2Lookup: number;
  /** RMS of the fitted model's simulated mean curve against the measured one, as a fraction of the window gMax - gMin. */
  meanCurveRms: number;
}

/** One measured device as the fit sees it. */
export interface FittedDevice {
  device: string;
  /** Its bounds (gMinCell, gMaxCell), uS. */
  gMin: number;
  gMax: number;
  /** Its step scale s (variation.stepSigma's draw). */
  stepScale: number;
  /** Where the soft-bounds regression could not be used: the bounds from the plateaus. */
  fallback?: boolean;
}

/** Mean measured and simulated conductance after k pulses of a train, per polarity. */
export interface MeanCurves {
  pulses: number[];
  measured: number[];
  fitted: number[];
  /** Trains that reach pulse k. */
  count: number[];
}

export interface DeviceFit {
  model: FitModel;
  source: string;
  form: PulseData['form'];
  readings: number;
  /** The fields fit-device writes over the preset. */
  fields: FittedFields;
  /** The whole validated device: the base (preset) with the fields. */
  config: DeviceConfig;
  /** dgSet / dgReset. */
  asymmetry: number;
  quality: { set: FitQuality; reset: FitQuality };
  devices: FittedDevice[];
  curves: { set: MeanCurves; reset: MeanCurves };
  /** Where the data do not fit the model well, or a value had to be limited to make a valid device. */
  warnings: string[];
  /** Time of the fit (after parsing), ms. */
  ms: number;
}

export interface FitOptions {
  /** Model to fit; default 'soft-bounds'. */
  model?: FitModel;
  /** The device the fitted fields go over (periphery, levels, write-verify...): a preset's config. */
  base: DeviceConfig;
  /** Lookup bins; default 32. */
  bins?: number;
  /** Seed of the simulated trains (mean curves); default 1. */
  seed?: number;
  /** Called as each stage of the fit begins (a sentence: what it does, on how much). */
  onStage?: (stage: string) => void;
}

/**
 * The per-pulse steps of all trains, flat: between consecutive readings of a train, the change
 * divided by the pulses between them (readings further apart than one pulse count as that many
 * equal steps; a digitised curve's fractional positions as they are).
 */
interface Steps {
  n: number;
  /** G before the step, uS. */
  g0: Float64Array;
  /** Conductance change per pulse, uS. */
  dg: Float64Array;
  dev: Int32Array;
  /** 1 SET, 0 RESET. */
  set: Uint8Array;
  /** 1 where the reading after the step sits at the device's bound (a clipped step, biased). */
  clipped: Uint8Array;
}

function collectSteps(data: PulseData, devIndex: Map<string, number>): Steps {
  let n = 0;
  for (const t of data.trains) n += t.g.length - 1;
  const s: Steps = {
    n,
    g0: new Float64Array(n),
    dg: new Float64Array(n),
    dev: new Int32Array(n),
    set: new Uint8Array(n),
    clipped: new Uint8Array(n),
  };
  // A device's extreme reading, when it occurs more than once, is a bound the readings are clipped at.
  const D = devIndex.size;
  const gHi = new Float64Array(D).fill(-Infinity);
  const gLo = new Float64Array(D).fill(Infinity);
  const nHi = new Int32Array(D);
  const nLo = new Int32Array(D);
  for (const t of data.trains) {
    const d = devIndex.get(t.device)!;
    // (a train's first reading is the state the previous train left: not a reading of its own)
    for (let i = 1; i < t.g.length; i++) {
      const v = t.g[i];
      if (v > gHi[d]) (gHi[d] = v), (nHi[d] = 0);
      if (v === gHi[d]) nHi[d]++;
      if (v < gLo[d]) (gLo[d] = v), (nLo[d] = 0);
      if (v === gLo[d]) nLo[d]++;
    }
  }
  let k = 0;
  for (const t of data.trains) {
    const d = devIndex.get(t.device)!;
    const up = t.polarity === 'set' ? 1 : 0;
    for (let i = 1; i < t.g.length; i++, k++) {
      s.g0[k] = t.g[i - 1];
      s.dg[k] = (t.g[i] - t.g[i - 1]) / (t.pulse[i] - t.pulse[i - 1]);
      s.dev[k] = d;
      s.set[k] = up;
      s.clipped[k] = (up && nHi[d] > 1 && t.g[i] === gHi[d]) || (!up && nLo[d] > 1 && t.g[i] === gLo[d]) ? 1 : 0;
    }
  }
  return s;
}

/** Per device, the plateaus its trains reach: the median over SET trains of their last readings' median (and RESET). */
function plateaus(data: PulseData, devIndex: Map<string, number>): { hi: Float64Array; lo: Float64Array; varLogHi: Float64Array; varLogLo: Float64Array } {
  const D = devIndex.size;
  const his: number[][] = Array.from({ length: D }, () => []);
  const los: number[][] = Array.from({ length: D }, () => []);
  for (const t of data.trains) {
    const q = max(1, min(5, ceil(t.g.length / 10)));
    const end = median(Array.from(t.g.subarray(t.g.length - q)));
    (t.polarity === 'set' ? his : los)[devIndex.get(t.device)!].push(end);
  }
  const hi = new Float64Array(D);
  const lo = new Float64Array(D);
  const varLogHi = new Float64Array(D);
  const varLogLo = new Float64Array(D);
  for (let d = 0; d < D; d++) {
    hi[d] = median(his[d]);
    lo[d] = median(los[d]);
    varLogHi[d] = varOfMeanLog(his[d]);
    varLogLo[d] = varOfMeanLog(los[d]);
  }
  return { hi, lo, varLogHi, varLogLo };
}

function median(v: number[]): number {
  if (!v.length) return NaN;
  const s = [...v].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : 0.5 * (s[m - 1] + s[m]);
}

/** The variance of the mean of log(v) (0 for fewer than two positive values). */
function varOfMeanLog(v: number[]): number {
  const l = v.filter((x) => x > 0).map(log);
  if (l.length < 2) return 0;
  const m = mean(l);
  let s = 0;
  for (const x of l) s += (x - m) ** 2;
  return s / (l.length - 1) / l.length;
}

/** Sample statistics of log(v) over the positive values: geometric mean and the spread less `noiseVar` (the mean estimation variance). */
function logStats(v: ArrayLike<number>, noiseVar: ArrayLike<number>): { geo: number; sigma: number; count: number } {
  const l: number[] = [];
  let nv = 0;
  for (let i = 0; i < v.length; i++) {
    if (v[i] > 0 && Number.isFinite(v[i])) {
      l.push(log(v[i]));
      nv += noiseVar[i];
    }
  }
  if (!l.length) return { geo: NaN, sigma: 0, count: 0 };
  const m = mean(l);
  if (l.length < 2) return { geo: exp(m), sigma: 0, count: l.length };
  let s = 0;
  for (const x of l) s += (x - m) ** 2;
  const varLog = s / (l.length - 1);
  return { geo: exp(m), sigma: sqrt(max(0, varLog - nv / l.length)), count: l.length };
}

/** Weighted least squares y = a + b u from the sums of one group (w: the weights, n: the points). */
interface Sums { n: number; w: number; u: number; y: number; uu: number; uy: number; yy: number }
const newSums = (): Sums => ({ n: 0, w: 0, u: 0, y: 0, uu: 0, uy: 0, yy: 0 });
function addSum(s: Sums, u: number, y: number, w = 1): void {
  s.n++;
  s.w += w;
  s.u += w * u;
  s.y += w * y;
  s.uu += w * u * u;
  s.uy += w * u * y;
  s.yy += w * y * y;
}
/**
 * The line, and what its uncertainty needs: sigma2 the weighted residual variance, so that
 * var(b) = sigma2 / sxx and var(a + b u) = sigma2 (1 / sw + (u - ubar)^2 / sxx).
 */
function regress(s: Sums): { a: number; b: number; sigma2: number; sxx: number; ubar: number; sw: number } {
  const ubar = s.u / s.w;
  const ybar = s.y / s.w;
  const sxx = s.uu - s.w * ubar * ubar;
  const sxy = s.uy - s.w * ubar * ybar;
  const syy = s.yy - s.w * ybar * ybar;
  const b = sxx > 0 ? sxy / sxx : NaN;
  const a = ybar - b * ubar;
  const sigma2 = s.n > 2 ? max(0, syy - b * sxy) / (s.n - 2) : NaN;
  return { a, b, sigma2, sxx, ubar, sw: s.w };
}

/** The per-device windows and step scales, and the nominal pulse config, of one model (before c2c). */
interface ModelEstimate {
  lo: Float64Array;
  hi: Float64Array;
  scale: Float64Array;
  varLogLo: Float64Array;
  varLogHi: Float64Array;
  varLogScale: Float64Array;
  pulse: PulseConfig;
  fallback: Uint8Array;
}

/**
 * Fits `model` to the trains and returns the device fields, the validated device (the fields over
 * `opts.base`), the quality per polarity, each device's fitted window and step scale, the mean
 * curves (measured beside simulated from the fitted model) and warnings where the data do not fit
 * the model well. The result always validates as a device config: values the data push out of
 * range are limited, with a warning.
 */
export function fitDevice(data: PulseData, opts: FitOptions): DeviceFit {
  const t0 = performance.now();
  const model = opts.model ?? 'soft-bounds';
  if (!FIT_MODELS.includes(model)) throw new RangeError(`model must be one of ${FIT_MODELS.join(', ')}, got ${model}`);
  const bins = opts.bins ?? 32;
  if (!Number.isInteger(bins) || bins < 1 || bins > LOOKUP_MAX_BINS) throw new RangeError(`bins must be an integer in [1, ${LOOKUP_MAX_BINS}], got ${bins}`);
  const warnings: string[] = [];
  const devIndex = new Map<string, number>();
  data.devices.forEach((d, i) => devIndex.set(d, i));
  const D = data.devices.length;
  opts.onStage?.(`collecting the steps of ${data.trains.length} pulse trains`);
  const steps = collectSteps(data, devIndex);
  const plat = plateaus(data, devIndex);
  // Where plateaus are no window (a device whose RESET trains end above its SET trains), its range.
  for (let d = 0; d < D; d++) {
    if (!(plat.hi[d] > plat.lo[d])) {
      let lo = Infinity;
      let hi = -Infinity;
      for (const t of data.trains) {
        if (devIndex.get(t.device) !== d) continue;
        for (const v of t.g) (lo = min(lo, v)), (hi = max(hi, v));
      }
      if (!(hi > lo)) {
        const row = data.trains.find((t) => devIndex.get(t.device) === d)!.rows[0];
        fail(data.source, row, 'conductance_uS', `device ${data.devices[d]}: its conductance never changes (${lo} uS throughout): no window to fit`);
      }
      plat.hi[d] = hi;
      plat.lo[d] = lo;
    }
  }

  opts.onStage?.(`fitting ${model} to ${steps.n} steps of ${D} device(s)`);
  const est =
    model === 'soft-bounds'
      ? estimateSoftBounds(steps, plat, D, warnings, data.devices)
      : estimateShape(model, steps, plat, D, bins, warnings);

  // Nominal window and d2d spreads.
  const hiStats = logStats(est.hi, est.varLogHi);
  const loStats = logStats(est.lo, est.varLogLo);
  let gMax = hiStats.geo;
  let gMin = loStats.count === D ? loStats.geo : max(0, median(Array.from(est.lo)));
  let rOnSigma = hiStats.sigma;
  let rOffSigma = loStats.count === D ? loStats.sigma : 0;
  if (loStats.count < D) warnings.push(`${D - loStats.count} device(s) have a lower bound at 0 uS: gMin is their median and rOffSigma 0 (a lognormal spread needs positive bounds)`);
  if (!(gMax > gMin)) {
    gMax = max(...Array.from(est.hi));
    gMin = min(...Array.from(est.lo));
    warnings.push('the devices\' bounds overlap: the window is the whole range measured');
  }
  let stepSigma = logStats(est.scale, est.varLogScale).sigma;
  const clampSigma = (v: number, name: string) => {
    if (v > 2) warnings.push(`${name} ${v.toPrecision(3)} limited to 2 (the config's range)`);
    return min(2, v);
  };
  rOnSigma = clampSigma(rOnSigma, 'variation.rOnSigma');
  rOffSigma = clampSigma(rOffSigma, 'variation.rOffSigma');
  stepSigma = clampSigma(stepSigma, 'variation.stepSigma');
  // A cell's window must not close at the truncation of the d2d draws (validateDeviceConfig).
  const room = gMin > 0 ? log(gMax / gMin) : Infinity;
  if (D2D_TRUNCATION * (rOnSigma + rOffSigma) >= 0.95 * room) {
    const f = (0.95 * room) / (D2D_TRUNCATION * (rOnSigma + rOffSigma));
    warnings.push(
      `the d2d spreads (rOnSigma ${rOnSigma.toPrecision(3)}, rOffSigma ${rOffSigma.toPrecision(3)}) would let a cell's window close ` +
        `at ${D2D_TRUNCATION} sigma: both scaled by ${f.toPrecision(3)}`,
    );
    rOnSigma *= f;
    rOffSigma *= f;
  }

  // Per-device model steps -> c2c, quality, lookup reference.
  const pulse = est.pulse;
  const nominal = { gMin, gMax, pulse };
  const modelStep = new Float64Array(steps.n);
  for (let k = 0; k < steps.n; k++) {
    const d = steps.dev[k];
    const x = (steps.g0[k] - est.lo[d]) / (est.hi[d] - est.lo[d]);
    modelStep[k] = est.scale[d] * meanStep(nominal, x, steps.set[k] ? 1 : -1);
  }
  if (pulse.model !== 'lookup') {
    let num = 0;
    let den = 0;
    for (let k = 0; k < steps.n; k++) {
      if (steps.clipped[k]) continue;
      num += (steps.dg[k] - modelStep[k]) ** 2;
      den += modelStep[k] ** 2;
    }
    let c2c = den > 0 ? sqrt(num / den) : 0;
    if (!(c2c <= 2)) {
      warnings.push(
        `the steps scatter ${Number.isFinite(c2c) ? c2c.toPrecision(3) + 'x' : 'far beyond'} the model's step: c2cSigma limited to 2 ` +
          '(a relative pulse noise cannot express it; the spread may be read noise, or the model may not fit: try --model lookup)',
      );
      c2c = 2;
    }
    pulse.c2cSigma = c2c;
  }
  const quality = {
    set: qualityOf(steps, modelStep, est, 1, data),
    reset: qualityOf(steps, modelStep, est, 0, data),
  };
  for (const pol of ['set', 'reset'] as const) {
    const q = quality[pol];
    // (only where the G-dependence explains a fair part of the steps' spread: else R^2 says little)
    if (model !== 'lookup' && q.r2Lookup >= 0.2 && q.r2Lookup - q.r2 > 0.05) {
      warnings.push(
        `the ${model} form misses part of how the ${pol.toUpperCase()} step depends on G (R^2 ${q.r2.toFixed(3)} against ` +
          `${q.r2Lookup.toFixed(3)} for a lookup table of the same data): try --model lookup${model === 'soft-bounds' ? ' or --model exponential' : ''}`,
      );
    }
  }

  const fields: FittedFields = {
    gMin: tidy(gMin),
    gMax: tidy(gMax),
    pulse: tidyPulse(pulse),
    variation: { rOnSigma: tidy(rOnSigma), rOffSigma: tidy(rOffSigma), stepSigma: tidy(stepSigma) },
  };
  if (fields.pulse.model === 'lookup') {
    // The table spans the window exactly (its bins were laid over the same geometric means).
    const e = fields.pulse.table.edges;
    e[0] = fields.gMin;
    e[e.length - 1] = fields.gMax;
  }
  const merged = mergeDeviceConfig(JSON.parse(JSON.stringify(opts.base)), JSON.parse(JSON.stringify(fields)));
  const config = validateDeviceConfig(merged);
  const devices: FittedDevice[] = data.devices.map((name, d) => ({
    device: name,
    gMin: tidy(est.lo[d]),
    gMax: tidy(est.hi[d]),
    stepScale: tidy(est.scale[d]),
    ...(est.fallback[d] ? { fallback: true } : {}),
  }));
  opts.onStage?.(`simulating the ${data.trains.length} measured trains on the fitted device (the mean curves)`);
  const curves = simulatedCurves(data, devIndex, config, est, opts.seed ?? 1);
  const window = config.gMax - config.gMin;
  quality.set.meanCurveRms = curveRms(curves.set, window);
  quality.reset.meanCurveRms = curveRms(curves.reset, window);
  return {
    model,
    source: data.source,
    form: data.form,
    readings: data.readings,
    fields,
    config,
    asymmetry: fields.pulse.dgSet / fields.pulse.dgReset,
    quality,
    devices,
    curves,
    warnings,
    ms: performance.now() - t0,
  };
}

/** Six significant digits: the JSON stays readable and the values exact enough. */
function tidy(v: number): number {
  return Number(v.toPrecision(6));
}

function tidyPulse(p: PulseConfig): PulseConfig {
  const base = { dgSet: tidy(p.dgSet), dgReset: tidy(p.dgReset), c2cSigma: tidy(p.c2cSigma) };
  if (p.model === 'exponential') return { model: p.model, ...base, nonlinearitySet: tidy(p.nonlinearitySet), nonlinearityReset: tidy(p.nonlinearityReset) };
  if (p.model === 'lookup') {
    const t = p.table;
    const r = (v: number[]) => v.map(tidy);
    return { model: p.model, ...base, table: { edges: t.edges.map((v) => Number(v.toPrecision(10))), setMean: r(t.setMean), setStd: r(t.setStd), resetMean: r(t.resetMean), resetStd: r(t.resetStd) } };
  }
  return { model: p.model, ...base };
}

/** A positive step for the config (> 0), with a warning where the data gave none. */
function positiveStep(v: number, name: string, fallbackValue: number, warnings: string[]): number {
  if (v > 0 && Number.isFinite(v)) return v;
  warnings.push(`${name}: the data give no step in its direction (${Number.isFinite(v) ? v.toPrecision(3) : v} uS); set to ${fallbackValue.toPrecision(3)} uS`);
  return fallbackValue;
}

/**
 * Soft bounds, per device: SET steps dG = aS hi - aS G and RESET steps dG = aR lo - aR G by least
 * squares (clipped steps left out), so hi and lo are where the steps vanish; where a regression
 * says the steps do not shrink towards the bound (or puts the bound far outside what was
 * measured), the device's plateaus are its bounds and its steps a ratio estimate.
 */
function estimateSoftBounds(steps: Steps, plat: ReturnType<typeof plateaus>, D: number, warnings: string[], names: string[]): ModelEstimate {
  // Least squares, then twice weighted by 1 / var(dG) with var = C m^2 + A (m the fitted step):
  // the pulse noise is relative (C = c2c^2), so the small steps near a bound, which locate it,
  // are the precise ones; A (an additive noise, e.g. read noise, fitted as well) keeps the weights
  // bounded.
  let setS: Sums[] = [];
  let resetS: Sums[] = [];
  const line = new Float64Array(4 * D).fill(NaN); // per device: a, b of SET; a, b of RESET
  for (let pass = 0; pass < 3; pass++) {
    const varModel = [0, 1].map((up) => (pass === 0 ? null : noiseModel(steps, line, up)));
    setS = Array.from({ length: D }, newSums);
    resetS = Array.from({ length: D }, newSums);
    for (let k = 0; k < steps.n; k++) {
      if (steps.clipped[k]) continue;
      const d = steps.dev[k];
      const up = steps.set[k];
      let w = 1;
      const vm = varModel[up];
      const a = line[4 * d + (up ? 0 : 2)];
      const b = line[4 * d + (up ? 1 : 3)];
      if (vm && b < 0) {
        const m = a + b * steps.g0[k];
        w = 1 / (vm.C * m * m + vm.A);
      }
      addSum((up ? setS : resetS)[d], steps.g0[k], steps.dg[k], w);
    }
    for (let d = 0; d < D; d++) {
      const rs = regress(setS[d]);
      const rr = regress(resetS[d]);
      line.set([rs.a, rs.b, rr.a, rr.b], 4 * d);
    }
  }
  const lo = new Float64Array(D);
  const hi = new Float64Array(D);
  const varLogLo = new Float64Array(D);
  const varLogHi = new Float64Array(D);
  const dgS = new Float64Array(D);
  const dgR = new Float64Array(D);
  const varLogS = new Float64Array(D);
  const varLogR = new Float64Array(D);
  const fallback = new Uint8Array(D);
  let jumpy = 0;
  for (let d = 0; d < D; d++) {
    const rs = regress(setS[d]);
    const rr = regress(resetS[d]);
    const aS = -rs.b;
    const aR = -rr.b;
    const h = rs.a / aS;
    const l = rr.a / aR;
    const wP = plat.hi[d] - plat.lo[d];
    const ok =
      aS > 0 && aR > 0 && Number.isFinite(h) && Number.isFinite(l) && h > l &&
      h >= plat.hi[d] - 0.1 * wP && h <= plat.hi[d] + wP && l <= plat.lo[d] + 0.1 * wP && l >= plat.lo[d] - wP;
    if (ok) {
      hi[d] = h;
      lo[d] = max(l, 0);
      const w = hi[d] - lo[d];
      dgS[d] = aS * w;
      dgR[d] = aR * w;
      if (aS > 0.5 || aR > 0.5) jumpy++;
      // Delta method: var(h) = sigma^2 / b^2 (1/n + (h - ubar)^2 / Sxx), var(b) = sigma^2 / Sxx.
      const vh = (rs.sigma2 / (rs.b * rs.b)) * (1 / rs.sw + (h - rs.ubar) ** 2 / rs.sxx);
      const vl = (rr.sigma2 / (rr.b * rr.b)) * (1 / rr.sw + (l - rr.ubar) ** 2 / rr.sxx);
      varLogHi[d] = finiteOr0(vh / (h * h));
      varLogLo[d] = l > 0 ? finiteOr0(vl / (l * l)) : 0;
      const vw = finiteOr0((vh + vl) / (w * w));
      varLogS[d] = finiteOr0(rs.sigma2 / rs.sxx / (aS * aS)) + vw;
      varLogR[d] = finiteOr0(rr.sigma2 / rr.sxx / (aR * aR)) + vw;
    } else {
      fallback[d] = 1;
      hi[d] = plat.hi[d];
      lo[d] = plat.lo[d];
      varLogHi[d] = plat.varLogHi[d];
      varLogLo[d] = plat.varLogLo[d];
      // dG = dg (1 - x) (SET), -dg x (RESET): ratio estimates through the shape.
      const w = hi[d] - lo[d];
      let ns = 0;
      let ds = 0;
      let nr = 0;
      let dr = 0;
      for (let k = 0; k < steps.n; k++) {
        if (steps.dev[k] !== d || steps.clipped[k]) continue;
        const x = min(1, max(0, (steps.g0[k] - lo[d]) / w));
        if (steps.set[k]) (ns += steps.dg[k] * (1 - x)), (ds += (1 - x) * (1 - x));
        else (nr += -steps.dg[k] * x), (dr += x * x);
      }
      dgS[d] = ds > 0 ? ns / ds : NaN;
      dgR[d] = dr > 0 ? nr / dr : NaN;
    }
  }
  const nFall = fallback.reduce((a, b) => a + b, 0);
  if (nFall) {
    const list = names.filter((_, d) => fallback[d]).slice(0, 5).join(', ');
    warnings.push(
      `${nFall} of ${D} device(s) (${list}${nFall > 5 ? ', ...' : ''}): the steps do not shrink towards the bounds as soft bounds do ` +
        '(or the bound would lie far outside what was measured); their bounds are their plateaus: try --model exponential or --model lookup',
    );
  }
  if (jumpy) warnings.push(`${jumpy} device(s): one pulse would cross over half the window: the steps look like read noise rather than pulse response`);

  // Nominal steps: geometric means over the devices with a step; each device's scale the geometric
  // mean of its SET and RESET ratios to them.
  const okS = Array.from(dgS).filter((v) => v > 0 && Number.isFinite(v));
  const okR = Array.from(dgR).filter((v) => v > 0 && Number.isFinite(v));
  const geo = (v: number[]) => (v.length ? exp(mean(v.map(log))) : NaN);
  const wNom = median(Array.from(hi).map((h, d) => h - lo[d]));
  const dgSet = positiveStep(geo(okS), 'pulse.dgSet', 1e-3 * wNom, warnings);
  const dgReset = positiveStep(geo(okR), 'pulse.dgReset', 1e-3 * wNom, warnings);
  const scale = new Float64Array(D);
  const varLogScale = new Float64Array(D);
  for (let d = 0; d < D; d++) {
    const a = dgS[d] > 0 ? log(dgS[d] / dgSet) : NaN;
    const b = dgR[d] > 0 ? log(dgR[d] / dgReset) : NaN;
    const both = [a, b].filter(Number.isFinite);
    scale[d] = both.length ? exp(mean(both)) : 1;
    varLogScale[d] = both.length === 2 ? (varLogS[d] + varLogR[d]) / 4 : varLogS[d] || varLogR[d];
  }
  return { lo, hi, scale, varLogLo, varLogHi, varLogScale, fallback, pulse: { model: 'softBounds', dgSet, dgReset, c2cSigma: 0 } };
}

/**
 * The variance of a step around its fitted value m as C m^2 + A, by least squares of the squared
 * residuals on m^2 over the steps of one polarity (up = 1 SET) of the devices whose line slopes
 * down; A at least a thousandth of the mean squared residual.
 */
function noiseModel(steps: Steps, line: Float64Array, up: number): { C: number; A: number } | null {
  const s = newSums();
  for (let k = 0; k < steps.n; k++) {
    if (steps.clipped[k] || steps.set[k] !== up) continue;
    const d = steps.dev[k];
    const a = line[4 * d + (up ? 0 : 2)];
    const b = line[4 * d + (up ? 1 : 3)];
    if (!(b < 0)) continue;
    const m = a + b * steps.g0[k];
    addSum(s, m * m, (steps.dg[k] - m) ** 2);
  }
  if (s.n < 3) return null;
  const r = regress(s);
  const meanR2 = s.y / s.w;
  if (!(meanR2 > 0)) return null;
  const C = Number.isFinite(r.b) ? max(0, r.b) : 0;
  const A = max(Number.isFinite(r.a) ? r.a : 0, 1e-3 * meanR2);
  return { C, A };
}

function finiteOr0(v: number): number {
  return Number.isFinite(v) ? v : 0;
}

/**
 * Exponential and lookup: the devices' windows are their plateaus; the step's shape in x (a line,
 * or the mean in bins) is fitted to all devices' steps divided by each device's step scale, and
 * the scales (ratio estimates against the shape, geometric mean 1) refined once.
 */
function estimateShape(
  model: 'exponential' | 'lookup',
  steps: Steps,
  plat: ReturnType<typeof plateaus>,
  D: number,
  bins: number,
  warnings: string[],
): ModelEstimate {
  const lo = Float64Array.from(plat.lo);
  const hi = Float64Array.from(plat.hi);
  const x = new Float64Array(steps.n);
  for (let k = 0; k < steps.n; k++) {
    const d = steps.dev[k];
    x[k] = min(1, max(0, (steps.g0[k] - lo[d]) / (hi[d] - lo[d])));
  }
  // Nominal window for the table's edges: geometric means, as fitDevice takes them.
  const gMaxN = logStats(hi, new Float64Array(D)).geo;
  const gMinN = logStats(lo, new Float64Array(D)).count === D ? logStats(lo, new Float64Array(D)).geo : max(0, median(Array.from(lo)));
  const scale = new Float64Array(D).fill(1);
  let pulse: PulseConfig = { model: 'constantStep', dgSet: 1, dgReset: 1, c2cSigma: 0 };
  // The shape is fitted three times (the scales refined in between): its warnings are the last fit's.
  let shapeWarnings: string[] = [];
  const fitShape = (): PulseConfig => {
    shapeWarnings = [];
    if (model === 'exponential') {
      const sS = newSums();
      const sR = newSums();
      for (let k = 0; k < steps.n; k++) {
        if (steps.clipped[k]) continue;
        const y = steps.dg[k] / scale[steps.dev[k]];
        if (steps.set[k]) addSum(sS, x[k], y);
        else addSum(sR, 1 - x[k], -y);
      }
      const line = (s: Sums, name: 'Set' | 'Reset') => {
        const r = regress(s);
        let dg = r.a;
        let nl = r.b === r.b && dg > 0 ? -r.b / dg : NaN;
        const mid = s.y / s.n;
        if (!(dg > 0)) {
          shapeWarnings.push(`pulse.dg${name}: the ${name.toUpperCase()} step at its starting bound is ${dg.toPrecision(3)} uS by the fit; the exponential form needs it > 0 (set from the mean step, nonlinearity -10)`);
          dg = max(abs(mid) / 11, 1e-9);
          nl = -10;
        }
        if (!Number.isFinite(nl)) nl = 0;
        if (nl > 1) {
          shapeWarnings.push(`pulse.nonlinearity${name} ${nl.toPrecision(3)} limited to 1 (soft bounds): the ${name.toUpperCase()} steps vanish before the plateau`);
          nl = 1;
        }
        if (nl < -10) {
          shapeWarnings.push(`pulse.nonlinearity${name} ${nl.toPrecision(3)} limited to -10: the ${name.toUpperCase()} steps grow more than 11x over the window (try --model lookup)`);
          nl = -10;
        }
        return { dg, nl };
      };
      const a = line(sS, 'Set');
      const b = line(sR, 'Reset');
      return { model: 'exponential', dgSet: a.dg, dgReset: b.dg, c2cSigma: 0, nonlinearitySet: a.nl, nonlinearityReset: b.nl };
    }
    // lookup: bins of x over the nominal window
    const K = bins;
    const cnt = [new Float64Array(K), new Float64Array(K)];
    const sum = [new Float64Array(K), new Float64Array(K)];
    const sq = [new Float64Array(K), new Float64Array(K)];
    for (let k = 0; k < steps.n; k++) {
      if (steps.clipped[k]) continue;
      const b = min(K - 1, floor(x[k] * K));
      const y = steps.dg[k] / scale[steps.dev[k]];
      const p = steps.set[k];
      cnt[p][b]++;
      sum[p][b] += y;
      sq[p][b] += y * y;
    }
    const rows = [0, 1].map((p) => {
      const m = new Array<number>(K).fill(NaN);
      const s = new Array<number>(K).fill(NaN);
      for (let b = 0; b < K; b++) {
        const n = cnt[p][b];
        if (n < 1) continue;
        m[b] = sum[p][b] / n;
        s[b] = n > 1 ? sqrt(max(0, (sq[p][b] - n * m[b] * m[b]) / (n - 1))) : NaN;
      }
      return { mean: fillGaps(m, cnt[p], 3), std: fillGaps(s, cnt[p], 3) };
    });
    const edges = Array.from({ length: K + 1 }, (_, b) => (b === K ? gMaxN : gMinN + ((gMaxN - gMinN) * b) / K));
    const table: PulseTable = { edges, setMean: rows[1].mean, setStd: rows[1].std, resetMean: rows[0].mean, resetStd: rows[0].std };
    // Summaries: the SET step in the lowest bin, the RESET step in the highest, the mean relative spread.
    let vs = 0;
    let ms = 0;
    for (const p of [0, 1]) {
      const r = rows[p];
      for (let b = 0; b < K; b++) (vs += cnt[p][b] * r.std[b] ** 2), (ms += cnt[p][b] * r.mean[b] ** 2);
    }
    const wN = gMaxN - gMinN;
    return {
      model: 'lookup',
      dgSet: table.setMean[0] > 0 ? table.setMean[0] : max(...table.setMean.map(abs), 1e-6 * wN),
      dgReset: table.resetMean[K - 1] < 0 ? -table.resetMean[K - 1] : max(...table.resetMean.map(abs), 1e-6 * wN),
      c2cSigma: ms > 0 ? min(2, sqrt(vs / ms)) : 0,
      table,
    };
  };
  const nominal = () => ({ gMin: gMinN, gMax: gMaxN, pulse });
  const varLogScale = new Float64Array(D);
  for (let iter = 0; iter < 2; iter++) {
    pulse = fitShape();
    // Each device's scale: sum(dG m) / sum(m^2) over its steps, m the shape's step.
    const num = new Float64Array(D);
    const den = new Float64Array(D);
    const mStep = new Float64Array(steps.n);
    for (let k = 0; k < steps.n; k++) {
      if (steps.clipped[k]) continue;
      const m = meanStep(nominal(), x[k], steps.set[k] ? 1 : -1);
      mStep[k] = m;
      num[steps.dev[k]] += steps.dg[k] * m;
      den[steps.dev[k]] += m * m;
    }
    const resid = new Float64Array(D);
    for (let k = 0; k < steps.n; k++) {
      if (steps.clipped[k]) continue;
      const d = steps.dev[k];
      const s = den[d] > 0 ? num[d] / den[d] : 1;
      resid[d] += (steps.dg[k] - s * mStep[k]) ** 2 * mStep[k] ** 2;
    }
    const logs: number[] = [];
    for (let d = 0; d < D; d++) {
      const s = den[d] > 0 && num[d] > 0 ? num[d] / den[d] : 1;
      scale[d] = s;
      varLogScale[d] = den[d] > 0 && num[d] > 0 ? finiteOr0(resid[d] / (den[d] * den[d]) / (s * s)) : 0;
      logs.push(log(s));
    }
    const g = exp(mean(logs));
    for (let d = 0; d < D; d++) scale[d] /= g;
  }
  pulse = fitShape();
  warnings.push(...shapeWarnings);
  if (pulse.model !== 'lookup') {
    pulse.dgSet = positiveStep(pulse.dgSet, 'pulse.dgSet', 1e-3 * (gMaxN - gMinN), warnings);
    pulse.dgReset = positiveStep(pulse.dgReset, 'pulse.dgReset', 1e-3 * (gMaxN - gMinN), warnings);
  }
  return { lo, hi, scale, varLogLo: plat.varLogLo, varLogHi: plat.varLogHi, varLogScale, fallback: new Uint8Array(D), pulse };
}

/**
 * Bins with fewer than `minCount` steps take the value interpolated linearly between the nearest
 * bins that have enough (the end bins extend); NaN where no bin has any.
 */
function fillGaps(v: number[], count: Float64Array, minCount: number): number[] {
  const good = v.map((x, b) => Number.isFinite(x) && count[b] >= minCount);
  if (!good.some(Boolean)) {
    const any = v.map((x) => Number.isFinite(x));
    if (!any.some(Boolean)) return v.map(() => 0);
    return fillGaps(v, count.map((c) => (c > 0 ? minCount : 0)), minCount);
  }
  const out = [...v];
  for (let b = 0; b < v.length; b++) {
    if (good[b]) continue;
    let l = b - 1;
    while (l >= 0 && !good[l]) l--;
    let r = b + 1;
    while (r < v.length && !good[r]) r++;
    if (l < 0) out[b] = v[r];
    else if (r >= v.length) out[b] = v[l];
    else out[b] = v[l] + ((v[r] - v[l]) * (b - l)) / (r - l);
  }
  return out;
}

/** Quality of the steps of one polarity (set = 1 or 0) against the model steps; the lookup reference R^2. */
function qualityOf(steps: Steps, modelStep: Float64Array, est: ModelEstimate, set: number, data: PulseData): FitQuality {
  let n = 0;
  let sy = 0;
  let syy = 0;
  let sr = 0;
  const devs = new Set<number>();
  // the reference: mean dG / s in 32 bins of x
  const K = 32;
  const cnt = new Float64Array(K);
  const sum = new Float64Array(K);
  const bin = new Int32Array(steps.n);
  for (let k = 0; k < steps.n; k++) {
    if (steps.set[k] !== set || steps.clipped[k]) continue;
    const d = steps.dev[k];
    const y = steps.dg[k];
    n++;
    sy += y;
    syy += y * y;
    sr += (y - modelStep[k]) ** 2;
    devs.add(d);
    const x = min(1, max(0, (steps.g0[k] - est.lo[d]) / (est.hi[d] - est.lo[d])));
    const b = min(K - 1, floor(x * K));
    bin[k] = b;
    cnt[b]++;
    sum[b] += y / est.scale[d];
  }
  let sl = 0;
  for (let k = 0; k < steps.n; k++) {
    if (steps.set[k] !== set || steps.clipped[k]) continue;
    const b = bin[k];
    sl += (steps.dg[k] - (est.scale[steps.dev[k]] * sum[b]) / cnt[b]) ** 2;
  }
  const sst = syy - (sy * sy) / n;
  const pol = set ? 'set' : 'reset';
  return {
    r2: sst > 0 ? 1 - sr / sst : NaN,
    rmsUS: sqrt(sr / n),
    points: n,
    devices: devs.size,
    trains: data.trains.filter((t) => t.polarity === pol).length,
    r2Lookup: sst > 0 ? 1 - sl / sst : NaN,
    meanCurveRms: NaN,
  };
}

/**
 * Every measured train simulated on the fitted device: each measured device is a cell with its
 * fitted window and step scale, starting where its train starts (clipped into its window) and
 * given the train's pulses (the rounded pulse numbers' differences) by the pulse model itself
 * (pulseCell); `repeats` simulations of each train are averaged. Returns the mean measured and
 * simulated curves per polarity, aligned on the reading index within the train.
 */
function simulatedCurves(
  data: PulseData,
  devIndex: Map<string, number>,
  cfg: DeviceConfig,
  est: ModelEstimate,
  seed: number,
): { set: MeanCurves; reset: MeanCurves } {
  const D = devIndex.size;
  const inst: DeviceInstances = {
    count: D,
    gMinCell: Float32Array.from(est.lo),
    gMaxCell: Float32Array.from(est.hi),
    stuck: new Uint8Array(D),
    stepScale: Float32Array.from(est.scale),
    nu: new Float32Array(D),
  };
  const rng = normalStream(new SeededRandom(seed).fork('fit-device'));
  const repeats = max(1, min(16, ceil(200000 / max(1, data.readings))));
  const g = new Float32Array(D);
  const acc = { set: newCurve(), reset: newCurve() };
  for (const t of data.trains) {
    const d = devIndex.get(t.device)!;
    const c = acc[t.polarity];
    const dir = t.polarity === 'set' ? 1 : -1;
    for (let i = 0; i < t.g.length; i++) {
      if (c.measured.length <= i) {
        c.measured.push(0);
        c.fitted.push(0);
        c.count.push(0);
        c.pulses.push(0);
      }
      c.measured[i] += t.g[i];
      c.pulses[i] += t.pulse[i] - t.pulse[0];
      c.count[i]++;
    }
    for (let r = 0; r < repeats; r++) {
      g[d] = min(max(t.g[0], inst.gMinCell[d]), inst.gMaxCell[d]);
      c.fitted[0] += g[d] / repeats;
      for (let i = 1; i < t.g.length; i++) {
        const n = round(t.pulse[i] - t.pulse[0]) - round(t.pulse[i - 1] - t.pulse[0]);
        for (let k = 0; k < n; k++) pulseCell(g, d, dir, cfg, inst, rng);
        c.fitted[i] += g[d] / repeats;
      }
    }
  }
  const done = (c: MeanCurves): MeanCurves => ({
    pulses: c.pulses.map((v, i) => tidy(v / c.count[i])),
    measured: c.measured.map((v, i) => tidy(v / c.count[i])),
    fitted: c.fitted.map((v, i) => tidy(v / c.count[i])),
    count: c.count,
  });
  return { set: done(acc.set), reset: done(acc.reset) };
}

function newCurve(): MeanCurves {
  return { pulses: [], measured: [], fitted: [], count: [] };
}

/** RMS of fitted - measured over the curve's points (weighted by the trains behind each), / window. */
function curveRms(c: MeanCurves, window: number): number {
  let s = 0;
  let n = 0;
  for (let i = 0; i < c.count.length; i++) {
    s += c.count[i] * (c.fitted[i] - c.measured[i]) ** 2;
    n += c.count[i];
  }
  return n ? sqrt(s / n) / window : NaN;
}

/** One printable block of a fit: the fitted values, the quality per polarity, the warnings. */
export function formatDeviceFit(fit: DeviceFit): string {
  const f = (v: number, p = 4) => (Number.isFinite(v) ? Number(v.toPrecision(p)).toString() : String(v));
  const { fields: x, quality: q } = fit;
  const lines = [
    `${fit.source}: ${fit.readings} readings, ${fit.devices.length} device(s), ${q.set.trains} SET and ${q.reset.trains} RESET trains (${fit.form} form)`,
    `model ${fit.model} (pulse model ${x.pulse.model})`,
    `  window      gMin ${f(x.gMin)} uS, gMax ${f(x.gMax)} uS; d2d rOffSigma ${f(x.variation.rOffSigma, 3)}, rOnSigma ${f(x.variation.rOnSigma, 3)}`,
    `  steps       dgSet ${f(x.pulse.dgSet)} uS, dgReset ${f(x.pulse.dgReset)} uS (asymmetry dgSet/dgReset ${f(fit.asymmetry, 3)}), stepSigma ${f(x.variation.stepSigma, 3)}` +
      (x.pulse.model === 'exponential' ? `, nonlinearity SET ${f(x.pulse.nonlinearitySet, 3)} RESET ${f(x.pulse.nonlinearityReset, 3)}` : '') +
      (x.pulse.model === 'lookup' ? `, a table of ${x.pulse.table.edges.length - 1} bins` : ''),
    `  c2c         c2cSigma ${f(x.pulse.c2cSigma, 3)}`,
  ];
  for (const pol of ['set', 'reset'] as const) {
    const v = q[pol];
    lines.push(
      `  ${pol.toUpperCase().padEnd(5)}       R^2 ${f(v.r2, 3)} (lookup reference ${f(v.r2Lookup, 3)}), RMS ${f(v.rmsUS, 3)} uS, ${v.points} points, ` +
        `${v.devices} devices; simulated mean curve within ${f(100 * v.meanCurveRms, 2)}% of the window (RMS)`,
    );
  }
  for (const w of fit.warnings) lines.push(`warning: ${w}`);
  return lines.join('\n');
}
