// The package's conv / pool kernels (src/kernels) against naive loop references written here, on
// wasm and cpu, and a stock tf.layers mcnn training on wasm.
import { tf } from '../src/tf';
import { SeededRandom } from '../src/random';
import { ADAM_UPDATE, UNIFORM_LEVELS, chooseFilterRoute, chooseSimd, fastKernels, registerFastKernels, setWasmFilterGradRoute, setWasmSimdRoute } from '../src/kernels';
import { conv2dBackpropFilter, conv2dBackpropInput, conv2dForward } from '../src/kernels/conv_js';
import { convGeometry, poolGeometry } from '../src/kernels/geometry';
import { maxPoolBackward, maxPoolForward } from '../src/kernels/maxpool';
import { gradsWasmAndStockCpu, relErr, useBackend } from './helpers';

type Padding = 'same' | 'valid';

// ---------------------------------------------------------------------------------------------
// Naive references (plain loops, double accumulators, TensorFlow's padding rule).

interface Geo {
  outH: number;
  outW: number;
  top: number;
  left: number;
}

function geo(H: number, W: number, kh0: number, kw0: number, s: number, pad: Padding, d = 1): Geo {
  const kh = (kh0 - 1) * d + 1;
  const kw = (kw0 - 1) * d + 1;
  if (pad === 'valid') return { outH: Math.ceil((H - kh + 1) / s), outW: Math.ceil((W - kw + 1) / s), top: 0, left: 0 };
  const outH = Math.ceil(H / s);
  const outW = Math.ceil(W / s);
  const padH = Math.max((outH - 1) * s + kh - H, 0);
  const padW = Math.max((outW - 1) * s + kw - W, 0);
  return { outH, outW, top: Math.floor(padH / 2), left: Math.floor(padW / 2) };
}

interface ConvCase {
  B: number;
  H: number;
  W: number;
  cin: number;
  cout: number;
  k: number;
  s: number;
  pad: Padding;
  /** Dilation (forward only; tfjs has no gradient for dilated conv2d). */
  d?: number;
}

/** y = conv2d(x, w); dx, dw = gradients of sum(y * r). */
function convRef(c: ConvCase, x: Float32Array, w: Float32Array, r: Float32Array | null) {
  const { B, H, W, cin, cout, k, s, pad } = c;
  const d = c.d ?? 1;
  const g = geo(H, W, k, k, s, pad, d);
  const y = new Float64Array(B * g.outH * g.outW * cout);
  const dx = new Float64Array(B * H * W * cin);
  const dw = new Float64Array(k * k * cin * cout);
  for (let b = 0; b < B; b++)
    for (let oy = 0; oy < g.outH; oy++)
      for (let ox = 0; ox < g.outW; ox++)
        for (let o = 0; o < cout; o++) {
          const yi = ((b * g.outH + oy) * g.outW + ox) * cout + o;
          const rv = r ? r[yi] : 0;
          for (let i = 0; i < k; i++)
            for (let j = 0; j < k; j++) {
              const iy = oy * s + i * d - g.top;
              const ix = ox * s + j * d - g.left;
              if (iy < 0 || iy >= H || ix < 0 || ix >= W) continue;
              for (let ci = 0; ci < cin; ci++) {
                const xi = ((b * H + iy) * W + ix) * cin + ci;
                const wi = ((i * k + j) * cin + ci) * cout + o;
                y[yi] += x[xi] * w[wi];
                dx[xi] += rv * w[wi];
                dw[wi] += rv * x[xi];
              }
            }
        }
  return { y, dx, dw, outShape: [B, g.outH, g.outW, cout] };
}

/** y = maxPool(x); dx = gradient of sum(y * r), to the first maximum of each window. */
function poolRef(shape: number[], x: Float32Array, k: number, s: number, pad: Padding, r: Float32Array | null) {
  const [B, H, W, C] = shape;
  const g = geo(H, W, k, k, s, pad);
  const y = new Float64Array(B * g.outH * g.outW * C);
  const dx = new Float64Array(x.length);
  for (let b = 0; b < B; b++)
    for (let oy = 0; oy < g.outH; oy++)
      for (let ox = 0; ox < g.outW; ox++)
        for (let c = 0; c < C; c++) {
          let best = -Infinity;
          let at = -1;
          for (let i = 0; i < k; i++)
            for (let j = 0; j < k; j++) {
              const iy = oy * s + i - g.top;
              const ix = ox * s + j - g.left;
              if (iy < 0 || iy >= H || ix < 0 || ix >= W) continue;
              const xi = ((b * H + iy) * W + ix) * C + c;
              if (at < 0 || x[xi] > best) {
                best = x[xi];
                at = xi;
              }
            }
          const yi = ((b * g.outH + oy) * g.outW + ox) * C + c;
          y[yi] = best;
          if (r) dx[at] += r[yi];
        }
  return { y, dx, outShape: [B, g.outH, g.outW, C] };
}

// ---------------------------------------------------------------------------------------------

function randn(rng: SeededRandom, n: number): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = rng.normal();
  return a;
}

const TOL = 1e-4;
const worst: Record<string, number> = {};
function record(key: string, e: number): void {
  worst[key] = Math.max(worst[key] ?? 0, e);
}

function convCases(): ConvCase[] {
  const cases: ConvCase[] = [];
  for (const B of [1, 3])
    for (const cin of [1, 3])
      for (const cout of [2, 5])
        for (const k of [3, 2])
          for (const s of [1, 2])
            for (const pad of ['same', 'valid'] as Padding[]) cases.push({ B, H: 7, W: 6, cin, cout, k, s, pad });
  // Whole vectors of channels (the SIMD kernels' shapes), odd sizes, strides, 1x1 projections.
  for (const [cin, cout] of [
    [4, 4],
    [8, 12],
    [4, 20],
  ])
    for (const k of [3, 2, 1])
      for (const s of [1, 2])
        for (const pad of ['same', 'valid'] as Padding[]) cases.push({ B: 2, H: 7, W: 9, cin, cout, k, s, pad });
  // mcnn's two layers at a small batch, ResNet-20's first layer and a stage-2 entry.
  cases.push({ B: 2, H: 28, W: 28, cin: 1, cout: 8, k: 3, s: 1, pad: 'same' });
  cases.push({ B: 2, H: 14, W: 14, cin: 8, cout: 12, k: 3, s: 1, pad: 'valid' });
  cases.push({ B: 2, H: 32, W: 32, cin: 3, cout: 16, k: 3, s: 1, pad: 'same' });
  cases.push({ B: 2, H: 32, W: 32, cin: 16, cout: 32, k: 3, s: 2, pad: 'same' });
  return cases;
}

function checkConv(c: ConvCase, seed: number, key: string): void {
  const rng = new SeededRandom(seed);
  const xv = randn(rng, c.B * c.H * c.W * c.cin);
  const wv = randn(rng, c.k * c.k * c.cin * c.cout);
  const ref0 = convRef(c, xv, wv, null);
  const rv = randn(rng, ref0.y.length);
  const ref = convRef(c, xv, wv, rv);
  const x = tf.tensor4d(xv, [c.B, c.H, c.W, c.cin]);
  const w = tf.tensor4d(wv, [c.k, c.k, c.cin, c.cout]);
  const r = tf.tensor(rv, ref.outShape);
  const y = tf.conv2d(x, w, c.s, c.pad);
  expect(y.shape).toEqual(ref.outShape);
  const [dx, dw] = tf.grads((a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.mul(tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, c.s, c.pad), r)))([x, w]);
  const ey = relErr(y.dataSync(), ref.y);
  const edx = relErr(dx.dataSync(), ref.dx);
  const edw = relErr(dw.dataSync(), ref.dw);
  record(`${key} conv2d`, ey);
  record(`${key} dx`, edx);
  record(`${key} dw`, edw);
  const label = JSON.stringify(c);
  expect({ label, ey: ey <= TOL, edx: edx <= TOL, edw: edw <= TOL }).toEqual({ label, ey: true, edx: true, edw: true });
  tf.dispose([x, w, r, y, dx, dw]);
}

type PoolInput = 'random' | 'negative' | 'ties';

function poolInput(rng: SeededRandom, n: number, kind: PoolInput): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    if (kind === 'random') a[i] = rng.normal();
    else if (kind === 'negative') a[i] = -0.01 - Math.abs(rng.normal()) * 3;
    // Few distinct levels, many exact ties, long flat runs of zeros like MNIST's background.
    else a[i] = rng.next() < 0.6 ? 0 : rng.int(3) - 1;
  }
  return a;
}

function checkPool(shape: number[], k: number, s: number, pad: Padding, kind: PoolInput, seed: number, key: string): void {
  const rng = new SeededRandom(seed);
  const n = shape.reduce((a, b) => a * b, 1);
  const xv = poolInput(rng, n, kind);
  const ref0 = poolRef(shape, xv, k, s, pad, null);
  const rv = randn(rng, ref0.y.length);
  const ref = poolRef(shape, xv, k, s, pad, rv);
  const x = tf.tensor4d(xv, shape as [number, number, number, number]);
  const r = tf.tensor(rv, ref.outShape);
  const y = tf.maxPool(x, k, s, pad);
  expect(y.shape).toEqual(ref.outShape);
  const dx = tf.grad((a: tf.Tensor) => tf.sum(tf.mul(tf.maxPool(a as tf.Tensor4D, k, s, pad), r)))(x);
  const ey = relErr(y.dataSync(), ref.y);
  const edx = relErr(dx.dataSync(), ref.dx);
  record(`${key} maxPool`, ey);
  record(`${key} maxPool dx`, edx);
  const label = JSON.stringify({ shape, k, s, pad, kind });
  expect({ label, ey: ey <= TOL, edx: edx <= TOL }).toEqual({ label, ey: true, edx: true });
  tf.dispose([x, r, y, dx]);
}

const POOLS: [number, number][] = [
  [2, 2],
  [3, 3],
  [3, 2],
];
const POOL_SHAPES = [
  [2, 7, 8, 3],
  [1, 12, 12, 4],
  [3, 9, 9, 1],
];

afterAll(() => {
  const lines = Object.entries(worst).map(([k, v]) => `${k}: ${v.toExponential(2)}`);
  // The worst errors seen, for the record (the assertions above are what gates).
  process.stdout.write(`kernels: max error relative to reference\n  ${lines.join('\n  ')}\n`);
});

describe.each(['wasm', 'cpu'])('fast kernels on %s', (backend) => {
  beforeAll(async () => {
    await useBackend(backend);
  });

  test('registerFastKernels registers the expected kernels, idempotently', () => {
    const names = registerFastKernels(backend);
    expect(registerFastKernels(backend)).toEqual(names);
    expect(fastKernels(backend)).toEqual(names);
    const expected =
      backend === 'wasm'
        ? ['Identity', 'Cast', 'Sum', 'Mean', 'FusedBatchNorm', 'Add', 'Sub', 'Multiply', 'RealDiv', 'Tile', 'Conv2D', 'FusedConv2D', 'Conv2DBackpropFilter', 'Conv2DBackpropInput', 'MaxPoolGrad', 'DepthwiseConv2dNativeBackpropInput', 'DepthwiseConv2dNativeBackpropFilter', ADAM_UPDATE, UNIFORM_LEVELS]
        : ['Conv2D', 'FusedConv2D', 'Conv2DBackpropInput', 'Conv2DBackpropFilter', 'MaxPool', 'MaxPoolGrad', ADAM_UPDATE, UNIFORM_LEVELS];
    expect([...names].sort()).toEqual([...expected].sort());
    for (const n of names) expect(tf.getKernel(n, backend)).toBeDefined();
    expect(registerFastKernels('webgl')).toEqual([]);
  });

  // wasm: the per-shape choice, the SIMD kernels wherever they fit, and the classic routes (the
  // backend's own kernels composed) with each filter-gradient route.
  const routes = backend === 'wasm' ? (['auto', 'simd', 'classic/im2col', 'classic/conv'] as const) : (['auto'] as const);
  test.each(routes)('conv2d forward and gradients match the loop reference (route %s)', (route) => {
    const [simd, filter] = route.split('/') as ['auto' | 'simd' | 'classic', 'im2col' | 'conv' | undefined];
    setWasmSimdRoute(simd);
    setWasmFilterGradRoute(filter ?? 'auto');
    try {
      convCases().forEach((c, i) => checkConv(c, 100 + i, backend));
    } finally {
      setWasmFilterGradRoute('auto');
      setWasmSimdRoute('auto');
    }
  });

  test('dilated conv2d forward matches the loop reference', () => {
    let seed = 500;
    for (const k of [2, 3])
      for (const pad of ['same', 'valid'] as Padding[])
        for (const [B, cout] of [
          [1, 5],
          [2, 8],
        ]) {
          const c: ConvCase = { B, H: 9, W: 8, cin: 3, cout, k, s: 1, pad, d: 2 };
          const rng = new SeededRandom(seed++);
          const xv = randn(rng, B * 9 * 8 * 3);
          const wv = randn(rng, k * k * 3 * cout);
          const ref = convRef(c, xv, wv, null);
          const x = tf.tensor4d(xv, [B, 9, 8, 3]);
          const w = tf.tensor4d(wv, [k, k, 3, cout]);
          const y = tf.conv2d(x, w, 1, pad, 'NHWC', 2);
          expect(y.shape).toEqual(ref.outShape);
          const e = relErr(y.dataSync(), ref.y);
          record(`${backend} conv2d`, e);
          expect(e).toBeLessThan(TOL);
          tf.dispose([x, w, y]);
        }
  });

  test('maxPool forward and gradient match the loop reference (random, all-negative, ties)', () => {
    let seed = 1000;
    for (const shape of POOL_SHAPES)
      for (const [k, s] of POOLS)
        for (const pad of ['same', 'valid'] as Padding[])
          for (const kind of ['random', 'negative', 'ties'] as PoolInput[]) checkPool(shape, k, s, pad, kind, seed++, backend);
  });

  test('max-pool gradient goes to one input per window when the whole window ties', () => {
    const x = tf.zeros([1, 4, 4, 1]);
    const dx = tf.grad((a: tf.Tensor) => tf.sum(tf.maxPool(a as tf.Tensor4D, 2, 2, 'valid')))(x);
    // The first (top-left) tap of each 2x2 window gets the gradient, no other.
    expect(Array.from(dx.dataSync())).toEqual([1, 0, 1, 0, 0, 0, 0, 0, 1, 0, 1, 0, 0, 0, 0, 0]);
    tf.dispose([x, dx]);
  });

  test('explicit padding and batch 1 go through the fast conv gradients too', () => {
    const rng = new SeededRandom(7);
    const x = tf.tensor4d(randn(rng, 1 * 5 * 6 * 2), [1, 5, 6, 2]);
    const w = tf.tensor4d(randn(rng, 3 * 3 * 2 * 4), [3, 3, 2, 4]);
    const pad: [[number, number], [number, number], [number, number], [number, number]] = [[0, 0], [1, 2], [2, 0], [0, 0]];
    const f = (a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.square(tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, 1, pad)));
    const [dx, dw] = tf.grads(f)([x, w]);
    // Same as zero-padding the input by hand and convolving 'valid'.
    const [dxp, dwp] = tf.grads((a: tf.Tensor, b: tf.Tensor) =>
      tf.sum(tf.square(tf.conv2d(tf.pad(a as tf.Tensor4D, pad), b as tf.Tensor4D, 1, 'valid'))),
    )([x, w]);
    expect(relErr(dx.dataSync(), dxp.dataSync())).toBeLessThan(TOL);
    expect(relErr(dw.dataSync(), dwp.dataSync())).toBeLessThan(TOL);
    tf.dispose([x, w, dx, dw, dxp, dwp]);
  });

  test('kernels free their intermediates (no tensors or backend buffers left behind)', () => {
    const rng = new SeededRandom(3);
    const x = tf.tensor4d(randn(rng, 4 * 14 * 14 * 8), [4, 14, 14, 8]);
    const w = tf.tensor4d(randn(rng, 3 * 3 * 8 * 12), [3, 3, 8, 12]);
    const x1 = tf.tensor4d(randn(rng, 4 * 28 * 28 * 1), [4, 28, 28, 1]);
    const w1 = tf.tensor4d(randn(rng, 3 * 3 * 1 * 8), [3, 3, 1, 8]);
    const step = () =>
      tf.tidy(() => {
        const g = tf.grads((a: tf.Tensor, b: tf.Tensor, c: tf.Tensor) =>
          tf.add(
            tf.sum(tf.maxPool(tf.relu(tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, 1, 'valid')), 3, 3, 'valid')),
            tf.sum(tf.maxPool(tf.conv2d(x1, c as tf.Tensor4D, 1, 'same'), 2, 2, 'valid')),
          ),
        )([x, w, w1]);
        return g.map((t) => t.dataSync()[0]);
      });
    step();
    const tensors = tf.memory().numTensors;
    const dataIds = tf.engine().backend.numDataIds();
    for (let i = 0; i < 3; i++) step();
    expect(tf.memory().numTensors).toBe(tensors);
    expect(tf.engine().backend.numDataIds()).toBe(dataIds);
    tf.dispose([x, w, x1, w1]);
  });
});

describe('cpu: fused conv2d and NCHW', () => {
  beforeAll(async () => {
    await useBackend('cpu');
  });

  test('FusedConv2D (bias + each activation) matches the loop reference', () => {
    const c: ConvCase = { B: 2, H: 7, W: 6, cin: 3, cout: 5, k: 3, s: 1, pad: 'same' };
    const rng = new SeededRandom(77);
    const xv = randn(rng, 2 * 7 * 6 * 3);
    const wv = randn(rng, 3 * 3 * 3 * 5);
    const bv = randn(rng, 5);
    const pv = new Float32Array([0.1, 0.2, 0.3, 0.4, 0.5]);
    const ref = convRef(c, xv, wv, null);
    const x = tf.tensor4d(xv, [2, 7, 6, 3]);
    const w = tf.tensor4d(wv, [3, 3, 3, 5]);
    const bias = tf.tensor1d(bv);
    const prelu = tf.tensor1d(pv);
    const acts: Record<string, (v: number, o: number) => number> = {
      linear: (v) => v,
      relu: (v) => Math.max(0, v),
      relu6: (v) => Math.min(6, Math.max(0, v)),
      elu: (v) => (v < 0 ? Math.exp(v) - 1 : v),
      sigmoid: (v) => 1 / (1 + Math.exp(-v)),
      leakyrelu: (v) => (v < 0 ? 0.3 * v : v),
      prelu: (v, o) => (v < 0 ? pv[o] * v : v),
    };
    for (const [name, f] of Object.entries(acts)) {
      const y = tf.fused.conv2d({
        x,
        filter: w,
        strides: 1,
        pad: 'same',
        bias,
        activation: name as tf.fused.Activation,
        preluActivationWeights: name === 'prelu' ? prelu : undefined,
        leakyreluAlpha: 0.3,
      });
      const want = ref.y.map((v, i) => f(v + bv[i % 5], i % 5));
      const e = relErr(y.dataSync(), want);
      record('cpu fused conv2d', e);
      expect({ name, ok: e <= TOL }).toEqual({ name, ok: true });
      y.dispose();
    }
    tf.dispose([x, w, bias, prelu]);
  });

  test('NCHW conv2d and its gradients fall back to the stock kernels and stay correct', () => {
    const c: ConvCase = { B: 2, H: 6, W: 5, cin: 3, cout: 4, k: 3, s: 1, pad: 'same' };
    const rng = new SeededRandom(88);
    const xv = randn(rng, 2 * 6 * 5 * 3);
    const wv = randn(rng, 3 * 3 * 3 * 4);
    const ref0 = convRef(c, xv, wv, null);
    const rv = randn(rng, ref0.y.length);
    const ref = convRef(c, xv, wv, rv);
    const x = tf.transpose(tf.tensor4d(xv, [2, 6, 5, 3]), [0, 3, 1, 2]) as tf.Tensor4D;
    const w = tf.tensor4d(wv, [3, 3, 3, 4]);
    const r = tf.transpose(tf.tensor(rv, ref.outShape), [0, 3, 1, 2]);
    const conv = (a: tf.Tensor, b: tf.Tensor) => tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, 1, 'same', 'NCHW');
    const y = tf.transpose(conv(x, w), [0, 2, 3, 1]);
    const [dx, dw] = tf.grads((a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.mul(conv(a, b), r)))([x, w]);
    expect(relErr(y.dataSync(), ref.y)).toBeLessThan(TOL);
    expect(relErr(tf.transpose(dx, [0, 2, 3, 1]).dataSync(), ref.dx)).toBeLessThan(TOL);
    expect(relErr(dw.dataSync(), ref.dw)).toBeLessThan(TOL);
    tf.dispose([x, w, r, y, dx, dw]);
  });
});

describe('typed-array kernels directly', () => {
  test('JS conv and gradients give the same numbers in chunks of one image as in one chunk', () => {
    const c: ConvCase = { B: 3, H: 7, W: 6, cin: 2, cout: 5, k: 3, s: 2, pad: 'same' };
    const rng = new SeededRandom(99);
    const xv = randn(rng, 3 * 7 * 6 * 2);
    const wv = randn(rng, 3 * 3 * 2 * 5);
    const ref0 = convRef(c, xv, wv, null);
    const rv = randn(rng, ref0.y.length);
    const ref = convRef(c, xv, wv, rv);
    const g = convGeometry([3, 7, 6, 2], [3, 3, 2, 5], 2, 1, 'same');
    for (const chunk of [1, 100, 1 << 21]) {
      expect(relErr(conv2dForward(xv, wv, g, chunk), ref.y)).toBeLessThan(TOL);
      expect(relErr(conv2dBackpropInput(rv, wv, g, chunk), ref.dx)).toBeLessThan(TOL);
      expect(relErr(conv2dBackpropFilter(xv, rv, g, chunk), ref.dw)).toBeLessThan(TOL);
    }
  });

  test('max-pool gradient is the same with the forward output (tap equal to max) and without (argmax)', () => {
    for (const kind of ['random', 'negative', 'ties'] as PoolInput[]) {
      const rng = new SeededRandom(kind);
      const shape = [2, 9, 8, 3];
      const xv = poolInput(rng, 2 * 9 * 8 * 3, kind);
      const g = poolGeometry(shape, 3, 2, 'same');
      const y = maxPoolForward(xv, g, new Float32Array(g.batch * g.outH * g.outW * g.outC));
      const dy = randn(rng, y.length);
      const ref = poolRef(shape, xv, 3, 2, 'same', dy);
      expect(relErr(y, ref.y)).toBe(0);
      expect(relErr(maxPoolBackward(xv, dy, g, new Float32Array(xv.length), y), ref.dx)).toBeLessThan(TOL);
      expect(relErr(maxPoolBackward(xv, dy, g, new Float32Array(xv.length)), ref.dx)).toBeLessThan(TOL);
    }
  });
});

describe('mcnn from stock tf.layers on wasm', () => {
  beforeAll(async () => {
    await useBackend('wasm');
  });

  function mcnn(seed: number): tf.Sequential {
    const init = (k: number) => tf.initializers.glorotUniform({ seed: seed + k });
    const m = tf.sequential();
    m.add(tf.layers.conv2d({ inputShape: [28, 28, 1], filters: 8, kernelSize: 3, padding: 'same', activation: 'relu', kernelInitializer: init(1) }));
    m.add(tf.layers.maxPooling2d({ poolSize: 2 }));
    m.add(tf.layers.conv2d({ filters: 12, kernelSize: 3, padding: 'valid', activation: 'relu', kernelInitializer: init(2) }));
    m.add(tf.layers.maxPooling2d({ poolSize: 3, strides: 3 }));
    m.add(tf.layers.flatten());
    m.add(tf.layers.dense({ units: 10, kernelInitializer: init(3) }));
    return m;
  }

  function batch(n: number, seed: number): { xs: tf.Tensor4D; ys: tf.Tensor2D } {
    const rng = new SeededRandom(seed);
    const xv = new Float32Array(n * 784);
    // MNIST-like: a flat zero background (ties in every pooling window) and a bright blob.
    for (let s = 0; s < n; s++) {
      const cy = 8 + rng.int(12);
      const cx = 8 + rng.int(12);
      for (let y = 0; y < 28; y++)
        for (let x = 0; x < 28; x++) {
          const d = Math.hypot(y - cy, x - cx);
          xv[s * 784 + y * 28 + x] = d < 6 ? Math.round(255 * rng.next()) / 255 : 0;
        }
    }
    const labels = new Int32Array(n);
    for (let i = 0; i < n; i++) labels[i] = rng.int(10);
    return { xs: tf.tensor4d(xv, [n, 28, 28, 1]), ys: tf.oneHot(tf.tensor1d(labels, 'int32'), 10).toFloat() as tf.Tensor2D };
  }

  test('fit steps without throwing and the loss decreases over 20 steps', async () => {
    const model = mcnn(11);
    model.compile({ optimizer: tf.train.adam(0.01), loss: (y, p) => tf.losses.softmaxCrossEntropy(y, p) });
    const { xs, ys } = batch(32, 5);
    const h = await model.fit(xs, ys, { epochs: 20, batchSize: 32, shuffle: false, verbose: 0 });
    const loss = h.history.loss as number[];
    expect(loss).toHaveLength(20);
    expect(loss.every(Number.isFinite)).toBe(true);
    expect(loss[19]).toBeLessThan(loss[0] * 0.7);
    model.dispose();
    tf.dispose([xs, ys]);
  });

  test('one training step: gradients on wasm match the cpu backend with its stock kernels', async () => {
    const { xs, ys } = batch(8, 9);
    const { wasm, cpu } = await gradsWasmAndStockCpu(() => mcnn(21), xs, ys);
    tf.dispose([xs, ys]);
    expect(cpu.length).toBe(wasm.length);
    cpu.forEach((ref, i) => {
      const e = relErr(wasm[i], ref);
      record('mcnn wasm vs stock cpu grad', e);
      expect(e).toBeLessThan(TOL);
    });
  });
});

describe('Tile on wasm (block copies)', () => {
  beforeAll(async () => {
    await useBackend('wasm');
  });

  /** tile by its definition: each output index reads the input at the index modulo the input's shape. */
  function tileRef(x: ArrayLike<number>, shape: number[], reps: number[]): number[] {
    const outShape = shape.map((s, d) => s * reps[d]);
    const n = outShape.reduce((a, b) => a * b, 1);
    const out: number[] = [];
    for (let k = 0; k < n; k++) {
      let rest = k;
      let src = 0;
      let inStride = 1;
      const idx: number[] = [];
      for (let d = outShape.length - 1; d >= 0; d--) {
        idx[d] = rest % outShape[d];
        rest = Math.floor(rest / outShape[d]);
      }
      for (let d = shape.length - 1; d >= 0; d--) {
        src += (idx[d] % shape[d]) * inStride;
        inStride *= shape[d];
      }
      out.push(x[src]);
    }
    return out;
  }

  test('tf.tile equals its definition (ranks 1-5, float32, int32, bool; batch-norm shape)', () => {
    expect(registerFastKernels('wasm')).toContain('Tile');
    const cases: [number[], number[]][] = [
      [[5], [3]],
      [[2, 3], [2, 1]],
      [[2, 3], [1, 4]],
      [[3, 1, 2], [2, 5, 3]],
      [[1, 1, 1, 16], [4, 8, 8, 1]],
      [[2, 1, 3, 1, 2], [1, 3, 2, 2, 1]],
      [[4, 2], [1, 1]],
    ];
    cases.forEach(([shape, reps], n) => {
      const size = shape.reduce((a, b) => a * b, 1);
      const rng = new SeededRandom(900 + n);
      const xf = randn(rng, size);
      const xi = Int32Array.from({ length: size }, () => rng.int(1000) - 500);
      const xb = Uint8Array.from({ length: size }, () => rng.int(2));
      for (const [values, dtype] of [
        [xf, 'float32'],
        [xi, 'int32'],
        [xb, 'bool'],
      ] as [Float32Array | Int32Array | Uint8Array, tf.DataType][]) {
        const x = tf.tensor(values, shape, dtype);
        const y = tf.tile(x, reps);
        expect({ shape, reps, dtype, out: y.shape }).toEqual({ shape, reps, dtype, out: shape.map((s, d) => s * reps[d]) });
        expect(Array.from(y.dataSync())).toEqual(tileRef(values, shape, reps));
        tf.dispose([x, y]);
      }
    });
  });
});

describe('wasm: FusedConv2D through the SIMD kernel (bias, ReLU) and the stock one (other activations)', () => {
  beforeAll(async () => {
    await useBackend('wasm');
  });

  test.each(['auto', 'classic'] as const)('tf.fused.conv2d matches the loop reference (route %s)', (route) => {
    setWasmSimdRoute(route);
    try {
      for (const c of [
        { B: 2, H: 7, W: 6, cin: 3, cout: 8, k: 3, s: 1, pad: 'same' },
        { B: 1, H: 9, W: 9, cin: 8, cout: 12, k: 3, s: 2, pad: 'valid' },
      ] as ConvCase[]) {
        const rng = new SeededRandom(c.cout);
        const xv = randn(rng, c.B * c.H * c.W * c.cin);
        const wv = randn(rng, c.k * c.k * c.cin * c.cout);
        const bv = randn(rng, c.cout);
        const ref = convRef(c, xv, wv, null);
        const x = tf.tensor4d(xv, [c.B, c.H, c.W, c.cin]);
        const w = tf.tensor4d(wv, [c.k, c.k, c.cin, c.cout]);
        const bias = tf.tensor1d(bv);
        const acts: [tf.fused.Activation, boolean, (v: number) => number][] = [
          ['linear', false, (v) => v],
          ['linear', true, (v) => v],
          ['relu', true, (v) => Math.max(0, v)],
          ['relu', false, (v) => Math.max(0, v)],
          ['elu', true, (v) => (v < 0 ? Math.exp(v) - 1 : v)],
        ];
        for (const [activation, withBias, f] of acts) {
          const y = tf.fused.conv2d({ x, filter: w, strides: c.s, pad: c.pad, bias: withBias ? bias : undefined, activation });
          const want = ref.y.map((v, i) => f(v + (withBias ? bv[i % c.cout] : 0)));
          expect({ activation, withBias, ok: relErr(y, want) <= TOL }).toEqual({ activation, withBias, ok: true });
          y.dispose();
        }
        tf.dispose([x, w, bias]);
      }
    } finally {
      setWasmSimdRoute('auto');
    }
  });
});

describe('Identity on wasm shares the buffer', () => {
  beforeAll(async () => {
    await useBackend('wasm');
  });

  test('tf.clone, the Identity kernel and same-dtype casts give the same values, outlive their input, and free the buffer with the last tensor', () => {
    const ids = tf.engine().backend.numDataIds();
    const x = tf.tensor4d(Float32Array.from({ length: 2 * 3 * 4 * 5 }, (_, i) => i * 0.5 - 7), [2, 3, 4, 5]);
    const want = Array.from(x.dataSync());
    const c = tf.clone(x);
    const d = tf.tidy(() => tf.engine().runKernel('Identity', { x: tf.relu(x) }) as tf.Tensor);
    // one buffer for x and its clone, one for relu(x) and its identity
    expect(tf.engine().backend.numDataIds()).toBe(ids + 2);
    x.dispose();
    expect(Array.from(c.dataSync())).toEqual(want);
    expect(Array.from(d.dataSync())).toEqual(want.map((v) => Math.max(v, 0)));
    const i = tf.cast(c, 'int32');
    const j = tf.clone(i);
    i.dispose();
    expect(Array.from(j.dataSync())).toEqual(want.map((v) => Math.trunc(v) + 0));
    // a cast to the same dtype shares the buffer too; to another dtype it converts
    const before = tf.engine().backend.numDataIds();
    const same = tf.cast(c, 'float32');
    expect(tf.engine().backend.numDataIds()).toBe(before);
    const back = tf.cast(j, 'float32');
    expect(tf.engine().backend.numDataIds()).toBe(before + 1);
    expect(Array.from(same.dataSync())).toEqual(want);
    expect(Array.from(back.dataSync())).toEqual(want.map((v) => Math.trunc(v) + 0));
    tf.dispose([c, d, j, same, back]);
    expect(tf.engine().backend.numDataIds()).toBe(ids);
  });
});

describe('per-channel kernels on wasm (batch-norm statistics and gradients)', () => {
  beforeAll(async () => {
    await useBackend('wasm');
  });

  test('Sum and Mean over every axis but the channels equal double sums (keepDims, negative axes, odd channel counts, long columns)', () => {
    let seed = 1200;
    for (const shape of [
      [2, 5, 3, 16],
      [7, 12],
      [3, 4, 4, 6],
      [600, 20],
      [2, 9, 9, 64],
    ]) {
      const rng = new SeededRandom(seed++);
      const n = shape.reduce((a, b) => a * b, 1);
      const C = shape[shape.length - 1];
      const xv = randn(rng, n);
      for (let i = 0; i < n; i++) xv[i] += 3; // a mean well away from zero, as activations have
      const sums = new Float64Array(C);
      for (let i = 0; i < n; i++) sums[i % C] += xv[i];
      const x = tf.tensor(xv, shape);
      const lead = shape.slice(0, -1).map((_, d) => d);
      for (const axis of [lead, lead.map((d) => d - shape.length).reverse()])
        for (const keepDims of [false, true]) {
          const s = tf.sum(x, axis, keepDims);
          const m = tf.mean(x, axis, keepDims);
          const want = keepDims ? shape.map((v, d) => (d === shape.length - 1 ? v : 1)) : [C];
          expect({ shape, axis, keepDims, s: s.shape, m: m.shape }).toEqual({ shape, axis, keepDims, s: want, m: want });
          expect(relErr(s, sums)).toBeLessThan(1e-6);
          expect(relErr(m, sums.map((v) => v / (n / C)))).toBeLessThan(1e-6);
          tf.dispose([s, m]);
        }
      // Other reductions still go to the stock kernel and stay right.
      const all = tf.sum(x);
      expect(Math.abs(all.dataSync()[0] - sums.reduce((a, b) => a + b, 0))).toBeLessThan(1e-4 * n);
      tf.dispose([x, all]);
    }
  });

  test('batchNorm with per-channel statistics equals its double-precision definition (with and without offset and scale)', () => {
    let seed = 1400;
    for (const [shape, pShape] of [
      [[2, 5, 5, 16], [16]],
      [[3, 4, 4, 6], [1, 1, 1, 6]],
      [[10, 12], [12]],
    ] as [number[], number[]][]) {
      const rng = new SeededRandom(seed++);
      const n = shape.reduce((a, b) => a * b, 1);
      const C = shape[shape.length - 1];
      const xv = Float32Array.from(randn(rng, n), (v) => v * 2 + 1);
      const mv = randn(rng, C);
      const vv = Float32Array.from(randn(rng, C), (v) => v * v + 0.1);
      const ov = randn(rng, C);
      const sv = randn(rng, C);
      const [x, mean, variance, offset, scale] = [tf.tensor(xv, shape), ...[mv, vv, ov, sv].map((a) => tf.tensor(a, pShape))];
      for (const [withOffset, withScale] of [
        [true, true],
        [false, true],
        [true, false],
        [false, false],
      ]) {
        const y = tf.batchNorm(x, mean, variance, withOffset ? offset : undefined, withScale ? scale : undefined, 1e-3);
        const want = Array.from(xv, (v, i) => {
          const c = i % C;
          return ((v - mv[c]) * (withScale ? sv[c] : 1)) / Math.sqrt(vv[c] + 1e-3) + (withOffset ? ov[c] : 0);
        });
        expect({ shape, withOffset, withScale, ok: relErr(y, want) < 1e-6 }).toEqual({ shape, withOffset, withScale, ok: true });
        y.dispose();
      }
      tf.dispose([x, mean, variance, offset, scale]);
    }
  });

  test('Add, Sub, Multiply, RealDiv of a tensor and one value per channel equal scalar float32 arithmetic, both operand orders', () => {
    const f = Math.fround;
    const ops: [string, (a: tf.Tensor, b: tf.Tensor) => tf.Tensor, (a: number, b: number) => number][] = [
      ['add', tf.add, (a, b) => f(a + b)],
      ['sub', tf.sub, (a, b) => f(a - b)],
      ['mul', tf.mul, (a, b) => f(a * b)],
      ['div', tf.div, (a, b) => f(a / b)],
    ];
    let seed = 1300;
    for (const [shape, rowShape] of [
      [[2, 4, 4, 16], [16]],
      [[2, 4, 4, 16], [1, 1, 1, 16]],
      [[5, 6], [1, 6]],
      [[3, 2, 2, 10], [10]],
    ] as [number[], number[]][]) {
      const rng = new SeededRandom(seed++);
      const n = shape.reduce((a, b) => a * b, 1);
      const C = shape[shape.length - 1];
      const xv = randn(rng, n);
      const rv = Float32Array.from(randn(rng, C), (v) => v + Math.sign(v) * 0.5);
      const x = tf.tensor(xv, shape);
      const r = tf.tensor(rv, rowShape);
      for (const [name, op, ref] of ops) {
        const y1 = op(x, r);
        const y2 = op(r, x);
        expect({ name, shape, rowShape, y1: y1.shape, y2: y2.shape }).toEqual({ name, shape, rowShape, y1: shape, y2: shape });
        const w1 = Array.from(xv, (v, i) => ref(v, rv[i % C]));
        const w2 = Array.from(xv, (v, i) => ref(rv[i % C], v));
        expect({ name, rowShape, same: Array.from(y1.dataSync()).every((v, i) => v === w1[i]) }).toEqual({ name, rowShape, same: true });
        expect({ name, rowShape, same: Array.from(y2.dataSync()).every((v, i) => v === w2[i]) }).toEqual({ name, rowShape, same: true });
        tf.dispose([y1, y2]);
      }
      tf.dispose([x, r]);
    }
  });
});

describe('wasm with MEMRISTOR_TFJS_NO_SIMD=1', () => {
  beforeAll(async () => {
    await useBackend('wasm');
  });

  test('the fallbacks (stock and composed kernels) give the same gradients as the SIMD kernels', () => {
    const rng = new SeededRandom(2024);
    const x = tf.tensor4d(randn(rng, 2 * 8 * 8 * 4), [2, 8, 8, 4]);
    const w1 = tf.tensor4d(randn(rng, 3 * 3 * 4 * 8), [3, 3, 4, 8]);
    const dw = tf.tensor4d(randn(rng, 3 * 3 * 8 * 1), [3, 3, 8, 1]);
    const w2 = tf.tensor4d(randn(rng, 1 * 1 * 8 * 4), [1, 1, 8, 4]);
    const gamma = tf.tensor1d(randn(rng, 8));
    const beta = tf.tensor1d(randn(rng, 8));
    const loss = (a: tf.Tensor, b: tf.Tensor, c: tf.Tensor, d: tf.Tensor) => {
      const h = tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, 1, 'same');
      const { mean, variance } = tf.moments(h, [0, 1, 2]);
      const n = tf.relu(tf.batchNorm(h, mean, variance, beta, gamma, 1e-3));
      const p = tf.maxPool(tf.depthwiseConv2d(n as tf.Tensor4D, c as tf.Tensor4D, 1, 'same'), 2, 2, 'valid');
      return tf.sum(tf.square(tf.conv2d(p, d as tf.Tensor4D, 2, 'same')));
    };
    const run = () => tf.grads(loss)([x, w1, dw, w2]);
    const simd = run();
    process.env.MEMRISTOR_TFJS_NO_SIMD = '1';
    let plain: tf.Tensor[] = [];
    try {
      plain = run();
    } finally {
      delete process.env.MEMRISTOR_TFJS_NO_SIMD;
    }
    simd.forEach((g, i) => expect({ i, ok: relErr(g, plain[i]) < 1e-4 }).toEqual({ i, ok: true }));
    tf.dispose([x, w1, dw, w2, gamma, beta, ...simd, ...plain]);
  });
});

test('the SIMD kernels take filters up to 3x3x128x128; larger ones go to the blocked GEMM and the im2col filter gradient', () => {
  const g = (cin: number, cout: number, hw = 4) => convGeometry([32, hw, hw, cin], [3, 3, cin, cout], 1, 1, 'same');
  for (const kind of ['forward', 'input', 'filter'] as const) {
    expect(chooseSimd(kind, g(64, 64, 32))).toBe(true);
    expect(chooseSimd(kind, g(128, 128, 16))).toBe(true);
    expect(chooseSimd(kind, g(128, 256, 8))).toBe(false);
    expect(chooseSimd(kind, g(512, 512, 2))).toBe(false);
  }
  expect(chooseFilterRoute(g(512, 512, 2))).toBe('im2col');
  expect(chooseFilterRoute(g(64, 64, 32))).toBe('conv');
  expect(chooseFilterRoute(g(1, 8, 28))).toBe('im2col');
});
