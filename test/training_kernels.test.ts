// The one-kernel replacements of op chains that every training step runs (AssemblyScript SIMD on
// wasm, a float32 loop on cpu), against the chains they replace:
// - FusedAdam (training/optimizers.ts, src/kernels/adam.ts) against tf.train.adam: the same bits,
//   step after step, on sizes with and without a SIMD tail; its state saves and loads as Adam's;
//   without the kernel it is tfjs's own Adam.
// - steUniform's forward (layers/quantizers.ts, src/kernels/uniform_levels.ts) against its chain of
//   11 ops: the same bits for every form (signed or not, scaled by max|x| or not), ties included.
import { tf } from '../src/tf';
import { SeededRandom } from '../src/random';
import { ADAM_UPDATE, registerFastKernels } from '../src/kernels';
import { adamKernelConfig } from '../src/kernels/adam';
import { uniformLevelsKernelConfig } from '../src/kernels/uniform_levels';
import { UNIFORM_LEVELS } from '../src/kernels';
import { steUniform } from '../layers/quantizers';
import { useBackend } from './helpers';
import { FusedAdam, makeOptimizer } from '../training/optimizers';

const SHAPES = [[3, 7], [4, 4], [1], [2, 3, 5]];

function randn(rng: SeededRandom, n: number, scale = 1): Float32Array {
  return Float32Array.from({ length: n }, () => scale * rng.normal());
}

/** Runs `steps` updates of `opt` on fresh variables with seeded gradients; returns the weights and the optimizer's state. */
async function run(opt: tf.Optimizer, steps: number, lr: (t: number) => number = () => 0.01): Promise<{ weights: Float32Array[]; state: Float32Array[] }> {
  const rng = new SeededRandom(3);
  const vars = SHAPES.map((s, i) => tf.variable(tf.tensor(randn(rng, s.reduce((a, b) => a * b)), s), true, `adam_test_${i}_${Math.random()}`));
  for (let t = 0; t < steps; t++) {
    (opt as unknown as { learningRate: number }).learningRate = lr(t);
    // gradients of every size, a few exact zeros, one tiny
    const grads = vars.map((v) => ({ name: v.name, tensor: tf.tensor(randn(rng, v.size, t === 2 ? 1e-6 : 0.5).map((g, k) => (k % 5 === 0 ? 0 : g)), v.shape) }));
    opt.applyGradients(grads);
    grads.forEach((g) => g.tensor.dispose());
  }
  const weights = vars.map((v) => v.dataSync().slice() as Float32Array);
  const state = (await opt.getWeights()).map((w) => w.tensor.dataSync().slice() as Float32Array);
  vars.forEach((v) => v.dispose());
  return { weights, state };
}

describe.each(['wasm', 'cpu'])('FusedAdam on %s', (backend) => {
  beforeAll(() => useBackend(backend));

  test('the kernel is registered and the optimizer serializes as Adam', () => {
    expect(tf.getKernel(ADAM_UPDATE, backend)).toBeDefined();
    const o = makeOptimizer('adam', 0.01);
    expect(o).toBeInstanceOf(FusedAdam);
    expect(o.getClassName()).toBe('Adam');
    expect(o.getConfig()).toEqual(tf.train.adam(0.01).getConfig());
  });

  test('weights and moments equal tf.train.adam bit for bit over 6 steps (changing learning rate)', async () => {
    const lr = (t: number) => 0.02 / (1 + t);
    const ours = await run(new FusedAdam(0.02), 6, lr);
    const ref = await run(tf.train.adam(0.02), 6, lr);
    expect(ours.state.length).toBe(1 + 2 * SHAPES.length);
    for (let i = 0; i < SHAPES.length; i++) expect(Array.from(ours.weights[i])).toEqual(Array.from(ref.weights[i]));
    for (let i = 0; i < ours.state.length; i++) expect(Array.from(ours.state[i])).toEqual(Array.from(ref.state[i]));
    // and it moved: the first weight differs from its start by about lr per step
    const start = randn(new SeededRandom(3), 21);
    expect(Math.abs(ours.weights[0][1] - start[1])).toBeGreaterThan(1e-3);
  });

  test('a restored state continues as tfjs Adam does (resume)', async () => {
    const rng = new SeededRandom(9);
    const v0 = randn(rng, 6);
    const g = [randn(rng, 6), randn(rng, 6), randn(rng, 6)];
    const continued = async (make: () => tf.Optimizer) => {
      const v = tf.variable(tf.tensor(v0), true, `resume_${Math.random()}`);
      const a = make();
      a.applyGradients([{ name: v.name, tensor: tf.tensor(g[0]) }]);
      const saved = await a.getWeights();
      const b = make();
      await b.setWeights(saved);
      b.applyGradients([{ name: v.name, tensor: tf.tensor(g[1]) }]);
      b.applyGradients([{ name: v.name, tensor: tf.tensor(g[2]) }]);
      const out = Array.from(v.dataSync());
      v.dispose();
      return out;
    };
    expect(await continued(() => new FusedAdam(0.05))).toEqual(await continued(() => tf.train.adam(0.05)));
  });

  test('one kernel per variable: 6 variables cost 6 update kernels, not 84', async () => {
    const vars = Array.from({ length: 6 }, (_, i) => tf.variable(tf.ones([5]), true, `count_${i}_${Math.random()}`));
    const count = async (opt: tf.Optimizer) => {
      const grads = vars.map((v) => ({ name: v.name, tensor: tf.onesLike(v) }));
      opt.applyGradients(grads); // creates the moments
      const p = await tf.profile(() => opt.applyGradients(grads));
      grads.forEach((g) => g.tensor.dispose());
      return p.kernels.length;
    };
    const ours = await count(new FusedAdam(0.01));
    const stock = await count(tf.train.adam(0.01));
    // 6 updates + 2 (1 - beta^t) + 2 (beta^t products); tfjs: 14 per variable + the same 4
    expect(ours).toBe(10);
    expect(stock).toBe(88);
    vars.forEach((v) => v.dispose());
  });
});

test('without the kernel on the backend, FusedAdam is tfjs Adam', async () => {
  await tf.setBackend('cpu');
  registerFastKernels('cpu');
  tf.unregisterKernel(ADAM_UPDATE, 'cpu');
  try {
    const ours = await run(new FusedAdam(0.01), 3);
    const ref = await run(tf.train.adam(0.01), 3);
    expect(ours.weights.map((w) => Array.from(w))).toEqual(ref.weights.map((w) => Array.from(w)));
  } finally {
    tf.registerKernel(adamKernelConfig('cpu')!);
  }
});

test('the kernel refuses mismatched shapes and missing attributes, naming them', () => {
  const k = adamKernelConfig('cpu')!;
  expect(adamKernelConfig('webgl')).toBeNull();
  const b = tf.findBackend('cpu')!;
  const t = (v: number[]) => tf.tensor(v);
  const inputs = { x: t([1, 2]), m: t([0, 0]), v: t([0, 0, 0]), g: t([1, 1]), c1: tf.scalar(0.1), c2: tf.scalar(0.001) };
  expect(() => k.kernelFunc({ inputs, backend: b, attrs: { beta1: 0.9, beta2: 0.999, epsilon: 1e-7, learningRate: 0.1 } })).toThrow(/shapes differ: \[2\] and \[3\]/);
  expect(() => k.kernelFunc({ inputs: { ...inputs, v: t([0, 0]) }, backend: b, attrs: { beta1: 0.9, beta2: 0.999, epsilon: 1e-7 } })).toThrow(/learningRate must be a number/);
});

describe.each(['wasm', 'cpu'])('steUniform in one kernel on %s', (backend) => {
  beforeAll(() => useBackend(backend));

  /** The quantizer's output with the kernel, and with the kernel removed (tfjs's op chain). */
  function both(opts: Parameters<typeof steUniform>[0], x: tf.Tensor): { kernel: number[]; chain: number[] } {
    const q = steUniform(opts);
    const kernel = Array.from(q(x).dataSync());
    tf.unregisterKernel(UNIFORM_LEVELS, backend);
    try {
      return { kernel, chain: Array.from(q(x).dataSync()) };
    } finally {
      tf.registerKernel(uniformLevelsKernelConfig(backend)!);
    }
  }

  const forms = [
    { levels: 15, signed: true, scale: 'max' as const },
    { levels: 8, signed: true, scale: 'max' as const },
    { levels: 256 },
    { levels: 4, scale: 'max' as const },
    { levels: 7, signed: true },
  ];
  test.each(forms)('the same bits as the chain: %j', (opts) => {
    const rng = new SeededRandom(opts.levels);
    const x = tf.tensor(randn(rng, 1001, 0.7)); // 1001: a SIMD tail of 1
    const r = both(opts, x);
    expect(r.kernel).toEqual(r.chain);
    expect(new Set(r.kernel).size).toBeLessThanOrEqual(opts.levels);
    expect(new Set(r.kernel).size).toBeGreaterThan(1);
  });

  test('a quantized weight costs one kernel, not 11', async () => {
    const x = tf.tensor(randn(new SeededRandom(1), 72));
    const q = steUniform({ levels: 15, signed: true, scale: 'max' });
    const names = (await tf.profile(() => q(x))).kernels.map((k) => k.name).filter((n) => n !== 'Identity' && n !== 'unnamed scope' && n !== ''); // customGrad's wrappers
    expect(names).toEqual([UNIFORM_LEVELS]);
  });

  test('ties round half to even, as tf.round', () => {
    // 3 signed levels on [-1, 1]: (c + 1) * 1 = 0.5 and 1.5 are ties -> 0 and 2 -> -1 and 1
    const a = both({ levels: 3, signed: true }, tf.tensor([-0.5, 0.5, 0.25, -2, 2, 0]));
    expect(a.kernel).toEqual([-1, 1, 0, -1, 1, 0]);
    expect(a.kernel).toEqual(a.chain);
    // 5 unsigned levels on [0, 1]: 0.125 * 4 = 0.5 -> 0, 0.375 * 4 = 1.5 -> 2
    const b = both({ levels: 5 }, tf.tensor([0.125, 0.375, 0.625, 0.875, -1, 3]));
    expect(b.kernel).toEqual([0, 0.5, 0.5, 1, 0, 1]);
    expect(b.kernel).toEqual(b.chain);
  });

  test('the gradient is still the straight-through one', () => {
    const q = steUniform({ levels: 5 });
    const g = tf.grad((x: tf.Tensor) => tf.sum(tf.mul(q(x), tf.tensor([1, 2, 3, 4]))))(tf.tensor([0.3, -0.2, 0.9, 1.5]));
    expect(Array.from(g.dataSync())).toEqual([1, 0, 3, 0]);
  });
});

test('the levels kernel refuses a bad level count, naming it', () => {
  const k = uniformLevelsKernelConfig('cpu')!;
  expect(uniformLevelsKernelConfig('webgl')).toBeNull();
  expect(() => k.kernelFunc({ inputs: { x: tf.tensor([1]) }, backend: tf.findBackend('cpu')!, attrs: { levels: 1 } })).toThrow(/levels must be an integer >= 2, got 1/);
});
