// Welch's two-sample t-test and interval for a difference of means, from each sample's mean,
// standard deviation and size alone (what a report keeps of its pairs).
import tCdf from '@stdlib/stats-base-dists-t-cdf';
import tQuantile from '@stdlib/stats-base-dists-t-quantile';

export interface SampleSummary {
  mean: number;
  /** Sample standard deviation (n - 1 in the denominator). */
  std: number;
  n: number;
}

export interface WelchResult {
  /** other.mean − baseline.mean */
  difference: number;
  standardError: number;
  /** Welch–Satterthwaite degrees of freedom; null when either sample has fewer than 2 values. */
  degreesOfFreedom: number | null;
  t: number | null;
  /** Two-sided p-value; null when untestable (a sample of one, or no spread at all). */
  p: number | null;
  /** 95% interval of the difference (Student t quantile at the Welch degrees of freedom); null when untestable. */
  ci95: [number, number] | null;
}

export function welchTest(baseline: SampleSummary, other: SampleSummary): WelchResult {
  const difference = other.mean - baseline.mean;
  const varianceA = baseline.std ** 2 / baseline.n;
  const varianceB = other.std ** 2 / other.n;
  const standardError = Math.sqrt(varianceA + varianceB);
  const untestable = { difference, standardError, degreesOfFreedom: null, t: null, p: null, ci95: null };
  // Two identical constant samples, or samples of one, carry no spread to test against.
  if (baseline.n < 2 || other.n < 2 || !(standardError > 0)) return untestable;
  const degreesOfFreedom = (varianceA + varianceB) ** 2 / (varianceA ** 2 / (baseline.n - 1) + varianceB ** 2 / (other.n - 1));
  const t = difference / standardError;
  // 2 F(−|t|) rather than 2 (1 − F(|t|)): no cancellation for small p.
  const p = Math.min(1, 2 * tCdf(-Math.abs(t), degreesOfFreedom));
  const half = tQuantile(0.975, degreesOfFreedom) * standardError;
  return { difference, standardError, degreesOfFreedom, t, p, ci95: [difference - half, difference + half] };
}
