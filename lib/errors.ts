/**
 * The one error class of dcl-native. `code` says what kind of failure it is:
 * - E_ARG: an argument has the wrong type or value;
 * - E_SHAPE: a tensor's shape or length does not match what the call needs;
 * - E_ISA: an instruction set was asked for that this CPU cannot run;
 * - E_LOAD: the native addon could not be loaded;
 * - E_NATIVE: native code failed (out of memory, an internal error);
 * - E_DEVICE: host data was asked of a tensor held on another device;
 * - E_FORMAT: a file is corrupt, truncated, of another format or of an unsupported version;
 * - E_IO: a file could not be read or written (missing, no permission, disk full);
 * - E_ABORTED: a long operation was cancelled through its AbortSignal;
 * - E_COLLAPSED: training collapsed to one code for every image, and did again after each of the
 *   collapse guard's restarts (TrainOptions.collapsePatience);
 * - E_CUDA: a CUDA operation was asked for where CUDA is not usable (built without it, no driver,
 *   no GPU: the message says which), or a CUDA call failed on the device.
 */
export type DclErrorCode =
  | 'E_ARG'
  | 'E_SHAPE'
  | 'E_ISA'
  | 'E_LOAD'
  | 'E_NATIVE'
  | 'E_DEVICE'
  | 'E_FORMAT'
  | 'E_IO'
  | 'E_ABORTED'
  | 'E_COLLAPSED'
  | 'E_CUDA';

export class DclError extends Error {
  readonly code: DclErrorCode;

  constructor(code: DclErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'DclError';
    this.code = code;
  }
}

const KNOWN_CODES = new Set<string>(['E_ARG', 'E_SHAPE', 'E_ISA', 'E_LOAD', 'E_NATIVE', 'E_DEVICE', 'E_FORMAT', 'E_IO', 'E_ABORTED', 'E_CUDA']);

/** Turns whatever native code threw into a DclError, keeping its code when it has a known one. */
export function fromNativeError(error: unknown, operation: string): DclError {
  if (error instanceof DclError) return error;
  const raw = error as { code?: unknown; message?: unknown };
  const code = typeof raw?.code === 'string' && KNOWN_CODES.has(raw.code) ? (raw.code as DclErrorCode) : 'E_NATIVE';
  const message = typeof raw?.message === 'string' ? raw.message : String(error);
  // Argument errors found by native code already read "Expected ... but received ..."; other
  // failures say where they happened.
  const text = code === 'E_NATIVE' ? `${operation} failed in native code: ${message}` : message;
  return new DclError(code, text, { cause: error });
}
