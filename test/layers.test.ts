import { tf } from '../src/tf';
import { QuantConv2D } from '../layers/quant_conv2d';
import { QuantDense } from '../layers/quant_dense';
import { QuantActivation } from '../layers/quant_activation';
import { ThresholdActivation, bnThreshold } from '../layers/bn_threshold';
import { perturbWeights, getNoiseCounters, setNoiseCounters } from '../layers/variation';
import { applyWeightClips } from '../layers/quant_base';
import { quantSummary } from '../layers/summary';
import { buildModel, modelNames } from '../models/registry';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

/** Save to memory and load back (the same artifacts saveModel writes to disk). */
async function roundTrip(m: tf.LayersModel): Promise<tf.LayersModel> {
  let saved: tf.io.ModelArtifacts | null = null;
  await m.save(tf.io.withSaveHandler(async (a) => ((saved = a), { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } })));
  return tf.loadLayersModel(tf.io.fromMemory(saved!));
}

function seededInput(shape: number[], seed: number): tf.Tensor {
  return tf.randomUniform(shape, 0, 1, 'float32', seed);
}

describe('device-variation noise', () => {
  let w: tf.Tensor;
  beforeAll(() => {
    w = tf.randomUniform([200, 250], -1, 1, 'float32', 11); // 50,000 weights
  });

  test('no variation: the weights unchanged', () => {
    const p = perturbWeights(w, {}, 1);
    expect(tf.max(tf.abs(tf.sub(p, w))).dataSync()[0]).toBeLessThan(1e-6);
  });

  test('programming noise: zero mean, spread sqrt(2) sigma (two devices) of max|w|', () => {
    const sigma = 0.05;
    const d = tf.sub(perturbWeights(w, { programmingSigma: sigma, gOnOffRatio: 1e6 }, 7), w);
    const { mean, variance } = tf.moments(d);
    const wmax = tf.max(tf.abs(w)).dataSync()[0];
    // Each device adds N(0, sigma * range); relu clamps a few near G_min, so allow 10%.
    expect(Math.abs(mean.dataSync()[0])).toBeLessThan(0.003);
    expect(Math.sqrt(variance.dataSync()[0])).toBeGreaterThan(0.9 * Math.SQRT2 * sigma * wmax * 0.9);
    expect(Math.sqrt(variance.dataSync()[0])).toBeLessThan(1.1 * Math.SQRT2 * sigma * wmax);
  });

  test('stuck cells at the given rates (binomial tolerance), stuck-at-R_ON pushes a weight to +-wmax', () => {
    const rate = 0.02;
    const p = perturbWeights(w, { stuckAtRonRate: rate, gOnOffRatio: 1e9 }, 3);
    const wmax = tf.max(tf.abs(w)).dataSync()[0];
    // With G_min ~ 0, a stuck-ON device on the unused side moves w by about -/+ wmax.
    const moved = tf.sum(tf.cast(tf.greater(tf.abs(tf.sub(p, w)), 1e-4), 'float32')).dataSync()[0];
    const n = w.size;
    const expected = n * (1 - (1 - rate) ** 2); // either device of the pair
    const sd = Math.sqrt(n * 2 * rate * (1 - 2 * rate));
    expect(Math.abs(moved - expected)).toBeLessThan(4 * sd + n * 0.002);
    expect(tf.max(tf.abs(p)).dataSync()[0]).toBeLessThanOrEqual(wmax * (1 + 1e-5));
  });

  test('R_ON spread: lognormal per device, seeded', () => {
    const a = perturbWeights(w, { rOnSigma: 0.1 }, 5).dataSync();
    const b = perturbWeights(w, { rOnSigma: 0.1 }, 5).dataSync();
    const c = perturbWeights(w, { rOnSigma: 0.1 }, 6).dataSync();
    expect(Array.from(b)).toEqual(Array.from(a));
    expect(Array.from(c)).not.toEqual(Array.from(a));
  });

  test('a layer draws noise only when training, anew each batch, and counts its draws', () => {
    const layer = new QuantDense({ units: 3, kernelQuantizer: null, variation: { programmingSigma: 0.1 }, seed: 4, inputShape: [5] });
    const m = tf.sequential({ layers: [layer] });
    const x = seededInput([2, 5], 1);
    const inf1 = (m.apply(x, { training: false }) as tf.Tensor).dataSync();
    const inf2 = (m.apply(x, { training: false }) as tf.Tensor).dataSync();
    expect(Array.from(inf2)).toEqual(Array.from(inf1));
    const t1 = (m.apply(x, { training: true }) as tf.Tensor).dataSync();
    const t2 = (m.apply(x, { training: true }) as tf.Tensor).dataSync();
    expect(Array.from(t1)).not.toEqual(Array.from(inf1));
    expect(Array.from(t2)).not.toEqual(Array.from(t1));
    expect(getNoiseCounters(m)).toEqual({ [layer.name]: 2 });
    setNoiseCounters(m, { [layer.name]: 1 });
    expect(Array.from((m.apply(x, { training: true }) as tf.Tensor).dataSync())).toEqual(Array.from(t2));
  });
});

describe('quantized layers', () => {
  test('QuantDense computes x . Q(W) + b; quantizedKernel holds the levels', () => {
    const l = new QuantDense({ units: 2, kernelQuantizer: 'steSign', kernelClip: 1, inputShape: [3], seed: 1 });
    const m = tf.sequential({ layers: [l] });
    l.setWeights([tf.tensor2d([[0.3, -0.2], [-0.7, 0.1], [0, -1.5]]), tf.tensor1d([0.5, -0.5])]);
    const y = (m.predict(tf.tensor2d([[1, 2, 3]])) as tf.Tensor).dataSync();
    // Q(W) = [[1,-1],[-1,1],[1,-1]]: [1-2+3, -1+2-3] + b
    expect(Array.from(y)).toEqual([2.5, -2.5]);
    expect(Array.from(l.quantizedKernel().dataSync())).toEqual([1, -1, -1, 1, 1, -1]);
    applyWeightClips(m);
    expect(Array.from(l.latentKernel().dataSync()).map((v) => Number(v.toFixed(6)))).toEqual([0.3, -0.2, -0.7, 0.1, 0, -1]);
  });

  test('the STE gradient reaches the latent kernel', () => {
    const l = new QuantDense({ units: 1, kernelQuantizer: 'steSign', useBias: false, inputShape: [2], seed: 1 });
    const m = tf.sequential({ layers: [l] });
    l.setWeights([tf.tensor2d([[0.5], [2]])]);
    const x = tf.tensor2d([[3, 4]]);
    const g = tf.variableGrads(() => (m.apply(x, { training: true }) as tf.Tensor).sum() as tf.Scalar);
    // d/dW of x.sign(W) via STE: x where |W| <= 1, else 0
    expect(Array.from(Object.values(g.grads)[0].dataSync())).toEqual([3, 0]);
  });

  test('QuantConv2D with float kernel equals tf.conv2d', () => {
    const l = new QuantConv2D({ filters: 2, kernelSize: 3, padding: 'same', kernelQuantizer: null, inputShape: [5, 5, 1], seed: 2 });
    const m = tf.sequential({ layers: [l] });
    const x = seededInput([1, 5, 5, 1], 2);
    const [k, b] = l.getWeights();
    const want = tf.add(tf.conv2d(x as tf.Tensor4D, k as tf.Tensor4D, 1, 'same'), b).dataSync();
    const got = (m.predict(x) as tf.Tensor).dataSync();
    got.forEach((v, i) => expect(v).toBeCloseTo(want[i], 5));
  });

  test('every custom layer: save -> load gives the same outputs and config', async () => {
    const m = tf.sequential({
      layers: [
        new QuantConv2D({ name: 'qc', filters: 3, kernelSize: 3, inputShape: [6, 6, 1], kernelQuantizer: { className: 'SteUniform', config: { levels: 7, signed: true, scale: 'max' } }, inputQuantizer: { className: 'SteUniform', config: { bits: 8 } }, variation: { rOnSigma: 0.1 }, seed: 9 }),
        new QuantActivation({ name: 'qa', quantizer: { className: 'SteHeaviside', config: { threshold: 0.1, window: 0.3 } } }),
        new ThresholdActivation({ name: 'th', threshold: [0.5, -0.5, 0], flip: [0, 1, 0], mode: 'step' }),
        tf.layers.flatten(),
        new QuantDense({ name: 'qd', units: 4, kernelQuantizer: 'steSign', kernelClip: 1, seed: 3 }),
      ],
    });
    const back = await roundTrip(m);
    const x = seededInput([2, 6, 6, 1], 5);
    expect(Array.from((back.predict(x) as tf.Tensor).dataSync())).toEqual(Array.from((m.predict(x) as tf.Tensor).dataSync()));
    for (const name of ['qc', 'qa', 'th', 'qd']) expect(back.getLayer(name).getConfig()).toEqual(m.getLayer(name).getConfig());
  });
});

describe('BN thresholds (Chen et al.)', () => {
  test('BN + sign equals the comparator, including negative gamma', () => {
    const bn = tf.layers.batchNormalization({ inputShape: [4], epsilon: 1e-3 });
    const m = tf.sequential({ layers: [bn] });
    bn.setWeights([tf.tensor1d([1.5, -0.7, 0.2, -2]), tf.tensor1d([0.1, 0.3, -0.4, 0]), tf.tensor1d([0.2, -0.1, 0.5, 1]), tf.tensor1d([1, 0.5, 2, 0.25])]);
    const x = tf.randomNormal([500, 4], 0, 2, 'float32', 3);
    const ref = tf.sign(tf.sign(m.predict(x) as tf.Tensor).add(0.5)).dataSync(); // sign with sign(0)=+1
    const { threshold, flip } = bnThreshold(bn);
    expect(Array.from(flip)).toEqual([0, 1, 0, 1]);
    // tau = mean - beta sqrt(var+eps) / gamma, channel 0 by hand:
    expect(threshold[0]).toBeCloseTo(0.2 - (0.1 * Math.sqrt(1.001)) / 1.5, 6);
    const th = new ThresholdActivation({ threshold, flip, inputShape: [4] });
    const got = (tf.sequential({ layers: [th] }).predict(x) as tf.Tensor).dataSync();
    expect(Array.from(got)).toEqual(Array.from(ref));
  });
});

describe('models', () => {
  // vgg16 has 15M weights: one build (below), not three.
  test.each(modelNames().filter((n) => n !== 'vgg16'))('%s: output shape, same seed same weights, different seed different', (name) => {
    const shape = name === 'vgg16' ? [32, 32, 3] : [28, 28, 1];
    const a = buildModel(name, { seed: 1 });
    const b = buildModel(name, { seed: 1 });
    const c = buildModel(name, { seed: 2 });
    expect(a.outputs[0].shape).toEqual([null, 10]);
    expect(a.inputs[0].shape).toEqual([null, ...shape]);
    const wa = a.getWeights().map((w) => Array.from(w.dataSync()));
    expect(b.getWeights().map((w) => Array.from(w.dataSync()))).toEqual(wa);
    expect(c.getWeights().map((w) => Array.from(w.dataSync()))).not.toEqual(wa);
    [a, b, c].forEach((m) => m.dispose());
  });

  test('vgg16: 13 conv + 3 dense layers on 32x32x3, 15M weights', () => {
    const m = buildModel('vgg16', { seed: 1 });
    expect(m.inputs[0].shape).toEqual([null, 32, 32, 3]);
    expect(m.outputs[0].shape).toEqual([null, 10]);
    expect(m.layers.filter((l) => l.getClassName() === 'QuantConv2D')).toHaveLength(13);
    expect(m.layers.filter((l) => l.getClassName() === 'QuantDense')).toHaveLength(3);
    expect(m.countParams()).toBe(14714688 + 2 * (512 * 512 + 512) + (512 * 10 + 10));
    m.dispose();
  });

  test('mcnn is Yao et al.\'s table: 936 conv weights, FC 192 -> 10', () => {
    const m = buildModel('mcnn', { seed: 1 });
    const kernels = m.layers.filter((l) => l.getClassName() === 'QuantConv2D').map((l) => l.getWeights()[0].size);
    expect(kernels).toEqual([72, 864]);
    expect(m.getLayer('FC').getWeights()[0].shape).toEqual([192, 10]);
    const s = quantSummary(m);
    expect(JSON.stringify(s)).toMatch(/QuantDense/);
  });

  test('mcnn saved and loaded gives the same logits', async () => {
    const m = buildModel('mcnn', { seed: 3 });
    const back = await roundTrip(m);
    const x = seededInput([3, 28, 28, 1], 4);
    expect(Array.from((back.predict(x) as tf.Tensor).dataSync())).toEqual(Array.from((m.predict(x) as tf.Tensor).dataSync()));
  });
});
