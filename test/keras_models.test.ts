// Models converted from Keras by tensorflowjs_converter (layers format), Keras 2 and Keras 3, as
// test/keras_fixture.ts writes them: loaded, they predict what the same model built in tfjs
// predicts (quantized weights dequantized as tfjs does), and through the CLI map (ideal device)
// then evaluate --crossbar gives evaluate --model's accuracy. What cannot be read is refused
// naming the file and the cause.
import * as fs from 'fs';
import * as path from 'path';
import { tf } from '../src/tf';
import { initBackend } from '../src/backend';
import { loadModel, readModelDir, saveModel } from '../src/model_io';
import { disposeCrossbar, loadCrossbar, predictCrossbar } from '../src/crossbar';
import { tfjsTopology } from '../src/keras_config';
import { matchWeights } from '../src/weight_names';
import { mapCommand } from '../src/commands/map';
import { crossbarEvaluateCommand } from '../src/commands/crossbar_eval';
import { evaluateCommand } from '../src/commands/evaluate';
import { FileFormatError } from '../src/errors';
import { captureOutput, tempRoot } from './helpers';
import { dequantized, fromHalf, pythonJson, quantizeAffine, toHalf, writeConverterFolder, QuantDtype } from './keras_fixture';

const root = tempRoot('keras');
let dirCount = 0;
const newDir = () => path.join(root, `k${dirCount++}`);
const L = tf.layers;
const init = (seed: number) => tf.initializers.glorotUniform({ seed });

beforeAll(async () => {
  await initBackend('wasm');
});

/**
 * A MobileNet/ResNet-like residual model for MNIST with Keras's default layer names: a depthwise
 * stem (depth multiplier 8) + BN + ReLU, conv + BN + Activation, conv + BN, add, conv, GAP,
 * dropout, softmax. BN momentum 0.5: the moving statistics follow the data in a brief training.
 */
function residualModel(): tf.LayersModel {
  const inp = tf.input({ shape: [28, 28, 1], name: 'input_1' });
  let x = L.depthwiseConv2d({ kernelSize: 3, depthMultiplier: 8, strides: 2, padding: 'same', useBias: false, depthwiseInitializer: init(1), name: 'depthwise_conv2d' }).apply(inp) as tf.SymbolicTensor;
  x = L.batchNormalization({ momentum: 0.5, name: 'batch_normalization' }).apply(x) as tf.SymbolicTensor;
  x = L.reLU({ name: 're_lu' }).apply(x) as tf.SymbolicTensor;
  x = L.conv2d({ filters: 16, kernelSize: 3, strides: 2, padding: 'same', useBias: false, kernelInitializer: init(2), name: 'conv2d' }).apply(x) as tf.SymbolicTensor;
  x = L.batchNormalization({ momentum: 0.5, name: 'batch_normalization_1' }).apply(x) as tf.SymbolicTensor;
  x = L.activation({ activation: 'relu', name: 'activation' }).apply(x) as tf.SymbolicTensor;
  let y = L.conv2d({ filters: 16, kernelSize: 3, padding: 'same', useBias: false, kernelInitializer: init(3), name: 'conv2d_1' }).apply(x) as tf.SymbolicTensor;
  y = L.batchNormalization({ momentum: 0.5, name: 'batch_normalization_2' }).apply(y) as tf.SymbolicTensor;
  x = L.add({ name: 'add' }).apply([x, y]) as tf.SymbolicTensor;
  x = L.activation({ activation: 'relu', name: 'activation_1' }).apply(x) as tf.SymbolicTensor;
  x = L.conv2d({ filters: 32, kernelSize: 3, padding: 'same', activation: 'relu', kernelInitializer: init(4), name: 'conv2d_2' }).apply(x) as tf.SymbolicTensor;
  x = L.globalAveragePooling2d({ name: 'global_average_pooling2d' }).apply(x) as tf.SymbolicTensor;
  x = L.dropout({ rate: 0.1, name: 'dropout' }).apply(x) as tf.SymbolicTensor;
  const out = L.dense({ units: 10, activation: 'softmax', kernelInitializer: init(5), name: 'dense' }).apply(x) as tf.SymbolicTensor;
  return tf.model({ inputs: inp, outputs: out, name: 'model' });
}

/** A Keras Sequential (InputLayer first): separable conv, pool, flatten, dense. */
function sequentialModel(): tf.Sequential {
  const bias = (seed: number) => tf.initializers.randomUniform({ minval: -0.2, maxval: 0.2, seed });
  return tf.sequential({
    name: 'sequential',
    layers: [
      L.separableConv2d({ inputShape: [28, 28, 1], filters: 4, kernelSize: 3, depthMultiplier: 2, activation: 'relu', depthwiseInitializer: init(7), pointwiseInitializer: init(8), biasInitializer: bias(9), name: 'separable_conv2d' }),
      L.maxPooling2d({ poolSize: 2, name: 'max_pooling2d' }),
      L.flatten({ name: 'flatten' }),
      L.dense({ units: 10, activation: 'softmax', kernelInitializer: init(10), biasInitializer: bias(11), name: 'dense' }),
    ],
  });
}

/**
 * Trains briefly on MNIST (pixel / 255, as the CLI scales) so that the accuracies mean something.
 * The depthwise stem stays as seeded: tfjs's wasm backend has no gradient for depthwise
 * convolutions (and its cpu backend takes minutes here); nothing before it needs one.
 */
async function train(model: tf.LayersModel, samples: number): Promise<void> {
  const stem = model.getLayer('depthwise_conv2d');
  stem.trainable = false;
  const { loadDataset } = await import('../src/data');
  const d = loadDataset('mnist', { trainSamples: samples, testSamples: 10 });
  const xs = tf.tensor4d(Float32Array.from(d.train.images, (v) => v / 255), [samples, 28, 28, 1]);
  const ys = tf.oneHot(tf.tensor1d(Array.from(d.train.labels), 'int32'), 10);
  model.compile({ optimizer: tf.train.adam(0.02), loss: 'categoricalCrossentropy' });
  await model.fit(xs, ys, { epochs: 3, batchSize: 50, verbose: 0, shuffle: false });
  tf.dispose([xs, ys]);
  stem.trainable = true;
}

const probe = () => tf.randomUniform([4, 28, 28, 1], 0, 1, 'float32', 17);

/** The largest |a - b| over the outputs of two models on the same inputs. */
function maxDiff(a: tf.LayersModel, b: tf.LayersModel): number {
  const x = probe();
  const ya = a.predict(x) as tf.Tensor;
  const yb = b.predict(x) as tf.Tensor;
  const d = tf.max(tf.abs(tf.sub(ya, yb))).dataSync()[0];
  tf.dispose([x, ya, yb]);
  return d;
}

let residual: tf.LayersModel;
let sequential: tf.Sequential;
beforeAll(async () => {
  residual = residualModel();
  await train(residual, 1000);
  sequential = sequentialModel();
}, 120000);

describe('the fixture writes what the converter writes', () => {
  test('python json, half floats and the nudged affine quantization (hand-computed)', () => {
    expect(pythonJson({ a: [1, null], b: { c: 'x' }, d: [1e-5, 0.001, 2.5e-7] })).toBe('{"a": [1, null], "b": {"c": "x"}, "d": [1e-05, 0.001, 2.5e-07]}');
    expect([1, -2, 65504, 1 / 3, 1e-8].map((v) => fromHalf(toHalf(v)))).toEqual([1, -2, 65504, 0.333251953125, 0]);
    expect(toHalf(1 + 2 ** -11)).toBe(0x3c00); // half-way: to even
    expect(toHalf(1 + 3 * 2 ** -11)).toBe(0x3c02);
    // min -1, max 1.55: scale 2.55 / 255 = 0.01, zero point 100 exactly
    const { q, min, scale } = quantizeAffine(Float32Array.from([-1, 0, 1.55, 0.004]), 'uint8');
    expect(scale).toBeCloseTo(0.01, 9);
    expect(min).toBeCloseTo(-1, 6);
    expect(Array.from(q)).toEqual([0, 100, 255, 100]);
  });

  test('a Keras 2 folder: several shards, weights in the .h5 order, converter keys', () => {
    const dir = newDir();
    const names = writeConverterFolder(residual, dir, { variant: 'keras2', shardBytes: 1024, l2OnFirstConv: true });
    const text = fs.readFileSync(path.join(dir, 'model.json'), 'utf8');
    expect(text.startsWith('{"format": "layers-model", "generatedBy": "keras v2.11.0", "convertedBy": "TensorFlow.js Converter v4.2.0", "modelTopology": {"keras_version": "2.11.0", "backend": "tensorflow", "model_config": {"class_name": "Functional"')).toBe(true);
    expect(text).toContain('"inbound_nodes": [[["input_1", 0, 0, {}]]]');
    expect(text).toContain('"kernel_regularizer": {"class_name": "L2", "config": {"l2": 9.999999747378752e-05}}');
    // the .h5 order: layers alphabetically, each layer's weights in Keras's order
    expect(names.slice(0, 5)).toEqual(['batch_normalization/gamma', 'batch_normalization/beta', 'batch_normalization/moving_mean', 'batch_normalization/moving_variance', 'batch_normalization_1/gamma']);
    expect(names.filter((n) => !n.startsWith('batch_norm'))).toEqual(['conv2d/kernel', 'conv2d_1/kernel', 'conv2d_2/kernel', 'conv2d_2/bias', 'dense/kernel', 'dense/bias', 'depthwise_conv2d/depthwise_kernel']);
    const json = JSON.parse(text);
    expect(json.weightsManifest[0].paths.length).toBeGreaterThan(3);
    expect(json.weightsManifest[0].paths[0]).toBe(`group1-shard1of${json.weightsManifest[0].paths.length}.bin`);
  });
});

describe('Keras 2 converter outputs', () => {
  test('tfjs 4.22 alone refuses a Keras 2 model with an L2 regularizer (as TF 2.3+ writes it); the loader reads it', async () => {
    const dir = newDir();
    writeConverterFolder(residual, dir, { variant: 'keras2', shardBytes: 1000, l2OnFirstConv: true });
    const { artifacts } = readModelDir(dir);
    await expect(tf.loadLayersModel(tf.io.fromMemory(artifacts))).rejects.toThrow(/Unknown regularizer: L2/);
    const { model } = await loadModel(dir);
    expect(maxDiff(model, residual)).toBe(0);
    model.dispose();
  });

  test('a functional residual model (DepthwiseConv2D, Conv2D, BN, ReLU, Activation, Add, GAP, Dropout, softmax), sharded: map --device ideal then evaluate --crossbar gives evaluate --model', async () => {
    const dir = newDir();
    writeConverterFolder(residual, dir, { variant: 'keras2', shardBytes: 700 });
    const out = newDir();
    await captureOutput(() => mapCommand({ model: dir, device: 'ideal', out, json: true, backend: 'wasm' }));
    const manifest = JSON.parse(fs.readFileSync(path.join(out, 'manifest.json'), 'utf8'));
    // every BN folds (axis [3] read as the last axis), the ReLUs become the neurons
    expect(manifest.layers.map((l: { name: string; foldedBatchNorm: string | null }) => [l.name, l.foldedBatchNorm])).toEqual([
      ['depthwise_conv2d', 'batch_normalization'],
      ['conv2d', 'batch_normalization_1'],
      ['conv2d_1', 'batch_normalization_2'],
      ['conv2d_2', null],
      ['dense', null],
    ]);
    const sw = JSON.parse((await captureOutput(() => evaluateCommand({ model: dir, dataset: 'mnist', testSamples: 200, batchSize: 100, json: true, backend: 'wasm' }))).out);
    const xb = JSON.parse((await captureOutput(() => crossbarEvaluateCommand({ crossbar: out, dataset: 'mnist', testSamples: 200, json: true, backend: 'wasm' }))).out);
    expect(sw.testAccuracy).toBeGreaterThan(0.3);
    expect(xb.testAccuracy).toBe(sw.testAccuracy);
  });

  test('a Sequential (InputLayer first, SeparableConv2D, Keras 2.15 keys), quantized uint8/uint16/float16, one group per layer: the tfjs model with the dequantized weights', async () => {
    const dir = newDir();
    const quant: Record<string, QuantDtype> = { 'separable_conv2d/depthwise_kernel': 'uint8', 'separable_conv2d/pointwise_kernel': 'uint16', 'separable_conv2d/bias': 'float16', 'dense/kernel': 'uint16', 'dense/bias': 'uint8' };
    writeConverterFolder(sequential, dir, { variant: 'keras2.15', splitByLayer: true, shardBytes: 8192, quantize: (n) => quant[n] ?? null });
    const json = JSON.parse(fs.readFileSync(path.join(dir, 'model.json'), 'utf8'));
    expect(json.modelTopology.model_config.config.layers[0]).toEqual({ class_name: 'InputLayer', config: { batch_input_shape: [null, 28, 28, 1], dtype: 'float32', sparse: false, ragged: false, name: 'separable_conv2d_input' } });
    expect(json.weightsManifest.map((g: { paths: string[] }) => g.paths)).toEqual([['group1-shard1of2.bin', 'group1-shard2of2.bin'], ['group2-shard1of1.bin']]);
    expect(json.weightsManifest[0].weights[0].quantization).toMatchObject({ dtype: 'uint16', original_dtype: 'float32' });
    const { model } = await loadModel(dir);
    // the reference: the same tfjs model, its weights dequantized here
    const ref = sequentialModel();
    ref.setWeights(sequential.layers.flatMap((l) => l.weights.map((w) => tf.tensor(dequantized(w.read().dataSync() as Float32Array, quant[w.originalName]), w.shape as number[]))));
    expect(maxDiff(model, ref)).toBeLessThan(1e-6);
    // and the quantization did change the weights (uint8 kernel: steps of (max - min) / 255)
    const k = model.getLayer('separable_conv2d').getWeights()[0].dataSync();
    const k0 = sequential.getLayer('separable_conv2d').getWeights()[0].dataSync();
    const err = Math.max(...Array.from(k, (v, i) => Math.abs(v - k0[i])));
    expect(err).toBeGreaterThan(1e-5);
    expect(err).toBeLessThan(0.01);
    model.dispose();
    ref.dispose();
  });
});

test('a SeparableConv2D with depth multiplier 2 keeps it through saveModel and the crossbar folder (tfjs 4.22 getConfig drops it)', async () => {
  const dir = newDir();
  await saveModel(sequential, dir);
  const { model } = await loadModel(dir);
  expect(maxDiff(model, sequential)).toBe(0);
  model.dispose();
  const keras = newDir();
  writeConverterFolder(sequential, keras, { variant: 'keras2' });
  const out = newDir();
  await captureOutput(() => mapCommand({ model: keras, device: 'ideal', out, json: true, backend: 'wasm' }));
  const net = await loadCrossbar(out);
  const x = probe();
  const want = sequential.predict(x) as tf.Tensor;
  const got = predictCrossbar(net, x);
  expect(tf.max(tf.abs(tf.sub(got, want))).dataSync()[0]).toBeLessThan(1e-5);
  tf.dispose([x, want, got]);
  disposeCrossbar(net);
});

describe('Keras 3 converter outputs', () => {
  test('tfjs 4.22 alone cannot build a Keras 3 model (batch_shape, DTypePolicy, __keras_tensor__ nodes); the loader translates it', async () => {
    const dir = newDir();
    writeConverterFolder(residual, dir, { variant: 'keras3-h5', shardBytes: 2048 });
    const { artifacts } = readModelDir(dir);
    await expect(tf.loadLayersModel(tf.io.fromMemory(artifacts))).rejects.toThrow(/An InputLayer should be passed either a `batchInputShape` or an `inputShape`/);
    const t = tfjsTopology(artifacts.modelTopology, 'model.json');
    expect(t.kerasMajor).toBe(3);
    expect(t.changes).toEqual(['InputLayer batch_shape as batch_input_shape (1)', 'inbound nodes from the Keras 3 form (14)', 'dtype policies as dtype names (14)', 'output_layers as a list (1)']);
    const { model } = await loadModel(dir);
    expect(maxDiff(model, residual)).toBe(0);
    model.dispose();
  });

  test('a Keras 3 functional residual model through the CLI: evaluate --crossbar gives evaluate --model', async () => {
    const dir = newDir();
    writeConverterFolder(residual, dir, { variant: 'keras3-h5', shardBytes: 1500, l2OnFirstConv: true });
    const out = newDir();
    await captureOutput(() => mapCommand({ model: dir, device: 'ideal', out, json: true, backend: 'wasm' }));
    const sw = JSON.parse((await captureOutput(() => evaluateCommand({ model: dir, dataset: 'mnist', testSamples: 200, batchSize: 100, json: true, backend: 'wasm' }))).out);
    const xb = JSON.parse((await captureOutput(() => crossbarEvaluateCommand({ crossbar: out, dataset: 'mnist', testSamples: 200, json: true, backend: 'wasm' }))).out);
    expect(sw.testAccuracy).toBeGreaterThan(0.3);
    expect(xb.testAccuracy).toBe(sw.testAccuracy);
  });

  test.each([
    ['keras3-h5', 'sequential', 'sequential/dense/kernel'],
    ['keras3-keras', 'sequential', 'layers/dense/vars/0'],
    ['keras3-keras', 'residual', 'layers/batch_normalization/vars/0'],
  ] as const)('a Keras 3 %s %s (weights named like %s; a .keras file with its optimizer state)', async (variant, which, first) => {
    const model = which === 'sequential' ? sequential : residual;
    const dir = newDir();
    const names = writeConverterFolder(model, dir, { variant, optimizerState: variant === 'keras3-keras' });
    expect(names[0]).toBe(first);
    if (variant === 'keras3-keras') expect(names).toContain('optimizer/vars/0');
    const { model: back } = await loadModel(dir);
    expect(maxDiff(back, model)).toBe(0);
    back.dispose();
  });

  test('how the Keras 3 weight names were read; a Sequential without its InputLayer (build_input_shape only)', async () => {
    const dir = newDir();
    const names = writeConverterFolder(sequential, dir, { variant: 'keras3-h5' });
    expect(matchWeights(sequential, names).rules).toEqual(['model-name prefix dropped (5)']);
    const rdir = newDir();
    const rnames = writeConverterFolder(residual, rdir, { variant: 'keras3-h5' });
    expect(matchWeights(residual, rnames).rules).toEqual(["Keras 3 depthwise 'kernel' (1)"]);
    const file = path.join(dir, 'model.json');
    const json = JSON.parse(fs.readFileSync(file, 'utf8'));
    json.modelTopology.model_config.config.layers.shift();
    fs.writeFileSync(file, JSON.stringify(json));
    expect(tfjsTopology(json.modelTopology, file).changes).toContain("Sequential build_input_shape as its first layer's batch_input_shape (1)");
    const { model } = await loadModel(dir);
    expect(maxDiff(model, sequential)).toBe(0);
    model.dispose();
  });
});

describe('what cannot be read is refused, naming the file and the cause', () => {
  const folder = (edit: (json: Record<string, any>) => void, opts: Parameters<typeof writeConverterFolder>[2] = { variant: 'keras2' }, model: tf.LayersModel = sequential) => {
    const dir = newDir();
    writeConverterFolder(model, dir, opts);
    const file = path.join(dir, 'model.json');
    const json = JSON.parse(fs.readFileSync(file, 'utf8'));
    edit(json);
    fs.writeFileSync(file, JSON.stringify(json));
    return { dir, file };
  };
  const layerCfg = (json: Record<string, any>, name: string) => json.modelTopology.model_config.config.layers.find((l: any) => l.config.name === name).config;

  test('graph models, weights-only files, subclassed models', async () => {
    let f = folder((j) => {
      j.format = 'graph-model';
    });
    await expect(loadModel(f.dir)).rejects.toThrow(`${f.file}: a tfjs graph model (TensorFlow.js Converter v4.2.0 from a SavedModel or to tfjs_graph_model)`);
    f = folder((j) => {
      j.modelTopology = null;
    });
    await expect(loadModel(f.dir)).rejects.toThrow(`${f.file}: weights only (modelTopology null`);
    f = folder((j) => {
      j.modelTopology.model_config.class_name = 'MyModel';
    });
    await expect(loadModel(f.dir)).rejects.toThrow(`${f.file}: model class 'MyModel' cannot be read`);
    f = folder((j) => {
      j.modelTopology.model_config.config.layers[2].class_name = 'TFOpLambda';
    });
    await expect(loadModel(f.dir)).rejects.toThrow(`${f.file}: layer 'max_pooling2d' (TFOpLambda): Python code in the model`);
    f = folder((j) => {
      layerCfg(j, 'dense').quantization_config = { mode: 'int8' };
    });
    await expect(loadModel(f.dir)).rejects.toThrow(`${f.file}: layer 'dense' (Dense): a Keras-quantized layer (quantization_config) cannot be read`);
  });

  test('layers tfjs would run differently from Keras: grouped conv, thresholded ReLU, dilated depthwise', async () => {
    let f = folder(
      (j) => {
        layerCfg(j, 'conv2d').groups = 2;
      },
      { variant: 'keras2' },
      residual,
    );
    await expect(loadModel(f.dir)).rejects.toThrow(new FileFormatError(f.file, "layer 'conv2d' (Conv2D): groups 2 (a grouped convolution) has no tfjs equivalent"));
    f = folder(
      (j) => {
        layerCfg(j, 're_lu').threshold = 0.5;
      },
      { variant: 'keras2' },
      residual,
    );
    await expect(loadModel(f.dir)).rejects.toThrow("layer 're_lu' (ReLU): threshold 0.5, negative_slope 0: tfjs's ReLU has neither");
    f = folder(
      (j) => {
        layerCfg(j, 'depthwise_conv2d').dilation_rate = [2, 2];
      },
      { variant: 'keras2' },
      residual,
    );
    await expect(loadModel(f.dir)).rejects.toThrow("layer 'depthwise_conv2d' (DepthwiseConv2D): dilation_rate [2,2]: tfjs 4.22's DepthwiseConv2D runs without its dilation");
    f = folder(
      (j) => {
        j.modelTopology.model_config.config.layers[1].inbound_nodes[0].kwargs = { mask: j.modelTopology.model_config.config.layers[1].inbound_nodes[0].args[0] };
      },
      { variant: 'keras3-h5' },
      residual,
    );
    await expect(loadModel(f.dir)).rejects.toThrow("layer 'depthwise_conv2d' (DepthwiseConv2D): takes a tensor as a keyword argument (mask)");
  });

  test('weights: unknown, missing, shape, duplicate names; quantization; a NaN names the shard that holds it', async () => {
    let f = folder((j) => {
      j.weightsManifest[0].weights[0].name = 'dense/kernal';
    });
    await expect(loadModel(f.dir)).rejects.toThrow(`${f.file}: weight 'dense/kernal' is no weight of the model (its weights: separable_conv2d/depthwise_kernel, separable_conv2d/pointwise_kernel, separable_conv2d/bias, dense/kernel, dense/bias)`);
    f = folder((j) => {
      j.weightsManifest[0].weights[1].name = 'dense/kernel';
    });
    await expect(loadModel(f.dir)).rejects.toThrow(`${f.file}: weight 'dense/kernel' is listed twice in weightsManifest`);
    // a weight removed from the manifest (and its bytes from the file): the model's weight without values
    f = folder((j) => {
      j.weightsManifest[0].weights.splice(1, 1);
    });
    const bin = path.join(f.dir, 'group1-shard1of1.bin');
    const b = fs.readFileSync(bin);
    fs.writeFileSync(bin, Buffer.concat([b.subarray(0, 6760 * 4), b.subarray(6770 * 4)]));
    await expect(loadModel(f.dir)).rejects.toThrow(`${f.file}: no values for 1 of the model's 5 weights: dense/bias`);
    f = folder((j) => {
      j.weightsManifest[0].weights[0].shape = [10, 676];
    });
    await expect(loadModel(f.dir)).rejects.toThrow(`${f.file}: weight 'dense/kernel' is [10x676], the model's 'dense/kernel' [676x10]`);
    f = folder((j) => {
      j.weightsManifest[0].weights[0].dtype = 'int32';
    });
    await expect(loadModel(f.dir)).rejects.toThrow(`${f.file}: weight 'dense/kernel' is int32, the model's 'dense/kernel' float32`);
    f = folder(
      (j) => {
        delete j.weightsManifest[0].weights[0].quantization.scale;
      },
      { variant: 'keras2', quantize: () => 'uint8' },
    );
    await expect(loadModel(f.dir)).rejects.toThrow(`${f.file}: weight 'dense/kernel': uint8 quantization without a finite scale (undefined)`);
    f = folder(
      (j) => {
        j.weightsManifest[0].weights[0].quantization.dtype = 'int8';
      },
      { variant: 'keras2', quantize: () => 'uint8' },
    );
    await expect(loadModel(f.dir)).rejects.toThrow(`${f.file}: weight 'dense/kernel': quantization dtype "int8" (the converter writes uint8, uint16 or float16)`);
    // float16 NaN in the dense kernel, in the second of three shards (13,600 bytes of halves)
    const dir = newDir();
    writeConverterFolder(sequential, dir, { variant: 'keras2', shardBytes: 5000, quantize: () => 'float16' });
    const json = JSON.parse(fs.readFileSync(path.join(dir, 'model.json'), 'utf8'));
    expect(json.weightsManifest[0].paths).toHaveLength(3);
    const shard2 = path.join(dir, 'group1-shard2of3.bin');
    const s2 = fs.readFileSync(shard2);
    s2.writeUInt16LE(0x7e00, 100);
    fs.writeFileSync(shard2, s2);
    // the .h5 order puts dense first: byte 5100 is dense/kernel element 5100 / 2
    await expect(loadModel(dir)).rejects.toThrow(`${shard2}: weight 'dense/kernel' [676x10], element 2550 (byte 100): float16 NaN is not a finite number`);
    // a short last shard
    fs.truncateSync(path.join(dir, 'group1-shard3of3.bin'), 10);
    await expect(loadModel(dir)).rejects.toThrow(`${path.join(dir, 'group1-shard3of3.bin')}: holds 10010 bytes, model.json describes 13600`);
  });
});
