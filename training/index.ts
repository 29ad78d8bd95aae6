// training/: the offline loop, schedules, checkpoints and progress.
export * from './offline';
export * from './schedule';
export * from './checkpoint';
export * from './progress';
