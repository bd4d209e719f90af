// The onnxruntime sessions a measurement runs on: the models built for them from the file, the
// embedder and probe opened on a provider (with the probe's weight-only inputs), their release,
// and the sessions opened to run a model once.
import * as path from 'node:path';
import { OnnxModel } from '../core/onnx/onnxModel';
import { buildEmbedderModel, buildInContextProbe, buildIsolatedProbe, ProbeFlavor, ProbeModel } from '../core/probe/probeModels';
import { ExecutionProviderName, MeasureMode } from '../core/report/reportSchema';
import { VitStructure } from '../core/vit/vitStructure';
import { dropFileBytes } from './analysisPreparation';
import { ImageEmbedder } from './imageEmbedder';
import { createSession, ort, SessionOptions } from './onnxRuntime';

/** The models a PairMeasurer opens sessions on (see buildMeasurerModels). */
export interface MeasurerModels {
  modelName: string;
  externalDataFolder: string;
  embedderBytes: Uint8Array;
  /**
   * In-context mode: the model's own nodes from the image to the last block's output, run once
   * on the first reference image to check the probe's rebuilt forward pass.
   */
  blockCheckBytes?: Uint8Array;
  /** The probe per flavor: 'cpu' for cpu sessions, 'portable' for a GPU provider's. */
  probeModels: Partial<Record<ProbeFlavor, ProbeModel>>;
}

export interface Sessions {
  provider: ExecutionProviderName;
  embedder: ort.InferenceSession;
  probe: ort.InferenceSession;
  /** Weight-only probe inputs, computed once (see ProbeModel.precompute). */
  constants: Record<string, ort.Tensor>;
}

/**
 * The embedder and probe models for `provider` (their weights referenced in the model's file),
 * built while the file's bytes are at hand; those bytes are then dropped: from here on the
 * weights live only in onnxruntime. `targets`: target images measured against each reference one.
 */
export function buildMeasurerModels(
  model: OnnxModel,
  structure: VitStructure,
  mode: MeasureMode,
  targets: number,
  provider: ExecutionProviderName,
  imageSize: [number, number],
): MeasurerModels {
  const inContext = mode === 'in-context';
  // cpu always (it checks a GPU provider, and is where a failing one falls back to).
  const buildProbe = (flavor: ProbeFlavor) =>
    inContext ? buildInContextProbe(model, structure, { flavor, targets, imageSize }) : buildIsolatedProbe(model, structure, { flavor, targets, imageSize });
  const probeModels: Partial<Record<ProbeFlavor, ProbeModel>> = { cpu: buildProbe('cpu') };
  if (provider !== 'cpu') probeModels.portable = buildProbe('portable');
  const embedderBytes = buildEmbedderModel(model, structure, []);
  // In-context mode rebuilds the blocks' forward pass, so it checks it against the model's own.
  const blockCheckBytes = inContext ? buildEmbedderModel(model, structure, [structure.blocks[structure.blocks.length - 1].output]) : undefined;
  dropFileBytes(model);
  return { modelName: path.basename(model.filePath), externalDataFolder: model.dataFolder, embedderBytes, blockCheckBytes, probeModels };
}

/** The embedder and probe sessions of built models on `provider` (and the probe's weight-only inputs). */
export async function openSessions(models: MeasurerModels, provider: ExecutionProviderName): Promise<Sessions> {
  const options = { provider, externalDataFolder: models.externalDataFolder };
  const embedder = await createSession(models.embedderBytes, options);
  try {
    const probeModel = models.probeModels[provider === 'cpu' ? 'cpu' : 'portable']!;
    const constants: Record<string, ort.Tensor> = {};
    for (const precompute of probeModel.precompute ?? []) Object.assign(constants, await runOnce(precompute, options));
    const probe = await createSession(probeModel.bytes, options);
    return { provider, embedder, probe, constants };
  } catch (error) {
    await embedder.release();
    throw error;
  }
}

export async function releaseSessions(sessions: Sessions): Promise<void> {
  await sessions.embedder.release();
  await sessions.probe.release();
}

/** Runs a model without inputs once and returns its outputs (the session is released at once). */
export async function runOnce(bytes: Uint8Array, options: SessionOptions): Promise<Record<string, ort.Tensor>> {
  const session = await createSession(bytes, { ...options, graphOptimizationLevel: 'disabled', memoryArena: false });
  try {
    return await session.run({});
  } finally {
    await session.release();
  }
}

/**
 * In-context mode: the model's own last-block output [tokens, d] for one image, from its own
 * nodes run on cpu in a session opened for this once (graph unoptimised, no arena: it runs once).
 */
export async function modelOwnFinalOutput(
  blockCheckBytes: Uint8Array,
  models: MeasurerModels,
  structure: VitStructure,
  imageSize: [number, number],
  image: Float32Array,
): Promise<Float32Array> {
  const session = await createSession(blockCheckBytes, {
    provider: 'cpu',
    externalDataFolder: models.externalDataFolder,
    graphOptimizationLevel: 'disabled',
    prepackWeights: false,
    memoryArena: false,
  });
  try {
    return (await new ImageEmbedder(models.modelName, structure, imageSize).embed(session, [image], true)).final!;
  } finally {
    await session.release();
  }
}
