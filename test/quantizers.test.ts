import { tf } from '../src/tf';
import { quantizers, getQuantizer, serializeQuantizer } from '../layers/quantizers';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

const xs = [-2, -1, -0.5, 0, 0.25, 0.5, 1, 2];
const fwd = (q: (x: tf.Tensor) => tf.Tensor, v = xs) => Array.from(q(tf.tensor1d(v)).dataSync());
const grad = (q: (x: tf.Tensor) => tf.Tensor, v = xs) => Array.from(tf.grad((x: tf.Tensor) => q(x).sum())(tf.tensor1d(v)).dataSync());

describe('steSign', () => {
  test('forward: sign with sign(0) = +1', () => {
    expect(fwd(quantizers.steSign())).toEqual([-1, -1, -1, 1, 1, 1, 1, 1]);
  });
  test('gradient: 1 where |x| <= 1, else 0; clipValue configurable', () => {
    expect(grad(quantizers.steSign())).toEqual([0, 1, 1, 1, 1, 1, 1, 0]);
    expect(grad(quantizers.steSign({ clipValue: 0.5 }))).toEqual([0, 0, 1, 1, 1, 1, 0, 0]);
  });
  test('upstream gradient is multiplied through', () => {
    const g = tf.grad((x: tf.Tensor) => quantizers.steSign()(x).mul(tf.tensor1d([3, 3, 3]) ).sum())(tf.tensor1d([0.2, -0.9, 1.5]));
    expect(Array.from(g.dataSync())).toEqual([3, 3, 0]);
  });
});

describe('approxSign', () => {
  test('same forward, gradient 2 - 2|x| inside [-1, 1]', () => {
    expect(fwd(quantizers.approxSign())).toEqual([-1, -1, -1, 1, 1, 1, 1, 1]);
    const g = grad(quantizers.approxSign());
    [0, 0, 1, 2, 1.5, 1, 0, 0].forEach((v, i) => expect(g[i]).toBeCloseTo(v, 6));
  });
});

describe('steHeaviside', () => {
  test('forward 1 where x > threshold (default 0.5, Park et al.)', () => {
    expect(fwd(quantizers.steHeaviside())).toEqual([0, 0, 0, 0, 0, 0, 1, 1]);
    expect(fwd(quantizers.steHeaviside({ threshold: 0 }))).toEqual([0, 0, 0, 0, 1, 1, 1, 1]);
  });
  test('gradient 1 inside the window around the threshold', () => {
    // default window 0.5 around 0.5: [0, 1]
    expect(grad(quantizers.steHeaviside())).toEqual([0, 0, 0, 1, 1, 1, 1, 0]);
    expect(grad(quantizers.steHeaviside({ window: 0.25 }))).toEqual([0, 0, 0, 0, 1, 1, 0, 0]);
  });
});

describe('steUniform', () => {
  test('3-bit DoReFa on [0, 1]: round(x * 7) / 7, clipped', () => {
    const v = [-0.3, 0, 0.1, 0.5, 0.93, 1.4];
    const out = fwd(quantizers.steUniform({ bits: 3 }), v);
    [0, 0, 1 / 7, 4 / 7, 1, 1].forEach((e, i) => expect(out[i]).toBeCloseTo(e, 6));
    // identity gradient inside [0, 1] only
    expect(grad(quantizers.steUniform({ bits: 3 }), v)).toEqual([0, 1, 1, 1, 1, 0]);
  });
  test('15 signed levels on [-1, 1] (Yao: difference of two 8-level devices)', () => {
    const v = [-1, -0.45, -0.07, 0, 0.08, 0.3, 1];
    const out = fwd(quantizers.steUniform({ levels: 15, signed: true }), v);
    // step 2/14 = 1/7: levels k/7
    [-1, -3 / 7, 0, 0, 1 / 7, 2 / 7, 1].forEach((e, i) => expect(out[i]).toBeCloseTo(e, 6));
    expect(new Set(fwd(quantizers.steUniform({ levels: 15, signed: true }), Array.from({ length: 301 }, (_, i) => -1.5 + i / 100)).map((x) => x.toFixed(5))).size).toBe(15);
  });
  test("scale 'max' spans the values present and passes the whole gradient", () => {
    const v = [-0.2, -0.04, 0.01, 0.1, 0.3];
    const q = quantizers.steUniform({ levels: 7, signed: true, scale: 'max' });
    const out = fwd(q, v);
    // s = 0.3, levels k/3 of s: x/s = -0.667, -0.133, 0.033, 0.333, 1 -> -2/3, 0, 0, 1/3, 1
    const s = 0.3;
    [(-2 / 3) * s, 0, 0, (1 / 3) * s, s].forEach((e, i) => expect(out[i]).toBeCloseTo(e, 6));
    expect(grad(q, v)).toEqual([1, 1, 1, 1, 1]);
  });
  test('levels and bits validated', () => {
    expect(() => quantizers.steUniform({ levels: 1 })).toThrow(/levels/);
    expect(() => quantizers.steUniform({ bits: 3, levels: 8 })).toThrow(/bits or levels/);
  });
});

describe('magnitudeAwareSign', () => {
  test('per-output-channel mean |w| times sign', () => {
    const w = tf.tensor2d([[1, -0.2], [-3, 0.6]]); // channels are the columns
    const out = quantizers.magnitudeAwareSign()(w).arraySync() as number[][];
    expect(out[0][0]).toBeCloseTo(2, 6);
    expect(out[1][0]).toBeCloseTo(-2, 6);
    expect(out[0][1]).toBeCloseTo(-0.4, 6);
    expect(out[1][1]).toBeCloseTo(0.4, 6);
  });
});

describe('identifiers and serialization', () => {
  test('by name, by spec object, round trip', () => {
    const q = getQuantizer('steSign')!;
    expect(q.levels).toBe(2);
    const spec = serializeQuantizer(quantizers.steUniform({ levels: 15, signed: true, scale: 'max' }))!;
    expect(spec).toEqual({ className: 'SteUniform', config: { levels: 15, signed: true, scale: 'max' } });
    const back = getQuantizer(spec)!;
    expect(fwd(back, [0.3, -0.1])).toEqual(fwd(quantizers.steUniform({ levels: 15, signed: true, scale: 'max' }), [0.3, -0.1]));
    expect(getQuantizer(null)).toBeNull();
    expect(() => getQuantizer('noSuchQuantizer')).toThrow(/noSuchQuantizer/);
  });
});
