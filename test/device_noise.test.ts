// The device config seen from training (src/device/training_noise.ts): DeviceConfig <-> training
// variation both ways with hand-computed numbers, the measured write-verify residual against a
// device whose programming can be followed by hand, the write-verify noise model of
// layers/variation.ts, models built against a device, and the hybrid pipeline (training/pipeline.ts)
// on tiny data.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { tf } from '../src/tf';
import { disposeCrossbar } from '../src/crossbar/network';
import { evaluateTransfer, mapAndProgram, runHybrid, runInsitu, trainModel } from '../training/pipeline';
import { ConfigError } from '../src/errors';
import { DeviceConfig, getPreset, presetNames } from '../src/device/config';
import {
  IDEAL_ON_OFF,
  ProgrammingResidual,
  deviceFromVariation,
  deviceTrainingView,
  measureProgrammingError,
  referencePositionOf,
  variationFromDevice,
  weightLevelsFromDevice,
} from '../src/device/training_noise';
import { DEFAULT_VARIATION, isNoiseFree, overrideVariation, perturbValues, perturbWeights, resolveVariation } from '../layers/variation';
import { QuantKernelLayer } from '../layers/quant_base';
import { buildModel } from '../models/registry';
import { arr, roundTrip } from './helpers';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

const preset = (name: string): DeviceConfig => getPreset(name)!;

/** A device whose write-verify can be followed by hand: no noise, no variation, 2 uS steps. */
function handDevice(): DeviceConfig {
  const c = preset('ideal');
  c.name = 'hand';
  c.gMin = 0;
  c.gMax = 10;
  c.levels = 3;
  c.pulse = { model: 'constantStep', dgSet: 2, dgReset: 2, c2cSigma: 0 };
  c.writeVerify = { mode: 'iterative', tolerance: 0.15, maxPulses: 100 };
  return c;
}

describe('DeviceConfig -> training variation', () => {
  test('yao2020, field by field', () => {
    const v = variationFromDevice(preset('yao2020'));
    // gMax / gMin = 20 / 2; d2d, stuck cells and read noise as the preset gives them
    expect(v).toMatchObject({
      gOnOffRatio: 10,
      rOnSigma: 0.05,
      rOffSigma: 0.1,
      stuckAtRonRate: 0.005, // faults.stuckAtGMax
      stuckAtRoffRate: 0.005, // faults.stuckAtGMin
      readNoiseSigma: 0.02,
      programming: 'writeVerify',
      scheme: 'differential',
      referencePosition: 0.5,
    });
    // the residual measured at the 8 levels; the summary sigma is the measured one
    const r = measureProgrammingError(preset('yao2020'));
    expect(v.programmingError).toEqual({ mean: r.mean, sigma: r.sigma });
    expect(v.programmingError!.mean).toHaveLength(8);
    expect(v.programmingSigma).toBe(r.overallSigma);
    // 15-level weights: the difference of two 8-level devices (Yao et al.)
    expect(weightLevelsFromDevice(preset('yao2020'))).toBe(15);
  });

  test('the other presets: window ratio, rates, levels', () => {
    const park = variationFromDevice(preset('park2024'));
    expect([park.gOnOffRatio, park.stuckAtRonRate, park.stuckAtRoffRate, park.readNoiseSigma]).toEqual([10, 0.002, 0.002, 0.01]);
    expect(weightLevelsFromDevice(preset('park2024'))).toBe(15);
    expect(weightLevelsFromDevice(preset('chen2021'))).toBe(3); // two binary devices: -1, 0, +1
    expect(variationFromDevice(preset('cbram')).gOnOffRatio).toBeCloseTo(1e4, 6); // 100 / 0.01
    expect(weightLevelsFromDevice(preset('cbram'))).toBe(31);
    // the ideal device: gMin 0, continuous, exact programming: nothing to perturb
    const ideal = variationFromDevice(preset('ideal'));
    expect(ideal.gOnOffRatio).toBe(IDEAL_ON_OFF);
    expect(ideal.programmingError!.mean.every((x) => x === 0) && ideal.programmingError!.sigma.every((x) => x === 0)).toBe(true);
    expect(isNoiseFree(ideal)).toBe(true);
    expect(weightLevelsFromDevice(preset('ideal'))).toBeNull();
  });

  test('reference scheme: the reference level and the weight levels around it', () => {
    const c = preset('yao2020'); // 8 levels: mid-window falls between levels 3 and 4, rounded up to 4
    expect(referencePositionOf(c)).toBeCloseTo(4 / 7, 12);
    expect(weightLevelsFromDevice(c, 'reference')).toBe(7); // 3 steps either side of level 4
    expect(variationFromDevice(c, { scheme: 'reference' })).toMatchObject({ scheme: 'reference', referencePosition: 4 / 7 });
    c.levels = 9; // an odd count has a level at mid-window
    expect(referencePositionOf(c)).toBe(0.5);
    expect(weightLevelsFromDevice(c, 'reference')).toBe(9);
    c.levels = 2;
    expect(() => weightLevelsFromDevice(c, 'reference')).toThrow(ConfigError);
  });

  test('overrides replace single fields; programmingSigma replaces the measured table', () => {
    const view = deviceTrainingView(preset('yao2020'), { overrides: { readNoiseSigma: 0, stuckAtRonRate: 0.01 } });
    expect(view).toMatchObject({ weightLevels: 15, scheme: 'differential', device: 'yao2020' });
    expect([view.variation.readNoiseSigma, view.variation.stuckAtRonRate, view.variation.rOffSigma]).toEqual([0, 0.01, 0.1]);
    expect(view.variation.programmingError).not.toBeNull();
    const flat = overrideVariation(view.variation, { programmingSigma: 0.03 });
    expect([flat.programmingSigma, flat.programmingError]).toEqual([0.03, null]);
  });
});

describe('training variation -> DeviceConfig, and both ways', () => {
  test('device -> variation -> device gives every preset back', () => {
    for (const name of presetNames()) {
      const p = preset(name);
      const back = deviceFromVariation(variationFromDevice(p), p, { weightLevels: weightLevelsFromDevice(p) });
      expect(back.gMin).toBeCloseTo(p.gMin, 12);
      expect({ ...back, gMin: p.gMin }).toEqual(p);
    }
  });

  test('variation -> device -> variation: hand-computed fields on a base device', () => {
    const base = preset('yao2020');
    const v = resolveVariation({
      gOnOffRatio: 40,
      rOnSigma: 0.02,
      rOffSigma: 0.15,
      stuckAtRonRate: 0.001,
      stuckAtRoffRate: 0.003,
      readNoiseSigma: 0.05,
      programming: 'writeVerify',
      programmingSigma: 0.02,
      programmingError: { mean: [0, -0.01, -0.02], sigma: [0.01, 0.02, 0.02] },
    });
    const d = deviceFromVariation(v, base, { weightLevels: 9 });
    // gMin = gMax / ratio = 20 / 40; 9 weight levels = 2 L - 1 -> L = 5
    expect([d.gMin, d.gMax, d.levels, d.defaultScheme]).toEqual([0.5, 20, 5, 'differential']);
    expect(d.variation).toEqual({ rOnSigma: 0.02, rOffSigma: 0.15, stepSigma: base.variation.stepSigma });
    expect(d.faults).toEqual({ stuckAtGMin: 0.003, stuckAtGMax: 0.001 });
    expect(d.read).toEqual({ voltage: base.read.voltage, noiseSigma: 0.05 });
    // the residual has no device field (it is measured from writeVerify, pulse and read noise):
    // given as the measurement, the view comes back whole
    const residual: ProgrammingResidual = { ...v.programmingError!, overallMean: -0.01, overallSigma: 0.02, cells: 3 };
    expect(variationFromDevice(d, { measuredResidual: residual })).toEqual(v);
    expect(weightLevelsFromDevice(d)).toBe(9);
    // the reference scheme and an ideal window
    const r = resolveVariation({ ...v, scheme: 'reference', referencePosition: 4 / 7, gOnOffRatio: IDEAL_ON_OFF });
    const dr = deviceFromVariation(r, base, { weightLevels: 7 });
    expect([dr.gMin, dr.levels, dr.defaultScheme]).toEqual([0, 8, 'reference']);
    expect(variationFromDevice(dr, { measuredResidual: residual })).toEqual(r);
    expect(() => deviceFromVariation(v, base, { weightLevels: 8 })).toThrow(/odd integer/);
  });
});

describe('the measured write-verify residual', () => {
  test('follows the write-verify loop by hand', () => {
    // targets 0, 5 and 10 uS, tolerance 1.5 uS, 2 uS steps from 0: target 5 is accepted at 4
    // (|4 - 5| <= 1.5), target 10 at 10 (8 is 2 uS off); G - target = 0, -1, 0 uS of a 10 uS window
    const r = measureProgrammingError(handDevice(), { cellsPerPoint: 16 });
    expect(r.mean).toEqual([0, -0.1, 0]);
    expect(r.sigma).toEqual([0, 0, 0]);
    expect(r.cells).toBe(48);
    expect(r.overallMean).toBeCloseTo(-0.1 / 3, 6);
    expect(r.overallSigma).toBeCloseTo(Math.sqrt(0.01 / 3 - 0.01 / 9), 6);
  });

  test('exact programming leaves only what d2d cannot reach; seeded and cached', () => {
    const c = handDevice();
    c.gMin = 1;
    c.writeVerify = { mode: 'exact', tolerance: 0, maxPulses: 0 };
    c.variation = { rOnSigma: 0, rOffSigma: 0.2, stepSigma: 0 };
    const r = measureProgrammingError(c);
    // a cell whose own gMin lies above the lowest target sits above it; no other error
    expect(r.mean[0]).toBeGreaterThan(0);
    expect(r.mean.slice(1)).toEqual([0, 0]);
    expect(measureProgrammingError(c)).toEqual(r);
    expect(measureProgrammingError(preset('ideal')).mean.every((x) => x === 0)).toBe(true);
  });

  test('yao2020: write-verify from gMin stops short of its targets, more so at the top', () => {
    const { mean, sigma } = measureProgrammingError(preset('yao2020'));
    const tol = preset('yao2020').writeVerify.tolerance;
    for (let i = 1; i < 8; i++) {
      expect(mean[i]).toBeLessThan(0);
      expect(Math.abs(mean[i])).toBeLessThan(1.5 * tol);
      expect(sigma[i]).toBeGreaterThan(0);
    }
    expect(mean[7]).toBeLessThan(mean[1]);
  });
});

describe('the write-verify noise model', () => {
  const gOnOffRatio = 10;

  test('the residual table moves each device by its interpolated mean (hand-computed)', () => {
    const v = resolveVariation({ gOnOffRatio, programming: 'writeVerify', programmingError: { mean: [0, -0.1, 0], sigma: [0, 0, 0] } });
    const w = tf.tensor1d([1, 0.5, 0.25, -0.5, 0, -0.75]);
    // x = 1 -> 0; x = 0.5 -> -0.1; x = 0.25 -> -0.05; x = 0.75 -> -0.05 (linear between positions)
    const got = arr(perturbValues(w, v, 1));
    const want = [1, 0.4, 0.2, -0.4, 0, -0.7];
    want.forEach((x, i) => expect(got[i]).toBeCloseTo(x, 5));
    // in the reference scheme a shift common to every position cancels against the reference cell
    const ref = resolveVariation({ gOnOffRatio, programming: 'writeVerify', scheme: 'reference', programmingError: { mean: [0.05, 0.05], sigma: [0, 0] } });
    const w2 = tf.tensor2d([[0.3, -1], [0.6, 0.1]]);
    arr(perturbValues(w2, ref, 2)).forEach((x, i) => expect(x).toBeCloseTo(arr(w2)[i], 5));
  });

  test('read noise: std from both devices of the pair', () => {
    const n = 100000;
    const a = new Float32Array(n).fill(0.5);
    a[0] = 1;
    const s = 0.1;
    // G_min 0.5 (ratio 2): G+ = 0.75, G- = 0.5, range 0.5; w = (G+ (1 + s z1) - G- (1 + s z2)) / 0.5
    const v = resolveVariation({ gOnOffRatio: 2, programming: 'writeVerify', readNoiseSigma: s });
    const x = arr(perturbValues(tf.tensor1d(a), v, 3)).slice(1);
    const mean = x.reduce((p, q) => p + q, 0) / x.length;
    const std = Math.sqrt(x.reduce((p, q) => p + (q - mean) ** 2, 0) / x.length);
    const want = (s * Math.hypot(0.75, 0.5)) / 0.5;
    expect(Math.abs(mean - 0.5)).toBeLessThan((4 * want) / Math.sqrt(n));
    expect(Math.abs(std / want - 1)).toBeLessThan(0.03);
  });

  test('write-verify: d2d alone changes nothing (the loop corrects it); stuck cells sit at their own bounds', () => {
    const d2d = resolveVariation({ gOnOffRatio, programming: 'writeVerify', rOnSigma: 0.3, rOffSigma: 0.3 });
    expect(isNoiseFree(d2d)).toBe(true);
    expect(isNoiseFree(resolveVariation({ gOnOffRatio, rOnSigma: 0.3 }))).toBe(false); // open loop
    const w = tf.tensor1d([1, 0.5, -0.5, 0]);
    const all = arr(perturbValues(w, resolveVariation({ gOnOffRatio, programming: 'writeVerify', stuckAtRonRate: 1 }), 4));
    // every device at G_max = 1: w = (1 - 1) / range = 0
    all.forEach((x) => expect(x).toBeCloseTo(0, 6));
  });

  test('the gradient is 0 where the weight\'s device is stuck, 1 elsewhere', () => {
    const w = tf.randomUniform([2000], -1, 1, 'float32', 7);
    const v = { gOnOffRatio, programming: 'writeVerify' as const, stuckAtRoffRate: 0.3 };
    const g = arr(tf.grad((x: tf.Tensor) => perturbWeights(x, v, 5).sum())(w));
    expect(g.every((x) => x === 0 || x === 1)).toBe(true);
    const zeros = g.filter((x) => x === 0).length / g.length;
    expect(Math.abs(zeros - 0.3)).toBeLessThan(0.05);
    // without stuck cells: straight through
    const g2 = arr(tf.grad((x: tf.Tensor) => perturbWeights(x, { ...v, stuckAtRoffRate: 0, readNoiseSigma: 0.1 }, 5).sum())(w));
    expect(g2.every((x) => x === 1)).toBe(true);
  });
});

describe('models built against a device', () => {
  test('every quantized kernel carries the view; multi-level layers take the device levels, binary ones keep theirs', async () => {
    const yao = preset('yao2020');
    const m = buildModel('mcnn', { seed: 1, device: yao });
    const want = variationFromDevice(yao);
    for (const n of ['C1', 'C3', 'FC']) {
      const l = m.getLayer(n) as QuantKernelLayer;
      expect(l.variation).toEqual(want);
      expect(l.kernelQuantizer!.levels).toBe(15);
    }
    // a ternary device on a multi-level model; a binary model keeps its sign quantizer
    const chen = preset('chen2021');
    expect((buildModel('mcnn', { seed: 1, device: chen }).getLayer('FC') as QuantKernelLayer).kernelQuantizer!.levels).toBe(3);
    const bnn = buildModel('bnn', { seed: 1, device: chen }).getLayer('FC') as QuantKernelLayer;
    expect(bnn.kernelQuantizer!.className).toBe('SteSign');
    expect(bnn.variation).toEqual(variationFromDevice(chen));
    // explicit levels and overrides win
    const o = buildModel('mcnn', { seed: 1, device: yao, weightLevels: 7, variation: { readNoiseSigma: 0 } }).getLayer('C3') as QuantKernelLayer;
    expect([o.kernelQuantizer!.levels, o.variation!.readNoiseSigma]).toEqual([7, 0]);
    expect(() => buildModel('mcnn', { seed: 1, device: yao, float: true })).toThrow(/float/);
    expect(() => buildModel('mcnn', { seed: 1, scheme: 'reference' })).toThrow(/device/);
    // the layer config holds plain numbers and round-trips through save / load
    const again = await roundTrip(m);
    expect((again.getLayer('FC') as QuantKernelLayer).variation).toEqual(want);
    expect(JSON.parse(JSON.stringify(m.getLayer('FC').getConfig())).variation).toEqual({ ...want });
    expect(Object.keys(DEFAULT_VARIATION).sort()).toEqual(Object.keys(want).sort());
    m.dispose();
    again.dispose();
  });
});

describe('the hybrid pipeline as library API (tiny data)', () => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'mtfjs-pipeline-'));
  afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

  test('runHybrid: device-aware by default, both runs with compareDeviceAware, stage events, files', async () => {
    const events: string[] = [];
    const out = path.join(root, 'h');
    const s = await runHybrid(
      { model: 'mcnn', device: 'yao2020', seed: 2, trainSamples: 300, testSamples: 100, insituSamples: 100, compareDeviceAware: true, out, backend: 'wasm' },
      { onProgress: (e) => events.push(`${e.run}:${e.step}/${e.of}:${e.stage}`) },
    );
    expect(events).toEqual([
      ...['1/4:train', '2/4:map', '3/4:transfer', '4/4:insitu'].map((e) => `deviceAware:${e}`),
      ...['1/4:train', '2/4:map', '3/4:transfer', '4/4:insitu'].map((e) => `plain:${e}`),
    ]);
    expect(s).toMatchObject({ format: 'memristor-tfjs-hybrid', device: 'yao2020', deviceAware: true, weightLevels: 15, weightClipRms: 2.5, testSamples: 100 });
    expect(s.trainingVariation).toEqual(variationFromDevice(preset('yao2020')));
    const c = s.comparison!;
    expect(c.deviceAware).toMatchObject({ deviceAware: true, softwareAccuracy: s.softwareAccuracy, transferredAccuracy: s.transferredAccuracy, insituAccuracy: s.insituAccuracy, dir: '.' });
    expect(c.plain).toMatchObject({ deviceAware: false, dir: 'plain' });
    expect(c.lossRatio).toBe(c.plain.lostPoints > 0 ? Number((c.deviceAware.lostPoints / c.plain.lostPoints).toFixed(4)) : null);
    // the plain run trained without noise and with the model's own levels, on the same data
    const plain = JSON.parse(fs.readFileSync(path.join(out, 'plain', 'summary.json'), 'utf8'));
    expect(plain).toMatchObject({ deviceAware: false, trainingVariation: null, weightLevels: 15, weightClipRms: null, testSamples: 100 });
    expect(JSON.parse(fs.readFileSync(path.join(out, 'summary.json'), 'utf8'))).toEqual(s);
    for (const f of ['model/model.json', 'crossbar/manifest.json', 'insitu/insitu.json', 'plain/model/model.json', 'plain/crossbar/manifest.json', 'plain/insitu/insitu.json']) {
      expect(fs.existsSync(path.join(out, f))).toBe(true);
    }
  });

  test('the stages one by one: trainModel against a device, mapAndProgram, evaluateTransfer, runInsitu; no folder, no files', async () => {
    const { metrics, model, data } = await trainModel(
      { model: 'mcnn', dataset: 'mnist', epochs: 1, seed: 3, trainSamples: 200, testSamples: 50, validationSplit: 0, optimizer: 'adam', schedule: 'cosine', device: 'park2024', variation: { readNoiseSigma: 0 } },
      {},
    );
    expect(metrics).toMatchObject({ device: 'park2024', weightLevels: 15, weightClipRms: 2.5, testSamples: 50 });
    expect(metrics.variation).toMatchObject({ readNoiseSigma: 0, stuckAtRonRate: 0.002, programming: 'writeVerify' });
    const net = mapAndProgram(model, 'park2024', { seed: 3, arrayRows: 64, arrayCols: 32 });
    const before = evaluateTransfer(net, data, { seed: 3 });
    expect(before.count).toBe(50);
    const r = runInsitu(net, data, { samples: 100, seed: 3, evalSamples: 0 }, before.accuracy);
    expect(r.record!.before.testAccuracy).toBe(before.accuracy);
    expect(r.after).toBeGreaterThanOrEqual(0);
    disposeCrossbar(net);
  });
});
