// Atomic writes (src/atomic.ts): files and whole folders replace their targets in one rename; a
// failed write leaves the old target as it was and nothing temporary behind.
import * as fs from 'fs';
import * as path from 'path';
import { writeDirAtomic, writeFileAtomic, writeJsonAtomic } from '../src/atomic';
import { tempRoot } from './helpers';

const root = tempRoot('atomic');
let dirCount = 0;
/** A fresh, empty folder for one test. */
function freshDir(): string {
  const d = path.join(root, `t${dirCount++}`);
  fs.mkdirSync(d);
  return d;
}

/** Every file under dir (relative paths, sorted) with its contents. */
function snapshot(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const f of fs.readdirSync(dir, { recursive: true }).map(String).sort()) {
    const p = path.join(dir, f);
    if (fs.statSync(p).isFile()) out[f] = fs.readFileSync(p, 'utf8');
  }
  return out;
}

describe('writeFileAtomic and writeJsonAtomic', () => {
  test('a string and bytes round-trip; missing parent folders are made; nothing else is left', () => {
    const dir = freshDir();
    const file = path.join(dir, 'a', 'b', 'note.txt');
    writeFileAtomic(file, 'héllo\n');
    expect(fs.readFileSync(file, 'utf8')).toBe('héllo\n');
    const bin = path.join(dir, 'data.bin');
    const bytes = Uint8Array.from({ length: 300 }, (_, i) => (i * 7) % 256);
    writeFileAtomic(bin, bytes);
    expect(Uint8Array.from(fs.readFileSync(bin))).toEqual(bytes);
    expect(fs.readdirSync(dir).sort()).toEqual(['a', 'data.bin']);
    expect(fs.readdirSync(path.join(dir, 'a', 'b'))).toEqual(['note.txt']);
  });

  test('an existing file is replaced whole (a shorter text leaves no tail of the old one)', () => {
    const dir = freshDir();
    const file = path.join(dir, 'f.txt');
    writeFileAtomic(file, 'a long first version\n');
    writeFileAtomic(file, 'short\n');
    expect(fs.readFileSync(file, 'utf8')).toBe('short\n');
    expect(fs.readdirSync(dir)).toEqual(['f.txt']);
  });

  test('a write that fails leaves the old file as it was and no temporary file', () => {
    const dir = freshDir();
    const file = path.join(dir, 'f.txt');
    writeFileAtomic(file, 'old\n');
    // not a string nor bytes: the write itself throws, after the temporary file was opened
    expect(() => writeFileAtomic(file, 42 as unknown as string)).toThrow();
    expect(fs.readFileSync(file, 'utf8')).toBe('old\n');
    expect(fs.readdirSync(dir)).toEqual(['f.txt']);
    // a parent that is a file: nothing written anywhere
    expect(() => writeFileAtomic(path.join(file, 'x.txt'), 'y')).toThrow();
    expect(fs.readdirSync(dir)).toEqual(['f.txt']);
  });

  test('writeJsonAtomic writes the value as 2-space JSON and a newline', () => {
    const dir = freshDir();
    const file = path.join(dir, 'v.json');
    const value = { format: 'x', version: 1, values: [0.5, null, 'a'], nested: { ok: true } };
    writeJsonAtomic(file, value);
    const text = fs.readFileSync(file, 'utf8');
    expect(text).toBe('{\n  "format": "x",\n  "version": 1,\n  "values": [\n    0.5,\n    null,\n    "a"\n  ],\n  "nested": {\n    "ok": true\n  }\n}\n');
    expect(JSON.parse(text)).toEqual(value);
  });
});

describe('writeDirAtomic', () => {
  test('fill writes into a new folder beside the target, which then becomes the target', async () => {
    const parent = freshDir();
    const dir = path.join(parent, 'out');
    let seen = '';
    await writeDirAtomic(dir, async (tmp) => {
      seen = tmp;
      // beside the target (same folder: one rename), not the target itself, and empty
      expect(path.dirname(tmp)).toBe(parent);
      expect(tmp).not.toBe(dir);
      expect(fs.readdirSync(tmp)).toEqual([]);
      expect(fs.existsSync(dir)).toBe(false);
      fs.writeFileSync(path.join(tmp, 'a.txt'), 'A');
      await new Promise((r) => setTimeout(r, 5));
      fs.mkdirSync(path.join(tmp, 'sub'));
      fs.writeFileSync(path.join(tmp, 'sub', 'b.txt'), 'B');
    });
    expect(snapshot(dir)).toEqual({ 'a.txt': 'A', [path.join('sub', 'b.txt')]: 'B' });
    expect(fs.existsSync(seen)).toBe(false);
    expect(fs.readdirSync(parent)).toEqual(['out']);
  });

  test('an existing folder is replaced as a whole: none of its old files stay; readers see the old one until then', async () => {
    const parent = freshDir();
    const dir = path.join(parent, 'out');
    await writeDirAtomic(dir, (tmp) => {
      fs.writeFileSync(path.join(tmp, 'old.txt'), 'old');
      fs.writeFileSync(path.join(tmp, 'kept-name.txt'), 'v1');
    });
    await writeDirAtomic(dir, (tmp) => {
      expect(snapshot(dir)).toEqual({ 'old.txt': 'old', 'kept-name.txt': 'v1' });
      fs.writeFileSync(path.join(tmp, 'kept-name.txt'), 'v2');
    });
    expect(snapshot(dir)).toEqual({ 'kept-name.txt': 'v2' });
    expect(fs.readdirSync(parent)).toEqual(['out']);
  });

  test('a throwing fill leaves the old folder intact and no temporary folder behind', async () => {
    const parent = freshDir();
    const dir = path.join(parent, 'out');
    await writeDirAtomic(dir, (tmp) => fs.writeFileSync(path.join(tmp, 'good.txt'), 'good'));
    const before = snapshot(dir);
    let tmpSeen = '';
    await expect(
      writeDirAtomic(dir, async (tmp) => {
        tmpSeen = tmp;
        fs.writeFileSync(path.join(tmp, 'half.txt'), 'half');
        throw new Error('interrupted');
      }),
    ).rejects.toThrow('interrupted');
    expect(snapshot(dir)).toEqual(before);
    expect(fs.existsSync(tmpSeen)).toBe(false);
    expect(fs.readdirSync(parent)).toEqual(['out']);
    // a synchronous throw too
    await expect(
      writeDirAtomic(dir, () => {
        throw new TypeError('bad');
      }),
    ).rejects.toThrow(TypeError);
    expect(snapshot(dir)).toEqual(before);
    expect(fs.readdirSync(parent)).toEqual(['out']);
  });

  test('a throwing fill where there was no folder leaves nothing; missing parents are made', async () => {
    const parent = freshDir();
    const dir = path.join(parent, 'deep', 'er', 'out');
    await expect(writeDirAtomic(dir, () => Promise.reject(new Error('no')))).rejects.toThrow('no');
    expect(fs.existsSync(dir)).toBe(false);
    expect(fs.readdirSync(path.join(parent, 'deep', 'er'))).toEqual([]);
    await writeDirAtomic(dir, (tmp) => fs.writeFileSync(path.join(tmp, 'x'), '1'));
    expect(snapshot(dir)).toEqual({ x: '1' });
  });

  test('a relative target is resolved against the working folder', async () => {
    const parent = freshDir();
    const cwd = process.cwd();
    process.chdir(parent);
    try {
      await writeDirAtomic('rel', (tmp) => fs.writeFileSync(path.join(tmp, 'r.txt'), 'r'));
    } finally {
      process.chdir(cwd);
    }
    expect(snapshot(path.join(parent, 'rel'))).toEqual({ 'r.txt': 'r' });
  });
});
