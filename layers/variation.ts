// Device-variation noise for hardware-aware training: the weights a layer computes with while
// training are perturbed as programmed memristors would perturb them, so that the network learns
// to tolerate it. Drawn anew for every training batch (a seeded sequence per layer), never at
// inference (kwargs.training false).
//
// The model of one weight w (already quantized), in conductance units where G_max = 1:
//   differential pair: f+ = max(w, 0) / wmax, f- = max(-w, 0) / wmax, wmax = max|w| of the tensor
//     (a constant for the gradient), target G = G_min + f (G_max - G_min) on each device
//     (MemTorch's double-column mapping).
//   each device draws its own ON and OFF conductances: R_ON lognormal (ln R_ON ~ N(ln R_ON0,
//     rOnSigma)), so G_on = G_max exp(-n); likewise G_off = G_min exp(-n') with rOffSigma.
//   programmed G = G_off + f (G_on - G_off) + N(0, programmingSigma (G_max - G_min)), clamped at 0
//     (a conductance is never negative; aihwkit clamps its programmed conductances the same way).
//   stuck cells: with probability stuckAtRonRate a device sits at its G_on, with stuckAtRoffRate
//     at its G_off, whatever was programmed.
//   effective weight = (G+ - G-) / (G_max - G_min) * wmax.
// The gradient is straight-through: d(perturbed)/dw = 1 (w + stopGradient(perturbed - w)).
//
// With every sigma and rate zero the effective weight equals w exactly (up to float rounding).
import { tf, Tensor } from '../src/tf';
import { ConfigError } from '../src/errors';
import { deriveSeed } from '../src/random';

export interface DeviceVariation {
  /**
   * G_max / G_min of the nominal device (= R_OFF / R_ON). Default 100: assumed, the papers'
   * abstracts give no conductance window (Shi et al. only say "high ON/OFF ratio").
   */
  gOnOffRatio?: number;
  /** Per-device lognormal sigma of R_ON (sigma of ln R_ON). Default 0. */
  rOnSigma?: number;
  /** Per-device lognormal sigma of R_OFF (sigma of ln R_OFF). Default 0. */
  rOffSigma?: number;
  /** Gaussian programming error, as a fraction of the conductance range G_max - G_min. Default 0. */
  programmingSigma?: number;
  /** Fraction of devices stuck at R_ON (their G_on). Default 0. */
  stuckAtRonRate?: number;
  /** Fraction of devices stuck at R_OFF (their G_off). Default 0. */
  stuckAtRoffRate?: number;
}

export type ResolvedVariation = Required<DeviceVariation>;

/** The fields of DeviceVariation, in a fixed order (the CLI's --variation keys). */
export const VARIATION_KEYS = ['gOnOffRatio', 'rOnSigma', 'rOffSigma', 'programmingSigma', 'stuckAtRonRate', 'stuckAtRoffRate'] as const;

export const DEFAULT_VARIATION: Readonly<ResolvedVariation> = Object.freeze({
  gOnOffRatio: 100,
  rOnSigma: 0,
  rOffSigma: 0,
  programmingSigma: 0,
  stuckAtRonRate: 0,
  stuckAtRoffRate: 0,
});

/** Fill defaults and validate; a bad field throws ConfigError naming it (prefixed by `field`). */
export function resolveVariation(v: DeviceVariation, field = 'variation'): ResolvedVariation {
  if (v == null || typeof v !== 'object' || Array.isArray(v)) throw new ConfigError(field, `must be an object, got ${JSON.stringify(v)}`);
  for (const k of Object.keys(v)) {
    if (!(VARIATION_KEYS as readonly string[]).includes(k)) throw new ConfigError(`${field}.${k}`, `unknown field (known: ${VARIATION_KEYS.join(', ')})`);
  }
  const out = { ...DEFAULT_VARIATION };
  for (const k of VARIATION_KEYS) {
    const val = (v as Record<string, unknown>)[k];
    if (val === undefined || val === null) continue;
    if (typeof val !== 'number' || !Number.isFinite(val)) throw new ConfigError(`${field}.${k}`, `must be a finite number, got ${String(val)}`);
    out[k] = val;
  }
  if (!(out.gOnOffRatio > 1)) throw new ConfigError(`${field}.gOnOffRatio`, `must be > 1, got ${out.gOnOffRatio}`);
  for (const k of ['rOnSigma', 'rOffSigma', 'programmingSigma'] as const) {
    if (out[k] < 0) throw new ConfigError(`${field}.${k}`, `must be >= 0, got ${out[k]}`);
  }
  for (const k of ['stuckAtRonRate', 'stuckAtRoffRate'] as const) {
    if (out[k] < 0 || out[k] > 1) throw new ConfigError(`${field}.${k}`, `must be in [0, 1], got ${out[k]}`);
  }
  if (out.stuckAtRonRate + out.stuckAtRoffRate > 1) {
    throw new ConfigError(`${field}.stuckAtRoffRate`, `stuckAtRonRate + stuckAtRoffRate must be <= 1, got ${out.stuckAtRonRate + out.stuckAtRoffRate}`);
  }
  return out;
}

/** True when the variation changes nothing (no sigma, no stuck cells). */
export function isNoiseFree(v: ResolvedVariation): boolean {
  return v.rOnSigma === 0 && v.rOffSigma === 0 && v.programmingSigma === 0 && v.stuckAtRonRate === 0 && v.stuckAtRoffRate === 0;
}

/** The perturbed values, no gradient: see the model above. `seed` is a uint32. */
export function perturbValues(w: Tensor, v: ResolvedVariation, seed: number): Tensor {
  return tf.tidy(() => {
    const shape = w.shape;
    const gMax = 1;
    const gMin = 1 / v.gOnOffRatio;
    const range = gMax - gMin;
    const wmax = tf.max(tf.abs(w));
    const safeMax = tf.maximum(wmax, 1e-30);
    const device = (side: 'plus' | 'minus', target: Tensor): Tensor => {
      const f = tf.div(target, safeMax);
      const gOn = v.rOnSigma > 0 ? tf.mul(tf.exp(tf.neg(tf.randomNormal(shape, 0, v.rOnSigma, 'float32', deriveSeed(seed, side, 'rOn')))), gMax) : tf.scalar(gMax);
      const gOff = v.rOffSigma > 0 ? tf.mul(tf.exp(tf.neg(tf.randomNormal(shape, 0, v.rOffSigma, 'float32', deriveSeed(seed, side, 'rOff')))), gMin) : tf.scalar(gMin);
      let g = tf.add(gOff, tf.mul(f, tf.sub(gOn, gOff)));
      if (v.programmingSigma > 0) {
        g = tf.relu(tf.add(g, tf.randomNormal(shape, 0, v.programmingSigma * range, 'float32', deriveSeed(seed, side, 'program'))));
      }
      if (v.stuckAtRonRate > 0 || v.stuckAtRoffRate > 0) {
        const u = tf.randomUniform(shape, 0, 1, 'float32', deriveSeed(seed, side, 'stuck'));
        const onMask = tf.less(u, v.stuckAtRonRate);
        const offMask = tf.logicalAnd(tf.greaterEqual(u, v.stuckAtRonRate), tf.less(u, v.stuckAtRonRate + v.stuckAtRoffRate));
        g = tf.where(onMask, tf.broadcastTo(gOn, shape), tf.where(offMask, tf.broadcastTo(gOff, shape), g));
      }
      return g;
    };
    const gPlus = device('plus', tf.relu(w));
    const gMinus = device('minus', tf.relu(tf.neg(w)));
    return tf.mul(tf.div(tf.sub(gPlus, gMinus), range), wmax);
  });
}

const perturbOp = (v: ResolvedVariation, seed: number) =>
  tf.customGrad((...args: (Tensor | ((s: Tensor[]) => void))[]) => {
    const w = args[0] as Tensor;
    return { value: perturbValues(w, v, seed), gradFunc: (dy: Tensor) => tf.clone(dy) };
  });

/**
 * w perturbed as programmed memristors would (see the model at the top of this file), with a
 * straight-through gradient. `variation` may be partial (defaults filled); `seed` a uint32.
 */
export function perturbWeights(w: Tensor, variation: DeviceVariation, seed: number): Tensor {
  const v = resolveVariation(variation);
  if (isNoiseFree(v)) return tf.clone(w);
  return perturbOp(v, seed)(w);
}

/** The seed of a layer's `counter`-th noisy forward pass. */
export function noiseSeed(layerSeed: number, counter: number): number {
  return deriveSeed(layerSeed, 'variation', counter);
}

// ---------------------------------------------------------------------------------------------
// Noise counters: each layer with variation counts its noisy forward passes, so that every batch
// draws anew and a resumed run continues the same sequence.

/** A layer that draws variation noise. */
export interface NoisyLayer {
  readonly name: string;
  /** Noisy forward passes so far. */
  noiseCounter: number;
  /** True when the layer has a variation that changes its weights. */
  readonly drawsNoise: boolean;
}

function isNoisy(l: unknown): l is NoisyLayer {
  return l != null && typeof (l as NoisyLayer).noiseCounter === 'number' && (l as NoisyLayer).drawsNoise === true;
}

interface HasLayers {
  layers: unknown[];
}

function* walkLayers(model: HasLayers, prefix = ''): Generator<[string, unknown]> {
  for (const l of model.layers) {
    const name = (l as { name: string }).name;
    yield [prefix + name, l];
    if (l != null && Array.isArray((l as HasLayers).layers)) yield* walkLayers(l as HasLayers, `${prefix}${name}/`);
  }
}

/** {layer name: noisy passes so far} of every layer that draws variation noise. */
export function getNoiseCounters(model: HasLayers): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [name, l] of walkLayers(model)) if (isNoisy(l)) out[name] = l.noiseCounter;
  return out;
}

/** Restore counters saved by getNoiseCounters (a ConfigError for a name the model lacks). */
export function setNoiseCounters(model: HasLayers, counters: Record<string, number>): void {
  const layers = new Map<string, NoisyLayer>();
  for (const [name, l] of walkLayers(model)) if (isNoisy(l)) layers.set(name, l);
  for (const [name, c] of Object.entries(counters)) {
    const l = layers.get(name);
    if (!l) throw new ConfigError(`noiseCounters.${name}`, 'no layer of that name draws variation noise in this model');
    if (!Number.isInteger(c) || c < 0) throw new ConfigError(`noiseCounters.${name}`, `must be a non-negative integer, got ${String(c)}`);
    l.noiseCounter = c;
  }
}
