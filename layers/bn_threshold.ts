// Chen et al. 2021: batch normalization followed by a binarization is one comparison per channel.
// BN(x) = gamma (x - mean) / sqrt(var + eps) + beta. For a following activation with threshold t
// (sign: +1 where BN(x) >= 0, t = 0; step: 1 where BN(x) > t):
//   tau = mean + (t - beta) sqrt(var + eps) / gamma      (t = 0: tau = mean - beta sqrt(var+eps) / gamma)
//   gamma > 0: sign -> x >= tau, step -> x > tau
//   gamma < 0: the comparison flips: sign -> x <= tau, step -> x < tau   (flip = 1)
//   gamma = 0: BN(x) = beta is constant; tau = -FLT_MAX (always on) or +FLT_MAX (always off).
// ThresholdActivation is the comparator layer that replaces BN + activation for inference/mapping.
import { tf, Tensor } from '../src/tf';
import { ConfigError } from '../src/errors';
import { Kwargs, LayerArgs, oneInput } from './quant_base';

/** The largest float32: stands for an infinite threshold (JSON has no Infinity). */
export const FLOAT32_MAX = 3.4028234663852886e38;

export interface BatchNormParams {
  /** Per channel; default all 1 (BN with scale: false). */
  gamma?: ArrayLike<number> | null;
  /** Per channel; default all 0 (BN with center: false). */
  beta?: ArrayLike<number> | null;
  movingMean: ArrayLike<number>;
  movingVariance: ArrayLike<number>;
  epsilon: number;
}

export interface BnThreshold {
  threshold: Float32Array;
  /** 1 where gamma < 0 (the comparison is reversed). */
  flip: Uint8Array;
}

export type ThresholdMode = 'sign' | 'step';

type BNLayer = ReturnType<typeof tf.layers.batchNormalization>;

/** gamma, beta, moving mean and variance and epsilon of a (built) tf.layers BatchNormalization. */
export function batchNormParams(bn: BNLayer): BatchNormParams {
  const cfg = bn.getConfig() as { axis?: number; epsilon?: number };
  const rank = (bn.inputSpec?.[0] as { ndim?: number } | undefined)?.ndim;
  if (cfg.axis != null && cfg.axis !== -1 && !(rank != null && cfg.axis === rank - 1)) {
    // Models here put channels last; a BN over another axis has no per-output-channel threshold.
    throw new ConfigError(`${bn.name}.axis`, `bnThreshold needs BN over the last axis, got axis ${cfg.axis}`);
  }
  const byName: Record<string, Float32Array> = {};
  for (const w of bn.weights) {
    const key = w.originalName.split('/').pop() as string;
    byName[key] = w.read().dataSync() as Float32Array;
  }
  if (!byName.moving_mean || !byName.moving_variance) throw new ConfigError(bn.name, 'is not built (no moving mean/variance)');
  return {
    gamma: byName.gamma ?? null,
    beta: byName.beta ?? null,
    movingMean: byName.moving_mean,
    movingVariance: byName.moving_variance,
    epsilon: cfg.epsilon ?? 1e-3,
  };
}

function isLayer(x: unknown): x is BNLayer {
  return x instanceof tf.layers.Layer;
}

export interface BnThresholdOptions {
  /** The activation after BN: 'sign' (BN(x) >= at -> +1) or 'step' (BN(x) > at -> 1). Default 'sign'. */
  mode?: ThresholdMode;
  /** The activation's threshold on BN(x). Default 0 for sign, 0.5 for step (Park et al.'s boundary). */
  at?: number;
}

/**
 * Per-channel thresholds of BN followed by sign or step (see the top of this file). Computed in
 * float64, stored as float32.
 */
export function bnThreshold(bn: BNLayer | BatchNormParams, opts: BnThresholdOptions = {}): BnThreshold {
  const p = isLayer(bn) ? batchNormParams(bn) : bn;
  const mode = opts.mode ?? 'sign';
  if (mode !== 'sign' && mode !== 'step') throw new ConfigError('mode', `must be 'sign' or 'step', got ${String(mode)}`);
  const t = opts.at ?? (mode === 'step' ? 0.5 : 0);
  if (!Number.isFinite(t)) throw new ConfigError('at', `must be a finite number, got ${t}`);
  const n = p.movingMean.length;
  if (p.movingVariance.length !== n) throw new ConfigError('movingVariance', `has ${p.movingVariance.length} channels, movingMean ${n}`);
  if (p.gamma && p.gamma.length !== n) throw new ConfigError('gamma', `has ${p.gamma.length} channels, movingMean ${n}`);
  if (p.beta && p.beta.length !== n) throw new ConfigError('beta', `has ${p.beta.length} channels, movingMean ${n}`);
  if (!(p.epsilon >= 0)) throw new ConfigError('epsilon', `must be >= 0, got ${p.epsilon}`);
  const threshold = new Float32Array(n);
  const flip = new Uint8Array(n);
  for (let c = 0; c < n; c++) {
    const gamma = p.gamma ? p.gamma[c] : 1;
    const beta = p.beta ? p.beta[c] : 0;
    const sd = Math.sqrt(p.movingVariance[c] + p.epsilon);
    if (gamma === 0) {
      // Constant output beta: compare it with t once.
      const on = mode === 'sign' ? beta >= t : beta > t;
      threshold[c] = on ? -FLOAT32_MAX : FLOAT32_MAX;
      continue;
    }
    threshold[c] = p.movingMean[c] + ((t - beta) * sd) / gamma;
    flip[c] = gamma < 0 ? 1 : 0;
  }
  return { threshold, flip };
}

export interface ThresholdActivationArgs extends LayerArgs {
  /** Per-channel thresholds (last axis). */
  threshold: ArrayLike<number>;
  /** Per channel 1/true where the comparison is reversed; default none. */
  flip?: ArrayLike<number | boolean>;
  /** 'sign': +1/-1 with >= (<= flipped); 'step': 1/0 with > (< flipped). Default 'sign'. */
  mode?: ThresholdMode;
}

/** The comparator that replaces BN + sign/step: per channel x vs tau, as in the merged circuit. */
export class ThresholdActivation extends tf.layers.Layer {
  static className = 'ThresholdActivation';
  readonly threshold: Float32Array;
  readonly flip: Uint8Array;
  readonly mode: ThresholdMode;

  constructor(args: ThresholdActivationArgs) {
    super(args);
    if (args.threshold == null || typeof args.threshold.length !== 'number' || args.threshold.length < 1) {
      throw new ConfigError(`${this.name}.threshold`, 'must be a non-empty array');
    }
    this.threshold = Float32Array.from(args.threshold, (v) => {
      if (typeof v !== 'number' || Number.isNaN(v)) throw new ConfigError(`${this.name}.threshold`, `must hold numbers, got ${String(v)}`);
      return Math.max(-FLOAT32_MAX, Math.min(FLOAT32_MAX, v));
    });
    const flip = args.flip ?? new Uint8Array(this.threshold.length);
    if (flip.length !== this.threshold.length) throw new ConfigError(`${this.name}.flip`, `has ${flip.length} channels, threshold ${this.threshold.length}`);
    this.flip = Uint8Array.from(flip as ArrayLike<number>, (v) => (v ? 1 : 0));
    this.mode = args.mode ?? 'sign';
    if (this.mode !== 'sign' && this.mode !== 'step') throw new ConfigError(`${this.name}.mode`, `must be 'sign' or 'step', got ${String(args.mode)}`);
  }

  /** A ThresholdActivation from a built BatchNormalization layer. */
  static fromBatchNorm(bn: BNLayer | BatchNormParams, opts: { mode?: ThresholdMode; at?: number; name?: string } = {}): ThresholdActivation {
    const { threshold, flip } = bnThreshold(bn, { mode: opts.mode, at: opts.at });
    return new ThresholdActivation({ threshold, flip, mode: opts.mode ?? 'sign', name: opts.name });
  }

  override computeOutputShape(inputShape: tf.Shape | tf.Shape[]): tf.Shape | tf.Shape[] {
    return inputShape;
  }

  override call(inputs: Tensor | Tensor[], _kwargs: Kwargs): Tensor {
    return tf.tidy(() => {
      const x = oneInput(inputs);
      const c = x.shape[x.rank - 1];
      if (c !== this.threshold.length) throw new ConfigError(`${this.name}.threshold`, `has ${this.threshold.length} channels, the input ${c}`);
      // A flipped comparison as the plain one of -x with -threshold (negation is exact): no
      // tf.where on booleans, which the wasm backend (4.22) computes wrongly and past its output.
      const s = tf.tensor1d(Float32Array.from(this.flip, (f) => (f ? -1 : 1)));
      const t = tf.tensor1d(Float32Array.from(this.threshold, (v, c2) => (this.flip[c2] ? -v : v)));
      const u = tf.mul(x, s);
      const on = this.mode === 'sign' ? tf.greaterEqual(u, t) : tf.greater(u, t);
      const b = tf.cast(on, 'float32');
      return this.mode === 'sign' ? tf.sub(tf.mul(b, 2), 1) : b;
    });
  }

  override getConfig(): tf.serialization.ConfigDict {
    return { ...super.getConfig(), threshold: Array.from(this.threshold), flip: Array.from(this.flip), mode: this.mode };
  }
}
tf.serialization.registerClass(ThresholdActivation);
