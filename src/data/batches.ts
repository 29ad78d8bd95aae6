// Batches made straight from the uint8 typed arrays of a Split. Slicing a batch out of one big
// tfjs tensor costs 100-200 ms a step on wasm; copying b samples through a 256-entry lookup table
// costs well under a millisecond.
import { tf } from '../tf';
import { ConfigError } from '../errors';
import { SeededRandom, SeedLike } from '../random';
import type { Split } from './datasets';

export interface Batch {
  /** size*h*w*c pixels scaled to [0,1] (pixel/255), HWC order per sample. */
  x: Float32Array;
  /** size class indices. */
  labels: Int32Array;
  /** size*numClasses one-hot rows. */
  oneHot: Float32Array;
  /** Samples in this batch (batchSize, or fewer for the last one). */
  size: number;
}

export interface BatchOptions {
  batchSize: number;
  /** Shuffle with this generator (one permutation drawn per call); in file order if absent. */
  shuffle?: SeededRandom;
  /** Leave out the last batch if it is smaller than batchSize. */
  dropRemainder?: boolean;
  /** Width of the one-hot rows; default 10. */
  numClasses?: number;
  /**
   * Reuse one set of buffers for every batch (default true): a yielded batch's arrays are
   * overwritten when the next batch is made, so use (or copy) them before asking for the next.
   * Turn it off to keep batches, or to hand the arrays to a backend that keeps the array it is
   * given instead of copying it (tf.tensor on the cpu backend aliases a typed array of the
   * tensor's dtype; wasm and tfjs-node copy).
   */
  reuseBuffers?: boolean;
}

// pixel/255 for every byte value: one table lookup a pixel instead of a division.
const SCALE = Float32Array.from({ length: 256 }, (_, i) => i / 255);

/** Values a sample holds (h*w*c), from the split itself. */
export function sampleSize(split: Split): number {
  if (split.count === 0) return 0;
  const size = split.images.length / split.count;
  if (!Number.isInteger(size) || split.labels.length !== split.count) {
    throw new ConfigError(
      'split',
      `inconsistent: ${split.images.length} pixels, ${split.labels.length} labels, count ${split.count}`,
    );
  }
  return size;
}

/** The first n samples of a split (all when it has fewer), as views: nothing is copied. */
export function firstSamples(split: Split, n: number): Split {
  const count = Math.min(n, split.count);
  const size = sampleSize(split);
  return { images: split.images.subarray(0, count * size), labels: split.labels.subarray(0, count), count };
}

/** Copies the given samples into a new Split, in the given order. */
export function selectSamples(split: Split, indices: ArrayLike<number>): Split {
  const size = sampleSize(split);
  const images = new Uint8Array(indices.length * size);
  const labels = new Uint8Array(indices.length);
  for (let i = 0; i < indices.length; i++) {
    const s = indices[i];
    images.set(split.images.subarray(s * size, (s + 1) * size), i * size);
    labels[i] = split.labels[s];
  }
  return { images, labels, count: indices.length };
}

/**
 * Holds out round(count*fraction) samples, drawn with `rng`, as a validation split. Both parts
 * keep the original sample order (shuffling is the batcher's job). fraction 0: empty validation.
 */
export function splitValidation(
  split: Split,
  fraction: number,
  rng: SeededRandom,
): { train: Split; validation: Split } {
  if (!(fraction >= 0 && fraction < 1)) {
    throw new ConfigError('validation fraction', `must be in [0, 1), got ${fraction}`);
  }
  const nVal = Math.round(split.count * fraction);
  if (split.count > 0 && nVal >= split.count) {
    throw new ConfigError('validation fraction', `${fraction} of ${split.count} samples leaves none to train on`);
  }
  const order = rng.shuffle(Int32Array.from({ length: split.count }, (_, i) => i));
  const valIdx = order.slice(0, nVal).sort();
  const trainIdx = order.slice(nVal).sort();
  return { train: selectSamples(split, trainIdx), validation: selectSamples(split, valIdx) };
}

/** Number of batches batchesOf will yield. */
export function numBatches(count: number, batchSize: number, dropRemainder = false): number {
  return dropRemainder ? Math.floor(count / batchSize) : Math.ceil(count / batchSize);
}

/** The sample order of one epoch: 0..count-1, shuffled with `rng` when given (one permutation a call). */
export function epochOrder(count: number, rng?: SeededRandom): Int32Array {
  const order = Int32Array.from({ length: count }, (_, i) => i);
  if (rng) rng.shuffle(order);
  return order;
}

/**
 * Fills `batch` (x, labels, oneHot; at least `n` samples long) with the samples
 * order[start .. start + n) of the split. `size` is sampleSize(split).
 */
export function fillBatch(split: Split, order: ArrayLike<number>, start: number, n: number, batch: Batch, size: number, numClasses: number): void {
  const { images, labels } = split;
  const { x, oneHot } = batch;
  oneHot.fill(0, 0, n * numClasses);
  for (let i = 0; i < n; i++) {
    const s = order[start + i];
    const src = s * size;
    const dst = i * size;
    for (let k = 0; k < size; k++) x[dst + k] = SCALE[images[src + k]];
    const label = labels[s];
    if (label >= numClasses) {
      throw new ConfigError('numClasses', `label ${label} of sample ${s} does not fit ${numClasses} classes`);
    }
    batch.labels[i] = label;
    oneHot[i * numClasses + label] = 1;
  }
}

/** Buffers for a batch of up to `b` samples of `size` values. */
export function allocBatch(b: number, size: number, numClasses: number): Batch {
  return { x: new Float32Array(b * size), labels: new Int32Array(b), oneHot: new Float32Array(b * numClasses), size: b };
}

/** The first `n` samples of the buffers of `batch`, as views. */
export function batchPrefix(batch: Batch, n: number, size: number, numClasses: number): Batch {
  if (n === batch.size) return batch;
  return { x: batch.x.subarray(0, n * size), labels: batch.labels.subarray(0, n), oneHot: batch.oneHot.subarray(0, n * numClasses), size: n };
}

/** One pass (epoch) over the split in batches; see BatchOptions for buffer reuse. */
export function* batchesOf(split: Split, opts: BatchOptions): Generator<Batch, void, undefined> {
  const { batchSize, dropRemainder = false, numClasses = 10, reuseBuffers = true } = opts;
  if (!Number.isInteger(batchSize) || batchSize < 1) {
    throw new ConfigError('batchSize', `must be a positive integer, got ${batchSize}`);
  }
  if (!Number.isInteger(numClasses) || numClasses < 1) {
    throw new ConfigError('numClasses', `must be a positive integer, got ${numClasses}`);
  }
  const size = sampleSize(split);
  const order = epochOrder(split.count, opts.shuffle);
  const shared = reuseBuffers ? allocBatch(batchSize, size, numClasses) : null;
  for (let start = 0; start < split.count; start += batchSize) {
    const b = Math.min(batchSize, split.count - start);
    if (b < batchSize && dropRemainder) return;
    const batch = shared ? batchPrefix(shared, b, size, numClasses) : allocBatch(b, size, numClasses);
    fillBatch(split, order, start, b, batch, size, numClasses);
    yield batch;
  }
}

export interface TfDatasetOptions {
  batchSize: number;
  /** Shuffle with a new seeded order each epoch; in file order if absent. */
  seed?: SeedLike;
  numClasses: number;
  imageShape: [number, number, number];
  dropRemainder?: boolean;
  /** Number the first epoch gets (to resume a run at the same shuffle order); default 0. */
  firstEpoch?: number;
}

/**
 * A tf.data.Dataset of ready-made batches {xs: [b,h,w,c], ys: one-hot [b,numClasses]}, for
 * model.fitDataset. Each pass over it is one epoch; epoch k is shuffled with
 * new SeededRandom(seed).fork(`epoch-${k}`). Epochs are numbered when a pass takes its first
 * batch, so an iterator made and never read (fitDataset makes one) does not use up a number.
 * The consumer owns the yielded tensors and must dispose them (fitDataset does).
 */
export function toTfDataset(split: Split, opts: TfDatasetOptions): tf.data.Dataset<{ xs: tf.Tensor4D; ys: tf.Tensor2D }> {
  const { batchSize, seed, numClasses, imageShape, dropRemainder = false } = opts;
  const [h, w, c] = imageShape;
  if (split.count > 0 && sampleSize(split) !== h * w * c) {
    throw new ConfigError('imageShape', `${imageShape.join('x')} does not match the split's ${sampleSize(split)} values a sample`);
  }
  let epoch = opts.firstEpoch ?? 0;
  const base = seed === undefined ? undefined : new SeededRandom(seed);
  return tf.data.generator(function* () {
    const shuffle = base?.fork(`epoch-${epoch}`);
    epoch++;
    // Fresh arrays per batch: tf.tensor may keep the array it is given (cpu backend).
    for (const batch of batchesOf(split, { batchSize, shuffle, dropRemainder, numClasses, reuseBuffers: false })) {
      yield {
        xs: tf.tensor4d(batch.x, [batch.size, h, w, c]),
        ys: tf.tensor2d(batch.oneHot, [batch.size, numClasses]),
      };
    }
  });
}
