// `memristor-tfjs report DIR`: one self-contained HTML page (inline CSS and SVG, no network) of a
// hybrid run directory, or of a sweep directory, written atomically to DIR/report.html (or --out);
// its path is printed on stdout.
import * as fs from 'fs';
import * as path from 'path';
import { writeFileAtomic } from '../atomic';
import { UsageError } from '../errors';
import { packageVersion } from '../version';
import { loadReportInputs } from '../report/load';
import { renderReport } from '../report/html';
import { CommonOptions, info } from './common';

export const REPORT_FILE = 'report.html';

export interface ReportCommandOptions extends Omit<CommonOptions, 'backend'> {
  /** --out FILE.html: where to write the page (default DIR/report.html). */
  out?: string;
  /** --sweep SWEEPDIR: a sweep directory to show (default DIR/sweep/ when it exists). */
  sweep?: string;
}

export interface ReportResult {
  /** The page written (absolute path). */
  report: string;
  bytes: number;
  /** <svg> plots on the page. */
  plots: number;
  warnings: string[];
}

export async function reportCommand(dir: string, opts: ReportCommandOptions = {}): Promise<ReportResult> {
  if (!dir) throw new UsageError('report: give the run directory (written by `memristor-tfjs hybrid`) or a sweep directory');
  if (opts.out !== undefined && !/\.html?$/i.test(opts.out)) throw new UsageError(`--out must name an .html file, got '${opts.out}'`);
  if (opts.sweep !== undefined && opts.sweep === '') throw new UsageError('--sweep needs a sweep directory');
  const inputs = loadReportInputs(dir, { sweepDir: opts.sweep });
  for (const w of inputs.warnings) info(`warning: ${w}`);
  const html = renderReport(inputs, { version: packageVersion() });
  const out = path.resolve(opts.out ?? path.join(inputs.dir, REPORT_FILE));
  if (fs.existsSync(out) && fs.statSync(out).isDirectory()) throw new UsageError(`--out ${opts.out} is a directory; name the .html file to write`);
  writeFileAtomic(out, html);
  const bytes = Buffer.byteLength(html, 'utf8');
  const plots = (html.match(/<svg\b/g) ?? []).length;
  const result: ReportResult = { report: out, bytes, plots, warnings: inputs.warnings };
  info(`report: ${plots} plots, ${(bytes / 1024).toFixed(0)} KiB`);
  if (opts.json) process.stdout.write(JSON.stringify(result, null, 2) + '\n');
  else process.stdout.write(out + '\n');
  return result;
}
