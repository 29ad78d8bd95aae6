// Output folders: the lock, the staging folder and its rename into place, the cleaning of what
// dead writers left, and the path checks (src/output_folder.ts).
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { spawnSync } from 'child_process';
import {
  claimOutputFolder,
  checkOutputPath,
  checkNotOverInputs,
  cleanStaleSiblings,
  FolderBusyError,
  processAlive,
  siblingPaths,
  checkOutputFile,
  claimOutputFile,
  writeOutputFolder,
} from '../src/output_folder';
import { writeDirAtomic } from '../src/atomic';
import { UsageError } from '../src/errors';
import { errorOf } from './helpers';

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'mtfjs-outdir-'));
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));
let n = 0;
const fresh = () => path.join(root, `case${n++}`);

/** The pid of a process that has exited (pids are not reused this fast). */
const DEAD_PID = spawnSync(process.execPath, ['-e', '0']).pid as number;

/** Everything beside `dir` that belongs to it (its staging folders, locks). */
function siblingsOf(dir: string): string[] {
  const prefix = siblingPaths(dir).prefix;
  return fs.readdirSync(path.dirname(dir)).filter((f) => f.startsWith(prefix)).sort();
}

function files(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const f of fs.readdirSync(dir).sort()) out[f] = fs.readFileSync(path.join(dir, f), 'utf8');
  return out;
}

describe('claimOutputFolder', () => {
  test('builds the result beside the target, renames it into place, leaves nothing behind', async () => {
    const out = fresh();
    let staging = '';
    const v = await writeOutputFolder(out, {}, (dir) => {
      staging = dir;
      expect(path.dirname(dir)).toBe(root);
      expect(path.basename(dir)).toMatch(new RegExp(`^\\.${path.basename(out)}\\.${process.pid}\\.\\d+\\.tmp$`));
      expect(fs.existsSync(siblingPaths(out).lock)).toBe(true);
      expect(fs.existsSync(out)).toBe(false); // nothing at the final path until complete
      fs.writeFileSync(path.join(dir, 'a.txt'), 'A');
      return 42;
    });
    expect(v).toBe(42);
    expect(files(out)).toEqual({ 'a.txt': 'A' });
    expect(fs.existsSync(staging)).toBe(false);
    expect(siblingsOf(out)).toEqual([]);
  });

  test('the lock file holds the owner pid and host', () => {
    const out = fresh();
    const f = claimOutputFolder(out);
    try {
      const rec = JSON.parse(fs.readFileSync(siblingPaths(out).lock, 'utf8'));
      expect(rec.pid).toBe(process.pid);
      expect(rec.host).toBe(os.hostname());
    } finally {
      f.release();
    }
    expect(fs.existsSync(siblingPaths(out).lock)).toBe(false);
  });

  test('a second writer of the same folder is refused while the first holds it, and may go after', async () => {
    const out = fresh();
    const first = claimOutputFolder(out);
    const e = errorOf(() => claimOutputFolder(out));
    expect(e).toBeInstanceOf(FolderBusyError);
    expect(e.message).toContain(`--out ${out} is being written by another memristor-tfjs process (pid ${process.pid}`);
    // the same folder named another way is the same folder
    expect(errorOf(() => claimOutputFolder(path.join(out, '..', path.basename(out))))).toBeInstanceOf(FolderBusyError);
    fs.writeFileSync(path.join(first.staging, 'x'), '1');
    first.commit();
    first.release();
    await writeOutputFolder(out, { overwrite: true }, (d) => fs.writeFileSync(path.join(d, 'y'), '2'));
    expect(files(out)).toEqual({ y: '2' });
  });

  test('a failing fill leaves the previous result whole and removes its staging folder', async () => {
    const out = fresh();
    await writeOutputFolder(out, {}, (d) => fs.writeFileSync(path.join(d, 'old.txt'), 'old'));
    const e = await writeOutputFolder(out, { overwrite: true }, (d) => {
      fs.writeFileSync(path.join(d, 'new.txt'), 'half');
      throw new Error('boom');
    }).catch((x) => x);
    expect((e as Error).message).toBe('boom');
    expect(files(out)).toEqual({ 'old.txt': 'old' });
    expect(siblingsOf(out)).toEqual([]);
  });

  test('a non-empty folder is not replaced without overwrite; an empty one is', async () => {
    const out = fresh();
    await writeOutputFolder(out, {}, (d) => fs.writeFileSync(path.join(d, 'r'), '1'));
    const e = await writeOutputFolder(out, {}, () => undefined).catch((x) => x);
    expect(e).toBeInstanceOf(UsageError);
    expect(e.message).toBe(`--out ${out} already holds a result (1 entries); give --overwrite to replace it, or choose another --out`);
    expect(files(out)).toEqual({ r: '1' });
    expect(siblingsOf(out)).toEqual([]); // the refused claim released its lock
    const empty = fresh();
    fs.mkdirSync(empty);
    await writeOutputFolder(empty, {}, (d) => fs.writeFileSync(path.join(d, 's'), '2'));
    expect(files(empty)).toEqual({ s: '2' });
    // continues: the command extends the result at the final path (train --resume)
    await writeOutputFolder(out, { continues: true }, (d) => fs.writeFileSync(path.join(d, 'r'), '3'));
    expect(files(out)).toEqual({ r: '3' });
  });

  test('a lock of a dead process is broken; staging folders of dead writers are removed', async () => {
    const out = fresh();
    const { lock, prefix } = siblingPaths(out);
    fs.writeFileSync(lock, JSON.stringify({ pid: DEAD_PID, host: os.hostname(), started: 'then', command: 'map' }));
    const deadTmp = path.join(root, `${prefix}${DEAD_PID}.3.tmp`);
    fs.mkdirSync(deadTmp);
    fs.writeFileSync(path.join(deadTmp, 'half'), 'x');
    const deadLockTemp = `${lock}.${DEAD_PID}.1.new`;
    fs.writeFileSync(deadLockTemp, '{}');
    // a live process's staging folder is not touched
    const liveTmp = path.join(root, `${prefix}${process.pid}.999.tmp`);
    fs.mkdirSync(liveTmp);
    await writeOutputFolder(out, {}, (d) => fs.writeFileSync(path.join(d, 'ok'), '1'));
    expect(files(out)).toEqual({ ok: '1' });
    expect(siblingsOf(out)).toEqual([path.basename(liveTmp)]);
    fs.rmSync(liveTmp, { recursive: true });
  });

  test('an unreadable lock (a crash while it was written) is broken too', () => {
    const out = fresh();
    fs.writeFileSync(siblingPaths(out).lock, '{"pid": 12');
    claimOutputFolder(out).release();
    expect(siblingsOf(out)).toEqual([]);
  });

  test('a kill between the two renames of a replacement: the next claim puts the previous result back', () => {
    const out = fresh();
    const old = path.join(root, `${siblingPaths(out).prefix}${DEAD_PID}.7.old`);
    fs.mkdirSync(old);
    fs.writeFileSync(path.join(old, 'previous'), 'p');
    expect(cleanStaleSiblings(out)).toEqual([`restored ${path.basename(old)}`]);
    expect(files(out)).toEqual({ previous: 'p' });
    // where the new result did land, the moved-aside one is only removed
    fs.mkdirSync(old);
    expect(cleanStaleSiblings(out)).toEqual([path.basename(old)]);
    expect(files(out)).toEqual({ previous: 'p' });
  });

  test('a resumable staging folder survives a failure when it holds something, and is reused', () => {
    const out = fresh();
    const a = claimOutputFolder(out, { staging: 'resumable' });
    expect(a.staging).toBe(siblingPaths(out).partial);
    a.resetStaging();
    fs.writeFileSync(path.join(a.staging, 'checkpoint'), 'epoch 1');
    a.release(); // not committed: a crash or an error
    expect(files(siblingPaths(out).partial)).toEqual({ checkpoint: 'epoch 1' });
    const b = claimOutputFolder(out, { staging: 'resumable' });
    expect(files(b.staging)).toEqual({ checkpoint: 'epoch 1' });
    b.commit();
    b.release();
    expect(files(out)).toEqual({ checkpoint: 'epoch 1' });
    // an empty one is not kept
    const c = claimOutputFolder(out, { staging: 'resumable', overwrite: true });
    c.resetStaging();
    c.release();
    expect(siblingsOf(out)).toEqual([]);
  });

  test('writeDirAtomic inside a claimed folder uses the same naming and leaves nothing', async () => {
    const out = fresh();
    await writeDirAtomic(out, (d) => fs.writeFileSync(path.join(d, 'a'), '1'));
    await writeDirAtomic(out, (d) => fs.writeFileSync(path.join(d, 'b'), '2'));
    expect(files(out)).toEqual({ b: '2' });
    expect(siblingsOf(out)).toEqual([]);
  });
});

describe('output paths', () => {
  test('empty, root, an existing file, or a path under a file: one UsageError naming the flag', () => {
    const file = path.join(root, 'a-file');
    fs.writeFileSync(file, 'x');
    const cases: [string, string][] = [
      ['', "--out must name a folder, got ''"],
      ['   ', "--out must name a folder, got '   '"],
      ['/', '--out /: the root folder cannot be an output folder'],
      [file, `--out ${file} is a file, not a folder; name a folder to write`],
      [path.join(file, 'sub'), `--out ${path.join(file, 'sub')} lies under ${file}, which is a file, not a folder`],
      [path.join(file, 'sub', 'deeper'), `--out ${path.join(file, 'sub', 'deeper')} lies under ${file}, which is a file, not a folder`],
    ];
    for (const [p, msg] of cases) {
      const e = errorOf(() => checkOutputPath(p));
      expect(e).toBeInstanceOf(UsageError);
      expect(e.message).toBe(msg);
    }
    expect(errorOf(() => checkOutputPath('', '--out-dir')).message).toBe("--out-dir must name a folder, got ''");
    expect(checkOutputPath(path.join(root, 'new', 'deep'))).toBe(path.join(root, 'new', 'deep'));
    expect(fs.existsSync(path.join(root, 'new'))).toBe(false); // checking creates nothing
  });

  test('an output that is, contains or lies inside an input is refused', () => {
    const input = path.join(root, 'xdir');
    fs.mkdirSync(input, { recursive: true });
    const inputs = [{ flag: '--crossbar', path: input }];
    const cases: [string, string][] = [
      [input, 'is'],
      [input + '/', 'is'],
      [path.join(input, 'sub', '..'), 'is'],
      [root, 'contains'],
      [path.join(input, 'tuned'), 'lies inside'],
    ];
    for (const [out, clash] of cases) {
      const e = errorOf(() => checkNotOverInputs(out, inputs));
      expect(e).toBeInstanceOf(UsageError);
      expect(e.message).toBe(`--out ${out} ${clash} the input --crossbar ${input}: the input would be overwritten; write the result to another folder`);
    }
    // through a symlink too
    const link = path.join(root, 'link-to-xdir');
    fs.symlinkSync(input, link);
    expect(errorOf(() => checkNotOverInputs(link, inputs)).message).toContain(' is the input --crossbar');
    // a sibling whose name starts the same is not inside
    expect(() => checkNotOverInputs(input + '2', inputs)).not.toThrow();
  });

  test('processAlive: this process yes, an exited one no, another host is assumed alive', () => {
    expect(processAlive(process.pid)).toBe(true);
    expect(processAlive(DEAD_PID)).toBe(false);
    expect(processAlive(DEAD_PID, 'some-other-host')).toBe(true);
    expect(processAlive(-1)).toBe(false);
  });

  test('checkOutputFile: an output file is not a folder, not an input, and replaced only with overwrite', () => {
    const dir = fresh();
    fs.mkdirSync(dir);
    const data = path.join(dir, 'pulses.csv');
    fs.writeFileSync(data, 'x');
    const out = path.join(dir, 'dev.json');
    expect(checkOutputFile(out, { inputs: [{ flag: '--data', path: data }] })).toBe(out);
    const cases: [string, { overwrite?: boolean }, string][] = [
      ['', {}, "--out must name a file, got ''"],
      [dir, {}, `--out ${dir} is a folder; name the file to write`],
      [path.join(data, 'x.json'), {}, `--out ${path.join(data, 'x.json')} lies under ${data}, which is a file, not a folder`],
      [data, { overwrite: true }, `--out ${data} is the input --data ${data}: write the result to another file`],
      [data, {}, `--out ${data} is the input --data ${data}`],
    ];
    for (const [p, o, msg] of cases) {
      const e = errorOf(() => checkOutputFile(p, { ...o, inputs: [{ flag: '--data', path: data }] }));
      expect(e).toBeInstanceOf(UsageError);
      expect(e.message).toContain(msg);
    }
    fs.writeFileSync(out, '{}');
    expect(errorOf(() => checkOutputFile(out)).message).toBe(`--out ${out} already exists; give --overwrite to replace it, or choose another --out`);
    expect(checkOutputFile(out, { overwrite: true })).toBe(out);
  });

  test('claimOutputFile: a second writer of one file is refused; temp files of dead writers are removed', () => {
    const dir = fresh();
    fs.mkdirSync(dir);
    const out = path.join(dir, 'dev.json');
    const deadTmp = path.join(dir, `.dev.json.${DEAD_PID}.4.tmp`);
    fs.writeFileSync(deadTmp, '{"half');
    const a = claimOutputFile(out);
    expect(fs.existsSync(deadTmp)).toBe(false);
    const e = errorOf(() => claimOutputFile(out));
    expect(e).toBeInstanceOf(FolderBusyError);
    expect(e.message).toContain(`--out ${out} is being written by another memristor-tfjs process (pid ${process.pid}`);
    a.release();
    claimOutputFile(out).release();
    expect(fs.readdirSync(dir)).toEqual([]);
  });
});
