// The paper's search experiment (section 3.2, Figure 5), kept honest: a model trained on LFW View 1
// (peopleDevTrain) encodes all 13,233 LFW faces; every image of a peopleDevTest person with more
// than two images is a query (people the model never saw) against all faces but itself; recall is
// the share of the query person's other images whose bins come up within the first b bins visited.
//
// "Bins visited" counts bins of the whole code space, occupied or not, in BinIndex's visiting
// order: ascending distance from the query (Hamming for Q = 1, L1 over dimensions for Q > 1), ties
// in ascending code (as uint32). So the figure does not depend on how a particular index finds its
// bins. The position of a bin in that order is counted exactly (binVisitRank), without
// enumerating: the number of codes nearer than it, plus the number at its distance with a smaller
// code, both from the per-dimension distance polynomials.
import fs from 'node:fs';
import path from 'node:path';
import { parseLayout } from './codes.js';
import type { CodeLayout, LayoutLike } from './codes.js';
import { DclError } from './errors.js';
import { lineChartSvg } from './eval.js';
import { writeFileAtomic } from './files.js';
import { loadDataset, resolvePreprocessing } from './images.js';
import type { ImagePreprocessing } from './images.js';
import { findLfw, lfwImagePath, readLfwDevPeople, readLfwNames } from './lfw.js';
import { loadModel, Model } from './model.js';
import { encode } from './train.js';
import { describe, knownKeys, plainObject } from './validate.js';

/** Visiting-order positions of bins around one query, for one layout. */
export class BinRanker {
  private readonly layout: CodeLayout;
  private readonly q: number[];
  /** below[i][x]: codes of dimensions 0..i-1 at distance x from the query's. */
  private readonly below: Float64Array[];
  /** nearer[d]: codes of the whole space at distance < d. */
  private readonly nearer: Float64Array;

  constructor(query: number, layout: LayoutLike) {
    this.layout = parseLayout(layout);
    const { n, q: bits } = this.layout;
    const levels = 2 ** bits;
    const maxD = n * (levels - 1);
    this.q = Array.from({ length: n }, (_, i) => Math.floor((query >>> 0) / 2 ** (i * bits)) % levels);
    this.below = [Float64Array.of(1)];
    for (let i = 0; i < n; i++) {
      const prev = this.below[i];
      const next = new Float64Array(Math.min(maxD, prev.length - 1 + levels - 1) + 1);
      for (let x = 0; x < prev.length; x++) {
        if (prev[x] === 0) continue;
        for (let v = 0; v < levels; v++) next[x + Math.abs(this.q[i] - v)] += prev[x];
      }
      this.below.push(next);
    }
    const all = this.below[n];
    this.nearer = new Float64Array(all.length + 1);
    for (let d = 0; d < all.length; d++) this.nearer[d + 1] = this.nearer[d] + all[d];
  }

  /** Distance of a code from the query. */
  distance(code: number): number {
    const { n, q: bits } = this.layout;
    const levels = 2 ** bits;
    let d = 0;
    for (let i = 0; i < n; i++) d += Math.abs(this.q[i] - (Math.floor((code >>> 0) / 2 ** (i * bits)) % levels));
    return d;
  }

  /** 0-based position of `code` in the visiting order (the query's own code is 0). */
  rank(code: number): number {
    const { n, q: bits } = this.layout;
    const levels = 2 ** bits;
    const c = Array.from({ length: n }, (_, i) => Math.floor((code >>> 0) / 2 ** (i * bits)) % levels);
    const d = this.distance(code);
    let rank = this.nearer[d];
    // Codes at distance d that are smaller as uint32: equal on the dimensions above i, smaller at
    // dimension i (the most significant dimension first), anything below.
    let above = 0;
    for (let i = n - 1; i >= 0; i--) {
      const table = this.below[i];
      for (let v = 0; v < c[i]; v++) {
        const rest = d - above - Math.abs(this.q[i] - v);
        if (rest >= 0 && rest < table.length) rank += table[rest];
      }
      above += Math.abs(this.q[i] - c[i]);
    }
    return rank;
  }
}

export interface SearchEvalOptions {
  /** LFW root. */
  lfw: string;
  images?: string;
  /** A View 1 model (trained on peopleDevTrain only), or its file. */
  model: Model | string;
  /** Bins-visited budgets (default 1, 2, 4, ... 2^22). */
  budgets?: number[];
  cache?: boolean | string;
  onProgress?: (done: number, total: number) => void;
  signal?: AbortSignal;
}

export interface SearchEvalReport {
  layout: string;
  database: number;
  queries: number;
  people: number;
  /** Mean over queries of the share of the person's other images found. */
  recall: { bins: number; fractionOfSpace: number; recall: number }[];
  /** The smallest budget reaching each recall level (0.5, 0.8, 0.9, 0.95, 0.99), or null. */
  binsForRecall: Record<string, number | null>;
}

const DEFAULT_BUDGETS = Array.from({ length: 23 }, (_, i) => 2 ** i);

/** Runs the experiment (decoding and encoding all LFW faces with the model's preprocessing). */
export async function searchEval(options: SearchEvalOptions): Promise<SearchEvalReport> {
  const o = plainObject(options, 'options');
  knownKeys(o, ['lfw', 'images', 'model', 'budgets', 'cache', 'onProgress', 'signal'], 'options');
  if (typeof o.lfw !== 'string' || !o.lfw) throw new DclError('E_ARG', `Expected an LFW folder for options.lfw but received ${describe(o.lfw)}`);
  const model = typeof o.model === 'string' ? await loadModel(o.model) : o.model;
  if (!(model instanceof Model)) throw new DclError('E_ARG', `Expected a Model or a model file for options.model but received ${describe(o.model)}`);
  const budgets = (o.budgets as number[] | undefined) ?? DEFAULT_BUDGETS;
  if (!Array.isArray(budgets) || budgets.length === 0 || !budgets.every((b) => Number.isInteger(b) && b >= 1))
    throw new DclError('E_ARG', `Expected positive integer budgets for options.budgets but received ${describe(o.budgets)}`);
  const where = findLfw(o.lfw, o.images === undefined ? undefined : { images: o.images as string });
  if (!where.names || !where.peopleDevTest) throw new DclError('E_IO', `Could not find lfw-names.txt and peopleDevTest.txt in ${where.root}`);
  const everyone = readLfwNames(where.names).people;
  const files: string[] = [];
  const owner: number[] = [];
  const byName = new Map<string, number[]>();
  everyone.forEach((p, person) => {
    const list: number[] = [];
    for (let i = 1; i <= p.images; i++) {
      list.push(files.length);
      files.push(lfwImagePath(where.root, where.imagesDir, p.name, i));
      owner.push(person);
    }
    byName.set(p.name, list);
  });
  const pre = resolvePreprocessing({ ...(model.preprocessing as ImagePreprocessing), storedSize: null });
  const data = await loadDataset({ files, labels: Int32Array.from(owner), names: everyone.map((p) => p.name) }, pre, {
    size: 'network',
    cache: (o.cache as boolean | string | undefined) ?? true,
    signal: o.signal as AbortSignal | undefined,
    onProgress: (p) => (o.onProgress as SearchEvalOptions['onProgress'])?.(p.done, p.total),
  });
  const codes = await encode(model, { images: data.images, shape: data.shape }, { signal: o.signal as AbortSignal | undefined });
  const codeOf = new Map(data.files.map((f, i) => [path.resolve(f), codes[i]]));
  const found = new Float64Array(budgets.length);
  let queries = 0;
  let people = 0;
  for (const p of readLfwDevPeople(where.peopleDevTest).people) {
    const images = (byName.get(p.name) ?? []).map((i) => codeOf.get(path.resolve(files[i]))).filter((c): c is number => c !== undefined);
    if (images.length <= 2) continue;
    people++;
    for (let a = 0; a < images.length; a++) {
      const ranker = new BinRanker(images[a], model.layout);
      const ranks = images.filter((_, b) => b !== a).map((c) => ranker.rank(c));
      budgets.forEach((budget, k) => {
        let hit = 0;
        for (const r of ranks) if (r < budget) hit++;
        found[k] += hit / ranks.length;
      });
      queries++;
    }
  }
  if (queries === 0) throw new DclError('E_ARG', 'No peopleDevTest person with more than two loadable images: nothing to query');
  const space = 2 ** (model.layout.n * model.layout.q);
  const recall = budgets.map((bins, k) => ({ bins, fractionOfSpace: bins / space, recall: found[k] / queries }));
  const binsForRecall: Record<string, number | null> = {};
  for (const level of [0.5, 0.8, 0.9, 0.95, 0.99]) binsForRecall[String(level)] = recall.find((r) => r.recall >= level)?.bins ?? null;
  return { layout: model.layout.name, database: data.count, queries, people, recall, binsForRecall };
}

export function searchEvalMarkdown(r: SearchEvalReport): string {
  const lines = [
    `# Face search on LFW: recall against bins visited (${r.layout})`,
    '',
    `Database: ${r.database} LFW faces; ${r.queries} queries (every image of the ${r.people} peopleDevTest people with more than two images, ` +
      'people the View 1 model never saw), each against all faces but itself. Recall: the share of the query person\'s other images ' +
      'whose bins are among the first b bins visited (ascending distance, ties by code), averaged over queries.',
    '',
    '| bins visited | fraction of all bins | recall |',
    '| ---: | ---: | ---: |',
    ...r.recall.map((x) => `| ${x.bins} | ${x.fractionOfSpace.toExponential(2)} | ${(100 * x.recall).toFixed(1)}% |`),
    '',
  ];
  return lines.join('\n');
}

/** Writes search-<layout>.md / .json / .svg into `out`; returns the paths. */
export function writeSearchEval(out: string, r: SearchEvalReport): string[] {
  fs.mkdirSync(out, { recursive: true });
  const base = path.join(out, `search-${r.layout}`);
  const text = (t: string) => [Buffer.from(t, 'utf8')];
  writeFileAtomic(`${base}.md`, text(searchEvalMarkdown(r)));
  writeFileAtomic(`${base}.json`, text(JSON.stringify(r, null, 2) + '\n'));
  writeFileAtomic(
    `${base}.svg`,
    text(
      lineChartSvg({
        title: `LFW search (${r.layout}): recall against bins visited`,
        xLabel: 'bins visited (of 2^32)',
        yLabel: 'recall %',
        series: [{ name: `${r.layout}, ${r.queries} queries`, points: r.recall.map((x) => [x.bins, 100 * x.recall] as [number, number]) }],
        xLog: true,
      }),
    ),
  );
  return [`${base}.md`, `${base}.json`, `${base}.svg`];
}
