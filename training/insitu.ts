// In-situ training of the last fully connected layer on its arrays (the hybrid method of Yao et
// al., Nature 2020; with `layers`, the last two or every dense layer, the error reaching the earlier
// ones through a transposed read of the layer above): every layer before it stays as programmed;
// for each batch the network runs
// through the simulated crossbar (read noise, DAC, ADC), the output error is computed in the
// periphery (software), and the wanted weight change of each cell becomes SET/RESET pulses on the
// device model (nonlinear, asymmetric, bounded, noisy steps; stuck cells do not move). Open loop:
// no verify read after an update, as on the chip.
//
// Per batch of B samples with FC inputs h (after the layer's digital input quantizer) and output
// error delta = dLoss/dz (softmax cross-entropy, mean over the batch, through any digital layers
// after the FC):
//   dW = -lr * h^T delta                      (rows x outputs, weight units)
//   dG = dW / weightScale                      per weight; a differential pair splits it, G+ gets
//                                              +dG/2 and G- gets -dG/2 (the pair's sum stays put,
//                                              so neither device drifts to a bound); a reference-
//                                              scheme cell gets dG (its reference column is fixed);
//                                              pair-aware re-splits a pair's change by the
//                                              devices' steps (the controller gets the pairs)
// The rules (plain, manhattan, mixed-precision, tiki-taka, pair-aware; momentum) and the controller that runs
// them are in insitu_rules.ts. The controller knows what a chip's periphery knows: the device model
// (each cell the nominal device), the targets it programmed, and one read of the cells before the
// first update (again every `readEvery` updates if asked), whose noise it lives with and whose
// energy is counted. It does not know which cells are stuck: their pulses are spent and counted,
// as on a chip. `oracle` gives it each cell's hidden window, step scale and stuck state and the
// true conductances instead: an upper bound, not a chip.
import { tf, Tensor } from '../src/tf';
import { ConfigError } from '../src/errors';
import { SeededRandom } from '../src/random';
import type { Split } from '../src/data/datasets';
import { batchesOf, sampleSize, selectSamples } from '../src/data/batches';
import { CrossbarArray, CrossbarNetwork, MappedLayer, deviceInstancesOf } from '../src/crossbar/network';
import type { DeviceConfig } from '../src/device/config';
import { calibrateCrossbarOn, crossbarRunner, CrossbarRunner } from '../src/crossbar/inference';
import { applyPulses, meanStep, readConductance } from '../src/programming/pulse';
import { DeviceInstances, nominalInstances } from '../src/programming/instances';
import { INSITU_RULES, InsituRule, PulseController, checkRuleSettings } from './insitu_rules';
import { FileFormatError } from '../src/errors';
import { PulseLog, PulseLogBuilder } from '../src/programming/pulse_plan';

export { INSITU_RULES, InsituRule };
/**
 * The default learning rate of plain, manhattan and mixed-precision, found on mcnn / yao2020
 * (0.15-1 give about the same recovery there with the cosine decay; mixed precision above 0.3 can
 * fire runaway pulse trains where the transfer lost much).
 */
export const DEFAULT_INSITU_LR = 0.3;
/** tiki-taka's and pair-aware's: their transfers move one pulse at most, so they take larger steps (bench/insitu_rules.ts: 1 recovers most). */
export const DEFAULT_TIKI_TAKA_LR = 1;

/** The layer sets `layers` names. */
export const INSITU_LAYERS = ['last', 'last2', 'all-dense'] as const;
export type InsituLayers = (typeof INSITU_LAYERS)[number];

/** The learning rate of a rule without `lr`. */
export function defaultInsituLr(rule: InsituRule): number {
  return rule === 'tiki-taka' || rule === 'pair-aware' ? DEFAULT_TIKI_TAKA_LR : DEFAULT_INSITU_LR;
}

/**
 * The rule without --rule: the one that recovered most on the presets, measured
 * (bench/insitu_rules.ts, 3 seeds, without the oracle): pair-aware on yao2020 (91.1% of the lost
 * points, tiki-taka 86.9%) and park2024 (64.5%, tiki-taka 47.0%). On a fitted few-level device
 * tiki-taka recovers more (79.5% against 71.0%).
 */
export const DEFAULT_INSITU_RULE: InsituRule = 'pair-aware';

export interface InsituOptions {
  /** Distinct training images used (a seeded random subset of `train`); default 6,000 (10% of MNIST, as Yao et al.). */
  samples?: number;
  /** Passes over them; default 1. */
  epochs?: number;
  /** Images per update; default 100 (Yao et al.). */
  batchSize?: number;
  /** Learning rate (weight units per unit of mean gradient); default DEFAULT_INSITU_LR. */
  lr?: number;
  /** Update rule; default 'plain'. */
  rule?: InsituRule;
  /** Wanted conductance change (uS) below which a cell is not pulsed; default 0 (plain), half the device's SET step (manhattan). */
  threshold?: number;
  /** Learning-rate decay over the run: 'cosine' (default: lr to 0, the updates get finer as the error falls) or 'none'. */
  decay?: 'cosine' | 'none';
  /** Plain rule: round pulse counts stochastically (default true) rather than to the nearest. */
  stochasticRounding?: boolean;
  /** The layers trained: 'last' (default, Yao et al.), 'last2' (the last two dense layers) or 'all-dense'. */
  layers?: InsituLayers;
  /** Momentum M in [0, 1) of the wanted updates; default 0. */
  momentum?: number;
  /** tiki-taka: updates between transfers from the fast matrix; default 1. */
  transferEvery?: number;
  /** Most pulses a cell gets in one update; default the device's writeVerify.maxPulses. */
  maxPulses?: number;
  /** Updates between reads of the cells that refresh the controller's estimate (0: only the first read); default 0. */
  readEvery?: number;
  /** Give the controller every cell's hidden parameters and true state (an upper bound, not a chip); default false. */
  oracle?: boolean;
  /** Seed of the sample choice, the order, the read noise and the pulse noise; default the mapping seed. */
  seed?: number;
  /** Evaluate on this split during training (the learning curve's test points). */
  evalSplit?: Split;
  /** Images between test points; default: samples * epochs / 5. */
  evalEvery?: number;
  /** Samples that calibrate the converter ranges when the network is not calibrated yet; default 500 of `train`. */
  calibrationSamples?: number;
  /** Read noise during training and evaluation (default: as the device says). */
  readNoise?: boolean;
  /** [h, w, c] of a sample; default the network's input shape. */
  imageShape?: [number, number, number];
  numClasses?: number;
  /** Called after every update. */
  onProgress?: (p: { samples: number; total: number; trainAccuracy: number; pulses: number }) => void;
}

export interface InsituPoint {
  /** Images seen so far. */
  samples: number;
  /** Accuracy on the batch just seen (before its update). */
  trainAccuracy: number;
  /** Its mean cross-entropy. */
  loss: number;
  /** Pulses applied so far (SET + RESET). */
  pulses: number;
  /** Energy of the pulses and of the controller's reads so far, pJ. */
  energyPJ?: number;
  /** Accuracy on evalSplit at this point, where measured. */
  testAccuracy?: number | null;
}

export interface InsituResult {
  /** The last trained layer (the one Yao et al. train). */
  layer: string;
  /** Every trained layer, first to last. */
  layers: string[];
  rule: InsituRule;
  curve: InsituPoint[];
  /** SET + RESET pulses applied to each cell of each array of the trained layer, by array id. */
  pulsesPerCell: Map<string, Int32Array>;
  /** Every pulse applied: cell, update and count (pulses.csv; replayInsituPulses applies it again). */
  pulseLog: PulseLog;
  totalPulses: number;
  setPulses: number;
  resetPulses: number;
  /** Updates (batches). */
  updates: number;
  /** Cell reads of the controller (cells x reads). */
  cellReads: number;
  /** Distinct images used. */
  samples: number;
  /** Images seen (samples x epochs). */
  imagesSeen: number;
  seconds: number;
  options: {
    samples: number;
    epochs: number;
    batchSize: number;
    lr: number;
    rule: InsituRule;
    threshold: number;
    seed: number;
    momentum: number;
    transferEvery: number;
    readEvery: number;
    oracle: boolean;
    layers: InsituLayers;
  };
}

/** The step index and mapping of the layer in-situ training trains: the last mapped layer, a dense one. */
export function insituLayer(net: CrossbarNetwork): { index: number; mapped: MappedLayer } {
  let index = -1;
  net.steps.forEach((s, i) => {
    if (s.mapped) index = i;
  });
  const mapped = index >= 0 ? net.steps[index].mapped : null;
  if (!mapped) throw new ConfigError('network', 'has no mapped layer to train in situ');
  if (mapped.kind !== 'dense') throw new ConfigError('network', `in-situ training trains the last fully connected layer; the last mapped layer '${mapped.name}' is a ${mapped.kind}`);
  if (mapped.replicas !== 1) throw new ConfigError('network', `layer '${mapped.name}' has ${mapped.replicas} replicas; in-situ training needs one`);
  if (mapped.activation !== 'linear' && mapped.activation !== 'softmax') {
    throw new ConfigError('network', `in-situ training needs logits or softmax from layer '${mapped.name}', its activation is ${mapped.activation}`);
  }
  // The error is propagated back through the layers after it: they must form a chain from it.
  for (let i = index + 1; i < net.steps.length; i++) {
    const ins = net.steps[i].inputs;
    if (ins.length !== 1 || ins[0] !== i - 1) {
      throw new ConfigError('network', `in-situ training needs the layers after '${mapped.name}' to follow one another; '${net.steps[i].layer.name}' takes ${ins.length === 1 ? `the output of an earlier layer` : `${ins.length} inputs`}`);
    }
  }
  return { index, mapped };
}

/**
 * The steps in-situ training trains, first to last: the last mapped layer (insituLayer), and with
 * 'last2' the dense layer before it, with 'all-dense' every dense layer. The layers from the first
 * of them to the end must follow one another (the error goes back along that chain), no other
 * mapped layer may sit between two of them, and each one but the last must have a linear or relu
 * activation with an ADC-read output (a threshold neuron's binary output has no gradient to send).
 */
export function insituLayers(net: CrossbarNetwork, which: InsituLayers = 'last'): { index: number; mapped: MappedLayer }[] {
  if (!INSITU_LAYERS.includes(which)) throw new ConfigError('layers', `must be one of ${INSITU_LAYERS.join(', ')}, got ${which}`);
  const last = insituLayer(net);
  if (which === 'last') return [last];
  const dense: { index: number; mapped: MappedLayer }[] = [];
  net.steps.forEach((s, i) => {
    if (s.mapped && s.mapped.kind === 'dense') dense.push({ index: i, mapped: s.mapped });
  });
  const names = dense.map((d) => `'${d.mapped.name}'`).join(', ');
  if (which === 'last2' && dense.length < 2) {
    throw new ConfigError('layers', `last2 trains the last two dense layers; the network has ${dense.length} on arrays (${names})`);
  }
  const chosen = which === 'last2' ? dense.slice(-2) : dense;
  for (let i = chosen[0].index + 1; i < net.steps.length; i++) {
    const ins = net.steps[i].inputs;
    if (ins.length !== 1 || ins[0] !== i - 1) {
      throw new ConfigError('layers', `in-situ training of ${names} needs the layers after '${chosen[0].mapped.name}' to follow one another; '${net.steps[i].layer.name}' takes ${ins.length === 1 ? 'the output of an earlier layer' : `${ins.length} inputs`}`);
    }
    const mm = net.steps[i].mapped;
    if (mm && !chosen.some((c) => c.index === i)) throw new ConfigError('layers', `'${mm.name}' (a ${mm.kind} on arrays) sits between the dense layers trained in situ (${names})`);
  }
  for (const c of chosen.slice(0, -1)) {
    const m = c.mapped;
    if (m.replicas !== 1) throw new ConfigError('layers', `layer '${m.name}' has ${m.replicas} replicas; in-situ training needs one`);
    if (m.neuron === 'threshold' || m.comparator) throw new ConfigError('layers', `layer '${m.name}' ends in a threshold neuron: its binary output sends no error back; train --layers last`);
    if (m.activation !== 'linear' && m.activation !== 'relu') throw new ConfigError('layers', `layer '${m.name}' has activation ${m.activation}; in-situ training back-propagates through linear and relu only`);
  }
  return chosen;
}

function positiveInt(v: number, field: string): number {
  if (!Number.isSafeInteger(v) || v < 1) throw new ConfigError(field, `must be an integer >= 1, got ${v}`);
  return v;
}

/** The mean SET step of the device at mid window (uS): the scale of one pulse. */
export function meanSetStep(net: CrossbarNetwork): number {
  return meanStep(net.device, 0.5, 1);
}

/**
 * Trains the last FC layer of `net` in situ on samples of `train`, changing the programmed
 * conductances of its arrays in place (the arrays' `programmed`). The other layers are not touched.
 */
export function insituTrain(net: CrossbarNetwork, train: Split, opts: InsituOptions = {}): InsituResult {
  const t0 = performance.now();
  const which = opts.layers ?? 'last';
  const chosen = insituLayers(net, which);
  const { index: L, mapped: m } = chosen[chosen.length - 1];
  const samples = positiveInt(Math.min(opts.samples ?? 6000, train.count), 'samples');
  const epochs = positiveInt(opts.epochs ?? 1, 'epochs');
  const batchSize = positiveInt(opts.batchSize ?? 100, 'batchSize');
  const rule = opts.rule ?? DEFAULT_INSITU_RULE;
  if (!INSITU_RULES.includes(rule)) throw new ConfigError('rule', `must be one of ${INSITU_RULES.join(', ')}, got ${rule}`);
  const lr = opts.lr ?? defaultInsituLr(rule);
  if (!(lr > 0) || !Number.isFinite(lr)) throw new ConfigError('lr', `must be > 0, got ${lr}`);
  const threshold = opts.threshold ?? (rule === 'manhattan' ? 0.5 * meanSetStep(net) : 0);
  const momentum = opts.momentum ?? 0;
  const transferEvery = opts.transferEvery ?? 1;
  const readEvery = opts.readEvery ?? 0;
  if (!Number.isSafeInteger(readEvery) || readEvery < 0) throw new ConfigError('readEvery', `must be an integer >= 0, got ${readEvery}`);
  const oracle = opts.oracle ?? false;
  const seed = opts.seed ?? net.mapping.seed;
  const imageShape = opts.imageShape ?? (net.inputShape as [number, number, number]);
  const numClasses = opts.numClasses ?? 10;
  const readNoise = opts.readNoise ?? true;
  const rng = new SeededRandom(seed).fork('insitu');
  sampleSize(train);

  // The images: a seeded subset, the same for every epoch.
  const pick = Array.from({ length: train.count }, (_, i) => i);
  rng.fork('subset').shuffle(pick);
  const subset = selectSamples(train, pick.slice(0, samples));

  const inferOpts = { seed: seed, readNoise };
  const runner = crossbarRunner(net, inferOpts, 'insitu-read-noise');
  // A network evaluated before (hybrid) keeps its calibration; otherwise the first training images
  // calibrate it, as in `evaluate --crossbar` (not the first training batch, as runner.run would).
  calibrateCrossbarOn(net, train, { ...inferOpts, samples: opts.calibrationSamples, imageShape, numClasses });

  const pulseRng = rng.fork('pulses');
  const roundRng = rng.fork('rounding');
  const readRng = rng.fork('controller-reads');
  const stochastic = opts.stochasticRounding ?? true;
  const settings = checkRuleSettings({
    rule,
    threshold,
    momentum,
    transferEvery,
    rounding: stochastic ? roundRng : null,
    maxPulses: opts.maxPulses ?? net.device.writeVerify.maxPulses,
  });
  let cellReads = 0;
  // Every trained layer's cells, flat, with its controller: the oracle sees the cells as they are;
  // a chip's controller sees the nominal device and reads the cells once before it starts.
  const allArrays: string[] = [];
  const trained: TrainedLayer[] = chosen.map(({ index, mapped }) => {
    const { instances, arrays } = deviceInstancesOf(net, mapped, 0);
    const n = instances.count;
    const G = new Float32Array(n);
    for (const { array, offset } of arrays) G.set(array.programmed, offset);
    const t: TrainedLayer = {
      index,
      m: mapped,
      instances,
      arrays,
      G,
      counts: new Int32Array(n),
      dG: new Float32Array(n),
      cells: layerCells(mapped, arrays),
      arrayBase: allArrays.length,
      controller: null as unknown as PulseController,
    };
    allArrays.push(...arrays.map((a) => a.array.id));
    const pairs = t.cells.differential ? { plus: t.cells.plus, minus: t.cells.minus } : null;
    if (oracle) t.controller = new PulseController(net.device, instances, G, settings, pairs);
    else {
      cellReads += n;
      t.controller = new PulseController(net.device, nominalInstances(net.device, n), readConductance(G, net.device, readRng), settings, pairs);
    }
    return t;
  });
  const log = new PulseLogBuilder(allArrays);
  const pulsePJ = net.device.energy.programmingPulsePJ;
  const readPJ = net.device.energy.cellReadPJ;
  const energyNow = () => totalPulses * pulsePJ + cellReads * readPJ;
  const O = m.outputs;
  // (absorbed steps after it are part of its arrays' work: a folded BN)
  const trailing = net.steps.slice(L + 1).filter((s) => s.absorbedBy === null).map((s) => s.layer);
  const softmaxOut = m.activation === 'softmax';
  // The digital steps between a trained layer and the next (absorbed ones are in the arrays' work).
  const between = trained.map((t, k) =>
    k + 1 < trained.length ? net.steps.slice(t.index + 1, trained[k + 1].index).filter((s) => s.absorbedBy === null).map((s) => s.layer) : [],
  );

  const total = samples * epochs;
  const decay = opts.decay ?? 'cosine';
  const totalUpdates = Math.ceil(samples / batchSize) * epochs;
  const evalEvery = opts.evalEvery ?? Math.max(batchSize, Math.ceil(total / 5));
  const curve: InsituPoint[] = [];
  let seen = 0;
  let nextEval = evalEvery;
  let totalPulses = 0;
  let setPulses = 0;
  let resetPulses = 0;
  let updates = 0;
  const testAt = (): number | null => (opts.evalSplit ? evaluateWith(runner, opts.evalSplit, imageShape, numClasses) : null);
  const first = testAt();
  if (first !== null) curve.push({ samples: 0, trainAccuracy: NaN, loss: NaN, pulses: 0, energyPJ: energyNow(), testAccuracy: first });

  for (let e = 0; e < epochs; e++) {
    for (const b of batchesOf(subset, { batchSize, numClasses, shuffle: rng.fork(`order/${e}`) })) {
      // Forward through the arrays, keeping each trained layer's input and output; the error in
      // the periphery, back-propagated from layer to layer through the read weights of the layer
      // above (a transposed read of its arrays: read noise, energy counted).
      const grads = tf.tidy(() => {
        const x = tf.tensor(b.x, [b.size, ...imageShape]);
        let cur = runner.run(x, 0, net.steps[trained[0].index].inputs[0] + 1);
        const hs: Tensor[] = [];
        const outs: Tensor[] = [];
        for (let k = 0; k < trained.length; k++) {
          const t = trained[k];
          if (k > 0) cur = runner.run(cur, trained[k - 1].index + 1, t.index);
          const q = t.m.inputQuantizer && t.m.inputQuantizer.levels !== null ? t.m.inputQuantizer(cur) : cur;
          hs.push(tf.reshape(q, [b.size, t.m.rows]));
          cur = runner.run(cur, t.index, t.index + 1);
          outs.push(cur);
        }
        const z = outs[outs.length - 1];
        const y = tf.tensor2d(b.oneHot, [b.size, numClasses]);
        const head = (zz: Tensor): Tensor => {
          let o = zz;
          for (const layer of trailing) o = layer.apply(o, { training: false }) as Tensor;
          return o;
        };
        let out: Tensor;
        let d: Tensor;
        if (softmaxOut && trailing.length === 0) {
          out = z;
          d = tf.div(tf.sub(z, y), b.size);
        } else {
          out = head(z);
          d = tf.grad((zz: Tensor) => tf.losses.softmaxCrossEntropy(y, head(zz)) as tf.Scalar)(z);
        }
        const deltas: Tensor[] = new Array(trained.length);
        deltas[trained.length - 1] = tf.reshape(d, [b.size, O]);
        for (let k = trained.length - 2; k >= 0; k--) {
          const up = trained[k + 1];
          const Wr = tf.tensor2d(readWeights(up, net.device, readRng), [up.m.rows, up.m.outputs]);
          cellReads += up.instances.count;
          // through the input quantizer of the layer above: straight through
          const dIn = tf.matMul(deltas[k + 1], Wr, false, true);
          const layers = between[k];
          let dOut: Tensor;
          if (layers.length === 0) dOut = tf.reshape(dIn, outs[k].shape);
          else {
            const g = (o: Tensor): Tensor => {
              let v = o;
              for (const layer of layers) v = layer.apply(v, { training: false }) as Tensor;
              return tf.sum(tf.mul(tf.reshape(v, [b.size, up.m.rows]), dIn));
            };
            dOut = tf.grad(g)(outs[k]);
          }
          // through the layer's own activation (relu: where its output is positive)
          const act = trained[k].m.activation;
          const dz = act === 'relu' ? tf.mul(dOut, tf.cast(tf.greater(outs[k], 0), 'float32')) : dOut;
          deltas[k] = tf.reshape(dz, [b.size, trained[k].m.outputs]);
        }
        const probs = softmaxOut && trailing.length === 0 ? out : tf.softmax(out);
        const l = tf.mean(tf.neg(tf.sum(tf.mul(y, tf.log(tf.add(probs, 1e-12))), -1)));
        const hits = tf.sum(tf.cast(tf.equal(tf.argMax(out, -1), tf.tensor1d(b.labels, 'int32')), 'float32'));
        return {
          // dW = h^T delta per trained layer (the sign and lr are applied below)
          dW: trained.map((_, k) => tf.matMul(hs[k], deltas[k], true, false).dataSync() as Float32Array),
          correct: hits.dataSync()[0],
          loss: l.dataSync()[0],
        };
      });
      const lrNow = decay === 'cosine' ? 0.5 * lr * (1 + Math.cos((Math.PI * updates) / totalUpdates)) : lr;
      for (let k = 0; k < trained.length; k++) {
        const t = trained[k];
        const dW = grads.dW[k];
        const dG = t.dG;
        dG.fill(0);
        const toG = -lrNow / t.m.weightScale;
        const { weight, plus, minus, differential } = t.cells;
        for (let i = 0; i < weight.length; i++) {
          const g = dW[weight[i]] * toG;
          if (differential) {
            dG[plus[i]] = g / 2;
            dG[minus[i]] = -g / 2;
          } else dG[plus[i]] = g; // the reference cell stays put
        }
        if (!oracle && readEvery > 0 && updates > 0 && updates % readEvery === 0) {
          cellReads += t.instances.count;
          t.controller.observe(readConductance(t.G, net.device, readRng));
        }
        const pulses = t.controller.pulses(dG);
        applyPulses(t.G, pulses, net.device, t.instances, pulseRng);
        if (oracle) t.controller.observe(t.G);
        for (let i = 0; i < pulses.length; i++) {
          const p = pulses[i];
          if (p === 0) continue;
          if (p > 0) setPulses += p;
          else resetPulses -= p;
          t.counts[i] += Math.abs(p);
        }
        t.arrays.forEach(({ array, offset }, a) => {
          const cols = array.tile.arrayCols;
          for (let c = 0; c < array.programmed.length; c++) {
            const p = pulses[offset + c];
            if (p !== 0) log.push(t.arrayBase + a, Math.floor(c / cols), c % cols, updates, p);
          }
          array.programmed.set(t.G.subarray(offset, offset + array.programmed.length));
        });
        runner.refresh(t.m);
      }
      totalPulses = setPulses + resetPulses;
      updates++;
      seen += b.size;
      const point: InsituPoint = { samples: seen, trainAccuracy: grads.correct / b.size, loss: grads.loss, pulses: totalPulses, energyPJ: energyNow() };
      if (opts.evalSplit && (seen >= nextEval || seen === total)) {
        point.testAccuracy = testAt();
        while (nextEval <= seen) nextEval += evalEvery;
      }
      curve.push(point);
      opts.onProgress?.({ samples: seen, total, trainAccuracy: point.trainAccuracy, pulses: totalPulses });
    }
  }
  const pulsesPerCell = new Map<string, Int32Array>();
  for (const t of trained) for (const { array, offset } of t.arrays) pulsesPerCell.set(array.id, t.counts.slice(offset, offset + array.programmed.length));
  return {
    layer: m.name,
    layers: trained.map((t) => t.m.name),
    rule,
    curve,
    pulsesPerCell,
    pulseLog: log.build(),
    totalPulses,
    setPulses,
    resetPulses,
    updates,
    cellReads,
    samples,
    imagesSeen: seen,
    seconds: (performance.now() - t0) / 1000,
    options: { samples, epochs, batchSize, lr, rule, threshold, seed, momentum, transferEvery, readEvery, oracle, layers: which },
  };
}

/**
 * Where each weight of a trained layer lies in its cells (flat over its arrays): weight i (its
 * index in the rows x outputs matrix) is plus[i] - minus[i]: G+ and G- of a differential pair
 * (columns 2j and 2j + 1), or its cell and the row's reference cell (the array's last column).
 * The update's split, the transposed read and the pair-aware rule all go through it.
 */
interface LayerCells {
  differential: boolean;
  weight: Int32Array;
  plus: Int32Array;
  minus: Int32Array;
}

function layerCells(m: MappedLayer, arrays: { array: CrossbarArray; offset: number }[]): LayerCells {
  const differential = m.scheme === 'differential';
  const weight: number[] = [];
  const plus: number[] = [];
  const minus: number[] = [];
  for (const { array, offset } of arrays) {
    const { rowStart, rows, outStart, outs, arrayCols } = array.tile;
    for (let r = 0; r < rows; r++) {
      const c = offset + r * arrayCols;
      for (let j = 0; j < outs; j++) {
        weight.push((rowStart + r) * m.outputs + outStart + j);
        plus.push(differential ? c + 2 * j : c + j);
        minus.push(differential ? c + 2 * j + 1 : c + arrayCols - 1);
      }
    }
  }
  return { differential, weight: Int32Array.from(weight), plus: Int32Array.from(plus), minus: Int32Array.from(minus) };
}

/** One layer in-situ training trains: its cells (flat over its arrays), their state and controller. */
interface TrainedLayer {
  index: number;
  m: MappedLayer;
  instances: DeviceInstances;
  arrays: { array: CrossbarArray; offset: number }[];
  /** The cells' conductances (the truth; the controller has its estimate). */
  G: Float32Array;
  /** Pulses per cell so far. */
  counts: Int32Array;
  /** Scratch: the wanted change of each cell this update. */
  dG: Float32Array;
  /** Where each weight lies in the cells. */
  cells: LayerCells;
  /** Index of its first array in the pulse log's array list. */
  arrayBase: number;
  controller: PulseController;
}

/**
 * The weight matrix (rows x outputs, row-major) of a trained layer as a transposed read of its
 * arrays sees it: every cell read once (read noise), w = weightScale (G+ - G-) of a differential
 * pair, weightScale (G - G_ref) against the row's reference cell (the array's last column).
 */
function readWeights(t: TrainedLayer, cfg: DeviceConfig, rng: SeededRandom): Float32Array {
  const g = readConductance(t.G, cfg, rng);
  const W = new Float32Array(t.m.rows * t.m.outputs);
  const ws = t.m.weightScale;
  const { weight, plus, minus } = t.cells;
  for (let i = 0; i < weight.length; i++) W[weight[i]] = ws * (g[plus[i]] - g[minus[i]]);
  return W;
}

/**
 * Applies a pulse plan (pulses.csv of an `insitu` run, or InsituResult.pulseLog) to the layers it
 * names (those an in-situ run trained: the last FC layer, or more with `layers`) of `net` from
 * their current programmed state, through the device model with the pulse noise of in-situ seed
 * `seed`: from the state the run started from, it gives the run's tuned conductances (the same
 * cells: their instances come from the mapping seed; the same pulses, batch by batch, layer by
 * layer and cells in array order; the same noise draws). Changes the arrays' `programmed` in
 * place. `source` names the plan in errors (an unknown array, a cell outside its array).
 */
export function replayInsituPulses(net: CrossbarNetwork, log: PulseLog, seed: number, source = 'pulse plan'): void {
  const dense = net.steps.map((s) => s.mapped).filter((m): m is MappedLayer => m !== null && m.kind === 'dense');
  if (dense.length === 0) insituLayer(net); // its error: no layer in-situ training trains
  const layers = dense.map((m) => {
    const { instances, arrays } = deviceInstancesOf(net, m, 0);
    const G = new Float32Array(instances.count);
    for (const { array, offset } of arrays) G.set(array.programmed, offset);
    return { m, instances, arrays, G, pulses: new Int32Array(instances.count), used: false };
  });
  const byId = new Map(layers.flatMap((l, k) => l.arrays.map((a) => [a.array.id, { ...a, layer: k }] as const)));
  const place = log.arrayIds.map((id) => {
    const a = byId.get(id);
    if (!a) throw new FileFormatError(source, `array '${id}' is not an array of layer ${dense.map((m) => m.name).join(', ')} (${layers.flatMap((l) => l.arrays.map((x) => x.array.id)).join(', ')})`);
    layers[a.layer].used = true;
    return a;
  });
  const rng = new SeededRandom(seed).fork('insitu').fork('pulses');
  let i = 0;
  while (i < log.length) {
    const batch = log.batch[i];
    for (const l of layers) l.pulses.fill(0);
    for (; i < log.length && log.batch[i] === batch; i++) {
      const { array, offset, layer } = place[log.array[i]];
      const r = log.row[i];
      const c = log.col[i];
      if (r >= array.tile.rows || c >= array.tile.arrayCols) {
        throw new FileFormatError(source, `entry ${i + 1}: cell (${r}, ${c}) is outside array '${array.id}' (${array.tile.rows}x${array.tile.arrayCols})`);
      }
      layers[layer].pulses[offset + r * array.tile.arrayCols + c] += log.count[i];
    }
    for (const l of layers) if (l.used) applyPulses(l.G, l.pulses, net.device, l.instances, rng);
  }
  for (const l of layers) {
    if (!l.used) continue;
    for (const { array, offset } of l.arrays) array.programmed.set(l.G.subarray(offset, offset + array.programmed.length));
  }
}

function evaluateWith(runner: CrossbarRunner, split: Split, imageShape: [number, number, number], numClasses: number): number {
  let correct = 0;
  for (const b of batchesOf(split, { batchSize: 500, numClasses })) {
    const hits = tf.tidy(() => {
      const x = tf.tensor(b.x, [b.size, ...imageShape]);
      const out = runner.run(x);
      return tf.sum(tf.cast(tf.equal(tf.argMax(out, -1), tf.tensor1d(b.labels, 'int32')), 'float32')).dataSync()[0];
    });
    correct += hits;
  }
  return split.count ? correct / split.count : NaN;
}
