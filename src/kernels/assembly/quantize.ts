// AssemblyScript (compiled with conv.ts into wasm/heap_kernels.wasm by build.js here): the forward
// pass of layers/quantizers.ts's steUniform, L evenly spaced levels, in one kernel on the tfjs wasm
// backend's heap (driven by src/kernels/uniform_levels.ts). tfjs's op chain for it is 11 kernels
// per weight tensor each step; this is 2 passes. Every operation is the float32 operation of that
// chain, in its order, and f32x4.nearest rounds half to even as tf.round does, so the results are
// the same bits:
//   y = x / s  (s = 1 without scale)      c = clip(y, lo, 1)
//   unsigned: q = round(c n) / n          signed: q = round((c + 1) half) twoOverN - 1
//   out = q s  (only with scale)
// Arguments named like tensors are byte offsets; count is the element count.

/** max |x| over count floats at x. */
export function maxAbs(x: usize, count: i32): f32 {
  let m = f32x4.splat(0);
  let i = 0;
  for (; i + 4 <= count; i += 4) m = f32x4.max(m, f32x4.abs(v128.load(x + (<usize>i << 2))));
  let r = max(max(f32x4.extract_lane(m, 0), f32x4.extract_lane(m, 1)), max(f32x4.extract_lane(m, 2), f32x4.extract_lane(m, 3)));
  for (; i < count; i++) r = max(r, abs(load<f32>(x + (<usize>i << 2))));
  return r;
}

/**
 * out = the levels of x (see above). n = L - 1; half = n / 2 and twoOverN = 2 / n as float32;
 * signed != 0: levels on [-1, 1], else [0, 1]; scaled != 0: x is divided by s first and the
 * result multiplied by it.
 */
export function uniformLevels(x: usize, out: usize, count: i32, n: f32, half: f32, twoOverN: f32, signed: i32, s: f32, scaled: i32): void {
  const lo: f32 = signed ? -1 : 0;
  const LO = f32x4.splat(lo), ONE = f32x4.splat(1), N = f32x4.splat(n), HALF = f32x4.splat(half), TWO = f32x4.splat(twoOverN), S = f32x4.splat(s);
  let i = 0;
  for (; i + 4 <= count; i += 4) {
    const o = <usize>i << 2;
    let y = v128.load(x + o);
    if (scaled) y = f32x4.div(y, S);
    const c = f32x4.min(f32x4.max(y, LO), ONE);
    let q = signed ? f32x4.sub(f32x4.mul(f32x4.nearest(f32x4.mul(f32x4.add(c, ONE), HALF)), TWO), ONE) : f32x4.div(f32x4.nearest(f32x4.mul(c, N)), N);
    if (scaled) q = f32x4.mul(q, S);
    v128.store(out + o, q);
  }
  for (; i < count; i++) {
    const o = <usize>i << 2;
    let y = load<f32>(x + o);
    if (scaled) y = y / s;
    const c = min(max(y, lo), <f32>1);
    let q: f32 = signed ? nearest((c + 1) * half) * twoOverN - 1 : nearest(c * n) / n;
    if (scaled) q = q * s;
    store<f32>(out + o, q);
  }
}
