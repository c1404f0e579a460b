// Exhaustive k-NN scan over 32-bit codes (lib/scan.ts) against FAISS IndexBinaryFlat, in one run:
// 10,000,000 random 32x1 codes (seeded), 1,000 random queries (200 with --quick), k = 10,
// 2 threads. Printed next to the machine limits measured in the same run (a 256 MB copy, and our
// own one-query scan, which streams the database once: the single-stream limit) and the popcount
// limits of ANCHORS.md; then the 8x4 L1 scan. FAISS (python3-faiss, /usr/bin/python3) searches the
// same codes for the first 200 queries (50 with --quick; at its ~56 queries/s the 1,000 would
// take 18 s alone), and its k-NN distances must equal ours (ids may differ on ties).
//
//   node dist/bench/scan.js [--quick] [--no-faiss]     (or scanSection() from bench/run.ts)
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { pathToFileURL } from 'node:url';
import { capabilities, knnScan, setThreads } from '../lib/index.js';
import { benchFile, PYTHON, PythonChild } from './python-child.js';

const ANCHORS = {
  faissFlatQueriesPerSecond: 56,
  singleStreamCodesPerSecond: { threads1: 2.3e9, threads2: 3.9e9 },
  multiQueryPairsPerSecond: { threads1: 2.1e10, threads2: 3e10 },
  streamTriadGBs: { threads1: 14, threads2: 23 },
};

export interface ScanBenchRow {
  name: string;
  layout: string;
  metric: string;
  queries: number;
  seconds: number[];
  queriesPerSecond: number;
  pairsPerSecond: number;
  /** N 4 bytes per query per second: the bandwidth a one-query-at-a-time scan would need. */
  equivalentGBs: number;
}

function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

/** xorshift32 codes (seeded): every bit uniformly random. */
function randomCodes(count: number, seed: number): Int32Array {
  let s = seed >>> 0 || 1;
  const out = new Int32Array(count);
  for (let i = 0; i < count; i++) {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    out[i] = s | 0;
  }
  return out;
}

/** Copy bandwidth of Int32Array.prototype.set over 256 MB (bytes read + written), GB/s, median of 3. */
function copyBandwidth(): number {
  const n = (256 * 2 ** 20) / 4;
  const src = new Int32Array(n);
  for (let i = 0; i < n; i += 1024) src[i] = i;
  const dst = new Int32Array(n);
  dst.set(src);
  const gbs: number[] = [];
  for (let r = 0; r < 3; r++) {
    const t = performance.now();
    dst.set(src);
    gbs.push((2 * n * 4) / ((performance.now() - t) * 1e6));
  }
  return median(gbs);
}

function faissUnavailable(): string | null {
  if (!fs.existsSync(PYTHON)) return `${PYTHON} not found`;
  const r = spawnSync(PYTHON, ['-c', 'import faiss, numpy'], { encoding: 'utf8', timeout: 60_000 });
  if (r.error) return `${PYTHON} could not run: ${r.error.message}`;
  if (r.status !== 0) return `${PYTHON} cannot import faiss (apt-get install python3-faiss): ${(r.stderr || '').trim().split('\n').pop()}`;
  if (!fs.existsSync(benchFile('faiss_scan.py'))) return `${benchFile('faiss_scan.py')} not found`;
  return null;
}

function timeKnn(db: Int32Array, queries: Int32Array, layout: string, k: number, metric: 'layout' | 'hamming', reps: number) {
  const seconds: number[] = [];
  let result = knnScan(db, queries.subarray(0, 1), layout, k, { metric }); // warm-up (pages, pool)
  for (let r = 0; r < reps; r++) {
    const t = performance.now();
    result = knnScan(db, queries, layout, k, { metric });
    seconds.push((performance.now() - t) / 1e3);
  }
  return { seconds, result };
}

function row(name: string, layout: string, metric: string, count: number, queries: number, seconds: number[]): ScanBenchRow {
  const s = median(seconds);
  return {
    name,
    layout,
    metric,
    queries,
    seconds,
    queriesPerSecond: queries / s,
    pairsPerSecond: (count * queries) / s,
    equivalentGBs: (count * 4 * queries) / s / 1e9,
  };
}

const fmt = (v: number, digits = 2) => v.toExponential(digits).replace('e+', 'e');

export async function scanSection(opts: { quick: boolean; faiss: boolean }): Promise<unknown> {
  const count = 10_000_000;
  const nq = opts.quick ? 200 : 1000;
  const faissQueries = opts.quick ? 50 : 200;
  const k = 10;
  const threads = 2;
  const previousThreads = capabilities().threads;
  const isa = capabilities().isa;
  console.log(`\n=== exhaustive k-NN scan: ${count.toLocaleString('en')} random codes, ${nq} queries, k = ${k}, ${threads} threads, ${isa} ===`);
  const db = randomCodes(count, 20261201);
  const queries = randomCodes(nq, 777);
  setThreads(threads);
  const rows: ScanBenchRow[] = [];
  let faiss: Record<string, unknown> = { skipped: 'not asked for' };
  try {
    const copyGBs = copyBandwidth();
    // One query: the database streams from memory once (memory bound): our single-stream figure.
    knnScan(db, queries.subarray(0, 1), '32x1', k); // warm-up: first touch of pages, the pool
    const single: number[] = [];
    for (let r = 0; r < 5; r++) {
      const t = performance.now();
      knnScan(db, queries.subarray(0, 1), '32x1', k);
      single.push((performance.now() - t) / 1e3);
    }
    rows.push(row('one query (streaming read)', '32x1', 'hamming', count, 1, single));
    const reps = opts.quick ? 1 : 2;
    const hamming = timeKnn(db, queries, '32x1', k, 'layout', reps);
    rows.push(row('k-NN, Hamming', '32x1', 'hamming', count, nq, hamming.seconds));

    if (opts.faiss) {
      const why = faissUnavailable();
      if (why) faiss = { skipped: why };
      else {
        const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dcl-faiss-'));
        const codesFile = path.join(dir, 'codes.bin');
        const queriesFile = path.join(dir, 'queries.bin');
        // Little-endian int32 = FAISS's d = 32 binary code (4 bytes, byte 0 the low bits).
        fs.writeFileSync(codesFile, new Uint8Array(db.buffer, db.byteOffset, db.byteLength));
        fs.writeFileSync(queriesFile, new Uint8Array(queries.buffer, queries.byteOffset, queries.byteLength));
        const child = new PythonChild(PYTHON, benchFile('faiss_scan.py'), { ...process.env, OMP_NUM_THREADS: String(threads) });
        try {
          const loaded = await child.command(`load ${codesFile} ${queriesFile} ${threads}`);
          const r = await child.command(`search ${k} ${faissQueries}`);
          const seconds = r.seconds as number;
          const theirs = r.distances as number[];
          const ours = hamming.result.distances.subarray(0, faissQueries * k);
          let mismatches = 0;
          for (let i = 0; i < ours.length; i++) if (ours[i] !== theirs[i]) mismatches++;
          const qps = faissQueries / seconds;
          const ourQps = rows[rows.length - 1].queriesPerSecond;
          faiss = {
            version: loaded.version,
            threads: loaded.threads,
            queries: faissQueries,
            seconds,
            queriesPerSecond: qps,
            pairsPerSecond: (count * faissQueries) / seconds,
            distancesEqual: mismatches === 0,
            distanceMismatches: mismatches,
            speedup: ourQps / qps,
          };
        } finally {
          await child.quit().catch(() => undefined);
          fs.rmSync(dir, { recursive: true, force: true });
        }
      }
    }

    // A third round of ours after FAISS (the host is noisy: pair the figures).
    const again = timeKnn(db, queries, '32x1', k, 'layout', 1);
    rows[rows.length - 1] = row('k-NN, Hamming', '32x1', 'hamming', count, nq, [...hamming.seconds, ...again.seconds]);
    const l1 = timeKnn(db, queries.subarray(0, nq / 2), '8x4', k, 'layout', 1);
    rows.push(row('k-NN, L1 over 8 nibbles', '8x4', 'l1', count, nq / 2, l1.seconds));

    console.log(`copy bandwidth (Int32Array.set of 256 MB, 1 JS thread, read + write): ${copyGBs.toFixed(1)} GB/s; ANCHORS STREAM triad ${ANCHORS.streamTriadGBs.threads2} GB/s (2 threads)`);
    console.log('scan                          layout  queries   queries/s     codes/s (pairs)   equiv. GB/s   seconds');
    for (const r of rows)
      console.log(
        `${r.name.padEnd(29)} ${r.layout.padEnd(7)} ${String(r.queries).padStart(7)} ${r.queriesPerSecond.toFixed(1).padStart(11)}   ${fmt(r.pairsPerSecond).padStart(14)}   ${r.equivalentGBs.toFixed(1).padStart(11)}   ${r.seconds.map((s) => s.toFixed(3)).join(' ')}`,
      );
    console.log(
      `limits (ANCHORS.md, 2 threads, AVX-512 VPOPCNTDQ machine): one query ${fmt(ANCHORS.singleStreamCodesPerSecond.threads2)} codes/s (memory bound), ` +
        `multi-query ${fmt(ANCHORS.multiQueryPairsPerSecond.threads2)} pairs/s (compute bound)`,
    );
    if ('queriesPerSecond' in faiss) {
      const f = faiss as { queriesPerSecond: number; pairsPerSecond: number; speedup: number; distancesEqual: boolean; distanceMismatches: number; queries: number; version: unknown };
      console.log(
        `FAISS ${String(f.version)} IndexBinaryFlat, ${f.queries} queries: ${f.queriesPerSecond.toFixed(1)} queries/s (${fmt(f.pairsPerSecond)} codes/s; ANCHORS ${ANCHORS.faissFlatQueriesPerSecond}); ` +
          `ours ${f.speedup.toFixed(1)}x; k-NN distances ${f.distancesEqual ? 'equal' : `DIFFER in ${f.distanceMismatches} entries`}`,
      );
    } else console.log(`FAISS: skipped (${String(faiss.skipped)})`);
    return { count, queries: nq, k, threads, isa, copyGBs, rows, faiss, anchors: ANCHORS };
  } finally {
    setThreads(previousThreads);
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  scanSection({ quick: process.argv.includes('--quick'), faiss: !process.argv.includes('--no-faiss') }).catch((e) => {
    console.error(e);
    process.exit(1);
  });
}
