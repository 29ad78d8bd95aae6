// Data-parallel training (training/data_parallel.ts): the update of W threads is the update of one
// thread on the whole batch, the same seed and W give the same weights, one thread is the single
// loop bit for bit, and a worker that fails ends the run with an error naming it. The workers run
// the compiled dist/ (npm run build).
import * as fs from 'fs';
import * as path from 'path';
import { tf } from '../src/tf';
import { initBackend } from '../src/backend';
import { loadDataset } from '../src/data/datasets';
import { batchesOf } from '../src/data/batches';
import { SeededRandom } from '../src/random';
import { buildModel } from '../models/registry';
import { fit, makeOptimizer, TrainConfig } from '../training/offline';
import { shareOf } from '../training/data_parallel';
import { readCheckpoint, readCheckpointState } from '../training/checkpoint';
import { parallelDefaults } from '../training/pipeline';
import { getNoiseCounters } from '../layers';
import * as os from 'os';
import { runCli, STACK, tempDirs, trainConfig, weightsOf } from './helpers';

const data = loadDataset('mnist', { trainSamples: 300, testSamples: 10 });
const input = { train: data.train, validation: null, imageShape: data.imageShape, numClasses: 10 };
const cfg = (over: Partial<TrainConfig> = {}): TrainConfig => trainConfig({ batchSize: 50, ...over });
const tmp = tempDirs('data-parallel');
/** Noise that changes every batch: replicas that drew different noise would not add up to one batch's gradient. */
const NOISE = { programmingSigma: 0.05, readNoiseSigma: 0.05 };

/** A stock tfjs model (no layer of this package), seeded. */
function stockModel(batchNorm: boolean): tf.LayersModel {
  const m = tf.sequential();
  m.add(tf.layers.conv2d({ inputShape: [28, 28, 1], filters: 4, kernelSize: 5, strides: 3, activation: 'relu', kernelInitializer: tf.initializers.glorotUniform({ seed: 1 }) }));
  if (batchNorm) m.add(tf.layers.batchNormalization({ momentum: 0.9 }));
  m.add(tf.layers.flatten());
  m.add(tf.layers.dense({ units: 10, kernelInitializer: tf.initializers.glorotUniform({ seed: 2 }) }));
  return m;
}

/**
 * The gradient of the mean cross-entropy of the first `n` training samples (file order), by
 * tf.variableGrads on the whole batch in this thread: the reference.
 */
function batchGradient(model: tf.LayersModel, n: number): Float32Array[] {
  const b = batchesOf(data.train, { batchSize: n, numClasses: 10 }).next().value!;
  const x = tf.tensor4d(b.x, [n, 28, 28, 1]);
  const y = tf.tensor2d(b.oneHot, [n, 10]);
  const vars = model.trainableWeights.map((w) => w.read() as tf.Variable);
  const { value, grads } = tf.variableGrads(() => tf.losses.softmaxCrossEntropy(y, model.apply(x, { training: true }) as tf.Tensor2D) as tf.Scalar, vars);
  const out = vars.map((v) => grads[v.name].dataSync() as Float32Array);
  [x, y, value, ...Object.values(grads)].forEach((t) => t.dispose());
  return out;
}

/**
 * The gradient data-parallel training applied: one SGD step with learning rate 1 on a batch of all
 * `n` samples, read back as (weights before - weights after).
 */
async function parallelGradient(model: tf.LayersModel, n: number, workers: number): Promise<Float32Array[]> {
  const before = model.trainableWeights.map((w) => w.read().dataSync().slice() as Float32Array);
  const train = { images: data.train.images.subarray(0, n * 784), labels: data.train.labels.subarray(0, n), count: n };
  await fit(model, { ...input, train }, cfg({ batchSize: n, learningRate: 1, optimizer: 'sgd', schedule: 'constant', workers }));
  return model.trainableWeights.map((w, i) => {
    const after = w.read().dataSync();
    return before[i].map((v, j) => v - after[j]);
  });
}

function expectClose(got: Float32Array[], want: Float32Array[], tol: number): void {
  expect(got.map((g) => g.length)).toEqual(want.map((w) => w.length));
  let worst = 0;
  let scale = 0;
  got.forEach((g, i) => g.forEach((v, j) => {
    worst = Math.max(worst, Math.abs(v - want[i][j]));
    scale = Math.max(scale, Math.abs(want[i][j]));
  }));
  expect(scale).toBeGreaterThan(1e-3); // a real gradient, not zeros
  expect(worst).toBeLessThan(tol);
}

beforeAll(async () => {
  await initBackend('wasm');
});

afterEach(() => {
  delete process.env.MEMRISTOR_TFJS_WORKER_FAULT;
});

describe('shares of a batch', () => {
  test('contiguous, covering the batch, sizes differing by at most one', () => {
    expect([0, 1, 2].map((i) => shareOf(100, 3, i))).toEqual([[0, 34], [34, 33], [67, 33]]);
    expect([0, 1].map((i) => shareOf(32, 2, i))).toEqual([[0, 16], [16, 16]]);
    expect([0, 1, 2].map((i) => shareOf(2, 3, i))).toEqual([[0, 1], [1, 1], [2, 0]]);
  });

  test('defaults: each thread keeps the model batch, the learning rate stays', () => {
    expect(parallelDefaults(32, 1, {})).toEqual({ batchSize: 32, learningRate: 0.01 });
    expect(parallelDefaults(32, 2, {})).toEqual({ batchSize: 64, learningRate: 0.01 });
    expect(parallelDefaults(32, 2, { batchSize: 40, lr: 0.003 })).toEqual({ batchSize: 40, learningRate: 0.003 });
  });
});

describe('the update of W threads is the gradient of the whole batch', () => {
  test('a stock tfjs model, 3 threads on uneven shares (34 + 33 + 33)', async () => {
    const ref = batchGradient(stockModel(false), 100);
    const got = await parallelGradient(stockModel(false), 100, 3);
    expectClose(got, ref, 2e-6);
  });

  test('mcnn (QuantConv2D, QuantDense) with device-variation noise, 2 threads: every share sees the noise of the batch', async () => {
    const ref = batchGradient(buildModel('mcnn', { seed: 2, variation: NOISE }), 64);
    const model = buildModel('mcnn', { seed: 2, variation: NOISE });
    const got = await parallelGradient(model, 64, 2);
    expectClose(got, ref, 2e-6);
    // one noisy pass a step, as the single loop counts them
    expect(Object.values(getNoiseCounters(model))).toEqual([1, 1, 1]);
  });
});

describe('a batch smaller than W', () => {
  test('a thread with no samples still moves the noise sequence on; the run matches one thread', async () => {
    // batches of 299 and 1: the second leaves worker 1 without a sample
    const run = async (workers: number) => {
      const m = buildModel('mcnn', { seed: 4, variation: NOISE });
      await fit(m, input, cfg({ batchSize: 299, workers }));
      const out = { w: weightsOf(m), counters: Object.values(getNoiseCounters(m)) };
      m.dispose();
      return out;
    };
    const two = await run(2);
    const one = await run(1);
    expect(two.counters).toEqual([2, 2, 2]);
    expect(one.counters).toEqual([2, 2, 2]);
    let worst = 0;
    two.w.forEach((w, i) => w.forEach((v, j) => (worst = Math.max(worst, Math.abs(v - one.w[i][j])))));
    expect(worst).toBeLessThan(1e-5);
  });
});

describe('determinism', () => {
  test('the same seed and W give the same weights bit for bit (2 epochs, noise, Adam, cosine)', async () => {
    const run = async () => {
      const m = buildModel('mcnn', { seed: 5, variation: NOISE });
      const { result } = await fit(m, input, cfg({ epochs: 2, workers: 2 }));
      expect(result.steps).toBe(12);
      expect(result.workers).toBe(2);
      const w = weightsOf(m);
      m.dispose();
      return { w, loss: result.history.map((h) => h.loss) };
    };
    const a = await run();
    const b = await run();
    expect(b.w).toEqual(a.w);
    expect(b.loss).toEqual(a.loss);
    expect(a.loss[1]).toBeLessThan(a.loss[0]);
  });

  test('BatchNormalization: deterministic, and the moving statistics move (averaged over the replicas each epoch)', async () => {
    const run = async () => {
      const m = stockModel(true);
      const before = weightsOf(m);
      await fit(m, input, cfg({ workers: 2 }));
      const after = weightsOf(m);
      m.dispose();
      return { before, after };
    };
    const a = await run();
    const b = await run();
    expect(b.after).toEqual(a.after);
    // moving mean and variance (weights 4 and 5 of conv, bias, gamma, beta, mean, variance) moved
    expect(a.after[4]).not.toEqual(a.before[4]);
    expect(a.after[5]).not.toEqual(a.before[5]);
  });

  test('one thread is the single loop bit for bit (batchesOf + optimizer.minimize, as before data parallelism)', async () => {
    const model = buildModel('mcnn', { seed: 7, variation: NOISE });
    await fit(model, input, cfg({ epochs: 2, workers: 1 }));
    // the reference: the loop of training/offline.ts before data-parallel training, written out
    const ref = buildModel('mcnn', { seed: 7, variation: NOISE });
    const opt = makeOptimizer('adam', 0.01);
    const vars = ref.trainableWeights.map((w) => w.read() as tf.Variable);
    const steps = Math.ceil(300 / 50) * 2;
    let step = 0;
    for (let epoch = 0; epoch < 2; epoch++) {
      const rng = new SeededRandom(3).fork(`shuffle-${epoch}`);
      for (const b of batchesOf(data.train, { batchSize: 50, shuffle: rng, numClasses: 10 })) {
        (opt as unknown as { learningRate: number }).learningRate = 0.01 * (0.5 * (1 + Math.cos(Math.PI * (step / steps))));
        const x = tf.tensor4d(b.x, [b.size, 28, 28, 1]);
        const y = tf.tensor2d(b.oneHot, [b.size, 10]);
        opt.minimize(() => tf.losses.softmaxCrossEntropy(y, ref.apply(x, { training: true }) as tf.Tensor2D) as tf.Scalar, false, vars);
        x.dispose();
        y.dispose();
        step++;
      }
    }
    expect(weightsOf(model)).toEqual(weightsOf(ref));
    [model, ref].forEach((m) => m.dispose());
  });
});

describe('checkpoints and resume', () => {
  test('2 threads: resume after epoch 1 gives the weights of an uninterrupted run', async () => {
    const straight = buildModel('mcnn', { seed: 8, variation: NOISE });
    await fit(straight, input, cfg({ epochs: 2, workers: 2 }));
    const dir = tmp();
    const c = cfg({ epochs: 2, workers: 2, checkpointDir: dir, checkpointRun: { workers: 2 } });
    await fit(buildModel('mcnn', { seed: 8, variation: NOISE }), input, { ...c, stopAfterEpoch: 1 });
    const resume = await readCheckpoint(dir, () => makeOptimizer('adam', 0.01));
    expect(resume.state.epoch).toBe(1);
    expect(resume.state.run).toEqual({ workers: 2 });
    const { model: resumed } = await fit(resume.model, input, c, resume);
    expect(weightsOf(resumed)).toEqual(weightsOf(straight));
    [straight, resumed].forEach((m) => m.dispose());
  });
});

describe('a worker that fails', () => {
  test('throws: the run fails naming the worker, its step and its error; the last checkpoint stays', async () => {
    // worker 1 throws at global step 8, in the second epoch (6 steps an epoch)
    process.env.MEMRISTOR_TFJS_WORKER_FAULT = '1:8:throw';
    const dir = tmp();
    const model = buildModel('mcnn', { seed: 9 });
    const t0 = performance.now();
    await expect(fit(model, input, cfg({ epochs: 2, workers: 2, checkpointDir: dir }))).rejects.toThrow(
      /data-parallel training: worker 1 \(of 2 threads; the main thread is worker 0\) failed at step 8: injected fault \(MEMRISTOR_TFJS_WORKER_FAULT\) at step 8/,
    );
    expect(performance.now() - t0).toBeLessThan(60_000); // no barrier waits on a dead thread
    expect(readCheckpointState(dir).state.epoch).toBe(1);
    model.dispose();
  });

  test('exits: the run fails naming the worker and its exit code', async () => {
    process.env.MEMRISTOR_TFJS_WORKER_FAULT = '2:1:exit';
    const model = buildModel('mcnn', { seed: 9 });
    await expect(fit(model, input, cfg({ workers: 3 }))).rejects.toThrow(/worker 2 \(of 3 threads; the main thread is worker 0\) stopped \(exit code 3\) before the training was done/);
    model.dispose();
  });

  test('fails while starting: the run fails before any step, naming the worker', async () => {
    process.env.MEMRISTOR_TFJS_WORKER_FAULT = 'one:two';
    const model = buildModel('mcnn', { seed: 9 });
    await expect(fit(model, input, cfg({ workers: 2 }))).rejects.toThrow(
      "data-parallel training: worker 1 (of 2 threads; the main thread is worker 0) failed while starting: MEMRISTOR_TFJS_WORKER_FAULT must be WORKER:STEP:throw|exit, got 'one:two'",
    );
    model.dispose();
  });

  test('more threads than samples in a batch is refused', async () => {
    const model = buildModel('mcnn', { seed: 9 });
    await expect(fit(model, input, cfg({ batchSize: 2, workers: 3 }))).rejects.toThrow(/workers: 3 threads cannot share a batch of 2/);
    model.dispose();
  });
});

describe('train --workers', () => {
  test('--help names the default: the number of cores', async () => {
    const h = await runCli('train', '--help');
    expect(h.out.replace(/\s+/g, ' ')).toContain(`(default: the number of cores, os.availableParallelism(): ${os.availableParallelism()} here; 1: the single-thread loop)`);
  });

  test('2 threads: metrics.json says so (batch 2 x mcnn\'s 32, samples/s); resume on 1 thread is refused naming --workers', async () => {
    const out = path.join(tmp(), 'run');
    const base = ['train', '--model', 'mcnn', '--train-samples', '256', '--test-samples', '50', '--seed', '2', '--no-progress', '--backend', 'wasm', '--out', out];
    const r = await runCli(...base, '--workers', '2');
    expect(r.code).toBe(0);
    expect(r.err).toContain('data-parallel training on 2 threads: batches of 64, 32 samples a thread');
    const m = JSON.parse(fs.readFileSync(path.join(out, 'metrics.json'), 'utf8'));
    expect(m).toMatchObject({ workers: 2, batchSize: 64, learningRate: 0.01, trainSamples: 256 });
    expect(m.trainSamplesPerSec).toBeGreaterThan(0);
    expect(m.testAccuracy).toBeGreaterThan(0);
    const again = await runCli(...base, '--workers', '1', '--epochs', '2', '--resume');
    expect(again.code).toBe(2);
    expect(again.err).toContain('was written for workers 2 (--workers), this command asks for 1');
    expect(again.err).not.toMatch(STACK);
  });

  test('hybrid --workers 2: its offline training runs on 2 threads', async () => {
    const out = path.join(tmp(), 'h');
    const r = await runCli('hybrid', '--model', 'mcnn', '--device', 'yao2020', '--train-samples', '256', '--test-samples', '50', '--insitu-samples', '100', '--workers', '2', '--no-progress', '--backend', 'wasm', '--json', '--out', out);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.out).offline).toMatchObject({ workers: 2, batchSize: 64, trainSamples: 256 });
    expect(JSON.parse(fs.readFileSync(path.join(out, 'model', 'metrics.json'), 'utf8')).workers).toBe(2);
  });
});
