// Patch matrices of an NHWC convolution, for the images b0..b1-1 of a batch. A patch row (one
// output pixel) lists its taps in the filter's own order (i, j, c), so that row k of a filter
// reshaped to [kh*kw*inC, outC] multiplies column k. Taps in the padding are zeros.
import { ConvGeometry, columnRanges } from './geometry';

/** Row-major patches P[n, k]: n = output pixel (b, oy, ox) of images b0..b1-1, k = (i, j, c). */
export function im2col(x: Float32Array, g: ConvGeometry, b0: number, b1: number, out: Float32Array): Float32Array {
  const { inH, inW, inC, outH, outW, kh, kw, sh, sw, dh, dw, top, left } = g;
  const K = kh * kw * inC;
  const rows = (b1 - b0) * outH * outW;
  out.fill(0, 0, rows * K);
  const cr = columnRanges(g);
  const srcStep = sw * inC;
  let n = 0;
  for (let b = b0; b < b1; b++) {
    for (let oy = 0; oy < outH; oy++, n += outW) {
      for (let i = 0; i < kh; i++) {
        const iy = oy * sh + i * dh - top;
        if (iy < 0 || iy >= inH) continue;
        const xRow = (b * inH + iy) * inW;
        for (let j = 0; j < kw; j++) {
          const lo = cr[2 * j];
          const hi = cr[2 * j + 1];
          let src = (xRow + lo * sw + j * dw - left) * inC;
          let dst = (n + lo) * K + (i * kw + j) * inC;
          if (inC === 1) {
            for (let ox = lo; ox < hi; ox++, src += srcStep, dst += K) out[dst] = x[src];
          } else {
            for (let ox = lo; ox < hi; ox++, src += srcStep, dst += K) {
              for (let c = 0; c < inC; c++) out[dst + c] = x[src + c];
            }
          }
        }
      }
    }
  }
  return out;
}

/**
 * Transposed patches PT[k, n] (k = (i, j, c), n = output pixel of images b0..b1-1), written row by
 * row so that a matrix product PT * dy needs no transpose flag.
 */
export function im2colT(x: Float32Array, g: ConvGeometry, b0: number, b1: number, out: Float32Array): Float32Array {
  const { inH, inW, inC, outH, outW, kh, kw, sh, sw, dh, dw, top, left } = g;
  const L = (b1 - b0) * outH * outW;
  const cr = columnRanges(g);
  const srcStep = sw * inC;
  for (let i = 0; i < kh; i++) {
    for (let j = 0; j < kw; j++) {
      const lo = cr[2 * j];
      const hi = cr[2 * j + 1];
      for (let c = 0; c < inC; c++) {
        let p = ((i * kw + j) * inC + c) * L;
        for (let b = b0; b < b1; b++) {
          for (let oy = 0; oy < outH; oy++, p += outW) {
            const iy = oy * sh + i * dh - top;
            if (iy < 0 || iy >= inH) {
              for (let ox = 0; ox < outW; ox++) out[p + ox] = 0;
              continue;
            }
            for (let ox = 0; ox < lo; ox++) out[p + ox] = 0;
            let src = ((b * inH + iy) * inW + lo * sw + j * dw - left) * inC + c;
            for (let ox = lo; ox < hi; ox++, src += srcStep) out[p + ox] = x[src];
            for (let ox = hi; ox < outW; ox++) out[p + ox] = 0;
          }
        }
      }
    }
  }
  return out;
}

/** Adds patch gradients dP[n, k] (images b0..b1-1) back onto the input gradient dx (col2im). */
export function col2imAdd(dP: Float32Array, g: ConvGeometry, b0: number, b1: number, dx: Float32Array): Float32Array {
  const { inH, inW, inC, outH, outW, kh, kw, sh, sw, dh, dw, top, left } = g;
  const K = kh * kw * inC;
  const cr = columnRanges(g);
  const dstStep = sw * inC;
  let n = 0;
  for (let b = b0; b < b1; b++) {
    for (let oy = 0; oy < outH; oy++, n += outW) {
      for (let i = 0; i < kh; i++) {
        const iy = oy * sh + i * dh - top;
        if (iy < 0 || iy >= inH) continue;
        const xRow = (b * inH + iy) * inW;
        for (let j = 0; j < kw; j++) {
          const lo = cr[2 * j];
          const hi = cr[2 * j + 1];
          let dst = (xRow + lo * sw + j * dw - left) * inC;
          let src = (n + lo) * K + (i * kw + j) * inC;
          if (inC === 1) {
            for (let ox = lo; ox < hi; ox++, dst += dstStep, src += K) dx[dst] += dP[src];
          } else {
            for (let ox = lo; ox < hi; ox++, dst += dstStep, src += K) {
              for (let c = 0; c < inC; c++) dx[dst + c] += dP[src + c];
            }
          }
        }
      }
    }
  }
  return dx;
}
