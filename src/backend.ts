// Backend selection: the fastest backend present, tfjs-node's `tensorflow` > `wasm` > `cpu`,
// overridable by --backend or MEMRISTOR_TFJS_BACKEND. On wasm and cpu the package registers its own
// convolution and pooling kernels (src/kernels/), without which conv layers cannot train on wasm and
// crawl on cpu.
import { tf } from './tf';
import { UsageError } from './errors';
import { registerFastKernels } from './kernels';
import { registerBatchNormGradient } from './gradients/batch_norm';

export const BACKENDS = ['tensorflow', 'wasm', 'cpu'] as const;
export type BackendName = (typeof BACKENDS)[number];

export interface BackendInfo {
  /** The backend that runs. */
  name: BackendName;
  /** Why this one: requested, or why a faster one was passed over. */
  reason: string;
  /** Kernels of this package registered on it. */
  kernels: string[];
}

let current: BackendInfo | null = null;

/** tfjs-node is an optional dependency: absent here, present but unloadable on some machines. */
function loadTfjsNode(): string | null {
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    require('@tensorflow/tfjs-node');
    return null;
  } catch (e) {
    const msg = (e as Error).message.split('\n')[0];
    return /Cannot find module '@tensorflow\/tfjs-node'/.test(msg) ? 'tfjs-node is not installed' : `tfjs-node failed to load (${msg})`;
  }
}

function parseName(value: string, source: string): BackendName {
  const v = value.trim().toLowerCase();
  const alias = v === 'node' || v === 'tfjs-node' ? 'tensorflow' : v;
  if (!(BACKENDS as readonly string[]).includes(alias)) {
    throw new UsageError(`${source}: unknown backend '${value}' (choose tensorflow, wasm or cpu)`);
  }
  return alias as BackendName;
}

async function activate(name: BackendName): Promise<boolean> {
  try {
    const ok = await tf.setBackend(name);
    if (ok) await tf.ready();
    return ok && tf.getBackend() === name;
  } catch {
    return false;
  }
}

/**
 * Choose and start a backend. `requested` (a --backend flag) wins over the environment variable
 * MEMRISTOR_TFJS_BACKEND, which wins over the automatic choice.
 */
export async function initBackend(requested?: string): Promise<BackendInfo> {
  const env = process.env.MEMRISTOR_TFJS_BACKEND;
  const wanted = requested ? parseName(requested, '--backend') : env ? parseName(env, 'MEMRISTOR_TFJS_BACKEND') : null;
  const source = requested ? '--backend' : 'MEMRISTOR_TFJS_BACKEND';
  let name: BackendName;
  let reason: string;
  if (wanted) {
    if (wanted === 'tensorflow') {
      const why = loadTfjsNode();
      if (why) throw new UsageError(`${source} tensorflow: ${why}`);
    }
    if (!(await activate(wanted))) throw new UsageError(`${source}: backend '${wanted}' could not start`);
    name = wanted;
    reason = `requested by ${source}`;
  } else {
    const why = loadTfjsNode();
    if (!why && (await activate('tensorflow'))) {
      name = 'tensorflow';
      reason = 'tfjs-node (native TensorFlow) is installed';
    } else if (await activate('wasm')) {
      name = 'wasm';
      reason = why ?? 'tfjs-node did not start';
    } else {
      await activate('cpu');
      name = 'cpu';
      reason = `${why ?? 'tfjs-node did not start'}; wasm did not start`;
    }
  }
  // The cpu backend greets Node users with advice to install tfjs-node; we say it ourselves.
  if (name === 'cpu') (tf.backend() as unknown as { firstUse: boolean }).firstUse = false;
  const kernels = registerFastKernels(name);
  registerBatchNormGradient();
  current = { name, reason, kernels };
  return current;
}

/** The backend chosen by initBackend, or null before. */
export function backendInfo(): BackendInfo | null {
  return current;
}
