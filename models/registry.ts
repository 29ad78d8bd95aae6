// The registry of the papers' networks: buildModel(name, opts) and listModels().
import { tf, requireBackend } from '../src/tf';
import { ConfigError } from '../src/errors';
// Registers every custom layer class (QuantConv2D, QuantDense, QuantActivation,
// ThresholdActivation) so that saved models load.
import '../layers';
import { BuildOptions, ImageShape, ModelSpec, resolveBuildOptions } from './common';
import { mcnnSpec } from './mcnn';
import { parkSpec } from './park';
import { bnnSpec } from './bnn';
import { bmcnnSpec } from './bmcnn';
import { vgg16Spec } from './vgg16';
import { resnetSpec } from './resnet';

export type { BuildOptions, ImageShape } from './common';

const MODELS: ModelSpec[] = [mcnnSpec, parkSpec, bnnSpec, bmcnnSpec, vgg16Spec, resnetSpec];

/** The names buildModel accepts. */
export function modelNames(): string[] {
  return MODELS.map((m) => m.name);
}

export interface ModelListing {
  name: string;
  description: string;
  defaultInput: ImageShape;
}

/** Every model with a one-line description and its default input shape. */
export function listModels(): ModelListing[] {
  return MODELS.map((m) => ({ name: m.name, description: m.description, defaultInput: [...m.defaultInput] as ImageShape }));
}

/** The spec of a model by name (ConfigError for an unknown name). */
export function modelSpec(name: string): ModelSpec {
  const spec = MODELS.find((m) => m.name === name);
  if (!spec) throw new ConfigError('model', `unknown model '${name}' (choose ${modelNames().join(', ')})`);
  return spec;
}

/**
 * Validates the options of a model of the registry without building it (no backend needed): the
 * ConfigError buildModel would throw, before any data is loaded.
 */
export function checkBuildOptions(name: string, opts: BuildOptions): void {
  resolveBuildOptions(modelSpec(name), opts);
}

/**
 * Build a network of the registry, its weights initialized from opts.seed (the same seed gives
 * bit-identical initial weights on the same backend). Outputs logits: softmax belongs in the loss.
 */
export function buildModel(name: string, opts: BuildOptions): tf.LayersModel {
  const spec = modelSpec(name);
  const resolved = resolveBuildOptions(spec, opts);
  requireBackend(`buildModel('${name}')`);
  return spec.build(resolved);
}
