import * as fs from 'fs';
import * as path from 'path';
import * as zlib from 'zlib';
import { tf } from '../src/tf';
import { SeededRandom } from '../src/random';
import { ConfigError, FileFormatError, UsageError } from '../src/errors';
import { errorOf, tempRoot } from './helpers';
import {
  batchesOf,
  encodeIdx,
  loadDataset,
  numBatches,
  readIdx,
  splitValidation,
  toTfDataset,
  writeIdx,
  Split,
  IdxType,
} from '../src/data';

const tmp = tempRoot('data');


/** A fake IDX folder: sample i of a split has every pixel = (i*3 + k) % 256 and label i % 10. */
function makeIdxDir(
  dir: string,
  opts: { train?: number; test?: number; h?: number; w?: number; gzip?: boolean; testLabels?: number } = {},
): void {
  const { train = 12, test = 5, h = 4, w = 3, gzip = false } = opts;
  const images = (n: number) => Uint8Array.from({ length: n * h * w }, (_, k) => (Math.floor(k / (h * w)) * 3 + k) % 256);
  const labels = (n: number) => Uint8Array.from({ length: n }, (_, i) => i % 10);
  const ext = gzip ? '.gz' : '';
  writeIdx(path.join(dir, 'train-images-idx3-ubyte' + ext), [train, h, w], 'uint8', images(train), { gzip });
  writeIdx(path.join(dir, 'train-labels-idx1-ubyte' + ext), [train], 'uint8', labels(train), { gzip });
  writeIdx(path.join(dir, 't10k-images-idx3-ubyte'), [test, h, w], 'uint8', images(test));
  const nl = opts.testLabels ?? test;
  writeIdx(path.join(dir, 't10k-labels-idx1-ubyte'), [nl], 'uint8', labels(nl));
}

describe('IDX files', () => {
  const cases: [IdxType, number[]][] = [
    ['uint8', [0, 1, 127, 255, 3, 200]],
    ['int8', [-128, -1, 0, 1, 127, 5]],
    ['int16', [-32768, -2, 0, 300, 32767, 1234]],
    ['int32', [-2147483648, -70000, 0, 70000, 2147483647, 1]],
    ['float32', [-1.5, 0, 0.25, 3.5e10, -7.125, 1e-3]],
    ['float64', [Math.PI, -Math.E, 0, 1e300, -1e-300, 42]],
  ];
  for (const [type, values] of cases) {
    for (const gzip of [false, true]) {
      test(`${type} ${gzip ? 'gzipped' : 'raw'} round trip`, () => {
        const file = path.join(tmp, `rt-${type}-${gzip}`); // no .gz name: gzip found by its magic
        writeIdx(file, [2, 3], type, values, { gzip });
        const back = readIdx(file);
        expect(back.type).toBe(type);
        expect(back.dims).toEqual([2, 3]);
        const expected = type === 'float32' ? Array.from(Float32Array.from(values)) : values;
        expect(Array.from(back.data)).toEqual(expected);
        const bytes = fs.readFileSync(file);
        expect(bytes[0] === 0x1f && bytes[1] === 0x8b).toBe(gzip);
      });
    }
  }

  test('multi-byte values are big-endian on disk', () => {
    const bytes = encodeIdx([2], 'int16', [0x0102, -2]);
    expect(Array.from(bytes)).toEqual([0, 0, 0x0b, 1, 0, 0, 0, 2, 0x01, 0x02, 0xff, 0xfe]);
  });

  test('4-dim header and MNIST-like dims', () => {
    const file = path.join(tmp, 'four.idx');
    writeIdx(file, [2, 2, 1, 3], 'uint8', Uint8Array.from({ length: 12 }, (_, i) => i * 20));
    const back = readIdx(file);
    expect(back.dims).toEqual([2, 2, 1, 3]);
    expect(back.data).toBeInstanceOf(Uint8Array);
    expect(back.data[11]).toBe(220);
  });

  test('truncated file names the file and the byte counts', () => {
    const file = path.join(tmp, 'trunc-idx3-ubyte');
    const full = encodeIdx([3, 4, 4], 'uint8', new Uint8Array(48));
    fs.writeFileSync(file, full.subarray(0, full.length - 5));
    const e = errorOf(() => readIdx(file));
    expect(e).toBeInstanceOf(FileFormatError);
    expect(e.message).toBe(`${file}: truncated: header says 3x4x4 uint8 = 48 data bytes, file holds 43`);
  });

  test('trailing bytes are an error', () => {
    const file = path.join(tmp, 'trailing');
    fs.writeFileSync(file, Buffer.concat([encodeIdx([2], 'int32', [1, 2]), Buffer.from([9])]));
    expect(errorOf(() => readIdx(file)).message).toBe(
      `${file}: trailing bytes: header says 2 int32 = 8 data bytes, file holds 9`,
    );
  });

  test('truncated header', () => {
    const file = path.join(tmp, 'shorthead');
    fs.writeFileSync(file, Buffer.from([0, 0, 8, 3, 0, 0, 0, 1]));
    expect(errorOf(() => readIdx(file)).message).toBe(
      `${file}: truncated header: 3 dims need 16 header bytes, file holds 8`,
    );
  });

  test('wrong magic: bad leading bytes, type code, dim count', () => {
    for (const head of [
      [1, 0, 8, 1],
      [0, 0, 0x0a, 1],
      [0, 0, 8, 0],
      [0, 0, 8, 5],
    ]) {
      const file = path.join(tmp, 'badmagic');
      fs.writeFileSync(file, Buffer.from([...head, 0, 0, 0, 0]));
      const e = errorOf(() => readIdx(file));
      expect(e).toBeInstanceOf(FileFormatError);
      expect(e.message).toContain(`${file}: not an IDX file: bad magic`);
    }
    const tiny = path.join(tmp, 'tiny');
    fs.writeFileSync(tiny, Buffer.from([0, 0]));
    expect(errorOf(() => readIdx(tiny)).message).toContain('too short');
  });

  test('corrupt and cut gzip streams', () => {
    const gz = zlib.gzipSync(encodeIdx([100], 'uint8', new Uint8Array(100).fill(7)));
    const corrupt = Buffer.from(gz);
    corrupt.fill(0xaa, 10, 20);
    const file = path.join(tmp, 'corrupt.gz');
    fs.writeFileSync(file, corrupt);
    const e = errorOf(() => readIdx(file));
    expect(e).toBeInstanceOf(FileFormatError);
    expect(e.message).toContain(`${file}: corrupt gzip stream`);
    fs.writeFileSync(file, gz.subarray(0, gz.length - 8));
    expect(errorOf(() => readIdx(file)).message).toContain('corrupt gzip stream');
  });

  test('missing file: short message, no stack', () => {
    const file = path.join(tmp, 'nope');
    const e = errorOf(() => readIdx(file));
    expect(e).toBeInstanceOf(FileFormatError);
    expect(e.message).toBe(`${file}: cannot read: ENOENT: no such file or directory`);
  });

  test('writeIdx checks its arguments', () => {
    expect(() => encodeIdx([2, 2], 'uint8', [1, 2, 3])).toThrow(UsageError);
    expect(() => encodeIdx([], 'uint8', [])).toThrow(UsageError);
    expect(() => encodeIdx([1.5], 'uint8', [1])).toThrow(UsageError);
  });
});

describe('loadDataset', () => {
  test('idx:DIR with raw and gzipped files', () => {
    const dir = path.join(tmp, 'idxdir');
    makeIdxDir(dir, { gzip: true });
    const ds = loadDataset(`idx:${dir}`);
    expect(ds.name).toBe('idxdir');
    expect(ds.imageShape).toEqual([4, 3, 1]);
    expect(ds.numClasses).toBe(10);
    expect(ds.train.count).toBe(12);
    expect(ds.test.count).toBe(5);
    expect(ds.train.images.length).toBe(12 * 12);
    expect(ds.train.images[12 * 5 + 2]).toBe((5 * 3 + 12 * 5 + 2) % 256);
    expect(Array.from(ds.train.labels)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1]);
    expect(ds.files.train).toEqual([
      path.join(dir, 'train-images-idx3-ubyte.gz'),
      path.join(dir, 'train-labels-idx1-ubyte.gz'),
    ]);
    const few = loadDataset(`idx:${dir}`, { trainSamples: 3, testSamples: 5 });
    expect(few.train.count).toBe(3);
    expect(few.train.images.length).toBe(36);
    expect(Array.from(few.train.labels)).toEqual([0, 1, 2]);
  });

  test('missing file in idx:DIR names the expected path', () => {
    const dir = path.join(tmp, 'idxmissing');
    makeIdxDir(dir);
    fs.rmSync(path.join(dir, 't10k-images-idx3-ubyte'));
    const e = errorOf(() => loadDataset(`idx:${dir}`));
    expect(e).toBeInstanceOf(FileFormatError);
    expect(e.message).toContain(path.join(dir, 't10k-images-idx3-ubyte'));
    expect(e.message).toContain('missing');
  });

  test('label/image count mismatch names the labels file and both counts', () => {
    const dir = path.join(tmp, 'idxcount');
    makeIdxDir(dir, { test: 5, testLabels: 4 });
    const e = errorOf(() => loadDataset(`idx:${dir}`));
    const labels = path.join(dir, 't10k-labels-idx1-ubyte');
    expect(e).toBeInstanceOf(FileFormatError);
    expect((e as FileFormatError).file).toBe(labels);
    expect(e.message).toBe(`${labels}: 4 labels but ${path.join(dir, 't10k-images-idx3-ubyte')} holds 5 images`);
  });

  test('bad labels, bad types and mismatched shapes', () => {
    const dir = path.join(tmp, 'idxbad');
    makeIdxDir(dir);
    const labels = path.join(dir, 't10k-labels-idx1-ubyte');
    writeIdx(labels, [5], 'uint8', [1, 2, 10, 3, 4]);
    expect(errorOf(() => loadDataset(`idx:${dir}`)).message).toBe(
      `${labels}: label 10 at sample 2 is out of range 0..9`,
    );
    writeIdx(labels, [5], 'int32', [1, 2, 3, 3, 4]);
    expect(errorOf(() => loadDataset(`idx:${dir}`)).message).toContain('labels must be uint8 with 1 dim');
    makeIdxDir(dir);
    writeIdx(path.join(dir, 't10k-images-idx3-ubyte'), [5, 3, 4], 'uint8', new Uint8Array(60));
    expect(errorOf(() => loadDataset(`idx:${dir}`)).message).toContain('test images are 3x4x1 but training images');
    writeIdx(path.join(dir, 't10k-images-idx3-ubyte'), [5, 12], 'uint8', new Uint8Array(60));
    expect(errorOf(() => loadDataset(`idx:${dir}`)).message).toContain('images must be uint8 with 3 dims');
  });

  test('sample options and unknown specs', () => {
    const dir = path.join(tmp, 'idxopts');
    makeIdxDir(dir);
    for (const n of [0, 13, 2.5]) {
      const e = errorOf(() => loadDataset(`idx:${dir}`, { trainSamples: n }));
      expect(e).toBeInstanceOf(ConfigError);
      expect(e.message).toBe(`trainSamples: must be an integer in 1..12 (the samples available), got ${n}`);
    }
    expect(errorOf(() => loadDataset(`idx:${dir}`, { testSamples: 6 })).message).toContain('testSamples');
    for (const spec of ['fashion', 'idx:', 'cifar10', 'mnist:x']) {
      const e = errorOf(() => loadDataset(spec));
      expect(e).toBeInstanceOf(UsageError);
      expect(e.message).toContain(`unknown dataset "${spec}"`);
      expect(e.message).toContain('idx:DIR');
      expect(e.message).toContain('cifar10:DIR');
    }
    const e = errorOf(() => loadDataset(`idx:${path.join(tmp, 'no-such-dir')}`));
    expect(e).toBeInstanceOf(FileFormatError);
    expect(e.message).toContain('ENOENT');
  });

  test('mnist: first samples and labels', () => {
    const ds = loadDataset('mnist', { trainSamples: 100, testSamples: 50 });
    expect(ds.name).toBe('mnist');
    expect(ds.imageShape).toEqual([28, 28, 1]);
    expect(ds.numClasses).toBe(10);
    expect(ds.train.count).toBe(100);
    expect(ds.test.count).toBe(50);
    expect(ds.train.images.length).toBe(100 * 784);
    expect(ds.test.images.length).toBe(50 * 784);
    expect(ds.train.labels[0]).toBe(5);
    expect(ds.test.labels[0]).toBe(7);
    expect(Array.from(ds.train.labels.subarray(0, 10))).toEqual([5, 0, 4, 1, 9, 2, 1, 3, 1, 4]);
    // The first training digit: a 5 with ink in the middle and a blank border.
    const first = ds.train.images.subarray(0, 784);
    expect(Math.max(...first)).toBe(255);
    expect(first[0]).toBe(0);
  });

  test('mnist: the full load has every sample, with the known label counts', () => {
    // (its speed is measured by `npm run bench`)
    const ds = loadDataset('mnist');
    expect(ds.train.count).toBe(60000);
    expect(ds.test.count).toBe(10000);
    expect(ds.train.images.length).toBe(60000 * 784);
    const hist = new Array(10).fill(0);
    for (const l of ds.train.labels) hist[l]++;
    expect(hist).toEqual([5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]);
  });
});

describe('CIFAR-10 binary', () => {
  const plane = 1024;
  const record = 3073;
  // Pixel value of record r (over all files of a split), channel ch, position p.
  const px = (r: number, ch: number, p: number) => (r * 7 + ch * 50 + p * 3) % 256;

  function writeCifar(dir: string, recordsPerFile = 3): void {
    fs.mkdirSync(dir, { recursive: true });
    const files = ['data_batch_1.bin', 'data_batch_2.bin', 'data_batch_3.bin', 'data_batch_4.bin', 'data_batch_5.bin'];
    let r = 0;
    for (const f of files) {
      const buf = new Uint8Array(recordsPerFile * record);
      for (let i = 0; i < recordsPerFile; i++, r++) {
        buf[i * record] = r % 10;
        for (let ch = 0; ch < 3; ch++) for (let p = 0; p < plane; p++) buf[i * record + 1 + ch * plane + p] = px(r, ch, p);
      }
      fs.writeFileSync(path.join(dir, f), buf);
    }
    const test = new Uint8Array(2 * record);
    for (let i = 0; i < 2; i++) {
      test[i * record] = 9 - i;
      for (let ch = 0; ch < 3; ch++) for (let p = 0; p < plane; p++) test[i * record + 1 + ch * plane + p] = px(100 + i, ch, p);
    }
    fs.writeFileSync(path.join(dir, 'test_batch.bin'), test);
  }

  test('CHW records become HWC images', () => {
    const root = path.join(tmp, 'cifar');
    writeCifar(path.join(root, 'cifar-10-batches-bin'));
    const ds = loadDataset(`cifar10:${root}`);
    expect(ds.name).toBe('cifar10');
    expect(ds.imageShape).toEqual([32, 32, 3]);
    expect(ds.classNames?.[0]).toBe('airplane');
    expect(ds.train.count).toBe(15);
    expect(ds.test.count).toBe(2);
    expect(Array.from(ds.train.labels)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1, 2, 3, 4]);
    expect(Array.from(ds.test.labels)).toEqual([9, 8]);
    for (const [r, y, x] of [
      [0, 0, 0],
      [4, 5, 17],
      [14, 31, 31],
    ]) {
      const p = y * 32 + x;
      const base = r * 3072 + p * 3;
      expect(Array.from(ds.train.images.subarray(base, base + 3))).toEqual([px(r, 0, p), px(r, 1, p), px(r, 2, p)]);
    }
    // every value, both splits
    let bad = 0;
    for (let r = 0; r < 15; r++)
      for (let p = 0; p < plane; p++) for (let ch = 0; ch < 3; ch++) if (ds.train.images[r * 3072 + p * 3 + ch] !== px(r, ch, p)) bad++;
    for (let r = 0; r < 2; r++)
      for (let p = 0; p < plane; p++) for (let ch = 0; ch < 3; ch++) if (ds.test.images[r * 3072 + p * 3 + ch] !== px(100 + r, ch, p)) bad++;
    expect(bad).toBe(0);
    expect(ds.files.test).toEqual([path.join(root, 'cifar-10-batches-bin', 'test_batch.bin')]);
    expect(loadDataset(`cifar10:${path.join(root, 'cifar-10-batches-bin')}`, { trainSamples: 4 }).train.count).toBe(4);
  });

  test('missing and truncated CIFAR files are named', () => {
    const dir = path.join(tmp, 'cifarbad');
    writeCifar(dir, 2);
    const f3 = path.join(dir, 'data_batch_3.bin');
    const bytes = fs.readFileSync(f3);
    fs.writeFileSync(f3, bytes.subarray(0, bytes.length - 100));
    const e = errorOf(() => loadDataset(`cifar10:${dir}`));
    expect(e).toBeInstanceOf(FileFormatError);
    expect(e.message).toBe(`${f3}: truncated: 6046 bytes is not a whole number of 3073-byte records (1 label + 3x32x32 pixels)`);
    fs.writeFileSync(f3, bytes);
    fs.rmSync(path.join(dir, 'test_batch.bin'));
    expect(errorOf(() => loadDataset(`cifar10:${dir}`)).message).toBe(`${path.join(dir, 'test_batch.bin')}: missing`);
  });
});

/** A split of n 2x2x1 samples; sample i has pixels [i, i+1, i+2, i+3] (mod 256) and label i % 10. */
function makeSplit(n: number): Split {
  return {
    images: Uint8Array.from({ length: n * 4 }, (_, k) => (Math.floor(k / 4) + (k % 4)) % 256),
    labels: Uint8Array.from({ length: n }, (_, i) => i % 10),
    count: n,
  };
}

/** The sample ids (first pixel*255) of each batch. */
function order(split: Split, rng?: SeededRandom, batchSize = 4): number[] {
  const ids: number[] = [];
  for (const b of batchesOf(split, { batchSize, shuffle: rng })) {
    for (let i = 0; i < b.size; i++) ids.push(Math.round(b.x[i * 4] * 255));
  }
  return ids;
}

describe('batches', () => {
  test('sizes, contents and one-hot rows', () => {
    const split = makeSplit(10);
    const batches = [...batchesOf(split, { batchSize: 4, reuseBuffers: false })];
    expect(batches.map((b) => b.size)).toEqual([4, 4, 2]);
    expect(numBatches(10, 4)).toBe(3);
    expect(batches[2].x.length).toBe(8);
    expect(batches[2].labels.length).toBe(2);
    expect(batches[2].oneHot.length).toBe(20);
    expect(Array.from(batches[1].x.subarray(4, 8))).toEqual([5, 6, 7, 8].map((v) => Math.fround(v / 255)));
    expect(Array.from(batches[2].labels)).toEqual([8, 9]);
    for (const b of batches) {
      for (let i = 0; i < b.size; i++) {
        const row = Array.from(b.oneHot.subarray(i * 10, (i + 1) * 10));
        expect(row.reduce((a, v) => a + v, 0)).toBe(1);
        expect(row[b.labels[i]]).toBe(1);
      }
    }
    expect([...batchesOf(split, { batchSize: 4, dropRemainder: true })].map((b) => b.size)).toEqual([4, 4]);
    expect(numBatches(10, 4, true)).toBe(2);
    expect([...batchesOf(makeSplit(0), { batchSize: 4 })]).toHaveLength(0);
    expect(() => [...batchesOf(split, { batchSize: 0 })]).toThrow(ConfigError);
    expect(() => [...batchesOf(split, { batchSize: 4, numClasses: 5 })]).toThrow('label 5 of sample 5');
  });

  test('buffers are reused by default', () => {
    const split = makeSplit(10);
    const xs = [...batchesOf(split, { batchSize: 4 })].map((b) => b.x);
    expect(xs[0]).toBe(xs[1]);
    expect(xs[2].buffer).toBe(xs[0].buffer);
    // the last (partial) batch overwrote the start of the shared buffer
    expect(Math.round(xs[0][0] * 255)).toBe(8);
  });

  test('seeded shuffling: deterministic, seed-dependent, each sample once per epoch', () => {
    const split = makeSplit(50);
    const a = order(split, new SeededRandom(1));
    const b = order(split, new SeededRandom(1));
    const c = order(split, new SeededRandom(2));
    expect(a).toEqual(b);
    expect(a).not.toEqual(c);
    expect(a).not.toEqual(order(split));
    expect([...a].sort((p, q) => p - q)).toEqual(Array.from({ length: 50 }, (_, i) => i));
    expect(order(split)).toEqual(Array.from({ length: 50 }, (_, i) => i));
    // one generator across epochs: a new order each epoch, the same sequence of orders again
    const rng = new SeededRandom(1);
    const e1 = order(split, rng);
    const e2 = order(split, rng);
    expect(e1).toEqual(a);
    expect(e2).not.toEqual(e1);
    expect([...e2].sort((p, q) => p - q)).toEqual(Array.from({ length: 50 }, (_, i) => i));
    // labels travel with their images
    for (const bt of batchesOf(split, { batchSize: 7, shuffle: new SeededRandom(3) })) {
      for (let i = 0; i < bt.size; i++) expect(bt.labels[i]).toBe(Math.round(bt.x[i * 4] * 255) % 10);
    }
  });

  test('splitValidation', () => {
    const split = makeSplit(20);
    const { train, validation } = splitValidation(split, 0.25, new SeededRandom(7));
    expect(train.count).toBe(15);
    expect(validation.count).toBe(5);
    expect(validation.images.length).toBe(20);
    const ids = (s: Split) => Array.from({ length: s.count }, (_, i) => s.images[i * 4]);
    const all = [...ids(train), ...ids(validation)].sort((p, q) => p - q);
    expect(all).toEqual(Array.from({ length: 20 }, (_, i) => i));
    expect(ids(train)).toEqual([...ids(train)].sort((p, q) => p - q));
    for (let i = 0; i < validation.count; i++) expect(validation.labels[i]).toBe(validation.images[i * 4] % 10);
    const again = splitValidation(split, 0.25, new SeededRandom(7));
    expect(ids(again.validation)).toEqual(ids(validation));
    const other = splitValidation(split, 0.25, new SeededRandom(8));
    expect(ids(other.validation)).not.toEqual(ids(validation));
    const none = splitValidation(split, 0, new SeededRandom(7));
    expect(none.validation.count).toBe(0);
    expect(none.validation.images.length).toBe(0);
    expect(none.train.count).toBe(20);
    expect(() => splitValidation(split, 1, new SeededRandom(7))).toThrow(ConfigError);
    expect(() => splitValidation(split, -0.1, new SeededRandom(7))).toThrow(ConfigError);
  });
});

describe.each(['wasm', 'cpu'])('toTfDataset on %s', (backend) => {
  beforeAll(async () => {
    // No "install tfjs-node" banner from the cpu backend (IS_TEST also turns on kernel leak
    // checks, which flag the wasm backend's fusedMatMul, so only for cpu).
    tf.env().set('IS_TEST', backend === 'cpu');
    expect(await tf.setBackend(backend)).toBe(true);
    await tf.ready();
  });

  async function epochIds(ds: tf.data.Dataset<{ xs: tf.Tensor4D; ys: tf.Tensor2D }>): Promise<number[]> {
    const ids: number[] = [];
    await ds.forEachAsync(({ xs, ys }) => {
      const x = xs.dataSync();
      for (let i = 0; i < xs.shape[0]; i++) ids.push(Math.round(x[i * 4] * 255));
      xs.dispose();
      ys.dispose();
    });
    return ids;
  }

  test('batched tensors of the right shapes', async () => {
    const split = makeSplit(10);
    const ds = toTfDataset(split, { batchSize: 4, numClasses: 10, imageShape: [2, 2, 1] });
    const it = await ds.iterator();
    const shapes: number[][][] = [];
    for (;;) {
      const r = await it.next();
      if (r.done) break;
      shapes.push([r.value.xs.shape, r.value.ys.shape]);
      expect(r.value.xs.dtype).toBe('float32');
      const ys = r.value.ys.arraySync();
      expect(ys[0].indexOf(1)).toBe((shapes.length - 1) * 4 % 10);
      tf.dispose(r.value);
    }
    expect(shapes).toEqual([
      [[4, 2, 2, 1], [4, 10]],
      [[4, 2, 2, 1], [4, 10]],
      [[2, 2, 2, 1], [2, 10]],
    ]);
    expect(() => toTfDataset(split, { batchSize: 4, numClasses: 10, imageShape: [3, 2, 1] })).toThrow(ConfigError);
  });

  test('a new seeded order each epoch, reproducible, no tensor leak', async () => {
    const split = makeSplit(30);
    const opts = { batchSize: 8, numClasses: 10, imageShape: [2, 2, 1] as [number, number, number], seed: 5 };
    const ds = toTfDataset(split, opts);
    await ds.iterator(); // made and never read (as fitDataset does): uses no epoch number
    const before = tf.memory().numTensors;
    const e0 = await epochIds(ds);
    const e1 = await epochIds(ds);
    expect(tf.memory().numTensors).toBe(before);
    const sorted = Array.from({ length: 30 }, (_, i) => i);
    expect([...e0].sort((p, q) => p - q)).toEqual(sorted);
    expect([...e1].sort((p, q) => p - q)).toEqual(sorted);
    expect(e0).not.toEqual(e1);
    // epoch k uses SeededRandom(seed).fork(`epoch-k`)
    expect(e0).toEqual(order(split, new SeededRandom(5).fork('epoch-0'), 8));
    expect(e1).toEqual(order(split, new SeededRandom(5).fork('epoch-1'), 8));
    const again = toTfDataset(split, opts);
    expect(await epochIds(again)).toEqual(e0);
    const resumed = toTfDataset(split, { ...opts, firstEpoch: 1 });
    expect(await epochIds(resumed)).toEqual(e1);
    expect(await epochIds(toTfDataset(split, { ...opts, seed: undefined }))).toEqual(sorted);
  });

  test('model.fitDataset trains on it', async () => {
    const split = makeSplit(40);
    const model = tf.sequential({
      layers: [tf.layers.flatten({ inputShape: [2, 2, 1] }), tf.layers.dense({ units: 10, activation: 'softmax' })],
    });
    model.compile({ optimizer: 'sgd', loss: 'categoricalCrossentropy' });
    const before = tf.memory().numTensors;
    const h = await model.fitDataset(toTfDataset(split, { batchSize: 16, numClasses: 10, imageShape: [2, 2, 1], seed: 1 }), {
      epochs: 2,
      verbose: 0,
    });
    expect(h.history.loss).toHaveLength(2);
    expect(Number.isFinite(h.history.loss[1] as number)).toBe(true);
    expect(tf.memory().numTensors).toBe(before);
    model.dispose();
  });
});
