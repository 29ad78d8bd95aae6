// resnet: He et al.'s CIFAR ResNets (depth 6n+2) in the registry: parameter counts, layer counts,
// depth validation, a forward pass against plain loops, a training signal, save/load, CLI flags.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { tf } from '../src/tf';
import { initBackend } from '../src/backend';
import { buildModel, modelSpec } from '../models/registry';
import { resnetBlocks, RESNET_DEFAULT_DEPTH } from '../models/resnet';
import { DEFAULT_LEARNING_RATE } from '../models/common';
import { QuantConv2D, QuantDense, QuantKernelLayer, quantSummary } from '../layers';
import { saveModel, loadModel } from '../src/model_io';
import { RESNET_DEPTH_DEFAULT, RESNET_LR_DEFAULT, LR_DEFAULT } from '../src/cli';
import { arr, fieldOf, runCli } from './helpers';

beforeAll(async () => {
  await initBackend('wasm');
});

/** Trainable parameters of a CIFAR ResNet with projection shortcuts, counted by hand. */
function expectedParams(depth: number, classes = 10): number {
  const n = (depth - 2) / 6;
  const conv = (k: number, cin: number, cout: number) => k * k * cin * cout;
  const bn = (c: number) => 2 * c; // gamma, beta (the moving statistics are not trainable)
  let p = conv(3, 3, 16) + bn(16);
  let cin = 16;
  for (const f of [16, 32, 64]) {
    for (let b = 0; b < n; b++) {
      p += conv(3, cin, f) + bn(f) + conv(3, f, f) + bn(f);
      if (cin !== f) p += conv(1, cin, f) + bn(f);
      cin = f;
    }
  }
  return p + 64 * classes + classes;
}

const trainable = (m: tf.LayersModel) => m.trainableWeights.reduce((s, w) => s + w.shape.reduce((a: number, b) => a * (b ?? 1), 1), 0);
const weighted = (m: tf.LayersModel) => m.layers.filter((l) => l instanceof QuantKernelLayer || ['Conv2D', 'Dense'].includes(l.getClassName()));

describe('resnet topology', () => {
  test('ResNet-20: 0.27M parameters (He et al. Table 6), 19 convs + FC, 2 projections', () => {
    const m = buildModel('resnet', { seed: 1, float: true });
    // hand count: option A would be 269,722; the two 1x1 projections add 16x32 + 32x64 weights and 2 BN
    expect(expectedParams(20)).toBe(269722 + 512 + 2048 + 64 + 128);
    expect(trainable(m)).toBe(expectedParams(20));
    expect(trainable(m) / 1e6).toBeCloseTo(0.27, 2);
    const w = weighted(m);
    expect(w.filter((l) => !l.name.endsWith('_shortcut'))).toHaveLength(20);
    expect(w.filter((l) => l.name.endsWith('_shortcut')).map((l) => l.name)).toEqual(['stage2_block1_shortcut', 'stage3_block1_shortcut']);
    expect(m.layers.filter((l) => l.getClassName() === 'Add')).toHaveLength(9);
    expect(m.layers.filter((l) => l.getClassName() === 'BatchNormalization')).toHaveLength(21);
    expect(m.outputs[0].shape).toEqual([null, 10]);
    expect(m.name).toBe('resnet20');
    m.dispose();
  });

  test.each([8, 14, 32, 44, 56])('depth %i: 6n+2 weighted layers (projections aside), 3n additions, He et al.\'s count', (depth) => {
    const m = buildModel('resnet', { seed: 1, depth });
    const n = (depth - 2) / 6;
    const w = weighted(m);
    expect(w.filter((l) => !l.name.endsWith('_shortcut'))).toHaveLength(depth);
    expect(w.filter((l) => l instanceof QuantConv2D)).toHaveLength(depth - 1 + 2);
    expect(w.filter((l) => l instanceof QuantDense)).toHaveLength(1);
    expect(m.layers.filter((l) => l.getClassName() === 'Add')).toHaveLength(3 * n);
    expect(trainable(m)).toBe(expectedParams(depth));
    // He et al.: 0.85M (option A); the projections add 0.003M
    if (depth === 56) expect([trainable(m) / 1e6 >= 0.85, trainable(m) / 1e6 < 0.86]).toEqual([true, true]);
    m.dispose();
  });

  test('stage shapes: 32x32x16 -> 16x16x32 -> 8x8x64 -> 64 -> classes', () => {
    const m = buildModel('resnet', { seed: 1, numClasses: 4 });
    const shape = (n: string) => (m.getLayer(n).outputShape as number[]).slice(1);
    expect(shape('conv1_relu')).toEqual([32, 32, 16]);
    expect(shape('stage1_block3_relu2')).toEqual([32, 32, 16]);
    expect(shape('stage2_block1_conv1')).toEqual([16, 16, 32]);
    expect(shape('stage3_block3_relu2')).toEqual([8, 8, 64]);
    expect(shape('pool')).toEqual([64]);
    expect(shape('fc')).toEqual([4]);
    m.dispose();
  });

  test('memristor-aware: every conv and the FC have 15 signed levels; weightLevels and the device reach them', () => {
    const m = buildModel('resnet', { seed: 1 });
    const q = weighted(m) as QuantKernelLayer[];
    expect(q.every((l) => l.kernelQuantizer?.levels === 15 && l.useBias === false === (l instanceof QuantConv2D))).toBe(true);
    const s = quantSummary(m);
    expect(s.floatParams).toBeGreaterThan(0); // BN stays float (digital)
    const m7 = buildModel('resnet', { seed: 1, weightLevels: 7, variation: { programmingSigma: 0.05 } });
    expect((weighted(m7) as QuantKernelLayer[]).every((l) => l.kernelQuantizer?.levels === 7 && l.variation?.programmingSigma === 0.05)).toBe(true);
    [m, m7].forEach((x) => x.dispose());
  });

  test('depth validation: 6n+2 only, a ConfigError naming depth', () => {
    for (const d of [8, 20, 32, 50, 56, 110]) expect(resnetBlocks(d)).toBe((d - 2) / 6);
    for (const d of [0, 2, 7, 18, 21, 22, 51, 20.5, -4]) {
      expect(fieldOf(() => buildModel('resnet', { seed: 1, depth: d }))).toBe('depth');
    }
    expect(() => buildModel('resnet', { seed: 1, depth: 21 })).toThrow(/6n\+2.*got 21/);
    expect(fieldOf(() => buildModel('resnet', { seed: 1, depth: '20' as never }))).toBe('depth');
    expect(fieldOf(() => buildModel('mcnn', { seed: 1, depth: 20 }))).toBe('depth');
    expect(fieldOf(() => buildModel('resnet', { seed: 1, batchNorm: true }))).toBe('batchNorm');
  });

  test('the CLI names the defaults the models use', () => {
    expect(RESNET_DEPTH_DEFAULT).toBe(RESNET_DEFAULT_DEPTH);
    expect(LR_DEFAULT).toBe(DEFAULT_LEARNING_RATE);
    expect(RESNET_LR_DEFAULT).toBe(modelSpec('resnet').defaultLearningRate);
  });
});

// ---- an independent forward pass: plain loops, double accumulators, TF's 'same' padding --------

type Img = { h: number; w: number; c: number; v: Float64Array }; // one image, HWC

function conv2d(x: Img, k: Float32Array, kh: number, cout: number, stride: number): Img {
  const h = Math.ceil(x.h / stride);
  const w = Math.ceil(x.w / stride);
  // TF 'same': total padding max((out-1)*s + k - in, 0), the smaller half before
  const padT = Math.floor(Math.max((h - 1) * stride + kh - x.h, 0) / 2);
  const padL = Math.floor(Math.max((w - 1) * stride + kh - x.w, 0) / 2);
  const v = new Float64Array(h * w * cout);
  for (let i = 0; i < h; i++)
    for (let j = 0; j < w; j++)
      for (let o = 0; o < cout; o++) {
        let s = 0;
        for (let di = 0; di < kh; di++)
          for (let dj = 0; dj < kh; dj++) {
            const yi = i * stride + di - padT;
            const xj = j * stride + dj - padL;
            if (yi < 0 || yi >= x.h || xj < 0 || xj >= x.w) continue;
            for (let ci = 0; ci < x.c; ci++) s += x.v[(yi * x.w + xj) * x.c + ci] * k[((di * kh + dj) * x.c + ci) * cout + o];
          }
        v[(i * w + j) * cout + o] = s;
      }
  return { h, w, c: cout, v };
}

/** Inference BN with the initial statistics (mean 0, variance 1, gamma 1, beta 0). */
const bnInit = (x: Img): Img => ({ ...x, v: x.v.map((a) => a / Math.sqrt(1 + 1e-3)) });
const relu = (x: Img): Img => ({ ...x, v: x.v.map((a) => Math.max(0, a)) });
const add = (a: Img, b: Img): Img => ({ ...a, v: a.v.map((t, i) => t + b.v[i]) });

function referenceResnet(m: tf.LayersModel, x: Img, n: number): number[] {
  const k = (name: string) => {
    const l = m.getLayer(name) as QuantKernelLayer;
    return { v: Float32Array.from(arr(l.latentKernel())), size: l.latentKernel().shape[0] };
  };
  const cv = (x: Img, name: string, cout: number, stride: number) => {
    const { v, size } = k(name);
    return conv2d(x, v, size, cout, stride);
  };
  let a = relu(bnInit(cv(x, 'conv1', 16, 1)));
  let cin = 16;
  [16, 32, 64].forEach((f, s) => {
    for (let b = 0; b < n; b++) {
      const p = `stage${s + 1}_block${b + 1}`;
      const st = s > 0 && b === 0 ? 2 : 1;
      const y = bnInit(cv(relu(bnInit(cv(a, `${p}_conv1`, f, st))), `${p}_conv2`, f, 1));
      const sc = cin !== f ? bnInit(cv(a, `${p}_shortcut`, f, st)) : a;
      a = relu(add(y, sc));
      cin = f;
    }
  });
  const pooled = new Float64Array(64);
  for (let i = 0; i < a.h * a.w; i++) for (let c = 0; c < 64; c++) pooled[c] += a.v[i * 64 + c] / (a.h * a.w);
  const fc = m.getLayer('fc') as QuantDense;
  const W = arr(fc.latentKernel());
  const bias = arr(fc.getWeights()[1]);
  const classes = bias.length;
  return Array.from({ length: classes }, (_, o) => pooled.reduce((s, p, c) => s + p * W[c * classes + o], bias[o]));
}

test('forward pass (float ResNet-8, 9x10 input: odd and even maps) matches plain loops', () => {
  const m = buildModel('resnet', { seed: 4, float: true, depth: 8, inputShape: [9, 10, 3], numClasses: 5 });
  const x = tf.randomUniform([2, 9, 10, 3], -1, 1, 'float32', 9);
  const y = m.predict(x) as tf.Tensor;
  expect(y.shape).toEqual([2, 5]);
  const xs = arr(x);
  const got = arr(y);
  for (let b = 0; b < 2; b++) {
    const img: Img = { h: 9, w: 10, c: 3, v: Float64Array.from(xs.slice(b * 270, (b + 1) * 270)) };
    const want = referenceResnet(m, img, 1);
    want.forEach((v, i) => expect(got[b * 5 + i]).toBeCloseTo(v, 4));
  }
  // the stock build starts from the same weights and gives the same logits
  const s = buildModel('resnet', { seed: 4, stock: true, depth: 8, inputShape: [9, 10, 3], numClasses: 5 });
  arr(s.predict(x) as tf.Tensor).forEach((v, i) => expect(v).toBeCloseTo(got[i], 5));
  [m, s, x, y].forEach((t) => t.dispose());
});

test('a few Adam steps on one batch lower the loss (memristor-aware ResNet-20)', () => {
  const m = buildModel('resnet', { seed: 5, variation: { programmingSigma: 0.02 } });
  const x = tf.randomUniform([8, 32, 32, 3], 0, 1, 'float32', 6);
  const y = tf.oneHot(tf.tensor1d([0, 1, 2, 3, 4, 5, 6, 7], 'int32'), 10);
  const opt = tf.train.adam(1e-3);
  const vars = m.trainableWeights.map((w) => w.read() as tf.Variable);
  const loss = () => tf.losses.softmaxCrossEntropy(y, m.apply(x, { training: true }) as tf.Tensor) as tf.Scalar;
  const evalLoss = () => tf.tidy(() => tf.losses.softmaxCrossEntropy(y, m.apply(x, { training: false }) as tf.Tensor).dataSync()[0]);
  const first = tf.tidy(() => loss().dataSync()[0]);
  let last = first;
  for (let i = 0; i < 15; i++) last = tf.tidy(() => opt.minimize(loss, true, vars)!.dataSync()[0]);
  expect(Number.isFinite(first)).toBe(true);
  expect(last).toBeLessThan(0.5 * first);
  expect(Number.isFinite(evalLoss())).toBe(true);
  [m, x, y].forEach((t) => t.dispose());
  opt.dispose();
});

test('save -> load (model_io, on disk) gives identical outputs and configs', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'resnet-'));
  try {
    const m = buildModel('resnet', { seed: 3, depth: 14 });
    const x = tf.randomUniform([3, 32, 32, 3], 0, 1, 'float32', 4);
    // training passes first so that the BN moving statistics are not the initial ones
    for (let i = 0; i < 2; i++) tf.tidy(() => m.apply(x, { training: true }) as tf.Tensor);
    await saveModel(m, dir, { memristorTfjs: { model: 'resnet', build: { depth: 14 } } });
    const { model: back, metadata } = await loadModel(dir);
    expect(back.name).toBe('resnet14');
    expect(arr(back.predict(x) as tf.Tensor)).toEqual(arr(m.predict(x) as tf.Tensor));
    expect(back.layers.map((l) => l.getConfig())).toEqual(m.layers.map((l) => l.getConfig()));
    expect((metadata.memristorTfjs as { build: unknown }).build).toEqual({ depth: 14 });
    [m, back, x].forEach((t) => t.dispose());
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

describe('CLI: --depth, --batch-norm, --weight-levels', () => {
  test('summary builds the depth asked for, and the flags are checked against the model', async () => {
    const r = await runCli('summary', '--model', 'resnet', '--depth', '32', '--json');
    expect(r.code).toBe(0);
    expect(JSON.parse(r.out).trainableParams).toBe(expectedParams(32));
    const bad = await runCli('summary', '--model', 'resnet', '--depth', '21');
    expect(bad.code).toBe(2);
    expect(bad.err).toMatch(/--depth: .*6n\+2.*got 21/);
    const notHere = await runCli('summary', '--model', 'mcnn', '--depth', '20');
    expect(notHere.code).toBe(2);
    expect(notHere.err).toMatch(/--depth does not apply to mcnn \(it applies to resnet\)/);
    const bn = await runCli('summary', '--model', 'resnet', '--batch-norm');
    expect(bn.err).toMatch(/--batch-norm does not apply to resnet \(it applies to vgg16\)/);
  });

  test('train refuses a bad depth before reading any data, naming the flag', async () => {
    const out = path.join(os.tmpdir(), `resnet-cli-${process.pid}`);
    const r = await runCli('train', '--model', 'resnet', '--depth', '51', '--dataset', 'cifar10:/nonexistent', '--out', out);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/^error: --depth: a CIFAR ResNet has depth 6n\+2/);
    expect(fs.existsSync(out)).toBe(false);
    const lv = await runCli('train', '--model', 'bnn', '--weight-levels', '7', '--out', out);
    expect(lv.err).toMatch(/--weight-levels does not apply to bnn/);
    const fl = await runCli('train', '--model', 'vgg16', '--float', '--weight-levels', '7', '--out', out);
    expect(fl.err).toMatch(/--weight-levels: a float model has no weight levels/);
  });

  test('--help names the defaults', async () => {
    const r = await runCli('train', '--help');
    const out = r.out.replace(/\s+/g, ' ');
    expect(out).toMatch(/--depth <n> resnet: weighted layers, 6n\+2 \(20, 32, 44, 56, 110, \.\.\.; default 20\)/);
    expect(out).toMatch(/--batch-norm vgg16: batch normalization after every conv layer \(default: off/);
    expect(out).toMatch(/--no-batch-norm/);
    expect(out).toMatch(/--weight-levels <n>/);
    expect(out).toMatch(/--lr <f> initial learning rate \(default: the model's, 0\.01; resnet 0\.001\)/);
    const h = await runCli('hybrid', '--help');
    expect(h.out).toMatch(/--depth <n>/);
  });
});
