// `memristor-tfjs summary --model NAME|DIR`: parameters and memory of a model by precision per
// layer (binary, multi-level, float), as Larq's summary: a network of the registry (built with its
// default input) or a trained model folder (the project's or a stock tfjs/Keras model).
import * as fs from 'fs';
import * as path from 'path';
import { tf } from '../tf';
import { UsageError } from '../errors';
import { loadModel } from '../model_io';
import { buildModel, modelNames } from '../../models/registry';
import { quantSummary, formatQuantSummary, QuantSummary } from '../../layers/summary';
import { CommonOptions, printResult, startBackend, checkModelFlags, MODEL_FLAGS } from './common';

export interface SummaryCommandOptions extends CommonOptions {
  /** A model name of the registry or a trained model folder (or its model.json). */
  model: string;
  /** A registry model: its float version (no quantizers). */
  float?: boolean;
  /** A registry model: --depth (resnet), --batch-norm (vgg16), --weight-levels. */
  depth?: number;
  batchNorm?: boolean;
  weightLevels?: number;
}

export interface SummaryResult extends QuantSummary {
  model: string;
  source: 'registry' | 'folder';
}

export async function summaryCommand(opts: SummaryCommandOptions): Promise<SummaryResult> {
  if (!opts.model) throw new UsageError('summary: give --model NAME (see `memristor-tfjs models`) or --model DIR (a trained model folder)');
  const isPath = fs.existsSync(opts.model);
  const isName = modelNames().includes(opts.model);
  if (!isPath && !isName) {
    throw new UsageError(`--model '${opts.model}' is neither a model of the registry (${modelNames().join(', ')}) nor a model folder`);
  }
  const modelFlags = (['float', 'depth', 'batchNorm', 'weightLevels'] as const).filter((k) => opts[k] !== undefined && opts[k] !== false);
  if (isPath && modelFlags.length) throw new UsageError(`${modelFlags.map((k) => (k === 'float' ? '--float' : MODEL_FLAGS[k])).join(', ')} go(es) with a model name of the registry, not a trained model folder`);
  if (!isPath) checkModelFlags(opts.model, opts);
  await startBackend(opts);
  let model: tf.LayersModel;
  let source: SummaryResult['source'];
  if (isPath) {
    ({ model } = await loadModel(opts.model));
    source = 'folder';
  } else {
    model = buildModel(opts.model, {
      seed: 1,
      float: !!opts.float,
      ...(opts.depth !== undefined ? { depth: opts.depth } : {}),
      ...(opts.batchNorm !== undefined ? { batchNorm: opts.batchNorm } : {}),
      ...(opts.weightLevels !== undefined ? { weightLevels: opts.weightLevels } : {}),
    });
    source = 'registry';
  }
  try {
    const s = quantSummary(model);
    const result: SummaryResult = { model: isPath ? path.resolve(opts.model) : opts.model, source, ...s };
    printResult(opts, result, () => `${isPath ? `model folder ${opts.model}` : `${opts.model}${opts.float ? ' (float)' : ''} of the registry`}: ${model.layers.length} layers\n${formatQuantSummary(s)}`);
    return result;
  } finally {
    model.dispose();
  }
}
