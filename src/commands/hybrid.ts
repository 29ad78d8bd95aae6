// `memristor-tfjs hybrid`: the whole hybrid method of Yao et al. (Nature 2020) in one job:
// offline hardware-aware training -> mapping and write-verify programming -> crossbar evaluation
// (the accuracy right after transfer) -> in-situ training of the last FC layer on its arrays ->
// evaluation again. Writes DIR/model, DIR/crossbar (after transfer), DIR/insitu (after in-situ
// training) and DIR/summary.json.
import * as path from 'path';
import { tf } from '../tf';
import { writeJsonAtomic } from '../atomic';
import { claimOutputFolder } from '../output_folder';
import { loadDeviceConfig, DeviceConfig } from '../device/config';
import { UsageError } from '../errors';
import { mapModel, saveCrossbar, disposeCrossbar, mappingReport } from '../crossbar/network';
import { evaluateCrossbar, crossbarCounts } from '../crossbar/inference';
import { formatLayerReports } from '../mapping/program';
import { writeInsituFiles } from '../../training/insitu_files';
import type { InsituRule } from '../../training/insitu';
import { estimateEnergy, summarizeEnergy } from '../energy';
import { trainModel } from './train';
import { checkRule, runInsitu, DEFAULT_INSITU_LR } from './insitu';
import { CommonOptions, info, pct, printResult, startBackend, arrayFlag, tracked } from './common';

export const SUMMARY_FILE = 'summary.json';
export const HYBRID_FORMAT = 'memristor-tfjs-hybrid';

export interface HybridCommandOptions extends CommonOptions {
  model: string;
  dataset?: string;
  device: string;
  out: string;
  /** --overwrite: replace an existing non-empty --out. */
  overwrite?: boolean;
  seed?: number;
  /** Offline training. */
  epochs?: number;
  batchSize?: number;
  trainSamples?: number;
  testSamples?: number;
  /** Mapping. */
  array?: string;
  replicas?: number;
  /** In-situ training. */
  insituSamples?: number;
  insituEpochs?: number;
  rule?: string;
  lr?: number;
  threshold?: number;
  progress?: boolean;
}

export async function hybridCommand(opts: HybridCommandOptions) {
  if (!opts.model) throw new UsageError('hybrid: give --model NAME (see `memristor-tfjs models`)');
  if (!opts.device) throw new UsageError('hybrid: give --device PRESET|FILE.json (see `memristor-tfjs devices`)');
  if (!opts.out) throw new UsageError('hybrid: give --out DIR');
  const size = arrayFlag(opts.array);
  const rule = checkRule(opts.rule);
  const device = loadDeviceConfig(opts.device);
  const seed = opts.seed ?? 1;
  const dataset = opts.dataset ?? 'mnist';
  // The whole run folder is built beside --out and renamed into place when complete.
  const folder = claimOutputFolder(opts.out, { overwrite: opts.overwrite });
  try {
    return await runHybrid(opts, { rule, device, seed, dataset, size, out: folder.final, staging: folder.staging }, () => folder.commit());
  } finally {
    folder.release();
  }
}

async function runHybrid(
  opts: HybridCommandOptions,
  p: { rule: InsituRule; device: DeviceConfig; seed: number; dataset: string; size: [number, number]; out: string; staging: string },
  commit: () => void,
) {
  const { rule, device, seed, dataset, size, out, staging } = p;
  const t0 = performance.now();
  const backend = await startBackend(opts);

  // 1. offline, hardware-aware training
  info(`[1/4] offline training of ${opts.model}`);
  const { metrics, model, data } = await trainModel({
    model: opts.model,
    dataset,
    epochs: opts.epochs ?? 1,
    batchSize: opts.batchSize,
    seed,
    trainSamples: opts.trainSamples,
    testSamples: opts.testSamples,
    validationSplit: 0,
    optimizer: 'adam',
    schedule: 'cosine',
    out: path.join(out, 'model'),
    progress: opts.progress,
  }, { backend, dir: path.join(staging, 'model') });
  const t1 = performance.now();

  // 2. mapping and write-verify programming
  info(`[2/4] mapping onto ${device.name} arrays and write-verify programming`);
  const net = tracked(opts, 'write-verify programming', (onProgress) => mapModel(model, device, { arrayRows: size[0], arrayCols: size[1], replicas: opts.replicas ?? 1, seed, onProgress }), 'weights');
  try {
    await saveCrossbar(net, path.join(staging, 'crossbar'));
    info(formatLayerReports(mappingReport(net)));
    const t2 = performance.now();

    // 3. the accuracy right after transfer
    info(`[3/4] crossbar inference after transfer (${data.test.count} test images)`);
    const ev = { calibration: data.train, calibrationSamples: 500, imageShape: data.imageShape, numClasses: data.numClasses, seed };
    const transferred = tracked(opts, 'after transfer', (onProgress) => evaluateCrossbar(net, data.test, { ...ev, onProgress }));
    info(`after transfer: ${pct(transferred.accuracy)} (software ${pct(metrics.testAccuracy)})`);
    const t3 = performance.now();

    // 4. in-situ training of the last FC layer, and the accuracy after it
    info(`[4/4] in-situ training of the last FC layer (${rule} rule)`);
    const { result, record, after } = runInsitu(
      net,
      data,
      { samples: opts.insituSamples, epochs: opts.insituEpochs, rule, lr: opts.lr ?? DEFAULT_INSITU_LR, threshold: opts.threshold, seed, progress: opts.progress },
      transferred.accuracy,
      path.join(out, 'crossbar'),
    );
    await writeInsituFiles(net, record, path.join(staging, 'insitu'), result.pulseLog);
    const t4 = performance.now();

    const software = metrics.testAccuracy;
    const lost = software - transferred.accuracy;
    const summary = {
      format: HYBRID_FORMAT,
      version: 1,
      model: opts.model,
      dataset,
      device: device.name,
      seed,
      backend: backend.name,
      softwareAccuracy: software,
      transferredAccuracy: transferred.accuracy,
      insituAccuracy: after,
      insituSamples: result.samples,
      insituImagesSeen: result.imagesSeen,
      insituEpochs: record.epochs,
      insituRule: result.rule,
      insituLr: record.lr,
      insituUpdates: result.updates,
      insituPulses: result.totalPulses,
      insituProgramming: record.programming,
      testSamples: transferred.count,
      lostPoints: Number((100 * lost).toFixed(3)),
      recoveredPoints: Number((100 * (after - transferred.accuracy)).toFixed(3)),
      recoveredFraction: lost > 0 ? Number(((after - transferred.accuracy) / lost).toFixed(4)) : null,
      offline: { epochs: metrics.epochs, batchSize: metrics.batchSize, trainSamples: metrics.trainSamples, trainSamplesPerSec: metrics.trainSamplesPerSec },
      mapping: { array: `${size[0]}x${size[1]}`, replicas: opts.replicas ?? 1, scheme: net.mapping.scheme },
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
    writeJsonAtomic(path.join(staging, SUMMARY_FILE), summary);
    commit();
    printResult(opts, summary, () => {
      const row = (k: string, v: number) => `${k.padEnd(28)} ${pct(v).padStart(8)}`;
      return [
        `hybrid training: ${opts.model} on ${dataset}, device ${device.name}, seed ${seed}`,
        row('software (offline)', software),
        row('after transfer to arrays', transferred.accuracy),
        row('after in-situ training', after),
        `lost ${summary.lostPoints.toFixed(2)} points in transfer; in-situ training of ${result.layer} recovered ${summary.recoveredPoints.toFixed(2)}` +
          (summary.recoveredFraction !== null ? ` (${(100 * summary.recoveredFraction).toFixed(0)}%)` : '') +
          ` with ${result.samples} images, ${result.totalPulses} pulses`,
        summarizeEnergy(summary.energy),
        `total ${summary.seconds.total.toFixed(1)} s; wrote ${out}/summary.json, model/, crossbar/, insitu/ (see \`memristor-tfjs report ${opts.out}\`)`,
      ].join('\n');
    });
    return summary;
  } finally {
    disposeCrossbar(net);
    tf.disposeVariables();
  }
}

function round3(v: number): number {
  return Number(v.toFixed(3));
}
