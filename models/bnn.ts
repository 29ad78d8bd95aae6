// bnn: the binarized CNN of Chen et al., Neural Networks 144, 565-572 (2021).
//
// Stated (S): +-1 weights and +-1 activations; the input map and kernel converted so each port's
// voltage sign is fixed (the crossbar mapping does that); BatchNorm and binarization merged into
// one comparator circuit (layers/bn_threshold.ts computes the thresholds).
// Inferred (I), the abstract gives no topology; kept small so that it trains fast on wasm (about
// 1,000 samples/s measured on 2 shared cores; 97.9% MNIST test accuracy after 5 epochs, Adam 1e-2
// with cosine decay, batch 64, seed 1):
//   input   pixel/255, real-valued into the first layer (as in BinaryNet/Larq)        (I)
//   B1      binary conv 3x3, 16 kernels, same, no bias -> max pool 2 -> BN -> sign    (S + I)
//   B2      binary conv 3x3, 32 kernels, same, no bias -> max pool 2 -> BN -> sign    (S + I)
//           (pooling before BN and sign, as in BinaryNet: a quarter of the BN work, and the
//           pooled column currents go to one comparator each)
//   FC      binary dense 1568 -> 10, no bias -> BN (scales the logits)               (S + I)
// Latent weights are clipped to [-1, 1] (Larq's recommendation for steSign).
import { tf } from '../src/tf';
import { QuantConv2D } from '../layers/quant_conv2d';
import { QuantDense } from '../layers/quant_dense';
import { QuantActivation } from '../layers/quant_activation';
import { glorot, layerSeed, ModelSpec, ResolvedBuildOptions } from './common';

const NAME = 'bnn';

export function buildBnn(o: ResolvedBuildOptions): tf.LayersModel {
  const m = tf.sequential({ name: NAME });
  const bin = (layer: string, firstLayer = false) => ({
    kernelQuantizer: o.float ? null : 'steSign',
    // The first layer sees the real-valued image; later layers see +-1 activations already.
    inputQuantizer: null,
    kernelClip: o.float ? null : 1,
    useBias: false,
    variation: o.variation,
    kernelClipRms: o.weightClipRms,
    seed: layerSeed(o, NAME, layer),
    ...(firstLayer ? { inputShape: o.inputShape } : {}),
  });
  const act = (name: string) =>
    o.float ? tf.layers.activation({ name, activation: 'relu' }) : new QuantActivation({ name, quantizer: 'steSign' });
  const conv = (name: string, filters: number, first: boolean) =>
    o.stock
      ? tf.layers.conv2d({ name, filters, kernelSize: 3, padding: 'same', useBias: false, kernelInitializer: glorot(o, NAME, name), ...(first ? { inputShape: o.inputShape } : {}) })
      : new QuantConv2D({ name, filters, kernelSize: 3, padding: 'same', ...bin(name, first) });
  m.add(conv('B1', 16, true));
  m.add(tf.layers.maxPooling2d({ name: 'B1_pool', poolSize: 2, strides: 2 }));
  m.add(tf.layers.batchNormalization({ name: 'B1_bn', momentum: 0.9, epsilon: 1e-3 }));
  m.add(act('B1_sign'));
  m.add(conv('B2', 32, false));
  m.add(tf.layers.maxPooling2d({ name: 'B2_pool', poolSize: 2, strides: 2 }));
  m.add(tf.layers.batchNormalization({ name: 'B2_bn', momentum: 0.9, epsilon: 1e-3 }));
  m.add(act('B2_sign'));
  m.add(tf.layers.flatten({ name: 'flatten' }));
  m.add(
    o.stock
      ? tf.layers.dense({ name: 'FC', units: o.numClasses, useBias: false, kernelInitializer: glorot(o, NAME, 'FC') })
      : new QuantDense({ name: 'FC', units: o.numClasses, ...bin('FC') }),
  );
  m.add(tf.layers.batchNormalization({ name: 'FC_bn', momentum: 0.9, epsilon: 1e-3 }));
  return m;
}

export const bnnSpec: ModelSpec = {
  name: NAME,
  description: 'Chen et al. 2021 BNN: binary (+-1) weights and activations, BN merged into comparator thresholds; conv 16, conv 32, dense 10',
  defaultInput: [28, 28, 1],
  multiLevel: false,
  extraOptions: [],
  build: buildBnn,
};
