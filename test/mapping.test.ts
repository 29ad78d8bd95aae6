import { tf } from '../src/tf';
import { initBackend } from '../src/backend';
import { SeededRandom } from '../src/random';
import { levelValues } from '../src/programming';
import {
  assembleTiles,
  checkCoverage,
  conductancesToWeights,
  constantSignDot,
  constantSignOffsets,
  convRowChannels,
  devicesPerWeight,
  extractTile,
  formatLayerReports,
  mapWeights,
  outputsPerArray,
  parseArraySize,
  programArrays,
  referenceLevel,
  rollConvKernel,
  rowTileKernel,
  tileLayer,
  toConstantSign,
  unrollConvKernel,
  weightRange,
  SCHEMES,
} from '../src/mapping';
import { device } from './helpers';

beforeAll(async () => {
  await initBackend('cpu');
});

function randomMatrix(n: number, seed: number, scale = 1): Float32Array {
  const r = new SeededRandom(seed);
  return new Float32Array(n).map(() => scale * (2 * r.next() - 1));
}


describe('mapping schemes', () => {
  test.each(SCHEMES.map((s) => [s]))('%s: weights -> conductances -> weights round trip (continuous levels)', (scheme) => {
    const dev = device('ideal', (c) => (c.gMin = 5));
    const rows = 13;
    const outs = 7;
    const W = randomMatrix(rows * outs, 1, 0.4);
    const m = mapWeights(W, rows, outs, dev, scheme);
    expect(m.wScale).toBeCloseTo(weightRange(W), 7);
    expect(m.targets.length).toBe(rows * outs * devicesPerWeight(scheme));
    for (const g of m.targets) {
      expect(g).toBeGreaterThanOrEqual(dev.gMin - 1e-6);
      expect(g).toBeLessThanOrEqual(dev.gMax + 1e-6);
    }
    const back = conductancesToWeights(m.targets, rows, outs, scheme, m.weightScale, m.gRef);
    for (let i = 0; i < W.length; i++) expect(Math.abs(back[i] - W[i])).toBeLessThan(1e-6 * m.wScale + 1e-7);
    // the largest weight sits at the top of the window
    const iMax = W.reduce((b, w, i) => (Math.abs(w) > Math.abs(W[b]) ? i : b), 0);
    if (scheme === 'differential') {
      const g = W[iMax] > 0 ? m.targets[2 * iMax] : m.targets[2 * iMax + 1];
      expect(g).toBeCloseTo(dev.gMax, 4);
    } else {
      expect(m.gRef).toBeCloseTo((dev.gMin + dev.gMax) / 2, 6);
      expect(m.targets[iMax]).toBeCloseTo(W[iMax] > 0 ? dev.gMax : dev.gMin, 4);
    }
  });

  test('differential follows MemTorch: G+ from max(w,0), G- from max(-w,0), formula of the window', () => {
    const dev = device('park2024', (c) => (c.levels = null));
    const W = new Float32Array([0.5, -0.25, 0, 1]);
    const m = mapWeights(W, 2, 2, dev, 'differential');
    const k = (dev.gMax - dev.gMin) / 1;
    expect(Array.from(m.targets)).toEqual(
      [dev.gMin + 0.5 * k, dev.gMin, dev.gMin, dev.gMin + 0.25 * k, dev.gMin, dev.gMin, dev.gMin + k, dev.gMin].map((v) => Math.fround(v)),
    );
    expect(m.weightScale).toBeCloseTo(1 / k, 10);
  });

  test('reference scheme: G = gMin + (w + wScale) / (2 wScale) (gMax - gMin) for continuous levels', () => {
    const dev = device('cbram', (c) => (c.levels = null));
    const W = new Float32Array([-2, -1, 0, 1, 2, 0.5]);
    const m = mapWeights(W, 3, 2, dev, 'reference');
    W.forEach((w, i) => expect(m.targets[i]).toBeCloseTo(dev.gMin + ((w + 2) / 4) * (dev.gMax - dev.gMin), 3));
  });

  test.each(SCHEMES.map((s) => [s]))('%s: targets on the device levels, round trip within half a level', (scheme) => {
    const dev = device('yao2020');
    const rows = 20;
    const outs = 9;
    const W = randomMatrix(rows * outs, 2, 0.3);
    const m = mapWeights(W, rows, outs, dev, scheme);
    const levels = Array.from(levelValues(dev)!);
    for (const g of m.targets) expect(levels.some((l) => Math.abs(l - g) < 1e-5)).toBe(true);
    const back = conductancesToWeights(m.targets, rows, outs, scheme, m.weightScale, m.gRef);
    const step = (dev.gMax - dev.gMin) / (dev.levels! - 1);
    // differential: one device of the pair is rounded (the other sits at gMin); reference: the one device
    const halfLevel = (step / 2) * m.weightScale;
    for (let i = 0; i < W.length; i++) expect(Math.abs(back[i] - W[i])).toBeLessThanOrEqual(halfLevel * 1.0001 + 1e-7);
  });

  test('a reference level with an even number of levels sits on a level and the span is symmetric around it', () => {
    const dev = device('park2024'); // 8 levels: no level at the exact middle
    const { gRef, span } = referenceLevel(dev);
    expect(Array.from(levelValues(dev)!).some((l) => Math.abs(l - gRef) < 1e-5)).toBe(true);
    expect(gRef - span).toBeGreaterThanOrEqual(dev.gMin - 1e-6);
    expect(gRef + span).toBeLessThanOrEqual(dev.gMax + 1e-6);
  });

  test('an all-zero layer keeps a positive scale', () => {
    const m = mapWeights(new Float32Array(6), 2, 3, device('ideal'), 'differential');
    expect(m.wScale).toBe(1);
    expect(Array.from(m.targets).every((g) => g === 0)).toBe(true);
  });
});

describe("Chen et al.'s constant-sign transform", () => {
  test('2 (w.b) - sum(w) with b = (x + 1) / 2 gives the same dot products as +-1 inputs', () => {
    const rows = 37;
    const outs = 11;
    const n = 25;
    const W = randomMatrix(rows * outs, 3);
    const r = new SeededRandom(4);
    const x = new Float32Array(n * rows).map(() => (r.next() < 0.5 ? -1 : 1));
    const y = constantSignDot(x, n, W, rows, outs);
    for (let s = 0; s < n; s++) {
      for (let j = 0; j < outs; j++) {
        let d = 0;
        for (let i = 0; i < rows; i++) d += x[s * rows + i] * W[i * outs + j];
        expect(y[s * outs + j]).toBeCloseTo(d, 4);
      }
    }
    // the voltages applied are 0/1 only: one sign at every port
    expect(new Set(Array.from(toConstantSign(x)))).toEqual(new Set([0, 1]));
    const off = constantSignOffsets(W, rows, outs);
    let s0 = 0;
    for (let i = 0; i < rows; i++) s0 += W[i * outs];
    expect(off[0]).toBeCloseTo(s0, 5);
  });
});

describe('tiling', () => {
  test.each(SCHEMES.map((s) => [s]))('%s: a 37x23 layer on 16x8 arrays reassembles exactly', (scheme) => {
    const rows = 37;
    const outs = 23;
    const tiles = tileLayer(rows, outs, 16, 8, scheme);
    const per = outputsPerArray(8, scheme);
    expect(per).toBe(scheme === 'differential' ? 4 : 7);
    const rowTiles = [16, 16, 5];
    const colTiles = scheme === 'differential' ? [4, 4, 4, 4, 4, 3] : [7, 7, 7, 2];
    expect(tiles.length).toBe(rowTiles.length * colTiles.length);
    expect(tiles.map((t) => t.rows)).toEqual(rowTiles.flatMap((r) => colTiles.map(() => r)));
    expect(tiles.map((t) => t.outs)).toEqual(rowTiles.flatMap(() => colTiles));
    for (const t of tiles) {
      expect(t.rows).toBeLessThanOrEqual(16);
      expect(t.arrayCols).toBeLessThanOrEqual(8);
      expect(t.arrayCols).toBe(t.cols + (scheme === 'reference' ? 1 : 0));
    }
    const dev = device('ideal');
    const W = randomMatrix(rows * outs, 5);
    const m = mapWeights(W, rows, outs, dev, scheme);
    const totalCols = outs * devicesPerWeight(scheme);
    const parts = tiles.map((tile) => ({ tile, data: extractTile(m.targets, totalCols, tile, m.gRef ?? undefined) }));
    if (scheme === 'reference') for (const p of parts) for (let r = 0; r < p.tile.rows; r++) expect(p.data[r * p.tile.arrayCols + p.tile.arrayCols - 1]).toBe(m.gRef);
    const G = assembleTiles(parts, rows, totalCols);
    expect(Array.from(G)).toEqual(Array.from(m.targets));
    expect(checkCoverage(tiles.map((t, i) => ({ ...t, label: `tile ${i}` })), rows, totalCols)).toBeNull();
    // a missing tile and an overlapping tile are found
    expect(checkCoverage(tiles.slice(1).map((t, i) => ({ ...t, label: `tile ${i}` })), rows, totalCols)).toMatch(/no array holds row 0, column 0/);
    expect(checkCoverage([...tiles, tiles[3]].map((t, i) => ({ ...t, label: `tile ${i}` })), rows, totalCols)).toMatch(/overlaps/);
  });

  test('arrays too narrow for a scheme are refused', () => {
    expect(() => tileLayer(4, 4, 8, 1, 'differential')).toThrow(/arrayCols/);
    expect(() => tileLayer(4, 4, 8, 1, 'reference')).toThrow(/arrayCols/);
    expect(() => tileLayer(4, 4, 0, 8, 'differential')).toThrow(/arrayRows/);
  });

  test('--array sizes parse as RxC', () => {
    expect(parseArraySize('128x16')).toEqual([128, 16]);
    expect(parseArraySize(' 32X32 ')).toEqual([32, 32]);
    expect(parseArraySize('128')).toBeNull();
    expect(parseArraySize('0x8')).toBeNull();
    expect(parseArraySize('axb')).toBeNull();
  });
});

describe('conv unrolling (fixed-kernel method)', () => {
  test('unroll/roll round trip and channel-major rows', () => {
    const shape = [3, 2, 4, 5];
    const K = randomMatrix(3 * 2 * 4 * 5, 6);
    const W = unrollConvKernel(K, shape);
    expect(Array.from(rollConvKernel(W, shape))).toEqual(Array.from(K));
    // row c*kh*kw + i*kw + j holds kernel[i][j][c][:]
    const [kh, kw, cin, cout] = shape;
    const i = 2;
    const j = 1;
    const c = 3;
    for (let o = 0; o < cout; o++) expect(W[(c * kh * kw + i * kw + j) * cout + o]).toBe(K[((i * kw + j) * cin + c) * cout + o]);
    expect(convRowChannels(0, 6, 3, 2)).toEqual({ c0: 0, c1: 1 });
    expect(convRowChannels(5, 3, 3, 2)).toEqual({ c0: 0, c1: 2 });
  });

  test('the convolutions of the row tiles over their input-channel slices add up to the layer convolution', () => {
    const shape = [3, 3, 5, 4];
    const K = randomMatrix(3 * 3 * 5 * 4, 7);
    const W = unrollConvKernel(K, shape);
    const x = tf.tensor4d(randomMatrix(2 * 6 * 6 * 5, 8), [2, 6, 6, 5]);
    const full = tf.conv2d(x, tf.tensor4d(K, shape as [number, number, number, number]), 1, 'same');
    const rows = 45;
    let sum = tf.zerosLike(full);
    for (let r0 = 0; r0 < rows; r0 += 16) {
      const n = Math.min(16, rows - r0);
      const t = rowTileKernel(W.subarray(r0 * 4, (r0 + n) * 4), shape, r0, n);
      const xs = tf.slice(x, [0, 0, 0, t.c0], [-1, -1, -1, t.c1 - t.c0]);
      sum = tf.add(sum, tf.conv2d(xs as tf.Tensor4D, tf.tensor4d(t.kernel, t.shape), 1, 'same'));
    }
    const a = full.dataSync();
    const b = sum.dataSync();
    for (let k = 0; k < a.length; k++) expect(b[k]).toBeCloseTo(a[k], 4);
  });
});

describe('programming the arrays', () => {
  const dev = device('yao2020');
  const targetsOf = (seed: number) => {
    const W = randomMatrix(40 * 12, seed, 0.5);
    const m = mapWeights(W, 40, 12, dev, 'differential');
    const tiles = tileLayer(40, 12, 16, 8, 'differential');
    return tiles.map((t) => extractTile(m.targets, 24, t));
  };

  test('seeded: the same rng gives the same programmed arrays', () => {
    const targets = targetsOf(9);
    const a = programArrays(targets, dev, new SeededRandom('s').fork('conv/r0'));
    const b = programArrays(targets, dev, new SeededRandom('s').fork('conv/r0'));
    a.programmed.forEach((p, i) => expect(Array.from(p)).toEqual(Array.from(b.programmed[i])));
    expect(a.total.cells).toBe(40 * 24);
    expect(a.reports.reduce((s, r) => s + r.cells, 0)).toBe(40 * 24);
  });

  test('replicas have independent device variation, faults and programming noise', () => {
    const d = device('yao2020', (c) => {
      c.faults = { stuckAtGMin: 0.05, stuckAtGMax: 0.05 };
    });
    const targets = targetsOf(10);
    const rng = new SeededRandom(3);
    const r0 = programArrays(targets, d, rng.fork('conv/r0'));
    const r1 = programArrays(targets, d, rng.fork('conv/r1'));
    const flat = (p: Float32Array[]) => p.flatMap((a) => Array.from(a));
    const a = flat(r0.programmed);
    const b = flat(r1.programmed);
    const differ = a.filter((v, i) => v !== b[i]).length;
    expect(differ).toBeGreaterThan(0.5 * a.length);
    // the errors against the same targets are uncorrelated between replicas
    const t = flat(targets);
    const ea = a.map((v, i) => v - t[i]);
    const eb = b.map((v, i) => v - t[i]);
    const mean = (v: number[]) => v.reduce((s, x) => s + x, 0) / v.length;
    const ma = mean(ea);
    const mb = mean(eb);
    const cov = mean(ea.map((x, i) => (x - ma) * (eb[i] - mb)));
    const sd = (v: number[], m: number) => Math.sqrt(mean(v.map((x) => (x - m) ** 2)));
    expect(Math.abs(cov / (sd(ea, ma) * sd(eb, mb)))).toBeLessThan(0.15);
    // stuck cells of both replicas at about the configured rate, at different places
    expect(r0.total.stuck / r0.total.cells).toBeGreaterThan(0.05);
    expect(r0.total.stuck / r0.total.cells).toBeLessThan(0.15);
    expect(r1.total.stuck).toBeGreaterThan(0);
  });

  test('the per-layer report table', () => {
    const targets = targetsOf(11);
    const p = programArrays(targets, dev, new SeededRandom(1));
    const text = formatLayerReports([{ ...p.total, layer: 'conv', kind: 'conv2d', rows: 40, outputs: 12, scheme: 'differential', arrays: targets.length, replicas: 1, seconds: 0.01 }]);
    expect(text).toMatch(/^layer\s+kind\s+matrix/);
    expect(text).toMatch(/conv\s+conv2d\s+40x12\s+differential\s+1\s+9\s+960/);
    expect(text).toMatch(/total/);
  });
});
