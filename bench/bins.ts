// Face search over bins (BinIndex) at 10 million random 32x1 codes: build time and memory,
// per-query latency (median, 99th percentile) for maxBins = 1,000 and for exact k = 10 (auto, and
// each of mih / prefix / enumerate forced),
// searchBatch queries/s on 2 threads, and FAISS's binary hash indexes on the same codes and
// queries in the same run (bench/faiss_bins.py, when /usr/bin/python3 imports faiss), with recall
// against the exact k nearest (distance-based: a result at most the exact k-th distance counts).
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { BinIndex } from '../lib/bin-index.js';
import type { BinSearchOptions } from '../lib/bin-index.js';
import { capabilities, setThreads } from '../lib/runtime.js';
import { benchFile, PYTHON, torchEnv } from './python-child.js';

function xorshift(seed: number) {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    return (s >>>= 0);
  };
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))];
}

function latency(index: BinIndex, queries: Int32Array, o: BinSearchOptions) {
  const times: number[] = [];
  let visited = 0;
  let enumerated = 0;
  let strategy = '';
  for (let i = 0; i < queries.length; i++) {
    const t = process.hrtime.bigint();
    const r = index.search(queries[i], o);
    times.push(Number(process.hrtime.bigint() - t) / 1e6);
    visited += r.stats.binsVisited;
    enumerated += r.stats.binsEnumerated;
    strategy = r.stats.strategy;
  }
  times.sort((a, b) => a - b);
  return {
    strategy,
    medianMs: percentile(times, 0.5),
    p99Ms: percentile(times, 0.99),
    meanBinsVisited: visited / queries.length,
    meanCodesEnumerated: enumerated / queries.length,
  };
}

async function batchRate(index: BinIndex, queries: Int32Array, o: BinSearchOptions, rounds: number) {
  const rates: number[] = [];
  for (let r = 0; r < rounds; r++) {
    const t = performance.now();
    await index.searchBatch(queries, o);
    rates.push(queries.length / ((performance.now() - t) / 1e3));
  }
  rates.sort((a, b) => a - b);
  return { median: rates[rates.length >> 1], min: rates[0], max: rates[rates.length - 1] };
}

function faissUnavailable(): string | null {
  if (!fs.existsSync(PYTHON)) return `${PYTHON} not found`;
  const r = spawnSync(PYTHON, ['-c', 'import faiss, numpy'], { encoding: 'utf8', timeout: 60_000 });
  if (r.error) return `${PYTHON} could not run: ${r.error.message}`;
  if (r.status !== 0) return `${PYTHON} cannot import faiss (apt-get install python3-faiss)`;
  if (!fs.existsSync(benchFile('faiss_bins.py'))) return `${benchFile('faiss_bins.py')} not found`;
  return null;
}

export async function binSection(opts: { quick: boolean; faiss: boolean }): Promise<unknown> {
  const N = opts.quick ? 1_000_000 : 10_000_000;
  const Q = opts.quick ? 200 : 1000;
  const k = 10;
  const threadsBefore = capabilities().threads;
  setThreads(Math.min(2, capabilities().hardwareThreads));
  try {
    console.log(`\n=== bin index: ${N.toLocaleString('en')} random 32x1 codes, ${Q} queries, ${capabilities().threads} threads, ${capabilities().isa} ===`);
    const rnd = xorshift(20261128);
    const codes = new Int32Array(N);
    for (let i = 0; i < N; i++) codes[i] = rnd() | 0;
    const queries = new Int32Array(Q);
    for (let i = 0; i < Q; i++) queries[i] = rnd() | 0;
    const ids = new Uint32Array(N);
    for (let i = 0; i < N; i++) ids[i] = i;

    let t = performance.now();
    const index = new BinIndex({ layout: '32x1' });
    index.add(codes, ids);
    const addSeconds = (performance.now() - t) / 1e3;
    t = performance.now();
    index.search(queries[0], { k, strategy: 'enumerate' }); // builds the hash table
    const hashSeconds = (performance.now() - t) / 1e3;
    const memory = index.memoryBytes; // hash table included; the prefix directory comes with the first prefix search
    console.log(
      `build: add ${addSeconds.toFixed(2)} s + hash table ${hashSeconds.toFixed(2)} s; ${index.bins.toLocaleString('en')} bins; ` +
        `memory ${(memory / 2 ** 20).toFixed(0)} MiB (${(memory / N).toFixed(1)} bytes per face)`,
    );

    // Exact k = 10 must equal the exhaustive rank for a sample of queries.
    const sample = opts.quick ? 5 : 10;
    for (let i = 0; i < sample; i++) {
      const a = index.search(queries[i], { k, strategy: 'enumerate' });
      const b = index.search(queries[i], { k, strategy: 'rank' });
      const c = index.search(queries[i], { k, strategy: 'prefix' });
      if (a.ids.join() !== b.ids.join() || c.ids.join() !== b.ids.join()) throw new Error(`bins: the strategies disagree on query ${i}`);
    }
    t = performance.now();
    index.search(queries[0], { k, strategy: 'prefix' });
    const prefixSeconds = (performance.now() - t) / 1e3;
    const beforeMih = index.memoryBytes;
    t = performance.now();
    index.search(queries[0], { k, strategy: 'mih' }); // builds the MIH tables
    const mihSeconds = (performance.now() - t) / 1e3;
    const mihBytes = index.memoryBytes - beforeMih;
    const plan = index.explain({ k });
    console.log(
      `mih tables: ${plan.mihDims.length} groups of ${plan.mihDims.join(' + ')} dimensions, built in ${mihSeconds.toFixed(2)} s, ` +
        `${(mihBytes / 2 ** 20).toFixed(0)} MiB (${(mihBytes / index.bins).toFixed(1)} bytes per bin); auto for k = ${k}: ${plan.strategy}`,
    );
    // Exact k = 10 by mih must equal the exhaustive rank on every query (recall 1.0, not sampled).
    const mihAll = index.searchBatchSync(queries, { k, strategy: 'mih' });
    const rankAll = index.searchBatchSync(queries.subarray(0, opts.quick ? 50 : 100), { k, strategy: 'rank' });
    for (let i = 0; i < rankAll.count; i++)
      if (mihAll.ids.subarray(mihAll.offsets[i], mihAll.offsets[i + 1]).join() !== rankAll.ids.subarray(rankAll.offsets[i], rankAll.offsets[i + 1]).join())
        throw new Error(`bins: mih disagrees with rank on query ${i}`);

    const single = {
      maxBins1000: latency(index, queries, { maxBins: 1000 }),
      exactK10: latency(index, queries, { k }),
      exactK10Mih: latency(index, queries, { k, strategy: 'mih' }),
      exactK10Prefix: latency(index, queries, { k, strategy: 'prefix' }),
      exactK10Enumerate: latency(index, queries, { k, strategy: 'enumerate' }),
    };
    console.log('search (one query per call)      strategy    median ms   p99 ms   bins visited   codes enumerated');
    for (const [name, s] of Object.entries(single))
      console.log(
        `  ${name.padEnd(30)} ${s.strategy.padEnd(10)} ${s.medianMs.toFixed(3).padStart(9)} ${s.p99Ms.toFixed(3).padStart(8)} ${s.meanBinsVisited.toFixed(0).padStart(14)} ${s.meanCodesEnumerated.toFixed(0).padStart(18)}`,
      );
    const rounds = opts.quick ? 3 : 5;
    const batch = {
      exactK10: await batchRate(index, queries, { k }, rounds),
      exactK10Mih: await batchRate(index, queries, { k, strategy: 'mih' }, rounds),
      exactK10Prefix: await batchRate(index, queries, { k, strategy: 'prefix' }, rounds),
      exactK10Enumerate: await batchRate(index, queries, { k, strategy: 'enumerate' }, rounds),
      maxBins1000: await batchRate(index, queries, { maxBins: 1000 }, rounds),
    };
    for (const [name, r] of Object.entries(batch))
      console.log(`searchBatch ${name}: ${r.median.toFixed(0)} queries/s [${r.min.toFixed(0)}-${r.max.toFixed(0)}] on ${capabilities().threads} threads`);

    // The exact k-th distance of every query, for FAISS's recall (mih: checked against rank above).
    const exact = mihAll;
    const kth = new Uint32Array(Q);
    for (let i = 0; i < Q; i++) kth[i] = exact.distances[exact.offsets[i + 1] - 1];

    let faiss: unknown = { skipped: 'not asked for' };
    if (opts.faiss) {
      const why = faissUnavailable();
      if (why) {
        faiss = { skipped: why };
        console.log(`FAISS: skipped (${why})`);
      } else {
        const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dcl-bins-bench-'));
        try {
          fs.writeFileSync(path.join(dir, 'db.u8'), new Uint8Array(codes.buffer));
          fs.writeFileSync(path.join(dir, 'q.u8'), new Uint8Array(queries.buffer));
          fs.writeFileSync(path.join(dir, 'kth.u32'), new Uint8Array(kth.buffer));
          const r = spawnSync(PYTHON, [benchFile('faiss_bins.py'), path.join(dir, 'db.u8'), path.join(dir, 'q.u8'), path.join(dir, 'kth.u32'), String(k)], {
            encoding: 'utf8',
            env: torchEnv({ OMP_NUM_THREADS: '2' }),
            timeout: 300_000,
            maxBuffer: 1 << 24,
          });
          if (r.status !== 0) throw new Error(`faiss_bins.py failed: ${(r.stderr || r.error?.message || '').trim().split('\n').slice(-3).join(' | ')}`);
          faiss = JSON.parse(r.stdout.trim().split('\n').pop() as string);
        } finally {
          fs.rmSync(dir, { recursive: true, force: true });
        }
        const rows = (faiss as { rows: { index: string; queriesPerSecond: number; recall: number }[] }).rows;
        console.log(`k = ${k}, ${Q} queries, 2 threads            queries/s   recall@${k}`);
        console.log(`  BinIndex exact, auto (searchBatch)    ${batch.exactK10.median.toFixed(0).padStart(9)}   1.000`);
        console.log(`  BinIndex exact, mih                   ${batch.exactK10Mih.median.toFixed(0).padStart(9)}   1.000`);
        console.log(`  BinIndex exact, prefix                ${batch.exactK10Prefix.median.toFixed(0).padStart(9)}   1.000`);
        console.log(`  BinIndex exact, enumerate (hash)      ${batch.exactK10Enumerate.median.toFixed(0).padStart(9)}   1.000`);
        for (const row of rows) console.log(`  FAISS ${row.index.padEnd(32)} ${row.queriesPerSecond.toFixed(0).padStart(9)}   ${row.recall.toFixed(3)}`);
        const multi = rows.find((x) => x.index.startsWith('IndexBinaryMultiHash'));
        const flip2 = rows.find((x) => x.index.endsWith('nflip 2'));
        if (multi) console.log(`  exact BinIndex auto / mih / FAISS MultiHash (exact): ${(batch.exactK10.median / multi.queriesPerSecond).toFixed(1)}x / ${(batch.exactK10Mih.median / multi.queriesPerSecond).toFixed(1)}x`);
        if (flip2)
          console.log(
            `  exact BinIndex auto / mih / FAISS Hash nflip 2 (recall ${flip2.recall.toFixed(3)}): ${(batch.exactK10.median / flip2.queriesPerSecond).toFixed(1)}x / ${(batch.exactK10Mih.median / flip2.queriesPerSecond).toFixed(1)}x`,
          );
      }
    }
    return {
      codes: N,
      queries: Q,
      threads: capabilities().threads,
      build: { addSeconds, hashSeconds, prefixSeconds, mihSeconds, mihBytes, mihDims: plan.mihDims, bins: index.bins, memoryBytes: index.memoryBytes, bytesPerFace: index.memoryBytes / N },
      single,
      batch,
      faiss,
    };
  } finally {
    setThreads(threadsBefore);
  }
}

// Run directly: node dist/bench/bins.js [--quick] [--no-faiss]
if (process.argv[1] && path.resolve(process.argv[1]).replace(/\.ts$/, '.js').endsWith(path.join('bench', 'bins.js'))) {
  binSection({ quick: process.argv.includes('--quick'), faiss: !process.argv.includes('--no-faiss') }).then(
    (r) => process.argv.includes('--json') && console.log(JSON.stringify(r, null, 2)),
    (e) => {
      console.error(e);
      process.exit(1);
    },
  );
}
