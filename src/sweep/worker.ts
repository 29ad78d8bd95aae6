// The script of a sweep worker thread (run from dist/ by pool.ts): make the trial context once,
// say 'ready', then take tasks from the shared queue (an atomic counter: no round trip through the
// main thread, which may itself be busy with a trial) and send each outcome back. Any error goes
// back as a serialized error; the main thread stops the pool.
import { parentPort, workerData } from 'worker_threads';
import { createTrialContext, runTrial, TrialContext, TrialContextSpec } from './trial';
import { serializeError, WorkerData, WorkerReply } from './pool';

if (!parentPort) throw new Error('src/sweep/worker.js is a worker thread script: run it through `memristor-tfjs sweep`');
const port = parentPort;

const send = (m: WorkerReply) => port.postMessage(m);

async function start(): Promise<void> {
  let ctx: TrialContext;
  try {
    ctx = await createTrialContext((workerData as WorkerData).spec as TrialContextSpec, { init: true });
  } catch (e) {
    send({ type: 'error', error: serializeError(e) });
    return;
  }
  send({ type: 'ready', backend: { name: ctx.backend.name, reason: ctx.backend.reason }, testCount: ctx.data.test.count, trainCount: ctx.data.train.count });
  const { tasks, queue } = workerData as WorkerData;
  const next = new Int32Array(queue);
  for (;;) {
    const i = Atomics.add(next, 0, 1);
    if (i >= tasks.length) break;
    try {
      send({ type: 'result', outcome: runTrial(ctx, tasks[i]) });
    } catch (e) {
      send({ type: 'error', error: serializeError(e) });
      return;
    }
  }
}

void start();
