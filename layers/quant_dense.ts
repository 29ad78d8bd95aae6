// QuantDense: a fully connected layer whose kernel and input pass through quantizers (Larq's
// QuantDense), with device-variation noise while training. The float latent kernel [in, units] is
// the trainable weight. Inputs of rank > 2 are contracted over their last axis.
import { tf, Tensor } from '../src/tf';
import { ConfigError } from '../src/errors';
import { Kwargs, oneInput, QuantKernelLayer, QuantLayerArgs } from './quant_base';

export interface QuantDenseArgs extends QuantLayerArgs {
  units: number;
}

export class QuantDense extends QuantKernelLayer {
  static className = 'QuantDense';
  readonly units: number;

  constructor(args: QuantDenseArgs) {
    super(args);
    if (!Number.isInteger(args.units) || args.units < 1) throw new ConfigError(`${this.name}.units`, `must be a positive integer, got ${String(args.units)}`);
    this.units = args.units;
  }

  override build(inputShape: tf.Shape | tf.Shape[]): void {
    const shape = (Array.isArray(inputShape[0]) ? inputShape[0] : inputShape) as tf.Shape;
    const inDim = shape[shape.length - 1];
    if (shape.length < 2 || inDim == null) throw new ConfigError(`${this.name}.input`, `expects [batch, ..., features] with known features, got ${JSON.stringify(shape)}`);
    this.addKernelAndBias([inDim, this.units], this.units);
    this.built = true;
  }

  override computeOutputShape(inputShape: tf.Shape | tf.Shape[]): tf.Shape {
    const s = (Array.isArray(inputShape[0]) ? inputShape[0] : inputShape) as tf.Shape;
    return [...s.slice(0, -1), this.units];
  }

  override call(inputs: Tensor | Tensor[], kwargs: Kwargs): Tensor {
    return tf.tidy(() => {
      let x = this.quantizeInput(oneInput(inputs));
      const k = this.computeKernel(kwargs?.training === true) as tf.Tensor2D;
      const lead = x.shape.slice(0, -1);
      if (x.rank !== 2) x = tf.reshape(x, [-1, x.shape[x.rank - 1]]);
      let y: Tensor = tf.matMul(x as tf.Tensor2D, k);
      if (lead.length !== 1) y = tf.reshape(y, [...lead, this.units]);
      return this.finish(y);
    });
  }

  override getConfig(): tf.serialization.ConfigDict {
    return { ...super.getConfig(), units: this.units };
  }
}
tf.serialization.registerClass(QuantDense);

/** A QuantDense. */
export function quantDense(args: QuantDenseArgs): QuantDense {
  return new QuantDense(args);
}

/** Larq's binary dense layer: steSign kernel and input, kernel clipped to [-1, 1], no bias by default. */
export function binaryDense(args: Omit<QuantDenseArgs, 'kernelQuantizer' | 'inputQuantizer'> & Partial<Pick<QuantDenseArgs, 'kernelQuantizer' | 'inputQuantizer'>>): QuantDense {
  return new QuantDense({
    ...args,
    kernelQuantizer: args.kernelQuantizer === undefined ? 'steSign' : args.kernelQuantizer,
    inputQuantizer: args.inputQuantizer === undefined ? 'steSign' : args.inputQuantizer,
    kernelClip: args.kernelClip === undefined ? 1 : args.kernelClip,
    useBias: args.useBias ?? false,
  });
}
