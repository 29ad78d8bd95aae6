// The public API of memristor-tfjs. Importing it registers the custom layers with
// tf.serialization; call initBackend() once to choose the backend and register the kernels.
export { tf } from './tf';
export { initBackend, backendInfo, BACKENDS } from './backend';
export type { BackendInfo, BackendName } from './backend';
export { registerFastKernels } from './kernels';
export { SeededRandom, deriveSeed } from './random';
export { UsageError, FileFormatError, ConfigError } from './errors';
export { saveModel, loadModel } from './model_io';

export * as layers from '../layers';
export { quantizers } from '../layers/quantizers';
export * as models from '../models/registry';
export * as data from './data';
export * as training from '../training';
// The hybrid method (training/pipeline.ts), also under `training`.
export { trainModel, mapAndProgram, evaluateTransfer, runInsitu, runHybrid } from '../training/pipeline';
export type { HybridOptions, HybridSummary, PipelineHooks, TrainModelOptions, TrainMetrics } from '../training/pipeline';
// Device-aware training: the device config seen from training (also under `device`).
export { variationFromDevice, deviceFromVariation, weightLevelsFromDevice, measureProgrammingError, deviceTrainingView } from './device/training_noise';
export * as device from './device';
export * as programming from './programming';
export * as mapping from './mapping';
export * as crossbar from './crossbar';
export * as energy from './energy';
export * as sweep from './sweep';
