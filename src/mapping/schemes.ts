// Weights to conductances and back: the mapping schemes, the unrolled weight matrix of a layer,
// and Chen et al.'s constant-sign transform for +-1 inputs.
//
// A layer's weight matrix W has `rows` inputs and `outputs` columns (row-major, W[i * outputs + j]):
//   dense:  rows = input features, in order.
//   conv2d: rows = kh * kw * cin, unrolled CHANNEL-MAJOR: row r = c * (kh * kw) + i * kw + j for
//           input channel c and kernel position (i, j). A contiguous run of rows is then a run of
//           whole input channels (plus part of one channel at either end), so the convolution of
//           one row tile is a convolution over a slice of the input channels: no work is wasted on
//           the rows other tiles hold (the "fixed-kernel method" of Park et al.: each kernel is a
//           column, the unrolled 3x3 patches are applied to the rows one after another).
//   Biases are not in W: they stay digital (added after the arrays).
//
// Schemes (weight -> target conductance, uS), with wScale = max|W| of the layer:
//   'differential' (MemTorch's double column): two devices per weight in adjacent columns,
//       G+ = gMin + max(w, 0) / wScale * (gMax - gMin),  G- = gMin + max(-w, 0) / wScale * (gMax - gMin);
//       the pair current is I+ - I-, and w = weightScale * (G+ - G-), weightScale = wScale / (gMax - gMin).
//       The layer's conductance matrix has 2 * outputs columns: column 2j is G+ of output j, 2j + 1 its G-.
//   'reference': one device per weight and one reference column per array at the mid conductance
//       gRef (the device level nearest (gMin + gMax) / 2), whose current is subtracted from every column:
//       G = gRef + w / wScale * span, span = min(gRef - gMin, gMax - gRef); w = weightScale * (G - gRef),
//       weightScale = wScale / span. With continuous levels (or an odd number) gRef is the exact middle and
//       G = gMin + (w + wScale) / (2 wScale) * (gMax - gMin).
// Targets are then rounded to the device's levels (quantizeToLevels).
import type { DeviceConfig } from '../device/config';
import { ConfigError } from '../errors';
import { quantizeToLevels } from '../programming/pulse';

export const SCHEMES = ['differential', 'reference'] as const;
export type Scheme = (typeof SCHEMES)[number];

/** How the rows of a conv layer's weight matrix are ordered (stored in the manifest). */
export const CONV_ROW_ORDER = 'channel-major: row = c*kh*kw + i*kw + j (input channel c, kernel row i, kernel column j)';

/** Devices a weight occupies in the layer's conductance matrix (the reference column is extra, per array). */
export function devicesPerWeight(scheme: Scheme): number {
  return scheme === 'differential' ? 2 : 1;
}

export function checkScheme(scheme: unknown, field = 'scheme'): Scheme {
  if (typeof scheme !== 'string' || !(SCHEMES as readonly string[]).includes(scheme)) {
    throw new ConfigError(field, `must be one of ${SCHEMES.join(', ')}, got ${JSON.stringify(scheme)}`);
  }
  return scheme as Scheme;
}

/** max|W|, or 1 for an all-zero (or empty) matrix so that the scale stays positive. */
export function weightRange(W: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < W.length; i++) {
    const a = Math.abs(W[i]);
    if (a > m) m = a;
  }
  return m > 0 && Number.isFinite(m) ? m : 1;
}

/** The reference conductance and the span around it of the 'reference' scheme. */
export function referenceLevel(device: DeviceConfig): { gRef: number; span: number } {
  const mid = new Float32Array([(device.gMin + device.gMax) / 2]);
  const gRef = quantizeToLevels(mid, device)[0];
  const span = Math.min(gRef - device.gMin, device.gMax - gRef);
  if (!(span > 0)) throw new ConfigError('levels', `the reference scheme needs a level strictly inside the window, got gRef ${gRef}`);
  return { gRef, span };
}

/** The result of mapping one layer's weight matrix. */
export interface LayerConductances {
  scheme: Scheme;
  rows: number;
  outputs: number;
  /** max|W| the mapping used. */
  wScale: number;
  /** Weight units per uS of conductance difference: w = weightScale * (G+ - G-) or weightScale * (G - gRef). */
  weightScale: number;
  /** The reference conductance ('reference' scheme), else null. */
  gRef: number | null;
  /** Target conductances, rows x (devicesPerWeight * outputs), row-major, uS, on the device's levels. */
  targets: Float32Array;
}

/**
 * Target conductances of a weight matrix (rows x outputs, row-major). `wScale` defaults to max|W|;
 * `quantize` (default true) rounds the targets to the device's levels.
 */
export function mapWeights(
  W: ArrayLike<number>,
  rows: number,
  outputs: number,
  device: DeviceConfig,
  scheme: Scheme,
  opts: { wScale?: number; quantize?: boolean } = {},
): LayerConductances {
  if (W.length !== rows * outputs) throw new RangeError(`W has ${W.length} values, ${rows}x${outputs} needs ${rows * outputs}`);
  const wScale = opts.wScale ?? weightRange(W);
  if (!(wScale > 0) || !Number.isFinite(wScale)) throw new RangeError(`wScale must be a finite number > 0, got ${wScale}`);
  const { gMin, gMax } = device;
  const win = gMax - gMin;
  let targets: Float32Array;
  let weightScale: number;
  let gRef: number | null = null;
  if (scheme === 'differential') {
    targets = new Float32Array(rows * outputs * 2);
    const k = win / wScale;
    for (let i = 0; i < rows * outputs; i++) {
      const w = W[i];
      if (Number.isNaN(w)) throw new RangeError(`weight ${i} is NaN`);
      targets[2 * i] = gMin + (w > 0 ? w : 0) * k;
      targets[2 * i + 1] = gMin + (w < 0 ? -w : 0) * k;
    }
    weightScale = wScale / win;
  } else {
    const ref = referenceLevel(device);
    gRef = ref.gRef;
    targets = new Float32Array(rows * outputs);
    const k = ref.span / wScale;
    for (let i = 0; i < rows * outputs; i++) {
      const w = W[i];
      if (Number.isNaN(w)) throw new RangeError(`weight ${i} is NaN`);
      targets[i] = ref.gRef + w * k;
    }
    weightScale = wScale / ref.span;
  }
  if (opts.quantize ?? true) quantizeToLevels(targets, device, targets);
  else {
    for (let i = 0; i < targets.length; i++) targets[i] = Math.min(gMax, Math.max(gMin, targets[i]));
  }
  return { scheme, rows, outputs, wScale, weightScale, gRef, targets };
}

/**
 * Weights from a conductance matrix laid out as LayerConductances.targets (rows x dpw*outputs):
 * differential w = weightScale (G+ - G-), reference w = weightScale (G - gRef) with a scalar gRef
 * or a per-row reference column (length rows).
 */
export function conductancesToWeights(
  G: ArrayLike<number>,
  rows: number,
  outputs: number,
  scheme: Scheme,
  weightScale: number,
  gRef: number | ArrayLike<number> | null = null,
): Float32Array {
  const W = new Float32Array(rows * outputs);
  if (scheme === 'differential') {
    if (G.length !== rows * outputs * 2) throw new RangeError(`G has ${G.length} values, ${rows}x${2 * outputs} needs ${rows * outputs * 2}`);
    for (let i = 0; i < rows * outputs; i++) W[i] = weightScale * (G[2 * i] - G[2 * i + 1]);
  } else {
    if (G.length !== rows * outputs) throw new RangeError(`G has ${G.length} values, ${rows}x${outputs} needs ${rows * outputs}`);
    if (gRef == null) throw new RangeError('the reference scheme needs gRef');
    for (let r = 0; r < rows; r++) {
      const ref = typeof gRef === 'number' ? gRef : gRef[r];
      for (let j = 0; j < outputs; j++) W[r * outputs + j] = weightScale * (G[r * outputs + j] - ref);
    }
  }
  return W;
}

// ---------------------------------------------------------------------------------------------
// Unrolling

/** A conv kernel [kh, kw, cin, cout] (HWIO, tfjs layout) -> its weight matrix (kh*kw*cin) x cout, channel-major rows. */
export function unrollConvKernel(kernel: ArrayLike<number>, shape: readonly number[]): Float32Array {
  const [kh, kw, cin, cout] = shape;
  if (shape.length !== 4 || kernel.length !== kh * kw * cin * cout) throw new RangeError(`kernel of ${kernel.length} values does not have shape ${JSON.stringify(shape)}`);
  const W = new Float32Array(kernel.length);
  for (let i = 0; i < kh; i++) {
    for (let j = 0; j < kw; j++) {
      for (let c = 0; c < cin; c++) {
        const src = ((i * kw + j) * cin + c) * cout;
        const dst = (c * kh * kw + i * kw + j) * cout;
        for (let o = 0; o < cout; o++) W[dst + o] = kernel[src + o];
      }
    }
  }
  return W;
}

/** The inverse of unrollConvKernel: a (kh*kw*cin) x cout matrix -> a [kh, kw, cin, cout] kernel. */
export function rollConvKernel(W: ArrayLike<number>, shape: readonly number[]): Float32Array {
  const [kh, kw, cin, cout] = shape;
  if (shape.length !== 4 || W.length !== kh * kw * cin * cout) throw new RangeError(`matrix of ${W.length} values does not fit shape ${JSON.stringify(shape)}`);
  const K = new Float32Array(W.length);
  for (let i = 0; i < kh; i++) {
    for (let j = 0; j < kw; j++) {
      for (let c = 0; c < cin; c++) {
        const dst = ((i * kw + j) * cin + c) * cout;
        const src = (c * kh * kw + i * kw + j) * cout;
        for (let o = 0; o < cout; o++) K[dst + o] = W[src + o];
      }
    }
  }
  return K;
}

/** The input channels a run of rows [rowStart, rowStart + rows) of a channel-major conv matrix touches. */
export function convRowChannels(rowStart: number, rows: number, kh: number, kw: number): { c0: number; c1: number } {
  const taps = kh * kw;
  return { c0: Math.floor(rowStart / taps), c1: Math.floor((rowStart + rows - 1) / taps) + 1 };
}

/**
 * The kernel [kh, kw, c1 - c0, cout] of one row tile of a channel-major conv matrix: `Wtile` holds
 * the tile's rows (rows x cout, row-major), which are rows [rowStart, rowStart + rows) of the layer.
 * Entries of the channels c0..c1-1 that belong to other tiles are zero, so the convolution of the
 * input channels c0..c1-1 with this kernel is the partial sum of the tile.
 */
export function rowTileKernel(
  Wtile: ArrayLike<number>,
  shape: readonly number[],
  rowStart: number,
  rows: number,
): { kernel: Float32Array; shape: [number, number, number, number]; c0: number; c1: number } {
  const [kh, kw, , cout] = shape;
  if (Wtile.length !== rows * cout) throw new RangeError(`tile matrix has ${Wtile.length} values, ${rows}x${cout} needs ${rows * cout}`);
  const { c0, c1 } = convRowChannels(rowStart, rows, kh, kw);
  const nc = c1 - c0;
  const K = new Float32Array(kh * kw * nc * cout);
  for (let r = rowStart; r < rowStart + rows; r++) {
    const c = Math.floor(r / (kh * kw));
    const t = r % (kh * kw);
    const dst = (t * nc + (c - c0)) * cout;
    const src = (r - rowStart) * cout;
    for (let o = 0; o < cout; o++) K[dst + o] = Wtile[src + o];
  }
  return { kernel: K, shape: [kh, kw, nc, cout], c0, c1 };
}

// ---------------------------------------------------------------------------------------------
// Chen et al.'s constant-sign transform

/**
 * For inputs x in {-1, +1}: x = 2b - 1 with b in {0, 1}, so w.x = 2 (w.b) - sum(w). The arrays see
 * only the 0/1 voltages b (one sign at every port) and the periphery computes 2 (w.b) minus a
 * per-column offset sum_i w_ij. Returns that offset (one per output).
 */
export function constantSignOffsets(W: ArrayLike<number>, rows: number, outputs: number): Float64Array {
  const off = new Float64Array(outputs);
  for (let i = 0; i < rows; i++) for (let j = 0; j < outputs; j++) off[j] += W[i * outputs + j];
  return off;
}

/** +-1 inputs -> the 0/1 voltages of the constant-sign transform. */
export function toConstantSign(x: ArrayLike<number>): Float32Array {
  const b = new Float32Array(x.length);
  for (let i = 0; i < x.length; i++) b[i] = x[i] > 0 ? 1 : 0;
  return b;
}

/**
 * Dot products of +-1 inputs (n x rows) with W (rows x outputs) computed the constant-sign way:
 * 2 (b . W) - offset. Equal to x . W.
 */
export function constantSignDot(x: ArrayLike<number>, n: number, W: ArrayLike<number>, rows: number, outputs: number): Float64Array {
  const b = toConstantSign(x);
  const off = constantSignOffsets(W, rows, outputs);
  const y = new Float64Array(n * outputs);
  for (let s = 0; s < n; s++) {
    for (let i = 0; i < rows; i++) {
      const v = b[s * rows + i];
      if (v === 0) continue;
      for (let j = 0; j < outputs; j++) y[s * outputs + j] += v * W[i * outputs + j];
    }
    for (let j = 0; j < outputs; j++) y[s * outputs + j] = 2 * y[s * outputs + j] - off[j];
  }
  return y;
}
