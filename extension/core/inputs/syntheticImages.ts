// Seeded stand-in images for runs without data: smooth "reference" images against
// high-frequency "target" images, two clearly different distributions. Each image is derived
// from (seed, role, index) alone, so pair i can be made without making pairs 0..i-1.
import type { PreprocessOptions } from './preprocessOptions';

export type SyntheticRole = 'reference' | 'target';

/** mulberry32: a small, fast 32-bit PRNG; returns floats in [0, 1). */
export function mulberry32(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Mixes the run seed, the role and the image index into one well-spread 32-bit seed. */
function imageSeed(seed: number, role: SyntheticRole, index: number): number {
  let h = (seed >>> 0) ^ (role === 'reference' ? 0x243f6a88 : 0x85a308d3);
  for (const word of [Math.floor(seed / 4294967296) >>> 0, index >>> 0]) {
    h = Math.imul(h ^ word, 0x9e3779b1);
    h ^= h >>> 16;
    h = Math.imul(h, 0x85ebca6b);
    h ^= h >>> 13;
  }
  return h >>> 0;
}

/** Pixel values in [0,1], planar [C,H,W]. */
export function syntheticPixels(seed: number, role: SyntheticRole, index: number, channels: number, height: number, width: number): Float32Array {
  const random = mulberry32(imageSeed(seed, role, index));
  return role === 'reference' ? smoothPixels(random, channels, height, width) : texturedPixels(random, channels, height, width);
}

/** A synthetic model input: the pixels above, normalised like a decoded image. */
export function syntheticInput(seed: number, role: SyntheticRole, index: number, options: PreprocessOptions): Float32Array {
  const [height, width] = options.size;
  const values = syntheticPixels(seed, role, index, options.channels, height, width);
  const planeSize = height * width;
  for (let c = 0; c < options.channels; c++) {
    const mean = options.mean[c];
    const std = options.std[c];
    for (let p = c * planeSize; p < (c + 1) * planeSize; p++) values[p] = (values[p] - mean) / std;
  }
  return values;
}

/** Sums of a few low-frequency sinusoids and wide Gaussian blobs per channel. */
function smoothPixels(random: () => number, channels: number, height: number, width: number): Float32Array {
  const values = new Float32Array(channels * height * width);
  const shortSide = Math.min(height, width);
  for (let c = 0; c < channels; c++) {
    const base = 0.3 + 0.4 * random();
    // At most 2 cycles across the image, so neighbouring pixels barely differ.
    const waves = Array.from({ length: 3 }, () => ({
      amplitude: 0.05 + 0.1 * random(),
      cyclesY: 4 * random() - 2,
      cyclesX: 4 * random() - 2,
      phase: 2 * Math.PI * random(),
    }));
    const blobs = Array.from({ length: 2 }, () => ({
      amplitude: 0.5 * random() - 0.25,
      centreY: height * random(),
      centreX: width * random(),
      radius: shortSide * (0.15 + 0.2 * random()),
    }));
    for (let y = 0; y < height; y++) {
      for (let x = 0; x < width; x++) {
        let value = base;
        for (const wave of waves) {
          value += wave.amplitude * Math.sin(2 * Math.PI * ((wave.cyclesY * y) / height + (wave.cyclesX * x) / width) + wave.phase);
        }
        for (const blob of blobs) {
          const distanceSquared = (y - blob.centreY) ** 2 + (x - blob.centreX) ** 2;
          value += blob.amplitude * Math.exp(-distanceSquared / (2 * blob.radius * blob.radius));
        }
        values[(c * height + y) * width + x] = clampUnit(value);
      }
    }
  }
  return values;
}

/** A fine checkerboard (1 or 2 pixel cells) under per-pixel uniform noise. */
function texturedPixels(random: () => number, channels: number, height: number, width: number): Float32Array {
  const values = new Float32Array(channels * height * width);
  const cell = random() < 0.5 ? 1 : 2;
  for (let c = 0; c < channels; c++) {
    const base = 0.35 + 0.3 * random();
    const contrast = 0.15 + 0.15 * random();
    for (let y = 0; y < height; y++) {
      for (let x = 0; x < width; x++) {
        const checker = (Math.floor(y / cell) + Math.floor(x / cell)) % 2 === 0 ? 1 : -1;
        const noise = 0.5 * random() - 0.25;
        values[(c * height + y) * width + x] = clampUnit(base + contrast * checker + noise);
      }
    }
  }
  return values;
}

function clampUnit(value: number): number {
  return value < 0 ? 0 : value > 1 ? 1 : value;
}
