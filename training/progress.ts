// Progress of long work: a bar with samples/s and ETA on a terminal, plain lines when piped.
import { SingleBar } from 'cli-progress';

export interface ProgressReporter {
  start(label: string, total: number): void;
  update(done: number, info: Record<string, string | number>): void;
  stop(): void;
}

/** No output (library use, tests). */
export const silentProgress: ProgressReporter = { start() {}, update() {}, stop() {} };

/** A cli-progress bar on stderr; with noTTYOutput, a plain line every few seconds when not a TTY. */
export function barProgress(stream: NodeJS.WriteStream = process.stderr): ProgressReporter {
  let bar: SingleBar | null = null;
  return {
    start(label, total) {
      bar = new SingleBar({
        format: `${label} [{bar}] {percentage}% | {value}/{total} | {rate} samples/s | ETA {eta_formatted} | {extra}`,
        barCompleteChar: '=',
        barIncompleteChar: ' ',
        barsize: 24,
        stream,
        noTTYOutput: true,
        notTTYSchedule: 5000,
        etaBuffer: 50,
        hideCursor: stream.isTTY ? true : null,
        clearOnComplete: false,
      });
      bar.start(total, 0, { rate: '-', extra: '' });
    },
    update(done, info) {
      const rate = typeof info.rate === 'number' ? Math.round(info.rate) : '-';
      const extra = Object.entries(info)
        .filter(([k]) => k !== 'rate')
        .map(([k, v]) => `${k} ${typeof v === 'number' ? v.toFixed(4) : v}`)
        .join(' ');
      bar?.update(done, { rate, extra });
    },
    stop() {
      bar?.stop();
      bar = null;
    },
  };
}
