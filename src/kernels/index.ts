// The package's own kernels for tfjs's wasm and cpu backends.
//
// wasm (SIMD, one thread in Node) has no Conv2DBackpropFilter nor depthwise-convolution gradients,
// a slow Conv2DBackpropInput, a MaxPoolGrad that is wrong on windows of negative or tied values,
// and slow per-element kernels for the batch-norm work (Tile, reductions over all axes but the
// channels, per-channel broadcasts); cpu's stock convolutions are naive loops (mcnn trains at ~38
// samples/s there, ~610 with these). registerFastKernels replaces them for one backend:
//   wasm: Conv2D, FusedConv2D, Conv2DBackpropFilter, Conv2DBackpropInput, MaxPoolGrad (AssemblyScript
//         SIMD where the shape fits, src/kernels/assembly/conv.ts), Sum, Mean, FusedBatchNorm, Add,
//         Sub, Multiply, RealDiv (per-channel cases in SIMD, assembly/channels.ts), Tile, Identity, Cast,
//         DepthwiseConv2dNativeBackpropInput, DepthwiseConv2dNativeBackpropFilter (its XNNPACK
//         DepthwiseConv2dNative and MaxPool forwards are correct and fast, and stay)
//   cpu:  Conv2D, FusedConv2D, Conv2DBackpropInput, Conv2DBackpropFilter, MaxPool, MaxPoolGrad
// and on both our own ADAM_UPDATE (adam.ts: Adam's update of a variable as one kernel, not 14) and
// UNIFORM_LEVELS (uniform_levels.ts: steUniform's forward as one kernel, not 11).
// The replaced stock kernels are kept: ours fall back to them for cases they do not cover, and
// unregisterFastKernels puts them back.
import { tf } from '../tf';
import { KernelConfig } from './types';
import { makeWasmKernels } from './wasm';
import { makeCpuKernels } from './cpu';
import { adamKernelConfig } from './adam';
import { uniformLevelsKernelConfig } from './uniform_levels';

export { ADAM_UPDATE } from './adam';
export { UNIFORM_LEVELS } from './uniform_levels';
export { setWasmFilterGradRoute, chooseFilterRoute, setWasmSimdRoute, chooseSimd } from './wasm';
export type { FilterGradRoute, SimdRoute, SimdKernel } from './wasm';

interface Registration {
  names: string[];
  /** The kernels ours replaced (undefined where the backend had none). */
  replaced: Map<string, KernelConfig | undefined>;
}

const registrations = new Map<string, Registration>();

function configsFor(backendName: string, stock: (name: string) => KernelConfig | undefined): KernelConfig[] | null {
  const ours = [adamKernelConfig(backendName)!, uniformLevelsKernelConfig(backendName)!];
  if (backendName === 'wasm') return [...makeWasmKernels(stock), ...ours];
  if (backendName === 'cpu') return [...makeCpuKernels(stock), ...ours];
  return null;
}

/**
 * Register this package's kernels for `backendName` ('wasm' or 'cpu'; any other backend gets none)
 * and return the names of the kernels registered. Idempotent: a second call registers nothing and
 * returns the same names. Works before or after the backend is initialized.
 */
export function registerFastKernels(backendName: string): string[] {
  const done = registrations.get(backendName);
  if (done) return [...done.names];
  const replaced = new Map<string, KernelConfig | undefined>();
  const stock = (name: string): KernelConfig | undefined => {
    if (!replaced.has(name)) replaced.set(name, tf.getKernel(name, backendName));
    return replaced.get(name);
  };
  const configs = configsFor(backendName, stock);
  if (!configs) return [];
  for (const c of configs) {
    stock(c.kernelName);
    if (replaced.get(c.kernelName)) tf.unregisterKernel(c.kernelName, backendName);
    tf.registerKernel(c);
  }
  // Only the kernels actually replaced are restored later.
  for (const name of [...replaced.keys()]) if (!configs.some((c) => c.kernelName === name)) replaced.delete(name);
  const names = configs.map((c) => c.kernelName);
  registrations.set(backendName, { names, replaced });
  return [...names];
}

/** Put the stock kernels back (those ours replaced; ones the backend lacked are removed). */
export function unregisterFastKernels(backendName: string): string[] {
  const reg = registrations.get(backendName);
  if (!reg) return [];
  for (const name of reg.names) {
    tf.unregisterKernel(name, backendName);
    const old = reg.replaced.get(name);
    if (old) tf.registerKernel(old);
  }
  registrations.delete(backendName);
  return [...reg.names];
}

/** The kernels of this package registered for a backend now. */
export function fastKernels(backendName: string): string[] {
  return [...(registrations.get(backendName)?.names ?? [])];
}
