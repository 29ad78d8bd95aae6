// Weight constraints that hold under any training loop. Larq's WeightClip keeps latent binary
// weights inside the straight-through estimator's window. tfjs-layers applies a weight's
// constraint only in LayerVariable.write, and its optimizers assign to the underlying tf.Variable
// directly, so under a plain model.fit a constraint is silently ignored; enforceOnAssign makes the
// variable apply it after every optimizer step (setWeights and model loading set values as given).
import { tf, Tensor } from '../src/tf';
import { ConfigError } from '../src/errors';

/**
 * Clips every weight to [-clipValue, clipValue] (Larq's WeightClip). Registered with
 * tf.serialization, so `kernelConstraint: 'WeightClip'` configs round-trip. (tfjs-layers does not
 * export its Constraint base class; this has its shape: apply, getConfig, getClassName.)
 */
export class WeightClip extends tf.serialization.Serializable {
  static className = 'WeightClip';
  readonly clipValue: number;

  constructor(args: { clipValue?: number } = {}) {
    super();
    const c = args.clipValue ?? 1;
    if (typeof c !== 'number' || !Number.isFinite(c) || c <= 0) throw new ConfigError('WeightClip.clipValue', `must be a positive number, got ${String(c)}`);
    this.clipValue = c;
  }

  apply(w: Tensor): Tensor {
    return tf.clipByValue(w, -this.clipValue, this.clipValue);
  }

  override getConfig(): tf.serialization.ConfigDict {
    return { clipValue: this.clipValue };
  }

  static override fromConfig<T extends tf.serialization.Serializable>(cls: tf.serialization.SerializableConstructor<T>, config: tf.serialization.ConfigDict): T {
    return new cls(config);
  }
}
tf.serialization.registerClass(WeightClip);

const HOOKED = Symbol('memristor-tfjs.constraint');
const WRITING = Symbol('memristor-tfjs.writing');
type Hooked = tf.Variable & { [HOOKED]?: { apply(w: Tensor): Tensor }; [WRITING]?: boolean };
type Writable = { write(x: Tensor): unknown; read(): Tensor; [WRITING]?: boolean };

/**
 * Makes `v` apply `constraint` after every assign by an optimizer, as Keras applies constraints
 * after each update. `owner`, the LayerVariable holding `v`: its write (setWeights, loading a
 * model) sets values as given, as Keras' set_weights does, and is not constrained here.
 * Idempotent (a second call replaces the constraint). Returns `v`.
 */
export function enforceOnAssign(v: tf.Variable, constraint: { apply(w: Tensor): Tensor }, owner?: Writable): tf.Variable {
  const h = v as Hooked;
  if (!h[HOOKED]) {
    const assign = v.assign.bind(v);
    v.assign = (x: Tensor) => {
      assign(x);
      const c = h[HOOKED];
      if (c && !h[WRITING]) {
        const y = tf.tidy(() => c.apply(v));
        assign(y);
        y.dispose();
      }
    };
  }
  if (owner && !owner[WRITING]) {
    owner[WRITING] = false;
    const write = owner.write.bind(owner);
    owner.write = (x: Tensor) => {
      h[WRITING] = true;
      try {
        return write(x);
      } finally {
        h[WRITING] = false;
      }
    };
  }
  h[HOOKED] = constraint;
  return v;
}

interface WithWeights {
  layers?: unknown[];
  weights?: { constraint?: { apply(w: Tensor): Tensor } | null; read(): Tensor }[];
}

/**
 * Makes every weight of a model (stock tf.layers included) that has a constraint apply it after
 * every assign, so that model.fit honours kernelConstraint and biasConstraint as Keras does.
 * Returns how many weights it hooked.
 */
export function enforceConstraints(model: WithWeights): number {
  let n = 0;
  const visit = (l: WithWeights) => {
    for (const w of l.weights ?? []) {
      if (w.constraint) {
        enforceOnAssign(w.read() as tf.Variable, w.constraint, w as unknown as Writable);
        n++;
      }
    }
    for (const sub of l.layers ?? []) visit(sub as WithWeights);
  };
  for (const l of model.layers ?? []) visit(l as WithWeights);
  return n;
}
