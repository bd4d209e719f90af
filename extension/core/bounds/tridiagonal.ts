// The largest eigenvalue of a symmetric tridiagonal matrix, in float64: the second half of the
// Lanczos method (lanczos.ts). Bisection on Sturm counts is exact to rounding and needs no
// convergence tuning; the matrices are small (tens of rows), so its cost does not matter.

/**
 * λ_max of the tridiagonal matrix with diagonal `alpha` and off-diagonal `beta` (beta[j] joins
 * rows j and j + 1; entries beyond alpha.length - 1 are ignored).
 */
export function largestTridiagonalEigenvalue(alpha: ArrayLike<number>, beta: ArrayLike<number>): number {
  const n = alpha.length;
  if (n === 0) throw new Error('an empty tridiagonal matrix has no eigenvalues');
  // Gershgorin: every eigenvalue lies in [low, high].
  let low = Infinity;
  let high = -Infinity;
  for (let i = 0; i < n; i++) {
    const radius = (i > 0 ? Math.abs(beta[i - 1]) : 0) + (i < n - 1 ? Math.abs(beta[i]) : 0);
    low = Math.min(low, alpha[i] - radius);
    high = Math.max(high, alpha[i] + radius);
  }
  // Halve [low, high] until it holds only rounding: then high is λ_max to ~1 ulp of the spread.
  for (let i = 0; i < 200 && high - low > 4 * Number.EPSILON * Math.max(Math.abs(low), Math.abs(high)); i++) {
    const middle = low + (high - low) / 2;
    if (middle <= low || middle >= high) break;
    if (eigenvaluesAbove(alpha, beta, n, middle) > 0) low = middle;
    else high = middle;
  }
  return high;
}

/**
 * How many eigenvalues exceed x: the number of negative pivots of the LDLᵀ factorisation of
 * x I - T (Sylvester's law of inertia). A zero pivot is nudged off zero, the usual remedy.
 */
function eigenvaluesAbove(alpha: ArrayLike<number>, beta: ArrayLike<number>, n: number, x: number): number {
  let count = 0;
  let pivot = 1;
  for (let i = 0; i < n; i++) {
    const coupling = i > 0 ? beta[i - 1] * beta[i - 1] : 0;
    pivot = x - alpha[i] - coupling / pivot;
    if (pivot === 0) pivot = -Number.MIN_VALUE * 1e10;
    if (pivot < 0) count++;
  }
  return count;
}
