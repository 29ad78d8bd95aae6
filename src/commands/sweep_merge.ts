// `memristor-tfjs sweep merge` and `sweep status`: the shards of a sweep (sweep --shard I/N, run
// anywhere: a Slurm array, a Kubernetes Indexed Job, by hand) checked and merged into sweep.json
// and sweep.csv, equal to those of the same sweep in one process (src/sweep/shard.ts).
import * as fs from 'fs';
import * as path from 'path';
import { claimOutputFile, claimOutputFolder } from '../output_folder';
import { ShardMergeError, UsageError } from '../errors';
import { SWEEP_CSV, SWEEP_JSON, SweepResult, formatSweepTable, sweepCsv, writeSweepFiles } from '../sweep';
import { PLAN_DIR, PLAN_JSON, ShardStatus, mergeShards, readPlanHash, shardFileName, shardStatus } from '../sweep/shard';
import { writeFileAtomic, writeJsonAtomic } from '../atomic';
import { CommonOptions, info, printResult } from './common';

export interface SweepMergeOptions extends CommonOptions {
  out: string;
  overwrite?: boolean;
}

/**
 * Merges the shards into OUT. A plain OUT is claimed as a new output folder (refused when it holds a
 * result, without --overwrite). A cluster sweep folder (OUT/cluster/plan.json, written by --slurm
 * or --k8s), which holds the shards themselves, gets sweep.json and sweep.csv beside them, each
 * file claimed and written atomically.
 */
export async function sweepMergeCommand(inputs: string[], opts: SweepMergeOptions): Promise<SweepResult> {
  if (!opts.out) throw new UsageError('sweep merge: give --out DIR (sweep.json and sweep.csv are written there)');
  if (inputs.length === 0) throw new UsageError('sweep merge: give the shard files or the folders that hold them');
  const { result, shards } = mergeShards(inputs);
  let files: string[];
  const planned = readPlanHash(opts.out);
  if (planned) {
    const got = shards[0].shard;
    if (got.hash !== planned.hash || got.shard.count !== planned.shards) {
      throw new ShardMergeError([`the shards are of sweep ${got.hash} in ${got.shard.count} shards; ${path.join(opts.out, PLAN_DIR, PLAN_JSON)} plans sweep ${planned.hash} in ${planned.shards}`]);
    }
    files = [path.join(opts.out, SWEEP_JSON), path.join(opts.out, SWEEP_CSV)];
    const claims = files.map((f) => claimOutputFile(f));
    try {
      writeJsonAtomic(files[0], result);
      writeFileAtomic(files[1], sweepCsv(result));
    } finally {
      for (const c of claims) c.release();
    }
  } else {
    const folder = claimOutputFolder(opts.out, { overwrite: opts.overwrite, inputs: inputs.map((p) => ({ flag: 'SHARDS', path: p })) });
    try {
      files = writeSweepFiles(folder.staging, result).map((f) => path.join(folder.final, path.basename(f)));
      folder.commit();
    } finally {
      folder.release();
    }
  }
  info(`merged ${shards.length} shard(s); wrote ${files.join(' and ')}`);
  printResult(opts, result, () => formatSweepTable(result));
  return result;
}

export function formatShardStatus(dir: string, s: ShardStatus): string {
  if (s.count === null) return `${dir}: no shards yet${s.bad.length ? `\n  not counted: ${s.bad.join('\n  not counted: ')}` : ''}`;
  const lines = [`${dir}: sweep ${s.hash}, ${s.done.length} of ${s.count} shards done, ${s.missing.length} missing`];
  for (const d of s.done) lines.push(`  done     ${shardFileName({ index: d.index, count: s.count })}  (${d.seconds.toFixed(1)} s)  ${d.file}`);
  for (const i of s.missing) lines.push(`  missing  ${shardFileName({ index: i, count: s.count })}`);
  for (const b of s.bad) lines.push(`  not counted: ${b}`);
  return lines.join('\n');
}

/** `sweep status DIR`: the done and missing shards (exit code 0 either way). */
export async function sweepStatusCommand(dir: string, opts: CommonOptions): Promise<ShardStatus> {
  const s = shardStatus(dir);
  printResult(opts, s, () => formatShardStatus(dir, s));
  return s;
}
