// `memristor-tfjs reproduce PAPER`: runs the study a seed paper reports and writes its table beside
// the paper's published numbers (results.json, table.csv) and a report page (report.html) into
// --out (default runs/reproduce-PAPER). The studies are library API (training/reproduce/); this
// file parses, calls and prints.
import { UsageError } from '../errors';
import { claimOutputFolder } from '../output_folder';
import { CommonOptions, info, printResult, startBackend, progressOf } from './common';
import { checkPaper, datasetFor, runReproduction, writeReproduceFiles, formatReproTable, ReproResult } from '../../training/reproduce';

export interface ReproduceCommandOptions extends CommonOptions {
  /** --quick: the small sizes (a few minutes). */
  quick?: boolean;
  dataset?: string;
  seed?: number;
  out?: string;
  overwrite?: boolean;
}

export async function reproduceCommand(paper: string | undefined, opts: ReproduceCommandOptions): Promise<ReproResult> {
  const name = checkPaper(paper);
  const dataset = datasetFor(name, opts.dataset);
  const out = opts.out ?? `runs/reproduce-${name}`;
  if (out.trim() === '') throw new UsageError('--out must name a folder');
  const folder = claimOutputFolder(out, { overwrite: opts.overwrite });
  let result: ReproResult;
  try {
    const backend = await startBackend(opts);
    result = await runReproduction(name, { quick: !!opts.quick, dataset, seed: opts.seed ?? 1, backend: backend.name }, { onInfo: info, progress: progressOf(opts) });
    writeReproduceFiles(folder.staging, result);
    folder.commit();
  } finally {
    folder.release();
  }
  printResult(opts, result, () => `${formatReproTable(result)}\nwrote ${out}/results.json, table.csv, report.html`);
  return result;
}
