// Atomic file writes: write a temporary file beside the target, fsync, then rename over it, so a
// crash never leaves a half-written or lost file.
import * as fs from 'fs';
import * as path from 'path';
import { replaceDir, tempSibling } from './output_folder';

let counter = 0;

export function writeFileAtomic(file: string, data: string | Uint8Array): void {
  const dir = path.dirname(file);
  fs.mkdirSync(dir, { recursive: true });
  const tmp = path.join(dir, `.${path.basename(file)}.${process.pid}.${counter++}.tmp`);
  const fd = fs.openSync(tmp, 'w');
  try {
    fs.writeSync(fd, typeof data === 'string' ? Buffer.from(data, 'utf8') : data);
    fs.fsyncSync(fd);
  } catch (e) {
    fs.closeSync(fd);
    fs.rmSync(tmp, { force: true });
    throw e;
  }
  fs.closeSync(fd);
  fs.renameSync(tmp, file);
}

export function writeJsonAtomic(file: string, value: unknown): void {
  writeFileAtomic(file, JSON.stringify(value, null, 2) + '\n');
}

/**
 * Writes a whole directory atomically: `fill` writes into a fresh temporary directory beside
 * `dir`, which then replaces `dir` by rename (an existing `dir` is moved aside first and removed
 * last). If `fill` throws, the temporary directory is removed and `dir` is left as it was, so an
 * interrupted job never leaves a half-written result nor touches the files it read. (A command's
 * whole output folder is claimed with src/output_folder.ts, which adds the lock; this serves the
 * parts written inside it.)
 */
export async function writeDirAtomic(dir: string, fill: (tmpDir: string) => Promise<void> | void): Promise<void> {
  const abs = path.resolve(dir);
  fs.mkdirSync(path.dirname(abs), { recursive: true });
  const tmp = tempSibling(abs, 'tmp');
  fs.rmSync(tmp, { recursive: true, force: true });
  fs.mkdirSync(tmp);
  try {
    await fill(tmp);
  } catch (e) {
    fs.rmSync(tmp, { recursive: true, force: true });
    throw e;
  }
  replaceDir(tmp, abs);
}
