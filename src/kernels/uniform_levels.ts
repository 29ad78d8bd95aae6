// The forward pass of layers/quantizers.ts's steUniform (L evenly spaced levels, optionally scaled
// by max|x|) as one kernel, UNIFORM_LEVELS, for the wasm backend (AssemblyScript SIMD,
// src/kernels/assembly/quantize.ts; the float32 loop below where SIMD cannot run) and the cpu
// backend. tfjs's op chain for it is 11 kernels a weight tensor, run every step of every
// quantized layer; for the papers' small layers the engine's cost per kernel is the time. Both
// implementations do the chain's float32 operations in its order, rounding half to even as
// tf.round, so the results are the same bits (tested against the chain).
//
// Input x (float32); attrs levels (L >= 2), signed (levels on [-1, 1], else [0, 1]), scaleMax
// (quantize x / s and multiply back, s = max(max|x|, 1e-12)). Output: the quantized x.
import { tf } from '../tf';
import { CpuBackend, KernelArgs, KernelConfig, TensorInfo, WasmBackend, input } from './types';
import { heapModule, ptr } from './wasm_simd';

export const UNIFORM_LEVELS = 'MemristorTfjsUniformLevels';

interface QuantizeModule {
  maxAbs(x: number, count: number): number;
  uniformLevels(x: number, out: number, count: number, n: number, half: number, twoOverN: number, signed: number, s: number, scaled: number): void;
}

interface Levels {
  n: number;
  half: number;
  twoOverN: number;
  signed: boolean;
  scaleMax: boolean;
}

function levelsOf(args: KernelArgs): Levels {
  const a = args.attrs ?? {};
  const L = Number(a.levels);
  if (!Number.isInteger(L) || L < 2) throw new Error(`${UNIFORM_LEVELS}: attribute levels must be an integer >= 2, got ${String(a.levels)}`);
  const n = L - 1;
  return { n, half: Math.fround(n / 2), twoOverN: Math.fround(2 / n), signed: a.signed === true, scaleMax: a.scaleMax === true };
}

/** Round half to even (tf.round). */
function roundEven(v: number): number {
  const r = Math.round(v);
  return Math.abs(v % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** max(max|x|, 1e-12) in float32: tf.maximum(tf.max(tf.abs(x)), 1e-12). */
function scaleOf(maxAbs: number): number {
  return Math.max(maxAbs, Math.fround(1e-12));
}

/** The quantized x into out, element by element in float32 (s: the scale, or 1 when not scaled). */
export function uniformLevelsF32(x: Float32Array, out: Float32Array, k: Levels, s: number): void {
  const f = Math.fround;
  const lo = k.signed ? -1 : 0;
  for (let i = 0; i < x.length; i++) {
    const y = k.scaleMax ? f(x[i] / s) : x[i];
    const c = Math.min(Math.max(y, lo), 1);
    const q = k.signed ? f(f(roundEven(f(f(c + 1) * k.half)) * k.twoOverN) - 1) : f(roundEven(f(c * k.n)) / k.n);
    out[i] = k.scaleMax ? q * s : q;
  }
}

function maxAbsOf(x: Float32Array): number {
  let m = 0;
  for (let i = 0; i < x.length; i++) m = Math.max(m, Math.abs(x[i]));
  return m;
}

function check(x: TensorInfo): void {
  if (x.dtype !== 'float32') throw new Error(`${UNIFORM_LEVELS}: float32 only, got ${x.dtype}`);
}

function wasmLevels(args: KernelArgs): TensorInfo {
  const backend = args.backend as WasmBackend;
  const x = input(args, 'x');
  check(x);
  const k = levelsOf(args);
  const out = backend.makeOutput(x.shape, 'float32');
  const count = x.shape.reduce((a, b) => a * b, 1);
  if (count === 0) return out;
  const mod = heapModule<QuantizeModule>(backend, 'heap_kernels');
  if (mod) {
    const s = k.scaleMax ? scaleOf(mod.maxAbs(ptr(backend, x), count)) : 1;
    mod.uniformLevels(ptr(backend, x), ptr(backend, out), count, k.n, k.half, k.twoOverN, k.signed ? 1 : 0, s, k.scaleMax ? 1 : 0);
  } else {
    const xs = backend.typedArrayFromHeap(x) as Float32Array;
    uniformLevelsF32(xs, backend.typedArrayFromHeap(out) as Float32Array, k, k.scaleMax ? scaleOf(maxAbsOf(xs)) : 1);
  }
  return out;
}

function cpuLevels(args: KernelArgs): TensorInfo {
  const backend = args.backend as CpuBackend;
  const x = input(args, 'x');
  check(x);
  const k = levelsOf(args);
  const xs = backend.readSync(x.dataId) as Float32Array;
  const out = new Float32Array(xs.length);
  uniformLevelsF32(xs, out, k, k.scaleMax ? scaleOf(maxAbsOf(xs)) : 1);
  return backend.makeTensorInfo(x.shape.slice(), 'float32', out);
}

/** The UNIFORM_LEVELS kernel for 'wasm' or 'cpu' (null for other backends: steUniform then runs tfjs's chain). */
export function uniformLevelsKernelConfig(backendName: string): KernelConfig | null {
  const kernelFunc = backendName === 'wasm' ? wasmLevels : backendName === 'cpu' ? cpuLevels : null;
  return kernelFunc ? { kernelName: UNIFORM_LEVELS, backendName, kernelFunc: kernelFunc as unknown as tf.KernelFunc } : null;
}
