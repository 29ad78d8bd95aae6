// mcnn: the five-layer memristor CNN of Yao et al., "Fully hardware-implemented memristor
// convolutional neural network", Nature 577, 641-646 (2020).
//
// Built exactly as the layer table in DESIGN.md, which is inferred (I) from stated facts (S): the
// conv layers hold 936 weights = 8 x (3x3x1) + 12 x (3x3x8) and the FC layer has 192 = 4x4x12
// inputs (S); the strides, paddings and pool sizes are what makes those numbers come out (I).
//   input 28x28x1 MNIST, pixel/255, quantized to 8 bits (S: 8-bit inputs applied bit by bit)
//   C1  conv 3x3, 8 kernels, stride 1, padding same, ReLU        -> 28x28x8
//   S2  max pool 2x2                                              -> 14x14x8
//   C3  conv 3x3x8, 12 kernels, stride 1, padding valid, ReLU     -> 12x12x12
//   S4  max pool 3x3, stride 3                                    -> 4x4x12
//   FC  dense 192 -> 10, logits (softmax only in the loss)        -> 10
// Weights: 15 signed levels spanning max|w| of each layer (S2: a 15-level weight is the difference
// of two 8-level devices). Biases stay float (digital). Activations between layers are not
// quantized here (the crossbar simulator models the ADC). Kernels start from heUniform (ReLU
// layers): one epoch (Adam 1e-2 + cosine decay, batch 64, wasm) gave 97.87-98.15% test accuracy over
// seeds 1-4, against 97.75-97.96% with glorotUniform (float baseline 98.0%).
import { tf } from '../src/tf';
import { QuantConv2D } from '../layers/quant_conv2d';
import { QuantDense } from '../layers/quant_dense';
import { heUniform, layerSeed, ModelSpec, ResolvedBuildOptions, signedLevels } from './common';

const NAME = 'mcnn';
export const MCNN_WEIGHT_LEVELS = 15;

export function buildMcnn(o: ResolvedBuildOptions): tf.LayersModel {
  const m = tf.sequential({ name: NAME });
  const levels = o.weightLevels ?? MCNN_WEIGHT_LEVELS;
  const kq = o.float ? null : signedLevels(levels);
  const q = (layer: string) => ({ kernelInitializer: 'heUniform', kernelQuantizer: kq, variation: o.variation, kernelClipRms: o.weightClipRms, seed: layerSeed(o, NAME, layer) });
  if (o.stock) {
    m.add(tf.layers.conv2d({ name: 'C1', inputShape: o.inputShape, filters: 8, kernelSize: 3, padding: 'same', activation: 'relu', kernelInitializer: heUniform(o, NAME, 'C1') }));
  } else {
    m.add(
      new QuantConv2D({
        name: 'C1',
        inputShape: o.inputShape,
        filters: 8,
        kernelSize: 3,
        padding: 'same',
        activation: 'relu',
        inputQuantizer: o.float ? null : { className: 'SteUniform', config: { levels: 256 } },
        ...q('C1'),
      }),
    );
  }
  m.add(tf.layers.maxPooling2d({ name: 'S2', poolSize: 2, strides: 2 }));
  if (o.stock) {
    m.add(tf.layers.conv2d({ name: 'C3', filters: 12, kernelSize: 3, padding: 'valid', activation: 'relu', kernelInitializer: heUniform(o, NAME, 'C3') }));
  } else {
    m.add(new QuantConv2D({ name: 'C3', filters: 12, kernelSize: 3, padding: 'valid', activation: 'relu', ...q('C3') }));
  }
  m.add(tf.layers.maxPooling2d({ name: 'S4', poolSize: 3, strides: 3 }));
  m.add(tf.layers.flatten({ name: 'flatten' }));
  if (o.stock) {
    m.add(tf.layers.dense({ name: 'FC', units: o.numClasses, kernelInitializer: heUniform(o, NAME, 'FC') }));
  } else {
    m.add(new QuantDense({ name: 'FC', units: o.numClasses, ...q('FC') }));
  }
  return m;
}

export const mcnnSpec: ModelSpec = {
  name: NAME,
  description: 'Yao et al. 2020 five-layer mCNN (MNIST): 8-bit input, conv 8 + conv 12 with 15-level weights, FC 192->10',
  defaultInput: [28, 28, 1],
  multiLevel: true,
  extraOptions: ['weightLevels'],
  // Measured here (Adam 1e-2, cosine, one epoch, seeds 1-5): batch 32 gives 97.93-98.22%, batch 64
  // 97.47-98.15%, at about the same samples/s.
  defaultBatchSize: 32,
  build: buildMcnn,
};
