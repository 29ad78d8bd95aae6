// Shi et al. (Kuzum group), Neuromorph. Comput. Eng. 3 (2023): VGG-16 conv layers on Ag-CBRAM
// crossbars with a Mott (VO2) ReLU neuron at each column, on CIFAR-10. The vgg16 of the registry
// (the classic topology: conv 3x3 + ReLU, no batch norm) is built (and, with trainSamples > 0,
// trained offline against the cbram device), its first `convLayers` conv layers (with the pools
// between them) are mapped onto cbram arrays (src/device/presets.ts `cbram`: neuron 'relu', so the
// ReLU of every conv layer is the column neuron), and CIFAR-10 test images are run through them
// layer by layer (src/crossbar/inference.ts crossbarRunner), each layer taking the arrays' output
// of the layer before it. Per conv layer: the Pearson correlation of its feature maps (after the
// ReLU neuron) with the software feature maps of the same images, and the relative RMS error.
// Without --quick the whole network is also mapped and its test accuracy measured on the arrays.
//
// The abstract gives no figure to compare with (DESIGN.md section 1): every published cell says so.
import { tf } from '../../src/tf';
import { ConfigError } from '../../src/errors';
import { loadDeviceConfig } from '../../src/device/config';
import { loadDataset, Dataset } from '../../src/data/datasets';
import { batchesOf, firstSamples } from '../../src/data/batches';
import { calibrateCrossbar, crossbarRunner } from '../../src/crossbar/inference';
import { buildModel } from '../../models/registry';
import { evaluateModel } from '../offline';
import { trainModel, mapAndProgram, evaluateTransfer, releaseRuntime } from '../pipeline';
import { trackCounts } from '../progress';
import { StudyOptions, StudyHooks, ReproResult, ReproRow, accuracyRow, makeResult, secondsSince, startStudy, studyTraining, NOT_STATED } from './common';

export interface ShiSizes {
  /** Offline training images (0: the network at its seeded initial weights) and epochs. */
  trainSamples: number;
  epochs: number;
  /** Conv layers mapped for the feature-map comparison (VGG-16 has 13). */
  convLayers: number;
  /** Test images run through the arrays for the correlations. */
  mapImages: number;
  /** Training images that calibrate the DAC/ADC ranges. */
  calibrationSamples: number;
  /** Whole-network accuracy on the arrays: test images (0: not measured). */
  accuracySamples: number;
  arrayRows: number;
  arrayCols: number;
}

export const SHI_FULL: ShiSizes = { trainSamples: 2000, epochs: 1, convLayers: 13, mapImages: 100, calibrationSamples: 100, accuracySamples: 1000, arrayRows: 128, arrayCols: 128 };
export const SHI_QUICK: ShiSizes = { trainSamples: 0, epochs: 1, convLayers: 7, mapImages: 50, calibrationSamples: 20, accuracySamples: 0, arrayRows: 128, arrayCols: 128 };

export interface ShiOptions extends StudyOptions {
  sizes?: Partial<ShiSizes>;
}

/** Pearson correlation of two equally long vectors (NaN where one is constant). */
export function pearson(a: ArrayLike<number>, b: ArrayLike<number>): number {
  const n = a.length;
  let ma = 0;
  let mb = 0;
  for (let i = 0; i < n; i++) {
    ma += a[i];
    mb += b[i];
  }
  ma /= n;
  mb /= n;
  let sab = 0;
  let saa = 0;
  let sbb = 0;
  for (let i = 0; i < n; i++) {
    const da = a[i] - ma;
    const db = b[i] - mb;
    sab += da * db;
    saa += da * da;
    sbb += db * db;
  }
  return saa > 0 && sbb > 0 ? sab / Math.sqrt(saa * sbb) : NaN;
}

export interface LayerCorrelation {
  layer: string;
  /** Output shape [h, w, c]. */
  shape: number[];
  correlation: number;
  /** ||crossbar - software|| / ||software|| over all values. */
  relativeError: number;
  /** Fraction of outputs where the ReLU neuron and the software ReLU agree on zero vs non-zero. */
  zeroAgreement: number;
}

export async function reproduceShi2023(opts: ShiOptions = {}, hooks: StudyHooks = {}): Promise<ReproResult> {
  const { t0, say, sizes, seed, dataset, backend } = await startStudy<ShiSizes>('shi2023', opts, hooks, { quick: SHI_QUICK, full: SHI_FULL });
  if (!Number.isInteger(sizes.convLayers) || sizes.convLayers < 1 || sizes.convLayers > 13) throw new ConfigError('convLayers', `must be 1..13, got ${sizes.convLayers}`);
  const device = loadDeviceConfig('cbram');
  const data: Dataset = loadDataset(dataset);
  let model: tf.LayersModel;
  let software: number | null = null;
  if (sizes.trainSamples > 0) {
    say(`[1/3] offline training of vgg16 against cbram (${sizes.trainSamples} images, ${sizes.epochs} epoch(s))`);
    const r = await trainModel(
      studyTraining('vgg16', { dataset, seed }, { epochs: sizes.epochs, trainSamples: Math.min(sizes.trainSamples, data.train.count) }, { device }),
      { backend, data },
      { onInfo: say, progress: hooks.progress },
    );
    model = r.model;
    software = r.metrics.testAccuracy;
  } else {
    say('[1/3] vgg16 at its seeded initial weights (no training with these sizes)');
    model = buildModel('vgg16', { seed, inputShape: data.imageShape, numClasses: data.numClasses });
  }
  try {
    const convs = model.layers.filter((l) => l.getClassName() === 'QuantConv2D' || l.getClassName() === 'Conv2D').slice(0, sizes.convLayers);
    const last = convs[convs.length - 1];
    const front = tf.model({ inputs: model.inputs, outputs: last.output as tf.SymbolicTensor, name: 'vgg16_front' });
    say(`[2/3] mapping ${convs.length} conv layers (${convs[0].name} .. ${last.name}) onto cbram ${sizes.arrayRows}x${sizes.arrayCols} arrays, ReLU neurons at the columns`);
    const net = mapAndProgram(front, device, { arrayRows: sizes.arrayRows, arrayCols: sizes.arrayCols, seed });
    const probes = new Set(convs.map((l) => l.name));
    const sums = new Map<string, { sw: Float32Array[]; xb: Float32Array[]; shape: number[] }>();
    try {
      const cal = firstSamples(data.train, Math.min(sizes.calibrationSamples, data.train.count));
      const calX = [...batchesOf(cal, { batchSize: cal.count, numClasses: data.numClasses })][0];
      // not in a tidy: the runtime (effective weights, ranges) made here must outlive it
      const xc = tf.tensor(calX.x, [calX.size, ...data.imageShape]);
      try {
        calibrateCrossbar(net, xc, { seed });
      } finally {
        xc.dispose();
      }
      const runner = crossbarRunner(net, { seed });
      const swModel = tf.model({ inputs: model.inputs, outputs: convs.map((l) => l.output as tf.SymbolicTensor) });
      const images = firstSamples(data.test, Math.min(sizes.mapImages, data.test.count));
      const bar = hooks.progress;
      bar?.start('feature maps', images.count, 'images');
      let done = 0;
      try {
        for (const b of batchesOf(images, { batchSize: 10, numClasses: data.numClasses })) {
          const x = tf.tensor(b.x, [b.size, ...data.imageShape]);
          const sw = swModel.predict(x) as tf.Tensor[];
          let h: tf.Tensor = x;
          try {
            for (let i = 0; i < net.steps.length; i++) {
              const next = runner.run(h, i, i + 1);
              if (h !== x) h.dispose();
              h = next;
              const name = net.steps[i].layer.name;
              if (probes.has(name)) {
                const k = convs.findIndex((l) => l.name === name);
                const e = sums.get(name) ?? { sw: [], xb: [], shape: (h.shape as number[]).slice(1) };
                e.sw.push(sw[k].dataSync() as Float32Array);
                e.xb.push(h.dataSync() as Float32Array);
                sums.set(name, e);
              }
            }
          } finally {
            if (h !== x) h.dispose();
            x.dispose();
            for (const t of sw) t.dispose();
          }
          done += b.size;
          bar?.update(done, {});
          await new Promise((r) => setImmediate(r));
        }
      } finally {
        bar?.stop();
      }
    } finally {
      releaseRuntime(net);
    }
    const layers: LayerCorrelation[] = convs.map((l) => {
      const e = sums.get(l.name)!;
      const cat = (parts: Float32Array[]) => {
        const out = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
        let o = 0;
        for (const p of parts) {
          out.set(p, o);
          o += p.length;
        }
        return out;
      };
      const a = cat(e.sw);
      const b = cat(e.xb);
      let se = 0;
      let ss = 0;
      let agree = 0;
      for (let i = 0; i < a.length; i++) {
        se += (b[i] - a[i]) ** 2;
        ss += a[i] * a[i];
        if (a[i] > 0 === b[i] > 0) agree++;
      }
      return { layer: l.name, shape: e.shape, correlation: pearson(a, b), relativeError: ss > 0 ? Math.sqrt(se / ss) : NaN, zeroAgreement: agree / a.length };
    });
    for (const c of layers) say(`${c.layer}: correlation ${c.correlation.toFixed(4)}, relative error ${c.relativeError.toFixed(4)}`);

    let arraysAcc: number | null = null;
    let accCount = 0;
    if (sizes.accuracySamples > 0) {
      say(`[3/3] the whole network on cbram arrays: test accuracy (${Math.min(sizes.accuracySamples, data.test.count)} images)`);
      const test = firstSamples(data.test, Math.min(sizes.accuracySamples, data.test.count));
      const sub: Dataset = { ...data, test };
      if (software === null) software = evaluateModel(model, test, data.imageShape, data.numClasses, 100).accuracy;
      const whole = mapAndProgram(model, device, { arrayRows: sizes.arrayRows, arrayCols: sizes.arrayCols, seed });
      try {
        arraysAcc = trackCounts(hooks.progress, 'whole network on arrays', (onProgress) => evaluateTransfer(whole, sub, { seed, calibrationSamples: sizes.calibrationSamples, batchSize: 50, onProgress })).accuracy;
        accCount = test.count;
      } finally {
        releaseRuntime(whole);
      }
    } else {
      say('[3/3] whole-network accuracy: not measured with these sizes');
    }
    const skipped = 'not measured with --quick (mapping all of VGG-16 takes minutes)';
    const rows: ReproRow[] = layers.map((c) => ({
      quantity: `${c.layer} feature maps: correlation arrays vs software`,
      kind: 'correlation',
      value: c.correlation,
      published: null,
      publishedText: NOT_STATED,
      note: `relative error ${c.relativeError.toFixed(4)}, ReLU zero/non-zero agreement ${(100 * c.zeroAgreement).toFixed(2)}%`,
    }));
    rows.push(
      accuracyRow('software test accuracy', software, null, '', software === null ? { note: skipped } : { note: `${sizes.trainSamples} training images, ${sizes.epochs} epoch(s)` }),
      accuracyRow('whole network on cbram arrays: test accuracy', arraysAcc, null, '', arraysAcc === null ? { note: skipped } : { note: `${accCount} test images` }),
    );
    return makeResult('shi2023', {
      quick: !!opts.quick,
      seed,
      dataset,
      backend: backend.name,
      settings: {
        model: 'vgg16 (classic: conv + ReLU, no batch norm)',
        device: device.name,
        weights: sizes.trainSamples > 0 ? `trained: ${sizes.trainSamples} images, ${sizes.epochs} epoch(s)` : 'seeded initial weights (untrained)',
        convLayersMapped: convs.length,
        mapImages: Math.min(sizes.mapImages, data.test.count),
        calibrationSamples: sizes.calibrationSamples,
        accuracySamples: sizes.accuracySamples,
        array: `${sizes.arrayRows}x${sizes.arrayCols}`,
      },
      rows,
      figures: [
        {
          id: 'correlation',
          title: 'VGG-16 conv feature maps: cbram arrays vs software',
          xLabel: 'conv layer',
          yLabel: 'Pearson correlation',
          xCategories: layers.map((c) => c.layer),
          series: [{ label: 'correlation', points: layers.map((c, x) => ({ x, y: c.correlation })) }],
          caption: 'each layer takes the arrays output of the layer before it (errors accumulate)',
        },
      ],
      details: { layers },
      notes: [
        `The abstract gives no figure to compare with (${NOT_STATED}).`,
        'The cbram device values (window, levels, noise) are assumed (src/device/presets.ts): only "high ON/OFF" and "multi-level" are stated.',
        ...(sizes.trainSamples > 0 ? [] : ['With --quick the network keeps its seeded initial weights: the correlations measure the arrays, not a trained classifier.']),
      ],
      seconds: secondsSince(t0),
    });
  } finally {
    model.dispose();
  }
}
