// Optimisers (SGD with momentum / Nesterov, Adam with decoupled weight decay), learning-rate
// schedules and gradient clipping, over the parameters' gradients (Var.grad).
//
// Parameter groups: pass [{ params, lr, ... }, ...] instead of a list of Vars to give groups their
// own hyperparameters (DESIGN.md: the learnable alpha / beta of the pair loss train with a larger
// learning rate than the network). A schedule multiplies every group's lr by a factor that depends
// on the number of steps taken. All state (moments, step counts) can be exported for a checkpoint
// and loaded back, and a run continued from a checkpoint matches the uninterrupted one exactly.
import { DclError } from './errors.js';
import { Var } from './autograd.js';
import { describe, knownKeys, plainObject } from './validate.js';
import { native } from './native.js';

// ---------------------------------------------------------------------------------------------
// Schedules

/** A description of a schedule (JSON-safe, for checkpoints and model metadata). */
export type ScheduleSpec =
  | { kind: 'constant' }
  | { kind: 'warmup'; warmupSteps: number }
  | { kind: 'cosine'; totalSteps: number; warmupSteps: number; minFactor: number }
  | { kind: 'step'; stepSize: number; gamma: number };

/**
 * A learning-rate schedule: the factor applied to each group's lr at step k (k = steps already
 * taken: 0 for the first step).
 */
export interface Schedule {
  (step: number): number;
  readonly spec: ScheduleSpec;
}

function makeSchedule(spec: ScheduleSpec, f: (k: number) => number): Schedule {
  const s = ((k: number) => f(k)) as Schedule;
  Object.defineProperty(s, 'spec', { value: Object.freeze({ ...spec }), enumerable: true });
  return s;
}

function nonNegInt(value: unknown, name: string): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0)
    throw new DclError('E_ARG', `Expected a non-negative integer for ${name} but received ${describe(value)}`);
  return value;
}

function posInt(value: unknown, name: string): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 1)
    throw new DclError('E_ARG', `Expected a positive integer for ${name} but received ${describe(value)}`);
  return value;
}

function numberIn(value: unknown, name: string, lo: number, hi: number, loOpen = false, hiOpen = false): number {
  const ok =
    typeof value === 'number' && Number.isFinite(value) && (loOpen ? value > lo : value >= lo) && (hiOpen ? value < hi : value <= hi);
  if (!ok)
    throw new DclError('E_ARG', `Expected a number in ${loOpen ? '(' : '['}${lo}, ${hi}${hiOpen ? ')' : ']'} for ${name} but received ${describe(value)}`);
  return value as number;
}

/** Factor 1 at every step. */
export function constantSchedule(): Schedule {
  return makeSchedule({ kind: 'constant' }, () => 1);
}

/** Linear warm-up: factor (k + 1) / warmupSteps for k < warmupSteps, then 1. */
export function warmupSchedule(warmupSteps: number): Schedule {
  const w = posInt(warmupSteps, 'warmupSteps');
  return makeSchedule({ kind: 'warmup', warmupSteps: w }, (k) => Math.min(1, (k + 1) / w));
}

/**
 * Linear warm-up over warmupSteps (default 0), then a half cosine from 1 down to minFactor
 * (default 0) at totalSteps, and minFactor after:
 * factor(k) = minFactor + (1 - minFactor) (1 + cos(pi p)) / 2, p = (k - warmupSteps) / (totalSteps - warmupSteps).
 */
export function cosineSchedule(options: { totalSteps: number; warmupSteps?: number; minFactor?: number }): Schedule {
  const o = plainObject(options, 'options');
  knownKeys(o, ['totalSteps', 'warmupSteps', 'minFactor'], 'options');
  const total = posInt(o.totalSteps, 'options.totalSteps');
  const warmup = nonNegInt(o.warmupSteps ?? 0, 'options.warmupSteps');
  if (warmup >= total) throw new DclError('E_ARG', `Expected options.warmupSteps below options.totalSteps (${total}) but received ${warmup}`);
  const minFactor = numberIn(o.minFactor ?? 0, 'options.minFactor', 0, 1);
  return makeSchedule({ kind: 'cosine', totalSteps: total, warmupSteps: warmup, minFactor }, (k) => {
    if (k < warmup) return (k + 1) / warmup;
    const p = Math.min(1, (k - warmup) / (total - warmup));
    return minFactor + (1 - minFactor) * 0.5 * (1 + Math.cos(Math.PI * p));
  });
}

/** Step decay: factor gamma^floor(k / stepSize). */
export function stepSchedule(options: { stepSize: number; gamma?: number }): Schedule {
  const o = plainObject(options, 'options');
  knownKeys(o, ['stepSize', 'gamma'], 'options');
  const stepSize = posInt(o.stepSize, 'options.stepSize');
  const gamma = numberIn(o.gamma ?? 0.1, 'options.gamma', 0, 1, true, false);
  return makeSchedule({ kind: 'step', stepSize, gamma }, (k) => gamma ** Math.floor(k / stepSize));
}

/** The schedule a spec describes (for a checkpoint's or model file's schedule). */
export function scheduleFromSpec(spec: ScheduleSpec): Schedule {
  const s = plainObject(spec, 'spec') as Partial<Record<string, unknown>>;
  switch (s.kind) {
    case 'constant':
      return constantSchedule();
    case 'warmup':
      return warmupSchedule(s.warmupSteps as number);
    case 'cosine':
      return cosineSchedule({ totalSteps: s.totalSteps as number, warmupSteps: s.warmupSteps as number, minFactor: s.minFactor as number });
    case 'step':
      return stepSchedule({ stepSize: s.stepSize as number, gamma: s.gamma as number });
    default:
      throw new DclError('E_ARG', `Expected a schedule kind of constant, warmup, cosine or step for spec.kind but received ${describe(s.kind)}`);
  }
}

// ---------------------------------------------------------------------------------------------
// Gradient clipping

/** The L2 norm of all the parameters' gradients together (float64), ignoring Vars without one. */
export function gradNorm(params: Iterable<Var>): number {
  let sq = 0;
  for (const p of params) {
    const g = p.grad;
    if (g === null) continue;
    const d = g.data;
    for (let i = 0; i < d.length; i++) sq += d[i] * d[i];
  }
  return Math.sqrt(sq);
}

/**
 * Scales every gradient by maxNorm / norm when their global L2 norm exceeds maxNorm (as
 * torch.nn.utils.clip_grad_norm_); returns the norm before clipping. A non-finite norm leaves the
 * gradients unchanged (check the returned value to skip such a step).
 */
export function clipGradNorm(params: Iterable<Var>, maxNorm: number): number {
  const list = [...params];
  for (const p of list) if (!(p instanceof Var)) throw new DclError('E_ARG', `Expected Vars for params but received ${describe(p)}`);
  numberIn(maxNorm, 'maxNorm', 0, Infinity, true, true);
  const norm = gradNorm(list);
  if (Number.isFinite(norm) && norm > maxNorm) {
    const s = maxNorm / (norm + 1e-6);
    for (const p of list) {
      const g = p.grad;
      if (g === null) continue;
      const d = g.data;
      for (let i = 0; i < d.length; i++) d[i] *= s;
    }
  }
  return norm;
}

// ---------------------------------------------------------------------------------------------
// Optimiser base

/** Hyperparameters of one group, after defaults. */
export interface GroupSettings {
  lr: number;
  weightDecay: number;
}

/** A parameter group as passed in: its Vars and any hyperparameters that differ from the defaults. */
export type ParamGroupSpec<H> = { params: Iterable<Var> } & Partial<H>;

export interface OptimizerState {
  kind: string;
  /** Steps taken (the schedule's k for the next step). */
  stepCount: number;
  /** Each group's settings and its number of parameters. */
  groups: (GroupSettings & Record<string, unknown> & { size: number })[];
  /** Per parameter in group order: its update count and state arrays (copies), or null before its first update. */
  params: ({ step: number; buffers: Record<string, Float32Array> } | null)[];
  schedule: ScheduleSpec | null;
}

interface ParamState {
  step: number;
  buffers: Record<string, Float32Array>;
}

export interface CommonOptions {
  /** Multiplies every group's lr by schedule(k) at step k. Default none (constant). */
  schedule?: Schedule;
  /** Clip the global gradient norm of all groups to this before each step. Default none. */
  maxGradNorm?: number;
}

export abstract class Optimizer<H extends GroupSettings> {
  readonly groups: { params: Var[]; settings: H }[] = [];
  /** Steps taken. */
  stepCount = 0;
  schedule: Schedule | null;
  maxGradNorm: number | null;
  /** The gradient norm before clipping at the last step (NaN when maxGradNorm is not set). */
  lastGradNorm = Number.NaN;
  protected readonly state = new Map<Var, ParamState>();
  abstract readonly kind: string;

  constructor(params: Iterable<Var> | ParamGroupSpec<H>[], defaults: H, common: CommonOptions, check: (h: Record<string, unknown>, name: string) => H) {
    const list = params === null || typeof params !== 'object' || !(Symbol.iterator in (params as object)) ? null : [...(params as Iterable<unknown>)];
    if (list === null || list.length === 0)
      throw new DclError('E_ARG', `Expected a non-empty list of Vars or of parameter groups for params but received ${describe(params)}`);
    const specs: ParamGroupSpec<H>[] = list.every((p) => p instanceof Var) ? [{ params: list as Var[] } as unknown as ParamGroupSpec<H>] : (list as ParamGroupSpec<H>[]);
    const seen = new Set<Var>();
    specs.forEach((spec, g) => {
      const s = plainObject(spec, `params[${g}]`);
      const { params: ps, ...rest } = s;
      const vars = ps !== null && typeof ps === 'object' && Symbol.iterator in (ps as object) ? [...(ps as Iterable<unknown>)] : null;
      if (vars === null || vars.length === 0)
        throw new DclError('E_ARG', `Expected a non-empty list of Vars for params[${g}].params but received ${describe(ps)}`);
      for (const v of vars) {
        if (!(v instanceof Var)) throw new DclError('E_ARG', `Expected Vars in params[${g}].params but received ${describe(v)}`);
        if (!v.isLeaf) throw new DclError('E_ARG', `Expected leaf Vars (parameters) in params[${g}].params but received the output of ${v.node!.op}`);
        if (seen.has(v)) throw new DclError('E_ARG', `Expected each parameter in one group only but ${v.name ? `'${v.name}'` : 'a Var'} appears twice`);
        seen.add(v);
      }
      const settings = check({ ...defaults, ...rest }, `params[${g}]`);
      this.groups.push({ params: vars as Var[], settings });
    });
    const c = plainObject(common, 'options');
    if (c.schedule !== undefined && (typeof c.schedule !== 'function' || !('spec' in c.schedule)))
      throw new DclError('E_ARG', `Expected a Schedule (from constantSchedule, warmupSchedule, cosineSchedule or stepSchedule) for options.schedule but received ${describe(c.schedule)}`);
    this.schedule = (c.schedule as Schedule | undefined) ?? null;
    this.maxGradNorm = c.maxGradNorm === undefined ? null : numberIn(c.maxGradNorm, 'options.maxGradNorm', 0, Infinity, true, true);
  }

  /** Every parameter, group by group. */
  parameters(): Var[] {
    return this.groups.flatMap((g) => g.params);
  }

  /** Marks every parameter's gradient empty. */
  zeroGrad(): void {
    for (const p of this.parameters()) p.zeroGrad();
  }

  /** The learning rate the next step uses for group `group`: lr x schedule(stepCount). */
  currentLr(group = 0): number {
    const g = this.groups[group];
    if (g === undefined) throw new DclError('E_ARG', `Expected a group index below ${this.groups.length} for group but received ${describe(group)}`);
    return g.settings.lr * this.factor();
  }

  private factor(): number {
    if (this.schedule === null) return 1;
    const f = this.schedule(this.stepCount);
    if (!(Number.isFinite(f) && f >= 0)) throw new DclError('E_ARG', `Expected a finite factor >= 0 from the schedule at step ${this.stepCount} but received ${describe(f)}`);
    return f;
  }

  /**
   * One update of every parameter that has a gradient (parameters without one keep their values and
   * state). Clips first when maxGradNorm is set.
   */
  step(): void {
    if (this.maxGradNorm !== null) this.lastGradNorm = clipGradNorm(this.parameters(), this.maxGradNorm);
    const f = this.factor();
    for (const g of this.groups) {
      const lr = g.settings.lr * f;
      for (const p of g.params) {
        const grad = p.grad;
        if (grad === null) continue;
        let s = this.state.get(p);
        if (s === undefined) {
          s = { step: 0, buffers: {} };
          this.state.set(p, s);
        }
        s.step++;
        this.update(p.data, grad.data, lr, g.settings, s);
        p.value.markChanged();
      }
    }
    this.stepCount++;
  }

  protected abstract update(param: Float32Array, grad: Float32Array, lr: number, h: H, state: ParamState): void;

  /** The whole state (settings, step counts, moment arrays copied) for a checkpoint. */
  stateDict(): OptimizerState {
    return {
      kind: this.kind,
      stepCount: this.stepCount,
      groups: this.groups.map((g) => ({ ...(structuredClone(g.settings) as unknown as GroupSettings & Record<string, unknown>), size: g.params.length })),
      params: this.parameters().map((p) => {
        const s = this.state.get(p);
        if (s === undefined) return null;
        const buffers: Record<string, Float32Array> = {};
        for (const [k, v] of Object.entries(s.buffers)) buffers[k] = new Float32Array(v);
        return { step: s.step, buffers };
      }),
      schedule: this.schedule ? { ...this.schedule.spec } : null,
    };
  }

  /**
   * Restores a stateDict() of an optimiser of the same kind over parameters of the same shapes in
   * the same order. Group settings (lr, ...) are restored too; the schedule is kept as constructed
   * (use scheduleFromSpec(state.schedule) to rebuild it).
   */
  loadStateDict(state: OptimizerState): void {
    const s = plainObject(state, 'state') as unknown as OptimizerState;
    if (s.kind !== this.kind) throw new DclError('E_ARG', `Expected the state of an optimiser of kind '${this.kind}' for state.kind but received ${describe(s.kind)}`);
    nonNegInt(s.stepCount, 'state.stepCount');
    if (!Array.isArray(s.groups) || s.groups.length !== this.groups.length || s.groups.some((g, i) => g?.size !== this.groups[i].params.length))
      throw new DclError(
        'E_ARG',
        `Expected ${this.groups.length} groups of sizes [${this.groups.map((g) => g.params.length).join(', ')}] for state.groups but received ${describe(s.groups?.map?.((g) => g?.size))}`,
      );
    const params = this.parameters();
    if (!Array.isArray(s.params) || s.params.length !== params.length)
      throw new DclError('E_ARG', `Expected ${params.length} entries for state.params but received ${describe(s.params)}`);
    const restored = new Map<Var, ParamState>();
    s.params.forEach((entry, i) => {
      if (entry === null) return;
      nonNegInt(entry?.step, `state.params[${i}].step`);
      const buffers: Record<string, Float32Array> = {};
      for (const [k, v] of Object.entries(entry.buffers ?? {})) {
        if (!(v instanceof Float32Array) || v.length !== params[i].size)
          throw new DclError('E_SHAPE', `Expected a Float32Array of ${params[i].size} values for state.params[${i}].buffers.${k} but received ${describe(v)}`);
        buffers[k] = new Float32Array(v);
      }
      restored.set(params[i], { step: entry.step, buffers });
    });
    const settings = s.groups.map((g, i) => {
      const { size: _size, ...rest } = g;
      return this.checkSettings(rest as Record<string, unknown>, `state.groups[${i}]`);
    });
    this.groups.forEach((g, i) => (g.settings = settings[i]));
    this.state.clear();
    for (const [k, v] of restored) this.state.set(k, v);
    this.stepCount = s.stepCount;
  }

  protected abstract checkSettings(h: Record<string, unknown>, name: string): H;
}

// ---------------------------------------------------------------------------------------------
// SGD

export interface SgdSettings extends GroupSettings {
  lr: number;
  /** Momentum factor (0: plain SGD). Default 0. */
  momentum: number;
  /** Dampening of the gradient in the momentum buffer. Default 0. */
  dampening: number;
  /** Nesterov momentum. Default false. */
  nesterov: boolean;
  /** L2 penalty added to the gradient (coupled, as torch.optim.SGD). Default 0. */
  weightDecay: number;
}

function checkSgd(h: Record<string, unknown>, name: string): SgdSettings {
  knownKeys(h, ['lr', 'momentum', 'dampening', 'nesterov', 'weightDecay'], name);
  const lr = numberIn(h.lr, `${name}.lr`, 0, Infinity, false, true);
  const momentum = numberIn(h.momentum, `${name}.momentum`, 0, 1, false, true);
  const dampening = numberIn(h.dampening, `${name}.dampening`, 0, 1);
  const weightDecay = numberIn(h.weightDecay, `${name}.weightDecay`, 0, Infinity, false, true);
  if (typeof h.nesterov !== 'boolean') throw new DclError('E_ARG', `Expected a boolean for ${name}.nesterov but received ${describe(h.nesterov)}`);
  if (h.nesterov && (momentum === 0 || dampening !== 0))
    throw new DclError('E_ARG', `Expected momentum > 0 and dampening 0 with ${name}.nesterov but received momentum ${momentum}, dampening ${dampening}`);
  return { lr, momentum, dampening, nesterov: h.nesterov, weightDecay };
}

/**
 * Stochastic gradient descent, as torch.optim.SGD: g = grad + weightDecay p; with momentum,
 * buf = g at the first step, then buf = momentum buf + (1 - dampening) g; the update direction is
 * buf, or g + momentum buf with Nesterov; p -= lr d.
 */
export class SGD extends Optimizer<SgdSettings> {
  readonly kind = 'sgd';

  constructor(params: Iterable<Var> | ParamGroupSpec<SgdSettings>[], options: Partial<Omit<SgdSettings, 'lr'>> & { lr: number } & CommonOptions) {
    const o = plainObject(options, 'options');
    const { schedule, maxGradNorm, ...rest } = o;
    super(params, { momentum: 0, dampening: 0, nesterov: false, weightDecay: 0, ...rest } as SgdSettings, { schedule, maxGradNorm } as CommonOptions, checkSgd);
  }

  protected checkSettings(h: Record<string, unknown>, name: string): SgdSettings {
    return checkSgd(h, name);
  }

  protected update(p: Float32Array, g: Float32Array, lr: number, h: SgdSettings, s: ParamState): void {
    const wd = h.weightDecay;
    const n = p.length;
    if (h.momentum === 0) {
      for (let i = 0; i < n; i++) p[i] -= lr * (g[i] + wd * p[i]);
      return;
    }
    const m = h.momentum;
    const keep = 1 - h.dampening;
    let buf = s.buffers.momentum;
    const first = buf === undefined;
    if (first) buf = s.buffers.momentum = new Float32Array(n);
    for (let i = 0; i < n; i++) {
      const gi = g[i] + wd * p[i];
      const b = first ? gi : m * buf[i] + keep * gi;
      buf[i] = b;
      p[i] -= lr * (h.nesterov ? gi + m * b : b);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Adam / AdamW

export interface AdamSettings extends GroupSettings {
  lr: number;
  /** [beta1, beta2]. Default [0.9, 0.999]. */
  betas: [number, number];
  /** Default 1e-8. */
  eps: number;
  /** Decoupled weight decay (AdamW): p -= lr weightDecay p before the Adam update. */
  weightDecay: number;
}

function checkAdam(h: Record<string, unknown>, name: string): AdamSettings {
  knownKeys(h, ['lr', 'betas', 'eps', 'weightDecay'], name);
  const lr = numberIn(h.lr, `${name}.lr`, 0, Infinity, false, true);
  const betas = h.betas;
  if (!Array.isArray(betas) || betas.length !== 2) throw new DclError('E_ARG', `Expected [beta1, beta2] for ${name}.betas but received ${describe(betas)}`);
  const b1 = numberIn(betas[0], `${name}.betas[0]`, 0, 1, false, true);
  const b2 = numberIn(betas[1], `${name}.betas[1]`, 0, 1, false, true);
  const eps = numberIn(h.eps, `${name}.eps`, 0, Infinity, true, true);
  const weightDecay = numberIn(h.weightDecay, `${name}.weightDecay`, 0, Infinity, false, true);
  return { lr, betas: [b1, b2], eps, weightDecay };
}

/**
 * Adam with bias correction and decoupled weight decay (AdamW; Loshchilov and Hutter), as
 * torch.optim.AdamW: at update t of a parameter, p *= 1 - lr weightDecay; m = b1 m + (1 - b1) g;
 * v = b2 v + (1 - b2) g^2; p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps).
 * weightDecay defaults to 0 here (plain Adam); AdamW defaults it to 0.01.
 */
export class Adam extends Optimizer<AdamSettings> {
  readonly kind: string = 'adam';

  constructor(
    params: Iterable<Var> | ParamGroupSpec<AdamSettings>[],
    options: Partial<AdamSettings> & CommonOptions = {},
    defaultDecay = 0,
  ) {
    const o = plainObject(options, 'options');
    const { schedule, maxGradNorm, ...rest } = o;
    super(params, { lr: 1e-3, betas: [0.9, 0.999], eps: 1e-8, weightDecay: defaultDecay, ...rest } as AdamSettings, { schedule, maxGradNorm } as CommonOptions, checkAdam);
  }

  protected checkSettings(h: Record<string, unknown>, name: string): AdamSettings {
    return checkAdam(h, name);
  }

  /**
   * One update by the native kernel (native/cpu/adam_serial.cpp; vectorised and multi-threaded),
   * in float32 as torch.optim.AdamW on float32 tensors: the scalars (1 - lr wd, b1, 1 - b1, b2,
   * 1 - b2, lr / (1 - b1^t), sqrt(1 - b2^t), eps) are computed in float64 and rounded to float32
   * once each, and every element-wise operation is rounded once (no FMA), so a result can differ
   * from a float64 evaluation of the formula in the last bits (test/adam-kernel.test.ts bounds it).
   */
  protected update(p: Float32Array, g: Float32Array, lr: number, h: AdamSettings, s: ParamState): void {
    const n = p.length;
    const [b1, b2] = h.betas;
    const m = (s.buffers.m ??= new Float32Array(n));
    const v = (s.buffers.v ??= new Float32Array(n));
    const t = s.step;
    native.adamUpdate(p, g, m, v, lr, b1, b2, h.eps, h.weightDecay, 1 - b1 ** t, Math.sqrt(1 - b2 ** t));
  }
}

/** Adam with decoupled weight decay, default weightDecay 0.01 (torch.optim.AdamW's default). */
export class AdamW extends Adam {
  override readonly kind: string = 'adamw';
  constructor(params: Iterable<Var> | ParamGroupSpec<AdamSettings>[], options: Partial<AdamSettings> & CommonOptions = {}) {
    super(params, options, 0.01);
  }
}
