// The hybrid method of Yao et al. (Nature 2020) as library API, the stages one by one and the
// whole: offline (device-aware) training -> mapping and write-verify programming -> crossbar
// evaluation (the accuracy right after transfer) -> in-situ training of the last FC layer on its
// arrays -> evaluation again. `hybrid`, `train`, `insitu` and `sweep` call these; the commands
// only parse flags, call and print.
//
// Device-aware training (the default of runHybrid): the model is built against the device it will
// be mapped onto (models/ buildModel {device}): the training noise and the weight levels are a
// view of that DeviceConfig (src/device/training_noise.ts), and every noisy kernel is clipped to
// 2.5 x its RMS after each step, so that the weight scale the mapping spends the conductance
// window on (max|w|) is not set by a few outliers: every conductance error, a stuck cell's above
// all, costs weight error in proportion to it.
//
// Files, where an output folder is given (nothing is written without one):
//   trainModel:    OUT/model.json, weights.bin (saveModel), metrics.json, checkpoints
//   runHybrid:     OUT/model, OUT/crossbar, OUT/insitu, OUT/summary.json; with
//                  compareDeviceAware also the other run's folders under OUT/plain (or
//                  OUT/device-aware when the main run is the plain one).
import * as path from 'path';
import { tf } from '../src/tf';
import { writeDirAtomic, writeJsonAtomic } from '../src/atomic';
import { initBackend, backendInfo, BackendInfo } from '../src/backend';
import { ConfigError, FileFormatError, UsageError } from '../src/errors';
import { SeededRandom, deriveSeed } from '../src/random';
import { loadDataset, Dataset } from '../src/data/datasets';
import { splitValidation, firstSamples } from '../src/data/batches';
import { DeviceConfig, loadDeviceConfig } from '../src/device/config';
import type { Scheme } from '../src/mapping/schemes';
import { CrossbarNetwork, mapModel, saveCrossbar, disposeCrossbar, mappingReport } from '../src/crossbar/network';
import { evaluateCrossbar, crossbarCounts, CrossbarEvalResult } from '../src/crossbar/inference';
import { LayerProgrammingReport, formatLayerReports } from '../src/mapping/program';
import { estimateEnergy, EnergyEstimate } from '../src/energy';
import { saveModel } from '../src/model_io';
import { buildModel, modelNames, modelSpec, BuildOptions } from '../models/registry';
import { DEFAULT_LEARNING_RATE } from '../models/common';
import type { DeviceVariation, ResolvedVariation } from '../layers/variation';
import { QuantKernelLayer } from '../layers/quant_base';
import { quantSummary, formatQuantSummary } from '../layers/summary';
import { fit, evaluateModel, makeOptimizer, OptimizerName, EpochRecord } from './offline';
import { hasCheckpoint, readCheckpoint, checkRunMatches } from './checkpoint';
import { ProgressReporter, silentProgress, trackCounts, trackEvaluation } from './progress';
import { ScheduleName } from './schedule';
import { insituTrain, INSITU_RULES, INSITU_LAYERS, InsituLayers, InsituResult, InsituRule, DEFAULT_INSITU_LR, DEFAULT_INSITU_RULE } from './insitu';
import { insituRecord, saveInsituDir, InsituRecord } from './insitu_files';

export const SUMMARY_FILE = 'summary.json';
export const HYBRID_FORMAT = 'memristor-tfjs-hybrid';

/** Where the stages report to. Everything is optional: a library call is silent by default. */
export interface PipelineHooks {
  /** Lines for people (the CLI prints them on stderr). */
  onInfo?: (message: string) => void;
  /** A stage starts: which run ('deviceAware' or 'plain'), its number and name. */
  onProgress?: (e: StageEvent) => void;
  /** Progress of the long loops (training epochs, in-situ updates); default silent. */
  progress?: ProgressReporter;
}

export type StageName = 'train' | 'map' | 'transfer' | 'insitu';
export interface StageEvent {
  run: 'deviceAware' | 'plain';
  stage: StageName;
  /** 1..4 */
  step: number;
  of: number;
  message: string;
}

async function ensureBackend(name: string | undefined, given: BackendInfo | undefined): Promise<BackendInfo> {
  if (given) return given;
  const cur = backendInfo();
  return cur && (name === undefined || cur.name === name) ? cur : initBackend(name);
}

function toDevice(d: DeviceConfig | string | null | undefined): DeviceConfig | null {
  if (d == null) return null;
  return typeof d === 'string' ? loadDeviceConfig(d) : d;
}

function pct(x: number | null | undefined): string {
  return x == null || !Number.isFinite(x) ? '-' : `${(100 * x).toFixed(2)}%`;
}

function round3(v: number): number {
  return Number(v.toFixed(3));
}

// ---------------------------------------------------------------------------------------------
// 1. Offline training

export interface TrainModelOptions {
  model: string;
  /** Dataset spec (mnist, idx:DIR, cifar10:DIR); ignored when a dataset is given to trainModel. */
  dataset: string;
  epochs: number;
  batchSize?: number;
  seed: number;
  trainSamples?: number;
  testSamples?: number;
  validationSplit: number;
  lr?: number;
  optimizer: OptimizerName;
  schedule: ScheduleName;
  /** Output folder (model, metrics.json, checkpoints); nothing is written without one. */
  out?: string;
  resume?: boolean;
  float?: boolean;
  /**
   * Device-aware training: a DeviceConfig or a preset name / JSON file; the training noise and the
   * weight levels are the device's (src/device/training_noise.ts). Null: none.
   */
  device?: DeviceConfig | string | null;
  /** With device: the mapping scheme (default the device's). */
  scheme?: Scheme;
  /** Noise without a device, or overrides of single fields of the device's. */
  variation?: Partial<DeviceVariation> | null;
  /** Signed weight levels of multi-level layers (default: the device's, else the model's). */
  weightLevels?: number;
  /** Options of single models (models/common.ts BuildOptions): resnet's depth, vgg16's batch norm. */
  depth?: number;
  batchNorm?: boolean;
  /** bmcnn: 'binary-weights' (default) or 'fully-binary' (models/bmcnn.ts). */
  variant?: string;
  /**
   * Clip every noisy kernel to +-k x its RMS after each step (models/ BuildOptions weightClipRms);
   * default 2.5 against a device (multi-level models), else none; 0 or null: none.
   */
  weightClipRms?: number | null;
  /** Backend name when none is running yet (default: the automatic choice). */
  backend?: string;
  /**
   * Threads that train data-parallel (training/data_parallel.ts; default 1). The batch size and
   * the learning rate default to what keeps each thread's share at the model's batch: see
   * parallelDefaults.
   */
  workers?: number;
}

/** The learning rate of the offline loop without --lr, for a model that names none (models/common.ts). */
export const DEFAULT_LR = DEFAULT_LEARNING_RATE;

/**
 * The batch size and learning rate of a run on `workers` threads where they are not given. Each
 * thread's share stays at the model's batch size (a smaller share pays the fixed cost of a step
 * for fewer samples: mcnn on wasm, on a loaded 2-core machine, took 7.8 ms a step for 16 samples,
 * 12.4 for 32, 17.3 for 64),
 * so the batch of one update is workers x that. The learning rate stays the model's (modelLr, else DEFAULT_LR): with Adam,
 * scaling it with the batch lost accuracy (mcnn, one epoch of MNIST, batch 64, seeds 1-3: lr 0.01
 * gave 97.92 / 98.15 / 97.99% (mean 98.02), 0.014 = 0.01 sqrt(2) 97.56 / 97.97 / 97.90% (97.81), 0.02
 * 97.52 / 97.83 / 98.08% (97.81)). A given batch size is the batch of one update, cut into `workers` shares.
 */
export function parallelDefaults(modelBatch: number, workers: number, given: { batchSize?: number; lr?: number }, modelLr: number = DEFAULT_LR): { batchSize: number; learningRate: number } {
  return { batchSize: given.batchSize ?? modelBatch * workers, learningRate: given.lr ?? modelLr };
}

export interface TrainMetrics {
  model: string;
  dataset: string;
  backend: string;
  epochs: number;
  batchSize: number;
  learningRate: number;
  optimizer: string;
  schedule: string;
  seed: number;
  trainSamples: number;
  validationSamples: number;
  testSamples: number;
  trainSamplesPerSec: number;
  trainSeconds: number;
  /** Threads the training ran on (data-parallel when > 1). */
  workers: number;
  /** Seconds the worker threads took to start, not in trainSeconds (0 for one thread). */
  workerStartSeconds: number;
  testAccuracy: number;
  testLoss: number;
  validationAccuracy: number | null;
  history: EpochRecord[];
  parameters: unknown;
  peakRssMB: number;
  float: boolean;
  /** The device trained against (device-aware training), or null. */
  device: string | null;
  /** The training noise every quantized kernel drew (the first such layer's), or null. */
  variation: ResolvedVariation | null;
  /** Signed weight levels of the multi-level layers (null: binary or float). */
  weightLevels: number | null;
  /** The weight-scale clip of the noisy kernels, in RMS (null: none). */
  weightClipRms: number | null;
  resumedFromEpoch: number;
}

function peakRssMB(): number {
  return Math.round(process.resourceUsage().maxRSS / 1024);
}

/** The variation and the weight levels the quantized kernels of a model carry. */
function trainingNoiseOf(model: tf.LayersModel): { variation: ResolvedVariation | null; weightLevels: number | null; weightClipRms: number | null } {
  for (const l of model.layers) {
    if (l instanceof QuantKernelLayer && l.kernelQuantizer) {
      const levels = l.kernelQuantizer.levels;
      return { variation: l.variation, weightLevels: levels != null && levels > 2 ? levels : null, weightClipRms: l.kernelClipRms };
    }
  }
  return { variation: null, weightLevels: null, weightClipRms: null };
}

/**
 * Builds a model of the registry (against a device when one is given), trains it offline and,
 * with `out`, saves it with metrics.json (the work of `train`, and the first stage of the hybrid
 * method). `given` passes a backend already started and a dataset already loaded. The caller
 * disposes the model.
 */
export async function trainModel(
  opts: TrainModelOptions,
  given: {
    backend?: BackendInfo;
    data?: Dataset;
    /** Where to write (default opts.out): `train` passes its staging folder. */
    dir?: string;
    /** How messages name the checkpoint's folder (default `dir`). */
    label?: string;
    /** How errors name the sample counts (the CLI passes its flags). */
    names?: { trainSamples?: string; testSamples?: string };
  } = {},
  hooks: PipelineHooks = {},
): Promise<{ metrics: TrainMetrics; model: tf.LayersModel; data: Dataset }> {
  if (!modelNames().includes(opts.model)) throw new ConfigError('model', `unknown model '${opts.model}' (choose ${modelNames().join(', ')})`);
  const say = hooks.onInfo ?? (() => {});
  const device = toDevice(opts.device);
  const backend = await ensureBackend(opts.backend, given.backend);
  const data = given.data ?? loadDataset(opts.dataset, { trainSamples: opts.trainSamples, testSamples: opts.testSamples, names: given.names });
  const rng = new SeededRandom(opts.seed);
  const { train, validation } = splitValidation(data.train, opts.validationSplit, rng.fork('validation'));
  const requested = opts.workers ?? 1;
  if (!Number.isInteger(requested) || requested < 1) throw new ConfigError('workers', `must be a positive integer, got ${String(opts.workers)}`);
  const modelBatch = modelSpec(opts.model).defaultBatchSize ?? 64;
  const defaults = parallelDefaults(modelBatch, requested, { batchSize: opts.batchSize, lr: opts.lr }, modelSpec(opts.model).defaultLearningRate ?? DEFAULT_LR);
  let batchSize = defaults.batchSize;
  const learningRate = defaults.learningRate;
  if (batchSize > train.count) {
    say(`--batch-size ${batchSize} is larger than the ${train.count} training samples: using ${train.count}`);
    batchSize = train.count;
  }
  // a thread needs at least one sample of each batch
  const workers = Math.min(requested, batchSize);
  if (workers < requested) say(`--workers ${requested}: a batch of ${batchSize} is shared by ${workers} threads at most, using ${workers}`);
  if (workers > 1) {
    say(`data-parallel training on ${workers} threads: batches of ${batchSize}, ${Math.ceil(batchSize / workers)} samples a thread`);
  }
  const out = given.dir ? path.resolve(given.dir) : opts.out ? path.resolve(opts.out) : null;
  const buildOpts: BuildOptions = {
    seed: opts.seed,
    inputShape: data.imageShape,
    numClasses: data.numClasses,
    float: !!opts.float,
    ...(device ? { device, ...(opts.scheme ? { scheme: opts.scheme } : {}) } : {}),
    variation: opts.variation ?? null,
    ...(opts.weightLevels !== undefined ? { weightLevels: opts.weightLevels } : {}),
    ...(opts.depth !== undefined ? { depth: opts.depth } : {}),
    ...(opts.batchNorm !== undefined ? { batchNorm: opts.batchNorm } : {}),
    ...(opts.variant !== undefined ? { variant: opts.variant } : {}),
    ...(opts.weightClipRms !== undefined ? { weightClipRms: opts.weightClipRms || null } : {}),
  };
  // What shapes the run: recorded in every checkpoint, compared on resume.
  const run = {
    model: opts.model,
    ...(opts.depth !== undefined ? { depth: opts.depth } : {}),
    ...(opts.batchNorm !== undefined ? { batchNorm: opts.batchNorm } : {}),
    ...(opts.variant !== undefined ? { variant: opts.variant } : {}),
    ...(opts.weightLevels !== undefined ? { weightLevels: opts.weightLevels } : {}),
    dataset: opts.dataset,
    imageShape: data.imageShape,
    numClasses: data.numClasses,
    float: !!opts.float,
    device: device ? device.name : null,
    variation: opts.variation ?? null,
    validationSplit: opts.validationSplit,
    trainSamples: train.count,
    // before batchSize: the batch size defaults from it, so a resume on another core count names --workers
    workers,
    batchSize,
    learningRate,
    optimizer: opts.optimizer,
    schedule: opts.schedule,
    seed: opts.seed,
  };
  let resume;
  if (opts.resume) {
    if (!out || !hasCheckpoint(out)) throw new UsageError(`--resume: no checkpoint in ${given.label ?? out ?? '(no output folder)'}`);
    const stepsPerEpoch = Math.ceil(train.count / batchSize);
    resume = await readCheckpoint(out, () => makeOptimizer(opts.optimizer, learningRate), (state, stateFile) => {
      checkRunMatches(stateFile, state.run, run, given.label);
      if (state.epoch > opts.epochs) throw new UsageError(`--epochs ${opts.epochs}: the checkpoint has trained ${state.epoch} epochs already; give --epochs >= ${state.epoch}`);
      if (state.step !== state.epoch * stepsPerEpoch) {
        throw new FileFormatError(stateFile, `step ${state.step} does not match epoch ${state.epoch} (${stepsPerEpoch} steps an epoch give ${state.epoch * stepsPerEpoch})`);
      }
    });
    say(`resuming after epoch ${resume.state.epoch}`);
  }
  const model = resume ? resume.model : buildModel(opts.model, buildOpts);
  const noise = trainingNoiseOf(model);
  say(
    `${opts.model} on ${data.name}: ${train.count} training, ${validation.count} validation, ${data.test.count} test samples` +
      (device ? `; trained against ${device.name}${noise.weightLevels ? ` (${noise.weightLevels}-level weights)` : ''}` : ''),
  );
  say(formatQuantSummary(quantSummary(model)));
  const { model: trained, result } = await fit(
    model,
    { train, validation, imageShape: data.imageShape, numClasses: data.numClasses },
    {
      epochs: opts.epochs,
      batchSize,
      learningRate,
      optimizer: opts.optimizer,
      schedule: opts.schedule,
      seed: opts.seed,
      workers,
      ...(out ? { checkpointDir: out, checkpointRun: run } : {}),
      progress: hooks.progress ?? silentProgress,
      onEpoch: (r) =>
        say(
          `epoch ${r.epoch}: loss ${r.loss.toFixed(4)}, train acc ${pct(r.trainAccuracy)}` +
            (r.validationAccuracy != null ? `, val acc ${pct(r.validationAccuracy)}` : '') +
            `, ${Math.round(r.samplesPerSec)} samples/s, ${r.seconds.toFixed(1)} s`,
        ),
    },
    resume,
  );
  const test = evaluateModel(trained, data.test, data.imageShape, data.numClasses, 500, { progress: hooks.progress ?? silentProgress, label: 'test' });
  const metrics: TrainMetrics = {
    model: opts.model,
    dataset: opts.dataset,
    backend: backend.name,
    epochs: opts.epochs,
    batchSize,
    learningRate,
    optimizer: opts.optimizer,
    schedule: opts.schedule,
    seed: opts.seed,
    trainSamples: train.count,
    validationSamples: validation.count,
    testSamples: data.test.count,
    trainSamplesPerSec: Math.round(result.trainSamplesPerSec),
    trainSeconds: Number(result.trainSeconds.toFixed(3)),
    workers,
    workerStartSeconds: Number(result.workerStartSeconds.toFixed(3)),
    testAccuracy: test.accuracy,
    testLoss: test.loss,
    validationAccuracy: result.history.length ? result.history[result.history.length - 1].validationAccuracy : null,
    history: result.history,
    parameters: quantSummary(trained),
    peakRssMB: peakRssMB(),
    float: !!opts.float,
    device: device ? device.name : null,
    variation: noise.variation,
    weightLevels: noise.weightLevels,
    weightClipRms: noise.weightClipRms,
    resumedFromEpoch: result.resumedFromEpoch,
  };
  if (out) {
    const build = { ...buildOpts, device: device ? device.name : null };
    await saveModel(trained, out, {
      memristorTfjs: { model: opts.model, dataset: opts.dataset, imageShape: data.imageShape, numClasses: data.numClasses, build },
    });
    writeJsonAtomic(path.join(out, 'metrics.json'), metrics);
  }
  return { metrics, model: trained, data };
}

// ---------------------------------------------------------------------------------------------
// 2. Mapping and write-verify programming

export interface MapStageOptions {
  arrayRows?: number;
  arrayCols?: number;
  replicas?: number;
  /** The conv layers that get the replicas (default: every conv layer). */
  replicate?: string[];
  /** Seed of the device instances and of write-verify. */
  seed: number;
  scheme?: Scheme;
  tolerance?: number;
  maxPulses?: number;
  /** Progress of write-verify programming: weights done of all. */
  onProgress?: (done: number, total: number) => void;
}

/**
 * Maps a trained model onto arrays of the device and programs them by write-verify
 * (src/crossbar/network.ts mapModel). The model is kept, not copied: disposeCrossbar frees both;
 * saveCrossbar writes the crossbar directory.
 */
export function mapAndProgram(model: tf.LayersModel, device: DeviceConfig | string, opts: MapStageOptions): CrossbarNetwork {
  return mapModel(model, toDevice(device)!, opts);
}

// ---------------------------------------------------------------------------------------------
// 3. Crossbar evaluation

export interface EvaluateStageOptions {
  /** Read-noise seed. */
  seed: number;
  /** Training samples that calibrate the DAC/ADC ranges; default 500. */
  calibrationSamples?: number;
  batchSize?: number;
  /** Progress of the evaluation: done of total test images, the correct ones so far. */
  onProgress?: (done: number, total: number, correct?: number) => void;
  /** Progress of the calibration before it (evaluateCrossbar's onCalibrationStep). */
  onCalibrationStep?: (done: number, total: number) => void;
}

/** Test accuracy of a programmed network; calibrates on the first training samples where the device needs it. */
export function evaluateTransfer(net: CrossbarNetwork, data: Dataset, opts: EvaluateStageOptions): CrossbarEvalResult {
  return evaluateCrossbar(net, data.test, {
    calibration: data.train,
    calibrationSamples: opts.calibrationSamples ?? 500,
    ...(opts.batchSize ? { batchSize: opts.batchSize } : {}),
    imageShape: data.imageShape,
    numClasses: data.numClasses,
    seed: opts.seed,
    ...(opts.onProgress ? { onProgress: opts.onProgress } : {}),
    ...(opts.onCalibrationStep ? { onCalibrationStep: opts.onCalibrationStep } : {}),
  });
}

/** Frees the inference tensors (and calibration) of a network, but not its model. */
export function releaseRuntime(net: CrossbarNetwork): void {
  const rt = net.runtime as { dispose?: () => void } | null;
  rt?.dispose?.();
  net.runtime = null;
}

// ---------------------------------------------------------------------------------------------
// 4. In-situ training

export interface InsituStageOptions {
  /** Distinct training images, default 6000. */
  samples?: number;
  /** Default 1. */
  epochs?: number;
  /** Default 100. */
  batchSize?: number;
  /** Default DEFAULT_INSITU_LR. */
  lr?: number;
  /** One of INSITU_RULES; default DEFAULT_INSITU_RULE. */
  rule?: string;
  /** uS. */
  threshold?: number;
  /** Momentum of the wanted updates, [0, 1); default 0. */
  momentum?: number;
  /** tiki-taka: updates between transfers; default 1. */
  transferEvery?: number;
  /** Updates between the controller's reads of the cells (0: only before the first); default 0. */
  readEvery?: number;
  /** The controller sees the cells' hidden parameters (an upper bound, not a chip); default false. */
  oracle?: boolean;
  /** The layers trained: 'last' (default), 'last2', 'all-dense'. */
  layers?: string;
  /** Test images of the learning curve's test points, default 1000; 0: none. */
  evalSamples?: number;
  /** Seed of the images, read noise and pulse noise (default the mapping seed). */
  seed?: number;
  calibrationSamples?: number;
  /**
   * Evaluate after training newly calibrated (the DAC/ADC ranges from the training samples again,
   * as `sweep` does) rather than with the ranges calibrated before (default false, as `hybrid`).
   */
  recalibrate?: boolean;
  /** Read-noise seed of the evaluation after training; default `seed`. */
  evalSeed?: number;
  /** Batch size of that evaluation (default 500). */
  batchSizeEval?: number;
  /** Skip the record (sweep trials keep only the accuracy); default false. */
  noRecord?: boolean;
}

/** The in-situ layer set by name (ConfigError naming `layers` otherwise). */
export function checkLayers(layers: string | undefined): InsituLayers {
  const l = layers ?? 'last';
  if (!(INSITU_LAYERS as readonly string[]).includes(l)) throw new ConfigError('layers', `must be one of ${INSITU_LAYERS.join(', ')}, got '${layers}'`);
  return l as InsituLayers;
}

/** The rule by name (ConfigError naming `rule` otherwise). */
export function checkRule(rule: string | undefined): InsituRule {
  const r = rule ?? DEFAULT_INSITU_RULE;
  if (!(INSITU_RULES as readonly string[]).includes(r)) throw new ConfigError('rule', `must be one of ${INSITU_RULES.join(', ')}, got '${rule}'`);
  return r as InsituRule;
}

/**
 * In-situ training of the last FC layer of a programmed (and possibly already evaluated) network,
 * then the test accuracy after it and the record to save (insitu_files.ts). `before` and `source`
 * go into the record. Used by `insitu`, `hybrid` and the sweep trials.
 */
export function runInsitu(
  net: CrossbarNetwork,
  data: Dataset,
  opts: InsituStageOptions,
  before: number | null = null,
  source: string | null = null,
  hooks: PipelineHooks = {},
): { result: InsituResult; record: InsituRecord | null; after: number } {
  const rule = checkRule(opts.rule);
  const bar = hooks.progress ?? silentProgress;
  bar.start('in-situ', Math.min(opts.samples ?? 6000, data.train.count) * (opts.epochs ?? 1));
  const t0 = performance.now();
  const evalSamples = opts.evalSamples ?? 1000;
  let result: InsituResult;
  try {
    result = insituTrain(net, data.train, {
      samples: opts.samples,
      epochs: opts.epochs,
      batchSize: opts.batchSize,
      lr: opts.lr,
      rule,
      threshold: opts.threshold,
      momentum: opts.momentum,
      transferEvery: opts.transferEvery,
      readEvery: opts.readEvery,
      oracle: opts.oracle,
      layers: checkLayers(opts.layers),
      seed: opts.seed,
      ...(evalSamples > 0 ? { evalSplit: firstSamples(data.test, evalSamples) } : {}),
      calibrationSamples: opts.calibrationSamples,
      imageShape: data.imageShape,
      numClasses: data.numClasses,
      onProgress: (p) => bar.update(p.samples, { rate: p.samples / ((performance.now() - t0) / 1000), acc: p.trainAccuracy, pulses: p.pulses }),
    });
  } finally {
    bar.stop();
  }
  const evalSeed = opts.evalSeed ?? opts.seed;
  let ev: CrossbarEvalResult;
  if (opts.recalibrate) {
    // the cached effective weights and ranges are of the conductances before training
    releaseRuntime(net);
    ev = evaluateTransfer(net, data, { seed: evalSeed ?? net.mapping.seed, calibrationSamples: opts.calibrationSamples, batchSize: opts.batchSizeEval });
  } else {
    ev = trackCounts(hooks.progress, 'after in-situ', (onProgress) =>
      evaluateCrossbar(net, data.test, { imageShape: data.imageShape, numClasses: data.numClasses, seed: evalSeed, onProgress, ...(opts.batchSizeEval ? { batchSize: opts.batchSizeEval } : {}) }),
    );
  }
  const record = opts.noRecord ? null : insituRecord(net, result, { source, before, after: ev.accuracy, testSamples: ev.count });
  return { result, record, after: ev.accuracy };
}

// ---------------------------------------------------------------------------------------------
// The whole method

export interface HybridOptions {
  model: string;
  /** Options of single models (resnet's depth, vgg16's batch norm; models/common.ts BuildOptions). */
  depth?: number;
  batchNorm?: boolean;
  /** Dataset spec; default mnist. */
  dataset?: string;
  /** The device the model is mapped onto (and, by default, trained against). */
  device: DeviceConfig | string;
  /** Output folder; nothing is written without one. */
  out?: string;
  /**
   * Where the files are written, when not `out` itself: `hybrid` builds the run in a staging folder
   * beside `out` and renames it into place when complete (src/output_folder.ts).
   */
  writeTo?: string;
  /** Default 1. */
  seed?: number;
  /** Offline training: default 1 epoch, the model's batch size. */
  epochs?: number;
  batchSize?: number;
  trainSamples?: number;
  testSamples?: number;
  /** Train against the device (default true); false: the plain run (no device noise, the model's own levels). */
  deviceAware?: boolean;
  /** Also run the other kind of training (same seed, same device instances) and report both transfer drops. */
  compareDeviceAware?: boolean;
  /** Overrides of single fields of the device's training variation (device-aware runs). */
  variation?: Partial<DeviceVariation> | null;
  /** The weight-scale clip of device-aware runs (default 2.5 RMS; 0 or null: none). */
  weightClipRms?: number | null;
  /** Mapping: array size (default 128 x 128) and conv replicas (default 1), for the named conv layers only with `replicate`. */
  arrayRows?: number;
  arrayCols?: number;
  replicas?: number;
  replicate?: string[];
  /** In-situ training. */
  insituSamples?: number;
  insituEpochs?: number;
  rule?: string;
  lr?: number;
  threshold?: number;
  /** In-situ momentum, tiki-taka transfer period, controller reads, oracle (InsituStageOptions). */
  momentum?: number;
  transferEvery?: number;
  readEvery?: number;
  oracle?: boolean;
  /** In-situ: the layers trained ('last', 'last2', 'all-dense'); default 'last'. */
  insituLayers?: string;
  backend?: string;
  /** Offline training: threads that train data-parallel (default 1; see TrainModelOptions.workers). */
  workers?: number;
}

/** The accuracies of one run of the method. */
export interface HybridRunFigures {
  deviceAware: boolean;
  softwareAccuracy: number;
  transferredAccuracy: number;
  insituAccuracy: number;
  /** 100 x (software - transferred). */
  lostPoints: number;
  /** 100 x (in situ - transferred). */
  recoveredPoints: number;
  /** Its folder, relative to the output folder. */
  dir: string;
}

export interface HybridSummary {
  format: typeof HYBRID_FORMAT;
  version: 1;
  model: string;
  dataset: string;
  device: string;
  seed: number;
  backend: string;
  /** Whether the offline training was against the device. */
  deviceAware: boolean;
  /** The noise the quantized kernels trained with (null: none), their weight levels and clip. */
  trainingVariation: ResolvedVariation | null;
  weightLevels: number | null;
  weightClipRms: number | null;
  softwareAccuracy: number;
  transferredAccuracy: number;
  insituAccuracy: number;
  insituSamples: number;
  insituImagesSeen: number;
  insituEpochs: number;
  insituRule: string;
  insituLr: number;
  insituUpdates: number;
  insituPulses: number;
  /** The rule's settings: momentum, tiki-taka transfer period, controller reads, oracle (false: a chip's controller). */
  insituSettings: { momentum: number; transferEvery: number; readEvery: number; oracle: boolean; cellReads: number; layers: string[] };
  /** Energy of the update pulses (and the controller's reads: insituReadPJ). */
  insituProgramming: { energyPJ: number; timeNs: number };
  testSamples: number;
  lostPoints: number;
  recoveredPoints: number;
  recoveredFraction: number | null;
  offline: { epochs: number; batchSize: number; trainSamples: number; trainSamplesPerSec: number; workers: number };
  mapping: { array: string; replicas: number; scheme: string };
  programming: LayerProgrammingReport[];
  counts: unknown;
  energy: EnergyEstimate;
  seconds: { train: number; map: number; transfer: number; insitu: number; total: number };
  files: { model: string; crossbar: string; insitu: string };
  /**
   * With compareDeviceAware: both runs (same seed, device instances and data) and
   * lossRatio = device-aware lostPoints / plain lostPoints (null where plain lost nothing).
   */
  comparison?: { deviceAware: HybridRunFigures; plain: HybridRunFigures; lossRatio: number | null };
}

interface RunOutcome {
  summary: HybridSummary;
  figures: HybridRunFigures;
}

async function runOnce(
  o: HybridOptions,
  device: DeviceConfig,
  aware: boolean,
  out: string | null,
  dir: string,
  shared: { backend: BackendInfo; data?: Dataset },
  hooks: PipelineHooks,
): Promise<RunOutcome> {
  const say = hooks.onInfo ?? (() => {});
  const run = aware ? 'deviceAware' : 'plain';
  const stage = (step: number, name: StageName, message: string) => {
    say(`[${step}/4] ${message}`);
    hooks.onProgress?.({ run, stage: name, step, of: 4, message });
  };
  const seed = o.seed ?? 1;
  const dataset = o.dataset ?? 'mnist';
  const rule = checkRule(o.rule);
  const base = out ? path.join(out, dir) : null;
  // the folder the run will end up in (for the records); files go to `base` (staging or final)
  const finalBase = o.out ? path.join(path.resolve(o.out), dir) : null;
  const t0 = performance.now();

  // 1. offline training, against the device unless plain
  stage(1, 'train', `offline training of ${o.model}${aware ? `, device-aware (${device.name})` : ', plain (no device noise)'}`);
  const { metrics, model, data } = await trainModel(
    {
      model: o.model,
      ...(o.depth !== undefined ? { depth: o.depth } : {}),
      ...(o.batchNorm !== undefined ? { batchNorm: o.batchNorm } : {}),
      dataset,
      epochs: o.epochs ?? 1,
      batchSize: o.batchSize,
      seed,
      trainSamples: o.trainSamples,
      testSamples: o.testSamples,
      validationSplit: 0,
      optimizer: 'adam',
      schedule: 'cosine',
      workers: o.workers,
      ...(base ? { out: path.join(base, 'model') } : {}),
      device: aware ? device : null,
      variation: aware ? (o.variation ?? null) : null,
      ...(aware && o.weightClipRms !== undefined ? { weightClipRms: o.weightClipRms } : {}),
    },
    shared,
    hooks,
  );
  shared.data = data;
  const t1 = performance.now();

  // 2. mapping and write-verify programming
  stage(2, 'map', `mapping onto ${device.name} arrays and write-verify programming`);
  const mapping = { arrayRows: o.arrayRows ?? 128, arrayCols: o.arrayCols ?? 128, replicas: o.replicas ?? 1, ...(o.replicate ? { replicate: o.replicate } : {}), seed };
  let net: CrossbarNetwork;
  try {
    net = mapAndProgram(model, device, mapping);
  } catch (e) {
    model.dispose();
    throw e;
  }
  try {
    if (base) {
      await writeDirAtomic(path.join(base, 'crossbar'), async (tmp) => {
        await saveCrossbar(net, tmp);
      });
    }
    say(formatLayerReports(mappingReport(net)));
    const t2 = performance.now();

    // 3. the accuracy right after transfer
    stage(3, 'transfer', `crossbar inference after transfer (${data.test.count} test images)`);
    const transferred = trackEvaluation(hooks.progress, 'after transfer', (onProgress, onCalibrationStep) =>
      evaluateTransfer(net, data, { seed, calibrationSamples: 500, onProgress, onCalibrationStep }),
    );
    say(`after transfer: ${pct(transferred.accuracy)} (software ${pct(metrics.testAccuracy)})`);
    const t3 = performance.now();

    // 4. in-situ training of the last FC layer, and the accuracy after it
    const which = o.insituLayers ?? 'last';
    stage(4, 'insitu', `in-situ training of ${which === 'last' ? 'the last FC layer' : which === 'last2' ? 'the last two dense layers' : 'every dense layer'} (${rule} rule${o.oracle ? ', oracle' : ''})`);
    const { result, record, after } = runInsitu(
      net,
      data,
      {
        samples: o.insituSamples,
        epochs: o.insituEpochs,
        rule,
        lr: o.lr,
        threshold: o.threshold,
        momentum: o.momentum,
        transferEvery: o.transferEvery,
        readEvery: o.readEvery,
        oracle: o.oracle,
        layers: o.insituLayers,
        seed,
      },
      transferred.accuracy,
      finalBase ? path.join(finalBase, 'crossbar') : null,
      hooks,
    );
    if (base) await saveInsituDir(net, record!, path.join(base, 'insitu'), result.pulseLog);
    const t4 = performance.now();

    const software = metrics.testAccuracy;
    const lost = software - transferred.accuracy;
    const summary: HybridSummary = {
      format: HYBRID_FORMAT,
      version: 1,
      model: o.model,
      dataset,
      device: device.name,
      seed,
      backend: shared.backend.name,
      deviceAware: aware,
      trainingVariation: metrics.variation,
      weightLevels: metrics.weightLevels,
      weightClipRms: metrics.weightClipRms,
      softwareAccuracy: software,
      transferredAccuracy: transferred.accuracy,
      insituAccuracy: after,
      insituSamples: result.samples,
      insituImagesSeen: result.imagesSeen,
      insituEpochs: record!.epochs,
      insituRule: result.rule,
      insituLr: record!.lr,
      insituUpdates: result.updates,
      insituPulses: result.totalPulses,
      insituSettings: {
        momentum: result.options.momentum,
        transferEvery: result.options.transferEvery,
        readEvery: result.options.readEvery,
        oracle: result.options.oracle,
        cellReads: result.cellReads,
        layers: result.layers,
      },
      insituProgramming: record!.programming,
      testSamples: transferred.count,
      lostPoints: Number((100 * lost).toFixed(3)),
      recoveredPoints: Number((100 * (after - transferred.accuracy)).toFixed(3)),
      recoveredFraction: lost > 0 ? Number(((after - transferred.accuracy) / lost).toFixed(4)) : null,
      offline: { epochs: metrics.epochs, batchSize: metrics.batchSize, trainSamples: metrics.trainSamples, trainSamplesPerSec: metrics.trainSamplesPerSec, workers: metrics.workers },
      mapping: { array: `${mapping.arrayRows}x${mapping.arrayCols}`, replicas: mapping.replicas, scheme: net.mapping.scheme },
      programming: mappingReport(net),
      counts: crossbarCounts(net, 1).perInference,
      energy: estimateEnergy(net),
      seconds: {
        train: round3((t1 - t0) / 1000),
        map: round3((t2 - t1) / 1000),
        transfer: round3((t3 - t2) / 1000),
        insitu: round3((t4 - t3) / 1000),
        total: round3((t4 - t0) / 1000),
      },
      files: { model: 'model', crossbar: 'crossbar', insitu: 'insitu' },
    };
    const figures: HybridRunFigures = {
      deviceAware: aware,
      softwareAccuracy: software,
      transferredAccuracy: transferred.accuracy,
      insituAccuracy: after,
      lostPoints: summary.lostPoints,
      recoveredPoints: summary.recoveredPoints,
      dir: dir || '.',
    };
    return { summary, figures };
  } finally {
    disposeCrossbar(net);
    tf.disposeVariables();
  }
}

/**
 * The hybrid method end to end (see the top of this file). Returns the summary, also written to
 * OUT/summary.json when `out` is given. With compareDeviceAware the other kind of training runs
 * too, with the same seed (same initial weights, data order and device instances), into
 * OUT/plain (or OUT/device-aware), and the summary's `comparison` holds both.
 */
export async function runHybrid(opts: HybridOptions, hooks: PipelineHooks = {}): Promise<HybridSummary> {
  if (!opts.model) throw new ConfigError('model', 'give a model name (see `memristor-tfjs models`)');
  if (!modelNames().includes(opts.model)) throw new ConfigError('model', `unknown model '${opts.model}' (choose ${modelNames().join(', ')})`);
  if (!opts.device) throw new ConfigError('device', 'give a device preset or config');
  checkRule(opts.rule);
  const device = toDevice(opts.device)!;
  const aware = opts.deviceAware ?? true;
  const out = opts.writeTo ? path.resolve(opts.writeTo) : opts.out ? path.resolve(opts.out) : null;
  const t0 = performance.now();
  const backend = await ensureBackend(opts.backend, undefined);
  const shared: { backend: BackendInfo; data?: Dataset } = { backend };
  const main = await runOnce(opts, device, aware, out, '', shared, hooks);
  const summary = main.summary;
  if (opts.compareDeviceAware) {
    const otherDir = aware ? 'plain' : 'device-aware';
    hooks.onInfo?.(`comparison: the same run ${aware ? 'without' : 'with'} device-aware training (${otherDir}/)`);
    const other = await runOnce(opts, device, !aware, out, otherDir, shared, hooks);
    const a = aware ? main.figures : other.figures;
    const p = aware ? other.figures : main.figures;
    summary.comparison = { deviceAware: a, plain: p, lossRatio: p.lostPoints > 0 ? Number((a.lostPoints / p.lostPoints).toFixed(4)) : null };
    summary.seconds.total = round3((performance.now() - t0) / 1000);
    if (out) writeJsonAtomic(path.join(out, otherDir, SUMMARY_FILE), other.summary);
  }
  if (out) writeJsonAtomic(path.join(out, SUMMARY_FILE), summary);
  return summary;
}

/** The seed sweep trials derive their in-situ seed with. */
export function insituSeedOf(trialSeed: number): number {
  return deriveSeed(trialSeed, 'insitu');
}
