// What a model file may make the program read: its own bytes and external data files inside its
// own folder (or a subfolder of it), never anything else. A model downloaded from a hub is
// untrusted input; ONNX itself refuses data locations that leave the model's folder since
// CVE-2024-27318. The check is lexical and runs before any data file is opened; a symlink that
// sits in the model's folder (the Hugging Face cache links snapshots to ../../blobs) is followed,
// since the user, not the model file, put it there.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ModelFileError } from '../errors';

/** The fields of a TensorProto's external_data entries that say where its bytes are. */
export interface ExternalDataEntries {
  location?: string;
  offset?: string;
  length?: string;
}

/** The byte range of an external tensor, resolved and checked (lexically) against the model's folder. */
export interface ExternalDataPlace {
  file: string;
  location: string;
  offset: number;
  /** -1 when the entry gives no length (the tensor runs to the end of the file). */
  length: number;
}

/**
 * Where an external tensor's bytes are, refusing a location that is absolute, has a `..`
 * component, names a drive or a stream, or is empty: one line naming the tensor and the location.
 */
export function externalDataPlace(modelFile: string, tensorName: string, entries: ExternalDataEntries): ExternalDataPlace {
  const modelName = path.basename(modelFile);
  const { location } = entries;
  if (!location) throw new ModelFileError(`${modelName}: tensor '${tensorName}' is marked external but names no location.`);
  const refusal = locationRefusal(location);
  if (refusal) {
    throw new ModelFileError(
      `${modelName}: tensor '${tensorName}' keeps its data at '${printable(location)}', ${refusal}; Plasticity Lens reads weights only from files in the model's folder or its subfolders, so re-save the model with its external data beside it (onnx.save(..., save_as_external_data=True, location='${path.basename(modelName, '.onnx')}.onnx.data')).`,
    );
  }
  return {
    file: path.join(path.dirname(modelFile), ...location.split('/')),
    location,
    offset: byteCount(entries.offset, 'offset', modelName, tensorName) ?? 0,
    length: byteCount(entries.length, 'length', modelName, tensorName) ?? -1,
  };
}

/** Why a location may not be followed, or undefined when it stays inside the model's folder. */
function locationRefusal(location: string): string | undefined {
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f]/.test(location)) return 'which holds control characters';
  if (path.posix.isAbsolute(location) || path.win32.isAbsolute(location) || /^[a-zA-Z]:/.test(location)) return 'an absolute path';
  // Backslashes are separators on Windows: a location is checked as every platform would read it.
  const parts = location.split(/[\\/]/);
  if (parts.includes('..')) return "which leaves the model's folder ('..')";
  if (parts.some((part) => part.includes(':'))) return 'which names a drive or a stream';
  if (parts.every((part) => part === '' || part === '.')) return 'which names no file';
  return undefined;
}

function byteCount(value: string | undefined, field: 'offset' | 'length', modelName: string, tensorName: string): number | undefined {
  if (value === undefined) return undefined;
  const count = /^\d+$/.test(value) ? Number(value) : NaN;
  if (!Number.isSafeInteger(count)) {
    throw new ModelFileError(
      `${modelName}: tensor '${tensorName}' gives its external data ${field} as '${printable(value)}', not a byte count; export or download the model again.`,
    );
  }
  return count;
}

/** A model-supplied string as it may appear in a one-line message. */
function printable(text: string): string {
  // eslint-disable-next-line no-control-regex
  const visible = text.replace(/[\u0000-\u001f\u007f]/g, '?');
  return visible.length > 120 ? `${visible.slice(0, 117)}...` : visible;
}

/** An external tensor as the checks below see it. */
export interface ExternalTensor {
  name: string;
  place: { file: string; offset: number; length: number };
}

/**
 * Checks that every data file is a regular file (not a folder, a device or a pipe, which could
 * hang a read) that holds the byte range its tensors name; fills in lengths left open.
 */
export function checkExternalDataFiles(modelFile: string, tensors: Iterable<ExternalTensor>): void {
  const modelName = path.basename(modelFile);
  const sizes = new Map<string, number>();
  for (const tensor of tensors) {
    const file = tensor.place.file;
    let size = sizes.get(file);
    if (size === undefined) {
      let stat: fs.Stats;
      try {
        stat = fs.statSync(file);
      } catch {
        throw new ModelFileError(`${modelName} keeps its weights in '${path.basename(file)}', which is missing; put that file next to the model.`);
      }
      if (!stat.isFile())
        throw new ModelFileError(`${modelName} keeps its weights in '${path.basename(file)}', which is not a regular file; put the weights file next to the model.`);
      size = stat.size;
      sizes.set(file, size);
    }
    if (tensor.place.length < 0) tensor.place.length = size - tensor.place.offset;
    if (tensor.place.length < 0 || tensor.place.offset + tensor.place.length > size) {
      throw new ModelFileError(`${path.basename(file)} is shorter than ${modelName} expects (tensor '${tensor.name}'); copy the weights file again.`);
    }
  }
}

/**
 * Points weight locations at the real files behind any symlinks (a Hugging Face cache links
 * snapshots to blobs), relative to their closest common folder, which it returns: onnxruntime
 * resolves links and rejects external data outside the folder it is given.
 */
export function placeDataLocations(modelFile: string, places: { file: string; location: string }[]): string {
  const realPaths = new Map<string, string>();
  const real = (file: string) => {
    let resolved = realPaths.get(file);
    if (resolved === undefined) {
      resolved = fs.realpathSync(file);
      realPaths.set(file, resolved);
    }
    return resolved;
  };
  real(modelFile);
  for (const place of places) real(place.file);
  let folder = path.dirname(real(modelFile));
  for (const resolved of realPaths.values()) {
    while (path.relative(folder, resolved).startsWith('..')) folder = path.dirname(folder);
  }
  for (const place of places) place.location = path.relative(folder, real(place.file)).split(path.sep).join('/');
  return folder;
}
