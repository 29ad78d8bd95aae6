// What the benchmarks that run the CLI as a user does share: their own flags, and one CLI process.
import { spawn } from 'child_process';

/** The value after `name` on the benchmark's command line, or `fallback`. */
export function flag(name: string, fallback: string): string {
  const i = process.argv.indexOf(name);
  return i >= 0 && process.argv[i + 1] ? process.argv[i + 1] : fallback;
}

/**
 * Runs node with `args` (the CLI and its arguments); resolves with its stdout when it exited with
 * code 0. `capture` false: stdout is dropped and stderr shown as it comes; true: both are kept,
 * and a failure names stderr's last line.
 */
export function runCli(args: string[], capture = false): Promise<string> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, args, { stdio: ['ignore', capture ? 'pipe' : 'ignore', capture ? 'pipe' : 'inherit'] });
    let out = '';
    let err = '';
    p.stdout?.on('data', (d) => (out += d));
    p.stderr?.on('data', (d) => (err += d));
    p.on('error', reject);
    p.on('exit', (code) => {
      if (code === 0) resolve(out);
      else reject(new Error(`${args.slice(1, 3).join(' ')} exited with code ${code}${capture ? `: ${err.trim().split('\n').pop()}` : ''}`));
    });
  });
}
