// Graph models on the arrays (src/crossbar/graph.ts): every graph layer's mapping against the
// software model on the ideal device, BatchNormalization folding against hand-computed values, a
// residual model end to end through the CLI (map -> evaluate -> insitu), and what is refused.
import * as fs from 'fs';
import * as path from 'path';
import { tf } from '../src/tf';
import { initBackend } from '../src/backend';
import { saveModel } from '../src/model_io';
import { getPreset } from '../src/device/config';
import { ConfigError, UsageError } from '../src/errors';
import { crossbarRunner, disposeCrossbar, loadCrossbar, mapModel, mappedWeights, planSteps, predictCrossbar, saveCrossbar } from '../src/crossbar';
import { blockDiagonal, foldBatchNorm, modelGraph } from '../src/crossbar/graph';
import { insituLayer } from '../training/insitu';
import { mapCommand } from '../src/commands/map';
import { crossbarEvaluateCommand } from '../src/commands/crossbar_eval';
import { insituCommand } from '../src/commands/insitu';
import { evaluateCommand } from '../src/commands/evaluate';
import { sweepCommand } from '../src/commands/sweep';
import { captureOutput, relErr, tempRoot } from './helpers';

const root = tempRoot('graph');
let dirCount = 0;
const newDir = () => path.join(root, `d${dirCount++}`);
const L = tf.layers;

beforeAll(async () => {
  await initBackend('wasm');
});

/** BN layers get moving statistics and affine parameters far from the identity (seeded). */
function randomizeBatchNorms(model: tf.LayersModel): void {
  let seed = 11;
  for (const l of model.layers) {
    if (l.getClassName() !== 'BatchNormalization') continue;
    // gamma, beta, moving mean, moving variance (> 0)
    l.setWeights(l.getWeights().map((w, i) => tf.randomUniform(w.shape, i === 3 ? 0.3 : -0.8, 1.6, 'float32', seed++)));
  }
}

function graphModel(build: (x: tf.SymbolicTensor) => tf.SymbolicTensor, shape = [10, 10, 3]): tf.LayersModel {
  const inp = tf.input({ shape });
  const model = tf.model({ inputs: inp, outputs: build(inp) });
  randomizeBatchNorms(model);
  return model;
}

function idealError(model: tf.LayersModel, shape = [10, 10, 3]): number {
  const net = mapModel(model, getPreset('ideal')!, { arrayRows: 32, arrayCols: 16 });
  const x = tf.randomUniform([3, ...shape], 0, 1, 'float32', 5);
  const want = model.predict(x) as tf.Tensor;
  const got = predictCrossbar(net, x);
  const e = relErr(got, want);
  tf.dispose([x, want, got]);
  return e;
}

const init = (seed: number) => tf.initializers.glorotUniform({ seed });

describe('each graph layer on the ideal device gives the software outputs', () => {
  const cases: [string, (x: tf.SymbolicTensor) => tf.SymbolicTensor][] = [
    ['strided conv', (x) => L.conv2d({ filters: 4, kernelSize: 3, strides: 2, padding: 'same', kernelInitializer: init(1) }).apply(x) as tf.SymbolicTensor],
    ['dilated conv', (x) => L.conv2d({ filters: 4, kernelSize: 3, dilationRate: 2, padding: 'same', kernelInitializer: init(2) }).apply(x) as tf.SymbolicTensor],
    ['dilated valid conv', (x) => L.conv2d({ filters: 4, kernelSize: 3, dilationRate: 2, padding: 'valid', kernelInitializer: init(3) }).apply(x) as tf.SymbolicTensor],
    ['depthwise conv, multiplier 2', (x) => L.depthwiseConv2d({ kernelSize: 3, depthMultiplier: 2, padding: 'same', depthwiseInitializer: init(4), biasInitializer: 'ones' }).apply(x) as tf.SymbolicTensor],
    ['separable conv', (x) => L.separableConv2d({ filters: 5, kernelSize: 3, depthMultiplier: 2, padding: 'same', activation: 'relu', depthwiseInitializer: init(5), pointwiseInitializer: init(6) }).apply(x) as tf.SymbolicTensor],
    ['separable conv, dilated', (x) => L.separableConv2d({ filters: 5, kernelSize: 3, dilationRate: 2, padding: 'same', depthwiseInitializer: init(7), pointwiseInitializer: init(8) }).apply(x) as tf.SymbolicTensor],
    ['conv + BN (folded)', (x) => L.batchNormalization().apply(L.conv2d({ filters: 4, kernelSize: 3, useBias: false, kernelInitializer: init(9) }).apply(x)) as tf.SymbolicTensor],
    ['conv + BN + ReLU (absorbed)', (x) => L.reLU().apply(L.batchNormalization().apply(L.conv2d({ filters: 4, kernelSize: 3, kernelInitializer: init(10) }).apply(x))) as tf.SymbolicTensor],
    ['BN on the input (digital)', (x) => L.conv2d({ filters: 4, kernelSize: 3, kernelInitializer: init(11) }).apply(L.batchNormalization().apply(x)) as tf.SymbolicTensor],
    ['residual add', (x) => {
      const a = L.conv2d({ filters: 3, kernelSize: 3, padding: 'same', activation: 'relu', kernelInitializer: init(12) }).apply(x) as tf.SymbolicTensor;
      return L.add().apply([x, a]) as tf.SymbolicTensor;
    }],
    ['concatenate, zero padding, average pooling', (x) => {
      const a = L.conv2d({ filters: 2, kernelSize: 3, kernelInitializer: init(13) }).apply(L.zeroPadding2d({ padding: 1 }).apply(x)) as tf.SymbolicTensor;
      const c = L.concatenate().apply([x, a]) as tf.SymbolicTensor;
      return L.conv2d({ filters: 2, kernelSize: 1, kernelInitializer: init(14) }).apply(L.averagePooling2d({ poolSize: 2 }).apply(c)) as tf.SymbolicTensor;
    }],
    ['global average pooling, dropout, dense', (x) => {
      const a = L.conv2d({ filters: 6, kernelSize: 3, activation: 'relu', kernelInitializer: init(15) }).apply(x) as tf.SymbolicTensor;
      return L.dense({ units: 4, kernelInitializer: init(16) }).apply(L.dropout({ rate: 0.5 }).apply(L.globalAveragePooling2d({}).apply(a))) as tf.SymbolicTensor;
    }],
  ];
  test.each(cases)('%s', (_, build) => {
    expect(idealError(graphModel(build))).toBeLessThan(1e-5);
  });
});

describe('the plan of a graph model', () => {
  test('steps, inputs and roles: separable convs in two parts, BN folded and ReLU absorbed where they can be', () => {
    const model = graphModel((x) => {
      const a = L.conv2d({ filters: 3, kernelSize: 3, padding: 'same', useBias: false, name: 'c1' }).apply(x) as tf.SymbolicTensor;
      const b = L.reLU({ name: 'r1' }).apply(L.batchNormalization({ name: 'bn1' }).apply(a)) as tf.SymbolicTensor;
      const s = L.add({ name: 'add' }).apply([x, b]) as tf.SymbolicTensor;
      const t = L.separableConv2d({ filters: 4, kernelSize: 3, name: 'sep' }).apply(s) as tf.SymbolicTensor;
      // this BN's input also feeds the add: it cannot fold
      const u = L.batchNormalization({ name: 'bn2' }).apply(t) as tf.SymbolicTensor;
      return L.add({ name: 'add2' }).apply([t, u]) as tf.SymbolicTensor;
    });
    const plan = planSteps(model);
    expect(plan.map((s) => [s.name, s.inputs, s.geometry ? 'mapped' : s.absorbedBy !== null ? `absorbed by ${s.absorbedBy}` : 'digital'])).toEqual([
      ['c1', [-1], 'mapped'],
      ['bn1', [0], 'absorbed by 0'],
      ['r1', [1], 'absorbed by 0'],
      ['add', [-1, 2], 'digital'],
      ['sep/depthwise', [3], 'mapped'],
      ['sep/pointwise', [4], 'mapped'],
      ['bn2', [5], 'digital'],
      ['add2', [5, 6], 'digital'],
    ]);
    expect(plan[0].geometry).toMatchObject({ activation: 'relu', useBias: true });
    expect(plan[0].absorbed).toEqual(['bn1', 'r1']);
    expect(plan[4].geometry).toMatchObject({ layout: 'blockDiagonal', kernelShape: [3, 3, 3, 3], rows: 27, outputs: 3 });
    expect(plan[5].geometry).toMatchObject({ kernelShape: [1, 1, 3, 4], rows: 3, outputs: 4 });
    expect(planSteps(model, { absorb: false }).every((s) => s.absorbedBy === null)).toBe(true);
    expect(idealError(model)).toBeLessThan(1e-5);
  });

  test('BN folding by hand: w gamma / sqrt(var + eps), (b - mean) gamma / sqrt(var + eps) + beta', () => {
    const bn = L.batchNormalization({ epsilon: 0.01, inputShape: [2] });
    tf.sequential({ layers: [bn] });
    bn.setWeights([tf.tensor1d([2, -1]), tf.tensor1d([0.5, 1]), tf.tensor1d([1, -2]), tf.tensor1d([0.99, 3.99])]);
    // W rows x outputs = 3 x 2, bias [1, 0]
    const W = new Float32Array([1, 2, 3, 4, 5, 6]);
    const b = foldBatchNorm(W, new Float32Array([1, 0]), 3, 2, bn);
    // output 0: scale 2 / sqrt(1) = 2; output 1: scale -1 / sqrt(4) = -0.5
    expect(Array.from(W)).toEqual([2, -1, 6, -2, 10, -3]);
    const want = [(1 - 1) * 2 + 0.5, (0 + 2) * -0.5 + 1];
    want.forEach((v, o) => expect(b[o]).toBeCloseTo(v, 6));
  });

  test('a depthwise kernel as a block-diagonal matrix: each channel on its own columns', () => {
    // 1x1 kernel, 2 channels, multiplier 2: dw[c][m]
    const K = blockDiagonal(new Float32Array([1, 2, 3, 4]), [1, 1, 2, 4]);
    expect(Array.from(K)).toEqual([1, 2, 0, 0, 0, 0, 3, 4]);
  });

  test('a BN after a layer whose kernel is on the device levels stays digital; the folded weights are what the arrays hold', async () => {
    const { QuantConv2D } = await import('../layers/quant_conv2d');
    const model = graphModel((x) => {
      const q = new QuantConv2D({ filters: 3, kernelSize: 3, kernelQuantizer: { className: 'SteUniform', config: { levels: 7, signed: true, scale: 'max' } } }).apply(x) as tf.SymbolicTensor;
      const c = L.conv2d({ filters: 2, kernelSize: 1, useBias: false, name: 'c', kernelInitializer: init(20) }).apply(L.batchNormalization({ name: 'bnq' }).apply(q)) as tf.SymbolicTensor;
      return L.batchNormalization({ name: 'bnc' }).apply(c) as tf.SymbolicTensor;
    });
    const net = mapModel(model, getPreset('ideal')!);
    expect(net.layers.map((l) => [l.name, l.foldedBatchNorm])).toEqual([
      [net.layers[0].name, null],
      ['c', 'bnc'],
    ]);
    // the folded weights: the conv's 1x1 kernel times gamma / sd of bnc
    const { W, bias } = mappedWeights(net, net.layers[1]);
    const k = (model.getLayer('c').getWeights()[0].dataSync() as Float32Array).slice();
    const [gamma, beta, mean, variance] = model.getLayer('bnc').getWeights().map((w) => w.dataSync() as Float32Array);
    const eps = (model.getLayer('bnc').getConfig() as { epsilon: number }).epsilon;
    for (let r = 0; r < 3; r++) for (let o = 0; o < 2; o++) expect(W[r * 2 + o]).toBeCloseTo((k[r * 2 + o] * gamma[o]) / Math.sqrt(variance[o] + eps), 5);
    for (let o = 0; o < 2; o++) expect(bias![o]).toBeCloseTo(beta[o] - (mean[o] * gamma[o]) / Math.sqrt(variance[o] + eps), 5);
    expect(idealError(model)).toBeLessThan(1e-5);
    disposeCrossbar(net);
  });

  test('refused: two inputs, a shared layer, a range that cuts a residual branch apart', () => {
    const a = tf.input({ shape: [4] });
    const b = tf.input({ shape: [4] });
    const two = tf.model({ inputs: [a, b], outputs: L.add().apply([a, b]) as tf.SymbolicTensor });
    expect(() => modelGraph(two)).toThrow(new UsageError(`model ${two.name}: only models with one input and one output can be mapped (it has 2 and 1)`));
    const x = tf.input({ shape: [4] });
    const shared = L.dense({ units: 4, name: 'shared' });
    const twice = tf.model({ inputs: x, outputs: shared.apply(shared.apply(x)) as tf.SymbolicTensor });
    expect(() => modelGraph(twice)).toThrow(/layer shared is applied 2 times; a layer shared between places cannot be mapped/);
    const res = graphModel((x2) => L.add().apply([x2, L.conv2d({ filters: 3, kernelSize: 1, kernelInitializer: init(30) }).apply(x2) as tf.SymbolicTensor]) as tf.SymbolicTensor);
    const net = mapModel(res, getPreset('ideal')!);
    const runner = crossbarRunner(net);
    const h = tf.ones([1, 10, 10, 3]);
    expect(() => runner.run(h, 1, 2)).toThrow(/read the outputs of two steps before them/);
    // the whole network, and a range that reads one tensor (the conv alone)
    expect(relErr(runner.run(h), predictCrossbar(net, h))).toBe(0);
    expect(runner.run(h, 0, 1).shape).toEqual([1, 10, 10, 3]);
    disposeCrossbar(net);
  });
});

/** A small residual MNIST model (conv, conv + BN, add, ReLU, pool, GAP, dense), trained briefly. */
async function trainedResidual(): Promise<tf.LayersModel> {
  const inp = tf.input({ shape: [28, 28, 1] });
  let x = L.conv2d({ filters: 8, kernelSize: 3, strides: 2, padding: 'same', activation: 'relu', kernelInitializer: init(40), name: 'c1' }).apply(inp) as tf.SymbolicTensor;
  let y = L.conv2d({ filters: 8, kernelSize: 3, padding: 'same', useBias: false, kernelInitializer: init(41), name: 'c2' }).apply(x) as tf.SymbolicTensor;
  y = L.batchNormalization({ name: 'bn' }).apply(y) as tf.SymbolicTensor;
  x = L.reLU({ name: 'relu' }).apply(L.add({ name: 'add' }).apply([x, y])) as tf.SymbolicTensor;
  x = L.maxPooling2d({ poolSize: 2, name: 'pool' }).apply(x) as tf.SymbolicTensor;
  x = L.flatten({ name: 'flat' }).apply(x) as tf.SymbolicTensor;
  const out = L.dense({ units: 10, kernelInitializer: init(42), name: 'fc' }).apply(x) as tf.SymbolicTensor;
  const model = tf.model({ inputs: inp, outputs: out });
  const { loadDataset } = await import('../src/data');
  const d = loadDataset('mnist', { trainSamples: 1000, testSamples: 10 });
  const xs = tf.tensor4d(Float32Array.from(d.train.images, (v) => v / 255), [1000, 28, 28, 1]);
  const ys = tf.oneHot(tf.tensor1d(Array.from(d.train.labels), 'int32'), 10);
  model.compile({ optimizer: tf.train.sgd(0.1), loss: (a: tf.Tensor, b: tf.Tensor) => tf.losses.softmaxCrossEntropy(a, b) });
  await model.fit(xs, ys, { epochs: 2, batchSize: 50, verbose: 0, shuffle: false });
  tf.dispose([xs, ys]);
  return model;
}

describe('a residual model end to end', () => {
  let modelDir: string;
  beforeAll(async () => {
    modelDir = newDir();
    await saveModel(await trainedResidual(), modelDir);
  }, 120000);

  test('map (ideal) -> evaluate --crossbar: the software accuracy; the manifest lists every step and its role', async () => {
    const out = newDir();
    await captureOutput(() => mapCommand({ model: modelDir, device: 'ideal', out, json: true, backend: 'wasm' }));
    const manifest = JSON.parse(fs.readFileSync(path.join(out, 'manifest.json'), 'utf8'));
    expect(manifest.version).toBe(2);
    expect(manifest.network.layers.map((l: { name: string; role: string; inputs: string[] }) => `${l.name}:${l.role}<-${l.inputs.join('+')}`)).toEqual([
      'c1:mapped<-input',
      'c2:mapped<-c1',
      'bn:absorbed<-c2',
      'add:digital<-c1+bn',
      'relu:digital<-add',
      'pool:digital<-relu',
      'flat:digital<-pool',
      'fc:mapped<-flat',
    ]);
    expect(manifest.layers.map((l: { name: string; foldedBatchNorm: string | null }) => [l.name, l.foldedBatchNorm])).toEqual([
      ['c1', null],
      ['c2', 'bn'],
      ['fc', null],
    ]);
    const sw = JSON.parse((await captureOutput(() => evaluateCommand({ model: modelDir, dataset: 'mnist', testSamples: 300, batchSize: 100, json: true, backend: 'wasm' }))).out);
    const xb = JSON.parse((await captureOutput(() => crossbarEvaluateCommand({ crossbar: out, dataset: 'mnist', testSamples: 300, json: true, backend: 'wasm' }))).out);
    expect(sw.testAccuracy).toBeGreaterThan(0.6);
    expect(xb.testAccuracy).toBe(sw.testAccuracy);
    // save -> load gives the same logits
    const net = await loadCrossbar(out);
    const again = newDir();
    await saveCrossbar(net, again);
    const back = await loadCrossbar(again);
    const x = tf.randomUniform([2, 28, 28, 1], 0, 1, 'float32', 9);
    expect(relErr(predictCrossbar(back, x), predictCrossbar(net, x))).toBe(0);
    disposeCrossbar(net);
    disposeCrossbar(back);
  });

  test('map (park2024) -> insitu: the last FC layer of the residual model trains on its arrays', async () => {
    const out = newDir();
    await captureOutput(() => mapCommand({ model: modelDir, device: 'park2024', array: '64x64', out, json: true, backend: 'wasm' }));
    const tuned = newDir();
    const r = JSON.parse((await captureOutput(() => insituCommand({ crossbar: out, dataset: 'mnist', samples: 300, testSamples: 200, evalSamples: 200, calibrationSamples: 100, progress: false, out: tuned, json: true, backend: 'wasm' }))).out);
    expect(r.totalPulses).toBeGreaterThan(0);
    const before = await loadCrossbar(out);
    const after = await loadCrossbar(tuned);
    const fc = (n: typeof before) => n.layers.find((l) => l.name === 'fc')!.arrays.map((a) => Array.from(a.programmed)).flat();
    const c2 = (n: typeof before) => n.layers.find((l) => l.name === 'c2')!.arrays.map((a) => Array.from(a.programmed)).flat();
    expect(fc(after)).not.toEqual(fc(before));
    expect(c2(after)).toEqual(c2(before));
    disposeCrossbar(before);
    disposeCrossbar(after);
  });

  test('sweep --insitu over the residual model (2 worker threads): every trial maps, reads and trains its FC layer', async () => {
    const out = newDir();
    const r = JSON.parse((await captureOutput(() => sweepCommand({ model: modelDir, device: 'park2024', vary: ['tolerance=0.02,0.2'], trials: 2, insitu: true, insituSamples: 200, testSamples: 150, calibrationSamples: 50, array: '64x64', workers: 2, out, json: true, progress: false, backend: 'wasm' }))).out);
    expect(r.points).toHaveLength(2);
    for (const p of r.points) {
      expect(p.before.values).toHaveLength(2);
      expect(p.after.values).toHaveLength(2);
      expect(p.before.mean).toBeGreaterThan(0.5);
    }
  });

  test('--replicate: only the named conv layers get the replicas (Yao et al.: the first conv on 4 groups)', async () => {
    const out = newDir();
    const r = JSON.parse((await captureOutput(() => mapCommand({ model: modelDir, device: 'ideal', replicas: 4, replicate: 'c1', out, json: true, backend: 'wasm' }))).out);
    expect(r.layers.map((l: { layer: string; replicas: number }) => [l.layer, l.replicas])).toEqual([
      ['c1', 4],
      ['c2', 1],
      ['fc', 1],
    ]);
    // the replicas compute their bands of output rows: the same outputs on the ideal device
    const sw = JSON.parse((await captureOutput(() => evaluateCommand({ model: modelDir, dataset: 'mnist', testSamples: 200, batchSize: 100, json: true, backend: 'wasm' }))).out);
    const xb = JSON.parse((await captureOutput(() => crossbarEvaluateCommand({ crossbar: out, dataset: 'mnist', testSamples: 200, json: true, backend: 'wasm' }))).out);
    expect(xb.testAccuracy).toBe(sw.testAccuracy);
    await expect(mapCommand({ model: modelDir, device: 'ideal', replicas: 2, replicate: 'c1,fc', out: newDir(), backend: 'wasm' })).rejects.toThrow("replicate: 'fc' is not a conv layer of model");
  });

  test('--no-fold keeps the BN digital; a version-1 folder (written before folding) reads that way', async () => {
    const m = tf.sequential({ layers: [L.conv2d({ inputShape: [6, 6, 1], filters: 2, kernelSize: 3, kernelInitializer: init(50) }), L.batchNormalization(), L.flatten(), L.dense({ units: 3, kernelInitializer: init(51) })] });
    randomizeBatchNorms(m);
    const dir = newDir();
    await saveModel(m, dir);
    const folded = newDir();
    const plain = newDir();
    await captureOutput(() => mapCommand({ model: dir, device: 'ideal', out: folded, json: true, backend: 'wasm' }));
    await captureOutput(() => mapCommand({ model: dir, device: 'ideal', out: plain, fold: false, json: true, backend: 'wasm' }));
    const read = (d: string) => JSON.parse(fs.readFileSync(path.join(d, 'manifest.json'), 'utf8'));
    const bn = m.layers[1].name;
    expect(read(folded).layers[0].foldedBatchNorm).toBe(bn);
    expect(read(plain).layers[0].foldedBatchNorm).toBe(null);
    expect(read(plain).network.layers[1]).toMatchObject({ name: bn, role: 'digital' });
    // the same outputs either way
    const x = tf.randomUniform([2, 6, 6, 1], 0, 1, 'float32', 3);
    const want = m.predict(x) as tf.Tensor;
    for (const d of [folded, plain]) {
      const net = await loadCrossbar(d);
      expect(relErr(predictCrossbar(net, x), want)).toBeLessThan(1e-5);
      disposeCrossbar(net);
    }
    // version 1: no fold fields, no fold flag; nothing folded
    const j = read(plain);
    j.version = 1;
    delete j.network.mapping.fold;
    for (const l of j.layers) for (const k of ['foldedBatchNorm', 'absorbed', 'part', 'layer', 'layout', 'dilation']) delete l[k];
    fs.writeFileSync(path.join(plain, 'manifest.json'), JSON.stringify(j));
    const v1 = await loadCrossbar(plain);
    expect(v1.layers[0].foldedBatchNorm).toBe(null);
    expect(relErr(predictCrossbar(v1, x), want)).toBeLessThan(1e-5);
    disposeCrossbar(v1);
    // a version-2 manifest that does not say the fold the model gives is refused, naming the field
    const f = read(folded);
    f.layers[0].foldedBatchNorm = null;
    fs.writeFileSync(path.join(folded, 'manifest.json'), JSON.stringify(f));
    await expect(loadCrossbar(folded)).rejects.toThrow(`foldedBatchNorm: null in the manifest, but the model folds BatchNormalization '${bn}' into it`);
  });

  test('insitu refuses a network whose last FC layer is not followed by a chain', () => {
    const model = graphModel((x) => {
      const f = L.dense({ units: 4, kernelInitializer: init(60) }).apply(L.flatten().apply(x)) as tf.SymbolicTensor;
      return L.add().apply([f, L.activation({ activation: 'tanh' }).apply(f) as tf.SymbolicTensor]) as tf.SymbolicTensor;
    });
    const net = mapModel(model, getPreset('ideal')!);
    expect(() => insituLayer(net)).toThrow(ConfigError);
    expect(() => insituLayer(net)).toThrow(/in-situ training needs the layers after '.*' to follow one another/);
    disposeCrossbar(net);
  });
});
