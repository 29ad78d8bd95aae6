// The conductance file format: a crossbar directory (XDIR) a lab script can read in any language.
//
//   XDIR/manifest.json   {
//     format: 'memristor-tfjs-crossbar', version: 2, created: ISO date,
//     device: the full DeviceConfig (validated as such),
//     network: any JSON (the layer graph with the digital parts, filled by the mapper),
//     layers: [{ name, kind, arrays: [{ id, rows, cols, rowStart, colStart, scheme, weightScale,
//                                       files: { target, programmed }, replica }, ...], ... }, ...]
//   }
//   XDIR/<array>.target.csv, XDIR/<array>.programmed.csv   one per array and kind:
//     '#' comment lines (format, array id, layer, what the file holds, shape, units), then `rows`
//     lines of `cols` comma-separated conductances in microsiemens. numpy.loadtxt(f, delimiter=',')
//     reads it as it is (it skips '#' lines), and so does a spreadsheet or any CSV reader.
//
// Values are written with the fewest significant digits (at most 9) that give back the same
// float32, so write -> read round trips every Float32Array exactly.
//
// Reading validates everything and names the file (its path, so the basename is in the message)
// with the problem: manifest present and JSON, format name, version (newer refused: update
// memristor-tfjs; older than the first version refused), required fields and their types, unique
// array ids and file names, every CSV present, its row and column counts against the manifest,
// every value a finite number, and every value inside the device window:
//   target files: the nominal window [gMin, gMax] (mapping targets never leave it);
//   programmed files: the window of the varied device, variedWindow(device) =
//     [gMin e^{-4 rOffSigma}, gMax e^{+4 rOnSigma}] (per-cell R_ON / R_OFF are lognormal, truncated
//     at 4 sigma, and no pulse, stuck cell or drift takes a cell outside its own window),
//   each with a relative slack of 1e-6 for float32 rounding.
// Fields not listed above are kept as they are and not checked (room for the mapper's extras).
// Writing checks the same things first and writes the CSVs, then manifest.json last, every file
// atomically; an existing manifest.json is removed first, so a crash in between leaves a
// directory without a manifest (refused) rather than an old manifest over new CSVs.
import * as fs from 'fs';
import * as path from 'path';
import { FileFormatError } from '../errors';
import { writeFileAtomic, writeJsonAtomic } from '../atomic';
import type { DeviceConfig } from '../device/config';
import { validateDeviceConfig, variedWindow } from '../device/config';
import { readTextFile } from '../input_files';

export const CROSSBAR_FORMAT = 'memristor-tfjs-crossbar';
/**
 * The version this code writes and the newest it reads. Version 2 (graph models): the network's
 * steps with their inputs and roles, BatchNormalization folded into a mapped layer's weights
 * (`foldedBatchNorm`), ReLUs absorbed into its neuron (`absorbed`), separable convs as two mapped
 * parts. A version-1 folder (chain models, nothing folded) reads as it was written.
 */
export const CROSSBAR_FORMAT_VERSION = 2;
export const MANIFEST_FILE = 'manifest.json';
/** Mapping schemes an array may use (add a new one here when the mapper gets it). */
export const MAPPING_SCHEMES = ['differential', 'reference'] as const;
export type MappingScheme = (typeof MAPPING_SCHEMES)[number];
/** Most cells one array file may declare (2^26, 256 MB as float32): larger is refused before allocation. */
export const MAX_ARRAY_CELLS = 1 << 26;
/** Relative slack of the window checks (float32 rounding of values at the window's edge). */
export const WINDOW_SLACK = 1e-6;

/** One physical array of a layer. */
export interface CrossbarArrayEntry {
  /** Unique in the manifest (e.g. 'conv1/r0/a3'). No line breaks. */
  id: string;
  /** Physical crossbar rows and columns of the cells the files hold. */
  rows: number;
  cols: number;
  /**
   * Where the array's first cell sits: row `rowStart` of the layer's weight matrix (= of its
   * conductance matrix), and column `colStart` of the layer's CONDUCTANCE matrix, which has
   * devicesPerWeight columns per output (differential: 2, output j in columns 2j and 2j + 1).
   */
  rowStart: number;
  colStart: number;
  /** How weights became conductances ('differential': G+ - G- pairs in columns 2k, 2k+1; 'reference': G - G_ref of the row's reference cell, the array's last column). See FORMAT.md. */
  scheme: MappingScheme;
  /** Weight units per uS of conductance difference: w = weightScale (G+ - G-). > 0. */
  weightScale: number;
  /** CSV file names inside the directory (plain names, no folders). */
  files: { target: string; programmed: string };
  /** Replica group (spatial parallelism, Yao et al.): 0 for the first copy of a layer's weights. */
  replica: number;
  [extra: string]: unknown;
}

export interface CrossbarLayerEntry {
  /** The layer's name in the network (unique). */
  name: string;
  /** Its kind, e.g. 'conv2d', 'dense'. */
  kind: string;
  arrays: CrossbarArrayEntry[];
  [extra: string]: unknown;
}

export interface CrossbarManifest {
  format: typeof CROSSBAR_FORMAT;
  version: number;
  /** ISO 8601 time of writing. */
  created: string;
  device: DeviceConfig;
  /** The network structure with its digital parts: opaque to this module, any JSON but undefined. */
  network: unknown;
  layers: CrossbarLayerEntry[];
  [extra: string]: unknown;
}

/** The conductances of one CSV file: rows x cols, row-major, uS. */
export interface CrossbarArrayData {
  rows: number;
  cols: number;
  data: Float32Array;
}

/** A manifest with format, version and creation time filled in. */
export function newCrossbarManifest(parts: { device: DeviceConfig; network: unknown; layers: CrossbarLayerEntry[] }): CrossbarManifest {
  return {
    format: CROSSBAR_FORMAT,
    version: CROSSBAR_FORMAT_VERSION,
    created: new Date().toISOString(),
    device: parts.device,
    network: parts.network,
    layers: parts.layers,
  };
}

/** Plain file names for an array id: characters other than letters, digits, '.', '_', '-' become '_'. */
export function arrayFileNames(id: string): { target: string; programmed: string } {
  const base = id.replace(/[^A-Za-z0-9._-]/g, '_').replace(/^\.+/, '_');
  return { target: `${base}.target.csv`, programmed: `${base}.programmed.csv` };
}

// ---------------------------------------------------------------------------------------------
// Numbers

/**
 * The shortest decimal (at most 9 significant digits) that reads back as the same float32:
 * Math.fround(Number(formatFloat32(x))) === Math.fround(x) for every finite x.
 */
export function formatFloat32(x: number): string {
  const f = Math.fround(x);
  if (!Number.isFinite(f)) throw new RangeError(`${x} is not a finite float32`);
  for (let p = 1; p < 9; p++) {
    const n = Number(f.toPrecision(p));
    if (Math.fround(n) === f) return String(n);
  }
  return String(Number(f.toPrecision(9)));
}

const NUMBER_RE = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;

// ---------------------------------------------------------------------------------------------
// Manifest validation

type Obj = Record<string, unknown>;

function show(v: unknown): string {
  const s = v === undefined ? 'nothing' : JSON.stringify(v) ?? String(v);
  return s.length > 60 ? s.slice(0, 57) + '...' : s;
}

function isObj(v: unknown): v is Obj {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

class ManifestChecker {
  constructor(readonly file: string) {}
  fail(field: string, problem: string): never {
    throw new FileFormatError(this.file, field ? `${field}: ${problem}` : problem);
  }
  object(v: unknown, field: string): Obj {
    if (v === undefined) this.fail(field, 'missing');
    if (!isObj(v)) this.fail(field, `must be an object, got ${show(v)}`);
    return v;
  }
  string(o: Obj, key: string, field: string): string {
    const f = `${field}.${key}`;
    const v = o[key];
    if (v === undefined) this.fail(f, 'missing');
    if (typeof v !== 'string' || v.trim() === '') this.fail(f, `must be a non-empty string, got ${show(v)}`);
    return v;
  }
  int(o: Obj, key: string, field: string, min: number): number {
    const f = `${field}.${key}`;
    const v = o[key];
    if (v === undefined) this.fail(f, 'missing');
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > 1e9) this.fail(f, `must be an integer >= ${min}, got ${show(v)}`);
    return v;
  }
}

function checkFileName(c: ManifestChecker, v: unknown, field: string): string {
  if (v === undefined) c.fail(field, 'missing');
  if (typeof v !== 'string' || !/^[A-Za-z0-9_-][A-Za-z0-9._-]*\.csv$/.test(v)) {
    c.fail(field, `must be a plain .csv file name inside the directory (letters, digits, '.', '_', '-'), got ${show(v)}`);
  }
  return v;
}

/**
 * Checks a manifest object (what manifest.json holds) and returns it typed. `file` names the
 * manifest in errors. Older versions would be converted here; there is none before version 1.
 */
export function validateCrossbarManifest(raw: unknown, file: string): CrossbarManifest {
  const c: ManifestChecker = new ManifestChecker(file);
  if (!isObj(raw)) c.fail('', `must hold a JSON object (a crossbar manifest), got ${show(raw)}`);
  const m = raw;
  if (m.format !== CROSSBAR_FORMAT) {
    c.fail('format', m.format === undefined ? `missing: not a ${CROSSBAR_FORMAT} manifest` : `expected '${CROSSBAR_FORMAT}', got ${show(m.format)}`);
  }
  const version = m.version;
  if (version === undefined) c.fail('version', 'missing');
  if (typeof version !== 'number' || !Number.isInteger(version)) c.fail('version', `must be an integer, got ${show(version)}`);
  if (version > CROSSBAR_FORMAT_VERSION) {
    c.fail('version', `format version ${version} is newer than this memristor-tfjs reads (up to ${CROSSBAR_FORMAT_VERSION}); update memristor-tfjs to read it`);
  }
  if (version < 1) c.fail('version', `format version ${version} does not exist (versions start at 1)`);
  // Version 1 holds the same fields; what it lacks (folding, absorbed layers) means none (loadCrossbar).

  const created = m.created;
  if (typeof created !== 'string' || Number.isNaN(Date.parse(created))) {
    c.fail('created', created === undefined ? 'missing' : `must be an ISO date string, got ${show(created)}`);
  }
  if (m.device === undefined) c.fail('device', 'missing (the device config)');
  const device = validateDeviceConfig(m.device, file, 'device.');
  if (!('network' in m) || m.network === undefined) c.fail('network', 'missing (the network structure; null if none)');
  if (!Array.isArray(m.layers)) c.fail('layers', m.layers === undefined ? 'missing' : `must be an array, got ${show(m.layers)}`);

  const layerNames = new Set<string>();
  const ids = new Set<string>();
  const fileNames = new Set<string>();
  const layers: CrossbarLayerEntry[] = (m.layers as unknown[]).map((l, li) => {
    const lf = `layers[${li}]`;
    const lo = c.object(l, lf);
    const name = c.string(lo, 'name', lf);
    if (layerNames.has(name)) c.fail(`${lf}.name`, `duplicate layer name '${name}'`);
    layerNames.add(name);
    const kind = c.string(lo, 'kind', lf);
    if (!Array.isArray(lo.arrays)) c.fail(`${lf}.arrays`, lo.arrays === undefined ? 'missing' : `must be an array, got ${show(lo.arrays)}`);
    const arrays: CrossbarArrayEntry[] = (lo.arrays as unknown[]).map((a, ai) => {
      const af = `${lf}.arrays[${ai}]`;
      const ao = c.object(a, af);
      const id = c.string(ao, 'id', af);
      if (/[\r\n]/.test(id)) c.fail(`${af}.id`, 'must not hold a line break');
      if (ids.has(id)) c.fail(`${af}.id`, `duplicate array id '${id}'`);
      ids.add(id);
      const rows = c.int(ao, 'rows', af, 1);
      const cols = c.int(ao, 'cols', af, 1);
      if (rows * cols > MAX_ARRAY_CELLS) c.fail(`${af}.rows`, `${rows}x${cols} cells, more than the ${MAX_ARRAY_CELLS} an array may hold`);
      const rowStart = c.int(ao, 'rowStart', af, 0);
      const colStart = c.int(ao, 'colStart', af, 0);
      const scheme = ao.scheme;
      if (typeof scheme !== 'string' || !(MAPPING_SCHEMES as readonly string[]).includes(scheme)) {
        c.fail(`${af}.scheme`, scheme === undefined ? `missing (one of ${MAPPING_SCHEMES.join(', ')})` : `must be one of ${MAPPING_SCHEMES.join(', ')}, got ${show(scheme)}`);
      }
      const ws = ao.weightScale;
      if (typeof ws !== 'number' || !Number.isFinite(ws) || ws <= 0) {
        c.fail(`${af}.weightScale`, ws === undefined ? 'missing' : `must be a finite number > 0, got ${show(ws)}`);
      }
      const fo = c.object(ao.files, `${af}.files`);
      const target = checkFileName(c, fo.target, `${af}.files.target`);
      const programmed = checkFileName(c, fo.programmed, `${af}.files.programmed`);
      for (const [fn, key] of [[target, 'target'], [programmed, 'programmed']] as const) {
        if (fileNames.has(fn)) c.fail(`${af}.files.${key}`, `file '${fn}' is named twice in the manifest`);
        fileNames.add(fn);
      }
      const replica = c.int(ao, 'replica', af, 0);
      return { ...ao, id, rows, cols, rowStart, colStart, scheme: scheme as MappingScheme, weightScale: ws as number, files: { target, programmed }, replica };
    });
    return { ...lo, name, kind, arrays };
  });

  return { ...m, format: CROSSBAR_FORMAT, version: version as number, created: created as string, device, network: m.network, layers };
}

// ---------------------------------------------------------------------------------------------
// CSV

type FileKind = 'target' | 'programmed';

function windowFor(device: DeviceConfig, kind: FileKind): { lo: number; hi: number; what: string } {
  if (kind === 'target') {
    return { lo: device.gMin, hi: device.gMax, what: `the device window ${device.gMin}..${device.gMax} uS (targets lie in the nominal window)` };
  }
  const w = variedWindow(device);
  return {
    lo: w.lo,
    hi: w.hi,
    what:
      `the window of the varied device ${formatFloat32(w.lo)}..${formatFloat32(w.hi)} uS ` +
      `(gMin e^-4 rOffSigma .. gMax e^4 rOnSigma)`,
  };
}

/** Checks values against the window: throws FileFormatError(file, ...) at the first bad value. */
function checkValues(file: string, d: CrossbarArrayData, device: DeviceConfig, kind: FileKind, lineOf?: (row: number) => number): void {
  const { lo, hi, what } = windowFor(device, kind);
  const loS = lo - WINDOW_SLACK * Math.abs(hi);
  const hiS = hi + WINDOW_SLACK * Math.abs(hi);
  for (let r = 0; r < d.rows; r++) {
    for (let col = 0; col < d.cols; col++) {
      const v = d.data[r * d.cols + col];
      const where = `${lineOf ? `line ${lineOf(r)}, ` : ''}row ${r + 1}, column ${col + 1}`;
      if (!Number.isFinite(v)) throw new FileFormatError(file, `${where}: ${v} is not a finite number`);
      if (v < loS || v > hiS) throw new FileFormatError(file, `${where}: ${formatFloat32(v)} uS is outside ${what}`);
    }
  }
}

function csvText(entry: CrossbarArrayEntry, layer: string, kind: FileKind, d: CrossbarArrayData): string {
  const holds =
    kind === 'target'
      ? 'target conductances (what write-verify programs towards)'
      : 'programmed conductances (the cells after write-verify, without read noise)';
  const conventions =
    entry.scheme === 'differential'
      ? `columns 2k and 2k+1 are G+ and G- of one weight: w = weightScale (G+ - G-), weightScale ${entry.weightScale} (see FORMAT.md)`
      : `the last column holds each row's reference cell G_ref: w = weightScale (G - G_ref of its row), weightScale ${entry.weightScale} (see FORMAT.md)`;
  const lines = [
    `# ${CROSSBAR_FORMAT} version ${CROSSBAR_FORMAT_VERSION}`,
    `# array: ${entry.id}`,
    `# layer: ${layer}, replica ${entry.replica}, scheme ${entry.scheme}; first cell at row ${entry.rowStart} of the layer's weight matrix and column ${entry.colStart} of its conductance matrix (${entry.scheme === 'differential' ? 2 : 1} columns per output)`,
    `# ${conventions}`,
    `# holds: ${holds}`,
    `# shape: ${d.rows} rows x ${d.cols} columns (one line per crossbar row, comma-separated)`,
    `# units: microsiemens (uS)`,
  ];
  const row = new Array<string>(d.cols);
  for (let r = 0; r < d.rows; r++) {
    for (let col = 0; col < d.cols; col++) row[col] = formatFloat32(d.data[r * d.cols + col]);
    lines.push(row.join(','));
  }
  return lines.join('\n') + '\n';
}

/**
 * Parses one array CSV against the shape the manifest gives. Blank lines and '#' lines are
 * skipped (as numpy.loadtxt does); a '# array: ID' line, where present, must name `expectedId`.
 */
export function parseArrayCsv(
  file: string,
  text: string,
  rows: number,
  cols: number,
  expectedId?: string,
): { data: CrossbarArrayData; lineOf: (row: number) => number } {
  if (rows * cols > MAX_ARRAY_CELLS) throw new FileFormatError(file, `${rows}x${cols} cells declared, more than the ${MAX_ARRAY_CELLS} an array may hold`);
  // Every value takes at least two characters (a digit and a separator): check before allocating.
  if (text.length < 2 * rows * cols) {
    throw new FileFormatError(file, `holds ${text.length} characters, too few for the ${rows}x${cols} values the manifest declares (a truncated file?)`);
  }
  // A file cut mid-number would otherwise read its last value as a shorter number.
  if (!text.endsWith('\n')) {
    const last = text.split(/\r?\n/).length;
    throw new FileFormatError(file, `line ${last}: the file ends without a newline, so its last row may be cut short (a truncated file?)`);
  }
  const data = new Float32Array(rows * cols);
  const lineNumbers: number[] = [];
  const lines = text.split(/\r?\n/);
  let r = 0;
  for (let ln = 0; ln < lines.length; ln++) {
    const line = lines[ln].trim();
    if (line === '') continue;
    if (line.startsWith('#')) {
      const m = /^#\s*array:\s*(.*)$/.exec(line);
      if (m && expectedId !== undefined && m[1].trim() !== expectedId) {
        throw new FileFormatError(file, `line ${ln + 1}: holds array '${m[1].trim()}', the manifest expects '${expectedId}' here`);
      }
      continue;
    }
    if (r >= rows) {
      const more = lines.slice(ln).filter((l) => l.trim() !== '' && !l.trim().startsWith('#')).length;
      throw new FileFormatError(file, `${rows + more} rows of values, the manifest says ${rows} rows`);
    }
    const cells = line.split(',');
    if (cells.length !== cols) {
      throw new FileFormatError(file, `line ${ln + 1} (row ${r + 1}): ${cells.length} values, the manifest says ${cols} columns`);
    }
    for (let col = 0; col < cols; col++) {
      const s = cells[col].trim();
      const where = `line ${ln + 1} (row ${r + 1}), column ${col + 1}`;
      if (s === '') throw new FileFormatError(file, `${where}: empty value`);
      if (!NUMBER_RE.test(s)) {
        const problem = /^[+-]?(nan|inf|infinity)$/i.test(s) ? 'is not a finite number' : 'is not a number';
        throw new FileFormatError(file, `${where}: '${s.length > 30 ? s.slice(0, 27) + '...' : s}' ${problem}`);
      }
      const v = Number(s);
      if (!Number.isFinite(Math.fround(v))) throw new FileFormatError(file, `${where}: '${s}' is not a finite float32`);
      data[r * cols + col] = v;
    }
    lineNumbers.push(ln + 1);
    r++;
  }
  if (r < rows) throw new FileFormatError(file, `${r} rows of values, the manifest says ${rows} rows`);
  return { data: { rows, cols, data }, lineOf: (row) => lineNumbers[row] };
}

// ---------------------------------------------------------------------------------------------
// Directory

/**
 * Writes a crossbar directory: every CSV the manifest names (from `arrays`, keyed by file name),
 * then manifest.json, each atomically. The manifest and the data are checked as readCrossbarDir
 * checks them (a directory this writes always reads back), and every array must be given, with
 * the manifest's shape, and nothing more. Returns the paths written.
 */
export function writeCrossbarDir(dir: string, manifest: CrossbarManifest, arrays: ReadonlyMap<string, CrossbarArrayData>): string[] {
  const manifestPath = path.join(dir, MANIFEST_FILE);
  const m = validateCrossbarManifest(JSON.parse(JSON.stringify(manifest)), manifestPath);
  const jobs: { file: string; text: string }[] = [];
  const named = new Set<string>();
  for (const layer of m.layers) {
    for (const entry of layer.arrays) {
      for (const kind of ['target', 'programmed'] as const) {
        const name = entry.files[kind];
        named.add(name);
        const file = path.join(dir, name);
        const d = arrays.get(name);
        if (!d) throw new FileFormatError(file, `array '${entry.id}' (${kind}) is named in the manifest but no data was given for it`);
        if (d.rows !== entry.rows || d.cols !== entry.cols) {
          throw new FileFormatError(file, `data is ${d.rows}x${d.cols}, the manifest says ${entry.rows}x${entry.cols} for array '${entry.id}'`);
        }
        if (d.data.length !== d.rows * d.cols) throw new FileFormatError(file, `data has ${d.data.length} values, ${d.rows}x${d.cols} needs ${d.rows * d.cols}`);
        checkValues(file, d, m.device, kind);
        jobs.push({ file, text: csvText(entry, layer.name, kind, d) });
      }
    }
  }
  for (const name of arrays.keys()) {
    if (!named.has(name)) throw new FileFormatError(path.join(dir, name), 'data given for a file the manifest does not name');
  }
  fs.mkdirSync(dir, { recursive: true });
  fs.rmSync(manifestPath, { force: true });
  for (const j of jobs) writeFileAtomic(j.file, j.text);
  writeJsonAtomic(manifestPath, m);
  return [...jobs.map((j) => j.file), manifestPath];
}

/**
 * Reads and validates a crossbar directory (see the top of this file for what is checked). Every
 * problem is a FileFormatError naming the file (directory, manifest.json or the CSV) and what is
 * wrong, with line, row and column where there is one. `arrays` is keyed by file name.
 */
export function readCrossbarDir(dir: string): { manifest: CrossbarManifest; arrays: Map<string, CrossbarArrayData> } {
  let st: fs.Stats;
  try {
    st = fs.statSync(dir);
  } catch {
    throw new FileFormatError(dir, 'no such crossbar directory');
  }
  if (!st.isDirectory()) throw new FileFormatError(dir, 'not a directory (a crossbar directory holds manifest.json and array CSVs)');
  const manifestPath = path.join(dir, MANIFEST_FILE);
  let text: string;
  try {
    text = fs.readFileSync(manifestPath, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new FileFormatError(manifestPath, code === 'ENOENT' ? 'missing: not a crossbar directory (or one whose writing did not finish)' : `cannot be read (${code})`);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new FileFormatError(manifestPath, `not valid JSON (${(e as Error).message})`);
  }
  const manifest = validateCrossbarManifest(raw, manifestPath);
  const arrays = new Map<string, CrossbarArrayData>();
  for (const layer of manifest.layers) {
    for (const entry of layer.arrays) {
      for (const kind of ['target', 'programmed'] as const) {
        const name = entry.files[kind];
        const file = path.join(dir, name);
        const csv = readTextFile(file, `missing (the ${kind} conductances of array '${entry.id}' named in ${MANIFEST_FILE})`);
        const { data, lineOf } = parseArrayCsv(file, csv, entry.rows, entry.cols, entry.id);
        checkValues(file, data, manifest.device, kind, lineOf);
        arrays.set(name, data);
      }
    }
  }
  return { manifest, arrays };
}
