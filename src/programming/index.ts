// Programming memristor cells: per-cell device instances, the pulse model, reads, drift, level
// quantization and write-verify tuning with its report.
export * from './instances';
export * from './pulse';
export * from './write_verify';
export * from './normal';
export * from './pulse_plan';
