// The input stage against real files written to a temp dir: decoding, resize and crop,
// .npy parsing, folder pairing and synthetic images.
import { after, before, describe, test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import sharp from 'sharp';
import type { Sharp } from 'sharp';
import { InputDataError, UsageError } from '../../extension/core/errors';
import { loadInputFile } from '../../extension/core/inputs/inputFile';
import { coverCrop } from '../../extension/core/inputs/imageDecoding';
import { IMAGENET_MEAN, IMAGENET_STD, openPairSource, PairSource, PreprocessOptions } from '../../extension/core/inputs/pairSource';
import { mulberry32, syntheticPixels } from '../../extension/core/inputs/syntheticImages';

let tempRoot = '';

before(() => {
  tempRoot = fs.mkdtempSync(path.join(os.tmpdir(), 'plasticity-inputs-'));
});

after(() => {
  fs.rmSync(tempRoot, { recursive: true, force: true });
});

let folderCounter = 0;
function freshFolder(name = 'folder'): string {
  const folder = path.join(tempRoot, `${name}-${folderCounter++}`);
  fs.mkdirSync(folder, { recursive: true });
  return folder;
}

function options(height: number, width: number, channels = 3): PreprocessOptions {
  return { size: [height, width], channels, mean: [...IMAGENET_MEAN], std: [...IMAGENET_STD] };
}

/** Value at (c, y, x) of a [C,H,W] array. */
function at(values: Float32Array, o: PreprocessOptions, c: number, y: number, x: number): number {
  const [height, width] = o.size;
  return values[(c * height + y) * width + x];
}

/** Normalised value of an 8-bit pixel level in channel c. */
function normalised(level: number, c: number): number {
  return (level / 255 - IMAGENET_MEAN[c]) / IMAGENET_STD[c];
}

/** Back to the 8-bit level a normalised value came from. */
function level(value: number, c: number): number {
  return (value * IMAGENET_STD[c] + IMAGENET_MEAN[c]) * 255;
}

function solidImage(width: number, height: number, rgb: [number, number, number]): Sharp {
  return sharp({ create: { width, height, channels: 3, background: { r: rgb[0], g: rgb[1], b: rgb[2] } } });
}

/** RGB columns: each entry paints `width` columns with one colour, left to right. */
async function writeColumnsPng(file: string, height: number, bands: Array<{ width: number; rgb: [number, number, number] }>): Promise<void> {
  const width = bands.reduce((sum, band) => sum + band.width, 0);
  const pixels = Buffer.alloc(width * height * 3);
  for (let y = 0; y < height; y++) {
    let x = 0;
    for (const band of bands) {
      for (let i = 0; i < band.width; i++, x++) pixels.set(band.rgb, (y * width + x) * 3);
    }
  }
  await sharp(pixels, { raw: { width, height, channels: 3 } })
    .png()
    .toFile(file);
}

interface NpyWriteOptions {
  descr?: string;
  fortranOrder?: boolean;
  version?: 1 | 2 | 3;
}

/** A .npy file written by hand, the way numpy.save lays it out. */
function npyBytes(shape: number[], data: Uint8Array, { descr = '<f4', fortranOrder = false, version = 1 }: NpyWriteOptions = {}): Buffer {
  const shapeText = shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(', ')})`;
  let header = `{'descr': '${descr}', 'fortran_order': ${fortranOrder ? 'True' : 'False'}, 'shape': ${shapeText}, }`;
  const prefixLength = version === 1 ? 10 : 12;
  const padded = Math.ceil((prefixLength + header.length + 1) / 64) * 64;
  header = header.padEnd(padded - prefixLength - 1, ' ') + '\n';
  const prefix = Buffer.alloc(prefixLength);
  Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, version, 0]).copy(prefix);
  if (version === 1) prefix.writeUInt16LE(header.length, 8);
  else prefix.writeUInt32LE(header.length, 8);
  return Buffer.concat([prefix, Buffer.from(header, 'latin1'), Buffer.from(data.buffer, data.byteOffset, data.byteLength)]);
}

function float32Bytes(values: Float32Array): Uint8Array {
  return new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
}

/** A [C,H,W] float32 .npy whose every value is `fill`, to identify files after pairing. */
function writeConstantNpy(file: string, shape: [number, number, number], fill: number): void {
  const values = new Float32Array(shape[0] * shape[1] * shape[2]).fill(fill);
  fs.writeFileSync(file, npyBytes(shape, float32Bytes(values)));
}

/** Asserts an InputDataError with a one-line message that names `fileName`. */
async function rejectsNaming(promise: Promise<unknown>, fileName: string, alsoMentions?: RegExp): Promise<void> {
  await assert.rejects(promise, (error: unknown) => {
    assert.ok(error instanceof InputDataError, `expected InputDataError, got ${String(error)}`);
    assert.ok(error.message.includes(fileName), `message should name ${fileName}: ${error.message}`);
    assert.ok(!error.message.includes('\n'), `message should be one line: ${error.message}`);
    if (alsoMentions) assert.match(error.message, alsoMentions);
    return true;
  });
}

describe('image decoding', () => {
  test('a constant-colour PNG decodes to the exact normalised values', async () => {
    const folder = freshFolder();
    const file = path.join(folder, 'solid.png');
    const rgb: [number, number, number] = [200, 100, 50];
    await solidImage(20, 12, rgb).png().toFile(file);
    const o = options(8, 8);
    const values = await loadInputFile(file, o);
    assert.equal(values.length, 3 * 8 * 8);
    for (let c = 0; c < 3; c++) {
      const expected = normalised(rgb[c], c);
      for (let p = 0; p < 64; p++) {
        assert.ok(Math.abs(values[c * 64 + p] - expected) <= 1 / 255 / IMAGENET_STD[c], `channel ${c} pixel ${p}: ${values[c * 64 + p]} vs ${expected}`);
      }
    }
  });

  test('cover crop arithmetic: shorter side (relative to the model aspect) matches, centre kept', () => {
    assert.deepEqual(coverCrop(64, 32, 16, 16), { resizedWidth: 32, resizedHeight: 16, left: 8, top: 0 });
    assert.deepEqual(coverCrop(32, 64, 16, 16), { resizedWidth: 16, resizedHeight: 32, left: 0, top: 8 });
    assert.deepEqual(coverCrop(100, 100, 20, 40), { resizedWidth: 40, resizedHeight: 40, left: 0, top: 10 });
    assert.deepEqual(coverCrop(3, 2, 224, 224), { resizedWidth: 336, resizedHeight: 224, left: 56, top: 0 });
  });

  test('a 64x32 image half red, half blue is downscaled to cover and centre-cropped', async () => {
    const folder = freshFolder();
    const file = path.join(folder, 'red-blue.png');
    await writeColumnsPng(file, 32, [
      { width: 32, rgb: [255, 0, 0] },
      { width: 32, rgb: [0, 0, 255] },
    ]);
    const o = options(16, 16);
    const values = await loadInputFile(file, o);
    // Resized to 32x16, crop columns 8..23: output columns 0..7 come from red, 8..15 from blue.
    for (const y of [0, 7, 15]) {
      for (const x of [0, 3, 6]) {
        assert.ok(Math.abs(level(at(values, o, 0, y, x), 0) - 255) < 1, `red at (${y},${x})`);
        assert.ok(Math.abs(level(at(values, o, 2, y, x), 2) - 0) < 1, `no blue at (${y},${x})`);
      }
      for (const x of [9, 12, 15]) {
        assert.ok(Math.abs(level(at(values, o, 0, y, x), 0) - 0) < 1, `no red at (${y},${x})`);
        assert.ok(Math.abs(level(at(values, o, 2, y, x), 2) - 255) < 1, `blue at (${y},${x})`);
      }
      // Green is absent everywhere.
      assert.ok(Math.abs(level(at(values, o, 1, y, 8), 1)) < 1);
    }
    // The edge sits between output columns 7 and 8: red fades out across it.
    assert.ok(level(at(values, o, 0, 8, 7), 0) > level(at(values, o, 0, 8, 8), 0));
  });

  test('a wide image at scale 1 keeps exactly its centre columns', async () => {
    const folder = freshFolder();
    const file = path.join(folder, 'bands.png');
    // 40x20 into a 20x20 model: no resize, crop columns 10..29 (red 10..19, blue 20..29).
    await writeColumnsPng(file, 20, [
      { width: 10, rgb: [0, 255, 0] },
      { width: 10, rgb: [255, 0, 0] },
      { width: 10, rgb: [0, 0, 255] },
      { width: 10, rgb: [0, 255, 0] },
    ]);
    const o = options(20, 20);
    const values = await loadInputFile(file, o);
    for (let y = 0; y < 20; y++) {
      for (let x = 0; x < 20; x++) {
        const expected = x < 10 ? [255, 0, 0] : [0, 0, 255];
        for (let c = 0; c < 3; c++) assert.equal(at(values, o, c, y, x), Math.fround(normalised(expected[c], c)), `(${c},${y},${x})`);
      }
    }
  });

  test('a tall image is cropped to its vertical centre', async () => {
    const folder = freshFolder();
    const file = path.join(folder, 'tall.png');
    // 10 wide, 30 tall: top 10 rows white, middle black, bottom white; a 10x10 model sees black.
    const pixels = Buffer.alloc(10 * 30 * 3, 255);
    pixels.fill(0, 10 * 10 * 3, 20 * 10 * 3);
    await sharp(pixels, { raw: { width: 10, height: 30, channels: 3 } })
      .png()
      .toFile(file);
    const o = options(10, 10);
    const values = await loadInputFile(file, o);
    for (let c = 0; c < 3; c++) for (let p = 0; p < 100; p++) assert.equal(values[c * 100 + p], Math.fround(normalised(0, c)));
  });

  test('JPEG and WebP decode close to their colour', async () => {
    const folder = freshFolder();
    const rgb: [number, number, number] = [30, 160, 220];
    const jpeg = path.join(folder, 'photo.JPG');
    const webp = path.join(folder, 'photo.webp');
    await solidImage(24, 24, rgb).jpeg({ quality: 95 }).toFile(jpeg);
    await solidImage(24, 24, rgb).webp({ lossless: true }).toFile(webp);
    const o = options(8, 8);
    for (const [file, tolerance] of [
      [jpeg, 4],
      [webp, 1],
    ] as const) {
      const values = await loadInputFile(file, o);
      for (let c = 0; c < 3; c++) {
        for (const p of [0, 27, 63]) {
          const found = level(values[c * 64 + p], c);
          assert.ok(Math.abs(found - rgb[c]) <= tolerance, `${path.basename(file)} channel ${c}: ${found} vs ${rgb[c]}`);
        }
      }
    }
  });

  test('a grayscale PNG gives three equal channels, or one with channels: 1', async () => {
    const folder = freshFolder();
    const file = path.join(folder, 'gray.png');
    const pixels = Buffer.alloc(16 * 16);
    for (let i = 0; i < pixels.length; i++) pixels[i] = (i * 37) % 256;
    await sharp(pixels, { raw: { width: 16, height: 16, channels: 1 } })
      .toColourspace('b-w')
      .png()
      .toFile(file);
    assert.equal((await sharp(file).metadata()).channels, 1);

    const o = options(16, 16);
    const values = await loadInputFile(file, o);
    for (let p = 0; p < 256; p++) {
      const levels = [0, 1, 2].map((c) => level(values[c * 256 + p], c));
      assert.ok(Math.abs(levels[0] - pixels[p]) < 1e-3 * 255, `pixel ${p}: ${levels[0]} vs ${pixels[p]}`);
      assert.ok(Math.abs(levels[1] - levels[0]) < 1e-3 && Math.abs(levels[2] - levels[0]) < 1e-3);
    }

    const gray = options(16, 16, 1);
    const single = await loadInputFile(file, gray);
    assert.equal(single.length, 256);
    for (let p = 0; p < 256; p++) assert.equal(single[p], Math.fround((pixels[p] / 255 - IMAGENET_MEAN[0]) / IMAGENET_STD[0]));
  });

  test('an RGBA PNG loads with its alpha dropped', async () => {
    const folder = freshFolder();
    const file = path.join(folder, 'alpha.png');
    await sharp({ create: { width: 12, height: 12, channels: 4, background: { r: 40, g: 90, b: 250, alpha: 0.5 } } })
      .png()
      .toFile(file);
    assert.equal((await sharp(file).metadata()).channels, 4);
    const o = options(6, 6);
    const values = await loadInputFile(file, o);
    assert.equal(values.length, 3 * 36);
    const rgb = [40, 90, 250];
    for (let c = 0; c < 3; c++) for (let p = 0; p < 36; p++) assert.ok(Math.abs(level(values[c * 36 + p], c) - rgb[c]) <= 1);
  });

  test('a truncated PNG and a text file named .jpg are InputDataErrors naming the file', async () => {
    const folder = freshFolder();
    const noise = Buffer.alloc(48 * 48 * 3);
    const random = mulberry32(7);
    for (let i = 0; i < noise.length; i++) noise[i] = Math.floor(random() * 256);
    const png = await sharp(noise, { raw: { width: 48, height: 48, channels: 3 } })
      .png()
      .toBuffer();
    const truncated = path.join(folder, 'cut-short.png');
    fs.writeFileSync(truncated, png.subarray(0, Math.floor(png.length / 2)));
    const text = path.join(folder, 'notes-not-a-photo.jpg');
    fs.writeFileSync(text, 'this is not an image\n');
    const o = options(8, 8);
    await rejectsNaming(loadInputFile(truncated, o), 'cut-short.png', /remove or replace/);
    await rejectsNaming(loadInputFile(text, o), 'notes-not-a-photo.jpg', /remove or replace/);
  });
});

describe('.npy inputs', () => {
  const shape: [number, number, number] = [3, 4, 5];
  const o = options(4, 5);

  function awkwardValues(): Float32Array {
    // Values whose bits a lossy path would change: -0, subnormals, non-representable decimals.
    const values = new Float32Array(60);
    for (let i = 0; i < values.length; i++) values[i] = Math.fround(Math.sin(i * 1.7) * 1e3) / 7;
    values[0] = -0;
    values[1] = 1.4e-45;
    values[2] = -3.4028234663852886e38;
    values[3] = 1 / 3;
    return values;
  }

  function assertSameBits(found: Float32Array, expected: Float32Array): void {
    assert.equal(found.length, expected.length);
    assert.deepEqual(new Uint32Array(found.buffer, found.byteOffset, found.length), new Uint32Array(expected.buffer, expected.byteOffset, expected.length));
  }

  test('round trip is bit-exact for [C,H,W], [1,C,H,W] and header versions 1, 2 and 3', async () => {
    const folder = freshFolder();
    const values = awkwardValues();
    const cases: Array<[string, number[], 1 | 2 | 3]> = [
      ['chw-v1.npy', [3, 4, 5], 1],
      ['nchw-v1.npy', [1, 3, 4, 5], 1],
      ['chw-v2.npy', [3, 4, 5], 2],
      ['chw-v3.NPY', [3, 4, 5], 3],
    ];
    for (const [name, fileShape, version] of cases) {
      const file = path.join(folder, name);
      fs.writeFileSync(file, npyBytes(fileShape, float32Bytes(values), { version }));
      assertSameBits(await loadInputFile(file, o), values);
    }
  });

  test('wrong dtype, wrong shape, Fortran order and truncation are InputDataErrors naming the file', async () => {
    const folder = freshFolder();
    const values = awkwardValues();
    const float64 = new Float64Array(values);
    const cases: Array<[string, Buffer, RegExp]> = [
      ['float64.npy', npyBytes(shape, new Uint8Array(float64.buffer), { descr: '<f8' }), /float64.*'<f8'.*float32 \('<f4'\)/],
      ['wrong-shape.npy', npyBytes([3, 5, 4], float32Bytes(values)), /\[3, 5, 4\].*expected \[3, 4, 5\]/],
      ['batch-of-two.npy', npyBytes([2, 3, 4, 5], float32Bytes(new Float32Array(120))), /\[2, 3, 4, 5\]/],
      ['fortran.npy', npyBytes(shape, float32Bytes(values), { fortranOrder: true }), /Fortran order/],
      ['truncated.npy', npyBytes(shape, float32Bytes(values)).subarray(0, 128 + 100), /truncated/],
      ['header-cut.npy', npyBytes(shape, float32Bytes(values)).subarray(0, 40), /truncated/],
      ['not-numpy.npy', Buffer.from('just text, no magic'), /not a NumPy/],
    ];
    for (const [name, bytes, mentions] of cases) {
      const file = path.join(folder, name);
      fs.writeFileSync(file, bytes);
      await rejectsNaming(loadInputFile(file, o), name, mentions);
    }
  });

  test('a NaN in a .npy input is refused', async () => {
    const folder = freshFolder();
    const values = awkwardValues();
    values[17] = Number.NaN;
    const file = path.join(folder, 'nan.npy');
    fs.writeFileSync(file, npyBytes(shape, float32Bytes(values)));
    await rejectsNaming(loadInputFile(file, o), 'nan.npy', /non-finite/);
  });
});

describe('folder pairing', () => {
  const shape: [number, number, number] = [3, 2, 2];
  const o = options(2, 2);

  /** Writes constant .npy files; the value of each identifies it after loading. */
  function folderWith(files: Record<string, number>): string {
    const folder = freshFolder();
    for (const [name, fill] of Object.entries(files)) writeConstantNpy(path.join(folder, name), shape, fill);
    return folder;
  }

  async function loadAll(source: PairSource): Promise<Array<[string, string, number, number]>> {
    const pairs: Array<[string, string, number, number]> = [];
    for (let i = 0; i < source.count; i++) {
      const pair = await source.load(i);
      pairs.push([pair.referenceName, pair.targetName, pair.reference[0], pair.target[0]]);
    }
    return pairs;
  }

  test('pair i is the i-th file of each folder by code-unit name order; other files are ignored', async () => {
    const reference = folderWith({ 'b.npy': 2, 'a.npy': 1, 'B.npy': 0, 'c.npy': 3 });
    fs.writeFileSync(path.join(reference, 'readme.txt'), 'ignored');
    fs.mkdirSync(path.join(reference, 'sub.png'));
    writeConstantNpy(path.join(reference, 'sub.png', 'inner.npy'), shape, 99);
    const target = folderWith({ 't2.npy': 12, 't10.npy': 11, 't1.npy': 10, 't3.npy': 13 });
    const source = await openPairSource({ reference, target, seed: 0 }, o);
    assert.equal(source.kind, 'folders');
    assert.equal(source.reference, reference);
    assert.equal(source.target, target);
    assert.equal(source.count, 4);
    assert.deepEqual(source.notes, []);
    // 'B' (0x42) sorts before 'a' (0x61); 't10' before 't2' (no natural sort).
    assert.deepEqual(await loadAll(source), [
      ['B.npy', 't1.npy', 0, 10],
      ['a.npy', 't10.npy', 1, 11],
      ['b.npy', 't2.npy', 2, 12],
      ['c.npy', 't3.npy', 3, 13],
    ]);
    await assert.rejects(source.load(4), RangeError);
  });

  test('images and .npy files mix in one folder, and load() returns preprocessed arrays', async () => {
    const reference = freshFolder();
    await solidImage(4, 4, [255, 255, 255]).png().toFile(path.join(reference, 'white.png'));
    writeConstantNpy(path.join(reference, 'zeros.npy'), shape, 0);
    const target = folderWith({ 'x.npy': 5, 'y.npy': 6 });
    const source = await openPairSource({ reference, target, seed: 0 }, o);
    const first = await source.load(0);
    assert.equal(first.referenceName, 'white.png');
    assert.equal(first.reference.length, 12);
    assert.ok(Math.abs(first.reference[0] - normalised(255, 0)) < 1e-6);
    assert.ok(Math.abs(first.reference[11] - normalised(255, 2)) < 1e-6);
  });

  test('unequal counts use the smaller count and say so', async () => {
    const reference = folderWith({ 'r0.npy': 0, 'r1.npy': 1, 'r2.npy': 2, 'r3.npy': 3, 'r4.npy': 4 });
    const target = folderWith({ 't0.npy': 10, 't1.npy': 11, 't2.npy': 12 });
    const source = await openPairSource({ reference, target, seed: 0 }, o);
    assert.equal(source.count, 3);
    assert.equal(source.notes.length, 1);
    assert.match(source.notes[0], /5 .*3.*using 3 pairs/);
    assert.deepEqual(
      (await loadAll(source)).map((pair) => [pair[2], pair[3]]),
      [
        [0, 10],
        [1, 11],
        [2, 12],
      ],
    );
  });

  test('pairs limits to the first N; more than available uses what there is, with a note', async () => {
    const reference = folderWith({ 'r0.npy': 0, 'r1.npy': 1, 'r2.npy': 2, 'r3.npy': 3 });
    const target = folderWith({ 't0.npy': 10, 't1.npy': 11, 't2.npy': 12, 't3.npy': 13 });
    const limited = await openPairSource({ reference, target, pairs: 2, seed: 0 }, o);
    assert.equal(limited.count, 2);
    assert.deepEqual(
      (await loadAll(limited)).map((pair) => [pair[0], pair[1]]),
      [
        ['r0.npy', 't0.npy'],
        ['r1.npy', 't1.npy'],
      ],
    );
    const tooMany = await openPairSource({ reference, target, pairs: 10, seed: 0 }, o);
    assert.equal(tooMany.count, 4);
    assert.ok(
      tooMany.notes.some((note) => /10 pairs.*only 4/.test(note)),
      tooMany.notes.join(' | '),
    );
  });

  test('pairs-from skips the first N pairs (a shard): folders, a split folder and synthetic pairs give the same pairs as the full run', async () => {
    const reference = folderWith({ 'r0.npy': 0, 'r1.npy': 1, 'r2.npy': 2, 'r3.npy': 3 });
    const target = folderWith({ 't0.npy': 10, 't1.npy': 11, 't2.npy': 12, 't3.npy': 13 });
    const shard = await openPairSource({ reference, target, first: 1, pairs: 2, seed: 0 }, o);
    assert.equal(shard.first, 1);
    assert.deepEqual(
      (await loadAll(shard)).map((pair) => [pair[0], pair[1]]),
      [
        ['r1.npy', 't1.npy'],
        ['r2.npy', 't2.npy'],
      ],
    );
    assert.ok(shard.notes.includes('Using pairs 1 to 2 of 4 available pairs.'), shard.notes.join(' | '));
    const rest = await openPairSource({ reference, target, first: 3, pairs: 5, seed: 0 }, o);
    assert.equal(rest.count, 1);
    const split = await openPairSource({ reference: folderWith({ 'f0.npy': 0, 'f1.npy': 1, 'f2.npy': 2, 'f3.npy': 3 }), first: 1, seed: 0 }, o);
    assert.deepEqual(await loadAll(split), [['f1.npy', 'f3.npy', 1, 3]]);
    const whole = await openPairSource({ seed: 5, pairs: 4 }, o);
    const synthetic = await openPairSource({ seed: 5, first: 2, pairs: 2 }, o);
    assert.deepEqual(await synthetic.load(1), await whole.load(3));
    await assert.rejects(
      openPairSource({ reference, target, first: 4, seed: 0 }, o),
      (error: Error) => error instanceof InputDataError && /Skipping 4 pairs leaves none/.test(error.message),
    );
    await assert.rejects(openPairSource({ reference, target, first: -1, seed: 0 }, o), UsageError);
  });

  test('one folder is split into halves, i-th of the first with i-th of the second', async () => {
    const folder = folderWith({ 'f0.npy': 0, 'f1.npy': 1, 'f2.npy': 2, 'f3.npy': 3, 'f4.npy': 4 });
    for (const spec of [
      { reference: folder, seed: 0 },
      { target: folder, seed: 0 },
    ]) {
      const source = await openPairSource(spec, o);
      assert.equal(source.kind, 'split-folder');
      assert.equal(source.reference, folder);
      assert.equal(source.target, folder);
      assert.equal(source.count, 2);
      assert.deepEqual(await loadAll(source), [
        ['f0.npy', 'f2.npy', 0, 2],
        ['f1.npy', 'f3.npy', 1, 3],
      ]);
      assert.ok(
        source.notes.some((note) => note.includes('f4.npy')),
        'the unused odd file is named',
      );
    }
    const limited = await openPairSource({ reference: folder, pairs: 1, seed: 0 }, o);
    assert.deepEqual(await loadAll(limited), [['f0.npy', 'f2.npy', 0, 2]]);

    const single = folderWith({ 'only.npy': 0 });
    await rejectsNaming(openPairSource({ reference: single, seed: 0 }, o), single, /at least 2/);
  });

  test('hidden files are skipped with a note', async () => {
    const reference = folderWith({ 'a.npy': 1, '._a.npy': 9 });
    const target = folderWith({ 'b.npy': 2 });
    const source = await openPairSource({ reference, target, seed: 0 }, o);
    assert.equal(source.count, 1);
    assert.ok(source.notes.some((note) => /hidden/.test(note)));
  });

  test('empty, missing, file-instead-of-folder and same-folder inputs are InputDataErrors', async () => {
    const good = folderWith({ 'a.npy': 1, 'b.npy': 2 });
    const empty = freshFolder('empty');
    fs.writeFileSync(path.join(empty, 'list.csv'), 'a,b\n');
    await rejectsNaming(openPairSource({ reference: empty, target: good, seed: 0 }, o), empty, /\.png.*\.jpg.*\.jpeg.*\.webp.*\.npy/);
    await rejectsNaming(openPairSource({ reference: good, target: empty, seed: 0 }, o), empty, /no usable files/);
    await rejectsNaming(openPairSource({ target: empty, seed: 0 }, o), empty, /no usable files/);

    const missing = path.join(tempRoot, 'no-such-folder');
    await rejectsNaming(openPairSource({ reference: missing, target: good, seed: 0 }, o), missing, /does not exist/);
    await rejectsNaming(openPairSource({ reference: good, target: missing, seed: 0 }, o), missing, /^Target folder/);

    const file = path.join(good, 'a.npy');
    await rejectsNaming(openPairSource({ reference: file, seed: 0 }, o), file, /is a file, not a folder/);

    await rejectsNaming(openPairSource({ reference: good, target: good + path.sep, seed: 0 }, o), good, /same folder/);
  });

  test('a corrupt file in a folder fails at load() with an InputDataError naming it', async () => {
    const reference = folderWith({ 'a.npy': 1 });
    const target = freshFolder();
    fs.writeFileSync(path.join(target, 'broken.webp'), 'RIFF....WEBPnope');
    const source = await openPairSource({ reference, target, seed: 0 }, o);
    await rejectsNaming(source.load(0), 'broken.webp');
  });

  test('bad pair counts and bad preprocessing options are UsageErrors', async () => {
    const good = folderWith({ 'a.npy': 1, 'b.npy': 2 });
    for (const pairs of [0, -1, 1.5, Number.NaN]) {
      await assert.rejects(openPairSource({ reference: good, pairs, seed: 0 }, o), UsageError);
    }
    const bad: Array<Partial<PreprocessOptions>> = [
      { size: [0, 4] },
      { size: [4.5, 4] },
      { size: [4] as unknown as [number, number] },
      { channels: 2 },
      { mean: [0.5, 0.5] as unknown as [number, number, number] },
      { std: [0.5, 0, 0.5] },
      { std: [0.5, -1, 0.5] },
      { std: [0.5, 0.5] as unknown as [number, number, number] },
    ];
    for (const change of bad) {
      await assert.rejects(openPairSource({ seed: 0 }, { ...o, ...change }), UsageError, JSON.stringify(change));
    }
  });

  test('the shared fixture pairs load as [3,32,32] float32', async () => {
    const fixtures = path.join(__dirname, '..', '..', '..', 'test', 'fixtures', 'pairs');
    if (!fs.existsSync(fixtures)) return;
    const source = await openPairSource({ reference: path.join(fixtures, 'reference'), target: path.join(fixtures, 'target'), seed: 0 }, options(32, 32));
    assert.ok(source.count >= 1);
    const pair = await source.load(0);
    assert.equal(pair.reference.length, 3 * 32 * 32);
    assert.equal(pair.target.length, 3 * 32 * 32);
  });
});

describe('synthetic pairs', () => {
  const o = options(24, 32);

  test('default count, names, kind and notes', async () => {
    const source = await openPairSource({ seed: 3 }, o);
    assert.equal(source.kind, 'synthetic');
    assert.equal(source.reference, null);
    assert.equal(source.target, null);
    assert.equal(source.count, 32);
    assert.equal(source.notes.length, 1);
    const pair = await source.load(5);
    assert.equal(pair.referenceName, 'synthetic-reference-5');
    assert.equal(pair.targetName, 'synthetic-target-5');
    assert.equal(pair.reference.length, 3 * 24 * 32);
    assert.equal((await openPairSource({ seed: 3, pairs: 4 }, o)).count, 4);
  });

  test('same seed gives identical arrays, different seeds differ, pairs differ from each other', async () => {
    const first = await (await openPairSource({ seed: 42 }, o)).load(2);
    const again = await (await openPairSource({ seed: 42 }, o)).load(2);
    const other = await (await openPairSource({ seed: 43 }, o)).load(2);
    const nextPair = await (await openPairSource({ seed: 42 }, o)).load(3);
    assert.deepEqual(first.reference, again.reference);
    assert.deepEqual(first.target, again.target);
    assert.notDeepEqual(first.reference, other.reference);
    assert.notDeepEqual(first.target, other.target);
    assert.notDeepEqual(first.reference, nextPair.reference);
    assert.notDeepEqual(first.reference, first.target);
  });

  test('pixels stay in [0,1] and are normalised like images', async () => {
    const pixels = syntheticPixels(42, 'reference', 2, 3, 24, 32);
    assert.ok(pixels.every((value) => value >= 0 && value <= 1));
    const input = (await (await openPairSource({ seed: 42 }, o)).load(2)).reference;
    for (const i of [0, 24 * 32 + 5, 2 * 24 * 32 + 100]) {
      const c = Math.floor(i / (24 * 32));
      assert.equal(input[i], Math.fround((pixels[i] - IMAGENET_MEAN[c]) / IMAGENET_STD[c]));
    }
  });

  test('target images are much rougher than reference images', async () => {
    const source = await openPairSource({ seed: 11, pairs: 8 }, o);
    const [height, width] = o.size;
    const roughness = (values: Float32Array) => {
      let sum = 0;
      let count = 0;
      for (let c = 0; c < 3; c++) {
        for (let y = 0; y < height; y++) {
          for (let x = 0; x + 1 < width; x++) {
            const i = (c * height + y) * width + x;
            sum += Math.abs(values[i + 1] - values[i]) * IMAGENET_STD[c];
            count++;
          }
        }
      }
      return sum / count;
    };
    for (let i = 0; i < source.count; i++) {
      const pair = await source.load(i);
      const smooth = roughness(pair.reference);
      const rough = roughness(pair.target);
      assert.ok(rough > 5 * smooth, `pair ${i}: target ${rough} vs reference ${smooth}`);
      assert.ok(smooth < 0.05, `pair ${i}: reference neighbour difference ${smooth}`);
    }
  });
});
