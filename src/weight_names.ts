// Which weight of a built model each weight of a model.json manifest holds the values of.
// Writers name the same weight differently:
//   tfjs and the Keras 2 converter    conv2d/kernel, batch_normalization/moving_mean
//   Keras 3 via .h5, then converter   sequential/conv2d/kernel (the variable path: model name first)
//   Keras 3 via .keras, then converter layers/conv2d/vars/0 (the .keras file's layout: the layer's
//                                     variables by index, trainable ones first, as tfjs orders them)
//   TF 2.2+ recurrent layers          lstm/lstm_cell/kernel (tfjs's own rule drops the cell name)
// (Optimizer state the converter copies along, optimizer/vars/<i>, is skipped by the loader.)
// tfjs 4.22 reads only the first and the last (its Keras 3 index rule has a bug: it iterates the
// indices of Object.keys rather than the keys), so the names are matched here, strictly: each
// manifest weight to exactly one model weight, every model weight given a value.
import { tf } from './tf';

export interface WeightMatch {
  /** The manifest name -> the model weight it holds. */
  targets: Map<string, tf.LayerVariable>;
  /** How the names were read, one line per rule used (e.g. "model-name prefix dropped (8)"). */
  rules: string[];
}

/** The names a manifest name may stand for, with the rule that gives each ('' for the name itself), most literal first. */
function candidates(name: string, parts: string[]): [string, string][] {
  const out: [string, string][] = [[name, '']];
  if (/:\d+$/.test(name)) out.push([parts.join('/'), 'output slot (:0) dropped']);
  for (let k = 1; k <= parts.length - 2; k++) out.push([parts.slice(k).join('/'), 'model-name prefix dropped']);
  if (parts.length >= 3) out.push([[...parts.slice(0, -2), parts[parts.length - 1]].join('/'), 'cell name dropped']);
  return out;
}

/** Throws an Error naming the weight for a manifest weight with no or an ambiguous target, or a model weight without values. */
export function matchWeights(model: tf.LayersModel, names: readonly string[]): WeightMatch {
  const byName = new Map<string, tf.LayerVariable | null>(); // null: two weights share the name
  for (const w of model.weights) byName.set(w.originalName, byName.has(w.originalName) ? null : w);
  const layers = new Map(model.layers.map((l) => [l.name, l]));
  const used = new Map<tf.LayerVariable, string>();
  const targets = new Map<string, tf.LayerVariable>();
  const ruleCounts = new Map<string, number>();
  const lookup = (n: string): tf.LayerVariable | undefined => {
    const w = byName.get(n);
    if (w === null) throw new Error(`weight '${n}': the model has two weights of that name`);
    return w;
  };
  for (const name of names) {
    let rule = '';
    let target: tf.LayerVariable | undefined;
    const parts = name.replace(/:\d+$/, '').split('/');
    const v = parts.lastIndexOf('vars');
    if (v >= 1 && v === parts.length - 2 && /^\d+$/.test(parts[v + 1])) {
      // the layer: the nearest name before 'vars' that is one (layers/gru/cell/vars/0 is gru's)
      let layer: tf.layers.Layer | undefined;
      for (let k = v - 1; k >= 0 && !layer; k--) layer = layers.get(parts[k].replace(/^_/, ''));
      const index = Number(parts[v + 1]);
      if (layer) {
        target = layer.weights[index];
        if (!target) throw new Error(`weight '${name}': layer '${layer.name}' has ${layer.weights.length} weights, no weight ${index}`);
        rule = 'Keras 3 variable index (layers/<layer>/vars/<i>)';
      }
    }
    for (const [candidate, r] of candidates(name, parts)) {
      if (target) break;
      target = lookup(candidate);
      rule = r;
      // Keras 3 names a DepthwiseConv2D's kernel 'kernel'; tfjs (and Keras 2) 'depthwise_kernel'
      if (!target && candidate.endsWith('/kernel')) {
        const alias = lookup(candidate.replace(/kernel$/, 'depthwise_kernel'));
        if (alias && !byName.has(candidate)) {
          target = alias;
          rule = r ? `${r}, Keras 3 depthwise 'kernel'` : "Keras 3 depthwise 'kernel'";
        }
      }
    }
    if (!target) {
      const some = model.weights.slice(0, 6).map((w) => w.originalName);
      throw new Error(`weight '${name}' is no weight of the model (its weights: ${some.join(', ')}${model.weights.length > 6 ? ', ...' : ''})`);
    }
    const before = used.get(target);
    if (before !== undefined) throw new Error(`weights '${before}' and '${name}' both hold the model's weight '${target.originalName}'`);
    used.set(target, name);
    targets.set(name, target);
    if (rule) ruleCounts.set(rule, (ruleCounts.get(rule) ?? 0) + 1);
  }
  const missing = model.weights.filter((w) => !used.has(w));
  if (missing.length) {
    throw new Error(`no values for ${missing.length} of the model's ${model.weights.length} weights: ${missing.slice(0, 6).map((w) => w.originalName).join(', ')}${missing.length > 6 ? ', ...' : ''}`);
  }
  return { targets, rules: [...ruleCounts].map(([r, n]) => `${r} (${n})`) };
}
