// Quantizers: forward values and tf.grad gradients against hand-computed numbers, identifiers,
// serialization, validation and tensor hygiene.
import { tf } from '../src/tf';
import { ConfigError } from '../src/errors';
import { quantizers, getQuantizer, serializeQuantizer, isQuantizer, isFloat, Quantizer } from '../layers/quantizers';
import { fieldOf } from './helpers';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

const XS = [-2, -1, -0.5, 0, 0.5, 1, 2];
const fwd = (q: Quantizer, v: number[] = XS) => tf.tidy(() => Array.from(q(tf.tensor1d(v)).dataSync()));
const grad = (q: Quantizer, v: number[] = XS) => tf.tidy(() => Array.from(tf.grad((x: tf.Tensor) => q(x).sum())(tf.tensor1d(v)).dataSync()));
const close = (got: number[], want: number[], digits = 6) => {
  expect(got).toHaveLength(want.length);
  want.forEach((w, i) => expect(got[i]).toBeCloseTo(w, digits));
};

describe('steSign', () => {
  test('forward: sign with sign(0) = +1', () => {
    expect(fwd(quantizers.steSign())).toEqual([-1, -1, -1, 1, 1, 1, 1]);
  });
  test('gradient: dy where |x| <= 1 (the ends included), else 0', () => {
    expect(grad(quantizers.steSign())).toEqual([0, 1, 1, 1, 1, 1, 0]);
  });
  test('clipValue moves the window', () => {
    expect(grad(quantizers.steSign({ clipValue: 0.5 }))).toEqual([0, 0, 1, 1, 1, 0, 0]);
    expect(grad(quantizers.steSign({ clipValue: 2 }))).toEqual([1, 1, 1, 1, 1, 1, 1]);
  });
  test('the upstream gradient is multiplied through', () => {
    const g = tf.grad((x: tf.Tensor) => quantizers.steSign()(x).mul(tf.tensor1d([3, -2, 5])).sum())(tf.tensor1d([0.2, -0.9, 1.5]));
    expect(Array.from(g.dataSync())).toEqual([3, -2, 0]);
  });
  test('works on any rank', () => {
    const out = quantizers.steSign()(tf.tensor4d([0.1, -0.1, 0, -3], [1, 2, 2, 1]));
    expect(out.shape).toEqual([1, 2, 2, 1]);
    expect(Array.from(out.dataSync())).toEqual([1, -1, 1, -1]);
  });
});

describe('approxSign', () => {
  test('same forward as steSign', () => {
    expect(fwd(quantizers.approxSign())).toEqual([-1, -1, -1, 1, 1, 1, 1]);
  });
  test('gradient dy * (2 - 2|x|) inside [-1, 1]', () => {
    // x = -2, -1, -0.5, 0, 0.5, 1, 2 -> 0, 0, 1, 2, 1, 0, 0
    close(grad(quantizers.approxSign()), [0, 0, 1, 2, 1, 0, 0]);
    close(grad(quantizers.approxSign(), [0.25, -0.75]), [1.5, 0.5]);
  });
});

describe('steHeaviside', () => {
  const V = [-0.5, 0, 0.25, 0.5, 0.75, 1, 1.5];
  test('forward: 1 where x > 0.5 (Park et al.: read voltage), else 0 (ground)', () => {
    expect(fwd(quantizers.steHeaviside(), V)).toEqual([0, 0, 0, 0, 1, 1, 1]);
  });
  test('gradient: dy where |x - 0.5| <= 0.5, i.e. x in [0, 1]', () => {
    expect(grad(quantizers.steHeaviside(), V)).toEqual([0, 1, 1, 1, 1, 1, 0]);
  });
  test('window and threshold are configurable', () => {
    expect(grad(quantizers.steHeaviside({ window: 0.25 }), V)).toEqual([0, 0, 1, 1, 1, 0, 0]);
    expect(grad(quantizers.steHeaviside({ window: 1 }), V)).toEqual([1, 1, 1, 1, 1, 1, 1]);
    // Larq's ste_heaviside: threshold 0, window 1.
    const larq = quantizers.steHeaviside({ threshold: 0, window: 1 });
    expect(fwd(larq, [-2, -0.5, 0, 0.5, 2])).toEqual([0, 0, 0, 1, 1]);
    expect(grad(larq, [-2, -0.5, 0, 0.5, 2])).toEqual([0, 1, 1, 1, 0]);
  });
});

describe('steUniform', () => {
  test('3 bits unsigned (DoReFa): clip to [0, 1], round(7x) / 7; gradient inside [0, 1]', () => {
    const v = [-0.3, 0, 0.1, 0.5, 0.93, 1, 1.4];
    // 0.1*7 = 0.7 -> 1; 0.5*7 = 3.5 -> 4 (round half to even); 0.93*7 = 6.51 -> 7
    close(fwd(quantizers.steUniform({ bits: 3 }), v), [0, 0, 1 / 7, 4 / 7, 1, 1, 1]);
    expect(grad(quantizers.steUniform({ bits: 3 }), v)).toEqual([0, 1, 1, 1, 1, 1, 0]);
  });

  test('8 bits leaves pixel/255 values unchanged (the mcnn input)', () => {
    const v = [0, 1 / 255, 37 / 255, 128 / 255, 254 / 255, 1];
    close(fwd(quantizers.steUniform({ bits: 8 }), v), v, 7);
    expect(quantizers.steUniform({ bits: 8 }).levels).toBe(256);
  });

  test('15 signed levels on [-1, 1] are k/7 (Yao: difference of two 8-level devices)', () => {
    const v = [-1, -0.45, -0.07, 0, 0.08, 0.3, 1, 1.2];
    // (x + 1) * 7 = 0, 3.85, 6.51, 7, 7.56, 9.1, 14, 16 -> 0, 4, 7, 7, 8, 9, 14, 14 -> 2k/14 - 1
    close(fwd(quantizers.steUniform({ levels: 15, signed: true }), v), [-1, -3 / 7, 0, 0, 1 / 7, 2 / 7, 1, 1]);
    expect(grad(quantizers.steUniform({ levels: 15, signed: true }), v)).toEqual([1, 1, 1, 1, 1, 1, 1, 0]);
  });

  test('8 signed levels (3-bit code, Park) are +-1/7, +-3/7, +-5/7, +-1: no zero', () => {
    const v = [-1, -0.5, -0.01, 0.01, 0.2, 0.6, 0.99];
    close(fwd(quantizers.steUniform({ levels: 8, signed: true }), v), [-1, -3 / 7, -1 / 7, 1 / 7, 1 / 7, 5 / 7, 1]);
    const sweep = Array.from({ length: 401 }, (_, i) => -1.2 + (2.4 * i) / 400);
    const distinct = [...new Set(fwd(quantizers.steUniform({ bits: 3, signed: true }), sweep).map((x) => x.toFixed(5)))].map(Number).sort((a, b) => a - b);
    close(distinct, [-1, -5 / 7, -3 / 7, -1 / 7, 1 / 7, 3 / 7, 5 / 7, 1], 5);
  });

  test('bits and levels count the same thing: bits k = 2^k levels', () => {
    expect(quantizers.steUniform({ bits: 3, signed: true }).levels).toBe(8);
    expect(quantizers.steUniform({ bits: 3, signed: true }).config).toEqual({ levels: 8, signed: true, scale: null });
    const sweep = Array.from({ length: 1001 }, (_, i) => -1.5 + (3 * i) / 1000);
    expect(new Set(fwd(quantizers.steUniform({ levels: 7, signed: true }), sweep).map((x) => x.toFixed(5))).size).toBe(7);
    expect(new Set(fwd(quantizers.steUniform({ levels: 15, signed: true }), sweep).map((x) => x.toFixed(5))).size).toBe(15);
  });

  test("scale 'max': levels span max|x|, and the whole gradient passes", () => {
    const v = [-0.2, -0.04, 0.01, 0.1, 0.3];
    const q = quantizers.steUniform({ levels: 7, signed: true, scale: 'max' });
    // s = 0.3: x/s = -2/3, -0.133, 0.033, 1/3, 1 -> levels k/3: -2/3, 0, 0, 1/3, 1 (times s)
    close(fwd(q, v), [-0.2, 0, 0, 0.1, 0.3]);
    expect(grad(q, v)).toEqual([1, 1, 1, 1, 1]);
    // 15 levels on glorot-sized weights: every output a multiple of max|w| / 7
    const w = [0.31, -0.12, 0.05, -0.27, 0.2];
    const q15 = fwd(quantizers.steUniform({ levels: 15, signed: true, scale: 'max' }), w);
    // w/s*7 = 7, -2.71, 1.13, -6.10, 4.52 -> 7, -3, 1, -6, 5
    close(q15, [7, -3, 1, -6, 5].map((k) => (k * 0.31) / 7));
  });

  test("scale 'max' with an all-zero tensor stays zero (no NaN)", () => {
    expect(fwd(quantizers.steUniform({ levels: 15, signed: true, scale: 'max' }), [0, 0, 0])).toEqual([0, 0, 0]);
  });

  test('validation names the field', () => {
    expect(fieldOf(() => quantizers.steUniform({ levels: 1 }))).toBe('steUniform.levels');
    expect(fieldOf(() => quantizers.steUniform({ levels: 2.5 }))).toBe('steUniform.levels');
    expect(fieldOf(() => quantizers.steUniform({ bits: 3, levels: 8 }))).toBe('steUniform.bits');
    expect(fieldOf(() => quantizers.steUniform({ bits: 0 }))).toBe('steUniform.bits');
    expect(fieldOf(() => quantizers.steUniform({}))).toBe('steUniform.levels');
    expect(fieldOf(() => quantizers.steUniform({ levels: 4, scale: 'mean' as 'max' }))).toBe('steUniform.scale');
    expect(fieldOf(() => quantizers.steSign({ clipValue: -1 }))).toBe('steSign.clipValue');
    expect(fieldOf(() => quantizers.steHeaviside({ window: 0 }))).toBe('steHeaviside.window');
    expect(fieldOf(() => quantizers.steSign({ clip: 1 } as never))).toBe('steSign.clip');
  });
});

describe('magnitudeAwareSign', () => {
  test('per-output-channel (last axis) mean |w| times sign', () => {
    const w = tf.tensor2d([
      [1, -0.2],
      [-3, 0.6],
    ]);
    // column means of |w|: 2 and 0.4
    close(Array.from(quantizers.magnitudeAwareSign()(w).dataSync()), [2, -0.4, -2, 0.4]);
  });
  test('gradient: dy * scale where |w| <= 1', () => {
    const g = tf.grad((x: tf.Tensor) => quantizers.magnitudeAwareSign()(x).sum())(
      tf.tensor2d([
        [1, -0.2],
        [-3, 0.6],
      ]),
    );
    close(Array.from(g.dataSync()), [2, 0.4, 0, 0.4]);
  });
  test('conv kernels: the mean runs over kh, kw and cin', () => {
    // [1, 1, 2, 2]: channel 0 has |w| 0.5 and 1.5 (mean 1), channel 1 has 2 and 0 (mean 1)
    const k = tf.tensor4d([0.5, -2, -1.5, 0], [1, 1, 2, 2]);
    close(Array.from(quantizers.magnitudeAwareSign()(k).dataSync()), [1, -1, -1, 1]);
  });
});

describe('identity', () => {
  test('passes values and gradient, and counts as float', () => {
    const q = quantizers.identity();
    close(fwd(q, [0.3, -7]), [0.3, -7]);
    expect(grad(q, [0.3, -7])).toEqual([1, 1]);
    expect(isFloat(q)).toBe(true);
    expect(isFloat(null)).toBe(true);
    expect(isFloat(quantizers.steSign())).toBe(false);
  });
});

describe('identifiers and serialization', () => {
  test('by name in any case style', () => {
    for (const n of ['ste_sign', 'steSign', 'SteSign', 'ste-sign']) {
      const q = getQuantizer(n)!;
      expect(q.className).toBe('SteSign');
      expect(q.levels).toBe(2);
    }
    expect(getQuantizer('approx_sign')!.className).toBe('ApproxSign');
    expect(getQuantizer('magnitude_aware_sign')!.className).toBe('MagnitudeAwareSign');
    expect(getQuantizer('ste_heaviside')!.config).toEqual({ threshold: 0.5, window: 0.5 });
  });

  test('a quantizer object passes through; null gives null', () => {
    const q = quantizers.steHeaviside({ threshold: 0.2 });
    expect(getQuantizer(q)).toBe(q);
    expect(getQuantizer(null)).toBeNull();
    expect(getQuantizer(undefined)).toBeNull();
    expect(isQuantizer(q)).toBe(true);
    expect(isQuantizer(() => 1)).toBe(false);
  });

  test('every quantizer survives {className, config} -> JSON -> getQuantizer with the same outputs', () => {
    const all: Quantizer[] = [
      quantizers.steSign({ clipValue: 0.7 }),
      quantizers.approxSign(),
      quantizers.steHeaviside({ threshold: 0.3, window: 0.2 }),
      quantizers.steUniform({ bits: 4 }),
      quantizers.steUniform({ levels: 15, signed: true, scale: 'max' }),
      quantizers.magnitudeAwareSign({ clipValue: 0.5 }),
      quantizers.identity(),
    ];
    const v = [-1.3, -0.6, -0.1, 0, 0.2, 0.45, 0.9, 1.7];
    for (const q of all) {
      const spec = JSON.parse(JSON.stringify(serializeQuantizer(q)));
      const back = getQuantizer(spec)!;
      expect(back.className).toBe(q.className);
      expect(back.config).toEqual(q.config);
      expect(fwd(back, v)).toEqual(fwd(q, v));
      expect(grad(back, v)).toEqual(grad(q, v));
    }
    expect(serializeQuantizer(null)).toBeNull();
  });

  test('unknown names and malformed specs are ConfigErrors naming the field', () => {
    expect(() => getQuantizer('noSuchQuantizer', 'conv.kernelQuantizer')).toThrow(ConfigError);
    expect(() => getQuantizer('noSuchQuantizer', 'conv.kernelQuantizer')).toThrow(/conv\.kernelQuantizer.*noSuchQuantizer/);
    expect(() => getQuantizer({ className: 'Nope', config: {} })).toThrow(/className/);
    expect(() => getQuantizer({ className: 'SteUniform', config: { levels: 0 } })).toThrow(/steUniform\.levels/);
    expect(() => getQuantizer(42 as never)).toThrow(ConfigError);
  });
});

describe('tensor hygiene', () => {
  test('forward and backward inside tidy leave no tensors behind', () => {
    const x = tf.tensor2d([
      [0.3, -1.2],
      [0.9, 0.05],
    ]);
    for (const q of [quantizers.steSign(), quantizers.approxSign(), quantizers.steHeaviside(), quantizers.steUniform({ levels: 15, signed: true, scale: 'max' }), quantizers.magnitudeAwareSign()]) {
      const before = tf.memory().numTensors;
      tf.tidy(() => {
        q(x);
        tf.grad((t: tf.Tensor) => q(t).sum())(x);
      });
      expect(tf.memory().numTensors).toBe(before);
    }
  });
});

describe('call forms (Larq: ste_sign(x) and SteSign()(x))', () => {
  const x = () => tf.tensor1d([-2, -0.5, 0, 0.5, 2]);
  const vals = (t: tf.Tensor) => Array.from(t.dataSync());

  test('a factory given a tensor quantizes it with the default options, or with options after it', () => {
    tf.tidy(() => {
      expect(vals(quantizers.steSign(x()))).toEqual([-1, -1, 1, 1, 1]);
      expect(vals(quantizers.steSign(x()))).toEqual(vals(quantizers.steSign()(x())));
      expect(vals(quantizers.approxSign(x()))).toEqual([-1, -1, 1, 1, 1]);
      expect(vals(quantizers.steHeaviside(x()))).toEqual([0, 0, 0, 0, 1]);
      expect(vals(quantizers.steHeaviside(x(), { threshold: 0 }))).toEqual([0, 0, 0, 1, 1]);
      expect(vals(quantizers.magnitudeAwareSign(x()))).toEqual(vals(quantizers.magnitudeAwareSign()(x())));
      expect(vals(quantizers.identity(x()))).toEqual([-2, -0.5, 0, 0.5, 2]);
      close(vals(quantizers.steUniform(x(), { bits: 2 })), [0, 0, 0, 2 / 3, 1]);
    });
  });

  test('the tensor form keeps the straight-through gradient', () => {
    const g = tf.tidy(() => vals(tf.grad((t: tf.Tensor) => quantizers.steSign(t, { clipValue: 1 }).sum())(x())));
    expect(g).toEqual([0, 1, 1, 1, 0]);
  });

  test("Larq's names are the same functions, in both forms, and stay out of the listed names", () => {
    expect(quantizers.ste_sign).toBe(quantizers.steSign);
    expect(quantizers.SteSign).toBe(quantizers.steSign);
    expect(quantizers.approx_sign).toBe(quantizers.approxSign);
    expect(quantizers.ste_heaviside).toBe(quantizers.steHeaviside);
    expect(quantizers.MagnitudeAwareSign).toBe(quantizers.magnitudeAwareSign);
    tf.tidy(() => {
      expect(vals(quantizers.ste_sign(x()))).toEqual([-1, -1, 1, 1, 1]);
      expect(vals(quantizers.SteSign()(x()))).toEqual([-1, -1, 1, 1, 1]);
    });
    expect(Object.keys(quantizers)).toEqual(['steSign', 'approxSign', 'steHeaviside', 'steUniform', 'magnitudeAwareSign', 'identity']);
  });

  test('anything else names both forms', () => {
    const e = () => (quantizers.steSign as (a: unknown, b?: unknown) => unknown);
    expect(() => e()([1, -1])).toThrow(/steSign: takes options or a tensor: steSign\(x\) quantizes the tensor x, steSign\(opts\) makes a quantizer.*an array \(wrap it: tf\.tensor/);
    expect(() => e()(3)).toThrow(/steSign\(x\)/);
    expect(() => e()({ clipValue: 1 }, { clipValue: 2 })).toThrow(/steSign\(x, opts\)/);
    expect(() => quantizers.steSign({ kept: true } as never)).toThrow(/steSign\.kept: unknown option \(known: clipValue\)/);
  });

  test('the tensor form leaves only its result behind', () => {
    const t = x();
    const before = tf.memory().numTensors;
    const q = quantizers.steSign(t);
    expect(tf.memory().numTensors).toBe(before + 1);
    q.dispose();
    t.dispose();
  });
});
