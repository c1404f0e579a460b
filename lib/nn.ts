// Layers over the autograd ops, initialisers, and the DCL-S network of DESIGN.md.
//
// Every layer owns a BufferSite, so its output buffers are kept from one training step to the next
// (see lib/autograd.ts for when a buffer is reused). Parameters are leaf Vars with requiresGrad,
// named by their path in the module tree ('features.0.weight'), which is also how stateDict() /
// loadStateDict() export and import them for the model file.
import { DclError } from './errors.js';
import * as ag from './autograd.js';
import { BufferSite, Var } from './autograd.js';
import type { VarLike } from './autograd.js';
import { defaultGenerator, Rng } from './random.js';
import { conv2dPrepare, kernelSettings } from './ops.js';
import type { PreparedConv2dWeight } from './ops.js';
import { Tensor } from './tensor.js';
import { describe, knownKeys, plainObject } from './validate.js';

// ---------------------------------------------------------------------------------------------
// Initialisers

/**
 * How weights start. Biases start at zero except with 'torch'.
 * - 'dcl' (default): N(0, gain^2 / fanIn) with gain 1.5. DESIGN.md's reference run found that
 *   initialisation decides whether anything trains: with PyTorch's default (uniform with std
 *   1/sqrt(3 fanIn), a gain of about 0.58) every |tanh| layer shrinks its input's spread, and after
 *   the six layers of DCL-S the sigmoid outputs hardly vary across images (std ~0.0015), so every
 *   image gets the same code and the pair loss has nothing to separate. A gain of 1.5 keeps each
 *   layer's pre-activations at about the spread of its inputs, so a fresh network's outputs already
 *   differ between images (measured on smooth random 64x64 images: output std across images 0.011
 *   with 'dcl', 0.0013 with 'torch'; test/nn.test.ts); zero biases leave that spread to the weights.
 * - 'kaiming': He normal, N(0, gain^2 / fanIn) with gain sqrt(2).
 * - 'xavier': Glorot uniform, U(-a, a) with a = gain sqrt(6 / (fanIn + fanOut)), gain 1.
 * - 'torch': PyTorch's default for Conv2d / Linear: weights and biases U(-b, b), b = 1/sqrt(fanIn).
 * - a function (weight, fanIn, fanOut, rng) that fills the weight array (biases zero).
 */
export type Initializer = 'dcl' | 'kaiming' | 'xavier' | 'torch' | ((weight: Float32Array, fanIn: number, fanOut: number, rng: Rng) => void);

export interface InitOptions {
  init?: Initializer;
  /** Overrides the initialiser's gain (ignored by 'torch' and functions). */
  gain?: number;
  /** Generator for the initial values. Default: the shared default generator (manualSeed). */
  rng?: Rng;
}

const INITIALIZERS = ['dcl', 'kaiming', 'xavier', 'torch'];

function checkInit(o: Record<string, unknown>, name: string): { init: Initializer; gain: number | undefined; rng: Rng } {
  const init = (o.init ?? 'dcl') as Initializer;
  if (typeof init !== 'function' && !INITIALIZERS.includes(init as string))
    throw new DclError('E_ARG', `Expected one of ${INITIALIZERS.join(', ')} or a function for ${name}.init but received ${describe(init)}`);
  const gain = o.gain;
  if (gain !== undefined && (typeof gain !== 'number' || !(gain > 0 && Number.isFinite(gain))))
    throw new DclError('E_ARG', `Expected a positive number for ${name}.gain but received ${describe(gain)}`);
  const rng = o.rng ?? defaultGenerator();
  if (!(rng instanceof Rng)) throw new DclError('E_ARG', `Expected an Rng for ${name}.rng but received ${describe(rng)}`);
  return { init, gain: gain as number | undefined, rng };
}

/** Fills weight (and bias, when given) as `init` says; fanIn / fanOut as in DESIGN.md. */
export function initialize(
  weight: Float32Array,
  bias: Float32Array | null,
  fanIn: number,
  fanOut: number,
  init: Initializer = 'dcl',
  rng: Rng = defaultGenerator(),
  gain?: number,
): void {
  if (typeof init === 'function') {
    init(weight, fanIn, fanOut, rng);
    bias?.fill(0);
    return;
  }
  switch (init) {
    case 'dcl':
      rng.fillNormal(weight, 0, (gain ?? 1.5) / Math.sqrt(fanIn));
      bias?.fill(0);
      return;
    case 'kaiming':
      rng.fillNormal(weight, 0, (gain ?? Math.SQRT2) / Math.sqrt(fanIn));
      bias?.fill(0);
      return;
    case 'xavier': {
      const a = (gain ?? 1) * Math.sqrt(6 / (fanIn + fanOut));
      rng.fillUniform(weight, -a, a);
      bias?.fill(0);
      return;
    }
    case 'torch': {
      const b = 1 / Math.sqrt(fanIn);
      rng.fillUniform(weight, -b, b);
      if (bias) rng.fillUniform(bias, -b, b);
      return;
    }
    default:
      throw new DclError('E_ARG', `Expected one of ${INITIALIZERS.join(', ')} or a function for init but received ${describe(init)}`);
  }
}

// ---------------------------------------------------------------------------------------------
// Module

/** A named parameter as exported: a copy of its values and its shape. */
export interface NamedArray {
  shape: number[];
  data: Float32Array;
}

export abstract class Module {
  /** Training mode (train()) or evaluation mode (eval()); no layer here behaves differently yet. */
  training = true;
  private readonly params = new Map<string, Var>();
  private readonly modules = new Map<string, Module>();
  /** The layer's kept output buffers. */
  protected readonly site = new BufferSite();

  /** The layer applied to x. */
  abstract forward(x: VarLike): Var;

  protected registerParameter(name: string, value: Var): Var {
    if (this.params.has(name) || this.modules.has(name)) throw new DclError('E_ARG', `Expected a new name for a parameter but received '${name}' twice`);
    this.params.set(name, value);
    if (value.name === undefined) value.name = name;
    return value;
  }

  protected registerModule<M extends Module>(name: string, module: M): M {
    if (!(module instanceof Module)) throw new DclError('E_ARG', `Expected a Module for ${name} but received ${describe(module)}`);
    if (this.params.has(name) || this.modules.has(name)) throw new DclError('E_ARG', `Expected a new name for a module but received '${name}' twice`);
    this.modules.set(name, module);
    return module;
  }

  /** Direct sub-modules with their names. */
  children(): [string, Module][] {
    return [...this.modules.entries()];
  }

  /** Every parameter with its dotted path ('features.0.weight'), in registration order. */
  namedParameters(prefix = ''): [string, Var][] {
    const out: [string, Var][] = [];
    for (const [name, p] of this.params) out.push([prefix + name, p]);
    for (const [name, m] of this.modules) out.push(...m.namedParameters(`${prefix}${name}.`));
    return out;
  }

  parameters(): Var[] {
    return this.namedParameters().map(([, p]) => p);
  }

  /** Number of parameter values. */
  parameterCount(): number {
    let n = 0;
    for (const p of this.parameters()) n += p.size;
    return n;
  }

  train(mode = true): this {
    if (typeof mode !== 'boolean') throw new DclError('E_ARG', `Expected a boolean for mode but received ${describe(mode)}`);
    this.training = mode;
    for (const m of this.modules.values()) m.train(mode);
    return this;
  }

  eval(): this {
    return this.train(false);
  }

  /** Marks every parameter's gradient empty (see autograd.zeroGrad). */
  zeroGrad(): void {
    ag.zeroGrad(this.parameters());
  }

  /** Bytes of the output buffers kept by this module and its sub-modules. */
  bufferBytes(): number {
    let n = this.site.bytes;
    for (const m of this.modules.values()) n += m.bufferBytes();
    return n;
  }

  /** Drops the kept output buffers (this module and its sub-modules). */
  clearBuffers(): void {
    this.site.clear();
    for (const m of this.modules.values()) m.clearBuffers();
  }

  /** A copy of every parameter by name (for the model file). */
  stateDict(): Record<string, NamedArray> {
    const out: Record<string, NamedArray> = {};
    for (const [name, p] of this.namedParameters()) out[name] = { shape: [...p.shape], data: new Float32Array(p.data) };
    return out;
  }

  /**
   * Copies parameters in by name. Each entry is { shape, data: Float32Array } or a Tensor, of the
   * parameter's exact shape (E_SHAPE otherwise). strict (default true): every parameter must be
   * present and no other name (E_ARG otherwise). Nothing is copied when any entry is wrong.
   */
  loadStateDict(dict: Record<string, NamedArray | Tensor>, options: { strict?: boolean } = {}): void {
    const o = plainObject(options, 'options');
    knownKeys(o, ['strict'], 'options');
    const strict = o.strict ?? true;
    if (typeof strict !== 'boolean') throw new DclError('E_ARG', `Expected a boolean for options.strict but received ${describe(strict)}`);
    if (dict === null || typeof dict !== 'object') throw new DclError('E_ARG', `Expected an object of named arrays for dict but received ${describe(dict)}`);
    const named = new Map(this.namedParameters());
    const copies: [Var, Float32Array][] = [];
    if (strict) {
      const unknown = Object.keys(dict).filter((k) => !named.has(k));
      if (unknown.length > 0)
        throw new DclError('E_ARG', `Expected only the parameter names ${[...named.keys()].join(', ')} in dict but received ${unknown.map((k) => `'${k}'`).join(', ')}`);
      const missing = [...named.keys()].filter((k) => !(k in dict));
      if (missing.length > 0) throw new DclError('E_ARG', `Expected every parameter in dict but ${missing.map((k) => `'${k}'`).join(', ')} ${missing.length === 1 ? 'is' : 'are'} missing`);
    }
    for (const [name, p] of named) {
      if (!(name in dict)) continue;
      const entry = dict[name] as unknown;
      const data = entry instanceof Tensor ? entry.data : (entry as NamedArray | null)?.data;
      const shape = entry instanceof Tensor ? entry.shape : (entry as NamedArray | null)?.shape;
      if (!(data instanceof Float32Array)) throw new DclError('E_ARG', `Expected a Float32Array for dict['${name}'].data but received ${describe(data)}`);
      if (!Array.isArray(shape) || shape.length !== p.shape.length || shape.some((d, i) => d !== p.shape[i]) || data.length !== p.size)
        throw new DclError(
          'E_SHAPE',
          `Expected shape [${p.shape.join(', ')}] (${p.size} values) for dict['${name}'] but received shape ${describe(shape)} with ${data.length} values`,
        );
      copies.push([p, data]);
    }
    for (const [p, data] of copies) {
      p.data.set(data);
      p.value.markChanged();
    }
  }
}

function positiveInt(value: unknown, name: string, max = 1 << 20): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 1 || value > max)
    throw new DclError('E_ARG', `Expected a positive integer no larger than ${max} for ${name} but received ${describe(value)}`);
  return value;
}

type Pair = number | [number, number];

function pairValue(value: unknown, name: string, min: number): [number, number] {
  const v = Array.isArray(value) ? value : [value, value];
  if (v.length !== 2 || !v.every((x) => typeof x === 'number' && Number.isSafeInteger(x) && x >= min && x <= 1 << 16))
    throw new DclError('E_ARG', `Expected an integer >= ${min} or an [h, w] pair for ${name} but received ${describe(value)}`);
  return v as [number, number];
}

// ---------------------------------------------------------------------------------------------
// Layers

export interface Conv2dLayerOptions extends InitOptions {
  stride?: Pair;
  /** Zeros on each side. Default 0. */
  padding?: Pair;
  /** Default true. */
  bias?: boolean;
}

/** 2-D convolution layer: weight [out, in, kh, kw], bias [out]. */
export class Conv2d extends Module {
  readonly weight: Var;
  readonly bias: Var | null;
  readonly stride: [number, number];
  readonly padding: [number, number];
  readonly kernelSize: [number, number];

  constructor(inChannels: number, outChannels: number, kernelSize: Pair, options: Conv2dLayerOptions = {}) {
    super();
    const o = plainObject(options, 'options');
    knownKeys(o, ['stride', 'padding', 'bias', 'init', 'gain', 'rng'], 'options');
    const cin = positiveInt(inChannels, 'inChannels');
    const cout = positiveInt(outChannels, 'outChannels');
    this.kernelSize = pairValue(kernelSize, 'kernelSize', 1);
    this.stride = pairValue(o.stride ?? 1, 'options.stride', 1);
    this.padding = pairValue(o.padding ?? 0, 'options.padding', 0);
    if (this.padding[0] >= this.kernelSize[0] || this.padding[1] >= this.kernelSize[1])
      throw new DclError('E_ARG', `Expected padding smaller than the kernel for options.padding but received ${describe(o.padding)}`);
    if (o.bias !== undefined && typeof o.bias !== 'boolean') throw new DclError('E_ARG', `Expected a boolean for options.bias but received ${describe(o.bias)}`);
    const { init, gain, rng } = checkInit(o, 'options');
    const [kh, kw] = this.kernelSize;
    const w = Tensor.zeros([cout, cin, kh, kw]);
    const b = o.bias === false ? null : Tensor.zeros([cout]);
    initialize(w.data, b ? b.data : null, cin * kh * kw, cout * kh * kw, init, rng, gain);
    w.markChanged();
    b?.markChanged();
    this.weight = this.registerParameter('weight', ag.parameter(w));
    this.bias = b ? this.registerParameter('bias', ag.parameter(b)) : null;
  }

  /**
   * The layer applied to x. While no graph is recorded (noGrad, inference) the forward uses the
   * weights prepared for the active kernel (ops.conv2dPrepare: the Winograd transform or the packed
   * panel, made once instead of on every call), cached here and keyed by the weight tensor, its
   * version, the ISA and the conv algorithm, so an optimiser step, loadStateDict, markChanged(),
   * setIsa or setConvAlgorithm makes the next inference prepare them again. Results are bit for
   * bit those of the unprepared forward. Writing into weight.data directly requires
   * weight.markChanged() (see Tensor.version). While recording (training) nothing is cached.
   */
  forward(x: VarLike): Var {
    const options: ag.Conv2dOptions = { stride: this.stride, padding: this.padding, site: this.site };
    if (!ag.isGradEnabled()) options.prepared = this.preparedWeight();
    return ag.conv2d(x, this.weight, this.bias, options);
  }

  private prepared: { tensor: Tensor; version: number; weights: PreparedConv2dWeight } | null = null;

  /** The prepared weights for the weight's current values and the active ISA / conv algorithm. */
  private preparedWeight(): PreparedConv2dWeight {
    const tensor = this.weight.value;
    const c = this.prepared;
    if (c !== null && c.tensor === tensor && c.version === tensor.version && c.weights.settings === kernelSettings()) return c.weights;
    const weights = conv2dPrepare(tensor, { stride: this.stride, padding: this.padding });
    this.prepared = { tensor, version: tensor.version, weights };
    return weights;
  }

  /** Bytes of the kept output buffers and of the prepared inference weights. */
  override bufferBytes(): number {
    return super.bufferBytes() + (this.prepared?.weights.data.byteLength ?? 0);
  }

  /** Drops the kept output buffers and the prepared inference weights. */
  override clearBuffers(): void {
    super.clearBuffers();
    this.prepared = null;
  }
}

/** Fully connected layer: weight [out, in], bias [out]. */
export class Linear extends Module {
  readonly weight: Var;
  readonly bias: Var | null;

  constructor(inFeatures: number, outFeatures: number, options: InitOptions & { bias?: boolean } = {}) {
    super();
    const o = plainObject(options, 'options');
    knownKeys(o, ['bias', 'init', 'gain', 'rng'], 'options');
    const inF = positiveInt(inFeatures, 'inFeatures', 1 << 26);
    const outF = positiveInt(outFeatures, 'outFeatures', 1 << 26);
    if (o.bias !== undefined && typeof o.bias !== 'boolean') throw new DclError('E_ARG', `Expected a boolean for options.bias but received ${describe(o.bias)}`);
    const { init, gain, rng } = checkInit(o, 'options');
    const w = Tensor.zeros([outF, inF]);
    const b = o.bias === false ? null : Tensor.zeros([outF]);
    initialize(w.data, b ? b.data : null, inF, outF, init, rng, gain);
    w.markChanged();
    b?.markChanged();
    this.weight = this.registerParameter('weight', ag.parameter(w));
    this.bias = b ? this.registerParameter('bias', ag.parameter(b)) : null;
  }

  forward(x: VarLike): Var {
    return ag.linear(x, this.weight, this.bias, { site: this.site });
  }
}

/** Max-pooling over kernel x kernel windows; stride defaults to the kernel. */
export class MaxPool2d extends Module {
  readonly kernelSize: [number, number];
  readonly stride: [number, number];

  constructor(kernelSize: Pair, stride?: Pair) {
    super();
    this.kernelSize = pairValue(kernelSize, 'kernelSize', 1);
    this.stride = stride === undefined ? this.kernelSize : pairValue(stride, 'stride', 1);
  }

  forward(x: VarLike): Var {
    return ag.maxPool2d(x, { kernelSize: this.kernelSize, stride: this.stride, site: this.site });
  }
}

/** g(x) = |tanh(x)|, the paper's activation. */
export class AbsTanh extends Module {
  forward(x: VarLike): Var {
    return ag.absTanh(x, { site: this.site });
  }
}

/**
 * Fused |tanh| + max-pool over kernel x kernel windows (stride defaults to the kernel): the
 * values of MaxPool2d(AbsTanh(x)), computed as tanh of the window's largest |x| in one pass.
 */
export class AbsTanhMaxPool2d extends Module {
  readonly kernelSize: [number, number];
  readonly stride: [number, number];

  constructor(kernelSize: Pair, stride?: Pair) {
    super();
    this.kernelSize = pairValue(kernelSize, 'kernelSize', 1);
    this.stride = stride === undefined ? this.kernelSize : pairValue(stride, 'stride', 1);
  }

  forward(x: VarLike): Var {
    return ag.absTanhMaxPool2d(x, { kernelSize: this.kernelSize, stride: this.stride, site: this.site });
  }
}

/**
 * Passes its input through. DclS keeps one in the slot of the |tanh| that AbsTanhMaxPool2d
 * absorbed, so that the Sequential indices (features.{3i}.weight ...) stay what they were.
 */
export class Identity extends Module {
  forward(x: VarLike): Var {
    if (!(x instanceof Var)) throw new DclError('E_ARG', `Expected a Var for x but received ${describe(x)}`);
    return x;
  }
}

export class Sigmoid extends Module {
  forward(x: VarLike): Var {
    return ag.sigmoid(x, { site: this.site });
  }
}

/**
 * Batch normalisation over the features of [N, F] inputs: y = gamma (x - mean) / sqrt(var + eps)
 * + beta, with the batch's mean and (biased) variance in training mode, which also move running
 * averages (momentum 0.1, unbiased variance, as torch.nn.BatchNorm1d); eval mode (or no
 * recording) uses the running averages. With affine false, gamma is the fixed `scale` and beta 0,
 * and the layer has no parameters: DclS's `codeNorm`. With `centreOnly` (and no affine) it only
 * subtracts the mean, y = x - mean, leaving the spread to the layers before: DclS's `codeCentre`.
 */
export class BatchNorm1d extends Module {
  /** The learnable scale and shift (null without affine). */
  readonly gamma: Var | null;
  readonly beta: Var | null;
  /** The fixed scale when not affine (a training schedule may change it between steps). */
  scale: number;
  /** Subtract the mean only (no scaling; see the class comment). */
  readonly centreOnly: boolean;
  readonly runningMean: Float64Array;
  readonly runningVar: Float64Array;
  readonly eps = 1e-5;
  readonly momentum = 0.1;

  constructor(readonly features: number, options: { affine?: boolean; scale?: number; centreOnly?: boolean } = {}) {
    super();
    positiveInt(features, 'features', 1 << 26);
    const o = plainObject(options, 'options');
    knownKeys(o, ['affine', 'scale', 'centreOnly'], 'options');
    const centreOnly = o.centreOnly ?? false;
    if (typeof centreOnly !== 'boolean') throw new DclError('E_ARG', `Expected a boolean for options.centreOnly but received ${describe(o.centreOnly)}`);
    const affine = o.affine ?? true;
    if (typeof affine !== 'boolean') throw new DclError('E_ARG', `Expected a boolean for options.affine but received ${describe(o.affine)}`);
    const scale = o.scale ?? 1;
    if (typeof scale !== 'number' || !Number.isFinite(scale) || scale <= 0)
      throw new DclError('E_ARG', `Expected a positive number for options.scale but received ${describe(o.scale)}`);
    if (affine && o.scale !== undefined) throw new DclError('E_ARG', 'Expected options.scale only with options.affine false (an affine layer learns its scale)');
    if (centreOnly && (affine || o.scale !== undefined))
      throw new DclError('E_ARG', 'Expected options.centreOnly with options.affine false and no options.scale (it subtracts the mean only)');
    this.scale = scale;
    this.centreOnly = centreOnly;
    this.gamma = affine ? this.registerParameter('weight', ag.parameter(Tensor.from(new Float32Array(features).fill(1), [features]))) : null;
    this.beta = affine ? this.registerParameter('bias', ag.parameter(Tensor.zeros([features]))) : null;
    this.runningMean = new Float64Array(features);
    this.runningVar = new Float64Array(features).fill(1);
  }

  /** The scale and shift of feature j (the parameters, or the fixed scale and 0). */
  affineOf(j: number): [number, number] {
    return this.gamma && this.beta ? [this.gamma.data[j], this.beta.data[j]] : [this.scale, 0];
  }

  /** The eval-mode map of feature j as y = k x + c (from the running statistics), for folding. */
  evalMap(j: number): [number, number] {
    if (this.centreOnly) return [1, -this.runningMean[j]];
    const [gamma, beta] = this.affineOf(j);
    const k = gamma / Math.sqrt(this.runningVar[j] + this.eps);
    return [k, beta - k * this.runningMean[j]];
  }

  forward(x: VarLike): Var {
    const f = this.features;
    const training = this.training && ag.isGradEnabled();
    const inputs = this.gamma && this.beta ? [x, this.gamma, this.beta] : [x];
    // The forward's batch statistics, for the backward of the same call.
    const mean = new Float64Array(f);
    const inv = new Float64Array(f);
    return ag.customOp(
      inputs,
      ([t]) => {
        if (t.shape.length !== 2 || t.shape[1] !== f) throw new DclError('E_SHAPE', `Expected [N, ${f}] for x but received ${describe(t.shape)}`);
        const n = t.shape[0];
        const y = Tensor.zeros([n, f]);
        for (let j = 0; j < f; j++) {
          let m = this.runningMean[j];
          let variance = this.runningVar[j];
          if (training) {
            m = 0;
            for (let i = 0; i < n; i++) m += t.data[i * f + j];
            m /= n;
            variance = 0;
            for (let i = 0; i < n; i++) variance += (t.data[i * f + j] - m) ** 2;
            variance /= n;
            this.runningMean[j] += this.momentum * (m - this.runningMean[j]);
            this.runningVar[j] += this.momentum * ((n > 1 ? (variance * n) / (n - 1) : variance) - this.runningVar[j]);
          }
          mean[j] = m;
          inv[j] = 1 / Math.sqrt(variance + this.eps);
          const [g, b] = this.affineOf(j);
          const k = this.centreOnly ? 1 : g * inv[j];
          for (let i = 0; i < n; i++) y.data[i * f + j] = (t.data[i * f + j] - m) * k + b;
        }
        return y;
      },
      (gy, ctx, [t]) => {
        if (!training) throw new DclError('E_ARG', 'Expected BatchNorm1d in training mode for a backward pass (eval mode uses fixed statistics) but it was in eval mode');
        const n = t.shape[0];
        const affine = inputs.length === 3;
        const dx = ctx.needsGrad(0) ? ctx.out(0).data : null;
        const dg = affine && ctx.needsGrad(1) ? ctx.out(1).data : null;
        const db = affine && ctx.needsGrad(2) ? ctx.out(2).data : null;
        for (let j = 0; j < f; j++) {
          let sumDy = 0, sumDyXhat = 0;
          for (let i = 0; i < n; i++) {
            const dy = gy.data[i * f + j];
            sumDy += dy;
            sumDyXhat += dy * (t.data[i * f + j] - mean[j]) * inv[j];
          }
          if (dg) dg[j] = sumDyXhat;
          if (db) db[j] = sumDy;
          if (dx && this.centreOnly) {
            // y = x - mean: dx = dy - mean(dy) (in place over gy too: each element read first).
            for (let i = 0; i < n; i++) dx[i * f + j] = gy.data[i * f + j] - sumDy / n;
          } else if (dx) {
            // Written in place over gy when the engine hands gy's buffer out: each element is
            // read before it is written.
            const k = (this.affineOf(j)[0] * inv[j]) / n;
            for (let i = 0; i < n; i++) {
              const xhat = (t.data[i * f + j] - mean[j]) * inv[j];
              dx[i * f + j] = k * (n * gy.data[i * f + j] - sumDy - xhat * sumDyXhat);
            }
          }
        }
      },
      { name: 'batchNorm1d' },
    );
  }
}

/** [N, C, H, W] -> [N, C*H*W] (no copy). */
export class Flatten extends Module {
  constructor(readonly startDim = 1) {
    super();
  }

  forward(x: VarLike): Var {
    return ag.flatten(x, this.startDim);
  }
}

/** Modules applied in order, named '0', '1', ... */
export class Sequential extends Module {
  private readonly layers: Module[] = [];

  constructor(...modules: Module[]) {
    super();
    for (const m of modules) this.append(m);
  }

  append(module: Module): this {
    this.registerModule(String(this.layers.length), module);
    this.layers.push(module);
    return this;
  }

  get length(): number {
    return this.layers.length;
  }

  at(i: number): Module {
    const m = this.layers[i];
    if (m === undefined) throw new DclError('E_ARG', `Expected an index below ${this.layers.length} for i but received ${describe(i)}`);
    return m;
  }

  forward(x: VarLike): Var {
    let v = x as VarLike;
    for (const m of this.layers) v = m.forward(v);
    if (!(v instanceof Var)) throw new DclError('E_ARG', 'Expected a Sequential with at least one module but it is empty');
    return v;
  }
}

// ---------------------------------------------------------------------------------------------
// DCL-S

export interface DclSOptions extends InitOptions {
  /** n: the number of code dimensions (outputs). */
  codeDims: number;
  /** [C, H, W] of an input image. Default [1, 64, 64]. */
  inputShape?: [number, number, number];
  /** Output channels of the conv layers (one pool after each). Default [32, 64, 128, 256]. */
  channels?: number[];
  /** Kernel size of each conv layer ('same' padding k/2). Default [5, 3, 3, 3]. */
  kernels?: number[];
  /** Width of the hidden fully connected layer. Default 256. */
  hidden?: number;
  /** Seed of the initial weights when no rng is given. Default 0. */
  seed?: number;
  /**
   * Code normalisation during training: a BatchNorm1d without learnable parameters between the
   * last Linear and the sigmoid, which holds each output's pre-sigmoid values at zero mean and
   * this standard deviation over every batch (so no output can drift to a constant code). 0 or
   * absent: off (default). foldedStateDict() folds it into that Linear, so a trained network is
   * saved and run as a plain DclS.
   */
  codeNorm?: number;
  /**
   * Code centring during training: the same place as codeNorm, but it only subtracts each
   * output's batch mean from its pre-sigmoid values, so no output can drift to a constant code
   * while the spread stays free to grow (BatchNorm1d's `centreOnly`). Not with codeNorm > 0.
   * Folded like codeNorm. Default false.
   */
  codeCentre?: boolean;
}

/** The architecture, as stored in a model file's metadata. */
export interface DclSConfig {
  architecture: 'dcl-s';
  codeDims: number;
  inputShape: [number, number, number];
  channels: number[];
  kernels: number[];
  hidden: number;
}

/**
 * DESIGN.md's DCL-S: [conv k x k (padding k/2) -> |tanh| -> max-pool 2x2] per entry of channels,
 * flatten, fc hidden -> |tanh| -> fc codeDims -> sigmoid. Parameters: features.{3i}.weight/bias
 * for conv i, classifier.0.* (fc hidden) and classifier.2.* (fc codeDims). With the defaults and
 * codeDims 32: 1,445,408 parameters.
 */
export class DclS extends Module {
  readonly features: Sequential;
  readonly flatten: Flatten;
  readonly classifier: Sequential;
  readonly config: DclSConfig;
  /** The code normalisation's standard deviation, 0 when off (training only; see DclSOptions.codeNorm). */
  readonly codeNorm: number;
  /** Whether the code layer's outputs are centred in training (DclSOptions.codeCentre). */
  readonly codeCentre: boolean;
  /** The training-time normalisation or centring between the code layer and the sigmoid, if any. */
  private readonly codeLayer: BatchNorm1d | null;

  constructor(options: DclSOptions) {
    super();
    if (options === undefined) throw new DclError('E_ARG', 'Expected an options object with codeDims for options but received undefined');
    const o = plainObject(options, 'options');
    knownKeys(o, ['codeDims', 'inputShape', 'channels', 'kernels', 'hidden', 'init', 'gain', 'rng', 'seed', 'codeNorm', 'codeCentre'], 'options');
    const codeNorm = o.codeNorm ?? 0;
    if (typeof codeNorm !== 'number' || !Number.isFinite(codeNorm) || codeNorm < 0 || codeNorm > 100)
      throw new DclError('E_ARG', `Expected a number from 0 to 100 for options.codeNorm but received ${describe(o.codeNorm)}`);
    const codeCentre = o.codeCentre ?? false;
    if (typeof codeCentre !== 'boolean') throw new DclError('E_ARG', `Expected a boolean for options.codeCentre but received ${describe(o.codeCentre)}`);
    if (codeCentre && codeNorm > 0) throw new DclError('E_ARG', 'Expected options.codeCentre or options.codeNorm > 0, not both (code normalisation already centres)');
    const codeDims = positiveInt(o.codeDims, 'options.codeDims', 1 << 16);
    const inputShape = (o.inputShape ?? [1, 64, 64]) as [number, number, number];
    if (!Array.isArray(inputShape) || inputShape.length !== 3)
      throw new DclError('E_ARG', `Expected [C, H, W] for options.inputShape but received ${describe(inputShape)}`);
    inputShape.forEach((d, i) => positiveInt(d, `options.inputShape[${i}]`, 1 << 16));
    const channels = (o.channels ?? [32, 64, 128, 256]) as number[];
    if (!Array.isArray(channels) || channels.length === 0)
      throw new DclError('E_ARG', `Expected a non-empty array of channel counts for options.channels but received ${describe(channels)}`);
    channels.forEach((c, i) => positiveInt(c, `options.channels[${i}]`, 1 << 16));
    const kernels = (o.kernels ?? (channels.length === 4 ? [5, 3, 3, 3] : [5, ...channels.slice(1).map(() => 3)])) as number[];
    if (!Array.isArray(kernels) || kernels.length !== channels.length)
      throw new DclError('E_ARG', `Expected ${channels.length} kernel sizes (one per conv layer) for options.kernels but received ${describe(kernels)}`);
    kernels.forEach((k, i) => positiveInt(k, `options.kernels[${i}]`, 63));
    const hidden = positiveInt(o.hidden ?? 256, 'options.hidden', 1 << 20);
    if (o.seed !== undefined && o.rng !== undefined) throw new DclError('E_ARG', 'Expected either options.seed or options.rng but received both');
    const rng = o.rng !== undefined ? o.rng : new Rng((o.seed as number | undefined) ?? 0);
    if (!(rng instanceof Rng)) throw new DclError('E_ARG', `Expected an Rng for options.rng but received ${describe(rng)}`);
    const init = { init: o.init as Initializer | undefined, gain: o.gain as number | undefined, rng };

    const layers: Module[] = [];
    let [c, h, w] = inputShape;
    channels.forEach((cout, i) => {
      const k = kernels[i];
      layers.push(new Conv2d(c, cout, k, { padding: Math.floor(k / 2), ...init }));
      // |tanh| then 2x2 max-pool, fused (same values); the Identity keeps the indices of the
      // unfused [Conv2d, AbsTanh, MaxPool2d] layout, so parameter names are unchanged.
      layers.push(new Identity());
      layers.push(new AbsTanhMaxPool2d(2));
      // 'same' convolution keeps h x w for odd k; even k adds one.
      h = h + 2 * Math.floor(k / 2) - k + 1;
      w = w + 2 * Math.floor(k / 2) - k + 1;
      if (h < 2 || w < 2)
        throw new DclError('E_SHAPE', `Expected an input large enough for ${channels.length} 2x2 poolings for options.inputShape but received ${describe(inputShape)}`);
      h = Math.floor(h / 2);
      w = Math.floor(w / 2);
      c = cout;
    });
    this.features = this.registerModule('features', new Sequential(...layers));
    this.flatten = this.registerModule('flatten', new Flatten());
    const fcHidden = new Linear(c * h * w, hidden, init);
    const fcCode = new Linear(hidden, codeDims, init);
    this.codeLayer =
      codeNorm > 0
        ? new BatchNorm1d(codeDims, { affine: false, scale: codeNorm })
        : codeCentre
          ? new BatchNorm1d(codeDims, { affine: false, centreOnly: true })
          : null;
    const codeLayers = this.codeLayer ? [fcCode, this.codeLayer] : [fcCode];
    this.classifier = this.registerModule('classifier', new Sequential(fcHidden, new AbsTanh(), ...codeLayers, new Sigmoid()));
    this.codeNorm = codeNorm;
    this.codeCentre = codeCentre;
    this.config = { architecture: 'dcl-s', codeDims, inputShape: [...inputShape] as [number, number, number], channels: [...channels], kernels: [...kernels], hidden };
    for (const [name, p] of this.namedParameters()) p.name = name;
  }

  /**
   * The parameters of the plain DclS (no codeNorm) that computes what this network computes in
   * eval mode: the code normalisation, with its running statistics, folded into the Linear before
   * it (w' = k w, b' = k (b - mean) with k = codeNorm / sqrt(var + eps), codeNorm being the
   * spread of the last step when a schedule changed it; k = 1 for codeCentre).
   */
  foldedStateDict(): Record<string, NamedArray> {
    const state = this.stateDict();
    const norm = this.codeLayer;
    if (norm === null) return state;
    const fcCode = this.classifier.children()[2][1] as Linear;
    const weight = state['classifier.2.weight'].data;
    const bias = state['classifier.2.bias'].data;
    const inF = fcCode.weight.shape[1];
    for (let j = 0; j < norm.features; j++) {
      const [k, shift] = norm.evalMap(j);
      for (let q = 0; q < inF; q++) weight[j * inF + q] *= k;
      bias[j] = k * bias[j] + shift;
    }
    return state;
  }

  /**
   * Sets the code normalisation's spread for the steps that follow (a schedule that sharpens the
   * bits as training goes on; see TrainOptions network.codeNormEnd). Only on a network built with
   * codeNorm > 0.
   */
  setCodeNorm(spread: number): void {
    if (this.codeNorm === 0) throw new DclError('E_ARG', 'Expected a DclS built with options.codeNorm > 0 for setCodeNorm but it has no code normalisation');
    if (typeof spread !== 'number' || !Number.isFinite(spread) || spread <= 0 || spread > 100)
      throw new DclError('E_ARG', `Expected a number above 0 and at most 100 for spread but received ${describe(spread)}`);
    this.codeLayer!.scale = spread;
  }

  /** x: [N, C, H, W] images of the configured inputShape; returns f_model(x): [N, codeDims] in (0, 1). */
  forward(x: VarLike): Var {
    const shape = x instanceof Var ? x.shape : (x as { shape?: readonly number[] })?.shape;
    const [c, h, w] = this.config.inputShape;
    if (!Array.isArray(shape) || shape.length !== 4 || shape[1] !== c || shape[2] !== h || shape[3] !== w)
      throw new DclError('E_SHAPE', `Expected images of shape [N, ${c}, ${h}, ${w}] for x but received ${describe(shape)}`);
    return this.classifier.forward(this.flatten.forward(this.features.forward(x)));
  }
}

/** Builds DCL-S (see DclS). */
export function dclS(options: DclSOptions): DclS {
  return new DclS(options);
}
