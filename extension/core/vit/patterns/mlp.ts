// The MLP: FC1, an activation, FC2.
import { Activation, LinearLayer } from '../vitStructure';
import { DiscoveryContext } from './discoveryContext';
import { BlockResolutionError } from './nodeMatching';

/** The second MLP linear after fc1, and the activation between them. */
export function mlpAfter(context: DiscoveryContext, fc1: LinearLayer): { fc2: LinearLayer; activation: Activation } {
  const { graph, linears } = context;
  const seen = new Set<string>();
  const ops = new Set<string>();
  let frontier = [fc1.output];
  for (let depth = 0; depth < 12; depth++) {
    const nextFrontier: string[] = [];
    for (const tensor of frontier) {
      for (const node of graph.consumersOf(tensor)) {
        const linear =
          node.opType === 'MatMul' || node.opType === 'Gemm' ? linears.byInput.get(node.inputs[0])?.find((candidate) => candidate.input === node.inputs[0]) : undefined;
        if (linear && linear !== fc1) return { fc2: linear, activation: classifyActivation(context, ops, fc1.output) };
        if (seen.has(node.outputs[0])) continue;
        seen.add(node.outputs[0]);
        ops.add(node.opType);
        nextFrontier.push(...node.outputs);
      }
    }
    frontier = nextFrontier;
  }
  throw new BlockResolutionError('no second MLP linear layer (FC2) follows FC1');
}

function classifyActivation(context: DiscoveryContext, ops: Set<string>, fc1Output: string): Activation {
  const { graph } = context;
  if (ops.has('Gelu')) {
    const gelu = graph.consumersOf(fc1Output).find((node) => node.opType === 'Gelu');
    return gelu?.attributes.get('approximate')?.s === 'tanh' ? 'gelu_tanh' : 'gelu';
  }
  if (ops.has('FastGelu')) return 'gelu_tanh';
  if (ops.has('Erf')) return 'gelu';
  if (ops.has('Tanh')) return 'gelu_tanh';
  if (ops.has('Sigmoid')) {
    const sigmoidInput = graph.consumersOf(fc1Output).find((node) => node.opType === 'Mul');
    const factor = sigmoidInput ? sigmoidInput.inputs.map((input) => graph.scalar(input)).find((value) => value !== undefined) : undefined;
    return factor !== undefined && Math.abs(factor - 1.702) < 1e-3 ? 'quick_gelu' : 'silu';
  }
  if (ops.has('Relu')) return 'relu';
  throw new BlockResolutionError(`the activation between FC1 and FC2 (${[...ops].join(', ')}) is not one of GELU, tanh-GELU, quick-GELU, SiLU or ReLU`);
}
