// Writes folders as `tensorflowjs_converter --input_format keras` writes them (no TensorFlow
// here): model.json with the Keras config as Keras 2 or Keras 3 serializes it, weights named,
// ordered, grouped, sharded and quantized as the converter does (tfjs-converter's
// keras_h5_conversion.py, write_weights.py, quantization.py). The model and its weights come from
// a tfjs model built with Keras's default layer names; its layer configs are written out here in
// Keras's own keys (not tfjs's toJSON), one template per layer class.
//
// Variants (what real converter outputs look like):
//   'keras2'      TF 2.4-2.12 .h5: class_name Functional/Sequential, inbound nodes
//                 [[["conv2d", 0, 0, {}]]], BN "axis": [3], regularizers {"class_name": "L2"},
//                 weights "conv2d/kernel" in h5 order (layers alphabetically).
//   'keras2.15'   as keras2, nested objects with "module" and "registered_name" (Keras 2.13+).
//   'keras3-h5'   Keras 3 model.save("m.h5"): "batch_shape", DTypePolicy dtypes, inbound nodes
//                 {"args": [__keras_tensor__], "kwargs": {}}, flat output_layers, build_config;
//                 variable paths as weight names (a Sequential's with the model name first), a
//                 DepthwiseConv2D's kernel named "kernel".
//   'keras3-keras' Keras 3 .keras file: config.json without "module"/"registered_name" (the
//                 converter drops them), no backend; weights "layers/conv2d/vars/0".
import * as fs from 'fs';
import * as path from 'path';
import { tf } from '../src/tf';

export type KerasVariant = 'keras2' | 'keras2.15' | 'keras3-h5' | 'keras3-keras';
export type QuantDtype = 'uint8' | 'uint16' | 'float16';

export interface ConverterFolderOptions {
  variant: KerasVariant;
  /** Bytes per shard (the converter's --weight_shard_size_bytes; default 4 MiB as the converter's). */
  shardBytes?: number;
  /** One weight group per layer (the converter's --split_weights_by_layer). */
  splitByLayer?: boolean;
  /** The quantization of a weight (--quantize_uint8/uint16/float16 patterns), null: float32. */
  quantize?: (name: string) => QuantDtype | null;
  /** A regularizer on the first Conv2D's kernel, as Keras serializes an L2(1e-4). */
  l2OnFirstConv?: boolean;
  /** 'keras3-keras': the optimizer state a trained model's .keras file holds (optimizer/vars/<i>: iteration, learning rate, Adam slots), which the converter copies along. */
  optimizerState?: boolean;
}

type J = null | boolean | number | string | J[] | { [k: string]: J };

/** JSON as Python's json.dump writes it (", " and ": " separators), as the converter writes model.json. */
export function pythonJson(v: J): string {
  if (Array.isArray(v)) return `[${v.map(pythonJson).join(', ')}]`;
  if (v !== null && typeof v === 'object') return `{${Object.entries(v).map(([k, x]) => `${JSON.stringify(k)}: ${pythonJson(x)}`).join(', ')}}`;
  // Python's repr of a float: exponent form below 1e-4 (9.999999747378752e-05), JS's below 1e-6
  if (typeof v === 'number' && v !== 0 && Math.abs(v) < 1e-4) return v.toExponential().replace(/e([+-])(\d)$/, 'e$10$2');
  return JSON.stringify(v);
}

const KERAS_VERSION: Record<KerasVariant, string> = { keras2: '2.11.0', 'keras2.15': '2.15.0', 'keras3-h5': '3.6.0', 'keras3-keras': '3.6.0' };
const CONVERTER: Record<KerasVariant, string> = { keras2: 'TensorFlow.js Converter v4.2.0', 'keras2.15': 'TensorFlow.js Converter v4.17.0', 'keras3-h5': 'TensorFlow.js Converter v4.22.0', 'keras3-keras': 'TensorFlow.js Converter v4.22.0' };

const snake = (s: string) => s.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);

/** float32 -> IEEE half (round to nearest even, as numpy's astype(float16)). */
export function toHalf(x: number): number {
  const f = new Float32Array([x]);
  const u = new Uint32Array(f.buffer)[0];
  const sign = (u >>> 16) & 0x8000;
  const exp = (u >>> 23) & 0xff;
  let mant = u & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  let e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    let h = mant >>> shift;
    const rem = mant & ((1 << shift) - 1);
    const half = 1 << (shift - 1);
    if (rem > half || (rem === half && h & 1)) h++;
    return sign | h;
  }
  let h = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && h & 1)) h++;
  return sign | h;
}

/** IEEE half -> number (exact). */
export function fromHalf(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >>> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0) return s * m * 2 ** -24;
  if (e === 0x1f) return m ? NaN : s * Infinity;
  return s * (1 + m / 1024) * 2 ** (e - 15);
}

/** numpy's round (half to even). */
const roundEven = (x: number) => {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
};

/** The converter's affine quantization (quantization.py: zero point nudged onto an integer). */
export function quantizeAffine(data: Float32Array, dtype: 'uint8' | 'uint16'): { q: Uint8Array | Uint16Array; min: number; scale: number } {
  const qmax = dtype === 'uint8' ? 255 : 65535;
  const q = dtype === 'uint8' ? new Uint8Array(data.length) : new Uint16Array(data.length);
  let lo = Infinity;
  let hi = -Infinity;
  for (const v of data) {
    lo = Math.min(lo, v);
    hi = Math.max(hi, v);
  }
  if (lo === hi) return { q, min: lo, scale: 1 };
  const scale = (hi - lo) / qmax;
  let nmin = lo;
  let nmax = hi;
  if (lo <= 0 && 0 <= hi) {
    const zero = roundEven(-lo / scale);
    nmin = -zero * scale;
    nmax = qmax * scale + nmin;
  }
  for (let i = 0; i < data.length; i++) q[i] = roundEven((Math.min(Math.max(data[i], nmin), nmax) - nmin) / scale);
  return { q, min: nmin, scale };
}

/** The values tfjs decodes a quantized weight to (io_utils decodeWeight: q * scale + min, or the half). */
export function dequantized(data: Float32Array, dtype: QuantDtype): Float32Array {
  if (dtype === 'float16') return Float32Array.from(data, (v) => fromHalf(toHalf(v)));
  const { q, min, scale } = quantizeAffine(data, dtype);
  return Float32Array.from(q, (v) => v * scale + min);
}

interface Ctx {
  variant: KerasVariant;
  keras3: boolean;
  l2: boolean;
  firstConv: string | null;
}

function initializer(ctx: Ctx, className: string, config: J = {}): J {
  const seedCfg = ['GlorotUniform', 'HeNormal'].includes(className) ? { seed: null } : config;
  if (ctx.variant === 'keras2') return { class_name: className, config: seedCfg };
  if (ctx.variant === 'keras3-keras') return { class_name: className, config: seedCfg };
  return { module: 'keras.initializers', class_name: className, config: seedCfg, registered_name: null };
}

function dtypeOf(ctx: Ctx): J {
  if (!ctx.keras3) return 'float32';
  const p: { [k: string]: J } = { class_name: 'DTypePolicy', config: { name: 'float32' } };
  return ctx.variant === 'keras3-h5' ? { module: 'keras', ...p, registered_name: null } : p;
}

const pair = (v: unknown): J => (Array.isArray(v) ? (v as number[]) : [v as number, v as number]);

/** The Keras config of a tfjs layer, in the keys and order Keras writes them. */
function kerasConfig(layer: tf.layers.Layer, ctx: Ctx): { className: string; config: { [k: string]: J } } {
  const cn = layer.getClassName();
  const c = layer.getConfig() as Record<string, unknown>;
  const base: { [k: string]: J } = { name: layer.name, trainable: true, dtype: dtypeOf(ctx) };
  const act = (a: unknown) => snake(String(a ?? 'linear'));
  const regs = (keys: string[]) => Object.fromEntries(keys.map((k) => [k, null])) as { [k: string]: J };
  const convCommon = (): { [k: string]: J } => ({
    kernel_size: pair(c.kernelSize),
    strides: pair(c.strides),
    padding: String(c.padding),
    data_format: 'channels_last',
    dilation_rate: pair(c.dilationRate ?? 1),
    groups: 1,
    activation: act(c.activation),
    use_bias: c.useBias !== false,
  });
  switch (cn) {
    case 'Conv2D': {
      const l2 = ctx.l2 && ctx.firstConv === layer.name;
      const reg: J = l2 ? (ctx.variant === 'keras2' ? { class_name: 'L2', config: { l2: 9.999999747378752e-5 } } : { module: 'keras.regularizers', class_name: 'L2', config: { l2: 9.999999747378752e-5 }, registered_name: null }) : null;
      return { className: cn, config: { ...base, filters: Number(c.filters), ...convCommon(), kernel_initializer: initializer(ctx, 'GlorotUniform'), bias_initializer: initializer(ctx, 'Zeros'), kernel_regularizer: reg, ...regs(['bias_regularizer', 'activity_regularizer', 'kernel_constraint', 'bias_constraint']) } };
    }
    case 'DepthwiseConv2D':
      return { className: cn, config: { ...base, ...convCommon(), bias_initializer: initializer(ctx, 'Zeros'), ...regs(['bias_regularizer', 'activity_regularizer', 'bias_constraint']), depth_multiplier: Number(c.depthMultiplier), depthwise_initializer: initializer(ctx, 'GlorotUniform'), ...regs(['depthwise_regularizer', 'depthwise_constraint']) } };
    case 'SeparableConv2D':
      // (tfjs 4.22's getConfig of a SeparableConv2D leaves its depthMultiplier out)
      return { className: cn, config: { ...base, filters: Number(c.filters), ...convCommon(), bias_initializer: initializer(ctx, 'Zeros'), ...regs(['bias_regularizer', 'activity_regularizer', 'bias_constraint']), depth_multiplier: (layer as unknown as { depthMultiplier: number }).depthMultiplier, depthwise_initializer: initializer(ctx, 'GlorotUniform'), pointwise_initializer: initializer(ctx, 'GlorotUniform'), ...regs(['depthwise_regularizer', 'pointwise_regularizer', 'depthwise_constraint', 'pointwise_constraint']) } };
    case 'BatchNormalization':
      return {
        className: cn,
        config: {
          ...base,
          axis: ctx.keras3 ? -1 : [3],
          momentum: Number(c.momentum),
          epsilon: Number(c.epsilon),
          center: true,
          scale: true,
          beta_initializer: initializer(ctx, 'Zeros'),
          gamma_initializer: initializer(ctx, 'Ones'),
          moving_mean_initializer: initializer(ctx, 'Zeros'),
          moving_variance_initializer: initializer(ctx, 'Ones'),
          ...regs(['beta_regularizer', 'gamma_regularizer', 'beta_constraint', 'gamma_constraint']),
          ...(ctx.keras3 ? { synchronized: false } : {}),
        },
      };
    case 'ReLU':
      return { className: cn, config: { ...base, max_value: null, negative_slope: 0, threshold: 0 } };
    case 'Activation':
      return { className: cn, config: { ...base, activation: act(c.activation) } };
    case 'Add':
      return { className: cn, config: { ...base } };
    case 'GlobalAveragePooling2D':
      return { className: cn, config: { ...base, data_format: 'channels_last', keepdims: false } };
    case 'MaxPooling2D':
      return { className: cn, config: { ...base, pool_size: pair(c.poolSize), padding: String(c.padding), strides: pair(c.strides), data_format: 'channels_last' } };
    case 'Flatten':
      return { className: cn, config: { ...base, data_format: 'channels_last' } };
    case 'Dropout':
      return { className: cn, config: { ...base, rate: Number(c.rate), noise_shape: null, seed: null } };
    case 'Dense':
      return { className: cn, config: { ...base, units: Number(c.units), activation: act(c.activation), use_bias: c.useBias !== false, kernel_initializer: initializer(ctx, 'GlorotUniform'), bias_initializer: initializer(ctx, 'Zeros'), ...regs(['kernel_regularizer', 'bias_regularizer', 'activity_regularizer', 'kernel_constraint', 'bias_constraint']), ...(ctx.keras3 ? { lora_rank: null } : {}) } };
    default:
      throw new Error(`fixture: no Keras template for ${cn}`);
  }
}

function inputLayerEntry(name: string, shape: number[], ctx: Ctx, functional: boolean): { [k: string]: J } {
  const cfg: { [k: string]: J } = ctx.keras3 ? { batch_shape: [null, ...shape], dtype: 'float32', sparse: false, name } : { batch_input_shape: [null, ...shape], dtype: 'float32', sparse: false, ragged: false, name };
  const e: { [k: string]: J } = ctx.variant === 'keras3-h5' ? { module: 'keras.layers', class_name: 'InputLayer', config: cfg, registered_name: null } : { class_name: 'InputLayer', config: cfg };
  return functional ? { ...e, name, inbound_nodes: [] } : e;
}

const kerasTensor = (name: string, shape: J): J => ({ class_name: '__keras_tensor__', config: { shape, dtype: 'float32', keras_history: [name, 0, 0] } });

/** The Keras variable name of a tfjs weight ('conv2d/kernel' style, before the variant's naming). */
function kerasWeightName(layer: tf.layers.Layer, w: tf.LayerVariable, ctx: Ctx): string {
  const short = w.originalName.split('/').pop()!;
  // Keras 3 names a DepthwiseConv2D's kernel 'kernel'
  const name = ctx.keras3 && layer.getClassName() === 'DepthwiseConv2D' && short === 'depthwise_kernel' ? 'kernel' : short;
  return `${layer.name}/${name}`;
}

/** Writes `model` as the converter would have converted the Keras model; returns the manifest's weight names in file order. */
export function writeConverterFolder(model: tf.LayersModel, dir: string, opts: ConverterFolderOptions): string[] {
  const keras3 = opts.variant.startsWith('keras3');
  const isSequential = model.getClassName() === 'Sequential';
  const layers = model.layers.filter((l) => l.getClassName() !== 'InputLayer');
  const ctx: Ctx = { variant: opts.variant, keras3, l2: !!opts.l2OnFirstConv, firstConv: layers.find((l) => l.getClassName() === 'Conv2D')?.name ?? null };
  const inputShape = model.inputs[0].shape.slice(1) as number[];
  const inputName = isSequential ? (keras3 ? 'input_layer' : `${layers[0].name}_input`) : model.layers[0].name;
  const entries: J[] = [inputLayerEntry(inputName, inputShape, ctx, !isSequential)];
  for (const l of layers) {
    const { className, config } = kerasConfig(l, ctx);
    const e: { [k: string]: J } = ctx.variant === 'keras3-h5' ? { module: 'keras.layers', class_name: className, config, registered_name: null } : { class_name: className, config };
    if (keras3) {
      const input = l.input as tf.SymbolicTensor | tf.SymbolicTensor[];
      e.build_config = { input_shape: (Array.isArray(input) ? input.map((t) => t.shape) : input.shape) as J };
    }
    if (!isSequential) {
      const node = (l as unknown as { inboundNodes: { inboundLayers: tf.layers.Layer[] }[] }).inboundNodes[0];
      const ins = node.inboundLayers.map((p) => p.name);
      e.name = l.name;
      if (keras3) {
        const ts = node.inboundLayers.map((p) => kerasTensor(p.name, p.outputShape as J));
        e.inbound_nodes = [{ args: ts.length === 1 ? ts : [ts], kwargs: {} }];
      } else e.inbound_nodes = [ins.map((n) => [n, 0, 0, {}])];
    }
    entries.push(e);
  }
  const outName = layers[layers.length - 1].name;
  const modelName = isSequential ? 'sequential' : keras3 ? 'functional' : 'model';
  const config: { [k: string]: J } = { name: modelName, ...(keras3 ? { trainable: true } : {}), ...(keras3 && isSequential ? { dtype: dtypeOf(ctx) } : {}), layers: entries };
  if (!isSequential) {
    config.input_layers = [[inputName, 0, 0]];
    // Keras 3 writes a single output as one flat triple
    config.output_layers = keras3 ? [outName, 0, 0] : [[outName, 0, 0]];
  } else if (keras3) config.build_input_shape = [null, ...inputShape];
  const className = isSequential ? 'Sequential' : 'Functional';
  const modelConfig: { [k: string]: J } = ctx.variant === 'keras3-h5' ? { module: 'keras.src.models.functional', class_name: className, config, registered_name: className } : { class_name: className, config };
  const trainingConfig: J = { loss: 'categorical_crossentropy', metrics: ['accuracy'], weighted_metrics: null, loss_weights: null, optimizer_config: { class_name: 'Adam', config: { name: 'Adam', learning_rate: 0.001 } } };
  const topology: { [k: string]: J } =
    opts.variant === 'keras3-keras'
      ? { keras_version: KERAS_VERSION[opts.variant], model_config: modelConfig }
      : { keras_version: KERAS_VERSION[opts.variant], backend: 'tensorflow', model_config: modelConfig, training_config: trainingConfig };

  // Weights in the order the converter walks the .h5 file: h5py iterates a group's keys
  // alphabetically (model_weights/<layer> for an .h5; layers/<layer>/vars, then optimizer/vars,
  // for a .keras file's model.weights.h5). Names per variant.
  type W = { name: string; shape: number[]; dtype: 'float32' | 'int32'; values: Float32Array | Int32Array };
  const byName = (a: { name: string }, b: { name: string }) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0);
  const ordered = layers.filter((l) => l.weights.length > 0).sort(byName);
  const groups: W[][] = [];
  for (const l of ordered) {
    const ws: W[] = l.weights.map((w, i) => {
      const base = kerasWeightName(l, w, ctx);
      const name = opts.variant === 'keras3-keras' ? `layers/${l.name}/vars/${i}` : opts.variant === 'keras3-h5' && isSequential ? `${modelName}/${base}` : base;
      return { name, shape: w.shape as number[], dtype: 'float32', values: w.read().dataSync() as Float32Array };
    });
    if (opts.splitByLayer || groups.length === 0) groups.push(ws);
    else groups[0].push(...ws);
  }
  if (opts.optimizerState) {
    // iteration (int64, written as int32), learning rate, then Adam's m and v per trainable weight
    const slots = model.trainableWeights.flatMap((w) => [0, 1].map(() => ({ shape: w.shape as number[], values: new Float32Array((w.shape as number[]).reduce((a, b) => a * b, 1)).fill(1e-3) })));
    const opt: W[] = [{ name: 'optimizer/vars/0', shape: [], dtype: 'int32', values: Int32Array.of(60) }, { name: 'optimizer/vars/1', shape: [], dtype: 'float32', values: Float32Array.of(0.001) }, ...slots.map((s, i) => ({ name: `optimizer/vars/${i + 2}`, shape: s.shape, dtype: 'float32' as const, values: s.values }))];
    groups[0].push(...opt);
  }
  const shardBytes = opts.shardBytes ?? 4 * 1024 * 1024;
  const manifest: J[] = [];
  fs.mkdirSync(dir, { recursive: true });
  groups.forEach((group, gi) => {
    const chunks: Uint8Array[] = [];
    const weights: J[] = [];
    for (const w of group) {
      const qd = w.dtype === 'float32' ? (opts.quantize?.(w.name) ?? null) : null;
      const spec: { [k: string]: J } = { name: w.name, shape: w.shape, dtype: w.dtype };
      if (qd === 'float16') {
        chunks.push(new Uint8Array(Uint16Array.from(w.values as Float32Array, toHalf).buffer));
        spec.quantization = { dtype: 'float16', original_dtype: 'float32' };
      } else if (qd) {
        const { q, min, scale } = quantizeAffine(w.values as Float32Array, qd);
        chunks.push(new Uint8Array(q.buffer));
        spec.quantization = { dtype: qd, min, scale, original_dtype: 'float32' };
      } else chunks.push(new Uint8Array(w.values.slice().buffer));
      weights.push(spec);
    }
    const total = chunks.reduce((n, c) => n + c.byteLength, 0);
    const bytes = new Uint8Array(total);
    let o = 0;
    for (const c of chunks) {
      bytes.set(c, o);
      o += c.byteLength;
    }
    const n = Math.ceil(total / shardBytes);
    const paths: J[] = [];
    for (let s = 0; s < n; s++) {
      const file = `group${gi + 1}-shard${s + 1}of${n}.bin`;
      fs.writeFileSync(path.join(dir, file), bytes.subarray(s * shardBytes, Math.min(total, (s + 1) * shardBytes)));
      paths.push(file);
    }
    manifest.push({ paths, weights });
  });
  const modelJson: J = { format: 'layers-model', generatedBy: `keras v${KERAS_VERSION[opts.variant]}`, convertedBy: CONVERTER[opts.variant], modelTopology: topology, weightsManifest: manifest };
  fs.writeFileSync(path.join(dir, 'model.json'), pythonJson(modelJson));
  return groups.flat().map((w) => w.name);
}
