// Largest eigenvalues of stacks of small matrices, as ONNX graph nodes: power iteration unrolled
// a fixed number of steps (no loops, so every provider runs it), ending with a Rayleigh quotient
// and the relative change of that quotient over the last step.
//
// Plain power iteration is too slow for weights with nearly equal top singular values (random
// or barely trained layers: λ₂/λ₁ = 0.998 on a seeded ViT-B), so the steps run on M^(2^s),
// formed by s repeated squarings: each squaring doubles the effective number of steps for the
// cost of one small batched product. The quotient is then taken on M itself, so rounding in the
// squared matrices only tilts the vector, which the quotient feels to second order.
import { OnnxGraphBuilder } from '../onnx/onnxWriter';

/**
 * A stack [batch, size, size] of matrices M = left · right, both symmetric positive
 * semi-definite (left omitted: M = right). Such an M has real, non-negative eigenvalues, the
 * same nonzero ones as right · left, which is self-adjoint for <x, y> = xᵀ left y.
 */
export interface EigenStack {
  right: string;
  left?: string;
  size: number;
}

export interface EigenEstimate {
  /** [batch]: the quotient after the last step (a lower estimate of each λ_max). */
  eigenvalues: string;
  /** Scalar: max over the stack of |q_last - q_previous| / q_last. */
  lastStepChange: string;
}

// Guards 0/0 on an all-zero matrix (its estimate then comes out 0, not NaN).
const TINY = 1e-30;

/**
 * λ_max of every matrix of the stack, after `squarings` squarings and `iterations` steps.
 * Vectors are rows [batch, 1, size] (a row times a matrix streams its rows: about twice as fast
 * in onnxruntime as a matrix times a column), so they converge to the top eigenvector w of
 * Mᵀ = right · left; the quotient q = (u · t) / (w · u), u = left w (or w), t = right u, is the
 * Rayleigh quotient of right · left in the `left` inner product (wᵀGw / wᵀw when left = I).
 * It never exceeds λ_max and its error falls like (λ₂/λ₁)^(2 · 2^s · steps).
 */
export function largestEigenvalues(b: OnnxGraphBuilder, stack: EigenStack, iterations: number, squarings: number): EigenEstimate {
  if (!Number.isInteger(iterations) || iterations < 2) throw new Error(`power iteration needs at least 2 steps, not ${iterations}`);
  const tiny = b.floatConstant([TINY], [], 'tiny');
  const normalized = (tensor: string, axes: number[]) => b.op('Div', [tensor, b.op('Max', [b.op('ReduceL2', [tensor], { axes, keepdims: 1 }), tiny])]);
  const columnShape = b.intConstant([0, -1, 1]);
  const dot = (x: string, y: string) => b.op('MatMul', [x, b.op('Reshape', [y, columnShape])]); // rows [batch, 1, size] -> [batch, 1, 1]
  const quotient = (w: string) => {
    const u = stack.left ? b.op('MatMul', [w, stack.left]) : w;
    const t = b.op('MatMul', [u, stack.right]);
    return b.op('Div', [dot(u, t), b.op('Max', [dot(w, u), tiny])]);
  };

  let power = stack.left ? b.op('MatMul', [stack.left, stack.right]) : stack.right;
  for (let squaring = 0; squaring < squarings; squaring++) {
    const scaled = normalized(power, [1, 2]); // keeps entries of M^(2^s) in float32 range
    power = b.op('MatMul', [scaled, scaled]);
  }

  let vector = b.floatConstant(startVector(stack.size), [1, 1, stack.size], 'start_vector'); // broadcast over the batch
  let previous = '';
  for (let step = 1; step <= iterations; step++) {
    if (step === iterations) previous = vector;
    vector = normalized(b.op('MatMul', [vector, power]), [2]);
  }
  const last = quotient(vector);
  const change = b.op('Div', [b.op('Abs', [b.op('Sub', [last, quotient(previous)])]), b.op('Max', [last, tiny])]);
  return {
    eigenvalues: b.op('Reshape', [last, b.intConstant([-1])]),
    lastStepChange: b.op('ReduceMax', [change], { keepdims: 0 }),
  };
}

/**
 * A fixed, pseudo-random unit start vector. A constant vector could be orthogonal to the top
 * eigenvector of structured matrices; the golden-angle sequence has no such pattern.
 */
function startVector(size: number): Float32Array {
  const values = Array.from({ length: size }, (_, i) => 0.5 + Math.sin(2.399963 * (i + 1)));
  const norm = Math.hypot(...values);
  return Float32Array.from(values, (value) => value / norm);
}
