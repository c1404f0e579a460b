// The per-pair loss kernels: the exact expected loss by dynamic programming (technique 2) and the
// straight-through L1 pair loss (technique 1), forward + backward, pairs per second for n = 32 on
// every ISA, 100,000 random pairs over 4,096 images. Timed like the rest: warm-up, then the
// median [min-max] of repeated calls.
import { hammingDpLoss, pairL1Loss, setIsa, capabilities, Tensor } from '../lib/index.js';
import type { Isa } from '../lib/index.js';

export interface DpRow {
  isa: Isa;
  kernel: 'hamming_dp' | 'pair_l1';
  pairsPerSecond: { median: number; min: number; max: number };
  ms: number;
}

function lcg(seed: number) {
  let s = seed >>> 0;
  return () => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 4294967296;
}

export function dpSection(isas: readonly Isa[], quick: boolean): DpRow[] {
  const n = 32, images = 4096, pairsCount = 100_000;
  const rnd = lcg(12345);
  const p = new Float32Array(images * n).map(() => rnd());
  const values = p.map((v) => Math.floor(2 * v));
  const signs = p.map((v) => 2 * v);
  const pairs = new Int32Array(2 * pairsCount).map(() => Math.floor(rnd() * images));
  const labels = new Float32Array(pairsCount).map(() => (rnd() < 0.5 ? -1 : 1));
  const pt = new Tensor(p, [images, n]), vt = new Tensor(values, [images, n]), st = new Tensor(signs, [images, n]);
  const previous = capabilities().isa;
  const rows: DpRow[] = [];
  const reps = quick ? 3 : 7;
  console.log(`\n=== pair loss kernels: n = ${n}, ${pairsCount.toLocaleString('en')} pairs over ${images} images, forward + backward, ${capabilities().threads} threads ===`);
  console.log('isa      kernel       pairs/s (median [min-max])      ms');
  try {
    for (const isa of isas) {
      setIsa(isa);
      for (const kernel of ['hamming_dp', 'pair_l1'] as const) {
        const run = () =>
          kernel === 'hamming_dp'
            ? hammingDpLoss({ p: pt, pairs, labels, alpha: 0.3, beta: 2.5 })
            : pairL1Loss({ values: vt, signs: st, pairs, labels, alpha: 0.3, beta: 2.5 });
        run();
        const times: number[] = [];
        for (let i = 0; i < (isa === 'serial' ? Math.min(reps, 3) : reps); i++) {
          const t0 = performance.now();
          run();
          times.push(performance.now() - t0);
        }
        times.sort((a, b) => a - b);
        const med = times[Math.floor(times.length / 2)];
        const rate = (t: number) => pairsCount / (t / 1e3);
        const row: DpRow = { isa, kernel, pairsPerSecond: { median: rate(med), min: rate(times[times.length - 1]), max: rate(times[0]) }, ms: med };
        rows.push(row);
        const m = (v: number) => `${(v / 1e6).toFixed(2)} M`;
        console.log(`${isa.padEnd(8)} ${kernel.padEnd(12)} ${`${m(row.pairsPerSecond.median)} [${m(row.pairsPerSecond.min)}-${m(row.pairsPerSecond.max)}]`.padEnd(32)} ${med.toFixed(2)}`);
      }
    }
  } finally {
    setIsa(previous);
  }
  return rows;
}
