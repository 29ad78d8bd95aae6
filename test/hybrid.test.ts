// The hybrid method end to end (train -> map -> evaluate -> in situ -> evaluate) and the insitu
// command, on a device that loses accuracy in transfer: yao2020 with a sloppy write-verify (15% of
// the window, at most 10 pulses) and an 8-bit analog DAC (bit-serial reads would cost 8x the time).
import * as fs from 'fs';
import * as path from 'path';
import { runCli as run, STACK, tempRoot } from './helpers';

const root = tempRoot('hybrid');
const deviceFile = path.join(root, 'yao2020_sloppy.json');
fs.writeFileSync(deviceFile, JSON.stringify({ extends: 'yao2020', writeVerify: { mode: 'iterative', tolerance: 0.15, maxPulses: 10 }, dac: { mode: 'analog', bits: 8 } }));

// one training thread: the margins below were measured on the single-thread loop's model (the
// default, one thread per core, would make the model depend on the machine's cores)
const small = ['--dataset', 'mnist', '--train-samples', '2000', '--test-samples', '200', '--workers', '1', '--backend', 'wasm', '--no-progress'];

describe('hybrid and insitu commands', () => {
  const dir = path.join(root, 'h');
  let summary: Record<string, number | string>;

  test('hybrid --json: the summary on stdout and in DIR/summary.json, the three stages written, in-situ training wins back the transfer loss', async () => {
    // plain offline training (--no-device-aware), so that the transfer loses what in-situ training wins back
    const r = await run('hybrid', '--model', 'mcnn', '--device', deviceFile, '--no-device-aware', '--seed', '3', '--insitu-samples', '600', '--out', dir, '--json', ...small);
    expect(r.err).toMatch(/\[4\/4\] in-situ training/);
    expect(r.code).toBe(0);
    summary = JSON.parse(r.out);
    expect(JSON.parse(fs.readFileSync(path.join(dir, 'summary.json'), 'utf8'))).toEqual(summary);
    for (const k of ['softwareAccuracy', 'transferredAccuracy', 'insituAccuracy']) {
      expect(summary[k]).toBeGreaterThan(0.5);
      expect(summary[k]).toBeLessThanOrEqual(1);
    }
    expect(summary).toMatchObject({ model: 'mcnn', dataset: 'mnist', device: 'yao2020_sloppy', seed: 3, insituSamples: 600, testSamples: 200, format: 'memristor-tfjs-hybrid', deviceAware: false });
    const software = summary.softwareAccuracy as number;
    const transferred = summary.transferredAccuracy as number;
    const insitu = summary.insituAccuracy as number;
    expect(summary.lostPoints).toBeCloseTo(100 * (software - transferred), 2);
    expect(summary.recoveredPoints).toBeCloseTo(100 * (insitu - transferred), 2);
    // the recovery margin: the transfer costs at least 10 points (20 of the 200 test images), and
    // in-situ training of the FC layer wins back at least half of them
    expect(summary.lostPoints).toBeGreaterThanOrEqual(10);
    expect(insitu - transferred).toBeGreaterThanOrEqual(0.5 * (software - transferred));
    expect(summary.recoveredFraction).toBeGreaterThanOrEqual(0.5);
    for (const f of ['model/model.json', 'crossbar/manifest.json', 'insitu/manifest.json', 'insitu/insitu.json', 'insitu/learning_curve.csv']) {
      expect(fs.existsSync(path.join(dir, f))).toBe(true);
    }
    const rec = JSON.parse(fs.readFileSync(path.join(dir, 'insitu/insitu.json'), 'utf8'));
    expect(rec.after.testAccuracy).toBe(summary.insituAccuracy);
    expect(rec.before.testAccuracy).toBe(summary.transferredAccuracy);
    expect(rec.layer).toBe('FC');
    expect(rec.totalPulses).toBe(summary.insituPulses);
  });

  test('insitu on the transferred arrays: reads XDIR only, writes XDIR2, prints before and after', async () => {
    const xdir = path.join(dir, 'crossbar');
    const mtimes = () => fs.readdirSync(xdir).map((f) => [f, fs.statSync(path.join(xdir, f)).mtimeMs]);
    const before = mtimes();
    const out = path.join(root, 'x2');
    const r = await run('insitu', '--crossbar', xdir, '--samples', '200', '--rule', 'manhattan', '--lr', '2', '--out', out, '--json', '--test-samples', '100', '--eval-samples', '50', '--backend', 'wasm', '--no-progress');
    expect(r.code).toBe(0);
    const o = JSON.parse(r.out);
    expect(o).toMatchObject({ layer: 'FC', rule: 'manhattan', samples: 200, updates: 2, testSamples: 100, device: 'yao2020_sloppy' });
    expect(o.totalPulses).toBe(o.setPulses + o.resetPulses);
    expect(mtimes()).toEqual(before);
    expect(fs.existsSync(path.join(out, 'insitu.json'))).toBe(true);
    // the tuned directory is a crossbar directory: evaluate reads it
    const e = await run('evaluate', '--crossbar', out, '--test-samples', '100', '--json', '--backend', 'wasm');
    expect(e.code).toBe(0);
    expect(JSON.parse(e.out).testSamples).toBe(100);
  });

  test.each([
    [['insitu', '--crossbar', '/nonexistent/x', '--out', '/tmp/y'], 1, /nonexistent\/x/],
    [['insitu', '--crossbar', '/tmp/x', '--out', '/tmp/y', '--rule', 'newton'], 2, /--rule/],
    [['insitu', '--crossbar', '/tmp/x', '--out', '/tmp/y', '--lr', '0'], 2, /--lr/],
    [['hybrid', '--model', 'nope', '--device', 'yao2020', '--out', '/tmp/y'], 2, /unknown model 'nope'/],
    [['hybrid', '--model', 'mcnn', '--device', 'nodevice', '--out', '/tmp/y'], 2, /nodevice/],
    [['hybrid', '--model', 'mcnn', '--device', 'yao2020', '--out', '/tmp/y', '--array', '12'], 2, /--array/],
    [['hybrid', '--model', 'mcnn', '--device', 'yao2020', '--out', '/tmp/y', '--no-device-aware', '--variation', 'readNoiseSigma=0'], 2, /--no-device-aware/],
    [['train', '--model', 'mcnn', '--out', '/tmp/y', '--float', '--device', 'yao2020'], 2, /--float/],
    [['train', '--model', 'mcnn', '--out', '/tmp/y', '--scheme', 'reference'], 2, /--scheme needs --device/],
  ])('%j: exit %d, one line', async (args, code, msg) => {
    const r = await run(...(args as string[]));
    expect(r.code).toBe(code);
    expect(r.err).toMatch(msg as RegExp);
    expect(r.err).not.toMatch(STACK);
  });
});
