// `reproduce`: the studies of the seed papers (training/reproduce/) at tiny sizes (200 training
// images, 100 test images, 1 trial): the table's structure, finite numbers in their documented
// ranges (accuracies in [0, 1], better than chance after training; correlations in (0.5, 1]),
// the fixed-sign check exact, the files; and the clear errors of the command.
import * as fs from 'fs';
import * as path from 'path';
import { initBackend } from '../src/backend';
import { UsageError } from '../src/errors';
import {
  NOT_STATED,
  REPRODUCE_PAPERS,
  ReproResult,
  checkPaper,
  datasetFor,
  reproduceYao2020,
  reproducePark2024,
  reproduceChen2021,
  reproduceLammie2019,
  reproduceShi2023,
  writeReproduceFiles,
  tableCsv,
  pearson,
} from '../training/reproduce';
import { runCli, STACK, tempRoot } from './helpers';

const root = tempRoot('reproduce');
const tiny = { trainSamples: 200, testSamples: 100, epochs: 1 };

beforeAll(async () => {
  await initBackend('wasm');
});

/** Every result: the common fields, rows with a value or a reason, the published cells filled. */
function checkStructure(r: ReproResult, paper: string): void {
  expect(r.format).toBe('memristor-tfjs-reproduce');
  expect(r.paper).toBe(paper);
  expect(r.citation.length).toBeGreaterThan(20);
  expect(r.rows.length).toBeGreaterThan(1);
  for (const row of r.rows) {
    expect(typeof row.quantity).toBe('string');
    expect(row.publishedText.length).toBeGreaterThan(0);
    if (row.published === null) expect(row.publishedText).toBe(NOT_STATED);
    if (row.value !== null) expect(Number.isFinite(row.value)).toBe(true);
    if (row.kind === 'accuracy' && row.value !== null) {
      expect(row.value).toBeGreaterThanOrEqual(0);
      expect(row.value).toBeLessThanOrEqual(1);
    }
  }
  expect(r.seconds).toBeGreaterThan(0);
}

describe('the studies at tiny sizes', () => {
  test('yao2020: software / transfer / in situ / replicated, beside 97.99 / 95.07 / 96.19 / 95.83%', async () => {
    const r = await reproduceYao2020({ seed: 2, sizes: { ...tiny, insituSamples: 200, curveSamples: 50, replicas: 2 } });
    checkStructure(r, 'yao2020');
    expect(r.rows.map((x) => x.publishedText)).toEqual(['97.99%', '95.07%', '96.19%', NOT_STATED, '95.83%']);
    expect(r.rows[0].published).toBeCloseTo(0.9799, 8);
    // 200 images, one epoch: well above chance (0.1), every stage
    for (const row of r.rows) expect(row.value).toBeGreaterThan(0.2);
    expect(r.settings.replicas).toBe(2);
    const d = r.details as { single: { arrays: number }; replicated: { arrays: number } };
    expect(d.replicated.arrays).toBeGreaterThan(d.single.arrays);

    // the files: results.json as returned, table.csv one row per quantity, a self-contained page with a figure
    const dir = path.join(root, 'yao');
    fs.mkdirSync(dir);
    writeReproduceFiles(dir, r);
    expect(JSON.parse(fs.readFileSync(path.join(dir, 'results.json'), 'utf8'))).toEqual(JSON.parse(JSON.stringify(r)));
    const csv = fs.readFileSync(path.join(dir, 'table.csv'), 'utf8').trim().split('\n');
    expect(csv[0]).toBe('paper,quantity,kind,value,spread,published,published_text,source,note');
    expect(csv).toHaveLength(r.rows.length + 1);
    expect(tableCsv(r)).toBe(csv.join('\n') + '\n');
    const html = fs.readFileSync(path.join(dir, 'report.html'), 'utf8');
    expect(html).toMatch(/<svg class="plot/);
    expect(html).toContain('97.99%');
    expect(html).toContain(NOT_STATED);
    expect(html).not.toMatch(/<script[^>]+src=|<link[^>]+href=/);
  }, 60000);

  test('park2024: mean and spread at each tolerance; a tolerance outside [0, 1) refused', async () => {
    const r = await reproducePark2024({ seed: 1, sizes: { ...tiny, trials: 2, tolerances: [0.02, 0.2] } });
    checkStructure(r, 'park2024');
    expect(r.rows).toHaveLength(3);
    for (const row of r.rows.slice(1)) {
      expect(row.value).toBeGreaterThan(0.2);
      expect(row.spread).not.toBeNull();
      expect(row.spread!).toBeGreaterThanOrEqual(0);
    }
    expect(r.figures[0].series[0].points.map((p) => p.x)).toEqual([2, 20]);
    await expect(reproducePark2024({ sizes: { ...tiny, tolerances: [1.5] } })).rejects.toThrow(/tolerances/);
  }, 60000);

  test('chen2021: the fixed-sign sums equal the +-1 sums exactly; the ideal device gives the software accuracy', async () => {
    const r = await reproduceChen2021({ seed: 1, sizes: { ...tiny, checkSamples: 10 } });
    checkStructure(r, 'chen2021');
    const checks = (r.details as { fixedSignChecks: { layer: string; sums: number; maxAbsDifference: number; maxAbsSum: number }[] }).fixedSignChecks;
    expect(checks.map((c) => c.layer)).toEqual(['B2', 'FC']);
    for (const c of checks) {
      expect(c.sums).toBeGreaterThan(0);
      expect(c.maxAbsSum).toBeGreaterThan(1);
      expect(c.maxAbsDifference).toBe(0);
    }
    const [software, , ideal, check] = r.rows;
    expect(check.value).toBe(0);
    expect(software.value).toBeGreaterThan(0.2);
    expect(Math.abs(ideal.value! - software.value!)).toBeLessThanOrEqual(0.02);
  }, 60000);

  test('lammie2019: plain and variation-aware at each d2d level', async () => {
    const r = await reproduceLammie2019({ seed: 1, sizes: { ...tiny, trials: 1, sigmas: [0, 0.5] } });
    checkStructure(r, 'lammie2019');
    expect(r.rows).toHaveLength(2 + 2 * 2);
    expect(r.figures[0].series.map((s) => s.points.length)).toEqual([2, 2]);
    for (const row of r.rows) expect(row.value).toBeGreaterThan(0.15);
  }, 60000);

  test('shi2023: a correlation per mapped conv layer, on a synthetic CIFAR folder', async () => {
    const dir = path.join(root, 'cifar');
    fs.mkdirSync(dir);
    let s = 5;
    const rnd = () => (s = (Math.imul(s, 1103515245) + 12345) >>> 0) >>> 24;
    for (const [f, n] of [['data_batch_1.bin', 20], ['data_batch_2.bin', 2], ['data_batch_3.bin', 2], ['data_batch_4.bin', 2], ['data_batch_5.bin', 2], ['test_batch.bin', 10]] as const) {
      const b = Buffer.alloc(n * 3073);
      for (let i = 0; i < n; i++) {
        b[i * 3073] = i % 10;
        for (let j = 1; j < 3073; j++) b[i * 3073 + j] = rnd();
      }
      fs.writeFileSync(path.join(dir, f), b);
    }
    const r = await reproduceShi2023({ seed: 1, dataset: `cifar10:${dir}`, sizes: { trainSamples: 0, convLayers: 2, mapImages: 4, calibrationSamples: 4, accuracySamples: 0 } });
    checkStructure(r, 'shi2023');
    const corr = r.rows.filter((x) => x.kind === 'correlation');
    expect(corr.map((x) => x.quantity.split(' ')[0])).toEqual(['block1_conv1', 'block1_conv2']);
    for (const c of corr) {
      expect(c.value).toBeGreaterThan(0.5);
      expect(c.value).toBeLessThanOrEqual(1);
    }
    // the accuracy rows say why they are empty
    expect(r.rows.filter((x) => x.kind === 'accuracy').every((x) => x.value === null && /not measured/.test(x.note ?? ''))).toBe(true);
  }, 60000);
});

describe('pieces and errors', () => {
  test('pearson: 1 for a positive multiple, -1 for a negative one, NaN for a constant', () => {
    expect(pearson([1, 2, 3], [2, 4, 6])).toBeCloseTo(1, 12);
    expect(pearson([1, 2, 3], [3, 2, 1])).toBeCloseTo(-1, 12);
    expect(pearson([1, 1, 1], [1, 2, 3])).toBeNaN();
  });

  test('a bad paper name and a study on the wrong dataset are UsageErrors naming the choices', () => {
    expect(() => checkPaper('yao2021')).toThrow(UsageError);
    expect(() => checkPaper('yao2021')).toThrow(new RegExp(REPRODUCE_PAPERS.join(', ')));
    expect(() => datasetFor('shi2023', undefined)).toThrow(/--dataset cifar10:DIR/);
    expect(() => datasetFor('shi2023', 'mnist')).toThrow(/cifar10:DIR/);
    expect(() => datasetFor('yao2020', 'cifar10:/x')).toThrow(/mnist or idx:DIR/);
    expect(datasetFor('park2024', undefined)).toBe('mnist');
  });

  test('the command: a bad paper and shi2023 without --dataset exit 2 with one line, no stack, nothing written', async () => {
    const out = path.join(root, 'cli-out');
    const bad = await runCli('reproduce', 'nature2020', '--out', out, '--no-progress');
    expect(bad.code).toBe(2);
    expect(bad.err).toMatch(/unknown paper 'nature2020' \(choose yao2020, park2024, chen2021, lammie2019, shi2023\)/);
    expect(bad.err).not.toMatch(STACK);
    const shi = await runCli('reproduce', 'shi2023', '--quick', '--out', out, '--no-progress');
    expect(shi.code).toBe(2);
    expect(shi.err).toMatch(/needs CIFAR-10: give --dataset cifar10:DIR/);
    expect(shi.err).not.toMatch(STACK);
    expect(fs.existsSync(out)).toBe(false);
  });
});
