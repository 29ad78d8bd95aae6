// Per-channel kernels for the wasm backend (AssemblyScript SIMD, src/kernels/assembly/channels.ts):
// Sum and Mean over every axis but the last, FusedBatchNorm with per-channel statistics, and Add, Sub, Multiply, RealDiv of a tensor [..., C]
// with one value per channel ([C] or [1, ..., 1, C]). These are the batch-norm statistics and
// gradients: on ResNet-20 the backend's own kernels for them (a transpose before each reduction, a
// broadcast index per element) took about a third of a training step. Other cases, and dtypes
// other than float32, go to the stock kernels.
import { tf } from '../tf';
import { KernelArgs, KernelConfig, TensorInfo, WasmBackend, input } from './types';
import { heapModule, ptr } from './wasm_simd';

interface ChannelsModule {
  columnSums(x: number, out: number, totals: number, N: number, C: number, scale: number): void;
  rowBroadcast(op: number, x: number, r: number, out: number, N: number, C: number, rowFirst: number): void;
  normalize(x: number, mean: number, factor: number, offset: number, out: number, N: number, C: number): void;
}

function size(shape: number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/** Whether `axis` names every axis but the last (in any order, negative or not). */
function leadingAxes(axis: unknown, rank: number): boolean {
  const list = (Array.isArray(axis) ? axis : [axis]) as number[];
  if (rank < 2 || list.some((a) => typeof a !== 'number')) return false;
  const norm = [...new Set(list.map((a) => (a < 0 ? a + rank : a)))].sort((a, b) => a - b);
  return norm.length === rank - 1 && norm.every((a, i) => a === i);
}

function reduction(args: KernelArgs, stock: tf.KernelFunc | null, mean: boolean): TensorInfo {
  const backend = args.backend as WasmBackend;
  const x = input(args, 'x');
  const attrs = args.attrs ?? {};
  const m = heapModule<ChannelsModule>(backend, 'heap_kernels');
  const C = x.shape[x.shape.length - 1];
  const N = size(x.shape) / (C || 1);
  if (m && x.dtype === 'float32' && leadingAxes(attrs.axis, x.shape.length) && N > 0 && C > 0) {
    const outShape = attrs.keepDims ? x.shape.map((s, d) => (d === x.shape.length - 1 ? s : 1)) : [C];
    const out = backend.makeOutput(outShape, 'float32');
    const totals = backend.makeOutput([2 * C], 'float32');
    m.columnSums(ptr(backend, x), ptr(backend, out), ptr(backend, totals), N, C, mean ? 1 / N : 1);
    backend.disposeData(totals.dataId);
    return out;
  }
  if (!stock) throw new Error(`${mean ? 'Mean' : 'Sum'}: no stock wasm kernel to fall back to`);
  return stock(args) as TensorInfo;
}

/** Whether r is one value per channel of f: shape [C] or [1, ..., 1, C], rank at most f's. */
function perChannel(r: TensorInfo, f: TensorInfo): boolean {
  const C = f.shape[f.shape.length - 1];
  if (f.shape.length === 0 || C < 4 || r.shape.length === 0 || r.shape.length > f.shape.length) return false;
  return r.shape[r.shape.length - 1] === C && r.shape.slice(0, -1).every((s) => s === 1) && size(f.shape) > C;
}

const OPS: Record<string, number> = { Add: 0, Sub: 1, Multiply: 2, RealDiv: 3 };

function binary(name: string, args: KernelArgs, stock: tf.KernelFunc | null): TensorInfo {
  const backend = args.backend as WasmBackend;
  const a = input(args, 'a');
  const b = input(args, 'b');
  const m = heapModule<ChannelsModule>(backend, 'heap_kernels');
  if (m && a.dtype === 'float32' && b.dtype === 'float32') {
    const aFull = perChannel(b, a);
    const bFull = !aFull && perChannel(a, b);
    if (aFull || bFull) {
      const f = aFull ? a : b;
      const r = aFull ? b : a;
      const C = f.shape[f.shape.length - 1];
      const out = backend.makeOutput(f.shape, 'float32');
      m.rowBroadcast(OPS[name], ptr(backend, f), ptr(backend, r), ptr(backend, out), size(f.shape) / C, C, bFull ? 1 : 0);
      return out;
    }
  }
  if (!stock) throw new Error(`${name}: no stock wasm kernel to fall back to`);
  return stock(args) as TensorInfo;
}

/** One value per channel of a C-channel tensor: shape [C] or [1, ..., 1, C]. */
function channelValues(t: TensorInfo | undefined | null, C: number): boolean {
  return t != null && t.dtype === 'float32' && t.shape.length > 0 && t.shape[t.shape.length - 1] === C && size(t.shape) === C;
}

/**
 * FusedBatchNorm: y = (x - mean) * scale / sqrt(variance + epsilon) + offset, one pass; the
 * per-channel factor is computed here in float64 and rounded once.
 */
function batchNorm(args: KernelArgs, stock: tf.KernelFunc | null): TensorInfo {
  const backend = args.backend as WasmBackend;
  const { x, mean, variance, offset, scale } = args.inputs;
  const eps = Number((args.attrs ?? {}).varianceEpsilon ?? 0.001);
  const m = heapModule<ChannelsModule>(backend, 'heap_kernels');
  const C = x ? x.shape[x.shape.length - 1] : 0;
  const fits =
    m && x && x.dtype === 'float32' && x.shape.length >= 2 && size(x.shape) > 0 && channelValues(mean, C) && channelValues(variance, C) && (offset == null || channelValues(offset, C)) && (scale == null || channelValues(scale, C));
  if (!fits) {
    if (!stock) throw new Error('FusedBatchNorm: no stock wasm kernel to fall back to');
    return stock(args) as TensorInfo;
  }
  const params = backend.makeOutput([2 * C], 'float32');
  const out = backend.makeOutput(x.shape, 'float32');
  const p = backend.typedArrayFromHeap(params) as Float32Array;
  const v = backend.typedArrayFromHeap(variance!) as Float32Array;
  const s = scale ? (backend.typedArrayFromHeap(scale) as Float32Array) : null;
  const o = offset ? (backend.typedArrayFromHeap(offset) as Float32Array) : null;
  for (let c = 0; c < C; c++) {
    p[c] = (s ? s[c] : 1) / Math.sqrt(v[c] + eps);
    p[C + c] = o ? o[c] : 0;
  }
  const at = ptr(backend, params);
  m.normalize(ptr(backend, x), ptr(backend, mean!), at, at + 4 * C, ptr(backend, out), size(x.shape) / C, C);
  backend.disposeData(params.dataId);
  return out;
}

/** The per-channel kernel configs for 'wasm'; `stock(name)` is the kernel being replaced. */
export function makeChannelKernels(stock: (name: string) => KernelConfig | undefined): KernelConfig[] {
  const config = (name: string, f: (args: KernelArgs, s: tf.KernelFunc | null) => TensorInfo): KernelConfig => {
    const s = stock(name);
    const c: KernelConfig = { kernelName: name, backendName: 'wasm', kernelFunc: ((args: KernelArgs) => f(args, s?.kernelFunc ?? null)) as tf.KernelFunc };
    if (s?.setupFunc) c.setupFunc = s.setupFunc;
    return c;
  };
  return [
    config('Sum', (a, s) => reduction(a, s, false)),
    config('Mean', (a, s) => reduction(a, s, true)),
    config('FusedBatchNorm', batchNorm),
    ...Object.keys(OPS).map((name) => config(name, (a, s) => binary(name, a, s))),
  ];
}
