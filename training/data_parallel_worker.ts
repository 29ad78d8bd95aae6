// The script of a data-parallel training worker (run from dist/ by data_parallel.ts): start the
// backend, rebuild the model from its topology and weights (the custom layers are registered by
// importing layers/), make the optimizer (with the main thread's state when the run continues
// one), say 'ready', then take the same steps as the main thread's loop (offline.ts fit) on this
// replica's shares. An error goes back with the step it happened at, and the thread exits with
// code 1; the main thread stops the run.
//
// MEMRISTOR_TFJS_WORKER_FAULT=I:S:throw|exit makes worker I fail at global step S (throw an error,
// or exit with code 3): the failure path the tests take, through real threads.
import { parentPort, workerData } from 'worker_threads';
import { tf } from '../src/tf';
import '../layers';
import { initBackend } from '../src/backend';
import { serializeError } from '../src/threads';
import { setNoiseCounters } from '../layers';
import { learningRateAt } from './schedule';
import { makeOptimizer } from './optimizers';
import { restoreOptimizerState } from './checkpoint';
import { shuffledOrder } from './offline';
import { ABORT, Replica, ReplicaAborted, ReplicaReply, ReplicaWorkerData } from './data_parallel';

if (!parentPort) throw new Error('training/data_parallel_worker.js is a worker thread script: run it through `memristor-tfjs train --workers N`');
const port = parentPort;
const send = (m: ReplicaReply) => port.postMessage(m);

/** The injected fault of MEMRISTOR_TFJS_WORKER_FAULT for this worker, if any. */
function faultOf(index: number): { step: number; mode: 'throw' | 'exit' } | null {
  const spec = process.env.MEMRISTOR_TFJS_WORKER_FAULT;
  if (!spec) return null;
  const m = /^(\d+):(\d+):(throw|exit)$/.exec(spec.trim());
  if (!m) throw new Error(`MEMRISTOR_TFJS_WORKER_FAULT must be WORKER:STEP:throw|exit, got '${spec}'`);
  return Number(m[1]) === index ? { step: Number(m[2]), mode: m[3] as 'throw' | 'exit' } : null;
}

async function rebuild(d: ReplicaWorkerData): Promise<tf.LayersModel> {
  const model = await tf.models.modelFromJSON({ modelTopology: d.topology as tf.io.ModelJSON['modelTopology'] });
  const weights = model.weights;
  if (weights.length !== d.weights.length) throw new Error(`the rebuilt model has ${weights.length} weights, the main thread's ${d.weights.length}`);
  const tensors = d.weights.map((w, i) => {
    const mine = weights[i];
    if (mine.shape.join('x') !== w.shape.join('x')) throw new Error(`weight ${i} (${w.name}): the rebuilt model's is ${mine.shape.join('x')}, the main thread's ${w.shape.join('x')}`);
    return tf.tensor(w.data, w.shape, w.dtype as tf.DataType);
  });
  model.setWeights(tensors);
  tensors.forEach((t) => t.dispose());
  setNoiseCounters(model, d.noiseCounters);
  return model;
}

async function run(): Promise<void> {
  const d = workerData as ReplicaWorkerData;
  const { plan } = d;
  let step: number | null = null;
  try {
    const fault = faultOf(d.index);
    await initBackend(d.backend);
    const model = await rebuild(d);
    const optimizer = makeOptimizer(plan.optimizer, plan.learningRate);
    if (d.optimizer) await restoreOptimizerState(optimizer, d.optimizer);
    const control = new Int32Array(d.memory.control);
    const check = () => {
      if (Atomics.load(control, ABORT) !== 0) throw new ReplicaAborted();
    };
    const replica = new Replica(model, optimizer, d.index, plan, d.memory, d.data, check, true);
    send({ type: 'ready' });
    step = plan.startStep;
    const count = d.data.train.count;
    // the steps of offline.ts fit, in the same order
    for (let epoch = plan.startEpoch; epoch < plan.endEpoch; epoch++) {
      const order = shuffledOrder(plan.seed, epoch, count);
      for (let start = 0; start < count; start += plan.batchSize) {
        if (fault && fault.step === step) {
          if (fault.mode === 'exit') process.exit(3);
          throw new Error(`injected fault (MEMRISTOR_TFJS_WORKER_FAULT) at step ${step}`);
        }
        await replica.step(order, start, Math.min(plan.batchSize, count - start), learningRateAt(plan.schedule, step));
        step++;
      }
      await replica.endEpoch();
    }
  } catch (e) {
    if (e instanceof ReplicaAborted) return;
    send({ type: 'error', error: serializeError(e), step });
    process.exitCode = 1;
  }
}

void run();
