// One analysis from file to report, run inside the worker process: read, discover, open the
// inputs, choose a provider, compile the embedder and probe, measure pairs in batches. One
// target or several against the same reference images: a single-target run is the case K = 1.
import { OnnxModel } from '../core/onnx/onnxModel';
import { PlasticityReport } from '../core/report/reportSchema';
import { VitStructure } from '../core/vit/vitStructure';
import { AnalysisHooks, PhaseReporter, prepareAnalysis } from './analysisPreparation';
import { AnalysisInputs, checkTargets, openAnalysisInputs } from './analysisInputs';
import { analysisReport } from './analysisReport';
import { measurePairs } from './batchLoop';
import { boundsOf, WeightBoundValues, weightBoundValues } from './modelBounds';
import { chooseExecutionProvider, ProviderChoice } from './onnxRuntime';
import { PairMeasurer } from './pairMeasurer';
import { buildMeasurerModels, modelOwnFinalOutput } from './probeSessions';
import { round } from './reportRounding';
import { AnalysisRequest } from './workerProtocol';

export async function runAnalysis(request: AnalysisRequest, hooks: AnalysisHooks): Promise<PlasticityReport> {
  checkTargets(request);
  const { started, checkCancelled, report, model, loadMs, sha256, structure, discoverMs, preprocess } = await prepareAnalysis(request, hooks);
  const inputs = await openAnalysisInputs(request, preprocess, report);

  report('providers', 'Choosing an execution provider');
  const provider = await chooseExecutionProvider(request.executionProvider);
  await checkCancelled();

  const targetCount = inputs.targets.length;
  const { measurer, weightBounds, boundsMs } = await prepareMeasuring(
    { model, structure, request, imageSize: preprocess.size, provider, inputs },
    `Preparing the probe ${targetCount > 1 ? `for ${targetCount} targets ` : ''}on ${provider.used}`,
    report,
    checkCancelled,
  );

  const measureStarted = performance.now();
  const cpuStarted = process.cpuUsage();
  const measured = await measurePairs(inputs, measurer, structure, request, report, checkCancelled);
  const measureMs = performance.now() - measureStarted;
  const measureCpu = process.cpuUsage(cpuStarted);
  await measurer.release();
  const tokens = measurer.tokenStatistics;

  return analysisReport({
    request,
    model,
    sha256,
    structure,
    preprocess,
    inputs,
    measured,
    tokens: measurer.tokens,
    executionProvider: { requested: request.executionProvider, used: measurer.provider, tried: measurer.tried },
    timing: {
      loadMs: round(loadMs),
      discoverMs: round(discoverMs),
      measureMs: round(measureMs),
      totalMs: round(performance.now() - started),
      // Pair indices per second, each measured against every target.
      pairsPerSecond: round((measured.pairsMeasured / measureMs) * 1000, 3),
      boundsMs: round(boundsMs),
      inputsWaitMs: round(measured.inputsWaitMs),
      measureCpuMs: round((measureCpu.user + measureCpu.system) / 1000),
    },
    bounds: boundsOf(model, structure, weightBounds, tokens && { ...tokens, synthetic: inputs.kind === 'synthetic' }),
  });
}

/**
 * From a read model to a measurer with open sessions, and the weights' part of the bounds. The
 * order is for memory: the probe is built while the file's bytes are at hand, the bytes are
 * dropped, and the bounds run before the probe's sessions load the weights. Run after measuring,
 * the bounds came on top of the heap the measuring had freed but the process kept: ViT-B/16
 * peaked at 2.2x the file.
 */
async function prepareMeasuring(
  setup: {
    model: OnnxModel;
    structure: VitStructure;
    request: AnalysisRequest;
    imageSize: [number, number];
    provider: ProviderChoice;
    /** The run's pairs: in-context mode checks its rebuilt blocks on the first reference image. */
    inputs: AnalysisInputs;
  },
  compilingMessage: string,
  report: PhaseReporter,
  checkCancelled: () => Promise<void>,
): Promise<{ measurer: PairMeasurer; weightBounds: WeightBoundValues; boundsMs: number }> {
  const { model, structure, request, imageSize, provider, inputs } = setup;
  const models = buildMeasurerModels(model, structure, request.mode, inputs.targets.length, provider.used, imageSize);
  report('bounds', 'Computing the data-free upper bounds');
  const boundsStarted = performance.now();
  const weightBounds = await weightBoundValues(model, structure);
  const boundsMs = performance.now() - boundsStarted;
  await checkCancelled();

  report('compiling', compilingMessage, { executionProvider: provider.used });
  // Before the probe's sessions open: loaded beside them, this second copy of the weights was
  // in-context mode's peak memory.
  const modelFinal = models.blockCheckBytes ? await modelOwnFinalOutput(models.blockCheckBytes, models, structure, imageSize, (await inputs.load(0)).reference) : undefined;
  await checkCancelled();
  const measurer = await PairMeasurer.open(models, structure, request, imageSize, provider.used, provider.tried, modelFinal);
  await checkCancelled();
  return { measurer, weightBounds, boundsMs };
}
