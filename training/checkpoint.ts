// Checkpoints of the offline loop, written after each epoch so that --resume continues where a run
// stopped. Each checkpoint is a new folder (model, optimizer state, loop state); a pointer file
// names the newest and is replaced atomically, so a crash mid-write leaves the previous one valid.
// The loop state records what shaped the run (model, dataset, training options: `run`) and the
// sha256 of every file of the checkpoint, so that a resume refuses a checkpoint of another run or
// one whose files changed, naming the flag or the file.
import * as crypto from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import { tf } from '../src/tf';
import { FileFormatError, UsageError } from '../src/errors';
import { writeFileAtomic, writeJsonAtomic } from '../src/atomic';
import { saveModel, loadModel } from '../src/model_io';

export const CHECKPOINT_POINTER = 'checkpoint.json';
const FORMAT = 'memristor-tfjs-checkpoint';
/** Version 2 added the run record and the checksums; version 1 checkpoints are refused (nothing to check them against). */
const VERSION = 2;
const CHECKSUMMED = ['model.json', 'weights.bin', 'optimizer.json', 'optimizer.bin'] as const;

function sha256(file: string): string {
  return crypto.createHash('sha256').update(fs.readFileSync(file)).digest('hex');
}

export interface LoopState {
  /** Epochs completed. */
  epoch: number;
  /** Optimizer steps taken. */
  step: number;
  /** What shaped the run (model, dataset, options), compared with the command line on resume. */
  run?: Record<string, unknown>;
  /** sha256 of each file of the checkpoint folder (written by writeCheckpoint). */
  checksums?: Record<string, string>;
  /** Anything the loop needs to continue exactly (history, noise counters, options). */
  [key: string]: unknown;
}

export interface OptimizerFile {
  names: string[];
  shapes: number[][];
  className: string;
  config: Record<string, unknown>;
  /** Adam's running beta powers: restoring them exactly (setWeights recomputes them with pow,
   * which rounds differently) makes a resumed run bit-identical to an uninterrupted one. */
  accBeta?: [number, number];
}

type AdamInternals = { accBeta1?: tf.Variable; accBeta2?: tf.Variable };

/** An optimizer's state in memory: what optimizer.json describes and optimizer.bin holds. */
export interface OptimizerState {
  meta: OptimizerFile;
  data: Float32Array;
}

/** The state of `opt` (its weights in order, and Adam's beta powers exactly). */
export async function optimizerState(opt: tf.Optimizer): Promise<OptimizerState> {
  const weights = await opt.getWeights();
  const total = weights.reduce((n, w) => n + w.tensor.size, 0);
  const data = new Float32Array(total);
  let o = 0;
  for (const w of weights) {
    data.set(w.tensor.dataSync() as Float32Array, o);
    o += w.tensor.size;
  }
  const meta: OptimizerFile = {
    names: weights.map((w) => w.name),
    shapes: weights.map((w) => w.tensor.shape),
    className: opt.getClassName(),
    config: opt.getConfig() as Record<string, unknown>,
  };
  const adam = opt as unknown as AdamInternals;
  if (adam.accBeta1 && adam.accBeta2) meta.accBeta = [adam.accBeta1.dataSync()[0], adam.accBeta2.dataSync()[0]];
  return { meta, data };
}

/** Restores a state of optimizerState into `opt` (of the same class; `data` already checked). */
export async function restoreOptimizerState(opt: tf.Optimizer, { meta, data }: OptimizerState): Promise<void> {
  let o = 0;
  const named = meta.names.map((name, i) => {
    const n = meta.shapes[i].reduce((a, b) => a * b, 1);
    const t = tf.tensor(data.subarray(o, o + n), meta.shapes[i]);
    o += n;
    return { name, tensor: t };
  });
  await opt.setWeights(named);
  named.forEach((w) => w.tensor.dispose());
  const adam = opt as unknown as AdamInternals;
  if (meta.accBeta && adam.accBeta1 && adam.accBeta2) {
    adam.accBeta1.assign(tf.scalar(meta.accBeta[0]));
    adam.accBeta2.assign(tf.scalar(meta.accBeta[1]));
  }
}

async function saveOptimizer(opt: tf.Optimizer, dir: string): Promise<void> {
  const { meta, data } = await optimizerState(opt);
  writeFileAtomic(path.join(dir, 'optimizer.bin'), new Uint8Array(data.buffer));
  writeJsonAtomic(path.join(dir, 'optimizer.json'), meta);
}

async function loadOptimizer(opt: tf.Optimizer, dir: string): Promise<void> {
  const jf = path.join(dir, 'optimizer.json');
  const bf = path.join(dir, 'optimizer.bin');
  let meta: OptimizerFile;
  try {
    meta = JSON.parse(fs.readFileSync(jf, 'utf8'));
  } catch (e) {
    throw new FileFormatError(jf, `cannot read optimizer state (${(e as Error).message.split('\n')[0]})`);
  }
  if (meta.className !== opt.getClassName()) {
    throw new FileFormatError(jf, `optimizer is ${meta.className}, this run uses ${opt.getClassName()}`);
  }
  let buf: Buffer;
  try {
    buf = fs.readFileSync(bf);
  } catch (e) {
    throw new FileFormatError(bf, `cannot read (${(e as NodeJS.ErrnoException).code})`);
  }
  const want = meta.shapes.reduce((n, s) => n + s.reduce((a, b) => a * b, 1), 0) * 4;
  if (buf.byteLength !== want) throw new FileFormatError(bf, `holds ${buf.byteLength} bytes, optimizer.json describes ${want}`);
  const all = new Float32Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength));
  const bad = all.findIndex((v) => !Number.isFinite(v));
  if (bad >= 0) throw new FileFormatError(bf, `value ${bad} (byte ${4 * bad}) is ${all[bad]}, not a finite number`);
  await restoreOptimizerState(opt, { meta, data: all });
}

/** Write a checkpoint of model, optimizer and loop state into `runDir`. */
export async function writeCheckpoint(runDir: string, model: tf.LayersModel, opt: tf.Optimizer, state: LoopState): Promise<string> {
  const name = `checkpoint-epoch-${state.epoch}`;
  const dir = path.join(runDir, name);
  fs.rmSync(dir, { recursive: true, force: true });
  await saveModel(model, dir);
  await saveOptimizer(opt, dir);
  const checksums: Record<string, string> = {};
  for (const f of CHECKSUMMED) checksums[f] = sha256(path.join(dir, f));
  writeJsonAtomic(path.join(dir, 'state.json'), { ...state, checksums });
  const pointer = path.join(runDir, CHECKPOINT_POINTER);
  const previous = readPointer(runDir);
  writeJsonAtomic(pointer, { format: FORMAT, version: VERSION, dir: name, epoch: state.epoch, step: state.step });
  if (previous && previous !== name) fs.rmSync(path.join(runDir, previous), { recursive: true, force: true });
  return dir;
}

function readPointer(runDir: string): string | null {
  const pointer = path.join(runDir, CHECKPOINT_POINTER);
  if (!fs.existsSync(pointer)) return null;
  try {
    const p = JSON.parse(fs.readFileSync(pointer, 'utf8'));
    if (p.format !== FORMAT) throw new Error(`format is ${p.format}, expected ${FORMAT}`);
    if (p.version === 1) throw new Error('checkpoint version 1, written by an older memristor-tfjs without a run record or checksums; it cannot be checked, so train afresh (without --resume)');
    if (p.version !== VERSION) throw new Error(`checkpoint version ${JSON.stringify(p.version)}, this memristor-tfjs reads version ${VERSION}`);
    if (typeof p.dir !== 'string' || p.dir.includes('/') || p.dir.includes('..')) throw new Error('no checkpoint folder named');
    return p.dir;
  } catch (e) {
    throw new FileFormatError(pointer, (e as Error).message);
  }
}

export function hasCheckpoint(runDir: string): boolean {
  return readPointer(runDir) !== null;
}

/** Where a checkpoint's fields were given on the command line (for messages). */
export const RUN_FLAGS: Record<string, string> = {
  model: '--model',
  depth: '--depth',
  batchNorm: '--batch-norm',
  weightLevels: '--weight-levels',
  dataset: '--dataset',
  imageShape: '--dataset',
  numClasses: '--dataset',
  float: '--float',
  device: '--device',
  variation: '--variation',
  trainSamples: '--train-samples',
  validationSplit: '--validation-split',
  batchSize: '--batch-size',
  learningRate: '--lr',
  optimizer: '--optimizer',
  schedule: '--schedule',
  seed: '--seed',
  workers: '--workers',
};

const showValue = (v: unknown) => (v === undefined ? 'nothing' : JSON.stringify(v));

/**
 * Compares a checkpoint's run record with the run the command line describes; a UsageError names
 * the first field that differs by its flag, with both values.
 */
export function checkRunMatches(stateFile: string, recorded: Record<string, unknown> | undefined, wanted: Record<string, unknown>, label?: string): void {
  if (!recorded || typeof recorded !== 'object') throw new FileFormatError(stateFile, 'run: missing (what shaped the run); cannot check it against the command line');
  for (const [k, v] of Object.entries(wanted)) {
    if (JSON.stringify(recorded[k] ?? null) === JSON.stringify(v ?? null)) continue;
    const flag = RUN_FLAGS[k] ?? k;
    throw new UsageError(
      `--resume: the checkpoint in ${label ?? path.dirname(path.dirname(stateFile))} was written for ${k} ${showValue(recorded[k])} (${flag}), ` +
        `this command asks for ${showValue(v)}; resume with the same ${flag}, or start afresh without --resume (with --overwrite)`,
    );
  }
}

/** The newest checkpoint's folder and loop state, its fields and checksums verified. */
export function readCheckpointState(runDir: string): { dir: string; state: LoopState; stateFile: string } {
  const name = readPointer(runDir);
  if (!name) throw new FileFormatError(path.join(runDir, CHECKPOINT_POINTER), 'no checkpoint to resume from');
  const dir = path.join(runDir, name);
  const sf = path.join(dir, 'state.json');
  let state: LoopState;
  try {
    state = JSON.parse(fs.readFileSync(sf, 'utf8'));
  } catch (e) {
    throw new FileFormatError(sf, `cannot read loop state (${(e as Error).message.split('\n')[0]})`);
  }
  if (!state || typeof state !== 'object') throw new FileFormatError(sf, 'must hold a JSON object');
  if (!Number.isInteger(state.epoch) || state.epoch < 1) throw new FileFormatError(sf, `epoch: must be an integer >= 1, got ${showValue(state.epoch)}`);
  if (!Number.isInteger(state.step) || state.step < state.epoch) throw new FileFormatError(sf, `step: must be an integer >= epoch (${state.epoch}), got ${showValue(state.step)}`);
  const sums = state.checksums;
  if (!sums || typeof sums !== 'object') throw new FileFormatError(sf, 'checksums: missing');
  for (const f of CHECKSUMMED) {
    const file = path.join(dir, f);
    if (!fs.existsSync(file)) throw new FileFormatError(file, 'missing from the checkpoint');
    const got = sha256(file);
    if (got !== sums[f]) throw new FileFormatError(file, `does not match its checksum in state.json (sha256 ${got.slice(0, 12)}..., recorded ${String(sums[f]).slice(0, 12)}...): the file changed or was damaged since the checkpoint was written`);
  }
  return { dir, state, stateFile: sf };
}

/**
 * Load the newest checkpoint of `runDir`: the model, and restore the optimizer's state into
 * `makeOptimizer()`. `check(state, stateFile)` runs after the checksums are verified and before
 * anything is loaded (to compare the run record with the command line).
 */
export async function readCheckpoint(
  runDir: string,
  makeOptimizer: (model: tf.LayersModel) => tf.Optimizer,
  check?: (state: LoopState, stateFile: string) => void,
): Promise<{ model: tf.LayersModel; optimizer: tf.Optimizer; state: LoopState }> {
  const { dir, state, stateFile } = readCheckpointState(runDir);
  check?.(state, stateFile);
  const { model } = await loadModel(dir);
  const optimizer = makeOptimizer(model);
  await loadOptimizer(optimizer, dir);
  return { model, optimizer, state };
}
