// Options shared by every model builder, their validation, and small helpers.
import { tf } from '../src/tf';
import { ConfigError } from '../src/errors';
import { deriveSeed } from '../src/random';
import { DeviceVariation, resolveVariation, ResolvedVariation } from '../layers/variation';

export type ImageShape = [number, number, number];

export interface BuildOptions {
  /** Seed of every random initializer and of the variation noise (same seed -> same weights). */
  seed: number;
  /** [height, width, channels]; default the model's own (listModels().defaultInput). */
  inputShape?: ImageShape;
  /** Default 10. */
  numClasses?: number;
  /** The float baseline: the same network with no quantizers and no noise. */
  float?: boolean;
  /**
   * The same topology built from stock tf.layers (conv2d/dense/...), for the benchmark. Implies
   * float. Where a network has no stock counterpart of a layer, the float QuantX layer stands in.
   */
  stock?: boolean;
  /** Device-variation noise on every quantized kernel while training (null: none). */
  variation?: DeviceVariation | null;
  /** Multi-level models (mcnn, park, vgg16): number of signed weight levels (see layers/quantizers.ts). */
  weightLevels?: number;
  /** bmcnn: 'binary-weights' (default) or 'fully-binary'. */
  variant?: string;
  /** vgg16: batch normalization after every conv layer (default false: the classic topology). */
  batchNorm?: boolean;
}

export interface ResolvedBuildOptions {
  seed: number;
  inputShape: ImageShape;
  numClasses: number;
  float: boolean;
  stock: boolean;
  variation: ResolvedVariation | null;
  weightLevels: number | undefined;
  variant: string | undefined;
  batchNorm: boolean | undefined;
}

export interface ModelSpec {
  name: string;
  description: string;
  defaultInput: ImageShape;
  /** Whether the model's weights are multi-level (weightLevels applies). */
  multiLevel: boolean;
  /** Option names the model accepts beyond the common ones. */
  extraOptions: ('weightLevels' | 'variant' | 'batchNorm')[];
  /** Training batch size the CLI uses when --batch-size is not given (default 64). */
  defaultBatchSize?: number;
  build(opts: ResolvedBuildOptions): tf.LayersModel;
}

const KNOWN = ['seed', 'inputShape', 'numClasses', 'float', 'stock', 'variation', 'weightLevels', 'variant', 'batchNorm'];

export function resolveBuildOptions(spec: ModelSpec, opts: BuildOptions): ResolvedBuildOptions {
  if (opts == null || typeof opts !== 'object') throw new ConfigError('options', 'must be an object with at least {seed}');
  for (const k of Object.keys(opts)) {
    if (!KNOWN.includes(k)) throw new ConfigError(k, `unknown model option (known: ${KNOWN.join(', ')})`);
  }
  const { seed } = opts;
  if (typeof seed !== 'number' || !Number.isInteger(seed) || seed < 0) throw new ConfigError('seed', `must be a non-negative integer, got ${String(seed)}`);
  const inputShape = opts.inputShape ?? spec.defaultInput;
  if (!Array.isArray(inputShape) || inputShape.length !== 3 || !inputShape.every((d) => Number.isInteger(d) && d >= 1)) {
    throw new ConfigError('inputShape', `must be [height, width, channels] of positive integers, got ${JSON.stringify(inputShape)}`);
  }
  const numClasses = opts.numClasses ?? 10;
  if (!Number.isInteger(numClasses) || numClasses < 2) throw new ConfigError('numClasses', `must be an integer >= 2, got ${String(numClasses)}`);
  const stock = opts.stock ?? false;
  const float = (opts.float ?? false) || stock;
  const variation = opts.variation == null ? null : resolveVariation(opts.variation);
  if (float && variation) throw new ConfigError('variation', 'a float model has no device noise (drop float/stock or the variation)');
  for (const k of ['weightLevels', 'variant', 'batchNorm'] as const) {
    if (opts[k] !== undefined && !spec.extraOptions.includes(k)) throw new ConfigError(k, `does not apply to ${spec.name}`);
  }
  if (opts.weightLevels !== undefined) {
    if (!Number.isInteger(opts.weightLevels) || opts.weightLevels < 2) throw new ConfigError('weightLevels', `must be an integer >= 2, got ${String(opts.weightLevels)}`);
    if (float) throw new ConfigError('weightLevels', 'a float model has no weight levels');
  }
  return {
    seed,
    inputShape: [...inputShape] as ImageShape,
    numClasses,
    float,
    stock,
    variation,
    weightLevels: opts.weightLevels,
    variant: opts.variant,
    batchNorm: opts.batchNorm,
  };
}

/** The seed of one layer: deriveSeed(seed, model, layer). */
export function layerSeed(opts: { seed: number }, model: string, layer: string): number {
  return deriveSeed(opts.seed, model, layer);
}

/** A seeded glorotUniform for stock layers. */
export function glorot(opts: { seed: number }, model: string, layer: string) {
  return tf.initializers.glorotUniform({ seed: deriveSeed(layerSeed(opts, model, layer), 'kernel') });
}

/** A seeded heUniform for stock layers (the same draw as a QuantX layer's 'heUniform'). */
export function heUniform(opts: { seed: number }, model: string, layer: string) {
  return tf.initializers.heUniform({ seed: deriveSeed(layerSeed(opts, model, layer), 'kernel') });
}

/** Signed multi-level weights spanning max|w|: steUniform({levels, signed: true, scale: 'max'}). */
export function signedLevels(levels: number) {
  return { className: 'SteUniform', config: { levels, signed: true, scale: 'max' } };
}

/** Output size of a valid/same pooling or conv along one axis. */
export function outLen(n: number, k: number, s: number, padding: 'same' | 'valid'): number {
  return padding === 'same' ? Math.ceil(n / s) : Math.floor((n - k) / s) + 1;
}
