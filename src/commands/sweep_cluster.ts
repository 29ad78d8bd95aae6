// `memristor-tfjs sweep ... --slurm`: the sweep as a Slurm array job of shards and a merge job that
// depends on it (src/sweep/cluster.ts), submitted with sbatch; --resume resubmits only the shards
// that are missing (failed or never run); --dry-run writes the scripts only.
import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { claimOutputFile, claimOutputFolder } from '../output_folder';
import { UsageError } from '../errors';
import { writeFileAtomic, writeJsonAtomic } from '../atomic';
import { planSweep } from '../sweep';
import { PLAN_DIR, PLAN_JSON, shardRange, shardStatus, sweepHash, sweepIdentity } from '../sweep/shard';
import { K8S_MANIFEST, k8sJobs, k8sManifest, ARRAY_SCRIPT, LOGS_DIR, MERGE_SCRIPT, SHARDS_DIR, SlurmSettings, arraySpec, checkSlurmSettings, localJobCommand, slurmArrayScript, slurmMergeScript } from '../sweep/cluster';
import { SweepCommandOptions, parseSweepOptions } from './sweep';
import { info, intFlag, printResult } from './common';
import { packageVersion } from '../version';
import { K8S_WORKDIR } from '../sweep/cluster';

export interface ClusterFlags {
  slurm?: boolean;
  shards?: number | string;
  partition?: string;
  time?: string;
  cpusPerTask?: number | string;
  sbatchArg?: string[];
  dryRun?: boolean;
  resume?: boolean;
  k8s?: boolean;
  image?: string;
  pvc?: string;
  retries?: number | string;
}

/** The sweep's own flags, again, for the shard jobs (what fixes the numbers, and the backend). */
export function sweepArgsOf(opts: SweepCommandOptions): string[] {
  const a: string[] = ['--model', opts.model, '--device', opts.device];
  for (const v of opts.vary ?? []) a.push('--vary', v);
  const add = (flag: string, v: unknown) => {
    if (v !== undefined && v !== null) a.push(flag, String(v));
  };
  add('--trials', opts.trials);
  add('--seed', opts.seed);
  add('--dataset', opts.dataset);
  add('--test-samples', opts.testSamples);
  add('--calibration-samples', opts.calibrationSamples);
  add('--batch-size', opts.batchSize);
  add('--array', opts.array);
  add('--replicas', opts.replicas);
  add('--scheme', opts.scheme);
  if (opts.insitu) a.push('--insitu');
  add('--insitu-samples', opts.insituSamples);
  add('--insitu-epochs', opts.insituEpochs);
  add('--insitu-lr', opts.insituLr);
  add('--insitu-rule', opts.insituRule);
  add('--backend', opts.backend);
  return a;
}

export interface SlurmJobs {
  /** The array tasks (shards) submitted. */
  shards: number[];
  arrayJob: string | null;
  mergeJob: string | null;
  submitted: string;
}

export interface ClusterPlan {
  format: 'memristor-tfjs-sweep-cluster';
  hash: string;
  shards: number;
  engine: 'slurm' | 'k8s';
  sweepArgs: string[];
  cwd: string;
  node: string;
  cli: string;
  slurm?: SlurmSettings;
  k8s?: Omit<import('../sweep/cluster').K8sSettings, 'shards'>;
  submissions: SlurmJobs[];
}

function sbatch(args: string[]): string {
  let out: string;
  try {
    out = execFileSync('sbatch', ['--parsable', ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (e) {
    const err = e as NodeJS.ErrnoException & { stderr?: string };
    if (err.code === 'ENOENT') throw new UsageError('--slurm: sbatch not found on PATH (run on a Slurm login node; --dry-run writes the scripts only)');
    throw new Error(`sbatch ${args.join(' ')} failed: ${(err.stderr ?? err.message).trim()}`);
  }
  const id = out.trim().split(';')[0];
  if (!/^\d+$/.test(id)) throw new Error(`sbatch ${args.join(' ')}: unexpected answer '${out.trim()}'`);
  return id;
}

/** Job ids of these jobs still known to squeue (pending or running). */
function queued(ids: string[]): string[] {
  if (ids.length === 0) return [];
  try {
    const out = execFileSync('squeue', ['-h', '-o', '%i %T', '-j', ids.join(',')], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    return out.split('\n').filter((l) => l.trim() !== '');
  } catch {
    return []; // squeue fails for job ids it no longer knows
  }
}

function submit(out: string, plan: ClusterPlan, shards: number[]): SlurmJobs {
  const dir = path.join(out, PLAN_DIR);
  let arrayJob: string | null = null;
  if (shards.length) arrayJob = sbatch([`--array=${arraySpec(shards, plan.shards)}`, path.join(dir, ARRAY_SCRIPT)]);
  const mergeJob = sbatch([...(arrayJob ? [`--dependency=afterok:${arrayJob}`] : []), path.join(dir, MERGE_SCRIPT)]);
  return { shards, arrayJob, mergeJob, submitted: new Date().toISOString() };
}

export async function sweepSlurmCommand(opts: SweepCommandOptions & ClusterFlags): Promise<ClusterPlan> {
  const parsed = parseSweepOptions(opts);
  const sweepPlan = planSweep(parsed);
  const total = sweepPlan.tasks.length;
  const cpus = intFlag(opts.cpusPerTask, '--cpus-per-task', 1) ?? 1;
  if (opts.workers !== undefined) throw new UsageError('--slurm: give --cpus-per-task C instead of --workers (each shard runs C worker threads)');
  const shards = intFlag(opts.shards, '--shards', 1) ?? Math.min(total, sweepPlan.points.length);
  shardRange(total, { index: 0, count: shards }); // refuses more shards than trials
  const settings: SlurmSettings = { shards, partition: opts.partition, time: opts.time, cpusPerTask: cpus, sbatchArgs: opts.sbatchArg ?? [] };
  checkSlurmSettings(settings);
  const hash = sweepHash(sweepIdentity(parsed, sweepPlan.base));
  const out = path.resolve(parsed.out);
  const planFile = path.join(out, PLAN_DIR, PLAN_JSON);

  if (opts.resume) {
    if (!fs.existsSync(planFile)) throw new UsageError(`--resume: ${parsed.out} holds no cluster sweep (${path.join(PLAN_DIR, PLAN_JSON)}); submit it first without --resume`);
    const claim = claimOutputFile(planFile);
    try {
      const prev = JSON.parse(fs.readFileSync(planFile, 'utf8')) as ClusterPlan;
      if (prev.hash !== hash || prev.shards !== shards) {
        throw new UsageError(`--resume: ${parsed.out} holds sweep ${prev.hash} in ${prev.shards} shards, these options give sweep ${hash} in ${shards} shards: give the same options as the first submission`);
      }
      const jobIds = prev.submissions.flatMap((s) => [s.arrayJob, s.mergeJob]).filter((x): x is string => !!x);
      const still = queued(jobIds);
      const arrays = new Set(prev.submissions.map((s) => s.arrayJob).filter(Boolean));
      const busy = still.filter((l) => arrays.has(l.split(/[_ ]/)[0]));
      if (busy.length) throw new UsageError(`--resume: shard jobs of this sweep are still queued or running (${busy.join('; ')}); wait for them, or scancel them first`);
      // a merge job left waiting on a failed array can never run
      const staleMerges = still.map((l) => l.split(' ')[0]).filter((id) => prev.submissions.some((s) => s.mergeJob === id));
      const st = shardStatus(out);
      if (st.missing.length === 0 && fs.existsSync(path.join(out, 'sweep.csv'))) {
        info(`--resume: all ${shards} shards are done and merged in ${parsed.out}; nothing to submit`);
        printResult(opts, prev, () => `nothing to submit: ${shards} of ${shards} shards done, ${path.join(parsed.out, 'sweep.csv')} written`);
        return prev;
      }
      if (opts.dryRun) {
        printResult(opts, prev, () => `would resubmit shards ${st.missing.join(', ') || '(none)'} and the merge job`);
        return prev;
      }
      if (staleMerges.length) execFileSync('scancel', staleMerges, { stdio: 'ignore' });
      const jobs = submit(out, prev, st.missing);
      const next = { ...prev, submissions: [...prev.submissions, jobs] };
      writeJsonAtomic(planFile, next);
      info(`resubmitted ${st.missing.length} of ${shards} shards (${st.missing.join(', ') || 'none'}) as job ${jobs.arrayJob ?? '-'}, merge job ${jobs.mergeJob}`);
      printResult(opts, next, () => `array job ${jobs.arrayJob ?? '-'} (shards ${st.missing.join(', ') || 'none'}), merge job ${jobs.mergeJob}`);
      return next;
    } finally {
      claim.release();
    }
  }

  const cmd = localJobCommand();
  const plan: ClusterPlan = { format: 'memristor-tfjs-sweep-cluster', hash, shards, engine: 'slurm', sweepArgs: sweepArgsOf(opts), cwd: cmd.cwd, node: cmd.node, cli: cmd.cli, slurm: settings, submissions: [] };
  const folder = claimOutputFolder(parsed.out, { overwrite: opts.overwrite, inputs: [{ flag: '--model', path: parsed.model }] });
  try {
    const dir = path.join(folder.staging, PLAN_DIR);
    fs.mkdirSync(path.join(dir, LOGS_DIR), { recursive: true });
    fs.mkdirSync(path.join(folder.staging, SHARDS_DIR));
    writeFileAtomic(path.join(dir, ARRAY_SCRIPT), slurmArrayScript({ cmd, sweepArgs: plan.sweepArgs, out, hash, s: settings }));
    writeFileAtomic(path.join(dir, MERGE_SCRIPT), slurmMergeScript({ cmd, out, hash, s: settings }));
    writeJsonAtomic(path.join(dir, PLAN_JSON), plan);
    folder.commit();
  } finally {
    folder.release();
  }
  info(`wrote ${path.join(parsed.out, PLAN_DIR, ARRAY_SCRIPT)} and ${MERGE_SCRIPT}: ${total} trials in ${shards} shards`);
  if (opts.dryRun) {
    printResult(opts, plan, () => `dry run: submit with\n  sbatch --array=0-${shards - 1} ${path.join(out, PLAN_DIR, ARRAY_SCRIPT)}\n  sbatch --dependency=afterok:ARRAY_JOB_ID ${path.join(out, PLAN_DIR, MERGE_SCRIPT)}`);
    return plan;
  }
  const claim = claimOutputFile(planFile);
  try {
    const jobs = submit(out, plan, [...Array(shards).keys()]);
    plan.submissions.push(jobs);
    writeJsonAtomic(planFile, plan);
    printResult(opts, plan, () => `array job ${jobs.arrayJob} (${shards} shards), merge job ${jobs.mergeJob}\nprogress: memristor-tfjs sweep status ${parsed.out}; result: ${path.join(parsed.out, 'sweep.csv')}`);
  } finally {
    claim.release();
  }
  return plan;
}

/**
 * `sweep ... --k8s`: writes OUT/cluster/sweep-jobs.yaml (an Indexed Job of the shards and a merge
 * Job) for `kubectl apply`; nothing is submitted. The paths must be relative to this folder, which
 * is the root of the volume the pods mount at /work.
 */
export async function sweepK8sCommand(opts: SweepCommandOptions & ClusterFlags): Promise<ClusterPlan> {
  const parsed = parseSweepOptions(opts);
  for (const [flag, p] of [['--model', parsed.model], ['--out', parsed.out], ['--dataset', (parsed.dataset ?? '').replace(/^[a-z0-9]+:/, '')], ['--device', parsed.device.endsWith('.json') ? parsed.device : '']] as const) {
    if (p && (path.isAbsolute(p) || path.normalize(p).startsWith('..'))) {
      throw new UsageError(`--k8s: ${flag} ${p} must be a path inside this folder, relative to it (the pods mount this folder's volume at /work and run there)`);
    }
  }
  if (opts.workers !== undefined) throw new UsageError('--k8s: give --cpus-per-task C instead of --workers (each shard runs C worker threads)');
  if (opts.resume) throw new UsageError('--k8s has no --resume: a failed index is retried alone by the Job (backoffLimitPerIndex); to rerun lost shards, delete the Job and apply the manifest again (done shards are kept unless you delete them)');
  const sweepPlan = planSweep(parsed);
  const total = sweepPlan.tasks.length;
  const shards = intFlag(opts.shards, '--shards', 1) ?? Math.min(total, sweepPlan.points.length);
  shardRange(total, { index: 0, count: shards });
  const cpus = intFlag(opts.cpusPerTask, '--cpus-per-task', 1) ?? 1;
  const retries = intFlag(opts.retries, '--retries', 0) ?? 2;
  const image = opts.image ?? `memristor-tfjs:${packageVersion()}`;
  if (!/^[A-Za-z0-9][A-Za-z0-9._\/:@-]*$/.test(image)) throw new UsageError(`--image '${image}' is not an image reference`);
  const pvc = opts.pvc ?? 'memristor-tfjs-work';
  if (!/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(pvc)) throw new UsageError(`--pvc '${pvc}' is not a Kubernetes name (lower case letters, digits, '-')`);
  const hash = sweepHash(sweepIdentity(parsed, sweepPlan.base));
  const sweepArgs = sweepArgsOf(opts);
  const out = path.posix.normalize(parsed.out.split(path.sep).join('/'));
  const objects = k8sJobs({ sweepArgs, out, hash, s: { shards, image, pvc, cpusPerTask: cpus, retries } });
  const plan: ClusterPlan = { format: 'memristor-tfjs-sweep-cluster', hash, shards, engine: 'k8s', sweepArgs, cwd: K8S_WORKDIR, node: 'node', cli: 'memristor-tfjs', k8s: { image, pvc, cpusPerTask: cpus, retries }, submissions: [] };
  const folder = claimOutputFolder(parsed.out, { overwrite: opts.overwrite, inputs: [{ flag: '--model', path: parsed.model }] });
  try {
    const dir = path.join(folder.staging, PLAN_DIR);
    fs.mkdirSync(dir, { recursive: true });
    fs.mkdirSync(path.join(folder.staging, SHARDS_DIR));
    writeFileAtomic(path.join(dir, K8S_MANIFEST), k8sManifest(objects, hash));
    writeJsonAtomic(path.join(dir, PLAN_JSON), plan);
    folder.commit();
  } finally {
    folder.release();
  }
  const file = path.join(parsed.out, PLAN_DIR, K8S_MANIFEST);
  info(`wrote ${file}: ${total} trials in ${shards} shards (image ${image}, volume claim ${pvc} at ${K8S_WORKDIR})`);
  printResult(opts, plan, () => `apply with: kubectl apply -f ${file}\nprogress: memristor-tfjs sweep status ${parsed.out}; result: ${path.join(parsed.out, 'sweep.csv')}`);
  return plan;
}
