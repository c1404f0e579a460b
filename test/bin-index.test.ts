// BinIndex: every search against a brute-force reference (all stored faces sorted by distance,
// then bin code as uint32, then insertion order), every strategy (rank, enumerate, prefix, mih,
// auto), every layout; add / remove /
// save / load; corrupt files; argument errors.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { BinIndex } from '../lib/bin-index.js';
import type { BinSearchOptions } from '../lib/bin-index.js';
import { parseLayout } from '../lib/codes.js';
import type { CodeLayout } from '../lib/codes.js';
import { DclError } from '../lib/errors.js';
import { codeDistanceRef, xorshift } from './reference.js';

const test = suite('bin-index');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'dcl-bins-'));
process.on('exit', () => fs.rmSync(tmp, { recursive: true, force: true }));

const LAYOUTS = ['32x1', '16x2', '8x4', '4x8', '3x10', '1x32'];

interface Face {
  code: number; // uint32
  id: number;
  seq: number;
}

/** The reference: stable order (distance, code, insertion), bins counted, stop rules applied. */
function reference(faces: Face[], query: number, l: CodeLayout, o: BinSearchOptions) {
  const k = o.k ?? (o.maxBins === undefined && o.maxDistance === undefined ? 10 : Infinity);
  const maxBins = o.maxBins ?? Infinity;
  const maxDistance = o.maxDistance ?? Infinity;
  const sorted = faces
    .map((f) => ({ ...f, d: codeDistanceRef(f.code, query, l) }))
    .sort((a, b) => a.d - b.d || a.code - b.code || a.seq - b.seq);
  const ids: number[] = [];
  const distances: number[] = [];
  let bins = 0;
  let lastCode = -1;
  for (const f of sorted) {
    if (f.d > maxDistance || ids.length >= k) break;
    if (f.code !== lastCode) {
      if (bins >= maxBins) break;
      bins++;
      lastCode = f.code;
    }
    ids.push(f.id);
    distances.push(f.d);
  }
  return { ids, distances, bins };
}

/** Random codes that share bins: drawn from a small pool plus fresh ones, so ties and crowded bins occur. */
function randomCodes(l: CodeLayout, count: number, random: () => number): Uint32Array {
  const pool: number[] = [];
  const fresh = () => {
    let c = 0;
    for (let i = 0; i < l.n; i++) c += Math.floor(random() * l.levels) * 2 ** (i * l.q);
    return c >>> 0;
  };
  const out = new Uint32Array(count);
  for (let i = 0; i < count; i++) {
    if (pool.length && random() < 0.4) out[i] = pool[Math.floor(random() * pool.length)];
    else {
      out[i] = fresh();
      if (pool.length < 8) pool.push(out[i]);
    }
    // Some codes near others (one level or one bit away), so that small radii have several bins.
    if (i > 0 && random() < 0.3) {
      const dim = Math.floor(random() * l.n);
      const field = 2 ** (dim * l.q);
      const level = Math.floor(out[i - 1] / field) % l.levels;
      const next = level + (level + 1 < l.levels ? 1 : -1);
      out[i] = (out[i - 1] + (next - level) * field) >>> 0;
    }
  }
  return out;
}

function check(index: BinIndex, faces: Face[], query: number, o: BinSearchOptions, what: string) {
  const l = index.layout;
  const ref = reference(faces, query, l, o);
  for (const strategy of ['rank', 'enumerate', 'prefix', 'mih', 'auto'] as const) {
    // Forced enumeration far from any stored code can mean hundreds of millions of codes: skip it
    // where the layout-average estimate says so (maxDistance-limited searches always run).
    if (strategy === 'enumerate' && index.explain(o).codesWithinRadius > 3e6) continue;
    const r = index.search(query, { ...o, strategy });
    const label = `${what} ${strategy} q=${query >>> 0} ${JSON.stringify(o)}`;
    assert.equal(Array.from(r.ids), ref.ids, label);
    assert.equal(Array.from(r.distances), ref.distances, label);
    assert.is(r.stats.binsVisited, ref.bins, `${label} bins`);
  }
}

test('every layout: search equals the brute-force order for k, maxBins and maxDistance, both strategies', () => {
  const random = xorshift(12345);
  for (const name of LAYOUTS) {
    const l = parseLayout(name);
    const index = new BinIndex({ layout: name });
    const codes = randomCodes(l, 300, random);
    const ids = Array.from({ length: codes.length }, (_, i) => 1000 + 7 * i);
    index.add(codes, ids);
    const faces: Face[] = Array.from(codes, (code, i) => ({ code, id: ids[i], seq: i }));
    assert.is(index.size, 300);
    assert.is(index.bins, new Set(codes).size);
    const queries = [codes[0], codes[17], ...randomCodes(l, 6, random)];
    const maxD = l.q === 1 ? l.n : l.n * (l.levels - 1);
    const smallD = l.q === 1 ? 6 : l.q <= 4 ? 6 : l.q === 8 ? 40 : 3;
    for (const query of queries) {
      const small = l.q >= 10 ? [{ k: 1 }, { k: 5, maxBins: 3 }, { maxDistance: smallD }] : [{}, { k: 1 }, { k: 25 }, { maxBins: 4 }, { maxBins: 3, k: 5 }, { maxDistance: smallD }, { k: 7, maxDistance: smallD }, { k: 0 }];
      for (const o of small) check(index, faces, query, o, name);
      // Everything, by rank only where the enumeration would cross the whole space of a wide layout.
      const all = index.search(query, { k: Infinity, strategy: 'rank' });
      assert.equal(Array.from(all.ids), reference(faces, query, l, { k: Infinity }).ids, `${name} all`);
      if (l.q < 10) check(index, faces, query, { maxDistance: maxD }, `${name} full`);
    }
  }
});

test('dense small index: enumeration meets every bin, ties in code order, crowded bins in insertion order', () => {
  const l = parseLayout('8x4');
  const index = new BinIndex({ layout: l });
  const random = xorshift(7);
  // 2,000 faces in a small corner of the space: many faces per bin, many bins per radius.
  const codes = new Uint32Array(2000);
  for (let i = 0; i < codes.length; i++) {
    let c = 0;
    for (let d = 0; d < 8; d++) c += Math.floor(random() * 3) * 2 ** (4 * d);
    codes[i] = c >>> 0;
  }
  const ids = Array.from({ length: codes.length }, (_, i) => codes.length - i);
  index.add(codes, ids);
  const faces: Face[] = Array.from(codes, (code, i) => ({ code, id: ids[i], seq: i }));
  for (const query of [codes[3], 0, 0x11111111, 0xffffffff]) {
    for (const o of [{ k: 50 }, { maxBins: 20 }, { maxDistance: 2 }, { k: 1000 }]) check(index, faces, query, o, '8x4 dense');
  }
  const plan = index.explain({ k: 10 });
  assert.ok(plan.strategy === 'rank' || plan.strategy === 'enumerate');
});

test('32x1: the all-ones code and code 0 are ordinary bins; query as int32 or uint32', () => {
  const index = new BinIndex({ layout: '32x1' });
  const codes = Int32Array.from([-1, 0, -1, 1, 2, 3, -2]);
  index.add(codes, [10, 11, 12, 13, 14, 15, 16]);
  const faces: Face[] = Array.from(codes, (c, i) => ({ code: c >>> 0, id: 10 + i, seq: i }));
  for (const q of [-1, 0xffffffff, 0, 5, -3]) for (const o of [{ k: 3 }, { k: 7 }, { maxBins: 2 }]) check(index, faces, q, o, 'ones');
  assert.equal(Array.from(index.search(-1, { k: 2 }).ids), [10, 12]);
  assert.equal(Array.from(index.search(0xffffffff, { k: 2 }).ids), [10, 12]);
});

test('empty index, duplicate codes, bins emptied by remove, get / has', () => {
  const index = new BinIndex({ layout: '16x2' });
  for (const strategy of ['rank', 'enumerate', 'prefix', 'mih', 'auto'] as const) {
    const r = index.search(5, { strategy });
    assert.is(r.ids.length, 0);
    assert.is(r.stats.binsVisited, 0);
  }
  assert.is(index.size, 0);
  assert.is(index.bins, 0);
  assert.is(index.get(3), undefined);
  const codes = Int32Array.from([5, 5, 5, 9, 9, 1]);
  index.add(codes, [1, 2, 3, 4, 5, 6]);
  assert.is(index.bins, 3);
  assert.equal(Array.from(index.search(5, { k: 4 }).ids), [1, 2, 3, 6]); // 5 -> 1 is one level in dim 1... distance 1
  assert.is(index.get(4), 9);
  assert.ok(index.has(6));
  assert.is(index.remove([1, 3, 99, 1]), 2);
  assert.is(index.size, 4);
  assert.is(index.get(1), undefined);
  assert.is(index.remove([2]), 1);
  assert.is(index.bins, 2); // the bin 5 is gone
  const faces: Face[] = [
    { code: 9, id: 4, seq: 3 },
    { code: 9, id: 5, seq: 4 },
    { code: 1, id: 6, seq: 5 },
  ];
  for (const q of [5, 9, 0, 0xffffffff]) for (const o of [{ k: 2 }, { maxBins: 1 }, { maxDistance: 3 }, { k: 10 }]) check(index, faces, q, o, 'after remove');
  // Added later: after the earlier faces of the same bin.
  index.add(Int32Array.from([9, 5]), [7, 8]);
  assert.equal(Array.from(index.search(9, { k: 3 }).ids), [4, 5, 7]);
  assert.is(index.remove([4, 5, 6, 7, 8]), 5);
  assert.is(index.size, 0);
  assert.is(index.search(9).ids.length, 0);
});

test('same id twice is E_ARG and leaves the index unchanged; big ids', () => {
  const index = new BinIndex({ layout: '8x4' });
  index.add(Int32Array.from([1, 2]), [1, 2]);
  for (const [codes, ids] of [
    [[3], [2]],
    [[3, 4], [5, 5]],
  ] as const) {
    assert.throws(
      () => index.add(Int32Array.from(codes), ids),
      (e: unknown) => e instanceof DclError && e.code === 'E_ARG' && /twice/.test(e.message),
    );
    assert.is(index.size, 2);
  }
  const big = 2 ** 53 - 1;
  index.add(Int32Array.from([7]), [big]);
  assert.is(index.get(big), 7);
  assert.equal(Array.from(index.search(7, { k: 1 }).ids), [big]);
});

test('searchBatch equals search one by one (async and sync)', async () => {
  for (const name of ['32x1', '8x4', '4x8']) {
    const l = parseLayout(name);
    const index = new BinIndex({ layout: name });
    const random = xorshift(99);
    const codes = randomCodes(l, 500, random);
    index.add(codes, Array.from(codes, (_, i) => i));
    const queries = Int32Array.from(randomCodes(l, 40, random));
    const near = l.q === 1 ? 5 : l.q === 4 ? 8 : 24;
    for (const o of [
      { k: 10 },
      { maxBins: 5 },
      { k: 3, maxDistance: near, strategy: 'enumerate' as const },
      { k: 3, maxDistance: near, strategy: 'rank' as const },
      { k: 10, strategy: 'prefix' as const },
      { maxBins: 7, strategy: 'prefix' as const },
      { k: 10, strategy: 'mih' as const },
      { maxBins: 7, strategy: 'mih' as const },
      { k: 3, maxDistance: near, strategy: 'mih' as const },
    ]) {
      const batch = await index.searchBatch(queries, o);
      const sync = index.searchBatchSync(queries, o);
      assert.equal(sync.ids, batch.ids);
      assert.is(batch.count, queries.length);
      let visited = 0;
      for (let i = 0; i < queries.length; i++) {
        const one = index.search(queries[i], o);
        visited += one.stats.binsVisited;
        assert.equal(Array.from(batch.ids.subarray(batch.offsets[i], batch.offsets[i + 1])), Array.from(one.ids), `${name} ${i}`);
        assert.equal(Array.from(batch.distances.subarray(batch.offsets[i], batch.offsets[i + 1])), Array.from(one.distances));
      }
      assert.is(batch.stats.binsVisited, visited);
    }
  }
});

test('stats: enumerate counts codes generated and slots probed; rank counts bins ranked', () => {
  const index = new BinIndex({ layout: '32x1' });
  index.add(Int32Array.from([0, 3, 0xff]), [1, 2, 3]);
  const e = index.search(0, { k: 2, strategy: 'enumerate' });
  assert.equal(Array.from(e.ids), [1, 2]);
  // Radius 0 (1 code), 1 (32), 2 (496): 529 codes; the second face is at distance 2.
  assert.is(e.stats.binsEnumerated, 1 + 32 + 496);
  assert.ok(e.stats.binsProbed >= e.stats.binsEnumerated);
  assert.is(e.stats.binsVisited, 2);
  const r = index.search(0, { k: 2, strategy: 'rank' });
  assert.is(r.stats.binsProbed, 3);
  assert.is(r.stats.binsEnumerated, 0);
  assert.is(r.stats.strategy, 'rank');
});

test('auto: the cheapest estimated strategy; enumeration only when cheaper than ranking every bin', () => {
  const index = new BinIndex({ layout: '32x1' });
  const random = xorshift(5);
  const codes = new Uint32Array(20000);
  for (let i = 0; i < codes.length; i++) codes[i] = Math.floor(random() * 2 ** 32);
  index.add(codes, Array.from(codes, (_, i) => i));
  // Enumerating radius 8 of 32 bits costs more than ranking 20,000 bins; the prefix directory does not.
  const k10 = index.explain({ k: 10 });
  assert.ok(k10.enumerateCost > k10.rankCost);
  const cheapest = Math.min(k10.rankCost, k10.prefixCost, k10.mihCost);
  assert.is(k10.strategy, cheapest === k10.rankCost ? 'rank' : cheapest === k10.prefixCost ? 'prefix' : 'mih');
  assert.is(k10.mihDims.length, 2); // 20,000 bins: groups of about 14 bits
  assert.ok(k10.mihCost < k10.rankCost);
  const near = index.explain({ maxDistance: 1 }); // 33 codes to look up
  assert.ok(near.strategy !== 'rank' && near.enumerateCost < near.rankCost);
  const plan = index.explain({ maxBins: 1 });
  assert.ok(plan.enumerateCost > 0 && plan.rankCost === 20000 && plan.prefixDims > 0);
  const wide = new BinIndex({ layout: '1x32' });
  wide.add(Int32Array.from([1, 2]), [1, 2]);
  assert.is(wide.explain({ k: 1 }).prefixDims, 0);
  assert.is(wide.search(1, { k: 1, strategy: 'prefix' }).stats.strategy, 'rank'); // one dimension: no prefix
  assert.equal(wide.explain({ k: 1 }).mihDims, []);
  assert.is(wide.search(1, { k: 1, strategy: 'mih' }).stats.strategy, 'rank'); // one dimension: no MIH
});

test('mih with forced group counts (2, 3, 4, 8): every layout equals the brute force, also after removes', () => {
  const random = xorshift(4242);
  for (const name of ['32x1', '16x2', '8x4', '4x8', '3x10', '2x16']) {
    const l = parseLayout(name);
    const codes = randomCodes(l, 400, random);
    const ids = Array.from(codes, (_, i) => 5 * i + 1);
    for (const groups of [2, 3, 4, 8]) {
      const index = new BinIndex({ layout: name, mihGroups: groups });
      index.add(codes, ids);
      const dims = index.explain({ k: 10 }).mihDims;
      const expected = Math.min(groups, l.n);
      assert.ok(dims.length >= expected && dims.reduce((a, b) => a + b, 0) === l.n, `${name} ${groups}: ${dims}`);
      if (l.q === 1 && groups <= 4) assert.is(dims.length, groups);
      let faces: Face[] = Array.from(codes, (code, i) => ({ code, id: ids[i], seq: i }));
      const queries = [codes[1], codes[50], ...randomCodes(l, 4, random)];
      const near = l.q === 1 ? 5 : l.q <= 4 ? 6 : l.q === 8 ? 40 : 700;
      const run = (what: string) => {
        for (const query of queries)
          for (const o of [{ k: 1 }, { k: 10 }, { k: 60 }, { maxBins: 5 }, { maxBins: 3, k: 4 }, { maxDistance: near }, { k: 5, maxDistance: near }, { k: 0 }]) {
            const ref = reference(faces, query, l, o);
            const r = index.search(query, { ...o, strategy: 'mih' });
            const label = `${what} ${name} m=${groups} q=${query >>> 0} ${JSON.stringify(o)}`;
            assert.is(r.stats.strategy, 'mih', label);
            assert.equal(Array.from(r.ids), ref.ids, label);
            assert.equal(Array.from(r.distances), ref.distances, label);
            assert.is(r.stats.binsVisited, ref.bins, `${label} bins`);
          }
      };
      run('fresh');
      const gone = ids.filter((_, i) => i % 3 === 0);
      index.remove(gone);
      const goneSet = new Set(gone);
      faces = faces.filter((f) => !goneSet.has(f.id));
      run('after remove');
    }
  }
  assert.throws(() => new BinIndex({ layout: '32x1', mihGroups: 1 }), (e: unknown) => e instanceof DclError && e.code === 'E_ARG');
  assert.throws(() => new BinIndex({ layout: '32x1', mihGroups: 9 }), (e: unknown) => e instanceof DclError && e.code === 'E_ARG');
});

test('mih: memoryBytes counts the tables (8 bytes a bin with 2 groups, plus the offsets)', () => {
  const index = new BinIndex({ layout: '32x1', mihGroups: 2 });
  const random = xorshift(8);
  const codes = new Uint32Array(5000);
  for (let i = 0; i < codes.length; i++) codes[i] = Math.floor(random() * 2 ** 32);
  index.add(codes, Array.from(codes, (_, i) => i));
  const before = index.memoryBytes;
  index.search(codes[0], { k: 3, strategy: 'mih' });
  assert.is(index.memoryBytes - before, 8 * index.bins + 4 * 2 * (2 ** 16 + 1));
});

test('save / load round trip (uint32 and float64 ids), atomic file, same results', async () => {
  for (const name of ['32x1', '4x8']) {
    const l = parseLayout(name);
    const index = new BinIndex({ layout: name });
    const random = xorshift(3);
    const codes = randomCodes(l, 200, random);
    const ids = Array.from(codes, (_, i) => (name === '4x8' ? 2 ** 40 + i * 3 : i * 5));
    index.add(codes, ids);
    index.remove([ids[3], ids[10]]);
    const file = path.join(tmp, `${name}.dclbins`);
    await index.save(file);
    const back = await BinIndex.load(file);
    assert.is(back.layout.name, name);
    assert.is(back.size, index.size);
    assert.is(back.bins, index.bins);
    assert.equal(back.entries(), index.entries());
    for (const q of randomCodes(l, 5, random)) assert.equal(back.search(q, { k: 20 }), index.search(q, { k: 20 }));
    const sync = BinIndex.loadSync(file);
    assert.equal(sync.entries(), index.entries());
    assert.equal(fs.readdirSync(tmp).filter((f) => f.endsWith('.tmp')), []);
  }
  const empty = new BinIndex({ layout: '8x4' });
  empty.saveSync(path.join(tmp, 'empty.dclbins'));
  assert.is(BinIndex.loadSync(path.join(tmp, 'empty.dclbins')).size, 0);
});

test('corrupt, truncated, foreign and missing files: E_FORMAT / E_IO, never a crash', () => {
  const index = new BinIndex({ layout: '16x2' });
  index.add(Int32Array.from([1, 2, 3, 3]), [4, 5, 6, 7]);
  const file = path.join(tmp, 'good.dclbins');
  index.saveSync(file);
  const good = fs.readFileSync(file);
  const expectFormat = (bytes: Uint8Array, what: string) => {
    const f = path.join(tmp, 'bad.dclbins');
    fs.writeFileSync(f, bytes);
    assert.throws(() => BinIndex.loadSync(f), (e: unknown) => e instanceof DclError && e.code === 'E_FORMAT', what);
  };
  for (let cut = 0; cut < good.length; cut += 7) expectFormat(good.subarray(0, cut), `truncated at ${cut}`);
  for (let at = 0; at < good.length; at++) {
    const b = Buffer.from(good);
    b[at] ^= 0x5a;
    expectFormat(b, `byte ${at} flipped`);
  }
  expectFormat(Buffer.concat([good, Buffer.from([0])]), 'padded');
  expectFormat(Buffer.from('{"not": "an index"}'.repeat(5)), 'json');
  expectFormat(new Uint8Array(0), 'empty');
  assert.throws(() => BinIndex.loadSync(path.join(tmp, 'missing.dclbins')), (e: unknown) => e instanceof DclError && e.code === 'E_IO');
  assert.throws(() => BinIndex.loadSync(tmp), (e: unknown) => e instanceof DclError && e.code === 'E_IO');
  assert.throws(() => index.saveSync(path.join(tmp, 'no-such-dir', 'x.dclbins')), (e: unknown) => e instanceof DclError && e.code === 'E_IO');
});

test('bad arguments: E_ARG / E_SHAPE with "Expected ... for ... but received ..."', () => {
  const isError = (code: string, pattern: RegExp) => (e: unknown) =>
    e instanceof DclError && e.code === code && /^Expected .* for .* but received /.test(e.message) && pattern.test(e.message);
  assert.throws(() => new BinIndex({ layout: '8x5' }), isError('E_ARG', /options\.layout/));
  assert.throws(() => new BinIndex({} as never), isError('E_ARG', /options\.layout/));
  assert.throws(() => new BinIndex({ layout: '8x4', extra: 1 } as never), (e: unknown) => e instanceof DclError && e.code === 'E_ARG');
  const index = new BinIndex({ layout: '8x4' });
  index.add(Int32Array.from([1]), [1]);
  const i16 = new BinIndex({ layout: '16x1' });
  assert.throws(() => i16.add(Int32Array.from([0x10000]), [1]), isError('E_ARG', /layout 16x1/));
  assert.throws(() => index.add([1, 2] as never, [1, 2]), isError('E_ARG', /for codes/));
  assert.throws(() => index.add(Int32Array.from([1, 2]), [1]), isError('E_SHAPE', /for ids/));
  assert.throws(() => index.add(Int32Array.from([1]), [-1]), isError('E_ARG', /ids\[0\]/));
  assert.throws(() => index.add(Int32Array.from([1]), [1.5]), isError('E_ARG', /ids\[0\]/));
  assert.throws(() => index.add(Int32Array.from([1]), 'x' as never), isError('E_ARG', /for ids/));
  assert.throws(() => index.search(1.5), isError('E_ARG', /for query/));
  assert.throws(() => index.search(2 ** 32), isError('E_ARG', /for query/));
  assert.throws(() => i16.search(0x10000), isError('E_ARG', /for query/));
  assert.throws(() => index.search(1, { k: -1 }), isError('E_ARG', /options\.k/));
  assert.throws(() => index.search(1, { maxBins: 1.5 }), isError('E_ARG', /options\.maxBins/));
  assert.throws(() => index.search(1, { maxDistance: NaN }), isError('E_ARG', /options\.maxDistance/));
  assert.throws(() => index.search(1, { strategy: 'fast' as never }), isError('E_ARG', /options\.strategy/));
  assert.throws(() => index.search(1, { kk: 1 } as never), (e: unknown) => e instanceof DclError && e.code === 'E_ARG' && /'kk'/.test((e as Error).message));
  assert.throws(() => index.searchBatchSync([1] as never), isError('E_ARG', /for queries/));
  assert.throws(() => index.remove(5 as never), isError('E_ARG', /for ids/));
  assert.throws(() => index.get(-1), isError('E_ARG', /for id/));
  assert.throws(() => index.saveSync(''), isError('E_ARG', /for path/));
  assert.is(index.size, 1);
});

test.run();
