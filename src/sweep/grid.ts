// The grid of a device sweep: `--vary NAME=v1,v2,...` options, each naming a field of the device
// config by its dotted path (writeVerify.tolerance, variation.rOnSigma, adc.bits, ...) or by a
// friendly alias (tolerance, d2d, readNoise, stuck, ...), expanded to the cartesian product of their
// values; every point of the grid is a new device config, validated again as a whole.
//
// No tf here: the main thread of a worker-pool sweep parses and checks the grid without loading it.
import { ConfigError, UsageError } from '../errors';
import { DeviceConfig, cloneDeviceConfig, validateDeviceConfig } from '../device/config';

/** A value of a varied field: a number, null (levels=null: continuous; adc.bits=null: ideal) or a word. */
export type VaryValue = number | string | null;

export interface VaryAlias {
  /** The device config fields the alias sets. */
  fields: string[];
  /** The value each field gets from the alias's value (default: the value itself). */
  split?: (v: number) => number[];
  help: string;
}

/** Friendly names for the fields swept most often (documented in `sweep --help`). */
export const VARY_ALIASES: Record<string, VaryAlias> = {
  tolerance: { fields: ['writeVerify.tolerance'], help: 'writeVerify.tolerance (fraction of the window)' },
  d2d: { fields: ['variation.rOnSigma', 'variation.rOffSigma'], help: 'variation.rOnSigma and variation.rOffSigma, both set to the value' },
  readNoise: { fields: ['read.noiseSigma'], help: 'read.noiseSigma' },
  stuck: {
    fields: ['faults.stuckAtGMin', 'faults.stuckAtGMax'],
    split: (v) => [v / 2, v / 2],
    help: 'total stuck fraction f: faults.stuckAtGMin = faults.stuckAtGMax = f/2',
  },
  c2c: { fields: ['pulse.c2cSigma'], help: 'pulse.c2cSigma' },
  maxPulses: { fields: ['writeVerify.maxPulses'], help: 'writeVerify.maxPulses' },
  adcBits: { fields: ['adc.bits'], help: 'adc.bits' },
  dacBits: { fields: ['dac.bits'], help: 'dac.bits (an analog DAC)' },
};

/** One `--vary` option, parsed and checked against the base device config. */
export interface VarySpec {
  /** The name as given (an alias or a dotted path): the key of the point's params. */
  name: string;
  /** The device config fields it sets. */
  fields: string[];
  values: VaryValue[];
}

/** One point of the grid: the value of every varied name, and its key (the seed label). */
export interface GridPoint {
  params: Record<string, VaryValue>;
  /** `name=value` for every varied name in --vary order, joined by ','; '' for an empty grid. */
  key: string;
}

type Obj = Record<string, unknown>;
const isObj = (x: unknown): x is Obj => x !== null && typeof x === 'object' && !Array.isArray(x);

/** '0.05' -> 0.05, 'null' -> null, anything else stays a string (a mode or a kind). */
export function parseVaryValue(text: string): VaryValue {
  const s = text.trim();
  if (s === 'null') return null;
  if (/^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(s)) return Number(s);
  return s;
}

/** Every leaf field path of a config (for error messages). */
function leafPaths(o: Obj, prefix = ''): string[] {
  const out: string[] = [];
  for (const [k, v] of Object.entries(o)) {
    if (isObj(v)) out.push(...leafPaths(v, `${prefix}${k}.`));
    else out.push(prefix + k);
  }
  return out;
}

/** Checks that `fieldPath` is a settable leaf of `base`; UsageError naming the --vary otherwise. */
function checkFieldPath(base: DeviceConfig, fieldPath: string, varyName: string): void {
  const parts = fieldPath.split('.');
  let o: Obj = base as unknown as Obj;
  for (let i = 0; i < parts.length; i++) {
    const k = parts[i];
    const here = parts.slice(0, i).join('.');
    if (!Object.prototype.hasOwnProperty.call(o, k)) {
      if (i === 0) {
        throw new UsageError(
          `--vary ${varyName}: unknown name '${varyName}': neither an alias (${Object.keys(VARY_ALIASES).join(', ')}) ` +
            `nor a device config field (${leafPaths(base as unknown as Obj).filter((p) => p !== 'name' && p !== 'description').join(', ')})`,
        );
      }
      throw new UsageError(`--vary ${varyName}: the device config has no field '${fieldPath}' (fields of ${here}: ${Object.keys(o).join(', ')})`);
    }
    const v = o[k];
    if (i < parts.length - 1) {
      if (!isObj(v)) throw new UsageError(`--vary ${varyName}: '${parts.slice(0, i + 1).join('.')}' is a value, not a group of fields`);
      o = v;
    } else if (isObj(v)) {
      throw new UsageError(`--vary ${varyName}: '${fieldPath}' is a group of fields; vary one of ${Object.keys(v).map((c) => `${fieldPath}.${c}`).join(', ')}`);
    }
  }
  if (fieldPath === 'name' || fieldPath === 'description') throw new UsageError(`--vary ${varyName}: '${fieldPath}' is not a device property`);
}

/**
 * Parses `NAME=v1,v2,...` options against the base device config: the names must be aliases or
 * existing fields, each given once, the values non-empty and distinct. Value ranges are checked
 * later, per point, by the device config validator (validatePoints).
 */
export function parseVary(options: readonly string[], base: DeviceConfig): VarySpec[] {
  const specs: VarySpec[] = [];
  const owner = new Map<string, string>();
  for (const opt of options) {
    const eq = opt.indexOf('=');
    const name = eq < 0 ? opt.trim() : opt.slice(0, eq).trim();
    if (eq < 0 || name === '') throw new UsageError(`--vary must be NAME=v1,v2,... (e.g. tolerance=0.02,0.05), got '${opt}'`);
    const rawValues = opt.slice(eq + 1).split(',').map((s) => s.trim());
    if (rawValues.some((s) => s === '')) throw new UsageError(`--vary ${name}: empty value in '${opt.slice(eq + 1)}' (give v1,v2,...)`);
    const alias = Object.prototype.hasOwnProperty.call(VARY_ALIASES, name) ? VARY_ALIASES[name] : undefined;
    const fields = alias ? alias.fields : [name];
    for (const f of fields) {
      checkFieldPath(base, f, name);
      const prev = owner.get(f);
      if (prev !== undefined) {
        throw new UsageError(prev === name ? `--vary ${name} is given twice: give all its values in one --vary` : `--vary ${name} and --vary ${prev} both set ${f}`);
      }
      owner.set(f, name);
    }
    const values = rawValues.map(parseVaryValue);
    if (alias?.split) {
      values.forEach((v, i) => {
        if (typeof v !== 'number') throw new UsageError(`--vary ${name}: '${rawValues[i]}' is not a number`);
      });
    }
    const seen = new Set<string>();
    for (const v of values) {
      const k = JSON.stringify(v);
      if (seen.has(k)) throw new UsageError(`--vary ${name}: the value ${String(v)} is given twice`);
      seen.add(k);
    }
    specs.push({ name, fields, values });
  }
  return specs;
}

/** The cartesian product of the varied values, the first --vary outermost (one empty point without any). */
export function expandGrid(specs: readonly VarySpec[]): GridPoint[] {
  let points: GridPoint[] = [{ params: {}, key: '' }];
  for (const s of specs) {
    const next: GridPoint[] = [];
    for (const p of points) {
      for (const v of s.values) {
        const part = `${s.name}=${String(v)}`;
        next.push({ params: { ...p.params, [s.name]: v }, key: p.key ? `${p.key},${part}` : part });
      }
    }
    points = next;
  }
  return points;
}

function setField(o: Obj, fieldPath: string, value: unknown): void {
  const parts = fieldPath.split('.');
  let cur = o;
  for (const k of parts.slice(0, -1)) cur = cur[k] as Obj;
  cur[parts[parts.length - 1]] = value;
}

/** "tolerance=0.02, d2d=0.1" */
export function formatParams(params: Record<string, VaryValue>): string {
  return Object.entries(params).map(([k, v]) => `${k}=${String(v)}`).join(', ');
}

/**
 * The device config of one grid point: the base with the point's values set, validated as a whole
 * (a ConfigError names the field and the point).
 */
export function pointDevice(base: DeviceConfig, specs: readonly VarySpec[], point: GridPoint): DeviceConfig {
  const cfg = cloneDeviceConfig(base) as unknown as Obj;
  for (const s of specs) {
    const v = point.params[s.name];
    const alias = Object.prototype.hasOwnProperty.call(VARY_ALIASES, s.name) ? VARY_ALIASES[s.name] : undefined;
    const each = alias?.split && typeof v === 'number' ? alias.split(v) : s.fields.map(() => v);
    s.fields.forEach((f, i) => setField(cfg, f, each[i]));
  }
  try {
    return validateDeviceConfig(cfg);
  } catch (e) {
    if (e instanceof ConfigError) throw new ConfigError(e.field, `${e.problem} (--vary ${formatParams(point.params)})`);
    throw e;
  }
}

/** The device config of every point, checked before any trial runs. */
export function gridDevices(base: DeviceConfig, specs: readonly VarySpec[], points: readonly GridPoint[]): DeviceConfig[] {
  return points.map((p) => pointDevice(base, specs, p));
}

/** Mean and sample standard deviation (n - 1 in the denominator; null for fewer than 2 values). */
export function summarize(values: readonly number[]): { mean: number; std: number | null; values: number[] } {
  const n = values.length;
  let mean = 0;
  for (const v of values) mean += v;
  mean = n ? mean / n : NaN;
  let ss = 0;
  for (const v of values) ss += (v - mean) * (v - mean);
  return { mean, std: n > 1 ? Math.sqrt(ss / (n - 1)) : null, values: [...values] };
}
