// Output folders that are never half-written, mixed or lost. A command that writes a folder claims
// it first: a lock file beside it (`.NAME.lock`, created with O_EXCL, holding the owner's pid and
// host) refuses a second writer; the result is built in a staging folder beside the target
// (`.NAME.<pid>.<n>.tmp`, or `.NAME.partial` for a run that can be resumed) and renamed into
// place when complete, the previous result moved aside first and removed last. A kill at any
// moment therefore leaves the previous result or the new one at the final path; the next claim
// removes the staging folders and locks of dead processes (and puts back a previous result whose
// replacement was cut between the two renames).
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { UsageError } from './errors';

/** Another live process writes the same folder: the CLI exits with code 1. */
export class FolderBusyError extends Error {
  override readonly name = 'FolderBusyError';
}

export interface ClaimOptions {
  /** The flag that named the folder, for messages ('--out'). */
  flag?: string;
  /** Replace an existing non-empty folder (without it that is refused: a result is never lost by accident). */
  overwrite?: boolean;
  /** The command continues the result at the final path (train --resume): replacing it needs no --overwrite. */
  continues?: boolean;
  /** Folders and files the command reads: the output may not be, contain or lie inside one of them. */
  inputs?: readonly { flag: string; path: string }[];
  /**
   * 'fresh' (default): a new empty staging folder, removed when the command fails.
   * 'resumable': the staging folder `.NAME.partial` survives a failure or a kill, so that the
   * command can continue it (train --resume); the caller empties or seeds it.
   */
  staging?: 'fresh' | 'resumable';
}

const HOST = os.hostname();
let counter = 0;

interface LockRecord {
  pid: number;
  host: string;
  started: string;
  command: string;
}

/** `.NAME.lock`, `.NAME.partial`, `.NAME.<pid>.<n>.tmp` for the folder `dir`. */
export function siblingPaths(dir: string): { lock: string; partial: string; prefix: string } {
  const abs = path.resolve(dir);
  const parent = path.dirname(abs);
  const base = path.basename(abs);
  return { lock: path.join(parent, `.${base}.lock`), partial: path.join(parent, `.${base}.partial`), prefix: `.${base}.` };
}

/** A temporary sibling of `abs` that no other process or call uses. */
export function tempSibling(abs: string, kind: 'tmp' | 'old'): string {
  return path.join(path.dirname(abs), `.${path.basename(abs)}.${process.pid}.${counter++}.${kind}`);
}

/** Whether process `pid` on `host` may still be running (another host: assumed so). */
export function processAlive(pid: number, host: string = HOST): boolean {
  if (host !== HOST) return true;
  if (!Number.isInteger(pid) || pid <= 0) return false;
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Checks a path given for an output folder and returns it absolute: empty, the root, an existing
 * file, or a path under a file are one clear UsageError naming the flag.
 */
export function checkOutputPath(out: string | undefined, flag = '--out'): string {
  if (out === undefined || out.trim() === '') throw new UsageError(`${flag} must name a folder, got '${out ?? ''}'`);
  const abs = path.resolve(out);
  if (path.dirname(abs) === abs) throw new UsageError(`${flag} ${out}: the root folder cannot be an output folder`);
  for (let p = abs; ; p = path.dirname(p)) {
    let st: fs.Stats | null = null;
    try {
      st = fs.statSync(p);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOTDIR') continue; // a file further up: found on a later step
      if (code !== 'ENOENT') throw new UsageError(`${flag} ${out}: ${p} cannot be read (${code})`);
    }
    if (st) {
      if (st.isDirectory()) break;
      if (p === abs) throw new UsageError(`${flag} ${out} is a file, not a folder; name a folder to write`);
      throw new UsageError(`${flag} ${out} lies under ${p}, which is a file, not a folder`);
    }
    if (path.dirname(p) === p) break;
  }
  return abs;
}

/** The real path of `p` as far as it exists, with the rest appended (symlinks resolved). */
function realish(p: string): string {
  const abs = path.resolve(p);
  const rest: string[] = [];
  for (let q = abs; ; q = path.dirname(q)) {
    try {
      return path.join(fs.realpathSync(q), ...rest.reverse());
    } catch {
      if (path.dirname(q) === q) return abs;
      rest.push(path.basename(q));
    }
  }
}

/** Refuses an output folder that is, contains or lies inside one of the command's inputs. */
export function checkNotOverInputs(out: string, inputs: readonly { flag: string; path: string }[], flag = '--out'): void {
  const o = realish(out);
  for (const input of inputs) {
    if (!input.path) continue;
    const i = realish(input.path);
    const clash =
      o === i ? 'is' : i.startsWith(o + path.sep) ? 'contains' : o.startsWith(i + path.sep) ? 'lies inside' : null;
    if (clash) {
      throw new UsageError(`${flag} ${out} ${clash} the input ${input.flag} ${input.path}: the input would be overwritten; write the result to another folder`);
    }
  }
}

function readLock(file: string): LockRecord | null {
  try {
    const o = JSON.parse(fs.readFileSync(file, 'utf8'));
    if (o && Number.isInteger(o.pid) && typeof o.host === 'string') return o as LockRecord;
  } catch {
    /* unreadable or being written: null */
  }
  return null;
}

function tryCreateLock(file: string, record: LockRecord): boolean {
  // Write the record to a private file, then link it to the lock name: link fails when the lock
  // exists, so taking it is atomic and a holder's record is always complete.
  const own = `${file}.${process.pid}.${counter++}.new`;
  fs.writeFileSync(own, JSON.stringify(record) + '\n');
  try {
    fs.linkSync(own, file);
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw e;
  } finally {
    fs.rmSync(own, { force: true });
  }
}

/** Takes the lock of `abs` or throws FolderBusyError; a lock of a dead process is broken. */
function takeLock(abs: string, display: string, flag: string): string {
  const { lock } = siblingPaths(abs);
  const record: LockRecord = { pid: process.pid, host: HOST, started: new Date().toISOString(), command: process.argv.slice(2, 4).join(' ') };
  for (let attempt = 0; attempt < 5; attempt++) {
    if (tryCreateLock(lock, record)) return lock;
    const holder = readLock(lock);
    if (holder && processAlive(holder.pid, holder.host)) {
      const where = holder.host !== HOST ? ` on ${holder.host}` : '';
      throw new FolderBusyError(
        `${flag} ${display} is being written by another memristor-tfjs process (pid ${holder.pid}${where}, ${holder.command || 'a command'} since ${holder.started}); ` +
          `wait for it to finish or choose another ${flag}` + (where ? ` (if that process is gone, remove ${lock})` : ''),
      );
    }
    // Stale (its owner died) or unreadable: move it aside, and put it back if it turns out to be
    // a live lock another process took in the meantime.
    const aside = `${lock}.${process.pid}.${counter++}.stale`;
    try {
      fs.renameSync(lock, aside);
    } catch {
      continue;
    }
    const moved = readLock(aside);
    if (moved && processAlive(moved.pid, moved.host) && (!holder || moved.pid !== holder.pid)) {
      try {
        fs.linkSync(aside, lock);
      } catch {
        /* someone holds it now */
      }
    }
    fs.rmSync(aside, { force: true });
  }
  throw new FolderBusyError(`${flag} ${display}: could not take the lock ${lock} (other processes keep taking it)`);
}

/**
 * Removes what dead writers of `abs` left beside it: staging folders (`.NAME.<pid>.<n>.tmp`),
 * moved-aside previous results (`.NAME.<pid>.<n>.old`: put back where the final folder is
 * missing) and broken locks. Call with the lock held. Returns the names removed or restored.
 */
export function cleanStaleSiblings(abs: string): string[] {
  const parent = path.dirname(abs);
  const { prefix } = siblingPaths(abs);
  const done: string[] = [];
  let names: string[];
  try {
    names = fs.readdirSync(parent);
  } catch {
    return done;
  }
  const esc = prefix.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const re = new RegExp(`^${esc}(\\d+)\\.\\d+\\.(tmp|old|new|stale)$|^${esc}lock\\.(\\d+)\\.\\d+\\.(new|stale)$`);
  for (const name of names.sort()) {
    const m = re.exec(name);
    if (!m) continue;
    const pid = Number(m[1] ?? m[3]);
    if (processAlive(pid)) continue;
    const p = path.join(parent, name);
    if (m[2] === 'old' && !fs.existsSync(abs)) {
      fs.renameSync(p, abs);
      done.push(`restored ${name}`);
    } else {
      fs.rmSync(p, { recursive: true, force: true });
      done.push(name);
    }
  }
  return done;
}

/**
 * Moves the complete folder `from` to `to`: an existing `to` is renamed aside first and removed
 * last, so that `to` holds the old result or the new one at every moment but between two
 * renames (and a kill there is repaired by the next claim, see cleanStaleSiblings).
 */
export function replaceDir(from: string, to: string): void {
  let old: string | null = null;
  if (fs.existsSync(to)) {
    old = tempSibling(to, 'old');
    fs.renameSync(to, old);
  }
  fs.renameSync(from, to);
  if (old) fs.rmSync(old, { recursive: true, force: true });
}

const active = new Set<{ release(): void }>();
let handlersInstalled = false;

function installHandlers(): void {
  if (handlersInstalled) return;
  handlersInstalled = true;
  // Ctrl-C or a kill: remove our staging folders and locks, then exit as the signal would.
  for (const [sig, code] of [['SIGINT', 130], ['SIGTERM', 143]] as const) {
    process.on(sig, () => {
      for (const f of [...active]) f.release();
      process.exit(code);
    });
  }
  process.on('exit', () => {
    for (const f of [...active]) f.release();
  });
}

/** A claimed output folder: write into `staging`, then `commit()`; always `release()`. */
export class OutputFolder {
  private committed = false;
  private released = false;

  constructor(
    /** The final path (absolute). */
    readonly final: string,
    /** Where the result is built (absolute), a sibling of `final`. */
    readonly staging: string,
    private readonly lock: string,
    private readonly resumable: boolean,
  ) {}

  /** Empties the staging folder (a resumable one may hold an earlier run). */
  resetStaging(seedFrom?: string): void {
    fs.rmSync(this.staging, { recursive: true, force: true });
    if (seedFrom) fs.cpSync(seedFrom, this.staging, { recursive: true });
    else fs.mkdirSync(this.staging, { recursive: true });
  }

  /** Renames the complete staging folder into place. */
  commit(): void {
    if (this.released) throw new Error('commit after release');
    replaceDir(this.staging, this.final);
    this.committed = true;
  }

  /**
   * Releases the lock; a fresh staging folder that was not committed is removed (a resumable one
   * is kept when it holds anything, for --resume).
   */
  release(): void {
    if (this.released) return;
    this.released = true;
    active.delete(this);
    if (!this.committed) {
      const keep = this.resumable && fs.existsSync(this.staging) && fs.readdirSync(this.staging).length > 0;
      if (!keep) fs.rmSync(this.staging, { recursive: true, force: true });
    }
    const holder = readLock(this.lock);
    if (holder && holder.pid === process.pid && holder.host === HOST) fs.rmSync(this.lock, { force: true });
  }
}

/**
 * Claims an output folder for this process: checks the path (and that it is none of the inputs),
 * takes the lock (FolderBusyError while another live process holds it), cleans what dead writers
 * left, refuses to replace a non-empty folder without `overwrite` (UsageError naming the flag), and
 * makes the staging folder. The caller writes into `staging`, calls `commit()`, and `release()`
 * in a finally.
 */
export function claimOutputFolder(out: string | undefined, opts: ClaimOptions = {}): OutputFolder {
  const flag = opts.flag ?? '--out';
  const abs = checkOutputPath(out, flag);
  checkNotOverInputs(abs, opts.inputs ?? [], flag);
  fs.mkdirSync(path.dirname(abs), { recursive: true });
  const lock = takeLock(abs, out as string, flag);
  const resumable = opts.staging === 'resumable';
  let folder: OutputFolder | null = null;
  try {
    cleanStaleSiblings(abs);
    if (fs.existsSync(abs) && !opts.overwrite && !opts.continues) {
      const n = fs.readdirSync(abs).length;
      if (n > 0) {
        throw new UsageError(`${flag} ${out} already holds a result (${n} entries); give --overwrite to replace it, or choose another ${flag}`);
      }
    }
    const staging = resumable ? siblingPaths(abs).partial : tempSibling(abs, 'tmp');
    if (!resumable) fs.mkdirSync(staging);
    folder = new OutputFolder(abs, staging, lock, resumable);
    installHandlers();
    active.add(folder);
    return folder;
  } catch (e) {
    if (!folder) fs.rmSync(lock, { force: true });
    throw e;
  }
}

/** Claims `out`, runs `fill(staging)`, commits, releases; returns what `fill` returned. */
export async function writeOutputFolder<T>(out: string | undefined, opts: ClaimOptions, fill: (staging: string, folder: OutputFolder) => Promise<T> | T): Promise<T> {
  const folder = claimOutputFolder(out, opts);
  try {
    const value = await fill(folder.staging, folder);
    folder.commit();
    return value;
  } finally {
    folder.release();
  }
}

/**
 * Checks the path of an output FILE (fit-device's device JSON, written atomically): not empty, not
 * a folder, not under a file, not one of the inputs, and an existing file is replaced only with
 * `overwrite`. UsageErrors name the flag.
 */
export function checkOutputFile(out: string | undefined, opts: { flag?: string; overwrite?: boolean; inputs?: readonly { flag: string; path: string }[] } = {}): string {
  const flag = opts.flag ?? '--out';
  if (out === undefined || out.trim() === '') throw new UsageError(`${flag} must name a file, got '${out ?? ''}'`);
  const abs = path.resolve(out);
  let st: fs.Stats | null = null;
  try {
    st = fs.statSync(abs);
  } catch {
    /* absent: fine */
  }
  if (st?.isDirectory()) throw new UsageError(`${flag} ${out} is a folder; name the file to write`);
  for (let p = path.dirname(abs); ; p = path.dirname(p)) {
    let pst: fs.Stats | null = null;
    try {
      pst = fs.statSync(p);
    } catch {
      /* absent or under a file: look further up */
    }
    if (pst && !pst.isDirectory()) throw new UsageError(`${flag} ${out} lies under ${p}, which is a file, not a folder`);
    if (pst || path.dirname(p) === p) break;
  }
  const o = realish(abs);
  for (const input of opts.inputs ?? []) {
    if (input.path && fs.existsSync(input.path) && realish(input.path) === o) {
      throw new UsageError(`${flag} ${out} is the input ${input.flag} ${input.path}: write the result to another file`);
    }
  }
  if (st && !opts.overwrite) throw new UsageError(`${flag} ${out} already exists; give --overwrite to replace it, or choose another ${flag}`);
  return abs;
}

/**
 * Takes the lock of an output FILE (`.NAME.lock` beside it: a second writer of the same file is
 * refused with FolderBusyError) and removes what dead writers left beside it (their `.NAME.<pid>.<n>.tmp`
 * files); the file itself is written atomically by the caller. Call `release()` in a finally.
 */
export function claimOutputFile(out: string, flag = '--out'): { path: string; release(): void } {
  const abs = path.resolve(out);
  fs.mkdirSync(path.dirname(abs), { recursive: true });
  const lock = takeLock(abs, out, flag);
  let released = false;
  const claim = {
    path: abs,
    release(): void {
      if (released) return;
      released = true;
      active.delete(claim);
      const holder = readLock(lock);
      if (holder && holder.pid === process.pid && holder.host === HOST) fs.rmSync(lock, { force: true });
    },
  };
  try {
    cleanStaleSiblings(abs);
  } catch (e) {
    claim.release();
    throw e;
  }
  installHandlers();
  active.add(claim);
  return claim;
}
