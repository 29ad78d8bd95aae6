// The report page: one self-contained HTML file (inline CSS, inline SVG plots, PNG heatmaps as
// data: URLs, one small inline script) that needs no network. The markup is also well-formed XML
// (self-closed void elements, only XML entities, the script in CDATA).
//
// Sections (each optional part gets a note instead of its plots when it is missing):
//   run        facts of the run: model, dataset, device, seed, mapping, times
//   accuracy   software / after transfer / after in-situ, points lost and recovered (table + chart)
//   programming  the per-layer write-verify report
//   sweep      accuracy vs each varied parameter, mean +- std over trials, before and after in-situ
//   conductance  target vs programmed histograms per mapped layer; per-array heatmaps of the
//              programmed conductance and of programmed - target
//   insitu     learning curve (accuracy, pulses, loss vs images), pulses per cell (heatmaps and a
//              histogram), conductance change of the trained layer
//   curves     test accuracy vs images seen, vs pulses and vs programming energy, one line per in-situ
//              run (DIR's own; with --compare several, this section first), and a table of the runs
//   energy     the energy and latency estimate of src/energy.ts: per inference (ops, energy, latency,
//              TOPS/W, the device tables, the programming and in-situ pulse costs), per mapped layer
//              by component, and stacked bars of energy and latency per layer; an energy object of
//              another shape is listed generically
//   training   a `train` folder: the run's facts, loss and accuracy per epoch, parameters by precision
//   fit        a fit record of fit-device: measured beside fitted mean curves per polarity, quality
// Each kind of folder gets the sections that apply to it (renderReport): hybrid all of them but
// training and fit; map (crossbar) the crossbar facts, programming, conductances and energy;
// insitu those of its tuned crossbar with the in-situ section and the change from where it started.
import type { CrossbarArrayData, CrossbarLayerEntry } from '../crossbar/files';
import { LineSeries, PALETTE, barChart, esc, formatValue, heatmap, histogramChart, lineChart, stackedBarChart } from './svg';
import { formatNs, formatPJ, type EnergyBreakdown, type LatencyBreakdown } from '../energy';
import type { CrossbarView, FitCurves, FitRecord, HybridSummary, InsituLog, InsituRun, InsituRunPoint, Part, ReportInputs, SweepData, TrainingRecord } from './load';

/** Heatmaps drawn per crossbar (each array gets two); beyond it a note says how many were left out. */
export const MAX_HEATMAP_ARRAYS = 24;
/** Pulse heatmaps drawn for the in-situ layer. */
export const MAX_PULSE_ARRAYS = 16;
/** Series groups per sweep chart (combinations of the other varied parameters). */
export const MAX_SWEEP_GROUPS = 6;

type Obj = Record<string, unknown>;

export interface PageOptions {
  /** When the page was made (shown in the footer). */
  generated?: Date;
  /** memristor-tfjs version (footer). */
  version?: string;
}

const CSS = `
:root { color-scheme: light; }
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, Helvetica, Arial, sans-serif; margin: 0 auto; max-width: 1180px; padding: 16px 24px 48px; color: #222; background: #fafafa; line-height: 1.4; }
h1 { font-size: 1.6em; margin: 0.4em 0 0.1em; }
h2 { font-size: 1.25em; margin: 1.6em 0 0.5em; border-bottom: 1px solid #ddd; padding-bottom: 0.2em; }
h3 { font-size: 1.05em; margin: 1.2em 0 0.4em; }
.sub { color: #555; margin: 0 0 0.6em; }
nav a { margin-right: 1em; color: #0b5cad; text-decoration: none; }
nav a:hover { text-decoration: underline; }
table { border-collapse: collapse; margin: 0.4em 0 0.8em; background: #fff; font-size: 0.92em; }
th, td { border: 1px solid #ddd; padding: 3px 8px; text-align: left; vertical-align: top; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
th { background: #f0f0f0; font-weight: 600; }
.facts th { background: #f6f6f6; font-weight: 500; color: #444; }
.scroll { overflow-x: auto; max-width: 100%; }
.plots { display: flex; flex-wrap: wrap; gap: 14px; align-items: flex-start; }
figure { margin: 0; background: #fff; border: 1px solid #e2e2e2; border-radius: 4px; padding: 6px; }
figcaption { font-size: 0.85em; color: #555; max-width: 520px; padding: 4px 2px 0; }
svg.plot { display: block; }
.note { background: #fff8e1; border-left: 4px solid #f0b400; padding: 6px 10px; margin: 0.5em 0; color: #5a4500; }
.good { color: #0a7a2f; }
.bad { color: #b3261e; }
code { background: #f0f0f0; padding: 0 3px; border-radius: 3px; }
footer { margin-top: 3em; color: #777; font-size: 0.85em; }
`;

/**
 * A self-check for headless browsers and tests: records each plot's rendered size
 * (data-rendered="WxH"), the number of plots drawn with a non-zero size on <body>
 * (data-plots, data-plots-drawn) and whether each PNG heatmap decodes (data-decoded="WxH" or "error").
 * It reads nothing and loads nothing but the page's own data: URLs.
 */
const SELF_CHECK = `//<![CDATA[
(function () {
  var svgs = document.querySelectorAll('svg.plot');
  var drawn = 0;
  for (var i = 0; i < svgs.length; i++) {
    var r = svgs[i].getBoundingClientRect();
    svgs[i].setAttribute('data-rendered', Math.round(r.width) + 'x' + Math.round(r.height));
    if (r.width > 0 && r.height > 0 && svgs[i].childElementCount > 2) drawn++;
  }
  document.body.setAttribute('data-plots', String(svgs.length));
  document.body.setAttribute('data-plots-drawn', String(drawn));
  var images = document.querySelectorAll('svg.plot image');
  Array.prototype.forEach.call(images, function (el) {
    var probe = new Image();
    probe.onload = function () { el.setAttribute('data-decoded', probe.naturalWidth + 'x' + probe.naturalHeight); };
    probe.onerror = function () { el.setAttribute('data-decoded', 'error'); };
    probe.setAttribute('src', el.getAttribute('href'));
  });
})();
//]]>`;

// ---------------------------------------------------------------------------------------------
// Small HTML helpers

function pct(x: number | null | undefined, digits = 2): string {
  return x === null || x === undefined || !Number.isFinite(x) ? '-' : `${(100 * x).toFixed(digits)}%`;
}

function points(x: number | null | undefined, signed = true): string {
  if (x === null || x === undefined || !Number.isFinite(x)) return '-';
  const s = (100 * x).toFixed(2);
  return signed && x > 0 ? `+${s}` : s;
}

function note(text: string): string {
  return `<p class="note">${esc(text)}</p>`;
}

function cell(v: unknown): string {
  if (typeof v === 'number') return `<td class="num">${esc(formatValue(v, 4))}</td>`;
  if (v === null || v === undefined) return '<td>-</td>';
  if (typeof v === 'object') return `<td>${esc(JSON.stringify(v))}</td>`;
  return `<td>${esc(v)}</td>`;
}

function table(head: string[], rows: unknown[][], cls = ''): string {
  const numeric = head.map((_, j) => rows.length > 0 && rows.every((r) => typeof r[j] === 'number' || r[j] === null || r[j] === undefined));
  return (
    `<table${cls ? ` class="${cls}"` : ''}><thead><tr>${head.map((h, j) => `<th${numeric[j] ? ' class="num"' : ''}>${esc(h)}</th>`).join('')}</tr></thead><tbody>` +
    rows.map((r) => `<tr>${r.map(cell).join('')}</tr>`).join('') +
    '</tbody></table>'
  );
}

/** A two-column table of facts (label, value as text), rows with no value left out. */
function facts(rows: [string, string | number | null | undefined][]): string {
  const shown = rows.filter(([, v]) => v !== null && v !== undefined && v !== '');
  return `<table class="facts"><tbody>${shown.map(([k, v]) => `<tr><th>${esc(k)}</th><td>${esc(typeof v === 'number' ? formatValue(v, 4) : v)}</td></tr>`).join('')}</tbody></table>`;
}

function figure(svg: string, caption?: string): string {
  return `<figure>${svg}${caption ? `<figcaption>${esc(caption)}</figcaption>` : ''}</figure>`;
}

function plots(figs: string[]): string {
  return figs.length ? `<div class="plots">${figs.join('')}</div>` : '';
}

function section(id: string, title: string, body: string): string {
  return `<section id="${id}"><h2>${esc(title)}</h2>${body}</section>`;
}

function isObj(v: unknown): v is Obj {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

function concat(parts: Float32Array[]): Float32Array {
  const out = new Float32Array(parts.reduce((a, p) => a + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Sections

function runSection(s: HybridSummary, inp: ReportInputs): string {
  const xb = inp.crossbar.ok ? inp.crossbar.value.manifest : inp.insituCrossbar.ok ? inp.insituCrossbar.value.manifest : null;
  const net = xb && isObj(xb.network) ? xb.network : null;
  const mapping = net && isObj(net.mapping) ? net.mapping : null;
  const dev = xb?.device;
  const sec = s.seconds;
  const secText = Object.keys(sec).length ? Object.entries(sec).map(([k, v]) => `${k} ${formatValue(v, 3)} s`).join(', ') : null;
  const rows: [string, string | number | null | undefined][] = [
    ['model', s.model],
    ['dataset', s.dataset],
    ['device', dev ? `${s.device}${dev.description ? ` (${dev.description})` : ''}` : s.device],
    ['conductance window', dev ? `${dev.gMin} to ${dev.gMax} µS, ${dev.levels} levels` : null],
    ['write-verify', dev ? `${dev.writeVerify.mode}, tolerance ${dev.writeVerify.tolerance} of the window, at most ${dev.writeVerify.maxPulses} pulses` : null],
    [
      'arrays',
      mapping ? `${mapping.arrayRows} x ${mapping.arrayCols}, ${mapping.scheme} scheme, ${mapping.replicas} replica(s) per conv layer` : null,
    ],
    ['seed', s.seed],
    ['in-situ training', s.insituRule || s.insituSamples !== null ? `${s.insituRule ?? '?'} rule, ${s.insituSamples ?? '?'} images` : null],
    ['wall time', secText],
    ['run directory', inp.dir],
  ];
  return section('run', 'Run', facts(rows));
}

function accuracySection(s: HybridSummary): string {
  // summary.json's lostPoints is in percentage points; the arithmetic here is on fractions.
  const lost = s.lostPoints !== null ? s.lostPoints / 100 : s.softwareAccuracy - s.transferredAccuracy;
  const recovered = s.insituAccuracy === null ? null : s.insituAccuracy - s.transferredAccuracy;
  const fraction = s.recoveredFraction ?? (recovered !== null && lost > 0 ? recovered / lost : null);
  const rows = [
    ['software (trained model)', pct(s.softwareAccuracy), '', ''],
    ['after transfer to the crossbar', pct(s.transferredAccuracy), points(s.transferredAccuracy - s.softwareAccuracy), `${points(lost, false)} points lost`],
    [
      'after in-situ training',
      pct(s.insituAccuracy),
      s.insituAccuracy === null ? '-' : points(s.insituAccuracy - s.softwareAccuracy),
      recovered === null ? 'no in-situ training' : `${points(recovered)} points recovered${fraction !== null ? ` (${(100 * fraction).toFixed(0)}% of the lost points)` : ''}`,
    ],
  ];
  const tableHtml =
    '<table><thead><tr><th>stage</th><th class="num">test accuracy</th><th class="num">vs software (points)</th><th>change</th></tr></thead><tbody>' +
    rows.map((r) => `<tr><td>${esc(r[0])}</td><td class="num">${esc(r[1])}</td><td class="num">${esc(r[2])}</td><td>${esc(r[3])}</td></tr>`).join('') +
    '</tbody></table>';
  const stages = ['software', 'after transfer', 'after in-situ'];
  const ys = [s.softwareAccuracy, s.transferredAccuracy, s.insituAccuracy];
  const chart = lineChart({
    title: 'Test accuracy at each stage',
    xLabel: 'stage',
    yLabel: 'test accuracy (%)',
    xCategories: stages,
    series: [{ label: `${s.model} on ${s.device}`, points: ys.flatMap((y, i) => (y === null ? [] : [{ x: i, y: 100 * y }])), markers: true }],
    width: 440,
    height: 280,
    cls: 'stage-chart',
  });
  return section('accuracy', 'Accuracy: software, transfer, in-situ', tableHtml + plots([figure(chart, 'Test accuracy of the software model, of the same weights programmed on the crossbar, and after hybrid in-situ training of the crossbar.')]));
}

/** Columns of the programming table: [label, keys to try (the first present is shown)]. */
const PROGRAMMING_COLUMNS: [string, string[]][] = [
  ['layer', ['layer', 'name']],
  ['kind', ['kind']],
  ['rows', ['rows']],
  ['outputs', ['outputs']],
  ['scheme', ['scheme']],
  ['replicas', ['replicas']],
  ['arrays', ['arrays']],
  ['cells', ['cells']],
  ['|ΔG| mean (µS)', ['meanAbsError']],
  ['|ΔG| max (µS)', ['maxAbsError']],
  ['pulses/cell mean', ['meanPulses', 'pulsesMean']],
  ['pulses/cell max', ['maxPulses', 'pulsesMax']],
  ['pulses total', ['totalPulses', 'pulsesTotal']],
  ['outside tolerance', ['outsideTolerance']],
  ['not converged', ['notConverged']],
  ['stuck', ['stuck']],
  ['tolerance (µS)', ['toleranceUS']],
  ['time (s)', ['seconds']],
];

function programmingSection(s: { programming: Obj[] }, inp: ReportInputs, manifestName = 'crossbar/manifest.json'): string {
  let reports: Obj[] = s.programming;
  let from = 'summary.json';
  if (reports.length === 0 && inp.crossbar.ok) {
    reports = inp.crossbar.value.manifest.layers.map((l) => l.programming).filter(isObj);
    from = manifestName;
  }
  if (reports.length === 0) return section('programming', 'Write-verify programming', note(`No programming report in ${inp.kind === 'hybrid' ? 'summary.json nor in ' : ''}${manifestName}.`));
  const cols = PROGRAMMING_COLUMNS.filter(([, keys]) => reports.some((r) => keys.some((k) => r[k] !== undefined)));
  const known = new Set(PROGRAMMING_COLUMNS.flatMap(([, k]) => k));
  const extra = [...new Set(reports.flatMap((r) => Object.keys(r)))].filter((k) => !known.has(k) && reports.every((r) => r[k] === undefined || r[k] === null || typeof r[k] !== 'object'));
  const head = [...cols.map(([l]) => l), ...extra];
  const rows = reports.map((r) => [...cols.map(([, keys]) => r[keys.find((k) => r[k] !== undefined) ?? keys[0]]), ...extra.map((k) => r[k])]);
  return section(
    'programming',
    'Write-verify programming',
    `<p class="sub">Per mapped layer (from ${esc(from)}): conductance error after write-verify (true conductance, without read noise), pulses per cell, cells outside the tolerance and stuck cells.</p>` +
      `<div class="scroll">${table(head, rows)}</div>`,
  );
}

function paramKey(v: unknown): string {
  return typeof v === 'string' ? v : JSON.stringify(v);
}

/** The charts of a sweep: one per varied parameter. */
function sweepCharts(sw: SweepData): { figs: string[]; notes: string[] } {
  const figs: string[] = [];
  const notes: string[] = [];
  const names = sw.vary.length ? sw.vary.map((v) => v.name) : [...new Set(sw.points.flatMap((p) => Object.keys(p.params)))];
  for (const name of names) {
    const declared = sw.vary.find((v) => v.name === name)?.values ?? [];
    const values: unknown[] = [...declared];
    for (const p of sw.points) if (!values.some((v) => paramKey(v) === paramKey(p.params[name]))) values.push(p.params[name]);
    const numeric = values.every((v) => typeof v === 'number' && Number.isFinite(v));
    const others = names.filter((n) => n !== name);
    const groups = new Map<string, typeof sw.points>();
    for (const p of sw.points) {
      if (!(name in p.params)) continue;
      const g = others.map((o) => `${o}=${paramKey(p.params[o])}`).join(', ');
      if (!groups.has(g)) groups.set(g, []);
      groups.get(g)!.push(p);
    }
    const keys = [...groups.keys()];
    if (keys.length > MAX_SWEEP_GROUPS) notes.push(`${name}: ${keys.length} combinations of the other parameters; the first ${MAX_SWEEP_GROUPS} are drawn.`);
    const xOf = (v: unknown) => (numeric ? (v as number) : values.findIndex((u) => paramKey(u) === paramKey(v)));
    const series: LineSeries[] = [];
    keys.slice(0, MAX_SWEEP_GROUPS).forEach((g, i) => {
      const pts = groups.get(g)!;
      const color = PALETTE[i % PALETTE.length];
      const suffix = g ? ` (${g})` : '';
      series.push({ label: `after transfer${suffix}`, color, points: pts.map((p) => ({ x: xOf(p.params[name]), y: 100 * p.before.mean, err: 100 * p.before.std })) });
      const after = pts.filter((p) => p.after !== null);
      if (after.length) series.push({ label: `after in-situ${suffix}`, color, dashed: true, points: after.map((p) => ({ x: xOf(p.params[name]), y: 100 * p.after!.mean, err: 100 * p.after!.std })) });
    });
    const nums = values as number[];
    const xLog = numeric && nums.every((v) => v > 0) && Math.max(...nums) / Math.min(...nums) >= 100;
    figs.push(
      figure(
        lineChart({
          title: `Accuracy vs ${name}`,
          xLabel: name + (xLog ? ' (log scale)' : ''),
          yLabel: 'test accuracy (%)',
          series,
          xLog,
          xCategories: numeric ? undefined : values.map(paramKey),
          cls: 'sweep-chart',
        }),
        `Mean ± standard deviation over ${sw.trials ?? 'the'} trials${sw.trials ? ' per point' : ''}: solid after transfer, dashed after in-situ training.`,
      ),
    );
  }
  return { figs, notes };
}

function sweepSection(inp: ReportInputs): string {
  if (!inp.sweep.ok) {
    return section(
      'sweep',
      'Parameter sweep',
      note(
        `No sweep to show (${inp.sweep.note}). Run one with \`memristor-tfjs sweep\` (see \`memristor-tfjs sweep --help\`) writing into ${inp.summary ? 'the run directory\'s sweep/ folder' : 'a folder'}, ` +
          'or give its folder with `memristor-tfjs report DIR --sweep SWEEPDIR`.',
      ),
    );
  }
  const sw = inp.sweep.value;
  const { figs, notes } = sweepCharts(sw);
  const names = sw.vary.length ? sw.vary.map((v) => v.name) : [...new Set(sw.points.flatMap((p) => Object.keys(p.params)))];
  const rows = sw.points.map((p) => [
    ...names.map((n) => (typeof p.params[n] === 'number' ? p.params[n] : paramKey(p.params[n]))),
    `${pct(p.before.mean)} ± ${(100 * p.before.std).toFixed(2)}`,
    p.after ? `${pct(p.after.mean)} ± ${(100 * p.after.std).toFixed(2)}` : '-',
    p.before.values.length || null,
  ]);
  const head = facts([
    ['model', sw.model],
    ['device', sw.device],
    ['trials per point', sw.trials],
    ['in-situ training', sw.insitu ? 'yes' : 'no'],
    ['varied', sw.vary.map((v) => `${v.name} (${v.values.length} values)`).join(', ')],
    ['file', inp.sweep.file],
  ]);
  return section(
    'sweep',
    'Parameter sweep',
    head +
      (sw.points.length === 0 ? note('The sweep holds no points.') : plots(figs)) +
      notes.map(note).join('') +
      '<h3>Points</h3>' +
      table([...names, 'after transfer (mean ± std)', 'after in-situ (mean ± std)', 'trials'], rows),
  );
}

function arrayData(view: CrossbarView, file: string): CrossbarArrayData | null {
  return view.arrays.get(file) ?? null;
}

function layerHistogram(view: CrossbarView, layer: CrossbarLayerEntry): string {
  const t: Float32Array[] = [];
  const p: Float32Array[] = [];
  for (const a of layer.arrays) {
    const ta = arrayData(view, a.files.target);
    const pa = arrayData(view, a.files.programmed);
    if (ta) t.push(ta.data);
    if (pa) p.push(pa.data);
  }
  const target = concat(t);
  const programmed = concat(p);
  return figure(
    histogramChart({
      title: `${layer.name}: conductance distribution`,
      xLabel: 'conductance G (µS)',
      yLabel: 'cells',
      bins: 60,
      series: [
        { label: 'target', values: target, color: PALETTE[0] },
        { label: 'programmed', values: programmed, color: PALETTE[1] },
      ],
      cls: 'conductance-histogram',
    }),
    `${layer.kind} layer ${layer.name}: ${target.length} cells on ${layer.arrays.length} array(s); target conductances and the conductances programmed by write-verify.`,
  );
}

function conductanceSection(inp: ReportInputs, part: Part<CrossbarView> = inp.crossbar, title = 'Conductances after transfer'): string {
  if (!part.ok) return section('conductance', title, note(part.note));
  const view = part.value;
  const { manifest } = view;
  const hist = plots(manifest.layers.map((l) => layerHistogram(view, l)));
  const all = manifest.layers.flatMap((l) => l.arrays.map((a) => ({ layer: l, a })));
  const shown = all.slice(0, MAX_HEATMAP_ARRAYS);
  const maps: string[] = [];
  // the error colour scale saturates at twice the write-verify tolerance: cells within tolerance
  // show as shades, stuck or unconverged cells as full colour
  const dev = manifest.device;
  const tolUS = (dev.writeVerify?.tolerance ?? 0) * (dev.gMax - dev.gMin);
  const lim = tolUS > 0 ? 2 * tolUS : null;
  for (const { layer, a } of shown) {
    const t = arrayData(view, a.files.target);
    const p = arrayData(view, a.files.programmed);
    if (!t || !p) continue;
    const diff = new Float32Array(p.data.length);
    let beyond = 0;
    for (let i = 0; i < diff.length; i++) {
      diff[i] = p.data[i] - t.data[i];
      if (lim !== null && Math.abs(diff[i]) > lim) beyond++;
    }
    const where = `${layer.kind} layer ${layer.name}, replica ${a.replica}, rows ${a.rowStart}–${a.rowStart + a.rows - 1} of its weight matrix (${a.scheme} scheme)`;
    maps.push(
      figure(
        heatmap({ title: `${a.id}: programmed G`, rows: p.rows, cols: p.cols, data: p.data, valueLabel: 'G (µS)', lo: manifest.device.gMin, hi: manifest.device.gMax, cls: 'conductance-heatmap' }),
        `Array ${a.id} (${p.rows} x ${p.cols}), ${where}: programmed conductance, colour scale over the device window.`,
      ),
      figure(
        heatmap({
          title: `${a.id}: programmed − target`,
          rows: p.rows,
          cols: p.cols,
          data: diff,
          valueLabel: 'G − G target (µS)',
          colormap: 'diverging',
          ...(lim !== null ? { lo: -lim, hi: lim } : {}),
          cls: 'error-heatmap',
        }),
        `Array ${a.id}: programming error, blue below and red above the target` +
          (lim !== null ? `; the colours saturate at ±${formatValue(lim)} µS (twice the write-verify tolerance), ${beyond} of ${diff.length} cells lie beyond.` : '.'),
      ),
    );
  }
  const more = all.length > shown.length ? note(`${all.length - shown.length} more arrays are not drawn (the first ${MAX_HEATMAP_ARRAYS} of ${all.length} are).`) : '';
  return section(
    'conductance',
    title,
    `<p class="sub">From ${esc(view.dir)}: ${all.length} array(s) of the device ${esc(manifest.device.name)} (window ${manifest.device.gMin} to ${manifest.device.gMax} µS).</p>` +
      '<h3>Target vs programmed, per layer</h3>' +
      hist +
      '<h3>Per array</h3>' +
      plots(maps) +
      more,
  );
}

/** The accuracies the in-situ learning curve is drawn against (reference lines), where known. */
interface InsituRefs {
  software: number | null;
  transferred: number | null;
}

function insituSection(inp: ReportInputs, refs: InsituRefs): string {
  if (!inp.insitu.ok) return section('insitu', 'In-situ training', note(inp.insitu.note));
  const log: InsituLog = inp.insitu.value;
  const head = facts([
    ['trained layer', log.layer],
    ['update rule', log.rule],
    ['images', log.samples],
    ['epochs', log.epochs],
    ['batch size', log.batchSize],
    ['learning rate', log.lr],
    ['pulse threshold', log.threshold],
    ['test accuracy before', pct(log.before)],
    ['test accuracy after', pct(log.after)],
  ]);
  const c = log.curve;
  const figs: string[] = [];
  if (c.length === 0) figs.push(note('The learning curve is empty.'));
  else {
    const train = c.filter((p) => p.trainAccuracy !== null).map((p) => ({ x: p.samples, y: 100 * p.trainAccuracy! }));
    const test = c.filter((p) => p.testAccuracy !== null).map((p) => ({ x: p.samples, y: 100 * p.testAccuracy! }));
    const series: LineSeries[] = [];
    if (train.length) series.push({ label: 'training accuracy', points: train, color: PALETTE[0] });
    if (test.length) series.push({ label: 'test accuracy', points: test, color: PALETTE[1], markers: true });
    figs.push(
      figure(
        lineChart({
          title: 'In-situ learning curve: accuracy',
          xLabel: 'training images seen',
          yLabel: 'accuracy (%)',
          series,
          hLines: [
            ...(refs.software !== null ? [{ y: 100 * refs.software, label: 'software', color: '#009e73' }] : []),
            ...(refs.transferred !== null ? [{ y: 100 * refs.transferred, label: inp.kind === 'hybrid' ? 'after transfer' : 'before in-situ', color: '#999' }] : []),
          ],
          cls: 'learning-curve',
        }),
        `Accuracy on the training images during in-situ training (running), test accuracy where measured, and the ${inp.kind === 'hybrid' ? 'software and after-transfer test accuracies' : 'test accuracy before in-situ training'} for reference.`,
      ),
    );
    const pulses = c.filter((p) => p.pulses !== null).map((p) => ({ x: p.samples, y: p.pulses! }));
    if (pulses.length) {
      figs.push(
        figure(
          lineChart({ title: 'In-situ learning curve: pulses', xLabel: 'training images seen', yLabel: 'programming pulses (cumulative)', series: [{ label: 'SET + RESET pulses', points: pulses, color: PALETTE[3] }], cls: 'pulse-curve' }),
          'Programming pulses applied to the arrays of the trained layer so far.',
        ),
      );
    }
    const loss = c.filter((p) => p.loss !== null).map((p) => ({ x: p.samples, y: p.loss! }));
    if (loss.length) {
      figs.push(
        figure(
          lineChart({ title: 'In-situ learning curve: loss', xLabel: 'training images seen', yLabel: 'cross-entropy loss (nats)', series: [{ label: 'training loss', points: loss, color: PALETTE[2] }], cls: 'loss-curve' }),
        ),
      );
    }
  }
  // pulses per cell
  const pc = [...log.pulsesPerCell.entries()];
  const pulseFigs: string[] = [];
  let pulseNote = '';
  if (pc.length === 0) pulseNote = note('insitu.json holds no pulses per cell.');
  else {
    const pooled = pc.flatMap(([, a]) => a.data);
    const total = pooled.reduce((x, y) => x + y, 0);
    const never = pooled.filter((v) => v === 0).length;
    pulseFigs.push(
      figure(
        histogramChart({ title: `${log.layer}: pulses per cell`, xLabel: 'SET + RESET pulses per cell', yLabel: 'cells', series: [{ label: 'cells', values: pooled, color: PALETTE[3] }], integer: true, bins: 60, cls: 'pulse-histogram' }),
        `${pooled.length} cells of ${pc.length} array(s): ${total} pulses in all, ${formatValue(total / pooled.length, 3)} per cell on average, max ${Math.max(...pooled)}; ${never} cells (${((100 * never) / pooled.length).toFixed(1)}%) never pulsed.`,
      ),
    );
    for (const [id, a] of pc.slice(0, MAX_PULSE_ARRAYS)) {
      pulseFigs.push(
        figure(
          heatmap({ title: `${id}: pulses per cell`, rows: a.rows, cols: a.cols, data: a.data, valueLabel: 'pulses', lo: 0, cls: 'pulse-heatmap' }),
          `SET + RESET pulses applied to each cell of array ${id} during in-situ training.`,
        ),
      );
    }
    if (pc.length > MAX_PULSE_ARRAYS) pulseNote = note(`${pc.length - MAX_PULSE_ARRAYS} more arrays are not drawn.`);
  }
  // conductance change of the trained layer
  const changeFigs: string[] = [];
  let changeNote = '';
  if (inp.crossbar.ok && inp.insituCrossbar.ok) {
    const before = inp.crossbar.value;
    const after = inp.insituCrossbar.value;
    const layer = after.manifest.layers.find((l) => l.name === log.layer);
    const layerBefore = before.manifest.layers.find((l) => l.name === log.layer);
    if (!layer || !layerBefore) changeNote = note(`Layer ${log.layer} is not in both crossbar directories: no conductance change to show.`);
    else {
      for (const a of layer.arrays.slice(0, MAX_PULSE_ARRAYS)) {
        const b = layerBefore.arrays.find((x) => x.id === a.id);
        const pa = arrayData(after, a.files.programmed);
        const pb = b ? arrayData(before, b.files.programmed) : null;
        if (!pa || !pb || pa.data.length !== pb.data.length) continue;
        const d = new Float32Array(pa.data.length);
        for (let i = 0; i < d.length; i++) d[i] = pa.data[i] - pb.data[i];
        changeFigs.push(
          figure(
            heatmap({ title: `${a.id}: ΔG from in-situ training`, rows: pa.rows, cols: pa.cols, data: d, valueLabel: 'ΔG (µS)', colormap: 'diverging', cls: 'insitu-change-heatmap' }),
            `Conductance after in-situ training minus after transfer, array ${a.id}.`,
          ),
        );
      }
    }
  } else if (!inp.insituCrossbar.ok) changeNote = note(inp.insituCrossbar.note);
  else if (!inp.crossbar.ok && inp.kind === 'insitu') changeNote = note(`No conductance change to show: ${inp.crossbar.note}.`);
  return section(
    'insitu',
    'In-situ training',
    head +
      '<h3>Learning curve</h3>' +
      plots(figs) +
      '<h3>Pulses per cell</h3>' +
      plots(pulseFigs) +
      pulseNote +
      (changeFigs.length || changeNote ? '<h3>Conductance change</h3>' + plots(changeFigs) + changeNote : ''),
  );
}

// ---------------------------------------------------------------------------------------------
// In-situ learning curves, one line per run (a single run, or `report DIR --compare DIR2 ...`)

/** Where each run's energies come from, in words: 'from ...' alone for one run or when all agree, else per run. */
function energySources(runs: InsituRun[]): string {
  const from = [...new Set(runs.map((r) => r.energyFrom ?? 'unknown'))];
  if (from.length === 1) return `energy from ${from[0]}`;
  return from.map((f) => `${runs.filter((r) => (r.energyFrom ?? 'unknown') === f).map((r) => r.label).join(', ')}: ${f}`).join('; ');
}

/**
 * Test accuracy vs images seen, vs programming pulses and vs programming energy, one line per run
 * (each a <g class="series" data-label="LABEL"> of the chart), and a table of the runs' totals.
 */
export function insituCurvesSection(runs: InsituRun[]): string {
  const many = runs.length > 1;
  const withTest = runs.map((r) => r.curve.filter((p) => p.testAccuracy !== null));
  const notes: string[] = [];
  runs.forEach((r, i) => {
    if (withTest[i].length === 0) notes.push(`${r.label} (${r.dir}): its learning curve has no test accuracy (run insitu with --eval-samples N), so it has no line.`);
  });
  const series = (x: (p: InsituRunPoint) => number | null, scale = 1): LineSeries[] =>
    runs.map((r, i) => ({
      label: r.label,
      color: PALETTE[i % PALETTE.length],
      points: withTest[i].flatMap((p) => {
        const v = x(p);
        return v === null ? [] : [{ x: v / scale, y: 100 * p.testAccuracy! }];
      }),
      markers: true,
    }));
  const eu = pickUnit(runs.flatMap((r) => r.curve.map((p) => p.energyPJ)), PJ_UNITS);
  const figs = [
    figure(
      lineChart({ title: 'Test accuracy vs training images seen', xLabel: 'training images seen', yLabel: 'test accuracy (%)', series: series((p) => p.samples), cls: 'curves-images' }),
      `Test accuracy during in-situ training, ${many ? 'one line per run' : 'where measured'}.`,
    ),
    figure(
      lineChart({ title: 'Test accuracy vs programming pulses', xLabel: 'SET + RESET pulses applied (cumulative)', yLabel: 'test accuracy (%)', series: series((p) => p.pulses), cls: 'curves-pulses' }),
      'The same test accuracies against the update pulses applied to the trained layer so far: what a rule gains per pulse.',
    ),
  ];
  const noEnergy = runs.filter((r) => r.curve.every((p) => p.energyPJ === null));
  for (const r of noEnergy) notes.push(`${r.label} (${r.dir}): no programming energy (no energyPJ on its curve, no crossbar manifest with the device, no programming energy in insitu.json), so it has no line in the energy plot.`);
  figs.push(
    figure(
      lineChart({ title: 'Test accuracy vs programming energy', xLabel: `programming energy (${eu.unit}, cumulative)`, yLabel: 'test accuracy (%)', series: series((p) => p.energyPJ, eu.scale), cls: 'curves-energy' }),
      `Against the programming energy of those pulses (${energySources(runs)}); every pulse counted, the serial upper bound.`,
    ),
  );
  const head = ['run', 'folder', 'rule', 'images', 'updates', 'pulses', 'energy', 'test accuracy before', 'after', 'change (points)', 'recovered of the lost points'];
  const rows = runs.map((r) => [
    r.label,
    r.dir,
    r.rule ?? '-',
    r.images,
    r.updates,
    r.pulses,
    r.energyPJ === null ? '-' : formatPJ(r.energyPJ),
    pct(r.before),
    pct(r.after),
    r.before !== null && r.after !== null ? points(r.after - r.before) : '-',
    r.recoveredFraction === null ? '-' : `${(100 * r.recoveredFraction).toFixed(0)}%${r.software !== null ? ` (software ${pct(r.software)}, after transfer ${pct(r.transferred)})` : ''}`,
  ]);
  const intro = many
    ? `<p class="sub">${runs.length} in-situ runs side by side: ${runs.map((r) => `<code>${esc(r.label)}</code>`).join(', ')}.</p>`
    : '<p class="sub">The test accuracy of this run against the images, pulses and programming energy it took.</p>';
  return section('curves', 'In-situ learning curves', intro + notes.map(note).join('') + plots(figs) + `<div class="scroll">${table(head, rows, 'curves-table')}</div>`);
}

// ---------------------------------------------------------------------------------------------
// Energy

/** Every numeric (and short string / boolean) leaf of an object, with its dotted path. */
export function flattenLeaves(v: unknown, prefix = '', out: [string, string | number | boolean][] = [], depth = 0): [string, string | number | boolean][] {
  if (depth > 6) return out;
  if (isObj(v)) for (const [k, x] of Object.entries(v)) flattenLeaves(x, prefix ? `${prefix}.${k}` : k, out, depth + 1);
  else if (Array.isArray(v)) {
    if (v.length <= 16) v.forEach((x, i) => flattenLeaves(x, `${prefix}[${i}]`, out, depth + 1));
  } else if (typeof v === 'number' && Number.isFinite(v)) out.push([prefix, v]);
  else if (typeof v === 'boolean' || (typeof v === 'string' && v.length <= 120)) out.push([prefix, v]);
  return out;
}

/** The unit an energy key names by its suffix ('adcPJ' -> 'pJ'), or ''. */
export function unitOf(key: string): string {
  const m = /(PJ|NJ|UJ|FJ|MJ|pJ|nJ|uJ|fJ|mJ|J|Joules?|Ns|Us|Ms|S|Seconds?|W|MW|UW|mW|uW)$/.exec(key);
  if (!m) return '';
  const u = m[1];
  const map: Record<string, string> = { PJ: 'pJ', pJ: 'pJ', NJ: 'nJ', nJ: 'nJ', UJ: 'µJ', uJ: 'µJ', FJ: 'fJ', fJ: 'fJ', MJ: 'mJ', mJ: 'mJ', J: 'J', Joule: 'J', Joules: 'J', Ns: 'ns', Us: 'µs', Ms: 'ms', S: 's', Second: 's', Seconds: 's', W: 'W', MW: 'mW', UW: 'µW', mW: 'mW', uW: 'µW' };
  return map[u] ?? '';
}

/**
 * The component breakdowns of an energy estimate: objects of >= 2 numbers whose key says
 * breakdown (breakdownPJ, components, byComponent...), else the numbers of perInference (or the
 * top level) without their totals. At most 3.
 */
export function findBreakdowns(energy: Obj): { path: string; unit: string; entries: [string, number][] }[] {
  const found: { path: string; unit: string; entries: [string, number][] }[] = [];
  const numbersOf = (o: Obj) => Object.entries(o).filter((e): e is [string, number] => typeof e[1] === 'number' && Number.isFinite(e[1]));
  const visit = (o: Obj, p: string, depth: number) => {
    for (const [k, v] of Object.entries(o)) {
      if (!isObj(v)) continue;
      const path = p ? `${p}.${k}` : k;
      const nums = numbersOf(v);
      if (/breakdown|components?|byComponent|parts/i.test(k) && nums.length >= 2) found.push({ path, unit: unitOf(k), entries: nums });
      else if (depth < 4) visit(v, path, depth + 1);
    }
  };
  visit(energy, '', 0);
  if (found.length === 0) {
    for (const key of ['perInference', 'perImage', '']) {
      const o = key ? energy[key] : energy;
      if (!isObj(o)) continue;
      const nums = numbersOf(o).filter(([k]) => !/^total/i.test(k));
      const units = new Set(nums.map(([k]) => unitOf(k)));
      if (nums.length >= 2 && units.size === 1) {
        found.push({ path: key || 'energy', unit: [...units][0], entries: nums });
        break;
      }
    }
  }
  return found.slice(0, 3);
}

/** The generic view of an energy object of another shape: every leaf as a row, breakdown objects as bars. */
function genericEnergy(e: Obj, why: string | null): string {
  const leaves = flattenLeaves(e);
  const tableHtml = leaves.length
    ? '<table><thead><tr><th>quantity</th><th class="num">value</th><th>unit</th></tr></thead><tbody>' +
      leaves
        .map(([k, v]) => `<tr><td><code>${esc(k)}</code></td>${typeof v === 'number' ? `<td class="num">${esc(formatValue(v, 4))}</td>` : `<td>${esc(v)}</td>`}<td>${esc(unitOf(k.split('.').pop() ?? ''))}</td></tr>`)
        .join('') +
      '</tbody></table>'
    : note('The energy estimate holds no numbers.');
  const charts = findBreakdowns(e).map((b) => {
    const strip = (k: string) => (b.unit ? k.replace(/(PJ|NJ|UJ|FJ|MJ|pJ|nJ|uJ|fJ|mJ|J)$/, '') : k) || k;
    const total = b.entries.reduce((a, [, v]) => a + v, 0);
    return figure(
      barChart({
        title: `Energy by component (${b.path})`,
        valueLabel: `energy${b.unit ? ` (${b.unit})` : ''}`,
        bars: b.entries.map(([k, v], i) => ({ label: strip(k), value: v, color: PALETTE[i % PALETTE.length] })),
        cls: 'energy-chart',
      }),
      `Sum of the components: ${formatValue(total, 4)}${b.unit ? ` ${b.unit}` : ''}.`,
    );
  });
  return (
    (why ? note(why) : '') +
    `<div class="scroll">${tableHtml}</div>` +
    (charts.length ? plots(charts) : note('The energy estimate has no component breakdown to chart.'))
  );
}

// The estimate as src/energy.ts writes it (EnergyEstimate), read defensively: any number may be
// missing or of the wrong type in a file (an older or hand-edited summary.json); such a value shows
// as '-' with a note naming it, and only an estimate without its total energy or its layers falls
// back to the generic view.

type Num = number | null;
const ENERGY_PARTS = [
  ['cellReads', 'cell reads'],
  ['dac', 'DAC'],
  ['adc', 'ADC'],
  ['neurons', 'neurons'],
  ['digitalAdds', 'digital adds'],
] as const satisfies readonly (readonly [Exclude<keyof EnergyBreakdown, 'total'>, string])[];
const LATENCY_PARTS = [
  ['reads', 'array reads (DAC pulse in)'],
  ['adc', 'ADC conversions'],
  ['neurons', 'neurons'],
  ['digitalAdds', 'digital adds'],
] as const satisfies readonly (readonly [Exclude<keyof LatencyBreakdown, 'total'>, string])[];
/** One colour per component in both charts (array reads as cell reads). */
const PART_COLORS: Record<string, string> = { cellReads: PALETTE[0], reads: PALETTE[0], dac: PALETTE[1], adc: PALETTE[2], neurons: PALETTE[3], digitalAdds: PALETTE[4] };
type EnergyParts = Record<keyof EnergyBreakdown, Num>;
type LatencyParts = Record<keyof LatencyBreakdown, Num>;

interface EnergyLayerView {
  layer: string;
  kind: string;
  macs: Num;
  positions: Num;
  replicas: Num;
  positionsPerReplica: Num;
  readsPerInput: Num;
  energyPJ: EnergyParts;
  latencyNs: LatencyParts;
}

interface EnergyView {
  device: string | null;
  adcSharing: string | null;
  energyTable: [string, number][];
  latencyTable: [string, number][];
  layers: EnergyLayerView[];
  macs: Num;
  ops: Num;
  energyPJ: EnergyParts;
  latencyNs: LatencyParts;
  inferencesPerSec: Num;
  topsPerWatt: Num;
  gops: Num;
  programming: { pulses: Num; energyPJ: Num; latencyNs: Num } | null;
}

/** Reads numbers off an object, noting (once each) the ones present but not finite numbers. */
class NumberReader {
  readonly notes: string[] = [];
  /** What the paths are under, for the notes ('energy.'). */
  constructor(readonly prefix = 'energy.') {}
  num(o: unknown, key: string, path: string): Num {
    if (!isObj(o)) return null;
    const v = o[key];
    if (v === undefined || v === null) return null;
    if (typeof v === 'number' && Number.isFinite(v)) return v;
    const shown = JSON.stringify(v) ?? String(v);
    this.notes.push(`${this.prefix}${path}.${key} is not a finite number (${shown.length > 40 ? shown.slice(0, 37) + '...' : shown}): shown as -.`);
    return null;
  }
  str(o: unknown, key: string): string | null {
    if (!isObj(o)) return null;
    const v = o[key];
    return typeof v === 'string' && v !== '' ? v : null;
  }
}

/** The estimate in summary.json's energy, or why it is not one (then the generic view shows it). */
export function readEnergyEstimate(e: Obj): { ok: true; view: EnergyView; notes: string[] } | { ok: false; why: string } {
  if (!isObj(e.energyPJ) || !Array.isArray(e.layers) || typeof e.energyPJ.total !== 'number' || !Number.isFinite(e.energyPJ.total)) {
    return {
      ok: false,
      why:
        'This energy object is not the estimate this memristor-tfjs writes (it needs energyPJ.total, a number, and layers, a list; ' +
        'an older summary.json?): its numbers are listed as they are.',
    };
  }
  const r = new NumberReader();
  const energyParts = (o: unknown, path: string): EnergyParts => ({
    cellReads: r.num(o, 'cellReads', path),
    dac: r.num(o, 'dac', path),
    adc: r.num(o, 'adc', path),
    neurons: r.num(o, 'neurons', path),
    digitalAdds: r.num(o, 'digitalAdds', path),
    total: r.num(o, 'total', path),
  });
  const latencyParts = (o: unknown, path: string): LatencyParts => ({
    reads: r.num(o, 'reads', path),
    adc: r.num(o, 'adc', path),
    neurons: r.num(o, 'neurons', path),
    digitalAdds: r.num(o, 'digitalAdds', path),
    total: r.num(o, 'total', path),
  });
  const table = (o: unknown, path: string): [string, number][] =>
    isObj(o) ? Object.keys(o).flatMap((k) => { const v = r.num(o, k, path); return v === null ? [] : [[k, v] as [string, number]]; }) : [];
  const layers: EnergyLayerView[] = [];
  (e.layers as unknown[]).forEach((l, i) => {
    const path = `layers[${i}]`;
    if (!isObj(l)) {
      r.notes.push(`energy.${path} is not an object: left out of the per-layer table.`);
      return;
    }
    layers.push({
      layer: r.str(l, 'layer') ?? `layer ${i}`,
      kind: r.str(l, 'kind') ?? '-',
      macs: r.num(l, 'macs', path),
      positions: r.num(l, 'positions', path),
      replicas: r.num(l, 'replicas', path),
      positionsPerReplica: r.num(l, 'positionsPerReplica', path),
      readsPerInput: r.num(l, 'readsPerInput', path),
      energyPJ: energyParts(l.energyPJ, `${path}.energyPJ`),
      latencyNs: latencyParts(l.latencyNs, `${path}.latencyNs`),
    });
  });
  const energyPJ = energyParts(e.energyPJ, 'energyPJ');
  const latencyNs = latencyParts(e.latencyNs, 'latencyNs');
  const macs = r.num(e, 'macs', 'estimate');
  const ops = r.num(e, 'ops', 'estimate') ?? (macs !== null ? 2 * macs : null);
  const total = energyPJ.total!;
  const lat = latencyNs.total;
  const p = e.programming;
  const view: EnergyView = {
    device: r.str(e, 'device'),
    adcSharing: r.str(e, 'adcSharing'),
    energyTable: table(e.energyTable, 'energyTable'),
    latencyTable: table(e.latencyTable, 'latencyTable'),
    layers,
    macs,
    ops,
    energyPJ,
    latencyNs,
    // the derived figures, from their definitions when the file lacks them
    inferencesPerSec: r.num(e, 'inferencesPerSec', 'estimate') ?? (lat !== null && lat > 0 ? 1e9 / lat : null),
    topsPerWatt: r.num(e, 'topsPerWatt', 'estimate') ?? (ops !== null && total > 0 ? ops / total : null),
    gops: r.num(e, 'gops', 'estimate') ?? (ops !== null && lat !== null && lat > 0 ? ops / lat : null),
    programming: isObj(p) ? { pulses: r.num(p, 'pulses', 'programming'), energyPJ: r.num(p, 'energyPJ', 'programming'), latencyNs: r.num(p, 'latencyNs', 'programming') } : null,
  };
  // messages say 'energy.estimate.x' for top-level keys: make them 'energy.x'
  return { ok: true, view, notes: r.notes.map((n) => n.replace('energy.estimate.', 'energy.')) };
}

/** A unit for a column of values (the largest one picks it) and the values in it. */
function pickUnit(values: Num[], units: [number, string][]): { unit: string; scale: number } {
  const m = Math.max(0, ...values.filter((v): v is number => v !== null).map(Math.abs));
  for (const [s, u] of units) if (m >= s) return { unit: u, scale: s };
  const [s, u] = units[units.length - 1];
  return { unit: u, scale: s };
}
// the unit names of formatPJ and formatNs (src/energy.ts), so the page uses one spelling
const PJ_UNITS: [number, string][] = [[1e9, 'mJ'], [1e6, 'uJ'], [1e3, 'nJ'], [1, 'pJ']];
const NS_UNITS: [number, string][] = [[1e9, 's'], [1e6, 'ms'], [1e3, 'us'], [1, 'ns']];

function fmtPJ(v: Num): string {
  return v === null ? '-' : formatPJ(v);
}
function fmtNs(v: Num): string {
  return v === null ? '-' : formatNs(v);
}
function fmtInt(v: Num): string {
  return v === null ? '-' : Math.round(v).toLocaleString('en-US');
}
function fmt3(v: Num): string {
  return v === null ? '-' : formatValue(v, 3);
}
function sharePct(part: Num, whole: Num): string {
  if (part === null || whole === null || !(whole > 0)) return '-';
  const p = (100 * part) / whole;
  return p > 0 && p < 0.5 ? '<1%' : `${Math.round(p)}%`;
}

const ADC_SHARING: Record<string, string> = {
  array: 'one ADC per array, its column (pair) currents converted one after another',
  column: 'one ADC per column (pair), all converted at once',
};

const TABLE_NAMES: Record<string, string> = {
  cellReadPJ: 'cell read',
  dacPJ: 'DAC conversion',
  adcPJ: 'ADC conversion',
  neuronPJ: 'neuron',
  digitalAddPJ: 'digital add',
  programmingPulsePJ: 'programming pulse',
  readNs: 'read',
  adcNs: 'ADC conversion',
  neuronNs: 'neuron',
  digitalAddNs: 'digital add',
  programmingPulseNs: 'programming pulse',
};

function tableText(t: [string, number][], unit: string): string | null {
  return t.length ? t.map(([k, v]) => `${TABLE_NAMES[k] ?? k} ${formatValue(v, 3)} ${unit}`).join(', ') : null;
}

/** The in-situ update pulses' cost: summary.json's insituProgramming / insituPulses, else insitu.json's programming. */
/** What the energy section reads: the estimate, and the in-situ pulse counts and costs where a hybrid run has them. */
type EnergySource = { energy: Obj | null; insituProgramming?: unknown; insituPulses?: unknown };

function insituCost(s: EnergySource, inp: ReportInputs, r: NumberReader): { pulses: Num; energyPJ: Num; timeNs: Num; from: string } | null {
  const fromLog = inp.insitu.ok ? inp.insitu.value.programming : undefined;
  const prog = isObj(s.insituProgramming) ? s.insituProgramming : isObj(fromLog) ? fromLog : null;
  const pulses = typeof s.insituPulses === 'number' && Number.isFinite(s.insituPulses) ? s.insituPulses : null;
  if (!prog && pulses === null) return null;
  const from = isObj(s.insituProgramming) ? 'summary.json' : prog ? 'insitu/insitu.json' : 'summary.json';
  const path = from === 'summary.json' ? 'summary.json insituProgramming' : 'insitu.json programming';
  return { pulses, energyPJ: prog ? r.num(prog, 'energyPJ', path) : null, timeNs: prog ? r.num(prog, 'timeNs', path) : null, from };
}

function energySection(s: EnergySource, inp: ReportInputs): string {
  const e = s.energy;
  if (!e) {
    const why = inp.kind === 'hybrid' ? 'No energy estimate in summary.json (energy is null or absent).' : 'No energy estimate: the network of this folder could not be loaded to estimate it.';
    return section('energy', 'Energy and latency estimate', note(why));
  }
  const read = readEnergyEstimate(e);
  if (!read.ok) return section('energy', 'Energy and latency estimate', genericEnergy(e, read.why));
  const v = read.view;
  const r = new NumberReader('');
  const insitu = insituCost(s, inp, r);
  const notes = [...read.notes, ...r.notes];
  const total = v.energyPJ.total;
  const perInference = (pj: Num) => (pj !== null && total !== null && total > 0 ? ` (the energy of ${fmt3(pj / total)} inferences)` : '');

  // the summary
  const breakdown = ENERGY_PARTS.map(([k, label]) => [label, v.energyPJ[k]] as const)
    .filter(([, x]) => x !== null && x > 0)
    .sort((a, b) => b[1]! - a[1]!)
    .map(([label, x]) => `${label} ${sharePct(x, total)}`)
    .join(', ');
  const prog = v.programming;
  const summaryRows: [string, string | null][] = [
    ['operations per inference', v.ops === null ? null : `${fmtInt(v.ops)} ops (${fmtInt(v.macs)} MACs) in ${v.layers.length} mapped layer(s)`],
    ['energy per inference', `${fmtPJ(total)}${breakdown ? ` (${breakdown})` : ''}`],
    ['energy per MAC', v.macs !== null && v.macs > 0 && total !== null ? fmtPJ(total / v.macs) : null],
    ['latency per inference', fmtNs(v.latencyNs.total)],
    ['inferences per second', fmtInt(v.inferencesPerSec)],
    ['TOPS/W', fmt3(v.topsPerWatt)],
    ['GOPS', fmt3(v.gops)],
    ['device tables', v.device ?? '-'],
    ['energy table', tableText(v.energyTable, 'pJ')],
    ['latency table', tableText(v.latencyTable, 'ns')],
    ['ADC sharing', v.adcSharing === null ? '-' : `${v.adcSharing}: ${ADC_SHARING[v.adcSharing] ?? 'unknown to this report'}`],
    [
      'programming the mapping (write-verify, once)',
      prog ? `${fmtInt(prog.pulses)} pulses, ${fmtPJ(prog.energyPJ)}${perInference(prog.energyPJ)}, ${fmtNs(prog.latencyNs)} one pulse at a time` : 'not known (no programming report)',
    ],
    [
      'in-situ training update pulses',
      insitu
        ? `${fmtInt(insitu.pulses)} pulses, ${fmtPJ(insitu.energyPJ)}${perInference(insitu.energyPJ)}, ${fmtNs(insitu.timeNs)} one pulse at a time (from ${insitu.from})`
        : 'no in-situ training in this run',
    ],
  ];
  const summaryHtml =
    '<table class="facts energy-summary"><tbody>' +
    summaryRows
      .filter(([, x]) => x !== null)
      .map(([k, x]) => `<tr><th>${esc(k)}</th><td>${esc(x)}</td></tr>`)
      .join('') +
    '</tbody></table>';

  // the per-layer table: one unit per energy column group and one for the latency
  const allEnergy = [...v.layers.flatMap((l) => Object.values(l.energyPJ)), total];
  const eu = pickUnit(allEnergy, PJ_UNITS);
  const tu = pickUnit([...v.layers.map((l) => l.latencyNs.total), v.latencyNs.total], NS_UNITS);
  const en = (x: Num) => (x === null ? '-' : formatValue(x / eu.scale, 3));
  const ns = (x: Num) => (x === null ? '-' : formatValue(x / tu.scale, 3));
  const head = ['layer', 'kind', 'MACs', 'positions', 'reads per input', ...ENERGY_PARTS.map(([, l]) => `${l} (${eu.unit})`), `total (${eu.unit})`, 'share', `latency (${tu.unit})`];
  const numCol = (j: number) => j >= 2;
  const row = (cls: string, label: string, cells: string[]) =>
    `<tr class="${cls}"${cls === 'energy-layer' ? ` data-layer="${esc(label)}"` : ''}>${cells.map((c, j) => `<td${numCol(j) ? ' class="num"' : ''}>${esc(c)}</td>`).join('')}</tr>`;
  const positions = (l: EnergyLayerView) =>
    l.positions === null ? '-' : `${fmtInt(l.positions)}${l.replicas !== null && l.replicas > 1 ? ` (${l.replicas} replicas, ${fmtInt(l.positionsPerReplica)} each)` : ''}`;
  const layerRows = v.layers.map((l) =>
    row('energy-layer', l.layer, [
      l.layer,
      l.kind,
      fmtInt(l.macs),
      positions(l),
      fmtInt(l.readsPerInput),
      ...ENERGY_PARTS.map(([k]) => en(l.energyPJ[k])),
      en(l.energyPJ.total),
      sharePct(l.energyPJ.total, total),
      ns(l.latencyNs.total),
    ]),
  );
  const totalRow = row('energy-total', 'total', ['total', '', fmtInt(v.macs), '', '', ...ENERGY_PARTS.map(([k]) => en(v.energyPJ[k])), en(total), total !== null && total > 0 ? '100%' : '-', ns(v.latencyNs.total)]);
  const layerTable = v.layers.length
    ? '<div class="scroll"><table class="energy-layers"><thead><tr>' +
      head.map((h, j) => `<th${numCol(j) ? ' class="num"' : ''}>${esc(h)}</th>`).join('') +
      '</tr></thead><tbody>' +
      layerRows.join('') +
      totalRow +
      '</tbody></table></div>'
    : note('The estimate lists no mapped layers.');

  // the charts: energy and latency per layer, stacked by component
  const figs: string[] = [];
  if (v.layers.length) {
    const cats = v.layers.map((l) => `${l.layer} (${l.kind})`);
    figs.push(
      figure(
        stackedBarChart({
          title: 'Energy per inference, by layer and component',
          valueLabel: `energy per inference (${eu.unit})`,
          categories: cats,
          series: ENERGY_PARTS.map(([k, label]) => ({ label, values: v.layers.map((l) => (l.energyPJ[k] ?? 0) / eu.scale), color: PART_COLORS[k] })),
          format: (x) => `${formatValue(x, 3)} ${eu.unit}`,
          cls: 'energy-chart',
        }),
        `Total ${fmtPJ(total)} per inference${breakdown ? ` (${breakdown})` : ''}; analog arrays and their periphery only.`,
      ),
      figure(
        stackedBarChart({
          title: 'Latency per inference, by layer and component',
          valueLabel: `latency per inference (${tu.unit})`,
          categories: cats,
          series: LATENCY_PARTS.map(([k, label]) => ({ label, values: v.layers.map((l) => (l.latencyNs[k] ?? 0) / tu.scale), color: PART_COLORS[k] })),
          format: (x) => `${formatValue(x, 3)} ${tu.unit}`,
          cls: 'latency-chart',
        }),
        `Total ${fmtNs(v.latencyNs.total)} per inference, the layers one after another (${fmtInt(v.inferencesPerSec)} inferences/s).`,
      ),
    );
  }
  const sharing = v.adcSharing !== null ? ADC_SHARING[v.adcSharing] : undefined;
  const model =
    '<p class="sub">Model: energy = operation counts of the crossbar inference x the device tables; every cell read at the full read voltage (an upper estimate); ' +
    'digital layers (pooling, batch normalization, softmax), buffers, data movement, control and leakage not counted. ' +
    `Latency: mapped layers one after another, a layer's positions divided among its replicas, the arrays of a replica read at once, bit-serial reads one after another` +
    `${sharing ? `, ${esc(sharing)}` : ''}; no overlap between reads, conversions and additions (an upper estimate).</p>`;
  return section(
    'energy',
    'Energy and latency estimate',
    '<h3>Per inference</h3>' +
      summaryHtml +
      notes.map(note).join('') +
      '<h3>Per mapped layer</h3>' +
      layerTable +
      plots(figs) +
      model,
  );
}

// ---------------------------------------------------------------------------------------------
// The page

function page(title: string, subtitle: string, nav: [string, string][], body: string, opts: PageOptions, warnings: string[]): string {
  const generated = (opts.generated ?? new Date()).toISOString();
  return (
    '<!DOCTYPE html>\n' +
    '<html lang="en">\n<head>\n<meta charset="utf-8"/>\n<meta name="viewport" content="width=device-width, initial-scale=1"/>\n' +
    `<title>${esc(title)}</title>\n<style>${CSS}</style>\n</head>\n<body>\n` +
    `<header><h1>${esc(title)}</h1><p class="sub">${esc(subtitle)}</p><nav>${nav.map(([id, label]) => `<a href="#${id}">${esc(label)}</a>`).join('')}</nav></header>\n` +
    warnings.map((w) => note(w)).join('') +
    body +
    `\n<footer>Made by memristor-tfjs${opts.version ? ` ${esc(opts.version)}` : ''} on ${esc(generated)}. Self-contained: no network needed.</footer>\n` +
    `<script>\n${SELF_CHECK}\n</script>\n</body>\n</html>\n`
  );
}

// ---------------------------------------------------------------------------------------------
// Folders other than a hybrid run

/** The facts of a crossbar folder (a `map` folder, or an `insitu` folder's tuned crossbar). */
function crossbarFactsSection(inp: ReportInputs, view: CrossbarView, log: InsituLog | null): string {
  const m = view.manifest;
  const net = isObj(m.network) ? m.network : null;
  const mapping = net && isObj(net.mapping) ? net.mapping : null;
  const dev = m.device;
  const arrays = m.layers.reduce((n, l) => n + l.arrays.length, 0);
  const rows: [string, string | number | null | undefined][] = [
    ['network', net && typeof net.modelName === 'string' ? net.modelName : null],
    ['mapped layers', m.layers.map((l) => `${l.name} (${l.kind}, ${l.arrays.length} array${l.arrays.length === 1 ? '' : 's'})`).join(', ')],
    ['device', `${dev.name}${dev.description ? ` (${dev.description})` : ''}`],
    ['conductance window', `${dev.gMin} to ${dev.gMax} µS, ${dev.levels} levels`],
    ['write-verify', dev.writeVerify ? `${dev.writeVerify.mode}, tolerance ${dev.writeVerify.tolerance} of the window, at most ${dev.writeVerify.maxPulses} pulses` : null],
    ['arrays', mapping ? `${arrays} of ${mapping.arrayRows} x ${mapping.arrayCols}, ${mapping.scheme} scheme, ${mapping.replicas} replica(s) per conv layer` : String(arrays)],
    ['seed', mapping && typeof mapping.seed === 'number' ? mapping.seed : null],
    ['written', typeof m.created === 'string' ? m.created : null],
    ['folder', view.dir],
  ];
  if (log) {
    rows.push(['started from', typeof log.source === 'string' ? log.source : null]);
    rows.push(['test accuracy', `before in-situ ${pct(log.before)} → after ${pct(log.after)}`]);
  }
  const what = log ? 'An `insitu` folder: the crossbar after in-situ training of its last layer.' : 'A `map` folder: a trained network programmed onto crossbar arrays by write-verify.';
  return section('run', log ? 'In-situ run' : 'Crossbar', `<p class="sub">${esc(what)}</p>` + facts(rows));
}

/** A `train` folder: facts, loss and accuracy per epoch, parameters by precision. */
function trainingSection(inp: ReportInputs): string {
  if (!inp.training.ok) return section('training', 'Training', note(inp.training.note));
  const t: TrainingRecord = inp.training.value;
  const head = facts([
    ['model', `${t.model}${t.float === true ? ' (float)' : ''}`],
    ['dataset', t.dataset],
    ['samples', t.trainSamples !== null ? `${t.trainSamples} training, ${t.testSamples ?? '?'} test` : null],
    ['epochs', t.epochs],
    ['batch size', t.batchSize],
    ['learning rate', t.learningRate !== null ? `${t.learningRate}${typeof t.optimizer === 'string' ? `, ${t.optimizer}` : ''}${typeof t.schedule === 'string' ? `, ${t.schedule} schedule` : ''}` : null],
    ['backend', t.backend],
    ['speed', t.trainSamplesPerSec !== null ? `${t.trainSamplesPerSec} samples/s` : null],
    ['test accuracy', pct(t.testAccuracy)],
    ['test loss', t.testLoss],
    ['variation during training', isObj(t.variation) ? JSON.stringify(t.variation) : null],
    ['folder', inp.dir],
  ]);
  const figs: string[] = [];
  const h = t.history;
  const acc = (k: 'trainAccuracy' | 'validationAccuracy') => h.filter((r) => r[k] !== null).map((r) => ({ x: r.epoch, y: 100 * r[k]! }));
  if (h.length) {
    const series: LineSeries[] = [{ label: 'training accuracy (running)', points: acc('trainAccuracy'), color: PALETTE[0], markers: true }];
    if (acc('validationAccuracy').length) series.push({ label: 'validation accuracy', points: acc('validationAccuracy'), color: PALETTE[1], markers: true });
    figs.push(
      figure(
        lineChart({
          title: 'Accuracy per epoch',
          xLabel: 'epoch',
          yLabel: 'accuracy (%)',
          series,
          hLines: t.testAccuracy !== null ? [{ y: 100 * t.testAccuracy, label: 'test (final)', color: '#009e73' }] : [],
          cls: 'training-accuracy',
        }),
        'Accuracy on the training samples during each epoch, on the validation samples after it, and the final test accuracy.',
      ),
      figure(
        lineChart({ title: 'Loss per epoch', xLabel: 'epoch', yLabel: 'cross-entropy loss (nats)', series: [{ label: 'training loss', points: h.filter((r) => r.loss !== null).map((r) => ({ x: r.epoch, y: r.loss! })), color: PALETTE[2], markers: true }], cls: 'training-loss' }),
      ),
    );
  }
  const epochs = h.length
    ? '<h3>Per epoch</h3>' + table(['epoch', 'loss', 'training accuracy', 'validation accuracy'], h.map((r) => [r.epoch, r.loss, pct(r.trainAccuracy), pct(r.validationAccuracy)]))
    : note('metrics.json holds no epochs.');
  return section('training', 'Training', head + plots(figs) + epochs);
}

/** Parameters by precision per layer (metrics.json's parameters: layers/summary.ts QuantSummary). */
function parametersSection(inp: ReportInputs): string {
  const p = inp.training.ok ? inp.training.value.parameters : null;
  const layers = p && Array.isArray(p.layers) ? p.layers.filter(isObj) : [];
  if (!p || layers.length === 0) return section('parameters', 'Parameters by precision', note('metrics.json holds no parameter summary.'));
  const num = (o: Obj, k: string) => (typeof o[k] === 'number' ? (o[k] as number) : null);
  const rows = layers.map((l) => [l.name, l.className, num(l, 'params'), num(l, 'binary'), num(l, 'multiLevel'), num(l, 'float'), num(l, 'weightBits'), num(l, 'memoryBytes') !== null ? num(l, 'memoryBytes')! / 1024 : null]);
  const kib = (k: string) => (num(p, k) !== null ? `${(num(p, k)! / 1024).toFixed(2)} KiB` : '-');
  const totals = facts([
    ['parameters', num(p, 'totalParams') !== null ? `${num(p, 'totalParams')} (binary ${num(p, 'binaryParams') ?? '?'}, multi-level ${num(p, 'multiLevelParams') ?? '?'}, float ${num(p, 'floatParams') ?? '?'})` : null],
    ['memory', `${kib('memoryBytes')} (float32 equivalent ${kib('float32Bytes')}${num(p, 'compressionRatio') !== null ? `, ${num(p, 'compressionRatio')!.toFixed(2)}x smaller` : ''})`],
  ]);
  return section(
    'parameters',
    'Parameters by precision',
    '<p class="sub">Per layer, as Larq\'s summary: a binary weight takes 1 bit, a multi-level one ceil(log2 L) bits, a float one 32 bits.</p>' +
      totals +
      `<div class="scroll">${table(['layer', 'class', 'params', 'binary', 'multi-level', 'float', 'bits/weight', 'memory (KiB)'], rows)}</div>`,
  );
}

/** A fit record: measured beside fitted mean curves per polarity, the quality, the warnings. */
function fitSection(inp: ReportInputs): string {
  if (!inp.fit.ok) return section('fit', 'Device fit', note(inp.fit.note));
  const f: FitRecord = inp.fit.value;
  const q = f.quality;
  const qual = (pol: 'set' | 'reset'): string | null => {
    const o = q && isObj(q[pol]) ? q[pol] : null;
    if (!o) return null;
    const n = (k: string) => (typeof o[k] === 'number' && Number.isFinite(o[k] as number) ? formatValue(o[k] as number, 3) : '-');
    return `steps R² ${n('r2')} (a lookup table: ${n('r2Lookup')}), RMS ${n('rmsUS')} µS; mean curve RMS ${n('meanCurveRms')} of the window`;
  };
  const head = facts([
    ['measured data', f.data],
    ['readings', f.readings !== null ? `${f.readings} of ${f.devices ?? '?'} device(s)` : null],
    ['model', f.model],
    ['device written', f.device],
    ['extends', typeof f.extends === 'string' ? f.extends : null],
    ['SET', qual('set')],
    ['RESET', qual('reset')],
    ['record', inp.fit.file],
  ]);
  const chart = (pol: 'set' | 'reset', c: FitCurves): string =>
    figure(
      lineChart({
        title: `${pol.toUpperCase()} trains: measured and fitted mean conductance`,
        xLabel: `${pol.toUpperCase()} pulses`,
        yLabel: 'mean conductance (µS)',
        series: [
          { label: 'measured', points: c.pulses.map((x, i) => ({ x, y: c.measured[i] })), color: PALETTE[0], markers: c.pulses.length <= 60 },
          { label: `fitted (${f.model}, simulated)`, points: c.pulses.map((x, i) => ({ x, y: c.fitted[i] })), color: PALETTE[1], dashed: true },
        ],
        cls: 'fit-curve',
      }),
      `The mean over the measured ${pol.toUpperCase()} trains of the conductance after k pulses (${c.count[0] ?? 0} trains), beside the mean of the same trains simulated on the fitted device.`,
    );
  const figs: string[] = [];
  for (const pol of ['set', 'reset'] as const) {
    const c = f.curves[pol];
    if (c.pulses.length) figs.push(chart(pol, c));
  }
  return section('fit', 'Device fit: measured beside fitted', head + (figs.length ? plots(figs) : note('The record holds no mean curves.')) + f.warnings.map((w) => note(`warning: ${w}`)).join(''));
}

/**
 * The learning curves of inp.runs: one run (DIR's own) after the in-situ section; several
 * (--compare) first on the page, after the header.
 */
function addCurves(inp: ReportInputs, body: string[], nav: [string, string][]): void {
  const runs = inp.runs ?? [];
  if (runs.length === 0) return;
  const at = runs.length > 1 ? 0 : body.length;
  body.splice(at, 0, insituCurvesSection(runs));
  const after = nav.findIndex(([id]) => id === 'insitu');
  nav.splice(runs.length > 1 ? 0 : after >= 0 ? after + 1 : nav.length, 0, ['curves', runs.length > 1 ? 'learning curves compared' : 'learning curves']);
}

/** The report page of any run folder (the sections that apply to its kind). */
export function renderReport(inp: ReportInputs, opts: PageOptions = {}): string {
  const s = inp.summary;
  const sub = `memristor-tfjs report of ${inp.dir}`;
  if (inp.kind === 'fit') {
    const f = inp.fit.ok ? inp.fit.value : null;
    return page(`Device fit: ${f?.model ?? 'model'} to ${f?.data ? f.data.split(/[\\/]/).pop() : 'measured data'}`, sub, [['fit', 'fit']], fitSection(inp), opts, inp.warnings);
  }
  if (inp.kind === 'train') {
    const t = inp.training.ok ? inp.training.value : null;
    const title = `Training: ${t?.model ?? 'model'}${t?.dataset ? ` on ${t.dataset}` : ''}`;
    return page(title, `Test accuracy ${pct(t?.testAccuracy)} (${sub})`, [['training', 'training'], ['parameters', 'parameters']], [trainingSection(inp), parametersSection(inp)].join('\n'), opts, inp.warnings);
  }
  if (inp.kind === 'crossbar' || inp.kind === 'insitu') {
    const insitu = inp.kind === 'insitu';
    const here = insitu ? inp.insituCrossbar : inp.crossbar;
    const view = here.ok ? here.value : null;
    const log = insitu && inp.insitu.ok ? inp.insitu.value : null;
    const device = view?.manifest.device.name ?? 'device';
    const title = insitu ? `In-situ training: ${log?.layer ?? 'layer'} on ${device}` : `Crossbar: ${view && isObj(view.manifest.network) && typeof view.manifest.network.modelName === 'string' ? view.manifest.network.modelName : 'network'} on ${device}`;
    const energy = { energy: inp.energy ?? null };
    const body: string[] = [view ? crossbarFactsSection(inp, view, log) : ''];
    const nav: [string, string][] = [['run', insitu ? 'run' : 'crossbar']];
    if (insitu) {
      body.push(insituSection(inp, { software: null, transferred: log?.before ?? null }));
      nav.push(['insitu', 'in-situ training']);
      addCurves(inp, body, nav);
      body.push(conductanceSection(inp, here, 'Conductances after in-situ training'));
      nav.push(['conductance', 'conductances']);
    } else {
      // the programming report of this folder's own manifest
      body.push(programmingSection({ programming: [] }, inp, 'manifest.json'), conductanceSection(inp, here, 'Conductances programmed'));
      nav.push(['programming', 'programming'], ['conductance', 'conductances']);
    }
    body.push(energySection(energy, inp));
    nav.push(['energy', 'energy']);
    const subtitle = log ? `Test accuracy before in-situ ${pct(log.before)} → after ${pct(log.after)} (${sub})` : sub;
    return page(title, subtitle, nav, body.join('\n'), opts, inp.warnings);
  }
  if (!s) {
    const sw = inp.sweep.ok ? inp.sweep.value : null;
    const title = `Sweep: ${sw?.model ?? 'model'} on ${sw?.device ?? 'device'}`;
    return page(title, sub, [['sweep', 'sweep']], sweepSection(inp), opts, inp.warnings);
  }
  const title = `Hybrid run: ${s.model} on ${s.device}`;
  const subtitle =
    `Software ${pct(s.softwareAccuracy)} → after transfer ${pct(s.transferredAccuracy)} → after in-situ ${pct(s.insituAccuracy)}` +
    (s.dataset ? ` (${s.dataset})` : '');
  const nav: [string, string][] = [
    ['run', 'run'],
    ['accuracy', 'accuracy'],
    ['programming', 'programming'],
    ['sweep', 'sweep'],
    ['conductance', 'conductances'],
    ['insitu', 'in-situ training'],
    ['energy', 'energy'],
  ];
  const body = [runSection(s, inp), accuracySection(s), programmingSection(s, inp), sweepSection(inp), conductanceSection(inp), insituSection(inp, { software: s.softwareAccuracy, transferred: s.transferredAccuracy })];
  addCurves(inp, body, nav);
  body.push(energySection(s, inp));
  return page(title, subtitle, nav, body.join('\n'), opts, inp.warnings);
}

// ---------------------------------------------------------------------------------------------
// Pages of other results (`reproduce`): the same page, style and self-check as the report

/** One section of a page made by renderSectionsPage: its anchor, heading and HTML body. */
export interface PageSection {
  id: string;
  title: string;
  html: string;
}

/** Building blocks for such sections: an HTML table (numbers right-aligned), a note, a row of figures. */
export const pageParts = { table, note, plots, figure, facts };

/** A self-contained page (the report's CSS and self-check) of the given sections, with a nav bar. */
export function renderSectionsPage(title: string, subtitle: string, sections: readonly PageSection[], opts: PageOptions = {}, warnings: string[] = []): string {
  return page(
    title,
    subtitle,
    sections.map((s) => [s.id, s.title] as [string, string]),
    sections.map((s) => section(s.id, s.title, s.html)).join('\n'),
    opts,
    warnings,
  );
}
