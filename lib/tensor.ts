// Tensor: a shape plus a storage. Storage is an interface so that a later CUDA backend can hold
// the values on the device behind the same Tensor and the same op signatures; for now every
// storage is a CpuStorage over a Float32Array.
import { DclError } from './errors.js';
import { describe, fail, MAX_ELEMENTS, shapeArray } from './validate.js';

export type Device = 'cpu';

export interface Storage {
  readonly device: Device;
  /** Number of float32 values held. */
  readonly length: number;
}

export class CpuStorage implements Storage {
  readonly device = 'cpu' as const;
  constructor(readonly data: Float32Array) {}
  get length(): number {
    return this.data.length;
  }
}

/** A zeroed Float32Array; running out of memory is a DclError, not a RangeError. */
export function allocateFloats(length: number): Float32Array {
  try {
    return new Float32Array(length);
  } catch (error) {
    throw new DclError('E_NATIVE', `Could not allocate ${length} floats (${length * 4} bytes): ${(error as Error).message}`, {
      cause: error,
    });
  }
}

function product(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

export class Tensor {
  readonly shape: readonly number[];
  readonly storage: Storage;
  private _version = 0;

  /**
   * Wraps `data` (not copied) as a tensor of `shape`. Throws DclError E_SHAPE when the length does
   * not match the shape, E_ARG when data is not a Float32Array.
   */
  constructor(data: Float32Array, shape: readonly number[]) {
    if (!(data instanceof Float32Array)) fail('E_ARG', 'a Float32Array', 'tensor data', data);
    const checked = shapeArray(shape, 'tensor shape');
    const size = product(checked);
    if (data.length !== size)
      throw new DclError(
        'E_SHAPE',
        `Expected a Float32Array of length ${size} for a tensor of shape [${checked.join(', ')}] but received ${describe(data)}`,
      );
    this.shape = Object.freeze(checked);
    this.storage = new CpuStorage(data);
  }

  static zeros(shape: readonly number[]): Tensor {
    const checked = shapeArray(shape, 'shape');
    return new Tensor(allocateFloats(product(checked)), checked);
  }

  static from(values: ArrayLike<number>, shape: readonly number[]): Tensor {
    return new Tensor(Float32Array.from(values), shape);
  }

  get device(): Device {
    return this.storage.device;
  }

  get size(): number {
    return this.storage.length;
  }

  get rank(): number {
    return this.shape.length;
  }

  /**
   * Counts the in-place changes of the values that were declared with markChanged(). Caches
   * derived from the values (a Conv2d layer's prepared inference weights) are keyed by the tensor
   * and this number: every library path that writes parameter values in place (optimiser steps,
   * Module.loadStateDict, initialisation, train()'s output-layer calibration) calls markChanged().
   */
  get version(): number {
    return this._version;
  }

  /**
   * Declares that the values were changed in place (bumps version). Call it after writing into
   * the data of a parameter yourself (e.g. `p.data[i] = v` or `p.data.set(...)`): values derived
   * and cached from the old values are then recomputed before their next use.
   */
  markChanged(): void {
    this._version++;
  }

  /**
   * The values on the host. Throws E_DEVICE for a tensor held on another device. Writing into
   * them in place requires markChanged() afterwards when they are a parameter's (see version).
   */
  get data(): Float32Array {
    if (this.storage instanceof CpuStorage) return this.storage.data;
    throw new DclError('E_DEVICE', `Expected a tensor on the cpu for .data but received one on ${this.storage.device}`);
  }

  toString(): string {
    return `Tensor([${this.shape.join(', ')}], ${this.device})`;
  }
}

/** Anything the ops accept as a tensor: a Tensor, or a plain { data, shape } object. */
export type TensorLike = Tensor | { data: Float32Array; shape: readonly number[] };

/**
 * Checks that `value` is a tensor (or { data: Float32Array, shape }) whose length matches its
 * shape, and of the given rank; returns it as a Tensor (no copy).
 */
export function asTensor(value: unknown, name: string, rank?: number): Tensor {
  let tensor: Tensor;
  if (value instanceof Tensor) {
    tensor = value;
  } else if (value !== null && typeof value === 'object' && 'data' in value && 'shape' in value) {
    const v = value as { data: unknown; shape: unknown };
    if (!(v.data instanceof Float32Array)) fail('E_ARG', 'a Float32Array', `${name}.data`, v.data);
    const shape = shapeArray(v.shape, `${name}.shape`);
    const size = product(shape);
    if (v.data.length !== size)
      throw new DclError(
        'E_SHAPE',
        `Expected a Float32Array of length ${size} (shape [${shape.join(', ')}]) for ${name}.data but received ${describe(v.data)}`,
      );
    tensor = new Tensor(v.data, shape);
  } else {
    fail('E_ARG', 'a Tensor or { data: Float32Array, shape }', name, value);
  }
  if (rank !== undefined && tensor.rank !== rank)
    throw new DclError(
      'E_SHAPE',
      `Expected a tensor of rank ${rank} for ${name} but received shape [${tensor.shape.join(', ')}]`,
    );
  if (tensor.size > MAX_ELEMENTS) fail('E_SHAPE', `at most ${MAX_ELEMENTS} elements`, name, tensor.shape);
  return tensor;
}

export function sameShape(a: readonly number[], b: readonly number[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Checks that `tensor` has exactly `expected` as its shape. */
export function expectShape(tensor: Tensor, expected: readonly number[], name: string): void {
  if (!sameShape(tensor.shape, expected))
    throw new DclError(
      'E_SHAPE',
      `Expected shape [${expected.join(', ')}] for ${name} but received shape [${tensor.shape.join(', ')}]`,
    );
}
