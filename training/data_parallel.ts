// Data-parallel training on worker threads (`train --workers W`). Every thread holds a replica of
// the model and of the optimizer: the main thread is replica 0, W - 1 worker threads
// (data_parallel_worker.ts) the others. Each step every replica:
//   1. takes its share of the step's batch: the batch of the single loop (the same seeded order),
//      cut into W contiguous shares whose sizes differ by at most one;
//   2. computes the gradient of sum(cross-entropy over its share) / (batch size), so that the sum
//      of the shares' gradients is the gradient of the mean loss of the whole batch;
//   3. writes it into its slot of one SharedArrayBuffer and waits at a barrier;
//   4. sums the W slots in replica order (the same float additions in every thread) and applies
//      that gradient with its own optimizer, then the layers' weight clips.
// So every replica applies the same update to the same weights: the replicas stay bit-identical,
// and the result is that of one step on the whole batch (up to float rounding: the sum of the
// shares' gradients is not added up in the order one thread would). The same seed and W give the
// same numbers.
//
// The gradient slots are double-buffered (step parity), so one barrier a step suffices: a replica
// writes step t + 2's slot only after the barrier of step t + 1, which every replica passes after
// reading step t's slots.
//
// Device-variation noise (layers/variation.ts) is drawn from each layer's seed and noise counter:
// every replica does one noisy forward pass a step (a replica with an empty share advances its
// counters without one), so every share of a batch sees the same perturbed weights, as the whole
// batch does in the single loop.
//
// BatchNormalization computes its batch statistics per share (as torch DDP without SyncBN: a share
// of 16 normalizes with its own mean and variance). The moving statistics (every non-trainable
// float32 weight) are averaged over the replicas at the end of each epoch, in float64 and in
// replica order, and every replica takes the average; a moving average being linear, that is the
// moving average of the per-share statistics averaged over the shares.
//
// A replica that fails ends the run: a worker posts its error (or exits), the main thread sets
// the abort word of the shared memory and wakes every waiter, and fit() rejects with an error
// naming the worker. No barrier waits on a dead thread: waits time out every POLL_MS to look at
// the abort word (workers) or the failure (the main thread, whose waits are asynchronous so that
// the workers' messages and exits get through).
import { Worker } from 'worker_threads';
import { tf } from '../src/tf';
import { backendInfo } from '../src/backend';
import { SerializedError, deserializeError, workerScript } from '../src/threads';
import type { Split } from '../src/data/datasets';
import { Batch, allocBatch, batchPrefix, fillBatch, sampleSize } from '../src/data/batches';
import { applyWeightClips, getNoiseCounters, setNoiseCounters } from '../layers';
import { OptimizerName, setLearningRate, trainableVariables } from './optimizers';
import { OptimizerState, optimizerState } from './checkpoint';
import type { ScheduleConfig } from './schedule';

/** Control words of the shared memory (Int32). */
const ARRIVED = 0;
const GENERATION = 1;
export const ABORT = 2;
const CONTROL_WORDS = 4;
/** How long a barrier wait sleeps before it looks for a failure again. */
const POLL_MS = 200;
/** How long the main thread blocks at a barrier before it waits asynchronously (longer than a step's wait for the slower share). */
const MAIN_BLOCK_MS = 50;

/** The memory every replica shares. */
export interface SharedMemory {
  /** Int32 x CONTROL_WORDS: the barrier and the abort word. */
  control: SharedArrayBuffer;
  /** Float32, 2 (step parity) x W x P: each replica's gradient of a step. */
  grads: SharedArrayBuffer;
  /** Float64, 2 x W x 2: each replica's loss (a share of the batch mean) and correct predictions. */
  stats: SharedArrayBuffer;
  /** Float32, W x Q: each replica's non-trainable weights at the end of an epoch. */
  nonTrainable: SharedArrayBuffer;
}

/** What shapes the steps: the same in every thread. */
export interface ReplicaPlan {
  workers: number;
  batchSize: number;
  seed: number;
  schedule: ScheduleConfig;
  optimizer: OptimizerName;
  learningRate: number;
  /** Epochs [startEpoch, endEpoch) run here; the global step starts at startStep. */
  startEpoch: number;
  endEpoch: number;
  startStep: number;
}

export interface ReplicaData {
  train: Split;
  imageShape: [number, number, number];
  numClasses: number;
}

/** What a worker thread starts with (structured clone; the typed arrays over shared memory stay shared). */
export interface ReplicaWorkerData {
  index: number;
  plan: ReplicaPlan;
  memory: SharedMemory;
  data: ReplicaData;
  /** The model: its topology (model.toJSON) and every weight in model.weights order. */
  topology: unknown;
  weights: { name: string; shape: number[]; dtype: string; data: Float32Array | Int32Array | Uint8Array }[];
  noiseCounters: Record<string, number>;
  /** The optimizer's state when the run continues one (resume), else null: a fresh optimizer. */
  optimizer: OptimizerState | null;
  backend: string;
}

/** What a worker says: ready to step, or its error and the global step it was at (null: while starting). */
export type ReplicaReply = { type: 'ready' } | { type: 'error'; error: SerializedError; step: number | null };

/** Thrown in a worker whose run was stopped by the main thread (it then leaves quietly). */
export class ReplicaAborted extends Error {
  constructor() {
    super('data-parallel training was stopped');
  }
}

type WaitAsync = (a: Int32Array, i: number, v: number, t: number) => { async: false; value: string } | { async: true; value: Promise<string> };
const waitAsync = (Atomics as unknown as { waitAsync: WaitAsync }).waitAsync;

/** A reusable barrier of `parties` threads over the control words (generation counting). */
class Barrier {
  constructor(
    private readonly control: Int32Array,
    private readonly parties: number,
    /** Throws when the run failed or was stopped. */
    private readonly check: () => void,
    /** Block the thread (a worker: nothing else to do) or wait asynchronously (the main thread). */
    private readonly blocking: boolean,
  ) {}

  async wait(): Promise<void> {
    this.check();
    const c = this.control;
    const gen = Atomics.load(c, GENERATION);
    if (Atomics.add(c, ARRIVED, 1) === this.parties - 1) {
      Atomics.store(c, ARRIVED, 0);
      Atomics.add(c, GENERATION, 1);
      Atomics.notify(c, GENERATION);
      return;
    }
    // The main thread first blocks too, for as long as a step normally waits (an asynchronous wait
    // resumes through the event loop: measured, it cost mcnn ~20% of the 2-thread speed), then
    // waits asynchronously, so that a worker's error or exit event can be handled.
    if (!this.blocking) Atomics.wait(c, GENERATION, gen, MAIN_BLOCK_MS);
    while (Atomics.load(c, GENERATION) === gen) {
      this.check();
      if (this.blocking) Atomics.wait(c, GENERATION, gen, POLL_MS);
      else {
        const r = waitAsync(c, GENERATION, gen, POLL_MS);
        if (r.async) await r.value;
      }
    }
  }
}

/** Floats of the gradient (P) and of the averaged non-trainable weights (Q) of a model. */
function layoutOf(model: tf.LayersModel): { P: number; Q: number } {
  return {
    P: model.trainableWeights.reduce((n, w) => n + w.shape.reduce((a, b) => a! * b!, 1)!, 0),
    Q: averagedWeights(model).reduce((n, w) => n + w.shape.reduce((a, b) => a! * b!, 1)!, 0),
  };
}

function averagedWeights(model: tf.LayersModel): tf.LayerVariable[] {
  return model.nonTrainableWeights.filter((w) => w.dtype === 'float32');
}

/** The share of replica `i` of W in a batch of `size`: [offset, count), sizes differing by at most one. */
export function shareOf(size: number, workers: number, i: number): [number, number] {
  const base = Math.floor(size / workers);
  const rem = size % workers;
  return [i * base + Math.min(i, rem), base + (i < rem ? 1 : 0)];
}

/** One replica: its model, optimizer and view of the shared memory. */
export class Replica {
  private readonly vars: tf.Variable[];
  private readonly offsets: number[];
  private readonly P: number;
  private readonly averaged: tf.LayerVariable[];
  private readonly Q: number;
  private readonly grads: Float32Array;
  private readonly stats: Float64Array;
  private readonly nonTrainable: Float32Array;
  private readonly sum: Float32Array;
  private readonly batch: Batch;
  private readonly size: number;
  private readonly barrier: Barrier;
  private steps = 0;

  constructor(
    readonly model: tf.LayersModel,
    readonly optimizer: tf.Optimizer,
    readonly index: number,
    readonly plan: ReplicaPlan,
    memory: SharedMemory,
    private readonly data: ReplicaData,
    check: () => void,
    blocking: boolean,
  ) {
    const W = plan.workers;
    this.vars = trainableVariables(model);
    this.offsets = [];
    let o = 0;
    for (const v of this.vars) {
      this.offsets.push(o);
      o += v.size;
    }
    this.P = o;
    this.averaged = averagedWeights(model);
    this.Q = layoutOf(model).Q;
    this.grads = new Float32Array(memory.grads);
    this.stats = new Float64Array(memory.stats);
    this.nonTrainable = new Float32Array(memory.nonTrainable);
    if (this.grads.length !== 2 * W * this.P || this.nonTrainable.length !== W * this.Q) {
      throw new Error(`data-parallel replica ${index}: its model has ${this.P} trainable and ${this.Q} averaged values, the shared memory was made for another model`);
    }
    this.sum = new Float32Array(this.P);
    this.size = sampleSize(data.train);
    this.batch = allocBatch(Math.ceil(plan.batchSize / W), this.size, data.numClasses);
    this.barrier = new Barrier(new Int32Array(memory.control), W, check, blocking);
  }

  /**
   * One step on the batch order[start .. start + size): this replica's share, then the update
   * with the summed gradient. Returns the batch's mean loss and its correct predictions.
   */
  async step(order: Int32Array, start: number, size: number, lr: number): Promise<{ loss: number; hits: number }> {
    const { model, optimizer, vars, offsets, P, index } = this;
    const W = this.plan.workers;
    const { imageShape, numClasses } = this.data;
    const parity = this.steps++ & 1;
    const slot = this.grads.subarray((parity * W + index) * P, (parity * W + index + 1) * P);
    const [lo, n] = shareOf(size, W, index);
    let loss = 0;
    let hits = 0;
    setLearningRate(optimizer, lr);
    if (n > 0) {
      const b = batchPrefix(this.batch, n, this.size, numClasses);
      fillBatch(this.data.train, order, start + lo, n, b, this.size, numClasses);
      const x = tf.tensor4d(b.x, [n, ...imageShape]);
      const y = tf.tensor2d(b.oneHot, [n, numClasses]);
      const { value, grads } = tf.variableGrads(() => {
        const logits = model.apply(x, { training: true }) as tf.Tensor2D;
        hits = tf.tidy(() => tf.equal(tf.argMax(logits, 1), tf.argMax(y, 1)).sum().dataSync()[0]);
        // this share's part of the batch mean: the shares' gradients add up to the batch's
        return tf.div(tf.losses.softmaxCrossEntropy(y, logits, undefined, 0, tf.Reduction.SUM), size) as tf.Scalar;
      }, vars);
      loss = value.dataSync()[0];
      value.dispose();
      x.dispose();
      y.dispose();
      vars.forEach((v, k) => {
        const g = grads[v.name];
        if (g) slot.set(g.dataSync() as Float32Array, offsets[k]);
        else slot.fill(0, offsets[k], offsets[k] + v.size);
      });
      for (const g of Object.values(grads)) g.dispose();
    } else {
      // no samples here (a batch smaller than W): no gradient, but the noise sequence moves on
      slot.fill(0);
      const counters = getNoiseCounters(model);
      for (const k of Object.keys(counters)) counters[k]++;
      setNoiseCounters(model, counters);
    }
    const s = (parity * W + index) * 2;
    this.stats[s] = loss;
    this.stats[s + 1] = hits;
    await this.barrier.wait();

    // the summed gradient, added in replica order (the same additions in every thread)
    const base = parity * W * P;
    const sum = this.sum;
    sum.set(this.grads.subarray(base, base + P));
    for (let k = 1; k < W; k++) {
      const o = base + k * P;
      for (let j = 0; j < P; j++) sum[j] += this.grads[o + j];
    }
    let totalLoss = 0;
    let totalHits = 0;
    for (let k = 0; k < W; k++) {
      totalLoss += this.stats[(parity * W + k) * 2];
      totalHits += this.stats[(parity * W + k) * 2 + 1];
    }
    // in the variables' order: optimizer state is kept by position
    const named = vars.map((v, k) => ({ name: v.name, tensor: tf.tensor(sum.subarray(offsets[k], offsets[k] + v.size), v.shape) }));
    optimizer.applyGradients(named);
    named.forEach((g) => g.tensor.dispose());
    applyWeightClips(model);
    return { loss: totalLoss, hits: totalHits };
  }

  /** At the end of an epoch: every replica takes the average of the replicas' non-trainable weights. */
  async endEpoch(): Promise<void> {
    if (this.Q === 0) return;
    const { Q, index } = this;
    const W = this.plan.workers;
    let o = index * Q;
    for (const w of this.averaged) {
      const v = w.read().dataSync() as Float32Array;
      this.nonTrainable.set(v, o);
      o += v.length;
    }
    await this.barrier.wait();
    const avg = new Float64Array(Q);
    for (let k = 0; k < W; k++) {
      const src = this.nonTrainable.subarray(k * Q, (k + 1) * Q);
      for (let j = 0; j < Q; j++) avg[j] += src[j];
    }
    // float64 sum, one rounding: W equal values average to exactly that value
    const out = Float32Array.from(avg, (v) => v / W);
    o = 0;
    for (const w of this.averaged) {
      const n = w.shape.reduce((a, b) => a! * b!, 1)!;
      const t = tf.tensor(out.subarray(o, o + n), w.shape as number[]);
      w.write(t);
      t.dispose();
      o += n;
    }
  }
}

/** The data-parallel run as fit() drives it: replica 0 here, the others in worker threads. */
export interface DataParallelRun {
  replica: Replica;
  /** Seconds the workers took to start (backend, model, optimizer), before the first step. */
  startSeconds: number;
  /** Stop the workers (after the last step, or on an error). */
  close(): Promise<void>;
}

function shareTypedArray<T extends Uint8Array>(a: T): T {
  const shared = new Uint8Array(new SharedArrayBuffer(a.byteLength));
  shared.set(a);
  return shared as T;
}

/**
 * Starts W - 1 worker threads, each with a replica of `model` and `optimizer` (their state as it is
 * now: a resumed run continues in every thread), and resolves when all are ready. The main thread's
 * replica is returned; drive every step through it, in the order the workers take them (the loop
 * of data_parallel_worker.ts, which is offline.ts fit's).
 */
export async function startDataParallel(model: tf.LayersModel, optimizer: tf.Optimizer, data: ReplicaData, plan: ReplicaPlan): Promise<DataParallelRun> {
  const W = plan.workers;
  if (!Number.isInteger(W) || W < 2) throw new Error(`startDataParallel: workers must be an integer >= 2, got ${W}`);
  const t0 = performance.now();
  const script = workerScript('training/data_parallel_worker.js', 'data-parallel training');
  const { P, Q } = layoutOf(model);
  const memory: SharedMemory = {
    control: new SharedArrayBuffer(4 * CONTROL_WORDS),
    grads: new SharedArrayBuffer(4 * 2 * W * P),
    stats: new SharedArrayBuffer(8 * 2 * W * 2),
    nonTrainable: new SharedArrayBuffer(4 * W * Q),
  };
  const control = new Int32Array(memory.control);
  const train: Split = { images: shareTypedArray(data.train.images), labels: shareTypedArray(data.train.labels), count: data.train.count };
  const base = {
    plan,
    memory,
    data: { train, imageShape: data.imageShape, numClasses: data.numClasses },
    topology: model.toJSON(null, false),
    weights: model.weights.map((w) => ({ name: w.originalName, shape: w.shape as number[], dtype: w.dtype, data: w.read().dataSync() as Float32Array })),
    noiseCounters: getNoiseCounters(model),
    optimizer: plan.startStep > 0 ? await optimizerState(optimizer) : null,
    backend: backendInfo()?.name ?? tf.getBackend(),
  };

  let failure: Error | null = null;
  let closed = false;
  const workers: Worker[] = [];
  const abort = () => {
    Atomics.store(control, ABORT, 1);
    Atomics.notify(control, GENERATION);
  };
  let onFailure: (e: Error) => void = () => {};
  const fail = (e: Error) => {
    if (failure || closed) return;
    failure = e;
    abort();
    onFailure(e);
  };
  const who = (i: number) => `data-parallel training: worker ${i} (of ${W} threads; the main thread is worker 0)`;
  let ready = 0;
  const allReady = new Promise<void>((resolve, reject) => {
    onFailure = reject;
    for (let i = 1; i < W; i++) {
      const workerData: ReplicaWorkerData = { index: i, ...base };
      let w: Worker;
      try {
        // env: this thread's view of it (what a test sets), copied into the worker
        w = new Worker(script, { workerData, env: { ...process.env } });
      } catch (e) {
        fail(new Error(`${who(i)} could not start: ${(e as Error).message}`));
        return;
      }
      workers.push(w);
      w.on('message', (m: ReplicaReply) => {
        if (m.type === 'ready') {
          if (++ready === W - 1) resolve();
          return;
        }
        const inner = deserializeError(m.error, `in worker ${i}`);
        const when = m.step === null ? 'while starting' : `at step ${m.step}`;
        const e = new Error(`${who(i)} failed ${when}: ${m.error.name && m.error.name !== 'Error' ? `${m.error.name}: ` : ''}${m.error.message}`);
        e.stack = inner.stack;
        fail(e);
      });
      w.on('error', (e) => fail(new Error(`${who(i)} failed: ${e instanceof Error ? e.message : String(e)}`)));
      // a worker leaves after the last step; before it (or with an error code) is a failure, which
      // aborts the run at the next barrier (after the last one, it changes nothing)
      w.on('exit', (code) => {
        if (!closed) fail(new Error(`${who(i)} stopped (exit code ${code}) before the training was done`));
      });
    }
  });
  const stopAll = async () => {
    closed = true;
    abort();
    await Promise.all(workers.map((w) => w.terminate().catch(() => 0)));
  };
  try {
    await allReady;
  } catch (e) {
    await stopAll();
    throw e;
  }
  const check = () => {
    if (failure) throw failure;
  };
  const replica = new Replica(model, optimizer, 0, plan, memory, data, check, false);
  return { replica, startSeconds: (performance.now() - t0) / 1000, close: stopAll };
}
