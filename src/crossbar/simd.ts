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
// The module is assembled here from its instructions (no build step, no binary file): 300 bytes.
// Where WebAssembly SIMD is missing, simdAvailable() is false and inference.ts runs its JS loop.

const TABLE_BYTES = 65536 * 4;
const STATE_AT = TABLE_BYTES;
const BIAS_AT = STATE_AT + 16;
/** Values per piece (about): z, var and out pieces of ~16 KiB each. */
const PIECE_VALUES = 4096;

// ---------------------------------------------------------------------------------------------
// The module, byte by byte (WebAssembly binary format 1.0 with the SIMD proposal's opcodes)

function uleb(n: number): number[] {
  const out: number[] = [];
  do {
    let b = n & 0x7f;
    n >>>= 7;
    if (n !== 0) b |= 0x80;
    out.push(b);
  } while (n !== 0);
  return out;
}

function sleb(n: number): number[] {
  const out: number[] = [];
  for (;;) {
    const b = n & 0x7f;
    n >>= 7;
    if ((n === 0 && (b & 0x40) === 0) || (n === -1 && (b & 0x40) !== 0)) {
      out.push(b);
      return out;
    }
    out.push(b | 0x80);
  }
}

const vec = (items: number[][]): number[] => [...uleb(items.length), ...items.flat()];
const section = (id: number, bytes: number[]): number[] => [id, ...uleb(bytes.length), ...bytes];
const name = (s: string): number[] => vec([...s].map((c) => [c.charCodeAt(0)]));
const I32 = 0x7f;
const F32 = 0x7d;
const F64 = 0x7c;
const V128 = 0x7b;
/** A SIMD instruction: the 0xfd prefix, its opcode (LEB128), immediates. */
const simd = (op: number, ...imm: number[]): number[] => [0xfd, ...uleb(op), ...imm];
const get = (i: number): number[] => [0x20, ...uleb(i)];
const set = (i: number): number[] => [0x21, ...uleb(i)];
const tee = (i: number): number[] => [0x22, ...uleb(i)];
const i32 = (n: number): number[] => [0x41, ...sleb(n)];
/** memarg: log2 alignment, offset 0. */
const mem = (align: number): number[] => [align, 0];
const OP = {
  v128load: 0x00,
  v128store: 0x0b,
  i32x4extract: 0x1b,
  f32x4splat: 0x13,
  v128xor: 0x51,
  load32lane: 0x56,
  load32zero: 0x5c,
  i32x4shl: 0xab,
  i32x4shrU: 0xad,
  f32x4abs: 0xe0,
  f32x4sqrt: 0xe3,
  f32x4add: 0xe4,
  f32x4mul: 0xe6,
  f32x4max: 0xe9,
  f64x2splat: 0x14,
  v128bitselect: 0x52,
  store64lane: 0x5b,
  load64zero: 0x5d,
  f32x4demoteZero: 0x5e,
  f64x2promoteLow: 0x5f,
  f64x2lt: 0x49,
  f64x2gt: 0x4a,
  f64x2floor: 0x75,
  f64x2abs: 0xec,
  f64x2neg: 0xed,
  f64x2add: 0xf0,
  f64x2sub: 0xf1,
  f64x2mul: 0xf2,
  f64x2min: 0xf4,
} as const;
const I32_ADD = 0x6a;
const I32_SUB = 0x6b;
const I32_EQZ = 0x45;
const I32_NE = 0x47;
const SELECT = 0x1b;
const BLOCK = 0x02;
const LOOP = 0x03;
const BR_IF = 0x0d;
const END = 0x0b;
const VOID = 0x40;

/**
 * run(z, var, out, n4, bias, biasBytes, w, ws, lo): n4 vectors of four reads from byte offsets z
 * and var to out: out = max(w z + ws sqrt(|var|) T[xorshift >>> 16] + bias, lo); the bias pattern
 * (biasBytes long) restarts at bias when used up. lo = 0 for ReLU, -Infinity for none.
 */
function moduleBytes(): Uint8Array {
  // parameters
  const Z = 0;
  const V = 1;
  const O = 2;
  const N4 = 3;
  const BP = 4;
  const BL = 5;
  const W = 6;
  const WS = 7;
  const LO = 8;
  // locals
  const S = 9;
  const WV = 10;
  const WSV = 11;
  const LOV = 12;
  const IDX = 13;
  const G = 14;
  const BO = 15;
  const lane = (k: number) => [...get(IDX), ...simd(OP.i32x4extract, k)];
  const load = (p: number) => [...get(p), ...simd(OP.v128load, ...mem(4))];
  const step = (p: number) => [...get(p), ...i32(16), I32_ADD, ...set(p)];
  const body = [
    ...i32(STATE_AT), ...simd(OP.v128load, ...mem(4)), ...set(S),
    ...get(W), ...simd(OP.f32x4splat), ...set(WV),
    ...get(WS), ...simd(OP.f32x4splat), ...set(WSV),
    ...get(LO), ...simd(OP.f32x4splat), ...set(LOV),
    BLOCK, VOID,
    ...get(N4), I32_EQZ, BR_IF, 0,
    LOOP, VOID,
    // xorshift32 in every lane: s ^= s << 13; s ^= s >>> 17; s ^= s << 5
    ...get(S), ...get(S), ...i32(13), ...simd(OP.i32x4shl), ...simd(OP.v128xor), ...set(S),
    ...get(S), ...get(S), ...i32(17), ...simd(OP.i32x4shrU), ...simd(OP.v128xor), ...set(S),
    ...get(S), ...get(S), ...i32(5), ...simd(OP.i32x4shl), ...simd(OP.v128xor), ...tee(S),
    // byte offsets into the table: (s >>> 16) * 4
    ...i32(16), ...simd(OP.i32x4shrU), ...i32(2), ...simd(OP.i32x4shl), ...set(IDX),
    // g = the four table entries
    ...lane(0), ...simd(OP.load32zero, ...mem(2)), ...set(G),
    ...lane(1), ...get(G), ...simd(OP.load32lane, ...mem(2), 1), ...set(G),
    ...lane(2), ...get(G), ...simd(OP.load32lane, ...mem(2), 2), ...set(G),
    ...lane(3), ...get(G), ...simd(OP.load32lane, ...mem(2), 3), ...set(G),
    // out = max(w z + (ws sqrt|var|) g + bias, lo)
    ...get(O),
    ...get(WV), ...load(Z), ...simd(OP.f32x4mul),
    ...get(WSV), ...load(V), ...simd(OP.f32x4abs), ...simd(OP.f32x4sqrt), ...simd(OP.f32x4mul), ...get(G), ...simd(OP.f32x4mul),
    ...simd(OP.f32x4add),
    ...get(BP), ...get(BO), I32_ADD, ...simd(OP.v128load, ...mem(4)), ...simd(OP.f32x4add),
    ...get(LOV), ...simd(OP.f32x4max),
    ...simd(OP.v128store, ...mem(4)),
    ...step(Z), ...step(V), ...step(O),
    // bo = bo + 16 === biasBytes ? 0 : bo + 16
    ...get(BO), ...i32(16), I32_ADD, ...tee(BO), ...i32(0), ...get(BO), ...get(BL), I32_NE, SELECT, ...set(BO),
    ...get(N4), ...i32(1), I32_SUB, ...tee(N4), BR_IF, 0,
    END,
    END,
    ...i32(STATE_AT), ...get(S), ...simd(OP.v128store, ...mem(4)),
    END,
  ];
  const func = [...vec([[...uleb(6), V128], [...uleb(1), I32]]), ...body];
  const dac = dacBody();
  return Uint8Array.from([
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
    ...section(
      1,
      vec([
        [0x60, ...vec([[I32], [I32], [I32], [I32], [I32], [I32], [F32], [F32], [F32]]), ...vec([])],
        [0x60, ...vec([[I32], [I32], [I32], [I32], [F64], [F64], [F64]]), ...vec([])],
      ]),
    ),
    ...section(3, vec([uleb(0), uleb(1)])),
    ...section(5, vec([[0x00, ...uleb(Math.ceil((BIAS_AT + 4096) / 65536))]])),
    ...section(7, vec([[...name('mem'), 0x02, ...uleb(0)], [...name('run'), 0x00, ...uleb(0)], [...name('dac'), 0x00, ...uleb(1)]])),
    ...section(10, vec([[...uleb(func.length), ...func], [...uleb(dac.length), ...dac]])),
  ]);
}

/**
 * dac(x, u, u2, n2, k, N, invN): the analog DAC of n2 pairs of float32 inputs at byte offset x, in
 * float64 exactly as inference.ts dacAnalog computes it (so the codes are the same to the bit):
 * a = |x| k; c = floor(a + 0.5), less 1 where c - 0.5 > a (Math.round for a >= 0); c = min(c, N);
 * u = float32((x < 0 ? -c : c) invN) to u, and u * u (float32) to u2.
 */
function dacBody(): number[] {
  const X = 0;
  const U = 1;
  const U2 = 2;
  const N2 = 3;
  const K = 4;
  const NN = 5;
  const INV = 6;
  const KV = 7;
  const NV = 8;
  const IV = 9;
  const XV = 10;
  const A = 11;
  const C = 12;
  const HALF = 13;
  const ONE = 14;
  const ZERO = 15;
  const step = (p: number, by: number) => [...get(p), ...i32(by), I32_ADD, ...set(p)];
  const f64 = (x: number): number[] => [0x44, ...new Uint8Array(new Float64Array([x]).buffer)];
  const body = [
    ...get(K), ...simd(OP.f64x2splat), ...set(KV),
    ...get(NN), ...simd(OP.f64x2splat), ...set(NV),
    ...get(INV), ...simd(OP.f64x2splat), ...set(IV),
    ...f64(0.5), ...simd(OP.f64x2splat), ...set(HALF),
    ...f64(1), ...simd(OP.f64x2splat), ...set(ONE),
    ...f64(0), ...simd(OP.f64x2splat), ...set(ZERO),
    BLOCK, VOID,
    ...get(N2), I32_EQZ, BR_IF, 0,
    LOOP, VOID,
    // xv = two inputs as float64; a = |xv| k
    ...get(X), ...simd(OP.load64zero, ...mem(3)), ...simd(OP.f64x2promoteLow), ...tee(XV),
    ...simd(OP.f64x2abs), ...get(KV), ...simd(OP.f64x2mul), ...tee(A),
    // c = floor(a + 0.5)
    ...get(HALF), ...simd(OP.f64x2add), ...simd(OP.f64x2floor), ...set(C),
    // c = (c - 0.5 > a) ? c - 1 : c
    ...get(C), ...get(ONE), ...simd(OP.f64x2sub),
    ...get(C),
    ...get(C), ...get(HALF), ...simd(OP.f64x2sub), ...get(A), ...simd(OP.f64x2gt),
    ...simd(OP.v128bitselect),
    // c = min(c, N)
    ...get(NV), ...simd(OP.f64x2min), ...set(C),
    // w = float32((x < 0 ? -c : c) invN)
    ...get(U),
    ...get(C), ...simd(OP.f64x2neg), ...get(C), ...get(XV), ...get(ZERO), ...simd(OP.f64x2lt), ...simd(OP.v128bitselect),
    ...get(IV), ...simd(OP.f64x2mul), ...simd(OP.f32x4demoteZero), ...tee(A),
    ...simd(OP.store64lane, ...mem(3), 0),
    ...get(U2), ...get(A), ...get(A), ...simd(OP.f32x4mul), ...simd(OP.store64lane, ...mem(3), 0),
    ...step(X, 8), ...step(U, 8), ...step(U2, 8),
    ...get(N2), ...i32(1), I32_SUB, ...tee(N2), BR_IF, 0,
    END,
    END,
    END,
  ];
  return [...vec([[...uleb(9), V128]]), ...body];
}

// ---------------------------------------------------------------------------------------------
// The JS side

/** The parts of the WebAssembly global used here (lib ES2022 has no declarations of it). */
interface WasmMemory {
  readonly buffer: ArrayBuffer;
  grow(pages: number): number;
}
interface WasmApi {
  validate(bytes: Uint8Array): boolean;
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object, imports: object) => { exports: Record<string, unknown> };
}

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
  try {
    const wa = (globalThis as unknown as { WebAssembly?: WasmApi }).WebAssembly;
    const bytes = moduleBytes();
    if (!wa || !wa.validate(bytes)) return null;
    const inst = new wa.Instance(new wa.Module(bytes), {});
    const memory = inst.exports.mem as WasmMemory;
    return { memory, run: inst.exports.run as unknown as RunFn, dac: inst.exports.dac as unknown as DacFn, f32: new Float32Array(memory.buffer), state: new Int32Array(memory.buffer, STATE_AT, 4), table: null };
  } catch {
    return null;
  }
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
