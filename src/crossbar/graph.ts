// The graph of a tfjs layers model as crossbar inference runs it: any functional model (a DAG:
// add, concatenate, branches) or a Sequential one, as a list of steps in topological order, each
// naming the steps whose outputs it takes.
//
// A step is one of:
//   mapped    a layer (or one part of a layer) whose weights go onto arrays: QuantConv2D,
//             QuantDense, Conv2D (strided, dilated), Dense, DepthwiseConv2D, and SeparableConv2D as
//             two steps, its depthwise part then its pointwise part (a 1x1 conv);
//   digital   every other layer, run in software as the tfjs layer itself (pooling, add,
//             concatenate, zero padding, flatten, dropout, activations, a BN that cannot fold);
//   absorbed  a layer whose work a mapped step does: a BatchNormalization right after a mapped
//             layer with a linear activation and float weights is folded into its weights and bias
//             (w' = w gamma / sqrt(var + eps), b' = (b - mean) gamma / sqrt(var + eps) + beta), and a
//             ReLU right after such a layer (or after its folded BN) becomes its activation, so the
//             neuron at the columns can do it. Both only where the mapped step's output goes
//             nowhere else. A layer whose kernel is quantized to levels (QuantConv2D/QuantDense with
//             a kernel quantizer) keeps its BN digital: folding would move its weights off the
//             device's levels (and a binary layer's BN + sign folds into comparators instead).
// Depthwise kernels are mapped as block-diagonal conv matrices: output column c*M + m (channel c,
// multiplier m) has cells only in the rows of input channel c, so each depthwise channel sits on
// its own columns; the other cells of its arrays hold weight 0.
import { tf } from '../tf';
import { QuantKernelLayer } from '../../layers/quant_base';
import { QuantConv2D } from '../../layers/quant_conv2d';
import { QuantDense } from '../../layers/quant_dense';
import { getActivation } from '../../layers/activations';
import { batchNormParams } from '../../layers/bn_threshold';
import { UsageError } from '../errors';
import { unrollConvKernel } from '../mapping/schemes';

export type MappedKind = 'conv2d' | 'dense';
/** Which part of a SeparableConv2D a mapped step holds (null: the whole layer). */
export type LayerPart = 'depthwise' | 'pointwise' | null;

/** The shape of a mappable layer (or part). */
export interface LayerGeometry {
  kind: MappedKind;
  className: string;
  /** [kh, kw, cin, cout] or [inputs, units]; a depthwise kernel as its block-diagonal conv kernel [kh, kw, C, C*M]. */
  kernelShape: number[];
  /** Rows of the weight matrix (kh*kw*cin or inputs) and its outputs (cout or units). */
  rows: number;
  outputs: number;
  strides: [number, number];
  padding: 'same' | 'valid';
  /** Dilation of a conv ([1, 1] for none and for dense layers). */
  dilation: [number, number];
  /** Activation name (tf.layers names), applied after the bias. */
  activation: string;
  useBias: boolean;
  /** 'blockDiagonal' for a depthwise kernel (each channel on its own columns), else 'dense'. */
  layout: 'dense' | 'blockDiagonal';
}

export interface GraphStep {
  layer: tf.layers.Layer;
  /** The steps whose outputs are this step's inputs, in the layer's input order; -1 is the model's input. */
  inputs: number[];
  /** The name of the step: the layer's, or `layer/depthwise`, `layer/pointwise` for the parts of a separable conv. */
  name: string;
  part: LayerPart;
  /** Its geometry when mapped; null for a digital or absorbed step. */
  geometry: LayerGeometry | null;
  /** The mapped step that does this step's work (a folded BN, a ReLU that became its activation); null if none. */
  absorbedBy: number | null;
  /** A mapped step: the BatchNormalization folded into its weights and bias, or null. */
  foldedBatchNorm: tf.layers.Layer | null;
  /** A mapped step: the layers it absorbed (folded BN, ReLU), in order. */
  absorbed: string[];
}

const MAPPABLE_STOCK = new Set(['Conv2D', 'Dense', 'DepthwiseConv2D', 'SeparableConv2D']);
/** Stock layers with weights that cannot go onto arrays here: refused rather than run in software. */
const UNMAPPABLE = /^(Conv1D|Conv3D|Conv2DTranspose|Conv3DTranspose|SeparableConv1D|LSTM|GRU|SimpleRNN|RNN|Bidirectional|TimeDistributed|Embedding|ConvLSTM2D|LocallyConnected1D|LocallyConnected2D)$/;
export const MAPPABLE_NAMES = 'QuantConv2D, QuantDense, Conv2D, Dense, DepthwiseConv2D, SeparableConv2D';

function pair(v: unknown, name: string): [number, number] {
  const p = typeof v === 'number' ? [v, v] : v;
  if (!Array.isArray(p) || p.length !== 2 || !p.every((n) => Number.isInteger(n) && n >= 1)) throw new UsageError(`${name}: expected a positive integer or a pair, got ${JSON.stringify(v)}`);
  return [p[0], p[1]];
}

export function activationName(v: unknown): string {
  if (v == null) return 'linear';
  if (typeof v === 'string') return v;
  const o = v as { className?: string; getClassName?: () => string };
  const n = typeof o.getClassName === 'function' ? o.getClassName() : o.className;
  if (typeof n === 'string') return n.charAt(0).toLowerCase() + n.slice(1);
  return String(v);
}

function weightNamed(layer: tf.layers.Layer, re: RegExp): tf.LayerVariable | undefined {
  return layer.weights.find((w) => re.test(w.originalName.split('/').pop() ?? w.originalName));
}

/** The geometries of a layer's mapped steps (two for a SeparableConv2D), [] for a digital layer; throws for a layer that cannot be mapped. */
export function layerGeometries(layer: tf.layers.Layer): { part: LayerPart; geometry: LayerGeometry }[] {
  const className = layer.getClassName();
  const base = { strides: [1, 1] as [number, number], padding: 'valid' as const, dilation: [1, 1] as [number, number], layout: 'dense' as const };
  if (layer instanceof QuantConv2D) {
    const cin = (weightNamed(layer, /kernel/)?.shape ?? [])[2];
    const shape = [layer.kernelSize[0], layer.kernelSize[1], cin as number, layer.filters];
    return [{ part: null, geometry: { ...base, kind: 'conv2d', className, kernelShape: shape, rows: shape[0] * shape[1] * shape[2], outputs: shape[3], strides: [...layer.strides] as [number, number], padding: layer.padding, activation: layer.activation, useBias: layer.useBias } }];
  }
  if (layer instanceof QuantDense) {
    const inDim = (weightNamed(layer, /kernel/)?.shape ?? [])[0] as number;
    return [{ part: null, geometry: { ...base, kind: 'dense', className, kernelShape: [inDim, layer.units], rows: inDim, outputs: layer.units, activation: layer.activation, useBias: layer.useBias } }];
  }
  if (MAPPABLE_STOCK.has(className)) {
    const cfg = layer.getConfig() as Record<string, unknown>;
    if (layer.weights.length === 0) throw new UsageError(`layer ${layer.name} (${className}) is not built`);
    const activation = activationName(cfg.activation);
    getActivation(activation, `${layer.name}.activation`);
    const useBias = cfg.useBias !== false;
    if (className === 'Dense') {
      const shape = [...weightNamed(layer, /^kernel/)!.shape] as number[];
      return [{ part: null, geometry: { ...base, kind: 'dense', className, kernelShape: shape, rows: shape[0], outputs: shape[1], activation, useBias } }];
    }
    if (cfg.dataFormat !== undefined && cfg.dataFormat !== 'channelsLast') throw new UsageError(`layer ${layer.name}: only channelsLast convolutions can be mapped, got ${String(cfg.dataFormat)}`);
    const dilation = pair(cfg.dilationRate ?? 1, `${layer.name}.dilationRate`);
    const strides = pair(cfg.strides ?? 1, `${layer.name}.strides`);
    if ((dilation[0] > 1 || dilation[1] > 1) && (strides[0] > 1 || strides[1] > 1)) throw new UsageError(`layer ${layer.name}: a convolution both strided and dilated cannot be mapped (tfjs runs neither)`);
    const padding = cfg.padding;
    if (padding !== 'same' && padding !== 'valid') throw new UsageError(`layer ${layer.name}: padding '${String(padding)}' cannot be mapped (same or valid)`);
    const conv = { ...base, kind: 'conv2d' as const, className, strides, padding: padding as 'same' | 'valid', dilation };
    if (className === 'Conv2D') {
      const shape = [...weightNamed(layer, /^kernel/)!.shape] as number[];
      return [{ part: null, geometry: { ...conv, kernelShape: shape, rows: shape[0] * shape[1] * shape[2], outputs: shape[3], activation, useBias } }];
    }
    const dw = [...(weightNamed(layer, /^depthwise_kernel/) ?? weightNamed(layer, /depthwise/))!.shape] as number[];
    const [kh, kw, C, M] = dw;
    const dwGeo: LayerGeometry = { ...conv, layout: 'blockDiagonal', kernelShape: [kh, kw, C, C * M], rows: kh * kw * C, outputs: C * M, activation, useBias };
    // tfjs 4.22's DepthwiseConv2D layer runs its op without its dilationRate (SeparableConv2D
    // passes it): the arrays compute what the layer computes.
    if (className === 'DepthwiseConv2D') return [{ part: null, geometry: { ...dwGeo, dilation: [1, 1] } }];
    const pw = [...weightNamed(layer, /^pointwise_kernel/)!.shape] as number[];
    return [
      { part: 'depthwise', geometry: { ...dwGeo, activation: 'linear', useBias: false } },
      { part: 'pointwise', geometry: { ...base, kind: 'conv2d', className, kernelShape: pw, rows: pw[2], outputs: pw[3], activation, useBias } },
    ];
  }
  if (UNMAPPABLE.test(className)) throw new UsageError(`layer ${layer.name} (${className}) cannot be mapped onto crossbar arrays (mappable: ${MAPPABLE_NAMES})`);
  if (layer instanceof tf.LayersModel) throw new UsageError(`layer ${layer.name} is a nested model: flatten it into one model before mapping`);
  return [];
}

interface InboundNode {
  inboundLayers: tf.layers.Layer[];
  tensorIndices?: number[];
}

/** The model's own node keys (tfjs Container.containerNodes), or null where the model does not expose them. */
function containerNodeKeys(model: tf.LayersModel): Set<string> | null {
  const m = model as unknown as { containerNodes?: Set<string>; model?: { containerNodes?: Set<string> } };
  // (a Sequential keeps an empty set of its own: its layers' single nodes are its nodes)
  for (const k of [m.containerNodes, m.model?.containerNodes]) if (k && k.size > 0) return k;
  return null;
}

/**
 * The layers of a model in topological order with the indices of their inputs (-1: the model's
 * input). Refuses what crossbar inference cannot run: several inputs or outputs, a layer applied
 * more than once, nested models, layers with several outputs.
 */
export function modelGraph(model: tf.LayersModel): { layer: tf.layers.Layer; inputs: number[] }[] {
  if (model.inputs.length !== 1 || model.outputs.length !== 1) throw new UsageError(`model ${model.name}: only models with one input and one output can be mapped (it has ${model.inputs.length} and ${model.outputs.length})`);
  const all = model.layers.filter((l) => l.getClassName() !== 'InputLayer');
  const keys = containerNodeKeys(model);
  const inboundOf = new Map<tf.layers.Layer, tf.layers.Layer[]>();
  for (const l of all) {
    if (l instanceof tf.LayersModel) throw new UsageError(`layer ${l.name} is a nested model: flatten it into one model before mapping`);
    const nodes = ((l as unknown as { inboundNodes?: InboundNode[] }).inboundNodes ?? []).filter((_, i) => !keys || keys.has(`${l.name}_ib-${i}`));
    if (nodes.length !== 1) throw new UsageError(`model ${model.name}: layer ${l.name} is applied ${nodes.length} times; a layer shared between places cannot be mapped (give each place its own layer)`);
    const n = nodes[0];
    if ((n.tensorIndices ?? []).some((t) => t !== 0)) throw new UsageError(`model ${model.name}: layer ${l.name} takes the second output of a layer; only layers with one output can be mapped`);
    inboundOf.set(l, n.inboundLayers ?? []);
  }
  // Topological order, keeping the model's order where it allows (it normally is one already).
  const placed = new Map<tf.layers.Layer, number>();
  const order: { layer: tf.layers.Layer; inputs: number[] }[] = [];
  let pending = [...all];
  while (pending.length) {
    const rest: tf.layers.Layer[] = [];
    for (const l of pending) {
      const ins = inboundOf.get(l)!;
      if (ins.every((p) => p.getClassName() === 'InputLayer' || placed.has(p))) {
        placed.set(l, order.length);
        order.push({ layer: l, inputs: ins.map((p) => (p.getClassName() === 'InputLayer' ? -1 : placed.get(p)!)) });
      } else rest.push(l);
    }
    if (rest.length === pending.length) throw new UsageError(`model ${model.name}: layers ${rest.map((l) => l.name).join(', ')} take inputs from outside the model`);
    pending = rest;
  }
  const outLayer = (model.outputs[0] as unknown as { sourceLayer: tf.layers.Layer }).sourceLayer;
  if (order.length && order[order.length - 1].layer !== outLayer) {
    const i = order.findIndex((o) => o.layer === outLayer);
    if (i < 0) throw new UsageError(`model ${model.name}: its output layer ${outLayer.name} is not among its layers`);
    // Move the output layer last (only layers that do not feed it can follow it; none should).
    throw new UsageError(`model ${model.name}: layers after its output layer ${outLayer.name} (${order.slice(i + 1).map((o) => o.layer.name).join(', ')}) feed nothing`);
  }
  return order;
}

function isFoldableInto(layer: tf.layers.Layer): boolean {
  // Weights on the device's levels stay on them: no folding into a quantized kernel.
  if (layer instanceof QuantKernelLayer) return layer.kernelQuantizer === null || layer.kernelQuantizer.levels === null;
  return true;
}

function isPlainRelu(layer: tf.layers.Layer): boolean {
  const cn = layer.getClassName();
  const cfg = layer.getConfig() as Record<string, unknown>;
  if (cn === 'Activation') return activationName(cfg.activation) === 'relu';
  if (cn === 'ReLU') return cfg.maxValue == null;
  return false;
}

/**
 * The steps crossbar inference runs for `model`: the graph with separable convs split in two, BNs
 * folded and ReLUs absorbed where they can be (see the top of this file).
 */
export function planSteps(model: tf.LayersModel, opts: { absorb?: boolean } = {}): GraphStep[] {
  const graph = modelGraph(model);
  const steps: GraphStep[] = [];
  const outOf: number[] = []; // graph index -> the step holding that layer's output
  graph.forEach(({ layer, inputs }, gi) => {
    const ins = inputs.map((i) => (i < 0 ? -1 : outOf[i]));
    const geos = layerGeometries(layer);
    if (geos.length === 0) {
      steps.push({ layer, inputs: ins, name: layer.name, part: null, geometry: null, absorbedBy: null, foldedBatchNorm: null, absorbed: [] });
    } else {
      let prev = ins;
      for (const { part, geometry } of geos) {
        steps.push({ layer, inputs: prev, name: part ? `${layer.name}/${part}` : layer.name, part, geometry, absorbedBy: null, foldedBatchNorm: null, absorbed: [] });
        prev = [steps.length - 1];
      }
    }
    outOf[gi] = steps.length - 1;
  });
  if (opts.absorb === false) return steps;
  const consumers = (i: number) => steps.filter((s) => s.inputs.includes(i)).length;
  steps.forEach((s) => {
    if (s.geometry || s.inputs.length !== 1 || s.inputs[0] < 0) return;
    const p = s.inputs[0];
    const owner = steps[p].absorbedBy ?? p;
    const o = steps[owner];
    if (!o.geometry || consumers(p) !== 1 || o.geometry.activation !== 'linear') return;
    const cn = s.layer.getClassName();
    if (cn === 'BatchNormalization' && !o.foldedBatchNorm && o.absorbed.length === 0 && isFoldableInto(o.layer)) {
      try {
        batchNormParams(s.layer as Parameters<typeof batchNormParams>[0]);
      } catch {
        return; // a BN over another axis, or not built: stays digital
      }
      o.foldedBatchNorm = s.layer;
      o.absorbed.push(s.layer.name);
      // The folded BN gives the layer a bias (beta - mean gamma / sd) where it had none.
      o.geometry = { ...o.geometry, useBias: true };
      s.absorbedBy = owner;
    } else if (isPlainRelu(s.layer)) {
      o.geometry = { ...o.geometry, activation: 'relu' };
      o.absorbed.push(s.layer.name);
      s.absorbedBy = owner;
    }
  });
  return steps;
}

/**
 * The weight matrix (rows x outputs; conv rows channel-major) and the bias of a mapped step: the
 * quantized kernel of the Quant layers, a depthwise kernel as its block-diagonal matrix, and a
 * folded BatchNormalization applied to both.
 */
export function stepWeights(step: Pick<GraphStep, 'layer' | 'part' | 'foldedBatchNorm'>, geo: LayerGeometry): { W: Float32Array; bias: Float32Array | null } {
  const layer = step.layer;
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
    const read = (re: RegExp) => weightNamed(layer, re)!.read().dataSync().slice() as Float32Array;
    if (geo.layout === 'blockDiagonal') kernel = blockDiagonal(read(/depthwise/), geo.kernelShape);
    else kernel = read(step.part === 'pointwise' ? /^pointwise_kernel/ : /^kernel/);
    const b = weightNamed(layer, /^bias/);
    if (step.part !== 'depthwise' && geo.useBias && b) bias = b.read().dataSync().slice() as Float32Array;
  }
  const W = geo.kind === 'conv2d' ? unrollConvKernel(kernel, geo.kernelShape) : kernel;
  if (step.foldedBatchNorm) bias = foldBatchNorm(W, bias, geo.rows, geo.outputs, step.foldedBatchNorm);
  return { W, bias };
}

/** A depthwise kernel [kh, kw, C, M] as the conv kernel [kh, kw, C, C*M] that is zero off its channel blocks. */
export function blockDiagonal(dw: Float32Array, shape: readonly number[]): Float32Array {
  const [kh, kw, C, CM] = shape;
  const M = CM / C;
  if (dw.length !== kh * kw * C * M) throw new RangeError(`depthwise kernel of ${dw.length} values does not fit ${kh}x${kw}x${C}x${M}`);
  const out = new Float32Array(kh * kw * C * CM);
  for (let t = 0; t < kh * kw; t++) for (let c = 0; c < C; c++) for (let m = 0; m < M; m++) out[(t * C + c) * CM + c * M + m] = dw[(t * C + c) * M + m];
  return out;
}

/** Folds a BN into the columns of W (in place) and returns the new bias: w gamma / sd, (b - mean) gamma / sd + beta. */
export function foldBatchNorm(W: Float32Array, bias: Float32Array | null, rows: number, outputs: number, bn: tf.layers.Layer): Float32Array {
  const p = batchNormParams(bn as Parameters<typeof batchNormParams>[0]);
  if (p.movingMean.length !== outputs) throw new UsageError(`layer ${bn.name}: ${p.movingMean.length} channels after a layer of ${outputs} outputs`);
  const out = new Float32Array(outputs);
  for (let o = 0; o < outputs; o++) {
    const s = (p.gamma ? p.gamma[o] : 1) / Math.sqrt(p.movingVariance[o] + p.epsilon);
    for (let r = 0; r < rows; r++) W[r * outputs + o] *= s;
    out[o] = ((bias ? bias[o] : 0) - p.movingMean[o]) * s + (p.beta ? p.beta[o] : 0);
  }
  return out;
}
