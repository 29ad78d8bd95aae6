// Device configs and presets, the training noise they imply, and fitting a device to measured pulse trains.
export * from './config';
export { PRESETS, listPresets, formatPresetTable, summarizeDevice } from './presets';
export * from './fit';
export * from './training_noise';
