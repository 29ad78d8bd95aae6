// `sweep --slurm` on a real Slurm: a single-node cluster started here (test/slurm_local.sh: munge,
// slurmctld, slurmd; as root), a 4-shard sweep submitted through sbatch (an array job and a merge
// job depending on it), its merged sweep.csv equal to the single-process sweep's; then one shard
// lost and `--slurm --resume` resubmitting that one alone. Without Slurm (or root) the test is
// skipped with the reason; MEMRISTOR_TFJS_REQUIRE_SLURM=1 (set by .ci/run) makes that a failure.
import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { dataset, modelDir, root, setUpSweepFixture } from './sweep_fixture';
import { runCli as run } from './helpers';

const onPath = (t: string) => [...(process.env.PATH ?? '').split(':'), '/usr/sbin', '/usr/bin'].some((d) => fs.existsSync(path.join(d, t)));
const missing = ['sbatch', 'squeue', 'slurmctld', 'slurmd', 'munged'].filter((t) => !onPath(t));
const reason = missing.length
  ? `${missing.join(', ')} not found (apt-get install slurm-wlm munge)`
  : process.getuid?.() !== 0
    ? 'not root (the single-node cluster writes /etc/slurm/slurm.conf and starts the daemons)'
    : !fs.existsSync(path.join(__dirname, '..', 'dist', 'src', 'cli.js'))
      ? 'dist/ is not built (npm run build): the Slurm jobs run bin/memristor-tfjs.js'
      : null;
const requireSlurm = process.env.MEMRISTOR_TFJS_REQUIRE_SLURM === '1';
if (reason) console.warn(`sweep_slurm.test: ${reason}: the Slurm end-to-end test is SKIPPED (MEMRISTOR_TFJS_REQUIRE_SLURM=1 makes this a failure)`);

setUpSweepFixture();

// not under root: the fixture removes root in an afterAll that runs before ours (which needs the pid files)
const state = fs.mkdtempSync(path.join(os.tmpdir(), 'mtfjs-slurm-state-'));
const script = path.join(__dirname, 'slurm_local.sh');
let started = false;

afterAll(() => {
  if (started) execFileSync('bash', [script, 'stop', state], { stdio: 'ignore' });
  fs.rmSync(state, { recursive: true, force: true });
});

const ARGS = ['--model', modelDir, '--device', 'yao2020', '--dataset', dataset, '--vary', 'tolerance=0.02,0.2', '--vary', 'stuck=0.05,0.2', '--trials', '2', '--seed', '3', '--array', '32x32', '--calibration-samples', '20', '--no-progress'];

/** Waits until none of the jobs is in squeue (at most `seconds`). */
async function waitForJobs(ids: string[], seconds: number): Promise<void> {
  const t0 = Date.now();
  for (;;) {
    const q = execFileSync('squeue', ['-h', '-o', '%i %T %r', '-j', ids.join(',')], { encoding: 'utf8' }).trim();
    if (q === '') return;
    if (/DependencyNeverSatisfied/.test(q)) throw new Error(`a shard failed; squeue: ${q}`);
    if (Date.now() - t0 > seconds * 1000) throw new Error(`the Slurm jobs did not end in ${seconds} s; squeue: ${q}`);
    await new Promise((r) => setTimeout(r, 1000));
  }
}

const ids = (plan: { submissions: { arrayJob: string | null; mergeJob: string | null }[] }) => plan.submissions.flatMap((s) => [s.arrayJob, s.mergeJob]).filter((x): x is string => !!x);

(reason && !requireSlurm ? test.skip : test)(
  'a 4-shard --slurm sweep through sbatch merges to the single-process sweep; --resume reruns a lost shard alone',
  async () => {
    if (reason) throw new Error(`Slurm is required (MEMRISTOR_TFJS_REQUIRE_SLURM=1) but ${reason}`);
    try {
      execFileSync('bash', [script, 'start', state], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
      started = true;
    } catch (e) {
      started = true; // stop whatever did start
      throw new Error(`could not start the single-node Slurm: ${String((e as { stdout?: string }).stdout ?? e).trim()}`);
    }
    const one = await run('sweep', ...ARGS, '--workers', '1', '--out', path.join(root, 'slurm-one'));
    expect(one.code).toBe(0);
    const expected = fs.readFileSync(path.join(root, 'slurm-one', 'sweep.csv'), 'utf8');

    const out = path.join(root, 'slurm-sweep');
    const sub = await run('sweep', ...ARGS, '--slurm', '--shards', '4', '--out', out, '--json');
    expect(sub.err).not.toMatch(/error/);
    expect(sub.code).toBe(0);
    const plan = JSON.parse(sub.out);
    expect(plan.submissions).toHaveLength(1);
    expect(plan.submissions[0].arrayJob).toMatch(/^\d+$/);
    expect(plan.submissions[0].mergeJob).toMatch(/^\d+$/);
    await waitForJobs(ids(plan), 240);
    for (let i = 0; i < 4; i++) expect(fs.existsSync(path.join(out, 'shards', `shard-${i}-of-4`, `shard-${i}-of-4.json`))).toBe(true);
    expect(fs.readFileSync(path.join(out, 'sweep.csv'), 'utf8')).toBe(expected);

    // a lost shard (and the merged files): --resume submits that shard alone, and the merge again
    fs.rmSync(path.join(out, 'shards', 'shard-2-of-4'), { recursive: true });
    fs.rmSync(path.join(out, 'sweep.csv'));
    const st = await run('sweep', 'status', out, '--json');
    expect(JSON.parse(st.out).missing).toEqual([2]);
    const res = await run('sweep', ...ARGS, '--slurm', '--shards', '4', '--resume', '--out', out, '--json');
    expect(res.err).not.toMatch(/error/);
    expect(res.code).toBe(0);
    const plan2 = JSON.parse(res.out);
    expect(plan2.submissions).toHaveLength(2);
    expect(plan2.submissions[1].shards).toEqual([2]);
    await waitForJobs(ids(plan2), 240);
    expect(fs.readFileSync(path.join(out, 'sweep.csv'), 'utf8')).toBe(expected);
    // the array task of the resubmission ran shard 2 only: Slurm's log of it is there
    expect(fs.readFileSync(path.join(out, 'cluster', 'logs', 'shard-2.out'), 'utf8')).toMatch(/shard 2\/4/);
  },
  600000,
);
