// Device sweeps (src/sweep/): the grid, the seeds and statistics against direct loops, worker
// threads, in-situ training (the real one, on a learnable case), the files and the command.
import * as fs from 'fs';
import * as path from 'path';
import { getPreset } from '../src/device/config';
import { ConfigError, FileFormatError, UsageError } from '../src/errors';
import { deriveSeed } from '../src/random';
import { loadModel } from '../src/model_io';
import { loadDataset } from '../src/data';
import { CrossbarNetwork, evaluateCrossbar, mapModel } from '../src/crossbar';
import { insituTrain } from '../training/insitu';
import {
  SWEEP_FORMAT,
  SweepResult,
  expandGrid,
  parseVary,
  parseVaryValue,
  planSweep,
  pointDevice,
  runSweep,
  summarize,
  sweepCsv,
} from '../src/sweep';
import { deserializeError, serializeError } from '../src/sweep/pool';
import { TEST, TRAIN, base, dataset, modelDir, root, setUpSweepFixture, softwareAccuracy } from './sweep_fixture';
import { runCli as run, errorOf, STACK } from './helpers';

setUpSweepFixture();

async function rejectionOf(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (e) {
    return e as Error;
  }
  throw new Error('expected a rejection');
}

describe('sweep grid', () => {
  const yao = getPreset('yao2020')!;

  test('values: numbers, null, words', () => {
    expect(parseVaryValue(' 0.05 ')).toBe(0.05);
    expect(parseVaryValue('1e-3')).toBe(0.001);
    expect(parseVaryValue('8')).toBe(8);
    expect(parseVaryValue('null')).toBeNull();
    expect(parseVaryValue('exact')).toBe('exact');
  });

  test('the cartesian product, the first --vary outermost, with the point keys', () => {
    const specs = parseVary(['tolerance=0.02,0.05,0.1', 'levels=8,null'], yao);
    expect(specs.map((s) => [s.name, s.fields, s.values])).toEqual([
      ['tolerance', ['writeVerify.tolerance'], [0.02, 0.05, 0.1]],
      ['levels', ['levels'], [8, null]],
    ]);
    const pts = expandGrid(specs);
    expect(pts.map((p) => p.key)).toEqual([
      'tolerance=0.02,levels=8',
      'tolerance=0.02,levels=null',
      'tolerance=0.05,levels=8',
      'tolerance=0.05,levels=null',
      'tolerance=0.1,levels=8',
      'tolerance=0.1,levels=null',
    ]);
    expect(pts[3].params).toEqual({ tolerance: 0.05, levels: null });
    const d = pointDevice(yao, specs, pts[3]);
    expect(d.writeVerify.tolerance).toBe(0.05);
    expect(d.levels).toBeNull();
    expect(yao.writeVerify.tolerance).toBe(0.05); // the base is not changed
    expect(expandGrid([])).toEqual([{ params: {}, key: '' }]);
  });

  test('aliases and dotted paths set the device fields', () => {
    const specs = parseVary(['d2d=0.2', 'stuck=0.1', 'readNoise=0.05', 'adc.bits=6', 'variation.stepSigma=0.5'], yao);
    const d = pointDevice(yao, specs, expandGrid(specs)[0]);
    expect(d.variation).toEqual({ rOnSigma: 0.2, rOffSigma: 0.2, stepSigma: 0.5 });
    expect(d.faults).toEqual({ stuckAtGMin: 0.05, stuckAtGMax: 0.05 });
    expect(d.read.noiseSigma).toBe(0.05);
    expect(d.adc.bits).toBe(6);
  });

  test('bad names are UsageErrors naming them', () => {
    const cases: [string[], RegExp][] = [
      [['nosuch=1'], /--vary nosuch: unknown name 'nosuch'.*tolerance, d2d.*writeVerify\.tolerance/],
      [['writeVerify.tol=0.1'], /no field 'writeVerify\.tol' \(fields of writeVerify: mode, tolerance, maxPulses\)/],
      [['variation=0.1'], /'variation' is a group of fields; vary one of variation\.rOnSigma/],
      [['levels.x=1'], /'levels' is a value, not a group/],
      [['dac.bits=4'], /no field 'dac\.bits' \(fields of dac: mode, inputBits\)/], // yao2020's DAC is bit-serial
      [['tolerance=0.1', 'tolerance=0.2'], /--vary tolerance is given twice/],
      [['d2d=0.1', 'variation.rOffSigma=0.2'], /--vary variation\.rOffSigma and --vary d2d both set variation\.rOffSigma/],
      [['tolerance'], /--vary must be NAME=v1,v2/],
      [['tolerance=0.1,,0.2'], /empty value/],
      [['tolerance=0.1,0.1'], /value 0\.1 is given twice/],
      [['stuck=a'], /--vary stuck: 'a' is not a number/],
      [['name=x'], /not a device property/],
    ];
    for (const [args, msg] of cases) {
      const e = errorOf(() => parseVary(args, yao));
      expect(e).toBeInstanceOf(UsageError);
      expect(e.message).toMatch(msg);
    }
  });

  test('bad values are ConfigErrors naming the field and the point', () => {
    const check = (vary: string[], field: string, msg: RegExp) => {
      const e = errorOf(() => planSweep({ device: 'yao2020', vary, trials: 1 }));
      expect(e).toBeInstanceOf(ConfigError);
      expect((e as ConfigError).field).toBe(field);
      expect(e.message).toMatch(msg);
    };
    check(['tolerance=0.05,1.5'], 'writeVerify.tolerance', /must be in \[0, 1\), got 1\.5 \(--vary tolerance=1\.5\)/);
    check(['levels=1'], 'levels', /must be in \[2, 65536\]/);
    check(['adc.bits=x'], 'adc.bits', /must be a finite number, got "x"/);
    check(['writeVerify.mode=fast'], 'writeVerify.mode', /one of iterative, exact/);
    // a point that is only bad as a whole: the window of a cell could close
    check(['tolerance=0.1', 'd2d=0.1,0.5'], 'variation.rOffSigma', /could close.*\(--vary tolerance=0\.1, d2d=0\.5\)/);
    expect(errorOf(() => planSweep({ device: 'no-such-device', trials: 1 }))).toBeInstanceOf(UsageError);
    expect(errorOf(() => planSweep({ device: 'yao2020', trials: 0 })).message).toMatch(/--trials/);
  });

  test('trial seeds: derived from the seed, the point and the trial', () => {
    const p = planSweep({ device: 'yao2020', vary: ['tolerance=0.02,0.1'], trials: 2, seed: 3 });
    expect(p.tasks.map((t) => [t.index, t.seed, t.device.writeVerify.tolerance])).toEqual([
      [0, deriveSeed(3, 'tolerance=0.02', 0), 0.02],
      [1, deriveSeed(3, 'tolerance=0.02', 1), 0.02],
      [2, deriveSeed(3, 'tolerance=0.1', 0), 0.1],
      [3, deriveSeed(3, 'tolerance=0.1', 1), 0.1],
    ]);
    expect(new Set(p.tasks.map((t) => t.seed)).size).toBe(4);
  });

  test('summarize: mean and sample standard deviation (n - 1)', () => {
    const s = summarize([0.9, 0.8, 0.7, 1]);
    expect(s.mean).toBeCloseTo(0.85, 12);
    expect(s.std).toBeCloseTo(Math.sqrt((0.05 ** 2 + 0.05 ** 2 + 0.15 ** 2 + 0.15 ** 2) / 3), 12);
    expect(s.values).toEqual([0.9, 0.8, 0.7, 1]);
    expect(summarize([0.5])).toEqual({ mean: 0.5, std: null, values: [0.5] });
  });

  test('errors keep their class and fields across the thread boundary', () => {
    const f = deserializeError(JSON.parse(JSON.stringify(serializeError(new FileFormatError('/x/model.json', 'bad')))));
    expect(f).toBeInstanceOf(FileFormatError);
    expect((f as FileFormatError).file).toBe('/x/model.json');
    expect(f.message).toBe('/x/model.json: bad');
    const c = deserializeError(serializeError(new ConfigError('testSamples', 'too many')));
    expect(c).toBeInstanceOf(ConfigError);
    expect((c as ConfigError).field).toBe('testSamples');
    expect(deserializeError(serializeError(new UsageError('u')))).toBeInstanceOf(UsageError);
    expect(deserializeError(serializeError(new TypeError('t'))).message).toBe('in a sweep worker: t');
  });
});

describe('sweep runs', () => {
  let inProcess: SweepResult;

  test('statistics equal a direct loop of mapModel + evaluateCrossbar with the same seeds', async () => {
    inProcess = await runSweep({ ...base, workers: 1 });
    expect(inProcess.mode).toBe('in-process');
    expect(inProcess.points).toHaveLength(4);
    expect(inProcess.testSamples).toBe(TEST);

    const { model } = await loadModel(modelDir);
    const data = loadDataset(dataset);
    const plan = planSweep(base);
    try {
      plan.points.forEach((p, i) => {
        const values: number[] = [];
        for (let t = 0; t < base.trials; t++) {
          const seed = deriveSeed(base.seed!, p.key, t);
          const net: CrossbarNetwork = mapModel(model, plan.devices[i], { arrayRows: 32, arrayCols: 32, seed });
          const r = evaluateCrossbar(net, data.test, { calibration: data.train, calibrationSamples: 20, seed, imageShape: data.imageShape, numClasses: 10 });
          (net.runtime as { dispose(): void }).dispose();
          values.push(r.accuracy);
        }
        const mean = values.reduce((a, b) => a + b, 0) / values.length;
        const std = Math.sqrt(values.reduce((a, b) => a + (b - mean) ** 2, 0) / (values.length - 1));
        const got = inProcess.points[i];
        expect(got.params).toEqual(p.params);
        expect(got.before.values).toEqual(values);
        expect(got.before.mean).toBeCloseTo(mean, 12);
        expect(got.before.std!).toBeCloseTo(std, 12);
        expect(got.after).toBeNull();
      });
    } finally {
      model.dispose();
    }
    // the trials are independent programmings: they do not all agree
    expect(inProcess.points.some((p) => new Set(p.before.values).size > 1)).toBe(true);
  });

  test('2 worker threads and 1 worker thread give exactly the in-process numbers', async () => {
    let calls = 0;
    const two = await runSweep({ ...base, workers: 2, onProgress: () => calls++ });
    expect(two.mode).toBe('worker-threads');
    expect(two.workers).toBe(2);
    expect(calls).toBe(12);
    expect(two.points).toEqual(inProcess.points);
    const one = await runSweep({ ...base, workers: 1, inProcess: false });
    expect(one.mode).toBe('worker-threads');
    expect(one.points).toEqual(inProcess.points);
    expect(two.testSamples).toBe(TEST);
  });

  test('a bad model file in a worker comes back as a FileFormatError naming it', async () => {
    const bad = path.join(root, 'bad-model');
    fs.mkdirSync(bad, { recursive: true });
    fs.writeFileSync(path.join(bad, 'model.json'), '{"modelTopology": ');
    const e = await rejectionOf(runSweep({ ...base, model: bad, workers: 2 }));
    expect(e).toBeInstanceOf(FileFormatError);
    expect((e as FileFormatError).file).toBe(path.join(bad, 'model.json'));
    // and too many test samples, a ConfigError raised in a worker
    const c = await rejectionOf(runSweep({ ...base, testSamples: TEST + 1, workers: 2 }));
    expect(c).toBeInstanceOf(ConfigError);
    expect((c as ConfigError).field).toBe('testSamples');
  });
});

describe('sweep with in-situ training (the real training/insitu.ts)', () => {
  // Many stuck cells cost the trained fixture model accuracy; in-situ training of its last layer on
  // the 400 training images wins it back (the plain rule: 4 updates are too few for tiki-taka's
  // one pulse a transfer).
  const opts = { ...base, vary: ['stuck=0.1,0.2'], trials: 2, insitu: { samples: TRAIN, rule: 'plain' as const } };
  let inProcess: SweepResult;

  test('in-process: before and after equal a direct loop of mapModel, evaluateCrossbar, insituTrain, evaluateCrossbar, and after wins back the loss', async () => {
    expect(softwareAccuracy).toBe(1);
    inProcess = await runSweep({ ...opts, workers: 1 });
    expect(inProcess.mode).toBe('in-process');
    expect(inProcess.insitu).toBe(true);

    const { model } = await loadModel(modelDir);
    const data = loadDataset(dataset);
    const plan = planSweep(opts);
    const evalOpts = (seed: number) => ({ calibration: data.train, calibrationSamples: 20, seed, imageShape: data.imageShape, numClasses: 10 });
    try {
      plan.points.forEach((p, i) => {
        const before: number[] = [];
        const after: number[] = [];
        for (let t = 0; t < 2; t++) {
          const seed = deriveSeed(11, p.key, t);
          const net = mapModel(model, plan.devices[i], { arrayRows: 32, arrayCols: 32, seed });
          before.push(evaluateCrossbar(net, data.test, evalOpts(seed)).accuracy);
          const res = insituTrain(net, data.train, { samples: TRAIN, rule: 'plain', seed: deriveSeed(seed, 'insitu') });
          expect(res.totalPulses).toBeGreaterThan(0);
          // the cached effective weights are of the conductances before training
          (net.runtime as { dispose(): void }).dispose();
          net.runtime = null;
          after.push(evaluateCrossbar(net, data.test, evalOpts(seed)).accuracy);
          (net.runtime as { dispose(): void }).dispose();
        }
        expect(inProcess.points[i].before).toEqual(summarize(before));
        expect(inProcess.points[i].after).toEqual(summarize(after));
      });
    } finally {
      model.dispose();
    }
    // the stuck cells cost accuracy (more at 20%), and in-situ training wins most of it back
    const [p10, p20] = inProcess.points;
    expect(p10.before.mean).toBeLessThan(0.97);
    expect(p20.before.mean).toBeLessThan(0.8);
    for (const p of inProcess.points) {
      expect(p.after!.mean).toBeGreaterThan(0.95);
      expect(p.after!.mean - p.before.mean).toBeGreaterThan(0.5 * (1 - p.before.mean));
    }
    expect(sweepCsv(inProcess).split('\n')[1]).toBe(`0.1,${p10.before.mean},${p10.before.std},${p10.after!.mean},${p10.after!.std},2`);
  });

  test("a long trial's phases: programming, calibration, test and in situ, as they go, with the same numbers", async () => {
    const phases: string[] = [];
    const r = await runSweep({ ...opts, workers: 1, onTrialPhase: (p) => phases.push(p) });
    expect(r.points).toEqual(inProcess.points);
    for (const re of [/^trial 1: programming \d+%$/, /^trial 1: calibration \d+%$/, /^trial 1: test \d+%$/, /^trial 1: in situ \d+%$/, /^trial 4: in situ 100%$/]) {
      expect(phases.some((p) => re.test(p))).toBe(true);
    }
    // in order within a trial: programming before the test, the test before in situ
    const first = (w: string) => phases.findIndex((p) => p.startsWith(`trial 2: ${w}`));
    expect(first('programming')).toBeLessThan(first('test'));
    expect(first('test')).toBeLessThan(first('in situ'));
  });

  test('in 2 worker threads: the same numbers', async () => {
    const two = await runSweep({ ...opts, workers: 2 });
    expect(two.mode).toBe('worker-threads');
    expect(two.points).toEqual(inProcess.points);
  });

  test('sweep --insitu: the after columns in sweep.json, sweep.csv and the table', async () => {
    const out = path.join(root, 'cli-insitu');
    const args = ['sweep', '--model', modelDir, '--device', 'yao2020', '--dataset', dataset, '--vary', 'stuck=0.2', '--trials', '2', '--seed', '11', '--array', '32x32', '--calibration-samples', '20'];
    const r = await run(...args, '--insitu', '--insitu-samples', String(TRAIN), '--insitu-rule', 'plain', '--workers', '1', '--out', out, '--json', '--no-progress', '--backend', 'wasm');
    expect(r.err).not.toMatch(STACK);
    expect(r.code).toBe(0);
    const j = JSON.parse(r.out);
    expect(j).toMatchObject({ insitu: true, trials: 2, workers: 1 });
    // the point stuck=0.2 is the second point of the in-process sweep above: the same seeds, the same numbers
    expect(j.points).toEqual([inProcess.points[1]]);
    expect(JSON.parse(fs.readFileSync(path.join(out, 'sweep.json'), 'utf8'))).toEqual(j);
    const p = j.points[0];
    expect(fs.readFileSync(path.join(out, 'sweep.csv'), 'utf8')).toBe(`stuck,before_mean,before_std,after_mean,after_std,trials\n0.2,${p.before.mean},${p.before.std},${p.after.mean},${p.after.std},2\n`);
    // piped progress with a line at every update: the trials' own phases show
    process.env.MEMRISTOR_TFJS_PROGRESS_SECONDS = '0';
    let h: Awaited<ReturnType<typeof run>>;
    try {
      h = await run(...args, '--insitu', '--insitu-samples', String(TRAIN), '--insitu-rule', 'plain', '--workers', '1', '--out', path.join(root, 'cli-insitu2'));
    } finally {
      delete process.env.MEMRISTOR_TFJS_PROGRESS_SECONDS;
    }
    expect(h.code).toBe(0);
    expect(h.err).toMatch(/^sweep: 0\/2 trials \(0%\).*now trial 1: programming \d+%$/m);
    expect(h.err).toMatch(/^sweep: 1\/2 trials \(50%\).*now trial 2: in situ \d+%$/m);
    expect(h.out).toMatch(/stuck\s+before\s+std\(pp\)\s+after\s+std\(pp\)\n0\.2\s/);
    expect(h.out).toContain(`${(100 * p.after.mean).toFixed(2)}%`);
  });
});

describe('sweep command', () => {
  test('writes sweep.json and sweep.csv; --json prints the same object', async () => {
    const out = path.join(root, 'cli-out');
    const r = await run(
      'sweep', '--model', modelDir, '--device', 'yao2020', '--dataset', dataset, '--vary', 'tolerance=0.02,0.2', '--vary', 'stuck=0.05,0.2',
      '--trials', '3', '--seed', '11', '--array', '32x32', '--calibration-samples', '20', '--workers', '2', '--out', out, '--json', '--no-progress', '--backend', 'wasm',
    );
    expect(r.err).not.toMatch(STACK);
    expect(r.code).toBe(0);
    const j = JSON.parse(r.out);
    expect(JSON.parse(fs.readFileSync(path.join(out, 'sweep.json'), 'utf8'))).toEqual(j);
    expect(j).toMatchObject({
      format: SWEEP_FORMAT,
      version: 1,
      model: modelDir,
      device: 'yao2020',
      trials: 3,
      insitu: false,
      seed: 11,
      testSamples: TEST,
      workers: 2,
      vary: [
        { name: 'tolerance', values: [0.02, 0.2] },
        { name: 'stuck', values: [0.05, 0.2] },
      ],
    });
    expect(typeof j.seconds).toBe('number');
    for (const p of j.points) {
      expect(Object.keys(p).sort()).toEqual(['after', 'before', 'params']);
      expect(Object.keys(p.before).sort()).toEqual(['mean', 'std', 'values']);
      expect(p.before.values).toHaveLength(3);
      expect(p.after).toBeNull();
    }
    const csv = fs.readFileSync(path.join(out, 'sweep.csv'), 'utf8').trim().split('\n');
    expect(csv[0]).toBe('tolerance,stuck,before_mean,before_std,after_mean,after_std,trials');
    expect(csv).toHaveLength(5);
    expect(csv[4]).toBe(`0.2,0.2,${j.points[3].before.mean},${j.points[3].before.std},,,3`);
    expect(sweepCsv(j)).toBe(fs.readFileSync(path.join(out, 'sweep.csv'), 'utf8'));
    // human output: a table
    const h = await run('sweep', '--model', modelDir, '--device', 'yao2020', '--dataset', dataset, '--vary', 'tolerance=0.02', '--trials', '2', '--array', '32x32', '--calibration-samples', '20', '--workers', '1', '--out', path.join(root, 'cli-out2'), '--no-progress');
    expect(h.code).toBe(0);
    expect(h.out).toMatch(/tolerance\s+before\s+std\(pp\)\n0\.02\s+\d+\.\d\d%\s+\d+\.\d\d/);
  });

  test.each([
    [['--vary', 'bogus=1'], 2, /unknown name 'bogus'/],
    [['--vary', 'tolerance=2'], 2, /writeVerify\.tolerance: must be in \[0, 1\), got 2/],
    [['--vary', 'tolerance=0.1', '--trials', '0'], 2, /out of range/],
    [['--vary', 'tolerance=0.1', '--insitu-samples', '10'], 2, /need --insitu/],
    [['--vary', 'tolerance=0.1', '--array', '32'], 2, /--array must be RxC/],
  ])('%j: one line, exit %d', async (args, code, msg) => {
    const r = await run('sweep', '--model', modelDir, '--device', 'yao2020', '--dataset', dataset, '--out', path.join(root, 'x'), '--no-progress', ...(args as string[]));
    expect(r.code).toBe(code);
    expect(r.err).toMatch(msg as RegExp);
    expect(r.err).not.toMatch(STACK);
    expect(r.err.split('\n').filter((l) => l.startsWith('error')).length).toBe(1);
  });

  test('a bad model file in a worker: exit 1 and one line naming the file', async () => {
    const bad = path.join(root, 'bad-model-cli');
    fs.mkdirSync(bad, { recursive: true });
    fs.writeFileSync(path.join(bad, 'model.json'), 'not json');
    const r = await run('sweep', '--model', bad, '--device', 'yao2020', '--dataset', dataset, '--trials', '2', '--workers', '2', '--out', path.join(root, 'y'), '--no-progress');
    expect(r.code).toBe(1);
    expect(r.err).toContain(path.join(bad, 'model.json'));
    expect(r.err).not.toMatch(STACK);
    expect(fs.existsSync(path.join(root, 'y', 'sweep.json'))).toBe(false);
  });
});
