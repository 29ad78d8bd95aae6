// Yao et al., Nature 577 (2020): the hybrid method on the five-layer mCNN. The stages of
// training/pipeline.ts: device-aware offline training of mcnn against the yao2020 device ->
// mapping onto 128x16 arrays (the paper's 2,048-cell arrays) and write-verify programming -> the
// accuracy right after transfer -> in-situ training of the last FC layer on its arrays (the
// library's default rule) -> the accuracy after it. Then the replicated (parallel) system: the same
// trained network mapped again with every conv layer on `replicas` replica groups (new device
// instances), its FC layer trained in situ the same way, evaluated on the arrays.
//
// Published (S2, DESIGN.md section 1): software 97.99%, after transfer 95.07%, after in-situ
// training 96.19%, replicated parallel system 95.83%.
import { loadDeviceConfig } from '../../src/device/config';
import { trackCounts } from '../progress';
import { trainModel, mapAndProgram, evaluateTransfer, runInsitu, releaseRuntime } from '../pipeline';
import { deriveSeed } from '../../src/random';
import { ConfigError } from '../../src/errors';
import { StudyOptions, StudyHooks, ReproResult, accuracyRow, makeResult, secondsSince, ReproFigure, startStudy, studyTraining } from './common';

export interface YaoSizes {
  /** Offline training: the first N MNIST training images (undefined: all 60,000) and epochs. */
  trainSamples?: number;
  epochs: number;
  /** The first N test images (undefined: all 10,000). */
  testSamples?: number;
  /** Distinct training images of in-situ training (Yao et al.: 10% of MNIST, 6,000). */
  insituSamples: number;
  /** Replica groups of every conv layer in the replicated system. */
  replicas: number;
  /** Array size (Yao et al.: 2,048-cell arrays of 128 x 16). */
  arrayRows: number;
  arrayCols: number;
  /** Test images of the in-situ learning curve's test points (0: none). */
  curveSamples: number;
}

export const YAO_FULL: YaoSizes = { epochs: 2, insituSamples: 6000, replicas: 2, arrayRows: 128, arrayCols: 16, curveSamples: 1000 };
export const YAO_QUICK: YaoSizes = { trainSamples: 30000, epochs: 1, testSamples: 2000, insituSamples: 3000, replicas: 2, arrayRows: 128, arrayCols: 16, curveSamples: 500 };

export interface YaoOptions extends StudyOptions {
  /** Overrides of single sizes (tests use tiny ones). */
  sizes?: Partial<YaoSizes>;
}

export async function reproduceYao2020(opts: YaoOptions = {}, hooks: StudyHooks = {}): Promise<ReproResult> {
  const { t0, say, sizes, seed, dataset, backend } = await startStudy<YaoSizes>('yao2020', opts, hooks, { quick: YAO_QUICK, full: YAO_FULL });
  if (!Number.isInteger(sizes.replicas) || sizes.replicas < 1) throw new ConfigError('replicas', `must be an integer >= 1, got ${sizes.replicas}`);
  const device = loadDeviceConfig('yao2020');

  say(`[1/5] offline training of mcnn against ${device.name} (${sizes.trainSamples ?? 'all'} images, ${sizes.epochs} epoch(s))`);
  const { metrics, model, data } = await trainModel(
    studyTraining('mcnn', { dataset, seed }, sizes, { device }),
    { backend },
    { onInfo: say, progress: hooks.progress },
  );
  try {
    const mapping = { arrayRows: sizes.arrayRows, arrayCols: sizes.arrayCols };
    const stages = (replicas: number, mapSeed: number, label: string) => {
      const net = mapAndProgram(model, device, { ...mapping, replicas, seed: mapSeed });
      try {
        const transferred = trackCounts(hooks.progress, `${label}: after transfer`, (onProgress) => evaluateTransfer(net, data, { seed: mapSeed, calibrationSamples: 500, onProgress }));
        say(`${label}: after transfer ${(100 * transferred.accuracy).toFixed(2)}%`);
        const insitu = runInsitu(
          net,
          data,
          { samples: sizes.insituSamples, seed: mapSeed, evalSamples: Math.min(sizes.curveSamples, data.test.count), noRecord: true },
          transferred.accuracy,
          null,
          { progress: hooks.progress },
        );
        say(`${label}: after in-situ training ${(100 * insitu.after).toFixed(2)}% (${insitu.result.rule} rule, ${insitu.result.totalPulses} pulses)`);
        return { transferred: transferred.accuracy, after: insitu.after, result: insitu.result, arrays: net.layers.reduce((n, l) => n + l.arrays.length, 0) };
      } finally {
        releaseRuntime(net);
      }
    };
    say(`[2-4/5] mapping onto ${sizes.arrayRows}x${sizes.arrayCols} arrays, transfer, in-situ training of the FC layer`);
    const single = stages(1, seed, 'one copy of every kernel');
    say(`[5/5] the replicated system: every conv layer on ${sizes.replicas} replica groups`);
    const replicated = stages(sizes.replicas, deriveSeed(seed, 'replicated'), `${sizes.replicas} replicas`);

    const curve = (r: typeof single.result) => r.curve.filter((p) => p.testAccuracy != null).map((p) => ({ x: p.samples, y: p.testAccuracy as number }));
    const figures: ReproFigure[] = [
      {
        id: 'accuracies',
        title: 'mcnn on yao2020 arrays: the stages of the hybrid method',
        xLabel: 'stage',
        yLabel: 'test accuracy',
        yPercent: true,
        xCategories: ['software', 'after transfer', 'after in-situ'],
        series: [
          { label: 'this run, one copy', points: [metrics.testAccuracy, single.transferred, single.after].map((y, x) => ({ x, y })) },
          { label: `this run, ${sizes.replicas} replicas`, points: [metrics.testAccuracy, replicated.transferred, replicated.after].map((y, x) => ({ x, y })) },
          { label: 'Yao et al. 2020 (S2)', dashed: true, points: [0.9799, 0.9507, 0.9619].map((y, x) => ({ x, y })) },
        ],
      },
    ];
    if (curve(single.result).length) {
      figures.push({
        id: 'insitu-curve',
        title: 'In-situ training of the FC layer: test accuracy on the arrays',
        xLabel: 'training images seen',
        yLabel: 'test accuracy',
        yPercent: true,
        series: [
          { label: 'one copy', points: curve(single.result) },
          { label: `${sizes.replicas} replicas`, points: curve(replicated.result) },
        ],
        hLines: [{ y: metrics.testAccuracy, label: 'software' }],
        caption: `test points on the first ${Math.min(sizes.curveSamples, data.test.count)} test images`,
      });
    }
    return makeResult('yao2020', {
      quick: !!opts.quick,
      seed,
      dataset,
      backend: backend.name,
      settings: {
        model: 'mcnn',
        device: device.name,
        trainSamples: metrics.trainSamples,
        epochs: sizes.epochs,
        testSamples: data.test.count,
        insituSamples: sizes.insituSamples,
        insituRule: single.result.rule,
        array: `${sizes.arrayRows}x${sizes.arrayCols}`,
        replicas: sizes.replicas,
      },
      rows: [
        accuracyRow('software (offline, device-aware)', metrics.testAccuracy, 97.99, 'S2'),
        accuracyRow('after transfer to the arrays', single.transferred, 95.07, 'S2'),
        accuracyRow('after in-situ training of the FC layer', single.after, 96.19, 'S2', { note: `${single.result.samples} images, ${single.result.rule} rule, ${single.result.totalPulses} pulses` }),
        accuracyRow(`replicated system (${sizes.replicas} replicas), after transfer`, replicated.transferred, null),
        accuracyRow(`replicated parallel system (${sizes.replicas} replicas), after in-situ training`, replicated.after, 95.83, 'S2', { note: `${replicated.arrays} arrays` }),
      ],
      figures,
      details: {
        single: { transferred: single.transferred, insitu: single.after, pulses: single.result.totalPulses, arrays: single.arrays, curve: single.result.curve },
        replicated: { replicas: sizes.replicas, transferred: replicated.transferred, insitu: replicated.after, pulses: replicated.result.totalPulses, arrays: replicated.arrays, curve: replicated.result.curve },
        trainSamplesPerSec: metrics.trainSamplesPerSec,
      },
      notes: [
        'The yao2020 device values the abstract does not give (window, pulse steps, noise) are assumed (src/device/presets.ts).',
        `Replica count ${sizes.replicas} is assumed: the abstract says kernels are replicated across arrays, not how many times.`,
        'The in-situ rule is the library default (training/pipeline.ts runInsitu); Yao et al. program a cell only where the wanted change passes a threshold.',
      ],
      seconds: secondsSince(t0),
    });
  } finally {
    model.dispose();
  }
}
