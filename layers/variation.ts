// Device-variation noise for hardware-aware training: the weights a layer computes with while
// training are perturbed as programmed memristors would perturb them, so that the network learns
// to tolerate it. Drawn anew for every training batch (a seeded sequence per layer), never at
// inference (kwargs.training false).
//
// These fields are a view of a DeviceConfig (src/device/config.ts): src/device/training_noise.ts
// converts one into the other (variationFromDevice / deviceFromVariation) and documents the
// correspondence field by field. Here, the model of one weight w (already quantized), in
// conductance units where the nominal G_max = 1 and G_min = 1 / gOnOffRatio, range = G_max - G_min:
//
//   wmax = max|w| of the tensor (a constant for the gradient): the mapping's weight scale.
//   target position x in [0, 1] of each device in the window, by scheme:
//     'differential' (MemTorch's double column): x+ = max(w, 0) / wmax, x- = max(-w, 0) / wmax.
//     'reference': one device per weight at x = p + (w / wmax) s around a reference cell at
//       x = p (referencePosition), s = min(p, 1 - p); one reference cell per input row (the last
//       axis of the kernel is the outputs), shared by all outputs of the row.
//   each device draws its own ON and OFF conductances: R_ON lognormal (ln R_ON ~ N(ln R_ON0,
//     rOnSigma), truncated at 4 sigma as the device model does), so G_on = G_max exp(-n);
//     likewise G_off = G_min exp(-n') with rOffSigma.
//   programmed G, by `programming`:
//     'openLoop' (the model of Lammie et al.: every cell is set to the same fraction of its own
//       window): G = G_off + x (G_on - G_off) + N(0, programmingSigma range).
//     'writeVerify' (what `map` does: closed-loop programming to absolute targets):
//       G = G_min + x range + range (mean(x) + sigma(x) z), z ~ N(0, 1), where mean and sigma are
//       the residual G - target after write-verify as fractions of the window, measured at
//       `programmingError.mean.length` evenly spaced positions (linear interpolation between them),
//       or mean 0 and sigma = programmingSigma where programmingError is null. d2d does not move a
//       write-verified cell (the loop corrects it) except where its own window does not hold the
//       target: that is in the measured residual, so here G_on / G_off serve the stuck cells only.
//     either way clamped at 0 (a conductance is never negative; aihwkit clamps the same way).
//   stuck cells: with probability stuckAtRonRate a device sits at its G_on, with stuckAtRoffRate
//     at its G_off, whatever was programmed.
//   read noise: G (1 + readNoiseSigma z'), a new z' per device and training batch (on the chip,
//     per read; the variance a column current sees is the same).
//   effective weight: differential (G+ - G-) / range * wmax; reference (G - G_ref) / (s range) * wmax.
// The gradient is straight-through, d(perturbed)/dw = 1, except where the device that carries the
// weight (the plus device of w >= 0, the minus device of w < 0, the one cell of the reference
// scheme) is stuck: there it is 0, as the stuck conductance does not follow its target.
//
// With every sigma and rate zero (and no residual table) the effective weight equals w exactly (up
// to float rounding).
import { tf, Tensor } from '../src/tf';
import { ConfigError } from '../src/errors';
import { deriveSeed } from '../src/random';

/** How programmed conductances relate to their targets (see the model above). */
export const PROGRAMMING_MODELS = ['openLoop', 'writeVerify'] as const;
export type ProgrammingModel = (typeof PROGRAMMING_MODELS)[number];
/** How a signed weight sits on devices (src/mapping/schemes.ts). */
export const VARIATION_SCHEMES = ['differential', 'reference'] as const;
export type VariationScheme = (typeof VARIATION_SCHEMES)[number];

/** The residual G - target of write-verify, fractions of the window, at evenly spaced target positions. */
export interface ProgrammingErrorTable {
  /** Mean residual at each position (position i of n: x = i / (n - 1)); >= 2 entries. */
  mean: number[];
  /** Its standard deviation at each position (>= 0), as many entries as `mean`. */
  sigma: number[];
}

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
  /**
   * Gaussian programming error, as a fraction of the conductance range G_max - G_min. Default 0.
   * With programming 'writeVerify' it is used where programmingError is null.
   */
  programmingSigma?: number;
  /** Fraction of devices stuck at R_ON (their G_on). Default 0. */
  stuckAtRonRate?: number;
  /** Fraction of devices stuck at R_OFF (their G_off). Default 0. */
  stuckAtRoffRate?: number;
  /** Read noise: relative sigma of each device's conductance, new every batch. Default 0. */
  readNoiseSigma?: number;
  /** 'openLoop' (default) or 'writeVerify': see the model at the top of this file. */
  programming?: ProgrammingModel;
  /** writeVerify: the measured residual table (null: zero mean, programmingSigma). Default null. */
  programmingError?: ProgrammingErrorTable | null;
  /** 'differential' (default: two devices a weight) or 'reference' (one device and a reference cell a row). */
  scheme?: VariationScheme;
  /** 'reference' scheme: the reference cell's place in the window, in (0, 1). Default 0.5. */
  referencePosition?: number;
}

export interface ResolvedVariation {
  gOnOffRatio: number;
  rOnSigma: number;
  rOffSigma: number;
  programmingSigma: number;
  stuckAtRonRate: number;
  stuckAtRoffRate: number;
  readNoiseSigma: number;
  programming: ProgrammingModel;
  programmingError: ProgrammingErrorTable | null;
  scheme: VariationScheme;
  referencePosition: number;
}

/** The numeric fields of DeviceVariation, in a fixed order (the CLI's --variation keys). */
export const VARIATION_KEYS = [
  'gOnOffRatio', 'rOnSigma', 'rOffSigma', 'programmingSigma', 'stuckAtRonRate', 'stuckAtRoffRate', 'readNoiseSigma', 'referencePosition',
] as const;
export type VariationKey = (typeof VARIATION_KEYS)[number];
/** Every field of DeviceVariation. */
export const VARIATION_FIELDS = [...VARIATION_KEYS, 'programming', 'programmingError', 'scheme'] as const;

export const DEFAULT_VARIATION: Readonly<ResolvedVariation> = Object.freeze({
  gOnOffRatio: 100,
  rOnSigma: 0,
  rOffSigma: 0,
  programmingSigma: 0,
  stuckAtRonRate: 0,
  stuckAtRoffRate: 0,
  readNoiseSigma: 0,
  programming: 'openLoop',
  programmingError: null,
  scheme: 'differential',
  referencePosition: 0.5,
});

function checkTable(t: unknown, field: string): ProgrammingErrorTable {
  if (t == null || typeof t !== 'object' || Array.isArray(t)) throw new ConfigError(field, `must be {mean: [...], sigma: [...]} or null, got ${JSON.stringify(t)}`);
  const o = t as Record<string, unknown>;
  for (const k of Object.keys(o)) if (k !== 'mean' && k !== 'sigma') throw new ConfigError(`${field}.${k}`, 'unknown field (known: mean, sigma)');
  const list = (k: 'mean' | 'sigma'): number[] => {
    const a = o[k];
    if (!Array.isArray(a) || a.length < 2) throw new ConfigError(`${field}.${k}`, `must be an array of >= 2 numbers, got ${JSON.stringify(a)}`);
    a.forEach((v, i) => {
      if (typeof v !== 'number' || !Number.isFinite(v)) throw new ConfigError(`${field}.${k}[${i}]`, `must be a finite number, got ${String(v)}`);
      if (k === 'sigma' && v < 0) throw new ConfigError(`${field}.${k}[${i}]`, `must be >= 0, got ${v}`);
      if (Math.abs(v) > 1) throw new ConfigError(`${field}.${k}[${i}]`, `must be a fraction of the window in [-1, 1], got ${v}`);
    });
    return [...(a as number[])];
  };
  const mean = list('mean');
  const sigma = list('sigma');
  if (mean.length !== sigma.length) throw new ConfigError(`${field}.sigma`, `must have as many entries as mean (${mean.length}), got ${sigma.length}`);
  return { mean, sigma };
}

/** Fill defaults and validate; a bad field throws ConfigError naming it (prefixed by `field`). */
export function resolveVariation(v: DeviceVariation, field = 'variation'): ResolvedVariation {
  if (v == null || typeof v !== 'object' || Array.isArray(v)) throw new ConfigError(field, `must be an object, got ${JSON.stringify(v)}`);
  for (const k of Object.keys(v)) {
    if (!(VARIATION_FIELDS as readonly string[]).includes(k)) throw new ConfigError(`${field}.${k}`, `unknown field (known: ${VARIATION_FIELDS.join(', ')})`);
  }
  const out: ResolvedVariation = { ...DEFAULT_VARIATION };
  const raw = v as Record<string, unknown>;
  for (const k of VARIATION_KEYS) {
    const val = raw[k];
    if (val === undefined || val === null) continue;
    if (typeof val !== 'number' || !Number.isFinite(val)) throw new ConfigError(`${field}.${k}`, `must be a finite number, got ${String(val)}`);
    out[k] = val;
  }
  if (!(out.gOnOffRatio > 1)) throw new ConfigError(`${field}.gOnOffRatio`, `must be > 1, got ${out.gOnOffRatio}`);
  for (const k of ['rOnSigma', 'rOffSigma', 'programmingSigma', 'readNoiseSigma'] as const) {
    if (out[k] < 0) throw new ConfigError(`${field}.${k}`, `must be >= 0, got ${out[k]}`);
  }
  if (out.readNoiseSigma >= 1) throw new ConfigError(`${field}.readNoiseSigma`, `must be < 1, got ${out.readNoiseSigma}`);
  for (const k of ['stuckAtRonRate', 'stuckAtRoffRate'] as const) {
    if (out[k] < 0 || out[k] > 1) throw new ConfigError(`${field}.${k}`, `must be in [0, 1], got ${out[k]}`);
  }
  if (out.stuckAtRonRate + out.stuckAtRoffRate > 1) {
    throw new ConfigError(`${field}.stuckAtRoffRate`, `stuckAtRonRate + stuckAtRoffRate must be <= 1, got ${out.stuckAtRonRate + out.stuckAtRoffRate}`);
  }
  if (!(out.referencePosition > 0 && out.referencePosition < 1)) throw new ConfigError(`${field}.referencePosition`, `must be in (0, 1), got ${out.referencePosition}`);
  const choice = <T extends string>(k: 'programming' | 'scheme', choices: readonly T[]): T | undefined => {
    const val = raw[k];
    if (val === undefined || val === null) return undefined;
    if (typeof val !== 'string' || !(choices as readonly string[]).includes(val)) throw new ConfigError(`${field}.${k}`, `must be one of ${choices.join(', ')}, got ${JSON.stringify(val)}`);
    return val as T;
  };
  out.programming = choice('programming', PROGRAMMING_MODELS) ?? out.programming;
  out.scheme = choice('scheme', VARIATION_SCHEMES) ?? out.scheme;
  if (raw.programmingError != null) out.programmingError = checkTable(raw.programmingError, `${field}.programmingError`);
  return out;
}

/**
 * `base` with single fields replaced (the CLI's `--variation k=v` over a device's view). Setting
 * programmingSigma drops the measured residual table (the override replaces it: zero mean, that
 * sigma everywhere).
 */
export function overrideVariation(base: DeviceVariation, over: DeviceVariation | null | undefined, field = 'variation'): ResolvedVariation {
  if (!over) return resolveVariation(base, field);
  const merged: DeviceVariation = { ...base, ...over };
  if (over.programmingSigma !== undefined && over.programmingError === undefined) merged.programmingError = null;
  return resolveVariation(merged, field);
}

function tableIsZero(t: ProgrammingErrorTable | null): boolean {
  return t === null || (t.mean.every((x) => x === 0) && t.sigma.every((x) => x === 0));
}

/** True when the variation changes nothing (no sigma, no stuck cells, no residual). */
export function isNoiseFree(v: ResolvedVariation): boolean {
  const stuck = v.stuckAtRonRate > 0 || v.stuckAtRoffRate > 0;
  if (stuck || v.readNoiseSigma > 0) return false;
  if (v.programming === 'openLoop') return v.rOnSigma === 0 && v.rOffSigma === 0 && v.programmingSigma === 0;
  // write-verify: d2d only sets the stuck values
  return v.programmingError !== null ? tableIsZero(v.programmingError) : v.programmingSigma === 0;
}

/** Linear interpolation of a table at positions x in [0, 1] (tf ops). */
function interpolate(table: number[], x: Tensor): Tensor {
  // One pass here, in float32 as the op chain (clip, scale, floor, two gathers, lerp) computed it,
  // to the same bits: the chain's two gathers were 40% of a device-aware step's noise time.
  const n = table.length;
  const t = Float32Array.from(table);
  const xs = x.dataSync() as Float32Array;
  const out = new Float32Array(xs.length);
  const f = Math.fround;
  for (let i = 0; i < xs.length; i++) {
    const v = xs[i];
    const pos = f((v < 0 ? 0 : v > 1 ? 1 : v) * (n - 1));
    const i0 = Math.min(Math.floor(pos), n - 2);
    const a = t[i0];
    out[i] = a + f(f(pos - i0) * f(t[i0 + 1] - a));
  }
  return tf.tensor(out, x.shape, 'float32');
}

/** A standard normal truncated at +-4 (the device model's d2d truncation), clipped rather than redrawn. */
function d2dNormal(shape: number[], sigma: number, seed: number): Tensor {
  return tf.mul(tf.clipByValue(tf.randomNormal(shape, 0, 1, 'float32', seed), -4, 4), sigma);
}

/** The perturbed values, no gradient: see the model above. `seed` is a uint32. */
export function perturbValues(w: Tensor, v: ResolvedVariation, seed: number): Tensor {
  const { value, mask } = perturb(w, v, seed);
  mask?.dispose();
  return value;
}

/**
 * The perturbed values and, where cells can be stuck, the gradient mask: 0 where the device that
 * carries the weight is stuck (its conductance does not follow the target), 1 elsewhere.
 */
function perturb(w: Tensor, v: ResolvedVariation, seed: number): { value: Tensor; mask: Tensor | null } {
  const [value, mask] = tf.tidy((): Tensor[] => {
    const gMax = 1;
    const gMin = 1 / v.gOnOffRatio;
    const range = gMax - gMin;
    const wmax = tf.max(tf.abs(w));
    const safeMax = tf.maximum(wmax, 1e-30);
    const stuck = v.stuckAtRonRate > 0 || v.stuckAtRoffRate > 0;
    // One device per entry of `x` (its target position in the window): its conductance, and where
    // it is stuck (1 where stuck, 0 elsewhere; null without stuck cells).
    const device = (side: string, x: Tensor): { g: Tensor; stuckAt: Tensor | null } => {
      const shape = x.shape;
      const openLoop = v.programming === 'openLoop';
      const needBounds = openLoop || stuck;
      const gOn = needBounds && v.rOnSigma > 0 ? tf.mul(tf.exp(tf.neg(d2dNormal(shape, v.rOnSigma, deriveSeed(seed, side, 'rOn')))), gMax) : tf.scalar(gMax);
      const gOff = needBounds && v.rOffSigma > 0 ? tf.mul(tf.exp(tf.neg(d2dNormal(shape, v.rOffSigma, deriveSeed(seed, side, 'rOff')))), gMin) : tf.scalar(gMin);
      let g: Tensor;
      if (openLoop) {
        g = tf.add(gOff, tf.mul(x, tf.sub(gOn, gOff)));
        if (v.programmingSigma > 0) g = tf.relu(tf.add(g, tf.randomNormal(shape, 0, v.programmingSigma * range, 'float32', deriveSeed(seed, side, 'program'))));
      } else {
        g = tf.add(gMin, tf.mul(x, range));
        const table = v.programmingError;
        if (table && !tableIsZero(table)) {
          const mean = interpolate(table.mean, x);
          const sd = interpolate(table.sigma, x);
          const z = tf.randomNormal(shape, 0, 1, 'float32', deriveSeed(seed, side, 'residual'));
          g = tf.relu(tf.add(g, tf.mul(tf.add(mean, tf.mul(sd, z)), range)));
        } else if (!table && v.programmingSigma > 0) {
          g = tf.relu(tf.add(g, tf.randomNormal(shape, 0, v.programmingSigma * range, 'float32', deriveSeed(seed, side, 'program'))));
        }
      }
      let stuckAt: Tensor | null = null;
      if (stuck) {
        const u = tf.randomUniform(shape, 0, 1, 'float32', deriveSeed(seed, side, 'stuck'));
        const onMask = tf.less(u, v.stuckAtRonRate);
        const offMask = tf.logicalAnd(tf.greaterEqual(u, v.stuckAtRonRate), tf.less(u, v.stuckAtRonRate + v.stuckAtRoffRate));
        g = tf.where(onMask, tf.broadcastTo(gOn, shape), tf.where(offMask, tf.broadcastTo(gOff, shape), g));
        stuckAt = tf.cast(tf.less(u, v.stuckAtRonRate + v.stuckAtRoffRate), 'float32');
      }
      if (v.readNoiseSigma > 0) g = tf.mul(g, tf.add(1, tf.randomNormal(shape, 0, v.readNoiseSigma, 'float32', deriveSeed(seed, side, 'read'))));
      return { g, stuckAt };
    };
    if (v.scheme === 'differential') {
      const plus = device('plus', tf.div(tf.relu(w), safeMax));
      const minus = device('minus', tf.div(tf.relu(tf.neg(w)), safeMax));
      const value = tf.mul(tf.div(tf.sub(plus.g, minus.g), range), wmax);
      // a weight >= 0 follows its plus device, a negative one its minus device
      if (!plus.stuckAt || !minus.stuckAt) return [value];
      return [value, tf.sub(1, tf.where(tf.greaterEqual(w, 0), plus.stuckAt, minus.stuckAt))];
    }
    // reference scheme: the reference cell of each row (every axis but the last, the outputs)
    const p = v.referencePosition;
    const s = Math.min(p, 1 - p);
    const cell = device('cell', tf.add(p, tf.mul(tf.div(w, safeMax), s)));
    const refShape = w.shape.length > 1 ? [...w.shape.slice(0, -1), 1] : [1];
    const ref = device('ref', tf.fill(refShape, p));
    const value = tf.mul(tf.div(tf.sub(cell.g, ref.g), s * range), wmax);
    return cell.stuckAt ? [value, tf.sub(1, cell.stuckAt)] : [value];
  });
  return { value, mask: mask ?? null };
}

const perturbOp = (v: ResolvedVariation, seed: number) =>
  tf.customGrad((...args: (Tensor | ((s: Tensor[]) => void))[]) => {
    const w = args[0] as Tensor;
    const save = args[1] as (s: Tensor[]) => void;
    const { value, mask } = perturb(w, v, seed);
    if (mask) save([mask]);
    return {
      value,
      gradFunc: (dy: Tensor, saved: Tensor[]) => (mask ? tf.mul(dy, saved[0]) : tf.clone(dy)),
    };
  });

/**
 * w perturbed as programmed memristors would (see the model at the top of this file), with a
 * straight-through gradient, except where the weight's device is stuck: there the gradient is 0
 * (a stuck conductance does not follow its target). `variation` may be partial (defaults
 * filled); `seed` a uint32.
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
