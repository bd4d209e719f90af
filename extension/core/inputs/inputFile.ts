// One input file (image or .npy) to one model input, with every failure as an InputDataError.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { InputDataError } from '../errors';
import { decodeImageInput } from './imageDecoding';
import { decodeNpyInput } from './npyArray';
import type { PreprocessOptions } from './preprocessOptions';

/** Extensions read from input folders (compared lower-cased); everything else is ignored. */
export const INPUT_FILE_EXTENSIONS: readonly string[] = ['.png', '.jpg', '.jpeg', '.webp', '.npy'];

export function isInputFileName(name: string): boolean {
  return INPUT_FILE_EXTENSIONS.includes(path.extname(name).toLowerCase());
}

/** Reads and preprocesses one file into a [C,H,W] float32 input. */
export async function loadInputFile(file: string, options: PreprocessOptions): Promise<Float32Array> {
  let bytes: Buffer;
  try {
    bytes = await fs.promises.readFile(file);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const reason = code === 'ENOENT' ? 'it no longer exists' : code === 'EACCES' || code === 'EPERM' ? 'permission denied' : (code ?? 'read error');
    throw new InputDataError(`${file} could not be read (${reason}): check the file, or remove it from the folder.`);
  }
  if (path.extname(file).toLowerCase() === '.npy') {
    return decodeNpyInput(bytes, file, [options.channels, options.size[0], options.size[1]]);
  }
  return decodeImageInput(bytes, file, options);
}
