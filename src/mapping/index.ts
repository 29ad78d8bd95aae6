// Mapping weights onto crossbar arrays: schemes (differential pair, reference column), the
// constant-sign transform for +-1 inputs, tiling onto fixed-size arrays, and programming the
// arrays by write-verify with a per-layer report.
export * from './schemes';
export * from './tiling';
export * from './program';
