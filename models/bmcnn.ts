// bmcnn: binarized memristive CNNs after Lammie, Krestinskaya, James and Azghadi, "Variation-aware
// Binarized Memristive Networks", ICECS 2019 (arXiv 1910.05920).
//
// Stated (S): binary-weight CNNs on MNIST with hybrid weight and parameter representations (some
// parameters fixed/binary, some floating point), trained offline and mapped to binarized
// memristive devices; R_ON and R_OFF variation and its mitigation (here: train with
// `variation` set, see layers/variation.ts).
// Inferred (I): the topology and which layers stay float (the abstract gives neither):
//   conv1  32 3x3, padding same           -> pool 2x2 -> 14x14x32
//   conv2  32 3x3, padding valid, BN      -> pool 2x2 -> 6x6x32
//   fc1    dense 1152 -> 128, BN
//   fc2    dense 128 -> 10 (logits)
// variant 'binary-weights' (default): conv2 and fc1 have binary weights (steSign, clip 1), conv1
//   and fc2 stay float (first and last layers in full precision, the usual BNN practice), all
//   activations ReLU in float.
// variant 'fully-binary': every layer has binary weights; the input is binarized at 0.5 ({0,1}) and
//   every hidden activation is a sign (+-1) after BN; the logits get a BN (BinaryNet).
import { tf } from '../src/tf';
import { ConfigError } from '../src/errors';
import { QuantConv2D } from '../layers/quant_conv2d';
import { QuantDense } from '../layers/quant_dense';
import { QuantActivation } from '../layers/quant_activation';
import { glorot, layerSeed, ModelSpec, ResolvedBuildOptions } from './common';

const NAME = 'bmcnn';
export const BMCNN_VARIANTS = ['binary-weights', 'fully-binary'] as const;
export type BmcnnVariant = (typeof BMCNN_VARIANTS)[number];

export function buildBmcnn(o: ResolvedBuildOptions): tf.LayersModel {
  const variant = (o.variant ?? 'binary-weights') as BmcnnVariant;
  if (!BMCNN_VARIANTS.includes(variant)) throw new ConfigError('variant', `unknown bmcnn variant '${o.variant}' (choose ${BMCNN_VARIANTS.join(', ')})`);
  const full = variant === 'fully-binary';
  const m = tf.sequential({ name: `${NAME}_${variant.replace('-', '_')}` });
  const binaryLayer = (name: string) => !o.float && (full || name === 'conv2' || name === 'fc1');
  const kernel = (name: string) =>
    binaryLayer(name) ? { kernelQuantizer: { className: 'SteSign', config: { clipValue: 1 } }, kernelClip: 1 } : { kernelQuantizer: null, kernelClip: null };
  const common = (name: string) => ({ ...kernel(name), variation: binaryLayer(name) ? o.variation : null, kernelClipRms: binaryLayer(name) ? o.weightClipRms : null, seed: layerSeed(o, NAME, name) });
  // Binary layers feeding a BN need no bias (BN's beta is the bias).
  const conv = (name: string, filters: number, padding: 'same' | 'valid', useBias: boolean, extra: object = {}) =>
    o.stock
      ? tf.layers.conv2d({ name, filters, kernelSize: 3, padding, useBias, kernelInitializer: glorot(o, NAME, name), ...extra })
      : new QuantConv2D({ name, filters, kernelSize: 3, padding, useBias, ...common(name), ...extra });
  const dense = (name: string, units: number, useBias: boolean) =>
    o.stock
      ? tf.layers.dense({ name, units, useBias, kernelInitializer: glorot(o, NAME, name) })
      : new QuantDense({ name, units, useBias, ...common(name) });
  const act = (name: string) => (full && !o.float ? new QuantActivation({ name, quantizer: 'steSign' }) : tf.layers.activation({ name, activation: 'relu' }));

  const firstInput = full && !o.float && !o.stock ? { inputQuantizer: { className: 'SteHeaviside', config: { threshold: 0.5, window: 0.5 } } } : {};
  m.add(conv('conv1', 32, 'same', !full, { inputShape: o.inputShape, ...firstInput }));
  m.add(tf.layers.maxPooling2d({ name: 'pool1', poolSize: 2, strides: 2 }));
  if (full) m.add(tf.layers.batchNormalization({ name: 'bn1' }));
  m.add(act('act1'));
  m.add(conv('conv2', 32, 'valid', false));
  m.add(tf.layers.maxPooling2d({ name: 'pool2', poolSize: 2, strides: 2 }));
  m.add(tf.layers.batchNormalization({ name: 'bn2' }));
  m.add(act('act2'));
  m.add(tf.layers.flatten({ name: 'flatten' }));
  m.add(dense('fc1', 128, false));
  m.add(tf.layers.batchNormalization({ name: 'bn3' }));
  m.add(act('act3'));
  m.add(dense('fc2', o.numClasses, !full));
  if (full) m.add(tf.layers.batchNormalization({ name: 'bnOut' }));
  return m;
}

export const bmcnnSpec: ModelSpec = {
  name: NAME,
  description: "Lammie et al. 2019 binarized memristive CNN (MNIST); variant 'binary-weights' (float first/last layers and activations) or 'fully-binary'",
  defaultInput: [28, 28, 1],
  multiLevel: false,
  extraOptions: ['variant'],
  build: buildBmcnn,
};
