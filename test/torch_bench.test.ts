// bench/torch_bench.py builds the same networks as the registry: the same trainable parameters
// per layer kind. Runs where Debian's python3-torch is installed (the bench's requirement), and
// says so where it is not.
import { spawnSync } from 'child_process';
import * as path from 'path';
import { tf } from '../src/tf';
import { initBackend } from '../src/backend';
import { buildModel } from '../models/registry';

const PY = process.env.PYTHON ?? '/usr/bin/python3';
const hasTorch = spawnSync(PY, ['-c', 'import torch'], { encoding: 'utf8' }).status === 0;
if (!hasTorch) console.warn(`test/torch_bench.test.ts: ${PY} has no torch (apt-get install python3-torch): skipped`);

beforeAll(async () => {
  await initBackend('wasm');
});

(hasTorch ? test : test.skip)('the PyTorch networks of bench:torch have the parameters of mcnn and resnet20 (stock builds)', () => {
  const r = spawnSync(PY, [path.join(__dirname, '..', 'bench', 'torch_bench.py'), '--params'], { encoding: 'utf8' });
  expect(r.status).toBe(0);
  const torch = JSON.parse(r.stdout) as Record<string, number>;
  const count = (m: tf.LayersModel) => m.trainableWeights.reduce((s, w) => s + w.shape.reduce((a: number, b) => a * (b ?? 1), 1), 0);
  const mcnn = buildModel('mcnn', { seed: 1, stock: true });
  const resnet = buildModel('resnet', { seed: 1, stock: true, depth: 20 });
  expect(torch).toEqual({ mcnn: count(mcnn), resnet20: count(resnet) });
  expect(torch.resnet20).toBe(272474);
  [mcnn, resnet].forEach((m) => m.dispose());
});
