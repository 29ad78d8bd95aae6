// Max pooling in NHWC on typed arrays, shared by the wasm and cpu kernels. The gradient goes to ONE
// input per window and channel: the first maximum in row-major window order (as TensorFlow and
// the tfjs cpu backend do), never to every tied maximum. Taps in the padding are skipped, so a
// window of negative values pools to its largest negative value.
import { ConvGeometry } from './geometry';

/** y[b, oy, ox, c] = max over the window; -Infinity for a window with no tap inside the input. */
export function maxPoolForward(x: Float32Array, g: ConvGeometry, out: Float32Array): Float32Array {
  const { batch, inH, inW, inC: C, outH, outW, kh, kw, sh, sw, top, left } = g;
  let o = 0;
  for (let b = 0; b < batch; b++) {
    for (let oy = 0; oy < outH; oy++) {
      const y0 = oy * sh - top;
      const i0 = y0 < 0 ? -y0 : 0;
      const i1 = y0 + kh > inH ? inH - y0 : kh;
      for (let ox = 0; ox < outW; ox++, o += C) {
        const x0 = ox * sw - left;
        const j0 = x0 < 0 ? -x0 : 0;
        const j1 = x0 + kw > inW ? inW - x0 : kw;
        if (i0 >= i1 || j0 >= j1) {
          for (let c = 0; c < C; c++) out[o + c] = -Infinity;
          continue;
        }
        // Taps outer, channels inner (measured 1.2x faster than channels outer here).
        let first = true;
        for (let i = i0; i < i1; i++) {
          let p = ((b * inH + y0 + i) * inW + x0 + j0) * C;
          for (let j = j0; j < j1; j++, p += C) {
            if (first) {
              for (let c = 0; c < C; c++) out[o + c] = x[p + c];
              first = false;
            } else {
              for (let c = 0; c < C; c++) {
                const v = x[p + c];
                if (v > out[o + c]) out[o + c] = v;
              }
            }
          }
        }
      }
    }
  }
  return out;
}

/**
 * dx += dy routed to the first maximum of each window and channel (the caller zeroes dx). With the
 * forward output y, the maximum is found as the first tap equal to it (one well-predicted branch
 * per tap, ~1.5x faster than a running argmax on random data); without y, or where no tap equals y
 * (NaN), by a running argmax with strict >, which keeps the first of tied maxima.
 */
export function maxPoolBackward(x: Float32Array, dy: Float32Array, g: ConvGeometry, dx: Float32Array, y?: Float32Array): Float32Array {
  const { batch, inH, inW, inC: C, outH, outW, kh, kw, sh, sw, top, left } = g;
  const rowStep = inW * C;
  let o = 0;
  for (let b = 0; b < batch; b++) {
    for (let oy = 0; oy < outH; oy++) {
      const y0 = oy * sh - top;
      const i0 = y0 < 0 ? -y0 : 0;
      const i1 = y0 + kh > inH ? inH - y0 : kh;
      for (let ox = 0; ox < outW; ox++, o += C) {
        const x0 = ox * sw - left;
        const j0 = x0 < 0 ? -x0 : 0;
        const j1 = x0 + kw > inW ? inW - x0 : kw;
        if (i0 >= i1 || j0 >= j1) continue;
        const base = ((b * inH + y0 + i0) * inW + x0 + j0) * C;
        const rowEnd = (i1 - i0) * rowStep;
        const colEnd = (j1 - j0) * C;
        for (let c = 0; c < C; c++) {
          const s0 = base + c;
          let at = -1;
          if (y) {
            const m = y[o + c];
            search: for (let r = s0; r < s0 + rowEnd; r += rowStep) {
              for (let p = r; p < r + colEnd; p += C) {
                if (x[p] === m) {
                  at = p;
                  break search;
                }
              }
            }
          }
          if (at < 0) {
            at = s0;
            let best = x[s0];
            for (let r = s0; r < s0 + rowEnd; r += rowStep) {
              for (let p = r; p < r + colEnd; p += C) {
                const v = x[p];
                if (v > best) {
                  best = v;
                  at = p;
                }
              }
            }
          }
          dx[at] += dy[o + c];
        }
      }
    }
  }
  return dx;
}
