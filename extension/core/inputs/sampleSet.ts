// The sample ViT and its images as laid out in a samples folder (the repository's, which the
// command line's default reads, and the installed extension's copy of it).
import * as path from 'node:path';

export interface SampleSet {
  model: string;
  reference: string;
  target: string;
}

export function sampleSetIn(folder: string): SampleSet {
  return { model: path.join(folder, 'sample-vit.onnx'), reference: path.join(folder, 'reference'), target: path.join(folder, 'target') };
}
