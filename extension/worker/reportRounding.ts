// How a report writes what was timed (milliseconds, pairs per second, seconds per pair): a
// number rounded to a few decimals.
export const round = (value: number, digits = 1) => Number(value.toFixed(digits));
