// A trained model mapped onto crossbar arrays: which layers go onto arrays, their tiles and
// replicas, the programmed conductances, and the crossbar directory (XDIR) they are saved in.
//
// Every Conv2D/Dense-like layer (QuantConv2D, QuantDense, stock tf.layers conv2d and dense) is
// mapped: its weight matrix (the quantized kernel for the Quant layers) becomes target conductances
// (src/mapping/schemes.ts), tiled onto arrays of arrayRows x arrayCols (src/mapping/tiling.ts), and
// each array is programmed by write-verify (src/mapping/program.ts). A conv layer is mapped onto
// `replicas` groups of arrays (Yao et al.'s spatial parallelism), each with device instances of its
// own; a dense layer always has one. Every other layer (pooling, flatten, batch normalization,
// activations, ThresholdActivation, input quantizers) stays digital and runs as the tfjs layer
// itself; biases are added digitally after the arrays.
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
import { QuantConv2D } from '../../layers/quant_conv2d';
import { QuantDense } from '../../layers/quant_dense';
import { QuantActivation } from '../../layers/quant_activation';
import { ThresholdActivation } from '../../layers/bn_threshold';
import { getActivation } from '../../layers/activations';
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

export type MappedKind = 'conv2d' | 'dense';
/** How a mapped layer's input reaches the rows: 'signedBinary' = +-1 inputs applied as 0/1 (Chen et al.). */
export type InputEncoding = 'signedBinary' | 'real';
/** The neuron at the columns of a mapped layer. */
export type NeuronKind = 'threshold' | 'relu' | 'linear';

/** The shape of a mappable layer. */
export interface LayerGeometry {
  kind: MappedKind;
  className: string;
  /** [kh, kw, cin, cout] or [inputs, units]. */
  kernelShape: number[];
  /** Rows of the weight matrix (kh*kw*cin or inputs) and its outputs (cout or units). */
  rows: number;
  outputs: number;
  strides: [number, number];
  padding: 'same' | 'valid';
  /** Activation name (tf.layers names), applied after the bias. */
  activation: string;
  useBias: boolean;
}

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
  name: string;
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
  /** The mapping of a layer on arrays; null for a digital layer. */
  mapped: MappedLayer | null;
}

export interface MappingOptions {
  /** Array size; default 128 x 128. */
  arrayRows?: number;
  arrayCols?: number;
  /** Replica groups of every conv layer (spatial parallelism); default 1. */
  replicas?: number;
  /** Seed of the device instances and of write-verify; default 1. */
  seed?: number;
  /** Mapping scheme; default the device's defaultScheme. */
  scheme?: Scheme;
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
  mapping: { arrayRows: number; arrayCols: number; replicas: number; seed: number; scheme: Scheme };
  /** Inference state (tensors, calibration): owned by src/crossbar/inference.ts. */
  runtime: unknown;
}

// ---------------------------------------------------------------------------------------------
// Model analysis

const MAPPABLE_STOCK = ['Conv2D', 'Dense'];
/** Stock layers with weights that cannot go onto arrays here: refused rather than run in software. */
const UNMAPPABLE = /^(Conv1D|Conv3D|Conv2DTranspose|Conv3DTranspose|DepthwiseConv2D|SeparableConv2D|SeparableConv1D|LSTM|GRU|SimpleRNN|RNN|Bidirectional|TimeDistributed|Embedding|ConvLSTM2D|LocallyConnected1D|LocallyConnected2D)$/;
/** Layers that pass a +-1 value or a comparator decision through unchanged in kind. */
const PASS_THROUGH = new Set(['MaxPooling2D', 'MaxPool2D', 'GlobalMaxPooling2D', 'GlobalMaxPool2D', 'Flatten', 'Reshape', 'Dropout', 'SpatialDropout1D', 'SpatialDropout2D']);
const MONOTONE_ACTIVATIONS = new Set(['linear', 'relu', 'relu6', 'elu', 'selu', 'sigmoid', 'hardSigmoid', 'tanh', 'softplus', 'softsign']);
const SIGN_QUANTIZERS = new Set(['SteSign', 'ApproxSign']);

function pair(v: unknown, name: string): [number, number] {
  const p = typeof v === 'number' ? [v, v] : v;
  if (!Array.isArray(p) || p.length !== 2 || !p.every((n) => Number.isInteger(n) && n >= 1)) throw new UsageError(`${name}: expected a positive integer or a pair, got ${JSON.stringify(v)}`);
  return [p[0], p[1]];
}

function activationName(v: unknown): string {
  if (v == null) return 'linear';
  if (typeof v === 'string') return v;
  const o = v as { className?: string; getClassName?: () => string };
  const n = typeof o.getClassName === 'function' ? o.getClassName() : o.className;
  if (typeof n === 'string') return n.charAt(0).toLowerCase() + n.slice(1);
  return String(v);
}

/** The geometry of a mappable layer, or null for a digital one; throws for a layer that cannot be mapped. */
export function layerGeometry(layer: tf.layers.Layer): LayerGeometry | null {
  const className = layer.getClassName();
  if (layer instanceof QuantConv2D) {
    const cin = (layer.weights.find((w) => /kernel/.test(w.originalName))?.shape ?? [])[2];
    const shape = [layer.kernelSize[0], layer.kernelSize[1], cin as number, layer.filters];
    return {
      kind: 'conv2d',
      className,
      kernelShape: shape,
      rows: shape[0] * shape[1] * shape[2],
      outputs: shape[3],
      strides: [...layer.strides] as [number, number],
      padding: layer.padding,
      activation: layer.activation,
      useBias: layer.useBias,
    };
  }
  if (layer instanceof QuantDense) {
    const k = layer.weights.find((w) => /kernel/.test(w.originalName));
    const inDim = (k?.shape ?? [])[0] as number;
    return { kind: 'dense', className, kernelShape: [inDim, layer.units], rows: inDim, outputs: layer.units, strides: [1, 1], padding: 'valid', activation: layer.activation, useBias: layer.useBias };
  }
  if (MAPPABLE_STOCK.includes(className)) {
    const cfg = layer.getConfig() as Record<string, unknown>;
    const kernel = layer.weights.find((w) => /kernel/.test(w.originalName));
    if (!kernel) throw new UsageError(`layer ${layer.name} (${className}) is not built`);
    const shape = [...kernel.shape] as number[];
    const activation = activationName(cfg.activation);
    getActivation(activation, `${layer.name}.activation`);
    const useBias = cfg.useBias !== false;
    if (className === 'Dense') {
      return { kind: 'dense', className, kernelShape: shape, rows: shape[0], outputs: shape[1], strides: [1, 1], padding: 'valid', activation, useBias };
    }
    if (cfg.dataFormat !== undefined && cfg.dataFormat !== 'channelsLast') throw new UsageError(`layer ${layer.name}: only channelsLast convolutions can be mapped, got ${String(cfg.dataFormat)}`);
    const dil = pair(cfg.dilationRate ?? 1, `${layer.name}.dilationRate`);
    if (dil[0] !== 1 || dil[1] !== 1) throw new UsageError(`layer ${layer.name}: dilated convolutions cannot be mapped (dilationRate ${dil.join('x')})`);
    const padding = cfg.padding;
    if (padding !== 'same' && padding !== 'valid') throw new UsageError(`layer ${layer.name}: padding '${String(padding)}' cannot be mapped (same or valid)`);
    return {
      kind: 'conv2d',
      className,
      kernelShape: shape,
      rows: shape[0] * shape[1] * shape[2],
      outputs: shape[3],
      strides: pair(cfg.strides ?? 1, `${layer.name}.strides`),
      padding,
      activation,
      useBias,
    };
  }
  if (UNMAPPABLE.test(className)) throw new UsageError(`layer ${layer.name} (${className}) cannot be mapped onto crossbar arrays (mappable: QuantConv2D, QuantDense, Conv2D, Dense)`);
  if (layer instanceof tf.LayersModel) throw new UsageError(`layer ${layer.name} is a nested model: flatten it into one model before mapping`);
  return null;
}

/** The weight matrix (rows x outputs, conv rows channel-major) and the bias of a mappable layer. */
export function layerWeights(layer: tf.layers.Layer, geo: LayerGeometry): { W: Float32Array; bias: Float32Array | null } {
  let kernel: Float32Array;
  let bias: Float32Array | null = null;
  if (layer instanceof QuantKernelLayer) {
    const k = layer.quantizedKernel();
    kernel = k.dataSync().slice() as Float32Array;
    k.dispose();
    const b = layer.biasValues();
    if (b) {
      bias = b.dataSync().slice() as Float32Array;
      b.dispose();
    }
  } else {
    const k = layer.weights.find((w) => /kernel/.test(w.originalName))!;
    kernel = k.read().dataSync().slice() as Float32Array;
    const b = layer.weights.find((w) => /bias/.test(w.originalName));
    if (geo.useBias && b) bias = b.read().dataSync().slice() as Float32Array;
  }
  const W = geo.kind === 'conv2d' ? unrollConvKernel(kernel, geo.kernelShape) : kernel;
  return { W, bias };
}

/** The layers of a chain model (Sequential, or a functional model without branches), input layer left out. */
export function chainLayers(model: tf.LayersModel): tf.layers.Layer[] {
  const all = model.layers.filter((l) => l.getClassName() !== 'InputLayer');
  let prev: tf.layers.Layer | null = null;
  for (const l of all) {
    const nodes = (l as unknown as { inboundNodes?: { inboundLayers?: tf.layers.Layer[] }[] }).inboundNodes;
    if (Array.isArray(nodes) && nodes.length > 0) {
      const inbound = nodes[0].inboundLayers ?? [];
      const ok = nodes.length === 1 && inbound.length === 1 && (prev === null ? inbound[0].getClassName() === 'InputLayer' : inbound[0] === prev);
      if (!ok) throw new UsageError(`model ${model.name}: layer ${l.name} does not simply follow the layer before it; only chain models (Sequential, or functional without branches) can be mapped`);
    }
    prev = l;
  }
  if (model.inputs.length !== 1 || model.outputs.length !== 1) throw new UsageError(`model ${model.name}: only models with one input and one output can be mapped`);
  return all;
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

function neuronFor(device: DeviceConfig, layers: readonly tf.layers.Layer[], idx: number, geo: LayerGeometry): NeuronKind {
  if (device.neuron.kind === 'threshold' && followedByBinaryActivation(layers, idx, geo)) return 'threshold';
  if (device.neuron.kind === 'relu' && geo.activation === 'relu') return 'relu';
  return 'linear';
}

/** The comparator of a threshold neuron (the following BN + binary activation folded), or null with a line saying why. */
function comparatorOf(layers: readonly tf.layers.Layer[], idx: number, geo: LayerGeometry, onInfo?: (msg: string) => void): Comparator | null {
  const plan = planComparator(layers, idx, geo.outputs, geo.activation);
  if (!plan.comparator) onInfo?.(`comparator: ${layers[idx].name} keeps the digital decision on its analog sums: ${plan.reason}`);
  return plan.comparator;
}

/** The manifest field of a mapped layer's comparator: thresholds, flips and the reference currents (uA). */
function comparatorJson(net: CrossbarNetwork, l: MappedLayer): Record<string, unknown> {
  const layer = net.steps.find((s) => s.mapped === l)!.layer;
  const { W } = layerWeights(layer, l);
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
  const layers = chainLayers(model);
  const steps: NetworkStep[] = [];
  const mappedLayers: MappedLayer[] = [];
  const replicasOf = planReplicas(layers, replicas, scheme, arrayRows, arrayCols, opts.onInfo);
  const weightsOf = (layer: tf.layers.Layer) => {
    const g = layerGeometry(layer);
    return g ? g.rows * g.outputs * (replicasOf.get(layer) ?? 1) : 0;
  };
  const totalWeights = layers.reduce((n, l) => n + weightsOf(l), 0);
  let weightsDone = 0;
  layers.forEach((layer, idx) => {
    const geo = layerGeometry(layer);
    if (!geo) {
      steps.push({ layer, mapped: null });
      return;
    }
    const t0 = performance.now();
    const { W, bias } = layerWeights(layer, geo);
    const conductances = mapWeights(W, geo.rows, geo.outputs, device, scheme);
    const levelError = levelRoundingError(W, conductances);
    const tiles = tileLayer(geo.rows, geo.outputs, arrayRows, arrayCols, scheme);
    const totalCols = geo.outputs * devicesPerWeight(scheme);
    const targets = tiles.map((t) => extractTile(conductances.targets, totalCols, t, conductances.gRef ?? undefined));
    const nRep = replicasOf.get(layer) ?? 1;
    const arrays: CrossbarArray[] = [];
    const reports: ProgrammingReport[] = [];
    for (let r = 0; r < nRep; r++) {
      const prog = programArrays(targets, device, replicaRng(seed, layer.name, r), wvOpts);
      reports.push(prog.total);
      tiles.forEach((tile, k) => {
        const id = nRep > 1 ? `${layer.name}/r${r}/a${k}` : `${layer.name}/a${k}`;
        arrays.push({ id, replica: r, tile, files: arrayFileNames(id), target: targets[k], programmed: prog.programmed[k], report: prog.reports[k], writeVerifyPulses: prog.pulses[k] });
      });
    }
    const total = combine(reports);
    const neuron = neuronFor(device, layers, idx, geo);
    const mapped: MappedLayer = {
      ...geo,
      name: layer.name,
      scheme,
      wScale: conductances.wScale,
      weightScale: conductances.weightScale,
      gRef: conductances.gRef,
      arrayRows,
      arrayCols,
      replicas: nRep,
      inputEncoding: detectSignedBinaryInput(layers, idx) ? 'signedBinary' : 'real',
      neuron,
      bias,
      inputQuantizer: quantizerOf(layer),
      comparator: neuron === 'threshold' ? comparatorOf(layers, idx, geo, opts.onInfo) : null,
      arrays,
      report: {
        ...total,
        layer: layer.name,
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
    steps.push({ layer, mapped });
    mappedLayers.push(mapped);
    weightsDone += weightsOf(layer);
    opts.onProgress?.(weightsDone, totalWeights);
  });
  if (mappedLayers.length === 0) throw new UsageError(`model ${model.name} has no layer that can be mapped (QuantConv2D, QuantDense, Conv2D, Dense)`);
  return {
    model,
    device,
    inputShape: (model.inputs[0].shape.slice(1) as number[]),
    steps,
    layers: mappedLayers,
    mapping: { arrayRows, arrayCols, replicas, seed, scheme },
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
  layers: readonly tf.layers.Layer[],
  replicas: number,
  scheme: Scheme,
  arrayRows: number,
  arrayCols: number,
  onInfo?: (msg: string) => void,
): Map<tf.layers.Layer, number> {
  const out = new Map<tf.layers.Layer, number>();
  let cells = 0;
  let maxRows = 0;
  let maxCols = 0;
  for (const layer of layers) {
    const geo = layerGeometry(layer);
    if (!geo) continue;
    let n = 1;
    if (geo.kind === 'conv2d') {
      const shape = layer.outputShape as (number | null)[];
      const oh = typeof shape[1] === 'number' ? shape[1] : replicas;
      n = Math.min(replicas, Math.max(1, oh));
      if (n < replicas) onInfo?.(`replicas: ${layer.name} has ${oh} output rows, so it gets ${n} replica(s), not ${replicas}`);
    }
    out.set(layer, n);
    const cols = geo.outputs * devicesPerWeight(scheme) + (scheme === 'reference' ? 1 : 0);
    cells += n * geo.rows * cols;
    maxRows = Math.max(maxRows, geo.rows);
    maxCols = Math.max(maxCols, cols);
  }
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
      activation: l.activation,
      useBias: l.useBias,
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
      layers: net.steps.map((s) => ({ name: s.layer.name, className: s.layer.getClassName(), mapped: s.mapped !== null })),
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
  const layers = chainLayers(model);
  const byName = new Map<string, { entry: CrossbarLayerEntry; index: number }>();
  manifest.layers.forEach((entry, index) => byName.set(entry.name, { entry, index }));
  const steps: NetworkStep[] = [];
  const mappedLayers: MappedLayer[] = [];
  const used = new Set<string>();
  layers.forEach((layer, idx) => {
    const geo = layerGeometry(layer);
    const found = byName.get(layer.name);
    if (!geo) {
      if (found) fail(`layers[${found.index}]`, `layer '${layer.name}' is ${layer.getClassName()} in the model (${MODEL_SUBDIR}/), a digital layer: it has no arrays`);
      steps.push({ layer, mapped: null });
      return;
    }
    if (!found) fail('layers', `the model's ${geo.className} layer '${layer.name}' has no entry: the manifest does not belong to this model`);
    const { entry, index } = found!;
    used.add(layer.name);
    const lf = `layers[${index}] '${layer.name}'`;
    const e = entry as Obj;
    if (entry.kind !== geo.kind) fail(`${lf}.kind`, `'${entry.kind}' in the manifest, the model's layer is ${geo.kind}`);
    const ks = e.kernelShape;
    if (!Array.isArray(ks) || ks.join('x') !== geo.kernelShape.join('x')) {
      fail(`${lf}.kernelShape`, `${Array.isArray(ks) ? ks.join('x') : JSON.stringify(ks)} in the manifest, the model's layer has ${geo.kernelShape.join('x')}`);
    }
    for (const key of ['rows', 'outputs'] as const) {
      if (e[key] !== geo[key]) fail(`${lf}.${key}`, `${JSON.stringify(e[key])} in the manifest, the model's layer has ${geo[key]}`);
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
    const { W, bias } = layerWeights(layer, geo);
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
            `${bad} of ${want.length} target conductances differ from the mapping of the weights of layer '${layer.name}' in ${MODEL_SUBDIR}/ (by up to ${Number(worst.toPrecision(3))} uS): the model is not the one these arrays were mapped from`,
          );
        }
      }
    }
    let comparator: Comparator | null = null;
    if (e.comparator !== undefined && e.comparator !== null) {
      if (neuron !== 'threshold') fail(`${lf}.comparator`, `a ${neuron} neuron has no comparator (a 'threshold' neuron has)`);
      const plan = planComparator(layers, idx, geo.outputs, geo.activation);
      const signed = inputEncoding === 'signedBinary';
      const refUA = (c: Pick<Comparator, 'thresholds'>) => comparatorReferenceUA(c, W, geo.rows, geo.outputs, bias, signed, weightScale, device.read.voltage);
      comparator = readComparatorEntry(e.comparator, `${lf}.comparator`, plan, refUA, fail, opts.checkTargets ?? true);
    }
    const rep = e.programming as LayerProgrammingReport | undefined;
    const report: LayerProgrammingReport =
      rep && typeof rep === 'object'
        ? rep
        : {
            ...combine(crossArrays.filter((a) => a.report).map((a) => a.report!)),
            layer: layer.name,
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
      name: layer.name,
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
      inputQuantizer: quantizerOf(layer),
      comparator,
      arrays: crossArrays,
      report,
    };
    if (detectSignedBinaryInput(layers, idx) !== (inputEncoding === 'signedBinary')) {
      fail(`${lf}.inputEncoding`, `'${inputEncoding}', but the model's layer ${inputEncoding === 'signedBinary' ? 'does not take' : 'takes'} +-1 inputs`);
    }
    steps.push({ layer, mapped });
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
