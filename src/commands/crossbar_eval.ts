// `memristor-tfjs evaluate --crossbar XDIR`: accuracy of a mapped network computed through its
// programmed arrays (read noise, DAC, ADC, IR drop, neurons), with the operation counts and the
// energy/latency estimate of one inference from the device's tables (src/energy.ts).
import * as path from 'path';
import { loadDataset, SAMPLE_FLAGS } from '../data/datasets';
import { FileFormatError, UsageError } from '../errors';
import { MANIFEST_FILE } from '../crossbar/files';
import { loadCrossbar, disposeCrossbar } from '../crossbar/network';
import { DRIFT_COMPENSATIONS, DriftCompensation, evaluateCrossbar, calibrationOf, driftFactorsOf } from '../crossbar/inference';
import { applyMeasured, formatMeasured } from '../crossbar/measured';
import { estimateEnergy, formatEnergy } from '../energy';
import { evaluateModel } from '../../training/offline';
import { CommonOptions, info, pct, printResult, startBackend, intFlag, progressOf, trackedEvaluation } from './common';

export interface CrossbarEvaluateCommandOptions extends CommonOptions {
  /** --crossbar XDIR */
  crossbar: string;
  /** --dataset SPEC, default 'mnist'. */
  dataset?: string;
  /** --test-samples N: the first N test samples. */
  testSamples?: number | string;
  /** --calibration-samples N: training samples that calibrate the DAC/ADC ranges, default 500. */
  calibrationSamples?: number | string;
  /** --batch-size N, default 500. */
  batchSize?: number | string;
  /** --seed S: read noise, default the mapping seed. */
  seed?: number | string;
  /** --no-read-noise: switch the read noise off. */
  readNoise?: boolean;
  /** --drift SECONDS: read the arrays this long after programming. */
  drift?: number | string;
  /** --drift-compensation none|global|per-column (default global): see src/crossbar/inference.ts. */
  driftCompensation?: string;
  /** --compare-software: also run the software model and report both. */
  compareSoftware?: boolean;
  /** --measured DIR: conductances read from a chip replace the programmed state. */
  measured?: string;
}


export async function crossbarEvaluateCommand(opts: CrossbarEvaluateCommandOptions) {
  if (!opts.crossbar) throw new UsageError('evaluate: give --crossbar XDIR');
  const testSamples = intFlag(opts.testSamples, '--test-samples', 1);
  const calibrationSamples = intFlag(opts.calibrationSamples, '--calibration-samples', 1) ?? 500;
  const batchSize = intFlag(opts.batchSize, '--batch-size', 1) ?? 500;
  const seed = intFlag(opts.seed, '--seed', 0);
  let driftSeconds: number | undefined;
  if (opts.drift !== undefined) {
    driftSeconds = Number(opts.drift);
    if (!(driftSeconds >= 0) || !Number.isFinite(driftSeconds)) throw new UsageError(`--drift must be a time in seconds >= 0, got '${opts.drift}'`);
  }
  const driftCompensation = (opts.driftCompensation ?? 'global') as DriftCompensation;
  if (!(DRIFT_COMPENSATIONS as readonly string[]).includes(driftCompensation)) {
    throw new UsageError(`--drift-compensation must be one of ${DRIFT_COMPENSATIONS.join(', ')}, got '${opts.driftCompensation}'`);
  }
  const dataset = opts.dataset ?? 'mnist';
  const backend = await startBackend(opts);
  const net = await loadCrossbar(opts.crossbar);
  try {
    const measured = opts.measured !== undefined ? applyMeasured(net, opts.measured) : null;
    if (measured) info(formatMeasured(measured));
    const data = loadDataset(dataset, { testSamples, names: SAMPLE_FLAGS });
    if (calibrationSamples > data.train.count) info(`--calibration-samples ${calibrationSamples} is more than the ${data.train.count} training samples: calibrating on all of them`);
    const inShape = net.inputShape;
    if (inShape.join('x') !== data.imageShape.join('x')) {
      throw new FileFormatError(path.join(opts.crossbar, MANIFEST_FILE), `the network takes ${inShape.join('x')} inputs, dataset ${dataset} has ${data.imageShape.join('x')}`);
    }
    const r = trackedEvaluation(opts, 'crossbar test', (onProgress, onCalibrationStep) => evaluateCrossbar(net, data.test, {
      onProgress,
      onCalibrationStep,
      calibration: data.train,
      calibrationSamples,
      batchSize,
      seed,
      readNoise: opts.readNoise ?? true,
      driftSeconds,
      driftCompensation,
      imageShape: data.imageShape,
      numClasses: data.numClasses,
    }));
    let software: { softwareAccuracy: number; softwareSeconds: number; timeRatio: number } | null = null;
    if (opts.compareSoftware) {
      const s = evaluateModel(net.model, data.test, data.imageShape, data.numClasses, batchSize, { progress: progressOf(opts), label: 'software test' });
      software = { softwareAccuracy: s.accuracy, softwareSeconds: Number(s.seconds.toFixed(3)), timeRatio: Number((r.seconds / s.seconds).toFixed(3)) };
    }
    const result = {
      crossbar: opts.crossbar,
      dataset,
      backend: backend.name,
      device: net.device.name,
      testSamples: r.count,
      testAccuracy: r.accuracy,
      accuracy: r.accuracy,
      correct: r.correct,
      seconds: Number(r.seconds.toFixed(3)),
      samplesPerSec: Math.round(r.samplesPerSec),
      calibrationSamples: r.calibrationSamples,
      calibration: calibrationOf(net),
      readNoise: opts.readNoise ?? true,
      driftSeconds: driftSeconds ?? 0,
      driftCompensation: driftSeconds ? driftCompensation : 'none',
      // per mapped layer: the factor (global) or the factor of each output column (per-column)
      driftFactors: driftFactorsOf(net).map(({ layer, factors }) => ({
        layer,
        factors: factors === null ? null : driftCompensation === 'global' ? factors[0] : Array.from(factors),
      })),
      seed: seed ?? net.mapping.seed,
      counts: r.counts,
      energy: estimateEnergy(net),
      measured,
      ...(software ?? {}),
    };
    if (r.calibrationSamples) info(`calibrated the converter ranges on ${r.calibrationSamples} training samples`);
    printResult(opts, result, () => {
      const c = r.counts.perInference;
      const lines = [
        `crossbar test accuracy ${pct(r.accuracy)} on ${r.count} samples (${net.device.name}, ${result.samplesPerSec} samples/s, ${backend.name})`,
        `per inference: ${c.arrayReads} array reads, ${c.cellsRead} cell reads, ${c.dacConversions} DAC and ${c.adcConversions} ADC conversions, ${c.neuronEvaluations} neuron evaluations, ${c.digitalAdds} digital additions`,
      ];
      if (driftSeconds) lines.push(driftLine(driftSeconds, driftCompensation, result.driftFactors));
      if (software) lines.push(`software accuracy ${pct(software.softwareAccuracy)}; crossbar / software time ${software.timeRatio}x`);
      lines.push('', formatEnergy(result.energy));
      return lines.join('\n');
    });
    return result;
  } finally {
    disposeCrossbar(net);
  }
}

function driftLine(t: number, mode: DriftCompensation, factors: { layer: string; factors: number | number[] | null }[]): string {
  const head = `read ${t} s after programming, drift compensation ${mode}`;
  if (mode === 'none') return `${head} (raw reads; converter ranges of programming time)`;
  const f = (v: number) => v.toFixed(4);
  const parts = factors.map(({ layer, factors: v }) => {
    if (v === null) return `${layer} -`;
    if (typeof v === 'number') return `${layer} x${f(v)}`;
    return `${layer} x${f(Math.min(...v))}..${f(Math.max(...v))}`;
  });
  return `${head}: ${parts.join(', ')}`;
}
