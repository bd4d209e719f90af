// Largest eigenvalues of symmetric positive semi-definite operators, in two halves: the Lanczos
// recurrence as an ONNX Loop of a fixed number of steps (run on cpu, like all of the bounds),
// and the largest eigenvalue of the small tridiagonal matrix it yields, in float64
// (tridiagonal.ts).
//
// Why Lanczos and not power iteration: the weights of random or barely trained layers have
// nearly equal top singular values (σ₂/σ₁ = 0.999 on a seeded ViT-B), where power iteration needs
// thousands of steps; Lanczos needs tens, because its estimate is the best one in the whole Krylov
// space, not the last vector's. FC weights are applied without forming Gram matrices: each step
// streams the weight twice (W, then Wᵀ); on a ViT-B, forming a d x d Gram costs as much as all of
// its steps.
//
// Loss of orthogonality in float32 leaves the largest Ritz value accurate (Paige): it only adds
// copies of converged values, never a value above the spectrum beyond rounding.
import { TensorDataType } from '../onnx/onnxModel';
import { OnnxGraphBuilder } from '../onnx/onnxWriter';

/**
 * A batch of operators A, each self-adjoint for the inner product <x, y> = xᵀ M y (M = I when
 * `metric` is absent), on a batch of vectors whose features lie along `featureAxis`: rows
 * [batch, n] or [batch, 1, n].
 */
export interface LanczosOperator {
  /** n: the dimension the vectors live in. */
  size: number;
  /** The shape of a batch of vectors ([batch, n] or [batch, 1, n]). */
  vectorShape: number[];
  /** The axis holding the n features of a vector. */
  featureAxis: number;
  /** A v, given v and m = M v (m = v without a metric). */
  apply(b: OnnxGraphBuilder, vector: string, metricVector: string): string;
  /** M v: the inner product's matrix, symmetric positive definite. */
  metric?(b: OnnxGraphBuilder, vector: string): string;
}

/** Names of the recurrence's coefficients, each [batch, steps]. */
export interface LanczosCoefficients {
  /** The tridiagonal matrix's diagonal. */
  alpha: string;
  /** Its off-diagonal: beta[j] joins steps j and j + 1 (the last one is the residual's size). */
  beta: string;
  steps: number;
}

// Guards 0/0 when the Krylov space is exhausted or the matrix is zero: the next vector is then 0
// and the remaining coefficients 0, which leaves the tridiagonal's largest eigenvalue unchanged.
const TINY = 1e-30;

/**
 * `steps` Lanczos steps of `operator` from a fixed start vector (at most n: n steps span the
 * whole space). The eigenvalues of the tridiagonal matrix (alpha, beta) approximate A's from
 * inside the spectrum; its largest converges to λ_max from below.
 *
 * The steps are one ONNX Loop: onnxruntime spends tens of microseconds per node at session
 * creation and again per run, so unrolled steps cost more than they compute; and a loop over one
 * weight keeps that weight in the processor's cache from one step to the next.
 */
export function lanczosCoefficients(b: OnnxGraphBuilder, operator: LanczosOperator, steps: number): LanczosCoefficients {
  if (!Number.isInteger(steps) || steps < 2) throw new Error(`Lanczos needs at least 2 steps, not ${steps}`);
  const count = Math.min(steps, operator.size);
  const scalarShape = operator.vectorShape.map((dim, axis) => (axis === operator.featureAxis ? 1 : dim));
  const vectorMath = (g: OnnxGraphBuilder) => {
    const tiny = g.floatConstant([TINY], [], 'tiny');
    const singleRow = operator.vectorShape.length === 2 && operator.featureAxis === 1 && operator.vectorShape[0] === 1;
    const axis = singleRow ? '' : g.intConstant([operator.featureAxis]);
    // A single row [1, n] takes one Gemm; other layouts a product and a sum.
    const dot = (x: string, y: string) => (singleRow ? g.op('Gemm', [x, y], { transB: 1 }) : g.op('ReduceSum', [g.op('Mul', [x, y]), axis], { keepdims: 1 }));
    // ||x||_M; Relu: rounding can make a zero M-norm² negative.
    const norm = (x: string, metricX: string) =>
      operator.metric ? g.op('Sqrt', [g.op('Relu', [dot(x, metricX)])]) : g.op('ReduceL2', [x], { axes: [operator.featureAxis], keepdims: 1 });
    const metric = (x: string) => (operator.metric ? operator.metric(g, x) : x);
    // A vector and its metric image, both divided by the vector's norm.
    const normalized = (x: string, metricX: string, length: string) => {
      const divisor = g.op('Max', [length, tiny]);
      const unit = g.op('Div', [x, divisor]);
      return { vector: unit, metricVector: operator.metric ? g.op('Div', [metricX, divisor]) : unit };
    };
    return { dot, norm, metric, normalized };
  };

  // Outside the loop: the unit start vector, and a zero "previous" vector and coefficient.
  const outer = vectorMath(b);
  const start = b.floatConstant(startVectors(operator.vectorShape, operator.size), operator.vectorShape, 'start_vector');
  const startMetric = outer.metric(start);
  const first = outer.normalized(start, startMetric, outer.norm(start, startMetric));
  const zeroVector = b.floatConstant(new Float32Array(operator.vectorShape.reduce((product, dim) => product * dim, 1)), operator.vectorShape, 'zero_vector');
  const zeroScalar = b.floatConstant(new Float32Array(scalarShape.reduce((product, dim) => product * dim, 1)), scalarShape, 'zero_beta');

  // One step: v_(j+1) β_j = A v_j - α_j v_j - β_(j-1) v_(j-1), with α_j = <v_j, A v_j>_M.
  const body = b.subgraph();
  const inner = vectorMath(body);
  const carried = (prefix: string, shape: number[]) => body.input(body.fresh(prefix), TensorDataType.FLOAT, shape);
  body.input(body.fresh('iteration'), TensorDataType.INT64, []);
  const condition = body.input(body.fresh('condition'), TensorDataType.BOOL, []);
  const vector = carried('vector', operator.vectorShape);
  const metricVector = operator.metric ? carried('metric_vector', operator.vectorShape) : vector;
  const previous = carried('previous', operator.vectorShape);
  const previousBeta = carried('previous_beta', scalarShape);
  const image = operator.apply(body, vector, metricVector);
  const alpha = inner.dot(metricVector, image);
  const residual = body.op('Sub', [body.op('Sub', [image, body.op('Mul', [alpha, vector])]), body.op('Mul', [previousBeta, previous])]);
  const residualMetric = inner.metric(residual);
  const beta = inner.norm(residual, residualMetric);
  const next = inner.normalized(residual, residualMetric, beta);
  // Outputs name computed tensors directly; Identity only where an input passes through or a
  // tensor is listed twice (each iteration's nodes cost time of their own).
  const bodyOutputs = [
    body.op('Identity', [condition]),
    next.vector,
    ...(operator.metric ? [next.metricVector] : []),
    body.op('Identity', [vector]),
    beta,
    alpha,
    body.op('Identity', [beta]),
  ];
  bodyOutputs.forEach((name, i) => body.output(name, i === 0 ? TensorDataType.BOOL : TensorDataType.FLOAT));

  const finals = ['vector', ...(operator.metric ? ['metric_vector'] : []), 'previous', 'beta'].map((prefix) => b.fresh(`final_${prefix}`));
  const [alphas, betas] = [b.fresh('alphas'), b.fresh('betas')];
  b.node('Loop', [b.intConstant([count], [], 'steps'), '', first.vector, ...(operator.metric ? [first.metricVector] : []), zeroVector, zeroScalar], [...finals, alphas, betas], {
    body: { graph: body },
  });
  // Scan outputs stack the steps first: [steps, ...scalarShape] -> [batch, steps].
  const rank = scalarShape.length;
  const perm = [...Array.from({ length: rank }, (_, axis) => axis + 1), 0];
  const collect = (stacked: string) => b.op('Reshape', [b.op('Transpose', [stacked], { perm }), b.intConstant([-1, count])]);
  return { alpha: collect(alphas), beta: collect(betas), steps: count };
}

/**
 * The same fixed, pseudo-random start vector for every operator of the batch. A constant vector
 * could be orthogonal to the top eigenvector of structured matrices; the golden-angle sequence
 * has no such pattern.
 */
function startVectors(shape: number[], size: number): Float32Array {
  const count = shape.reduce((product, dim) => product * dim, 1);
  return Float32Array.from({ length: count }, (_, i) => 0.5 + Math.sin(2.399963 * ((i % size) + 1)));
}
