// The memristor-tfjs command line. Usage errors (unknown flag, bad value, unknown model) are one
// line on stderr and exit code 2; a bad file is one line naming it and exit code 1; a stack trace
// only for a bug (or with MEMRISTOR_TFJS_DEBUG=1).
import * as os from 'os';
import { Command, CommanderError, Option } from 'commander';
import { UsageError, FileFormatError, ConfigError, ShardMergeError } from './errors';
import { FolderBusyError } from './output_folder';
import { intOption, floatOption, keyValueNumbers } from './cli_options';
import { SCHEDULES } from '../training/schedule';
import { packageVersion } from './version';
import { VARY_ALIASES } from './sweep/grid';

// Names the options offer, listed here so that starting the CLI loads no tf (a command that needs
// it imports it): training/offline.ts OPTIMIZERS, layers/variation.ts VARIATION_KEYS.
const OPTIMIZERS = ['adam', 'sgd', 'momentum'];
const VARIATION_KEYS = ['gOnOffRatio', 'rOnSigma', 'rOffSigma', 'programmingSigma', 'stuckAtRonRate', 'stuckAtRoffRate', 'readNoiseSigma', 'referencePosition'];
/** The in-situ update rules (training/insitu.ts INSITU_RULES; listed here so --help needs no tf). */
const INSITU_RULE_NAMES = ['plain', 'manhattan', 'mixed-precision', 'tiki-taka', 'pair-aware'];
/** The default rule (training/insitu.ts DEFAULT_INSITU_RULE; test/cli_help.test.ts checks they agree). */
export const INSITU_RULE_DEFAULT = 'pair-aware';
/** The fit-device models (src/device/fit.ts FIT_MODELS). */
const FIT_MODEL_NAMES = ['soft-bounds', 'exponential', 'lookup'];
/** The in-situ learning rate's defaults (training/insitu.ts DEFAULT_INSITU_LR, DEFAULT_TIKI_TAKA_LR; test/newcomer_cli.test.ts checks they agree). */
export const INSITU_LR_DEFAULT = 0.3;
export const TIKI_TAKA_LR_DEFAULT = 1;
const INSITU_LR_HELP = `default ${TIKI_TAKA_LR_DEFAULT} for tiki-taka and pair-aware, ${INSITU_LR_DEFAULT} for the other rules`;
/** resnet's default depth and the default learning rates (models/resnet.ts, models/common.ts; test/resnet.test.ts checks they agree). */
export const RESNET_DEPTH_DEFAULT = 20;
export const LR_DEFAULT = 0.01;
export const RESNET_LR_DEFAULT = 0.001;
const progressOption = () => new Option('--no-progress', 'no progress output (by default a bar on a terminal, a line every few seconds when piped)');

const backendOption = () =>
  new Option('--backend <name>', 'tensorflow (tfjs-node), wasm or cpu; default: the fastest present (env MEMRISTOR_TFJS_BACKEND)');
const workersOption = () =>
  new Option(
    '--workers <n>',
    `threads that train data-parallel, each on its share of every batch (default: the number of cores, os.availableParallelism(): ${os.availableParallelism()} here; 1: the single-thread loop)`,
  ).argParser(intOption(1, 256));
const jsonOption = () => new Option('--json', 'print the result as JSON on stdout (progress stays on stderr)');
/** The options of single models (models/common.ts EXTRA_OPTIONS). */
const depthOption = () =>
  new Option('--depth <n>', `resnet: weighted layers, 6n+2 (20, 32, 44, 56, 110, ...; default ${RESNET_DEPTH_DEFAULT})`).argParser(intOption(8));
const batchNormOptions = () => [
  new Option('--batch-norm', 'vgg16: batch normalization after every conv layer (default: off, the classic topology)'),
  new Option('--no-batch-norm', 'vgg16: no batch normalization (the default)'),
];
const weightLevelsOption = () =>
  new Option('--weight-levels <n>', "multi-level models (mcnn, park, vgg16, resnet): weight levels (default: the device's with --device, else the model's: 15, park 8)").argParser(intOption(2));

export function buildProgram(): Command {
  const program = new Command();
  program
    .name('memristor-tfjs')
    .description('Hardware-aware CNN training, crossbar mapping and hybrid in-situ training on TensorFlow.js')
    .version(packageVersion())
    .exitOverride()
    // a command's options only before its subcommands (sweep's --out is not sweep merge's --out)
    .enablePositionalOptions()
    .showSuggestionAfterError(true)
    .configureOutput({ outputError: (str, write) => write(str.replace(/\n+$/, '') + '\n') });

  program
    .command('train')
    .description('train a model of the registry offline (hardware-aware) and save it with metrics.json')
    .requiredOption('--model <name>', 'model name (see `memristor-tfjs models`)')
    .addOption(depthOption())
    .addOption(batchNormOptions()[0])
    .addOption(batchNormOptions()[1])
    .addOption(weightLevelsOption())
    .option('--dataset <spec>', 'mnist | idx:DIR | cifar10:DIR', 'mnist')
    .option('--epochs <n>', 'training epochs', intOption(1), 1)
    .option('--batch-size <n>', "batch size of one update, shared by the --workers threads (default: the model's, 64 or 32 for mcnn, times --workers)", intOption(1))
    .option('--seed <n>', 'seed of every random draw', intOption(0), 1)
    .option('--train-samples <n>', 'use the first N training samples (default: all)', intOption(1))
    .option('--test-samples <n>', 'use the first N test samples (default: all)', intOption(1))
    .option('--validation-split <f>', 'fraction of the training samples held out for validation', floatOption(0, 0.9), 0)
    .option('--lr <f>', `initial learning rate (default: the model's, ${LR_DEFAULT}; resnet ${RESNET_LR_DEFAULT})`, floatOption(0, 10, { exclusiveMin: true }))
    .addOption(new Option('--optimizer <name>', 'optimizer').choices(OPTIMIZERS).default('adam'))
    .addOption(new Option('--schedule <name>', 'learning-rate schedule over the run').choices(SCHEDULES).default('cosine'))
    .option('--float', 'train the float version of the network (no quantizers, no noise)')
    .option(
      '--device <preset|file.json>',
      'train against this device (default: none): every training-time perturbation (weight levels, residual write-verify error, d2d, stuck cells, read noise) ' +
        'derived from the device config that `map` programs',
    )
    .option('--scheme <name>', "with --device: the mapping scheme the noise and weight levels follow, differential | reference (default: the device's)")
    .option(
      '--variation <k=v,...>',
      `device-variation noise during training, or with --device overrides of single fields of the device's; keys: ${VARIATION_KEYS.join(', ')} (default: none)`,
      keyValueNumbers(VARIATION_KEYS),
    )
    .option('--weight-clip-rms <k>', 'clip every noisy kernel to +-k x its RMS after each step (default: 2.5 with --device for multi-level models, else none; 0: none)', floatOption(0))
    .addOption(workersOption())
    .addOption(progressOption())
    .requiredOption('--out <dir>', 'output folder (model.json, weights.bin, metrics.json, checkpoints)')
    .option('--overwrite', 'replace --out when it already holds a result (without it, that is refused)')
    .option('--resume', 'continue from the checkpoint in --out')
    .addOption(backendOption())
    .addOption(jsonOption())
    .action(async (opts) => {
      const { trainCommand } = await import('./commands/train');
      await trainCommand(opts);
    });

  program
    .command('evaluate')
    .description('test accuracy of a trained model (--model DIR) or of a network programmed on crossbar arrays (--crossbar XDIR)')
    .option('--model <dir>', 'a trained model folder (model.json + weights.bin): software inference (give either --model or --crossbar)')
    .option('--crossbar <xdir>', 'a crossbar folder written by `map`: inference through the programmed conductances (give either --model or --crossbar)')
    .option('--dataset <spec>', 'mnist | idx:DIR | cifar10:DIR', 'mnist')
    .option('--test-samples <n>', 'use the first N test samples (default: all)', intOption(1))
    .option('--batch-size <n>', 'inference batch size', intOption(1), 500)
    .option('--calibration-samples <n>', 'crossbar: training samples that calibrate the DAC/ADC ranges', intOption(1), 500)
    .option('--seed <n>', 'crossbar: seed of the read noise (default the mapping seed)', intOption(0))
    .option('--no-read-noise', 'crossbar: switch the read noise off')
    .option('--drift <seconds>', 'crossbar: read the arrays this long after programming (default 0: right after; the converter ranges stay those calibrated at programming time)', floatOption(0))
    .addOption(
      new Option(
        '--drift-compensation <mode>',
        "crossbar, with --drift (aihwkit's terms): none = the raw drifted reads; global = one factor per layer, " +
          'the ratio of a reference read-out at programming time to the same read-out now, applied digitally to the layer output (aihwkit\'s default); ' +
          'per-column = one such factor per output column',
      )
        .choices(['none', 'global', 'per-column'])
        .default('global'),
    )
    .option('--compare-software', 'crossbar: also run the software model and report both')
    .option('--measured <dir>', 'crossbar: conductances read from a chip (one *.programmed.csv per array, the same layout) replace the programmed state (default: none, the simulated state)')
    .addOption(progressOption())
    .addOption(backendOption())
    .addOption(jsonOption())
    .action(async (opts) => {
      if (!!opts.model === !!opts.crossbar) throw new UsageError('evaluate: give either --model DIR or --crossbar XDIR');
      if (opts.measured !== undefined && !opts.crossbar) throw new UsageError('--measured needs --crossbar XDIR (the conductances replace its programmed state)');
      if (opts.crossbar) {
        const { crossbarEvaluateCommand } = await import('./commands/crossbar_eval');
        await crossbarEvaluateCommand(opts);
      } else {
        const { evaluateCommand } = await import('./commands/evaluate');
        await evaluateCommand(opts);
      }
    });

  program
    .command('map')
    .description('map a trained model onto simulated crossbar arrays: write-verify programming, conductance files')
    .requiredOption('--model <dir>', 'a trained model folder (model.json + weights.bin)')
    .requiredOption('--device <preset|file.json>', 'a device preset (see `memristor-tfjs devices`) or a device config JSON file')
    .option('--array <RxC>', 'array size: rows x columns (Park: 32x32, Yao: 128x16)', '128x128')
    .option('--replicas <n>', 'replica groups of every conv layer (spatial parallelism, Yao et al.)', intOption(1), 1)
    .option('--replicate <layers>', 'the conv layers that get --replicas, by name, comma-separated (default: every conv layer; Yao et al.\'s ResNet-56: the first)')
    .option('--seed <n>', 'seed of the device instances and the programming', intOption(0), 1)
    .option('--scheme <name>', 'differential | reference (default: the device\'s)')
    .option('--tolerance <f>', 'write-verify tolerance as a fraction of the conductance window (default: the device\'s)', floatOption(0, 1))
    .option('--no-fold', 'keep a BatchNormalization or ReLU right after a mapped layer digital (default: folded into its weights, bias and neuron)')
    .requiredOption('--out <xdir>', 'output folder: manifest.json and one target and one programmed CSV per array')
    .option('--overwrite', 'replace --out when it already holds a result (without it, that is refused)')
    .addOption(progressOption())
    .addOption(backendOption())
    .addOption(jsonOption())
    .action(async (opts) => {
      const { mapCommand } = await import('./commands/map');
      await mapCommand(opts);
    });

  // The update rule and its settings (training/insitu_rules.ts), for insitu and hybrid.
  const ruleOptions = (c: Command) =>
    c
      .addOption(
        new Option(
          '--rule <name>',
          'in-situ update rule: plain (the pulses that make each wanted change), manhattan (one pulse of its sign), mixed-precision (accumulate digitally, fire whole device steps, carry the rest), tiki-taka (a digital fast matrix, transferred a pulse at a time), pair-aware (tiki-taka with each differential pair\'s change split by the step each device makes that way: a device at its bound leaves the change to its partner)',
        )
          .choices(INSITU_RULE_NAMES)
          .default(INSITU_RULE_DEFAULT),
      )
      .option('--momentum <m>', 'momentum of the wanted updates, v = m v + dG (default 0)', floatOption(0, 1, { exclusiveMax: true }))
      .option('--transfer-every <k>', 'tiki-taka, pair-aware: updates between transfers from the fast matrix (default 1)', intOption(1))
      .option('--read-every <k>', "updates between the controller's reads of the cells (default 0: one read before the first update)", intOption(0))
      .addOption(new Option('--layers <which>', 'the layers trained in situ: last (the last FC layer, Yao et al.), last2 (the last two dense layers), all-dense; the error reaches the earlier ones through the read weights of the arrays').choices(['last', 'last2', 'all-dense']).default('last'))
      .option('--oracle', "let the controller see each cell's hidden window, step scale and stuck state: an upper bound no chip reaches (default off)");

  const insituFlags = (c: Command) =>
    c
      .option('--epochs <n>', 'passes over the in-situ images', intOption(1), 1)
      .option('--batch-size <n>', 'images per pulse update (Yao et al.: 100)', intOption(1), 100)
      .option('--lr <f>', `learning rate of the update dW = -lr h^T delta (weight units; ${INSITU_LR_HELP}, decaying on a cosine)`, floatOption(0, 1000, { exclusiveMin: true }))
      .option('--threshold <uS>', "pulse a cell only where the wanted change reaches this many uS (Yao et al.; default 0 for plain, half the device's mean SET step for manhattan)", floatOption(0))
      .option('--eval-samples <n>', 'test images of the learning curve\'s test points', intOption(1), 1000);

  insituFlags(
    ruleOptions(program
      .command('insitu')
      .description('train the last FC layer of a mapped network in situ, on its arrays, with SET/RESET pulse updates (Yao et al.)')
      .requiredOption('--crossbar <xdir>', 'a crossbar folder written by `map` (only read)')
      .option('--dataset <spec>', 'mnist | idx:DIR | cifar10:DIR', 'mnist')
      .option('--samples <n>', 'training images used in situ (a seeded subset)', intOption(1), 6000)),
  )
    .option('--seed <n>', 'seed of the image choice, read noise and pulse noise (default the mapping seed)', intOption(0))
    .option('--test-samples <n>', 'use the first N test samples (default: all)', intOption(1))
    .option('--calibration-samples <n>', 'training samples that calibrate the DAC/ADC ranges', intOption(1), 500)
    .option('--measured <dir>', 'conductances read from a chip (one *.programmed.csv per array, the same layout) replace the programmed state before training (default: none, the simulated state)')
    .addOption(progressOption())
    .requiredOption('--out <xdir2>', 'output folder: the tuned conductances, insitu.json and learning_curve.csv')
    .option('--overwrite', 'replace --out when it already holds a result (without it, that is refused)')
    .addOption(backendOption())
    .addOption(jsonOption())
    .action(async (opts) => {
      const { insituCommand } = await import('./commands/insitu');
      await insituCommand(opts);
    });

  ruleOptions(program
    .command('hybrid'))
    .description('the hybrid method end to end: offline training, mapping, transfer, in-situ training of the last FC layer, evaluation')
    .requiredOption('--model <name>', 'model name (see `memristor-tfjs models`)')
    .addOption(depthOption())
    .addOption(batchNormOptions()[0])
    .addOption(batchNormOptions()[1])
    .option('--dataset <spec>', 'mnist | idx:DIR | cifar10:DIR', 'mnist')
    .requiredOption('--device <preset|file.json>', 'a device preset (see `memristor-tfjs devices`) or a device config JSON file: mapped onto, and trained against unless --no-device-aware')
    .option('--seed <n>', 'seed of every random draw', intOption(0), 1)
    .option('--epochs <n>', 'offline training epochs', intOption(1), 1)
    .option('--batch-size <n>', "offline batch size of one update (default: the model's times --workers)", intOption(1))
    .option('--train-samples <n>', 'use the first N training samples (default: all)', intOption(1))
    .option('--test-samples <n>', 'use the first N test samples (default: all)', intOption(1))
    .option('--array <RxC>', 'array size', '128x128')
    .option('--replicas <n>', 'replica groups of every conv layer', intOption(1), 1)
    .option('--replicate <layers>', 'the conv layers that get --replicas, comma-separated (default: every conv layer)')
    .option('--no-device-aware', 'plain offline training: no device noise, the model\'s own weight levels (default: device-aware, trained against --device)')
    .option('--compare-device-aware', 'also run the other kind of offline training (same seed, same device instances) and report the transfer drop of both (default: off)')
    .option(
      '--variation <k=v,...>',
      `overrides of single fields of the device's training noise; keys: ${VARIATION_KEYS.join(', ')} (default: none)`,
      keyValueNumbers(VARIATION_KEYS),
    )
    .option('--weight-clip-rms <k>', 'device-aware training: clip every noisy kernel to +-k x its RMS after each step, so that outliers do not set the weight scale the window is spent on (default: 2.5; 0: none)', floatOption(0))
    .option('--insitu-samples <n>', 'training images used in situ (Yao et al.: 10% of MNIST)', intOption(1), 6000)
    .option('--insitu-epochs <n>', 'passes over them', intOption(1), 1)
    .option('--lr <f>', `in-situ learning rate (weight units; ${INSITU_LR_HELP})`, floatOption(0, 1000, { exclusiveMin: true }))
    .option('--threshold <uS>', "in-situ: pulse a cell only where the wanted change reaches this many uS (default 0 for plain, half the device's mean SET step for manhattan)", floatOption(0))
    .addOption(workersOption())
    .addOption(progressOption())
    .requiredOption('--out <dir>', 'output folder: summary.json, model/, crossbar/, insitu/ (and plain/ or device-aware/ with --compare-device-aware)')
    .option('--overwrite', 'replace --out when it already holds a result (without it, that is refused)')
    .addOption(backendOption())
    .addOption(jsonOption())
    .action(async (opts) => {
      const { hybridCommand } = await import('./commands/hybrid');
      await hybridCommand(opts);
    });

  program
    .command('reproduce')
    .description("run the study a seed paper reports and write its table beside the paper's numbers (results.json, table.csv) and a report page (report.html)")
    .argument('<paper>', 'yao2020 | park2024 | chen2021 | lammie2019 | shi2023')
    .option('--quick', 'smaller sizes (fewer images, epochs, trials) that finish in a few minutes')
    .option('--dataset <spec>', 'mnist | idx:DIR for the MNIST studies (default mnist); cifar10:DIR for shi2023 (required there)')
    .option('--seed <n>', 'seed of every random draw', intOption(0), 1)
    .option('--out <dir>', 'output folder (default runs/reproduce-PAPER)')
    .option('--overwrite', 'replace --out when it already holds a result (without it, that is refused)')
    .addOption(progressOption())
    .addOption(backendOption())
    .addOption(jsonOption())
    .action(async (paper: string, opts) => {
      const { reproduceCommand } = await import('./commands/reproduce');
      await reproduceCommand(paper, opts);
    });

  program
    .command('report')
    .description('write one self-contained HTML page (plots as inline SVG, no network) of any run folder, with the sections that apply to it')
    .argument('<dir>', 'a folder written by hybrid (summary.json), sweep (sweep.json), map or insitu (manifest.json), train (metrics.json), or a fit record of fit-device (DEVICE.fit.json, or a folder holding one)')
    .option('--out <file.html>', 'where to write the page (default DIR/report.html; for a fit record DEVICE.fit.html beside it)')
    .option('--sweep <sweepdir>', 'a hybrid run: a sweep directory to show with it (default DIR/sweep/ when it exists)')
    .option('--compare <dirs...>', 'other in-situ runs (hybrid or insitu folders) whose learning curves to draw beside DIR\'s: test accuracy vs images, pulses and programming energy, one line per run (default: DIR\'s own curve alone, when it has one)')
    .addOption(backendOption())
    .addOption(jsonOption())
    .action(async (dir: string, opts) => {
      const { reportCommand } = await import('./commands/report');
      await reportCommand(dir, opts);
    });

  const sweep = program
    .command('sweep')
    // its own options only before `merge`/`status`, which have an --out of their own
    .enablePositionalOptions()
    .description('accuracy statistics over repeated programmings (new variation, faults, write-verify) at every point of a grid of device parameters, before and after in-situ training; trials in worker threads')
    .option('--model <dir>', '(required, no default) a trained model folder (model.json + weights.bin)')
    .option('--device <preset|file.json>', '(required, no default) the base device: a preset (see `memristor-tfjs devices`) or a device config JSON file')
    .option(
      '--vary <name=v1,v2,...>',
      'a device config field by its dotted path (writeVerify.tolerance, variation.rOnSigma, variation.rOffSigma, read.noiseSigma, ' +
        'faults.stuckAtGMin, levels, adc.bits, dac.bits, ...; null for none) or an alias: ' +
        Object.entries(VARY_ALIASES).map(([k, a]) => `${k} = ${a.help}`).join('; ') +
        '. Repeat for a grid (the cartesian product, the first --vary outermost); every point is validated as a device config (default: none, the base device alone)',
      (v: string, prev: string[] | undefined) => [...(prev ?? []), v],
    )
    .option('--trials <n>', 'independent programmings per point (seed of trial t at point p: derived from --seed, p and t)', intOption(1), 5)
    .option('--insitu', 'also train the last FC layer in situ after each programming and report the accuracy after')
    .option('--insitu-samples <n>', 'in-situ: training images used (default 6000, 10% of MNIST as in Yao et al.)', intOption(1))
    .option('--insitu-epochs <n>', 'in-situ: epochs over those images (default 1)', intOption(1))
    .option('--insitu-lr <f>', `in-situ: learning rate (${INSITU_LR_HELP})`, floatOption(0, 1e6, { exclusiveMin: true }))
    .addOption(new Option('--insitu-rule <rule>', `in-situ: weight update rule (default ${INSITU_RULE_DEFAULT})`).choices(INSITU_RULE_NAMES))
    .option('--workers <n>', 'worker threads running the trials (default: the number of cores; 1 runs them in the main thread)', intOption(1, 256))
    .option('--seed <n>', 'seed of the whole sweep', intOption(0), 1)
    .option('--dataset <spec>', 'mnist | idx:DIR | cifar10:DIR', 'mnist')
    .option('--test-samples <n>', 'evaluate each trial on the first N test samples (default: all)', intOption(1))
    .option('--calibration-samples <n>', 'training samples that calibrate the DAC/ADC ranges', intOption(1), 500)
    .option('--batch-size <n>', 'inference batch size', intOption(1), 500)
    .option('--array <RxC>', 'array size: rows x columns (Park: 32x32, Yao: 128x16)', '128x128')
    .option('--replicas <n>', 'replica groups of every conv layer', intOption(1), 1)
    .option('--scheme <name>', "differential | reference (default: the device's)")
    .option('--out <dir>', '(required, no default) output folder: sweep.json and sweep.csv (mean and sample standard deviation, n-1, per point)')
    .option('--overwrite', 'replace --out when it already holds a result (without it, that is refused)')
    .option('--slurm', 'run the sweep on Slurm: write OUT/cluster/sweep-array.sbatch (one array task per shard) and sweep-merge.sbatch (--dependency=afterok on the array), submit both with sbatch, print the job ids; the jobs run this package from this folder (a shared filesystem)')
    .option('--shards <n>', '--slurm/--k8s: number of shards (default: the number of grid points)', intOption(1))
    .option('--partition <p>', '--slurm: the partition (#SBATCH --partition; default: the cluster\'s default partition)')
    .option('--time <t>', '--slurm: the time limit of each task (#SBATCH --time, e.g. 1:00:00; default: the partition\'s)')
    .option('--cpus-per-task <c>', '--slurm/--k8s: cores of each task (#SBATCH --cpus-per-task, the pod\'s cpu request; the shard runs that many worker threads; default 1)', intOption(1, 256))
    .option('--sbatch-arg <arg>', '--slurm: another #SBATCH option for both jobs (repeatable; default none), e.g. --sbatch-arg=--account=lab', (v: string, prev: string[] | undefined) => [...(prev ?? []), v])
    .option('--dry-run', '--slurm: write the scripts only, submit nothing')
    .option('--resume', '--slurm: resubmit only the shards of OUT that are missing (failed or never run) and the merge job')
    .option('--k8s', 'write OUT/cluster/sweep-jobs.yaml for `kubectl apply`: an Indexed Job (pod I runs shard I; a failed index is retried alone) and a merge Job; paths relative to this folder, the root of the volume the pods mount at /work (see Dockerfile)')
    .option('--image <image>', '--k8s: the image holding this package (default memristor-tfjs:VERSION, built from the Dockerfile)')
    .option('--pvc <name>', '--k8s: the PersistentVolumeClaim (ReadWriteMany) holding this folder (default memristor-tfjs-work)')
    .option('--retries <n>', '--k8s: retries of a failed shard (backoffLimitPerIndex, default 2)', intOption(0, 100))
    .option('--shard <I/N>', 'run only shard I (0-based) of N of the (point, trial) pairs, with the seeds of the whole sweep; writes OUT/shard-I-of-N.json (merge with `sweep merge`; default: the whole sweep)')
    .addOption(progressOption())
    .addOption(backendOption())
    .addOption(jsonOption())
    .addHelpText(
      'after',
      `
Each trial programs the network anew (seeded device-to-device variation, stuck cells, write-verify
noise; the read noise of its evaluation from the same seed), so results depend on --seed only, not
on --workers. Per point: mean and sample standard deviation (n-1) of the test accuracy over the
trials. OUT/sweep.json holds every trial's accuracy; OUT/sweep.csv one row per point.

Examples:
  memristor-tfjs sweep --model runs/mcnn --device park2024 --array 32x32 \\
    --vary tolerance=0.01,0.02,0.05,0.1,0.2 --trials 10 --out runs/tolerance
  memristor-tfjs sweep --model runs/mcnn --device yao2020 --array 128x16 \\
    --vary d2d=0,0.05,0.1 --vary readNoise=0,0.02 --trials 5 --insitu --out runs/variation`,
    )
    .action(async (opts) => {
      const { sweepCommand } = await import('./commands/sweep');
      await sweepCommand(opts);
    });
  sweep
    .command('merge')
    .description('check that shard files (sweep --shard I/N) make one whole sweep (one options hash, one package version, every shard once, none corrupt) and write sweep.json and sweep.csv, equal to the single-process sweep')
    .argument('<shards...>', 'shard files (shard-I-of-N.json) or folders holding them')
    .requiredOption('--out <dir>', 'output folder for sweep.json and sweep.csv (or a --slurm/--k8s sweep folder: written beside its shards)')
    .option('--overwrite', 'replace --out when it already holds a result')
    .addOption(jsonOption())
    .action(async (shards: string[], opts) => {
      const { sweepMergeCommand } = await import('./commands/sweep_merge');
      await sweepMergeCommand(shards, opts);
    });
  sweep
    .command('status')
    .description('list the done and missing shards of a sharded sweep under DIR (and files that are corrupt or of another sweep)')
    .argument('<dir>', 'a folder holding shard files (a --slurm or --k8s sweep folder, or any)')
    .addOption(jsonOption())
    .action(async (dir: string, opts) => {
      const { sweepStatusCommand } = await import('./commands/sweep_merge');
      await sweepStatusCommand(dir, opts);
    });

  program
    .command('fit-device')
    .description('fit a device model to measured pulse trains (window, d2d spread, steps vs G, SET/RESET asymmetry, c2c noise) and write a device JSON that extends a preset')
    .requiredOption('--data <file.csv>', 'measured pulse trains: columns device,cycle,pulse,polarity,conductance_uS (polarity set or reset), or pulse,conductance_uS (one device, potentiation then depression)')
    .addOption(new Option('--model <name>', 'soft-bounds (aihwkit SoftBounds), exponential (NeuroSim nonlinear LTP/LTD) or lookup (a table of mean and spread of dG in bins of G)').choices(FIT_MODEL_NAMES).default('soft-bounds'))
    .option('--extends <preset|file.json>', 'the device the fitted fields go over (periphery, levels, write-verify)', 'yao2020')
    .option('--bins <n>', 'lookup: bins of G per polarity', intOption(1, 1024), 32)
    .option('--seed <n>', 'seed of the pulse trains simulated from the fit (the mean curves)', intOption(0), 1)
    .requiredOption('--out <device.json>', 'the device config to write (extends the preset; use it as --device)')
    .option('--overwrite', 'replace --out when it exists (without it, that is refused)')
    .addOption(progressOption())
    .addOption(jsonOption())
    .action(async (opts) => {
      const { fitDeviceCommand } = await import('./commands/fit_device');
      await fitDeviceCommand(opts);
    });

  program
    .command('summary')
    .description('parameters and memory per layer by precision (binary, multi-level, float; Larq style) of a model of the registry or a trained model folder')
    .requiredOption('--model <name|dir>', 'a model name (see `memristor-tfjs models`) or a trained model folder (model.json + weights.bin, a stock tfjs/Keras model too)')
    .option('--float', 'a model name: its float version (no quantizers)')
    .addOption(depthOption())
    .addOption(batchNormOptions()[0])
    .addOption(batchNormOptions()[1])
    .addOption(weightLevelsOption())
    .addOption(backendOption())
    .addOption(jsonOption())
    .action(async (opts) => {
      const { summaryCommand } = await import('./commands/summary');
      await summaryCommand(opts);
    });

  program
    .command('devices')
    .description('list the device presets')
    .addOption(jsonOption())
    .action(async (opts) => {
      const { devicesCommand } = await import('./commands/devices');
      await devicesCommand(opts);
    });

  program
    .command('models')
    .description('list the models of the registry')
    .addOption(jsonOption())
    .action(async (opts) => {
      const { listModels } = await import('../models/registry');
      const list = listModels();
      if (opts.json) process.stdout.write(JSON.stringify(list, null, 2) + '\n');
      else for (const m of list) process.stdout.write(`${m.name.padEnd(8)} ${m.description}\n`);
    });

  return program;
}

function isDebug(): boolean {
  return process.env.MEMRISTOR_TFJS_DEBUG === '1';
}

/** Run the CLI; resolves to the exit code. */
export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
    return 0;
  } catch (e) {
    if (e instanceof CommanderError) {
      // commander has printed its message already; help and version are not errors.
      if (e.code === 'commander.helpDisplayed' || e.code === 'commander.version' || e.code === 'commander.help') return 0;
      return 2;
    }
    if (e instanceof UsageError || e instanceof ConfigError) {
      process.stderr.write(`error: ${e.message}\n`);
      return 2;
    }
    if (e instanceof FileFormatError || e instanceof FolderBusyError || e instanceof ShardMergeError) {
      process.stderr.write(`error: ${e.message}\n`);
      return 1;
    }
    const err = e as Error;
    process.stderr.write(`error: ${err?.message ?? String(e)}\n`);
    if (isDebug()) process.stderr.write(`${err?.stack}\n`);
    else process.stderr.write('(set MEMRISTOR_TFJS_DEBUG=1 for the stack trace)\n');
    return 1;
  }
}
