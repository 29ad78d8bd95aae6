// Larq-style quantizers: small functions x -> q(x) with a straight-through estimated gradient,
// built with tf.customGrad, passed to layers by name or object and serialized with them as
// {className, config}.
//
// Semantics (matching Larq where Larq has the quantizer):
//   steSign             forward sign(x) with sign(0) = +1; gradient dy * 1[|x| <= clipValue] (clip 1)
//   approxSign          same forward; gradient dy * (2 - 2|x|) * 1[|x| <= 1] (Bi-Real Net)
//   steHeaviside        forward 1[x > threshold] (0/1; Park et al.: 1 -> read voltage, 0 -> ground),
//                       gradient dy * 1[|x - threshold| <= window]. Defaults threshold 0.5 and window
//                       0.5, i.e. the gradient passes for x in [0, 1] (Larq's ste_heaviside is
//                       threshold 0, clip 1).
//   steUniform          uniform multi-level quantizer with a straight-through gradient inside the clip
//                       range (DoReFa for the unsigned case); see below for levels and bits.
//   magnitudeAwareSign  per-output-channel mean|x| (over every axis but the last) times steSign(x);
//                       the scale is a constant for the gradient (Larq's MagnitudeAwareSign).
//   identity            the float pass-through (the same as no quantizer).
//
// steUniform, levels and bits. `levels` is always the number of distinct values the quantizer
// can output; `bits: k` is shorthand for `levels: 2^k` (a k-bit code), signed or not.
//   unsigned (default):  L levels on [0, 1]: clip to [0, 1], round(x * n) / n with n = L - 1.
//                        bits 8 -> 256 levels (an 8-bit input, Yao et al.).
//   signed: true:        L levels spread evenly on [-1, 1]: q = 2 round((clip(x) + 1) / 2 * n) / n - 1,
//                        n = L - 1. An odd L includes 0 (15 levels = k/7, Yao's difference of two
//                        8-level devices; 7 levels = a 3-bit sign-magnitude code). An even L has no
//                        zero (8 levels = +-1/7, +-3/7, +-5/7, +-1: a 3-bit code realised by a
//                        differential pair of two 8-level devices programmed complementarily,
//                        G+ = i, G- = 7 - i, G+ - G- = 2i - 7; the choice for Park et al.).
//   scale: 'max':        quantize x / s and multiply back by s, s = max|x| over the whole tensor (a
//                        constant for the gradient). The levels then span the weights actually present
//                        (glorot weights of a 3x3x1 conv are ~0.3 in size) and one conductance range
//                        serves the whole array. Nothing is outside the clip range then, so the
//                        gradient is dy everywhere.
// Ties (x exactly half-way between levels) follow tf.round, which rounds half to even.
//
// Call forms (Larq has both ste_sign(x) and SteSign()): every factory takes options and returns a
// quantizer, steSign({clipValue: 0.5})(x), or takes a tensor and applies the quantizer to it,
// steSign(x) (default options) or steSign(x, {clipValue: 0.5}). `quantizers` also answers to
// Larq's names (ste_sign, SteSign, approx_sign, ...), the same functions.
import { tf, Tensor } from '../src/tf';
import { ConfigError } from '../src/errors';
import { UNIFORM_LEVELS } from '../src/kernels';

/** A plain-JSON quantizer description, as stored in a layer config. */
export interface QuantizerSpec {
  className: string;
  config: Record<string, number | string | boolean | null>;
}

/** A quantizer: a function with its serialization attached. */
export interface Quantizer {
  (x: Tensor): Tensor;
  readonly className: string;
  readonly config: QuantizerSpec['config'];
  /** Number of distinct output values: 2 for the binary ones, L for steUniform, null for identity. */
  readonly levels: number | null;
  /** {className, config}: what getConfig stores and getQuantizer reads back. */
  toSpec(): QuantizerSpec;
}

export type QuantizerIdentifier = string | QuantizerSpec | Quantizer | null | undefined;

function makeQuantizer(className: string, config: QuantizerSpec['config'], levels: number | null, fn: (x: Tensor) => Tensor): Quantizer {
  const q = ((x: Tensor) => fn(x)) as Quantizer;
  const frozen = Object.freeze({ ...config });
  Object.defineProperties(q, {
    className: { value: className, enumerable: true },
    config: { value: frozen, enumerable: true },
    levels: { value: levels, enumerable: true },
    toSpec: { value: (): QuantizerSpec => ({ className, config: { ...frozen } }) },
  });
  return q;
}

function checkPositive(field: string, v: unknown): number {
  if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) throw new ConfigError(field, `must be a positive number, got ${String(v)}`);
  return v;
}

function checkFinite(field: string, v: unknown): number {
  if (typeof v !== 'number' || !Number.isFinite(v)) throw new ConfigError(field, `must be a finite number, got ${String(v)}`);
  return v;
}

function checkKeys(name: string, opts: object, allowed: string[]): void {
  for (const k of Object.keys(opts)) {
    if (!allowed.includes(k)) throw new ConfigError(`${name}.${k}`, `unknown option (known: ${allowed.join(', ') || 'none'})`);
  }
}

/** A tfjs tensor (of this package's tfjs, or duck-typed: one of another copy of tfjs). */
function isTensor(v: unknown): v is Tensor {
  if (v instanceof tf.Tensor) return true;
  const o = v as { dataId?: unknown; shape?: unknown; dtype?: unknown } | null;
  return typeof o === 'object' && o !== null && o.dataId !== undefined && Array.isArray(o.shape) && typeof o.dtype === 'string';
}

function describeArg(v: unknown): string {
  if (Array.isArray(v)) return 'an array (wrap it: tf.tensor(...))';
  if (v === null) return 'null';
  return typeof v === 'object' ? 'an object' : `${typeof v} ${String(v)}`;
}

/**
 * Both call forms of a quantizer factory: make(opts) -> a quantizer; a tensor x (optionally with
 * options after it) -> the quantizer with those options applied to x.
 */
function callForms<O extends object>(name: string, make: (opts: O) => Quantizer): (arg?: O | Tensor, opts?: O) => Quantizer | Tensor {
  return (arg?: O | Tensor, opts?: O) => {
    if (isTensor(arg)) return make((opts ?? {}) as O)(arg);
    if (opts !== undefined) throw new ConfigError(name, `a second argument goes after a tensor: ${name}(x, opts); got ${name}(${describeArg(arg)}, ...)`);
    if (arg !== undefined && (typeof arg !== 'object' || arg === null || Array.isArray(arg))) {
      throw new ConfigError(name, `takes options or a tensor: ${name}(x) quantizes the tensor x, ${name}(opts) makes a quantizer to call on x later; got ${describeArg(arg)}`);
    }
    return make((arg ?? {}) as O);
  };
}

/** sign with sign(0) = +1, as float32 (no gradient of its own). */
function signPlus(x: Tensor): Tensor {
  return tf.tidy(() => tf.sub(tf.mul(tf.cast(tf.greaterEqual(x, 0), 'float32'), 2), 1));
}

/** 1 where |x - center| <= halfWidth, else 0 (float32). */
function window(x: Tensor, center: number, halfWidth: number): Tensor {
  return tf.tidy(() => {
    const d = center === 0 ? tf.abs(x) : tf.abs(tf.sub(x, center));
    return tf.cast(tf.lessEqual(d, halfWidth), 'float32');
  });
}

/** The element-wise gradient of a quantizer: dy times a mask/factor computed from the saved x. */
type GradFactor = (x: Tensor) => Tensor;

/** customGrad wrapper: forward `forward(x)`, gradient dy * factor(x) (factor null: dy). */
function steOp(forward: (x: Tensor) => Tensor, factor: GradFactor | null): (x: Tensor) => Tensor {
  const op = tf.customGrad((...args: (Tensor | ((s: Tensor[]) => void))[]) => {
    const x = args[0] as Tensor;
    const save = args[1] as (s: Tensor[]) => void;
    save([x]);
    return {
      value: forward(x),
      gradFunc: (dy: Tensor, saved: Tensor[]) => tf.tidy(() => (factor ? tf.mul(dy, factor(saved[0])) : tf.clone(dy))),
    };
  });
  return (x: Tensor) => op(x);
}

// ---------------------------------------------------------------------------------------------

export interface SteSignOptions {
  /** Gradient passes where |x| <= clipValue. Default 1. */
  clipValue?: number;
}

const makeSteSign = (opts: SteSignOptions): Quantizer => {
  checkKeys('steSign', opts, ['clipValue']);
  const clip = checkPositive('steSign.clipValue', opts.clipValue ?? 1);
  return makeQuantizer('SteSign', { clipValue: clip }, 2, steOp(signPlus, (x) => window(x, 0, clip)));
};
const steSignForms = callForms('steSign', makeSteSign);

/** Binary sign quantizer (+-1, sign(0) = +1) with the straight-through estimator: steSign(opts)(x), or steSign(x[, opts]). */
export function steSign(x: Tensor, opts?: SteSignOptions): Tensor;
export function steSign(opts?: SteSignOptions): Quantizer;
export function steSign(arg?: SteSignOptions | Tensor, opts?: SteSignOptions): Quantizer | Tensor {
  return steSignForms(arg, opts);
}

const approxSignForms = callForms('approxSign', (opts: Record<string, never>): Quantizer => {
  checkKeys('approxSign', opts, []);
  return makeQuantizer(
    'ApproxSign',
    {},
    2,
    steOp(signPlus, (x) => tf.tidy(() => tf.relu(tf.sub(2, tf.mul(tf.abs(x), 2))))),
  );
});

/** Binary sign quantizer with the ApproxSign (Bi-Real Net) gradient dy * max(0, 2 - 2|x|): approxSign()(x) or approxSign(x). */
export function approxSign(x: Tensor): Tensor;
export function approxSign(opts?: Record<string, never>): Quantizer;
export function approxSign(arg?: Record<string, never> | Tensor, opts?: Record<string, never>): Quantizer | Tensor {
  return approxSignForms(arg, opts);
}

export interface SteHeavisideOptions {
  /** Output 1 where x > threshold, else 0. Default 0.5 (Park et al.'s boundary). */
  threshold?: number;
  /** Gradient passes where |x - threshold| <= window. Default 0.5. */
  window?: number;
}

const steHeavisideForms = callForms('steHeaviside', (opts: SteHeavisideOptions): Quantizer => makeSteHeaviside(opts));

/** Binary 0/1 step at a threshold with a windowed straight-through gradient: steHeaviside(opts)(x) or steHeaviside(x[, opts]). */
export function steHeaviside(x: Tensor, opts?: SteHeavisideOptions): Tensor;
export function steHeaviside(opts?: SteHeavisideOptions): Quantizer;
export function steHeaviside(arg?: SteHeavisideOptions | Tensor, opts?: SteHeavisideOptions): Quantizer | Tensor {
  return steHeavisideForms(arg, opts);
}

function makeSteHeaviside(opts: SteHeavisideOptions): Quantizer {
  checkKeys('steHeaviside', opts, ['threshold', 'window']);
  const t = checkFinite('steHeaviside.threshold', opts.threshold ?? 0.5);
  const w = checkPositive('steHeaviside.window', opts.window ?? 0.5);
  return makeQuantizer(
    'SteHeaviside',
    { threshold: t, window: w },
    2,
    steOp(
      (x) => tf.tidy(() => tf.cast(tf.greater(x, t), 'float32')),
      (x) => window(x, t, w),
    ),
  );
}

export interface SteUniformOptions {
  /** Shorthand for levels = 2^bits. Give bits or levels, not both. */
  bits?: number;
  /** Number of distinct output values (>= 2). */
  levels?: number;
  /** Levels on [-1, 1] (true) or on [0, 1] (false, the default; DoReFa). */
  signed?: boolean;
  /** 'max': quantize x / max|x| and scale back (levels span the values present). Default null. */
  scale?: 'max' | null;
}

const MAX_LEVELS = 65536;

const steUniformForms = callForms('steUniform', (opts: SteUniformOptions): Quantizer => makeSteUniform(opts));

/** Uniform multi-level quantizer with a straight-through gradient inside the clip range: steUniform(opts)(x) or steUniform(x, opts). */
export function steUniform(x: Tensor, opts?: SteUniformOptions): Tensor;
export function steUniform(opts?: SteUniformOptions): Quantizer;
export function steUniform(arg?: SteUniformOptions | Tensor, opts?: SteUniformOptions): Quantizer | Tensor {
  return steUniformForms(arg, opts);
}

function makeSteUniform(opts: SteUniformOptions): Quantizer {
  checkKeys('steUniform', opts, ['bits', 'levels', 'signed', 'scale']);
  if (opts.bits != null && opts.levels != null) throw new ConfigError('steUniform.bits', 'give bits or levels, not both');
  let levels: number;
  if (opts.bits != null) {
    if (!Number.isInteger(opts.bits) || opts.bits < 1 || opts.bits > 16) throw new ConfigError('steUniform.bits', `must be an integer in 1..16, got ${String(opts.bits)}`);
    levels = 2 ** opts.bits;
  } else if (opts.levels != null) {
    if (!Number.isInteger(opts.levels) || opts.levels < 2 || opts.levels > MAX_LEVELS) {
      throw new ConfigError('steUniform.levels', `must be an integer in 2..${MAX_LEVELS}, got ${String(opts.levels)}`);
    }
    levels = opts.levels;
  } else {
    throw new ConfigError('steUniform.levels', 'give bits or levels');
  }
  const signed = opts.signed ?? false;
  if (typeof signed !== 'boolean') throw new ConfigError('steUniform.signed', `must be true or false, got ${String(signed)}`);
  const scale = opts.scale ?? null;
  if (scale !== null && scale !== 'max') throw new ConfigError('steUniform.scale', `must be 'max' or null, got ${String(scale)}`);
  const n = levels - 1;
  const lo = signed ? -1 : 0;

  // Quantize a tensor already in units of the clip range.
  const unit = (y: Tensor): Tensor =>
    tf.tidy(() => {
      const c = tf.clipByValue(y, lo, 1);
      if (!signed) return tf.div(tf.round(tf.mul(c, n)), n);
      // q = 2 round((c + 1) n / 2) / n - 1
      return tf.sub(tf.mul(tf.round(tf.mul(tf.add(c, 1), n / 2)), 2 / n), 1);
    });

  let chain: (x: Tensor) => Tensor;
  let factor: GradFactor | null;
  if (scale === 'max') {
    chain = (x) =>
      tf.tidy(() => {
        const s = tf.maximum(tf.max(tf.abs(x)), 1e-12);
        return tf.mul(unit(tf.div(x, s)), s);
      });
    // Every x lies in [-s, s]: the whole gradient passes.
    factor = null;
  } else {
    chain = unit;
    factor = (x) => tf.tidy(() => tf.cast(tf.logicalAnd(tf.greaterEqual(x, lo), tf.lessEqual(x, 1)), 'float32'));
  }
  // One kernel where the backend has it (wasm, cpu: src/kernels/uniform_levels.ts, the same bits).
  const attrs = { levels, signed, scaleMax: scale === 'max' };
  const forward = (x: Tensor): Tensor =>
    x.dtype === 'float32' && tf.getKernel(UNIFORM_LEVELS, tf.getBackend()) ? (tf.engine().runKernel(UNIFORM_LEVELS, { x }, attrs) as Tensor) : chain(x);
  return makeQuantizer('SteUniform', { levels, signed, scale }, levels, steOp(forward, factor));
}

export interface MagnitudeAwareSignOptions {
  /** Gradient passes where |x| <= clipValue. Default 1. */
  clipValue?: number;
}

const magnitudeAwareSignForms = callForms('magnitudeAwareSign', (opts: MagnitudeAwareSignOptions): Quantizer => makeMagnitudeAwareSign(opts));

/** mean|x| per output channel (the last axis) times steSign(x) (XNOR-Net / Larq): magnitudeAwareSign(opts)(x) or magnitudeAwareSign(x[, opts]). */
export function magnitudeAwareSign(x: Tensor, opts?: MagnitudeAwareSignOptions): Tensor;
export function magnitudeAwareSign(opts?: MagnitudeAwareSignOptions): Quantizer;
export function magnitudeAwareSign(arg?: MagnitudeAwareSignOptions | Tensor, opts?: MagnitudeAwareSignOptions): Quantizer | Tensor {
  return magnitudeAwareSignForms(arg, opts);
}

function makeMagnitudeAwareSign(opts: MagnitudeAwareSignOptions): Quantizer {
  checkKeys('magnitudeAwareSign', opts, ['clipValue']);
  const clip = checkPositive('magnitudeAwareSign.clipValue', opts.clipValue ?? 1);
  const channelScale = (x: Tensor): Tensor => {
    const axes = x.shape.map((_, i) => i).slice(0, -1);
    return axes.length ? tf.mean(tf.abs(x), axes, true) : tf.abs(x);
  };
  const op = tf.customGrad((...args: (Tensor | ((s: Tensor[]) => void))[]) => {
    const x = args[0] as Tensor;
    const save = args[1] as (s: Tensor[]) => void;
    const s = tf.tidy(() => channelScale(x));
    save([x, s]);
    return {
      value: tf.tidy(() => tf.mul(signPlus(x), s)),
      gradFunc: (dy: Tensor, saved: Tensor[]) => tf.tidy(() => tf.mul(tf.mul(dy, window(saved[0], 0, clip)), saved[1])),
    };
  });
  return makeQuantizer('MagnitudeAwareSign', { clipValue: clip }, 2, (x) => op(x));
}

const identityForms = callForms('identity', (opts: Record<string, never>): Quantizer => {
  checkKeys('identity', opts, []);
  return makeQuantizer('Identity', {}, null, (x) => tf.clone(x));
});

/** The float pass-through. Layers treat it like no quantizer. identity()(x) or identity(x) (a copy). */
export function identity(x: Tensor): Tensor;
export function identity(opts?: Record<string, never>): Quantizer;
export function identity(arg?: Record<string, never> | Tensor, opts?: Record<string, never>): Quantizer | Tensor {
  return identityForms(arg, opts);
}

// ---------------------------------------------------------------------------------------------

type Factory = (opts?: object) => Quantizer;

const FACTORIES = {
  steSign,
  approxSign,
  steHeaviside,
  steUniform,
  magnitudeAwareSign,
  identity,
} as const;

/** Larq's names for the same factories (Larq: larq.quantizers.ste_sign and SteSign, ...). */
export interface LarqQuantizerNames {
  ste_sign: typeof steSign;
  SteSign: typeof steSign;
  approx_sign: typeof approxSign;
  ApproxSign: typeof approxSign;
  ste_heaviside: typeof steHeaviside;
  SteHeaviside: typeof steHeaviside;
  magnitude_aware_sign: typeof magnitudeAwareSign;
  MagnitudeAwareSign: typeof magnitudeAwareSign;
  SteUniform: typeof steUniform;
  NoOp: typeof identity;
}

const LARQ_NAMES: LarqQuantizerNames = {
  ste_sign: steSign,
  SteSign: steSign,
  approx_sign: approxSign,
  ApproxSign: approxSign,
  ste_heaviside: steHeaviside,
  SteHeaviside: steHeaviside,
  magnitude_aware_sign: magnitudeAwareSign,
  MagnitudeAwareSign: magnitudeAwareSign,
  SteUniform: steUniform,
  NoOp: identity,
};

/**
 * The quantizer factories by their camelCase names (the enumerable keys), and by Larq's names
 * (non-enumerable aliases of the same functions).
 */
export const quantizers: typeof FACTORIES & LarqQuantizerNames = Object.defineProperties(
  { ...FACTORIES },
  Object.fromEntries(Object.entries(LARQ_NAMES).map(([k, f]) => [k, { value: f, enumerable: false }])),
) as typeof FACTORIES & LarqQuantizerNames;

export type QuantizerName = keyof typeof FACTORIES;

const BY_CLASS: Record<string, Factory> = {
  SteSign: steSign as Factory,
  ApproxSign: approxSign as Factory,
  SteHeaviside: steHeaviside as Factory,
  SteUniform: steUniform as Factory,
  MagnitudeAwareSign: magnitudeAwareSign as Factory,
  Identity: identity as Factory,
};

/** 'ste_sign', 'steSign', 'SteSign' and 'ste-sign' all name the same class. */
function normalizeName(s: string): string {
  return s.replace(/[_\-\s]/g, '').toLowerCase();
}

const BY_NORMALIZED: Record<string, string> = Object.fromEntries(Object.keys(BY_CLASS).map((c) => [normalizeName(c), c]));

export function isQuantizer(x: unknown): x is Quantizer {
  return typeof x === 'function' && typeof (x as Quantizer).className === 'string' && typeof (x as Quantizer).toSpec === 'function';
}

/**
 * A quantizer from a name ('ste_sign', 'steSign', 'SteSign'; default options), a
 * {className, config} object, or a quantizer (returned as is). null/undefined -> null.
 */
export function getQuantizer(identifier: QuantizerIdentifier, field = 'quantizer'): Quantizer | null {
  if (identifier == null) return null;
  if (isQuantizer(identifier)) return identifier;
  if (typeof identifier === 'string') {
    const cls = BY_NORMALIZED[normalizeName(identifier)];
    if (!cls) throw new ConfigError(field, `unknown quantizer '${identifier}' (known: ${Object.keys(FACTORIES).join(', ')})`);
    return BY_CLASS[cls]();
  }
  if (typeof identifier === 'object' && typeof (identifier as QuantizerSpec).className === 'string') {
    const spec = identifier as QuantizerSpec;
    const cls = BY_NORMALIZED[normalizeName(spec.className)];
    if (!cls) throw new ConfigError(`${field}.className`, `unknown quantizer '${spec.className}' (known: ${Object.keys(BY_CLASS).join(', ')})`);
    const config = { ...(spec.config ?? {}) } as Record<string, unknown>;
    // Stored configs carry explicit nulls for options at their default.
    for (const k of Object.keys(config)) if (config[k] === null) delete config[k];
    return BY_CLASS[cls](config);
  }
  throw new ConfigError(field, `expected a quantizer name, {className, config} or a quantizer, got ${JSON.stringify(identifier)}`);
}

/** {className, config} of a quantizer, or null. */
export function serializeQuantizer(q: Quantizer | null): QuantizerSpec | null {
  return q ? q.toSpec() : null;
}

/** True for null and the identity quantizer: nothing to apply. */
export function isFloat(q: Quantizer | null): boolean {
  return q == null || q.levels == null;
}
