// In-situ update rules, measured: for each device and seed, `hybrid --no-device-aware` (offline
// training, transfer, and the crossbar folder after transfer), then `insitu` on that folder with
// each rule (and plain with --oracle, the labelled upper bound), all as CLI processes as a user
// runs them. Per run: the accuracy before and after, the share of the points lost at transfer
// that the rule recovers, its pulses and energy. Devices: the presets yao2020 (mcnn) and park2024
// (park), and `lookup`: a device with few levels and asymmetric, G-dependent steps whose bounds
// drift from cycle to cycle, given to `fit-device --model lookup` as measured pulse trains (made
// here, seeded) and used through the fitted table. Prints a table and writes
// bench/insitu_rules.json.
//   node dist/bench/insitu_rules.js [--seeds 1,2,3] [--devices yao2020,park2024,lookup]
//     [--rules 'plain,manhattan,mixed-precision,tiki-taka,pair-aware'] [--insitu-samples 6000] [--test-samples N]
//     [--oracle yes|no] [--out FILE (in bench/)]
//   A rule may carry insitu flags after a space: --rules 'plain,mixed-precision --lr 1'.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { writeFileAtomic, writeJsonAtomic } from '../src/atomic';
import { flag, runCli } from './cli_process';

interface Row {
  device: string;
  model: string;
  seed: number;
  rule: string;
  oracle: boolean;
  software: number;
  transferred: number;
  after: number;
  recovered: number;
  pulses: number;
  energyPJ: number;
  seconds: number;
}

/**
 * Measured pulse trains of a device with few levels and asymmetric steps (the long CSV form of
 * fit-device): SET steps large at low G and shrinking fast (about 8 pulses cross the window),
 * RESET steps small at low G and growing with it; every device has its own bounds, which drift
 * from cycle to cycle by 5%; 30% cycle-to-cycle step noise. Seeded, no dependencies.
 */
function fewLevelTrains(devices = 48, cycles = 4, pulses = 30): string {
  let s = 2024;
  const u = () => ((s = (Math.imul(s, 1103515245) + 12345) >>> 0) + 0.5) / 4294967296;
  const n = () => Math.sqrt(-2 * Math.log(u())) * Math.cos(2 * Math.PI * u());
  const rows = ['device,cycle,pulse,polarity,conductance_uS'];
  for (let d = 0; d < devices; d++) {
    const hi0 = 20 * Math.exp(0.05 * n());
    const lo0 = 2 * Math.exp(0.08 * n());
    let g = lo0;
    for (let c = 0; c < cycles; c++) {
      const hi = hi0 * Math.exp(0.05 * n());
      const lo = lo0 * Math.exp(0.05 * n());
      for (const pol of ['set', 'reset']) {
        rows.push(`${d},${c},0,${pol},${g.toFixed(4)}`);
        for (let k = 1; k <= pulses; k++) {
          const x = Math.min(1, Math.max(0, (g - lo) / (hi - lo)));
          const dg = pol === 'set' ? 5 * Math.pow(1 - x, 1.5) : -1.2 * Math.pow(x, 0.6);
          g = Math.min(hi, Math.max(lo, g + dg * (1 + 0.3 * n())));
          rows.push(`${d},${c},${k},${pol},${g.toFixed(4)}`);
        }
      }
    }
  }
  return rows.join('\n') + '\n';
}

async function main(): Promise<void> {
  const seeds = flag('--seeds', '1,2,3').split(',').map(Number);
  const devices = flag('--devices', 'yao2020,park2024,lookup').split(',');
  const rules = flag('--rules', 'plain,manhattan,mixed-precision,tiki-taka,pair-aware').split(',');
  const insituSamples = flag('--insitu-samples', '6000');
  const testSamples = flag('--test-samples', '');
  const root = path.join(__dirname, '..', '..');
  const cli = path.join(root, 'bin', 'memristor-tfjs.js');
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'memristor-tfjs-rules-'));
  const rows: Row[] = [];
  const test = testSamples ? ['--test-samples', testSamples] : [];
  try {
    for (const device of devices) {
      let deviceArg = device;
      const model = device === 'park2024' ? 'park' : 'mcnn';
      if (device === 'lookup') {
        const csv = path.join(tmp, 'few_levels.csv');
        writeFileAtomic(csv, fewLevelTrains());
        deviceArg = path.join(tmp, 'few_levels.json');
        await runCli([cli, 'fit-device', '--data', csv, '--model', 'lookup', '--bins', '16', '--extends', 'yao2020', '--out', deviceArg, '--no-progress'], true);
      }
      for (const seed of seeds) {
        const run = path.join(tmp, `${device}-${seed}`);
        const hybrid = JSON.parse(
          await runCli([cli, 'hybrid', '--model', model, '--dataset', 'mnist', '--device', deviceArg, '--seed', String(seed), '--no-device-aware', '--insitu-samples', '100', '--out', run, '--json', '--no-progress', ...test], true),
        );
        const software: number = hybrid.softwareAccuracy;
        const specs = [...rules.map((r) => ({ rule: r, oracle: false })), ...(flag('--oracle', 'yes') === 'yes' ? [{ rule: 'plain', oracle: true }] : [])];
        for (const [k, spec] of specs.entries()) {
          const [name, ...extra] = spec.rule.trim().split(/\s+/);
          const rule = { rule: name, label: spec.rule.trim(), extra, oracle: spec.oracle };
          const out = path.join(tmp, `${device}-${seed}-${k}`);
          const t0 = performance.now();
          const r = JSON.parse(
            await runCli([
              cli, 'insitu', '--crossbar', path.join(run, 'crossbar'), '--dataset', 'mnist', '--samples', insituSamples, '--rule', rule.rule, ...rule.extra,
              ...(rule.oracle ? ['--oracle'] : []), '--seed', String(seed), '--out', out, '--json', '--no-progress', ...test,
            ], true),
          );
          const lost = software - r.beforeAccuracy;
          const row: Row = {
            device,
            model,
            seed,
            rule: rule.label,
            oracle: rule.oracle,
            software,
            transferred: r.beforeAccuracy,
            after: r.afterAccuracy,
            recovered: lost > 0 ? (r.afterAccuracy - r.beforeAccuracy) / lost : NaN,
            pulses: r.totalPulses,
            energyPJ: r.programming.energyPJ + (r.programming.readPJ ?? 0),
            seconds: (performance.now() - t0) / 1000,
          };
          rows.push(row);
          console.error(
            `${device} seed ${seed} ${(rule.label + (rule.oracle ? ' (oracle)' : '')).padEnd(18)} ${(100 * row.transferred).toFixed(2)}% -> ${(100 * row.after).toFixed(2)}% ` +
              `of ${(100 * software).toFixed(2)}%: ${(100 * row.recovered).toFixed(0)}% recovered, ${row.pulses} pulses`,
          );
          fs.rmSync(out, { recursive: true, force: true });
        }
        fs.rmSync(run, { recursive: true, force: true });
      }
    }
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
  // Per device and rule: the mean over seeds.
  const summary: Record<string, Record<string, { recovered: number; pulses: number; energyPJ: number; seeds: number }>> = {};
  for (const r of rows) {
    const key = r.rule + (r.oracle ? ' (oracle)' : '');
    const d = (summary[r.device] ??= {});
    const e = (d[key] ??= { recovered: 0, pulses: 0, energyPJ: 0, seeds: 0 });
    e.recovered += r.recovered;
    e.pulses += r.pulses;
    e.energyPJ += r.energyPJ;
    e.seeds++;
  }
  const lines = [`${'device'.padEnd(10)} ${'rule'.padEnd(24)} ${'recovered'.padStart(9)} ${'pulses'.padStart(8)} ${'energy uJ'.padStart(9)}  (mean of ${seeds.length} seeds)`];
  for (const [device, byRule] of Object.entries(summary)) {
    for (const [rule, e] of Object.entries(byRule)) {
      e.recovered /= e.seeds;
      e.pulses /= e.seeds;
      e.energyPJ /= e.seeds;
      lines.push(`${device.padEnd(10)} ${rule.padEnd(24)} ${(100 * e.recovered).toFixed(1).padStart(8)}% ${e.pulses.toFixed(0).padStart(8)} ${(e.energyPJ / 1e6).toFixed(3).padStart(9)}`);
    }
  }
  console.log(lines.join('\n'));
  const file = path.join(root, 'bench', flag('--out', 'insitu_rules.json'));
  writeJsonAtomic(file, { date: new Date().toISOString(), cpus: os.cpus().length, seeds, insituSamples: Number(insituSamples), testSamples: testSamples ? Number(testSamples) : 'all', summary, rows });
  console.log(`wrote ${path.relative(process.cwd(), file)}`);
}

main().catch((e) => {
  console.error(e instanceof Error ? e.message : e);
  process.exit(1);
});
