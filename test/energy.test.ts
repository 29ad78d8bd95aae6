// Energy and latency estimate (src/energy.ts): hand computations from the counts of a tiny mapped
// network and a device table of round numbers, TOPS/W and GOPS, programming cost, printing and
// the evaluate --crossbar output.
import * as fs from 'fs';
import * as path from 'path';
import { tf } from '../src/tf';
import { initBackend } from '../src/backend';
import { DeviceConfig, getPreset } from '../src/device/config';
import { ConfigError } from '../src/errors';
import { saveModel } from '../src/model_io';
import { QuantActivation } from '../layers/quant_activation';
import { disposeCrossbar, layerCounts, mapModel } from '../src/crossbar';
import { estimateEnergy, estimateFromWork, formatEnergy, formatNs, formatPJ, layerWork, programmingEnergy, summarizeEnergy } from '../src/energy';
import * as api from '../src';
import { mapCommand } from '../src/commands/map';
import { crossbarEvaluateCommand } from '../src/commands/crossbar_eval';
import { captureOutput, tempRoot, tinyConvDense } from './helpers';

const root = tempRoot('energy');

beforeAll(async () => {
  await initBackend('wasm');
});

/** The ideal device with an 8-bit bit-serial DAC and round energy / latency tables. */
function roundDevice(): DeviceConfig {
  const c = getPreset('ideal')!;
  c.name = 'round';
  c.dac = { mode: 'bitSerial', inputBits: 8 };
  c.energy = { cellReadPJ: 0.5, dacPJ: 1, adcPJ: 2, neuronPJ: 3, digitalAddPJ: 0.25, programmingPulsePJ: 4 };
  c.latency = { readNs: 10, adcNs: 2, neuronNs: 1, digitalAddNs: 0.5, programmingPulseNs: 50 };
  return c;
}


describe('estimateEnergy', () => {
  // On 4x4 arrays (2 differential pairs a row), bit-serial 8 reads per input:
  //  conv: 9 positions; 9 rows -> row tiles of 4, 4, 1; 2 outputs: 3 arrays of 2 pairs
  //    cells read 9*8*(16+16+4) = 2592, DAC 9*8*9 = 648, ADC 9*8*6 = 432, neurons 9*2 = 18,
  //    adds 9*2*(3*8 - 1 + 1 bias) = 432
  //  fc: 1 position; 18 rows -> 4, 4, 4, 4, 2; 3 outputs -> pairs 2 + 1: 10 arrays
  //    cells read 8*(18*4 + 18*2) = 864, DAC 8*18*2 = 288, ADC 8*(5*2 + 5*1) = 120, neurons 3,
  //    adds 3*(5*8 - 1) = 117
  const conv = { cells: 2592, dac: 648, adc: 432, neurons: 18, adds: 432 };
  const fc = { cells: 864, dac: 288, adc: 120, neurons: 3, adds: 117 };
  const pj = (c: typeof conv) => c.cells * 0.5 + c.dac * 1 + c.adc * 2 + c.neurons * 3 + c.adds * 0.25;

  test('energy by component equals the counts times the table, per layer and in total', () => {
    const net = mapModel(tinyConvDense(), roundDevice(), { arrayRows: 4, arrayCols: 4 });
    const est = estimateEnergy(net);
    expect(est.layers.map((l) => l.layer)).toEqual(['conv', 'fc']);
    const [c, f] = est.layers;
    expect(c.energyPJ).toEqual({ cellReads: 1296, dac: 648, adc: 864, neurons: 54, digitalAdds: 108, total: 2970 });
    expect(f.energyPJ).toEqual({ cellReads: 432, dac: 288, adc: 240, neurons: 9, digitalAdds: 29.25, total: 998.25 });
    expect(pj(conv)).toBe(2970);
    expect(pj(fc)).toBe(998.25);
    expect(est.energyPJ.total).toBe(3968.25);
    expect(est.energyPJ.adc).toBe(864 + 240);
    expect(est.energyPerInferenceNJ).toBeCloseTo(3.96825, 12);
    expect(est.energyPerInferenceUJ).toBeCloseTo(3.96825e-3, 15);
    // MACs from the geometry: conv 9 rows x 2 outputs x 9 positions, fc 18 x 3 x 1
    expect([c.macs, f.macs, est.macs, est.ops]).toEqual([162, 54, 216, 432]);
    // TOPS/W = ops / J / 1e12 = ops / pJ
    expect(est.topsPerWatt).toBeCloseTo(432 / 3968.25, 12);
    const joules = est.energyPJ.total * 1e-12;
    expect(est.topsPerWatt!).toBeCloseTo(est.ops / joules / 1e12, 12);
    disposeCrossbar(net);
  });

  test('latency: reads, multiplexed ADC, adders and neurons, layers one after another', () => {
    const net = mapModel(tinyConvDense(), roundDevice(), { arrayRows: 4, arrayCols: 4 });
    const est = estimateEnergy(net);
    const [c, f] = est.layers;
    // conv: 9 positions x 8 reads x 10 ns; each read converts the 2 pairs of an array (2 ns each);
    // per position 1 neuron (1 ns) and 24 additions of 0.5 ns
    expect(c.latencyNs).toEqual({ reads: 720, adc: 288, neurons: 9, digitalAdds: 108, total: 1125 });
    // fc: 8 reads x 10 ns, 2 conversions a read (the widest array holds 2 pairs), 39 additions
    expect(f.latencyNs).toEqual({ reads: 80, adc: 32, neurons: 1, digitalAdds: 19.5, total: 132.5 });
    expect(est.latencyNs.total).toBe(1257.5);
    expect(est.inferencesPerSec).toBeCloseTo(1e9 / 1257.5, 6);
    expect(est.gops).toBeCloseTo(432 / 1257.5, 12); // ops / ns = 1e9 ops/s
    // one ADC per column (pair): one conversion time a read
    const col = estimateEnergy(net, { adcSharing: 'column' });
    expect(col.adcSharing).toBe('column');
    expect(col.layers.map((l) => l.latencyNs.adc)).toEqual([72 * 2, 8 * 2]);
    expect(col.energyPJ).toEqual(est.energyPJ); // energy counts conversions, not converters
    expect(() => estimateEnergy(net, { adcSharing: 'x' as never })).toThrow(ConfigError);
    disposeCrossbar(net);
  });

  test('replicas share a conv layer\'s positions: the same energy, the largest band sets the time', () => {
    const one = mapModel(tinyConvDense(), roundDevice(), { arrayRows: 4, arrayCols: 4 });
    const two = mapModel(tinyConvDense(), roundDevice(), { arrayRows: 4, arrayCols: 4, replicas: 2 });
    const a = estimateEnergy(one);
    const b = estimateEnergy(two);
    expect(b.energyPJ).toEqual(a.energyPJ);
    // 3 output rows in bands of 1 and 2 rows: 2 x 3 = 6 positions for the slower replica
    expect(b.layers[0]).toMatchObject({ replicas: 2, positionsPerReplica: 6 });
    expect(b.layers[0].latencyNs).toEqual({ reads: 480, adc: 192, neurons: 6, digitalAdds: 72, total: 750 });
    expect(b.layers[1].latencyNs).toEqual(a.layers[1].latencyNs);
    disposeCrossbar(one);
    disposeCrossbar(two);
  });

  test('a real preset: the estimate is the counts dotted with its table', () => {
    const dev = getPreset('yao2020')!;
    const net = mapModel(tinyConvDense(), dev, { arrayRows: 4, arrayCols: 4, seed: 3 });
    const est = estimateEnergy(net);
    const t = dev.energy;
    let want = 0;
    for (const c of layerCounts(net)) {
      want += c.cellsRead * t.cellReadPJ + c.dacConversions * t.dacPJ + c.adcConversions * t.adcPJ + c.neuronEvaluations * t.neuronPJ + c.digitalAdds * t.digitalAddPJ;
    }
    expect(est.energyPJ.total).toBeCloseTo(want, 9);
    expect(est.device).toBe('yao2020');
    expect(est.energyTable).toEqual(t);
    // write-verify programming of the mapping: the pulses of its reports at 2.2 pJ and 50 ns
    const pulses = net.layers.reduce((s, l) => s + l.report.totalPulses, 0);
    expect(pulses).toBeGreaterThan(0);
    expect(est.programming).toEqual(programmingEnergy(pulses, dev));
    expect(est.programming!.energyPJ).toBeCloseTo(pulses * 2.2, 9);
    // the same from the pure core
    expect(estimateFromWork(layerWork(net), dev, { programmingPulses: pulses })).toEqual(est);
    disposeCrossbar(net);
  });

  test('a comparator neuron: no ADC energy nor ADC time in that layer', () => {
    const m = tf.sequential();
    m.add(tf.layers.conv2d({ inputShape: [6, 6, 1], filters: 3, kernelSize: 3, padding: 'same', name: 'conv', kernelInitializer: tf.initializers.glorotUniform({ seed: 21 }) }));
    m.add(tf.layers.maxPooling2d({ poolSize: 2, name: 'pool' }));
    m.add(new QuantActivation({ name: 'act', quantizer: { className: 'SteHeaviside', config: { threshold: 0.5, window: 0.5 } } }));
    m.add(tf.layers.flatten({ name: 'flat' }));
    m.add(tf.layers.dense({ units: 2, name: 'fc', kernelInitializer: tf.initializers.glorotUniform({ seed: 22 }) }));
    const net = mapModel(m, getPreset('park2024')!, { arrayRows: 32, arrayCols: 32 });
    const [c, f] = estimateEnergy(net).layers;
    expect(c.energyPJ.adc).toBe(0);
    expect(c.latencyNs.adc).toBe(0);
    expect(c.latencyNs.reads).toBe(36 * 100); // 36 positions, analog DAC: one 100 ns read each
    expect(f.energyPJ.adc).toBe(2 * 2.55);
    expect(f.latencyNs.adc).toBe(2 * 10); // one array, its 2 pairs converted one after another
    disposeCrossbar(net);
  });

  test('programmingEnergy: pulses x programmingPulsePJ and x programmingPulseNs', () => {
    const dev = roundDevice();
    expect(programmingEnergy(1000, dev)).toEqual({ pulses: 1000, energyPJ: 4000, energyUJ: 0.004, latencyNs: 50000 });
    expect(programmingEnergy(0, dev)).toEqual({ pulses: 0, energyPJ: 0, energyUJ: 0, latencyNs: 0 });
    const yao = programmingEnergy(3, getPreset('yao2020')!);
    expect(yao.energyPJ).toBeCloseTo(6.6, 12);
    expect(yao.latencyNs).toBe(150);
    expect(() => programmingEnergy(-1, dev)).toThrow(ConfigError);
    expect(() => programmingEnergy(NaN, dev)).toThrow(ConfigError);
  });

  test('exact programming (ideal) costs no pulses; a zero table gives null ratios', () => {
    const dev = roundDevice();
    const net = mapModel(tinyConvDense(), dev, { arrayRows: 4, arrayCols: 4 });
    expect(estimateEnergy(net).programming).toEqual({ pulses: 0, energyPJ: 0, energyUJ: 0, latencyNs: 0 });
    dev.energy = { cellReadPJ: 0, dacPJ: 0, adcPJ: 0, neuronPJ: 0, digitalAddPJ: 0, programmingPulsePJ: 0 };
    dev.latency = { readNs: 0, adcNs: 0, neuronNs: 0, digitalAddNs: 0, programmingPulseNs: 0 };
    const zero = estimateFromWork(layerWork(net), dev);
    expect([zero.topsPerWatt, zero.gops, zero.inferencesPerSec, zero.programming]).toEqual([null, null, null, null]);
    disposeCrossbar(net);
  });

  test('formatEnergy: a row per layer, the total, the figures beside the operation count', () => {
    const net = mapModel(tinyConvDense(), getPreset('yao2020')!, { arrayRows: 4, arrayCols: 4, seed: 3 });
    const est = estimateEnergy(net);
    const text = formatEnergy(est);
    const lines = text.split('\n');
    expect(lines[0]).toMatch(/^layer\s+kind\s+MACs\s+positions\/replica\s+reads\s+cells nJ\s+DAC nJ\s+ADC nJ/);
    expect(lines[2]).toMatch(/^conv\s+conv2d\s+162\s+9\s+8\s/);
    expect(lines[3]).toMatch(/^fc\s+dense\s+54\s+1\s+8\s/);
    expect(lines[5]).toMatch(/^total\s+216\s/);
    expect(text).toContain('432 ops (216 MACs)');
    expect(text).toMatch(/TOPS\/W/);
    expect(text).toMatch(/inferences\/s/);
    expect(text).toMatch(/one ADC per array/);
    expect(text).toMatch(/programming the arrays \(write-verify, once\): [\d,]+ pulses/);
    expect(summarizeEnergy(est).split('\n')).toHaveLength(2);
    expect([formatPJ(3968.25), formatPJ(2.5e6), formatPJ(0.5), formatNs(1257.5), formatNs(12)]).toEqual(['3.97 nJ', '2.5 uJ', '0.5 pJ', '1.26 us', '12 ns']);
    disposeCrossbar(net);
  });

  test('exported from the package index as `energy`', () => {
    expect(api.energy.estimateEnergy).toBe(estimateEnergy);
    expect(api.energy.programmingEnergy).toBe(programmingEnergy);
  });
});

describe('evaluate --crossbar', () => {

  test('the JSON result carries the estimate; the human output prints it after the counts', async () => {
    const m = tf.sequential();
    m.add(tf.layers.conv2d({ inputShape: [28, 28, 1], filters: 4, kernelSize: 3, strides: 2, activation: 'relu', name: 'conv', kernelInitializer: tf.initializers.glorotUniform({ seed: 5 }) }));
    m.add(tf.layers.flatten({ name: 'flat' }));
    m.add(tf.layers.dense({ units: 10, name: 'fc', kernelInitializer: tf.initializers.glorotUniform({ seed: 6 }) }));
    const modelDir = path.join(root, 'model');
    await saveModel(m, modelDir);
    const out = path.join(root, 'xdir');
    await captureOutput(() => mapCommand({ model: modelDir, device: 'yao2020', array: '32x32', seed: 3, out, json: true, backend: 'wasm' }));
    const ev = await captureOutput(() => crossbarEvaluateCommand({ crossbar: out, dataset: 'mnist', testSamples: 40, calibrationSamples: 20, json: true, backend: 'wasm' }));
    const ej = JSON.parse(ev.out);
    const e = ej.energy;
    // conv: 13x13 positions, 9 rows x 4 outputs; fc: 676 x 10
    expect(e.macs).toBe(13 * 13 * 9 * 4 + 676 * 10);
    expect(e.ops).toBe(2 * e.macs);
    expect(e.device).toBe('yao2020');
    const y = getPreset('yao2020')!.energy;
    const c = ej.counts.perInference;
    const want = c.cellsRead * y.cellReadPJ + c.dacConversions * y.dacPJ + c.adcConversions * y.adcPJ + c.neuronEvaluations * y.neuronPJ + c.digitalAdds * y.digitalAddPJ;
    expect(e.energyPJ.total).toBeCloseTo(want, 6);
    expect(e.topsPerWatt).toBeCloseTo(e.ops / e.energyPJ.total, 9);
    expect(e.programming.pulses).toBeGreaterThan(0);
    const human = await captureOutput(() => crossbarEvaluateCommand({ crossbar: out, dataset: 'mnist', testSamples: 40, calibrationSamples: 20, backend: 'wasm' }));
    const lines = human.out.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^crossbar test accuracy /);
    expect(lines[1]).toMatch(/^per inference: \d+ array reads/);
    expect(human.out).toMatch(/^layer\s+kind\s+MACs/m);
    expect(human.out).toContain(`${e.ops.toLocaleString('en-US')} ops (${e.macs.toLocaleString('en-US')} MACs)`);
  });
});
