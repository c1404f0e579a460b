// Batches for pairwise training: P identities x K images each (people with at least two images),
// every pair inside the batch used once, same-person and different-person pairs weighted so that
// each group carries half of the loss (DESIGN.md, practical notes). People with a single image
// join batches as extra negatives.

/** The random numbers the sampler needs (lib/random.ts's Rng provides them). */
export interface UniformSource {
  /** A uniform float in [0, 1). */
  uniform(): number;
}

export interface PairBatch {
  /** Indices of the batch's images in the data set. */
  images: Int32Array;
  /** [pairs, 2] positions inside `images`. */
  pairs: Int32Array;
  /** -1 for a same-person pair, +1 for a different-person pair (the paper's l). */
  labels: Float32Array;
  /** Per-pair weights summing to 1: half over the same pairs, half over the different pairs. */
  weights: Float32Array;
  sameCount: number;
  differentCount: number;
}

function shuffleInPlace<T>(a: T[] | Int32Array, rng: UniformSource): void {
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(rng.uniform() * (i + 1));
    const t = a[i];
    a[i] = a[j];
    a[j] = t;
  }
}

export class IdentityBatchSampler {
  private readonly byIdentity: number[][];
  private readonly multi: number[];
  private readonly singles: number[];
  private order: number[] = [];
  private cursor = 0;

  /**
   * labels: identity of each image. identitiesPerBatch (P) x imagesPerIdentity (K) images come from
   * people with >= 2 images; `extraSingles` more images from people with one image.
   */
  constructor(
    labels: Int32Array,
    private readonly identitiesPerBatch: number,
    private readonly imagesPerIdentity: number,
    private readonly extraSingles: number,
    private readonly rng: UniformSource,
  ) {
    const groups = new Map<number, number[]>();
    labels.forEach((label, i) => {
      const g = groups.get(label);
      if (g) g.push(i);
      else groups.set(label, [i]);
    });
    this.byIdentity = [...groups.values()];
    this.multi = [];
    this.singles = [];
    this.byIdentity.forEach((g, id) => {
      if (g.length >= 2) this.multi.push(id);
      else this.singles.push(g[0]);
    });
  }

  /** Identities with at least two images: what the same-person pairs come from. */
  get identitiesWithPairs(): number {
    return this.multi.length;
  }

  /** Batches per epoch: every identity with pairs appears about once. */
  get batchesPerEpoch(): number {
    return Math.max(1, Math.floor(this.multi.length / this.identitiesPerBatch));
  }

  next(): PairBatch {
    const p = Math.min(this.identitiesPerBatch, this.multi.length);
    const chosen: number[] = [];
    const taken = new Set<number>();
    while (chosen.length < p) {
      if (this.cursor >= this.order.length) {
        this.order = this.multi.slice();
        shuffleInPlace(this.order, this.rng);
        this.cursor = 0;
      }
      const id = this.order[this.cursor++];
      // Across an epoch boundary the new order may repeat someone already in this batch: skip.
      if (taken.has(id)) continue;
      taken.add(id);
      chosen.push(id);
    }
    const images: number[] = [];
    const owner: number[] = [];
    for (const id of chosen) {
      const members = this.byIdentity[id].slice();
      shuffleInPlace(members, this.rng);
      for (const m of members.slice(0, this.imagesPerIdentity)) {
        images.push(m);
        owner.push(id);
      }
    }
    for (let i = 0; i < this.extraSingles && this.singles.length > 0; i++) {
      images.push(this.singles[Math.floor(this.rng.uniform() * this.singles.length)]);
      owner.push(-1 - i); // a person of its own
    }
    return makeAllPairs(Int32Array.from(images), Int32Array.from(owner));
  }
}

/** Every pair (i < j) of the given images, labelled by `owner`, weighted half same / half different. */
export function makeAllPairs(images: Int32Array, owner: Int32Array): PairBatch {
  const n = images.length;
  const total = (n * (n - 1)) / 2;
  const pairs = new Int32Array(2 * total);
  const labels = new Float32Array(total);
  let same = 0;
  let k = 0;
  for (let i = 0; i < n; i++)
    for (let j = i + 1; j < n; j++, k++) {
      pairs[2 * k] = i;
      pairs[2 * k + 1] = j;
      const isSame = owner[i] === owner[j];
      labels[k] = isSame ? -1 : 1;
      if (isSame) same++;
    }
  const different = total - same;
  const weights = new Float32Array(total);
  for (let k2 = 0; k2 < total; k2++) {
    if (labels[k2] < 0) weights[k2] = same > 0 ? (different > 0 ? 0.5 : 1) / same : 0;
    else weights[k2] = different > 0 ? (same > 0 ? 0.5 : 1) / different : 0;
  }
  return { images, pairs, labels, weights, sameCount: same, differentCount: different };
}

/**
 * Pair weights that keep every same-person pair and only the hardest different-person pairs: the
 * ceil(fraction x count) with the smallest L1 distance between their rows of `features` ([N, dims],
 * the network's outputs). Same and different halves keep equal total weight, as in makeAllPairs.
 */
export function hardNegativeWeights(features: Float32Array, dims: number, batch: PairBatch, fraction: number): Float32Array {
  const total = batch.labels.length;
  const negatives: number[] = [];
  const distance = new Float64Array(total);
  for (let k = 0; k < total; k++) {
    if (batch.labels[k] < 0) continue;
    const a = batch.pairs[2 * k] * dims, b = batch.pairs[2 * k + 1] * dims;
    let d = 0;
    for (let i = 0; i < dims; i++) d += Math.abs(features[a + i] - features[b + i]);
    distance[k] = d;
    negatives.push(k);
  }
  const keep = Math.min(negatives.length, Math.max(1, Math.ceil(fraction * negatives.length)));
  negatives.sort((x, y) => distance[x] - distance[y] || x - y);
  const weights = new Float32Array(total);
  const same = batch.sameCount;
  for (let k = 0; k < total; k++) if (batch.labels[k] < 0) weights[k] = 0.5 / same;
  const share = same > 0 ? 0.5 : 1;
  for (let r = 0; r < keep; r++) weights[negatives[r]] = share / keep;
  return weights;
}
