// Progress of long work (training/progress.ts): the silent reporter writes nothing; the bar, on a
// stream that is not a terminal, writes plain lines: one at the start, one every few seconds while
// updates come (written by update itself: the loops block timers), the final state at the stop;
// counts with thousands separators, the other figures to 4 decimals.
import { Writable } from 'stream';
import { barProgress, silentProgress, formatCount, formatDuration, formatFigure, formatRate, trackEvaluation } from '../training/progress';

/** A stream that is not a terminal and keeps what is written to it. */
function pipe(): { stream: NodeJS.WriteStream; text: () => string } {
  const chunks: string[] = [];
  const w = new Writable({
    write(chunk, _enc, done) {
      chunks.push(String(chunk));
      done();
    },
  });
  (w as unknown as { isTTY: boolean }).isTTY = false;
  return { stream: w as unknown as NodeJS.WriteStream, text: () => chunks.join('') };
}

test('silentProgress writes nothing, whatever it is told', () => {
  const out = jest.spyOn(process.stdout, 'write').mockImplementation(() => true);
  const err = jest.spyOn(process.stderr, 'write').mockImplementation(() => true);
  try {
    silentProgress.start('train', 10);
    silentProgress.update(5, { rate: 100, loss: 0.5 });
    silentProgress.stop();
    expect(out).not.toHaveBeenCalled();
    expect(err).not.toHaveBeenCalled();
  } finally {
    out.mockRestore();
    err.mockRestore();
  }
});

/** A clock the test moves by hand (ms). */
function clock(): { now: () => number; advance: (s: number) => void } {
  let t = 1000;
  return { now: () => t, advance: (s) => (t += 1000 * s) };
}

test('piped: a plain line at the start, then at most one every interval while updates come, and the final state at the stop', () => {
  const { stream, text } = pipe();
  const c = clock();
  const p = barProgress(stream, { intervalSeconds: 5, now: c.now });
  p.start('epoch 1/1', 40000);
  expect(text()).toBe('epoch 1/1: 0/40,000 samples (0%)\n');
  c.advance(2);
  p.update(2000, { rate: 1000, loss: 0.5, acc: 0.25 }); // 2 s after the start line: no line
  c.advance(3.5);
  p.update(5500, { rate: 1000, loss: 0.25, acc: 0.875 }); // 5.5 s: a line
  c.advance(1);
  p.update(6500, { rate: 1000, loss: 0.25, acc: 0.875 }); // 1 s after it: none
  c.advance(4.5);
  p.update(12345, { rate: 1234.4, loss: 0.125, acc: 0.5, pulses: 8503 }); // 5.5 s after it: a line
  c.advance(20);
  p.update(40000, { rate: 1300, loss: 0.1, acc: 0.9 });
  p.stop();
  const lines = text().split('\n').filter((l) => l.length > 0);
  expect(lines).toEqual([
    'epoch 1/1: 0/40,000 samples (0%)',
    'epoch 1/1: 5,500/40,000 samples (13%), 1,000 samples/s, ETA 35 s, loss 0.2500 acc 0.8750',
    'epoch 1/1: 12,345/40,000 samples (30%), 1,234 samples/s, ETA 22 s, loss 0.1250 acc 0.5000 pulses 8,503',
    'epoch 1/1: 40,000/40,000 samples (100%), 1,300 samples/s, 31 s, loss 0.1000 acc 0.9000',
  ]);
  expect(text().endsWith('\n')).toBe(true);
});

test('piped: counts of other units; the rate from the clock when none is given; interval 0 writes every update', () => {
  const { stream, text } = pipe();
  const c = clock();
  const p = barProgress(stream, { unit: 'trials', intervalSeconds: 0, now: c.now });
  p.start('sweep', 8);
  c.advance(4);
  p.update(2, {});
  c.advance(4);
  p.update(4, {});
  p.stop();
  expect(text().split('\n').filter((l) => l)).toEqual([
    'sweep: 0/8 trials (0%)',
    'sweep: 2/8 trials (25%), 0.5 trials/s, ETA 12 s',
    'sweep: 4/8 trials (50%), 0.5 trials/s, ETA 8.0 s',
    'sweep: 4/8 trials (50%), 0.5 trials/s, 8.0 s',
  ]);
});

test('MEMRISTOR_TFJS_PROGRESS_SECONDS sets the interval of piped lines', () => {
  process.env.MEMRISTOR_TFJS_PROGRESS_SECONDS = '0';
  try {
    const { stream, text } = pipe();
    const p = barProgress(stream);
    p.start('x', 3);
    p.update(1, {});
    p.update(2, {});
    p.stop();
    expect(text().split('\n').filter((l) => l)).toHaveLength(4);
  } finally {
    delete process.env.MEMRISTOR_TFJS_PROGRESS_SECONDS;
  }
});

test('figures: integers as counts, others to 4 decimals; durations', () => {
  expect(formatFigure(8503)).toBe('8,503');
  expect(formatFigure(0.123456)).toBe('0.1235');
  expect(formatFigure('ok')).toBe('ok');
  expect(formatCount(1234567.6)).toBe('1,234,568');
  expect(formatDuration(4.25)).toBe('4.3 s');
  expect(formatDuration(42)).toBe('42 s');
  expect(formatDuration(185)).toBe('3 min 05 s');
  expect(formatDuration(7620)).toBe('2 h 07 min');
});

test('a rate that is not a number is taken from the clock; a string figure as it is; update and stop without a start write nothing', () => {
  const idle = pipe();
  const q = barProgress(idle.stream);
  q.update(3, { rate: 10 });
  q.stop();
  expect(idle.text()).toBe('');
  const { stream, text } = pipe();
  const c = clock();
  const p = barProgress(stream, { now: c.now, unit: 'images' });
  p.start('in-situ', 8);
  c.advance(2);
  p.update(8, { rate: 'slow', note: 'ok' });
  p.stop();
  p.stop();
  const lines = text().split('\n').filter((l) => l.length > 0);
  expect(lines[lines.length - 1]).toBe('in-situ: 8/8 images (100%), 4 images/s, 2.0 s, note ok');
});

test('the default stream is stderr', () => {
  const chunks: string[] = [];
  const err = jest.spyOn(process.stderr, 'write').mockImplementation((c: string | Uint8Array) => (chunks.push(String(c)), true));
  const out = jest.spyOn(process.stdout, 'write').mockImplementation(() => true);
  const tty = process.stderr.isTTY;
  (process.stderr as { isTTY: boolean }).isTTY = false;
  try {
    const p = barProgress();
    p.start('evaluate', 4);
    p.stop();
    expect(chunks.join('')).toMatch(/^evaluate: 0\/4 samples \(0%\)\n/);
    expect(out).not.toHaveBeenCalled();
  } finally {
    (process.stderr as { isTTY: boolean }).isTTY = tty;
    err.mockRestore();
    out.mockRestore();
  }
});

test('on a terminal: the cli-progress bar, counts with thousands separators, the rate from the clock when none is given', () => {
  const { stream, text } = pipe();
  Object.assign(stream, { isTTY: true, columns: 200, cursorTo: () => true, clearLine: () => true, moveCursor: () => true, clearScreenDown: () => true });
  const c = clock();
  const p = barProgress(stream, { now: c.now });
  p.start('test', 3000);
  c.advance(2);
  p.update(1500, { acc: 0.5 });
  p.stop();
  expect(text()).toMatch(/test \[={12} {12}\] 50% \| 1,500\/3,000 samples \| 750 samples\/s \| ETA \S+ \| acc 0\.5000/);
});

test('trackEvaluation: one reporter, the calibration (its own unit) then the test images, each line under its label', () => {
  const { stream, text } = pipe();
  const c = clock();
  const p = barProgress(stream, { intervalSeconds: 0, now: c.now });
  const r = trackEvaluation(p, 'crossbar test', (onProgress, onCalibrationStep) => {
    for (let k = 1; k <= 3; k++) {
      c.advance(1);
      onCalibrationStep(k, 3);
    }
    c.advance(1);
    onProgress(500, 1000, 400);
    c.advance(1);
    onProgress(1000, 1000, 900);
    return 7;
  });
  expect(r).toBe(7);
  const lines = text().split('\n').filter((l) => l.length > 0);
  expect(lines[0]).toBe('crossbar test: calibration: 0/3 layers and steps (0%)');
  expect(lines[1]).toMatch(/^crossbar test: calibration: 1\/3 layers and steps \(33%\)/);
  expect(lines[2]).toMatch(/^crossbar test: calibration: 2\/3 layers and steps \(66%\), 2 layers and steps\/s, ETA 0.5 s/);
  expect(lines).toContain('crossbar test: 0/1,000 samples (0%)');
  expect(lines.filter((l) => l.startsWith('crossbar test: calibration: 3/3'))).toHaveLength(1);
  expect(lines[lines.length - 1]).toMatch(/^crossbar test: 1,000\/1,000 samples \(100%\), .*acc 0\.9000$/);
  // the calibration line stops before the test line starts
  expect(lines.findIndex((l) => l.startsWith('crossbar test: calibration: 3/3'))).toBeLessThan(lines.indexOf('crossbar test: 0/1,000 samples (0%)'));
});

test('rates: counts from 10 up, two significant digits below (slow trials do not show as 0/s)', () => {
  expect([formatRate(1234.4), formatRate(10), formatRate(9.96), formatRate(2), formatRate(0.1234), formatRate(0.05)]).toEqual(['1,234', '10', '10', '2', '0.12', '0.05']);
});
