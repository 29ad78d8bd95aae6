// The in-situ update rules: the periphery's controller that turns the wanted conductance change of
// each cell into SET/RESET pulse counts. It knows only what a chip's controller knows: the device
// model (nominal or fitted; cells with the nominal window and step), the targets it programmed,
// and what it reads; a cell's own window, step scale and stuck state act only when the pulses are
// applied (training/insitu.ts). `oracle` hands it the hidden per-cell parameters instead: a
// labelled upper bound, not a chip.
//
// Per update, each cell's wanted change dG (uS) goes through momentum first, u = v = M v + dG
// (M = 0: u = dG), then the rule (G^ = the controller's estimate of the cell's conductance):
//   plain            n = the pulses the model needs to move G^ by u (pulseCounts), rounded
//                    (stochastically by default), where |u| >= threshold; no memory.
//   manhattan        n = sign(u) where |u| >= threshold (Yao et al.'s sign/threshold rule).
//   mixed-precision  chi += u (a float32 accumulator per cell, in the periphery: Nandakumar et al.
//                    2020); n = the whole pulses of the model's count for chi at G^ (truncated);
//                    chi -= the change those n pulses make on the model, so the remainder carries
//                    to the next update. chi is kept within the room the cell has towards its
//                    bounds (a change past a bound cannot be made).
//   tiki-taka        A += u every update (the fast matrix: digital, float32 in the periphery; the
//                    hardware versions use a second device pair); every `transferEvery` updates A
//                    is transferred to the slow array: n = at most one pulse per cell, of sign(A),
//                    where A holds at least one pulse's worth (TTv2's hidden buffer fires once);
//                    A -= that pulse's change on the model. The forward pass reads the slow array
//                    only (gamma = 0). A is kept within the room, as chi.
//   pair-aware       tiki-taka, after each differential pair's change is re-split between its two
//                    cells (insitu.ts splits the weight change g of a pair +g/2 on G+, -g/2 on G-):
//                    with s+ and s- the changes one pulse of the needed polarity makes on G+ and
//                    G- at their estimated G (the model's mean step, clipped to the window: g > 0
//                    wants SET on G+ and RESET on G-), G+ gets g s+ / (s+ + s-) and G- gets
//                    -g s- / (s+ + s-). Why: a transfer to 8 levels leaves about half the cells of
//                    a park2024 layer at gMin (a weight of +k levels is G+ = gMin + k, G- = gMin),
//                    where a RESET does nothing; the even split then makes only half of every
//                    change away from zero and all of every change towards it (a pull to zero the
//                    gradient does not ask for). Here the cell at its bound leaves the change to
//                    its partner (soft bounds: the split follows the room each cell has), and the
//                    two cells' fast-matrix entries reach one pulse's worth together, so a
//                    transfer (one pulse a cell) moves the pair by both steps rather than waiting
//                    on the cell with the small step. The pair's common mode moves (a soft-bounds
//                    pair settles where its SET and RESET steps match). Without pairs (a
//                    reference scheme) it is tiki-taka. bench/insitu_rules.ts, 3 seeds, lr 1:
//                    park2024 64.5% of the transfer loss recovered (plain 41.4%, tiki-taka
//                    47.0%), yao2020 91.1% (tiki-taka 86.9%); on the fitted few-level device
//                    71.0% (tiki-taka 79.5%: its large SET steps make the split coarse).
// After choosing n, G^ moves by the model's mean change of n pulses. `observe` replaces G^ by a
// read of the cells (the read's noise and energy are the caller's to count).
import type { DeviceConfig } from '../src/device/config';
import { ConfigError } from '../src/errors';
import { SeededRandom } from '../src/random';
import { DeviceInstances } from '../src/programming/instances';
import { meanChange, pulseCounts } from '../src/programming/pulse';

export const INSITU_RULES = ['plain', 'manhattan', 'mixed-precision', 'tiki-taka', 'pair-aware'] as const;
export type InsituRule = (typeof INSITU_RULES)[number];

export interface RuleSettings {
  rule: InsituRule;
  /** |u| below which plain and manhattan leave a cell alone, uS. */
  threshold: number;
  /** Momentum M in [0, 1): v = M v + dG. */
  momentum: number;
  /** tiki-taka: updates between transfers (>= 1). */
  transferEvery: number;
  /** plain: stochastic rounding of the counts (null: to the nearest). */
  rounding: SeededRandom | null;
  /** Most pulses a cell gets in one update. */
  maxPulses: number;
}

/** Checks the numeric settings; a ConfigError names the field. */
export function checkRuleSettings(s: RuleSettings): RuleSettings {
  if (!INSITU_RULES.includes(s.rule)) throw new ConfigError('rule', `must be one of ${INSITU_RULES.join(', ')}, got ${s.rule}`);
  if (!(s.threshold >= 0) || !Number.isFinite(s.threshold)) throw new ConfigError('threshold', `must be a conductance change >= 0 uS, got ${s.threshold}`);
  if (!(s.momentum >= 0 && s.momentum < 1)) throw new ConfigError('momentum', `must be in [0, 1), got ${s.momentum}`);
  if (!Number.isSafeInteger(s.transferEvery) || s.transferEvery < 1) throw new ConfigError('transferEvery', `must be an integer >= 1, got ${s.transferEvery}`);
  if (!Number.isSafeInteger(s.maxPulses) || s.maxPulses < 1) throw new ConfigError('maxPulses', `must be an integer >= 1, got ${s.maxPulses}`);
  return s;
}

/** The differential pairs of a layer's cells: plus[k] and minus[k] are G+ and G- of weight k (w ~ G+ - G-). */
export interface CellPairs {
  plus: Int32Array;
  minus: Int32Array;
}

/**
 * The controller of one layer's cells (flat, in the order of `model`): its estimate of every
 * conductance, the rule's per-cell memory (momentum, accumulator or fast matrix), and the pulse
 * counts it asks for.
 */
export class PulseController {
  /** The controller's estimate of each cell's conductance, uS. */
  readonly gEst: Float32Array;
  private readonly velocity: Float32Array | null;
  /** mixed-precision: the accumulator chi; tiki-taka: the fast matrix A (uS). */
  readonly memory: Float32Array | null;
  private readonly wanted: Float32Array;
  private readonly counts: Float64Array;
  private updates = 0;

  /**
   * `model`: what the controller believes of the cells (nominalInstances of the device, or the true
   * instances for the oracle; a cell it knows to be bad has its stuck flag set). `g0`: its first
   * estimate of the conductances (a read, or the true state for the oracle).
   */
  constructor(
    readonly cfg: DeviceConfig,
    readonly model: DeviceInstances,
    g0: Float32Array,
    readonly settings: RuleSettings,
    /** The differential pairs (pair-aware splits each pair's change by them); null: none. */
    readonly pairs: CellPairs | null = null,
  ) {
    checkRuleSettings(settings);
    if (pairs) {
      if (pairs.plus.length !== pairs.minus.length) throw new RangeError(`pairs: ${pairs.plus.length} plus cells, ${pairs.minus.length} minus cells`);
      for (let k = 0; k < pairs.plus.length; k++) {
        const a = pairs.plus[k];
        const b = pairs.minus[k];
        if (!(a >= 0 && a < model.count && b >= 0 && b < model.count && a !== b)) throw new RangeError(`pair ${k} (${a}, ${b}) is not two cells of the ${model.count}`);
      }
    }
    if (g0.length !== model.count) throw new RangeError(`g0 has ${g0.length} cells, the model ${model.count}`);
    const n = model.count;
    this.gEst = Float32Array.from(g0);
    this.velocity = settings.momentum > 0 ? new Float32Array(n) : null;
    this.memory = settings.rule === 'plain' || settings.rule === 'manhattan' ? null : new Float32Array(n);
    this.wanted = new Float32Array(n);
    this.counts = new Float64Array(n);
  }

  /**
   * A read of the cells replaces the estimate. The rules with memory keep their target: what the
   * pulses did not make (the estimate minus the read: noisy or smaller steps, a stuck cell) goes
   * back into the accumulator (mixed precision) or the fast matrix (tiki-taka), so a rule that
   * reads closes the loop over the device's spread.
   */
  observe(gRead: Float32Array): void {
    if (gRead.length !== this.gEst.length) throw new RangeError(`read has ${gRead.length} cells, the controller ${this.gEst.length}`);
    const mem = this.memory;
    if (mem) for (let i = 0; i < gRead.length; i++) mem[i] += this.gEst[i] - gRead[i];
    this.gEst.set(gRead);
  }

  /**
   * Adds the wanted changes to the memory (the accumulator or the fast matrix), kept within the
   * room each cell has to its bounds at its estimated G (a change past a bound cannot be made).
   */
  private accumulate(u: Float32Array): Float32Array {
    const mem = this.memory!;
    const g = this.gEst;
    for (let i = 0; i < mem.length; i++) {
      const lo = this.model.gMinCell[i] - g[i];
      const hi = this.model.gMaxCell[i] - g[i];
      const v = mem[i] + u[i];
      mem[i] = v < lo ? lo : v > hi ? hi : v;
    }
    return mem;
  }

  /**
   * pair-aware: each pair's weight change g = u+ - u- (in uS of G+ - G-), re-split between its two
   * cells in proportion to the change one pulse of the needed polarity makes on each at its
   * estimated G (the model's mean step, clipped to the window): g > 0 wants SET on G+ and RESET on
   * G-, g < 0 the reverse. A cell at its bound (a step of 0 that way) gets none of it; the other
   * cell then makes the whole change. Two equal steps give the usual +g/2, -g/2.
   */
  private splitPairs(u: Float32Array): void {
    const { plus, minus } = this.pairs!;
    const g = this.gEst;
    for (let k = 0; k < plus.length; k++) {
      const a = plus[k];
      const b = minus[k];
      const d = u[a] - u[b];
      if (d === 0) continue;
      const dir = d > 0 ? 1 : -1;
      const sa = Math.abs(meanChange(g[a], dir, this.cfg, this.model, a));
      const sb = Math.abs(meanChange(g[b], -dir, this.cfg, this.model, b));
      const f = sa + sb > 0 ? sa / (sa + sb) : 0.5;
      u[a] = d * f;
      u[b] = -d * (1 - f);
    }
  }

  /** The signed pulse counts for the wanted changes dG (uS) of this update; advances the rule's state and G^. */
  pulses(dG: ArrayLike<number>): Int32Array {
    const n = this.gEst.length;
    if (dG.length !== n) throw new RangeError(`dG has ${dG.length} cells, the controller ${n}`);
    const { rule, threshold, momentum, maxPulses, rounding } = this.settings;
    const u = this.wanted;
    if (this.velocity) {
      const v = this.velocity;
      for (let i = 0; i < n; i++) u[i] = v[i] = momentum * v[i] + dG[i];
    } else for (let i = 0; i < n; i++) u[i] = dG[i];
    const out = new Int32Array(n);
    const stuck = this.model.stuck;
    const g = this.gEst;
    switch (rule) {
      case 'plain': {
        const c = pulseCounts(g, u, this.cfg, this.model, { threshold, maxCount: maxPulses }, this.counts);
        for (let i = 0; i < n; i++) {
          if (c[i] === 0) continue;
          const k = Math.min(Math.floor(Math.abs(c[i]) + (rounding ? rounding.next() : 0.5)), maxPulses);
          out[i] = c[i] > 0 ? k : -k;
        }
        break;
      }
      case 'manhattan':
        for (let i = 0; i < n; i++) if (u[i] !== 0 && Math.abs(u[i]) >= threshold && stuck[i] === 0) out[i] = u[i] > 0 ? 1 : -1;
        break;
      case 'mixed-precision': {
        const chi = this.accumulate(u);
        const c = pulseCounts(g, chi, this.cfg, this.model, { maxCount: maxPulses }, this.counts);
        for (let i = 0; i < n; i++) {
          const k = Math.min(Math.trunc(Math.abs(c[i])), maxPulses);
          if (k === 0) continue;
          out[i] = c[i] > 0 ? k : -k;
          chi[i] -= meanChange(g[i], out[i], this.cfg, this.model, i);
        }
        break;
      }
      case 'pair-aware':
      case 'tiki-taka': {
        if (rule === 'pair-aware' && this.pairs) this.splitPairs(u);
        const A = this.accumulate(u);
        if ((this.updates + 1) % this.settings.transferEvery === 0) {
          const c = pulseCounts(g, A, this.cfg, this.model, { maxCount: 1 }, this.counts);
          for (let i = 0; i < n; i++) {
            if (Math.abs(c[i]) < 1) continue;
            out[i] = c[i] > 0 ? 1 : -1;
            A[i] -= meanChange(g[i], out[i], this.cfg, this.model, i);
          }
        }
        break;
      }
    }
    for (let i = 0; i < n; i++) if (out[i] !== 0) g[i] += meanChange(g[i], out[i], this.cfg, this.model, i);
    this.updates++;
    return out;
  }
}
