import * as fs from 'fs';
import * as path from 'path';
import {
  DeviceConfig,
  getPreset,
  loadDeviceConfig,
  mergeDeviceConfig,
  presetNames,
  validateDeviceConfig,
  variedWindow,
} from '../src/device/config';
import { PRESETS, formatPresetTable, listPresets } from '../src/device/presets';
import { ConfigError, FileFormatError, UsageError } from '../src/errors';
import { tempRoot } from './helpers';

const tmp = tempRoot('device');

function writeJson(name: string, value: unknown): string {
  const f = path.join(tmp, name);
  fs.writeFileSync(f, typeof value === 'string' ? value : JSON.stringify(value));
  return f;
}

/** A copy of park2024 as a mutable plain object. */
function park(): Record<string, any> {
  return JSON.parse(JSON.stringify(PRESETS.park2024));
}

function configError(obj: unknown): ConfigError {
  try {
    validateDeviceConfig(obj);
  } catch (e) {
    if (e instanceof ConfigError) return e;
    throw e;
  }
  throw new Error('validateDeviceConfig accepted a bad config');
}

describe('presets', () => {
  test('there are the five presets of the papers, each valid and unchanged by validation', () => {
    expect(presetNames()).toEqual(['yao2020', 'park2024', 'chen2021', 'cbram', 'ideal']);
    for (const name of presetNames()) {
      const p = PRESETS[name];
      expect(p.name).toBe(name);
      expect(validateDeviceConfig(JSON.parse(JSON.stringify(p)))).toEqual(p);
    }
  });

  test('preset values the papers state', () => {
    const yao = PRESETS.yao2020;
    expect(yao.levels).toBe(8);
    expect(yao.dac).toEqual({ mode: 'bitSerial', inputBits: 8 });
    expect(yao.read.voltage).toBe(0.2);
    expect(yao.adc.bits).toBe(8);
    expect(yao.energy.adcPJ).toBe(2.55);
    expect(yao.latency.programmingPulseNs).toBe(50);
    expect(yao.defaultScheme).toBe('differential');
    const p = PRESETS.park2024;
    expect(p.levels).toBe(8);
    expect(p.writeVerify.tolerance).toBe(0.05);
    expect(p.neuron.kind).toBe('threshold');
    expect(PRESETS.chen2021.levels).toBe(2);
    expect(PRESETS.chen2021.neuron.kind).toBe('threshold');
    expect(PRESETS.cbram.neuron.kind).toBe('relu');
    expect(PRESETS.cbram.gMax / PRESETS.cbram.gMin).toBeGreaterThanOrEqual(1000);
    const ideal = PRESETS.ideal;
    expect(ideal.levels).toBeNull();
    expect(ideal.writeVerify.mode).toBe('exact');
    expect(ideal.read.noiseSigma + ideal.faults.stuckAtGMin + ideal.faults.stuckAtGMax + ideal.variation.rOnSigma + ideal.variation.rOffSigma).toBe(0);
    expect(ideal.wireResistance).toBe(0);
    expect(ideal.dac).toEqual({ mode: 'analog', bits: null });
    expect(ideal.adc.bits).toBeNull();
  });

  test('derived energies: V^2 G t', () => {
    // 0.2 V on 11 uS for 50 ns = 0.022 pJ; 2.0 V SET on 11 uS for 50 ns = 2.2 pJ
    expect(PRESETS.yao2020.energy.cellReadPJ).toBeCloseTo(0.022, 6);
    expect(PRESETS.yao2020.energy.programmingPulsePJ).toBeCloseTo(2.2, 6);
  });

  test('presets are frozen; getPreset gives a copy to change', () => {
    expect(() => {
      (PRESETS.yao2020.writeVerify as { tolerance: number }).tolerance = 0.5;
    }).toThrow();
    const p = getPreset('yao2020')!;
    p.writeVerify.tolerance = 0.5;
    expect(PRESETS.yao2020.writeVerify.tolerance).toBe(0.05);
    expect(getPreset('nope')).toBeUndefined();
    expect(getPreset('toString')).toBeUndefined();
  });

  test('listPresets and the printable table', () => {
    const list = listPresets();
    expect(list.map((p) => p.name)).toEqual(presetNames());
    const yao = list.find((p) => p.name === 'yao2020')!;
    expect(yao.summary).toBe(
      'G 2-20 uS, 8 levels, tolerance 5%, d2d 5%/10%, stuck 1%, read noise 2%, DAC bit-serial 8b, ADC 8b, linear neuron',
    );
    expect(yao.description).toMatch(/Yao et al/);
    const table = formatPresetTable();
    const lines = table.split('\n');
    expect(lines[0]).toMatch(/^name\s+G window uS\s+levels\s+tolerance/);
    expect(lines[1]).toMatch(/^-+\s+-+/);
    const rows = lines.slice(2, 7);
    expect(rows.map((l) => l.split(/\s+/)[0])).toEqual(presetNames());
    expect(rows[0]).toMatch(/^yao2020\s+2-20\s+8\s+5%\s+5%\/10%\s+1%\s+2%\s+1 ohm\s+serial 8b\s+8b auto\s+linear$/);
    expect(rows[4]).toMatch(/^ideal\s+0-100\s+cont\.\s+exact\s+0%\/0%\s+0%\s+0%\s+0 ohm\s+ideal\s+ideal\s+linear$/);
    // columns line up: the second column starts at the same place in every row
    const col2 = lines[0].indexOf('G window');
    for (const r of rows) expect(r[col2 - 1]).toBe(' ');
    for (const r of rows) expect(r[col2]).not.toBe(' ');
    expect(table).toContain('park2024: Park et al.');
  });

  test('variedWindow: gMin e^-4 rOffSigma .. gMax e^4 rOnSigma', () => {
    const w = variedWindow(PRESETS.yao2020);
    expect(w.lo).toBeCloseTo(2 * Math.exp(-0.4), 12);
    expect(w.hi).toBeCloseTo(20 * Math.exp(0.2), 12);
    expect(variedWindow(PRESETS.ideal)).toEqual({ lo: 0, hi: 100 });
  });
});

describe('validateDeviceConfig', () => {
  // [mutation, field, message]
  const cases: [string, (c: Record<string, any>) => void, string, string][] = [
    ['missing gMax', (c) => delete c.gMax, 'gMax', 'gMax: missing'],
    ['gMax below gMin', (c) => (c.gMax = 5), 'gMax', 'gMax: must be > gMin (10 uS), got 5'],
    ['negative gMin', (c) => (c.gMin = -1), 'gMin', 'gMin: must be in [0, 1000000], got -1'],
    ['tolerance 1.5', (c) => (c.writeVerify.tolerance = 1.5), 'writeVerify.tolerance', 'writeVerify.tolerance: must be in [0, 1), got 1.5'],
    ['tolerance 1', (c) => (c.writeVerify.tolerance = 1), 'writeVerify.tolerance', 'writeVerify.tolerance: must be in [0, 1), got 1'],
    ['fractional maxPulses', (c) => (c.writeVerify.maxPulses = 2.5), 'writeVerify.maxPulses', 'writeVerify.maxPulses: must be an integer, got 2.5'],
    ['writeVerify mode', (c) => (c.writeVerify.mode = 'fast'), 'writeVerify.mode', 'writeVerify.mode: must be one of iterative, exact, got "fast"'],
    ['missing writeVerify', (c) => delete c.writeVerify, 'writeVerify', 'writeVerify: missing'],
    ['writeVerify not an object', (c) => (c.writeVerify = [1]), 'writeVerify', 'writeVerify: must be an object, got [1]'],
    ['levels 1', (c) => (c.levels = 1), 'levels', 'levels: must be in [2, 65536], got 1'],
    ['levels missing', (c) => delete c.levels, 'levels', 'levels: missing (give null for none)'],
    ['levels 3.5', (c) => (c.levels = 3.5), 'levels', 'levels: must be an integer, got 3.5'],
    ['pulse model', (c) => (c.pulse.model = 'linear'), 'pulse.model', 'pulse.model: must be one of softBounds, constantStep, exponential, lookup, got "linear"'],
    ['dgSet 0', (c) => (c.pulse.dgSet = 0), 'pulse.dgSet', 'pulse.dgSet: must be in (0, 1000000], got 0'],
    ['c2c sigma 3', (c) => (c.pulse.c2cSigma = 3), 'pulse.c2cSigma', 'pulse.c2cSigma: must be in [0, 2], got 3'],
    ['negative rOnSigma', (c) => (c.variation.rOnSigma = -0.1), 'variation.rOnSigma', 'variation.rOnSigma: must be in [0, 2], got -0.1'],
    ['faults summing over 1', (c) => ((c.faults.stuckAtGMin = 0.6), (c.faults.stuckAtGMax = 0.5)), 'faults.stuckAtGMax', 'faults.stuckAtGMax: stuckAtGMin + stuckAtGMax must be <= 1, got 1.1'],
    ['noise as a string', (c) => (c.read.noiseSigma = '0.1'), 'read.noiseSigma', 'read.noiseSigma: must be a finite number, got "0.1"'],
    ['NaN energy', (c) => (c.energy.adcPJ = NaN), 'energy.adcPJ', 'energy.adcPJ: must be a finite number, got null'],
    ['zero read voltage', (c) => (c.read.voltage = 0), 'read.voltage', 'read.voltage: must be in (0, 10], got 0'],
    ['drift t0 0', (c) => (c.drift.t0 = 0), 'drift.t0', 'drift.t0: must be in (0, 1000000000], got 0'],
    ['negative wire', (c) => (c.wireResistance = -1), 'wireResistance', 'wireResistance: must be in [0, 1000000], got -1'],
    ['bitSerial with bits', (c) => (c.dac = { mode: 'bitSerial', inputBits: 8, bits: 8 }), 'dac.bits', 'dac.bits: unknown field (known: mode, inputBits)'],
    ['inputBits 0', (c) => (c.dac = { mode: 'bitSerial', inputBits: 0 }), 'dac.inputBits', 'dac.inputBits: must be in [1, 32], got 0'],
    ['dac mode', (c) => (c.dac.mode = 'pwm'), 'dac.mode', 'dac.mode: must be one of analog, bitSerial, got "pwm"'],
    ['adc range word', (c) => (c.adc.range = 'manual'), 'adc.range', `adc.range: must be 'auto' or a current in uA > 0, got "manual"`],
    ['adc range negative', (c) => (c.adc.range = -3), 'adc.range', 'adc.range: must be in (0, 1000000000], got -3'],
    ['adc bits 40', (c) => (c.adc.bits = 40), 'adc.bits', 'adc.bits: must be in [1, 32], got 40'],
    ['neuron kind', (c) => (c.neuron.kind = 'sigmoid'), 'neuron.kind', 'neuron.kind: must be one of threshold, relu, linear, got "sigmoid"'],
    ['missing latency', (c) => delete c.latency, 'latency', 'latency: missing'],
    ['missing latency field', (c) => delete c.latency.adcNs, 'latency.adcNs', 'latency.adcNs: missing'],
    ['typo at the top', (c) => (c.gmax = 3), 'gmax', 'gmax: unknown field'],
    ['typo inside', (c) => (c.writeVerify.tolerence = 0.1), 'writeVerify.tolerence', 'writeVerify.tolerence: unknown field'],
    ['empty name', (c) => (c.name = ' '), 'name', 'name: must not be empty'],
    ['scheme', (c) => (c.defaultScheme = 'quad'), 'defaultScheme', 'defaultScheme: must be one of differential, reference, got "quad"'],
    ['both rOn and gMax', (c) => (c.rOn = 10000), 'rOn', 'rOn: give either rOn (ohms) or gMax (uS), not both'],
    ['rOn 0', (c) => (delete c.gMax, (c.rOn = 0)), 'rOn', 'rOn: must be > 0, got 0'],
    ['a window that can close', (c) => ((c.variation.rOnSigma = 0.35), (c.variation.rOffSigma = 0.35)), 'variation.rOffSigma', "variation.rOffSigma: with rOnSigma 0.35 and rOffSigma 0.35 a cell's window could close"],
  ];
  test.each(cases)('%s is rejected naming the field', (_label, mutate, field, message) => {
    const c = park();
    mutate(c);
    const e = configError(c);
    expect(e.field).toBe(field);
    expect(e.message.startsWith(message)).toBe(true);
  });

  test('not an object', () => {
    expect(configError(42).message).toBe('device config: must be an object, got 42');
    expect(configError(null).message).toBe('device config: must be an object, got null');
  });

  test('rOn / rOff in ohms become gMax / gMin in uS', () => {
    const c = park();
    delete c.gMin;
    delete c.gMax;
    c.rOn = 20000;
    c.rOff = 400000;
    const v = validateDeviceConfig(c);
    expect(v.gMax).toBe(50);
    expect(v.gMin).toBe(2.5);
    expect('rOn' in v).toBe(false);
  });

  test('with a source, errors are FileFormatError naming the file then the field', () => {
    const c = park();
    c.writeVerify.tolerance = 1.5;
    expect(() => validateDeviceConfig(c, '/x/dev.json')).toThrow(FileFormatError);
    expect(() => validateDeviceConfig(c, '/x/dev.json')).toThrow('/x/dev.json: writeVerify.tolerance: must be in [0, 1), got 1.5');
    expect(() => validateDeviceConfig(c, '/x/m.json', 'device.')).toThrow('/x/m.json: device.writeVerify.tolerance: must be in [0, 1), got 1.5');
  });

  test('a valid config is returned as a clean copy', () => {
    const c = park();
    const v = validateDeviceConfig(c);
    c.writeVerify.tolerance = 0.3;
    expect(v.writeVerify.tolerance).toBe(0.05);
  });
});

describe('loadDeviceConfig', () => {
  test('a preset by name', () => {
    expect(loadDeviceConfig('chen2021')).toEqual(PRESETS.chen2021);
  });

  test('an unknown name is a usage error listing the presets', () => {
    expect(() => loadDeviceConfig('yao2021')).toThrow(UsageError);
    expect(() => loadDeviceConfig('yao2021')).toThrow("unknown device 'yao2021': not a preset (yao2020, park2024, chen2021, cbram, ideal) nor a file");
  });

  test('a partial JSON extending a preset', () => {
    const f = writeJson('loose.json', { extends: 'park2024', writeVerify: { tolerance: 0.1 }, variation: { rOnSigma: 0.2 }, rOff: 200000 });
    const d = loadDeviceConfig(f);
    expect(d.name).toBe('loose');
    expect(d.writeVerify).toEqual({ mode: 'iterative', tolerance: 0.1, maxPulses: 100 });
    expect(d.variation).toEqual({ rOnSigma: 0.2, rOffSigma: 0.05, stepSigma: 0.2 });
    expect(d.gMin).toBe(5);
    expect(d.gMax).toBe(100);
    expect(d.neuron).toEqual(PRESETS.park2024.neuron);
  });

  test('changing the DAC mode replaces the whole dac object', () => {
    const f = writeJson('analog.json', { extends: 'yao2020', name: 'yao-analog', dac: { mode: 'analog', bits: 6 } });
    const d = loadDeviceConfig(f);
    expect(d.name).toBe('yao-analog');
    expect(d.dac).toEqual({ mode: 'analog', bits: 6 });
    expect(mergeDeviceConfig({ a: { mode: 'x', p: 1 }, b: 2 }, { a: { mode: 'y', q: 3 } })).toEqual({ a: { mode: 'y', q: 3 }, b: 2 });
    expect(mergeDeviceConfig({ a: { mode: 'x', p: 1 } }, { a: { p: 2 }, levels: null })).toEqual({ a: { mode: 'x', p: 2 }, levels: null });
  });

  test('a chain of files, relative to each other', () => {
    fs.mkdirSync(path.join(tmp, 'sub'), { recursive: true });
    writeJson('sub/base.json', { extends: 'cbram', levels: 4 });
    const f = writeJson('top.json', { extends: 'sub/base.json', read: { noiseSigma: 0.05 } });
    const d = loadDeviceConfig(f);
    expect(d.levels).toBe(4);
    expect(d.read).toEqual({ voltage: 0.1, noiseSigma: 0.05 });
    expect(d.neuron.kind).toBe('relu');
    expect(d.name).toBe('top');
  });

  test('a whole config in a file', () => {
    const whole = { ...PRESETS.ideal, name: 'mine' };
    const f = writeJson('whole.json', whole);
    expect(loadDeviceConfig(f)).toEqual(whole);
  });

  test('bad files name the file', () => {
    const bad = writeJson('bad.json', '{"extends": "park2024", "levels": ');
    expect(() => loadDeviceConfig(bad)).toThrow(FileFormatError);
    expect(() => loadDeviceConfig(bad)).toThrow(new RegExp(`^${bad}: not valid JSON`));
    const missing = path.join(tmp, 'nothere.json');
    expect(() => loadDeviceConfig(missing)).toThrow(`${missing}: no such file`);
    const arr = writeJson('arr.json', [1, 2]);
    expect(() => loadDeviceConfig(arr)).toThrow(`${arr}: must hold a JSON object (a device config), got [1,2]`);
    const field = writeJson('field.json', { extends: 'park2024', writeVerify: { tolerance: 1.5 } });
    expect(() => loadDeviceConfig(field)).toThrow(`${field}: writeVerify.tolerance: must be in [0, 1), got 1.5`);
    const ext = writeJson('ext.json', { extends: 'park2023' });
    expect(() => loadDeviceConfig(ext)).toThrow(`${ext}: extends: 'park2023' is not a preset (yao2020, park2024, chen2021, cbram, ideal) nor a .json file`);
    const partial = writeJson('partial.json', { writeVerify: { tolerance: 0.1 } });
    expect(() => loadDeviceConfig(partial)).toThrow(`${partial}: gMin: missing`);
    const both = writeJson('both.json', { extends: 'park2024', rOn: 1000, gMax: 3 });
    expect(() => loadDeviceConfig(both)).toThrow(`${both}: rOn: give either rOn (ohms) or gMax (uS), not both`);
  });

  test('an extends cycle is refused', () => {
    writeJson('c1.json', { extends: 'c2.json' });
    const f = writeJson('c2.json', { extends: 'c1.json' });
    expect(() => loadDeviceConfig(f)).toThrow(/"extends" cycle: c2.json -> c1.json -> c2.json/);
  });

  test('the loaded config is a DeviceConfig the rest of the package takes', () => {
    const d: DeviceConfig = loadDeviceConfig('yao2020');
    d.levels = 4; // a copy: the preset is not touched
    expect(PRESETS.yao2020.levels).toBe(8);
  });
});
