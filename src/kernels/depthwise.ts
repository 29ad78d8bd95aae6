// Gradients of a depthwise convolution in NHWC on typed arrays (the wasm backend has neither;
// src/kernels/wasm.ts runs these on its heap). Filter [kh, kw, C, M]: output channel c*M + m is
//   y[b, oy, ox, c*M + m] = sum_{i, j} x[b, oy*sh + i*dh - top, ox*sw + j*dw - left, c] f[i, j, c, m]
// so both gradients are per-channel sums over the same (output pixel, tap) pairs the forward
// visits; taps in the padding are skipped. Loops: output rows, taps, then the output columns whose
// tap lands inside the input (geometry.validRange), channels innermost (contiguous in NHWC).
import { ConvGeometry, columnRanges } from './geometry';

function multiplier(g: ConvGeometry): number {
  const M = g.outC / g.inC;
  if (!Number.isInteger(M) || M < 1) throw new Error(`depthwise geometry: ${g.outC} output channels is not a multiple of ${g.inC} input channels`);
  return M;
}

/** dx[b, iy, ix, c] = sum over (pixel, tap) pairs reaching it of sum_m dy[..., c*M + m] f[i, j, c, m]. dx is overwritten. */
export function depthwiseBackpropInput(dy: Float32Array, f: Float32Array, g: ConvGeometry, dx: Float32Array): Float32Array {
  const { batch, inH, inW, inC: C, outH, outW, outC, kh, kw, sh, sw, dh, dw, top, left } = g;
  const M = multiplier(g);
  const cols = columnRanges(g);
  dx.fill(0, 0, batch * inH * inW * C);
  for (let b = 0; b < batch; b++) {
    for (let oy = 0; oy < outH; oy++) {
      for (let i = 0; i < kh; i++) {
        const iy = oy * sh + i * dh - top;
        if (iy < 0 || iy >= inH) continue;
        for (let j = 0; j < kw; j++) {
          const lo = cols[2 * j];
          const hi = cols[2 * j + 1];
          const fp = (i * kw + j) * outC;
          let xp = ((b * inH + iy) * inW + lo * sw + j * dw - left) * C;
          let dp = ((b * outH + oy) * outW + lo) * outC;
          for (let ox = lo; ox < hi; ox++, xp += sw * C, dp += outC) {
            if (M === 1) {
              for (let c = 0; c < C; c++) dx[xp + c] += dy[dp + c] * f[fp + c];
            } else {
              for (let c = 0; c < C; c++) {
                let s = 0;
                for (let m = 0; m < M; m++) s += dy[dp + c * M + m] * f[fp + c * M + m];
                dx[xp + c] += s;
              }
            }
          }
        }
      }
    }
  }
  return dx;
}

/** dw[i, j, c, m] = sum over output pixels of x[tap (i, j) of the pixel, c] dy[pixel, c*M + m] (float64 sums). */
export function depthwiseBackpropFilter(x: Float32Array, dy: Float32Array, g: ConvGeometry, dw: Float32Array): Float32Array {
  const { batch, inH, inW, inC: C, outH, outW, outC, kh, kw, sh, sw, dh, dw: dil, top, left } = g;
  const M = multiplier(g);
  const cols = columnRanges(g);
  const acc = new Float64Array(kh * kw * outC);
  for (let b = 0; b < batch; b++) {
    for (let oy = 0; oy < outH; oy++) {
      for (let i = 0; i < kh; i++) {
        const iy = oy * sh + i * dh - top;
        if (iy < 0 || iy >= inH) continue;
        for (let j = 0; j < kw; j++) {
          const lo = cols[2 * j];
          const hi = cols[2 * j + 1];
          const ap = (i * kw + j) * outC;
          let xp = ((b * inH + iy) * inW + lo * sw + j * dil - left) * C;
          let dp = ((b * outH + oy) * outW + lo) * outC;
          for (let ox = lo; ox < hi; ox++, xp += sw * C, dp += outC) {
            if (M === 1) {
              for (let c = 0; c < C; c++) acc[ap + c] += x[xp + c] * dy[dp + c];
            } else {
              for (let c = 0; c < C; c++) {
                const xv = x[xp + c];
                for (let m = 0; m < M; m++) acc[ap + c * M + m] += xv * dy[dp + c * M + m];
              }
            }
          }
        }
      }
    }
  }
  for (let k = 0; k < acc.length; k++) dw[k] = acc[k];
  return dw;
}
