// Keras model configs as tfjs 4.22 reads them. `tensorflowjs_converter --input_format keras`
// copies the Keras config into model.json as Keras wrote it; tfjs-layers reads the Keras 2 form,
// and not all of that. What differs, seen in real converter outputs:
//   Keras 2 (tf.keras 2.3+): regularizers as {"class_name": "L2"} or "L1" (tfjs knows only L1L2);
//     a BatchNormalization axis as a list ("axis": [3]), which tfjs takes but the BN fold does not.
//   Keras 3 (model.save("m.h5") or a .keras file, then the converter): InputLayer "batch_shape"
//     for "batch_input_shape"; dtype as a DTypePolicy object; inbound nodes as
//     {"args": [...__keras_tensor__...], "kwargs": {}}; input_layers/output_layers as one flat
//     [name, node, tensor] triple. tfjs 4.22 refuses all of these ("An InputLayer should be passed
//     either a `batchInputShape` or an `inputShape`", "Corrupted configuration").
// The translation writes the Keras 2 form of the same model. What tfjs would read but run
// differently from Keras is refused, naming the layer: a grouped convolution (tfjs has no
// `groups`), a ReLU with a threshold or negative slope (tfjs's has neither), a dilated
// DepthwiseConv2D (tfjs 4.22's layer drops the dilation), a quantized Keras 3 dtype policy.
import { FileFormatError } from './errors';

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
type Obj = { [k: string]: Json };

const isObj = (v: unknown): v is Obj => v != null && typeof v === 'object' && !Array.isArray(v);

/** A Keras config translated to the form tfjs 4.22 reads, with what was changed. */
export interface TfjsTopology {
  /** The topology to hand tfjs (a copy; the input is not changed). */
  topology: Obj;
  /** 2 or 3: the Keras format of the config (3 where its keras_version says so or it has Keras 3 fields). */
  kerasMajor: 2 | 3;
  /** One line per kind of change made, e.g. "inbound nodes from the Keras 3 form (12 layers)". */
  changes: string[];
}

function deepCopy<T extends Json>(v: T): T {
  return JSON.parse(JSON.stringify(v)) as T;
}

/** The dtype a Keras 3 DTypePolicy stands for, as tfjs names it. */
function policyDtype(p: Obj, where: () => string): string {
  const cfg = isObj(p.config) ? p.config : {};
  const name = typeof cfg.name === 'string' ? cfg.name : 'float32';
  // mixed precision keeps float32 variables (the weights the converter wrote); tfjs computes in float32
  if (name === 'mixed_float16' || name === 'mixed_bfloat16') return 'float32';
  if (name === 'float32' || name === 'int32' || name === 'bool') return name;
  throw new Error(`${where()}: dtype policy '${name}' (${String(p.class_name)}) cannot run in tfjs (float32 weights only)`);
}

/** A Keras 3 symbolic-tensor reference (`__keras_tensor__`) as a Keras 2 inbound entry, or null. */
function tensorRef(v: Json): [string, number, number] | null {
  if (!isObj(v) || v.class_name !== '__keras_tensor__' || !isObj(v.config)) return null;
  const h = v.config.keras_history;
  if (!Array.isArray(h) || typeof h[0] !== 'string') return null;
  return [h[0], typeof h[1] === 'number' ? h[1] : 0, typeof h[2] === 'number' ? h[2] : 0];
}

const hasTensor = (v: Json): boolean => tensorRef(v) !== null || (Array.isArray(v) ? v.some(hasTensor) : isObj(v) ? Object.values(v).some(hasTensor) : false);

/** Keras 3 inbound nodes ([{args, kwargs}]) as Keras 2 ones ([[[name, node, tensor, kwargs], ...]]). */
function keras2Nodes(nodes: Json[], where: () => string): Json[] {
  return nodes.map((node) => {
    if (Array.isArray(node)) return node; // already the Keras 2 form
    if (!isObj(node) || !Array.isArray(node.args)) throw new Error(`${where()}: inbound node ${JSON.stringify(node).slice(0, 120)} is neither the Keras 2 nor the Keras 3 form`);
    const kwargs = isObj(node.kwargs) ? node.kwargs : {};
    if (hasTensor(kwargs)) throw new Error(`${where()}: takes a tensor as a keyword argument (${Object.keys(kwargs).join(', ')}); only positional inputs can be read`);
    // args: [tensor] for one input, [[tensor, tensor]] for a merge layer (add, concatenate)
    const flat = node.args.length === 1 && Array.isArray(node.args[0]) ? node.args[0] : node.args;
    return flat.map((a) => {
      const r = tensorRef(a);
      if (!r) throw new Error(`${where()}: takes ${JSON.stringify(a).slice(0, 80)} as an input; only layer outputs can be read`);
      return [...r, kwargs];
    });
  });
}

/** [name, node, tensor] or [[name, node, tensor], ...] -> the list form. */
function refList(v: Json | undefined): Json | undefined {
  if (Array.isArray(v) && v.length === 3 && typeof v[0] === 'string') return [v];
  return v;
}

const REGULARIZERS: Record<string, 'l1' | 'l2'> = { L1: 'l1', L2: 'l2', l1: 'l1', l2: 'l2' };

/** Translate one layer config (and the models nested in it) in place. */
function translateLayer(layer: Obj, count: (change: string) => void): void {
  const className = String(layer.class_name);
  const cfg = isObj(layer.config) ? layer.config : null;
  const name = String(cfg?.name ?? layer.name ?? className);
  const where = () => `layer '${name}' (${className})`;
  if (Array.isArray(layer.inbound_nodes) && layer.inbound_nodes.some((n) => !Array.isArray(n))) {
    layer.inbound_nodes = keras2Nodes(layer.inbound_nodes, where);
    count('inbound nodes from the Keras 3 form');
  }
  if (!cfg) return;
  if (Array.isArray(cfg.layers)) {
    // a nested Sequential or Functional model: its own layers, inputs and outputs
    for (const l of cfg.layers) if (isObj(l)) translateLayer(l, count);
    // a Keras 3 Sequential built from build_input_shape alone: tfjs needs the first layer's shape
    const first = cfg.layers[0];
    if (className === 'Sequential' && Array.isArray(cfg.build_input_shape) && isObj(first) && first.class_name !== 'InputLayer' && isObj(first.config) && first.config.batch_input_shape == null) {
      first.config.batch_input_shape = cfg.build_input_shape;
      count('Sequential build_input_shape as its first layer\'s batch_input_shape');
    }
    for (const k of ['input_layers', 'output_layers']) {
      if (cfg[k] !== undefined) {
        const before = JSON.stringify(cfg[k]);
        cfg[k] = refList(cfg[k]) as Json;
        if (JSON.stringify(cfg[k]) !== before) count(`${k} as a list`);
      }
    }
  }
  if (isObj(cfg.dtype)) {
    cfg.dtype = policyDtype(cfg.dtype, where);
    count('dtype policies as dtype names');
  }
  if (className === 'InputLayer') {
    if (cfg.batch_shape !== undefined && cfg.batch_input_shape === undefined) {
      cfg.batch_input_shape = cfg.batch_shape;
      count('InputLayer batch_shape as batch_input_shape');
    }
    delete cfg.batch_shape;
    delete cfg.optional;
  }
  for (const [k, v] of Object.entries(cfg)) {
    if (!k.endsWith('_regularizer') || !isObj(v)) continue;
    const kind = REGULARIZERS[String(v.class_name)];
    if (!kind) continue;
    const rc = isObj(v.config) ? v.config : {};
    cfg[k] = { class_name: 'L1L2', config: { l1: kind === 'l1' ? Number(rc.l1 ?? 0.01) : 0, l2: kind === 'l2' ? Number(rc.l2 ?? 0.01) : 0 } };
    count('L1/L2 regularizers as L1L2');
  }
  if (className === 'BatchNormalization' && Array.isArray(cfg.axis) && cfg.axis.length === 1 && typeof cfg.axis[0] === 'number') {
    cfg.axis = cfg.axis[0];
    count('BatchNormalization axis [k] as k');
  }
  // What tfjs cannot build or would run differently from Keras: refused.
  if (/^(Lambda|TFOpLambda|SlicingOpLambda)$/.test(className)) {
    throw new Error(`${where()}: Python code in the model (a Lambda or a TensorFlow op applied to a Keras tensor) has no tfjs equivalent; write it as Keras layers`);
  }
  if (cfg.quantization_config != null) throw new Error(`${where()}: a Keras-quantized layer (quantization_config) cannot be read; convert the float model`);
  if (cfg.groups !== undefined && cfg.groups !== null && cfg.groups !== 1) {
    throw new Error(`${where()}: groups ${JSON.stringify(cfg.groups)} (a grouped convolution) has no tfjs equivalent`);
  }
  if (className === 'ReLU' && ((cfg.threshold != null && cfg.threshold !== 0) || (cfg.negative_slope != null && cfg.negative_slope !== 0))) {
    throw new Error(`${where()}: threshold ${String(cfg.threshold)}, negative_slope ${String(cfg.negative_slope)}: tfjs's ReLU has neither`);
  }
  if (className === 'DepthwiseConv2D') {
    const d = cfg.dilation_rate;
    const dil = typeof d === 'number' ? [d, d] : Array.isArray(d) ? d : [1, 1];
    if (dil.some((x) => x !== 1)) throw new Error(`${where()}: dilation_rate ${JSON.stringify(d)}: tfjs 4.22's DepthwiseConv2D runs without its dilation`);
  }
}

/** The Keras major version a topology was written by. */
function kerasMajorOf(topology: Obj, modelConfig: Obj): 2 | 3 {
  const v = topology.keras_version;
  if (typeof v === 'string' && /^3\./.test(v)) return 3;
  const text = JSON.stringify(modelConfig);
  return /"__keras_tensor__"|"batch_shape"|"DTypePolicy"/.test(text) ? 3 : 2;
}

/**
 * The model config of a model.json's modelTopology (Keras 2 or 3, as the tfjs converter or tfjs
 * wrote it) in the form tfjs 4.22 reads; throws a FileFormatError naming `file` and the layer for
 * what cannot be read.
 */
export function tfjsTopology(modelTopology: unknown, file: string): TfjsTopology {
  if (!isObj(modelTopology)) throw new FileFormatError(file, 'modelTopology is not an object');
  const topology = deepCopy(modelTopology);
  const modelConfig = isObj(topology.model_config) ? topology.model_config : topology;
  const className = modelConfig.class_name;
  if (typeof className !== 'string' || !isObj(modelConfig.config)) {
    throw new FileFormatError(file, 'modelTopology has no model config (class_name and config): not a layers model');
  }
  if (!['Sequential', 'Functional', 'Model'].includes(className)) {
    throw new FileFormatError(file, `model class '${className}' cannot be read (Sequential, Functional or Model; a subclassed Keras model has no config to rebuild it from)`);
  }
  const kerasMajor = kerasMajorOf(topology, modelConfig);
  const counts = new Map<string, number>();
  const count = (c: string) => counts.set(c, (counts.get(c) ?? 0) + 1);
  try {
    translateLayer(modelConfig, count);
  } catch (e) {
    throw new FileFormatError(file, (e as Error).message);
  }
  return { topology, kerasMajor, changes: [...counts].map(([c, n]) => `${c} (${n})`) };
}
