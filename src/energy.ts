// Energy and latency estimate of one inference through a mapped network, from the operation
// counts of the crossbar inference (src/crossbar/inference.ts: layerCounts) and the device's
// energy and latency tables (src/device/config.ts: EnergyTable, LatencyTable), beside the
// network's operation count (ops = 2 x MACs of the mapped layers, from the model geometry).
//
// Energy (pJ per inference, per mapped layer) = the counts times the table:
//   cell reads   cellsRead         x cellReadPJ   (an upper estimate: every cell of every read is
//                                                  taken at the full read voltage; a 0 input bit or a
//                                                  small analog input draws less)
//   DAC          dacConversions    x dacPJ
//   ADC          adcConversions    x adcPJ        (none where a comparator neuron takes the current)
//   neurons      neuronEvaluations x neuronPJ
//   digital adds digitalAdds       x digitalAddPJ (shift-and-add, partial sums, offset, bias)
// Not counted: the digital layers (pooling, batch normalization, softmax), buffers, data movement,
// control and leakage. So this is the energy of the analog arrays and their periphery only.
//
// Latency model (ns per inference), stated as assumptions:
//  - the mapped layers run one after another (no pipelining between layers or samples);
//  - a layer's output positions are divided among its replicas (Yao et al.'s spatial parallelism;
//    conv output rows in bands, the largest band sets the time), and the arrays of one replica
//    (all its row and column tiles) are read at the same time;
//  - the positions of one replica are computed one after another; for each, its readsPerInput
//    reads (bit-serial: one per input bit) are sequential, each costing readNs (the DAC pulse is
//    inside the read) and then the ADC conversions of that read:
//      adcSharing 'array' (default): one ADC per array, multiplexed over its column (pair)
//        currents, so one read costs (outputs of the array) x adcNs;
//      adcSharing 'column': one ADC per column (pair), all converted at once: adcNs a read;
//  - then each output's digital additions (one adder per output, outputs in parallel, its
//    additions one after another: digitalAdds / neuronEvaluations of them) and one neuron
//    evaluation (one neuron per output, in parallel);
//  - no overlap between reads, conversions and additions (an upper estimate of the time).
// inferences/s = 1e9 / latency; GOPS = ops / latency(ns); TOPS/W = ops / energy(pJ).
import type { DeviceConfig, EnergyTable, LatencyTable } from './device/config';
import { ConfigError } from './errors';
import { layerCounts, type LayerCounts } from './crossbar/inference';
import type { CrossbarNetwork, MappedKind } from './crossbar/network';

/** How the column (pair) currents of an array share the ADCs (latency only; energy counts conversions). */
export type AdcSharing = 'array' | 'column';

export interface EnergyOptions {
  /** 'array' (default): one ADC per array, its columns converted one after another; 'column': one ADC per column (pair). */
  adcSharing?: AdcSharing;
}

/** Energy by component, picojoules. */
export interface EnergyBreakdown {
  cellReads: number;
  dac: number;
  adc: number;
  neurons: number;
  digitalAdds: number;
  total: number;
}

/** Time by component, nanoseconds (the components run one after another). */
export interface LatencyBreakdown {
  /** Array reads (readNs each, the DAC pulse included). */
  reads: number;
  /** ADC conversions that are not in parallel. */
  adc: number;
  neurons: number;
  digitalAdds: number;
  total: number;
}

/**
 * What the estimate needs of one mapped layer: its operation counts per inference (layerCounts)
 * and the parallelism the latency model uses.
 */
export interface LayerWork extends LayerCounts {
  kind: MappedKind;
  /** Rows (inputs) and outputs of the layer's weight matrix. */
  rows: number;
  outputs: number;
  replicas: number;
  /** Output positions the busiest replica computes (conv: its band of output rows x width; dense: 1). */
  positionsPerReplica: number;
  /** Most column (pair) currents one array converts per read (0 where no ADC is used). */
  adcPerArray: number;
}

export interface LayerEnergy {
  layer: string;
  kind: MappedKind;
  /** Multiply-accumulates per inference: rows x outputs x positions. */
  macs: number;
  /** 2 x macs. */
  ops: number;
  positions: number;
  replicas: number;
  positionsPerReplica: number;
  readsPerInput: number;
  energyPJ: EnergyBreakdown;
  latencyNs: LatencyBreakdown;
}

/** One-time cost of programming pulses (write-verify or in-situ updates). */
export interface ProgrammingCost {
  pulses: number;
  energyPJ: number;
  energyUJ: number;
  /** pulses x programmingPulseNs: one pulse at a time (cells programmed in parallel divide it). */
  latencyNs: number;
}

/** Energy and latency of one inference (one sample) through the mapped layers. */
export interface EnergyEstimate {
  device: string;
  adcSharing: AdcSharing;
  energyTable: EnergyTable;
  latencyTable: LatencyTable;
  layers: LayerEnergy[];
  /** Multiply-accumulates and operations (2 x MACs) per inference of the mapped layers. */
  macs: number;
  ops: number;
  energyPJ: EnergyBreakdown;
  latencyNs: LatencyBreakdown;
  energyPerInferenceNJ: number;
  energyPerInferenceUJ: number;
  /** 1e9 / latencyNs.total; null when the latency is 0. */
  inferencesPerSec: number | null;
  /** ops / energy: operations per second per watt, in tera (= ops / pJ); null when the energy is 0. */
  topsPerWatt: number | null;
  /** ops / latency, giga-operations per second (= ops / ns); null when the latency is 0. */
  gops: number | null;
  /** Programming the arrays of the mapping (the total write-verify pulses of its reports); null when not known. */
  programming: ProgrammingCost | null;
}

function zeroEnergy(): EnergyBreakdown {
  return { cellReads: 0, dac: 0, adc: 0, neurons: 0, digitalAdds: 0, total: 0 };
}
function zeroLatency(): LatencyBreakdown {
  return { reads: 0, adc: 0, neurons: 0, digitalAdds: 0, total: 0 };
}

/** Energy of `pulses` programming pulses: pulses x programmingPulsePJ, and pulses x programmingPulseNs. */
export function programmingEnergy(pulses: number, device: Pick<DeviceConfig, 'energy' | 'latency'>): ProgrammingCost {
  if (!(pulses >= 0) || !Number.isFinite(pulses)) throw new ConfigError('pulses', `must be a finite number >= 0, got ${String(pulses)}`);
  const energyPJ = pulses * device.energy.programmingPulsePJ;
  return { pulses, energyPJ, energyUJ: energyPJ * 1e-6, latencyNs: pulses * device.latency.programmingPulseNs };
}

/** The per-layer work of a mapped network: layerCounts plus the parallelism of its replicas and arrays. */
export function layerWork(net: CrossbarNetwork): LayerWork[] {
  const counts = layerCounts(net);
  const mapped = net.layers;
  return counts.map((c, i) => {
    const m = mapped[i];
    if (m.name !== c.layer) throw new Error(`layerWork: counts of '${c.layer}' beside mapped layer '${m.name}'`);
    let positionsPerReplica = c.positions;
    if (m.kind === 'conv2d' && m.replicas > 1) {
      const step = net.steps.find((s) => s.mapped === m)!;
      const shape = step.layer.outputShape as number[];
      const oh = shape[1];
      const ow = shape[2];
      positionsPerReplica = Math.ceil(oh / m.replicas) * ow; // bands of floor((r+1) oh / R) - floor(r oh / R) rows
    }
    const adcPerArray = c.adcConversions > 0 ? Math.max(...m.arrays.map((a) => a.tile.outs)) : 0;
    return { ...c, kind: m.kind, rows: m.rows, outputs: m.outputs, replicas: m.replicas, positionsPerReplica, adcPerArray };
  });
}

function ratio(a: number, b: number): number | null {
  return b > 0 ? a / b : null;
}

/** The estimate from per-layer work and a device's tables (the pure core of estimateEnergy). */
export function estimateFromWork(
  work: readonly LayerWork[],
  device: Pick<DeviceConfig, 'name' | 'energy' | 'latency'>,
  opts: EnergyOptions & { programmingPulses?: number | null } = {},
): EnergyEstimate {
  const adcSharing = opts.adcSharing ?? 'array';
  if (adcSharing !== 'array' && adcSharing !== 'column') throw new ConfigError('adcSharing', `must be 'array' or 'column', got ${JSON.stringify(adcSharing)}`);
  const e = device.energy;
  const t = device.latency;
  const energyPJ = zeroEnergy();
  const latencyNs = zeroLatency();
  let macs = 0;
  const layers = work.map((w): LayerEnergy => {
    const en: EnergyBreakdown = {
      cellReads: w.cellsRead * e.cellReadPJ,
      dac: w.dacConversions * e.dacPJ,
      adc: w.adcConversions * e.adcPJ,
      neurons: w.neuronEvaluations * e.neuronPJ,
      digitalAdds: w.digitalAdds * e.digitalAddPJ,
      total: 0,
    };
    en.total = en.cellReads + en.dac + en.adc + en.neurons + en.digitalAdds;
    const P = w.positionsPerReplica;
    const reads = P * w.readsPerInput;
    const adcPerRead = adcSharing === 'array' ? w.adcPerArray : w.adcPerArray > 0 ? 1 : 0;
    const addsPerOutput = w.neuronEvaluations > 0 ? w.digitalAdds / w.neuronEvaluations : 0;
    const lat: LatencyBreakdown = {
      reads: reads * t.readNs,
      adc: reads * adcPerRead * t.adcNs,
      neurons: P * t.neuronNs,
      digitalAdds: P * addsPerOutput * t.digitalAddNs,
      total: 0,
    };
    lat.total = lat.reads + lat.adc + lat.neurons + lat.digitalAdds;
    for (const k of Object.keys(energyPJ) as (keyof EnergyBreakdown)[]) energyPJ[k] += en[k];
    for (const k of Object.keys(latencyNs) as (keyof LatencyBreakdown)[]) latencyNs[k] += lat[k];
    const layerMacs = w.rows * w.outputs * w.positions;
    macs += layerMacs;
    return {
      layer: w.layer,
      kind: w.kind,
      macs: layerMacs,
      ops: 2 * layerMacs,
      positions: w.positions,
      replicas: w.replicas,
      positionsPerReplica: w.positionsPerReplica,
      readsPerInput: w.readsPerInput,
      energyPJ: en,
      latencyNs: lat,
    };
  });
  const ops = 2 * macs;
  const pulses = opts.programmingPulses;
  return {
    device: device.name,
    adcSharing,
    energyTable: { ...e },
    latencyTable: { ...t },
    layers,
    macs,
    ops,
    energyPJ,
    latencyNs,
    energyPerInferenceNJ: energyPJ.total * 1e-3,
    energyPerInferenceUJ: energyPJ.total * 1e-6,
    inferencesPerSec: latencyNs.total > 0 ? 1e9 / latencyNs.total : null,
    topsPerWatt: ratio(ops, energyPJ.total),
    gops: ratio(ops, latencyNs.total),
    programming: pulses == null || !Number.isFinite(pulses) ? null : programmingEnergy(pulses, device),
  };
}

/**
 * Energy and latency of one inference through a mapped network on its device's tables (see the
 * model at the top of this file), with the one-time cost of the write-verify pulses that
 * programmed it.
 */
export function estimateEnergy(net: CrossbarNetwork, opts: EnergyOptions = {}): EnergyEstimate {
  let pulses: number | null = 0;
  for (const l of net.layers) {
    const p = l.report?.totalPulses;
    if (typeof p !== 'number' || !Number.isFinite(p)) {
      pulses = null;
      break;
    }
    pulses += p;
  }
  return estimateFromWork(layerWork(net), net.device, { ...opts, programmingPulses: pulses });
}

// ---------------------------------------------------------------------------------------------
// Printing

/** Energy with a unit that fits (pJ, nJ, uJ, mJ, J), 3 significant digits. */
export function formatPJ(pj: number): string {
  const units: [number, string][] = [[1e12, 'J'], [1e9, 'mJ'], [1e6, 'uJ'], [1e3, 'nJ'], [1, 'pJ']];
  for (const [s, u] of units) if (Math.abs(pj) >= s) return `${sig(pj / s)} ${u}`;
  return `${sig(pj)} pJ`;
}

/** Time with a unit that fits (ns, us, ms, s), 3 significant digits. */
export function formatNs(ns: number): string {
  const units: [number, string][] = [[1e9, 's'], [1e6, 'ms'], [1e3, 'us'], [1, 'ns']];
  for (const [s, u] of units) if (Math.abs(ns) >= s) return `${sig(ns / s)} ${u}`;
  return `${sig(ns)} ns`;
}

function sig(x: number): string {
  if (x === 0) return '0';
  return String(Number(x.toPrecision(3)));
}

function int(x: number): string {
  return Math.round(x).toLocaleString('en-US');
}

function share(part: number, whole: number): string {
  if (!(whole > 0)) return '-';
  const p = (100 * part) / whole;
  return p > 0 && p < 0.5 ? '<1%' : `${Math.round(p)}%`;
}

/** Two lines for the CLI: energy, latency and throughput per inference, beside the operation count. */
export function summarizeEnergy(est: EnergyEstimate): string {
  const e = est.energyPJ;
  const parts = ([['ADC', e.adc], ['cell reads', e.cellReads], ['DAC', e.dac], ['neurons', e.neurons], ['digital adds', e.digitalAdds]] as [string, number][])
    .filter(([, v]) => v > 0)
    .sort((a, b) => b[1] - a[1])
    .map(([n, v]) => `${n} ${share(v, e.total)}`)
    .join(', ');
  const tops = est.topsPerWatt === null ? '-' : sig(est.topsPerWatt);
  const gops = est.gops === null ? '-' : sig(est.gops);
  const ips = est.inferencesPerSec === null ? '-' : int(est.inferencesPerSec);
  return [
    `estimated per inference (${est.device} tables): ${int(est.ops)} ops (${int(est.macs)} MACs), ${formatPJ(e.total)}${parts ? ` (${parts})` : ''}`,
    `latency ${formatNs(est.latencyNs.total)} (${ips} inferences/s), ${tops} TOPS/W, ${gops} GOPS`,
  ].join('\n');
}

/**
 * A text table of the estimate: one row per mapped layer (MACs, energy by component, latency) and
 * a total, then the per-inference figures beside the operation count, the assumptions and the
 * programming cost.
 */
export function formatEnergy(est: EnergyEstimate): string {
  const head = ['layer', 'kind', 'MACs', 'positions/replica', 'reads', 'cells nJ', 'DAC nJ', 'ADC nJ', 'neuron nJ', 'add nJ', 'total nJ', 'latency us'];
  const nj = (pj: number) => sig(pj * 1e-3);
  const us = (ns: number) => sig(ns * 1e-3);
  const row = (label: string, kind: string, macs: number, pos: string, reads: string, e: EnergyBreakdown, t: LatencyBreakdown) => [
    label,
    kind,
    int(macs),
    pos,
    reads,
    nj(e.cellReads),
    nj(e.dac),
    nj(e.adc),
    nj(e.neurons),
    nj(e.digitalAdds),
    nj(e.total),
    us(t.total),
  ];
  const rows = est.layers.map((l) => row(l.layer, l.kind, l.macs, `${int(l.positionsPerReplica)}${l.replicas > 1 ? ` (${l.replicas} repl.)` : ''}`, String(l.readsPerInput), l.energyPJ, l.latencyNs));
  const total = row('total', '', est.macs, '', '', est.energyPJ, est.latencyNs);
  const widths = head.map((h, j) => Math.max(h.length, total[j].length, ...rows.map((r) => r[j].length)));
  const line = (cells: string[]) => cells.map((c, j) => (j < 2 ? c.padEnd(widths[j]) : c.padStart(widths[j]))).join('  ').trimEnd();
  const rule = line(widths.map((w) => '-'.repeat(w)));
  const out = [line(head), rule, ...rows.map(line), rule, line(total), summarizeEnergy(est)];
  out.push(
    `(model: layers one after another; a layer's positions divided among its replicas; the arrays of a replica read at once; ` +
      `${est.adcSharing === 'array' ? 'one ADC per array, its columns converted one after another' : 'one ADC per column (pair)'}; ` +
      `every cell read at full read voltage; digital layers, buffers and data movement not counted)`,
  );
  if (est.programming) {
    const p = est.programming;
    out.push(`programming the arrays (write-verify, once): ${int(p.pulses)} pulses, ${formatPJ(p.energyPJ)}, ${formatNs(p.latencyNs)} one pulse at a time`);
  }
  return out.join('\n');
}
