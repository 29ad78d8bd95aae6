// A faster gradient of tfjs's FusedBatchNorm (the op every tf.layers.batchNormalization runs in
// training), the same derivatives as tfjs-core's gradients/FusedBatchNorm_grad.ts:
//   dx = dy g r,  dmean = -r g S(dy),  dvariance = -r^3 g S(dy (x - mean)) / 2,
//   dscale = r S(dy (x - mean)),  doffset = S(dy)
// with r = 1/sqrt(variance + eps) and S the sum over every axis but the channels. tfjs's own
// spends most of a ResNet-20 step on wasm in it (measured: 1.2 of 3.7 s, batch 64): it tiles r to
// the full activation shape (wasm's Tile kernel, ~120 ms for 64x32x32x16, where a broadcast
// multiply takes ~3 ms) and takes four separate sums over the leading axes (wasm transposes first).
// Here r is broadcast, and the two distinct channel sums are one Sum over the leading axes each:
// on wasm the package's SIMD column-sum kernel (src/kernels/wasm_channels.ts; a product with a row
// of ones through XNNPACK's GEMM, used before it, took 12% of a ResNet-20 step, this ~1%).
import { tf, Tensor } from '../tf';

/** Sums of t over every axis but the last, as a [C] tensor. */
function channelSums(t: Tensor, channels: number): Tensor {
  const lead = Array.from({ length: t.rank - 1 }, (_, i) => i);
  const s = tf.sum(t, lead);
  return s.shape.length === 1 && s.shape[0] === channels ? s : tf.reshape(s, [channels]);
}

const stock = tf.getGradient('FusedBatchNorm');

/** tfjs-core's gradient, which this one replaces (the tests and the benchmark compare them). */
export const stockBatchNormGradient = stock;
let fast: tf.GradConfig | null = null;

/** Registers the gradient (once; it replaces tfjs-core's for every backend). */
export function registerBatchNormGradient(): void {
  if (fast || !stock) return;
  fast = {
    kernelName: 'FusedBatchNorm',
    inputsToSave: ['x', 'mean', 'variance', 'scale'],
    gradFunc: (dy: Tensor | Tensor[], saved: Tensor[], attrs: tf.NamedAttrMap) => {
      const [x, mean, variance, scale] = saved;
      // Per-channel statistics (what tf.layers passes) only; anything else keeps tfjs's gradient.
      if (mean.rank !== 1 || x.shape[x.rank - 1] !== mean.shape[0]) return stock.gradFunc(dy, saved, attrs);
      const g = dy as Tensor;
      const eps = (attrs as unknown as { varianceEpsilon: number }).varianceEpsilon;
      const c = mean.shape[0];
      const s = scale == null ? tf.scalar(1) : scale;
      const r = tf.rsqrt(tf.add(variance, tf.scalar(eps)));
      // computed here, not in the closures: the engine runs each closure in its own tidy
      const sDy = channelSums(g, c);
      const sDyXm = channelSums(tf.mul(g, tf.sub(x, mean)), c);
      return {
        x: () => tf.mul(g, tf.mul(r, s)),
        mean: () => tf.mul(tf.neg(tf.mul(r, s)), sDy),
        variance: () => tf.mul(tf.mul(tf.mul(tf.mul(r, r), r), tf.mul(s, tf.scalar(-0.5))), sDyXm),
        scale: () => tf.mul(r, sDyXm),
        offset: () => tf.clone(sDy),
      };
    },
  };
  tf.registerGradient(fast);
}

/** This package's gradient (registered by registerBatchNormGradient), or null before. */
export function fastBatchNormGradient(): tf.GradConfig | null {
  return fast;
}
