// `memristor-tfjs map`: map a trained model onto crossbar arrays of a device, program every array
// by write-verify, print the per-layer programming report and write the crossbar directory.
import * as path from 'path';
import { loadModel } from '../model_io';
import { loadDeviceConfig } from '../device/config';
import { UsageError } from '../errors';
import { SCHEMES, Scheme } from '../mapping/schemes';
import { formatLayerReports, totalReport } from '../mapping/program';
import { mapModel, saveCrossbar, disposeCrossbar, CrossbarNetwork } from '../crossbar/network';
import { claimOutputFolder } from '../output_folder';
import { CommonOptions, info, printResult, startBackend, intFlag, arrayFlag, tracked } from './common';

export interface MapCommandOptions extends CommonOptions {
  /** --model DIR: a trained model folder (model.json + weights.bin). */
  model: string;
  /** --device PRESET|FILE.json */
  device: string;
  /** --array RxC, default '128x128' (Park: 32x32; Yao: 128x16). */
  array?: string;
  /** --replicas R: replica groups of every conv layer (spatial parallelism), default 1. */
  replicas?: number | string;
  /** --replicate L1,L2: the conv layers that get --replicas (default: every conv layer). */
  replicate?: string;
  /** --seed S: device instances and write-verify, default 1. */
  seed?: number | string;
  /** --scheme differential|reference, default the device's defaultScheme. */
  scheme?: string;
  /** --tolerance F: write-verify tolerance (fraction of the window), default the device's. */
  tolerance?: number | string;
  /** --no-fold: keep BatchNormalization and ReLU layers after mapped layers digital (default: folded where they can be). */
  fold?: boolean;
  /** --out XDIR */
  out: string;
  /** --overwrite: replace an existing non-empty XDIR. */
  overwrite?: boolean;
}


/** Parses and checks the map flags (UsageError naming the flag). */
export function parseMapOptions(opts: MapCommandOptions): { arrayRows: number; arrayCols: number; replicas: number; replicate?: string[]; seed: number; scheme?: Scheme; tolerance?: number; fold: boolean } {
  if (!opts.model) throw new UsageError('map: give --model DIR (a trained model folder)');
  if (!opts.device) throw new UsageError('map: give --device PRESET|FILE.json');
  if (!opts.out) throw new UsageError('map: give --out XDIR (the crossbar directory to write)');
  const size = arrayFlag(opts.array);
  const replicas = intFlag(opts.replicas, '--replicas', 1) ?? 1;
  const seed = intFlag(opts.seed, '--seed', 0) ?? 1;
  let scheme: Scheme | undefined;
  if (opts.scheme !== undefined) {
    if (!(SCHEMES as readonly string[]).includes(opts.scheme)) throw new UsageError(`--scheme must be one of ${SCHEMES.join(', ')}, got '${opts.scheme}'`);
    scheme = opts.scheme as Scheme;
    if (scheme === 'differential' && size[1] < 2) throw new UsageError(`--array ${opts.array}: the differential scheme needs arrays of >= 2 columns`);
  }
  let tolerance: number | undefined;
  if (opts.tolerance !== undefined) {
    tolerance = Number(opts.tolerance);
    if (!(tolerance >= 0 && tolerance < 1)) throw new UsageError(`--tolerance must be a fraction of the conductance window in [0, 1), got '${opts.tolerance}'`);
  }
  let replicate: string[] | undefined;
  if (opts.replicate !== undefined) {
    replicate = opts.replicate.split(',').map((n) => n.trim());
    if (replicate.some((n) => n === '')) throw new UsageError(`--replicate takes conv layer names separated by commas, got '${opts.replicate}'`);
  }
  return { arrayRows: size[0], arrayCols: size[1], replicas, replicate, seed, scheme, tolerance, fold: opts.fold !== false };
}

export async function mapCommand(opts: MapCommandOptions) {
  const parsed = parseMapOptions(opts);
  const device = loadDeviceConfig(opts.device);
  // Claimed before the slow part, so that a second writer of --out is refused at once.
  const folder = claimOutputFolder(opts.out, { overwrite: opts.overwrite, inputs: [{ flag: '--model', path: opts.model }] });
  let net: CrossbarNetwork | null = null;
  try {
    const backend = await startBackend(opts);
    const { model } = await loadModel(opts.model);
    const t0 = performance.now();
    net = tracked(opts, 'write-verify programming', (onProgress) => mapModel(model, device, { ...parsed, onInfo: info, onProgress }), 'weights');
    const programmingSeconds = (performance.now() - t0) / 1000;
    const files = await saveCrossbar(net, folder.staging);
    folder.commit();
    const layers = net.layers.map((l) => l.report);
    const total = totalReport(layers);
    const result = {
      model: opts.model,
      device: device.name,
      array: `${parsed.arrayRows}x${parsed.arrayCols}`,
      arrayRows: parsed.arrayRows,
      arrayCols: parsed.arrayCols,
      replicas: parsed.replicas,
      seed: parsed.seed,
      scheme: net.mapping.scheme,
      fold: parsed.fold,
      out: folder.final,
      backend: backend.name,
      layers: layers.map((l) => {
        const m = net!.layers.find((k) => k.name === l.layer)!;
        // comparator: the digital layers a threshold neuron's comparators stand for (null: none)
        // absorbed: the layers it does the work of (a folded BN, a ReLU made its neuron)
        return { ...l, inputEncoding: m.inputEncoding, neuron: m.neuron, comparator: m.comparator ? m.comparator.layers : null, absorbed: m.absorbed };
      }),
      total,
      programmingSeconds: Number(programmingSeconds.toFixed(3)),
      files: files.length,
    };
    info(`wrote ${files.length} files to ${opts.out}`);
    const comparators = result.layers.filter((l) => l.comparator).map((l) => `${l.layer} (${l.comparator!.join(', ')})`);
    const cmpLine = comparators.length ? `\ncomparators (thresholds in manifest.json) replace: ${comparators.join('; ')}` : '';
    const folded = result.layers.filter((l) => l.absorbed.length).map((l) => `${l.layer} (${l.absorbed.join(', ')})`);
    const digital = net.steps.filter((s) => !s.mapped && s.absorbedBy === null).map((s) => s.layer.name);
    const foldLine = (folded.length ? `\nfolded into the arrays: ${folded.join('; ')}` : '') + (digital.length ? `\ndigital (in software): ${digital.join(', ')}` : '');
    printResult(opts, result, () => `${device.name} on ${result.array} arrays, ${net!.mapping.scheme} scheme, ${parsed.replicas} replica(s) per conv layer, seed ${parsed.seed}\n` + formatLayerReports(layers) + cmpLine + foldLine);
    return result;
  } finally {
    folder.release();
    if (net) disposeCrossbar(net);
  }
}
