// LutClassifier: attribute prediction by a look-up table over the bins of a code layout. Fitting
// counts: per occupied bin (code) a histogram of the class labels of the faces that fell into it,
// nothing is optimised. A query looks up its own bin; while fewer than `minSamples` labelled faces
// have been gathered, it widens to the nearby occupied bins in the order BinIndex visits them
// (ascending distance, then ascending code as uint32): whole bins are taken, and gathering stops
// after the bin that brings the count to minSamples (or at maxDistance / maxBins). The gathered
// histograms, each weighted by its bin's distance, give the class probabilities.
//
// The visiting itself is BinIndex's: the classifier keeps a BinIndex of its occupied bins, one
// entry per bin with id = the bin's slot in the count table.
//
// File (save / load): magic 'DCLLUT\0\0', format version, n, q, classes, bins, settings length L,
// settings (UTF-8 JSON: class names and the prediction defaults, space-padded to a multiple of 8),
// the bins' codes (uint32, ascending), their counts (float64, bins x classes, row-major), all
// little-endian, then the SHA-256 of every byte before it.
import { BinIndex } from './bin-index.js';
import { codesUint32, parseLayout, unusedBits } from './codes.js';
import type { CodeLayout, LayoutLike } from './codes.js';
import { DclError } from './errors.js';
import { readFileChecked, sha256Hex, writeFileAtomic } from './files.js';
import { describe, fail, knownKeys, plainObject } from './validate.js';

/**
 * How a gathered bin's counts are weighted by its distance d from the query:
 * 'none': 1 (plain counts); 'inverse': 1 / (1 + d); 'exp': exp(-d / tau).
 */
export type LutWeighting = 'none' | 'inverse' | 'exp';

export interface LutPredictOptions {
  /** Labelled faces to gather before stopping (whole bins; default 1). */
  minSamples?: number;
  /** Default 'none'. */
  weighting?: LutWeighting;
  /** The length scale of 'exp' weighting (default 1; ignored otherwise). */
  tau?: number;
  /** Bins farther than this are not visited (default Infinity). */
  maxDistance?: number;
  /** Occupied bins to visit at most (default Infinity). */
  maxBins?: number;
}

export interface LutClassifierOptions extends LutPredictOptions {
  layout: LayoutLike;
  /** The number of classes (>= 2), or their names (at least two, distinct). */
  classes: number | readonly string[];
}

/** Per query: what predictDetailed found. */
export interface LutPrediction {
  count: number;
  classes: number;
  /** Predicted class per query (argmax of proba; ties go to the lower class index). */
  labels: Int32Array;
  /** count x classes probabilities, row-major. */
  proba: Float64Array;
  /** Labelled faces gathered (unweighted); 0 for a fallback. */
  samples: Float64Array;
  /** Occupied bins gathered; 0 for a fallback. */
  bins: Uint32Array;
  /** Distance of the farthest bin gathered (up to 2^32 - 1 for layout 1x32); -1 for a fallback. */
  distance: Float64Array;
  /** 1 where no bin was found within maxDistance / maxBins: the answer is the prior. */
  fallback: Uint8Array;
}

export const LUT_FORMAT_VERSION = 1;
const MAGIC = 'DCLLUT\0\0';
const HEADER_BYTES = 36;
const CHECKSUM_BYTES = 32;
const MAX_CLASSES = 65536;

interface Settings {
  minSamples: number;
  weighting: LutWeighting;
  tau: number;
  maxDistance: number;
  maxBins: number;
}

const PREDICT_KEYS = ['minSamples', 'weighting', 'tau', 'maxDistance', 'maxBins'];

function limit(value: unknown, name: string, fallback: number): number {
  if (value === undefined) return fallback;
  if (value === Infinity) return Infinity;
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) fail('E_ARG', 'a non-negative integer or Infinity', name, value);
  return value;
}

function settingsOf(o: Record<string, unknown>, name: string, base: Settings): Settings {
  let minSamples = base.minSamples;
  if (o.minSamples !== undefined) {
    if (typeof o.minSamples !== 'number' || !Number.isSafeInteger(o.minSamples) || o.minSamples < 1)
      fail('E_ARG', 'a positive integer', `${name}.minSamples`, o.minSamples);
    minSamples = o.minSamples;
  }
  const weighting = (o.weighting ?? base.weighting) as LutWeighting;
  if (weighting !== 'none' && weighting !== 'inverse' && weighting !== 'exp') fail('E_ARG', "'none', 'inverse' or 'exp'", `${name}.weighting`, o.weighting);
  let tau = base.tau;
  if (o.tau !== undefined) {
    if (typeof o.tau !== 'number' || !Number.isFinite(o.tau) || o.tau <= 0) fail('E_ARG', 'a finite number > 0', `${name}.tau`, o.tau);
    tau = o.tau;
  }
  return {
    minSamples,
    weighting,
    tau,
    maxDistance: limit(o.maxDistance, `${name}.maxDistance`, base.maxDistance),
    maxBins: limit(o.maxBins, `${name}.maxBins`, base.maxBins),
  };
}

const DEFAULTS: Settings = { minSamples: 1, weighting: 'none', tau: 1, maxDistance: Infinity, maxBins: Infinity };


function checkLabels(value: unknown, classes: number, count: number, name: string): Int32Array {
  const ok = value instanceof Int32Array || value instanceof Uint8Array || value instanceof Uint16Array || value instanceof Uint32Array || Array.isArray(value);
  if (!ok) fail('E_ARG', `an Int32Array of class indices from 0 to ${classes - 1}`, name, value);
  const v = value as ArrayLike<unknown>;
  if (v.length !== count) throw new DclError('E_SHAPE', `Expected ${count} labels (one per code) for ${name} but received ${describe(value)}`);
  const out = new Int32Array(count);
  for (let i = 0; i < count; i++) {
    const x = v[i];
    if (typeof x !== 'number' || !Number.isInteger(x) || x < 0 || x >= classes) fail('E_ARG', `a class index from 0 to ${classes - 1}`, `${name}[${i}]`, x);
    out[i] = x;
  }
  return out;
}

/**
 * The weight of a bin at distance d. 'exp' is computed relative to the nearest gathered bin (d0):
 * exp(-(d - d0) / tau), the same probabilities as exp(-d / tau) without underflow far away.
 */
function weightOf(s: Settings, d: number, d0: number): number {
  if (s.weighting === 'none') return 1;
  if (s.weighting === 'inverse') return 1 / (1 + d);
  return Math.exp(-(d - d0) / s.tau);
}

/** Serialises Infinity as null (JSON has no Infinity). */
function finiteOrNull(v: number): number | null {
  return Number.isFinite(v) ? v : null;
}

export class LutClassifier {
  readonly layout: CodeLayout;
  /** The number of classes. */
  readonly classes: number;
  /** Class names: the ones given, else '0', '1', ... */
  readonly classNames: readonly string[];
  readonly #named: boolean;
  #settings: Settings;
  /** Slot -> bin code. */
  #codes = new Uint32Array(16);
  /** Slot x classes counts. */
  #counts = new Float64Array(16);
  /** Slot -> faces in the bin. */
  #totals = new Float64Array(16);
  #bins = 0;
  #slotOf = new Map<number, number>();
  #classTotals: Float64Array;
  #index: BinIndex;

  constructor(options: LutClassifierOptions) {
    const o = plainObject(options, 'options');
    knownKeys(o, ['layout', 'classes', ...PREDICT_KEYS], 'options');
    if (o.layout === undefined) fail('E_ARG', "a layout such as '32x1' or '8x4'", 'options.layout', undefined);
    this.layout = parseLayout(o.layout, 'options.layout');
    const c = o.classes;
    if (Array.isArray(c)) {
      if (c.length < 2 || c.length > MAX_CLASSES || !c.every((x) => typeof x === 'string' && x.length > 0) || new Set(c).size !== c.length)
        fail('E_ARG', `an array of at least 2 distinct non-empty class names (at most ${MAX_CLASSES})`, 'options.classes', c);
      this.classes = c.length;
      this.classNames = Object.freeze([...(c as string[])]);
      this.#named = true;
    } else {
      if (typeof c !== 'number' || !Number.isInteger(c) || c < 2 || c > MAX_CLASSES)
        fail('E_ARG', `a number of classes from 2 to ${MAX_CLASSES} or an array of class names`, 'options.classes', c);
      this.classes = c;
      this.classNames = Object.freeze(Array.from({ length: c }, (_, i) => String(i)));
      this.#named = false;
    }
    this.#settings = settingsOf(o, 'options', DEFAULTS);
    this.#classTotals = new Float64Array(this.classes);
    this.#index = new BinIndex({ layout: this.layout });
    this.#grow(16);
  }

  /** Labelled faces counted. */
  get size(): number {
    let s = 0;
    for (let k = 0; k < this.classes; k++) s += this.#classTotals[k];
    return s;
  }

  /** Occupied bins. */
  get bins(): number {
    return this.#bins;
  }

  /** The prediction defaults (from the constructor or the file). */
  get options(): Required<LutPredictOptions> {
    return { ...this.#settings };
  }

  /** Faces counted per class (a copy). */
  get classCounts(): Float64Array {
    return Float64Array.from(this.#classTotals);
  }

  /** The class frequencies of everything counted: the answer when nothing is found (uniform when empty). */
  get prior(): Float64Array {
    const total = this.size;
    return Float64Array.from(this.#classTotals, (v) => (total > 0 ? v / total : 1 / this.classes));
  }

  /** The index of a class name (or undefined). */
  classIndex(name: string): number | undefined {
    const i = this.classNames.indexOf(name);
    return i < 0 ? undefined : i;
  }

  /** Every occupied bin (ascending code, as int32) with its class counts (bins x classes). */
  entries(): { codes: Int32Array; counts: Float64Array } {
    const order = this.#sortedSlots();
    const codes = new Int32Array(order.length);
    const counts = new Float64Array(order.length * this.classes);
    order.forEach((slot, i) => {
      codes[i] = this.#codes[slot] | 0;
      counts.set(this.#counts.subarray(slot * this.classes, (slot + 1) * this.classes), i * this.classes);
    });
    return { codes, counts };
  }

  /** The class counts of one bin (zeros when it is not occupied). */
  binCounts(code: number): Float64Array {
    if (typeof code !== 'number' || !Number.isInteger(code) || code < -(2 ** 31) || code >= 2 ** 32) fail('E_ARG', 'an integer code (int32 or uint32)', 'code', code);
    const slot = this.#slotOf.get(code >>> 0);
    const out = new Float64Array(this.classes);
    if (slot !== undefined) out.set(this.#counts.subarray(slot * this.classes, (slot + 1) * this.classes));
    return out;
  }

  /** Forgets everything, then counts these faces (codes[i] with class labels[i]). */
  fit(codes: Int32Array | Uint32Array, labels: Int32Array | ArrayLike<number>): this {
    const c = codesUint32(codes, this.layout, 'codes');
    const l = checkLabels(labels, this.classes, c.length, 'labels');
    this.#reset();
    this.#count(c, l);
    return this;
  }

  /** Adds these faces to the counts (fit on the union of everything given equals the same state). */
  update(codes: Int32Array | Uint32Array, labels: Int32Array | ArrayLike<number>): this {
    const c = codesUint32(codes, this.layout, 'codes');
    const l = checkLabels(labels, this.classes, c.length, 'labels');
    this.#count(c, l);
    return this;
  }

  /** Predicted class per code (ties to the lower class index; the prior's argmax for a fallback). */
  predict(codes: Int32Array | Uint32Array, options?: LutPredictOptions): Int32Array {
    return this.predictDetailed(codes, options).labels;
  }

  /** codes.length x classes probabilities, row-major. */
  predictProba(codes: Int32Array | Uint32Array, options?: LutPredictOptions): Float64Array {
    return this.predictDetailed(codes, options).proba;
  }

  /**
   * Everything a prediction found, per query: the label, the probabilities, the faces and bins
   * gathered, the farthest distance, and whether it fell back to the prior.
   */
  predictDetailed(codes: Int32Array | Uint32Array, options?: LutPredictOptions): LutPrediction {
    const q = codesUint32(codes, this.layout, 'codes');
    const o = plainObject(options, 'options');
    knownKeys(o, PREDICT_KEYS, 'options');
    const s = settingsOf(o, 'options', this.#settings);
    if (this.#bins === 0)
      throw new DclError('E_ARG', 'Expected a classifier that has counted faces (call fit or update first) for predict but received an empty one');
    const C = this.classes;
    const n = q.length;
    const out: LutPrediction = {
      count: n,
      classes: C,
      labels: new Int32Array(n),
      proba: new Float64Array(n * C),
      samples: new Float64Array(n),
      bins: new Uint32Array(n),
      distance: new Float64Array(n),
      fallback: new Uint8Array(n),
    };
    if (n === 0) return out;
    const prior = this.prior;
    const priorLabel = argmax(prior, 0, C);
    // A first guess at the bins needed: minSamples over the mean faces per bin, doubled.
    const perBin = this.size / this.#bins;
    const cap = Math.min(s.maxBins, this.#bins);
    const k0 = Math.max(1, Math.min(cap, 2 * Math.ceil(s.minSamples / perBin)));
    const batch = this.#index.searchBatchSync(q, { k: k0, maxDistance: s.maxDistance });
    const acc = new Float64Array(C);
    for (let i = 0; i < n; i++) {
      acc.fill(0);
      let weightSum = 0;
      let samples = 0;
      let bins = 0;
      let farthest = -1;
      let nearest = 0;
      let ids: Float64Array = batch.ids.subarray(batch.offsets[i], batch.offsets[i + 1]);
      let dist: Uint32Array = batch.distances.subarray(batch.offsets[i], batch.offsets[i + 1]);
      let k = k0;
      let j = 0;
      for (;;) {
        for (; j < ids.length && samples < s.minSamples && bins < cap; j++) {
          const slot = ids[j];
          const d = dist[j];
          if (bins === 0) nearest = d;
          const w = weightOf(s, d, nearest);
          const base = slot * C;
          for (let c = 0; c < C; c++) acc[c] += w * this.#counts[base + c];
          weightSum += w * this.#totals[slot];
          samples += this.#totals[slot];
          bins++;
          farthest = d;
        }
        // Done: enough faces, the bin limit, or every bin within maxDistance seen.
        if (samples >= s.minSamples || bins >= cap || ids.length < k) break;
        k = Math.min(cap, k * 4);
        const r = this.#index.search(q[i], { k, maxDistance: s.maxDistance });
        ids = r.ids;
        dist = r.distances;
      }
      const row = i * C;
      if (bins === 0) {
        out.proba.set(prior, row);
        out.labels[i] = priorLabel;
        out.distance[i] = -1;
        out.fallback[i] = 1;
        continue;
      }
      for (let c = 0; c < C; c++) out.proba[row + c] = acc[c] / weightSum;
      out.labels[i] = argmax(out.proba, row, C);
      out.samples[i] = samples;
      out.bins[i] = bins;
      out.distance[i] = farthest;
    }
    return out;
  }

  /** Writes the table atomically (see the file comment for the format). */
  async save(path: string): Promise<void> {
    this.saveSync(path);
  }

  saveSync(path: string): void {
    if (typeof path !== 'string' || path.length === 0) fail('E_ARG', 'a file path', 'path', path);
    const { codes, counts } = this.entries();
    const s = this.#settings;
    let json = JSON.stringify({
      classNames: this.#named ? this.classNames : null,
      minSamples: s.minSamples,
      weighting: s.weighting,
      tau: s.tau,
      maxDistance: finiteOrNull(s.maxDistance),
      maxBins: finiteOrNull(s.maxBins),
    });
    let settings = Buffer.from(json, 'utf8');
    const padded = Math.ceil(settings.length / 8) * 8;
    if (padded !== settings.length) {
      json += ' '.repeat(padded - settings.length);
      settings = Buffer.from(json, 'utf8');
    }
    const header = new Uint8Array(HEADER_BYTES);
    const view = new DataView(header.buffer);
    for (let i = 0; i < 8; i++) header[i] = MAGIC.charCodeAt(i);
    view.setUint32(8, LUT_FORMAT_VERSION, true);
    view.setUint32(12, this.layout.n, true);
    view.setUint32(16, this.layout.q, true);
    view.setUint32(20, this.classes, true);
    view.setUint32(24, codes.length % 2 ** 32, true);
    view.setUint32(28, Math.floor(codes.length / 2 ** 32), true);
    view.setUint32(32, settings.length, true);
    const chunks = [header, settings, new Uint8Array(codes.buffer), new Uint8Array(counts.buffer)];
    writeFileAtomic(path, [...chunks, Buffer.from(sha256Hex(chunks), 'hex')]);
  }

  /** Reads a file written by save: E_IO when it cannot be read, E_FORMAT when it is not a valid table. */
  static async load(path: string): Promise<LutClassifier> {
    return LutClassifier.loadSync(path);
  }

  static loadSync(path: string): LutClassifier {
    const bytes = readFileChecked(path);
    const bad = (why: string) => new DclError('E_FORMAT', `${path} is not a valid dcl-native look-up table: ${why}`);
    if (bytes.length < HEADER_BYTES + CHECKSUM_BYTES) throw bad(`the file has ${bytes.length} bytes, fewer than a header`);
    for (let i = 0; i < 8; i++) if (bytes[i] !== MAGIC.charCodeAt(i)) throw bad('wrong magic bytes (another kind of file)');
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const version = view.getUint32(8, true);
    if (version !== LUT_FORMAT_VERSION) throw bad(`format version ${version}, this library reads version ${LUT_FORMAT_VERSION}`);
    const n = view.getUint32(12, true);
    const q = view.getUint32(16, true);
    if (!(n >= 1 && q >= 1 && q <= 32 && n * q <= 32)) throw bad(`layout ${n}x${q} is not a valid layout`);
    const classes = view.getUint32(20, true);
    if (classes < 2 || classes > MAX_CLASSES) throw bad(`${classes} classes (expected 2 to ${MAX_CLASSES})`);
    const bins = view.getUint32(24, true) + view.getUint32(28, true) * 2 ** 32;
    const settingsBytes = view.getUint32(32, true);
    const expected = HEADER_BYTES + settingsBytes + bins * 4 + bins * classes * 8 + CHECKSUM_BYTES;
    if (bytes.length !== expected) throw bad(`${bytes.length} bytes where the header promises ${expected} (truncated or padded)`);
    const body = bytes.subarray(0, bytes.length - CHECKSUM_BYTES);
    if (sha256Hex([body]) !== bytes.subarray(bytes.length - CHECKSUM_BYTES).toString('hex')) throw bad('checksum mismatch (the file is corrupt)');
    let raw: Record<string, unknown>;
    try {
      raw = JSON.parse(bytes.subarray(HEADER_BYTES, HEADER_BYTES + settingsBytes).toString('utf8'));
    } catch {
      throw bad('the settings are not JSON');
    }
    if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) throw bad('the settings are not an object');
    const names = raw.classNames;
    if (names !== null && !(Array.isArray(names) && names.length === classes)) throw bad(`the class names do not list ${classes} classes`);
    let table: LutClassifier;
    try {
      table = new LutClassifier({
        layout: { n, q },
        classes: names === null ? classes : (names as string[]),
        minSamples: raw.minSamples as number,
        weighting: raw.weighting as LutWeighting,
        tau: raw.tau as number,
        maxDistance: raw.maxDistance === null ? Infinity : (raw.maxDistance as number),
        maxBins: raw.maxBins === null ? Infinity : (raw.maxBins as number),
      });
    } catch (error) {
      throw bad(`invalid settings: ${(error as Error).message}`);
    }
    const at = HEADER_BYTES + settingsBytes;
    const codes = new Uint32Array(bins);
    new Uint8Array(codes.buffer).set(bytes.subarray(at, at + 4 * bins));
    const counts = new Float64Array(bins * classes);
    new Uint8Array(counts.buffer).set(bytes.subarray(at + 4 * bins, at + 4 * bins + 8 * bins * classes));
    const unused = unusedBits(table.layout);
    for (let b = 0; b < bins; b++) {
      if ((codes[b] & unused) !== 0) throw bad(`bin code 0x${codes[b].toString(16)} does not fit layout ${n}x${q}`);
      if (b > 0 && codes[b] <= codes[b - 1]) throw bad(`bin codes are not strictly ascending at bin ${b}`);
      let total = 0;
      for (let c = 0; c < classes; c++) {
        const v = counts[b * classes + c];
        if (!Number.isSafeInteger(v) || v < 0) throw bad(`count ${v} of bin ${b}, class ${c} is not a non-negative integer`);
        total += v;
      }
      if (total === 0) throw bad(`bin ${b} (code 0x${codes[b].toString(16)}) has no faces`);
    }
    table.#load(codes, counts);
    return table;
  }

  // ---- internals ----------------------------------------------------------------------------

  #reset(): void {
    this.#bins = 0;
    this.#slotOf = new Map();
    this.#classTotals.fill(0);
    this.#counts.fill(0);
    this.#totals.fill(0);
    this.#index = new BinIndex({ layout: this.layout });
  }

  #grow(bins: number): void {
    if (bins <= this.#codes.length && this.#counts.length >= bins * this.classes) return;
    const cap = Math.max(bins, 2 * this.#codes.length);
    const codes = new Uint32Array(cap);
    codes.set(this.#codes.subarray(0, this.#bins));
    const counts = new Float64Array(cap * this.classes);
    counts.set(this.#counts.subarray(0, this.#bins * this.classes));
    const totals = new Float64Array(cap);
    totals.set(this.#totals.subarray(0, this.#bins));
    this.#codes = codes;
    this.#counts = counts;
    this.#totals = totals;
  }

  #count(codes: Uint32Array, labels: Int32Array): void {
    const C = this.classes;
    const newCodes: number[] = [];
    const newSlots: number[] = [];
    for (let i = 0; i < codes.length; i++) {
      const code = codes[i];
      let slot = this.#slotOf.get(code);
      if (slot === undefined) {
        slot = this.#bins++;
        this.#grow(this.#bins);
        this.#slotOf.set(code, slot);
        this.#codes[slot] = code;
        newCodes.push(code);
        newSlots.push(slot);
      }
      this.#counts[slot * C + labels[i]] += 1;
      this.#totals[slot] += 1;
      this.#classTotals[labels[i]] += 1;
    }
    if (newCodes.length) this.#index.add(Uint32Array.from(newCodes), newSlots);
  }

  #load(codes: Uint32Array, counts: Float64Array): void {
    const C = this.classes;
    this.#reset();
    this.#grow(codes.length);
    this.#bins = codes.length;
    this.#codes.set(codes);
    this.#counts.set(counts);
    const slots = new Array<number>(codes.length);
    for (let b = 0; b < codes.length; b++) {
      this.#slotOf.set(codes[b], b);
      slots[b] = b;
      for (let c = 0; c < C; c++) {
        this.#totals[b] += counts[b * C + c];
        this.#classTotals[c] += counts[b * C + c];
      }
    }
    if (codes.length) this.#index.add(codes, slots);
  }

  #sortedSlots(): number[] {
    const slots = Array.from({ length: this.#bins }, (_, i) => i);
    return slots.sort((a, b) => this.#codes[a] - this.#codes[b]);
  }
}

/** The index of the largest of values[start, start + n); ties to the lower index. */
function argmax(values: ArrayLike<number>, start: number, n: number): number {
  let best = 0;
  for (let c = 1; c < n; c++) if (values[start + c] > values[start + best]) best = c;
  return best;
}
