// Crossbar inference: a CrossbarNetwork computes through its programmed conductances, on tf ops
// for the multiply-accumulates (so that it is fast on every backend) and one fused JS pass for the
// periphery of each layer.
//
// Per mapped layer, for an input x (the output of the digital layers before it):
//  1. digital input stage: the layer's own input quantizer; +-1 inputs become 0/1 voltages
//     (Chen et al.'s constant-sign transform, inputEncoding 'signedBinary').
//  2. DAC: u = x / xScale with xScale the layer's input range (calibrated: max|x| of a calibration
//     batch; 1 for 0/1 inputs), 'analog' with `bits`: u rounded to 2^bits - 1 steps (sign-magnitude
//     for negative inputs: a negative read voltage), bits null: not quantized (no clipping either);
//     'bitSerial' (Yao et al.): u quantized to inputBits bits and applied bit-plane by bit-plane:
//     inputBits reads, bit k of the code -> a read pulse (0/1, with the sign for negative inputs).
//  3. the arrays: the effective weights of every array come from its PROGRAMMED conductances, with
//     IR drop folded in once per array (effectiveConductances: I = v . Geff), and drift to
//     driftSeconds if asked (see Drift below): w = weightScale (Geff+ - Geff-) (reference scheme:
//     Geff - Geff_ref of the array's reference column). The partial sum of each row tile (the arrays sharing a range
//     of rows) is a tf.conv2d over the slice of input channels the tile holds (channel-major rows,
//     src/mapping/schemes.ts) or a tf.matMul over the slice of input features.
//  4. read noise, new at every read: the relative conductance noise sigma of every cell read gives a
//     column (pair) current noise of variance sigma^2 sum_i V_i^2 (G+_ij^2 + G-_ij^2): computed
//     exactly by one more conv/matMul of u^2 with the squared effective conductances, and a normal
//     draw per column and read (a seeded ziggurat generator; on the analog path a seeded table of
//     2^16 normals, read by a WebAssembly SIMD kernel, src/crossbar/simd.ts, where one is present).
//  5. ADC on every array's column (pair) currents: 2^(bits-1) - 1 steps on either side of zero over
//     [-range, +range] (range 'auto': max |ideal current| of the calibration batch, per layer; or a
//     fixed current in uA), clipping outside; none for an ideal ADC (bits null) or where a threshold
//     neuron (comparator) takes the analog current. Bit-serial: each read is converted, then the
//     codes are shifted by their bit weight and added digitally. The DAC and ADC ranges are those
//     calibrated at programming time (see Drift below).
//  6. partial sums of the row tiles added digitally, the constant-sign offset (2 w.b - sum w),
//     the drift compensation factor (below), the bias, then the neuron/activation: the layer's
//     activation (ReLU at a Mott neuron or after the ADC), or a threshold neuron's comparator:
//     where the manifest gives the layer a comparator (the following max pools, BN and binary
//     activation folded into per-column thresholds, src/crossbar/comparator.ts), each column's
//     pre-activation is compared with its threshold (sign: +-1, step: 1/0; flipped where gamma < 0),
//     the decisions are pooled as the replaced max pools pool (an AND where the comparison after
//     the pool decreases), and the BN and activation layers are not run. A threshold neuron without
//     a comparator (a chain that does not fold; a folder written before comparators) leaves the
//     decision to the following digital layers, on the analog sums.
//
// Drift (aihwkit's lifecycle: program, drift to t, read; its compensation terms):
//   At programming time t0 (the state in the programmed CSVs: after write-verify for `map`, after
//   the last pulse for `insitu`) two things are measured and kept: the converter ranges (the
//   calibration above, on the arrays as programmed) and, per layer, a reference read-out: every
//   row read alone at the full read voltage (aihwkit's identity read-out), giving |I+ - I-| of each
//   column pair per row; the reference of a column is the sum of those over the layer's rows (all
//   row tiles and replicas), of the layer the sum over its columns. Read noise is left out of the
//   reference (think of it as averaged over many reads). A read at driftSeconds = t sees every cell
//   at G(t) = G(t0) (t / t0)^-nu (per-cell nu, src/programming/pulse.ts drift), and:
//     'none'       the raw drifted reads: outputs shrink, and the ADC ranges stay those of t0;
//     'global'     the same read-out repeated at t; the layer's array outputs (after the ADC and the
//                  shift-and-add, before the bias) are multiplied digitally by ref(t0) / ref(t), one
//                  factor per layer (aihwkit's default GlobalDriftCompensation);
//     'per-column' one factor per output column, ref_j(t0) / ref_j(t) (PerColumnDriftCompensation).
//   The ADC ranges stay those of t0 in every mode (the compensation is digital, after the ADC, as in
//   aihwkit): a drifted current uses fewer ADC codes, and the compensation does not win them back.
//   A comparator compares the compensated pre-activation with its threshold, i.e. its reference
//   current is scaled by 1 / factor.
//  Spatial parallelism: a conv layer's output rows are split into `replicas` bands; band r is
//  computed by replica r's arrays (its own programmed conductances) from the input rows it needs.
//  Without read noise and without an active ADC the layer is linear in its DAC output: one conv
//  with the summed effective kernel of each replica (the fast path), no JS pass.
//
// Counts for an energy estimate (per inference, i.e. per sample, and in total), per mapped layer:
//   arrayReads       input vectors applied to an array (positions x arrays of a replica x reads per input)
//   cellsRead        cells those reads touch (array rows x used columns, reference column included)
//   dacConversions   row drivers fired (array rows per read)
//   adcConversions   column (pair) currents converted (outputs per array per read; 0 with a comparator)
//   neuronEvaluations outputs computed (positions x output channels)
//   digitalAdds      shift-and-add and partial-sum additions, the offset and the bias
import { tf, Tensor } from '../tf';
import { getActivation } from '../../layers/activations';
import type { DeviceConfig } from '../device/config';
import { ConfigError } from '../errors';
import { deriveSeed, SeededRandom } from '../random';
import { drift } from '../programming/pulse';
import type { Split } from '../data/datasets';
import { batchesOf, firstSamples } from '../data/batches';
import { effectiveConductances } from './ir_drop';
import { PLANE_PARAMS_FLOATS, simdDac, simdNoisyFinish, simdNoisyReads, simdReadsAvailable } from './simd';
import { rollConvKernel, rowTileKernel } from '../mapping/schemes';
import type { CrossbarArray, CrossbarNetwork, MappedLayer } from './network';
import { Comparator, applyReplaced, compareTensor } from './comparator';
import { chainAfter } from './network';
import { heapTensor, readView } from './heap';
import { BitSerialHeap, TapGeometry, bitSerialAvailable } from './bit_serial';

// ---------------------------------------------------------------------------------------------
// Fast seeded normals: xoshiro128** and the ziggurat method (Marsaglia & Tsang 2000, 128 strips,
// with the strip index and the value taken from separate bits of each 32-bit draw, as Doornik
// 2005 advises). Exact in distribution; ~10x faster than Box-Muller on seedrandom.

const ZIG_R = 3.442619855899;
const ZIG_V = 9.91256303526217e-3;
const ZIG_M = 2 ** 24;
const ZIG_K = new Int32Array(128);
const ZIG_W = new Float64Array(128);
const ZIG_F = new Float64Array(128);
(() => {
  let dn = ZIG_R;
  let tn = dn;
  const q = ZIG_V / Math.exp(-0.5 * dn * dn);
  ZIG_K[0] = Math.floor((dn / q) * ZIG_M);
  ZIG_K[1] = 0;
  ZIG_W[0] = q / ZIG_M;
  ZIG_W[127] = dn / ZIG_M;
  ZIG_F[0] = 1;
  ZIG_F[127] = Math.exp(-0.5 * dn * dn);
  for (let i = 126; i >= 1; i--) {
    dn = Math.sqrt(-2 * Math.log(ZIG_V / dn + Math.exp(-0.5 * dn * dn)));
    ZIG_K[i + 1] = Math.floor((dn / tn) * ZIG_M);
    tn = dn;
    ZIG_F[i] = Math.exp(-0.5 * dn * dn);
    ZIG_W[i] = dn / ZIG_M;
  }
})();
const { exp: mexp, log: mlog, abs: mabs, sqrt: msqrt, floor: mfloor, fround: mfround } = Math;

/** A seeded source of standard normals (and uniforms), fast enough for one draw per column read. */
export class FastNormal {
  /** xoshiro128** state (public for the inlined loops of the periphery). */
  a: number;
  b: number;
  c: number;
  d: number;

  constructor(seed: number) {
    // splitmix32 expands the seed into the four state words (never all zero).
    let s = seed >>> 0;
    const next = () => {
      s = (s + 0x9e3779b9) | 0;
      let z = s;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
      return (z ^ (z >>> 16)) | 0;
    };
    this.a = next();
    this.b = next();
    this.c = next();
    this.d = next();
    if ((this.a | this.b | this.c | this.d) === 0) this.a = 1;
  }

  /** A 32-bit signed integer (xoshiro128**). */
  int32(): number {
    const r = Math.imul(rotl(Math.imul(this.b, 5), 7), 9);
    const t = this.b << 9;
    this.c ^= this.a;
    this.d ^= this.b;
    this.b ^= this.c;
    this.a ^= this.d;
    this.c ^= t;
    this.d = rotl(this.d, 11);
    return r | 0;
  }

  /** Uniform in (0, 1). */
  uniform(): number {
    return ((this.int32() >>> 0) + 0.5) / 4294967296;
  }

  /** A standard normal. */
  normal(): number {
    const u = this.int32();
    const iz = u & 127;
    const j = u >> 7;
    if (mabs(j) < ZIG_K[iz]) return j * ZIG_W[iz];
    return this.tail(j, iz);
  }

  /** The ziggurat's slow path for a draw whose fast-path test failed (strip iz, value j). */
  tail(j: number, iz: number): number {
    for (;;) {
      if (iz === 0) {
        let x: number;
        let y: number;
        do {
          x = -mlog(this.uniform()) / ZIG_R;
          y = -mlog(this.uniform());
        } while (y + y < x * x);
        return j > 0 ? ZIG_R + x : -ZIG_R - x;
      }
      const x = j * ZIG_W[iz];
      if (ZIG_F[iz] + this.uniform() * (ZIG_F[iz - 1] - ZIG_F[iz]) < mexp(-0.5 * x * x)) return x;
      const u = this.int32();
      iz = u & 127;
      j = u >> 7;
      if (mabs(j) < ZIG_K[iz]) return j * ZIG_W[iz];
    }
  }
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}

// ---------------------------------------------------------------------------------------------
// Options and results

export interface CrossbarInferenceOptions {
  /** Seed of the read noise (and of the drift exponents); default the mapping seed. */
  seed?: number;
  /** Read noise on (default: as the device says). */
  readNoise?: boolean;
  /** Read the arrays this many seconds after programming (conductance drift); default 0 (no drift). */
  driftSeconds?: number;
  /**
   * With driftSeconds: how the periphery compensates the drift (aihwkit's terms; see the top of
   * this file): 'none' (the raw drifted reads), 'global' (one factor per layer, the default, as
   * aihwkit's) or 'per-column' (one factor per output column).
   */
  driftCompensation?: DriftCompensation;
  /** IR-drop model of effectiveConductances: 'approx' (default) or 'exact'. */
  irDrop?: 'approx' | 'exact';
  /** Samples per batch; default 500. */
  batchSize?: number;
  /**
   * Calibration's progress, for a progress line on big networks (VGG-16 takes minutes): called
   * as the read-out of each mapped layer is built and as the calibration batch passes each step,
   * with (done, total) of those layers and steps.
   */
  onCalibrationStep?: (done: number, total: number) => void;
}

/** Drift compensation modes (aihwkit's GlobalDriftCompensation and PerColumnDriftCompensation, and none). */
export const DRIFT_COMPENSATIONS = ['none', 'global', 'per-column'] as const;
export type DriftCompensation = (typeof DRIFT_COMPENSATIONS)[number];

/** The drift compensation of the options: checked, default 'global'. */
export function driftCompensationOf(o: CrossbarInferenceOptions): DriftCompensation {
  const c = o.driftCompensation ?? 'global';
  if (!(DRIFT_COMPENSATIONS as readonly string[]).includes(c)) throw new ConfigError('driftCompensation', `must be one of ${DRIFT_COMPENSATIONS.join(', ')}, got ${JSON.stringify(c)}`);
  return c;
}

export interface EvaluateCrossbarOptions extends CrossbarInferenceOptions {
  /** Samples that calibrate the DAC input ranges and the 'auto' ADC ranges; default the first calibrationSamples of the evaluated split. */
  calibration?: Split;
  /** Default 500. */
  calibrationSamples?: number;
  /** [h, w, c] of a sample; default the model's input shape. */
  imageShape?: [number, number, number];
  numClasses?: number;
  /** Called after each batch: samples done of the split's. */
  onProgress?: (done: number, total: number, correct: number) => void;
}

/** Operation counts of one inference (one sample) through one mapped layer, or through all. */
export interface OperationCounts {
  arrayReads: number;
  cellsRead: number;
  dacConversions: number;
  adcConversions: number;
  neuronEvaluations: number;
  digitalAdds: number;
}

export interface LayerCounts extends OperationCounts {
  layer: string;
  /** Output positions per sample (conv: oh*ow; dense: 1). */
  positions: number;
  /** Reads per input vector (bit-serial: inputBits, else 1). */
  readsPerInput: number;
  /** Arrays of one replica and row tiles. */
  arrays: number;
  rowTiles: number;
  neuron: string;
}

export interface CrossbarCounts {
  /** Per inference (one sample). */
  perInference: OperationCounts;
  /** Over all samples evaluated. */
  total: OperationCounts;
  samples: number;
  perLayer: LayerCounts[];
}

export interface CrossbarEvalResult {
  accuracy: number;
  count: number;
  correct: number;
  seconds: number;
  samplesPerSec: number;
  calibrationSamples: number;
  counts: CrossbarCounts;
}

// ---------------------------------------------------------------------------------------------
// Runtime: tensors of the effective weights, calibration

interface GroupRT {
  replica: number;
  rowStart: number;
  rows: number;
  /** conv: input channels [c0, c1); dense: input features [rowStart, rowStart + rows). */
  c0: number;
  c1: number;
  k: Tensor;
  ksq: Tensor | null;
  /** [k | ksq] on the last axis (0/1 bit planes: one conv gives currents and variances). */
  kcat: Tensor | null;
  /** The same as rows x cout matrices (row-major), for the bit-serial reads (src/crossbar/bit_serial.ts). */
  w: Float32Array;
  sq: Float32Array | null;
}

interface LayerRT {
  m: MappedLayer;
  /** Row groups of each replica. */
  groups: GroupRT[][];
  /** Summed effective kernel of each replica (the fast path). */
  ktotal: Tensor[];
  /** Column sums of the effective weights of each replica (dense constant-sign offsets). */
  colSums: Float64Array[];
  xScale: number | null;
  zRange: number | null;
  /**
   * Drift compensation: the factor of each output column, applied digitally to the array part of
   * the layer's output (before the bias); null when there is none (no drift, or 'none').
   */
  comp: Float32Array | null;
  /** Conv constant-sign offsets by input shape: [oh*ow*cout] and as a tensor [1, oh, ow, cout]. */
  offsets: Map<string, { data: Float32Array; tensor: Tensor }>;
  /** Dense constant-sign offsets (the column sums of replica 0), made once. */
  denseOff: Float32Array | null;
  /** The bit-serial reads' heap state (src/crossbar/bit_serial.ts), made on first use. */
  bitSerial: BitSerialHeap | null;
}

interface Runtime {
  key: string;
  layers: Map<MappedLayer, LayerRT>;
  calibrated: boolean;
  scratch: Scratch;
  dispose(): void;
}

function runtimeKey(net: CrossbarNetwork, o: CrossbarInferenceOptions): string {
  const t = o.driftSeconds ?? 0;
  return JSON.stringify([t, o.irDrop ?? 'approx', t ? o.seed ?? net.mapping.seed : 0, t ? driftCompensationOf(o) : 'none']);
}

/** Effective weights (rows x outs) and squared effective conductances times weightScale^2 of one array. */
export function arrayEffectiveWeights(
  a: CrossbarArray,
  m: Pick<MappedLayer, 'scheme' | 'weightScale'>,
  device: DeviceConfig,
  opts: { driftSeconds?: number; irDrop?: 'approx' | 'exact'; rng?: SeededRandom } = {},
): { w: Float32Array; sq: Float32Array } {
  const { rows, arrayCols, outs } = a.tile;
  let G = a.programmed;
  if (opts.driftSeconds && opts.driftSeconds > 0) G = drift(G, device, opts.driftSeconds, opts.rng ?? new SeededRandom(`drift/${a.id}`));
  const geff = effectiveConductances(G, rows, arrayCols, device.wireResistance, { method: opts.irDrop ?? 'approx' });
  const w = new Float32Array(rows * outs);
  const sq = new Float32Array(rows * outs);
  const ws = m.weightScale;
  for (let r = 0; r < rows; r++) {
    const base = r * arrayCols;
    for (let j = 0; j < outs; j++) {
      let gp: number;
      let gm: number;
      if (m.scheme === 'differential') {
        gp = geff[base + 2 * j];
        gm = geff[base + 2 * j + 1];
      } else {
        gp = geff[base + j];
        gm = geff[base + outs];
      }
      w[r * outs + j] = ws * (gp - gm);
      sq[r * outs + j] = ws * ws * (gp * gp + gm * gm);
    }
  }
  return { w, sq };
}

function buildLayerRT(m: MappedLayer, device: DeviceConfig, o: CrossbarInferenceOptions, seed: number): LayerRT {
  const cout = m.outputs;
  const groups: GroupRT[][] = [];
  const ktotal: Tensor[] = [];
  const colSums: Float64Array[] = [];
  const noise = device.read.noiseSigma > 0;
  // Drift compensation: the reference read-out of every column at programming time (t0) and now.
  const compensation = o.driftSeconds && o.driftSeconds > 0 ? driftCompensationOf(o) : 'none';
  const ref0 = compensation === 'none' ? null : new Float64Array(cout);
  const refT = compensation === 'none' ? null : new Float64Array(cout);
  for (let r = 0; r < m.replicas; r++) {
    const arrays = m.arrays.filter((a) => a.replica === r);
    const keys = [...new Set(arrays.map((a) => `${a.tile.rowStart}:${a.tile.rows}`))];
    const wTotal = new Float32Array(m.rows * cout);
    const gs: GroupRT[] = [];
    for (const key of keys) {
      const [rowStart, rows] = key.split(':').map(Number);
      const wg = new Float32Array(rows * cout);
      const sg = new Float32Array(rows * cout);
      for (const a of arrays) {
        if (a.tile.rowStart !== rowStart || a.tile.rows !== rows) continue;
        const rng = o.driftSeconds ? new SeededRandom(`${seed}/drift/${a.id}`) : undefined;
        const { w, sq } = arrayEffectiveWeights(a, m, device, { driftSeconds: o.driftSeconds, irDrop: o.irDrop, rng });
        const outs = a.tile.outs;
        if (ref0 && refT) {
          const w0 = arrayEffectiveWeights(a, m, device, { irDrop: o.irDrop }).w;
          for (let i = 0; i < rows; i++) {
            for (let j = 0; j < outs; j++) {
              ref0[a.tile.outStart + j] += Math.abs(w0[i * outs + j]);
              refT[a.tile.outStart + j] += Math.abs(w[i * outs + j]);
            }
          }
        }
        for (let i = 0; i < rows; i++) {
          for (let j = 0; j < outs; j++) {
            wg[i * cout + a.tile.outStart + j] = w[i * outs + j];
            sg[i * cout + a.tile.outStart + j] = sq[i * outs + j];
          }
        }
      }
      for (let i = 0; i < rows * cout; i++) wTotal[rowStart * cout + i] += wg[i];
      if (m.kind === 'conv2d') {
        const kt = rowTileKernel(wg, m.kernelShape, rowStart, rows);
        const ks = noise ? rowTileKernel(sg, m.kernelShape, rowStart, rows) : null;
        gs.push({
          replica: r,
          rowStart,
          rows,
          c0: kt.c0,
          c1: kt.c1,
          k: tf.tensor4d(kt.kernel, kt.shape),
          ksq: ks ? tf.tensor4d(ks.kernel, ks.shape) : null,
          kcat: null,
          w: wg,
          sq: noise ? sg : null,
        });
      } else {
        gs.push({
          replica: r,
          rowStart,
          rows,
          c0: rowStart,
          c1: rowStart + rows,
          k: tf.tensor2d(wg, [rows, cout]),
          ksq: noise ? tf.tensor2d(sg, [rows, cout]) : null,
          kcat: null,
          w: wg,
          sq: noise ? sg : null,
        });
      }
    }
    gs.sort((x, y) => x.rowStart - y.rowStart);
    groups.push(gs);
    ktotal.push(m.kind === 'conv2d' ? tf.tensor4d(rollConvKernel(wTotal, m.kernelShape), m.kernelShape as [number, number, number, number]) : tf.tensor2d(wTotal, [m.rows, cout]));
    const cs = new Float64Array(cout);
    for (let i = 0; i < m.rows; i++) for (let j = 0; j < cout; j++) cs[j] += wTotal[i * cout + j];
    colSums.push(cs);
  }
  return { m, groups, ktotal, colSums, xScale: null, zRange: null, comp: compensationFactors(compensation, ref0, refT), offsets: new Map(), denseOff: null, bitSerial: null };
}

/**
 * The factor of each output column: the reference read-out at programming time over the same
 * read-out now, ref(t0) / ref(t), each the mean |I+ - I-| of the unit reads of every row (the
 * sums of |w| over the rows of a column, over all arrays and replicas of the layer); 'global'
 * takes the ratio of the sums over all columns. A read-out of 0 (nothing left to compensate)
 * gives 1.
 */
function compensationFactors(mode: DriftCompensation, ref0: Float64Array | null, refT: Float64Array | null): Float32Array | null {
  if (mode === 'none' || !ref0 || !refT) return null;
  const n = ref0.length;
  const out = new Float32Array(n);
  if (mode === 'global') {
    let a = 0;
    let b = 0;
    for (let j = 0; j < n; j++) {
      a += ref0[j];
      b += refT[j];
    }
    out.fill(b > 0 ? a / b : 1);
  } else for (let j = 0; j < n; j++) out[j] = refT[j] > 0 ? ref0[j] / refT[j] : 1;
  return out;
}

function disposeLayerRT(l: LayerRT): void {
  for (const gs of l.groups) for (const g of gs) [g.k, g.ksq, g.kcat].forEach((t) => t?.dispose());
  l.ktotal.forEach((t) => t.dispose());
  for (const o of l.offsets.values()) o.tensor.dispose();
  l.bitSerial?.dispose();
  l.bitSerial = null;
}

function runtimeOf(net: CrossbarNetwork, o: CrossbarInferenceOptions, onBuilt?: (layers: number) => void): Runtime {
  const key = runtimeKey(net, o);
  const cur = net.runtime as Runtime | null;
  if (cur && cur.key === key) return cur;
  cur?.dispose();
  const seed = o.seed ?? net.mapping.seed;
  const layers = new Map<MappedLayer, LayerRT>();
  for (const m of net.layers) {
    layers.set(m, buildLayerRT(m, net.device, o, seed));
    onBuilt?.(layers.size);
  }
  const scratch = new Scratch();
  const rt: Runtime = {
    key,
    layers,
    calibrated: false,
    scratch,
    dispose() {
      for (const l of layers.values()) disposeLayerRT(l);
      layers.clear();
      scratch.clear();
    },
  };
  net.runtime = rt;
  return rt;
}

// ---------------------------------------------------------------------------------------------
// Geometry

/** A conv's geometry on an input: bit_serial.ts's TapGeometry, the kernel's extent with its dilation, the right padding. */
interface ConvGeo extends TapGeometry {
  ekh: number;
  ekw: number;
  padRight: number;
}

function convGeometry(m: MappedLayer, H: number, W: number, C: number): ConvGeo {
  const [kh, kw] = m.kernelShape;
  const [sh, sw] = m.strides;
  const [dh, dw] = m.dilation ?? [1, 1];
  const ekh = (kh - 1) * dh + 1;
  const ekw = (kw - 1) * dw + 1;
  let oh: number;
  let ow: number;
  let padTop = 0;
  let padLeft = 0;
  let padRight = 0;
  if (m.padding === 'same') {
    oh = Math.ceil(H / sh);
    ow = Math.ceil(W / sw);
    const ph = Math.max((oh - 1) * sh + ekh - H, 0);
    const pw = Math.max((ow - 1) * sw + ekw - W, 0);
    padTop = Math.floor(ph / 2);
    padLeft = Math.floor(pw / 2);
    padRight = pw - padLeft;
  } else {
    oh = Math.ceil((H - ekh + 1) / sh);
    ow = Math.ceil((W - ekw + 1) / sw);
  }
  if (oh < 1 || ow < 1) throw new ConfigError(m.name, `input ${H}x${W} is smaller than the ${ekh}x${ekw} kernel`);
  return { H, W, C, oh, ow, kh, kw, sh, sw, dh, dw, ekh, ekw, padTop, padLeft, padRight };
}

/** Output rows of each replica: contiguous bands, replica r gets rows [floor(r oh / R), floor((r+1) oh / R)). */
function bandsOf(oh: number, replicas: number): { replica: number; row0: number; rows: number }[] {
  const out: { replica: number; row0: number; rows: number }[] = [];
  for (let r = 0; r < replicas; r++) {
    const a = Math.floor((r * oh) / replicas);
    const b = Math.floor(((r + 1) * oh) / replicas);
    if (b > a) out.push({ replica: r, row0: a, rows: b - a });
  }
  return out;
}

/** A window of an input [N, H, W, C]: rows [inA, inB), channels [c0, c1), as a tensor. */
type WindowFn = (inA: number, inB: number, c0: number, c1: number) => Tensor;

/** The conv of output rows [row0, row0 + rows) from input channels [c0, c1): the input window and explicit padding. */
function convBand(win: WindowFn, g: ConvGeo, row0: number, rows: number, c0: number, c1: number, k: Tensor): Tensor {
  const ya = row0 * g.sh - g.padTop;
  const yb = (row0 + rows - 1) * g.sh + g.ekh - g.padTop;
  const inA = Math.max(0, ya);
  const inB = Math.min(g.H, yb);
  const pad: [[number, number], [number, number], [number, number], [number, number]] = [
    [0, 0],
    [inA - ya, yb - inB],
    [g.padLeft, g.padRight],
    [0, 0],
  ];
  return tf.conv2d(win(inA, inB, c0, c1) as tf.Tensor4D, k as tf.Tensor4D, [g.sh, g.sw], pad, 'NHWC', [g.dh, g.dw]);
}

/**
 * Windows of a JS array [N, H, W, C] as tensors, each made once (cut in JS: tf.slice of a 4-D
 * tensor is a slow JS loop over the whole tensor on the wasm backend). Call inside a tidy.
 */
function jsWindows(data: Float32Array, N: number, H: number, W: number, C: number): WindowFn {
  const cache = new Map<string, Tensor>();
  return (inA, inB, c0, c1) => {
    const key = `${inA}:${inB}:${c0}:${c1}`;
    let t = cache.get(key);
    if (t) return t;
    if (inA === 0 && inB === H && c0 === 0 && c1 === C) t = tf.tensor4d(data, [N, H, W, C]);
    else {
      const h = inB - inA;
      const nc = c1 - c0;
      const out = new Float32Array(N * h * W * nc);
      let o = 0;
      for (let n = 0; n < N; n++) {
        for (let y = inA; y < inB; y++) {
          let src = ((n * H + y) * W) * C + c0;
          if (nc === C) {
            out.set(data.subarray(src, src + W * C), o);
            o += W * C;
          } else {
            for (let x = 0; x < W; x++, src += C, o += nc) for (let c = 0; c < nc; c++) out[o + c] = data[src + c];
          }
        }
      }
      t = tf.tensor4d(out, [N, h, W, nc]);
    }
    cache.set(key, t);
    return t;
  };
}

/** Windows of a tensor: the tensor itself when whole, else cut in JS from one download. */
function tensorWindows(x: Tensor): WindowFn {
  let js: WindowFn | null = null;
  const [N, H, W, C] = x.shape;
  return (inA, inB, c0, c1) => {
    if (inA === 0 && inB === H && c0 === 0 && c1 === C) return x;
    if (!js) js = jsWindows(readView(x).slice(), N, H, W, C);
    return js(inA, inB, c0, c1);
  };
}

/** Columns [c0, c1) of a JS matrix rows x F as a tensor (whole: no copy). */
function jsColumns(data: Float32Array, rows: number, F: number, c0: number, c1: number): Tensor {
  if (c0 === 0 && c1 === F) return tf.tensor2d(data, [rows, F]);
  const nc = c1 - c0;
  const out = new Float32Array(rows * nc);
  for (let r = 0; r < rows; r++) out.set(data.subarray(r * F + c0, r * F + c1), r * nc);
  return tf.tensor2d(out, [rows, nc]);
}

// ---------------------------------------------------------------------------------------------
// Reading tensors without copies, scratch buffers

/** Reusable Float32Arrays (large buffers allocated per batch cost more in GC than in use). */
class Scratch {
  private readonly bufs = new Map<string, Float32Array>();
  get(name: string, n: number): Float32Array {
    let b = this.bufs.get(name);
    if (!b || b.length < n) {
      b = new Float32Array(Math.max(n, Math.ceil((b?.length ?? 0) * 1.5)));
      this.bufs.set(name, b);
    }
    return b.subarray(0, n);
  }
  private params: { tensor: Tensor; tableIn: { table: Float32Array | null } } | null = null;
  /**
   * A block of PLANE_PARAMS_FLOATS floats on the wasm heap for the SIMD reads kernel (its normal
   * table, lane states, plane weights), kept until clear(); null where the kernel cannot run.
   * Allocate before taking heap views: an allocation may grow the heap and detach them.
   */
  heapParams(): { tensor: Tensor; tableIn: { table: Float32Array | null } } | null {
    if (!this.params && simdReadsAvailable()) {
      const t = heapTensor([PLANE_PARAMS_FLOATS]);
      if (t) this.params = { tensor: tf.keep(t), tableIn: { table: null } };
    }
    return this.params;
  }
  clear(): void {
    this.bufs.clear();
    this.params?.tensor.dispose();
    this.params = null;
  }
}

// ---------------------------------------------------------------------------------------------
// The periphery: noise, ADC, shift-and-add, partial sums (one fused pass)

/** Where a block of column currents goes: P reads of b samples, bandPos positions each, into out[(sample0 + n) * pos + posStart + q]. */
interface Block {
  P: number;
  b: number;
  bandPos: number;
  pos: number;
  posStart: number;
  sample0: number;
  cout: number;
  /** The first contribution to these outputs (the first row tile of the band): assigns instead of adding. */
  first: boolean;
}

/**
 * What the last contribution to an output finishes with: y = 2 y - offset (constant-sign) + bias,
 * then ReLU. Applied by the periphery pass that adds the last read of the last row tile.
 */
interface Finish {
  off: Float32Array | null;
  offPerPos: boolean;
  bias: Float32Array | null;
  relu: boolean;
}

function finishValue(y: number, f: Finish, fo: number, j: number): number {
  if (f.off !== null) y = 2 * y - f.off[fo + j];
  if (f.bias !== null) y += f.bias[j];
  return f.relu && y < 0 ? 0 : y;
}

/** The SIMD reads kernel's parameter block: a heap view, and which normal table it holds. */
interface HeapParams {
  view: Float32Array;
  tableIn: { table: Float32Array | null };
}

/** Rounds to the nearest integer (ties to even) for |x| < 2^51: cheaper than Math.round. */
const ROUND_MAGIC = 6755399441055744;

/**
 * One block of reads: val = z (+ std sqrt(var) xi with read noise, var = null without), through the
 * ADC (step 0: none; maxCode 0: a 1-bit sign converter), out += planeWeight * val; the last read of
 * the last row tile (fin non-null) also finishes the output. The generator's fast path is inlined
 * (its state in locals), which halves the cost of a noisy read.
 */
function periphery(
  z: Float32Array,
  zStride: number,
  v: Float32Array | null,
  vStride: number,
  vOff: number,
  k: Block,
  planeW: Float64Array,
  std: number,
  step: number,
  maxCode: number,
  gen: FastNormal,
  out: Float32Array,
  fin: Finish | null,
  hp: HeapParams | null = null,
): void {
  if (k.P === 1 && v !== null && step === 0) {
    noisyAnalog(z, zStride, v, vStride, vOff, k, planeW[0], std, gen, out, fin);
    return;
  }
  if (v !== null && (step === 0 || maxCode > 0)) {
    noisyReads(z, zStride, v, vStride, vOff, k, planeW, std, step, maxCode, gen, out, fin, hp);
    return;
  }
  const { P, b, bandPos, pos, posStart, sample0, cout, first } = k;
  const inv = step > 0 ? 1 / step : 0;
  const noisy = v !== null;
  const vv = v ?? z;
  const adc = step > 0;
  const sign1 = maxCode === 0;
  const K = ZIG_K;
  const Wz = ZIG_W;
  let sa = gen.a;
  let sb = gen.b;
  let sc = gen.c;
  let sd = gen.d;
  for (let p = 0; p < P; p++) {
    const w = planeW[p];
    const last = fin !== null && p === P - 1;
    const assign = first && p === 0;
    for (let n = 0; n < b; n++) {
      const row0 = (p * b + n) * bandPos;
      const o0 = ((sample0 + n) * pos + posStart) * cout;
      for (let q = 0; q < bandPos; q++) {
        const zi = (row0 + q) * zStride;
        const vi = (row0 + q) * vStride + vOff;
        const oi = o0 + q * cout;
        for (let j = 0; j < cout; j++) {
          let val = z[zi + j];
          if (noisy) {
            const s = vv[vi + j];
            if (s > 0) {
              // xoshiro128** then the ziggurat's fast path
              const r = Math.imul(((Math.imul(sb, 5) << 7) | (Math.imul(sb, 5) >>> 25)), 9) | 0;
              const t = sb << 9;
              sc ^= sa;
              sd ^= sb;
              sb ^= sc;
              sa ^= sd;
              sc ^= t;
              sd = (sd << 11) | (sd >>> 21);
              const iz = r & 127;
              const jj = r >> 7;
              let g: number;
              if (mabs(jj) < K[iz]) g = jj * Wz[iz];
              else {
                gen.a = sa;
                gen.b = sb;
                gen.c = sc;
                gen.d = sd;
                g = gen.tail(jj, iz);
                sa = gen.a;
                sb = gen.b;
                sc = gen.c;
                sd = gen.d;
              }
              val += std * msqrt(s) * g;
            }
          }
          const prev = assign ? 0 : out[oi + j];
          if (val !== 0) {
            if (adc) {
              if (sign1) val = val >= 0 ? step : -step;
              else {
                let code = val * inv + ROUND_MAGIC - ROUND_MAGIC;
                if (code > maxCode) code = maxCode;
                else if (code < -maxCode) code = -maxCode;
                val = code * step;
              }
            }
            if (last) out[oi + j] = finishValue(prev + w * val, fin!, fin!.offPerPos ? (posStart + q) * cout : 0, j);
            else out[oi + j] = prev + w * val;
          } else if (last) out[oi + j] = finishValue(prev, fin!, fin!.offPerPos ? (posStart + q) * cout : 0, j);
          else out[oi + j] = prev;
        }
      }
    }
  }
  gen.a = sa;
  gen.b = sb;
  gen.c = sc;
  gen.d = sd;
}

/**
 * periphery() for the commonest noisy case, specialized: one input plane (analog DAC) and no ADC;
 * fin non-null: the layer's last row tile (offset, bias and ReLU applied here), null: a partial sum.
 * Its read noise draws from a seeded table of 2^16 standard normals with an xorshift index (2 ns a
 * draw against 8 for the ziggurat): each read still gets a new draw, from an empirical normal with
 * 65,536 points. It runs once per column read, so this cut crossbar inference of mcnn on park2024
 * by ~20%.
 *
 * The loop has no data-dependent branch (measured: a mispredicted branch per column read, e.g. on
 * a zero variance or the sign of a ReLU input, cost more than the whole draw): every read draws,
 * also where the variance is 0 (the noise term is then exactly 0, as it must be), sqrt(|var|)
 * stands for sqrt(var) (var is a sum of non-negative terms; |.| only guards a -0 or a rounding
 * below zero against NaN), and ReLU is (y + |y|) / 2, which equals max(y, 0) exactly.
 */
const NORMAL_TABLE = new WeakMap<FastNormal, Float32Array>();
/** 2^16 standard normals drawn once per generator (seeded): a read then costs one xorshift and a load. */
function normalTable(gen: FastNormal): Float32Array {
  let t = NORMAL_TABLE.get(gen);
  if (!t) {
    t = new Float32Array(65536);
    for (let i = 0; i < t.length; i++) t[i] = gen.normal();
    NORMAL_TABLE.set(gen, t);
  }
  return t;
}

function noisyAnalog(
  z: Float32Array,
  zStride: number,
  v: Float32Array,
  vStride: number,
  vOff: number,
  k: Block,
  w: number,
  std: number,
  gen: FastNormal,
  out: Float32Array,
  fin: Finish | null,
): void {
  const { b, bandPos, pos, posStart, sample0, cout, first } = k;
  const T = normalTable(gen);
  if (first && fin !== null && fin.off === null && zStride === cout && vStride === cout && vOff === 0) {
    // The commonest case (a layer on one row tile, real inputs): per sample, one flat run.
    const bias = fin.bias ?? zeroBias(cout);
    const ws = w * std;
    const L = bandPos * cout;
    // WebAssembly SIMD (src/crossbar/simd.ts) where present: one run over the whole chunk when
    // it is contiguous in out (one band), else one per sample.
    // (It declines only where the kernel is missing, i.e. on the first call or never.)
    const seed = () => gen.int32();
    let done = bandPos === pos && simdNoisyFinish(z, v, 0, out, sample0 * pos * cout, b * L, cout, T, w, ws, bias, fin.relu, gen, seed);
    for (let n = 0; bandPos !== pos && n < b; n++) {
      if (!simdNoisyFinish(z, v, n * L, out, ((sample0 + n) * pos + posStart) * cout, L, cout, T, w, ws, bias, fin.relu, gen, seed)) break;
      done = n === b - 1;
    }
    if (done) return;
    let sa = gen.a | 0;
    if (sa === 0) sa = 1;
    for (let n = 0; n < b; n++) sa = noisyRunFinish(z, v, out, n * L, ((sample0 + n) * pos + posStart) * cout, L, cout, T, w, ws, bias, fin.relu, sa);
    gen.a = sa === 0 ? 1 : sa;
    return;
  }
  const off = fin?.off ?? null;
  const offPerPos = fin?.offPerPos ?? false;
  const bias = fin?.bias ?? null;
  const relu = fin?.relu ?? false;
  const ws = w * std;
  let sa = gen.a | 0;
  if (sa === 0) sa = 1;
  for (let n = 0; n < b; n++) {
    const row0 = n * bandPos;
    const o0 = ((sample0 + n) * pos + posStart) * cout;
    for (let q = 0; q < bandPos; q++) {
      const zi = (row0 + q) * zStride;
      const vi = (row0 + q) * vStride + vOff;
      const oi = o0 + q * cout;
      if (fin === null) {
        if (first) {
          for (let j = 0; j < cout; j++) {
            sa ^= sa << 13;
            sa ^= sa >>> 17;
            sa ^= sa << 5;
            out[oi + j] = w * z[zi + j] + ws * msqrt(mabs(v[vi + j])) * T[sa >>> 16];
          }
        } else {
          for (let j = 0; j < cout; j++) {
            sa ^= sa << 13;
            sa ^= sa >>> 17;
            sa ^= sa << 5;
            out[oi + j] += w * z[zi + j] + ws * msqrt(mabs(v[vi + j])) * T[sa >>> 16];
          }
        }
        continue;
      }
      const fo = offPerPos ? (posStart + q) * cout : 0;
      for (let j = 0; j < cout; j++) {
        sa ^= sa << 13;
        sa ^= sa >>> 17;
        sa ^= sa << 5;
        let y = w * z[zi + j] + ws * msqrt(mabs(v[vi + j])) * T[sa >>> 16];
        if (!first) y += out[oi + j];
        if (off !== null) y = 2 * y - off[fo + j];
        if (bias !== null) y += bias[j];
        out[oi + j] = relu ? (y + mabs(y)) * 0.5 : y;
      }
    }
  }
  gen.a = sa === 0 ? 1 : sa;
}

/**
 * periphery() for noisy reads through a multi-bit ADC and/or several bit planes (Yao et al.'s
 * bit-serial DAC): each output's P reads in turn, each with its read noise (the seeded normal
 * table, as noisyAnalog), its ADC code and its plane weight, summed in a local and written once
 * (the plane-by-plane loop wrote every output P times). No data-dependent branch per read but the
 * ADC's clipping, which is rare.
 */
function noisyReads(
  z: Float32Array,
  zStride: number,
  v: Float32Array,
  vStride: number,
  vOff: number,
  k: Block,
  planeW: Float64Array,
  std: number,
  step: number,
  maxCode: number,
  gen: FastNormal,
  out: Float32Array,
  fin: Finish | null,
  hp: HeapParams | null,
): void {
  const { P, b, bandPos, pos, posStart, sample0, cout, first } = k;
  const T = normalTable(gen);
  const adc = step > 0;
  const inv = adc ? 1 / step : 0;
  const planeRows = b * bandPos;
  // WebAssembly SIMD on the heap where it runs (src/crossbar/simd.ts simdNoisyReads), sample by
  // sample (its outputs are contiguous), the finish in JS after it.
  if (hp && zStride === vStride) {
    const seed = () => gen.int32();
    let done = 0;
    for (let n = 0; n < b; n++) {
      const o0 = ((sample0 + n) * pos + posStart) * cout;
      const r0 = n * bandPos;
      if (!simdNoisyReads(z, r0 * zStride, v, r0 * vStride + vOff, zStride, vStride, planeRows * zStride, planeW, bandPos, cout, out, o0, first, std, step, maxCode, hp.view, T, hp.tableIn, gen, seed)) break;
      if (fin !== null) {
        for (let q = 0; q < bandPos; q++) {
          const oi = o0 + q * cout;
          const fo = fin.offPerPos ? (posStart + q) * cout : 0;
          for (let j = 0; j < cout; j++) out[oi + j] = finishValue(out[oi + j], fin, fo, j);
        }
      }
      done++;
    }
    if (done === b) return;
    if (done > 0) throw new Error('the SIMD reads kernel stopped part way');
  }
  let sa = gen.a | 0;
  if (sa === 0) sa = 1;
  for (let n = 0; n < b; n++) {
    const o0 = ((sample0 + n) * pos + posStart) * cout;
    for (let q = 0; q < bandPos; q++) {
      const r0 = n * bandPos + q;
      const oi = o0 + q * cout;
      const fo = fin !== null && fin.offPerPos ? (posStart + q) * cout : 0;
      for (let j = 0; j < cout; j++) {
        let acc = first ? 0 : out[oi + j];
        for (let p = 0; p < P; p++) {
          const r = p * planeRows + r0;
          sa ^= sa << 13;
          sa ^= sa >>> 17;
          sa ^= sa << 5;
          let val = z[r * zStride + j] + std * msqrt(mabs(v[r * vStride + vOff + j])) * T[sa >>> 16];
          if (adc) {
            let code = val * inv + ROUND_MAGIC - ROUND_MAGIC;
            if (code > maxCode) code = maxCode;
            else if (code < -maxCode) code = -maxCode;
            val = code * step;
          }
          acc += planeW[p] * val;
        }
        out[oi + j] = fin !== null ? finishValue(acc, fin, fo, j) : acc;
      }
    }
  }
  gen.a = sa === 0 ? 1 : sa;
}

const ZERO_BIAS = new Map<number, Float32Array>();
function zeroBias(n: number): Float32Array {
  let z = ZERO_BIAS.get(n);
  if (!z) ZERO_BIAS.set(n, (z = new Float32Array(n)));
  return z;
}

/**
 * noisyAnalog's inner loop for a contiguous run of L = positions x cout column reads that are
 * the only contribution to their outputs: out = w z + w std sqrt(var) xi + bias, then ReLU
 * ((y + |y|) / 2 = max(y, 0) exactly). Returns the xorshift state.
 */
function noisyRunFinish(
  z: Float32Array,
  v: Float32Array,
  out: Float32Array,
  zb: number,
  ob: number,
  L: number,
  cout: number,
  T: Float32Array,
  w: number,
  ws: number,
  bias: Float32Array,
  relu: boolean,
  sa: number,
): number {
  if (relu) {
    for (let i = 0; i < L; i += cout) {
      const zi = zb + i;
      const oi = ob + i;
      for (let j = 0; j < cout; j++) {
        sa ^= sa << 13;
        sa ^= sa >>> 17;
        sa ^= sa << 5;
        const y = w * z[zi + j] + ws * msqrt(mabs(v[zi + j])) * T[sa >>> 16] + bias[j];
        out[oi + j] = (y + mabs(y)) * 0.5;
      }
    }
  } else {
    for (let i = 0; i < L; i += cout) {
      const zi = zb + i;
      const oi = ob + i;
      for (let j = 0; j < cout; j++) {
        sa ^= sa << 13;
        sa ^= sa >>> 17;
        sa ^= sa << 5;
        out[oi + j] = w * z[zi + j] + ws * msqrt(mabs(v[zi + j])) * T[sa >>> 16] + bias[j];
      }
    }
  }
  return sa;
}

function maxAbsStrided(z: Float32Array, stride: number, cout: number): number {
  let m = 0;
  for (let i = 0; i < z.length; i += stride) {
    for (let j = 0; j < cout; j++) {
      const a = mabs(z[i + j]);
      if (a > m) m = a;
    }
  }
  return m;
}

// ---------------------------------------------------------------------------------------------
// Forward

interface Ctx {
  device: DeviceConfig;
  noise: boolean;
  gen: FastNormal;
  calibrate: boolean;
  scratch: Scratch;
  /** Called after each step runSteps finishes (its index). */
  onStep?: (i: number) => void;
}

function needsXScale(d: DeviceConfig): boolean {
  return d.dac.mode === 'bitSerial' || d.dac.bits !== null;
}

function adcActive(m: MappedLayer, d: DeviceConfig): boolean {
  return m.neuron !== 'threshold' && d.adc.bits !== null;
}

function maxAbs(t: Tensor): number {
  return tf.tidy(() => tf.max(tf.abs(t)).dataSync()[0]);
}

/** The DAC output in input units (what the arrays see, times xScale), as tf ops: the fast path's input. */
function dacTensor(x: Tensor, d: DeviceConfig, xScale: number | null): Tensor {
  if (d.dac.mode === 'analog' && d.dac.bits === null) return x;
  const bits = d.dac.mode === 'bitSerial' ? d.dac.inputBits : d.dac.bits!;
  const N = 2 ** bits - 1;
  const xs = xScale ?? 1;
  return tf.tidy(() => tf.mul(tf.sign(x), tf.mul(tf.minimum(tf.round(tf.mul(tf.abs(x), N / xs)), N), xs / N)));
}

interface Planes {
  /** P reads of the values, read-major (P x values), in normalized voltages (units of read.voltage). */
  planes: Float32Array;
  /** The squared voltages of each read for the noise variance, or null when planes^2 = planes (0/1 bits). */
  varIn: Float32Array | null;
  P: number;
  /** Digital weight of each read: xScale (analog) or xScale 2^k / (2^bits - 1) (bit-serial). */
  weights: Float64Array;
}

/**
 * Math.round(a) for a >= 0 (or NaN), without its cost in V8 (~4 ns): floor(a + 0.5), less one
 * where the addition rounded up to the next integer (a just below a half), as Math.round would not.
 */
function roundNonNeg(a: number): number {
  const c = mfloor(a + 0.5);
  return c - 0.5 > a ? c - 1 : c;
}

/**
 * The analog DAC in one pass: u = sign(x) min(round(|x| k), N) / N, and u^2 (of the float32 u)
 * into varIn when given. No data-dependent branch (zeros need none: they give code 0). A function
 * of its own, all of it run on every call: V8 optimizes it once (a hot loop inside a larger
 * function was optimized on stack and thrown away at the function's unrun tail, at every call).
 */
function dacAnalog(x: Float32Array, u: Float32Array, varIn: Float32Array | null, N: number, k: number): void {
  if (simdDac(x, u, varIn, N, k)) return;
  const n = x.length;
  const invN = 1 / N;
  if (varIn !== null) {
    for (let i = 0; i < n; i++) {
      const v = x[i];
      let c = roundNonNeg(mabs(v) * k);
      if (c > N) c = N;
      const w = mfround((v < 0 ? -c : c) * invN);
      u[i] = w;
      varIn[i] = w * w;
    }
  } else {
    for (let i = 0; i < n; i++) {
      const v = x[i];
      let c = roundNonNeg(mabs(v) * k);
      if (c > N) c = N;
      u[i] = (v < 0 ? -c : c) * invN;
    }
  }
}

function squares(u: Float32Array, out: Float32Array): void {
  for (let i = 0; i < u.length; i++) out[i] = u[i] * u[i];
}

/** The reads the arrays see (DAC), built in JS from the input values. */
function dacPlanes(x: Float32Array, d: DeviceConfig, xScale: number | null, wantVar: boolean, scratch: Scratch): Planes {
  const n = x.length;
  if (d.dac.mode === 'analog') {
    const bits = d.dac.bits;
    let u: Float32Array;
    let xs = 1;
    let varIn: Float32Array | null = null;
    if (bits === null) {
      u = x;
      if (wantVar) squares(u, (varIn = scratch.get('varIn', n)));
    } else {
      const N = 2 ** bits - 1;
      xs = xScale ?? 1;
      const k = N / xs;
      u = scratch.get('planes', n);
      varIn = wantVar ? scratch.get('varIn', n) : null;
      dacAnalog(x, u, varIn, N, k);
    }
    return { planes: u, varIn, P: 1, weights: Float64Array.of(xs) };
  }
  const P = d.dac.inputBits;
  const N = 2 ** P - 1;
  const xs = xScale ?? 1;
  const k = N / xs;
  const planes = scratch.get('planes', P * n);
  planes.fill(0);
  let negative = false;
  for (let i = 0; i < n; i++) {
    const v = x[i];
    let c = roundNonNeg(mabs(v) * k);
    if (c > N) c = N;
    if (c === 0) continue;
    const s = v < 0 ? -1 : 1;
    if (s < 0) negative = true;
    for (let p = 0; c !== 0; p++, c >>= 1) if (c & 1) planes[p * n + i] = s;
  }
  const weights = new Float64Array(P);
  for (let p = 0; p < P; p++) weights[p] = (xs * 2 ** p) / N;
  let varIn: Float32Array | null = null;
  if (wantVar && negative) {
    varIn = scratch.get('varIn', planes.length);
    for (let i = 0; i < planes.length; i++) varIn[i] = mabs(planes[i]);
  }
  return { planes, varIn, P, weights };
}

/** Constant-sign offsets of a conv layer for an input H x W: sum of the effective weights over the valid taps of each position. */
function convOffsets(rt: LayerRT, g: ConvGeo): { data: Float32Array; tensor: Tensor } {
  const key = `${g.H}x${g.W}x${g.C}`;
  const hit = rt.offsets.get(key);
  if (hit) return hit;
  const m = rt.m;
  const tensor = tf.tidy(() => {
    const win = tensorWindows(tf.ones([1, g.H, g.W, g.C]));
    const parts = bandsOf(g.oh, m.replicas).map((band) => convBand(win, g, band.row0, band.rows, 0, g.C, rt.ktotal[band.replica]));
    return parts.length === 1 ? parts[0] : tf.concat(parts, 1);
  });
  const entry = { data: tensor.dataSync().slice() as Float32Array, tensor: tf.keep(tensor) };
  rt.offsets.set(key, entry);
  return entry;
}

/** Values (floats) a chunk of the slow path may hold per conv output. */
const CHUNK_VALUES = 1 << 21;

/**
 * One mapped layer on x: its outputs in layer units (activation applied), or with `cmp` its
 * comparator's decisions on the pre-activation outputs (the columns' comparators).
 */
function forwardMapped(rt: LayerRT, x: Tensor, ctx: Ctx, cmp: Comparator | null): Tensor {
  const m = rt.m;
  const d = ctx.device;
  // 1. digital input stage
  const xb = tf.tidy(() => {
    let v = m.inputQuantizer && m.inputQuantizer.levels !== null ? m.inputQuantizer(x) : x;
    if (m.inputEncoding === 'signedBinary') v = tf.cast(tf.greater(v, 0), 'float32');
    return v;
  });
  let x2: Tensor = xb;
  try {
    if (ctx.calibrate && needsXScale(d)) rt.xScale = m.inputEncoding === 'signedBinary' ? 1 : maxAbs(xb) || 1;
    let geo: ConvGeo | null = null;
    let pos: number;
    let outShape: number[];
    if (m.kind === 'conv2d') {
      if (xb.rank !== 4) throw new ConfigError(m.name, `expects [batch, h, w, c] inputs, got rank ${xb.rank}`);
      const [B, H, W, C] = xb.shape;
      geo = convGeometry(m, H, W, C);
      pos = geo.oh * geo.ow;
      outShape = [B, geo.oh, geo.ow, m.outputs];
    } else {
      const F = xb.shape[xb.rank - 1];
      const lead = xb.shape.slice(0, -1);
      pos = lead.slice(1).reduce((a, b2) => a * b2, 1);
      outShape = [...lead, m.outputs];
      if (xb.rank !== 2) x2 = tf.reshape(xb, [-1, F]);
    }
    // A comparator compares the pre-activation with its thresholds (a ReLU is folded into them).
    const act = getActivation(cmp ? 'linear' : m.activation);
    const noise = ctx.noise && d.read.noiseSigma > 0;
    const y = !noise && !adcActive(m, d) ? fastPath(rt, x2, geo, outShape, ctx, act.fn) : slowPath(rt, x2, geo, pos, outShape, ctx, act);
    if (!cmp) return y;
    const decisions = compareTensor(y, cmp);
    y.dispose();
    return decisions;
  } finally {
    if (x2 !== xb) x2.dispose();
    if (xb !== x) xb.dispose();
  }
}

function slowPath(rt: LayerRT, x2: Tensor, geo: ConvGeo | null, pos: number, outShape: number[], ctx: Ctx, act: { name: string; fn: (t: Tensor) => Tensor }): Tensor {
  const m = rt.m;
  const d = ctx.device;
  const cout = m.outputs;
  const noise = ctx.noise && d.read.noiseSigma > 0;
  const adc = adcActive(m, d);
  const B = outShape[0];
  const xView = readView(x2);
  const xData = ctx.scratch.get('x', xView.length);
  xData.set(xView);
  const perSample = xData.length / B;
  const P = d.dac.mode === 'bitSerial' ? d.dac.inputBits : 1;
  const bChunk = Math.max(1, Math.floor(CHUNK_VALUES / (P * pos * cout * 2)));
  // The outputs: written in place in a tensor on the wasm heap (no copy afterwards), else in a
  // scratch buffer. No zero fill: the first read of each output assigns it (see `first` below).
  const outT = heapTensor(outShape);
  const outScratch = outT ? null : ctx.scratch.get('out', B * pos * cout);
  const measuring = ctx.calibrate && adc && d.adc.range === 'auto';
  const bits = d.adc.bits ?? 0;
  // 6. offset, bias, neuron: applied with the last read of each output
  let off: Float32Array | null = null;
  let offPerPos = false;
  if (m.inputEncoding === 'signedBinary') {
    if (geo) {
      off = convOffsets(rt, geo).data;
      offPerPos = true;
    } else off = rt.denseOff ??= Float32Array.from(rt.colSums[0]);
  }
  const relu = act.name === 'relu';
  // With drift compensation the periphery pass stops before the bias: factor, bias and
  // activation follow as tf ops (below).
  const comp = rt.comp;
  const fin: Finish = { off, offPerPos, bias: comp ? null : m.bias, relu: relu && !comp };
  const std = d.read.noiseSigma;
  const heapParams = noise || (d.dac.mode === 'bitSerial' && bitSerialAvailable()) ? ctx.scratch.heapParams() : null;
  if (d.dac.mode === 'bitSerial' && outT && heapParams && bitSerialAvailable()) {
    // The bit-serial reads as the arrays compute them (src/crossbar/bit_serial.ts).
    rt.bitSerial ??= new BitSerialHeap(rt.groups.map((gs) => gs.map((g) => ({ rowStart: g.rowStart, rows: g.rows, w: g.w, sq: g.sq }))), cout);
    const bits = d.adc.bits ?? 0;
    try {
      for (const pass of measuring ? (['measure', 'read'] as const) : (['read'] as const)) {
        const range = d.adc.range === 'auto' ? rt.zRange ?? 0 : (d.adc.range * m.weightScale) / d.read.voltage;
        let step = 0;
        let maxCode = 0;
        if (adc && range > 0) {
          maxCode = bits === 1 ? 0 : 2 ** (bits - 1) - 1;
          step = bits === 1 ? range : range / maxCode;
        }
        const read = pass === 'read';
        const z = rt.bitSerial.run({
          x: xData,
          B,
          perSample,
          pos,
          bands: geo ? bandsOf(geo.oh, m.replicas) : null,
          geo,
          rowsTotal: geo ? m.rows : (x2.shape[1] as number),
          P: d.dac.mode === 'bitSerial' ? d.dac.inputBits : 1,
          xScale: rt.xScale ?? 1,
          std: noise && read ? std : 0,
          table: noise && read ? normalTable(ctx.gen) : null,
          owner: ctx.gen,
          seed: () => ctx.gen.int32(),
          step,
          maxCode,
          measure: !read,
          fin,
          out: read ? outT : null,
          params: heapParams,
        });
        if (z === false) throw new Error('the bit-serial kernel is not available');
        if (!read) rt.zRange = z;
      }
    } catch (e) {
      outT.dispose();
      throw e;
    }
    return finishOutput(outT, comp, m, act, relu);
  }
  try {
    // Two passes when calibrating the ADC range: the ideal currents first, then the reads.
    for (const pass of measuring ? (['measure', 'read'] as const) : (['read'] as const)) {
      let zMax = 0;
      const range = d.adc.range === 'auto' ? rt.zRange ?? 0 : (d.adc.range * m.weightScale) / d.read.voltage;
      let step = 0;
      let maxCode = 0;
      if (adc && range > 0) {
        maxCode = bits === 1 ? 0 : 2 ** (bits - 1) - 1;
        step = bits === 1 ? range : range / maxCode;
      }
      const read = pass === 'read';
      for (let s0 = 0; s0 < B; s0 += bChunk) {
        const b = Math.min(bChunk, B - s0);
        const dp = dacPlanes(xData.subarray(s0 * perSample, (s0 + b) * perSample), d, rt.xScale, noise && read, ctx.scratch);
        const sameVar = noise && read && dp.varIn === null;
        tf.tidy(() => {
          const N = dp.P * b;
          const rowsF = dp.P * b * pos;
          const F = geo ? 0 : (x2.shape[1] as number);
          const plWin = geo ? jsWindows(dp.planes, N, geo.H, geo.W, geo.C) : null;
          const vWin = geo && dp.varIn ? jsWindows(dp.varIn, N, geo.H, geo.W, geo.C) : null;
          const runOne = (g: GroupRT, lin: (input: 'planes' | 'var', k: Tensor) => Tensor, bandPos: number, posStart: number, first: boolean, lastGroup: boolean) => {
            if (sameVar && !g.kcat) g.kcat = tf.keep(tf.concat([g.k, g.ksq!], g.k.rank - 1));
            const zt = lin('planes', sameVar ? g.kcat! : g.k);
            const vt = noise && read && !sameVar ? lin('var', g.ksq!) : null;
            // Views after the last tf op of this block.
            const z = readView(zt);
            if (!read) {
              zMax = Math.max(zMax, maxAbsStrided(z, cout, cout));
              return;
            }
            const blk: Block = { P: dp.P, b, bandPos, pos, posStart, sample0: s0, cout, first };
            const f = lastGroup ? fin : null;
            const out = outT ? readView(outT) : outScratch!;
            if (noise) {
              const hp = heapParams ? { view: readView(heapParams.tensor), tableIn: heapParams.tableIn } : null;
              if (sameVar) periphery(z, 2 * cout, z, 2 * cout, cout, blk, dp.weights, std, step, maxCode, ctx.gen, out, f, hp);
              else periphery(z, cout, readView(vt!), cout, 0, blk, dp.weights, std, step, maxCode, ctx.gen, out, f, hp);
            } else periphery(z, cout, null, 0, 0, blk, dp.weights, 0, step, maxCode, ctx.gen, out, f);
          };
          if (geo) {
            const g0 = geo;
            for (const band of bandsOf(g0.oh, m.replicas)) {
              const gs = rt.groups[band.replica];
              gs.forEach((g, gi) => {
                runOne(g, (input, k) => convBand(input === 'planes' ? plWin! : vWin!, g0, band.row0, band.rows, g.c0, g.c1, k), band.rows * g0.ow, band.row0 * g0.ow, gi === 0, gi === gs.length - 1);
              });
            }
          } else {
            const gs = rt.groups[0];
            gs.forEach((g, gi) => {
              const cols = new Map<string, Tensor>();
              const colsOf = (which: 'planes' | 'var') => {
                let t = cols.get(which);
                if (!t) {
                  t = jsColumns(which === 'planes' ? dp.planes : dp.varIn!, rowsF, F, g.c0, g.c1);
                  cols.set(which, t);
                }
                return t;
              };
              runOne(g, (input, k) => tf.matMul(colsOf(input) as tf.Tensor2D, k as tf.Tensor2D), pos, 0, gi === 0, gi === gs.length - 1);
            });
          }
        });
      }
      if (!read) rt.zRange = zMax;
    }
  } catch (e) {
    outT?.dispose();
    throw e;
  }
  // The cpu backend keeps the array it is given: hand it a copy of the scratch buffer.
  return finishOutput(outT ?? tf.tensor(outScratch!.slice(), outShape), comp, m, act, relu);
}

/**
 * The layer's output from its periphery pass's: with drift compensation the factor, the bias and
 * the activation as tf ops (the pass stopped before them); else the activation where the pass did
 * not apply it. Takes ownership of t.
 */
function finishOutput(t: Tensor, comp: Float32Array | null, m: MappedLayer, act: { name: string; fn: (t: Tensor) => Tensor }, relu: boolean): Tensor {
  if (comp) {
    const y = tf.tidy(() => {
      let v = tf.mul(t, tf.tensor1d(comp));
      if (m.bias) v = tf.add(v, tf.tensor1d(m.bias));
      return act.fn(v);
    });
    t.dispose();
    return y;
  }
  if (relu || act.name === 'linear') return t;
  const y = tf.tidy(() => act.fn(t));
  t.dispose();
  return y;
}

function fastPath(rt: LayerRT, x2: Tensor, geo: ConvGeo | null, outShape: number[], ctx: Ctx, act: (t: Tensor) => Tensor): Tensor {
  const m = rt.m;
  return tf.tidy(() => {
    const xd = dacTensor(x2, ctx.device, rt.xScale);
    let y: Tensor;
    if (geo) {
      const win = tensorWindows(xd);
      const parts = bandsOf(geo.oh, m.replicas).map((band) => convBand(win, geo, band.row0, band.rows, 0, geo.C, rt.ktotal[band.replica]));
      y = parts.length === 1 ? parts[0] : tf.concat(parts, 1);
      if (m.inputEncoding === 'signedBinary') y = tf.sub(tf.mul(y, 2), convOffsets(rt, geo).tensor);
    } else {
      y = tf.matMul(xd as tf.Tensor2D, rt.ktotal[0] as tf.Tensor2D);
      if (m.inputEncoding === 'signedBinary') y = tf.sub(tf.mul(y, 2), tf.tensor1d(Float32Array.from(rt.colSums[0])));
      if (y.shape.join() !== outShape.join()) y = tf.reshape(y, outShape);
    }
    if (rt.comp) y = tf.mul(y, tf.tensor1d(rt.comp));
    if (m.bias) y = tf.add(y, tf.tensor1d(m.bias));
    return act(y);
  });
}

/**
 * The single step outside [from, to) whose output the steps in the range read (-1: the network's
 * input), checked: a range that reads two outside steps (a residual branch cut apart) is refused.
 */
function outsideInput(net: CrossbarNetwork, from: number, to: number): number {
  let outside: number | null = null;
  for (let i = from; i < to; i++) {
    for (const j of net.steps[i].inputs) {
      if (j >= from) continue;
      if (outside !== null && outside !== j) {
        throw new RangeError(`steps [${from}, ${to}) read the outputs of two steps before them (${outside < 0 ? 'the input' : net.steps[outside].layer.name} and ${j < 0 ? 'the input' : net.steps[j].layer.name}): run a range that takes one tensor`);
      }
      outside = j;
    }
  }
  if (from === 0 && outside !== null && outside !== -1) throw new RangeError('steps from 0 read a step before the network');
  return outside ?? from - 1;
}

/** The step indices a comparator of mapped step i replaces (the digital layers after it it folds), in order. */
function replacedSteps(net: CrossbarNetwork, i: number, cmp: Comparator): number[] {
  const chain = chainAfter(net.steps, i, (n) => net.steps[n].mapped !== null).slice(0, cmp.layers.length);
  if (chain.map((n) => net.steps[n].layer.name).join('\n') !== cmp.layers.join('\n')) {
    throw new ConfigError(net.steps[i].mapped!.name, `its comparator replaces ${cmp.layers.join(', ')}, but the layers after it are ${chain.map((n) => net.steps[n].layer.name).join(', ')}`);
  }
  return chain;
}

/**
 * Steps [from, to) of the network on x, which stands for the one output from before the range
 * that the range reads (the network's input when from is 0; the output of step from - 1 for a
 * chain). Returns the output of step to - 1 (x itself for an empty range). The steps form a DAG:
 * each reads the outputs of its `inputs`, every intermediate is freed after its last reader. A
 * mapped layer with a comparator whose replaced layers all lie in the range outputs its column
 * decisions, which the replaced max pools pool (src/crossbar/comparator.ts); its BN and activation
 * are not run. Where the range ends inside them, the layer gives its analog sums and the digital
 * layers decide. An absorbed step (a folded BN, a ReLU made a neuron) passes its input on.
 */
function runSteps(net: CrossbarNetwork, rt: Runtime, x: Tensor, ctx: Ctx, from = 0, to = net.steps.length): Tensor {
  if (to <= from) return x;
  const outside = outsideInput(net, from, to);
  const last = to - 1;
  // Readers left of each step's output within the range (+1 for the range's own output).
  const readers = new Map<number, number>();
  const addReader = (j: number, n: number) => readers.set(j, (readers.get(j) ?? 0) + n);
  for (let i = from; i < to; i++) for (const j of net.steps[i].inputs) addReader(j >= from ? j : outside, 1);
  addReader(last, 1);
  // One tensor may stand for several steps (absorbed steps pass theirs on): count per tensor.
  const values = new Map<number, Tensor>([[outside, x]]);
  const uses = new Map<Tensor, number>([[x, readers.get(outside) ?? 0]]);
  const release = (t: Tensor) => {
    const n = (uses.get(t) ?? 0) - 1;
    uses.set(t, n);
    if (n <= 0 && t !== x) t.dispose();
  };
  const put = (i: number, t: Tensor) => {
    values.set(i, t);
    uses.set(t, (uses.get(t) ?? 0) + (readers.get(i) ?? 0));
    if ((uses.get(t) ?? 0) <= 0 && t !== x) t.dispose();
  };
  const done = new Set<number>();
  try {
    for (let i = from; i < to; i++) {
      if (done.has(i)) continue;
      const step = net.steps[i];
      const ins = step.inputs.map((j) => {
        const v = values.get(j >= from ? j : outside);
        if (!v) throw new Error(`step ${step.layer.name} reads step ${j}, which has no value`);
        return v;
      });
      const cmp = step.mapped?.comparator ?? null;
      const replaced = step.mapped && cmp ? replacedSteps(net, i, cmp) : [];
      let out: Tensor;
      let at = i;
      if (step.absorbedBy !== null) out = ins[0];
      else if (step.mapped && cmp && replaced.every((n) => n < to)) {
        out = forwardMapped(rt.layers.get(step.mapped)!, ins[0], ctx, cmp);
        for (const n of replaced) {
          const pooled = applyReplaced(net.steps[n].layer, out, cmp);
          if (pooled !== out) out.dispose();
          out = pooled;
          done.add(n);
        }
        at = replaced.length ? replaced[replaced.length - 1] : i;
      } else if (step.mapped) out = forwardMapped(rt.layers.get(step.mapped)!, ins[0], ctx, null);
      else {
        const arg = ins.length === 1 ? ins[0] : ins;
        out = tf.tidy(() => step.layer.apply(arg, { training: false }) as Tensor);
      }
      // A replaced chain's inner steps have no reader outside it (single links): their counts are
      // those of the chain's links only, so the pooled decisions stand for its last step.
      put(at, out);
      for (const v of ins) release(v);
      ctx.onStep?.(at);
    }
    const y = values.get(last)!;
    return y;
  } catch (e) {
    for (const [t, n] of uses) if (n > 0 && t !== x && !t.isDisposed) t.dispose();
    throw e;
  }
}

function needsCalibration(net: CrossbarNetwork, readNoise: boolean): boolean {
  const d = net.device;
  const noise = readNoise && d.read.noiseSigma > 0;
  return net.layers.some((m) => {
    const adc = adcActive(m, d);
    const slow = noise || adc;
    return (needsXScale(d) && m.inputEncoding === 'real') || (adc && d.adc.range === 'auto' && (slow || noise));
  });
}

function contextFor(net: CrossbarNetwork, rt: Runtime, o: CrossbarInferenceOptions, label: string, calibrate: boolean): Ctx {
  const seed = o.seed ?? net.mapping.seed;
  return { device: net.device, noise: o.readNoise ?? true, gen: new FastNormal(deriveSeed(seed, label)), calibrate, scratch: rt.scratch };
}

/** Whether the network's current runtime is the one of these options and is calibrated. */
function isCalibrated(net: CrossbarNetwork, o: CrossbarInferenceOptions): boolean {
  const cur = net.runtime as Runtime | null;
  return !!cur && cur.key === runtimeKey(net, o) && cur.calibrated;
}

/**
 * Calibrates the DAC input range of every mapped layer (max|x| of its input) and the 'auto' ADC
 * ranges (max |ideal column current|) on a batch of inputs, layer by layer through the crossbar
 * itself (each layer's input comes from the crossbar layers before it, read with noise).
 * The ranges are those of programming time: with driftSeconds > 0 they are calibrated on the
 * arrays as programmed (t0) and kept for the drifted reads (whatever the compensation: it is
 * digital, after the ADC).
 */
export function calibrateCrossbar(net: CrossbarNetwork, x: Tensor, opts: CrossbarInferenceOptions = {}): void {
  if ((opts.driftSeconds ?? 0) > 0) {
    calibrateCrossbar(net, x, { ...opts, driftSeconds: 0 });
    const t0 = net.runtime as Runtime;
    const ranges = new Map<string, { xScale: number | null; zRange: number | null }>();
    for (const [m, l] of t0.layers) ranges.set(m.name, { xScale: l.xScale, zRange: l.zRange });
    const rt = runtimeOf(net, opts);
    for (const [m, l] of rt.layers) Object.assign(l, ranges.get(m.name));
    rt.calibrated = true;
    return;
  }
  const report = opts.onCalibrationStep;
  const building = !(net.runtime && (net.runtime as Runtime).key === runtimeKey(net, opts)) ? net.layers.length : 0;
  const total = building + net.steps.length;
  const rt = runtimeOf(net, opts, report && ((k) => report(k, total)));
  const ctx = contextFor(net, rt, opts, 'calibration-noise', true);
  if (report) ctx.onStep = (i) => report(building + i + 1, total);
  tf.tidy(() => {
    runSteps(net, rt, x, ctx).dispose();
  });
  rt.calibrated = true;
}

/** The calibrated ranges of each mapped layer: DAC full scale (input units) and ADC full scale (uA). */
export function calibrationOf(net: CrossbarNetwork): { layer: string; inputRange: number | null; adcRangeUA: number | null }[] {
  const rt = net.runtime as Runtime | null;
  return net.layers.map((m) => {
    const l = rt?.layers.get(m);
    const z = l?.zRange ?? null;
    return { layer: m.name, inputRange: l?.xScale ?? null, adcRangeUA: z === null ? null : (z * net.device.read.voltage) / m.weightScale };
  });
}

/**
 * The network's outputs (logits) for a batch x, computed through the arrays. When the device needs
 * calibrated ranges and none were calibrated yet, x itself calibrates them first.
 */
export function predictCrossbar(net: CrossbarNetwork, x: Tensor, opts: CrossbarInferenceOptions = {}): Tensor {
  if (!isCalibrated(net, opts) && needsCalibration(net, opts.readNoise ?? true)) calibrateCrossbar(net, x, opts);
  const rt = runtimeOf(net, opts);
  const ctx = contextFor(net, rt, opts, 'read-noise', false);
  return runSteps(net, rt, x, ctx);
}

/** Per mapped layer, the drift compensation factors of the runtime last used (null without compensation). */
export function driftFactorsOf(net: CrossbarNetwork): { layer: string; factors: Float32Array | null }[] {
  const rt = net.runtime as Runtime | null;
  return net.layers.map((m) => ({ layer: m.name, factors: rt?.layers.get(m)?.comp ?? null }));
}

// ---------------------------------------------------------------------------------------------
// Counts

function sumCounts(list: readonly OperationCounts[], factor = 1): OperationCounts {
  const z: OperationCounts = { arrayReads: 0, cellsRead: 0, dacConversions: 0, adcConversions: 0, neuronEvaluations: 0, digitalAdds: 0 };
  for (const c of list) for (const k of Object.keys(z) as (keyof OperationCounts)[]) z[k] += c[k] * factor;
  return z;
}

/** Operation counts of one inference through each mapped layer (see the top of this file). */
export function layerCounts(net: CrossbarNetwork): LayerCounts[] {
  const d = net.device;
  const reads = d.dac.mode === 'bitSerial' ? d.dac.inputBits : 1;
  return net.steps
    .filter((s) => s.mapped)
    .map((s) => {
      const m = s.mapped!;
      const shape = s.layer.outputShape as (number | null)[];
      const oh = m.kind === 'conv2d' ? (shape[1] as number) : 1;
      const ow = m.kind === 'conv2d' ? (shape[2] as number) : 1;
      const positions = m.kind === 'conv2d' ? oh * ow : (shape.slice(1, -1) as number[]).reduce((a, b) => a * b, 1);
      const bands = m.kind === 'conv2d' ? bandsOf(oh, m.replicas) : [{ replica: 0, row0: 0, rows: 1 }];
      const c: OperationCounts = { arrayReads: 0, cellsRead: 0, dacConversions: 0, adcConversions: 0, neuronEvaluations: 0, digitalAdds: 0 };
      const adc = m.neuron !== 'threshold';
      let rowTiles = 0;
      let arraysPerReplica = 0;
      for (const band of bands) {
        const p = m.kind === 'conv2d' ? band.rows * ow : positions;
        const arrays = m.arrays.filter((a) => a.replica === band.replica);
        const groups = new Set(arrays.map((a) => `${a.tile.rowStart}:${a.tile.rows}`)).size;
        rowTiles = Math.max(rowTiles, groups);
        arraysPerReplica = Math.max(arraysPerReplica, arrays.length);
        for (const a of arrays) {
          c.arrayReads += p * reads;
          c.cellsRead += p * reads * a.tile.rows * a.tile.arrayCols;
          c.dacConversions += p * reads * a.tile.rows;
          if (adc) c.adcConversions += p * reads * a.tile.outs;
        }
        c.digitalAdds += p * m.outputs * (groups * reads - 1 + (m.bias ? 1 : 0) + (m.inputEncoding === 'signedBinary' ? 1 : 0));
      }
      c.neuronEvaluations = positions * m.outputs;
      return { layer: m.name, positions, readsPerInput: reads, arrays: arraysPerReplica, rowTiles, neuron: m.neuron, ...c };
    });
}

/** Counts of `samples` inferences. */
export function crossbarCounts(net: CrossbarNetwork, samples: number): CrossbarCounts {
  const perLayer = layerCounts(net);
  const perInference = sumCounts(perLayer);
  return { perInference, total: sumCounts([perInference], samples), samples, perLayer };
}

// ---------------------------------------------------------------------------------------------
// Evaluation

/**
 * Calibrates the network on the first `samples` (default 500) samples of `split` when the device
 * needs calibrated ranges and none were calibrated yet (see calibrateCrossbar). Returns the
 * samples used, 0 when nothing was calibrated.
 */
export function calibrateCrossbarOn(
  net: CrossbarNetwork,
  split: Split,
  opts: CrossbarInferenceOptions & { samples?: number; imageShape?: [number, number, number]; numClasses?: number } = {},
): number {
  if (isCalibrated(net, opts) || !needsCalibration(net, opts.readNoise ?? true)) return 0;
  const imageShape = opts.imageShape ?? (net.inputShape as [number, number, number]);
  const cal = firstSamples(split, opts.samples ?? 500);
  for (const b of batchesOf(cal, { batchSize: Math.max(1, cal.count), numClasses: opts.numClasses ?? 10 })) {
    const x = tf.tensor(b.x, [b.size, ...imageShape]);
    calibrateCrossbar(net, x, opts);
    x.dispose();
  }
  return cal.count;
}

/**
 * Accuracy of the crossbar network on a split, with the operation counts. Calibration (when the
 * device needs it and the network is not calibrated yet): the first calibrationSamples samples of
 * opts.calibration, or of the evaluated split itself.
 */
export function evaluateCrossbar(net: CrossbarNetwork, split: Split, opts: EvaluateCrossbarOptions = {}): CrossbarEvalResult {
  const imageShape = opts.imageShape ?? (net.inputShape as [number, number, number]);
  const numClasses = opts.numClasses ?? 10;
  const batchSize = opts.batchSize ?? 500;
  const t0 = performance.now();
  const calibrationSamples = calibrateCrossbarOn(net, opts.calibration ?? split, { ...opts, samples: opts.calibrationSamples, imageShape, numClasses });
  const rt = runtimeOf(net, opts);
  const ctx = contextFor(net, rt, opts, 'read-noise', false);
  let correct = 0;
  let done = 0;
  for (const b of batchesOf(split, { batchSize, numClasses })) {
    const x = tf.tensor(b.x, [b.size, ...imageShape]);
    const logits = runSteps(net, rt, x, ctx);
    const pred = tf.tidy(() => tf.argMax(logits, -1).dataSync() as Int32Array);
    for (let i = 0; i < b.size; i++) if (pred[i] === b.labels[i]) correct++;
    logits.dispose();
    x.dispose();
    done += b.size;
    opts.onProgress?.(done, split.count, correct);
  }
  const seconds = (performance.now() - t0) / 1000;
  const count = split.count;
  return {
    accuracy: count ? correct / count : NaN,
    count,
    correct,
    seconds,
    samplesPerSec: seconds > 0 ? count / seconds : 0,
    calibrationSamples,
    counts: crossbarCounts(net, count),
  };
}

// ---------------------------------------------------------------------------------------------
// A runner for in-situ training: parts of the network, one read-noise stream across calls, and
// the effective weights of a layer rebuilt after its conductances were pulsed.

export interface CrossbarRunner {
  /** Steps [from, to) of the network (default all) applied to x, the output of step from - 1 (or the input). */
  run(x: Tensor, from?: number, to?: number): Tensor;
  /** After the programmed conductances of m changed: rebuild its effective weights; the calibrated ranges are kept. */
  refresh(m: MappedLayer): void;
}

/**
 * A runner over the network with the given options. The read noise continues one seeded stream
 * over all calls (`label` names the stream). Calibrates on the first full-network x when the
 * device needs calibrated ranges and none exist yet (calibrate with calibrateCrossbar first to
 * choose the samples).
 */
export function crossbarRunner(net: CrossbarNetwork, opts: CrossbarInferenceOptions = {}, label = 'read-noise'): CrossbarRunner {
  const ctx = contextFor(net, runtimeOf(net, opts), opts, label, false);
  const seed = opts.seed ?? net.mapping.seed;
  return {
    run(x: Tensor, from = 0, to = net.steps.length) {
      if (!(from >= 0 && to <= net.steps.length && from <= to)) throw new RangeError(`steps [${from}, ${to}) outside the network's ${net.steps.length}`);
      if (!isCalibrated(net, opts) && needsCalibration(net, opts.readNoise ?? true)) {
        if (from !== 0) throw new ConfigError('calibration', 'the network is not calibrated: run calibrateCrossbar (or the whole network) first');
        calibrateCrossbar(net, x, opts);
      }
      // (calibrating with drift builds the runtime anew: take the current one at every call)
      const rt = runtimeOf(net, opts);
      ctx.scratch = rt.scratch;
      const h = runSteps(net, rt, x, ctx, from, to);
      return h === x ? tf.clone(x) : h;
    },
    refresh(m: MappedLayer) {
      const rt = runtimeOf(net, opts);
      const old = rt.layers.get(m);
      if (!old) throw new RangeError(`layer ${m.name} is not a mapped layer of this network`);
      const fresh = buildLayerRT(m, net.device, opts, seed);
      fresh.xScale = old.xScale;
      fresh.zRange = old.zRange;
      disposeLayerRT(old);
      rt.layers.set(m, fresh);
    },
  };
}
