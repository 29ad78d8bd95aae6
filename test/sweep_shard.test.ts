// Sharded sweeps (src/sweep/shard.ts, `sweep --shard`, `sweep merge`, `sweep status`): the
// partition of the (point, trial) pairs, shards merged into the single-process sweep's files bit
// for bit, and every refusal of merge; the Slurm scripts as written (--dry-run).
import * as fs from 'fs';
import * as path from 'path';
import { parseShard, shardRange } from '../src/sweep/shard';
import { UsageError } from '../src/errors';
import { dataset, modelDir, root, setUpSweepFixture } from './sweep_fixture';
import { runCli as run, errorOf, STACK } from './helpers';

setUpSweepFixture();

describe('the shard partition', () => {
  test('every (point, trial) pair in exactly one shard, sizes within one, for any N', () => {
    for (let total = 1; total <= 40; total++) {
      for (let n = 1; n <= total; n++) {
        const seen = new Array<number>(total).fill(0);
        const sizes: number[] = [];
        let prevEnd = 0;
        for (let i = 0; i < n; i++) {
          const r = shardRange(total, { index: i, count: n });
          expect(r.start).toBe(prevEnd); // contiguous, in order
          prevEnd = r.end;
          sizes.push(r.end - r.start);
          for (let t = r.start; t < r.end; t++) seen[t]++;
        }
        expect(seen.every((c) => c === 1)).toBe(true);
        expect(Math.max(...sizes) - Math.min(...sizes)).toBeLessThanOrEqual(1);
        expect(Math.min(...sizes)).toBeGreaterThanOrEqual(1);
      }
    }
    // a hand-computed case: 10 pairs in 4 shards -> 2, 3, 2, 3
    expect([0, 1, 2, 3].map((i) => shardRange(10, { index: i, count: 4 }))).toEqual([
      { start: 0, end: 2 },
      { start: 2, end: 5 },
      { start: 5, end: 7 },
      { start: 7, end: 10 },
    ]);
  });

  test('--shard I/N parsed; bad values and more shards than pairs refused', () => {
    expect(parseShard('2/5')).toEqual({ index: 2, count: 5 });
    expect(parseShard(' 0 / 1 ')).toEqual({ index: 0, count: 1 });
    for (const bad of ['5/5', '1/0', '-1/3', '1', 'a/b', '1/2/3']) expect(errorOf(() => parseShard(bad))).toBeInstanceOf(UsageError);
    expect(errorOf(() => shardRange(3, { index: 0, count: 4 })).message).toMatch(/only 3 trial\(s\).*at most 3 shards/);
  });
});

const ARGS = ['--model', modelDir, '--device', 'yao2020', '--dataset', dataset, '--vary', 'tolerance=0.02,0.2', '--vary', 'stuck=0.05,0.2', '--trials', '3', '--seed', '11', '--array', '32x32', '--calibration-samples', '20', '--no-progress'];
const dir = (name: string) => path.join(root, 'shard', name);

describe('shards and merge (the CLI)', () => {
  beforeAll(async () => {
    // the single-process sweep (4 points x 3 trials, in worker threads) and 5 shards of it (in process)
    const one = await run('sweep', ...ARGS, '--workers', '2', '--out', dir('one'));
    expect(one.code).toBe(0);
    for (let i = 0; i < 5; i++) {
      const r = await run('sweep', ...ARGS, '--workers', '1', '--shard', `${i}/5`, '--out', dir(`s${i}`));
      expect(r.err).not.toMatch(/error/);
      expect(r.code).toBe(0);
    }
  });

  test('a shard file holds its trials, the options and their hash, the version', () => {
    const s = JSON.parse(fs.readFileSync(path.join(dir('s1'), 'shard-1-of-5.json'), 'utf8'));
    expect(s.format).toBe('memristor-tfjs-sweep-shard');
    expect(s.packageVersion).toBe(JSON.parse(fs.readFileSync('package.json', 'utf8')).version);
    expect(s.hash).toMatch(/^[0-9a-f]{32}$/);
    expect(s.shard).toEqual({ index: 1, count: 5 });
    // 12 pairs in 5 shards: shard 1 has pairs 2 and 3 (floor(12/5) = 2 up to floor(24/5) = 4, exclusive)
    expect(s.tasks).toEqual({ start: 2, end: 4, total: 12 });
    expect(s.outcomes.map((o: { index: number }) => o.index)).toEqual([2, 3]);
    expect(s.options.vary).toEqual(['tolerance=0.02,0.2', 'stuck=0.05,0.2']);
    // every trial's accuracy is the single-process sweep's (trials 2 and 0 of points 0 and 1)
    const one = JSON.parse(fs.readFileSync(path.join(dir('one'), 'sweep.json'), 'utf8'));
    expect(s.outcomes.map((o: { before: number }) => o.before)).toEqual([one.points[0].before.values[2], one.points[1].before.values[0]]);
  });

  test('merged = the single-process sweep: sweep.csv byte for byte, sweep.json but for seconds, workers, mode', async () => {
    const r = await run('sweep', 'merge', '--out', dir('merged'), ...[0, 1, 2, 3, 4].map((i) => dir(`s${i}`)), '--json');
    expect(r.code).toBe(0);
    expect(fs.readFileSync(path.join(dir('merged'), 'sweep.csv'), 'utf8')).toBe(fs.readFileSync(path.join(dir('one'), 'sweep.csv'), 'utf8'));
    const one = JSON.parse(fs.readFileSync(path.join(dir('one'), 'sweep.json'), 'utf8'));
    const merged = JSON.parse(fs.readFileSync(path.join(dir('merged'), 'sweep.json'), 'utf8'));
    for (const k of ['seconds', 'workers', 'mode']) {
      delete one[k];
      delete merged[k];
    }
    expect(merged).toEqual(one);
    // the files, by path, in another order, work too
    const files = [4, 2, 0, 3, 1].map((i) => path.join(dir(`s${i}`), `shard-${i}-of-5.json`));
    const r2 = await run('sweep', 'merge', '--out', dir('merged2'), ...files);
    expect(r2.code).toBe(0);
    expect(fs.readFileSync(path.join(dir('merged2'), 'sweep.csv'), 'utf8')).toBe(fs.readFileSync(path.join(dir('one'), 'sweep.csv'), 'utf8'));
  });

  /** A merge that must be refused: exit 1, the problem named, no sweep.csv written. */
  async function refused(name: string, inputs: string[], problem: RegExp): Promise<void> {
    const out = dir(`bad-${name}`);
    const r = await run('sweep', 'merge', '--out', out, ...inputs);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(problem);
    expect(r.err).not.toMatch(STACK);
    expect(fs.existsSync(path.join(out, 'sweep.csv'))).toBe(false);
  }
  const all = () => [0, 1, 2, 3, 4].map((i) => dir(`s${i}`));
  const copyShard = (i: number, to: string, change?: (o: Record<string, unknown>) => void, cut?: number) => {
    const from = path.join(dir(`s${i}`), `shard-${i}-of-5.json`);
    fs.mkdirSync(dir(to), { recursive: true });
    let text = fs.readFileSync(from, 'utf8');
    if (change) {
      const o = JSON.parse(text);
      change(o);
      text = JSON.stringify(o);
    }
    if (cut !== undefined) text = text.slice(0, cut);
    fs.writeFileSync(path.join(dir(to), `shard-${i}-of-5.json`), text);
    return dir(to);
  };

  test('merge refuses a missing shard', async () => {
    await refused('missing', [dir('s0'), dir('s1'), dir('s3'), dir('s4')], /missing 1 of 5 shards: shard-2-of-5\.json/);
  });

  test('merge refuses a duplicated shard', async () => {
    await refused('dup', [...all(), copyShard(3, 'dup3')], /shard 3\/5 given 2 times: .*s3.*dup3/);
  });

  test('merge refuses a truncated shard file, naming it', async () => {
    const t = copyShard(2, 'trunc2', undefined, 300);
    await refused('trunc', [dir('s0'), dir('s1'), t, dir('s3'), dir('s4')], /trunc2\/shard-2-of-5\.json: is not valid JSON \(truncated/);
    // cut between two outcomes: valid JSON once fixed up, but a trial short
    const short = copyShard(2, 'short2', (o) => (o.outcomes as unknown[]).pop());
    await refused('short', [dir('s0'), dir('s1'), short, dir('s3'), dir('s4')], /short2\/shard-2-of-5\.json: holds 2 outcomes, its shard has 3 trials \(truncated\?\)/);
  });

  test('merge refuses shards of mixed options (another seed), naming the option', async () => {
    const r = await run('sweep', ...ARGS.map((a) => (a === '11' ? '12' : a)), '--workers', '1', '--shard', '4/5', '--out', dir('seed12'));
    expect(r.code).toBe(0);
    await refused('mixed', [dir('s0'), dir('s1'), dir('s2'), dir('s3'), dir('seed12')], /seed12\/shard-4-of-5\.json: another sweep \(options hash [0-9a-f]+, .* they differ in seed\)/);
  });

  test('merge refuses shards of mixed package versions', async () => {
    const v = copyShard(4, 'v099', (o) => (o.packageVersion = '0.0.99'));
    await refused('version', [dir('s0'), dir('s1'), dir('s2'), dir('s3'), v], /written by memristor-tfjs 0\.0\.99, .* by \d+\.\d+\.\d+/);
  });

  test('sweep status lists the done and missing shards', async () => {
    const d = dir('status');
    fs.mkdirSync(d, { recursive: true });
    for (const i of [0, 3]) fs.cpSync(dir(`s${i}`), path.join(d, `s${i}`), { recursive: true });
    const r = await run('sweep', 'status', d, '--json');
    expect(r.code).toBe(0);
    const s = JSON.parse(r.out);
    expect(s.count).toBe(5);
    expect(s.done.map((x: { index: number }) => x.index)).toEqual([0, 3]);
    expect(s.missing).toEqual([1, 2, 4]);
    const h = await run('sweep', 'status', d);
    expect(h.out).toMatch(/2 of 5 shards done, 3 missing/);
    expect(h.out).toMatch(/missing {2}shard-1-of-5\.json/);
  });
});

describe('sweep --slurm --dry-run: the scripts as written', () => {
  test('an array script (task index -> shard) and a merge script, run from this folder with this package', async () => {
    const out = dir('slurm-dry');
    const r = await run('sweep', ...ARGS, '--slurm', '--shards', '4', '--partition', 'cpu', '--time', '0:30:00', '--cpus-per-task', '2', '--sbatch-arg=--account=lab', '--dry-run', '--out', out);
    expect(r.err).not.toMatch(/error/);
    expect(r.code).toBe(0);
    const a = fs.readFileSync(path.join(out, 'cluster', 'sweep-array.sbatch'), 'utf8');
    const m = fs.readFileSync(path.join(out, 'cluster', 'sweep-merge.sbatch'), 'utf8');
    const abs = path.resolve(out);
    const cli = path.resolve('bin', 'memristor-tfjs.js');
    expect(a).toMatch(/^#!\/bin\/bash\n/);
    for (const line of ['#SBATCH --array=0-3', '#SBATCH --cpus-per-task=2', '#SBATCH --partition=cpu', '#SBATCH --time=0:30:00', '#SBATCH --account=lab', `#SBATCH --output=${abs}/cluster/logs/shard-%a.out`, `cd ${process.cwd()}`]) {
      expect(a.split('\n')).toContain(line);
    }
    expect(a).toContain('i=${SLURM_ARRAY_TASK_ID:?');
    expect(a).toContain(`exec ${process.execPath} ${cli} sweep --model ${modelDir} --device yao2020 --vary tolerance=0.02,0.2 --vary stuck=0.05,0.2 --trials 3 --seed 11 --dataset ${dataset} --calibration-samples 20`);
    expect(a).toContain(`--workers 2 --shard "$i/4" --out ${abs}/shards/shard-"$i"-of-4 --overwrite --no-progress`);
    expect(m.split('\n')).toContain(`exec ${process.execPath} ${cli} sweep merge --out ${abs} ${abs}/shards`);
    expect(m.split('\n')).toContain('#SBATCH --account=lab');
    const plan = JSON.parse(fs.readFileSync(path.join(out, 'cluster', 'plan.json'), 'utf8'));
    expect(plan.shards).toBe(4);
    expect(plan.submissions).toEqual([]);
    // the hash of the plan is that of the shards the array tasks write
    const s1 = JSON.parse(fs.readFileSync(path.join(dir('s1'), 'shard-1-of-5.json'), 'utf8'));
    expect(plan.hash).toBe(s1.hash);
  });

  test('bad cluster flags are refused, naming the flag', async () => {
    const r = await run('sweep', ...ARGS, '--slurm', '--shards', '13', '--dry-run', '--out', dir('slurm-bad'));
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/at most 12 shards/);
    const r2 = await run('sweep', ...ARGS, '--slurm', '--sbatch-arg', 'account=lab', '--dry-run', '--out', dir('slurm-bad2'));
    expect(r2.code).toBe(2);
    expect(r2.err).toMatch(/--sbatch-arg 'account=lab'/);
    const r3 = await run('sweep', ...ARGS, '--resume', '--out', dir('slurm-bad3'));
    expect(r3.code).toBe(2);
    expect(r3.err).toMatch(/--resume goes with --slurm/);
  });
});
