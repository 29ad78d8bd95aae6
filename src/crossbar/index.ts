// Crossbar arrays: the conductance file format, IR drop, mapped networks and their inference.
export * from './files';
export * from './ir_drop';
export * from './network';
export * from './inference';
export * from './measured';
export * from './comparator';
