// Pieces shared by the CLI commands: the backend line, output of results, JSON mode.
import { initBackend, BackendInfo } from '../backend';
import { ConfigError, UsageError } from '../errors';
import { checkBuildOptions, modelSpec, modelNames } from '../../models/registry';
import { parseArraySize } from '../mapping/tiling';
import { barProgress, ProgressReporter, trackCounts, trackEvaluation } from '../../training/progress';

export interface CommonOptions {
  backend?: string;
  json?: boolean;
  /** --no-progress: false. */
  progress?: boolean;
}

/**
 * The progress of a command on stderr (a bar on a terminal, a plain line every few seconds when
 * piped), or undefined with --no-progress (opts.progress false). unit: what is counted.
 */
export function progressOf(opts: { progress?: boolean }, unit?: string): ProgressReporter | undefined {
  return opts.progress === false ? undefined : barProgress(process.stderr, { unit });
}

/** A progress callback of the library: done of total (and the correct answers so far, shown as acc). */
export type CountCallback = (done: number, total: number, correct?: number) => void;

/**
 * Runs `run` with a progress callback that drives a reporter under `label` (started at the first
 * call, stopped when run returns or throws); no output with --no-progress.
 */
export function tracked<T>(opts: { progress?: boolean }, label: string, run: (onProgress: CountCallback) => T, unit?: string): T {
  return trackCounts(progressOf(opts, unit), label, run);
}

/** tracked for a crossbar evaluation that may calibrate first: a calibration line, then the test images'. */
export function trackedEvaluation<T>(
  opts: { progress?: boolean },
  label: string,
  run: (onProgress: (done: number, total: number, correct?: number) => void, onCalibrationStep: (done: number, total: number) => void) => T,
): T {
  return trackEvaluation(progressOf(opts), label, run);
}

/** Messages for people go to stderr, so that stdout holds only the result (JSON with --json). */
export function info(msg: string): void {
  process.stderr.write(msg + '\n');
}

export async function startBackend(opts: CommonOptions): Promise<BackendInfo> {
  const b = await initBackend(opts.backend);
  info(`backend: ${b.name} (${b.reason})`);
  return b;
}

export function printResult(opts: CommonOptions, result: unknown, human: () => string): void {
  if (opts.json) process.stdout.write(JSON.stringify(result, null, 2) + '\n');
  else process.stdout.write(human() + '\n');
}

export function peakRssMB(): number {
  return Math.round(process.resourceUsage().maxRSS / 1024);
}

export function pct(x: number | null | undefined): string {
  return x == null || !Number.isFinite(x) ? '-' : `${(100 * x).toFixed(2)}%`;
}

/**
 * An integer flag of a command called from code or the CLI (a number, or the string the CLI
 * gives); undefined when absent; a UsageError naming the flag otherwise.
 */
export function intFlag(v: number | string | undefined, flag: string, min: number): number | undefined {
  if (v === undefined || v === null || v === '') return undefined;
  const n = typeof v === 'number' ? v : /^\s*-?\d+\s*$/.test(v) ? Number(v) : NaN;
  if (!Number.isSafeInteger(n) || n < min) throw new UsageError(`${flag} must be an integer >= ${min}, got '${v}'`);
  return n;
}

/** Largest array side accepted: no crossbar is larger, and beyond it a typo (an extra digit) is likelier. */
export const MAX_ARRAY_SIDE = 65536;

/**
 * The --array RxC flag of map, hybrid and sweep: rows x columns, each in [1, MAX_ARRAY_SIDE], at
 * least 2 columns (a weight and its pair or reference column); a UsageError naming the flag.
 */
export function arrayFlag(v: string | undefined): [number, number] {
  const size = parseArraySize(v ?? '128x128');
  if (!size) throw new UsageError(`--array must be RxC like 128x16, got '${v}'`);
  if (size[1] < 2) throw new UsageError(`--array must have >= 2 columns (a weight and its pair or reference column), got '${v}'`);
  if (size[0] > MAX_ARRAY_SIDE || size[1] > MAX_ARRAY_SIDE) {
    throw new UsageError(`--array ${v}: rows and columns must be <= ${MAX_ARRAY_SIDE} (real crossbars hold 16-4096 a side)`);
  }
  return size;
}

/** The flags of the options only some models take (models/common.ts EXTRA_OPTIONS). */
export const MODEL_FLAGS = { depth: '--depth', batchNorm: '--batch-norm', weightLevels: '--weight-levels' } as const;

/**
 * Checks --depth, --batch-norm and --weight-levels against the model before anything runs: a flag
 * the model does not take, or a value it refuses (a depth that is not 6n+2), is a UsageError
 * naming the flag.
 */
export function checkModelFlags(model: string, opts: { depth?: number; batchNorm?: boolean; weightLevels?: number; float?: boolean }): void {
  const spec = modelSpec(model);
  for (const [k, flag] of Object.entries(MODEL_FLAGS) as [keyof typeof MODEL_FLAGS, string][]) {
    if (opts[k] === undefined || spec.extraOptions.includes(k)) continue;
    const takers = modelNames().filter((n) => modelSpec(n).extraOptions.includes(k));
    throw new UsageError(`${flag} does not apply to ${model} (it applies to ${takers.join(', ')})`);
  }
  try {
    checkBuildOptions(model, {
      seed: 0,
      ...(opts.float ? { float: true } : {}),
      ...(opts.depth !== undefined ? { depth: opts.depth } : {}),
      ...(opts.batchNorm !== undefined ? { batchNorm: opts.batchNorm } : {}),
      ...(opts.weightLevels !== undefined ? { weightLevels: opts.weightLevels } : {}),
    });
  } catch (e) {
    const flag = e instanceof ConfigError ? (MODEL_FLAGS as Record<string, string>)[e.field] : undefined;
    if (flag) throw new UsageError(`${flag}: ${(e as ConfigError).problem}`);
    throw e;
  }
}
