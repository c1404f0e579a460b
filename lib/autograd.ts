// A thin reverse-mode autograd over the native kernels.
//
// A Var holds a Tensor value and, when it was computed from Vars that need gradients while
// recording is on, the Node that produced it: the op's name, its inputs and a backward closure.
// backward(loss) walks the graph from the loss in reverse topological order, hands each node the
// gradient of its output, and the node's closure writes or adds the gradients of its inputs through
// a BackwardContext. A Var used several times gets the sum of its gradients. Leaves (parameters)
// keep their gradient in `.grad` across backward calls until zeroGrad(); intermediate Vars do not
// (retainGrad() keeps one).
//
// Memory, without needless allocation, copies or zero-fills:
// - Gradients of intermediate Vars live in a pool of scratch arrays matched by capacity: taken when
//   a node's backward writes an input gradient, returned as soon as the node that consumed it has
//   run; arrays unused for two steps are dropped. After the first step a training step allocates
//   no gradient memory, whatever its batch size. Element-wise ops write their input gradient into
//   their output gradient in place, and reshape passes it on.
// - A parameter's gradient array is allocated once; zeroGrad() only marks it empty (no fill), and
//   the next backward overwrites it (the kernels write, never accumulate) instead of adding to it.
// - Forward values: an op given a BufferSite (every nn layer owns one) writes its output into a
//   buffer the site keeps between steps. A site hands a buffer out once per "step": a step ends
//   when backward() finishes (without retainGraph) or when endStep() is called. A module applied
//   twice in one step (a siamese pair) gets a second buffer; a buffer grows to the largest batch
//   and serves smaller ones as a view. Values of one step therefore stay
//   valid after backward() until the next forward through the same layer; reading a Var whose
//   buffer was handed out again since throws a DclError (E_ARG) rather than returning other data,
//   and so does backward() through such a graph. Copy a value (clone()) to keep it longer.
// - noGrad(fn) records nothing: no nodes and no saved inputs. inference(fn) = endStep() + noGrad:
//   for encode loops, so that layers reuse their buffers from one batch to the next.
import { DclError } from './errors.js';
import * as ops from './ops.js';
import { allocateFloats, asTensor, sameShape, Tensor } from './tensor.js';
import type { TensorLike } from './tensor.js';
import { describe, knownKeys, plainObject } from './validate.js';

// ---------------------------------------------------------------------------------------------
// Recording mode

let gradEnabled = true;

/** Whether ops record a graph now (false inside noGrad). */
export function isGradEnabled(): boolean {
  return gradEnabled;
}

/**
 * Runs fn with recording off: ops return Vars without a graph (requiresGrad false) and save
 * nothing for a backward pass. For synchronous functions (the flag is restored when fn returns,
 * not when a Promise it returns settles).
 */
export function noGrad<T>(fn: () => T): T {
  if (typeof fn !== 'function') throw new DclError('E_ARG', `Expected a function for fn but received ${describe(fn)}`);
  const previous = gradEnabled;
  gradEnabled = false;
  try {
    return fn();
  } finally {
    gradEnabled = previous;
  }
}

// ---------------------------------------------------------------------------------------------
// Steps and buffer sites (forward values)

let step = 0;

/**
 * Declares that no Var value computed so far will be read again, so that layers may reuse their
 * output buffers. backward() calls it when it finishes (unless retainGraph); call it yourself in an
 * inference loop (after copying out what you keep) to stop layers from allocating new buffers.
 */
export function endStep(): void {
  step++;
  trimScratch();
}

/**
 * noGrad for inference loops: ends the step first (so that layers reuse their output buffers
 * instead of allocating), then runs fn without recording. Values computed before the call may be
 * overwritten by fn's forward passes; fn's results stay valid until the next inference() or
 * backward() that reaches the same layers.
 */
export function inference<T>(fn: () => T): T {
  endStep();
  return noGrad(fn);
}

/** @internal A buffer a site hands out; `gen` counts hand-outs so that stale readers are caught. */
class Slot {
  gen = 0;
  step = -1;
  floats: Float32Array | null = null;
  ints: Int32Array | null = null;

  get capacity(): number {
    return this.floats ? this.floats.length : this.ints ? this.ints.length : 0;
  }
}

/** Proof that a buffer still holds the value it was handed out for. */
export interface Lease {
  readonly slot: Slot;
  readonly gen: number;
}

function leaseValid(lease: Lease): boolean {
  return lease.slot.gen === lease.gen;
}

function elementCount(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

/**
 * Output buffers kept by one op site (one layer) between steps, by tag. A buffer is handed out at
 * most once per step, as a view of its first elements, so one buffer serves every batch size up to
 * its capacity (it grows to the largest size asked for; clear() gives the memory back). When all of
 * a tag's `maxSlots` buffers are in use in this step, a fresh unkept buffer is returned (correct,
 * only slower).
 */
export class BufferSite {
  private readonly slots = new Map<string, Slot[]>();

  constructor(readonly maxSlots = 3) {}

  private take(key: string, n: number, kind: 'f' | 'i'): Slot | null {
    let list = this.slots.get(key);
    if (list === undefined) {
      list = [];
      this.slots.set(key, list);
    }
    // The smallest free buffer that is large enough, else the largest free one (grown).
    let fit: Slot | null = null;
    let largest: Slot | null = null;
    for (const slot of list) {
      if (slot.step === step) continue;
      const cap = slot.capacity;
      if (cap >= n && (fit === null || cap < fit.capacity)) fit = slot;
      if (largest === null || cap > largest.capacity) largest = slot;
    }
    let slot = fit ?? largest;
    if (slot === null) {
      if (list.length >= this.maxSlots) return null;
      slot = new Slot();
      list.push(slot);
    }
    if (slot.capacity < n) {
      if (kind === 'f') slot.floats = allocateFloats(n);
      else slot.ints = new Int32Array(n);
    }
    slot.step = step;
    slot.gen++;
    return slot;
  }

  /** A float tensor of `shape` (contents undefined) and its lease (null for an unkept buffer). */
  floats(shape: readonly number[], tag = ''): { tensor: Tensor; lease: Lease | null } {
    const n = elementCount(shape);
    const slot = this.take(tag, n, 'f');
    if (slot === null) return { tensor: Tensor.zeros(shape), lease: null };
    const data = slot.floats!.length === n ? slot.floats! : slot.floats!.subarray(0, n);
    return { tensor: new Tensor(data, shape), lease: { slot, gen: slot.gen } };
  }

  /** An Int32Array of `length` (contents undefined) and its lease (null for an unkept buffer). */
  ints(length: number, tag = ''): { array: Int32Array; lease: Lease | null } {
    const slot = this.take(`${tag}:int32`, length, 'i');
    if (slot === null) return { array: new Int32Array(length), lease: null };
    const array = slot.ints!.length === length ? slot.ints! : slot.ints!.subarray(0, length);
    return { array, lease: { slot, gen: slot.gen } };
  }

  /** Bytes held by the kept buffers. */
  get bytes(): number {
    let total = 0;
    for (const list of this.slots.values()) for (const s of list) total += s.capacity * 4;
    return total;
  }

  /** Number of kept buffers. */
  get count(): number {
    let total = 0;
    for (const list of this.slots.values()) total += list.length;
    return total;
  }

  /** Drops every kept buffer (Vars still holding one keep it alive; they are invalidated). */
  clear(): void {
    for (const list of this.slots.values()) for (const s of list) s.gen++;
    this.slots.clear();
  }
}

// ---------------------------------------------------------------------------------------------
// Scratch pool (gradients of intermediate Vars, temporaries of backward closures)
//
// Free arrays are matched by capacity: a request of n floats takes the smallest free array of
// n..2n floats (as a view of its first n), so varying batch sizes reuse the same arrays. An array
// left unused for two whole steps is dropped, so the pool follows the working set.

const scratchFree: Float32Array[] = [];
const scratchLastUse = new WeakMap<Float32Array, number>();
/** Base array of each view handed out (an exact-size array is its own base and not listed). */
const scratchBase = new WeakMap<Float32Array, Float32Array>();
const scratchPooled = new WeakSet<Float32Array>();
let scratchBytesHeld = 0;

/**
 * A tensor of `shape` from the scratch pool, contents undefined (not zeroed). Give it back with
 * releaseScratch when done, or hand it to the engine with ctx.give.
 */
export function takeScratch(shape: readonly number[]): Tensor {
  const n = elementCount(shape);
  let best = -1;
  for (let i = 0; i < scratchFree.length; i++) {
    const len = scratchFree[i].length;
    if (len >= n && len <= 2 * n && (best < 0 || len < scratchFree[best].length)) best = i;
  }
  if (best < 0) return new Tensor(allocateFloats(n), shape);
  const base = scratchFree[best];
  scratchFree[best] = scratchFree[scratchFree.length - 1];
  scratchFree.pop();
  scratchPooled.delete(base);
  scratchBytesHeld -= base.byteLength;
  if (base.length === n) return new Tensor(base, shape);
  const view = base.subarray(0, n);
  scratchBase.set(view, base);
  return new Tensor(view, shape);
}

/** Returns a tensor's array to the scratch pool: nothing may read or write it afterwards. */
export function releaseScratch(t: Tensor): void {
  let base = scratchBase.get(t.data);
  if (base === undefined) {
    base = t.data;
    if (base.byteOffset !== 0 || base.length !== base.buffer.byteLength / 4) return; // a view of someone else's array
  }
  if (scratchPooled.has(base)) return; // already returned: never hand one array out twice
  scratchPooled.add(base);
  scratchLastUse.set(base, step);
  scratchBytesHeld += base.byteLength;
  scratchFree.push(base);
}

/** Drops free arrays not used in the last two steps. */
function trimScratch(): void {
  for (let i = scratchFree.length - 1; i >= 0; i--) {
    const base = scratchFree[i];
    if ((scratchLastUse.get(base) ?? -Infinity) < step - 2) {
      scratchPooled.delete(base);
      scratchBytesHeld -= base.byteLength;
      scratchFree[i] = scratchFree[scratchFree.length - 1];
      scratchFree.pop();
    }
  }
}

/** Frees the scratch pool (the next backward allocates again). */
export function clearScratch(): void {
  for (const base of scratchFree) scratchPooled.delete(base);
  scratchFree.length = 0;
  scratchBytesHeld = 0;
}

/** Bytes held in the scratch pool, free for reuse. */
export function scratchBytes(): number {
  return scratchBytesHeld;
}

// ---------------------------------------------------------------------------------------------
// Profiling

export interface OpTiming {
  op: string;
  forwardMs: number;
  forwardCalls: number;
  backwardMs: number;
  backwardCalls: number;
}

let profile: Map<string, OpTiming> | null = null;
let profileByShape = false;

function record(op: string, phase: 'forward' | 'backward', ms: number, shape?: readonly number[]): void {
  if (profileByShape && shape !== undefined) op = `${op} [${shape.join(', ')}]`;
  let t = profile!.get(op);
  if (t === undefined) {
    t = { op, forwardMs: 0, forwardCalls: 0, backwardMs: 0, backwardCalls: 0 };
    profile!.set(op, t);
  }
  if (phase === 'forward') {
    t.forwardMs += ms;
    t.forwardCalls++;
  } else {
    t.backwardMs += ms;
    t.backwardCalls++;
  }
}

/**
 * Starts timing every op's forward and backward until stopProfiling(): totals by op name, or by op
 * name and output shape with { byShape: true } (one row per layer of a network).
 */
export function startProfiling(options: { byShape?: boolean } = {}): void {
  const o = plainObject(options, 'options');
  knownKeys(o, ['byShape'], 'options');
  profile = new Map();
  profileByShape = o.byShape === true;
}

/** Stops timing and returns the totals per op name. */
export function stopProfiling(): OpTiming[] {
  const result = profile === null ? [] : [...profile.values()];
  profile = null;
  return result;
}

const now = () => performance.now();

// ---------------------------------------------------------------------------------------------
// Var and Node

/**
 * How a backward closure delivers its input gradients. For each input i that needs a gradient,
 * use exactly one of out(i) (write it), accumulate(i, t) (add a tensor you keep) or give(i, t)
 * (hand over a tensor you no longer need, gy included when gyWritable).
 */
export interface BackwardContext {
  /** Whether input i needs a gradient; skip its work when not. */
  needsGrad(i: number): boolean;
  /**
   * A tensor of input i's shape to overwrite entirely with input i's gradient (its contents are
   * undefined: not zeroed). Write it before the closure returns.
   */
  out(i: number): Tensor;
  /** Adds t (input i's size) into input i's gradient; t is only read. */
  accumulate(i: number, t: Tensor): void;
  /**
   * Hands t (input i's size) over as input i's gradient: the engine may keep it as the gradient
   * buffer and write into it later, so the closure must not touch t afterwards. t may be gy (or a
   * view of gy) only when gyWritable.
   */
  give(i: number, t: Tensor): void;
  /** True when gy is the engine's own scratch: the closure may overwrite it and give it on. */
  readonly gyWritable: boolean;
}

/**
 * The backward closure of an op: gy is the gradient of the op's output (do not keep it past the
 * call). Either deliver gradients through ctx, or return one tensor (or null) per input, which the
 * engine adds (only read).
 */
export type BackwardFn = (gy: Tensor, ctx: BackwardContext) => void | readonly (Tensor | null | undefined)[];

export class Node {
  /** @internal cleared when the graph is freed after backward */
  backwardFn: BackwardFn | null;
  freed = false;
  constructor(
    readonly op: string,
    readonly inputs: readonly Var[],
    backwardFn: BackwardFn,
    /** Buffers the backward closure reads (checked before it runs). */
    readonly leases: readonly Lease[],
  ) {
    this.backwardFn = backwardFn;
  }
}

export interface VarOptions {
  /** Whether gradients with respect to this (leaf) Var are wanted. Default false. */
  requiresGrad?: boolean;
  name?: string;
}

let internalResult: { lease: Lease | null; node: Node | null } | null = null;

export class Var {
  /** @internal */ _value: Tensor;
  /** @internal */ readonly _lease: Lease | null;
  /** @internal */ _requiresGrad: boolean;
  /** The node that produced this Var (null for a leaf: an input or a parameter). */
  readonly node: Node | null;
  name: string | undefined;
  /** @internal leaf gradient array (kept across zeroGrad) and whether it holds a gradient */
  _grad: Tensor | null = null;
  /** @internal */ _gradValid = false;
  /** @internal pending gradient during backward, and whether the engine owns its array */
  _pending: Tensor | null = null;
  /** @internal */ _pendingOwned = false;
  /** @internal */ _retain = false;
  /** @internal */ _retained: Tensor | null = null;

  /**
   * A leaf Var over `value` (not copied): an input (requiresGrad false) or a parameter
   * (requiresGrad true).
   */
  constructor(value: TensorLike, options: VarOptions = {}) {
    if (internalResult !== null) {
      // An op's output (Var._result): trusted arguments, no validation.
      const r = internalResult;
      internalResult = null;
      this._value = value as Tensor;
      this._lease = r.lease;
      this.node = r.node;
      this._requiresGrad = r.node !== null;
      this.name = undefined;
      return;
    }
    const o = plainObject(options, 'options');
    knownKeys(o, ['requiresGrad', 'name'], 'options');
    if (o.requiresGrad !== undefined && typeof o.requiresGrad !== 'boolean')
      throw new DclError('E_ARG', `Expected a boolean for options.requiresGrad but received ${describe(o.requiresGrad)}`);
    if (o.name !== undefined && typeof o.name !== 'string')
      throw new DclError('E_ARG', `Expected a string for options.name but received ${describe(o.name)}`);
    this._value = asTensor(value, 'value');
    this._lease = null;
    this._requiresGrad = (o.requiresGrad as boolean | undefined) ?? false;
    this.node = null;
    this.name = o.name as string | undefined;
  }

  /** @internal The output of an op. */
  static _result(value: Tensor, lease: Lease | null, node: Node | null): Var {
    internalResult = { lease, node };
    return new Var(value);
  }

  /** A Var of the given values and shape (copied into a new Float32Array). */
  static from(values: ArrayLike<number>, shape: readonly number[], options: VarOptions = {}): Var {
    return new Var(Tensor.from(values, shape), options);
  }

  /** The value. Throws E_ARG when its buffer has been reused by a later step (see endStep). */
  get value(): Tensor {
    if (this._lease !== null && !leaseValid(this._lease))
      throw new DclError(
        'E_ARG',
        `Expected a Var whose value is still current but received one whose buffer a later forward pass reused (${this.describeOp()}); copy values you need beyond the next step with clone()`,
      );
    return this._value;
  }

  /**
   * Declares that the value's data was changed in place (Tensor.markChanged on the value): needed
   * after writing into a parameter's data yourself, so that caches derived from it (a Conv2d
   * layer's prepared inference weights) are rebuilt.
   */
  markChanged(): void {
    this.value.markChanged();
  }

  /**
   * The values as a Float32Array (the value's own array, not a copy). After writing into a
   * parameter's values in place, call markChanged().
   */
  get data(): Float32Array {
    return this.value.data;
  }

  get shape(): readonly number[] {
    return this._value.shape;
  }

  get size(): number {
    return this._value.size;
  }

  get requiresGrad(): boolean {
    return this._requiresGrad;
  }

  set requiresGrad(on: boolean) {
    if (typeof on !== 'boolean') throw new DclError('E_ARG', `Expected a boolean for requiresGrad but received ${describe(on)}`);
    if (this.node !== null)
      throw new DclError('E_ARG', 'Expected a leaf Var for setting requiresGrad but received the output of an op (use detach())');
    this._requiresGrad = on;
  }

  get isLeaf(): boolean {
    return this.node === null;
  }

  /**
   * The gradient: for a leaf, the sum over backward calls since the last zeroGrad (null when none
   * yet); for an intermediate Var, the last backward's gradient if retainGrad() was called.
   */
  get grad(): Tensor | null {
    if (this.node === null) return this._gradValid ? this._grad : null;
    return this._retained;
  }

  /** Keeps this intermediate Var's gradient in .grad after backward (for inspection). */
  retainGrad(): this {
    this._retain = true;
    return this;
  }

  /** Forgets the accumulated gradient (keeps its array for the next backward; no fill). */
  zeroGrad(): void {
    this._gradValid = false;
    this._retained = null;
  }

  /** A leaf Var sharing this value, cut from the graph. */
  detach(): Var {
    const v = Var._result(this.value, this._lease, null);
    v._requiresGrad = false;
    return v;
  }

  /** A leaf Var holding a copy of the value (safe to keep across steps). */
  clone(): Var {
    const v = this.value;
    return new Var(new Tensor(new Float32Array(v.data), v.shape));
  }

  /** The one value of a single-element Var. */
  item(): number {
    if (this.size !== 1) throw new DclError('E_SHAPE', `Expected a Var of one element for item() but received shape [${this.shape.join(', ')}]`);
    return this.value.data[0];
  }

  /** Back-propagates from this Var; see backward(). */
  backward(gradient?: TensorLike, options?: BackwardOptions): void {
    backward(this, gradient, options);
  }

  private describeOp(): string {
    return this.node ? `output of ${this.node.op}` : this.name ? `'${this.name}'` : 'a view of a layer output';
  }

  toString(): string {
    return `Var([${this.shape.join(', ')}]${this.node ? `, ${this.node.op}` : ''}${this._requiresGrad ? ', requiresGrad' : ''})`;
  }
}

/** Anything an op accepts as an input: a Var, or a Tensor (then a constant). */
export type VarLike = Var | TensorLike;

function asVar(value: unknown, name: string): Var {
  if (value instanceof Var) return value;
  if (value instanceof Tensor) return Var._result(value, null, null);
  if (value !== null && typeof value === 'object' && 'data' in value && 'shape' in value)
    return Var._result(asTensor(value, name), null, null);
  throw new DclError('E_ARG', `Expected a Var or a Tensor for ${name} but received ${describe(value)}`);
}

/** A parameter: a leaf Var that requires gradients. */
export function parameter(value: TensorLike, name?: string): Var {
  return new Var(value, { requiresGrad: true, name });
}

/** Marks the gradients of these Vars empty (no fill; the next backward writes them). */
export function zeroGrad(params: Iterable<Var>): void {
  for (const p of params) {
    if (!(p instanceof Var)) throw new DclError('E_ARG', `Expected Vars for params but received ${describe(p)}`);
    p.zeroGrad();
  }
}

/**
 * Creates the output Var of an op: with a node when recording is on and an input needs a
 * gradient, else a plain value. `leases` are the buffers (besides the inputs' values) the backward
 * closure reads; the output's own lease is added.
 */
function result(op: string, inputs: readonly Var[], value: Tensor, lease: Lease | null, backwardFn: BackwardFn, leases: Lease[] = []): Var {
  let needs = false;
  if (gradEnabled) for (const v of inputs) if (v._requiresGrad) needs = true;
  if (!needs) return Var._result(value, lease, null);
  if (lease !== null) leases.push(lease);
  return Var._result(value, lease, new Node(op, inputs, backwardFn, leases));
}

// ---------------------------------------------------------------------------------------------
// The backward pass

export interface BackwardOptions {
  /** Keep the graph so that backward can run through it again. Default false. */
  retainGraph?: boolean;
}

function addInto(target: Float32Array, t: Float32Array): void {
  for (let i = 0; i < target.length; i++) target[i] += t[i];
}

function checkGradSize(v: Var, t: Tensor, op: string, i: number): void {
  if (t.size !== v.size)
    throw new DclError(
      'E_SHAPE',
      `Expected a gradient of shape [${v.shape.join(', ')}] for input ${i} of ${op} but received shape [${t.shape.join(', ')}]`,
    );
}

/** Adds t (read only) into v's gradient. */
function accumulateInto(v: Var, t: Tensor): void {
  if (v.node === null) {
    if (!v._gradValid) {
      if (v._grad === null) v._grad = new Tensor(allocateFloats(v.size), v.shape);
      v._grad.data.set(t.data);
      v._gradValid = true;
    } else addInto(v._grad!.data, t.data);
    return;
  }
  if (v._pending === null) {
    const s = takeScratch(v.shape);
    s.data.set(t.data);
    v._pending = s;
    v._pendingOwned = true;
  } else if (v._pendingOwned) {
    addInto(v._pending.data, t.data);
  } else {
    const s = takeScratch(v.shape);
    const a = s.data, p = v._pending.data, b = t.data;
    for (let i = 0; i < a.length; i++) a[i] = p[i] + b[i];
    v._pending = s;
    v._pendingOwned = true;
  }
}

class Context implements BackwardContext {
  node!: Node;
  gy!: Tensor;
  gyWritable = false;
  gyTransferred = false;
  /** Scratch tensors from out(i) to add into input i's gradient after the closure. */
  private readonly adds: { v: Var; t: Tensor }[] = [];

  reset(node: Node, gy: Tensor, writable: boolean): void {
    this.node = node;
    this.gy = gy;
    this.gyWritable = writable;
    this.gyTransferred = false;
    this.adds.length = 0;
  }

  private input(i: number): Var {
    const v = this.node.inputs[i];
    if (v === undefined)
      throw new DclError('E_ARG', `Expected an input index below ${this.node.inputs.length} for ${this.node.op}'s backward but received ${describe(i)}`);
    return v;
  }

  needsGrad(i: number): boolean {
    return this.input(i)._requiresGrad;
  }

  out(i: number): Tensor {
    const v = this.input(i);
    if (!v._requiresGrad) {
      const s = takeScratch(v.shape);
      this.adds.push({ v, t: s });
      return s;
    }
    if (v.node === null) {
      if (!v._gradValid) {
        if (v._grad === null) v._grad = new Tensor(allocateFloats(v.size), v.shape);
        v._gradValid = true;
        return v._grad;
      }
    } else if (v._pending === null) {
      const s = takeScratch(v.shape);
      v._pending = s;
      v._pendingOwned = true;
      return s;
    }
    const s = takeScratch(v.shape);
    this.adds.push({ v, t: s });
    return s;
  }

  accumulate(i: number, t: Tensor): void {
    const v = this.input(i);
    if (!v._requiresGrad) return;
    checkGradSize(v, t, this.node.op, i);
    accumulateInto(v, t);
  }

  give(i: number, t: Tensor): void {
    const v = this.input(i);
    let owned = true;
    if (t.data === this.gy.data) {
      if (this.gyTransferred) throw new DclError('E_ARG', `Expected gy to be given at most once in ${this.node.op}'s backward but it was given twice`);
      this.gyTransferred = true;
      owned = this.gyWritable;
    }
    if (!v._requiresGrad) {
      if (owned) releaseScratch(t);
      return;
    }
    checkGradSize(v, t, this.node.op, i);
    if (v.node !== null && v._pending === null) {
      v._pending = sameShape(t.shape, v.shape) ? t : new Tensor(t.data, v.shape);
      v._pendingOwned = owned;
      return;
    }
    accumulateInto(v, t);
    if (owned) releaseScratch(t);
  }

  finish(): void {
    for (const { v, t } of this.adds) {
      if (v._requiresGrad) accumulateInto(v, t);
      releaseScratch(t);
    }
    this.adds.length = 0;
  }
}

const context = new Context();
let backwardRunning = false;

/** The Vars with a node reachable from root through Vars that need gradients, in topological order. */
function topologicalOrder(root: Var): Var[] {
  const order: Var[] = [];
  if (root.node === null) return order;
  const visited = new Set<Var>([root]);
  const stack: { v: Var; i: number }[] = [{ v: root, i: 0 }];
  while (stack.length > 0) {
    const top = stack[stack.length - 1];
    const inputs = top.v.node!.inputs;
    if (top.i < inputs.length) {
      const c = inputs[top.i++];
      if (c.node !== null && c._requiresGrad && !visited.has(c)) {
        visited.add(c);
        stack.push({ v: c, i: 0 });
      }
    } else {
      stack.pop();
      order.push(top.v);
    }
  }
  return order;
}

/**
 * Back-propagates from `root`: adds d(sum(root * gradient))/dv into every leaf v that requires a
 * gradient. `gradient` defaults to 1 for a one-element root and is required otherwise. Afterwards
 * the graph is freed (a second backward through it throws) unless retainGraph, and the step ends
 * (see endStep).
 */
export function backward(root: Var, gradient?: TensorLike, options: BackwardOptions = {}): void {
  if (!(root instanceof Var)) throw new DclError('E_ARG', `Expected a Var for root but received ${describe(root)}`);
  const o = plainObject(options, 'options');
  knownKeys(o, ['retainGraph'], 'options');
  if (o.retainGraph !== undefined && typeof o.retainGraph !== 'boolean')
    throw new DclError('E_ARG', `Expected a boolean for options.retainGraph but received ${describe(o.retainGraph)}`);
  const retainGraph = (o.retainGraph as boolean | undefined) ?? false;
  if (!root._requiresGrad)
    throw new DclError(
      'E_ARG',
      'Expected a Var that requires a gradient for backward() but received one computed without a graph (no input requires a gradient, or it was computed inside noGrad)',
    );
  if (backwardRunning) throw new DclError('E_ARG', 'Expected backward() not to be called from inside a backward closure but it was');
  let seed: Tensor;
  if (gradient === undefined || gradient === null) {
    if (root.size !== 1)
      throw new DclError(
        'E_ARG',
        `Expected a gradient for backward() of a Var of shape [${root.shape.join(', ')}] (only a one-element Var has the default gradient 1) but received none`,
      );
    seed = Tensor.from([1], root.shape);
  } else {
    seed = asTensor(gradient, 'gradient');
    if (!sameShape(seed.shape, root.shape))
      throw new DclError('E_SHAPE', `Expected a gradient of shape [${root.shape.join(', ')}] for backward() but received shape [${seed.shape.join(', ')}]`);
  }
  if (root.node === null) {
    accumulateInto(root, seed);
    return;
  }

  const order = topologicalOrder(root);
  for (const v of order)
    if (v.node!.freed)
      throw new DclError(
        'E_ARG',
        `Expected a graph that has not been freed for backward() but ${v.node!.op} was already back-propagated; pass { retainGraph: true } to the first backward() to run it twice`,
      );
  backwardRunning = true;
  try {
    root._pending = seed;
    root._pendingOwned = false;
    for (let k = order.length - 1; k >= 0; k--) {
      const v = order[k];
      const gy = v._pending;
      if (gy === null) continue;
      const node = v.node!;
      v._pending = null;
      for (const lease of node.leases)
        if (!leaseValid(lease))
          throw new DclError(
            'E_ARG',
            `Expected the values saved by ${node.op} to be current for backward() but a later forward pass reused their buffers; call backward() before the next forward through the same layers`,
          );
      let writable = v._pendingOwned;
      if (v._retain) {
        v._retained = gy;
        writable = false;
      }
      const t0 = profile !== null ? now() : 0;
      context.reset(node, gy, writable);
      const returned = node.backwardFn!(gy, context);
      if (returned) {
        if (!Array.isArray(returned) || returned.length > node.inputs.length)
          throw new DclError('E_ARG', `Expected ${node.op}'s backward to return nothing or one gradient per input but it returned ${describe(returned)}`);
        returned.forEach((g, i) => {
          if (g !== null && g !== undefined) context.accumulate(i, asTensor(g, `gradient ${i} of ${node.op}`));
        });
      }
      context.finish();
      if (writable && !context.gyTransferred) releaseScratch(gy);
      if (profile !== null) record(node.op, 'backward', now() - t0, v.shape);
      if (!retainGraph) {
        node.backwardFn = null;
        node.freed = true;
      }
    }
  } finally {
    backwardRunning = false;
    for (const v of order) {
      v._pending = null;
      v._pendingOwned = false;
    }
  }
  if (!retainGraph) endStep();
}

// ---------------------------------------------------------------------------------------------
// Native ops

type Pair = number | [number, number];

function pairOf(value: Pair | undefined, fallback: number): [number, number] | null {
  const v = value ?? fallback;
  const p: unknown[] = Array.isArray(v) ? v : [v, v];
  if (p.length !== 2 || !p.every((x) => typeof x === 'number' && Number.isSafeInteger(x) && x >= 0)) return null;
  return p as [number, number];
}

function siteOf(value: unknown, name: string): BufferSite | null {
  if (value === undefined || value === null) return null;
  if (!(value instanceof BufferSite)) throw new DclError('E_ARG', `Expected a BufferSite for ${name} but received ${describe(value)}`);
  return value;
}

function take(site: BufferSite | null, shape: readonly number[] | null, tag: string): { tensor: Tensor | undefined; lease: Lease | null } {
  if (site === null || shape === null || !shape.every((d) => Number.isSafeInteger(d) && d > 0)) return { tensor: undefined, lease: null };
  return site.floats(shape, tag);
}

export interface Conv2dOptions {
  stride?: Pair;
  padding?: Pair;
  /** Keep the output buffer here between steps (an nn layer passes its own). */
  site?: BufferSite;
  /**
   * Weights prepared from `weight`'s current values by ops.conv2dPrepare (same stride and
   * padding): the forward uses them (bit for bit the same output, without transforming the weights
   * again); gradients, when recorded, still use weight. The caller keeps them current (nn.Conv2d
   * does, keyed by the weight's version).
   */
  prepared?: ops.PreparedConv2dWeight;
}

/** conv2d (see ops.conv2d) as a differentiable op. x: [N, Cin, H, W]; weight [Cout, Cin, KH, KW]; bias [Cout] or null. */
export function conv2d(x: VarLike, weight: VarLike, bias?: VarLike | null, options: Conv2dOptions = {}): Var {
  const t0 = profile !== null ? now() : 0;
  const xv = asVar(x, 'x');
  const wv = asVar(weight, 'weight');
  const bv = bias === undefined || bias === null ? null : asVar(bias, 'bias');
  const o = plainObject(options, 'options');
  knownKeys(o, ['stride', 'padding', 'site', 'prepared'], 'options');
  const site = siteOf(o.site, 'options.site');
  const stride = o.stride as Pair | undefined;
  const padding = o.padding as Pair | undefined;
  const prepared = o.prepared as ops.PreparedConv2dWeight | undefined;
  // The output shape, when the arguments make sense (ops.conv2d validates everything either way).
  let shape: number[] | null = null;
  const s = pairOf(stride, 1);
  const p = pairOf(padding, 0);
  if (s && p && xv.shape.length === 4 && wv.shape.length === 4 && s[0] > 0 && s[1] > 0) {
    const oh = Math.floor((xv.shape[2] + 2 * p[0] - wv.shape[2]) / s[0]) + 1;
    const ow = Math.floor((xv.shape[3] + 2 * p[1] - wv.shape[3]) / s[1]) + 1;
    shape = [xv.shape[0], wv.shape[0], oh, ow];
  }
  const { tensor: out, lease } = take(site, shape, 'conv2d');
  const kernelSize: [number, number] = [wv.shape[2], wv.shape[3]];
  let y: Tensor;
  if (prepared !== undefined) {
    const pw = prepared.weightShape, ws = wv.shape;
    const sp = pairOf(stride, 1), pp = pairOf(padding, 0);
    if (
      pw.length !== ws.length || pw.some((d, i) => d !== ws[i]) || sp === null || pp === null ||
      sp[0] !== prepared.stride[0] || sp[1] !== prepared.stride[1] || pp[0] !== prepared.padding[0] || pp[1] !== prepared.padding[1]
    )
      throw new DclError('E_ARG', 'Expected options.prepared to be prepared from weight with the same stride and padding but it is not');
    y = ops.conv2dPrepared(xv.value, prepared, bv ? bv.value : null, { out });
  } else {
    y = ops.conv2d(xv.value, wv.value, bv ? bv.value : null, { stride, padding, out });
  }
  const inputs = bv ? [xv, wv, bv] : [xv, wv];
  const r = result('conv2d', inputs, y, lease, (gy, ctx) => {
    const needW = ctx.needsGrad(1);
    const needB = bv !== null && ctx.needsGrad(2);
    if (needW || needB) {
      const dw = needW ? ctx.out(1) : takeScratch(wv.shape);
      const db = needB ? ctx.out(2) : undefined;
      ops.conv2dBackwardWeight(xv.value, gy, { kernelSize, stride, padding, bias: needB, out: db ? { weight: dw, bias: db } : { weight: dw } });
      if (!needW) releaseScratch(dw);
    }
    if (ctx.needsGrad(0)) ops.conv2dBackwardInput(gy, wv.value, xv.shape, { stride, padding, out: ctx.out(0) });
  });
  if (profile !== null) record('conv2d', 'forward', now() - t0, r.shape);
  return r;
}

export interface MaxPool2dOptions {
  kernelSize: Pair;
  /** Default: the kernel size. */
  stride?: Pair;
  site?: BufferSite;
}

/**
 * The checked options of a pooling op (maxPool2d, absTanhMaxPool2d) and, with options.site, its
 * output and argmax buffers from the site (the argmax lease in `leases`).
 */
function poolCall(xv: Var, options: MaxPool2dOptions, op: string) {
  if (options === undefined) throw new DclError('E_ARG', 'Expected an options object with kernelSize for options but received undefined');
  const o = plainObject(options, 'options');
  knownKeys(o, ['kernelSize', 'stride', 'site'], 'options');
  const site = siteOf(o.site, 'options.site');
  const kernelSize = o.kernelSize as Pair;
  const stride = o.stride as Pair | undefined;
  let shape: number[] | null = null;
  const k = pairOf(kernelSize, 0);
  const s = k ? pairOf(stride, 0) ?? null : null;
  if (k && xv.shape.length === 4 && k[0] > 0 && k[1] > 0) {
    const [sh, sw] = stride === undefined ? k : s ?? [0, 0];
    if (sh > 0 && sw > 0) shape = [xv.shape[0], xv.shape[1], Math.floor((xv.shape[2] - k[0]) / sh) + 1, Math.floor((xv.shape[3] - k[1]) / sw) + 1];
  }
  const { tensor: output, lease } = take(site, shape, op);
  let argmax: Int32Array | undefined;
  const leases: Lease[] = [];
  if (output !== undefined) {
    const a = site!.ints(output.size, op);
    argmax = a.array;
    if (a.lease) leases.push(a.lease);
  }
  return { kernelSize, stride, output, argmax, lease, leases };
}

/** Max-pooling (see ops.maxPool2d) as a differentiable op; the gradient goes to each window's winner. */
export function maxPool2d(x: VarLike, options: MaxPool2dOptions): Var {
  const t0 = profile !== null ? now() : 0;
  const xv = asVar(x, 'x');
  const { kernelSize, stride, output, argmax, lease, leases } = poolCall(xv, options, 'maxPool2d');
  const y = ops.maxPool2d(xv.value, { kernelSize, stride, out: output ? { output, argmax } : undefined });
  const winners = y.argmax;
  const r = result(
    'maxPool2d',
    [xv],
    y.output,
    lease,
    (gy, ctx) => {
      if (ctx.needsGrad(0)) ops.maxPool2dBackward(gy, winners, xv.shape, { kernelSize, stride, out: ctx.out(0) });
    },
    leases,
  );
  if (profile !== null) record('maxPool2d', 'forward', now() - t0, r.shape);
  return r;
}

/** y = |tanh(x)| as a differentiable op (gradient sign(x) (1 - y^2), sign(0) = 0). */
export function absTanh(x: VarLike, options: { site?: BufferSite } = {}): Var {
  const t0 = profile !== null ? now() : 0;
  const xv = asVar(x, 'x');
  const o = plainObject(options, 'options');
  knownKeys(o, ['site'], 'options');
  const { tensor: out, lease } = take(siteOf(o.site, 'options.site'), xv.shape, 'absTanh');
  const y = ops.absTanh(xv.value, { out });
  const r = result('absTanh', [xv], y, lease, (gy, ctx) => {
    if (!ctx.needsGrad(0)) return;
    const dx = ctx.gyWritable ? gy : ctx.out(0);
    ops.absTanhBackward(gy, xv.value, y, { out: dx });
    if (dx === gy) ctx.give(0, gy);
  });
  if (profile !== null) record('absTanh', 'forward', now() - t0, r.shape);
  return r;
}

/**
 * Fused |tanh| + max-pooling (see ops.absTanhMaxPool2d) as a differentiable op: the values of
 * maxPool2d(absTanh(x)) in one pass; the gradient goes to each window's element of largest |x|.
 */
export function absTanhMaxPool2d(x: VarLike, options: MaxPool2dOptions): Var {
  const t0 = profile !== null ? now() : 0;
  const xv = asVar(x, 'x');
  const { kernelSize, stride, output, argmax, lease, leases } = poolCall(xv, options, 'absTanhMaxPool2d');
  const y = ops.absTanhMaxPool2d(xv.value, { kernelSize, stride, out: output ? { output, argmax } : undefined });
  const winners = y.argmax;
  const pooled = y.output;
  const r = result(
    'absTanhMaxPool2d',
    [xv],
    pooled,
    lease,
    (gy, ctx) => {
      if (ctx.needsGrad(0)) ops.absTanhMaxPool2dBackward(gy, winners, xv.value, pooled, { kernelSize, stride, out: ctx.out(0) });
    },
    leases,
  );
  if (profile !== null) record('absTanhMaxPool2d', 'forward', now() - t0, r.shape);
  return r;
}

/** y = 1 / (1 + exp(-x)) as a differentiable op. */
export function sigmoid(x: VarLike, options: { site?: BufferSite } = {}): Var {
  const t0 = profile !== null ? now() : 0;
  const xv = asVar(x, 'x');
  const o = plainObject(options, 'options');
  knownKeys(o, ['site'], 'options');
  const { tensor: out, lease } = take(siteOf(o.site, 'options.site'), xv.shape, 'sigmoid');
  const y = ops.sigmoid(xv.value, { out });
  const r = result('sigmoid', [xv], y, lease, (gy, ctx) => {
    if (!ctx.needsGrad(0)) return;
    const dx = ctx.gyWritable ? gy : ctx.out(0);
    ops.sigmoidBackward(gy, y, { out: dx });
    if (dx === gy) ctx.give(0, gy);
  });
  if (profile !== null) record('sigmoid', 'forward', now() - t0, r.shape);
  return r;
}

/** y = x weight^T + bias as a differentiable op. x [N, in]; weight [out, in]; bias [out] or null. */
export function linear(x: VarLike, weight: VarLike, bias?: VarLike | null, options: { site?: BufferSite } = {}): Var {
  const t0 = profile !== null ? now() : 0;
  const xv = asVar(x, 'x');
  const wv = asVar(weight, 'weight');
  const bv = bias === undefined || bias === null ? null : asVar(bias, 'bias');
  const o = plainObject(options, 'options');
  knownKeys(o, ['site'], 'options');
  const shape = xv.shape.length === 2 && wv.shape.length === 2 ? [xv.shape[0], wv.shape[0]] : null;
  const { tensor: out, lease } = take(siteOf(o.site, 'options.site'), shape, 'linear');
  const y = ops.linear(xv.value, wv.value, bv ? bv.value : null, { out });
  const inputs = bv ? [xv, wv, bv] : [xv, wv];
  const r = result('linear', inputs, y, lease, (gy, ctx) => {
    const needW = ctx.needsGrad(1);
    const needB = bv !== null && ctx.needsGrad(2);
    if (needW || needB) {
      const dw = needW ? ctx.out(1) : takeScratch(wv.shape);
      const db = needB ? ctx.out(2) : undefined;
      ops.linearBackwardWeight(xv.value, gy, { bias: needB, out: db ? { weight: dw, bias: db } : { weight: dw } });
      if (!needW) releaseScratch(dw);
    }
    if (ctx.needsGrad(0)) ops.linearBackwardInput(gy, wv.value, { out: ctx.out(0) });
  });
  if (profile !== null) record('linear', 'forward', now() - t0, r.shape);
  return r;
}

// ---------------------------------------------------------------------------------------------
// Small TypeScript ops (for losses and glue). add / sub / mul take two Vars of one shape, or one of
// them with a single element (a scalar, broadcast).

function sizeOf(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

function resolveShape(shape: unknown, size: number, name: string): number[] {
  if (!Array.isArray(shape) || shape.length === 0)
    throw new DclError('E_SHAPE', `Expected a non-empty shape array for ${name} but received ${describe(shape)}`);
  let known = 1;
  let free = -1;
  const out = shape.slice() as number[];
  for (let i = 0; i < out.length; i++) {
    const d = out[i];
    if (d === -1 && free === -1) free = i;
    else if (Number.isSafeInteger(d) && d > 0) known *= d;
    else throw new DclError('E_SHAPE', `Expected positive integers (and at most one -1) for ${name} but received ${describe(shape)}`);
  }
  if (free >= 0) {
    if (size % known !== 0)
      throw new DclError('E_SHAPE', `Expected a shape whose known dimensions divide ${size} for ${name} but received ${describe(shape)}`);
    out[free] = size / known;
  } else if (known !== size) {
    throw new DclError('E_SHAPE', `Expected a shape of ${size} elements for ${name} but received ${describe(shape)} (${known} elements)`);
  }
  return out;
}

/** The same values with another shape (no copy; one dimension may be -1). */
export function reshape(x: VarLike, shape: readonly number[]): Var {
  const xv = asVar(x, 'x');
  const s = resolveShape(shape, xv.size, 'shape');
  const y = new Tensor(xv.value.data, s);
  const xShape = xv.shape;
  return result('reshape', [xv], y, xv._lease, (gy, ctx) => {
    ctx.give(0, new Tensor(gy.data, xShape));
  });
}

/** Merges dimensions startDim.. into one (no copy): [N, C, H, W] -> [N, C*H*W] by default. */
export function flatten(x: VarLike, startDim = 1): Var {
  const xv = asVar(x, 'x');
  if (!Number.isSafeInteger(startDim) || startDim < 0 || startDim >= xv.shape.length)
    throw new DclError('E_ARG', `Expected an integer from 0 to ${xv.shape.length - 1} for startDim but received ${describe(startDim)}`);
  return reshape(xv, [...xv.shape.slice(0, startDim), sizeOf(xv.shape.slice(startDim))]);
}

function binaryShapes(a: Var, b: Var, op: string): void {
  if (sameShape(a.shape, b.shape) || a.size === 1 || b.size === 1) return;
  throw new DclError(
    'E_SHAPE',
    `Expected operands of one shape (or one of a single element) for ${op} but received shapes [${a.shape.join(', ')}] and [${b.shape.join(', ')}]`,
  );
}

function sumOf(a: Float32Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i];
  return s;
}

/** The output shape of a broadcast binary op: the larger operand's. */
function broadcastShape(a: Var, b: Var): readonly number[] {
  return a.size >= b.size ? a.shape : b.shape;
}

/** a + b (same shape, or one a single element). */
export function add(a: VarLike, b: VarLike): Var {
  const av = asVar(a, 'a');
  const bv = asVar(b, 'b');
  binaryShapes(av, bv, 'add');
  const shape = broadcastShape(av, bv);
  const x = av.data, y = bv.data;
  const out = allocateFloats(sizeOf(shape));
  if (x.length === y.length) for (let i = 0; i < out.length; i++) out[i] = x[i] + y[i];
  else if (x.length === 1) for (let i = 0; i < out.length; i++) out[i] = x[0] + y[i];
  else for (let i = 0; i < out.length; i++) out[i] = x[i] + y[0];
  return result('add', [av, bv], new Tensor(out, shape), null, (gy, ctx) => {
    const needA = ctx.needsGrad(0), needB = ctx.needsGrad(1);
    const fullA = needA && av.size === gy.size, fullB = needB && bv.size === gy.size;
    // Scalar operands first (they read gy), then gy itself goes to one full-size operand.
    if (needA && !fullA) ctx.accumulate(0, Tensor.from([sumOf(gy.data)], av.shape));
    if (needB && !fullB) ctx.accumulate(1, Tensor.from([sumOf(gy.data)], bv.shape));
    if (fullA && fullB) {
      ctx.accumulate(1, gy);
      ctx.give(0, gy);
    } else if (fullA) ctx.give(0, gy);
    else if (fullB) ctx.give(1, gy);
  });
}

/** a - b (same shape, or one a single element). */
export function sub(a: VarLike, b: VarLike): Var {
  const av = asVar(a, 'a');
  const bv = asVar(b, 'b');
  binaryShapes(av, bv, 'sub');
  const shape = broadcastShape(av, bv);
  const x = av.data, y = bv.data;
  const out = allocateFloats(sizeOf(shape));
  if (x.length === y.length) for (let i = 0; i < out.length; i++) out[i] = x[i] - y[i];
  else if (x.length === 1) for (let i = 0; i < out.length; i++) out[i] = x[0] - y[i];
  else for (let i = 0; i < out.length; i++) out[i] = x[i] - y[0];
  return result('sub', [av, bv], new Tensor(out, shape), null, (gy, ctx) => {
    const g = gy.data;
    if (ctx.needsGrad(1)) {
      if (bv.size !== gy.size) ctx.accumulate(1, Tensor.from([-sumOf(g)], bv.shape));
      else {
        const d = ctx.out(1).data;
        for (let i = 0; i < d.length; i++) d[i] = -g[i];
      }
    }
    if (ctx.needsGrad(0)) {
      if (av.size !== gy.size) ctx.accumulate(0, Tensor.from([sumOf(g)], av.shape));
      else ctx.give(0, gy);
    }
  });
}

/** a * b element-wise (same shape, or one a single element). */
export function mul(a: VarLike, b: VarLike): Var {
  const av = asVar(a, 'a');
  const bv = asVar(b, 'b');
  binaryShapes(av, bv, 'mul');
  const shape = broadcastShape(av, bv);
  const x = av.data, y = bv.data;
  const out = allocateFloats(sizeOf(shape));
  if (x.length === y.length) for (let i = 0; i < out.length; i++) out[i] = x[i] * y[i];
  else if (x.length === 1) for (let i = 0; i < out.length; i++) out[i] = x[0] * y[i];
  else for (let i = 0; i < out.length; i++) out[i] = x[i] * y[0];
  // d/da = gy * b, summed to a's size; d/db likewise.
  const grad = (ctx: BackwardContext, i: number, self: Var, other: Var, gy: Float32Array) => {
    const o = other.data;
    if (self.size === gy.length) {
      const d = ctx.out(i).data;
      if (o.length === 1) for (let k = 0; k < d.length; k++) d[k] = gy[k] * o[0];
      else for (let k = 0; k < d.length; k++) d[k] = gy[k] * o[k];
    } else {
      let s = 0;
      for (let k = 0; k < gy.length; k++) s += gy[k] * o[k];
      ctx.accumulate(i, Tensor.from([s], self.shape));
    }
  };
  return result('mul', [av, bv], new Tensor(out, shape), null, (gy, ctx) => {
    if (ctx.needsGrad(0)) grad(ctx, 0, av, bv, gy.data);
    if (ctx.needsGrad(1)) grad(ctx, 1, bv, av, gy.data);
  });
}

/** a * s for a constant number s. */
export function scale(a: VarLike, s: number): Var {
  const av = asVar(a, 'a');
  if (typeof s !== 'number' || !Number.isFinite(s)) throw new DclError('E_ARG', `Expected a finite number for s but received ${describe(s)}`);
  const x = av.data;
  const out = allocateFloats(x.length);
  for (let i = 0; i < out.length; i++) out[i] = x[i] * s;
  return result('scale', [av], new Tensor(out, av.shape), null, (gy, ctx) => {
    if (!ctx.needsGrad(0)) return;
    const dx = ctx.gyWritable ? gy : ctx.out(0);
    const g = gy.data, d = dx.data;
    for (let i = 0; i < d.length; i++) d[i] = g[i] * s;
    if (dx === gy) ctx.give(0, gy);
  });
}

/** The sum of all elements, shape [1] (accumulated in float64). */
export function sum(a: VarLike): Var {
  const av = asVar(a, 'a');
  return result('sum', [av], Tensor.from([sumOf(av.data)], [1]), null, (gy, ctx) => {
    if (ctx.needsGrad(0)) ctx.out(0).data.fill(gy.data[0]);
  });
}

/** The mean of all elements, shape [1]. */
export function mean(a: VarLike): Var {
  const av = asVar(a, 'a');
  const n = av.size;
  return result('mean', [av], Tensor.from([sumOf(av.data) / n], [1]), null, (gy, ctx) => {
    if (ctx.needsGrad(0)) ctx.out(0).data.fill(gy.data[0] / n);
  });
}

// ---------------------------------------------------------------------------------------------
// Custom ops

export interface CustomOpOptions {
  /** Name shown in errors and profiles. Default 'customOp'. */
  name?: string;
}

/**
 * A differentiable op defined by two functions (how native loss kernels become ops).
 * `forward(values)` gets the inputs' tensors and returns the output tensor (a new one, or one it
 * owns). `backward(gy, ctx, values)` gets the output's gradient and delivers each needed input
 * gradient through ctx (out / accumulate / give), or returns one gradient tensor (or null) per
 * input. backward runs only if some input requires a gradient and recording was on.
 *
 * ```ts
 * const square = (x: Var) => customOp([x], ([t]) => Tensor.from(t.data.map((v) => v * v), t.shape),
 *   (gy, ctx, [t]) => { const d = ctx.out(0).data; for (let i = 0; i < d.length; i++) d[i] = 2 * t.data[i] * gy.data[i]; });
 * ```
 */
export function customOp(
  inputs: readonly VarLike[],
  forward: (values: Tensor[]) => Tensor,
  backward: (gy: Tensor, ctx: BackwardContext, values: Tensor[]) => void | readonly (Tensor | null | undefined)[],
  options: CustomOpOptions = {},
): Var {
  if (!Array.isArray(inputs)) throw new DclError('E_ARG', `Expected an array of Vars for inputs but received ${describe(inputs)}`);
  if (typeof forward !== 'function') throw new DclError('E_ARG', `Expected a function for forward but received ${describe(forward)}`);
  if (typeof backward !== 'function') throw new DclError('E_ARG', `Expected a function for backward but received ${describe(backward)}`);
  const o = plainObject(options, 'options');
  knownKeys(o, ['name'], 'options');
  if (o.name !== undefined && typeof o.name !== 'string') throw new DclError('E_ARG', `Expected a string for options.name but received ${describe(o.name)}`);
  const name = (o.name as string | undefined) ?? 'customOp';
  const vars = inputs.map((v, i) => asVar(v, `inputs[${i}]`));
  const t0 = profile !== null ? now() : 0;
  const y = forward(vars.map((v) => v.value));
  if (!(y instanceof Tensor)) throw new DclError('E_ARG', `Expected ${name}'s forward to return a Tensor but it returned ${describe(y)}`);
  const r = result(name, vars, y, null, (gy, ctx) => backward(gy, ctx, vars.map((v) => v.value)));
  if (profile !== null) record(name, 'forward', now() - t0, r.shape);
  return r;
}
