// Chen et al., Neural Networks 144 (2021): a BNN (+-1 weights and activations) on crossbars whose
// input ports each see one voltage sign, with BatchNorm and binarization merged into one
// comparator per column. The bnn of the registry is trained against the chen2021 device, mapped
// onto chen2021 arrays (the +-1 inputs of the binary layers become 0/1 voltages plus a per-column
// offset: src/mapping/schemes.ts; BN + sign become comparator thresholds: src/crossbar/comparator.ts)
// and evaluated through them; and once more onto the ideal device, where the fixed-sign path must
// give the software accuracy exactly.
//
// The check of the formulation (S + algebra, DESIGN.md): for x in {-1, +1}, x = 2b - 1 with b in
// {0, 1}, so w.x = 2 (w.b) - sum w. For every binary layer that takes +-1 inputs, the +-1 sums of
// the software model's real activations on test images are computed directly and the fixed-sign
// way, and compared (both are sums of +-1 products: equal exactly).
import { tf } from '../../src/tf';
import { loadDeviceConfig } from '../../src/device/config';
import { firstSamples, batchesOf } from '../../src/data/batches';
import { constantSignDot } from '../../src/mapping/schemes';
import type { CrossbarNetwork } from '../../src/crossbar/network';
import { QuantKernelLayer } from '../../layers/quant_base';
import { trackCounts } from '../progress';
import { trainModel, mapAndProgram, evaluateTransfer, releaseRuntime } from '../pipeline';
import { StudyOptions, StudyHooks, ReproResult, ReproRow, accuracyRow, makeResult, secondsSince, startStudy, studyTraining, NOT_STATED } from './common';
import type { Dataset } from '../../src/data/datasets';

export interface ChenSizes {
  trainSamples?: number;
  epochs: number;
  testSamples?: number;
  /** Test images whose +-1 activations the fixed-sign check uses. */
  checkSamples: number;
  arrayRows: number;
  arrayCols: number;
}

export const CHEN_FULL: ChenSizes = { epochs: 5, checkSamples: 200, arrayRows: 128, arrayCols: 128 };
export const CHEN_QUICK: ChenSizes = { trainSamples: 20000, epochs: 1, testSamples: 2000, checkSamples: 50, arrayRows: 128, arrayCols: 128 };

export interface ChenOptions extends StudyOptions {
  sizes?: Partial<ChenSizes>;
}

/** The fixed-sign check of one layer. */
export interface FixedSignCheck {
  layer: string;
  kind: 'conv2d' | 'dense';
  /** Sums compared (samples x output positions x channels). */
  sums: number;
  /** max |fixed-sign sum - +-1 sum|, and the largest |+-1 sum| for scale. */
  maxAbsDifference: number;
  maxAbsSum: number;
}

/**
 * For every mapped layer of `net` that takes +-1 inputs: its inputs on `samples` test images
 * (the software model's activations), the +-1 sums x.W and the fixed-sign sums 2 (b.W) - offset
 * (dense: src/mapping/schemes.ts constantSignDot; conv: the same on every patch, the offset being
 * the sum of the weights over the taps inside the image), compared.
 */
export function checkFixedSign(net: CrossbarNetwork, data: Dataset, samples: number): FixedSignCheck[] {
  const model = net.model;
  const targets = net.layers.filter((m) => m.inputEncoding === 'signedBinary');
  if (!targets.length) return [];
  const split = firstSamples(data.test, Math.min(samples, data.test.count));
  const batch = [...batchesOf(split, { batchSize: split.count, numClasses: data.numClasses })][0];
  const out: FixedSignCheck[] = [];
  tf.tidy(() => {
    const x0 = tf.tensor(batch.x, [batch.size, ...data.imageShape]);
    for (const m of targets) {
      const layer = model.getLayer(m.layerName);
      const inputOf = tf.model({ inputs: model.inputs, outputs: layer.input as tf.SymbolicTensor });
      const x = inputOf.predict(x0) as tf.Tensor;
      const kernel = layer instanceof QuantKernelLayer ? layer.quantizedKernel() : (layer.getWeights()[0] as tf.Tensor);
      let pm: Float32Array;
      let fixed: Float32Array | Float64Array;
      if (m.kind === 'conv2d') {
        const pad = (layer.getConfig().padding as 'same' | 'valid') ?? 'valid';
        const strides = (layer.getConfig().strides as [number, number]) ?? [1, 1];
        const k4 = kernel as tf.Tensor4D;
        const x4 = x as tf.Tensor4D;
        pm = tf.conv2d(x4, k4, strides, pad).dataSync() as Float32Array;
        const b = tf.cast(tf.greater(x4, 0), 'float32') as tf.Tensor4D;
        // offset at each position: the weights over the taps inside the image
        const offset = tf.conv2d(tf.onesLike(x4), k4, strides, pad);
        fixed = tf.sub(tf.mul(tf.conv2d(b, k4, strides, pad), 2), offset).dataSync() as Float32Array;
      } else {
        const rows = kernel.shape[0];
        const outs = kernel.shape[1];
        const xf = x.reshape([batch.size, rows]);
        pm = tf.matMul(xf, kernel as tf.Tensor2D).dataSync() as Float32Array;
        fixed = constantSignDot(xf.dataSync(), batch.size, kernel.dataSync(), rows, outs as number);
      }
      let maxDiff = 0;
      let maxAbs = 0;
      for (let i = 0; i < pm.length; i++) {
        maxDiff = Math.max(maxDiff, Math.abs(fixed[i] - pm[i]));
        maxAbs = Math.max(maxAbs, Math.abs(pm[i]));
      }
      out.push({ layer: m.name, kind: m.kind, sums: pm.length, maxAbsDifference: maxDiff, maxAbsSum: maxAbs });
    }
  });
  return out;
}

export async function reproduceChen2021(opts: ChenOptions = {}, hooks: StudyHooks = {}): Promise<ReproResult> {
  const { t0, say, sizes, seed, dataset, backend } = await startStudy<ChenSizes>('chen2021', opts, hooks, { quick: CHEN_QUICK, full: CHEN_FULL });
  const device = loadDeviceConfig('chen2021');
  say(`[1/3] offline training of bnn against chen2021 (${sizes.trainSamples ?? 'all'} images, ${sizes.epochs} epoch(s))`);
  const { metrics, model, data } = await trainModel(
    studyTraining('bnn', { dataset, seed }, sizes, { device }),
    { backend },
    { onInfo: say, progress: hooks.progress },
  );
  try {
    const mapping = { arrayRows: sizes.arrayRows, arrayCols: sizes.arrayCols, seed };
    say(`[2/3] mapping onto chen2021 arrays (fixed-sign inputs, comparator neurons), evaluation`);
    const net = mapAndProgram(model, device, mapping);
    let arrays: number;
    let checks: FixedSignCheck[];
    let layers: { layer: string; inputEncoding: string; neuron: string; comparator: boolean }[];
    try {
      arrays = trackCounts(hooks.progress, 'chen2021 arrays', (onProgress) => evaluateTransfer(net, data, { seed, onProgress })).accuracy;
      layers = net.layers.map((m) => ({ layer: m.name, inputEncoding: m.inputEncoding, neuron: m.neuron, comparator: !!m.comparator }));
      checks = checkFixedSign(net, data, sizes.checkSamples);
    } finally {
      releaseRuntime(net);
    }
    say(`[3/3] the same network on the ideal device (the fixed-sign path without device errors)`);
    const ideal = mapAndProgram(model, loadDeviceConfig('ideal'), mapping);
    let idealAcc: number;
    try {
      idealAcc = trackCounts(hooks.progress, 'ideal arrays', (onProgress) => evaluateTransfer(ideal, data, { seed, onProgress })).accuracy;
    } finally {
      releaseRuntime(ideal);
    }
    const maxDiff = checks.reduce((a, c) => Math.max(a, c.maxAbsDifference), 0);
    const sums = checks.reduce((a, c) => a + c.sums, 0);
    const rows: ReproRow[] = [
      accuracyRow('software (offline, device-aware)', metrics.testAccuracy, null),
      accuracyRow('chen2021 arrays: fixed-sign inputs, BN + sign as comparators', arrays, null),
      accuracyRow('ideal device: the same fixed-sign path without device errors', idealAcc, null, '', { note: 'equals the software accuracy where the formulation is exact' }),
      {
        quantity: `fixed-sign sums vs +-1 sums: max |difference| (${sums} sums, layers ${checks.map((c) => c.layer).join(', ')})`,
        kind: 'number',
        value: maxDiff,
        published: 0,
        publishedText: '0 (w.x = 2 w.b - sum w)',
        source: 'S + algebra',
      },
    ];
    return makeResult('chen2021', {
      quick: !!opts.quick,
      seed,
      dataset,
      backend: backend.name,
      settings: {
        model: 'bnn',
        device: device.name,
        trainSamples: metrics.trainSamples,
        epochs: sizes.epochs,
        testSamples: data.test.count,
        checkSamples: Math.min(sizes.checkSamples, data.test.count),
        array: `${sizes.arrayRows}x${sizes.arrayCols}`,
      },
      rows,
      figures: [
        {
          id: 'accuracies',
          title: 'bnn: software, chen2021 arrays, ideal arrays',
          xLabel: 'where it runs',
          yLabel: 'test accuracy',
          yPercent: true,
          xCategories: ['software', 'chen2021 arrays', 'ideal arrays'],
          series: [{ label: 'this run', points: [metrics.testAccuracy, arrays, idealAcc].map((y, x) => ({ x, y })) }],
        },
      ],
      details: { layers, fixedSignChecks: checks },
      notes: [
        `The abstract gives no accuracy (${NOT_STATED}); the bnn topology is inferred (models/bnn.ts).`,
        'The first layer takes real-valued pixels (as in BinaryNet), so only the later layers have +-1 inputs.',
        'The chen2021 device values (window, variation, noise) are assumed (src/device/presets.ts).',
      ],
      seconds: secondsSince(t0),
    });
  } finally {
    model.dispose();
  }
}
