// The result of in-situ training on disk: a crossbar directory (the tuned conductances; the
// target files stay those of the offline mapping) plus insitu.json (options, learning curve,
// pulses per cell) and learning_curve.csv. Written as a whole: a temporary directory renamed
// into place, so an interrupted run leaves neither a half-written result nor a touched input.
import * as fs from 'fs';
import * as path from 'path';
import { writeDirAtomic, writeFileAtomic, writeJsonAtomic } from '../src/atomic';
import { PulseLog, PULSES_FILE, pulsesCsv } from '../src/programming/pulse_plan';
import { FileFormatError } from '../src/errors';
import { CrossbarNetwork, saveCrossbar } from '../src/crossbar/network';
import type { InsituPoint, InsituResult } from './insitu';

export const INSITU_FILE = 'insitu.json';
export const INSITU_FORMAT = 'memristor-tfjs-insitu';
export const INSITU_VERSION = 1;
export const LEARNING_CURVE_FILE = 'learning_curve.csv';

export interface InsituRecord {
  format: typeof INSITU_FORMAT;
  version: number;
  /** The crossbar directory trained from (absolute), or null. */
  source: string | null;
  /** The last layer trained; `layers`: all of them, first to last (absent in older records: `layer` alone). */
  layer: string;
  layers?: string[];
  rule: string;
  samples: number;
  epochs: number;
  batchSize: number;
  lr: number;
  /** uS */
  threshold: number;
  seed: number;
  /** Momentum, tiki-taka transfer period, controller reads; absent in records of older versions. */
  momentum?: number;
  transferEvery?: number;
  readEvery?: number;
  /** true: the controller saw the cells' hidden parameters (an upper bound, not a chip). */
  oracle?: boolean;
  /** Cell reads of the controller. */
  cellReads?: number;
  updates: number;
  imagesSeen: number;
  totalPulses: number;
  setPulses: number;
  resetPulses: number;
  seconds: number;
  curve: InsituPoint[];
  /** SET + RESET pulses applied to each cell of the trained layer's arrays. */
  pulsesPerCell: Record<string, { rows: number; cols: number; data: number[] }>;
  before: { testAccuracy: number | null; testSamples: number };
  after: { testAccuracy: number | null; testSamples: number };
  /** Energy and time of the update pulses (programming table of the device) and of the controller's reads. */
  programming: { energyPJ: number; timeNs: number; readPJ?: number };
}

/** The JSON record of an in-situ run. */
export function insituRecord(
  net: CrossbarNetwork,
  r: InsituResult,
  extra: { source: string | null; before: number | null; after: number | null; testSamples: number },
): InsituRecord {
  const pulsesPerCell: InsituRecord['pulsesPerCell'] = {};
  for (const name of r.layers) {
    const m = net.layers.find((l) => l.name === name)!;
    for (const a of m.arrays) {
      const c = r.pulsesPerCell.get(a.id);
      if (c) pulsesPerCell[a.id] = { rows: a.tile.rows, cols: a.tile.arrayCols, data: Array.from(c) };
    }
  }
  const e = net.device.energy.programmingPulsePJ;
  const t = net.device.latency.programmingPulseNs;
  return {
    format: INSITU_FORMAT,
    version: INSITU_VERSION,
    source: extra.source,
    layer: r.layer,
    layers: r.layers,
    rule: r.rule,
    samples: r.samples,
    epochs: r.options.epochs,
    batchSize: r.options.batchSize,
    lr: r.options.lr,
    threshold: r.options.threshold,
    seed: r.options.seed,
    momentum: r.options.momentum,
    transferEvery: r.options.transferEvery,
    readEvery: r.options.readEvery,
    oracle: r.options.oracle,
    cellReads: r.cellReads,
    updates: r.updates,
    imagesSeen: r.imagesSeen,
    totalPulses: r.totalPulses,
    setPulses: r.setPulses,
    resetPulses: r.resetPulses,
    seconds: Number(r.seconds.toFixed(3)),
    curve: r.curve.map((p) => ({ ...p, trainAccuracy: finite(p.trainAccuracy), loss: finite(p.loss) }) as InsituPoint),
    pulsesPerCell,
    before: { testAccuracy: extra.before, testSamples: extra.testSamples },
    after: { testAccuracy: extra.after, testSamples: extra.testSamples },
    // Pulses of different cells go out in parallel on a chip; this is the serial upper bound.
    programming: { energyPJ: r.totalPulses * e, timeNs: r.totalPulses * t, readPJ: r.cellReads * net.device.energy.cellReadPJ },
  };
}

function finite(v: number): number {
  return Number.isFinite(v) ? v : (null as unknown as number);
}

function curveCsv(curve: readonly InsituPoint[]): string {
  const rows = ['samples,train_accuracy,loss,pulses,energy_pj,test_accuracy'];
  for (const p of curve) {
    const f = (v: number | null | undefined) => (v == null || !Number.isFinite(v) ? '' : String(v));
    rows.push([p.samples, f(p.trainAccuracy), f(p.loss), p.pulses, f(p.energyPJ === undefined ? undefined : Number(p.energyPJ.toFixed(3))), f(p.testAccuracy)].join(','));
  }
  return rows.join('\n') + '\n';
}

/** Writes the tuned crossbar (CSVs, manifest), insitu.json and learning_curve.csv into `dir`; returns the paths. */
export async function writeInsituFiles(net: CrossbarNetwork, record: InsituRecord, dir: string, log?: PulseLog): Promise<string[]> {
  const written = await saveCrossbar(net, dir);
  writeJsonAtomic(path.join(dir, INSITU_FILE), record);
  writeFileAtomic(path.join(dir, LEARNING_CURVE_FILE), curveCsv(record.curve));
  written.push(path.join(dir, INSITU_FILE), path.join(dir, LEARNING_CURVE_FILE));
  if (log) {
    writeFileAtomic(path.join(dir, PULSES_FILE), pulsesCsv(log));
    written.push(path.join(dir, PULSES_FILE));
  }
  return written;
}

/** Writes the tuned crossbar directory with insitu.json and learning_curve.csv, atomically as a whole. */
export async function saveInsituDir(net: CrossbarNetwork, record: InsituRecord, dir: string, log?: PulseLog): Promise<string[]> {
  const files: string[] = [];
  await writeDirAtomic(dir, async (tmp) => {
    for (const f of await writeInsituFiles(net, record, tmp, log)) files.push(path.join(dir, path.relative(tmp, f)));
  });
  return files;
}

/** Reads and checks insitu.json of a directory written by saveInsituDir. */
export function readInsituRecord(dir: string): InsituRecord {
  const file = path.join(dir, INSITU_FILE);
  if (!fs.existsSync(file)) throw new FileFormatError(file, 'missing: not a directory written by `memristor-tfjs insitu` or `hybrid`');
  let o: unknown;
  try {
    o = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    throw new FileFormatError(file, `not valid JSON (${(e as Error).message})`);
  }
  const r = o as Partial<InsituRecord>;
  if (!r || typeof r !== 'object' || r.format !== INSITU_FORMAT) throw new FileFormatError(file, `format must be '${INSITU_FORMAT}', got ${JSON.stringify(r?.format)}`);
  if (r.version !== INSITU_VERSION) throw new FileFormatError(file, `version ${JSON.stringify(r.version)} is not supported (this is version ${INSITU_VERSION})`);
  if (!Array.isArray(r.curve)) throw new FileFormatError(file, 'curve: must be an array of points');
  if (!r.pulsesPerCell || typeof r.pulsesPerCell !== 'object') throw new FileFormatError(file, 'pulsesPerCell: must be an object');
  for (const [id, p] of Object.entries(r.pulsesPerCell)) {
    if (!p || !Array.isArray(p.data) || p.data.length !== p.rows * p.cols) throw new FileFormatError(file, `pulsesPerCell.${id}: needs rows x cols values`);
  }
  return r as InsituRecord;
}
