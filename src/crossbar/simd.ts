// A WebAssembly SIMD kernel for the commonest noisy read of crossbar inference (src/crossbar/
// inference.ts, noisyAnalog): column currents z with read-noise variances var, one analog read per
// input, the layer's only row tile, so the read also finishes the output:
//   out = w z + w sigma sqrt(var) xi + bias, then ReLU (max(y, 0)) or nothing,
// with xi a standard normal drawn from the seeded table of 2^16 normals (inference.ts normalTable),
// a new draw for every column read. In JS this pass ran at ~5-9 ns a read, the largest single cost
// of mcnn on park2024 (63 M reads for C1 over the MNIST test set); here four reads go through one
// 128-bit lane set: ~1.3 ns a read, copies in and out included.
//
// The kernel works in its own memory (not the tfjs heap): the caller's arrays are copied in and the
// outputs out in pieces of a few thousand values that stay in the L1/L2 cache. Layout:
//   [0, 256 KiB)       the normal table (65,536 float32)
//   [256 KiB, +16)     the generator state: four xorshift32 words, one per lane
//   then               the bias pattern (the cout biases four times over: a multiple of 4 floats,
//                      so that a vector of four outputs always finds its biases at one offset)
//                      and the z, var and out pieces.
// Arithmetic is float32 (the JS path rounds once, from float64): a few ulp of difference in a value
// that carries noise of a relative 1e-2; the distribution is the same. Each lane runs its own
// xorshift32 stream (seeded from the caller's generator), the same generator as the JS path's.
//
// The kernel itself is AssemblyScript, src/kernels/assembly/crossbar_read.ts, compiled to
// wasm/crossbar_read.wasm by the build (src/kernels/assembly/build.js). Where WebAssembly SIMD is
// missing, simdAvailable() is false and inference.ts runs its JS loop.
import { tf } from '../tf';
import { WasmMemory, loadKernelModule } from '../kernels/wasm_module';
import { heapModule } from '../kernels/wasm_simd';
import type { WasmBackend } from '../kernels/types';

const TABLE_BYTES = 65536 * 4;
const STATE_AT = TABLE_BYTES;
const BIAS_AT = STATE_AT + 16;
/** Values per piece (about): z, var and out pieces of ~16 KiB each. */
const PIECE_VALUES = 4096;

// ---------------------------------------------------------------------------------------------
// The JS side

type RunFn = (z: number, v: number, o: number, n4: number, bp: number, bl: number, w: number, ws: number, lo: number) => void;
type DacFn = (x: number, u: number, u2: number, n2: number, k: number, N: number, invN: number) => void;

interface Kernel {
  memory: WasmMemory;
  run: RunFn;
  dac: DacFn;
  f32: Float32Array;
  state: Int32Array;
  /** The table now in the module's memory (by identity). */
  table: Float32Array | null;
}

let kernel: Kernel | null | undefined;

function instantiate(): Kernel | null {
  const exports = loadKernelModule('crossbar_read');
  if (!exports) return null;
  const memory = exports.memory as WasmMemory;
  return { memory, run: exports.run as RunFn, dac: exports.dac as DacFn, f32: new Float32Array(memory.buffer), state: new Int32Array(memory.buffer, STATE_AT, 4), table: null };
}

function getKernel(): Kernel | null {
  if (kernel === undefined) kernel = process.env.MEMRISTOR_TFJS_NO_SIMD === '1' ? null : instantiate();
  return kernel;
}

/** Whether the SIMD kernel runs here (WebAssembly SIMD present; MEMRISTOR_TFJS_NO_SIMD=1 turns it off). */
export function simdAvailable(): boolean {
  return getKernel() !== null;
}

/** Bytes of the module's memory a run with cout outputs needs, and the piece length (values, a multiple of 4 cout). */
function layout(cout: number): { piece: number; zAt: number; vAt: number; oAt: number; end: number } {
  const unit = 4 * cout;
  const piece = Math.max(1, Math.floor(PIECE_VALUES / unit)) * unit;
  const zAt = BIAS_AT + unit * 4;
  const vAt = zAt + piece * 4;
  const oAt = vAt + piece * 4;
  return { piece, zAt, vAt, oAt, end: oAt + piece * 4 };
}

/** Grows the module's memory to at least `bytes` (views renewed). */
function reserve(k: Kernel, bytes: number): void {
  if (k.memory.buffer.byteLength >= bytes) return;
  k.memory.grow(Math.ceil((bytes - k.memory.buffer.byteLength) / 65536));
  k.f32 = new Float32Array(k.memory.buffer);
  k.state = new Int32Array(k.memory.buffer, STATE_AT, 4);
}

/**
 * The analog DAC (inference.ts dacAnalog, the same values to the bit): u[i] = float32(sign(x)
 * min(round(|x| k), N) / N) and, when u2 is given, u2[i] = u[i]^2. Returns false (and does
 * nothing) where the kernel is not available.
 */
export function simdDac(x: Float32Array, u: Float32Array, u2: Float32Array | null, N: number, k: number): boolean {
  const kk = getKernel();
  if (!kk) return false;
  const lay = layout(1);
  reserve(kk, lay.end);
  const f = kk.f32;
  const xAt = lay.zAt / 4;
  const uAt = lay.vAt / 4;
  const u2At = lay.oAt / 4;
  const invN = 1 / N;
  const n = x.length;
  for (let s = 0; s < n; s += lay.piece) {
    const m = Math.min(lay.piece, n - s);
    const pairs = m >> 1;
    f.set(x.subarray(s, s + m), xAt);
    kk.dac(lay.zAt, lay.vAt, lay.oAt, pairs, k, N, invN);
    if (pairs * 2 < m) {
      // an odd value left: as dacAnalog
      const v = x[s + m - 1];
      const a = Math.abs(v) * k;
      let c = Math.floor(a + 0.5);
      if (c - 0.5 > a) c -= 1;
      if (c > N) c = N;
      const w = Math.fround((v < 0 ? -c : c) * invN);
      f[uAt + m - 1] = w;
      f[u2At + m - 1] = w * w;
    }
    u.set(f.subarray(uAt, uAt + m), s);
    if (u2) u2.set(f.subarray(u2At, u2At + m), s);
  }
  return true;
}

/** The xorshift state of each generator's four lanes (seeded from it on first use). */
const LANES = new WeakMap<object, Int32Array>();

/**
 * The noisy analog read of L = positions x cout column reads, contiguous from z[zb] and v[zb]
 * (position-major, cout values each) into out[ob...]: out = w z + ws sqrt(|v|) xi + bias[j], then
 * max(., 0) when relu. xi: entries of `table` (2^16 standard normals) at the indices of four
 * xorshift32 streams, whose state is kept per `owner` (the caller's generator; seeded from
 * seed() on first use). Returns false (and does nothing) where the kernel is not available.
 */
export function simdNoisyFinish(
  z: Float32Array,
  v: Float32Array,
  zb: number,
  out: Float32Array,
  ob: number,
  L: number,
  cout: number,
  table: Float32Array,
  w: number,
  ws: number,
  bias: Float32Array,
  relu: boolean,
  owner: object,
  seed: () => number,
): boolean {
  const k = getKernel();
  if (!k || table.length !== 65536 || L % cout !== 0) return false;
  const lay = layout(cout);
  reserve(k, lay.end);
  const f = k.f32;
  if (k.table !== table) {
    f.set(table, 0);
    k.table = table;
  }
  const b0 = BIAS_AT / 4;
  for (let r = 0; r < 4; r++) f.set(bias.subarray(0, cout), b0 + r * cout);
  let lanes = LANES.get(owner);
  if (!lanes) {
    lanes = new Int32Array(4);
    for (let i = 0; i < 4; i++) lanes[i] = seed() | 0 || 0x9e3779b9 | 0;
    LANES.set(owner, lanes);
  }
  k.state.set(lanes);
  const lo = relu ? 0 : -Infinity;
  const zAt = lay.zAt / 4;
  const vAt = lay.vAt / 4;
  const oAt = lay.oAt / 4;
  for (let s = 0; s < L; s += lay.piece) {
    const n = Math.min(lay.piece, L - s);
    // n is a multiple of cout; a piece starts at a multiple of 4 cout: the bias pattern at 0.
    const n4 = n >> 2;
    const m = n4 << 2;
    f.set(z.subarray(zb + s, zb + s + n), zAt);
    f.set(v.subarray(zb + s, zb + s + n), vAt);
    k.run(lay.zAt, lay.vAt, lay.oAt, n4, BIAS_AT, 16 * cout, w, ws, lo);
    if (m < n) {
      // 1-3 reads left (cout not a multiple of 4): lane 0's stream, in JS, float32 like the kernel
      let sa = k.state[0];
      for (let i = m; i < n; i++) {
        sa ^= sa << 13;
        sa ^= sa >>> 17;
        sa ^= sa << 5;
        const g = f[sa >>> 16];
        const y = Math.fround(Math.fround(Math.fround(w) * f[zAt + i]) + Math.fround(Math.fround(Math.fround(ws) * Math.fround(Math.sqrt(Math.abs(f[vAt + i])))) * g)) + bias[(s + i) % cout];
        f[oAt + i] = relu ? Math.max(Math.fround(y), 0) : y;
      }
      k.state[0] = sa;
    }
    out.set(f.subarray(oAt, oAt + n), ob + s);
  }
  lanes.set(k.state);
  return true;
}

// ---------------------------------------------------------------------------------------------
// Noisy reads through the ADC, one or several input planes, on the tfjs wasm heap
// (src/kernels/assembly/crossbar_planes.ts, in wasm/heap_kernels.wasm; inference.ts noisyReads)

interface PlanesModule {
  planeReads(z: number, v: number, zStride: number, vStride: number, planeStride: number, P: number, pw: number, rows: number, cout: number, out: number, first: number, std: number, step: number, maxCode: number, table: number, state: number): void;
}

/** Floats of the parameter block the reads kernel takes from the heap: the table, four lane states, plane weights. */
export const PLANE_PARAMS_FLOATS = 65536 + 4 + 64;

/** The reads kernel bound to the running wasm backend's heap, or null (another backend, no SIMD, MEMRISTOR_TFJS_NO_SIMD=1). */
function planesModule(): PlanesModule | null {
  if (tf.getBackend() !== 'wasm') return null;
  return heapModule<PlanesModule>(tf.backend() as unknown as WasmBackend, 'heap_kernels');
}

/** Whether simdNoisyReads can run now. */
export function simdReadsAvailable(): boolean {
  return planesModule() !== null;
}

/**
 * The noisy reads of inference.ts noisyReads on the wasm heap: rows x cout outputs, each the sum
 * over P planes of planeW[p] ADC(z + std sqrt|v| xi), written to out (first) or added to it. z, v
 * and out must be views of the backend's heap (inference.ts readView, heapTensor) and `params` a
 * heap view of PLANE_PARAMS_FLOATS floats: the table is copied into it when it is not there yet
 * (tableIn says which table it holds). Strides in floats; v's rows start vOff floats into z's
 * rows when v is z (one conv gives both). The lanes' xorshift states are kept per `owner` (seeded
 * from seed() on first use). Returns false (and does nothing) where it cannot run.
 */
export function simdNoisyReads(
  z: Float32Array,
  zAt: number,
  v: Float32Array,
  vAt: number,
  zStride: number,
  vStride: number,
  planeStride: number,
  planeW: Float64Array,
  rows: number,
  cout: number,
  out: Float32Array,
  outAt: number,
  first: boolean,
  std: number,
  step: number,
  maxCode: number,
  params: Float32Array,
  table: Float32Array,
  tableIn: { table: Float32Array | null },
  owner: object,
  seed: () => number,
): boolean {
  const m = planesModule();
  const P = planeW.length;
  if (!m || P > 64 || table.length !== 65536 || params.length < PLANE_PARAMS_FLOATS) return false;
  const heap = params.buffer;
  if (z.buffer !== heap || v.buffer !== heap || out.buffer !== heap) return false;
  // The last vector of a row reads up to 3 floats past it: they must lie inside the heap.
  const zEnd = z.byteOffset + 4 * (zAt + (P - 1) * planeStride + (rows - 1) * zStride + cout + 3);
  const vEnd = v.byteOffset + 4 * (vAt + (P - 1) * planeStride + (rows - 1) * vStride + cout + 3);
  if (Math.max(zEnd, vEnd) > heap.byteLength) return false;
  if (tableIn.table !== table) {
    params.set(table, 0);
    tableIn.table = table;
  }
  let lanes = LANES.get(owner);
  if (!lanes) {
    lanes = new Int32Array(4);
    for (let i = 0; i < 4; i++) lanes[i] = seed() | 0 || 0x9e3779b9 | 0;
    LANES.set(owner, lanes);
  }
  const state = new Int32Array(heap, params.byteOffset + 65536 * 4, 4);
  state.set(lanes);
  for (let p = 0; p < P; p++) params[65536 + 4 + p] = planeW[p];
  const base = params.byteOffset;
  m.planeReads(
    z.byteOffset + 4 * zAt,
    v.byteOffset + 4 * vAt,
    4 * zStride,
    4 * vStride,
    4 * planeStride,
    P,
    base + 4 * (65536 + 4),
    rows,
    cout,
    out.byteOffset + 4 * outAt,
    first ? 1 : 0,
    std,
    step,
    maxCode,
    base,
    base + 65536 * 4,
  );
  lanes.set(state);
  return true;
}
