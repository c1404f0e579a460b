// The safetensors format (8-byte little-endian header length, a JSON header naming each tensor's
// dtype, shape and byte range, an optional "__metadata__" map of strings, then the raw
// little-endian data), written and read with every field checked: a corrupt, truncated or
// foreign file is a DclError E_FORMAT, never a crash or a silently wrong tensor.
import { DclError } from './errors.js';

export type SafeDtype = 'F32' | 'F64' | 'I32' | 'U8';

export interface SafeTensor {
  dtype: SafeDtype;
  shape: number[];
  data: Float32Array | Float64Array | Int32Array | Uint8Array;
}

const BYTES: Record<SafeDtype, number> = { F32: 4, F64: 8, I32: 4, U8: 1 };
/** Headers larger than this are not a model of ours (and would be a way to exhaust memory). */
const MAX_HEADER_BYTES = 64 * 1024 * 1024;

function dtypeOf(data: SafeTensor['data']): SafeDtype {
  if (data instanceof Float32Array) return 'F32';
  if (data instanceof Float64Array) return 'F64';
  if (data instanceof Int32Array) return 'I32';
  return 'U8';
}

/**
 * Serialises tensors (in the order given, each 8-byte aligned) and string metadata. Returns the
 * header bytes and the data bytes separately so a caller can hash the data.
 */
export function encodeSafetensors(
  tensors: ReadonlyMap<string, SafeTensor['data'] | SafeTensor>,
  metadata: Record<string, string>,
): { header: Uint8Array; data: Uint8Array } {
  const entries: Record<string, unknown> = {};
  let offset = 0;
  const parts: { offset: number; bytes: Uint8Array }[] = [];
  for (const [name, value] of tensors) {
    const t: SafeTensor = ArrayBuffer.isView(value)
      ? { dtype: dtypeOf(value), shape: [value.length], data: value }
      : (value as SafeTensor);
    const bytes = new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
    offset = Math.ceil(offset / 8) * 8;
    entries[name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + bytes.byteLength] };
    parts.push({ offset, bytes });
    offset += bytes.byteLength;
  }
  const json = JSON.stringify({ __metadata__: metadata, ...entries });
  let headerText = Buffer.from(json, 'utf8');
  // Pad the JSON with spaces so the data starts 8-byte aligned (allowed by the format).
  const padded = Math.ceil((8 + headerText.byteLength) / 8) * 8 - 8;
  if (padded > headerText.byteLength) headerText = Buffer.concat([headerText, Buffer.alloc(padded - headerText.byteLength, 0x20)]);
  const header = new Uint8Array(8 + headerText.byteLength);
  new DataView(header.buffer).setBigUint64(0, BigInt(headerText.byteLength), true);
  header.set(headerText, 8);
  const data = new Uint8Array(offset);
  for (const p of parts) data.set(p.bytes, p.offset);
  return { header, data };
}

function bad(file: string, what: string): never {
  throw new DclError('E_FORMAT', `${file} is not a valid safetensors file: ${what}`);
}

/** Parses a whole safetensors file. `file` names it in error messages. */
export function decodeSafetensors(
  bytes: Uint8Array,
  file = 'the file',
): { tensors: Map<string, SafeTensor>; metadata: Record<string, string>; data: Uint8Array } {
  if (bytes.byteLength < 8) bad(file, `it has ${bytes.byteLength} bytes, fewer than the 8-byte header length`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLength = view.getBigUint64(0, true);
  if (headerLength > BigInt(Math.min(MAX_HEADER_BYTES, bytes.byteLength - 8)))
    bad(file, `its header length (${headerLength}) runs past the end of the file (${bytes.byteLength} bytes) or is implausibly large`);
  const hl = Number(headerLength);
  let header: unknown;
  try {
    header = JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset + 8, hl).toString('utf8'));
  } catch {
    bad(file, 'its header is not JSON');
  }
  if (header === null || typeof header !== 'object' || Array.isArray(header)) bad(file, 'its header is not a JSON object');
  const data = bytes.subarray(8 + hl);
  const metadata: Record<string, string> = {};
  const tensors = new Map<string, SafeTensor>();
  const ranges: [number, number, string][] = [];
  for (const [name, entry] of Object.entries(header as Record<string, unknown>)) {
    if (name === '__metadata__') {
      if (entry === null || typeof entry !== 'object' || Array.isArray(entry)) bad(file, '__metadata__ is not an object');
      for (const [k, v] of Object.entries(entry as Record<string, unknown>)) {
        if (typeof v !== 'string') bad(file, `metadata entry '${k}' is not a string`);
        metadata[k] = v;
      }
      continue;
    }
    const e = entry as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    if (e === null || typeof e !== 'object') bad(file, `tensor '${name}' has no description`);
    if (typeof e.dtype !== 'string' || !(e.dtype in BYTES)) bad(file, `tensor '${name}' has an unsupported dtype ${JSON.stringify(e.dtype)}`);
    const dtype = e.dtype as SafeDtype;
    if (!Array.isArray(e.shape) || !e.shape.every((d) => Number.isSafeInteger(d) && d >= 0))
      bad(file, `tensor '${name}' has an invalid shape`);
    const shape = e.shape as number[];
    const offsets = e.data_offsets;
    if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every((o) => Number.isSafeInteger(o) && o >= 0))
      bad(file, `tensor '${name}' has invalid data_offsets`);
    const [begin, end] = offsets as [number, number];
    const count = shape.reduce((a, b) => a * b, 1);
    if (end < begin || end > data.byteLength)
      bad(file, `tensor '${name}' lies outside the data (bytes ${begin}-${end} of ${data.byteLength}): the file is truncated`);
    if (end - begin !== count * BYTES[dtype])
      bad(file, `tensor '${name}' has ${end - begin} bytes but its shape [${shape.join(', ')}] of ${dtype} needs ${count * BYTES[dtype]}`);
    ranges.push([begin, end, name]);
    // Copy into a fresh, aligned buffer: the file's bytes may sit at any alignment.
    // (Uint8Array's slice copies; a Node Buffer's slice would be a view at the file's alignment.)
    const raw = Uint8Array.prototype.slice.call(data, begin, end);
    const values =
      dtype === 'F32'
        ? new Float32Array(raw.buffer, raw.byteOffset, count)
        : dtype === 'F64'
          ? new Float64Array(raw.buffer, raw.byteOffset, count)
          : dtype === 'I32'
            ? new Int32Array(raw.buffer, raw.byteOffset, count)
            : new Uint8Array(raw.buffer, raw.byteOffset, count);
    tensors.set(name, { dtype, shape, data: values });
  }
  ranges.sort((a, b) => a[0] - b[0]);
  for (let i = 1; i < ranges.length; i++)
    if (ranges[i][0] < ranges[i - 1][1]) bad(file, `tensors '${ranges[i - 1][2]}' and '${ranges[i][2]}' overlap`);
  return { tensors, metadata, data };
}
