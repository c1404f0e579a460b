// The main job on a built-in default (`dcl demo`, `npm start`): train a small model on generated
// faces for about a minute, then judge its codes on people it never saw, the way LFW is judged
// (ten-fold verification accuracy over same / different pairs), and say how the faces spread over
// the code's bins. Nothing is downloaded: the faces come from lib/synthetic.ts.
import { codeDistances, parseLayout } from './codes.js';
import { DclError } from './errors.js';
import { foldedAccuracy, rocCurve } from './eval.js';
import type { Model } from './model.js';
import { Rng } from './random.js';
import { LFW_PREPROCESSING, loadDataset } from './images.js';
import { findLfw, lfwView1Split, loadedPairs } from './lfw.js';
import { syntheticFaces } from './synthetic.js';
import { encode, train } from './train.js';
import type { TrainMethod } from './model.js';
import type { TrainProgress } from './train.js';
import { describe, knownKeys, plainObject } from './validate.js';

export interface DemoOptions {
  /** An LFW root: train on View 1's training people and judge on pairsDevTest instead of generated faces. */
  lfw?: string;
  /** Data-set cache for LFW images (see loadDataset; default true). */
  cache?: boolean | string;
  onLoad?: (done: number, total: number) => void;
  /** People in the generated set (default 240); the last `testIdentities` are never trained on. */
  identities?: number;
  imagesPerIdentity?: number;
  testIdentities?: number;
  layout?: string;
  method?: TrainMethod;
  /** Training steps (default 260: about a minute on 2 cores). */
  steps?: number;
  seed?: number;
  onProgress?: (p: TrainProgress) => void;
  signal?: AbortSignal;
}

/** Verification of unseen people and the spread of their codes over the bins. */
export interface CodeReport {
  pairs: { same: number; different: number };
  /** Ten-fold accuracy (threshold chosen on the nine other folds), mean and sample std over folds. */
  accuracy: { mean: number; std: number; folds: number[] };
  auc: number;
  bins: BinOccupancy;
}

export interface BinOccupancy {
  images: number;
  /** Occupied bins (distinct codes). */
  occupied: number;
  /** Faces in the fullest bin. */
  largest: number;
  /** Share of the faces whose bin holds a face of another person. */
  sharedWithOthers: number;
  /** Share of the layout's 2^(nQ) bins that are occupied. */
  fractionOfAllBins: number;
}

export interface DemoReport {
  data: { source: 'generated' | 'lfw'; identities: number; imagesPerIdentity: number; trainIdentities: number; testIdentities: number; imageSize: number };
  layout: string;
  method: TrainMethod;
  training: { steps: number; seconds: number; imagesPerSecond: number; finalLoss: number };
  test: CodeReport;
  model: Model;
}

const DEMO_KEYS = ['lfw', 'cache', 'onLoad', 'identities', 'imagesPerIdentity', 'testIdentities', 'layout', 'method', 'steps', 'seed', 'onProgress', 'signal'];

function int(value: unknown, name: string, fallback: number, lo: number, hi: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < lo || value > hi)
    throw new DclError('E_ARG', `Expected an integer from ${lo} to ${hi} for ${name} but received ${describe(value)}`);
  return value;
}

/** Runs the demo: generate, train, encode the unseen people, evaluate. */
export async function runDemo(options: DemoOptions = {}): Promise<DemoReport> {
  const o = plainObject(options, 'options');
  knownKeys(o, DEMO_KEYS, 'options');
  const identities = int(o.identities, 'options.identities', 240, 4, 100000);
  const perIdentity = int(o.imagesPerIdentity, 'options.imagesPerIdentity', 8, 2, 1000);
  const testIdentities = int(o.testIdentities, 'options.testIdentities', Math.max(2, Math.round(identities / 6)), 2, identities - 2);
  const steps = int(o.steps, 'options.steps', 260, 1, 1e7);
  const seed = int(o.seed, 'options.seed', 1, 0, 2 ** 31 - 1);
  const layout = parseLayout(typeof o.layout === 'string' ? o.layout : '8x4');
  const method = (o.method ?? 'rounding') as TrainMethod;

  if (o.lfw !== undefined) return lfwDemo(o as DemoOptions, layout.name, method, steps, seed);
  const faces = syntheticFaces({ identities, imagesPerIdentity: perIdentity, size: 64, seed });
  const per = faces.shape[0] * faces.shape[1] * faces.shape[2];
  const trainCount = (identities - testIdentities) * perIdentity;
  const trainData = { images: faces.images.subarray(0, trainCount * per), labels: faces.labels.subarray(0, trainCount), shape: faces.shape };
  const testData = { images: faces.images.subarray(trainCount * per), labels: faces.labels.subarray(trainCount), shape: faces.shape };

  const started = performance.now();
  let last: TrainProgress | null = null;
  const model = await train({
    data: trainData,
    layout: layout.name,
    method,
    steps,
    seed,
    identitiesPerBatch: 16,
    imagesPerIdentity: 4,
    progressEvery: 10,
    onProgress: (p) => {
      last = p;
      (o.onProgress as DemoOptions['onProgress'])?.(p);
    },
    signal: o.signal as AbortSignal | undefined,
  });
  const seconds = (performance.now() - started) / 1e3;
  const codes = await encode(model, testData);
  const finalLoss = (last as TrainProgress | null)?.loss ?? Number.NaN;
  return {
    data: { source: 'generated', identities, imagesPerIdentity: perIdentity, trainIdentities: identities - testIdentities, testIdentities, imageSize: 64 },
    layout: layout.name,
    method,
    training: { steps, seconds, imagesPerSecond: (steps * 64) / seconds, finalLoss },
    test: codeReport(codes, testData.labels, layout.name, seed),
    model,
  };
}

/** The demo on LFW: View 1's training people, about a minute of training, pairsDevTest. */
async function lfwDemo(o: DemoOptions, layout: string, method: TrainMethod, steps: number, seed: number): Promise<DemoReport> {
  const split = lfwView1Split(findLfw(o.lfw as string));
  const load = (set: { paths: string[]; labels: Int32Array; people: string[] }, size: 'stored' | 'network') =>
    loadDataset({ files: set.paths, labels: set.labels, names: set.people }, LFW_PREPROCESSING, {
      size,
      cache: o.cache ?? true,
      signal: o.signal,
      onProgress: (p) => o.onLoad?.(p.done, p.total),
    });
  const trainSet = await load(split.train, 'stored');
  const testSet = await load(split.test, 'network');
  const started = performance.now();
  let last: TrainProgress | null = null;
  const model = await train({
    data: { images: trainSet.images, labels: trainSet.labels, shape: trainSet.shape },
    preprocessing: LFW_PREPROCESSING,
    layout,
    method,
    steps,
    seed,
    identitiesPerBatch: 16,
    imagesPerIdentity: 4,
    singlesPerBatch: 8,
    progressEvery: 10,
    onProgress: (p) => {
      last = p;
      o.onProgress?.(p);
    },
    signal: o.signal,
  });
  const seconds = (performance.now() - started) / 1e3;
  const codes = await encode(model, { images: testSet.images, shape: testSet.shape });
  const { a, b, same } = loadedPairs(split.test, testSet.files);
  const dist = codeDistances(Int32Array.from(a, (i) => codes[i]), Int32Array.from(b, (i) => codes[i]), parseLayout(layout));
  const tf = foldedAccuracy(dist, same, 10);
  const sameCount = same.reduce((x, v) => x + v, 0);
  const people = new Set(split.test.labels).size;
  return {
    data: { source: 'lfw', identities: people, imagesPerIdentity: 0, trainIdentities: split.train.people.length, testIdentities: people, imageSize: 64 },
    layout,
    method,
    training: { steps, seconds, imagesPerSecond: (steps * (64 + 8)) / seconds, finalLoss: (last as TrainProgress | null)?.loss ?? Number.NaN },
    test: {
      pairs: { same: sameCount, different: same.length - sameCount },
      accuracy: { mean: tf.mean, std: tf.std, folds: tf.folds.map((f) => f.accuracy) },
      auc: rocCurve(dist, same).auc,
      bins: binOccupancy(codes, testSet.labels, parseLayout(layout).n * parseLayout(layout).q),
    },
    model,
  };
}

/**
 * Verification and bin occupancy of codes with identity labels: every same-person pair and as
 * many different-person pairs drawn at random (seeded), judged LFW-style in ten folds.
 */
export function codeReport(codes: Int32Array, labels: Int32Array, layoutName: string, seed = 1): CodeReport {
  const layout = parseLayout(layoutName);
  const a: number[] = [];
  const b: number[] = [];
  const same: boolean[] = [];
  for (let i = 0; i < codes.length; i++)
    for (let j = i + 1; j < codes.length; j++)
      if (labels[i] === labels[j]) {
        a.push(i);
        b.push(j);
        same.push(true);
      }
  const sameCount = a.length;
  const rng = new Rng(seed);
  for (let k = 0; k < sameCount; ) {
    const i = Math.floor(rng.uniform() * codes.length);
    const j = Math.floor(rng.uniform() * codes.length);
    if (labels[i] === labels[j]) continue;
    a.push(i);
    b.push(j);
    same.push(false);
    k++;
  }
  const dist = codeDistances(
    Int32Array.from(a, (i) => codes[i]),
    Int32Array.from(b, (i) => codes[i]),
    layout,
  );
  const tf = foldedAccuracy(dist, same, 10);
  const roc = rocCurve(Float64Array.from(dist), same);
  return {
    pairs: { same: sameCount, different: dist.length - sameCount },
    accuracy: { mean: tf.mean, std: tf.std, folds: tf.folds.map((f) => f.accuracy) },
    auc: roc.auc,
    bins: binOccupancy(codes, labels, layout.n * layout.q),
  };
}

export function binOccupancy(codes: Int32Array, labels: Int32Array, bits: number): BinOccupancy {
  const byCode = new Map<number, { count: number; people: Set<number> }>();
  for (let i = 0; i < codes.length; i++) {
    let bin = byCode.get(codes[i]);
    if (!bin) byCode.set(codes[i], (bin = { count: 0, people: new Set() }));
    bin.count++;
    bin.people.add(labels[i]);
  }
  let largest = 0;
  let shared = 0;
  for (const bin of byCode.values()) {
    largest = Math.max(largest, bin.count);
    if (bin.people.size > 1) shared += bin.count;
  }
  return {
    images: codes.length,
    occupied: byCode.size,
    largest,
    sharedWithOthers: codes.length ? shared / codes.length : 0,
    fractionOfAllBins: byCode.size / 2 ** bits,
  };
}
