// The offline (ex-situ) training loop: seeded shuffling, a learning-rate schedule, validation,
// progress, a checkpoint after each epoch and resume. It feeds batches from typed arrays (slicing
// them out of one big tensor costs 100-200 ms a step on wasm) and runs its own step with
// optimizer.minimize, which lets it apply the layers' weight clips after every update.
import { tf } from '../src/tf';
import { ConfigError } from '../src/errors';
import { SeededRandom } from '../src/random';
import type { Split } from '../src/data/datasets';
import { allocBatch, batchesOf, batchPrefix, epochOrder, fillBatch, sampleSize } from '../src/data/batches';
import { applyWeightClips, getNoiseCounters, setNoiseCounters } from '../layers';
import { learningRateAt, ScheduleName, SCHEDULES } from './schedule';
import { ProgressReporter, silentProgress } from './progress';
import { writeCheckpoint, readCheckpoint, LoopState } from './checkpoint';
import { OPTIMIZERS, OptimizerName, makeOptimizer, setLearningRate, trainableVariables } from './optimizers';
import { startDataParallel, DataParallelRun } from './data_parallel';

export { OPTIMIZERS, makeOptimizer };
export type { OptimizerName };

export interface TrainConfig {
  epochs: number;
  batchSize: number;
  learningRate: number;
  optimizer: OptimizerName;
  schedule: ScheduleName;
  /** Seed of the shuffling (initial weights are seeded where the model is built). */
  seed: number;
  /** Write a checkpoint into this folder after each epoch. */
  checkpointDir?: string;
  /** What shaped the run (model, dataset, options), recorded in each checkpoint for the checks of a resume. */
  checkpointRun?: Record<string, unknown>;
  progress?: ProgressReporter;
  /** Stop after this many epochs (the schedule still spans `epochs`), e.g. to continue later with resume. */
  stopAfterEpoch?: number;
  /** Called after each epoch. */
  onEpoch?: (record: EpochRecord) => void;
  /**
   * Threads the steps run on (data_parallel.ts; default 1: this thread). Each step is still one
   * update on a batch of batchSize, cut into `workers` shares; at most batchSize.
   */
  workers?: number;
}

export interface EpochRecord {
  epoch: number;
  loss: number;
  trainAccuracy: number;
  validationAccuracy: number | null;
  validationLoss: number | null;
  learningRate: number;
  seconds: number;
  samplesPerSec: number;
}

export interface TrainResult {
  history: EpochRecord[];
  /** Training samples per second over all epochs of this run (steps only, no evaluation). */
  trainSamplesPerSec: number;
  trainSeconds: number;
  steps: number;
  resumedFromEpoch: number;
  /** Threads the steps ran on. */
  workers: number;
  /** Seconds the worker threads took to start (not in trainSeconds; 0 for one thread). */
  workerStartSeconds: number;
}

export const DEFAULT_TRAIN: Omit<TrainConfig, 'seed'> = {
  epochs: 1,
  batchSize: 64,
  learningRate: 0.01,
  optimizer: 'adam',
  schedule: 'cosine',
};

export function validateTrainConfig(cfg: TrainConfig): void {
  const posInt = (k: keyof TrainConfig) => {
    const v = cfg[k];
    if (!Number.isInteger(v) || (v as number) < 1) throw new ConfigError(String(k), `must be a positive integer, got ${String(v)}`);
  };
  posInt('epochs');
  posInt('batchSize');
  if (cfg.workers !== undefined) {
    posInt('workers');
    if (cfg.workers! > cfg.batchSize) throw new ConfigError('workers', `${cfg.workers} threads cannot share a batch of ${cfg.batchSize} (give at most ${cfg.batchSize})`);
  }
  if (!(cfg.learningRate > 0) || !Number.isFinite(cfg.learningRate)) throw new ConfigError('learningRate', `must be a positive number, got ${cfg.learningRate}`);
  if (!OPTIMIZERS.includes(cfg.optimizer)) throw new ConfigError('optimizer', `unknown '${cfg.optimizer}' (choose ${OPTIMIZERS.join(', ')})`);
  if (!SCHEDULES.includes(cfg.schedule)) throw new ConfigError('schedule', `unknown '${cfg.schedule}' (choose ${SCHEDULES.join(', ')})`);
}

export interface EvalResult {
  accuracy: number;
  loss: number;
  count: number;
  correct: number;
  seconds: number;
}

/**
 * Accuracy and mean cross-entropy of `model` on a split (inference mode: no noise, BN moving stats).
 * `progress` reports the samples done under `label` (default 'evaluate').
 */
export function evaluateModel(
  model: tf.LayersModel,
  split: Split,
  imageShape: [number, number, number],
  numClasses: number,
  batchSize = 500,
  opts: { progress?: ProgressReporter; label?: string } = {},
): EvalResult {
  const t0 = performance.now();
  let correct = 0;
  let lossSum = 0;
  let done = 0;
  const progress = opts.progress ?? silentProgress;
  progress.start(opts.label ?? 'evaluate', split.count);
  for (const b of batchesOf(split, { batchSize, numClasses })) {
    const [c, l] = tf.tidy(() => {
      const x = tf.tensor4d(b.x, [b.size, ...imageShape]);
      const logits = model.apply(x, { training: false }) as tf.Tensor2D;
      const labels = tf.tensor1d(b.labels, 'int32');
      const hits = tf.equal(tf.argMax(logits, 1), labels).sum();
      const y = tf.oneHot(labels, numClasses);
      const loss = tf.losses.softmaxCrossEntropy(y, logits, undefined, 0, tf.Reduction.SUM);
      return [hits.dataSync()[0], loss.dataSync()[0]];
    });
    correct += c;
    lossSum += l;
    done += b.size;
    progress.update(done, { acc: correct / done });
  }
  progress.stop();
  const count = split.count;
  return { accuracy: count ? correct / count : NaN, loss: count ? lossSum / count : NaN, count, correct, seconds: (performance.now() - t0) / 1000 };
}

export interface FitInput {
  train: Split;
  validation: Split | null;
  imageShape: [number, number, number];
  numClasses: number;
}

/** The sample order of epoch `epoch` of a run with `seed`: every thread of a run draws the same. */
export function shuffledOrder(seed: number, epoch: number, count: number): Int32Array {
  return epochOrder(count, new SeededRandom(seed).fork(`shuffle-${epoch}`));
}

/** How the loop takes a step: in this thread, or over the replicas of data_parallel.ts. */
interface Stepper {
  /** One update on the batch order[start .. start + size): its mean loss and correct predictions. */
  step(order: Int32Array, start: number, size: number, lr: number): Promise<{ loss: number; hits: number }> | { loss: number; hits: number };
  endEpoch(): Promise<void> | void;
}

/** The single-thread step: optimizer.minimize, which lets the loop apply the weight clips after it. */
function localStepper(model: tf.LayersModel, optimizer: tf.Optimizer, data: FitInput, batchSize: number): Stepper {
  const { train, imageShape, numClasses } = data;
  const vars = trainableVariables(model);
  const size = sampleSize(train);
  const buffers = allocBatch(batchSize, size, numClasses);
  return {
    step(order, start, n, lr) {
      const b = batchPrefix(buffers, n, size, numClasses);
      fillBatch(train, order, start, n, b, size, numClasses);
      setLearningRate(optimizer, lr);
      const x = tf.tensor4d(b.x, [b.size, ...imageShape]);
      const y = tf.tensor2d(b.oneHot, [b.size, numClasses]);
      let hits = 0;
      const loss = optimizer.minimize(
        () => {
          const logits = model.apply(x, { training: true }) as tf.Tensor2D;
          // Training accuracy from the same forward pass (a cheap argmax on b x 10).
          hits = tf.tidy(() => tf.equal(tf.argMax(logits, 1), tf.argMax(y, 1)).sum().dataSync()[0]);
          return tf.losses.softmaxCrossEntropy(y, logits) as tf.Scalar;
        },
        true,
        vars,
      );
      applyWeightClips(model);
      const l = loss!.dataSync()[0];
      loss!.dispose();
      x.dispose();
      y.dispose();
      return { loss: l, hits };
    },
    endEpoch() {},
  };
}

/**
 * Train `model` in place. With `resume`, the model and optimizer come from the checkpoint in
 * cfg.checkpointDir and training continues after its last completed epoch. With cfg.workers > 1
 * the steps run data-parallel on worker threads (data_parallel.ts): each update is still one step
 * on the whole batch of cfg.batchSize.
 */
export async function fit(
  modelIn: tf.LayersModel,
  data: FitInput,
  cfg: TrainConfig,
  resume?: { model: tf.LayersModel; optimizer: tf.Optimizer; state: LoopState },
): Promise<{ model: tf.LayersModel; result: TrainResult }> {
  validateTrainConfig(cfg);
  const model = resume ? resume.model : modelIn;
  const optimizer = resume ? resume.optimizer : makeOptimizer(cfg.optimizer, cfg.learningRate);
  const progress = cfg.progress ?? silentProgress;
  const { train, validation, imageShape, numClasses } = data;
  if (train.count < 1) throw new ConfigError('trainSamples', 'no training samples');
  const stepsPerEpoch = Math.ceil(train.count / cfg.batchSize);
  const totalSteps = stepsPerEpoch * cfg.epochs;
  const schedule = { name: cfg.schedule, learningRate: cfg.learningRate, totalSteps };
  const history: EpochRecord[] = resume ? ((resume.state.history as EpochRecord[]) ?? []) : [];
  let step = resume ? resume.state.step : 0;
  const startEpoch = resume ? resume.state.epoch : 0;
  if (resume?.state.noiseCounters) setNoiseCounters(model, resume.state.noiseCounters as Record<string, number>);
  const workers = cfg.workers ?? 1;
  let trainSeconds = 0;
  let trainSamples = 0;

  const endEpoch = Math.min(cfg.epochs, cfg.stopAfterEpoch ?? cfg.epochs);
  let parallel: DataParallelRun | null = null;
  if (workers > 1 && startEpoch < endEpoch) {
    const plan = { workers, batchSize: cfg.batchSize, seed: cfg.seed, schedule, optimizer: cfg.optimizer, learningRate: cfg.learningRate, startEpoch, endEpoch, startStep: step };
    parallel = await startDataParallel(model, optimizer, { train, imageShape, numClasses }, plan);
  }
  const stepper: Stepper = parallel ? parallel.replica : localStepper(model, optimizer, data, cfg.batchSize);
  try {
    for (let epoch = startEpoch; epoch < endEpoch; epoch++) {
      // the same order in every thread (data_parallel_worker.ts draws it too)
      const order = shuffledOrder(cfg.seed, epoch, train.count);
      progress.start(`epoch ${epoch + 1}/${cfg.epochs}`, train.count);
      let done = 0;
      let lossSum = 0;
      let correct = 0;
      let lr = cfg.learningRate;
      const t0 = performance.now();
      for (let start = 0; start < train.count; start += cfg.batchSize) {
        const size = Math.min(cfg.batchSize, train.count - start);
        lr = learningRateAt(schedule, step);
        const { loss: l, hits } = await stepper.step(order, start, size, lr);
        if (!Number.isFinite(l)) throw new Error(`training diverged at epoch ${epoch + 1}, step ${step}: loss ${l} (try a smaller --lr)`);
        lossSum += l * size;
        correct += hits;
        done += size;
        step++;
        const secs = (performance.now() - t0) / 1000;
        progress.update(done, { rate: done / secs, loss: lossSum / done, acc: correct / done });
      }
      await stepper.endEpoch();
      const seconds = (performance.now() - t0) / 1000;
      progress.stop();
      trainSeconds += seconds;
      trainSamples += done;
      let validationAccuracy: number | null = null;
      let validationLoss: number | null = null;
      if (validation && validation.count > 0) {
        const v = evaluateModel(model, validation, imageShape, numClasses, 500, { progress, label: 'validation' });
        validationAccuracy = v.accuracy;
        validationLoss = v.loss;
      }
      const record: EpochRecord = {
        epoch: epoch + 1,
        loss: lossSum / done,
        trainAccuracy: correct / done,
        validationAccuracy,
        validationLoss,
        learningRate: lr,
        seconds,
        samplesPerSec: done / seconds,
      };
      history.push(record);
      cfg.onEpoch?.(record);
      if (cfg.checkpointDir) {
        await writeCheckpoint(cfg.checkpointDir, model, optimizer, {
          epoch: epoch + 1,
          step,
          history,
          noiseCounters: getNoiseCounters(model),
          config: { ...cfg, progress: undefined, onEpoch: undefined, stopAfterEpoch: undefined, checkpointRun: undefined },
          run: cfg.checkpointRun ?? {},
        });
      }
    }
  } finally {
    await parallel?.close();
  }
  optimizer.dispose();
  return {
    model,
    result: {
      history,
      trainSamplesPerSec: trainSeconds > 0 ? trainSamples / trainSeconds : 0,
      trainSeconds,
      steps: step,
      resumedFromEpoch: startEpoch,
      workers,
      workerStartSeconds: parallel ? parallel.startSeconds : 0,
    },
  };
}

export { readCheckpoint };
