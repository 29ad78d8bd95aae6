// kill -9 at seeded random moments of `train`, `map` and `insitu` (the built CLI in a child
// process, as a user runs it) over an earlier result: the final folder always holds the earlier
// result or the complete new one, never a mixture or a half; a resumed train gives the same
// weights as an uninterrupted one; two writers of one --out: one wins, the other exits 1.
import * as crypto from 'crypto';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { spawn, spawnSync } from 'child_process';
import { SeededRandom } from '../src/random';
import { readCrossbarDir } from '../src/crossbar/files';
import { readModelDir } from '../src/model_io';
import { siblingPaths } from '../src/output_folder';

const BIN = path.join(__dirname, '..', 'bin', 'memristor-tfjs.js');
const BUILT = path.join(__dirname, '..', 'dist', 'src', 'cli.js');
const root = fs.mkdtempSync(path.join(os.tmpdir(), 'mtfjs-kill-'));
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));
jest.setTimeout(240_000);

beforeAll(() => {
  // These tests run the CLI as a user does: from the build that `npm install` makes.
  if (!fs.existsSync(BUILT)) throw new Error(`${BUILT} is missing: run \`npm run build\` before these tests`);
});

function cli(...args: string[]): { code: number; err: string } {
  const r = spawnSync(process.execPath, [BIN, ...args, '--backend', 'wasm'], { encoding: 'utf8', env: { ...process.env, CI: 'true' } });
  return { code: r.status ?? -1, err: r.stderr };
}

function mustRun(...args: string[]): void {
  const r = cli(...args);
  if (r.code !== 0) throw new Error(`${args.join(' ')} failed (${r.code}): ${r.err.split('\n').slice(-3).join(' ')}`);
}

/** Starts the CLI and kill -9s it after `ms` milliseconds (or lets it finish first). */
function runAndKill(ms: number, ...args: string[]): Promise<{ killed: boolean }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [BIN, ...args, '--backend', 'wasm'], { stdio: 'ignore' });
    const timer = setTimeout(() => child.kill('SIGKILL'), ms);
    child.on('exit', (_code, signal) => {
      clearTimeout(timer);
      resolve({ killed: signal === 'SIGKILL' });
    });
  });
}

/** Starts the CLI and kill -9s it as soon as `when()` holds (polled every 5 ms). */
function runAndKillWhen(when: () => boolean, ...args: string[]): Promise<{ killed: boolean }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [BIN, ...args, '--backend', 'wasm'], { stdio: 'ignore' });
    const timer = setInterval(() => {
      if (when()) child.kill('SIGKILL');
    }, 5);
    child.on('exit', (_code, signal) => {
      clearInterval(timer);
      resolve({ killed: signal === 'SIGKILL' });
    });
  });
}

/** sha256 over the listed files of a folder (relative paths and contents), the folder's file list included. */
function digest(dir: string, include: (rel: string) => boolean): string {
  const h = crypto.createHash('sha256');
  const walk = (d: string): string[] =>
    fs.readdirSync(d, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? walk(path.join(d, e.name)) : [path.join(d, e.name)]));
  const all = walk(dir).map((f) => path.relative(dir, f)).sort();
  h.update(all.join('\n'));
  for (const rel of all.filter(include)) h.update(rel).update(fs.readFileSync(path.join(dir, rel)));
  return h.digest('hex');
}

// What two runs of the same command and seed write identically (times and dates excluded).
const crossbarFiles = (rel: string) => rel.endsWith('.csv') || rel.endsWith('.bin');
const modelFiles = (rel: string) => rel.endsWith('weights.bin') || rel.endsWith('optimizer.bin');

/** Nothing but the result and its own hidden siblings in the parent folder. */
function visibleStrays(dir: string, allowed: string[]): string[] {
  return fs.readdirSync(path.dirname(dir)).filter((f) => !f.startsWith('.') && !allowed.includes(f));
}

const TRAIN = ['train', '--model', 'mcnn', '--dataset', 'mnist', '--train-samples', '600', '--test-samples', '100', '--epochs', '3', '--no-progress'];
const model = path.join(root, 'model');
const xdir = path.join(root, 'xdir');

describe('kill -9 during a writing command', () => {
  beforeAll(() => {
    mustRun(...TRAIN, '--seed', '1', '--out', model);
    mustRun('map', '--model', model, '--device', 'park2024', '--array', '32x32', '--seed', '1', '--out', xdir);
  });

  test('map: the folder holds the earlier mapping or the new one, whole', async () => {
    const out = path.join(root, 'map-out');
    const ref = path.join(root, 'map-ref');
    mustRun('map', '--model', model, '--device', 'park2024', '--array', '32x32', '--seed', '1', '--out', out);
    mustRun('map', '--model', model, '--device', 'park2024', '--array', '32x32', '--seed', '2', '--out', ref);
    const before = digest(out, crossbarFiles);
    const after = digest(ref, crossbarFiles);
    expect(after).not.toBe(before);
    const rng = new SeededRandom(11);
    let killed = 0;
    for (let i = 0; i < 6; i++) {
      const ms = 80 + Math.floor(rng.next() * 600);
      killed += (await runAndKill(ms, 'map', '--model', model, '--device', 'park2024', '--array', '32x32', '--seed', '2', '--out', out, '--overwrite')).killed ? 1 : 0;
      expect([before, after]).toContain(digest(out, crossbarFiles));
      expect(() => readCrossbarDir(out)).not.toThrow();
      expect(visibleStrays(out, ['model', 'xdir', 'map-out', 'map-ref'])).toEqual([]);
    }
    expect(killed).toBeGreaterThan(0); // (a run that finished first is checked the same way)
    mustRun('map', '--model', model, '--device', 'park2024', '--array', '32x32', '--seed', '2', '--out', out, '--overwrite');
    expect(digest(out, crossbarFiles)).toBe(after);
    // the next claim removed what the killed runs left beside the folder
    expect(fs.readdirSync(root).filter((f) => f.startsWith(siblingPaths(out).prefix))).toEqual([]);
  });

  test('train: the folder holds the earlier model or the new one; --resume after a kill gives the uninterrupted weights', async () => {
    const out = path.join(root, 'train-out');
    const ref = path.join(root, 'train-ref');
    mustRun(...TRAIN, '--seed', '1', '--out', out);
    mustRun(...TRAIN, '--seed', '2', '--out', ref);
    const before = digest(out, modelFiles);
    const after = digest(ref, modelFiles);
    const rng = new SeededRandom(12);
    for (let i = 0; i < 3; i++) {
      await runAndKill(600 + Math.floor(rng.next() * 2600), ...TRAIN, '--seed', '2', '--out', out, '--overwrite');
      expect([before, after]).toContain(digest(out, modelFiles));
      expect(() => readModelDir(out)).not.toThrow();
    }
    // a kill right after the first checkpoint: the earlier model stays; --resume continues the
    // interrupted run to the weights of an uninterrupted one, to the bit
    mustRun(...TRAIN, '--seed', '1', '--out', out, '--overwrite');
    const partial = siblingPaths(out).partial;
    const { killed } = await runAndKillWhen(() => fs.existsSync(path.join(partial, 'checkpoint.json')), ...TRAIN, '--seed', '2', '--out', out, '--overwrite');
    expect(killed).toBe(true);
    expect(digest(out, modelFiles)).toBe(before);
    mustRun(...TRAIN, '--seed', '2', '--out', out, '--resume');
    expect(digest(out, modelFiles)).toBe(after);
    expect(fs.existsSync(partial)).toBe(false);
  });

  test('insitu: the folder holds the earlier tuning or the new one, whole', async () => {
    const args = ['insitu', '--crossbar', xdir, '--samples', '300', '--test-samples', '200', '--eval-samples', '100', '--no-progress'];
    const out = path.join(root, 'insitu-out');
    const ref = path.join(root, 'insitu-ref');
    mustRun(...args, '--seed', '1', '--out', out);
    mustRun(...args, '--seed', '2', '--out', ref);
    const before = digest(out, crossbarFiles);
    const after = digest(ref, crossbarFiles);
    expect(after).not.toBe(before);
    const input = digest(xdir, () => true);
    const rng = new SeededRandom(13);
    for (let i = 0; i < 3; i++) {
      await runAndKill(300 + Math.floor(rng.next() * 2600), ...args, '--seed', '2', '--out', out, '--overwrite');
      expect([before, after]).toContain(digest(out, crossbarFiles));
      expect(() => readCrossbarDir(out)).not.toThrow();
    }
    expect(digest(xdir, () => true)).toBe(input); // the input folder is only read
  });

  test('two writers of one --out: one wins, the other exits 1 naming the folder and the holder', async () => {
    const out = path.join(root, 'contended');
    const lock = siblingPaths(out).lock;
    const first = spawn(process.execPath, [BIN, ...TRAIN, '--seed', '3', '--out', out, '--backend', 'wasm'], { stdio: 'ignore' });
    const firstExit = new Promise<number>((resolve) => first.on('exit', (code) => resolve(code ?? -1)));
    const t0 = Date.now();
    while (!fs.existsSync(lock) && Date.now() - t0 < 20_000) await new Promise((r) => setTimeout(r, 5));
    expect(fs.existsSync(lock)).toBe(true);
    const second = cli('map', '--model', model, '--device', 'park2024', '--array', '32x32', '--out', out);
    expect(second.err).toContain(`error: --out ${out} is being written by another memristor-tfjs process (pid ${first.pid}`);
    expect(second.code).toBe(1);
    expect(second.err).not.toMatch(/^\s+at /m);
    expect(await firstExit).toBe(0);
    expect(() => readModelDir(out)).not.toThrow();
    expect(fs.existsSync(lock)).toBe(false);
  });
});
