// Device-resident training and encoding on the CUDA backend: train({ device: 'cuda' }) and
// encode(model, x, { device: 'cuda' }) (lib/train.ts dispatches here).
//
// The CUDA trainer mirrors the CPU trainLoop of lib/train.ts step for step, starting from the
// same set-up (lib/train-setup.ts prepareTraining): the same DCL-S network and initialisation
// (built on the host, with the same seed, then calibrated on the host by calibrateOutputLayer),
// the same batches and random views, the same loss variants (rounding straight-through, dp, std,
// float: the device batch loss, native/cuda/batch_loss.cu, whose CPU oracle is batchLoss), AdamW with the same schedule and weight decay (the device Adam kernel is
// bit-identical to the CPU's), and alpha / beta learnt by the same float64 Adam on the host. At
// the end the weights come back into the network, and the result is the same TrainResult as the
// CPU's, so train() makes the same kind of Model.
//
// What crosses the bus per step: in, the batch images ([B, C, H, W] float32) and the pair lists
// (pairs, labels, weights, and the per-image occurrence lists built from them); out, three
// float64 values (the loss, d/dalpha, d/dbeta) and the batch's outputs (B x n float32, for the
// distinct codes the progress and the collapse guard count); with a sigmoid gradient floor, dL/dp
// (B x n) goes out and back. Weights, gradients, Adam moments and every
// activation live in device buffers allocated once, before the first step, from the caching
// allocator (sized for the largest batch; smaller batches use their start), and handed back when
// training ends. The step's kernels are queued on one stream; the downloads of the outputs and of
// the three values are the step's only waits.
//
// The device program is written against DeviceOps, a table of the launchers over buffer numbers.
// cudaOps() is the CUDA backend; test/cuda-train.test.ts also runs the same program on host
// buffers and the CPU kernels, where it must give the CPU trainer's results bit for bit.
import {
  abortedError,
  blendDpWithRounding,
  collapseGuard,
  distinctCodes,
  divergedError,
  floorSigmoidGradient,
  methodAt,
  prepareTraining,
  progressReporter,
  trainResult,
} from './train-setup.js';
import type { LoopProgress, PairLossValue } from './train-setup.js';
import type { TrainData, TrainResult, TrainSettings } from './train.js';
import { cudaAvailable, requireCuda } from './cuda.js';
import { DclError } from './errors.js';
import { averageInPlace, mirrorImages } from './model.js';
import type { Model, TrainMethod } from './model.js';
import { quantize } from './codes.js';
import { Tensor } from './tensor.js';
import { native } from './native.js';
import { AbsTanh, AbsTanhMaxPool2d, Conv2d, DclS, Flatten, Identity, Linear, MaxPool2d, Sigmoid } from './nn.js';
import type { Module } from './nn.js';
import type { Var } from './autograd.js';
import { describe } from './validate.js';

// ---------------------------------------------------------------------------------------------
// The device option

/** Where train() and encode() run: the CPU, the CUDA device, or the device when one is usable. */
export type DeviceOption = 'cpu' | 'cuda' | 'auto';
const DEVICES: readonly DeviceOption[] = ['cpu', 'cuda', 'auto'];

/**
 * The device when options.device is not given: the DCL_DEVICE environment variable ('cpu',
 * 'cuda' or 'auto'), else 'cpu'. The CPU is the default because its results are reproducible bit
 * for bit (same seed, ISA and threads) and codes from it and from the GPU can differ at rounding
 * boundaries; DCL_DEVICE=auto sends every train() and encode() to the GPU without a code change.
 */
export function defaultDevice(): DeviceOption {
  const env = process.env.DCL_DEVICE;
  if (env === undefined || env === '') return 'cpu';
  if (!(DEVICES as readonly string[]).includes(env))
    throw new DclError('E_ARG', `Expected 'cpu', 'cuda' or 'auto' for the environment variable DCL_DEVICE but received ${describe(env)}`);
  return env as DeviceOption;
}

/** options.device checked: 'cpu', 'cuda' or 'auto' (undefined: defaultDevice()). */
export function deviceOption(value: unknown, name: string): DeviceOption {
  if (value === undefined) return defaultDevice();
  if (typeof value !== 'string' || !(DEVICES as readonly string[]).includes(value))
    throw new DclError('E_ARG', `Expected 'cpu', 'cuda' or 'auto' for ${name} but received ${describe(value)}`);
  return value as DeviceOption;
}

/**
 * What the CUDA trainer cannot do yet for these settings (a phrase naming the option), or null:
 * SGD, code normalisation or centring (network.codeNorm > 0, the default for 'dp' and Q >= 8;
 * network.codeCentre) and hard-negative mining (hardNegatives < 1).
 */
export function cudaTrainingUnsupported(settings: TrainSettings): string | null {
  if (settings.optimizer !== 'adamw') return `options.optimizer ${describe(settings.optimizer)}`;
  if ((settings.network.codeNorm ?? 0) > 0) return `options.network.codeNorm ${describe(settings.network.codeNorm)}`;
  if (settings.network.codeCentre === true) return 'options.network.codeCentre true';
  if (settings.hardNegatives < 1) return `options.hardNegatives ${describe(settings.hardNegatives)}`;
  if (settings.attributeWeight > 0) return 'options.data.attributes (the attribute term)';
  return null;
}

/**
 * The device train() runs on: 'cpu' or 'cuda'. 'auto' is CUDA when a device is usable
 * (capabilities().cuda.usable) and the settings are ones the CUDA trainer supports, else the CPU.
 * 'cuda' throws E_ARG for settings it does not support yet and E_CUDA (with the reason) when CUDA
 * is not usable here.
 */
export function trainDevice(value: unknown, settings: TrainSettings): 'cpu' | 'cuda' {
  const device = deviceOption(value, 'options.device');
  if (device === 'cpu') return 'cpu';
  const unsupported = cudaTrainingUnsupported(settings);
  if (device === 'auto') return unsupported === null && cudaAvailable() ? 'cuda' : 'cpu';
  if (unsupported !== null)
    throw new DclError('E_ARG', `Expected options the CUDA trainer supports with options.device 'cuda' but received ${unsupported}: not supported on CUDA yet (use device 'cpu')`);
  requireCuda("options.device 'cuda'");
  return 'cuda';
}

/** What in the model's network the CUDA forward cannot run (a phrase), or null. */
export function cudaNetworkUnsupported(network: DclS): string | null {
  try {
    networkLayers(network);
    return null;
  } catch (error) {
    if (error instanceof DclError) return error.message;
    throw error;
  }
}

/** The device encode() runs on: as trainDevice, for a model's network. */
export function encodeDevice(model: Model, value: unknown): 'cpu' | 'cuda' {
  const device = deviceOption(value, 'options.device');
  if (device === 'cpu') return 'cpu';
  const unsupported = cudaNetworkUnsupported(model.network);
  if (device === 'auto') return unsupported === null && cudaAvailable() ? 'cuda' : 'cpu';
  if (unsupported !== null) throw new DclError('E_ARG', unsupported);
  requireCuda("options.device 'cuda'");
  return 'cuda';
}

// ---------------------------------------------------------------------------------------------
// The launchers the device program uses

type HostArray = Float32Array | Int32Array | Uint32Array | Float64Array;

/**
 * The launchers over device buffer numbers (argument orders and shapes of lib/native.ts's cuda*
 * functions). Every output is overwritten; calls are queued in order; download waits.
 */
export interface DeviceOps {
  alloc(bytes: number): number;
  free(buffer: number): void;
  upload(buffer: number, data: HostArray): void;
  download(buffer: number, out: HostArray): void;
  conv2dForward(x: number, w: number, b: number | null, y: number, shape: number[]): void;
  conv2dBackwardInput(dy: number, w: number, dx: number, shape: number[]): void;
  conv2dBackwardWeight(x: number, dy: number, dw: number, db: number | null, shape: number[]): void;
  /** fused: |tanh| + max-pool; else max-pool. */
  poolForward(fused: boolean, x: number, y: number, argmax: number, shape: number[]): void;
  poolBackward(fused: boolean, dy: number, argmax: number, x: number, y: number, dx: number, shape: number[]): void;
  absTanhForward(x: number, y: number, n: number): void;
  absTanhBackward(dy: number, x: number, y: number, dx: number, n: number): void;
  sigmoidForward(x: number, y: number, n: number): void;
  sigmoidBackward(dy: number, y: number, dx: number, n: number): void;
  linearForward(x: number, w: number, b: number | null, y: number, shape: number[]): void;
  linearBackwardInput(dy: number, w: number, dx: number, shape: number[]): void;
  linearBackwardWeight(x: number, dy: number, dw: number, db: number | null, shape: number[]): void;
  /** shape [N, n, P, 2^Q, method code]; result [loss, d/dalpha, d/dbeta] (host). */
  batchLoss(
    p: number,
    gradP: number,
    pairs: Int32Array,
    labels: Float32Array,
    weights: Float32Array,
    result: Float64Array,
    shape: number[],
    alpha: number,
    beta: number,
    weightSum: number,
    omega: number,
  ): void;
  quantizePack(p: number, codes: number, shape: number[]): void;
  adamUpdate(
    param: number,
    grad: number,
    m: number,
    v: number,
    n: number,
    lr: number,
    beta1: number,
    beta2: number,
    eps: number,
    weightDecay: number,
    biasCorrection1: number,
    biasCorrection2Sqrt: number,
  ): void;
}

/** The CUDA backend's launchers (bindings/cuda.cpp). */
export function cudaOps(): DeviceOps {
  return {
    alloc: (bytes) => native.cudaAlloc(Math.max(4, bytes)),
    free: (b) => native.cudaFree(b),
    upload: (b, data) => native.cudaUpload(b, data),
    download: (b, out) => native.cudaDownload(b, out),
    conv2dForward: (x, w, b, y, s) => native.cudaConv2dForward(x, w, b, y, s),
    conv2dBackwardInput: (dy, w, dx, s) => native.cudaConv2dBackwardInput(dy, w, dx, s),
    conv2dBackwardWeight: (x, dy, dw, db, s) => native.cudaConv2dBackwardWeight(x, dy, dw, db, s),
    poolForward: (fused, x, y, argmax, s) =>
      fused ? native.cudaAbsTanhMaxPool2dForward(x, y, argmax, s) : native.cudaMaxPool2dForward(x, y, argmax, s),
    poolBackward: (fused, dy, argmax, x, y, dx, s) =>
      fused ? native.cudaAbsTanhMaxPool2dBackward(dy, argmax, x, y, dx, s, false) : native.cudaMaxPool2dBackward(dy, argmax, dx, s, false),
    absTanhForward: (x, y, n) => native.cudaAbsTanhForward(x, y, n),
    absTanhBackward: (dy, x, y, dx, n) => native.cudaAbsTanhBackward(dy, x, y, dx, n),
    sigmoidForward: (x, y, n) => native.cudaSigmoidForward(x, y, n),
    sigmoidBackward: (dy, y, dx, n) => native.cudaSigmoidBackward(dy, y, dx, n),
    linearForward: (x, w, b, y, s) => native.cudaLinearForward(x, w, b, y, s),
    linearBackwardInput: (dy, w, dx, s) => native.cudaLinearBackwardInput(dy, w, dx, s),
    linearBackwardWeight: (x, dy, dw, db, s) => native.cudaLinearBackwardWeight(x, dy, dw, db, s),
    batchLoss: (p, g, pairs, labels, weights, result, s, alpha, beta, weightSum, omega) =>
      native.cudaBatchLoss(p, g, pairs, labels, weights, result, s, alpha, beta, weightSum, omega),
    quantizePack: (p, codes, s) => native.cudaQuantizePack(p, codes, s),
    adamUpdate: (p, g, m, v, n, lr, b1, b2, eps, wd, c1, c2) => native.cudaAdamUpdate(p, g, m, v, n, lr, b1, b2, eps, wd, c1, c2),
  };
}

/** The method codes of cudaBatchLoss. */
export const BATCH_LOSS_METHOD = { rounding: 0, dp: 1, std: 2, float: 3 } as const;

// ---------------------------------------------------------------------------------------------
// DCL-S as a device program

type Chw = [number, number, number];

type LayerPlan =
  | { kind: 'conv'; module: Conv2d; cin: number; cout: number; k: [number, number]; stride: [number, number]; padding: [number, number]; input: Chw; output: Chw }
  | { kind: 'pool'; fused: boolean; k: [number, number]; stride: [number, number]; input: Chw; output: Chw }
  | { kind: 'absTanh' | 'sigmoid'; size: number }
  | { kind: 'linear'; module: Linear; inF: number; outF: number }
  | { kind: 'alias'; size: number };

/**
 * The network's layers in order with their shapes, or E_ARG naming the first layer the CUDA
 * forward cannot run (anything but Conv2d, |tanh| + max-pool, max-pool, |tanh|, Linear, Sigmoid,
 * Identity and Flatten: a BatchNorm1d, for one, is not supported on CUDA yet).
 */
function networkLayers(network: DclS): LayerPlan[] {
  const modules: [string, Module][] = [
    ...network.features.children().map(([name, m]): [string, Module] => [`features.${name}`, m]),
    ['flatten', network.flatten],
    ...network.classifier.children().map(([name, m]): [string, Module] => [`classifier.${name}`, m]),
  ];
  const plans: LayerPlan[] = [];
  let shape: number[] = [...network.config.inputShape];
  const size = () => shape.reduce((a, b) => a * b, 1);
  const unsupported = (name: string, m: Module, why = '') =>
    new DclError(
      'E_ARG',
      `Expected a network of Conv2d, max-pooling, |tanh|, Linear and Sigmoid layers for the CUDA backend but received ${describe(m)} at ${name}${why}: not supported on CUDA yet (use device 'cpu')`,
    );
  for (const [name, m] of modules) {
    if (m instanceof Conv2d) {
      if (shape.length !== 3) throw unsupported(name, m, ' after the flatten');
      const [cout, cin, kh, kw] = m.weight.shape;
      const [c, h, w] = shape;
      if (cin !== c) throw unsupported(name, m, ` (${cin} input channels for ${c})`);
      const oh = Math.floor((h + 2 * m.padding[0] - kh) / m.stride[0]) + 1;
      const ow = Math.floor((w + 2 * m.padding[1] - kw) / m.stride[1]) + 1;
      plans.push({ kind: 'conv', module: m, cin, cout, k: [kh, kw], stride: m.stride, padding: m.padding, input: [c, h, w], output: [cout, oh, ow] });
      shape = [cout, oh, ow];
    } else if (m instanceof AbsTanhMaxPool2d || m instanceof MaxPool2d) {
      if (shape.length !== 3) throw unsupported(name, m, ' after the flatten');
      const [c, h, w] = shape;
      const oh = Math.floor((h - m.kernelSize[0]) / m.stride[0]) + 1;
      const ow = Math.floor((w - m.kernelSize[1]) / m.stride[1]) + 1;
      plans.push({ kind: 'pool', fused: m instanceof AbsTanhMaxPool2d, k: m.kernelSize, stride: m.stride, input: [c, h, w], output: [c, oh, ow] });
      shape = [c, oh, ow];
    } else if (m instanceof AbsTanh || m instanceof Sigmoid) {
      plans.push({ kind: m instanceof AbsTanh ? 'absTanh' : 'sigmoid', size: size() });
    } else if (m instanceof Linear) {
      const [outF, inF] = m.weight.shape;
      if (inF !== size()) throw unsupported(name, m, ` (${inF} inputs for ${size()})`);
      plans.push({ kind: 'linear', module: m, inF, outF });
      shape = [outF];
    } else if (m instanceof Flatten) {
      if (m.startDim !== 1) throw unsupported(name, m, ` (startDim ${m.startDim})`);
      shape = [size()];
      plans.push({ kind: 'alias', size: size() });
    } else if (m instanceof Identity) {
      plans.push({ kind: 'alias', size: size() });
    } else {
      throw unsupported(name, m);
    }
  }
  if (shape.length !== 1 || shape[0] !== network.config.codeDims)
    throw new DclError('E_ARG', `Expected a network ending in ${network.config.codeDims} outputs for the CUDA backend but received shape [${shape.join(', ')}]`);
  return plans;
}

interface DeviceParam {
  v: Var;
  size: number;
  buffer: number;
  grad: number;
  m: number;
  v2: number;
}

/**
 * DCL-S on the device for batches of up to maxBatch images: its weights (and, for training,
 * gradients and Adam moments) and one buffer per activation, gradient and argmax, allocated at
 * construction and freed by dispose(). Slot 0 is the input; layer l reads slot in[l] and writes
 * slot out[l] (Identity and Flatten alias their input).
 */
export class DeviceNet {
  readonly params: DeviceParam[] = [];
  readonly input: number;
  readonly output: number;
  /** dL/d output (written by the loss) when training, else -1. */
  readonly outputGrad: number;
  private readonly plans: LayerPlan[];
  private readonly slotIn: number[] = [];
  private readonly slotOut: number[] = [];
  private readonly acts: number[] = [];
  private readonly grads: number[] = [];
  private readonly argmax: number[] = [];
  private readonly owned: number[] = [];
  private readonly byVar = new Map<Var, DeviceParam>();
  private disposed = false;

  constructor(
    readonly ops: DeviceOps,
    readonly network: DclS,
    readonly maxBatch: number,
    readonly training: boolean,
  ) {
    this.plans = networkLayers(network);
    try {
      const [c, h, w] = network.config.inputShape;
      const slotSizes: number[] = [c * h * w];
      for (const plan of this.plans) {
        this.slotIn.push(slotSizes.length - 1);
        if (plan.kind === 'alias') {
          this.slotOut.push(slotSizes.length - 1);
          this.argmax.push(-1);
          continue;
        }
        const out = plan.kind === 'conv' || plan.kind === 'pool' ? plan.output[0] * plan.output[1] * plan.output[2] : plan.kind === 'linear' ? plan.outF : plan.size;
        slotSizes.push(out);
        this.slotOut.push(slotSizes.length - 1);
        this.argmax.push(plan.kind === 'pool' ? this.alloc(maxBatch * out * 4) : -1);
      }
      for (let s = 0; s < slotSizes.length; s++) {
        this.acts.push(this.alloc(maxBatch * slotSizes[s] * 4));
        // No gradient for the input (slot 0).
        this.grads.push(training && s > 0 ? this.alloc(maxBatch * slotSizes[s] * 4) : -1);
      }
      this.input = this.acts[0];
      this.output = this.acts[this.acts.length - 1];
      this.outputGrad = training ? this.grads[this.grads.length - 1] : -1;
      for (const v of network.parameters()) {
        const size = v.size;
        const p: DeviceParam = { v, size, buffer: this.alloc(size * 4), grad: -1, m: -1, v2: -1 };
        ops.upload(p.buffer, v.data);
        if (training) {
          p.grad = this.alloc(size * 4);
          p.m = this.alloc(size * 4);
          p.v2 = this.alloc(size * 4);
          const zeros = new Float32Array(size);
          ops.upload(p.m, zeros);
          ops.upload(p.v2, zeros);
        }
        this.params.push(p);
        this.byVar.set(v, p);
      }
    } catch (error) {
      this.dispose();
      throw error;
    }
  }

  private alloc(bytes: number): number {
    const b = this.ops.alloc(Math.max(4, bytes));
    this.owned.push(b);
    return b;
  }

  private param(v: Var | null): DeviceParam | null {
    return v === null ? null : this.byVar.get(v)!;
  }

  /** f_model of the `count` images in the input buffer, into the output buffer. */
  forward(count: number): void {
    const ops = this.ops;
    this.plans.forEach((plan, l) => {
      const x = this.acts[this.slotIn[l]];
      const y = this.acts[this.slotOut[l]];
      switch (plan.kind) {
        case 'conv': {
          const b = this.param(plan.module.bias);
          ops.conv2dForward(x, this.param(plan.module.weight)!.buffer, b ? b.buffer : null, y, convShape(plan, count));
          break;
        }
        case 'pool':
          ops.poolForward(plan.fused, x, y, this.argmax[l], poolShape(plan, count));
          break;
        case 'absTanh':
          ops.absTanhForward(x, y, count * plan.size);
          break;
        case 'sigmoid':
          ops.sigmoidForward(x, y, count * plan.size);
          break;
        case 'linear': {
          const b = this.param(plan.module.bias);
          ops.linearForward(x, this.param(plan.module.weight)!.buffer, b ? b.buffer : null, y, [count, plan.inF, plan.outF]);
          break;
        }
        case 'alias':
          break;
      }
    });
  }

  /** Gradients of every parameter from dL/d output (outputGrad), after forward(count). */
  backward(count: number): void {
    if (!this.training) throw new DclError('E_ARG', 'Expected a DeviceNet built for training but this one is for inference');
    const ops = this.ops;
    for (let l = this.plans.length - 1; l >= 0; l--) {
      const plan = this.plans[l];
      if (plan.kind === 'alias') continue;
      const sIn = this.slotIn[l], sOut = this.slotOut[l];
      const x = this.acts[sIn], y = this.acts[sOut];
      const dy = this.grads[sOut];
      const dx = this.grads[sIn]; // -1 for the input: not computed
      switch (plan.kind) {
        case 'conv': {
          const w = this.param(plan.module.weight)!, b = this.param(plan.module.bias);
          const shape = convShape(plan, count);
          ops.conv2dBackwardWeight(x, dy, w.grad, b ? b.grad : null, shape);
          if (dx >= 0) ops.conv2dBackwardInput(dy, w.buffer, dx, shape);
          break;
        }
        case 'pool':
          if (dx >= 0) ops.poolBackward(plan.fused, dy, this.argmax[l], x, y, dx, poolShape(plan, count));
          break;
        case 'absTanh':
          if (dx >= 0) ops.absTanhBackward(dy, x, y, dx, count * plan.size);
          break;
        case 'sigmoid':
          if (dx >= 0) ops.sigmoidBackward(dy, y, dx, count * plan.size);
          break;
        case 'linear': {
          const w = this.param(plan.module.weight)!, b = this.param(plan.module.bias);
          const shape = [count, plan.inF, plan.outF];
          ops.linearBackwardWeight(x, dy, w.grad, b ? b.grad : null, shape);
          if (dx >= 0) ops.linearBackwardInput(dy, w.buffer, dx, shape);
          break;
        }
      }
    }
  }

  /** Copies the device weights into the network's parameters (the host copy). */
  downloadWeights(): void {
    for (const p of this.params) {
      this.ops.download(p.buffer, p.v.data);
      p.v.value.markChanged();
    }
  }

  /** Gives every buffer back to the allocator (idempotent). */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    for (const b of this.owned) {
      try {
        this.ops.free(b);
      } catch {
        // Freeing is best effort: a device error has already been reported by the failing call.
      }
    }
    this.owned.length = 0;
  }
}

function convShape(plan: Extract<LayerPlan, { kind: 'conv' }>, count: number): number[] {
  const [, h, w] = plan.input;
  return [count, plan.cin, h, w, plan.cout, plan.k[0], plan.k[1], plan.stride[0], plan.stride[1], plan.padding[0], plan.padding[1]];
}

function poolShape(plan: Extract<LayerPlan, { kind: 'pool' }>, count: number): number[] {
  const [c, h, w] = plan.input;
  return [count, c, h, w, plan.k[0], plan.k[1], plan.stride[0], plan.stride[1]];
}

// ---------------------------------------------------------------------------------------------
// Training

/**
 * The training loop on the device, one run (trainLoop of lib/train.ts calls it for settings.device
 * 'cuda'): synchronous, `shouldStop` polled between steps. `ops` defaults to the CUDA backend.
 */
export function cudaTrainLoop(
  data: TrainData,
  settings: TrainSettings,
  report: (p: LoopProgress) => void,
  shouldStop: () => boolean,
  ops: DeviceOps = cudaOps(),
): TrainResult {
  const unsupported = cudaTrainingUnsupported(settings);
  if (unsupported !== null) throw new DclError('E_ARG', `Expected options the CUDA trainer supports but received ${unsupported}: not supported on CUDA yet (use device 'cpu')`);
  // Everything up to the optimiser as the CPU trainLoop does it (the same draws from the same
  // generators, so the same weights, calibration and batches).
  const setup = prepareTraining(data, settings);
  const { layout, maxBatch, network, total, schedule, scalars } = setup;
  // AdamW as lib/optim.ts (betas 0.9 / 0.999, eps 1e-8, decoupled weight decay on every parameter).
  const beta1 = 0.9, beta2 = 0.999, eps = 1e-8;

  const result = new Float64Array(3);
  const outputs = new Float32Array(maxBatch * layout.n);
  const outputGrads = new Float32Array(maxBatch * layout.n);
  const net = new DeviceNet(ops, network, maxBatch, true);
  try {
    let lastLoss = Number.NaN;
    const progress = progressReporter(setup, settings, report);
    const guard = collapseGuard(settings);
    for (let step = 0; step < total; step++) {
      if (shouldStop()) throw abortedError(step, total);
      const { batch, count, images } = setup.nextBatch();
      ops.upload(net.input, images);
      net.forward(count);
      const p = outputs.subarray(0, count * layout.n);
      ops.download(net.output, p);
      const distinct = distinctCodes(p, count, layout);
      const method = methodAt(settings, step, total);
      const alpha = Math.exp(scalars.values[0]);
      const beta = scalars.values[1];
      let weightSum = 0;
      for (let k = 0; k < batch.weights.length; k++) weightSum += batch.weights[k];
      const P = batch.labels.length;
      const pairLoss = (m: TrainMethod): PairLossValue => {
        ops.batchLoss(net.output, net.outputGrad, batch.pairs, batch.labels, batch.weights, result, [count, layout.n, P, layout.levels, BATCH_LOSS_METHOD[m]], alpha, beta, weightSum, settings.omega);
        return { loss: result[0], gradAlpha: result[1], gradBeta: result[2] };
      };
      let { loss, gradAlpha, gradBeta } = pairLoss(method);
      const share = method === 'dp' ? settings.roundingShare : 0;
      if (share > 0 || settings.sigmoidGradientFloor > 0) {
        // The blend and the floor on the host: dL/dp is count x n values, small beside the batch's images.
        const gradP = outputGrads.subarray(0, count * layout.n);
        ops.download(net.outputGrad, gradP);
        if (share > 0) {
          const gradDp = Float32Array.from(gradP);
          const dp = { loss, gradAlpha, gradBeta };
          const rounding = pairLoss('rounding');
          ops.download(net.outputGrad, gradP);
          ({ loss, gradAlpha, gradBeta } = blendDpWithRounding(share, dp, gradDp, rounding, gradP));
        }
        floorSigmoidGradient(p, gradP, settings.sigmoidGradientFloor);
        ops.upload(net.outputGrad, gradP);
      }
      if (!Number.isFinite(loss)) throw divergedError(loss, step);
      net.backward(count);
      const lr = settings.learningRate * schedule(step);
      const t = step + 1;
      const c1 = 1 - beta1 ** t, c2 = Math.sqrt(1 - beta2 ** t);
      for (const p of net.params) ops.adamUpdate(p.buffer, p.grad, p.m, p.v2, p.size, lr, beta1, beta2, eps, settings.weightDecay, c1, c2);
      if (settings.learnAlphaBeta) scalars.step([gradAlpha * alpha, gradBeta]);
      lastLoss = loss;
      progress(step, count, loss, distinct);
      guard(step, distinct);
    }
    net.downloadWeights();
    return trainResult(setup, settings, network.stateDict(), lastLoss);
  } finally {
    net.dispose();
  }
}

// ---------------------------------------------------------------------------------------------
// Encoding

/**
 * Codes of a model on the device, for batches of up to maxBatch images: the weights go up once;
 * per batch the images go in and the int32 codes come out (the forward and the quantization run
 * on the device). dispose() frees the buffers.
 */
export class DeviceEncoder {
  private readonly net: DeviceNet;
  private readonly codesBuffer: number;
  private readonly layout: { n: number; q: number };

  constructor(
    readonly model: Model,
    readonly maxBatch: number,
    readonly ops: DeviceOps = cudaOps(),
  ) {
    this.layout = { n: model.layout.n, q: model.layout.q };
    this.net = new DeviceNet(ops, model.network, maxBatch, false);
    try {
      this.codesBuffer = ops.alloc(maxBatch * 4);
    } catch (error) {
      this.net.dispose();
      throw error;
    }
  }

  /** Codes of `count` preprocessed images at the network size (count <= maxBatch). */
  codes(images: Float32Array, count: number): Int32Array {
    const ops = this.ops;
    const [c, h, w] = this.model.architecture.inputShape;
    if (this.model.encoding.mirrorAverage) {
      // Both passes' outputs come back and are averaged and quantised here, as Model.codesOf does.
      const p = this.probabilities(images.subarray(0, count * c * h * w), count);
      averageInPlace(p, this.probabilities(mirrorImages(images, count, [c, h, w]), count));
      return quantize(new Tensor(p, [count, this.layout.n]), this.model.layout);
    }
    ops.upload(this.net.input, images.subarray(0, count * c * h * w));
    this.net.forward(count);
    ops.quantizePack(this.net.output, this.codesBuffer, [count, this.layout.n, this.layout.q]);
    const out = new Int32Array(count);
    ops.download(this.codesBuffer, out);
    return out;
  }

  private probabilities(images: Float32Array, count: number): Float32Array {
    this.ops.upload(this.net.input, images);
    this.net.forward(count);
    const p = new Float32Array(count * this.layout.n);
    this.ops.download(this.net.output, p);
    return p;
  }

  dispose(): void {
    this.net.dispose();
    this.ops.free(this.codesBuffer);
  }
}

/** What encode / encodeSync need from lib/train.ts's checkEncode. */
export interface EncodeJob {
  count: number;
  batchSize: number;
  signal?: AbortSignal;
  crop: (images: Float32Array, start: number, n: number) => Float32Array;
  images: Float32Array;
}

/** encode()'s loop on the device (yields to the event loop between batches, stops on abort). */
export async function cudaEncode(model: Model, job: EncodeJob, ops: DeviceOps = cudaOps()): Promise<Int32Array> {
  const { count, batchSize, signal, crop, images } = job;
  const out = new Int32Array(count);
  const encoder = new DeviceEncoder(model, Math.min(batchSize, Math.max(1, count)), ops);
  try {
    for (let start = 0; start < count; start += batchSize) {
      if (signal?.aborted) throw new DclError('E_ABORTED', `Encoding was aborted after ${start} of ${count} images`);
      const n = Math.min(batchSize, count - start);
      out.set(encoder.codes(crop(images, start, n), n), start);
      if (start + n < count) await new Promise((resolve) => setImmediate(resolve));
    }
  } finally {
    encoder.dispose();
  }
  return out;
}

/** encodeSync's loop on the device. */
export function cudaEncodeSync(model: Model, job: EncodeJob, ops: DeviceOps = cudaOps()): Int32Array {
  const { count, batchSize, crop, images } = job;
  const out = new Int32Array(count);
  const encoder = new DeviceEncoder(model, Math.min(batchSize, Math.max(1, count)), ops);
  try {
    for (let start = 0; start < count; start += batchSize) {
      const n = Math.min(batchSize, count - start);
      out.set(encoder.codes(crop(images, start, n), n), start);
    }
  } finally {
    encoder.dispose();
  }
  return out;
}


