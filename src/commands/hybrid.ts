// `memristor-tfjs hybrid`: the whole hybrid method of Yao et al. (Nature 2020) in one job:
// offline training (against the device unless --no-device-aware) -> mapping and write-verify
// programming -> crossbar evaluation (the accuracy right after transfer) -> in-situ training of the
// last FC layer on its arrays -> evaluation again. Writes DIR/model, DIR/crossbar (after
// transfer), DIR/insitu (after in-situ training) and DIR/summary.json; with
// --compare-device-aware also the other run under DIR/plain (or DIR/device-aware). The method is
// training/pipeline.ts runHybrid; this file parses, calls and prints.
import * as os from 'os';
import { loadDeviceConfig } from '../device/config';
import { UsageError } from '../errors';
import { claimOutputFolder } from '../output_folder';
import type { DeviceVariation } from '../../layers/variation';
import { runHybrid, HybridSummary, SUMMARY_FILE, HYBRID_FORMAT } from '../../training/pipeline';
import { modelNames } from '../../models/registry';
import { summarizeEnergy } from '../energy';
import { CommonOptions, info, pct, printResult, startBackend, arrayFlag, progressOf, checkModelFlags } from './common';
import { checkRuleFlag } from './insitu';

export { SUMMARY_FILE, HYBRID_FORMAT };

export interface HybridCommandOptions extends CommonOptions {
  model: string;
  /** --depth (resnet), --batch-norm / --no-batch-norm (vgg16). */
  depth?: number;
  batchNorm?: boolean;
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
  /** --no-device-aware sets it false: the plain run. Default true. */
  deviceAware?: boolean;
  /** --compare-device-aware: run both and report both transfer drops. */
  compareDeviceAware?: boolean;
  /** --variation k=v,...: overrides of the device's training noise. */
  variation?: Partial<DeviceVariation>;
  /** --weight-clip-rms K: the weight-scale clip of device-aware training (0: none). */
  weightClipRms?: number;
  /** Mapping. */
  array?: string;
  replicas?: number;
  /** --replicate L1,L2: the conv layers that get --replicas (default: every conv layer). */
  replicate?: string;
  /** In-situ training. */
  insituSamples?: number;
  insituEpochs?: number;
  rule?: string;
  lr?: number;
  threshold?: number;
  momentum?: number;
  transferEvery?: number;
  readEvery?: number;
  oracle?: boolean;
  /** --layers last|last2|all-dense (in situ). */
  layers?: string;
  /** --workers: threads of the offline training (default: the number of cores). */
  workers?: number;
  progress?: boolean;
}

export async function hybridCommand(opts: HybridCommandOptions): Promise<HybridSummary> {
  if (!opts.model) throw new UsageError('hybrid: give --model NAME (see `memristor-tfjs models`)');
  if (!opts.device) throw new UsageError('hybrid: give --device PRESET|FILE.json (see `memristor-tfjs devices`)');
  if (!opts.out) throw new UsageError('hybrid: give --out DIR');
  const size = arrayFlag(opts.array);
  checkRuleFlag(opts.rule);
  if (!modelNames().includes(opts.model)) throw new UsageError(`unknown model '${opts.model}' (choose ${modelNames().join(', ')})`);
  checkModelFlags(opts.model, opts);
  const aware = opts.deviceAware ?? true;
  if ((opts.variation || opts.weightClipRms !== undefined) && !aware && !opts.compareDeviceAware) {
    throw new UsageError('--variation and --weight-clip-rms set device-aware training: drop --no-device-aware');
  }
  const device = loadDeviceConfig(opts.device);
  // The whole run folder is built beside --out and renamed into place when complete.
  const folder = claimOutputFolder(opts.out, { overwrite: opts.overwrite });
  let summary: HybridSummary;
  try {
    const backend = await startBackend(opts);
    const bar = progressOf(opts);
    summary = await runHybrid(
      {
        model: opts.model,
        ...(opts.depth !== undefined ? { depth: opts.depth } : {}),
        ...(opts.batchNorm !== undefined ? { batchNorm: opts.batchNorm } : {}),
        dataset: opts.dataset,
        device,
        out: opts.out,
        writeTo: folder.staging,
        seed: opts.seed,
        epochs: opts.epochs,
        batchSize: opts.batchSize,
        trainSamples: opts.trainSamples,
        testSamples: opts.testSamples,
        deviceAware: aware,
        compareDeviceAware: !!opts.compareDeviceAware,
        variation: opts.variation ?? null,
        ...(opts.weightClipRms !== undefined ? { weightClipRms: opts.weightClipRms || null } : {}),
        arrayRows: size[0],
        arrayCols: size[1],
        replicas: opts.replicas,
        ...(opts.replicate !== undefined ? { replicate: opts.replicate.split(',').map((n) => n.trim()) } : {}),
        insituSamples: opts.insituSamples,
        insituEpochs: opts.insituEpochs,
        rule: opts.rule,
        lr: opts.lr,
        threshold: opts.threshold,
        momentum: opts.momentum,
        transferEvery: opts.transferEvery,
        readEvery: opts.readEvery,
        oracle: opts.oracle,
        insituLayers: opts.layers,
        backend: backend.name,
        workers: opts.workers ?? os.availableParallelism(),
      },
      { onInfo: info, progress: bar },
    );
    folder.commit();
  } finally {
    folder.release();
  }
  printResult(opts, summary, () => formatHybridSummary(summary, opts.out));
  return summary;
}

/** The human-readable result of a hybrid run. */
export function formatHybridSummary(s: HybridSummary, out: string): string {
  const row = (k: string, v: number) => `${k.padEnd(28)} ${pct(v).padStart(8)}`;
  const lines = [
    `hybrid training: ${s.model} on ${s.dataset}, device ${s.device}, seed ${s.seed}, ${s.deviceAware ? 'device-aware' : 'plain'} offline training`,
    row('software (offline)', s.softwareAccuracy),
    row('after transfer to arrays', s.transferredAccuracy),
    row('after in-situ training', s.insituAccuracy),
    `lost ${s.lostPoints.toFixed(2)} points in transfer; in-situ training recovered ${s.recoveredPoints.toFixed(2)}` +
      (s.recoveredFraction !== null ? ` (${(100 * s.recoveredFraction).toFixed(0)}%)` : '') +
      ` with ${s.insituSamples} images, ${s.insituPulses} pulses`,
  ];
  const c = s.comparison;
  if (c) {
    const r = (label: string, f: typeof c.plain) =>
      `${label.padEnd(14)} ${pct(f.softwareAccuracy).padStart(8)} ${pct(f.transferredAccuracy).padStart(11)} ${pct(f.insituAccuracy).padStart(8)} ${f.lostPoints.toFixed(2).padStart(6)}`;
    lines.push(
      `${'training'.padEnd(14)} ${'software'.padStart(8)} ${'transferred'.padStart(11)} ${'in situ'.padStart(8)} ${'lost'.padStart(6)}`,
      r('device-aware', c.deviceAware),
      r('plain', c.plain),
      `device-aware training loses ${c.lossRatio === null ? '-' : (100 * c.lossRatio).toFixed(0) + '%'} of the plain run's points at transfer`,
    );
  }
  lines.push(
    summarizeEnergy(s.energy),
    `total ${s.seconds.total.toFixed(1)} s; wrote ${out}/summary.json, model/, crossbar/, insitu/${c ? `, ${c.deviceAware.dir === '.' ? c.plain.dir : c.deviceAware.dir}/` : ''} (see \`memristor-tfjs report ${out}\`)`,
  );
  return lines.join('\n');
}
