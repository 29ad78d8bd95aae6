// bmcnn: binarized memristive CNNs of Lammie, Krestinskaya, James and Azghadi, "Variation-aware
// Binarized Memristive Networks", ICECS 2019 (arXiv 1910.05920).
//
// Stated (S): binary-weight CNNs with mixed fixed (binary) and floating parameters, evaluated on
// MNIST under R_ON / R_OFF variation. Inferred (I): the topology (the same two-conv network as
// bnn, with biases) and the two variants:
//   'binary-weights' (default): first and last layers float, the inner conv with binary weights,
//                               float ReLU activations (the mixed-precision variant)          (S+I)
//   'fully-binary':             every conv/dense kernel binary, sign activations between      (I)
// Train it with --variation rOnSigma=..,rOffSigma=.. to reproduce the variation study.
import { tf } from '../src/tf';
import { ConfigError } from '../src/errors';
import { QuantConv2D } from '../layers/quant_conv2d';
import { QuantDense } from '../layers/quant_dense';
import { QuantActivation } from '../layers/quant_activation';
import { glorot, layerSeed, ModelSpec, ResolvedBuildOptions } from './common';

const NAME = 'bmcnn';
export const BMCNN_VARIANTS = ['binary-weights', 'fully-binary'] as const;

export function buildBmcnn(o: ResolvedBuildOptions): tf.LayersModel {
  const variant = o.variant ?? 'binary-weights';
  if (!(BMCNN_VARIANTS as readonly string[]).includes(variant)) throw new ConfigError('variant', `unknown bmcnn variant '${variant}' (choose ${BMCNN_VARIANTS.join(', ')})`);
  const full = variant === 'fully-binary';
  const m = tf.sequential({ name: NAME });
  const kernel = (layer: string, binary: boolean) => ({
    kernelQuantizer: o.float || !binary ? null : 'steSign',
    kernelClip: o.float || !binary ? null : 1,
    variation: binary ? o.variation : null,
    seed: layerSeed(o, NAME, layer),
  });
  const act = (name: string) =>
    full && !o.float ? new QuantActivation({ name, quantizer: 'steSign' }) : tf.layers.activation({ name, activation: 'relu' });
  const conv = (name: string, filters: number, binary: boolean, first: boolean) =>
    o.stock
      ? tf.layers.conv2d({ name, filters, kernelSize: 3, padding: 'same', kernelInitializer: glorot(o, NAME, name), ...(first ? { inputShape: o.inputShape } : {}) })
      : new QuantConv2D({ name, filters, kernelSize: 3, padding: 'same', ...kernel(name, binary), ...(first ? { inputShape: o.inputShape } : {}) });
  m.add(conv('C1', 16, full, true));
  if (full) m.add(tf.layers.batchNormalization({ name: 'C1_bn', momentum: 0.9 }));
  m.add(act('C1_act'));
  m.add(tf.layers.maxPooling2d({ name: 'S1', poolSize: 2, strides: 2 }));
  m.add(conv('C2', 32, true, false));
  m.add(tf.layers.batchNormalization({ name: 'C2_bn', momentum: 0.9 }));
  m.add(act('C2_act'));
  m.add(tf.layers.maxPooling2d({ name: 'S2', poolSize: 2, strides: 2 }));
  m.add(tf.layers.flatten({ name: 'flatten' }));
  m.add(
    o.stock
      ? tf.layers.dense({ name: 'FC', units: o.numClasses, kernelInitializer: glorot(o, NAME, 'FC') })
      : new QuantDense({ name: 'FC', units: o.numClasses, ...kernel('FC', full) }),
  );
  return m;
}

export const bmcnnSpec: ModelSpec = {
  name: NAME,
  description: "Lammie et al. 2019 binarized memristive CNN: variant 'binary-weights' (mixed float/binary) or 'fully-binary'",
  defaultInput: [28, 28, 1],
  multiLevel: false,
  extraOptions: ['variant'],
  build: buildBmcnn,
};
