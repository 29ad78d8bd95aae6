import * as fs from 'fs';
import * as path from 'path';
import { tf } from '../src/tf';
import { initBackend } from '../src/backend';
import { FileFormatError, UsageError } from '../src/errors';
import { SeededRandom } from '../src/random';
import { saveModel } from '../src/model_io';
import type { DeviceConfig } from '../src/device/config';
import { QuantConv2D } from '../layers/quant_conv2d';
import { QuantDense } from '../layers/quant_dense';
import { QuantActivation } from '../layers/quant_activation';
import { approxColumnCurrents } from '../src/crossbar/ir_drop';
import {
  CrossbarNetwork,
  FastNormal,
  crossbarCounts,
  disposeCrossbar,
  driftFactorsOf,
  evaluateCrossbar,
  layerCounts,
  loadCrossbar,
  mapModel,
  crossbarRunner,
  predictCrossbar,
  saveCrossbar,
} from '../src/crossbar';
import { conductancesToWeights } from '../src/mapping';
import { drift } from '../src/programming';
import { mapCommand } from '../src/commands/map';
import { devicesCommand } from '../src/commands/devices';
import { crossbarEvaluateCommand } from '../src/commands/crossbar_eval';
import { insituCommand } from '../src/commands/insitu';
import { arr, captureOutput, tempRoot, device, relErr, tinyConvDense } from './helpers';

const root = tempRoot('xinf');
let dirCount = 0;
const newDir = () => path.join(root, `d${dirCount++}`);

beforeAll(async () => {
  await initBackend('wasm');
});

/** The ideal device, but every column current through a 24-bit ADC: the slow (periphery) path, near-exact. */
const idealSlow = () => device('ideal', (c) => (c.adc = { bits: 24, range: 'auto' }));

function randomInput(shape: number[], seed: number, lo = 0, hi = 1): tf.Tensor {
  const r = new SeededRandom(seed);
  const n = shape.reduce((a, b) => a * b, 1);
  return tf.tensor(new Float32Array(n).map(() => lo + (hi - lo) * r.next()), shape);
}

/** A small stock CNN (conv, pool, conv, flatten, dense), trained for a few steps. */
async function stockModel(seed = 1): Promise<tf.LayersModel> {
  const init = (s: number) => tf.initializers.glorotUniform({ seed: seed * 10 + s });
  const m = tf.sequential();
  m.add(tf.layers.conv2d({ inputShape: [10, 10, 1], filters: 4, kernelSize: 3, padding: 'same', activation: 'relu', kernelInitializer: init(1), name: 'c1' }));
  m.add(tf.layers.maxPooling2d({ poolSize: 2, name: 'p1' }));
  m.add(tf.layers.conv2d({ filters: 6, kernelSize: 3, padding: 'valid', activation: 'relu', kernelInitializer: init(2), name: 'c2' }));
  m.add(tf.layers.flatten({ name: 'f' }));
  m.add(tf.layers.dense({ units: 5, kernelInitializer: init(3), name: 'd' }));
  m.compile({ optimizer: tf.train.adam(0.01), loss: 'categoricalCrossentropy' });
  const x = randomInput([64, 10, 10, 1], seed + 100);
  const r = new SeededRandom(seed + 200);
  const y = tf.oneHot(tf.tensor1d(Array.from({ length: 64 }, () => r.int(5)), 'int32'), 5);
  await m.fit(x, y, { epochs: 3, batchSize: 16, verbose: 0 });
  x.dispose();
  y.dispose();
  return m;
}

/** A model of the project's quantized layers: 15-level conv with an 8-bit input quantizer, 8-level dense. */
function quantModel(seed = 2): tf.LayersModel {
  const m = tf.sequential();
  m.add(
    new QuantConv2D({
      name: 'qc',
      inputShape: [9, 9, 2],
      filters: 5,
      kernelSize: 3,
      padding: 'same',
      activation: 'relu',
      kernelQuantizer: { className: 'SteUniform', config: { levels: 15, signed: true, scale: 'max' } },
      inputQuantizer: { className: 'SteUniform', config: { levels: 256 } },
      seed,
    }),
  );
  m.add(tf.layers.maxPooling2d({ poolSize: 3, name: 'qp' }));
  m.add(tf.layers.flatten({ name: 'qf' }));
  m.add(new QuantDense({ name: 'qd', units: 4, kernelQuantizer: { className: 'SteUniform', config: { levels: 8, signed: true, scale: 'max' } }, seed: seed + 1 }));
  // give the biases values so that the digital bias add is checked too
  for (const l of m.layers) {
    const b = l.weights.find((w) => /bias/.test(w.originalName));
    if (b) b.write(randomInput(b.shape as number[], seed + 7, -0.2, 0.2));
  }
  return m;
}

/** A binary network: +-1 inputs and weights (Chen et al.), BN + sign between the layers. */
function binaryModel(seed = 3): tf.LayersModel {
  const m = tf.sequential();
  m.add(new QuantConv2D({ name: 'bc', inputShape: [7, 7, 2], filters: 6, kernelSize: 3, padding: 'same', kernelQuantizer: 'steSign', inputQuantizer: 'steSign', kernelClip: 1, useBias: false, seed }));
  m.add(tf.layers.batchNormalization({ name: 'bn' }));
  m.add(new QuantActivation({ name: 'sign', quantizer: 'steSign' }));
  m.add(tf.layers.flatten({ name: 'bf' }));
  m.add(new QuantDense({ name: 'bd', units: 3, kernelQuantizer: 'steSign', kernelClip: 1, seed: seed + 1 }));
  const bn = m.getLayer('bn');
  const r = new SeededRandom(seed);
  bn.setWeights(bn.getWeights().map((w) => tf.tensor(Float32Array.from({ length: w.size }, () => 0.5 + r.next()), w.shape)));
  return m;
}

describe('FastNormal', () => {
  test('seeded standard normals with the right moments and tails', () => {
    const g = new FastNormal(42);
    const n = 400000;
    let s = 0;
    let s2 = 0;
    let s4 = 0;
    let tail = 0;
    for (let i = 0; i < n; i++) {
      const z = g.normal();
      s += z;
      s2 += z * z;
      s4 += z ** 4;
      if (Math.abs(z) > 3) tail++;
    }
    expect(Math.abs(s / n)).toBeLessThan(0.01);
    expect(Math.abs(s2 / n - 1)).toBeLessThan(0.01);
    expect(Math.abs(s4 / n - 3)).toBeLessThan(0.08);
    expect(Math.abs(tail / n - 0.0027)).toBeLessThan(0.0005);
    const a = new FastNormal(7);
    const b = new FastNormal(7);
    for (let i = 0; i < 100; i++) expect(a.normal()).toBe(b.normal());
  });
});

describe('ideal device: crossbar inference equals the software model', () => {
  let stock: tf.LayersModel;
  beforeAll(async () => {
    stock = await stockModel();
  });

  test('stock tf.layers model, 128x128 arrays (fast path), to 1e-4', () => {
    const net = mapModel(stock, device('ideal'));
    expect(net.layers.map((l) => l.name)).toEqual(['c1', 'c2', 'd']);
    expect(net.steps.filter((s) => !s.mapped).map((s) => s.layer.name)).toEqual(['p1', 'f']);
    const x = randomInput([20, 10, 10, 1], 5);
    const y = predictCrossbar(net, x);
    expect(relErr(y, stock.predict(x) as tf.Tensor)).toBeLessThan(1e-4);
  });

  test('small arrays (row and column tiles), 3 replicas, through the periphery path, to 1e-4', () => {
    const net = mapModel(stock, idealSlow(), { arrayRows: 16, arrayCols: 8, replicas: 3, seed: 4 });
    const c2 = net.layers[1];
    expect(c2.rows).toBe(36);
    expect(new Set(c2.arrays.map((a) => a.tile.rowStart)).size).toBe(3);
    expect(c2.replicas).toBe(3);
    expect(net.layers[2].replicas).toBe(1);
    const x = randomInput([12, 10, 10, 1], 6);
    const ref = stock.predict(x) as tf.Tensor;
    expect(relErr(predictCrossbar(net, x), ref)).toBeLessThan(1e-4);
    // and the fast path with replicas
    const fast = mapModel(stock, device('ideal'), { arrayRows: 16, arrayCols: 8, replicas: 3 });
    expect(relErr(predictCrossbar(fast, x), ref)).toBeLessThan(1e-4);
    // reference scheme too
    const refScheme = mapModel(stock, idealSlow(), { arrayRows: 16, arrayCols: 8, replicas: 2, scheme: 'reference' });
    expect(refScheme.layers[0].arrays[0].tile.arrayCols).toBe(5);
    expect(relErr(predictCrossbar(refScheme, x), ref)).toBeLessThan(1e-4);
  });

  test('QuantConv2D / QuantDense: the quantized kernels are what gets mapped, to 1e-4', () => {
    const m = quantModel();
    const x = randomInput([10, 9, 9, 2], 7);
    const ref = m.predict(x) as tf.Tensor;
    for (const [dev, opts] of [
      [device('ideal'), {}],
      [idealSlow(), { arrayRows: 8, arrayCols: 6 }],
    ] as const) {
      const net = mapModel(m, dev, opts);
      // the effective weights of the arrays are the quantized kernel
      const qc = net.layers[0];
      const a = qc.arrays[0];
      const w = conductancesToWeights(a.target.subarray(0, a.tile.rows * a.tile.arrayCols), a.tile.rows, a.tile.outs, 'differential', qc.weightScale);
      const qk = (m.getLayer('qc') as QuantConv2D).quantizedKernel();
      const distinct = new Set(Array.from(qk.dataSync()).map((v) => v.toFixed(5)));
      expect(distinct.size).toBeLessThanOrEqual(15);
      expect(new Set(Array.from(w).map((v) => (Math.abs(v) < 1e-7 ? 0 : v).toFixed(5))).size).toBeLessThanOrEqual(15);
      qk.dispose();
      expect(relErr(predictCrossbar(net, x), ref)).toBeLessThan(1e-4);
    }
  });

  test('+-1 inputs through the constant-sign transform (0/1 voltages and an offset), padding same, to 1e-4', () => {
    const m = binaryModel();
    const x = randomInput([10, 7, 7, 2], 8, -1, 1);
    const ref = m.predict(x) as tf.Tensor;
    for (const dev of [device('ideal'), idealSlow()]) {
      const net = mapModel(m, dev, { arrayRows: 16, arrayCols: 8 });
      expect(net.layers.map((l) => l.inputEncoding)).toEqual(['signedBinary', 'signedBinary']);
      expect(relErr(predictCrossbar(net, x), ref)).toBeLessThan(1e-4);
    }
  });

  test('the cpu backend gives the same results: the same values without read noise, the same distribution with it', async () => {
    // yao2020: bit-serial DAC and an 8-bit ADC. On wasm the bit-serial kernel sums the pulsed rows
    // (src/crossbar/bit_serial.ts); on cpu the JS route convolves every plane.
    const m = quantModel(5);
    const x = randomInput([4, 9, 9, 2], 9);
    const net = mapModel(m, device('yao2020'), { arrayRows: 16, arrayCols: 8, seed: 2 });
    const draws = (n: number) => {
      const out: Float32Array[] = [];
      for (let s = 0; s < n; s++) out.push(predictCrossbar(net, x, { seed: 100 + s }).dataSync().slice() as Float32Array);
      return out;
    };
    const reset = () => {
      (net.runtime as { dispose(): void } | null)?.dispose();
      net.runtime = null;
    };
    const quiet = predictCrossbar(net, x, { seed: 3, readNoise: false }).dataSync().slice();
    const noisyWasm = draws(40);
    reset();
    await tf.setBackend('cpu');
    try {
      const quietCpu = predictCrossbar(net, x, { seed: 3, readNoise: false }).dataSync();
      // the same currents and ADC codes; float32 against float64 sums: a code may differ by one
      // step where a current lies on a code boundary (none here)
      expect(relErr(quietCpu, quiet)).toBeLessThan(1e-5);
      const noisyCpu = draws(40);
      // per output: mean and standard deviation over the draws agree within their sampling error
      const stats = (d: Float32Array[], i: number) => {
        const v = d.map((a) => a[i]);
        const mean = v.reduce((a, b) => a + b, 0) / v.length;
        const sd = Math.sqrt(v.reduce((a, b) => a + (b - mean) ** 2, 0) / (v.length - 1));
        return { mean, sd };
      };
      let sdSum = 0;
      let sdSumCpu = 0;
      for (let i = 0; i < quiet.length; i++) {
        const a = stats(noisyWasm, i);
        const b = stats(noisyCpu, i);
        sdSum += a.sd;
        sdSumCpu += b.sd;
        // 5 standard errors of the difference of two means of 40 draws
        expect(Math.abs(a.mean - b.mean)).toBeLessThanOrEqual(5 * Math.sqrt((a.sd ** 2 + b.sd ** 2) / 40) + 1e-6);
      }
      // the read noise is there on both routes, of the same size (within 10% over all outputs)
      expect(sdSum).toBeGreaterThan(0);
      expect(Math.abs(sdSum / sdSumCpu - 1)).toBeLessThan(0.1);
    } finally {
      await tf.setBackend('wasm');
      (net.runtime as { dispose(): void } | null)?.dispose();
      net.runtime = null;
    }
  });
});

describe('periphery', () => {
  /** x (n x 10) . W + b through one dense layer. */
  function denseModel(inputs: number, units: number, seed: number, useBias = true): tf.LayersModel {
    const m = tf.sequential();
    m.add(tf.layers.dense({ inputShape: [inputs], units, useBias, kernelInitializer: tf.initializers.glorotUniform({ seed }), biasInitializer: 'ones', name: 'dense' }));
    return m;
  }

  test('read noise: column variance sigma^2 sum V^2 (G+^2 + G-^2), new at every read', () => {
    const m = denseModel(6, 2, 11, false);
    const dev = device('ideal', (c) => (c.read.noiseSigma = 0.05));
    const net = mapModel(m, dev);
    const xs = [0.9, 0.1, 0.5, 0.0, 1.0, 0.3];
    const n = 4000;
    const x = tf.tensor2d(Array.from({ length: n }, () => xs), [n, 6]);
    const y = predictCrossbar(net, x, { seed: 5 }).dataSync();
    const quiet = predictCrossbar(net, x.slice(0, 1), { readNoise: false }).dataSync();
    const a = net.layers[0].arrays[0];
    const ws = net.layers[0].weightScale;
    for (let j = 0; j < 2; j++) {
      let mean = 0;
      for (let i = 0; i < n; i++) mean += y[i * 2 + j] / n;
      let v = 0;
      for (let i = 0; i < n; i++) v += (y[i * 2 + j] - mean) ** 2 / (n - 1);
      let expected = 0;
      for (let r = 0; r < 6; r++) {
        const gp = a.programmed[r * 4 + 2 * j];
        const gm = a.programmed[r * 4 + 2 * j + 1];
        expected += xs[r] ** 2 * (gp * gp + gm * gm);
      }
      expected *= 0.05 ** 2 * ws * ws;
      expect(v / expected).toBeGreaterThan(0.9);
      expect(v / expected).toBeLessThan(1.1);
      expect(Math.abs(mean - quiet[j])).toBeLessThan(4 * Math.sqrt(expected / n));
    }
    // new draws at every read: two runs with different seeds differ, the same seed repeats
    const y2 = predictCrossbar(net, x.slice(0, 10), { seed: 6 }).dataSync();
    const y3 = predictCrossbar(net, x.slice(0, 10), { seed: 6 }).dataSync();
    expect(Array.from(y2)).toEqual(Array.from(y3));
    expect(Array.from(y2)).not.toEqual(Array.from(y.slice(0, 20)));
  });

  test("bit-serial DAC (Yao et al.): 8 bit-plane reads, each through the ADC, shifted and added", () => {
    const m = denseModel(10, 3, 12);
    const dev = device('yao2020', (c) => {
      c.levels = null;
      c.writeVerify = { mode: 'exact', tolerance: 0, maxPulses: 10 };
      c.variation = { rOnSigma: 0, rOffSigma: 0, stepSigma: 0 };
      c.faults = { stuckAtGMin: 0, stuckAtGMax: 0 };
      c.read.noiseSigma = 0;
      c.wireResistance = 0;
      c.adc = { bits: 4, range: 'auto' };
    });
    const net = mapModel(m, dev);
    const n = 40;
    const x = randomInput([n, 10], 13);
    const got = predictCrossbar(net, x).dataSync();
    // reference: per plane currents, one ADC range (max |current| over planes and samples), 7 codes a side
    const W = (m.getLayer('dense').getWeights()[0].dataSync() as Float32Array).slice();
    const bias = m.getLayer('dense').getWeights()[1].dataSync();
    const a = net.layers[0].arrays[0];
    const Weff = conductancesToWeights(a.programmed, 10, 3, 'differential', net.layers[0].weightScale);
    for (let i = 0; i < W.length; i++) expect(Weff[i]).toBeCloseTo(W[i], 5);
    const xv = x.dataSync();
    let xs = 0;
    for (const v of xv) xs = Math.max(xs, Math.abs(v));
    const codes = Array.from(xv, (v) => Math.min(255, Math.round((v / xs) * 255)));
    const z: number[][][] = [];
    let zr = 0;
    for (let k = 0; k < 8; k++) {
      z.push([]);
      for (let s = 0; s < n; s++) {
        const row: number[] = [];
        for (let j = 0; j < 3; j++) {
          let acc = 0;
          for (let i = 0; i < 10; i++) if ((codes[s * 10 + i] >> k) & 1) acc += Weff[i * 3 + j];
          row.push(acc);
          zr = Math.max(zr, Math.abs(acc));
        }
        z[k].push(row);
      }
    }
    const step = zr / 7;
    let adcMatters = 0;
    for (let s = 0; s < n; s++) {
      for (let j = 0; j < 3; j++) {
        let y = 0;
        let ideal = 0;
        for (let k = 0; k < 8; k++) {
          y += (2 ** k * Math.max(-7, Math.min(7, Math.round(z[k][s][j] / step))) * step * xs) / 255;
          ideal += (2 ** k * z[k][s][j] * xs) / 255;
        }
        expect(got[s * 3 + j]).toBeCloseTo(y + bias[j], 4);
        adcMatters = Math.max(adcMatters, Math.abs(y - ideal));
      }
    }
    expect(adcMatters).toBeGreaterThan(1e-3);
  });

  test('IR drop folded in once per array matches the line-relaxation solution of the same array', () => {
    const m = denseModel(12, 4, 14);
    const dev = device('ideal', (c) => (c.wireResistance = 2));
    const net = mapModel(m, dev, { arrayRows: 16, arrayCols: 16 });
    const x = randomInput([5, 12], 15);
    const got = predictCrossbar(net, x).dataSync();
    const noWire = predictCrossbar(mapModel(m, device('ideal')), x).dataSync();
    const a = net.layers[0].arrays[0];
    const ws = net.layers[0].weightScale;
    const bias = m.getLayer('dense').getWeights()[1].dataSync();
    const xv = x.dataSync();
    let dropSeen = 0;
    for (let s = 0; s < 5; s++) {
      const v = Array.from(xv.slice(s * 12, s * 12 + 12), (u) => u * dev.read.voltage);
      const I = approxColumnCurrents(a.programmed, 12, 8, v, 2);
      for (let j = 0; j < 4; j++) {
        const y = ((I[2 * j] - I[2 * j + 1]) / dev.read.voltage) * ws + bias[j];
        expect(got[s * 4 + j]).toBeCloseTo(y, 4);
        dropSeen = Math.max(dropSeen, Math.abs(got[s * 4 + j] - noWire[s * 4 + j]));
      }
    }
    expect(dropSeen).toBeGreaterThan(1e-4);
  });
  test('drift: reading t seconds after programming scales the conductances by (t / t0)^-nu', () => {
    const m = denseModel(8, 3, 17, false);
    const dev = device('ideal', (c) => (c.drift = { nu: 0.05, nuSigma: 0, t0: 1 }));
    const net = mapModel(m, dev, { arrayRows: 4, arrayCols: 4 });
    const x = randomInput([6, 8], 18);
    const now = predictCrossbar(net, x).dataSync().slice();
    const later = predictCrossbar(net, x, { driftSeconds: 3600, driftCompensation: 'none' }).dataSync();
    const f = Math.pow(3600, -0.05);
    for (let i = 0; i < now.length; i++) expect(later[i]).toBeCloseTo(now[i] * f, 4);
    // one nu for every cell: global compensation (the default) undoes the drift
    const compensated = predictCrossbar(net, x, { driftSeconds: 3600 }).dataSync();
    for (let i = 0; i < now.length; i++) expect(compensated[i]).toBeCloseTo(now[i], 4);
    (net.runtime as { dispose(): void }).dispose();
    net.runtime = null;
  });

  describe('drift compensation none / global / per-column against a direct computation', () => {
    const t = 1e5;
    // per-cell nu (nuSigma > 0): the columns drift by different factors
    const driftDevice = (change: (c: DeviceConfig) => void = () => {}) => device('ideal', (c) => {
      c.drift = { nu: 0.05, nuSigma: 0.01, t0: 1 };
      change(c);
    });

    /**
     * Plain loops: the weights of the programmed and of the drifted conductances of every pair,
     * the reference read-outs sum_i |w_ij| at t0 and t, and the layer output
     * alpha_j sum_tiles ADC(x . w_t)_j + b_j: every row tile's column currents converted, with the
     * ADC range of t0 (max |x . w_0| of a row tile over the batch).
     */
    function direct(net: CrossbarNetwork, x: tf.Tensor, bias: Float32Array, mode: 'none' | 'global' | 'per-column', adcBits: number | null) {
      const m = net.layers[0];
      const [F, O] = [m.rows, m.outputs];
      const w0 = new Float64Array(F * O);
      const wt = new Float64Array(F * O);
      for (const a of m.arrays) {
        const gt = drift(a.programmed, net.device, t, new SeededRandom(`${net.mapping.seed}/drift/${a.id}`));
        const C = a.tile.arrayCols;
        for (let i = 0; i < a.tile.rows; i++) {
          for (let j = 0; j < a.tile.outs; j++) {
            const k = (a.tile.rowStart + i) * O + a.tile.outStart + j;
            w0[k] = m.weightScale * (a.programmed[i * C + 2 * j] - a.programmed[i * C + 2 * j + 1]);
            wt[k] = m.weightScale * (gt[i * C + 2 * j] - gt[i * C + 2 * j + 1]);
          }
        }
      }
      const ref0 = new Float64Array(O);
      const refT = new Float64Array(O);
      for (let i = 0; i < F; i++) {
        for (let j = 0; j < O; j++) {
          ref0[j] += Math.abs(w0[i * O + j]);
          refT[j] += Math.abs(wt[i * O + j]);
        }
      }
      const sum = (v: Float64Array) => v.reduce((p, q) => p + q, 0);
      const alpha = Array.from({ length: O }, (_, j) => (mode === 'none' ? 1 : mode === 'global' ? sum(ref0) / sum(refT) : ref0[j] / refT[j]));
      const xv = x.dataSync();
      const n = xv.length / F;
      const tiles = [...new Set(m.arrays.map((a) => `${a.tile.rowStart}:${a.tile.rows}`))].map((k) => k.split(':').map(Number));
      const dot = (w: Float64Array, s: number, j: number, r0: number, rows: number) => {
        let z = 0;
        for (let i = r0; i < r0 + rows; i++) z += xv[s * F + i] * w[i * O + j];
        return z;
      };
      let range = 0;
      for (let s = 0; s < n; s++) for (let j = 0; j < O; j++) for (const [r0, rows] of tiles) range = Math.max(range, Math.abs(dot(w0, s, j, r0, rows)));
      const maxCode = adcBits === null ? 0 : 2 ** (adcBits - 1) - 1;
      const y = new Float64Array(n * O);
      for (let s = 0; s < n; s++) {
        for (let j = 0; j < O; j++) {
          let acc = 0;
          for (const [r0, rows] of tiles) {
            let z = dot(wt, s, j, r0, rows);
            if (adcBits !== null) z = Math.max(-maxCode, Math.min(maxCode, Math.round(z / (range / maxCode)))) * (range / maxCode);
            acc += z;
          }
          y[s * O + j] = alpha[j] * acc + bias[j];
        }
      }
      return { y, alpha };
    }

    test.each([
      ['ideal converters (the fast path)', null],
      ['a 5-bit ADC, its range calibrated at t0 (the periphery path)', 5],
    ] as const)('%s', (_, adcBits) => {
      const m = tf.sequential();
      m.add(tf.layers.dense({ inputShape: [10], units: 3, kernelInitializer: tf.initializers.glorotUniform({ seed: 31 }), biasInitializer: tf.initializers.constant({ value: 0.1 }), name: 'dense' }));
      const bias = m.getLayer('dense').getWeights()[1].dataSync() as Float32Array;
      const dev = driftDevice((c) => (c.adc = { bits: adcBits, range: 'auto' }));
      // 3 outputs on arrays of 4 rows x 4 columns: 3 row tiles x 2 column tiles
      const net = mapModel(m, dev, { arrayRows: 4, arrayCols: 4 });
      expect(net.layers[0].arrays.length).toBe(6);
      const x = randomInput([7, 10], 32);
      const results: Record<string, Float32Array> = {};
      for (const mode of ['none', 'global', 'per-column'] as const) {
        const got = predictCrossbar(net, x, { driftSeconds: t, driftCompensation: mode }).dataSync() as Float32Array;
        const want = direct(net, x, bias, mode, adcBits);
        for (let i = 0; i < got.length; i++) expect(got[i]).toBeCloseTo(want.y[i], 4);
        const factors = driftFactorsOf(net)[0].factors;
        if (mode === 'none') expect(factors).toBeNull();
        else want.alpha.forEach((a, j) => expect(factors![j]).toBeCloseTo(a, 5));
        results[mode] = got;
      }
      // the factors differ by column, and undo most of the loss: (1e5)^-0.05 = 0.56
      const f = driftFactorsOf(net)[0].factors!;
      expect(Math.max(...f) - Math.min(...f)).toBeGreaterThan(0.01);
      const now = predictCrossbar(net, x).dataSync();
      const err = (v: Float32Array) => v.reduce((p, q, i) => Math.max(p, Math.abs(q - now[i])), 0);
      expect(err(results['per-column'])).toBeLessThan(err(results.global));
      expect(err(results.global)).toBeLessThan(err(results.none) / 2);
      disposeCrossbar(net);
    });
  });
});

describe('counts', () => {

  test.each([[1], [2]])('hand-computed counts of a tiny model on 4x4 arrays, bit-serial (replicas %i)', (replicas) => {
    const net = mapModel(tinyConvDense(), device('yao2020'), { arrayRows: 4, arrayCols: 4, replicas });
    const [conv, fc] = layerCounts(net);
    // conv: 3x3 positions; rows 9 -> tiles of 4, 4, 1 rows; 2 outputs = 4 columns: 3 arrays; 8 reads per input
    expect(conv).toMatchObject({ positions: 9, readsPerInput: 8, arrays: 3, rowTiles: 3 });
    expect(conv.arrayReads).toBe(9 * 3 * 8);
    expect(conv.cellsRead).toBe(9 * 8 * (4 * 4 + 4 * 4 + 1 * 4));
    expect(conv.dacConversions).toBe(9 * 8 * (4 + 4 + 1));
    expect(conv.adcConversions).toBe(9 * 8 * (2 + 2 + 2));
    expect(conv.neuronEvaluations).toBe(9 * 2);
    expect(conv.digitalAdds).toBe(9 * 2 * (3 * 8 - 1 + 1)); // shift-and-add and partial sums, + bias
    // fc: 18 rows -> 4, 4, 4, 4, 2; 3 outputs -> 2 + 1 pairs: 10 arrays
    expect(fc).toMatchObject({ positions: 1, arrays: 10, rowTiles: 5 });
    expect(fc.arrayReads).toBe(10 * 8);
    expect(fc.cellsRead).toBe(8 * (18 * 4 + 18 * 2));
    expect(fc.dacConversions).toBe(8 * 18 * 2);
    expect(fc.adcConversions).toBe(8 * (5 * 2 + 5 * 1));
    expect(fc.neuronEvaluations).toBe(3);
    expect(fc.digitalAdds).toBe(3 * (5 * 8 - 1));
    const c = crossbarCounts(net, 7);
    expect(c.perInference).toEqual({ arrayReads: 296, cellsRead: 3456, dacConversions: 936, adcConversions: 552, neuronEvaluations: 21, digitalAdds: 549 });
    expect(c.total.cellsRead).toBe(7 * 3456);
    disposeCrossbar(net);
  });

  test('a comparator neuron where a binary activation follows: no ADC conversions there', () => {
    const m = tf.sequential();
    // Seeded weights and a bias on fc: an unseeded draw where no conv output passed the threshold
    // left every logit 0 and the relative error 0/0.
    m.add(tf.layers.conv2d({ inputShape: [6, 6, 1], filters: 3, kernelSize: 3, padding: 'same', name: 'conv', kernelInitializer: tf.initializers.glorotUniform({ seed: 21 }) }));
    m.add(tf.layers.maxPooling2d({ poolSize: 2, name: 'pool' }));
    m.add(new QuantActivation({ name: 'act', quantizer: { className: 'SteHeaviside', config: { threshold: 0.5, window: 0.5 } } }));
    m.add(tf.layers.flatten({ name: 'flat' }));
    m.add(tf.layers.dense({ units: 2, name: 'fc', kernelInitializer: tf.initializers.glorotUniform({ seed: 22 }), biasInitializer: tf.initializers.constant({ value: 0.25 }) }));
    const net = mapModel(m, device('park2024'), { arrayRows: 32, arrayCols: 32 });
    expect(net.layers.map((l) => l.neuron)).toEqual(['threshold', 'linear']);
    const [conv, fc] = layerCounts(net);
    expect(conv.adcConversions).toBe(0);
    expect(conv.neuronEvaluations).toBe(36 * 3);
    expect(fc.adcConversions).toBe(2);
    // with exact continuous conductances the comparator path computes what the software does
    const clean = mapModel(
      m,
      device('park2024', (c) => {
        c.levels = null;
        c.writeVerify = { mode: 'exact', tolerance: 0, maxPulses: 10 };
        c.variation = { rOnSigma: 0, rOffSigma: 0, stepSigma: 0 };
        c.faults = { stuckAtGMin: 0, stuckAtGMax: 0 };
        c.wireResistance = 0;
      }),
    );
    // inputs on the 8-bit DAC grid (full scale 1)
    const xv = randomInput([6, 6, 6, 1], 16).dataSync().map((v) => Math.round(v * 255) / 255);
    xv[0] = 1;
    const x = tf.tensor4d(xv, [6, 6, 6, 1]);
    const ref = m.predict(x) as tf.Tensor;
    // some comparator fires, so the logits are more than the bias
    expect((m.getLayer('act').apply(m.getLayer('pool').apply(m.getLayer('conv').apply(x))) as tf.Tensor).sum().dataSync()[0]).toBeGreaterThan(0);
    expect(relErr(predictCrossbar(clean, x, { readNoise: false }), ref)).toBeLessThan(1e-4);
    // with read noise, the comparator sees the analog sums: the periphery path, still close
    const noisy = predictCrossbar(clean, x, { seed: 2 });
    expect(relErr(noisy, ref)).toBeGreaterThan(0);
    // Where it differs, by hand: the comparator flips only outputs whose analog sum lies within a
    // few noise sigmas of the threshold, and the logits are fc of the (flipped) bits plus fc's own
    // read noise. Read noise sigma on a column, in weight units (see 'read noise' above):
    // sigma ws sqrt(sum_i V_i^2 (G+_i^2 + G-_i^2)), G+- = gMin + max(+-w, 0) / max|W| (gMax - gMin).
    const sigma = 0.01; // park2024's read noise
    const pair = (w: number, wMax: number) => [10 + (Math.max(w, 0) / wMax) * 90, 10 + (Math.max(-w, 0) / wMax) * 90];
    const [K, bc] = m.getLayer('conv').getWeights().map((t) => arr(t)); // [3, 3, 1, 3], [3]
    const [Wf, bf] = m.getLayer('fc').getWeights().map((t) => arr(t)); // [27, 2], [2]
    const kMax = Math.max(...K.map(Math.abs));
    const fMax = Math.max(...Wf.map(Math.abs));
    // the analog sums of the conv (6 samples x 6 x 6 x 3) and their noise sigmas
    const pre = new Float64Array(6 * 36 * 3);
    const preSd = new Float64Array(6 * 36 * 3);
    for (let s = 0; s < 6; s++) {
      for (let py = 0; py < 6; py++) {
        for (let px = 0; px < 6; px++) {
          for (let c = 0; c < 3; c++) {
            let z = bc[c];
            let v = 0;
            for (let i = 0; i < 3; i++) {
              for (let j = 0; j < 3; j++) {
                const yy = py + i - 1;
                const xx = px + j - 1;
                if (yy < 0 || yy > 5 || xx < 0 || xx > 5) continue;
                const xin = xv[s * 36 + yy * 6 + xx];
                const w = K[(i * 3 + j) * 3 + c];
                const [gp, gm] = pair(w, kMax);
                z += xin * w;
                v += xin * xin * (gp * gp + gm * gm);
              }
            }
            const o = ((s * 6 + py) * 6 + px) * 3 + c;
            pre[o] = z;
            preSd[o] = sigma * (kMax / 90) * Math.sqrt(v);
          }
        }
      }
    }
    const runner = crossbarRunner(clean, { seed: 2 });
    const bits = runner.run(x, 0, 3); // conv (comparator), pool, act: 6 x 3 x 3 x 3
    const bv = arr(bits);
    let flips = 0;
    for (let s = 0; s < 6; s++) {
      for (let qy = 0; qy < 3; qy++) {
        for (let qx = 0; qx < 3; qx++) {
          for (let c = 0; c < 3; c++) {
            const window = [0, 1, 2, 3].map((k) => ((s * 6 + 2 * qy + (k >> 1)) * 6 + 2 * qx + (k & 1)) * 3 + c);
            const soft = Math.max(...window.map((o) => pre[o])) > 0.5 ? 1 : 0;
            const got = bv[((s * 3 + qy) * 3 + qx) * 3 + c];
            expect(got === 0 || got === 1).toBe(true);
            if (got !== soft) {
              flips++;
              expect(Math.min(...window.map((o) => Math.abs(pre[o] - 0.5) / preSd[o]))).toBeLessThan(6);
            }
          }
        }
      }
    }
    const logits = arr(runner.run(bits, 3, 5));
    for (let s = 0; s < 6; s++) {
      for (let j = 0; j < 2; j++) {
        let z = bf[j];
        let v = 0;
        for (let i = 0; i < 27; i++) {
          const b = bv[s * 27 + i];
          const [gp, gm] = pair(Wf[i * 2 + j], fMax);
          z += b * Wf[i * 2 + j];
          v += b * (gp * gp + gm * gm);
        }
        const sd = sigma * (fMax / 90) * Math.sqrt(v);
        expect(Math.abs(logits[s * 2 + j] - z)).toBeLessThan(6 * sd);
      }
    }
    // this draw flips a comparator: the noisy logits are far from the software ones, and explained
    expect(flips).toBeGreaterThan(0);
  });

  test('evaluateCrossbar reports accuracy and counts for every sample', () => {
    const net = mapModel(tinyConvDense(), device('park2024'), { arrayRows: 8, arrayCols: 8 });
    const r = new SeededRandom(3);
    const count = 30;
    const split = { images: new Uint8Array(count * 25).map(() => r.int(256)), labels: new Uint8Array(count).map(() => r.int(3)), count };
    const res = evaluateCrossbar(net, split, { numClasses: 3, batchSize: 8, calibrationSamples: 10 });
    expect(res.count).toBe(count);
    // the accuracy counts the samples whose arg max is the label (the crossbar's own outputs, same seed)
    const x = tf.tensor4d(Float32Array.from(split.images, (v) => v / 255), [count, 5, 5, 1]);
    const logits = arr(predictCrossbar(net, x));
    let correct = 0;
    for (let s = 0; s < count; s++) {
      const row = logits.slice(s * 3, s * 3 + 3);
      if (row.indexOf(Math.max(...row)) === split.labels[s]) correct++;
    }
    expect(res.correct).toBe(correct);
    expect(res.accuracy).toBe(correct / count);
    expect(res.calibrationSamples).toBe(10);
    expect(res.counts.samples).toBe(count);
    expect(res.counts.total.arrayReads).toBe(count * res.counts.perInference.arrayReads);
  });
});

describe('crossbar directories', () => {
  let model: tf.LayersModel;
  let net: CrossbarNetwork;
  let dir: string;
  beforeAll(async () => {
    model = quantModel(21);
    net = mapModel(model, device('yao2020'), { arrayRows: 16, arrayCols: 8, replicas: 2, seed: 9 });
    dir = newDir();
    await saveCrossbar(net, dir);
  });

  test('the directory: manifest, per-array target and programmed CSVs, and the model copy', () => {
    const manifest = JSON.parse(fs.readFileSync(path.join(dir, 'manifest.json'), 'utf8'));
    expect(manifest.format).toBe('memristor-tfjs-crossbar');
    expect(manifest.network.modelDir).toBe('model');
    expect(manifest.layers.map((l: { name: string }) => l.name)).toEqual(['qc', 'qd']);
    const qc = manifest.layers[0];
    expect(qc).toMatchObject({ kind: 'conv2d', className: 'QuantConv2D', kernelShape: [3, 3, 2, 5], rows: 18, outputs: 5, scheme: 'differential', replicas: 2, arrayRows: 16, arrayCols: 8 });
    expect(qc.arrays[0]).toMatchObject({ id: 'qc/r0/a0', rows: 16, cols: 8, rowStart: 0, colStart: 0, replica: 0 });
    expect(qc.programming.cells).toBe(2 * 18 * 10);
    expect(fs.existsSync(path.join(dir, 'model', 'model.json'))).toBe(true);
    const csv = fs.readFileSync(path.join(dir, qc.arrays[0].files.programmed), 'utf8');
    expect(csv.split('\n').filter((l) => l && !l.startsWith('#')).length).toBe(16);
  });

  test('save -> load gives the same network and identical inference', async () => {
    const back = await loadCrossbar(dir);
    expect(back.layers.map((l) => [l.name, l.replicas, l.arrays.length, l.neuron, l.inputEncoding])).toEqual(net.layers.map((l) => [l.name, l.replicas, l.arrays.length, l.neuron, l.inputEncoding]));
    back.layers.forEach((l, i) => l.arrays.forEach((a, k) => expect(Array.from(a.programmed)).toEqual(Array.from(net.layers[i].arrays[k].programmed))));
    expect(back.layers[0].report.cells).toBe(net.layers[0].report.cells);
    const x = randomInput([8, 9, 9, 2], 22);
    const a = predictCrossbar(net, x, { seed: 4 }).dataSync();
    const b = predictCrossbar(back, x, { seed: 4 }).dataSync();
    expect(Array.from(b)).toEqual(Array.from(a));
    disposeCrossbar(back);
  });

  function corrupt(change: (d: string, manifest: Record<string, any>) => void): string {
    const d = newDir();
    fs.cpSync(dir, d, { recursive: true });
    const mf = path.join(d, 'manifest.json');
    const manifest = JSON.parse(fs.readFileSync(mf, 'utf8'));
    change(d, manifest);
    fs.writeFileSync(mf, JSON.stringify(manifest));
    return d;
  }

  async function rejects(d: string, file: RegExp, problem: RegExp): Promise<void> {
    let err: unknown = null;
    try {
      disposeCrossbar(await loadCrossbar(d));
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(FileFormatError);
    expect((err as FileFormatError).file).toMatch(file);
    expect((err as Error).message).toMatch(problem);
  }

  test('NaN in a CSV is rejected naming the file', async () => {
    const d = corrupt((d2, m) => {
      const f = path.join(d2, m.layers[0].arrays[1].files.programmed);
      const lines = fs.readFileSync(f, 'utf8').split('\n');
      const i = lines.findIndex((l) => l && !l.startsWith('#'));
      lines[i] = lines[i].replace(/^[^,]+/, 'NaN');
      fs.writeFileSync(f, lines.join('\n'));
    });
    await rejects(d, /qc_r0_a1\.programmed\.csv$/, /not a finite number/);
  });

  test('a missing CSV is rejected naming the file', async () => {
    const d = corrupt((d2, m) => fs.rmSync(path.join(d2, m.layers[1].arrays[0].files.target)));
    await rejects(d, /qd_a0\.target\.csv$/, /missing/);
  });

  test('a wrong row count is rejected naming the file', async () => {
    const d = corrupt((d2, m) => {
      const f = path.join(d2, m.layers[0].arrays[0].files.target);
      const lines = fs.readFileSync(f, 'utf8').trimEnd().split('\n');
      fs.writeFileSync(f, lines.slice(0, -1).join('\n') + '\n');
    });
    await rejects(d, /qc_r0_a0\.target\.csv$/, /15 rows of values, the manifest says 16/);
  });

  test('a manifest inconsistent with the model is rejected naming the manifest', async () => {
    await rejects(corrupt((_, m) => (m.layers[0].kernelShape = [3, 3, 2, 6])), /manifest\.json$/, /kernelShape: 3x3x2x6 in the manifest, the model's layer has 3x3x2x5/);
    await rejects(corrupt((_, m) => (m.layers[1].name = 'other')), /manifest\.json$/, /'qd' has no entry/);
    await rejects(corrupt((_, m) => m.layers[0].arrays.splice(1, 1)), /manifest\.json$/, /replica 0: no array holds row 0, column 8/);
    await rejects(corrupt((_, m) => (m.layers[0].arrays[2].rowStart = 0)), /manifest\.json$/, /overlaps|no array holds/);
    await rejects(corrupt((_, m) => (m.layers[0].replicas = 1)), /manifest\.json$/, /replica: 1, the layer has 1 replica/);
    await rejects(corrupt((_, m) => (m.layers[1].arrays[0].weightScale *= 2)), /manifest\.json$/, /weightScale/);
  });

  test('a model that is not the one mapped is rejected naming the target CSV', async () => {
    const other = quantModel(99);
    const d = newDir();
    fs.cpSync(dir, d, { recursive: true });
    await saveModel(other, path.join(d, 'model'));
    await rejects(d, /\.target\.csv$/, /not the one these arrays were mapped from/);
  });
});

describe('programming a whole network', () => {
  test('an mcnn-shaped network (yao2020, 128x16 arrays, 4 replicas): cells, arrays and pulses per layer', () => {
    const m = tf.sequential();
    m.add(new QuantConv2D({ name: 'C1', inputShape: [28, 28, 1], filters: 8, kernelSize: 3, padding: 'same', activation: 'relu', seed: 1, kernelQuantizer: { className: 'SteUniform', config: { levels: 15, signed: true, scale: 'max' } } }));
    m.add(tf.layers.maxPooling2d({ poolSize: 2, name: 'S2' }));
    m.add(new QuantConv2D({ name: 'C3', filters: 12, kernelSize: 3, activation: 'relu', seed: 2, kernelQuantizer: { className: 'SteUniform', config: { levels: 15, signed: true, scale: 'max' } } }));
    m.add(tf.layers.maxPooling2d({ poolSize: 3, name: 'S4' }));
    m.add(tf.layers.flatten({ name: 'flatten' }));
    m.add(new QuantDense({ name: 'FC', units: 10, seed: 3, kernelQuantizer: { className: 'SteUniform', config: { levels: 15, signed: true, scale: 'max' } } }));
    // (its speed is measured by `npm run bench`)
    const net = mapModel(m, device('yao2020'), { arrayRows: 128, arrayCols: 16, replicas: 4 });
    expect(net.layers.map((l) => l.report.cells)).toEqual([4 * 9 * 16, 4 * 72 * 24, 192 * 20]);
    expect(net.layers.map((l) => l.report.arrays)).toEqual([4, 8, 4]);
    for (const l of net.layers) expect(l.report.maxPulses).toBeLessThanOrEqual(100);
  });
});

describe('commands', () => {

  test('map -> evaluate --crossbar on MNIST, JSON output', async () => {
    const m = tf.sequential();
    m.add(tf.layers.conv2d({ inputShape: [28, 28, 1], filters: 4, kernelSize: 3, strides: 2, activation: 'relu', name: 'conv', kernelInitializer: tf.initializers.glorotUniform({ seed: 5 }) }));
    m.add(tf.layers.flatten({ name: 'flat' }));
    m.add(tf.layers.dense({ units: 10, name: 'fc', kernelInitializer: tf.initializers.glorotUniform({ seed: 6 }) }));
    const modelDir = newDir();
    await saveModel(m, modelDir);
    const out = newDir();
    const mapped = await captureOutput(() => mapCommand({ model: modelDir, device: 'park2024', array: '32x32', replicas: 2, seed: 3, out, json: true, backend: 'wasm' }));
    const mj = JSON.parse(mapped.out);
    expect(mj).toMatchObject({ device: 'park2024', array: '32x32', replicas: 2, seed: 3, scheme: 'differential' });
    expect(mj.layers.map((l: { layer: string }) => l.layer)).toEqual(['conv', 'fc']);
    expect(mj.layers[0]).toMatchObject({ replicas: 2, arrays: 2, cells: 2 * 9 * 8 });
    expect(Object.keys(mj.layers[0])).toEqual(expect.arrayContaining(['cells', 'arrays', 'replicas', 'meanAbsError', 'maxAbsError', 'meanPulses', 'maxPulses', 'outsideTolerance', 'stuck']));
    const table = await captureOutput(() => mapCommand({ model: modelDir, device: 'park2024', out: newDir(), backend: 'wasm' }));
    expect(table.out).toMatch(/layer\s+kind\s+matrix/);
    const ev = await captureOutput(() => crossbarEvaluateCommand({ crossbar: out, dataset: 'mnist', testSamples: 120, calibrationSamples: 50, json: true, backend: 'wasm', compareSoftware: true }));
    const ej = JSON.parse(ev.out);
    expect(ej).toMatchObject({ testSamples: 120, device: 'park2024', calibrationSamples: 50 });
    for (const k of ['testAccuracy', 'accuracy', 'seconds', 'softwareAccuracy', 'timeRatio']) expect(typeof ej[k]).toBe('number');
    // conv: 13x13 positions, each read once by one of the 2 replicas (1 array); fc: 676 rows -> 22 arrays of 32 rows
    expect(ej.counts.perInference.arrayReads).toBe(13 * 13 + 22);
    const dv = await captureOutput(() => devicesCommand({ json: true }));
    expect(JSON.parse(dv.out).map((p: { name: string }) => p.name)).toEqual(['yao2020', 'park2024', 'chen2021', 'cbram', 'ideal']);
    const dt = await captureOutput(() => devicesCommand({}));
    expect(dt.out).toMatch(/yao2020/);
  });

  test('insitu, then evaluate --drift on the tuned folder: its programmed state (the end of in-situ training) drifts', async () => {
    const m = tf.sequential();
    m.add(tf.layers.conv2d({ inputShape: [28, 28, 1], filters: 4, kernelSize: 3, strides: 2, activation: 'relu', name: 'conv', kernelInitializer: tf.initializers.glorotUniform({ seed: 7 }) }));
    m.add(tf.layers.flatten({ name: 'flat' }));
    m.add(tf.layers.dense({ units: 10, name: 'fc', kernelInitializer: tf.initializers.glorotUniform({ seed: 8 }) }));
    const modelDir = newDir();
    await saveModel(m, modelDir);
    const mapped = newDir();
    await captureOutput(() => mapCommand({ model: modelDir, device: 'park2024', array: '32x32', out: mapped, json: true, backend: 'wasm' }));
    const tuned = newDir();
    await captureOutput(() => insituCommand({ crossbar: mapped, dataset: 'mnist', samples: 200, testSamples: 100, evalSamples: 100, calibrationSamples: 100, progress: false, out: tuned, json: true, backend: 'wasm' }));
    const evaluate = async (crossbar: string, driftCompensation: string) =>
      JSON.parse((await captureOutput(() => crossbarEvaluateCommand({ crossbar, testSamples: 100, calibrationSamples: 100, drift: 3e7, driftCompensation, json: true, backend: 'wasm' }))).out);
    const raw = await evaluate(tuned, 'none');
    expect(raw).toMatchObject({ driftSeconds: 3e7, driftCompensation: 'none', driftFactors: [{ layer: 'conv', factors: null }, { layer: 'fc', factors: null }] });
    const global = await evaluate(tuned, 'global');
    expect(global.driftCompensation).toBe('global');
    // (t / t0)^-nu with nu ~ 0.005: the factors undo a few percent
    for (const f of global.driftFactors) expect(f.factors).toBeGreaterThan(1.02);
    // the reference of the tuned layer is read from the tuned conductances, not from the mapped ones
    const fcTuned = global.driftFactors[1].factors;
    const fcMapped = (await evaluate(mapped, 'global')).driftFactors[1].factors;
    expect(fcTuned).not.toBe(fcMapped);
  });

  test('bad flags are usage errors naming the flag', async () => {
    const base = { model: 'm', device: 'ideal', out: 'o' };
    await expect(mapCommand({ ...base, array: '128' })).rejects.toThrow(new UsageError("--array must be RxC like 128x16, got '128'"));
    await expect(mapCommand({ ...base, replicas: 0 })).rejects.toThrow(/--replicas must be an integer >= 1/);
    await expect(mapCommand({ ...base, seed: 'x' })).rejects.toThrow(/--seed/);
    await expect(mapCommand({ ...base, scheme: 'single' })).rejects.toThrow(/--scheme must be one of differential, reference/);
    await expect(mapCommand({ ...base, array: '8x1' })).rejects.toThrow(/--array/);
    await expect(mapCommand({ ...base, device: 'nosuch' })).rejects.toThrow(UsageError);
    await expect(crossbarEvaluateCommand({ crossbar: 'x', testSamples: 0 })).rejects.toThrow(/--test-samples/);
    await expect(crossbarEvaluateCommand({ crossbar: 'x', drift: 10, driftCompensation: 'perColumn' })).rejects.toThrow(
      new UsageError("--drift-compensation must be one of none, global, per-column, got 'perColumn'"),
    );
    await expect(crossbarEvaluateCommand({ crossbar: path.join(root, 'none') })).rejects.toThrow(FileFormatError);
  });
});
