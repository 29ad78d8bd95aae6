// `memristor-tfjs fit-device`: fit a device model to measured pulse trains (src/device/fit.ts) and
// write a device JSON that extends a preset; print the fitted values and the fit quality. Beside
// the device (DEVICE.json) it writes the fit record DEVICE.fit.json (format
// memristor-tfjs-device-fit: the quality, the warnings, and the measured and fitted mean curves per
// polarity), which `memristor-tfjs report DEVICE.fit.json` draws.
import * as fs from 'fs';
import * as path from 'path';
import { writeJsonAtomic } from '../atomic';
import { UsageError } from '../errors';
import { getPreset, loadDeviceConfig, presetNames } from '../device/config';
import { FIT_MODELS, FitModel, fitDevice, formatDeviceFit, readPulseCsv } from '../device/fit';
import { info, intFlag, printResult } from './common';
import { checkOutputFile, claimOutputFile } from '../output_folder';
import { FIT_FORMAT, fitRecordPath } from '../report/load';
import { formatCount, formatDuration, progressIntervalSeconds } from '../../training/progress';

export interface FitDeviceCommandOptions {
  /** The measured pulse trains (CSV). */
  data: string;
  /** soft-bounds (default), exponential or lookup. */
  model?: string;
  /** The preset (or device JSON file) the fitted fields go over; default yao2020. */
  extends?: string;
  /** Lookup bins; default 32. */
  bins?: number | string;
  /** Seed of the simulated trains behind the mean curves; default 1. */
  seed?: number | string;
  /** Where to write the device JSON. */
  out: string;
  /** --overwrite: replace an existing --out file. */
  overwrite?: boolean;
  json?: boolean;
  /** --no-progress: false. */
  progress?: boolean;
}

export async function fitDeviceCommand(opts: FitDeviceCommandOptions) {
  const model = (opts.model ?? 'soft-bounds') as FitModel;
  if (!FIT_MODELS.includes(model)) throw new UsageError(`--model must be one of ${FIT_MODELS.join(', ')}, got '${opts.model}'`);
  if (!opts.data) throw new UsageError('fit-device: give --data FILE.csv');
  if (!opts.out) throw new UsageError('fit-device: give --out DEVICE.json');
  const inputs = [{ flag: '--data', path: opts.data }, ...(opts.extends ? [{ flag: '--extends', path: opts.extends }] : [])];
  checkOutputFile(opts.out, { overwrite: opts.overwrite, inputs });
  // the fit record beside it is replaced with the device, but never over an input
  checkOutputFile(fitRecordPath(opts.out), { flag: `the fit record of --out ${opts.out},`, overwrite: true, inputs });
  // a second writer of the same device file is refused while this one runs
  const claim = claimOutputFile(opts.out);
  try {
    const ext = opts.extends ?? 'yao2020';
    const preset = getPreset(ext);
    if (!preset && !(ext.endsWith('.json') || ext.includes('/') || ext.includes(path.sep))) {
      throw new UsageError(`--extends '${ext}' is not a preset (${presetNames().join(', ')}) nor a .json file`);
    }
    const base = preset ?? loadDeviceConfig(ext);
    const bins = intFlag(opts.bins, '--bins', 1);
    const seed = intFlag(opts.seed, '--seed', 0);

    const t0 = performance.now();
    // A line as each stage starts, with the time so far (the stages run without a break), where the
    // fit takes long enough to need it: files over 16 MiB (about 500,000 readings, ~2 s; a small file
    // fits in well under a second), or always with MEMRISTOR_TFJS_PROGRESS_SECONDS=0.
    let big = false;
    try {
      big = fs.statSync(opts.data).size > 16 * 1024 * 1024;
    } catch {
      /* readPulseCsv names the file */
    }
    const stages = opts.progress !== false && (big || progressIntervalSeconds() === 0);
    const stage = (what: string) => {
      if (stages) info(`fit-device: ${what} (${formatDuration((performance.now() - t0) / 1000)})`);
    };
    stage(`reading ${opts.data}`);
    const data = readPulseCsv(opts.data, (done, total) => stage(`parsed ${formatCount(done)} of ${formatCount(total)} lines`));
    stage(`read ${formatCount(data.readings)} readings of ${formatCount(data.devices.length)} device(s)`);
    const fit = fitDevice(data, { model, base, bins, seed, onStage: stage });
    // The file extends the preset by name, or the base file by its path from the output's folder.
    const outDir = path.dirname(path.resolve(opts.out));
    let extendsValue = ext;
    if (!preset) {
      extendsValue = path.relative(outDir, path.resolve(ext)).split(path.sep).join('/');
      if (!extendsValue.startsWith('.')) extendsValue = `./${extendsValue}`;
    }
    const device = {
      extends: extendsValue,
      description:
        `fitted by memristor-tfjs fit-device (${model}) to ${path.basename(opts.data)}: ${data.readings} readings of ` +
        `${data.devices.length} device(s) over ${base.name}`,
      ...fit.fields,
    };
    writeJsonAtomic(opts.out, device);
    const record = fitRecordPath(opts.out);
    writeJsonAtomic(record, {
      format: FIT_FORMAT,
      version: 1,
      created: new Date().toISOString(),
      data: path.resolve(opts.data),
      device: path.resolve(opts.out),
      model,
      extends: extendsValue,
      form: fit.form,
      readings: fit.readings,
      devices: data.devices.length,
      trains: data.trains.length,
      fields: fit.fields,
      asymmetry: fit.asymmetry,
      quality: fit.quality,
      warnings: fit.warnings,
      curves: fit.curves,
      perDevice: fit.devices,
    });
    const ms = Math.round(performance.now() - t0);

    const result = {
      data: opts.data,
      form: fit.form,
      readings: fit.readings,
      devices: data.devices.length,
      trains: data.trains.length,
      model,
      extends: extendsValue,
      out: opts.out,
      record,
      ms,
      device,
      asymmetry: fit.asymmetry,
      quality: fit.quality,
      warnings: fit.warnings,
      perDevice: fit.devices,
      curves: fit.curves,
    };
    if (opts.json) for (const w of fit.warnings) info(`warning: ${w}`);
    printResult(opts, result, () => `${formatDeviceFit(fit)}\nwrote ${opts.out} (extends ${extendsValue}) and its fit record ${record} in ${ms} ms (\`memristor-tfjs report ${record}\` draws measured beside fitted)`);
    return result;
  } finally {
    claim.release();
  }
}
