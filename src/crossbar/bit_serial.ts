// Bit-serial crossbar reads (Yao et al.'s DAC: an input applied bit plane by bit plane, each plane
// read, converted and shifted) as the arrays compute them: the kernel
// (src/kernels/assembly/crossbar_bitserial.ts, in wasm/heap_kernels.wasm) adds, per output
// position, the effective weights of the rows each plane pulses, so rows without a pulse cost
// nothing; then noise, ADC, shift-and-add, row tiles and the finish. It replaces one convolution
// per plane over every row (and one more for the read-noise variances) plus the periphery pass of
// src/crossbar/inference.ts, which stays as the route where the kernel cannot run (another backend,
// no WebAssembly SIMD, MEMRISTOR_TFJS_NO_SIMD=1). The results are those of that route in
// distribution: the same currents, ADC and sums; the noise comes from the same seeded normal
// table, in another order; float32 sums.
//
// Everything the kernel reads lies on the tfjs wasm heap: the layer's weight rows (padded to a
// multiple of 4 columns), the conv taps per input shape, the plan of bands and row tiles, padded
// biases and offsets (kept until dispose), and per call the inputs' DAC codes and a scratch block.
import { tf, Tensor } from '../tf';
import { heapModule } from '../kernels/wasm_simd';
import type { WasmBackend } from '../kernels/types';
import { heapTensor, readView } from './heap';

interface BitSerialModule {
  bitSerialReads(
    plan: number,
    codes: number,
    perSample: number,
    samples: number,
    taps: number,
    rowsTotal: number,
    pos: number,
    cout: number,
    cout4: number,
    P: number,
    pw: number,
    scratch: number,
    table: number,
    state: number,
    std: number,
    step: number,
    maxCode: number,
    measure: number,
    bias: number,
    off: number,
    offPerPos: number,
    lo: number,
    out: number,
  ): number;
}

function kernel(): BitSerialModule | null {
  if (tf.getBackend() !== 'wasm') return null;
  return heapModule<BitSerialModule>(tf.backend() as unknown as WasmBackend, 'heap_kernels');
}

/** Whether the bit-serial kernel runs here (the wasm backend with WebAssembly SIMD). */
export function bitSerialAvailable(): boolean {
  return kernel() !== null;
}

/** One row tile of a replica: its rows of the layer's effective weight matrix (rows x cout) and their squares. */
export interface BitSerialGroup {
  rowStart: number;
  rows: number;
  w: Float32Array;
  sq: Float32Array | null;
}

/** A conv's geometry, as inference.ts ConvGeo. */
export interface TapGeometry {
  H: number;
  W: number;
  C: number;
  oh: number;
  ow: number;
  kh: number;
  kw: number;
  sh: number;
  sw: number;
  dh: number;
  dw: number;
  padTop: number;
  padLeft: number;
}

/**
 * taps[q rows + R] = the offset in a sample (NHWC) of the input that row R (channel-major:
 * R = c kh kw + i kw + j) reads at output position q, -1 where it falls on padding.
 */
export function convTaps(g: TapGeometry): Int32Array {
  const rows = g.kh * g.kw * g.C;
  const taps = new Int32Array(g.oh * g.ow * rows);
  for (let oy = 0; oy < g.oh; oy++) {
    for (let ox = 0; ox < g.ow; ox++) {
      const t0 = (oy * g.ow + ox) * rows;
      for (let c = 0; c < g.C; c++) {
        for (let i = 0; i < g.kh; i++) {
          const y = oy * g.sh + i * g.dh - g.padTop;
          for (let j = 0; j < g.kw; j++) {
            const x = ox * g.sw + j * g.dw - g.padLeft;
            taps[t0 + (c * g.kh + i) * g.kw + j] = y >= 0 && y < g.H && x >= 0 && x < g.W ? (y * g.W + x) * g.C + c : -1;
          }
        }
      }
    }
  }
  return taps;
}

/** The lanes' xorshift32 states per generator (seeded from it on first use). */
const LANES = new WeakMap<object, Int32Array>();

/** Floats of the parameter block (src/crossbar/simd.ts PLANE_PARAMS_FLOATS): table, four lane states, plane weights. */
const TABLE = 65536;

export interface BitSerialRun {
  /** The layer's inputs: B samples of perSample values (already through the digital input stage). */
  x: Float32Array;
  B: number;
  perSample: number;
  /** Output positions per sample; conv: the bands of output rows and their replicas, and the geometry. */
  pos: number;
  bands: { replica: number; row0: number; rows: number }[] | null;
  geo: TapGeometry | null;
  /** Rows of the weight matrix (dense: input features). */
  rowsTotal: number;
  /** DAC: P bits of full scale xScale. */
  P: number;
  xScale: number;
  /** Read noise sigma (0: none), the generator's normal table and its owner. */
  std: number;
  table: Float32Array | null;
  owner: object;
  seed: () => number;
  /** ADC step (0: none) and largest code (0: 1-bit sign). */
  step: number;
  maxCode: number;
  measure: boolean;
  fin: { off: Float32Array | null; offPerPos: boolean; bias: Float32Array | null; relu: boolean };
  /** The outputs [B, ...positions, cout] on the heap (null when measuring). */
  out: Tensor | null;
  /** The parameter block on the heap and which table it holds. */
  params: { tensor: Tensor; tableIn: { table: Float32Array | null } };
}

/** The heap side of one mapped layer's bit-serial reads; dispose() frees it. */
export class BitSerialHeap {
  private readonly cout4: number;
  private groupTensors: { w: Tensor; sq: Tensor | null }[][] | null = null;
  private readonly taps = new Map<string, Tensor>();
  private readonly plans = new Map<string, Tensor>();
  private readonly padded = new Map<Float32Array, Tensor>();

  constructor(
    private readonly groups: BitSerialGroup[][],
    private readonly cout: number,
  ) {
    this.cout4 = Math.ceil(cout / 4) * 4;
  }

  dispose(): void {
    for (const gs of this.groupTensors ?? []) for (const g of gs) tf.dispose([g.w, ...(g.sq ? [g.sq] : [])]);
    this.groupTensors = null;
    for (const m of [this.taps, this.plans, this.padded]) {
      for (const t of m.values()) t.dispose();
      m.clear();
    }
  }

  /** A heap tensor of n floats, kept. */
  private alloc(n: number): Tensor {
    const t = heapTensor([Math.max(1, n)]);
    if (!t) throw new Error('bit-serial reads: the wasm backend is not running');
    return tf.keep(t);
  }

  /** rows x cout values padded to rows x cout4 on the heap. */
  private padRows(src: Float32Array, rows: number): Tensor {
    const t = this.alloc(rows * this.cout4);
    const v = readView(t);
    v.fill(0);
    for (let r = 0; r < rows; r++) v.set(src.subarray(r * this.cout, (r + 1) * this.cout), r * this.cout4);
    return t;
  }

  private paddedOf(a: Float32Array | null): number {
    if (!a) return 0;
    let t = this.padded.get(a);
    if (!t) this.padded.set(a, (t = this.padRows(a, a.length / this.cout)));
    return readView(t).byteOffset;
  }

  /** Runs one pass over the samples; returns max |ideal current| when measuring, else 0. False: the kernel cannot run here. */
  run(r: BitSerialRun): number | false {
    const k = kernel();
    if (!k || r.P > 30) return false;
    const { cout, cout4 } = this;
    // 1. Allocations first (each may grow the heap and detach earlier views).
    if (!this.groupTensors) this.groupTensors = this.groups.map((gs) => gs.map((g) => ({ w: this.padRows(g.w, g.rows), sq: g.sq ? this.padRows(g.sq, g.rows) : null })));
    const key = r.geo ? `${r.geo.H}x${r.geo.W}x${r.geo.C}` : `dense${r.pos}`;
    let taps = this.taps.get(key) ?? null;
    if (r.geo && !taps) {
      const tv = convTaps(r.geo);
      taps = this.alloc(tv.length);
      const view = readView(taps);
      new Int32Array(view.buffer, view.byteOffset, tv.length).set(tv);
      this.taps.set(key, taps);
    }
    const bands = r.bands && r.geo ? r.bands.map((b) => ({ replica: b.replica, posStart: b.row0 * r.geo!.ow, posCount: b.rows * r.geo!.ow })) : [{ replica: 0, posStart: 0, posCount: r.pos }];
    // The plan: nBands, then per band posStart, posCount, nGroups, per group rowStart, rows, w, sq
    // (the pointers filled in below).
    const ints: number[] = [bands.length];
    for (const b of bands) {
      ints.push(b.posStart, b.posCount, this.groups[b.replica].length);
      for (const g of this.groups[b.replica]) ints.push(g.rowStart, g.rows, 0, 0);
    }
    let plan = this.plans.get(key);
    if (!plan) this.plans.set(key, (plan = this.alloc(ints.length)));
    const fin = r.fin;
    this.paddedOf(fin.bias);
    this.paddedOf(fin.off);
    const codes = this.alloc(r.B * r.perSample);
    const scratch = this.alloc(cout4 + 2 * r.P * (r.rowsTotal + 1));
    try {
      // 2. Views and pointers (no tf op from here to the kernel's return).
      const planView = readView(plan);
      const pi = new Int32Array(planView.buffer, planView.byteOffset, ints.length);
      pi.set(ints);
      let at = 1;
      for (const b of bands) {
        at += 3;
        for (const gt of this.groupTensors[b.replica]) {
          pi[at + 2] = readView(gt.w).byteOffset;
          pi[at + 3] = gt.sq ? readView(gt.sq).byteOffset : 0;
          at += 4;
        }
      }
      // The DAC: signed codes c = sign(x) min(round(|x| N / xScale), N), N = 2^P - 1.
      const N = 2 ** r.P - 1;
      const kk = N / (r.xScale || 1);
      const cv = readView(codes);
      const ci = new Int32Array(cv.buffer, cv.byteOffset, r.B * r.perSample);
      const x = r.x;
      for (let i = 0; i < ci.length; i++) {
        const v = x[i];
        const a = (v < 0 ? -v : v) * kk;
        let c = Math.floor(a + 0.5);
        if (c - 0.5 > a) c -= 1; // Math.round for a >= 0
        if (c > N) c = N;
        ci[i] = v < 0 ? -c : c;
      }
      const pv = readView(r.params.tensor);
      if (r.table && r.params.tableIn.table !== r.table) {
        pv.set(r.table, 0);
        r.params.tableIn.table = r.table;
      }
      let lanes = LANES.get(r.owner);
      if (!lanes) {
        lanes = new Int32Array(4);
        for (let i = 0; i < 4; i++) lanes[i] = r.seed() | 0 || 0x9e3779b9 | 0;
        LANES.set(r.owner, lanes);
      }
      const state = new Int32Array(pv.buffer, pv.byteOffset + TABLE * 4, 4);
      state.set(lanes);
      for (let p = 0; p < r.P; p++) pv[TABLE + 4 + p] = (r.xScale * 2 ** p) / N;
      const z = k.bitSerialReads(
        planView.byteOffset,
        cv.byteOffset,
        r.perSample,
        r.B,
        taps ? readView(taps).byteOffset : 0,
        r.rowsTotal,
        r.pos,
        cout,
        cout4,
        r.P,
        pv.byteOffset + (TABLE + 4) * 4,
        readView(scratch).byteOffset,
        pv.byteOffset,
        pv.byteOffset + TABLE * 4,
        r.std,
        r.step,
        r.maxCode,
        r.measure ? 1 : 0,
        this.paddedOf(fin.bias),
        this.paddedOf(fin.off),
        fin.offPerPos ? 1 : 0,
        fin.relu ? 0 : -Infinity,
        r.out ? readView(r.out).byteOffset : 0,
      );
      lanes.set(state);
      return r.measure ? z : 0;
    } finally {
      codes.dispose();
      scratch.dispose();
    }
  }
}
