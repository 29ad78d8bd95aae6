// Data-parallel training throughput: `memristor-tfjs train --model mcnn --dataset mnist --epochs 1
// --seed 1 --workers W` for each W, in interleaved rounds (W = 1, 2, 1, 2, ...: a machine whose load
// changes moves both alike), each a CLI process as a user runs it. Per run, trainSamplesPerSec and
// testAccuracy of its metrics.json; per round, the speed ratio of each W to the first. Each round
// ends with the ceiling: as many `--workers 1` processes at once as the largest W, their summed
// samples/s over the first W's, what independent threads get out of the machine at that moment
// (on a machine whose cores other work keeps busy it stays near 1, whatever the code does).
// Prints a table and writes bench/data_parallel.json with the load average before and after.
//   node dist/bench/data_parallel.js [--rounds N] [--workers 1,2] [--model mcnn] [--train-samples N]
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { writeJsonAtomic } from '../src/atomic';
import { flag, runCli } from './cli_process';

interface Run {
  round: number;
  workers: number;
  batchSize: number;
  trainSamplesPerSec: number;
  trainSeconds: number;
  workerStartSeconds: number;
  testAccuracy: number;
  wallSeconds: number;
}

async function main(): Promise<void> {
  const rounds = Number(flag('--rounds', '3'));
  const workerCounts = flag('--workers', '1,2').split(',').map(Number);
  const model = flag('--model', 'mcnn');
  const trainSamples = flag('--train-samples', '');
  if (!Number.isInteger(rounds) || rounds < 1 || workerCounts.some((w) => !Number.isInteger(w) || w < 1)) {
    throw new Error('usage: data_parallel.js [--rounds N] [--workers 1,2] [--model NAME] [--train-samples N]');
  }
  const root = path.join(__dirname, '..', '..');
  const cli = path.join(root, 'bin', 'memristor-tfjs.js');
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'memristor-tfjs-dp-'));
  const loadBefore = os.loadavg();
  const runs: Run[] = [];
  const trainArgs = (w: number, out: string) => {
    const args = [cli, 'train', '--model', model, '--dataset', 'mnist', '--epochs', '1', '--seed', '1', '--workers', String(w), '--out', out, '--overwrite', '--no-progress'];
    return trainSamples ? [...args, '--train-samples', trainSamples] : args;
  };
  const metricsOf = (out: string) => JSON.parse(fs.readFileSync(path.join(out, 'metrics.json'), 'utf8'));
  const ceilings: number[] = [];
  const most = Math.max(...workerCounts);
  try {
    for (let round = 1; round <= rounds; round++) {
      for (const w of workerCounts) {
        const out = path.join(tmp, `w${w}`);
        const t0 = performance.now();
        await runCli(trainArgs(w, out));
        const m = metricsOf(out);
        const run: Run = {
          round,
          workers: w,
          batchSize: m.batchSize,
          trainSamplesPerSec: m.trainSamplesPerSec,
          trainSeconds: m.trainSeconds,
          workerStartSeconds: m.workerStartSeconds,
          testAccuracy: m.testAccuracy,
          wallSeconds: Number(((performance.now() - t0) / 1000).toFixed(2)),
        };
        runs.push(run);
        console.log(
          `round ${round}  workers ${w}  batch ${run.batchSize}  ${run.trainSamplesPerSec} samples/s  test ${(100 * run.testAccuracy).toFixed(2)}%  ` +
            `(train ${run.trainSeconds.toFixed(1)} s + start ${run.workerStartSeconds.toFixed(1)} s, wall ${run.wallSeconds} s)`,
        );
      }
      if (most > 1) {
        const outs = Array.from({ length: most }, (_, k) => path.join(tmp, `ceiling${k}`));
        await Promise.all(outs.map((o) => runCli(trainArgs(1, o))));
        const sum = outs.reduce((n, o) => n + metricsOf(o).trainSamplesPerSec, 0);
        const first = runs.find((x) => x.round === round && x.workers === workerCounts[0])!;
        ceilings.push(Number((sum / first.trainSamplesPerSec).toFixed(3)));
        console.log(`round ${round}  ceiling: ${most} x --workers 1 at once, ${sum} samples/s together, ${ceilings[ceilings.length - 1].toFixed(2)}x workers ${workerCounts[0]}`);
      }
    }
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
  // the ratio of each W to the first W of the same round
  const ratios: Record<string, number[]> = {};
  for (const w of workerCounts.slice(1)) {
    ratios[`${w}/${workerCounts[0]}`] = Array.from({ length: rounds }, (_, r) => {
      const a = runs.find((x) => x.round === r + 1 && x.workers === w)!;
      const b = runs.find((x) => x.round === r + 1 && x.workers === workerCounts[0])!;
      return Number((a.trainSamplesPerSec / b.trainSamplesPerSec).toFixed(3));
    });
  }
  if (ceilings.length) console.log(`ceiling (${most} independent single-thread runs at once): ${ceilings.map((x) => x.toFixed(2)).join(', ')}`);
  for (const [k, v] of Object.entries(ratios)) console.log(`speed ratio workers ${k}: ${v.map((x) => x.toFixed(2)).join(', ')} (range ${Math.min(...v).toFixed(2)}-${Math.max(...v).toFixed(2)})`);
  const file = path.join(root, 'bench', 'data_parallel.json');
  writeJsonAtomic(file, {
    date: new Date().toISOString(),
    model,
    cores: os.availableParallelism(),
    loadAverageBefore: loadBefore,
    loadAverageAfter: os.loadavg(),
    runs,
    ratios,
    ceilings,
  });
  console.log(`wrote ${file}`);
}

main().catch((e) => {
  console.error(e instanceof Error ? e.message : e);
  process.exit(1);
});
