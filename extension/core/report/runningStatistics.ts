// Statistics of per-pair ratios kept as running sums (Welford), so a run of any length holds
// a fixed amount of memory: per column a count, a mean and a sum of squared deviations.
import { Statistics, normalInterval95 } from './buildReport';

export class RunningStatistics {
  /** Values added per column (every row adds one to each column). */
  count = 0;
  private readonly means: Float64Array;
  /** Sum of squared deviations from the running mean, per column. */
  private readonly squares: Float64Array;

  constructor(readonly columns: number) {
    this.means = new Float64Array(columns);
    this.squares = new Float64Array(columns);
  }

  /** Adds one row (one value per column). */
  add(row: ArrayLike<number>, offset = 0): void {
    this.count++;
    const n = this.count;
    for (let c = 0; c < this.columns; c++) {
      const value = row[offset + c];
      const delta = value - this.means[c];
      this.means[c] += delta / n;
      this.squares[c] += delta * (value - this.means[c]);
    }
  }

  /** Adds every row of `other` (the parallel formula of Chan et al.; exact up to rounding). */
  merge(other: RunningStatistics): void {
    if (other.columns !== this.columns) throw new Error(`cannot merge statistics of ${other.columns} columns into ${this.columns}`);
    if (other.count === 0) return;
    const n = this.count + other.count;
    for (let c = 0; c < this.columns; c++) {
      const delta = other.means[c] - this.means[c];
      this.squares[c] += other.squares[c] + (delta * delta * this.count * other.count) / n;
      this.means[c] += (delta * other.count) / n;
    }
    this.count = n;
  }

  clear(): void {
    this.count = 0;
    this.means.fill(0);
    this.squares.fill(0);
  }

  copy(): RunningStatistics {
    const copy = new RunningStatistics(this.columns);
    copy.merge(this);
    return copy;
  }

  /** Mean, sample standard deviation and normal 95% interval of column `c` (as describeSample gives them). */
  column(c: number): Statistics {
    const n = this.count;
    if (n === 0) return { mean: NaN, std: NaN, ci95: [NaN, NaN], n: 0 };
    const mean = this.means[c];
    const std = n > 1 ? Math.sqrt(Math.max(0, this.squares[c]) / (n - 1)) : 0;
    return { mean, std, ci95: normalInterval95(mean, std, n), n };
  }

  all(): Statistics[] {
    return Array.from({ length: this.columns }, (_, c) => this.column(c));
  }
}
