// The data pipeline: IDX files, named datasets, typed-array batches and a tf.data view of them.
export { readIdx, writeIdx, encodeIdx, parseIdx } from './idx';
export type { IdxArray, IdxType, IdxData } from './idx';
export { loadDataset } from './datasets';
export type { Split, Dataset, LoadOptions } from './datasets';
export { splitValidation, batchesOf, numBatches, selectSamples, sampleSize, toTfDataset } from './batches';
export type { Batch, BatchOptions, TfDatasetOptions } from './batches';
