// AssemblyScript (compiled into wasm/heap_kernels.wasm by src/kernels/assembly/build.js): the
// noisy reads of crossbar inference through a multi-bit ADC, for one or several input planes
// (Yao et al.'s bit-serial DAC: 8 reads an input, each converted, then shifted and added), driven
// by src/crossbar/simd.ts (simdNoisyReads). The module imports the tfjs wasm backend's memory
// (env.memory): every argument named like an array is a byte offset into that heap, where the
// column currents z (the conv or matMul output) already lie, so nothing is copied.
//
// Per output (row r, column j), for planes p = 0 .. P-1:
//   val = z_p + sigma sqrt|var_p| xi        xi from the normal table, a new draw per read
//   val = step clamp(nearest(val / step), -maxCode, maxCode)   (step 0: no ADC)
//   acc += pw[p] val
// and out = acc (first) or out + acc. Four columns go through one 128-bit vector; the lanes past a
// row's last column are computed and not stored. Float32 throughout.
import { storeLanes } from './lanes';

/**
 * rows x cout outputs. z and v: byte offsets of row 0, plane 0 of the currents and of their
 * variances; rows zStride (v: vStride) bytes apart, planes planeStride bytes apart. pw: P float32
 * plane weights. table: 65,536 float32 normals; state: four xorshift32 words (one per lane),
 * advanced once per vector and saved at the end.
 */
export function planeReads(
  z: usize,
  v: usize,
  zStride: i32,
  vStride: i32,
  planeStride: i32,
  P: i32,
  pw: usize,
  rows: i32,
  cout: i32,
  out: usize,
  first: i32,
  std: f32,
  step: f32,
  maxCode: f32,
  table: usize,
  state: usize,
): void {
  let s = v128.load(state);
  const stdv = f32x4.splat(std);
  const adc = step > 0;
  const stepv = f32x4.splat(step);
  const invv = f32x4.splat(adc ? 1 / step : 0);
  const hi = f32x4.splat(maxCode);
  const lo = f32x4.splat(-maxCode);
  for (let r = 0; r < rows; r++) {
    const zr = z + <usize>(r * zStride);
    const vr = v + <usize>(r * vStride);
    const orow = out + <usize>(r * cout * 4);
    for (let j = 0; j < cout; j += 4) {
      let acc = first ? f32x4.splat(0) : v128.load(orow + <usize>(j * 4));
      for (let p = 0; p < P; p++) {
        const po = <usize>(p * planeStride + j * 4);
        // xorshift32 in every lane, then four table loads
        s = v128.xor(s, i32x4.shl(s, 13));
        s = v128.xor(s, i32x4.shr_u(s, 17));
        s = v128.xor(s, i32x4.shl(s, 5));
        const idx = i32x4.shl(i32x4.shr_u(s, 16), 2);
        let g = v128.load32_zero(table + <usize>i32x4.extract_lane(idx, 0));
        g = v128.load32_lane(table + <usize>i32x4.extract_lane(idx, 1), g, 1);
        g = v128.load32_lane(table + <usize>i32x4.extract_lane(idx, 2), g, 2);
        g = v128.load32_lane(table + <usize>i32x4.extract_lane(idx, 3), g, 3);
        let val = f32x4.add(v128.load(zr + po), f32x4.mul(f32x4.mul(stdv, f32x4.sqrt(f32x4.abs(v128.load(vr + po)))), g));
        if (adc) val = f32x4.mul(f32x4.min(f32x4.max(f32x4.nearest(f32x4.mul(val, invv)), lo), hi), stepv);
        acc = f32x4.add(acc, f32x4.mul(f32x4.splat(load<f32>(pw + <usize>(p * 4))), val));
      }
      storeLanes(orow + <usize>(j * 4), acc, cout - j);
    }
  }
  v128.store(state, s);
}
