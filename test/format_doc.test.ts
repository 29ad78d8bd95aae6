// FORMAT.md is true: its numpy script, run as written on a mapped model, rebuilds every layer's
// weights (and conv kernels in HWIO) from manifest.json and the target CSVs alone. On the ideal
// device (continuous levels) that is the trained model's weights to float rounding.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { spawnSync } from 'child_process';
import { initBackend } from '../src/backend';
import { loadModel } from '../src/model_io';
import { runCli } from './helpers';

jest.setTimeout(120_000);
const root = fs.mkdtempSync(path.join(os.tmpdir(), 'mtfjs-format-'));
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

const numpy = spawnSync('python3', ['-c', 'import numpy'], { encoding: 'utf8' });
const hasNumpy = numpy.status === 0;
const required = process.env.MEMRISTOR_TFJS_REQUIRE_NUMPY === '1';
if (!hasNumpy) {
  // eslint-disable-next-line no-console
  console.log(`format_doc.test.ts: skipped, python3 with numpy is not available here (${(numpy.stderr || String(numpy.error)).trim().split('\n').pop()})`);
}
const maybe = hasNumpy || required ? test : test.skip;

/** The ```python block of FORMAT.md, pointed at `xdir`, printing every layer's W and kernel as JSON. */
function script(xdir: string): string {
  const md = fs.readFileSync(path.join(__dirname, '..', 'FORMAT.md'), 'utf8');
  const m = /```python\n([\s\S]*?)```/.exec(md);
  if (!m) throw new Error('FORMAT.md has no ```python block');
  const body = m[1].replace(/XDIR\//g, `${xdir}/`);
  // collect what the loop computes: W per layer, and the kernel for conv layers
  const collected = body
    .replace("for L in m['layers']:", "out = {}\nfor L in m['layers']:")
    .replace(/\n(\s+)if L\['kind'\] == 'conv2d':/, "\n$1out[L['name']] = {'W': W.tolist()}\n$1if L['kind'] == 'conv2d':");
  return `${collected}\n        out[L['name']]['kernel'] = kernel.tolist()\nprint(json.dumps(out))\n`;
}

describe('FORMAT.md', () => {
  maybe.each([['differential'], ['reference']])('its numpy script rebuilds the weights of the %s scheme', async (scheme) => {
    await initBackend('wasm');
    const model = path.join(root, `m-${scheme}`);
    const xdir = path.join(root, `x-${scheme}`);
    expect((await runCli('train', '--model', 'mcnn', '--train-samples', '200', '--test-samples', '50', '--no-progress', '--backend', 'wasm', '--out', model)).code).toBe(0);
    // small arrays, so that layers are tiled over several arrays in both directions
    expect((await runCli('map', '--model', model, '--device', 'ideal', '--array', '16x8', '--scheme', scheme, '--backend', 'wasm', '--out', xdir)).code).toBe(0);
    const r = spawnSync('python3', ['-c', script(xdir)], { encoding: 'utf8', maxBuffer: 1 << 26 });
    expect(r.stderr).toBe('');
    const got = JSON.parse(r.stdout) as Record<string, { W: number[][]; kernel?: number[][][][] }>;
    const { model: tfModel } = await loadModel(model);
    const manifest = JSON.parse(fs.readFileSync(path.join(xdir, 'manifest.json'), 'utf8'));
    expect(Object.keys(got)).toEqual(manifest.layers.map((l: { name: string }) => l.name));
    for (const L of manifest.layers) {
      const layer = tfModel.getLayer(L.name) as unknown as { quantizedKernel?: () => { dataSync(): Float32Array; dispose(): void }; getWeights(): { dataSync(): Float32Array }[] };
      // what the crossbar holds: the quantized kernel of a Quant layer, the kernel of a stock one
      const k = layer.quantizedKernel ? layer.quantizedKernel() : null;
      const kernel = k ? Array.from(k.dataSync()) : Array.from(layer.getWeights()[0].dataSync());
      k?.dispose();
      const flat = (L.kind === 'conv2d' ? got[L.name].kernel! : got[L.name].W).flat(3) as number[];
      expect(flat).toHaveLength(kernel.length);
      const scale = Math.max(...kernel.map(Math.abs));
      const worst = Math.max(...flat.map((v, i) => Math.abs(v - kernel[i])));
      expect(worst).toBeLessThan(1e-5 * scale);
    }
    tfModel.dispose();
  });
});
