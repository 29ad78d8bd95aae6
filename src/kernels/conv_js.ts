// NHWC convolution and its two gradients in plain JS on Float32Arrays: patches (im2col) then the
// blocked matrix product of gemm.ts, in chunks of whole images so the patch buffer stays bounded.
import { ConvGeometry } from './geometry';
import { gemmNT, transpose2d } from './gemm';
import { col2imAdd, im2col, im2colT } from './im2col';

/** Most floats a patch buffer may hold (8 MB); a single image larger than that is one chunk. */
export const CHUNK_FLOATS = 1 << 21;

function imagesPerChunk(g: ConvGeometry, K: number, chunkFloats: number): number {
  return Math.max(1, Math.min(g.batch, Math.floor(chunkFloats / Math.max(1, K * g.outH * g.outW))));
}

/** y = conv2d(x, w): x [batch, inH, inW, inC], w [kh, kw, inC, outC] -> [batch, outH, outW, outC]. */
export function conv2dForward(x: Float32Array, w: Float32Array, g: ConvGeometry, chunkFloats = CHUNK_FLOATS): Float32Array {
  const K = g.kh * g.kw * g.inC;
  const P = g.outH * g.outW;
  const C = g.outC;
  const out = new Float32Array(g.batch * P * C);
  if (out.length === 0) return out;
  const wT = transpose2d(w, K, C, new Float32Array(K * C));
  const per = imagesPerChunk(g, K, chunkFloats);
  const patches = new Float32Array(per * P * K);
  for (let b0 = 0; b0 < g.batch; b0 += per) {
    const b1 = Math.min(g.batch, b0 + per);
    im2col(x, g, b0, b1, patches);
    gemmNT(patches, wT, out.subarray(b0 * P * C, b1 * P * C), (b1 - b0) * P, C, K);
  }
  return out;
}

/** dw = dL/dw of conv2d: x [batch, inH, inW, inC], dy [batch, outH, outW, outC] -> [kh, kw, inC, outC]. */
export function conv2dBackpropFilter(x: Float32Array, dy: Float32Array, g: ConvGeometry, chunkFloats = CHUNK_FLOATS): Float32Array {
  const K = g.kh * g.kw * g.inC;
  const P = g.outH * g.outW;
  const C = g.outC;
  const acc = new Float64Array(K * C);
  if (g.batch * P > 0) {
    const per = imagesPerChunk(g, K, chunkFloats);
    const patchesT = new Float32Array(per * P * K);
    const dyT = new Float32Array(per * P * C);
    for (let b0 = 0; b0 < g.batch; b0 += per) {
      const b1 = Math.min(g.batch, b0 + per);
      const L = (b1 - b0) * P;
      im2colT(x, g, b0, b1, patchesT);
      transpose2d(dy.subarray(b0 * P * C, b1 * P * C), L, C, dyT);
      gemmNT(patchesT, dyT, acc, K, C, L, true);
    }
  }
  return Float32Array.from(acc);
}

/** dx = dL/dx of conv2d: dy [batch, outH, outW, outC], w [kh, kw, inC, outC] -> [batch, inH, inW, inC]. */
export function conv2dBackpropInput(dy: Float32Array, w: Float32Array, g: ConvGeometry, chunkFloats = CHUNK_FLOATS): Float32Array {
  const K = g.kh * g.kw * g.inC;
  const P = g.outH * g.outW;
  const C = g.outC;
  const dx = new Float32Array(g.batch * g.inH * g.inW * g.inC);
  if (g.batch * P === 0) return dx;
  const per = imagesPerChunk(g, K, chunkFloats);
  const dP = new Float32Array(per * P * K);
  for (let b0 = 0; b0 < g.batch; b0 += per) {
    const b1 = Math.min(g.batch, b0 + per);
    const L = (b1 - b0) * P;
    gemmNT(dy.subarray(b0 * P * C, b1 * P * C), w, dP, L, K, C);
    col2imAdd(dP, g, b0, b1, dx);
  }
  return dx;
}
