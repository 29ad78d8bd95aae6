// `memristor-tfjs devices`: the device presets.
import { PRESETS, formatPresetTable, listPresets } from '../device/presets';
import { printResult } from './common';

export interface DevicesCommandOptions {
  /** Print JSON: every preset's name, description, one-line summary and full config. */
  json?: boolean;
}

export async function devicesCommand(opts: DevicesCommandOptions = {}) {
  const list = listPresets().map((p) => ({ ...p, config: PRESETS[p.name] }));
  printResult(opts, list, () => formatPresetTable().replace(/\n$/, ''));
  return list;
}
