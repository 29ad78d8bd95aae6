// The update rules' pulse arithmetic on single cells, against hand computations
// (training/insitu_rules.ts): mixed precision's accumulator and carry, tiki-taka's transfer period
// and one-pulse transfers, momentum, and the controller's model of the cells (nominal, not the
// cells' hidden parameters).
import { DeviceConfig, getPreset } from '../src/device/config';
import { SeededRandom } from '../src/random';
import { meanChange, nominalInstances, pulseCounts, sampleDeviceInstances } from '../src/programming';
import { PulseController, RuleSettings, InsituRule } from '../training/insitu_rules';
import { softDevice, unitStepDevice } from './helpers';

function controller(cfg: DeviceConfig, g0: number[], rule: InsituRule, extra: Partial<RuleSettings> = {}): PulseController {
  return new PulseController(cfg, nominalInstances(cfg, g0.length), Float32Array.from(g0), {
    rule,
    threshold: 0,
    momentum: 0,
    transferEvery: 1,
    rounding: null,
    maxPulses: 100,
    ...extra,
  });
}

/** Pulses of one cell for a sequence of wanted changes. */
function run(c: PulseController, changes: number[]): number[] {
  return changes.map((d) => c.pulses([d])[0]);
}

describe('mixed precision: accumulate, fire whole device steps, carry the rest', () => {
  test('unit steps: 0.4 + 0.4 + 0.4 fires one pulse on the third update, 0.2 stays; 2.5 fires two', () => {
    const c = controller(unitStepDevice(), [5], 'mixed-precision');
    expect(run(c, [0.4, 0.4, 0.4])).toEqual([0, 0, 1]);
    expect(c.memory![0]).toBeCloseTo(0.2, 6);
    expect(c.gEst[0]).toBeCloseTo(6, 6);
    expect(run(c, [2.5])).toEqual([2]);
    expect(c.memory![0]).toBeCloseTo(0.7, 6);
    // a RESET: -1.9 + 0.7 = -1.2 -> one RESET pulse, -0.2 left
    expect(run(c, [-1.9])).toEqual([-1]);
    expect(c.memory![0]).toBeCloseTo(-0.2, 6);
    expect(c.gEst[0]).toBeCloseTo(7, 6);
  });

  test('soft bounds: the step shrinks with G, and the carry is what the fired pulses did not make', () => {
    // from G = 0 the first SET step is 1, the second 0.9 (at G = 1): chi = 1.5 is 1.54 pulses, one fires
    const c = controller(softDevice(), [0], 'mixed-precision');
    expect(run(c, [1.5])).toEqual([1]);
    expect(c.memory![0]).toBeCloseTo(0.5, 6);
    expect(c.gEst[0]).toBeCloseTo(1, 6);
    // + 0.5 = 1.0 < 1.3 pulses' worth at G = 1 (steps 0.9, 0.81): one more, 1.0 - 0.9 = 0.1 left
    expect(run(c, [0.5])).toEqual([1]);
    expect(c.memory![0]).toBeCloseTo(0.1, 6);
    expect(c.gEst[0]).toBeCloseTo(1.9, 6);
    // a RESET from G = 1.9 is 2 x 0.19 = 0.38 uS: -0.5 + 0.1 = -0.4 -> one pulse, -0.02 left
    expect(run(c, [-0.5])).toEqual([-1]);
    expect(c.memory![0]).toBeCloseTo(-0.4 + 0.38, 6);
    expect(c.gEst[0]).toBeCloseTo(1.52, 6);
  });

  test('a change past the bound is not kept: the accumulator holds at most the room to the bound', () => {
    const c = controller(unitStepDevice(), [9.5], 'mixed-precision');
    expect(run(c, [3])).toEqual([0]); // 0.5 uS of room: less than a step
    expect(c.memory![0]).toBeCloseTo(0.5, 6);
    expect(run(c, [-1.2])).toEqual([0]); // 0.5 - 1.2 = -0.7
    expect(c.memory![0]).toBeCloseTo(-0.7, 6);
  });
});

describe('tiki-taka: a digital fast matrix, transferred a pulse at a time every K updates', () => {
  test('K = 3: 0.5 a update fires one pulse at updates 3 and 6 (1.5 -> 0.5 left, then 2.0 -> 1.0 left)', () => {
    const c = controller(unitStepDevice(), [5], 'tiki-taka', { transferEvery: 3 });
    expect(run(c, [0.5, 0.5, 0.5, 0.5, 0.5, 0.5])).toEqual([0, 0, 1, 0, 0, 1]);
    expect(c.memory![0]).toBeCloseTo(1.0, 6);
    expect(c.gEst[0]).toBeCloseTo(7, 6);
  });

  test('a transfer moves at most one pulse however much the fast matrix holds', () => {
    const c = controller(unitStepDevice(), [2], 'tiki-taka');
    expect(run(c, [3.5, 0, 0, 0])).toEqual([1, 1, 1, 0]);
    expect(c.memory![0]).toBeCloseTo(0.5, 6);
    expect(run(c, [-2])).toEqual([-1]);
    expect(c.memory![0]).toBeCloseTo(-0.5, 6);
  });
});

describe('momentum and the stateless rules', () => {
  test('momentum 0.5 with plain: v = 1, 1.5, 1.75 -> 1, 2, 2 pulses (to the nearest)', () => {
    const c = controller(unitStepDevice(), [2], 'plain', { momentum: 0.5 });
    expect(run(c, [1, 1, 1])).toEqual([1, 2, 2]);
    expect(c.gEst[0]).toBeCloseTo(7, 6);
  });

  test('momentum 0.5 with mixed precision: the velocity feeds the accumulator (0.6, 0.9 -> chi 0.6, 1.5 -> one pulse)', () => {
    const c = controller(unitStepDevice(), [2], 'mixed-precision', { momentum: 0.5 });
    expect(run(c, [0.6, 0.6])).toEqual([0, 1]);
    expect(c.memory![0]).toBeCloseTo(0.5, 6);
  });

  test('plain without memory: 0.4 three times fires nothing (to the nearest); manhattan: one pulse where |u| >= threshold', () => {
    expect(run(controller(unitStepDevice(), [5], 'plain'), [0.4, 0.4, 0.4])).toEqual([0, 0, 0]);
    expect(run(controller(unitStepDevice(), [5], 'manhattan', { threshold: 0.3 }), [0.4, 0.2, -3])).toEqual([1, 0, -1]);
  });

  test('bad settings are refused, naming the field', () => {
    expect(() => controller(unitStepDevice(), [5], 'plain', { momentum: 1 })).toThrow(/momentum/);
    expect(() => controller(unitStepDevice(), [5], 'tiki-taka', { transferEvery: 0 })).toThrow(/transferEvery/);
    expect(() => controller(unitStepDevice(), [5], 'sgd' as InsituRule)).toThrow(/rule/);
  });
});

describe("the controller's model of the cells", () => {
  test('pulse counts come from the model it is given: the nominal device, whatever the cells hidden parameters', () => {
    const cfg = getPreset('yao2020')!;
    const n = 200;
    const g = new Float32Array(n).fill(8);
    const dG = new Float32Array(n).fill(1.2);
    const nominal = controller(cfg, Array.from(g), 'plain').pulses(dG);
    // every cell asks the same count: the controller does not know which cell is which
    expect(new Set(nominal).size).toBe(1);
    const hidden = sampleDeviceInstances(cfg, n, new SeededRandom(3));
    const oracle = new PulseController(cfg, hidden, g, { rule: 'plain', threshold: 0, momentum: 0, transferEvery: 1, rounding: null, maxPulses: 100 }).pulses(dG);
    expect(new Set(oracle).size).toBeGreaterThan(1);
  });

  test('meanChange steps the model pulse by pulse and agrees with pulseCounts', () => {
    const cfg = softDevice();
    const inst = nominalInstances(cfg, 1);
    expect(meanChange(0, 2, cfg, inst, 0)).toBeCloseTo(1.9, 6);
    expect(meanChange(10, -1, cfg, inst, 0)).toBeCloseTo(-2, 6);
    const c = pulseCounts(Float32Array.of(0), [1.9], cfg, inst)[0];
    expect(c).toBeCloseTo(2, 6);
  });
});
