// A pool of threads that run sweep trials: each worker starts the backend and loads the model and
// the dataset once (TrialContext), then takes trials from one queue until it is empty. The queue
// is an atomic counter in shared memory, so the main thread can run trials too (with W threads,
// W - 1 workers and the main thread, which has its context already or builds it while the workers
// start) without starving the workers of tasks while it is busy. The results are put back in task
// order, so they do not depend on the number of threads.
//
// The workers run the compiled worker script (dist/src/sweep/worker.js; src/threads.ts finds it).
import { Worker } from 'worker_threads';
import { SerializedError, serializeError, deserializeError as deserializeThreadError, workerScript } from '../threads';
import type { TrialContextSpec, TrialOutcome, TrialTask } from './trial';

export { serializeError };
export type { SerializedError };

/** What a worker starts with: its context, every task, and the shared queue (an Int32 counter). */
export interface WorkerData {
  spec: TrialContextSpec;
  tasks: readonly TrialTask[];
  queue: SharedArrayBuffer;
}
export type WorkerReply =
  | { type: 'ready'; backend: { name: string; reason: string }; testCount: number; trainCount: number }
  | { type: 'result'; outcome: TrialOutcome }
  | { type: 'error'; error: SerializedError };

/** The compiled worker script of the sweep (src/threads.ts workerScript). */
export function sweepWorkerScript(): string {
  return workerScript('src/sweep/worker.js', 'sweep');
}

/** A sweep worker's error again, of its own class (src/threads.ts deserializeError). */
export function deserializeError(s: SerializedError): Error {
  return deserializeThreadError(s, 'in a sweep worker');
}

export interface PoolOptions {
  /** Threads running trials, the main thread included when `main` is given. */
  workers: number;
  /** Run trials in the main thread too: a function that runs one (its context made on first use). */
  main?: () => Promise<(task: TrialTask) => TrialOutcome>;
  /** Called after each trial with the number done. */
  onResult?: (done: number, total: number, outcome: TrialOutcome) => void;
  /** Called once, when the first worker is ready. */
  onReady?: (info: Extract<WorkerReply, { type: 'ready' }>) => void;
}

/**
 * Runs the tasks in `workers` worker threads. Resolves to the outcomes in task order; rejects with
 * the first error of any worker (of its own class: a FileFormatError keeps its file), after
 * stopping every worker.
 */
export function runInWorkers(spec: TrialContextSpec, tasks: readonly TrialTask[], opts: PoolOptions): Promise<TrialOutcome[]> {
  const script = sweepWorkerScript();
  const threads = Math.max(1, Math.min(opts.workers, tasks.length));
  const n = opts.main ? threads - 1 : threads;
  const outcomes: (TrialOutcome | undefined)[] = new Array(tasks.length);
  const queue = new SharedArrayBuffer(4);
  const next = new Int32Array(queue);
  let done = 0;
  let readySeen = false;
  const workers: Worker[] = [];
  return new Promise<TrialOutcome[]>((resolve, reject) => {
    let settled = false;
    const stopAll = () => Promise.all(workers.map((w) => w.terminate().catch(() => 0)));
    const fail = (e: Error) => {
      if (settled) return;
      settled = true;
      Atomics.store(next, 0, tasks.length);
      void stopAll().then(() => reject(e));
    };
    const record = (outcome: TrialOutcome) => {
      if (settled) return;
      outcomes[outcome.index] = outcome;
      done++;
      opts.onResult?.(done, tasks.length, outcome);
      if (done === tasks.length) {
        settled = true;
        void stopAll().then(() => resolve(outcomes as TrialOutcome[]));
      }
    };
    if (tasks.length === 0) {
      resolve([]);
      return;
    }
    const data: WorkerData = { spec, tasks, queue };
    for (let i = 0; i < n && !settled; i++) {
      let w: Worker;
      try {
        w = new Worker(script, { workerData: data });
      } catch (e) {
        fail(e instanceof Error ? e : new Error(String(e)));
        break;
      }
      workers.push(w);
      w.on('message', (m: WorkerReply) => {
        if (settled) return;
        if (m.type === 'error') return fail(deserializeError(m.error));
        if (m.type === 'ready') {
          if (!readySeen) {
            readySeen = true;
            opts.onReady?.(m);
          }
          return;
        }
        record(m.outcome);
      });
      w.on('error', (e) => fail(e instanceof Error ? new Error(`a sweep worker failed: ${e.message}`) : new Error(`a sweep worker failed: ${String(e)}`)));
      // A worker leaves with code 0 once the queue is empty; any other exit before the end is a failure.
      w.on('exit', (code) => {
        if (!settled && code !== 0) fail(new Error(`a sweep worker stopped (exit code ${code}) before the sweep was done`));
      });
    }
    if (opts.main) {
      const mainRun = opts.main;
      void (async () => {
        try {
          const run = await mainRun();
          for (;;) {
            // let the workers' results (and timers: the progress bar) through between trials
            await new Promise((r) => setImmediate(r));
            if (settled) return;
            const i = Atomics.add(next, 0, 1);
            if (i >= tasks.length) return;
            record(run(tasks[i]));
          }
        } catch (e) {
          fail(e instanceof Error ? e : new Error(String(e)));
        }
      })();
    }
  });
}
