// The WebAssembly SIMD kernels of crossbar inference (src/crossbar/simd.ts) against scalar
// references: the DAC to the bit (by hand, and against its definition with Math.round), the noisy
// read to the bit (float32, the same xorshift streams), and the statistics of its draws.
import { simdAvailable, simdDac, simdNoisyFinish } from '../src/crossbar/simd';
import { FastNormal } from '../src/crossbar';

const f = Math.fround;

/**
 * The DAC by its definition: code c = min(round(|x| k), N) (Math.round: halves up), the output the
 * float32 nearest c / N with the sign of x (+0 for -0: a zero input gives code 0), and its square.
 */
function dacRef(x: Float32Array, N: number, k: number): { u: Float32Array; u2: Float32Array } {
  const u = new Float32Array(x.length);
  const u2 = new Float32Array(x.length);
  for (let i = 0; i < x.length; i++) {
    const c = Math.min(Math.round(Math.abs(x[i]) * k), N);
    const w = f((x[i] < 0 ? -c : c) / N);
    u[i] = w;
    u2[i] = w * w;
  }
  return { u, u2 };
}

function table(seed: number): Float32Array {
  const g = new FastNormal(seed);
  return Float32Array.from({ length: 65536 }, () => g.normal());
}

/** The kernel's computation in scalar float32: four xorshift32 lanes, pieces of whole 4*cout blocks, a tail on lane 0. */
function noisyRef(z: Float32Array, v: Float32Array, cout: number, T: Float32Array, w: number, ws: number, bias: Float32Array, relu: boolean, lanes: number[]): Float32Array {
  const L = z.length;
  const out = new Float32Array(L);
  const unit = 4 * cout;
  const piece = Math.max(1, Math.floor(4096 / unit)) * unit;
  const next = (l: number) => {
    let s = lanes[l];
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    lanes[l] = s;
    return T[s >>> 16];
  };
  const value = (i: number, g: number) => {
    const y = f(f(f(f(w) * z[i]) + f(f(f(ws) * f(Math.sqrt(Math.abs(v[i])))) * g)) + bias[i % cout]);
    return relu ? Math.max(y, 0) : y;
  };
  for (let s = 0; s < L; s += piece) {
    const n = Math.min(piece, L - s);
    const m = (n >> 2) << 2;
    for (let i = 0; i < m; i += 4) {
      const g = [0, 1, 2, 3].map(next);
      for (let l = 0; l < 4; l++) out[s + i + l] = value(s + i + l, g[l]);
    }
    for (let i = m; i < n; i++) out[s + i] = value(s + i, next(0));
  }
  return out;
}

describe('WebAssembly SIMD kernels', () => {
  test('present on Node >= 20', () => {
    expect(simdAvailable()).toBe(true);
  });

  test('the DAC by hand: codes, halves rounded up, clipping at full scale, NaN', () => {
    // 4 bits (N = 15) at full scale 0.9375 (k = 16): 0.40625 -> 6.5 -> code 7 (up, not to even);
    // 0.25 -> 4; -0.09375 -> -1.5 -> -2; 0.03125 -> 0.5 -> 1; 0.9 (float32 0.899999976) -> 14.4 -> 14;
    // 2 and -Infinity -> +-15 (clipped); -0 -> +0; NaN stays NaN
    const x = Float32Array.of(0.40625, 0.25, -0.09375, 0.03125, 0.9, 2, -Infinity, -0, NaN);
    const u = new Float32Array(x.length);
    const u2 = new Float32Array(x.length);
    expect(simdDac(x, u, u2, 15, 16)).toBe(true);
    const want = [7 / 15, 4 / 15, -2 / 15, 1 / 15, 14 / 15, 1, -1, 0, NaN].map(f);
    expect(Array.from(u)).toEqual(want);
    expect(Object.is(u[7], 0)).toBe(true);
    expect(Array.from(u2)).toEqual(want.map((w) => f(w * w)));
  });

  test('the DAC equals its definition to the bit (ties, zeros of both signs, NaN, infinities, clipping, odd lengths)', () => {
    for (const [N, xs, n] of [
      [255, 1, 10001],
      [255, 2.5635249614715576, 9000],
      [15, 0.3, 33],
      [1, 1, 7],
    ]) {
      const k = N / xs;
      const x = Float32Array.from({ length: n }, (_, i) => {
        if (i % 97 === 0) return NaN;
        if (i % 89 === 0) return -0;
        if (i % 83 === 0) return i % 2 ? Infinity : -Infinity;
        if (i % 7 === 0) return (Math.floor((i * 7919) % (2 * N)) + 0.5) / k; // half-way between codes
        if (i % 5 === 0) return 0;
        return (((i * 2654435761) % 1000) / 1000 - 0.3) * 2.5 * xs;
      });
      const want = dacRef(x, N, k);
      const u = new Float32Array(n);
      const u2 = new Float32Array(n);
      expect(simdDac(x, u, u2, N, k)).toBe(true);
      const differ = [];
      for (let i = 0; i < n; i++) if (!Object.is(u[i], want.u[i]) || !Object.is(u2[i], want.u2[i])) differ.push([x[i], u[i], want.u[i]]);
      expect(differ).toEqual([]);
      const uOnly = new Float32Array(n);
      simdDac(x, uOnly, null, N, k);
      expect(Array.from(uOnly)).toEqual(Array.from(u));
    }
  });

  test('the noisy read equals its scalar float32 definition (ReLU or not, cout a multiple of 4 or not, runs longer than a piece)', () => {
    const T = table(3);
    for (const [cout, positions, relu] of [
      [8, 784 * 3, true],
      [12, 144, false],
      [10, 1001, true],
      [2, 3, false],
    ] as [number, number, boolean][]) {
      const L = cout * positions;
      const z = Float32Array.from({ length: L }, (_, i) => Math.sin(i) * 3);
      const v = Float32Array.from({ length: L }, (_, i) => (i % 3 === 0 ? 0 : Math.abs(Math.cos(i)) * 7));
      const bias = Float32Array.from({ length: cout }, (_, j) => 0.1 * j - 0.3);
      const seeds = [11, 22, 33, 44];
      let s = 0;
      const owner = {};
      const out = new Float32Array(L + 5);
      expect(simdNoisyFinish(z, v, 0, out, 5, L, cout, T, 1.5, 0.02, bias, relu, owner, () => seeds[s++])).toBe(true);
      const want = noisyRef(z, v, cout, T, 1.5, 0.02, bias, relu, seeds.slice());
      expect(Array.from(out.subarray(5))).toEqual(Array.from(want));
      // the streams go on from where they stopped (new draws, not a repeat)
      const again = new Float32Array(L + 5);
      simdNoisyFinish(z, v, 0, again, 5, L, cout, T, 1.5, 0.02, bias, relu, owner, () => 0);
      expect(Array.from(again)).not.toEqual(Array.from(out));
    }
  });

  test('the draws are standard normal and independent', () => {
    const T = table(7);
    const cout = 8;
    const L = cout * 25000;
    const z = new Float32Array(L);
    const v = new Float32Array(L).fill(1);
    const out = new Float32Array(L);
    let s = 1;
    simdNoisyFinish(z, v, 0, out, 0, L, cout, T, 1, 1, new Float32Array(cout), false, {}, () => s++ * 0x2545f491);
    let mean = 0;
    for (const x of out) mean += x / L;
    let vr = 0;
    let c1 = 0;
    let c4 = 0;
    for (let i = 0; i < L; i++) {
      vr += (out[i] - mean) ** 2 / L;
      if (i >= 1) c1 += ((out[i] - mean) * (out[i - 1] - mean)) / L;
      if (i >= 4) c4 += ((out[i] - mean) * (out[i - 4] - mean)) / L;
    }
    expect(Math.abs(mean)).toBeLessThan(0.02);
    expect(Math.abs(vr - 1)).toBeLessThan(0.02);
    // neighbours (other lanes) and the same lane's next draw (4 on) are uncorrelated
    expect(Math.abs(c1)).toBeLessThan(0.02);
    expect(Math.abs(c4)).toBeLessThan(0.02);
  });
});
