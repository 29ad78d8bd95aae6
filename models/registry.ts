// The model registry: every network of the papers, built by name with options.
import { tf } from '../src/tf';
import { UsageError } from '../src/errors';
import '../layers'; // registers the custom layer classes, for loading saved models too
import { BuildOptions, ImageShape, ModelSpec, resolveBuildOptions } from './common';
import { mcnnSpec } from './mcnn';
import { parkSpec } from './park';
import { bnnSpec } from './bnn';
import { bmcnnSpec } from './bmcnn';
import { vgg16Spec } from './vgg16';

export type { BuildOptions, ImageShape, ModelSpec };

const SPECS: ModelSpec[] = [mcnnSpec, parkSpec, bnnSpec, bmcnnSpec, vgg16Spec];

export function modelNames(): string[] {
  return SPECS.map((s) => s.name);
}

export function listModels(): { name: string; description: string; defaultInput: ImageShape; options: string[] }[] {
  return SPECS.map((s) => ({ name: s.name, description: s.description, defaultInput: s.defaultInput, options: s.extraOptions }));
}

export function getModelSpec(name: string): ModelSpec {
  const spec = SPECS.find((s) => s.name === name);
  if (!spec) throw new UsageError(`unknown model '${name}' (choose ${modelNames().join(', ')})`);
  return spec;
}

/** Build a model of the registry. The same seed gives bit-identical initial weights. */
export function buildModel(name: string, opts: BuildOptions): tf.LayersModel {
  const spec = getModelSpec(name);
  return spec.build(resolveBuildOptions(spec, opts));
}
