import {
  CrossbarNodalSolver,
  approxColumnCurrents,
  effectiveConductances,
  exactColumnCurrents,
  idealColumnCurrents,
} from '../src/crossbar/ir_drop';
import { SeededRandom } from '../src/random';
import { relErr } from './helpers';

/** G uniform in [lo, hi] uS, row-major, and inputs uniform in [0, vMax] V. */
function randomArray(rows: number, cols: number, seed: number, lo = 10, hi = 100, vMax = 0.2) {
  const rng = new SeededRandom(seed);
  const G = new Float32Array(rows * cols).map(() => lo + (hi - lo) * rng.next());
  const v = new Float64Array(rows).map(() => vMax * rng.next());
  return { G, v };
}

/**
 * An independent reference: the same circuit described as a netlist of resistors, stamped into a
 * dense conductance matrix (node numbering of its own) and solved by Gaussian elimination with
 * partial pivoting.
 */
function denseReference(G: ArrayLike<number>, R: number, C: number, v: ArrayLike<number>, r: number): Float64Array {
  const gw = 1e6 / r;
  const a = (i: number, j: number) => i * C + j; // word line nodes first
  const b = (i: number, j: number) => R * C + i * C + j; // then bit line nodes
  const n = 2 * R * C;
  const A = Array.from({ length: n }, () => new Float64Array(n));
  const rhs = new Float64Array(n);
  const between = (p: number, q: number, g: number) => {
    A[p][p] += g;
    A[q][q] += g;
    A[p][q] -= g;
    A[q][p] -= g;
  };
  const toFixed = (p: number, g: number, volts: number) => {
    A[p][p] += g;
    rhs[p] += g * volts;
  };
  for (let i = 0; i < R; i++) {
    toFixed(a(i, 0), gw, v[i]); // driver segment
    for (let j = 0; j + 1 < C; j++) between(a(i, j), a(i, j + 1), gw);
  }
  for (let j = 0; j < C; j++) {
    for (let i = 0; i + 1 < R; i++) between(b(i, j), b(i + 1, j), gw);
    toFixed(b(R - 1, j), gw, 0); // into the virtual ground
  }
  for (let i = 0; i < R; i++) for (let j = 0; j < C; j++) between(a(i, j), b(i, j), G[i * C + j]);
  // Gaussian elimination with partial pivoting
  for (let k = 0; k < n; k++) {
    let p = k;
    for (let m = k + 1; m < n; m++) if (Math.abs(A[m][k]) > Math.abs(A[p][k])) p = m;
    [A[k], A[p]] = [A[p], A[k]];
    [rhs[k], rhs[p]] = [rhs[p], rhs[k]];
    for (let m = k + 1; m < n; m++) {
      const f = A[m][k] / A[k][k];
      if (f === 0) continue;
      for (let q = k; q < n; q++) A[m][q] -= f * A[k][q];
      rhs[m] -= f * rhs[k];
    }
  }
  const x = new Float64Array(n);
  for (let k = n - 1; k >= 0; k--) {
    let s = rhs[k];
    for (let q = k + 1; q < n; q++) s -= A[k][q] * x[q];
    x[k] = s / A[k][k];
  }
  return new Float64Array(C).map((_, j) => gw * x[b(R - 1, j)]);
}

/** The largest relative IR-drop loss of a column: max_j (I_ideal - I) / I_ideal. */
function maxDrop(I: ArrayLike<number>, ideal: ArrayLike<number>): number {
  let d = 0;
  for (let j = 0; j < I.length; j++) d = Math.max(d, (ideal[j] - I[j]) / ideal[j]);
  return d;
}

describe('exact nodal solution', () => {
  test('one cell: V / (2 r + 1/G)', () => {
    // 0.2 V through 1 ohm, 50 uS, 1 ohm: 0.2 / (2 + 20000) A = 9.99900010 uA
    const I = exactColumnCurrents([50], 1, 1, [0.2], 1);
    expect(I[0]).toBeCloseTo((0.2 / (2 + 1e6 / 50)) * 1e6, 10);
    const I2 = exactColumnCurrents([50], 1, 1, [0.2], 1000);
    expect(I2[0]).toBeCloseTo((0.2 / (2000 + 1e6 / 50)) * 1e6, 10);
  });

  test.each([
    [6, 4, 3],
    [4, 6, 3],
    [5, 5, 20],
    [1, 7, 10],
    [7, 1, 10],
  ])('%ix%i array, r = %i ohm: the same currents as a dense netlist solution', (R, C, r) => {
    const { G, v } = randomArray(R, C, R * 10 + C);
    const exact = exactColumnCurrents(G, R, C, v, r);
    const ref = denseReference(G, R, C, v, r);
    expect(relErr(exact, ref)).toBeLessThan(1e-10);
    expect(maxDrop(exact, idealColumnCurrents(G, R, C, v))).toBeGreaterThan(1e-4); // the wires matter
  });

  test("Kirchhoff's current law holds at every node; the column currents equal the cells' currents", () => {
    const R = 12;
    const C = 9;
    const r = 5;
    const gw = 1e6 / r;
    const { G, v } = randomArray(R, C, 3);
    const s = new CrossbarNodalSolver(G, R, C, r).solve(v);
    const a = (i: number, j: number) => s.wordLine[i * C + j];
    const b = (i: number, j: number) => s.bitLine[i * C + j];
    let worst = 0;
    for (let i = 0; i < R; i++) {
      for (let j = 0; j < C; j++) {
        const g = G[i * C + j];
        const cell = g * (a(i, j) - b(i, j));
        const left = gw * ((j === 0 ? v[i] : a(i, j - 1)) - a(i, j));
        const right = j < C - 1 ? gw * (a(i, j + 1) - a(i, j)) : 0;
        const up = i > 0 ? gw * (b(i - 1, j) - b(i, j)) : 0;
        const down = gw * ((i < R - 1 ? b(i + 1, j) : 0) - b(i, j));
        worst = Math.max(worst, Math.abs(left + right - cell), Math.abs(up + down + cell));
      }
    }
    expect(worst).toBeLessThan(1e-9); // uA, against currents of ~1-20 uA
    for (let j = 0; j < C; j++) {
      let sum = 0;
      for (let i = 0; i < R; i++) sum += G[i * C + j] * (a(i, j) - b(i, j));
      expect(s.columnCurrents[j]).toBeCloseTo(sum, 9);
    }
    // potentials fall along the word lines away from the drivers, and along the bit lines towards
    // the virtual ground, staying above it
    for (let i = 0; i < R; i++) for (let j = 1; j < C; j++) expect(a(i, j)).toBeLessThan(a(i, j - 1));
    for (let j = 0; j < C; j++) for (let i = 1; i < R; i++) expect(b(i, j)).toBeLessThan(b(i - 1, j));
    for (let j = 0; j < C; j++) expect(b(R - 1, j)).toBeGreaterThan(0);
  });

  test('more wire resistance, less current; every column below its ideal current', () => {
    const { G, v } = randomArray(16, 16, 5);
    const ideal = idealColumnCurrents(G, 16, 16, v);
    let prev = ideal;
    for (const r of [0.5, 2, 8, 32]) {
      const I = exactColumnCurrents(G, 16, 16, v, r);
      for (let j = 0; j < 16; j++) expect(I[j]).toBeLessThan(prev[j]);
      prev = I;
    }
  });
});

describe('r = 0 gives I = V.G exactly', () => {
  test('exact, approximate and effective conductances', () => {
    const R = 10;
    const C = 7;
    const { G, v } = randomArray(R, C, 8);
    const dot = new Float64Array(C);
    for (let j = 0; j < C; j++) {
      let s = 0;
      for (let i = 0; i < R; i++) s += v[i] * G[i * C + j];
      dot[j] = s;
    }
    expect(exactColumnCurrents(G, R, C, v, 0)).toEqual(dot);
    expect(approxColumnCurrents(G, R, C, v, 0)).toEqual(dot);
    expect(idealColumnCurrents(G, R, C, v)).toEqual(dot);
    expect(effectiveConductances(G, R, C, 0)).toEqual(G);
    expect(effectiveConductances(G, R, C, 0, { method: 'exact' })).toEqual(G);
  });
});

describe('the approximation against the exact solution', () => {
  test('16x16, G 10-100 uS, r = 1 ohm: < 1e-4 after one sweep, < 1e-7 after two', () => {
    for (const seed of [1, 2, 3]) {
      const { G, v } = randomArray(16, 16, seed);
      const exact = exactColumnCurrents(G, 16, 16, v, 1);
      expect(maxDrop(exact, idealColumnCurrents(G, 16, 16, v))).toBeGreaterThan(0.005); // ~1% IR drop to correct
      expect(relErr(approxColumnCurrents(G, 16, 16, v, 1, { sweeps: 1 }), exact)).toBeLessThan(1e-4);
      expect(relErr(approxColumnCurrents(G, 16, 16, v, 1, { sweeps: 2 }), exact)).toBeLessThan(1e-7);
      expect(relErr(approxColumnCurrents(G, 16, 16, v, 1), exact)).toBeLessThan(1e-7); // default: 3 sweeps
    }
  });

  test('64x64, r = 2.5 ohm (IR drop over 20%): 3 sweeps < 2e-4, each sweep better', () => {
    const { G, v } = randomArray(64, 64, 4);
    const exact = exactColumnCurrents(G, 64, 64, v, 2.5);
    expect(maxDrop(exact, idealColumnCurrents(G, 64, 64, v))).toBeGreaterThan(0.2);
    const errs = [1, 2, 3, 4].map((s) => relErr(approxColumnCurrents(G, 64, 64, v, 2.5, { sweeps: s }), exact));
    for (let k = 1; k < errs.length; k++) expect(errs[k]).toBeLessThan(errs[k - 1] / 5);
    expect(errs[2]).toBeLessThan(2e-4);
    expect(errs[0]).toBeLessThan(0.05);
  });

  test("Yao's 128x16 array, r = 2.5 ohm: 3 sweeps < 1e-5", () => {
    const { G, v } = randomArray(128, 16, 6, 2, 20);
    const exact = exactColumnCurrents(G, 128, 16, v, 2.5);
    expect(relErr(approxColumnCurrents(G, 128, 16, v, 2.5), exact)).toBeLessThan(1e-5);
  });

  test('the ideal model is a poor approximation where IR drop matters (the test can tell)', () => {
    const { G, v } = randomArray(64, 64, 4);
    const exact = exactColumnCurrents(G, 64, 64, v, 2.5);
    expect(relErr(idealColumnCurrents(G, 64, 64, v), exact)).toBeGreaterThan(0.1);
  });
});

describe('effective conductances for inference', () => {
  test('v . Geff gives the column currents of the solver, exact and approximate', () => {
    const R = 20;
    const C = 12;
    const r = 4;
    const { G } = randomArray(R, C, 9);
    const exactG = effectiveConductances(G, R, C, r, { method: 'exact' });
    const approxG = effectiveConductances(G, R, C, r);
    const rng = new SeededRandom(10);
    for (let t = 0; t < 5; t++) {
      const v = new Float64Array(R).map(() => 0.2 * rng.next());
      const viaGeff = (Geff: Float32Array) => {
        const out = new Float64Array(C);
        for (let i = 0; i < R; i++) for (let j = 0; j < C; j++) out[j] += v[i] * Geff[i * C + j];
        return out;
      };
      // float32 storage of Geff: 1e-6 relative
      expect(relErr(viaGeff(exactG), exactColumnCurrents(G, R, C, v, r))).toBeLessThan(1e-6);
      expect(relErr(viaGeff(approxG), approxColumnCurrents(G, R, C, v, r))).toBeLessThan(1e-6);
    }
    // IR drop lowers every effective conductance; the far corner loses most
    for (let k = 0; k < R * C; k++) expect(exactG[k]).toBeLessThan(G[k]);
    const loss = (i: number, j: number) => 1 - exactG[i * C + j] / G[i * C + j];
    expect(loss(0, C - 1)).toBeGreaterThan(loss(R - 1, 0));
  });

  test('bad shapes and resistances are refused', () => {
    expect(() => exactColumnCurrents([1, 2, 3], 2, 2, [0, 0], 1)).toThrow('G has 3 values, a 2x2 array needs 4');
    expect(() => approxColumnCurrents([1, 2, 3, 4], 2, 2, [0], 1)).toThrow('v has 1 values, the array has 2 rows');
    expect(() => exactColumnCurrents([1, 2, 3, 4], 2, 2, [0, 0], -1)).toThrow('rWire must be a finite resistance >= 0 ohm, got -1');
    expect(() => approxColumnCurrents([1, 2, 3, 4], 2, 2, [0, 0], 1, { sweeps: 0 })).toThrow('sweeps must be an integer >= 1, got 0');
    expect(() => new CrossbarNodalSolver([1, NaN, 3, 4], 2, 2, 1)).toThrow('G[0, 1] = NaN is not a conductance >= 0');
  });
});
