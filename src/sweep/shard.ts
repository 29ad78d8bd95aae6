// Sharded sweeps (`sweep --shard I/N`, `sweep merge`, `sweep status`): a sweep's (point, trial)
// pairs in their global order (point-major, as runSweep runs them) are cut into N contiguous,
// balanced blocks; shard I runs block I with the seeds of the unsharded sweep (deriveSeed of the
// sweep seed, the point's key and the trial number), so every trial gives the same numbers
// wherever it runs, and the merged result is that of one process, bit for bit.
//
// A shard writes OUT/shard-I-of-N.json (ShardFile): the options that fix the numbers, their hash
// (with the base device config and the model's files), the package version, and its trials'
// accuracies. Merge checks that the shards make one whole sweep (one hash, one version, each
// shard once, none missing, none corrupt) and only then writes sweep.json and sweep.csv.
import { createHash } from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import type { DeviceConfig } from '../device/config';
import { FileFormatError, ShardMergeError, UsageError } from '../errors';
import { MODEL_JSON, WEIGHTS_BIN } from '../model_io';
import { packageVersion } from '../version';
import type { SweepOptions, SweepPlan, SweepResult, TaskRun, TaskSelection } from './index';
import { sweepResultOf } from './index';
import type { VaryValue } from './grid';

export const SHARD_FORMAT = 'memristor-tfjs-sweep-shard';
export const SHARD_VERSION = 1;

/** Shard `index` (0-based) of `count`. */
export interface ShardSpec {
  index: number;
  count: number;
}

/** `--shard I/N`: 0 <= I < N. */
export function parseShard(text: string): ShardSpec {
  const m = /^\s*(\d+)\s*\/\s*(\d+)\s*$/.exec(text);
  if (!m) throw new UsageError(`--shard must be I/N (shard I of N, 0-based: 0/4 ... 3/4), got '${text}'`);
  const index = Number(m[1]);
  const count = Number(m[2]);
  if (!Number.isSafeInteger(count) || count < 1) throw new UsageError(`--shard ${text}: N must be >= 1`);
  if (index >= count) throw new UsageError(`--shard ${text}: I must be 0 ... ${count - 1} (0-based)`);
  return { index, count };
}

/**
 * The tasks of shard I of N among `total`: tasks floor(I*total/N) up to floor((I+1)*total/N).
 * Contiguous blocks whose sizes differ by at most one, which together cover every task once.
 */
export function shardRange(total: number, s: ShardSpec): TaskSelection {
  if (s.count > total) throw new UsageError(`--shard ${s.index}/${s.count}: the sweep has only ${total} trial(s) in all; give at most ${total} shards`);
  return { start: Math.floor((s.index * total) / s.count), end: Math.floor(((s.index + 1) * total) / s.count) };
}

export const shardFileName = (s: ShardSpec) => `shard-${s.index}-of-${s.count}.json`;
const SHARD_FILE_RE = /^shard-(\d+)-of-(\d+)\.json$/;

/** What fixes a sweep's numbers (and nothing that does not, like the worker count). */
export interface SweepIdentity {
  model: string;
  device: string;
  deviceConfig: DeviceConfig;
  /** sha256 of the model's model.json and weights.bin. */
  modelFiles: string;
  dataset: string;
  vary: string[];
  trials: number;
  seed: number;
  testSamples: number | null;
  arrayRows: number;
  arrayCols: number;
  replicas: number;
  scheme: string | null;
  calibrationSamples: number;
  batchSize: number;
  insitu: SweepOptions['insitu'] | null;
  backend: string | null;
}

/** sha256 of the model's files, so that a model retrained between two shards is caught. */
export function modelFilesHash(model: string): string {
  const dir = model.endsWith('.json') ? path.dirname(model) : model;
  const h = createHash('sha256');
  for (const name of [model.endsWith('.json') ? path.basename(model) : MODEL_JSON, WEIGHTS_BIN]) {
    const f = path.join(dir, name);
    h.update(name);
    if (fs.existsSync(f)) h.update(fs.readFileSync(f));
  }
  return h.digest('hex');
}

export function sweepIdentity(opts: SweepOptions, base: DeviceConfig): SweepIdentity {
  return {
    model: opts.model,
    device: opts.device,
    deviceConfig: base,
    modelFiles: modelFilesHash(opts.model),
    dataset: opts.dataset ?? 'mnist',
    vary: [...(opts.vary ?? [])],
    trials: opts.trials,
    seed: opts.seed ?? 1,
    testSamples: opts.testSamples ?? null,
    arrayRows: opts.arrayRows ?? 128,
    arrayCols: opts.arrayCols ?? 128,
    replicas: opts.replicas ?? 1,
    scheme: opts.scheme ?? null,
    calibrationSamples: opts.calibrationSamples ?? 500,
    batchSize: opts.batchSize ?? 500,
    insitu: opts.insitu ? (opts.insitu === true ? {} : opts.insitu) : null,
    backend: opts.backend ?? null,
  };
}

/** JSON with the keys of every object sorted: the same text for the same content. */
function canonical(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`;
  if (v && typeof v === 'object') {
    const o = v as Record<string, unknown>;
    return `{${Object.keys(o).filter((k) => o[k] !== undefined).sort().map((k) => `${JSON.stringify(k)}:${canonical(o[k])}`).join(',')}}`;
  }
  return JSON.stringify(v);
}

/** The hash that names one sweep: sha256 of the identity (options, device config, model files). */
export function sweepHash(id: SweepIdentity): string {
  return createHash('sha256').update(canonical(id)).digest('hex').slice(0, 32);
}

/** The content of shard-I-of-N.json. */
export interface ShardFile {
  format: typeof SHARD_FORMAT;
  version: typeof SHARD_VERSION;
  packageVersion: string;
  hash: string;
  shard: ShardSpec;
  options: SweepIdentity;
  /** The varied names and the grid points, as in sweep.json. */
  vary: SweepResult['vary'];
  points: Record<string, VaryValue>[];
  /** This shard's tasks (start ... end - 1) of total. */
  tasks: { start: number; end: number; total: number };
  /** Test samples each trial was evaluated on. */
  testSamples: number;
  backend: string;
  workers: number;
  mode: SweepResult['mode'];
  /** Wall time of this shard's run: the context (backend, model, data) and the trials. */
  seconds: number;
  /** Start-up: seconds from the process's start until the context was ready (node, package, backend, model, data). */
  startupSeconds: number | null;
  /** Wall time of the whole shard process up to writing this file (start-up included). */
  processSeconds: number;
  /** The accuracies of this shard's trials, in task order; index: in the whole sweep. */
  outcomes: { index: number; before: number; after: number | null }[];
}

export function shardFileOf(opts: SweepOptions, plan: SweepPlan, spec: ShardSpec, sel: TaskSelection, run: TaskRun, processSeconds: number): ShardFile {
  const options = sweepIdentity(opts, plan.base);
  return {
    format: SHARD_FORMAT,
    version: SHARD_VERSION,
    packageVersion: packageVersion(),
    hash: sweepHash(options),
    shard: spec,
    options,
    vary: plan.specs.map((s) => ({ name: s.name, fields: s.fields, values: s.values })),
    points: plan.points.map((p) => p.params),
    tasks: { start: sel.start, end: sel.end, total: plan.tasks.length },
    testSamples: run.testCount,
    backend: run.backend,
    workers: run.workers,
    mode: run.mode,
    seconds: run.seconds,
    startupSeconds: run.readyAfter ?? null,
    processSeconds,
    outcomes: run.outcomes.map((o) => ({ index: o.index, before: o.before, after: o.after })),
  };
}

type Obj = Record<string, unknown>;
const isObj = (x: unknown): x is Obj => x !== null && typeof x === 'object' && !Array.isArray(x);
const isInt = (x: unknown): x is number => typeof x === 'number' && Number.isSafeInteger(x);
const isAcc = (x: unknown): x is number => typeof x === 'number' && x >= 0 && x <= 1;

/** Reads and checks one shard file; FileFormatError naming the file and what is wrong. */
export function readShardFile(file: string): ShardFile {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw new FileFormatError(file, `cannot be read (${(e as Error).message})`);
  }
  let o: unknown;
  try {
    o = JSON.parse(text);
  } catch (e) {
    throw new FileFormatError(file, `is not valid JSON (truncated or corrupt: ${(e as Error).message})`);
  }
  const bad = (problem: string): never => {
    throw new FileFormatError(file, problem);
  };
  if (!isObj(o)) return bad('is not a JSON object');
  if (o.format !== SHARD_FORMAT) return bad(`is not a sweep shard (format ${JSON.stringify(o.format)}, expected ${SHARD_FORMAT})`);
  if (o.version !== SHARD_VERSION) return bad(`shard file version ${JSON.stringify(o.version)}; this package reads version ${SHARD_VERSION}`);
  if (typeof o.packageVersion !== 'string') bad('packageVersion: missing');
  if (typeof o.hash !== 'string' || !/^[0-9a-f]{32}$/.test(o.hash)) bad('hash: missing or not 32 hex digits');
  const sh = o.shard;
  if (!isObj(sh) || !isInt(sh.index) || !isInt(sh.count) || sh.count < 1 || sh.index < 0 || sh.index >= sh.count) bad('shard: must be {index, count} with 0 <= index < count');
  if (!isObj(o.options) || !isInt(o.options.trials) || (o.options.trials as number) < 1) bad('options: missing or without trials');
  if (!Array.isArray(o.vary) || !Array.isArray(o.points) || !o.points.every(isObj)) bad('vary/points: missing');
  const t = o.tasks;
  if (!isObj(t) || !isInt(t.start) || !isInt(t.end) || !isInt(t.total)) bad('tasks: must be {start, end, total}');
  const shard = sh as unknown as ShardSpec;
  const tasks = t as { start: number; end: number; total: number };
  const trials = (o.options as Obj).trials as number;
  if (tasks.total !== (o.points as unknown[]).length * trials) bad(`tasks.total ${tasks.total} is not points x trials = ${(o.points as unknown[]).length * trials}`);
  if (shard.count > tasks.total) bad(`${shard.count} shards of ${tasks.total} trials`);
  const want = shardRange(tasks.total, shard);
  if (tasks.start !== want.start || tasks.end !== want.end) bad(`tasks ${tasks.start}..${tasks.end - 1} are not those of shard ${shard.index}/${shard.count} (${want.start}..${want.end - 1})`);
  if (!isInt(o.testSamples) || typeof o.backend !== 'string' || !isInt(o.workers) || typeof o.seconds !== 'number') bad('testSamples, backend, workers or seconds: missing');
  const insitu = (o.options as Obj).insitu !== null && (o.options as Obj).insitu !== undefined;
  const outs = o.outcomes;
  if (!Array.isArray(outs)) return bad('outcomes: missing');
  if (outs.length !== tasks.end - tasks.start) bad(`holds ${outs.length} outcomes, its shard has ${tasks.end - tasks.start} trials (truncated?)`);
  outs.forEach((r: unknown, i) => {
    if (!isObj(r) || r.index !== tasks.start + i) bad(`outcomes[${i}]: index must be ${tasks.start + i}`);
    const rr = r as Obj;
    if (!isAcc(rr.before)) bad(`outcomes[${i}].before: not an accuracy in [0, 1]`);
    if (insitu ? !isAcc(rr.after) : rr.after !== null) bad(`outcomes[${i}].after: ${insitu ? 'not an accuracy in [0, 1]' : 'must be null without in-situ training'}`);
  });
  return o as unknown as ShardFile;
}

/**
 * The shard files named by the arguments: a file as it is, a folder searched (3 levels deep) for
 * shard-I-of-N.json. A name that is neither, or a folder without any, is a problem.
 */
export function findShardFiles(inputs: readonly string[], problems: string[]): string[] {
  const files: string[] = [];
  const walk = (dir: string, depth: number): number => {
    let n = 0;
    for (const e of fs.readdirSync(dir, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
      const f = path.join(dir, e.name);
      if (e.isFile() && SHARD_FILE_RE.test(e.name)) {
        files.push(f);
        n++;
      } else if (e.isDirectory() && depth > 0 && !e.name.startsWith('.')) n += walk(f, depth - 1);
    }
    return n;
  };
  for (const input of inputs) {
    let st: fs.Stats;
    try {
      st = fs.statSync(input);
    } catch {
      problems.push(`${input}: no such file or folder`);
      continue;
    }
    if (st.isDirectory()) {
      if (walk(input, 3) === 0) problems.push(`${input}: holds no shard file (shard-I-of-N.json)`);
    } else files.push(input);
  }
  return files;
}

/** The option fields in which two identities differ (for the mixed-sweeps message). */
function differingFields(a: SweepIdentity, b: SweepIdentity): string[] {
  const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
  return [...keys].filter((k) => canonical((a as unknown as Obj)[k]) !== canonical((b as unknown as Obj)[k]));
}

export interface MergedShards {
  result: SweepResult;
  shards: { file: string; shard: ShardFile }[];
}

/**
 * Checks that the shard files make one whole sweep and merges them into its result (the same as
 * runSweep's but for seconds, workers and mode: the sum of the shards' trial times, the most
 * threads of a shard, and the shards' mode when all agree). ShardMergeError lists every problem.
 */
export function mergeShards(inputs: readonly string[]): MergedShards {
  const problems: string[] = [];
  const files = findShardFiles(inputs, problems);
  const shards: { file: string; shard: ShardFile }[] = [];
  const seen = new Map<string, string>();
  for (const f of files) {
    const real = fs.existsSync(f) ? fs.realpathSync(f) : f;
    if (seen.has(real)) continue; // the same file named twice (a folder and the file in it)
    seen.set(real, f);
    try {
      shards.push({ file: f, shard: readShardFile(f) });
    } catch (e) {
      if (e instanceof FileFormatError) problems.push(e.message);
      else throw e;
    }
  }
  if (shards.length === 0) {
    if (problems.length === 0) problems.push('no shard files given');
    throw new ShardMergeError(problems);
  }
  const first = shards[0];
  for (const s of shards.slice(1)) {
    if (s.shard.hash !== first.shard.hash) {
      problems.push(`${s.file}: another sweep (options hash ${s.shard.hash}, ${first.file} has ${first.shard.hash}; they differ in ${differingFields(first.shard.options, s.shard.options).join(', ') || 'the device or model files'})`);
    }
    if (s.shard.packageVersion !== first.shard.packageVersion) problems.push(`${s.file}: written by memristor-tfjs ${s.shard.packageVersion}, ${first.file} by ${first.shard.packageVersion}: rerun the shards with one version`);
    if (s.shard.shard.count !== first.shard.shard.count) problems.push(`${s.file}: shard ${s.shard.shard.index}/${s.shard.shard.count}, ${first.file} is one of ${first.shard.shard.count} shards`);
    if (s.shard.testSamples !== first.shard.testSamples) problems.push(`${s.file}: evaluated on ${s.shard.testSamples} test samples, ${first.file} on ${first.shard.testSamples} (another dataset?)`);
    if (s.shard.backend !== first.shard.backend) problems.push(`${s.file}: ran on backend ${s.shard.backend}, ${first.file} on ${first.shard.backend}`);
  }
  const n = first.shard.shard.count;
  const byIndex = new Map<number, string[]>();
  for (const s of shards) byIndex.set(s.shard.shard.index, [...(byIndex.get(s.shard.shard.index) ?? []), s.file]);
  for (const [i, fs_] of [...byIndex].sort((a, b) => a[0] - b[0])) {
    if (fs_.length > 1) problems.push(`shard ${i}/${n} given ${fs_.length} times: ${fs_.join(', ')}`);
  }
  const missing = [...Array(n).keys()].filter((i) => !byIndex.has(i));
  if (missing.length) problems.push(`missing ${missing.length} of ${n} shards: ${missing.map((i) => shardFileName({ index: i, count: n })).join(', ')}`);
  if (problems.length) throw new ShardMergeError(problems);

  shards.sort((a, b) => a.shard.shard.index - b.shard.shard.index);
  const f = first.shard;
  const o = f.options;
  const outcomes = shards.flatMap((s) => s.shard.outcomes);
  const modes = new Set(shards.map((s) => s.shard.mode));
  const result = sweepResultOf(
    { model: o.model, device: o.device, dataset: o.dataset, trials: o.trials, seed: o.seed, insitu: o.insitu, arrayRows: o.arrayRows, arrayCols: o.arrayCols, replicas: o.replicas, calibrationSamples: o.calibrationSamples },
    { base: o.deviceConfig, specs: f.vary, points: f.points.map((params) => ({ params, key: '' })) },
    {
      testCount: f.testSamples,
      backend: f.backend,
      workers: Math.max(...shards.map((s) => s.shard.workers)),
      mode: modes.size === 1 ? f.mode : 'worker-threads',
      seconds: Number(shards.reduce((a, s) => a + s.shard.seconds, 0).toFixed(3)),
    },
    outcomes,
  );
  return { result, shards };
}

export interface ShardStatus {
  /** The shard count (null: no shard found). */
  count: number | null;
  hash: string | null;
  done: { index: number; file: string; seconds: number }[];
  missing: number[];
  /** Files that are not valid shards, or of another sweep, with the reason. */
  bad: string[];
}

/** The shards under DIR: which are done, which missing, which corrupt or of another sweep. */
export function shardStatus(dir: string): ShardStatus {
  if (!fs.existsSync(dir) || !fs.statSync(dir).isDirectory()) throw new UsageError(`sweep status: ${dir} is not a folder`);
  const bad: string[] = [];
  const files = findShardFiles([dir], []);
  const good: { file: string; shard: ShardFile }[] = [];
  for (const f of files) {
    try {
      good.push({ file: f, shard: readShardFile(f) });
    } catch (e) {
      if (e instanceof FileFormatError) bad.push(e.message);
      else throw e;
    }
  }
  // the sweep of the folder: that of its plan (a Slurm or Kubernetes folder) or of most shards
  const counts = new Map<string, number>();
  for (const g of good) counts.set(g.shard.hash, (counts.get(g.shard.hash) ?? 0) + 1);
  const planned = readPlanHash(dir);
  const hash = planned?.hash ?? ([...counts].sort((a, b) => b[1] - a[1])[0]?.[0] ?? null);
  const mine = good.filter((g) => {
    if (g.shard.hash === hash) return true;
    bad.push(`${g.file}: another sweep (options hash ${g.shard.hash}, not ${hash})`);
    return false;
  });
  const count = planned?.shards ?? mine[0]?.shard.shard.count ?? null;
  const done = mine.map((g) => ({ index: g.shard.shard.index, file: g.file, seconds: g.shard.seconds })).sort((a, b) => a.index - b.index);
  const have = new Set(done.map((d) => d.index));
  const missing = count === null ? [] : [...Array(count).keys()].filter((i) => !have.has(i));
  return { count, hash, done, missing, bad };
}

/** The plan a cluster submission wrote (DIR/cluster/plan.json), if any: its hash and shard count. */
export const PLAN_DIR = 'cluster';
export const PLAN_JSON = 'plan.json';
export function readPlanHash(dir: string): { hash: string; shards: number } | null {
  const f = path.join(dir, PLAN_DIR, PLAN_JSON);
  if (!fs.existsSync(f)) return null;
  let o: unknown;
  try {
    o = JSON.parse(fs.readFileSync(f, 'utf8'));
  } catch (e) {
    throw new FileFormatError(f, `is not valid JSON (${(e as Error).message})`);
  }
  if (!isObj(o) || typeof o.hash !== 'string' || !isInt(o.shards)) throw new FileFormatError(f, 'must hold hash and shards');
  return { hash: o.hash, shards: o.shards };
}
