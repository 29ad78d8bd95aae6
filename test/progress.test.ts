// Progress of long work (training/progress.ts): the silent reporter writes nothing; the bar, on a
// stream that is not a terminal, writes plain lines: one at the start and the final state at the
// stop, with the samples/s rounded and the other figures to 4 decimals.
import { Writable } from 'stream';
import { barProgress, silentProgress } from '../training/progress';

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

test('piped: a plain line at the start, the final state at the stop (24-character bar, rate rounded, figures to 4 decimals)', () => {
  const { stream, text } = pipe();
  const p = barProgress(stream);
  p.start('train', 100);
  const first = text().split('\n')[0];
  expect(first).toMatch(/^train \[ {24}\] 0% \| 0\/100 \| - samples\/s \| ETA \S+ \| $/);
  p.update(10, { rate: 123.4, loss: 0.5, acc: 'x' });
  p.update(60, { rate: 199.6, loss: 0.25, acc: 0.875 });
  p.stop();
  const lines = text().split('\n').filter((l) => l.length > 0);
  expect(lines).toHaveLength(2);
  // 60% of 24 characters: 14 filled
  expect(lines[1]).toMatch(/^train \[={14} {10}\] 60% \| 60\/100 \| 200 samples\/s \| ETA \S+ \| loss 0\.2500 acc 0\.8750$/);
  expect(text().endsWith('\n')).toBe(true);
});

test('a rate that is not a number shows as "-"; a string figure as it is; update and stop without a start write nothing', () => {
  const idle = pipe();
  const q = barProgress(idle.stream);
  q.update(3, { rate: 10 });
  q.stop();
  expect(idle.text()).toBe('');
  const { stream, text } = pipe();
  const p = barProgress(stream);
  p.start('in-situ', 8);
  p.update(8, { rate: 'slow', note: 'ok' });
  p.stop();
  p.stop();
  const lines = text().split('\n').filter((l) => l.length > 0);
  expect(lines[lines.length - 1]).toMatch(/^in-situ \[={24}\] 100% \| 8\/8 \| - samples\/s \| ETA \S+ \| note ok$/);
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
    expect(chunks.join('')).toMatch(/^evaluate \[/);
    expect(out).not.toHaveBeenCalled();
  } finally {
    (process.stderr as { isTTY: boolean }).isTTY = tty;
    err.mockRestore();
    out.mockRestore();
  }
});
