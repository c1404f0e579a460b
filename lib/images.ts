// Real images for the network: decoding (sharp for JPEG, PNG, WebP and TIFF; a small reader of
// our own for PGM, which the prebuilt libvips that sharp ships cannot read), preprocessing (crop
// box, resize, grey or RGB, per-image normalisation), training-time augmentation, data sets (a
// folder per person, or a list file) and a one-file cache of a decoded data set.
//
// Geometry in one place: the crop box says what the network sees. When a larger stored size is
// asked for (for random crops in training), the box is widened on every side by the margin, in
// source pixels at the same scale, so that the centre of a stored image is the network-size image
// and a random crop within it is a small shift of the face. Where the widened box leaves the
// source image, edge pixels are repeated.
//
// Decoding and resampling run in sharp (libvips) on libuv's thread pool; the event loop only
// turns each small decoded image into floats.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DclError } from './errors.js';
import type { DclErrorCode } from './errors.js';
import { sha256Hex, writeFileAtomic } from './files.js';
import type { Preprocessing } from './model.js';
import { Rng } from './random.js';
import { describe, knownKeys, plainObject } from './validate.js';

type SharpModule = typeof import('sharp');

// ---------------------------------------------------------------------------------------------
// Preprocessing description

export type ColorMode = 'gray' | 'rgb';
/** [left, top, right, bottom] in source pixels; right and bottom are exclusive. */
export type CropBox = [number, number, number, number];

/**
 * A complete, JSON-safe description of the image pipeline. It is a Preprocessing (the model's
 * metadata), so a model saved after training on these images carries it, and
 * `resolvePreprocessing(model.preprocessing)` gives it back.
 */
export interface ImagePreprocessing extends Preprocessing {
  /** [C, H, W] the network takes: C = 1 for 'gray', 3 for 'rgb'. */
  inputShape: [number, number, number];
  /** 'per-image': zero mean and unit standard deviation over all of an image's values; 'none': values in [0, 1]. */
  normalize: 'per-image' | 'none';
  /** 'gray': luma 0.299 R + 0.587 G + 0.114 B of the 8-bit sRGB values (Rec. 601, as PIL and OpenCV). */
  color: ColorMode;
  /** The part of the source image the network sees; null for the whole image. */
  crop: CropBox | null;
  /** [H, W] at which training images are stored for random crops (at least the network size); null: no margin. */
  storedSize: [number, number] | null;
}

/** What a caller may give: any subset, or a complete ImagePreprocessing (e.g. a model's). */
export interface PreprocessingOptions {
  inputShape?: [number, number, number];
  /** Network height and width: one number or [H, W]. Default 64. */
  size?: number | [number, number];
  color?: ColorMode;
  crop?: CropBox | null;
  normalize?: 'per-image' | 'none';
  storedSize?: number | [number, number] | null;
}

const MAX_SIDE = 4096;

function freezeDeep<T>(value: T): Readonly<T> {
  for (const v of Object.values(value as object)) if (v !== null && typeof v === 'object') Object.freeze(v);
  return Object.freeze(value);
}

/** The neutral default: the whole image, grey, 64 x 64, normalised per image, no stored margin. */
export const DEFAULT_PREPROCESSING: Readonly<ImagePreprocessing> = freezeDeep({
  inputShape: [1, 64, 64],
  normalize: 'per-image',
  color: 'gray',
  crop: null,
  storedSize: null,
});

/**
 * LFW deep-funneled (250 x 250) as in DESIGN.md's reference run: grey, the box (65,65)-(185,185)
 * resized to 64 x 64, stored at 72 x 72 for random 64 x 64 crops, normalised per image.
 */
export const LFW_PREPROCESSING: Readonly<ImagePreprocessing> = freezeDeep({
  inputShape: [1, 64, 64],
  normalize: 'per-image',
  color: 'gray',
  crop: [65, 65, 185, 185],
  storedSize: [72, 72],
});

function sideInteger(value: unknown, name: string, min = 1): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > MAX_SIDE)
    throw new DclError('E_ARG', `Expected an integer from ${min} to ${MAX_SIDE} for ${name} but received ${describe(value)}`);
  return value;
}

function sizePair(value: unknown, name: string): [number, number] {
  if (Array.isArray(value)) {
    if (value.length !== 2) throw new DclError('E_ARG', `Expected an integer or an [H, W] pair for ${name} but received ${describe(value)}`);
    return [sideInteger(value[0], `${name}[0]`), sideInteger(value[1], `${name}[1]`)];
  }
  const v = sideInteger(value, name);
  return [v, v];
}

/** Validates a preprocessing description and fills in the defaults (DEFAULT_PREPROCESSING). */
export function resolvePreprocessing(value?: PreprocessingOptions | Readonly<ImagePreprocessing>, name = 'preprocessing'): ImagePreprocessing {
  const o = plainObject(value, name);
  knownKeys(o, ['inputShape', 'size', 'color', 'crop', 'normalize', 'storedSize'], name);

  let color = o.color as ColorMode | undefined;
  if (color !== undefined && color !== 'gray' && color !== 'rgb')
    throw new DclError('E_ARG', `Expected 'gray' or 'rgb' for ${name}.color but received ${describe(o.color)}`);
  let size = o.size === undefined ? undefined : sizePair(o.size, `${name}.size`);
  if (o.inputShape !== undefined) {
    // A model's metadata gives inputShape; when size or color are given too they must agree.
    const s = o.inputShape;
    if (!Array.isArray(s) || s.length !== 3 || (s[0] !== 1 && s[0] !== 3))
      throw new DclError('E_SHAPE', `Expected [C, H, W] with C = 1 or 3 for ${name}.inputShape but received ${describe(s)}`);
    const hw: [number, number] = [sideInteger(s[1], `${name}.inputShape[1]`), sideInteger(s[2], `${name}.inputShape[2]`)];
    const c = s[0] === 1 ? 'gray' : 'rgb';
    if (color !== undefined && color !== c)
      throw new DclError('E_ARG', `Expected ${name}.color to agree with ${name}.inputShape [${s.join(', ')}] but received ${describe(color)}`);
    if (size !== undefined && (size[0] !== hw[0] || size[1] !== hw[1]))
      throw new DclError('E_ARG', `Expected ${name}.size to agree with ${name}.inputShape [${s.join(', ')}] but received ${describe(o.size)}`);
    color = c;
    size = hw;
  }
  color ??= DEFAULT_PREPROCESSING.color;
  size ??= [DEFAULT_PREPROCESSING.inputShape[1], DEFAULT_PREPROCESSING.inputShape[2]];

  const normalize = (o.normalize ?? DEFAULT_PREPROCESSING.normalize) as 'per-image' | 'none';
  if (normalize !== 'per-image' && normalize !== 'none')
    throw new DclError('E_ARG', `Expected 'per-image' or 'none' for ${name}.normalize but received ${describe(o.normalize)}`);

  let crop: CropBox | null = null;
  if (o.crop !== undefined && o.crop !== null) {
    const b = o.crop;
    const ok =
      Array.isArray(b) &&
      b.length === 4 &&
      b.every((v) => typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= 1e6) &&
      b[2] > b[0] &&
      b[3] > b[1];
    if (!ok)
      throw new DclError(
        'E_ARG',
        `Expected [left, top, right, bottom] non-negative integers with right > left and bottom > top for ${name}.crop but received ${describe(b)}`,
      );
    crop = [b[0], b[1], b[2], b[3]];
  }

  let storedSize: [number, number] | null = null;
  if (o.storedSize !== undefined && o.storedSize !== null) {
    storedSize = sizePair(o.storedSize, `${name}.storedSize`);
    if (storedSize[0] < size[0] || storedSize[1] < size[1])
      throw new DclError(
        'E_ARG',
        `Expected a stored size of at least the network size ${size[0]} x ${size[1]} for ${name}.storedSize but received ${describe(o.storedSize)}`,
      );
  }
  return { inputShape: [color === 'gray' ? 1 : 3, size[0], size[1]], normalize, color, crop, storedSize };
}

/** [C, H, W] of the images loadImages gives for `size` 'network' or 'stored'. */
export function imageShape(preprocessing: ImagePreprocessing, size: 'network' | 'stored' = 'network'): [number, number, number] {
  const [c, h, w] = preprocessing.inputShape;
  if (size === 'stored' && preprocessing.storedSize) return [c, preprocessing.storedSize[0], preprocessing.storedSize[1]];
  return [c, h, w];
}

// ---------------------------------------------------------------------------------------------
// Decoding

let sharpPromise: Promise<SharpModule> | undefined;

/** sharp is loaded on first use, so the rest of the package works where its binary is missing. */
async function loadSharp(): Promise<SharpModule> {
  sharpPromise ??= import('sharp').then(
    (m) => ((m as unknown as { default?: SharpModule }).default ?? m) as SharpModule,
    (error) => {
      sharpPromise = undefined;
      throw new DclError('E_LOAD', `Could not load sharp, which decodes images: ${(error as Error)?.message ?? error}`, { cause: error });
    },
  );
  return sharpPromise;
}

type Source = string | Uint8Array;

function sourceName(source: Source, index: number): string {
  return typeof source === 'string' ? source : `buffer #${index}`;
}

type Sniffed = 'jpeg' | 'png' | 'webp' | 'tiff' | 'pgm-binary' | 'pgm-ascii' | null;

/** The format from the first bytes, so that a non-image gets a clear E_FORMAT before any decoder runs. */
function sniff(b: Uint8Array): Sniffed {
  if (b.length >= 3 && b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff) return 'jpeg';
  if (b.length >= 8 && b[0] === 0x89 && b[1] === 0x50 && b[2] === 0x4e && b[3] === 0x47 && b[4] === 0x0d && b[5] === 0x0a && b[6] === 0x1a && b[7] === 0x0a)
    return 'png';
  if (b.length >= 12 && ascii(b, 0, 4) === 'RIFF' && ascii(b, 8, 12) === 'WEBP') return 'webp';
  if (b.length >= 4 && ((b[0] === 0x49 && b[1] === 0x49 && b[2] === 0x2a && b[3] === 0) || (b[0] === 0x4d && b[1] === 0x4d && b[2] === 0 && b[3] === 0x2a)))
    return 'tiff';
  if (b.length >= 3 && b[0] === 0x50 && (b[1] === 0x35 || b[1] === 0x32) && isSpace(b[2])) return b[1] === 0x35 ? 'pgm-binary' : 'pgm-ascii';
  return null;
}

function ascii(b: Uint8Array, from: number, to: number): string {
  return String.fromCharCode(...b.subarray(from, to));
}

function isSpace(c: number): boolean {
  return c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d || c === 0x0b || c === 0x0c;
}

/** A decoded PGM: one 8-bit grey channel (16-bit samples scaled to 0..255, rounded). */
export interface GrayImage {
  width: number;
  height: number;
  data: Uint8Array;
  /** The file's maxval (255 for the usual 8-bit files). */
  maxval: number;
}

const MAX_PIXELS = 1 << 28;

/**
 * Reads a PGM (netpbm grey map): binary P5 (1 byte per sample for maxval < 256, else 2 bytes,
 * big-endian) or plain P2 (decimal samples). Header comments (# to the end of the line) are
 * allowed. Samples are scaled to 8 bits by round(v * 255 / maxval), the depth the rest of the
 * pipeline works in. Throws DclError E_FORMAT naming `name` for anything malformed or truncated.
 */
export function decodePgm(bytes: Uint8Array, name = 'PGM data'): GrayImage {
  const bad = (what: string): never => {
    throw new DclError('E_FORMAT', `${name} is not a readable PGM image: ${what}`);
  };
  const kind = sniff(bytes);
  if (kind !== 'pgm-binary' && kind !== 'pgm-ascii') bad("it does not start with 'P5' or 'P2'");
  let pos = 2;
  const token = (what: string): number => {
    for (;;) {
      while (pos < bytes.length && isSpace(bytes[pos])) pos++;
      if (pos < bytes.length && bytes[pos] === 0x23) {
        while (pos < bytes.length && bytes[pos] !== 0x0a && bytes[pos] !== 0x0d) pos++;
        continue;
      }
      break;
    }
    const start = pos;
    while (pos < bytes.length && bytes[pos] >= 0x30 && bytes[pos] <= 0x39) pos++;
    if (pos === start || (pos < bytes.length && !isSpace(bytes[pos]) && bytes[pos] !== 0x23))
      bad(pos >= bytes.length && pos === start ? `it ends before the ${what}` : `the ${what} is not a decimal number`);
    if (pos - start > 9) bad(`the ${what} is too large`);
    return Number(ascii(bytes, start, pos));
  };
  const width = token('width');
  const height = token('height');
  const maxval = token('maxval');
  if (width < 1 || height < 1) bad(`its size ${width} x ${height} is empty`);
  if (width * height > MAX_PIXELS) bad(`its size ${width} x ${height} is larger than ${MAX_PIXELS} pixels`);
  if (maxval < 1 || maxval > 65535) bad(`its maxval ${maxval} is not from 1 to 65535`);
  const count = width * height;
  const out = new Uint8Array(count);
  const scale = 255 / maxval;
  const put = (i: number, v: number) => {
    if (v > maxval) bad(`sample ${i} is ${v}, above the maxval ${maxval}`);
    out[i] = maxval === 255 ? v : Math.round(v * scale);
  };
  if (kind === 'pgm-binary') {
    // Exactly one whitespace byte separates the maxval from the samples (which may look like whitespace).
    pos++;
    const wide = maxval > 255;
    const need = count * (wide ? 2 : 1);
    if (bytes.length - pos < need) bad(`it is truncated: ${need} bytes of samples expected, ${Math.max(0, bytes.length - pos)} present`);
    if (wide) for (let i = 0; i < count; i++) put(i, (bytes[pos + 2 * i] << 8) | bytes[pos + 2 * i + 1]);
    else for (let i = 0; i < count; i++) put(i, bytes[pos + i]);
  } else {
    for (let i = 0; i < count; i++) put(i, token(`sample ${i}`));
  }
  return { width, height, data: out, maxval };
}

/** One decoded image, 8-bit sRGB, interleaved (R G B R G B ...), alpha dropped, EXIF orientation applied. */
export interface DecodedImage {
  width: number;
  height: number;
  channels: 3;
  data: Uint8Array;
}

/** File bytes, or DclError E_IO (missing, unreadable) / E_FORMAT (empty) naming the file. */
async function readSource(source: Source, name: string): Promise<Uint8Array> {
  let bytes: Uint8Array;
  if (typeof source === 'string') {
    try {
      bytes = await fs.promises.readFile(source);
    } catch (error) {
      const e = error as NodeJS.ErrnoException;
      throw new DclError('E_IO', `Could not read image ${name}: ${e?.code ? e.code + ' ' : ''}${e?.message ?? String(error)}`, { cause: error });
    }
  } else bytes = source;
  if (bytes.length === 0) throw new DclError('E_FORMAT', `${name} is not an image: it is empty`);
  return bytes;
}

interface Prepared {
  make: (sharp: SharpModule) => import('sharp').Sharp;
  format: string;
  width: number;
  height: number;
}

/** Opens the bytes for sharp: encoded formats directly, PGM through our reader as raw grey. */
async function prepare(sharp: SharpModule, bytes: Uint8Array, name: string): Promise<Prepared> {
  const kind = sniff(bytes);
  if (kind === null) throw new DclError('E_FORMAT', `${name} is not an image sharp or dcl-native reads (JPEG, PNG, WebP, TIFF or PGM): unknown first bytes`);
  if (kind === 'pgm-binary' || kind === 'pgm-ascii') {
    const g = decodePgm(bytes, name);
    return { make: (s) => s(g.data, { raw: { width: g.width, height: g.height, channels: 1 } }), format: 'pgm', width: g.width, height: g.height };
  }
  try {
    const meta = await sharp(bytes).metadata();
    // autoOrient's size is the size after EXIF rotation (what the crop box refers to).
    const width = meta.autoOrient?.width ?? meta.width;
    const height = meta.autoOrient?.height ?? meta.height;
    if (!width || !height) throw new Error('no image size in the header');
    return { make: (s) => s(bytes), format: kind, width, height };
  } catch (error) {
    throw decodeError(name, kind, error);
  }
}

function decodeError(name: string, format: string, error: unknown): DclError {
  if (error instanceof DclError) return error;
  return new DclError('E_FORMAT', `${name} could not be decoded as ${format.toUpperCase()}: ${(error as Error)?.message ?? error}`, { cause: error });
}

/** The raw 8-bit output of a sharp pipeline, as 1 or 3 channels. */
async function rawOf(pipeline: import('sharp').Sharp, name: string, format: string) {
  let result;
  try {
    result = await pipeline.raw({ depth: 'uchar' }).toBuffer({ resolveWithObject: true });
  } catch (error) {
    throw decodeError(name, format, error);
  }
  const { data, info } = result;
  if (info.channels !== 1 && info.channels !== 3)
    throw new DclError('E_FORMAT', `${name} decoded to ${info.channels} channels; expected grey or RGB`);
  return { data: new Uint8Array(data.buffer, data.byteOffset, data.length), width: info.width, height: info.height, channels: info.channels as 1 | 3 };
}

/** Decodes a file or buffer to 8-bit RGB at full size (no preprocessing). */
export async function decodeImage(source: string | Uint8Array): Promise<DecodedImage> {
  checkSource(source, 'source');
  const name = sourceName(source, 0);
  const sharp = await loadSharp();
  const bytes = await readSource(source, name);
  const p = await prepare(sharp, bytes, name);
  const raw = await rawOf(p.make(sharp).autoOrient().removeAlpha(), name, p.format);
  return { width: raw.width, height: raw.height, channels: 3, data: raw.channels === 3 ? raw.data : toRgb(raw.data) };
}

function toRgb(gray: Uint8Array): Uint8Array {
  const out = new Uint8Array(gray.length * 3);
  for (let i = 0; i < gray.length; i++) out[3 * i] = out[3 * i + 1] = out[3 * i + 2] = gray[i];
  return out;
}

function checkSource(source: unknown, name: string): asserts source is Source {
  if (typeof source === 'string' ? source.length === 0 : !(source instanceof Uint8Array))
    throw new DclError('E_ARG', `Expected a file path or a Buffer for ${name} but received ${describe(source)}`);
}

/**
 * The source rectangle for an output of outH x outW whose central part (the network size) is the
 * crop box. Margins are rounded to whole source pixels, so the stored image's scale may differ from
 * the network image's by a fraction of a pixel over the margin.
 */
function sourceRegion(pre: ImagePreprocessing, width: number, height: number, size: 'network' | 'stored', name: string) {
  const [left, top, right, bottom] = pre.crop ?? [0, 0, width, height];
  if (right > width || bottom > height)
    throw new DclError('E_FORMAT', `${name} is ${width} x ${height} pixels: the crop box [${left}, ${top}, ${right}, ${bottom}] does not fit in it`);
  const [, h, w] = pre.inputShape;
  const [oh, ow] = size === 'stored' && pre.storedSize ? pre.storedSize : [h, w];
  const sx = (right - left) / w;
  const sy = (bottom - top) / h;
  const ml = Math.round(Math.floor((ow - w) / 2) * sx);
  const mr = Math.round((ow - w - Math.floor((ow - w) / 2)) * sx);
  const mt = Math.round(Math.floor((oh - h) / 2) * sy);
  const mb = Math.round((oh - h - Math.floor((oh - h) / 2)) * sy);
  return { left: left - ml, top: top - mt, width: right - left + ml + mr, height: bottom - top + mt + mb, outW: ow, outH: oh };
}

/** Decodes one source and applies crop and resize: 8-bit pixels, 1 or 3 channels, interleaved. */
async function decodeAndResize(sharp: SharpModule, source: Source, name: string, pre: ImagePreprocessing, size: 'network' | 'stored') {
  const bytes = await readSource(source, name);
  const p = await prepare(sharp, bytes, name);
  const r = sourceRegion(pre, p.width, p.height, size, name);
  const pad = {
    left: Math.max(0, -r.left),
    top: Math.max(0, -r.top),
    right: Math.max(0, r.left + r.width - p.width),
    bottom: Math.max(0, r.top + r.height - p.height),
  };
  let base = p.make(sharp).autoOrient().removeAlpha();
  if (pad.left || pad.top || pad.right || pad.bottom) {
    // sharp extends after it resizes, so the padded image is made in a first pass and cropped from.
    const padded = await rawOf(base.extend({ ...pad, extendWith: 'copy' }), name, p.format);
    base = sharp(padded.data, { raw: { width: padded.width, height: padded.height, channels: padded.channels } });
  }
  let pipeline = base.extract({ left: r.left + pad.left, top: r.top + pad.top, width: r.width, height: r.height });
  if (r.width !== r.outW || r.height !== r.outH) pipeline = pipeline.resize(r.outW, r.outH, { fit: 'fill', kernel: 'lanczos3' });
  const raw = await rawOf(pipeline, name, p.format);
  if (raw.width !== r.outW || raw.height !== r.outH)
    throw new DclError('E_FORMAT', `${name} decoded to ${raw.width} x ${raw.height} pixels; expected ${r.outW} x ${r.outH}`);
  return raw;
}

/** 8-bit interleaved pixels -> CHW floats in [0, 1] (grey by Rec. 601 luma), then normalised. */
function toFloats(raw: { data: Uint8Array; channels: 1 | 3 }, pre: ImagePreprocessing, out: Float32Array): void {
  const { data, channels } = raw;
  const plane = out.length / pre.inputShape[0];
  if (pre.color === 'gray') {
    if (channels === 1) for (let i = 0; i < plane; i++) out[i] = data[i] / 255;
    else for (let i = 0; i < plane; i++) out[i] = (0.299 * data[3 * i] + 0.587 * data[3 * i + 1] + 0.114 * data[3 * i + 2]) / 255;
  } else {
    for (let c = 0; c < 3; c++) {
      const from = channels === 1 ? 0 : c;
      for (let i = 0; i < plane; i++) out[c * plane + i] = data[channels * i + from] / 255;
    }
  }
  if (pre.normalize === 'per-image') normalizeInPlace(out);
}

/**
 * Zero mean and unit (population) standard deviation, summed in float64. A flat image (std below
 * 1e-6, i.e. no usable contrast) becomes all zeros rather than dividing by nearly nothing.
 */
export function normalizeInPlace(values: Float32Array): Float32Array {
  const n = values.length;
  if (n === 0) return values;
  let sum = 0;
  for (let i = 0; i < n; i++) sum += values[i];
  const mean = sum / n;
  let sq = 0;
  for (let i = 0; i < n; i++) sq += (values[i] - mean) ** 2;
  const std = Math.sqrt(sq / n);
  const inv = std > 1e-6 ? 1 / std : 0;
  for (let i = 0; i < n; i++) values[i] = (values[i] - mean) * inv;
  return values;
}

// ---------------------------------------------------------------------------------------------
// Loading many images

/** Images ready for the network (or stored with a margin for augmentation): N x C x H x W. */
export interface ImageBatch {
  images: Float32Array;
  shape: [number, number, number];
  count: number;
}

export interface LoadProgress {
  /** Images finished (decoded or skipped). */
  done: number;
  total: number;
  /** Of those, skipped as unreadable (data sets only). */
  skipped: number;
}

export interface LoadImagesOptions {
  /** 'network' (default): the crop box at the network size; 'stored': with the stored margin, for augmentBatch. */
  size?: 'network' | 'stored';
  /** Images decoded at the same time (default: min(4, cores), as libuv's thread pool has 4 threads by default). */
  concurrency?: number;
  onProgress?: (progress: LoadProgress) => void;
  /** Stops at the next image; the promise rejects with DclError E_ABORTED. */
  signal?: AbortSignal;
}

const LOAD_KEYS = ['size', 'concurrency', 'onProgress', 'signal'] as const;

interface LoadSettings {
  size: 'network' | 'stored';
  concurrency: number;
  onProgress?: (progress: LoadProgress) => void;
  signal?: AbortSignal;
}

function checkLoadOptions(o: Record<string, unknown>, name: string): LoadSettings {
  const size = (o.size ?? 'network') as 'network' | 'stored';
  if (size !== 'network' && size !== 'stored') throw new DclError('E_ARG', `Expected 'network' or 'stored' for ${name}.size but received ${describe(o.size)}`);
  const cores = typeof os.availableParallelism === 'function' ? os.availableParallelism() : os.cpus().length;
  const concurrency = o.concurrency ?? Math.max(1, Math.min(4, cores));
  if (typeof concurrency !== 'number' || !Number.isInteger(concurrency) || concurrency < 1 || concurrency > 256)
    throw new DclError('E_ARG', `Expected an integer from 1 to 256 for ${name}.concurrency but received ${describe(o.concurrency)}`);
  for (const key of ['onProgress', 'onWarning'] as const)
    if (o[key] !== undefined && typeof o[key] !== 'function') throw new DclError('E_ARG', `Expected a function for ${name}.${key} but received ${describe(o[key])}`);
  if (o.signal !== undefined && !(o.signal instanceof AbortSignal))
    throw new DclError('E_ARG', `Expected an AbortSignal for ${name}.signal but received ${describe(o.signal)}`);
  return { size, concurrency, onProgress: o.onProgress as LoadSettings['onProgress'], signal: o.signal as AbortSignal | undefined };
}

function aborted(what: string): DclError {
  return new DclError('E_ABORTED', `${what} was aborted`);
}

/**
 * Runs task(i) for i in [0, count) with at most `concurrency` running. The first failure stops new
 * tasks; it is thrown once the running ones have settled (so none rejects unobserved).
 */
async function runPool(count: number, concurrency: number, signal: AbortSignal | undefined, what: string, task: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  let failure: unknown;
  let failed = false;
  const lane = async () => {
    while (!failed && next < count) {
      if (signal?.aborted) {
        failed = true;
        failure ??= aborted(what);
        return;
      }
      const i = next++;
      try {
        await task(i);
      } catch (error) {
        if (!failed) failure = error;
        failed = true;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, lane));
  if (failed) throw failure;
}

/**
 * Decodes and preprocesses images (paths or Buffers) into one N x C x H x W Float32Array, several
 * at a time on libuv's thread pool. Any file that cannot be used rejects the whole call with a
 * DclError naming it: E_IO when it is missing or unreadable, E_FORMAT when it is not an image (or
 * is empty, truncated, or smaller than the crop box).
 */
export async function loadImages(
  sources: readonly (string | Uint8Array)[],
  preprocessing?: PreprocessingOptions | Readonly<ImagePreprocessing>,
  options?: LoadImagesOptions,
): Promise<ImageBatch> {
  if (!Array.isArray(sources)) throw new DclError('E_ARG', `Expected an array of file paths or Buffers for sources but received ${describe(sources)}`);
  for (let i = 0; i < sources.length; i++) checkSource(sources[i], `sources[${i}]`);
  const pre = resolvePreprocessing(preprocessing);
  const o = plainObject(options, 'options');
  knownKeys(o, LOAD_KEYS, 'options');
  const settings = checkLoadOptions(o, 'options');
  const result = await decodeMany(sources, pre, settings, false);
  return { images: result.images, shape: result.shape, count: result.count };
}

interface DecodeManyResult extends ImageBatch {
  kept: Int32Array;
  skipped: SkippedImage[];
}

/** A source a data-set load left out, and why. */
export interface SkippedImage {
  file: string;
  code: DclErrorCode;
  reason: string;
}

async function decodeMany(
  sources: readonly Source[],
  pre: ImagePreprocessing,
  settings: LoadSettings,
  skipBroken: boolean,
  onSkip?: (s: SkippedImage) => void,
): Promise<DecodeManyResult> {
  const shape = imageShape(pre, settings.size);
  const per = shape[0] * shape[1] * shape[2];
  const total = sources.length;
  if (total * per > 2 ** 31 - 1)
    throw new DclError('E_ARG', `Expected at most ${Math.floor((2 ** 31 - 1) / per)} images of shape [${shape.join(', ')}] in one batch but received ${total}`);
  if (settings.signal?.aborted) throw aborted('Loading images');
  const sharp = await loadSharp();
  const images = new Float32Array(total * per);
  const ok = new Uint8Array(total);
  const skipped: SkippedImage[] = [];
  const skippedAt: number[] = [];
  let done = 0;
  await runPool(total, settings.concurrency, settings.signal, 'Loading images', async (i) => {
    const name = sourceName(sources[i], i);
    try {
      const raw = await decodeAndResize(sharp, sources[i], name, pre, settings.size);
      toFloats(raw, pre, images.subarray(i * per, (i + 1) * per));
      ok[i] = 1;
    } catch (error) {
      // In a data set a bad file is one lost image, not a failed run; E_LOAD, E_ABORTED and
      // programming errors still stop it.
      if (!skipBroken || !(error instanceof DclError) || (error.code !== 'E_IO' && error.code !== 'E_FORMAT')) throw error;
      const s: SkippedImage = { file: name, code: error.code, reason: error.message };
      skipped.push(s);
      skippedAt.push(i);
      onSkip?.(s);
    }
    done++;
    settings.onProgress?.({ done, total, skipped: skipped.length });
  });
  if (settings.signal?.aborted) throw aborted('Loading images');
  // Keep the source order: compact the decoded images over the holes left by skipped ones.
  const kept = new Int32Array(total - skipped.length);
  let k = 0;
  for (let i = 0; i < total; i++) {
    if (!ok[i]) continue;
    if (k !== i) images.copyWithin(k * per, i * per, (i + 1) * per);
    kept[k++] = i;
  }
  // Skips are reported in completion order; list them in source order.
  const order = skippedAt.map((_, j) => j).sort((a, b) => skippedAt[a] - skippedAt[b]);
  return { images: k === total ? images : images.slice(0, k * per), shape, count: k, kept, skipped: order.map((j) => skipped[j]) };
}

// ---------------------------------------------------------------------------------------------
// Augmentation

export interface AugmentOptions {
  /** Seed of a new Rng (default 1), or `rng` to continue a generator (the training loop's). */
  seed?: number;
  rng?: Rng;
  /** Mirror each image left-right with probability 1/2 (default true). */
  flip?: boolean;
  /** Largest shift in network pixels, each way (default: the stored margin, e.g. 4 for 72 -> 64). */
  shift?: number;
  /** Largest relative change of scale, e.g. 0.05 for [0.95, 1.05] (default 0.05; 0 for none). */
  scale?: number;
  /** Which stored images, in order (default all). */
  indices?: ArrayLike<number>;
}

/**
 * Random network-size views of stored images (loaded with size 'stored'): a window of the network
 * size times s (s uniform in [1 - scale, 1 + scale], limited to what the stored image holds),
 * centred and moved by whole-pixel shifts, sampled bilinearly, mirrored at random, then normalised
 * again as the preprocessing says. With s = 1 the window is an exact copy of stored pixels.
 * The same seed (or generator state) and input always give the same output.
 */
export function augmentBatch(stored: ImageBatch, preprocessing: PreprocessingOptions | Readonly<ImagePreprocessing>, options?: AugmentOptions): ImageBatch {
  const pre = resolvePreprocessing(preprocessing);
  const b = plainObject(stored, 'stored');
  if (!(b.images instanceof Float32Array)) throw new DclError('E_ARG', `Expected a Float32Array for stored.images but received ${describe(b.images)}`);
  const [c, sh, sw] = imageShape(pre, 'stored');
  const [, h, w] = pre.inputShape;
  const shape = b.shape as unknown[];
  if (!Array.isArray(shape) || shape.length !== 3 || shape[0] !== c || shape[1] !== sh || shape[2] !== sw)
    throw new DclError('E_SHAPE', `Expected the stored shape [${c}, ${sh}, ${sw}] of this preprocessing for stored.shape but received ${describe(shape)}`);
  const per = c * sh * sw;
  const count = b.count;
  if (typeof count !== 'number' || !Number.isInteger(count) || count < 0 || b.images.length !== count * per)
    throw new DclError('E_SHAPE', `Expected stored.count images of ${per} values (stored.images of length ${b.images.length}) but received count ${describe(count)}`);

  const o = plainObject(options, 'options');
  knownKeys(o, ['seed', 'rng', 'flip', 'shift', 'scale', 'indices'], 'options');
  if (o.rng !== undefined && !(o.rng instanceof Rng)) throw new DclError('E_ARG', `Expected an Rng for options.rng but received ${describe(o.rng)}`);
  if (o.rng !== undefined && o.seed !== undefined) throw new DclError('E_ARG', 'Expected either options.seed or options.rng but received both');
  const rng = (o.rng as Rng | undefined) ?? new Rng((o.seed as number | undefined) ?? 1);
  if (o.flip !== undefined && typeof o.flip !== 'boolean') throw new DclError('E_ARG', `Expected a boolean for options.flip but received ${describe(o.flip)}`);
  const flip = (o.flip as boolean | undefined) ?? true;
  const margin = Math.min(Math.floor((sh - h) / 2), Math.floor((sw - w) / 2));
  const shift = o.shift ?? margin;
  if (typeof shift !== 'number' || !Number.isInteger(shift) || shift < 0 || shift > MAX_SIDE)
    throw new DclError('E_ARG', `Expected an integer from 0 to ${MAX_SIDE} for options.shift but received ${describe(o.shift)}`);
  const scale = o.scale ?? 0.05;
  if (typeof scale !== 'number' || !Number.isFinite(scale) || scale < 0 || scale > 0.5)
    throw new DclError('E_ARG', `Expected a number from 0 to 0.5 for options.scale but received ${describe(o.scale)}`);
  let indices: ArrayLike<number>;
  if (o.indices === undefined) indices = { length: count } as ArrayLike<number>;
  else {
    const idx = o.indices as ArrayLike<number>;
    if (idx === null || typeof idx !== 'object' || typeof idx.length !== 'number')
      throw new DclError('E_ARG', `Expected an array of image indices for options.indices but received ${describe(o.indices)}`);
    for (let i = 0; i < idx.length; i++)
      if (!Number.isInteger(idx[i]) || idx[i] < 0 || idx[i] >= count)
        throw new DclError('E_ARG', `Expected image indices from 0 to ${count - 1} for options.indices but received ${describe(idx[i])} at ${i}`);
    indices = idx;
  }

  const n = indices.length;
  const plane = h * w;
  const out = new Float32Array(n * c * plane);
  // The largest scale whose window still fits in the stored image.
  const maxS = Math.min(sh / h, sw / w);
  for (let k = 0; k < n; k++) {
    const src = o.indices === undefined ? k : indices[k];
    // Draws in a fixed order per image, so a seed fixes every image's view.
    const mirror = flip && rng.bernoulli(0.5);
    const s = scale > 0 ? Math.min(maxS, rng.uniform(1 - scale, 1 + scale)) : 1;
    const dy = shift > 0 ? rng.int(-shift, shift) : 0;
    const dx = shift > 0 ? rng.int(-shift, shift) : 0;
    // Window corner in stored pixels; shifts are limited to keep the window inside.
    const freeY = (sh - h * s) / 2;
    const freeX = (sw - w * s) / 2;
    const top = freeY + Math.max(-freeY, Math.min(freeY, dy));
    const left = freeX + Math.max(-freeX, Math.min(freeX, dx));
    const image = out.subarray(k * c * plane, (k + 1) * c * plane);
    for (let ch = 0; ch < c; ch++) {
      const base = src * per + ch * sh * sw;
      for (let y = 0; y < h; y++) {
        // Pixel centres: output pixel y covers stored coordinate top + (y + 0.5) s - 0.5.
        const fy = Math.max(0, Math.min(sh - 1, top + (y + 0.5) * s - 0.5));
        const y0 = Math.floor(fy);
        const y1 = Math.min(sh - 1, y0 + 1);
        const ty = fy - y0;
        for (let x = 0; x < w; x++) {
          const fx = Math.max(0, Math.min(sw - 1, left + (x + 0.5) * s - 0.5));
          const x0 = Math.floor(fx);
          const x1 = Math.min(sw - 1, x0 + 1);
          const tx = fx - x0;
          const r0 = base + y0 * sw;
          const r1 = base + y1 * sw;
          const a = b.images[r0 + x0] + tx * (b.images[r0 + x1] - b.images[r0 + x0]);
          const d = b.images[r1 + x0] + tx * (b.images[r1 + x1] - b.images[r1 + x0]);
          image[ch * plane + y * w + (mirror ? w - 1 - x : x)] = ty === 0 ? a : a + ty * (d - a);
        }
      }
    }
    if (pre.normalize === 'per-image') normalizeInPlace(image);
  }
  return { images: out, shape: [c, h, w], count: n };
}

// ---------------------------------------------------------------------------------------------
// Data sets

/** A data set's file list: files[i] shows person names[labels[i]]. */
export interface DatasetList {
  files: string[];
  labels: Int32Array;
  names: string[];
}

/** The extensions a folder scan takes as images (content decides the format when decoding). */
const IMAGE_EXTENSIONS = new Set(['.jpg', '.jpeg', '.png', '.webp', '.tif', '.tiff', '.pgm']);

/** Code-unit order: the same on every machine and locale (localeCompare is not). */
function byCodeUnits(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function dirEntries(dir: string): fs.Dirent[] {
  try {
    return fs.readdirSync(dir, { withFileTypes: true });
  } catch (error) {
    const e = error as NodeJS.ErrnoException;
    throw new DclError('E_IO', `Could not read the folder ${dir}: ${e?.code ? e.code + ' ' : ''}${e?.message ?? error}`, { cause: error });
  }
}

/**
 * A folder with one sub-folder per person (the LFW layout): people sorted by name, each person's
 * images (by extension: .jpg .jpeg .png .webp .tif .tiff .pgm, any case) sorted by file name, label
 * = the person's index. Hidden entries and files directly in `dir` are ignored; a person without
 * images gets no label. Paths in `files` are absolute.
 */
export function scanFolderDataset(dir: string): DatasetList {
  if (typeof dir !== 'string' || dir.length === 0) throw new DclError('E_ARG', `Expected a folder path for dir but received ${describe(dir)}`);
  const root = path.resolve(dir);
  const people = dirEntries(root)
    .filter((e) => !e.name.startsWith('.') && (e.isDirectory() || (e.isSymbolicLink() && isDirectory(path.join(root, e.name)))))
    .map((e) => e.name)
    .sort(byCodeUnits);
  const files: string[] = [];
  const labels: number[] = [];
  const names: string[] = [];
  for (const person of people) {
    const folder = path.join(root, person);
    const images = dirEntries(folder)
      .filter((e) => !e.name.startsWith('.') && !e.isDirectory() && IMAGE_EXTENSIONS.has(path.extname(e.name).toLowerCase()))
      .map((e) => e.name)
      .sort(byCodeUnits);
    if (images.length === 0) continue;
    for (const f of images) {
      files.push(path.join(folder, f));
      labels.push(names.length);
    }
    names.push(person);
  }
  if (files.length === 0) throw new DclError('E_FORMAT', `${root} holds no images in per-person sub-folders (expected <dir>/<person>/<image>.jpg)`);
  return { files, labels: Int32Array.from(labels), names };
}

function isDirectory(p: string): boolean {
  try {
    return fs.statSync(p).isDirectory();
  } catch {
    return false;
  }
}

/**
 * A list file of `path<TAB>label` lines (UTF-8; blank lines and lines starting with # skipped; CRLF
 * accepted). Relative paths are resolved against the list file's folder. Labels are names: they are
 * numbered in sorted order (numerically when all are integers, so labels 0..K-1 keep their
 * values). A malformed line is DclError E_FORMAT naming the file and the line number.
 */
export function readListFile(file: string): DatasetList {
  if (typeof file !== 'string' || file.length === 0) throw new DclError('E_ARG', `Expected a file path for file but received ${describe(file)}`);
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (error) {
    const e = error as NodeJS.ErrnoException;
    throw new DclError('E_IO', `Could not read the list file ${file}: ${e?.code ? e.code + ' ' : ''}${e?.message ?? error}`, { cause: error });
  }
  const folder = path.dirname(path.resolve(file));
  const files: string[] = [];
  const raw: string[] = [];
  const lines = text.split('\n');
  for (let n = 0; n < lines.length; n++) {
    const line = lines[n].endsWith('\r') ? lines[n].slice(0, -1) : lines[n];
    if (line.trim() === '' || line.startsWith('#')) continue;
    const fields = line.split('\t');
    const p = fields[0]?.trim();
    const label = fields[1]?.trim();
    if (fields.length !== 2 || !p || !label)
      throw new DclError('E_FORMAT', `${file} line ${n + 1}: expected 'path<TAB>label' but found ${describe(line)}`);
    files.push(path.resolve(folder, p));
    raw.push(label);
  }
  if (files.length === 0) throw new DclError('E_FORMAT', `${file} lists no images (expected 'path<TAB>label' lines)`);
  const unique = [...new Set(raw)];
  const numeric = unique.every((l) => /^\d{1,15}$/.test(l));
  unique.sort(numeric ? (a, b) => Number(a) - Number(b) : byCodeUnits);
  const index = new Map(unique.map((l, i) => [l, i]));
  return { files, labels: Int32Array.from(raw, (l) => index.get(l)!), names: unique };
}

export interface LoadDatasetOptions extends LoadImagesOptions {
  /**
   * true (default): cache in defaultCacheDir(); a string: cache in that folder; false: no cache.
   * The cache holds one file per (file list with sizes and modification times, preprocessing,
   * size, libvips version).
   */
  cache?: boolean | string;
  /** Told about every skipped image and every cache problem (a corrupt file, a failed write). */
  onWarning?: (message: string) => void;
}

export interface LoadedDataset extends ImageBatch {
  /** Label of each loaded image (indexes names). */
  labels: Int32Array;
  names: string[];
  /** The file of each loaded image. */
  files: string[];
  /** Files left out, with the DclError code and message that explain why. */
  skipped: SkippedImage[];
  /** True when the images came from the cache. */
  fromCache: boolean;
  /** Images decoded in this call (0 on a cache hit). */
  decoded: number;
  /** The cache file used or written; null when caching was off or failed. */
  cacheFile: string | null;
}

/**
 * Where the data-set cache lives by default: $DCL_CACHE_DIR, else $XDG_CACHE_HOME/dcl-native, else
 * ~/.cache/dcl-native, else <os.tmpdir()>/dcl-native-cache.
 */
export function defaultCacheDir(): string {
  const env = process.env.DCL_CACHE_DIR;
  if (env) return path.resolve(env);
  const xdg = process.env.XDG_CACHE_HOME;
  if (xdg && path.isAbsolute(xdg)) return path.join(xdg, 'dcl-native');
  let home = '';
  try {
    home = os.homedir();
  } catch {
    // no home folder (some service accounts)
  }
  return home ? path.join(home, '.cache', 'dcl-native') : path.join(os.tmpdir(), 'dcl-native-cache');
}

function checkList(value: unknown): DatasetList {
  const d = plainObject(value, 'source');
  knownKeys(d, ['files', 'labels', 'names'], 'source');
  if (!Array.isArray(d.files) || !d.files.every((f) => typeof f === 'string' && f.length > 0))
    throw new DclError('E_ARG', `Expected an array of file paths for source.files but received ${describe(d.files)}`);
  const labels = d.labels;
  if (!(labels instanceof Int32Array) || labels.length !== d.files.length)
    throw new DclError('E_ARG', `Expected an Int32Array of ${d.files.length} labels for source.labels but received ${describe(labels)}`);
  let max = -1;
  for (const l of labels) {
    if (l < 0) throw new DclError('E_ARG', `Expected non-negative labels for source.labels but received ${l}`);
    max = Math.max(max, l);
  }
  let names = d.names as string[] | undefined;
  if (names === undefined) names = Array.from({ length: max + 1 }, (_, i) => String(i));
  if (!Array.isArray(names) || names.length <= max || !names.every((n) => typeof n === 'string'))
    throw new DclError('E_ARG', `Expected at least ${max + 1} names (strings) for source.names but received ${describe(names)}`);
  return { files: d.files.map((f) => path.resolve(f)), labels, names };
}

/**
 * Loads a data set: a folder (scanFolderDataset), a list file (readListFile) or a DatasetList
 * (names optional: String(label) then).
 * A file that cannot be used (missing, unreadable, not an image, too small for the crop box) is
 * skipped: listed in `skipped`, reported to onWarning, counted in onProgress; it never fails the
 * call. With the cache on, a second call with the same files and preprocessing reads one file.
 */
export async function loadDataset(
  source: string | DatasetList | { files: string[]; labels: Int32Array; names?: string[] },
  preprocessing?: PreprocessingOptions | Readonly<ImagePreprocessing>,
  options?: LoadDatasetOptions,
): Promise<LoadedDataset> {
  const pre = resolvePreprocessing(preprocessing);
  const o = plainObject(options, 'options');
  knownKeys(o, [...LOAD_KEYS, 'cache', 'onWarning'], 'options');
  const settings = checkLoadOptions(o, 'options');
  const cache = o.cache ?? true;
  if (typeof cache !== 'boolean' && (typeof cache !== 'string' || cache.length === 0))
    throw new DclError('E_ARG', `Expected a boolean or a folder path for options.cache but received ${describe(o.cache)}`);
  const warn = (message: string) => (o.onWarning as ((m: string) => void) | undefined)?.(message);

  let list: DatasetList;
  if (typeof source === 'string') {
    if (source.length === 0) throw new DclError('E_ARG', 'Expected a folder, a list file or a file list for source but received ""');
    let stat: fs.Stats;
    try {
      stat = fs.statSync(source);
    } catch (error) {
      const e = error as NodeJS.ErrnoException;
      throw new DclError('E_IO', `Could not read the data set ${source}: ${e?.code ? e.code + ' ' : ''}${e?.message ?? error}`, { cause: error });
    }
    list = stat.isDirectory() ? scanFolderDataset(source) : readListFile(source);
  } else list = checkList(source);

  const shape = imageShape(pre, settings.size);
  let cacheFile: string | null = null;
  let key = '';
  // The cache stores typed arrays as they lie in memory, little-endian; elsewhere it is off.
  if (cache !== false && os.endianness() === 'LE') {
    const sharp = await loadSharp();
    key = await cacheKey(list.files, pre, settings, sharp.versions.vips ?? 'unknown');
    const dir = typeof cache === 'string' ? path.resolve(cache) : defaultCacheDir();
    cacheFile = path.join(dir, `images-${key.slice(0, 40)}.dclcache`);
    const hit = await readCache(cacheFile, key, shape, list.files.length, warn);
    if (hit) {
      settings.onProgress?.({ done: list.files.length, total: list.files.length, skipped: hit.skipped.length });
      return assemble(list, hit, shape, true, 0, cacheFile);
    }
  }
  const result = await decodeMany(list.files, pre, settings, true, (s) => warn(`Skipped ${s.file}: ${s.reason}`));
  if (result.count === 0) warn(`No image of the ${list.files.length} in the data set could be loaded`);
  if (cacheFile !== null) {
    try {
      writeCache(cacheFile, key, shape, list.files.length, result);
    } catch (error) {
      warn(`Could not write the image cache ${cacheFile}: ${(error as Error).message}`);
      cacheFile = null;
    }
  }
  return assemble(list, result, shape, false, result.count, cacheFile);
}

function assemble(
  list: DatasetList,
  r: { images: Float32Array; count: number; kept: Int32Array; skipped: SkippedImage[] },
  shape: [number, number, number],
  fromCache: boolean,
  decoded: number,
  cacheFile: string | null,
): LoadedDataset {
  return {
    images: r.images,
    shape,
    count: r.count,
    labels: Int32Array.from(r.kept, (i) => list.labels[i]),
    names: list.names,
    files: Array.from(r.kept, (i) => list.files[i]),
    skipped: r.skipped,
    fromCache,
    decoded,
    cacheFile,
  };
}

// ---------------------------------------------------------------------------------------------
// The cache file
//
//   0  'DCLCACHE'            8 bytes
//   8  version               uint32 LE (CACHE_VERSION)
//  12  header length L       uint32 LE (a multiple of 4)
//  16  header                JSON, space-padded: { key, shape, count, sourceCount, skipped }
//  16+L kept                 int32 LE x count: the source index of each image
//       images               float32 LE x count x C x H x W
//  end-32 SHA-256            of every byte before it
//
// The key is the SHA-256 of the file list with each file's size and mtime, the preprocessing, the
// size mode and the libvips version: any change gives another key, hence another file.

const CACHE_MAGIC = 'DCLCACHE';
const CACHE_VERSION = 1;

async function cacheKey(files: readonly string[], pre: ImagePreprocessing, settings: LoadSettings, vips: string): Promise<string> {
  const stats: [string, number, number][] = new Array(files.length);
  await runPool(files.length, 16, settings.signal, 'Loading images', async (i) => {
    try {
      const s = await fs.promises.stat(files[i]);
      stats[i] = [files[i], s.size, s.mtimeMs];
    } catch {
      // A file missing now is skipped when decoding; the key still records that it was missing.
      stats[i] = [files[i], -1, -1];
    }
  });
  const description = JSON.stringify({
    format: 'dcl-native-images',
    version: CACHE_VERSION,
    vips,
    preprocessing: pre,
    size: settings.size,
    files: stats,
  });
  return sha256Hex([Buffer.from(description, 'utf8')]);
}

function writeCache(file: string, key: string, shape: [number, number, number], sourceCount: number, r: DecodeManyResult): void {
  let json = JSON.stringify({ key, shape, count: r.count, sourceCount, skipped: r.skipped });
  json += ' '.repeat((4 - (Buffer.byteLength(json) % 4)) % 4);
  const header = Buffer.from(json, 'utf8');
  const fixed = Buffer.alloc(16);
  fixed.write(CACHE_MAGIC, 0, 'latin1');
  fixed.writeUInt32LE(CACHE_VERSION, 8);
  fixed.writeUInt32LE(header.length, 12);
  const kept = new Uint8Array(r.kept.buffer, r.kept.byteOffset, r.kept.byteLength);
  const images = new Uint8Array(r.images.buffer, r.images.byteOffset, r.images.byteLength);
  const digest = Buffer.from(sha256Hex([fixed, header, kept, images]), 'hex');
  fs.mkdirSync(path.dirname(file), { recursive: true });
  writeFileAtomic(file, [fixed, header, kept, images, digest]);
}

/** The cached data set, or null when there is none or it cannot be used (then it is rebuilt). */
async function readCache(
  file: string,
  key: string,
  shape: [number, number, number],
  sourceCount: number,
  warn: (message: string) => void,
): Promise<{ images: Float32Array; count: number; kept: Int32Array; skipped: SkippedImage[] } | null> {
  let bytes: Buffer;
  try {
    bytes = await fs.promises.readFile(file);
  } catch (error) {
    if ((error as NodeJS.ErrnoException)?.code !== 'ENOENT') warn(`Could not read the image cache ${file} (${(error as Error).message}); rebuilding it`);
    return null;
  }
  const corrupt = (what: string) => {
    warn(`The image cache ${file} is unusable (${what}); rebuilding it`);
    return null;
  };
  if (bytes.length < 16 + 32 || bytes.toString('latin1', 0, 8) !== CACHE_MAGIC) return corrupt('not a dcl-native cache file');
  const version = bytes.readUInt32LE(8);
  if (version !== CACHE_VERSION) return corrupt(`version ${version}, this library writes ${CACHE_VERSION}`);
  const hlen = bytes.readUInt32LE(12);
  if (hlen % 4 !== 0 || 16 + hlen + 32 > bytes.length) return corrupt('truncated header');
  const body = bytes.subarray(0, bytes.length - 32);
  if (sha256Hex([body]) !== bytes.subarray(bytes.length - 32).toString('hex')) return corrupt('checksum mismatch');
  let h: { key?: unknown; shape?: unknown; count?: unknown; sourceCount?: unknown; skipped?: unknown };
  try {
    h = JSON.parse(bytes.toString('utf8', 16, 16 + hlen));
  } catch {
    return corrupt('header is not JSON');
  }
  const count = h.count;
  const per = shape[0] * shape[1] * shape[2];
  if (h.key !== key || JSON.stringify(h.shape) !== JSON.stringify(shape) || h.sourceCount !== sourceCount)
    return corrupt('it was written for other files or settings');
  if (typeof count !== 'number' || !Number.isInteger(count) || count < 0 || count > sourceCount) return corrupt('bad image count');
  const skippedOk = Array.isArray(h.skipped) && h.skipped.length === sourceCount - count &&
    h.skipped.every((x) => x !== null && typeof x === 'object' && typeof x.file === 'string' && typeof x.code === 'string' && typeof x.reason === 'string');
  if (!skippedOk) return corrupt('bad list of skipped files');
  if (bytes.length !== 16 + hlen + count * 4 + count * per * 4 + 32) return corrupt('wrong length');
  const start = bytes.byteOffset + 16 + hlen;
  // A fresh Buffer from readFile starts 4-aligned in its ArrayBuffer; copy only if it does not.
  const aligned = start % 4 === 0;
  const kept = aligned ? new Int32Array(bytes.buffer, start, count) : new Int32Array(bytes.buffer.slice(start, start + count * 4));
  const imgStart = start + count * 4;
  const images = aligned ? new Float32Array(bytes.buffer, imgStart, count * per) : new Float32Array(bytes.buffer.slice(imgStart, imgStart + count * per * 4));
  for (let i = 0; i < count; i++) if (kept[i] < 0 || kept[i] >= sourceCount || (i > 0 && kept[i] <= kept[i - 1])) return corrupt('bad image index');
  return { images, count, kept, skipped: h.skipped as SkippedImage[] };
}
