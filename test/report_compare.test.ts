// `report DIR --compare DIR2 ...`: one learning curve per in-situ run (test accuracy vs images,
// pulses and programming energy), a table of the runs, and every folder checked.
import * as fs from 'fs';
import * as path from 'path';
import { tf } from '../src/tf';
import { initBackend } from '../src/backend';
import { getPreset } from '../src/device/config';
import { SeededRandom } from '../src/random';
import type { Split } from '../src/data/datasets';
import { disposeCrossbar, mapModel, saveCrossbar } from '../src/crossbar';
import { FileFormatError, UsageError } from '../src/errors';
import { insituTrain } from '../training/insitu';
import { insituRecord, InsituRecord, saveInsituDir } from '../training/insitu_files';
import { loadInsituRun, loadReportInputs } from '../src/report/load';
import { renderReport } from '../src/report/html';
import { reportCommand } from '../src/commands/report';
import { chromiumDom, externalRefs, findChromium, REQUIRE_CHROMIUM, runCli as run, tempRoot, xmlProblems, quiet } from './helpers';

const root = tempRoot('report-compare');
let dirCount = 0;
const newDir = () => path.join(root, `d${dirCount++}`);

const count = (s: string, re: RegExp) => (s.match(re) ?? []).length;


// A 4-class task on 6x6 images: a class is a bright 3x3 quadrant block, plus seeded pixel noise.
const SHAPE: [number, number, number] = [6, 6, 1];
function makeSplit(n: number, seed: number): Split {
  const r = new SeededRandom(seed);
  const images = new Uint8Array(n * 36);
  const labels = new Uint8Array(n);
  for (let s = 0; s < n; s++) {
    const c = r.int(4);
    labels[s] = c;
    for (let y = 0; y < 6; y++) {
      for (let x = 0; x < 6; x++) {
        const inBlock = y >= (c < 2 ? 0 : 3) && y < (c < 2 ? 3 : 6) && x >= (c % 2 ? 3 : 0) && x < (c % 2 ? 6 : 3);
        images[s * 36 + y * 6 + x] = Math.round(255 * Math.min(1, Math.max(0, (inBlock ? 0.55 : 0.25) + 0.35 * (r.next() - 0.5))));
      }
    }
  }
  return { images, labels, count: n };
}

/** A real in-situ run of a tiny dense network (36 -> 4) on yao2020 arrays, written as `insitu` writes it. */
async function realInsitu(rule: 'plain' | 'manhattan'): Promise<{ dir: string; record: InsituRecord; pulsePJ: number }> {
  const m = tf.sequential();
  m.add(tf.layers.flatten({ name: 'flat', inputShape: SHAPE }));
  m.add(tf.layers.dense({ name: 'out', units: 4, kernelInitializer: tf.initializers.glorotUniform({ seed: 4 }) }));
  const net = mapModel(m, getPreset('yao2020')!, { arrayRows: 64, arrayCols: 16, seed: 7 });
  const test = makeSplit(200, 2);
  const r = insituTrain(net, makeSplit(600, 1), { rule, samples: 300, batchSize: 50, seed: 1, evalSplit: test, evalEvery: 100, imageShape: SHAPE, numClasses: 4 });
  const first = r.curve[0].testAccuracy ?? null;
  const last = r.curve[r.curve.length - 1].testAccuracy ?? null;
  const record = insituRecord(net, r, { source: null, before: first, after: last, testSamples: test.count });
  const dir = path.join(newDir(), `run-${rule}`);
  await saveInsituDir(net, record, dir);
  const pulsePJ = net.device.energy.programmingPulsePJ;
  disposeCrossbar(net);
  return { dir, record, pulsePJ };
}

/** A hybrid run folder by hand: summary.json, insitu/insitu.json with energyPJ on its points, insitu/learning_curve.csv; no crossbar. */
function hybridFolder(name: string, rule = 'plain'): string {
  const dir = path.join(newDir(), name);
  fs.mkdirSync(path.join(dir, 'insitu'), { recursive: true });
  const curve = [0, 100, 200, 300, 400].map((samples, i) => ({
    samples,
    trainAccuracy: i === 0 ? null : 0.6 + 0.05 * i,
    loss: i === 0 ? null : 1 - 0.1 * i,
    pulses: 1000 * i,
    testAccuracy: i % 2 === 0 ? 0.7 + 0.05 * i : null,
    energyPJ: 2500 * i, // 2.5 pJ a pulse
  }));
  const record = {
    format: 'memristor-tfjs-insitu', version: 1, source: null, layer: 'out', rule, samples: 400, epochs: 1, batchSize: 100, lr: 0.3, threshold: 0, seed: 3,
    updates: 4, imagesSeen: 400, totalPulses: 4000, setPulses: 2500, resetPulses: 1500, seconds: 1, curve, pulsesPerCell: {},
    before: { testAccuracy: 0.7 }, after: { testAccuracy: 0.9 }, programming: { energyPJ: 10000, timeNs: 200000 },
  };
  fs.writeFileSync(path.join(dir, 'insitu', 'insitu.json'), JSON.stringify(record));
  const csv = ['samples,train_accuracy,loss,pulses,test_accuracy,energy_pj', ...curve.map((p) => [p.samples, p.trainAccuracy ?? '', p.loss ?? '', p.pulses, p.testAccuracy ?? '', p.energyPJ].join(','))];
  fs.writeFileSync(path.join(dir, 'insitu', 'learning_curve.csv'), csv.join('\n') + '\n');
  fs.writeFileSync(
    path.join(dir, 'summary.json'),
    JSON.stringify({ format: 'memristor-tfjs-hybrid', version: 1, model: 'tiny', dataset: 'mnist', device: 'yao2020', seed: 3, softwareAccuracy: 0.95, transferredAccuracy: 0.7, insituAccuracy: 0.9, insituSamples: 400, insituRule: rule, lostPoints: 25, recoveredFraction: 0.8 }),
  );
  return dir;
}

/** The series of a chart (by its class): label and the points of its line (M + L commands) and its dots. */
function seriesOf(html: string, cls: string): { label: string; points: number; dots: number; xs: number[] }[] {
  const svg = html.match(new RegExp(`<svg class="plot ${cls}"[\\s\\S]*?</svg>`));
  expect(svg).not.toBeNull();
  return [...svg![0].matchAll(/<g class="series" data-label="([^"]*)">([\s\S]*?)<\/g>/g)].map((m) => {
    const d = m[2].match(/<path d="([^"]*)"/)?.[1] ?? '';
    return { label: m[1], points: count(d, /[ML]/g), dots: count(m[2], /<circle /g), xs: [...d.matchAll(/[ML]([\d.-]+) /g)].map((x) => Number(x[1])) };
  });
}

const CHARTS = ['curves-images', 'curves-pulses', 'curves-energy'];

let plain: Awaited<ReturnType<typeof realInsitu>>;
let manhattan: Awaited<ReturnType<typeof realInsitu>>;

beforeAll(async () => {
  await initBackend('wasm');
  plain = await realInsitu('plain');
  manhattan = await realInsitu('manhattan');
}, 120000);

describe('report --compare', () => {
  test('the real runs: 7 curve points (0 and 6 updates), 4 with a test accuracy, pulses that grow', () => {
    for (const { record } of [plain, manhattan]) {
      expect(record.curve.length).toBe(7);
      expect(record.curve.filter((p) => p.testAccuracy != null).map((p) => p.samples)).toEqual([0, 100, 200, 300]);
      expect(record.totalPulses).toBeGreaterThan(0);
      expect(record.curve[6].pulses).toBe(record.totalPulses);
    }
    expect(fs.existsSync(path.join(plain.dir, 'learning_curve.csv'))).toBe(true);
  });

  test("an insitu folder and its energies: the curve's energyPJ, or pulses x the device's programmingPulsePJ where the points have none", () => {
    const run0 = loadInsituRun(plain.dir);
    expect(run0.kind).toBe('insitu');
    expect(run0.rule).toBe('plain');
    expect(run0.curve.map((p) => p.samples)).toEqual(plain.record.curve.map((p) => p.samples));
    const hasEnergy = plain.record.curve.some((p) => (p as { energyPJ?: number }).energyPJ !== undefined);
    run0.curve.forEach((p, i) => {
      const want = hasEnergy ? (plain.record.curve[i] as { energyPJ?: number }).energyPJ! : plain.record.curve[i].pulses * plain.pulsePJ;
      expect(p.energyPJ).toBeCloseTo(want, 6);
    });
    expect(run0.energyPJ).toBeCloseTo(plain.record.programming.energyPJ, 6);
    expect(run0.pulses).toBe(plain.record.totalPulses);
    expect(run0.images).toBe(300);
    expect(run0.updates).toBe(6);
    // a hybrid folder: energyPJ of its points, the summary's accuracies
    const h = loadInsituRun(hybridFolder('hyb'));
    expect(h.kind).toBe('hybrid');
    expect(h.curve.map((p) => p.energyPJ)).toEqual([0, 2500, 5000, 7500, 10000]);
    expect(h.energyFrom).toBe("the curve's energyPJ (insitu.json)");
    expect([h.software, h.transferred, h.before, h.after, h.recoveredFraction]).toEqual([0.95, 0.7, 0.7, 0.9, 0.8]);
  });

  test('three runs: one line per run in each chart, with the right points and labels, and the table', async () => {
    const hyb = hybridFolder('hyb-b');
    const res = await quiet(() => reportCommand(plain.dir, { compare: [manhattan.dir, hyb], out: path.join(newDir(), 'compare.html') }));
    const html = fs.readFileSync(res.report, 'utf8');
    // two runs share the rule 'plain': their folder names tell them apart
    const labels = ['plain (run-plain)', 'manhattan', 'plain (hyb-b)'];
    expect(res.runs.map((r) => r.label)).toEqual(labels);
    expect(res.runs.map((r) => r.points)).toEqual([4, 4, 3]);
    for (const cls of CHARTS) {
      const s = seriesOf(html, cls);
      expect([cls, s.map((x) => x.label)]).toEqual([cls, labels]);
      expect([cls, s.map((x) => x.points)]).toEqual([cls, [4, 4, 3]]);
      expect([cls, s.map((x) => x.dots)]).toEqual([cls, [4, 4, 3]]);
    }
    // legends name every run
    for (const l of labels) expect(count(html, new RegExp(`>${l.replace(/[()]/g, '\\$&')}</text>`, 'g'))).toBeGreaterThanOrEqual(3);
    // the section comes first, and the axes say what they show
    expect(html.indexOf('<section id="curves">')).toBeLessThan(html.indexOf('<section id="run">'));
    expect(html).toContain('In-situ learning curves');
    expect(html).toMatch(/programming energy \((pJ|nJ|uJ)/);
    // the x positions along the pulses axis: the manhattan rule gives fewer pulses than plain
    const px = seriesOf(html, 'curves-pulses');
    expect(Math.max(...px[1].xs)).toBeLessThan(Math.max(...px[0].xs));
    expect(manhattan.record.totalPulses).toBeLessThan(plain.record.totalPulses);
    // the table: one row per run, with its totals
    const rows = [...html.match(/<table class="curves-table">[\s\S]*?<\/table>/)![0].matchAll(/<tr><td>([^<]*)<\/td>/g)].map((m) => m[1]);
    expect(rows).toEqual(labels);
    const table = html.match(/<table class="curves-table">[\s\S]*?<\/table>/)![0];
    expect(table).toContain('80% (software 95.00%, after transfer 70.00%)');
    expect(table).toContain('10 nJ'); // the hybrid run's programming.energyPJ
    expect(table).toContain(`>${plain.record.totalPulses}<`);
    expect(xmlProblems(html)).toEqual([]);
    expect(externalRefs(html)).toEqual([]);
    // the CLI: the same, exit 0, --json tells the runs
    const r = await run('report', plain.dir, '--compare', manhattan.dir, hyb, '--out', path.join(newDir(), 'c.html'), '--json');
    expect(r.code).toBe(0);
    expect(JSON.parse(r.out).runs.map((x: { label: string }) => x.label)).toEqual(labels);
    expect(r.err).toMatch(/3 in-situ runs compared \(plain \(run-plain\), manhattan, plain \(hyb-b\)\)/);
  });

  test('a single run without --compare: the same three charts with one line', async () => {
    const inputs = loadReportInputs(manhattan.dir);
    expect(inputs.warnings).toEqual([]);
    const html = renderReport(inputs);
    for (const cls of CHARTS) {
      const s = seriesOf(html, cls);
      expect(s.map((x) => [x.label, x.points])).toEqual([['manhattan', 4]]);
    }
    // after the in-situ section
    expect(html.indexOf('<section id="curves">')).toBeGreaterThan(html.indexOf('<section id="insitu">'));
    // a hybrid run folder alone
    const h = renderReport(loadReportInputs(hybridFolder('alone')));
    expect(seriesOf(h, 'curves-energy').map((x) => [x.label, x.points])).toEqual([['plain', 3]]);
    // a folder without in-situ training has no such section
    const map = newDir();
    const m = tf.sequential({ layers: [tf.layers.dense({ inputShape: [4], units: 2 })] });
    const net = mapModel(m, getPreset('yao2020')!, { seed: 1 });
    await saveCrossbar(net, map);
    disposeCrossbar(net);
    expect(renderReport(loadReportInputs(map))).not.toContain('<section id="curves">');
  });

  test('every --compare folder is checked: the error names the file and what is wrong, exit 1', async () => {
    const expectError = async (dir: string, file: RegExp, what: RegExp) => {
      const e = await quiet(() => reportCommand(plain.dir, { compare: [dir], out: path.join(newDir(), 'x.html') })).catch((x) => x);
      expect(e).toBeInstanceOf(FileFormatError);
      expect((e as FileFormatError).file).toMatch(file);
      expect((e as FileFormatError).problem).toMatch(what);
      const r = await run('report', plain.dir, '--compare', dir, '--out', path.join(newDir(), 'x.html'));
      expect(r.code).toBe(1);
      expect(r.err).toContain((e as Error).message);
    };
    // not there; an empty folder; a map folder (a crossbar, no in-situ training)
    await expectError(path.join(root, 'nowhere'), /nowhere$/, /no such directory/);
    const empty = newDir();
    fs.mkdirSync(empty);
    await expectError(empty, new RegExp(`${path.basename(empty)}$`), /holds neither summary\.json nor insitu\.json: not an in-situ run/);
    const map = newDir();
    const m = tf.sequential({ layers: [tf.layers.dense({ inputShape: [4], units: 2 })] });
    const net = mapModel(m, getPreset('yao2020')!, { seed: 1 });
    await saveCrossbar(net, map);
    disposeCrossbar(net);
    await expectError(map, new RegExp(`${path.basename(map)}$`), /not an in-situ run/);
    // a hybrid run that stopped before in-situ training
    const stopped = hybridFolder('stopped');
    fs.rmSync(path.join(stopped, 'insitu'), { recursive: true });
    await expectError(stopped, /insitu[/\\]insitu\.json$/, /missing: this hybrid run has no in-situ training log/);
    // a bad insitu.json: another format; a curve that goes back
    const bad = hybridFolder('bad');
    const file = path.join(bad, 'insitu', 'insitu.json');
    const rec = JSON.parse(fs.readFileSync(file, 'utf8'));
    fs.writeFileSync(file, JSON.stringify({ ...rec, format: 'memristor-tfjs-sweep' }));
    await expectError(bad, /insitu\.json$/, /format: expected 'memristor-tfjs-insitu'/);
    rec.curve[3].pulses = 10;
    fs.writeFileSync(file, JSON.stringify(rec));
    await expectError(bad, /insitu\.json$/, /curve\[3\]\.pulses: pulses went down \(2000 -> 10\)/);
    // learning_curve.csv that does not agree with insitu.json, or is not a curve
    const csvRun = hybridFolder('csv');
    const csv = path.join(csvRun, 'insitu', 'learning_curve.csv');
    const lines = fs.readFileSync(csv, 'utf8').trim().split('\n');
    fs.writeFileSync(csv, lines.slice(0, 4).join('\n') + '\n');
    await expectError(csvRun, /learning_curve\.csv$/, /holds 3 rows, the curve in insitu\.json 5 points/);
    fs.writeFileSync(csv, ['samples,loss', ...lines.slice(1)].join('\n') + '\n');
    await expectError(csvRun, /learning_curve\.csv$/, /line 1: no 'pulses' column/);
    fs.writeFileSync(csv, [lines[0], lines[1], lines[2].replace(/^100,/, 'abc,'), ...lines.slice(3)].join('\n') + '\n');
    await expectError(csvRun, /learning_curve\.csv$/, /line 3, column samples: not a number/);
    // DIR itself must be an in-situ run when it is compared
    const e = await quiet(() => reportCommand(map, { compare: [plain.dir] })).catch((x) => x);
    expect(e).toBeInstanceOf(FileFormatError);
    expect(e.message).toMatch(/not an in-situ run/);
    // a folder given twice is a usage error (exit 2)
    await expect(quiet(() => reportCommand(plain.dir, { compare: [manhattan.dir, plain.dir] }))).rejects.toThrow(UsageError);
    const twice = await run('report', plain.dir, '--compare', manhattan.dir, manhattan.dir);
    expect(twice.code).toBe(2);
    expect(twice.err).toMatch(/given twice/);
  });

  const chromium = findChromium();
  (chromium || REQUIRE_CHROMIUM ? test : test.skip)('headless Chromium renders the compare page: every plot drawn', async () => {
    if (!chromium) throw new Error('chromium is required (MEMRISTOR_TFJS_REQUIRE_CHROMIUM=1) but not found');
    const dir = newDir();
    const res = await quiet(() => reportCommand(plain.dir, { compare: [manhattan.dir, hybridFolder('hyb-c')], out: path.join(dir, 'compare.html') }));
    const dom = await chromiumDom(chromium, res.report, path.join(dir, 'u'));
    expect(dom).toMatch(new RegExp(`<body[^>]* data-plots="${res.plots}"`));
    expect(dom).toMatch(new RegExp(`<body[^>]* data-plots-drawn="${res.plots}"`));
    for (const cls of CHARTS) {
      const m = dom.match(new RegExp(`<svg class="plot ${cls}"[^>]*data-rendered="(\\d+)x(\\d+)"`));
      expect(m).not.toBeNull();
      expect(Number(m![1])).toBeGreaterThan(100);
      expect(Number(m![2])).toBeGreaterThan(50);
    }
  }, 120000);
});
