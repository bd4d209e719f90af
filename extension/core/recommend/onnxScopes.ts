// Framework module names as the ONNX file shows them: in node names scoped by PyTorch's exporter
// ("/blocks/blocks.1/attn/qkv/MatMul") and in initializer names ("head.weight").
import { elementCount, OnnxModel } from '../onnx/onnxModel';

/** True when a parameter or module `name` lies under `module` (or is it). */
export function isUnder(name: string, module: string): boolean {
  return name === module || name.startsWith(`${module}.`);
}

/**
 * The module a scoped node name belongs to: "/blocks/blocks.1/attn/qkv/MatMul" -> "blocks.1.attn.qkv".
 * PyTorch names a numbered child after its container ("blocks" then "blocks.1", "mlp" then
 * "mlp.0"), so a segment that extends the previous one replaces it. Null for unscoped names.
 */
export function moduleOfScopedNodeName(nodeName: string): string | null {
  if (!nodeName.startsWith('/')) return null;
  const segments = nodeName.split('/').filter((segment) => segment.length > 0);
  segments.pop(); // the operator's own name
  const parts: string[] = [];
  for (const segment of segments) {
    const previous = parts[parts.length - 1];
    if (previous !== undefined && segment.startsWith(`${previous}.`)) parts[parts.length - 1] = segment;
    else parts.push(segment);
  }
  return parts.length > 0 ? parts.join('.') : null;
}

export interface ModuleParameters {
  names: string[];
  count: number;
}

/** Parameters of a module, found in a model; null when the model has none under that name. */
export type ModuleParameterLookup = (module: string) => ModuleParameters | null;

const FLOAT_TYPES = new Set([1, 10, 11, 16]); // float, float16, double, bfloat16
const FRAMEWORK_PARAMETER = /\.(weight|bias)$|^[A-Za-z_][\w.]*$/;

function isFrameworkParameterName(name: string): boolean {
  return !name.includes('::') && !name.startsWith('/') && FRAMEWORK_PARAMETER.test(name);
}

/**
 * Looks up a module's parameters in an ONNX model: initializers named after the module
 * ("head.weight", or "proj" itself), plus weights the exporter renamed (onnx::MatMul_12) on
 * MatMul/Gemm nodes scoped under the module, counted as "<scope>.weight".
 */
export function onnxModuleParameterLookup(model: OnnxModel): ModuleParameterLookup {
  const renamedWeights = new Map<string, { scope: string; count: number }>();
  for (const node of model.nodes) {
    if (node.opType !== 'MatMul' && node.opType !== 'Gemm') continue;
    const scope = moduleOfScopedNodeName(node.name);
    if (!scope) continue;
    for (const input of node.inputs) {
      const tensor = model.initializers.get(input);
      if (tensor && FLOAT_TYPES.has(tensor.dataType) && tensor.dims.length === 2 && !isFrameworkParameterName(tensor.name)) {
        renamedWeights.set(tensor.name, { scope, count: elementCount(tensor.dims) });
      }
    }
  }
  return (module) => {
    const names: string[] = [];
    let count = 0;
    for (const tensor of model.initializers.values()) {
      if (FLOAT_TYPES.has(tensor.dataType) && isFrameworkParameterName(tensor.name) && isUnder(tensor.name, module)) {
        names.push(tensor.name);
        count += elementCount(tensor.dims);
      }
    }
    for (const { scope, count: elements } of renamedWeights.values()) {
      const name = `${scope}.weight`;
      if (isUnder(scope, module) && !names.includes(name)) {
        names.push(name);
        count += elements;
      }
    }
    return names.length > 0 ? { names, count } : null;
  };
}
