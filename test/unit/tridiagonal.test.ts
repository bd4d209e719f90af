// The float64 half of the Lanczos method against all eigenvalues by Jacobi rotations.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { largestTridiagonalEigenvalue } from '../../extension/core/bounds/tridiagonal';
import { symmetricEigenvalues } from '../support/referenceBounds';

function dense(alpha: number[], beta: number[]) {
  const n = alpha.length;
  const data = new Float64Array(n * n);
  alpha.forEach((value, i) => (data[i * n + i] = value));
  for (let i = 0; i < n - 1; i++) data[i * n + i + 1] = data[(i + 1) * n + i] = beta[i];
  return { rows: n, cols: n, data };
}

test('the largest eigenvalue of random tridiagonal matrices equals the dense reference', () => {
  for (let trial = 0; trial < 200; trial++) {
    const n = 1 + Math.floor(Math.random() * 40);
    const alpha = Array.from({ length: n }, () => 10 * (Math.random() - 0.3));
    // Some off-diagonal zeros split the matrix into blocks, as an exhausted Lanczos run does.
    const beta = Array.from({ length: n }, () => (Math.random() < 0.1 ? 0 : 5 * (Math.random() - 0.5)));
    const expected = Math.max(...symmetricEigenvalues(dense(alpha, beta)));
    const actual = largestTridiagonalEigenvalue(alpha, beta);
    assert.ok(Math.abs(actual - expected) <= 1e-12 * Math.max(1, Math.abs(expected)), `n ${n}: ${actual} vs ${expected}`);
  }
});

test('degenerate tridiagonal matrices: zero, 1 x 1, repeated eigenvalues', () => {
  assert.equal(largestTridiagonalEigenvalue([0, 0, 0], [0, 0, 0]), 0);
  assert.equal(largestTridiagonalEigenvalue([2.5], [7]), 2.5); // beta beyond the matrix is ignored
  assert.ok(Math.abs(largestTridiagonalEigenvalue([1, 1, 1, 1], [0, 0, 0, 0]) - 1) < 1e-15);
  // [[2, 1], [1, 2]]: eigenvalues 1 and 3.
  assert.ok(Math.abs(largestTridiagonalEigenvalue([2, 2], [1]) - 3) < 1e-14);
  assert.throws(() => largestTridiagonalEigenvalue([], []));
});
