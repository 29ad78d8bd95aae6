// vgg16: VGG-16 for 32x32x3 inputs (CIFAR-10), ReLU, as mapped onto Ag-CBRAM crossbars with Mott
// (VO2) ReLU neurons by Shi et al., Neuromorph. Comput. Eng. 3, 034007 (2023).
// Topology (Simonyan & Zisserman, CIFAR form): 13 conv 3x3 layers 64,64,M,128,128,M,256x3,M,
// 512x3,M,512x3,M, then dense 512 -> 512 -> 10. Weights multi-level (default 15 signed levels,
// assumed: Shi et al. state multi-level programming without a count); optional BN after each conv.
import { tf } from '../src/tf';
import { QuantConv2D } from '../layers/quant_conv2d';
import { QuantDense } from '../layers/quant_dense';
import { glorot, layerSeed, ModelSpec, ResolvedBuildOptions, signedLevels } from './common';

const NAME = 'vgg16';
const BLOCKS = [[64, 64], [128, 128], [256, 256, 256], [512, 512, 512], [512, 512, 512]];
export const VGG16_WEIGHT_LEVELS = 15;

export function buildVgg16(o: ResolvedBuildOptions): tf.LayersModel {
  const m = tf.sequential({ name: NAME });
  const kq = o.float ? null : signedLevels(o.weightLevels ?? VGG16_WEIGHT_LEVELS);
  let first = true;
  BLOCKS.forEach((block, b) => {
    block.forEach((filters, i) => {
      const name = `conv${b + 1}_${i + 1}`;
      const shape = first ? { inputShape: o.inputShape } : {};
      const act = o.batchNorm ? 'linear' : 'relu';
      m.add(
        o.stock
          ? tf.layers.conv2d({ name, filters, kernelSize: 3, padding: 'same', activation: act, kernelInitializer: glorot(o, NAME, name), ...shape })
          : new QuantConv2D({ name, filters, kernelSize: 3, padding: 'same', activation: act, kernelQuantizer: kq, variation: o.variation, seed: layerSeed(o, NAME, name), kernelInitializer: 'heUniform', ...shape }),
      );
      if (o.batchNorm) {
        m.add(tf.layers.batchNormalization({ name: `${name}_bn` }));
        m.add(tf.layers.activation({ name: `${name}_relu`, activation: 'relu' }));
      }
      first = false;
    });
    m.add(tf.layers.maxPooling2d({ name: `pool${b + 1}`, poolSize: 2, strides: 2 }));
  });
  m.add(tf.layers.flatten({ name: 'flatten' }));
  const dense = (name: string, units: number, activation: 'relu' | 'linear') =>
    o.stock
      ? tf.layers.dense({ name, units, activation, kernelInitializer: glorot(o, NAME, name) })
      : new QuantDense({ name, units, activation, kernelQuantizer: kq, variation: o.variation, seed: layerSeed(o, NAME, name) });
  m.add(dense('fc1', 512, 'relu'));
  m.add(dense('fc2', 512, 'relu'));
  m.add(dense('fc3', o.numClasses, 'linear'));
  return m;
}

export const vgg16Spec: ModelSpec = {
  name: NAME,
  description: 'VGG-16 for 32x32x3 (CIFAR-10), ReLU, multi-level weights (Shi et al. 2023: CBRAM arrays with Mott ReLU neurons)',
  defaultInput: [32, 32, 3],
  multiLevel: true,
  extraOptions: ['weightLevels', 'batchNorm'],
  build: buildVgg16,
};
