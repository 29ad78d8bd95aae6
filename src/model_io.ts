// Saving and loading tfjs LayersModels in Node without tfjs-node (whose file:// handler is the only
// one tfjs has). The layout is the standard one, model.json + weights.bin, so tfjs-node, tfjs in the
// browser and the tfjs converter read what this writes. Writes are atomic: weights first, then
// model.json, each through a temporary file and a rename.
import * as fs from 'fs';
import * as path from 'path';
import { tf } from './tf';
import { FileFormatError } from './errors';
import { writeFileAtomic, writeJsonAtomic } from './atomic';
import { tfjsTopology } from './keras_config';
import { matchWeights } from './weight_names';

export const MODEL_JSON = 'model.json';
export const WEIGHTS_BIN = 'weights.bin';
const GENERATED_BY = `memristor-tfjs (TensorFlow.js ${tf.version.tfjs})`;

type WeightSpec = tf.io.WeightsManifestEntry;

function toUint8(data: tf.io.WeightData | undefined): Uint8Array {
  if (data == null) return new Uint8Array(0);
  const parts = Array.isArray(data) ? data : [data];
  const total = parts.reduce((n, b) => n + b.byteLength, 0);
  const out = new Uint8Array(total);
  let o = 0;
  for (const b of parts) {
    out.set(new Uint8Array(b), o);
    o += b.byteLength;
  }
  return out;
}

const BYTES: Record<string, number> = { float32: 4, int32: 4, bool: 1, uint8: 1, uint16: 2, float16: 2, complex64: 8 };

/** Bytes a weight spec occupies in the weights file. */
function specBytes(spec: WeightSpec): number {
  const n = spec.shape.reduce((a, b) => a * b, 1);
  const dtype = spec.quantization ? spec.quantization.dtype : spec.dtype;
  const size = BYTES[dtype as string];
  if (size === undefined) throw new Error(`unsupported dtype ${dtype}`);
  return n * size;
}

/** An IOHandler that writes model.json + weights.bin into `dir`. */
export function dirSaveHandler(dir: string, userDefinedMetadata?: Record<string, unknown>): tf.io.IOHandler {
  return {
    async save(artifacts: tf.io.ModelArtifacts): Promise<tf.io.SaveResult> {
      const weights = toUint8(artifacts.weightData);
      const modelJson = {
        format: artifacts.format ?? 'layers-model',
        generatedBy: GENERATED_BY,
        convertedBy: null,
        modelTopology: artifacts.modelTopology,
        ...(artifacts.trainingConfig ? { trainingConfig: artifacts.trainingConfig } : {}),
        weightsManifest: [{ paths: [WEIGHTS_BIN], weights: artifacts.weightSpecs ?? [] }],
        ...(userDefinedMetadata ? { userDefinedMetadata } : {}),
      };
      writeFileAtomic(path.join(dir, WEIGHTS_BIN), weights);
      writeJsonAtomic(path.join(dir, MODEL_JSON), modelJson);
      return {
        modelArtifactsInfo: {
          dateSaved: new Date(),
          modelTopologyType: 'JSON',
          modelTopologyBytes: JSON.stringify(artifacts.modelTopology).length,
          weightSpecsBytes: JSON.stringify(artifacts.weightSpecs ?? []).length,
          weightDataBytes: weights.byteLength,
        },
      };
    },
  };
}

export interface ModelDirContents {
  modelJson: tf.io.ModelJSON & { userDefinedMetadata?: Record<string, unknown> };
  artifacts: tf.io.ModelArtifacts;
}

const QUANTIZED = new Set(['uint8', 'uint16', 'float16']);

/**
 * Refuses a quantization the converter does not write or tfjs cannot decode: uint8/uint16 need a
 * finite min and scale (value = q * scale + min), float16 stands for float32 weights only.
 */
function checkQuantization(file: string, spec: WeightSpec): void {
  const q = spec.quantization as { dtype?: unknown; min?: unknown; scale?: unknown } | undefined;
  if (q == null) return;
  const where = `weight '${spec.name}'`;
  if (typeof q !== 'object' || !QUANTIZED.has(q.dtype as string)) throw new FileFormatError(file, `${where}: quantization dtype ${JSON.stringify(q?.dtype)} (the converter writes uint8, uint16 or float16)`);
  if (q.dtype === 'float16') {
    if (spec.dtype !== 'float32') throw new FileFormatError(file, `${where}: float16 quantization of a ${spec.dtype} weight (float32 only)`);
    return;
  }
  if (spec.dtype !== 'float32' && spec.dtype !== 'int32') throw new FileFormatError(file, `${where}: ${q.dtype} quantization of a ${spec.dtype} weight (float32 or int32 only)`);
  for (const k of ['min', 'scale'] as const) {
    if (typeof q[k] !== 'number' || !Number.isFinite(q[k])) throw new FileFormatError(file, `${where}: ${q.dtype} quantization without a finite ${k} (${JSON.stringify(q[k])})`);
  }
  const top = (q.dtype === 'uint8' ? 255 : 65535) * (q.scale as number) + (q.min as number);
  if (!Number.isFinite(Math.fround(top))) throw new FileFormatError(file, `${where}: ${q.dtype} quantization with min ${q.min} and scale ${q.scale} gives values beyond float32`);
}

/**
 * Refuses a non-finite weight (NaN or infinite: no trained model holds one, and it would evaluate
 * to a plausible accuracy), float32 or float16, naming the weights file that holds it (a group's
 * weights run on across its shards), the weight and the element.
 */
function checkFinite(dir: string, paths: readonly string[], specs: readonly WeightSpec[], parts: readonly Uint8Array[]): void {
  const total = parts.reduce((n, p) => n + p.byteLength, 0);
  const bytes = parts.length === 1 ? parts[0] : toUint8(parts.map((p) => p.slice().buffer as ArrayBuffer));
  const view = new DataView(bytes.buffer, bytes.byteOffset, total);
  const shardOf = (byte: number) => {
    let end = 0;
    for (let i = 0; i < parts.length; i++) {
      end += parts[i].byteLength;
      if (byte < end) return { file: path.join(dir, paths[i]), at: byte - (end - parts[i].byteLength) };
    }
    return { file: path.join(dir, paths[paths.length - 1] ?? WEIGHTS_BIN), at: byte };
  };
  const refuse = (spec: WeightSpec, i: number, byte: number, v: string) => {
    const s = shardOf(byte);
    throw new FileFormatError(s.file, `weight '${spec.name}' [${spec.shape.join('x')}], element ${i} (byte ${s.at}): ${v} is not a finite number`);
  };
  let off = 0;
  for (const spec of specs) {
    const n = specBytes(spec);
    const qd = spec.quantization?.dtype;
    if (!spec.quantization && spec.dtype === 'float32') {
      for (let i = 0; i < n / 4; i++) {
        const v = view.getFloat32(off + 4 * i, true);
        if (!Number.isFinite(v)) refuse(spec, i, off + 4 * i, String(v));
      }
    } else if (qd === 'float16') {
      for (let i = 0; i < n / 2; i++) {
        const h = view.getUint16(off + 2 * i, true);
        // exponent all ones: infinity (mantissa 0) or NaN
        if ((h & 0x7c00) === 0x7c00) refuse(spec, i, off + 2 * i, (h & 0x3ff) === 0 ? `float16 ${h & 0x8000 ? '-' : ''}Infinity` : 'float16 NaN');
      }
    }
    off += n;
  }
}

/** Read and validate a model directory (or a model.json path) into tfjs ModelArtifacts. */
export function readModelDir(dirOrFile: string): ModelDirContents {
  const file = dirOrFile.endsWith('.json') ? dirOrFile : path.join(dirOrFile, MODEL_JSON);
  const dir = path.dirname(file);
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw new FileFormatError(file, `cannot read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  let json: ModelDirContents['modelJson'];
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new FileFormatError(file, `not valid JSON (${(e as Error).message})`);
  }
  if (json == null || typeof json !== 'object') throw new FileFormatError(file, 'not a JSON object: not a tfjs layers model');
  if (json.format === 'graph-model') {
    // tensorflowjs_converter --input_format tf_saved_model (or --output_format tfjs_graph_model)
    throw new FileFormatError(file, `a tfjs graph model (${json.convertedBy ?? 'converted'} from a SavedModel or to tfjs_graph_model): it has ops, not layers, so it cannot be mapped; convert the Keras model with --input_format keras (tfjs_layers_model)`);
  }
  if (json.modelTopology === null && Array.isArray(json.weightsManifest)) {
    throw new FileFormatError(file, 'weights only (modelTopology null: converted from a Keras save_weights file); convert the whole model (model.save) instead');
  }
  if (json.modelTopology == null || typeof json.modelTopology !== 'object') {
    throw new FileFormatError(file, 'no modelTopology: not a tfjs layers model');
  }
  if (!Array.isArray(json.weightsManifest)) throw new FileFormatError(file, 'no weightsManifest');
  const specs: WeightSpec[] = [];
  const buffers: Uint8Array[] = [];
  const seen = new Set<string>();
  for (const group of json.weightsManifest) {
    if (!group || !Array.isArray(group.paths) || !Array.isArray(group.weights)) {
      throw new FileFormatError(file, 'weightsManifest entry without paths and weights');
    }
    let want = 0;
    for (const spec of group.weights) {
      if (!spec || typeof spec.name !== 'string' || !Array.isArray(spec.shape) || spec.shape.some((d) => !Number.isInteger(d) || d < 0)) {
        throw new FileFormatError(file, `bad weight spec ${JSON.stringify(spec)}`);
      }
      if (seen.has(spec.name)) throw new FileFormatError(file, `weight '${spec.name}' is listed twice in weightsManifest`);
      seen.add(spec.name);
      checkQuantization(file, spec);
      try {
        want += specBytes(spec);
      } catch (e) {
        throw new FileFormatError(file, `weight ${spec.name}: ${(e as Error).message}`);
      }
      specs.push(spec);
    }
    let got = 0;
    const parts: Uint8Array[] = [];
    for (const p of group.paths) {
      const wf = path.join(dir, p);
      let b: Buffer;
      try {
        b = fs.readFileSync(wf);
      } catch (e) {
        throw new FileFormatError(wf, `cannot read weights named in ${MODEL_JSON} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
      }
      parts.push(new Uint8Array(b.buffer, b.byteOffset, b.byteLength));
      got += b.byteLength;
    }
    if (got !== want) {
      throw new FileFormatError(path.join(dir, group.paths[group.paths.length - 1] ?? WEIGHTS_BIN), `holds ${got} bytes, ${MODEL_JSON} describes ${want}`);
    }
    checkFinite(dir, group.paths, group.weights, parts);
    buffers.push(...parts);
  }
  const weightData = toUint8(buffers.map((b) => b.slice().buffer as ArrayBuffer)).buffer as ArrayBuffer;
  return {
    modelJson: json,
    artifacts: {
      modelTopology: json.modelTopology,
      format: json.format,
      generatedBy: json.generatedBy,
      convertedBy: json.convertedBy,
      trainingConfig: json.trainingConfig,
      weightSpecs: specs,
      weightData,
    },
  };
}

/**
 * tfjs 4.22's getConfig of a SeparableConv2D leaves out its depthMultiplier, so a model saved
 * with one other than 1 would not load (its depthwise kernel's shape would not fit): put it back.
 */
function withDepthMultipliers(model: tf.LayersModel, topology: unknown): void {
  const layers = (topology as { model_config?: { config?: { layers?: unknown[] } }; config?: { layers?: unknown[] } })?.model_config?.config?.layers ?? (topology as { config?: { layers?: unknown[] } })?.config?.layers;
  for (const l of layers ?? []) {
    const e = l as { class_name?: string; config?: Record<string, unknown> };
    if (e.class_name !== 'SeparableConv2D' || !e.config || e.config.depth_multiplier != null) continue;
    const layer = model.layers.find((x) => x.name === e.config!.name) as unknown as { depthMultiplier?: number } | undefined;
    if (layer?.depthMultiplier != null) e.config.depth_multiplier = layer.depthMultiplier;
  }
}

/** Save a LayersModel to `dir` (model.json + weights.bin), atomically. */
export async function saveModel(model: tf.LayersModel, dir: string, metadata?: Record<string, unknown>): Promise<void> {
  const handler = dirSaveHandler(dir, metadata);
  await model.save({
    save: (artifacts: tf.io.ModelArtifacts) => {
      withDepthMultipliers(model, artifacts.modelTopology);
      return handler.save!(artifacts);
    },
  });
}

/**
 * Load a LayersModel saved by saveModel, tfjs (tfjs-node, the browser) or tensorflowjs_converter
 * from Keras 2 or 3 (one or several weight groups and shards, uint8/uint16/float16-quantized
 * weights dequantized as tfjs does). The Keras config is read as tfjs 4.22 reads it
 * (src/keras_config.ts) and the weights matched by name to the built model
 * (src/weight_names.ts); what cannot be read is refused naming the file and the cause.
 */
export async function loadModel(dirOrFile: string): Promise<{ model: tf.LayersModel; metadata: Record<string, unknown> }> {
  const { modelJson, artifacts } = readModelDir(dirOrFile);
  const file = dirOrFile.endsWith('.json') ? dirOrFile : path.join(dirOrFile, MODEL_JSON);
  const { topology } = tfjsTopology(artifacts.modelTopology, file);
  // the first call of a session may come before any backend started: start tfjs's choice
  await tf.ready();
  let model: tf.LayersModel;
  try {
    // built without its weights (initialized, then overwritten below): the names in the manifest
    // are matched to the built model's weights, which tfjs does only for its own naming
    model = await tf.loadLayersModel(tf.io.fromMemory({ modelTopology: topology, format: artifacts.format, generatedBy: artifacts.generatedBy, convertedBy: artifacts.convertedBy, trainingConfig: artifacts.trainingConfig }));
  } catch (e) {
    throw new FileFormatError(file, `cannot build the model (${(e as Error).message.split('\n')[0]})`);
  }
  try {
    setWeights(model, artifacts, file);
  } catch (e) {
    model.dispose();
    throw e;
  }
  return { model, metadata: modelJson.userDefinedMetadata ?? {} };
}

/** Decode the manifest's weights (dequantizing as tfjs does) and write each into the model weight it names. */
function setWeights(model: tf.LayersModel, artifacts: tf.io.ModelArtifacts, file: string): void {
  // Optimizer state is not the model's: tfjs's (includeOptimizer, group 'optimizer') and what the
  // converter copies from a .keras file (optimizer/vars/<i>: iteration, learning rate, slots).
  const all = artifacts.weightSpecs ?? [];
  const optimizerLayer = model.layers.some((l) => l.name === 'optimizer');
  const isModel = (s: WeightSpec) => s.group !== 'optimizer' && !(s.name.startsWith('optimizer/') && !optimizerLayer);
  let values: tf.NamedTensorMap;
  try {
    values = tf.io.decodeWeights(artifacts.weightData!, all);
  } catch (e) {
    throw new FileFormatError(file, `cannot decode the weights (${(e as Error).message})`);
  }
  try {
    const specs = all.filter(isModel);
    let match: ReturnType<typeof matchWeights>;
    try {
      match = matchWeights(model, specs.map((s) => s.name));
    } catch (e) {
      throw new FileFormatError(file, (e as Error).message);
    }
    for (const spec of specs) {
      const target = match.targets.get(spec.name)!;
      if (spec.shape.join('x') !== target.shape.join('x')) {
        throw new FileFormatError(file, `weight '${spec.name}' is [${spec.shape.join('x')}], the model's '${target.originalName}' [${target.shape.join('x')}]`);
      }
      if (values[spec.name].dtype !== target.dtype) {
        throw new FileFormatError(file, `weight '${spec.name}' is ${values[spec.name].dtype}, the model's '${target.originalName}' ${target.dtype}`);
      }
    }
    for (const spec of specs) match.targets.get(spec.name)!.write(values[spec.name]);
  } finally {
    tf.dispose(Object.values(values));
  }
}
