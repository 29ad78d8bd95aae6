// Pieces shared by the CLI commands: the backend line, output of results, JSON mode.
import { initBackend, BackendInfo } from '../backend';

export interface CommonOptions {
  backend?: string;
  json?: boolean;
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
