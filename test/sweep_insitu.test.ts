// Sweeps with the real in-situ training (test/sweep.test.ts stands a mock in for it), in the main
// thread and a worker thread.
import { deriveSeed } from '../src/random';
import { loadModel } from '../src/model_io';
import { loadDataset } from '../src/data';
import { evaluateCrossbar, mapModel } from '../src/crossbar';
import { planSweep, runSweep, summarize } from '../src/sweep';
import { insituTrain } from '../training/insitu';
import { base, dataset, modelDir, setUpSweepFixture } from './sweep_fixture';

setUpSweepFixture();

describe('sweep with the real in-situ training, in worker threads', () => {
  test('the after accuracies equal a direct loop of mapModel, evaluateCrossbar, insituTrain, evaluateCrossbar', async () => {
    const opts = { ...base, vary: ['d2d=0.2'], trials: 2, workers: 2, insitu: { samples: 40, epochs: 2 } };
    const r = await runSweep(opts);
    const { model } = await loadModel(modelDir);
    const data = loadDataset(dataset);
    const plan = planSweep(opts);
    const evalOpts = (seed: number) => ({ calibration: data.train, calibrationSamples: 20, seed, imageShape: data.imageShape, numClasses: 10 });
    try {
      const after: number[] = [];
      for (let t = 0; t < 2; t++) {
        const seed = deriveSeed(11, plan.points[0].key, t);
        const net = mapModel(model, plan.devices[0], { arrayRows: 32, arrayCols: 32, seed });
        evaluateCrossbar(net, data.test, evalOpts(seed));
        const res = insituTrain(net, data.train, { samples: 40, epochs: 2, seed: deriveSeed(seed, 'insitu') });
        expect(res.totalPulses).toBeGreaterThan(0);
        (net.runtime as { dispose(): void }).dispose();
        net.runtime = null;
        after.push(evaluateCrossbar(net, data.test, evalOpts(seed)).accuracy);
        (net.runtime as { dispose(): void }).dispose();
      }
      expect(r.points[0].after).toEqual(summarize(after));
    } finally {
      model.dispose();
    }
  });
});
