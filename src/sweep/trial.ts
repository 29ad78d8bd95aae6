// One trial of a sweep: program a new instance of the network onto crossbar arrays (new d2d
// variation, faults and write-verify noise, all from the trial's seed), evaluate it on the test
// split (read noise from the same seed), and with in-situ training, train the last FC layer on the
// arrays and evaluate again. The same code runs in the main thread (one worker) and in every worker
// thread of the pool, each with a TrialContext made once: the backend, the model and the dataset.
import * as path from 'path';
import { tf } from '../tf';
import { initBackend, BackendInfo, backendInfo } from '../backend';
import type { DeviceConfig } from '../device/config';
import { FileFormatError } from '../errors';
import { loadModel, MODEL_JSON } from '../model_io';
import { Dataset, loadDataset } from '../data/datasets';
import type { Scheme } from '../mapping/schemes';
import type { InsituRule } from '../../training/insitu_rules';
import { mapAndProgram, evaluateTransfer, runInsitu, releaseRuntime, insituSeedOf } from '../../training/pipeline';

/** In-situ training of the last FC layer after programming (training/insitu.ts). */
export interface InsituSettings {
  /** Training images used (default there: 6000, 10% of MNIST as in Yao et al.). */
  samples?: number;
  epochs?: number;
  lr?: number;
  rule?: InsituRule;
}

/** How every trial maps and evaluates (the same for all points and trials of a sweep). */
export interface TrialSettings {
  arrayRows: number;
  arrayCols: number;
  /** Replica groups of every conv layer. */
  replicas: number;
  /** Mapping scheme; default the device's. */
  scheme?: Scheme;
  /** Training samples that calibrate the DAC/ADC ranges (evaluateCrossbar), default 500. */
  calibrationSamples: number;
  /** Inference batch size, default 500. */
  batchSize: number;
  /** null: no in-situ training (the `after` accuracy is null). */
  insitu: InsituSettings | null;
}

/** What a trial context is made from: plain data, sent to every worker as it is. */
export interface TrialContextSpec {
  modelDir: string;
  /** Dataset spec (mnist, idx:DIR, cifar10:DIR). */
  dataset: string;
  /** The first N test samples (default all). */
  testSamples?: number;
  /** Backend name (--backend); default the automatic choice. */
  backend?: string;
  settings: TrialSettings;
}

export interface TrialContext {
  model: tf.LayersModel;
  data: Dataset;
  settings: TrialSettings;
  backend: BackendInfo;
  dispose(): void;
}

/** One trial to run: the device of its grid point and its seed. */
export interface TrialTask {
  /** Its place in the sweep's task list (results are gathered in this order). */
  index: number;
  device: DeviceConfig;
  seed: number;
}

export interface TrialOutcome {
  index: number;
  /** Accuracy right after programming, a fraction. */
  before: number;
  /** Accuracy after in-situ training, or null without. */
  after: number | null;
  seconds: number;
}

/**
 * Starts the backend (when `init`, or when none is running yet), loads the model and the dataset and
 * checks that they fit together.
 */
export async function createTrialContext(spec: TrialContextSpec, { init = false } = {}): Promise<TrialContext> {
  const backend = init || !backendInfo() ? await initBackend(spec.backend) : backendInfo()!;
  const { model } = await loadModel(spec.modelDir);
  try {
    const data = loadDataset(spec.dataset, { testSamples: spec.testSamples });
    const inShape = (model.inputs[0].shape.slice(1) as number[]).join('x');
    if (inShape !== data.imageShape.join('x')) {
      const file = spec.modelDir.endsWith('.json') ? spec.modelDir : path.join(spec.modelDir, MODEL_JSON);
      throw new FileFormatError(file, `the model takes ${inShape} inputs, dataset ${spec.dataset} has ${data.imageShape.join('x')}`);
    }
    return { model, data, settings: spec.settings, backend, dispose: () => model.dispose() };
  } catch (e) {
    model.dispose();
    throw e;
  }
}

/**
 * Runs one trial: mapAndProgram with the task's seed (device instances, faults, write-verify), then
 * evaluateTransfer on the test split (calibration on the first calibrationSamples training samples,
 * read noise seeded by the task's seed); with in-situ training, runInsitu (seed derived from the
 * task's) and a second evaluation, newly calibrated, with the same read-noise seed. The stages are
 * those of the hybrid method (training/pipeline.ts).
 */
export function runTrial(ctx: TrialContext, task: TrialTask, onPhase?: (phase: string) => void): TrialOutcome {
  const t0 = performance.now();
  const s = ctx.settings;
  // what the trial is doing, for a progress line while a long trial runs (a big network's
  // programming and calibration take minutes)
  const name = `trial ${task.index + 1}`;
  const say = onPhase ? (what: string, done: number, total: number) => onPhase(`${name}: ${what} ${Math.floor((100 * done) / Math.max(1, total))}%`) : undefined;
  const net = mapAndProgram(ctx.model, task.device, {
    arrayRows: s.arrayRows,
    arrayCols: s.arrayCols,
    replicas: s.replicas,
    scheme: s.scheme,
    seed: task.seed,
    ...(say ? { onProgress: (d: number, n: number) => say('programming', d, n) } : {}),
  });
  try {
    const evalOpts = {
      seed: task.seed,
      calibrationSamples: s.calibrationSamples,
      batchSize: s.batchSize,
      ...(say ? { onProgress: (d: number, n: number) => say('test', d, n), onCalibrationStep: (d: number, n: number) => say('calibration', d, n) } : {}),
    };
    const before = evaluateTransfer(net, ctx.data, evalOpts).accuracy;
    let after: number | null = null;
    if (s.insitu) {
      const progress = say && {
        total: 1,
        start(_label: string, total: number) {
          this.total = total;
        },
        update(done: number) {
          say('in situ', done, this.total);
        },
        stop() {},
      };
      const r = runInsitu(
        net,
        ctx.data,
        {
          ...s.insitu,
          seed: insituSeedOf(task.seed),
          evalSamples: 0,
          recalibrate: true,
          // the evaluation after training: the trial's read-noise seed, as before training
          evalSeed: task.seed,
          calibrationSamples: s.calibrationSamples,
          batchSizeEval: s.batchSize,
          noRecord: true,
        },
        null,
        null,
        progress ? { progress } : {},
      );
      after = r.after;
    }
    return { index: task.index, before, after, seconds: (performance.now() - t0) / 1000 };
  } finally {
    releaseRuntime(net);
  }
}
