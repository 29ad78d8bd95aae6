// AssemblyScript (compiled with conv.ts to wasm/heap_kernels.wasm by build.js here): per-channel
// work on NHWC tensors on the tfjs wasm backend's heap (the module imports it as env.memory),
// driven by src/kernels/wasm_channels.ts: the sums over every axis but the channels (batch-norm
// statistics and their gradients) and elementwise ops between a tensor and one value per channel.
// The backend's own kernels transpose before such a reduction and compute a broadcast index per
// element; here both are single passes. Arguments named like tensors are byte offsets.

/** Rows summed in float32 before their sum joins the float64 totals. */
const PIECE_ROWS: i32 = 256;

// @ts-ignore: decorator
@inline function addToTotals(t: usize, s: v128): void {
  v128.store(t, f64x2.add(v128.load(t), f64x2.promote_low_f32x4(s)));
  v128.store(t, f64x2.add(v128.load(t, 16), f64x2.promote_low_f32x4(v128.shuffle<f32>(s, s, 2, 3, 0, 1))), 16);
}

/**
 * out[c] = float32(scale * sum_n x[n, c]) for x [N, C]: float32 sums over pieces of PIECE_ROWS
 * rows, float64 across pieces (totals: C float64 of scratch).
 */
export function columnSums(x: usize, out: usize, totals: usize, N: i32, C: i32, scale: f64): void {
  memory.fill(totals, 0, <usize>C * 8);
  const row = <usize>C << 2;
  const C4 = C & ~3;
  for (let n0 = 0; n0 < N; n0 += PIECE_ROWS) {
    const n1 = min(N, n0 + PIECE_ROWS);
    let c = 0;
    // Four vectors (16 channels) at a time, row by row.
    for (; c + 16 <= C4; c += 16) {
      let s0 = f32x4.splat(0), s1 = f32x4.splat(0), s2 = f32x4.splat(0), s3 = f32x4.splat(0);
      let p = x + <usize>n0 * row + (<usize>c << 2);
      for (let n = n0; n < n1; n++) {
        s0 = f32x4.add(s0, v128.load(p));
        s1 = f32x4.add(s1, v128.load(p, 16));
        s2 = f32x4.add(s2, v128.load(p, 32));
        s3 = f32x4.add(s3, v128.load(p, 48));
        p += row;
      }
      const t = totals + (<usize>c << 3);
      addToTotals(t, s0);
      addToTotals(t + 32, s1);
      addToTotals(t + 64, s2);
      addToTotals(t + 96, s3);
    }
    for (; c < C4; c += 4) {
      let s0 = f32x4.splat(0);
      let p = x + <usize>n0 * row + (<usize>c << 2);
      for (let n = n0; n < n1; n++) {
        s0 = f32x4.add(s0, v128.load(p));
        p += row;
      }
      addToTotals(totals + (<usize>c << 3), s0);
    }
    for (; c < C; c++) {
      let s: f32 = 0;
      let p = x + <usize>n0 * row + (<usize>c << 2);
      for (let n = n0; n < n1; n++) {
        s += load<f32>(p);
        p += row;
      }
      const t = totals + (<usize>c << 3);
      store<f64>(t, load<f64>(t) + <f64>s);
    }
  }
  for (let c = 0; c < C; c++) store<f32>(out + (<usize>c << 2), <f32>(load<f64>(totals + (<usize>c << 3)) * scale));
}

// @ts-ignore: decorator
@inline function opV(op: i32, a: v128, b: v128): v128 {
  if (op == 0) return f32x4.add(a, b);
  if (op == 1) return f32x4.sub(a, b);
  if (op == 2) return f32x4.mul(a, b);
  return f32x4.div(a, b);
}

// @ts-ignore: decorator
@inline function opS(op: i32, a: f32, b: f32): f32 {
  if (op == 0) return a + b;
  if (op == 1) return a - b;
  if (op == 2) return a * b;
  return a / b;
}

// @ts-ignore: decorator
@inline function rows(op: i32, x: usize, r: usize, out: usize, N: i32, C: i32, rowFirst: bool): void {
  const row = <usize>C << 2;
  const C4 = <usize>(C & ~3) << 2;
  let p = x;
  let q = out;
  for (let n = 0; n < N; n++) {
    let c: usize = 0;
    for (; c < C4; c += 16) {
      const a = v128.load(p + c);
      const b = v128.load(r + c);
      v128.store(q + c, rowFirst ? opV(op, b, a) : opV(op, a, b));
    }
    for (; c < row; c += 4) {
      const a = load<f32>(p + c);
      const b = load<f32>(r + c);
      store<f32>(q + c, rowFirst ? opS(op, b, a) : opS(op, a, b));
    }
    p += row;
    q += row;
  }
}

/**
 * out[n, c] = x[n, c] op r[c] (rowFirst: r[c] op x[n, c]) for x, out [N, C] and r [C];
 * op 0 add, 1 subtract, 2 multiply, 3 divide (float32, as the backend computes each).
 */
export function rowBroadcast(op: i32, x: usize, r: usize, out: usize, N: i32, C: i32, rowFirst: bool): void {
  // One specialised loop per operation (op is a constant inside each).
  if (op == 0) rows(0, x, r, out, N, C, rowFirst);
  else if (op == 1) rows(1, x, r, out, N, C, rowFirst);
  else if (op == 2) rows(2, x, r, out, N, C, rowFirst);
  else rows(3, x, r, out, N, C, rowFirst);
}

/**
 * out[n, c] = (x[n, c] - mean[c]) * factor[c] + offset[c] for x, out [N, C]: batch normalization
 * with factor = scale / sqrt(variance + epsilon) prepared per channel by the caller.
 */
export function normalize(x: usize, mean: usize, factor: usize, offset: usize, out: usize, N: i32, C: i32): void {
  const row = <usize>C << 2;
  const C4 = <usize>(C & ~3) << 2;
  let p = x;
  let q = out;
  for (let n = 0; n < N; n++) {
    let c: usize = 0;
    for (; c < C4; c += 16) {
      const v = f32x4.sub(v128.load(p + c), v128.load(mean + c));
      v128.store(q + c, f32x4.add(f32x4.mul(v, v128.load(factor + c)), v128.load(offset + c)));
    }
    for (; c < row; c += 4) store<f32>(q + c, (load<f32>(p + c) - load<f32>(mean + c)) * load<f32>(factor + c) + load<f32>(offset + c));
    p += row;
    q += row;
  }
}
