// Sets of pair indices as sorted, disjoint half-open ranges: what a report records of the pairs
// it measured, compact for 12,800 pairs and exact for shards that skip a pair.
import { PairRange } from './reportSchema';

/** Ranges of the given indices (any order, no repeats expected). */
export function rangesOfIndices(indices: Iterable<number>): PairRange[] {
  const sorted = [...indices].sort((a, b) => a - b);
  const ranges: PairRange[] = [];
  for (const index of sorted) {
    const last = ranges[ranges.length - 1];
    if (last && index === last[1]) last[1] = index + 1;
    else if (!last || index > last[1]) ranges.push([index, index + 1]);
  }
  return ranges;
}

export function pairCount(ranges: PairRange[]): number {
  return ranges.reduce((sum, [first, end]) => sum + (end - first), 0);
}

/** The first index in both sets, or null when they are disjoint. */
export function firstSharedPair(a: PairRange[], b: PairRange[]): number | null {
  let i = 0;
  let j = 0;
  while (i < a.length && j < b.length) {
    const first = Math.max(a[i][0], b[j][0]);
    const end = Math.min(a[i][1], b[j][1]);
    if (first < end) return first;
    if (a[i][1] < b[j][1]) i++;
    else j++;
  }
  return null;
}

/** The union of disjoint sets, merged into as few ranges as possible. */
export function unionOfRanges(sets: PairRange[][]): PairRange[] {
  const sorted = sets
    .flat()
    .map(([first, end]): PairRange => [first, end])
    .sort((a, b) => a[0] - b[0]);
  const union: PairRange[] = [];
  for (const range of sorted) {
    const last = union[union.length - 1];
    if (last && range[0] <= last[1]) last[1] = Math.max(last[1], range[1]);
    else union.push(range);
  }
  return union;
}

/** "0–3, 8–11" (inclusive ends, as people count pairs). */
export function describeRanges(ranges: PairRange[]): string {
  return ranges.map(([first, end]) => (end - first === 1 ? String(first) : `${first}–${end - 1}`)).join(', ');
}

/** Indices first .. first + count - 1 without the left-out ones (offsets from first, ascending), as ranges. */
export function rangesWithout(first: number, count: number, leftOut: number[]): PairRange[] {
  const ranges: PairRange[] = [];
  let start = 0;
  for (const skipped of [...leftOut, count]) {
    if (skipped > start) ranges.push([first + start, first + skipped]);
    start = skipped + 1;
  }
  return ranges;
}
