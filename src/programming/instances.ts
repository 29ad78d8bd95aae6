// Per-cell device parameters: what makes one physical cell differ from the nominal device. Drawn
// once per programming of an array (or layer) from a SeededRandom, stored as flat typed arrays
// (one entry per cell, in the caller's cell order) so that everything downstream is vectorized.
import type { DeviceConfig } from '../device/config';
import { D2D_TRUNCATION } from '../device/config';
import { SeededRandom } from '../random';
import { NormalSource, normalStream } from './normal';

const { exp, max } = Math;

/** Stuck-cell codes of DeviceInstances.stuck. */
export const STUCK_NONE = 0;
export const STUCK_AT_GMIN = 1;
export const STUCK_AT_GMAX = 2;

export interface DeviceInstances {
  /** Number of cells. */
  readonly count: number;
  /** Each cell's lowest conductance (1 / its own R_OFF), uS; see sampleDeviceInstances. */
  readonly gMinCell: Float32Array;
  /** Each cell's highest conductance (1 / its own R_ON), uS. */
  readonly gMaxCell: Float32Array;
  /** 0 = works, 1 = stuck at its gMinCell, 2 = stuck at its gMaxCell. */
  readonly stuck: Uint8Array;
  /** Each cell's multiplier of the pulse steps dgSet / dgReset (1 without step variation). */
  readonly stepScale: Float32Array;
  /** Each cell's drift exponent nu (>= 0). */
  readonly nu: Float32Array;
}

/** A standard normal truncated at +-limit (rejection: at 4 sigma one draw in 16,000 is redone). */
export function truncatedNormal(rng: NormalSource, limit = D2D_TRUNCATION): number {
  for (;;) {
    const z = rng.normal();
    if (z >= -limit && z <= limit) return z;
  }
}

/**
 * Draws the per-cell parameters of `cellCount` cells:
 *   gMaxCell = gMax exp(-rOnSigma z1), gMinCell = gMin exp(-rOffSigma z2)   (R_ON, R_OFF lognormal
 *     with the nominal value as median; z truncated at +-D2D_TRUNCATION = 4, so every cell lies in
 *     variedWindow(cfg), and the config validation guarantees gMinCell < gMaxCell)
 *   stuck: 1 with probability faults.stuckAtGMin, 2 with faults.stuckAtGMax, else 0
 *   stepScale = exp(stepSigma z3)
 *   nu = max(0, drift.nu + drift.nuSigma z4)
 * Each quantity draws from its own fork of `rng` ('d2d', 'stuck', 'step', 'drift'), so changing one
 * rate leaves the other draws as they were. The same rng state gives the same cells.
 */
export function sampleDeviceInstances(cfg: DeviceConfig, cellCount: number, rng: SeededRandom): DeviceInstances {
  if (!Number.isInteger(cellCount) || cellCount < 0) throw new RangeError(`cellCount must be an integer >= 0, got ${cellCount}`);
  // One draw from the parent stream names this programming, so that two calls on the same rng give
  // different cells, and forks keep the four quantities independent of each other.
  const base = new SeededRandom(`${rng.uint32()}`);
  const n = cellCount;
  const gMinCell = new Float32Array(n);
  const gMaxCell = new Float32Array(n);
  const stuck = new Uint8Array(n);
  const stepScale = new Float32Array(n);
  const nu = new Float32Array(n);

  const { rOnSigma, rOffSigma, stepSigma } = cfg.variation;
  if (rOnSigma > 0 || rOffSigma > 0) {
    const r = normalStream(base.fork('d2d'));
    for (let i = 0; i < n; i++) {
      const z1 = rOnSigma > 0 ? truncatedNormal(r) : 0;
      const z2 = rOffSigma > 0 ? truncatedNormal(r) : 0;
      gMaxCell[i] = cfg.gMax * exp(-rOnSigma * z1);
      gMinCell[i] = cfg.gMin * exp(-rOffSigma * z2);
    }
  } else {
    gMaxCell.fill(cfg.gMax);
    gMinCell.fill(cfg.gMin);
  }

  const pMin = cfg.faults.stuckAtGMin;
  const pMax = cfg.faults.stuckAtGMax;
  if (pMin > 0 || pMax > 0) {
    const r = base.fork('stuck');
    for (let i = 0; i < n; i++) {
      const u = r.next();
      stuck[i] = u < pMin ? STUCK_AT_GMIN : u < pMin + pMax ? STUCK_AT_GMAX : STUCK_NONE;
    }
  }

  if (stepSigma > 0) {
    const r = normalStream(base.fork('step'));
    for (let i = 0; i < n; i++) stepScale[i] = exp(stepSigma * truncatedNormal(r));
  } else stepScale.fill(1);

  if (cfg.drift.nuSigma > 0) {
    const r = normalStream(base.fork('drift'));
    for (let i = 0; i < n; i++) nu[i] = max(0, cfg.drift.nu + cfg.drift.nuSigma * r.normal());
  } else nu.fill(cfg.drift.nu);

  return { count: n, gMinCell, gMaxCell, stuck, stepScale, nu };
}

/** Cells that are all the nominal device: no variation, no faults (for tests and the ideal device). */
export function nominalInstances(cfg: DeviceConfig, cellCount: number): DeviceInstances {
  return {
    count: cellCount,
    gMinCell: new Float32Array(cellCount).fill(cfg.gMin),
    gMaxCell: new Float32Array(cellCount).fill(cfg.gMax),
    stuck: new Uint8Array(cellCount),
    stepScale: new Float32Array(cellCount).fill(1),
    nu: new Float32Array(cellCount).fill(cfg.drift.nu),
  };
}

/**
 * The cells [start, start + count) as views (no copy): program a whole layer at once and hand each
 * array its part, or the other way round.
 */
export function subInstances(inst: DeviceInstances, start: number, count: number): DeviceInstances {
  if (start < 0 || count < 0 || start + count > inst.count) {
    throw new RangeError(`cells [${start}, ${start + count}) are outside the ${inst.count} cells`);
  }
  const end = start + count;
  return {
    count,
    gMinCell: inst.gMinCell.subarray(start, end),
    gMaxCell: inst.gMaxCell.subarray(start, end),
    stuck: inst.stuck.subarray(start, end),
    stepScale: inst.stepScale.subarray(start, end),
    nu: inst.nu.subarray(start, end),
  };
}

/** The conductance a stuck cell sits at, or NaN for a working cell. */
export function stuckValue(inst: DeviceInstances, i: number): number {
  const s = inst.stuck[i];
  return s === STUCK_AT_GMIN ? inst.gMinCell[i] : s === STUCK_AT_GMAX ? inst.gMaxCell[i] : NaN;
}

/** A cell's conductance after a fresh forming/RESET: its gMinCell, or its stuck value. */
export function initialConductances(inst: DeviceInstances): Float32Array {
  const g = new Float32Array(inst.count);
  for (let i = 0; i < inst.count; i++) g[i] = inst.stuck[i] === STUCK_AT_GMAX ? inst.gMaxCell[i] : inst.gMinCell[i];
  return g;
}
