// AssemblyScript (compiled with conv.ts into wasm/heap_kernels.wasm by build.js here): Adam's update
// of one variable in one pass over the tfjs wasm backend's heap, driven by src/kernels/adam.ts.
// tfjs's AdamOptimizer spends 14 kernels per variable on it (each a trip through the engine, which
// is most of the cost for small layers: a third of an mcnn step's kernels); this is one. Every
// operation is the float32 operation tfjs's op chain does, in the same order, so the results are
// the same bits:
//   m' = m b1 + g (1 - b1)            v' = v b2 + g^2 (1 - b2)
//   x' = (m' / c1) / (sqrt(v' / c2) + eps) (-lr) + x      (c1 = 1 - b1^t, c2 = 1 - b2^t)
// Arguments named like tensors are byte offsets; n is the element count.

export function adamUpdate(x: usize, m: usize, v: usize, g: usize, xo: usize, mo: usize, vo: usize, n: i32, b1: f32, ob1: f32, b2: f32, ob2: f32, c1: f32, c2: f32, eps: f32, negLr: f32): void {
  const B1 = f32x4.splat(b1), OB1 = f32x4.splat(ob1), B2 = f32x4.splat(b2), OB2 = f32x4.splat(ob2);
  const C1 = f32x4.splat(c1), C2 = f32x4.splat(c2), EPS = f32x4.splat(eps), NLR = f32x4.splat(negLr);
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    const o = <usize>i << 2;
    const G = v128.load(g + o);
    const M = f32x4.add(f32x4.mul(v128.load(m + o), B1), f32x4.mul(G, OB1));
    const V = f32x4.add(f32x4.mul(v128.load(v + o), B2), f32x4.mul(f32x4.mul(G, G), OB2));
    const step = f32x4.div(f32x4.div(M, C1), f32x4.add(f32x4.sqrt(f32x4.div(V, C2)), EPS));
    v128.store(xo + o, f32x4.add(f32x4.mul(step, NLR), v128.load(x + o)));
    v128.store(mo + o, M);
    v128.store(vo + o, V);
  }
  for (; i < n; i++) {
    const o = <usize>i << 2;
    const G = load<f32>(g + o);
    const M = load<f32>(m + o) * b1 + G * ob1;
    const V = load<f32>(v + o) * b2 + G * G * ob2;
    const step = M / c1 / (Mathf.sqrt(V / c2) + eps);
    store<f32>(xo + o, step * negLr + load<f32>(x + o));
    store<f32>(mo + o, M);
    store<f32>(vo + o, V);
  }
}
