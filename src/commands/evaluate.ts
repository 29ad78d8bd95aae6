// `memristor-tfjs evaluate`: test accuracy of a saved model (software) on a dataset.
import { loadDataset, SAMPLE_FLAGS } from '../data/datasets';
import { loadModel } from '../model_io';
import { evaluateModel } from '../../training/offline';
import { CommonOptions, printResult, startBackend, pct, progressOf } from './common';
import { FileFormatError } from '../errors';
import * as path from 'path';

export interface EvaluateCommandOptions extends CommonOptions {
  model?: string;
  crossbar?: string;
  dataset: string;
  testSamples?: number;
  batchSize: number;
}

export async function evaluateCommand(opts: EvaluateCommandOptions) {
  const backend = await startBackend(opts);
  const data = loadDataset(opts.dataset, { trainSamples: 1, testSamples: opts.testSamples, names: SAMPLE_FLAGS });
  const { model } = await loadModel(opts.model!);
  const inShape = model.inputs[0].shape.slice(1);
  if (inShape.join('x') !== data.imageShape.join('x')) {
    throw new FileFormatError(path.join(opts.model!, 'model.json'), `model takes ${inShape.join('x')} inputs, dataset ${opts.dataset} has ${data.imageShape.join('x')}`);
  }
  const r = evaluateModel(model, data.test, data.imageShape, data.numClasses, opts.batchSize, { progress: progressOf(opts), label: 'test' });
  const result = {
    model: opts.model,
    dataset: opts.dataset,
    backend: backend.name,
    testSamples: r.count,
    testAccuracy: r.accuracy,
    accuracy: r.accuracy,
    testLoss: r.loss,
    seconds: Number(r.seconds.toFixed(3)),
    samplesPerSec: Math.round(r.count / r.seconds),
  };
  printResult(opts, result, () => `test accuracy ${pct(r.accuracy)} on ${r.count} samples (${result.samplesPerSec} samples/s, ${backend.name})`);
  model.dispose();
  return result;
}
