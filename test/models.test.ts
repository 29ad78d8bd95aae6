// The papers' networks: topology, parameter counts, seeding, variants, save/load and options.
import { tf } from '../src/tf';
import { initBackend } from '../src/backend';
import { buildModel, listModels, modelNames } from '../models/registry';
import { QuantConv2D, QuantDense, QuantActivation, QuantKernelLayer, quantSummary, getNoiseCounters, DEFAULT_VARIATION } from '../layers';
import { roundTrip, arr, fieldOf } from './helpers';

// wasm with the package's kernels (src/backend.ts), as the CLI runs: the stock cpu backend's
// convolutions are naive loops (this file took ~80 s there, ~10 s here).
beforeAll(async () => {
  await initBackend('wasm');
});

const weightsOf = (m: tf.LayersModel) => m.getWeights().map((w) => arr(w));
const shapes = (m: tf.LayersModel) => m.layers.map((l) => [l.name, (l.outputShape as number[]).slice(1)]);

const SMALL = ['mcnn', 'park', 'bnn', 'bmcnn'];

describe('registry', () => {
  test('lists every model with its default input', () => {
    expect(modelNames()).toEqual(['mcnn', 'park', 'bnn', 'bmcnn', 'vgg16', 'resnet']);
    const l = listModels();
    expect(l.map((m) => [m.name, m.defaultInput])).toEqual([
      ['mcnn', [28, 28, 1]],
      ['park', [28, 28, 1]],
      ['bnn', [28, 28, 1]],
      ['bmcnn', [28, 28, 1]],
      ['vgg16', [32, 32, 3]],
      ['resnet', [32, 32, 3]],
    ]);
    l.forEach((m) => expect(m.description.length).toBeGreaterThan(20));
  });

  test('bad options are ConfigErrors naming the option', () => {
    expect(fieldOf(() => buildModel('lenet', { seed: 1 }))).toBe('model');
    expect(fieldOf(() => buildModel('mcnn', { seed: -1 }))).toBe('seed');
    expect(fieldOf(() => buildModel('mcnn', { seed: 1.5 }))).toBe('seed');
    expect(fieldOf(() => buildModel('mcnn', { seed: 1, inputShape: [28, 28] as never }))).toBe('inputShape');
    expect(fieldOf(() => buildModel('mcnn', { seed: 1, numClasses: 1 }))).toBe('numClasses');
    expect(fieldOf(() => buildModel('mcnn', { seed: 1, weightLevels: 1 }))).toBe('weightLevels');
    expect(fieldOf(() => buildModel('mcnn', { seed: 1, float: true, weightLevels: 7 }))).toBe('weightLevels');
    expect(fieldOf(() => buildModel('bnn', { seed: 1, weightLevels: 7 }))).toBe('weightLevels');
    expect(fieldOf(() => buildModel('mcnn', { seed: 1, variant: 'fully-binary' }))).toBe('variant');
    expect(fieldOf(() => buildModel('bmcnn', { seed: 1, variant: 'ternary' }))).toBe('variant');
    expect(fieldOf(() => buildModel('mcnn', { seed: 1, float: true, variation: { rOnSigma: 0.1 } }))).toBe('variation');
    expect(fieldOf(() => buildModel('mcnn', { seed: 1, variation: { rOnSigma: -1 } }))).toBe('variation.rOnSigma');
    expect(fieldOf(() => buildModel('vgg16', { seed: 1, inputShape: [28, 28, 1] }))).toBe('inputShape');
    expect(fieldOf(() => buildModel('mcnn', { seed: 1, dropout: 0.5 } as never))).toBe('dropout');
  });
});

describe('topologies and parameter counts', () => {
  test("mcnn is exactly Yao et al.'s table: 936 conv weights, FC 192 -> 10", () => {
    const m = buildModel('mcnn', { seed: 1 });
    expect(shapes(m)).toEqual([
      ['C1', [28, 28, 8]],
      ['S2', [14, 14, 8]],
      ['C3', [12, 12, 12]],
      ['S4', [4, 4, 12]],
      ['flatten', [192]],
      ['FC', [10]],
    ]);
    const c1 = m.getLayer('C1') as QuantConv2D;
    const c3 = m.getLayer('C3') as QuantConv2D;
    const fc = m.getLayer('FC') as QuantDense;
    expect([c1.latentKernel().size, c3.latentKernel().size]).toEqual([72, 864]);
    expect(fc.latentKernel().shape).toEqual([192, 10]);
    expect([c1.padding, c3.padding, c1.activation, c3.activation, fc.activation]).toEqual(['same', 'valid', 'relu', 'relu', 'linear']);
    // 8-bit input, 15 signed levels spanning max|w|
    expect(c1.inputQuantizer!.config).toEqual({ levels: 256, signed: false, scale: null });
    expect(c3.inputQuantizer).toBeNull();
    for (const l of [c1, c3, fc]) expect(l.kernelQuantizer!.config).toEqual({ levels: 15, signed: true, scale: 'max' });
    // 72 + 8 + 864 + 12 + 1920 + 10
    expect(m.countParams()).toBe(2886);
  });

  test('park: conv 16 3x3 at 8 levels, pool, binary activation at 0.5, dense 2704 -> 10 at 8 levels', () => {
    const m = buildModel('park', { seed: 1 });
    expect(shapes(m)).toEqual([
      ['conv', [28, 28, 16]],
      ['pool', [13, 13, 16]],
      ['act', [13, 13, 16]],
      ['flatten', [2704]],
      ['fc', [10]],
    ]);
    const act = m.getLayer('act') as QuantActivation;
    expect([act.quantizer.className, act.quantizer.config.threshold]).toEqual(['SteHeaviside', 0.5]);
    for (const n of ['conv', 'fc']) expect((m.getLayer(n) as QuantKernelLayer).kernelQuantizer!.config).toEqual({ levels: 8, signed: true, scale: 'max' });
    // conv 144 + 16, fc 27040 + 10
    expect(m.countParams()).toBe(27210);
    // the fc layer sees only 0/1 inputs
    const x = tf.randomUniform([2, 28, 28, 1], 0, 1, 'float32', 1);
    const feats = tf.model({ inputs: m.inputs, outputs: m.getLayer('flatten').output as tf.SymbolicTensor }).predict(x) as tf.Tensor;
    expect([...new Set(arr(feats))].sort()).toEqual([0, 1]);
  });

  test('bnn: binary kernels, BN + sign, binary dense + BN', () => {
    const m = buildModel('bnn', { seed: 1 });
    const kernels = m.layers.filter((l) => l instanceof QuantKernelLayer) as QuantKernelLayer[];
    expect(kernels.map((l) => [l.name, l.kernelQuantizer!.className, l.kernelClip, l.useBias])).toEqual([
      ['B1', 'SteSign', 1, false],
      ['B2', 'SteSign', 1, false],
      ['FC', 'SteSign', 1, false],
    ]);
    expect(m.layers.map((l) => l.getClassName())).toEqual([
      'QuantConv2D',
      'MaxPooling2D',
      'BatchNormalization',
      'QuantActivation',
      'QuantConv2D',
      'MaxPooling2D',
      'BatchNormalization',
      'QuantActivation',
      'Flatten',
      'QuantDense',
      'BatchNormalization',
    ]);
    expect(shapes(m).map((s) => s[1])).toEqual([[28, 28, 16], [14, 14, 16], [14, 14, 16], [14, 14, 16], [14, 14, 32], [7, 7, 32], [7, 7, 32], [7, 7, 32], [1568], [10], [10]]);
    // 144 + 64 + 4608 + 128 + 15680 + 40
    expect(m.countParams()).toBe(20664);
    const s = quantSummary(m);
    expect([s.binaryParams, s.multiLevelParams, s.floatParams]).toEqual([144 + 4608 + 15680, 0, 64 + 128 + 40]);
  });

  test('bmcnn variants: binary weights with float first/last layers, or fully binary', () => {
    const bw = buildModel('bmcnn', { seed: 1 });
    const fb = buildModel('bmcnn', { seed: 1, variant: 'fully-binary' });
    const quant = (m: tf.LayersModel) => (m.layers.filter((l) => l instanceof QuantKernelLayer) as QuantKernelLayer[]).map((l) => [l.name, l.kernelQuantizer?.className ?? null]);
    expect(quant(bw)).toEqual([
      ['conv1', null],
      ['conv2', 'SteSign'],
      ['fc1', 'SteSign'],
      ['fc2', null],
    ]);
    expect(quant(fb).map((q) => q[1])).toEqual(['SteSign', 'SteSign', 'SteSign', 'SteSign']);
    expect(bw.layers.filter((l) => l instanceof QuantActivation)).toHaveLength(0);
    expect(fb.layers.filter((l) => l instanceof QuantActivation)).toHaveLength(3);
    // binary-weights: 288 + 32 | 9216 | bn 128 | 147456 | bn 512 | 1280 + 10
    expect(bw.countParams()).toBe(158922);
    // fully-binary: 288 | bn 128 | 9216 | bn 128 | 147456 | bn 512 | 1280 | bn 40
    expect(fb.countParams()).toBe(159048);
    const s = quantSummary(bw);
    expect([s.binaryParams, s.floatParams]).toEqual([9216 + 147456, 320 + 128 + 512 + 1290]);
  });

  test('vgg16: 13 conv 3x3 + dense 512 + dense 10 on 32x32x3', () => {
    const m = buildModel('vgg16', { seed: 1 });
    const convs = m.layers.filter((l) => l instanceof QuantConv2D) as QuantConv2D[];
    expect(convs.map((l) => l.filters)).toEqual([64, 64, 128, 128, 256, 256, 256, 512, 512, 512, 512, 512, 512]);
    expect(m.layers.filter((l) => l.getClassName() === 'MaxPooling2D')).toHaveLength(5);
    expect(m.layers.filter((l) => l instanceof QuantDense).map((l) => (l as QuantDense).units)).toEqual([512, 10]);
    expect(m.outputs[0].shape).toEqual([null, 10]);
    // VGG-16 conv part 14,714,688 + 512 x 512 + 512 + 512 x 10 + 10
    expect(m.countParams()).toBe(14714688 + 262656 + 5130);
    const bn = buildModel('vgg16', { seed: 1, batchNorm: true, float: true });
    expect(bn.layers.filter((l) => l.getClassName() === 'BatchNormalization')).toHaveLength(13);
    [m, bn].forEach((x) => x.dispose());
  });

  test('numClasses and inputShape are honoured', () => {
    const m = buildModel('mcnn', { seed: 1, numClasses: 4, inputShape: [34, 34, 3] });
    expect(m.inputs[0].shape).toEqual([null, 34, 34, 3]);
    expect(m.outputs[0].shape).toEqual([null, 4]);
    // 34 -> 17 -> 15 -> 5: FC 5 x 5 x 12 = 300 inputs
    expect((m.getLayer('FC') as QuantDense).latentKernel().shape).toEqual([300, 4]);
  });
});

describe('seeding', () => {
  test.each(SMALL)('%s: same seed -> bit-identical weights, another seed -> different', (name) => {
    const a = buildModel(name, { seed: 1 });
    const b = buildModel(name, { seed: 1 });
    const c = buildModel(name, { seed: 2 });
    const wa = weightsOf(a);
    expect(weightsOf(b)).toEqual(wa);
    // every kernel differs with the seed (biases and BN start equal)
    const kernels = (m: tf.LayersModel) => m.weights.filter((w) => /kernel/.test(w.originalName)).map((w) => arr(w.read()));
    const kc = kernels(c);
    kernels(a).forEach((k, i) => expect(k).not.toEqual(kc[i]));
    [a, b, c].forEach((m) => m.dispose());
  });

  test('vgg16: same seed -> identical first and last kernels', () => {
    const a = buildModel('vgg16', { seed: 7 });
    const b = buildModel('vgg16', { seed: 7 });
    for (const n of ['block1_conv1', 'fc2']) expect(arr((a.getLayer(n) as QuantKernelLayer).latentKernel())).toEqual(arr((b.getLayer(n) as QuantKernelLayer).latentKernel()));
    [a, b].forEach((m) => m.dispose());
  });

  test.each(SMALL)('%s: the float and stock builds start from the same weights as the quantized one', (name) => {
    const q = buildModel(name, { seed: 3 });
    const f = buildModel(name, { seed: 3, float: true });
    const s = buildModel(name, { seed: 3, stock: true });
    expect(weightsOf(f)).toEqual(weightsOf(q));
    expect(weightsOf(s)).toEqual(weightsOf(q));
    expect(f.layers.some((l) => l instanceof QuantKernelLayer && l.kernelQuantizer !== null)).toBe(false);
    expect(s.layers.some((l) => l instanceof QuantKernelLayer)).toBe(false);
    expect(quantSummary(f).floatParams).toBe(q.countParams());
    [q, f, s].forEach((m) => m.dispose());
  });
});

describe('options reach the layers', () => {
  test('weightLevels sets the number of levels', () => {
    const m = buildModel('mcnn', { seed: 1, weightLevels: 7 });
    const k = (m.getLayer('FC') as QuantDense).quantizedKernel();
    expect(new Set(arr(k).map((v) => v.toFixed(6))).size).toBeLessThanOrEqual(7);
    expect((m.getLayer('C1') as QuantConv2D).kernelQuantizer!.levels).toBe(7);
  });

  test('variation goes to every quantized kernel; noise only while training', () => {
    const m = buildModel('mcnn', { seed: 1, variation: { programmingSigma: 0.05 } });
    for (const n of ['C1', 'C3', 'FC']) expect((m.getLayer(n) as QuantKernelLayer).variation).toEqual({ ...DEFAULT_VARIATION, programmingSigma: 0.05 });
    const x = tf.randomUniform([2, 28, 28, 1], 0, 1, 'float32', 2);
    const a = arr(m.predict(x) as tf.Tensor);
    expect(arr(m.predict(x) as tf.Tensor)).toEqual(a);
    expect(arr(m.apply(x, { training: true }) as tf.Tensor)).not.toEqual(a);
    expect(getNoiseCounters(m)).toEqual({ C1: 1, C3: 1, FC: 1 });
  });

  test('bmcnn puts the variation on its binary layers only', () => {
    const m = buildModel('bmcnn', { seed: 1, variation: { rOnSigma: 0.1 } });
    expect(Object.keys(getNoiseCounters(m))).toEqual(['conv2', 'fc1']);
  });
});

describe('save and load', () => {
  test.each([
    ['mcnn', {}],
    ['park', {}],
    ['bnn', {}],
    ['bmcnn', {}],
    ['bmcnn', { variant: 'fully-binary' }],
    ['mcnn', { float: true }],
    ['park', { stock: true }],
  ] as [string, object][])('%s %j: save -> load gives identical outputs', async (name, extra) => {
    const m = buildModel(name, { seed: 3, ...extra });
    const x = tf.randomUniform([3, 28, 28, 1], 0, 1, 'float32', 4);
    // a few training passes first so that BN moving statistics are not the initial ones
    for (let i = 0; i < 2; i++) m.apply(x, { training: true });
    const back = await roundTrip(m);
    expect(arr(back.predict(x) as tf.Tensor)).toEqual(arr(m.predict(x) as tf.Tensor));
    expect(back.layers.map((l) => l.getConfig())).toEqual(m.layers.map((l) => l.getConfig()));
    [m, back].forEach((t) => t.dispose());
  });

  test('vgg16: save -> load gives identical outputs', async () => {
    const m = buildModel('vgg16', { seed: 3 });
    const back = await roundTrip(m);
    const x = tf.randomUniform([1, 32, 32, 3], 0, 1, 'float32', 4);
    expect(arr(back.predict(x) as tf.Tensor)).toEqual(arr(m.predict(x) as tf.Tensor));
    [m, back].forEach((t) => t.dispose());
  });
});

describe('training signal', () => {
  test.each(SMALL)('%s: a few Adam steps on one batch lower the loss', (name) => {
    const m = buildModel(name, { seed: 5 });
    const x = tf.randomUniform([4, 28, 28, 1], 0, 1, 'float32', 6);
    const y = tf.oneHot(tf.tensor1d([0, 1, 2, 3], 'int32'), 10);
    const opt = tf.train.adam(0.01);
    const vars = m.trainableWeights.map((w) => w.read() as tf.Variable);
    const step = () => {
      const l = opt.minimize(() => tf.losses.softmaxCrossEntropy(y, m.apply(x, { training: true }) as tf.Tensor) as tf.Scalar, true, vars)!;
      const v = l.dataSync()[0];
      l.dispose();
      return v;
    };
    const first = step();
    let last = first;
    for (let i = 0; i < 5; i++) last = step();
    expect(last).toBeLessThan(first * 0.6);
    m.dispose();
  });
});
