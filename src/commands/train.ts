// `memristor-tfjs train`: build a model of the registry, train it offline, save it with metrics.json.
import * as path from 'path';
import { tf } from '../tf';
import { writeJsonAtomic } from '../atomic';
import { SeededRandom } from '../random';
import { loadDataset, Dataset } from '../data/datasets';
import type { BackendInfo } from '../backend';
import { splitValidation } from '../data/batches';
import { buildModel, modelNames, modelSpec } from '../../models/registry';
import type { DeviceVariation } from '../../layers/variation';
import { quantSummary } from '../../layers/summary';
import { saveModel } from '../model_io';
import { fit, evaluateModel, makeOptimizer, OptimizerName } from '../../training/offline';
import { hasCheckpoint, readCheckpoint } from '../../training/checkpoint';
import { barProgress } from '../../training/progress';
import { ScheduleName } from '../../training/schedule';
import { UsageError } from '../errors';
import { CommonOptions, info, printResult, startBackend, peakRssMB, pct } from './common';

export interface TrainCommandOptions extends CommonOptions {
  model: string;
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
  out: string;
  resume?: boolean;
  float?: boolean;
  variation?: Partial<DeviceVariation>;
  progress?: boolean;
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
  testAccuracy: number;
  testLoss: number;
  validationAccuracy: number | null;
  history: unknown[];
  parameters: unknown;
  peakRssMB: number;
  float: boolean;
  variation: Partial<DeviceVariation> | null;
  resumedFromEpoch: number;
}

/**
 * Trains and saves a model (the work of `train`, also the first stage of `hybrid`); `given` passes
 * a backend already started and a dataset already loaded. The caller disposes the model.
 */
export async function trainModel(
  opts: TrainCommandOptions,
  given: { backend?: BackendInfo; data?: Dataset } = {},
): Promise<{ metrics: TrainMetrics; model: tf.LayersModel; data: Dataset }> {
  if (!modelNames().includes(opts.model)) {
    throw new UsageError(`unknown model '${opts.model}' (choose ${modelNames().join(', ')})`);
  }
  const batchSize = opts.batchSize ?? modelSpec(opts.model).defaultBatchSize ?? 64;
  const backend = given.backend ?? (await startBackend(opts));
  const data = given.data ?? loadDataset(opts.dataset, { trainSamples: opts.trainSamples, testSamples: opts.testSamples });
  const rng = new SeededRandom(opts.seed);
  const { train, validation } = splitValidation(data.train, opts.validationSplit, rng.fork('validation'));
  const learningRate = opts.lr ?? 0.01;
  const out = path.resolve(opts.out);
  const buildOpts = {
    seed: opts.seed,
    inputShape: data.imageShape,
    numClasses: data.numClasses,
    float: !!opts.float,
    variation: opts.variation ?? null,
  };
  let resume;
  if (opts.resume) {
    if (!hasCheckpoint(out)) throw new UsageError(`--resume: no checkpoint in ${out}`);
    resume = await readCheckpoint(out, () => makeOptimizer(opts.optimizer, learningRate));
    info(`resuming after epoch ${resume.state.epoch}`);
  }
  const model = resume ? resume.model : buildModel(opts.model, buildOpts);
  info(`${opts.model} on ${data.name}: ${train.count} training, ${validation.count} validation, ${data.test.count} test samples`);
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
      checkpointDir: out,
      progress: opts.progress === false ? undefined : barProgress(),
      onEpoch: (r) =>
        info(
          `epoch ${r.epoch}: loss ${r.loss.toFixed(4)}, train acc ${pct(r.trainAccuracy)}` +
            (r.validationAccuracy != null ? `, val acc ${pct(r.validationAccuracy)}` : '') +
            `, ${Math.round(r.samplesPerSec)} samples/s, ${r.seconds.toFixed(1)} s`,
        ),
    },
    resume,
  );
  const test = evaluateModel(trained, data.test, data.imageShape, data.numClasses);
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
    testAccuracy: test.accuracy,
    testLoss: test.loss,
    validationAccuracy: result.history.length ? result.history[result.history.length - 1].validationAccuracy : null,
    history: result.history,
    parameters: quantSummary(trained),
    peakRssMB: peakRssMB(),
    float: !!opts.float,
    variation: opts.variation ?? null,
    resumedFromEpoch: result.resumedFromEpoch,
  };
  await saveModel(trained, out, {
    memristorTfjs: { model: opts.model, dataset: opts.dataset, imageShape: data.imageShape, numClasses: data.numClasses, build: buildOpts },
  });
  writeJsonAtomic(path.join(out, 'metrics.json'), metrics);
  return { metrics, model: trained, data };
}

export async function trainCommand(opts: TrainCommandOptions): Promise<TrainMetrics> {
  const { metrics, model: trained } = await trainModel(opts);
  const out = path.resolve(opts.out);
  printResult(opts, metrics, () =>
    [
      `model       ${opts.model} (${opts.float ? 'float' : 'memristor-aware'})`,
      `dataset     ${opts.dataset}: ${metrics.trainSamples} train / ${metrics.testSamples} test`,
      `backend     ${metrics.backend}`,
      `training    ${opts.epochs} epoch(s), ${metrics.trainSamplesPerSec} samples/s, ${metrics.trainSeconds.toFixed(1)} s`,
      `test acc    ${pct(metrics.testAccuracy)}`,
      `saved       ${out}/model.json, weights.bin, metrics.json`,
    ].join('\n'),
  );
  trained.dispose();
  tf.disposeVariables();
  return metrics;
}
