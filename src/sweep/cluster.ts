// The job files of a sweep run on a cluster (`sweep --slurm`, `sweep --k8s`): an array of shard
// jobs (`sweep --shard I/N`, the task index picks I) and a merge job that runs when they all
// succeeded (`sweep merge`). Every job runs the same package (the node binary and the CLI file of
// the submitting machine, by absolute path) in the same working folder: a shared filesystem, as on
// every Slurm cluster; on Kubernetes the image holds the package and a volume the folder.
//
// Folder of a cluster sweep (OUT):
//   cluster/plan.json             what was submitted: the sweep's hash, the shard count, the job ids
//   cluster/sweep-array.sbatch    (Slurm) or cluster/sweep-jobs.yaml (Kubernetes)
//   cluster/sweep-merge.sbatch
//   cluster/logs/                 Slurm's output of every task
//   shards/shard-I-of-N/shard-I-of-N.json
//   sweep.json, sweep.csv         written by the merge job
import * as fs from 'fs';
import * as path from 'path';
import { UsageError } from '../errors';
import { shardFileName } from './shard';

export const SHARDS_DIR = 'shards';
export const LOGS_DIR = 'logs';
export const ARRAY_SCRIPT = 'sweep-array.sbatch';
export const MERGE_SCRIPT = 'sweep-merge.sbatch';
export const K8S_MANIFEST = 'sweep-jobs.yaml';

/** The package's root folder (the one with its package.json), from this file's place. */
export function packageRoot(): string {
  for (let dir = __dirname; ; dir = path.dirname(dir)) {
    const f = path.join(dir, 'package.json');
    if (fs.existsSync(f) && JSON.parse(fs.readFileSync(f, 'utf8')).name === 'memristor-tfjs') return dir;
    if (path.dirname(dir) === dir) throw new Error(`memristor-tfjs: no package.json above ${__dirname}`);
  }
}

/** How every job starts the package: node, the CLI file, the working folder (all absolute). */
export interface JobCommand {
  node: string;
  cli: string;
  cwd: string;
}

export function localJobCommand(): JobCommand {
  return { node: process.execPath, cli: path.join(packageRoot(), 'bin', 'memristor-tfjs.js'), cwd: process.cwd() };
}

/** A word quoted for bash (single quotes; a ' inside as '\''). */
export function shellQuote(s: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

export interface SlurmSettings {
  shards: number;
  partition?: string;
  time?: string;
  cpusPerTask: number;
  /** Extra sbatch options (--account=X, --qos=Y, --mem=4G ...), one `#SBATCH` line each. */
  sbatchArgs: string[];
}

/** Checks --partition, --time and --sbatch-arg (a line break would end the #SBATCH line). */
export function checkSlurmSettings(s: SlurmSettings): void {
  for (const [flag, v] of [['--partition', s.partition], ['--time', s.time]] as const) {
    if (v !== undefined && !/^[A-Za-z0-9_.:,\-]+$/.test(v)) throw new UsageError(`${flag} '${v}': letters, digits and _ . : , - only`);
  }
  for (const a of s.sbatchArgs) {
    if (!a.startsWith('-') || /[\n\r]/.test(a)) throw new UsageError(`--sbatch-arg '${a}': give one sbatch option, e.g. --sbatch-arg=--account=lab or --sbatch-arg=--mem=4G`);
  }
}

function headerLines(s: SlurmSettings): string[] {
  const lines: string[] = [];
  if (s.partition) lines.push(`#SBATCH --partition=${s.partition}`);
  if (s.time) lines.push(`#SBATCH --time=${s.time}`);
  for (const a of s.sbatchArgs) lines.push(`#SBATCH ${a}`);
  return lines;
}

/**
 * The array job: task I runs `sweep ARGS --shard I/N --out OUT/shards/shard-I-of-N`. The task
 * list (--array) is given to sbatch on its command line (all shards, or those missing on --resume).
 */
export function slurmArrayScript(o: { cmd: JobCommand; sweepArgs: string[]; out: string; hash: string; s: SlurmSettings }): string {
  const { cmd, out, s } = o;
  const n = s.shards;
  const shardOut = `${shellQuote(path.join(out, SHARDS_DIR))}/shard-"$i"-of-${n}`;
  return [
    '#!/bin/bash',
    `# memristor-tfjs sweep ${o.hash}: shard I of ${n} for array task I (submitted with sbatch --array=LIST).`,
    `#SBATCH --job-name=mtfjs-sweep-${o.hash.slice(0, 8)}`,
    `#SBATCH --array=0-${n - 1}`,
    `#SBATCH --cpus-per-task=${s.cpusPerTask}`,
    `#SBATCH --output=${path.join(out, 'cluster', LOGS_DIR)}/shard-%a.out`,
    ...headerLines(s),
    'set -euo pipefail',
    'i=${SLURM_ARRAY_TASK_ID:?run this script as a Slurm array job: sbatch --array=0-' + (n - 1) + '}',
    `# the same package and working folder as the submission (a shared filesystem)`,
    `cd ${shellQuote(cmd.cwd)}`,
    `exec ${shellQuote(cmd.node)} ${shellQuote(cmd.cli)} sweep ${o.sweepArgs.map(shellQuote).join(' ')} --workers ${s.cpusPerTask} --shard "$i/${n}" --out ${shardOut} --overwrite --no-progress`,
    '',
  ].join('\n');
}

/** The merge job (submitted with --dependency=afterok:ARRAY): sweep.json and sweep.csv into OUT. */
export function slurmMergeScript(o: { cmd: JobCommand; out: string; hash: string; s: SlurmSettings }): string {
  const { cmd, out } = o;
  return [
    '#!/bin/bash',
    `# memristor-tfjs sweep ${o.hash}: merges the ${o.s.shards} shards into sweep.json and sweep.csv (after the array job succeeded).`,
    `#SBATCH --job-name=mtfjs-merge-${o.hash.slice(0, 8)}`,
    `#SBATCH --cpus-per-task=1`,
    `#SBATCH --output=${path.join(out, 'cluster', LOGS_DIR)}/merge.out`,
    ...headerLines(o.s),
    'set -euo pipefail',
    `cd ${shellQuote(cmd.cwd)}`,
    `exec ${shellQuote(cmd.node)} ${shellQuote(cmd.cli)} sweep merge --out ${shellQuote(out)} ${shellQuote(path.join(out, SHARDS_DIR))}`,
    '',
  ].join('\n');
}

/** `0-3` for all of 4, `1,3` for some. */
export function arraySpec(indices: readonly number[], n: number): string {
  if (indices.length === n && indices.every((v, i) => v === i)) return `0-${n - 1}`;
  return indices.join(',');
}

/** The shard file of shard i of a cluster sweep folder. */
export function clusterShardFile(out: string, i: number, n: number): string {
  return path.join(out, SHARDS_DIR, `shard-${i}-of-${n}`, shardFileName({ index: i, count: n }));
}

export interface K8sSettings {
  shards: number;
  /** The image that holds this package (see Dockerfile), e.g. registry.example.org/memristor-tfjs:0.1.0. */
  image: string;
  /** The PersistentVolumeClaim (ReadWriteMany) mounted at /work: the model, the data and OUT. */
  pvc: string;
  cpusPerTask: number;
  /** Retries of a failed index, alone (backoffLimitPerIndex). */
  retries: number;
}

/** Where the shared volume is mounted in every pod (the working folder of the jobs). */
export const K8S_WORKDIR = '/work';

/** A Kubernetes object name part: lower case letters, digits and '-'. */
const k8sName = (hash: string) => `mtfjs-sweep-${hash.slice(0, 10)}`;

/**
 * The Indexed Job of the shards (completionMode: Indexed; pod I runs shard JOB_COMPLETION_INDEX;
 * backoffLimitPerIndex retries a failed index alone) and the merge Job, which waits for every shard
 * file and merges (Kubernetes has no job dependencies). `out` and every path in `sweepArgs` are
 * relative to the volume's root, the jobs' working folder.
 */
export function k8sJobs(o: { sweepArgs: string[]; out: string; hash: string; s: K8sSettings }): Record<string, unknown>[] {
  const { s, out } = o;
  const name = k8sName(o.hash);
  const labels = { 'app.kubernetes.io/name': 'memristor-tfjs', 'memristor-tfjs/sweep': o.hash.slice(0, 10) };
  const volume = { name: 'work', persistentVolumeClaim: { claimName: s.pvc } };
  const mount = { name: 'work', mountPath: K8S_WORKDIR };
  const q = (a: string[]) => a.map(shellQuote).join(' ');
  const shardCmd =
    `exec memristor-tfjs sweep ${q(o.sweepArgs)} --workers ${s.cpusPerTask} --shard "$JOB_COMPLETION_INDEX/${s.shards}" ` +
    `--out ${shellQuote(path.posix.join(out, SHARDS_DIR))}/shard-"$JOB_COMPLETION_INDEX"-of-${s.shards} --overwrite --no-progress`;
  const mergeCmd =
    `until memristor-tfjs sweep merge --out ${shellQuote(out)} ${shellQuote(path.posix.join(out, SHARDS_DIR))}; ` +
    `do echo "waiting for the shards (memristor-tfjs sweep status ${out})"; sleep 20; done`;
  const shards = {
    apiVersion: 'batch/v1',
    kind: 'Job',
    metadata: { name, labels },
    spec: {
      completionMode: 'Indexed',
      completions: s.shards,
      parallelism: s.shards,
      backoffLimitPerIndex: s.retries,
      maxFailedIndexes: s.shards,
      template: {
        metadata: { labels },
        spec: {
          restartPolicy: 'Never',
          containers: [
            {
              name: 'shard',
              image: s.image,
              workingDir: K8S_WORKDIR,
              command: ['sh', '-c', shardCmd],
              resources: { requests: { cpu: String(s.cpusPerTask) }, limits: { cpu: String(s.cpusPerTask) } },
              volumeMounts: [mount],
            },
          ],
          volumes: [volume],
        },
      },
    },
  };
  const merge = {
    apiVersion: 'batch/v1',
    kind: 'Job',
    metadata: { name: `${name}-merge`, labels },
    spec: {
      completions: 1,
      backoffLimit: 2,
      template: {
        metadata: { labels },
        spec: {
          restartPolicy: 'Never',
          containers: [{ name: 'merge', image: s.image, workingDir: K8S_WORKDIR, command: ['sh', '-c', mergeCmd], resources: { requests: { cpu: '1' } }, volumeMounts: [mount] }],
          volumes: [volume],
        },
      },
    },
  };
  return [shards, merge];
}

/** The manifest file: the objects as YAML documents (each written as JSON, which is YAML). */
export function k8sManifest(objects: readonly Record<string, unknown>[], hash: string): string {
  return `# memristor-tfjs sweep ${hash}: kubectl apply -f this file (from the folder that is the volume's root)\n` + objects.map((o) => `---\n${JSON.stringify(o, null, 2)}\n`).join('');
}
