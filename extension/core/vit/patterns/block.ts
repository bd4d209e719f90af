// A transformer block around its attention: pre-norm (LN1 -> MHA -> add, LN2 -> MLP -> add) or
// post-norm (MHA -> add -> LN1, MLP -> add -> LN2).
import { ConstantTensor } from '../../graph/constantTensor';
import { Activation, AttentionLayer, GatedMlp, LayerNormLayer, LinearLayer } from '../vitStructure';
import { DiscoveryContext } from './discoveryContext';
import { BlockResolutionError } from './nodeMatching';
import { resolveMlp } from './mlp';
import { residualAdd } from './residual';

/** A block's parts as structure found them, before they are named. */
export interface BlockParts {
  input: string;
  output: string;
  ln1: LayerNormLayer;
  attention: AttentionLayer;
  ln2: LayerNormLayer;
  fc1: LinearLayer[];
  fc2: LinearLayer;
  activation: Activation;
  gatedMlp?: GatedMlp;
  layerScale: { attention?: ConstantTensor; mlp?: ConstantTensor };
}

export function resolveBlock(context: DiscoveryContext, attention: AttentionLayer): BlockParts {
  const { graph, layerNorms } = context;
  const preNormLn1 = layerNorms.byOutput.get(attention.input);
  const width = attention.outProjection.outFeatures;
  let parts: BlockParts;
  if (preNormLn1) {
    const ln1 = preNormLn1;
    const input = ln1.input;
    const attentionResidual = residualAdd(context, attention.output, 'attention', width);
    if (graph.sourceThroughLayout(attentionResidual.skip) !== input && attentionResidual.skip !== input) {
      throw new BlockResolutionError('the attention residual does not add the block input');
    }
    const mid = attentionResidual.add.outputs[0];
    const ln2 = layerNorms.on(mid, 'LN2');
    const mlp = resolveMlp(context, ln2.output, 'FC1 after LN2');
    const mlpResidual = residualAdd(context, mlp.fc2.output, 'MLP', width);
    if (mlpResidual.skip !== mid) throw new BlockResolutionError('the MLP residual does not add the attention residual');
    parts = {
      input,
      output: mlpResidual.add.outputs[0],
      ln1,
      attention,
      ln2,
      ...mlp,
      layerScale: { attention: attentionResidual.layerScale, mlp: mlpResidual.layerScale },
    };
  } else {
    const attentionResidual = residualAdd(context, attention.output, 'attention', width);
    const ln1 = layerNorms.on(attentionResidual.add.outputs[0], 'LN1 after attention (post-norm)');
    const mlp = resolveMlp(context, ln1.output, 'FC1 after LN1');
    const mlpResidual = residualAdd(context, mlp.fc2.output, 'MLP', width);
    const ln2 = layerNorms.on(mlpResidual.add.outputs[0], 'LN2 after the MLP (post-norm)');
    parts = {
      input: attention.input,
      output: ln2.output,
      ln1,
      attention,
      ln2,
      ...mlp,
      layerScale: { attention: attentionResidual.layerScale, mlp: mlpResidual.layerScale },
    };
  }
  const { ln1, ln2, fc1, fc2, gatedMlp } = parts;
  const fc1Width = fc1.reduce((sum, linear) => sum + linear.outFeatures, 0);
  // A gated MLP's FC2 reads the gated product, half of FC1's outputs wide.
  const hidden = gatedMlp ? fc1Width / 2 : fc1Width;
  if (ln1.width !== width || ln2.width !== width || fc1.some((linear) => linear.inFeatures !== width) || fc2.outFeatures !== width || fc2.inFeatures !== hidden) {
    throw new BlockResolutionError(
      `its widths disagree (LN1 ${ln1.width}, attention ${width}, LN2 ${ln2.width}, FC1 ${fc1.map((linear) => `${linear.inFeatures}->${linear.outFeatures}`).join(' + ')}, FC2 ${fc2.inFeatures}->${fc2.outFeatures})`,
    );
  }
  return parts;
}
