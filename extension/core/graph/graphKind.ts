// What kind of graph a model file holds (weight storage, fused operators, activation quantization)
// and the one sentence that tells the user what the engine measures for it.

/** What the canonical graph had to rewrite: shown to the user, and in the report. */
export interface GraphKind {
  /** How the block weights are stored: 'float32', 'float16', 'int8', 'uint8', '4-bit' (several when mixed). */
  weightStorage: string[];
  /** Fused operators found and expanded (e.g. 'com.microsoft.Attention'). */
  fusedOperators: string[];
  /** Activation quantization found and not applied ('dynamic', 'static QDQ'). */
  activationQuantization: string[];
}

/** Integer storage read as its dequantized float32 value. */
const QUANTIZED_STORAGE = new Set(['int8', 'uint8', '4-bit']);

/**
 * One sentence saying what the engine measures for a graph of this kind, e.g. "float16 weights,
 * measured in float32 on the upcast weights".
 */
export function graphKindSummary(kind: GraphKind): string {
  const parts: string[] = [];
  const storage = kind.weightStorage.length > 0 ? kind.weightStorage.join(' and ') : 'float32';
  const quantized = kind.weightStorage.some((type) => QUANTIZED_STORAGE.has(type));
  if (quantized) parts.push(`${storage} weights, measured in float32 on the dequantized weights`);
  else if (storage !== 'float32') parts.push(`${storage} weights, measured in float32 on the upcast weights`);
  else parts.push('float32 weights');
  if (kind.activationQuantization.length > 0) parts.push(`activation quantization not applied (${kind.activationQuantization.join('; ')})`);
  if (kind.fusedOperators.length > 0) parts.push(`fused operators read as the plain operators they compute (${kind.fusedOperators.join(', ')})`);
  return parts.join('; ');
}

/** True when the measured function differs from the file's own beyond float32 rounding. */
export function measuresAnotherPrecision(kind: GraphKind): boolean {
  return kind.activationQuantization.length > 0 || kind.weightStorage.some((type) => type !== 'float32');
}
