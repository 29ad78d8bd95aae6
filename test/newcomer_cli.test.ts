// The CLI as a new user meets it: every long command shows progress when piped (plain lines with
// count/total, rate, ETA; counts as integers), `summary` prints binary vs float parameters of a
// model name or folder (and `train` prints it first), and every --help names its defaults.
import * as fs from 'fs';
import * as path from 'path';
import { buildProgram, INSITU_LR_DEFAULT, INSITU_RULE_DEFAULT, TIKI_TAKA_LR_DEFAULT } from '../src/cli';
import { DEFAULT_INSITU_LR, DEFAULT_INSITU_RULE, DEFAULT_TIKI_TAKA_LR, INSITU_RULES } from '../training/insitu';
import { runCli as run, tempRoot } from './helpers';

const root = tempRoot('newcomer');

/** A small soft-bounds device's pulse trains, with cycle-to-cycle noise (a stand-in for measured data). */
function pulsesCsv(): string {
  let s = 12345;
  const u = () => (s = (s * 16807) % 2147483647) / 2147483647;
  const rows = ['device,cycle,pulse,polarity,conductance_uS'];
  for (let d = 0; d < 6; d++) {
    const lo = 5 * (1 + 0.1 * (u() - 0.5));
    const hi = 50 * (1 + 0.1 * (u() - 0.5));
    let g = lo;
    for (let c = 0; c < 3; c++) {
      for (const pol of ['set', 'reset']) {
        for (let k = 0; k <= 40; k++) {
          if (k > 0) {
            const x = (g - lo) / (hi - lo);
            g = Math.min(hi, Math.max(lo, g + (pol === 'set' ? 2.5 * (1 - x) : -2.5 * x) * (1 + 0.4 * (u() - 0.5))));
          }
          rows.push(`d${d},${c},${k},${pol},${g.toFixed(4)}`);
        }
      }
    }
  }
  return rows.join('\n') + '\n';
}

/** Runs the CLI with stderr as a pipe and a progress line at every update. */
async function piped(...args: string[]) {
  const tty = process.stderr.isTTY;
  (process.stderr as { isTTY: boolean }).isTTY = false;
  process.env.MEMRISTOR_TFJS_PROGRESS_SECONDS = '0';
  try {
    return await run(...args);
  } finally {
    (process.stderr as { isTTY: boolean }).isTTY = tty;
    delete process.env.MEMRISTOR_TFJS_PROGRESS_SECONDS;
  }
}

/** Lines of `err` that report progress under `label`, past the start and before the end. */
function between(err: string, label: string, total: string): string[] {
  const re = new RegExp(`^${label.replace(/[/()]/g, '\\$&')}: (\\d[\\d,]*)/${total} `);
  return err.split('\n').filter((l) => {
    const m = re.exec(l);
    if (!m) return false;
    const k = Number(m[1].replace(/,/g, ''));
    return k > 0 && k < Number(total.replace(/,/g, ''));
  });
}

describe('--help', () => {
  test('every option that takes a value names its default (or that another option is the alternative)', () => {
    const missing: string[] = [];
    for (const c of buildProgram().commands) {
      for (const o of c.options) {
        if (!(o.required || o.optional) || o.mandatory || o.defaultValue !== undefined) continue;
        if (!/default|give either/i.test(o.description)) missing.push(`${c.name()} ${o.flags}`);
      }
    }
    expect(missing).toEqual([]);
  });

  test('the in-situ learning rate and rule the help names are the ones training uses', async () => {
    expect(INSITU_LR_DEFAULT).toBe(DEFAULT_INSITU_LR);
    expect(TIKI_TAKA_LR_DEFAULT).toBe(DEFAULT_TIKI_TAKA_LR);
    expect(INSITU_RULE_DEFAULT).toBe(DEFAULT_INSITU_RULE);
    for (const cmd of ['insitu', 'hybrid']) {
      const t = (await run(cmd, '--help')).out.replace(/\s+/g, ' ');
      expect(t).toMatch(new RegExp(`--rule <name> .*\\(choices: ${INSITU_RULES.map((r) => `"${r}"`).join(', ')}, default: "${DEFAULT_INSITU_RULE}"\\)`));
      expect(t).toMatch(/--oracle .*default off/);
    }
    const h = await run('insitu', '--help');
    expect(h.out.replace(/\s+/g, ' ')).toMatch(/--lr <f> .*default 1 for tiki-taka and pair-aware, 0\.3 for the other rules/);
    expect(h.out.replace(/\s+/g, ' ')).toMatch(/--threshold <uS> .*default 0 for plain/);
    const s = (await run('sweep', '--help')).out.replace(/\s+/g, ' ');
    for (const re of [/--insitu-samples <n> .*default 6000/, /--insitu-epochs <n> .*default 1/, /--insitu-lr <f> .*default 1 for tiki-taka and pair-aware, 0\.3 for the other rules/, new RegExp(`--insitu-rule <rule> .*default ${DEFAULT_INSITU_RULE}`)]) expect(s).toMatch(re);
  });
});

describe('piped progress on every long command, and summary', () => {
  const model = path.join(root, 'm');
  const xb = path.join(root, 'x');

  test('train: the summary first, then progress lines between 0% and 100%; the test evaluation too', async () => {
    const r = await piped('train', '--model', 'mcnn', '--train-samples', '640', '--test-samples', '200', '--batch-size', '64', '--out', model, '--backend', 'wasm');
    expect(r.code).toBe(0);
    const summaryAt = r.err.indexOf('Binary: ');
    expect(summaryAt).toBeGreaterThan(0);
    expect(summaryAt).toBeLessThan(r.err.indexOf('epoch 1/1: 0/640 samples (0%)'));
    const mid = between(r.err, 'epoch 1/1', '640');
    expect(mid.length).toBe(9); // one per batch but the last (the stop's line)
    expect(mid[0]).toMatch(/^epoch 1\/1: 64\/640 samples \(10%\), [\d,]+ samples\/s, ETA [\d.]+ s, loss \d\.\d{4} acc \d\.\d{4}$/);
    expect(r.err).toMatch(/^epoch 1\/1: 640\/640 samples \(100%\), [\d,]+ samples\/s, [\d.]+ s, loss/m);
    expect(r.err).toMatch(/^test: 200\/200 samples \(100%\)/m);
  });

  test('summary --model DIR and --model NAME: binary vs float parameters and memory per layer; --json', async () => {
    const d = await run('summary', '--model', model, '--backend', 'wasm');
    expect(d.code).toBe(0);
    expect(d.out).toMatch(/^model folder .*: \d+ layers/);
    expect(d.out).toMatch(/Layer\s+Class\s+Output\s+Params\s+Binary\s+Multi-level\s+Float\s+Bits\/weight\s+Memory KiB/);
    expect(d.out).toMatch(/Binary: 0, multi-level: \d+, float: \d+/); // mcnn: 15-level weights
    const n = await run('summary', '--model', 'bnn', '--json', '--backend', 'wasm');
    expect(n.code).toBe(0);
    const s = JSON.parse(n.out);
    expect(s).toMatchObject({ model: 'bnn', source: 'registry' });
    expect(s.binaryParams).toBeGreaterThan(20000);
    expect(s.layers.find((l: { name: string }) => l.name === 'FC')).toMatchObject({ binary: 15680, weightBits: 1 });
    const f = await run('summary', '--model', 'bnn', '--float', '--backend', 'wasm');
    expect(f.out).toMatch(/Binary: 0, multi-level: 0/);
    const bad = await run('summary', '--model', 'no-such');
    expect(bad.code).toBe(2);
    expect(bad.err).toMatch(/--model 'no-such' is neither a model of the registry \(mcnn, .*\) nor a model folder/);
  });

  test('map: weights programmed; evaluate --crossbar and --model: samples evaluated', async () => {
    const m = await piped('map', '--model', model, '--device', 'park2024', '--array', '32x32', '--out', xb, '--backend', 'wasm');
    expect(m.code).toBe(0);
    // mcnn: C1 72 + C3 864 + FC 1,920 weights, a line after each layer but the last
    expect(m.err).toMatch(/^write-verify programming: 72\/2,856 weights \(2%\)/m);
    expect(m.err).toMatch(/^write-verify programming: 2,856\/2,856 weights \(100%\), [\d,]+ weights\/s/m);
    const e = await piped('evaluate', '--crossbar', xb, '--test-samples', '200', '--batch-size', '50', '--compare-software', '--backend', 'wasm');
    expect(e.code).toBe(0);
    expect(between(e.err, 'crossbar test', '200')).toHaveLength(3);
    expect(e.err).toMatch(/^crossbar test: 200\/200 samples \(100%\), [\d,]+ samples\/s, [\d.]+ s, acc \d\.\d{4}$/m);
    expect(e.err).toMatch(/^software test: 200\/200 samples/m);
    const q = await piped('evaluate', '--model', model, '--test-samples', '200', '--batch-size', '100', '--no-progress', '--backend', 'wasm');
    expect(q.code).toBe(0);
    expect(q.err).not.toMatch(/samples \(/);
  });

  test('insitu: images with pulses as counts (no decimals), and the evaluations before and after', async () => {
    const r = await piped('insitu', '--crossbar', xb, '--samples', '300', '--test-samples', '200', '--eval-samples', '100', '--out', path.join(root, 'x2'), '--backend', 'wasm');
    expect(r.code).toBe(0);
    expect(r.err).toMatch(/^before in-situ: 200\/200 samples \(100%\)/m);
    const mid = between(r.err, 'in-situ', '300');
    expect(mid).toHaveLength(2);
    for (const l of mid) expect(l).toMatch(/, acc \d\.\d{4} pulses \d[\d,]*$/);
    expect(r.err).not.toMatch(/pulses \d+\.\d/);
    expect(r.err).toMatch(/^after in-situ: 200\/200 samples \(100%\)/m);
  });

  test('sweep: trials; fit-device: its stages', async () => {
    const s = await piped('sweep', '--model', model, '--device', 'park2024', '--array', '32x32', '--trials', '3', '--workers', '1', '--test-samples', '100', '--out', path.join(root, 'sw'), '--backend', 'wasm');
    expect(s.code).toBe(0);
    const lines = between(s.err, 'sweep', '3');
    expect(lines.filter((l) => !l.includes(', now trial '))).toEqual([expect.stringMatching(/^sweep: 1\/3 trials \(33%\), [\d.,]+ trials\/s, ETA/), expect.stringMatching(/^sweep: 2\/3 trials/)]);
    // while a trial runs, what it is doing
    for (const re of [/, now trial 2: programming \d+%$/, /, now trial 2: calibration \d+%$/, /, now trial 3: test 100%$/]) expect(lines.some((l) => re.test(l))).toBe(true);
    fs.writeFileSync(path.join(root, 'pulses.csv'), pulsesCsv());
    const f = await piped('fit-device', '--data', path.join(root, 'pulses.csv'), '--out', path.join(root, 'dev.json'));
    expect(f.code).toBe(0);
    const stages = f.err.split('\n').filter((l) => l.startsWith('fit-device: '));
    expect(stages.map((l) => l.replace(/ \([\d.]+ s\)$/, ''))).toEqual([
      `fit-device: reading ${path.join(root, 'pulses.csv')}`,
      'fit-device: read 1,476 readings of 6 device(s)',
      'fit-device: collecting the steps of 36 pulse trains',
      'fit-device: fitting soft-bounds to 1440 steps of 6 device(s)',
      'fit-device: simulating the 36 measured trains on the fitted device (the mean curves)',
    ]);
    // the fit record beside the device, which report draws
    const record = path.join(root, 'dev.fit.json');
    expect(f.out).toContain(`and its fit record ${record}`);
    expect(JSON.parse(fs.readFileSync(record, 'utf8'))).toMatchObject({ format: 'memristor-tfjs-device-fit', version: 1, model: 'soft-bounds', readings: 1476, devices: 6 });
    const quiet = await run('fit-device', '--data', path.join(root, 'pulses.csv'), '--out', path.join(root, 'dev.json'), '--overwrite');
    expect(quiet.err).not.toMatch(/^fit-device: /m); // a small file: no stage lines at the default interval
  });

  test('report works on every run folder the commands wrote (map, insitu, train, sweep, a fit record)', async () => {
    for (const [target, title] of [
      [xb, /<title>Crossbar: /],
      [path.join(root, 'x2'), /<title>In-situ training: /],
      [model, /<title>Training: mcnn on mnist<\/title>/],
      [path.join(root, 'sw'), /<title>Sweep: /],
      [path.join(root, 'dev.fit.json'), /<title>Device fit: soft-bounds to pulses\.csv<\/title>/],
    ] as const) {
      const r = await run('report', target, '--json');
      expect([target, r.code, r.err]).toEqual([target, 0, expect.not.stringMatching(/warning/)]);
      const page = fs.readFileSync(JSON.parse(r.out).report, 'utf8');
      expect(page).toMatch(title);
    }
  });
});
