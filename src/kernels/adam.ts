// Adam's update of one variable as one kernel (ADAM_UPDATE) for the wasm backend (AssemblyScript
// SIMD, src/kernels/assembly/optimizer.ts; the float32 loop below where SIMD cannot run) and the cpu backend (a float32 loop here), used by
// training/optimizers.ts's FusedAdam. tfjs's AdamOptimizer runs 14 kernels per variable; for the
// small layers of the papers' networks the engine's cost per kernel, not the arithmetic, is the
// time (mcnn: 84 of a step's 224 kernels). Both implementations do tfjs's float32 operations in
// its order, so the weights and moments are the same bits as tf.train.adam's (tested).
//
// Inputs: x (the variable), m, v (the moments), g (the gradient), c1 = 1 - beta1^t and
// c2 = 1 - beta2^t (scalars, as the optimizer holds them); attrs beta1, beta2, epsilon,
// learningRate. Outputs: [x', m', v'].
import { tf } from '../tf';
import { CpuBackend, KernelArgs, KernelConfig, TensorInfo, WasmBackend, input } from './types';
import { heapModule, ptr } from './wasm_simd';

export const ADAM_UPDATE = 'MemristorTfjsAdamUpdate';

interface OptimizerModule {
  adamUpdate(x: number, m: number, v: number, g: number, xo: number, mo: number, vo: number, n: number, b1: number, ob1: number, b2: number, ob2: number, c1: number, c2: number, eps: number, negLr: number): void;
}

/** The float32 constants of the update, as tfjs's op chain makes them from the optimizer's numbers. */
interface Constants {
  b1: number;
  ob1: number;
  b2: number;
  ob2: number;
  c1: number;
  c2: number;
  eps: number;
  negLr: number;
}

function constants(args: KernelArgs, c1: number, c2: number): Constants {
  const a = args.attrs ?? {};
  const num = (k: string) => {
    const v = Number(a[k]);
    if (!Number.isFinite(v)) throw new Error(`${ADAM_UPDATE}: attribute ${k} must be a number, got ${String(a[k])}`);
    return v;
  };
  const f = Math.fround;
  const b1 = num('beta1');
  const b2 = num('beta2');
  return { b1: f(b1), ob1: f(1 - b1), b2: f(b2), ob2: f(1 - b2), c1: f(c1), c2: f(c2), eps: f(num('epsilon')), negLr: f(-num('learningRate')) };
}

function checkShapes(x: TensorInfo, others: TensorInfo[]): void {
  for (const t of [x, ...others]) if (t.dtype !== 'float32') throw new Error(`${ADAM_UPDATE}: float32 tensors only, got ${t.dtype}`);
  const n = x.shape.join();
  for (const t of others) if (t.shape.join() !== n) throw new Error(`${ADAM_UPDATE}: shapes differ: [${x.shape}] and [${t.shape}]`);
}

/** The scalar c1 or c2 input's value. */
function scalarOf(values: ArrayLike<number>, name: string): number {
  if (values.length !== 1) throw new Error(`${ADAM_UPDATE}: ${name} must be a scalar`);
  return values[0];
}

function wasmAdam(args: KernelArgs): TensorInfo[] {
  const backend = args.backend as WasmBackend;
  const x = input(args, 'x');
  const m = input(args, 'm');
  const v = input(args, 'v');
  const g = input(args, 'g');
  checkShapes(x, [m, v, g]);
  const mod = heapModule<OptimizerModule>(backend, 'heap_kernels');
  const k = constants(args, scalarOf(backend.typedArrayFromHeap(input(args, 'c1')), 'c1'), scalarOf(backend.typedArrayFromHeap(input(args, 'c2')), 'c2'));
  const xo = backend.makeOutput(x.shape, 'float32');
  const mo = backend.makeOutput(x.shape, 'float32');
  const vo = backend.makeOutput(x.shape, 'float32');
  const n = x.shape.reduce((a, b) => a * b, 1);
  if (n === 0) return [xo, mo, vo];
  if (mod) mod.adamUpdate(ptr(backend, x), ptr(backend, m), ptr(backend, v), ptr(backend, g), ptr(backend, xo), ptr(backend, mo), ptr(backend, vo), n, k.b1, k.ob1, k.b2, k.ob2, k.c1, k.c2, k.eps, k.negLr);
  else {
    // no SIMD module here (heapModule): the same float32 loop on the heap's views
    const h = (t: TensorInfo) => backend.typedArrayFromHeap(t) as Float32Array;
    adamUpdateF32(h(x), h(m), h(v), h(g), k, h(xo), h(mo), h(vo));
  }
  return [xo, mo, vo];
}

/** The update in float32, element by element (every intermediate rounded as tfjs's kernels round it). */
export function adamUpdateF32(x: Float32Array, m: Float32Array, v: Float32Array, g: Float32Array, k: Constants, xo: Float32Array, mo: Float32Array, vo: Float32Array): void {
  const f = Math.fround;
  for (let i = 0; i < x.length; i++) {
    const G = g[i];
    const M = f(f(m[i] * k.b1) + f(G * k.ob1));
    const V = f(f(v[i] * k.b2) + f(f(G * G) * k.ob2));
    const step = f(f(M / k.c1) / f(f(Math.sqrt(f(V / k.c2))) + k.eps));
    xo[i] = f(step * k.negLr) + x[i];
    mo[i] = M;
    vo[i] = V;
  }
}

function cpuAdam(args: KernelArgs): TensorInfo[] {
  const backend = args.backend as CpuBackend;
  const [x, m, v, g] = ['x', 'm', 'v', 'g'].map((name) => input(args, name));
  checkShapes(x, [m, v, g]);
  const vals = (t: TensorInfo) => backend.readSync(t.dataId) as Float32Array;
  const k = constants(args, scalarOf(vals(input(args, 'c1')), 'c1'), scalarOf(vals(input(args, 'c2')), 'c2'));
  const n = x.shape.reduce((a, b) => a * b, 1);
  const [xo, mo, vo] = [0, 1, 2].map(() => new Float32Array(n));
  adamUpdateF32(vals(x), vals(m), vals(v), vals(g), k, xo, mo, vo);
  return [xo, mo, vo].map((d) => backend.makeTensorInfo(x.shape.slice(), 'float32', d));
}

/** The ADAM_UPDATE kernel for 'wasm' or 'cpu' (null for other backends: FusedAdam then runs tfjs's own chain). */
export function adamKernelConfig(backendName: string): KernelConfig | null {
  const kernelFunc = backendName === 'wasm' ? wasmAdam : backendName === 'cpu' ? cpuAdam : null;
  return kernelFunc ? { kernelName: ADAM_UPDATE, backendName, kernelFunc: kernelFunc as unknown as tf.KernelFunc } : null;
}
