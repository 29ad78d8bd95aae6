// training/: the offline loop, schedules, checkpoints, progress, the in-situ loop with its files and
// the hybrid method as a pipeline (train -> map -> evaluate -> in situ -> evaluate).
export * from './offline';
export * from './schedule';
export * from './checkpoint';
export * from './progress';
export * from './insitu';
export { PulseController, checkRuleSettings } from './insitu_rules';
export type { RuleSettings } from './insitu_rules';
export * from './insitu_files';
export * from './pipeline';
export * from './reproduce';
