// Learning-rate schedules, as functions of the global step.
import { ConfigError } from '../src/errors';

export const SCHEDULES = ['cosine', 'constant', 'step'] as const;
export type ScheduleName = (typeof SCHEDULES)[number];

export interface ScheduleConfig {
  name: ScheduleName;
  /** Initial learning rate. */
  learningRate: number;
  /** Steps over which cosine decays to `finalFraction * learningRate` (Keras CosineDecay). */
  totalSteps: number;
  /** Linear warm-up steps from 0 (0 = none). */
  warmupSteps?: number;
  /** cosine: the floor as a fraction of learningRate (default 0). */
  finalFraction?: number;
  /** step: multiply by `gamma` every `stepSize` steps. */
  stepSize?: number;
  gamma?: number;
}

export function learningRateAt(cfg: ScheduleConfig, step: number): number {
  if (!(cfg.learningRate > 0)) throw new ConfigError('learningRate', `must be > 0, got ${cfg.learningRate}`);
  const warm = cfg.warmupSteps ?? 0;
  if (warm > 0 && step < warm) return (cfg.learningRate * (step + 1)) / warm;
  switch (cfg.name) {
    case 'constant':
      return cfg.learningRate;
    case 'step': {
      const size = cfg.stepSize ?? Math.max(1, Math.floor(cfg.totalSteps / 3));
      return cfg.learningRate * Math.pow(cfg.gamma ?? 0.1, Math.floor(step / size));
    }
    case 'cosine': {
      const span = Math.max(1, cfg.totalSteps - warm);
      const t = Math.min(1, Math.max(0, (step - warm) / span));
      const floor = cfg.finalFraction ?? 0;
      return cfg.learningRate * (floor + (1 - floor) * 0.5 * (1 + Math.cos(Math.PI * t)));
    }
    default:
      throw new ConfigError('schedule', `unknown schedule '${String((cfg as { name: unknown }).name)}' (choose ${SCHEDULES.join(', ')})`);
  }
}
