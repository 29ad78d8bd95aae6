import * as fs from 'fs';
import * as path from 'path';
import { tf } from '../src/tf';
import { initBackend } from '../src/backend';
import { DeviceConfig, getPreset } from '../src/device/config';
import { SeededRandom } from '../src/random';
import type { Split } from '../src/data/datasets';
import { CrossbarNetwork, deviceInstancesOf, disposeCrossbar, evaluateCrossbar, loadCrossbar, mapModel, saveCrossbar } from '../src/crossbar';
import { pulsesForChange, sampleDeviceInstances, stuckValue, STUCK_NONE } from '../src/programming';
import { insituTrain, insituLayer } from '../training/insitu';
import { insituRecord, readInsituRecord, saveInsituDir } from '../training/insitu_files';
import { writeDirAtomic } from '../src/atomic';
import { tempRoot } from './helpers';

const root = tempRoot('insitu');
beforeAll(async () => {
  await initBackend('wasm');
});

// A 4-class task on 6x6 images: a class is a bright 3x3 quadrant block, plus seeded pixel noise.
const SHAPE: [number, number, number] = [6, 6, 1];
function makeSplit(count: number, seed: number): Split {
  const r = new SeededRandom(seed);
  const images = new Uint8Array(count * 36);
  const labels = new Uint8Array(count);
  for (let s = 0; s < count; s++) {
    const c = r.int(4);
    labels[s] = c;
    const oy = c < 2 ? 0 : 3;
    const ox = c % 2 === 0 ? 0 : 3;
    for (let y = 0; y < 6; y++) {
      for (let x = 0; x < 6; x++) {
        const inBlock = y >= oy && y < oy + 3 && x >= ox && x < ox + 3;
        const v = (inBlock ? 0.55 : 0.25) + 0.35 * (r.next() - 0.5);
        images[s * 36 + y * 6 + x] = Math.max(0, Math.min(255, Math.round(255 * v)));
      }
    }
  }
  return { images, labels, count };
}

const train = makeSplit(1200, 1);
const testSplit = makeSplit(600, 2);

function toTensors(split: Split): { x: tf.Tensor; y: tf.Tensor } {
  return {
    x: tf.tensor(Float32Array.from(split.images, (v) => v / 255), [split.count, ...SHAPE]),
    y: tf.oneHot(tf.tensor1d(split.labels, 'int32'), 4),
  };
}

/** A trained dense network: flatten -> 12 relu -> 4 logits. */
async function trainedModel(): Promise<tf.Sequential> {
  const m = tf.sequential();
  m.add(tf.layers.flatten({ name: 'flat', inputShape: SHAPE }));
  m.add(tf.layers.dense({ name: 'hidden', units: 12, activation: 'relu', kernelInitializer: tf.initializers.glorotUniform({ seed: 3 }) }));
  m.add(tf.layers.dense({ name: 'out', units: 4, kernelInitializer: tf.initializers.glorotUniform({ seed: 4 }) }));
  m.compile({ optimizer: tf.train.adam(0.02), loss: 'categoricalCrossentropy' });
  const { x, y } = toTensors(train);
  const opt = tf.train.adam(0.02);
  for (let i = 0; i < 150; i++) {
    opt.minimize(() => tf.losses.softmaxCrossEntropy(y, m.apply(x) as tf.Tensor) as tf.Scalar);
  }
  x.dispose();
  y.dispose();
  return m;
}

/** yao2020 with a sloppy write-verify (20% of the window) and more stuck cells: a visible transfer loss. */
function sloppyDevice(): DeviceConfig {
  const c = getPreset('yao2020')!;
  c.writeVerify = { ...c.writeVerify, tolerance: 0.25, maxPulses: 4 };
  c.faults = { stuckAtGMin: 0.03, stuckAtGMax: 0.03 };
  return c;
}

function softwareAccuracy(m: tf.LayersModel, split: Split): number {
  return tf.tidy(() => {
    const { x } = toTensors(split);
    const pred = (m.predict(x) as tf.Tensor).argMax(-1).dataSync();
    let ok = 0;
    for (let i = 0; i < split.count; i++) if (pred[i] === split.labels[i]) ok++;
    return ok / split.count;
  });
}

const evalOpts = { calibration: train, imageShape: SHAPE, numClasses: 4, seed: 5 };

describe('pulse updates for in-situ training', () => {
  test('stochastic rounding gives the exact pulse count in expectation; nearest rounding drops small changes', () => {
    const dev = getPreset('yao2020')!;
    dev.pulse = { ...dev.pulse, c2cSigma: 0 };
    const n = 20000;
    const inst = sampleDeviceInstances({ ...dev, variation: { rOnSigma: 0, rOffSigma: 0, stepSigma: 0 }, faults: { stuckAtGMin: 0, stuckAtGMax: 0 } }, n, new SeededRandom(1));
    const g = new Float32Array(n).fill(8);
    // constant-step would give n = d / dg; soft bounds from G = 8 in [2, 20]: one SET step is dgSet (1 - x) = 0.8 * 2/3 uS
    const step = 0.8 * (1 - (8 - 2) / 18);
    const d = new Float32Array(n).fill(0.3 * step);
    const nearest = pulsesForChange(g, d, dev, inst);
    expect(nearest.every((p) => p === 0)).toBe(true);
    const sto = pulsesForChange(g, d, dev, inst, { stochastic: new SeededRandom(2) });
    const mean = sto.reduce((a, b) => a + b, 0) / n;
    // the exact (soft-bounds) count of a 0.3-step change, from the model's inverse
    const a = 0.8 / 18;
    const exact = Math.log((12 - 0.3 * step) / 12) / Math.log(1 - a);
    expect(exact).toBeGreaterThan(0.29);
    expect(mean).toBeCloseTo(exact, 1);
    expect(Math.abs(mean - exact)).toBeLessThan(4 * Math.sqrt((exact * (1 - exact)) / n));
    expect(sto.every((p) => p === 0 || p === 1)).toBe(true);
  });

  test('the device instances regenerated from the mapping seed are those programmed: stuck cells sit at their bound', async () => {
    const m = await trainedModel();
    const net = mapModel(m, sloppyDevice(), { arrayRows: 16, arrayCols: 8, seed: 7 });
    const { mapped } = insituLayer(net);
    const { instances, arrays } = deviceInstancesOf(net, mapped, 0);
    let stuck = 0;
    for (const { array, offset } of arrays) {
      for (let i = 0; i < array.programmed.length; i++) {
        if (instances.stuck[offset + i] !== STUCK_NONE) {
          stuck++;
          expect(array.programmed[i]).toBeCloseTo(stuckValue(instances, offset + i), 4);
        }
      }
    }
    expect(stuck).toBeGreaterThan(0);
    disposeCrossbar(net);
  });
});

describe('in-situ training of the last layer', () => {
  let sw = 0;
  const run = async (rule: 'plain' | 'manhattan', seed: number) => {
    const m = await trainedModel();
    sw = softwareAccuracy(m, testSplit);
    const net = mapModel(m, sloppyDevice(), { arrayRows: 16, arrayCols: 8, seed: 7 });
    const before = evaluateCrossbar(net, testSplit, evalOpts).accuracy;
    const first = net.layers.map((l) => l.arrays.map((a) => a.programmed.slice()));
    const r = insituTrain(net, train, { samples: 1000, epochs: 3, batchSize: 50, lr: rule === 'plain' ? 0.3 : 0.5, rule, seed, evalSplit: testSplit, imageShape: SHAPE, numClasses: 4 });
    const after = evaluateCrossbar(net, testSplit, evalOpts).accuracy;
    return { net, before, after, r, first };
  };

  test('plain rule: recovers most of the transfer loss, only the last layer changes, pulses counted per cell, seeded', async () => {
    const a = await run('plain', 11);
    expect(sw).toBeGreaterThan(0.95);
    expect(sw - a.before).toBeGreaterThan(0.05);
    expect(a.after - a.before).toBeGreaterThan(0.5 * (sw - a.before));
    // the first layer's conductances are untouched; the last layer's moved
    expect(a.net.layers[0].arrays.map((x) => Array.from(x.programmed))).toEqual(a.first[0].map((x) => Array.from(x)));
    const last = a.net.layers[1];
    expect(last.arrays.some((x, i) => x.programmed.some((v, j) => v !== a.first[1][i][j]))).toBe(true);
    // pulses: the per-cell counts add up; stuck cells got none
    let sum = 0;
    for (const c of a.r.pulsesPerCell.values()) sum += c.reduce((p, q) => p + q, 0);
    expect(sum).toBe(a.r.totalPulses);
    expect(a.r.totalPulses).toBe(a.r.setPulses + a.r.resetPulses);
    const { instances, arrays } = deviceInstancesOf(a.net, last, 0);
    for (const { array, offset } of arrays) {
      const c = a.r.pulsesPerCell.get(array.id)!;
      for (let i = 0; i < c.length; i++) if (instances.stuck[offset + i] !== STUCK_NONE) expect(c[i]).toBe(0);
    }
    expect(a.r.curve.length).toBe(a.r.updates + 1);
    expect(a.r.curve[a.r.curve.length - 1].testAccuracy).toBeGreaterThan(a.before);
    // same seed, same numbers
    const b = await run('plain', 11);
    expect(b.after).toBe(a.after);
    expect(Array.from(b.net.layers[1].arrays[0].programmed)).toEqual(Array.from(last.arrays[0].programmed));
    disposeCrossbar(a.net);
    disposeCrossbar(b.net);
  });

  test('manhattan rule: one pulse per cell and update at most, and it improves too', async () => {
    const a = await run('manhattan', 3);
    const maxPerCell = Math.max(...[...a.r.pulsesPerCell.values()].map((c) => Math.max(...c)));
    expect(maxPerCell).toBeLessThanOrEqual(a.r.updates);
    expect(a.after - a.before).toBeGreaterThan(0.25 * (sw - a.before));
    disposeCrossbar(a.net);
  });

  test('a network that does not end in a dense layer is refused', async () => {
    const m = tf.sequential();
    m.add(tf.layers.conv2d({ inputShape: SHAPE, filters: 2, kernelSize: 3 }));
    const net = mapModel(m, getPreset('ideal')!);
    expect(() => insituTrain(net, train)).toThrow(/last fully connected layer/);
    disposeCrossbar(net);
  });
});

describe('in-situ files', () => {
  test('the tuned directory round-trips; an interrupted write leaves the input untouched and no partial output', async () => {
    const m = await trainedModel();
    const net = mapModel(m, sloppyDevice(), { arrayRows: 16, arrayCols: 8, seed: 7 });
    const xdir = path.join(root, 'x');
    await saveCrossbar(net, xdir);
    const snapshot = () => Object.fromEntries(fs.readdirSync(xdir, { recursive: true }).map(String).sort().filter((f) => fs.statSync(path.join(xdir, f)).isFile()).map((f) => [f, fs.readFileSync(path.join(xdir, f), 'utf8')]));
    const before = snapshot();
    const loaded = await loadCrossbar(xdir);
    const r = insituTrain(loaded, train, { samples: 300, batchSize: 50, seed: 1, imageShape: SHAPE, numClasses: 4 });
    const rec = insituRecord(loaded, r, { source: xdir, before: 0.5, after: 0.6, testSamples: 600 });
    // an interruption while the result is written: nothing at the output, the input as it was
    const out = path.join(root, 'x2');
    await expect(
      writeDirAtomic(out, async (tmp) => {
        await saveCrossbar(loaded, tmp);
        throw new Error('interrupted');
      }),
    ).rejects.toThrow('interrupted');
    expect(fs.existsSync(out)).toBe(false);
    expect(fs.readdirSync(root).filter((f) => f.startsWith('.x2'))).toEqual([]);
    expect(snapshot()).toEqual(before);
    // the real write, into the input directory itself: replaced as a whole
    await saveInsituDir(loaded, rec, xdir);
    const back = await loadCrossbar(xdir);
    const { mapped } = insituLayer(back);
    const tuned = insituLayer(loaded).mapped;
    mapped.arrays.forEach((a, i) => {
      const want = tuned.arrays[i].programmed;
      for (let j = 0; j < want.length; j++) expect(a.programmed[j]).toBeCloseTo(want[j], 3);
    });
    const rr = readInsituRecord(xdir);
    expect(rr.totalPulses).toBe(r.totalPulses);
    expect(rr.curve.length).toBe(r.curve.length);
    expect(fs.readFileSync(path.join(xdir, 'learning_curve.csv'), 'utf8').split('\n')[0]).toBe('samples,train_accuracy,loss,pulses,test_accuracy');
    fs.writeFileSync(path.join(xdir, 'insitu.json'), '{"format":"memristor-tfjs-insitu","version":9}');
    expect(() => readInsituRecord(xdir)).toThrow(/insitu\.json: version 9 is not supported/);
    [net, loaded, back].forEach((n: CrossbarNetwork) => disposeCrossbar(n));
  });
});
