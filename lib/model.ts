// A trained code model: the network, its code layout, the pair-loss scalars and everything needed
// to reproduce training-time preprocessing. Saved as safetensors (weights readable by any tool)
// with the rest in the string metadata, a format version and a SHA-256 of the weight bytes.
import { DclError } from './errors.js';
import { inference, Var } from './autograd.js';
import { parseLayout, quantize } from './codes.js';
import type { CodeLayout } from './codes.js';
import { readFileChecked, sha256Hex, writeFileAtomic } from './files.js';
import { DclS } from './nn.js';
import type { DclSConfig, NamedArray } from './nn.js';
import { decodeSafetensors, encodeSafetensors } from './safetensors.js';
import { Tensor } from './tensor.js';
import { describe } from './validate.js';

export const MODEL_FORMAT = 'dcl-native-model';
/** Version 2 added 'dcl.encoding' (mirror averaging); version 1 files read as mirrorAverage false. */
export const MODEL_FORMAT_VERSION = 2;
export const LIBRARY_VERSION = '0.1.0';

export type TrainMethod = 'rounding' | 'dp' | 'std' | 'float';

/** How images were prepared for the network; reapplied by encode. */
export interface Preprocessing {
  /** Channels, height, width the network takes. */
  inputShape: [number, number, number];
  /** 'per-image': each image shifted to zero mean and scaled to unit std before the network. */
  normalize: 'per-image' | 'none';
  /** Free-form details of the image pipeline (crop box, resize, colour) for later releases. */
  [key: string]: unknown;
}

export interface ModelInfo {
  layout: CodeLayout;
  method: TrainMethod;
  alpha: number;
  beta: number;
  preprocessing: Preprocessing;
  /** Training summary: steps, final loss, seed, options... (JSON-safe). */
  training: Record<string, unknown>;
  /** How images become codes beyond the network itself (default: plain forward pass). */
  encoding?: ModelEncoding;
}

export interface ModelEncoding {
  /**
   * Average the network's outputs for each image and its left-right mirror before quantising
   * (test-time flip averaging: one code per face, twice the encoding work). Faces are roughly
   * symmetric and training sees mirrored views, so the average is a steadier estimate.
   */
  mirrorAverage: boolean;
}

export class Model {
  readonly network: DclS;
  readonly layout: CodeLayout;
  readonly method: TrainMethod;
  alpha: number;
  beta: number;
  readonly preprocessing: Preprocessing;
  readonly training: Record<string, unknown>;
  readonly encoding: Readonly<ModelEncoding>;

  constructor(network: DclS, info: ModelInfo) {
    if (!(network instanceof DclS)) throw new DclError('E_ARG', `Expected a DclS network for network but received ${describe(network)}`);
    if (network.config.codeDims !== info.layout.n)
      throw new DclError('E_ARG', `Expected a network with ${info.layout.n} outputs for layout ${info.layout.name} but received one with ${network.config.codeDims}`);
    this.network = network;
    this.layout = info.layout;
    this.method = info.method;
    this.alpha = info.alpha;
    this.beta = info.beta;
    this.preprocessing = info.preprocessing;
    this.training = info.training;
    const mirrorAverage = info.encoding?.mirrorAverage ?? false;
    if (typeof mirrorAverage !== 'boolean') throw new DclError('E_ARG', `Expected a boolean for encoding.mirrorAverage but received ${describe(mirrorAverage)}`);
    this.encoding = Object.freeze({ mirrorAverage });
  }

  get architecture(): DclSConfig {
    return this.network.config;
  }

  /**
   * f_model(x) in (0, 1): [N, n] for images [N, C, H, W] (already preprocessed), no gradients;
   * with encoding.mirrorAverage, the mean of f_model(x) and f_model(mirror(x)).
   */
  probabilities(images: Float32Array, count: number): Float32Array {
    const p = this.networkProbabilities(images, count);
    if (!this.encoding.mirrorAverage) return p;
    return averageInPlace(p, this.networkProbabilities(mirrorImages(images, count, this.architecture.inputShape), count));
  }

  /** f_model(x) alone, whatever encoding.mirrorAverage says. */
  networkProbabilities(images: Float32Array, count: number): Float32Array {
    const [c, h, w] = this.architecture.inputShape;
    return inference(() => this.network.forward(new Var(new Tensor(images, [count, c, h, w]))).data.slice());
  }

  /** Packed codes of preprocessed images (synchronous). */
  codesOf(images: Float32Array, count: number): Int32Array {
    return quantize(new Tensor(this.probabilities(images, count), [count, this.layout.n]), this.layout);
  }

  /** Writes the model to `path` atomically (temporary file, fsync, rename). */
  async save(path: string): Promise<void> {
    this.saveSync(path);
  }

  saveSync(path: string): void {
    if (typeof path !== 'string' || path.length === 0) throw new DclError('E_ARG', `Expected a file path for path but received ${describe(path)}`);
    const state = this.network.stateDict();
    const tensors = new Map<string, { dtype: 'F32'; shape: number[]; data: Float32Array }>();
    for (const [name, t] of Object.entries(state)) tensors.set(name, { dtype: 'F32', shape: t.shape, data: t.data });
    // The checksum covers the weight bytes; the metadata is covered by being parsed and checked.
    const { data } = encodeSafetensors(tensors, {});
    const metadata: Record<string, string> = {
      'dcl.format': MODEL_FORMAT,
      'dcl.format_version': String(MODEL_FORMAT_VERSION),
      'dcl.library_version': LIBRARY_VERSION,
      'dcl.architecture': JSON.stringify(this.architecture),
      'dcl.layout': this.layout.name,
      'dcl.method': this.method,
      'dcl.alpha': String(this.alpha),
      'dcl.beta': String(this.beta),
      'dcl.preprocessing': JSON.stringify(this.preprocessing),
      'dcl.training': JSON.stringify(this.training),
      'dcl.encoding': JSON.stringify(this.encoding),
      'dcl.sha256': sha256Hex([data]),
    };
    const encoded = encodeSafetensors(tensors, metadata);
    writeFileAtomic(path, [encoded.header, encoded.data]);
  }
}

/** Left-right mirror of `count` images [C, H, W] (a new array). */
export function mirrorImages(images: Float32Array, count: number, shape: readonly [number, number, number]): Float32Array {
  const [c, h, w] = shape;
  const out = new Float32Array(count * c * h * w);
  for (let row = 0; row < count * c * h; row++) {
    const at = row * w;
    for (let x = 0; x < w; x++) out[at + x] = images[at + w - 1 - x];
  }
  return out;
}

/** a = (a + b) / 2, elementwise; returns a. */
export function averageInPlace(a: Float32Array, b: Float32Array): Float32Array {
  for (let i = 0; i < a.length; i++) a[i] = (a[i] + b[i]) / 2;
  return a;
}

function formatError(file: string, what: string): never {
  throw new DclError('E_FORMAT', `${file} is not a usable dcl-native model: ${what}`);
}

function parseJson(file: string, key: string, text: string | undefined): unknown {
  if (text === undefined) formatError(file, `the metadata lacks '${key}'`);
  try {
    return JSON.parse(text);
  } catch {
    formatError(file, `the metadata entry '${key}' is not JSON`);
  }
}

function finiteMeta(file: string, key: string, text: string | undefined): number {
  const v = Number(text);
  if (text === undefined || text.trim() === '' || !Number.isFinite(v)) formatError(file, `the metadata entry '${key}' is not a finite number`);
  return v;
}

/** Reads a model written by Model.save, checking format, version, checksum and every tensor. */
export async function loadModel(path: string): Promise<Model> {
  return loadModelSync(path);
}

export function loadModelSync(path: string): Model {
  const bytes = readFileChecked(path);
  const { tensors, metadata, data } = decodeSafetensors(bytes, path);
  if (metadata['dcl.format'] !== MODEL_FORMAT)
    formatError(path, `it has no '${MODEL_FORMAT}' format tag (a safetensors file from another tool?)`);
  const version = Number(metadata['dcl.format_version']);
  if (!Number.isInteger(version) || version < 1 || version > MODEL_FORMAT_VERSION)
    formatError(path, `format version ${metadata['dcl.format_version']} is not supported by this library (reads up to ${MODEL_FORMAT_VERSION})`);
  if (metadata['dcl.sha256'] !== sha256Hex([data])) formatError(path, 'the checksum of the weights does not match (the file is corrupt)');
  const architecture = parseJson(path, 'dcl.architecture', metadata['dcl.architecture']) as DclSConfig;
  if (architecture?.architecture !== 'dcl-s') formatError(path, `unknown architecture ${describe(architecture?.architecture)}`);
  let network: DclS;
  let layout: CodeLayout;
  try {
    layout = parseLayout(metadata['dcl.layout'], 'layout');
    network = new DclS({
      codeDims: architecture.codeDims,
      inputShape: architecture.inputShape,
      channels: architecture.channels,
      kernels: architecture.kernels,
      hidden: architecture.hidden,
    });
  } catch (error) {
    formatError(path, `its architecture or layout is invalid (${(error as Error).message})`);
  }
  const dict: Record<string, NamedArray> = {};
  for (const [name, t] of tensors) {
    if (t.dtype !== 'F32') formatError(path, `tensor '${name}' is ${t.dtype}, expected F32`);
    dict[name] = { shape: t.shape, data: t.data as Float32Array };
  }
  try {
    network.loadStateDict(dict, { strict: true });
  } catch (error) {
    formatError(path, `its tensors do not fit the architecture (${(error as Error).message})`);
  }
  const method = metadata['dcl.method'];
  if (!['rounding', 'dp', 'std', 'float'].includes(method ?? '')) formatError(path, `unknown training method ${describe(method)}`);
  const preprocessing = parseJson(path, 'dcl.preprocessing', metadata['dcl.preprocessing']) as Preprocessing;
  if (preprocessing === null || typeof preprocessing !== 'object' || !Array.isArray(preprocessing.inputShape))
    formatError(path, 'the preprocessing metadata is invalid');
  const training = (parseJson(path, 'dcl.training', metadata['dcl.training'] ?? '{}') ?? {}) as Record<string, unknown>;
  let encoding: ModelEncoding = { mirrorAverage: false };
  if (version >= 2) {
    const e = parseJson(path, 'dcl.encoding', metadata['dcl.encoding']) as Partial<ModelEncoding> | null;
    if (e === null || typeof e !== 'object' || typeof e.mirrorAverage !== 'boolean') formatError(path, 'the encoding metadata is invalid');
    encoding = { mirrorAverage: e.mirrorAverage };
  }
  return new Model(network, {
    layout,
    method: method as TrainMethod,
    alpha: finiteMeta(path, 'dcl.alpha', metadata['dcl.alpha']),
    beta: finiteMeta(path, 'dcl.beta', metadata['dcl.beta']),
    preprocessing,
    training,
    encoding,
  });
}
