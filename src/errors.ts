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

/**
 * Shards that do not make one whole sweep (`sweep merge`): every problem found, each naming its
 * file. The CLI exits with code 1.
 */
export class ShardMergeError extends Error {
  override readonly name = 'ShardMergeError';
  constructor(readonly problems: readonly string[]) {
    super(`the shards do not make one sweep (${problems.length} problem${problems.length === 1 ? '' : 's'}; nothing written):\n  ${problems.join('\n  ')}`);
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
