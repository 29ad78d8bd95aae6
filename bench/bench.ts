// `npm run bench`: training throughput of the papers' networks on the running backend, each
// beside the float version of the same network and the same topology from stock tf.layers, and on
// every core (data-parallel worker threads, as `train --workers` runs them), and the peak memory; then crossbar inference of mcnn on the 10k test images for the ideal, park2024 and
// yao2020 presets beside software inference of the same model, the write-verify programming
// throughput (also of Yao's replicated layout: 128x16 arrays, 4 replicas) and the energy estimate;
// and the time to load the whole of MNIST. Prints tables and writes bench/results.json. The
// CIFAR-sized networks (resnet20, vgg16) train on synthetic 32x32x3 images (the speed does not
// depend on the pixels). `--models resnet20,vgg16` runs only those training rows (no crossbar
// section) and replaces only their rows in results.json.
//   node dist/bench/bench.js [backend] [--crossbar-only] [--models NAME,...]
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { tf } from '../src/tf';
import { initBackend } from '../src/backend';
import { loadDataset } from '../src/data/datasets';
import { buildModel } from '../models/registry';
import { evaluateModel, fit } from '../training/offline';
import { writeJsonAtomic } from '../src/atomic';
import { getPreset } from '../src/device/config';
import { disposeCrossbar, evaluateCrossbar, mapModel, mappingReport, type CrossbarNetwork } from '../src/crossbar';
import { totalReport } from '../src/mapping/program';
import { estimateEnergy } from '../src/energy';
import type { Split } from '../src/data/datasets';
import type { BuildOptions } from '../models/registry';
import { SeededRandom } from '../src/random';

interface Row {
  /** The bench's name of the network (resnet20: resnet with depth 20). */
  model: string;
  /** Image shape trained on, HxWxC. */
  input: string;
  /** Threads the training runs on (data parallel, `train --workers`): 1, or every core. */
  workers: number;
  variant: string;
  samplesPerSec: number | null;
  ratioToFloat: number | null;
  /** Rows with workers > 1: samples/s over the same variant's on one thread, in the same rounds. */
  speedupVsOneWorker?: number | null;
  note?: string;
}

const BATCH = 64;

type Variant = 'memristor' | 'memristor+noise' | 'float' | 'stock';

/** A training row of the bench: a network of the registry, its options and the data it trains on. */
interface Plan {
  /** The name in the table (the registry's, or e.g. resnet20). */
  label: string;
  model: string;
  build?: BuildOptions;
  samples: number;
  variants: Variant[];
  /** Synthetic images of this shape instead of MNIST. */
  synthetic?: [number, number, number];
}

/** count seeded random images of `shape` with labels 0..9: what CIFAR-sized networks train on here. */
function syntheticData(shape: [number, number, number], count: number) {
  const rng = new SeededRandom(7);
  const images = new Uint8Array(count * shape[0] * shape[1] * shape[2]);
  for (let i = 0; i < images.length; i++) images[i] = Math.floor(rng.next() * 256);
  const labels = Uint8Array.from({ length: count }, (_, i) => i % 10);
  const split = { images, labels, count };
  return { train: split, test: split, imageShape: shape, numClasses: 10 } as unknown as ReturnType<typeof loadDataset>;
}

/**
 * Samples/s of the second of two epochs of `samples` images. `workers` > 1 trains data-parallel with
 * BATCH images per thread (a step's batch is BATCH x workers, as `train` defaults it), on
 * `samples` x workers images: the same steps as one thread.
 */
async function throughput(name: string, variant: Variant, samples: number, data: ReturnType<typeof loadDataset>, build: BuildOptions | undefined = undefined, workers = 1): Promise<number> {
  const model = buildModel(name, {
    ...build,
    seed: 1,
    inputShape: data.imageShape,
    numClasses: data.numClasses,
    float: variant === 'float' || variant === 'stock',
    stock: variant === 'stock',
    variation: variant === 'memristor+noise' ? { programmingSigma: 0.05 } : null,
  });
  const count = samples * workers;
  if (count > data.train.count) throw new Error(`${count} training images needed, ${data.train.count} given`);
  const train = { images: data.train.images.subarray(0, count * data.imageShape.reduce((a, b) => a * b)), labels: data.train.labels.subarray(0, count), count };
  // Two epochs: the first warms the kernels up, the second is the measurement.
  const { result } = await fit(model, { train, validation: null, imageShape: data.imageShape, numClasses: data.numClasses }, {
    epochs: 2,
    batchSize: BATCH * workers,
    workers,
    learningRate: 0.001,
    optimizer: 'adam',
    schedule: 'constant',
    seed: 1,
  });
  model.dispose();
  tf.disposeVariables();
  return result.history[1].samplesPerSec;
}

interface CrossbarRow {
  device: string;
  accuracy: number;
  samplesPerSec: number;
  /** Crossbar inference time / software inference time of the same images. */
  timeRatio: number;
  programming: { cells: number; pulses: number; seconds: number; cellsPerSec: number; pulsesPerSec: number };
  energy: { nJPerInference: number; topsPerWatt: number | null; inferencesPerSec: number | null; gops: number | null };
}

const CROSSBAR_DEVICES = ['ideal', 'park2024', 'yao2020'];
const CROSSBAR_TRAIN = 10000;
const CROSSBAR_ROUNDS = 2;
const MAP_REPEATS = 3;
const EVAL_BATCH = 500;

const sig4 = (x: number) => Number(x.toPrecision(4));

function firstSamples(split: Split, n: number, size: number): Split {
  const count = Math.min(n, split.count);
  return { images: split.images.subarray(0, count * size), labels: split.labels.subarray(0, count), count };
}

/** mcnn trained one epoch on 10k images; software vs crossbar inference on the test images; programming throughput. */
async function crossbarBench(data: ReturnType<typeof loadDataset>) {
  const size = data.imageShape.reduce((a, b) => a * b);
  const model = buildModel('mcnn', { seed: 1, inputShape: data.imageShape, numClasses: data.numClasses });
  const t0 = performance.now();
  await fit(model, { train: firstSamples(data.train, CROSSBAR_TRAIN, size), validation: null, imageShape: data.imageShape, numClasses: data.numClasses }, {
    epochs: 1,
    batchSize: 32,
    learningRate: 0.01,
    optimizer: 'adam',
    schedule: 'cosine',
    seed: 1,
  });
  const trainSeconds = (performance.now() - t0) / 1000;
  const test = data.test;
  // Map every device (best of MAP_REPEATS for the programming time: it takes milliseconds), then
  // calibrate its converters on 500 training images and warm it up on 500 test images.
  const nets = new Map<string, CrossbarNetwork>();
  const prog = new Map<string, CrossbarRow['programming']>();
  for (const name of CROSSBAR_DEVICES) {
    let best: CrossbarNetwork | null = null;
    let bestSeconds = Infinity;
    for (let k = 0; k < MAP_REPEATS; k++) {
      const net = mapModel(model, getPreset(name)!, { seed: 1 });
      const seconds = totalReport(mappingReport(net)).seconds;
      if (seconds < bestSeconds) {
        bestSeconds = seconds;
        best = net;
      }
    }
    const t = totalReport(mappingReport(best!));
    prog.set(name, { cells: t.cells, pulses: t.totalPulses, seconds: Number(t.seconds.toFixed(4)), cellsPerSec: Math.round(t.cells / t.seconds), pulsesPerSec: Math.round(t.totalPulses / t.seconds) });
    evaluateCrossbar(best!, firstSamples(test, 500, size), { calibration: data.train, calibrationSamples: 500, batchSize: EVAL_BATCH });
    nets.set(name, best!);
  }
  // Yao et al.'s replicated layout (128x16 arrays, conv layers in 4 replica groups) on yao2020.
  let replicated = { array: '128x16', replicas: 4, cells: 0, pulses: 0, seconds: Infinity };
  for (let k = 0; k < MAP_REPEATS; k++) {
    const net = mapModel(model, getPreset('yao2020')!, { seed: 1, arrayRows: 128, arrayCols: 16, replicas: 4 });
    const t = totalReport(mappingReport(net));
    if (t.seconds < replicated.seconds) replicated = { ...replicated, cells: t.cells, pulses: t.totalPulses, seconds: Number(t.seconds.toFixed(4)) };
  }
  evaluateModel(model, firstSamples(test, 500, size), data.imageShape, data.numClasses, EVAL_BATCH);
  // Interleaved rounds, best of each.
  let software = { accuracy: NaN, seconds: Infinity };
  const cross = new Map<string, { accuracy: number; seconds: number }>();
  for (let r = 0; r < CROSSBAR_ROUNDS; r++) {
    const s = evaluateModel(model, test, data.imageShape, data.numClasses, EVAL_BATCH);
    if (s.seconds < software.seconds) software = { accuracy: s.accuracy, seconds: s.seconds };
    for (const name of CROSSBAR_DEVICES) {
      const c = evaluateCrossbar(nets.get(name)!, test, { batchSize: EVAL_BATCH });
      if (c.seconds < (cross.get(name)?.seconds ?? Infinity)) cross.set(name, { accuracy: c.accuracy, seconds: c.seconds });
    }
  }
  const rows: CrossbarRow[] = CROSSBAR_DEVICES.map((name) => {
    const c = cross.get(name)!;
    const e = estimateEnergy(nets.get(name)!);
    return {
      device: name,
      accuracy: c.accuracy,
      samplesPerSec: Math.round(test.count / c.seconds),
      timeRatio: Number((c.seconds / software.seconds).toFixed(2)),
      programming: prog.get(name)!,
      energy: { nJPerInference: sig4(e.energyPerInferenceNJ), topsPerWatt: e.topsPerWatt && sig4(e.topsPerWatt), inferencesPerSec: e.inferencesPerSec && Math.round(e.inferencesPerSec), gops: e.gops && sig4(e.gops) },
    };
  });
  for (const net of nets.values()) {
    (net.runtime as { dispose?: () => void } | null)?.dispose?.();
    net.runtime = null;
  }
  const first = nets.get(CROSSBAR_DEVICES[0])!;
  disposeCrossbar(first); // disposes the shared model
  return {
    model: 'mcnn',
    trainSamples: CROSSBAR_TRAIN,
    epochs: 1,
    trainSeconds: Number(trainSeconds.toFixed(1)),
    testSamples: test.count,
    batchSize: EVAL_BATCH,
    arrays: '128x128, 1 replica, seed 1',
    software: { accuracy: software.accuracy, samplesPerSec: Math.round(test.count / software.seconds) },
    rows,
    replicated,
    note:
      `best of ${CROSSBAR_ROUNDS} interleaved rounds after a warm-up; crossbar inference with read noise and the device's DAC/ADC (converters calibrated on 500 training images, not timed); ` +
      `timeRatio = crossbar time / software time; programming = mapModel's write-verify of all arrays (best of ${MAP_REPEATS}, includes mapping the weights; ideal: exact setting, no pulses); energy = estimateEnergy from the device tables (one ADC per array)`,
  };
}

function printCrossbar(c: Awaited<ReturnType<typeof crossbarBench>>) {
  console.log(`\nmcnn crossbar inference on ${c.testSamples} test images (trained ${c.epochs} epoch on ${c.trainSamples} images in ${c.trainSeconds} s; arrays ${c.arrays})`);
  console.log('device    accuracy  samples/s  time vs software  prog. cells/s  pulses/s     nJ/inference  TOPS/W');
  console.log(`${'software'.padEnd(9)} ${(100 * c.software.accuracy).toFixed(2).padStart(7)}%  ${String(c.software.samplesPerSec).padStart(9)}  ${'1.00x'.padStart(16)}`);
  for (const r of c.rows) {
    const p = r.programming;
    console.log(
      `${r.device.padEnd(9)} ${(100 * r.accuracy).toFixed(2).padStart(7)}%  ${String(r.samplesPerSec).padStart(9)}  ${(r.timeRatio.toFixed(2) + 'x').padStart(16)}  ` +
        `${Math.round(p.cellsPerSec).toLocaleString('en-US').padStart(13)}  ${(p.pulses ? Math.round(p.pulsesPerSec).toLocaleString('en-US') : 'exact').padStart(11)}  ${String(r.energy.nJPerInference).padStart(12)}  ${r.energy.topsPerWatt === null ? '-' : r.energy.topsPerWatt.toPrecision(3)}`,
    );
  }
  const rp = c.replicated;
  console.log(`yao2020 programming, ${rp.array} arrays x ${rp.replicas} replicas: ${rp.cells.toLocaleString('en-US')} cells, ${rp.pulses.toLocaleString('en-US')} pulses in ${rp.seconds} s`);
}

async function main() {
  const args = process.argv.slice(2);
  const crossbarOnly = args.includes('--crossbar-only');
  const mi = args.indexOf('--models');
  const only = mi >= 0 ? (args[mi + 1] ?? '').split(',').filter(Boolean) : null;
  const backend = await initBackend(args.find((a, i) => !a.startsWith('--') && (mi < 0 || i !== mi + 1)));
  const tl = performance.now();
  const data = loadDataset('mnist', { trainSamples: 60000, testSamples: 10000 });
  const mnistLoadSeconds = Number(((performance.now() - tl) / 1000).toFixed(3));
  process.stderr.write(`bench on ${backend.name} (${backend.reason}); MNIST (70,000 images) loaded in ${mnistLoadSeconds} s\n`);
  const allPlans: Plan[] = [
    { label: 'mcnn', model: 'mcnn', samples: 64 * 60, variants: ['float', 'memristor', 'memristor+noise', 'stock'] },
    { label: 'park', model: 'park', samples: 64 * 40, variants: ['float', 'memristor', 'memristor+noise', 'stock'] },
    { label: 'bnn', model: 'bnn', samples: 64 * 20, variants: ['float', 'memristor', 'stock'] },
    // a few steps each: an epoch of 3 (2) batches after a warm-up epoch
    { label: 'resnet20', model: 'resnet', build: { seed: 1, depth: 20 }, samples: 64 * 3, variants: ['float', 'memristor', 'stock'], synthetic: [32, 32, 3] },
    { label: 'vgg16', model: 'vgg16', samples: 64 * 2, variants: ['float', 'memristor', 'stock'], synthetic: [32, 32, 3] },
  ];
  if (only) {
    const unknown = only.filter((n) => !allPlans.some((p) => p.label === n));
    if (unknown.length) throw new Error(`--models: unknown ${unknown.join(', ')} (choose ${allPlans.map((p) => p.label).join(', ')})`);
  }
  const plan = only ? allPlans.filter((p) => only.includes(p.label)) : allPlans;
  const rows: Row[] = [];
  const ROUNDS = 3;
  // Every core: the memristor variant (what `train` trains by default) on all of them, beside its
  // one-thread row of the same rounds.
  const cores = os.availableParallelism();
  for (const p of crossbarOnly ? [] : plan) {
    // Interleaved rounds, best of each: the machine is shared, and a slow moment should not
    // land on one variant only.
    const runs: { variant: Variant; workers: number }[] = p.variants.map((v) => ({ variant: v, workers: 1 }));
    if (cores > 1) runs.push({ variant: 'memristor', workers: cores });
    const key = (r: { variant: Variant; workers: number }) => `${r.variant}@${r.workers}`;
    const best = new Map<string, number>();
    const notes = new Map<string, string>();
    const synthetic = p.synthetic ? syntheticData(p.synthetic, p.samples * cores) : null;
    for (let r = 0; r < ROUNDS; r++) {
      for (const run of runs) {
        if (notes.has(key(run))) continue;
        try {
          const sps = await throughput(p.model, run.variant, p.samples, synthetic ?? data, p.build, run.workers);
          best.set(key(run), Math.max(best.get(key(run)) ?? 0, sps));
        } catch (e) {
          notes.set(key(run), (e as Error).message.split('\n')[0]);
        }
      }
    }
    const floatSps = best.get('float@1') ?? null;
    for (const run of runs) {
      const sps = best.get(key(run)) ?? null;
      const note = notes.get(key(run));
      const input = (p.synthetic ?? data.imageShape).join('x');
      const one = best.get(`${run.variant}@1`) ?? null;
      rows.push({
        model: p.label,
        input,
        workers: run.workers,
        variant: run.variant,
        samplesPerSec: sps && Math.round(sps),
        ratioToFloat: sps && floatSps ? Number((floatSps / sps).toFixed(3)) : null,
        ...(run.workers > 1 ? { speedupVsOneWorker: sps && one ? Number((sps / one).toFixed(3)) : null } : {}),
        note,
      });
      process.stderr.write(`${p.label.padEnd(8)} ${run.variant.padEnd(16)} ${String(run.workers).padStart(2)} thread(s) ${sps ? Math.round(sps) : '-'} samples/s${note ? ` (${note})` : ''}\n`);
    }
  }
  const tc = performance.now();
  const crossbar = only ? null : await crossbarBench(data);
  process.stderr.write(`crossbar section took ${((performance.now() - tc) / 1000).toFixed(1)} s\n`);
  const results = {
    date: new Date().toISOString(),
    backend: backend.name,
    batchSize: BATCH,
    node: process.version,
    training: rows,
    crossbar,
    mnistLoadSeconds,
    peakRssMB: Math.round(process.resourceUsage().maxRSS / 1024),
    rounds: ROUNDS,
    note: `best of interleaved rounds; workers = threads of data-parallel training (${cores}: every core; ${BATCH} images per thread, so a step's batch is ${BATCH} x workers); speedupVsOneWorker = samples/s over the same variant's on one thread; ratioToFloat = float samples/s / this variant samples/s (the cost of the variant, 1.0 = same speed); stock = the same topology from stock tf.layers (float)`,
  };
  console.log('\nmodel    input     workers  variant          samples/s  cost vs float  vs 1 worker');
  for (const r of rows) {
    console.log(
      `${r.model.padEnd(8)} ${r.input.padEnd(9)} ${String(r.workers).padStart(7)}  ${r.variant.padEnd(16)} ${String(r.samplesPerSec ?? '-').padStart(9)}  ${(r.ratioToFloat != null ? r.ratioToFloat.toFixed(2) + 'x' : '-').padStart(13)}  ${r.speedupVsOneWorker != null ? (r.speedupVsOneWorker.toFixed(2) + 'x').padStart(11) : ''}${r.note ? '  ' + r.note : ''}`,
    );
  }
  if (crossbar) printCrossbar(crossbar);
  console.log(`peak RSS ${results.peakRssMB} MB`);
  const file = path.join(__dirname, '..', '..', 'bench', 'results.json');
  if (only && fs.existsSync(file)) {
    // Keep everything of the last full run but the rows of these networks.
    const old = JSON.parse(fs.readFileSync(file, 'utf8')) as { training?: Row[] } & Record<string, unknown>;
    const kept = (old.training ?? []).filter((r) => !only.includes(r.model));
    writeJsonAtomic(file, { ...old, training: [...kept, ...rows], trainingDate: results.date });
  } else if (only) writeJsonAtomic(file, { ...results, crossbar: undefined });
  else if (crossbarOnly && fs.existsSync(file)) {
    // Keep the training rows of the last full run; replace only the crossbar section.
    const old = JSON.parse(fs.readFileSync(file, 'utf8')) as Record<string, unknown>;
    writeJsonAtomic(file, { ...old, crossbar, mnistLoadSeconds, crossbarDate: results.date });
  } else writeJsonAtomic(file, results);
  console.log(`wrote ${file}`);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
