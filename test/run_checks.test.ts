// No mixed results, no silent bad input: --resume checks its checkpoint against the command line
// and its checksums; non-finite numbers are refused by every reader, naming the file and the
// position; declared sizes are checked before allocation; flags with a natural bound are refused
// or clamped with a line; a device value reached through "extends" names the file that holds it.
import * as crypto from 'crypto';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { initBackend } from '../src/backend';
import { writeIdx } from '../src/data/idx';
import { loadDeviceConfig } from '../src/device/config';
import { parseArrayCsv, readCrossbarDir, MANIFEST_FILE } from '../src/crossbar/files';
import { FileFormatError } from '../src/errors';
import { siblingPaths } from '../src/output_folder';
import { CHECKPOINT_POINTER } from '../training/checkpoint';
import { runCli, STACK, errorOf } from './helpers';

jest.setTimeout(120_000);
const root = fs.mkdtempSync(path.join(os.tmpdir(), 'mtfjs-checks-'));
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));
beforeAll(async () => {
  await initBackend('wasm');
});

const cli = (...args: string[]) => runCli(...args, '--backend', 'wasm');

function digest(dir: string): string {
  const h = crypto.createHash('sha256');
  const walk = (d: string): string[] =>
    fs.readdirSync(d, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? walk(path.join(d, e.name)) : [path.join(d, e.name)]));
  for (const f of walk(dir).sort()) h.update(path.relative(dir, f)).update(fs.readFileSync(f));
  return h.digest('hex');
}

const BASE = ['train', '--model', 'mcnn', '--dataset', 'mnist', '--train-samples', '300', '--test-samples', '50', '--seed', '3', '--workers', '1', '--no-progress'];

describe('train --resume checks the checkpoint', () => {
  const run = path.join(root, 'run');
  let before = '';
  beforeAll(async () => {
    const r = await cli(...BASE, '--epochs', '2', '--out', run);
    expect(r.code).toBe(0);
    before = digest(run);
    // an IDX dataset with MNIST's shape but other images: another --dataset
    const idx = path.join(root, 'idx');
    const img = (n: number) => Uint8Array.from({ length: n * 784 }, (_, i) => (i * 7) % 256);
    const lab = (n: number) => Uint8Array.from({ length: n }, (_, i) => i % 10);
    writeIdx(path.join(idx, 'train-images-idx3-ubyte'), [300, 28, 28], 'uint8', img(300));
    writeIdx(path.join(idx, 'train-labels-idx1-ubyte'), [300], 'uint8', lab(300));
    writeIdx(path.join(idx, 't10k-images-idx3-ubyte'), [50, 28, 28], 'uint8', img(50));
    writeIdx(path.join(idx, 't10k-labels-idx1-ubyte'), [50], 'uint8', lab(50));
  });

  const differs: [string[], string, string][] = [
    [['--model', 'park'], '--model', 'model "mcnn"'],
    [['--dataset', `idx:${path.join(root, 'idx')}`], '--dataset', 'dataset "mnist"'],
    [['--float'], '--float', 'float false'],
    [['--variation', 'rOnSigma=0.1'], '--variation', 'variation null'],
    [['--train-samples', '200'], '--train-samples', 'trainSamples 300'],
    [['--validation-split', '0.1'], '--validation-split', 'validationSplit 0'],
    [['--workers', '2'], '--workers', 'workers 1'],
    [['--batch-size', '16'], '--batch-size', 'batchSize 32'],
    [['--lr', '0.02'], '--lr', 'learningRate 0.01'],
    [['--optimizer', 'sgd'], '--optimizer', 'optimizer "adam"'],
    [['--schedule', 'constant'], '--schedule', 'schedule "cosine"'],
    [['--seed', '4'], '--seed', 'seed 3'],
  ];
  test.each(differs)('%j: refused naming %s, the folder untouched', async (flags, flag, recorded) => {
    const args = [...BASE, '--epochs', '3', '--out', run, '--resume'];
    // replace a flag of BASE or add it
    for (let i = 0; i < flags.length; i++) {
      const f = flags[i];
      const value = flags[i + 1] !== undefined && !flags[i + 1].startsWith('--') ? flags[++i] : null;
      const at = args.indexOf(f);
      if (at >= 0 && value !== null) args[at + 1] = value;
      else args.push(f, ...(value !== null ? [value] : []));
    }
    const r = await cli(...args);
    expect(r.code).toBe(2);
    expect(r.err).toContain(`error: --resume: the checkpoint in ${run} was written for ${recorded} (${flag}), this command asks for `);
    expect(r.err).not.toMatch(STACK);
    expect(digest(run)).toBe(before);
    expect(fs.existsSync(siblingPaths(run).partial)).toBe(false);
  });

  test('--epochs below the checkpoint is refused', async () => {
    const r = await cli(...BASE, '--epochs', '1', '--out', run, '--resume');
    expect(r.code).toBe(2);
    expect(r.err).toContain('error: --epochs 1: the checkpoint has trained 2 epochs already; give --epochs >= 2');
    expect(digest(run)).toBe(before);
  });

  test('a checkpoint file that changed fails its checksum, naming the file; a bad step names state.json', async () => {
    const bad = path.join(root, 'damaged');
    fs.cpSync(run, bad, { recursive: true });
    const ck = JSON.parse(fs.readFileSync(path.join(bad, CHECKPOINT_POINTER), 'utf8')).dir as string;
    const w = path.join(bad, ck, 'weights.bin');
    const b = fs.readFileSync(w);
    b[100] ^= 1;
    fs.writeFileSync(w, b);
    let r = await cli(...BASE, '--epochs', '3', '--out', bad, '--resume');
    expect(r.code).toBe(1);
    expect(r.err).toMatch(new RegExp(`error: ${w}: does not match its checksum in state.json \\(sha256 [0-9a-f]{12}\\.\\.\\., recorded [0-9a-f]{12}\\.\\.\\.\\)`));
    b[100] ^= 1;
    fs.writeFileSync(w, b);
    const sf = path.join(bad, ck, 'state.json');
    const state = JSON.parse(fs.readFileSync(sf, 'utf8'));
    fs.writeFileSync(sf, JSON.stringify({ ...state, step: state.step + 1 }));
    r = await cli(...BASE, '--epochs', '3', '--out', bad, '--resume');
    expect(r.code).toBe(1);
    expect(r.err).toContain(`error: ${sf}: step ${state.step + 1} does not match epoch 2 (10 steps an epoch give 20)`);
    fs.writeFileSync(sf, JSON.stringify({ ...state, epoch: 0 }));
    r = await cli(...BASE, '--epochs', '3', '--out', bad, '--resume');
    expect(r.err).toContain(`error: ${sf}: epoch: must be an integer >= 1, got 0`);
    // a checkpoint of the first format version has nothing to check against
    fs.writeFileSync(sf, JSON.stringify(state));
    const pointer = path.join(bad, CHECKPOINT_POINTER);
    const p = JSON.parse(fs.readFileSync(pointer, 'utf8'));
    fs.writeFileSync(pointer, JSON.stringify({ ...p, version: 1 }));
    r = await cli(...BASE, '--epochs', '3', '--out', bad, '--resume');
    expect(r.code).toBe(1);
    expect(r.err).toContain(`error: ${pointer}: checkpoint version 1, written by an older memristor-tfjs without a run record or checksums`);
  });

  test('the same flags resume: one more epoch, history of three', async () => {
    const r = await cli(...BASE, '--epochs', '3', '--out', run, '--resume', '--json');
    expect(r.code).toBe(0);
    const m = JSON.parse(r.out);
    expect(m.resumedFromEpoch).toBe(2);
    expect(m.history.map((h: { epoch: number }) => h.epoch)).toEqual([1, 2, 3]);
    expect(fs.existsSync(siblingPaths(run).partial)).toBe(false);
  });
});

describe('non-finite numbers are refused where they cannot be meant', () => {
  const model = path.join(root, 'model');
  beforeAll(async () => {
    expect((await cli(...BASE, '--epochs', '1', '--out', model)).code).toBe(0);
  });

  test.each([
    ['NaN', NaN],
    ['Infinity', Infinity],
    ['-Infinity', -Infinity],
  ])('weights holding %s: evaluate and map exit 1 naming weights.bin, the weight and the element', async (name, value) => {
    const bad = path.join(root, `weights-${name}`);
    fs.cpSync(model, bad, { recursive: true });
    const wf = path.join(bad, 'weights.bin');
    const b = fs.readFileSync(wf);
    new DataView(b.buffer, b.byteOffset).setFloat32(4 * 5, value, true); // element 5 of the first weight
    fs.writeFileSync(wf, b);
    const want = `error: ${wf}: weight 'C1/kernel' [3x3x1x8], element 5 (byte 20): ${name} is not a finite number`;
    const e = await cli('evaluate', '--model', bad, '--test-samples', '50');
    expect(e.code).toBe(1);
    expect(e.err).toContain(want);
    const m = await cli('map', '--model', bad, '--device', 'park2024', '--out', path.join(root, `map-${name}`));
    expect(m.code).toBe(1);
    expect(m.err).toContain(want);
    expect(fs.existsSync(path.join(root, `map-${name}`))).toBe(false);
  });

  test('conductance CSVs: non-finite values, a truncated last row, a declared size beyond the file', () => {
    const f = 'a.csv';
    const cases: [string, number, number, string][] = [
      ['1,2\n3,NaN\n', 2, 2, "line 2 (row 2), column 2: 'NaN' is not a finite number"],
      ['1,2\n3,-inf\n', 2, 2, "line 2 (row 2), column 2: '-inf' is not a finite number"],
      ['1,2\n3,1e39\n', 2, 2, "line 2 (row 2), column 2: '1e39' is not a finite float32"],
      // cut mid-number: '3,4.25' became '3,4.2' with no newline
      ['# array: x\n1,2\n3,4.2', 2, 2, 'line 3: the file ends without a newline, so its last row may be cut short (a truncated file?)'],
      ['1,2\n', 1000, 1000, 'holds 4 characters, too few for the 1000x1000 values the manifest declares (a truncated file?)'],
      ['1\n', 1 << 14, 1 << 13, `${1 << 14}x${1 << 13} cells declared, more than the ${1 << 26} an array may hold`],
    ];
    for (const [text, rows, cols, msg] of cases) {
      const e = errorOf(() => parseArrayCsv(f, text, rows, cols, 'x'));
      expect(e).toBeInstanceOf(FileFormatError);
      expect(e.message).toBe(`${f}: ${msg}`);
    }
  });

  test('a manifest declaring a billion rows is refused before anything is allocated or read', async () => {
    const x = path.join(root, 'xdir');
    expect((await cli('map', '--model', model, '--device', 'park2024', '--array', '32x32', '--out', x)).code).toBe(0);
    const mf = path.join(x, MANIFEST_FILE);
    const m = JSON.parse(fs.readFileSync(mf, 'utf8'));
    m.layers[0].arrays[0].rows = 1_000_000_000;
    fs.writeFileSync(mf, JSON.stringify(m));
    expect(() => readCrossbarDir(x)).toThrow(`${mf}: layers[0].arrays[0].rows: 1000000000x16 cells, more than the ${1 << 26} an array may hold`);
    m.layers[0].arrays[0].rows = 1e12;
    fs.writeFileSync(mf, JSON.stringify(m));
    expect(() => readCrossbarDir(x)).toThrow(`${mf}: layers[0].arrays[0].rows: must be an integer >= 1, got 1000000000000`);
    m.layers[0].arrays[0].rows = 100_000;
    m.layers[0].arrays[0].cols = 100_000;
    fs.writeFileSync(mf, JSON.stringify(m));
    expect(() => readCrossbarDir(x)).toThrow(`${mf}: layers[0].arrays[0].rows: 100000x100000 cells, more than the ${1 << 26} an array may hold`);
  });

  test('a device file: a number too large for a double is not finite', () => {
    const f = path.join(root, 'huge.json');
    fs.writeFileSync(f, '{"extends": "park2024", "read": {"noiseSigma": 1e999}}');
    expect(() => loadDeviceConfig(f)).toThrow(`${f}: read.noiseSigma: must be a finite number, got null`);
  });
});

describe('flags with a natural bound, paths, and errors that name what the user wrote', () => {
  const model = path.join(root, 'model2');
  beforeAll(async () => {
    expect((await cli(...BASE, '--epochs', '1', '--out', model)).code).toBe(0);
  });

  test('map --replicas beyond a layer\'s output rows is clamped per layer with a line; --array too large is refused', async () => {
    const out = path.join(root, 'replicas');
    const r = await cli('map', '--model', model, '--device', 'park2024', '--replicas', '1000000', '--out', out, '--json');
    expect(r.code).toBe(0);
    expect(r.err).toContain('replicas: C1 has 28 output rows, so it gets 28 replica(s), not 1000000');
    expect(r.err).toContain('replicas: C3 has 12 output rows, so it gets 12 replica(s), not 1000000');
    const layers = JSON.parse(r.out).layers as { layer: string; replicas: number }[];
    expect(layers.map((l) => [l.layer, l.replicas])).toEqual([['C1', 28], ['C3', 12], ['FC', 1]]);
    const big = await cli('map', '--model', model, '--device', 'park2024', '--array', '100000x16', '--out', path.join(root, 'big'));
    expect(big.code).toBe(2);
    expect(big.err).toContain('error: --array 100000x16: rows and columns must be <= 65536');
    const huge = await cli('map', '--model', model, '--device', 'park2024', '--array', '4096x4096', '--out', path.join(root, 'huge'));
    expect(huge.code).toBe(0);
    expect(huge.err).toContain('arrays of 4096x4096 are larger than every layer (the layers need at most 192 rows and 24 columns): each array holds only the cells its layer uses');
  });

  test('a batch larger than the data is clamped with a line; --test-samples beyond the data names the flag', async () => {
    const r = await cli(...BASE, '--epochs', '1', '--batch-size', '100000', '--out', path.join(root, 'bigbatch'), '--json');
    expect(r.code).toBe(0);
    expect(r.err).toContain('--batch-size 100000 is larger than the 300 training samples: using 300');
    expect(JSON.parse(r.out).batchSize).toBe(300);
    const t = await cli('evaluate', '--model', model, '--test-samples', '20000');
    expect(t.code).toBe(2);
    expect(t.err).toContain('error: --test-samples: must be an integer in 1..10000 (the samples available), got 20000');
  });

  test('evaluate --crossbar: --calibration-samples beyond the data is clamped with a line', async () => {
    const x = path.join(root, 'x-cal');
    expect((await cli('map', '--model', model, '--device', 'park2024', '--array', '32x32', '--out', x)).code).toBe(0);
    const r = await cli('evaluate', '--crossbar', x, '--dataset', `idx:${path.join(root, 'idx')}`, '--calibration-samples', '100000');
    expect(r.code).toBe(0);
    expect(r.err).toContain('--calibration-samples 100000 is more than the 300 training samples: calibrating on all of them');
  });

  test('--out empty, a file, under a file, or over an input: one line, exit 2, nothing written', async () => {
    const file = path.join(root, 'plain-file');
    fs.writeFileSync(file, 'x');
    const x = path.join(root, 'xin');
    expect((await cli('map', '--model', model, '--device', 'park2024', '--array', '32x32', '--out', x)).code).toBe(0);
    const before = digest(x);
    const cases: [string[], string][] = [
      [[...BASE, '--out', ''], "error: --out must name a folder, got ''"],
      [['map', '--model', model, '--device', 'park2024', '--out', file], `error: --out ${file} is a file, not a folder; name a folder to write`],
      [['map', '--model', model, '--device', 'park2024', '--out', path.join(file, 'x')], `error: --out ${path.join(file, 'x')} lies under ${file}, which is a file, not a folder`],
      [['map', '--model', model, '--device', 'park2024', '--out', path.join(model, 'x')], `error: --out ${path.join(model, 'x')} lies inside the input --model ${model}`],
      [['insitu', '--crossbar', x, '--samples', '100', '--out', x], `error: --out ${x} is the input --crossbar ${x}`],
      [['insitu', '--crossbar', x, '--samples', '100', '--out', root], `error: --out ${root} contains the input --crossbar ${x}`],
      [['map', '--model', model, '--device', 'park2024', '--out', x], `error: --out ${x} already holds a result (`],
    ];
    for (const [args, msg] of cases) {
      const r = await cli(...args);
      expect(r.code).toBe(2);
      expect(r.err).toContain(msg);
      expect(r.err.trim().split('\n').filter((l) => l.startsWith('error:'))).toHaveLength(1);
      expect(r.err).not.toMatch(STACK);
    }
    expect(digest(x)).toBe(before);
    expect(fs.readFileSync(file, 'utf8')).toBe('x');
  });

  test('a bad value reached through "extends" names the file that holds it', () => {
    const dir = path.join(root, 'devices');
    fs.mkdirSync(dir);
    const base = path.join(dir, 'base.json');
    const top = path.join(dir, 'top.json');
    fs.writeFileSync(base, JSON.stringify({ extends: 'park2024', variation: { rOnSigma: 5 }, pulse: { typo: 1 } }));
    fs.writeFileSync(top, JSON.stringify({ extends: 'base.json', read: { noiseSigma: 0.01 } }));
    expect(() => loadDeviceConfig(top)).toThrow(`${base}: pulse.typo: unknown field (known: model, dgSet, dgReset, c2cSigma) (reached from ${top} through "extends")`);
    fs.writeFileSync(base, JSON.stringify({ extends: 'park2024', variation: { rOnSigma: 5 } }));
    expect(() => loadDeviceConfig(top)).toThrow(`${base}: variation.rOnSigma: must be in [0, 2], got 5 (reached from ${top} through "extends")`);
    // the top file's own bad value names the top file
    fs.writeFileSync(top, JSON.stringify({ extends: 'base.json', variation: { rOnSigma: 3 } }));
    expect(() => loadDeviceConfig(top)).toThrow(`${top}: variation.rOnSigma: must be in [0, 2], got 3`);
  });
});
