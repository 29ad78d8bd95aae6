// The tiny sweep case shared by the sweep tests: a stock CNN with seeded weights saved to a temp
// folder and a small synthetic IDX dataset (random pixels and labels).
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { tf } from '../src/tf';
import { initBackend } from '../src/backend';
import { SeededRandom } from '../src/random';
import { saveModel } from '../src/model_io';
import { writeIdx } from '../src/data';
import type { SweepOptions } from '../src/sweep';

export const root = fs.mkdtempSync(path.join(os.tmpdir(), 'mtfjs-sweep-'));
export const modelDir = path.join(root, 'model');
export const dataDir = path.join(root, 'data');
export const dataset = `idx:${dataDir}`;
export const H = 8;
export const TEST = 120;
export const TRAIN = 40;

export function setUpSweepFixture(): void {
  beforeAll(async () => {
    await initBackend('wasm');
    // a tiny stock CNN with seeded weights and biases
    const init = (s: number) => tf.initializers.glorotUniform({ seed: s });
    const m = tf.sequential();
    m.add(tf.layers.conv2d({ inputShape: [H, H, 1], filters: 4, kernelSize: 3, activation: 'relu', kernelInitializer: init(1), biasInitializer: tf.initializers.constant({ value: 0.05 }), name: 'c1' }));
    m.add(tf.layers.maxPooling2d({ poolSize: 2, name: 'p1' }));
    m.add(tf.layers.flatten({ name: 'f' }));
    m.add(tf.layers.dense({ units: 10, kernelInitializer: init(2), name: 'd' }));
    await saveModel(m, modelDir);
    m.dispose();
    // a small synthetic dataset in IDX form: random pixels, random labels
    const r = new SeededRandom(5);
    const make = (n: number) => {
      const img = new Uint8Array(n * H * H).map(() => r.int(256));
      const lab = new Uint8Array(n).map(() => r.int(10));
      return { img, lab };
    };
    const tr = make(TRAIN);
    const te = make(TEST);
    writeIdx(path.join(dataDir, 'train-images-idx3-ubyte'), [TRAIN, H, H], 'uint8', tr.img);
    writeIdx(path.join(dataDir, 'train-labels-idx1-ubyte'), [TRAIN], 'uint8', tr.lab);
    writeIdx(path.join(dataDir, 't10k-images-idx3-ubyte'), [TEST, H, H], 'uint8', te.img);
    writeIdx(path.join(dataDir, 't10k-labels-idx1-ubyte'), [TEST], 'uint8', te.lab);
  });
  afterAll(() => fs.rmSync(root, { recursive: true, force: true }));
}


export const base: Omit<SweepOptions, 'workers'> = {
  model: modelDir,
  device: 'yao2020',
  dataset,
  vary: ['tolerance=0.02,0.2', 'd2d=0.05,0.2'],
  trials: 3,
  seed: 11,
  arrayRows: 32,
  arrayCols: 32,
  calibrationSamples: 20,
};
