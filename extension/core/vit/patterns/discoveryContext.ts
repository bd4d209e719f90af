// What every discovery pattern reads: the canonical graph's index and the layer norms and linear
// layers found in it once, before blocks are resolved.
import { GraphIndex } from '../../graph/graphIndex';
import type { LayerNormIndex } from './layerNorms';
import type { LinearIndex } from './linears';

export interface DiscoveryContext {
  graph: GraphIndex;
  layerNorms: LayerNormIndex;
  linears: LinearIndex;
}
