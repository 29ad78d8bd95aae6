import * as fs from 'fs';
import * as path from 'path';
import { tf } from '../src/tf';
import { initBackend } from '../src/backend';
import { loadDataset } from '../src/data/datasets';
import { buildModel } from '../models/registry';
import { fit, evaluateModel, makeOptimizer, TrainConfig } from '../training/offline';
import { learningRateAt } from '../training/schedule';
import { readCheckpoint, hasCheckpoint, CHECKPOINT_POINTER } from '../training/checkpoint';
import { saveModel, loadModel } from '../src/model_io';
import { tempDirs, trainConfig, weightsOf } from './helpers';

const data = loadDataset('mnist', { trainSamples: 4096, testSamples: 500 });
const input = { train: data.train, validation: null, imageShape: data.imageShape, numClasses: 10 };
const cfg = (over: Partial<TrainConfig> = {}): TrainConfig => trainConfig({ batchSize: 32, ...over });
const tmp = tempDirs('train');

beforeAll(async () => {
  await initBackend('wasm');
});

describe('learning-rate schedules', () => {
  test('cosine decays from lr to 0 over the run, half way at the middle', () => {
    const s = { name: 'cosine' as const, learningRate: 0.01, totalSteps: 100 };
    expect(learningRateAt(s, 0)).toBeCloseTo(0.01, 12);
    expect(learningRateAt(s, 50)).toBeCloseTo(0.005, 12);
    expect(learningRateAt(s, 100)).toBeCloseTo(0, 12);
    expect(learningRateAt(s, 25)).toBeCloseTo(0.005 * (1 + Math.cos(Math.PI / 4)), 12);
  });
  test('step and warm-up', () => {
    expect(learningRateAt({ name: 'step', learningRate: 1, totalSteps: 90, stepSize: 30, gamma: 0.5 }, 65)).toBe(0.25);
    expect(learningRateAt({ name: 'constant', learningRate: 0.1, totalSteps: 10, warmupSteps: 4 }, 1)).toBeCloseTo(0.05, 12);
  });
});

describe('offline training', () => {
  test('mcnn learns MNIST from 4,096 samples in one epoch (>= 85% on 500 test images)', async () => {
    const model = buildModel('mcnn', { seed: 1 });
    const { result } = await fit(model, input, cfg());
    expect(result.history).toHaveLength(1);
    expect(result.steps).toBe(128);
    const acc = evaluateModel(model, data.test, data.imageShape, 10).accuracy;
    expect(acc).toBeGreaterThanOrEqual(0.85);
    model.dispose();
  });

  test('same seed gives bit-identical weights; another seed does not', async () => {
    const run = async (seed: number) => {
      const m = buildModel('park', { seed });
      await fit(m, { ...input, train: { ...data.train, count: 512, images: data.train.images.subarray(0, 512 * 784), labels: data.train.labels.subarray(0, 512) } }, cfg({ seed }));
      const w = weightsOf(m);
      m.dispose();
      return w;
    };
    const a = await run(5);
    const b = await run(5);
    const c = await run(6);
    expect(b).toEqual(a);
    expect(c).not.toEqual(a);
  });

  test('a checkpoint per epoch; resume gives the same weights as an uninterrupted run', async () => {
    const dir = tmp();
    const small = { ...input, train: { count: 640, images: data.train.images.subarray(0, 640 * 784), labels: data.train.labels.subarray(0, 640) } };
    const straight = buildModel('mcnn', { seed: 2 });
    await fit(straight, small, cfg({ epochs: 2, seed: 2 }));
    const want = weightsOf(straight);

    const once = buildModel('mcnn', { seed: 2 });
    let epochs = 0;
    const ckptCfg = cfg({ epochs: 2, seed: 2, checkpointDir: dir });
    // Stop after epoch 1 of the two-epoch schedule, as an interrupted run would.
    await fit(once, small, { ...ckptCfg, stopAfterEpoch: 1, onEpoch: () => { epochs++; } });
    expect(epochs).toBe(1);
    expect(hasCheckpoint(dir)).toBe(true);
    const resume = await readCheckpoint(dir, () => makeOptimizer('adam', 0.01));
    expect(resume.state.epoch).toBe(1);
    const { model: resumed } = await fit(resume.model, small, ckptCfg, resume);
    expect(weightsOf(resumed)).toEqual(want);
    expect(JSON.parse(fs.readFileSync(path.join(dir, CHECKPOINT_POINTER), 'utf8')).epoch).toBe(2);
    expect(fs.readdirSync(dir).filter((f) => f.startsWith('checkpoint-epoch-'))).toEqual(['checkpoint-epoch-2']);
    [straight, once, resumed].forEach((m) => m.dispose());
  });

  test("evaluateModel's loss is the mean cross-entropy (a plain loop in double over the logits)", async () => {
    const m = buildModel('mcnn', { seed: 2 });
    const split = { images: data.test.images.subarray(0, 30 * 784), labels: data.test.labels.subarray(0, 30), count: 30 };
    const r = evaluateModel(m, split, data.imageShape, 10, 7);
    const x = tf.tensor4d(Float32Array.from(split.images, (v) => v / 255), [30, 28, 28, 1]);
    const logits = (m.predict(x) as tf.Tensor).dataSync();
    let sum = 0;
    for (let i = 0; i < 30; i++) {
      const row = Array.from(logits.subarray(10 * i, 10 * i + 10));
      const max = Math.max(...row);
      const lse = max + Math.log(row.reduce((a, v) => a + Math.exp(v - max), 0));
      sum += lse - row[split.labels[i]];
    }
    expect(r.loss).toBeCloseTo(sum / 30, 4);
    x.dispose();
    m.dispose();
  });

  test('a bad config is refused with the field named', async () => {
    const m = buildModel('mcnn', { seed: 1 });
    await expect(fit(m, input, cfg({ epochs: 0 }))).rejects.toThrow(/epochs/);
    await expect(fit(m, input, cfg({ learningRate: -1 }))).rejects.toThrow(/learningRate/);
    m.dispose();
  });
});

describe('model files', () => {
  test('save -> load gives the same outputs, in the standard tfjs layout', async () => {
    const dir = tmp();
    const m = buildModel('mcnn', { seed: 4 });
    await saveModel(m, dir, { note: 'x' });
    const json = JSON.parse(fs.readFileSync(path.join(dir, 'model.json'), 'utf8'));
    expect(json.format).toBe('layers-model');
    expect(json.weightsManifest[0].paths).toEqual(['weights.bin']);
    const bytes = json.weightsManifest[0].weights.reduce((n: number, w: { shape: number[] }) => n + 4 * w.shape.reduce((a, b) => a * b, 1), 0);
    expect(fs.statSync(path.join(dir, 'weights.bin')).size).toBe(bytes);
    const { model: back, metadata } = await loadModel(dir);
    expect(metadata).toEqual({ note: 'x' });
    const x = tf.tensor4d(data.test.images.subarray(0, 4 * 784), [4, 28, 28, 1], 'int32').toFloat().div(255);
    const a = (m.predict(x) as tf.Tensor).dataSync();
    const b = (back.predict(x) as tf.Tensor).dataSync();
    expect(Array.from(b)).toEqual(Array.from(a));
    // No temporary files left behind.
    expect(fs.readdirSync(dir).sort()).toEqual(['model.json', 'weights.bin']);
  });

  test('bad model folders are refused naming the file', async () => {
    const dir = tmp();
    await expect(loadModel(dir)).rejects.toThrow(/model\.json: cannot read/);
    const m = buildModel('park', { seed: 1 });
    await saveModel(m, dir);
    const wb = path.join(dir, 'weights.bin');
    fs.writeFileSync(wb, fs.readFileSync(wb).subarray(0, 100));
    await expect(loadModel(dir)).rejects.toThrow(/weights\.bin: holds 100 bytes/);
    fs.writeFileSync(path.join(dir, 'model.json'), '{"modelTopology": ');
    await expect(loadModel(dir)).rejects.toThrow(/model\.json: not valid JSON/);
  });
});
