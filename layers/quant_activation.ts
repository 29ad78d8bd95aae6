// QuantActivation: a layer that applies one quantizer element-wise. Park et al.'s binary
// activation (steHeaviside at 0.5: 1 -> read voltage, 0 -> ground), a sign activation (BNN), or
// an 8-bit input quantizer (Yao et al.'s bit-serial 8-bit inputs).
import { tf, Tensor } from '../src/tf';
import { ConfigError } from '../src/errors';
import { getQuantizer, Quantizer, QuantizerIdentifier, serializeQuantizer } from './quantizers';
import { Kwargs, LayerArgs, oneInput } from './quant_base';

export interface QuantActivationArgs extends LayerArgs {
  /** The quantizer: name, {className, config} or a quantizer. Required. */
  quantizer: QuantizerIdentifier;
}

export class QuantActivation extends tf.layers.Layer {
  static className = 'QuantActivation';
  readonly quantizer: Quantizer;

  constructor(args: QuantActivationArgs) {
    super(args);
    const q = getQuantizer(args.quantizer, `${this.name}.quantizer`);
    if (!q) throw new ConfigError(`${this.name}.quantizer`, 'is required');
    this.quantizer = q;
  }

  override computeOutputShape(inputShape: tf.Shape | tf.Shape[]): tf.Shape | tf.Shape[] {
    return inputShape;
  }

  override call(inputs: Tensor | Tensor[], _kwargs: Kwargs): Tensor {
    return tf.tidy(() => this.quantizer(oneInput(inputs)));
  }

  override getConfig(): tf.serialization.ConfigDict {
    return { ...super.getConfig(), quantizer: serializeQuantizer(this.quantizer) as unknown as tf.serialization.ConfigDict };
  }
}
tf.serialization.registerClass(QuantActivation);

/** A QuantActivation. */
export function quantActivation(args: QuantActivationArgs): QuantActivation {
  return new QuantActivation(args);
}

/** Park et al.'s binary activation: 1 where x > threshold (default 0.5), else 0; windowed STE. */
export function binaryActivation(args: LayerArgs & { threshold?: number; window?: number } = {}): QuantActivation {
  const { threshold, window, ...rest } = args;
  return new QuantActivation({ ...rest, quantizer: { className: 'SteHeaviside', config: { threshold: threshold ?? 0.5, window: window ?? 0.5 } } });
}

/** Sign activation (+-1, sign(0) = +1) with the STE clipped at 1 (BinaryNet). */
export function signActivation(args: LayerArgs = {}): QuantActivation {
  return new QuantActivation({ ...args, quantizer: 'steSign' });
}
