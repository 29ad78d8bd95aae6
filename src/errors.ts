// Errors the CLI turns into one clear line. Anything else is a bug and shows its stack.

/** A bad command line or option value: the CLI exits with code 2. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

/** A file that cannot be read or is not what it should be: the message names the file. */
export class FileFormatError extends Error {
  override readonly name = 'FileFormatError';
  constructor(readonly file: string, readonly problem: string) {
    super(`${file}: ${problem}`);
  }
}

/** A configuration object (device, layer, model options) with a missing or out-of-range field. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  constructor(readonly field: string, readonly problem: string) {
    super(`${field}: ${problem}`);
  }
}

/**
 * A function of the package that needs tfjs's backend was called before any backend started
 * (tfjs prefers wasm, which starts asynchronously): the message names the one call that fixes it.
 */
export class BackendNotReadyError extends Error {
  override readonly name = 'BackendNotReadyError';
}
