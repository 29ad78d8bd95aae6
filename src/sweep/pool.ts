// A pool of threads that run sweep trials: each worker starts the backend and loads the model and
// the dataset once (TrialContext), then takes trials from one queue until it is empty. The queue
// is an atomic counter in shared memory, so the main thread can run trials too (with W threads,
// W - 1 workers and the main thread, which has its context already or builds it while the workers
// start) without starving the workers of tasks while it is busy. The results are put back in task
// order, so they do not depend on the number of threads.
//
// The workers run the compiled worker script (dist/src/sweep/worker.js): beside this file when it
// is itself compiled, or under the package's dist/ when this file runs as TypeScript (jest).
import * as fs from 'fs';
import * as path from 'path';
import { Worker } from 'worker_threads';
import { ConfigError, FileFormatError, UsageError } from '../errors';
import type { TrialContextSpec, TrialOutcome, TrialTask } from './trial';

/** An error as it crosses the thread boundary (structured clone keeps neither class nor fields). */
export interface SerializedError {
  name: string;
  message: string;
  stack?: string;
  file?: string;
  problem?: string;
  field?: string;
}

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

export function serializeError(e: unknown): SerializedError {
  if (e instanceof FileFormatError) return { name: e.name, message: e.message, stack: e.stack, file: e.file, problem: e.problem };
  if (e instanceof ConfigError) return { name: e.name, message: e.message, stack: e.stack, field: e.field, problem: e.problem };
  if (e instanceof Error) return { name: e.name, message: e.message, stack: e.stack };
  return { name: 'Error', message: String(e) };
}

/** The error again, of its own class (FileFormatError with its file, ConfigError with its field). */
export function deserializeError(s: SerializedError): Error {
  let e: Error;
  if (s.name === 'FileFormatError' && s.file !== undefined) e = new FileFormatError(s.file, s.problem ?? s.message);
  else if (s.name === 'ConfigError' && s.field !== undefined) e = new ConfigError(s.field, s.problem ?? s.message);
  else if (s.name === 'UsageError') e = new UsageError(s.message);
  else {
    e = new Error(`in a sweep worker: ${s.message}`);
    if (s.name && s.name !== 'Error') e.name = s.name;
  }
  if (s.stack) e.stack = `${e.name}: ${e.message}\n    (in a sweep worker thread)\n${s.stack.split('\n').slice(1).join('\n')}`;
  return e;
}

/** The newest modification time of the .ts files under `dir` (0 for none). */
function newestSource(dir: string): number {
  let t = 0;
  let entries: fs.Dirent[];
  try {
    entries = fs.readdirSync(dir, { withFileTypes: true });
  } catch {
    return 0;
  }
  for (const e of entries) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) t = Math.max(t, newestSource(p));
    else if (e.name.endsWith('.ts') && !e.name.endsWith('.d.ts')) t = Math.max(t, fs.statSync(p).mtimeMs);
  }
  return t;
}

/**
 * The compiled worker script; a clear error when it has not been built. Run as TypeScript (jest),
 * the workers would run dist/, so a dist/ older than the sources is refused too.
 */
export function workerScript(): string {
  const compiled = __filename.endsWith('.js');
  const root = path.join(__dirname, '..', '..');
  const file = compiled ? path.join(__dirname, 'worker.js') : path.join(root, 'dist', 'src', 'sweep', 'worker.js');
  if (!fs.existsSync(file)) {
    throw new Error(`the sweep worker script ${file} is missing: sweep workers run the compiled code, run \`npm run build\` first`);
  }
  if (!compiled) {
    const built = fs.statSync(file).mtimeMs;
    const stale = ['src', 'layers', 'models', 'training'].find((d) => newestSource(path.join(root, d)) > built);
    if (stale) throw new Error(`the sweep worker script ${file} is older than the sources in ${stale}/: run \`npm run build\` first`);
  }
  return file;
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
  const script = workerScript();
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
