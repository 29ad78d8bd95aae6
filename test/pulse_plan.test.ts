// Pulse plans (write_verify_pulses.csv of map, pulses.csv of insitu, their replay) and measured
// read-back (evaluate/insitu --measured).
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { initBackend } from '../src/backend';
import { getPreset } from '../src/device/config';
import { SeededRandom } from '../src/random';
import { sampleDeviceInstances, writeVerify } from '../src/programming';
import { readPulsesCsv, pulsesCsv, PulseLogBuilder, writeVerifyPulsesCsv, PULSES_HEADER } from '../src/programming/pulse_plan';
import { loadCrossbar, disposeCrossbar, deviceInstancesOf } from '../src/crossbar/network';
import { STUCK_NONE } from '../src/programming/instances';
import { applyMeasured } from '../src/crossbar/measured';
import { FileFormatError } from '../src/errors';
import { replayInsituPulses } from '../training/insitu';
import { readInsituRecord } from '../training/insitu_files';
import { runCli, errorOf } from './helpers';

jest.setTimeout(120_000);
const root = fs.mkdtempSync(path.join(os.tmpdir(), 'mtfjs-plan-'));
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));
const cli = (...args: string[]) => runCli(...args, '--backend', 'wasm');
const model = path.join(root, 'm');
const xdir = path.join(root, 'x');
const tuned = path.join(root, 'x2');

beforeAll(async () => {
  await initBackend('wasm');
  expect((await cli('train', '--model', 'mcnn', '--train-samples', '400', '--test-samples', '100', '--seed', '5', '--no-progress', '--out', model)).code).toBe(0);
  expect((await cli('map', '--model', model, '--device', 'yao2020', '--array', '128x16', '--seed', '5', '--out', xdir)).code).toBe(0);
  const r = await cli('insitu', '--crossbar', xdir, '--samples', '300', '--test-samples', '100', '--eval-samples', '50', '--seed', '9', '--no-progress', '--out', tuned);
  expect(r.code).toBe(0);
});

describe('write-verify pulses', () => {
  test('SET + RESET per cell add up to the pulses write-verify counts', () => {
    const cfg = getPreset('yao2020')!;
    const rng = new SeededRandom(3);
    const inst = sampleDeviceInstances(cfg, 400, rng.fork('cells'));
    const targets = Float32Array.from({ length: 400 }, (_, i) => cfg.gMin + ((i % 97) / 96) * (cfg.gMax - cfg.gMin));
    const r = writeVerify(targets, cfg, inst, rng.fork('verify'));
    for (let i = 0; i < 400; i++) expect(r.setPulses[i] + r.resetPulses[i]).toBe(r.pulses[i]);
    expect(r.setPulses.some((p) => p > 0) && r.resetPulses.some((p) => p > 0)).toBe(true);
    const csv = writeVerifyPulsesCsv([{ id: 'L/a0', cols: 20, pulses: { set: r.setPulses, reset: r.resetPulses } }]).trim().split('\n');
    expect(csv[0]).toBe('array,row,col,set,reset');
    const pulsed = Array.from(r.pulses).filter((p) => p > 0).length;
    expect(csv).toHaveLength(1 + pulsed);
    const i = Array.from(r.pulses).findIndex((p) => p > 0);
    expect(csv[1]).toBe(`L/a0,${Math.floor(i / 20)},${i % 20},${r.setPulses[i]},${r.resetPulses[i]}`);
  });

  test('map writes write_verify_pulses.csv whose totals are the programming report\'s', () => {
    const lines = fs.readFileSync(path.join(xdir, 'write_verify_pulses.csv'), 'utf8').trim().split('\n').slice(1);
    const manifest = JSON.parse(fs.readFileSync(path.join(xdir, 'manifest.json'), 'utf8'));
    for (const layer of manifest.layers) {
      const mine = lines.filter((l) => l.startsWith(`${layer.name}/`));
      const total = mine.reduce((n, l) => n + Number(l.split(',')[3]) + Number(l.split(',')[4]), 0);
      expect(total).toBe(Math.round(layer.programming.meanPulses * layer.programming.cells));
    }
  });
});

describe('pulses.csv of insitu', () => {
  test('the header, and the totals of insitu.json', () => {
    const text = fs.readFileSync(path.join(tuned, 'pulses.csv'), 'utf8');
    expect(text.split('\n')[0]).toBe(PULSES_HEADER);
    const log = readPulsesCsv(path.join(tuned, 'pulses.csv'));
    const rec = readInsituRecord(tuned);
    let set = 0;
    let reset = 0;
    for (let i = 0; i < log.length; i++) (log.count[i] > 0 ? (set += log.count[i]) : (reset -= log.count[i]));
    expect(set + reset).toBeGreaterThan(0);
    expect(set).toBe(rec.setPulses);
    expect(reset).toBe(rec.resetPulses);
  });

  test('replaying it from the programmed state gives the tuned conductances, to the bit', async () => {
    const before = await loadCrossbar(xdir);
    const after = await loadCrossbar(tuned);
    try {
      const rec = readInsituRecord(tuned);
      const fc = before.layers[before.layers.length - 1];
      const differs = fc.arrays.some((a, k) => a.programmed.some((v, i) => v !== after.layers[after.layers.length - 1].arrays[k].programmed[i]));
      expect(differs).toBe(true); // in-situ training moved the cells
      replayInsituPulses(before, readPulsesCsv(path.join(tuned, 'pulses.csv')), rec.seed, 'pulses.csv');
      fc.arrays.forEach((a, k) => expect(Array.from(a.programmed)).toEqual(Array.from(after.layers[after.layers.length - 1].arrays[k].programmed)));
      // another seed draws other pulse noise: not the tuned state (yao2020 has cycle-to-cycle noise)
      const again = await loadCrossbar(xdir);
      replayInsituPulses(again, readPulsesCsv(path.join(tuned, 'pulses.csv')), rec.seed + 1);
      const same = again.layers[again.layers.length - 1].arrays.every((a, k) => a.programmed.every((v, i) => v === after.layers[after.layers.length - 1].arrays[k].programmed[i]));
      expect(same).toBe(false);
      disposeCrossbar(again);
    } finally {
      disposeCrossbar(before);
      disposeCrossbar(after);
    }
  });

  test('a plan naming a cell or an array the layer does not have is refused', async () => {
    const net = await loadCrossbar(xdir);
    try {
      const b = new PulseLogBuilder(['FC/a0', 'nope']);
      b.push(1, 0, 0, 0, 1);
      expect(() => replayInsituPulses(net, b.build(), 1, 'p.csv')).toThrow(/^p.csv: array 'nope' is not an array of layer FC/);
      const c = new PulseLogBuilder(['FC/a0']);
      c.push(0, 500, 0, 0, 1);
      expect(() => replayInsituPulses(net, c.build(), 1, 'p.csv')).toThrow(/^p.csv: entry 1: cell \(500, 0\) is outside array 'FC\/a0' \(128x16\)/);
    } finally {
      disposeCrossbar(net);
    }
  });

  test('pulsesCsv and readPulsesCsv round trip; bad lines are named', () => {
    const b = new PulseLogBuilder(['A/a0', 'A/a1']);
    for (let i = 0; i < 3000; i++) b.push(i % 2, i % 7, i % 5, Math.floor(i / 100), i % 3 === 0 ? -(1 + (i % 4)) : 1 + (i % 4));
    const log = b.build();
    const f = path.join(root, 'p.csv');
    fs.writeFileSync(f, pulsesCsv(log));
    const back = readPulsesCsv(f);
    expect(back.arrayIds).toEqual(['A/a0', 'A/a1']);
    for (const k of ['array', 'row', 'col', 'batch', 'count'] as const) expect(Array.from(back[k])).toEqual(Array.from(log[k]));
    const cases: [string, string][] = [
      ['array,row,col\n', "line 1: the header must be 'array,row,col,batch,polarity,count', got 'array,row,col'"],
      [`${PULSES_HEADER}\nA,1,2,0,set\n`, 'line 2: 5 fields, expected 6 (array,row,col,batch,polarity,count)'],
      [`${PULSES_HEADER}\nA,1,x,0,set,1\n`, "line 2, column 3 (col): must be an integer >= 0, got 'x'"],
      [`${PULSES_HEADER}\nA,1,2,0,up,1\n`, "line 2, column 5 (polarity): must be set or reset, got 'up'"],
      [`${PULSES_HEADER}\nA,1,2,0,set,0\n`, "line 2, column 6 (count): must be an integer >= 1, got '0'"],
      [`${PULSES_HEADER}\nA,1,2,3,set,1\nA,1,2,2,set,1\n`, 'line 3, column 4 (batch): batch 2 after batch 3; lines must be in the order the pulses were applied'],
      [`${PULSES_HEADER}\nA,1,2,3,set,1`, 'the file ends without a newline, so its last line may be cut short (a truncated file?)'],
    ];
    for (const [text, msg] of cases) {
      fs.writeFileSync(f, text);
      const e = errorOf(() => readPulsesCsv(f));
      expect(e).toBeInstanceOf(FileFormatError);
      expect(e.message).toBe(`${f}: ${msg}`);
    }
  });
});

describe('measured read-back', () => {
  function copyProgrammed(to: string): string[] {
    fs.mkdirSync(to, { recursive: true });
    const names = fs.readdirSync(xdir).filter((f) => f.endsWith('.programmed.csv'));
    for (const f of names) fs.copyFileSync(path.join(xdir, f), path.join(to, f));
    return names;
  }

  test('the programmed CSVs read back give the programmed state; a changed cell changes it; stuck-looking cells are counted', async () => {
    const meas = path.join(root, 'meas');
    copyProgrammed(meas);
    const net = await loadCrossbar(xdir);
    try {
      const before = net.layers.map((l) => l.arrays.map((a) => Array.from(a.programmed)));
      const r = applyMeasured(net, meas);
      // yao2020 has 1% stuck cells: every cell the read-back flags is one of them
      expect(r.likelyStuck).toBeGreaterThan(0);
      for (const m of net.layers) {
        for (let rep = 0; rep < m.replicas; rep++) {
          const { instances, arrays } = deviceInstancesOf(net, m, rep);
          for (const { array, offset } of arrays) {
            const rep2 = r.arrays.find((x) => x.id === array.id)!;
            for (const [row, col] of rep2.examples) expect(instances.stuck[offset + row * array.tile.arrayCols + col]).not.toBe(STUCK_NONE);
          }
        }
      }
      expect(r.cells).toBe(net.layers.reduce((n, l) => n + l.arrays.reduce((m, a) => m + a.programmed.length, 0), 0));
      net.layers.forEach((l, i) => l.arrays.forEach((a, k) => expect(Array.from(a.programmed)).toEqual(before[i][k])));
      // a cell whose target is high reads at gMin: likely stuck
      const a = net.layers[0].arrays[0];
      const cfg = net.device;
      const { instances } = deviceInstancesOf(net, net.layers[0], 0);
      const i = Array.from(a.target).findIndex((t, j) => t > cfg.gMin + 0.5 * (cfg.gMax - cfg.gMin) && instances.stuck[j] === STUCK_NONE);
      expect(i).toBeGreaterThanOrEqual(0);
      const file = path.join(meas, a.files.programmed);
      const lines = fs.readFileSync(file, 'utf8').split('\n');
      const dataLines = lines.map((l, k) => [l, k] as const).filter(([l]) => l !== '' && !l.startsWith('#'));
      const cols = a.tile.arrayCols;
      const [line, k] = dataLines[Math.floor(i / cols)];
      const cells = line.split(',');
      cells[i % cols] = String(cfg.gMin);
      lines[k] = cells.join(',');
      fs.writeFileSync(file, lines.join('\n'));
      const r2 = applyMeasured(net, meas);
      expect(r2.likelyStuck).toBe(r.likelyStuck + 1);
      expect(r2.arrays[0].likelyStuckAtGMin).toBe(r.arrays[0].likelyStuckAtGMin + 1);
      expect(r2.arrays[0].examples.map((e) => e.slice(0, 3))).toContainEqual([Math.floor(i / cols), i % cols, cfg.gMin]);
      expect(a.programmed[i]).toBe(cfg.gMin);
    } finally {
      disposeCrossbar(net);
    }
  });

  test('a missing array, another shape, a negative value: the CSV named, the network untouched', async () => {
    const net = await loadCrossbar(xdir);
    try {
      const bad = path.join(root, 'bad-meas');
      const names = copyProgrammed(bad);
      const first = net.layers[0].arrays[0];
      fs.rmSync(path.join(bad, first.files.programmed));
      expect(() => applyMeasured(net, bad)).toThrow(`${path.join(bad, first.files.programmed)}: missing: the measured conductances of array '${first.id}' (layer ${net.layers[0].name}, ${first.tile.rows}x${first.tile.arrayCols})`);
      copyProgrammed(bad);
      const f = path.join(bad, names[0]);
      const text = fs.readFileSync(f, 'utf8');
      fs.writeFileSync(f, text.replace(/\n([^#\n][^\n]*)\n$/, '\n'));
      expect(errorOf(() => applyMeasured(net, bad)).message).toMatch(/rows of values, the manifest says \d+ rows$/);
      const last = net.layers[net.layers.length - 1].arrays[0];
      const before = Array.from(last.programmed);
      copyProgrammed(bad);
      const g = path.join(bad, last.files.programmed);
      fs.writeFileSync(g, fs.readFileSync(g, 'utf8').replace(/\n([0-9.e+-]+),/, '\n-1,'));
      expect(errorOf(() => applyMeasured(net, bad)).message).toMatch(/: row 1, column 1: -1 uS is negative \(a conductance is >= 0\)$/);
      expect(Array.from(last.programmed)).toEqual(before);
    } finally {
      disposeCrossbar(net);
    }
  });

  test('evaluate --measured gives the evaluation of the programmed state; --measured without --crossbar is a usage error', async () => {
    const meas = path.join(root, 'meas2');
    copyProgrammed(meas);
    const a = await cli('evaluate', '--crossbar', xdir, '--test-samples', '200', '--no-read-noise', '--json');
    const b = await cli('evaluate', '--crossbar', xdir, '--measured', meas, '--test-samples', '200', '--no-read-noise', '--json');
    expect(b.code).toBe(0);
    expect(JSON.parse(b.out).testAccuracy).toBe(JSON.parse(a.out).testAccuracy);
    expect(JSON.parse(b.out).measured.likelyStuck).toBeGreaterThan(0);
    const u = await cli('evaluate', '--model', model, '--measured', meas);
    expect(u.code).toBe(2);
    expect(u.err).toContain('error: --measured needs --crossbar XDIR');
  });
});
