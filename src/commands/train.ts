// `memristor-tfjs train`: build a model of the registry, train it offline, save it with metrics.json.
import * as path from 'path';
import { tf } from '../tf';
import { writeJsonAtomic } from '../atomic';
import { SeededRandom } from '../random';
import { loadDataset, Dataset, SAMPLE_FLAGS } from '../data/datasets';
import type { BackendInfo } from '../backend';
import { splitValidation } from '../data/batches';
import { buildModel, modelNames, modelSpec } from '../../models/registry';
import type { DeviceVariation } from '../../layers/variation';
import { quantSummary, formatQuantSummary } from '../../layers/summary';
import { saveModel } from '../model_io';
import { fit, evaluateModel, makeOptimizer, OptimizerName } from '../../training/offline';
import { hasCheckpoint, readCheckpoint, readCheckpointState, checkRunMatches } from '../../training/checkpoint';
import { claimOutputFolder } from '../output_folder';
import { ScheduleName } from '../../training/schedule';
import { FileFormatError, UsageError } from '../errors';
import { CommonOptions, info, printResult, startBackend, peakRssMB, pct, progressOf } from './common';

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
  /** --overwrite: replace an existing non-empty --out. */
  overwrite?: boolean;
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
 * a backend already started, a dataset already loaded, and the folder to write (default
 * opts.out; `train` passes its staging folder). With opts.resume it continues the checkpoint in
 * that folder, after checking that it was written for the same run (model, dataset, options: a
 * UsageError names the flag that differs) and that its files are intact. The caller disposes the
 * model.
 */
export async function trainModel(
  opts: TrainCommandOptions,
  given: { backend?: BackendInfo; data?: Dataset; dir?: string; label?: string } = {},
): Promise<{ metrics: TrainMetrics; model: tf.LayersModel; data: Dataset }> {
  if (!modelNames().includes(opts.model)) {
    throw new UsageError(`unknown model '${opts.model}' (choose ${modelNames().join(', ')})`);
  }
  const backend = given.backend ?? (await startBackend(opts));
  const data = given.data ?? loadDataset(opts.dataset, { trainSamples: opts.trainSamples, testSamples: opts.testSamples, names: SAMPLE_FLAGS });
  const rng = new SeededRandom(opts.seed);
  const { train, validation } = splitValidation(data.train, opts.validationSplit, rng.fork('validation'));
  let batchSize = opts.batchSize ?? modelSpec(opts.model).defaultBatchSize ?? 64;
  if (batchSize > train.count) {
    info(`--batch-size ${batchSize} is larger than the ${train.count} training samples: using ${train.count}`);
    batchSize = train.count;
  }
  const learningRate = opts.lr ?? 0.01;
  const out = path.resolve(given.dir ?? opts.out);
  const buildOpts = {
    seed: opts.seed,
    inputShape: data.imageShape,
    numClasses: data.numClasses,
    float: !!opts.float,
    variation: opts.variation ?? null,
  };
  // What shapes the run: recorded in every checkpoint, compared on resume.
  const run = {
    model: opts.model,
    dataset: opts.dataset,
    imageShape: data.imageShape,
    numClasses: data.numClasses,
    float: !!opts.float,
    variation: opts.variation ?? null,
    validationSplit: opts.validationSplit,
    trainSamples: train.count,
    batchSize,
    learningRate,
    optimizer: opts.optimizer,
    schedule: opts.schedule,
    seed: opts.seed,
  };
  let resume;
  if (opts.resume) {
    if (!hasCheckpoint(out)) throw new UsageError(`--resume: no checkpoint in ${out}`);
    const stepsPerEpoch = Math.ceil(train.count / batchSize);
    resume = await readCheckpoint(out, () => makeOptimizer(opts.optimizer, learningRate), (state, stateFile) => {
      checkRunMatches(stateFile, state.run, run, given.label);
      if (state.epoch > opts.epochs) throw new UsageError(`--epochs ${opts.epochs}: the checkpoint has trained ${state.epoch} epochs already; give --epochs >= ${state.epoch}`);
      if (state.step !== state.epoch * stepsPerEpoch) {
        throw new FileFormatError(stateFile, `step ${state.step} does not match epoch ${state.epoch} (${stepsPerEpoch} steps an epoch give ${state.epoch * stepsPerEpoch})`);
      }
    });
    info(`resuming after epoch ${resume.state.epoch}`);
  }
  const model = resume ? resume.model : buildModel(opts.model, buildOpts);
  info(`${opts.model} on ${data.name}: ${train.count} training, ${validation.count} validation, ${data.test.count} test samples`);
  info(formatQuantSummary(quantSummary(model)));
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
      checkpointRun: run,
      progress: progressOf(opts),
      onEpoch: (r) =>
        info(
          `epoch ${r.epoch}: loss ${r.loss.toFixed(4)}, train acc ${pct(r.trainAccuracy)}` +
            (r.validationAccuracy != null ? `, val acc ${pct(r.validationAccuracy)}` : '') +
            `, ${Math.round(r.samplesPerSec)} samples/s, ${r.seconds.toFixed(1)} s`,
        ),
    },
    resume,
  );
  const test = evaluateModel(trained, data.test, data.imageShape, data.numClasses, 500, { progress: progressOf(opts), label: 'test' });
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
  if (!modelNames().includes(opts.model)) throw new UsageError(`unknown model '${opts.model}' (choose ${modelNames().join(', ')})`);
  // The run is built in .OUT.partial beside --out (kept after a kill or an error, so that --resume
  // continues it) and renamed into place when complete.
  const folder = claimOutputFolder(opts.out, { overwrite: opts.overwrite, continues: !!opts.resume, staging: 'resumable' });
  let seededEpoch: number | null = null;
  let label = opts.out;
  try {
    if (opts.resume) {
      if (hasCheckpoint(folder.staging)) {
        info(`--resume: continuing the interrupted run in ${folder.staging}`);
        label = `${opts.out} (the interrupted run in ${path.basename(folder.staging)})`;
      } else if (hasCheckpoint(folder.final)) {
        readCheckpointState(folder.final); // its checksums, naming the user's files, before the copy
        folder.resetStaging(folder.final);
        seededEpoch = readCheckpointState(folder.staging).state.epoch;
      } else throw new UsageError(`--resume: no checkpoint in ${opts.out} (nor an interrupted run beside it)`);
    } else {
      if (hasCheckpoint(folder.staging)) info(`discarding the checkpoints of an interrupted run in ${folder.staging} (--resume would continue it)`);
      folder.resetStaging();
    }
    let trained: tf.LayersModel;
    let metrics: TrainMetrics;
    try {
      ({ metrics, model: trained } = await trainModel(opts, { dir: folder.staging, label }));
    } catch (e) {
      // A resume of the finished run that failed before a new epoch: drop the copy, keep nothing half.
      if (seededEpoch !== null) {
        let epoch: number | null = null;
        try {
          epoch = readCheckpointState(folder.staging).state.epoch;
        } catch {
          /* the copy is unreadable: drop it */
        }
        if (epoch === null || epoch === seededEpoch) folder.resetStaging();
        // name the user's file, not its copy in the staging folder
        if (e instanceof FileFormatError && e.file.startsWith(folder.staging + path.sep)) {
          throw new FileFormatError(path.join(folder.final, path.relative(folder.staging, e.file)), e.problem);
        }
      }
      throw e;
    }
    folder.commit();
    const out = folder.final;
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
  } finally {
    folder.release();
  }
}
