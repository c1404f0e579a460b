// Gender from face codes, on LFW: how much of an attribute the 32-bit codes carry, read off by a
// look-up table over the bins (LutClassifier) and, as a baseline, by logistic regression on the
// codes' unpacked dimensions.
//
// Protocols (people are never shared between the table's faces and the test faces):
// - 'view1': the code model was trained on peopleDevTrain; the table counts the peopleDevTrain
//   faces with their gender labels and is tested on every labelled peopleDevTest face (people
//   neither the code model nor the table has seen). Also: accuracy against training-set size
//   (people sampled with several seeds) and against minSamples.
// - '10fold': View 2, unrestricted: for fold k, a code model trained on the other nine people
//   sets of people.txt (options.foldModels gives it), the table counts those sets' faces and is
//   tested on set k's.
// Labels come from the gender lists (readLfwGender): images in both lists or in neither are left
// out, and counted in the report. Classes: 0 'male', 1 'female' (a tie goes to 'male').
import fs from 'node:fs';
import path from 'node:path';
import { unpack } from './codes.js';
import type { CodeLayout } from './codes.js';
import { DclError } from './errors.js';
import { lineChartSvg, mcNemarPValue, pairedComparison, pValueText } from './eval.js';
import type { PairedComparison } from './eval.js';
import { writeFileAtomic } from './files.js';
import { LFW_PREPROCESSING, loadDataset, resolvePreprocessing } from './images.js';
import type { ImagePreprocessing, LoadedDataset, PreprocessingOptions } from './images.js';
import { findLfw, lfwImageFile, readLfwDevPeople, readLfwGender, readLfwPeople } from './lfw.js';
import type { LfwLocation, LfwPerson } from './lfw.js';
import { fitLogisticRegression, logisticPredict } from './logistic.js';
import type { LogisticOptions } from './logistic.js';
import { LutClassifier } from './lut-classifier.js';
import type { LutPredictOptions, LutWeighting } from './lut-classifier.js';
import { loadModel, Model } from './model.js';
import { Rng } from './random.js';
import { encode } from './train.js';
import { fail, knownKeys, plainObject } from './validate.js';

export const GENDER_CLASSES: readonly string[] = Object.freeze(['male', 'female']);

export type ModelSource = string | Model;

export interface GenderExperimentOptions {
  /** LFW root (or findLfw's result). Needs the gender lists and, for 'view1', peopleDevTrain / peopleDevTest. */
  lfw: string | LfwLocation;
  /** The image folder under the root, when not found automatically. */
  images?: string;
  /** Default 'view1'. */
  protocol?: 'view1' | '10fold';
  /** 'view1': the code model (trained on peopleDevTrain), a file or a Model. */
  model?: ModelSource;
  /**
   * '10fold': the code model of fold k (trained without people set k): a path template in which
   * '{fold}' is replaced by k (e.g. 'models/8x4-rounding-fold{fold}.safetensors'), or a function.
   */
  foldModels?: string | ((fold: number) => ModelSource | Promise<ModelSource>);
  /** '10fold': the folds to run (default all). */
  folds?: number[];
  /** 'view1': fractions of the training faces for the training-size curve (default 0.1, 0.25, 0.5, 1). */
  fractions?: number[];
  /** 'view1': seeds of the people sampling for that curve (default 1-5). */
  seeds?: number[];
  /** 'view1': minSamples values to sweep (default 1, 2, 4, 8, 16, 32). */
  minSamplesSweep?: number[];
  /**
   * The table's prediction settings (see LutClassifier; no weighting by default). minSamples
   * 'auto' (the default) chooses it from minSamplesSweep by people-disjoint cross-validation on
   * the table's own training faces (chooseMinSamples), never on the test faces.
   */
  minSamples?: number | 'auto';
  weighting?: LutWeighting;
  tau?: number;
  maxDistance?: number;
  /** Logistic-regression settings, or false to skip the baseline. */
  logistic?: LogisticOptions | false;
  /** Image pipeline (default LFW_PREPROCESSING at the network size). */
  preprocessing?: PreprocessingOptions;
  /** Data-set cache, as loadDataset (default true). */
  cache?: boolean | string;
  signal?: AbortSignal;
  onEvent?: (event: GenderEvent) => void;
}

export type GenderEvent =
  | { kind: 'load'; what: string; done: number; total: number }
  | { kind: 'note'; message: string };

/** What happened to one side's images. */
export interface GenderSetSummary {
  people: number;
  /** Images the people lists name. */
  images: number;
  /** With exactly one gender label, and loaded. */
  used: number;
  male: number;
  female: number;
  /** Left out: in both gender lists / in neither / could not be loaded. */
  unlabelledBoth: number;
  unlabelledNeither: number;
  skipped: number;
}

export interface ClassifierScore {
  accuracy: number;
  /** Mean of the per-class recalls. */
  balancedAccuracy: number;
  /** Recall per class (GENDER_CLASSES order). */
  recall: number[];
}

export interface LutScore extends ClassifierScore {
  /** Test faces answered by the prior (no bin within maxDistance). */
  fallback: number;
  /** Mean labelled faces and occupied bins gathered per test face. */
  meanSamples: number;
  meanBins: number;
}

export interface GenderResult {
  /** The table's minSamples for this result (chosen when options.minSamples is 'auto'). */
  minSamples: number;
  train: GenderSetSummary;
  test: GenderSetSummary;
  /** Occupied bins of the table. */
  bins: number;
  lut: LutScore;
  /** Always answering the training set's majority class, on the same test faces. */
  majority: { label: string; accuracy: number };
  /** Test faces per class. */
  testShare: number[];
  logistic: (ClassifierScore & { iterations: number; converged: boolean }) | null;
  /** The table (a) against logistic regression (b) face by face on the same test faces (pairedComparison); null without the regression. */
  tableVersusLogistic: PairedComparison | null;
}

export interface TrainSizePoint {
  fraction: number;
  /** Mean training faces and people used over the seeds. */
  faces: number;
  people: number;
  lut: { mean: number; std: number; runs: number[] };
  logistic: { mean: number; std: number; runs: number[] } | null;
}

export interface MinSamplesPoint {
  minSamples: number;
  accuracy: number;
  balancedAccuracy: number;
  meanBins: number;
  meanSamples: number;
}

export interface GenderReport {
  protocol: 'view1' | '10fold';
  lfw: string;
  layout: string;
  classes: readonly string[];
  settings: { minSamples: number | 'auto'; weighting: LutWeighting; tau: number; maxDistance: number | null; logistic: LogisticOptions | null };
  /** 'view1': the one result; '10fold': one per fold run. */
  results: (GenderResult & { fold: number | null; model: string })[];
  /** '10fold': mean and sample std over folds of the accuracies. */
  summary: {
    lut: { mean: number; std: number };
    logistic: { mean: number; std: number } | null;
    majority: { mean: number; std: number };
    /** Over all results' test faces: the table alone right, the regression alone right, and the exact McNemar p-value. */
    tableVersusLogistic: { onlyTable: number; onlyLogistic: number; pValue: number } | null;
  };
  /** 'view1' only (empty for '10fold'). */
  trainSize: TrainSizePoint[];
  minSamples: MinSamplesPoint[];
  seconds: number;
}

const KEYS = [
  'lfw',
  'images',
  'protocol',
  'model',
  'foldModels',
  'folds',
  'fractions',
  'seeds',
  'minSamplesSweep',
  'minSamples',
  'weighting',
  'tau',
  'maxDistance',
  'logistic',
  'preprocessing',
  'cache',
  'signal',
  'onEvent',
];

function numberList(value: unknown, name: string, fallback: number[], ok: (v: number) => boolean, rule: string): number[] {
  if (value === undefined) return fallback;
  if (!Array.isArray(value) || value.length === 0 || !value.every((v) => typeof v === 'number' && ok(v))) fail('E_ARG', `a non-empty array of ${rule}`, name, value);
  return value.slice();
}

function mean(values: readonly number[]): number {
  return values.reduce((a, v) => a + v, 0) / values.length;
}

function std(values: readonly number[]): number {
  if (values.length < 2) return 0;
  const m = mean(values);
  return Math.sqrt(values.reduce((a, v) => a + (v - m) ** 2, 0) / (values.length - 1));
}

async function resolveModel(source: ModelSource, name: string): Promise<{ model: Model; label: string }> {
  if (source instanceof Model) return { model: source, label: '(a Model)' };
  if (typeof source !== 'string' || source.length === 0) fail('E_ARG', 'a model file or a Model', name, source);
  return { model: await loadModel(source), label: source };
}

/** One side's faces: per loaded, labelled image its gender and person. */
interface Faces {
  summary: GenderSetSummary;
  codes: Int32Array;
  labels: Int32Array;
  /** Person index (into the side's people) per face. */
  person: Int32Array;
  people: number;
}

interface Listed {
  files: string[];
  labels: Int32Array; // gender
  person: Int32Array;
  summary: GenderSetSummary;
}

function listFaces(where: LfwLocation, people: readonly LfwPerson[], gender: ReturnType<typeof readLfwGender>): Listed {
  const both = new Set(gender.both);
  const files: string[] = [];
  const labels: number[] = [];
  const person: number[] = [];
  const summary: GenderSetSummary = { people: people.length, images: 0, used: 0, male: 0, female: 0, unlabelledBoth: 0, unlabelledNeither: 0, skipped: 0 };
  people.forEach((p, pi) => {
    for (let k = 1; k <= p.images; k++) {
      summary.images++;
      const f = lfwImageFile(p.name, k);
      const g = gender.labels.get(f);
      if (g === undefined) {
        if (both.has(f)) summary.unlabelledBoth++;
        else summary.unlabelledNeither++;
        continue;
      }
      files.push(path.join(where.images, p.name, f));
      labels.push(g === 'male' ? 0 : 1);
      person.push(pi);
    }
  });
  return { files, labels: Int32Array.from(labels), person: Int32Array.from(person), summary };
}

/**
 * The gender-labelled images of these people, for a look-up table or any classifier: files with
 * labels (0 'male', 1 'female'; names = GENDER_CLASSES) and what was left out (images in both
 * lists or in neither).
 */
export function lfwGenderList(
  lfw: string | LfwLocation,
  people: readonly LfwPerson[] | 'view1-train' | 'view1-test' | 'all',
): { files: string[]; labels: Int32Array; names: string[]; summary: GenderSetSummary } {
  const where = typeof lfw === 'string' ? findLfw(lfw) : lfw;
  if (where === null || typeof where !== 'object' || typeof where.images !== 'string') fail('E_ARG', 'an LFW folder path or the result of findLfw()', 'lfw', lfw);
  if (where.maleNames === null || where.femaleNames === null)
    throw new DclError('E_IO', `Could not find the gender lists (gender/male_names.txt, gender/female_names.txt) in the LFW folder ${where.root}`);
  let list: readonly LfwPerson[];
  if (people === 'view1-train' || people === 'view1-test') {
    const file = people === 'view1-train' ? where.peopleDevTrain : where.peopleDevTest;
    if (file === null) throw new DclError('E_IO', `Could not find ${people === 'view1-train' ? 'peopleDevTrain.txt' : 'peopleDevTest.txt'} (View 1) in the LFW folder ${where.root}`);
    list = readLfwDevPeople(file).people;
  } else if (people === 'all') list = readLfwPeople(where.people).sets.flat();
  else if (Array.isArray(people)) list = people;
  else fail('E_ARG', "'view1-train', 'view1-test', 'all' or an array of people", 'people', people);
  const listed = listFaces(where, list, readLfwGender(where.maleNames, where.femaleNames));
  return { files: listed.files, labels: listed.labels, names: [...GENDER_CLASSES], summary: { ...listed.summary, used: listed.files.length, male: count(listed.labels, 0), female: count(listed.labels, 1) } };
}

/**
 * Gender per image file for the attribute term (TrainOptions data.attributes): 0 male, 1 female
 * (GENDER_CLASSES), -1 for a file in both lists or in neither. Files are matched by name
 * (Person_Name_0001.jpg), so any LFW image folder works.
 */
export function lfwGenderAttributes(lfw: string | LfwLocation, files: readonly string[]): Int32Array {
  const where = typeof lfw === 'string' ? findLfw(lfw) : lfw;
  if (where.maleNames === null || where.femaleNames === null)
    throw new DclError('E_IO', `Could not find the gender lists (gender/male_names.txt, gender/female_names.txt) in the LFW folder ${where.root}`);
  const gender = readLfwGender(where.maleNames, where.femaleNames);
  return Int32Array.from(files, (f) => {
    const g = gender.labels.get(path.basename(f));
    return g === undefined ? -1 : GENDER_CLASSES.indexOf(g);
  });
}

function count(labels: Int32Array, value: number): number {
  let n = 0;
  for (const l of labels) if (l === value) n++;
  return n;
}

function scoreOf(predicted: Int32Array, truth: Int32Array, classes: number): ClassifierScore {
  const right = new Float64Array(classes);
  const total = new Float64Array(classes);
  let correct = 0;
  for (let i = 0; i < truth.length; i++) {
    total[truth[i]]++;
    if (predicted[i] === truth[i]) {
      correct++;
      right[truth[i]]++;
    }
  }
  const recall = Array.from(total, (t, c) => (t > 0 ? right[c] / t : NaN));
  const present = recall.filter((r) => !Number.isNaN(r));
  return { accuracy: truth.length ? correct / truth.length : NaN, balancedAccuracy: present.length ? mean(present) : NaN, recall };
}

function select<T extends Int32Array>(a: T, keep: readonly number[]): T {
  const out = new (a.constructor as new (n: number) => T)(keep.length);
  keep.forEach((i, j) => (out[j] = a[i]));
  return out;
}

/** Runs the experiment; the result is plain data (see writeGenderReport for files). */
export async function genderExperiment(options: GenderExperimentOptions): Promise<GenderReport> {
  const o = plainObject(options, 'options');
  knownKeys(o, KEYS, 'options');
  const t0 = performance.now();
  const protocol = (o.protocol ?? 'view1') as 'view1' | '10fold';
  if (protocol !== 'view1' && protocol !== '10fold') fail('E_ARG', "'view1' or '10fold'", 'options.protocol', o.protocol);
  let where: LfwLocation;
  if (typeof o.lfw === 'string') where = findLfw(o.lfw, o.images === undefined ? undefined : { images: o.images as string });
  else if (o.lfw !== null && typeof o.lfw === 'object' && typeof (o.lfw as LfwLocation).images === 'string') where = o.lfw as LfwLocation;
  else fail('E_ARG', 'an LFW folder path or the result of findLfw()', 'options.lfw', o.lfw);
  if (where.maleNames === null || where.femaleNames === null)
    throw new DclError('E_IO', `Could not find the gender lists (gender/male_names.txt, gender/female_names.txt) in the LFW folder ${where.root}`);
  const fractions = numberList(o.fractions, 'options.fractions', [0.1, 0.25, 0.5, 1], (v) => v > 0 && v <= 1, 'fractions in (0, 1]');
  const seeds = numberList(o.seeds, 'options.seeds', [1, 2, 3, 4, 5], (v) => Number.isSafeInteger(v) && v >= 0, 'non-negative integer seeds');
  const sweep = numberList(o.minSamplesSweep, 'options.minSamplesSweep', [1, 2, 4, 8, 16, 32], (v) => Number.isSafeInteger(v) && v >= 1, 'positive integers');
  // LutClassifier validates the prediction settings.
  const autoMinSamples = o.minSamples === undefined || o.minSamples === 'auto';
  const lutSettings = { minSamples: autoMinSamples ? undefined : o.minSamples, weighting: o.weighting, tau: o.tau, maxDistance: o.maxDistance } as Record<string, unknown>;
  for (const k of Object.keys(lutSettings)) if (lutSettings[k] === undefined) delete lutSettings[k];
  const probe = new LutClassifier({ layout: '32x1', classes: [...GENDER_CLASSES], ...lutSettings });
  const lr = o.logistic === false ? null : (plainObject(o.logistic, 'options.logistic') as LogisticOptions);
  const pre: ImagePreprocessing = resolvePreprocessing({ ...LFW_PREPROCESSING, ...plainObject(o.preprocessing, 'options.preprocessing') }, 'options.preprocessing');
  const cache = (o.cache ?? true) as boolean | string;
  const signal = o.signal as AbortSignal | undefined;
  const emit = (e: GenderEvent) => (o.onEvent as GenderExperimentOptions['onEvent'])?.(e);
  const gender = readLfwGender(where.maleNames, where.femaleNames);

  const load = async (listed: Listed, what: string): Promise<LoadedDataset> => {
    const data = await loadDataset({ files: listed.files, labels: Int32Array.from(listed.files, (_, i) => i) }, pre, {
      size: 'network',
      cache,
      signal,
      onProgress: (p) => emit({ kind: 'load', what, done: p.done, total: p.total }),
      onWarning: (message) => emit({ kind: 'note', message }),
    });
    if (data.skipped.length) emit({ kind: 'note', message: `${what}: ${data.skipped.length} images could not be loaded` });
    return data;
  };
  /** The loaded faces of `listed` encoded by `model`, with their gender and person. */
  const facesOf = async (listed: Listed, data: LoadedDataset, model: Model, people: number): Promise<Faces> => {
    // loadDataset's labels are the positions in listed.files (see load).
    const kept = Array.from(data.labels);
    const codes = await encode(model, { images: data.images, shape: data.shape }, { signal });
    const labels = select(listed.labels, kept);
    const person = select(listed.person, kept);
    let male = 0;
    for (const l of labels) if (l === 0) male++;
    const summary = { ...listed.summary, used: kept.length, male, female: kept.length - male, skipped: listed.files.length - kept.length };
    return { summary, codes, labels, person, people };
  };
  const checkModel = (model: Model) => {
    const s = model.architecture.inputShape;
    if (s[0] !== pre.inputShape[0] || s[1] !== pre.inputShape[1] || s[2] !== pre.inputShape[2])
      throw new DclError('E_ARG', `Expected a model whose input shape is [${pre.inputShape.join(', ')}] (the preprocessing) for the code model but received one of [${s.join(', ')}]`);
  };

  const settings = probe.options;
  // The table's settings for one training side: minSamples chosen on it when 'auto'.
  const settingsFor = (train: Faces, layout: CodeLayout) => (autoMinSamples ? { ...settings, minSamples: chooseMinSamples(train, layout, settings, sweep) } : settings);
  const results: GenderReport['results'] = [];
  let trainSize: TrainSizePoint[] = [];
  let minSamples: MinSamplesPoint[] = [];
  let layout = '';

  if (protocol === 'view1') {
    if (o.model === undefined) fail('E_ARG', 'a model file or a Model (trained on peopleDevTrain)', 'options.model', o.model);
    if (where.peopleDevTrain === null || where.peopleDevTest === null)
      throw new DclError('E_IO', `Could not find peopleDevTrain.txt and peopleDevTest.txt (View 1) in the LFW folder ${where.root}`);
    const trainPeople = readLfwDevPeople(where.peopleDevTrain).people;
    const testPeople = readLfwDevPeople(where.peopleDevTest).people;
    const trainNames = new Set(trainPeople.map((p) => p.name));
    const shared = testPeople.filter((p) => trainNames.has(p.name));
    if (shared.length)
      throw new DclError('E_FORMAT', `Expected peopleDevTest to share no person with peopleDevTrain but ${shared.length} are in both: ${shared.slice(0, 5).map((p) => p.name).join(', ')}`);
    const { model, label } = await resolveModel(o.model as ModelSource, 'options.model');
    checkModel(model);
    layout = model.layout.name;
    const trainList = listFaces(where, trainPeople, gender);
    const testList = listFaces(where, testPeople, gender);
    const train = await facesOf(trainList, await load(trainList, 'peopleDevTrain images'), model, trainPeople.length);
    const test = await facesOf(testList, await load(testList, 'peopleDevTest images'), model, testPeople.length);
    const result = evaluate(train, test, model, settingsFor(train, model.layout), lr);
    results.push({ ...result, fold: null, model: label });

    // Accuracy against minSamples, on the full table.
    const table = new LutClassifier({ layout: model.layout, classes: [...GENDER_CLASSES], ...settings }).fit(train.codes, train.labels);
    minSamples = sweep.map((m) => {
      const d = table.predictDetailed(test.codes, { minSamples: m });
      const s = scoreOf(d.labels, test.labels, GENDER_CLASSES.length);
      return { minSamples: m, accuracy: s.accuracy, balancedAccuracy: s.balancedAccuracy, meanBins: mean(Array.from(d.bins)), meanSamples: mean(Array.from(d.samples)) };
    });

    // Accuracy against training-set size: people sampled in a seeded order until the fraction of faces is reached.
    const facesPerPerson = new Float64Array(train.people);
    for (const p of train.person) facesPerPerson[p]++;
    const withFaces = Array.from({ length: train.people }, (_, i) => i).filter((i) => facesPerPerson[i] > 0);
    trainSize = fractions.map((fraction) => {
      const lutRuns: number[] = [];
      const lrRuns: number[] = [];
      const faces: number[] = [];
      const people: number[] = [];
      for (const seed of seeds) {
        const order = new Rng(seed).permutation(withFaces.length);
        const target = Math.ceil(fraction * train.codes.length);
        const chosen = new Uint8Array(train.people);
        let count = 0;
        let p = 0;
        for (; p < order.length && count < target; p++) {
          chosen[withFaces[order[p]]] = 1;
          count += facesPerPerson[withFaces[order[p]]];
        }
        const keep: number[] = [];
        for (let i = 0; i < train.codes.length; i++) if (chosen[train.person[i]]) keep.push(i);
        const sub: Faces = { ...train, codes: select(train.codes, keep), labels: select(train.labels, keep), person: select(train.person, keep) };
        const r = evaluate(sub, test, model, settingsFor(sub, model.layout), lr);
        lutRuns.push(r.lut.accuracy);
        if (r.logistic) lrRuns.push(r.logistic.accuracy);
        faces.push(keep.length);
        people.push(p);
      }
      return {
        fraction,
        faces: mean(faces),
        people: mean(people),
        lut: { mean: mean(lutRuns), std: std(lutRuns), runs: lutRuns },
        logistic: lr ? { mean: mean(lrRuns), std: std(lrRuns), runs: lrRuns } : null,
      };
    });
  } else {
    if (o.foldModels === undefined) fail('E_ARG', "a path template with '{fold}' or a function fold => model", 'options.foldModels', o.foldModels);
    const fm = o.foldModels;
    if (typeof fm === 'string' && !fm.includes('{fold}')) fail('E_ARG', "a path template with '{fold}'", 'options.foldModels', fm);
    if (typeof fm !== 'string' && typeof fm !== 'function') fail('E_ARG', "a path template with '{fold}' or a function fold => model", 'options.foldModels', fm);
    const sets = readLfwPeople(where.people).sets;
    const folds = numberList(o.folds, 'options.folds', sets.map((_, k) => k), (v) => Number.isInteger(v) && v >= 0 && v < sets.length, `fold numbers from 0 to ${sets.length - 1}`);
    const everyone = sets.flat();
    const setOf = new Int32Array(everyone.length);
    let at = 0;
    sets.forEach((s, k) => s.forEach(() => (setOf[at++] = k)));
    const all = listFaces(where, everyone, gender);
    const data = await load(all, 'LFW images (all people sets)');
    for (const fold of folds) {
      const source = typeof fm === 'string' ? fm.split('{fold}').join(String(fold)) : await (fm as (k: number) => ModelSource | Promise<ModelSource>)(fold);
      const { model, label } = await resolveModel(source, `the model of fold ${fold}`);
      checkModel(model);
      if (layout && layout !== model.layout.name) emit({ kind: 'note', message: `fold ${fold}: layout ${model.layout.name}, earlier folds ${layout}` });
      layout ||= model.layout.name;
      const faces = await facesOf(all, data, model, everyone.length);
      const part = (test: boolean): Faces => {
        const keep: number[] = [];
        for (let i = 0; i < faces.codes.length; i++) if ((setOf[faces.person[i]] === fold) === test) keep.push(i);
        const side = { codes: select(faces.codes, keep), labels: select(faces.labels, keep), person: select(faces.person, keep), people: faces.people };
        const ppl = sets.reduce((a, s, k) => a + ((k === fold) === test ? s.length : 0), 0);
        const listedImages = sets.reduce((a, s, k) => a + ((k === fold) === test ? s.reduce((b, p) => b + p.images, 0) : 0), 0);
        let both = 0;
        let neither = 0;
        const bothSet = new Set(gender.both);
        sets.forEach((s, k) => {
          if ((k === fold) !== test) return;
          for (const p of s)
            for (let i = 1; i <= p.images; i++) {
              const f = lfwImageFile(p.name, i);
              if (!gender.labels.has(f)) bothSet.has(f) ? both++ : neither++;
            }
        });
        let male = 0;
        for (const l of side.labels) if (l === 0) male++;
        const labelled = listedImages - both - neither;
        return { ...side, summary: { people: ppl, images: listedImages, used: keep.length, male, female: keep.length - male, unlabelledBoth: both, unlabelledNeither: neither, skipped: labelled - keep.length } };
      };
      const train = part(false);
      const result = evaluate(train, part(true), model, settingsFor(train, model.layout), lr);
      results.push({ ...result, fold, model: label });
    }
  }

  const lutAcc = results.map((r) => r.lut.accuracy);
  const lrAcc = results.filter((r) => r.logistic).map((r) => r.logistic!.accuracy);
  const majAcc = results.map((r) => r.majority.accuracy);
  // Folds test disjoint faces, so their discordant counts add up.
  const onlyTable = results.reduce((a, r) => a + (r.tableVersusLogistic?.onlyA ?? 0), 0);
  const onlyLogistic = results.reduce((a, r) => a + (r.tableVersusLogistic?.onlyB ?? 0), 0);
  return {
    protocol,
    lfw: where.root,
    layout,
    classes: GENDER_CLASSES,
    settings: { minSamples: autoMinSamples ? 'auto' : settings.minSamples, weighting: settings.weighting, tau: settings.tau, maxDistance: Number.isFinite(settings.maxDistance) ? settings.maxDistance : null, logistic: lr },
    results,
    summary: {
      lut: { mean: mean(lutAcc), std: std(lutAcc) },
      logistic: lr ? { mean: mean(lrAcc), std: std(lrAcc) } : null,
      majority: { mean: mean(majAcc), std: std(majAcc) },
      tableVersusLogistic: lr ? { onlyTable, onlyLogistic, pValue: mcNemarPValue(onlyTable, onlyLogistic) } : null,
    },
    trainSize,
    minSamples,
    seconds: (performance.now() - t0) / 1e3,
  };
}

/** People-disjoint groups chooseMinSamples validates on. */
const MIN_SAMPLES_GROUPS = 5;

/**
 * The minSamples from `sweep` whose table, counted on the training faces of all but one group of
 * people and asked about the faces of that group's people, is right most often over the
 * MIN_SAMPLES_GROUPS groups (person index modulo the group count); the smallest on a tie. Only
 * training faces are used, so the test faces stay unseen.
 */
export function chooseMinSamples(train: Pick<Faces, 'codes' | 'labels' | 'person'>, layout: CodeLayout, settings: Required<LutPredictOptions>, sweep: readonly number[]): number {
  const right = new Float64Array(sweep.length);
  for (let g = 0; g < MIN_SAMPLES_GROUPS; g++) {
    const fit: number[] = [];
    const held: number[] = [];
    for (let i = 0; i < train.codes.length; i++) (train.person[i] % MIN_SAMPLES_GROUPS === g ? held : fit).push(i);
    if (fit.length === 0 || held.length === 0) continue;
    const table = new LutClassifier({ layout, classes: [...GENDER_CLASSES], ...settings }).fit(select(train.codes, fit), select(train.labels, fit));
    const heldCodes = select(train.codes, held);
    const heldLabels = select(train.labels, held);
    sweep.forEach((m, k) => {
      const predicted = table.predict(heldCodes, { minSamples: m });
      for (let i = 0; i < held.length; i++) if (predicted[i] === heldLabels[i]) right[k]++;
    });
  }
  let best = 0;
  for (let k = 1; k < sweep.length; k++) if (right[k] > right[best] || (right[k] === right[best] && sweep[k] < sweep[best])) best = k;
  return sweep[best];
}

/** Table + baselines for one (train, test) split. */
function evaluate(
  train: Faces,
  test: Faces,
  model: Model,
  settings: Required<LutPredictOptions>,
  lr: LogisticOptions | null,
): GenderResult {
  const C = GENDER_CLASSES.length;
  if (train.codes.length === 0) throw new DclError('E_IO', 'None of the training faces could be loaded with a gender label');
  if (test.codes.length === 0) throw new DclError('E_IO', 'None of the test faces could be loaded with a gender label');
  const table = new LutClassifier({ layout: model.layout, classes: [...GENDER_CLASSES], ...settings }).fit(train.codes, train.labels);
  const d = table.predictDetailed(test.codes);
  const s = scoreOf(d.labels, test.labels, C);
  let fallback = 0;
  for (const f of d.fallback) fallback += f;
  const prior = table.prior;
  const majorityLabel = prior[1] > prior[0] ? 1 : 0;
  let majorityRight = 0;
  const testCounts = new Float64Array(C);
  for (const l of test.labels) {
    testCounts[l]++;
    if (l === majorityLabel) majorityRight++;
  }
  let logistic: GenderResult['logistic'] = null;
  let tableVersusLogistic: PairedComparison | null = null;
  if (lr) {
    const n = model.layout.n;
    const xTrain = unpack(train.codes, model.layout);
    const xTest = unpack(test.codes, model.layout);
    const m = fitLogisticRegression(xTrain, train.codes.length, n, train.labels, lr);
    const predicted = logisticPredict(m, xTest, test.codes.length);
    const ls = scoreOf(predicted, test.labels, C);
    logistic = { ...ls, iterations: m.iterations, converged: m.converged };
    const right = (labels: Int32Array) => Uint8Array.from(labels, (l, i) => (l === test.labels[i] ? 1 : 0));
    tableVersusLogistic = pairedComparison(right(d.labels), right(predicted));
  }
  return {
    minSamples: settings.minSamples,
    train: train.summary,
    test: test.summary,
    bins: table.bins,
    lut: { ...s, fallback, meanSamples: mean(Array.from(d.samples)), meanBins: mean(Array.from(d.bins)) },
    majority: { label: GENDER_CLASSES[majorityLabel], accuracy: majorityRight / test.labels.length },
    testShare: Array.from(testCounts, (c) => c / test.labels.length),
    logistic,
    tableVersusLogistic,
  };
}

// ---------------------------------------------------------------------------------------------
// Report

const pct = (v: number) => (Number.isFinite(v) ? (100 * v).toFixed(1) : '-');

/** The report as Markdown; `heading` names the code model in the title. */
export function genderMarkdown(report: GenderReport, options?: { heading?: string }): string {
  const r0 = report.results[0];
  const s = report.settings;
  const heading = options?.heading ? `, ${options.heading}` : '';
  const lines: string[] = [
    `# Gender from ${report.layout} face codes: look-up table over bins, LFW ${report.protocol === 'view1' ? 'View 1' : `View 2 (unrestricted), ${report.results.length} fold${report.results.length === 1 ? '' : 's'}`}${heading}`,
    '',
    report.protocol === 'view1'
      ? 'The table counts the peopleDevTrain faces (the code model\'s training people) with their gender labels and is tested on every labelled peopleDevTest face: people neither the code model nor the table has seen.'
      : 'Per fold k: the code model of fold k and the table both saw only the other nine people sets; the test faces are set k\'s.',
    `Table: minSamples ${s.minSamples === 'auto' ? `chosen by people-disjoint cross-validation on the training faces from ${report.minSamples.length ? report.minSamples.map((m) => m.minSamples).join(', ') : 'the sweep'} (${[...new Set(report.results.map((r) => r.minSamples))].join(', ')})` : s.minSamples}, weighting ${s.weighting}${s.weighting === 'exp' ? ` (tau ${s.tau})` : ''}, maxDistance ${s.maxDistance ?? 'none'}; ties go to male. ` +
      `Baseline: logistic regression (L2, Newton) on the ${report.layout} code's unpacked, standardised dimensions.`,
    '',
  ];
  const setLine = (name: string, g: GenderSetSummary) =>
    `| ${name} | ${g.people} | ${g.images} | ${g.used} | ${g.male} / ${g.female} | ${g.unlabelledBoth} / ${g.unlabelledNeither} | ${g.skipped} |`;
  if (report.protocol === 'view1') {
    const r = r0;
    lines.push(
      '| faces | people | images | used | male / female | left out: both lists / neither | not loaded |',
      '| --- | --- | --- | --- | --- | --- | --- |',
      setLine('training (peopleDevTrain)', r.train),
      setLine('test (peopleDevTest)', r.test),
      '',
      '| classifier | accuracy % | balanced accuracy % | male recall % | female recall % |',
      '| --- | --- | --- | --- | --- |',
      `| look-up table (${r.bins} occupied bins) | ${pct(r.lut.accuracy)} | ${pct(r.lut.balancedAccuracy)} | ${pct(r.lut.recall[0])} | ${pct(r.lut.recall[1])} |`,
      ...(r.logistic
        ? [`| logistic regression | ${pct(r.logistic.accuracy)} | ${pct(r.logistic.balancedAccuracy)} | ${pct(r.logistic.recall[0])} | ${pct(r.logistic.recall[1])} |`]
        : []),
      `| majority class (${r.majority.label}) | ${pct(r.majority.accuracy)} | 50.0 | ${r.majority.label === 'male' ? '100.0 | 0.0' : '0.0 | 100.0'} |`,
      '',
      `Test faces answered by the prior (no bin found): ${r.lut.fallback}; mean faces / bins gathered per query: ${r.lut.meanSamples.toFixed(1)} / ${r.lut.meanBins.toFixed(2)}.`,
      ...versusLine(report),
      '',
    );
    if (report.trainSize.length) {
      lines.push(
        `## Accuracy against training-set size (people sampled, ${report.trainSize[0].lut.runs.length} seeds; mean +- sample std)`,
        '',
        '| fraction of training faces | faces | people | look-up table % | logistic regression % |',
        '| --- | --- | --- | --- | --- |',
        ...report.trainSize.map(
          (p) =>
            `| ${pct(p.fraction)}% | ${Math.round(p.faces)} | ${Math.round(p.people)} | ${pct(p.lut.mean)} +- ${pct(p.lut.std)} | ${p.logistic ? `${pct(p.logistic.mean)} +- ${pct(p.logistic.std)}` : '-'} |`,
        ),
        '',
      );
    }
    if (report.minSamples.length) {
      lines.push(
        '## Accuracy against minSamples (full training set)',
        '',
        '| minSamples | accuracy % | balanced accuracy % | mean bins gathered | mean faces gathered |',
        '| --- | --- | --- | --- | --- |',
        ...report.minSamples.map((m) => `| ${m.minSamples} | ${pct(m.accuracy)} | ${pct(m.balancedAccuracy)} | ${m.meanBins.toFixed(2)} | ${m.meanSamples.toFixed(1)} |`),
        '',
      );
    }
  } else {
    lines.push(
      '| fold | training faces (male / female) | test faces (male / female) | bins | look-up table % | balanced % | logistic % | majority % |',
      '| --- | --- | --- | --- | --- | --- | --- | --- |',
      ...report.results.map(
        (r) =>
          `| ${r.fold} | ${r.train.used} (${r.train.male} / ${r.train.female}) | ${r.test.used} (${r.test.male} / ${r.test.female}) | ${r.bins} | ${pct(r.lut.accuracy)} | ${pct(r.lut.balancedAccuracy)} | ${r.logistic ? pct(r.logistic.accuracy) : '-'} | ${pct(r.majority.accuracy)} |`,
      ),
      '',
      `Mean +- sample std over folds: look-up table ${pct(report.summary.lut.mean)} +- ${pct(report.summary.lut.std)}` +
        (report.summary.logistic ? `, logistic regression ${pct(report.summary.logistic.mean)} +- ${pct(report.summary.logistic.std)}` : '') +
        `, majority ${pct(report.summary.majority.mean)} +- ${pct(report.summary.majority.std)}.`,
      ...versusLine(report),
      '',
    );
  }
  lines.push(`Gender labels: Afifi & Abdelhamed's LFW lists; images in both lists or in neither are left out. Time ${report.seconds.toFixed(0)} s.`, '');
  return lines.join('\n');
}

/** The table against the regression face by face, when the regression ran. */
function versusLine(report: GenderReport): string[] {
  const v = report.summary.tableVersusLogistic;
  if (!v) return [];
  return [
    `Look-up table against logistic regression on the same test faces: the table alone is right on ${v.onlyTable} faces, the regression alone on ${v.onlyLogistic} ` +
      `(exact McNemar test: p ${pValueText(v.pValue)}${v.pValue > 0.05 ? ', no difference the test faces can show' : ''}).`,
  ];
}

/** The chart: accuracy against training-set size ('view1') or per fold ('10fold'). */
export function genderSvg(report: GenderReport): string {
  if (report.protocol === 'view1' && report.trainSize.length) {
    const series = [{ name: 'look-up table', points: report.trainSize.map((p) => [p.faces, 100 * p.lut.mean] as [number, number]) }];
    if (report.trainSize.every((p) => p.logistic))
      series.push({ name: 'logistic regression', points: report.trainSize.map((p) => [p.faces, 100 * p.logistic!.mean] as [number, number]) });
    const xs = report.trainSize.map((p) => p.faces);
    const maj = 100 * report.results[0].majority.accuracy;
    series.push({ name: 'majority class', points: [[Math.min(...xs), maj], [Math.max(...xs), maj]] });
    return lineChartSvg({
      title: `Gender from ${report.layout} codes vs training faces (LFW View 1)`,
      xLabel: 'training faces counted (people sampled; mean over seeds)',
      yLabel: 'test accuracy %',
      series,
      xLog: xs.every((x) => x > 0),
    });
  }
  const folds = report.results.map((r, i) => r.fold ?? i);
  const series = [{ name: 'look-up table', points: report.results.map((r, i) => [folds[i], 100 * r.lut.accuracy] as [number, number]) }];
  if (report.results.every((r) => r.logistic)) series.push({ name: 'logistic regression', points: report.results.map((r, i) => [folds[i], 100 * r.logistic!.accuracy] as [number, number]) });
  series.push({ name: 'majority class', points: report.results.map((r, i) => [folds[i], 100 * r.majority.accuracy] as [number, number]) });
  return lineChartSvg({ title: `Gender from ${report.layout} codes per fold (LFW View 2)`, xLabel: 'fold', yLabel: 'test accuracy %', series });
}

/** Writes <name>.md, .json and .svg (name default gender-<protocol>) to `out`; returns the paths. */
export function writeGenderReport(report: GenderReport, out: string, name = `gender-${report.protocol}`): string[] {
  if (typeof out !== 'string' || out.length === 0) fail('E_ARG', 'a folder path', 'out', out);
  if (report === null || typeof report !== 'object' || !Array.isArray((report as GenderReport).results)) fail('E_ARG', 'a report from genderExperiment', 'report', report);
  try {
    fs.mkdirSync(out, { recursive: true });
  } catch (error) {
    throw new DclError('E_IO', `Could not create the folder ${out}: ${(error as Error).message}`, { cause: error });
  }
  if (typeof name !== 'string' || !/^[\w.-]+$/.test(name)) fail('E_ARG', 'a file name of letters, digits, dots, dashes and underscores', 'name', name);
  const base = path.join(out, name);
  const text = (t: string) => [Buffer.from(t, 'utf8')];
  writeFileAtomic(`${base}.md`, text(genderMarkdown(report)));
  writeFileAtomic(`${base}.json`, text(JSON.stringify(report, null, 2) + '\n'));
  writeFileAtomic(`${base}.svg`, text(genderSvg(report)));
  return [`${base}.md`, `${base}.json`, `${base}.svg`];
}

