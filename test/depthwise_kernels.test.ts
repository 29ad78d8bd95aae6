// The depthwise-convolution gradients the package adds to the wasm backend (src/kernels/depthwise.ts
// through src/kernels/wasm.ts) against plain loops with double accumulators, and a small
// separableConv2d model trained with model.fit on wasm, its gradients equal to the cpu backend's.
import { tf } from '../src/tf';
import { SeededRandom } from '../src/random';
import { registerFastKernels, setWasmSimdRoute } from '../src/kernels';
import { gradsWasmAndStockCpu, relErr } from './helpers';

type Padding = 'same' | 'valid';

interface DwCase {
  B: number;
  H: number;
  W: number;
  C: number;
  /** Channel multiplier. */
  M: number;
  k: number;
  s: number;
  d: number;
  pad: Padding;
}

/** TensorFlow's output size and leading padding for one spatial dimension. */
function dim(n: number, k0: number, s: number, d: number, pad: Padding): { out: number; before: number } {
  const k = (k0 - 1) * d + 1;
  if (pad === 'valid') return { out: Math.ceil((n - k + 1) / s), before: 0 };
  const out = Math.ceil(n / s);
  return { out, before: Math.floor(Math.max((out - 1) * s + k - n, 0) / 2) };
}

/** y = depthwiseConv2d(x, f); dx, df = gradients of sum(y * r). */
function depthwiseRef(c: DwCase, x: Float32Array, f: Float32Array, r: Float32Array | null) {
  const { B, H, W, C, M, k, s, d, pad } = c;
  const gy = dim(H, k, s, d, pad);
  const gx = dim(W, k, s, d, pad);
  const OC = C * M;
  const y = new Float64Array(B * gy.out * gx.out * OC);
  const dx = new Float64Array(x.length);
  const df = new Float64Array(f.length);
  for (let b = 0; b < B; b++)
    for (let oy = 0; oy < gy.out; oy++)
      for (let ox = 0; ox < gx.out; ox++)
        for (let ch = 0; ch < C; ch++)
          for (let m = 0; m < M; m++) {
            const yi = ((b * gy.out + oy) * gx.out + ox) * OC + ch * M + m;
            const rv = r ? r[yi] : 0;
            for (let i = 0; i < k; i++)
              for (let j = 0; j < k; j++) {
                const iy = oy * s + i * d - gy.before;
                const ix = ox * s + j * d - gx.before;
                if (iy < 0 || iy >= H || ix < 0 || ix >= W) continue;
                const xi = ((b * H + iy) * W + ix) * C + ch;
                const fi = ((i * k + j) * C + ch) * M + m;
                y[yi] += x[xi] * f[fi];
                dx[xi] += rv * f[fi];
                df[fi] += rv * x[xi];
              }
          }
  return { y, dx, df, outShape: [B, gy.out, gx.out, OC] };
}

function randn(rng: SeededRandom, n: number): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = rng.normal();
  return a;
}

const TOL = 1e-4;

function cases(): DwCase[] {
  const out: DwCase[] = [];
  for (const B of [1, 2])
    for (const [C, M] of [
      [1, 1],
      [3, 1],
      [4, 2],
      [2, 3],
      [4, 1],
      [8, 1],
    ])
      for (const k of [3, 2])
        for (const s of [1, 2])
          for (const pad of ['same', 'valid'] as Padding[]) out.push({ B, H: 7, W: 6, C, M, k, s, d: 1, pad });
  // ResNet-like: a 32x32 image, 16 channels, and a strided 5x5
  out.push({ B: 2, H: 32, W: 32, C: 16, M: 1, k: 3, s: 1, d: 1, pad: 'same' });
  out.push({ B: 1, H: 11, W: 13, C: 5, M: 2, k: 5, s: 3, d: 1, pad: 'same' });
  return out;
}

function tensors(c: DwCase, seed: number) {
  const rng = new SeededRandom(seed);
  const xv = randn(rng, c.B * c.H * c.W * c.C);
  const fv = randn(rng, c.k * c.k * c.C * c.M);
  const ref0 = depthwiseRef(c, xv, fv, null);
  const rv = randn(rng, ref0.y.length);
  return { xv, fv, rv, ref: depthwiseRef(c, xv, fv, rv) };
}

describe('depthwise convolution gradients on wasm', () => {
  beforeAll(async () => {
    await tf.setBackend('wasm');
    await tf.ready();
    registerFastKernels('wasm');
  });

  test('the wasm backend has the two gradient kernels once registered', () => {
    for (const name of ['DepthwiseConv2dNativeBackpropInput', 'DepthwiseConv2dNativeBackpropFilter']) {
      expect(registerFastKernels('wasm')).toContain(name);
      expect(tf.getKernel(name, 'wasm')).toBeDefined();
    }
  });

  // 'auto': the SIMD kernels where they fit (multiplier 1, channels in fours), loops elsewhere;
  // 'classic': the loops everywhere.
  test.each(['auto', 'classic'] as const)('tf.grads of depthwiseConv2d matches the loop reference (strides, padding, channel multiplier; route %s)', (route) => {
    setWasmSimdRoute(route);
    try {
      cases().forEach((c, n) => check(c, n));
    } finally {
      setWasmSimdRoute('auto');
    }
  });

  function check(c: DwCase, n: number): void {
    {
      const { xv, fv, rv, ref } = tensors(c, 300 + n);
      const x = tf.tensor4d(xv, [c.B, c.H, c.W, c.C]);
      const f = tf.tensor4d(fv, [c.k, c.k, c.C, c.M]);
      const r = tf.tensor(rv, ref.outShape);
      const y = tf.depthwiseConv2d(x, f, c.s, c.pad);
      const [dx, df] = tf.grads((a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.mul(tf.depthwiseConv2d(a as tf.Tensor4D, b as tf.Tensor4D, c.s, c.pad), r)))([x, f]);
      const label = JSON.stringify(c);
      const errs = { label, y: relErr(y, ref.y) <= TOL, dx: relErr(dx, ref.dx) <= TOL, df: relErr(df, ref.df) <= TOL };
      expect(errs).toEqual({ label, y: true, dx: true, df: true });
      tf.dispose([x, f, r, y, dx, df]);
    }
  }

  test('dilated kernels (run directly: tfjs refuses the gradient of a dilated depthwise conv) match the reference', () => {
    let seed = 400;
    for (const [k, d, pad, M, C] of [
      [3, 2, 'same', 1, 3],
      [3, 2, 'valid', 2, 3],
      [2, 3, 'same', 1, 3],
      [3, 2, 'same', 1, 8],
      [2, 3, 'valid', 1, 4],
    ] as [number, number, Padding, number, number][]) {
      const c: DwCase = { B: 2, H: 9, W: 10, C, M, k, s: 1, d, pad };
      const { xv, fv, rv, ref } = tensors(c, seed++);
      const x = tf.tensor4d(xv, [c.B, c.H, c.W, c.C]);
      const f = tf.tensor4d(fv, [k, k, c.C, M]);
      const dy = tf.tensor4d(rv, ref.outShape as [number, number, number, number]);
      const attrs = { strides: [1, 1], pad, dilations: [d, d], dimRoundingMode: undefined } as unknown as tf.NamedAttrMap;
      const y = tf.depthwiseConv2d(x, f, 1, pad, 'NHWC', d);
      const dx = tf.engine().runKernel('DepthwiseConv2dNativeBackpropInput', { dy, filter: f }, { ...attrs, inputShape: x.shape }) as tf.Tensor;
      const df = tf.engine().runKernel('DepthwiseConv2dNativeBackpropFilter', { x, dy }, { ...attrs, filterShape: f.shape }) as tf.Tensor;
      expect(relErr(y, ref.y)).toBeLessThan(TOL);
      expect(relErr(dx, ref.dx)).toBeLessThan(TOL);
      expect(relErr(df, ref.df)).toBeLessThan(TOL);
      tf.dispose([x, f, dy, y, dx, df]);
    }
  });

  test('explicit padding goes through the kernels too, and nothing is left on the heap', () => {
    const rng = new SeededRandom(5);
    const x = tf.tensor4d(randn(rng, 2 * 6 * 5 * 3), [2, 6, 5, 3]);
    const f = tf.tensor4d(randn(rng, 3 * 3 * 3 * 2), [3, 3, 3, 2]);
    const pad: [[number, number], [number, number], [number, number], [number, number]] = [[0, 0], [2, 0], [1, 1], [0, 0]];
    const grads = () =>
      tf.tidy(() => {
        const [dx, df] = tf.grads((a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.square(tf.depthwiseConv2d(a as tf.Tensor4D, b as tf.Tensor4D, 1, pad))))([x, f]);
        const [dxp, dfp] = tf.grads((a: tf.Tensor, b: tf.Tensor) =>
          tf.sum(tf.square(tf.depthwiseConv2d(tf.pad(a as tf.Tensor4D, pad), b as tf.Tensor4D, 1, 'valid'))),
        )([x, f]);
        return [relErr(dx, dxp), relErr(df, dfp)];
      });
    grads();
    const tensorsBefore = tf.memory().numTensors;
    const ids = tf.engine().backend.numDataIds();
    const [ex, ef] = grads();
    expect(ex).toBeLessThan(TOL);
    expect(ef).toBeLessThan(TOL);
    expect(tf.memory().numTensors).toBe(tensorsBefore);
    expect(tf.engine().backend.numDataIds()).toBe(ids);
    tf.dispose([x, f]);
  });

  test('a dy of the wrong shape is refused with a message naming the kernel', () => {
    const dy = tf.zeros([1, 3, 3, 2]);
    const f = tf.zeros([3, 3, 2, 1]);
    expect(() =>
      tf.engine().runKernel('DepthwiseConv2dNativeBackpropInput', { dy, filter: f }, { strides: [1, 1], pad: 'same', dilations: [1, 1], inputShape: [1, 4, 4, 2] } as unknown as tf.NamedAttrMap),
    ).toThrow(/DepthwiseConv2dNativeBackpropInput: dy has shape \[1,3,3,2\]/);
    tf.dispose([dy, f]);
  });
});

describe('a separableConv2d model trains with model.fit on wasm', () => {
  beforeAll(async () => {
    await tf.setBackend('wasm');
    await tf.ready();
    registerFastKernels('wasm');
  });

  function model(seed: number): tf.Sequential {
    const init = (k: number) => tf.initializers.glorotUniform({ seed: seed + k });
    const m = tf.sequential();
    m.add(
      tf.layers.separableConv2d({
        inputShape: [12, 12, 3],
        filters: 8,
        kernelSize: 3,
        depthMultiplier: 2,
        padding: 'same',
        activation: 'relu',
        depthwiseInitializer: init(1),
        pointwiseInitializer: init(2),
      }),
    );
    m.add(tf.layers.separableConv2d({ filters: 8, kernelSize: 3, strides: 2, padding: 'valid', activation: 'relu', depthwiseInitializer: init(3), pointwiseInitializer: init(4) }));
    m.add(tf.layers.depthwiseConv2d({ kernelSize: 2, depthMultiplier: 1, padding: 'same', depthwiseInitializer: init(5) }));
    m.add(tf.layers.flatten());
    m.add(tf.layers.dense({ units: 4, kernelInitializer: init(6) }));
    return m;
  }

  function data(n: number, seed: number): { xs: tf.Tensor4D; ys: tf.Tensor2D } {
    const rng = new SeededRandom(seed);
    const labels = Array.from({ length: n }, () => rng.int(4));
    // The label decides which quadrant is bright: learnable in a few steps.
    const xv = new Float32Array(n * 12 * 12 * 3);
    for (let s = 0; s < n; s++)
      for (let y = 0; y < 12; y++)
        for (let x = 0; x < 12; x++)
          for (let c = 0; c < 3; c++) {
            const q = (y < 6 ? 0 : 2) + (x < 6 ? 0 : 1);
            xv[((s * 12 + y) * 12 + x) * 3 + c] = (q === labels[s] ? 1 : 0) + 0.3 * rng.normal();
          }
    return { xs: tf.tensor4d(xv, [n, 12, 12, 3]), ys: tf.oneHot(tf.tensor1d(labels, 'int32'), 4).toFloat() as tf.Tensor2D };
  }

  test('fit runs and the loss decreases', async () => {
    const m = model(31);
    m.compile({ optimizer: tf.train.adam(0.01), loss: (y, p) => tf.losses.softmaxCrossEntropy(y, p) });
    const { xs, ys } = data(32, 3);
    const h = await m.fit(xs, ys, { epochs: 15, batchSize: 16, shuffle: false, verbose: 0 });
    const loss = h.history.loss as number[];
    expect(loss.every(Number.isFinite)).toBe(true);
    expect(loss[14]).toBeLessThan(loss[0] * 0.5);
    m.dispose();
    tf.dispose([xs, ys]);
  });

  test('its gradients on wasm equal the cpu backend stock kernels', async () => {
    const { xs, ys } = data(8, 9);
    const { wasm, cpu } = await gradsWasmAndStockCpu(() => model(41), xs, ys);
    tf.dispose([xs, ys]);
    expect(cpu.length).toBe(wasm.length);
    expect(cpu.length).toBe(10);
    cpu.forEach((ref, i) => expect({ i, ok: relErr(wasm[i], ref) < TOL }).toEqual({ i, ok: true }));
  });
});
