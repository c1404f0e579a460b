// Verification metrics, PCA and the SVG chart (lib/eval.ts), against brute-force references on
// seeded random data: the best threshold by trying every candidate, the ten-fold mean and
// standard deviations by hand, ROC monotone with the AUC of a perfect / reversed separator and
// the Mann-Whitney count, the equal error rate; PCA on exact cases (data on a line, full-rank
// reconstruction, the three methods agreeing); the chart as balanced XML containing its series.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import {
  foldedAccuracy,
  foldedCorrect,
  mcNemarPValue,
  pairedComparison,
  verificationCorrect,
  bestThreshold,
  DclError,
  equalErrorRate,
  fitPca,
  lineChartSvg,
  pairDistances,
  pcaProject,
  rocCurve,
  symmetricEigen,
  tenFoldAccuracy,
  verificationAccuracy,
} from '../lib/index.js';
import { Rng } from './reference.js';

const test = suite('eval');

function throwsCode(fn: () => unknown, code: string, part: string): void {
  try {
    fn();
  } catch (error) {
    assert.ok(error instanceof DclError, String(error));
    assert.is((error as DclError).code, code, (error as Error).message);
    assert.ok((error as Error).message.includes(part), `expected '${part}' in: ${(error as Error).message}`);
    return;
  }
  assert.unreachable(`expected DclError ${code}`);
}

/** Random pairs: same pairs tend to have smaller distances; integer or float distances. */
function randomPairs(rng: Rng, n: number, integer: boolean): { d: number[]; s: number[] } {
  const d: number[] = [];
  const s: number[] = [];
  for (let i = 0; i < n; i++) {
    const same = rng.bool() ? 1 : 0;
    const v = rng.normal() * 3 + (same ? 8 : 11);
    d.push(integer ? Math.max(0, Math.round(v)) : v);
    s.push(same);
  }
  return { d, s };
}

/** Accuracy by counting, "same" when d <= t. */
function accuracyRef(d: number[], s: number[], t: number): number {
  let c = 0;
  for (let i = 0; i < d.length; i++) if ((d[i] <= t) === (s[i] === 1)) c++;
  return c / d.length;
}

// ---------------------------------------------------------------------------------------------
// Thresholds and accuracy

test('verificationAccuracy: same when distance <= threshold', () => {
  assert.is(verificationAccuracy([1, 2, 3, 4], [1, 1, 0, 0], 2), 1);
  assert.is(verificationAccuracy([1, 2, 3, 4], [true, true, false, false], 2.5), 1);
  assert.is(verificationAccuracy(Uint32Array.from([1, 2, 3, 4]), Uint8Array.from([1, 1, 0, 0]), 1), 0.75);
  assert.is(verificationAccuracy([1, 2, 3, 4], [1, 1, 0, 0], -1), 0.5);
  throwsCode(() => verificationAccuracy([1, 2], [1], 0), 'E_SHAPE', 'one label per distance');
  throwsCode(() => verificationAccuracy([1, NaN], [1, 0], 0), 'E_ARG', 'distances[1]');
  throwsCode(() => verificationAccuracy([1, 2], [1, 2], 0), 'E_ARG', 'same[1]');
  throwsCode(() => verificationAccuracy([], [], 0), 'E_ARG', 'at least one pair');
  throwsCode(() => verificationAccuracy([1], [1], NaN), 'E_ARG', 'threshold');
});

test('bestThreshold: ties go to the smallest threshold, returned as the midpoint', () => {
  // below: 2 correct, after 1: 3, after 2: 2, after 3: 3, after 4: 2 -> the first best is (1, 2).
  assert.equal(bestThreshold([1, 2, 3, 4], [1, 0, 1, 0]), { threshold: 1.5, accuracy: 0.75, correct: 3 });
  // All different pairs: best below every distance, half the first gap below the smallest.
  assert.equal(bestThreshold([3, 5, 9], [0, 0, 0]), { threshold: 2, accuracy: 1, correct: 3 });
  // All same: above every distance.
  assert.equal(bestThreshold([3, 5, 9], [1, 1, 1]), { threshold: 11, accuracy: 1, correct: 3 });
  assert.equal(bestThreshold([4, 4], [1, 1]), { threshold: 4.5, accuracy: 1, correct: 2 });
  // Tied distances are one candidate: the group at 2 holds two same and one different pair.
  // below: 2, after 1: 3, after 2: 3 + 2 - 1 = 4, after 5: 3.
  assert.equal(bestThreshold([1, 2, 2, 2, 5], [1, 1, 1, 0, 0]), { threshold: 3.5, accuracy: 0.8, correct: 4 });
  // Here calling every pair different is (first) best: half the first gap below the smallest distance.
  assert.equal(bestThreshold([1, 2, 2, 2, 5], [0, 1, 1, 0, 0]), { threshold: 0.5, accuracy: 0.6, correct: 3 });
});

test('bestThreshold against trying every candidate (integer and float distances)', () => {
  const rng = new Rng(7);
  for (let trial = 0; trial < 300; trial++) {
    const integer = trial % 2 === 0;
    const { d, s } = randomPairs(rng, rng.int(1, 60), integer);
    const distinct = [...new Set(d)].sort((a, b) => a - b);
    // Every distinct classification: below all, or "<= v" for each distinct v.
    const candidates = [-Infinity, ...distinct];
    const accs = candidates.map((t) => accuracyRef(d, s, t));
    const best = Math.max(...accs);
    const first = accs.indexOf(best);
    const got = bestThreshold(d, s);
    assert.is(got.accuracy, best);
    assert.is(got.correct, Math.round(best * d.length));
    assert.is(accuracyRef(d, s, got.threshold), best);
    // The smallest best interval, and its midpoint (exact for integers: half-integers).
    if (first === 0) assert.ok(got.threshold < distinct[0]);
    else if (first < distinct.length) {
      assert.ok(got.threshold >= distinct[first - 1] && got.threshold < distinct[first]);
      if (integer) assert.is(got.threshold, (distinct[first - 1] + distinct[first]) / 2);
    } else assert.ok(got.threshold > distinct[distinct.length - 1]);
  }
});

test('tenFoldAccuracy: thresholds from the other folds, mean, sample std, standard error', () => {
  const rng = new Rng(11);
  const folds = Array.from({ length: 10 }, () => randomPairs(rng, 60, true));
  const result = tenFoldAccuracy(
    folds.map((f) => f.d),
    folds.map((f) => Uint8Array.from(f.s)),
  );
  const accs: number[] = [];
  folds.forEach((fold, k) => {
    const otherD = folds.filter((_, j) => j !== k).flatMap((f) => f.d);
    const otherS = folds.filter((_, j) => j !== k).flatMap((f) => f.s);
    const t = bestThreshold(otherD, otherS);
    assert.is(result.folds[k].threshold, t.threshold);
    assert.is(result.folds[k].trainAccuracy, t.accuracy);
    accs.push(accuracyRef(fold.d, fold.s, t.threshold));
    assert.is(result.folds[k].accuracy, accs[k]);
  });
  const mean = accs.reduce((a, b) => a + b, 0) / 10;
  const ss = accs.reduce((a, b) => a + (b - mean) ** 2, 0);
  assert.ok(Math.abs(result.mean - mean) < 1e-15);
  assert.ok(Math.abs(result.std - Math.sqrt(ss / 9)) < 1e-15);
  assert.ok(Math.abs(result.populationStd - Math.sqrt(ss / 10)) < 1e-15);
  assert.ok(Math.abs(result.standardError - Math.sqrt(ss / 9) / Math.sqrt(10)) < 1e-15);
  // Folds that are all alike: zero spread.
  const same = tenFoldAccuracy([[1, 5], [1, 5], [1, 5]], [[1, 0], [1, 0], [1, 0]]);
  assert.equal([same.mean, same.std, same.standardError], [1, 0, 0]);
  throwsCode(() => tenFoldAccuracy([[1]], [[1]]), 'E_ARG', 'at least 2 folds');
  throwsCode(() => tenFoldAccuracy([[1], [2]], [[1]]), 'E_SHAPE', 'one entry per fold');
  throwsCode(() => tenFoldAccuracy([[1], [2, 3]], [[1], [1]]), 'E_SHAPE', 'foldSame[1]');
});

// ---------------------------------------------------------------------------------------------
// ROC and EER

test('foldedAccuracy: deals each kind round-robin, then the ten-fold protocol; fewer folds for few pairs', () => {
  const rng = new Rng(5);
  const d: number[] = [];
  const same: number[] = [];
  for (let i = 0; i < 57; i++) {
    const s = i % 3 === 0 ? 1 : 0;
    same.push(s);
    d.push(rng.int(0, 10) + (s ? 0 : 3));
  }
  const folds: number[][] = Array.from({ length: 10 }, () => []);
  const foldSame: number[][] = Array.from({ length: 10 }, () => []);
  const dealt = [0, 0];
  d.forEach((v, i) => {
    const k = dealt[same[i]]++ % 10;
    folds[k].push(v);
    foldSame[k].push(same[i]);
  });
  assert.equal(foldedAccuracy(d, same), tenFoldAccuracy(folds, foldSame));
  assert.is(foldedAccuracy([1, 2, 3, 4, 5, 6], [1, 1, 1, 0, 0, 0]).folds.length, 3);
  assert.throws(() => foldedAccuracy([1, 2, 3], [1, 0, 0]), (e: unknown) => (e as DclError).code === 'E_ARG');
});

test('foldedCorrect and verificationCorrect: the verdicts behind foldedAccuracy and verificationAccuracy', () => {
  const rng = new Rng(11);
  for (const n of [4, 13, 57, 1000]) {
    const { d, s } = randomPairs(rng, n, n % 2 === 1);
    if (s.every((v) => v === s[0])) s[0] = 1 - s[0];
    if (s.filter((v) => v === 1).length < 2 || s.filter((v) => v === 0).length < 2) continue;
    const result = foldedAccuracy(d, s);
    const correct = foldedCorrect(d, s);
    assert.is(correct.length, n);
    // Re-deal as foldedAccuracy does: each fold's share of right verdicts is its accuracy.
    const f = result.folds.length;
    const right = new Float64Array(f);
    const size = new Float64Array(f);
    const dealt = [0, 0];
    s.forEach((v, i) => {
      const k = dealt[v]++ % f;
      right[k] += correct[i];
      size[k]++;
      assert.is(correct[i], (d[i] <= result.folds[k].threshold) === (v === 1) ? 1 : 0);
    });
    result.folds.forEach((fold, k) => assert.ok(Math.abs(fold.accuracy - right[k] / size[k]) < 1e-12, `n ${n} fold ${k}`));
    const t = d[0];
    const c = verificationCorrect(d, s, t);
    assert.ok(Math.abs(c.reduce((a, v) => a + v, 0) / n - verificationAccuracy(d, s, t)) < 1e-12);
  }
  throwsCode(() => verificationCorrect([1, 2], [1], 0), 'E_SHAPE', 'one label per distance');
  throwsCode(() => verificationCorrect([1, 2], [1, 0], Number.NaN), 'E_ARG', 'threshold');
  throwsCode(() => foldedCorrect([1, 2, 3], [1, 0, 0]), 'E_ARG', 'at least 2 same-person');
});

/** The exact McNemar p-value by exact integer binomial sums (small counts). */
function mcNemarRef(b: number, c: number): number {
  const n = b + c;
  let binom = 1n;
  let tail = 0n;
  for (let i = 0; i <= Math.min(b, c); i++) {
    tail += binom;
    binom = (binom * BigInt(n - i)) / BigInt(i + 1);
  }
  return Math.min(1, (2 * Number(tail)) / 2 ** n);
}

test('mcNemarPValue: hand values and exact binomial sums; symmetric; 1 without discordant items', () => {
  // 10 against 2: 2 (1 + 12 + 66) / 4096.
  assert.ok(Math.abs(mcNemarPValue(10, 2) - 158 / 4096) < 1e-15);
  assert.is(mcNemarPValue(2, 10), mcNemarPValue(10, 2));
  assert.is(mcNemarPValue(0, 0), 1);
  assert.is(mcNemarPValue(5, 5), 1);
  assert.ok(Math.abs(mcNemarPValue(0, 1) - 1) < 1e-15);
  assert.ok(Math.abs(mcNemarPValue(0, 6) - 2 / 64) < 1e-15);
  for (const [b, c] of [[0, 30], [3, 17], [20, 41], [50, 50], [100, 130], [7, 700]]) {
    const ref = mcNemarRef(b, c);
    assert.ok(Math.abs(mcNemarPValue(b, c) - ref) <= 1e-12 * Math.max(ref, 1e-300) + 1e-300, `${b} ${c}: ${mcNemarPValue(b, c)} vs ${ref}`);
  }
  // Large counts stay finite: 10,000 against 10,400 is about 2 sigma apart.
  const p = mcNemarPValue(10000, 10400);
  assert.ok(p > 0.003 && p < 0.01, String(p));
  throwsCode(() => mcNemarPValue(-1, 2), 'E_ARG', 'onlyA');
  throwsCode(() => mcNemarPValue(1, 2.5), 'E_ARG', 'onlyB');
});

test('pairedComparison: accuracies, discordant counts and the McNemar p-value; argument errors', () => {
  const a = [1, 1, 1, 0, 1, 0, true, false];
  const b = [1, 0, 0, 0, 1, 1, false, false];
  const r = pairedComparison(a, b);
  assert.equal(r, { count: 8, accuracyA: 5 / 8, accuracyB: 3 / 8, difference: 2 / 8, onlyA: 3, onlyB: 1, pValue: mcNemarPValue(3, 1) });
  assert.equal(pairedComparison(Uint8Array.from([1, 0]), Uint8Array.from([1, 0])).pValue, 1);
  throwsCode(() => pairedComparison([1, 0], [1]), 'E_SHAPE', 'correctB');
  throwsCode(() => pairedComparison([], []), 'E_ARG', 'at least one item');
  throwsCode(() => pairedComparison([1, 2], [1, 0]), 'E_ARG', 'correctA[1]');
  throwsCode(() => pairedComparison('11' as unknown as number[], [1, 0]), 'E_ARG', 'correctA');
});

test('rocCurve: monotone from (0,0) to (1,1); AUC 1, 0, 0.5 and the Mann-Whitney count', () => {
  const perfect = rocCurve([1, 2, 3, 4], [1, 1, 0, 0]);
  assert.is(perfect.auc, 1);
  assert.equal(Array.from(perfect.far), [0, 0, 0, 0.5, 1]);
  assert.equal(Array.from(perfect.tar), [0, 0.5, 1, 1, 1]);
  assert.equal(Array.from(perfect.thresholds), [0.5, 1, 2, 3, 4]);
  assert.is(rocCurve([1, 2, 3, 4], [0, 0, 1, 1]).auc, 0);
  assert.is(rocCurve([2, 2, 2, 2], [0, 1, 0, 1]).auc, 0.5);
  const rng = new Rng(3);
  for (let trial = 0; trial < 50; trial++) {
    const { d, s } = randomPairs(rng, rng.int(2, 80), trial % 2 === 0);
    if (!s.includes(0) || !s.includes(1)) continue;
    const roc = rocCurve(d, s);
    assert.is(roc.far[0], 0);
    assert.is(roc.tar[0], 0);
    assert.is(roc.far[roc.far.length - 1], 1);
    assert.is(roc.tar[roc.tar.length - 1], 1);
    for (let i = 1; i < roc.far.length; i++) {
      assert.ok(roc.far[i] >= roc.far[i - 1] && roc.tar[i] >= roc.tar[i - 1] && roc.thresholds[i] > roc.thresholds[i - 1]);
      // Each point is the rates at its threshold.
      const t = roc.thresholds[i];
      const fa = d.filter((v, j) => v <= t && s[j] === 0).length / s.filter((x) => x === 0).length;
      const ta = d.filter((v, j) => v <= t && s[j] === 1).length / s.filter((x) => x === 1).length;
      assert.is(roc.far[i], fa);
      assert.is(roc.tar[i], ta);
    }
    // AUC = P(d_same < d_diff) + P(tie) / 2.
    let wins = 0;
    let pairs = 0;
    for (let i = 0; i < d.length; i++)
      for (let j = 0; j < d.length; j++)
        if (s[i] === 1 && s[j] === 0) {
          pairs++;
          wins += d[i] < d[j] ? 1 : d[i] === d[j] ? 0.5 : 0;
        }
    assert.ok(Math.abs(roc.auc - wins / pairs) < 1e-12, `AUC ${roc.auc} vs ${wins / pairs}`);
  }
  throwsCode(() => rocCurve([1, 2], [1, 1]), 'E_ARG', '2 same and 0 different');
});

test('equalErrorRate: exact crossing, interpolation, and FAR = FRR at the result', () => {
  // same 1..4, different 3..6: at threshold 3, FAR = 1/4 = FRR.
  assert.equal(equalErrorRate([1, 2, 3, 4, 3, 4, 5, 6], [1, 1, 1, 1, 0, 0, 0, 0]), { eer: 0.25, threshold: 3 });
  assert.equal(equalErrorRate([1, 2], [1, 0]), { eer: 0, threshold: 1 });
  // Reversed: FAR = FRR = 1 only once every different pair is accepted.
  assert.equal(equalErrorRate([1, 2], [0, 1]), { eer: 1, threshold: 1 });
  // A tie: the ROC jumps from (0, 0) to (1, 1) and crosses halfway.
  assert.equal(equalErrorRate([1, 1], [0, 1]), { eer: 0.5, threshold: 0.75 });
  const rng = new Rng(5);
  for (let trial = 0; trial < 50; trial++) {
    const { d, s } = randomPairs(rng, rng.int(4, 80), trial % 2 === 1);
    if (!s.includes(0) || !s.includes(1)) continue;
    const roc = rocCurve(d, s);
    const { eer } = equalErrorRate(d, s);
    // A brute-force reference: walk every ROC segment finely and take the point where |FAR - FRR| is least.
    let bestGap = Infinity;
    let bestEer = NaN;
    for (let i = 0; i + 1 < roc.far.length; i++)
      for (let step = 0; step <= 200; step++) {
        const u = step / 200;
        const far = roc.far[i] + u * (roc.far[i + 1] - roc.far[i]);
        const frr = 1 - (roc.tar[i] + u * (roc.tar[i + 1] - roc.tar[i]));
        if (Math.abs(far - frr) < bestGap) {
          bestGap = Math.abs(far - frr);
          bestEer = (far + frr) / 2;
        }
      }
    assert.ok(Math.abs(eer - bestEer) < 0.01, `EER ${eer} vs ${bestEer}`);
  }
});

// ---------------------------------------------------------------------------------------------
// PCA

test('symmetricEigen: known values, A v = lambda v, orthonormal vectors', () => {
  const two = symmetricEigen(Float64Array.from([2, 1, 1, 2]), 2);
  assert.ok(Math.abs(two.values[0] - 3) < 1e-14 && Math.abs(two.values[1] - 1) < 1e-14);
  const rng = new Rng(9);
  const n = 12;
  const a = new Float64Array(n * n);
  for (let i = 0; i < n; i++) for (let j = i; j < n; j++) a[i * n + j] = a[j * n + i] = rng.normal();
  const { values, vectors } = symmetricEigen(a.slice(), n);
  for (let r = 0; r < n; r++) {
    if (r > 0) assert.ok(values[r] <= values[r - 1]);
    for (let i = 0; i < n; i++) {
      let av = 0;
      for (let j = 0; j < n; j++) av += a[i * n + j] * vectors[r * n + j];
      assert.ok(Math.abs(av - values[r] * vectors[r * n + i]) < 1e-10);
    }
    for (let q = 0; q < n; q++) {
      let dot = 0;
      for (let j = 0; j < n; j++) dot += vectors[r * n + j] * vectors[q * n + j];
      assert.ok(Math.abs(dot - (r === q ? 1 : 0)) < 1e-12);
    }
  }
});

test('PCA of data on a line: one component along it, zero variance elsewhere', () => {
  const dims = 5;
  const count = 40;
  const u = [3, -4, 0, 12, 0]; // length 13
  const mean = [1, 2, 3, 4, 5];
  const rng = new Rng(2);
  const t = Array.from({ length: count }, () => Math.round(rng.normal() * 8) / 4); // exact in float32
  const data = new Float32Array(count * dims);
  for (let r = 0; r < count; r++) for (let j = 0; j < dims; j++) data[r * dims + j] = mean[j] + t[r] * u[j];
  const tMean = t.reduce((a, b) => a + b, 0) / count;
  const tVar = t.reduce((a, b) => a + (b - tMean) ** 2, 0) / (count - 1);
  for (const method of ['covariance', 'gram'] as const) {
    const m = fitPca(data, count, dims, 2, { method });
    assert.is(m.method, method);
    assert.ok(Math.abs(m.variances[0] - tVar * 169) < 1e-9 * tVar * 169, `${method} variance ${m.variances[0]}`);
    assert.ok(m.variances[1] < 1e-9, `${method} second variance ${m.variances[1]}`);
    // The sign convention: the largest entry (12 / 13) is positive.
    for (let j = 0; j < dims; j++) assert.ok(Math.abs(m.components[j] - u[j] / 13) < 1e-9, `${method} component ${m.components[j]}`);
    assert.ok(Math.abs(m.totalVariance - tVar * 169) < 1e-9 * tVar * 169);
    // The second direction is still a unit vector orthogonal to the first.
    let dot = 0;
    let norm = 0;
    for (let j = 0; j < dims; j++) {
      dot += m.components[j] * m.components[dims + j];
      norm += m.components[dims + j] ** 2;
    }
    assert.ok(Math.abs(dot) < 1e-9 && Math.abs(norm - 1) < 1e-9);
  }
});

function randomData(rng: Rng, count: number, dims: number, rank: number): Float32Array {
  // A decaying spectrum (scale 1 / (c + 1)) plus small noise, with an offset mean.
  const basis = Array.from({ length: rank }, () => Array.from({ length: dims }, () => rng.normal()));
  const data = new Float32Array(count * dims);
  for (let r = 0; r < count; r++) {
    for (let j = 0; j < dims; j++) data[r * dims + j] = 5 + 0.01 * rng.normal();
    for (let c = 0; c < rank; c++) {
      const a = (rng.normal() * 4) / (c + 1);
      for (let j = 0; j < dims; j++) data[r * dims + j] += a * basis[c][j];
    }
  }
  return data;
}

test('PCA with k = dims reconstructs the data; methods agree; results are deterministic', () => {
  const rng = new Rng(4);
  const count = 30;
  const dims = 8;
  const data = randomData(rng, count, dims, 8);
  const m = fitPca(data, count, dims, dims);
  const proj = pcaProject(m, data, count);
  let worst = 0;
  for (let r = 0; r < count; r++)
    for (let j = 0; j < dims; j++) {
      let x = m.mean[j];
      for (let c = 0; c < dims; c++) x += proj[r * dims + c] * m.components[c * dims + j];
      worst = Math.max(worst, Math.abs(x - data[r * dims + j]));
    }
  assert.ok(worst < 1e-5, `reconstruction error ${worst}`);
  const sum = m.variances.reduce((a, b) => a + b, 0);
  assert.ok(Math.abs(sum - m.totalVariance) < 1e-9 * m.totalVariance);

  // Wider data: the exact methods agree, and the randomized one on a spectrum with a gap.
  const n = 120;
  const d = 60;
  const wide = randomData(rng, n, d, 6);
  const k = 4;
  const cov = fitPca(wide, n, d, k, { method: 'covariance' });
  const gram = fitPca(wide, n, d, k, { method: 'gram' });
  const rand = fitPca(wide, n, d, k, { method: 'randomized', iterations: 6 });
  for (const other of [gram, rand]) {
    for (let c = 0; c < k; c++) {
      assert.ok(Math.abs(other.variances[c] - cov.variances[c]) < 1e-6 * cov.variances[c], `${other.method} variance ${c}`);
      let dot = 0;
      for (let j = 0; j < d; j++) dot += other.components[c * d + j] * cov.components[c * d + j];
      assert.ok(Math.abs(dot - 1) < 1e-6, `${other.method} component ${c}: cos ${dot}`);
    }
  }
  assert.equal(fitPca(wide, n, d, k, { method: 'randomized' }).components, fitPca(wide, n, d, k, { method: 'randomized' }).components);
  // Fewer rows than dimensions (the Gram matrix is the small one): k = count still gives an orthonormal basis.
  const few = randomData(rng, 5, 20, 5);
  const g = fitPca(few, 5, 20, 5);
  assert.is(g.method, 'gram');
  for (let a = 0; a < 5; a++)
    for (let b = 0; b < 5; b++) {
      let dot = 0;
      for (let j = 0; j < 20; j++) dot += g.components[a * 20 + j] * g.components[b * 20 + j];
      assert.ok(Math.abs(dot - (a === b ? 1 : 0)) < 1e-9);
    }
  assert.ok(g.variances[4] < 1e-9 * g.variances[0]);
});

test('pcaProject: the blocked native path for large inputs matches float64 dot products', () => {
  const rng = new Rng(8);
  const count = 2100;
  const dims = 1024;
  const k = 32; // count * dims * k > 2^26: the native path
  const data = Float32Array.from({ length: count * dims }, () => rng.normal());
  const m = fitPca(data, count, dims, k, { method: 'randomized', iterations: 1 });
  const proj = pcaProject(m, data, count);
  for (const r of [0, 511, 512, 1337, count - 1]) {
    for (let c = 0; c < k; c++) {
      let s = 0;
      for (let j = 0; j < dims; j++) s += (data[r * dims + j] - m.mean[j]) * m.components[c * dims + j];
      // float32 products over 1024 terms of size ~1: a few 1e-6 at most.
      assert.ok(Math.abs(proj[r * k + c] - s) < 1e-4, `row ${r} component ${c}: ${proj[r * k + c]} vs ${s}`);
    }
  }
});

test('PCA and distances: argument errors', () => {
  const data = new Float32Array(12);
  throwsCode(() => fitPca(data, 3, 5, 2), 'E_SHAPE', 'count 3 x dims 5');
  throwsCode(() => fitPca(data, 3, 4, 5), 'E_ARG', 'min(count, dims) = 3');
  throwsCode(() => fitPca(data, 3, 4, 2, { method: 'svd' as never }), 'E_ARG', 'options.method');
  throwsCode(() => fitPca(Float32Array.from([0, 1, NaN, 3]), 2, 2, 1), 'E_ARG', 'data[2]');
  throwsCode(() => fitPca(data, 1, 12, 1), 'E_ARG', 'at least 2 rows');
  throwsCode(() => pcaProject({} as never, data, 3), 'E_ARG', 'PCA model');
});

test('pairDistances: Euclidean and cosine', () => {
  const f = Float32Array.from([3, 4, 0, 0, 6, 8, 0, 1]);
  assert.equal(Array.from(pairDistances(f, 2, [0, 0, 1], [1, 2, 3])), [5, 5, 1]);
  assert.equal(Array.from(pairDistances(f, 2, [0, 0, 1], [1, 2, 3], { metric: 'l1' })), [7, 7, 1]);
  const cos = pairDistances(f, 2, [0, 0, 1], [2, 3, 2], { metric: 'cosine' });
  assert.ok(Math.abs(cos[0]) < 1e-12 && Math.abs(cos[1] - 0.2) < 1e-12 && cos[2] === 1);
  throwsCode(() => pairDistances(f, 2, [0], [4]), 'E_ARG', 'b[0]');
  throwsCode(() => pairDistances(f, 3, [0], [1]), 'E_SHAPE', 'multiple of dims = 3');
});

// ---------------------------------------------------------------------------------------------
// SVG chart

/** Checks that every tag is closed in order (a small XML well-formedness test); returns the element names. */
function checkXml(svg: string): string[] {
  const stack: string[] = [];
  const names: string[] = [];
  const body = svg.replace(/^<\?xml[^>]*\?>\s*/, '');
  const tag = /<(\/?)([A-Za-z][\w:-]*)((?:\s+[\w:-]+="[^"<]*")*)\s*(\/?)>/g;
  let last = 0;
  let m: RegExpExecArray | null;
  while ((m = tag.exec(body)) !== null) {
    const text = body.slice(last, m.index);
    assert.not.match(text, /[<>]|&(?!(amp|lt|gt|quot|apos);)/, `stray markup in text: ${text}`);
    last = tag.lastIndex;
    const [, close, name, , self] = m;
    if (close) assert.is(stack.pop(), name, `closing </${name}>`);
    else if (!self) stack.push(name);
    names.push(name);
  }
  assert.is(body.slice(last).trim(), '');
  assert.equal(stack, []);
  return names;
}

test('lineChartSvg: well-formed, series named and escaped, log axis', () => {
  const svg = lineChartSvg({
    title: 'ROC <LFW> & friends',
    xLabel: 'false accept rate',
    yLabel: 'true accept rate',
    series: [
      { name: '8x4 rounding', points: [[0, 0], [0.1, 0.6], [1, 1]] },
      { name: 'PCA "32"', points: [[0, 0], [0.5, 0.5], [1, 1]] },
    ],
    yRange: [0, 1],
  });
  const names = checkXml(svg);
  assert.is(names[0], 'svg');
  assert.ok(names.includes('polyline') && names.includes('text'));
  assert.ok(svg.includes('>8x4 rounding<') && svg.includes('>PCA &quot;32&quot;<') && svg.includes('ROC &lt;LFW&gt; &amp; friends'));
  const log = lineChartSvg({
    title: 'recall',
    xLabel: 'bins visited',
    yLabel: 'recall',
    series: [{ name: 'search', points: Array.from({ length: 100 }, (_, i) => [2 ** (i / 5), i / 100] as [number, number]) }],
    xLog: true,
  });
  checkXml(log);
  assert.ok(log.includes('>1000<') && log.includes('>1000000<'));
  // One point still draws.
  checkXml(lineChartSvg({ title: 't', xLabel: 'x', yLabel: 'y', series: [{ name: 'one', points: [[2, 3]] }] }));
  throwsCode(() => lineChartSvg({ title: 't', xLabel: 'x', yLabel: 'y', series: [{ name: 'a', points: [[0, 1]] }], xLog: true }), 'E_ARG', 'x > 0');
  throwsCode(() => lineChartSvg({ title: 't', xLabel: 'x', yLabel: 'y', series: [] }), 'E_ARG', 'options.series');
  throwsCode(() => lineChartSvg({ title: 't', xLabel: 'x', yLabel: 'y', series: [{ name: 'a', points: [[1, NaN]] }] } as never), 'E_ARG', 'points[0]');
});

test.run();
