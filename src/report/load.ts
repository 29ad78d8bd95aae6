// Reading what the report shows, from any run folder the CLI writes (the kind is told by the file
// that marks it):
//   hybrid    DIR/summary.json (crossbar/, insitu/ with insitu.json, sweep/ optional)
//   sweep     DIR/sweep.json
//   insitu    DIR/manifest.json + DIR/insitu.json (the tuned crossbar; the crossbar it started from,
//             insitu.json's `source`, when it still exists)
//   crossbar  DIR/manifest.json (a `map` folder)
//   train     DIR/metrics.json + DIR/model.json
//   fit       DEVICE.fit.json (written by fit-device beside DEVICE.json), or a folder holding one
// The marking file is required (a bad one is a FileFormatError naming it); every other part is
// optional: when it is missing or cannot be read, the page gets a short note in its place (and the
// command a warning) instead of a crash.
//
// The formats (written by `memristor-tfjs hybrid` and `memristor-tfjs sweep`):
//   DIR/summary.json   { format: 'memristor-tfjs-hybrid', version: 1, model, dataset, device, seed,
//                        softwareAccuracy, transferredAccuracy, insituAccuracy (fractions),
//                        insituSamples, insituRule, lostPoints, recoveredFraction,
//                        seconds: {train, map, transfer, insitu, total}, energy (object or null),
//                        programming: per-layer programming reports }
//   DIR/crossbar/, DIR/insitu/   crossbar directories (src/crossbar/files.ts)
//   DIR/insitu/insitu.json       { format: 'memristor-tfjs-insitu', version: 1, layer, rule, samples,
//                        epochs, batchSize, lr, threshold, curve: [{samples, trainAccuracy, loss,
//                        pulses, testAccuracy?, energyPJ?}], pulsesPerCell: {arrayId: {rows, cols, data}},
//                        before: {testAccuracy}, after: {testAccuracy}, totalPulses?, updates?,
//                        imagesSeen?, programming?: {energyPJ} }
//   DIR/insitu/learning_curve.csv  the same curve, one row a point: samples, train_accuracy, loss,
//                        pulses, test_accuracy (energy_pj when the record has it); the learning-curves
//                        section reads it and checks it against insitu.json
//   SWEEPDIR/sweep.json          { format: 'memristor-tfjs-sweep', version: 1, model, device, trials,
//                        insitu, vary: [{name, values}], points: [{params, before: {mean, std,
//                        values}, after: {mean, std, values} | null}] }
//   DIR/metrics.json             (train) { model, dataset, epochs, trainSamples, testAccuracy,
//                        history: [{epoch, loss, trainAccuracy, validationAccuracy}], parameters }
//   DEVICE.fit.json              { format: 'memristor-tfjs-device-fit', version: 1, data, model, device,
//                        readings, devices, quality, curves: {set, reset: {pulses, measured, fitted,
//                        count}}, warnings }
import * as fs from 'fs';
import * as path from 'path';
import { FileFormatError, UsageError } from '../errors';
import { CrossbarArrayData, CrossbarManifest, MANIFEST_FILE, readCrossbarDir, validateCrossbarManifest } from '../crossbar/files';

export const HYBRID_FORMAT = 'memristor-tfjs-hybrid';
export const INSITU_FORMAT = 'memristor-tfjs-insitu';
export const SWEEP_FORMAT = 'memristor-tfjs-sweep';
export const SUMMARY_FILE = 'summary.json';
export const INSITU_FILE = 'insitu.json';
export const SWEEP_FILE = 'sweep.json';
export const FIT_FORMAT = 'memristor-tfjs-device-fit';
export const METRICS_FILE = 'metrics.json';
/** The fit record beside a device JSON: my_device.json -> my_device.fit.json. */
export const FIT_SUFFIX = '.fit.json';
/** The newest version of each format this reads. */
const VERSIONS: Record<string, number> = { [HYBRID_FORMAT]: 1, [INSITU_FORMAT]: 1, [SWEEP_FORMAT]: 1, [FIT_FORMAT]: 1 };

/** The run folders (and files) `report` reads. */
export type ReportKind = 'hybrid' | 'sweep' | 'insitu' | 'crossbar' | 'train' | 'fit';

/** The fit record's path for a device JSON path. */
export function fitRecordPath(deviceJson: string): string {
  return deviceJson.replace(/\.json$/i, '') + FIT_SUFFIX;
}

type Obj = Record<string, unknown>;

export interface HybridSummary {
  format: typeof HYBRID_FORMAT;
  version: number;
  model: string;
  dataset: string | null;
  device: string;
  seed: number | null;
  softwareAccuracy: number;
  transferredAccuracy: number;
  /** null when the run stopped before in-situ training. */
  insituAccuracy: number | null;
  insituSamples: number | null;
  insituRule: string | null;
  /** Percentage points lost in transfer (100 x (software - transferred)). */
  lostPoints: number | null;
  recoveredFraction: number | null;
  seconds: Record<string, number>;
  /** The energy estimate (src/energy.ts: EnergyEstimate, read defensively by the page; any other object is listed generically), or null. */
  energy: Obj | null;
  /** Per-layer programming reports (rows of a table). */
  programming: Obj[];
  [extra: string]: unknown;
}

export interface InsituCurvePoint {
  samples: number;
  trainAccuracy: number | null;
  loss: number | null;
  pulses: number | null;
  testAccuracy: number | null;
  /** Programming energy of the pulses so far (pJ), where the record has it. */
  energyPJ: number | null;
}

export interface InsituLog {
  layer: string;
  rule: string | null;
  samples: number | null;
  epochs: number | null;
  batchSize: number | null;
  lr: number | null;
  threshold: number | null;
  curve: InsituCurvePoint[];
  pulsesPerCell: Map<string, { rows: number; cols: number; data: number[] }>;
  before: number | null;
  after: number | null;
  [extra: string]: unknown;
}

export interface SweepStat {
  mean: number;
  std: number;
  values: number[];
}

export interface SweepData {
  model: string | null;
  device: string | null;
  trials: number | null;
  insitu: boolean;
  vary: { name: string; values: unknown[] }[];
  points: { params: Record<string, unknown>; before: SweepStat; after: SweepStat | null }[];
  [extra: string]: unknown;
}

export interface CrossbarView {
  dir: string;
  manifest: CrossbarManifest;
  arrays: Map<string, CrossbarArrayData>;
}

/** metrics.json of `train` (the fields the page shows; the rest kept as they are). */
export interface TrainingRecord {
  model: string;
  dataset: string | null;
  backend: string | null;
  epochs: number | null;
  batchSize: number | null;
  learningRate: number | null;
  trainSamples: number | null;
  testSamples: number | null;
  trainSamplesPerSec: number | null;
  testAccuracy: number | null;
  testLoss: number | null;
  history: { epoch: number; loss: number | null; trainAccuracy: number | null; validationAccuracy: number | null }[];
  /** layers/summary.ts QuantSummary, or null. */
  parameters: Obj | null;
  [extra: string]: unknown;
}

/** Mean measured and fitted conductance after k pulses (src/device/fit.ts MeanCurves). */
export interface FitCurves {
  pulses: number[];
  measured: number[];
  fitted: number[];
  count: number[];
}

/** DEVICE.fit.json of `fit-device`. */
export interface FitRecord {
  model: string;
  data: string | null;
  device: string | null;
  readings: number | null;
  devices: number | null;
  curves: { set: FitCurves; reset: FitCurves };
  quality: Obj | null;
  warnings: string[];
  [extra: string]: unknown;
}

/** An optional part: its value, or why there is none (a sentence for the page). */
export type Part<T> = { ok: true; value: T; file: string } | { ok: false; note: string };

export interface ReportInputs {
  /** What the folder (or file) is. */
  kind: ReportKind;
  /** The directory given (absolute; for a fit record, its folder). */
  dir: string;
  /** Where the page goes without --out: DIR/report.html, or DEVICE.fit.html beside a fit record. */
  defaultOut: string;
  /** null for a sweep-only page (a directory with sweep.json and no summary.json). */
  summary: HybridSummary | null;
  crossbar: Part<CrossbarView>;
  insituCrossbar: Part<CrossbarView>;
  insitu: Part<InsituLog>;
  sweep: Part<SweepData>;
  /** train: metrics.json. */
  training: Part<TrainingRecord>;
  /** fit: the fit record. */
  fit: Part<FitRecord>;
  /**
   * crossbar and insitu folders: the energy estimate of the folder's network, when the caller
   * computed it (the `report` command loads the network for it; the reader reads files only).
   */
  energy?: Obj | null;
  /**
   * The in-situ runs whose learning curves the page compares: DIR's own (when it has one) and,
   * with --compare, one per folder given (in that order). Filled by the `report` command.
   */
  runs?: InsituRun[];
  /** Problems with optional parts (each also a note on the page). */
  warnings: string[];
}

// ---------------------------------------------------------------------------------------------
// Checking helpers

function show(v: unknown): string {
  const s = v === undefined ? 'nothing' : JSON.stringify(v) ?? String(v);
  return s.length > 60 ? s.slice(0, 57) + '...' : s;
}

function isObj(v: unknown): v is Obj {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

class Checker {
  constructor(readonly file: string) {}
  fail(field: string, problem: string): never {
    throw new FileFormatError(this.file, field ? `${field}: ${problem}` : problem);
  }
  header(raw: unknown, format: string, what: string): Obj {
    if (!isObj(raw)) this.fail('', `must hold a JSON object (${what}), got ${show(raw)}`);
    if (raw.format !== format) this.fail('format', raw.format === undefined ? `missing: not a ${format} file` : `expected '${format}', got ${show(raw.format)}`);
    const v = raw.version;
    if (v === undefined) this.fail('version', 'missing');
    if (typeof v !== 'number' || !Number.isInteger(v)) this.fail('version', `must be an integer, got ${show(v)}`);
    if (v > VERSIONS[format]) this.fail('version', `format version ${v} is newer than this memristor-tfjs reads (up to ${VERSIONS[format]}); update memristor-tfjs to read it`);
    if (v < 1) this.fail('version', `format version ${v} does not exist (versions start at 1)`);
    return raw;
  }
  str(o: Obj, key: string, field = key): string {
    const v = o[key];
    if (v === undefined) this.fail(field, 'missing');
    if (typeof v !== 'string' || v.trim() === '') this.fail(field, `must be a non-empty string, got ${show(v)}`);
    return v;
  }
  optStr(o: Obj, key: string, field = key): string | null {
    const v = o[key];
    if (v === undefined || v === null) return null;
    if (typeof v !== 'string') this.fail(field, `must be a string, got ${show(v)}`);
    return v;
  }
  num(o: Obj, key: string, field = key, range?: [number, number]): number {
    const v = o[key];
    if (v === undefined) this.fail(field, 'missing');
    return this.checkNum(v, field, range);
  }
  optNum(o: Obj, key: string, field = key, range?: [number, number]): number | null {
    const v = o[key];
    if (v === undefined || v === null) return null;
    return this.checkNum(v, field, range);
  }
  checkNum(v: unknown, field: string, range?: [number, number]): number {
    if (typeof v !== 'number' || !Number.isFinite(v)) this.fail(field, `must be a finite number, got ${show(v)}`);
    if (range && (v < range[0] || v > range[1])) this.fail(field, `must be in [${range[0]}, ${range[1]}], got ${show(v)}`);
    return v;
  }
  arr(o: Obj, key: string, field = key): unknown[] {
    const v = o[key];
    if (v === undefined) this.fail(field, 'missing');
    if (!Array.isArray(v)) this.fail(field, `must be an array, got ${show(v)}`);
    return v;
  }
  obj(v: unknown, field: string): Obj {
    if (v === undefined) this.fail(field, 'missing');
    if (!isObj(v)) this.fail(field, `must be an object, got ${show(v)}`);
    return v;
  }
}

/** Reads and parses a JSON file: FileFormatError naming it when missing, unreadable or not JSON. */
export function readJsonFile(file: string, what: string): unknown {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new FileFormatError(file, code === 'ENOENT' ? `missing (${what})` : code === 'EISDIR' ? `is a directory, expected ${what}` : `cannot be read (${code})`);
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new FileFormatError(file, `not valid JSON (${(e as Error).message})`);
  }
}

const FRACTION: [number, number] = [0, 1];

// ---------------------------------------------------------------------------------------------
// The files

/** Checks a parsed summary.json (file names it in errors). */
export function validateSummary(raw: unknown, file: string): HybridSummary {
  const c = new Checker(file);
  const o = c.header(raw, HYBRID_FORMAT, 'the summary of a hybrid run');
  const seconds: Record<string, number> = {};
  if (o.seconds !== undefined && o.seconds !== null) {
    const s = c.obj(o.seconds, 'seconds');
    for (const [k, v] of Object.entries(s)) if (v !== null) seconds[k] = c.checkNum(v, `seconds.${k}`);
  }
  let energy: Obj | null = null;
  if (o.energy !== undefined && o.energy !== null) energy = c.obj(o.energy, 'energy');
  let programming: Obj[] = [];
  if (o.programming !== undefined && o.programming !== null) {
    programming = c.arr(o, 'programming').map((r, i) => c.obj(r, `programming[${i}]`));
  }
  return {
    ...o,
    format: HYBRID_FORMAT,
    version: o.version as number,
    model: c.str(o, 'model'),
    dataset: c.optStr(o, 'dataset'),
    device: c.str(o, 'device'),
    seed: c.optNum(o, 'seed'),
    softwareAccuracy: c.num(o, 'softwareAccuracy', undefined, FRACTION),
    transferredAccuracy: c.num(o, 'transferredAccuracy', undefined, FRACTION),
    insituAccuracy: c.optNum(o, 'insituAccuracy', undefined, FRACTION),
    insituSamples: c.optNum(o, 'insituSamples', undefined, [0, Infinity]),
    insituRule: c.optStr(o, 'insituRule'),
    lostPoints: c.optNum(o, 'lostPoints'),
    recoveredFraction: c.optNum(o, 'recoveredFraction'),
    seconds,
    energy,
    programming,
  };
}

/** Checks a parsed insitu.json. */
export function validateInsitu(raw: unknown, file: string): InsituLog {
  const c = new Checker(file);
  const o = c.header(raw, INSITU_FORMAT, 'the log of in-situ training');
  const curve = c.arr(o, 'curve').map((p, i): InsituCurvePoint => {
    const f = `curve[${i}]`;
    const po = c.obj(p, f);
    return {
      samples: c.num(po, 'samples', `${f}.samples`, [0, Infinity]),
      trainAccuracy: c.optNum(po, 'trainAccuracy', `${f}.trainAccuracy`, FRACTION),
      loss: c.optNum(po, 'loss', `${f}.loss`),
      pulses: c.optNum(po, 'pulses', `${f}.pulses`, [0, Infinity]),
      testAccuracy: c.optNum(po, 'testAccuracy', `${f}.testAccuracy`, FRACTION),
      energyPJ: c.optNum(po, 'energyPJ', `${f}.energyPJ`, [0, Infinity]),
    };
  });
  const pulsesPerCell = new Map<string, { rows: number; cols: number; data: number[] }>();
  if (o.pulsesPerCell !== undefined && o.pulsesPerCell !== null) {
    const pc = c.obj(o.pulsesPerCell, 'pulsesPerCell');
    for (const [id, v] of Object.entries(pc)) {
      const f = `pulsesPerCell[${JSON.stringify(id)}]`;
      const a = c.obj(v, f);
      const rows = c.num(a, 'rows', `${f}.rows`, [1, 1e6]);
      const cols = c.num(a, 'cols', `${f}.cols`, [1, 1e6]);
      const data = c.arr(a, 'data', `${f}.data`);
      if (!Number.isInteger(rows) || !Number.isInteger(cols)) c.fail(f, `rows and cols must be integers, got ${rows} x ${cols}`);
      if (data.length !== rows * cols) c.fail(`${f}.data`, `holds ${data.length} values, ${rows} x ${cols} needs ${rows * cols}`);
      data.forEach((d, k) => {
        if (typeof d !== 'number' || !Number.isFinite(d) || d < 0) c.fail(`${f}.data[${k}]`, `must be a pulse count >= 0, got ${show(d)}`);
      });
      pulsesPerCell.set(id, { rows, cols, data: data as number[] });
    }
  }
  const acc = (key: 'before' | 'after'): number | null => {
    const v = o[key];
    if (v === undefined || v === null) return null;
    return c.optNum(c.obj(v, key), 'testAccuracy', `${key}.testAccuracy`, FRACTION);
  };
  return {
    ...o,
    layer: c.str(o, 'layer'),
    rule: c.optStr(o, 'rule'),
    samples: c.optNum(o, 'samples'),
    epochs: c.optNum(o, 'epochs'),
    batchSize: c.optNum(o, 'batchSize'),
    lr: c.optNum(o, 'lr'),
    threshold: c.optNum(o, 'threshold'),
    curve,
    pulsesPerCell,
    before: acc('before'),
    after: acc('after'),
  };
}

/** Checks a parsed sweep.json. */
export function validateSweep(raw: unknown, file: string): SweepData {
  const c = new Checker(file);
  const o = c.header(raw, SWEEP_FORMAT, 'the results of a parameter sweep');
  const vary = c.arr(o, 'vary').map((v, i) => {
    const vo = c.obj(v, `vary[${i}]`);
    return { name: c.str(vo, 'name', `vary[${i}].name`), values: c.arr(vo, 'values', `vary[${i}].values`) };
  });
  const stat = (v: unknown, f: string): SweepStat => {
    const so = c.obj(v, f);
    const values = so.values === undefined || so.values === null ? [] : c.arr(so, 'values', `${f}.values`).map((x, k) => c.checkNum(x, `${f}.values[${k}]`));
    return { mean: c.num(so, 'mean', `${f}.mean`), std: c.optNum(so, 'std', `${f}.std`) ?? 0, values };
  };
  const points = c.arr(o, 'points').map((p, i) => {
    const f = `points[${i}]`;
    const po = c.obj(p, f);
    const params = c.obj(po.params, `${f}.params`);
    return { params, before: stat(po.before, `${f}.before`), after: po.after === undefined || po.after === null ? null : stat(po.after, `${f}.after`) };
  });
  return {
    ...o,
    model: c.optStr(o, 'model'),
    device: c.optStr(o, 'device'),
    trials: c.optNum(o, 'trials'),
    insitu: o.insitu === true,
    vary,
    points,
  };
}

/** Checks a parsed metrics.json of `train` (no format header: the file predates one). */
export function validateTraining(raw: unknown, file: string): TrainingRecord {
  const c = new Checker(file);
  const o: Obj = isObj(raw) ? raw : c.fail('', `must hold a JSON object (the metrics of a training run), got ${show(raw)}`);
  const history = (o.history === undefined || o.history === null ? [] : c.arr(o, 'history')).map((h, i) => {
    const f = `history[${i}]`;
    const ho = c.obj(h, f);
    return {
      epoch: c.num(ho, 'epoch', `${f}.epoch`, [0, Infinity]),
      loss: c.optNum(ho, 'loss', `${f}.loss`),
      trainAccuracy: c.optNum(ho, 'trainAccuracy', `${f}.trainAccuracy`, FRACTION),
      validationAccuracy: c.optNum(ho, 'validationAccuracy', `${f}.validationAccuracy`, FRACTION),
    };
  });
  let parameters: Obj | null = null;
  if (o.parameters !== undefined && o.parameters !== null) parameters = c.obj(o.parameters, 'parameters');
  return {
    ...o,
    model: c.str(o, 'model'),
    dataset: c.optStr(o, 'dataset'),
    backend: c.optStr(o, 'backend'),
    epochs: c.optNum(o, 'epochs'),
    batchSize: c.optNum(o, 'batchSize'),
    learningRate: c.optNum(o, 'learningRate'),
    trainSamples: c.optNum(o, 'trainSamples'),
    testSamples: c.optNum(o, 'testSamples'),
    trainSamplesPerSec: c.optNum(o, 'trainSamplesPerSec'),
    testAccuracy: c.optNum(o, 'testAccuracy', undefined, FRACTION),
    testLoss: c.optNum(o, 'testLoss'),
    history,
    parameters,
  };
}

/** Checks a parsed fit record (DEVICE.fit.json). */
export function validateFit(raw: unknown, file: string): FitRecord {
  const c = new Checker(file);
  const o = c.header(raw, FIT_FORMAT, 'the record of a device fit');
  const curves = c.obj(o.curves, 'curves');
  const curve = (pol: 'set' | 'reset'): FitCurves => {
    const f = `curves.${pol}`;
    const co = c.obj(curves[pol], f);
    const nums = (k: keyof FitCurves) => c.arr(co, k, `${f}.${k}`).map((v, i) => c.checkNum(v, `${f}.${k}[${i}]`));
    const out = { pulses: nums('pulses'), measured: nums('measured'), fitted: nums('fitted'), count: nums('count') };
    const n = out.pulses.length;
    for (const k of ['measured', 'fitted', 'count'] as const) if (out[k].length !== n) c.fail(`${f}.${k}`, `holds ${out[k].length} values, pulses holds ${n}`);
    return out;
  };
  const warnings = o.warnings === undefined || o.warnings === null ? [] : c.arr(o, 'warnings').map((w, i) => (typeof w === 'string' ? w : c.fail(`warnings[${i}]`, `must be a string, got ${show(w)}`)));
  return {
    ...o,
    model: c.str(o, 'model'),
    data: c.optStr(o, 'data'),
    device: c.optStr(o, 'device'),
    readings: c.optNum(o, 'readings'),
    devices: c.optNum(o, 'devices'),
    curves: { set: curve('set'), reset: curve('reset') },
    quality: o.quality === undefined || o.quality === null ? null : c.obj(o.quality, 'quality'),
    warnings,
  };
}

export function loadFit(file: string): FitRecord {
  return validateFit(readJsonFile(file, 'the record of `memristor-tfjs fit-device`'), file);
}

export function loadSummary(file: string): HybridSummary {
  return validateSummary(readJsonFile(file, 'the summary of a hybrid run, written by `memristor-tfjs hybrid`'), file);
}

export function loadSweep(dir: string): SweepData {
  const file = path.join(dir, SWEEP_FILE);
  return validateSweep(readJsonFile(file, 'the results of `memristor-tfjs sweep`'), file);
}

function exists(p: string): boolean {
  try {
    fs.statSync(p);
    return true;
  } catch {
    return false;
  }
}

/** An optional part: FileFormatErrors become a note (and a warning); anything else is a bug and throws. */
function optional<T>(what: string, file: string, missing: string, load: () => T, warnings: string[]): Part<T> {
  if (!exists(file)) return { ok: false, note: missing };
  try {
    return { ok: true, value: load(), file };
  } catch (e) {
    if (!(e instanceof FileFormatError)) throw e;
    warnings.push(`${what} left out: ${e.message}`);
    return { ok: false, note: `${what} could not be read: ${e.message}` };
  }
}

function crossbarPart(dir: string, what: string, missing: string, warnings: string[]): Part<CrossbarView> {
  return optional(what, path.join(dir, MANIFEST_FILE), missing, () => ({ dir, ...readCrossbarDir(dir) }), warnings);
}

/** What `report` reads, in words (errors name it). */
export const REPORT_KINDS_TEXT =
  'a run folder of memristor-tfjs: hybrid (summary.json), sweep (sweep.json), map or insitu (manifest.json), train (metrics.json + model.json), or a fit record (DEVICE.fit.json of fit-device)';

/** The one *.fit.json in a folder, or null (several: a FileFormatError naming them). */
function fitIn(dir: string): string | null {
  const found = fs.readdirSync(dir).filter((f) => f.endsWith(FIT_SUFFIX) && !f.startsWith('.'));
  if (found.length > 1) throw new FileFormatError(dir, `holds ${found.length} fit records (${found.join(', ')}): give the one to report`);
  return found.length ? path.join(dir, found[0]) : null;
}

/** What kind of run folder (or file) `target` is, and the file that marks it. */
export function reportKindOf(target: string): { kind: ReportKind; file: string } {
  const abs = path.resolve(target);
  let st: fs.Stats;
  try {
    st = fs.statSync(abs);
  } catch {
    throw new FileFormatError(target, `no such directory (give ${REPORT_KINDS_TEXT})`);
  }
  if (st.isFile()) {
    if (abs.endsWith(FIT_SUFFIX)) return { kind: 'fit', file: abs };
    throw new FileFormatError(target, `not a directory nor a fit record (*${FIT_SUFFIX}): give ${REPORT_KINDS_TEXT}`);
  }
  if (!st.isDirectory()) throw new FileFormatError(target, `not a directory (give ${REPORT_KINDS_TEXT})`);
  const at = (f: string) => path.join(abs, f);
  if (exists(at(SUMMARY_FILE))) return { kind: 'hybrid', file: at(SUMMARY_FILE) };
  if (exists(at(SWEEP_FILE))) return { kind: 'sweep', file: at(SWEEP_FILE) };
  if (exists(at(MANIFEST_FILE))) return exists(at(INSITU_FILE)) ? { kind: 'insitu', file: at(INSITU_FILE) } : { kind: 'crossbar', file: at(MANIFEST_FILE) };
  if (exists(at(METRICS_FILE)) && exists(at('model.json'))) return { kind: 'train', file: at(METRICS_FILE) };
  const fit = fitIn(abs);
  if (fit) return { kind: 'fit', file: fit };
  throw new FileFormatError(target, `holds nothing memristor-tfjs reports (no summary.json, sweep.json, manifest.json, metrics.json nor *${FIT_SUFFIX}): give ${REPORT_KINDS_TEXT}`);
}

/**
 * Reads what the report of `dir` shows: any run folder (see reportKindOf) or a fit record.
 * `sweepDir` (--sweep) names a sweep to show with a hybrid run: then it must be readable
 * (FileFormatError otherwise); without it DIR/sweep/ is used when it exists. `compare` (--compare)
 * names other in-situ runs whose learning curves the page draws beside DIR's (runs): then DIR and
 * each of them must be an in-situ run (loadInsituRun: FileFormatError otherwise).
 */
export function loadReportInputs(dir: string, opts: { sweepDir?: string; compare?: string[] } = {}): ReportInputs {
  const inputs = readReportInputs(dir, opts);
  if (opts.compare && opts.compare.length) {
    // every folder must be an in-situ run, DIR too, each given once
    const seen = new Map<string, string>();
    for (const d of [dir, ...opts.compare]) {
      const key = path.resolve(d);
      if (seen.has(key)) throw new UsageError(`--compare: ${d} is given twice (as ${seen.get(key)})`);
      seen.set(key, d);
    }
    inputs.runs = labelRuns([dir, ...opts.compare].map((d) => loadInsituRun(d)));
  } else if ((inputs.kind === 'hybrid' || inputs.kind === 'insitu') && inputs.insitu.ok) {
    // DIR's own learning curve; a problem with it is a warning, as with any optional part
    try {
      inputs.runs = labelRuns([loadInsituRun(dir)]);
    } catch (e) {
      if (!(e instanceof FileFormatError)) throw e;
      inputs.warnings.push(`the learning curves left out: ${e.message}`);
    }
  }
  return inputs;
}

function readReportInputs(dir: string, opts: { sweepDir?: string }): ReportInputs {
  const { kind, file } = reportKindOf(dir);
  const abs = kind === 'fit' ? path.dirname(file) : path.resolve(dir);
  const warnings: string[] = [];
  const none = (note: string): Part<never> => ({ ok: false, note });
  const na = none('not part of this folder');
  const base = {
    kind,
    dir: abs,
    defaultOut: kind === 'fit' ? file.slice(0, -FIT_SUFFIX.length) + '.fit.html' : path.join(abs, 'report.html'),
    summary: null,
    crossbar: na,
    insituCrossbar: na,
    insitu: na,
    sweep: na,
    training: na,
    fit: na,
    warnings,
  };
  if (opts.sweepDir && kind !== 'hybrid') {
    throw new UsageError(`--sweep goes with a hybrid run directory; ${dir} is a ${kind === 'crossbar' ? 'map' : kind} ${kind === 'fit' ? 'record' : 'directory'}`);
  }
  switch (kind) {
    case 'sweep':
      return { ...base, sweep: { ok: true, value: loadSweep(abs), file } };
    case 'fit':
      return { ...base, fit: { ok: true, value: loadFit(file), file } };
    case 'train':
      return { ...base, training: { ok: true, value: validateTraining(readJsonFile(file, 'the metrics of `memristor-tfjs train`'), file), file } };
    case 'crossbar':
      return { ...base, crossbar: { ok: true, value: { dir: abs, ...readCrossbarDir(abs) }, file } };
    case 'insitu': {
      const log = validateInsitu(readJsonFile(file, 'the in-situ training log'), file);
      const here: Part<CrossbarView> = { ok: true, value: { dir: abs, ...readCrossbarDir(abs) }, file: path.join(abs, MANIFEST_FILE) };
      const source = typeof log.source === 'string' && log.source ? log.source : null;
      const before = source
        ? crossbarPart(source, 'the crossbar before in-situ training', `the crossbar it started from (${source}) is no longer there`, warnings)
        : none('insitu.json does not name the crossbar it started from');
      return { ...base, insitu: { ok: true, value: log, file }, insituCrossbar: here, crossbar: before };
    }
    case 'hybrid':
      break;
  }
  const summary = loadSummary(file);

  let sweep: Part<SweepData>;
  if (opts.sweepDir) {
    sweep = { ok: true, value: loadSweep(opts.sweepDir), file: path.join(path.resolve(opts.sweepDir), SWEEP_FILE) };
  } else {
    const sd = path.join(abs, 'sweep');
    sweep = optional('the sweep', path.join(sd, SWEEP_FILE), 'no sweep with this run', () => loadSweep(sd), warnings);
  }
  const crossbar = crossbarPart(path.join(abs, 'crossbar'), 'the crossbar after transfer', 'no crossbar directory (crossbar/) in the run directory', warnings);
  const insituCrossbar = crossbarPart(path.join(abs, 'insitu'), 'the crossbar after in-situ training', 'no crossbar directory after in-situ training (insitu/) in the run directory', warnings);
  const insituFile = path.join(abs, 'insitu', INSITU_FILE);
  const insitu = optional('the in-situ training log', insituFile, 'no in-situ training log (insitu/insitu.json) in the run directory', () => validateInsitu(readJsonFile(insituFile, 'the in-situ training log'), insituFile), warnings);
  return { ...base, summary, crossbar, insituCrossbar, insitu, sweep };
}

// ---------------------------------------------------------------------------------------------
// In-situ runs side by side (`report DIR --compare DIR2 ...`)

export const LEARNING_CURVE_FILE = 'learning_curve.csv';

/** One point of a learning curve as the comparison draws it. */
export interface InsituRunPoint {
  samples: number;
  pulses: number;
  /** Programming energy so far (pJ): the record's, or pulses x the device's programmingPulsePJ; null when neither is known. */
  energyPJ: number | null;
  testAccuracy: number | null;
}

/** An in-situ run: a hybrid run folder (summary.json + insitu/) or an insitu folder (insitu.json). */
export interface InsituRun {
  /** The folder given (absolute). */
  dir: string;
  /** Its name (the last path part). */
  name: string;
  kind: 'hybrid' | 'insitu';
  /** The update rule (insitu.json's rule), or null. */
  rule: string | null;
  /** What the page calls it: the rule, with the folder name where two runs share a rule. */
  label: string;
  curve: InsituRunPoint[];
  images: number | null;
  updates: number | null;
  pulses: number | null;
  energyPJ: number | null;
  /** Where the curve's energies come from (words for the page), or null when there are none. */
  energyFrom: string | null;
  /** Test accuracy before and after in-situ training (fractions). */
  before: number | null;
  after: number | null;
  /** A hybrid run: the software and after-transfer accuracies and the fraction of the lost points recovered. */
  software: number | null;
  transferred: number | null;
  recoveredFraction: number | null;
}

/** What --compare takes, in words (errors name it). */
export const INSITU_RUN_TEXT = 'an in-situ run: a hybrid run folder (summary.json, insitu/insitu.json) or a folder written by `memristor-tfjs insitu` (insitu.json, learning_curve.csv)';

/** A column of learning_curve.csv: its values by row, null where empty. */
type CsvColumns = Map<string, (number | null)[]>;

/**
 * Reads learning_curve.csv (a header line, then one row per curve point; columns found by name,
 * `samples`, `pulses` and `test_accuracy` required, `energy_pj` used when there, others ignored).
 */
export function readLearningCurveCsv(file: string): { rows: number; columns: CsvColumns } {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw new FileFormatError(file, `cannot be read (${(e as NodeJS.ErrnoException).code})`);
  }
  const lines = text.split(/\r?\n/);
  while (lines.length && lines[lines.length - 1].trim() === '') lines.pop();
  if (lines.length === 0) throw new FileFormatError(file, 'empty: expected a header line (samples,...,pulses,test_accuracy)');
  const head = lines[0].split(',').map((h) => h.trim());
  for (const need of ['samples', 'pulses', 'test_accuracy']) {
    if (!head.includes(need)) throw new FileFormatError(file, `line 1: no '${need}' column (the header is '${lines[0].slice(0, 80)}')`);
  }
  const columns: CsvColumns = new Map(head.map((h) => [h, []]));
  for (let i = 1; i < lines.length; i++) {
    const cells = lines[i].split(',');
    if (cells.length !== head.length) throw new FileFormatError(file, `line ${i + 1}: ${cells.length} values, the header names ${head.length} columns`);
    cells.forEach((raw, j) => {
      const t = raw.trim();
      const v = t === '' ? null : Number(t);
      if (v !== null && !Number.isFinite(v)) throw new FileFormatError(file, `line ${i + 1}, column ${head[j]}: not a number: ${show(t)}`);
      columns.get(head[j])!.push(v);
    });
  }
  return { rows: lines.length - 1, columns };
}

/** The device's energy of one programming pulse (pJ) from a crossbar manifest, or null when the folder has none. */
function pulseEnergyOf(crossbarDir: string): number | null {
  const file = path.join(crossbarDir, MANIFEST_FILE);
  if (!exists(file)) return null;
  const m = validateCrossbarManifest(readJsonFile(file, 'the manifest of the tuned crossbar'), file);
  return m.device.energy.programmingPulsePJ;
}

/**
 * An in-situ run as the comparison shows it, every file checked: the folder must be a hybrid run
 * with insitu/insitu.json or an insitu folder with insitu.json (FileFormatError naming the file and
 * what is wrong otherwise); learning_curve.csv, when there, must agree with insitu.json's curve;
 * the tuned crossbar's manifest, when there, gives the energy of a pulse.
 */
export function loadInsituRun(dir: string): InsituRun {
  const abs = path.resolve(dir);
  let st: fs.Stats;
  try {
    st = fs.statSync(abs);
  } catch {
    throw new FileFormatError(dir, `no such directory (give ${INSITU_RUN_TEXT})`);
  }
  if (!st.isDirectory()) throw new FileFormatError(dir, `not a directory (give ${INSITU_RUN_TEXT})`);
  let summary: HybridSummary | null = null;
  let insituDir = abs;
  if (exists(path.join(abs, SUMMARY_FILE))) {
    summary = loadSummary(path.join(abs, SUMMARY_FILE));
    insituDir = path.join(abs, 'insitu');
    if (!exists(path.join(insituDir, INSITU_FILE))) {
      throw new FileFormatError(path.join(insituDir, INSITU_FILE), 'missing: this hybrid run has no in-situ training log (it stopped before in-situ training, or insitu/ was removed)');
    }
  } else if (!exists(path.join(abs, INSITU_FILE))) {
    throw new FileFormatError(dir, `holds neither ${SUMMARY_FILE} nor ${INSITU_FILE}: not ${INSITU_RUN_TEXT}`);
  }
  const file = path.join(insituDir, INSITU_FILE);
  const log = validateInsitu(readJsonFile(file, 'the in-situ training log'), file);
  const c = new Checker(file);
  // cumulative counts never go down
  log.curve.forEach((p, i) => {
    const prev = log.curve[i - 1];
    if (!prev) return;
    if (p.samples < prev.samples) c.fail(`curve[${i}].samples`, `images seen went down (${prev.samples} -> ${p.samples}); the curve must be cumulative`);
    if (p.pulses !== null && prev.pulses !== null && p.pulses < prev.pulses) c.fail(`curve[${i}].pulses`, `pulses went down (${prev.pulses} -> ${p.pulses}); the curve must be cumulative`);
  });
  if (log.curve.some((p) => p.pulses === null)) c.fail(`curve[${log.curve.findIndex((p) => p.pulses === null)}].pulses`, 'missing: every point needs the pulses applied so far');

  // learning_curve.csv: the same curve
  const csvFile = path.join(insituDir, LEARNING_CURVE_FILE);
  let csvEnergy: (number | null)[] | null = null;
  if (exists(csvFile)) {
    const csv = readLearningCurveCsv(csvFile);
    if (csv.rows !== log.curve.length) throw new FileFormatError(csvFile, `holds ${csv.rows} rows, the curve in ${INSITU_FILE} ${log.curve.length} points`);
    const samples = csv.columns.get('samples')!;
    const pulses = csv.columns.get('pulses')!;
    log.curve.forEach((p, i) => {
      if (samples[i] !== p.samples) throw new FileFormatError(csvFile, `line ${i + 2}: samples ${samples[i]}, ${INSITU_FILE} says ${p.samples}`);
      if (pulses[i] !== p.pulses) throw new FileFormatError(csvFile, `line ${i + 2}: pulses ${pulses[i]}, ${INSITU_FILE} says ${p.pulses}`);
    });
    const e = csv.columns.get('energy_pj');
    if (e) {
      e.forEach((v, i) => {
        if (v !== null && v < 0) throw new FileFormatError(csvFile, `line ${i + 2}, column energy_pj: must be >= 0, got ${v}`);
      });
      csvEnergy = e;
    }
  }

  // the record's totals (insitu_files.ts InsituRecord), each optional
  const o = log as unknown as Obj;
  const count = (key: string) => c.optNum(o, key, key, [0, Infinity]);
  const programming = o.programming === undefined || o.programming === null ? null : c.obj(o.programming, 'programming');
  const recordEnergy = programming ? c.optNum(programming, 'energyPJ', 'programming.energyPJ', [0, Infinity]) : null;
  const totalPulses = count('totalPulses');
  const last = log.curve[log.curve.length - 1];
  const pulses = totalPulses ?? last?.pulses ?? null;
  // the energy of one pulse: the device of the tuned crossbar, else the record's total over its pulses
  let pulsePJ = pulseEnergyOf(insituDir);
  let pulseFrom = `pulses x the device's programmingPulsePJ (${pulsePJ} pJ, ${path.relative(abs, path.join(insituDir, MANIFEST_FILE)) || MANIFEST_FILE})`;
  if (pulsePJ === null && recordEnergy !== null && totalPulses) {
    pulsePJ = recordEnergy / totalPulses;
    pulseFrom = `pulses x ${formatNum(pulsePJ)} pJ (programming.energyPJ / totalPulses of ${INSITU_FILE})`;
  }
  let energyFrom: string | null = null;
  const curve: InsituRunPoint[] = log.curve.map((p, i) => {
    let energyPJ = p.energyPJ ?? csvEnergy?.[i] ?? null;
    if (energyPJ !== null) energyFrom ??= p.energyPJ !== null ? `the curve's energyPJ (${INSITU_FILE})` : `the energy_pj column of ${LEARNING_CURVE_FILE}`;
    else if (pulsePJ !== null) {
      energyPJ = p.pulses! * pulsePJ;
      energyFrom ??= pulseFrom;
    }
    return { samples: p.samples, pulses: p.pulses!, energyPJ, testAccuracy: p.testAccuracy };
  });
  const energyPJ = recordEnergy ?? (pulses !== null && pulsePJ !== null ? pulses * pulsePJ : null);
  const software = summary?.softwareAccuracy ?? null;
  const transferred = summary?.transferredAccuracy ?? null;
  const before = log.before ?? transferred;
  const after = log.after ?? summary?.insituAccuracy ?? null;
  let recoveredFraction = summary?.recoveredFraction ?? null;
  if (recoveredFraction === null && software !== null && transferred !== null && after !== null && software > transferred) {
    recoveredFraction = (after - transferred) / (software - transferred);
  }
  return {
    dir: abs,
    name: path.basename(abs),
    kind: summary ? 'hybrid' : 'insitu',
    rule: log.rule,
    label: log.rule ?? path.basename(abs),
    curve,
    images: count('imagesSeen') ?? last?.samples ?? log.samples,
    updates: count('updates'),
    pulses,
    energyPJ,
    energyFrom,
    before,
    after,
    software,
    transferred,
    recoveredFraction,
  };
}

function formatNum(x: number): string {
  return Number(x.toPrecision(4)).toString();
}

/** Labels the runs: each its rule, with the folder name added where two runs share a rule (and a number where that is not enough). */
export function labelRuns(runs: InsituRun[]): InsituRun[] {
  const base = (r: InsituRun) => r.rule ?? r.name;
  const shared = (r: InsituRun) => runs.filter((q) => base(q) === base(r)).length > 1;
  const first = runs.map((r) => (shared(r) && r.rule !== null ? `${r.rule} (${r.name})` : base(r)));
  return runs.map((r, i) => {
    const same = first.filter((l) => l === first[i]).length;
    const k = first.slice(0, i).filter((l) => l === first[i]).length;
    return { ...r, label: same > 1 ? `${first[i]} #${k + 1}` : first[i] };
  });
}
