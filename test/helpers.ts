// Helpers shared by the test files (not a test file itself: jest matches *.test.ts only).
import { tf } from '../src/tf';
import { main } from '../src/cli';

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
