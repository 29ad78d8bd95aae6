// Checkpoints of the offline loop, written after each epoch so that --resume continues where a run
// stopped. Each checkpoint is a new folder (model, optimizer state, loop state); a pointer file
// names the newest and is replaced atomically, so a crash mid-write leaves the previous one valid.
import * as fs from 'fs';
import * as path from 'path';
import { tf } from '../src/tf';
import { FileFormatError } from '../src/errors';
import { writeFileAtomic, writeJsonAtomic } from '../src/atomic';
import { saveModel, loadModel } from '../src/model_io';

export const CHECKPOINT_POINTER = 'checkpoint.json';
const FORMAT = 'memristor-tfjs-checkpoint';
const VERSION = 1;

export interface LoopState {
  /** Epochs completed. */
  epoch: number;
  /** Optimizer steps taken. */
  step: number;
  /** Anything the loop needs to continue exactly (history, noise counters, options). */
  [key: string]: unknown;
}

interface OptimizerFile {
  names: string[];
  shapes: number[][];
  className: string;
  config: Record<string, unknown>;
  /** Adam's running beta powers: restoring them exactly (setWeights recomputes them with pow,
   * which rounds differently) makes a resumed run bit-identical to an uninterrupted one. */
  accBeta?: [number, number];
}

type AdamInternals = { accBeta1?: tf.Variable; accBeta2?: tf.Variable };

async function saveOptimizer(opt: tf.Optimizer, dir: string): Promise<void> {
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
  let o = 0;
  const named = meta.names.map((name, i) => {
    const n = meta.shapes[i].reduce((a, b) => a * b, 1);
    const t = tf.tensor(all.subarray(o, o + n), meta.shapes[i]);
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

/** Write a checkpoint of model, optimizer and loop state into `runDir`. */
export async function writeCheckpoint(runDir: string, model: tf.LayersModel, opt: tf.Optimizer, state: LoopState): Promise<string> {
  const name = `checkpoint-epoch-${state.epoch}`;
  const dir = path.join(runDir, name);
  fs.rmSync(dir, { recursive: true, force: true });
  await saveModel(model, dir);
  await saveOptimizer(opt, dir);
  writeJsonAtomic(path.join(dir, 'state.json'), state);
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
    if (p.version !== VERSION) throw new Error(`version ${p.version}, this program reads ${VERSION}`);
    if (typeof p.dir !== 'string' || p.dir.includes('/') || p.dir.includes('..')) throw new Error('no checkpoint folder named');
    return p.dir;
  } catch (e) {
    throw new FileFormatError(pointer, (e as Error).message);
  }
}

export function hasCheckpoint(runDir: string): boolean {
  return readPointer(runDir) !== null;
}

/** Load the newest checkpoint of `runDir`: the model, and restore the optimizer's state into `makeOptimizer()`. */
export async function readCheckpoint(
  runDir: string,
  makeOptimizer: (model: tf.LayersModel) => tf.Optimizer,
): Promise<{ model: tf.LayersModel; optimizer: tf.Optimizer; state: LoopState }> {
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
  if (!Number.isInteger(state.epoch) || !Number.isInteger(state.step)) throw new FileFormatError(sf, 'epoch and step must be integers');
  const { model } = await loadModel(dir);
  const optimizer = makeOptimizer(model);
  await loadOptimizer(optimizer, dir);
  return { model, optimizer, state };
}
