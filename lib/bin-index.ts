// BinIndex: face search over the bins of a code layout (the paper's section 3.2). Every code is a
// bin; a query visits the occupied bins in ascending distance from the query (Hamming for Q = 1,
// L1 over the Q-bit dimensions for Q > 1), bins at one distance in ascending code (as uint32),
// and collects each bin's faces in insertion order.
//
// Storage (all typed arrays, rebuilt on every add / remove; see the README):
// - codes: the B occupied bins' codes, ascending (Uint32Array), and start: B + 1 offsets;
// - ids: the N face ids grouped by bin (Uint32Array while every id is below 2^32, else
//   Float64Array), and idOrder: the N positions sorted by id (get / remove / duplicate checks);
// - keys / vals: an open-addressing hash table from a bin code to its index, built on the first
//   search that enumerates (load <= 0.7);
// - dir: the prefix directory, built on the first prefix search;
// - mihOffsets / mihCodes / mihBins: the multi-index hashing tables, built on the first mih search.
// The search itself is native (native/cpu/bins.cpp); this file owns validation, the choice of
// strategy, persistence and the mapping from face positions to ids.
import { codesUint32, parseLayout, unusedBits } from './codes.js';
import type { CodeLayout, LayoutLike } from './codes.js';
import { DclError, fromNativeError } from './errors.js';
import { readFileChecked, sha256Hex, writeFileAtomic } from './files.js';
import { native } from './native.js';
import type { NativeBinBatch, NativeBinView } from './native.js';
import { describe, fail, knownKeys, plainObject } from './validate.js';

/** 'rank': rank every occupied bin by its distance (an exhaustive scan over the B bin codes);
 *  'enumerate': generate the neighbouring codes radius by radius and look each up in a hash table;
 *  'prefix': generate the neighbouring prefixes (the top dimensions) level by level and scan the
 *  bins under each (layouts with n >= 2);
 *  'mih': multi-index hashing: the dimensions split into m groups, one table per group from a
 *  group value to its bins; the neighbouring group values level by level in every table, their
 *  bins' full distances (layouts with n >= 2);
 *  'auto': whichever the cost estimate says is cheapest. All give identical results. */
export type BinStrategy = 'auto' | 'rank' | 'enumerate' | 'prefix' | 'mih';
type Chosen = 'rank' | 'enumerate' | 'prefix' | 'mih';

export interface BinSearchOptions {
  /** Faces to return at most: default 10, or no limit (Infinity) when maxBins or maxDistance is given. */
  k?: number;
  /** Occupied bins to visit at most (default: no limit). */
  maxBins?: number;
  /** Bins farther than this are not visited (default: no limit). */
  maxDistance?: number;
  /** Default 'auto'. */
  strategy?: BinStrategy;
}

export interface BinSearchStats {
  /** Neighbouring codes (enumerate), prefixes (prefix) or group values (mih, over all tables) generated; 0 for rank. */
  binsEnumerated: number;
  /** Hash-table slots read (enumerate), or occupied bins whose distance was computed (rank, prefix, mih candidates). */
  binsProbed: number;
  /** Occupied bins whose faces were collected. */
  binsVisited: number;
  strategy: Chosen;
}

export interface BinSearchResult {
  /** Face ids in visiting order: ascending distance, then bin code (uint32), then insertion order. */
  ids: Float64Array;
  distances: Uint32Array;
  stats: BinSearchStats;
}

export interface BinBatchResult {
  /** Number of queries. Query i's results are ids / distances [offsets[i], offsets[i + 1]). */
  count: number;
  offsets: Float64Array;
  ids: Float64Array;
  distances: Uint32Array;
  /** Sums over the queries. */
  stats: BinSearchStats;
}

export interface BinSearchPlan {
  strategy: Chosen;
  /** Estimated relative costs (units: one bin-code distance of the rank scan). */
  rankCost: number;
  enumerateCost: number;
  /** Infinity where the layout has one dimension. */
  prefixCost: number;
  /** Infinity where the layout has one dimension or the radius is unknown. */
  mihCost: number;
  /** Dimensions per MIH group, top group first (empty: one dimension, no MIH). */
  mihDims: number[];
  /** The top dimensions the prefix directory covers (0: none). */
  prefixDims: number;
  /** The radius the enumeration is expected to reach (null: beyond what is worth enumerating). */
  radius: number | null;
  /** Expected codes within that radius (what the enumeration generates). */
  codesWithinRadius: number;
}

export const BIN_INDEX_FORMAT_VERSION = 1;
const MAGIC = 'DCLBINS\0';
const HEADER_BYTES = 40;
const CHECKSUM_BYTES = 32;

// Cost model: a hash look-up (a random DRAM access, overlapped by prefetching) against one
// distance of the sequential rank scan.
const PROBE_COST = 10;
const RANK_COST = 1;
// One MIH candidate: a popcount (or L1) and a compare over a contiguous run, like the rank scan.
const MIH_CANDIDATE_COST = 1;
const MIH_MAX_GROUPS = 8;
const MIH_MAX_GROUP_BITS = 20;

const ID_RULE = 'non-negative safe integers';


function checkQuery(value: unknown, l: CodeLayout, name: string): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < -(2 ** 31) || value >= 2 ** 32)
    fail('E_ARG', 'an integer code (int32 or uint32)', name, value);
  const u = value >>> 0;
  if ((u & unusedBits(l)) !== 0)
    throw new DclError('E_ARG', `Expected a code of layout ${l.name} (bits above ${l.bits} zero) for ${name} but received 0x${u.toString(16)}`);
  return u;
}

function isArrayLike(value: unknown): value is ArrayLike<unknown> {
  return (
    value !== null &&
    typeof value === 'object' &&
    typeof (value as { length?: unknown }).length === 'number' &&
    (Array.isArray(value) || ArrayBuffer.isView(value))
  );
}

function checkIds(value: unknown, name: string, length?: number): Float64Array {
  if (!isArrayLike(value)) fail('E_ARG', `an array or typed array of ids (${ID_RULE})`, name, value);
  if (length !== undefined && value.length !== length)
    throw new DclError('E_SHAPE', `Expected ${length} ids (one per code) for ${name} but received ${describe(value)}`);
  const out = new Float64Array(value.length);
  for (let i = 0; i < value.length; i++) {
    const v = value[i];
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) fail('E_ARG', `ids that are ${ID_RULE}`, `${name}[${i}]`, v);
    out[i] = v;
  }
  return out;
}

function limitOption(value: unknown, name: string, fallback: number): number {
  if (value === undefined) return fallback;
  if (value === Infinity) return Infinity;
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0)
    fail('E_ARG', 'a non-negative integer or Infinity', name, value);
  return value;
}

interface ResolvedOptions {
  k: number;
  maxBins: number;
  maxDistance: number;
  strategy: BinStrategy;
}

function searchOptions(options: unknown, name = 'options'): ResolvedOptions {
  const o = plainObject(options, name);
  knownKeys(o, ['k', 'maxBins', 'maxDistance', 'strategy'], name);
  const maxBins = limitOption(o.maxBins, `${name}.maxBins`, Infinity);
  const maxDistance = limitOption(o.maxDistance, `${name}.maxDistance`, Infinity);
  const k = limitOption(o.k, `${name}.k`, o.maxBins === undefined && o.maxDistance === undefined ? 10 : Infinity);
  const strategy = o.strategy === undefined ? 'auto' : o.strategy;
  if (strategy !== 'auto' && strategy !== 'rank' && strategy !== 'enumerate' && strategy !== 'prefix' && strategy !== 'mih')
    fail('E_ARG', "'auto', 'rank', 'enumerate', 'prefix' or 'mih'", `${name}.strategy`, strategy);
  return { k, maxBins, maxDistance, strategy };
}

// Average number of codes within distance r of a uniformly random code of the layout (the layout's
// distance distribution times 2^bits), r = 0, 1, ...; truncated where enumerating would never pay.
const cumulativeCache = new Map<string, Float64Array>();
const MAX_CUMULATIVE = 2 ** 36;

function cumulativeCodes(l: CodeLayout): Float64Array {
  const cached = cumulativeCache.get(l.name);
  if (cached) return cached;
  const L = l.levels;
  const maxD = l.q === 1 ? l.n : l.n * (L - 1);
  // Keep the convolution under about 2e7 steps.
  let cap = Math.min(maxD, 65535);
  while (cap > 64 && l.n * cap * Math.min(L, cap + 1) > 2e7) cap = Math.floor(cap / 2);
  const one = new Float64Array(Math.min(L - 1, cap) + 1);
  for (let d = 0; d < one.length; d++) one[d] = d === 0 ? 1 : (2 * (L - d)) / L;
  let dist = new Float64Array([1]);
  for (let i = 0; i < l.n; i++) {
    const len = Math.min(dist.length + one.length - 1, cap + 1);
    const next = new Float64Array(len);
    for (let a = 0; a < dist.length; a++) {
      const x = dist[a];
      if (x === 0) continue;
      for (let b = 0; b < one.length && a + b < len; b++) next[a + b] += x * one[b];
    }
    dist = next;
  }
  let sum = 0;
  let end = dist.length;
  const cum = new Float64Array(dist.length);
  for (let r = 0; r < dist.length; r++) {
    sum += dist[r];
    cum[r] = sum;
    if (sum > MAX_CUMULATIVE) {
      end = r + 1;
      break;
    }
  }
  const out = cum.slice(0, end);
  cumulativeCache.set(l.name, out);
  return out;
}

function readU64(view: DataView, at: number): number {
  return view.getUint32(at, true) + view.getUint32(at + 4, true) * 2 ** 32;
}

export class BinIndex {
  readonly layout: CodeLayout;
  #codes = new Uint32Array(0);
  #start = new Uint32Array(1);
  #ids: Uint32Array | Float64Array = new Uint32Array(0);
  #idOrder = new Uint32Array(0);
  #keys: Uint32Array | null = null;
  #vals: Uint32Array | null = null;
  #allOnesBin = -1;
  #dir: Uint32Array | null = null;
  #mihGroups = 0;
  #mihDimsBuilt: number[] | null = null;
  #mihOffsets: Uint32Array | null = null;
  #mihCodes: Uint32Array | null = null;
  #mihBins: Uint32Array | null = null;

  /**
   * layout: the code layout. mihGroups (optional): the number of groups of the 'mih' strategy's
   * tables, 2 to 8 (at most n, raised where a group would exceed 20 bits); default: chosen by
   * the number of occupied bins (groups of about log2(bins) bits).
   */
  constructor(options: { layout: LayoutLike; mihGroups?: number }) {
    const o = plainObject(options, 'options');
    knownKeys(o, ['layout', 'mihGroups'], 'options');
    if (o.layout === undefined) fail('E_ARG', "a layout such as '32x1' or '8x4'", 'options.layout', undefined);
    this.layout = parseLayout(o.layout, 'options.layout');
    if (o.mihGroups !== undefined) {
      if (typeof o.mihGroups !== 'number' || !Number.isInteger(o.mihGroups) || o.mihGroups < 2 || o.mihGroups > MIH_MAX_GROUPS)
        fail('E_ARG', `an integer from 2 to ${MIH_MAX_GROUPS}`, 'options.mihGroups', o.mihGroups);
      this.#mihGroups = o.mihGroups;
    }
  }

  /** Faces stored. */
  get size(): number {
    return this.#ids.length;
  }

  /** Occupied bins. */
  get bins(): number {
    return this.#codes.length;
  }

  /**
   * Bytes held: per face the id (4 bytes, 8 once an id is 2^32 or more) and its place in the id
   * order (4); per occupied bin its code and offset (8); the hash table (8 bytes a slot, 1.43 to
   * 2.86 slots per bin) once a search has enumerated; the prefix directory (4 bytes per prefix,
   * about one prefix per 4 bins) once a search has used it; the MIH tables once a mih search has
   * used them: 8 bytes per bin per table after the first (a code and a bin index; the first table
   * is the bins' own order) plus 4 bytes per group value (2^(group bits) + 1 per table): 8 bytes a
   * bin with 2 groups.
   */
  get memoryBytes(): number {
    return (
      this.#codes.byteLength +
      this.#start.byteLength +
      this.#ids.byteLength +
      this.#idOrder.byteLength +
      (this.#keys?.byteLength ?? 0) +
      (this.#vals?.byteLength ?? 0) +
      (this.#dir?.byteLength ?? 0) +
      (this.#mihOffsets?.byteLength ?? 0) +
      (this.#mihCodes?.byteLength ?? 0) +
      (this.#mihBins?.byteLength ?? 0)
    );
  }

  /**
   * Adds faces: codes[i] with ids[i]. Ids are non-negative safe integers, each stored once (an id
   * already in the index, or repeated in `ids`, is E_ARG and nothing is added); many faces may
   * share a bin. Rebuilds the arrays (O(N + M) radix sorts): add in batches.
   */
  add(codes: Int32Array | Uint32Array, ids: ArrayLike<number>): void {
    const c = codesUint32(codes, this.layout, 'codes');
    const newIds = checkIds(ids, 'ids', c.length);
    if (c.length === 0) return;
    const n = this.size;
    const allCodes = new Uint32Array(n + c.length);
    this.#expandCodes(allCodes);
    allCodes.set(c, n);
    const allIds = new Float64Array(n + c.length);
    allIds.set(this.#ids);
    allIds.set(newIds, n);
    this.#rebuild(allCodes, allIds, 'E_ARG');
  }

  /** Removes the faces with these ids (ids not in the index are ignored); returns how many were removed. */
  remove(ids: ArrayLike<number>): number {
    const list = checkIds(ids, 'ids');
    const n = this.size;
    const gone = new Uint8Array(n);
    let removed = 0;
    for (let i = 0; i < list.length; i++) {
      const p = this.#find(list[i]);
      if (p >= 0 && gone[p] === 0) {
        gone[p] = 1;
        removed++;
      }
    }
    if (removed === 0) return 0;
    const all = new Uint32Array(n);
    this.#expandCodes(all);
    const codes = new Uint32Array(n - removed);
    const keptIds = new Float64Array(n - removed);
    for (let p = 0, j = 0; p < n; p++)
      if (gone[p] === 0) {
        codes[j] = all[p];
        keptIds[j++] = this.#ids[p];
      }
    this.#rebuild(codes, keptIds, 'E_ARG');
    return removed;
  }

  /** True when a face with this id is stored. */
  has(id: number): boolean {
    if (typeof id !== 'number' || !Number.isSafeInteger(id) || id < 0) fail('E_ARG', `an id (${ID_RULE.slice(0, -1)})`, 'id', id);
    return this.#find(id) >= 0;
  }

  /** The code stored with this id (an int32, as in the Int32Array given to add), or undefined. */
  get(id: number): number | undefined {
    if (typeof id !== 'number' || !Number.isSafeInteger(id) || id < 0) fail('E_ARG', `an id (${ID_RULE.slice(0, -1)})`, 'id', id);
    const p = this.#find(id);
    if (p < 0) return undefined;
    // The bin holding position p: the last b with start[b] <= p.
    let lo = 0;
    let hi = this.#codes.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >>> 1;
      if (this.#start[mid] <= p) lo = mid;
      else hi = mid - 1;
    }
    return this.#codes[lo] | 0;
  }

  /** Every stored face as (codes, ids), grouped by bin in ascending code, insertion order within a bin. */
  entries(): { codes: Int32Array; ids: Float64Array } {
    const codes = new Uint32Array(this.size);
    this.#expandCodes(codes);
    return { codes: new Int32Array(codes.buffer), ids: Float64Array.from(this.#ids) };
  }

  /** Which strategy `auto` takes for these options, with the estimated costs. */
  explain(options?: BinSearchOptions): BinSearchPlan {
    return this.#plan(searchOptions(options));
  }

  /**
   * The faces nearest to `query` (an int32 or uint32 code of the layout), visiting bins in
   * ascending distance (ties: ascending code as uint32; faces of a bin in insertion order). Stops
   * when maxBins bins were visited, when k faces were collected (the k returned are then exactly
   * the first k of that order), or beyond maxDistance.
   */
  search(query: number, options?: BinSearchOptions): BinSearchResult {
    const q = checkQuery(query, this.layout, 'query');
    const o = searchOptions(options);
    const plan = this.#plan(o);
    const ids = this.#ids;
    let r;
    try {
      r = native.binsSearch(this.#view(plan.strategy), q, this.#nativeOptions(o, plan.strategy));
    } catch (error) {
      throw fromNativeError(error, 'binsSearch');
    }
    const out = new Float64Array(r.positions.length);
    for (let i = 0; i < out.length; i++) out[i] = ids[r.positions[i]];
    return { ids: out, distances: r.distances, stats: this.#stats(r.stats, plan.strategy) };
  }

  /** search for many queries on the thread pool, off the event loop. */
  async searchBatch(queries: Int32Array | Uint32Array, options?: BinSearchOptions): Promise<BinBatchResult> {
    const { q, o, plan } = this.#batchArgs(queries, options);
    const ids = this.#ids; // the arrays of this moment (an add during the search builds new ones)
    let r: NativeBinBatch;
    try {
      r = await native.binsSearchBatch(this.#view(plan.strategy), q, this.#nativeOptions(o, plan.strategy), true);
    } catch (error) {
      throw fromNativeError(error, 'binsSearchBatch');
    }
    return this.#batchResult(r, ids, q.length, plan.strategy);
  }

  /** searchBatch on the calling thread (still on the thread pool). */
  searchBatchSync(queries: Int32Array | Uint32Array, options?: BinSearchOptions): BinBatchResult {
    const { q, o, plan } = this.#batchArgs(queries, options);
    const r = native.binsSearchBatch(this.#view(plan.strategy), q, this.#nativeOptions(o, plan.strategy), false);
    return this.#batchResult(r, this.#ids, q.length, plan.strategy);
  }

  /**
   * Writes the index atomically: magic 'DCLBINS\0', format version, layout n and q, id type,
   * count, bins, then every face's code (uint32, grouped by bin) and id (uint32 or float64), all
   * little-endian, then the SHA-256 of everything before it.
   */
  async save(path: string): Promise<void> {
    this.saveSync(path);
  }

  saveSync(path: string): void {
    if (typeof path !== 'string' || path.length === 0) fail('E_ARG', 'a file path', 'path', path);
    const n = this.size;
    const header = new Uint8Array(HEADER_BYTES);
    const view = new DataView(header.buffer);
    for (let i = 0; i < 8; i++) header[i] = MAGIC.charCodeAt(i);
    view.setUint32(8, BIN_INDEX_FORMAT_VERSION, true);
    view.setUint32(12, this.layout.n, true);
    view.setUint32(16, this.layout.q, true);
    view.setUint32(20, this.#ids instanceof Float64Array ? 1 : 0, true);
    view.setUint32(24, n % 2 ** 32, true);
    view.setUint32(28, Math.floor(n / 2 ** 32), true);
    view.setUint32(32, this.bins % 2 ** 32, true);
    view.setUint32(36, Math.floor(this.bins / 2 ** 32), true);
    const codes = new Uint32Array(n);
    this.#expandCodes(codes);
    const chunks = [header, new Uint8Array(codes.buffer), new Uint8Array(this.#ids.buffer, this.#ids.byteOffset, this.#ids.byteLength)];
    const digest = Buffer.from(sha256Hex(chunks), 'hex');
    writeFileAtomic(path, [...chunks, digest]);
  }

  /** Reads a file written by save: E_IO when it cannot be read, E_FORMAT when it is not a valid index. */
  static async load(path: string): Promise<BinIndex> {
    return BinIndex.loadSync(path);
  }

  static loadSync(path: string): BinIndex {
    const bytes = readFileChecked(path);
    const bad = (why: string) => new DclError('E_FORMAT', `${path} is not a valid dcl-native bin index: ${why}`);
    if (bytes.length < HEADER_BYTES + CHECKSUM_BYTES) throw bad(`the file has ${bytes.length} bytes, fewer than a header`);
    for (let i = 0; i < 8; i++) if (bytes[i] !== MAGIC.charCodeAt(i)) throw bad('wrong magic bytes (another kind of file)');
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const version = view.getUint32(8, true);
    if (version !== BIN_INDEX_FORMAT_VERSION) throw bad(`format version ${version}, this library reads version ${BIN_INDEX_FORMAT_VERSION}`);
    const n = view.getUint32(12, true);
    const q = view.getUint32(16, true);
    if (!(n >= 1 && q >= 1 && q <= 32 && n * q <= 32)) throw bad(`layout ${n}x${q} is not a valid layout`);
    const idType = view.getUint32(20, true);
    if (idType !== 0 && idType !== 1) throw bad(`unknown id type ${idType}`);
    const count = readU64(view, 24);
    const bins = readU64(view, 32);
    const idBytes = idType === 1 ? 8 : 4;
    const expected = HEADER_BYTES + count * (4 + idBytes) + CHECKSUM_BYTES;
    if (bytes.length !== expected) throw bad(`${bytes.length} bytes where the header promises ${expected} (truncated or padded)`);
    const body = bytes.subarray(0, bytes.length - CHECKSUM_BYTES);
    if (sha256Hex([body]) !== bytes.subarray(bytes.length - CHECKSUM_BYTES).toString('hex')) throw bad('checksum mismatch (the file is corrupt)');
    const index = new BinIndex({ layout: { n, q } });
    const codes = new Uint32Array(count);
    new Uint8Array(codes.buffer).set(bytes.subarray(HEADER_BYTES, HEADER_BYTES + 4 * count));
    const idsStart = HEADER_BYTES + 4 * count;
    const ids = new Float64Array(count);
    if (idType === 1) new Uint8Array(ids.buffer).set(bytes.subarray(idsStart, idsStart + 8 * count));
    else ids.set(new Uint32Array(new Uint8Array(bytes.subarray(idsStart, idsStart + 4 * count)).buffer));
    const unused = unusedBits(index.layout);
    for (let i = 0; i < count; i++) {
      if ((codes[i] & unused) !== 0) throw bad(`code 0x${codes[i].toString(16)} at face ${i} does not fit layout ${n}x${q}`);
      if (i > 0 && codes[i] < codes[i - 1]) throw bad(`codes are not grouped by bin at face ${i}`);
      if (!Number.isSafeInteger(ids[i]) || ids[i] < 0) throw bad(`id ${ids[i]} at face ${i} is not a non-negative safe integer`);
    }
    index.#rebuild(codes, ids, 'E_FORMAT');
    if (index.bins !== bins) throw bad(`${index.bins} bins where the header says ${bins}`);
    return index;
  }

  // ---- internals ----------------------------------------------------------------------------

  #expandCodes(out: Uint32Array): void {
    const codes = this.#codes;
    const start = this.#start;
    for (let b = 0; b < codes.length; b++) out.fill(codes[b], start[b], start[b + 1]);
  }

  /** Position of the face with this id, or -1. */
  #find(id: number): number {
    const ids = this.#ids;
    const order = this.#idOrder;
    let lo = 0;
    let hi = order.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (ids[order[mid]] < id) lo = mid + 1;
      else hi = mid;
    }
    return lo < order.length && ids[order[lo]] === id ? order[lo] : -1;
  }

  /** Replaces the contents with these faces (stable by code: earlier faces first within a bin). */
  #rebuild(allCodes: Uint32Array, allIds: Float64Array, duplicateCode: 'E_ARG' | 'E_FORMAT'): void {
    const n = allCodes.length;
    if (n >= 2 ** 32 - 1) throw new DclError('E_ARG', `Expected at most ${2 ** 32 - 2} faces for a BinIndex but received ${n}`);
    let wide = false;
    for (let i = 0; i < n; i++)
      if (allIds[i] >= 2 ** 32) {
        wide = true;
        break;
      }
    const order = new Uint32Array(n);
    native.binsArgsort(allCodes, order);
    const sorted = new Uint32Array(n);
    const ids = wide ? new Float64Array(n) : new Uint32Array(n);
    for (let i = 0; i < n; i++) {
      const j = order[i];
      sorted[i] = allCodes[j];
      ids[i] = allIds[j];
    }
    const idOrder = new Uint32Array(n);
    native.binsArgsort(ids, idOrder);
    for (let i = 1; i < n; i++)
      if (ids[idOrder[i]] === ids[idOrder[i - 1]]) {
        const id = ids[idOrder[i]];
        if (duplicateCode === 'E_FORMAT') throw new DclError('E_FORMAT', `The bin index file stores the id ${id} twice`);
        throw new DclError('E_ARG', `Expected ids not already in the index and not repeated for ids but received the id ${id} twice`);
      }
    const codes = new Uint32Array(n + 1);
    const start = new Uint32Array(n + 1);
    const bins = n === 0 ? 0 : native.binsGroup(sorted, codes, start);
    this.#codes = codes.slice(0, bins);
    this.#start = start.slice(0, bins + 1);
    this.#ids = ids;
    this.#idOrder = idOrder;
    this.#keys = null;
    this.#vals = null;
    this.#allOnesBin = -1;
    this.#dir = null;
    this.#mihDimsBuilt = null;
    this.#mihOffsets = null;
    this.#mihCodes = null;
    this.#mihBins = null;
  }

  /**
   * MIH groups: dimensions per group, top group first, as even as possible (the top groups take
   * the remainder); m groups of about log2(bins) bits (or the constructor's mihGroups), 2 <= m <=
   * min(n, 8), no group above 20 bits. Empty when n = 1.
   */
  #mihDims(): number[] {
    const l = this.layout;
    const most = Math.min(l.n, MIH_MAX_GROUPS);
    if (most < 2) return [];
    let m = this.#mihGroups > 0 ? this.#mihGroups : Math.round(l.bits / Math.max(1, Math.log2(Math.max(2, this.bins))));
    m = Math.max(2, Math.min(most, m));
    while (m < most && Math.ceil(l.n / m) * l.q > MIH_MAX_GROUP_BITS) m++;
    if (Math.ceil(l.n / m) * l.q > MIH_MAX_GROUP_BITS) return [];
    const base = Math.floor(l.n / m);
    const extra = l.n % m;
    return Array.from({ length: m }, (_, t) => base + (t < extra ? 1 : 0));
  }

  #ensureMih(): void {
    const dims = this.#mihDims();
    if (dims.length === 0) throw new DclError('E_ARG', `Expected a layout with at least 2 dimensions for the mih strategy but received ${this.layout.name}`);
    if (this.#mihOffsets && this.#mihDimsBuilt && this.#mihDimsBuilt.join() === dims.join()) return;
    let size = 0;
    for (const d of dims) size += 2 ** (d * this.layout.q) + 1;
    const B = this.bins;
    this.#mihOffsets = new Uint32Array(size);
    this.#mihCodes = new Uint32Array((dims.length - 1) * B);
    this.#mihBins = new Uint32Array((dims.length - 1) * B);
    native.binsBuildMih(this.#codes, this.layout.n, this.layout.q, dims, this.#mihOffsets, this.#mihCodes, this.#mihBins);
    this.#mihDimsBuilt = dims;
  }

  /** Top dimensions of the prefix directory: about 4 bins per prefix, at most 24 bits, 0 when n = 1. */
  #prefixDims(): number {
    const l = this.layout;
    if (l.n < 2) return 0;
    const bits = Math.log2(Math.max(2, this.bins / 4));
    return Math.max(1, Math.min(l.n - 1, Math.floor(24 / l.q), Math.floor(bits / l.q)));
  }

  #ensureDir(): void {
    if (this.#dir) return;
    const m = this.#prefixDims();
    if (m === 0) throw new DclError('E_ARG', `Expected a layout with at least 2 dimensions for the prefix strategy but received ${this.layout.name}`);
    this.#dir = new Uint32Array(2 ** (m * this.layout.q) + 1);
    native.binsBuildPrefix(this.#codes, this.layout.n, this.layout.q, m, this.#dir);
  }

  #ensureHash(): void {
    if (this.#keys) return;
    const slots = native.binsHashSlots(this.bins);
    this.#keys = new Uint32Array(slots);
    this.#vals = new Uint32Array(slots);
    this.#allOnesBin = native.binsBuildHash(this.#codes, this.#keys, this.#vals);
  }

  #view(strategy: Chosen): NativeBinView {
    if (strategy === 'enumerate') this.#ensureHash();
    if (strategy === 'prefix') this.#ensureDir();
    if (strategy === 'mih') this.#ensureMih();
    return {
      n: this.layout.n,
      q: this.layout.q,
      codes: this.#codes,
      start: this.#start,
      keys: strategy === 'enumerate' ? this.#keys : null,
      vals: strategy === 'enumerate' ? this.#vals : null,
      allOnesBin: this.#allOnesBin,
      prefixDims: strategy === 'prefix' ? this.#prefixDims() : 0,
      dir: strategy === 'prefix' ? this.#dir : null,
      mihDims: strategy === 'mih' ? this.#mihDimsBuilt : null,
      mihOffsets: strategy === 'mih' ? this.#mihOffsets : null,
      mihCodes: strategy === 'mih' ? this.#mihCodes : null,
      mihBins: strategy === 'mih' ? this.#mihBins : null,
    };
  }

  #nativeOptions(o: ResolvedOptions, strategy: Chosen): number[] {
    return [o.k, o.maxBins, o.maxDistance, strategy === 'enumerate' ? 1 : strategy === 'prefix' ? 2 : strategy === 'mih' ? 3 : 0];
  }

  #plan(o: ResolvedOptions): BinSearchPlan {
    const B = this.bins;
    const N = this.size;
    const rankCost = B * RANK_COST;
    let radius: number | null = null;
    let codesWithinRadius = Infinity;
    if (B > 0) {
      // Bins needed: at most maxBins, and about k / (faces per bin) for k faces.
      const needed = Math.max(1, Math.min(o.maxBins, B, Math.ceil((o.k * B) / N)));
      const density = B / 2 ** this.layout.bits;
      const cum = cumulativeCodes(this.layout);
      for (let r = 0; r < cum.length; r++) {
        if (cum[r] * density >= needed || r >= o.maxDistance) {
          radius = r;
          codesWithinRadius = cum[r];
          break;
        }
      }
      if (radius === null && cum.length > 0 && cum[cum.length - 1] * density < needed && cum.length - 1 === (this.layout.q === 1 ? this.layout.n : this.layout.n * (this.layout.levels - 1))) {
        radius = cum.length - 1; // the whole code space
        codesWithinRadius = cum[radius];
      }
    }
    const enumerateCost = codesWithinRadius * PROBE_COST;
    // Prefix: the prefixes within the radius (one random access each) and the bins under them.
    const prefixDims = this.#prefixDims();
    let prefixCost = Infinity;
    if (prefixDims > 0 && radius !== null) {
      const sub = cumulativeCodes(parseLayout({ n: prefixDims, q: this.layout.q }));
      const prefixes = sub[Math.min(radius, sub.length - 1)];
      prefixCost = prefixes * PROBE_COST + 2 * RANK_COST * prefixes * (B / 2 ** (prefixDims * this.layout.q));
    }
    // MIH: the steps (level s, table t) until sum over tables of (last level + 1) exceeds the
    // radius (or a table is exhausted); each step's group values (one random access each) and the
    // bins under them (a sequential filter).
    const mihDims = this.#mihDims();
    let mihCost = Infinity;
    if (mihDims.length > 0 && radius !== null && B > 0) {
      const q = this.layout.q;
      const subs = mihDims.map((d) => cumulativeCodes(parseLayout({ n: d, q })));
      const reach = mihDims.map((d) => (q === 1 ? d : d * (2 ** q - 1)));
      const levels = mihDims.map(() => -1);
      let buckets = 0;
      let candidates = 0;
      let done = false;
      for (let lev = 0; !done; lev++) {
        for (let t = 0; t < mihDims.length && !done; t++) {
          const sub = subs[t];
          const at = Math.min(lev, sub.length - 1);
          const values = lev < sub.length ? sub[at] - (lev > 0 ? sub[at - 1] : 0) : 0;
          buckets += values;
          candidates += (values * B) / 2 ** (mihDims[t] * q);
          levels[t] = lev;
          let bound = -1;
          for (const s of levels) bound += s + 1;
          if (bound >= radius || lev >= reach[t]) done = true;
        }
      }
      mihCost = buckets * PROBE_COST + candidates * MIH_CANDIDATE_COST;
    }
    const costs: [Chosen, number][] = [
      ['rank', rankCost],
      ['prefix', prefixCost],
      ['enumerate', enumerateCost],
      ['mih', mihCost],
    ];
    let strategy: Chosen = 'rank';
    let best = rankCost;
    if (B > 0)
      for (const [name, cost] of costs)
        if (cost < best) {
          best = cost;
          strategy = name;
        }
    if (o.strategy !== 'auto') strategy = o.strategy;
    if (strategy === 'prefix' && prefixDims === 0) strategy = o.strategy === 'prefix' ? 'rank' : strategy;
    if (strategy === 'mih' && mihDims.length === 0) strategy = 'rank';
    return { strategy, rankCost, enumerateCost, prefixCost, mihCost, mihDims, prefixDims, radius, codesWithinRadius };
  }

  #stats(s: { enumerated: number; probed: number; visited: number }, strategy: Chosen): BinSearchStats {
    return { binsEnumerated: s.enumerated, binsProbed: s.probed, binsVisited: s.visited, strategy };
  }

  #batchArgs(queries: unknown, options: unknown) {
    const q = codesUint32(queries, this.layout, 'queries');
    const o = searchOptions(options);
    return { q, o, plan: this.#plan(o) };
  }

  #batchResult(r: NativeBinBatch, ids: Uint32Array | Float64Array, count: number, strategy: Chosen): BinBatchResult {
    const out = new Float64Array(r.positions.length);
    for (let i = 0; i < out.length; i++) out[i] = ids[r.positions[i]];
    return { count, offsets: r.offsets, ids: out, distances: r.distances, stats: this.#stats(r.stats, strategy) };
  }
}
