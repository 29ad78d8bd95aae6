// layers/: quantizers, quantized layers, device-variation noise, BN thresholds and the summary.
// Importing this module registers every custom layer class with tf.serialization, so that
// tf.loadLayersModel can rebuild saved models.
export * from './quantizers';
export * from './variation';
export * from './activations';
export { QuantKernelLayer, applyWeightClips, resetWarnings } from './quant_base';
export type { QuantLayerArgs, InitializerName, LayerArgs } from './quant_base';
export * from './quant_conv2d';
export * from './quant_dense';
export * from './quant_activation';
export * from './bn_threshold';
export * from './summary';
export * from './constraints';
