// The set-up both training loops share: trainLoop of lib/train.ts (the CPU) and cudaTrainLoop of
// lib/cuda-train.ts (the device) take everything up to the optimiser from prepareTraining, in one
// order (the same draws from the same generators, so the same weights, calibration, batches and
// random views), draw their batches with its nextBatch, count progress with progressReporter
// and make their TrainResult with trainResult. A change to any of it reaches both trainers: the
// CUDA trainer reproduces the CPU one bit for bit on host buffers (test/cuda-train.test.ts).
import { noGrad, Var } from './autograd.js';
import { parseLayout, quantize } from './codes.js';
import type { CodeLayout } from './codes.js';
import { DclError } from './errors.js';
import { augmentBatch } from './images.js';
import { DclS, Linear } from './nn.js';
import type { NamedArray } from './nn.js';
import { constantSchedule, cosineSchedule, stepSchedule, warmupSchedule } from './optim.js';
import type { Schedule } from './optim.js';
import { Rng } from './random.js';
import { IdentityBatchSampler } from './sampling.js';
import type { PairBatch } from './sampling.js';
import { Tensor } from './tensor.js';
import type { TrainData, TrainProgress, TrainResult, TrainSettings } from './train.js';
import type { TrainMethod } from './model.js';

/**
 * Data-dependent start for the last layer (a choice the paper leaves open). With |tanh| and
 * max-pooling the deep features are all positive and vary little from image to image, so with any
 * plain random init the sigmoid outputs barely differ across images (std ~0.005 on our generated
 * faces; DESIGN.md saw 0.0015 with PyTorch's default): every code starts identical and the
 * rounding and DP losses see no difference to work on. So before training, each output unit's
 * weights are rescaled (and its bias set) so that its pre-sigmoid value has mean 0 and standard
 * deviation 1 over up to 256 training images: outputs then spread over (0.15, 0.85) around 0.5.
 */
export function calibrateOutputLayer(
  network: DclS,
  data: TrainData,
  seed: number,
  view: (indices: Int32Array) => Float32Array = (indices) => gatherImages(data, indices),
): void {
  const layers = network.classifier.children().map(([, m]) => m);
  const last = layers[layers.length - 2];
  if (!(last instanceof Linear) || last.bias === null) return;
  const [c, h, w] = network.config.inputShape;
  const total = data.labels.length;
  const count = Math.min(256, total);
  const rng = new Rng(seed ^ 0x5eed);
  const pick = rng.sample(total, count);
  const images = view(pick);
  const hidden = noGrad(() => {
    let v = network.flatten.forward(network.features.forward(new Var(new Tensor(images, [count, c, h, w]))));
    for (const m of layers.slice(0, -2)) v = m.forward(v);
    return v.data.slice();
  });
  const weight = last.weight.data;
  const bias = last.bias.data;
  const inF = hidden.length / count;
  const outF = bias.length;
  for (let j = 0; j < outF; j++) {
    let mean = 0, sq = 0;
    for (let b = 0; b < count; b++) {
      let z = bias[j];
      for (let i = 0; i < inF; i++) z += hidden[b * inF + i] * weight[j * inF + i];
      mean += z;
      sq += z * z;
    }
    mean /= count;
    const std = Math.sqrt(Math.max(sq / count - mean * mean, 0));
    if (!(std > 1e-12)) continue;
    const k = 1 / std;
    for (let i = 0; i < inF; i++) weight[j * inF + i] *= k;
    bias[j] = (bias[j] - mean) * k;
  }
  // Written in place: caches derived from the values must see the change.
  last.weight.markChanged();
  last.bias.markChanged();
}

/** The images at `indices`, as they are stored, one after another. */
export function gatherImages(data: TrainData, indices: ArrayLike<number>, out?: Float32Array): Float32Array {
  const per = data.shape[0] * data.shape[1] * data.shape[2];
  const images = out ?? new Float32Array(indices.length * per);
  for (let i = 0; i < indices.length; i++) images.set(data.images.subarray(indices[i] * per, (indices[i] + 1) * per), i * per);
  return images;
}

/** Adam for a few scalars in float64 (alpha and beta of the pair loss). */
export class ScalarAdam {
  private readonly m: number[];
  private readonly v: number[];
  private t = 0;
  constructor(readonly values: number[], private readonly lr: number) {
    this.m = values.map(() => 0);
    this.v = values.map(() => 0);
  }
  step(grads: number[]): void {
    this.t++;
    const b1 = 0.9, b2 = 0.999;
    for (let i = 0; i < this.values.length; i++) {
      this.m[i] = b1 * this.m[i] + (1 - b1) * grads[i];
      this.v[i] = b2 * this.v[i] + (1 - b2) * grads[i] * grads[i];
      const mHat = this.m[i] / (1 - b1 ** this.t), vHat = this.v[i] / (1 - b2 ** this.t);
      this.values[i] -= (this.lr * mHat) / (Math.sqrt(vHat) + 1e-8);
    }
  }
}

/** What a training loop starts from (prepareTraining). */
export interface TrainingSetup {
  layout: CodeLayout;
  /** The network's input [C, H, W]. */
  inputShape: [number, number, number];
  /** Values per image at the network size (C x H x W). */
  per: number;
  /** The largest batch, P x K + singles: batches vary in size (people with fewer than K images give fewer). */
  maxBatch: number;
  /**
   * The images at `indices` at the network size: random views (settings.augment) when `random`,
   * else centre crops of stored images, or the images as they are; into `out` when given.
   */
  view: (indices: Int32Array, random: boolean, out?: Float32Array) => Float32Array;
  /** Built with the settings' seed, the output layer calibrated. */
  network: DclS;
  sampler: IdentityBatchSampler;
  perEpoch: number;
  /** Steps in all. */
  total: number;
  /** The learning rate's factor per step. */
  schedule: Schedule;
  /** alpha (through its logarithm, which keeps it positive) and beta, with their own Adam. */
  scalars: ScalarAdam;
  /**
   * The sampler's next batch and its images (random views) at the network size, in a buffer with
   * room for maxBatch images: `images` is valid until the next call.
   */
  nextBatch: () => { batch: PairBatch; count: number; images: Float32Array };
}

/**
 * Everything up to the optimiser, as both trainers do it: the layout, the random-view closure,
 * the network, the batch sampler, the step count and the schedule, the output layer's
 * calibration, and the alpha / beta Adam.
 */
export function prepareTraining(data: TrainData, settings: TrainSettings): TrainingSetup {
  const layout = parseLayout(settings.layout);
  const rng = new Rng(settings.seed);
  const pre = settings.preprocessing;
  const inputShape = pre ? pre.inputShape : data.shape;
  const stored = { images: data.images, shape: data.shape, count: data.labels.length };
  const cropped = pre !== null && inputShape.some((v, k) => v !== data.shape[k]);
  // Draws for the random views come from their own generator, so that the batches (and the
  // weights) are the same with and without augmentation.
  const viewRng = new Rng(settings.seed ^ 0xa5a5a5);
  const centre = { flip: false, shift: 0, scale: 0 };
  const view = (indices: Int32Array, random: boolean, out?: Float32Array): Float32Array => {
    if (!pre || (!cropped && !(random && settings.augment))) return gatherImages(data, indices, out);
    const a = random && settings.augment ? settings.augment : centre;
    const images = augmentBatch(stored, pre, { rng: viewRng, indices, ...a }).images;
    if (out) out.set(images);
    return out ?? images;
  };
  // codeNormEnd is a schedule the training loop applies (codeNormAt), not part of the network.
  const { codeNormEnd: _schedule, ...networkOptions } = settings.network;
  const network = new DclS({ codeDims: layout.n, inputShape, seed: settings.seed, ...networkOptions });
  const sampler = new IdentityBatchSampler(data.labels, settings.identitiesPerBatch, settings.imagesPerIdentity, settings.singlesPerBatch, rng);
  if (sampler.identitiesWithPairs < 2)
    throw new DclError('E_ARG', `Expected at least 2 people with 2 or more images each in options.data.labels but received ${sampler.identitiesWithPairs}`);
  const perEpoch = sampler.batchesPerEpoch;
  const total = settings.steps ?? settings.epochs * perEpoch;
  const warmup = settings.warmupSteps ?? Math.min(500, Math.floor(total * 0.05));
  let schedule: Schedule;
  if (settings.schedule === 'cosine') schedule = cosineSchedule({ totalSteps: total, warmupSteps: warmup });
  else if (settings.schedule === 'step') schedule = stepSchedule({ stepSize: Math.max(1, Math.floor(total / 3)), gamma: 0.1 });
  else schedule = warmup > 0 ? warmupSchedule(warmup) : constantSchedule();
  calibrateOutputLayer(network, data, settings.seed, (indices) => view(indices, false));
  const scalars = new ScalarAdam([Math.log(settings.alpha), settings.beta], settings.alphaBetaLearningRate);
  const [c, h, w] = inputShape;
  const per = c * h * w;
  const maxBatch = settings.identitiesPerBatch * settings.imagesPerIdentity + settings.singlesPerBatch;
  const batchImages = new Float32Array(maxBatch * per);
  const nextBatch = () => {
    const batch = sampler.next();
    const count = batch.images.length;
    const images = batchImages.subarray(0, count * per);
    view(batch.images, true, images);
    return { batch, count, images };
  };
  return { layout, inputShape, per, maxBatch, view, network, sampler, perEpoch, total, schedule, scalars, nextBatch };
}

/** The loss a step trains with: 'rounding' during the rounding warm-up (settings.roundingWarmup), then the method's own. */
export function methodAt(settings: Pick<TrainSettings, 'method' | 'roundingWarmup'>, step: number, total: number): TrainMethod {
  return step < Math.floor(settings.roundingWarmup * total) ? 'rounding' : settings.method;
}

/** A pair loss and its gradients with respect to alpha and beta. */
export interface PairLossValue {
  loss: number;
  gradAlpha: number;
  gradBeta: number;
}

/**
 * A 'dp' step with settings.roundingShare s > 0 (both training loops): (1 - s) times the DP's
 * expected loss plus s times the rounding error term's loss, and their gradients likewise.
 * `gradRounding` (dL/dp of the rounding term) is overwritten with the blended dL/dp.
 */
export function blendDpWithRounding(share: number, dp: PairLossValue, gradDp: Float32Array, rounding: PairLossValue, gradRounding: Float32Array): PairLossValue {
  for (let i = 0; i < gradRounding.length; i++) gradRounding[i] = (1 - share) * gradDp[i] + share * gradRounding[i];
  return {
    loss: (1 - share) * dp.loss + share * rounding.loss,
    gradAlpha: (1 - share) * dp.gradAlpha + share * rounding.gradAlpha,
    gradBeta: (1 - share) * dp.gradBeta + share * rounding.gradBeta,
  };
}

/** The E_ABORTED error of a loop stopped before `step`. */
export function abortedError(step: number, total: number): DclError {
  return new DclError('E_ABORTED', `Training was aborted after ${step} of ${total} steps`);
}

/**
 * The sigmoid gradient floor (settings.sigmoidGradientFloor): rescales dL/dp in place so that the
 * backward pass through the sigmoid, dL/dz = dL/dp * p (1 - p), uses max(p (1 - p), floor * min(1,
 * p (1 - p) / 1e-4)) instead of p (1 - p). An output the sigmoid has pushed towards 0 or 1 keeps
 * the gradient it would have at p (1 - p) = floor (p about 0.05 / 0.95 for 0.05), so its rounded
 * level can still move; the floor fades to 0 below p (1 - p) = 1e-4 (|z| > 9.2), so a fully
 * saturated output still gets none (README, "How training works").
 */
export function floorSigmoidGradient(p: Float32Array, gradP: Float32Array, floor: number): void {
  if (!(floor > 0)) return;
  for (let i = 0; i < gradP.length; i++) {
    const slope = p[i] * (1 - p[i]);
    if (slope < floor) gradP[i] *= floor / Math.max(slope, SATURATED_SLOPE);
  }
}

/** Below this sigmoid slope p (1 - p) the gradient floor fades out (floorSigmoidGradient). */
const SATURATED_SLOPE = 1e-4;

/** How many different codes a batch's outputs p (count x layout.n) quantize to. */
export function distinctCodes(p: Float32Array, count: number, layout: CodeLayout): number {
  return new Set(quantize(p.subarray(0, count * layout.n), layout)).size;
}

/**
 * Thrown by a training loop when its collapse guard fires; trainLoop (lib/train.ts) catches it and
 * trains again with afterCollapse's settings.
 */
export class CollapseDetected extends Error {
  constructor(readonly step: number) {
    super(`Training collapsed at step ${step}: every image of the batch got the same code`);
  }
}

/**
 * The collapse guard of one training run: call it after every step with the batch's distinct
 * codes. Once settings.collapsePatience batches in a row have each given every image the same
 * code (0 turns the guard off) it throws CollapseDetected. A collapsed network does not come
 * back: with every distance 0 the pair loss sits at log 2, beta goes to 0 and the saturated
 * outputs get no gradient (README, "Training can collapse to one code").
 */
export function collapseGuard(settings: Pick<TrainSettings, 'collapsePatience'>): (step: number, distinct: number) => void {
  let inARow = 0;
  return (step, distinct) => {
    inARow = distinct === 1 ? inARow + 1 : 0;
    if (settings.collapsePatience > 0 && inARow >= settings.collapsePatience) throw new CollapseDetected(step);
  };
}

/**
 * The settings of the next attempt after a collapse: alpha and beta learnt ten times more slowly
 * (on LFW this trained the seed whose default run collapsed: README, "Training can collapse to
 * one code"), or, where they are not learnt, half the learning rate.
 */
export function afterCollapse(settings: TrainSettings): TrainSettings {
  return settings.learnAlphaBeta && settings.alphaBetaLearningRate > 0
    ? { ...settings, alphaBetaLearningRate: settings.alphaBetaLearningRate / 10 }
    : { ...settings, learningRate: settings.learningRate / 2 };
}

/** The E_NATIVE error of a loss that is not finite at `step`. */
export function divergedError(loss: number, step: number): DclError {
  return new DclError('E_NATIVE', `Training diverged: the loss is ${loss} at step ${step}; lower options.learningRate`);
}

/** What one training loop reports: TrainProgress less the restart count, which trainLoop adds. */
export type LoopProgress = Omit<TrainProgress, 'restarts'>;

/**
 * Progress of a training loop: call it after every step with the step's image count, loss and
 * distinct codes; it calls `report` every settings.progressEvery steps and after the last, with
 * the images per second since the previous report (the clock starts when the reporter is made).
 */
export function progressReporter(
  setup: TrainingSetup,
  settings: TrainSettings,
  report: (p: LoopProgress) => void,
): (step: number, count: number, loss: number, distinct: number) => void {
  const { total, perEpoch, scalars, schedule } = setup;
  let windowStart = performance.now();
  let windowImages = 0;
  return (step, count, loss, distinct) => {
    windowImages += count;
    if ((step + 1) % settings.progressEvery === 0 || step + 1 === total) {
      const now = performance.now();
      report({
        epoch: Math.floor(step / perEpoch) + 1,
        step: step + 1,
        totalSteps: total,
        loss,
        distinctCodes: distinct,
        alpha: Math.exp(scalars.values[0]),
        beta: scalars.values[1],
        imagesPerSecond: (windowImages * 1000) / Math.max(1e-6, now - windowStart),
        learningRate: settings.learningRate * schedule(step),
      });
      windowStart = now;
      windowImages = 0;
    }
  };
}

/** The TrainResult of a finished loop: the network's `state`, the learnt alpha and beta. */
export function trainResult(setup: TrainingSetup, settings: TrainSettings, state: Record<string, NamedArray>, finalLoss: number): TrainResult {
  return {
    state,
    alpha: Math.exp(setup.scalars.values[0]),
    beta: setup.scalars.values[1],
    steps: setup.total,
    finalLoss,
    settings,
    inputShape: setup.inputShape,
    restarts: [],
  };
}
