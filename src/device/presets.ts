// Named device presets drawn from the papers (abstracts in ../shared/seeds, facts in DESIGN.md).
// Every value says where it comes from:
//   (S)  stated in the paper's abstract / DESIGN.md's stated facts,
//   (S2) from a secondary summary of the paper (DESIGN.md),
//   (D)  derived from other values of the preset (formula given),
//   (A)  assumed: the abstracts do not give it; a plausible value for the device class.
// The papers' abstracts give no conductance windows, pulse steps or noise figures: those are all
// (A), chosen so that the effects are of the size the papers report, and meant to be replaced by a
// lab's own numbers (a JSON file with "extends": "<preset>").
import type { DeviceConfig, EnergyTable, LatencyTable } from './config';

/** Energy of one cell read, pJ: V^2 G t with G in uS and t in ns (D). */
function cellReadPJ(volts: number, gUS: number, ns: number): number {
  return round3(volts * volts * gUS * ns * 1e-3);
}
/** Energy of one programming pulse on an ohmic cell, pJ: V^2 G t (D, an upper estimate). */
function pulsePJ(volts: number, gUS: number, ns: number): number {
  return round3(volts * volts * gUS * ns * 1e-3);
}
function round3(x: number): number {
  return Math.round(x * 1000) / 1000;
}

// Yao et al. 2020: read pulses taken as wide as the 50 ns programming pulses (A); G at mid-window.
const YAO_LATENCY: LatencyTable = {
  readNs: 50, // (A) read pulse width, taken equal to the 50 ns programming pulses (S2)
  adcNs: 10, // (A)
  neuronNs: 1, // (A) digital ReLU after the ADC
  digitalAddNs: 1, // (A)
  programmingPulseNs: 50, // (S2) 50 ns SET/RESET pulses
};
const YAO_ENERGY: EnergyTable = {
  cellReadPJ: cellReadPJ(0.2, 11, 50), // (D) 0.2 V (S) on 11 uS (mid-window, A) for 50 ns (A) = 0.022 pJ
  dacPJ: 0.01, // (A) a 0 / 0.2 V row driver pulse
  adcPJ: 2.55, // (S2) 2.55 pJ per 8-bit conversion
  neuronPJ: 0.01, // (A) digital ReLU
  digitalAddPJ: 0.03, // (A) one 16-bit addition in a 28-65 nm node
  programmingPulsePJ: pulsePJ(2.0, 11, 50), // (D) SET ~2.0 V (S2) on 11 uS for 50 ns (S2) = 2.2 pJ
};

export const PRESETS: Record<string, DeviceConfig> = {
  yao2020: {
    name: 'yao2020',
    description:
      'Yao et al., Nature 577 (2020): 1T1R TiN/TaOx/HfOx/TiN, 15-level weights as the difference of two 8-level devices, bit-serial 8-bit input at 0.2 V, 8-bit ADC',
    gMin: 2, // (A) a 10x window of the TaOx/HfOx cell; the 32 states of Fig. 2b are not numbered in the seeds
    gMax: 20, // (A)
    levels: 8, // (S2) 15-level weights = difference of two 8-level devices
    defaultScheme: 'differential', // (S) a signed weight is the difference of two source-line currents
    pulse: {
      model: 'softBounds', // (A) gradual SET/RESET of TaOx/HfOx ("uniform intermediate states", S)
      dgSet: 0.8, // (A) uS at the lower bound: ~66 pulses from gMin to 95% of the window
      dgReset: 1.0, // (A) up/down asymmetry
      c2cSigma: 0.3, // (A)
    },
    // (A) tolerance: +-0.9 uS, a third of the 2.57 uS level spacing; calibrate against the mcnn's
    // 97.99% -> 95.07% transfer loss (S2) once crossbar inference runs.
    writeVerify: { mode: 'iterative', tolerance: 0.05, maxPulses: 100 },
    variation: { rOnSigma: 0.05, rOffSigma: 0.1, stepSigma: 0.2 }, // (A)
    faults: { stuckAtGMin: 0.005, stuckAtGMax: 0.005 }, // (A) "state-stuck issue" named (S), rate not given
    read: { voltage: 0.2, noiseSigma: 0.02 }, // voltage (S); noise (A)
    drift: { nu: 0.005, nuSigma: 0.002, t0: 1 }, // (A) drift followed for 30 days (S), the figure not in the seeds
    wireResistance: 1, // (A) ohms per cell segment
    dac: { mode: 'bitSerial', inputBits: 8 }, // (S) 8-bit input applied bit by bit in 8 pulses
    adc: { bits: 8, range: 'auto' }, // bits (S2); range (A) calibrated per layer
    neuron: { kind: 'linear' }, // (S) currents are digitized; the ReLU is computed after the ADC
    energy: YAO_ENERGY,
    latency: YAO_LATENCY,
  },

  park2024: {
    name: 'park2024',
    description:
      'Park et al., ACS AMI 16 (2024): 32x32 array, 3-bit (8-level) weights on differential pairs, write-verify to 5%, binary activation at read voltage / ground, threshold neuron',
    gMin: 10, // (A) 100 kOhm
    gMax: 100, // (A) 10 kOhm
    levels: 8, // (S) 3-bit multi-level operation in the whole array
    defaultScheme: 'differential', // (S) differential memristor pair scheme
    pulse: {
      model: 'softBounds', // (S) gradual switching in both SET and RESET (overshoot suppression layer)
      dgSet: 4, // (A) ~66 pulses from gMin to 95% of the window
      dgReset: 5, // (A)
      c2cSigma: 0.2, // (A)
    },
    writeVerify: { mode: 'iterative', tolerance: 0.05, maxPulses: 100 }, // tolerance (S: tuned to a tolerance, swept; 5% from the issue); maxPulses (A)
    variation: { rOnSigma: 0.05, rOffSigma: 0.05, stepSigma: 0.2 }, // (A)
    faults: { stuckAtGMin: 0.002, stuckAtGMax: 0.002 }, // (A)
    read: { voltage: 0.2, noiseSigma: 0.01 }, // (A) the read voltage an activation 1 is mapped to (S: value not given)
    drift: { nu: 0.005, nuSigma: 0.002, t0: 1 }, // (A)
    wireResistance: 1, // (A)
    // (S) binary activations map to read voltage / ground; 8 bits (A) so the first layer's grey
    // pixels are applied too (a 0/1 activation is exact at any bit count).
    dac: { mode: 'analog', bits: 8 },
    adc: { bits: null, range: 'auto' }, // (S) the comparator neuron needs no ADC
    neuron: { kind: 'threshold' }, // (S) binary activation with a boundary of 0.5
    energy: {
      cellReadPJ: cellReadPJ(0.2, 55, 100), // (D) 0.2 V on 55 uS (mid-window) for 100 ns (A) = 0.22 pJ
      dacPJ: 0.05, // (A)
      adcPJ: 2.55, // (A) Yao's 8-bit figure, used only if an ADC is configured
      neuronPJ: 0.05, // (A) a comparator
      digitalAddPJ: 0.03, // (A)
      programmingPulsePJ: pulsePJ(1.5, 55, 100), // (D) 1.5 V (A) on 55 uS for 100 ns (A) = 12.4 pJ
    },
    latency: { readNs: 100, adcNs: 10, neuronNs: 5, digitalAddNs: 1, programmingPulseNs: 100 }, // (A)
  },

  chen2021: {
    name: 'chen2021',
    description:
      'Chen et al., Neural Networks 144 (2021): binary devices for +-1 weights, 0/1 inputs of fixed sign, BN + binarization merged into a threshold comparator',
    gMin: 1, // (A) R_OFF 1 MOhm
    gMax: 100, // (A) R_ON 10 kOhm
    levels: 2, // (S) binary weights
    defaultScheme: 'differential', // (A) +1 -> (G_on, G_off), -1 -> (G_off, G_on)
    pulse: {
      model: 'constantStep', // (A) abrupt binary switching: one pulse crosses the window
      dgSet: 99, // (A) = the window
      dgReset: 99, // (A)
      c2cSigma: 0.1, // (A)
    },
    writeVerify: { mode: 'iterative', tolerance: 0.1, maxPulses: 10 }, // (A) a binary state needs little precision
    variation: { rOnSigma: 0.1, rOffSigma: 0.1, stepSigma: 0 }, // (A) R_ON / R_OFF variation as Lammie et al. study it
    faults: { stuckAtGMin: 0.001, stuckAtGMax: 0.001 }, // (A)
    read: { voltage: 0.2, noiseSigma: 0.01 }, // (A)
    drift: { nu: 0.005, nuSigma: 0.002, t0: 1 }, // (A)
    wireResistance: 1, // (A)
    dac: { mode: 'analog', bits: 1 }, // (S) inputs converted to fixed-sign 0/1 voltages
    adc: { bits: null, range: 'auto' }, // (S) BN + binarization in one comparator circuit, no ADC
    neuron: { kind: 'threshold' }, // (S) with the BN threshold tau = mean - beta sqrt(var + eps) / gamma
    energy: {
      cellReadPJ: cellReadPJ(0.2, 50.5, 10), // (D) 0.2 V on 50.5 uS for 10 ns (A) = 0.02 pJ
      dacPJ: 0.01, // (A)
      adcPJ: 2.55, // (A) Yao's figure, used only if an ADC is configured
      neuronPJ: 0.05, // (A) comparator
      digitalAddPJ: 0.03, // (A)
      programmingPulsePJ: pulsePJ(2.0, 50.5, 50), // (D) 2 V on 50.5 uS for 50 ns (A) = 10.1 pJ
    },
    latency: { readNs: 10, adcNs: 10, neuronNs: 1, digitalAddNs: 1, programmingPulseNs: 50 }, // (A)
  },

  cbram: {
    name: 'cbram',
    description:
      'Shi et al., Neuromorph. Comput. Eng. 3 (2023): Ag-CBRAM crossbars, high ON/OFF, multi-level, a Mott (VO2) ReLU neuron at each column',
    gMin: 0.01, // (A) 100 MOhm: "high ON/OFF ratio" (S), 1e4 here
    gMax: 100, // (A) 10 kOhm
    levels: 16, // (A) "multi-level programmability" (S), the count not given
    defaultScheme: 'differential', // (A)
    pulse: {
      model: 'softBounds', // (A)
      dgSet: 4, // (A)
      dgReset: 6, // (A) Ag filament dissolution is faster than growth
      c2cSigma: 0.5, // (A) filamentary switching is stochastic
    },
    writeVerify: { mode: 'iterative', tolerance: 0.03, maxPulses: 200 }, // (A) +-3 uS within the 6.7 uS level spacing
    variation: { rOnSigma: 0.1, rOffSigma: 0.3, stepSigma: 0.3 }, // (A)
    faults: { stuckAtGMin: 0.005, stuckAtGMax: 0.005 }, // (A)
    read: { voltage: 0.1, noiseSigma: 0.03 }, // (A) low read voltage so the Ag filament is not disturbed
    drift: { nu: 0.02, nuSigma: 0.01, t0: 1 }, // (A) Ag filaments relax
    wireResistance: 1, // (A)
    dac: { mode: 'analog', bits: 8 }, // (A)
    adc: { bits: 8, range: 'auto' }, // (A) the neuron outputs are read out at 8 bits
    neuron: { kind: 'relu' }, // (S) Mott ReLU neuron at each column
    energy: {
      cellReadPJ: cellReadPJ(0.1, 50, 50), // (D) 0.1 V on 50 uS for 50 ns (A) = 0.025 pJ
      dacPJ: 0.05, // (A)
      adcPJ: 2.55, // (A) Yao's 8-bit figure
      neuronPJ: 0.5, // (A) one Mott VO2 neuron firing ("energy-efficient", S; figure not given)
      digitalAddPJ: 0.03, // (A)
      programmingPulsePJ: pulsePJ(1.0, 50, 100), // (D) 1 V on 50 uS for 100 ns (A) = 5 pJ
    },
    latency: { readNs: 50, adcNs: 10, neuronNs: 10, digitalAddNs: 1, programmingPulseNs: 100 }, // (A)
  },

  ideal: {
    name: 'ideal',
    description:
      'an ideal device: continuous conductance, exact programming, no noise, faults, drift or IR drop, ideal DAC and ADC (crossbar inference equals software)',
    gMin: 0,
    gMax: 100,
    levels: null,
    defaultScheme: 'differential',
    pulse: { model: 'constantStep', dgSet: 1, dgReset: 1, c2cSigma: 0 }, // linear noiseless steps for in-situ training
    writeVerify: { mode: 'exact', tolerance: 0, maxPulses: 100 },
    variation: { rOnSigma: 0, rOffSigma: 0, stepSigma: 0 },
    faults: { stuckAtGMin: 0, stuckAtGMax: 0 },
    read: { voltage: 0.2, noiseSigma: 0 },
    drift: { nu: 0, nuSigma: 0, t0: 1 },
    wireResistance: 0,
    dac: { mode: 'analog', bits: null },
    adc: { bits: null, range: 'auto' },
    neuron: { kind: 'linear' },
    energy: YAO_ENERGY, // the yao2020 table (energy estimates of an idealized chip)
    latency: YAO_LATENCY,
  },
};

function pct(x: number): string {
  const v = x * 100;
  return `${Number(v.toPrecision(3))}%`;
}

/** One line of a device's main figures. */
export function summarizeDevice(cfg: DeviceConfig): string {
  const dac = cfg.dac.mode === 'bitSerial' ? `bit-serial ${cfg.dac.inputBits}b` : cfg.dac.bits === null ? 'ideal' : `${cfg.dac.bits}b`;
  const adc = cfg.adc.bits === null ? 'ideal' : `${cfg.adc.bits}b`;
  return [
    `G ${cfg.gMin}-${cfg.gMax} uS`,
    cfg.levels === null ? 'continuous' : `${cfg.levels} levels`,
    cfg.writeVerify.mode === 'exact' ? 'exact programming' : `tolerance ${pct(cfg.writeVerify.tolerance)}`,
    `d2d ${pct(cfg.variation.rOnSigma)}/${pct(cfg.variation.rOffSigma)}`,
    `stuck ${pct(cfg.faults.stuckAtGMin + cfg.faults.stuckAtGMax)}`,
    `read noise ${pct(cfg.read.noiseSigma)}`,
    `DAC ${dac}`,
    `ADC ${adc}`,
    `${cfg.neuron.kind} neuron`,
  ].join(', ');
}

/** The presets for `memristor-tfjs devices`. */
export function listPresets(): { name: string; description: string; summary: string }[] {
  return Object.values(PRESETS).map((p) => ({ name: p.name, description: p.description, summary: summarizeDevice(p) }));
}

/** A printable table of the presets (one row each, then their descriptions). */
export function formatPresetTable(): string {
  const head = ['name', 'G window uS', 'levels', 'tolerance', 'd2d R_ON/R_OFF', 'stuck', 'read noise', 'wire', 'DAC', 'ADC', 'neuron'];
  const rows = Object.values(PRESETS).map((p) => [
    p.name,
    `${p.gMin}-${p.gMax}`,
    p.levels === null ? 'cont.' : String(p.levels),
    p.writeVerify.mode === 'exact' ? 'exact' : pct(p.writeVerify.tolerance),
    `${pct(p.variation.rOnSigma)}/${pct(p.variation.rOffSigma)}`,
    pct(p.faults.stuckAtGMin + p.faults.stuckAtGMax),
    pct(p.read.noiseSigma),
    `${p.wireResistance} ohm`,
    p.dac.mode === 'bitSerial' ? `serial ${p.dac.inputBits}b` : p.dac.bits === null ? 'ideal' : `${p.dac.bits}b`,
    p.adc.bits === null ? 'ideal' : `${p.adc.bits}b ${p.adc.range === 'auto' ? 'auto' : p.adc.range + 'uA'}`,
    p.neuron.kind,
  ]);
  const widths = head.map((h, j) => Math.max(h.length, ...rows.map((r) => r[j].length)));
  const line = (cells: string[]) => cells.map((c, j) => c.padEnd(widths[j])).join('  ').trimEnd();
  const out = [line(head), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line), ''];
  for (const p of Object.values(PRESETS)) out.push(`${p.name}: ${p.description}`);
  return out.join('\n') + '\n';
}

function deepFreeze<T>(o: T): T {
  if (o !== null && typeof o === 'object' && !Object.isFrozen(o)) {
    Object.freeze(o);
    for (const v of Object.values(o as object)) deepFreeze(v);
  }
  return o;
}
// Presets are shared: take a copy (getPreset / loadDeviceConfig) to change one.
deepFreeze(PRESETS);
