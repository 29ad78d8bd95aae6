// One typed config object describes a memristor device and the periphery of the crossbar it sits in
// (as aihwkit's RPU config does): conductance window, levels, pulse model, write-verify tuning,
// device-to-device variation, faults, read noise, drift, wire resistance, DAC, ADC, column neuron
// and an energy/latency table. A preset (presets.ts) is a named instance of it.
//
// Units everywhere: conductance in microsiemens (uS), resistance in ohms, voltage in volts, current in
// microamperes (uA = V x uS), time in seconds unless the field name says ns, energy in picojoules.
//
// validateDeviceConfig checks every field (missing, wrong type, out of range, unknown) and names it
// by its path (`writeVerify.tolerance: must be in [0, 1), got 1.5`); loadDeviceConfig reads a preset
// name or a JSON file (with "extends": "<preset>" for a partial config), naming the file in errors.
import * as fs from 'fs';
import * as path from 'path';
import { ConfigError, FileFormatError, UsageError } from '../errors';
import { PRESETS } from './presets';
import { readTextFile } from '../input_files';

/**
 * Per-pulse conductance change of a cell (the same model serves write-verify and in-situ training).
 * With x = (G - gMinCell) / (gMaxCell - gMinCell) the cell's place in its own window:
 *   'softBounds' (aihwkit SoftBoundsDevice form):  SET  dG = +dgSet   * s * (1 - x) * (1 + c2cSigma * xi)
 *                                                  RESET dG = -dgReset * s * x       * (1 + c2cSigma * xi)
 *   'constantStep' (aihwkit ConstantStepDevice):   SET  dG = +dgSet   * s * (1 + c2cSigma * xi)
 *                                                  RESET dG = -dgReset * s * (1 + c2cSigma * xi)
 *   'exponential' (NeuroSim's nonlinear LTP/LTD):  SET  dG = +dgSet   * s * (1 - nonlinearitySet * x)       * (1 + c2cSigma * xi)
 *                                                  RESET dG = -dgReset * s * (1 - nonlinearityReset * (1 - x)) * (1 + c2cSigma * xi)
 *   'lookup' (a measured table, see PulseTable):   SET  dG = s * (setMean(G') + setStd(G') * xi)
 *                                                  RESET dG = s * (resetMean(G') + resetStd(G') * xi)
 *     G' = gMin + x (gMax - gMin) is the cell's place mapped onto the nominal window, the table
 *     interpolated linearly between its bin centres.
 * xi ~ N(0, 1) new for every pulse, s the cell's own step scale (variation.stepSigma), and the
 * result is clipped to [gMinCell, gMaxCell]: a pulse never takes a cell out of its window. The
 * steps shrink towards the bound they push to (soft bounds), and dgSet != dgReset gives the
 * up/down asymmetry. The exponential model's step changes linearly with G, so a pulse train traces
 * NeuroSim's G(P) = B (1 - e^{-P/A}) + gMin: nonlinearity 1 is soft bounds, 0 constant steps,
 * between them a curve that reaches the far bound after Pmax pulses (nonlinearity = 1 - e^{-Pmax/A}),
 * below 0 steps that grow towards the bound (A < 0).
 */
export type PulseConfig = StepPulseConfig | ExponentialPulseConfig | LookupPulseConfig;

/** The pulse model names, in the order the validation lists them. */
export const PULSE_MODELS = ['softBounds', 'constantStep', 'exponential', 'lookup'] as const;

/** What every pulse model has. */
interface PulseStepFields {
  /**
   * Conductance step of one SET (potentiating) pulse at the cell's lower bound, uS. > 0.
   * 'lookup': not read by the pulse; the table's mean SET step in its lowest bin (written by
   * fit-device), the device's step size for rules that need one (the in-situ manhattan threshold).
   */
  dgSet: number;
  /** Conductance step of one RESET (depressing) pulse at the cell's upper bound, uS. > 0. 'lookup': as dgSet. */
  dgReset: number;
  /**
   * Cycle-to-cycle noise: relative sigma of each step (new at every pulse), unitless, in [0, 2].
   * 'lookup': not read by the pulse (the table holds the spread); the table's mean relative spread.
   */
  c2cSigma: number;
}

export interface StepPulseConfig extends PulseStepFields {
  /** Step model, see PulseConfig. */
  model: 'softBounds' | 'constantStep';
}

export interface ExponentialPulseConfig extends PulseStepFields {
  model: 'exponential';
  /** How much the SET step shrinks from the lower bound to the upper: 1 soft bounds, 0 constant, < 0 growing. In [-10, 1]. */
  nonlinearitySet: number;
  /** How much the RESET step shrinks from the upper bound to the lower. In [-10, 1]. */
  nonlinearityReset: number;
}

export interface LookupPulseConfig extends PulseStepFields {
  model: 'lookup';
  table: PulseTable;
}

/**
 * A measured step table (fit-device writes it): bins of G over the nominal window, per polarity the
 * mean and the standard deviation of the step of one pulse.
 */
export interface PulseTable {
  /** Bin edges, uS, strictly increasing, from <= gMin to >= gMax; 2 to LOOKUP_MAX_BINS + 1 of them. */
  edges: number[];
  /** Mean dG of one SET pulse in each bin, uS (one per bin). */
  setMean: number[];
  /** Standard deviation of the SET dG in each bin, uS, >= 0. */
  setStd: number[];
  /** Mean dG of one RESET pulse in each bin, uS (normally <= 0). */
  resetMean: number[];
  /** Standard deviation of the RESET dG in each bin, uS, >= 0. */
  resetStd: number[];
}

/** Most bins a lookup table may have. */
export const LOOKUP_MAX_BINS = 1024;

/** Closed-loop programming (read, compare, pulse) of every cell to its target conductance. */
export interface WriteVerifyConfig {
  /**
   * 'iterative': read-compare-pulse with the pulse model until within tolerance or maxPulses.
   * 'exact': every cell is set to its target (clipped to its own window) without pulses; the
   * ideal device uses it so that crossbar inference reproduces the software model.
   */
  mode: 'iterative' | 'exact';
  /** Accepted |G_read - G_target|, as a fraction of the nominal window gMax - gMin, in [0, 1). */
  tolerance: number;
  /** Most pulses a cell receives before programming gives up on it, integer >= 0. */
  maxPulses: number;
}

/** Device-to-device variation, drawn once per cell when an array is programmed. */
export interface VariationConfig {
  /**
   * Lognormal sigma of each cell's R_ON (sigma of ln R_ON, unitless): gMaxCell = gMax * exp(-rOnSigma z),
   * z ~ N(0, 1) truncated at +-D2D_TRUNCATION. In [0, 2].
   */
  rOnSigma: number;
  /** Lognormal sigma of each cell's R_OFF: gMinCell = gMin * exp(-rOffSigma z'). In [0, 2]. */
  rOffSigma: number;
  /** Lognormal sigma of each cell's pulse step scale s (aihwkit dw_min_dtod, lognormal here). In [0, 2]. */
  stepSigma: number;
}

/** Stuck cells: they keep their bound whatever is programmed (MemTorch's stuck devices). */
export interface FaultConfig {
  /** Fraction of cells stuck at their own gMinCell (R_OFF), in [0, 1]. */
  stuckAtGMin: number;
  /** Fraction of cells stuck at their own gMaxCell (R_ON), in [0, 1]; the two sum to <= 1. */
  stuckAtGMax: number;
}

/** Reading a cell. */
export interface ReadConfig {
  /** Read voltage of an input '1' (full-scale DAC output), volts, in (0, 10]. */
  voltage: number;
  /** Read noise: relative sigma of the conductance seen by one read (new at every read), in [0, 1). */
  noiseSigma: number;
}

/** Conductance drift G(t) = G(t0) (t / t0)^-nu for t > t0 (aihwkit's PCM drift form). */
export interface DriftConfig {
  /** Mean drift exponent, unitless, in [0, 1]. */
  nu: number;
  /** Cell-to-cell sigma of nu (normal, clipped at 0), in [0, 1]. */
  nuSigma: number;
  /** Time of the programming read-out that G(t0) refers to, seconds, > 0. */
  t0: number;
}

/**
 * Input DAC: how a layer input x in [0, 1] becomes row voltages.
 *   'analog': one read of amplitude x * read.voltage, x quantized to 2^bits - 1 steps (bits null:
 *     not quantized).
 *   'bitSerial' (Yao et al.): x is quantized to inputBits bits and applied bit by bit in inputBits
 *     reads; a bit 1 is a read.voltage pulse, 0 is 0 V; the column current of read k is digitized by
 *     the ADC, shifted by k and added digitally.
 */
export type DacConfig = { mode: 'analog'; bits: number | null } | { mode: 'bitSerial'; inputBits: number };

/** ADC on each column (or differential pair) current. */
export interface AdcConfig {
  /** Resolution in bits, integer in [1, 32]; null = ideal (no quantization, no clipping). */
  bits: number | null;
  /**
   * Full scale: the converter maps [-range, +range] uA to 2^bits codes, clipping outside. 'auto':
   * calibrated per layer from the currents of a calibration batch; a number: a fixed range in uA, > 0.
   */
  range: 'auto' | number;
}

/**
 * Neuron at each column:
 *   'linear': the current goes through the ADC and the layer's activation is computed digitally.
 *   'relu': an analog ReLU neuron at the column (Mott VO2 neuron, Shi et al.) passes max(0, I).
 *   'threshold': a comparator outputs 1 where the pre-activation passes the per-channel threshold
 *     taken from the training layers' batch normalization (Chen et al.; Park et al.'s binary
 *     activation), 0 otherwise; no ADC is needed.
 */
export interface NeuronConfig {
  kind: 'threshold' | 'relu' | 'linear';
}

/** Energy of one operation, picojoules (>= 0). Sources in each preset. */
export interface EnergyTable {
  /** One cell read once (V^2 G t at the read pulse). */
  cellReadPJ: number;
  /** One DAC conversion / row driver pulse. */
  dacPJ: number;
  /** One ADC conversion. */
  adcPJ: number;
  /** One column neuron evaluation. */
  neuronPJ: number;
  /** One digital addition (partial sums, shift-and-add). */
  digitalAddPJ: number;
  /** One programming (SET or RESET) pulse on one cell. */
  programmingPulsePJ: number;
}

/** Duration of one operation, nanoseconds (>= 0). */
export interface LatencyTable {
  /** One array read (all rows driven at once, one input vector or one bit-serial step). */
  readNs: number;
  /** One ADC conversion. */
  adcNs: number;
  /** One neuron evaluation. */
  neuronNs: number;
  /** One digital addition. */
  digitalAddNs: number;
  /** One programming pulse (and its verify read). */
  programmingPulseNs: number;
}

/** A memristor device and the periphery of the crossbar arrays built from it. */
export interface DeviceConfig {
  /** Preset name or a name of the user's choice. */
  name: string;
  /** One line about where the device comes from. */
  description: string;
  /** Nominal lowest conductance (1 / R_OFF), uS, >= 0. In JSON `rOff` (ohms) may be given instead. */
  gMin: number;
  /** Nominal highest conductance (1 / R_ON), uS, > gMin. In JSON `rOn` (ohms) may be given instead. */
  gMax: number;
  /** Programmable levels, equally spaced from gMin to gMax, integer in [2, 65536]; null = continuous. */
  levels: number | null;
  /** Mapping scheme the map command uses unless told otherwise (a signed weight needs two devices or a reference). */
  defaultScheme: 'differential' | 'reference';
  pulse: PulseConfig;
  writeVerify: WriteVerifyConfig;
  variation: VariationConfig;
  faults: FaultConfig;
  read: ReadConfig;
  drift: DriftConfig;
  /** Wire resistance of one cell-to-cell segment of a word line or bit line, ohms, >= 0 (0 = no IR drop). */
  wireResistance: number;
  dac: DacConfig;
  adc: AdcConfig;
  neuron: NeuronConfig;
  energy: EnergyTable;
  latency: LatencyTable;
}

/** d2d draws are truncated at this many sigmas, so that the window of a varied device is bounded. */
export const D2D_TRUNCATION = 4;

/**
 * The window every cell of a varied device lies in: [gMin e^{-4 rOffSigma}, gMax e^{+4 rOnSigma}]
 * (the d2d draws are truncated at D2D_TRUNCATION sigmas). Programmed conductances never leave it:
 * a pulse is clipped to the cell's own window, a stuck cell sits at one of its bounds, and drift
 * never takes a cell below its own gMinCell.
 */
export function variedWindow(cfg: DeviceConfig): { lo: number; hi: number } {
  return {
    lo: cfg.gMin * Math.exp(-D2D_TRUNCATION * cfg.variation.rOffSigma),
    hi: cfg.gMax * Math.exp(D2D_TRUNCATION * cfg.variation.rOnSigma),
  };
}

// ---------------------------------------------------------------------------------------------
// Validation

type Obj = Record<string, unknown>;

function show(v: unknown): string {
  if (v === undefined) return 'nothing';
  let s: string;
  try {
    s = JSON.stringify(v);
  } catch {
    s = String(v);
  }
  if (s === undefined) s = String(v);
  return s.length > 60 ? s.slice(0, 57) + '...' : s;
}

/** Which file of an "extends" chain gave a field (dotted path): the file and, for a base, the file that extended it. */
type SourceOf = (field: string) => { file: string; via?: string };

class Checker {
  constructor(
    private readonly source: string | undefined,
    private readonly prefix: string,
    private readonly sourceOf?: SourceOf,
  ) {}

  fail(field: string, problem: string): never {
    const f = field ? this.prefix + field : this.prefix.replace(/\.$/, '') || 'device config';
    const from = field && this.sourceOf ? this.sourceOf(field) : null;
    if (from) throw new FileFormatError(from.file, `${f}: ${problem}${from.via ? ` (reached from ${from.via} through "extends")` : ''}`);
    if (this.source !== undefined) throw new FileFormatError(this.source, `${f}: ${problem}`);
    throw new ConfigError(f, problem);
  }

  object(v: unknown, field: string): Obj {
    if (v === undefined) this.fail(field, 'missing');
    if (v === null || typeof v !== 'object' || Array.isArray(v)) this.fail(field, `must be an object, got ${show(v)}`);
    return v as Obj;
  }

  /** Rejects keys that are not known (typos would otherwise be silently ignored). */
  known(o: Obj, field: string, keys: readonly string[]): void {
    for (const k of Object.keys(o)) {
      if (!keys.includes(k)) this.fail(field ? `${field}.${k}` : k, `unknown field (known: ${keys.join(', ')})`);
    }
  }

  number(
    o: Obj,
    key: string,
    field: string,
    r: { min?: number; max?: number; minOpen?: boolean; maxOpen?: boolean; integer?: boolean },
  ): number {
    const f = field ? `${field}.${key}` : key;
    const v = o[key];
    if (v === undefined) this.fail(f, 'missing');
    if (typeof v !== 'number' || !Number.isFinite(v)) this.fail(f, `must be a finite number, got ${show(v)}`);
    if (r.integer && !Number.isInteger(v)) this.fail(f, `must be an integer, got ${show(v)}`);
    const lo = r.min ?? -Infinity;
    const hi = r.max ?? Infinity;
    const below = r.minOpen ? v <= lo : v < lo;
    const above = r.maxOpen ? v >= hi : v > hi;
    if (below || above) {
      let range: string;
      if (hi === Infinity) range = `${r.minOpen ? '>' : '>='} ${lo}`;
      else if (lo === -Infinity) range = `${r.maxOpen ? '<' : '<='} ${hi}`;
      else range = `in ${r.minOpen ? '(' : '['}${lo}, ${hi}${r.maxOpen ? ')' : ']'}`;
      this.fail(f, `must be ${range}, got ${show(v)}`);
    }
    return v;
  }

  nullableInt(o: Obj, key: string, field: string, min: number, max: number): number | null {
    const f = field ? `${field}.${key}` : key;
    if (o[key] === null) return null;
    if (o[key] === undefined) this.fail(f, 'missing (give null for none)');
    return this.number(o, key, field, { min, max, integer: true });
  }

  string(o: Obj, key: string, field: string, { nonEmpty = false, optional = false } = {}): string {
    const f = field ? `${field}.${key}` : key;
    const v = o[key];
    if (v === undefined && optional) return '';
    if (v === undefined) this.fail(f, 'missing');
    if (typeof v !== 'string') this.fail(f, `must be a string, got ${show(v)}`);
    if (nonEmpty && v.trim() === '') this.fail(f, 'must not be empty');
    return v;
  }

  choice<T extends string>(o: Obj, key: string, field: string, choices: readonly T[]): T {
    const f = field ? `${field}.${key}` : key;
    const v = o[key];
    if (v === undefined) this.fail(f, `missing (one of ${choices.join(', ')})`);
    if (typeof v !== 'string' || !(choices as readonly string[]).includes(v)) {
      this.fail(f, `must be one of ${choices.join(', ')}, got ${show(v)}`);
    }
    return v as T;
  }
}

const TOP_KEYS = [
  'name', 'description', 'gMin', 'gMax', 'levels', 'defaultScheme', 'pulse', 'writeVerify', 'variation',
  'faults', 'read', 'drift', 'wireResistance', 'dac', 'adc', 'neuron', 'energy', 'latency',
] as const;
const ENERGY_KEYS = ['cellReadPJ', 'dacPJ', 'adcPJ', 'neuronPJ', 'digitalAddPJ', 'programmingPulsePJ'] as const;
const LATENCY_KEYS = ['readNs', 'adcNs', 'neuronNs', 'digitalAddNs', 'programmingPulseNs'] as const;

/** rOn / rOff (ohms) -> gMax / gMin (uS) on a shallow copy; both forms at once is an error. */
function resistancesToConductances(o: Obj, c: Checker): Obj {
  if (!('rOn' in o) && !('rOff' in o)) return o;
  const out: Obj = { ...o };
  for (const [rKey, gKey] of [['rOn', 'gMax'], ['rOff', 'gMin']] as const) {
    if (!(rKey in o)) continue;
    if (gKey in o) c.fail(rKey, `give either ${rKey} (ohms) or ${gKey} (uS), not both`);
    const r = c.number(o, rKey, '', { min: 0, minOpen: true });
    out[gKey] = 1e6 / r;
    delete out[rKey];
  }
  return out;
}

const TABLE_ROWS = ['setMean', 'setStd', 'resetMean', 'resetStd'] as const;

function checkPulse(p: Obj, c: Checker, gMin: number, gMax: number): PulseConfig {
  const model = c.choice(p, 'model', 'pulse', PULSE_MODELS);
  const common = ['model', 'dgSet', 'dgReset', 'c2cSigma'];
  const own = model === 'exponential' ? ['nonlinearitySet', 'nonlinearityReset'] : model === 'lookup' ? ['table'] : [];
  for (const k of Object.keys(p)) {
    if (common.includes(k) || own.includes(k)) continue;
    const forOther = ['nonlinearitySet', 'nonlinearityReset', 'table'].includes(k);
    c.fail(`pulse.${k}`, forOther ? `not a field of the ${model} model (known: ${[...common, ...own].join(', ')})` : `unknown field (known: ${[...common, ...own].join(', ')})`);
  }
  const steps = {
    dgSet: c.number(p, 'dgSet', 'pulse', { min: 0, minOpen: true, max: 1e6 }),
    dgReset: c.number(p, 'dgReset', 'pulse', { min: 0, minOpen: true, max: 1e6 }),
    c2cSigma: c.number(p, 'c2cSigma', 'pulse', { min: 0, max: 2 }),
  };
  if (model === 'exponential') {
    return {
      model,
      ...steps,
      nonlinearitySet: c.number(p, 'nonlinearitySet', 'pulse', { min: -10, max: 1 }),
      nonlinearityReset: c.number(p, 'nonlinearityReset', 'pulse', { min: -10, max: 1 }),
    };
  }
  if (model === 'lookup') return { model, ...steps, table: checkTable(p.table, c, gMin, gMax) };
  return { model, ...steps };
}

function checkTable(raw: unknown, c: Checker, gMin: number, gMax: number): PulseTable {
  const t = c.object(raw, 'pulse.table');
  c.known(t, 'pulse.table', ['edges', ...TABLE_ROWS]);
  const list = (key: string, length?: number): number[] => {
    const f = `pulse.table.${key}`;
    const v = t[key];
    if (v === undefined) c.fail(f, 'missing');
    if (!Array.isArray(v)) c.fail(f, `must be an array of numbers, got ${show(v)}`);
    if (length !== undefined && v.length !== length) c.fail(f, `must have ${length} entries (one per bin), got ${v.length}`);
    v.forEach((x, i) => {
      if (typeof x !== 'number' || !Number.isFinite(x)) c.fail(`${f}[${i}]`, `must be a finite number, got ${show(x)}`);
      if (Math.abs(x) > 1e6) c.fail(`${f}[${i}]`, `must be in [-1000000, 1000000], got ${x}`);
    });
    return v as number[];
  };
  const edges = list('edges');
  if (edges.length < 2 || edges.length > LOOKUP_MAX_BINS + 1) {
    c.fail('pulse.table.edges', `must have 2 to ${LOOKUP_MAX_BINS + 1} entries (1 to ${LOOKUP_MAX_BINS} bins), got ${edges.length}`);
  }
  for (let i = 1; i < edges.length; i++) {
    if (!(edges[i] > edges[i - 1])) c.fail(`pulse.table.edges[${i}]`, `must be > edges[${i - 1}] (${edges[i - 1]}): bin edges increase, got ${edges[i]}`);
  }
  const slack = 1e-6 * (gMax - gMin);
  if (edges[0] > gMin + slack) c.fail('pulse.table.edges[0]', `must be <= gMin (${gMin} uS): the table covers the window, got ${edges[0]}`);
  const last = edges.length - 1;
  if (edges[last] < gMax - slack) c.fail(`pulse.table.edges[${last}]`, `must be >= gMax (${gMax} uS): the table covers the window, got ${edges[last]}`);
  const bins = edges.length - 1;
  const out = { edges } as PulseTable;
  for (const key of TABLE_ROWS) {
    out[key] = list(key, bins);
    if (key.endsWith('Std')) out[key].forEach((x, i) => x < 0 && c.fail(`pulse.table.${key}[${i}]`, `must be >= 0 (a standard deviation), got ${x}`));
  }
  return out;
}

function checkConfig(raw: unknown, c: Checker): DeviceConfig {
  let o = c.object(raw, '');
  o = resistancesToConductances(o, c);
  c.known(o, '', TOP_KEYS);

  const name = c.string(o, 'name', '', { nonEmpty: true });
  const description = c.string(o, 'description', '', { optional: true });
  const gMin = c.number(o, 'gMin', '', { min: 0, max: 1e6 });
  const gMax = c.number(o, 'gMax', '', { min: 0, max: 1e6, minOpen: true });
  if (gMax <= gMin) c.fail('gMax', `must be > gMin (${gMin} uS), got ${gMax}`);
  const levels = c.nullableInt(o, 'levels', '', 2, 65536);
  const defaultScheme = c.choice(o, 'defaultScheme', '', ['differential', 'reference'] as const);

  const pulse = checkPulse(c.object(o.pulse, 'pulse'), c, gMin, gMax);

  const w = c.object(o.writeVerify, 'writeVerify');
  c.known(w, 'writeVerify', ['mode', 'tolerance', 'maxPulses']);
  const writeVerify: WriteVerifyConfig = {
    mode: c.choice(w, 'mode', 'writeVerify', ['iterative', 'exact'] as const),
    tolerance: c.number(w, 'tolerance', 'writeVerify', { min: 0, max: 1, maxOpen: true }),
    maxPulses: c.number(w, 'maxPulses', 'writeVerify', { min: 0, max: 1e6, integer: true }),
  };

  const v = c.object(o.variation, 'variation');
  c.known(v, 'variation', ['rOnSigma', 'rOffSigma', 'stepSigma']);
  const variation: VariationConfig = {
    rOnSigma: c.number(v, 'rOnSigma', 'variation', { min: 0, max: 2 }),
    rOffSigma: c.number(v, 'rOffSigma', 'variation', { min: 0, max: 2 }),
    stepSigma: c.number(v, 'stepSigma', 'variation', { min: 0, max: 2 }),
  };
  // A cell's window must never close: the highest gMinCell stays below the lowest gMaxCell.
  const k = D2D_TRUNCATION;
  if (gMin * Math.exp(k * variation.rOffSigma) >= gMax * Math.exp(-k * variation.rOnSigma)) {
    c.fail(
      'variation.rOffSigma',
      `with rOnSigma ${variation.rOnSigma} and rOffSigma ${variation.rOffSigma} a cell's window could close ` +
        `(gMin e^{${k} rOffSigma} >= gMax e^{-${k} rOnSigma} for the window ${gMin}..${gMax} uS); lower the sigmas`,
    );
  }

  const fa = c.object(o.faults, 'faults');
  c.known(fa, 'faults', ['stuckAtGMin', 'stuckAtGMax']);
  const faults: FaultConfig = {
    stuckAtGMin: c.number(fa, 'stuckAtGMin', 'faults', { min: 0, max: 1 }),
    stuckAtGMax: c.number(fa, 'stuckAtGMax', 'faults', { min: 0, max: 1 }),
  };
  if (faults.stuckAtGMin + faults.stuckAtGMax > 1) {
    c.fail('faults.stuckAtGMax', `stuckAtGMin + stuckAtGMax must be <= 1, got ${faults.stuckAtGMin + faults.stuckAtGMax}`);
  }

  const r = c.object(o.read, 'read');
  c.known(r, 'read', ['voltage', 'noiseSigma']);
  const read: ReadConfig = {
    voltage: c.number(r, 'voltage', 'read', { min: 0, minOpen: true, max: 10 }),
    noiseSigma: c.number(r, 'noiseSigma', 'read', { min: 0, max: 1, maxOpen: true }),
  };

  const d = c.object(o.drift, 'drift');
  c.known(d, 'drift', ['nu', 'nuSigma', 't0']);
  const drift: DriftConfig = {
    nu: c.number(d, 'nu', 'drift', { min: 0, max: 1 }),
    nuSigma: c.number(d, 'nuSigma', 'drift', { min: 0, max: 1 }),
    t0: c.number(d, 't0', 'drift', { min: 0, minOpen: true, max: 1e9 }),
  };

  const wireResistance = c.number(o, 'wireResistance', '', { min: 0, max: 1e6 });

  const da = c.object(o.dac, 'dac');
  const dacMode = c.choice(da, 'mode', 'dac', ['analog', 'bitSerial'] as const);
  let dac: DacConfig;
  if (dacMode === 'analog') {
    c.known(da, 'dac', ['mode', 'bits']);
    dac = { mode: 'analog', bits: c.nullableInt(da, 'bits', 'dac', 1, 32) };
  } else {
    c.known(da, 'dac', ['mode', 'inputBits']);
    dac = { mode: 'bitSerial', inputBits: c.number(da, 'inputBits', 'dac', { min: 1, max: 32, integer: true }) };
  }

  const ad = c.object(o.adc, 'adc');
  c.known(ad, 'adc', ['bits', 'range']);
  const adcBits = c.nullableInt(ad, 'bits', 'adc', 1, 32);
  let range: 'auto' | number;
  if (ad.range === 'auto') range = 'auto';
  else if (typeof ad.range === 'number') range = c.number(ad, 'range', 'adc', { min: 0, minOpen: true, max: 1e9 });
  else c.fail('adc.range', ad.range === undefined ? "missing ('auto' or a current in uA)" : `must be 'auto' or a current in uA > 0, got ${show(ad.range)}`);
  const adc: AdcConfig = { bits: adcBits, range };

  const n = c.object(o.neuron, 'neuron');
  c.known(n, 'neuron', ['kind']);
  const neuron: NeuronConfig = { kind: c.choice(n, 'kind', 'neuron', ['threshold', 'relu', 'linear'] as const) };

  const e = c.object(o.energy, 'energy');
  c.known(e, 'energy', ENERGY_KEYS);
  const energy = {} as EnergyTable;
  for (const key of ENERGY_KEYS) energy[key] = c.number(e, key, 'energy', { min: 0, max: 1e12 });

  const l = c.object(o.latency, 'latency');
  c.known(l, 'latency', LATENCY_KEYS);
  const latency = {} as LatencyTable;
  for (const key of LATENCY_KEYS) latency[key] = c.number(l, key, 'latency', { min: 0, max: 1e12 });

  return {
    name, description, gMin, gMax, levels, defaultScheme, pulse, writeVerify, variation, faults, read, drift,
    wireResistance, dac, adc, neuron, energy, latency,
  };
}

/**
 * Checks a whole device config and returns a clean copy (unknown fields are rejected; `rOn`/`rOff`
 * in ohms are turned into gMax/gMin in uS). A bad field throws ConfigError naming its path, or,
 * when `source` (a file) is given, FileFormatError "source: field: problem".
 * `fieldPrefix` is put before every field name (e.g. 'device.' for the device inside a manifest).
 */
export function validateDeviceConfig(obj: unknown, source?: string, fieldPrefix = '', sourceOf?: SourceOf): DeviceConfig {
  return checkConfig(obj, new Checker(source, fieldPrefix, sourceOf));
}

/** A deep copy (configs are plain JSON). */
export function cloneDeviceConfig(cfg: DeviceConfig): DeviceConfig {
  return JSON.parse(JSON.stringify(cfg)) as DeviceConfig;
}

/** Pulse fields that belong to one model only (dropped when a merge changes pulse.model). */
const PULSE_MODEL_FIELDS = ['nonlinearitySet', 'nonlinearityReset', 'table'];

/**
 * Deep merge of a partial config over a base: objects merge key by key, anything else (numbers,
 * strings, null, arrays) replaces. A union object whose `mode` or `kind` changes (dac:
 * analog <-> bitSerial) is replaced whole, so no field of the other form is left behind; a pulse
 * whose `model` changes keeps the base's dgSet/dgReset/c2cSigma but not the other model's own fields.
 */
export function mergeDeviceConfig(base: unknown, over: unknown): unknown {
  const isObj = (x: unknown): x is Obj => x !== null && typeof x === 'object' && !Array.isArray(x);
  if (!isObj(base) || !isObj(over)) return over === undefined ? base : over;
  for (const tag of ['mode', 'kind']) {
    if (tag in over && tag in base && over[tag] !== base[tag]) return { ...over };
  }
  const out: Obj = { ...base };
  // A pulse whose `model` changes keeps the common step fields of the base, not the other model's own.
  if ('model' in over && 'model' in base && over.model !== base.model) {
    for (const k of PULSE_MODEL_FIELDS) delete out[k];
  }
  for (const [k, v] of Object.entries(over)) out[k] = k in out ? mergeDeviceConfig(out[k], v) : v;
  return out;
}

/** Names of the presets, in listing order. */
export function presetNames(): string[] {
  return Object.keys(PRESETS);
}

/** A preset by name (a fresh copy), or undefined. */
export function getPreset(name: string): DeviceConfig | undefined {
  const p = Object.prototype.hasOwnProperty.call(PRESETS, name) ? PRESETS[name] : undefined;
  return p ? cloneDeviceConfig(p) : undefined;
}

function readJsonFile(file: string): unknown {
  const text = readTextFile(file);
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new FileFormatError(file, `not valid JSON (${(e as Error).message})`);
  }
}

/** One file of an "extends" chain and the fields it gives itself. */
interface ChainLink {
  file: string;
  own: Obj;
}

/** The raw (unvalidated, merged) config of a JSON file, following "extends" chains; `chain` gets every file, the top first. */
function resolveFile(file: string, seen: string[], chain: ChainLink[] = []): unknown {
  const abs = path.resolve(file);
  if (seen.includes(abs)) throw new FileFormatError(file, `"extends" cycle: ${[...seen, abs].map((f) => path.basename(f)).join(' -> ')}`);
  const raw = readJsonFile(file);
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    throw new FileFormatError(file, `must hold a JSON object (a device config), got ${show(raw)}`);
  }
  const o = { ...(raw as Obj) };
  const ext = o.extends;
  delete o.extends;
  // rOn/rOff of this file replace the base's gMax/gMin.
  const own = resistancesToConductances(o, new Checker(file, ''));
  chain.push({ file, own: { ...own } });
  // A file that does not name its device is named after itself (not after the preset it extends).
  if (own.name === undefined) own.name = path.basename(file).replace(/\.json$/, '');
  if (ext === undefined) return own;
  if (typeof ext !== 'string' || ext === '') throw new FileFormatError(file, `extends: must be a preset name or a JSON file, got ${show(ext)}`);
  let base: unknown;
  const preset = getPreset(ext);
  if (preset) base = preset;
  else if (ext.endsWith('.json') || ext.includes('/') || ext.includes(path.sep)) {
    base = resolveFile(path.resolve(path.dirname(abs), ext), [...seen, abs], chain);
  } else {
    throw new FileFormatError(file, `extends: '${ext}' is not a preset (${presetNames().join(', ')}) nor a .json file`);
  }
  return mergeDeviceConfig(base, own);
}

/** The file of a chain that gives `field` (the topmost that sets it or an object above it); the top file when a preset gave it. */
function sourceInChain(chain: readonly ChainLink[], field: string): { file: string; via?: string } {
  const parts = field.split('.');
  for (const link of chain) {
    let v: unknown = link.own;
    let found = true;
    for (const k of parts) {
      if (v === null || typeof v !== 'object' || Array.isArray(v)) break; // a non-object above the field: this file gave it
      if (!(k in (v as Obj))) {
        found = false;
        break;
      }
      v = (v as Obj)[k];
    }
    if (found) return link === chain[0] ? { file: link.file } : { file: link.file, via: chain[0].file };
  }
  return { file: chain[0].file };
}

/**
 * A device config from a preset name (`yao2020`, `park2024`, `chen2021`, `cbram`, `ideal`) or from
 * a JSON file. The file may hold a whole config or a partial one with `"extends": "<preset>"`
 * (or a path to another JSON file, relative to this one); it may give `rOn`/`rOff` in ohms instead
 * of `gMax`/`gMin`. A file without `name` is named after itself (`my_device.json` -> `my_device`).
 * Errors: an unknown name that is not a path -> UsageError listing the presets; a missing or bad
 * file -> FileFormatError naming it (and the field).
 */
export function loadDeviceConfig(fileOrPreset: string): DeviceConfig {
  const preset = getPreset(fileOrPreset);
  if (preset) return preset;
  const looksLikePath = fileOrPreset.endsWith('.json') || fileOrPreset.includes('/') || fileOrPreset.includes(path.sep);
  if (!looksLikePath && !fs.existsSync(fileOrPreset)) {
    throw new UsageError(`unknown device '${fileOrPreset}': not a preset (${presetNames().join(', ')}) nor a file`);
  }
  const chain: ChainLink[] = [];
  const merged = resolveFile(fileOrPreset, [], chain);
  return validateDeviceConfig(merged, fileOrPreset, '', chain.length > 1 ? (f) => sourceInChain(chain, f) : undefined);
}
