// AssemblyScript (compiled to wasm/crossbar_read.wasm by src/kernels/assembly/build.js): the
// WebAssembly SIMD kernels of crossbar inference, driven by src/crossbar/simd.ts. The module owns
// its memory (exported as `memory`); the JS side copies pieces in and out. Layout:
//   [0, 256 KiB)     the normal table (65,536 float32)
//   [256 KiB, +16)   the generator state: four xorshift32 words, one per lane
//   then             the bias pattern and the z, var and out pieces (placed by simd.ts)
// Nothing here allocates: no data segments, no runtime heap; every address comes from the caller.

const STATE_AT: usize = 65536 * 4;

/**
 * n4 vectors of four noisy reads from byte offsets z and v to o:
 *   o = max(w z + (ws sqrt|v|) T[xorshift >>> 16] + bias, lo)
 * with the four lanes' xorshift32 streams at STATE_AT (advanced once per vector, saved at the
 * end). The bias pattern (biasBytes long, a multiple of 16) restarts at bp when used up.
 * lo = 0 for ReLU, -Infinity for none. Float32 throughout, in this order of operations.
 */
export function run(z: usize, v: usize, o: usize, n4: i32, bp: usize, biasBytes: i32, w: f32, ws: f32, lo: f32): void {
  let s = v128.load(STATE_AT);
  const wv = f32x4.splat(w);
  const wsv = f32x4.splat(ws);
  const lov = f32x4.splat(lo);
  let bo: i32 = 0;
  for (; n4 > 0; n4--) {
    // xorshift32 in every lane: s ^= s << 13; s ^= s >>> 17; s ^= s << 5
    s = v128.xor(s, i32x4.shl(s, 13));
    s = v128.xor(s, i32x4.shr_u(s, 17));
    s = v128.xor(s, i32x4.shl(s, 5));
    // byte offsets into the table: (s >>> 16) * 4
    const idx = i32x4.shl(i32x4.shr_u(s, 16), 2);
    let g = v128.load32_zero(<usize>i32x4.extract_lane(idx, 0));
    g = v128.load32_lane(<usize>i32x4.extract_lane(idx, 1), g, 1);
    g = v128.load32_lane(<usize>i32x4.extract_lane(idx, 2), g, 2);
    g = v128.load32_lane(<usize>i32x4.extract_lane(idx, 3), g, 3);
    const signal = f32x4.mul(wv, v128.load(z));
    const noise = f32x4.mul(f32x4.mul(wsv, f32x4.sqrt(f32x4.abs(v128.load(v)))), g);
    const y = f32x4.add(f32x4.add(signal, noise), v128.load(bp + <usize>bo));
    v128.store(o, f32x4.max(y, lov));
    z += 16;
    v += 16;
    o += 16;
    bo += 16;
    if (bo == biasBytes) bo = 0;
  }
  v128.store(STATE_AT, s);
}

/**
 * The analog DAC of n2 pairs of float32 inputs at byte offset x, in float64 exactly as
 * src/crossbar/inference.ts dacAnalog computes it (the same codes to the bit):
 *   a = |x| k; c = floor(a + 0.5), less 1 where c - 0.5 > a (Math.round for a >= 0); c = min(c, N);
 *   u = float32((x < 0 ? -c : c) invN) to u, and u * u (float32) to u2.
 */
export function dac(x: usize, u: usize, u2: usize, n2: i32, k: f64, N: f64, invN: f64): void {
  const kv = f64x2.splat(k);
  const nv = f64x2.splat(N);
  const iv = f64x2.splat(invN);
  const half = f64x2.splat(0.5);
  const one = f64x2.splat(1);
  const zero = f64x2.splat(0);
  for (; n2 > 0; n2--) {
    const xv = f64x2.promote_low_f32x4(v128.load64_zero(x));
    const a = f64x2.mul(f64x2.abs(xv), kv);
    let c = f64x2.floor(f64x2.add(a, half));
    c = v128.bitselect(f64x2.sub(c, one), c, f64x2.gt(f64x2.sub(c, half), a));
    c = f64x2.min(c, nv);
    const signed = v128.bitselect(f64x2.neg(c), c, f64x2.lt(xv, zero));
    const w = f32x4.demote_f64x2_zero(f64x2.mul(signed, iv));
    v128.store64_lane(u, w, 0);
    v128.store64_lane(u2, f32x4.mul(w, w), 0);
    x += 8;
    u += 8;
    u2 += 8;
  }
}
