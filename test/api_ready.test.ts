// A new user's first API calls (this file starts with no tfjs backend: jest gives each test file
// fresh globals): importing the package registers its kernels for wasm and cpu, so tfjs's own
// `await tf.ready()` is enough; a synchronous call before any backend started fails with one line
// naming the fix; async loaders start the backend themselves.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as m from '../src';

const tf = m.tf;

/** A stock Keras-style model folder (Sequential, one Dense 3 -> 2) written by hand, no tfjs needed. */
function writeStockModel(dir: string): void {
  const dense = {
    class_name: 'Dense',
    config: { units: 2, activation: 'linear', use_bias: true, name: 'd', trainable: true, batch_input_shape: [null, 3], dtype: 'float32',
      kernel_initializer: { class_name: 'Zeros', config: {} }, bias_initializer: { class_name: 'Zeros', config: {} } },
  };
  const modelJson = {
    format: 'layers-model',
    modelTopology: { class_name: 'Sequential', config: { name: 's', layers: [dense] }, keras_version: 'tfjs-layers 4.22.0', backend: 'tensor_flow.js' },
    weightsManifest: [{ paths: ['weights.bin'], weights: [{ name: 'd/kernel', shape: [3, 2], dtype: 'float32' }, { name: 'd/bias', shape: [2], dtype: 'float32' }] }],
  };
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'model.json'), JSON.stringify(modelJson));
  fs.writeFileSync(path.join(dir, 'weights.bin'), Buffer.from(new Float32Array([1, 0, 0, 1, 1, 1, 0.5, -0.5]).buffer));
}

test('before any backend started: a model build names the one fix (await tf.ready())', () => {
  let err: Error | null = null;
  try {
    m.models.buildModel('mcnn', { seed: 1 });
  } catch (e) {
    err = e as Error;
  }
  expect(err).toBeInstanceOf(m.BackendNotReadyError);
  expect(err!.message).toMatch(/^buildModel\('mcnn'\): the tfjs backend has not started yet: `await tf\.ready\(\)` first/);
  expect(err!.message.split('\n')).toHaveLength(1);
});

test('after that failed call, loadModel starts the backend itself (tfjs alone would stay stuck: its ready() waits but sets no backend)', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mtfjs-ready-'));
  try {
    writeStockModel(dir);
    const { model } = await m.loadModel(dir);
    const y = model.predict(tf.tensor2d([[1, 2, 3]])) as m.tf.Tensor;
    expect(Array.from(y.dataSync())).toEqual([4.5, 4.5]);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('after await tf.ready(): wasm runs with the kernels registered; quantizers in both forms; a conv model trains', async () => {
  await tf.ready();
  expect(tf.getBackend()).toBe('wasm');
  expect(m.backendInfo()).toBeNull(); // initBackend was never called
  expect(tf.getKernel('Conv2DBackpropFilter', 'wasm')).toBeDefined();
  const x = tf.tensor1d([-2, -0.5, 0, 0.5, 2]);
  expect(Array.from(m.quantizers.steSign(x).dataSync())).toEqual([-1, -1, 1, 1, 1]);
  expect(Array.from(m.quantizers.steSign()(x).dataSync())).toEqual([-1, -1, 1, 1, 1]);
  const data = m.data.loadDataset('mnist', { trainSamples: 32, testSamples: 1 });
  const model = m.models.buildModel('mcnn', { seed: 1 });
  const { result } = await m.training.fit(
    model,
    { train: data.train, validation: null, imageShape: data.imageShape, numClasses: 10 },
    { epochs: 1, batchSize: 16, learningRate: 0.01, optimizer: 'adam', schedule: 'constant', seed: 1 },
  );
  expect(Number.isFinite(result.history[0].loss)).toBe(true);
  model.dispose();
});
