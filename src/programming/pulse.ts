// The pulse model, reads, drift and level quantization, vectorized over flat Float32Arrays of
// conductances (uS) with one entry per cell, aligned with a DeviceInstances.
import type { DeviceConfig } from '../device/config';
import { variedWindow } from '../device/config';
import { SeededRandom } from '../random';
import { DeviceInstances, STUCK_NONE } from './instances';
import { NormalSource, normalStream } from './normal';

const { exp, log, abs, max, min, floor } = Math;

function checkCount(name: string, n: number, inst: DeviceInstances): void {
  if (n !== inst.count) throw new RangeError(`${name} has ${n} cells but the device instances have ${inst.count}`);
}

/**
 * One pulse on cell i, in place: dir > 0 a SET (potentiating) pulse, dir < 0 a RESET pulse.
 * The step (PulseConfig): x = (G - lo) / (hi - lo) in the cell's own window [lo, hi],
 *   softBounds:   SET  dG = +dgSet s (1 - x) (1 + c2c xi),  RESET dG = -dgReset s x (1 + c2c xi)
 *   constantStep: SET  dG = +dgSet s (1 + c2c xi),          RESET dG = -dgReset s (1 + c2c xi)
 * then G is clipped to [lo, hi]. A stuck cell does not move. Draws one normal when c2cSigma > 0
 * (`rng`: a SeededRandom, or a normalStream of one for speed in loops).
 */
export function pulseCell(g: Float32Array, i: number, dir: number, cfg: DeviceConfig, inst: DeviceInstances, rng: NormalSource): void {
  if (inst.stuck[i] !== STUCK_NONE || dir === 0) return;
  const lo = inst.gMinCell[i];
  const hi = inst.gMaxCell[i];
  const p = cfg.pulse;
  const gi = g[i];
  let dG: number;
  if (p.model === 'softBounds') {
    let x = (gi - lo) / (hi - lo);
    x = x < 0 ? 0 : x > 1 ? 1 : x;
    dG = dir > 0 ? p.dgSet * (1 - x) : -p.dgReset * x;
  } else {
    dG = dir > 0 ? p.dgSet : -p.dgReset;
  }
  dG *= inst.stepScale[i];
  if (p.c2cSigma > 0) dG *= 1 + p.c2cSigma * rng.normal();
  const v = gi + dG;
  g[i] = v < lo ? lo : v > hi ? hi : v;
}

/**
 * Applies pulses in place and returns `g`: pulses[i] = +n gives cell i n SET pulses, -n gives n
 * RESET pulses, 0 none (the form in-situ training needs: a signed pulse count per cell). Pulses
 * are bounded by each cell's window, nonlinear (soft bounds), asymmetric (dgSet vs dgReset) and
 * noisy (c2cSigma, a new draw per pulse); stuck cells keep their conductance. Cells are visited in
 * index order, so a seeded rng gives the same result every time.
 */
export function applyPulses(
  g: Float32Array,
  pulses: ArrayLike<number>,
  cfg: DeviceConfig,
  inst: DeviceInstances,
  rng: SeededRandom,
): Float32Array {
  checkCount('g', g.length, inst);
  checkCount('pulses', pulses.length, inst);
  const nrm = normalStream(rng);
  for (let i = 0; i < g.length; i++) {
    const n = pulses[i];
    if (n === 0) continue;
    const dir = n > 0 ? 1 : -1;
    const count = abs(n);
    for (let k = 0; k < count; k++) pulseCell(g, i, dir, cfg, inst, nrm);
  }
  return g;
}

/**
 * One read of every cell: G (1 + read.noiseSigma xi), xi ~ N(0, 1) new at every call, clipped at 0
 * (a read never sees a negative conductance). Returns `out` (a new array unless given).
 */
export function readConductance(g: Float32Array, cfg: DeviceConfig, rng: SeededRandom, out?: Float32Array): Float32Array {
  const o = out ?? new Float32Array(g.length);
  if (o.length !== g.length) throw new RangeError(`out has ${o.length} cells, g has ${g.length}`);
  const s = cfg.read.noiseSigma;
  if (s === 0) {
    if (o !== g) o.set(g);
    return o;
  }
  const nrm = normalStream(rng);
  for (let i = 0; i < g.length; i++) {
    const v = g[i] * (1 + s * nrm.normal());
    o[i] = v > 0 ? v : 0;
  }
  return o;
}

/**
 * Conductances at time tSeconds after programming: G(t) = G(t0) (t / t0)^-nu for t > t0 (G is the
 * state read at t0 = drift.t0), unchanged for t <= t0. Per-cell nu comes from `source`: the cells'
 * DeviceInstances (the same nu at every t: drift to 1 h then 1 day is consistent), or a
 * SeededRandom to draw nu ~ max(0, N(nu, nuSigma)) now. A cell never drifts below its own gMinCell
 * (with a SeededRandom: below the lower edge of variedWindow) and a stuck cell does not drift.
 * Returns `out` (a new array unless given).
 */
export function drift(
  g: Float32Array,
  cfg: DeviceConfig,
  tSeconds: number,
  source: DeviceInstances | SeededRandom,
  out?: Float32Array,
): Float32Array {
  if (!(tSeconds >= 0) || !Number.isFinite(tSeconds)) throw new RangeError(`tSeconds must be a finite time >= 0, got ${tSeconds}`);
  const o = out ?? new Float32Array(g.length);
  if (o.length !== g.length) throw new RangeError(`out has ${o.length} cells, g has ${g.length}`);
  const t0 = cfg.drift.t0;
  if (tSeconds <= t0) {
    if (o !== g) o.set(g);
    return o;
  }
  const lnRatio = log(tSeconds / t0);
  if (source instanceof SeededRandom) {
    const lo = variedWindow(cfg).lo;
    const { nu, nuSigma } = cfg.drift;
    const nrm = normalStream(source);
    for (let i = 0; i < g.length; i++) {
      const n = nuSigma > 0 ? max(0, nu + nuSigma * nrm.normal()) : nu;
      const f = min(g[i], lo);
      const v = g[i] * exp(-n * lnRatio);
      o[i] = v > f ? v : f;
    }
  } else {
    checkCount('g', g.length, source);
    for (let i = 0; i < g.length; i++) {
      if (source.stuck[i] !== STUCK_NONE) {
        o[i] = g[i];
        continue;
      }
      const f = min(g[i], source.gMinCell[i]);
      const v = g[i] * exp(-source.nu[i] * lnRatio);
      o[i] = v > f ? v : f;
    }
  }
  return o;
}

/** The programmable conductance levels, uS (levels equally spaced from gMin to gMax), or null when continuous. */
export function levelValues(cfg: DeviceConfig): Float32Array | null {
  if (cfg.levels === null) return null;
  const L = cfg.levels;
  const out = new Float32Array(L);
  const step = (cfg.gMax - cfg.gMin) / (L - 1);
  for (let k = 0; k < L; k++) out[k] = k === L - 1 ? cfg.gMax : cfg.gMin + k * step;
  return out;
}

/**
 * Targets rounded to the nearest of the device's `levels` conductance levels (equally spaced from
 * gMin to gMax, ties away from gMin), after clipping to [gMin, gMax]; with levels null only the
 * clipping. Returns `out` (a new array unless given). NaN targets are refused.
 */
export function quantizeToLevels(targets: Float32Array, cfg: DeviceConfig, out?: Float32Array): Float32Array {
  const o = out ?? new Float32Array(targets.length);
  if (o.length !== targets.length) throw new RangeError(`out has ${o.length} cells, targets has ${targets.length}`);
  const { gMin, gMax } = cfg;
  const L = cfg.levels;
  const step = L === null ? 0 : (gMax - gMin) / (L - 1);
  for (let i = 0; i < targets.length; i++) {
    const t = targets[i];
    if (Number.isNaN(t)) throw new RangeError(`target ${i} is NaN`);
    const c = t < gMin ? gMin : t > gMax ? gMax : t;
    if (L === null) o[i] = c;
    else {
      const k = floor((c - gMin) / step + 0.5);
      o[i] = k >= L - 1 ? gMax : gMin + k * step;
    }
  }
  return o;
}

/**
 * Signed pulse counts that move each cell by deltaG[i] uS on the noise-free pulse model (for
 * in-situ training: the wanted conductance change of each cell -> SET / RESET pulses). Inverts
 * the model exactly: soft bounds, n SET pulses take G to hi - (hi - G)(1 - a)^n with
 * a = dgSet s / (hi - lo), n RESET pulses to lo + (G - lo)(1 - b)^n with b = dgReset s / (hi - lo);
 * constant steps, n = |deltaG| / (dg s). A change reaching past the cell's bound aims at the bound
 * (soft bounds: at 1% of the cell's window from it, which they approach only asymptotically).
 * n is rounded to the nearest integer (or, with `stochastic`, down or up with the probability
 * that makes the expected count n: small wanted changes then still move the cell on average, as
 * stochastic rounding does for low-precision SGD) and capped at maxCount (default writeVerify.maxPulses);
 * 0 where |deltaG| < threshold (Yao et al. program a cell only where the wanted change passes a
 * threshold) and for stuck cells.
 */
export function pulsesForChange(
  g: Float32Array,
  deltaG: ArrayLike<number>,
  cfg: DeviceConfig,
  inst: DeviceInstances,
  opts: { threshold?: number; maxCount?: number; stochastic?: SeededRandom } = {},
): Int32Array {
  checkCount('g', g.length, inst);
  checkCount('deltaG', deltaG.length, inst);
  const threshold = opts.threshold ?? 0;
  const maxCount = opts.maxCount ?? cfg.writeVerify.maxPulses;
  const stochastic = opts.stochastic;
  const out = new Int32Array(g.length);
  const p = cfg.pulse;
  for (let i = 0; i < g.length; i++) {
    const d = deltaG[i];
    if (!(abs(d) >= threshold) || d === 0 || inst.stuck[i] !== STUCK_NONE) continue;
    const lo = inst.gMinCell[i];
    const hi = inst.gMaxCell[i];
    const s = inst.stepScale[i];
    const gi = min(max(g[i], lo), hi);
    const room = d > 0 ? hi - gi : gi - lo; // how far the cell can go this way
    let n: number;
    if (p.model === 'softBounds') {
      const w = hi - lo;
      const rest = max(room - abs(d), 0.01 * w); // distance to the bound left after the change
      const step = min(((d > 0 ? p.dgSet : p.dgReset) * s) / w, 1 - 1e-12);
      n = rest >= room ? 0 : log(rest / room) / log(1 - step);
    } else {
      n = min(abs(d), room) / ((d > 0 ? p.dgSet : p.dgReset) * s);
    }
    const k = min(floor(n + (stochastic ? stochastic.next() : 0.5)), maxCount);
    out[i] = d > 0 ? k : -k;
  }
  return out;
}
