// `npm run bench:torch`: training throughput of memristor-tfjs beside PyTorch (CPU) on the same
// networks, batch and optimizer, for the ratio from one run. PyTorch is not a dependency: Debian's
// python3-torch under /usr/bin/python3 (or $PYTHON) runs bench/torch_bench.py, which builds mcnn and
// ResNet-20 exactly as models/mcnn.ts and models/resnet.ts do (float). Both sides time the same
// step: forward, softmax cross-entropy, backward, Adam 1e-3, on one fixed random batch of 64,
// synchronous, after warm-up steps. Rounds are interleaved (tfjs, then torch with 1 and 2 threads,
// then tfjs again ...) and the best of each is kept: the machine is shared. Writes
// bench/torch_results.json.
//   node dist/bench/torch_bench.js [backend] [--rounds R] [--models mcnn,resnet20]
import { spawnSync } from 'child_process';
import * as path from 'path';
import { tf } from '../src/tf';
import { initBackend } from '../src/backend';
import { buildModel, BuildOptions } from '../models/registry';
import { writeJsonAtomic } from '../src/atomic';

const BATCH = 64;
const PY = process.env.PYTHON ?? '/usr/bin/python3';
const SCRIPT = path.join(__dirname, '..', '..', 'bench', 'torch_bench.py');

interface Net {
  label: string;
  model: string;
  build: Partial<BuildOptions>;
  input: [number, number, number];
  /** Timed steps a round (tfjs and torch alike). */
  steps: number;
}

const NETS: Net[] = [
  { label: 'mcnn', model: 'mcnn', build: {}, input: [28, 28, 1], steps: 60 },
  { label: 'resnet20', model: 'resnet', build: { depth: 20 }, input: [32, 32, 3], steps: 8 },
];
const VARIANTS = ['stock', 'memristor'] as const;
type TfVariant = (typeof VARIANTS)[number];

/** A timed step of one network on tfjs, built once and warmed up. */
function tfjsStepper(net: Net, variant: TfVariant): { run: (steps: number) => number; dispose: () => void } {
  const model = buildModel(net.model, { ...net.build, seed: 1, ...(variant === 'stock' ? { stock: true } : {}) });
  const opt = tf.train.adam(1e-3);
  const x = tf.randomUniform([BATCH, ...net.input], 0, 1, 'float32', 1);
  const y = tf.oneHot(tf.tensor1d(Array.from({ length: BATCH }, (_, i) => i % 10), 'int32'), 10);
  const vars = model.trainableWeights.map((w) => w.read() as tf.Variable);
  const step = () => {
    const l = opt.minimize(() => tf.losses.softmaxCrossEntropy(y, model.apply(x, { training: true }) as tf.Tensor) as tf.Scalar, true, vars)!;
    l.dataSync();
    l.dispose();
  };
  for (let i = 0; i < 3; i++) step();
  return {
    run: (steps) => {
      const t0 = performance.now();
      for (let i = 0; i < steps; i++) step();
      return (steps * BATCH) / ((performance.now() - t0) / 1000);
    },
    dispose: () => {
      model.dispose();
      opt.dispose();
      [x, y].forEach((t) => t.dispose());
    },
  };
}

interface TorchRound {
  torch: string;
  rows: { model: string; threads: number; samplesPerSec: number }[];
}

function torchRound(nets: Net[]): TorchRound {
  const r = spawnSync(PY, [SCRIPT, '--models', nets.map((n) => n.label).join(','), '--threads', '1,2', '--batch', String(BATCH), '--rounds', '1', '--warmup', '3'], {
    encoding: 'utf8',
    env: { ...process.env, OMP_NUM_THREADS: '2' },
  });
  if (r.status !== 0) throw new Error(`${PY} ${SCRIPT} failed (${r.status}): ${(r.stderr || r.error?.message || '').trim().split('\n').slice(-1)[0]}; install Debian's python3-torch`);
  return JSON.parse(r.stdout) as TorchRound;
}

async function main() {
  const args = process.argv.slice(2);
  const opt = (name: string) => {
    const i = args.indexOf(name);
    return i >= 0 ? args[i + 1] : undefined;
  };
  const rounds = Number(opt('--rounds') ?? 3);
  const only = opt('--models')?.split(',');
  const nets = only ? NETS.filter((n) => only.includes(n.label)) : NETS;
  if (!nets.length || !Number.isInteger(rounds) || rounds < 1) throw new Error(`usage: torch_bench.js [backend] [--rounds R>=1] [--models ${NETS.map((n) => n.label).join(',')}]`);
  const values = new Set([opt('--rounds'), opt('--models')]);
  const backend = await initBackend(args.find((a) => !a.startsWith('--') && !values.has(a)));
  process.stderr.write(`tfjs on ${backend.name}; PyTorch via ${PY}\n`);
  // The comparison holds only for the same networks: the PyTorch ones must have the registry's
  // trainable parameters (stock builds), or the bench stops here.
  const pr = spawnSync(PY, [SCRIPT, '--params'], { encoding: 'utf8' });
  if (pr.status !== 0) throw new Error(`${PY} ${SCRIPT} --params failed (${pr.status}): ${(pr.stderr || pr.error?.message || '').trim().split('\n').slice(-1)[0]}; install Debian's python3-torch`);
  const torchParams = JSON.parse(pr.stdout) as Record<string, number>;
  for (const n of nets) {
    const m = n.label === 'mcnn' ? buildModel('mcnn', { seed: 1, stock: true }) : n.label === 'resnet20' ? buildModel('resnet', { seed: 1, stock: true, depth: 20 }) : null;
    if (!m) continue;
    const count = m.trainableWeights.reduce((a, w) => a + w.shape.reduce((x: number, y) => x * (y ?? 1), 1), 0);
    m.dispose();
    if (torchParams[n.label] !== count) throw new Error(`bench/torch_bench.py's ${n.label} has ${torchParams[n.label]} trainable parameters, the registry's ${count}: not the same network`);
  }
  const best = new Map<string, number>();
  const keep = (k: string, v: number) => best.set(k, Math.max(best.get(k) ?? 0, v));
  let torchVersion = '';
  const steppers = new Map<string, ReturnType<typeof tfjsStepper>>();
  for (const n of nets) for (const v of VARIANTS) steppers.set(`${n.label}/${v}`, tfjsStepper(n, v));
  for (let r = 0; r < rounds; r++) {
    for (const n of nets) for (const v of VARIANTS) keep(`tfjs/${n.label}/${v}`, steppers.get(`${n.label}/${v}`)!.run(n.steps));
    const t = torchRound(nets);
    torchVersion = t.torch;
    for (const row of t.rows) keep(`torch/${row.model}/${row.threads}`, row.samplesPerSec);
    process.stderr.write(`round ${r + 1}/${rounds}: ${[...best].map(([k, v]) => `${k} ${v.toFixed(0)}`).join(', ')}\n`);
  }
  steppers.forEach((s) => s.dispose());
  const rows = nets.map((n) => {
    const g = (k: string) => Number((best.get(k) ?? 0).toFixed(1));
    const stock = g(`tfjs/${n.label}/stock`);
    const torch1 = g(`torch/${n.label}/1`);
    const torch2 = g(`torch/${n.label}/2`);
    return {
      model: n.label,
      input: n.input.join('x'),
      tfjs: { backend: backend.name, threads: 1, stock, memristor: g(`tfjs/${n.label}/memristor`) },
      torch: { threads1: torch1, threads2: torch2 },
      /** How many times PyTorch (1 thread) is faster than tfjs's stock build of the same network. */
      torch1OverTfjsStock: Number((torch1 / stock).toFixed(2)),
      torch2OverTfjsStock: Number((torch2 / stock).toFixed(2)),
    };
  });
  console.log('\nmodel     input     tfjs stock  tfjs memristor  torch 1 thr  torch 2 thr  torch1/tfjs  torch2/tfjs');
  for (const r of rows) {
    console.log(
      `${r.model.padEnd(9)} ${r.input.padEnd(9)} ${r.tfjs.stock.toFixed(0).padStart(10)}  ${r.tfjs.memristor.toFixed(0).padStart(14)}  ${r.torch.threads1.toFixed(0).padStart(11)}  ${r.torch.threads2.toFixed(0).padStart(11)}  ${(r.torch1OverTfjsStock + 'x').padStart(11)}  ${(r.torch2OverTfjsStock + 'x').padStart(11)}`,
    );
  }
  const file = path.join(__dirname, '..', '..', 'bench', 'torch_results.json');
  writeJsonAtomic(file, {
    date: new Date().toISOString(),
    node: process.version,
    torch: torchVersion,
    batchSize: BATCH,
    optimizer: 'adam 1e-3',
    rounds,
    rows,
    note: 'samples/s, best of interleaved rounds after warm-up; one fixed random batch, synchronous steps; tfjs stock = the network from stock tf.layers (float, as PyTorch), memristor = the memristor-aware build (15-level weights); torch float32 CPU',
  });
  console.log(`wrote ${file}`);
}

main().catch((e) => {
  console.error(e instanceof Error ? e.message : e);
  process.exit(1);
});
