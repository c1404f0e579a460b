// Exhaustive search over packed codes: the k nearest database codes of each query, or every code
// within a radius, by scanning the whole database (native kernels on every ISA, threaded; exact).
//
// Distance: the layout's metric (Hamming for Q = 1, L1 over the n Q-bit levels for Q > 1, as in
// codeDistances), or Hamming over the n Q bits with { metric: 'hamming' }.
//
// k nearest: per query the k codes with the smallest (distance, index) pairs, ascending: by
// distance, ties broken by the smaller database index, so the result is fully determined (the
// same on every ISA and thread count). With fewer than k database codes the rest of the row is
// index -1, distance 0xffffffff.
//
// Long scans: knnScanAsync / rangeScanAsync run the same kernel on libuv's thread pool (a native
// AsyncWorker; the kernel itself still uses the native thread pool) and return a Promise, so a
// scan of 10 million codes never blocks the event loop. The database and query arrays must not be
// modified until the promise settles. Kernels started from the main thread meanwhile still run,
// single-threaded while the scan holds the native pool.
import { DclError, fromNativeError } from './errors.js';
import { codesArray, parseLayout } from './codes.js';
import type { CodeLayout, LayoutLike } from './codes.js';
import { native } from './native.js';
import { describe, fail, knownKeys, MAX_ELEMENTS, plainObject } from './validate.js';

/** 'layout' (default; 'l1' is the same): Hamming for Q = 1, L1 over the levels otherwise. 'hamming': differing bits. */
export type ScanMetric = 'layout' | 'l1' | 'hamming';

export interface ScanOptions {
  metric?: ScanMetric;
}

export interface KnnScanResult {
  /** [Q k]: row i holds the database indices of query i's k nearest codes (-1 past N). */
  indices: Int32Array;
  /** [Q k]: their distances, ascending per row (0xffffffff past N). */
  distances: Uint32Array;
  /** k (the row length). */
  k: number;
}

export interface RangeScanResult {
  /** [Q + 1]: the hits of query i are entries offsets[i] .. offsets[i + 1] - 1. */
  offsets: Int32Array;
  /** Database indices, ascending within each query. */
  indices: Int32Array;
  distances: Uint32Array;
}

interface Prepared {
  db: Int32Array;
  queries: Int32Array;
  layout: CodeLayout;
  hamming: boolean;
}

function codes(value: unknown, l: CodeLayout, name: string): Int32Array {
  const c = codesArray(value, l, name, `an Int32Array (or Uint32Array) of codes of layout ${l.name}`);
  if (c.length > MAX_ELEMENTS) fail('E_SHAPE', `at most ${MAX_ELEMENTS} codes`, name, value);
  return c;
}

function prepare(database: unknown, queries: unknown, layout: unknown, options: unknown): Prepared {
  const l = parseLayout(layout);
  const db = codes(database, l, 'database');
  const q = codes(queries, l, 'queries');
  const o = plainObject(options, 'options');
  knownKeys(o, ['metric'], 'options');
  const metric = o.metric === undefined ? 'layout' : o.metric;
  if (metric !== 'layout' && metric !== 'l1' && metric !== 'hamming') fail('E_ARG', "'layout', 'l1' or 'hamming'", 'options.metric', metric);
  return { db, queries: q, layout: l, hamming: metric === 'hamming' };
}

function checkK(k: unknown, queries: number): number {
  if (typeof k !== 'number' || !Number.isSafeInteger(k) || k < 1 || k > MAX_ELEMENTS) fail('E_ARG', `a positive integer no larger than ${MAX_ELEMENTS}`, 'k', k);
  if (queries * k > MAX_ELEMENTS)
    throw new DclError('E_ARG', `Expected k with queries * k <= ${MAX_ELEMENTS} (${queries} queries) for k but received ${describe(k)}`);
  return k;
}

function checkRadius(radius: unknown): number {
  if (typeof radius !== 'number' || Number.isNaN(radius) || radius < 0 || (Number.isFinite(radius) && !Number.isInteger(radius)))
    fail('E_ARG', 'a non-negative integer distance (or Infinity)', 'radius', radius);
  return Math.min(radius, 0xffffffff);
}

function knnArgs(p: Prepared, k: number): { indices: Int32Array; distances: Uint32Array; shape: number[] } {
  const count = p.queries.length * k;
  return {
    indices: new Int32Array(count),
    distances: new Uint32Array(count),
    shape: [p.db.length, p.queries.length, p.layout.n, p.layout.q, p.hamming ? 1 : 0, k],
  };
}

/**
 * The k nearest database codes of each query (exhaustive, exact): { indices, distances } of
 * Q k entries, row i for queries[i], ascending by (distance, index). Blocks the caller for the
 * whole scan: see knnScanAsync for large databases.
 */
export function knnScan(
  database: Int32Array | Uint32Array,
  queries: Int32Array | Uint32Array,
  layout: LayoutLike,
  k: number,
  options?: ScanOptions,
): KnnScanResult {
  const p = prepare(database, queries, layout, options);
  const kk = checkK(k, p.queries.length);
  const a = knnArgs(p, kk);
  if (p.queries.length > 0) native.codeKnn(p.db, p.queries, a.indices, a.distances, a.shape, false);
  return { indices: a.indices, distances: a.distances, k: kk };
}

/** knnScan off the event loop: the same result as a Promise (arguments are checked before it starts). */
export async function knnScanAsync(
  database: Int32Array | Uint32Array,
  queries: Int32Array | Uint32Array,
  layout: LayoutLike,
  k: number,
  options?: ScanOptions,
): Promise<KnnScanResult> {
  const p = prepare(database, queries, layout, options);
  const kk = checkK(k, p.queries.length);
  const a = knnArgs(p, kk);
  if (p.queries.length > 0) {
    try {
      await native.codeKnn(p.db, p.queries, a.indices, a.distances, a.shape, true);
    } catch (error) {
      throw fromNativeError(error, 'knnScanAsync');
    }
  }
  return { indices: a.indices, distances: a.distances, k: kk };
}

function rangeShape(p: Prepared, radius: number): number[] {
  return [p.db.length, p.queries.length, p.layout.n, p.layout.q, p.hamming ? 1 : 0, radius];
}

const EMPTY_RANGE = (): RangeScanResult => ({ offsets: new Int32Array(1), indices: new Int32Array(0), distances: new Uint32Array(0) });

/**
 * Every database code within `radius` of each query (distance <= radius; Infinity or any radius
 * at least the layout's largest distance gives all codes): { offsets [Q + 1], indices,
 * distances }, indices ascending within each query. Throws E_ARG when there would be more than
 * 2^31 - 1 hits in all.
 */
export function rangeScan(
  database: Int32Array | Uint32Array,
  queries: Int32Array | Uint32Array,
  layout: LayoutLike,
  radius: number,
  options?: ScanOptions,
): RangeScanResult {
  const p = prepare(database, queries, layout, options);
  const r = checkRadius(radius);
  if (p.queries.length === 0) return EMPTY_RANGE();
  return native.codeRange(p.db, p.queries, rangeShape(p, r), false);
}

/** rangeScan off the event loop (see knnScanAsync). */
export async function rangeScanAsync(
  database: Int32Array | Uint32Array,
  queries: Int32Array | Uint32Array,
  layout: LayoutLike,
  radius: number,
  options?: ScanOptions,
): Promise<RangeScanResult> {
  const p = prepare(database, queries, layout, options);
  const r = checkRadius(radius);
  if (p.queries.length === 0) return EMPTY_RANGE();
  try {
    return await native.codeRange(p.db, p.queries, rangeShape(p, r), true);
  } catch (error) {
    throw fromNativeError(error, 'rangeScanAsync');
  }
}
