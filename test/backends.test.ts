// Every layer of the project trains on every backend present: wasm and cpu here (tfjs-node where
// installed), with the kernels src/kernels/ registers.
import { tf } from '../src/tf';
import { initBackend } from '../src/backend';
import { loadDataset } from '../src/data/datasets';
import { buildModel } from '../models/registry';
import { fit } from '../training/offline';

const data = loadDataset('mnist', { trainSamples: 64, testSamples: 1 });
const input = { train: data.train, validation: null, imageShape: data.imageShape, numClasses: 10 };

describe.each(['wasm', 'cpu'])('on %s', (backend) => {
  beforeAll(async () => {
    const info = await initBackend(backend);
    expect(info.name).toBe(backend);
    expect(info.kernels.length).toBeGreaterThan(0);
  });

  test.each(['mcnn', 'park', 'bnn', 'bmcnn'])('%s takes training steps: finite loss, every trainable weight moves', async (name) => {
    const model = buildModel(name, { seed: 1, variation: { programmingSigma: 0.02 } });
    const before = model.trainableWeights.map((w) => w.read().dataSync().slice());
    const { result } = await fit(model, input, { epochs: 1, batchSize: 16, learningRate: 0.01, optimizer: 'adam', schedule: 'constant', seed: 1 });
    expect(Number.isFinite(result.history[0].loss)).toBe(true);
    model.trainableWeights.forEach((w, i) => {
      const after = w.read().dataSync();
      expect(after.some((v, j) => v !== before[i][j])).toBe(true);
    });
    model.dispose();
  });

  test('the backend can be chosen by MEMRISTOR_TFJS_BACKEND', async () => {
    const other = backend === 'wasm' ? 'cpu' : 'wasm';
    process.env.MEMRISTOR_TFJS_BACKEND = other;
    try {
      const info = await initBackend();
      expect(info.name).toBe(other);
      expect(info.reason).toMatch(/MEMRISTOR_TFJS_BACKEND/);
    } finally {
      delete process.env.MEMRISTOR_TFJS_BACKEND;
      await initBackend(backend);
    }
    expect(tf.getBackend()).toBe(backend);
  });
});

test('without a request, the fastest present backend runs and says why', async () => {
  const info = await initBackend();
  // tfjs-node cannot install on these machines; where it does, it is chosen.
  let hasNode = true;
  try {
    require.resolve('@tensorflow/tfjs-node');
  } catch {
    hasNode = false;
  }
  expect(info.name).toBe(hasNode ? 'tensorflow' : 'wasm');
  if (!hasNode) expect(info.reason).toMatch(/tfjs-node is not installed/);
});
