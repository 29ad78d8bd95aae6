// Fast standard normals from a SeededRandom's uniforms, for the per-cell loops of programming.
// The same Box-Muller transform as SeededRandom.normal, with the Math functions bound once at module
// load: inside a vm context (jest's test environment) every lookup of the global `Math` goes through
// the context's global interceptor and costs ~10x the call itself.
import type { SeededRandom } from '../random';

const { log, sqrt, sin, cos, PI } = Math;

/** Anything that draws standard normals (SeededRandom is one). */
export interface NormalSource {
  normal(): number;
}

/** A stream of standard normals drawn from `rng.next()` (deterministic for a given rng state). */
export function normalStream(rng: SeededRandom): NormalSource {
  let spare = 0;
  let hasSpare = false;
  return {
    normal(): number {
      if (hasSpare) {
        hasSpare = false;
        return spare;
      }
      let u = 0;
      while (u === 0) u = rng.next();
      const v = rng.next();
      const r = sqrt(-2 * log(u));
      spare = r * sin(2 * PI * v);
      hasSpare = true;
      return r * cos(2 * PI * v);
    },
  };
}
