// Device configs and presets, and fitting a device to measured pulse trains.
export * from './config';
export { PRESETS, listPresets, formatPresetTable, summarizeDevice } from './presets';
export * from './fit';
