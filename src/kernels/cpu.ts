// Kernels for the pure-JS cpu backend: the convolutions as patches + the blocked JS matrix product
// (conv_js.ts), max pooling in one pass. Cases they do not cover (NCHW, non-float32, exotic fused
// activations) go to the stock kernel they replace.
import { tf } from '../tf';
import { Attrs, CpuBackend, KernelArgs, KernelConfig, TensorInfo, input } from './types';
import { Pad, RoundingMode, convGeometry, poolGeometry } from './geometry';
import { conv2dBackpropFilter, conv2dBackpropInput, conv2dForward } from './conv_js';
import { maxPoolBackward, maxPoolForward } from './maxpool';

const BACKEND = 'cpu';

function values(backend: CpuBackend, t: TensorInfo): Float32Array {
  const v = backend.data.get(t.dataId)?.values;
  if (v instanceof Float32Array) return v;
  return Float32Array.from(backend.readSync(t.dataId) as ArrayLike<number>);
}

function pair(s: unknown): [number, number] {
  if (s == null) return [1, 1];
  return typeof s === 'number' ? [s, s] : [(s as number[])[0], (s as number[])[1]];
}

type Impl = (args: KernelArgs) => TensorInfo | null;

function conv2D(args: KernelArgs): TensorInfo | null {
  const backend = args.backend as CpuBackend;
  const attrs = args.attrs ?? {};
  const x = input(args, 'x');
  const filter = input(args, 'filter');
  if (attrs.dataFormat === 'NCHW' || x.dtype !== 'float32' || filter.dtype !== 'float32') return null;
  const g = convGeometry(x.shape, filter.shape, pair(attrs.strides), pair(attrs.dilations), attrs.pad as Pad, attrs.dimRoundingMode as RoundingMode);
  const out = conv2dForward(values(backend, x), values(backend, filter), g);
  return backend.makeTensorInfo([g.batch, g.outH, g.outW, g.outC], 'float32', out);
}

function activate(out: Float32Array, C: number, activation: string, alpha: number, prelu: Float32Array | null): boolean {
  const n = out.length;
  switch (activation) {
    case 'linear':
      return true;
    case 'relu':
      for (let i = 0; i < n; i++) if (out[i] < 0) out[i] = 0;
      return true;
    case 'relu6':
      for (let i = 0; i < n; i++) out[i] = out[i] < 0 ? 0 : out[i] > 6 ? 6 : out[i];
      return true;
    case 'elu':
      for (let i = 0; i < n; i++) if (out[i] < 0) out[i] = Math.exp(out[i]) - 1;
      return true;
    case 'sigmoid':
      for (let i = 0; i < n; i++) out[i] = 1 / (1 + Math.exp(-out[i]));
      return true;
    case 'leakyrelu':
      for (let i = 0; i < n; i++) if (out[i] < 0) out[i] *= alpha;
      return true;
    case 'prelu':
      if (!prelu) return false;
      if (prelu.length === 1) {
        for (let i = 0; i < n; i++) if (out[i] < 0) out[i] *= prelu[0];
      } else {
        for (let i = 0; i < n; i++) if (out[i] < 0) out[i] *= prelu[i % C];
      }
      return true;
    default:
      return false;
  }
}

/** Size of a per-channel operand (bias, prelu weights): 1 or C (with C last), else null. */
function perChannel(t: TensorInfo | undefined, C: number): boolean {
  if (!t) return true;
  const size = t.shape.reduce((a, b) => a * b, 1);
  return size === 1 || (size === C && t.shape[t.shape.length - 1] === C);
}

function fusedConv2D(args: KernelArgs): TensorInfo | null {
  const backend = args.backend as CpuBackend;
  const attrs = args.attrs ?? {};
  const x = input(args, 'x');
  const filter = input(args, 'filter');
  const bias = args.inputs.bias;
  const prelu = args.inputs.preluActivationWeights;
  const activation = (attrs.activation as string | undefined) ?? 'linear';
  const C = filter.shape[3];
  if (attrs.dataFormat === 'NCHW' || x.dtype !== 'float32' || filter.dtype !== 'float32') return null;
  if (!perChannel(bias, C) || !perChannel(prelu, C) || (bias && bias.dtype !== 'float32')) return null;
  if (!['linear', 'relu', 'relu6', 'elu', 'sigmoid', 'leakyrelu', 'prelu'].includes(activation)) return null;
  if (activation === 'prelu' && !prelu) return null;
  const g = convGeometry(x.shape, filter.shape, pair(attrs.strides), pair(attrs.dilations), attrs.pad as Pad, attrs.dimRoundingMode as RoundingMode);
  const out = conv2dForward(values(backend, x), values(backend, filter), g);
  if (bias) {
    const b = values(backend, bias);
    if (b.length === 1) {
      for (let i = 0; i < out.length; i++) out[i] += b[0];
    } else {
      for (let i = 0; i < out.length; i += C) for (let c = 0; c < C; c++) out[i + c] += b[c];
    }
  }
  const alpha = typeof attrs.leakyreluAlpha === 'number' ? attrs.leakyreluAlpha : 0.2;
  activate(out, C, activation, alpha, prelu ? values(backend, prelu) : null);
  return backend.makeTensorInfo([g.batch, g.outH, g.outW, g.outC], 'float32', out);
}

function conv2DBackpropInput(args: KernelArgs): TensorInfo | null {
  const backend = args.backend as CpuBackend;
  const attrs = args.attrs ?? {};
  const dy = input(args, 'dy');
  const filter = input(args, 'filter');
  if (attrs.dataFormat === 'NCHW' || dy.dtype !== 'float32' || filter.dtype !== 'float32') return null;
  const inputShape = attrs.inputShape as number[];
  const g = convGeometry(inputShape, filter.shape, pair(attrs.strides), 1, attrs.pad as Pad, attrs.dimRoundingMode as RoundingMode);
  const dx = conv2dBackpropInput(values(backend, dy), values(backend, filter), g);
  return backend.makeTensorInfo(inputShape.slice(), 'float32', dx);
}

function conv2DBackpropFilter(args: KernelArgs): TensorInfo | null {
  const backend = args.backend as CpuBackend;
  const attrs = args.attrs ?? {};
  const x = input(args, 'x');
  const dy = input(args, 'dy');
  if (attrs.dataFormat === 'NCHW' || x.dtype !== 'float32' || dy.dtype !== 'float32') return null;
  const filterShape = attrs.filterShape as number[];
  const g = convGeometry(x.shape, filterShape, pair(attrs.strides), 1, attrs.pad as Pad, attrs.dimRoundingMode as RoundingMode);
  const dw = conv2dBackpropFilter(values(backend, x), values(backend, dy), g);
  return backend.makeTensorInfo(filterShape.slice(), 'float32', dw);
}

function poolGeom(attrs: Attrs, shape: number[]) {
  return poolGeometry(shape, attrs.filterSize as number | [number, number], attrs.strides as number | [number, number], attrs.pad as Pad, attrs.dimRoundingMode as RoundingMode);
}

function maxPool(args: KernelArgs): TensorInfo | null {
  const backend = args.backend as CpuBackend;
  const x = input(args, 'x');
  if (x.dtype !== 'float32') return null;
  const g = poolGeom(args.attrs ?? {}, x.shape);
  const out = maxPoolForward(values(backend, x), g, new Float32Array(g.batch * g.outH * g.outW * g.outC));
  return backend.makeTensorInfo([g.batch, g.outH, g.outW, g.outC], 'float32', out);
}

function maxPoolGrad(args: KernelArgs): TensorInfo | null {
  const backend = args.backend as CpuBackend;
  const x = input(args, 'input');
  const dy = input(args, 'dy');
  if (x.dtype !== 'float32' || dy.dtype !== 'float32') return null;
  const g = poolGeom(args.attrs ?? {}, x.shape);
  const y = args.inputs.output;
  const yv = y && y.dtype === 'float32' && y.shape.join() === dy.shape.join() ? values(backend, y) : undefined;
  const dx = maxPoolBackward(values(backend, x), values(backend, dy), g, new Float32Array(x.shape.reduce((a, b) => a * b, 1)), yv);
  return backend.makeTensorInfo(x.shape.slice(), 'float32', dx);
}

const IMPLS: Record<string, Impl> = {
  Conv2D: conv2D,
  FusedConv2D: fusedConv2D,
  Conv2DBackpropInput: conv2DBackpropInput,
  Conv2DBackpropFilter: conv2DBackpropFilter,
  MaxPool: maxPool,
  MaxPoolGrad: maxPoolGrad,
};

/** The kernel configs for 'cpu'; a case an implementation declines goes to `stock(name)`. */
export function makeCpuKernels(stock: (name: string) => KernelConfig | undefined): KernelConfig[] {
  return Object.entries(IMPLS).map(([name, impl]) => {
    const fallback = stock(name)?.kernelFunc;
    const kernelFunc = (args: KernelArgs): TensorInfo => {
      const r = impl(args);
      if (r) return r;
      if (!fallback) throw new Error(`${name}: case not supported and no stock cpu kernel to fall back to`);
      return fallback(args) as TensorInfo;
    };
    const config: KernelConfig = { kernelName: name, backendName: BACKEND, kernelFunc: kernelFunc as tf.KernelFunc };
    const setup = stock(name)?.setupFunc;
    if (setup) config.setupFunc = setup;
    return config;
  });
}
