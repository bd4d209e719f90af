// What a report panel's freeze plans take from the measured model file: the head and final-norm
// parameters, asked once per report of the analysis worker (the extension host never reads a
// model), trusted when the file's sha256 is the report's. Pure (no vscode), so it is unit-tested.
import { ModelFileError } from '../core/errors';
import { headAndFinalNormModules, MeasuredModuleParameters, planModelParameters, PlanModelParameters, withoutModelFile } from '../core/recommend/measuredModel';
import { PlasticityReport } from '../core/report/reportSchema';

/** How long an export made before the answer waits for it, then goes with what is known. */
export const EXPORT_WAIT_MS = 5000;

/** The preview's note while the worker is reading the model file (it refreshes when answered). */
export const MODEL_FILE_PENDING_NOTE = 'The model file is still being read to name the head and final norm exactly; this preview updates when it is.';

/** The panel's question to the worker about one report's model file, and its answer once known. */
export class ModelFileParameters {
  private known: PlanModelParameters | undefined;
  /** Settles (never rejects) with the plan inputs: exact parameters, or the note why not. */
  readonly answered: Promise<PlanModelParameters>;

  /**
   * Asks at once. `ask` gets the modules a plan of the report may look up (every naming's head
   * and final-norm candidates), for the model `file`; `onUnexpected` hears failures that are not
   * about the file (a crashed or stopped worker), which the note only summarises.
   */
  constructor(
    readonly report: PlasticityReport,
    file: string,
    ask: (modules: string[]) => Promise<MeasuredModuleParameters>,
    onUnexpected?: (error: unknown) => void,
  ) {
    this.answered = ask(headAndFinalNormModules(report))
      .then(
        (measured) => planModelParameters(report, file, measured),
        (error: unknown) => {
          if (error instanceof ModelFileError) return withoutModelFile(error.message);
          onUnexpected?.(error);
          return withoutModelFile('The analysis process could not read the model file');
        },
      )
      .then((inputs) => (this.known = inputs));
  }

  /** True when this answers for `report` (the same measurement of the same file). */
  isFor(report: PlasticityReport): boolean {
    return report.model.path === this.report.model.path && report.model.sha256 === this.report.model.sha256 && report.createdAt === this.report.createdAt;
  }

  /** For the live preview: the answer when it has come, else the alternatives and a note that it is coming. */
  now(): PlanModelParameters {
    return this.known ?? { note: MODEL_FILE_PENDING_NOTE };
  }

  /** For an export: the answer, waited for up to `waitMs`; after that, the alternatives, saying why. */
  async forExport(waitMs = EXPORT_WAIT_MS): Promise<PlanModelParameters> {
    if (this.known) return this.known;
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<PlanModelParameters>((resolve) => {
      timer = setTimeout(() => resolve(withoutModelFile(`The model file was not read within ${waitMs / 1000} s`)), waitMs);
    });
    try {
      return await Promise.race([this.answered, late]);
    } finally {
      clearTimeout(timer);
    }
  }
}
