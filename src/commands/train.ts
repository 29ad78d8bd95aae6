// `memristor-tfjs train`: build a model of the registry (against a device with --device), train it
// offline, save it with metrics.json. The work is training/pipeline.ts trainModel.
import * as path from 'path';
import { tf } from '../tf';
import type { DeviceVariation } from '../../layers/variation';
import { trainModel, TrainMetrics } from '../../training/pipeline';
import { OptimizerName } from '../../training/offline';
import { barProgress } from '../../training/progress';
import { ScheduleName } from '../../training/schedule';
import { SCHEMES, Scheme } from '../mapping/schemes';
import { UsageError } from '../errors';
import { CommonOptions, info, printResult, startBackend, pct } from './common';

export type { TrainMetrics };

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
  const backend = await startBackend(opts);
  const { metrics, model: trained } = await trainModel(
    { ...opts, device: opts.device ?? null, scheme: opts.scheme as Scheme | undefined, ...(opts.weightClipRms !== undefined ? { weightClipRms: opts.weightClipRms || null } : {}) },
    { backend },
    { onInfo: info, progress: opts.progress === false ? undefined : barProgress() },
  );
  const out = path.resolve(opts.out);
  const kind = opts.float ? 'float' : metrics.device ? `trained against ${metrics.device}` : 'memristor-aware';
  printResult(opts, metrics, () =>
    [
      `model       ${opts.model} (${kind}${metrics.weightLevels ? `, ${metrics.weightLevels}-level weights` : ''})`,
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
