// Kernels for the wasm backend, working on the wasm heap (BackendWasm.typedArrayFromHeap) or
// composed from the backend's own kernels (Conv2D, Transpose, BatchMatMul) called directly; every
// intermediate is freed with disposeData. Inputs are never wrapped in tensors (disposing the
// wrapper would free the input); where an input is read under another shape, a plain TensorInfo
// with the same dataId is handed to the inner kernel, which takes and releases its own reference.
//
// The AssemblyScript SIMD kernels (wasm_simd.ts, src/kernels/assembly/conv.ts) take every
// convolution whose output channels (and, for the input gradient, input channels) come in whole
// vectors of 4, NHWC float32 (chooseSimd: measured faster than the routes below on every mcnn and
// ResNet-20 shape, bench/kernels_bench.ts --simd). The routes below serve the other shapes, and
// all shapes under setWasmSimdRoute('classic') or MEMRISTOR_TFJS_NO_SIMD=1.
// - Conv2D, FusedConv2D (bias and ReLU or none): the SIMD kernel, else the stock XNNPACK one.
// - Conv2DBackpropFilter (the backend has none): the SIMD kernel, else per call the faster of two
//   routes (see chooseFilterRoute): the transposed patch matrix written in JS then one matMul
//   without transpose flags, or a forward Conv2D of the transposed input by the transposed output
//   gradient.
// - Conv2DBackpropInput: the SIMD kernel (any stride: a stride-1 convolution of the output
//   gradient spread by the strides), else a forward Conv2D of the output gradient with the
//   spatially flipped, in/out-swapped filter (stride 1, NHWC); other cases go to the stock kernel.
// - MaxPoolGrad: the gradient to the first maximum of each window, in SIMD given the forward
//   output, else JS on the heap. The stock one is wrong where a window's values are all negative
//   or tied (it sent a window of zeros' gradient to one input of the whole tensor). The stock
//   MaxPool forward (XNNPACK) is correct and kept: a JS one took 2.4 ms against its 0.3 ms on
//   mcnn's S2 at batch 64.
// - Identity, and Cast to the same dtype: the input's buffer shared, reference counted (the stock
//   ones copy it).
// - Tile: block copies on the heap (tile.ts); the stock one costs ~45 ns an element, half of a
//   ResNet-20 training step (the batch-norm gradient tiles its per-channel factors).
// - Sum, Mean over all axes but the channels, FusedBatchNorm with per-channel statistics, and
//   Add, Sub, Multiply, RealDiv with one value per channel: one SIMD pass each (wasm_channels.ts);
//   everything else goes to the stock kernels.
// - DepthwiseConv2dNativeBackpropInput / ...BackpropFilter (the backend has neither, so a model
//   with depthwise or separable convolutions could not train): SIMD kernels for multiplier 1 and
//   channels in whole vectors of 4, else loops on the heap (depthwise.ts); any strides, dilations,
//   padding and channel multiplier.
import { tf } from '../tf';
import { Attrs, KernelArgs, KernelConfig, TensorInfo, WasmBackend, input } from './types';
import { ConvGeometry, Pad, RoundingMode, convGeometry, depthwiseGeometry, poolGeometry } from './geometry';
import { im2colT } from './im2col';
import { maxPoolBackward } from './maxpool';
import { depthwiseBackpropFilter, depthwiseBackpropInput } from './depthwise';
import { tile } from './tile';
import { makeChannelKernels } from './wasm_channels';
import {
  conv2dBackpropFilterSimd,
  conv2dBackpropInputSimd,
  conv2dSimd,
  depthwiseBackpropFilterSimd,
  depthwiseBackpropInputSimd,
  maxPoolGradSimd,
  simdConv,
  simdConvFits,
  simdDepthwiseFits,
} from './wasm_simd';

const BACKEND = 'wasm';

export type FilterGradRoute = 'auto' | 'im2col' | 'conv';
let filterRoute: FilterGradRoute = 'auto';

/** Forces one route for the wasm filter gradient ('auto' restores the per-shape choice). */
export function setWasmFilterGradRoute(route: FilterGradRoute): void {
  filterRoute = route;
}

/** The largest patch matrix (floats) the im2col route will allocate on the heap (128 MB). */
const IM2COL_MAX_FLOATS = 1 << 25;

/**
 * Which filter-gradient route a shape takes under 'auto' where the SIMD kernel does not.
 * Measured here (bench/kernels_bench.ts): with one input channel the patch matrix is small (kh*kw
 * rows) and the flag-free matMul wins clearly, and so it does for large filters (largeFilter);
 * otherwise the transposed forward conv is as fast or faster and needs no patch matrix. A pure function of the shape, so training is reproducible run to run.
 */
export function chooseFilterRoute(g: ConvGeometry): 'im2col' | 'conv' {
  const K = g.kh * g.kw * g.inC;
  const N = g.batch * g.outH * g.outW;
  const fits = K * N <= IM2COL_MAX_FLOATS;
  if (filterRoute === 'conv') return 'conv';
  if (filterRoute === 'im2col') return fits ? 'im2col' : 'conv';
  return (g.inC === 1 || largeFilter(g)) && fits ? 'im2col' : 'conv';
}

/** Which convolution / pooling-gradient kernels a shape takes: 'auto' (the per-shape choice), or all forced. */
export type SimdRoute = 'auto' | 'simd' | 'classic';
let simdRoute: SimdRoute = 'auto';

/**
 * Forces the AssemblyScript SIMD kernels ('simd', where the shape fits them) or the routes that
 * compose the backend's own kernels ('classic') for Conv2D, FusedConv2D, Conv2DBackpropInput,
 * Conv2DBackpropFilter and MaxPoolGrad; 'auto' restores the per-shape choice (chooseSimd).
 */
export function setWasmSimdRoute(route: SimdRoute): void {
  simdRoute = route;
}

export type SimdKernel = 'forward' | 'input' | 'filter' | 'maxPoolGrad';

/**
 * Whether `kind` runs the AssemblyScript SIMD kernel for a shape under 'auto': wherever the shape
 * fits it (whole vectors of 4 output channels, and of input channels for the input gradient) and
 * its filter is not large (largeFilter).
 * Measured faster than the classic routes on every mcnn and ResNet-20 shape at batch 32
 * (bench/kernels_bench.ts --simd; the closest: ResNet's 16-channel 3x3 forward and input gradient,
 * 1.1-1.2x). A pure function of the shape, so training is reproducible run to run.
 */
export function chooseSimd(kind: SimdKernel, g: ConvGeometry): boolean {
  if (kind === 'maxPoolGrad') return true;
  if (largeFilter(g)) return false;
  return simdConvFits(g, kind === 'input');
}

/**
 * Whether a filter is past 3x3x128x128 floats (590 KB), where the SIMD kernels give way under
 * 'auto'. The direct kernels read the whole filter once per output pixel; past the cache that is
 * a stream from memory per pixel, while the backend's blocked GEMM (XNNPACK) and the im2col
 * route's matMul reuse it. Measured on VGG-16's shapes at batch 32 (interleaved, one process):
 * up to 3x3x128x128 the SIMD kernels are 1.2-1.3x faster; from 3x3x128x256 on, the classic
 * forward and input gradient are 1.0-6.8x faster (6.8x: the forward at 2x2x512) and the im2col
 * filter gradient 1.2-1.4x.
 */
export function largeFilter(g: ConvGeometry): boolean {
  return g.kh * g.kw * g.inC * g.outC > 3 * 3 * 128 * 128;
}

function useSimd(kind: SimdKernel, g: ConvGeometry): boolean {
  if (simdRoute === 'classic') return false;
  // 'simd' forces the kernel wherever it can run, which under 'auto' is the same set of shapes.
  return chooseSimd(kind, g);
}

function kernel(name: string): tf.KernelFunc {
  const k = tf.getKernel(name, BACKEND);
  if (!k) throw new Error(`the wasm backend has no ${name} kernel`);
  return k.kernelFunc;
}

function run(name: string, backend: WasmBackend, inputs: Record<string, TensorInfo>, attrs: Attrs): TensorInfo {
  return kernel(name)({ inputs, backend, attrs }) as TensorInfo;
}

function heapF32(backend: WasmBackend, t: TensorInfo): Float32Array {
  const a = backend.typedArrayFromHeap(t);
  if (!(a instanceof Float32Array)) throw new Error(`expected a float32 tensor, got ${t.dtype}`);
  return a;
}

function free(backend: WasmBackend, ...ts: TensorInfo[]): void {
  for (const t of ts) backend.disposeData(t.dataId);
}

function strides2(s: unknown): [number, number] {
  return typeof s === 'number' ? [s, s] : [(s as number[])[0], (s as number[])[1]];
}

/** The NHWC view of an NCHW tensor (a new tensor), or null for NHWC. */
function toNHWC(backend: WasmBackend, t: TensorInfo, dataFormat: unknown): TensorInfo | null {
  return dataFormat === 'NCHW' ? run('Transpose', backend, { x: t }, { perm: [0, 2, 3, 1] }) : null;
}

function filterGradIm2col(backend: WasmBackend, x: TensorInfo, dy: TensorInfo, g: ConvGeometry, filterShape: number[]): TensorInfo {
  const K = g.kh * g.kw * g.inC;
  const N = g.batch * g.outH * g.outW;
  const a = backend.makeOutput([1, K, N], 'float32');
  // Views after the allocation: growing the heap detaches earlier ones.
  im2colT(heapF32(backend, x), g, 0, g.batch, heapF32(backend, a));
  const out = run('BatchMatMul', backend, { a, b: { dataId: dy.dataId, shape: [1, N, g.outC], dtype: 'float32' } }, { transposeA: false, transposeB: false });
  free(backend, a);
  return { dataId: out.dataId, shape: filterShape, dtype: 'float32' };
}

function filterGradConv(backend: WasmBackend, x: TensorInfo, dy: TensorInfo, g: ConvGeometry, filterShape: number[]): TensorInfo {
  // dW[i, j, c, o] = sum_{b, y, x} X[b, y*sh + i - top, x*sw + j - left, c] dY[b, y, x, o]: a conv of
  // X^T [c, H, W, b] ("batch" c, channels b) with dY^T [y, x, b, o] as the filter, dilated by the strides.
  const xT = run('Transpose', backend, { x }, { perm: [3, 1, 2, 0] });
  const dyT = run('Transpose', backend, { x: dy }, { perm: [1, 2, 0, 3] });
  const r = run('Conv2D', backend, { x: xT, filter: dyT }, {
    strides: [1, 1],
    dilations: [g.sh, g.sw],
    pad: [[0, 0], [g.top, g.bottom], [g.left, g.right], [0, 0]],
    dataFormat: 'NHWC',
  });
  free(backend, xT, dyT);
  // r: [inC, rH, rW, outC] with rH >= kh, rW >= kw (larger where the strides leave a remainder).
  const [, rH, rW] = r.shape;
  const out = backend.makeOutput(filterShape, 'float32');
  const src = heapF32(backend, r);
  const dst = heapF32(backend, out);
  const { kh, kw, inC, outC } = g;
  for (let c = 0; c < inC; c++) {
    for (let i = 0; i < kh; i++) {
      for (let j = 0; j < kw; j++) {
        const s = ((c * rH + i) * rW + j) * outC;
        const d = ((i * kw + j) * inC + c) * outC;
        for (let o = 0; o < outC; o++) dst[d + o] = src[s + o];
      }
    }
  }
  free(backend, r);
  return out;
}

function conv2DBackpropFilter(args: KernelArgs): TensorInfo {
  const backend = args.backend as WasmBackend;
  const attrs = args.attrs ?? {};
  const filterShape = attrs.filterShape as number[];
  const xIn = input(args, 'x');
  const dyIn = input(args, 'dy');
  const xN = toNHWC(backend, xIn, attrs.dataFormat);
  const dyN = toNHWC(backend, dyIn, attrs.dataFormat);
  const x = xN ?? xIn;
  const dy = dyN ?? dyIn;
  try {
    const g = convGeometry(x.shape, filterShape, strides2(attrs.strides), 1, attrs.pad as Pad, attrs.dimRoundingMode as RoundingMode);
    if (g.batch * g.outH * g.outW === 0) {
      const z = backend.makeOutput(filterShape, 'float32');
      heapF32(backend, z).fill(0);
      return z;
    }
    const m = simdConv(backend);
    if (m && useSimd('filter', g)) return conv2dBackpropFilterSimd(m, backend, x, dy, g, filterShape);
    return chooseFilterRoute(g) === 'im2col' ? filterGradIm2col(backend, x, dy, g, filterShape) : filterGradConv(backend, x, dy, g, filterShape);
  } finally {
    if (xN) free(backend, xN);
    if (dyN) free(backend, dyN);
  }
}

function conv2DBackpropInput(args: KernelArgs, stock: tf.KernelFunc | null): TensorInfo {
  const backend = args.backend as WasmBackend;
  const attrs = args.attrs ?? {};
  const dy = input(args, 'dy');
  const filter = input(args, 'filter');
  const inputShape = attrs.inputShape as number[];
  const [sh, sw] = strides2(attrs.strides);
  const fallback = (): TensorInfo => {
    if (!stock) throw new Error('Conv2DBackpropInput: no stock wasm kernel to fall back to');
    return stock(args) as TensorInfo;
  };
  if (attrs.dataFormat === 'NCHW') return fallback();
  const m = simdConv(backend);
  const gs = convGeometry(inputShape, filter.shape, [sh, sw], 1, attrs.pad as Pad, attrs.dimRoundingMode as RoundingMode);
  if (m && gs.batch * gs.inH * gs.inW * gs.inC > 0 && useSimd('input', gs)) return conv2dBackpropInputSimd(m, backend, dy, filter, gs);
  if (sh !== 1 || sw !== 1) return fallback();
  const g = convGeometry(inputShape, filter.shape, 1, 1, attrs.pad as Pad, attrs.dimRoundingMode as RoundingMode);
  const { kh, kw, inC, outC } = g;
  // dx[p] = sum_i dy[p - i + top] W[i] = sum_i' dy[p + i' - (kh-1-top)] W'[i'], W' flipped.
  const top = kh - 1 - g.top;
  const left = kw - 1 - g.left;
  const bottom = g.inH + kh - 1 - g.outH - top;
  const right = g.inW + kw - 1 - g.outW - left;
  if (top < 0 || left < 0 || bottom < 0 || right < 0) return fallback();
  if (g.batch * g.inH * g.inW * inC === 0) return fallback();
  const wf = backend.makeOutput([kh, kw, outC, inC], 'float32');
  const src = heapF32(backend, filter);
  const dst = heapF32(backend, wf);
  for (let i = 0; i < kh; i++) {
    for (let j = 0; j < kw; j++) {
      const s0 = (i * kw + j) * inC * outC;
      const d0 = ((kh - 1 - i) * kw + (kw - 1 - j)) * outC * inC;
      for (let c = 0; c < inC; c++) {
        for (let o = 0; o < outC; o++) dst[d0 + o * inC + c] = src[s0 + c * outC + o];
      }
    }
  }
  const dx = run('Conv2D', backend, { x: dy, filter: wf }, {
    strides: [1, 1],
    dilations: [1, 1],
    pad: [[0, 0], [top, bottom], [left, right], [0, 0]],
    dataFormat: 'NHWC',
  });
  free(backend, wf);
  return dx;
}

function sameShape(a: number[], b: number[]): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}

function poolAttrs(attrs: Attrs, xShape: number[]): ConvGeometry {
  return poolGeometry(
    xShape,
    attrs.filterSize as number | [number, number],
    attrs.strides as number | [number, number],
    attrs.pad as Pad,
    attrs.dimRoundingMode as RoundingMode,
  );
}

function maxPoolGrad(args: KernelArgs): TensorInfo {
  const backend = args.backend as WasmBackend;
  const x = input(args, 'input');
  const dy = input(args, 'dy');
  const g = poolAttrs(args.attrs ?? {}, x.shape);
  const y = args.inputs.output;
  const m = simdConv(backend);
  if (m && y && y.dtype === 'float32' && sameShape(y.shape, dy.shape) && g.batch * g.inH * g.inW * g.inC > 0 && useSimd('maxPoolGrad', g)) {
    return maxPoolGradSimd(m, backend, x, y, dy, g);
  }
  const dx = backend.makeOutput(x.shape, 'float32');
  const dxv = heapF32(backend, dx);
  dxv.fill(0);
  const yv = y && y.dtype === 'float32' && sameShape(y.shape, dy.shape) ? heapF32(backend, y) : undefined;
  maxPoolBackward(heapF32(backend, x), heapF32(backend, dy), g, dxv, yv);
  return dx;
}

function dilations2(d: unknown): [number, number] {
  return d == null ? [1, 1] : strides2(d);
}

function conv2D(args: KernelArgs, stock: tf.KernelFunc | null): TensorInfo {
  const backend = args.backend as WasmBackend;
  const attrs = args.attrs ?? {};
  const x = input(args, 'x');
  const filter = input(args, 'filter');
  const m = simdConv(backend);
  if (m && attrs.dataFormat !== 'NCHW' && x.dtype === 'float32' && filter.dtype === 'float32') {
    const g = convGeometry(x.shape, filter.shape, strides2(attrs.strides), dilations2(attrs.dilations), attrs.pad as Pad, attrs.dimRoundingMode as RoundingMode);
    if (g.batch * g.outH * g.outW * g.inC > 0 && useSimd('forward', g)) return conv2dSimd(m, backend, x, filter, g);
  }
  if (!stock) throw new Error('Conv2D: no stock wasm kernel to fall back to');
  return stock(args) as TensorInfo;
}

/** FusedConv2D with no activation or ReLU, and a bias or none, goes to the SIMD kernel; the rest to the stock one. */
function fusedConv2D(args: KernelArgs, stock: tf.KernelFunc | null): TensorInfo {
  const backend = args.backend as WasmBackend;
  const attrs = args.attrs ?? {};
  const x = input(args, 'x');
  const filter = input(args, 'filter');
  const bias = args.inputs.bias ?? undefined;
  const act = attrs.activation as string | undefined;
  const m = simdConv(backend);
  const plain = (act == null || act === 'linear' || act === 'relu') && !args.inputs.preluActivationWeights;
  if (m && plain && attrs.dataFormat !== 'NCHW' && x.dtype === 'float32' && filter.dtype === 'float32') {
    const g = convGeometry(x.shape, filter.shape, strides2(attrs.strides), dilations2(attrs.dilations), attrs.pad as Pad, attrs.dimRoundingMode as RoundingMode);
    const biasFits = !bias || (bias.dtype === 'float32' && bias.shape.length === 1 && bias.shape[0] === g.outC);
    if (biasFits && g.batch * g.outH * g.outW * g.inC > 0 && useSimd('forward', g)) return conv2dSimd(m, backend, x, filter, g, bias, act === 'relu');
  }
  if (!stock) throw new Error('FusedConv2D: no stock wasm kernel to fall back to');
  return stock(args) as TensorInfo;
}

function depthwiseAttrs(attrs: Attrs, xShape: number[], filterShape: number[]): ConvGeometry {
  const dil = attrs.dilations == null ? 1 : strides2(attrs.dilations);
  return depthwiseGeometry(xShape, filterShape, strides2(attrs.strides), dil, attrs.pad as Pad, attrs.dimRoundingMode as RoundingMode);
}

function depthwiseBackpropInputKernel(args: KernelArgs): TensorInfo {
  const backend = args.backend as WasmBackend;
  const attrs = args.attrs ?? {};
  const dy = input(args, 'dy');
  const filter = input(args, 'filter');
  const inputShape = attrs.inputShape as number[];
  const g = depthwiseAttrs(attrs, inputShape, filter.shape);
  if (dy.shape.join() !== [g.batch, g.outH, g.outW, g.outC].join()) {
    throw new Error(`DepthwiseConv2dNativeBackpropInput: dy has shape [${dy.shape}], the convolution gives [${[g.batch, g.outH, g.outW, g.outC]}]`);
  }
  const m = simdConv(backend);
  if (m && simdRoute !== 'classic' && simdDepthwiseFits(g)) return depthwiseBackpropInputSimd(m, backend, dy, filter, g);
  const dx = backend.makeOutput(inputShape, 'float32');
  depthwiseBackpropInput(heapF32(backend, dy), heapF32(backend, filter), g, heapF32(backend, dx));
  return dx;
}

function depthwiseBackpropFilterKernel(args: KernelArgs): TensorInfo {
  const backend = args.backend as WasmBackend;
  const attrs = args.attrs ?? {};
  const x = input(args, 'x');
  const dy = input(args, 'dy');
  const filterShape = attrs.filterShape as number[];
  const g = depthwiseAttrs(attrs, x.shape, filterShape);
  if (dy.shape.join() !== [g.batch, g.outH, g.outW, g.outC].join()) {
    throw new Error(`DepthwiseConv2dNativeBackpropFilter: dy has shape [${dy.shape}], the convolution gives [${[g.batch, g.outH, g.outW, g.outC]}]`);
  }
  const m = simdConv(backend);
  if (m && simdRoute !== 'classic' && simdDepthwiseFits(g)) return depthwiseBackpropFilterSimd(m, backend, x, dy, g, filterShape);
  const dw = backend.makeOutput(filterShape, 'float32');
  depthwiseBackpropFilter(heapF32(backend, x), heapF32(backend, dy), g, heapF32(backend, dw));
  return dw;
}

/**
 * Identity without a copy: the output shares the input's buffer (reference counted, as Reshape
 * does here and Identity does on cpu and webgl; tfjs kernels never write into their inputs). The
 * stock one copied: 80 copies of 2 MB per ResNet-20 step at batch 32.
 */
function identityKernel(args: KernelArgs, stock: tf.KernelFunc | null): TensorInfo {
  const backend = args.backend as WasmBackend;
  const x = input(args, 'x');
  if (x.dtype === 'string') {
    if (!stock) throw new Error('Identity: no stock wasm kernel to fall back to');
    return stock(args) as TensorInfo;
  }
  backend.incRef(x.dataId);
  return { dataId: x.dataId, shape: x.shape, dtype: x.dtype };
}

/** Cast to the tensor's own dtype: shared like Identity (the stock one copies); other casts go to it. */
function castKernel(args: KernelArgs, stock: tf.KernelFunc | null): TensorInfo {
  const x = input(args, 'x');
  if (x.dtype !== 'string' && (args.attrs ?? {}).dtype === x.dtype) return identityKernel(args, null);
  if (!stock) throw new Error('Cast: no stock wasm kernel to fall back to');
  return stock(args) as TensorInfo;
}

function tileKernel(args: KernelArgs, stock: tf.KernelFunc | null): TensorInfo {
  const backend = args.backend as WasmBackend;
  const x = input(args, 'x');
  const reps = (args.attrs ?? {}).reps as number[];
  if (x.dtype === 'string' || !Array.isArray(reps) || reps.length !== x.shape.length || reps.some((v) => !Number.isInteger(v) || v < 0)) {
    if (!stock) throw new Error('Tile: no stock wasm kernel to fall back to');
    return stock(args) as TensorInfo;
  }
  const out = backend.makeOutput(
    x.shape.map((s, d) => s * reps[d]),
    x.dtype,
  );
  if (out.shape.every((s) => s > 0)) tile(backend.typedArrayFromHeap(x), x.shape, reps, backend.typedArrayFromHeap(out));
  return out;
}

/** The kernel configs for 'wasm'; `stock(name)` is the kernel being replaced (for fallbacks). */
export function makeWasmKernels(stock: (name: string) => KernelConfig | undefined): KernelConfig[] {
  const withSetup = (name: string, kernelFunc: (args: KernelArgs) => TensorInfo): KernelConfig => {
    const s = stock(name);
    const config: KernelConfig = { kernelName: name, backendName: BACKEND, kernelFunc: kernelFunc as tf.KernelFunc };
    // The stock kernel's wasm bindings are made in its setupFunc, which the engine runs only for
    // registered kernels: run it from ours so that the fallback works whenever we register.
    if (s?.setupFunc) config.setupFunc = s.setupFunc;
    return config;
  };
  const stockFunc = (name: string): tf.KernelFunc | null => stock(name)?.kernelFunc ?? null;
  const bpInput = stockFunc('Conv2DBackpropInput');
  const conv = stockFunc('Conv2D');
  const fused = stockFunc('FusedConv2D');
  const tileStock = stockFunc('Tile');
  const identityStock = stockFunc('Identity');
  const castStock = stockFunc('Cast');
  return [
    withSetup('Identity', (a) => identityKernel(a, identityStock)),
    withSetup('Cast', (a) => castKernel(a, castStock)),
    withSetup('Tile', (a) => tileKernel(a, tileStock)),
    withSetup('Conv2D', (a) => conv2D(a, conv)),
    withSetup('FusedConv2D', (a) => fusedConv2D(a, fused)),
    withSetup('Conv2DBackpropFilter', conv2DBackpropFilter),
    withSetup('Conv2DBackpropInput', (a) => conv2DBackpropInput(a, bpInput)),
    withSetup('MaxPoolGrad', maxPoolGrad),
    withSetup('DepthwiseConv2dNativeBackpropInput', depthwiseBackpropInputKernel),
    withSetup('DepthwiseConv2dNativeBackpropFilter', depthwiseBackpropFilterKernel),
    ...makeChannelKernels(stock),
  ];
}
