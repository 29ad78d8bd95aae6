// IR drop in a memristor crossbar: an exact nodal solution for small arrays (tests, calibration)
// and a fast approximation for inference.
//
// The circuit (R rows x C columns, conductances G[i*C + j] in uS, row-major):
//   word line i is driven at its left end by an ideal source v[i] (volts) through one wire segment;
//   it runs to the right through cell nodes a(i,0..C-1), one segment r between neighbours, open at
//   the right end.
//   bit line j runs down through cell nodes b(0..R-1, j), one segment r between neighbours, open at
//   the top, and from b(R-1, j) through one more segment into the virtual ground (0 V) of the
//   column's sense amplifier, where the column current I_j is read.
//   cell (i, j) is a linear conductance G_ij between a(i, j) and b(i, j).
// Every segment has resistance r = rWire ohms, i.e. conductance gw = 1e6 / r uS; currents come out
// in uA (V x uS). With r = 0 every node sits at its ideal potential and I_j = sum_i v_i G_ij.
//
// The circuit is linear, so the column currents are linear in v: I = v . Geff for an effective
// conductance matrix Geff (R x C) that depends only on G and r. Crossbar inference should compute
// Geff once per array (effectiveConductances) and then use it in its matMul: IR drop costs nothing
// per input, for the exact solution as well as for the approximation.
//
// Exact: Kirchhoff's current law at the 2RC nodes gives a symmetric positive definite system (a
// grounded conductance Laplacian); it is solved by a banded Cholesky factorization with the nodes
// numbered along the shorter side, so the half bandwidth is 2 min(R, C): O(RC min(R,C)^2) to
// factor, O(RC min(R,C)) per input vector. A 64x64 array is solved in ~0.2 s, Yao's 128x16 in ~10 ms.
//
// Approximation: block Gauss-Seidel by lines, started from the ideal state (bit lines at 0 V).
// One sweep solves every word line exactly (a tridiagonal system, Thomas algorithm) with the bit
// line nodes held at their current potentials, then every bit line exactly with the word line
// nodes held. The first sweep is the first-order IR-drop correction: the drop along each word line
// from the currents of its cells, then the potential each bit line builds up above the virtual
// ground from the currents that flow into it. Each further sweep divides the remaining error by a factor that depends on r G and the
// array size (measured: ~3e4 for r = 1 ohm at 16x16, ~30 for r = 2.5 ohm at 64x64, ~4 for r = 10
// ohm at 64x64 where the IR drop reaches 68%). The iteration always converges (block
// Gauss-Seidel on a symmetric positive definite matrix) and costs O(RC) per sweep and input
// vector. Measured errors (max over columns of |I_approx - I_exact| / max_j |I_exact|, G uniform in
// 10-100 uS, inputs uniform in 0-0.2 V), asserted with margin in test/ir_drop.test.ts:
//   16x16,  r = 1 ohm   (IR drop up to 1.3%): 1 sweep 3.5e-5, 2 sweeps 1.3e-9
//   64x64,  r = 2.5 ohm (IR drop up to 33%):  1 sweep 2.9e-2, 2 sweeps 1.0e-3, 3 sweeps 3.6e-5
//   128x16, r = 2.5 ohm (IR drop up to 42%):  1 sweep 6.4e-3, 2 sweeps 4.6e-5, 3 sweeps 3.4e-7
//   64x64,  r = 10 ohm  (IR drop up to 68%):  3 sweeps 7.6e-3, 5 sweeps 4.0e-4
// The default, 3 sweeps, is below 1e-4 for arrays with IR drop up to ~40%. Time for
// effectiveConductances of one array on this machine: 128x128 approx ~0.1 s; exact 128x16 ~75 ms,
// exact 64x64 ~0.3 s.

/** Column currents (uA) without wire resistance: I_j = sum_i v_i G_ij, summed in row order (float64). */
export function idealColumnCurrents(G: ArrayLike<number>, rows: number, cols: number, v: ArrayLike<number>): Float64Array {
  checkShapes(G, rows, cols, v);
  const out = new Float64Array(cols);
  for (let i = 0; i < rows; i++) {
    const vi = v[i];
    const base = i * cols;
    for (let j = 0; j < cols; j++) out[j] += vi * G[base + j];
  }
  return out;
}

function checkShapes(G: ArrayLike<number>, rows: number, cols: number, v?: ArrayLike<number>): void {
  if (!Number.isInteger(rows) || !Number.isInteger(cols) || rows < 1 || cols < 1) {
    throw new RangeError(`a crossbar needs integer rows, cols >= 1, got ${rows} x ${cols}`);
  }
  if (G.length !== rows * cols) throw new RangeError(`G has ${G.length} values, a ${rows}x${cols} array needs ${rows * cols}`);
  if (v && v.length !== rows) throw new RangeError(`v has ${v.length} values, the array has ${rows} rows`);
}

function checkWire(rWire: number): void {
  if (!(rWire >= 0) || !Number.isFinite(rWire)) throw new RangeError(`rWire must be a finite resistance >= 0 ohm, got ${rWire}`);
}

/** Node voltages and column currents of one exact solution. */
export interface NodalSolution {
  /** Column currents into the virtual ground, uA. */
  columnCurrents: Float64Array;
  /** Word line node potentials a(i, j), volts, row-major R x C. */
  wordLine: Float64Array;
  /** Bit line node potentials b(i, j), volts, row-major R x C. */
  bitLine: Float64Array;
}

/**
 * The exact nodal solver of one array: factor once (constructor), then solve for any number of
 * input vectors. rWire > 0 (use idealColumnCurrents for r = 0).
 */
export class CrossbarNodalSolver {
  private readonly n: number;
  private readonly bw: number;
  private readonly band: Float64Array; // Cholesky factor L, lower band: L(k, k-d) at k*(bw+1) + d
  private readonly rowMajor: boolean;
  private readonly gw: number;

  constructor(
    private readonly G: ArrayLike<number>,
    readonly rows: number,
    readonly cols: number,
    readonly rWire: number,
  ) {
    checkShapes(G, rows, cols);
    checkWire(rWire);
    if (rWire === 0) throw new RangeError('CrossbarNodalSolver needs rWire > 0 (with r = 0 the currents are ideal)');
    const R = rows;
    const C = cols;
    this.gw = 1e6 / rWire;
    this.rowMajor = C <= R;
    this.n = 2 * R * C;
    this.bw = 2 * Math.min(R, C);
    const W = this.bw + 1;
    const band = new Float64Array(this.n * W);
    const gw = this.gw;
    // Lower band of the symmetric matrix; set(k, m) with k >= m.
    const add = (k: number, m: number, val: number) => {
      if (k < m) [k, m] = [m, k];
      band[k * W + (k - m)] += val;
    };
    for (let i = 0; i < R; i++) {
      for (let j = 0; j < C; j++) {
        const g = G[i * C + j];
        if (!(g >= 0) || !Number.isFinite(g)) throw new RangeError(`G[${i}, ${j}] = ${g} is not a conductance >= 0`);
        const a = this.aIndex(i, j);
        const b = a + 1;
        // word line node: its left segment (to the driver for j = 0), its right segment, the cell
        add(a, a, gw + (j < C - 1 ? gw : 0) + g);
        if (j < C - 1) add(a, this.aIndex(i, j + 1), -gw);
        add(a, b, -g);
        // bit line node: its lower segment (to ground for i = R-1), its upper segment, the cell
        add(b, b, gw + (i > 0 ? gw : 0) + g);
        if (i < R - 1) add(b, this.aIndex(i + 1, j) + 1, -gw);
      }
    }
    // Banded Cholesky in place.
    const n = this.n;
    const bw = this.bw;
    for (let k = 0; k < n; k++) {
      const j0 = Math.max(0, k - bw);
      const rowK = k * W;
      for (let j = j0; j <= k; j++) {
        let s = band[rowK + (k - j)];
        const rowJ = j * W;
        const m0 = Math.max(j0, j - bw);
        for (let m = m0; m < j; m++) s -= band[rowK + (k - m)] * band[rowJ + (j - m)];
        if (j === k) {
          if (!(s > 0)) throw new Error(`crossbar nodal matrix is not positive definite at node ${k} (pivot ${s})`);
          band[rowK] = Math.sqrt(s);
        } else {
          band[rowK + (k - j)] = s / band[rowJ];
        }
      }
    }
    this.band = band;
  }

  /** Index of the word line node a(i, j); the bit line node b(i, j) is the next one. */
  private aIndex(i: number, j: number): number {
    return this.rowMajor ? 2 * (i * this.cols + j) : 2 * (j * this.rows + i);
  }

  /** Solves for the input voltages v (length rows). */
  solve(v: ArrayLike<number>): NodalSolution {
    const R = this.rows;
    const C = this.cols;
    if (v.length !== R) throw new RangeError(`v has ${v.length} values, the array has ${R} rows`);
    const n = this.n;
    const bw = this.bw;
    const W = bw + 1;
    const L = this.band;
    const x = new Float64Array(n);
    for (let i = 0; i < R; i++) x[this.aIndex(i, 0)] = this.gw * v[i]; // the drivers
    // forward: L y = rhs
    for (let k = 0; k < n; k++) {
      let s = x[k];
      const rowK = k * W;
      for (let m = Math.max(0, k - bw); m < k; m++) s -= L[rowK + (k - m)] * x[m];
      x[k] = s / L[rowK];
    }
    // backward: L^T x = y
    for (let k = n - 1; k >= 0; k--) {
      let s = x[k];
      const mEnd = Math.min(n - 1, k + bw);
      for (let m = k + 1; m <= mEnd; m++) s -= L[m * W + (m - k)] * x[m];
      x[k] = s / L[k * W];
    }
    const wordLine = new Float64Array(R * C);
    const bitLine = new Float64Array(R * C);
    for (let i = 0; i < R; i++) {
      for (let j = 0; j < C; j++) {
        const a = this.aIndex(i, j);
        wordLine[i * C + j] = x[a];
        bitLine[i * C + j] = x[a + 1];
      }
    }
    const columnCurrents = new Float64Array(C);
    for (let j = 0; j < C; j++) columnCurrents[j] = this.gw * bitLine[(R - 1) * C + j];
    return { columnCurrents, wordLine, bitLine };
  }
}

/** Exact column currents (uA) with wire resistance rWire ohms per segment; r = 0 gives the ideal V.G. */
export function exactColumnCurrents(
  G: ArrayLike<number>,
  rows: number,
  cols: number,
  v: ArrayLike<number>,
  rWire: number,
): Float64Array {
  checkShapes(G, rows, cols, v);
  checkWire(rWire);
  if (rWire === 0) return idealColumnCurrents(G, rows, cols, v);
  return new CrossbarNodalSolver(G, rows, cols, rWire).solve(v).columnCurrents;
}

/** Sweeps of the approximation unless told otherwise. */
export const DEFAULT_SWEEPS = 3;

/** Options of the approximation. */
export interface IrDropApproxOptions {
  /** Block Gauss-Seidel sweeps (word lines then bit lines), >= 1. Default 3. */
  sweeps?: number;
}

/**
 * Approximate column currents (uA) with wire resistance: block Gauss-Seidel by lines from the
 * ideal state (see the top of this file for the method and its measured error).
 * r = 0 gives the ideal V.G exactly.
 */
export function approxColumnCurrents(
  G: ArrayLike<number>,
  rows: number,
  cols: number,
  v: ArrayLike<number>,
  rWire: number,
  opts: IrDropApproxOptions = {},
): Float64Array {
  checkShapes(G, rows, cols, v);
  checkWire(rWire);
  if (rWire === 0) return idealColumnCurrents(G, rows, cols, v);
  const sweeps = opts.sweeps ?? DEFAULT_SWEEPS;
  if (!Number.isInteger(sweeps) || sweeps < 1) throw new RangeError(`sweeps must be an integer >= 1, got ${sweeps}`);
  const ws = new LineRelaxation(G, rows, cols, rWire);
  return ws.run(v, sweeps);
}

/**
 * Scratch space and the two line solves of the approximation (reused across input vectors). The
 * Thomas algorithm's forward coefficients (cp) and pivots (m) of every word and bit line depend
 * only on G, so they are computed once, in the constructor; run() does per node one division of
 * the same operands as before (results identical to computing them per input vector).
 */
class LineRelaxation {
  readonly a: Float64Array;
  readonly b: Float64Array;
  private readonly dp: Float64Array;
  /** The forward sweep values of all word lines and of all bit lines (row-major). */
  private readonly dpW: Float64Array;
  private readonly dpB: Float64Array;
  private readonly gw: number;
  /** Word lines, row-major like G: forward coefficient and pivot of node (i, j). */
  private readonly cpW: Float64Array;
  private readonly mW: Float64Array;
  /** Bit lines, row-major too (all bit lines are swept together, row by row). */
  private readonly cpB: Float64Array;
  private readonly mB: Float64Array;

  constructor(
    private readonly G: ArrayLike<number>,
    private readonly R: number,
    private readonly C: number,
    rWire: number,
  ) {
    const gw = (this.gw = 1e6 / rWire);
    this.a = new Float64Array(R * C);
    this.b = new Float64Array(R * C);
    this.dp = new Float64Array(C);
    this.dpW = new Float64Array(R * C);
    this.dpB = new Float64Array(R * C);
    const cpW = (this.cpW = new Float64Array(R * C));
    const mW = (this.mW = new Float64Array(R * C));
    const cpB = (this.cpB = new Float64Array(R * C));
    const mB = (this.mB = new Float64Array(R * C));
    // Word lines: -gw a(j-1) + (gw + gw[j<C-1] + G) a(j) - gw a(j+1) = G b(j) (+ gw v at j = 0).
    for (let i = 0; i < R; i++) {
      const base = i * C;
      for (let j = 0; j < C; j++) {
        const diag = gw + (j < C - 1 ? gw : 0) + G[base + j];
        const m = j === 0 ? diag : diag + gw * cpW[base + j - 1];
        mW[base + j] = m;
        cpW[base + j] = -gw / m;
      }
    }
    // Bit lines: -gw b(i-1) + (gw[i>0] + gw + G) b(i) - gw b(i+1) = G a(i), b(R) = 0.
    for (let i = 0; i < R; i++) {
      for (let j = 0; j < C; j++) {
        const idx = i * C + j;
        const diag = (i > 0 ? gw : 0) + gw + G[idx];
        const m = i === 0 ? diag : diag + gw * cpB[idx - C];
        mB[idx] = m;
        cpB[idx] = -gw / m;
      }
    }
  }

  run(v: ArrayLike<number>, sweeps: number): Float64Array {
    const { R, C, G, a, b, dp, dpW, dpB, gw, cpW, mW, cpB, mB } = this;
    b.fill(0);
    for (let s = 0; s < sweeps; s++) {
      if (s === 0) {
        // Word lines with b = 0: a line without input stays at 0 V; the others one by one.
        for (let i = 0; i < R; i++) {
          const base = i * C;
          if (v[i] === 0) {
            a.fill(0, base, base + C);
            continue;
          }
          for (let j = 0; j < C; j++) {
            const rhs = G[base + j] * b[base + j] + (j === 0 ? gw * v[i] : 0);
            dp[j] = j === 0 ? rhs / mW[base] : (rhs + gw * dp[j - 1]) / mW[base + j];
          }
          a[base + C - 1] = dp[C - 1];
          for (let j = C - 2; j >= 0; j--) a[base + j] = dp[j] - cpW[base + j] * a[base + j + 1];
        }
      } else {
        // Word lines, all at once (node j of every line, then j + 1: the same operations per
        // line, with the lines' recurrences interleaved instead of one division chain).
        for (let i = 0; i < R; i++) {
          const base = i * C;
          dpW[base] = (G[base] * b[base] + gw * v[i]) / mW[base];
        }
        for (let j = 1; j < C; j++) {
          for (let i = 0; i < R; i++) {
            const idx = i * C + j;
            // (+ 0: the one-line solve's right-hand side, kept so the sums match it bit for bit)
            dpW[idx] = (G[idx] * b[idx] + 0 + gw * dpW[idx - 1]) / mW[idx];
          }
        }
        for (let i = 0; i < R; i++) a[i * C + C - 1] = dpW[i * C + C - 1];
        for (let j = C - 2; j >= 0; j--) {
          for (let i = 0; i < R; i++) {
            const idx = i * C + j;
            a[idx] = dpW[idx] - cpW[idx] * a[idx + 1];
          }
        }
      }
      // Bit lines, all at once (row by row: the same operations per line, in cache order).
      for (let j = 0; j < C; j++) dpB[j] = (G[j] * a[j]) / mB[j];
      for (let i = 1; i < R; i++) {
        const base = i * C;
        for (let j = 0; j < C; j++) {
          const idx = base + j;
          dpB[idx] = (G[idx] * a[idx] + gw * dpB[idx - C]) / mB[idx];
        }
      }
      const last = (R - 1) * C;
      for (let j = 0; j < C; j++) b[last + j] = dpB[last + j];
      for (let i = R - 2; i >= 0; i--) {
        const base = i * C;
        for (let j = 0; j < C; j++) b[base + j] = dpB[base + j] - cpB[base + j] * b[base + C + j];
      }
    }
    const out = new Float64Array(C);
    for (let j = 0; j < C; j++) out[j] = gw * b[(R - 1) * C + j];
    return out;
  }
}

/**
 * The effective conductance matrix Geff (R x C, row-major, uS) with I = v . Geff for every input v:
 * row i holds the column currents of a 1 V input on row i alone. Crossbar inference multiplies its
 * inputs by Geff instead of G (one matMul, IR drop included at no cost per input). method 'exact'
 * uses the nodal solver (one factorization, R solves), 'approx' the line relaxation (default; its
 * results are linear in v too, so Geff reproduces approxColumnCurrents exactly). rWire = 0 gives
 * Geff = G.
 */
export function effectiveConductances(
  G: ArrayLike<number>,
  rows: number,
  cols: number,
  rWire: number,
  opts: { method?: 'exact' | 'approx' } & IrDropApproxOptions = {},
): Float32Array {
  checkShapes(G, rows, cols);
  checkWire(rWire);
  const out = new Float32Array(rows * cols);
  if (rWire === 0) {
    for (let k = 0; k < rows * cols; k++) out[k] = G[k];
    return out;
  }
  const v = new Float64Array(rows);
  const method = opts.method ?? 'approx';
  const sweeps = opts.sweeps ?? DEFAULT_SWEEPS;
  if (!Number.isInteger(sweeps) || sweeps < 1) throw new RangeError(`sweeps must be an integer >= 1, got ${sweeps}`);
  const solver = method === 'exact' ? new CrossbarNodalSolver(G, rows, cols, rWire) : null;
  const relax = method === 'approx' ? new LineRelaxation(G, rows, cols, rWire) : null;
  for (let i = 0; i < rows; i++) {
    v.fill(0);
    v[i] = 1;
    const I = solver ? solver.solve(v).columnCurrents : relax!.run(v, sweeps);
    for (let j = 0; j < cols; j++) out[i * cols + j] = I[j];
  }
  return out;
}
