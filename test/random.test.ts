// Seeded randomness (src/random.ts): the generator against seedrandom's published Alea value, the
// draws against their definitions (Box-Muller, Fisher-Yates) from a twin generator, their
// statistics, forks and saved states; deriveSeed against FNV-1a's published vectors and the
// murmur3 finalizer.
import { SeededRandom, deriveSeed } from '../src/random';

/** FNV-1a, 32 bits: offset basis 2166136261, prime 16777619. */
function fnv1a(s: string): number {
  let h = 2166136261;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Number((BigInt(h) * 16777619n) % 4294967296n);
  }
  return h >>> 0;
}

/** murmur3's 32-bit finalizer (fmix32), in BigInt arithmetic. */
function fmix32(h: number): number {
  const mul = (a: number, b: bigint) => Number((BigInt(a) * b) % 4294967296n);
  h = (h ^ (h >>> 16)) >>> 0;
  h = mul(h, 0x85ebca6bn);
  h = (h ^ (h >>> 13)) >>> 0;
  h = mul(h, 0xc2b2ae35n);
  return (h ^ (h >>> 16)) >>> 0;
}

describe('SeededRandom', () => {
  test("is seedrandom's Alea: the value its README publishes for the seed 'hello.'", () => {
    expect(new SeededRandom('hello.').next()).toBe(0.4783254903741181);
    // a number seed is its string
    expect(new SeededRandom(42).next()).toBe(new SeededRandom('42').next());
  });

  test('the same seed repeats the sequence, another seed gives another', () => {
    const draws = (seed: number) => {
      const r = new SeededRandom(seed);
      return Array.from({ length: 20 }, () => r.next());
    };
    expect(draws(7)).toEqual(draws(7));
    expect(draws(8)).not.toEqual(draws(7));
    for (const v of draws(7)) {
      expect(v).toBeGreaterThanOrEqual(0);
      expect(v).toBeLessThan(1);
    }
  });

  test('int(n) is floor(n u) of the next uniform; uint32 an integer in [0, 2^32); 10,000 ints of 0..9 each near 1,000', () => {
    const r = new SeededRandom(3);
    const twin = new SeededRandom(3);
    for (let i = 0; i < 100; i++) expect(r.int(7)).toBe(Math.floor(7 * twin.next()));
    const counts = new Array(10).fill(0);
    for (let i = 0; i < 10000; i++) counts[r.int(10)]++;
    // binomial(10000, 0.1): sd 30
    for (const c of counts) expect(Math.abs(c - 1000)).toBeLessThan(4 * 30);
    for (let i = 0; i < 100; i++) {
      const u = r.uint32();
      expect(Number.isInteger(u)).toBe(true);
      expect(u).toBeGreaterThanOrEqual(0);
      expect(u).toBeLessThan(2 ** 32);
    }
  });

  test('normal() is Box-Muller: r cos(2 pi v), then the spare r sin(2 pi v), r = sqrt(-2 ln u)', () => {
    const r = new SeededRandom(11);
    const twin = new SeededRandom(11);
    for (let k = 0; k < 50; k++) {
      const u = twin.next();
      const v = twin.next();
      const rad = Math.sqrt(-2 * Math.log(u));
      expect(r.normal()).toBeCloseTo(rad * Math.cos(2 * Math.PI * v), 12);
      expect(r.normal()).toBeCloseTo(rad * Math.sin(2 * Math.PI * v), 12);
    }
  });

  test('100,000 normals: mean 0, variance 1, skewness 0, kurtosis 3', () => {
    const r = new SeededRandom(5);
    const n = 100000;
    let m1 = 0;
    let m2 = 0;
    let m3 = 0;
    let m4 = 0;
    for (let i = 0; i < n; i++) {
      const x = r.normal();
      m1 += x / n;
      m2 += (x * x) / n;
      m3 += (x * x * x) / n;
      m4 += (x * x * x * x) / n;
    }
    // standard errors: mean 1/sqrt(n) = 0.0032, variance sqrt(2/n) = 0.0045, skewness sqrt(6/n) = 0.0077, kurtosis sqrt(24/n) = 0.015
    expect(Math.abs(m1)).toBeLessThan(4 * 0.0032);
    expect(Math.abs(m2 - 1)).toBeLessThan(4 * 0.0045);
    expect(Math.abs(m3)).toBeLessThan(4 * 0.0077);
    expect(Math.abs(m4 - 3)).toBeLessThan(4 * 0.015);
  });

  test("fork(label) is the generator of the seed 'seed/label', whatever the parent drew before", () => {
    const parent = new SeededRandom(9);
    const a = parent.fork('cells').next();
    parent.next();
    parent.normal();
    expect(parent.fork('cells').next()).toBe(a);
    expect(a).toBe(new SeededRandom('9/cells').next());
    expect(parent.fork('verify').next()).not.toBe(a);
    expect(parent.fork('cells').fork('x').seed).toBe('9/cells/x');
  });

  test('shuffle is Fisher-Yates from the last place down, j = int(i + 1), in place', () => {
    const a = Array.from({ length: 10 }, (_, i) => i);
    const r = new SeededRandom(13);
    expect(r.shuffle(a)).toBe(a);
    const twin = new SeededRandom(13);
    const want = Array.from({ length: 10 }, (_, i) => i);
    for (let i = 9; i > 0; i--) {
      const j = Math.floor((i + 1) * twin.next());
      [want[i], want[j]] = [want[j], want[i]];
    }
    expect(a).toEqual(want);
    // typed arrays too
    expect(Array.from(new SeededRandom(13).shuffle(Int32Array.from({ length: 10 }, (_, i) => i)))).toEqual(want);
  });

  test('shuffles of 3 items: each of the 6 orders about 1/6 of 6,000', () => {
    const r = new SeededRandom(17);
    const counts = new Map<string, number>();
    for (let k = 0; k < 6000; k++) {
      const key = r.shuffle(['a', 'b', 'c']).join('');
      counts.set(key, (counts.get(key) ?? 0) + 1);
    }
    expect([...counts.keys()].sort()).toEqual(['abc', 'acb', 'bac', 'bca', 'cab', 'cba']);
    // binomial(6000, 1/6): sd 28.9
    for (const c of counts.values()) expect(Math.abs(c - 1000)).toBeLessThan(4 * 28.9);
  });

  test('state() resumes the sequence where it was saved', () => {
    const r = new SeededRandom(21);
    for (let i = 0; i < 5; i++) r.next();
    const resumed = new SeededRandom(21, r.state());
    const rest = Array.from({ length: 10 }, () => r.next());
    expect(Array.from({ length: 10 }, () => resumed.next())).toEqual(rest);
  });
});

describe('deriveSeed', () => {
  test('FNV-1a as published (the reference used below): "" 0x811c9dc5, "a" 0xe40c292c, "foobar" 0xbf9cf968', () => {
    expect(fnv1a('')).toBe(0x811c9dc5);
    expect(fnv1a('a')).toBe(0xe40c292c);
    expect(fnv1a('foobar')).toBe(0xbf9cf968);
    expect(fmix32(0)).toBe(0);
  });

  test("is fmix32(FNV-1a('seed/label/label...')): a uint32", () => {
    for (const [seed, labels] of [
      [1, ['a']],
      [3, ['tolerance=0.02', 0]],
      ['9/cells', ['variation', 12]],
      [0, []],
    ] as [number | string, (string | number)[]][]) {
      const want = fmix32(fnv1a(`${seed}/${labels.join('/')}`));
      const got = deriveSeed(seed, ...labels);
      expect(got).toBe(want);
      expect(Number.isInteger(got) && got >= 0 && got < 2 ** 32).toBe(true);
    }
  });

  test('labels in another order, or another label, give another seed; a number and its string the same', () => {
    expect(deriveSeed(1, 'a', 'b')).not.toBe(deriveSeed(1, 'b', 'a'));
    expect(deriveSeed(1, 'a')).not.toBe(deriveSeed(2, 'a'));
    expect(deriveSeed(1, 'trial', 0)).toBe(deriveSeed('1', 'trial', '0'));
    const seen = new Set(Array.from({ length: 1000 }, (_, t) => deriveSeed(11, 'point', t)));
    expect(seen.size).toBe(1000);
  });
});
