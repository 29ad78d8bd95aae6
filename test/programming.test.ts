import { DeviceConfig, variedWindow } from '../src/device/config';
import {
  DeviceInstances,
  STUCK_AT_GMAX,
  STUCK_AT_GMIN,
  applyPulses,
  combineReports,
  drift,
  formatProgrammingReport,
  initialConductances,
  levelValues,
  nominalInstances,
  programmingReport,
  pulseCell,
  pulsesForChange,
  quantizeToLevels,
  readConductance,
  sampleDeviceInstances,
  subInstances,
  writeVerify,
} from '../src/programming';
import { SeededRandom } from '../src/random';
import { device } from './helpers';

/** A preset with changes, as a fresh object. */

/** A clean device: no variation, faults or noise (each test turns on what it checks). */
function clean(change: (c: DeviceConfig) => void = () => {}): DeviceConfig {
  return device('park2024', (c) => {
    c.variation = { rOnSigma: 0, rOffSigma: 0, stepSigma: 0 };
    c.faults = { stuckAtGMin: 0, stuckAtGMax: 0 };
    c.read.noiseSigma = 0;
    c.pulse.c2cSigma = 0;
    c.drift = { nu: 0, nuSigma: 0, t0: 1 };
    change(c);
  });
}

function meanStd(xs: ArrayLike<number>): { mean: number; std: number } {
  let s = 0;
  for (let i = 0; i < xs.length; i++) s += xs[i];
  const mean = s / xs.length;
  let v = 0;
  for (let i = 0; i < xs.length; i++) v += (xs[i] - mean) ** 2;
  return { mean, std: Math.sqrt(v / (xs.length - 1)) };
}

function uniformTargets(cfg: DeviceConfig, n: number, rng: SeededRandom): Float32Array {
  return new Float32Array(n).map(() => cfg.gMin + (cfg.gMax - cfg.gMin) * rng.next());
}

describe('device instances', () => {
  test('stuck-at rates within statistical tolerance', () => {
    const cfg = clean((c) => (c.faults = { stuckAtGMin: 0.02, stuckAtGMax: 0.03 }));
    const n = 200000;
    const inst = sampleDeviceInstances(cfg, n, new SeededRandom(7));
    let atMin = 0;
    let atMax = 0;
    let other = 0;
    for (let i = 0; i < n; i++) {
      if (inst.stuck[i] === STUCK_AT_GMIN) atMin++;
      else if (inst.stuck[i] === STUCK_AT_GMAX) atMax++;
      else if (inst.stuck[i] !== 0) other++;
    }
    expect(other).toBe(0);
    // binomial: 5 standard deviations
    expect(Math.abs(atMin - 0.02 * n)).toBeLessThan(5 * Math.sqrt(n * 0.02 * 0.98));
    expect(Math.abs(atMax - 0.03 * n)).toBeLessThan(5 * Math.sqrt(n * 0.03 * 0.97));
    expect(atMin).toBeGreaterThan(0);
  });

  test('d2d: lognormal R_ON and R_OFF with the configured sigma, truncated at 4 sigma', () => {
    const cfg = clean((c) => (c.variation = { rOnSigma: 0.15, rOffSigma: 0.08, stepSigma: 0.25 }));
    const n = 100000;
    const inst = sampleDeviceInstances(cfg, n, new SeededRandom(11));
    const lnOn = new Float64Array(n).map((_, i) => Math.log(cfg.gMax / inst.gMaxCell[i])); // = ln(R_ON / R_ON0)
    const lnOff = new Float64Array(n).map((_, i) => Math.log(cfg.gMin / inst.gMinCell[i]));
    const lnStep = new Float64Array(n).map((_, i) => Math.log(inst.stepScale[i]));
    for (const [xs, sigma] of [[lnOn, 0.15], [lnOff, 0.08], [lnStep, 0.25]] as const) {
      const { mean, std } = meanStd(xs);
      expect(Math.abs(mean)).toBeLessThan((5 * sigma) / Math.sqrt(n));
      expect(std / sigma).toBeGreaterThan(0.98);
      expect(std / sigma).toBeLessThan(1.02);
      let maxAbs = 0;
      for (const x of xs) maxAbs = Math.max(maxAbs, Math.abs(x));
      expect(maxAbs).toBeLessThanOrEqual(4 * sigma + 1e-6);
      expect(maxAbs).toBeGreaterThan(3 * sigma); // the tails are there
    }
    const w = variedWindow(cfg);
    for (let i = 0; i < n; i++) {
      if (!(inst.gMinCell[i] < inst.gMaxCell[i])) throw new Error(`cell ${i}: its window is closed`);
      if (inst.gMinCell[i] < Math.fround(w.lo) || inst.gMaxCell[i] > Math.fround(w.hi)) throw new Error(`cell ${i} outside the varied window`);
    }
  });

  test('drift exponents: normal, clipped at 0', () => {
    const cfg = clean((c) => (c.drift = { nu: 0.05, nuSigma: 0.02, t0: 1 }));
    const inst = sampleDeviceInstances(cfg, 50000, new SeededRandom(3));
    const { mean, std } = meanStd(inst.nu);
    expect(mean).toBeCloseTo(0.05, 3);
    expect(std).toBeGreaterThan(0.0195);
    expect(std).toBeLessThan(0.0205);
    expect(Math.min(...inst.nu)).toBeGreaterThanOrEqual(0);
  });

  test('seeded: the same seed gives the same cells, another seed others; the forks are independent', () => {
    const cfg = device('yao2020');
    const a = sampleDeviceInstances(cfg, 5000, new SeededRandom(5));
    const b = sampleDeviceInstances(cfg, 5000, new SeededRandom(5));
    const c = sampleDeviceInstances(cfg, 5000, new SeededRandom(6));
    expect(b).toEqual(a);
    expect(Array.from(c.gMaxCell)).not.toEqual(Array.from(a.gMaxCell));
    // more stuck cells: the d2d draws stay the same
    const more = sampleDeviceInstances(device('yao2020', (x) => (x.faults.stuckAtGMax = 0.2)), 5000, new SeededRandom(5));
    expect(more.gMaxCell).toEqual(a.gMaxCell);
    expect(more.gMinCell).toEqual(a.gMinCell);
    // two draws from one rng differ
    const rng = new SeededRandom(5);
    const first = sampleDeviceInstances(cfg, 100, rng);
    const second = sampleDeviceInstances(cfg, 100, rng);
    expect(Array.from(second.gMaxCell)).not.toEqual(Array.from(first.gMaxCell));
  });

  test('nominal cells, sub-ranges as views, initial state', () => {
    const cfg = device('yao2020', (c) => (c.faults = { stuckAtGMin: 0.3, stuckAtGMax: 0.3 }));
    const nom = nominalInstances(cfg, 4);
    expect(Array.from(nom.gMinCell)).toEqual([2, 2, 2, 2]);
    expect(Array.from(nom.gMaxCell)).toEqual([20, 20, 20, 20]);
    const inst = sampleDeviceInstances(cfg, 1000, new SeededRandom(1));
    const sub = subInstances(inst, 100, 50);
    expect(sub.count).toBe(50);
    expect(sub.gMaxCell[3]).toBe(inst.gMaxCell[103]);
    expect(sub.gMaxCell.buffer).toBe(inst.gMaxCell.buffer);
    expect(() => subInstances(inst, 990, 20)).toThrow('cells [990, 1010) are outside the 1000 cells');
    const g0 = initialConductances(inst);
    for (let i = 0; i < 1000; i++) expect(g0[i]).toBe(inst.stuck[i] === STUCK_AT_GMAX ? inst.gMaxCell[i] : inst.gMinCell[i]);
  });
});

describe('pulse model', () => {
  test('soft bounds: the step shrinks towards the bound it pushes to, exactly as documented', () => {
    const cfg = clean(); // park window 10..100, dgSet 4, dgReset 5
    const inst = nominalInstances(cfg, 3);
    const rng = new SeededRandom(1);
    const g = new Float32Array([10, 32.5, 77.5]); // x = 0, 0.25, 0.75
    applyPulses(g, [1, 1, -1], cfg, inst, rng);
    expect(g[0]).toBeCloseTo(10 + 4, 5);
    expect(g[1]).toBeCloseTo(32.5 + 4 * 0.75, 5);
    expect(g[2]).toBeCloseTo(77.5 - 5 * 0.75, 5);
    // at the bounds the pushing step is zero
    const h = new Float32Array([100, 10]);
    applyPulses(h, [1, -1], cfg, nominalInstances(cfg, 2), rng);
    expect(Array.from(h)).toEqual([100, 10]);
  });

  test('constant step: the same step everywhere, clipped at the bounds', () => {
    const cfg = clean((c) => (c.pulse.model = 'constantStep'));
    const g = new Float32Array([10, 55, 98, 12]);
    applyPulses(g, [1, 1, 1, -1], cfg, nominalInstances(cfg, 4), new SeededRandom(1));
    expect(Array.from(g)).toEqual([14, 59, 100, 10]);
  });

  test('up/down asymmetry: a SET then a RESET does not come back', () => {
    const cfg = clean();
    const g = new Float32Array([55]);
    const inst = nominalInstances(cfg, 1);
    applyPulses(g, [1], cfg, inst, new SeededRandom(1));
    const up = g[0] - 55; // 4 * 0.5 = 2
    applyPulses(g, [-1], cfg, inst, new SeededRandom(1));
    const down = g[0] - (55 + up); // -5 * (57 - 10) / 90
    expect(up).toBeCloseTo(2, 5);
    expect(down).toBeCloseTo((-5 * 47) / 90, 5);
    expect(g[0]).toBeLessThan(55);
  });

  test('cycle-to-cycle noise: mean and sigma of the steps', () => {
    const cfg = clean((c) => (c.pulse.c2cSigma = 0.3));
    const n = 100000;
    const g = new Float32Array(n).fill(55);
    applyPulses(g, new Int8Array(n).fill(1), cfg, nominalInstances(cfg, n), new SeededRandom(9));
    const steps = new Float64Array(n).map((_, i) => g[i] - 55);
    const { mean, std } = meanStd(steps);
    // nominal step 2 uS, sigma 0.3 * 2 = 0.6 uS
    expect(Math.abs(mean - 2)).toBeLessThan((5 * 0.6) / Math.sqrt(n));
    expect(std).toBeGreaterThan(0.6 * 0.98);
    expect(std).toBeLessThan(0.6 * 1.02);
  });

  test('bounds are never crossed, with large noisy steps and varied cells', () => {
    const cfg = clean((c) => {
      c.pulse = { model: 'constantStep', dgSet: 60, dgReset: 70, c2cSigma: 1.5 };
      c.variation = { rOnSigma: 0.2, rOffSigma: 0.2, stepSigma: 0.5 };
    });
    const n = 4000;
    const rng = new SeededRandom(4);
    const inst = sampleDeviceInstances(cfg, n, rng);
    const g = initialConductances(inst);
    const pulses = new Int8Array(n);
    let hitTop = 0;
    let hitBottom = 0;
    for (let round = 0; round < 60; round++) {
      for (let i = 0; i < n; i++) pulses[i] = rng.int(3) - 1;
      applyPulses(g, pulses, cfg, inst, rng);
      for (let i = 0; i < n; i++) {
        if (g[i] < inst.gMinCell[i] || g[i] > inst.gMaxCell[i]) throw new Error(`cell ${i} left its window: ${g[i]}`);
        if (g[i] === inst.gMaxCell[i]) hitTop++;
        if (g[i] === inst.gMinCell[i]) hitBottom++;
      }
    }
    expect(hitTop).toBeGreaterThan(1000); // the clipping is exercised
    expect(hitBottom).toBeGreaterThan(1000);
  });

  test('soft bounds saturate: repeated SETs rise ever more slowly and stay below the bound', () => {
    const cfg = clean();
    const g = new Float32Array([10]);
    const inst = nominalInstances(cfg, 1);
    const rng = new SeededRandom(1);
    let last = 10;
    let lastStep = Infinity;
    for (let k = 0; k < 300; k++) {
      pulseCell(g, 0, 1, cfg, inst, rng);
      const step = g[0] - last;
      expect(step).toBeGreaterThanOrEqual(0);
      expect(step).toBeLessThanOrEqual(lastStep + 1e-5);
      lastStep = step;
      last = g[0];
    }
    // closed form: 100 - 90 (1 - 4/90)^300
    expect(g[0]).toBeCloseTo(100 - 90 * Math.pow(1 - 4 / 90, 300), 3);
    expect(g[0]).toBeLessThanOrEqual(100);
  });

  test('pulse counts: +n SET pulses, -n RESET pulses, the same as n single pulses', () => {
    const cfg = clean((c) => (c.pulse.c2cSigma = 0.2));
    const inst = nominalInstances(cfg, 3);
    const a = new Float32Array([20, 50, 80]);
    applyPulses(a, [3, 0, -2], cfg, inst, new SeededRandom(2));
    const b = new Float32Array([20, 50, 80]);
    const rng = new SeededRandom(2);
    for (let k = 0; k < 3; k++) pulseCell(b, 0, 1, cfg, inst, rng);
    for (let k = 0; k < 2; k++) pulseCell(b, 2, -1, cfg, inst, rng);
    expect(a).toEqual(b);
    expect(a[0]).toBeGreaterThan(25);
    expect(a[1]).toBe(50);
    expect(a[2]).toBeLessThan(75);
    expect(() => applyPulses(a, [1, 1], cfg, inst, rng)).toThrow('pulses has 2 cells but the device instances have 3');
  });

  test('stuck cells do not move', () => {
    const cfg = clean((c) => (c.faults = { stuckAtGMin: 0.5, stuckAtGMax: 0.5 }));
    const inst = sampleDeviceInstances(cfg, 200, new SeededRandom(1));
    const g = initialConductances(inst);
    const before = g.slice();
    applyPulses(g, new Int8Array(200).map((_, i) => (i % 2 ? 5 : -5)), cfg, inst, new SeededRandom(1));
    expect(g).toEqual(before);
  });
});

describe('pulsesForChange (in-situ updates)', () => {
  test('soft bounds: the counts, applied without noise, land within one step of G + dG', () => {
    const cfg = clean((c) => (c.variation.stepSigma = 0.3));
    const n = 3000;
    const rng = new SeededRandom(21);
    const inst = sampleDeviceInstances(cfg, n, rng);
    const g = new Float32Array(n).map((_, i) => inst.gMinCell[i] + (inst.gMaxCell[i] - inst.gMinCell[i]) * (0.1 + 0.8 * rng.next()));
    const dG = new Float32Array(n).map((_, i) => {
      const room = rng.next() < 0.5 ? -(g[i] - inst.gMinCell[i]) : inst.gMaxCell[i] - g[i];
      return room * 0.8 * rng.next();
    });
    const counts = pulsesForChange(g, dG, cfg, inst, { maxCount: 1000 });
    const after = applyPulses(g.slice(), counts, cfg, inst, rng);
    let nonzero = 0;
    for (let i = 0; i < n; i++) {
      if (counts[i] !== 0) nonzero++;
      expect(Math.sign(counts[i]) * Math.sign(dG[i])).toBeGreaterThanOrEqual(0);
      const w = inst.gMaxCell[i] - inst.gMinCell[i];
      const maxStep = (Math.max(cfg.pulse.dgSet, cfg.pulse.dgReset) * inst.stepScale[i]) / 2; // rounding: half a step at most
      if (Math.abs(after[i] - (g[i] + dG[i])) > maxStep + 1e-4 * w) throw new Error(`cell ${i}: ${g[i]} + ${dG[i]} -> ${after[i]} with ${counts[i]} pulses`);
    }
    expect(nonzero).toBeGreaterThan(n * 0.8);
  });

  test('constant steps, threshold, stuck cells, bounds, cap', () => {
    const cfg = clean((c) => (c.pulse.model = 'constantStep')); // dgSet 4, dgReset 5
    const inst = nominalInstances(cfg, 6);
    (inst.stuck as Uint8Array)[3] = STUCK_AT_GMIN;
    const g = new Float32Array([50, 50, 50, 50, 98, 50]);
    const counts = pulsesForChange(g, [10, -10, 1, 20, 10, 400], cfg, inst, { threshold: 1.5, maxCount: 50 });
    // 10/4 = 2.5 -> 3; -10/5 = 2; below the threshold; stuck; 2 uS of room / 4 = 0.5 -> 1; 50 uS of room / 4 = 12.5 -> 13
    expect(Array.from(counts)).toEqual([3, -2, 0, 0, 1, 13]);
    expect(Array.from(pulsesForChange(g, [400, 0, 0, 0, 0, 0], cfg, inst, { maxCount: 5 }))).toEqual([5, 0, 0, 0, 0, 0]);
    // soft bounds: a cell at its bound gets no pulse the way it cannot go
    const soft = clean();
    expect(Array.from(pulsesForChange(new Float32Array([100, 10]), [5, -5], soft, nominalInstances(soft, 2)))).toEqual([0, 0]);
  });
});

describe('reads, drift, levels', () => {
  test('read noise: relative sigma, a new draw at every read, none when sigma is 0', () => {
    const cfg = clean((c) => (c.read.noiseSigma = 0.05));
    const n = 100000;
    const g = new Float32Array(n).fill(40);
    const rng = new SeededRandom(1);
    const r1 = readConductance(g, cfg, rng);
    const r2 = readConductance(g, cfg, rng);
    const { mean, std } = meanStd(r1);
    expect(Math.abs(mean - 40)).toBeLessThan((5 * 2) / Math.sqrt(n));
    expect(std).toBeGreaterThan(2 * 0.98);
    expect(std).toBeLessThan(2 * 1.02);
    expect(r2).not.toEqual(r1);
    expect(readConductance(g, clean(), rng)).toEqual(g);
  });

  test('drift follows G (t/t0)^-nu, floors at the cell gMin, leaves stuck cells', () => {
    const cfg = clean((c) => (c.drift = { nu: 0.1, nuSigma: 0, t0: 10 }));
    const inst = nominalInstances(cfg, 3);
    (inst.stuck as Uint8Array)[2] = STUCK_AT_GMAX;
    const g = new Float32Array([80, 11, 100]);
    expect(drift(g, cfg, 5, inst)).toEqual(g); // before t0: unchanged
    const d = drift(g, cfg, 1000, inst);
    expect(d[0]).toBeCloseTo(80 * Math.pow(100, -0.1), 4);
    expect(d[1]).toBe(10); // 11 * 0.63 = 6.9 would be below gMin = 10
    expect(d[2]).toBe(100);
    // consistent over time: the cells' own nu
    const later = drift(g, cfg, 1e5, inst);
    expect(later[0]).toBeCloseTo(80 * Math.pow(1e4, -0.1), 4);
    // with a rng: nu drawn now
    const cfg2 = clean((c) => (c.drift = { nu: 0.1, nuSigma: 0.02, t0: 1 }));
    const many = new Float32Array(20000).fill(90);
    const dd = drift(many, cfg2, Math.E, new SeededRandom(1)); // ln(t/t0) = 1: G e^-nu
    const nus = new Float64Array(dd.length).map((_, i) => -Math.log(dd[i] / 90));
    const { mean, std } = meanStd(nus);
    expect(mean).toBeCloseTo(0.1, 3);
    expect(std).toBeCloseTo(0.02, 3);
  });

  test('levels: equally spaced, targets rounded to the nearest, clipped to the window', () => {
    const cfg = device('yao2020'); // 8 levels, 2..20 uS
    const lv = levelValues(cfg)!;
    expect(lv.length).toBe(8);
    for (let k = 0; k < 8; k++) expect(lv[k]).toBeCloseTo(2 + (18 / 7) * k, 5);
    const q = quantizeToLevels(new Float32Array([0, 2, 3.2, 3.4, 19, 19.99, 25, 11.5]), cfg);
    expect(Array.from(q)).toEqual([2, 2, 2, lv[1], 20, 20, 20, lv[4]]);
    expect(levelValues(device('ideal'))).toBeNull();
    expect(Array.from(quantizeToLevels(new Float32Array([-1, 33.3, 120]), device('ideal')))).toEqual([0, Math.fround(33.3), 100]);
    expect(() => quantizeToLevels(new Float32Array([NaN]), cfg)).toThrow('target 0 is NaN');
  });
});

describe('writeVerify', () => {
  test('without noise every cell converges within tolerance, within the pulse limit', () => {
    const cfg = clean((c) => (c.pulse.c2cSigma = 0.2));
    const n = 5000;
    const rng = new SeededRandom(1);
    const targets = uniformTargets(cfg, n, rng);
    const inst = sampleDeviceInstances(cfg, n, rng);
    const r = writeVerify(targets, cfg, inst, rng);
    expect(r.toleranceUS).toBeCloseTo(4.5, 10);
    let maxErr = 0;
    for (let i = 0; i < n; i++) {
      expect(r.converged[i]).toBe(1);
      maxErr = Math.max(maxErr, Math.abs(r.programmed[i] - targets[i]));
      expect(r.pulses[i]).toBeLessThanOrEqual(cfg.writeVerify.maxPulses);
    }
    expect(maxErr).toBeLessThanOrEqual(4.5 + 1e-5);
    const rep = programmingReport(targets, r, inst);
    expect(rep.outsideTolerance).toBe(0);
    expect(rep.notConverged).toBe(0);
    expect(rep.meanPulses).toBeGreaterThan(5);
    // a tighter tolerance costs more pulses and gives smaller errors
    const tight = writeVerify(targets, cfg, inst, new SeededRandom(1), { tolerance: 0.01 });
    const tightRep = programmingReport(targets, tight, inst);
    expect(tightRep.meanPulses).toBeGreaterThan(rep.meanPulses);
    expect(tightRep.meanAbsError).toBeLessThan(rep.meanAbsError);
    // a 1% band (0.9 uS) is narrower than the first SET step (4 uS): some cells oscillate to the limit
    let notConverged = 0;
    for (let i = 0; i < n; i++) {
      if (tight.converged[i]) expect(Math.abs(tight.programmed[i] - targets[i])).toBeLessThanOrEqual(0.9 + 1e-5);
      else {
        notConverged++;
        expect(tight.pulses[i]).toBe(100);
      }
    }
    expect(tightRep.notConverged).toBe(notConverged);
    expect(notConverged).toBeLessThan(n / 10);
  });

  test('a target unreachable within maxPulses stops at the limit, not converged', () => {
    const cfg = clean();
    const n = 10;
    const targets = new Float32Array(n).fill(100);
    const r = writeVerify(targets, cfg, nominalInstances(cfg, n), new SeededRandom(1), { maxPulses: 5 });
    for (let i = 0; i < n; i++) {
      expect(r.pulses[i]).toBe(5);
      expect(r.converged[i]).toBe(0);
      // five noiseless soft-bound SET pulses from 10: 100 - 90 (1 - 4/90)^5
      expect(r.programmed[i]).toBeCloseTo(100 - 90 * Math.pow(1 - 4 / 90, 5), 4);
    }
    const zero = writeVerify(targets, cfg, nominalInstances(cfg, n), new SeededRandom(1), { maxPulses: 0 });
    expect(Array.from(zero.pulses)).toEqual(new Array(n).fill(0));
    expect(Array.from(zero.programmed)).toEqual(new Array(n).fill(10));
  });

  test("a target outside a cell's own window takes all the pulses", () => {
    const cfg = clean((c) => (c.variation.rOnSigma = 0.2));
    const n = 2000;
    const rng = new SeededRandom(3);
    const inst = sampleDeviceInstances(cfg, n, rng);
    const targets = new Float32Array(n).fill(100);
    const r = writeVerify(targets, cfg, inst, rng);
    let unreachable = 0;
    let converged = 0;
    for (let i = 0; i < n; i++) {
      if (inst.gMaxCell[i] < 100 - 4.5) {
        unreachable++;
        expect(r.converged[i]).toBe(0);
        expect(r.pulses[i]).toBe(100);
        expect(r.programmed[i]).toBeLessThanOrEqual(inst.gMaxCell[i]);
      }
      if (r.converged[i]) {
        converged++;
        expect(r.programmed[i]).toBeGreaterThanOrEqual(100 - 4.5);
      }
    }
    expect(unreachable).toBeGreaterThan(300); // P(z > 0.23) = 0.41 of the cells
    expect(converged).toBeGreaterThan(n / 4);
  });

  test('stuck cells stay stuck, take pulses when off target, and are counted', () => {
    const cfg = clean((c) => (c.faults = { stuckAtGMin: 0.05, stuckAtGMax: 0.05 }));
    const n = 4000;
    const rng = new SeededRandom(8);
    const inst = sampleDeviceInstances(cfg, n, rng);
    const targets = new Float32Array(n).fill(55);
    const r = writeVerify(targets, cfg, inst, rng);
    let stuck = 0;
    for (let i = 0; i < n; i++) {
      if (inst.stuck[i] === STUCK_AT_GMIN) expect(r.programmed[i]).toBe(inst.gMinCell[i]);
      if (inst.stuck[i] === STUCK_AT_GMAX) expect(r.programmed[i]).toBe(inst.gMaxCell[i]);
      if (inst.stuck[i]) {
        stuck++;
        expect(r.pulses[i]).toBe(100);
        expect(r.converged[i]).toBe(0);
      } else expect(r.converged[i]).toBe(1);
    }
    const rep = programmingReport(targets, r, inst);
    expect(rep.stuck).toBe(stuck);
    expect(rep.stuckAtGMin + rep.stuckAtGMax).toBe(stuck);
    expect(rep.outsideTolerance).toBe(stuck);
    expect(rep.notConverged).toBe(stuck);
    expect(rep.maxAbsError).toBeCloseTo(45, 4);
    expect(stuck).toBeGreaterThan(300);
  });

  test('with read noise, the verify judges by noisy reads: errors grow past the tolerance for some cells', () => {
    const cfg = clean((c) => (c.read.noiseSigma = 0.02));
    const n = 5000;
    const rng = new SeededRandom(2);
    const targets = uniformTargets(cfg, n, rng);
    const r = writeVerify(targets, cfg, nominalInstances(cfg, n), rng);
    const rep = programmingReport(targets, r, nominalInstances(cfg, n));
    expect(rep.notConverged).toBe(0);
    expect(rep.outsideTolerance).toBeGreaterThan(0);
    expect(rep.outsideTolerance).toBeLessThan(n / 2);
    expect(rep.meanAbsError).toBeLessThan(4.5);
  });

  test('seeded: the same seed programs the same, another seed differently', () => {
    const cfg = device('yao2020');
    const n = 3000;
    const targets = quantizeToLevels(uniformTargets(cfg, n, new SeededRandom(0)), cfg);
    const run = (seed: number) => {
      const rng = new SeededRandom(seed);
      const inst = sampleDeviceInstances(cfg, n, rng.fork('cells'));
      return writeVerify(targets, cfg, inst, rng.fork('tuning'));
    };
    const a = run(1);
    const b = run(1);
    const c = run(2);
    expect(b.programmed).toEqual(a.programmed);
    expect(b.pulses).toEqual(a.pulses);
    expect(b.converged).toEqual(a.converged);
    expect(Array.from(c.programmed)).not.toEqual(Array.from(a.programmed));
  });

  test('exact mode (the ideal device) gives the targets exactly, without pulses', () => {
    const cfg = device('ideal');
    const n = 1000;
    const rng = new SeededRandom(1);
    const targets = uniformTargets(cfg, n, rng);
    const r = writeVerify(targets, cfg, sampleDeviceInstances(cfg, n, rng), rng);
    expect(r.programmed).toEqual(targets);
    expect(r.programmed).not.toBe(targets);
    expect(Array.from(r.pulses).every((p) => p === 0)).toBe(true);
    expect(Array.from(r.converged).every((c) => c === 1)).toBe(true);
  });

  test('re-tuning from a programmed state: startFrom', () => {
    const cfg = clean();
    const n = 500;
    const rng = new SeededRandom(1);
    const targets = uniformTargets(cfg, n, rng);
    const inst = nominalInstances(cfg, n);
    const first = writeVerify(targets, cfg, inst, rng);
    const again = writeVerify(targets, cfg, inst, rng, { startFrom: first.programmed });
    expect(again.programmed).toEqual(first.programmed);
    expect(Array.from(again.pulses).every((p) => p === 0)).toBe(true);
    const clipped = writeVerify(new Float32Array([200]), cfg, nominalInstances(cfg, 1), rng, { startFrom: new Float32Array([500]), maxPulses: 0 });
    expect(clipped.programmed[0]).toBe(100);
  });

  test('reports: per range, combined, printable', () => {
    const cfg = device('yao2020');
    const n = 2000;
    const rng = new SeededRandom(4);
    const targets = quantizeToLevels(uniformTargets(cfg, n, rng), cfg);
    const inst = sampleDeviceInstances(cfg, n, rng);
    const r = writeVerify(targets, cfg, inst, rng);
    const whole = programmingReport(targets, r, inst);
    const parts = [programmingReport(targets, r, inst, { start: 0, count: 700 }), programmingReport(targets, r, inst, { start: 700, count: 1300 })];
    const comb = combineReports(parts);
    expect(comb.cells).toBe(2000);
    expect(comb.totalPulses).toBe(whole.totalPulses);
    expect(comb.maxPulses).toBe(whole.maxPulses);
    expect(comb.outsideTolerance).toBe(whole.outsideTolerance);
    expect(comb.stuck).toBe(whole.stuck);
    expect(comb.meanAbsError).toBeCloseTo(whole.meanAbsError, 10);
    expect(comb.maxAbsError).toBe(whole.maxAbsError);
    // the numbers themselves
    let sum = 0;
    let pulses = 0;
    for (let i = 0; i < n; i++) {
      sum += Math.abs(r.programmed[i] - targets[i]);
      pulses += r.pulses[i];
    }
    expect(whole.meanAbsError).toBeCloseTo(sum / n, 10);
    expect(whole.totalPulses).toBe(pulses);
    expect(whole.meanPulses).toBe(pulses / n);
    expect(formatProgrammingReport('conv1', whole)).toMatch(/^conv1: 2000 cells, \|G - target\| mean [\d.]+ max [\d.]+ uS, pulses mean [\d.]+ max \d+, outside tolerance \(0\.9 uS\) \d+, not converged \d+, stuck \d+ \(\d+ at gMin, \d+ at gMax\)$/);
  });

  test("programming Yao's mcnn (~6,000 cells) and four replicas (25,000): fewer than 5% not converged", () => {
    // (its speed is measured by `npm run bench`)
    const cfg = device('yao2020');
    for (const n of [6000, 25000]) {
      const rng = new SeededRandom(1);
      const targets = quantizeToLevels(uniformTargets(cfg, n, rng), cfg);
      const inst: DeviceInstances = sampleDeviceInstances(cfg, n, rng);
      const r = writeVerify(targets, cfg, inst, rng);
      const rep = programmingReport(targets, r, inst);
      expect(rep.cells).toBe(n);
      expect(rep.notConverged).toBeLessThan(0.05 * n);
    }
  });

});
