// Device sweeps (`memristor-tfjs sweep`): accuracy statistics over repeated programmings of a
// trained network, at every point of a grid of device parameters (Park et al.'s accuracy vs
// tuning-tolerance statistics; the BMCNN-style variation study), before and after in-situ training
// of the last FC layer (Yao et al.).
//
// At grid point p (key `name=value,...`) trial t programs the network anew with seed
// deriveSeed(seed, key, t): new device-to-device variation, stuck cells and write-verify noise; the
// read noise of its evaluation is drawn from the same seed. So every number is reproducible from
// --seed alone, and does not depend on the number of workers nor on the order trials finish in.
// Statistics per point: the mean and the sample standard deviation (n - 1; null for one trial).
//
// Files (written atomically): DIR/sweep.json (SweepResult below) and DIR/sweep.csv (one row per
// point: the varied values, before_mean, before_std, after_mean, after_std, trials; accuracies as
// fractions, an empty cell for a null).
import * as os from 'os';
import * as path from 'path';
import { loadDeviceConfig, DeviceConfig } from '../device/config';
import { UsageError } from '../errors';
import { deriveSeed } from '../random';
import { writeFileAtomic, writeJsonAtomic } from '../atomic';
import type { Scheme } from '../mapping/schemes';
import { VarySpec, VaryValue, expandGrid, gridDevices, parseVary, summarize } from './grid';
import { runInWorkers } from './pool';
import type { InsituSettings, TrialContextSpec, TrialOutcome, TrialTask } from './trial';

export * from './grid';
export type { InsituSettings, TrialSettings, TrialOutcome, TrialTask } from './trial';

export const SWEEP_FORMAT = 'memristor-tfjs-sweep';
export const SWEEP_VERSION = 1;
export const SWEEP_JSON = 'sweep.json';
export const SWEEP_CSV = 'sweep.csv';

export interface SweepOptions {
  /** A trained model folder. */
  model: string;
  /** A device preset name or a device config JSON file: the base of every point. */
  device: string;
  /** `NAME=v1,v2,...` strings (see grid.ts); none: one point, the base device. */
  vary?: readonly string[];
  /** Trials (independent programmings) per point, >= 1. */
  trials: number;
  /** Dataset spec, default 'mnist'. */
  dataset?: string;
  /** Default 1. */
  seed?: number;
  /** The first N test samples (default all). */
  testSamples?: number;
  /** Default 128 x 128. */
  arrayRows?: number;
  arrayCols?: number;
  /** Replica groups of every conv layer, default 1. */
  replicas?: number;
  scheme?: Scheme;
  /** Training samples that calibrate the DAC/ADC ranges, default 500. */
  calibrationSamples?: number;
  /** Inference batch size, default 500. */
  batchSize?: number;
  /** In-situ training after programming: settings, or true for the defaults. */
  insitu?: InsituSettings | boolean | null;
  /** Worker threads, default os.availableParallelism(); never more than the trials to run. */
  workers?: number;
  /** Run the trials in this thread instead of worker threads; default: when workers is 1. */
  inProcess?: boolean;
  /** Backend name (--backend). */
  backend?: string;
  /** After each trial. */
  onProgress?: (done: number, total: number) => void;
  /**
   * What a trial of the main thread is doing (`trial 3: calibration 40%`), as it goes: a progress
   * line while long trials run (worker threads report their trials when done).
   */
  onTrialPhase?: (phase: string) => void;
  /** Messages for people (the backend line). */
  onInfo?: (msg: string) => void;
}

/** Run only these tasks of the plan (a shard: shard.ts); default all. */
export interface TaskSelection {
  /** The first task (index into the plan's task list) and one past the last. */
  start: number;
  end: number;
}

/** What running some tasks of a sweep gives: the outcomes (in task order) and where they ran. */
export interface TaskRun {
  outcomes: TrialOutcome[];
  testCount: number;
  backend: string;
  workers: number;
  mode: 'in-process' | 'worker-threads';
  seconds: number;
  /** Seconds from the process's start until the first thread had its context (backend, model, data). */
  readyAfter?: number;
}

export interface AccuracyStats {
  /** Mean accuracy over the trials, a fraction. */
  mean: number;
  /** Sample standard deviation (n - 1), a fraction; null for a single trial. */
  std: number | null;
  /** The accuracy of every trial, in trial order. */
  values: number[];
}

export interface SweepPoint {
  params: Record<string, VaryValue>;
  before: AccuracyStats;
  after: AccuracyStats | null;
}

/** The content of sweep.json (read by the HTML report). */
export interface SweepResult {
  format: typeof SWEEP_FORMAT;
  version: typeof SWEEP_VERSION;
  /** The model folder, as given. */
  model: string;
  /** The device preset name or file, as given. */
  device: string;
  /** The base device config the points are made from. */
  deviceConfig: DeviceConfig;
  dataset: string;
  trials: number;
  insitu: boolean;
  seed: number;
  /** Test samples each trial is evaluated on. */
  testSamples: number;
  array: string;
  replicas: number;
  calibrationSamples: number;
  /** The varied names in --vary order, with the config fields each sets. */
  vary: { name: string; fields: string[]; values: VaryValue[] }[];
  /** The grid points, the first --vary outermost. */
  points: SweepPoint[];
  /** Wall time of the sweep. */
  seconds: number;
  /** Worker threads that ran the trials (1 also for a run in the main thread). */
  workers: number;
  /** Where the trials ran. */
  mode: 'in-process' | 'worker-threads';
  backend: string;
}

export function defaultWorkers(): number {
  return typeof os.availableParallelism === 'function' ? os.availableParallelism() : os.cpus().length;
}

export interface SweepPlan {
  base: DeviceConfig;
  specs: VarySpec[];
  points: ReturnType<typeof expandGrid>;
  devices: DeviceConfig[];
  tasks: TrialTask[];
}

/**
 * Parses and checks the grid (names, values, every point's device config) and lists the trials,
 * before anything heavy runs.
 */
export function planSweep(opts: Pick<SweepOptions, 'device' | 'vary' | 'trials' | 'seed'>): SweepPlan {
  if (!Number.isSafeInteger(opts.trials) || opts.trials < 1) throw new UsageError(`--trials must be an integer >= 1, got ${opts.trials}`);
  const seed = opts.seed ?? 1;
  const base = loadDeviceConfig(opts.device);
  const specs = parseVary(opts.vary ?? [], base);
  const points = expandGrid(specs);
  const devices = gridDevices(base, specs, points);
  const tasks: TrialTask[] = [];
  points.forEach((p, i) => {
    for (let t = 0; t < opts.trials; t++) tasks.push({ index: i * opts.trials + t, device: devices[i], seed: deriveSeed(seed, p.key, t) });
  });
  return { base, specs, points, devices, tasks };
}

function insituSettings(v: SweepOptions['insitu']): InsituSettings | null {
  if (!v) return null;
  return v === true ? {} : v;
}

/** How every trial of a sweep is made (the same in every worker and every shard). */
export function trialContextSpec(opts: SweepOptions): TrialContextSpec {
  return {
    modelDir: opts.model,
    dataset: opts.dataset ?? 'mnist',
    testSamples: opts.testSamples,
    backend: opts.backend,
    settings: {
      arrayRows: opts.arrayRows ?? 128,
      arrayCols: opts.arrayCols ?? 128,
      replicas: opts.replicas ?? 1,
      scheme: opts.scheme,
      calibrationSamples: opts.calibrationSamples ?? 500,
      batchSize: opts.batchSize ?? 500,
      insitu: insituSettings(opts.insitu),
    },
  };
}

/** Runs a sweep and returns its result (the caller writes the files: writeSweepFiles). */
export async function runSweep(opts: SweepOptions): Promise<SweepResult> {
  const plan = planSweep(opts);
  const run = await runSweepTasks(opts, plan);
  return sweepResultOf(opts, plan, run, run.outcomes);
}

/**
 * Runs the tasks of `plan` (all, or `select`: a shard) in the main thread or worker threads; the
 * outcomes come back in task order with their indices in the whole plan.
 */
export async function runSweepTasks(opts: SweepOptions, plan: SweepPlan, select?: TaskSelection): Promise<TaskRun> {
  const t0 = performance.now();
  const spec = trialContextSpec(opts);
  const start = select?.start ?? 0;
  // the pool puts outcomes back by index: number the selected tasks from 0, and back afterwards
  const tasks = plan.tasks.slice(start, select?.end ?? plan.tasks.length).map((t) => ({ ...t, index: t.index - start }));
  const requested = opts.workers ?? defaultWorkers();
  if (!Number.isSafeInteger(requested) || requested < 1) throw new UsageError(`--workers must be an integer >= 1, got ${requested}`);
  const workers = Math.max(1, Math.min(requested, tasks.length));
  const inProcess = opts.inProcess ?? workers === 1;
  const total = tasks.length;
  let outcomes: TrialOutcome[];
  let testCount = 0;
  let backend = '';
  let readyAfter: number | undefined;
  if (inProcess) {
    const { createTrialContext, runTrial } = await import('./trial');
    const ctx = await createTrialContext(spec, { init: opts.backend !== undefined });
    readyAfter = process.uptime();
    backend = ctx.backend.name;
    testCount = ctx.data.test.count;
    opts.onInfo?.(`backend: ${ctx.backend.name} (${ctx.backend.reason}), trials in the main thread`);
    try {
      outcomes = [];
      for (const task of tasks) {
        outcomes.push(runTrial(ctx, task, opts.onTrialPhase));
        opts.onProgress?.(outcomes.length, total);
        // let timers (the progress bar) run between trials
        await new Promise((r) => setImmediate(r));
      }
    } finally {
      ctx.dispose();
    }
  } else {
    let mainCtx: { dispose(): void } | null = null;
    try {
      outcomes = await runInWorkers(spec, tasks, {
        workers,
        // the main thread runs trials too: W threads = the main thread + W - 1 workers
        main: async () => {
          const { createTrialContext, runTrial } = await import('./trial');
          const ctx = await createTrialContext(spec, { init: opts.backend !== undefined });
          mainCtx = ctx;
          readyAfter = Math.min(readyAfter ?? Infinity, process.uptime());
          backend ||= ctx.backend.name;
          testCount ||= ctx.data.test.count;
          return (task) => runTrial(ctx, task, opts.onTrialPhase);
        },
        onReady: (m) => {
          readyAfter = Math.min(readyAfter ?? Infinity, process.uptime());
          backend = m.backend.name;
          testCount = m.testCount;
          opts.onInfo?.(`backend: ${m.backend.name} (${m.backend.reason}), ${workers} threads (the main thread and ${workers - 1} worker${workers > 2 ? 's' : ''})`);
        },
        onResult: (done, n) => opts.onProgress?.(done, n),
      });
    } finally {
      (mainCtx as { dispose(): void } | null)?.dispose();
    }
  }
  return {
    outcomes: outcomes.map((o) => ({ ...o, index: o.index + start })),
    testCount,
    backend,
    workers: inProcess ? 1 : workers,
    mode: inProcess ? 'in-process' : 'worker-threads',
    seconds: Number(((performance.now() - t0) / 1000).toFixed(3)),
    readyAfter: readyAfter === undefined ? undefined : Number(readyAfter.toFixed(3)),
  };
}

/**
 * The sweep's result from the outcomes of all its tasks, in task order (one run, or the shards of
 * one: merge.ts); `run` says where they ran.
 */
export function sweepResultOf(
  opts: Pick<SweepOptions, 'model' | 'device' | 'dataset' | 'trials' | 'seed' | 'insitu' | 'arrayRows' | 'arrayCols' | 'replicas' | 'calibrationSamples'>,
  plan: Pick<SweepPlan, 'base' | 'specs' | 'points'>,
  run: Omit<TaskRun, 'outcomes'>,
  outcomes: readonly Pick<TrialOutcome, 'before' | 'after'>[],
): SweepResult {
  const insitu = insituSettings(opts.insitu);
  const trials = opts.trials;
  const points: SweepPoint[] = plan.points.map((p, i) => {
    const mine = outcomes.slice(i * trials, (i + 1) * trials);
    return {
      params: p.params,
      before: summarize(mine.map((o) => o.before)),
      after: insitu ? summarize(mine.map((o) => o.after as number)) : null,
    };
  });
  return {
    format: SWEEP_FORMAT,
    version: SWEEP_VERSION,
    model: opts.model,
    device: opts.device,
    deviceConfig: plan.base,
    dataset: opts.dataset ?? 'mnist',
    trials,
    insitu: insitu !== null,
    seed: opts.seed ?? 1,
    testSamples: run.testCount,
    array: `${opts.arrayRows ?? 128}x${opts.arrayCols ?? 128}`,
    replicas: opts.replicas ?? 1,
    calibrationSamples: opts.calibrationSamples ?? 500,
    vary: plan.specs.map((s) => ({ name: s.name, fields: s.fields, values: s.values })),
    points,
    seconds: run.seconds,
    workers: run.workers,
    mode: run.mode,
    backend: run.backend,
  };
}

function csvCell(v: unknown): string {
  if (v === null || v === undefined) return '';
  const s = String(v);
  return /[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

/** sweep.csv: one row per point. */
export function sweepCsv(r: SweepResult): string {
  const names = r.vary.map((v) => v.name);
  const lines = [[...names, 'before_mean', 'before_std', 'after_mean', 'after_std', 'trials'].map(csvCell).join(',')];
  for (const p of r.points) {
    const row = [...names.map((n) => p.params[n]), p.before.mean, p.before.std, p.after?.mean ?? null, p.after?.std ?? null, r.trials];
    lines.push(row.map(csvCell).join(','));
  }
  return lines.join('\n') + '\n';
}

/** Writes DIR/sweep.json and DIR/sweep.csv (each atomically); returns their paths. */
export function writeSweepFiles(dir: string, r: SweepResult): string[] {
  const json = path.join(dir, SWEEP_JSON);
  const csv = path.join(dir, SWEEP_CSV);
  writeJsonAtomic(json, r);
  writeFileAtomic(csv, sweepCsv(r));
  return [json, csv];
}

const pctOf = (x: number | null | undefined) => (x == null || !Number.isFinite(x) ? '-' : `${(100 * x).toFixed(2)}%`);
const ppOf = (x: number | null | undefined) => (x == null || !Number.isFinite(x) ? '-' : (100 * x).toFixed(2));

/** The human table: one line per point, accuracies in percent, std in percentage points. */
export function formatSweepTable(r: SweepResult): string {
  const names = r.vary.map((v) => v.name);
  const head = [...names, 'before', 'std(pp)', ...(r.insitu ? ['after', 'std(pp)'] : [])];
  const rows = r.points.map((p) => [
    ...names.map((n) => String(p.params[n])),
    pctOf(p.before.mean),
    ppOf(p.before.std),
    ...(r.insitu ? [pctOf(p.after?.mean), ppOf(p.after?.std)] : []),
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i].length)));
  const line = (cells: string[]) => cells.map((c, i) => (i < names.length ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ');
  const title =
    `${r.device} on ${r.array} arrays: ${r.trials} trial(s) per point, ${r.testSamples} test samples, seed ${r.seed}` +
    ` (${r.points.length} point(s), ${r.workers} worker(s), ${r.seconds.toFixed(1)} s); std: sample standard deviation`;
  return [title, line(head), ...rows.map(line)].join('\n');
}
