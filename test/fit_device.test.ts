// fit-device: fitting soft-bounds, exponential and lookup models to measured pulse trains, the
// lookup pulse model (statistics, write-verify, pulse planning), the CSV checks and the CLI.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import {
  DeviceConfig,
  getPreset,
  loadDeviceConfig,
  mergeDeviceConfig,
  validateDeviceConfig,
} from '../src/device/config';
import { DeviceFit, FitModel, fitDevice, parsePulseCsv, readPulseCsv } from '../src/device/fit';
import {
  applyPulses,
  meanStep,
  nominalInstances,
  pulseCell,
  pulsesForChange,
  sampleDeviceInstances,
  writeVerify,
} from '../src/programming';
import { SeededRandom } from '../src/random';
import { FileFormatError } from '../src/errors';
import { errorOf, runCli, STACK } from './helpers';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'mtfjs-fit-'));
const yao = () => getPreset('yao2020')!;

// ---------------------------------------------------------------------------------------------
// An independent generator of measured pulse trains (its own loop, not the project's pulse model).

interface Truth {
  seed: number;
  devices: number;
  cycles: number;
  pulses: number;
  gMin: number;
  gMax: number;
  dgSet: number;
  dgReset: number;
  c2c: number;
  rOn: number;
  rOff: number;
  stepSigma?: number;
  /** 'soft': dG = dgSet (1 - x) / -dgReset x; 'exp': dG = dgSet (1 - nlSet x) / -dgReset (1 - nlReset (1 - x)). */
  shape?: 'soft' | 'exp';
  nlSet?: number;
  nlReset?: number;
}

interface Generated {
  csv: string;
  /** The devices' true bounds and step scales. */
  lo: number[];
  hi: number[];
  scale: number[];
  /** The noise-free curves: [device][cycle] readings of set then reset, to compare mean curves. */
  readings: number;
}

function generate(t: Truth): Generated {
  const rng = new SeededRandom(t.seed);
  const rows = ['device,cycle,pulse,polarity,conductance_uS'];
  const lo: number[] = [];
  const hi: number[] = [];
  const scale: number[] = [];
  for (let d = 0; d < t.devices; d++) {
    const h = t.gMax * Math.exp(-t.rOn * rng.normal());
    const l = t.gMin * Math.exp(-t.rOff * rng.normal());
    const s = Math.exp((t.stepSigma ?? 0) * rng.normal());
    hi.push(h);
    lo.push(l);
    scale.push(s);
    let g = l;
    for (let c = 0; c < t.cycles; c++) {
      for (const pol of ['set', 'reset']) {
        rows.push(`dev${d},${c},0,${pol},${g.toFixed(5)}`);
        for (let k = 1; k <= t.pulses; k++) {
          const x = (g - l) / (h - l);
          let m: number;
          if (t.shape === 'exp') m = pol === 'set' ? t.dgSet * (1 - t.nlSet! * x) : -t.dgReset * (1 - t.nlReset! * (1 - x));
          else m = pol === 'set' ? t.dgSet * (1 - x) : -t.dgReset * x;
          g = Math.min(h, Math.max(l, g + s * m * (1 + t.c2c * rng.normal())));
          rows.push(`dev${d},${c},${k},${pol},${g.toFixed(5)}`);
        }
      }
    }
  }
  return { csv: rows.join('\n') + '\n', lo, hi, scale, readings: rows.length - 1 };
}

const geo = (v: number[]) => Math.exp(v.reduce((a, x) => a + Math.log(x), 0) / v.length);
function sdLog(v: number[]): number {
  const l = v.map(Math.log);
  const m = l.reduce((a, b) => a + b, 0) / l.length;
  return Math.sqrt(l.reduce((a, x) => a + (x - m) ** 2, 0) / (l.length - 1));
}
const rel = (got: number, want: number) => Math.abs(got - want) / Math.abs(want);

function fitText(csv: string, model: FitModel = 'soft-bounds', base: DeviceConfig = yao()): DeviceFit {
  return fitDevice(parsePulseCsv(csv, 'synthetic.csv'), { model, base });
}

// ---------------------------------------------------------------------------------------------

describe('fit-device recovers a soft-bounds device', () => {
  const sets: [string, Truth][] = [
    ['yao-like window, asymmetric', { seed: 1, devices: 16, cycles: 4, pulses: 100, gMin: 2, gMax: 20, dgSet: 0.8, dgReset: 0.6, c2c: 0.3, rOn: 0.08, rOff: 0.08 }],
    ['park-like window, RESET faster', { seed: 2, devices: 12, cycles: 3, pulses: 80, gMin: 10, gMax: 100, dgSet: 4, dgReset: 5, c2c: 0.2, rOn: 0.05, rOff: 0.1 }],
    ['wide window, very noisy, step d2d', { seed: 3, devices: 24, cycles: 3, pulses: 150, gMin: 0.5, gMax: 8, dgSet: 0.15, dgReset: 0.3, c2c: 0.5, rOn: 0.1, rOff: 0.05, stepSigma: 0.15 }],
  ];
  test.each(sets)('%s', (_label, t) => {
    const g = generate(t);
    const fit = fitText(g.csv);
    const f = fit.fields;
    expect(f.pulse.model).toBe('softBounds');
    // the window and the spreads of the devices measured (their sample statistics)
    expect(rel(f.gMin, geo(g.lo))).toBeLessThan(0.05);
    expect(rel(f.gMax, geo(g.hi))).toBeLessThan(0.05);
    expect(rel(f.gMin, t.gMin)).toBeLessThan(0.08);
    expect(rel(f.gMax, t.gMax)).toBeLessThan(0.08);
    expect(rel(f.variation.rOnSigma, sdLog(g.hi))).toBeLessThan(0.25);
    expect(rel(f.variation.rOffSigma, sdLog(g.lo))).toBeLessThan(0.25);
    // steps, asymmetry, c2c
    const s = geo(g.scale);
    expect(rel(f.pulse.dgSet, t.dgSet * s)).toBeLessThan(0.1);
    expect(rel(f.pulse.dgReset, t.dgReset * s)).toBeLessThan(0.1);
    expect(rel(fit.asymmetry, t.dgSet / t.dgReset)).toBeLessThan(0.1);
    expect(rel(f.pulse.c2cSigma, t.c2c)).toBeLessThan(0.25);
    if (t.stepSigma) expect(rel(f.variation.stepSigma, sdLog(g.scale))).toBeLessThan(0.35);
    else expect(f.variation.stepSigma).toBeLessThan(0.05);
    // each device's own window
    fit.devices.forEach((d, i) => {
      expect(rel(d.gMax, g.hi[i])).toBeLessThan(0.03);
      expect(rel(d.gMin, g.lo[i])).toBeLessThan(0.08);
    });
    // quality: both polarities, every device, the simulated mean curve on the measured one
    for (const pol of ['set', 'reset'] as const) {
      const q = fit.quality[pol];
      expect(q.devices).toBe(t.devices);
      expect(q.points).toBeGreaterThan(0.95 * t.devices * t.cycles * t.pulses);
      expect(q.r2).toBeGreaterThan(0.3);
      expect(q.r2Lookup - q.r2).toBeLessThan(0.02);
      expect(q.meanCurveRms).toBeLessThan(0.03);
    }
    expect(fit.warnings).toEqual([]);
    expect(validateDeviceConfig(fit.config)).toEqual(fit.config);
  });

  test('the nominal device (gen_pulse_trains.js semantics): every target of the issue', () => {
    const t: Truth = { seed: 5, devices: 32, cycles: 4, pulses: 100, gMin: 2, gMax: 20, dgSet: 0.8, dgReset: 0.6, c2c: 0.3, rOn: 0.08, rOff: 0.08 };
    const g = generate(t);
    const f = fitText(g.csv).fields;
    expect(rel(f.gMin, 2)).toBeLessThan(0.05);
    expect(rel(f.gMax, 20)).toBeLessThan(0.05);
    expect(rel(f.pulse.dgSet, 0.8)).toBeLessThan(0.1);
    expect(rel(f.pulse.dgReset, 0.6)).toBeLessThan(0.1);
    expect(rel(f.pulse.c2cSigma, 0.3)).toBeLessThan(0.25);
    expect(rel(f.variation.rOnSigma, 0.08)).toBeLessThan(0.25);
    expect(rel(f.variation.rOffSigma, 0.08)).toBeLessThan(0.25);
  });

  test('100,000 points fit, and the parse reports its lines as it goes', () => {
    const g = generate({ seed: 6, devices: 64, cycles: 8, pulses: 97, gMin: 2, gMax: 20, dgSet: 0.8, dgReset: 0.6, c2c: 0.3, rOn: 0.08, rOff: 0.08 });
    expect(g.readings).toBeGreaterThanOrEqual(100000);
    const calls: [number, number][] = [];
    const data = parsePulseCsv(g.csv, 'big.csv', { onLines: (d, t) => calls.push([d, t]), every: 25000 });
    const lines = g.csv.split('\n').length - 1; // after the header
    expect(calls).toEqual([25000, 50000, 75000, 100000].filter((d) => d < lines).map((d) => [d, lines]));
    const fit = fitDevice(data, { base: yao() });
    expect(fit.quality.set.points + fit.quality.reset.points).toBeGreaterThan(99000);
  });
});

describe('fit-device: exponential (NeuroSim) and where soft bounds fits badly', () => {
  // Steps that do not vanish at the bound (a ramp that reaches it) and RESET steps that grow towards gMin.
  const t: Truth = {
    seed: 7, devices: 12, cycles: 4, pulses: 120, gMin: 5, gMax: 50, dgSet: 1.2, dgReset: 0.4, c2c: 0.1, rOn: 0.05, rOff: 0.05,
    shape: 'exp', nlSet: 0.6, nlReset: -0.8,
  };
  const g = generate(t);

  test('the exponential model recovers the nonlinearities and the steps', () => {
    const fit = fitText(g.csv, 'exponential');
    const p = fit.fields.pulse;
    expect(p.model).toBe('exponential');
    if (p.model !== 'exponential') return;
    expect(Math.abs(p.nonlinearitySet - 0.6)).toBeLessThan(0.1);
    expect(Math.abs(p.nonlinearityReset + 0.8)).toBeLessThan(0.15);
    expect(rel(p.dgSet, 1.2)).toBeLessThan(0.1);
    expect(rel(p.dgReset, 0.4)).toBeLessThan(0.1);
    expect(rel(p.c2cSigma, 0.1)).toBeLessThan(0.25);
    expect(rel(fit.fields.gMax, geo(g.hi))).toBeLessThan(0.05);
    expect(rel(fit.fields.gMin, geo(g.lo))).toBeLessThan(0.05);
    for (const pol of ['set', 'reset'] as const) expect(fit.quality[pol].meanCurveRms).toBeLessThan(0.03);
  });

  test('soft bounds on the same data says it fits worse and suggests another model, with a valid device', () => {
    const fit = fitText(g.csv, 'soft-bounds');
    expect(fit.quality.reset.r2).toBeLessThan(fit.quality.reset.r2Lookup - 0.05);
    expect(fit.warnings.join('\n')).toMatch(/--model lookup/);
    expect(validateDeviceConfig(fit.config)).toEqual(fit.config);
  });
});

describe('lookup model', () => {
  // Long trains: the devices saturate, so their plateaus are their bounds.
  const t: Truth = { seed: 8, devices: 16, cycles: 4, pulses: 300, gMin: 2, gMax: 20, dgSet: 0.8, dgReset: 0.6, c2c: 0.3, rOn: 0.05, rOff: 0.05 };
  const g = generate(t);
  const fit = fitText(g.csv, 'lookup');

  test('the table holds the mean and the spread of dG in bins of G, per polarity', () => {
    const p = fit.fields.pulse;
    expect(p.model).toBe('lookup');
    if (p.model !== 'lookup') return;
    const { edges, setMean, setStd, resetMean, resetStd } = p.table;
    expect(edges.length).toBe(33);
    expect(edges[0]).toBe(fit.fields.gMin);
    expect(edges[32]).toBe(fit.fields.gMax);
    const w = fit.fields.gMax - fit.fields.gMin;
    let checked = 0;
    for (let b = 0; b < 32; b++) {
      const x = (0.5 * (edges[b] + edges[b + 1]) - fit.fields.gMin) / w;
      const set = 0.8 * (1 - x);
      const reset = -0.6 * x;
      // bins a train crosses with enough pulses: mean within 6% of the step at the bound, spread c2c x mean
      if (x > 0.1 && x < 0.9) {
        expect(Math.abs(setMean[b] - set)).toBeLessThan(0.06 * 0.8);
        expect(Math.abs(resetMean[b] - reset)).toBeLessThan(0.06 * 0.6);
        expect(rel(setStd[b], 0.3 * set)).toBeLessThan(0.25);
        expect(rel(resetStd[b], 0.3 * Math.abs(reset))).toBeLessThan(0.25);
        checked++;
      }
    }
    expect(checked).toBeGreaterThan(20);
    expect(rel(p.c2cSigma, 0.3)).toBeLessThan(0.25);
    expect(p.dgSet).toBeCloseTo(setMean[0], 10);
    expect(p.dgReset).toBeCloseTo(-resetMean[31], 10);
  });

  test("the lookup model's simulated mean curve is within 3% of the window (RMS) of the data's", () => {
    for (const pol of ['set', 'reset'] as const) {
      const q = fit.quality[pol];
      expect(q.meanCurveRms).toBeLessThan(0.03);
      expect(q.r2).toBeCloseTo(q.r2Lookup, 1);
      const c = fit.curves[pol];
      expect(c.measured.length).toBe(301);
      expect(c.fitted.length).toBe(301);
    }
    // and on the gen_pulse_trains.js kind of data (trains that stop short of the bounds)
    const short = fitText(generate({ ...t, seed: 9, pulses: 100 }).csv, 'lookup');
    expect(short.quality.set.meanCurveRms).toBeLessThan(0.03);
    expect(short.quality.reset.meanCurveRms).toBeLessThan(0.03);
  });

  test('pulses follow the table: mean and spread at a G, scaled by the cell, clipped to its window', () => {
    const cfg = yao();
    cfg.gMin = 2;
    cfg.gMax = 20;
    cfg.variation = { rOnSigma: 0, rOffSigma: 0, stepSigma: 0 };
    cfg.faults = { stuckAtGMin: 0, stuckAtGMax: 0 };
    // 3 bins over 2..20: centres 5, 11, 17
    cfg.pulse = {
      model: 'lookup', dgSet: 1, dgReset: 0.5, c2cSigma: 0.1,
      table: { edges: [2, 8, 14, 20], setMean: [1, 0.6, 0.2], setStd: [0.1, 0.3, 0.05], resetMean: [-0.1, -0.3, -0.5], resetStd: [0.02, 0.1, 0.1] },
    };
    const cfgChecked = validateDeviceConfig(cfg);
    const n = 40000;
    const rng = new SeededRandom(3);
    const stats = (g0: number, dir: number, scale: number, lo = 2, hi = 20) => {
      const inst = { ...nominalInstances(cfgChecked, n), stepScale: new Float32Array(n).fill(scale), gMinCell: new Float32Array(n).fill(lo), gMaxCell: new Float32Array(n).fill(hi) };
      const g = new Float32Array(n).fill(g0);
      for (let i = 0; i < n; i++) pulseCell(g, i, dir, cfgChecked, inst, rng);
      let s = 0;
      let ss = 0;
      for (let i = 0; i < n; i++) (s += g[i] - g0), (ss += (g[i] - g0) ** 2);
      const m = s / n;
      return { mean: m, std: Math.sqrt(ss / n - m * m), min: Math.min(...g), max: Math.max(...g) };
    };
    const se = (sd: number) => (4 * sd) / Math.sqrt(n);
    // at a centre: the bin's values
    let r = stats(11, 1, 1);
    expect(Math.abs(r.mean - 0.6)).toBeLessThan(se(0.3));
    expect(r.std).toBeCloseTo(0.3, 2);
    // between centres 5 and 11 at 8: halfway
    r = stats(8, 1, 1);
    expect(Math.abs(r.mean - 0.8)).toBeLessThan(se(0.2));
    expect(r.std).toBeCloseTo(0.2, 2);
    r = stats(14, -1, 1);
    expect(Math.abs(r.mean + 0.4)).toBeLessThan(se(0.1));
    // below the first centre: the first bin; the cell's step scale multiplies mean and spread
    r = stats(3, 1, 2);
    expect(Math.abs(r.mean - 2)).toBeLessThan(se(0.2));
    expect(r.std).toBeCloseTo(0.2, 2);
    // a cell with its own window: its place in it picks the bin (G 6 in 2..10 is the nominal 11)
    r = stats(6, 1, 1, 2, 10);
    expect(Math.abs(r.mean - 0.6)).toBeLessThan(se(0.3));
    // clipped to the window
    r = stats(19.9, 1, 1);
    expect(r.max).toBeLessThanOrEqual(20);
    r = stats(2.05, -1, 1);
    expect(r.min).toBeGreaterThanOrEqual(2);
    // the mean step the plans use
    expect(meanStep(cfgChecked, 0.5, 1)).toBeCloseTo(0.6, 10);
    expect(meanStep(cfgChecked, 0, -1)).toBeCloseTo(-0.1, 10);
  });

  test('write-verify with a fitted lookup device converges', () => {
    const cfg = fit.config;
    expect(cfg.pulse.model).toBe('lookup');
    const rng = new SeededRandom(11);
    const n = 3000;
    const inst = sampleDeviceInstances({ ...cfg, faults: { stuckAtGMin: 0, stuckAtGMax: 0 } }, n, rng);
    const targets = new Float32Array(n).map(() => cfg.gMin + 0.1 * (cfg.gMax - cfg.gMin) + 0.8 * (cfg.gMax - cfg.gMin) * rng.next());
    const r = writeVerify(targets, cfg, inst, rng, { maxPulses: 500 });
    let conv = 0;
    let err = 0;
    for (let i = 0; i < n; i++) {
      conv += r.converged[i];
      err += Math.abs(r.programmed[i] - targets[i]);
    }
    expect(conv / n).toBeGreaterThan(0.98);
    expect(err / n).toBeLessThan(r.toleranceUS * 1.5);
  });

  test('in-situ pulse plans invert the lookup and exponential models (noise-free steps)', () => {
    const base = fit.config;
    if (base.pulse.model !== 'lookup') throw new Error('lookup expected');
    const noiseless: DeviceConfig = {
      ...base,
      pulse: { ...base.pulse, table: { ...base.pulse.table, setStd: base.pulse.table.setStd.map(() => 0), resetStd: base.pulse.table.resetStd.map(() => 0) } },
    };
    const expo: DeviceConfig = { ...base, pulse: { model: 'exponential', dgSet: 0.8, dgReset: 0.6, c2cSigma: 0, nonlinearitySet: 0.5, nonlinearityReset: -0.5 } };
    for (const cfg of [noiseless, expo]) {
      const n = 400;
      const rng = new SeededRandom(12);
      const inst = sampleDeviceInstances({ ...cfg, faults: { stuckAtGMin: 0, stuckAtGMax: 0 } }, n, rng);
      const g = new Float32Array(n);
      const d = new Float32Array(n);
      for (let i = 0; i < n; i++) {
        const w = inst.gMaxCell[i] - inst.gMinCell[i];
        g[i] = inst.gMinCell[i] + w * (0.2 + 0.6 * rng.next());
        d[i] = (rng.next() - 0.5) * 0.3 * w;
      }
      const counts = pulsesForChange(g, d, cfg, inst, { maxCount: 1000 });
      const after = applyPulses(Float32Array.from(g), counts, cfg, inst, rng);
      for (let i = 0; i < n; i++) {
        const x = (g[i] - inst.gMinCell[i]) / (inst.gMaxCell[i] - inst.gMinCell[i]);
        const step = Math.abs(meanStep(cfg, x, d[i])) * inst.stepScale[i] * 3; // the step size around there (it changes along the way)
        expect(Math.abs(after[i] - g[i] - d[i])).toBeLessThan(Math.max(step, 0.02));
        expect(Math.sign(counts[i]) === Math.sign(d[i]) || counts[i] === 0).toBe(true);
      }
    }
  });
});

describe('device configs with the new pulse models', () => {
  const lookupPulse = () => ({
    model: 'lookup', dgSet: 1, dgReset: 1, c2cSigma: 0.1,
    table: { edges: [2, 11, 20], setMean: [1, 0.5], setStd: [0.1, 0.1], resetMean: [-0.5, -1], resetStd: [0.1, 0.1] },
  });
  const bad: [string, (p: Record<string, any>) => void, string][] = [
    ['edges not increasing', (p) => (p.table.edges = [2, 2, 20]), 'pulse.table.edges[1]: must be > edges[0] (2): bin edges increase, got 2'],
    ['a row of the wrong length', (p) => (p.table.setMean = [1]), 'pulse.table.setMean: must have 2 entries (one per bin), got 1'],
    ['a negative spread', (p) => (p.table.resetStd = [0.1, -0.1]), 'pulse.table.resetStd[1]: must be >= 0 (a standard deviation), got -0.1'],
    ['a NaN mean', (p) => (p.table.resetMean = [-0.5, null]), 'pulse.table.resetMean[1]: must be a finite number, got null'],
    ['edges short of the window', (p) => (p.table.edges = [2, 11, 19]), 'pulse.table.edges[2]: must be >= gMax (20 uS): the table covers the window, got 19'],
    ['no table', (p) => delete p.table, 'pulse.table: missing'],
    ['a table field too many', (p) => (p.table.median = [1, 1]), 'pulse.table.median: unknown field'],
    ['too many bins', (p) => (p.table.edges = Array.from({ length: 1026 }, (_, i) => 2 + (18 * i) / 1025)), 'pulse.table.edges: must have 2 to 1025 entries'],
    ['a nonlinearity on a lookup', (p) => (p.nonlinearitySet = 0.5), 'pulse.nonlinearitySet: not a field of the lookup model'],
  ];
  test.each(bad)('lookup: %s is rejected naming the field', (_l, mutate, message) => {
    const c = yao() as unknown as Record<string, any>;
    c.pulse = lookupPulse();
    mutate(c.pulse);
    expect(errorOf(() => validateDeviceConfig(c)).message.startsWith(message)).toBe(true);
  });

  test('exponential: nonlinearities in [-10, 1]; a table on it is rejected', () => {
    const c = yao() as unknown as Record<string, any>;
    c.pulse = { model: 'exponential', dgSet: 1, dgReset: 1, c2cSigma: 0, nonlinearitySet: 1.5, nonlinearityReset: 0 };
    expect(errorOf(() => validateDeviceConfig(c)).message).toBe('pulse.nonlinearitySet: must be in [-10, 1], got 1.5');
    c.pulse.nonlinearitySet = 0.5;
    c.pulse.table = lookupPulse().table;
    expect(errorOf(() => validateDeviceConfig(c)).message).toMatch(/^pulse.table: not a field of the exponential model/);
  });

  test('a file extending a preset may change the pulse model; the other model\'s fields are not kept', () => {
    const f = path.join(tmp, 'lk.json');
    fs.writeFileSync(f, JSON.stringify({ extends: 'yao2020', pulse: lookupPulse() }));
    const lk = loadDeviceConfig(f);
    expect(lk.pulse.model).toBe('lookup');
    const g = path.join(tmp, 'ex.json');
    fs.writeFileSync(g, JSON.stringify({ extends: './lk.json', pulse: { model: 'exponential', nonlinearitySet: 0.3, nonlinearityReset: 0.2 } }));
    const ex = loadDeviceConfig(g);
    expect(ex.pulse).toEqual({ model: 'exponential', dgSet: 1, dgReset: 1, c2cSigma: 0.1, nonlinearitySet: 0.3, nonlinearityReset: 0.2 });
    expect(mergeDeviceConfig({ model: 'lookup', dgSet: 1, table: {} }, { model: 'softBounds' })).toEqual({ model: 'softBounds', dgSet: 1 });
  });
});

describe('pulse-train CSV', () => {
  test('two-column form: potentiation then depression, the turn-around found', () => {
    const t: Truth = { seed: 21, devices: 1, cycles: 1, pulses: 120, gMin: 3, gMax: 30, dgSet: 1.5, dgReset: 1, c2c: 0.1, rOn: 0, rOff: 0 };
    const long = generate(t).csv.trim().split('\n').slice(1);
    // one curve: set 0..120, then the reset train without its first reading (the same state), pulses 121..240
    const rows = ['pulse,conductance_uS'];
    long.forEach((l, i) => {
      const f = l.split(',');
      if (f[3] === 'reset' && f[2] === '0') return;
      rows.push(`${i < 121 ? i : i - 1},${f[4]}`);
    });
    const data = parsePulseCsv(rows.join('\n'), 'curve.csv');
    expect(data.form).toBe('two-column');
    expect(data.trains.map((x) => x.polarity)).toEqual(['set', 'reset']);
    const [set, reset] = data.trains;
    // the turning reading ends the SET train and starts the RESET one
    expect(set.rows[set.rows.length - 1]).toBe(reset.rows[0]);
    expect(Math.abs(set.pulse[set.pulse.length - 1] - 120)).toBeLessThanOrEqual(3);
    const fit = fitDevice(data, { base: yao() });
    expect(rel(fit.fields.gMax, 30)).toBeLessThan(0.05);
    expect(rel(fit.fields.pulse.dgSet, 1.5)).toBeLessThan(0.15);
    expect(rel(fit.fields.pulse.dgReset, 1)).toBeLessThan(0.15);
    expect(fit.fields.variation).toEqual({ rOnSigma: 0, rOffSigma: 0, stepSigma: 0 });
    // the depression numbered anew
    const restart = ['pulse,conductance_uS', ...rows.slice(1, 122), ...rows.slice(122).map((r, i) => `${i + 1},${r.split(',')[1]}`)];
    const d2 = parsePulseCsv(restart.join('\n'), 'curve2.csv');
    expect(d2.trains.map((x) => [x.polarity, x.g.length])).toEqual([['set', 121], ['reset', 120]]);
  });

  test('comments, blank lines, CRLF, extra columns and fractional pulse numbers are read', () => {
    const lines = ['# measured 2026-11-25', 'device,cycle,pulse,polarity,conductance_uS,temperature_K'];
    for (const pol of ['set', 'reset']) {
      for (let k = 0; k <= 6; k++) lines.push(`A,0,${(k * 1.01).toFixed(2)},${pol.toUpperCase()},${pol === 'set' ? 2 + k : 8 - k},300`);
      lines.push('');
    }
    const d = parsePulseCsv(lines.join('\r\n'), 'x.csv');
    expect(d.readings).toBe(14);
    expect(d.trains.map((t) => t.polarity)).toEqual(['set', 'reset']);
    expect(d.trains[0].rows[0]).toBe(3);
  });

  const header = 'device,cycle,pulse,polarity,conductance_uS';
  const good = (): string[] => {
    const rows = [header];
    for (const pol of ['set', 'reset']) for (let k = 0; k <= 9; k++) rows.push(`0,0,${k},${pol},${pol === 'set' ? 2 + k : 11 - k}`);
    return rows;
  };
  const cases: [string, () => string, RegExp][] = [
    ['too few points', () => [header, '0,0,0,set,1', '0,0,1,set,2', '0,0,0,reset,2', '0,0,1,reset,1'].join('\n'), /^bad\.csv: row 5, column conductance_uS: too few points: 4 readings/],
    ['one polarity only', () => good().filter((r) => !r.includes('reset')).join('\n'), /^bad\.csv: row 2, column polarity: one polarity only: every train is set/],
    ['a device with one polarity', () => [...good(), '1,0,0,set,2', '1,0,1,set,3', '1,0,2,set,4', '1,0,3,set,5'].join('\n'), /^bad\.csv: row 22, column polarity: device 1 has no reset train \(one polarity only\)/],
    ['one polarity only (two columns)', () => ['pulse,conductance_uS', ...Array.from({ length: 20 }, (_, k) => `${k},${2 + k}`)].join('\n'), /^bad\.csv: row 21, column conductance_uS: one polarity only: the curve rises throughout/],
    ['non-monotone pulse numbers', () => good().map((r, i) => (i === 4 ? '0,0,1,set,4' : r)).join('\n'), /^bad\.csv: row 5, column pulse: pulse 1 does not follow pulse 2 \(row 4\) of the same train \(device 0, cycle 0, set\)/],
    ['non-monotone pulse numbers (two columns)', () => ['pulse,conductance_uS', '0,1', '1,2', '2,3', '1,2', '3,3', '2,2', '4,1', '5,1', '6,1', '7,1'].join('\n'), /^bad\.csv: row 7, column pulse: pulse 2 does not follow pulse 3 \(row 6\)/],
    ['a negative conductance', () => good().map((r, i) => (i === 9 ? '0,0,2,reset,-0.5' : r)).join('\n'), /^bad\.csv: row 10, column conductance_uS: negative conductance -0.5/],
    ['a NaN conductance', () => good().map((r, i) => (i === 3 ? '0,0,2,set,NaN' : r)).join('\n'), /^bad\.csv: row 4, column conductance_uS: not a conductance: 'NaN'/],
    ['an empty conductance', () => good().map((r, i) => (i === 3 ? '0,0,2,set,' : r)).join('\n'), /^bad\.csv: row 4, column conductance_uS: not a conductance: ''/],
    ['a missing column', () => good().map((r) => r.split(',').filter((_, j) => j !== 3).join(',')).join('\n'), /^bad\.csv: row 1, column polarity: missing from the header \(it has device, cycle, pulse, conductance_uS/],
    ['a missing conductance column (two columns)', () => ['pulse,G', '0,1'].join('\n'), /^bad\.csv: row 1, column conductance_uS: missing from the header/],
    ['a short row', () => good().map((r, i) => (i === 6 ? '0,0,5,set' : r)).join('\n'), /^bad\.csv: row 7, column conductance_uS: missing: the row has 4 fields, the header 5/],
    ['an unknown polarity', () => good().map((r, i) => (i === 2 ? '0,0,1,up,3' : r)).join('\n'), /^bad\.csv: row 3, column polarity: must be set or reset, got 'up'/],
    ['a pulse that is not a number', () => good().map((r, i) => (i === 2 ? '0,0,one,set,3' : r)).join('\n'), /^bad\.csv: row 3, column pulse: not a number: 'one'/],
    ['an empty file', () => '', /^bad\.csv: row 1: no header/],
  ];
  test.each(cases)('%s: one message naming the file, row and column', (_l, text, msg) => {
    const e = errorOf(() => parsePulseCsv(text(), 'bad.csv'));
    expect(e).toBeInstanceOf(FileFormatError);
    expect(e.message).toMatch(msg);
    expect(e.message).not.toContain('\n');
  });

  test('a missing file', () => {
    expect(errorOf(() => readPulseCsv(path.join(tmp, 'none.csv'))).message).toBe(`${path.join(tmp, 'none.csv')}: no such file`);
  });

  test('rough data (steps growing with G, drifting bounds, very noisy trains) still give a valid device', () => {
    const rng = new SeededRandom(31);
    const rows = [header];
    for (let d = 0; d < 4; d++) {
      for (let c = 0; c < 3; c++) {
        const top = 20 + 3 * c + d; // the bound drifts from cycle to cycle
        let g = 2;
        for (const pol of ['set', 'reset']) {
          for (let k = 0; k <= 60; k++) {
            if (k > 0) {
              const x = (g - 2) / (top - 2);
              const step = pol === 'set' ? 0.1 + 0.6 * x : -0.5; // SET grows with G
              g = Math.min(top, Math.max(2, g + step + 2 * rng.normal())); // pulse-to-pulse spread >> step
            }
            rows.push(`${d},${c},${k},${pol},${g.toFixed(3)}`);
          }
        }
      }
    }
    for (const model of ['soft-bounds', 'exponential', 'lookup'] as const) {
      const fit = fitText(rows.join('\n'), model);
      expect(validateDeviceConfig(fit.config)).toEqual(fit.config);
      expect(Number.isFinite(fit.quality.set.r2)).toBe(true);
    }
  });
});

describe('memristor-tfjs fit-device', () => {
  const t: Truth = { seed: 41, devices: 8, cycles: 3, pulses: 100, gMin: 2, gMax: 20, dgSet: 0.8, dgReset: 0.6, c2c: 0.3, rOn: 0.08, rOff: 0.08 };
  const csv = path.join(tmp, 'pulses.csv');
  fs.writeFileSync(csv, generate(t).csv);

  test('--json: the device file extends the preset, validates, and holds the fit; quality per polarity', async () => {
    const out = path.join(tmp, 'dev', 'fitted.json');
    const r = await runCli('fit-device', '--data', csv, '--out', out, '--json');
    expect(r.code).toBe(0);
    const j = JSON.parse(r.out);
    expect(j).toMatchObject({ model: 'soft-bounds', extends: 'yao2020', devices: 8, readings: 8 * 3 * 2 * 101 });
    for (const pol of ['set', 'reset']) {
      for (const k of ['r2', 'rmsUS', 'points', 'devices', 'meanCurveRms']) expect(Number.isFinite(j.quality[pol][k])).toBe(true);
    }
    const file = JSON.parse(fs.readFileSync(out, 'utf8'));
    expect(file.extends).toBe('yao2020');
    expect(file).toEqual(j.device);
    const dev = loadDeviceConfig(out);
    expect(dev.name).toBe('fitted');
    expect(dev.gMax).toBe(file.gMax);
    expect(dev.pulse).toEqual(file.pulse);
    expect(dev.writeVerify).toEqual(yao().writeVerify); // the rest from the preset
    expect(rel(dev.gMax, 20)).toBeLessThan(0.1);
  });

  test('human output: the fitted values and R^2 / RMS per polarity; --model lookup over a device file', async () => {
    const out = path.join(tmp, 'lookup.json');
    fs.writeFileSync(path.join(tmp, 'base.json'), JSON.stringify({ extends: 'park2024', writeVerify: { mode: 'iterative', tolerance: 0.02, maxPulses: 300 } }));
    const r = await runCli('fit-device', '--data', csv, '--model', 'lookup', '--bins', '16', '--extends', path.join(tmp, 'base.json'), '--out', out);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/SET +R\^2 0\.\d+ .*RMS [\d.]+ uS, \d+ points, 8 devices/);
    expect(r.out).toMatch(/RESET +R\^2/);
    expect(r.out).toMatch(/a table of 16 bins/);
    const file = JSON.parse(fs.readFileSync(out, 'utf8'));
    expect(file.extends).toBe('./base.json');
    const dev = loadDeviceConfig(out);
    expect(dev.pulse.model).toBe('lookup');
    expect(dev.writeVerify.tolerance).toBe(0.02);
    expect(dev.neuron.kind).toBe('threshold'); // park2024's, through base.json
  });

  test("starting the CLI loads no tf: its option lists are the library's", async () => {
    // (cli.ts lists the optimizer and variation names itself, so fit-device starts in ~0.1 s)
    const { OPTIMIZERS } = await import('../training/offline');
    const { VARIATION_KEYS } = await import('../layers/variation');
    const h = await runCli('train', '--help');
    expect(h.out).toContain(`choices: ${OPTIMIZERS.map((o) => `"${o}"`).join(', ')}`);
    expect(h.out.replace(/\s+/g, ' ')).toContain(`keys: ${VARIATION_KEYS.join(', ')}`);
  });

  test('bad data: one line naming the file, row and column, exit 1; bad flags exit 2', async () => {
    const bad = path.join(tmp, 'bad.csv');
    fs.writeFileSync(bad, 'device,cycle,pulse,polarity,conductance_uS\n' + Array.from({ length: 12 }, (_, k) => `0,0,${k},set,${k === 7 ? 'NaN' : 2 + k}`).join('\n'));
    const r = await runCli('fit-device', '--data', bad, '--out', path.join(tmp, 'never.json'));
    expect(r.code).toBe(1);
    expect(r.err.trim()).toBe(`error: ${bad}: row 9, column conductance_uS: not a conductance: 'NaN' (a finite number of uS is needed)`);
    expect(r.err).not.toMatch(STACK);
    expect(fs.existsSync(path.join(tmp, 'never.json'))).toBe(false);
    const m = await runCli('fit-device', '--data', csv, '--model', 'linear', '--out', path.join(tmp, 'never.json'));
    expect(m.code).toBe(2);
    const e = await runCli('fit-device', '--data', csv, '--extends', 'yao2021', '--out', path.join(tmp, 'never.json'));
    expect(e.code).toBe(2);
    expect(e.err).toMatch(/--extends 'yao2021' is not a preset/);
  });
});
