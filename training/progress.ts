// Progress of long work: a bar with the rate and ETA on a terminal; plain lines when piped (a file,
// a CI log), one at the start, one every few seconds (5 by default) and one at the end, each with
// the count done of the total, the rate, the ETA and the figures of the work (loss, accuracy...).
//
// The plain lines are written from update() itself, not from a timer: training and crossbar loops
// keep the event loop busy for minutes, and a timer would not fire until they end.
import { SingleBar } from 'cli-progress';

export interface ProgressReporter {
  /** `unit`: what this run counts, where it is not the reporter's (a calibration's steps). */
  start(label: string, total: number, unit?: string): void;
  update(done: number, info: Record<string, string | number>): void;
  stop(): void;
}

export interface ProgressOptions {
  /** What is counted, after the numbers: 'samples' (default), 'trials', 'cells', 'images'. */
  unit?: string;
  /**
   * Piped output: seconds between plain lines. Default 5, or MEMRISTOR_TFJS_PROGRESS_SECONDS
   * (0: a line at every update).
   */
  intervalSeconds?: number;
  /** The clock, in ms (tests). Default performance.now. */
  now?: () => number;
}

/** No output (library use, tests). */
export const silentProgress: ProgressReporter = { start() {}, update() {}, stop() {} };

/** A count with thousands separators: 12,345. */
export function formatCount(n: number): string {
  return Number.isFinite(n) ? Math.round(n).toLocaleString('en-US') : String(n);
}

/** A figure of the work: integers (counts: pulses, images) as counts, others to 4 decimals. */
export function formatFigure(v: string | number): string {
  if (typeof v !== 'number') return v;
  return Number.isInteger(v) ? formatCount(v) : v.toFixed(4);
}

/** A duration: '42 s', '3 min 05 s', '2 h 07 min'. */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '-';
  const s = Math.round(seconds);
  if (s < 60) return seconds < 10 ? `${seconds.toFixed(1)} s` : `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${String(s % 60).padStart(2, '0')} s`;
  return `${Math.floor(s / 3600)} h ${String(Math.floor((s % 3600) / 60)).padStart(2, '0')} min`;
}

/** Seconds between piped progress lines: MEMRISTOR_TFJS_PROGRESS_SECONDS, default 5. */
export function progressIntervalSeconds(): number {
  const env = process.env.MEMRISTOR_TFJS_PROGRESS_SECONDS;
  const v = env === undefined || env.trim() === '' ? NaN : Number(env);
  return Number.isFinite(v) && v >= 0 ? v : 5;
}

function extras(info: Record<string, string | number>): string {
  return Object.entries(info)
    .filter(([k]) => k !== 'rate')
    .map(([k, v]) => `${k} ${formatFigure(v)}`)
    .join(' ');
}

/**
 * Progress on `stream` (default stderr): a cli-progress bar on a terminal; plain lines when the
 * stream is not a terminal, at the start, at least every `intervalSeconds` while update() is
 * called, and at the stop:
 *   epoch 1/1: 12,345/40,000 samples (31%), 1,234 samples/s, ETA 22 s, loss 0.1234 acc 0.8750
 */
/** A rate: a count from 10 up, two significant digits below (0.12 trials/s, not 0). */
export function formatRate(r: number): string {
  return r >= 10 ? formatCount(r) : String(Number(r.toPrecision(2)));
}

export function barProgress(stream: NodeJS.WriteStream = process.stderr, opts: ProgressOptions = {}): ProgressReporter {
  const baseUnit = opts.unit ?? 'samples';
  let unit = baseUnit;
  const now = opts.now ?? (() => performance.now());
  if (stream.isTTY === true) return ttyBar(stream, baseUnit, now);
  const intervalMs = 1000 * (opts.intervalSeconds ?? progressIntervalSeconds());
  let label = '';
  let total = 0;
  let running = false;
  let t0 = 0;
  let lastLine = 0;
  let done = 0;
  let info: Record<string, string | number> = {};
  const rateOf = (): number | null => {
    if (typeof info.rate === 'number' && Number.isFinite(info.rate)) return info.rate;
    const secs = (now() - t0) / 1000;
    return done > 0 && secs > 0 ? done / secs : null;
  };
  const line = (final: boolean) => {
    const parts = [`${label}: ${formatCount(done)}/${formatCount(total)} ${unit}` + (total > 0 ? ` (${Math.floor((100 * done) / total)}%)` : '')];
    const rate = rateOf();
    if (done > 0 || final) parts.push(rate === null ? `- ${unit}/s` : `${formatRate(rate)} ${unit}/s`);
    if (final) parts.push(formatDuration((now() - t0) / 1000));
    else if (done > 0 && rate) parts.push(`ETA ${formatDuration(Math.max(0, total - done) / rate)}`);
    const x = extras(info);
    stream.write(parts.join(', ') + (x ? `, ${x}` : '') + '\n');
    lastLine = now();
  };
  return {
    start(l, t, u) {
      label = l;
      total = t;
      unit = u ?? baseUnit;
      done = 0;
      info = {};
      running = true;
      t0 = now();
      line(false);
    },
    update(d, i) {
      if (!running) return;
      done = d;
      info = i;
      // the last update's line is the stop's
      if (now() - lastLine >= intervalMs && !(total > 0 && done >= total)) line(false);
    },
    stop() {
      if (!running) return;
      running = false;
      line(true);
    },
  };
}

/** The terminal bar (cli-progress), counts with thousands separators. */
function ttyBar(stream: NodeJS.WriteStream, baseUnit: string, now: () => number): ProgressReporter {
  let bar: SingleBar | null = null;
  let t0 = 0;
  return {
    start(label, total, u) {
      const unit = u ?? baseUnit;
      t0 = now();
      bar = new SingleBar({
        format: `${label} [{bar}] {percentage}% | {value}/{total} ${unit} | {rate} ${unit}/s | ETA {eta_formatted} | {extra}`,
        barCompleteChar: '=',
        barIncompleteChar: ' ',
        barsize: 24,
        stream,
        etaBuffer: 50,
        hideCursor: true,
        clearOnComplete: false,
        formatValue: (v, _o, type) => (type === 'value' || type === 'total' ? formatCount(v) : String(v)),
      });
      bar.start(total, 0, { rate: '-', extra: '' });
    },
    update(done, info) {
      const secs = (now() - t0) / 1000;
      const r = typeof info.rate === 'number' && Number.isFinite(info.rate) ? info.rate : done > 0 && secs > 0 ? done / secs : null;
      bar?.update(done, { rate: r === null ? '-' : formatRate(r), extra: extras(info) });
    },
    stop() {
      bar?.stop();
      bar = null;
    },
  };
}

/**
 * Runs `run` with a count callback (done of total, and the correct answers so far, shown as acc)
 * that drives `reporter` under `label`: started at the first call, stopped when run returns or
 * throws. No output without a reporter.
 */
export function trackCounts<T>(reporter: ProgressReporter | undefined, label: string, run: (onProgress: (done: number, total: number, correct?: number) => void) => T): T {
  let started = false;
  const onProgress = (done: number, total: number, correct?: number) => {
    if (!reporter) return;
    if (!started) reporter.start(label, total);
    started = true;
    reporter.update(done, correct !== undefined && done > 0 ? { acc: correct / done } : {});
  };
  try {
    return run(onProgress);
  } finally {
    if (started) reporter?.stop();
  }
}

/**
 * trackCounts for a crossbar evaluation that may calibrate first (onCalibrationStep of
 * evaluateCrossbar: layers built and steps run): one reporter, under `LABEL: calibration` while it
 * calibrates, then under `label` for the test images.
 */
export function trackEvaluation<T>(
  reporter: ProgressReporter | undefined,
  label: string,
  run: (onProgress: (done: number, total: number, correct?: number) => void, onCalibrationStep: (done: number, total: number) => void) => T,
): T {
  let phase: 'none' | 'calibration' | 'test' = 'none';
  const onCalibrationStep = (done: number, total: number) => {
    if (!reporter) return;
    if (phase !== 'calibration') {
      if (phase === 'test') reporter.stop();
      reporter.start(`${label}: calibration`, total, 'layers and steps');
      phase = 'calibration';
    }
    reporter.update(done, {});
  };
  const onProgress = (done: number, total: number, correct?: number) => {
    if (!reporter) return;
    if (phase !== 'test') {
      if (phase === 'calibration') reporter.stop();
      reporter.start(label, total);
      phase = 'test';
    }
    reporter.update(done, correct !== undefined && done > 0 ? { acc: correct / done } : {});
  };
  try {
    return run(onProgress, onCalibrationStep);
  } finally {
    if (phase !== 'none') reporter?.stop();
  }
}
