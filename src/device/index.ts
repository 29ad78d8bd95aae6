// Device configs and presets.
export * from './config';
export { PRESETS, listPresets, formatPresetTable, summarizeDevice } from './presets';
export * from './training_noise';
