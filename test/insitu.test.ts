import * as fs from 'fs';
import * as path from 'path';
import { tf } from '../src/tf';
import { initBackend } from '../src/backend';
import { DeviceConfig, getPreset } from '../src/device/config';
import { SeededRandom } from '../src/random';
import type { Split } from '../src/data/datasets';
import { CrossbarNetwork, deviceInstancesOf, disposeCrossbar, evaluateCrossbar, loadCrossbar, mapModel, saveCrossbar } from '../src/crossbar';
import { pulsesForChange, sampleDeviceInstances, stuckValue, STUCK_NONE } from '../src/programming';
import { insituTrain, insituLayer, InsituOptions, InsituRule } from '../training/insitu';
import { insituRecord, readInsituRecord, saveInsituDir } from '../training/insitu_files';
import { writeDirAtomic } from '../src/atomic';
import { tempRoot } from './helpers';

const root = tempRoot('insitu');
beforeAll(async () => {
  await initBackend('wasm');
});

// A 4-class task on 6x6 images: a class is a bright 3x3 quadrant block, plus seeded pixel noise.
const SHAPE: [number, number, number] = [6, 6, 1];
function makeSplit(count: number, seed: number): Split {
  const r = new SeededRandom(seed);
  const images = new Uint8Array(count * 36);
  const labels = new Uint8Array(count);
  for (let s = 0; s < count; s++) {
    const c = r.int(4);
    labels[s] = c;
    const oy = c < 2 ? 0 : 3;
    const ox = c % 2 === 0 ? 0 : 3;
    for (let y = 0; y < 6; y++) {
      for (let x = 0; x < 6; x++) {
        const inBlock = y >= oy && y < oy + 3 && x >= ox && x < ox + 3;
        const v = (inBlock ? 0.55 : 0.25) + 0.35 * (r.next() - 0.5);
        images[s * 36 + y * 6 + x] = Math.max(0, Math.min(255, Math.round(255 * v)));
      }
    }
  }
  return { images, labels, count };
}

const train = makeSplit(1200, 1);
const testSplit = makeSplit(600, 2);

function toTensors(split: Split): { x: tf.Tensor; y: tf.Tensor } {
  return {
    x: tf.tensor(Float32Array.from(split.images, (v) => v / 255), [split.count, ...SHAPE]),
    y: tf.oneHot(tf.tensor1d(split.labels, 'int32'), 4),
  };
}

let trainedWeights: tf.Tensor[] | null = null;

/** A trained dense network: flatten -> 12 relu -> 4 logits (trained once, then copied). */
async function trainedModel(): Promise<tf.Sequential> {
  const m = tf.sequential();
  m.add(tf.layers.flatten({ name: 'flat', inputShape: SHAPE }));
  m.add(tf.layers.dense({ name: 'hidden', units: 12, activation: 'relu', kernelInitializer: tf.initializers.glorotUniform({ seed: 3 }) }));
  m.add(tf.layers.dense({ name: 'out', units: 4, kernelInitializer: tf.initializers.glorotUniform({ seed: 4 }) }));
  if (trainedWeights) {
    m.setWeights(trainedWeights);
    return m;
  }
  const { x, y } = toTensors(train);
  const opt = tf.train.adam(0.02);
  for (let i = 0; i < 150; i++) {
    opt.minimize(() => tf.losses.softmaxCrossEntropy(y, m.apply(x) as tf.Tensor) as tf.Scalar);
  }
  x.dispose();
  y.dispose();
  trainedWeights = m.getWeights().map((w) => w.clone());
  return m;
}

/** yao2020 with a sloppy write-verify (20% of the window) and more stuck cells: a visible transfer loss. */
function sloppyDevice(): DeviceConfig {
  const c = getPreset('yao2020')!;
  c.writeVerify = { ...c.writeVerify, tolerance: 0.25, maxPulses: 4 };
  c.faults = { stuckAtGMin: 0.03, stuckAtGMax: 0.03 };
  return c;
}

function softwareAccuracy(m: tf.LayersModel, split: Split): number {
  return tf.tidy(() => {
    const { x } = toTensors(split);
    const pred = (m.predict(x) as tf.Tensor).argMax(-1).dataSync();
    let ok = 0;
    for (let i = 0; i < split.count; i++) if (pred[i] === split.labels[i]) ok++;
    return ok / split.count;
  });
}

const evalOpts = { calibration: train, imageShape: SHAPE, numClasses: 4, seed: 5 };

describe('pulse updates for in-situ training', () => {
  test('stochastic rounding gives the exact pulse count in expectation; nearest rounding drops small changes', () => {
    const dev = getPreset('yao2020')!;
    dev.pulse = { ...dev.pulse, c2cSigma: 0 };
    const n = 20000;
    const inst = sampleDeviceInstances({ ...dev, variation: { rOnSigma: 0, rOffSigma: 0, stepSigma: 0 }, faults: { stuckAtGMin: 0, stuckAtGMax: 0 } }, n, new SeededRandom(1));
    const g = new Float32Array(n).fill(8);
    // constant-step would give n = d / dg; soft bounds from G = 8 in [2, 20]: one SET step is dgSet (1 - x) = 0.8 * 2/3 uS
    const step = 0.8 * (1 - (8 - 2) / 18);
    const d = new Float32Array(n).fill(0.3 * step);
    const nearest = pulsesForChange(g, d, dev, inst);
    expect(nearest.every((p) => p === 0)).toBe(true);
    const sto = pulsesForChange(g, d, dev, inst, { stochastic: new SeededRandom(2) });
    const mean = sto.reduce((a, b) => a + b, 0) / n;
    // the exact (soft-bounds) count of a 0.3-step change, from the model's inverse
    const a = 0.8 / 18;
    const exact = Math.log((12 - 0.3 * step) / 12) / Math.log(1 - a);
    expect(exact).toBeGreaterThan(0.29);
    expect(mean).toBeCloseTo(exact, 1);
    expect(Math.abs(mean - exact)).toBeLessThan(4 * Math.sqrt((exact * (1 - exact)) / n));
    expect(sto.every((p) => p === 0 || p === 1)).toBe(true);
  });

  test('calibration reports its progress: each layer read-out built, each step run; none once calibrated', async () => {
    const m = await trainedModel();
    const net = mapModel(m, sloppyDevice(), { arrayRows: 16, arrayCols: 8, seed: 7 });
    const calls: [number, number][] = [];
    evaluateCrossbar(net, testSplit, { ...evalOpts, onCalibrationStep: (d, t) => calls.push([d, t]) });
    const total = net.layers.length + net.steps.length;
    expect(calls.length).toBe(total);
    expect(calls.every(([, t]) => t === total)).toBe(true);
    expect(calls.map(([d]) => d)).toEqual(Array.from({ length: total }, (_, i) => i + 1));
    calls.length = 0;
    evaluateCrossbar(net, testSplit, { ...evalOpts, onCalibrationStep: (d, t) => calls.push([d, t]) });
    expect(calls).toEqual([]);
    disposeCrossbar(net);
  });

  test('the device instances regenerated from the mapping seed are those programmed: stuck cells sit at their bound', async () => {
    const m = await trainedModel();
    const net = mapModel(m, sloppyDevice(), { arrayRows: 16, arrayCols: 8, seed: 7 });
    const { mapped } = insituLayer(net);
    const { instances, arrays } = deviceInstancesOf(net, mapped, 0);
    let stuck = 0;
    for (const { array, offset } of arrays) {
      for (let i = 0; i < array.programmed.length; i++) {
        if (instances.stuck[offset + i] !== STUCK_NONE) {
          stuck++;
          expect(array.programmed[i]).toBeCloseTo(stuckValue(instances, offset + i), 4);
        }
      }
    }
    expect(stuck).toBeGreaterThan(0);
    disposeCrossbar(net);
  });
});

describe('the update arithmetic by hand: 2 inputs, 2 outputs, one batch of 2 images', () => {
  // flatten -> dense 2 -> 2 (bias 0.1, -0.1, digital) on an ideal device whose window is 0..64 uS
  // and whose pulses are exact steps of 1/1024 uS (so a cell moves by n / 1024 exactly, n the
  // nearest whole number of steps). The arrays are set by hand; the model's kernel (max |w| = 1)
  // only fixes the mapping's scale: differential ws = 1 / (64 - 0), reference ws = 1 / 32 (gRef 32).
  const STEP = 1 / 1024;
  const BIAS = [0.1, -0.1];
  // image A = pixels (255, 51) = (1, 0.2), label 0; image B = (102, 204) = (0.4, 0.8), label 1
  const X = [
    [1, 0.2],
    [0.4, 0.8],
  ];
  const LABELS = [0, 1];
  const split: Split = { images: Uint8Array.of(255, 51, 102, 204), labels: Uint8Array.of(0, 1), count: 2 };
  // the effective weights the arrays hold, W[input][output] row-major
  const W0 = [0.25, -0.125, 0.0625, 0.375];
  const opts = { rule: 'plain' as const, samples: 2, batchSize: 2, stochasticRounding: false, readNoise: false, imageShape: [1, 2, 1] as [number, number, number], numClasses: 2, seed: 1 };

  function fineDevice(): DeviceConfig {
    const c = getPreset('ideal')!;
    c.gMin = 0;
    c.gMax = 64;
    c.pulse = { model: 'constantStep', dgSet: STEP, dgReset: STEP, c2cSigma: 0 };
    c.writeVerify = { mode: 'exact', tolerance: 0, maxPulses: 100000 };
    return c;
  }
  function net2x2(scheme: 'differential' | 'reference', device = fineDevice()): CrossbarNetwork {
    const m = tf.sequential();
    m.add(tf.layers.flatten({ name: 'flat', inputShape: [1, 2, 1] }));
    m.add(tf.layers.dense({ name: 'fc', units: 2 }));
    m.getLayer('fc').setWeights([tf.tensor2d([1, -0.5, 0.25, 0.5], [2, 2]), tf.tensor1d(BIAS)]);
    return mapModel(m, device, { scheme });
  }
  /** dW = -lr sum_s h_s^T delta_s, delta = (softmax(z) - y) / B, z = x W + b: plain loops. */
  function handDW(w: number[], lr: number): number[] {
    const dW = [0, 0, 0, 0];
    for (let s = 0; s < 2; s++) {
      const z = [0, 1].map((j) => BIAS[j] + X[s][0] * w[j] + X[s][1] * w[2 + j]);
      const e = z.map(Math.exp);
      for (let j = 0; j < 2; j++) {
        const delta = (e[j] / (e[0] + e[1]) - (LABELS[s] === j ? 1 : 0)) / 2;
        for (let r = 0; r < 2; r++) dW[r * 2 + j] -= lr * X[s][r] * delta;
      }
    }
    return dW;
  }
  /** Signed whole steps nearest a wanted change. */
  const steps = (dg: number) => Math.sign(dg) * Math.round(Math.abs(dg) / STEP);
  /** The array's 2 x 4 cells (G+ of output j in column 2j, G- in 2j + 1) for G+- around 32 + -. */
  const differentialCells = (gp: number[], gm: number[]) => Float32Array.of(gp[0], gm[0], gp[1], gm[1], gp[2], gm[2], gp[3], gm[3]);
  /** Hand updates of a differential array: +-dG/2 over each pair, dG = dW / ws. */
  function handDifferential(gp: number[], gm: number[], lrs: number[]): { gp: number[]; gm: number[]; pulses: number } {
    const ws = 1 / 64;
    let pulses = 0;
    for (const lr of lrs) {
      const w = gp.map((g, k) => ws * (g - gm[k]));
      const dW = handDW(w, lr);
      for (let k = 0; k < 4; k++) {
        const n = steps(dW[k] / ws / 2);
        gp[k] += n * STEP;
        gm[k] -= n * STEP;
        pulses += 2 * Math.abs(n);
      }
    }
    return { gp, gm, pulses };
  }

  test('differential pair: dW = -lr h^T delta, G+ gets +dG/2 and G- gets -dG/2 (the pair sum stays put)', () => {
    const net = net2x2('differential');
    const fc = net.layers[0];
    expect([fc.scheme, fc.weightScale, fc.arrays.length]).toEqual(['differential', 1 / 64, 1]);
    // W0 = ws (G+ - G-) = [16, -8, 4, 24] / 64
    const gp0 = [40, 28, 36, 44];
    const gm0 = [24, 36, 32, 20];
    fc.arrays[0].programmed = differentialCells(gp0, gm0);
    const r = insituTrain(net, split, { ...opts, lr: 1, decay: 'none' });
    expect(r.updates).toBe(1);
    // By hand (lr 1): z_A = (0.25 + 0.0125 + 0.1, -0.125 + 0.075 - 0.1) = (0.3625, -0.15),
    // softmax (0.62539, 0.37461), delta_A = ((0.62539 - 1) / 2, 0.37461 / 2) = (-0.18730, 0.18730);
    // z_B = (0.1 + 0.05 + 0.1, -0.05 + 0.3 - 0.1) = (0.25, 0.15), softmax (0.52498, 0.47502),
    // delta_B = (0.26249, -0.26249). dW = -(h_A^T delta_A + h_B^T delta_B):
    //   dW[0][0] = -(1 (-0.18730) + 0.4 (0.26249)) = 0.082308,  dW[0][1] = -0.082308
    //   dW[1][0] = -(0.2 (-0.18730) + 0.8 (0.26249)) = -0.172531, dW[1][1] = 0.172531
    // dG / 2 = dW / ws / 2 = 32 dW = (2.63386, -2.63386, -5.52099, 5.52099) uS
    expect(handDW(W0, 1).map((v) => Number(v.toFixed(6)))).toEqual([0.082308, -0.082308, -0.172531, 0.172531]);
    const g = fc.arrays[0].programmed;
    const gpAfter = [0, 2, 4, 6].map((c) => g[c]);
    const gmAfter = [1, 3, 5, 7].map((c) => g[c]);
    const wantP = [42.63386, 25.36614, 30.47901, 49.52099];
    const wantM = [21.36614, 38.63386, 37.52099, 14.47901];
    for (let k = 0; k < 4; k++) {
      expect(Math.abs(gpAfter[k] - wantP[k])).toBeLessThan(STEP / 2 + 1e-5);
      expect(Math.abs(gmAfter[k] - wantM[k])).toBeLessThan(STEP / 2 + 1e-5);
      // whole steps, the same count on both devices of the pair
      expect(gpAfter[k] + gmAfter[k]).toBe(gp0[k] + gm0[k]);
    }
    // to the step: the nearest whole numbers of 1/1024 uS
    const hand = handDifferential(gp0.slice(), gm0.slice(), [1]);
    expect(gpAfter).toEqual(hand.gp);
    expect(gmAfter).toEqual(hand.gm);
    expect(r.totalPulses).toBe(hand.pulses);
    // SET where the conductance went up: G+ of dW > 0 and G- of dW < 0
    expect(r.setPulses).toBe(r.resetPulses);
    expect(r.pulsesPerCell.get(fc.arrays[0].id)).toEqual(Int32Array.from(g, (v, c) => Math.round(Math.abs(v - (c % 2 ? gm0 : gp0)[c >> 1]) / STEP)));
    disposeCrossbar(net);
  });

  test('pair-aware: the pairs reach the controller; a pair whose G- sits at gMin makes its whole change on G+', () => {
    // 4 uS steps on 0..64 uS. G+ = (40, 28, 36, 44), G- = (0, 36, 32, 20): W = (0.625, -0.125,
    // 0.0625, 0.375); at lr 2.5, dG = 64 dW = 2.5 x (2.1362, -2.1362, -12.5253, 12.5253) =
    // (5.34, -5.34, -31.31, 31.31) uS. tiki-taka halves each over its pair: 2.67 < 4 on pairs 0 and
    // 1 (no pulse; pair 0's G- at 0 cannot go down at all), 15.7 > 4 on pairs 2 and 3 (one pulse a
    // cell, the transfer's most). pair-aware gives pair 0's 5.34 to G+ alone (G-'s RESET step there
    // is 0): one SET on G+; the others split evenly, as their steps are equal.
    const coarse = fineDevice();
    coarse.pulse = { model: 'constantStep', dgSet: 4, dgReset: 4, c2cSigma: 0 };
    const gp0 = [40, 28, 36, 44];
    const gm0 = [0, 36, 32, 20];
    expect(handDW(gp0.map((g, k) => (g - gm0[k]) / 64), 2.5).map((v) => Number((64 * v).toFixed(2)))).toEqual([5.34, -5.34, -31.31, 31.31]);
    const after = (rule: InsituRule): number[] => {
      const net = net2x2('differential', coarse);
      net.layers[0].arrays[0].programmed = differentialCells(gp0, gm0);
      insituTrain(net, split, { ...opts, rule, lr: 2.5, decay: 'none' });
      const g = Array.from(net.layers[0].arrays[0].programmed);
      disposeCrossbar(net);
      return g;
    };
    expect(after('tiki-taka')).toEqual([40, 0, 28, 36, 32, 36, 48, 16]);
    expect(after('pair-aware')).toEqual([44, 0, 28, 36, 32, 36, 48, 16]);
  });

  test('--layers last2: both dense layers move by -lr x the software gradient (error back-propagated through the read weights, relu)', () => {
    // flatten -> hidden (3, relu) -> out (2) on the fine ideal device; 4 images of 2 pixels
    const m = tf.sequential();
    m.add(tf.layers.flatten({ name: 'flat', inputShape: [1, 2, 1] }));
    m.add(tf.layers.dense({ name: 'hidden', units: 3, activation: 'relu' }));
    m.add(tf.layers.dense({ name: 'out', units: 2 }));
    m.getLayer('hidden').setWeights([tf.tensor2d([0.5, -0.25, 0.75, -0.5, 0.625, 0.25], [2, 3]), tf.tensor1d([0.05, 0.1, -0.6])]);
    m.getLayer('out').setWeights([tf.tensor2d([0.5, -0.75, -0.25, 0.5, 1, 0.125], [3, 2]), tf.tensor1d([0.1, -0.1])]);
    const four: Split = { images: Uint8Array.of(255, 51, 102, 204, 204, 25, 51, 153), labels: Uint8Array.of(0, 1, 0, 1), count: 4 };
    const net = mapModel(m, fineDevice(), {});
    const weightsOf = (name: string): number[] => {
      const l = net.layers.find((x) => x.name === name)!;
      const W = new Array(l.rows * l.outputs).fill(0);
      for (const a of l.arrays) {
        const { rowStart, rows, outStart, outs, arrayCols } = a.tile;
        for (let r = 0; r < rows; r++) for (let j = 0; j < outs; j++) W[(rowStart + r) * l.outputs + outStart + j] = l.weightScale * (a.programmed[r * arrayCols + 2 * j] - a.programmed[r * arrayCols + 2 * j + 1]);
      }
      return W;
    };
    // the mapping is exact: the arrays hold the model's weights
    expect(weightsOf('hidden').map((v) => Number(v.toFixed(4)))).toEqual([0.5, -0.25, 0.75, -0.5, 0.625, 0.25]);
    // the largest weights sit at the window's bounds, where a pulse cannot go: halve every weight
    // about mid-window (G+- = 32 +- w / (4 ws)), and the model's kernels with them
    for (const l of net.layers) {
      const W = weightsOf(l.name);
      for (const a of l.arrays) {
        const { rowStart, rows, outStart, outs, arrayCols } = a.tile;
        for (let r = 0; r < rows; r++) {
          for (let j = 0; j < outs; j++) {
            const w = W[(rowStart + r) * l.outputs + outStart + j];
            a.programmed[r * arrayCols + 2 * j] = 32 + w / (4 * l.weightScale);
            a.programmed[r * arrayCols + 2 * j + 1] = 32 - w / (4 * l.weightScale);
          }
        }
      }
      const layer = m.getLayer(l.name);
      const [k, bias] = layer.getWeights();
      layer.setWeights([tf.mul(k, 0.5), bias]);
    }
    const before = { hidden: weightsOf('hidden'), out: weightsOf('out') };
    expect(before.hidden.map((v) => Number(v.toFixed(4)))).toEqual([0.25, -0.125, 0.375, -0.25, 0.3125, 0.125]);
    // the software gradient of the mean cross-entropy, by tf
    const x = tf.tensor(Float32Array.from(four.images, (v) => v / 255), [4, 1, 2, 1]);
    const y = tf.oneHot(tf.tensor1d(four.labels, 'int32'), 2);
    const { grads } = tf.variableGrads(() => tf.losses.softmaxCrossEntropy(y, m.apply(x) as tf.Tensor) as tf.Scalar, m.trainableWeights.map((w) => (w as unknown as { val: tf.Variable }).val));
    const gHidden = Array.from(grads[m.trainableWeights[0].name].dataSync());
    const gOut = Array.from(grads[m.trainableWeights[2].name].dataSync());
    // the third hidden unit is off for every image (0.375 x0 + 0.125 x1 - 0.6 < 0): the relu mask
    // sends it no error, though its outgoing weights are not zero
    expect([gHidden[2], gHidden[5]]).toEqual([0, 0]);
    const lr = 0.5;
    const r = insituTrain(net, four, { ...opts, samples: 4, batchSize: 4, lr, decay: 'none', layers: 'last2' });
    expect(r.layers).toEqual(['hidden', 'out']);
    expect(r.updates).toBe(1);
    const after = { hidden: weightsOf('hidden'), out: weightsOf('out') };
    // each weight moves by -lr g, to the pulse step (2 devices x STEP / 2 x ws on each side)
    const tol = (l: string) => net.layers.find((q) => q.name === l)!.weightScale * STEP + 1e-6;
    gOut.forEach((g, k) => expect(Math.abs(after.out[k] - before.out[k] + lr * g)).toBeLessThan(tol('out')));
    gHidden.forEach((g, k) => expect(Math.abs(after.hidden[k] - before.hidden[k] + lr * g)).toBeLessThan(tol('hidden')));
    // and they did move: the gradients are not all zero
    expect(Math.max(...gHidden.map(Math.abs))).toBeGreaterThan(0.01);
    // the pulse plan names the cells of both layers' arrays
    expect(r.pulseLog.arrayIds).toEqual([...net.layers[0].arrays, ...net.layers[1].arrays].map((a) => a.id));
    disposeCrossbar(net);
  });

  test('--layers: last2 needs two dense layers; a bad name is refused', () => {
    const net = net2x2('differential');
    expect(() => insituTrain(net, split, { ...opts, layers: 'last2' })).toThrow(/last2 trains the last two dense layers; the network has 1 on arrays \('fc'\)/);
    expect(() => insituTrain(net, split, { ...opts, layers: 'first' as never })).toThrow(/layers: must be one of last, last2, all-dense/);
    disposeCrossbar(net);
  });

  test("reference scheme: the whole dG on the cell, the reference column untouched", () => {
    const net = net2x2('reference');
    const fc = net.layers[0];
    expect([fc.scheme, fc.gRef, fc.weightScale, fc.arrays[0].tile.arrayCols]).toEqual(['reference', 32, 1 / 32, 3]);
    // W0 = ws (G - 32) = [8, -4, 2, 12] / 32; column 2 is the reference column at 32
    const g0 = [40, 28, 34, 44];
    fc.arrays[0].programmed = Float32Array.of(g0[0], g0[1], 32, g0[2], g0[3], 32);
    const r = insituTrain(net, split, { ...opts, lr: 1, decay: 'none' });
    // dG = dW / ws = 32 dW = (2.63386, -2.63386, -5.52099, 5.52099) uS: twice a differential device's share
    const g = fc.arrays[0].programmed;
    const after = [g[0], g[1], g[3], g[4]];
    const want = [42.63386, 25.36614, 28.47901, 49.52099];
    const dW = handDW(W0, 1);
    for (let k = 0; k < 4; k++) {
      expect(Math.abs(after[k] - want[k])).toBeLessThan(STEP / 2 + 1e-5);
      expect(after[k]).toBe(g0[k] + steps(dW[k] * 32) * STEP);
    }
    expect([g[2], g[5]]).toEqual([32, 32]);
    expect(r.totalPulses).toBe(dW.reduce((a, d) => a + Math.abs(steps(d * 32)), 0));
    expect(Array.from(r.pulsesPerCell.get(fc.arrays[0].id)!.filter((_, c) => c % 3 === 2))).toEqual([0, 0]);
    disposeCrossbar(net);
  });

  test('cosine decay: lr at update u of U is lr (1 + cos(pi u / U)) / 2', () => {
    const gp0 = [40, 28, 36, 44];
    const gm0 = [24, 36, 32, 20];
    const run = (decay: 'cosine' | 'none') => {
      const net = net2x2('differential');
      const fc = net.layers[0];
      fc.arrays[0].programmed = differentialCells(gp0, gm0);
      // 3 epochs of the one batch: 3 updates
      const r = insituTrain(net, split, { ...opts, epochs: 3, lr: 0.5, decay });
      expect(r.updates).toBe(3);
      const g = Array.from(fc.arrays[0].programmed);
      disposeCrossbar(net);
      return { gp: [0, 2, 4, 6].map((c) => g[c]), gm: [1, 3, 5, 7].map((c) => g[c]), pulses: r.totalPulses };
    };
    // factors 1, (1 + cos(pi / 3)) / 2 = 0.75, (1 + cos(2 pi / 3)) / 2 = 0.25
    const cosine = handDifferential(gp0.slice(), gm0.slice(), [0.5, 0.375, 0.125]);
    expect(run('cosine')).toEqual(cosine);
    const none = handDifferential(gp0.slice(), gm0.slice(), [0.5, 0.5, 0.5]);
    expect(run('none')).toEqual(none);
    // the two schedules are told apart by far more than a step
    expect(Math.abs(none.gp[3] - cosine.gp[3])).toBeGreaterThan(100 * STEP);
  });
});

describe('in-situ training of the last layer', () => {
  let sw = 0;
  const run = async (rule: InsituRule, seed: number, extra: InsituOptions = {}) => {
    const m = await trainedModel();
    sw = softwareAccuracy(m, testSplit);
    const net = mapModel(m, sloppyDevice(), { arrayRows: 16, arrayCols: 8, seed: 7 });
    const before = evaluateCrossbar(net, testSplit, evalOpts).accuracy;
    const first = net.layers.map((l) => l.arrays.map((a) => a.programmed.slice()));
    const r = insituTrain(net, train, { samples: 1000, epochs: 3, batchSize: 50, lr: rule === 'manhattan' ? 0.5 : 0.3, rule, seed, evalSplit: testSplit, imageShape: SHAPE, numClasses: 4, ...extra });
    const after = evaluateCrossbar(net, testSplit, evalOpts).accuracy;
    return { net, before, after, r, first };
  };

  test('plain rule: recovers most of the transfer loss, only the last layer changes, pulses counted per cell, seeded', async () => {
    const a = await run('plain', 11);
    expect(sw).toBeGreaterThan(0.95);
    expect(sw - a.before).toBeGreaterThan(0.05);
    expect(a.after - a.before).toBeGreaterThan(0.5 * (sw - a.before));
    // the first layer's conductances are untouched; the last layer's moved
    expect(a.net.layers[0].arrays.map((x) => Array.from(x.programmed))).toEqual(a.first[0].map((x) => Array.from(x)));
    const last = a.net.layers[1];
    expect(last.arrays.some((x, i) => x.programmed.some((v, j) => v !== a.first[1][i][j]))).toBe(true);
    // pulses: the per-cell counts add up; the controller does not know the stuck cells: they get
    // pulses, and do not move
    let sum = 0;
    for (const c of a.r.pulsesPerCell.values()) sum += c.reduce((p, q) => p + q, 0);
    expect(sum).toBe(a.r.totalPulses);
    expect(a.r.totalPulses).toBe(a.r.setPulses + a.r.resetPulses);
    const { instances, arrays } = deviceInstancesOf(a.net, last, 0);
    let stuckPulsed = 0;
    arrays.forEach(({ array, offset }, k) => {
      const c = a.r.pulsesPerCell.get(array.id)!;
      for (let i = 0; i < c.length; i++) {
        if (instances.stuck[offset + i] === STUCK_NONE) continue;
        stuckPulsed += c[i];
        expect(array.programmed[i]).toBe(a.first[1][k][i]);
      }
    });
    expect(stuckPulsed).toBeGreaterThan(0);
    // the controller read every cell once; the energy of each point is its pulses' and that read's
    expect(a.r.cellReads).toBe(instances.count);
    const dev = a.net.device.energy;
    for (const p of a.r.curve) expect(p.energyPJ).toBeCloseTo(p.pulses * dev.programmingPulsePJ + a.r.cellReads * dev.cellReadPJ, 6);
    expect(a.r.curve.length).toBe(a.r.updates + 1);
    expect(a.r.curve[a.r.curve.length - 1].testAccuracy).toBeGreaterThan(a.before);
    // same seed, same numbers
    const b = await run('plain', 11);
    expect(b.after).toBe(a.after);
    expect(Array.from(b.net.layers[1].arrays[0].programmed)).toEqual(Array.from(last.arrays[0].programmed));
    disposeCrossbar(a.net);
    disposeCrossbar(b.net);
  });

  test('the oracle (a labelled upper bound) sees the stuck cells and spends no pulse on them', async () => {
    const a = await run('plain', 11, { oracle: true });
    expect(a.r.options.oracle).toBe(true);
    expect(a.r.cellReads).toBe(0);
    const { instances, arrays } = deviceInstancesOf(a.net, a.net.layers[1], 0);
    for (const { array, offset } of arrays) {
      const c = a.r.pulsesPerCell.get(array.id)!;
      for (let i = 0; i < c.length; i++) if (instances.stuck[offset + i] !== STUCK_NONE) expect(c[i]).toBe(0);
    }
    expect(a.after - a.before).toBeGreaterThan(0.5 * (sw - a.before));
    disposeCrossbar(a.net);
  });

  test.each([['mixed-precision'], ['tiki-taka']] as const)('%s: recovers most of the transfer loss, with fewer pulses than plain', async (rule) => {
    const a = await run(rule, 11);
    const p = await run('plain', 11);
    expect(a.after - a.before).toBeGreaterThan(0.5 * (sw - a.before));
    expect(a.r.totalPulses).toBeLessThan(p.r.totalPulses);
    expect(a.r.options.rule).toBe(rule);
    disposeCrossbar(a.net);
    disposeCrossbar(p.net);
  });

  test('manhattan rule: one pulse per cell and update at most, and it improves too', async () => {
    const a = await run('manhattan', 3);
    const maxPerCell = Math.max(...[...a.r.pulsesPerCell.values()].map((c) => Math.max(...c)));
    expect(maxPerCell).toBeLessThanOrEqual(a.r.updates);
    expect(a.after - a.before).toBeGreaterThan(0.25 * (sw - a.before));
    disposeCrossbar(a.net);
  });

  test('a network that does not end in a dense layer is refused', async () => {
    const m = tf.sequential();
    m.add(tf.layers.conv2d({ inputShape: SHAPE, filters: 2, kernelSize: 3 }));
    const net = mapModel(m, getPreset('ideal')!);
    expect(() => insituTrain(net, train)).toThrow(/last fully connected layer/);
    disposeCrossbar(net);
  });
});

describe('in-situ files', () => {
  test('the tuned directory round-trips; an interrupted write leaves the input untouched and no partial output', async () => {
    const m = await trainedModel();
    const net = mapModel(m, sloppyDevice(), { arrayRows: 16, arrayCols: 8, seed: 7 });
    const xdir = path.join(root, 'x');
    await saveCrossbar(net, xdir);
    const snapshot = () => Object.fromEntries(fs.readdirSync(xdir, { recursive: true }).map(String).sort().filter((f) => fs.statSync(path.join(xdir, f)).isFile()).map((f) => [f, fs.readFileSync(path.join(xdir, f), 'utf8')]));
    const before = snapshot();
    const loaded = await loadCrossbar(xdir);
    const r = insituTrain(loaded, train, { samples: 300, batchSize: 50, seed: 1, imageShape: SHAPE, numClasses: 4 });
    const rec = insituRecord(loaded, r, { source: xdir, before: 0.5, after: 0.6, testSamples: 600 });
    // an interruption while the result is written: nothing at the output, the input as it was
    const out = path.join(root, 'x2');
    await expect(
      writeDirAtomic(out, async (tmp) => {
        await saveCrossbar(loaded, tmp);
        throw new Error('interrupted');
      }),
    ).rejects.toThrow('interrupted');
    expect(fs.existsSync(out)).toBe(false);
    expect(fs.readdirSync(root).filter((f) => f.startsWith('.x2'))).toEqual([]);
    expect(snapshot()).toEqual(before);
    // the real write, into the input directory itself: replaced as a whole
    await saveInsituDir(loaded, rec, xdir);
    const back = await loadCrossbar(xdir);
    const { mapped } = insituLayer(back);
    const tuned = insituLayer(loaded).mapped;
    mapped.arrays.forEach((a, i) => {
      const want = tuned.arrays[i].programmed;
      for (let j = 0; j < want.length; j++) expect(a.programmed[j]).toBeCloseTo(want[j], 3);
    });
    const rr = readInsituRecord(xdir);
    expect(rr.totalPulses).toBe(r.totalPulses);
    expect(rr.curve.length).toBe(r.curve.length);
    expect(fs.readFileSync(path.join(xdir, 'learning_curve.csv'), 'utf8').split('\n')[0]).toBe('samples,train_accuracy,loss,pulses,energy_pj,test_accuracy');
    fs.writeFileSync(path.join(xdir, 'insitu.json'), '{"format":"memristor-tfjs-insitu","version":9}');
    expect(() => readInsituRecord(xdir)).toThrow(/insitu\.json: version 9 is not supported/);
    [net, loaded, back].forEach((n: CrossbarNetwork) => disposeCrossbar(n));
  });
});
