// The one tfjs instance the whole package uses. @tensorflow/tfjs and the wasm backend share
// @tensorflow/tfjs-core, so kernels registered here are seen by every model built with `tf`.
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { BackendNotReadyError } from './errors';

export { tf };
export type Tensor = tf.Tensor;

/**
 * tfjs 4.22 trap: a synchronous op before `await tf.ready()` starts the best backend's (wasm's)
 * asynchronous init and throws; a later `await tf.ready()` then waits for that init but never
 * makes the backend current, so every op throws again. The package's tf.ready() finishes the job:
 * when tfjs's own ready() leaves no backend set, it sets the best one that started.
 */
function repairReady(): void {
  const engine = tf.engine() as unknown as {
    ready(): Promise<void>;
    backendInstance: unknown;
    registry: Record<string, unknown>;
    getSortedBackends(): string[];
    setBackend(name: string): Promise<boolean>;
    __memristorTfjsReady?: boolean;
  };
  if (engine.__memristorTfjsReady || typeof engine.getSortedBackends !== 'function') return;
  const ready = engine.ready.bind(engine);
  engine.ready = async () => {
    await ready();
    if (engine.backendInstance != null) return;
    for (const name of engine.getSortedBackends()) {
      if (engine.registry[name] != null && (await engine.setBackend(name))) return;
    }
    await ready();
  };
  engine.__memristorTfjsReady = true;
}
repairReady();

/** The fix named by every "backend not ready" error. */
export const BACKEND_FIX = '`await tf.ready()` first (or `await initBackend()`, which also picks tfjs-node where installed and says which backend runs)';

/**
 * For synchronous functions that create tensors: throws a BackendNotReadyError naming `what` and
 * the fix when tfjs has no started backend yet (wasm, its first choice, starts asynchronously; this
 * call starts it, so a later `await tf.ready()` finds it under way).
 */
export function requireBackend(what: string): void {
  if ((tf.engine() as unknown as { backendInstance: unknown }).backendInstance != null) return;
  try {
    tf.backend();
  } catch (e) {
    const msg = (e as Error).message ?? '';
    if (/has not yet been initialized/.test(msg)) throw new BackendNotReadyError(`${what}: the tfjs backend has not started yet: ${BACKEND_FIX}`);
    throw e;
  }
}
