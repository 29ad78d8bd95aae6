// The optimizers of the offline loop, and the two things every training thread does with them
// (the single loop of offline.ts and each replica of data_parallel.ts): set the step's learning
// rate, and list the variables it updates.
import { tf } from '../src/tf';
import { ADAM_UPDATE } from '../src/kernels';

/** What FusedAdam uses of tf.AdamOptimizer's state (private in its typings). */
interface AdamState {
  accBeta1: tf.Variable;
  accBeta2: tf.Variable;
  accumulatedFirstMoment: ({ originalName: string; variable: tf.Variable } | undefined)[];
  accumulatedSecondMoment: ({ originalName: string; variable: tf.Variable } | undefined)[];
}

/**
 * tf.AdamOptimizer whose update of a variable is one kernel (ADAM_UPDATE, src/kernels/adam.ts)
 * where the backend has it (wasm, cpu), else tfjs's own chain of 14: the same state, weights,
 * serialization (class name 'Adam') and, kernel for kernel, the same float32 results.
 */
export class FusedAdam extends tf.AdamOptimizer {
  constructor(learningRate: number, beta1 = 0.9, beta2 = 0.999, epsilon: number | null = null) {
    super(learningRate, beta1, beta2, epsilon as number);
  }

  override applyGradients(variableGradients: Parameters<tf.AdamOptimizer['applyGradients']>[0]): void {
    if (!tf.getKernel(ADAM_UPDATE, tf.getBackend())) {
      super.applyGradients(variableGradients);
      return;
    }
    const s = this as unknown as AdamState;
    const list = Array.isArray(variableGradients) ? variableGradients : null;
    const names = list ? list.map((v) => v.name) : Object.keys(variableGradients);
    const engine = tf.engine();
    tf.tidy(() => {
      const c1 = tf.sub(1, s.accBeta1);
      const c2 = tf.sub(1, s.accBeta2);
      const attrs = { beta1: this.beta1, beta2: this.beta2, epsilon: this.epsilon, learningRate: this.learningRate };
      names.forEach((name, i) => {
        const value = engine.registeredVariables[name];
        const moment = (k: string) => ({ originalName: `${name}/${k}`, variable: tf.tidy(() => tf.zerosLike(value).variable(false)) });
        s.accumulatedFirstMoment[i] ??= moment('m');
        s.accumulatedSecondMoment[i] ??= moment('v');
        const g = list ? list[i].tensor : (variableGradients as Record<string, tf.Tensor>)[name];
        if (g == null) return;
        const m = s.accumulatedFirstMoment[i]!.variable;
        const v = s.accumulatedSecondMoment[i]!.variable;
        const [x1, m1, v1] = engine.runKernel(ADAM_UPDATE, { x: value, m, v, g, c1, c2 }, attrs) as tf.Tensor[];
        m.assign(m1);
        v.assign(v1);
        value.assign(x1);
      });
      s.accBeta1.assign(tf.mul(s.accBeta1, this.beta1));
      s.accBeta2.assign(tf.mul(s.accBeta2, this.beta2));
    });
    this.incrementIterations();
  }
}

export const OPTIMIZERS = ['adam', 'sgd', 'momentum'] as const;
export type OptimizerName = (typeof OPTIMIZERS)[number];

export function makeOptimizer(name: OptimizerName, learningRate: number): tf.Optimizer {
  switch (name) {
    case 'adam':
      return new FusedAdam(learningRate);
    case 'sgd':
      return tf.train.sgd(learningRate);
    case 'momentum':
      return tf.train.momentum(learningRate, 0.9);
  }
}

export function setLearningRate(opt: tf.Optimizer, lr: number): void {
  const o = opt as unknown as { learningRate: number; setLearningRate?: (lr: number) => void };
  if (o.setLearningRate) o.setLearningRate(lr);
  else o.learningRate = lr;
}

/** The variables an optimizer step updates, in the model's order (the order optimizer state follows). */
export function trainableVariables(model: tf.LayersModel): tf.Variable[] {
  return model.trainableWeights.map((w) => w.read() as tf.Variable);
}
