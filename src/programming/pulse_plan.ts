// Pulse plans a lab can replay: the SET/RESET pulses a run applied to each cell, as plain CSV.
//
//   write_verify_pulses.csv (written by `map` into the crossbar folder)
//     array,row,col,set,reset          one line per cell that write-verify pulsed: how many SET and
//                                      RESET pulses it took (a closed loop: the counts a lab's own
//                                      verify loop should come near, not a sequence to replay blind)
//   pulses.csv (written by `insitu` into the tuned folder)
//     array,row,col,batch,polarity,count
//                                      one line per cell and update (batch, from 0) that pulsed it:
//                                      `count` pulses of `polarity` (set | reset). Lines are in the
//                                      order they were applied: batch by batch, cells in array order.
// row and col are the cell's row and physical column in its array CSV (0-based, the layout of
// *.programmed.csv). Replaying pulses.csv from the programmed state through the device model
// (training/insitu.ts replayInsituPulses, with the in-situ seed) gives the tuned conductances.
import { FileFormatError } from '../errors';
import type { WriteVerifyPulses } from '../mapping/program';
import { readTextFile } from '../input_files';

export const WRITE_VERIFY_PULSES_FILE = 'write_verify_pulses.csv';
export const PULSES_FILE = 'pulses.csv';
export const PULSES_HEADER = 'array,row,col,batch,polarity,count';
const WV_HEADER = 'array,row,col,set,reset';

/** write_verify_pulses.csv for the arrays given (cells without pulses are left out). */
export function writeVerifyPulsesCsv(arrays: readonly { id: string; cols: number; pulses: WriteVerifyPulses }[]): string {
  const lines = [WV_HEADER];
  for (const a of arrays) {
    const { set, reset } = a.pulses;
    for (let i = 0; i < set.length; i++) {
      if (set[i] === 0 && reset[i] === 0) continue;
      lines.push(`${a.id},${Math.floor(i / a.cols)},${i % a.cols},${set[i]},${reset[i]}`);
    }
  }
  return lines.join('\n') + '\n';
}

/**
 * The pulses of an in-situ run, one entry per cell and update (struct of arrays: a long run holds
 * millions). count > 0: SET pulses, < 0: RESET pulses.
 */
export interface PulseLog {
  /** Array ids; `array[k]` indexes them. */
  arrayIds: string[];
  array: Int32Array;
  row: Int32Array;
  col: Int32Array;
  batch: Int32Array;
  count: Int32Array;
  length: number;
}

/** Collects a PulseLog entry by entry. */
export class PulseLogBuilder {
  private cap = 1024;
  private cols: Int32Array[] = Array.from({ length: 5 }, () => new Int32Array(1024));
  length = 0;
  constructor(readonly arrayIds: string[]) {}

  push(array: number, row: number, col: number, batch: number, count: number): void {
    if (this.length === this.cap) {
      this.cap *= 2;
      this.cols = this.cols.map((c) => {
        const n = new Int32Array(this.cap);
        n.set(c);
        return n;
      });
    }
    const i = this.length++;
    this.cols[0][i] = array;
    this.cols[1][i] = row;
    this.cols[2][i] = col;
    this.cols[3][i] = batch;
    this.cols[4][i] = count;
  }

  build(): PulseLog {
    const [array, row, col, batch, count] = this.cols.map((c) => c.slice(0, this.length));
    return { arrayIds: this.arrayIds, array, row, col, batch, count, length: this.length };
  }
}

/** pulses.csv text of a log. */
export function pulsesCsv(log: PulseLog): string {
  const parts: string[] = [PULSES_HEADER + '\n'];
  let chunk = '';
  for (let i = 0; i < log.length; i++) {
    const c = log.count[i];
    chunk += `${log.arrayIds[log.array[i]]},${log.row[i]},${log.col[i]},${log.batch[i]},${c > 0 ? 'set' : 'reset'},${Math.abs(c)}\n`;
    if (chunk.length > 1 << 16) {
      parts.push(chunk);
      chunk = '';
    }
  }
  parts.push(chunk);
  return parts.join('');
}

/**
 * Reads pulses.csv, checking every line (FileFormatError naming the file, line and column): the
 * header, six fields, integer row/col/batch >= 0, batches in order, polarity set|reset, count >= 1.
 * Array ids are checked by the replay, which knows the arrays.
 */
export function readPulsesCsv(file: string): PulseLog {
  const text = readTextFile(file);
  if (text.length > 0 && !text.endsWith('\n')) throw new FileFormatError(file, 'the file ends without a newline, so its last line may be cut short (a truncated file?)');
  const lines = text.split(/\r?\n/);
  if (lines[0].trim() !== PULSES_HEADER) throw new FileFormatError(file, `line 1: the header must be '${PULSES_HEADER}', got '${lines[0].slice(0, 60)}'`);
  const ids: string[] = [];
  const idIndex = new Map<string, number>();
  const b = new PulseLogBuilder(ids);
  const names = PULSES_HEADER.split(',');
  let lastBatch = 0;
  for (let ln = 1; ln < lines.length; ln++) {
    const line = lines[ln].trim();
    if (line === '') continue;
    const f = line.split(',');
    const where = (k: number) => `line ${ln + 1}, column ${k + 1} (${names[k]})`;
    if (f.length !== 6) throw new FileFormatError(file, `line ${ln + 1}: ${f.length} fields, expected 6 (${PULSES_HEADER})`);
    const int = (k: number, min: number): number => {
      const v = /^\d+$/.test(f[k]) ? Number(f[k]) : NaN;
      if (!Number.isSafeInteger(v) || v < min) throw new FileFormatError(file, `${where(k)}: must be an integer >= ${min}, got '${f[k]}'`);
      return v;
    };
    if (f[0] === '') throw new FileFormatError(file, `${where(0)}: empty array id`);
    let a = idIndex.get(f[0]);
    if (a === undefined) {
      a = ids.length;
      ids.push(f[0]);
      idIndex.set(f[0], a);
    }
    const row = int(1, 0);
    const col = int(2, 0);
    const batch = int(3, 0);
    if (batch < lastBatch) throw new FileFormatError(file, `${where(3)}: batch ${batch} after batch ${lastBatch}; lines must be in the order the pulses were applied`);
    lastBatch = batch;
    if (f[4] !== 'set' && f[4] !== 'reset') throw new FileFormatError(file, `${where(4)}: must be set or reset, got '${f[4]}'`);
    const count = int(5, 1);
    b.push(a, row, col, batch, f[4] === 'set' ? count : -count);
  }
  return b.build();
}
