// What every pool of worker threads here needs (sweep trials, data-parallel training): the
// compiled script a worker runs, and errors that cross the thread boundary with their class.
//
// Workers run compiled scripts under dist/: beside the calling module when it is itself compiled,
// or under the package's dist/ when it runs as TypeScript (jest). A dist/ older than the sources
// is refused then, so that a test never runs yesterday's worker code.
import * as fs from 'fs';
import * as path from 'path';
import { ConfigError, FileFormatError, UsageError } from './errors';

/** An error as it crosses the thread boundary (structured clone keeps neither class nor fields). */
export interface SerializedError {
  name: string;
  message: string;
  stack?: string;
  file?: string;
  problem?: string;
  field?: string;
}

export function serializeError(e: unknown): SerializedError {
  if (e instanceof FileFormatError) return { name: e.name, message: e.message, stack: e.stack, file: e.file, problem: e.problem };
  if (e instanceof ConfigError) return { name: e.name, message: e.message, stack: e.stack, field: e.field, problem: e.problem };
  if (e instanceof Error) return { name: e.name, message: e.message, stack: e.stack };
  return { name: 'Error', message: String(e) };
}

/**
 * The error again, of its own class (FileFormatError with its file, ConfigError with its field);
 * any other error's message is prefixed with `where` (e.g. 'in a sweep worker').
 */
export function deserializeError(s: SerializedError, where: string): Error {
  let e: Error;
  if (s.name === 'FileFormatError' && s.file !== undefined) e = new FileFormatError(s.file, s.problem ?? s.message);
  else if (s.name === 'ConfigError' && s.field !== undefined) e = new ConfigError(s.field, s.problem ?? s.message);
  else if (s.name === 'UsageError') e = new UsageError(s.message);
  else {
    e = new Error(`${where}: ${s.message}`);
    if (s.name && s.name !== 'Error') e.name = s.name;
  }
  if (s.stack) e.stack = `${e.name}: ${e.message}\n    (${where} thread)\n${s.stack.split('\n').slice(1).join('\n')}`;
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

const ROOT = path.join(__dirname, '..');
const COMPILED = __filename.endsWith('.js');

/**
 * The compiled worker script `relPath` (from the package root, without dist/ and with .js, e.g.
 * 'src/sweep/worker.js'); a clear error naming `what` when it has not been built or, run as
 * TypeScript, when it is older than the sources.
 */
export function workerScript(relPath: string, what: string): string {
  // compiled, this file is dist/src/threads.js and ROOT is dist/; as TypeScript ROOT is the package
  const file = COMPILED ? path.join(ROOT, relPath) : path.join(ROOT, 'dist', relPath);
  if (!fs.existsSync(file)) {
    throw new Error(`the ${what} worker script ${file} is missing: ${what} workers run the compiled code, run \`npm run build\` first`);
  }
  if (!COMPILED) {
    const built = fs.statSync(file).mtimeMs;
    const stale = ['src', 'layers', 'models', 'training'].find((d) => newestSource(path.join(ROOT, d)) > built);
    if (stale) throw new Error(`the ${what} worker script ${file} is older than the sources in ${stale}/: run \`npm run build\` first`);
  }
  return file;
}
