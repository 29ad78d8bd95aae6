// quantSummary: parameters and memory of a model by precision, like Larq's summary. A kernel of a
// QuantConv2D/QuantDense counts as binary (a 2-level quantizer: 1 bit a weight), multi-level (L
// levels: ceil(log2 L) bits a weight) or float (no quantizer: 32 bits); biases, batch-norm
// parameters and every stock layer's weights count as float32.
import { tf } from '../src/tf';
import { QuantKernelLayer } from './quant_base';

export interface LayerQuantSummary {
  name: string;
  className: string;
  /** Output shape without the batch dimension (null where unknown). */
  outputShape: (number | null)[] | null;
  params: number;
  binary: number;
  multiLevel: number;
  float: number;
  /** Levels of the kernel quantizer (2 for binary), null for a float kernel or no kernel. */
  weightLevels: number | null;
  /** Bits a kernel weight takes (1, ceil(log2 L) or 32), null without a kernel. */
  weightBits: number | null;
  memoryBytes: number;
}

export interface QuantSummary {
  layers: LayerQuantSummary[];
  totalParams: number;
  trainableParams: number;
  nonTrainableParams: number;
  binaryParams: number;
  multiLevelParams: number;
  floatParams: number;
  /** Memory with each parameter at its own precision. */
  memoryBytes: number;
  /** Memory if every parameter were float32. */
  float32Bytes: number;
  /** float32Bytes / memoryBytes. */
  compressionRatio: number;
}

const size = (shape: number[]) => shape.reduce((a, b) => a * b, 1);

function outputShapeOf(l: tf.layers.Layer): (number | null)[] | null {
  try {
    const s = l.outputShape as (number | null)[] | (number | null)[][];
    if (Array.isArray(s[0])) return null;
    return (s as (number | null)[]).slice(1);
  } catch {
    return null;
  }
}

/** Parameter counts and memory of `model` by precision. */
export function quantSummary(model: { layers: tf.layers.Layer[] }): QuantSummary {
  const layers: LayerQuantSummary[] = [];
  let trainable = 0;
  let nonTrainable = 0;
  for (const l of model.layers) {
    let binary = 0;
    let multiLevel = 0;
    let float = 0;
    let bits = 0;
    let weightLevels: number | null = null;
    let weightBits: number | null = null;
    for (const w of l.weights) {
      const n = size(w.shape as number[]);
      if (w.trainable && l.trainable) trainable += n;
      else nonTrainable += n;
      const isKernel = l instanceof QuantKernelLayer && w.originalName.endsWith('/kernel');
      const levels = isKernel ? ((l as QuantKernelLayer).kernelQuantizer?.levels ?? null) : null;
      if (isKernel) {
        weightLevels = levels;
        weightBits = levels == null ? 32 : Math.max(1, Math.ceil(Math.log2(levels)));
      }
      if (levels === 2) {
        binary += n;
        bits += n;
      } else if (levels != null) {
        multiLevel += n;
        bits += n * Math.max(1, Math.ceil(Math.log2(levels)));
      } else {
        float += n;
        bits += 32 * n;
      }
    }
    layers.push({
      name: l.name,
      className: l.getClassName(),
      outputShape: outputShapeOf(l),
      params: binary + multiLevel + float,
      binary,
      multiLevel,
      float,
      weightLevels,
      weightBits,
      memoryBytes: bits / 8,
    });
  }
  const sum = (k: 'binary' | 'multiLevel' | 'float' | 'params' | 'memoryBytes') => layers.reduce((a, l) => a + l[k], 0);
  const totalParams = sum('params');
  const memoryBytes = sum('memoryBytes');
  const float32Bytes = totalParams * 4;
  return {
    layers,
    totalParams,
    trainableParams: trainable,
    nonTrainableParams: nonTrainable,
    binaryParams: sum('binary'),
    multiLevelParams: sum('multiLevel'),
    floatParams: sum('float'),
    memoryBytes,
    float32Bytes,
    compressionRatio: memoryBytes > 0 ? float32Bytes / memoryBytes : 1,
  };
}

const kb = (b: number) => (b / 1024).toFixed(2);

/** The summary as a plain-text table. */
export function formatQuantSummary(s: QuantSummary): string {
  const rows = [['Layer', 'Class', 'Output', 'Params', 'Binary', 'Multi-level', 'Float', 'Bits/weight', 'Memory KiB']];
  for (const l of s.layers) {
    rows.push([
      l.name,
      l.className,
      l.outputShape ? `[${l.outputShape.map((d) => (d == null ? '?' : d)).join(',')}]` : '-',
      String(l.params),
      String(l.binary),
      String(l.multiLevel),
      String(l.float),
      l.weightBits == null ? '-' : String(l.weightBits),
      kb(l.memoryBytes),
    ]);
  }
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  const line = (r: string[]) => r.map((c, i) => (i < 3 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ');
  const out = [line(rows[0]), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.slice(1).map(line)];
  out.push(
    '',
    `Total params: ${s.totalParams} (trainable ${s.trainableParams}, non-trainable ${s.nonTrainableParams})`,
    `Binary: ${s.binaryParams}, multi-level: ${s.multiLevelParams}, float: ${s.floatParams}`,
    `Memory: ${kb(s.memoryBytes)} KiB (float32 equivalent ${kb(s.float32Bytes)} KiB, compression ${s.compressionRatio.toFixed(2)}x)`,
  );
  return out.join('\n');
}
