// How images become model inputs, and the checks on those settings.
import { UsageError } from '../errors';

export interface PreprocessOptions {
  /** Model image height, width. */
  size: [number, number];
  /** 3 (RGB) normally; 1 for single-channel models. */
  channels: number;
  /** Per-channel mean in [0,1] pixel units; a 1-channel model uses mean[0]. */
  mean: [number, number, number];
  /** Per-channel standard deviation; a 1-channel model uses std[0]. */
  std: [number, number, number];
}

export const IMAGENET_MEAN: [number, number, number] = [0.485, 0.456, 0.406];
export const IMAGENET_STD: [number, number, number] = [0.229, 0.224, 0.225];

/** Throws a UsageError when the options cannot describe a model input. */
export function validatePreprocessOptions(options: PreprocessOptions): void {
  const { size, channels, mean, std } = options;
  if (!Array.isArray(size) || size.length !== 2 || !size.every((side) => Number.isInteger(side) && side > 0)) {
    throw new UsageError(`Image size must be two positive integers (height, width); got ${describeValue(size)}.`);
  }
  if (channels !== 1 && channels !== 3) {
    throw new UsageError(`Image channels must be 3 (RGB) or 1 (grayscale); got ${describeValue(channels)}.`);
  }
  if (!Array.isArray(mean) || mean.length !== 3 || !mean.every(Number.isFinite)) {
    throw new UsageError(`Normalisation mean must be three finite numbers, e.g. 0.485,0.456,0.406; got ${describeValue(mean)}.`);
  }
  if (!Array.isArray(std) || std.length !== 3 || !std.every((value) => Number.isFinite(value) && value > 0)) {
    throw new UsageError(`Normalisation std must be three positive numbers, e.g. 0.229,0.224,0.225; got ${describeValue(std)}.`);
  }
}

function describeValue(value: unknown): string {
  return Array.isArray(value) ? `[${value.join(', ')}]` : String(value);
}
