// training/: the offline loop, schedules, checkpoints, progress, the in-situ loop and the hybrid
// method as a pipeline (train -> map -> evaluate -> in situ -> evaluate).
export * from './offline';
export * from './schedule';
export * from './checkpoint';
export * from './progress';
export { insituTrain, insituLayer, INSITU_RULES, DEFAULT_INSITU_LR } from './insitu';
export type { InsituOptions, InsituResult, InsituPoint, InsituRule } from './insitu';
export { insituRecord, saveInsituDir, INSITU_FILE, INSITU_FORMAT } from './insitu_files';
export type { InsituRecord } from './insitu_files';
export * from './pipeline';
