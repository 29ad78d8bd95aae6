// `memristor-tfjs sweep`: accuracy statistics of a trained model over repeated programmings onto a
// device, at every point of a grid of device parameters, before and after in-situ training; trials
// run in worker threads. Writes OUT/sweep.json and OUT/sweep.csv (src/sweep/index.ts).
import * as path from 'path';
import { claimOutputFolder } from '../output_folder';
import { ConfigError, UsageError } from '../errors';
import { SCHEMES, Scheme } from '../mapping/schemes';
import { InsituSettings, SweepOptions, SweepResult, formatSweepTable, planSweep, runSweep, runSweepTasks, writeSweepFiles } from '../sweep';
import { ShardFile, parseShard, shardFileName, shardFileOf, shardRange } from '../sweep/shard';
import { writeJsonAtomic } from '../atomic';
import { INSITU_RULES, InsituRule } from '../../training/insitu_rules';
import { CommonOptions, info, printResult, intFlag, arrayFlag, progressOf } from './common';

export interface SweepCommandOptions extends CommonOptions {
  model: string;
  device: string;
  /** --vary NAME=v1,v2 (repeatable). */
  vary?: string[];
  trials?: number | string;
  insitu?: boolean;
  insituSamples?: number | string;
  insituEpochs?: number | string;
  insituLr?: number | string;
  insituRule?: string;
  workers?: number | string;
  seed?: number | string;
  dataset?: string;
  testSamples?: number | string;
  calibrationSamples?: number | string;
  batchSize?: number | string;
  array?: string;
  replicas?: number | string;
  scheme?: string;
  out: string;
  /** --overwrite: replace an existing non-empty --out. */
  overwrite?: boolean;
  /** --no-progress */
  progress?: boolean;
  /** --shard I/N: run only shard I of N (OUT/shard-I-of-N.json). */
  shard?: string;
}


/** Checks the flags (UsageError naming the flag) and turns them into SweepOptions. */
export function parseSweepOptions(opts: SweepCommandOptions): SweepOptions & { out: string } {
  if (!opts.model) throw new UsageError('sweep: give --model DIR (a trained model folder)');
  if (!opts.device) throw new UsageError('sweep: give --device PRESET|FILE.json');
  if (!opts.out) throw new UsageError('sweep: give --out DIR (sweep.json and sweep.csv are written there)');
  const size = arrayFlag(opts.array);
  let scheme: Scheme | undefined;
  if (opts.scheme !== undefined) {
    if (!(SCHEMES as readonly string[]).includes(opts.scheme)) throw new UsageError(`--scheme must be one of ${SCHEMES.join(', ')}, got '${opts.scheme}'`);
    scheme = opts.scheme as Scheme;
  }
  let insitu: InsituSettings | null = null;
  const insituFlags = [opts.insituSamples, opts.insituEpochs, opts.insituLr, opts.insituRule].some((v) => v !== undefined);
  if (insituFlags && !opts.insitu) throw new UsageError('--insitu-samples, --insitu-epochs, --insitu-lr and --insitu-rule need --insitu');
  if (opts.insitu) {
    insitu = {};
    const samples = intFlag(opts.insituSamples, '--insitu-samples', 1);
    const epochs = intFlag(opts.insituEpochs, '--insitu-epochs', 1);
    if (samples !== undefined) insitu.samples = samples;
    if (epochs !== undefined) insitu.epochs = epochs;
    if (opts.insituLr !== undefined) {
      const lr = Number(opts.insituLr);
      if (!(lr > 0) || !Number.isFinite(lr)) throw new UsageError(`--insitu-lr must be a number > 0, got '${opts.insituLr}'`);
      insitu.lr = lr;
    }
    if (opts.insituRule !== undefined) {
      if (!(INSITU_RULES as readonly string[]).includes(opts.insituRule)) throw new UsageError(`--insitu-rule must be one of ${INSITU_RULES.join(', ')}, got '${opts.insituRule}'`);
      insitu.rule = opts.insituRule as InsituRule;
    }
  }
  return {
    model: opts.model,
    device: opts.device,
    vary: opts.vary ?? [],
    trials: intFlag(opts.trials, '--trials', 1) ?? 5,
    dataset: opts.dataset ?? 'mnist',
    seed: intFlag(opts.seed, '--seed', 0) ?? 1,
    testSamples: intFlag(opts.testSamples, '--test-samples', 1),
    arrayRows: size[0],
    arrayCols: size[1],
    replicas: intFlag(opts.replicas, '--replicas', 1) ?? 1,
    scheme,
    calibrationSamples: intFlag(opts.calibrationSamples, '--calibration-samples', 1) ?? 500,
    batchSize: intFlag(opts.batchSize, '--batch-size', 1) ?? 500,
    insitu,
    workers: intFlag(opts.workers, '--workers', 1),
    backend: opts.backend,
    out: opts.out,
  };
}

/** A bar counting trials on stderr (a plain line every few seconds, between trials, when piped). */
function trialBar(opts: { progress?: boolean }): { update: (done: number, total: number) => void; phase: (what: string) => void; stop: () => void } | null {
  const bar = progressOf(opts, 'trials');
  if (!bar) return null;
  let started = false;
  let done = 0;
  return {
    update(d, total) {
      if (!started) bar.start('sweep', total);
      started = true;
      done = d;
      bar.update(done, {});
    },
    // a long trial's own progress, after the count of the trials done
    phase(what) {
      if (started) bar.update(done, { now: what });
    },
    stop() {
      if (started) bar.stop();
      started = false;
    },
  };
}

export async function sweepCommand(opts: SweepCommandOptions): Promise<SweepResult | ShardFile> {
  const o = opts as SweepCommandOptions & { slurm?: boolean; resume?: boolean; dryRun?: boolean; shards?: number | string };
  const k = opts as SweepCommandOptions & { k8s?: boolean };
  if (k.k8s) {
    if (o.slurm) throw new UsageError('give --slurm or --k8s, not both');
    if (opts.shard !== undefined) throw new UsageError('--k8s runs every shard (pod I runs --shard I/N): give --shards N, not --shard');
    const { sweepK8sCommand } = await import('./sweep_cluster');
    return (await sweepK8sCommand(k)) as never;
  }
  if (o.slurm) {
    if (opts.shard !== undefined) throw new UsageError('--slurm runs every shard (its array tasks run --shard I/N): give --shards N, not --shard');
    const { sweepSlurmCommand } = await import('./sweep_cluster');
    return (await sweepSlurmCommand(o)) as never;
  }
  for (const [flag, v] of [['--resume', o.resume], ['--dry-run', o.dryRun], ['--shards', o.shards]] as const) {
    if (v !== undefined) throw new UsageError(`${flag} goes with --slurm${flag === '--shards' ? ' or --k8s' : ''}`);
  }
  if (opts.shard !== undefined) return sweepShardCommand(opts);
  const parsed = parseSweepOptions(opts);
  // the grid is checked (names, values, every point's device) before a worker starts
  const plan = planSweep(parsed);
  const folder = claimOutputFolder(parsed.out, { overwrite: opts.overwrite, inputs: [{ flag: '--model', path: parsed.model }] });
  try {
    const bar = trialBar(opts);
    info(`sweep: ${plan.points.length} point(s) x ${parsed.trials} trial(s) = ${plan.tasks.length} programmings of ${parsed.model} on ${parsed.device}${parsed.insitu ? ', with in-situ training' : ''}`);
    let result: SweepResult;
    try {
      bar?.update(0, plan.tasks.length);
      result = await runSweep({ ...parsed, onInfo: info, onProgress: (d, n) => bar?.update(d, n), onTrialPhase: (p) => bar?.phase(p) });
    } catch (e) {
      // the library names its own fields; the command line names the flag
      if (e instanceof ConfigError && e.field === 'testSamples') throw new UsageError(`--test-samples: ${e.problem}`);
      throw e;
    } finally {
      bar?.stop();
    }
    const files = writeSweepFiles(folder.staging, result).map((f) => path.join(folder.final, path.basename(f)));
    folder.commit();
    info(`wrote ${files.join(' and ')}`);
    printResult(opts, result, () => formatSweepTable(result));
    return result;
  } finally {
    folder.release();
  }
}

/** `sweep ... --shard I/N`: runs shard I's trials and writes OUT/shard-I-of-N.json. */
export async function sweepShardCommand(opts: SweepCommandOptions): Promise<ShardFile> {
  const spec = parseShard(String(opts.shard));
  const parsed = parseSweepOptions(opts);
  const plan = planSweep(parsed);
  const sel = shardRange(plan.tasks.length, spec);
  const folder = claimOutputFolder(parsed.out, { overwrite: opts.overwrite, inputs: [{ flag: '--model', path: parsed.model }] });
  try {
    const bar = trialBar(opts);
    info(`sweep shard ${spec.index}/${spec.count}: trials ${sel.start}..${sel.end - 1} of ${plan.tasks.length} (${plan.points.length} point(s) x ${parsed.trials} trial(s))`);
    let shard: ShardFile;
    try {
      bar?.update(0, sel.end - sel.start);
      const run = await runSweepTasks({ ...parsed, onInfo: info, onProgress: (d, n) => bar?.update(d, n), onTrialPhase: (p) => bar?.phase(p) }, plan, sel);
      shard = shardFileOf(parsed, plan, spec, sel, run, Number(process.uptime().toFixed(3)));
    } catch (e) {
      if (e instanceof ConfigError && e.field === 'testSamples') throw new UsageError(`--test-samples: ${e.problem}`);
      throw e;
    } finally {
      bar?.stop();
    }
    writeJsonAtomic(path.join(folder.staging, shardFileName(spec)), shard);
    folder.commit();
    const file = path.join(folder.final, shardFileName(spec));
    info(`wrote ${file}`);
    printResult(opts, shard, () => `shard ${spec.index}/${spec.count} of sweep ${shard.hash}: ${shard.outcomes.length} trial(s) in ${shard.seconds.toFixed(1)} s (process ${shard.processSeconds.toFixed(1)} s); merge all shards with: memristor-tfjs sweep merge --out DIR SHARDS...`);
    return shard;
  } finally {
    folder.release();
  }
}
