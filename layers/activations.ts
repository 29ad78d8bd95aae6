// Element-wise activations by the names tf.layers uses (a layer config stores the name).
import { tf, Tensor } from '../src/tf';
import { ConfigError } from '../src/errors';

const ACTIVATIONS = {
  linear: (x: Tensor) => x,
  relu: (x: Tensor) => tf.relu(x),
  relu6: (x: Tensor) => tf.relu6(x),
  elu: (x: Tensor) => tf.elu(x),
  selu: (x: Tensor) => tf.selu(x),
  sigmoid: (x: Tensor) => tf.sigmoid(x),
  // tf.layers' hardSigmoid: clip(0.2 x + 0.5, 0, 1).
  hardSigmoid: (x: Tensor) => tf.clipByValue(tf.add(tf.mul(x, 0.2), 0.5), 0, 1),
  tanh: (x: Tensor) => tf.tanh(x),
  softmax: (x: Tensor) => tf.softmax(x, -1),
  softplus: (x: Tensor) => tf.softplus(x),
  softsign: (x: Tensor) => tf.div(x, tf.add(tf.abs(x), 1)),
  swish: (x: Tensor) => tf.mul(x, tf.sigmoid(x)),
} as const;

export type ActivationName = keyof typeof ACTIVATIONS;
export const ACTIVATION_NAMES = Object.keys(ACTIVATIONS) as ActivationName[];

/** The activation of a name (null/undefined: linear); ConfigError for an unknown name. */
export function getActivation(name: string | null | undefined, field = 'activation'): { name: ActivationName; fn: (x: Tensor) => Tensor } {
  const n = (name ?? 'linear') as ActivationName;
  if (!Object.prototype.hasOwnProperty.call(ACTIVATIONS, n)) {
    throw new ConfigError(field, `unknown activation '${String(name)}' (known: ${ACTIVATION_NAMES.join(', ')})`);
  }
  return { name: n, fn: ACTIVATIONS[n] };
}
