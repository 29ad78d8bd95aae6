// Helpers shared by the test files (not a test file itself: jest matches *.test.ts only).
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { execFile, spawnSync } from 'child_process';
import { tf } from '../src/tf';
import { main } from '../src/cli';
import { ConfigError } from '../src/errors';
import { DeviceConfig, getPreset } from '../src/device/config';
import type { TrainConfig } from '../training/offline';
import { registerFastKernels, unregisterFastKernels } from '../src/kernels';

/** Save to memory and load back: the artifacts saveModel writes to disk, JSON-copied as a file would be. */
export async function roundTrip(m: tf.LayersModel): Promise<tf.LayersModel> {
  let saved: tf.io.ModelArtifacts | null = null;
  await m.save(
    tf.io.withSaveHandler(async (a) => {
      saved = { ...JSON.parse(JSON.stringify({ ...a, weightData: undefined })), weightData: a.weightData };
      return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
    }),
  );
  return tf.loadLayersModel(tf.io.fromMemory(saved!));
}

/** The values of a tensor as a plain array. */
export const arr = (t: tf.Tensor | tf.Tensor[]) => Array.from((t as tf.Tensor).dataSync());

/** Runs f with stdout and stderr muted (a command's progress lines and printed path). */
export async function quiet<T>(f: () => Promise<T>): Promise<T> {
  const o = jest.spyOn(process.stdout, 'write').mockImplementation(() => true);
  const e = jest.spyOn(process.stderr, 'write').mockImplementation(() => true);
  try {
    return await f();
  } finally {
    o.mockRestore();
    e.mockRestore();
  }
}

/** Runs the CLI in-process, capturing stdout and stderr. */
export async function runCli(...args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const o = jest.spyOn(process.stdout, 'write').mockImplementation((s: string | Uint8Array) => ((out += String(s)), true));
  const e = jest.spyOn(process.stderr, 'write').mockImplementation((s: string | Uint8Array) => ((err += String(s)), true));
  try {
    const code = await main(['node', 'memristor-tfjs', ...args]);
    return { code, out, err };
  } finally {
    o.mockRestore();
    e.mockRestore();
  }
}

/** A line of a stack trace: what no CLI error message may contain. */
export const STACK = /^\s+at .+:\d+:\d+\)?$/m;

/** The error fn throws (fails the test when it does not throw). */
export function errorOf(fn: () => unknown): Error {
  try {
    fn();
  } catch (e) {
    return e as Error;
  }
  throw new Error('expected an error');
}

/** Runs f with stdout captured (and stderr silenced): what it printed and what it returned. */
export async function captureOutput<T>(f: () => Promise<T>): Promise<{ out: string; value: T }> {
  const chunks: string[] = [];
  const spyOut = jest.spyOn(process.stdout, 'write').mockImplementation((c: string | Uint8Array) => {
    chunks.push(String(c));
    return true;
  });
  const spyErr = jest.spyOn(process.stderr, 'write').mockImplementation(() => true);
  try {
    const value = await f();
    return { out: chunks.join(''), value };
  } finally {
    spyOut.mockRestore();
    spyErr.mockRestore();
  }
}

/** The field a ConfigError thrown by f names (fails the test when f throws something else or nothing). */
export function fieldOf(f: () => unknown): string {
  const e = errorOf(f);
  expect(e).toBeInstanceOf(ConfigError);
  return (e as ConfigError).field;
}

/** A copy of a device preset, changed by `change`. */
export function device(name: string, change: (c: DeviceConfig) => void = () => {}): DeviceConfig {
  const c = getPreset(name);
  if (!c) throw new Error(`no preset '${name}'`);
  change(c);
  return c;
}

/**
 * max_i |got_i - ref_i| / max_i |ref_i|: the error relative to the reference's scale (Infinity
 * where a value is NaN). Fails the test when the lengths differ.
 */
export function relErr(got: ArrayLike<number> | tf.Tensor, ref: ArrayLike<number> | tf.Tensor): number {
  const a = got instanceof tf.Tensor ? got.dataSync() : got;
  const b = ref instanceof tf.Tensor ? ref.dataSync() : ref;
  expect(a.length).toBe(b.length);
  let err = 0;
  let scale = 0;
  for (let i = 0; i < b.length; i++) {
    scale = Math.max(scale, Math.abs(b[i]));
    const d = Math.abs(a[i] - b[i]);
    err = Number.isNaN(d) ? Infinity : Math.max(err, d);
  }
  return err / Math.max(scale, 1e-30);
}

/** conv 3x3 (5x5x1 -> 3x3x2, with bias), flatten, dense 18 -> 3 (no bias), seeded: the counting tests' tiny network. */
export function tinyConvDense(): tf.LayersModel {
  const m = tf.sequential();
  m.add(tf.layers.conv2d({ inputShape: [5, 5, 1], filters: 2, kernelSize: 3, padding: 'valid', name: 'conv', kernelInitializer: tf.initializers.glorotUniform({ seed: 1 }) }));
  m.add(tf.layers.flatten({ name: 'flat' }));
  m.add(tf.layers.dense({ units: 3, useBias: false, name: 'fc', kernelInitializer: tf.initializers.glorotUniform({ seed: 2 }) }));
  return m;
}

/**
 * A fresh folder under the system temp folder, removed after the test file's tests (call it at
 * the top level of a test file, or in a describe block).
 */
export function tempRoot(prefix: string): string {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), `mtfjs-${prefix}-`));
  afterAll(() => fs.rmSync(root, { recursive: true, force: true }));
  return root;
}

/** A training config for the loop's tests: one epoch, Adam 1e-2 on a cosine, seed 3, batch 32, with `over`. */
export function trainConfig(over: Partial<TrainConfig> = {}): TrainConfig {
  return { epochs: 1, batchSize: 32, learningRate: 0.01, optimizer: 'adam', schedule: 'cosine', seed: 3, ...over };
}

/** Every weight of a model as plain arrays (for exact comparisons). */
export const weightsOf = (m: tf.LayersModel): number[][] => m.getWeights().map((w) => Array.from(w.dataSync()));

/** A maker of fresh, created folders under a temp root removed after the file's tests (call at the top level). */
export function tempDirs(prefix: string): () => string {
  const root = tempRoot(prefix);
  let n = 0;
  return () => {
    const d = path.join(root, `d${n++}`);
    fs.mkdirSync(d);
    return d;
  };
}

/**
 * The gradients of the softmax cross-entropy of a fresh model (build()) on xs, ys: on wasm with the
 * package's kernels, and on the cpu backend with tfjs's stock kernels (the package's cpu kernels
 * unregistered for the call and put back after). Runs on wasm and returns there.
 */
export async function gradsWasmAndStockCpu(build: () => tf.LayersModel, xs: tf.Tensor, ys: tf.Tensor): Promise<{ wasm: Float32Array[]; cpu: Float32Array[] }> {
  const grads = (): Float32Array[] => {
    const m = build();
    const vars = m.trainableWeights.map((w) => w.read() as tf.Variable);
    const { grads: g } = tf.variableGrads(() => tf.losses.softmaxCrossEntropy(ys, m.predict(xs) as tf.Tensor) as tf.Scalar, vars);
    const out = vars.map((v) => g[v.name].dataSync().slice() as Float32Array);
    tf.dispose(Object.values(g));
    m.dispose();
    return out;
  };
  const wasm = grads();
  await tf.setBackend('cpu');
  (tf.backend() as unknown as { firstUse: boolean }).firstUse = false;
  const wasCpu = unregisterFastKernels('cpu');
  try {
    return { wasm, cpu: grads() };
  } finally {
    if (wasCpu.length) registerFastKernels('cpu');
    await tf.setBackend('wasm');
  }
}

// ---------------------------------------------------------------------------------------------
// Headless Chromium (the report tests render their pages with it)

/** A Chromium on this machine ($CHROMIUM, chromium, chromium-browser, google-chrome), or null. */
export function findChromium(): string | null {
  for (const c of [process.env.CHROMIUM, 'chromium', 'chromium-browser', 'google-chrome']) {
    if (!c) continue;
    const r = spawnSync(c, ['--version'], { encoding: 'utf8', timeout: 30000 });
    if (r.status === 0) return c;
  }
  return null;
}

/** MEMRISTOR_TFJS_REQUIRE_CHROMIUM=1: a missing Chromium fails the render tests instead of skipping them. */
export const REQUIRE_CHROMIUM = process.env.MEMRISTOR_TFJS_REQUIRE_CHROMIUM === '1';

/** The DOM of the page `file` after headless Chromium ran its scripts (the flags of the acceptance check, shared/acceptance/4-report-renders). */
export function chromiumDom(chromium: string, file: string, profileDir: string): Promise<string> {
  const args = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--no-first-run', `--user-data-dir=${profileDir}`, '--virtual-time-budget=5000', '--dump-dom', `file://${file}`];
  return new Promise<string>((resolve, reject) => {
    execFile(chromium, args, { timeout: 110000, maxBuffer: 64 << 20, encoding: 'utf8' }, (e, stdout) => (e && !stdout ? reject(e) : resolve(stdout)));
  });
}

// ---------------------------------------------------------------------------------------------
// Report pages: well-formedness (XML-ish): balanced tags, quoted attributes, only XML entities, no bare '<' or '&'.

export function xmlProblems(doc: string): string[] {
  const problems: string[] = [];
  const stack: string[] = [];
  const tag = /<!\[CDATA\[[\s\S]*?\]\]>|<!--[\s\S]*?-->|<!DOCTYPE[^<>]*>|<(\/?)([A-Za-z][\w:.-]*)((?:\s+[A-Za-z_:][\w:.-]*="[^"<]*")*)\s*(\/?)>/y;
  const entity = /&(amp|lt|gt|quot|apos|#\d+|#x[0-9a-fA-F]+);/y;
  const checkText = (text: string, at: number) => {
    for (let i = text.indexOf('&'); i >= 0; i = text.indexOf('&', i + 1)) {
      entity.lastIndex = i;
      if (!entity.test(text)) problems.push(`bare '&' at ${at + i}: ${text.slice(i, i + 20)}`);
    }
  };
  let pos = 0;
  while (pos < doc.length && problems.length < 10) {
    const lt = doc.indexOf('<', pos);
    checkText(doc.slice(pos, lt < 0 ? doc.length : lt), pos);
    if (lt < 0) break;
    tag.lastIndex = lt;
    const m = tag.exec(doc);
    if (!m) {
      problems.push(`not a tag at ${lt}: ${doc.slice(lt, lt + 40)}`);
      pos = lt + 1;
      continue;
    }
    if (m[2]) {
      checkText(m[3], lt);
      const attrs = [...m[3].matchAll(/([A-Za-z_:][\w:.-]*)=/g)].map((a) => a[1]);
      if (new Set(attrs).size !== attrs.length) problems.push(`duplicate attribute in <${m[2]}> at ${lt}`);
      if (m[1]) {
        const open = stack.pop();
        if (open !== m[2]) problems.push(`</${m[2]}> at ${lt} closes <${open}>`);
      } else if (!m[4]) stack.push(m[2]);
    }
    pos = lt + m[0].length;
  }
  if (stack.length) problems.push(`unclosed: ${stack.join(' > ')}`);
  return problems;
}

/** Every src / href value (page-internal '#...' and data: URLs are all a self-contained page may have). */
export function externalRefs(html: string): string[] {
  return [...html.matchAll(/\b(?:src|href|xlink:href)\s*=\s*["']?([^"'\s>]*)/gi)].map((m) => m[1]).filter((v) => !v.startsWith('#') && !v.startsWith('data:'));
}

/** The in-situ rule tests' devices: exact 1 uS steps (constant step, no noise) on [0, 10] uS. */
export function unitStepDevice(): DeviceConfig {
  const c = getPreset('ideal')!;
  c.gMin = 0;
  c.gMax = 10;
  c.pulse = { model: 'constantStep', dgSet: 1, dgReset: 1, c2cSigma: 0 };
  c.writeVerify = { mode: 'exact', tolerance: 0, maxPulses: 100 };
  return c;
}

/** Soft bounds on [0, 10] uS, no noise: a SET step is 1 (1 - G/10), a RESET step 2 G/10. */
export function softDevice(): DeviceConfig {
  const c = unitStepDevice();
  c.pulse = { model: 'softBounds', dgSet: 1, dgReset: 2, c2cSigma: 0 };
  return c;
}

/** Makes `name` the backend with this package's kernels registered (cpu: without tfjs's first-use warning). */
export async function useBackend(name: string): Promise<void> {
  await tf.setBackend(name);
  await tf.ready();
  if (name === 'cpu') (tf.backend() as unknown as { firstUse: boolean }).firstUse = false;
  registerFastKernels(name);
}
