// The comparator neuron of binary layers (Chen et al.): the following max pools, BN and binary
// activation folded into per-column thresholds at mapping time, stored in the manifest, read
// back with validation, and compared with the column currents at inference.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { tf } from '../src/tf';
import { initBackend } from '../src/backend';
import { DeviceConfig, getPreset } from '../src/device/config';
import { FileFormatError } from '../src/errors';
import { SeededRandom } from '../src/random';
import { saveModel } from '../src/model_io';
import { QuantConv2D } from '../layers/quant_conv2d';
import { QuantDense } from '../layers/quant_dense';
import { QuantActivation } from '../layers/quant_activation';
import { ThresholdActivation, FLOAT32_MAX } from '../layers/bn_threshold';
import { buildModel } from '../models/registry';
import { CrossbarNetwork, crossbarRunner, disposeCrossbar, layerCounts, mappedWeights, loadCrossbar, mapModel, predictCrossbar, saveCrossbar } from '../src/crossbar';
import { comparatorReferenceUA } from '../src/crossbar/comparator';
import { mapCommand } from '../src/commands/map';
import { crossbarEvaluateCommand } from '../src/commands/crossbar_eval';
import { loadDataset } from '../src/data/datasets';
import { captureOutput } from './helpers';

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'mtfjs-cmp-'));
let dirCount = 0;
const newDir = () => path.join(root, `d${dirCount++}`);

beforeAll(async () => {
  await initBackend('wasm');
});
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

/** The ideal device with a comparator at every column that feeds a binary activation. */
function idealComparator(change: (c: DeviceConfig) => void = () => {}): DeviceConfig {
  const c = getPreset('ideal')!;
  c.neuron = { kind: 'threshold' };
  change(c);
  return c;
}

function randomInput(shape: number[], seed: number, lo = 0, hi = 1): tf.Tensor {
  const r = new SeededRandom(seed);
  const n = shape.reduce((a, b) => a * b, 1);
  return tf.tensor(new Float32Array(n).map(() => lo + (hi - lo) * r.next()), shape);
}

/** BN weights [gamma, beta, mean, variance] per channel; gammas as given (negative and 0 included). */
function setBn(bn: tf.layers.Layer, gammas: number[], seed: number): void {
  const r = new SeededRandom(seed);
  const n = gammas.length;
  const beta = Array.from({ length: n }, () => r.next() * 2 - 1);
  const mean = Array.from({ length: n }, () => r.next() * 2 - 1);
  const variance = Array.from({ length: n }, () => 0.5 + r.next() * 2);
  bn.setWeights([tf.tensor1d(gammas), tf.tensor1d(beta), tf.tensor1d(mean), tf.tensor1d(variance)]);
}

/**
 * Sets a model's BN statistics to those of its input on x (what training leaves), with the given
 * gammas and betas in [-0.5, 0.5]: the binary outputs then take both values.
 */
function fitBn(m: tf.LayersModel, x: tf.Tensor, gammas: number[], seed: number, betaShift = 0): void {
  let h = x;
  let bn: tf.layers.Layer | null = null;
  for (const l of m.layers) {
    if (l.getClassName() === 'BatchNormalization') {
      bn = l;
      break;
    }
    h = l.apply(h) as tf.Tensor;
  }
  const axes = h.shape.slice(0, -1).map((_, i) => i);
  const { mean, variance } = tf.moments(h, axes);
  const r = new SeededRandom(seed);
  // betaShift |gamma|: where a max pool follows the BN, its max of several BN outputs is shifted up
  const beta = gammas.map((g) => r.next() - 0.5 + betaShift * Math.abs(g));
  bn!.setWeights([tf.tensor1d(gammas), tf.tensor1d(beta), mean, variance]);
}

/** Elements where a and b differ. */
function mismatches(a: tf.Tensor, b: tf.Tensor): number[] {
  const x = a.dataSync();
  const y = b.dataSync();
  expect(x.length).toBe(y.length);
  const bad: number[] = [];
  for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) bad.push(i);
  return bad;
}

/**
 * The smallest distance of the activation's input to its switching point over a batch: the
 * outputs agree exactly unless a value sits at the threshold (a tie, decided by rounding).
 */
function margin(model: tf.LayersModel, x: tf.Tensor, activation: string, at = 0): number {
  let h = x;
  for (const l of model.layers) {
    if (l.name === activation) break;
    h = l.apply(h) as tf.Tensor;
  }
  return tf.tidy(() => tf.min(tf.abs(tf.sub(h, at))).dataSync()[0]);
}

// gamma < 0 on channels 1, 3, 4; gamma = 0 (a constant BN output) on channel 5
const GAMMAS = [1.2, -0.8, 0.5, -1.5, -0.3, 0];

/** Binary conv on real inputs -> max pool -> BN -> sign (bnn's B1 block). */
function poolBnSign(seed = 1): tf.LayersModel {
  const m = tf.sequential();
  m.add(new QuantConv2D({ name: 'bc', inputShape: [8, 8, 2], filters: 6, kernelSize: 3, padding: 'same', kernelQuantizer: 'steSign', kernelClip: 1, useBias: false, seed }));
  m.add(tf.layers.maxPooling2d({ name: 'pool', poolSize: 2 }));
  m.add(tf.layers.batchNormalization({ name: 'bn' }));
  m.add(new QuantActivation({ name: 'sign', quantizer: 'steSign' }));
  return m;
}

/** Binary conv on +-1 inputs (0/1 voltages and an offset) -> BN -> max pool (3x3, stride 2: overlapping) -> sign. */
function bnPoolSign(seed = 2): tf.LayersModel {
  const m = tf.sequential();
  m.add(new QuantConv2D({ name: 'bc', inputShape: [9, 9, 3], filters: 6, kernelSize: 3, padding: 'same', kernelQuantizer: 'steSign', inputQuantizer: 'steSign', kernelClip: 1, useBias: false, seed }));
  m.add(tf.layers.batchNormalization({ name: 'bn' }));
  m.add(tf.layers.maxPooling2d({ name: 'pool', poolSize: 3, strides: 2 }));
  m.add(new QuantActivation({ name: 'sign', quantizer: 'steSign' }));
  return m;
}

/** A stock conv with a bias and ReLU -> max pool -> BN -> pool -> ThresholdActivation (step, flips of its own). */
function reluThresholdStep(seed = 3): tf.LayersModel {
  const m = tf.sequential();
  m.add(tf.layers.conv2d({ name: 'c', inputShape: [8, 8, 1], filters: 6, kernelSize: 3, padding: 'valid', activation: 'relu', kernelInitializer: tf.initializers.glorotUniform({ seed }), biasInitializer: tf.initializers.constant({ value: 0.05 }) }));
  m.add(tf.layers.maxPooling2d({ name: 'pool1', poolSize: 2 }));
  m.add(tf.layers.batchNormalization({ name: 'bn' }));
  m.add(tf.layers.maxPooling2d({ name: 'pool2', poolSize: 3 }));
  m.add(new ThresholdActivation({ name: 'thr', threshold: [0.1, -0.2, 0.3, 5, -5, 0], flip: [0, 1, 1, 0, 1, 0], mode: 'step' }));
  setBn(m.getLayer('bn'), [0.9, 1.1, -0.7, 1, 1, -1.3], seed);
  return m;
}

/** A binary dense layer on +-1 inputs -> BN -> sign. */
function denseBnSign(seed = 4): tf.LayersModel {
  const m = tf.sequential();
  m.add(new QuantDense({ name: 'bd', inputShape: [20], units: 6, kernelQuantizer: 'steSign', inputQuantizer: 'steSign', kernelClip: 1, useBias: false, seed }));
  m.add(tf.layers.batchNormalization({ name: 'bn' }));
  m.add(new QuantActivation({ name: 'sign', quantizer: 'steSign' }));
  return m;
}

describe('comparator thresholds give the outputs of BN + sign', () => {
  test.each([
    ['conv (real inputs) -> max pool -> BN -> sign', poolBnSign, [8, 8, 8, 2], 0, 1, ['pool', 'bn', 'sign'], 'sign', 0],
    ['conv (+-1 inputs) -> BN -> overlapping max pool -> sign', bnPoolSign, [12, 9, 9, 3], -1, 1, ['bn', 'pool', 'sign'], 'sign', -1.4],
    ['dense (+-1 inputs) -> BN -> sign', denseBnSign, [64, 20], -1, 1, ['bn', 'sign'], 'sign', 0],
  ] as const)('%s: exactly, gamma < 0 and gamma = 0 included', (_, build, shape, lo, hi, replaced, act, betaShift) => {
    const m = build();
    const x = randomInput([...shape], 11, lo, hi);
    fitBn(m, x, GAMMAS, 1, betaShift);
    const soft = m.predict(x) as tf.Tensor;
    const net = mapModel(m, idealComparator(), { arrayRows: 16, arrayCols: 8 });
    const c = net.layers[0].comparator!;
    expect(net.layers[0].neuron).toBe('threshold');
    expect(c.layers).toEqual(replaced);
    expect(c.mode).toBe('sign');
    expect(Array.from(c.flip)).toEqual([0, 1, 0, 1, 1, 0]);
    // gamma = 0: BN(v) = beta, a constant decision
    expect(Math.abs(c.thresholds[5])).toBe(FLOAT32_MAX);
    // no activation input at its switching point (a tie would be decided by rounding)
    expect(margin(m, x, act)).toBeGreaterThan(1e-4);
    const got = predictCrossbar(net, x);
    expect(mismatches(soft, got)).toEqual([]);
    // both outputs occur, on flipped channels too
    const v = got.dataSync();
    for (const j of [0, 1, 3]) expect(new Set(v.filter((_, i) => i % 6 === j))).toEqual(new Set([-1, 1]));
    // through the periphery path (read noise on, far below any margin): the same decisions
    const slow = mapModel(m, idealComparator((d) => (d.read.noiseSigma = 1e-7)), { arrayRows: 16, arrayCols: 8 });
    expect(mismatches(soft, predictCrossbar(slow, x, { seed: 3 }))).toEqual([]);
    // no ADC: the comparator takes the analog current
    expect(layerCounts(net)[0].adcConversions).toBe(0);
  });

  test('relu + bias + two max pools around a BN + a step ThresholdActivation with flips of its own', () => {
    const m = reluThresholdStep();
    const x = randomInput([10, 8, 8, 1], 12);
    const soft = m.predict(x) as tf.Tensor;
    const net = mapModel(m, idealComparator());
    const c = net.layers[0].comparator!;
    expect(c.layers).toEqual(['pool1', 'bn', 'pool2', 'thr']);
    expect(c.mode).toBe('step');
    // flips: BN's gamma < 0 (channels 2, 5) xor the activation's own (1, 2, 4)
    expect(Array.from(c.flip)).toEqual([0, 1, 0, 0, 1, 1]);
    // pool1 (before the BN) is a min pool where the whole chain after it decreases, pool2 where the activation's flip does
    expect(Array.from(c.minPool.get('pool1')!)).toEqual([0, 1, 0, 0, 1, 1]);
    expect(Array.from(c.minPool.get('pool2')!)).toEqual([0, 1, 1, 0, 1, 0]);
    const got = predictCrossbar(net, x);
    expect(mismatches(soft, got)).toEqual([]);
    expect(new Set(got.dataSync())).toEqual(new Set([0, 1]));
  });

  test('the BN is not run on the crossbar path: the thresholds of mapping time decide', () => {
    const m = poolBnSign(5);
    const x = randomInput([6, 8, 8, 2], 13);
    fitBn(m, x, GAMMAS, 2);
    const before = m.predict(x) as tf.Tensor;
    const net = mapModel(m, idealComparator());
    // a BN that would switch every output on, set after mapping
    const bn = m.getLayer('bn');
    const w = bn.getWeights();
    bn.setWeights([tf.onesLike(w[0]), tf.fill(w[1].shape, 100), w[2], w[3]]);
    expect(new Set((m.predict(x) as tf.Tensor).dataSync())).toEqual(new Set([1]));
    expect(mismatches(before, predictCrossbar(net, x))).toEqual([]);
    // the digital path (a linear neuron) runs the model's BN: every output on
    const digital = mapModel(m, getPreset('ideal')!);
    expect(digital.layers[0].comparator).toBeNull();
    expect(new Set(predictCrossbar(digital, x).dataSync())).toEqual(new Set([1]));
  });

  test('a runner range that ends inside the replaced layers hands the analog sums to the digital layers', () => {
    const m = poolBnSign(8);
    const x = randomInput([5, 8, 8, 2], 16);
    fitBn(m, x, GAMMAS, 5);
    const net = mapModel(m, idealComparator());
    const runner = crossbarRunner(net);
    const whole = runner.run(x);
    const sums = runner.run(x, 0, 2); // the conv and the pool: pooled analog sums, not decisions
    expect(new Set(sums.dataSync()).size).toBeGreaterThan(2);
    expect(mismatches(whole, runner.run(sums, 2, 4))).toEqual([]);
    expect(mismatches(whole, m.predict(x) as tf.Tensor)).toEqual([]);
  });

  test('the reference currents (uA) are the column currents where the decision switches', () => {
    const m = denseBnSign(6);
    const x = randomInput([40, 20], 14, -1, 1);
    fitBn(m, x, GAMMAS, 3);
    const dev = idealComparator();
    const net = mapModel(m, dev);
    const l = net.layers[0];
    const soft = (m.predict(x) as tf.Tensor).dataSync();
    const xv = x.dataSync();
    const referenceUA = refOf(net);
    const a = l.arrays[0];
    const V = dev.read.voltage;
    let decided = 0;
    for (let s = 0; s < 40; s++) {
      for (let j = 0; j < 6; j++) {
        if (Math.abs(l.comparator!.thresholds[j]) === FLOAT32_MAX) continue;
        // the pair current of column j: 0/1 voltages b = (x + 1) / 2 at read.voltage
        let I = 0;
        for (let i = 0; i < 20; i++) if (xv[s * 20 + i] > 0) I += V * (a.programmed[i * a.tile.arrayCols + 2 * j] - a.programmed[i * a.tile.arrayCols + 2 * j + 1]);
        const on = l.comparator!.flip[j] ? I <= referenceUA[j] : I >= referenceUA[j];
        expect(on ? 1 : -1).toBe(soft[s * 6 + j]);
        decided++;
      }
    }
    expect(decided).toBe(40 * 5);
  });
});

/** The reference currents of mapped layer 0, as saveCrossbar computes them. */
function refOf(net: CrossbarNetwork): Float32Array {
  const l = net.layers[0];
  const { W } = mappedWeights(net, l);
  return comparatorReferenceUA(l.comparator!, W, l.rows, l.outputs, l.bias, l.inputEncoding === 'signedBinary', l.weightScale, net.device.read.voltage);
}

test('ThresholdActivation with flips on the wasm backend equals plain loops on a large map', () => {
  // tf.where on booleans is wrong on wasm 4.22 (and writes past its output): the layer avoids it
  const thr = [0.1, 0.5, -0.2, 0.9, 0.3, 0.7];
  const flip = [0, 1, 0, 1, 1, 0];
  for (const mode of ['sign', 'step'] as const) {
    const layer = new ThresholdActivation({ threshold: thr, flip, mode });
    const x = randomInput([8, 8, 8, 6], 21);
    const xv = x.dataSync();
    const got = (layer.apply(x) as tf.Tensor).dataSync();
    for (let i = 0; i < xv.length; i++) {
      const j = i % 6;
      const on = mode === 'sign' ? (flip[j] ? xv[i] <= thr[j] : xv[i] >= thr[j]) : flip[j] ? xv[i] < thr[j] : xv[i] > thr[j];
      expect(got[i]).toBe(on ? 1 : mode === 'sign' ? -1 : 0);
    }
  }
});

describe('the comparator in the crossbar folder', () => {
  let dir: string;
  let x: tf.Tensor;
  let expected: Float32Array;
  beforeAll(async () => {
    const m = bnPoolSign(7);
    x = randomInput([8, 9, 9, 3], 15, -1, 1);
    fitBn(m, x, GAMMAS, 4, -1.4);
    const net = mapModel(m, idealComparator(), { arrayRows: 16, arrayCols: 8 });
    dir = newDir();
    await saveCrossbar(net, dir);
    expected = predictCrossbar(net, x).dataSync().slice() as Float32Array;
  });

  test('manifest.json holds thresholds, flips, reference currents and the layers replaced; they load back', async () => {
    const manifest = JSON.parse(fs.readFileSync(path.join(dir, 'manifest.json'), 'utf8'));
    const c = manifest.layers[0].comparator;
    expect(c).toMatchObject({ mode: 'sign', layers: ['bn', 'pool', 'sign'], flip: [0, 1, 0, 1, 1, 0] });
    expect(c.thresholds).toHaveLength(6);
    expect(c.referenceUA).toHaveLength(6);
    expect(Object.keys(c.units)).toEqual(['thresholds', 'referenceUA', 'flip']);
    const back = await loadCrossbar(dir);
    expect(Array.from(back.layers[0].comparator!.thresholds)).toEqual(c.thresholds);
    expect(Array.from(predictCrossbar(back, x).dataSync())).toEqual(Array.from(expected));
    disposeCrossbar(back);
  });

  function corrupt(change: (c: Record<string, any>, layer: Record<string, any>) => void): string {
    const d = newDir();
    fs.cpSync(dir, d, { recursive: true });
    const mf = path.join(d, 'manifest.json');
    const manifest = JSON.parse(fs.readFileSync(mf, 'utf8'));
    change(manifest.layers[0].comparator, manifest.layers[0]);
    fs.writeFileSync(mf, JSON.stringify(manifest));
    return d;
  }

  async function rejects(d: string, problem: RegExp): Promise<void> {
    let err: unknown = null;
    try {
      disposeCrossbar(await loadCrossbar(d));
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(FileFormatError);
    expect((err as FileFormatError).file).toMatch(/manifest\.json$/);
    expect((err as Error).message).toMatch(problem);
  }

  test('bad comparator fields are refused naming manifest.json and the field', async () => {
    const f = "layers\\[0\\] 'bc'\\.comparator";
    await rejects(corrupt((c) => (c.thresholds[1] = null)), new RegExp(`${f}\\.thresholds\\[1\\]: must be a finite number, got null`));
    await rejects(corrupt((c) => (c.thresholds[2] = 'x')), new RegExp(`${f}\\.thresholds\\[2\\]: must be a finite number, got "x"`));
    await rejects(corrupt((c) => c.thresholds.pop()), new RegExp(`${f}\\.thresholds: has 5 values, the layer has 6 output columns`));
    await rejects(corrupt((c) => delete c.thresholds), new RegExp(`${f}\\.thresholds: missing`));
    await rejects(corrupt((c) => (c.flip[0] = 2)), new RegExp(`${f}\\.flip\\[0\\]: must be 0 or 1, got 2`));
    await rejects(corrupt((c) => (c.mode = 'max')), new RegExp(`${f}\\.mode: must be 'sign' or 'step'`));
    await rejects(corrupt((c) => (c.referenceUA[3] += 1)), new RegExp(`${f}\\.referenceUA\\[3\\]: .* uA, but thresholds\\[3\\]`));
    await rejects(corrupt((c) => (c.layers = ['bn', 'sign'])), new RegExp(`${f}\\.layers: .*fold into the comparator are \\["bn","pool","sign"\\]`));
    await rejects(corrupt((c) => (c.flip[0] = 1)), new RegExp(`${f}\\.flip\\[0\\]: 1, the model's BatchNormalization and activation give 0`));
    await rejects(corrupt((_, l) => (l.comparator = [1, 2])), new RegExp(`${f}: must be an object`));
    await rejects(corrupt((_, l) => (l.neuron = 'linear')), new RegExp(`${f}: a linear neuron has no comparator`));
  });

  test('edited thresholds: refused as another model by default, used with checkTargets off', async () => {
    const shift = (c: Record<string, any>) => {
      c.thresholds = c.thresholds.map((t: number) => (Math.abs(t) < 1e30 ? t + 0.5 : t));
    };
    // the reference currents must follow the thresholds: fix them as the lab would
    const d = corrupt(shift);
    await rejects(d, /referenceUA\[0\]: .* but thresholds\[0\]/);
    const mf = path.join(d, 'manifest.json');
    const manifest = JSON.parse(fs.readFileSync(mf, 'utf8'));
    const l = manifest.layers[0];
    // +-1 inputs: I_ref moves by half the threshold shift, in uA
    l.comparator.referenceUA = l.comparator.referenceUA.map((r: number, j: number) => (Math.abs(l.comparator.thresholds[j]) < 1e30 ? r + (0.25 * manifest.device.read.voltage) / l.weightScale : r));
    fs.writeFileSync(mf, JSON.stringify(manifest));
    await rejects(d, /thresholds\[0\]: .* the manifest does not belong to this model/);
    const edited = await loadCrossbar(d, { checkTargets: false });
    expect(edited.layers[0].comparator!.thresholds[0]).toBeCloseTo(l.comparator.thresholds[0], 4);
    disposeCrossbar(edited);
  });
});

describe('bnn through map and evaluate --crossbar', () => {
  test('on the ideal device (digital BN) and with comparators: the software predictions, sample by sample', async () => {
    // bnn briefly trained (seeded, in order: the same weights every run), so that its BN
    // statistics are those of data
    const m = buildModel('bnn', { seed: 1 });
    const n = 1536;
    const data = loadDataset('mnist', { trainSamples: n, testSamples: 300 });
    const xs = tf.tensor4d(Float32Array.from(data.train.images, (v) => v / 255), [n, 28, 28, 1]);
    const ys = tf.oneHot(tf.tensor1d(Array.from(data.train.labels), 'int32'), 10);
    m.compile({ optimizer: tf.train.adam(0.01), loss: tf.losses.softmaxCrossEntropy });
    await m.fit(xs, ys, { epochs: 1, batchSize: 64, shuffle: false, verbose: 0 });
    xs.dispose();
    ys.dispose();
    const modelDir = newDir();
    await saveModel(m, modelDir);
    const devFile = path.join(root, 'ideal-comparator.json');
    fs.writeFileSync(devFile, JSON.stringify({ extends: 'ideal', name: 'ideal-comparator', neuron: { kind: 'threshold' } }));
    const xt = tf.tensor4d(Float32Array.from(data.test.images, (v) => v / 255), [300, 28, 28, 1]);
    const softPred = (tf.argMax(m.predict(xt) as tf.Tensor, -1).dataSync() as Int32Array).slice();
    for (const device of ['ideal', devFile]) {
      const out = newDir();
      const mapped = await captureOutput(() => mapCommand({ model: modelDir, device, out, json: true, backend: 'wasm' }));
      const manifest = JSON.parse(fs.readFileSync(path.join(out, 'manifest.json'), 'utf8'));
      const comparators = manifest.layers.map((l: { comparator?: { layers: string[] } }) => l.comparator?.layers ?? null);
      expect(comparators).toEqual(device === 'ideal' ? [null, null, null] : [['B1_pool', 'B1_bn', 'B1_sign'], ['B2_pool', 'B2_bn', 'B2_sign'], null]);
      expect(JSON.parse(mapped.out).layers.map((l: { comparator: string[] | null }) => l.comparator)).toEqual(comparators);
      const ev = await captureOutput(() => crossbarEvaluateCommand({ crossbar: out, dataset: 'mnist', testSamples: 300, json: true, backend: 'wasm', compareSoftware: true }));
      const r = JSON.parse(ev.out);
      expect(r.accuracy).toBe(r.softwareAccuracy);
      // (68% here: a trained network, not a constant guess)
      expect(r.accuracy).toBeGreaterThan(0.5);
      const net = await loadCrossbar(out);
      const pred = tf.argMax(predictCrossbar(net, xt), -1).dataSync();
      expect(Array.from(pred)).toEqual(Array.from(softPred));
      disposeCrossbar(net);
    }
  });
});
