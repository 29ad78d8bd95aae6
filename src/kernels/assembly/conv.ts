// AssemblyScript (compiled with channels.ts to wasm/heap_kernels.wasm by build.js here):
// WebAssembly SIMD convolution and max-pool-gradient kernels for the tfjs wasm backend, driven by
// src/kernels/wasm_simd.ts. The module imports the backend's own memory (env.memory) and works on
// tensors where they lie: every argument named like a tensor is a byte offset into that heap.
// Nothing here allocates (no data segments, no runtime heap); scratch space comes from the caller.
//
// All tensors are NHWC float32. The convolutions take their input already zero-padded (pad() below
// writes the padded copy), so the inner loops have no bounds tests. Four output channels go through
// one 128-bit vector: the output-channel count must be a multiple of 4 (the caller checks).

// ---------------------------------------------------------------------------------------------
// Zero padding (and, for the input gradient of a strided convolution, spreading)

/**
 * dst[b, y*sy + top, x*sx + left, :] = src[b, y, x, :] for the rows and columns that land inside
 * dst [batch, Hd, Wd, C]; everything else in dst is zero. sy = sx = 1 is plain zero padding;
 * larger steps spread the values apart (the zeros between them stand for a stride).
 */
export function pad(src: usize, dst: usize, batch: i32, H: i32, W: i32, C: i32, Hd: i32, Wd: i32, top: i32, left: i32, sy: i32, sx: i32): void {
  memory.fill(dst, 0, <usize>batch * <usize>Hd * <usize>Wd * <usize>C * 4);
  const px = <usize>C << 2;
  for (let b = 0; b < batch; b++) {
    for (let y = 0; y < H; y++) {
      const r = y * sy + top;
      if (r < 0 || r >= Hd) continue;
      const s = src + <usize>((b * H + y) * W) * px;
      const d = dst + <usize>((b * Hd + r) * Wd) * px;
      if (sx == 1 && left >= 0 && W + left <= Wd) {
        memory.copy(d + <usize>left * px, s, <usize>W * px);
        continue;
      }
      for (let x = 0; x < W; x++) {
        const q = x * sx + left;
        if (q < 0 || q >= Wd) continue;
        memory.copy(d + <usize>q * px, s + <usize>x * px, px);
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Forward convolution on a padded input

// @ts-ignore: decorator
@inline function fma(acc: v128, a: v128, b: v128): v128 {
  return f32x4.add(acc, f32x4.mul(a, b));
}

/**
 * Four neighbouring output pixels (xs: the first one's top-left tap; ps: bytes between pixels) by
 * eight output channels (wo: the filter at the first of them; ys: the first pixel's output).
 * Eight accumulators: six pixels (twelve) measured 1.2-1.4x slower in V8 (registers spill).
 */
// @ts-ignore: decorator
@inline function forward4x8(xs: usize, ps: usize, wo: usize, ys: usize, C: i32, kh: i32, kw: i32, rowStep: usize, tapStep: usize, wRow: usize, yStep: usize): void {
  let a00 = f32x4.splat(0), a01 = f32x4.splat(0), a10 = f32x4.splat(0), a11 = f32x4.splat(0);
  let a20 = f32x4.splat(0), a21 = f32x4.splat(0), a30 = f32x4.splat(0), a31 = f32x4.splat(0);
  let wq = wo;
  for (let i = 0; i < kh; i++) {
    for (let j = 0; j < kw; j++) {
      let xq = xs + <usize>i * rowStep + <usize>j * tapStep;
      for (let c = 0; c < C; c++) {
        const w0 = v128.load(wq);
        const w1 = v128.load(wq, 16);
        const x0 = v128.load32_splat(xq);
        const x1 = v128.load32_splat(xq + ps);
        const x2 = v128.load32_splat(xq + 2 * ps);
        const x3 = v128.load32_splat(xq + 3 * ps);
        a00 = fma(a00, x0, w0);
        a01 = fma(a01, x0, w1);
        a10 = fma(a10, x1, w0);
        a11 = fma(a11, x1, w1);
        a20 = fma(a20, x2, w0);
        a21 = fma(a21, x2, w1);
        a30 = fma(a30, x3, w0);
        a31 = fma(a31, x3, w1);
        xq += 4;
        wq += wRow;
      }
    }
  }
  v128.store(ys, a00);
  v128.store(ys, a01, 16);
  v128.store(ys + yStep, a10);
  v128.store(ys + yStep, a11, 16);
  v128.store(ys + 2 * yStep, a20);
  v128.store(ys + 2 * yStep, a21, 16);
  v128.store(ys + 3 * yStep, a30);
  v128.store(ys + 3 * yStep, a31, 16);
}

/** Four output pixels by four output channels. */
// @ts-ignore: decorator
@inline function forward4x4(xs: usize, ps: usize, wo: usize, ys: usize, C: i32, kh: i32, kw: i32, rowStep: usize, tapStep: usize, wRow: usize, yStep: usize): void {
  let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0), a3 = f32x4.splat(0);
  let wq = wo;
  for (let i = 0; i < kh; i++) {
    for (let j = 0; j < kw; j++) {
      let xq = xs + <usize>i * rowStep + <usize>j * tapStep;
      for (let c = 0; c < C; c++) {
        const w0 = v128.load(wq);
        a0 = fma(a0, v128.load32_splat(xq), w0);
        a1 = fma(a1, v128.load32_splat(xq + ps), w0);
        a2 = fma(a2, v128.load32_splat(xq + 2 * ps), w0);
        a3 = fma(a3, v128.load32_splat(xq + 3 * ps), w0);
        xq += 4;
        wq += wRow;
      }
    }
  }
  v128.store(ys, a0);
  v128.store(ys + yStep, a1);
  v128.store(ys + 2 * yStep, a2);
  v128.store(ys + 3 * yStep, a3);
}

/** One output pixel by eight output channels. */
// @ts-ignore: decorator
@inline function forward1x8(xs: usize, wo: usize, ys: usize, C: i32, kh: i32, kw: i32, rowStep: usize, tapStep: usize, wRow: usize): void {
  let a0 = f32x4.splat(0), a1 = f32x4.splat(0);
  let wq = wo;
  for (let i = 0; i < kh; i++) {
    for (let j = 0; j < kw; j++) {
      let xq = xs + <usize>i * rowStep + <usize>j * tapStep;
      for (let c = 0; c < C; c++) {
        const x0 = v128.load32_splat(xq);
        a0 = fma(a0, x0, v128.load(wq));
        a1 = fma(a1, x0, v128.load(wq, 16));
        xq += 4;
        wq += wRow;
      }
    }
  }
  v128.store(ys, a0);
  v128.store(ys, a1, 16);
}

/** One output pixel by four output channels. */
// @ts-ignore: decorator
@inline function forward1x4(xs: usize, wo: usize, ys: usize, C: i32, kh: i32, kw: i32, rowStep: usize, tapStep: usize, wRow: usize): void {
  let a0 = f32x4.splat(0);
  let wq = wo;
  for (let i = 0; i < kh; i++) {
    for (let j = 0; j < kw; j++) {
      let xq = xs + <usize>i * rowStep + <usize>j * tapStep;
      for (let c = 0; c < C; c++) {
        a0 = fma(a0, v128.load32_splat(xq), v128.load(wq));
        xq += 4;
        wq += wRow;
      }
    }
  }
  v128.store(ys, a0);
}

/**
 * y[b, oy, ox, o] = sum_{i, j, c} xp[b, oy*sh + i*dh, ox*sw + j*dw, c] w[i, j, c, o]
 * xp: the padded input [batch, Hp, Wp, C]; w: [kh, kw, C, outC]; y: [batch, outH, outW, outC].
 * Sums run in float32 in the order i, j, c.
 */
export function conv2d(xp: usize, w: usize, y: usize, batch: i32, Hp: i32, Wp: i32, C: i32, outH: i32, outW: i32, outC: i32, kh: i32, kw: i32, sh: i32, sw: i32, dh: i32, dw: i32): void {
  const px = <usize>C << 2;
  const rowBytes = <usize>Wp * px;
  const rowStep = <usize>dh * rowBytes;
  const tapStep = <usize>dw * px;
  const ps = <usize>sw * px;
  const wRow = <usize>outC << 2;
  for (let b = 0; b < batch; b++) {
    for (let oy = 0; oy < outH; oy++) {
      const xrow = xp + <usize>(b * Hp + oy * sh) * rowBytes;
      const yrow = y + <usize>((b * outH + oy) * outW) * wRow;
      let ox = 0;
      for (; ox + 4 <= outW; ox += 4) {
        const xs = xrow + <usize>ox * ps;
        const ys = yrow + <usize>ox * wRow;
        let o = 0;
        for (; o + 8 <= outC; o += 8) forward4x8(xs, ps, w + (<usize>o << 2), ys + (<usize>o << 2), C, kh, kw, rowStep, tapStep, wRow, wRow);
        for (; o < outC; o += 4) forward4x4(xs, ps, w + (<usize>o << 2), ys + (<usize>o << 2), C, kh, kw, rowStep, tapStep, wRow, wRow);
      }
      for (; ox < outW; ox++) {
        const xs = xrow + <usize>ox * ps;
        const ys = yrow + <usize>ox * wRow;
        let o = 0;
        for (; o + 8 <= outC; o += 8) forward1x8(xs, w + (<usize>o << 2), ys + (<usize>o << 2), C, kh, kw, rowStep, tapStep, wRow);
        for (; o < outC; o += 4) forward1x4(xs, w + (<usize>o << 2), ys + (<usize>o << 2), C, kh, kw, rowStep, tapStep, wRow);
      }
    }
  }
}

/** y[p, o] = max(y[p, o] + bias[o], lo) over n values (n a multiple of outC); lo = -Infinity for no ReLU. */
export function biasActivation(y: usize, bias: usize, n: i32, outC: i32, hasBias: bool, lo: f32): void {
  const lov = f32x4.splat(lo);
  const end = y + (<usize>n << 2);
  const oBytes = <usize>outC << 2;
  for (let p = y; p < end; p += oBytes) {
    for (let o: usize = 0; o < oBytes; o += 16) {
      let v = v128.load(p + o);
      if (hasBias) v = f32x4.add(v, v128.load(bias + o));
      v128.store(p + o, f32x4.max(v, lov));
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Filter gradient on a padded input

/**
 * Rows of the filter gradient, K = kh*kw*C of them in the filter's order (i, j, c); row r reads
 * the input at this byte offset from an output pixel's top-left tap (dilation 1).
 */
// @ts-ignore: decorator
@inline function tapOffset(r: i32, C: i32, kw: i32, rowBytes: usize): usize {
  const c = r % C;
  const ij = r / C;
  return <usize>(ij / kw) * rowBytes + (<usize>((ij % kw) * C + c) << 2);
}

/** Output rows of one pass over the pixels: a few thousand pixels, so dy's piece stays in cache. */
const PIECE_PIXELS: i32 = 1024;

/**
 * dW[i, j, c, o] = sum_{b, oy, ox} xp[b, oy*sh + i, ox*sw + j, c] dy[b, oy, ox, o]
 * xp: the padded input [batch, Hp, Wp, C]; dy: [batch, outH, outW, outC]; dW: [kh, kw, C, outC].
 * Float32 sums, per filter entry in pixel order. Blocks of four filter rows by eight output
 * channels stay in registers through a piece of output rows.
 */
export function conv2dFilterGrad(xp: usize, dy: usize, dW: usize, batch: i32, Hp: i32, Wp: i32, C: i32, outH: i32, outW: i32, outC: i32, kh: i32, kw: i32, sh: i32, sw: i32): void {
  const K = kh * kw * C;
  const oBytes = <usize>outC << 2;
  memory.fill(dW, 0, <usize>K * oBytes);
  const px = <usize>C << 2;
  const rowBytes = <usize>Wp * px;
  const ps = <usize>sw * px;
  const rows = batch * outH;
  const piece = max(1, PIECE_PIXELS / max(outW, 1));
  for (let r0 = 0; r0 < rows; r0 += piece) {
    const r1 = min(rows, r0 + piece);
    let r = 0;
    for (; r + 4 <= K; r += 4) {
      const t0 = tapOffset(r, C, kw, rowBytes);
      const t1 = tapOffset(r + 1, C, kw, rowBytes);
      const t2 = tapOffset(r + 2, C, kw, rowBytes);
      const t3 = tapOffset(r + 3, C, kw, rowBytes);
      const g0 = dW + <usize>r * oBytes;
      let o = 0;
      for (; o + 8 <= outC; o += 8) {
        const g = g0 + (<usize>o << 2);
        let a00 = v128.load(g), a01 = v128.load(g, 16);
        let a10 = v128.load(g + oBytes), a11 = v128.load(g + oBytes, 16);
        let a20 = v128.load(g + 2 * oBytes), a21 = v128.load(g + 2 * oBytes, 16);
        let a30 = v128.load(g + 3 * oBytes), a31 = v128.load(g + 3 * oBytes, 16);
        for (let row = r0; row < r1; row++) {
          const b = row / outH;
          const oy = row - b * outH;
          let xq = xp + <usize>(b * Hp + oy * sh) * rowBytes;
          let dq = dy + <usize>row * <usize>outW * oBytes + (<usize>o << 2);
          for (let ox = 0; ox < outW; ox++) {
            const d0 = v128.load(dq);
            const d1 = v128.load(dq, 16);
            const x0 = v128.load32_splat(xq + t0);
            const x1 = v128.load32_splat(xq + t1);
            const x2 = v128.load32_splat(xq + t2);
            const x3 = v128.load32_splat(xq + t3);
            a00 = fma(a00, x0, d0);
            a01 = fma(a01, x0, d1);
            a10 = fma(a10, x1, d0);
            a11 = fma(a11, x1, d1);
            a20 = fma(a20, x2, d0);
            a21 = fma(a21, x2, d1);
            a30 = fma(a30, x3, d0);
            a31 = fma(a31, x3, d1);
            xq += ps;
            dq += oBytes;
          }
        }
        v128.store(g, a00);
        v128.store(g, a01, 16);
        v128.store(g + oBytes, a10);
        v128.store(g + oBytes, a11, 16);
        v128.store(g + 2 * oBytes, a20);
        v128.store(g + 2 * oBytes, a21, 16);
        v128.store(g + 3 * oBytes, a30);
        v128.store(g + 3 * oBytes, a31, 16);
      }
      for (; o < outC; o += 4) {
        const g = g0 + (<usize>o << 2);
        let a0 = v128.load(g), a1 = v128.load(g + oBytes), a2 = v128.load(g + 2 * oBytes), a3 = v128.load(g + 3 * oBytes);
        for (let row = r0; row < r1; row++) {
          const b = row / outH;
          const oy = row - b * outH;
          let xq = xp + <usize>(b * Hp + oy * sh) * rowBytes;
          let dq = dy + <usize>row * <usize>outW * oBytes + (<usize>o << 2);
          for (let ox = 0; ox < outW; ox++) {
            const d0 = v128.load(dq);
            a0 = fma(a0, v128.load32_splat(xq + t0), d0);
            a1 = fma(a1, v128.load32_splat(xq + t1), d0);
            a2 = fma(a2, v128.load32_splat(xq + t2), d0);
            a3 = fma(a3, v128.load32_splat(xq + t3), d0);
            xq += ps;
            dq += oBytes;
          }
        }
        v128.store(g, a0);
        v128.store(g + oBytes, a1);
        v128.store(g + 2 * oBytes, a2);
        v128.store(g + 3 * oBytes, a3);
      }
    }
    for (; r < K; r++) {
      const t0 = tapOffset(r, C, kw, rowBytes);
      const g0 = dW + <usize>r * oBytes;
      for (let o = 0; o < outC; o += 4) {
        const g = g0 + (<usize>o << 2);
        let a0 = v128.load(g);
        for (let row = r0; row < r1; row++) {
          const b = row / outH;
          const oy = row - b * outH;
          let xq = xp + <usize>(b * Hp + oy * sh) * rowBytes + t0;
          let dq = dy + <usize>row * <usize>outW * oBytes + (<usize>o << 2);
          for (let ox = 0; ox < outW; ox++) {
            a0 = fma(a0, v128.load32_splat(xq), v128.load(dq));
            xq += ps;
            dq += oBytes;
          }
        }
        v128.store(g, a0);
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Max-pool gradient

/**
 * dx = dy routed to the first maximum (row-major window order) of each window and channel, found
 * as the first tap equal to the forward output y; a lane where no tap equals y (NaN) takes a
 * running argmax with strict > instead, which keeps the first of tied maxima. Taps in the padding
 * are skipped. x, dx: [batch, inH, inW, C]; y, dy: [batch, outH, outW, C]. dx is overwritten.
 */
export function maxPoolGrad(x: usize, y: usize, dy: usize, dx: usize, batch: i32, inH: i32, inW: i32, C: i32, outH: i32, outW: i32, kh: i32, kw: i32, sh: i32, sw: i32, top: i32, left: i32): void {
  memory.fill(dx, 0, <usize>batch * <usize>inH * <usize>inW * <usize>C * 4);
  const px = <usize>C << 2;
  const rowBytes = <usize>inW * px;
  const C4 = C & ~3;
  for (let b = 0; b < batch; b++) {
    for (let oy = 0; oy < outH; oy++) {
      const y0 = oy * sh - top;
      const i0 = max(0, -y0);
      const i1 = min(kh, inH - y0);
      for (let ox = 0; ox < outW; ox++) {
        const x0 = ox * sw - left;
        const j0 = max(0, -x0);
        const j1 = min(kw, inW - x0);
        if (i0 >= i1 || j0 >= j1) continue;
        const o = <usize>((b * outH + oy) * outW + ox) * px;
        const base = <usize>((b * inH + y0 + i0) * inW + x0 + j0) * px;
        for (let c = 0; c < C4; c += 4) {
          const cb = <usize>c << 2;
          const m = v128.load(y + o + cb);
          const g = v128.load(dy + o + cb);
          let found = i32x4.splat(0);
          for (let i = i0; i < i1; i++) {
            let p = base + <usize>(i - i0) * rowBytes + cb;
            for (let j = j0; j < j1; j++) {
              const hit = v128.andnot(f32x4.eq(v128.load(x + p), m), found);
              v128.store(dx + p, f32x4.add(v128.load(dx + p), v128.and(g, hit)));
              found = v128.or(found, hit);
              p += px;
            }
          }
          if (!i32x4.all_true(found)) {
            const nr = i1 - i0;
            const nc = j1 - j0;
            if (i32x4.extract_lane(found, 0) == 0) argmaxOne(x, dx, base + cb, nr, nc, rowBytes, px, load<f32>(dy + o + cb));
            if (i32x4.extract_lane(found, 1) == 0) argmaxOne(x, dx, base + cb + 4, nr, nc, rowBytes, px, load<f32>(dy + o + cb + 4));
            if (i32x4.extract_lane(found, 2) == 0) argmaxOne(x, dx, base + cb + 8, nr, nc, rowBytes, px, load<f32>(dy + o + cb + 8));
            if (i32x4.extract_lane(found, 3) == 0) argmaxOne(x, dx, base + cb + 12, nr, nc, rowBytes, px, load<f32>(dy + o + cb + 12));
          }
        }
        for (let c = C4; c < C; c++) {
          const cb = <usize>c << 2;
          const m = load<f32>(y + o + cb);
          let at: isize = -1;
          for (let i = i0; i < i1 && at < 0; i++) {
            let p = base + <usize>(i - i0) * rowBytes + cb;
            for (let j = j0; j < j1; j++) {
              if (load<f32>(x + p) == m) {
                at = <isize>p;
                break;
              }
              p += px;
            }
          }
          const g = load<f32>(dy + o + cb);
          if (at >= 0) store<f32>(dx + <usize>at, load<f32>(dx + <usize>at) + g);
          else argmaxOne(x, dx, base + cb, i1 - i0, j1 - j0, rowBytes, px, g);
        }
      }
    }
  }
}

/** dx at the first strict maximum of one window of one channel (first tap at byte offset s) += g. */
function argmaxOne(x: usize, dx: usize, s: usize, rowsN: i32, colsN: i32, rowBytes: usize, px: usize, g: f32): void {
  let at = s;
  let best = load<f32>(x + s);
  for (let i = 0; i < rowsN; i++) {
    let p = s + <usize>i * rowBytes;
    for (let j = 0; j < colsN; j++) {
      const v = load<f32>(x + p);
      if (v > best) {
        best = v;
        at = p;
      }
      p += px;
    }
  }
  store<f32>(dx + at, load<f32>(dx + at) + g);
}

// ---------------------------------------------------------------------------------------------
// Depthwise convolution (channel multiplier 1) on a padded input: forward and filter gradient;
// the input gradient is the forward of the spread, padded output gradient with the filter flipped.

/**
 * y[b, oy, ox, c] = sum_{i, j} xp[b, oy*sh + i*dh, ox*sw + j*dw, c] f[i, j, c]
 * xp: the padded input [batch, Hp, Wp, C]; f: [kh, kw, C]; y: [batch, outH, outW, C]; C a multiple of 4.
 */
export function depthwise(xp: usize, f: usize, y: usize, batch: i32, Hp: i32, Wp: i32, C: i32, outH: i32, outW: i32, kh: i32, kw: i32, sh: i32, sw: i32, dh: i32, dw: i32): void {
  const px = <usize>C << 2;
  const rowBytes = <usize>Wp * px;
  const rowStep = <usize>dh * rowBytes;
  const tapStep = <usize>dw * px;
  const ps = <usize>sw * px;
  let q = y;
  for (let b = 0; b < batch; b++) {
    for (let oy = 0; oy < outH; oy++) {
      let xs = xp + <usize>(b * Hp + oy * sh) * rowBytes;
      for (let ox = 0; ox < outW; ox++) {
        let c: usize = 0;
        for (; c + 64 <= px; c += 64) {
          let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0), a3 = f32x4.splat(0);
          let fq = f + c;
          for (let i = 0; i < kh; i++) {
            let xq = xs + <usize>i * rowStep + c;
            for (let j = 0; j < kw; j++) {
              a0 = fma(a0, v128.load(xq), v128.load(fq));
              a1 = fma(a1, v128.load(xq, 16), v128.load(fq, 16));
              a2 = fma(a2, v128.load(xq, 32), v128.load(fq, 32));
              a3 = fma(a3, v128.load(xq, 48), v128.load(fq, 48));
              xq += tapStep;
              fq += px;
            }
          }
          v128.store(q + c, a0);
          v128.store(q + c, a1, 16);
          v128.store(q + c, a2, 32);
          v128.store(q + c, a3, 48);
        }
        for (; c < px; c += 16) {
          let a0 = f32x4.splat(0);
          let fq = f + c;
          for (let i = 0; i < kh; i++) {
            let xq = xs + <usize>i * rowStep + c;
            for (let j = 0; j < kw; j++) {
              a0 = fma(a0, v128.load(xq), v128.load(fq));
              xq += tapStep;
              fq += px;
            }
          }
          v128.store(q + c, a0);
        }
        xs += ps;
        q += px;
      }
    }
  }
}

/**
 * dF[i, j, c] = sum_{b, oy, ox} xp[b, oy*sh + i*dh, ox*sw + j*dw, c] dy[b, oy, ox, c]
 * xp: the padded input [batch, Hp, Wp, C]; dy: [batch, outH, outW, C]; dF: [kh, kw, C]; C a
 * multiple of 4. Float32 sums per entry in pixel order, 16 channels of one tap in registers
 * through a piece of output rows.
 */
export function depthwiseFilterGrad(xp: usize, dy: usize, dF: usize, batch: i32, Hp: i32, Wp: i32, C: i32, outH: i32, outW: i32, kh: i32, kw: i32, sh: i32, sw: i32, dh: i32, dw: i32): void {
  const px = <usize>C << 2;
  memory.fill(dF, 0, <usize>(kh * kw) * px);
  const rowBytes = <usize>Wp * px;
  const ps = <usize>sw * px;
  const rows = batch * outH;
  const piece = max(1, 1024 / max(outW, 1));
  for (let r0 = 0; r0 < rows; r0 += piece) {
    const r1 = min(rows, r0 + piece);
    for (let i = 0; i < kh; i++) {
      for (let j = 0; j < kw; j++) {
        const g0 = dF + <usize>(i * kw + j) * px;
        const tap = <usize>(i * dh) * rowBytes + <usize>(j * dw) * px;
        let c: usize = 0;
        for (; c + 64 <= px; c += 64) {
          const g = g0 + c;
          let a0 = v128.load(g), a1 = v128.load(g, 16), a2 = v128.load(g, 32), a3 = v128.load(g, 48);
          for (let row = r0; row < r1; row++) {
            const b = row / outH;
            const oy = row - b * outH;
            let xq = xp + <usize>(b * Hp + oy * sh) * rowBytes + tap + c;
            let dq = dy + <usize>row * <usize>outW * px + c;
            for (let ox = 0; ox < outW; ox++) {
              a0 = fma(a0, v128.load(xq), v128.load(dq));
              a1 = fma(a1, v128.load(xq, 16), v128.load(dq, 16));
              a2 = fma(a2, v128.load(xq, 32), v128.load(dq, 32));
              a3 = fma(a3, v128.load(xq, 48), v128.load(dq, 48));
              xq += ps;
              dq += px;
            }
          }
          v128.store(g, a0);
          v128.store(g, a1, 16);
          v128.store(g, a2, 32);
          v128.store(g, a3, 48);
        }
        for (; c < px; c += 16) {
          const g = g0 + c;
          let a0 = v128.load(g);
          for (let row = r0; row < r1; row++) {
            const b = row / outH;
            const oy = row - b * outH;
            let xq = xp + <usize>(b * Hp + oy * sh) * rowBytes + tap + c;
            let dq = dy + <usize>row * <usize>outW * px + c;
            for (let ox = 0; ox < outW; ox++) {
              a0 = fma(a0, v128.load(xq), v128.load(dq));
              xq += ps;
              dq += px;
            }
          }
          v128.store(g, a0);
        }
      }
    }
  }
}
