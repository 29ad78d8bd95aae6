// `memristor-tfjs train`: build a model of the registry (against a device with --device), train it
// offline, save it with metrics.json. The work is training/pipeline.ts trainModel.
import * as os from 'os';
import * as path from 'path';
import { tf } from '../tf';
import type { DeviceVariation } from '../../layers/variation';
import { trainModel, TrainMetrics, TrainModelOptions } from '../../training/pipeline';
import { SCHEMES, Scheme } from '../mapping/schemes';
import { FileFormatError, UsageError } from '../errors';
import { claimOutputFolder } from '../output_folder';
import { hasCheckpoint, readCheckpointState } from '../../training/checkpoint';
import { SAMPLE_FLAGS } from '../data/datasets';
import { modelNames } from '../../models/registry';
import { CommonOptions, info, printResult, startBackend, pct, progressOf, checkModelFlags } from './common';

export type { TrainMetrics };

/** The train flags: the library's TrainModelOptions, with the CLI's forms of the device fields. */
export interface TrainCommandOptions
  extends CommonOptions,
    Omit<TrainModelOptions, 'out' | 'device' | 'scheme' | 'variation' | 'weightClipRms' | 'backend'> {
  out: string;
  /** --overwrite: replace an existing non-empty --out. */
  overwrite?: boolean;
  /** --device PRESET|FILE.json: device-aware training. */
  device?: string;
  /** --scheme: the mapping scheme the device's noise and levels follow. */
  scheme?: string;
  /** --variation k=v,...: noise without a device, or overrides of the device's. */
  variation?: Partial<DeviceVariation>;
  /** --weight-clip-rms K (0: none). */
  weightClipRms?: number;
  progress?: boolean;
}

export async function trainCommand(opts: TrainCommandOptions): Promise<TrainMetrics> {
  if (opts.scheme !== undefined && !(SCHEMES as readonly string[]).includes(opts.scheme)) {
    throw new UsageError(`--scheme must be one of ${SCHEMES.join(', ')}, got '${opts.scheme}'`);
  }
  if (opts.scheme !== undefined && !opts.device) throw new UsageError('--scheme needs --device');
  if (opts.float && opts.device) throw new UsageError('--float trains without a device: drop --float or --device');
  if (!modelNames().includes(opts.model)) throw new UsageError(`unknown model '${opts.model}' (choose ${modelNames().join(', ')})`);
  checkModelFlags(opts.model, opts);
  // The run is built in .OUT.partial beside --out (kept after a kill or an error, so that --resume
  // continues it) and renamed into place when complete.
  const folder = claimOutputFolder(opts.out, { overwrite: opts.overwrite, continues: !!opts.resume, staging: 'resumable' });
  let seededEpoch: number | null = null;
  let label = opts.out;
  let metrics: TrainMetrics;
  let trained: tf.LayersModel;
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
    const backend = await startBackend(opts);
    try {
      ({ metrics, model: trained } = await trainModel(
        { ...opts, workers: opts.workers ?? os.availableParallelism(), device: opts.device ?? null, scheme: opts.scheme as Scheme | undefined, ...(opts.weightClipRms !== undefined ? { weightClipRms: opts.weightClipRms || null } : {}) },
        { backend, dir: folder.staging, label, names: SAMPLE_FLAGS },
        { onInfo: info, progress: progressOf(opts) },
      ));
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
  } finally {
    folder.release();
  }
  const out = path.resolve(opts.out);
  const kind = opts.float ? 'float' : metrics.device ? `trained against ${metrics.device}` : 'memristor-aware';
  printResult(opts, metrics, () =>
    [
      `model       ${opts.model} (${kind}${metrics.weightLevels ? `, ${metrics.weightLevels}-level weights` : ''})`,
      `dataset     ${opts.dataset}: ${metrics.trainSamples} train / ${metrics.testSamples} test`,
      `backend     ${metrics.backend}`,
      `training    ${opts.epochs} epoch(s), ${metrics.trainSamplesPerSec} samples/s, ${metrics.trainSeconds.toFixed(1)} s` +
        (metrics.workers > 1 ? ` on ${metrics.workers} threads (batch ${metrics.batchSize})` : ''),
      `test acc    ${pct(metrics.testAccuracy)}`,
      `saved       ${out}/model.json, weights.bin, metrics.json`,
    ].join('\n'),
  );
  trained.dispose();
  tf.disposeVariables();
  return metrics;
}
