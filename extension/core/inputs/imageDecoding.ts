// Decodes PNG, JPEG and WebP images into normalised CHW float32 model inputs, the way the
// paper preprocesses: resize to cover the model size (bilinear), center crop, /255, normalise.
import sharp from 'sharp';
import { InputDataError } from '../errors';
import type { PreprocessOptions } from './preprocessOptions';

/** Size of the resized image before the center crop, and where the crop starts. */
export interface CoverCrop {
  resizedWidth: number;
  resizedHeight: number;
  left: number;
  top: number;
}

/**
 * Scale so the image covers height x width (the shorter side, relative to the model's aspect,
 * matches), then take the centre. Rounding never leaves the resized image smaller than the crop.
 */
export function coverCrop(imageWidth: number, imageHeight: number, height: number, width: number): CoverCrop {
  const scale = Math.max(height / imageHeight, width / imageWidth);
  const resizedWidth = Math.max(width, Math.round(imageWidth * scale));
  const resizedHeight = Math.max(height, Math.round(imageHeight * scale));
  return {
    resizedWidth,
    resizedHeight,
    left: Math.floor((resizedWidth - width) / 2),
    top: Math.floor((resizedHeight - height) / 2),
  };
}

/** Decodes image bytes into a [C,H,W] float32 input; `file` only names the file in errors. */
export async function decodeImageInput(bytes: Buffer, file: string, options: PreprocessOptions): Promise<Float32Array> {
  const [height, width] = options.size;
  const channels = options.channels;
  let pixels: Buffer;
  let pixelChannels: number;
  try {
    // Two passes: colour conversion and alpha removal first, so the resize never premultiplies
    // by alpha (which shifts colours by a level and blackens transparent pixels); PIL's
    // convert('RGB') in the reference pipeline simply drops alpha too.
    const decoded = await sharp(bytes)
      .toColourspace(channels === 1 ? 'b-w' : 'srgb')
      .removeAlpha()
      .raw({ depth: 'uchar' })
      .toBuffer({ resolveWithObject: true });
    const crop = coverCrop(decoded.info.width, decoded.info.height, height, width);
    const rawInput = { raw: { width: decoded.info.width, height: decoded.info.height, channels: decoded.info.channels } };
    const { data, info } = await sharp(decoded.data, rawInput)
      .resize(crop.resizedWidth, crop.resizedHeight, { fit: 'fill', kernel: 'linear' })
      .extract({ left: crop.left, top: crop.top, width, height })
      .raw({ depth: 'uchar' })
      .toBuffer({ resolveWithObject: true });
    if (info.width !== width || info.height !== height) throw new Error(`decoded to ${info.width}x${info.height}`);
    pixels = data;
    pixelChannels = info.channels;
  } catch (error) {
    throw new InputDataError(`${file} could not be decoded as an image (${oneLine(error)}): remove or replace it.`);
  }
  return normaliseToChw(pixels, pixelChannels, options);
}

/** Interleaved 8-bit pixels (HWC) to normalised planar float32 (CHW). */
function normaliseToChw(pixels: Buffer, pixelChannels: number, options: PreprocessOptions): Float32Array {
  const [height, width] = options.size;
  const channels = options.channels;
  const planeSize = height * width;
  const output = new Float32Array(channels * planeSize);
  for (let c = 0; c < channels; c++) {
    // A 1-channel decode feeding an RGB model repeats the gray plane.
    const sourceChannel = Math.min(c, pixelChannels - 1);
    const mean = options.mean[c];
    const std = options.std[c];
    for (let p = 0; p < planeSize; p++) {
      output[c * planeSize + p] = (pixels[p * pixelChannels + sourceChannel] / 255 - mean) / std;
    }
  }
  return output;
}

function oneLine(error: unknown): string {
  const text = error instanceof Error ? error.message : String(error);
  return text.replace(/\s+/g, ' ').trim().replace(/[.:]$/, '');
}
