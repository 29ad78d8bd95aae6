// What QuantConv2D and QuantDense share: a float latent kernel (the trainable weight), a kernel
// quantizer and an input quantizer, an optional weight clip applied after each optimizer step,
// optional device-variation noise while training, and a seed for everything random.
import { WeightClip, enforceOnAssign } from './constraints';
import { tf, Tensor } from '../src/tf';
import { ConfigError } from '../src/errors';
import { deriveSeed } from '../src/random';
import { getQuantizer, isFloat, Quantizer, QuantizerIdentifier, QuantizerSpec, serializeQuantizer } from './quantizers';
import { DeviceVariation, isNoiseFree, NoisyLayer, noiseSeed, perturbWeights, ResolvedVariation, resolveVariation } from './variation';
import { ActivationName, getActivation } from './activations';

export type LayerArgs = NonNullable<ConstructorParameters<typeof tf.layers.Layer>[0]>;
export type Kwargs = Record<string, unknown>;

const INITIALIZERS = ['glorotUniform', 'glorotNormal', 'heUniform', 'heNormal', 'leCunUniform', 'leCunNormal', 'zeros', 'ones'] as const;
export type InitializerName = (typeof INITIALIZERS)[number];

export interface QuantLayerArgs extends LayerArgs {
  /** Activation by tf.layers name ('relu', 'linear', ...). Default linear. */
  activation?: ActivationName | string | null;
  /** Default true. The bias stays float (a digital add after the array). */
  useBias?: boolean;
  /** Initializer of the latent kernel by name, seeded from `seed`. Default 'glorotUniform'. */
  kernelInitializer?: InitializerName | string;
  /** Quantizer of the kernel: name, {className, config}, a quantizer, or null (float). */
  kernelQuantizer?: QuantizerIdentifier;
  /** Quantizer of the layer's input (null: none). */
  inputQuantizer?: QuantizerIdentifier;
  /** Clip the latent kernel to [-kernelClip, kernelClip] after each optimizer step (applyWeightClips). */
  kernelClip?: number | null;
  /**
   * Clip the latent kernel to +-kernelClipRms x its own RMS after each optimizer step
   * (applyWeightClips), before kernelClip. The mapping spends the conductance window on max|w| of
   * the layer, so every conductance error (stuck cell, programming residual, read noise) costs
   * weight error in proportion to it: the clip keeps a few outliers from setting that scale.
   * Device-aware training sets it (models/common.ts); null: none.
   */
  kernelClipRms?: number | null;
  /** Device-variation noise on the (quantized) kernel while training; null: none. */
  variation?: DeviceVariation | null;
  /** uint32 seed of the kernel initializer and the noise. Default: a random one (stored in the config). */
  seed?: number;
}

let warnedClip = false;
/** Forget that the missing-clip warning was shown (for tests). */
export function resetWarnings(): void {
  warnedClip = false;
}

function makeInitializer(name: string, seed: number): ReturnType<typeof tf.initializers.zeros> {
  switch (name as InitializerName) {
    case 'glorotUniform':
      return tf.initializers.glorotUniform({ seed });
    case 'glorotNormal':
      return tf.initializers.glorotNormal({ seed });
    case 'heUniform':
      return tf.initializers.heUniform({ seed });
    case 'heNormal':
      return tf.initializers.heNormal({ seed });
    case 'leCunUniform':
      return tf.initializers.leCunUniform({ seed });
    case 'leCunNormal':
      return tf.initializers.leCunNormal({ seed });
    case 'zeros':
      return tf.initializers.zeros();
    case 'ones':
      return tf.initializers.ones();
  }
  throw new ConfigError('kernelInitializer', `unknown initializer '${name}' (known: ${INITIALIZERS.join(', ')})`);
}

export function checkSeed(seed: unknown, field = 'seed'): number {
  if (seed === undefined || seed === null) return Math.floor(Math.random() * 2 ** 32) >>> 0;
  if (typeof seed !== 'number' || !Number.isInteger(seed) || seed < 0 || seed > 0xffffffff) {
    throw new ConfigError(field, `must be an integer in 0..2^32-1, got ${String(seed)}`);
  }
  return seed;
}

/** The first tensor of a layer's inputs. */
export function oneInput(inputs: Tensor | Tensor[]): Tensor {
  return Array.isArray(inputs) ? inputs[0] : inputs;
}

export abstract class QuantKernelLayer extends tf.layers.Layer implements NoisyLayer {
  readonly activation: ActivationName;
  protected readonly activationFn: (x: Tensor) => Tensor;
  readonly useBias: boolean;
  readonly kernelInitializer: string;
  readonly kernelQuantizer: Quantizer | null;
  readonly inputQuantizer: Quantizer | null;
  readonly kernelClip: number | null;
  readonly kernelClipRms: number | null;
  readonly variation: ResolvedVariation | null;
  readonly seed: number;
  /** Noisy forward passes so far (see getNoiseCounters). */
  noiseCounter = 0;
  protected kernel: tf.LayerVariable | null = null;
  protected bias: tf.LayerVariable | null = null;

  constructor(args: QuantLayerArgs) {
    super(args);
    const name = args.name ?? this.name;
    const act = getActivation(args.activation, `${name}.activation`);
    this.activation = act.name;
    this.activationFn = act.fn;
    this.useBias = args.useBias ?? true;
    if (typeof this.useBias !== 'boolean') throw new ConfigError(`${name}.useBias`, `must be true or false, got ${String(args.useBias)}`);
    this.kernelInitializer = args.kernelInitializer ?? 'glorotUniform';
    if (!(INITIALIZERS as readonly string[]).includes(this.kernelInitializer)) {
      throw new ConfigError(`${name}.kernelInitializer`, `unknown initializer '${this.kernelInitializer}' (known: ${INITIALIZERS.join(', ')})`);
    }
    this.kernelQuantizer = getQuantizer(args.kernelQuantizer, `${name}.kernelQuantizer`);
    this.inputQuantizer = getQuantizer(args.inputQuantizer, `${name}.inputQuantizer`);
    const clip = args.kernelClip ?? null;
    if (clip !== null && (typeof clip !== 'number' || !Number.isFinite(clip) || clip <= 0)) {
      throw new ConfigError(`${name}.kernelClip`, `must be a positive number or null, got ${String(clip)}`);
    }
    this.kernelClip = clip;
    const rms = args.kernelClipRms ?? null;
    if (rms !== null && (typeof rms !== 'number' || !Number.isFinite(rms) || rms <= 0)) {
      throw new ConfigError(`${name}.kernelClipRms`, `must be a positive number or null, got ${String(rms)}`);
    }
    this.kernelClipRms = rms;
    this.variation = args.variation == null ? null : resolveVariation(args.variation, `${name}.variation`);
    this.seed = checkSeed(args.seed, `${name}.seed`);
    if (this.kernelQuantizer?.levels === 2 && this.kernelClip === null && !warnedClip) {
      warnedClip = true;
      // Larq warns the same way: a latent weight outside the estimator's window gets no gradient.
      console.warn(
        `memristor-tfjs: layer ${name} has a binary kernel quantizer (${this.kernelQuantizer.className}) and no kernelClip: ` +
          'latent weights that leave the gradient window stop learning. Set kernelClip (e.g. 1). (shown once)',
      );
    }
  }

  /** True when the layer has a variation that changes its weights. */
  get drawsNoise(): boolean {
    return this.variation !== null && !isNoiseFree(this.variation);
  }

  protected addKernelAndBias(kernelShape: number[], units: number): void {
    // kernelClip is a WeightClip constraint applied after every optimizer step (model.fit included).
    const clip = this.kernelClip !== null ? new WeightClip({ clipValue: this.kernelClip }) : undefined;
    this.kernel = this.addWeight('kernel', kernelShape, 'float32', makeInitializer(this.kernelInitializer, deriveSeed(this.seed, 'kernel')), undefined, true);
    if (clip) enforceOnAssign(this.kernel.read() as tf.Variable, clip, this.kernel);
    if (this.useBias) this.bias = this.addWeight('bias', [units], 'float32', tf.initializers.zeros(), undefined, true);
  }

  protected requireKernel(): tf.LayerVariable {
    if (!this.kernel) throw new Error(`layer ${this.name} is not built yet (apply it to an input first)`);
    return this.kernel;
  }

  /** The kernel the layer computes with: quantized, and perturbed by the variation when training. */
  protected computeKernel(training: boolean): Tensor {
    const latent = this.requireKernel().read();
    let k = isFloat(this.kernelQuantizer) ? latent : this.kernelQuantizer!(latent);
    if (training && this.drawsNoise) {
      k = perturbWeights(k, this.variation!, noiseSeed(this.seed, this.noiseCounter));
      this.noiseCounter++;
    }
    return k;
  }

  protected quantizeInput(x: Tensor): Tensor {
    return isFloat(this.inputQuantizer) ? x : this.inputQuantizer!(x);
  }

  protected finish(y: Tensor): Tensor {
    if (this.bias) y = tf.add(y, this.bias.read());
    return this.activationFn(y);
  }

  /** The quantized kernel (no noise): what the mapping step programs. The caller disposes it. */
  quantizedKernel(): Tensor {
    const latent = this.requireKernel().read();
    return tf.tidy(() => (isFloat(this.kernelQuantizer) ? tf.clone(latent) : this.kernelQuantizer!(latent)));
  }

  /** A copy of the float latent kernel (the trainable weight). The caller disposes it. */
  latentKernel(): Tensor {
    return tf.clone(this.requireKernel().read());
  }

  /** A copy of the bias, or null without one. The caller disposes it. */
  biasValues(): Tensor | null {
    return this.bias ? tf.clone(this.bias.read()) : null;
  }

  /** Clip the latent kernel to +-kernelClipRms x RMS, then to [-kernelClip, kernelClip] (no-op without clips). */
  applyClip(): void {
    if (!this.kernel) return;
    const k = this.kernel;
    const rms = this.kernelClipRms;
    if (rms !== null) {
      tf.tidy(() => {
        const x = k.read();
        const c = tf.mul(tf.sqrt(tf.mean(tf.square(x))), rms);
        k.write(tf.minimum(tf.maximum(x, tf.neg(c)), c));
      });
    }
    if (this.kernelClip === null) return;
    const c = this.kernelClip;
    tf.tidy(() => {
      k.write(tf.clipByValue(k.read(), -c, c));
    });
  }

  override getConfig(): tf.serialization.ConfigDict {
    const own: tf.serialization.ConfigDict = {
      activation: this.activation,
      useBias: this.useBias,
      kernelInitializer: this.kernelInitializer,
      kernelQuantizer: serializeQuantizer(this.kernelQuantizer) as unknown as tf.serialization.ConfigDict | null,
      inputQuantizer: serializeQuantizer(this.inputQuantizer) as unknown as tf.serialization.ConfigDict | null,
      kernelClip: this.kernelClip,
      kernelClipRms: this.kernelClipRms,
      variation: this.variation ? ({ ...this.variation } as tf.serialization.ConfigDict) : null,
      seed: this.seed,
    };
    return { ...super.getConfig(), ...own };
  }
}

export type { QuantizerSpec };

interface HasLayers {
  layers: unknown[];
}

function* walk(model: HasLayers): Generator<unknown> {
  for (const l of model.layers) {
    yield l;
    if (l != null && Array.isArray((l as HasLayers).layers)) yield* walk(l as HasLayers);
  }
}

/** Apply every layer's kernelClipRms and kernelClip: call after each optimizer step. */
export function applyWeightClips(model: HasLayers): void {
  for (const l of walk(model)) if (l instanceof QuantKernelLayer) l.applyClip();
}
