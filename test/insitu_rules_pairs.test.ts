// The pair-aware rule's pulse arithmetic on single differential pairs, against hand computations
// (training/insitu_rules.ts): each pair's weight change is re-split between G+ and G- by the step
// one pulse of the needed polarity makes on each, then transferred as tiki-taka does.
import { DeviceConfig } from '../src/device/config';
import { nominalInstances } from '../src/programming';
import { CellPairs, PulseController, InsituRule } from '../training/insitu_rules';
import { softDevice, unitStepDevice } from './helpers';

function controller(cfg: DeviceConfig, g0: number[], rule: InsituRule, pairs: CellPairs | null): PulseController {
  const settings = { rule, threshold: 0, momentum: 0, transferEvery: 1, rounding: null, maxPulses: 100 };
  return new PulseController(cfg, nominalInstances(cfg, g0.length), Float32Array.from(g0), settings, pairs);
}

const pairs = (plus: number[], minus: number[]): CellPairs => ({ plus: Int32Array.from(plus), minus: Int32Array.from(minus) });

describe('pair-aware: the change of a pair goes to its cells by the steps they make', () => {
  test('soft bounds: a cell at its lower bound leaves the change to its partner', () => {
    // Pair 0: G+ = 2, G- = 0, weight change g = +1 (insitu.ts hands +0.5, -0.5). A SET on G+ moves
    // 1 (1 - 0.2) = 0.8, a RESET on G- moves 0: G+ gets all of g. A+ = 1 is 1.27 pulses' worth at
    // G = 2 (ln(7/8) / ln(0.9)): one SET fires, A+ = 1 - 0.8 = 0.2, G+^ = 2.8; G- has nothing.
    // Pair 1: G+ = 2.5, G- = 0, g = -3 (-1.5, +1.5). A RESET on G+ moves 2 x 0.25 = 0.5, a SET on G-
    // moves 1: G+ gets -3 x 0.5 / 1.5 = -1, G- gets +2. A+ = -1 is ln(1.5/2.5) / ln(0.8) = 2.29
    // pulses: one RESET, A+ = -1 + 0.5 = -0.5, G+^ = 2; A- = 2 is ln(8/10) / ln(0.9) = 2.12: one
    // SET, A- = 1, G-^ = 1.
    const c = controller(softDevice(), [2, 0, 2.5, 0], 'pair-aware', pairs([0, 2], [1, 3]));
    expect(Array.from(c.pulses([0.5, -0.5, -1.5, 1.5]))).toEqual([1, 0, -1, 1]);
    const A = Array.from(c.memory!);
    [0.2, 0, -0.5, 1].forEach((v, i) => expect(A[i]).toBeCloseTo(v, 5));
    [2.8, 0, 2, 1].forEach((v, i) => expect(c.gEst[i]).toBeCloseTo(v, 5));
  });

  test('tiki-taka on the same cells splits evenly: G+ holds 0.5 (0.61 pulses, none fires), G- at its bound keeps nothing', () => {
    const c = controller(softDevice(), [2, 0], 'tiki-taka', pairs([0], [1]));
    expect(Array.from(c.pulses([0.5, -0.5]))).toEqual([0, 0]);
    expect(c.memory![0]).toBeCloseTo(0.5, 6);
    expect(c.memory![1]).toBeCloseTo(0, 6);
  });

  test('equal steps keep the even split; a constant-step cell at its bound (a step clipped to 0) takes none', () => {
    // unit steps, G+ = G- = 5: +1 -> +0.5 / -0.5, no pulse; twice more -> 1.5 / -1.5: one pulse each
    const c = controller(unitStepDevice(), [5, 5], 'pair-aware', pairs([0], [1]));
    expect(Array.from(c.pulses([0.5, -0.5]))).toEqual([0, 0]);
    expect(Array.from(c.pulses([0.5, -0.5]))).toEqual([1, -1]);
    expect(c.memory![0]).toBeCloseTo(0, 6);
    expect(c.memory![1]).toBeCloseTo(0, 6);
    // G+ = 5, G- = 0: g = +1 goes to G+ alone, one SET pulse
    const d = controller(unitStepDevice(), [5, 0], 'pair-aware', pairs([0], [1]));
    expect(Array.from(d.pulses([0.5, -0.5]))).toEqual([1, 0]);
    expect(d.gEst[0]).toBeCloseTo(6, 6);
    expect(d.gEst[1]).toBeCloseTo(0, 6);
  });

  test('the pair order matters: G- first in the cells, plus/minus name them', () => {
    // cells [G-, G+] = [0, 5]; g = +1 on the pair (u = [-0.5, +0.5]): all to G+ (cell 1)
    const c = controller(unitStepDevice(), [0, 5], 'pair-aware', pairs([1], [0]));
    expect(Array.from(c.pulses([-0.5, 0.5]))).toEqual([0, 1]);
  });

  test('without pairs it is tiki-taka; bad pairs are refused', () => {
    const a = controller(softDevice(), [2, 0], 'pair-aware', null);
    const b = controller(softDevice(), [2, 0], 'tiki-taka', null);
    for (const u of [[0.5, -0.5], [0.7, -0.7], [-2, 2]]) expect(Array.from(a.pulses(u))).toEqual(Array.from(b.pulses(u)));
    expect(() => controller(softDevice(), [2, 0], 'pair-aware', pairs([0], [0]))).toThrow(/pair 0/);
    expect(() => controller(softDevice(), [2, 0], 'pair-aware', pairs([0], [2]))).toThrow(/pair 0/);
    expect(() => controller(softDevice(), [2, 0], 'pair-aware', pairs([0, 1], [1]))).toThrow(/pairs/);
  });
});
