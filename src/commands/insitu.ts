// `memristor-tfjs insitu`: train the last FC layer of a mapped network in situ, on its arrays, with
// pulse updates (training/pipeline.ts runInsitu), and write the tuned crossbar directory with the
// learning curve. The input directory is only read.
import * as path from 'path';
import { loadDataset, SAMPLE_FLAGS } from '../data/datasets';
import { FileFormatError, UsageError } from '../errors';
import { MANIFEST_FILE } from '../crossbar/files';
import { loadCrossbar, disposeCrossbar, CrossbarNetwork } from '../crossbar/network';
import { applyMeasured, formatMeasured } from '../crossbar/measured';
import { claimOutputFolder } from '../output_folder';
import { evaluateCrossbar } from '../crossbar/inference';
import { INSITU_RULES, InsituRule, DEFAULT_INSITU_LR, insituLayers } from '../../training/insitu';
import { writeInsituFiles } from '../../training/insitu_files';
import { runInsitu, checkRule, checkLayers } from '../../training/pipeline';
import { CommonOptions, info, pct, printResult, startBackend, progressOf, trackedEvaluation } from './common';

export interface InsituFlags {
  /** --samples N: distinct training images, default 6000. */
  samples?: number;
  /** --epochs E, default 1. */
  epochs?: number;
  /** --batch-size B, default 100. */
  batchSize?: number;
  /** --lr F, default 0.3. */
  lr?: number;
  /** --rule plain|manhattan|mixed-precision|tiki-taka|pair-aware, default DEFAULT_INSITU_RULE. */
  rule?: string;
  /** --threshold uS. */
  threshold?: number;
  /** --momentum M, --transfer-every K, --read-every K, --oracle (training/insitu_rules.ts). */
  momentum?: number;
  transferEvery?: number;
  readEvery?: number;
  oracle?: boolean;
  /** --layers last|last2|all-dense. */
  layers?: string;
  /** --eval-samples N: test images of the learning curve's test points, default 1000. */
  evalSamples?: number;
  progress?: boolean;
}

export interface InsituCommandOptions extends CommonOptions, InsituFlags {
  crossbar: string;
  dataset?: string;
  out: string;
  /** --overwrite: replace an existing non-empty --out. */
  overwrite?: boolean;
  /** --measured DIR: conductances read from a chip replace the programmed state before training. */
  measured?: string;
  seed?: number;
  testSamples?: number;
  calibrationSamples?: number;
}

export { DEFAULT_INSITU_LR };

/** The rule by name (UsageError naming the flag otherwise). */
export function checkRuleFlag(rule: string | undefined, flag = '--rule'): InsituRule {
  try {
    return checkRule(rule);
  } catch {
    throw new UsageError(`${flag} must be one of ${INSITU_RULES.join(', ')}, got '${rule}'`);
  }
}

export async function insituCommand(opts: InsituCommandOptions) {
  if (!opts.crossbar) throw new UsageError('insitu: give --crossbar XDIR (a directory written by `map`)');
  if (!opts.out) throw new UsageError('insitu: give --out XDIR2 (the tuned crossbar directory to write)');
  checkRuleFlag(opts.rule);
  const dataset = opts.dataset ?? 'mnist';
  // The inputs are only read: an --out that is, holds or lies in one is refused before anything runs.
  const inputs = [{ flag: '--crossbar', path: opts.crossbar }, ...(opts.measured ? [{ flag: '--measured', path: opts.measured }] : [])];
  const folder = claimOutputFolder(opts.out, { overwrite: opts.overwrite, inputs });
  let net: CrossbarNetwork | null = null;
  try {
    const backend = await startBackend(opts);
    net = await loadCrossbar(opts.crossbar);
    // a layer set the network cannot train is refused before anything runs
    insituLayers(net, checkLayers(opts.layers));
    const measured = opts.measured !== undefined ? applyMeasured(net, opts.measured) : null;
    if (measured) info(formatMeasured(measured));
    const data = loadDataset(dataset, { testSamples: opts.testSamples, names: SAMPLE_FLAGS });
    if (net.inputShape.join('x') !== data.imageShape.join('x')) {
      throw new FileFormatError(path.join(opts.crossbar, MANIFEST_FILE), `the network takes ${net.inputShape.join('x')} inputs, dataset ${dataset} has ${data.imageShape.join('x')}`);
    }
    const calib = { calibration: data.train, calibrationSamples: opts.calibrationSamples ?? 500, imageShape: data.imageShape, numClasses: data.numClasses, seed: opts.seed };
    const loaded = net;
    const before = trackedEvaluation(opts, 'before in-situ', (onProgress, onCalibrationStep) => evaluateCrossbar(loaded, data.test, { ...calib, onProgress, onCalibrationStep }));
    info(`before in-situ training: ${pct(before.accuracy)} on ${before.count} test images (${net.device.name})`);
    const { result, record, after } = runInsitu(net, data, opts, before.accuracy, path.resolve(opts.crossbar), { progress: progressOf(opts) });
    const files = await writeInsituFiles(net, record!, folder.staging, result.pulseLog);
    folder.commit();
    info(`wrote ${files.length} files to ${opts.out}`);
    const out = {
      crossbar: path.resolve(opts.crossbar),
      out: folder.final,
      dataset,
      backend: backend.name,
      device: net.device.name,
      layer: result.layer,
      layers: result.layers,
      rule: result.rule,
      oracle: result.options.oracle,
      momentum: result.options.momentum,
      samples: result.samples,
      epochs: record!.epochs,
      imagesSeen: result.imagesSeen,
      updates: result.updates,
      lr: record!.lr,
      threshold: record!.threshold,
      beforeAccuracy: before.accuracy,
      afterAccuracy: after,
      testAccuracy: after,
      testSamples: before.count,
      totalPulses: result.totalPulses,
      cellReads: result.cellReads,
      setPulses: result.setPulses,
      resetPulses: result.resetPulses,
      programming: record!.programming,
      seconds: record!.seconds,
      measured,
    };
    const device = net.device.name;
    printResult(opts, out, () =>
      [
        `in-situ training of ${result.layers.join(' and ')} on ${device} (${result.rule} rule, lr ${record!.lr}, ${result.samples} images x ${record!.epochs} epoch(s), ${result.updates} updates)`,
        `test accuracy  before ${pct(before.accuracy)}  after ${pct(after)}  (${before.count} images)`,
        `pulses         ${result.totalPulses} (${result.setPulses} SET, ${result.resetPulses} RESET), ${(record!.programming.energyPJ / 1e6).toFixed(3)} uJ`,
        `saved          ${opts.out} (conductances, insitu.json, learning_curve.csv, pulses.csv)`,
      ].join('\n'),
    );
    return out;
  } finally {
    folder.release();
    if (net) disposeCrossbar(net);
  }
}
