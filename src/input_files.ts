// Reading the files and folders a command is given: one place that turns a missing or unreadable
// path into a FileFormatError naming it (exit 1 at the CLI), so that every reader says it alike.
import * as fs from 'fs';
import { FileFormatError } from './errors';

/** The text of `file`; a FileFormatError naming it when it is missing (`missing`) or unreadable. */
export function readTextFile(file: string, missing = 'no such file'): string {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new FileFormatError(file, code === 'ENOENT' ? missing : `cannot be read (${code ?? (e as Error).message})`);
  }
}

/** Checks that `dir` is a folder; a FileFormatError naming it otherwise (`what` says what it should hold). */
export function requireFolder(dir: string, what: string): void {
  let st: fs.Stats;
  try {
    st = fs.statSync(dir);
  } catch {
    throw new FileFormatError(dir, `no such folder (${what})`);
  }
  if (!st.isDirectory()) throw new FileFormatError(dir, `not a folder (${what})`);
}
