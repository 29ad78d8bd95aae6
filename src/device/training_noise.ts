// The device config seen from training: the one conversion between a DeviceConfig (what `map`
// programs and the crossbar reads) and the layers' training-time `variation` (layers/variation.ts,
// which documents the noise model), plus the weight levels the device can hold. Training reads the
// device through this view, so there is one vocabulary from training to chip.
//
// DeviceConfig -> variation (variationFromDevice), field by field:
//   gOnOffRatio        = gMax / gMin (an ideal gMin = 0 becomes IDEAL_ON_OFF = 1e6, and back)
//   rOnSigma           = variation.rOnSigma    (same meaning: lognormal sigma of a cell's R_ON)
//   rOffSigma          = variation.rOffSigma
//   stuckAtRonRate     = faults.stuckAtGMax    (a cell stuck at its own gMaxCell = 1 / R_ON)
//   stuckAtRoffRate    = faults.stuckAtGMin
//   readNoiseSigma     = read.noiseSigma       (relative sigma of a read conductance)
//   scheme             = the mapping scheme (default defaultScheme)
//   referencePosition  = (gRef - gMin) / (gMax - gMin), gRef the level nearest mid-window
//                        (src/mapping/schemes.ts referenceLevel); 0.5 for the differential scheme
//   programming        = 'writeVerify' (map programs every cell by write-verify, 'exact' included)
//   programmingError   = the residual G - target that write-verify leaves, MEASURED: the real
//                        writeVerify (src/programming) runs on `cellsPerPoint` cells at each of n
//                        evenly spaced targets from gMin to gMax (n = levels, or 33 for a
//                        continuous device or more than 64 levels), cells drawn with the device's
//                        d2d and step spread but no stuck cells (those are modelled on their own),
//                        seed fixed; per target: mean and standard deviation of (G - target) /
//                        (gMax - gMin). Cached per config.
//   programmingSigma   = the standard deviation of that residual over all measured cells (a
//                        summary; the table is what the noise model uses)
// and the weight levels (weightLevelsFromDevice) where the model's layers are multi-level:
//   differential: w = weightScale (G+ - G-) with G+ and G- on L levels -> 2L - 1 weight levels
//   reference:    w = weightScale (G - gRef), gRef on level k -> 2 min(k, L - 1 - k) + 1 levels
//   continuous (levels null): no constraint (the model's own levels).
// variation -> DeviceConfig (deviceFromVariation) is the inverse on a base device that gives what
// the unitless view cannot: gMax (the scale), the pulse model and the write-verify settings (the
// residual is measured from them; it has no field of its own), DAC, ADC, drift, energy. levels come
// back from the weight levels and the scheme.
import { ConfigError } from '../errors';
import { SeededRandom } from '../random';
import { DeviceConfig, cloneDeviceConfig, validateDeviceConfig } from './config';
import { sampleDeviceInstances } from '../programming/instances';
import { writeVerify } from '../programming/write_verify';
import { quantizeToLevels } from '../programming/pulse';
import { DeviceVariation, ResolvedVariation, VariationScheme, overrideVariation, resolveVariation, ProgrammingErrorTable } from '../../layers/variation';

/** gOnOffRatio standing for gMin = 0 (an ideal device): at or above it, deviceFromVariation gives gMin 0. */
export const IDEAL_ON_OFF = 1e6;

/** What write-verify leaves: measured by measureProgrammingError. Fractions of the window gMax - gMin. */
export interface ProgrammingResidual extends ProgrammingErrorTable {
  /** Mean and standard deviation over all measured cells. */
  overallMean: number;
  overallSigma: number;
  /** Cells programmed for the measurement. */
  cells: number;
}

export interface MeasureOptions {
  /** Cells per target position; default ceil(4096 / positions), at least 128. */
  cellsPerPoint?: number;
  /** Seed of the cells and the write-verify noise; default 'training-noise'. */
  seed?: number | string;
}

/** Target positions measured for a device: its levels, or 33 for a continuous one (or > 64 levels). */
export function residualPoints(cfg: DeviceConfig): number {
  return cfg.levels !== null && cfg.levels <= 64 ? cfg.levels : 33;
}

const round6 = (x: number) => Math.round(x * 1e6) / 1e6 + 0; // + 0: no -0 in the table

const cache = new Map<string, ProgrammingResidual>();

/**
 * The residual G - target of write-verify on this device (see the top of this file): the real
 * writeVerify on fresh cells (d2d and step spread as configured, no stuck cells) at evenly spaced
 * targets, seeded, so the same config gives the same table. Cached per config and options.
 */
export function measureProgrammingError(cfg: DeviceConfig, opts: MeasureOptions = {}): ProgrammingResidual {
  const n = residualPoints(cfg);
  const per = opts.cellsPerPoint ?? Math.max(128, Math.ceil(4096 / n));
  if (!Number.isInteger(per) || per < 1) throw new ConfigError('cellsPerPoint', `must be an integer >= 1, got ${per}`);
  const seed = opts.seed ?? 'training-noise';
  const dev = cloneDeviceConfig(cfg);
  dev.faults = { stuckAtGMin: 0, stuckAtGMax: 0 };
  // what the measurement depends on (not the name, energy, latency, DAC/ADC, ...)
  const key = JSON.stringify([dev.gMin, dev.gMax, dev.levels, dev.pulse, dev.writeVerify, dev.variation, dev.read.noiseSigma, per, seed]);
  const hit = cache.get(key);
  if (hit) return { ...hit, mean: [...hit.mean], sigma: [...hit.sigma] };
  const win = dev.gMax - dev.gMin;
  const targets = new Float32Array(n * per);
  for (let p = 0; p < n; p++) targets.fill(dev.gMin + (p * win) / (n - 1), p * per, (p + 1) * per);
  const rng = new SeededRandom(seed);
  const inst = sampleDeviceInstances(dev, targets.length, rng.fork('cells'));
  const r = writeVerify(targets, dev, inst, rng.fork('verify'));
  const mean: number[] = [];
  const sigma: number[] = [];
  let s = 0;
  let s2 = 0;
  for (let p = 0; p < n; p++) {
    let a = 0;
    let a2 = 0;
    for (let i = p * per; i < (p + 1) * per; i++) {
      const e = (r.programmed[i] - targets[i]) / win;
      a += e;
      a2 += e * e;
    }
    s += a;
    s2 += a2;
    const m = a / per;
    mean.push(round6(m));
    sigma.push(round6(Math.sqrt(Math.max(0, a2 / per - m * m))));
  }
  const cells = n * per;
  const om = s / cells;
  const out: ProgrammingResidual = { mean, sigma, overallMean: round6(om), overallSigma: round6(Math.sqrt(Math.max(0, s2 / cells - om * om))), cells };
  cache.set(key, out);
  return { ...out, mean: [...mean], sigma: [...sigma] };
}

/** The level index of the reference conductance (the level nearest mid-window) of an L-level device. */
function referenceIndex(levels: number): number {
  // quantizeToLevels rounds (mid - gMin) / step = (L - 1) / 2 half up
  return Math.floor((levels - 1) / 2 + 0.5);
}

/** The reference cell's position in the window (the 'reference' scheme; 0.5 for a continuous device). */
export function referencePositionOf(cfg: DeviceConfig): number {
  if (cfg.levels !== null) return referenceIndex(cfg.levels) / (cfg.levels - 1);
  const mid = quantizeToLevels(new Float32Array([(cfg.gMin + cfg.gMax) / 2]), cfg)[0];
  return (mid - cfg.gMin) / (cfg.gMax - cfg.gMin);
}

/**
 * Weight levels the device can hold with a scheme (see the top of this file); null for a
 * continuous device (no constraint).
 */
export function weightLevelsFromDevice(cfg: DeviceConfig, scheme: VariationScheme = cfg.defaultScheme): number | null {
  const L = cfg.levels;
  if (L === null) return null;
  if (scheme === 'differential') return 2 * L - 1;
  const k = referenceIndex(L);
  const s = Math.min(k, L - 1 - k);
  if (s < 1) throw new ConfigError('levels', `the reference scheme needs a level strictly inside the window, a ${L}-level device has none`);
  return 2 * s + 1;
}

export interface FromDeviceOptions {
  /** Mapping scheme; default the device's defaultScheme. */
  scheme?: VariationScheme;
  /** The write-verify residual; default measureProgrammingError(cfg). */
  measuredResidual?: ProgrammingResidual;
}

/** The training variation of a device (the correspondence at the top of this file). */
export function variationFromDevice(cfg: DeviceConfig, opts: FromDeviceOptions = {}): ResolvedVariation {
  const scheme = opts.scheme ?? cfg.defaultScheme;
  const res = opts.measuredResidual ?? measureProgrammingError(cfg);
  const ratio = cfg.gMin > 0 ? Math.min(cfg.gMax / cfg.gMin, IDEAL_ON_OFF) : IDEAL_ON_OFF;
  return resolveVariation({
    gOnOffRatio: ratio,
    rOnSigma: cfg.variation.rOnSigma,
    rOffSigma: cfg.variation.rOffSigma,
    programmingSigma: res.overallSigma,
    stuckAtRonRate: cfg.faults.stuckAtGMax,
    stuckAtRoffRate: cfg.faults.stuckAtGMin,
    readNoiseSigma: cfg.read.noiseSigma,
    programming: 'writeVerify',
    programmingError: { mean: [...res.mean], sigma: [...res.sigma] },
    scheme,
    referencePosition: scheme === 'reference' ? referencePositionOf(cfg) : 0.5,
  });
}

/** What training takes from a device: the variation (with overrides) and the weight levels. */
export interface DeviceTrainingView {
  variation: ResolvedVariation;
  /** Weight levels of multi-level layers, null: the model's own. */
  weightLevels: number | null;
  scheme: VariationScheme;
  /** The device's name. */
  device: string;
}

/**
 * The training view of a device: variationFromDevice with `overrides` on single fields
 * (`--variation k=v`; programmingSigma replaces the measured table), and the weight levels.
 */
export function deviceTrainingView(cfg: DeviceConfig, opts: FromDeviceOptions & { overrides?: DeviceVariation | null } = {}): DeviceTrainingView {
  const scheme = opts.scheme ?? cfg.defaultScheme;
  const base = variationFromDevice(cfg, { ...opts, scheme });
  return { variation: overrideVariation(base, opts.overrides ?? null), weightLevels: weightLevelsFromDevice(cfg, scheme), scheme, device: cfg.name };
}

/**
 * The inverse: `base` with the fields the variation is a view of replaced (see the top of this
 * file). `weightLevels` (optional) sets the device's levels through the scheme. Validated; a
 * ConfigError names the field that does not fit.
 */
export function deviceFromVariation(variation: DeviceVariation, base: DeviceConfig, opts: { weightLevels?: number | null } = {}): DeviceConfig {
  const v = resolveVariation(variation);
  const cfg = cloneDeviceConfig(base);
  cfg.gMin = v.gOnOffRatio >= IDEAL_ON_OFF ? 0 : cfg.gMax / v.gOnOffRatio;
  cfg.variation = { ...cfg.variation, rOnSigma: v.rOnSigma, rOffSigma: v.rOffSigma };
  cfg.faults = { stuckAtGMin: v.stuckAtRoffRate, stuckAtGMax: v.stuckAtRonRate };
  cfg.read = { ...cfg.read, noiseSigma: v.readNoiseSigma };
  cfg.defaultScheme = v.scheme;
  const W = opts.weightLevels;
  if (W === null) cfg.levels = null;
  else if (W !== undefined) {
    if (!Number.isInteger(W) || W < 3 || W % 2 === 0) throw new ConfigError('weightLevels', `a device's signed weight levels are an odd integer >= 3, got ${W}`);
    // differential: 2L - 1 = W; reference: W = L for an odd L (reference at mid-window), L - 1 for an even L
    cfg.levels = v.scheme === 'differential' ? (W + 1) / 2 : Math.abs(v.referencePosition - 0.5) < 1e-9 ? W : W + 1;
  }
  return validateDeviceConfig(cfg);
}
