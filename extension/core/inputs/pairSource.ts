// Where the (reference, target) image pairs come from: two folders, one folder split in
// halves, or seeded synthetic images. Files are read lazily, one pair per load() call.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { InputDataError, UsageError } from '../errors';
import { INPUT_FILE_EXTENSIONS, isInputFileName, loadInputFile } from './inputFile';
import { PreprocessOptions, validatePreprocessOptions } from './preprocessOptions';
import { syntheticInput } from './syntheticImages';

export type { PreprocessOptions } from './preprocessOptions';
export { IMAGENET_MEAN, IMAGENET_STD, validatePreprocessOptions } from './preprocessOptions';

export interface PairSpec {
  /** Folder of reference images (the pretraining-like distribution). */
  reference?: string;
  /** Folder of target images (the downstream data). */
  target?: string;
  /** Limit; default: all available pairs for folders, 32 for synthetic. */
  pairs?: number;
  /** Pairs to skip first (a shard of a longer run starts there); default 0. */
  first?: number;
  /** Seed for synthetic inputs. */
  seed: number;
}

export type InputKind = 'folders' | 'split-folder' | 'synthetic';

export interface LoadedPair {
  reference: Float32Array;
  target: Float32Array;
  referenceName: string;
  targetName: string;
}

export interface PairSource {
  kind: InputKind;
  /** Folder path as given; for 'split-folder' both fields hold the one folder; null for synthetic. */
  reference: string | null;
  target: string | null;
  /** Index of the first pair produced among all the inputs' pairs (the skipped ones before it). */
  first: number;
  /** Pairs that will be produced. */
  count: number;
  notes: string[];
  /** The `index`-th pair produced (pair `first + index` of the inputs): both as Float32Array [C,H,W] row-major, preprocessed. */
  load(index: number): Promise<LoadedPair>;
}

export const DEFAULT_SYNTHETIC_PAIRS = 32;

export async function openPairSource(spec: PairSpec, preprocess: PreprocessOptions): Promise<PairSource> {
  const options = checkedCopy(preprocess);
  validatePairSpec(spec);
  // Callers decoding JSON may send null for an absent folder.
  const reference = spec.reference ?? undefined;
  const target = spec.target ?? undefined;
  const limit = { first: spec.first ?? 0, pairs: spec.pairs };
  if (reference !== undefined && target !== undefined) return openFolderPairs(reference, target, limit, options);
  if (reference !== undefined) return openSplitFolder(reference, 'Reference', limit, options);
  if (target !== undefined) return openSplitFolder(target, 'Target', limit, options);
  return openSynthetic(spec.seed, limit, options);
}

/** The preprocessing options, checked, and copied so later changes by the caller cannot alter what load() produces. */
function checkedCopy(preprocess: PreprocessOptions): PreprocessOptions {
  validatePreprocessOptions(preprocess);
  return {
    size: [preprocess.size[0], preprocess.size[1]],
    channels: preprocess.channels,
    mean: [preprocess.mean[0], preprocess.mean[1], preprocess.mean[2]],
    std: [preprocess.std[0], preprocess.std[1], preprocess.std[2]],
  };
}

function validatePairSpec(spec: PairSpec): void {
  if (spec.pairs !== undefined && !(Number.isInteger(spec.pairs) && spec.pairs >= 1)) {
    throw new UsageError(`The number of pairs must be a whole number of at least 1; got ${spec.pairs}.`);
  }
  if (spec.first !== undefined && !(Number.isInteger(spec.first) && spec.first >= 0)) {
    throw new UsageError(`The number of pairs to skip must be a whole number of at least 0; got ${spec.first}.`);
  }
  if (!Number.isSafeInteger(spec.seed)) {
    throw new UsageError(`The seed must be a whole number; got ${spec.seed}.`);
  }
  for (const [label, folder] of [
    ['Reference', spec.reference],
    ['Target', spec.target],
  ] as const) {
    if (folder !== undefined && folder !== null && (typeof folder !== 'string' || folder.trim() === '')) {
      throw new UsageError(`${label} folder path is empty: give a folder, or leave the option out.`);
    }
  }
}

async function openFolderPairs(referenceFolder: string, targetFolder: string, limit: PairLimit, options: PreprocessOptions): Promise<PairSource> {
  const { first, count, notes, load } = await openReferenceAndTargets(referenceFolder, [targetFolder], limit, options);
  return {
    kind: 'folders',
    reference: referenceFolder,
    target: targetFolder,
    first,
    count,
    notes,
    load: async (index) => {
      const loaded = await load(index);
      return { reference: loaded.reference, target: loaded.targets[0], referenceName: loaded.referenceName, targetName: loaded.targetNames[0] };
    },
  };
}

/**
 * A reference folder and one or more target folders, paired by sorted name: pair i is the i-th
 * file of each. The smallest folder decides how many pairs there are, for every target.
 */
async function openReferenceAndTargets(
  reference: string,
  targets: string[],
  limit: PairLimit,
  options: PreprocessOptions,
): Promise<Pick<MultiTargetSource, 'first' | 'count' | 'notes' | 'load'>> {
  const referenceListing = await listInputFolder(reference, 'Reference');
  const targetListings: FolderListing[] = [];
  for (const folder of targets) {
    const listing = await listInputFolder(folder, 'Target');
    if (listing.realPath === referenceListing.realPath) {
      // Every pair would be an image with itself: zero distance, no ratio to take.
      throw new InputDataError(
        targets.length === 1
          ? `Reference and target are the same folder (${reference}): give two different folders, or only one to pair its two halves.`
          : `Reference and target are the same folder (${folder}): every pair would be an image with itself; give target folders other than the reference.`,
      );
    }
    const twin = targetListings.findIndex((other) => other.realPath === listing.realPath);
    if (twin >= 0) throw new UsageError(`Target folder ${folder} is given twice (also as ${targets[twin]}); give each target once.`);
    targetListings.push(listing);
  }
  const notes = [...referenceListing.notes, ...targetListings.flatMap((listing) => listing.notes)];
  const referenceCount = referenceListing.names.length;
  const counts = targetListings.map((listing) => listing.names.length);
  const available = Math.min(referenceCount, ...counts);
  if (counts.some((count) => count !== referenceCount)) {
    notes.push(
      targets.length === 1
        ? `Reference folder has ${referenceCount} usable files and target folder ${counts[0]}: using ${available} pairs (the first ${available} of each, sorted by name).`
        : `The folders hold different numbers of usable files (reference ${referenceCount}, targets ${counts.join(', ')}): every target uses the same ${available} pairs (the first ${available} files of each, sorted by name).`,
    );
  }
  const { first, count } = limitPairs(available, limit, notes);
  return {
    first,
    count,
    notes,
    load: async (index) => {
      checkPairIndex(index, count);
      const referenceName = referenceListing.names[first + index];
      const targetNames = targetListings.map((listing) => listing.names[first + index]);
      const [referenceImage, ...targetImages] = await Promise.all([
        loadInputFile(path.join(reference, referenceName), options),
        ...targetNames.map((name, k) => loadInputFile(path.join(targets[k], name), options)),
      ]);
      return { reference: referenceImage, referenceName, targets: targetImages, targetNames };
    },
  };
}

async function openSplitFolder(folder: string, label: FolderLabel, limit: PairLimit, options: PreprocessOptions): Promise<PairSource> {
  const listing = await listInputFolder(folder, label);
  const names = listing.names;
  if (names.length < 2) {
    throw new InputDataError(
      `${label} folder ${folder} has only 1 usable file; a single folder is split into two halves, so it needs at least 2: add files, or give both a reference and a target folder.`,
    );
  }
  const half = Math.floor(names.length / 2);
  const notes = [...listing.notes];
  let splitNote = `Only one folder given (${folder}): pairing its first ${half} files with its next ${half}, sorted by name.`;
  if (names.length % 2 === 1) splitNote += ` The last file, ${names[names.length - 1]}, is not used.`;
  notes.push(splitNote);
  const { first, count } = limitPairs(half, limit, notes);
  return {
    kind: 'split-folder',
    reference: folder,
    target: folder,
    first,
    count,
    notes,
    load: async (index) => {
      checkPairIndex(index, count);
      const referenceName = names[first + index];
      const targetName = names[half + first + index];
      const [reference, target] = await Promise.all([loadInputFile(path.join(folder, referenceName), options), loadInputFile(path.join(folder, targetName), options)]);
      return { reference, target, referenceName, targetName };
    },
  };
}

function openSynthetic(seed: number, limit: PairLimit, options: PreprocessOptions): PairSource {
  // Synthetic pair i is the same image pair whatever the shard, so shards of a synthetic run merge.
  const first = limit.first;
  const count = limit.pairs ?? DEFAULT_SYNTHETIC_PAIRS;
  const which = first > 0 ? `synthetic pairs ${first} to ${first + count - 1}` : `${count} synthetic pairs`;
  return {
    kind: 'synthetic',
    reference: null,
    target: null,
    first,
    count,
    notes: [`No folders given: using ${which} (seed ${seed}), smooth reference images against high-frequency target images; the numbers describe the model, not your data.`],
    load: async (index) => {
      checkPairIndex(index, count);
      const pair = first + index;
      return {
        reference: syntheticInput(seed, 'reference', pair, options),
        target: syntheticInput(seed, 'target', pair, options),
        referenceName: `synthetic-reference-${pair}`,
        targetName: `synthetic-target-${pair}`,
      };
    },
  };
}

interface PairLimit {
  first: number;
  pairs: number | undefined;
}

/** Applies the user's skip and limit to what is available, noting when the limit cannot be met. */
function limitPairs(available: number, limit: PairLimit, notes: string[]): { first: number; count: number } {
  const { first, pairs: requested } = limit;
  if (first >= available) {
    throw new InputDataError(`Skipping ${first} pairs leaves none: the inputs have ${available}; give a smaller number of pairs to skip.`);
  }
  const left = available - first;
  if (first > 0) {
    const count = requested === undefined ? left : Math.min(requested, left);
    if (requested !== undefined && requested > left) notes.push(`Asked for ${requested} pairs from pair ${first} but only ${left} are left: using ${left}.`);
    notes.push(`Using pairs ${first} to ${first + count - 1} of ${available} available pairs.`);
    return { first, count };
  }
  if (requested === undefined) return { first, count: available };
  if (requested > available) {
    notes.push(`Asked for ${requested} pairs but only ${available} are available: using ${available}.`);
    return { first, count: available };
  }
  if (requested < available) notes.push(`Using the first ${requested} of ${available} available pairs.`);
  return { first, count: requested };
}

function checkPairIndex(index: number, count: number): void {
  if (!Number.isInteger(index) || index < 0 || index >= count) {
    throw new RangeError(`pair index ${index} is outside 0..${count - 1}`);
  }
}

type FolderLabel = 'Reference' | 'Target';

interface FolderListing {
  /** Usable file names, sorted by UTF-16 code units so pairing is the same on every system. */
  names: string[];
  realPath: string;
  notes: string[];
}

async function listInputFolder(folder: string, label: FolderLabel): Promise<FolderListing> {
  let realPath: string;
  let entries: fs.Dirent[];
  try {
    const stats = await fs.promises.stat(folder);
    if (!stats.isDirectory()) {
      throw new InputDataError(`${label} folder ${folder} is a file, not a folder: give the folder that holds the images.`);
    }
    realPath = await fs.promises.realpath(folder);
    entries = await fs.promises.readdir(folder, { withFileTypes: true });
  } catch (error) {
    if (error instanceof InputDataError) throw error;
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') {
      throw new InputDataError(`${label} folder ${folder} does not exist: check the path.`);
    }
    const reason = code === 'EACCES' || code === 'EPERM' ? 'permission denied' : (code ?? 'read error');
    throw new InputDataError(`${label} folder ${folder} could not be read (${reason}): check its permissions.`);
  }

  const names: string[] = [];
  let hiddenCount = 0;
  for (const entry of entries) {
    if (!isInputFileName(entry.name) || !(await isRegularFile(folder, entry))) continue;
    // Hidden files such as macOS "._name.jpg" companions are not images.
    if (entry.name.startsWith('.')) {
      hiddenCount++;
      continue;
    }
    names.push(entry.name);
  }
  if (names.length === 0) {
    throw new InputDataError(`${label} folder ${folder} has no usable files: put ${INPUT_FILE_EXTENSIONS.join(', ')} files directly in it (subfolders are not read).`);
  }
  names.sort();
  const notes: string[] = [];
  if (hiddenCount > 0) notes.push(`Skipped ${hiddenCount} hidden file${hiddenCount === 1 ? '' : 's'} (names starting with '.') in ${folder}.`);
  return { names, realPath, notes };
}

/** Regular files count, symbolic links to regular files too; folders never do. */
async function isRegularFile(folder: string, entry: fs.Dirent): Promise<boolean> {
  if (entry.isFile()) return true;
  if (!entry.isSymbolicLink()) return false;
  try {
    return (await fs.promises.stat(path.join(folder, entry.name))).isFile();
  } catch {
    return false; // a dangling link is not an input
  }
}

/** Several target folders measured against the same reference folder (one multi-target run). */
export interface MultiTargetSpec {
  reference: string;
  /** Two or more target folders; pair i of target k is (reference file i, file i of folder k). */
  targets: string[];
  pairs?: number;
  first?: number;
  seed: number;
}

export interface LoadedTargets {
  reference: Float32Array;
  referenceName: string;
  /** One image per target, in the order of the targets. */
  targets: Float32Array[];
  targetNames: string[];
}

export interface MultiTargetSource {
  kind: 'folders';
  reference: string;
  targets: string[];
  first: number;
  /** Pairs per target (the same for every target: the fewest any folder allows). */
  count: number;
  notes: string[];
  /** The reference image of pair `first + index`, read once, and each target's. */
  load(index: number): Promise<LoadedTargets>;
}

/**
 * The reference folder paired with each of several target folders. Every target takes the same
 * pair indices (the smallest folder decides how many), so the reference side of pair i is read,
 * embedded and measured once for all targets.
 */
export async function openMultiTargetSource(spec: MultiTargetSpec, preprocess: PreprocessOptions): Promise<MultiTargetSource> {
  const options = checkedCopy(preprocess);
  validatePairSpec({ reference: spec.reference, pairs: spec.pairs, first: spec.first, seed: spec.seed });
  if (spec.targets.length < 2) throw new UsageError(`A multi-target run takes at least two target folders, got ${spec.targets.length}.`);
  for (const folder of spec.targets) validatePairSpec({ target: folder, seed: spec.seed });
  const pairs = await openReferenceAndTargets(spec.reference, spec.targets, { first: spec.first ?? 0, pairs: spec.pairs }, options);
  return { kind: 'folders', reference: spec.reference, targets: [...spec.targets], ...pairs };
}
