// The options of single models from the command line: `train --model resnet --depth N`,
// `--batch-norm` / `--no-batch-norm` and `--weight-levels N` (vgg16), as real runs on tiny
// CIFAR-format data, and what they leave in model.json and metrics.json.
import * as fs from 'fs';
import * as path from 'path';
import { QuantKernelLayer } from '../layers';
import { loadModel } from '../src/model_io';
import { tf } from '../src/tf';
import { initBackend } from '../src/backend';
import { runCli, tempRoot } from './helpers';

const root = tempRoot('model-flags');
const cifar = path.join(root, 'cifar');

beforeAll(async () => {
  await initBackend('wasm');
  // 12 images per training file, 8 test images, in the CIFAR-10 binary format (label, R, G, B planes)
  fs.mkdirSync(cifar);
  let s = 3;
  const byte = () => (s = (Math.imul(s, 1103515245) + 12345) >>> 0) >>> 24;
  const files: [string, number][] = [1, 2, 3, 4, 5].map((i) => [`data_batch_${i}.bin`, 12] as [string, number]);
  for (const [f, n] of [...files, ['test_batch.bin', 8] as [string, number]]) {
    const b = Buffer.alloc(n * 3073);
    for (let i = 0; i < n; i++) {
      b[i * 3073] = i % 10;
      for (let j = 1; j < 3073; j++) b[i * 3073 + j] = byte();
    }
    fs.writeFileSync(path.join(cifar, f), b);
  }
});

const train = (out: string, ...args: string[]) =>
  runCli('train', '--dataset', `cifar10:${cifar}`, '--train-samples', '16', '--test-samples', '8', '--batch-size', '8', '--epochs', '1', '--no-progress', '--json', '--out', path.join(root, out), ...args);

test('train --model resnet --depth 8: a ResNet-8 trained and saved, its depth in model.json; lr defaults to resnet\'s', async () => {
  const r = await train('r8', '--model', 'resnet', '--depth', '8');
  expect(r.err).not.toMatch(/error/);
  expect(r.code).toBe(0);
  const metrics = JSON.parse(fs.readFileSync(path.join(root, 'r8', 'metrics.json'), 'utf8'));
  expect(metrics.learningRate).toBe(0.001);
  expect(metrics.weightLevels).toBe(15);
  const { model, metadata } = await loadModel(path.join(root, 'r8'));
  expect(model.name).toBe('resnet8');
  expect(model.layers.filter((l) => l.getClassName() === 'Add')).toHaveLength(3);
  expect((metadata.memristorTfjs as { build: { depth: number } }).build.depth).toBe(8);
  model.dispose();
  tf.disposeVariables();
  // the depth is part of what a checkpoint was written for
  const resumed = await train('r8', '--model', 'resnet', '--depth', '14', '--epochs', '2', '--resume');
  expect(resumed.code).toBe(2);
  expect(resumed.err).toMatch(/written for depth 8 \(--depth\), this command asks for 14/);
});

test('train --model vgg16 --batch-norm --weight-levels 7 reaches the model; --no-batch-norm is the classic one', async () => {
  const r = await train('vbn', '--model', 'vgg16', '--batch-norm', '--weight-levels', '7', '--lr', '0.001');
  expect(r.code).toBe(0);
  const metrics = JSON.parse(fs.readFileSync(path.join(root, 'vbn', 'metrics.json'), 'utf8'));
  expect(metrics.weightLevels).toBe(7);
  const { model } = await loadModel(path.join(root, 'vbn'));
  expect(model.layers.filter((l) => l.getClassName() === 'BatchNormalization')).toHaveLength(13);
  expect(model.layers.filter((l) => l instanceof QuantKernelLayer).every((l) => (l as QuantKernelLayer).kernelQuantizer?.levels === 7)).toBe(true);
  model.dispose();
  const s = await runCli('summary', '--model', 'vgg16', '--no-batch-norm', '--json');
  expect(s.code).toBe(0);
  expect(JSON.parse(s.out).layers.some((l: { className?: string; type?: string }) => /BatchNormalization/.test(JSON.stringify(l)))).toBe(false);
  const s2 = await runCli('summary', '--model', 'vgg16', '--batch-norm', '--json');
  expect(JSON.parse(s2.out).layers.filter((l: unknown) => /BatchNormalization/.test(JSON.stringify(l)))).toHaveLength(13);
  tf.disposeVariables();
}, 120000);

test('bad values are usage errors naming the flag, before any data is read', async () => {
  const d = await runCli('train', '--model', 'resnet', '--depth', 'x', '--out', path.join(root, 'bad'));
  expect(d.code).toBe(2);
  expect(d.err).toMatch(/--depth/);
  const w = await runCli('train', '--model', 'vgg16', '--weight-levels', '1', '--out', path.join(root, 'bad'));
  expect(w.code).toBe(2);
  expect(w.err).toMatch(/--weight-levels/);
  const h = await runCli('hybrid', '--model', 'resnet', '--depth', '21', '--device', 'ideal', '--out', path.join(root, 'bad'));
  expect(h.code).toBe(2);
  expect(h.err).toMatch(/--depth: a CIFAR ResNet has depth 6n\+2/);
  const hb = await runCli('hybrid', '--model', 'mcnn', '--batch-norm', '--device', 'ideal', '--out', path.join(root, 'bad'));
  expect(hb.err).toMatch(/--batch-norm does not apply to mcnn/);
  expect(fs.existsSync(path.join(root, 'bad'))).toBe(false);
});
