// LutClassifier: look-up and widening against a brute-force reference (every counted bin sorted by
// distance, then code as uint32; whole bins gathered until minSamples), update == fit on the
// union, save / load, corrupt files, argument errors; the logistic-regression baseline; the
// gender experiment and `dcl classify` end to end on a tiny generated LFW-like tree.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { BinIndex } from '../lib/bin-index.js';
import { main } from '../lib/cli.js';
import type { Output } from '../lib/cli.js';
import { parseLayout } from '../lib/codes.js';
import type { CodeLayout } from '../lib/codes.js';
import { COMMANDS } from '../lib/commands.js';
import { DclError } from '../lib/errors.js';
import { mcNemarPValue } from '../lib/eval.js';
import { chooseMinSamples, genderExperiment, genderMarkdown, lfwGenderAttributes, lfwGenderList, writeGenderReport } from '../lib/gender.js';
import { LFW_PREPROCESSING } from '../lib/images.js';
import { fitLogisticRegression, logisticPredict, logisticProbabilities } from '../lib/logistic.js';
import { LutClassifier } from '../lib/lut-classifier.js';
import type { LutPredictOptions } from '../lib/lut-classifier.js';
import { Model } from '../lib/model.js';
import { DclS } from '../lib/nn.js';
import { Rng } from '../lib/random.js';
import { syntheticFaces } from '../lib/synthetic.js';
import { codeDistanceRef, xorshift } from './reference.js';

const test = suite('lut-classifier');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'dcl-lut-'));
process.on('exit', () => fs.rmSync(tmp, { recursive: true, force: true }));

function randomCode(r: () => number, l: CodeLayout): number {
  return l.bits === 32 ? Math.floor(r() * 2 ** 32) : Math.floor(r() * 2 ** l.bits);
}

/** The reference: all counted faces sorted by (distance, code as uint32), whole bins gathered until minSamples. */
function reference(codes: Uint32Array, labels: Int32Array, C: number, query: number, l: CodeLayout, o: Required<LutPredictOptions>) {
  const faces = Array.from(codes, (code, i) => ({ code, label: labels[i], d: codeDistanceRef(code, query, l) }));
  faces.sort((a, b) => a.d - b.d || a.code - b.code);
  const acc = new Float64Array(C);
  const prior = new Float64Array(C);
  for (const f of faces) prior[f.label]++;
  let weightSum = 0;
  let samples = 0;
  let bins = 0;
  let farthest = -1;
  let d0 = 0;
  for (let i = 0; i < faces.length; ) {
    if (samples >= o.minSamples || bins >= o.maxBins || faces[i].d > o.maxDistance) break;
    const { code, d } = faces[i];
    if (bins === 0) d0 = d;
    // exp(-d / tau), relative to the nearest bin gathered (the same probabilities, no underflow).
    const w = o.weighting === 'none' ? 1 : o.weighting === 'inverse' ? 1 / (1 + d) : Math.exp(-(d - d0) / o.tau);
    for (; i < faces.length && faces[i].code === code; i++) {
      acc[faces[i].label] += w;
      weightSum += w;
      samples++;
    }
    bins++;
    farthest = d;
  }
  if (bins === 0) return { proba: prior.map((v) => v / faces.length), samples: 0, bins: 0, distance: -1, fallback: 1 };
  return { proba: acc.map((v) => v / weightSum), samples, bins, distance: farthest, fallback: 0 };
}

function argmaxLow(p: ArrayLike<number>): number {
  let b = 0;
  for (let c = 1; c < p.length; c++) if (p[c] > p[b]) b = c;
  return b;
}

const LAYOUTS = ['32x1', '16x2', '8x4', '4x8', '3x10', '1x32'];

test('look-up and widening match the brute-force reference (several layouts, weightings, limits)', () => {
  for (const name of LAYOUTS) {
    const l = parseLayout(name);
    const r = xorshift(l.bits * 7 + l.n);
    const C = 3;
    // Codes from a pool, so that bins hold several faces; labels skewed by the code's low bit.
    const pool = Array.from({ length: 60 }, () => randomCode(r, l));
    // Plus one heavy bin, so that the first guess at the bins needed (from the mean faces per bin)
    // falls short and the search is widened again.
    const heavy = randomCode(r, l);
    const N = 500;
    const codes = Uint32Array.from({ length: N }, (_, i) => (i < 200 ? pool[Math.floor(r() * pool.length)] : heavy));
    const labels = Int32Array.from(codes, (c) => ((c & 1) === 1 && r() < 0.7 ? 2 : Math.floor(r() * C)));
    const searches = countSearches();
    const table = new LutClassifier({ layout: name, classes: C }).fit(codes, labels);
    assert.is(table.size, N);
    assert.is(table.bins, new Set(codes).size);
    // Queries: occupied bins and random codes.
    const queries = Uint32Array.from({ length: 40 }, (_, i) => (i % 4 === 0 ? pool[i % pool.length] : randomCode(r, l)));
    const nearest = Array.from(queries, (q) => Math.min(...Array.from(pool, (c) => codeDistanceRef(c, q, l)), codeDistanceRef(heavy, q, l))).sort((a, b) => a - b);
    const median = nearest[nearest.length >> 1];
    const settings: LutPredictOptions[] = [
      {},
      { minSamples: 3 },
      { minSamples: 12, weighting: 'inverse' },
      { minSamples: 7, weighting: 'exp', tau: 2 },
      { minSamples: 30, maxBins: 4 },
      { minSamples: 5, maxDistance: median },
      { minSamples: 1000 },
      { minSamples: 2, weighting: 'exp', tau: 0.01, maxDistance: median + 1 },
    ];
    for (const s of settings) {
      const o = { minSamples: 1, weighting: 'none', tau: 1, maxDistance: Infinity, maxBins: Infinity, ...s } as Required<LutPredictOptions>;
      const d = table.predictDetailed(queries, s);
      const proba = table.predictProba(queries, s);
      const predicted = table.predict(queries, s);
      for (let i = 0; i < queries.length; i++) {
        const ref = reference(codes, labels, C, queries[i], l, o);
        const what = `${name} ${JSON.stringify(s)} query ${i}`;
        assert.is(d.fallback[i], ref.fallback, what);
        assert.is(d.samples[i], ref.samples, what);
        assert.is(d.bins[i], ref.bins, what);
        assert.is(d.distance[i], ref.distance, what);
        for (let c = 0; c < C; c++) {
          assert.ok(Math.abs(d.proba[i * C + c] - ref.proba[c]) < 1e-9, `${what} class ${c}: ${d.proba[i * C + c]} vs ${ref.proba[c]}`);
          assert.is(proba[i * C + c], d.proba[i * C + c]);
        }
        const sorted = [...ref.proba].sort((a, b) => b - a);
        if (sorted[0] - sorted[1] > 1e-9) assert.is(d.labels[i], argmaxLow(ref.proba), what);
        assert.is(predicted[i], d.labels[i]);
      }
    }
    assert.ok(searches() > 0, `${name}: never widened beyond the first batch search`);
  }
});

/** Counts BinIndex.search calls from now on (the widening after the first batch search). */
function countSearches(): () => number {
  const original = BinIndex.prototype.search;
  let calls = 0;
  BinIndex.prototype.search = function (this: BinIndex, ...args: Parameters<BinIndex['search']>) {
    calls++;
    return original.apply(this, args);
  };
  return () => {
    BinIndex.prototype.search = original;
    return calls;
  };
}

test('ties go to the lower class index; nothing within maxDistance answers the prior, flagged', () => {
  const table = new LutClassifier({ layout: '8x4', classes: ['a', 'b', 'c'] });
  // Bin 0: one 'b', one 'c' (a tie between b and c); bin 0xff: three 'c'.
  table.fit(Int32Array.of(0, 0, 0xff, 0xff, 0xff), Int32Array.of(1, 2, 2, 2, 2));
  const d = table.predictDetailed(Int32Array.of(0, 0x0f00_0000, 0xff), { maxDistance: 10 });
  assert.is(d.labels[0], 1); // b and c tie at 0.5: b (index 1) wins
  assert.equal(Array.from(d.proba.subarray(0, 3)), [0, 0.5, 0.5]);
  assert.is(d.fallback[1], 1); // 0x0f000000 is 15 from bin 0
  assert.is(d.distance[1], -1);
  assert.is(d.samples[1], 0);
  assert.equal(Array.from(d.proba.subarray(3, 6)), [0, 0.2, 0.8]);
  assert.is(d.labels[1], 2);
  assert.is(d.labels[2], 2);
  assert.equal(Array.from(table.prior), [0, 0.2, 0.8]);
  assert.equal(Array.from(table.binCounts(0xff)), [0, 0, 3]);
  assert.equal(Array.from(table.binCounts(7)), [0, 0, 0]);
  assert.is(table.classIndex('c'), 2);
  // A tie between the prior's classes: the lower index.
  const even = new LutClassifier({ layout: '32x1', classes: 2 }).fit(Int32Array.of(0, -1), Int32Array.of(1, 0));
  assert.is(even.predict(Int32Array.of(0xffff), { maxDistance: 3 })[0], 0);
  assert.is(even.predict(Int32Array.of(0x7fff_ffff))[0], 0); // distance 1 from -1 (label 0), 31 from 0
  assert.is(even.predictDetailed(new Int32Array(0)).count, 0);
});

test('update == fit on the union; fit resets', () => {
  for (const name of ['16x2', '4x8']) {
    const l = parseLayout(name);
    const r = xorshift(99 + l.q);
    const pool = Array.from({ length: 30 }, () => randomCode(r, l));
    const codes = Uint32Array.from({ length: 150 }, () => pool[Math.floor(r() * pool.length)]);
    const labels = Int32Array.from(codes, () => Math.floor(r() * 4));
    const whole = new LutClassifier({ layout: name, classes: 4, minSamples: 5 }).fit(codes, labels);
    const parts = new LutClassifier({ layout: name, classes: 4, minSamples: 5 });
    parts.fit(Uint32Array.of(pool[0]), Int32Array.of(3)); // forgotten by the next fit
    parts.fit(codes.subarray(0, 40), labels.subarray(0, 40));
    parts.update(codes.subarray(40, 41), labels.subarray(40, 41));
    parts.update(codes.subarray(41), Array.from(labels.subarray(41)));
    assert.equal(parts.entries(), whole.entries());
    assert.equal(parts.classCounts, whole.classCounts);
    assert.is(parts.size, 150);
    const queries = Uint32Array.from({ length: 30 }, () => randomCode(r, l));
    assert.equal(parts.predictProba(queries), whole.predictProba(queries));
    assert.equal(parts.predict(queries, { weighting: 'inverse', minSamples: 20 }), whole.predict(queries, { weighting: 'inverse', minSamples: 20 }));
  }
});

test('save / load round trip (async and Sync), settings and class names kept', async () => {
  const r = xorshift(5);
  const codes = Int32Array.from({ length: 300 }, () => (Math.floor(r() * 2 ** 32) | 0) & 0x3333_3333);
  const labels = Int32Array.from(codes, () => Math.floor(r() * 2));
  const table = new LutClassifier({ layout: '16x2', classes: ['male', 'female'], minSamples: 4, weighting: 'exp', tau: 2.5, maxDistance: 9, maxBins: 50 }).fit(codes, labels);
  const file = path.join(tmp, 'a.dcllut');
  await table.save(file);
  const back = await LutClassifier.load(file);
  assert.equal(back.classNames, ['male', 'female']);
  assert.equal(back.options, { minSamples: 4, weighting: 'exp', tau: 2.5, maxDistance: 9, maxBins: 50 });
  assert.is(back.layout.name, '16x2');
  assert.equal(back.entries(), table.entries());
  const queries = Int32Array.from({ length: 50 }, () => Math.floor(r() * 2 ** 32) | 0);
  assert.equal(back.predictDetailed(queries), table.predictDetailed(queries));
  // Numbered classes, default settings, Sync; an empty table saves and loads but cannot predict.
  const plain = new LutClassifier({ layout: '32x1', classes: 5 }).fit(Int32Array.of(1, 2, 3, -1), Int32Array.of(0, 4, 4, 3));
  plain.saveSync(path.join(tmp, 'b.dcllut'));
  const b = LutClassifier.loadSync(path.join(tmp, 'b.dcllut'));
  assert.equal(b.classNames, ['0', '1', '2', '3', '4']);
  assert.equal(b.options, { minSamples: 1, weighting: 'none', tau: 1, maxDistance: Infinity, maxBins: Infinity });
  assert.equal(b.entries(), plain.entries());
  new LutClassifier({ layout: '8x4', classes: 2 }).saveSync(path.join(tmp, 'empty.dcllut'));
  const empty = LutClassifier.loadSync(path.join(tmp, 'empty.dcllut'));
  assert.is(empty.bins, 0);
  assert.throws(() => empty.predict(Int32Array.of(1)), (e: unknown) => e instanceof DclError && e.code === 'E_ARG' && /fit or update first/.test(e.message));
  // No temporary files left behind.
  assert.equal(fs.readdirSync(tmp).filter((f) => f.endsWith('.tmp')), []);
});

test('corrupt, truncated, padded and foreign files are E_FORMAT; unreadable is E_IO', () => {
  const file = path.join(tmp, 'c.dcllut');
  new LutClassifier({ layout: '8x4', classes: 3 }).fit(Int32Array.of(1, 2, 3, 2), Int32Array.of(0, 1, 2, 2)).saveSync(file);
  const good = fs.readFileSync(file);
  const expectFormat = (bytes: Uint8Array, pattern: RegExp, what: string) => {
    const f = path.join(tmp, 'bad.dcllut');
    fs.writeFileSync(f, bytes);
    assert.throws(() => LutClassifier.loadSync(f), (e: unknown) => e instanceof DclError && e.code === 'E_FORMAT' && pattern.test(e.message), what);
  };
  for (const at of [12, 40, good.length - 40, good.length - 1]) {
    const bad = Buffer.from(good);
    bad[at] ^= 0x10;
    expectFormat(bad, /checksum|layout|promises|ascending/, `flipped byte ${at}`);
  }
  expectFormat(good.subarray(0, good.length - 9), /truncated/, 'truncated');
  expectFormat(good.subarray(0, 20), /fewer than a header/, 'header cut');
  expectFormat(Buffer.concat([good, Buffer.alloc(8)]), /truncated or padded/, 'padded');
  const version = Buffer.from(good);
  version.writeUInt32LE(7, 8);
  expectFormat(version, /format version 7/, 'version');
  // A bin index file is another kind of file.
  const bins = path.join(tmp, 'x.dclbins');
  const index = new BinIndex({ layout: '8x4' });
  index.add(Int32Array.of(1, 2), [0, 1]);
  index.saveSync(bins);
  expectFormat(fs.readFileSync(bins), /magic/, 'a BinIndex file');
  expectFormat(Buffer.from('hello, this is not a table at all; not at all, not at all, really not'), /magic/, 'text');
  assert.throws(() => LutClassifier.loadSync(path.join(tmp, 'missing.dcllut')), (e: unknown) => e instanceof DclError && e.code === 'E_IO');
  assert.throws(() => LutClassifier.loadSync(tmp), (e: unknown) => e instanceof DclError && e.code === 'E_IO');
});

test('bad arguments are DclErrors "Expected ... for ... but received ..."', () => {
  const arg = (fn: () => unknown, pattern: RegExp, code = 'E_ARG') =>
    assert.throws(fn, (e: unknown) => e instanceof DclError && e.code === code && /^Expected .* for .* but received /.test(e.message) && pattern.test(e.message), String(fn));
  arg(() => new LutClassifier({ layout: '8x5', classes: 2 }), /options\.layout/);
  arg(() => new LutClassifier({ classes: 2 } as never), /options\.layout/);
  arg(() => new LutClassifier({ layout: '8x4', classes: 1 }), /options\.classes but received 1/);
  arg(() => new LutClassifier({ layout: '8x4', classes: 2.5 }), /options\.classes/);
  arg(() => new LutClassifier({ layout: '8x4', classes: ['a', 'a'] }), /distinct/);
  arg(() => new LutClassifier({ layout: '8x4', classes: ['a'] }), /options\.classes/);
  arg(() => new LutClassifier({ layout: '8x4', classes: 2, minSamples: 0 }), /options\.minSamples but received 0/);
  arg(() => new LutClassifier({ layout: '8x4', classes: 2, weighting: 'gauss' as never }), /options\.weighting/);
  arg(() => new LutClassifier({ layout: '8x4', classes: 2, tau: -1 }), /options\.tau/);
  arg(() => new LutClassifier({ layout: '8x4', classes: 2, maxDistance: -1 }), /options\.maxDistance/);
  arg(() => new LutClassifier({ layout: '8x4', classes: 2, k: 3 } as never), /.*/);
  const t = new LutClassifier({ layout: '8x4', classes: 3 });
  arg(() => t.fit([1, 2] as never, Int32Array.of(0, 1)), /codes/);
  const small = new LutClassifier({ layout: '4x4', classes: 2 });
  arg(() => small.fit(Int32Array.of(1, 0x10000), Int32Array.of(0, 1)), /codes of layout 4x4 .*index 1/);
  arg(() => t.fit(Int32Array.of(1, 2), Int32Array.of(0, 3)), /labels\[1\] but received 3/);
  arg(() => t.fit(Int32Array.of(1, 2), Int32Array.of(0, 1, 2)), /labels/, 'E_SHAPE');
  arg(() => t.update(Int32Array.of(1), 'a' as never), /labels/);
  t.fit(Int32Array.of(1, 2), Int32Array.of(0, 1));
  arg(() => t.predict(Int32Array.of(1), { minSamples: -2 }), /options\.minSamples/);
  arg(() => t.predict(Int32Array.of(1), { nope: 1 } as never), /.*/);
  small.fit(Int32Array.of(1, 2), Int32Array.of(0, 1));
  arg(() => small.predict(Int32Array.of(-1)), /codes/);
  arg(() => t.binCounts(1.5), /code/);
  arg(() => t.saveSync(''), /path/);
});

test('logistic regression: a tiny separable case, standardisation, the L2 penalty', () => {
  // 1-D, separable at x = 10.5 (features far from zero mean and unit scale).
  const x = Float64Array.of(7, 8, 9, 10, 11, 12, 13, 14);
  const y = Int32Array.of(0, 0, 0, 0, 1, 1, 1, 1);
  const m = fitLogisticRegression(x, 8, 1, y, { l2: 1e-2 });
  assert.ok(m.converged, `not converged after ${m.iterations}`);
  assert.equal(Array.from(logisticPredict(m, x, 8)), Array.from(y));
  const p = logisticProbabilities(m, Float64Array.of(10.5), 1)[0];
  assert.ok(Math.abs(p - 0.5) < 1e-6, `p(10.5) = ${p}`);
  assert.ok(m.weights[0] > 0);
  // The gradient of the objective vanishes at the solution (checked numerically).
  const objective = (w: number, b: number) => {
    let s = 0;
    for (let i = 0; i < 8; i++) {
      const z = w * ((x[i] - m.mean[0]) / m.std[0]) + b;
      s += Math.log1p(Math.exp(z)) - y[i] * z;
    }
    return s / 8 + 0.5 * 1e-2 * w * w;
  };
  const h = 1e-6;
  assert.ok(Math.abs((objective(m.weights[0] + h, m.bias) - objective(m.weights[0] - h, m.bias)) / (2 * h)) < 1e-6);
  assert.ok(Math.abs((objective(m.weights[0], m.bias + h) - objective(m.weights[0], m.bias - h)) / (2 * h)) < 1e-6);
  // A stronger penalty gives a smaller weight; a constant feature is harmless.
  const strong = fitLogisticRegression(x, 8, 1, y, { l2: 1 });
  assert.ok(strong.weights[0] < m.weights[0]);
  const x2 = Float64Array.from({ length: 16 }, (_, i) => (i % 2 === 0 ? x[i >> 1] : 3));
  const m2 = fitLogisticRegression(x2, 8, 2, y);
  assert.equal(Array.from(logisticPredict(m2, x2, 8)), Array.from(y));
  assert.ok(Math.abs(m2.weights[1]) < 1e-9);
  // 2-D: the label is x0 > x1.
  const r = xorshift(3);
  const pts = Float64Array.from({ length: 200 }, () => r() * 4);
  const lab = Int32Array.from({ length: 100 }, (_, i) => (pts[2 * i] > pts[2 * i + 1] ? 1 : 0));
  const m3 = fitLogisticRegression(pts, 100, 2, lab, { l2: 1e-4 });
  let right = 0;
  logisticPredict(m3, pts, 100).forEach((v, i) => (right += v === lab[i] ? 1 : 0));
  assert.ok(right >= 99, `${right} of 100`);
  assert.throws(() => fitLogisticRegression(x, 8, 1, Int32Array.of(0, 1, 2, 0, 0, 0, 0, 0)), (e: unknown) => e instanceof DclError && e.code === 'E_ARG');
  assert.throws(() => fitLogisticRegression(x, 9, 1, y), (e: unknown) => e instanceof DclError && e.code === 'E_SHAPE');
});

// ---------------------------------------------------------------------------------------------
// The gender experiment and `dcl classify` on a tiny LFW-like tree

const p = (i: number) => `Person_${String(i).padStart(2, '0')}`;

/** 8 people x 4 JPEG images; View 1: people 0-3 train, 4-7 test; two View 2 sets; gender lists. */
async function writeTinyLfw(root: string): Promise<void> {
  const faces = syntheticFaces({ identities: 8, imagesPerIdentity: 4, size: 64, seed: 11 });
  for (let i = 0; i < faces.labels.length; i++) {
    const name = p(faces.labels[i]);
    const img = faces.images.subarray(i * 4096, (i + 1) * 4096);
    let lo = Infinity;
    let hi = -Infinity;
    for (const v of img) (lo = Math.min(lo, v)), (hi = Math.max(hi, v));
    const raw = Uint8Array.from(img, (v) => Math.round((255 * (v - lo)) / (hi - lo || 1)));
    const file = path.join(root, 'images_deepfunneled', name, `${name}_${String((i % 4) + 1).padStart(4, '0')}.jpg`);
    fs.mkdirSync(path.dirname(file), { recursive: true });
    await sharp(raw, { raw: { width: 64, height: 64, channels: 1 } }).resize(250, 250).jpeg().toFile(file);
  }
  const line = (people: number[]) => people.map((i) => `${p(i)}\t4`);
  fs.writeFileSync(path.join(root, 'people.txt'), ['2', '4', ...line([0, 1, 2, 3]), '4', ...line([4, 5, 6, 7]), ''].join('\n'));
  fs.writeFileSync(path.join(root, 'pairs.txt'), ['2\t1', `${p(0)}\t1\t2`, `${p(0)}\t1\t${p(1)}\t2`, `${p(4)}\t1\t2`, `${p(4)}\t1\t${p(5)}\t2`, ''].join('\n'));
  fs.writeFileSync(path.join(root, 'peopleDevTrain.txt'), ['4', ...line([0, 1, 2, 3]), ''].join('\n'));
  fs.writeFileSync(path.join(root, 'peopleDevTest.txt'), ['4', ...line([4, 5, 6, 7]), ''].join('\n'));
  fs.writeFileSync(path.join(root, 'pairsDevTest.txt'), ['1', `${p(4)}\t1\t2`, `${p(4)}\t1\t${p(5)}\t2`, ''].join('\n'));
  const files = (people: number[]) => people.flatMap((i) => [1, 2, 3, 4].map((k) => `${p(i)}_000${k}.jpg`));
  // Male: 0, 1, 4, 5; female: 2, 3, 6, 7. Person_00_0001 in both lists; Person_07_0004 in neither.
  const male = files([0, 1, 4, 5]);
  const female = [...files([2, 3, 6, 7]).filter((f) => f !== `${p(7)}_0004.jpg`), `${p(0)}_0001.jpg`];
  fs.mkdirSync(path.join(root, 'gender'));
  fs.writeFileSync(path.join(root, 'gender', 'male_names.txt'), male.join('\r\n') + '\r\n');
  fs.writeFileSync(path.join(root, 'gender', 'female_names.txt'), female.join('\r\n') + '\r\n');
}

function tinyModel(layout = '8x4'): Model {
  const l = parseLayout(layout);
  const network = new DclS({ codeDims: l.n, channels: [4, 4, 4, 4], hidden: 16, seed: 3 });
  return new Model(network, {
    layout: l,
    method: 'rounding',
    alpha: 1,
    beta: 1,
    preprocessing: { ...LFW_PREPROCESSING, inputShape: [1, 64, 64], crop: [65, 65, 185, 185], storedSize: [72, 72] },
    training: {},
  });
}

test('chooseMinSamples: people-disjoint validation on the training faces picks the clear winner, the smallest on a tie', () => {
  const people = 40;
  const person = Int32Array.from({ length: 4 * people }, (_, i) => Math.floor(i / 4));
  const layout = parseLayout('32x1');
  const settings = new LutClassifier({ layout, classes: ['a', 'b'] }).options;
  // The code says the class (two bins): the face's own bin is right, widening to everything is not.
  const labels = Int32Array.from(person, (p) => p % 2);
  const codes = Int32Array.from(labels, (l) => (l ? -1 : 0));
  assert.is(chooseMinSamples({ codes, labels, person }, layout, settings, [1, 4, 1000]), 1);
  // Labels unrelated to random codes, 3:1 for class 0: the prior (widening to everyone) wins.
  const rng = new Rng(5);
  const noise = Int32Array.from(person, (p) => (p % 4 === 3 ? 1 : 0));
  const random = Int32Array.from(person, () => Math.floor(rng.uniform() * 2 ** 32) | 0);
  assert.is(chooseMinSamples({ codes: random, labels: noise, person }, layout, settings, [1, 4, 1000]), 1000);
  // One class only: every value is right everywhere, so the smallest.
  assert.is(chooseMinSamples({ codes: random, labels: new Int32Array(person.length), person }, layout, settings, [8, 2, 16]), 2);
});

test('gender experiment end to end on a tiny LFW tree (view1 and 10fold), report files; dcl classify', async () => {
  const root = path.join(tmp, 'lfw');
  await writeTinyLfw(root);
  const cache = path.join(tmp, 'cache');
  const model = tinyModel();
  const modelFile = path.join(tmp, 'tiny.safetensors');
  model.saveSync(modelFile);

  const r = await genderExperiment({ lfw: root, model: modelFile, cache, seeds: [1, 2], fractions: [0.5, 1], minSamplesSweep: [1, 4, 100] });
  assert.is(r.protocol, 'view1');
  assert.is(r.layout, '8x4');
  const v = r.results[0];
  assert.equal(
    { ...v.train },
    { people: 4, images: 16, used: 15, male: 7, female: 8, unlabelledBoth: 1, unlabelledNeither: 0, skipped: 0 },
  );
  assert.equal({ ...v.test }, { people: 4, images: 16, used: 15, male: 8, female: 7, unlabelledBoth: 0, unlabelledNeither: 1, skipped: 0 });
  assert.ok(v.lut.accuracy >= 0 && v.lut.accuracy <= 1);
  assert.is(v.majority.label, 'female'); // 8 female training faces against 7 male
  assert.is(v.majority.accuracy, 7 / 15);
  assert.ok(v.logistic !== null && v.logistic.accuracy >= 0 && v.logistic.accuracy <= 1);
  // The table against the regression face by face: the same accuracies, the discordant faces.
  const vs = v.tableVersusLogistic!;
  assert.is(vs.count, 15);
  assert.ok(Math.abs(vs.accuracyA - v.lut.accuracy) < 1e-12 && Math.abs(vs.accuracyB - v.logistic!.accuracy) < 1e-12);
  assert.ok(Math.abs(vs.difference - (vs.onlyA - vs.onlyB) / 15) < 1e-12);
  assert.equal(r.summary.tableVersusLogistic, { onlyTable: vs.onlyA, onlyLogistic: vs.onlyB, pValue: vs.pValue });
  assert.equal(r.trainSize.map((t) => t.fraction), [0.5, 1]);
  assert.is(r.trainSize[1].faces, 15);
  assert.is(r.trainSize[1].lut.std, 0);
  assert.is(r.trainSize[1].lut.mean, v.lut.accuracy);
  assert.ok(r.trainSize[0].faces >= 7.5 && r.trainSize[0].faces < 15);
  assert.equal(r.minSamples.map((m) => m.minSamples), [1, 4, 100]);
  // minSamples 'auto' (the default) picks one of the sweep on the training faces; the table's
  // accuracy is the sweep's at that value.
  assert.is(r.settings.minSamples, 'auto');
  assert.ok([1, 4, 100].includes(v.minSamples), `chosen ${v.minSamples}`);
  assert.is(r.minSamples.find((m) => m.minSamples === v.minSamples)!.accuracy, v.lut.accuracy);
  const fixed = await genderExperiment({ lfw: root, model: modelFile, cache, seeds: [1], fractions: [1], minSamplesSweep: [1, 4], minSamples: 4 });
  assert.is(fixed.settings.minSamples, 4);
  assert.is(fixed.results[0].minSamples, 4);
  assert.is(fixed.results[0].lut.accuracy, fixed.minSamples[1].accuracy);
  // minSamples beyond everything counted gathers every bin: the prior's answer.
  assert.is(r.minSamples[2].meanSamples, 15);
  assert.is(r.minSamples[2].accuracy, v.majority.accuracy);
  const md = genderMarkdown(r);
  assert.match(md, /\| look-up table \(\d+ occupied bins\) \| \d+\.\d \|/);
  assert.match(md, /training-set size/);
  assert.match(md, new RegExp(`the table alone is right on ${vs.onlyA} faces, the regression alone on ${vs.onlyB} \\(exact McNemar test: p `));
  const files = writeGenderReport(r, path.join(tmp, 'gender-out'));
  assert.equal(files.map((f) => path.basename(f)), ['gender-view1.md', 'gender-view1.json', 'gender-view1.svg']);
  assert.match(fs.readFileSync(files[2], 'utf8'), /<svg[\s\S]*look-up table[\s\S]*<\/svg>/);
  assert.is(JSON.parse(fs.readFileSync(files[1], 'utf8')).results[0].test.used, 15);

  // 10fold: a model per fold (here the same one), by template and by function.
  const folds = await genderExperiment({ lfw: root, protocol: '10fold', foldModels: modelFile, cache }).catch((e) => e);
  assert.ok(folds instanceof DclError && folds.code === 'E_ARG'); // a template without {fold}
  model.saveSync(path.join(tmp, 'fold1.safetensors'));
  const f = await genderExperiment({ lfw: root, protocol: '10fold', foldModels: path.join(tmp, 'fold{fold}.safetensors'), folds: [1], cache, logistic: false });
  assert.is(f.results.length, 1);
  assert.is(f.results[0].fold, 1);
  assert.is(f.results[0].train.used, 15); // set 0 (people 0-3)
  assert.is(f.results[0].test.used, 15);
  assert.is(f.results[0].logistic, null);
  assert.is(f.results[0].tableVersusLogistic, null);
  assert.is(f.summary.tableVersusLogistic, null);
  assert.not.match(genderMarkdown(f), /McNemar/);
  const g = await genderExperiment({ lfw: root, protocol: '10fold', foldModels: () => model, cache });
  assert.equal(g.results.map((x) => x.fold), [0, 1]);
  assert.match(genderMarkdown(g), /Mean \+- sample std over folds/);
  // Over folds the discordant faces add up (disjoint test faces).
  const sum = (k: 'onlyA' | 'onlyB') => g.results.reduce((a, x) => a + x.tableVersusLogistic![k], 0);
  assert.equal(g.summary.tableVersusLogistic, { onlyTable: sum('onlyA'), onlyLogistic: sum('onlyB'), pValue: mcNemarPValue(sum('onlyA'), sum('onlyB')) });
  assert.match(genderMarkdown(g), /McNemar/);
  assert.ok(writeGenderReport(g, path.join(tmp, 'gender-out')).every((x) => fs.existsSync(x)));
  const missing = await genderExperiment({ lfw: root, protocol: '10fold', foldModels: path.join(tmp, 'none{fold}.safetensors'), cache }).catch((e) => e);
  assert.ok(missing instanceof DclError && missing.code === 'E_IO');
  assert.equal(lfwGenderList(root, 'view1-test').summary.unlabelledNeither, 1);
  // Per-file labels for the attribute term, matched by file name: both lists or neither -> -1.
  const named = [`${p(0)}_0001.jpg`, `${p(0)}_0002.jpg`, `${p(2)}_0001.jpg`, `${p(7)}_0004.jpg`].map((f) => path.join('/any/folder', f));
  assert.equal(Array.from(lfwGenderAttributes(root, named)), [-1, 0, 1, -1]);
  const noLists = path.join(tmp, 'lfw-no-lists');
  fs.cpSync(root, noLists, { recursive: true });
  fs.rmSync(path.join(noLists, 'gender'), { recursive: true });
  assert.throws(() => lfwGenderAttributes(noLists, named), (e: unknown) => e instanceof DclError && e.code === 'E_IO' && /gender lists/.test(e.message));

  // dcl classify fit (LFW gender lists, and a list file) and predict.
  const out = capture();
  const lut = path.join(tmp, 'gender.dcllut');
  let code = await main(['classify', 'fit', '--model', modelFile, '--lut', lut, '--lfw-gender', root, '--cache', cache, '--min-samples', '3'], COMMANDS, out);
  assert.is(code, 0, out.stderr.join('\n'));
  assert.match(out.stdout.join('\n'), /counted 15 faces \(male 7, female 8\) in \d+ bins of layout 8x4/);
  assert.is(LutClassifier.loadSync(lut).options.minSamples, 3);
  const image = path.join(root, 'images_deepfunneled', p(5), `${p(5)}_0001.jpg`);
  const out2 = capture();
  code = await main(['classify', 'predict', '--model', modelFile, '--lut', lut, image], COMMANDS, out2);
  assert.is(code, 0, out2.stderr.join('\n'));
  assert.match(out2.stdout.join('\n'), new RegExp(`^${image.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\t(male|female)\\t[01]\\.\\d{3}\\t\\d+ faces in \\d+ bins, distance <= \\d+$`));
  const list = path.join(tmp, 'list.tsv');
  fs.writeFileSync(list, [`${image}\tcat`, `${path.join(root, 'images_deepfunneled', p(6), `${p(6)}_0002.jpg`)}\tdog`, ''].join('\n'));
  const out3 = capture();
  code = await main(['classify', 'fit', '--model', modelFile, '--lut', lut, '--list', list, '--no-cache'], COMMANDS, out3);
  assert.is(code, 0, out3.stderr.join('\n'));
  assert.equal(LutClassifier.loadSync(lut).classNames, ['cat', 'dog']);
  const out4 = capture();
  assert.is(await main(['classify', 'fit', '--model', modelFile, '--lut', lut], COMMANDS, out4), 2);
  assert.is(await main(['classify', 'predict', '--model', modelFile, '--lut', lut, '--weighting', 'gauss', image], COMMANDS, out4), 1);
  assert.match(out4.stderr.join('\n'), /E_ARG/);
});

function capture(): Output & { stdout: string[]; stderr: string[] } {
  const stdout: string[] = [];
  const stderr: string[] = [];
  return { stdout, stderr, print: (l) => void stdout.push(l), progress: () => undefined, endProgress: () => undefined, note: (l) => void stderr.push(l) };
}

test.run();
