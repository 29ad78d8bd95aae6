// vgg16: VGG-16 for 32x32x3 images (CIFAR-10), after Shi et al. (Kuzum group), "Integration of
// Ag-CBRAM crossbars and Mott ReLU neurons for efficient implementation of deep neural networks in
// hardware", Neuromorph. Comput. Eng. 3, 034007 (2023).
//
// Stated (S): VGG-16 conv filters and ReLU activations implemented with Ag-CBRAM crossbars (high
// ON/OFF ratio, multi-level programming) and a Mott (VO2) ReLU neuron at each column; CIFAR-10.
// Inferred (I): the CIFAR form of VGG-16 (13 conv 3x3 layers 64,64,M,128,128,M,256x3,M,512x3,M,
// 512x3,M with ReLU, padding same; then dense 512 -> 512 ReLU -> 10), and 15 signed weight levels
// spanning max|w| per layer (the abstract gives no level count; change with `weightLevels`).
// `batchNorm: true` adds BN after every conv (not in the classic topology; it trains far more
// easily from scratch).
import { tf } from '../src/tf';
import { ConfigError } from '../src/errors';
import { QuantConv2D } from '../layers/quant_conv2d';
import { QuantDense } from '../layers/quant_dense';
import { glorot, layerSeed, ModelSpec, ResolvedBuildOptions, signedLevels } from './common';

const NAME = 'vgg16';
export const VGG16_WEIGHT_LEVELS = 15;
export const VGG16_PLAN: (number | 'M')[] = [64, 64, 'M', 128, 128, 'M', 256, 256, 256, 'M', 512, 512, 512, 'M', 512, 512, 512, 'M'];

export function buildVgg16(o: ResolvedBuildOptions): tf.LayersModel {
  const [h, w] = o.inputShape;
  if (h < 32 || w < 32) throw new ConfigError('inputShape', `vgg16 pools five times: it needs at least 32x32 images, got ${h}x${w}`);
  const m = tf.sequential({ name: NAME });
  const kq = o.float ? null : signedLevels(o.weightLevels ?? VGG16_WEIGHT_LEVELS);
  const bn = o.batchNorm ?? false;
  let block = 1;
  let idx = 1;
  let first = true;
  for (const p of VGG16_PLAN) {
    if (p === 'M') {
      m.add(tf.layers.maxPooling2d({ name: `block${block}_pool`, poolSize: 2, strides: 2 }));
      block++;
      idx = 1;
      continue;
    }
    const name = `block${block}_conv${idx++}`;
    const shape = first ? { inputShape: o.inputShape } : {};
    first = false;
    const activation = bn ? 'linear' : 'relu';
    if (o.stock) {
      m.add(tf.layers.conv2d({ name, filters: p, kernelSize: 3, padding: 'same', activation, useBias: !bn, kernelInitializer: glorot(o, NAME, name), ...shape }));
    } else {
      m.add(
        new QuantConv2D({ name, filters: p, kernelSize: 3, padding: 'same', activation, useBias: !bn, kernelQuantizer: kq, variation: o.variation, kernelClipRms: o.weightClipRms, seed: layerSeed(o, NAME, name), ...shape }),
      );
    }
    if (bn) {
      // momentum 0.9: with tfjs's 0.99 the moving statistics of a short run stay near their initial values
      m.add(tf.layers.batchNormalization({ name: `${name}_bn`, momentum: 0.9 }));
      m.add(tf.layers.activation({ name: `${name}_relu`, activation: 'relu' }));
    }
  }
  m.add(tf.layers.flatten({ name: 'flatten' }));
  const dense = (name: string, units: number, activation: 'relu' | 'linear') =>
    o.stock
      ? tf.layers.dense({ name, units, activation, kernelInitializer: glorot(o, NAME, name) })
      : new QuantDense({ name, units, activation, kernelQuantizer: kq, variation: o.variation, kernelClipRms: o.weightClipRms, seed: layerSeed(o, NAME, name) });
  m.add(dense('fc1', 512, 'relu'));
  m.add(dense('fc2', o.numClasses, 'linear'));
  return m;
}

export const vgg16Spec: ModelSpec = {
  name: NAME,
  description: 'Shi et al. 2023 VGG-16 for CIFAR-10 (32x32x3): 13 conv 3x3 + dense 512 + dense 10, 15-level weights',
  defaultInput: [32, 32, 3],
  multiLevel: true,
  extraOptions: ['weightLevels', 'batchNorm'],
  build: buildVgg16,
};
