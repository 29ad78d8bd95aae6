// Lammie, Krestinskaya, James, Azghadi, ICECS 2019: binarized memristive networks under R_ON /
// R_OFF variation, and its mitigation by variation-aware training. The bmcnn of the registry
// ('fully-binary' variant: binary weights in every layer, binarized input and sign activations, so
// every layer sits on binary devices) is trained twice with the same seed: plainly (no device
// noise) and variation-aware (against the chen2021 binary device with its device-to-device
// variation set to `trainSigma`: the training noise is the device's view, src/device/training_noise.ts).
// Both are programmed again and again onto chen2021 arrays at each level of d2d variation
// (variation.rOnSigma = variation.rOffSigma = sigma: the sweep alias `d2d`), new device instances
// each trial, and evaluated through the arrays: accuracy vs variation, with and without.
//
// The abstract gives no accuracies, variation levels or topology (DESIGN.md section 1): every
// published cell of the table says so, and the levels are chosen here.
import { ConfigError } from '../../src/errors';
import { loadDeviceConfig } from '../../src/device/config';
import { planSweep, sweepResultOf, SweepPoint } from '../../src/sweep';
import { trainModel } from '../pipeline';
import { runProgrammings } from './park2024';
import { StudyOptions, StudyHooks, ReproResult, ReproRow, accuracyRow, makeResult, secondsSince, startStudy, studyTraining, NOT_STATED } from './common';

export interface LammieSizes {
  trainSamples?: number;
  epochs: number;
  testSamples?: number;
  trials: number;
  /** d2d variation levels: lognormal sigma of R_ON and of R_OFF. */
  sigmas: number[];
  /** The d2d sigma variation-aware training draws with. */
  trainSigma: number;
  arrayRows: number;
  arrayCols: number;
}

export const LAMMIE_SIGMAS = [0, 0.1, 0.2, 0.3, 0.4, 0.5];
export const LAMMIE_FULL: LammieSizes = { epochs: 3, trials: 10, sigmas: LAMMIE_SIGMAS, trainSigma: 0.3, arrayRows: 128, arrayCols: 128 };
export const LAMMIE_QUICK: LammieSizes = { trainSamples: 10000, epochs: 1, testSamples: 1000, trials: 3, sigmas: [0, 0.1, 0.2, 0.3, 0.5], trainSigma: 0.3, arrayRows: 128, arrayCols: 128 };

export interface LammieOptions extends StudyOptions {
  sizes?: Partial<LammieSizes>;
}

export async function reproduceLammie2019(opts: LammieOptions = {}, hooks: StudyHooks = {}): Promise<ReproResult> {
  const { t0, say, sizes, seed, dataset, backend } = await startStudy<LammieSizes>('lammie2019', opts, hooks, { quick: LAMMIE_QUICK, full: LAMMIE_FULL });
  if (!sizes.sigmas.length || sizes.sigmas.some((s) => !(s >= 0 && s <= 2))) throw new ConfigError('sigmas', `must be in [0, 2], got ${sizes.sigmas.join(', ')}`);
  if (!(sizes.trainSigma >= 0 && sizes.trainSigma <= 2)) throw new ConfigError('trainSigma', `must be in [0, 2], got ${sizes.trainSigma}`);
  const device = loadDeviceConfig('chen2021');
  const sweepOpts = { model: '(trained in memory)', device: 'chen2021', vary: [`d2d=${sizes.sigmas.join(',')}`], trials: sizes.trials, seed, dataset, arrayRows: sizes.arrayRows, arrayCols: sizes.arrayCols, insitu: null };
  const plan = planSweep(sweepOpts);

  const runs: { aware: boolean; software: number; points: SweepPoint[] }[] = [];
  let step = 0;
  for (const aware of [false, true]) {
    const what = aware ? `variation-aware (chen2021, d2d ${sizes.trainSigma})` : 'plain (no device noise)';
    say(`[${++step}/4] offline training of bmcnn (fully-binary), ${what}`);
    const { metrics, model, data } = await trainModel(
      studyTraining('bmcnn', { dataset, seed }, sizes, {
        variant: 'fully-binary',
        ...(aware ? { device, variation: { rOnSigma: sizes.trainSigma, rOffSigma: sizes.trainSigma } } : {}),
      }),
      { backend },
      { onInfo: say, progress: hooks.progress },
    );
    try {
      say(`[${++step}/4] ${plan.tasks.length} programmings onto chen2021 arrays: ${sizes.trials} at each d2d level`);
      const outcomes = await runProgrammings(model, data, backend, plan.tasks, { arrayRows: sizes.arrayRows, arrayCols: sizes.arrayCols }, hooks.progress, aware ? 'variation-aware' : 'plain');
      const sweep = sweepResultOf(sweepOpts, plan, { testCount: data.test.count, backend: backend.name, workers: 1, mode: 'in-process', seconds: 0 }, outcomes);
      runs.push({ aware, software: metrics.testAccuracy, points: sweep.points });
    } finally {
      model.dispose();
    }
  }
  const [plain, aware] = runs;
  const rows: ReproRow[] = [
    accuracyRow('software, plain training', plain.software, null),
    accuracyRow(`software, variation-aware training (d2d ${sizes.trainSigma})`, aware.software, null),
  ];
  sizes.sigmas.forEach((s, i) => {
    for (const r of runs) {
      rows.push({
        quantity: `arrays, d2d ${s}, ${r.aware ? 'variation-aware' : 'plain'} (mean +- std over ${sizes.trials})`,
        kind: 'accuracy',
        value: r.points[i].before.mean,
        spread: r.points[i].before.std,
        published: null,
        publishedText: NOT_STATED,
      });
    }
  });
  const series = runs.map((r) => ({
    label: r.aware ? `variation-aware training (d2d ${sizes.trainSigma})` : 'plain training',
    dashed: !r.aware,
    points: r.points.map((p) => ({ x: p.params.d2d as number, y: p.before.mean, ...(p.before.std !== null ? { err: p.before.std } : {}) })),
  }));
  return makeResult('lammie2019', {
    quick: !!opts.quick,
    seed,
    dataset,
    backend: backend.name,
    settings: {
      model: 'bmcnn (fully-binary)',
      device: 'chen2021',
      trainSamples: sizes.trainSamples ?? 'all',
      epochs: sizes.epochs,
      testSamples: sizes.testSamples ?? 'all',
      trials: sizes.trials,
      d2d: sizes.sigmas.join(', '),
      trainSigma: sizes.trainSigma,
      array: `${sizes.arrayRows}x${sizes.arrayCols}`,
    },
    rows,
    figures: [
      {
        id: 'variation',
        title: 'bmcnn on chen2021 arrays: accuracy vs R_ON/R_OFF variation',
        xLabel: 'd2d variation (lognormal sigma of R_ON and R_OFF)',
        yLabel: 'test accuracy',
        yPercent: true,
        series,
        caption: `mean +- std over ${sizes.trials} programmings a point`,
      },
    ],
    details: { plain: { software: plain.software, points: plain.points }, variationAware: { software: aware.software, trainSigma: sizes.trainSigma, points: aware.points } },
    notes: [
      'The abstract gives no accuracies, variation levels or topology: the levels are chosen here, and bmcnn is inferred (models/bmcnn.ts).',
      'Variation-aware training draws the chen2021 device noise (the device view of src/device/training_noise.ts) with d2d set to the training sigma.',
      'The chen2021 binary-device values (window, noise) are assumed (src/device/presets.ts).',
    ],
    seconds: secondsSince(t0),
  });
}
