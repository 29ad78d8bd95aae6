// The comparator neuron of a binary layer (Chen et al., Neural Networks 144, 2021: BatchNorm and
// binarization merged into one circuit at each column).
//
// A mapped layer whose outputs go, through digital layers, into a binary activation computes
//   y = W.x + b  (the arrays, the constant-sign offset, the bias)  ->  act (linear or ReLU)
//   -> [max pools] -> [BatchNormalization] -> [max pools] -> binary activation
// and every output channel c of that chain is a monotone function of y_c followed by a step, so the
// whole chain is ONE comparison of y_c with a threshold tau_c, flipped where the chain decreases:
//   sign activation (QuantActivation steSign/approxSign, sign(0) = +1; ThresholdActivation 'sign'):
//     +1 where y >= tau (flip: y <= tau), else -1
//   step activation (QuantActivation steHeaviside at t: 1 where v > t; ThresholdActivation 'step'):
//     1 where y > tau (flip: y < tau), else 0
// With BN(v) = gamma (v - mean) / sqrt(var + eps) + beta and the activation's threshold t on BN(v):
//   tau = mean + (t - beta) sqrt(var + eps) / gamma, flipped where gamma < 0 (layers/bn_threshold.ts);
//   gamma = 0: BN is the constant beta: always on or always off (tau = -+FLOAT32_MAX).
// A ThresholdActivation's own flip composes with the BN's (exclusive or). A ReLU of the mapped layer
// folds in too: relu(y) >= tau is y >= tau for tau > 0 and always true for tau <= 0 (and so on for
// the strict and the flipped comparisons).
//
// Max pools. A comparator decides per column read (per output position): the decisions are then
// pooled digitally. A max pool commutes with an increasing decision (the max of the currents is
// over the threshold iff one of them is: an OR of the decisions), but where the rest of the chain
// after the pool DECREASES (gamma < 0 after the pool, or a flipped ThresholdActivation) the pooled
// decision is +1 iff EVERY position's decision is +1: the pool becomes a min pool (an AND) of the
// decisions. (A min pool of the currents would be wrong: max(y) <= tau needs all y <= tau.) Both
// are computed exactly: the decisions d are pooled as s * maxpool(s * d) with s = -1 on the
// channels whose downstream chain decreases.
//
// What can be folded: the mapped layer's activation linear or ReLU; between the layer and the
// binary activation only max pools (MaxPooling2D, GlobalMaxPooling2D), dropouts (the identity at
// inference) and at most one BatchNormalization over the last axis. A Flatten or Reshape before
// the activation (per-feature, not per-channel, parameters), another activation, or a 2-level
// quantizer other than the sign and the step (steUniform with 2 levels) keep the digital path:
// the neuron is still a threshold neuron (no ADC) and the digital layers decide on the analog sums.
//
// Units. `thresholds` are in the layer's output units: the value of the pre-activation y = W.x + b
// at which the comparator switches. For the lab, `referenceUA` gives the same threshold as the
// column (pair) current I+ - I- in microamperes, the reference current of each column's comparator,
// for inputs read at the full-scale read voltage (read.voltage for an input of 1):
//   real inputs:              I_ref = (tau - b) V / weightScale
//   +-1 inputs (0/1 volts):   I_ref = (tau - b + sum_i W_ij) / 2 * V / weightScale
//                             (Chen et al.'s constant-sign transform w.x = 2 w.b - sum w; the sum
//                             over every row: interior positions of a conv; a same-padded border
//                             position sums its valid taps only)
// With a DAC calibrated to an input range r (evaluate prints calibration[].inputRange), divide the
// real-input reference by r. Inference reads `thresholds`; `referenceUA` must agree with them.
import { tf } from '../tf';
import { QuantActivation } from '../../layers/quant_activation';
import { ThresholdActivation, batchNormParams, FLOAT32_MAX } from '../../layers/bn_threshold';
import type { ConfigError } from '../errors';

export type ComparatorMode = 'sign' | 'step';

/** The comparator of a mapped layer's columns (see the top of this file). */
export interface Comparator {
  /** 'sign': outputs +-1 (>=, flipped <=); 'step': outputs 1/0 (>, flipped <). */
  mode: ComparatorMode;
  /** Per output channel, in the layer's output units: the pre-activation y = W.x + b where the decision switches. */
  thresholds: Float32Array;
  /** 1 where the comparison is reversed (+1 where y <= threshold, or y < threshold in step mode). */
  flip: Uint8Array;
  /** The digital layers after the mapped layer it stands for, in order (pools, BN, the binary activation). */
  layers: string[];
  /** Per max pool among `layers`: 1 on the channels where it pools the decisions with a min (an AND). */
  minPool: Map<string, Uint8Array>;
}

/** Classes that pass values through unchanged at inference. */
const IDENTITY = new Set(['Dropout', 'SpatialDropout1D', 'SpatialDropout2D']);
/** Per-channel max pools. */
const MAX_POOLS = new Set(['MaxPooling2D', 'MaxPool2D', 'GlobalMaxPooling2D', 'GlobalMaxPool2D']);
const SIGN = new Set(['SteSign', 'ApproxSign']);

type BNLayer = ReturnType<typeof tf.layers.batchNormalization>;

/** The comparator of layers[idx] (a mapped layer with `outputs` channels and `activation`), or why there is none. */
export function planComparator(
  layers: readonly tf.layers.Layer[],
  idx: number,
  outputs: number,
  activation: string,
): { comparator: Comparator | null; reason: string | null } {
  const no = (reason: string) => ({ comparator: null, reason });
  if (activation !== 'linear' && activation !== 'relu') return no(`its activation ${activation} does not fold into a comparator (linear or relu do)`);
  const names: string[] = [];
  const pools: { name: string; beforeBn: boolean }[] = [];
  let bn: BNLayer | null = null;
  let terminal: tf.layers.Layer | null = null;
  for (let k = idx + 1; k < layers.length && !terminal; k++) {
    const l = layers[k];
    const cn = l.getClassName();
    names.push(l.name);
    if (IDENTITY.has(cn)) continue;
    if (MAX_POOLS.has(cn)) {
      pools.push({ name: l.name, beforeBn: bn === null });
      continue;
    }
    if (cn === 'BatchNormalization') {
      if (bn) return no(`two BatchNormalization layers (${bn.name}, ${l.name}) before the binary activation`);
      bn = l as BNLayer;
      continue;
    }
    if (l instanceof QuantActivation || l instanceof ThresholdActivation) {
      terminal = l;
      continue;
    }
    return no(`${cn} layer ${l.name} sits between it and the binary activation (only max pools, dropouts and one BatchNormalization fold)`);
  }
  if (!terminal) return no('no binary activation follows');
  // The terminal comparison on its input v: mode, per-channel threshold t and flip fT.
  let mode: ComparatorMode;
  const t = new Float64Array(outputs);
  const fT = new Uint8Array(outputs);
  if (terminal instanceof ThresholdActivation) {
    if (terminal.threshold.length !== outputs) return no(`${terminal.name} has ${terminal.threshold.length} thresholds for ${outputs} channels`);
    mode = terminal.mode;
    t.set(terminal.threshold);
    fT.set(terminal.flip);
  } else {
    const q = (terminal as QuantActivation).quantizer;
    if (SIGN.has(q.className)) mode = 'sign';
    else if (q.className === 'SteHeaviside') {
      mode = 'step';
      t.fill(Number((q.toSpec().config as { threshold?: number }).threshold ?? 0.5));
    } else return no(`the binary activation ${terminal.name} (${q.className}) is not a sign or a step`);
  }
  // Fold the BN: v = gamma (u - mean) / sd + beta.
  const tau = new Float64Array(outputs);
  const flip = new Uint8Array(outputs);
  /** +1 always on, -1 always off, 0 a real comparison. */
  const constant = new Int8Array(outputs);
  let fB = new Uint8Array(outputs);
  if (bn) {
    let p;
    try {
      p = batchNormParams(bn);
    } catch (e) {
      return no((e as ConfigError).message);
    }
    if (p.movingMean.length !== outputs) return no(`${bn.name} has ${p.movingMean.length} channels, the layer ${outputs}`);
    fB = new Uint8Array(outputs);
    for (let c = 0; c < outputs; c++) {
      const gamma = p.gamma ? p.gamma[c] : 1;
      const beta = p.beta ? p.beta[c] : 0;
      const sd = Math.sqrt(p.movingVariance[c] + p.epsilon);
      if (gamma === 0) {
        const up = fT[c] ? (mode === 'sign' ? beta <= t[c] : beta < t[c]) : mode === 'sign' ? beta >= t[c] : beta > t[c];
        constant[c] = up ? 1 : -1;
        continue;
      }
      tau[c] = p.movingMean[c] + ((t[c] - beta) * sd) / gamma;
      fB[c] = gamma < 0 ? 1 : 0;
    }
  } else tau.set(t);
  for (let c = 0; c < outputs; c++) flip[c] = fB[c] ^ fT[c];
  // Fold a ReLU: the comparison of relu(y) with tau as one of y.
  if (activation === 'relu') {
    for (let c = 0; c < outputs; c++) {
      if (constant[c]) continue;
      const th = tau[c];
      const strict = mode === 'step';
      if (!flip[c]) {
        // relu(y) >= th (> th): below zero it always holds
        if (strict ? th < 0 : th <= 0) constant[c] = 1;
      } else if (strict ? th <= 0 : th < 0) constant[c] = -1; // relu(y) <= th (< th) never holds
    }
  }
  const thresholds = new Float32Array(outputs);
  for (let c = 0; c < outputs; c++) {
    if (constant[c]) {
      // Always on: y >= -MAX (flipped: y <= +MAX); always off: the other way round.
      const up = constant[c] === 1;
      thresholds[c] = (up !== !!flip[c]) ? -FLOAT32_MAX : FLOAT32_MAX;
    } else thresholds[c] = Math.max(-FLOAT32_MAX, Math.min(FLOAT32_MAX, tau[c]));
  }
  const minPool = new Map<string, Uint8Array>();
  for (const pool of pools) minPool.set(pool.name, pool.beforeBn ? flip.slice() : fT.slice());
  return { comparator: { mode, thresholds, flip, layers: names, minPool }, reason: null };
}

/**
 * The comparator decisions of y [..., channels] (the pre-activation layer output): +-1 (sign) or
 * 1/0 (step) per element, as tf ops.
 */
export function compareTensor(y: tf.Tensor, c: Comparator): tf.Tensor {
  return tf.tidy(() => {
    // A flipped comparison as the plain one of -y with -threshold (negation is exact): no tf.where
    // on booleans, which the wasm backend (4.22) computes wrongly and past its output buffer.
    const flips = c.flip.some((f) => f);
    const u = flips ? tf.mul(y, tf.tensor1d(Float32Array.from(c.flip, (f) => (f ? -1 : 1)))) : y;
    const t = tf.tensor1d(flips ? Float32Array.from(c.thresholds, (v, j) => (c.flip[j] ? -v : v)) : c.thresholds);
    const b = tf.cast(c.mode === 'sign' ? tf.greaterEqual(u, t) : tf.greater(u, t), 'float32');
    return c.mode === 'sign' ? tf.sub(tf.mul(b, 2), 1) : b;
  });
}

/**
 * Applies one of the comparator's replaced layers to the decisions d: a max pool pools them (a
 * min pool on the channels its minPool marks), every other layer (dropout, BN, the activation)
 * is already in the comparison and passes d through.
 */
export function applyReplaced(layer: tf.layers.Layer, d: tf.Tensor, c: Comparator): tf.Tensor {
  const mins = c.minPool.get(layer.name);
  if (!mins) return d;
  return tf.tidy(() => {
    if (!mins.some((v) => v)) return layer.apply(d, { training: false }) as tf.Tensor;
    const s = tf.tensor1d(Float32Array.from(mins, (v) => (v ? -1 : 1)));
    const pooled = layer.apply(tf.mul(d, s), { training: false }) as tf.Tensor;
    // +0 turns the -0 of a pooled 0 on a negated channel into 0
    return tf.add(tf.mul(pooled, s), 0);
  });
}

/**
 * The reference current (uA) of each column's comparator, for the lab (see the top of this file):
 * W is the layer's weight matrix (rows x outputs), bias its bias or null.
 */
export function comparatorReferenceUA(
  c: Pick<Comparator, 'thresholds'>,
  W: Float32Array,
  rows: number,
  outputs: number,
  bias: ArrayLike<number> | null,
  signedInputs: boolean,
  weightScale: number,
  readVoltage: number,
): Float32Array {
  const out = new Float32Array(outputs);
  for (let j = 0; j < outputs; j++) {
    const tau = c.thresholds[j];
    if (Math.abs(tau) >= FLOAT32_MAX) {
      out[j] = tau;
      continue;
    }
    let z = tau - (bias ? bias[j] : 0);
    if (signedInputs) {
      let s = 0;
      for (let i = 0; i < rows; i++) s += W[i * outputs + j];
      z = (z + s) / 2;
    }
    out[j] = Math.max(-FLOAT32_MAX, Math.min(FLOAT32_MAX, (z * readVoltage) / weightScale));
  }
  return out;
}

/** The manifest form of a comparator (JSON: plain arrays), with the reference currents. */
export function comparatorEntry(c: Comparator, referenceUA: Float32Array): Record<string, unknown> {
  return {
    mode: c.mode,
    thresholds: Array.from(c.thresholds),
    flip: Array.from(c.flip),
    referenceUA: Array.from(referenceUA),
    layers: [...c.layers],
    units: {
      thresholds: "layer output units: the pre-activation W.x + b at which each column's comparator switches",
      referenceUA:
        'uA: the same threshold as the column (pair) current I+ - I- for inputs read at full scale (read.voltage for an input of 1); ' +
        '+-1 inputs: interior positions (the constant-sign offset over every row)',
      flip: "1: the comparison is reversed (output +1 / 1 where the current is at or below the reference)",
    },
  };
}

type Obj = Record<string, unknown>;

/**
 * Reads a manifest layer entry's `comparator` against the model's plan for the layer (`plan`, null
 * where the model has no comparator there). fail(field, problem) throws naming manifest.json;
 * `field` is the entry's field path. Returns the comparator inference uses: the manifest's
 * thresholds and flips, the plan's layers and pools. With `checkModel`, thresholds, flips and mode
 * must be what the model's BN and activation give (a manifest of another model is refused).
 */
export function readComparatorEntry(
  raw: unknown,
  field: string,
  plan: { comparator: Comparator | null; reason: string | null },
  ref: (c: Pick<Comparator, 'thresholds'>) => Float32Array,
  fail: (field: string, problem: string) => never,
  checkModel: boolean,
): Comparator {
  const show = (v: unknown) => {
    const s = v === undefined ? 'nothing' : JSON.stringify(v) ?? String(v);
    return s.length > 60 ? s.slice(0, 57) + '...' : s;
  };
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) fail(field, `must be an object {mode, thresholds, flip, referenceUA, layers, units}, got ${show(raw)}`);
  const o = raw as Obj;
  if (!plan.comparator) fail(field, `the model has no comparator after this layer (${plan.reason})`);
  const p = plan.comparator!;
  const n = p.thresholds.length;
  if (o.mode !== 'sign' && o.mode !== 'step') fail(`${field}.mode`, `must be 'sign' or 'step', got ${show(o.mode)}`);
  const numbers = (key: string, check: (v: number) => string | null): Float32Array => {
    const a = o[key];
    if (!Array.isArray(a)) fail(`${field}.${key}`, a === undefined ? 'missing' : `must be an array of ${n} numbers, got ${show(a)}`);
    const arr = a as unknown[];
    if (arr.length !== n) fail(`${field}.${key}`, `has ${arr.length} values, the layer has ${n} output columns`);
    const out = new Float32Array(n);
    arr.forEach((v, j) => {
      if (typeof v !== 'number' || !Number.isFinite(v)) fail(`${field}.${key}[${j}]`, `must be a finite number, got ${show(v)}`);
      const problem = check(v as number);
      if (problem) fail(`${field}.${key}[${j}]`, problem);
      out[j] = v as number;
    });
    return out;
  };
  const thresholds = numbers('thresholds', (v) => (Math.abs(v) > FLOAT32_MAX ? `${v} is outside the float32 range` : null));
  const flip = Uint8Array.from(numbers('flip', (v) => (v === 0 || v === 1 ? null : `must be 0 or 1, got ${v}`)));
  const refUA = numbers('referenceUA', () => null);
  const layers = o.layers;
  if (!Array.isArray(layers) || layers.join('\n') !== p.layers.join('\n')) {
    fail(`${field}.layers`, `${show(layers)}, but the layers after it in the model that fold into the comparator are ${show(p.layers)}`);
  }
  const want = ref({ thresholds });
  for (let j = 0; j < n; j++) {
    if (!close(refUA[j], want[j])) fail(`${field}.referenceUA[${j}]`, `${refUA[j]} uA, but thresholds[${j}] = ${thresholds[j]} gives ${want[j]} uA (the reference currents follow the thresholds)`);
  }
  if (checkModel) {
    if (o.mode !== p.mode) fail(`${field}.mode`, `'${String(o.mode)}', the model's binary activation gives '${p.mode}'`);
    for (let j = 0; j < n; j++) {
      if (flip[j] !== p.flip[j]) fail(`${field}.flip[${j}]`, `${flip[j]}, the model's BatchNormalization and activation give ${p.flip[j]}: the manifest does not belong to this model`);
      if (!close(thresholds[j], p.thresholds[j])) {
        fail(`${field}.thresholds[${j}]`, `${thresholds[j]}, the model's BatchNormalization and activation give ${p.thresholds[j]}: the manifest does not belong to this model`);
      }
    }
  }
  return { mode: o.mode as ComparatorMode, thresholds, flip, layers: p.layers, minPool: p.minPool };
}

function close(a: number, b: number): boolean {
  return Math.abs(a - b) <= 1e-5 * Math.max(1, Math.abs(a), Math.abs(b));
}
