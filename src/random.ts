// Seeded randomness. Everything random in the package draws from a SeededRandom so that the same
// --seed gives the same numbers on the same backend.
import seedrandom from 'seedrandom';

export type SeedLike = number | string;

// Bound once: a lookup of the global Math is ~10x slower under jest's sandbox, and these run per draw.
const { log, sqrt, sin, cos, floor, PI } = Math;

/** A seeded generator (Alea from seedrandom) with the draws the package needs. */
export class SeededRandom {
  private readonly prng: seedrandom.StatefulPRNG<seedrandom.State.Alea>;
  private spareNormal: number | null = null;

  constructor(readonly seed: SeedLike, state?: seedrandom.State.Alea) {
    this.prng = seedrandom.alea(String(seed), { state: state ?? true });
  }

  /** Uniform in [0, 1). */
  next(): number {
    return this.prng();
  }

  /** Uniform integer in [0, n). */
  int(n: number): number {
    return floor(this.prng() * n);
  }

  /** A 32-bit unsigned integer, for seeding tfjs ops (tf.randomNormal(..., seed)). */
  uint32(): number {
    return this.prng.int32() >>> 0;
  }

  /** Standard normal (Box-Muller, the spare value kept). */
  normal(): number {
    if (this.spareNormal !== null) {
      const v = this.spareNormal;
      this.spareNormal = null;
      return v;
    }
    let u = 0;
    while (u === 0) u = this.prng();
    const v = this.prng();
    const r = sqrt(-2 * log(u));
    this.spareNormal = r * sin(2 * PI * v);
    return r * cos(2 * PI * v);
  }

  /** A generator of its own for a named purpose: independent of the order other parts draw in. */
  fork(label: string): SeededRandom {
    return new SeededRandom(`${this.seed}/${label}`);
  }

  /** In-place Fisher-Yates shuffle. */
  shuffle<T extends { length: number; [i: number]: unknown }>(a: T): T {
    for (let i = a.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      const t = a[i];
      a[i] = a[j];
      a[j] = t;
    }
    return a;
  }

  /** The generator's state, to resume it later with `new SeededRandom(seed, state)`. */
  state(): seedrandom.State.Alea {
    return this.prng.state();
  }
}

/** A 32-bit hash of a seed and labels: deterministic seeds for tfjs ops and initializers. */
export function deriveSeed(seed: SeedLike, ...labels: (string | number)[]): number {
  const s = `${seed}/${labels.join('/')}`;
  // FNV-1a then a murmur-style finalizer.
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}
