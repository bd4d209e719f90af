// Models made from a real export by rewriting its graph, the weights read from the export:
// - its transformer blocks repeated, each copy reading the previous copy's output. A 3-block
//   fixture copied 4 times is a 12-block ViT with a few hundred kilobytes of weights, as deep as
//   ViT-S and ViT-B, where the probe graphs' widest nodes grow with the number of blocks;
// - one tensor scaled before its consumers read it: a part of a block (a layer scale) that the
//   discovered structure does not name;
// - nodes replaced by others (a rotary model's tables as constants, or made to depend on pixels).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { NodeInfo, OnnxModel, readOnnxModel, TensorDataType } from '../../extension/core/onnx/onnxModel';
import { OnnxGraphBuilder } from '../../extension/core/onnx/onnxWriter';
import { discoverVit } from '../../extension/core/vit/discoverVit';

/** Writes `source` with its blocks repeated `copies` times to `file`, the weights shared by the copies and read from a copy of `source` beside `file`. */
export function writeStackedBlocksModel(source: string, copies: number, file: string): void {
  const model = readOnnxModel(source);
  const structure = discoverVit(model);
  // A plain float32 export: every canonical node is the file's own.
  const fileNodes = (targets: string[]) => structure.graph.ancestors(targets).map((node) => node.verbatim!);
  const embedding = new Set(fileNodes([structure.embeddingOutput]));
  const lastOutput = structure.blocks[structure.blocks.length - 1].output;
  const blockNodes = fileNodes([lastOutput]).filter((node) => !embedding.has(node));
  const produced = new Set(blockNodes.flatMap((node) => node.outputs));

  const builder = new OnnxGraphBuilder(model.opsetImports);
  builder.input(structure.inputName, TensorDataType.FLOAT, structure.inputShape);
  // Copy k renames what the blocks compute; its input is copy k - 1's last output.
  const nameIn =
    (copy: number) =>
    (tensor: string): string => {
      if (tensor === structure.embeddingOutput && copy > 0) return nameIn(copy - 1)(lastOutput);
      return produced.has(tensor) && copy > 0 ? `${tensor}__copy${copy}` : tensor;
    };
  for (const node of model.nodes) {
    if (embedding.has(node)) builder.copyNode(model, node);
  }
  for (let copy = 0; copy < copies; copy++) {
    for (const node of blockNodes) builder.copyNodeRenamed(model, node, nameIn(copy));
  }
  // The head reads the last copy.
  for (const node of model.nodes) {
    if (!embedding.has(node) && !blockNodes.includes(node)) builder.copyNodeRenamed(model, node, nameIn(copies - 1));
  }
  writeDerivedModel(builder, model, source, file);
}

/** Writes `source` with `tensor` multiplied by `factor` where its consumers read it, to `file`. */
export function writeScaledTensorModel(source: string, tensor: string, factor: number, file: string): void {
  const model = readOnnxModel(source);
  const builder = new OnnxGraphBuilder(model.opsetImports);
  const structure = discoverVit(model);
  builder.input(structure.inputName, TensorDataType.FLOAT, structure.inputShape);
  const scaled = `${tensor}__scaled`;
  for (const node of model.nodes) {
    if (node.outputs.includes(tensor)) {
      // Its producer as it was, then the scale; every consumer reads the scaled tensor.
      builder.copyNode(model, node);
      builder.op('Mul', [tensor, builder.floatConstant([factor], [], 'scale')], {}, scaled);
    } else {
      builder.copyNodeRenamed(model, node, (name) => (name === tensor ? scaled : name));
    }
  }
  writeDerivedModel(builder, model, source, file);
}

/**
 * Writes `source` to `file` with nodes replaced: `replace` writes a node's outputs itself and
 * returns true, or returns false to keep the node as it is.
 */
export function writeReplacedNodesModel(source: string, file: string, replace: (builder: OnnxGraphBuilder, node: NodeInfo) => boolean): void {
  const model = readOnnxModel(source);
  const builder = new OnnxGraphBuilder(model.opsetImports);
  for (const input of model.inputs) {
    if (!model.initializers.has(input.name))
      builder.input(
        input.name,
        TensorDataType.FLOAT,
        (input.shape ?? []).map((dim) => dim.value ?? dim.param ?? '?'),
      );
  }
  for (const node of model.nodes) if (!replace(builder, node)) builder.copyNode(model, node);
  writeDerivedModel(builder, model, source, file);
}

/** Adds the source's weights and outputs, writes `file`, and puts a copy of `source` beside it (the weights are referenced in it by its name). */
function writeDerivedModel(builder: OnnxGraphBuilder, model: OnnxModel, source: string, file: string): void {
  for (const node of model.nodes) {
    for (const input of node.inputs) {
      const initializer = input ? model.initializers.get(input) : undefined;
      if (initializer && !builder.hasInitializer(initializer.name)) builder.useInitializer(model, initializer);
    }
  }
  for (const output of model.outputs) builder.output(output.name, TensorDataType.FLOAT);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, builder.encode());
  const beside = path.join(path.dirname(file), path.basename(source));
  if (!fs.existsSync(beside)) fs.copyFileSync(source, beside);
}
