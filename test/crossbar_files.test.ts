import * as fs from 'fs';
import * as path from 'path';
import {
  CROSSBAR_FORMAT,
  CrossbarArrayData,
  CrossbarManifest,
  MANIFEST_FILE,
  arrayFileNames,
  formatFloat32,
  newCrossbarManifest,
  parseArrayCsv,
  readCrossbarDir,
  writeCrossbarDir,
} from '../src/crossbar/files';
import { getPreset, variedWindow } from '../src/device/config';
import { FileFormatError } from '../src/errors';
import { quantizeToLevels, sampleDeviceInstances, writeVerify } from '../src/programming';
import { SeededRandom } from '../src/random';
import { tempRoot } from './helpers';

const root = tempRoot('xbar');
let dirCount = 0;
const newDir = () => path.join(root, `x${dirCount++}`);

const device = getPreset('yao2020')!;

/** A small crossbar: layer conv1 on two replica arrays 9x4, layer fc on one odd 7x5 array. */
function example(): { manifest: CrossbarManifest; arrays: Map<string, CrossbarArrayData> } {
  const rng = new SeededRandom(12);
  const arrays = new Map<string, CrossbarArrayData>();
  const entry = (id: string, rows: number, cols: number, rowStart: number, colStart: number, replica: number) => {
    const files = arrayFileNames(id);
    const n = rows * cols;
    const targets = quantizeToLevels(new Float32Array(n).map(() => device.gMin + (device.gMax - device.gMin) * rng.next()), device);
    const inst = sampleDeviceInstances(device, n, rng);
    const programmed = writeVerify(targets, device, inst, rng).programmed;
    arrays.set(files.target, { rows, cols, data: targets });
    arrays.set(files.programmed, { rows, cols, data: programmed });
    return { id, rows, cols, rowStart, colStart, scheme: 'differential' as const, weightScale: 0.0123, files, replica };
  };
  const manifest = newCrossbarManifest({
    device,
    network: { layers: [{ name: 'conv1', kind: 'conv2d' }, { name: 'pool', kind: 'maxPool2d', digital: true }, { name: 'fc', kind: 'dense' }] },
    layers: [
      { name: 'conv1', kind: 'conv2d', arrays: [entry('conv1/r0/a0', 9, 4, 0, 0, 0), entry('conv1/r1/a0', 9, 4, 0, 0, 1)], kernel: [3, 3, 1, 2] },
      { name: 'fc', kind: 'dense', arrays: [entry('fc/a0', 7, 5, 0, 0, 0)] },
    ],
  });
  return { manifest, arrays };
}

/** A valid directory written by writeCrossbarDir. */
function validDir(): { dir: string; manifest: CrossbarManifest; arrays: Map<string, CrossbarArrayData> } {
  const dir = newDir();
  const { manifest, arrays } = example();
  writeCrossbarDir(dir, manifest, arrays);
  return { dir, manifest, arrays };
}

function editFile(file: string, edit: (text: string) => string): void {
  fs.writeFileSync(file, edit(fs.readFileSync(file, 'utf8')));
}

function editManifest(dir: string, edit: (m: any) => void): void {
  const f = path.join(dir, MANIFEST_FILE);
  const m = JSON.parse(fs.readFileSync(f, 'utf8'));
  edit(m);
  fs.writeFileSync(f, JSON.stringify(m));
}

/** The FileFormatError readCrossbarDir throws. */
function readError(dir: string): FileFormatError {
  try {
    readCrossbarDir(dir);
  } catch (e) {
    if (e instanceof FileFormatError) return e;
    throw e;
  }
  throw new Error(`${dir} was read without error`);
}

/** Replaces the value at (data row r, column c), both 0-based, of a CSV's text. */
function setValue(text: string, r: number, c: number, value: string): string {
  const lines = text.split('\n');
  let k = -1;
  for (let i = 0; i < lines.length; i++) {
    if (lines[i].startsWith('#') || lines[i] === '') continue;
    if (++k === r) {
      const cells = lines[i].split(',');
      cells[c] = value;
      lines[i] = cells.join(',');
    }
  }
  return lines.join('\n');
}

describe('numbers', () => {
  test('formatFloat32 round trips every float32 exactly, with at most 9 significant digits', () => {
    const rng = new SeededRandom(1);
    const bits = new Uint32Array(200000);
    for (let i = 0; i < bits.length; i++) bits[i] = rng.uint32();
    const f = new Float32Array(bits.buffer);
    let checked = 0;
    for (let i = 0; i < f.length; i++) {
      const x = f[i];
      if (!Number.isFinite(x)) continue;
      const s = formatFloat32(x);
      if (Math.fround(Number(s)) !== x) throw new Error(`${x} -> ${s} does not round trip`);
      if (s.replace(/^-/, '').replace(/e.*$/, '').replace('.', '').replace(/^0+/, '').replace(/0+$/, '').length > 9) throw new Error(`${s}: too many digits`);
      checked++;
    }
    expect(checked).toBeGreaterThan(190000);
    // conductance-like values, edge cases
    const values = new Float32Array([0, -0, 0.1, 1 / 3, 20, 2e-7, 1e-45, 3.4028234663852886e38, 11.285714, 99.99999, 1.17549435e-38]);
    for (const x of values) expect(Math.fround(Number(formatFloat32(x)))).toBe(x === 0 ? 0 : x);
    expect(formatFloat32(20)).toBe('20');
    expect(formatFloat32(0.1)).toBe('0.1');
    expect(formatFloat32(Math.fround(1 / 3))).toBe('0.33333334');
    expect(formatFloat32(2.5714285714285716)).toBe('2.5714285');
    expect(() => formatFloat32(NaN)).toThrow('NaN is not a finite float32');
  });

  test('file names from array ids', () => {
    expect(arrayFileNames('conv1/r0/a3')).toEqual({ target: 'conv1_r0_a3.target.csv', programmed: 'conv1_r0_a3.programmed.csv' });
    expect(arrayFileNames('..x').target).toBe('_x.target.csv');
  });
});

describe('crossbar directory round trip', () => {
  test('write then read gives the same manifest and bit-identical conductances', () => {
    const { dir, manifest, arrays } = validDir();
    const back = readCrossbarDir(dir);
    expect(back.manifest).toEqual(JSON.parse(JSON.stringify(manifest)));
    expect(back.manifest.device).toEqual(device);
    expect(back.manifest.layers[0].kernel).toEqual([3, 3, 1, 2]); // extra fields are kept
    expect([...back.arrays.keys()].sort()).toEqual([...arrays.keys()].sort());
    for (const [name, a] of arrays) {
      const b = back.arrays.get(name)!;
      expect(b.rows).toBe(a.rows);
      expect(b.cols).toBe(a.cols);
      expect(Buffer.from(b.data.buffer).equals(Buffer.from(a.data.buffer))).toBe(true);
    }
    // programmed values spread around the levels (d2d, tolerance), targets sit on the levels
    const prog = back.arrays.get('fc_a0.programmed.csv')!.data;
    const targ = back.arrays.get('fc_a0.target.csv')!.data;
    expect(Array.from(prog)).not.toEqual(Array.from(targ));
    // no temporary files are left
    expect(fs.readdirSync(dir).sort()).toEqual([...arrays.keys(), MANIFEST_FILE].sort());
  });

  test('the CSV is plain: # header lines, then rows x cols numbers', () => {
    const { dir } = validDir();
    const text = fs.readFileSync(path.join(dir, 'fc_a0.programmed.csv'), 'utf8');
    const lines = text.trimEnd().split('\n');
    const header = lines.filter((l) => l.startsWith('#'));
    const data = lines.filter((l) => !l.startsWith('#'));
    expect(header[0]).toBe(`# ${CROSSBAR_FORMAT} version 2`);
    expect(header).toContain('# array: fc/a0');
    expect(header).toContain('# units: microsiemens (uS)');
    expect(header.some((l) => /^# holds: programmed conductances/.test(l))).toBe(true);
    expect(header).toContain('# shape: 7 rows x 5 columns (one line per crossbar row, comma-separated)');
    expect(lines.slice(0, header.length)).toEqual(header); // the header comes first
    expect(data.length).toBe(7);
    for (const l of data) {
      const cells = l.split(',');
      expect(cells.length).toBe(5);
      for (const c of cells) expect(c).toMatch(/^\d+(\.\d+)?(e[+-]\d+)?$/);
    }
    expect(text.endsWith('\n')).toBe(true);
  });

  test('a numpy-style file without a header reads too', () => {
    const { data } = parseArrayCsv('/x/a.csv', '1,2.5\n3e-1,4\n\n', 2, 2);
    expect(Array.from(data.data)).toEqual([1, 2.5, Math.fround(0.3), 4]);
  });

  test('a failed write leaves the previous directory as it was', () => {
    const { dir, manifest, arrays } = validDir();
    const before = fs.readFileSync(path.join(dir, MANIFEST_FILE), 'utf8');
    const bad = new Map(arrays);
    const t = bad.get('fc_a0.target.csv')!;
    bad.set('fc_a0.target.csv', { ...t, data: t.data.slice().fill(NaN, 3, 4) });
    expect(() => writeCrossbarDir(dir, manifest, bad)).toThrow(FileFormatError);
    expect(fs.readFileSync(path.join(dir, MANIFEST_FILE), 'utf8')).toBe(before);
    expect(() => readCrossbarDir(dir)).not.toThrow();
  });
});

describe('writeCrossbarDir refuses what it could not read back', () => {
  test('missing, misshapen, extra and bad data, naming the file', () => {
    const { manifest, arrays } = example();
    const dir = newDir();
    const missing = new Map(arrays);
    missing.delete('fc_a0.programmed.csv');
    expect(() => writeCrossbarDir(dir, manifest, missing)).toThrow(`${path.join(dir, 'fc_a0.programmed.csv')}: array 'fc/a0' (programmed) is named in the manifest but no data was given for it`);
    const shape = new Map(arrays);
    shape.set('fc_a0.target.csv', { rows: 5, cols: 7, data: arrays.get('fc_a0.target.csv')!.data });
    expect(() => writeCrossbarDir(dir, manifest, shape)).toThrow("fc_a0.target.csv: data is 5x7, the manifest says 7x5 for array 'fc/a0'");
    const extra = new Map(arrays);
    extra.set('other.csv', { rows: 1, cols: 1, data: new Float32Array([5]) });
    expect(() => writeCrossbarDir(dir, manifest, extra)).toThrow('other.csv: data given for a file the manifest does not name');
    const out = new Map(arrays);
    out.set('fc_a0.target.csv', { rows: 7, cols: 5, data: new Float32Array(35).fill(25) });
    expect(() => writeCrossbarDir(dir, manifest, out)).toThrow('fc_a0.target.csv: row 1, column 1: 25 uS is outside the device window 2..20 uS');
    expect(() => writeCrossbarDir(dir, { ...manifest, version: 3 }, arrays)).toThrow(`${path.join(dir, MANIFEST_FILE)}: version: format version 3 is newer`);
    expect(fs.existsSync(dir)).toBe(false); // nothing was written
  });
});

describe('readCrossbarDir rejects each kind of bad file, naming it', () => {
  const csvCases: [string, string, (t: string) => string, RegExp][] = [
    ['NaN', 'conv1_r1_a0.programmed.csv', (t) => setValue(t, 2, 1, 'NaN'), /conv1_r1_a0\.programmed\.csv: line 10 \(row 3\), column 2: 'NaN' is not a finite number$/],
    ['Infinity', 'conv1_r0_a0.target.csv', (t) => setValue(t, 0, 0, 'Infinity'), /conv1_r0_a0\.target\.csv: line 8 \(row 1\), column 1: 'Infinity' is not a finite number$/],
    ['text', 'fc_a0.target.csv', (t) => setValue(t, 6, 4, 'abc'), /fc_a0\.target\.csv: line 14 \(row 7\), column 5: 'abc' is not a number$/],
    ['an empty value', 'fc_a0.target.csv', (t) => setValue(t, 1, 2, ''), /fc_a0\.target\.csv: line 9 \(row 2\), column 3: empty value$/],
    ['a float32 overflow', 'fc_a0.target.csv', (t) => setValue(t, 1, 2, '1e39'), /fc_a0\.target\.csv: line 9 \(row 2\), column 3: '1e39' is not a finite float32$/],
    ['a missing row', 'fc_a0.programmed.csv', (t) => t.replace(/\n[^#\n][^\n]*\n$/, '\n'), /fc_a0\.programmed\.csv: 6 rows of values, the manifest says 7 rows$/],
    ['an extra row', 'fc_a0.programmed.csv', (t) => t + '3,3,3,3,3\n3,3,3,3,3\n', /fc_a0\.programmed\.csv: 9 rows of values, the manifest says 7 rows$/],
    ['a missing column', 'conv1_r0_a0.programmed.csv', (t) => t.replace(/\n([^#\n][^\n]*),[^,\n]*\n/, '\n$1\n'), /conv1_r0_a0\.programmed\.csv: line 8 \(row 1\): 3 values, the manifest says 4 columns$/],
    ['an extra column', 'conv1_r0_a0.programmed.csv', (t) => setValue(t, 4, 3, '5,5'), /conv1_r0_a0\.programmed\.csv: line 12 \(row 5\): 5 values, the manifest says 4 columns$/],
    ['a target outside the window', 'fc_a0.target.csv', (t) => setValue(t, 3, 0, '20.5'), /fc_a0\.target\.csv: line 11, row 4, column 1: 20\.5 uS is outside the device window 2\.\.20 uS \(targets lie in the nominal window\)$/],
    ['a negative conductance', 'fc_a0.target.csv', (t) => setValue(t, 3, 0, '-1'), /fc_a0\.target\.csv: line 11, row 4, column 1: -1 uS is outside the device window/],
    ['a programmed value outside the varied window', 'fc_a0.programmed.csv', (t) => setValue(t, 0, 4, '24.5'), /fc_a0\.programmed\.csv: line 8, row 1, column 5: 24\.5 uS is outside the window of the varied device 1\.3406401\.\.24\.428055 uS/],
    ['the header of another array', 'fc_a0.programmed.csv', (t) => t.replace('# array: fc/a0', '# array: conv1/r0/a0'), /fc_a0\.programmed\.csv: line 2: holds array 'conv1\/r0\/a0', the manifest expects 'fc\/a0' here$/],
  ];
  test.each(csvCases)('%s', (_label, file, edit, message) => {
    const { dir } = validDir();
    editFile(path.join(dir, file), edit);
    const e = readError(dir);
    expect(e.message).toMatch(message);
    expect(e.file).toBe(path.join(dir, file));
  });

  test('a programmed value above gMax but inside the varied window is accepted (a cell with a low R_ON)', () => {
    const { dir } = validDir();
    editFile(path.join(dir, 'fc_a0.programmed.csv'), (t) => setValue(t, 0, 4, '24.4'));
    expect(readCrossbarDir(dir).arrays.get('fc_a0.programmed.csv')!.data[4]).toBe(Math.fround(24.4));
    expect(variedWindow(device).hi).toBeCloseTo(24.428, 3);
  });

  test('a missing CSV', () => {
    const { dir } = validDir();
    fs.rmSync(path.join(dir, 'conv1_r1_a0.target.csv'));
    expect(readError(dir).message).toBe(`${path.join(dir, 'conv1_r1_a0.target.csv')}: missing (the target conductances of array 'conv1/r1/a0' named in manifest.json)`);
  });

  const manifestCases: [string, (m: any) => void, string][] = [
    ['a newer version', (m) => (m.version = 3), 'version: format version 3 is newer than this memristor-tfjs reads (up to 2); update memristor-tfjs to read it'],
    ['version 0', (m) => (m.version = 0), 'version: format version 0 does not exist (versions start at 1)'],
    ['a version string', (m) => (m.version = '1'), 'version: must be an integer, got "1"'],
    ['no version', (m) => delete m.version, 'version: missing'],
    ['another format', (m) => (m.format = 'memtorch'), `format: expected '${CROSSBAR_FORMAT}', got "memtorch"`],
    ['no format', (m) => delete m.format, `format: missing: not a ${CROSSBAR_FORMAT} manifest`],
    ['a bad date', (m) => (m.created = 'yesterday'), 'created: must be an ISO date string, got "yesterday"'],
    ['no device', (m) => delete m.device, 'device: missing (the device config)'],
    ['a bad device field', (m) => (m.device.writeVerify.tolerance = 1.5), 'device.writeVerify.tolerance: must be in [0, 1), got 1.5'],
    ['no network', (m) => delete m.network, 'network: missing (the network structure; null if none)'],
    ['layers not an array', (m) => (m.layers = {}), 'layers: must be an array, got {}'],
    ['a layer without arrays', (m) => delete m.layers[1].arrays, 'layers[1].arrays: missing'],
    ['a duplicate layer', (m) => (m.layers[1].name = 'conv1'), "layers[1].name: duplicate layer name 'conv1'"],
    ['a duplicate array id', (m) => (m.layers[1].arrays[0].id = 'conv1/r0/a0'), "layers[1].arrays[0].id: duplicate array id 'conv1/r0/a0'"],
    ['zero rows', (m) => (m.layers[0].arrays[1].rows = 0), 'layers[0].arrays[1].rows: must be an integer >= 1, got 0'],
    ['a negative colStart', (m) => (m.layers[0].arrays[0].colStart = -1), 'layers[0].arrays[0].colStart: must be an integer >= 0, got -1'],
    ['an unknown scheme', (m) => (m.layers[0].arrays[0].scheme = 'quad'), 'layers[0].arrays[0].scheme: must be one of differential, reference, got "quad"'],
    ['a zero weight scale', (m) => (m.layers[0].arrays[0].weightScale = 0), 'layers[0].arrays[0].weightScale: must be a finite number > 0, got 0'],
    ['a file outside the directory', (m) => (m.layers[0].arrays[0].files.target = '../x.csv'), `layers[0].arrays[0].files.target: must be a plain .csv file name inside the directory (letters, digits, '.', '_', '-'), got "../x.csv"`],
    ['a file named twice', (m) => (m.layers[1].arrays[0].files.target = m.layers[0].arrays[0].files.target), "layers[1].arrays[0].files.target: file 'conv1_r0_a0.target.csv' is named twice in the manifest"],
    ['no replica', (m) => delete m.layers[0].arrays[0].replica, 'layers[0].arrays[0].replica: missing'],
    ['rows that disagree with the file', (m) => (m.layers[1].arrays[0].rows = 8), 'fc_a0.target.csv: 7 rows of values, the manifest says 8 rows'],
  ];
  test.each(manifestCases)('manifest with %s', (_label, edit, problem) => {
    const { dir } = validDir();
    editManifest(dir, edit);
    const e = readError(dir);
    if (problem.startsWith('fc_a0')) expect(e.message).toBe(`${path.join(dir, problem.split(':')[0])}:${problem.slice(problem.indexOf(':') + 1)}`);
    else expect(e.message).toBe(`${path.join(dir, MANIFEST_FILE)}: ${problem}`);
  });

  test('bad JSON, no manifest, no directory', () => {
    const { dir } = validDir();
    const mf = path.join(dir, MANIFEST_FILE);
    fs.writeFileSync(mf, '{"format": "memristor-tfjs-crossbar", "version": 1,');
    expect(readError(dir).message).toMatch(new RegExp(`^${mf}: not valid JSON \\(`));
    fs.writeFileSync(mf, '[1]');
    expect(readError(dir).message).toBe(`${mf}: must hold a JSON object (a crossbar manifest), got [1]`);
    fs.rmSync(mf);
    expect(readError(dir).message).toBe(`${mf}: missing: not a crossbar directory (or one whose writing did not finish)`);
    const none = path.join(root, 'nothing-here');
    expect(readError(none).message).toBe(`${none}: no such crossbar directory`);
    const file = path.join(dir, 'fc_a0.target.csv');
    expect(readError(file).message).toMatch(/fc_a0\.target\.csv: not a directory/);
  });
});
