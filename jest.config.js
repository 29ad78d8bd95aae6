/** @type {import('jest').Config} */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  transform: { '^.+\\.ts$': ['@swc/jest'] },
  testTimeout: 120000,
  // Compiles the AssemblyScript kernels to wasm/ where missing or stale (the tests load them from there).
  globalSetup: '<rootDir>/test/global_setup.js',
};
