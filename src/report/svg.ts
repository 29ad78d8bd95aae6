// Small plotting primitives that return inline SVG markup (strings): nice axis ticks, linear and
// log scales, colour maps, a line chart with error bars, an overlaid histogram, a heatmap with a
// colour-scale legend (cells as <rect>s when few, else one <image> holding a PNG data: URL encoded
// here), a horizontal bar chart and a horizontal stacked bar chart. No dependencies and nothing fetched: every chart is one
// self-contained <svg> element for an HTML page (no xmlns needed inline in HTML; the markup is
// also well-formed XML). Text uses the page's font (CSS), sizes are in CSS pixels.
import * as zlib from 'zlib';

// ---------------------------------------------------------------------------------------------
// Text

/** Escapes text for XML/HTML element content and attribute values. */
export function esc(s: unknown): string {
  return String(s).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

/** Rough width of a label in px (for layout only: no font metrics without a browser). */
export function textWidth(s: string, fontSize = 11): number {
  return s.length * fontSize * 0.58;
}

/** Fixed-point number for SVG coordinates (two decimals, no '-0'). */
function n2(x: number): string {
  const r = Math.round(x * 100) / 100;
  return String(r === 0 ? 0 : r);
}

// ---------------------------------------------------------------------------------------------
// Ticks and scales

/** A "nice" number near x (1, 2 or 5 times a power of ten): rounded, or the next one up (Heckbert). */
export function niceNumber(x: number, round: boolean): number {
  if (!(x > 0) || !Number.isFinite(x)) throw new RangeError(`niceNumber needs a finite x > 0, got ${x}`);
  const e = Math.floor(Math.log10(x));
  const f = x / 10 ** e;
  let nf: number;
  if (round) nf = f < 1.5 ? 1 : f < 3 ? 2 : f < 7 ? 5 : 10;
  else nf = f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10;
  return nf * 10 ** e;
}

export interface Ticks {
  /** The axis range: tick-aligned, covering the data. */
  lo: number;
  hi: number;
  /** Spacing of linear ticks (0 for log ticks). */
  step: number;
  /** Tick positions, ascending. */
  values: number[];
}

/** Decimals that show a multiple of `step` exactly (0 for step >= 1). */
export function stepDecimals(step: number): number {
  if (!(step > 0)) return 0;
  return Math.max(0, Math.min(12, -Math.floor(Math.log10(step) + 1e-9)));
}

/**
 * Linear ticks at a nice step (1, 2, 5 x 10^k) covering [min, max] with about `maxTicks` ticks.
 * A zero-width range is widened (by 10% of |min|, or 1 around 0).
 */
export function niceTicks(min: number, max: number, maxTicks = 6): Ticks {
  if (!Number.isFinite(min) || !Number.isFinite(max)) throw new RangeError(`niceTicks needs finite bounds, got ${min}, ${max}`);
  if (min > max) [min, max] = [max, min];
  if (min === max) {
    const d = min === 0 ? 1 : Math.abs(min) * 0.1;
    min -= d;
    max += d;
  }
  const n = Math.max(2, Math.floor(maxTicks));
  const range = niceNumber(max - min, false);
  const step = niceNumber(range / (n - 1), true);
  const lo = Math.floor(min / step + 1e-9) * step;
  const hi = Math.ceil(max / step - 1e-9) * step;
  const dec = stepDecimals(step);
  const values: number[] = [];
  const count = Math.round((hi - lo) / step);
  for (let i = 0; i <= count; i++) values.push(Number((lo + i * step).toFixed(dec)));
  return { lo: values[0], hi: values[values.length - 1], step, values };
}

/** Log ticks: every power of ten spanning [min, max] (min > 0), with 2 and 5 between when it spans few decades. */
export function logTicks(min: number, max: number): Ticks {
  if (!(min > 0) || !(max > 0) || !Number.isFinite(min) || !Number.isFinite(max)) throw new RangeError(`logTicks needs finite bounds > 0, got ${min}, ${max}`);
  if (min > max) [min, max] = [max, min];
  const e0 = Math.floor(Math.log10(min) + 1e-9);
  let e1 = Math.ceil(Math.log10(max) - 1e-9);
  if (e1 === e0) e1 = e0 + 1;
  const few = e1 - e0 <= 2;
  const values: number[] = [];
  for (let e = e0; e <= e1; e++) {
    const p = 10 ** e;
    values.push(Number(p.toPrecision(12)));
    if (few && e < e1) values.push(Number((2 * p).toPrecision(12)), Number((5 * p).toPrecision(12)));
  }
  return { lo: values[0], hi: values[values.length - 1], step: 0, values };
}

/** A short label for a tick value: fixed decimals from the step, exponent form for very large or small values. */
export function formatTick(v: number, step = 0): string {
  if (v === 0) return '0';
  const a = Math.abs(v);
  if (a >= 1e6 || a < 1e-4) return Number(v.toPrecision(3)).toExponential().replace('e+', 'e');
  if (step > 0) return v.toFixed(stepDecimals(step));
  return String(Number(v.toPrecision(6)));
}

/** A short human number: 3 significant digits, thousands kept whole (1234 -> '1234', 0.012345 -> '0.0123'). */
export function formatValue(v: number | null | undefined, digits = 3): string {
  if (v === null || v === undefined || !Number.isFinite(v)) return '-';
  if (v === 0) return '0';
  const a = Math.abs(v);
  if (a >= 1e7 || a < 1e-4) return v.toExponential(digits - 1).replace('e+', 'e');
  if (a >= 10 ** digits) return String(Math.round(v));
  return String(Number(v.toPrecision(digits)));
}

export interface Scale {
  (v: number): number;
  readonly type: 'linear' | 'log';
  readonly domain: readonly [number, number];
  readonly range: readonly [number, number];
  invert(p: number): number;
}

/** Maps [d0, d1] linearly onto [r0, r1] (r0 > r1 for a y axis). */
export function linearScale(d0: number, d1: number, r0: number, r1: number): Scale {
  const k = d1 === d0 ? 0 : (r1 - r0) / (d1 - d0);
  const f = ((v: number) => r0 + (v - d0) * k) as Scale;
  return Object.assign(f, {
    type: 'linear' as const,
    domain: [d0, d1] as const,
    range: [r0, r1] as const,
    invert: (p: number) => (k === 0 ? d0 : d0 + (p - r0) / k),
  });
}

/** Maps [d0, d1] (both > 0) onto [r0, r1] on a log axis. */
export function logScale(d0: number, d1: number, r0: number, r1: number): Scale {
  if (!(d0 > 0 && d1 > 0)) throw new RangeError(`a log scale needs a domain > 0, got ${d0}, ${d1}`);
  const l0 = Math.log10(d0);
  const l1 = Math.log10(d1);
  const k = l1 === l0 ? 0 : (r1 - r0) / (l1 - l0);
  const f = ((v: number) => r0 + (Math.log10(v) - l0) * k) as Scale;
  return Object.assign(f, {
    type: 'log' as const,
    domain: [d0, d1] as const,
    range: [r0, r1] as const,
    invert: (p: number) => 10 ** (k === 0 ? l0 : l0 + (p - r0) / k),
  });
}

// ---------------------------------------------------------------------------------------------
// Colours

export type Rgb = [number, number, number];

function hexRgb(h: string): Rgb {
  return [parseInt(h.slice(1, 3), 16), parseInt(h.slice(3, 5), 16), parseInt(h.slice(5, 7), 16)];
}

/** Control points of the colour maps (even spacing over [0, 1]). */
export const COLORMAPS = {
  /** matplotlib's viridis (sequential, perceptually uniform, colour-blind safe). */
  viridis: ['#440154', '#482878', '#3e4989', '#31688e', '#26828e', '#1f9e89', '#35b779', '#6ece58', '#b5de2b', '#fde725'].map(hexRgb),
  /** ColorBrewer RdBu reversed: blue (negative), white (0), red (positive). */
  diverging: ['#2166ac', '#4393c3', '#92c5de', '#d1e5f0', '#f7f7f7', '#fddbc7', '#f4a582', '#d6604d', '#b2182b'].map(hexRgb),
} as const;
export type ColormapName = keyof typeof COLORMAPS;

/** The colour at t in [0, 1] (clamped; NaN -> grey) of a colour map. */
export function colorAt(t: number, map: ColormapName = 'viridis'): Rgb {
  if (Number.isNaN(t)) return [170, 170, 170];
  const pts = COLORMAPS[map];
  const x = Math.min(1, Math.max(0, t)) * (pts.length - 1);
  const i = Math.min(pts.length - 2, Math.floor(x));
  const f = x - i;
  const a = pts[i];
  const b = pts[i + 1];
  return [0, 1, 2].map((c) => Math.round(a[c] + (b[c] - a[c]) * f)) as Rgb;
}

export function rgbHex([r, g, b]: Rgb): string {
  return '#' + [r, g, b].map((v) => v.toString(16).padStart(2, '0')).join('');
}

/** A qualitative palette for series (Okabe-Ito, colour-blind safe). */
export const PALETTE = ['#0072b2', '#d55e00', '#009e73', '#cc79a7', '#e69f00', '#56b4e9', '#000000', '#f0e442'];

// ---------------------------------------------------------------------------------------------
// PNG (for large heatmaps)

let crcTable: Uint32Array | null = null;

/** CRC-32 (IEEE, as PNG and zlib use). */
export function crc32(bytes: Uint8Array, crc = 0): number {
  if (!crcTable) {
    crcTable = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      crcTable[n] = c >>> 0;
    }
  }
  let c = ~crc >>> 0;
  for (let i = 0; i < bytes.length; i++) c = crcTable[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
  return ~c >>> 0;
}

function chunk(type: string, data: Uint8Array): Buffer {
  const out = Buffer.alloc(12 + data.length);
  out.writeUInt32BE(data.length, 0);
  out.write(type, 4, 'ascii');
  Buffer.from(data.buffer, data.byteOffset, data.length).copy(out, 8);
  out.writeUInt32BE(crc32(out.subarray(4, 8 + data.length)), 8 + data.length);
  return out;
}

/**
 * An 8-bit indexed-colour PNG: `pixels` holds width x height palette indices (row-major, top row
 * first), `palette` up to 256 colours. Rows are stored unfiltered and deflated with Node's zlib.
 */
export function encodeIndexedPng(width: number, height: number, pixels: Uint8Array, palette: readonly Rgb[]): Buffer {
  if (!(Number.isInteger(width) && width > 0 && Number.isInteger(height) && height > 0)) throw new RangeError(`bad PNG size ${width}x${height}`);
  if (pixels.length !== width * height) throw new RangeError(`PNG needs ${width * height} pixels, got ${pixels.length}`);
  if (palette.length < 1 || palette.length > 256) throw new RangeError(`a PNG palette holds 1..256 colours, got ${palette.length}`);
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 3; // colour type: indexed
  ihdr[10] = 0; // deflate
  ihdr[11] = 0; // adaptive filtering (filter type per row)
  ihdr[12] = 0; // no interlace
  const plte = new Uint8Array(palette.length * 3);
  palette.forEach((c, i) => plte.set(c, 3 * i));
  const raw = new Uint8Array(height * (width + 1));
  for (let y = 0; y < height; y++) {
    raw[y * (width + 1)] = 0; // filter: none
    raw.set(pixels.subarray(y * width, (y + 1) * width), y * (width + 1) + 1);
  }
  const idat = zlib.deflateSync(raw, { level: 9 });
  const sig = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  return Buffer.concat([sig, chunk('IHDR', ihdr), chunk('PLTE', plte), chunk('IDAT', idat), chunk('IEND', new Uint8Array(0))]);
}

// ---------------------------------------------------------------------------------------------
// Histogram bins

export interface Bins {
  /** bins + 1 edges from lo to hi. */
  edges: number[];
  counts: number[];
  /** Finite values below lo / above hi (not in any bin), and non-finite values. */
  below: number;
  above: number;
  nonFinite: number;
}

/** Counts values in `bins` equal bins over [lo, hi]: bin i is [edge i, edge i+1), the last one closed. */
export function binCounts(values: ArrayLike<number>, lo: number, hi: number, bins: number): Bins {
  if (!(Number.isInteger(bins) && bins >= 1)) throw new RangeError(`bins must be an integer >= 1, got ${bins}`);
  if (!(Number.isFinite(lo) && Number.isFinite(hi) && hi > lo)) throw new RangeError(`bin range must be finite with hi > lo, got ${lo}..${hi}`);
  const counts = new Array<number>(bins).fill(0);
  const w = (hi - lo) / bins;
  let below = 0;
  let above = 0;
  let nonFinite = 0;
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (!Number.isFinite(v)) nonFinite++;
    else if (v < lo) below++;
    else if (v > hi) above++;
    else counts[Math.min(bins - 1, Math.floor((v - lo) / w))]++;
  }
  const edges = Array.from({ length: bins + 1 }, (_, i) => (i === bins ? hi : lo + i * w));
  return { edges, counts, below, above, nonFinite };
}

/** Min and max of the finite values (null when there is none). */
export function extent(values: ArrayLike<number>): [number, number] | null {
  let lo = Infinity;
  let hi = -Infinity;
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (!Number.isFinite(v)) continue;
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  return lo <= hi ? [lo, hi] : null;
}

// ---------------------------------------------------------------------------------------------
// Frame: the svg element, title, axes

export interface AxisSpec {
  label: string;
  ticks: Ticks;
  scale: Scale;
  /** Labels for the tick values instead of numbers (categorical axes). */
  tickLabels?: string[];
}

interface Box {
  left: number;
  top: number;
  width: number;
  height: number;
}

const FONT = 11;
const AXIS_COLOR = '#444';
const GRID_COLOR = '#e3e3e3';

function svgOpen(width: number, height: number, title: string, cls: string): string {
  return (
    `<svg class="plot ${cls}" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" role="img" aria-label="${esc(title)}" font-size="${FONT}">` +
    `<title>${esc(title)}</title>` +
    `<rect x="0" y="0" width="${width}" height="${height}" fill="#fff"/>` +
    `<text x="${width / 2}" y="16" text-anchor="middle" font-size="13" font-weight="600">${esc(title)}</text>`
  );
}

function xAxis(box: Box, ax: AxisSpec, grid: boolean): string {
  const y0 = box.top + box.height;
  const parts: string[] = [`<g class="x-axis" fill="${AXIS_COLOR}">`, `<line x1="${n2(box.left)}" y1="${n2(y0)}" x2="${n2(box.left + box.width)}" y2="${n2(y0)}" stroke="${AXIS_COLOR}"/>`];
  ax.ticks.values.forEach((v, i) => {
    const x = ax.scale(v);
    if (grid) parts.push(`<line x1="${n2(x)}" y1="${n2(box.top)}" x2="${n2(x)}" y2="${n2(y0)}" stroke="${GRID_COLOR}"/>`);
    parts.push(`<line x1="${n2(x)}" y1="${n2(y0)}" x2="${n2(x)}" y2="${n2(y0 + 4)}" stroke="${AXIS_COLOR}"/>`);
    const label = ax.tickLabels?.[i] ?? formatTick(v, ax.ticks.step);
    parts.push(`<text x="${n2(x)}" y="${n2(y0 + 15)}" text-anchor="middle">${esc(label)}</text>`);
  });
  parts.push(`<text class="axis-label" x="${n2(box.left + box.width / 2)}" y="${n2(y0 + 32)}" text-anchor="middle" fill="#222">${esc(ax.label)}</text>`, '</g>');
  return parts.join('');
}

function yAxis(box: Box, ax: AxisSpec, grid: boolean, side: 'left' | 'right' = 'left'): string {
  const x0 = side === 'left' ? box.left : box.left + box.width;
  const d = side === 'left' ? -1 : 1;
  const parts: string[] = [`<g class="y-axis" fill="${AXIS_COLOR}">`, `<line x1="${n2(x0)}" y1="${n2(box.top)}" x2="${n2(x0)}" y2="${n2(box.top + box.height)}" stroke="${AXIS_COLOR}"/>`];
  let widest = 0;
  ax.ticks.values.forEach((v, i) => {
    const y = ax.scale(v);
    if (grid) parts.push(`<line x1="${n2(box.left)}" y1="${n2(y)}" x2="${n2(box.left + box.width)}" y2="${n2(y)}" stroke="${GRID_COLOR}"/>`);
    parts.push(`<line x1="${n2(x0)}" y1="${n2(y)}" x2="${n2(x0 + 4 * d)}" y2="${n2(y)}" stroke="${AXIS_COLOR}"/>`);
    const label = ax.tickLabels?.[i] ?? formatTick(v, ax.ticks.step);
    widest = Math.max(widest, textWidth(label));
    parts.push(`<text x="${n2(x0 + 7 * d)}" y="${n2(y + 4)}" text-anchor="${side === 'left' ? 'end' : 'start'}">${esc(label)}</text>`);
  });
  const lx = x0 + d * (widest + 16);
  const ly = box.top + box.height / 2;
  parts.push(`<text class="axis-label" x="${n2(lx)}" y="${n2(ly)}" text-anchor="middle" fill="#222" transform="rotate(-90 ${n2(lx)} ${n2(ly)})">${esc(ax.label)}</text>`, '</g>');
  return parts.join('');
}

/** Axis ticks for the values: log when asked and all > 0, else linear (with optional fixed bounds). */
function axisTicks(lo: number, hi: number, log: boolean, maxTicks: number): Ticks {
  return log ? logTicks(lo, hi) : niceTicks(lo, hi, maxTicks);
}

/** Legend entries laid out in rows under the title; returns the markup and its height. */
function legend(
  items: { label: string; color: string; dash?: boolean; fill?: boolean; solid?: boolean; marker?: boolean }[],
  x0: number,
  y0: number,
  maxWidth: number,
): { svg: string; height: number } {
  if (items.length === 0) return { svg: '', height: 0 };
  const parts: string[] = ['<g class="legend">'];
  let x = x0;
  let y = y0;
  for (const it of items) {
    const w = 26 + textWidth(it.label) + 14;
    if (x > x0 && x + w > x0 + maxWidth) {
      x = x0;
      y += 16;
    }
    if (it.solid) parts.push(`<rect x="${n2(x)}" y="${n2(y - 5)}" width="18" height="10" fill="${it.color}"/>`);
    else if (it.fill) parts.push(`<rect x="${n2(x)}" y="${n2(y - 5)}" width="18" height="10" fill="${it.color}" fill-opacity="0.35" stroke="${it.color}"/>`);
    else {
      parts.push(`<line x1="${n2(x)}" y1="${n2(y)}" x2="${n2(x + 18)}" y2="${n2(y)}" stroke="${it.color}" stroke-width="2"${it.dash ? ' stroke-dasharray="5 3"' : ''}/>`);
      if (it.marker) parts.push(`<circle cx="${n2(x + 9)}" cy="${n2(y)}" r="3" fill="${it.color}"/>`);
    }
    parts.push(`<text x="${n2(x + 23)}" y="${n2(y + 4)}">${esc(it.label)}</text>`);
    x += w;
  }
  parts.push('</g>');
  return { svg: parts.join(''), height: y - y0 + 16 };
}

function legendHeight(labels: string[], maxWidth: number): number {
  if (labels.length === 0) return 0;
  let x = 0;
  let rows = 1;
  for (const l of labels) {
    const w = 26 + textWidth(l) + 14;
    if (x > 0 && x + w > maxWidth) {
      rows++;
      x = 0;
    }
    x += w;
  }
  return rows * 16;
}

// ---------------------------------------------------------------------------------------------
// Line chart

export interface LinePoint {
  x: number;
  y: number;
  /** Error bar half-width (e.g. the standard deviation): drawn from y - err to y + err. */
  err?: number;
}

export interface LineSeries {
  label: string;
  points: LinePoint[];
  color?: string;
  dashed?: boolean;
  /** Draw a dot at each point (default: when there are <= 40 points). */
  markers?: boolean;
  /** Leave out the connecting line (markers only). */
  noLine?: boolean;
}

export interface LineChartOptions {
  title: string;
  xLabel: string;
  yLabel: string;
  series: LineSeries[];
  /** Horizontal reference lines (e.g. the software accuracy). */
  hLines?: { y: number; label: string; color?: string }[];
  width?: number;
  height?: number;
  /** Fixed y bounds (default: the data's, with error bars and reference lines). */
  yMin?: number;
  yMax?: number;
  xLog?: boolean;
  /** Categorical x: the points' x are indices 0..n-1 into these labels. */
  xCategories?: string[];
  cls?: string;
}

/** A line chart with optional error bars, reference lines and a legend; one <svg>. */
export function lineChart(o: LineChartOptions): string {
  const width = o.width ?? 520;
  const all = o.series.flatMap((s) => s.points).filter((p) => Number.isFinite(p.x) && Number.isFinite(p.y));
  const legendItems = o.series.map((s, i) => ({
    label: s.label,
    color: s.color ?? PALETTE[i % PALETTE.length],
    dash: s.dashed,
    marker: s.markers ?? s.points.length <= 40,
  }));
  for (const h of o.hLines ?? []) legendItems.push({ label: h.label, color: h.color ?? '#888', dash: true, marker: false });
  const lh = legendHeight(legendItems.map((l) => l.label), width - 70);
  // a long legend makes the chart taller rather than the plot smaller
  const height = (o.height ?? 320) + Math.max(0, lh - 32);
  const parts: string[] = [svgOpen(width, height, o.title, o.cls ?? 'line-chart')];
  if (all.length === 0) {
    parts.push(`<text x="${width / 2}" y="${height / 2}" text-anchor="middle" fill="#777">no data</text></svg>`);
    return parts.join('');
  }
  // y bounds
  let yLo = Infinity;
  let yHi = -Infinity;
  for (const p of all) {
    const e = p.err && Number.isFinite(p.err) ? Math.abs(p.err) : 0;
    yLo = Math.min(yLo, p.y - e);
    yHi = Math.max(yHi, p.y + e);
  }
  for (const h of o.hLines ?? []) {
    if (!Number.isFinite(h.y)) continue;
    yLo = Math.min(yLo, h.y);
    yHi = Math.max(yHi, h.y);
  }
  if (o.yMin !== undefined) yLo = o.yMin;
  if (o.yMax !== undefined) yHi = o.yMax;
  const yt = niceTicks(yLo, yHi, 6);
  // x bounds
  let xt: Ticks;
  let tickLabels: string[] | undefined;
  const xs = all.map((p) => p.x);
  const xLog = !!o.xLog && !o.xCategories && xs.every((x) => x > 0);
  if (o.xCategories) {
    const n = o.xCategories.length;
    xt = { lo: -0.5, hi: n - 0.5, step: 1, values: o.xCategories.map((_, i) => i) };
    tickLabels = o.xCategories;
  } else {
    xt = axisTicks(Math.min(...xs), Math.max(...xs), xLog, 7);
  }
  const yTickW = Math.max(...yt.values.map((v) => textWidth(formatTick(v, yt.step))));
  const box: Box = { left: 30 + yTickW, top: 26 + lh, width: 0, height: 0 };
  const lastX = tickLabels ? tickLabels[tickLabels.length - 1] : formatTick(xt.values[xt.values.length - 1], xt.step);
  box.width = width - box.left - Math.max(16, textWidth(lastX) / 2 + 6);
  box.height = height - box.top - 44;
  const xs_ = xLog ? logScale(xt.lo, xt.hi, box.left, box.left + box.width) : linearScale(xt.lo, xt.hi, box.left, box.left + box.width);
  const ys = linearScale(yt.lo, yt.hi, box.top + box.height, box.top);
  parts.push(yAxis(box, { label: o.yLabel, ticks: yt, scale: ys }, true));
  parts.push(xAxis(box, { label: o.xLabel, ticks: xt, scale: xs_, tickLabels }, false));
  parts.push(legend(legendItems, box.left, 32, width - box.left - 10).svg);
  for (const h of o.hLines ?? []) {
    if (!Number.isFinite(h.y)) continue;
    const y = ys(h.y);
    parts.push(`<line class="ref-line" x1="${n2(box.left)}" y1="${n2(y)}" x2="${n2(box.left + box.width)}" y2="${n2(y)}" stroke="${h.color ?? '#888'}" stroke-dasharray="5 3"/>`);
  }
  o.series.forEach((s, i) => {
    const color = s.color ?? PALETTE[i % PALETTE.length];
    const pts = s.points.filter((p) => Number.isFinite(p.x) && Number.isFinite(p.y) && (!xLog || p.x > 0)).sort((a, b) => a.x - b.x);
    const g: string[] = [`<g class="series" data-label="${esc(s.label)}">`];
    if (!s.noLine && pts.length > 1) {
      const d = pts.map((p, k) => `${k === 0 ? 'M' : 'L'}${n2(xs_(p.x))} ${n2(ys(p.y))}`).join('');
      g.push(`<path d="${d}" fill="none" stroke="${color}" stroke-width="2"${s.dashed ? ' stroke-dasharray="6 4"' : ''}/>`);
    }
    for (const p of pts) {
      if (p.err && Number.isFinite(p.err) && p.err > 0) {
        const x = xs_(p.x);
        const a = ys(p.y - Math.abs(p.err));
        const b = ys(p.y + Math.abs(p.err));
        g.push(`<path class="error-bar" d="M${n2(x)} ${n2(a)}L${n2(x)} ${n2(b)}M${n2(x - 4)} ${n2(a)}L${n2(x + 4)} ${n2(a)}M${n2(x - 4)} ${n2(b)}L${n2(x + 4)} ${n2(b)}" stroke="${color}" stroke-width="1.3" fill="none"/>`);
      }
    }
    if (s.markers ?? pts.length <= 40) for (const p of pts) g.push(`<circle cx="${n2(xs_(p.x))}" cy="${n2(ys(p.y))}" r="3" fill="${color}"/>`);
    g.push('</g>');
    parts.push(g.join(''));
  });
  parts.push('</svg>');
  return parts.join('');
}

// ---------------------------------------------------------------------------------------------
// Histogram

export interface HistogramSeries {
  label: string;
  values: ArrayLike<number>;
  color?: string;
}

export interface HistogramOptions {
  title: string;
  xLabel: string;
  yLabel?: string;
  series: HistogramSeries[];
  bins?: number;
  /** Bin range (default: the extent of all series). */
  lo?: number;
  hi?: number;
  /** Integer data (pulse counts): bins of width >= 1 centred on whole numbers. */
  integer?: boolean;
  width?: number;
  height?: number;
  cls?: string;
}

/** Overlaid histograms of one or more series over the same bins (filled, translucent); one <svg>. */
export function histogramChart(o: HistogramOptions): string {
  const width = o.width ?? 520;
  const height = o.height ?? 300;
  const ext = o.series.map((s) => extent(s.values)).filter((e): e is [number, number] => e !== null);
  const items = o.series.map((s, i) => ({ label: s.label, color: s.color ?? PALETTE[i % PALETTE.length], fill: true }));
  const lh = legendHeight(items.map((l) => l.label), width - 70);
  const parts: string[] = [svgOpen(width, height, o.title, o.cls ?? 'histogram')];
  if (ext.length === 0) {
    parts.push(`<text x="${width / 2}" y="${height / 2}" text-anchor="middle" fill="#777">no data</text></svg>`);
    return parts.join('');
  }
  let lo = o.lo ?? Math.min(...ext.map((e) => e[0]));
  let hi = o.hi ?? Math.max(...ext.map((e) => e[1]));
  let bins = o.bins ?? 50;
  if (o.integer) {
    lo = Math.floor(lo) - 0.5;
    hi = Math.ceil(hi) + 0.5;
    const span = hi - lo;
    const w = Math.max(1, Math.ceil(span / bins));
    bins = Math.ceil(span / w);
    hi = lo + bins * w;
  } else if (hi <= lo) {
    const d = lo === 0 ? 0.5 : Math.abs(lo) * 0.05;
    lo -= d;
    hi += d;
  }
  const binned = o.series.map((s) => binCounts(s.values, lo, hi, bins));
  const maxCount = Math.max(1, ...binned.flatMap((b) => b.counts));
  const yt = niceTicks(0, maxCount, 5);
  // the x axis spans the bins exactly; its nice ticks are the ones inside
  const nt = niceTicks(lo, hi, 7);
  const eps = 1e-9 * (hi - lo);
  const xt: Ticks = { ...nt, lo, hi, values: nt.values.filter((v) => v >= lo - eps && v <= hi + eps) };
  const yTickW = Math.max(...yt.values.map((v) => textWidth(formatTick(v, yt.step))));
  const box: Box = { left: 30 + yTickW, top: 26 + lh, width: 0, height: 0 };
  const lastX = xt.values.length ? formatTick(xt.values[xt.values.length - 1], xt.step) : '';
  box.width = width - box.left - Math.max(16, textWidth(lastX) / 2 + 6);
  box.height = height - box.top - 44;
  const xs = linearScale(lo, hi, box.left, box.left + box.width);
  const ys = linearScale(0, yt.hi, box.top + box.height, box.top);
  parts.push(yAxis(box, { label: o.yLabel ?? 'count', ticks: yt, scale: ys }, true));
  parts.push(xAxis(box, { label: o.xLabel, ticks: xt, scale: xs }, false));
  parts.push(legend(items, box.left, 32, width - box.left - 10).svg);
  binned.forEach((b, i) => {
    const color = items[i].color;
    // one step outline per series: up and down at each bin edge
    let d = `M${n2(xs(b.edges[0]))} ${n2(ys(0))}`;
    for (let k = 0; k < b.counts.length; k++) {
      const y = ys(b.counts[k]);
      d += `L${n2(xs(b.edges[k]))} ${n2(y)}L${n2(xs(b.edges[k + 1]))} ${n2(y)}`;
    }
    d += `L${n2(xs(b.edges[b.edges.length - 1]))} ${n2(ys(0))}Z`;
    parts.push(`<path class="hist-series" data-label="${esc(o.series[i].label)}" data-counts="${b.counts.join(' ')}" d="${d}" fill="${color}" fill-opacity="0.35" stroke="${color}" stroke-width="1.2"/>`);
  });
  parts.push('</svg>');
  return parts.join('');
}

// ---------------------------------------------------------------------------------------------
// Heatmap

export interface HeatmapOptions {
  title: string;
  rows: number;
  cols: number;
  /** rows x cols values, row-major (NaN: grey). */
  data: ArrayLike<number>;
  /** Label of the colour scale, with units (e.g. 'G (uS)'). */
  valueLabel: string;
  xLabel?: string;
  yLabel?: string;
  colormap?: ColormapName;
  /** Colour-scale bounds (default: the data's extent; symmetric around 0 for 'diverging'). */
  lo?: number;
  hi?: number;
  /** Above this many cells the heatmap is one PNG <image> instead of <rect>s (default 1024). */
  maxRects?: number;
  /** Width of the cell area in px (default: 2 px per column, 160..400). */
  plotWidth?: number;
  cls?: string;
}

/** A heatmap of a rows x cols matrix (row 0 at the top) with a colour-scale legend; one <svg>. */
export function heatmap(o: HeatmapOptions): string {
  const { rows, cols } = o;
  if (!(rows >= 1 && cols >= 1) || o.data.length !== rows * cols) throw new RangeError(`heatmap: ${rows}x${cols} needs ${rows * cols} values, got ${o.data.length}`);
  const map = o.colormap ?? 'viridis';
  const ext = extent(o.data) ?? [0, 1];
  let lo = o.lo ?? ext[0];
  let hi = o.hi ?? ext[1];
  if (map === 'diverging' && o.lo === undefined && o.hi === undefined) {
    const m = Math.max(Math.abs(lo), Math.abs(hi));
    lo = -m;
    hi = m;
  }
  if (!(hi > lo)) {
    const d = lo === 0 ? 1 : Math.abs(lo) * 0.05;
    lo -= d;
    hi += d;
  }
  const pw = o.plotWidth ?? Math.min(400, Math.max(160, cols * 2));
  const cw = pw / cols;
  // cells about square, but the area 40..320 px high (a 9 x 128 array is a readable strip)
  const ph = Math.min(320, Math.max(40, rows * cw));
  const ch = ph / rows;
  const left = 54;
  const top = 30;
  const legendX = left + pw + 18;
  const lt = niceTicks(lo, hi, 5);
  const legendTickW = Math.max(...lt.values.map((v) => textWidth(formatTick(v, lt.step))));
  const width = Math.ceil(legendX + 14 + 8 + legendTickW + 24);
  const height = Math.ceil(top + ph + 48);
  const parts: string[] = [svgOpen(width, height, o.title, o.cls ?? 'heatmap')];
  const t = (v: number) => (v - lo) / (hi - lo);
  const useRects = rows * cols <= (o.maxRects ?? 1024);
  parts.push(`<g class="cells" data-rows="${rows}" data-cols="${cols}" data-mode="${useRects ? 'rect' : 'image'}">`);
  if (useRects) {
    for (let r = 0; r < rows; r++) {
      for (let c = 0; c < cols; c++) {
        const v = o.data[r * cols + c];
        // a hair wider than the cell: no anti-aliasing seams between neighbours
        parts.push(`<rect x="${n2(left + c * cw)}" y="${n2(top + r * ch)}" width="${n2(cw + 0.3)}" height="${n2(ch + 0.3)}" fill="${rgbHex(colorAt(t(v), map))}"/>`);
      }
    }
  } else {
    // palette: 255 colours for the values, index 255 for NaN
    const palette: Rgb[] = Array.from({ length: 255 }, (_, i) => colorAt(i / 254, map));
    palette.push(colorAt(NaN));
    const px = new Uint8Array(rows * cols);
    for (let i = 0; i < px.length; i++) {
      const v = o.data[i];
      px[i] = Number.isFinite(v) ? Math.round(Math.min(1, Math.max(0, t(v))) * 254) : 255;
    }
    const png = encodeIndexedPng(cols, rows, px, palette);
    parts.push(
      `<image x="${left}" y="${top}" width="${n2(pw)}" height="${n2(ph)}" preserveAspectRatio="none" style="image-rendering:pixelated" ` +
        `data-pixels="${cols}x${rows}" href="data:image/png;base64,${png.toString('base64')}"/>`,
    );
  }
  parts.push('</g>');
  parts.push(`<rect x="${left}" y="${top}" width="${n2(pw)}" height="${n2(ph)}" fill="none" stroke="${AXIS_COLOR}"/>`);
  // axes: first and last row / column, and a middle one
  const tickAt = (n: number) => Array.from(new Set([0, Math.floor((n - 1) / 2), n - 1]));
  const ax: string[] = [`<g class="axes" fill="${AXIS_COLOR}">`];
  for (const c of tickAt(cols)) ax.push(`<text x="${n2(left + (c + 0.5) * cw)}" y="${n2(top + ph + 13)}" text-anchor="middle">${c}</text>`);
  for (const r of tickAt(rows)) ax.push(`<text x="${left - 5}" y="${n2(top + (r + 0.5) * ch + 4)}" text-anchor="end">${r}</text>`);
  ax.push(`<text class="axis-label" x="${n2(left + pw / 2)}" y="${n2(top + ph + 30)}" text-anchor="middle" fill="#222">${esc(o.xLabel ?? 'column')}</text>`);
  const ly = top + ph / 2;
  ax.push(`<text class="axis-label" x="14" y="${n2(ly)}" text-anchor="middle" fill="#222" transform="rotate(-90 14 ${n2(ly)})">${esc(o.yLabel ?? 'row')}</text>`);
  ax.push('</g>');
  parts.push(ax.join(''));
  // colour-scale legend: a vertical bar of 32 steps, ticks and the value label
  const lh = Math.max(40, ph);
  const steps = 32;
  const lg: string[] = ['<g class="color-scale">'];
  for (let i = 0; i < steps; i++) {
    const y = top + lh - ((i + 1) * lh) / steps;
    lg.push(`<rect x="${legendX}" y="${n2(y)}" width="14" height="${n2(lh / steps + 0.3)}" fill="${rgbHex(colorAt((i + 0.5) / steps, map))}"/>`);
  }
  lg.push(`<rect x="${legendX}" y="${top}" width="14" height="${n2(lh)}" fill="none" stroke="${AXIS_COLOR}"/>`);
  const ls = linearScale(lo, hi, top + lh, top);
  for (const v of lt.values) {
    if (v < lo - 1e-12 * Math.abs(hi - lo) || v > hi + 1e-12 * Math.abs(hi - lo)) continue;
    const y = ls(v);
    lg.push(`<line x1="${legendX + 14}" y1="${n2(y)}" x2="${legendX + 18}" y2="${n2(y)}" stroke="${AXIS_COLOR}"/>`);
    lg.push(`<text x="${legendX + 21}" y="${n2(y + 4)}" fill="${AXIS_COLOR}">${esc(formatTick(v, lt.step))}</text>`);
  }
  const vx = width - 8;
  lg.push(`<text class="axis-label" x="${n2(vx)}" y="${n2(top + lh / 2)}" text-anchor="middle" fill="#222" transform="rotate(-90 ${n2(vx)} ${n2(top + lh / 2)})">${esc(o.valueLabel)}</text>`);
  lg.push('</g>');
  parts.push(lg.join(''));
  parts.push('</svg>');
  return parts.join('');
}

// ---------------------------------------------------------------------------------------------
// Bar chart

export interface BarChartOptions {
  title: string;
  /** Label of the value axis, with units. */
  valueLabel: string;
  bars: { label: string; value: number; color?: string }[];
  width?: number;
  /** Value-axis bounds (default 0 .. the largest value; negative values are drawn leftwards). */
  min?: number;
  max?: number;
  /** Text after each bar (default: the value, 3 significant digits). */
  format?: (v: number) => string;
  cls?: string;
}

/** A horizontal bar chart (labels at the left, values along x); one <svg>. */
export function barChart(o: BarChartOptions): string {
  const width = o.width ?? 520;
  const bars = o.bars.filter((b) => Number.isFinite(b.value));
  const barH = 20;
  const gap = 8;
  const labelW = Math.min(200, Math.max(40, ...bars.map((b) => textWidth(b.label) + 10)));
  const top = 30;
  const ph = Math.max(1, bars.length) * (barH + gap) + gap;
  const height = top + ph + 44;
  const parts: string[] = [svgOpen(width, height, o.title, o.cls ?? 'bar-chart')];
  if (bars.length === 0) {
    parts.push(`<text x="${width / 2}" y="${height / 2}" text-anchor="middle" fill="#777">no data</text></svg>`);
    return parts.join('');
  }
  const fmt = o.format ?? ((v: number) => formatValue(v));
  const lo = o.min ?? Math.min(0, ...bars.map((b) => b.value));
  const hi = o.max ?? Math.max(0, ...bars.map((b) => b.value));
  const xt = niceTicks(lo, hi === lo ? lo + 1 : hi, 6);
  const valueW = Math.max(...bars.map((b) => textWidth(fmt(b.value)))) + 8;
  const box: Box = { left: 8 + labelW, top, width: width - 8 - labelW - valueW - 10, height: ph };
  const xs = linearScale(xt.lo, xt.hi, box.left, box.left + box.width);
  parts.push(xAxis(box, { label: o.valueLabel, ticks: xt, scale: xs }, true));
  const zero = xs(Math.min(xt.hi, Math.max(xt.lo, 0)));
  bars.forEach((b, i) => {
    const y = top + gap + i * (barH + gap);
    const x1 = xs(b.value);
    const x = Math.min(zero, x1);
    const w = Math.abs(x1 - zero);
    const color = b.color ?? PALETTE[i % PALETTE.length];
    parts.push(
      `<g class="bar" data-label="${esc(b.label)}" data-value="${b.value}">` +
        `<text x="${n2(box.left - 6)}" y="${n2(y + barH / 2 + 4)}" text-anchor="end">${esc(b.label)}</text>` +
        `<rect x="${n2(x)}" y="${n2(y)}" width="${n2(Math.max(w, 0.5))}" height="${barH}" fill="${color}"/>` +
        `<text x="${n2(Math.max(x1, zero) + 4)}" y="${n2(y + barH / 2 + 4)}" fill="#222">${esc(fmt(b.value))}</text></g>`,
    );
  });
  parts.push(`<line x1="${n2(zero)}" y1="${top}" x2="${n2(zero)}" y2="${n2(top + ph)}" stroke="${AXIS_COLOR}"/>`);
  parts.push('</svg>');
  return parts.join('');
}

// ---------------------------------------------------------------------------------------------
// Stacked bar chart

export interface StackedBarChartOptions {
  title: string;
  /** Label of the value axis, with units. */
  valueLabel: string;
  /** One bar per category (e.g. per layer), top to bottom. */
  categories: string[];
  /** The parts of each bar (e.g. energy components): values[i] belongs to categories[i]. */
  series: { label: string; values: number[]; color?: string }[];
  width?: number;
  /** Text after each bar, and in each segment's tooltip (default: 3 significant digits). */
  format?: (v: number) => string;
  cls?: string;
}

/**
 * A horizontal stacked bar chart: one bar per category, its segments the series in order (left to
 * right), the bar's total after it, a legend of the series under the title; one <svg>. Values that
 * are not finite or are below 0 count as 0 (parts of a sum, as energies and times are). Each bar is
 * a <g class="stack" data-label data-total>, each segment a <rect class="segment" data-series
 * data-value> with a <title> tooltip.
 */
export function stackedBarChart(o: StackedBarChartOptions): string {
  const width = o.width ?? 560;
  const fmt = o.format ?? ((v: number) => formatValue(v));
  const clean = (v: number | undefined) => (v !== undefined && Number.isFinite(v) && v > 0 ? v : 0);
  const items = o.series.map((s, i) => ({ label: s.label, color: s.color ?? PALETTE[i % PALETTE.length], solid: true }));
  const lh = legendHeight(items.map((l) => l.label), width - 20);
  const barH = 20;
  const gap = 8;
  const labelW = Math.min(200, Math.max(40, ...o.categories.map((c) => textWidth(c) + 10)));
  const top = 28 + lh;
  const ph = Math.max(1, o.categories.length) * (barH + gap) + gap;
  const height = top + ph + 44;
  const parts: string[] = [svgOpen(width, height, o.title, o.cls ?? 'stacked-bar-chart')];
  const totals = o.categories.map((_, i) => o.series.reduce((a, s) => a + clean(s.values[i]), 0));
  if (o.categories.length === 0 || o.series.length === 0) {
    parts.push(`<text x="${width / 2}" y="${height / 2}" text-anchor="middle" fill="#777">no data</text></svg>`);
    return parts.join('');
  }
  const hi = Math.max(0, ...totals);
  const xt = niceTicks(0, hi > 0 ? hi : 1, 6);
  const valueW = Math.max(...totals.map((t) => textWidth(fmt(t)))) + 8;
  const box: Box = { left: 8 + labelW, top, width: width - 8 - labelW - valueW - 10, height: ph };
  const xs = linearScale(xt.lo, xt.hi, box.left, box.left + box.width);
  parts.push(xAxis(box, { label: o.valueLabel, ticks: xt, scale: xs }, true));
  parts.push(legend(items, 10, 34, width - 20).svg);
  o.categories.forEach((c, i) => {
    const y = top + gap + i * (barH + gap);
    const g: string[] = [`<g class="stack" data-label="${esc(c)}" data-total="${totals[i]}">`, `<text x="${n2(box.left - 6)}" y="${n2(y + barH / 2 + 4)}" text-anchor="end">${esc(c)}</text>`];
    let acc = 0;
    o.series.forEach((s, k) => {
      const v = clean(s.values[i]);
      const x0 = xs(acc);
      acc += v;
      const w = xs(acc) - x0;
      g.push(
        `<rect class="segment" data-series="${esc(s.label)}" data-value="${v}" x="${n2(x0)}" y="${n2(y)}" width="${n2(w)}" height="${barH}" fill="${items[k].color}">` +
          `<title>${esc(`${c}, ${s.label}: ${fmt(v)}`)}</title></rect>`,
      );
    });
    g.push(`<text x="${n2(xs(acc) + 4)}" y="${n2(y + barH / 2 + 4)}" fill="#222">${esc(fmt(totals[i]))}</text></g>`);
    parts.push(g.join(''));
  });
  parts.push(`<line x1="${n2(box.left)}" y1="${top}" x2="${n2(box.left)}" y2="${n2(top + ph)}" stroke="${AXIS_COLOR}"/>`);
  parts.push('</svg>');
  return parts.join('');
}
