// kernelClip holds under a plain model.fit (tfjs-layers ignores constraints there; layers/constraints.ts).
import { tf } from '../src/tf';
import { initBackend } from '../src/backend';
import { QuantDense, WeightClip, enforceConstraints, enforceOnAssign } from '../layers';

beforeAll(async () => {
  await initBackend('wasm');
});

/** A tiny regression whose best weights are far outside [-0.05, 0.05]. */
function data(): { x: tf.Tensor; y: tf.Tensor } {
  const x = tf.tensor2d(Array.from({ length: 64 * 4 }, (_, i) => ((i * 37) % 11) / 11 - 0.5), [64, 4]);
  const y = tf.matMul(x, tf.tensor2d([[3], [-2], [1.5], [-4]]));
  return { x, y };
}

async function fitted(layer: tf.layers.Layer, enforce = false): Promise<number> {
  const m = tf.sequential({ layers: [layer] });
  if (enforce) enforceConstraints(m);
  m.compile({ optimizer: tf.train.adam(0.1), loss: 'meanSquaredError' });
  const { x, y } = data();
  await m.fit(x, y, { epochs: 20, batchSize: 16, verbose: 0 });
  const k = m.getWeights()[0];
  const max = Math.max(...Array.from(k.dataSync()).map(Math.abs));
  m.dispose();
  return max;
}

describe('kernelClip under model.fit', () => {
  test('a QuantDense latent kernel stays inside its clip, and reaches it', async () => {
    expect(await fitted(new QuantDense({ units: 1, inputShape: [4], kernelClip: 0.05, useBias: false, kernelQuantizer: null }))).toBeCloseTo(0.05, 6);
    // without a clip the same fit goes far beyond it: the check above can fail
    expect(await fitted(new QuantDense({ units: 1, inputShape: [4], kernelClip: null, useBias: false, kernelQuantizer: null }))).toBeGreaterThan(0.5);
  });

  test('a stock layer\'s kernelConstraint holds once enforceConstraints hooks it, and not before', async () => {
    // by its registered name and config, as a saved model.json gives it
    const mk = () => tf.layers.dense({ units: 1, inputShape: [4], useBias: false, kernelConstraint: { className: 'WeightClip', config: { clipValue: 0.1 } } as unknown as 'maxNorm' });
    expect(await fitted(mk())).toBeGreaterThan(0.5); // tfjs-layers' fit ignores it
    expect(await fitted(mk(), true)).toBeCloseTo(0.1, 6);
  });

  test('setWeights sets values as given (as Keras set_weights); the next optimizer step clips', () => {
    const l = new QuantDense({ units: 1, inputShape: [2], kernelClip: 1, useBias: false, kernelQuantizer: null });
    const m = tf.sequential({ layers: [l] });
    l.setWeights([tf.tensor2d([[0.5], [2]])]);
    expect(Array.from(l.getWeights()[0].dataSync())).toEqual([0.5, 2]);
    const opt = tf.train.sgd(0.01);
    opt.minimize(() => (m.apply(tf.tensor2d([[1, 1]])) as tf.Tensor).sum() as tf.Scalar);
    expect(Array.from(l.getWeights()[0].dataSync()).map((v) => Number(v.toFixed(4)))).toEqual([0.49, 1]);
  });

  test('enforceOnAssign: assign, and a changed constraint', () => {
    const v = tf.variable(tf.tensor1d([0.5, -2, 3]));
    enforceOnAssign(v, new WeightClip({ clipValue: 1 }));
    v.assign(tf.tensor1d([4, -0.25, -9]));
    expect(Array.from(v.dataSync())).toEqual([1, -0.25, -1]);
    enforceOnAssign(v, new WeightClip({ clipValue: 0.5 }));
    v.assign(tf.tensor1d([4, -0.25, -9]));
    expect(Array.from(v.dataSync())).toEqual([0.5, -0.25, -0.5]);
    expect(() => new WeightClip({ clipValue: 0 })).toThrow('WeightClip.clipValue: must be a positive number, got 0');
    expect(new WeightClip({ clipValue: 0.3 }).getConfig()).toEqual({ clipValue: 0.3 });
    v.dispose();
  });
});
