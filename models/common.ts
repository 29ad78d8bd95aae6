// Options shared by every model builder, their validation, and small helpers.
import { tf } from '../src/tf';
import { ConfigError } from '../src/errors';
import { deriveSeed } from '../src/random';
import { DeviceVariation, resolveVariation, ResolvedVariation, VariationScheme } from '../layers/variation';
import type { DeviceConfig } from '../src/device/config';
import { deviceTrainingView } from '../src/device/training_noise';

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
  /**
   * Train against this device (device-aware training): every quantized kernel gets the device's
   * training noise and multi-level layers its weight levels (src/device/training_noise.ts:
   * variationFromDevice, weightLevelsFromDevice). Binary layers keep their binary quantizer.
   */
  device?: DeviceConfig | null;
  /** With `device`: the mapping scheme the noise and the levels follow; default the device's. */
  scheme?: VariationScheme;
  /**
   * Device-variation noise on every quantized kernel while training (null: none). With `device`:
   * overrides of single fields of the device's variation.
   */
  variation?: DeviceVariation | null;
  /** Multi-level models (mcnn, park, vgg16): number of signed weight levels (see layers/quantizers.ts). */
  weightLevels?: number;
  /**
   * Clip every noisy kernel to +-k x its RMS after each optimizer step (QuantLayerArgs
   * kernelClipRms): the weight scale the mapping spends the conductance window on stays near the
   * bulk of the weights. Default: DEVICE_AWARE_CLIP_RMS for a multi-level model built against a
   * device, else none (null).
   */
  weightClipRms?: number | null;
  /** bmcnn: 'binary-weights' (default) or 'fully-binary'. */
  variant?: string;
  /** vgg16: batch normalization after every conv layer (default false: the classic topology). */
  batchNorm?: boolean;
  /** resnet: the number of weighted layers, 6n+2 (20, 32, 44, 56, 110, ...); default 20. */
  depth?: number;
}

export interface ResolvedBuildOptions {
  seed: number;
  inputShape: ImageShape;
  numClasses: number;
  float: boolean;
  stock: boolean;
  variation: ResolvedVariation | null;
  /** The device the variation and the levels come from, or null. */
  device: string | null;
  weightLevels: number | undefined;
  /** kernelClipRms of the noisy kernels (null: none). */
  weightClipRms: number | null;
  variant: string | undefined;
  batchNorm: boolean | undefined;
  depth: number | undefined;
}

export interface ModelSpec {
  name: string;
  description: string;
  defaultInput: ImageShape;
  /** Whether the model's weights are multi-level (weightLevels applies). */
  multiLevel: boolean;
  /** Option names the model accepts beyond the common ones. */
  extraOptions: ExtraOption[];
  /** Training batch size the CLI uses when --batch-size is not given (default 64). */
  defaultBatchSize?: number;
  /** Initial learning rate of training when none is given (default DEFAULT_LEARNING_RATE). */
  defaultLearningRate?: number;
  /** Checks of the model's own options (ConfigError naming the option), run by resolveBuildOptions. */
  checkOptions?(opts: ResolvedBuildOptions): void;
  build(opts: ResolvedBuildOptions): tf.LayersModel;
}

/** The options only some models take (ModelSpec.extraOptions). */
export const EXTRA_OPTIONS = ['weightLevels', 'variant', 'batchNorm', 'depth'] as const;
export type ExtraOption = (typeof EXTRA_OPTIONS)[number];

/** The initial learning rate of training for a model without a defaultLearningRate. */
export const DEFAULT_LEARNING_RATE = 0.01;

const KNOWN = ['seed', 'inputShape', 'numClasses', 'float', 'stock', 'device', 'scheme', 'variation', 'weightClipRms', ...EXTRA_OPTIONS];

/**
 * The weight-scale clip of device-aware training, in RMS of the kernel. Measured on mcnn (seed 6,
 * one epoch): clipping a plainly trained model afterwards at 2.5 RMS cost 0.13 points of software
 * accuracy and cut its transfer loss on park2024 from 1.43 to 0.60 points (mean of 8 chips);
 * trained with it and the yao2020 noise, the transfer loss was 0.49 points against 3.25 plain.
 */
export const DEVICE_AWARE_CLIP_RMS = 2.5;

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
  if (opts.scheme !== undefined && !opts.device) throw new ConfigError('scheme', 'applies with a device only');
  if (float && opts.device) throw new ConfigError('device', 'a float model is not trained against a device (drop float/stock or the device)');
  const view = opts.device ? deviceTrainingView(opts.device, { scheme: opts.scheme, overrides: opts.variation }) : null;
  const variation = view ? view.variation : opts.variation == null ? null : resolveVariation(opts.variation);
  if (float && variation) throw new ConfigError('variation', 'a float model has no device noise (drop float/stock or the variation)');
  for (const k of EXTRA_OPTIONS) {
    if (opts[k] !== undefined && !spec.extraOptions.includes(k)) throw new ConfigError(k, `does not apply to ${spec.name}`);
  }
  if (opts.weightLevels !== undefined) {
    if (!Number.isInteger(opts.weightLevels) || opts.weightLevels < 2) throw new ConfigError('weightLevels', `must be an integer >= 2, got ${String(opts.weightLevels)}`);
    if (float) throw new ConfigError('weightLevels', 'a float model has no weight levels');
  }
  // the device's levels where the model's layers are multi-level (a binary model keeps its quantizer)
  const deviceLevels = view && spec.multiLevel ? (view.weightLevels ?? undefined) : undefined;
  const clip = opts.weightClipRms;
  if (clip != null && (typeof clip !== 'number' || !Number.isFinite(clip) || clip <= 0)) throw new ConfigError('weightClipRms', `must be a positive number or null, got ${String(clip)}`);
  if (clip != null && float) throw new ConfigError('weightClipRms', 'a float model has no noisy kernels to clip');
  if (opts.batchNorm !== undefined && typeof opts.batchNorm !== 'boolean') throw new ConfigError('batchNorm', `must be true or false, got ${String(opts.batchNorm)}`);
  const resolved: ResolvedBuildOptions = {
    seed,
    inputShape: [...inputShape] as ImageShape,
    numClasses,
    float,
    stock,
    variation,
    device: view ? view.device : null,
    weightLevels: opts.weightLevels ?? deviceLevels,
    weightClipRms: clip !== undefined ? clip : view && spec.multiLevel ? DEVICE_AWARE_CLIP_RMS : null,
    variant: opts.variant,
    batchNorm: opts.batchNorm,
    depth: opts.depth,
  };
  spec.checkOptions?.(resolved);
  return resolved;
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
