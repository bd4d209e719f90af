// The measured model as freeze plans use it: the parameters of the head and final norm (which a
// report does not cover), read from the model file and trusted only when the file's sha256 is the
// report's. One path for the command line (which reads the model itself) and the report panel
// (whose analysis worker reads it and answers with `MeasuredModuleParameters`).
import { OnnxModel, onnxFileSha256 } from '../onnx/onnxModel';
import { PlasticityReport } from '../report/reportSchema';
import { FRAMEWORK_NAMINGS, resolveNaming } from './frameworkNaming';
import { ModuleParameterLookup, ModuleParameters, onnxModuleParameterLookup } from './onnxScopes';

/** Some modules' parameters in a model file, and the sha256 of that file (as reports record it). */
export interface MeasuredModuleParameters {
  /** sha256 of the .onnx file itself (not its external data). */
  sha256: string;
  /** Each module asked for: its parameters, or null when the model has none under that name. */
  modules: Record<string, ModuleParameters | null>;
}

/** What a freeze plan takes from the measured model: its parameters, or why it goes without them. */
export interface PlanModelParameters {
  /** Set when the model file is the one the report measured. */
  modelParameters?: ModuleParameterLookup;
  /** A plan note, one sentence, when the model file was not used. */
  note?: string;
}

/**
 * The modules a freeze plan of `report` may look up in the model: the head and final-norm
 * candidates of every naming (the user can switch namings; only the report's own naming uses the
 * model's parameters today, asking for all keeps this true if that changes).
 */
export function headAndFinalNormModules(report: PlasticityReport): string[] {
  const modules = new Set<string>();
  for (const naming of [undefined, ...FRAMEWORK_NAMINGS]) {
    const resolved = resolveNaming(report, naming);
    for (const module of [...resolved.headCandidates, ...resolved.finalNormCandidates]) modules.add(module);
  }
  return [...modules];
}

/** The parameters of `modules` in a parsed model file, with the file's sha256. */
export function measuredModuleParameters(model: OnnxModel, modules: string[], sha256 = onnxFileSha256(model)): MeasuredModuleParameters {
  const lookup = onnxModuleParameterLookup(model);
  return { sha256, modules: Object.fromEntries(modules.map((module) => [module, lookup(module)])) };
}

/** The sentence saying that `file` is not the measured model, or null when its sha256 is the report's. */
export function measuredModelMismatch(report: PlasticityReport, file: string, sha256: string): string | null {
  return sha256 === report.model.sha256 ? null : `${file} is not the model the report measured (its sha256 differs)`;
}

/** The sentence saying that the measured model's file is missing. */
export function measuredModelMissing(file: string): string {
  return `The model the report measured, ${file}, is missing`;
}

/**
 * A plan without the model file: its note says why in one sentence. `reason` is a user error's
 * message or one of the sentences above; advice after its last "; " is left out (it is the
 * caller's: the command line's --model, nothing in the panel).
 */
export function withoutModelFile(reason: string): PlanModelParameters {
  const why = reason.replace(/; [^;]*$/, '').replace(/\.$/, '');
  return { note: `${why}: head and final-norm names are the framework's alternatives.` };
}

/**
 * The plan inputs from a model file's answer: a lookup over the modules it answers for when the
 * file is the report's, else the note why not. The lookup answers only for the modules asked
 * (headAndFinalNormModules); any other name is a programming error and throws.
 */
export function planModelParameters(report: PlasticityReport, file: string, measured: MeasuredModuleParameters): PlanModelParameters {
  const mismatch = measuredModelMismatch(report, file, measured.sha256);
  if (mismatch) return withoutModelFile(mismatch);
  return {
    modelParameters: (module) => {
      if (!Object.prototype.hasOwnProperty.call(measured.modules, module)) {
        throw new Error(`The model file was not asked for the parameters of '${module}'.`);
      }
      return measured.modules[module];
    },
  };
}
