// The package's FusedBatchNorm gradient (src/gradients/batch_norm.ts) against the closed form of
// batch normalization's backward pass in plain loops (double accumulators), and against tfjs's own.
import { tf } from '../src/tf';
import { initBackend } from '../src/backend';
import { fastBatchNormGradient, stockBatchNormGradient } from '../src/gradients/batch_norm';
import { arr } from './helpers';

beforeAll(async () => {
  await initBackend('wasm');
});

const [N, H, W, C] = [3, 4, 5, 6];
const EPS = 1e-3;

/** Gradients of sum(u * BN_train(x)) through a tf.layers BN in training, for x, gamma and beta. */
function layerGrads(x: tf.Tensor4D, u: tf.Tensor4D, gamma: number[], beta: number[]) {
  const bn = tf.layers.batchNormalization({ axis: -1, epsilon: EPS });
  bn.build([null, H, W, C]);
  bn.setWeights([tf.tensor1d(gamma), tf.tensor1d(beta), tf.zeros([C]), tf.ones([C])]);
  const xv = tf.variable(x);
  const [g, b] = bn.trainableWeights.map((w) => w.read() as tf.Variable);
  const { grads: named } = tf.variableGrads(() => tf.sum(tf.mul(u, bn.apply(xv, { training: true }) as tf.Tensor)) as tf.Scalar, [xv, g, b]);
  const grads = [named[xv.name], named[g.name], named[b.name]];
  xv.dispose();
  return grads.map((t) => arr(t));
}

/** The closed form: dx = g r / M (M dy - S(dy) - xhat S(dy xhat)), dgamma = S(dy xhat), dbeta = S(dy). */
function reference(x: number[], dy: number[], gamma: number[]) {
  const M = N * H * W;
  const dx = new Array<number>(x.length).fill(0);
  const dg: number[] = [];
  const db: number[] = [];
  for (let c = 0; c < C; c++) {
    let mean = 0;
    for (let i = 0; i < M; i++) mean += x[i * C + c] / M;
    let v = 0;
    for (let i = 0; i < M; i++) v += (x[i * C + c] - mean) ** 2 / M;
    const r = 1 / Math.sqrt(v + EPS);
    let sdy = 0;
    let sdyxh = 0;
    for (let i = 0; i < M; i++) {
      sdy += dy[i * C + c];
      sdyxh += dy[i * C + c] * (x[i * C + c] - mean) * r;
    }
    for (let i = 0; i < M; i++) {
      const xh = (x[i * C + c] - mean) * r;
      dx[i * C + c] = ((gamma[c] * r) / M) * (M * dy[i * C + c] - sdy - xh * sdyxh);
    }
    dg.push(sdyxh);
    db.push(sdy);
  }
  return [dx, dg, db];
}

test('the gradient of a training-mode BN layer matches the closed form, and tfjs-core\'s gradient', () => {
  const fast = fastBatchNormGradient();
  expect(fast).not.toBeNull();
  const x = tf.randomNormal([N, H, W, C], 0.5, 2, 'float32', 11) as tf.Tensor4D;
  const u = tf.randomNormal([N, H, W, C], 0, 1, 'float32', 12) as tf.Tensor4D;
  const gamma = [1, 0.5, 2, -1, 0.1, 3];
  const beta = [0, 1, -1, 0.5, 2, -0.3];
  const want = reference(arr(x), arr(u), gamma);
  const got = layerGrads(x, u, gamma, beta);
  try {
    tf.registerGradient(stockBatchNormGradient);
    const tfjs = layerGrads(x, u, gamma, beta);
    for (let k = 0; k < 3; k++) {
      want[k].forEach((v, i) => {
        expect(got[k][i]).toBeCloseTo(v, 3);
        expect(got[k][i]).toBeCloseTo(tfjs[k][i], 3);
      });
    }
  } finally {
    tf.registerGradient(fast!);
  }
  // dx sums to zero over each channel (the mean is subtracted), a check the reference passes too
  for (let c = 0; c < C; c++) expect(got[0].filter((_, i) => i % C === c).reduce((a, b) => a + b, 0)).toBeCloseTo(0, 3);
});
