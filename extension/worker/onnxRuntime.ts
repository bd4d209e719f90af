// The one module that loads onnxruntime-node: session creation, execution provider probing.
// Loaded only inside the worker process (its calls block the thread that makes them).
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import { ExecutionProviderName, ExecutionProviderRequest, ProviderAttempt } from '../core/report/reportSchema';
import { OnnxGraphBuilder } from '../core/onnx/onnxWriter';
import { TensorDataType } from '../core/onnx/onnxModel';
import { ModelFileError } from '../core/errors';
import { describeGpuAdapter } from './gpuAdapter';

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
  /**
   * false for models run once. A session run batch after batch keeps its activations in
   * onnxruntime's arena: without it, each run's buffers went back to the process heap, which
   * kept them fragmented (ViT-B/16: peak 1.5 to 1.9x the file from run to run, 1.64x with it,
   * and about 8% faster).
   */
  memoryArena?: boolean;
}

export async function createSession(bytes: Uint8Array, options: SessionOptions): Promise<ort.InferenceSession> {
  const session: Record<string, string> = {};
  if (options.externalDataFolder) session.model_external_initializers_file_folder_path = options.externalDataFolder;
  if (options.prepackWeights === false) session.disable_prepacking = '1';
  return ort.InferenceSession.create(bytes, {
    executionProviders: [options.provider],
    graphOptimizationLevel: options.graphOptimizationLevel ?? 'all',
    enableCpuMemArena: options.memoryArena ?? true,
    // One thread per core: onnxruntime-node otherwise ran the probe on one thread of two here
    // (ViT-B/16: 0.20 against 0.12 s per pair on 2 cores).
    intraOpNumThreads: os.availableParallelism(),
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
  const weight = builder.floatConstant(
    Array.from({ length: 64 }, (_, i) => Math.sin(i)),
    [8, 8],
  );
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

/** How far two runs' outputs may differ, relative, and still count as agreeing. */
export const PROVIDER_AGREEMENT = 1e-3;

/** The largest relative difference between a provider's outputs and cpu's. */
export function worstRelativeDifference(result: Float32Array, reference: Float32Array): number {
  let worst = 0;
  for (let i = 0; i < result.length; i++) {
    const difference = Math.abs(result[i] - reference[i]) / Math.max(Math.abs(reference[i]), 1e-6);
    worst = Math.max(worst, Number.isNaN(difference) ? Infinity : difference);
  }
  return worst;
}

/** The sentence of a failure on an explicitly requested provider (the command line exits 3 with it). */
export function providerFailure(provider: ExecutionProviderName, what: string): ModelFileError {
  return new ModelFileError(`Execution provider '${provider}' cannot run here: ${what}. Use --ep auto (falls back to cpu) or --ep cpu.`);
}

/** The provider an analysis runs on, and every provider tried on the way (the report's `tried`). */
export interface ProviderChoice {
  used: ExecutionProviderName;
  tried: ProviderAttempt[];
}

/**
 * The provider to prepare the probe on. `auto` tries this platform's GPU providers in order and
 * keeps the first that creates a session and agrees with cpu on a check model; whether it is
 * kept is decided later, on the real probe (PairMeasurer: checked against cpu and timed). A
 * named provider must work or the request fails with the reason. There is no silent fallback
 * inside onnxruntime, so every attempt is reported.
 */
export async function chooseExecutionProvider(requested: ExecutionProviderRequest): Promise<ProviderChoice> {
  const tried: ProviderAttempt[] = [];
  const reference = await runCheck('cpu');
  if (requested === 'cpu') return { used: 'cpu', tried: [{ name: 'cpu', ok: true, reason: 'requested' }] };
  const candidates = requested === 'auto' ? gpuProvidersForPlatform() : [requested];
  for (const name of candidates) {
    const adapter = name === 'webgpu' ? describeGpuAdapter()?.text : undefined;
    const attempt = (ok: boolean, reason: string): ProviderAttempt => ({ name, ok, reason, ...(adapter ? { adapter } : {}) });
    try {
      const worst = worstRelativeDifference(await runCheck(name), reference);
      if (!(worst < PROVIDER_AGREEMENT)) {
        tried.push(attempt(false, `disagreed with cpu on a check model (relative difference ${worst.toExponential(1)})`));
        continue;
      }
      tried.push(attempt(true, 'available; agreed with cpu on a check model'));
      return { used: name, tried };
    } catch (error) {
      tried.push(attempt(false, providerFailureReason(name, error)));
    }
  }
  if (requested !== 'auto') throw providerFailure(requested, tried[0].reason);
  tried.push({ name: 'cpu', ok: true, reason: 'fallback: no GPU provider is usable on this machine' });
  return { used: 'cpu', tried };
}

/** True when onnxruntime-node's CUDA provider library lies beside its binding (installed with ONNXRUNTIME_NODE_INSTALL=cuda12). */
function cudaProviderInstalled(): boolean {
  try {
    const packageFolder = path.dirname(require.resolve('onnxruntime-node/package.json'));
    return fs.existsSync(path.join(packageFolder, 'bin', 'napi-v6', os.platform(), os.arch(), 'libonnxruntime_providers_cuda.so'));
  } catch {
    return false;
  }
}

/** Why a provider failed, as the user can act on it (the install and driver cases named). */
export function providerFailureReason(name: ExecutionProviderName, error: unknown): string {
  const detail = describeOrtError(error);
  if (name === 'cuda') {
    if (!cudaProviderInstalled()) {
      return "its provider libraries are not installed (run 'ONNXRUNTIME_NODE_INSTALL=cuda12 npm rebuild onnxruntime-node --ignore-scripts=false' with network access; needs CUDA 12 and cuDNN 9)";
    }
    const library = /lib(cudart|cublas|cublasLt|cudnn|cufft|curand|nvrtc)[^ :]*\.so[.0-9]*/.exec(detail)?.[0];
    if (library || /Failed to load shared library/i.test(detail)) {
      return `its provider libraries are installed but ${library ?? 'CUDA 12 or cuDNN 9'} could not be loaded: install CUDA 12 and cuDNN 9 and put their lib folders on LD_LIBRARY_PATH`;
    }
    if (/driver version is insufficient|CUDA driver|no CUDA-capable device|cudaErrorNoDevice|cudaErrorInsufficientDriver/i.test(detail)) {
      return 'the NVIDIA driver is missing or too old for CUDA 12 (nvidia-smi must list the GPU and a driver of version 525 or later)';
    }
  }
  if (/backend not found|no available backend/.test(detail)) return `not built into onnxruntime-node on ${os.platform()}-${os.arch()}`;
  if (name === 'webgpu' && /adapter/i.test(detail)) {
    return 'no usable GPU adapter was found (WebGPU needs a GPU driver with Vulkan on Linux, Direct3D 12 on Windows, Metal on macOS)';
  }
  return detail;
}
