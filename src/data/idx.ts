// IDX files (the MNIST container format), read straight into typed arrays. Big datasets are read
// whole with one readFileSync; uint8 data is returned as a view on that buffer (no copy), which is
// what makes a full MNIST load take a fraction of a second.
//
// Layout: 2 zero bytes, a type code, the number of dims (1..4), then each dim as a big-endian
// uint32, then the data, big-endian for multi-byte types. The file may be gzipped (detected by the
// 0x1f 0x8b magic, whatever its name).
import * as fs from 'fs';
import * as zlib from 'zlib';
import { FileFormatError, UsageError } from '../errors';
import { writeFileAtomic } from '../atomic';

export type IdxType = 'uint8' | 'int8' | 'int16' | 'int32' | 'float32' | 'float64';
export type IdxData = Uint8Array | Int8Array | Int16Array | Int32Array | Float32Array | Float64Array;

export interface IdxArray {
  dims: number[];
  type: IdxType;
  data: IdxData;
}

const TYPE_BY_CODE: Record<number, IdxType> = {
  0x08: 'uint8',
  0x09: 'int8',
  0x0b: 'int16',
  0x0c: 'int32',
  0x0d: 'float32',
  0x0e: 'float64',
};
const CODE_BY_TYPE: Record<IdxType, number> = {
  uint8: 0x08,
  int8: 0x09,
  int16: 0x0b,
  int32: 0x0c,
  float32: 0x0d,
  float64: 0x0e,
};
const ELEMENT_SIZE: Record<IdxType, number> = {
  uint8: 1,
  int8: 1,
  int16: 2,
  int32: 4,
  float32: 4,
  float64: 8,
};

/** Node's fs error message without the trailing ", open '/the/path'" (the file is named already). */
export function shortFsError(e: unknown): string {
  // Duck-typed: under jest, fs errors come from another realm and fail `instanceof Error`.
  const msg = typeof e === 'object' && e !== null && 'message' in e ? String(e.message) : String(e);
  return msg.replace(/, \w+ '.*'$/, '');
}

/** Reads a whole file as bytes; a failure becomes a one-line FileFormatError naming the file. */
export function readBytes(file: string): Uint8Array {
  try {
    return fs.readFileSync(file);
  } catch (e) {
    throw new FileFormatError(file, `cannot read: ${shortFsError(e)}`);
  }
}

function isGzip(bytes: Uint8Array): boolean {
  return bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b;
}

/** Reads an IDX file (raw or gzipped) into a typed array of its element type. */
export function readIdx(file: string): IdxArray {
  let bytes = readBytes(file);
  if (isGzip(bytes)) {
    try {
      bytes = zlib.gunzipSync(bytes);
    } catch (e) {
      throw new FileFormatError(file, `corrupt gzip stream: ${shortFsError(e)}`);
    }
  }
  return parseIdx(file, bytes);
}

/** Parses IDX bytes (already decompressed); `file` only names the source in errors. */
export function parseIdx(file: string, bytes: Uint8Array): IdxArray {
  if (bytes.length < 4) {
    throw new FileFormatError(file, `not an IDX file: ${bytes.length} bytes, too short for the 4-byte magic`);
  }
  const magic = Array.from(bytes.subarray(0, 4), (b) => b.toString(16).padStart(2, '0')).join(' ');
  const type = TYPE_BY_CODE[bytes[2]];
  const ndims = bytes[3];
  if (bytes[0] !== 0 || bytes[1] !== 0 || type === undefined || ndims < 1 || ndims > 4) {
    throw new FileFormatError(
      file,
      `not an IDX file: bad magic ${magic} (expected 00 00, a type code 08/09/0b/0c/0d/0e, 1..4 dims)`,
    );
  }
  const headerBytes = 4 + 4 * ndims;
  if (bytes.length < headerBytes) {
    throw new FileFormatError(
      file,
      `truncated header: ${ndims} dims need ${headerBytes} header bytes, file holds ${bytes.length}`,
    );
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const dims: number[] = [];
  for (let i = 0; i < ndims; i++) dims.push(view.getUint32(4 + 4 * i, false));
  const count = dims.reduce((a, b) => a * b, 1);
  const size = ELEMENT_SIZE[type];
  const expected = count * size;
  const actual = bytes.length - headerBytes;
  if (actual !== expected) {
    const what = actual < expected ? 'truncated' : 'trailing bytes';
    throw new FileFormatError(
      file,
      `${what}: header says ${dims.join('x')} ${type} = ${expected} data bytes, file holds ${actual}`,
    );
  }
  return { dims, type, data: decode(type, bytes, view, headerBytes, count) };
}

function decode(type: IdxType, bytes: Uint8Array, view: DataView, off: number, n: number): IdxData {
  switch (type) {
    case 'uint8':
      // A view, not a copy: the buffer holds nothing else worth freeing (16 header bytes).
      return new Uint8Array(bytes.buffer, bytes.byteOffset + off, n);
    case 'int8':
      return new Int8Array(bytes.buffer, bytes.byteOffset + off, n);
    case 'int16': {
      const out = new Int16Array(n);
      for (let i = 0; i < n; i++) out[i] = view.getInt16(off + 2 * i, false);
      return out;
    }
    case 'int32': {
      const out = new Int32Array(n);
      for (let i = 0; i < n; i++) out[i] = view.getInt32(off + 4 * i, false);
      return out;
    }
    case 'float32': {
      const out = new Float32Array(n);
      for (let i = 0; i < n; i++) out[i] = view.getFloat32(off + 4 * i, false);
      return out;
    }
    case 'float64': {
      const out = new Float64Array(n);
      for (let i = 0; i < n; i++) out[i] = view.getFloat64(off + 8 * i, false);
      return out;
    }
  }
}

/** Encodes an IDX file in memory (big-endian). Values are converted to `type` as a typed array would. */
export function encodeIdx(dims: number[], type: IdxType, data: ArrayLike<number>): Uint8Array {
  if (!(type in CODE_BY_TYPE)) {
    throw new UsageError(`IDX type must be one of ${Object.keys(CODE_BY_TYPE).join(', ')}, got ${String(type)}`);
  }
  if (dims.length < 1 || dims.length > 4) {
    throw new UsageError(`IDX needs 1..4 dims, got ${dims.length}`);
  }
  for (const d of dims) {
    if (!Number.isInteger(d) || d < 0 || d > 0xffffffff) {
      throw new UsageError(`IDX dims must be integers in 0..2^32-1, got [${dims.join(', ')}]`);
    }
  }
  const count = dims.reduce((a, b) => a * b, 1);
  if (data.length !== count) {
    throw new UsageError(`IDX data has ${data.length} values, dims ${dims.join('x')} need ${count}`);
  }
  const size = ELEMENT_SIZE[type];
  const header = 4 + 4 * dims.length;
  const out = new Uint8Array(header + count * size);
  const view = new DataView(out.buffer);
  out[2] = CODE_BY_TYPE[type];
  out[3] = dims.length;
  dims.forEach((d, i) => view.setUint32(4 + 4 * i, d, false));
  switch (type) {
    case 'uint8':
      out.set(Uint8Array.from(data), header);
      break;
    case 'int8':
      out.set(new Uint8Array(Int8Array.from(data).buffer), header);
      break;
    case 'int16':
      for (let i = 0; i < count; i++) view.setInt16(header + 2 * i, data[i], false);
      break;
    case 'int32':
      for (let i = 0; i < count; i++) view.setInt32(header + 4 * i, data[i], false);
      break;
    case 'float32':
      for (let i = 0; i < count; i++) view.setFloat32(header + 4 * i, data[i], false);
      break;
    case 'float64':
      for (let i = 0; i < count; i++) view.setFloat64(header + 8 * i, data[i], false);
      break;
  }
  return out;
}

/** Writes an IDX file atomically, gzipped if asked (readIdx detects gzip by content). */
export function writeIdx(
  file: string,
  dims: number[],
  type: IdxType,
  data: ArrayLike<number>,
  opts: { gzip?: boolean } = {},
): void {
  const raw = encodeIdx(dims, type, data);
  writeFileAtomic(file, opts.gzip ? zlib.gzipSync(raw) : raw);
}
