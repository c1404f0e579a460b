// Exhaustive scans (lib/scan.ts): k nearest and range search on every ISA path against the serial
// kernel and a plain TypeScript brute force (all distances sorted by (distance, index)), on awkward
// sizes (N = 0, 1, 7, 1000, 4099; 1, 3, 33 queries; k = 1, 10, > N), the layouts 32x1, 16x2, 8x4,
// 4x8, 5x6, 3x10, 1x32 under both metrics, with many ties (codes drawn from small pools and from
// few levels per field); thread-count independence (1 vs 2 threads, several database chunks);
// the async variants; argument errors.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { capabilities, DclError, knnScan, knnScanAsync, parseLayout, rangeScan, rangeScanAsync, setThreads, withIsa } from '../lib/index.js';
import type { CodeLayout } from '../lib/index.js';
import { codeDistanceRef, Rng } from './reference.js';
import { assertSame, forEachIsa, isasUnderTest } from './helpers.js';

const test = suite('scan');

const LAYOUTS = ['32x1', '16x2', '8x4', '4x8', '5x6', '3x10', '1x32'];
const METRICS = ['layout', 'hamming'] as const;
type Metric = (typeof METRICS)[number];

// ---------------------------------------------------------------------------------------------
// References

/** Per query, every (distance, index) sorted by distance then index. */
function sortedAll(db: Int32Array, queries: Int32Array, l: CodeLayout, metric: Metric): { d: number; i: number }[][] {
  return Array.from(queries, (q) => {
    const all = Array.from(db, (c, i) => ({ d: codeDistanceRef(c, q, l, metric), i }));
    all.sort((a, b) => a.d - b.d || a.i - b.i);
    return all;
  });
}

function knnRef(sorted: { d: number; i: number }[][], k: number): { indices: Int32Array; distances: Uint32Array } {
  const indices = new Int32Array(sorted.length * k).fill(-1);
  const distances = new Uint32Array(sorted.length * k).fill(0xffffffff);
  sorted.forEach((all, qi) => {
    for (let j = 0; j < Math.min(k, all.length); j++) {
      indices[qi * k + j] = all[j].i;
      distances[qi * k + j] = all[j].d;
    }
  });
  return { indices, distances };
}

function rangeRef(sorted: { d: number; i: number }[][], radius: number) {
  const offsets = [0];
  const indices: number[] = [];
  const distances: number[] = [];
  for (const all of sorted) {
    const hits = all.filter((h) => h.d <= radius).sort((a, b) => a.i - b.i);
    for (const h of hits) {
      indices.push(h.i);
      distances.push(h.d);
    }
    offsets.push(indices.length);
  }
  return { offsets: Int32Array.from(offsets), indices: Int32Array.from(indices), distances: Uint32Array.from(distances) };
}

// ---------------------------------------------------------------------------------------------
// Data with many ties

function mask(l: CodeLayout): number {
  return l.bits >= 32 ? 0xffffffff : 2 ** l.bits - 1;
}

/** Codes in one of three styles: full range, a small pool of codes (exact duplicates), few levels per field. */
function randomCodes(rng: Rng, count: number, l: CodeLayout, style: number): Int32Array {
  const full = () => (Math.floor(rng.float() * 2 ** 32) & mask(l)) | 0;
  if (style === 0) return Int32Array.from({ length: count }, full);
  if (style === 1) {
    const pool = Array.from({ length: 5 }, full);
    return Int32Array.from({ length: count }, () => rng.pick(pool));
  }
  const top = 2 ** l.q - 1;
  const choices = [0, 1, top, Math.floor(top / 2)];
  return Int32Array.from({ length: count }, () => {
    let code = 0;
    for (let i = 0; i < l.n; i++) code += rng.pick(choices) * 2 ** (i * l.q);
    return code | 0;
  });
}

/** An unaligned view (byteOffset 4 * offset past the start of its buffer) holding `values`. */
function unaligned(values: Int32Array, offset: number): Int32Array {
  const buffer = new Int32Array(values.length + offset + 3).fill(-1);
  const view = buffer.subarray(offset, offset + values.length);
  view.set(values);
  return view;
}

function maxDistanceOf(l: CodeLayout, metric: Metric): number {
  return metric === 'hamming' || l.q === 1 ? l.bits : l.n * (2 ** l.q - 1);
}

// ---------------------------------------------------------------------------------------------

test('knnScan and rangeScan match the brute force and the serial kernel on every ISA', () => {
  const rng = new Rng(20261201);
  let cases = 0;
  for (const name of LAYOUTS) {
    const l = parseLayout(name);
    for (const metric of METRICS) {
      for (const n of [0, 1, 7, 1000, 4099]) {
        for (const nq of [1, 3, 33]) {
          const style = cases++ % 3;
          const db = unaligned(randomCodes(rng, n, l, style), 1 + (cases % 7));
          // Queries: some from the database (distance-0 hits), some new.
          const queries = randomCodes(rng, nq, l, style);
          for (let i = 0; i < nq; i += 2) if (n > 0) queries[i] = db[rng.int(0, n - 1)];
          const sorted = sortedAll(db, queries, l, metric);
          const label = `${name} ${metric} N=${n} Q=${nq} style ${style}`;
          const ks = [1, 10, n + 3];
          const maxD = maxDistanceOf(l, metric);
          const radii = [0, Math.floor(maxD / 4), maxD, Infinity];
          const knnWant = ks.map((k) => knnRef(sorted, k));
          const rangeWant = radii.map((r) => rangeRef(sorted, r));
          const serial = withIsa('serial', () => ks.map((k) => knnScan(db, queries, l, k, { metric })));
          forEachIsa(() => {
            ks.forEach((k, i) => {
              const want = knnWant[i];
              const got = knnScan(db, queries, l, k, { metric });
              assert.is(got.k, k);
              assertSame(got.indices, want.indices, `${label} k=${k} indices`);
              assertSame(got.distances, want.distances, `${label} k=${k} distances`);
              assertSame(got.indices, serial[i].indices, `${label} k=${k}: indices as serial`);
              assertSame(got.distances, serial[i].distances, `${label} k=${k}: distances as serial`);
            });
            radii.forEach((r, i) => {
              const want = rangeWant[i];
              const got = rangeScan(db, queries, l, r, { metric });
              assertSame(got.offsets, want.offsets, `${label} r=${r} offsets`);
              assertSame(got.indices, want.indices, `${label} r=${r} indices`);
              assertSame(got.distances, want.distances, `${label} r=${r} distances`);
            });
          });
        }
      }
    }
  }
});

test('the default metric is Hamming for Q = 1 and L1 for Q > 1; Uint32Array inputs', () => {
  const db = Uint32Array.from([0x0f, 0x10, 0x1f, 0xff]);
  const q = Uint32Array.from([0x0f]);
  // 8x4: L1 over nibbles: |f-f|+0 = 0, |0-f|+|1-0| = 16, |f-f|+|1-0| = 1, |f-f|+|f-0| = 15.
  const l1 = knnScan(db, q, '8x4', 4);
  assertSame(l1.indices, [0, 2, 3, 1], '8x4 order');
  assertSame(l1.distances, [0, 1, 15, 16], '8x4 distances');
  const h = knnScan(db, q, '8x4', 4, { metric: 'hamming' });
  assertSame(h.indices, [0, 2, 3, 1], 'hamming order');
  assertSame(h.distances, [0, 1, 4, 5], 'hamming distances');
  assert.equal(knnScan(db, q, '32x1', 4), knnScan(db, q, '32x1', 4, { metric: 'hamming' }));
  assert.equal(knnScan(db, q, '8x4', 4, { metric: 'l1' }), l1);
});

test('results do not depend on the thread count (1 vs 2 threads, several database chunks)', () => {
  const threads = capabilities().threads;
  const rng = new Rng(7);
  try {
    for (const name of ['32x1', '8x4', '4x8', '3x10']) {
      const l = parseLayout(name);
      const db = randomCodes(rng, 40001, l, 2);
      for (const nq of [1, 70]) {
        const queries = randomCodes(rng, nq, l, 0);
        forEachIsa(() => {
          const runs = [1, 2].map((t) => {
            setThreads(t);
            const knn = knnScan(db, queries, l, 10);
            const big = knnScan(db, queries, l, 300);
            const range = rangeScan(db, queries, l, Math.floor(maxDistanceOf(l, 'layout') / 4));
            return [knn.indices, knn.distances, big.indices, big.distances, range.offsets, range.indices, range.distances];
          });
          runs[0].forEach((a, i) => assertSame(runs[1][i], a, `${name} Q=${nq}: 1 vs 2 threads, array ${i}`));
        });
      }
      // Spot check of a few queries against the brute force on this larger database.
      const queries = randomCodes(rng, 2, l, 0);
      const want = knnRef(sortedAll(db, queries, l, 'layout'), 10);
      forEachIsa(() => {
        const got = knnScan(db, queries, l, 10);
        assertSame(got.indices, want.indices, `${name} N=40001 indices`);
        assertSame(got.distances, want.distances, `${name} N=40001 distances`);
      });
    }
  } finally {
    setThreads(threads);
  }
});

test('async variants give the sync results, on the ISA active at the call', async () => {
  const rng = new Rng(99);
  const l = parseLayout('16x2');
  const db = randomCodes(rng, 30000, l, 2);
  const queries = randomCodes(rng, 40, l, 0);
  for (const isa of isasUnderTest()) {
    const [sync, range] = withIsa(isa, () => [knnScan(db, queries, l, 10), rangeScan(db, queries, l, 8)] as const);
    const pending = withIsa(isa, () => [knnScanAsync(db, queries, l, 10), rangeScanAsync(db, queries, l, 8)] as const);
    assert.equal(await pending[0], sync, `${isa} knn`);
    assert.equal(await pending[1], range, `${isa} range`);
  }
  assert.equal(await knnScanAsync(db, new Int32Array(0), l, 5), { indices: new Int32Array(0), distances: new Uint32Array(0), k: 5 });
  const empty = await rangeScanAsync(new Int32Array(0), queries.subarray(0, 2), l, 3);
  assertSame(empty.offsets, [0, 0, 0], 'empty database offsets');
  try {
    await knnScanAsync(db, queries, l, 0);
    assert.unreachable('k = 0 accepted');
  } catch (error) {
    assert.instance(error, DclError);
    assert.is((error as DclError).code, 'E_ARG');
  }
});

test('bad arguments give DclErrors', () => {
  const db = new Int32Array([1, 2, 3]);
  const q = new Int32Array([1]);
  const cases: [() => unknown, string, RegExp][] = [
    [() => knnScan([1, 2] as unknown as Int32Array, q, '32x1', 1), 'E_ARG', /^Expected an Int32Array \(or Uint32Array\) of codes of layout 32x1 for database but received \[1, 2\]$/],
    [() => knnScan(db, new Float32Array(1) as unknown as Int32Array, '32x1', 1), 'E_ARG', /for queries but received Float32Array of length 1$/],
    [() => knnScan(db, q, '8x5', 1), 'E_ARG', /for layout but received "8x5"$/],
    [() => knnScan(db, q, '32x1', 0), 'E_ARG', /^Expected a positive integer .* for k but received 0$/],
    [() => knnScan(db, q, '32x1', 1.5), 'E_ARG', /for k but received 1.5$/],
    [() => knnScan(db, q, '32x1', 1, { metric: 'cosine' as 'hamming' }), 'E_ARG', /for options.metric but received "cosine"$/],
    [() => knnScan(db, q, '32x1', 1, { k: 3 } as never), 'E_ARG', /option 'k'$/],
    [() => knnScan(new Int32Array([1 << 20]), q, '4x4', 1), 'E_ARG', /^Expected codes of layout 4x4 \(bits above 16 zero\) for database but received 0x100000 at index 0$/],
    [() => knnScan(db, new Int32Array([-1]), '4x4', 1), 'E_ARG', /for queries but received 0xffffffff at index 0$/],
    [() => knnScan(db, new Int32Array(3000), '32x1', 1e6), 'E_ARG', /queries \* k <= 2147483647/],
    [() => rangeScan(db, q, '32x1', -1), 'E_ARG', /^Expected a non-negative integer distance \(or Infinity\) for radius but received -1$/],
    [() => rangeScan(db, q, '32x1', NaN), 'E_ARG', /for radius but received NaN$/],
    [() => rangeScan(db, q, '32x1', 2.5), 'E_ARG', /for radius but received 2.5$/],
    [() => rangeScan(db, q, '32x1', 3, 'hamming' as never), 'E_ARG', /^Expected a plain options object for options/],
  ];
  for (const [fn, code, pattern] of cases) {
    try {
      fn();
      assert.unreachable(`accepted: ${pattern}`);
    } catch (error) {
      if (!(error instanceof DclError)) throw error;
      assert.is(error.code, code, error.message);
      assert.match(error.message, pattern);
    }
  }
});

test.run();
