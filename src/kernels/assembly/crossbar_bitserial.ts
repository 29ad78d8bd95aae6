// AssemblyScript (compiled into wasm/heap_kernels.wasm by src/kernels/assembly/build.js):
// crossbar reads with Yao et al.'s bit-serial DAC, computed as the arrays compute them, driven by
// src/crossbar/bit_serial.ts. An input's DAC code c (|c| <= 2^P - 1, its sign the sign of the
// input) puts a read pulse on its row in plane p where bit p of |c| is set; a column's current in
// plane p is then the sum of the effective weights of the rows pulsed (minus for a negative
// input), and its read-noise variance the sum of their squared conductances. Each row's code is
// read once per output position and its weights added to the planes of its set bits: rows without
// a pulse (zeros, zero bits) cost nothing, which on the inputs of a CNN is most of them. Each
// plane's read then gets its noise, its ADC code and its plane weight (the shift-and-add), the
// row tiles (arrays) are added, and the output is finished (constant-sign offset, bias, ReLU).
//
// The module imports the tfjs wasm backend's memory (env.memory): every argument named like an
// array is a byte offset into that heap. Float32 throughout. Weight rows are padded to cout4 (a
// multiple of 4) columns with zeros, so four columns go through one 128-bit vector.
import { storeLanes } from './lanes';

/**
 * The outputs of `samples` samples. plan (i32): nBands, then per band posStart, posCount, nGroups,
 * then per group rowStart, rows, w, sq (byte offsets of rows x cout4 float32; sq 0 without noise).
 * codes (i32): samples x perSample signed DAC codes. taps (i32, 0 for a dense layer): pos x
 * rowsTotal input offsets within a sample (-1: padding); dense: row R of position q reads
 * q rowsTotal + R. scratch: cout4 float32 + (2 P (rowsTotal + 1)) int32. pw: P float32 plane weights. table, state:
 * 65,536 normals and the xorshift32 state (its first word; saved at the end); std 0: no read noise.
 * step 0: no ADC; maxCode 0: a 1-bit sign converter. Measuring (measure 1) writes nothing and
 * returns max |ideal current| over the reads; else returns 0. bias, off (0: none) are float32
 * padded to cout4 (off per position when offPerPos); lo is 0 for ReLU, -Infinity for none. out:
 * samples x pos x cout float32.
 */
// The read-out settings of the current call (set at its start), and the generator's state.
let rng: u32 = 0;
let stdv: v128 = f32x4.splat(0);
let stepv: v128 = f32x4.splat(0);
let nstepv: v128 = f32x4.splat(0);
let invv: v128 = f32x4.splat(0);
let hi: v128 = f32x4.splat(0);
let lo4: v128 = f32x4.splat(0);
let wpv: v128 = f32x4.splat(0);
let adc = false;
let sign1 = false;

/**
 * One plane's read of four columns (val: ideal currents, vv: their noise variances): read noise,
 * ADC, then acc[a] += plane weight * code. One xorshift32 step picks where four consecutive table
 * entries start: four independent normals for the four columns (the table holds i.i.d. draws),
 * each read a new random place. One load instead of four gathers.
 */
// @ts-ignore: decorator
@inline function readOut(val: v128, vv: v128, a: usize, noisy: bool, table: usize): void {
  const zero = f32x4.splat(0);
  if (noisy) {
    let x = rng;
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    rng = x;
    const gv = v128.load(table + (<usize>(((x >>> 16) * 65533) >>> 16) << 2));
    val = f32x4.add(val, f32x4.mul(f32x4.mul(stdv, f32x4.sqrt(vv)), gv));
  }
  if (sign1) val = v128.bitselect(zero, v128.bitselect(stepv, nstepv, f32x4.ge(val, zero)), f32x4.eq(val, zero));
  else if (adc) val = f32x4.mul(f32x4.min(f32x4.max(f32x4.nearest(f32x4.mul(val, invv)), lo4), hi), stepv);
  v128.store(a, f32x4.add(v128.load(a), f32x4.mul(wpv, val)));
}

export function bitSerialReads(
  plan: usize,
  codes: usize,
  perSample: i32,
  samples: i32,
  taps: usize,
  rowsTotal: i32,
  pos: i32,
  cout: i32,
  cout4: i32,
  P: i32,
  pw: usize,
  scratch: usize,
  table: usize,
  state: usize,
  std: f32,
  step: f32,
  maxCode: f32,
  measure: i32,
  bias: usize,
  off: usize,
  offPerPos: i32,
  lo: f32,
  out: usize,
): f32 {
  rng = load<u32>(state);
  if (rng == 0) rng = 0x9e3779b9;
  const noisy = std > 0;
  stdv = f32x4.splat(std);
  adc = step > 0;
  sign1 = adc && maxCode == 0;
  stepv = f32x4.splat(step);
  nstepv = f32x4.splat(-step);
  invv = f32x4.splat(adc && !sign1 ? 1 / step : 0);
  hi = f32x4.splat(maxCode);
  lo4 = f32x4.splat(-maxCode);
  const zero = f32x4.splat(0);
  const lov = f32x4.splat(lo);
  const rowBytes = <usize>cout4 << 2;
  // Scratch: acc (cout4 float32), then per plane and sign a list of pulsed rows (byte offsets of
  // their weight rows), rowsTotal slots each, and the lists' lengths.
  const acc = scratch;
  const lists = scratch + rowBytes;
  const listBytes = <usize>rowsTotal << 2;
  const lens = lists + <usize>(2 * P) * listBytes;
  let zmax = zero;
  const nBands = load<i32>(plan);
  for (let n = 0; n < samples; n++) {
    const cbase = codes + ((<usize>n * <usize>perSample) << 2);
    let bp = plan + 4;
    for (let bi = 0; bi < nBands; bi++) {
      const posStart = load<i32>(bp);
      const posCount = load<i32>(bp + 4);
      const nGroups = load<i32>(bp + 8);
      const groups = bp + 12;
      for (let q = posStart; q < posStart + posCount; q++) {
        memory.fill(acc, 0, rowBytes);
        for (let gi = 0; gi < nGroups; gi++) {
          const g = groups + <usize>(gi * 16);
          const R0 = load<i32>(g);
          const rows = load<i32>(g + 4);
          const w = <usize>load<i32>(g + 8);
          const sq = <usize>load<i32>(g + 12);
          // The pulsed rows of each plane, by the sign of their input.
          memory.fill(lens, 0, <usize>(2 * P) << 2);
          let mask: i32 = 0;
          for (let r = 0; r < rows; r++) {
            const R = R0 + r;
            let o: i32;
            if (taps != 0) {
              o = load<i32>(taps + ((<usize>q * <usize>rowsTotal + <usize>R) << 2));
              if (o < 0) continue;
            } else o = q * rowsTotal + R;
            const c = load<i32>(cbase + (<usize>o << 2));
            if (c == 0) continue;
            let m = c < 0 ? -c : c;
            mask |= m;
            const side = c < 0 ? 1 : 0;
            const rowOff = <i32>(<usize>r * rowBytes);
            while (m != 0) {
              const p = ctz(m);
              m &= m - 1;
              const li = <usize>(2 * p + side);
              const len = load<i32>(lens + (li << 2));
              store<i32>(lists + li * listBytes + (<usize>len << 2), rowOff);
              store<i32>(lens + (li << 2), len + 1);
            }
          }
          // Each plane with a pulse: its column currents and variances (summed in registers, twelve,
          // eight or four columns at once, so each pulsed row's offset is read once per pass),
          // then noise, ADC and the shift-and-add, four columns at a time in column order (a plane
          // without a pulse reads 0).
          while (mask != 0) {
            const p = ctz(mask);
            mask &= mask - 1;
            const plus = lists + <usize>(2 * p) * listBytes;
            const minus = plus + listBytes;
            const nPlus = load<i32>(lens + (<usize>(2 * p) << 2));
            const nMinus = load<i32>(lens + (<usize>(2 * p + 1) << 2));
            wpv = f32x4.splat(load<f32>(pw + (<usize>p << 2)));
            let j = 0;
            for (; j + 12 <= cout4; j += 12) {
              const jb = <usize>j << 2;
              let v0 = zero, v1 = zero, v2 = zero, q0 = zero, q1 = zero, q2 = zero;
              for (let e = 0; e < nPlus; e++) {
                const ro = <usize>load<i32>(plus + (<usize>e << 2)) + jb;
                const wr = w + ro;
                v0 = f32x4.add(v0, v128.load(wr));
                v1 = f32x4.add(v1, v128.load(wr, 16));
                v2 = f32x4.add(v2, v128.load(wr, 32));
                if (noisy) {
                  const sr = sq + ro;
                  q0 = f32x4.add(q0, v128.load(sr));
                  q1 = f32x4.add(q1, v128.load(sr, 16));
                  q2 = f32x4.add(q2, v128.load(sr, 32));
                }
              }
              for (let e = 0; e < nMinus; e++) {
                const ro = <usize>load<i32>(minus + (<usize>e << 2)) + jb;
                const wr = w + ro;
                v0 = f32x4.sub(v0, v128.load(wr));
                v1 = f32x4.sub(v1, v128.load(wr, 16));
                v2 = f32x4.sub(v2, v128.load(wr, 32));
                if (noisy) {
                  const sr = sq + ro;
                  q0 = f32x4.add(q0, v128.load(sr));
                  q1 = f32x4.add(q1, v128.load(sr, 16));
                  q2 = f32x4.add(q2, v128.load(sr, 32));
                }
              }
              if (measure) {
                zmax = f32x4.max(zmax, f32x4.max(f32x4.abs(v0), f32x4.max(f32x4.abs(v1), f32x4.abs(v2))));
                continue;
              }
              const a = acc + jb;
              readOut(v0, q0, a, noisy, table);
              readOut(v1, q1, a + 16, noisy, table);
              readOut(v2, q2, a + 32, noisy, table);
            }
            for (; j + 8 <= cout4; j += 8) {
              const jb = <usize>j << 2;
              let v0 = zero, v1 = zero, q0 = zero, q1 = zero;
              for (let e = 0; e < nPlus; e++) {
                const ro = <usize>load<i32>(plus + (<usize>e << 2)) + jb;
                const wr = w + ro;
                v0 = f32x4.add(v0, v128.load(wr));
                v1 = f32x4.add(v1, v128.load(wr, 16));
                if (noisy) {
                  const sr = sq + ro;
                  q0 = f32x4.add(q0, v128.load(sr));
                  q1 = f32x4.add(q1, v128.load(sr, 16));
                }
              }
              for (let e = 0; e < nMinus; e++) {
                const ro = <usize>load<i32>(minus + (<usize>e << 2)) + jb;
                const wr = w + ro;
                v0 = f32x4.sub(v0, v128.load(wr));
                v1 = f32x4.sub(v1, v128.load(wr, 16));
                if (noisy) {
                  const sr = sq + ro;
                  q0 = f32x4.add(q0, v128.load(sr));
                  q1 = f32x4.add(q1, v128.load(sr, 16));
                }
              }
              if (measure) {
                zmax = f32x4.max(zmax, f32x4.max(f32x4.abs(v0), f32x4.abs(v1)));
                continue;
              }
              const a = acc + jb;
              readOut(v0, q0, a, noisy, table);
              readOut(v1, q1, a + 16, noisy, table);
            }
            for (; j < cout4; j += 4) {
              const jb = <usize>j << 2;
              let val = zero;
              let vv = zero;
              for (let e = 0; e < nPlus; e++) {
                const ro = <usize>load<i32>(plus + (<usize>e << 2)) + jb;
                val = f32x4.add(val, v128.load(w + ro));
                if (noisy) vv = f32x4.add(vv, v128.load(sq + ro));
              }
              for (let e = 0; e < nMinus; e++) {
                const ro = <usize>load<i32>(minus + (<usize>e << 2)) + jb;
                val = f32x4.sub(val, v128.load(w + ro));
                if (noisy) vv = f32x4.add(vv, v128.load(sq + ro));
              }
              if (measure) {
                zmax = f32x4.max(zmax, f32x4.abs(val));
                continue;
              }
              readOut(val, vv, acc + jb, noisy, table);
            }
          }
        }
        if (measure) continue;
        // Finish: y = 2 y - off (constant-sign inputs), + bias, max(y, lo); store cout columns.
        const ob = out + ((<usize>n * <usize>pos + <usize>q) * <usize>cout << 2);
        const fo = off != 0 && offPerPos ? off + <usize>q * rowBytes : off;
        for (let j = 0; j < cout; j += 4) {
          let y = v128.load(acc + (<usize>j << 2));
          if (off != 0) y = f32x4.sub(f32x4.add(y, y), v128.load(fo + (<usize>j << 2)));
          if (bias != 0) y = f32x4.add(y, v128.load(bias + (<usize>j << 2)));
          y = f32x4.max(y, lov);
          storeLanes(ob + (<usize>j << 2), y, cout - j);
        }
      }
      bp = groups + <usize>(nGroups * 16);
    }
  }
  store<u32>(state, rng);
  return max(max(f32x4.extract_lane(zmax, 0), f32x4.extract_lane(zmax, 1)), max(f32x4.extract_lane(zmax, 2), f32x4.extract_lane(zmax, 3)));
}
