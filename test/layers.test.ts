// Quantized layers, device-variation noise, BN thresholds and the summary.
import { tf } from '../src/tf';
import {
  QuantConv2D,
  QuantDense,
  QuantActivation,
  ThresholdActivation,
  bnThreshold,
  batchNormParams,
  binaryConv2D,
  binaryDense,
  binaryActivation,
  signActivation,
  perturbWeights,
  perturbValues,
  resolveVariation,
  VARIATION_FIELDS,
  noiseSeed,
  getNoiseCounters,
  setNoiseCounters,
  applyWeightClips,
  resetWarnings,
  quantSummary,
  formatQuantSummary,
  FLOAT32_MAX,
  VARIATION_KEYS,
  DEFAULT_VARIATION,
} from '../layers';
import { deriveSeed } from '../src/random';
import { roundTrip, arr, fieldOf } from './helpers';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

const close = (got: ArrayLike<number>, want: ArrayLike<number>, digits = 5) => {
  expect(got.length).toBe(want.length);
  for (let i = 0; i < want.length; i++) expect(got[i]).toBeCloseTo(want[i], digits);
};

// ---------------------------------------------------------------------------------------------

describe('QuantDense', () => {
  test('computes x . Q(W) + b with a binary kernel; quantizedKernel holds the levels', () => {
    const l = new QuantDense({ units: 2, kernelQuantizer: 'steSign', kernelClip: 1, inputShape: [3], seed: 1 });
    const m = tf.sequential({ layers: [l] });
    l.setWeights([
      tf.tensor2d([
        [0.3, -0.2],
        [-0.7, 0.1],
        [0, -1.5],
      ]),
      tf.tensor1d([0.5, -0.5]),
    ]);
    // Q(W) = [[1,-1],[-1,1],[1,-1]] (sign(0) = +1): x = [1,2,3] -> [1-2+3, -1+2-3] + b
    expect(arr(m.predict(tf.tensor2d([[1, 2, 3]])))).toEqual([2.5, -2.5]);
    expect(arr(l.quantizedKernel())).toEqual([1, -1, -1, 1, 1, -1]);
    close(arr(l.latentKernel()), [0.3, -0.2, -0.7, 0.1, 0, -1.5]);
    expect(arr(l.biasValues()!)).toEqual([0.5, -0.5]);
  });

  test('the input quantizer applies to the input, the activation after the bias', () => {
    const l = new QuantDense({ units: 1, inputQuantizer: 'steSign', activation: 'relu', inputShape: [3], seed: 1 });
    const m = tf.sequential({ layers: [l] });
    l.setWeights([tf.tensor2d([[0.5], [0.25], [2]]), tf.tensor1d([-1])]);
    // sign([0.3, -4, 0]) = [1, -1, 1]: 0.5 - 0.25 + 2 - 1 = 1.25; sign([-1,-1,-1]): -2.75 - 1 -> relu 0
    expect(arr(m.predict(tf.tensor2d([[0.3, -4, 0], [-1, -1, -1]])))).toEqual([1.25, 0]);
  });

  test('the STE gradient reaches the latent kernel', () => {
    const l = new QuantDense({ units: 1, kernelQuantizer: 'steSign', kernelClip: 1, useBias: false, inputShape: [2], seed: 1 });
    const m = tf.sequential({ layers: [l] });
    l.setWeights([tf.tensor2d([[0.5], [2]])]);
    const x = tf.tensor2d([[3, 4]]);
    const g = tf.variableGrads(() => (m.apply(x, { training: true }) as tf.Tensor).sum() as tf.Scalar);
    // d/dW sum(x . sign(W)) via the STE: x where |W| <= 1, else 0
    expect(arr(Object.values(g.grads)[0])).toEqual([3, 0]);
  });

  test('rank-3 inputs are contracted over the last axis', () => {
    const l = new QuantDense({ units: 2, useBias: false, inputShape: [2, 3], seed: 5 });
    const m = tf.sequential({ layers: [l] });
    const k = tf.tensor2d([1, 0, 0, 1, 1, 1], [3, 2]);
    l.setWeights([k]);
    const x = tf.tensor3d([1, 2, 3, 4, 5, 6], [1, 2, 3]);
    const y = m.predict(x) as tf.Tensor;
    expect(y.shape).toEqual([1, 2, 2]);
    // [1,2,3] . K = [1+3, 2+3]; [4,5,6] . K = [4+6, 5+6]
    expect(arr(y)).toEqual([4, 5, 10, 11]);
  });

  test('config validation names the field', () => {
    expect(fieldOf(() => new QuantDense({ name: 'd', units: 0 }))).toBe('d.units');
    expect(fieldOf(() => new QuantDense({ name: 'd', units: 2, kernelClip: -1 }))).toBe('d.kernelClip');
    expect(fieldOf(() => new QuantDense({ name: 'd', units: 2, activation: 'nope' }))).toBe('d.activation');
    expect(fieldOf(() => new QuantDense({ name: 'd', units: 2, kernelQuantizer: 'nope' }))).toBe('d.kernelQuantizer');
    expect(fieldOf(() => new QuantDense({ name: 'd', units: 2, kernelInitializer: 'nope' }))).toBe('d.kernelInitializer');
    expect(fieldOf(() => new QuantDense({ name: 'd', units: 2, seed: -3 }))).toBe('d.seed');
    expect(fieldOf(() => new QuantDense({ name: 'd', units: 2, variation: { programmingSigma: -0.1 } }))).toBe('d.variation.programmingSigma');
  });
});

describe('QuantConv2D', () => {
  test('a 15-level kernel on a 3x3 image, by hand', () => {
    const l = new QuantConv2D({
      filters: 1,
      kernelSize: 2,
      padding: 'valid',
      kernelQuantizer: { className: 'SteUniform', config: { levels: 15, signed: true, scale: 'max' } },
      useBias: false,
      inputShape: [3, 3, 1],
      seed: 3,
    });
    const m = tf.sequential({ layers: [l] });
    l.setWeights([tf.tensor4d([0.3, -0.1, 0.2, 0.02], [2, 2, 1, 1])]);
    // s = 0.3; w/s*7 = 7, -2.33, 4.67, 0.47 -> 7, -2, 5, 0: Q = [0.3, -0.6/7, 1.5/7, 0]
    const q = [0.3, -0.6 / 7, 1.5 / 7, 0];
    close(arr(l.quantizedKernel()), q, 6);
    const img = [1, 2, 3, 4, 5, 6, 7, 8, 9];
    const y = m.predict(tf.tensor4d(img, [1, 3, 3, 1])) as tf.Tensor;
    expect(y.shape).toEqual([1, 2, 2, 1]);
    const at = (r: number, c: number) => img[r * 3 + c];
    const want = [0, 1].flatMap((r) => [0, 1].map((c) => q[0] * at(r, c) + q[1] * at(r, c + 1) + q[2] * at(r + 1, c) + q[3] * at(r + 1, c + 1)));
    close(arr(y), want, 5);
  });

  test('with no quantizer it equals tf.conv2d + bias, ReLU applied', () => {
    const l = new QuantConv2D({ filters: 2, kernelSize: 3, strides: 2, padding: 'same', activation: 'relu', inputShape: [5, 5, 1], seed: 2 });
    const m = tf.sequential({ layers: [l] });
    l.setWeights([l.getWeights()[0], tf.tensor1d([0.1, -0.2])]);
    const x = tf.randomUniform([2, 5, 5, 1], -1, 1, 'float32', 2);
    const [k, b] = l.getWeights();
    const want = tf.relu(tf.add(tf.conv2d(x as tf.Tensor4D, k as tf.Tensor4D, 2, 'same'), b));
    const got = m.predict(x) as tf.Tensor;
    expect(got.shape).toEqual([2, 3, 3, 2]);
    close(arr(got), arr(want), 6);
  });

  test('output shapes: same/valid, strides, rectangular kernels', () => {
    const shape = (args: Partial<ConstructorParameters<typeof QuantConv2D>[0]>) =>
      new QuantConv2D({ filters: 4, kernelSize: 3, ...args }).computeOutputShape([null, 28, 28, 1]);
    expect(shape({ padding: 'same' })).toEqual([null, 28, 28, 4]);
    expect(shape({ padding: 'valid' })).toEqual([null, 26, 26, 4]);
    expect(shape({ padding: 'valid', strides: 2 })).toEqual([null, 13, 13, 4]);
    expect(shape({ padding: 'same', strides: [2, 3] })).toEqual([null, 14, 10, 4]);
    expect(shape({ padding: 'valid', kernelSize: [5, 1] })).toEqual([null, 24, 28, 4]);
  });

  test('binary preset: steSign kernel and input, clip 1, no bias', () => {
    const l = binaryConv2D({ filters: 1, kernelSize: 1, inputShape: [1, 2, 2] });
    const m = tf.sequential({ layers: [l] });
    expect(l.kernelQuantizer!.className).toBe('SteSign');
    expect(l.inputQuantizer!.className).toBe('SteSign');
    expect(l.kernelClip).toBe(1);
    expect(l.useBias).toBe(false);
    l.setWeights([tf.tensor4d([0.4, -3], [1, 1, 2, 1])]);
    // sign(x) . [1, -1]: x = [0.2, 0.7] -> 1 - 1 = 0; x = [-0.2, 0.7] -> -1 - 1 = -2
    expect(arr(m.predict(tf.tensor4d([0.2, 0.7, -0.2, 0.7], [1, 1, 2, 2])))).toEqual([0, -2]);
    applyWeightClips(m);
    close(arr(l.latentKernel()), [0.4, -1], 6);
    const d = binaryDense({ units: 3 });
    expect([d.kernelQuantizer!.className, d.inputQuantizer!.className, d.kernelClip, d.useBias]).toEqual(['SteSign', 'SteSign', 1, false]);
    expect(binaryDense({ units: 3, inputQuantizer: null }).inputQuantizer).toBeNull();
  });

  test('config validation names the field', () => {
    expect(fieldOf(() => new QuantConv2D({ name: 'c', filters: 0, kernelSize: 3 }))).toBe('c.filters');
    expect(fieldOf(() => new QuantConv2D({ name: 'c', filters: 2, kernelSize: [3] as never }))).toBe('c.kernelSize');
    expect(fieldOf(() => new QuantConv2D({ name: 'c', filters: 2, kernelSize: 3, strides: 0 }))).toBe('c.strides');
    expect(fieldOf(() => new QuantConv2D({ name: 'c', filters: 2, kernelSize: 3, padding: 'causal' as never }))).toBe('c.padding');
  });
});

describe('weight clips and the missing-clip warning', () => {
  test('applyWeightClips clips only layers with a kernelClip', () => {
    const a = new QuantDense({ name: 'a', units: 1, kernelClip: 0.5, useBias: false, inputShape: [3], seed: 1 });
    const b = new QuantDense({ name: 'b', units: 1, useBias: false, seed: 2 });
    const m = tf.sequential({ layers: [a, b] });
    a.setWeights([tf.tensor2d([[0.7], [-0.2], [-4]])]);
    b.setWeights([tf.tensor2d([[3]])]);
    applyWeightClips(m);
    close(arr(a.latentKernel()), [0.5, -0.2, -0.5]);
    expect(arr(b.latentKernel())).toEqual([3]);
  });

  test('kernelClipRms clips to +-k x the RMS of the kernel, before kernelClip; it round-trips', () => {
    const a = new QuantDense({ name: 'r', units: 1, kernelClipRms: 1, useBias: false, inputShape: [4], seed: 1 });
    tf.sequential({ layers: [a] });
    // RMS of [4, 0, 0, 0] = 2: 4 -> 2; of [1, -3, 1, 1] = sqrt(3) = 1.732
    a.setWeights([tf.tensor2d([[4], [0], [0], [0]])]);
    applyWeightClips({ layers: [a] });
    close(arr(a.latentKernel()), [2, 0, 0, 0]);
    a.setWeights([tf.tensor2d([[1], [-3], [1], [1]])]);
    applyWeightClips({ layers: [a] });
    close(arr(a.latentKernel()), [1, -Math.sqrt(3), 1, 1]);
    const b = new QuantDense({ name: 'rb', units: 1, kernelClipRms: 1, kernelClip: 1.5, useBias: false, inputShape: [4], seed: 1 });
    tf.sequential({ layers: [b] });
    b.setWeights([tf.tensor2d([[1], [-3], [1], [1]])]);
    b.applyClip();
    close(arr(b.latentKernel()), [1, -1.5, 1, 1]);
    expect(b.getConfig().kernelClipRms).toBe(1);
    expect(fieldOf(() => new QuantDense({ name: 'bad', units: 1, kernelClipRms: 0 }))).toBe('bad.kernelClipRms');
  });

  test('a binary kernel quantizer without a clip warns once (Larq)', () => {
    resetWarnings();
    const spy = jest.spyOn(console, 'warn');
    try {
      new QuantDense({ name: 'noclip1', units: 2, kernelQuantizer: 'steSign' });
      new QuantDense({ name: 'noclip2', units: 2, kernelQuantizer: 'approxSign' });
      new QuantDense({ name: 'clipped', units: 2, kernelQuantizer: 'steSign', kernelClip: 1 });
      new QuantDense({ name: 'multilevel', units: 2, kernelQuantizer: { className: 'SteUniform', config: { levels: 15, signed: true, scale: 'max' } } });
      const ours = spy.mock.calls.filter((c) => /kernelClip/.test(String(c[0])));
      expect(ours).toHaveLength(1);
      expect(String(ours[0][0])).toMatch(/noclip1/);
    } finally {
      spy.mockRestore();
    }
  });
});

// ---------------------------------------------------------------------------------------------

describe('device variation: config', () => {
  test('defaults and keys', () => {
    expect(resolveVariation({})).toEqual(DEFAULT_VARIATION);
    expect(DEFAULT_VARIATION.gOnOffRatio).toBe(100);
    expect([...VARIATION_FIELDS].sort()).toEqual(Object.keys(DEFAULT_VARIATION).sort());
    // the numeric ones are the CLI's --variation keys
    for (const k of VARIATION_KEYS) expect(typeof DEFAULT_VARIATION[k]).toBe('number');
  });
  test('validation names the field', () => {
    expect(fieldOf(() => resolveVariation({ gOnOffRatio: 1 }))).toBe('variation.gOnOffRatio');
    expect(fieldOf(() => resolveVariation({ rOnSigma: -0.1 }))).toBe('variation.rOnSigma');
    expect(fieldOf(() => resolveVariation({ rOffSigma: NaN }))).toBe('variation.rOffSigma');
    expect(fieldOf(() => resolveVariation({ stuckAtRonRate: 1.5 }))).toBe('variation.stuckAtRonRate');
    expect(fieldOf(() => resolveVariation({ stuckAtRonRate: 0.6, stuckAtRoffRate: 0.6 }))).toBe('variation.stuckAtRoffRate');
    expect(fieldOf(() => resolveVariation({ programingSigma: 0.1 } as never))).toBe('variation.programingSigma');
  });
});

describe('device variation: statistics on 100,000 weights', () => {
  const N = 100000;
  // All weights 0.5 except one 1.0 (wmax = 1): f+ = 0.5 on the plus device, the minus device at G_min.
  const half = () => {
    const v = new Float32Array(N).fill(0.5);
    v[0] = 1;
    return tf.tensor1d(v);
  };
  const stats = (t: tf.Tensor) => {
    const v = t.dataSync().subarray(1) as Float32Array;
    let s = 0;
    let s2 = 0;
    for (const x of v) {
      s += x;
      s2 += x * x;
    }
    const mean = s / v.length;
    return { mean, std: Math.sqrt(s2 / v.length - mean * mean), values: v };
  };

  test('no variation: the weights unchanged', () => {
    const w = tf.randomUniform([300], -0.7, 0.7, 'float32', 3);
    close(arr(perturbWeights(w, {}, 1)), arr(w), 6);
    // every sigma and rate zero but a different window: still exact
    close(arr(perturbValues(w, resolveVariation({ gOnOffRatio: 7 }), 1)), arr(w), 6);
  });

  test('programming noise: mean w, std sqrt(2) sigma wmax (two devices)', () => {
    const sigma = 0.05;
    // G_on/G_off = 2 keeps G_min = 0.5 far from the clamp at 0.
    const { mean, std } = stats(perturbWeights(half(), { programmingSigma: sigma, gOnOffRatio: 2 }, 7));
    const want = Math.SQRT2 * sigma; // = 0.0707
    expect(Math.abs(mean - 0.5)).toBeLessThan((4 * want) / Math.sqrt(N));
    expect(Math.abs(std / want - 1)).toBeLessThan(0.03);
  });

  test('R_ON lognormal: mean 0.5 (e^(s^2/2) - Gmin) / (1 - Gmin), std from the lognormal variance', () => {
    const s = 0.2;
    const gMin = 1 / 100;
    const { mean, std } = stats(perturbWeights(half(), { rOnSigma: s }, 11));
    // w_eff = 0.5 (G_on - G_min) / (G_max - G_min), G_on = exp(-n), n ~ N(0, s)
    const m1 = Math.exp((s * s) / 2);
    const wantMean = (0.5 * (m1 - gMin)) / (1 - gMin);
    const wantStd = (0.5 * Math.sqrt(Math.exp(s * s) * (Math.exp(s * s) - 1))) / (1 - gMin);
    expect(Math.abs(mean - wantMean)).toBeLessThan((4 * wantStd) / Math.sqrt(N));
    expect(Math.abs(std / wantStd - 1)).toBeLessThan(0.03);
  });

  test('R_OFF lognormal moves both devices of the pair', () => {
    const s = 0.5;
    const gMin = 0.1; // ratio 10
    const { mean, std } = stats(perturbWeights(half(), { rOffSigma: s, gOnOffRatio: 10 }, 13));
    // G+ = G_off+ + 0.5 (1 - G_off+), G- = G_off-: w = (0.5 + 0.5 G_off+ - G_off-) / 0.9
    const m1 = Math.exp((s * s) / 2);
    const v1 = Math.exp(s * s) * (Math.exp(s * s) - 1);
    const wantMean = (0.5 + 0.5 * gMin * m1 - gMin * m1) / (1 - gMin);
    const wantStd = Math.sqrt((0.25 + 1) * gMin * gMin * v1) / (1 - gMin);
    expect(Math.abs(mean - wantMean)).toBeLessThan((4 * wantStd) / Math.sqrt(N));
    expect(Math.abs(std / wantStd - 1)).toBeLessThan(0.03);
  });

  test('stuck cells: each outcome at its binomial rate', () => {
    const pOn = 0.03;
    const pOff = 0.02;
    const gMin = 1e-3;
    const { values } = stats(perturbWeights(half(), { stuckAtRonRate: pOn, stuckAtRoffRate: pOff, gOnOffRatio: 1 / gMin }, 17));
    // plus device: target (0.5), stuck on (1) or stuck off (G_min); minus device: G_min or stuck on (1).
    // w = (G+ - G-) / (1 - G_min): 1 | 0 | -0.5 | -1 | 0.5
    const count = (target: number) => values.reduce((n, x) => n + (Math.abs(x - target) < 0.01 ? 1 : 0), 0);
    const n = values.length;
    const expect4 = (got: number, p: number) => expect(Math.abs(got - n * p)).toBeLessThan(4 * Math.sqrt(n * p * (1 - p)) + 1);
    expect4(count(1), pOn * (1 - pOn));
    expect4(count(0), pOff * (1 - pOn) + pOn * pOn);
    expect4(count(-0.5), (1 - pOn - pOff) * pOn);
    expect4(count(-1), pOff * pOn);
    expect4(count(0.5), (1 - pOn - pOff) * (1 - pOn));
  });

  test('seeded: the same seed gives the same draw, another seed another', () => {
    const w = tf.randomUniform([1000], -1, 1, 'float32', 5);
    const v = { rOnSigma: 0.1, programmingSigma: 0.02, stuckAtRoffRate: 0.01 };
    expect(arr(perturbWeights(w, v, 5))).toEqual(arr(perturbWeights(w, v, 5)));
    expect(arr(perturbWeights(w, v, 6))).not.toEqual(arr(perturbWeights(w, v, 5)));
  });

  test('the gradient is straight-through, 0 through a stuck device', () => {
    const w = tf.tensor1d([0.3, -0.8, 0.1]);
    const g = tf.grad((x: tf.Tensor) => perturbWeights(x, { programmingSigma: 0.2, rOnSigma: 0.1 }, 2).mul(tf.tensor1d([1, 2, 3])).sum())(w);
    expect(arr(g)).toEqual([1, 2, 3]);
    const all = tf.grad((x: tf.Tensor) => perturbWeights(x, { programmingSigma: 0.2, stuckAtRonRate: 1 }, 2).mul(tf.tensor1d([1, 2, 3])).sum())(w);
    expect(arr(all)).toEqual([0, 0, 0]);
  });
});

describe('device variation in a layer', () => {
  const build = () => {
    const layer = new QuantDense({
      name: 'noisy',
      units: 3,
      kernelQuantizer: { className: 'SteUniform', config: { levels: 15, signed: true, scale: 'max' } },
      variation: { programmingSigma: 0.1 },
      seed: 4,
      inputShape: [5],
    });
    return { layer, m: tf.sequential({ layers: [layer] }) };
  };
  let x: tf.Tensor2D;
  beforeAll(() => {
    x = tf.tensor2d([0.5, -1, 0.25, 2, 1, -0.5, 0.1, 0, 1, 1], [2, 5]);
  });

  test('noise only when training; each training batch draws anew from deriveSeed(seed, "variation", n)', () => {
    const { layer, m } = build();
    const inf1 = arr(m.apply(x, { training: false }) as tf.Tensor);
    const inf2 = arr(m.predict(x) as tf.Tensor);
    expect(inf2).toEqual(inf1);
    expect(getNoiseCounters(m)).toEqual({ noisy: 0 });
    const t1 = arr(m.apply(x, { training: true }) as tf.Tensor);
    const t2 = arr(m.apply(x, { training: true }) as tf.Tensor);
    expect(t1).not.toEqual(inf1);
    expect(t2).not.toEqual(t1);
    expect(getNoiseCounters(m)).toEqual({ noisy: 2 });
    // The first noisy pass by hand: x . W' + b, W' the 15-level kernel Q(W) on differential pairs
    // (G_max = 1, G_min = 1/100) with programming noise N(0, 0.1 (G_max - G_min)) on each device,
    // drawn by tf.randomNormal from the pass's seed deriveSeed(4, 'variation', 0).
    const [kernel, bias] = layer.getWeights().map((t) => arr(t));
    const s = Math.max(...kernel.map(Math.abs));
    const q = kernel.map((w) => (s * 2 * Math.round((w / s + 1) * 7)) / 14 - s);
    expect(new Set(q.map((v) => Math.round((7 * v) / s))).size).toBeGreaterThan(3);
    close(arr(layer.quantizedKernel()), q, 6);
    const passSeed = deriveSeed(4, 'variation', 0);
    expect(noiseSeed(4, 0)).toBe(passSeed);
    const gMin = 0.01;
    const range = 1 - gMin;
    const noise = (side: string) => arr(tf.randomNormal([5, 3], 0, 0.1 * range, 'float32', deriveSeed(passSeed, side, 'program')));
    const [nPlus, nMinus] = [noise('plus'), noise('minus')];
    const qMax = Math.max(...q.map(Math.abs));
    const wEff = q.map((w, i) => {
      const gPlus = Math.max(0, gMin + (Math.max(w, 0) / qMax) * range + nPlus[i]);
      const gMinus = Math.max(0, gMin + (Math.max(-w, 0) / qMax) * range + nMinus[i]);
      return ((gPlus - gMinus) / range) * qMax;
    });
    const xv = arr(x);
    const want: number[] = [];
    for (let r = 0; r < 2; r++) {
      for (let j = 0; j < 3; j++) {
        let y = bias[j];
        for (let i = 0; i < 5; i++) y += xv[r * 5 + i] * wEff[i * 3 + j];
        want.push(y);
      }
    }
    close(t1, want, 5);
  });

  test('counters checkpoint and resume the noise sequence', () => {
    const a = build();
    a.m.apply(x, { training: true });
    const second = arr(a.m.apply(x, { training: true }) as tf.Tensor);
    const b = build();
    setNoiseCounters(b.m, { noisy: 1 });
    expect(arr(b.m.apply(x, { training: true }) as tf.Tensor)).toEqual(second);
    expect(fieldOf(() => setNoiseCounters(b.m, { other: 3 }))).toBe('noiseCounters.other');
    expect(fieldOf(() => setNoiseCounters(b.m, { noisy: -1 }))).toBe('noiseCounters.noisy');
  });

  test('a layer without variation draws nothing and has no counter', () => {
    const m = tf.sequential({ layers: [new QuantDense({ name: 'quiet', units: 2, inputShape: [5], seed: 1 })] });
    const a = arr(m.apply(x, { training: true }) as tf.Tensor);
    expect(arr(m.apply(x, { training: true }) as tf.Tensor)).toEqual(a);
    expect(getNoiseCounters(m)).toEqual({});
  });
});

// ---------------------------------------------------------------------------------------------

describe('QuantActivation', () => {
  test('binary activation at 0.5 (Park), sign, 8-bit', () => {
    const x = tf.tensor2d([[-1, 0.2, 0.5, 0.51, 3]]);
    expect(arr(binaryActivation().apply(x) as tf.Tensor)).toEqual([0, 0, 0, 1, 1]);
    expect(arr(signActivation().apply(x) as tf.Tensor)).toEqual([-1, 1, 1, 1, 1]);
    const q8 = new QuantActivation({ quantizer: { className: 'SteUniform', config: { bits: 8 } } });
    close(arr(q8.apply(tf.tensor1d([0.1, 0.5, 2])) as tf.Tensor), [Math.round(25.5) / 255, 128 / 255, 1], 6);
    expect(fieldOf(() => new QuantActivation({ name: 'q', quantizer: null }))).toBe('q.quantizer');
  });
});

describe('BN thresholds (Chen et al.)', () => {
  const setBn = (channels: number, gamma: number[], beta: number[], mean: number[], variance: number[], inputShape: number[] = [channels]) => {
    const bn = tf.layers.batchNormalization({ inputShape, epsilon: 1e-3 });
    const m = tf.sequential({ layers: [bn] });
    bn.setWeights([tf.tensor1d(gamma), tf.tensor1d(beta), tf.tensor1d(mean), tf.tensor1d(variance)]);
    return { bn, m };
  };

  test('tau = mean - beta sqrt(var + eps) / gamma, flipped where gamma < 0 (by hand)', () => {
    const { bn } = setBn(4, [1.5, -0.7, 0.2, -2], [0.1, 0.3, -0.4, 0], [0.2, -0.1, 0.5, 1], [1, 0.5, 2, 0.25]);
    const { threshold, flip } = bnThreshold(bn);
    expect(Array.from(flip)).toEqual([0, 1, 0, 1]);
    close(threshold, [0.2 - (0.1 * Math.sqrt(1.001)) / 1.5, -0.1 - (0.3 * Math.sqrt(0.501)) / -0.7, 0.5 + (0.4 * Math.sqrt(2.001)) / 0.2, 1], 5);
    const p = batchNormParams(bn);
    expect(p.epsilon).toBeCloseTo(1e-3, 9);
    close(p.movingVariance, [1, 0.5, 2, 0.25]);
  });

  test('BN + sign equals the comparator on random data, negative gamma included', () => {
    const { bn, m } = setBn(4, [1.5, -0.7, 0.2, -2], [0.1, 0.3, -0.4, 0], [0.2, -0.1, 0.5, 1], [1, 0.5, 2, 0.25]);
    const x = tf.randomNormal([2000, 4], 0, 2, 'float32', 3);
    const ref = arr(tf.sub(tf.mul(tf.cast(tf.greaterEqual(m.predict(x) as tf.Tensor, 0), 'float32'), 2), 1));
    const th = ThresholdActivation.fromBatchNorm(bn);
    expect(arr(th.apply(x) as tf.Tensor)).toEqual(ref);
    // both signs occur in every channel: the test can tell a wrong threshold
    const byChannel = [0, 1, 2, 3].map((c) => ref.filter((_, i) => i % 4 === c && ref[i] > 0).length);
    byChannel.forEach((n) => expect(n).toBeGreaterThan(50));
    byChannel.forEach((n) => expect(n).toBeLessThan(1950));
  });

  test('BN + step at 0.5 equals the step comparator on a conv feature map', () => {
    const { bn, m } = setBn(3, [0.8, -1.2, 2], [0.3, 0.9, -0.1], [0.05, 0.4, -0.3], [0.5, 1.5, 0.1], [4, 4, 3]);
    const x = tf.randomUniform([50, 4, 4, 3], -2, 2, 'float32', 8);
    const ref = arr(tf.cast(tf.greater(m.predict(x) as tf.Tensor, 0.5), 'float32'));
    const { threshold, flip } = bnThreshold(bn, { mode: 'step' });
    // step at 0.5: tau = mean + (0.5 - beta) sqrt(var + eps) / gamma
    expect(threshold[0]).toBeCloseTo(0.05 + (0.2 * Math.sqrt(0.501)) / 0.8, 5);
    const th = new ThresholdActivation({ threshold, flip, mode: 'step' });
    expect(arr(th.apply(x) as tf.Tensor)).toEqual(ref);
  });

  test('gamma = 0: the output is constant, the threshold +-FLOAT32_MAX', () => {
    const t = bnThreshold({ gamma: [0, 0], beta: [0.2, -0.2], movingMean: [0, 0], movingVariance: [1, 1], epsilon: 0.001 });
    expect(Array.from(t.threshold)).toEqual([-FLOAT32_MAX, FLOAT32_MAX].map((v) => Math.fround(v)));
    const th = new ThresholdActivation({ threshold: t.threshold, flip: t.flip });
    expect(arr(th.apply(tf.tensor2d([[1e6, 1e6], [-1e6, -1e6]])) as tf.Tensor)).toEqual([1, -1, 1, -1]);
  });

  test('params without gamma/beta (BN with scale and center off) and validation', () => {
    const t = bnThreshold({ movingMean: [0.5], movingVariance: [3], epsilon: 1 });
    expect(Array.from(t.threshold)).toEqual([0.5]);
    expect(fieldOf(() => bnThreshold({ movingMean: [0, 1], movingVariance: [1], epsilon: 0 }))).toBe('movingVariance');
    expect(fieldOf(() => new ThresholdActivation({ name: 't', threshold: [0, 1], flip: [0] }))).toBe('t.flip');
    expect(fieldOf(() => new ThresholdActivation({ name: 't', threshold: [0], mode: 'relu' as never }))).toBe('t.mode');
  });
});

// ---------------------------------------------------------------------------------------------

describe('serialization', () => {
  test('getConfig round-trips every custom layer through fromConfig', () => {
    const layers: tf.layers.Layer[] = [
      new QuantConv2D({
        name: 'qc',
        filters: 3,
        kernelSize: [3, 2],
        strides: [1, 2],
        padding: 'same',
        activation: 'relu6',
        kernelInitializer: 'heNormal',
        kernelQuantizer: { className: 'SteUniform', config: { levels: 7, signed: true, scale: 'max' } },
        inputQuantizer: { className: 'SteUniform', config: { bits: 8 } },
        kernelClip: 0.9,
        variation: { rOnSigma: 0.1, stuckAtRoffRate: 0.01 },
        seed: 9,
      }),
      new QuantDense({ name: 'qd', units: 4, useBias: false, kernelQuantizer: 'magnitudeAwareSign', kernelClip: 1, seed: 3 }),
      new QuantActivation({ name: 'qa', quantizer: { className: 'SteHeaviside', config: { threshold: 0.1, window: 0.3 } } }),
      new ThresholdActivation({ name: 'th', threshold: [0.5, -0.5, 0], flip: [0, 1, 0], mode: 'step' }),
    ];
    for (const l of layers) {
      const cfg = JSON.parse(JSON.stringify(l.getConfig()));
      const cls = l.constructor as unknown as tf.serialization.SerializableConstructor<tf.layers.Layer>;
      const back = tf.serialization.SerializationMap.getMap().classNameMap[l.getClassName()] ?? null;
      expect(back).not.toBeNull();
      const again = (cls as unknown as { fromConfig: (c: unknown, d: unknown) => tf.layers.Layer }).fromConfig(cls, cfg);
      expect(again.getConfig()).toEqual(l.getConfig());
    }
    const qc = layers[0].getConfig();
    expect(qc.kernelQuantizer).toEqual({ className: 'SteUniform', config: { levels: 7, signed: true, scale: 'max' } });
    expect(qc.variation).toEqual({ ...DEFAULT_VARIATION, rOnSigma: 0.1, stuckAtRoffRate: 0.01 });
    expect([qc.seed, qc.kernelClip, qc.activation, qc.kernelInitializer, qc.strides, qc.kernelSize]).toEqual([9, 0.9, 'relu6', 'heNormal', [1, 2], [3, 2]]);
  });

  test('a model with every custom layer: save -> load gives identical outputs, configs and weights', async () => {
    const m = tf.sequential({
      layers: [
        new QuantConv2D({
          name: 'qc',
          filters: 3,
          kernelSize: 3,
          inputShape: [6, 6, 1],
          kernelQuantizer: { className: 'SteUniform', config: { levels: 15, signed: true, scale: 'max' } },
          inputQuantizer: { className: 'SteUniform', config: { bits: 8 } },
          variation: { rOnSigma: 0.1 },
          seed: 9,
        }),
        new QuantActivation({ name: 'qa', quantizer: { className: 'SteHeaviside', config: { threshold: 0.1, window: 0.3 } } }),
        new ThresholdActivation({ name: 'th', threshold: [0.5, -0.5, 0], flip: [0, 1, 0], mode: 'step' }),
        tf.layers.flatten({ name: 'flat' }),
        new QuantDense({ name: 'qd', units: 4, kernelQuantizer: 'steSign', kernelClip: 1, seed: 3 }),
        new QuantDense({ name: 'qd2', units: 2, activation: 'sigmoid', kernelQuantizer: 'approx_sign', kernelClip: 1, inputQuantizer: 'ste_sign', seed: 4 }),
      ],
    });
    const back = await roundTrip(m);
    const x = tf.randomUniform([2, 6, 6, 1], 0, 1, 'float32', 5);
    expect(arr(back.predict(x) as tf.Tensor)).toEqual(arr(m.predict(x) as tf.Tensor));
    for (const name of ['qc', 'qa', 'th', 'qd', 'qd2']) {
      expect(back.getLayer(name).getClassName()).toBe(m.getLayer(name).getClassName());
      expect(back.getLayer(name).getConfig()).toEqual(m.getLayer(name).getConfig());
    }
    back.getWeights().forEach((w, i) => expect(arr(w)).toEqual(arr(m.getWeights()[i])));
    // the loaded layer's quantized kernel is the one the mapping step programs
    expect(arr((back.getLayer('qc') as QuantConv2D).quantizedKernel())).toEqual(arr((m.getLayer('qc') as QuantConv2D).quantizedKernel()));
  });
});

// ---------------------------------------------------------------------------------------------

describe('quantSummary', () => {
  test('counts binary, multi-level and float parameters and their memory', () => {
    const m = tf.sequential({
      layers: [
        new QuantConv2D({ name: 'bin', filters: 2, kernelSize: 3, inputShape: [5, 5, 1], kernelQuantizer: 'steSign', kernelClip: 1, seed: 1 }),
        tf.layers.batchNormalization({ name: 'bn' }),
        tf.layers.flatten({ name: 'flat' }),
        new QuantDense({ name: 'ml', units: 3, useBias: false, kernelQuantizer: { className: 'SteUniform', config: { levels: 15, signed: true, scale: 'max' } }, seed: 2 }),
        tf.layers.dense({ name: 'stock', units: 2 }),
      ],
    });
    const s = quantSummary(m);
    // bin: 18 binary kernel + 2 float bias; bn: 4 x 2 float (2 x 2 trainable); ml: 18 x 3 = 54 at 4 bits;
    // stock: 3 x 2 + 2 = 8 float
    expect(s.layers.map((l) => [l.name, l.binary, l.multiLevel, l.float, l.weightBits])).toEqual([
      ['bin', 18, 0, 2, 1],
      ['bn', 0, 0, 8, null],
      ['flat', 0, 0, 0, null],
      ['ml', 0, 54, 0, 4],
      ['stock', 0, 0, 8, null],
    ]);
    expect([s.binaryParams, s.multiLevelParams, s.floatParams, s.totalParams]).toEqual([18, 54, 18, 90]);
    expect(s.totalParams).toBe(m.countParams());
    expect([s.trainableParams, s.nonTrainableParams]).toEqual([86, 4]);
    // bits: 18 x 1 + 54 x 4 + 18 x 32 = 810 -> 101.25 bytes; float32: 360 bytes
    expect(s.memoryBytes).toBeCloseTo(101.25, 9);
    expect(s.float32Bytes).toBe(360);
    expect(s.compressionRatio).toBeCloseTo(360 / 101.25, 9);
    expect(s.layers[0].outputShape).toEqual([3, 3, 2]);
    const text = formatQuantSummary(s);
    expect(text).toMatch(/Total params: 90/);
    expect(text).toMatch(/Binary: 18, multi-level: 54, float: 18/);
    expect(JSON.parse(JSON.stringify(s))).toEqual(s);
  });
});
