// `sweep --k8s`: the Indexed Job manifest checked against the fields of the Kubernetes Job schema
// (batch/v1; no cluster here), and its pod commands run as the pods would (sh -c, with
// JOB_COMPLETION_INDEX set, in the volume's root): the merged result is the single-process sweep's.
import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { dataset, modelDir, root, setUpSweepFixture } from './sweep_fixture';
import { runCli as run } from './helpers';

setUpSweepFixture();

// The Job schema's fields (batch/v1 Job, JobSpec, PodTemplateSpec, PodSpec, Container) that a
// manifest of ours may use; an unknown field is refused by `kubectl apply` (strict validation).
const SCHEMA: Record<string, { allowed: string[]; required: string[] }> = {
  Job: { allowed: ['apiVersion', 'kind', 'metadata', 'spec'], required: ['apiVersion', 'kind', 'metadata', 'spec'] },
  ObjectMeta: { allowed: ['name', 'labels', 'annotations', 'namespace'], required: [] },
  JobSpec: {
    allowed: ['completionMode', 'completions', 'parallelism', 'backoffLimit', 'backoffLimitPerIndex', 'maxFailedIndexes', 'activeDeadlineSeconds', 'ttlSecondsAfterFinished', 'template', 'podFailurePolicy', 'suspend'],
    required: ['template'],
  },
  PodTemplateSpec: { allowed: ['metadata', 'spec'], required: ['spec'] },
  PodSpec: { allowed: ['restartPolicy', 'containers', 'volumes', 'nodeSelector', 'tolerations'], required: ['containers'] },
  Container: { allowed: ['name', 'image', 'command', 'args', 'workingDir', 'env', 'resources', 'volumeMounts'], required: ['name', 'image'] },
};
function conforms(kind: string, o: Record<string, unknown>, where: string): void {
  const s = SCHEMA[kind];
  for (const k of Object.keys(o)) if (!s.allowed.includes(k)) throw new Error(`${where}: field ${k} is not in ${kind}`);
  for (const k of s.required) if (o[k] === undefined) throw new Error(`${where}: ${kind} needs ${k}`);
}
const DNS1123 = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

const REL_ARGS = ['--model', 'model', '--device', 'yao2020', '--dataset', 'idx:data', '--vary', 'tolerance=0.02,0.2', '--vary', 'stuck=0.05,0.2', '--trials', '2', '--seed', '4', '--array', '32x32', '--calibration-samples', '20', '--no-progress'];

describe('sweep --k8s', () => {
  const cwd = process.cwd();
  let objects: Record<string, any>[];
  beforeAll(async () => {
    expect(modelDir).toBe(path.join(root, 'model'));
    expect(dataset).toBe(`idx:${path.join(root, 'data')}`);
    process.chdir(root); // the volume's root: the paths are relative to it
    try {
      const r = await run('sweep', ...REL_ARGS, '--k8s', '--shards', '3', '--image', 'registry.example.org/memristor-tfjs:0.1.0', '--cpus-per-task', '2', '--out', 'k8s');
      expect(r.err).not.toMatch(/error/);
      expect(r.code).toBe(0);
      const text = fs.readFileSync(path.join(root, 'k8s', 'cluster', 'sweep-jobs.yaml'), 'utf8');
      objects = text.split(/^---$/m).slice(1).map((d) => JSON.parse(d));
      const one = await run('sweep', ...REL_ARGS, '--workers', '1', '--out', 'k8s-one');
      expect(one.code).toBe(0);
    } finally {
      process.chdir(cwd);
    }
  });

  test('an Indexed Job of the shards and a merge Job, with the Job schema fields', () => {
    expect(objects).toHaveLength(2);
    const [shards, merge] = objects;
    for (const [i, job] of objects.entries()) {
      conforms('Job', job, `document ${i}`);
      expect(job.apiVersion).toBe('batch/v1');
      expect(job.kind).toBe('Job');
      conforms('ObjectMeta', job.metadata, `document ${i}.metadata`);
      expect(job.metadata.name).toMatch(DNS1123);
      expect(job.metadata.name.length).toBeLessThanOrEqual(63);
      conforms('JobSpec', job.spec, `document ${i}.spec`);
      conforms('PodTemplateSpec', job.spec.template, `document ${i}.spec.template`);
      conforms('PodSpec', job.spec.template.spec, `document ${i}.spec.template.spec`);
      expect(job.spec.template.spec.restartPolicy).toBe('Never');
      for (const c of job.spec.template.spec.containers) {
        conforms('Container', c, `document ${i} container`);
        expect(c.image).toBe('registry.example.org/memristor-tfjs:0.1.0');
        expect(c.workingDir).toBe('/work');
        expect(c.volumeMounts).toEqual([{ name: 'work', mountPath: '/work' }]);
      }
      expect(job.spec.template.spec.volumes).toEqual([{ name: 'work', persistentVolumeClaim: { claimName: 'memristor-tfjs-work' } }]);
    }
    expect(shards.spec.completionMode).toBe('Indexed');
    expect(shards.spec.completions).toBe(3);
    expect(shards.spec.parallelism).toBe(3);
    // a failed index is retried alone (needs restartPolicy Never, checked above)
    expect(shards.spec.backoffLimitPerIndex).toBe(2);
    expect(shards.spec.maxFailedIndexes).toBeLessThanOrEqual(3);
    const c = shards.spec.template.spec.containers[0];
    expect(c.resources.requests.cpu).toBe('2');
    expect(c.command[0]).toBe('sh');
    expect(c.command[2]).toContain('--workers 2 --shard "$JOB_COMPLETION_INDEX/3" --out k8s/shards/shard-"$JOB_COMPLETION_INDEX"-of-3');
    expect(merge.spec.completionMode).toBeUndefined();
    expect(merge.spec.template.spec.containers[0].command[2]).toContain('memristor-tfjs sweep merge --out k8s k8s/shards');
  });

  test('the pods\' commands, run as the pods run them, merge to the single-process sweep', () => {
    // `memristor-tfjs` on PATH, as in the image
    const binDir = path.join(root, 'k8s-bin');
    fs.mkdirSync(binDir, { recursive: true });
    fs.symlinkSync(path.resolve('bin', 'memristor-tfjs.js'), path.join(binDir, 'memristor-tfjs'));
    const env = { ...process.env, PATH: `${binDir}:${path.dirname(process.execPath)}:${process.env.PATH}` };
    const [shards, merge] = objects;
    for (let i = 0; i < 3; i++) {
      execFileSync(shards.spec.template.spec.containers[0].command[0], shards.spec.template.spec.containers[0].command.slice(1), { cwd: root, env: { ...env, JOB_COMPLETION_INDEX: String(i) }, stdio: 'pipe', timeout: 120000 });
    }
    const mc = merge.spec.template.spec.containers[0].command;
    execFileSync(mc[0], mc.slice(1), { cwd: root, env, stdio: 'pipe', timeout: 60000 });
    expect(fs.readFileSync(path.join(root, 'k8s', 'sweep.csv'), 'utf8')).toBe(fs.readFileSync(path.join(root, 'k8s-one', 'sweep.csv'), 'utf8'));
  });

  test('paths outside the volume\'s folder are refused, naming the flag', async () => {
    const r = await run('sweep', '--model', modelDir, '--device', 'yao2020', '--dataset', dataset, '--k8s', '--out', path.join(root, 'k8s-abs'));
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/--k8s: --model .* must be a path inside this folder/);
  });
});
