// A trained model mapped onto crossbar arrays: which layers go onto arrays, their tiles and
// replicas, the programmed conductances, and the crossbar directory (XDIR) they are saved in.
//
// Any tfjs layers model (Sequential or functional, a DAG with add, concatenate and branches) is
// taken as a list of steps in topological order (src/crossbar/graph.ts): every Conv2D/Dense-like
// layer (QuantConv2D, QuantDense, stock conv2d (strided, dilated), dense, depthwiseConv2d, and
// separableConv2d as two steps) is mapped: its weight matrix (the quantized kernel for the Quant
// layers; a BatchNormalization right after it folded in where it can be) becomes target
// conductances (src/mapping/schemes.ts), tiled onto arrays of arrayRows x arrayCols
// (src/mapping/tiling.ts), and each array is programmed by write-verify (src/mapping/program.ts).
// A conv layer is mapped onto `replicas` groups of arrays (Yao et al.'s spatial parallelism), each
// with device instances of its own; a dense layer always has one. Every other layer (pooling, add,
// concatenate, padding, flatten, a BN that does not fold, activations, ThresholdActivation, input
// quantizers) stays digital and runs as the tfjs layer itself; biases are added digitally after
// the arrays. The manifest lists every step with its role (mapped, digital, absorbed).
//
// The crossbar directory (written through src/crossbar/files.ts):
//   XDIR/manifest.json   format, version, device, network, layers (one entry per mapped layer with
//                        its arrays), written last
//   XDIR/<array>.target.csv, XDIR/<array>.programmed.csv   per array, uS, one line per crossbar row
//   XDIR/model/          a copy of the trained model (model.json + weights.bin): the topology and
//                        every digital weight (biases, batch normalization, thresholds) load back from it
// manifest.network = { modelDir, inputShape, mapping: {arrayRows, arrayCols, replicas, seed, scheme},
//   rowOrder, layers: [{name, className, mapped}] } and each manifest layer entry carries, besides
// name/kind/arrays, the layer's geometry (className, kernelShape, rows, outputs, strides, padding,
// activation, useBias), the mapping (scheme, wScale, weightScale, gRef, devicesPerWeight,
// arrayRows, arrayCols, replicas), the periphery decisions (inputEncoding, neuron), for a threshold
// neuron that folds the following BN + binary activation its comparator (thresholds, flip,
// referenceUA, layers, units: src/crossbar/comparator.ts) and the programming report.
// loadCrossbar checks all of it against the model and the CSVs.
import * as fs from 'fs';
import * as path from 'path';
import { tf } from '../tf';
import '../../layers';
import { QuantKernelLayer } from '../../layers/quant_base';
import { QuantActivation } from '../../layers/quant_activation';
import { ThresholdActivation } from '../../layers/bn_threshold';
import type { Quantizer } from '../../layers/quantizers';
import type { DeviceConfig } from '../device/config';
import { ConfigError, FileFormatError, UsageError } from '../errors';
import { SeededRandom } from '../random';
import { DeviceInstances, ProgrammingReport, combineReports } from '../programming';
import { loadModel, saveModel, MODEL_JSON } from '../model_io';
import { writeFileAtomic } from '../atomic';
import {
  CONV_ROW_ORDER,
  Scheme,
  SCHEMES,
  checkScheme,
  devicesPerWeight,
  mapWeights,
  unrollConvKernel,
  conductancesToWeights,
  LayerConductances,
} from '../mapping/schemes';
import { TileSpec, checkArraySize, checkCoverage, extractTile, tileLayer } from '../mapping/tiling';
import { LayerProgrammingReport, WriteVerifyPulses, programArrays, replicaInstances } from '../mapping/program';
import { WRITE_VERIFY_PULSES_FILE, writeVerifyPulsesCsv } from '../programming/pulse_plan';
import {
  CrossbarArrayData,
  CrossbarArrayEntry,
  CrossbarLayerEntry,
  MANIFEST_FILE,
  arrayFileNames,
  newCrossbarManifest,
  readCrossbarDir,
  writeCrossbarDir,
} from './files';
import { Comparator, comparatorEntry, comparatorReferenceUA, planComparator, readComparatorEntry } from './comparator';
import { GraphStep, LayerGeometry, LayerPart, MAPPABLE_NAMES, planSteps, stepWeights } from './graph';

/** How a mapped layer's input reaches the rows: 'signedBinary' = +-1 inputs applied as 0/1 (Chen et al.). */
export type InputEncoding = 'signedBinary' | 'real';
/** The neuron at the columns of a mapped layer. */
export type NeuronKind = 'threshold' | 'relu' | 'linear';
export type { LayerGeometry, MappedKind, LayerPart } from './graph';
export { layerGeometries, modelGraph, planSteps, stepWeights } from './graph';

/** One physical array of a mapped layer. */
export interface CrossbarArray {
  id: string;
  replica: number;
  tile: TileSpec;
  files: { target: string; programmed: string };
  /** rows x tile.arrayCols, uS. */
  target: Float32Array;
  programmed: Float32Array;
  /** Its programming report (null when read from a directory written without one). */
  report: ProgrammingReport | null;
  /** The write-verify pulses each cell received (null when read from a directory). */
  writeVerifyPulses?: WriteVerifyPulses | null;
}

export interface MappedLayer extends LayerGeometry {
  /** The step's name: the layer's, or `layer/depthwise`, `layer/pointwise` for a separable conv's parts. */
  name: string;
  /** The tfjs layer it comes from, and which part of it (null: all of it). */
  layerName: string;
  part: LayerPart;
  /** The layers whose work it does besides its own: a folded BatchNormalization, a ReLU made its activation. */
  absorbed: string[];
  /** The BatchNormalization folded into its weights and bias, or null. */
  foldedBatchNorm: string | null;
  scheme: Scheme;
  wScale: number;
  weightScale: number;
  gRef: number | null;
  arrayRows: number;
  arrayCols: number;
  replicas: number;
  inputEncoding: InputEncoding;
  neuron: NeuronKind;
  /** Digital bias (null without). */
  bias: Float32Array | null;
  /** The layer's own input quantizer, applied digitally before the DAC (Quant layers), or null. */
  inputQuantizer: Quantizer | null;
  /**
   * A threshold neuron's comparator: the following BN + binary activation (through max pools)
   * folded into per-column thresholds (src/crossbar/comparator.ts). Null or absent: the digital
   * layers decide (on the analog sums for a threshold neuron).
   */
  comparator?: Comparator | null;
  /** Every array of every replica. */
  arrays: CrossbarArray[];
  report: LayerProgrammingReport;
}

export interface NetworkStep {
  layer: tf.layers.Layer;
  /** The mapping of a layer (or part) on arrays; null for a digital or absorbed step. */
  mapped: MappedLayer | null;
  /** The steps whose outputs it takes, in the layer's input order (-1: the network's input). */
  inputs: number[];
  /** The mapped step that does its work (a folded BN, an absorbed ReLU); its output is that step's. Null if none. */
  absorbedBy: number | null;
}

export interface MappingOptions {
  /** Array size; default 128 x 128. */
  arrayRows?: number;
  arrayCols?: number;
  /** Replica groups of every conv layer (spatial parallelism); default 1. */
  replicas?: number;
  /**
   * The conv layers that get `replicas` (by step name: a layer's, or `NAME/depthwise`); the others
   * get one. Default: every conv layer. Yao et al.'s ResNet-56: the first conv only.
   */
  replicate?: string[];
  /** Seed of the device instances and of write-verify; default 1. */
  seed?: number;
  /** Mapping scheme; default the device's defaultScheme. */
  scheme?: Scheme;
  /**
   * Fold a BatchNormalization (and a ReLU) after a mapped layer into its weights, bias and neuron
   * where it can be (src/crossbar/graph.ts); default true. False keeps every such layer digital.
   */
  fold?: boolean;
  /** Overrides of write-verify (tolerance sweeps). */
  tolerance?: number;
  maxPulses?: number;
  /** Where lines about clamped options go (replicas beyond a layer's output rows, oversized arrays). */
  onInfo?: (msg: string) => void;
  /** Called after each mapped layer is programmed: weights (times replicas) done of the total. */
  onProgress?: (done: number, total: number) => void;
}

/** Most cells one mapping may program (about 0.5 GB of conductance arrays): a larger request is refused before allocation. */
export const MAX_MAPPED_CELLS = 64 * 1024 * 1024;

export interface CrossbarNetwork {
  /** The trained model: the digital layers run through it. */
  model: tf.LayersModel;
  device: DeviceConfig;
  /** The model's input shape without the batch dimension. */
  inputShape: number[];
  steps: NetworkStep[];
  /** The mapped layers, in order. */
  layers: MappedLayer[];
  mapping: { arrayRows: number; arrayCols: number; replicas: number; seed: number; scheme: Scheme; fold: boolean };
  /** Inference state (tensors, calibration): owned by src/crossbar/inference.ts. */
  runtime: unknown;
}

// ---------------------------------------------------------------------------------------------
// Model analysis

/** Layers that pass a +-1 value or a comparator decision through unchanged in kind. */
const PASS_THROUGH = new Set(['MaxPooling2D', 'MaxPool2D', 'GlobalMaxPooling2D', 'GlobalMaxPool2D', 'Flatten', 'Reshape', 'Dropout', 'SpatialDropout1D', 'SpatialDropout2D']);
const MONOTONE_ACTIVATIONS = new Set(['linear', 'relu', 'relu6', 'elu', 'selu', 'sigmoid', 'hardSigmoid', 'tanh', 'softplus', 'softsign']);
const SIGN_QUANTIZERS = new Set(['SteSign', 'ApproxSign']);

/** The links of a step that the chain walks below need. */
type StepLink = Pick<NetworkStep, 'layer' | 'inputs' | 'absorbedBy'>;

/**
 * The layers on the single-link chain that ends at step i (each the only input of the next), in
 * model order, step i's layer last: what decides the kind of values reaching step i.
 */
export function chainBefore(steps: readonly StepLink[], i: number): tf.layers.Layer[] {
  const out = [steps[i].layer];
  let cur = i;
  while (steps[cur].inputs.length === 1 && steps[cur].inputs[0] >= 0) {
    cur = steps[cur].inputs[0];
    out.unshift(steps[cur].layer);
  }
  return out;
}

/**
 * The steps after step i along single links (step i's output goes only to the next, which takes
 * nothing else), stopping after a mapped step; absorbed steps are passed over (their work is done
 * by the mapped step that absorbed them).
 */
export function chainAfter(steps: readonly StepLink[], i: number, isMapped: (n: number) => boolean): number[] {
  const out: number[] = [];
  let cur = i;
  for (;;) {
    const cons: number[] = [];
    steps.forEach((s, n) => {
      if (s.inputs.includes(cur)) cons.push(n);
    });
    if (cons.length !== 1 || steps[cons[0]].inputs.length !== 1) return out;
    cur = cons[0];
    if (steps[cur].absorbedBy === null) out.push(cur);
    if (isMapped(cur)) return out;
  }
}

function quantizerOf(layer: tf.layers.Layer): Quantizer | null {
  if (layer instanceof QuantKernelLayer) return layer.inputQuantizer;
  return null;
}

/** Whether the input of layers[idx] is +-1 (its own sign input quantizer, or a sign activation before it). */
export function detectSignedBinaryInput(layers: readonly tf.layers.Layer[], idx: number): boolean {
  const own = quantizerOf(layers[idx]);
  if (own && own.levels !== null) return SIGN_QUANTIZERS.has(own.className);
  for (let k = idx - 1; k >= 0; k--) {
    const l = layers[k];
    if (PASS_THROUGH.has(l.getClassName())) continue;
    if (l instanceof QuantActivation) return SIGN_QUANTIZERS.has(l.quantizer.className);
    if (l instanceof ThresholdActivation) return l.mode === 'sign';
    return false;
  }
  return false;
}

/** Whether the outputs of layers[idx] go (through monotone digital layers) into a binary activation: a comparator can stand in. */
export function followedByBinaryActivation(layers: readonly tf.layers.Layer[], idx: number, geo: LayerGeometry): boolean {
  if (!MONOTONE_ACTIVATIONS.has(geo.activation)) return false;
  for (let k = idx + 1; k < layers.length; k++) {
    const l = layers[k];
    const cn = l.getClassName();
    if (PASS_THROUGH.has(cn) || cn === 'BatchNormalization') continue;
    if (l instanceof QuantActivation) return l.quantizer.levels === 2;
    if (l instanceof ThresholdActivation) return true;
    return false;
  }
  return false;
}

/** Step i's input encoding, from the chain of layers before it. */
function inputEncodingOf(plan: readonly GraphStep[], i: number): InputEncoding {
  const before = chainBefore(plan, i);
  // The second part of a separable conv takes the first part's real outputs.
  if (plan[i].part === 'pointwise') return 'real';
  return detectSignedBinaryInput(before, before.length - 1) ? 'signedBinary' : 'real';
}

/** The layers after mapped step i that a neuron or comparator may stand in for, step i's layer first. */
function layersAfter(plan: readonly GraphStep[], i: number): tf.layers.Layer[] {
  return [plan[i].layer, ...chainAfter(plan, i, (n) => plan[n].geometry !== null).map((n) => plan[n].layer)];
}

function neuronFor(device: DeviceConfig, plan: readonly GraphStep[], idx: number, geo: LayerGeometry): NeuronKind {
  if (device.neuron.kind === 'threshold' && followedByBinaryActivation(layersAfter(plan, idx), 0, geo)) return 'threshold';
  if (device.neuron.kind === 'relu' && geo.activation === 'relu') return 'relu';
  return 'linear';
}

/** The comparator of a threshold neuron (the following BN + binary activation folded), or null with a line saying why. */
function comparatorOf(plan: readonly GraphStep[], idx: number, geo: LayerGeometry, onInfo?: (msg: string) => void): Comparator | null {
  const res = planComparator(layersAfter(plan, idx), 0, geo.outputs, geo.activation);
  if (!res.comparator) onInfo?.(`comparator: ${plan[idx].name} keeps the digital decision on its analog sums: ${res.reason}`);
  return res.comparator;
}

/** The weight matrix and bias of a mapped layer of a network (the quantized kernel, a folded BN applied). */
export function mappedWeights(net: CrossbarNetwork, l: MappedLayer): { W: Float32Array; bias: Float32Array | null } {
  const step = net.steps.find((s) => s.mapped === l);
  if (!step) throw new RangeError(`layer ${l.name} is not a mapped layer of this network`);
  const bn = l.foldedBatchNorm ? net.model.getLayer(l.foldedBatchNorm) : null;
  return stepWeights({ layer: step.layer, part: l.part, foldedBatchNorm: bn }, l);
}

/** The manifest field of a mapped layer's comparator: thresholds, flips and the reference currents (uA). */
function comparatorJson(net: CrossbarNetwork, l: MappedLayer): Record<string, unknown> {
  const { W } = mappedWeights(net, l);
  const c = l.comparator!;
  return comparatorEntry(c, comparatorReferenceUA(c, W, l.rows, l.outputs, l.bias, l.inputEncoding === 'signedBinary', l.weightScale, net.device.read.voltage));
}

function checkInt(v: unknown, field: string, min: number): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min) throw new ConfigError(field, `must be an integer >= ${min}, got ${String(v)}`);
  return v;
}

// ---------------------------------------------------------------------------------------------
// Mapping

/**
 * Maps a trained model onto crossbar arrays of `device` and programs every array (write-verify,
 * seeded). The model is kept (not copied): dispose it with disposeCrossbar or yourself.
 */
export function mapModel(model: tf.LayersModel, device: DeviceConfig, opts: MappingOptions = {}): CrossbarNetwork {
  const arrayRows = checkInt(opts.arrayRows ?? 128, 'arrayRows', 1);
  const arrayCols = checkInt(opts.arrayCols ?? 128, 'arrayCols', 1);
  const replicas = checkInt(opts.replicas ?? 1, 'replicas', 1);
  const seed = checkInt(opts.seed ?? 1, 'seed', 0);
  const scheme = checkScheme(opts.scheme ?? device.defaultScheme);
  checkArraySize(arrayRows, arrayCols, scheme);
  const wvOpts = { tolerance: opts.tolerance, maxPulses: opts.maxPulses };
  const fold = opts.fold ?? true;
  const plan = planSteps(model, { absorb: fold });
  const steps: NetworkStep[] = [];
  const mappedLayers: MappedLayer[] = [];
  if (opts.replicate) {
    const convs = plan.filter((p) => p.geometry?.kind === 'conv2d').map((p) => p.name);
    const unknown = opts.replicate.filter((n) => !convs.includes(n));
    if (unknown.length) throw new ConfigError('replicate', `${unknown.map((n) => `'${n}'`).join(', ')} ${unknown.length === 1 ? 'is not a conv layer' : 'are not conv layers'} of model ${model.name} (its conv layers: ${convs.join(', ') || 'none'})`);
  }
  const replicasOf = planReplicas(plan, replicas, scheme, arrayRows, arrayCols, opts.onInfo, opts.replicate);
  const weightsOf = (i: number) => {
    const g = plan[i].geometry;
    return g ? g.rows * g.outputs * (replicasOf.get(i) ?? 1) : 0;
  };
  const totalWeights = plan.reduce((n, _, i) => n + weightsOf(i), 0);
  let weightsDone = 0;
  plan.forEach((ps, idx) => {
    const geo = ps.geometry;
    const link = { layer: ps.layer, inputs: ps.inputs, absorbedBy: ps.absorbedBy };
    if (!geo) {
      steps.push({ ...link, mapped: null });
      return;
    }
    const t0 = performance.now();
    const { W, bias } = stepWeights(ps, geo);
    const conductances = mapWeights(W, geo.rows, geo.outputs, device, scheme);
    const levelError = levelRoundingError(W, conductances);
    const tiles = tileLayer(geo.rows, geo.outputs, arrayRows, arrayCols, scheme);
    const totalCols = geo.outputs * devicesPerWeight(scheme);
    const targets = tiles.map((t) => extractTile(conductances.targets, totalCols, t, conductances.gRef ?? undefined));
    const nRep = replicasOf.get(idx) ?? 1;
    const arrays: CrossbarArray[] = [];
    const reports: ProgrammingReport[] = [];
    for (let r = 0; r < nRep; r++) {
      const prog = programArrays(targets, device, replicaRng(seed, ps.name, r), wvOpts);
      reports.push(prog.total);
      tiles.forEach((tile, k) => {
        const id = nRep > 1 ? `${ps.name}/r${r}/a${k}` : `${ps.name}/a${k}`;
        arrays.push({ id, replica: r, tile, files: arrayFileNames(id), target: targets[k], programmed: prog.programmed[k], report: prog.reports[k], writeVerifyPulses: prog.pulses[k] });
      });
    }
    const total = combine(reports);
    const neuron = neuronFor(device, plan, idx, geo);
    const mapped: MappedLayer = {
      ...geo,
      name: ps.name,
      layerName: ps.layer.name,
      part: ps.part,
      absorbed: [...ps.absorbed],
      foldedBatchNorm: ps.foldedBatchNorm?.name ?? null,
      scheme,
      wScale: conductances.wScale,
      weightScale: conductances.weightScale,
      gRef: conductances.gRef,
      arrayRows,
      arrayCols,
      replicas: nRep,
      inputEncoding: inputEncodingOf(plan, idx),
      neuron,
      bias,
      inputQuantizer: ps.part ? null : quantizerOf(ps.layer),
      comparator: neuron === 'threshold' ? comparatorOf(plan, idx, geo, opts.onInfo) : null,
      arrays,
      report: {
        ...total,
        layer: ps.name,
        kind: geo.kind,
        rows: geo.rows,
        outputs: geo.outputs,
        scheme,
        arrays: arrays.length,
        replicas: nRep,
        seconds: (performance.now() - t0) / 1000,
        levelError,
      },
    };
    steps.push({ ...link, mapped });
    mappedLayers.push(mapped);
    weightsDone += weightsOf(idx);
    opts.onProgress?.(weightsDone, totalWeights);
  });
  if (mappedLayers.length === 0) throw new UsageError(`model ${model.name} has no layer that can be mapped (${MAPPABLE_NAMES})`);
  return {
    model,
    device,
    inputShape: (model.inputs[0].shape.slice(1) as number[]),
    steps,
    layers: mappedLayers,
    mapping: { arrayRows, arrayCols, replicas, seed, scheme, fold },
    runtime: null,
  };
}

/** What rounding the targets to the device's levels did to the weights, as fractions of max|W|. */
function levelRoundingError(W: ArrayLike<number>, c: LayerConductances): { mean: number; max: number } {
  const Wq = conductancesToWeights(c.targets, c.rows, c.outputs, c.scheme, c.weightScale, c.gRef);
  let sum = 0;
  let max = 0;
  for (let i = 0; i < Wq.length; i++) {
    const e = Math.abs(W[i] - Wq[i]);
    sum += e;
    if (e > max) max = e;
  }
  return { mean: Wq.length ? sum / Wq.length / c.wScale : 0, max: max / c.wScale };
}

/**
 * Replicas per mapped layer: a conv layer's output rows are split into one band per replica, so
 * replicas beyond its output rows would hold nothing to compute and are clamped (with a line);
 * dense layers have one. Also refuses a mapping of more than MAX_MAPPED_CELLS cells before any
 * allocation, and says when the arrays are larger than every layer.
 */
function planReplicas(
  plan: readonly GraphStep[],
  replicas: number,
  scheme: Scheme,
  arrayRows: number,
  arrayCols: number,
  onInfo?: (msg: string) => void,
  replicate?: readonly string[],
): Map<number, number> {
  const out = new Map<number, number>();
  let cells = 0;
  let maxRows = 0;
  let maxCols = 0;
  plan.forEach((ps, i) => {
    const geo = ps.geometry;
    if (!geo) return;
    let n = 1;
    if (geo.kind === 'conv2d' && (!replicate || replicate.includes(ps.name))) {
      const shape = ps.layer.outputShape as (number | null)[];
      const oh = typeof shape[1] === 'number' ? shape[1] : replicas;
      n = Math.min(replicas, Math.max(1, oh));
      if (n < replicas) onInfo?.(`replicas: ${ps.name} has ${oh} output rows, so it gets ${n} replica(s), not ${replicas}`);
    }
    out.set(i, n);
    const cols = geo.outputs * devicesPerWeight(scheme) + (scheme === 'reference' ? 1 : 0);
    cells += n * geo.rows * cols;
    maxRows = Math.max(maxRows, geo.rows);
    maxCols = Math.max(maxCols, cols);
  });
  if (cells > MAX_MAPPED_CELLS) {
    throw new ConfigError('replicas', `the mapping would program ${cells.toLocaleString('en-US')} cells, more than ${MAX_MAPPED_CELLS.toLocaleString('en-US')}; use fewer replicas`);
  }
  if (maxRows > 0 && arrayRows > maxRows && arrayCols > maxCols) {
    onInfo?.(`arrays of ${arrayRows}x${arrayCols} are larger than every layer (the layers need at most ${maxRows} rows and ${maxCols} columns): each array holds only the cells its layer uses`);
  }
  return out;
}

/** The rng of replica r of a layer: its cells and its write-verify noise. */
function replicaRng(seed: number, layer: string, replica: number): SeededRandom {
  return new SeededRandom(seed).fork(`${layer}/r${replica}`);
}

/**
 * The device instances of the cells of one replica of a mapped layer, regenerated from the
 * mapping seed (the same cells mapModel programmed), and where each array's cells start in them.
 */
export function deviceInstancesOf(net: CrossbarNetwork, m: MappedLayer, replica = 0): { instances: DeviceInstances; arrays: { array: CrossbarArray; offset: number }[] } {
  const arrays = m.arrays.filter((a) => a.replica === replica);
  if (arrays.length === 0) throw new RangeError(`layer ${m.name} has no replica ${replica}`);
  let n = 0;
  const placed = arrays.map((array) => {
    const offset = n;
    n += array.programmed.length;
    return { array, offset };
  });
  return { instances: replicaInstances(net.device, n, replicaRng(net.mapping.seed, m.name, replica)), arrays: placed };
}

function combine(reports: ProgrammingReport[]): ProgrammingReport {
  return combineReports(reports);
}

/** The programming reports of the mapped layers. */
export function mappingReport(net: CrossbarNetwork): LayerProgrammingReport[] {
  return net.layers.map((l) => l.report);
}

// ---------------------------------------------------------------------------------------------
// Saving

function stepName(steps: readonly NetworkStep[], i: number): string {
  if (i < 0) return 'input';
  return steps[i].mapped?.name ?? steps[i].layer.name;
}

/** A step as manifest.network.layers lists it. */
function stepEntry(steps: readonly NetworkStep[], s: NetworkStep): Record<string, unknown> {
  const role = s.mapped ? 'mapped' : s.absorbedBy !== null ? 'absorbed' : 'digital';
  return {
    name: s.mapped?.name ?? s.layer.name,
    className: s.layer.getClassName(),
    mapped: s.mapped !== null,
    role,
    inputs: s.inputs.map((i) => stepName(steps, i)),
    ...(s.absorbedBy !== null ? { absorbedBy: stepName(steps, s.absorbedBy) } : {}),
  };
}

export const MODEL_SUBDIR = 'model';

/**
 * Writes the crossbar directory: XDIR/model/ (a copy of the trained model), the array CSVs and
 * XDIR/manifest.json (last). Returns the files written.
 */
export async function saveCrossbar(net: CrossbarNetwork, dir: string): Promise<string[]> {
  await saveModel(net.model, path.join(dir, MODEL_SUBDIR), { savedBy: 'memristor-tfjs map', crossbar: true });
  const arrays = new Map<string, CrossbarArrayData>();
  const layers: CrossbarLayerEntry[] = net.layers.map((l) => {
    const entries: CrossbarArrayEntry[] = l.arrays.map((a) => {
      arrays.set(a.files.target, { rows: a.tile.rows, cols: a.tile.arrayCols, data: a.target });
      arrays.set(a.files.programmed, { rows: a.tile.rows, cols: a.tile.arrayCols, data: a.programmed });
      return {
        id: a.id,
        rows: a.tile.rows,
        cols: a.tile.arrayCols,
        rowStart: a.tile.rowStart,
        colStart: a.tile.colStart,
        scheme: l.scheme,
        weightScale: l.weightScale,
        files: a.files,
        replica: a.replica,
        outputs: [a.tile.outStart, a.tile.outStart + a.tile.outs],
        referenceColumn: l.scheme === 'reference' ? a.tile.arrayCols - 1 : null,
        ...(a.report ? { programming: a.report } : {}),
      };
    });
    return {
      name: l.name,
      kind: l.kind,
      className: l.className,
      kernelShape: l.kernelShape,
      rows: l.rows,
      outputs: l.outputs,
      strides: l.strides,
      padding: l.padding,
      dilation: l.dilation,
      layout: l.layout,
      activation: l.activation,
      useBias: l.useBias,
      layer: l.layerName,
      part: l.part,
      foldedBatchNorm: l.foldedBatchNorm,
      absorbed: l.absorbed,
      scheme: l.scheme,
      devicesPerWeight: devicesPerWeight(l.scheme),
      wScale: l.wScale,
      weightScale: l.weightScale,
      gRef: l.gRef,
      arrayRows: l.arrayRows,
      arrayCols: l.arrayCols,
      replicas: l.replicas,
      inputEncoding: l.inputEncoding,
      neuron: l.neuron,
      ...(l.comparator ? { comparator: comparatorJson(net, l) } : {}),
      programming: l.report,
      arrays: entries,
    };
  });
  const manifest = newCrossbarManifest({
    device: net.device,
    network: {
      modelDir: MODEL_SUBDIR,
      modelName: net.model.name,
      inputShape: net.inputShape,
      mapping: net.mapping,
      rowOrder: { conv2d: CONV_ROW_ORDER, dense: 'row = input feature' },
      // Every step, in the order inference runs them: mapped (its arrays are in `layers`), digital
      // (run in software as the model's layer) or absorbed (its work done by a mapped step).
      layers: net.steps.map((s) => stepEntry(net.steps, s)),
    },
    layers,
  });
  const written = writeCrossbarDir(dir, manifest, arrays);
  // The pulse plan of the programming: what write-verify gave each cell (where it was run here).
  const withPulses = net.layers.flatMap((l) => l.arrays).filter((a) => a.writeVerifyPulses);
  if (withPulses.length) {
    const f = path.join(dir, WRITE_VERIFY_PULSES_FILE);
    writeFileAtomic(f, writeVerifyPulsesCsv(withPulses.map((a) => ({ id: a.id, cols: a.tile.arrayCols, pulses: a.writeVerifyPulses! }))));
    written.push(f);
  }
  return [path.join(dir, MODEL_SUBDIR, MODEL_JSON), ...written];
}

// ---------------------------------------------------------------------------------------------
// Loading

type Obj = Record<string, unknown>;

export interface LoadCrossbarOptions {
  /**
   * Check that every target CSV equals the mapping of the model's weights (default true): catches a
   * model directory that is not the one mapped, as does the check that a comparator's thresholds
   * and flips are what the model's BN and binary activation give. Turn off for target files (or
   * comparator thresholds) edited on purpose.
   */
  checkTargets?: boolean;
}

function num(o: Obj, key: string, fail: (f: string, p: string) => never, field: string, { min = -Infinity, positive = false, integer = false, nullable = false } = {}): number {
  const v = o[key];
  if (v === null && nullable) return NaN;
  if (typeof v !== 'number' || !Number.isFinite(v) || (integer && !Number.isInteger(v)) || v < min || (positive && v <= 0)) {
    fail(`${field}.${key}`, v === undefined ? 'missing' : `must be ${integer ? 'an integer' : 'a number'}${positive ? ' > 0' : min > -Infinity ? ` >= ${min}` : ''}, got ${JSON.stringify(v)}`);
  }
  return v as number;
}

/**
 * Reads a crossbar directory back into a CrossbarNetwork, validating everything: the files
 * (readCrossbarDir: format, version, device, CSV shapes, NaN, values in the window, missing files),
 * the model copy, and the manifest against the model: every mappable layer has an entry and every
 * entry a mappable layer of the same kind and shape, the arrays of each replica tile the layer's
 * conductance matrix exactly once, schemes and scales agree, and (checkTargets) the target CSVs
 * are the mapping of the model's weights. Errors are FileFormatErrors naming the file.
 */
export async function loadCrossbar(dir: string, opts: LoadCrossbarOptions = {}): Promise<CrossbarNetwork> {
  const { manifest, arrays } = readCrossbarDir(dir);
  const mPath = path.join(dir, MANIFEST_FILE);
  const fail = (field: string, problem: string): never => {
    throw new FileFormatError(mPath, field ? `${field}: ${problem}` : problem);
  };
  const net = manifest.network as Obj | null;
  if (net === null || typeof net !== 'object' || Array.isArray(net)) fail('network', 'must be an object (written by memristor-tfjs map)');
  const network = net as Obj;
  const modelDir = network.modelDir;
  if (typeof modelDir !== 'string' || !/^[A-Za-z0-9_.-]+$/.test(modelDir) || modelDir.startsWith('.')) fail('network.modelDir', `must be a folder name inside the directory, got ${JSON.stringify(modelDir)}`);
  const mapping = (network.mapping ?? {}) as Obj;
  if (typeof mapping !== 'object') fail('network.mapping', 'must be an object');
  const modelPath = path.join(dir, modelDir as string);
  if (!fs.existsSync(path.join(modelPath, MODEL_JSON))) throw new FileFormatError(path.join(modelPath, MODEL_JSON), `missing: the trained model copy named by ${MANIFEST_FILE} (network.modelDir)`);
  const { model } = await loadModel(modelPath);
  try {
    return buildFromManifest(model, manifest, arrays, dir, mapping, fail, opts);
  } catch (e) {
    model.dispose();
    if (e instanceof UsageError || e instanceof ConfigError) throw new FileFormatError(path.join(modelPath, MODEL_JSON), e.message);
    throw e;
  }
}

function buildFromManifest(
  model: tf.LayersModel,
  manifest: ReturnType<typeof readCrossbarDir>['manifest'],
  arrays: Map<string, CrossbarArrayData>,
  dir: string,
  mapping: Obj,
  fail: (field: string, problem: string) => never,
  opts: LoadCrossbarOptions,
): CrossbarNetwork {
  const device = manifest.device;
  // Version 1 folders were written before folding: their BNs and ReLUs stay digital.
  const fold = manifest.version >= 2 && mapping.fold !== false;
  const plan = planSteps(model, { absorb: fold });
  const byName = new Map<string, { entry: CrossbarLayerEntry; index: number }>();
  manifest.layers.forEach((entry, index) => byName.set(entry.name, { entry, index }));
  const steps: NetworkStep[] = [];
  const mappedLayers: MappedLayer[] = [];
  const used = new Set<string>();
  plan.forEach((ps, idx) => {
    const geo = ps.geometry;
    const found = byName.get(ps.name);
    const link = { layer: ps.layer, inputs: ps.inputs, absorbedBy: ps.absorbedBy };
    if (!geo) {
      if (found) fail(`layers[${found.index}]`, `layer '${ps.name}' is ${ps.layer.getClassName()} in the model (${MODEL_SUBDIR}/), ${ps.absorbedBy !== null ? `absorbed by mapped layer '${plan[ps.absorbedBy].name}'` : 'a digital layer'}: it has no arrays`);
      steps.push({ ...link, mapped: null });
      return;
    }
    if (!found) fail('layers', `the model's ${geo.className} layer '${ps.name}' has no entry: the manifest does not belong to this model`);
    const { entry, index } = found!;
    used.add(ps.name);
    const lf = `layers[${index}] '${ps.name}'`;
    const e = entry as Obj;
    if (entry.kind !== geo.kind) fail(`${lf}.kind`, `'${entry.kind}' in the manifest, the model's layer is ${geo.kind}`);
    const ks = e.kernelShape;
    if (!Array.isArray(ks) || ks.join('x') !== geo.kernelShape.join('x')) {
      fail(`${lf}.kernelShape`, `${Array.isArray(ks) ? ks.join('x') : JSON.stringify(ks)} in the manifest, the model's layer has ${geo.kernelShape.join('x')}`);
    }
    for (const key of ['rows', 'outputs'] as const) {
      if (e[key] !== geo[key]) fail(`${lf}.${key}`, `${JSON.stringify(e[key])} in the manifest, the model's layer has ${geo[key]}`);
    }
    const folded = ps.foldedBatchNorm?.name ?? null;
    if (manifest.version >= 2 && (e.foldedBatchNorm ?? null) !== folded) {
      fail(`${lf}.foldedBatchNorm`, `${JSON.stringify(e.foldedBatchNorm ?? null)} in the manifest, but the model ${folded ? `folds BatchNormalization '${folded}' into it` : 'folds no BatchNormalization into it'}`);
    }
    let scheme: Scheme;
    try {
      scheme = checkScheme(e.scheme);
    } catch {
      fail(`${lf}.scheme`, `must be one of ${SCHEMES.join(', ')} (the mappings this version runs), got ${JSON.stringify(e.scheme)}`);
    }
    const wScale = num(e, 'wScale', fail, lf, { positive: true });
    const weightScale = num(e, 'weightScale', fail, lf, { positive: true });
    const gRefRaw = num(e, 'gRef', fail, lf, { nullable: true });
    const gRef = Number.isNaN(gRefRaw) ? null : gRefRaw;
    if (scheme! === 'reference' && gRef === null) fail(`${lf}.gRef`, 'the reference scheme needs gRef');
    const arrayRows = num(e, 'arrayRows', fail, lf, { integer: true, min: 1 });
    const arrayCols = num(e, 'arrayCols', fail, lf, { integer: true, min: 1 });
    const replicas = num(e, 'replicas', fail, lf, { integer: true, min: 1 });
    if (geo.kind === 'dense' && replicas !== 1) fail(`${lf}.replicas`, `a dense layer has one replica, got ${replicas}`);
    const inputEncoding = e.inputEncoding === 'signedBinary' ? 'signedBinary' : e.inputEncoding === 'real' ? 'real' : fail(`${lf}.inputEncoding`, `must be 'real' or 'signedBinary', got ${JSON.stringify(e.inputEncoding)}`);
    const neuron = e.neuron === 'threshold' || e.neuron === 'relu' || e.neuron === 'linear' ? (e.neuron as NeuronKind) : fail(`${lf}.neuron`, `must be threshold, relu or linear, got ${JSON.stringify(e.neuron)}`);
    const dpw = devicesPerWeight(scheme!);
    const totalCols = geo.outputs * dpw;
    const crossArrays: CrossbarArray[] = [];
    const perReplica: { rowStart: number; rows: number; colStart: number; cols: number; label: string }[][] = Array.from({ length: replicas }, () => []);
    entry.arrays.forEach((a, ai) => {
      const af = `${lf}.arrays[${ai}] '${a.id}'`;
      if (a.scheme !== scheme!) fail(`${af}.scheme`, `'${a.scheme}', the layer's scheme is '${scheme!}'`);
      if (Math.abs(a.weightScale - weightScale) > 1e-6 * weightScale) fail(`${af}.weightScale`, `${a.weightScale}, the layer's is ${weightScale}`);
      if (a.replica >= replicas) fail(`${af}.replica`, `${a.replica}, the layer has ${replicas} replica(s)`);
      if (a.rows > arrayRows || a.cols > arrayCols) fail(af, `${a.rows}x${a.cols} cells do not fit an array of ${arrayRows}x${arrayCols}`);
      let outs: number;
      let outStart: number;
      if (scheme! === 'differential') {
        if (a.cols % 2 !== 0 || a.colStart % 2 !== 0) fail(af, `differential pairs take two columns: cols ${a.cols} and colStart ${a.colStart} must be even`);
        outs = a.cols / 2;
        outStart = a.colStart / 2;
      } else {
        if (a.cols < 2) fail(af, `the reference scheme needs a weight column and the reference column, got ${a.cols} column(s)`);
        outs = a.cols - 1;
        outStart = a.colStart;
      }
      const tile: TileSpec = { rowTile: -1, colTile: -1, rowStart: a.rowStart, rows: a.rows, outStart, outs, colStart: a.colStart, cols: outs * dpw, arrayCols: a.cols };
      perReplica[a.replica].push({ rowStart: a.rowStart, rows: a.rows, colStart: a.colStart, cols: outs * dpw, label: `array '${a.id}'` });
      const target = arrays.get(a.files.target)!;
      const programmed = arrays.get(a.files.programmed)!;
      const rep = (a as Obj).programming as ProgrammingReport | undefined;
      crossArrays.push({ id: a.id, replica: a.replica, tile, files: a.files, target: target.data, programmed: programmed.data, report: rep && typeof rep === 'object' ? rep : null });
    });
    perReplica.forEach((rects, r) => {
      const problem = checkCoverage(rects, geo.rows, totalCols);
      if (problem) fail(`${lf}`, `replica ${r}: ${problem}`);
    });
    // Row and column tile indices, from the order of the starts.
    const rowStarts = [...new Set(crossArrays.map((a) => a.tile.rowStart))].sort((x, y) => x - y);
    const outStarts = [...new Set(crossArrays.map((a) => a.tile.outStart))].sort((x, y) => x - y);
    for (const a of crossArrays) {
      a.tile.rowTile = rowStarts.indexOf(a.tile.rowStart);
      a.tile.colTile = outStarts.indexOf(a.tile.outStart);
    }
    const { W, bias } = stepWeights(ps, geo);
    if (opts.checkTargets ?? true) {
      const expect = mapWeights(W, geo.rows, geo.outputs, device, scheme!, { wScale });
      const tol = 1e-3 * (device.gMax - device.gMin);
      for (const a of crossArrays) {
        const want = extractTile(expect.targets, totalCols, a.tile, expect.gRef ?? undefined);
        let bad = 0;
        let worst = 0;
        for (let i = 0; i < want.length; i++) {
          const d = Math.abs(want[i] - a.target[i]);
          if (d > tol) bad++;
          if (d > worst) worst = d;
        }
        if (bad > 0) {
          throw new FileFormatError(
            path.join(dir, a.files.target),
            `${bad} of ${want.length} target conductances differ from the mapping of the weights of layer '${ps.name}' in ${MODEL_SUBDIR}/ (by up to ${Number(worst.toPrecision(3))} uS): the model is not the one these arrays were mapped from`,
          );
        }
      }
    }
    let comparator: Comparator | null = null;
    if (e.comparator !== undefined && e.comparator !== null) {
      if (neuron !== 'threshold') fail(`${lf}.comparator`, `a ${neuron} neuron has no comparator (a 'threshold' neuron has)`);
      const cplan = planComparator(layersAfter(plan, idx), 0, geo.outputs, geo.activation);
      const signed = inputEncoding === 'signedBinary';
      const refUA = (c: Pick<Comparator, 'thresholds'>) => comparatorReferenceUA(c, W, geo.rows, geo.outputs, bias, signed, weightScale, device.read.voltage);
      comparator = readComparatorEntry(e.comparator, `${lf}.comparator`, cplan, refUA, fail, opts.checkTargets ?? true);
    }
    const rep = e.programming as LayerProgrammingReport | undefined;
    const report: LayerProgrammingReport =
      rep && typeof rep === 'object'
        ? rep
        : {
            ...combine(crossArrays.filter((a) => a.report).map((a) => a.report!)),
            layer: ps.name,
            kind: geo.kind,
            rows: geo.rows,
            outputs: geo.outputs,
            scheme: scheme!,
            arrays: crossArrays.length,
            replicas,
            seconds: 0,
          };
    const mapped: MappedLayer = {
      ...geo,
      name: ps.name,
      layerName: ps.layer.name,
      part: ps.part,
      absorbed: [...ps.absorbed],
      foldedBatchNorm: folded,
      scheme: scheme!,
      wScale,
      weightScale,
      gRef,
      arrayRows,
      arrayCols,
      replicas,
      inputEncoding: inputEncoding as InputEncoding,
      neuron,
      bias,
      inputQuantizer: ps.part ? null : quantizerOf(ps.layer),
      comparator,
      arrays: crossArrays,
      report,
    };
    if (inputEncodingOf(plan, idx) !== inputEncoding) {
      fail(`${lf}.inputEncoding`, `'${inputEncoding}', but the model's layer ${inputEncoding === 'signedBinary' ? 'does not take' : 'takes'} +-1 inputs`);
    }
    steps.push({ ...link, mapped });
    mappedLayers.push(mapped);
  });
  for (const entry of manifest.layers) {
    if (!used.has(entry.name)) fail(`layers[${manifest.layers.indexOf(entry)}]`, `layer '${entry.name}' is not a layer of the model in ${MODEL_SUBDIR}/`);
  }
  const scheme = (SCHEMES as readonly string[]).includes(mapping.scheme as string) ? (mapping.scheme as Scheme) : mappedLayers[0]?.scheme ?? 'differential';
  const intOr = (v: unknown, d: number) => (typeof v === 'number' && Number.isInteger(v) ? v : d);
  return {
    model,
    device,
    inputShape: model.inputs[0].shape.slice(1) as number[],
    steps,
    layers: mappedLayers,
    mapping: {
      arrayRows: intOr(mapping.arrayRows, mappedLayers[0]?.arrayRows ?? 128),
      arrayCols: intOr(mapping.arrayCols, mappedLayers[0]?.arrayCols ?? 128),
      replicas: intOr(mapping.replicas, 1),
      seed: intOr(mapping.seed, 0),
      scheme,
      fold,
    },
    runtime: null,
  };
}

/** Frees the model and the inference tensors of a network. */
export function disposeCrossbar(net: CrossbarNetwork): void {
  const rt = net.runtime as { dispose?: () => void } | null;
  rt?.dispose?.();
  net.runtime = null;
  net.model.dispose();
}
