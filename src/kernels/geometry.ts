// Geometry of 2-D convolutions and poolings in NHWC, from tfjs's own shape rules
// (backend_util.computeConv2DInfo / computePool2DInfo), flattened into plain numbers for the loops.
import { tf } from '../tf';

export type Pad = 'same' | 'valid' | number | [[number, number], [number, number], [number, number], [number, number]];
export type RoundingMode = 'floor' | 'round' | 'ceil' | undefined;
export type Shape4 = [number, number, number, number];

/** One convolution (or pooling window): input [batch, inH, inW, inC], output [batch, outH, outW, outC]. */
export interface ConvGeometry {
  batch: number;
  inH: number;
  inW: number;
  inC: number;
  outH: number;
  outW: number;
  outC: number;
  /** Filter (window) height and width. */
  kh: number;
  kw: number;
  /** Strides. */
  sh: number;
  sw: number;
  /** Dilations (1 for pooling and for the convolution gradients). */
  dh: number;
  dw: number;
  /** Padding before / after each spatial dimension. */
  top: number;
  bottom: number;
  left: number;
  right: number;
}

function fromInfo(info: tf.backend_util.Conv2DInfo): ConvGeometry {
  return {
    batch: info.batchSize,
    inH: info.inHeight,
    inW: info.inWidth,
    inC: info.inChannels,
    outH: info.outHeight,
    outW: info.outWidth,
    outC: info.outChannels,
    kh: info.filterHeight,
    kw: info.filterWidth,
    sh: info.strideHeight,
    sw: info.strideWidth,
    dh: info.dilationHeight,
    dw: info.dilationWidth,
    top: info.padInfo.top,
    bottom: info.padInfo.bottom,
    left: info.padInfo.left,
    right: info.padInfo.right,
  };
}

/** Geometry of conv2d(x, filter) in NHWC; filter [kh, kw, inC, outC] (depthwise: [kh, kw, inC, multiplier]). */
export function convGeometry(
  xShape: number[],
  filterShape: number[],
  strides: number | [number, number],
  dilations: number | [number, number],
  pad: Pad,
  dimRoundingMode?: RoundingMode,
  depthwise = false,
): ConvGeometry {
  return fromInfo(
    tf.backend_util.computeConv2DInfo(xShape as Shape4, filterShape as Shape4, strides, dilations, pad, dimRoundingMode, depthwise, 'channelsLast'),
  );
}

/** Geometry of a 2-D pooling in NHWC (outC = inC). */
export function poolGeometry(
  xShape: number[],
  filterSize: number | [number, number],
  strides: number | [number, number],
  pad: Pad,
  dimRoundingMode?: RoundingMode,
): ConvGeometry {
  return fromInfo(tf.backend_util.computePool2DInfo(xShape as Shape4, filterSize, strides, 1, pad, dimRoundingMode, 'channelsLast'));
}

/** Output columns ox whose input column ox*sw + j*dw - left lies inside [0, inW): [lo, hi). */
export function validRange(out: number, stride: number, offset: number, size: number): [number, number] {
  // offset = j*dw - left; want 0 <= o*stride + offset < size.
  let lo = offset >= 0 ? 0 : Math.ceil(-offset / stride);
  let hi = size - offset <= 0 ? 0 : Math.ceil((size - offset) / stride);
  if (lo > out) lo = out;
  if (hi > out) hi = out;
  if (hi < lo) hi = lo;
  return [lo, hi];
}

/** [lo, hi) of the output columns per filter column j (2 entries each): validRange of every tap column. */
export function columnRanges(g: ConvGeometry): Int32Array {
  const r = new Int32Array(2 * g.kw);
  for (let j = 0; j < g.kw; j++) {
    const [lo, hi] = validRange(g.outW, g.sw, j * g.dw - g.left, g.inW);
    r[2 * j] = lo;
    r[2 * j + 1] = hi;
  }
  return r;
}

/**
 * Geometry of depthwiseConv2d(x, filter) in NHWC; filter [kh, kw, inC, multiplier]. outC is
 * inC * multiplier: output channel c * multiplier + m comes from input channel c.
 */
export function depthwiseGeometry(
  xShape: number[],
  filterShape: number[],
  strides: number | [number, number],
  dilations: number | [number, number],
  pad: Pad,
  dimRoundingMode?: RoundingMode,
): ConvGeometry {
  return convGeometry(xShape, filterShape, strides, dilations, pad, dimRoundingMode, true);
}
