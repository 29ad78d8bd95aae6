// training/: the offline loop, schedules, checkpoints, progress, and in-situ training with its files.
export * from './offline';
export * from './schedule';
export * from './checkpoint';
export * from './progress';
export * from './insitu';
export * from './insitu_files';
