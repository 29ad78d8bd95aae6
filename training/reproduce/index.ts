// `reproduce`: the studies of the seed papers, one module each, run by name (runReproduction),
// each giving a table beside the paper's published numbers (common.ts).
import { checkPaper, PaperName, ReproResult, StudyHooks, StudyOptions } from './common';
import { reproduceYao2020, YaoOptions } from './yao2020';
import { reproducePark2024, ParkOptions } from './park2024';
import { reproduceChen2021, ChenOptions } from './chen2021';
import { reproduceLammie2019, LammieOptions } from './lammie2019';
import { reproduceShi2023, ShiOptions } from './shi2023';

export * from './common';
export * from './yao2020';
export * from './park2024';
export * from './chen2021';
export * from './lammie2019';
export * from './shi2023';

/** The options of any study (each takes the fields it knows; `sizes` overrides its sizes). */
export type ReproduceOptions = StudyOptions & { sizes?: Record<string, unknown> };

/** Runs the study of `paper` (a UsageError for an unknown name). */
export async function runReproduction(paper: string, opts: ReproduceOptions = {}, hooks: StudyHooks = {}): Promise<ReproResult> {
  const name: PaperName = checkPaper(paper);
  switch (name) {
    case 'yao2020':
      return reproduceYao2020(opts as YaoOptions, hooks);
    case 'park2024':
      return reproducePark2024(opts as ParkOptions, hooks);
    case 'chen2021':
      return reproduceChen2021(opts as ChenOptions, hooks);
    case 'lammie2019':
      return reproduceLammie2019(opts as LammieOptions, hooks);
    case 'shi2023':
      return reproduceShi2023(opts as ShiOptions, hooks);
  }
}
