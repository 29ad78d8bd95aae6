import * as fs from 'fs';
import * as path from 'path';
import * as zlib from 'zlib';
import { tf } from '../src/tf';
import { initBackend } from '../src/backend';
import { loadDeviceConfig, PRESETS } from '../src/device';
import { FileFormatError, UsageError } from '../src/errors';
import { SeededRandom } from '../src/random';
import { CrossbarNetwork, mapModel, saveCrossbar } from '../src/crossbar/network';
import {
  barChart,
  binCounts,
  colorAt,
  COLORMAPS,
  crc32,
  encodeIndexedPng,
  formatTick,
  formatValue,
  heatmap,
  histogramChart,
  lineChart,
  linearScale,
  logScale,
  logTicks,
  niceNumber,
  niceTicks,
  stackedBarChart,
} from '../src/report/svg';
import { loadReportInputs } from '../src/report/load';
import { findBreakdowns, readEnergyEstimate, renderReport, unitOf } from '../src/report/html';
import { EnergyEstimate, estimateEnergy, formatNs, formatPJ, programmingEnergy } from '../src/energy';
import { reportCommand } from '../src/commands/report';
import { chromiumDom, externalRefs, findChromium, REQUIRE_CHROMIUM, runCli as run, tempRoot, xmlProblems, quiet } from './helpers';

const root = tempRoot('report');
let dirCount = 0;
const newDir = () => path.join(root, `d${dirCount++}`);

beforeAll(async () => {
  await initBackend('wasm');
});



const count = (s: string, re: RegExp) => (s.match(re) ?? []).length;

// ---------------------------------------------------------------------------------------------
// SVG primitives

describe('ticks and scales', () => {
  test('niceNumber: 1, 2, 5 x 10^k', () => {
    expect(niceNumber(0.028, false)).toBeCloseTo(0.05, 12);
    expect(niceNumber(18, false)).toBe(20);
    expect(niceNumber(4, true)).toBe(5);
    expect(niceNumber(1.2, true)).toBe(1);
    expect(niceNumber(2.9, true)).toBe(2);
    expect(niceNumber(7.5, true)).toBe(10);
  });

  test.each([
    [0, 1, [0, 0.2, 0.4, 0.6, 0.8, 1]],
    [2, 20, [0, 5, 10, 15, 20]],
    [0.953, 0.981, [0.95, 0.96, 0.97, 0.98, 0.99]],
    [-3.7, 12.2, [-5, 0, 5, 10, 15]],
    [95.07, 97.99, [95, 96, 97, 98]],
    [0, 12345, [0, 5000, 10000, 15000]],
    [0, 12345, [0, 2000, 4000, 6000, 8000, 10000, 12000, 14000], 8],
  ])('niceTicks(%p, %p)', (lo: number, hi: number, want: number[], maxTicks = 6) => {
    const t = niceTicks(lo, hi, maxTicks);
    expect(t.values).toEqual(want);
    expect(t.lo).toBeLessThanOrEqual(lo);
    expect(t.hi).toBeGreaterThanOrEqual(hi);
    for (let i = 1; i < t.values.length; i++) expect(t.values[i] - t.values[i - 1]).toBeCloseTo(t.step, 9);
  });

  test('niceTicks widens a zero-width range and refuses non-finite bounds', () => {
    expect(niceTicks(5, 5).values).toEqual([4.4, 4.6, 4.8, 5, 5.2, 5.4, 5.6]);
    expect(niceTicks(0, 0).values).toEqual([-1, -0.5, 0, 0.5, 1]);
    expect(() => niceTicks(0, NaN)).toThrow(RangeError);
  });

  test('logTicks: decades, with 2 and 5 between over few decades', () => {
    expect(logTicks(1, 1000).values).toEqual([1, 10, 100, 1000]);
    expect(logTicks(0.01, 0.5).values).toEqual([0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1]);
    expect(logTicks(3, 3).values).toEqual([1, 2, 5, 10]);
    expect(() => logTicks(0, 10)).toThrow(RangeError);
  });

  test('formatTick: decimals from the step, exponents for extreme values', () => {
    expect(formatTick(0.2, 0.2)).toBe('0.2');
    expect(formatTick(95.5, 0.5)).toBe('95.5');
    expect(formatTick(10, 5)).toBe('10');
    expect(formatTick(0.96, 0.01)).toBe('0.96');
    expect(formatTick(2e-5)).toBe('2e-5');
    expect(formatTick(1.5e7, 5e6)).toBe('1.5e7');
  });

  test('linear and log scales map and invert', () => {
    const x = linearScale(0, 10, 50, 150);
    expect(x(2.5)).toBe(75);
    expect(x.invert(75)).toBe(2.5);
    const y = linearScale(0, 1, 300, 100); // y axes run upwards
    expect(y(0.25)).toBe(250);
    expect(y(1)).toBe(100);
    const l = logScale(1, 1000, 0, 300);
    expect(l(10)).toBeCloseTo(100, 9);
    expect(l(100)).toBeCloseTo(200, 9);
    expect(l.invert(150)).toBeCloseTo(Math.sqrt(1000), 6);
  });
});

describe('colours and PNG', () => {
  test('colour maps: ends and middle', () => {
    expect(colorAt(0)).toEqual(COLORMAPS.viridis[0]);
    expect(colorAt(1)).toEqual(COLORMAPS.viridis[COLORMAPS.viridis.length - 1]);
    expect(colorAt(2)).toEqual(colorAt(1));
    expect(colorAt(0.5, 'diverging')).toEqual([0xf7, 0xf7, 0xf7]);
    expect(colorAt(NaN)).toEqual([170, 170, 170]);
  });

  test('crc32 is the IEEE CRC (check value of "123456789")', () => {
    expect(crc32(Buffer.from('123456789'))).toBe(0xcbf43926);
  });

  test('indexed PNG: signature, chunk CRCs, header and pixels round trip', () => {
    const w = 5;
    const h = 3;
    const px = Uint8Array.from({ length: w * h }, (_, i) => (i * 7) % 4);
    const palette: [number, number, number][] = [[0, 0, 0], [255, 0, 0], [0, 255, 0], [0, 0, 255]];
    const png = encodeIndexedPng(w, h, px, palette);
    expect([...png.subarray(0, 8)]).toEqual([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
    const chunks: { type: string; data: Buffer }[] = [];
    for (let o = 8; o < png.length; ) {
      const len = png.readUInt32BE(o);
      const type = png.toString('ascii', o + 4, o + 8);
      const data = png.subarray(o + 8, o + 8 + len);
      expect(png.readUInt32BE(o + 8 + len)).toBe(crc32(png.subarray(o + 4, o + 8 + len)));
      chunks.push({ type, data });
      o += 12 + len;
    }
    expect(chunks.map((c) => c.type)).toEqual(['IHDR', 'PLTE', 'IDAT', 'IEND']);
    const ihdr = chunks[0].data;
    expect([ihdr.readUInt32BE(0), ihdr.readUInt32BE(4), ihdr[8], ihdr[9]]).toEqual([w, h, 8, 3]);
    expect([...chunks[1].data]).toEqual(palette.flat());
    const raw = zlib.inflateSync(chunks[2].data);
    expect(raw.length).toBe(h * (w + 1));
    for (let y = 0; y < h; y++) {
      expect(raw[y * (w + 1)]).toBe(0);
      expect([...raw.subarray(y * (w + 1) + 1, (y + 1) * (w + 1))]).toEqual([...px.subarray(y * w, (y + 1) * w)]);
    }
  });
});

describe('histogram bins', () => {
  test('binCounts agrees with a direct count', () => {
    const r = new SeededRandom(7);
    const values = Array.from({ length: 5000 }, () => 2 + 18 * r.next() + (r.next() < 0.01 ? 30 : 0));
    values.push(NaN, 2, 20, 1.99, Infinity);
    const lo = 2;
    const hi = 20;
    const bins = 36;
    const b = binCounts(values, lo, hi, bins);
    const want = new Array(bins).fill(0);
    let below = 0;
    let above = 0;
    let bad = 0;
    for (const v of values) {
      if (!Number.isFinite(v)) bad++;
      else if (v < lo) below++;
      else if (v > hi) above++;
      else {
        // bin k holds [lo + k w, lo + (k+1) w); hi itself belongs to the last bin
        let k = 0;
        while (k < bins - 1 && v >= lo + ((k + 1) * (hi - lo)) / bins) k++;
        want[k]++;
      }
    }
    expect(b.counts).toEqual(want);
    expect([b.below, b.above, b.nonFinite]).toEqual([below, above, bad]);
    expect(b.counts.reduce((a, c) => a + c, 0) + below + above + bad).toBe(values.length);
    expect(b.edges.length).toBe(bins + 1);
    expect(b.edges[0]).toBe(lo);
    expect(b.edges[bins]).toBe(hi);
    expect(b.counts[0]).toBeGreaterThan(0);
    expect(b.counts[bins - 1]).toBeGreaterThan(0);
  });

  test('histogramChart draws one outline per series with the bin counts', () => {
    const a = [1, 1.5, 2, 2.5, 3, 3, 3, 4];
    const b = [2, 2, 2, 5];
    const svg = histogramChart({ title: 'h', xLabel: 'G (µS)', series: [{ label: 'a', values: a }, { label: 'b', values: b }], lo: 1, hi: 5, bins: 4 });
    const counts = [...svg.matchAll(/data-counts="([^"]*)"/g)].map((m) => m[1].split(' ').map(Number));
    expect(counts).toEqual([binCounts(a, 1, 5, 4).counts, binCounts(b, 1, 5, 4).counts]);
    expect(counts).toEqual([
      [2, 2, 3, 1],
      [0, 3, 0, 1],
    ]);
    expect(svg).toContain('G (µS)');
    expect(svg).toContain('>count<');
    expect(xmlProblems(svg)).toEqual([]);
  });

  test('integer histogram: one bin per pulse count', () => {
    const svg = histogramChart({ title: 'p', xLabel: 'pulses', series: [{ label: 'cells', values: [0, 0, 0, 1, 2, 2, 5] }], integer: true });
    const counts = svg.match(/data-counts="([^"]*)"/)![1].split(' ').map(Number);
    expect(counts).toEqual([3, 1, 2, 0, 0, 1]);
  });
});

describe('charts', () => {
  test('heatmap: <rect> cells when small, with the colour of each value', () => {
    const data = Float32Array.from({ length: 20 }, (_, i) => i);
    const svg = heatmap({ title: 'small', rows: 4, cols: 5, data, valueLabel: 'G (µS)' });
    expect(svg).toContain('data-mode="rect"');
    const cells = svg.slice(svg.indexOf('<g class="cells"'), svg.indexOf('</g>', svg.indexOf('<g class="cells"')));
    const fills = [...cells.matchAll(/<rect [^>]*fill="(#[0-9a-f]{6})"/g)].map((m) => m[1]);
    expect(fills.length).toBe(20);
    expect(fills[0]).toBe('#440154');
    expect(fills[19]).toBe('#fde725');
    expect(svg).toContain('G (µS)');
    expect(svg).not.toContain('<image');
    expect(xmlProblems(svg)).toEqual([]);
  });

  test('heatmap: a PNG <image> inside the svg when large, one pixel per cell', () => {
    const rows = 40;
    const cols = 50;
    const data = Float32Array.from({ length: rows * cols }, (_, i) => (i === 7 ? NaN : i % cols));
    const svg = heatmap({ title: 'large', rows, cols, data, valueLabel: 'pulses', lo: 0, hi: cols - 1 });
    expect(svg).toContain('data-mode="image"');
    expect(count(svg, /<rect /g)).toBeLessThan(50); // frame and legend only
    const b64 = svg.match(/href="data:image\/png;base64,([^"]+)"/)![1];
    const png = Buffer.from(b64, 'base64');
    expect(png.readUInt32BE(16)).toBe(cols);
    expect(png.readUInt32BE(20)).toBe(rows);
    // IDAT is the third chunk: after IHDR (13 bytes) and PLTE (256 colours)
    const idatAt = 8 + 12 + 13 + 12 + 256 * 3;
    expect(png.toString('ascii', idatAt + 4, idatAt + 8)).toBe('IDAT');
    const raw = zlib.inflateSync(png.subarray(idatAt + 8, idatAt + 8 + png.readUInt32BE(idatAt)));
    const px = (r: number, c: number) => raw[r * (cols + 1) + 1 + c];
    expect(px(1, 0)).toBe(0);
    expect(px(1, cols - 1)).toBe(254);
    expect(px(0, 7)).toBe(255); // NaN
    expect(px(3, 25)).toBe(Math.round((25 / (cols - 1)) * 254));
    expect(xmlProblems(svg)).toEqual([]);
  });

  test('lineChart: points, error bars, reference lines, labels', () => {
    const svg = lineChart({
      title: 'Accuracy vs tolerance',
      xLabel: 'tolerance',
      yLabel: 'test accuracy (%)',
      series: [
        { label: 'before', points: [{ x: 0.01, y: 97, err: 0.5 }, { x: 0.05, y: 95, err: 1 }, { x: 0.1, y: 90, err: 0 }] },
        { label: 'after', dashed: true, points: [{ x: 0.01, y: 97.5 }, { x: 0.05, y: 96.8 }] },
      ],
      hLines: [{ y: 98, label: 'software' }],
    });
    expect(count(svg, /class="error-bar"/g)).toBe(2);
    expect(count(svg, /<circle /g)).toBe(5 + 2); // the points and the two legend markers
    expect(count(svg, /class="ref-line"/g)).toBe(1);
    for (const t of ['Accuracy vs tolerance', 'tolerance', 'test accuracy (%)', 'before', 'after', 'software']) expect(svg).toContain(`>${t}<`);
    // the y axis covers 90 - 0 .. 98 (the reference line)
    const yTicks = [...svg.matchAll(/<text x="[\d.]+" y="[\d.]+" text-anchor="end">([\d.]+)</g)].map((m) => Number(m[1]));
    expect(Math.min(...yTicks)).toBeLessThanOrEqual(90);
    expect(Math.max(...yTicks)).toBeGreaterThanOrEqual(98);
    expect(xmlProblems(svg)).toEqual([]);
  });

  test('barChart: bar lengths proportional to the values', () => {
    const svg = barChart({ title: 'Energy', valueLabel: 'energy (pJ)', bars: [{ label: 'adc', value: 30 }, { label: 'arrays', value: 10 }, { label: 'dac', value: 5 }], max: 40 });
    const widths = [...svg.matchAll(/<g class="bar"[^>]*><text[^>]*>[^<]*<\/text><rect [^>]*width="([\d.]+)"/g)].map((m) => Number(m[1]));
    expect(widths.length).toBe(3);
    expect(widths[0] / widths[1]).toBeCloseTo(3, 2);
    expect(widths[1] / widths[2]).toBeCloseTo(2, 2);
    expect(svg).toContain('>energy (pJ)<');
    expect(xmlProblems(svg)).toEqual([]);
  });

  test('stackedBarChart: segments proportional to the values, stacked left to right, totals after the bars', () => {
    const svg = stackedBarChart({
      title: 'Energy by layer',
      valueLabel: 'energy (nJ)',
      categories: ['c1', 'd'],
      series: [
        { label: 'cells', values: [10, 2] },
        { label: 'ADC', values: [30, 4] },
        { label: 'bad', values: [NaN, -1] }, // not finite or < 0: counted as 0
      ],
      format: (v) => `${v} nJ`,
      cls: 'stack-test',
    });
    expect(svg).toContain('<svg class="plot stack-test"');
    const stacks = [...svg.matchAll(/<g class="stack" data-label="([^"]*)" data-total="([^"]*)">([\s\S]*?)<\/g>/g)];
    expect(stacks.map((m) => [m[1], Number(m[2])])).toEqual([['c1', 40], ['d', 6]]);
    const segs = stacks.map((m) => [...m[3].matchAll(/<rect class="segment" data-series="([^"]*)" data-value="([^"]*)" x="([\d.]+)" y="[\d.]+" width="([\d.]+)"/g)].map((r) => ({ s: r[1], v: Number(r[2]), x: Number(r[3]), w: Number(r[4]) })));
    expect(segs.map((g) => g.map((r) => r.s))).toEqual([['cells', 'ADC', 'bad'], ['cells', 'ADC', 'bad']]);
    expect(segs.map((g) => g.map((r) => r.v))).toEqual([[10, 30, 0], [2, 4, 0]]);
    const [a, b] = segs;
    expect(a[1].w / a[0].w).toBeCloseTo(3, 2);
    expect(b[1].w / b[0].w).toBeCloseTo(2, 2);
    expect(a[0].w / b[0].w).toBeCloseTo(5, 2); // one value scale for every bar
    expect(a[1].x).toBeCloseTo(a[0].x + a[0].w, 1); // stacked: each segment starts where the one before ends
    expect(a[0].x).toBeCloseTo(b[0].x, 6); // every bar starts at 0
    expect(a[2].w).toBe(0);
    expect(stacks[0][3]).toContain('>40 nJ<');
    expect(stacks[0][3]).toContain('<title>c1, ADC: 30 nJ</title>');
    for (const t of ['cells', 'ADC', 'bad', 'energy (nJ)', 'Energy by layer']) expect(svg).toContain(`>${t}<`);
    expect(count(svg, /class="axis-label"/g)).toBe(1);
    expect(xmlProblems(svg)).toEqual([]);
    expect(stackedBarChart({ title: 'none', valueLabel: 'x', categories: [], series: [] })).toContain('>no data<');
  });

  test('energy helpers: units from key suffixes, breakdown objects found', () => {
    expect(unitOf('adcPJ')).toBe('pJ');
    expect(unitOf('breakdownPJ')).toBe('pJ');
    expect(unitOf('latencyNs')).toBe('ns');
    expect(unitOf('cells')).toBe('');
    expect(findBreakdowns({ perInference: { totalPJ: 10, breakdownPJ: { arrays: 4, adc: 6 } } })).toEqual([{ path: 'perInference.breakdownPJ', unit: 'pJ', entries: [['arrays', 4], ['adc', 6]] }]);
    expect(findBreakdowns({ perInference: { totalPJ: 10, arraysPJ: 4, adcPJ: 6 } })).toEqual([{ path: 'perInference', unit: 'pJ', entries: [['arraysPJ', 4], ['adcPJ', 6]] }]);
    expect(findBreakdowns({ total: 3 })).toEqual([]);
  });
});

// ---------------------------------------------------------------------------------------------
// The page, from a run directory built here with the real writers

/** A tiny CNN: conv 3x3x1 -> 3 filters (9 x 6 cells), flatten, dense 108 -> 8 (108 x 16 cells). */
function tinyModel(): tf.LayersModel {
  const init = (s: number) => tf.initializers.glorotUniform({ seed: s });
  const m = tf.sequential();
  m.add(tf.layers.conv2d({ inputShape: [6, 6, 1], filters: 3, kernelSize: 3, padding: 'same', activation: 'relu', kernelInitializer: init(1), name: 'c1' }));
  m.add(tf.layers.flatten({ name: 'f' }));
  m.add(tf.layers.dense({ units: 8, kernelInitializer: init(2), name: 'd' }));
  return m;
}

/** An energy object of another shape (as files from before src/energy.ts): shown generically. */
const OLD_ENERGY = {
  device: 'yao2020',
  perInference: { totalPJ: 123.4, breakdownPJ: { arrays: 12.5, dac: 3.1, adc: 98.2, digital: 9.6 }, latencyNs: 850 },
  programming: { pulses: 4200, energyPJ: 9240 },
};

interface Fixture {
  dir: string;
  net: CrossbarNetwork;
  /** Arrays per mapped layer. */
  arrays: number;
  /** summary.json's energy (the real estimate of the mapped net). */
  energy: EnergyEstimate;
  /** The in-situ update pulses (summary.json's insituPulses). */
  insituPulses: number;
}

/** A hybrid run directory: crossbar/ and insitu/ by saveCrossbar, summary.json, insitu.json and sweep/sweep.json by hand. */
async function buildRun(opts: { sweep?: boolean; energy?: boolean | object } = {}): Promise<Fixture> {
  const dir = newDir();
  const device = loadDeviceConfig('yao2020');
  expect(PRESETS.yao2020.gMin).toBe(device.gMin);
  const net = mapModel(tinyModel(), device, { arrayRows: 128, arrayCols: 64, seed: 3 });
  await saveCrossbar(net, path.join(dir, 'crossbar'));
  const energy = estimateEnergy(net);
  // in-situ training moved the dense layer's cells a little (inside the nominal window)
  const dense = net.layers.find((l) => l.name === 'd')!;
  const r = new SeededRandom(5);
  const pulsesPerCell: Record<string, { rows: number; cols: number; data: number[] }> = {};
  for (const a of dense.arrays) {
    const pulses: number[] = [];
    for (let i = 0; i < a.programmed.length; i++) {
      const n = r.next() < 0.3 ? 1 + Math.floor(r.next() * 6) : 0;
      pulses.push(n);
      a.programmed[i] = Math.min(device.gMax, Math.max(device.gMin, a.programmed[i] + (r.next() - 0.5) * 0.4 * n));
    }
    pulsesPerCell[a.id] = { rows: a.tile.rows, cols: a.tile.arrayCols, data: pulses };
  }
  await saveCrossbar(net, path.join(dir, 'insitu'));
  const insituPulses = Object.values(pulsesPerCell).reduce((a, p) => a + p.data.reduce((x, y) => x + y, 0), 0);
  const cost = programmingEnergy(insituPulses, device);
  const insituProgramming = { energyPJ: cost.energyPJ, timeNs: cost.latencyNs };
  const curve = Array.from({ length: 21 }, (_, i) => ({
    samples: i * 500,
    trainAccuracy: 0.9 + 0.004 * i,
    loss: 0.4 - 0.012 * i,
    pulses: 1500 * i,
    testAccuracy: i % 5 === 0 ? 0.93 + 0.002 * i : null,
  }));
  fs.writeFileSync(
    path.join(dir, 'insitu', 'insitu.json'),
    JSON.stringify({ format: 'memristor-tfjs-insitu', version: 1, layer: 'd', rule: 'manhattan', samples: 10000, epochs: 1, batchSize: 50, lr: 0.01, threshold: 0.5, curve, pulsesPerCell, programming: insituProgramming, before: { testAccuracy: 0.93 }, after: { testAccuracy: 0.97 } }),
  );
  fs.writeFileSync(
    path.join(dir, 'summary.json'),
    JSON.stringify({
      format: 'memristor-tfjs-hybrid',
      version: 1,
      model: 'tiny',
      dataset: 'mnist',
      device: 'yao2020',
      seed: 3,
      softwareAccuracy: 0.9799,
      transferredAccuracy: 0.9307,
      insituAccuracy: 0.9702,
      insituSamples: 10000,
      insituRule: 'manhattan',
      insituPulses,
      insituProgramming,
      lostPoints: 4.92,
      recoveredFraction: 0.803,
      seconds: { train: 30.5, map: 1.2, transfer: 3.4, insitu: 20.1, total: 55.2 },
      // a JSON round trip, as hybrid writes it
      energy: opts.energy === false ? null : typeof opts.energy === 'object' ? opts.energy : energy,
      programming: net.layers.map((l) => l.report),
    }),
  );
  if (opts.sweep !== false) writeSweep(path.join(dir, 'sweep'));
  return { dir, net, arrays: net.layers.reduce((a, l) => a + l.arrays.length, 0), energy, insituPulses };
}

function writeSweep(dir: string) {
  const tolerances = [0.01, 0.02, 0.05, 0.1];
  const replicas = [1, 2];
  const points = tolerances.flatMap((t) =>
    replicas.map((rep) => {
      const v = [0.97 - t - 0.002 * rep, 0.965 - t, 0.975 - t];
      const mean = v.reduce((a, b) => a + b, 0) / v.length;
      const std = Math.sqrt(v.reduce((a, b) => a + (b - mean) ** 2, 0) / v.length);
      return { params: { tolerance: t, replicas: rep }, before: { mean, std, values: v }, after: { mean: mean + t / 2, std: std / 2, values: v.map((x) => x + t / 2) } };
    }),
  );
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(
    path.join(dir, 'sweep.json'),
    JSON.stringify({ format: 'memristor-tfjs-sweep', version: 1, model: 'tiny', device: 'yao2020', trials: 3, insitu: true, vary: [{ name: 'tolerance', values: tolerances }, { name: 'replicas', values: replicas }], points }),
  );
}

// ---------------------------------------------------------------------------------------------
// Headless Chromium: the page renders with its plots

const chromium = findChromium();
const requireChromium = REQUIRE_CHROMIUM;
if (!chromium) {
  // Not a silent pass: the skip is reported by jest, and this says why and how to run it.
  console.warn(
    'report.test: no chromium on this machine: the headless-render test is SKIPPED ' +
      '(apt-get install chromium; MEMRISTOR_TFJS_REQUIRE_CHROMIUM=1 makes its absence a failure)',
  );
}

let fixture: Fixture;
let html: string;

describe('the report page', () => {
  beforeAll(async () => {
    fixture = await buildRun();
    const inputs = loadReportInputs(fixture.dir);
    expect(inputs.warnings).toEqual([]);
    html = renderReport(inputs, { version: 'test', generated: new Date(0) });
  });

  test('the fixture: two mapped layers, a 9 x 6 and a 108 x 16 array', () => {
    expect(fixture.net.layers.map((l) => l.arrays.map((a) => `${a.tile.rows}x${a.tile.arrayCols}`))).toEqual([['9x6'], ['108x16']]);
    expect(fixture.arrays).toBe(2);
  });

  test('every plot is there: one <svg> per chart', () => {
    const plots = {
      'stage-chart': 1,
      'sweep-chart': 2, // tolerance, replicas
      'conductance-histogram': 2, // per mapped layer
      'conductance-heatmap': fixture.arrays,
      'error-heatmap': fixture.arrays,
      'learning-curve': 1,
      'pulse-curve': 1,
      'loss-curve': 1,
      'pulse-histogram': 1,
      'pulse-heatmap': 1, // the dense layer's array
      'insitu-change-heatmap': 1,
      'curves-images': 1, // the learning curves section: test accuracy vs images, pulses, energy (one line)
      'curves-pulses': 1,
      'curves-energy': 1,
      'energy-chart': 1, // energy per layer, stacked by component
      'latency-chart': 1, // latency per layer, stacked by component
    };
    for (const [cls, n] of Object.entries(plots)) expect([cls, count(html, new RegExp(`<svg class="plot ${cls}"`, 'g'))]).toEqual([cls, n]);
    const total = Object.values(plots).reduce((a, b) => a + b, 0);
    expect(total).toBe(20);
    expect(count(html, /<svg\b/g)).toBe(total);
    expect(count(html, /<\/svg>/g)).toBe(total);
    // the 108 x 16 array's heatmaps are PNG images inside their svg, the 9 x 6 one's <rect> cells
    expect(count(html, /data-mode="image"/g)).toBe(4);
    expect(count(html, /data-mode="rect"/g)).toBe(2);
  });

  test('every plot has a title and labelled axes with units', () => {
    const svgs = html.match(/<svg\b[\s\S]*?<\/svg>/g)!;
    for (const s of svgs) {
      expect(s).toMatch(/<title>[^<]+<\/title>/);
      expect(count(s, /class="axis-label"/g)).toBeGreaterThanOrEqual(/bar-chart|energy-chart|latency-chart/.test(s.slice(0, 60)) ? 1 : 2);
    }
    for (const u of ['test accuracy (%)', 'conductance G (µS)', 'G (µS)', 'G − G target (µS)', 'training images seen', 'programming pulses (cumulative)', 'SET + RESET pulses per cell']) {
      expect(html).toContain(`>${u}<`);
    }
  });

  test('the hybrid table and the programming table', () => {
    expect(html).toContain('<h1>Hybrid run: tiny on yao2020</h1>');
    expect(html).toContain('97.99%');
    expect(html).toContain('93.07%');
    expect(html).toContain('97.02%');
    expect(html).toContain('4.92 points lost');
    expect(html).toContain('+3.95 points recovered (80% of the lost points)');
    for (const l of fixture.net.layers) expect(html).toContain(`<td>${l.name}</td>`);
    expect(html).toContain('pulses/cell mean');
  });

  test('the energy section: the real estimate per inference, per layer and as stacked bars', () => {
    const est = fixture.energy;
    const sec = html.slice(html.indexOf('<section id="energy">'), html.indexOf('</section>', html.indexOf('<section id="energy">')));
    const fact = (k: string) => sec.match(new RegExp(`<tr><th>${k}</th><td>([^<]*)</td></tr>`))?.[1];
    // the fixture's numbers: conv 6x6 positions x 9 rows x 3 filters, dense 108 x 8
    expect([est.macs, est.ops]).toEqual([36 * 9 * 3 + 108 * 8, 2 * (36 * 9 * 3 + 108 * 8)]);
    expect(est.energyPJ.total).toBeGreaterThan(0);
    expect(est.topsPerWatt).not.toBeNull();
    expect(est.programming).not.toBeNull();
    expect(fact('operations per inference')).toBe(`${(2 * est.macs).toLocaleString('en-US')} ops (${est.macs.toLocaleString('en-US')} MACs) in 2 mapped layer(s)`);
    expect(fact('energy per inference')).toMatch(new RegExp(`^${formatPJ(est.energyPJ.total)} \\(ADC \\d+%, `));
    expect(fact('latency per inference')).toBe(formatNs(est.latencyNs.total));
    expect(fact('inferences per second')).toBe(Math.round(est.inferencesPerSec!).toLocaleString('en-US'));
    expect(fact('TOPS/W')).toBe(formatValue(est.topsPerWatt!, 3));
    expect(fact('GOPS')).toBe(formatValue(est.gops!, 3));
    expect(Number(fact('TOPS/W'))).toBeCloseTo(est.ops / est.energyPJ.total, 2);
    expect(fact('device tables')).toBe('yao2020');
    expect(fact('energy table')).toContain(`ADC conversion ${est.energyTable.adcPJ} pJ`);
    expect(fact('ADC sharing')).toBe('array: one ADC per array, its column (pair) currents converted one after another');
    const p = est.programming!;
    expect(fact('programming the mapping \\(write-verify, once\\)')).toMatch(new RegExp(`^${p.pulses.toLocaleString('en-US')} pulses, ${formatPJ(p.energyPJ)} \\(the energy of [\\d.]+ inferences\\), ${formatNs(p.latencyNs)} one pulse`));
    const ins = programmingEnergy(fixture.insituPulses, loadDeviceConfig('yao2020'));
    expect(fact('in-situ training update pulses')).toMatch(new RegExp(`^${fixture.insituPulses.toLocaleString('en-US')} pulses, ${formatPJ(ins.energyPJ)} .*, ${formatNs(ins.latencyNs)} one pulse at a time \\(from summary.json\\)$`));
    // one row per mapped layer and a total row, the energy columns in one unit
    const rows = [...sec.matchAll(/<tr class="energy-layer" data-layer="([^"]+)">(.*?)<\/tr>/g)];
    expect(rows.map((m) => m[1])).toEqual(est.layers.map((l) => l.layer));
    const unit = sec.match(/<th class="num">total \((pJ|nJ|uJ)\)<\/th>/)![1];
    const scale = { pJ: 1, nJ: 1e3, uJ: 1e6 }[unit]!;
    est.layers.forEach((l, i) => {
      const cells = [...rows[i][2].matchAll(/<td[^>]*>([^<]*)<\/td>/g)].map((m) => m[1]);
      expect(cells.slice(0, 5)).toEqual([l.layer, l.kind, l.macs.toLocaleString('en-US'), String(l.positions), String(l.readsPerInput)]);
      const comps = [l.energyPJ.cellReads, l.energyPJ.dac, l.energyPJ.adc, l.energyPJ.neurons, l.energyPJ.digitalAdds, l.energyPJ.total];
      expect(cells.slice(5, 11)).toEqual(comps.map((v) => formatValue(v / scale, 3)));
    });
    expect(sec).toMatch(/<tr class="energy-total"><td>total<\/td>/);
    // the two stacked charts: a bar per layer, its segments the components, its total the layer's
    const chart = sec.match(/<svg class="plot energy-chart"[\s\S]*?<\/svg>/)![0];
    const stacks = [...chart.matchAll(/<g class="stack" data-label="([^"]*)" data-total="([^"]*)">/g)];
    expect(stacks.map((m) => m[1])).toEqual(est.layers.map((l) => `${l.layer} (${l.kind})`));
    stacks.forEach((m, i) => expect(Number(m[2]) * scale).toBeCloseTo(est.layers[i].energyPJ.total, 6));
    expect(count(chart, /<rect class="segment"/g)).toBe(5 * est.layers.length);
    expect(chart).toContain(`>energy per inference (${unit})<`);
    const lat = sec.match(/<svg class="plot latency-chart"[\s\S]*?<\/svg>/)![0];
    expect(count(lat, /<g class="stack"/g)).toBe(est.layers.length);
    expect(count(lat, /<rect class="segment"/g)).toBe(4 * est.layers.length);
    expect(lat).toMatch(/>latency per inference \((ns|us|ms)\)</);
    expect(count(sec, /<svg\b/g)).toBe(2);
    expect(sec).not.toContain('<code>'); // not the generic listing
    expect(sec).not.toContain('class="note"');
  });

  test('self-contained: no network reference, no external script, style or font', () => {
    expect(externalRefs(html)).toEqual([]);
    expect(html).not.toMatch(/(src|href)\s*=\s*["']?\s*(https?:)?\/\//i);
    expect(html).not.toMatch(/<link\b|<script[^>]+src|@import|url\(\s*['"]?https?:/i);
  });

  test('well-formed (XML-ish) and a reasonable size', () => {
    expect(xmlProblems(html)).toEqual([]);
    expect(html.startsWith('<!DOCTYPE html>')).toBe(true);
    expect(Buffer.byteLength(html)).toBeLessThan(600 * 1024);
  });

  test('`report DIR`: writes DIR/report.html atomically and prints its path', async () => {
    const r = await run('report', fixture.dir);
    expect(r.code).toBe(0);
    const file = path.join(fixture.dir, 'report.html');
    expect(r.out).toBe(file + '\n');
    const noFooter = (s: string) => s.replace(/<footer>.*<\/footer>/, '');
    expect(noFooter(fs.readFileSync(file, 'utf8'))).toBe(noFooter(html));
    expect(fs.readdirSync(fixture.dir).filter((f) => f.endsWith('.tmp'))).toEqual([]);
    expect(r.err).toMatch(/report: 20 plots/);
  });

  test('--out and --json; --out must be an .html file (usage error, exit 2)', async () => {
    const out = path.join(newDir(), 'sub', 'page.html');
    const r = await run('report', fixture.dir, '--out', out, '--json');
    expect(r.code).toBe(0);
    const j = JSON.parse(r.out);
    expect(j.report).toBe(out);
    expect(j.plots).toBe(20);
    expect(fs.statSync(out).size).toBe(j.bytes);
    const bad = await run('report', fixture.dir, '--out', path.join(root, 'page.txt'));
    expect(bad.code).toBe(2);
    expect(bad.err).toMatch(/--out must name an \.html file/);
    const none = await run('report');
    expect(none.code).toBe(2);
  });

  (chromium || requireChromium ? test : test.skip)('headless Chromium renders every plot with a non-zero size, and decodes the PNG heatmaps', async () => {
    if (!chromium) throw new Error('chromium is required (MEMRISTOR_TFJS_REQUIRE_CHROMIUM=1) but not found');
    const dir = newDir();
    fs.mkdirSync(dir);
    const file = path.join(dir, 'report.html');
    fs.writeFileSync(file, html);
    const dom = await chromiumDom(chromium, file, path.join(dir, 'u'));
    const svgs = count(dom, /<svg\b/g);
    expect(svgs).toBe(20);
    // the page's self-check ran: every plot laid out with a non-zero size
    expect(dom).toMatch(/<body[^>]* data-plots="20"/);
    expect(dom).toMatch(/<body[^>]* data-plots-drawn="20"/);
    const sizes = [...dom.matchAll(/<svg [^>]*data-rendered="(\d+)x(\d+)"/g)].map((m) => [Number(m[1]), Number(m[2])]);
    expect(sizes.length).toBe(20);
    for (const [w, h] of sizes) {
      expect(w).toBeGreaterThan(100);
      expect(h).toBeGreaterThan(50);
    }
    // every PNG heatmap decoded, at one pixel per cell (the 108 x 16 array: 16 wide, 108 high)
    const decoded = [...dom.matchAll(/<image [^>]*data-decoded="([^"]+)"/g)].map((m) => m[1]);
    expect(decoded).toEqual(['16x108', '16x108', '16x108', '16x108']);
  }, 120000);
});

describe('missing and bad parts', () => {
  test('a run with only summary.json: notes instead of the plots, no crash', async () => {
    const dir = newDir();
    fs.mkdirSync(dir);
    fs.writeFileSync(path.join(dir, 'summary.json'), JSON.stringify({ format: 'memristor-tfjs-hybrid', version: 1, model: 'mcnn', device: 'yao2020', softwareAccuracy: 0.98, transferredAccuracy: 0.95, insituAccuracy: null }));
    const res = await quiet(() => reportCommand(dir));
    const page = fs.readFileSync(res.report, 'utf8');
    expect(res.plots).toBe(1);
    expect(page).toContain('No sweep to show');
    expect(page).toContain('memristor-tfjs report DIR --sweep SWEEPDIR');
    expect(page).toContain('no crossbar directory (crossbar/)');
    expect(page).toContain('no in-situ training log');
    expect(page).toContain('No energy estimate');
    expect(page).toContain('no in-situ training');
    expect(xmlProblems(page)).toEqual([]);
  });

  test.each([
    ['{"format": "memristor-tfjs-hybrid", ', /summary\.json: not valid JSON/],
    ['[1, 2]', /summary\.json: must hold a JSON object/],
    ['{"format": "memristor-tfjs-sweep", "version": 1}', /summary\.json: format: expected 'memristor-tfjs-hybrid', got "memristor-tfjs-sweep"/],
    ['{"format": "memristor-tfjs-hybrid", "version": 2}', /summary\.json: version: format version 2 is newer/],
    ['{"format": "memristor-tfjs-hybrid", "version": 1, "model": "m", "device": "d", "transferredAccuracy": 0.9}', /summary\.json: softwareAccuracy: missing/],
    ['{"format": "memristor-tfjs-hybrid", "version": 1, "model": "m", "device": "d", "softwareAccuracy": 97.9, "transferredAccuracy": 0.9}', /summary\.json: softwareAccuracy: must be in \[0, 1\], got 97\.9/],
    ['{"format": "memristor-tfjs-hybrid", "version": 1, "model": "m", "device": "d", "softwareAccuracy": 0.9, "transferredAccuracy": 0.9, "programming": {}}', /summary\.json: programming: must be an array/],
  ])('bad summary.json %s: FileFormatError naming the file', async (text, msg) => {
    const dir = newDir();
    fs.mkdirSync(dir);
    const file = path.join(dir, 'summary.json');
    fs.writeFileSync(file, text);
    const err = await quiet(() => reportCommand(dir)).catch((e) => e);
    expect(err).toBeInstanceOf(FileFormatError);
    expect(err.file).toBe(file);
    expect(err.message).toMatch(msg);
    expect(fs.existsSync(path.join(dir, 'report.html'))).toBe(false);
    const r = await run('report', dir);
    expect(r.code).toBe(1);
    expect(r.err).toContain(file);
    expect(r.err).not.toMatch(/^\s+at /m);
  });

  test('an energy object of another shape (an older file) is listed generically', async () => {
    const { dir } = await buildRun({ sweep: false, energy: OLD_ENERGY });
    const page = renderReport(loadReportInputs(dir));
    const sec = page.slice(page.indexOf('<section id="energy">'));
    expect(sec).toContain('is not the estimate this memristor-tfjs writes');
    expect(sec).toContain('<code>perInference.breakdownPJ.adc</code>');
    expect(sec).toContain('Sum of the components: 123.4 pJ.');
    expect(count(sec, /<svg class="plot energy-chart"/g)).toBe(1);
    expect(count(sec, /latency-chart/g)).toBe(0);
    expect(xmlProblems(page)).toEqual([]);
  });

  test('the known energy shape with bad values: a note for each, "-" in their place, no crash', async () => {
    const { dir, energy } = await buildRun({ sweep: false });
    const bad = JSON.parse(JSON.stringify(energy));
    bad.topsPerWatt = 'fast';
    bad.gops = undefined; // missing: computed from ops / latency
    bad.layers[0].energyPJ.adc = '12 pJ';
    bad.layers[1].latencyNs = null;
    bad.layers.push(7);
    bad.programming = { pulses: 'many' };
    const r = readEnergyEstimate(bad);
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.notes).toEqual([
      'energy.layers[0].energyPJ.adc is not a finite number ("12 pJ"): shown as -.',
      'energy.layers[2] is not an object: left out of the per-layer table.',
      'energy.topsPerWatt is not a finite number ("fast"): shown as -.',
      'energy.programming.pulses is not a finite number ("many"): shown as -.',
    ]);
    // topsPerWatt had a wrong type: computed from its definition; gops missing: likewise
    expect(r.view.topsPerWatt).toBeCloseTo(energy.topsPerWatt!, 9);
    expect(r.view.gops).toBeCloseTo(energy.gops!, 9);
    expect(r.view.layers.length).toBe(2);
    expect(r.view.layers[1].latencyNs.total).toBeNull();
    const summary = JSON.parse(fs.readFileSync(path.join(dir, 'summary.json'), 'utf8'));
    summary.energy = bad;
    summary.insituProgramming = { energyPJ: 'x', timeNs: 5 };
    fs.writeFileSync(path.join(dir, 'summary.json'), JSON.stringify(summary));
    const page = renderReport(loadReportInputs(dir));
    const sec = page.slice(page.indexOf('<section id="energy">'));
    expect(sec).toContain('energy.layers[0].energyPJ.adc is not a finite number');
    expect(sec).toContain('summary.json insituProgramming.energyPJ is not a finite number');
    expect(count(sec, /<tr class="energy-layer"/g)).toBe(2);
    expect(count(sec, /<svg class="plot (energy|latency)-chart"/g)).toBe(2);
    expect(xmlProblems(page)).toEqual([]);
    // without a numeric total or a list of layers: the generic listing, with a note saying why
    for (const broken of [{ ...energy, energyPJ: { ...energy.energyPJ, total: '1 nJ' } }, { ...energy, layers: {} }]) {
      expect(readEnergyEstimate(broken as unknown as Record<string, unknown>).ok).toBe(false);
      summary.energy = broken;
      fs.writeFileSync(path.join(dir, 'summary.json'), JSON.stringify(summary));
      const p = renderReport(loadReportInputs(dir));
      expect(p).toContain('is not the estimate this memristor-tfjs writes');
      expect(p).toContain('<code>energyPJ.cellReads</code>');
      expect(xmlProblems(p)).toEqual([]);
    }
  });

  test('no summary.json nor sweep.json, or no directory: the error names what is missing', async () => {
    const dir = newDir();
    fs.mkdirSync(dir);
    const err = await quiet(() => reportCommand(dir)).catch((e) => e);
    expect(err).toBeInstanceOf(FileFormatError);
    expect(err.message).toMatch(/holds nothing memristor-tfjs reports \(no summary\.json, sweep\.json, manifest\.json, metrics\.json nor \*\.fit\.json\): give a run folder/);
    const gone = await quiet(() => reportCommand(path.join(dir, 'nope'))).catch((e) => e);
    expect(gone).toBeInstanceOf(FileFormatError);
    expect(gone.message).toMatch(/nope: no such directory/);
  });

  test('a bad optional part (insitu.json, a crossbar CSV) is a note and a warning', async () => {
    const { dir } = await buildRun({ sweep: false, energy: false });
    fs.writeFileSync(path.join(dir, 'insitu', 'insitu.json'), JSON.stringify({ format: 'memristor-tfjs-insitu', version: 1, layer: 'd', curve: [{ samples: -1 }] }));
    fs.writeFileSync(path.join(dir, 'crossbar', 'c1_a0.target.csv'), 'garbage\n');
    const inputs = loadReportInputs(dir);
    expect(inputs.warnings.length).toBe(2);
    expect(inputs.warnings[0]).toMatch(/c1_a0\.target\.csv/);
    expect(inputs.warnings[1]).toMatch(/insitu\.json: curve\[0\]\.samples: must be in/);
    const page = renderReport(inputs);
    expect(page).toContain('the in-situ training log could not be read');
    expect(count(page, /<svg\b/g)).toBe(1); // the stage chart; the rest are notes
    expect(xmlProblems(page)).toEqual([]);
  });

  test('--sweep SWEEPDIR must be readable; a sweep directory alone gives a sweep page', async () => {
    const { dir } = await buildRun({ sweep: false });
    const err = await quiet(() => reportCommand(dir, { sweep: path.join(root, 'no-sweep') })).catch((e) => e);
    expect(err).toBeInstanceOf(FileFormatError);
    expect(err.message).toMatch(/no-sweep[/\\]sweep\.json: missing/);
    const sweepDir = newDir();
    writeSweep(sweepDir);
    const res = await quiet(() => reportCommand(dir, { sweep: sweepDir }));
    expect(res.plots).toBe(20);
    const alone = await quiet(() => reportCommand(sweepDir));
    expect(alone.report).toBe(path.join(sweepDir, 'report.html'));
    expect(alone.plots).toBe(2);
    const page = fs.readFileSync(alone.report, 'utf8');
    expect(page).toContain('<h1>Sweep: tiny on yao2020</h1>');
    expect(xmlProblems(page)).toEqual([]);
    await expect(quiet(() => reportCommand(sweepDir, { sweep: sweepDir }))).rejects.toThrow(UsageError);
  });

  test('a sweep over a named parameter (categories) without in-situ results', async () => {
    const dir = newDir();
    fs.mkdirSync(dir);
    const devices = ['yao2020', 'park2024', 'ideal'];
    const points = devices.map((d, i) => ({ params: { device: d }, before: { mean: 0.9 + 0.03 * i, std: 0.01, values: [] }, after: null }));
    fs.writeFileSync(path.join(dir, 'sweep.json'), JSON.stringify({ format: 'memristor-tfjs-sweep', version: 1, model: 'mcnn', trials: 1, insitu: false, vary: [{ name: 'device', values: devices }], points }));
    const res = await quiet(() => reportCommand(dir));
    const page = fs.readFileSync(res.report, 'utf8');
    expect(res.plots).toBe(1);
    const svg = page.match(/<svg class="plot sweep-chart"[\s\S]*?<\/svg>/)![0];
    for (const d of devices) expect(svg).toContain(`>${d}<`);
    expect(count(svg, /<g class="series"/g)).toBe(1); // after transfer only
    expect(count(svg, /class="error-bar"/g)).toBe(3);
    const bad = path.join(dir, 'sweep.json');
    fs.writeFileSync(bad, JSON.stringify({ format: 'memristor-tfjs-sweep', version: 1, vary: [], points: [{ params: {}, before: { std: 0.1 } }] }));
    await expect(quiet(() => reportCommand(dir))).rejects.toThrow(/sweep\.json: points\[0\]\.before\.mean: missing/);
  });
});


// ---------------------------------------------------------------------------------------------
// Any run folder: map, insitu, train and a fit record each get the sections that apply

describe('report of any run folder', () => {
  /** A `map` folder of the tiny model (saveCrossbar writes it as map does, model/ included). */
  async function mapFolder(): Promise<{ dir: string; net: CrossbarNetwork }> {
    const dir = newDir();
    const net = mapModel(tinyModel(), loadDeviceConfig('park2024'), { arrayRows: 32, arrayCols: 32, seed: 2 });
    await saveCrossbar(net, dir);
    return { dir, net };
  }

  test('a map folder: crossbar facts, the programming table of its manifest, conductances and the energy estimate', async () => {
    const { dir, net } = await mapFolder();
    const inputs = loadReportInputs(dir);
    expect(inputs.kind).toBe('crossbar');
    const res = await quiet(() => reportCommand(dir));
    expect(res.report).toBe(path.join(dir, 'report.html'));
    expect(res.warnings).toEqual([]);
    const page = fs.readFileSync(res.report, 'utf8');
    expect(page).toMatch(/<title>Crossbar: .* on park2024<\/title>/);
    for (const id of ['run', 'programming', 'conductance', 'energy']) expect(page).toContain(`<section id="${id}">`);
    expect(page).not.toContain('<section id="insitu">');
    expect(page).toContain('from manifest.json');
    expect(page).toContain('Conductances programmed');
    const arrays = net.layers.reduce((a, l) => a + l.arrays.length, 0);
    // a histogram per layer, two heatmaps per array, the two energy charts
    expect(count(page, /<svg\b/g)).toBe(net.layers.length + 2 * arrays + 2);
    expect(page).toContain('class="energy-layers"');
    expect(xmlProblems(page)).toEqual([]);
  });

  test('an insitu folder: the in-situ section, its tuned conductances, the change from the crossbar it started from', async () => {
    const { dir: start, net } = await mapFolder();
    const dir = newDir();
    const dense = net.layers.find((l) => l.name === 'd')!;
    const pulsesPerCell: Record<string, { rows: number; cols: number; data: number[] }> = {};
    for (const a of dense.arrays) {
      a.programmed[0] = Math.min(a.programmed[0] + 1, net.device.gMax);
      pulsesPerCell[a.id] = { rows: a.tile.rows, cols: a.tile.arrayCols, data: Array.from(a.programmed, (_, i) => (i === 0 ? 2 : 0)) };
    }
    await saveCrossbar(net, dir);
    const curve = [0, 100, 200].map((k, i) => ({ samples: k, trainAccuracy: 0.5 + 0.1 * i, loss: 1 - 0.2 * i, pulses: 2 * i, testAccuracy: i === 2 ? 0.8 : null }));
    fs.writeFileSync(
      path.join(dir, 'insitu.json'),
      JSON.stringify({ format: 'memristor-tfjs-insitu', version: 1, source: start, layer: 'd', rule: 'plain', samples: 200, epochs: 1, batchSize: 100, lr: 0.3, threshold: 0, curve, pulsesPerCell, before: { testAccuracy: 0.7 }, after: { testAccuracy: 0.8 } }),
    );
    const inputs = loadReportInputs(dir);
    expect(inputs.kind).toBe('insitu');
    expect(inputs.crossbar.ok).toBe(true); // the crossbar it started from
    const res = await quiet(() => reportCommand(dir));
    const page = fs.readFileSync(res.report, 'utf8');
    expect(page).toMatch(/<title>In-situ training: d on park2024<\/title>/);
    expect(page).toContain('before in-situ 70.00% → after 80.00%');
    for (const id of ['run', 'insitu', 'conductance', 'energy']) expect(page).toContain(`<section id="${id}">`);
    expect(page).toContain('Conductances after in-situ training');
    expect(count(page, /class="plot learning-curve"/g)).toBe(1);
    expect(count(page, /class="plot insitu-change-heatmap"/g)).toBe(dense.arrays.length);
    expect(xmlProblems(page)).toEqual([]);
    // the starting crossbar gone: a note in place of the change
    fs.rmSync(start, { recursive: true });
    const gone = renderReport(loadReportInputs(dir));
    expect(gone).toContain('is no longer there');
    expect(count(gone, /class="plot insitu-change-heatmap"/g)).toBe(0);
  });

  test('a train folder: facts, accuracy and loss per epoch, parameters by precision', async () => {
    const dir = newDir();
    fs.mkdirSync(dir);
    fs.writeFileSync(path.join(dir, 'model.json'), '{}');
    const parameters = {
      layers: [
        { name: 'B1', className: 'QuantConv2D', params: 144, binary: 144, multiLevel: 0, float: 0, weightBits: 1, memoryBytes: 18 },
        { name: 'FC', className: 'QuantDense', params: 1570, binary: 1560, multiLevel: 0, float: 10, weightBits: 1, memoryBytes: 235 },
      ],
      totalParams: 1714, binaryParams: 1704, multiLevelParams: 0, floatParams: 10, memoryBytes: 253, float32Bytes: 6856, compressionRatio: 27.1,
    };
    const history = [1, 2, 3].map((e) => ({ epoch: e, loss: 0.5 / e, trainAccuracy: 0.9 + 0.02 * e, validationAccuracy: 0.91 + 0.02 * e }));
    fs.writeFileSync(path.join(dir, 'metrics.json'), JSON.stringify({ model: 'bnn', dataset: 'mnist', backend: 'wasm', epochs: 3, batchSize: 64, learningRate: 0.01, optimizer: 'adam', schedule: 'cosine', trainSamples: 1000, testSamples: 200, trainSamplesPerSec: 900, testAccuracy: 0.955, testLoss: 0.2, history, parameters }));
    const inputs = loadReportInputs(dir);
    expect(inputs.kind).toBe('train');
    const page = renderReport(inputs);
    expect(page).toMatch(/<title>Training: bnn on mnist<\/title>/);
    expect(page).toContain('Test accuracy 95.50%');
    expect(count(page, /class="plot training-accuracy"/g)).toBe(1);
    expect(count(page, /class="plot training-loss"/g)).toBe(1);
    expect(page).toContain('1714 (binary 1704, multi-level 0, float 10)');
    expect(page).toMatch(/<td>FC<\/td><td>QuantDense<\/td><td class="num">1570<\/td><td class="num">1560<\/td>/);
    expect(xmlProblems(page)).toEqual([]);
    // a bad metrics.json names the file and the field
    fs.writeFileSync(path.join(dir, 'metrics.json'), JSON.stringify({ model: 'bnn', testAccuracy: 2 }));
    expect(() => loadReportInputs(dir)).toThrow(/metrics\.json: testAccuracy: must be in \[0, 1\], got 2/);
  });

  test('a fit record (or the folder holding it): measured beside fitted per polarity, DEVICE.fit.html beside it', async () => {
    const dir = newDir();
    fs.mkdirSync(dir);
    const curve = (sign: number) => {
      const pulses = Array.from({ length: 11 }, (_, k) => k);
      const measured = pulses.map((k) => (sign > 0 ? 10 + 8 * k : 90 - 8 * k));
      return { pulses, measured, fitted: measured.map((g) => g + 0.5), count: pulses.map(() => 4) };
    };
    const file = path.join(dir, 'my_device.fit.json');
    const record = { format: 'memristor-tfjs-device-fit', version: 1, data: '/lab/pulses.csv', device: path.join(dir, 'my_device.json'), model: 'soft-bounds', readings: 88, devices: 2, quality: { set: { r2: 0.91, rmsUS: 0.4, r2Lookup: 0.93, meanCurveRms: 0.01 }, reset: { r2: 0.88, rmsUS: 0.5, r2Lookup: 0.9, meanCurveRms: 0.02 } }, warnings: ['a warning'], curves: { set: curve(1), reset: curve(-1) } };
    fs.writeFileSync(file, JSON.stringify(record));
    for (const target of [file, dir]) {
      const inputs = loadReportInputs(target);
      expect(inputs.kind).toBe('fit');
      expect(inputs.defaultOut).toBe(path.join(dir, 'my_device.fit.html'));
      const page = renderReport(inputs);
      expect(page).toMatch(/<title>Device fit: soft-bounds to pulses\.csv<\/title>/);
      expect(count(page, /class="plot fit-curve"/g)).toBe(2);
      expect(page).toContain('SET trains: measured and fitted mean conductance');
      expect(page).toContain('steps R² 0.91 (a lookup table: 0.93), RMS 0.4 µS');
      expect(page).toContain('warning: a warning');
      expect(xmlProblems(page)).toEqual([]);
    }
    const res = await quiet(() => reportCommand(file));
    expect(res.report).toBe(path.join(dir, 'my_device.fit.html'));
    fs.writeFileSync(file, JSON.stringify({ ...record, curves: { set: { ...curve(1), fitted: [1] }, reset: curve(-1) } }));
    expect(() => loadReportInputs(file)).toThrow(/my_device\.fit\.json: curves\.set\.fitted: holds 1 values, pulses holds 11/);
    const err = await quiet(() => reportCommand(dir, { sweep: dir })).catch((e) => e);
    expect(err).toBeInstanceOf(UsageError);
    expect(err.message).toMatch(/--sweep goes with a hybrid run directory/);
  });
});
