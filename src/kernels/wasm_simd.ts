// The AssemblyScript SIMD kernels (src/kernels/assembly/conv.ts and channels.ts, compiled together
// to wasm/heap_kernels.wasm) bound to one tfjs wasm backend: the module imports the backend's
// memory, so the kernels read and write tensors where they lie on its heap; scratch space (padded
// copies, flipped filters) is a backend buffer freed before returning. Every function returns a new TensorInfo the caller owns.
import { TensorInfo, WasmBackend } from './types';
import { ConvGeometry } from './geometry';
import { WasmMemory, loadKernelModule } from './wasm_module';

/** The convolution exports of wasm/heap_kernels.wasm (byte offsets into the backend's heap, then sizes). */
interface ConvModule {
  pad(src: number, dst: number, batch: number, H: number, W: number, C: number, Hd: number, Wd: number, top: number, left: number, sy: number, sx: number): void;
  conv2d(xp: number, w: number, y: number, batch: number, Hp: number, Wp: number, C: number, outH: number, outW: number, outC: number, kh: number, kw: number, sh: number, sw: number, dh: number, dw: number): void;
  biasActivation(y: number, bias: number, n: number, outC: number, hasBias: number, lo: number): void;
  conv2dFilterGrad(xp: number, dy: number, dW: number, batch: number, Hp: number, Wp: number, C: number, outH: number, outW: number, outC: number, kh: number, kw: number, sh: number, sw: number): void;
  depthwise(xp: number, f: number, y: number, batch: number, Hp: number, Wp: number, C: number, outH: number, outW: number, kh: number, kw: number, sh: number, sw: number, dh: number, dw: number): void;
  depthwiseFilterGrad(xp: number, dy: number, dF: number, batch: number, Hp: number, Wp: number, C: number, outH: number, outW: number, kh: number, kw: number, sh: number, sw: number, dh: number, dw: number): void;
  maxPoolGrad(x: number, y: number, dy: number, dx: number, batch: number, inH: number, inW: number, C: number, outH: number, outW: number, kh: number, kw: number, sh: number, sw: number, top: number, left: number): void;
}

/** Instances per backend memory and module name. */
const modules = new WeakMap<object, Map<string, Record<string, unknown> | null>>();

function backendMemory(backend: WasmBackend): WasmMemory | undefined {
  return (backend as unknown as { wasm?: { asm?: { memory?: WasmMemory } } }).wasm?.asm?.memory;
}

/**
 * wasm/<name>.wasm bound to this backend's heap, or null where it cannot run (no WebAssembly SIMD,
 * a backend build that does not expose its memory or shares it between threads, or
 * MEMRISTOR_TFJS_NO_SIMD=1): the callers then
 * take the routes that compose the backend's own kernels.
 */
export function heapModule<T>(backend: WasmBackend, name: string): T | null {
  if (process.env.MEMRISTOR_TFJS_NO_SIMD === '1') return null;
  const memory = backendMemory(backend);
  // The modules import an unshared memory: the backend's multi-threaded build (shared memory) is
  // left to its own kernels.
  if (!memory || (typeof SharedArrayBuffer !== 'undefined' && memory.buffer instanceof SharedArrayBuffer)) return null;
  let byName = modules.get(memory);
  if (!byName) modules.set(memory, (byName = new Map()));
  if (!byName.has(name)) byName.set(name, loadKernelModule(name, { env: { memory } }));
  return (byName.get(name) ?? null) as T | null;
}

/** The convolution kernels (wasm/heap_kernels.wasm) on this backend's heap, or null (see heapModule). */
export function simdConv(backend: WasmBackend): ConvModule | null {
  return heapModule<ConvModule>(backend, 'heap_kernels');
}

/** A tensor's byte offset on the heap. */
export function ptr(backend: WasmBackend, t: TensorInfo): number {
  return backend.typedArrayFromHeap(t).byteOffset;
}

/** A zero-padded copy of x [batch, H, W, C] to [batch, Hd, Wd, C], rows spread sy apart (columns sx). */
function padded(m: ConvModule, backend: WasmBackend, x: TensorInfo, Hd: number, Wd: number, top: number, left: number, sy: number, sx: number): TensorInfo {
  const [batch, H, W, C] = x.shape;
  const out = backend.makeOutput([batch, Hd, Wd, C], 'float32');
  m.pad(ptr(backend, x), ptr(backend, out), batch, H, W, C, Hd, Wd, top, left, sy, sx);
  return out;
}

/** The padded input's size: the padding of g, or more where the last window needs it. */
function paddedSize(g: ConvGeometry): [number, number] {
  const Hp = Math.max(g.inH + g.top + g.bottom, (g.outH - 1) * g.sh + (g.kh - 1) * g.dh + 1);
  const Wp = Math.max(g.inW + g.left + g.right, (g.outW - 1) * g.sw + (g.kw - 1) * g.dw + 1);
  return [Hp, Wp];
}

function needsPadding(g: ConvGeometry): boolean {
  const [Hp, Wp] = paddedSize(g);
  return g.top !== 0 || g.left !== 0 || Hp !== g.inH || Wp !== g.inW;
}

/** x padded as g says (x itself where g has no padding; the caller frees the copy when it differs). */
function paddedInput(m: ConvModule, backend: WasmBackend, x: TensorInfo, g: ConvGeometry): TensorInfo {
  if (!needsPadding(g)) return x;
  const [Hp, Wp] = paddedSize(g);
  return padded(m, backend, x, Hp, Wp, g.top, g.left, 1, 1);
}

/** Whether the SIMD convolution kernels take g: whole vectors of output (and, for gradients, input) channels. */
export function simdConvFits(g: ConvGeometry, needInC4: boolean): boolean {
  return g.outC % 4 === 0 && (!needInC4 || g.inC % 4 === 0) && g.batch * g.outH * g.outW > 0;
}

/** y = conv2d(x, w) (+ bias, then ReLU when relu): g.outC a multiple of 4. */
export function conv2dSimd(m: ConvModule, backend: WasmBackend, x: TensorInfo, w: TensorInfo, g: ConvGeometry, bias?: TensorInfo, relu = false): TensorInfo {
  const xp = paddedInput(m, backend, x, g);
  const [Hp, Wp] = needsPadding(g) ? paddedSize(g) : [g.inH, g.inW];
  const y = backend.makeOutput([g.batch, g.outH, g.outW, g.outC], 'float32');
  m.conv2d(ptr(backend, xp), ptr(backend, w), ptr(backend, y), g.batch, Hp, Wp, g.inC, g.outH, g.outW, g.outC, g.kh, g.kw, g.sh, g.sw, g.dh, g.dw);
  if (xp !== x) backend.disposeData(xp.dataId);
  if (bias || relu) m.biasActivation(ptr(backend, y), bias ? ptr(backend, bias) : 0, g.batch * g.outH * g.outW * g.outC, g.outC, bias ? 1 : 0, relu ? 0 : -Infinity);
  return y;
}

/**
 * dx of conv2d(x, w) (geometry g, any strides and dilations): a stride-1 convolution of dy spread
 * by the strides and padded by (k-1)*d - pad, with the filter flipped and its channels swapped.
 * g.inC a multiple of 4 (the output channels of this convolution).
 */
export function conv2dBackpropInputSimd(m: ConvModule, backend: WasmBackend, dy: TensorInfo, w: TensorInfo, g: ConvGeometry): TensorInfo {
  const { kh, kw, inC, outC, dh, dw } = g;
  const wf = backend.makeOutput([kh, kw, outC, inC], 'float32');
  const src = backend.typedArrayFromHeap(w) as Float32Array;
  const dst = backend.typedArrayFromHeap(wf) as Float32Array;
  for (let i = 0; i < kh; i++) {
    for (let j = 0; j < kw; j++) {
      const s0 = (i * kw + j) * inC * outC;
      const d0 = ((kh - 1 - i) * kw + (kw - 1 - j)) * outC * inC;
      for (let c = 0; c < inC; c++) {
        for (let o = 0; o < outC; o++) dst[d0 + o * inC + c] = src[s0 + c * outC + o];
      }
    }
  }
  const Hd = g.inH + (kh - 1) * dh;
  const Wd = g.inW + (kw - 1) * dw;
  const p = padded(m, backend, dy, Hd, Wd, (kh - 1) * dh - g.top, (kw - 1) * dw - g.left, g.sh, g.sw);
  const dx = backend.makeOutput([g.batch, g.inH, g.inW, inC], 'float32');
  m.conv2d(ptr(backend, p), ptr(backend, wf), ptr(backend, dx), g.batch, Hd, Wd, outC, g.inH, g.inW, inC, kh, kw, 1, 1, dh, dw);
  backend.disposeData(p.dataId);
  backend.disposeData(wf.dataId);
  return dx;
}

/** dW of conv2d(x, w) (dilation 1, any strides): g.outC a multiple of 4. */
export function conv2dBackpropFilterSimd(m: ConvModule, backend: WasmBackend, x: TensorInfo, dy: TensorInfo, g: ConvGeometry, filterShape: number[]): TensorInfo {
  if (g.dh !== 1 || g.dw !== 1) throw new Error('conv2dBackpropFilterSimd: dilations must be 1');
  const xp = paddedInput(m, backend, x, g);
  const [Hp, Wp] = needsPadding(g) ? paddedSize(g) : [g.inH, g.inW];
  const dW = backend.makeOutput(filterShape, 'float32');
  m.conv2dFilterGrad(ptr(backend, xp), ptr(backend, dy), ptr(backend, dW), g.batch, Hp, Wp, g.inC, g.outH, g.outW, g.outC, g.kh, g.kw, g.sh, g.sw);
  if (xp !== x) backend.disposeData(xp.dataId);
  return dW;
}

/** dx of maxPool(x) = y: dy to the first maximum of each window (g: the pooling geometry). */
export function maxPoolGradSimd(m: ConvModule, backend: WasmBackend, x: TensorInfo, y: TensorInfo, dy: TensorInfo, g: ConvGeometry): TensorInfo {
  const dx = backend.makeOutput(x.shape, 'float32');
  m.maxPoolGrad(ptr(backend, x), ptr(backend, y), ptr(backend, dy), ptr(backend, dx), g.batch, g.inH, g.inW, g.inC, g.outH, g.outW, g.kh, g.kw, g.sh, g.sw, g.top, g.left);
  return dx;
}

/** Whether the SIMD depthwise kernels take g (a depthwise geometry): multiplier 1, whole vectors of channels. */
export function simdDepthwiseFits(g: ConvGeometry): boolean {
  return g.outC === g.inC && g.inC % 4 === 0 && g.batch * g.outH * g.outW > 0;
}

/** dx of depthwiseConv2d(x, f) (multiplier 1): the depthwise forward of dy spread and padded, the filter flipped. */
export function depthwiseBackpropInputSimd(m: ConvModule, backend: WasmBackend, dy: TensorInfo, f: TensorInfo, g: ConvGeometry): TensorInfo {
  const { kh, kw, inC: C, dh, dw } = g;
  const ff = backend.makeOutput([kh, kw, C, 1], 'float32');
  const src = backend.typedArrayFromHeap(f) as Float32Array;
  const dst = backend.typedArrayFromHeap(ff) as Float32Array;
  for (let t = 0; t < kh * kw; t++) dst.set(src.subarray(t * C, (t + 1) * C), (kh * kw - 1 - t) * C);
  const Hd = g.inH + (kh - 1) * dh;
  const Wd = g.inW + (kw - 1) * dw;
  const p = padded(m, backend, dy, Hd, Wd, (kh - 1) * dh - g.top, (kw - 1) * dw - g.left, g.sh, g.sw);
  const dx = backend.makeOutput([g.batch, g.inH, g.inW, C], 'float32');
  m.depthwise(ptr(backend, p), ptr(backend, ff), ptr(backend, dx), g.batch, Hd, Wd, C, g.inH, g.inW, kh, kw, 1, 1, dh, dw);
  backend.disposeData(p.dataId);
  backend.disposeData(ff.dataId);
  return dx;
}

/** dF of depthwiseConv2d(x, f) (multiplier 1). */
export function depthwiseBackpropFilterSimd(m: ConvModule, backend: WasmBackend, x: TensorInfo, dy: TensorInfo, g: ConvGeometry, filterShape: number[]): TensorInfo {
  const xp = paddedInput(m, backend, x, g);
  const [Hp, Wp] = needsPadding(g) ? paddedSize(g) : [g.inH, g.inW];
  const dF = backend.makeOutput(filterShape, 'float32');
  m.depthwiseFilterGrad(ptr(backend, xp), ptr(backend, dy), ptr(backend, dF), g.batch, Hp, Wp, g.inC, g.outH, g.outW, g.kh, g.kw, g.sh, g.sw, g.dh, g.dw);
  if (xp !== x) backend.disposeData(xp.dataId);
  return dF;
}
