// The image pipeline on small generated fixtures (PNG, JPEG, WebP written by sharp from raw pixels,
// PGM written by hand, a folder per person, list files, broken files): decoding, preprocessing
// against plain references, augmentation, data sets and the cache. Nothing here needs ../shared
// except the last, optional LFW check.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { DclError } from '../lib/errors.js';
import {
  augmentBatch,
  decodeImage,
  decodePgm,
  DEFAULT_PREPROCESSING,
  defaultCacheDir,
  LFW_PREPROCESSING,
  loadDataset,
  loadImages,
  readListFile,
  resolvePreprocessing,
  scanFolderDataset,
} from '../lib/images.js';
import type { ImageBatch, LoadedDataset } from '../lib/images.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'dcl-images-'));
process.on('exit', () => fs.rmSync(tmp, { recursive: true, force: true }));

/** Interleaved 8-bit RGB with a pattern that differs per channel and per pixel. */
function pattern(width: number, height: number, seed = 0): Uint8Array {
  const out = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++)
    for (let x = 0; x < width; x++) for (let c = 0; c < 3; c++) out[(y * width + x) * 3 + c] = (x * 7 + y * 13 + c * 50 + seed * 31) % 256;
  return out;
}

async function encodeAs(raw: Uint8Array, width: number, height: number, channels: 1 | 3, format: 'png' | 'jpeg' | 'webp'): Promise<Buffer> {
  const s = sharp(raw, { raw: { width, height, channels } });
  if (format === 'png') return s.png().toBuffer();
  if (format === 'jpeg') return s.jpeg({ quality: 95 }).toBuffer();
  return s.webp({ lossless: true }).toBuffer();
}

async function writeImage(file: string, raw: Uint8Array, width: number, height: number, channels: 1 | 3 = 3): Promise<string> {
  const format = file.endsWith('.png') ? 'png' : file.endsWith('.webp') ? 'webp' : 'jpeg';
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, await encodeAs(raw, width, height, channels, format));
  return file;
}

function pgm(kind: 'P5' | 'P2', width: number, height: number, maxval: number, samples: number[]): Buffer {
  const header = `${kind}\n# written by hand\n${width} ${height}\n${maxval}\n`;
  if (kind === 'P2') return Buffer.from(header + samples.join(' ') + '\n');
  const body = Buffer.alloc(samples.length * (maxval > 255 ? 2 : 1));
  samples.forEach((v, i) => (maxval > 255 ? body.writeUInt16BE(v, 2 * i) : body.writeUInt8(v, i)));
  return Buffer.concat([Buffer.from(header), body]);
}

async function rejects(promise: Promise<unknown>, code: string, fragment?: string): Promise<DclError> {
  try {
    await promise;
  } catch (error) {
    assert.instance(error, DclError, `expected a DclError, got ${error}`);
    const e = error as DclError;
    assert.is(e.code, code, e.message);
    if (fragment) assert.ok(e.message.includes(fragment), `"${e.message}" should name ${fragment}`);
    return e;
  }
  assert.unreachable(`expected a ${code} rejection`);
  throw new Error('unreachable');
}

function throwsCode(fn: () => unknown, code: string, fragment?: string): void {
  try {
    fn();
  } catch (error) {
    assert.instance(error, DclError);
    assert.is((error as DclError).code, code, (error as DclError).message);
    if (fragment) assert.ok((error as DclError).message.includes(fragment), (error as DclError).message);
    return;
  }
  assert.unreachable(`expected ${code}`);
}

function close(actual: ArrayLike<number>, expected: ArrayLike<number>, tol: number, what: string): void {
  assert.is(actual.length, expected.length, `${what}: length`);
  for (let i = 0; i < actual.length; i++)
    if (!(Math.abs(actual[i] - expected[i]) <= tol)) assert.unreachable(`${what}: index ${i} is ${actual[i]}, expected ${expected[i]} (tolerance ${tol})`);
}

// ---------------------------------------------------------------------------------------------
// Decoding

test('PNG and lossless WebP decode to the exact pixels; JPEG closely', async () => {
  const raw = pattern(13, 9);
  for (const ext of ['png', 'webp'] as const) {
    const file = await writeImage(path.join(tmp, `round.${ext}`), raw, 13, 9);
    const d = await decodeImage(file);
    assert.equal([d.width, d.height, d.channels], [13, 9, 3]);
    assert.equal(Array.from(d.data), Array.from(raw), ext);
  }
  const smooth = new Uint8Array(32 * 32 * 3).map((_, i) => 60 + ((i / 3) % 32) * 3);
  const jpg = await writeImage(path.join(tmp, 'round.jpg'), smooth, 32, 32);
  const d = await decodeImage(jpg);
  close(d.data, smooth, 8, 'jpeg');
  // From a Buffer as well, and a grey PNG comes back as three equal channels.
  const grey = Uint8Array.from({ length: 12 }, (_, i) => i * 20);
  const fromBuffer = await decodeImage(await encodeAs(grey, 4, 3, 1, 'png'));
  assert.equal(Array.from(fromBuffer.data), Array.from(grey).flatMap((v) => [v, v, v]));
});

test('PGM: binary 8-bit, binary 16-bit and plain (ASCII) files', async () => {
  const samples = [0, 10, 20, 30, 40, 255];
  assert.equal(Array.from(decodePgm(pgm('P5', 3, 2, 255, samples)).data), samples);
  assert.equal(Array.from(decodePgm(pgm('P2', 3, 2, 255, samples)).data), samples);
  const wide = decodePgm(pgm('P5', 3, 2, 65535, [0, 257, 65535, 32768, 1000, 65280]));
  assert.equal(Array.from(wide.data), [0, 1, 255, 128, 4, 254]);
  assert.is(wide.maxval, 65535);
  // maxval 15: scaled to 8 bits.
  assert.equal(Array.from(decodePgm(pgm('P2', 2, 1, 15, [15, 5])).data), [255, 85]);
  // A PGM file goes through the whole pipeline (sharp cannot read PGM in its prebuilt libvips).
  const file = path.join(tmp, 'g.pgm');
  fs.writeFileSync(file, pgm('P5', 3, 2, 255, samples));
  const d = await decodeImage(file);
  assert.equal(Array.from(d.data), samples.flatMap((v) => [v, v, v]));
  const batch = await loadImages([file], { size: [2, 3], normalize: 'none' });
  close(batch.images, samples.map((v) => v / 255), 1e-7, 'pgm floats');
  // Malformed ones.
  throwsCode(() => decodePgm(pgm('P5', 3, 2, 255, samples).subarray(0, 20), 'short.pgm'), 'E_FORMAT', 'short.pgm');
  throwsCode(() => decodePgm(pgm('P2', 2, 1, 15, [15, 16])), 'E_FORMAT', 'above the maxval');
  throwsCode(() => decodePgm(Buffer.from('P5\n2 x\n255\n')), 'E_FORMAT');
  throwsCode(() => decodePgm(Buffer.from('P5\n2 2\n70000\n')), 'E_FORMAT', 'maxval');
});

// ---------------------------------------------------------------------------------------------
// Preprocessing

test('crop without resampling, RGB and grey, against the source pixels', async () => {
  const [w, h] = [40, 30];
  const raw = pattern(w, h, 3);
  const file = await writeImage(path.join(tmp, 'crop.png'), raw, w, h);
  const box: [number, number, number, number] = [5, 4, 21, 20]; // 16 x 16
  const rgb = await loadImages([file], { crop: box, size: 16, color: 'rgb', normalize: 'none' });
  assert.equal(rgb.shape, [3, 16, 16]);
  const expectedRgb: number[] = [];
  for (let c = 0; c < 3; c++) for (let y = 0; y < 16; y++) for (let x = 0; x < 16; x++) expectedRgb.push(raw[((y + 4) * w + x + 5) * 3 + c] / 255);
  close(rgb.images, expectedRgb, 1e-7, 'rgb crop');

  const grey = await loadImages([file], { crop: box, size: 16, color: 'gray', normalize: 'none' });
  assert.equal(grey.shape, [1, 16, 16]);
  const luma = (y: number, x: number) => {
    const i = ((y + 4) * w + x + 5) * 3;
    return (0.299 * raw[i] + 0.587 * raw[i + 1] + 0.114 * raw[i + 2]) / 255;
  };
  const expectedGrey: number[] = [];
  for (let y = 0; y < 16; y++) for (let x = 0; x < 16; x++) expectedGrey.push(luma(y, x));
  close(grey.images, expectedGrey, 1e-6, 'grey crop');

  // Per-image normalisation: (v - mean) / std over the image.
  const norm = await loadImages([file], { crop: box, size: 16, color: 'gray', normalize: 'per-image' });
  const mean = expectedGrey.reduce((a, b) => a + b, 0) / expectedGrey.length;
  const std = Math.sqrt(expectedGrey.reduce((a, b) => a + (b - mean) ** 2, 0) / expectedGrey.length);
  close(norm.images, expectedGrey.map((v) => (v - mean) / std), 1e-4, 'normalised');
});

test('resize follows a smooth ramp; a flat image stays flat and normalises to zeros', async () => {
  const [w, h] = [64, 48];
  const raw = new Uint8Array(w * h * 3);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) raw.fill(40 + 2 * x, (y * w + x) * 3, (y * w + x) * 3 + 3);
  const file = await writeImage(path.join(tmp, 'ramp.png'), raw, w, h);
  const b = await loadImages([file], { size: [24, 32], normalize: 'none' });
  assert.equal(b.shape, [1, 24, 32]);
  // Output pixel x covers source x' = (x + 0.5) * 2 - 0.5: value 40 + 2 x'. Borders are left out
  // (the filter reaches past the edge there).
  for (let y = 0; y < 24; y++)
    for (let x = 3; x < 29; x++) {
      const expected = (40 + 2 * ((x + 0.5) * 2 - 0.5)) / 255;
      if (Math.abs(b.images[y * 32 + x] - expected) > 1.5 / 255) assert.unreachable(`(${y}, ${x}): ${b.images[y * 32 + x] * 255} vs ${expected * 255}`);
    }
  const flat = await writeImage(path.join(tmp, 'flat.png'), new Uint8Array(20 * 20 * 3).fill(77), 20, 20);
  const f = await loadImages([flat], { size: 8, normalize: 'none' });
  close(f.images, new Array(64).fill(77 / 255), 1e-7, 'flat resized');
  const z = await loadImages([flat], { size: 8 });
  close(z.images, new Array(64).fill(0), 0, 'flat normalised (std = 0)');
});

test('stored size: the crop box sits in the middle, with a margin of the same scale around it', async () => {
  const [w, h] = [80, 80];
  const raw = new Uint8Array(w * h * 3);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) raw.fill(20 + 2 * x + y, (y * w + x) * 3, (y * w + x) * 3 + 3);
  const file = await writeImage(path.join(tmp, 'margin.png'), raw, w, h);
  const pre = { crop: [20, 20, 60, 60] as [number, number, number, number], size: 20, storedSize: 24, normalize: 'none' as const };
  const net = await loadImages([file], pre);
  const stored = await loadImages([file], pre, { size: 'stored' });
  assert.equal(net.shape, [1, 20, 20]);
  assert.equal(stored.shape, [1, 24, 24]);
  // Centre 20 x 20 of the stored image vs the network image: the same scale (2 source px per px).
  for (let y = 0; y < 20; y++)
    for (let x = 0; x < 20; x++) {
      const a = stored.images[(y + 2) * 24 + x + 2];
      const b = net.images[y * 20 + x];
      if (Math.abs(a - b) > 2 / 255) assert.unreachable(`(${y}, ${x}): stored ${a * 255} vs network ${b * 255}`);
    }
  // Without a crop box the margin leaves the image: edge pixels are repeated, nothing fails.
  const whole = await loadImages([file], { size: 16, storedSize: 20, normalize: 'none' }, { size: 'stored' });
  assert.equal(whole.shape, [1, 20, 20]);
  assert.ok(whole.images.every((v) => Number.isFinite(v) && v >= 0 && v <= 1));
  // The stored size is validated against the network size.
  throwsCode(() => resolvePreprocessing({ size: 64, storedSize: 60 }), 'E_ARG', 'storedSize');
});

test('preprocessing descriptions: defaults, LFW, a model-style round trip, bad values', () => {
  assert.equal(resolvePreprocessing(), { ...DEFAULT_PREPROCESSING, inputShape: [1, 64, 64] });
  const lfw = resolvePreprocessing(LFW_PREPROCESSING);
  assert.equal(lfw, { inputShape: [1, 64, 64], normalize: 'per-image', color: 'gray', crop: [65, 65, 185, 185], storedSize: [72, 72] });
  // What a model file stores (JSON) comes back unchanged.
  assert.equal(resolvePreprocessing(JSON.parse(JSON.stringify(lfw))), lfw);
  assert.equal(resolvePreprocessing({ inputShape: [3, 32, 48], normalize: 'none' }).color, 'rgb');
  assert.ok(Object.isFrozen(LFW_PREPROCESSING) && Object.isFrozen(LFW_PREPROCESSING.crop));
  throwsCode(() => resolvePreprocessing({ color: 'grey' } as never), 'E_ARG', 'preprocessing.color');
  throwsCode(() => resolvePreprocessing({ crop: [10, 10, 5, 20] }), 'E_ARG', 'preprocessing.crop');
  throwsCode(() => resolvePreprocessing({ size: 0 }), 'E_ARG', 'preprocessing.size');
  throwsCode(() => resolvePreprocessing({ inputShape: [2, 8, 8] }), 'E_SHAPE');
  throwsCode(() => resolvePreprocessing({ inputShape: [1, 8, 8], color: 'rgb' }), 'E_ARG', 'agree');
  throwsCode(() => resolvePreprocessing({ sise: 8 } as never), 'E_ARG', "'sise'");
});

// ---------------------------------------------------------------------------------------------
// Loading many images: errors, progress, abort

test('errors name the file: missing (E_IO), not an image, empty, truncated, too small (E_FORMAT)', async () => {
  const good = await writeImage(path.join(tmp, 'err', 'good.png'), pattern(8, 8), 8, 8);
  const missing = path.join(tmp, 'err', 'missing.png');
  const broken = path.join(tmp, 'err', 'broken.jpg');
  fs.writeFileSync(broken, Buffer.from(Array.from({ length: 200 }, (_, i) => (i * 97 + 13) % 256)));
  const empty = path.join(tmp, 'err', 'empty.png');
  fs.writeFileSync(empty, Buffer.alloc(0));
  const jpeg = await encodeAs(pattern(16, 16), 16, 16, 3, 'jpeg');
  const truncated = path.join(tmp, 'err', 'truncated.jpg');
  fs.writeFileSync(truncated, jpeg.subarray(0, Math.floor(jpeg.length / 2)));
  const pre = { size: 8 };
  await rejects(loadImages([good, missing], pre), 'E_IO', 'missing.png');
  await rejects(loadImages([broken], pre), 'E_FORMAT', 'broken.jpg');
  await rejects(loadImages([empty], pre), 'E_FORMAT', 'empty.png');
  await rejects(loadImages([truncated], pre), 'E_FORMAT', 'truncated.jpg');
  await rejects(loadImages([good], { crop: [0, 0, 10, 8], size: 8 }), 'E_FORMAT', 'good.png');
  await rejects(loadImages([good, Buffer.from('not an image at all')], pre), 'E_FORMAT', 'buffer #1');
  await rejects(decodeImage(path.join(tmp, 'err')), 'E_IO', 'err');
  await rejects(loadImages('x.png' as never), 'E_ARG', 'sources');
  await rejects(loadImages([good], pre, { concurency: 2 } as never), 'E_ARG', "'concurency'");
  await rejects(loadImages([good], pre, { size: 'big' } as never), 'E_ARG', 'options.size');
});

test('many images: source order kept, progress reported, abort stops', async () => {
  const files: string[] = [];
  for (let i = 0; i < 10; i++) files.push(await writeImage(path.join(tmp, 'many', `${i}.png`), new Uint8Array(12 * 12 * 3).fill(i * 20), 12, 12));
  const seen: number[] = [];
  const b = await loadImages(files, { size: 4, normalize: 'none' }, { concurrency: 3, onProgress: (p) => seen.push(p.done) });
  assert.is(b.count, 10);
  for (let i = 0; i < 10; i++) close(b.images.subarray(i * 16, (i + 1) * 16), new Array(16).fill((i * 20) / 255), 1e-7, `image ${i}`);
  assert.equal(seen, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
  await rejects(loadImages(files, { size: 4 }, { signal: AbortSignal.abort() }), 'E_ABORTED');
  const controller = new AbortController();
  let calls = 0;
  await rejects(
    loadImages(files, { size: 4 }, { concurrency: 1, signal: controller.signal, onProgress: () => ++calls === 2 && controller.abort() }),
    'E_ABORTED',
  );
  assert.ok(calls < 10, `stopped after ${calls} images`);
});

// ---------------------------------------------------------------------------------------------
// Augmentation

/** A stored batch [count, 1, 8, 8] with distinct values everywhere. */
function storedBatch(count: number): ImageBatch {
  const images = Float32Array.from({ length: count * 64 }, (_, i) => i * 0.01 + ((i * 37) % 11) * 0.1);
  return { images, shape: [1, 8, 8], count };
}

test('augmentation: deterministic per seed, flips mirror exactly, shifts copy stored windows', () => {
  const pre = { size: 6, storedSize: 8, normalize: 'none' as const };
  const stored = storedBatch(20);
  const a = augmentBatch(stored, pre, { seed: 5 });
  const b = augmentBatch(stored, pre, { seed: 5 });
  const c = augmentBatch(stored, pre, { seed: 6 });
  assert.equal(a.shape, [1, 6, 6]);
  assert.is(a.count, 20);
  assert.equal(Array.from(a.images), Array.from(b.images));
  assert.not.equal(Array.from(a.images), Array.from(c.images));

  // Window (oy, ox) of image k, optionally mirrored.
  const window = (k: number, oy: number, ox: number, mirror: boolean) => {
    const out: number[] = [];
    for (let y = 0; y < 6; y++) for (let x = 0; x < 6; x++) out.push(stored.images[k * 64 + (oy + y) * 8 + ox + (mirror ? 5 - x : x)]);
    return out;
  };
  // Flips only: each image is the centre window or its exact mirror, and both occur.
  const flips = augmentBatch(stored, pre, { seed: 1, shift: 0, scale: 0 });
  let mirrored = 0;
  for (let k = 0; k < 20; k++) {
    const got = Array.from(flips.images.subarray(k * 36, (k + 1) * 36));
    const plain = window(k, 1, 1, false);
    const mirror = window(k, 1, 1, true);
    if (got.every((v, i) => v === mirror[i])) mirrored++;
    else assert.equal(got, plain, `image ${k}`);
  }
  assert.ok(mirrored > 0 && mirrored < 20, `${mirrored} of 20 mirrored`);
  // Shifts only: each image is exactly one of the stored windows within the margin.
  const shifts = augmentBatch(stored, pre, { seed: 2, flip: false, scale: 0 });
  const offsets = new Set<string>();
  for (let k = 0; k < 20; k++) {
    const got = Array.from(shifts.images.subarray(k * 36, (k + 1) * 36));
    let found = '';
    for (let oy = 0; oy <= 2; oy++) for (let ox = 0; ox <= 2; ox++) if (window(k, oy, ox, false).every((v, i) => v === got[i])) found = `${oy},${ox}`;
    assert.ok(found !== '', `image ${k} is no stored window`);
    offsets.add(found);
  }
  assert.ok(offsets.size > 2, 'shifts vary');
  // Scales: values stay within the stored image's range; indices pick images; normalisation is redone.
  const picked = augmentBatch(stored, { ...pre, normalize: 'per-image' }, { seed: 3, indices: [4, 4, 19] });
  assert.is(picked.count, 3);
  for (let k = 0; k < 3; k++) {
    const img = picked.images.subarray(k * 36, (k + 1) * 36);
    const mean = img.reduce((s, v) => s + v, 0) / 36;
    const std = Math.sqrt(img.reduce((s, v) => s + (v - mean) ** 2, 0) / 36);
    assert.ok(Math.abs(mean) < 1e-5 && Math.abs(std - 1) < 1e-4, `image ${k}: mean ${mean}, std ${std}`);
  }
  throwsCode(() => augmentBatch({ ...stored, shape: [1, 6, 6] }, pre), 'E_SHAPE', 'stored.shape');
  throwsCode(() => augmentBatch(stored, pre, { indices: [20] }), 'E_ARG', 'options.indices');
  throwsCode(() => augmentBatch(stored, pre, { scale: 2 }), 'E_ARG', 'options.scale');
});

// ---------------------------------------------------------------------------------------------
// Data sets and the cache

const people = path.join(tmp, 'people');

async function buildPeople(): Promise<void> {
  await writeImage(path.join(people, 'Alice', 'Alice_0001.png'), pattern(20, 20, 1), 20, 20);
  await writeImage(path.join(people, 'Alice', 'Alice_0002.webp'), pattern(20, 20, 2), 20, 20);
  await writeImage(path.join(people, 'Bob', 'Bob_0001.jpg'), pattern(20, 20, 3), 20, 20);
  await writeImage(path.join(people, 'Bob', 'Bob_0002.png'), pattern(20, 20, 4), 20, 20);
  fs.writeFileSync(path.join(people, 'Bob', 'Bob_0003.jpg'), Buffer.from(Array.from({ length: 300 }, (_, i) => (i * 53 + 7) % 256)));
  fs.writeFileSync(path.join(people, 'Bob', 'Bob_0004.png'), Buffer.alloc(0));
  fs.writeFileSync(path.join(people, 'Bob', 'notes.txt'), 'not an image');
  fs.mkdirSync(path.join(people, 'Carol'), { recursive: true });
  fs.writeFileSync(path.join(people, 'Carol', 'Carol_0001.pgm'), pgm('P5', 20, 20, 255, Array.from({ length: 400 }, (_, i) => i % 256)));
  fs.mkdirSync(path.join(people, 'Dave'), { recursive: true }); // no images: no label
  fs.mkdirSync(path.join(people, '.hidden'), { recursive: true });
  await writeImage(path.join(people, '.hidden', 'x.png'), pattern(20, 20), 20, 20);
}

test('folder data set: people and files sorted, labels, non-images and hidden entries left out', async () => {
  await buildPeople();
  const d = scanFolderDataset(people);
  assert.equal(d.names, ['Alice', 'Bob', 'Carol']);
  assert.equal(
    d.files.map((f) => path.relative(people, f)),
    ['Alice/Alice_0001.png', 'Alice/Alice_0002.webp', 'Bob/Bob_0001.jpg', 'Bob/Bob_0002.png', 'Bob/Bob_0003.jpg', 'Bob/Bob_0004.png', 'Carol/Carol_0001.pgm'],
  );
  assert.equal(Array.from(d.labels), [0, 0, 1, 1, 1, 1, 2]);
  throwsCode(() => scanFolderDataset(path.join(tmp, 'nowhere')), 'E_IO', 'nowhere');
  fs.mkdirSync(path.join(tmp, 'emptyset', 'Nobody'), { recursive: true });
  throwsCode(() => scanFolderDataset(path.join(tmp, 'emptyset')), 'E_FORMAT', 'emptyset');
});

test('list files: relative paths, labels by name, comments, CRLF; a malformed line names file and line', () => {
  const dir = path.join(tmp, 'lists');
  fs.mkdirSync(dir, { recursive: true });
  const list = path.join(dir, 'train.txt');
  fs.writeFileSync(list, `# path<TAB>label\r\n../people/Bob/Bob_0001.jpg\tbob\r\n\n${path.join(people, 'Alice', 'Alice_0001.png')}\talice\r\nx/y.png\tbob\n`);
  const d = readListFile(list);
  assert.equal(d.files, [path.join(people, 'Bob', 'Bob_0001.jpg'), path.join(people, 'Alice', 'Alice_0001.png'), path.join(dir, 'x', 'y.png')]);
  assert.equal(d.names, ['alice', 'bob']);
  assert.equal(Array.from(d.labels), [1, 0, 1]);
  // Integer labels are numbered numerically (so 0..K-1 keep their values).
  const numeric = path.join(dir, 'numeric.txt');
  fs.writeFileSync(numeric, 'a.png\t10\nb.png\t2\nc.png\t0\n');
  assert.equal(Array.from(readListFile(numeric).labels), [2, 1, 0]);
  const bad = path.join(dir, 'bad.txt');
  fs.writeFileSync(bad, 'a.png\t1\nb.png\t2\nc.png 3\n');
  throwsCode(() => readListFile(bad), 'E_FORMAT', 'bad.txt line 3');
  fs.writeFileSync(bad, 'a.png\t1\n\tnolabel\n');
  throwsCode(() => readListFile(bad), 'E_FORMAT', 'line 2');
  throwsCode(() => readListFile(path.join(dir, 'absent.txt')), 'E_IO', 'absent.txt');
});

test('data set load skips and counts broken files; the cache is hit, invalidated and rebuilt', async () => {
  const cache = path.join(tmp, 'cache');
  const pre = { size: 8, storedSize: 10, crop: [2, 2, 18, 18] as [number, number, number, number] };
  const warnings: string[] = [];
  const load = (p: object = pre, extra: object = {}) =>
    loadDataset(people, p, { cache, size: 'stored', onWarning: (m) => warnings.push(m), ...extra });

  const first = await load();
  assert.is(first.count, 5);
  assert.equal(first.shape, [1, 10, 10]);
  assert.equal(Array.from(first.labels), [0, 0, 1, 1, 2]);
  assert.equal(first.skipped.map((s) => [path.basename(s.file), s.code]), [['Bob_0003.jpg', 'E_FORMAT'], ['Bob_0004.png', 'E_FORMAT']]);
  assert.ok(warnings.some((w) => w.includes('Bob_0003.jpg')) && warnings.some((w) => w.includes('Bob_0004.png')), warnings.join('\n'));
  assert.is(first.fromCache, false);
  assert.is(first.decoded, 5);
  assert.ok(first.cacheFile !== null && fs.existsSync(first.cacheFile) && first.cacheFile.startsWith(cache));

  // Second load: one file read, nothing decoded, the same data.
  const same = (a: LoadedDataset, b: LoadedDataset) => {
    assert.equal(Array.from(a.images), Array.from(b.images));
    assert.equal(Array.from(a.labels), Array.from(b.labels));
    assert.equal(a.files, b.files);
    assert.equal(a.skipped, b.skipped);
  };
  const progress: number[] = [];
  const second = await load(pre, { onProgress: (p: { done: number }) => progress.push(p.done) });
  assert.is(second.fromCache, true);
  assert.is(second.decoded, 0);
  assert.equal(progress, [7]);
  same(first, second);

  // A changed modification time, a changed file size or other preprocessing: decoded again.
  const bob2 = path.join(people, 'Bob', 'Bob_0002.png');
  const later = new Date(Date.now() + 60_000);
  fs.utimesSync(bob2, later, later);
  const touched = await load();
  assert.is(touched.fromCache, false);
  assert.is(touched.decoded, 5);
  assert.is((await load()).fromCache, true);
  await writeImage(bob2, pattern(24, 24, 4), 24, 24);
  assert.is((await load()).fromCache, false);
  const other = await load({ ...pre, normalize: 'none' });
  assert.is(other.fromCache, false);
  assert.is((await load({ ...pre, normalize: 'none' })).fromCache, true);
  assert.is((await load(pre, { size: 'network' })).fromCache, false);

  // A corrupt cache file is reported and rebuilt, never a crash; then it is hit again.
  const good = await load();
  assert.is(good.fromCache, true);
  const file = good.cacheFile!;
  const bytes = fs.readFileSync(file);
  bytes[bytes.length - 100] ^= 0x55;
  fs.writeFileSync(file, bytes);
  warnings.length = 0;
  const rebuilt = await load();
  assert.is(rebuilt.fromCache, false);
  assert.ok(warnings.some((w) => w.includes('unusable') && w.includes(file)), warnings.join('\n'));
  same(good, rebuilt);
  assert.is((await load()).fromCache, true);
  fs.writeFileSync(file, bytes.subarray(0, 30));
  assert.is((await load()).fromCache, false);
  fs.writeFileSync(file, 'garbage');
  assert.is((await load()).fromCache, false);
  assert.is((await load()).fromCache, true);

  // cache: false writes nothing.
  const uncached = await loadDataset(people, pre, { cache: false });
  assert.is(uncached.cacheFile, null);
  assert.is(uncached.fromCache, false);
});

test('data sets from a list file and from a file list; missing files are skipped as E_IO', async () => {
  const list = path.join(tmp, 'lists', 'set.txt');
  fs.writeFileSync(list, '../people/Alice/Alice_0001.png\ta\n../people/Carol/Carol_0001.pgm\tc\n../people/Zed/gone.png\tz\n');
  const d = await loadDataset(list, { size: 8 }, { cache: false });
  assert.is(d.count, 2);
  assert.equal(Array.from(d.labels), [0, 1]);
  assert.equal(d.names, ['a', 'c', 'z']);
  assert.equal(d.skipped.map((s) => s.code), ['E_IO']);
  assert.ok(d.skipped[0].reason.includes('gone.png'));
  const fromList = await loadDataset({ files: [path.join(people, 'Alice', 'Alice_0001.png')], labels: Int32Array.of(0) }, { size: 8 }, { cache: false });
  assert.is(fromList.count, 1);
  assert.equal(fromList.names, ['0']);
  await rejects(loadDataset(path.join(tmp, 'no-such-set'), { size: 8 }, { cache: false }), 'E_IO', 'no-such-set');
  await rejects(loadDataset(people, { size: 8 }, { cache: 3 } as never), 'E_ARG', 'options.cache');
  assert.ok(path.isAbsolute(defaultCacheDir()));
});

// ---------------------------------------------------------------------------------------------
// Real faces, when the shared data is present

test('LFW (optional): three deep-funneled images with LFW_PREPROCESSING', async () => {
  const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../shared/data/lfw/images_deepfunneled');
  if (!fs.existsSync(root)) {
    console.log(`    skipped: ${root} is not present`);
    return;
  }
  // The first image of each of the first three people (sorted, so the same three every run).
  const three = fs
    .readdirSync(root)
    .sort()
    .slice(0, 3)
    .map((p) => path.join(root, p, fs.readdirSync(path.join(root, p)).sort()[0]));
  const net = await loadImages(three, LFW_PREPROCESSING);
  assert.equal(net.shape, [1, 64, 64]);
  assert.is(net.count, 3);
  const stored = await loadImages(three, LFW_PREPROCESSING, { size: 'stored' });
  assert.equal(stored.shape, [1, 72, 72]);
  for (let k = 0; k < 3; k++) {
    const img = net.images.subarray(k * 4096, (k + 1) * 4096);
    const mean = img.reduce((s, v) => s + v, 0) / 4096;
    const std = Math.sqrt(img.reduce((s, v) => s + (v - mean) ** 2, 0) / 4096);
    assert.ok(Math.abs(mean) < 1e-4 && Math.abs(std - 1) < 1e-3, `image ${k}: mean ${mean}, std ${std}`);
  }
  const augmented = augmentBatch(stored, LFW_PREPROCESSING, { seed: 1 });
  assert.equal(augmented.shape, [1, 64, 64]);
});

test.run();
