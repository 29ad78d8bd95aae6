// What every study of `reproduce` shares: the result (a table of quantities measured here beside
// the numbers the paper publishes, figures, details), its files (results.json, table.csv,
// report.html) and its human form. The studies themselves are one module per paper beside this one.
//
// The published numbers come from the seed abstracts and DESIGN.md section 1 (S: stated in the
// abstract, S2: only in a secondary summary of the paper). Where the paper's number is not known
// the table says so (NOT_STATED) rather than leaving a blank.
import * as path from 'path';
import { writeFileAtomic, writeJsonAtomic } from '../../src/atomic';
import { UsageError } from '../../src/errors';
import { renderSectionsPage, pageParts, PageSection } from '../../src/report/html';
import { lineChart, esc } from '../../src/report/svg';
import { packageVersion } from '../../src/version';
import type { ProgressReporter } from '../progress';
import { backendInfo, initBackend, BackendInfo } from '../../src/backend';
import type { TrainModelOptions } from '../pipeline';

export const REPRODUCE_FORMAT = 'memristor-tfjs-reproduce';
export const REPRODUCE_VERSION = 1;
export const RESULTS_JSON = 'results.json';
export const TABLE_CSV = 'table.csv';
export const REPORT_HTML = 'report.html';

/** What the table says where the paper's number is not known. */
export const NOT_STATED = 'not stated in the abstract';

export const REPRODUCE_PAPERS = ['yao2020', 'park2024', 'chen2021', 'lammie2019', 'shi2023'] as const;
export type PaperName = (typeof REPRODUCE_PAPERS)[number];

export interface PaperInfo {
  name: PaperName;
  citation: string;
  /** The study run here, one line. */
  study: string;
}

export const PAPERS: Record<PaperName, PaperInfo> = {
  yao2020: {
    name: 'yao2020',
    citation: 'Yao et al., "Fully hardware-implemented memristor convolutional neural network", Nature 577, 641-646 (2020)',
    study: 'mcnn on MNIST, yao2020 device: software, after transfer, after in-situ training of the last FC layer, and the replicated (parallel) system',
  },
  park2024: {
    name: 'park2024',
    citation: 'Park et al., ACS Appl. Mater. Interfaces 16(1), 1054-1065 (2024)',
    study: 'park network on MNIST, park2024 device: accuracy mean and spread over repeated programmings vs write-verify tuning tolerance',
  },
  chen2021: {
    name: 'chen2021',
    citation: 'Chen et al., Neural Networks 144, 565-572 (2021)',
    study: 'bnn on MNIST, chen2021 device: software vs arrays with fixed-sign inputs and comparator neurons; the fixed-sign sums checked against the +-1 sums',
  },
  lammie2019: {
    name: 'lammie2019',
    citation: 'Lammie, Krestinskaya, James, Azghadi, "Variation-aware Binarized Memristive Networks", ICECS 2019 (arXiv 1910.05920)',
    study: 'bmcnn on MNIST, chen2021 binary devices: accuracy vs R_ON/R_OFF device-to-device variation, with and without variation-aware training',
  },
  shi2023: {
    name: 'shi2023',
    citation: 'Shi et al. (Kuzum group), Neuromorph. Comput. Eng. 3, 034007 (2023)',
    study: 'VGG-16 conv feature maps of CIFAR-10 images through Ag-CBRAM (cbram) arrays with ReLU neurons at the columns, against software',
  },
};

/** The paper by name; a UsageError naming the choices otherwise. */
export function checkPaper(name: string | undefined): PaperName {
  if (!name || !(REPRODUCE_PAPERS as readonly string[]).includes(name)) {
    throw new UsageError(`reproduce: unknown paper '${name ?? ''}' (choose ${REPRODUCE_PAPERS.join(', ')})`);
  }
  return name as PaperName;
}

/** How a row's numbers read: accuracies and fractions as percentages, correlations and others as they are. */
export type RowKind = 'accuracy' | 'fraction' | 'correlation' | 'number';

/** One line of the table: a quantity measured here beside the paper's number. */
export interface ReproRow {
  quantity: string;
  kind: RowKind;
  /** Measured here (an accuracy as a fraction); null where not measured in this run (see note). */
  value: number | null;
  /** Its spread (sample standard deviation over trials, same units), where there are trials. */
  spread?: number | null;
  /** The paper's number in the same units, or null where it is not known. */
  published: number | null;
  /** The paper's number as the paper gives it, or NOT_STATED. */
  publishedText: string;
  /** Where the published number is from: S (the abstract), S2 (a secondary summary), or empty. */
  source?: string;
  note?: string;
}

/** A line chart of the report page (src/report/svg.ts lineChart). */
export interface ReproFigure {
  id: string;
  title: string;
  xLabel: string;
  yLabel: string;
  /** y values are fractions shown as percent. */
  yPercent?: boolean;
  xLog?: boolean;
  /** Categorical x axis: point x are indices into these labels. */
  xCategories?: string[];
  series: { label: string; points: { x: number; y: number; err?: number }[]; dashed?: boolean }[];
  hLines?: { y: number; label: string }[];
  caption?: string;
}

/** The result of one study (results.json). */
export interface ReproResult {
  format: typeof REPRODUCE_FORMAT;
  version: typeof REPRODUCE_VERSION;
  paper: PaperName;
  citation: string;
  study: string;
  quick: boolean;
  seed: number;
  dataset: string;
  backend: string;
  /** The sizes and settings the study ran with. */
  settings: Record<string, unknown>;
  rows: ReproRow[];
  figures: ReproFigure[];
  /** Per-study data behind the rows and figures (sweep points, per-layer figures, checks). */
  details: Record<string, unknown>;
  /** What was assumed or left out. */
  notes: string[];
  seconds: number;
}

/** What every study takes. */
export interface StudyOptions {
  /** Smaller sizes that finish in a few minutes (the settings say which). */
  quick?: boolean;
  /** Dataset spec (mnist, idx:DIR, cifar10:DIR); the study's default where not given. */
  dataset?: string;
  /** Default 1. */
  seed?: number;
  /** Backend name when none runs yet. */
  backend?: string;
}

/** Where a study reports to (all optional: silent by default). */
export interface StudyHooks {
  onInfo?: (message: string) => void;
  progress?: ProgressReporter;
}

/** What every study starts with: its clock, where it reports, its sizes (quick or full, with the overrides), seed, dataset and backend. */
export async function startStudy<S extends object>(
  paper: PaperName,
  opts: StudyOptions & { sizes?: Partial<S> },
  hooks: StudyHooks,
  sizes: { quick: S; full: S },
): Promise<{ t0: number; say: (message: string) => void; sizes: S; seed: number; dataset: string; backend: BackendInfo }> {
  const t0 = performance.now();
  const say = hooks.onInfo ?? (() => {});
  const chosen: S = { ...(opts.quick ? sizes.quick : sizes.full), ...(opts.sizes ?? {}) };
  const seed = opts.seed ?? 1;
  const dataset = datasetFor(paper, opts.dataset);
  const backend = backendInfo() ?? (await initBackend(opts.backend));
  return { t0, say, sizes: chosen, seed, dataset, backend };
}

/** The offline training every study runs: Adam on a cosine schedule, no validation split, the study's sizes. */
export function studyTraining(
  model: string,
  run: { dataset: string; seed: number },
  sizes: { epochs: number; trainSamples?: number; testSamples?: number },
  extra: Partial<TrainModelOptions> = {},
): TrainModelOptions {
  return { model, dataset: run.dataset, epochs: sizes.epochs, seed: run.seed, trainSamples: sizes.trainSamples, testSamples: sizes.testSamples, validationSplit: 0, optimizer: 'adam', schedule: 'cosine', ...extra };
}

/** A row whose published number is a percentage the paper states (given in percent). */
export function accuracyRow(quantity: string, value: number | null, publishedPercent: number | null, source = '', extra: Partial<ReproRow> = {}): ReproRow {
  return {
    quantity,
    kind: 'accuracy',
    value,
    published: publishedPercent === null ? null : Number((publishedPercent / 100).toFixed(8)),
    publishedText: publishedPercent === null ? NOT_STATED : `${publishedPercent.toFixed(2)}%`,
    ...(source ? { source } : {}),
    ...extra,
  };
}

/** Mean and sample standard deviation (null for fewer than 2 values). */
export function meanStd(values: readonly number[]): { mean: number; std: number | null } {
  const n = values.length;
  const mean = n ? values.reduce((a, b) => a + b, 0) / n : NaN;
  if (n < 2) return { mean, std: null };
  const ss = values.reduce((a, v) => a + (v - mean) * (v - mean), 0);
  return { mean, std: Math.sqrt(ss / (n - 1)) };
}

/** A result with the common fields filled in. */
export function makeResult(paper: PaperName, fields: Omit<ReproResult, 'format' | 'version' | 'paper' | 'citation' | 'study'>): ReproResult {
  return { format: REPRODUCE_FORMAT, version: REPRODUCE_VERSION, paper, citation: PAPERS[paper].citation, study: PAPERS[paper].study, ...fields };
}

// ---------------------------------------------------------------------------------------------
// Formatting

/** A row's value as text: accuracies and fractions in percent (spread in points), others to 4 digits. */
export function formatRowValue(r: Pick<ReproRow, 'kind' | 'value' | 'spread'>): string {
  if (r.value === null || !Number.isFinite(r.value)) return '-';
  const pctKind = r.kind === 'accuracy' || r.kind === 'fraction';
  const v = pctKind ? `${(100 * r.value).toFixed(2)}%` : r.kind === 'correlation' ? r.value.toFixed(4) : String(Number(r.value.toPrecision(4)));
  if (r.spread === undefined || r.spread === null || !Number.isFinite(r.spread)) return v;
  const s = pctKind ? (100 * r.spread).toFixed(2) : Number(r.spread.toPrecision(3)).toString();
  return `${v} +- ${s}`;
}

/** The table as aligned text (what the command prints). */
export function formatReproTable(r: ReproResult): string {
  const head = ['quantity', 'this run', 'paper', 'source'];
  const rows = r.rows.map((row) => [row.quantity, formatRowValue(row), row.publishedText, row.source ?? '']);
  const widths = head.map((h, j) => Math.max(h.length, ...rows.map((x) => x[j].length)));
  const line = (cells: string[]) => cells.map((c, j) => (j === 1 ? c.padStart(widths[j]) : c.padEnd(widths[j]))).join('  ').trimEnd();
  return [
    `${r.paper}: ${r.study}`,
    `${r.citation}`,
    `${r.quick ? '--quick sizes' : 'full sizes'}, seed ${r.seed}, dataset ${r.dataset}, ${r.seconds.toFixed(1)} s`,
    line(head),
    line(widths.map((w) => '-'.repeat(w))),
    ...rows.map(line),
    ...r.notes.map((n) => `note: ${n}`),
  ].join('\n');
}

function csvCell(v: unknown): string {
  if (v === null || v === undefined) return '';
  const s = String(v);
  return /[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

/** table.csv: one row per quantity; values in the row's units (accuracies as fractions). */
export function tableCsv(r: ReproResult): string {
  const head = ['paper', 'quantity', 'kind', 'value', 'spread', 'published', 'published_text', 'source', 'note'];
  const lines = [head.join(',')];
  for (const row of r.rows) {
    lines.push([r.paper, row.quantity, row.kind, row.value, row.spread ?? null, row.published, row.publishedText, row.source ?? '', row.note ?? ''].map(csvCell).join(','));
  }
  return lines.join('\n') + '\n';
}

/** The report page: the table, the figures, the settings and the notes; self-contained. */
export function reproducePage(r: ReproResult, generated?: Date): string {
  const { table, note, plots, figure, facts } = pageParts;
  const rows = r.rows.map((row) => [row.quantity, formatRowValue(row), row.publishedText, row.source ?? '', row.note ?? '']);
  const sections: PageSection[] = [
    {
      id: 'table',
      title: 'Reproduced beside the paper',
      html:
        `<p class="sub">${esc(r.study)}.</p>` +
        table(['quantity', 'this run', 'paper', 'source', 'note'], rows) +
        `<p class="sub">${esc(r.quick ? 'Measured with --quick sizes (smaller data, fewer trials): expect larger spreads than the full study.' : 'Measured with the full sizes.')} ` +
        `Source S: stated in the abstract; S2: only in a secondary summary of the paper.</p>`,
    },
  ];
  if (r.figures.length) {
    const figs = r.figures.map((f) =>
      figure(
        lineChart({
          title: f.title,
          xLabel: f.xLabel,
          yLabel: f.yLabel + (f.yPercent ? ' (%)' : ''),
          series: f.series.map((s) => ({
            label: s.label,
            dashed: s.dashed,
            points: s.points.map((p) => ({ x: p.x, y: f.yPercent ? 100 * p.y : p.y, ...(p.err !== undefined ? { err: f.yPercent ? 100 * p.err : p.err } : {}) })),
          })),
          hLines: (f.hLines ?? []).map((h) => ({ y: f.yPercent ? 100 * h.y : h.y, label: h.label })),
          ...(f.xLog ? { xLog: true } : {}),
          ...(f.xCategories ? { xCategories: f.xCategories } : {}),
        }),
        f.caption,
      ),
    );
    sections.push({ id: 'figures', title: 'Figures', html: plots(figs) });
  }
  const settings = Object.entries(r.settings).map(([k, v]) => [k, typeof v === 'number' || typeof v === 'string' ? v : JSON.stringify(v)] as [string, string | number]);
  sections.push({
    id: 'settings',
    title: 'Settings',
    html: facts([['seed', r.seed], ['dataset', r.dataset], ['backend', r.backend], ['seconds', Number(r.seconds.toFixed(1))], ...settings]) + r.notes.map(note).join(''),
  });
  return renderSectionsPage(`reproduce ${r.paper}`, r.citation, sections, { version: packageVersion(), ...(generated ? { generated } : {}) });
}

/** Writes results.json, table.csv and report.html into `dir` (each atomically); returns their paths. */
export function writeReproduceFiles(dir: string, r: ReproResult): string[] {
  const files = [path.join(dir, RESULTS_JSON), path.join(dir, TABLE_CSV), path.join(dir, REPORT_HTML)];
  writeJsonAtomic(files[0], r);
  writeFileAtomic(files[1], tableCsv(r));
  writeFileAtomic(files[2], reproducePage(r));
  return files;
}

/** Seconds since t0 (performance.now()), to 3 decimals. */
export function secondsSince(t0: number): number {
  return Number(((performance.now() - t0) / 1000).toFixed(3));
}

/** The papers whose study runs on MNIST (mnist or idx:DIR); shi2023 needs CIFAR-10. */
const CIFAR_PAPERS: readonly PaperName[] = ['shi2023'];

/**
 * The dataset spec of a study: MNIST-like (mnist, idx:DIR; default mnist) for the MNIST papers,
 * cifar10:DIR for shi2023 (no default: the user supplies it). UsageError otherwise.
 */
export function datasetFor(paper: PaperName, spec: string | undefined): string {
  const kind = spec === undefined ? undefined : spec.split(':')[0];
  if (CIFAR_PAPERS.includes(paper)) {
    if (spec === undefined || spec.trim() === '') {
      throw new UsageError(
        `reproduce ${paper} needs CIFAR-10: give --dataset cifar10:DIR (the binary version: DIR holds data_batch_1.bin .. data_batch_5.bin and test_batch.bin, or cifar-10-batches-bin/ with them)`,
      );
    }
    if (kind !== 'cifar10') throw new UsageError(`reproduce ${paper}: --dataset must be cifar10:DIR (VGG-16 on CIFAR-10), got '${spec}'`);
    return spec;
  }
  if (spec === undefined) return 'mnist';
  if (kind !== 'mnist' && kind !== 'idx') throw new UsageError(`reproduce ${paper}: --dataset must be mnist or idx:DIR (the study runs on MNIST), got '${spec}'`);
  return spec;
}
