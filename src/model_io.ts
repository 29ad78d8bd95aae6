// Saving and loading tfjs LayersModels in Node without tfjs-node (whose file:// handler is the only
// one tfjs has). The layout is the standard one, model.json + weights.bin, so tfjs-node, tfjs in the
// browser and the tfjs converter read what this writes. Writes are atomic: weights first, then
// model.json, each through a temporary file and a rename.
import * as fs from 'fs';
import * as path from 'path';
import { tf } from './tf';
import { FileFormatError } from './errors';
import { writeFileAtomic, writeJsonAtomic } from './atomic';

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

/**
 * Refuses a non-finite float32 weight (NaN or infinite: no trained model holds one, and it would
 * evaluate to a plausible accuracy), naming the file, the weight and the element.
 */
function checkFinite(file: string, specs: readonly WeightSpec[], parts: readonly Uint8Array[]): void {
  const total = parts.reduce((n, p) => n + p.byteLength, 0);
  const bytes = parts.length === 1 ? parts[0] : toUint8(parts.map((p) => p.slice().buffer as ArrayBuffer));
  const view = new DataView(bytes.buffer, bytes.byteOffset, total);
  let off = 0;
  for (const spec of specs) {
    const n = specBytes(spec);
    if (!spec.quantization && spec.dtype === 'float32') {
      for (let i = 0; i < n / 4; i++) {
        const v = view.getFloat32(off + 4 * i, true);
        if (!Number.isFinite(v)) {
          throw new FileFormatError(file, `weight '${spec.name}' [${spec.shape.join('x')}], element ${i} (byte ${off + 4 * i}): ${v} is not a finite number`);
        }
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
  if (json == null || typeof json !== 'object' || json.modelTopology == null || typeof json.modelTopology !== 'object') {
    throw new FileFormatError(file, 'no modelTopology: not a tfjs layers model');
  }
  if (!Array.isArray(json.weightsManifest)) throw new FileFormatError(file, 'no weightsManifest');
  const specs: WeightSpec[] = [];
  const buffers: Uint8Array[] = [];
  for (const group of json.weightsManifest) {
    if (!group || !Array.isArray(group.paths) || !Array.isArray(group.weights)) {
      throw new FileFormatError(file, 'weightsManifest entry without paths and weights');
    }
    let want = 0;
    for (const spec of group.weights) {
      if (!spec || typeof spec.name !== 'string' || !Array.isArray(spec.shape) || spec.shape.some((d) => !Number.isInteger(d) || d < 0)) {
        throw new FileFormatError(file, `bad weight spec ${JSON.stringify(spec)}`);
      }
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
    checkFinite(path.join(dir, group.paths[0] ?? WEIGHTS_BIN), group.weights, parts);
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

/** Save a LayersModel to `dir` (model.json + weights.bin), atomically. */
export async function saveModel(model: tf.LayersModel, dir: string, metadata?: Record<string, unknown>): Promise<void> {
  await model.save(dirSaveHandler(dir, metadata));
}

/** Load a LayersModel saved by saveModel, tfjs-node or the converter. */
export async function loadModel(dirOrFile: string): Promise<{ model: tf.LayersModel; metadata: Record<string, unknown> }> {
  const { modelJson, artifacts } = readModelDir(dirOrFile);
  const file = dirOrFile.endsWith('.json') ? dirOrFile : path.join(dirOrFile, MODEL_JSON);
  // the first call of a session may come before any backend started: start tfjs's choice
  await tf.ready();
  try {
    const model = await tf.loadLayersModel(tf.io.fromMemory(artifacts));
    return { model, metadata: modelJson.userDefinedMetadata ?? {} };
  } catch (e) {
    throw new FileFormatError(file, `cannot build the model (${(e as Error).message.split('\n')[0]})`);
  }
}
