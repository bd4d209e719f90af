// The one module that loads onnxruntime-node: session creation, execution provider probing.
// Loaded only inside the worker process (its calls block the thread that makes them).
import * as os from 'node:os';
import * as ort from 'onnxruntime-node';
import { ExecutionProviderName, ExecutionProviderRequest, ProviderAttempt } from '../core/report/reportSchema';
import { OnnxGraphBuilder } from '../core/onnx/onnxWriter';
import { TensorDataType } from '../core/onnx/onnxModel';
import { UsageError } from '../core/errors';

export { ort };

export const ONNXRUNTIME_VERSION = ort.env.versions.node ?? 'unknown';

/** GPU providers this platform's onnxruntime-node can have, best first. */
export function gpuProvidersForPlatform(platform = os.platform(), arch = os.arch()): ExecutionProviderName[] {
  if (platform === 'win32') return ['cuda', 'dml', 'webgpu'];
  if (platform === 'darwin') return arch === 'arm64' ? ['coreml', 'webgpu'] : ['webgpu'];
  return arch === 'x64' ? ['cuda', 'webgpu'] : ['webgpu'];
}

export interface SessionOptions {
  provider: ExecutionProviderName;
  /** Folder external-data locations are resolved against (the user's model folder). */
  externalDataFolder?: string;
  /** 'disabled' for run-once models: constant folding would only hold extra copies of weights. */
  graphOptimizationLevel?: 'disabled' | 'all';
  /** Session creation logs at this level (3 = errors only, 4 = fatal only). */
  logSeverityLevel?: 0 | 1 | 2 | 3 | 4;
  /**
   * false: no prepacked copy of MatMul/Gemm weights. Prepacking speeds up matrix products with
   * many rows, but copies each weight once per node using it at session creation.
   */
  prepackWeights?: boolean;
}

export async function createSession(bytes: Uint8Array, options: SessionOptions): Promise<ort.InferenceSession> {
  const session: Record<string, string> = {};
  if (options.externalDataFolder) session.model_external_initializers_file_folder_path = options.externalDataFolder;
  if (options.prepackWeights === false) session.disable_prepacking = '1';
  return ort.InferenceSession.create(bytes, {
    executionProviders: [options.provider],
    graphOptimizationLevel: options.graphOptimizationLevel ?? 'all',
    enableCpuMemArena: false,
    logSeverityLevel: options.logSeverityLevel ?? 3,
    extra: { session },
  });
}

/** The first meaningful line of an onnxruntime error, without its source-location prefix. */
export function describeOrtError(error: unknown): string {
  const text = error instanceof Error ? error.message : String(error);
  const line = text.split('\n').find((part) => part.trim().length > 0) ?? text;
  return line.replace(/^.*?\] : \d+ : [A-Z_]+ : /, '').slice(0, 240);
}

/** A small model with the probe's operations (MatMul, Softmax, reductions) to try a provider on. */
function providerCheckModel(): { bytes: Uint8Array; input: Float32Array } {
  const builder = new OnnxGraphBuilder(17);
  builder.input('x', TensorDataType.FLOAT, [2, 8, 8]);
  const weight = builder.floatConstant(Array.from({ length: 64 }, (_, i) => Math.sin(i)), [8, 8]);
  const scores = builder.op('Softmax', [builder.op('MatMul', ['x', weight])], { axis: -1 });
  builder.op('ReduceSumSquare', [builder.op('MatMul', [scores, 'x'])], { axes: [1, 2], keepdims: 0 }, 'y');
  builder.output('y', TensorDataType.FLOAT, [2]);
  return { bytes: builder.encode(), input: Float32Array.from({ length: 128 }, (_, i) => Math.cos(i * 0.37)) };
}

async function runCheck(provider: ExecutionProviderName): Promise<Float32Array> {
  const { bytes, input } = providerCheckModel();
  const session = await createSession(bytes, { provider, logSeverityLevel: 4 });
  try {
    const output = await session.run({ x: new ort.Tensor('float32', input, [2, 8, 8]) });
    return output.y.data as Float32Array;
  } finally {
    await session.release();
  }
}

/**
 * Picks the provider to run on. `auto` tries this platform's GPU providers in order and keeps
 * the first that creates a session and agrees with cpu on a check model; a named provider must
 * work or the request fails with the reason. There is no silent fallback inside onnxruntime,
 * so every attempt is reported.
 */
export async function chooseExecutionProvider(requested: ExecutionProviderRequest): Promise<{ used: ExecutionProviderName; tried: ProviderAttempt[] }> {
  const tried: ProviderAttempt[] = [];
  const reference = await runCheck('cpu');
  if (requested === 'cpu') return { used: 'cpu', tried: [{ name: 'cpu', ok: true, reason: 'requested' }] };
  const candidates = requested === 'auto' ? gpuProvidersForPlatform() : [requested];
  for (const name of candidates) {
    try {
      const result = await runCheck(name);
      const worst = Math.max(...Array.from(result, (value, i) => Math.abs(value - reference[i]) / Math.max(Math.abs(reference[i]), 1e-6)));
      if (!(worst < 1e-3)) {
        tried.push({ name, ok: false, reason: `disagreed with cpu on a check model (relative difference ${worst.toExponential(1)})` });
        continue;
      }
      tried.push({ name, ok: true, reason: 'available; agreed with cpu on a check model' });
      return { used: name, tried };
    } catch (error) {
      tried.push({ name, ok: false, reason: providerFailureReason(name, error) });
    }
  }
  if (requested !== 'auto') {
    throw new UsageError(`Execution provider '${requested}' cannot run here: ${tried[0].reason}. Use --ep auto or --ep cpu.`);
  }
  tried.push({ name: 'cpu', ok: true, reason: 'fallback: no GPU provider is usable on this machine' });
  return { used: 'cpu', tried };
}

function providerFailureReason(name: ExecutionProviderName, error: unknown): string {
  const detail = describeOrtError(error);
  if (name === 'cuda' && /shared library|providers_shared|libonnxruntime_providers_cuda/.test(detail)) {
    return "CUDA provider libraries are not installed (run 'npm rebuild onnxruntime-node --onnxruntime-node-install=cuda12' with network access; needs CUDA 12 and cuDNN 9)";
  }
  if (/backend not found|no available backend/.test(detail)) return `not built into onnxruntime-node on ${os.platform()}-${os.arch()}`;
  if (name === 'webgpu') {
    return 'no usable GPU adapter was found (WebGPU needs a GPU driver with Vulkan on Linux, Direct3D 12 on Windows, Metal on macOS)';
  }
  return detail;
}
