// `memristor-tfjs report DIR`: one self-contained HTML page (inline CSS and SVG, no network) of any
// run folder (hybrid, sweep, map, insitu, train) or of a fit record of fit-device, with the
// sections that apply to it, written atomically to DIR/report.html (a fit record: DEVICE.fit.html
// beside it; or --out); its path is printed on stdout. `--compare DIR2 [DIR3 ...]`: DIR and each
// DIRk in-situ runs (hybrid or insitu folders), their learning curves drawn side by side first.
import * as fs from 'fs';
import * as path from 'path';
import { writeFileAtomic } from '../atomic';
import { claimOutputFile } from '../output_folder';
import { FileFormatError, UsageError } from '../errors';
import { packageVersion } from '../version';
import { loadReportInputs, ReportInputs } from '../report/load';
import { renderReport } from '../report/html';
import { CommonOptions, info } from './common';

export const REPORT_FILE = 'report.html';

export interface ReportCommandOptions extends CommonOptions {
  /** --out FILE.html: where to write the page (default DIR/report.html). */
  out?: string;
  /** --sweep SWEEPDIR: a sweep directory to show (default DIR/sweep/ when it exists). */
  sweep?: string;
  /** --compare DIR2 [DIR3 ...]: other in-situ runs whose learning curves the page draws beside DIR's. */
  compare?: string[];
}

export interface ReportResult {
  /** The page written (absolute path). */
  report: string;
  bytes: number;
  /** <svg> plots on the page. */
  plots: number;
  /** The in-situ runs whose learning curves the page draws (DIR's own, then --compare's). */
  runs: { label: string; dir: string; points: number }[];
  warnings: string[];
}

export async function reportCommand(dir: string, opts: ReportCommandOptions = {}): Promise<ReportResult> {
  if (!dir) throw new UsageError('report: give a run folder (written by hybrid, sweep, map, insitu or train) or a fit record (DEVICE.fit.json)');
  if (opts.out !== undefined && !/\.html?$/i.test(opts.out)) throw new UsageError(`--out must name an .html file, got '${opts.out}'`);
  if (opts.sweep !== undefined && opts.sweep === '') throw new UsageError('--sweep needs a sweep directory');
  if (opts.compare !== undefined && opts.compare.some((d) => d === '')) throw new UsageError('--compare needs in-situ run folders');
  const inputs = loadReportInputs(dir, { sweepDir: opts.sweep, compare: opts.compare });
  if (inputs.kind === 'crossbar' || inputs.kind === 'insitu') inputs.energy = await crossbarEnergy(inputs, opts);
  for (const w of inputs.warnings) info(`warning: ${w}`);
  const html = renderReport(inputs, { version: packageVersion() });
  const out = path.resolve(opts.out ?? inputs.defaultOut);
  if (fs.existsSync(out) && fs.statSync(out).isDirectory()) throw new UsageError(`--out ${opts.out} is a directory; name the .html file to write`);
  const claim = claimOutputFile(out);
  try {
    writeFileAtomic(out, html);
  } finally {
    claim.release();
  }
  const bytes = Buffer.byteLength(html, 'utf8');
  const plots = (html.match(/<svg\b/g) ?? []).length;
  const runs = (inputs.runs ?? []).map((r) => ({ label: r.label, dir: r.dir, points: r.curve.filter((p) => p.testAccuracy !== null).length }));
  const result: ReportResult = { report: out, bytes, plots, runs, warnings: inputs.warnings };
  info(`report: ${plots} plots, ${(bytes / 1024).toFixed(0)} KiB${runs.length > 1 ? `, ${runs.length} in-situ runs compared (${runs.map((r) => r.label).join(', ')})` : ''}`);
  if (opts.json) process.stdout.write(JSON.stringify(result, null, 2) + '\n');
  else process.stdout.write(out + '\n');
  return result;
}

/**
 * The energy estimate of a crossbar folder's network (src/energy.ts), which needs the network
 * loaded (tfjs); a folder that cannot be loaded gets a warning and no estimate.
 */
async function crossbarEnergy(inputs: ReportInputs, opts: ReportCommandOptions): Promise<Record<string, unknown> | null> {
  const [{ initBackend }, { loadCrossbar, disposeCrossbar }, { estimateEnergy }] = await Promise.all([import('../backend'), import('../crossbar/network'), import('../energy')]);
  let net: Awaited<ReturnType<typeof loadCrossbar>> | null = null;
  try {
    await initBackend(opts.backend);
    net = await loadCrossbar(inputs.dir);
    return JSON.parse(JSON.stringify(estimateEnergy(net))) as Record<string, unknown>;
  } catch (e) {
    if (!(e instanceof FileFormatError)) throw e;
    inputs.warnings.push(`the energy estimate left out: ${e.message}`);
    return null;
  } finally {
    if (net) disposeCrossbar(net);
  }
}
