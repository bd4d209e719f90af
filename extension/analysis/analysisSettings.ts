// The user's Plasticity Lens settings, turned into an engine request for one model file.
import * as path from 'node:path';
import * as vscode from 'vscode';
import { EXECUTION_PROVIDER_REQUESTS, isOneOf, MEASURE_MODES } from '../core/vocabulary';
import { AnalysisRequest } from '../worker/workerProtocol';

const SECTION = 'plasticityLens';

/** Fields that change the numbers (the execution provider does not): the report cache key. */
export type MeasurementSettings = Omit<AnalysisRequest, 'modelPath' | 'executionProvider' | 'batchPairs'>;

function folderSetting(value: string | undefined, model: vscode.Uri): string | undefined {
  if (!value || !value.trim()) return undefined;
  if (path.isAbsolute(value)) return value;
  const workspace = vscode.workspace.getWorkspaceFolder(model) ?? vscode.workspace.workspaceFolders?.[0];
  return path.join(workspace ? workspace.uri.fsPath : path.dirname(model.fsPath), value);
}

function triple(value: unknown): [number, number, number] | undefined {
  return Array.isArray(value) && value.length === 3 && value.every((item) => typeof item === 'number') ? (value as [number, number, number]) : undefined;
}

/** The image folders a model is always measured on, whatever the settings say (the sample's own). */
export interface FixedImages {
  reference: string;
  target: string;
}

export function analysisRequestFor(model: vscode.Uri, fixedImages?: FixedImages): AnalysisRequest {
  const config = vscode.workspace.getConfiguration(SECTION, model);
  // Settings files can hold anything: a value outside the manifest's enum falls back to the default.
  const mode = config.get<string>('mode');
  const executionProvider = config.get<string>('executionProvider');
  const request: AnalysisRequest = {
    modelPath: model.fsPath,
    mode: isOneOf(MEASURE_MODES, mode) ? mode : 'isolated',
    executionProvider: isOneOf(EXECUTION_PROVIDER_REQUESTS, executionProvider) ? executionProvider : 'auto',
    seed: config.get<number>('seed', 0),
  };
  const reference = folderSetting(config.get<string>('referenceFolder'), model);
  // A list of target folders (a multi-target run) takes the place of the single targetFolder.
  const targets = (config.get<unknown>('targetFolders') ?? []) as unknown[];
  const targetFolders = Array.isArray(targets)
    ? targets.flatMap((value) => (typeof value === 'string' ? [folderSetting(value, model)].filter((folder): folder is string => folder !== undefined) : []))
    : [];
  const target = targetFolders[0] ?? folderSetting(config.get<string>('targetFolder'), model);
  if (fixedImages) {
    request.reference = fixedImages.reference;
    request.target = fixedImages.target;
  } else {
    if (reference) request.reference = reference;
    if (target) request.target = target;
    if (targetFolders.length > 1) request.targets = targetFolders;
  }
  const pairs = config.get<number | null>('pairs', null);
  if (typeof pairs === 'number') request.pairs = pairs;
  if (config.get<boolean>('untilSettled', false) === true) {
    request.untilSettled = true;
    const tolerance = config.get<number | null>('tolerance', null);
    if (typeof tolerance === 'number' && tolerance > 0 && tolerance < 1) request.tolerance = tolerance;
  }
  const mean = triple(config.get('normalization.mean'));
  const std = triple(config.get('normalization.std'));
  if (mean) request.mean = mean;
  if (std) request.std = std;
  return request;
}

export function measurementSettings(request: AnalysisRequest): MeasurementSettings {
  const { modelPath: _model, executionProvider: _provider, batchPairs: _batch, ...settings } = request;
  return settings;
}
