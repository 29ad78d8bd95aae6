// The small sweep case shared by the sweep tests: a learnable task (a class is a bright 4x4
// quadrant of an 8x8 image, with seeded pixel noise; 4 classes) in IDX form, and a small stock
// CNN trained on it in software (100% on the test images), saved to a temp folder. Programmed
// onto yao2020 arrays with many stuck cells it loses accuracy, which in-situ training of its last
// layer wins back.
import * as fs from 'fs';
import * as path from 'path';
import { tf } from '../src/tf';
import { initBackend } from '../src/backend';
import { SeededRandom } from '../src/random';
import { saveModel } from '../src/model_io';
import { writeIdx } from '../src/data';
import type { SweepOptions } from '../src/sweep';
import { tempRoot } from './helpers';

export const root = tempRoot('sweep');
export const modelDir = path.join(root, 'model');
export const dataDir = path.join(root, 'data');
export const dataset = `idx:${dataDir}`;
export const H = 8;
export const TEST = 120;
export const TRAIN = 400;

/** count images of the quadrant task: pixels and labels. */
function quadrantImages(count: number, r: SeededRandom): { images: Uint8Array; labels: Uint8Array } {
  const images = new Uint8Array(count * H * H);
  const labels = new Uint8Array(count);
  for (let s = 0; s < count; s++) {
    const c = r.int(4);
    labels[s] = c;
    const oy = c < 2 ? 0 : 4;
    const ox = c % 2 === 0 ? 0 : 4;
    for (let y = 0; y < H; y++) {
      for (let x = 0; x < H; x++) {
        const inBlock = y >= oy && y < oy + 4 && x >= ox && x < ox + 4;
        const v = (inBlock ? 0.6 : 0.2) + 0.3 * (r.next() - 0.5);
        images[s * H * H + y * H + x] = Math.round(255 * v);
      }
    }
  }
  return { images, labels };
}

/** Software accuracy of the trained fixture model on the test images (set by the fixture). */
export let softwareAccuracy = NaN;

export function setUpSweepFixture(): void {
  beforeAll(async () => {
    await initBackend('wasm');
    const r = new SeededRandom(5);
    const tr = quadrantImages(TRAIN, r);
    const te = quadrantImages(TEST, r);
    writeIdx(path.join(dataDir, 'train-images-idx3-ubyte'), [TRAIN, H, H], 'uint8', tr.images);
    writeIdx(path.join(dataDir, 'train-labels-idx1-ubyte'), [TRAIN], 'uint8', tr.labels);
    writeIdx(path.join(dataDir, 't10k-images-idx3-ubyte'), [TEST, H, H], 'uint8', te.images);
    writeIdx(path.join(dataDir, 't10k-labels-idx1-ubyte'), [TEST], 'uint8', te.labels);
    // a small stock CNN with seeded weights (10 outputs, of which the task uses 4), trained in software
    const init = (s: number) => tf.initializers.glorotUniform({ seed: s });
    const m = tf.sequential();
    m.add(tf.layers.conv2d({ inputShape: [H, H, 1], filters: 4, kernelSize: 3, activation: 'relu', kernelInitializer: init(1), biasInitializer: tf.initializers.constant({ value: 0.05 }), name: 'c1' }));
    m.add(tf.layers.maxPooling2d({ poolSize: 2, name: 'p1' }));
    m.add(tf.layers.flatten({ name: 'f' }));
    m.add(tf.layers.dense({ units: 10, kernelInitializer: init(2), name: 'd' }));
    const pixels = (a: Uint8Array, n: number) => tf.tensor4d(Float32Array.from(a, (v) => v / 255), [n, H, H, 1]);
    const x = pixels(tr.images, TRAIN);
    const y = tf.oneHot(tf.tensor1d(tr.labels, 'int32'), 10);
    const opt = tf.train.adam(0.02);
    for (let i = 0; i < 40; i++) opt.minimize(() => tf.losses.softmaxCrossEntropy(y, m.apply(x) as tf.Tensor) as tf.Scalar);
    const pred = tf.tidy(() => (m.predict(pixels(te.images, TEST)) as tf.Tensor).argMax(-1).dataSync());
    let correct = 0;
    for (let i = 0; i < TEST; i++) if (pred[i] === te.labels[i]) correct++;
    softwareAccuracy = correct / TEST;
    await saveModel(m, modelDir);
    tf.dispose([x, y]);
    opt.dispose();
    m.dispose();
  });
}

export const base: Omit<SweepOptions, 'workers'> = {
  model: modelDir,
  device: 'yao2020',
  dataset,
  vary: ['tolerance=0.02,0.2', 'stuck=0.05,0.2'],
  trials: 3,
  seed: 11,
  arrayRows: 32,
  arrayCols: 32,
  calibrationSamples: 20,
};
