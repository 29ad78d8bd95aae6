// The public API of memristor-tfjs. Importing it registers the custom layers with
// tf.serialization and this package's kernels for the wasm and cpu backends, so that tfjs's own
// `await tf.ready()` is enough; initBackend() also tries tfjs-node first and says which backend runs.
import { registerFastKernels } from './kernels';
import { registerBatchNormGradient } from './gradients/batch_norm';

export { tf, requireBackend } from './tf';
export { initBackend, backendInfo, BACKENDS } from './backend';
export type { BackendInfo, BackendName } from './backend';
export { registerFastKernels } from './kernels';
export { SeededRandom, deriveSeed } from './random';
export { UsageError, FileFormatError, ConfigError, BackendNotReadyError } from './errors';
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
export { fitDevice, readPulseCsv, parsePulseCsv, formatDeviceFit } from './device/fit';
export * as programming from './programming';
export * as mapping from './mapping';
export * as crossbar from './crossbar';
export * as energy from './energy';
export * as sweep from './sweep';
// shards of a sweep: shardRange, readShardFile, mergeShards, shardStatus (sweep/shard.ts)
export * as sweepShards from './sweep/shard';

// Kernel registration does not need the backend started (tfjs keeps kernels by backend name).
registerFastKernels('wasm');
registerFastKernels('cpu');
registerBatchNormGradient();
