// train() and encode(): Deep Compactness Learning on top of the autograd layer and the native
// kernels. The training loop runs in a worker thread (so the caller's event loop stays free);
// trainSync runs the same loop on the calling thread (tests, the worker itself).
//
// One step: a batch of P identities x K images -> f_model(x) = p in (0,1)^n -> the pair loss of
// the chosen method over every pair in the batch (same / different pairs weighted half each) ->
// dL/dp -> backward through the network -> AdamW step; alpha and beta (the loss's scale and
// threshold) learn with their own Adam and a larger learning rate (DESIGN.md practical notes).
//
// Methods (how the gradient gets through the rounding to n x Q codes):
// - 'rounding' (technique 1): the distance is measured on the rounded codes f = floor(2^Q p),
//   the rounding error r = f - 2^Q p held constant (straight-through, gradient scale 2^Q); the
//   direction of the gradient at tied codes comes from the unrounded values (sign(s1 - s2)).
// - 'dp' (technique 2, Q = 1): the expected loss over random bits with P(bit = 1) = p, exact, by
//   the O(n^2) dynamic program, with its exact gradient; after a rounding warm-up, and blended
//   with the rounding loss (roundingShare, default half each; 0 is the DP alone).
// - 'std' (technique 3): the pair loss L on the codes, as for 'rounding' (eq. 8 adds the term to L,
//   and L is the loss of the quantized codes f), minus omega * sum_i Std_batch(p_i). The paper
//   writes + omega Std, but its stated intent is to push outputs to saturate; for outputs in
//   [0, 1) saturation means a LARGER spread, so the term is subtracted (omega >= 0 rewards
//   spread). A test shows it drives outputs towards 0 and 1.
// - 'float': the loss on the unrounded values 2^Q p alone (the unquantized reference).
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { fileURLToPath } from 'node:url';
import { backward, Var } from './autograd.js';
import { maxDistance, parseLayout } from './codes.js';
import type { CodeLayout } from './codes.js';
import { DclError } from './errors.js';
import { hammingDpLoss, pairL1Loss } from './losses.js';
import { LIBRARY_VERSION, Model } from './model.js';
import type { TrainMethod } from './model.js';
import { DclS } from './nn.js';
import type { NamedArray } from './nn.js';
import { AttributeHead } from './attribute-head.js';
import { AdamW, SGD } from './optim.js';
import { augmentBatch, imageShape, loadImages, resolvePreprocessing } from './images.js';
import type { ImagePreprocessing, PreprocessingOptions } from './images.js';
import { hardNegativeWeights } from './sampling.js';
import { Tensor } from './tensor.js';
import { describe, knownKeys, numberOption as num, plainObject } from './validate.js';
import {
  abortedError,
  afterCollapse,
  blendDpWithRounding,
  collapseGuard,
  CollapseDetected,
  distinctCodes,
  divergedError,
  floorSigmoidGradient,
  methodAt,
  prepareTraining,
  progressReporter,
  trainResult,
} from './train-setup.js';
import type { LoopProgress, PairLossValue } from './train-setup.js';
import { cudaEncode, cudaEncodeSync, cudaTrainLoop, encodeDevice, trainDevice } from './cuda-train.js';
import type { DeviceOption } from './cuda-train.js';

export interface TrainData {
  /** N x C x H x W values, each image already preprocessed (e.g. zero mean, unit std). */
  images: Float32Array;
  /** N identity labels. */
  labels: Int32Array;
  /** [C, H, W]. */
  shape: [number, number, number];
  /**
   * Optional: N attribute labels (0 .. classes - 1, -1 for an image without one), such as gender,
   * for the auxiliary attribute term (TrainOptions.attributeWeight).
   */
  attributes?: Int32Array;
}

export interface TrainProgress {
  epoch: number;
  step: number;
  totalSteps: number;
  /** The batch's loss (pair loss plus the std term for 'std'). */
  loss: number;
  /**
   * How many different codes the batch's images got: 1 means every image the same code, the sign
   * of a collapse (options.collapsePatience).
   */
  distinctCodes: number;
  /** How many times the collapse guard has started training again so far (0 normally). */
  restarts: number;
  alpha: number;
  beta: number;
  imagesPerSecond: number;
  learningRate: number;
}

export interface TrainOptions {
  data: TrainData;
  /** Code layout 'nxQ'. Default '32x1'. */
  layout?: string;
  /** Default 'rounding'. */
  method?: TrainMethod;
  /** Initial alpha (default 10 / the layout's largest distance) and beta (default 2.5). */
  alpha?: number;
  beta?: number;
  /** Learn alpha and beta (default true) with this learning rate (default 1e-2). */
  learnAlphaBeta?: boolean;
  alphaBetaLearningRate?: number;
  /**
   * Weight of the standard-deviation term for method 'std' (default 0.01). The term is a sum over
   * the n outputs (up to n / 2), the pair loss about 0.7: with omega 1 the spread alone would
   * drive training (LFW View 1, 32x1, 120 epochs: omega 0.01 71.5%, 70.8% and 70.3% with seeds
   * 1-3, 0.1 67.8%; README, "Results on LFW").
   */
  omega?: number;
  /**
   * Weight of the auxiliary attribute term when data.attributes is given (default 1): a linear
   * softmax head on the outputs p learns the attribute with the network and is then discarded, so
   * that the code itself carries the attribute for a look-up table (lib/attribute-head.ts; README,
   * "How training works"). 0 turns it off.
   */
  attributeWeight?: number;
  /**
   * Adam learning rate of that head (default 1e-2). Its own option, so that learning alpha and
   * beta more slowly (alphaBetaLearningRate, or the collapse guard's restart) does not slow the
   * head too.
   */
  attributeLearningRate?: number;
  /**
   * The fraction of the steps, from the start, trained with the rounding error term before the
   * method's own loss takes over (methodAt). Default 0.5 for 'dp' (its expected loss over random
   * bits gives little signal from a random start: README, "Results on LFW"), 0 otherwise.
   */
  roundingWarmup?: number;
  /**
   * For 'dp', once its warm-up is over: the share s of the rounding error term's loss kept beside
   * the DP's expected loss, L = (1 - s) E[L] + s L_rounding (blendDpWithRounding). Default 0.5
   * (README, "Results on LFW": the DP alone switched off bits and scored below rounding); 0 is the
   * DP alone, as in the paper. Only 'dp' takes it.
   */
  roundingShare?: number;
  /** Passes over the identities (default 10). */
  epochs?: number;
  /** Or a fixed number of steps (overrides epochs). */
  steps?: number;
  /** P identities x K images per batch (defaults 32 x 4), plus singles extra one-image people. */
  identitiesPerBatch?: number;
  imagesPerIdentity?: number;
  singlesPerBatch?: number;
  /**
   * Hard-negative mining: the fraction of each batch's different-person pairs that count, the
   * ones whose outputs are closest (L1). Default 1 (every pair).
   */
  hardNegatives?: number;
  /** Optimiser (default 'adamw'), learning rate (default 2e-4), weight decay (default 1e-4). */
  optimizer?: 'adamw' | 'sgd';
  learningRate?: number;
  momentum?: number;
  weightDecay?: number;
  /** 'cosine' (default), 'constant', 'step'; warm-up steps (default 5% of the steps). */
  schedule?: 'cosine' | 'constant' | 'step';
  warmupSteps?: number;
  /** Seed of the weights and the batches. Default 1. */
  seed?: number;
  /**
   * The network: DCL-S with these sizes (defaults [32, 64, 128, 256], [5, 3, 3, 3], 256); the
   * initial weights' gain (default 1.5, see nn.initialize); codeNorm, the code normalisation
   * during training (DclSOptions.codeNorm; default 1.7 for 'dp' and layouts with Q >= 8, 0 (off)
   * otherwise); codeNormEnd, the spread at the last step, reached geometrically from codeNorm, a
   * continuation that sharpens the bits as training goes on (default 6 where codeNorm is on by
   * default and not given, otherwise codeNorm: constant); codeCentre, centre the outputs without
   * fixing their spread instead (DclSOptions.codeCentre; default false).
   */
  network?: { channels?: number[]; kernels?: number[]; hidden?: number; codeNorm?: number; codeNormEnd?: number; codeCentre?: boolean; gain?: number };
  /**
   * The collapse guard: when this many batches in a row (default 200; 0 turns the guard off) have
   * each given every image the same code, training has collapsed and does not recover, so it
   * starts again from the first step with alpha and beta learnt ten times more slowly (or, with
   * learnAlphaBeta false, at half the learning rate), up to `collapseRestarts` times (default 2);
   * after that the promise rejects with DclError E_COLLAPSED. The model records the restarts
   * (model.training.restarts) and the settings of the run that finished.
   */
  collapsePatience?: number;
  collapseRestarts?: number;
  /**
   * A floor under the sigmoid's slope in the backward pass (floorSigmoidGradient, lib/train-setup.ts):
   * outputs pushed towards 0 or 1 keep the gradient they would have at p (1 - p) = this value
   * (0.05: p about 0.05 / 0.95), so their levels can still move. Default 0 (off).
   */
  sigmoidGradientFloor?: number;
  /** Called after every `progressEvery` steps (default 10) and after the last. */
  onProgress?: (progress: TrainProgress) => void;
  progressEvery?: number;
  /** Stops training at the next step: the promise rejects with DclError E_ABORTED. */
  signal?: AbortSignal;
  /** Run in a worker thread (default true); false runs on the calling thread and blocks it. */
  worker?: boolean;
  /**
   * How data.images were made (lib/images.ts); recorded in the model so that encode(model, files)
   * repeats it. data.shape is then either the network size or the stored size (with a margin for
   * augmentation, as loadDataset(..., { size: 'stored' }) returns): stored images are cut to the
   * network size in every batch, at random with `augment`, else centred.
   */
  preprocessing?: PreprocessingOptions | ImagePreprocessing;
  /**
   * Random views of stored images per batch (augmentBatch): true for the defaults (mirror half of
   * the images, shift within the stored margin, scale +-5%), or the options; false for centre
   * crops. Default: true when data is stored with a margin, else false (there is nothing to crop).
   */
  augment?: boolean | { flip?: boolean; shift?: number; scale?: number };
  /**
   * The model encodes each image as the average of its outputs for the image and its mirror
   * (Model.encoding.mirrorAverage; twice the encoding work). Default false; `dcl reproduce` turns
   * it on (README, "Results on LFW").
   */
  mirrorAverage?: boolean;
  /**
   * Where the loop runs (lib/cuda-train.ts): 'cpu', 'cuda' (E_CUDA with the reason when CUDA is
   * not usable) or 'auto' (CUDA when capabilities().cuda.usable, else the CPU). Default: the
   * DCL_DEVICE environment variable, else 'cpu'.
   */
  device?: DeviceOption;
}

/**
 * The part of a 'dp' run trained with the rounding error term first (options.roundingWarmup): the
 * DP's expected loss then starts from bits that already mean something.
 */
export const DEFAULT_DP_ROUNDING_WARMUP = 0.5;

/** The weight of the standard-deviation term of method 'std' (options.omega). */
export const DEFAULT_STD_OMEGA = 0.01;

/** The share of the rounding error term's loss a 'dp' run keeps beside the DP's (options.roundingShare). */
export const DEFAULT_DP_ROUNDING_SHARE = 0.5;

/** The standard deviation code normalisation holds pre-sigmoid values at, by default for Q >= 8 (and 'dp' without the warm-up). */
export const DEFAULT_CODE_NORM = 1.7;
/**
 * The spread the default code normalisation rises to by the last step (network.codeNormEnd): a
 * continuation that sharpens the bits, so the DP's random bits end close to the codes it encodes.
 */
export const DEFAULT_CODE_NORM_END = 6;

/**
 * Batches in a row that gave every image the same code before the collapse guard starts training
 * again (options.collapsePatience). On LFW (8x4, seed 3) the run that collapsed had one code per
 * batch from about step 55 and never recovered, while the run with alpha and beta learnt more
 * slowly went through stretches of up to about 50 such batches in its first 200 steps and then
 * trained normally (69.4%): 200 leaves that room, and costs a tenth of a 60-epoch run.
 */
export const DEFAULT_COLLAPSE_PATIENCE = 200;
/** How many times the collapse guard starts training again before E_COLLAPSED. */
export const DEFAULT_COLLAPSE_RESTARTS = 2;
/** Adam learning rate of alpha and beta unless options.alphaBetaLearningRate says otherwise. */
export const DEFAULT_ALPHA_BETA_LEARNING_RATE = 1e-2;

const OPTION_KEYS = [
  'data', 'layout', 'method', 'alpha', 'beta', 'learnAlphaBeta', 'alphaBetaLearningRate', 'omega', 'attributeWeight', 'attributeLearningRate', 'roundingWarmup', 'roundingShare', 'epochs', 'steps',
  'identitiesPerBatch', 'imagesPerIdentity', 'singlesPerBatch', 'hardNegatives', 'optimizer', 'learningRate', 'momentum', 'weightDecay',
  'schedule', 'warmupSteps', 'seed', 'network', 'onProgress', 'progressEvery', 'signal', 'worker', 'preprocessing', 'augment',
  'mirrorAverage', 'collapsePatience', 'collapseRestarts', 'sigmoidGradientFloor',
] as const;

/** Validated, JSON-safe training settings (what the worker receives and the model records). */
export interface TrainSettings {
  /** Where the loop runs, resolved ('auto' chose); absent: 'cpu'. */
  device?: 'cpu' | 'cuda';
  layout: string;
  method: TrainMethod;
  alpha: number;
  beta: number;
  learnAlphaBeta: boolean;
  alphaBetaLearningRate: number;
  omega: number;
  /** Weight of the attribute term; 0 without data.attributes. */
  attributeWeight: number;
  /** Adam learning rate of the attribute head. */
  attributeLearningRate: number;
  /** The fraction of the steps trained with 'rounding' first (methodAt). */
  roundingWarmup: number;
  /** 'dp' only (0 for the other methods): the rounding loss's share after the warm-up. */
  roundingShare: number;
  epochs: number;
  steps: number | null;
  identitiesPerBatch: number;
  imagesPerIdentity: number;
  singlesPerBatch: number;
  hardNegatives: number;
  optimizer: 'adamw' | 'sgd';
  learningRate: number;
  momentum: number;
  weightDecay: number;
  schedule: 'cosine' | 'constant' | 'step';
  warmupSteps: number | null;
  seed: number;
  network: { channels?: number[]; kernels?: number[]; hidden?: number; codeNorm?: number; codeNormEnd?: number; codeCentre?: boolean; gain?: number };
  progressEvery: number;
  /** The image pipeline, or null for arrays made by the caller (the network takes data.shape). */
  preprocessing: ImagePreprocessing | null;
  /** Random views per batch, or null (centre crops of stored images, or the images as they are). */
  augment: { flip: boolean; shift: number; scale: number } | null;
  mirrorAverage: boolean;
  /** Batches in a row with one code that count as a collapse (0: the guard is off). */
  collapsePatience: number;
  /** How many times training starts again after a collapse before E_COLLAPSED. */
  collapseRestarts: number;
  /** The floor under the sigmoid's slope in the backward pass (0: none). */
  sigmoidGradientFloor: number;
}

/** One collapse the guard caught: where, and the rates of the run that collapsed. */
export interface CollapseRestart {
  collapsedAtStep: number;
  alphaBetaLearningRate: number;
  learningRate: number;
}

function checkData(value: unknown): TrainData {
  const d = plainObject(value, 'options.data');
  // A loadDataset() result can be passed as it is: its other fields (files, names...) are ignored.
  knownKeys(d, ['images', 'labels', 'attributes', 'shape', 'count', 'names', 'files', 'skipped', 'fromCache', 'decoded', 'cacheFile'], 'options.data');
  if (!(d.images instanceof Float32Array)) throw new DclError('E_ARG', `Expected a Float32Array for options.data.images but received ${describe(d.images)}`);
  if (!(d.labels instanceof Int32Array)) throw new DclError('E_ARG', `Expected an Int32Array for options.data.labels but received ${describe(d.labels)}`);
  const shape = d.shape;
  if (!Array.isArray(shape) || shape.length !== 3 || !Array.from(shape).every((v) => Number.isInteger(v) && v > 0))
    throw new DclError('E_SHAPE', `Expected [C, H, W] positive integers for options.data.shape but received ${describe(shape)}`);
  const per = shape[0] * shape[1] * shape[2];
  if (d.labels.length < 2) throw new DclError('E_SHAPE', `Expected at least 2 images for options.data.labels but received ${d.labels.length}`);
  if (d.images.length !== d.labels.length * per)
    throw new DclError(
      'E_SHAPE',
      `Expected ${d.labels.length} x ${per} = ${d.labels.length * per} values (one image of shape [${shape.join(', ')}] per label) for options.data.images but received ${d.images.length}`,
    );
  for (let i = 0; i < d.images.length; i++)
    if (!Number.isFinite(d.images[i])) throw new DclError('E_ARG', `Expected finite pixel values for options.data.images but received ${d.images[i]} at index ${i}`);
  const data: TrainData = { images: d.images, labels: d.labels, shape: [shape[0], shape[1], shape[2]] };
  if (d.attributes !== undefined) {
    if (!(d.attributes instanceof Int32Array)) throw new DclError('E_ARG', `Expected an Int32Array for options.data.attributes but received ${describe(d.attributes)}`);
    if (d.attributes.length !== d.labels.length)
      throw new DclError('E_SHAPE', `Expected ${d.labels.length} attribute labels (one per image) for options.data.attributes but received ${d.attributes.length}`);
    d.attributes.forEach((a, i) => {
      if (a < -1 || a >= MAX_ATTRIBUTE_CLASSES)
        throw new DclError('E_ARG', `Expected attribute labels from -1 (none) to ${MAX_ATTRIBUTE_CLASSES - 1} for options.data.attributes but received ${a} at index ${i}`);
    });
    if (attributeClasses(d.attributes) < 2) throw new DclError('E_ARG', 'Expected at least two attribute classes in options.data.attributes but received fewer');
    data.attributes = d.attributes;
  }
  return data;
}

/** The most attribute classes the attribute term takes. */
const MAX_ATTRIBUTE_CLASSES = 1024;

/** The number of attribute classes: one more than the largest label. */
function attributeClasses(attributes: Int32Array): number {
  let top = -1;
  for (const a of attributes) top = Math.max(top, a);
  return top + 1;
}

export function checkTrainOptions(options: unknown): { data: TrainData; settings: TrainSettings } {
  if (options === undefined) throw new DclError('E_ARG', 'Expected an options object with data for options but received undefined');
  const o = plainObject(options, 'options');
  knownKeys(o, [...OPTION_KEYS, 'device'], 'options');
  const data = checkData(o.data);
  const layout = parseLayout(o.layout ?? '32x1', 'options.layout');
  const method = (o.method ?? 'rounding') as TrainMethod;
  if (!['rounding', 'dp', 'std', 'float'].includes(method))
    throw new DclError('E_ARG', `Expected 'rounding', 'dp', 'std' or 'float' for options.method but received ${describe(o.method)}`);
  if (method === 'dp' && layout.q !== 1)
    throw new DclError('E_ARG', `Expected a binary layout (Q = 1, such as '32x1') for method 'dp' but received '${layout.name}'`);
  const network = plainObject(o.network, 'options.network');
  knownKeys(network, ['channels', 'kernels', 'hidden', 'codeNorm', 'codeNormEnd', 'codeCentre', 'gain'], 'options.network');
  for (const key of ['onProgress'] as const)
    if (o[key] !== undefined && typeof o[key] !== 'function') throw new DclError('E_ARG', `Expected a function for options.${key} but received ${describe(o[key])}`);
  if (o.signal !== undefined && !(o.signal instanceof AbortSignal)) throw new DclError('E_ARG', `Expected an AbortSignal for options.signal but received ${describe(o.signal)}`);
  for (const key of ['learnAlphaBeta', 'worker', 'mirrorAverage'] as const)
    if (o[key] !== undefined && typeof o[key] !== 'boolean') throw new DclError('E_ARG', `Expected a boolean for options.${key} but received ${describe(o[key])}`);
  const optimizer = (o.optimizer ?? 'adamw') as 'adamw' | 'sgd';
  if (!['adamw', 'sgd'].includes(optimizer)) throw new DclError('E_ARG', `Expected 'adamw' or 'sgd' for options.optimizer but received ${describe(o.optimizer)}`);
  const schedule = (o.schedule ?? 'cosine') as 'cosine' | 'constant' | 'step';
  if (!['cosine', 'constant', 'step'].includes(schedule))
    throw new DclError('E_ARG', `Expected 'cosine', 'constant' or 'step' for options.schedule but received ${describe(o.schedule)}`);
  if (network.codeCentre !== undefined && typeof network.codeCentre !== 'boolean')
    throw new DclError('E_ARG', `Expected a boolean for options.network.codeCentre but received ${describe(network.codeCentre)}`);
  // Code normalisation keeps the outputs spread, which keeps 8-bit dimensions (4x8) from
  // collapsing to one code, and which the DP's random bits need when it trains from the start
  // (after its rounding warm-up they already mean something); rising from DEFAULT_CODE_NORM to
  // DEFAULT_CODE_NORM_END it also lets the bits sharpen. 'std' trains better without it (its own
  // term spreads the outputs) and so do the other rounding layouts (README, "Results on LFW").
  const roundingWarmup = num(o.roundingWarmup, 'options.roundingWarmup', method === 'dp' ? DEFAULT_DP_ROUNDING_WARMUP : 0, 0, 0.999);
  if (o.roundingShare !== undefined && method !== 'dp')
    throw new DclError('E_ARG', `Expected options.roundingShare only with method 'dp' (it weighs the DP's loss against rounding's) but received it with '${method}'`);
  const roundingShare = method === 'dp' ? num(o.roundingShare, 'options.roundingShare', DEFAULT_DP_ROUNDING_SHARE, 0, 1) : 0;
  const defaultNorm = ((method === 'dp' && roundingWarmup === 0) || layout.q >= 8) && network.codeCentre !== true;
  const settings: TrainSettings = {
    layout: layout.name,
    method,
    alpha: num(o.alpha, 'options.alpha', 10 / maxDistance(layout), 1e-9, 1e9),
    beta: num(o.beta, 'options.beta', 2.5, -1e9, 1e9),
    learnAlphaBeta: (o.learnAlphaBeta as boolean | undefined) ?? true,
    alphaBetaLearningRate: num(o.alphaBetaLearningRate, 'options.alphaBetaLearningRate', DEFAULT_ALPHA_BETA_LEARNING_RATE, 0, 10),
    omega: num(o.omega, 'options.omega', DEFAULT_STD_OMEGA, 0, 1e6),
    roundingWarmup,
    roundingShare,
    attributeWeight: data.attributes ? num(o.attributeWeight, 'options.attributeWeight', 1, 0, 1e6) : 0,
    attributeLearningRate: num(o.attributeLearningRate, 'options.attributeLearningRate', 1e-2, 0, 10),
    epochs: num(o.epochs, 'options.epochs', 10, 1, 1e6, true),
    steps: o.steps === undefined ? null : num(o.steps, 'options.steps', 0, 1, 1e9, true),
    identitiesPerBatch: num(o.identitiesPerBatch, 'options.identitiesPerBatch', 32, 2, 4096, true),
    imagesPerIdentity: num(o.imagesPerIdentity, 'options.imagesPerIdentity', 4, 2, 1024, true),
    singlesPerBatch: num(o.singlesPerBatch, 'options.singlesPerBatch', 0, 0, 4096, true),
    hardNegatives: num(o.hardNegatives, 'options.hardNegatives', 1, 1e-6, 1),
    optimizer,
    learningRate: num(o.learningRate, 'options.learningRate', 2e-4, 1e-12, 10),
    momentum: num(o.momentum, 'options.momentum', 0.9, 0, 0.9999),
    weightDecay: num(o.weightDecay, 'options.weightDecay', 1e-4, 0, 1),
    schedule,
    warmupSteps: o.warmupSteps === undefined ? null : num(o.warmupSteps, 'options.warmupSteps', 0, 0, 1e9, true),
    seed: num(o.seed, 'options.seed', 1, 0, 2 ** 32 - 1, true),
    network: {
      ...(network as TrainSettings['network']),
      codeNorm: num(network.codeNorm, 'options.network.codeNorm', defaultNorm ? DEFAULT_CODE_NORM : 0, 0, 100),
      ...(network.gain === undefined ? {} : { gain: num(network.gain, 'options.network.gain', 1.5, 1e-6, 100) }),
      ...(network.codeNormEnd !== undefined
        ? { codeNormEnd: num(network.codeNormEnd, 'options.network.codeNormEnd', 1, 1e-3, 100) }
        : defaultNorm && network.codeNorm === undefined
          ? { codeNormEnd: DEFAULT_CODE_NORM_END }
          : {}),
    },
    progressEvery: num(o.progressEvery, 'options.progressEvery', 10, 1, 1e9, true),
    preprocessing: null,
    augment: null,
    mirrorAverage: (o.mirrorAverage as boolean | undefined) ?? false,
    collapsePatience: num(o.collapsePatience, 'options.collapsePatience', DEFAULT_COLLAPSE_PATIENCE, 0, 1e9, true),
    collapseRestarts: num(o.collapseRestarts, 'options.collapseRestarts', DEFAULT_COLLAPSE_RESTARTS, 0, 10, true),
    sigmoidGradientFloor: num(o.sigmoidGradientFloor, 'options.sigmoidGradientFloor', 0, 0, 0.25),
  };
  if (o.attributeWeight !== undefined && !data.attributes)
    throw new DclError('E_ARG', 'Expected options.data.attributes (the labels the attribute term learns) with options.attributeWeight but received none');
  if (settings.network.codeCentre === true && settings.network.codeNorm! > 0)
    throw new DclError('E_ARG', 'Expected options.network.codeCentre or options.network.codeNorm > 0, not both (code normalisation already centres)');
  if (settings.network.codeNormEnd !== undefined && !(settings.network.codeNorm! > 0))
    throw new DclError('E_ARG', 'Expected options.network.codeNormEnd only with code normalisation (options.network.codeNorm > 0) but codeNorm is 0');
  if (o.preprocessing !== undefined) {
    const pre = resolvePreprocessing(o.preprocessing as PreprocessingOptions, 'options.preprocessing');
    const stored = imageShape(pre, 'stored');
    const same = (a: readonly number[], b: readonly number[]) => a.every((v, k) => v === b[k]);
    if (!same(data.shape, pre.inputShape) && !same(data.shape, stored))
      throw new DclError(
        'E_SHAPE',
        `Expected options.data.shape to be the network size [${pre.inputShape.join(', ')}] or the stored size [${stored.join(', ')}] of options.preprocessing but received [${data.shape.join(', ')}]`,
      );
    settings.preprocessing = pre;
    const margin = !same(data.shape, pre.inputShape);
    const a = o.augment ?? margin;
    if (a !== false) {
      const given = a === true ? {} : plainObject(a, 'options.augment');
      knownKeys(given, ['flip', 'shift', 'scale'], 'options.augment');
      if (given.flip !== undefined && typeof given.flip !== 'boolean')
        throw new DclError('E_ARG', `Expected a boolean for options.augment.flip but received ${describe(given.flip)}`);
      const room = Math.min(Math.floor((data.shape[1] - pre.inputShape[1]) / 2), Math.floor((data.shape[2] - pre.inputShape[2]) / 2));
      settings.augment = {
        flip: (given.flip as boolean | undefined) ?? true,
        shift: num(given.shift, 'options.augment.shift', room, 0, room, true),
        scale: num(given.scale, 'options.augment.scale', margin ? 0.05 : 0, 0, 0.5),
      };
      if (settings.augment.scale > 0 && !margin)
        throw new DclError('E_ARG', 'Expected options.augment.scale 0 for images stored at the network size (no margin to scale into) but received ' + settings.augment.scale);
    }
  } else if (o.augment !== undefined && o.augment !== false)
    throw new DclError('E_ARG', 'Expected options.preprocessing (which says how images are stored) with options.augment but received none');
  settings.device = trainDevice(o.device, settings);
  return { data, settings };
}

/** The loss of one batch and its gradient with respect to p (written into gradP). */
export function batchLoss(
  p: Float32Array,
  count: number,
  layout: CodeLayout,
  // roundingShare: for 'dp', the rounding loss's share (blendDpWithRounding); default 0, the DP alone.
  settings: Pick<TrainSettings, 'method' | 'omega'> & { roundingShare?: number },
  pairs: Int32Array,
  labels: Float32Array,
  weights: Float32Array,
  alpha: number,
  beta: number,
  gradP: Float32Array,
): PairLossValue {
  const n = layout.n;
  const scale = layout.levels; // 2^Q
  if (settings.method === 'dp') {
    const r = hammingDpLoss({ p: new Tensor(p, [count, n]), pairs, labels, weights, alpha, beta });
    const dp = { loss: r.loss, gradAlpha: r.gradAlpha, gradBeta: r.gradBeta };
    const share = settings.roundingShare ?? 0;
    if (share === 0) {
      gradP.set(r.gradP!.data);
      return dp;
    }
    const rounding = batchLoss(p, count, layout, { method: 'rounding', omega: 0 }, pairs, labels, weights, alpha, beta, gradP);
    return blendDpWithRounding(share, dp, r.gradP!.data, rounding, gradP);
  }
  const s = new Float32Array(p.length);
  for (let i = 0; i < p.length; i++) s[i] = scale * p[i];
  let values = s;
  if (settings.method === 'rounding' || settings.method === 'std') {
    // Straight-through: the forward distance uses the codes, the backward treats the rounding
    // error as a constant, so d/ds = d/dvalues.
    values = new Float32Array(p.length);
    for (let i = 0; i < p.length; i++) values[i] = Math.min(scale - 1, Math.max(0, Math.floor(s[i])));
  }
  const r = pairL1Loss({ values: new Tensor(values, [count, n]), signs: new Tensor(s, [count, n]), pairs, labels, weights, alpha, beta });
  const g = r.gradValues!.data;
  for (let i = 0; i < p.length; i++) gradP[i] = scale * g[i];
  let loss = r.loss;
  if (settings.method === 'std' && settings.omega > 0) {
    // - omega * sum_i std_b(p_bi): d/dp_bi = - omega (p_bi - mean_i) / (count * std_i).
    for (let i = 0; i < n; i++) {
      let mean = 0;
      for (let b = 0; b < count; b++) mean += p[b * n + i];
      mean /= count;
      let variance = 0;
      for (let b = 0; b < count; b++) variance += (p[b * n + i] - mean) ** 2;
      const std = Math.sqrt(variance / count + 1e-12);
      loss -= settings.omega * std;
      for (let b = 0; b < count; b++) gradP[b * n + i] -= (settings.omega * (p[b * n + i] - mean)) / (count * std);
    }
  }
  return { loss, gradAlpha: r.gradAlpha, gradBeta: r.gradBeta };
}

// The output layer's calibration lives with the rest of the shared set-up (lib/train-setup.ts).
export { calibrateOutputLayer } from './train-setup.js';

export interface TrainResult {
  state: Record<string, NamedArray>;
  alpha: number;
  beta: number;
  steps: number;
  finalLoss: number;
  settings: TrainSettings;
  inputShape: [number, number, number];
  /** The collapses the guard caught before this run (trainLoop fills it in; [] from one loop). */
  restarts: CollapseRestart[];
}

/**
 * The code normalisation's spread at a step when network.codeNormEnd schedules it (geometric from
 * codeNorm at step 0 to codeNormEnd at the last step); null when there is no schedule.
 */
export function codeNormAt(settings: Pick<TrainSettings, 'network'>, step: number, total: number): number | null {
  const { codeNorm, codeNormEnd } = settings.network;
  if (codeNormEnd === undefined || !(codeNorm! > 0)) return null;
  const t = total > 1 ? step / (total - 1) : 1;
  return codeNorm! * (codeNormEnd / codeNorm!) ** t;
}

/**
 * Training, synchronous: the CPU or the CUDA loop as settings.device says, started again with
 * afterCollapse's settings when the collapse guard fires (up to settings.collapseRestarts times,
 * then E_COLLAPSED). `shouldStop` is polled between steps.
 */
export function trainLoop(
  data: TrainData,
  settings: TrainSettings,
  report: (p: TrainProgress) => void,
  shouldStop: () => boolean,
): TrainResult {
  const restarts: CollapseRestart[] = [];
  let current = settings;
  for (;;) {
    const loop = current.device === 'cuda' ? cudaTrainLoop : cpuTrainLoop;
    try {
      const result = loop(data, current, (p) => report({ ...p, restarts: restarts.length }), shouldStop);
      return { ...result, restarts };
    } catch (error) {
      if (!(error instanceof CollapseDetected)) throw error;
      restarts.push({ collapsedAtStep: error.step, alphaBetaLearningRate: current.alphaBetaLearningRate, learningRate: current.learningRate });
      if (restarts.length > settings.collapseRestarts) throw collapsedError(settings, restarts);
      current = afterCollapse(current);
    }
  }
}

function collapsedError(settings: TrainSettings, restarts: CollapseRestart[]): DclError {
  const where = restarts.map((r) => `step ${r.collapsedAtStep} (alphaBetaLearningRate ${r.alphaBetaLearningRate}, learningRate ${r.learningRate})`).join(', ');
  return new DclError(
    'E_COLLAPSED',
    `Training collapsed: every image of ${settings.collapsePatience} batches in a row got the same code, ${restarts.length === 1 ? 'in its one run' : `in each of ${restarts.length} runs`}, at ${where}; ` +
      'try another options.seed or a lower options.learningRate',
  );
}

/** The CPU training loop, one run. */
export function cpuTrainLoop(
  data: TrainData,
  settings: TrainSettings,
  report: (p: LoopProgress) => void,
  shouldStop: () => boolean,
): TrainResult {
  const setup = prepareTraining(data, settings);
  const { layout, inputShape, network, total, schedule, scalars } = setup;
  const params = network.parameters();
  const optimizer =
    settings.optimizer === 'sgd'
      ? new SGD(params, { lr: settings.learningRate, momentum: settings.momentum, weightDecay: settings.weightDecay, schedule })
      : new AdamW(params, { lr: settings.learningRate, weightDecay: settings.weightDecay, schedule });

  const [c, h, w] = inputShape;
  const head = settings.attributeWeight > 0 && data.attributes ? new AttributeHead(attributeClasses(data.attributes), layout.n, settings.attributeLearningRate) : null;
  let lastLoss = Number.NaN;
  const progress = progressReporter(setup, settings, report);
  const guard = collapseGuard(settings);
  for (let step = 0; step < total; step++) {
    if (shouldStop()) throw abortedError(step, total);
    const spread = codeNormAt(settings, step, total);
    if (spread !== null) network.setCodeNorm(spread);
    const { batch, count, images } = setup.nextBatch();
    const x = new Var(new Tensor(images, [count, c, h, w]));
    const out = network.forward(x);
    const p = out.data;
    const gradP = new Float32Array(p.length);
    const alpha = Math.exp(scalars.values[0]);
    const beta = scalars.values[1];
    const weights = settings.hardNegatives < 1 ? hardNegativeWeights(p, layout.n, batch, settings.hardNegatives) : batch.weights;
    const method = methodAt(settings, step, total);
    const distinct = distinctCodes(p, count, layout);
    const pair = batchLoss(p, count, layout, { method, omega: settings.omega, roundingShare: settings.roundingShare }, batch.pairs, batch.labels, weights, alpha, beta, gradP);
    const { gradAlpha, gradBeta } = pair;
    let loss = pair.loss;
    if (head) {
      const attribute = head.loss(p, count, batch.images.map((i) => data.attributes![i]), settings.attributeWeight, gradP);
      loss += attribute.loss;
      head.step(attribute.gradParameters);
    }
    if (!Number.isFinite(loss)) throw divergedError(loss, step);
    floorSigmoidGradient(p, gradP, settings.sigmoidGradientFloor);
    optimizer.zeroGrad();
    backward(out, new Tensor(gradP, [count, layout.n]));
    optimizer.step();
    if (settings.learnAlphaBeta) scalars.step([gradAlpha * alpha, gradBeta]);
    lastLoss = loss;
    progress(step, count, loss, distinct);
    guard(step, distinct);
  }
  return trainResult(setup, settings, network.foldedStateDict(), lastLoss);
}

function modelFrom(result: TrainResult): Model {
  const layout = parseLayout(result.settings.layout);
  const { codeNorm: _folded, codeNormEnd: _end, codeCentre: _centre, gain: _init, ...plain } = result.settings.network;
  const network = new DclS({ codeDims: layout.n, inputShape: result.inputShape, ...plain });
  network.loadStateDict(result.state, { strict: true });
  return new Model(network, {
    layout,
    method: result.settings.method,
    alpha: result.alpha,
    beta: result.beta,
    preprocessing: result.settings.preprocessing ?? { inputShape: result.inputShape, normalize: 'none' },
    training: { ...result.settings, steps: result.steps, finalLoss: result.finalLoss, restarts: result.restarts, libraryVersion: LIBRARY_VERSION },
    encoding: { mirrorAverage: result.settings.mirrorAverage },
  });
}

/** Trains on the calling thread (blocks it); same results as train() for the same options. */
export function trainSync(options: TrainOptions): Model {
  const { data, settings } = checkTrainOptions(options);
  const signal = options.signal;
  const result = trainLoop(data, settings, (p) => options.onProgress?.(p), () => signal?.aborted === true);
  return modelFrom(result);
}

/**
 * Trains a DCL-S code model. Resolves to a Model; rejects with a DclError (E_ARG for bad options,
 * E_ABORTED when options.signal aborts). Runs in a worker thread unless options.worker is false.
 */
export async function train(options: TrainOptions): Promise<Model> {
  const { data, settings } = checkTrainOptions(options);
  const signal = options.signal;
  if (signal?.aborted) throw new DclError('E_ABORTED', 'Training was aborted before it started');
  if (options.worker === false) {
    // The same loop on the calling thread: it blocks the event loop until training ends (for
    // scripts and tests that want no worker); the default runs it in a worker thread.
    return trainSync(options);
  }
  const stop = new Int32Array(new SharedArrayBuffer(4));
  const worker = new Worker(fileURLToPath(import.meta.url), {
    workerData: { kind: 'dcl-train', data, settings, stop },
  });
  const onAbort = () => Atomics.store(stop, 0, 1);
  signal?.addEventListener('abort', onAbort);
  try {
    const result = await new Promise<TrainResult>((resolve, reject) => {
      worker.on('message', (message: { kind: string; progress?: TrainProgress; result?: TrainResult; error?: { code: string; message: string } }) => {
        if (message.kind === 'progress' && message.progress) {
          try {
            options.onProgress?.(message.progress);
          } catch (error) {
            Atomics.store(stop, 0, 1);
            reject(error);
          }
        } else if (message.kind === 'done' && message.result) resolve(message.result);
        else if (message.kind === 'error' && message.error)
          reject(new DclError((message.error.code as DclError['code']) ?? 'E_NATIVE', message.error.message));
      });
      worker.on('error', (error) => reject(new DclError('E_NATIVE', `The training worker failed: ${error.message}`, { cause: error })));
      worker.on('exit', (code) => {
        if (code !== 0) reject(new DclError('E_NATIVE', `The training worker exited with code ${code}`));
      });
    });
    return modelFrom(result);
  } finally {
    signal?.removeEventListener('abort', onAbort);
    void worker.terminate();
  }
}

// The worker side: runs when this module is loaded as a worker by train().
if (!isMainThread && (workerData as { kind?: string } | null)?.kind === 'dcl-train' && parentPort) {
  const { data, settings, stop } = workerData as { data: TrainData; settings: TrainSettings; stop: Int32Array };
  const port = parentPort;
  try {
    const result = trainLoop(
      data,
      settings,
      (progress) => port.postMessage({ kind: 'progress', progress }),
      () => Atomics.load(stop, 0) !== 0,
    );
    port.postMessage({ kind: 'done', result });
  } catch (error) {
    const e = error as { code?: string; message?: string };
    port.postMessage({ kind: 'error', error: { code: e.code ?? 'E_NATIVE', message: e.message ?? String(error) } });
  }
}

export interface EncodeInput {
  /** N images of `shape`: the network size, or the stored size of the model's preprocessing (centre-cropped). */
  images: Float32Array;
  shape: [number, number, number];
}

/** Image files (paths) or encoded images (Buffers / Uint8Arrays), decoded as the model's preprocessing says. */
export type EncodeSources = readonly (string | Uint8Array)[];

export interface EncodeOptions {
  /** Images per forward pass (default 64). */
  batchSize?: number;
  /** Stops between batches; the promise rejects with DclError E_ABORTED. */
  signal?: AbortSignal;
  /** 'cpu', 'cuda' or 'auto', as train()'s options.device (default: DCL_DEVICE, else 'cpu'). */
  device?: DeviceOption;
}

/**
 * Codes of images: one int32 per image (dimension i of the layout in bits [iQ, (i+1)Q)). Input is
 * arrays ({ images, shape }) or image files / Buffers, which are decoded and preprocessed as the
 * model was trained (lib/images.ts; off the event loop). Works in batches of options.batchSize,
 * yielding to the event loop between batches.
 */
export async function encode(model: Model, input: EncodeInput | EncodeSources, options: EncodeOptions = {}): Promise<Int32Array> {
  if (Array.isArray(input)) {
    if (!(model instanceof Model)) throw new DclError('E_ARG', `Expected a Model for model but received ${describe(model)}`);
    const pre = modelImagePreprocessing(model);
    const o = plainObject(options, 'options');
    const decoded = await loadImages(input as EncodeSources, pre, { size: 'network', signal: o.signal as AbortSignal | undefined });
    input = { images: decoded.images, shape: decoded.shape };
  }
  const { images, count, per, batchSize, signal, crop, device } = checkEncode(model, input as EncodeInput, options);
  if (device === 'cuda') return cudaEncode(model, { images, count, batchSize, signal, crop });
  const out = new Int32Array(count);
  for (let start = 0; start < count; start += batchSize) {
    if (signal?.aborted) throw new DclError('E_ABORTED', `Encoding was aborted after ${start} of ${count} images`);
    const n = Math.min(batchSize, count - start);
    out.set(model.codesOf(crop(images, start, n), n), start);
    if (start + n < count) await new Promise((resolve) => setImmediate(resolve));
  }
  return out;
}

/** The model's image pipeline, or a DclError when it was trained on arrays made by the caller. */
export function modelImagePreprocessing(model: Model): ImagePreprocessing {
  const p = model.preprocessing as Partial<ImagePreprocessing>;
  if (typeof p.color !== 'string')
    throw new DclError(
      'E_ARG',
      "Expected a model trained on images (its preprocessing says how to decode them) but this one was trained on arrays made by the caller: encode { images, shape } prepared the same way instead",
    );
  return resolvePreprocessing(p as ImagePreprocessing, 'model.preprocessing');
}

/** encode of arrays on the calling thread in one go. */
export function encodeSync(model: Model, input: EncodeInput, options: { batchSize?: number; device?: DeviceOption } = {}): Int32Array {
  const { images, count, batchSize, crop, device } = checkEncode(model, input, options);
  if (device === 'cuda') return cudaEncodeSync(model, { images, count, batchSize, crop });
  const out = new Int32Array(count);
  for (let start = 0; start < count; start += batchSize) {
    const n = Math.min(batchSize, count - start);
    out.set(model.codesOf(crop(images, start, n), n), start);
  }
  return out;
}

function checkEncode(model: Model, input: EncodeInput, options: EncodeOptions) {
  if (!(model instanceof Model)) throw new DclError('E_ARG', `Expected a Model for model but received ${describe(model)}`);
  const i = plainObject(input, 'input');
  // A training set ({ images, labels, shape }) or a loadDataset() result can be encoded as it is:
  // the other fields are ignored.
  knownKeys(i, ['images', 'shape', 'labels', 'count', 'names', 'files', 'skipped', 'fromCache', 'decoded', 'cacheFile'], 'input');
  if (!(i.images instanceof Float32Array)) throw new DclError('E_ARG', `Expected a Float32Array for input.images but received ${describe(i.images)}`);
  const expected = model.architecture.inputShape;
  const per = expected[0] * expected[1] * expected[2];
  const shape = i.shape;
  const same = (a: readonly number[]) => Array.isArray(shape) && shape.length === 3 && shape.every((d, k) => d === a[k]);
  // Images stored with a margin (as for training with augmentation) are centre-cropped.
  let stored: [number, number, number] | null = null;
  const p = model.preprocessing as Partial<ImagePreprocessing>;
  const pre = typeof p.color === 'string' ? modelImagePreprocessing(model) : null;
  if (pre) {
    const s = imageShape(pre, 'stored');
    if (!same(expected) && same(s)) stored = s;
  }
  if (!same(expected) && stored === null)
    throw new DclError('E_SHAPE', `Expected [${expected.join(', ')}] (the model's input) for input.shape but received ${describe(shape)}`);
  const inPer = stored ? stored[0] * stored[1] * stored[2] : per;
  if (i.images.length % inPer !== 0)
    throw new DclError('E_SHAPE', `Expected a multiple of ${inPer} values (whole images) for input.images but received ${i.images.length}`);
  const o = plainObject(options, 'options');
  knownKeys(o, ['batchSize', 'signal', 'device'], 'options');
  if (o.signal !== undefined && !(o.signal instanceof AbortSignal)) throw new DclError('E_ARG', `Expected an AbortSignal for options.signal but received ${describe(o.signal)}`);
  const batchSize = num(o.batchSize, 'options.batchSize', 64, 1, 65536, true);
  const count = i.images.length / inPer;
  const crop = (images: Float32Array, start: number, n: number): Float32Array => {
    if (stored === null || pre === null) return images.subarray(start * per, (start + n) * per);
    const batch = { images: images.subarray(start * inPer, (start + n) * inPer), shape: stored, count: n };
    return augmentBatch(batch, pre, { flip: false, shift: 0, scale: 0 }).images;
  };
  return { images: i.images, count, per, batchSize, signal: o.signal as AbortSignal | undefined, crop, device: encodeDevice(model, o.device) };
}
