// Runs images through a model's own embedding (the embedder model: its nodes up to the tensor
// entering block 0) and returns token embeddings laid out [images, tokens, d], whatever layout
// the model keeps them in.
import { ModelFileError } from '../core/errors';
import { PROBE_FINAL_OUTPUT, EMBEDDER_OUTPUT } from '../core/probe/probeModels';
import { VitStructure } from '../core/vit/vitStructure';
import { ort } from './onnxRuntime';

export interface Embeddings {
  /** [images, tokens, d]. */
  embedding: Float32Array;
  /** The last block's outputs, same layout, when asked for (in-context mode's check). */
  final?: Float32Array;
}

export class ImageEmbedder {
  /** Embedding layout: true when the model keeps tokens first ([tokens, batch, d], as OpenAI CLIP). */
  private tokensFirst: boolean | undefined;
  /** Tokens per image, known after the first image. */
  tokens = 0;

  constructor(
    private readonly modelName: string,
    private readonly structure: VitStructure,
    private readonly imageSize: [number, number],
  ) {}

  /** Embeds `images` ([channels, height, width] each) with an embedder session. */
  async embed(embedder: ort.InferenceSession, images: Float32Array[], withFinal: boolean): Promise<Embeddings> {
    const d = this.structure.hiddenSize;
    const [height, width] = this.imageSize;
    const channels = this.structure.channels;
    const imageLength = channels * height * width;
    const embeddings: Float32Array[] = [];
    const finals: Float32Array[] = [];
    for (let start = 0; start < images.length;) {
      // The first image runs alone to learn the layout; fixed-batch models always run one by one.
      const perRun = this.structure.dynamicBatch && this.tokensFirst !== undefined ? images.length - start : 1;
      const group = images.slice(start, start + perRun);
      const input = new Float32Array(group.length * imageLength);
      group.forEach((image, i) => input.set(image, i * imageLength));
      const outputs = await embedder.run({ [this.structure.inputName]: new ort.Tensor('float32', input, [group.length, channels, height, width]) });
      const embedding = outputs[EMBEDDER_OUTPUT];
      this.learnLayout(embedding.dims, group.length);
      embeddings.push(this.toImagesFirst(embedding.data as Float32Array, group.length, d));
      if (withFinal) finals.push(this.toImagesFirst(outputs[PROBE_FINAL_OUTPUT].data as Float32Array, group.length, d));
      start += group.length;
    }
    return { embedding: concatFloats(embeddings), final: withFinal ? concatFloats(finals) : undefined };
  }

  private learnLayout(dims: readonly number[], batch: number): void {
    if (this.tokensFirst !== undefined) return;
    const d = this.structure.hiddenSize;
    if (dims.length === 2 && batch === 1 && dims[1] === d) {
      this.tokensFirst = false;
      this.tokens = dims[0];
    } else if (dims.length === 3 && dims[2] === d && batch === 1 && (dims[0] === 1 || dims[1] === 1)) {
      this.tokensFirst = dims[0] !== 1;
      this.tokens = this.tokensFirst ? dims[0] : dims[1];
    } else {
      throw new ModelFileError(`${this.modelName}: the tensor entering block 0 has shape [${dims.join(', ')}], not [batch, tokens, ${d}]; this layout is not supported.`);
    }
  }

  private toImagesFirst(data: Float32Array, batch: number, d: number): Float32Array {
    if (!this.tokensFirst || batch === 1) return data;
    const tokens = this.tokens;
    const out = new Float32Array(data.length);
    for (let t = 0; t < tokens; t++) for (let b = 0; b < batch; b++) out.set(data.subarray((t * batch + b) * d, (t * batch + b + 1) * d), (b * tokens + t) * d);
    return out;
  }
}

export function concatFloats(parts: Float32Array[]): Float32Array {
  if (parts.length === 1) return parts[0];
  const out = new Float32Array(parts.reduce((sum, part) => sum + part.length, 0));
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}
