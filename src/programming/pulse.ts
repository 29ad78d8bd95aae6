// The pulse model, reads, drift and level quantization, vectorized over flat Float32Arrays of
// conductances (uS) with one entry per cell, aligned with a DeviceInstances.
import type { DeviceConfig, PulseTable } from '../device/config';
import { variedWindow } from '../device/config';
import { SeededRandom } from '../random';
import { DeviceInstances, STUCK_NONE } from './instances';
import { NormalSource, normalStream } from './normal';

const { exp, log, abs, max, min, floor } = Math;

function checkCount(name: string, n: number, inst: DeviceInstances): void {
  if (n !== inst.count) throw new RangeError(`${name} has ${n} cells but the device instances have ${inst.count}`);
}

// A lookup table as flat arrays (bin centres on the nominal window), compiled once per table object.
interface CompiledTable {
  centers: Float64Array;
  setMean: Float64Array;
  setStd: Float64Array;
  resetMean: Float64Array;
  resetStd: Float64Array;
}
const compiledTables = new WeakMap<PulseTable, CompiledTable>();

function compiled(t: PulseTable): CompiledTable {
  let c = compiledTables.get(t);
  if (!c) {
    const n = t.edges.length - 1;
    const centers = new Float64Array(n);
    for (let k = 0; k < n; k++) centers[k] = 0.5 * (t.edges[k] + t.edges[k + 1]);
    c = {
      centers,
      setMean: Float64Array.from(t.setMean),
      setStd: Float64Array.from(t.setStd),
      resetMean: Float64Array.from(t.resetMean),
      resetStd: Float64Array.from(t.resetStd),
    };
    compiledTables.set(t, c);
  }
  return c;
}

// Where a nominal conductance falls among the bin centres: between locJ and locJ + 1 at weight
// locT (0 at locJ); clamped to the end bins. Module state, so the hot loop allocates nothing.
let locJ = 0;
let locT = 0;
function locate(centers: Float64Array, gn: number): void {
  const n = centers.length;
  if (n === 1 || gn <= centers[0]) {
    locJ = 0;
    locT = 0;
    return;
  }
  if (gn >= centers[n - 1]) {
    locJ = n - 1;
    locT = 0;
    return;
  }
  let a = 0;
  let b = n - 1; // centers[a] < gn < centers[b]
  while (b - a > 1) {
    const m = (a + b) >> 1;
    if (centers[m] <= gn) a = m;
    else b = m;
  }
  locJ = a;
  locT = (gn - centers[a]) / (centers[b] - centers[a]);
}

function at(v: Float64Array): number {
  return locT === 0 ? v[locJ] : v[locJ] + locT * (v[locJ + 1] - v[locJ]);
}

/**
 * The noise-free step of one pulse (uS, signed: > 0 for a SET) of a cell with step scale 1 at the
 * place x in [0, 1] of its window: the mean of the pulse model (PulseConfig). dir > 0 a SET pulse,
 * dir < 0 a RESET. The scale of one pulse for rules and plans that need one (pulsesForChange,
 * the in-situ manhattan threshold, fit-device's simulated trains).
 */
export function meanStep(cfg: Pick<DeviceConfig, 'gMin' | 'gMax' | 'pulse'>, x: number, dir: number): number {
  const p = cfg.pulse;
  x = x < 0 ? 0 : x > 1 ? 1 : x;
  switch (p.model) {
    case 'softBounds':
      return dir > 0 ? p.dgSet * (1 - x) : -p.dgReset * x;
    case 'constantStep':
      return dir > 0 ? p.dgSet : -p.dgReset;
    case 'exponential':
      return dir > 0 ? p.dgSet * (1 - p.nonlinearitySet * x) : -p.dgReset * (1 - p.nonlinearityReset * (1 - x));
    case 'lookup': {
      const t = compiled(p.table);
      locate(t.centers, cfg.gMin + x * (cfg.gMax - cfg.gMin));
      return at(dir > 0 ? t.setMean : t.resetMean);
    }
  }
}

/**
 * One pulse on cell i, in place: dir > 0 a SET (potentiating) pulse, dir < 0 a RESET pulse.
 * The step (PulseConfig): x = (G - lo) / (hi - lo) in the cell's own window [lo, hi],
 *   softBounds:   SET  dG = +dgSet s (1 - x) (1 + c2c xi),  RESET dG = -dgReset s x (1 + c2c xi)
 *   constantStep: SET  dG = +dgSet s (1 + c2c xi),          RESET dG = -dgReset s (1 + c2c xi)
 *   exponential:  SET  dG = +dgSet s (1 - nlSet x) (1 + c2c xi), RESET dG = -dgReset s (1 - nlReset (1 - x)) (1 + c2c xi)
 *   lookup:       dG = s (mean(G') + std(G') xi) of the pulse's polarity, G' = gMin + x (gMax - gMin)
 * then G is clipped to [lo, hi]. A stuck cell does not move. Draws one normal when the step is
 * noisy (c2cSigma > 0; lookup: std > 0) (`rng`: a SeededRandom, or a normalStream of one for
 * speed in loops).
 */
export function pulseCell(g: Float32Array, i: number, dir: number, cfg: DeviceConfig, inst: DeviceInstances, rng: NormalSource): void {
  if (inst.stuck[i] !== STUCK_NONE || dir === 0) return;
  const lo = inst.gMinCell[i];
  const hi = inst.gMaxCell[i];
  const p = cfg.pulse;
  const gi = g[i];
  let dG: number;
  if (p.model === 'lookup') {
    let x = (gi - lo) / (hi - lo);
    x = x < 0 ? 0 : x > 1 ? 1 : x;
    const t = compiled(p.table);
    locate(t.centers, cfg.gMin + x * (cfg.gMax - cfg.gMin));
    dG = at(dir > 0 ? t.setMean : t.resetMean);
    const sd = at(dir > 0 ? t.setStd : t.resetStd);
    if (sd > 0) dG += sd * rng.normal();
    const v = gi + dG * inst.stepScale[i];
    g[i] = v < lo ? lo : v > hi ? hi : v;
    return;
  }
  if (p.model === 'softBounds') {
    let x = (gi - lo) / (hi - lo);
    x = x < 0 ? 0 : x > 1 ? 1 : x;
    dG = dir > 0 ? p.dgSet * (1 - x) : -p.dgReset * x;
  } else if (p.model === 'exponential') {
    let x = (gi - lo) / (hi - lo);
    x = x < 0 ? 0 : x > 1 ? 1 : x;
    dG = dir > 0 ? p.dgSet * (1 - p.nonlinearitySet * x) : -p.dgReset * (1 - p.nonlinearityReset * (1 - x));
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
 * the model: soft bounds, n SET pulses take G to hi - (hi - G)(1 - a)^n with
 * a = dgSet s / (hi - lo), n RESET pulses to lo + (G - lo)(1 - b)^n with b = dgReset s / (hi - lo);
 * constant steps, n = |deltaG| / (dg s); exponential, the same geometric form about the step's
 * fixed point x* = 1 / nonlinearity; lookup, the mean table stepped pulse by pulse (the last pulse
 * counted in part). A change reaching past the cell's bound aims at the bound (soft bounds, and
 * the others where the steps vanish there: at 1% of the cell's window from it, which they
 * approach only asymptotically).
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
  const maxCount = opts.maxCount ?? cfg.writeVerify.maxPulses;
  const stochastic = opts.stochastic;
  const exact = pulseCounts(g, deltaG, cfg, inst, { threshold: opts.threshold, maxCount });
  const out = new Int32Array(g.length);
  for (let i = 0; i < g.length; i++) {
    const n = exact[i];
    if (n === 0) continue;
    const k = min(floor(abs(n) + (stochastic ? stochastic.next() : 0.5)), maxCount);
    out[i] = n > 0 ? k : -k;
  }
  return out;
}

/**
 * The real-valued signed pulse counts behind pulsesForChange (before any rounding): what an
 * in-situ rule that carries the remainder (mixed precision) splits into whole pulses and a rest.
 * 0 where |deltaG| < threshold and for stuck cells; |count| at most maxCount + 1.
 */
export function pulseCounts(
  g: Float32Array,
  deltaG: ArrayLike<number>,
  cfg: DeviceConfig,
  inst: DeviceInstances,
  opts: { threshold?: number; maxCount?: number } = {},
  out: Float64Array = new Float64Array(g.length),
): Float64Array {
  checkCount('g', g.length, inst);
  checkCount('deltaG', deltaG.length, inst);
  if (out.length !== g.length) throw new RangeError(`out has ${out.length} cells, g has ${g.length}`);
  const threshold = opts.threshold ?? 0;
  const maxCount = opts.maxCount ?? cfg.writeVerify.maxPulses;
  const p = cfg.pulse;
  for (let i = 0; i < g.length; i++) {
    out[i] = 0;
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
    } else if (p.model === 'constantStep') {
      n = min(abs(d), room) / ((d > 0 ? p.dgSet : p.dgReset) * s);
    } else if (p.model === 'exponential') {
      n = exponentialCount(room / (hi - lo), abs(d) / (hi - lo), ((d > 0 ? p.dgSet : p.dgReset) * s) / (hi - lo), d > 0 ? p.nonlinearitySet : p.nonlinearityReset);
    } else {
      n = lookupCount(cfg, gi, d, lo, hi, s, maxCount);
    }
    n = min(n, maxCount + 1);
    out[i] = d > 0 ? n : -n;
  }
  return out;
}

/**
 * The noise-free change (uS) of `n` pulses (signed: > 0 SET) on cell i from conductance g: the
 * pulse model's mean steps one after another, clipped to the cell's window. What a controller
 * expects its pulses to do (mixed precision subtracts it from the accumulator).
 */
export function meanChange(g: number, n: number, cfg: DeviceConfig, inst: DeviceInstances, i: number): number {
  if (n === 0 || inst.stuck[i] !== STUCK_NONE) return 0;
  const lo = inst.gMinCell[i];
  const hi = inst.gMaxCell[i];
  const s = inst.stepScale[i];
  const dir = n > 0 ? 1 : -1;
  const w = hi - lo;
  let v = min(max(g, lo), hi);
  const start = v;
  for (let k = abs(n); k > 0; k--) {
    v += meanStep(cfg, (v - lo) / w, dir) * s;
    v = v < lo ? lo : v > hi ? hi : v;
  }
  return v - start;
}

/**
 * Pulses of the exponential model for a wanted move `want` (> 0) towards the bound `room` away
 * (both as fractions of the window), step a (1 - nl y) at distance y from the starting bound
 * (y = 1 - room): y* = 1 / nl is the step's fixed point, and y* - y shrinks (nl > 0) or grows
 * (nl < 0) by the factor 1 - a nl a pulse.
 */
function exponentialCount(room: number, want: number, a: number, nl: number): number {
  const y0 = 1 - room;
  let yt = y0 + min(want, room);
  if (abs(nl) < 1e-9) return (yt - y0) / a;
  const yStar = 1 / nl;
  if (nl > 0 && yStar <= 1.01) yt = min(yt, yStar - 0.01); // the steps vanish at the bound: aim 1% short
  if (yt <= y0) return 0;
  const f = 1 - a * nl;
  if (f <= 1e-12) return 1; // one pulse overshoots the fixed point
  return log((yStar - yt) / (yStar - y0)) / log(f);
}

/** Pulses of the lookup model for the change d from gi: the mean table stepped until it passes the target. */
function lookupCount(cfg: DeviceConfig, gi: number, d: number, lo: number, hi: number, s: number, maxCount: number): number {
  const w = hi - lo;
  const dir = d > 0 ? 1 : -1;
  const target = min(max(gi + d, lo + 0.01 * w), hi - 0.01 * w);
  let gNow = gi;
  for (let k = 0; k <= maxCount; k++) {
    const rest = (target - gNow) * dir;
    if (rest <= 0) return k;
    const step = meanStep(cfg, (gNow - lo) / w, dir) * s * dir;
    if (!(step > 1e-9 * w)) return k; // the table does not move the cell this way here
    if (step >= rest) return k + rest / step;
    gNow += step * dir;
  }
  return maxCount + 1;
}
