// `npm run bench`: training throughput of the papers' networks on the running backend, each
// beside the float version of the same network and the same topology from stock tf.layers, and the
// peak memory. Prints a table and writes bench/results.json.
import * as path from 'path';
import { tf } from '../src/tf';
import { initBackend } from '../src/backend';
import { loadDataset } from '../src/data/datasets';
import { buildModel } from '../models/registry';
import { fit } from '../training/offline';
import { writeJsonAtomic } from '../src/atomic';

interface Row {
  model: string;
  variant: string;
  samplesPerSec: number | null;
  ratioToFloat: number | null;
  note?: string;
}

const BATCH = 64;

async function throughput(name: string, variant: 'memristor' | 'memristor+noise' | 'float' | 'stock', samples: number, data: ReturnType<typeof loadDataset>): Promise<number> {
  const model = buildModel(name, {
    seed: 1,
    inputShape: data.imageShape,
    numClasses: data.numClasses,
    float: variant === 'float' || variant === 'stock',
    stock: variant === 'stock',
    variation: variant === 'memristor+noise' ? { programmingSigma: 0.05 } : null,
  });
  const train = { images: data.train.images.subarray(0, samples * data.imageShape.reduce((a, b) => a * b)), labels: data.train.labels.subarray(0, samples), count: samples };
  // Two epochs: the first warms the kernels up, the second is the measurement.
  const { result } = await fit(model, { train, validation: null, imageShape: data.imageShape, numClasses: data.numClasses }, {
    epochs: 2,
    batchSize: BATCH,
    learningRate: 0.001,
    optimizer: 'adam',
    schedule: 'constant',
    seed: 1,
  });
  model.dispose();
  tf.disposeVariables();
  return result.history[1].samplesPerSec;
}

async function main() {
  const backend = await initBackend(process.argv[2]);
  const data = loadDataset('mnist', { trainSamples: 60000, testSamples: 100 });
  process.stderr.write(`bench on ${backend.name} (${backend.reason})\n`);
  const plan: { model: string; samples: number; variants: ('memristor' | 'memristor+noise' | 'float' | 'stock')[] }[] = [
    { model: 'mcnn', samples: 64 * 60, variants: ['float', 'memristor', 'memristor+noise', 'stock'] },
    { model: 'park', samples: 64 * 40, variants: ['float', 'memristor', 'memristor+noise', 'stock'] },
    { model: 'bnn', samples: 64 * 20, variants: ['float', 'memristor', 'stock'] },
  ];
  const rows: Row[] = [];
  const ROUNDS = 3;
  for (const p of plan) {
    // Interleaved rounds, best of each: the machine is shared, and a slow moment should not
    // land on one variant only.
    const best = new Map<string, number>();
    const notes = new Map<string, string>();
    for (let r = 0; r < ROUNDS; r++) {
      for (const v of p.variants) {
        if (notes.has(v)) continue;
        try {
          const sps = await throughput(p.model, v, p.samples, data);
          best.set(v, Math.max(best.get(v) ?? 0, sps));
        } catch (e) {
          notes.set(v, (e as Error).message.split('\n')[0]);
        }
      }
    }
    const floatSps = best.get('float') ?? null;
    for (const v of p.variants) {
      const sps = best.get(v) ?? null;
      const note = notes.get(v);
      rows.push({ model: p.model, variant: v, samplesPerSec: sps && Math.round(sps), ratioToFloat: sps && floatSps ? Number((floatSps / sps).toFixed(3)) : null, note });
      process.stderr.write(`${p.model.padEnd(6)} ${v.padEnd(16)} ${sps ? Math.round(sps) : '-'} samples/s${note ? ` (${note})` : ''}\n`);
    }
  }
  const results = {
    date: new Date().toISOString(),
    backend: backend.name,
    batchSize: BATCH,
    node: process.version,
    training: rows,
    peakRssMB: Math.round(process.resourceUsage().maxRSS / 1024),
    rounds: ROUNDS,
    note: 'best of interleaved rounds; ratioToFloat = float samples/s / this variant samples/s (the cost of the variant, 1.0 = same speed); stock = the same topology from stock tf.layers (float)',
  };
  console.log('\nmodel  variant          samples/s  cost vs float');
  for (const r of rows) console.log(`${r.model.padEnd(6)} ${r.variant.padEnd(16)} ${String(r.samplesPerSec ?? '-').padStart(9)}  ${r.ratioToFloat != null ? r.ratioToFloat.toFixed(2) + 'x' : '-'}${r.note ? '  ' + r.note : ''}`);
  console.log(`peak RSS ${results.peakRssMB} MB`);
  const file = path.join(__dirname, '..', '..', 'bench', 'results.json');
  writeJsonAtomic(file, results);
  console.log(`wrote ${file}`);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
