// Bin index search (see dcl/bins.h): two strategies with identical results.
// - rank: the distance of the query to every occupied bin (an exhaustive scan over the B bin
//   codes), a selection of the bins needed, a stable sort by distance (the codes are ascending, so
//   ties stay in code order), then the visit.
// - enumerate: the neighbouring codes radius by radius (q = 1: the bit patterns of weight r in
//   increasing numeric order, Gosper's hack; q > 1: every vector of per-dimension offsets of L1 norm
//   r that stays within the levels), each looked up in the hash table of occupied bins. Look-ups go
//   in batches: the slots of a batch are computed first, then probed with software prefetches
//   running kPrefetchAhead slots ahead, so that the random DRAM accesses overlap. The hits of one
//   radius are sorted by bin index (= by code) before they are visited.
// - prefix: see search_prefix below.
// - mih: multi-index hashing, see search_mih below.
// Plain serial C++ (no ISA flags): the only machine-specific pieces are the popcounts of the rank
// scan and of the MIH candidate filter, compiled for the popcnt instruction behind a run-time check.
#include "dcl/bins.h"

#include <algorithm>
#include <atomic>
#include <cstring>
#include <vector>

#include "dcl/kernels.h"
#include "dcl/parallel.h"

#ifdef __linux__
#include <sys/mman.h>
#endif

namespace dcl {
namespace {

constexpr uint32_t kEmpty = 0xFFFFFFFFu;
constexpr int kBatch = 256;
constexpr int kPrefetchAhead = 16;

inline uint64_t slot_of(uint32_t code, int shift) {
  return static_cast<uint64_t>(static_cast<uint32_t>(code * 0x9E3779B1u)) >> shift;
}

int log2_exact(int64_t s) {
  int l = 0;
  while ((int64_t{1} << l) < s) ++l;
  return l;
}

inline uint64_t level_mask(int q) { return q >= 32 ? 0xFFFFFFFFull : ((uint64_t{1} << q) - 1); }

// Distance between two codes of layout n x q (q = 1: Hamming; otherwise L1 over the dimensions).
inline uint32_t distance(uint32_t a, uint32_t b, int n, int q) {
  if (q == 1) return static_cast<uint32_t>(__builtin_popcount(a ^ b));
  if (q >= 32) return a > b ? a - b : b - a;
  const uint32_t m = static_cast<uint32_t>(level_mask(q));
  uint32_t s = 0;
  for (int i = 0; i < n; ++i) {
    const int32_t x = static_cast<int32_t>((a >> (i * q)) & m), y = static_cast<int32_t>((b >> (i * q)) & m);
    s += static_cast<uint32_t>(x > y ? x - y : y - x);
  }
  return s;
}

// dist[b] = popcount(codes[b] ^ query), and hist[d] counts the bins at each distance d <= 32.
__attribute__((target("popcnt"))) void hamming_scan_popcnt(int64_t count, const uint32_t* codes, uint32_t query,
                                                          uint32_t* dist, uint32_t* hist) {
  for (int64_t i = 0; i < count; ++i) {
    const uint32_t d = static_cast<uint32_t>(__builtin_popcount(codes[i] ^ query));
    dist[i] = d;
    ++hist[d];
  }
}

bool has_popcnt() {
  static const bool yes = __builtin_cpu_supports("popcnt");
  return yes;
}

// The exhaustive scan of the rank strategy: dist[b] = d(query, codes[b]); with hist (hist_size
// entries, zeroed), also the number of bins at each distance below hist_size.
// TODO(scan): call the shared SIMD scan kernel (native/cpu/scan_*.cpp, kernels().code_knn and
// friends) here for wide layouts and batches once its interface settles.
void scan_distances(const BinIndexView& ix, uint32_t query, uint32_t* dist, uint32_t* hist, uint64_t hist_size) {
  if (ix.q == 1 && has_popcnt() && hist && hist_size > 32) {
    hamming_scan_popcnt(ix.bins, ix.codes, query, dist, hist);
    return;
  }
  for (int64_t b = 0; b < ix.bins; ++b) {
    const uint32_t d = distance(ix.codes[b], query, ix.n, ix.q);
    dist[b] = d;
    if (hist && d < hist_size) ++hist[d];
  }
}

// Collects the faces of bins in visiting order and applies the stop rules.
struct Visitor {
  const BinIndexView& ix;
  const BinQuery& o;
  BinResult& out;
  uint64_t collected = 0, visited = 0;
  // Returns true when the search is complete.
  bool visit(uint32_t bin, uint32_t d) {
    if (collected >= o.k || visited >= o.max_bins) return true;
    ++visited;
    ++out.stats.visited;
    const uint32_t begin = ix.start[bin], end = ix.start[bin + 1];
    for (uint32_t p = begin; p < end && collected < o.k; ++p, ++collected) {
      out.positions.push_back(p);
      out.distances.push_back(d);
    }
    return collected >= o.k || visited >= o.max_bins;
  }
};

struct Scratch {
  std::vector<uint32_t> dist, cand, hits;
  std::vector<uint64_t> pool, ready;
  std::vector<uint32_t> hist;
};

uint64_t max_layout_distance(int n, int q) { return q == 1 ? static_cast<uint64_t>(n) : n * level_mask(q); }

void search_rank(const BinIndexView& ix, uint32_t query, const BinQuery& o, BinResult& out, Scratch& s) {
  const int64_t B = ix.bins;
  if (B == 0 || o.k == 0 || o.max_bins == 0) return;
  if (s.dist.size() < static_cast<size_t>(B)) s.dist.resize(static_cast<size_t>(B));
  uint32_t* dist = s.dist.data();
  // A histogram of the distances when the layout's range is small (always for q = 1).
  const uint64_t top = std::min<uint64_t>(max_layout_distance(ix.n, ix.q), o.max_distance);
  const bool use_hist = max_layout_distance(ix.n, ix.q) < 65536;
  if (use_hist) s.hist.assign(max_layout_distance(ix.n, ix.q) + 1, 0);
  scan_distances(ix, query, dist, use_hist ? s.hist.data() : nullptr, use_hist ? s.hist.size() : 0);
  out.stats.probed += B;
  // At most m bins are visited: every bin holds at least one face.
  const uint64_t m = std::min<uint64_t>({o.max_bins, o.k, static_cast<uint64_t>(B)});
  // T: the distance of the m-th nearest bin within max_distance (or the largest distance allowed
  // when fewer bins are that near); `room`: how many bins at distance T are taken.
  uint64_t T = top, room = UINT64_MAX;
  if (use_hist) {
    uint64_t cum = 0;
    for (uint64_t d = 0; d <= top; ++d) {
      if (cum + s.hist[d] >= m) {
        T = d;
        room = m - cum;
        break;
      }
      cum += s.hist[d];
    }
  } else {
    std::vector<uint32_t>& tmp = s.hits;
    tmp.clear();
    for (int64_t b = 0; b < B; ++b)
      if (dist[b] <= top) tmp.push_back(dist[b]);
    if (tmp.size() >= m) {
      std::nth_element(tmp.begin(), tmp.begin() + static_cast<int64_t>(m - 1), tmp.end());
      T = tmp[m - 1];
      uint64_t below = 0;
      for (uint32_t d : tmp) below += d < T;
      room = m - below;
    }
  }
  // The chosen bins in code order, then a stable counting sort by distance (ties stay in code order).
  std::vector<uint32_t>& cand = s.cand;
  cand.clear();
  for (int64_t b = 0; b < B; ++b) {
    const uint32_t d = dist[b];
    if (d < T || (d == T && room > 0)) {
      if (d == T) --room;
      cand.push_back(static_cast<uint32_t>(b));
    }
  }
  std::stable_sort(cand.begin(), cand.end(), [dist](uint32_t a, uint32_t b) { return dist[a] < dist[b]; });
  Visitor v{ix, o, out};
  for (uint32_t b : cand)
    if (v.visit(b, dist[b])) break;
}

// Batched hash look-ups of generated codes; hits go to `hits` (bin indices).
struct Prober {
  const BinIndexView& ix;
  std::vector<uint32_t>& hits;
  BinStats& stats;
  int shift;
  uint64_t mask;
  uint32_t codes[kBatch];
  uint64_t slots[kBatch];
  int count = 0;

  Prober(const BinIndexView& index, std::vector<uint32_t>& h, BinStats& st)
      : ix(index), hits(h), stats(st), shift(64), mask(0) {
    const int l = log2_exact(ix.slots);
    shift = 32 - l;
    mask = static_cast<uint64_t>(ix.slots) - 1;
  }

  inline void add(uint32_t code) {
    codes[count++] = code;
    if (count == kBatch) flush();
  }

  void flush() {
    const int c = count;
    count = 0;
    stats.enumerated += c;
    if (c == 0) return;
    for (int i = 0; i < c; ++i) slots[i] = slot_of(codes[i], shift);
    const uint32_t* keys = ix.keys;
    for (int i = 0; i < std::min(c, kPrefetchAhead); ++i) __builtin_prefetch(keys + slots[i]);
    for (int i = 0; i < c; ++i) {
      if (i + kPrefetchAhead < c) __builtin_prefetch(keys + slots[i + kPrefetchAhead]);
      const uint32_t code = codes[i];
      if (code == kEmpty) {
        if (ix.all_ones_bin >= 0) hits.push_back(static_cast<uint32_t>(ix.all_ones_bin));
        continue;
      }
      uint64_t sl = slots[i];
      for (;;) {
        ++stats.probed;
        const uint32_t key = keys[sl];
        if (key == code) {
          hits.push_back(ix.vals[sl]);
          break;
        }
        if (key == kEmpty) break;
        sl = (sl + 1) & mask;
      }
    }
  }
};

// Calls f(base ^ mask) for every mask of `bits` bits with exactly r ones, masks in increasing
// numeric order (Gosper's hack: the next larger mask of the same weight; the division by
// c = 2^ctz is a shift). r = 0 gives base itself.
template <class F>
inline void for_each_flip(uint32_t base, int bits, uint64_t r, F f) {
  if (r == 0) {
    f(base);
    return;
  }
  if (r > static_cast<uint64_t>(bits)) return;
  const uint64_t limit = uint64_t{1} << bits;
  uint64_t mask = (uint64_t{1} << r) - 1;
  while (mask < limit) {
    f(base ^ static_cast<uint32_t>(mask));
    const uint64_t c = mask & (~mask + 1), rr = mask + c;
    mask = (((rr ^ mask) >> 2) >> __builtin_ctzll(c)) | rr;
  }
}

// Every code at L1 distance exactly `rem` from the query over dimensions dim..n-1 (q > 1).
template <class Sink>
struct L1Enumerator {
  int n, q;
  uint64_t top;  // 2^q - 1
  uint64_t level[32];
  uint64_t cap[33];  // cap[i]: the largest distance dimensions i..n-1 can reach
  Sink& prober;

  void run(int dim, uint64_t rem, uint64_t acc) {
    const int shift = dim * q;
    const uint64_t a = level[dim];
    if (dim == n - 1) {
      if (rem == 0) {
        prober.add(static_cast<uint32_t>(acc | (a << shift)));
        return;
      }
      if (a >= rem) prober.add(static_cast<uint32_t>(acc | ((a - rem) << shift)));
      if (top - a >= rem) prober.add(static_cast<uint32_t>(acc | ((a + rem) << shift)));
      return;
    }
    const uint64_t down = std::min(rem, a), up = std::min(rem, top - a);
    // offset -down .. up, ascending; the rest of the budget must fit the later dimensions.
    for (uint64_t k = down; k >= 1; --k) {
      const uint64_t left = rem - k;
      if (left <= cap[dim + 1]) run(dim + 1, left, acc | ((a - k) << shift));
    }
    for (uint64_t k = 0; k <= up; ++k) {
      const uint64_t left = rem - k;
      if (left <= cap[dim + 1]) run(dim + 1, left, acc | ((a + k) << shift));
    }
  }
};

void search_enumerate(const BinIndexView& ix, uint32_t query, const BinQuery& o, BinResult& out, Scratch& s) {
  const int64_t B = ix.bins;
  if (B == 0 || o.k == 0 || o.max_bins == 0) return;
  if (ix.slots == 0) throw Error("E_NATIVE", "binsSearch: the enumerate strategy needs the hash table");
  std::vector<uint32_t>& hits = s.hits;
  Prober prober(ix, hits, out.stats);
  Visitor v{ix, o, out};
  const uint64_t maxr = std::min<uint64_t>(max_layout_distance(ix.n, ix.q), o.max_distance);
  int64_t found = 0;
  L1Enumerator<Prober> l1{ix.n, ix.q, level_mask(ix.q), {}, {}, prober};
  if (ix.q > 1) {
    l1.cap[ix.n] = 0;
    for (int i = 0; i < ix.n; ++i) l1.level[i] = (static_cast<uint64_t>(query) >> (i * ix.q)) & l1.top;
    for (int i = ix.n - 1; i >= 0; --i) l1.cap[i] = l1.cap[i + 1] + std::max(l1.level[i], l1.top - l1.level[i]);
  }
  const uint64_t reach = ix.q > 1 ? l1.cap[0] : static_cast<uint64_t>(ix.n);
  for (uint64_t r = 0; r <= maxr && r <= reach; ++r) {
    hits.clear();
    if (ix.q == 1) {
      for_each_flip(query, ix.n, r, [&](uint32_t code) { prober.add(code); });
    } else {
      l1.run(0, r, 0);
    }
    prober.flush();
    std::sort(hits.begin(), hits.end());
    for (uint32_t b : hits)
      if (v.visit(b, static_cast<uint32_t>(r))) return;
    found += static_cast<int64_t>(hits.size());
    if (found >= B) return;  // every occupied bin has been visited
  }
}

// The prefix strategy: the bins are sorted by code, so the bins sharing the top m dimensions (the
// prefix, t = m q bits) are contiguous, and dir[p] is the first bin of prefix p (dir[2^t] = B). A
// bin whose prefix is at distance j from the query's has distance >= j, so visiting the prefixes
// level by level (j = 0, 1, ...) and computing the full distance of every bin in their buckets
// finds, after level j, every bin at distance <= j. The bins at distance j are then sorted by code
// and visited; the farther ones wait for their level. One random access per prefix (a bucket of
// about 8 bins in one or two cache lines) instead of one per neighbouring code.
struct PrefixProber {
  const BinIndexView& ix;
  std::vector<uint64_t>& pool;  // (distance << 32) | bin
  BinStats& stats;
  uint32_t query;
  uint32_t prefixes[kBatch];
  int count = 0;
  uint64_t pool_min = UINT64_MAX;  // the smallest distance in the pool (a lower bound)

  inline void add(uint32_t prefix) {
    prefixes[count++] = prefix;
    if (count == kBatch) flush();
  }

  void flush() {
    const int c = count;
    count = 0;
    stats.enumerated += c;
    const uint32_t* dir = ix.dir;
    for (int i = 0; i < c; ++i) __builtin_prefetch(dir + prefixes[i]);
    uint32_t lo[kBatch], hi[kBatch];
    for (int i = 0; i < c; ++i) {
      lo[i] = dir[prefixes[i]];
      hi[i] = dir[prefixes[i] + 1];
      if (lo[i] < hi[i]) __builtin_prefetch(ix.codes + lo[i]);
    }
    for (int i = 0; i < c; ++i) {
      for (uint32_t b = lo[i]; b < hi[i]; ++b) {
        const uint32_t d = distance(ix.codes[b], query, ix.n, ix.q);
        pool.push_back((static_cast<uint64_t>(d) << 32) | b);
        if (d < pool_min) pool_min = d;
      }
      stats.probed += hi[i] - lo[i];
    }
  }
};

void search_prefix(const BinIndexView& ix, uint32_t query, const BinQuery& o, BinResult& out, Scratch& s) {
  const int64_t B = ix.bins;
  if (B == 0 || o.k == 0 || o.max_bins == 0) return;
  const int m = ix.prefix_dims;
  if (m < 1 || m >= ix.n || !ix.dir) throw Error("E_NATIVE", "binsSearch: the prefix strategy needs the prefix directory");
  const int low_bits = (ix.n - m) * ix.q;
  const uint32_t qprefix = static_cast<uint32_t>(static_cast<uint64_t>(query) >> low_bits);
  std::vector<uint64_t>& pool = s.pool;
  pool.clear();
  PrefixProber prober{ix, pool, out.stats, query, {}, 0, UINT64_MAX};
  Visitor v{ix, o, out};
  const uint64_t maxr = std::min<uint64_t>(max_layout_distance(ix.n, ix.q), o.max_distance);
  L1Enumerator<PrefixProber> l1{m, ix.q, level_mask(ix.q), {}, {}, prober};
  if (ix.q > 1) {
    l1.cap[m] = 0;
    for (int i = 0; i < m; ++i) l1.level[i] = (static_cast<uint64_t>(qprefix) >> (i * ix.q)) & l1.top;
    for (int i = m - 1; i >= 0; --i) l1.cap[i] = l1.cap[i + 1] + std::max(l1.level[i], l1.top - l1.level[i]);
  }
  const uint64_t reach = ix.q > 1 ? l1.cap[0] : static_cast<uint64_t>(m);
  int64_t visited_all = 0;
  std::vector<uint64_t>& ready = s.ready;
  for (uint64_t j = 0; j <= maxr; ++j) {
    if (j <= reach) {
      if (ix.q == 1) {
        for_each_flip(qprefix, m, j, [&](uint32_t prefix) { prober.add(prefix); });
      } else {
        l1.run(0, j, 0);
      }
      prober.flush();
    }
    if (j >= reach) {
      // Every prefix has been enumerated: the rest of the pool in (distance, code) order.
      std::sort(pool.begin(), pool.end());
      for (uint64_t e : pool) {
        if ((e >> 32) > maxr) return;
        if (v.visit(static_cast<uint32_t>(e), static_cast<uint32_t>(e >> 32))) return;
      }
      return;
    }
    if (prober.pool_min > j) continue;  // nothing at distance j yet
    // Bins at distance exactly j are complete now: visit them in code order.
    ready.clear();
    size_t keep = 0;
    uint64_t next_min = UINT64_MAX;
    for (size_t i = 0; i < pool.size(); ++i) {
      const uint64_t d = pool[i] >> 32;
      if (d == j) {
        ready.push_back(pool[i]);
      } else {
        pool[keep++] = pool[i];
        if (d < next_min) next_min = d;
      }
    }
    pool.resize(keep);
    prober.pool_min = next_min;
    std::sort(ready.begin(), ready.end());
    for (uint64_t e : ready)
      if (v.visit(static_cast<uint32_t>(e), static_cast<uint32_t>(j))) return;
    visited_all += static_cast<int64_t>(ready.size());
    if (visited_all >= B) return;
  }
}


// ---- multi-index hashing (mih) ------------------------------------------------------------------
// The code splits into m groups of dimensions (dcl/bins.h), and the distance is a sum over them:
// d(query, bin) = sum_t g_t, g_t the distance within group t. Table t lists the bins by their
// group-t value. The search goes in steps (level s, table t), s = 0, 1, ..., t = 0 .. m - 1: every
// group value at group distance exactly s from the query's, and for each the contiguous run of
// its bins (their full codes stream through a popcount filter: d <= tau). After a step, with s_j
// the last level done in table j (-1: none), an unseen bin has g_j > s_j for every j, so
// d >= sum_j (s_j + 1): every bin with d <= bound = sum_j (s_j + 1) - 1 has been seen (pigeonhole);
// once a table has done every level it can reach, every bin has been seen.
// A bin appears in m tables: it is taken only at its first step, the smallest (g_j, j), so a bin
// met in table t at level s is skipped when some j has g_j < s, or g_j = s and j < t (that step
// came earlier).
// tau, the cut-off: the distance of the k-th face (or the maxBins-th bin) among the bins taken,
// at most maxDistance; bins beyond it can never be visited. The search ends when bound >= tau;
// the bins taken are then sorted by (distance, bin = code order) and visited.
constexpr int64_t kMihChunk = 4096;
constexpr int kMihAhead = 8;

struct GroupSink {
  std::vector<uint32_t>& out;
  inline void add(uint32_t v) { out.push_back(v); }
};

// Writes the offsets i (and distances) of the codes with popcount(codes[i] ^ query) <= tau; out and
// dist hold count entries.
__attribute__((target("popcnt"))) int64_t filter_hamming_popcnt(const uint32_t* codes, int64_t count, uint32_t query,
                                                               uint32_t tau, uint32_t* out, uint32_t* dist) {
  int64_t n = 0;
  for (int64_t i = 0; i < count; ++i) {
    const uint32_t d = static_cast<uint32_t>(__builtin_popcount(codes[i] ^ query));
    out[n] = static_cast<uint32_t>(i);
    dist[n] = d;
    n += d <= tau;
  }
  return n;
}

int64_t filter_hamming_plain(const uint32_t* codes, int64_t count, uint32_t query, uint32_t tau, uint32_t* out,
                             uint32_t* dist) {
  int64_t n = 0;
  for (int64_t i = 0; i < count; ++i) {
    const uint32_t d = static_cast<uint32_t>(__builtin_popcount(codes[i] ^ query));
    out[n] = static_cast<uint32_t>(i);
    dist[n] = d;
    n += d <= tau;
  }
  return n;
}

int64_t filter_l1(const uint32_t* codes, int64_t count, uint32_t query, uint64_t tau, int n, int q, uint32_t* out,
                  uint32_t* dist) {
  int64_t c = 0;
  for (int64_t i = 0; i < count; ++i) {
    const uint32_t d = distance(codes[i], query, n, q);
    out[c] = static_cast<uint32_t>(i);
    dist[c] = d;
    c += d <= tau;
  }
  return c;
}

// A bin taken by mih: distance (17 bits: at most 2 x 65535), bin (32) and its face count capped
// at 2^15 - 1 (15 bits; 0 until looked up; a capped count only makes the cut-off later, never
// wrong), ordered by (distance, bin) as one integer.
constexpr int kMihBinShift = 15;
constexpr int kMihDistShift = 47;
constexpr uint64_t kMihFacesCap = (uint64_t{1} << kMihBinShift) - 1;

struct MihGroup {
  int shift = 0, bits = 0, dims = 0;
  uint32_t mask = 0, qv = 0;
  uint64_t reach = 0;  // the largest group distance from the query's group value
  const uint32_t* off = nullptr;
  const uint32_t* codes = nullptr;
  const uint32_t* bins = nullptr;  // null: the entry's position is its bin (table 0)
};

void search_mih(const BinIndexView& ix, uint32_t query, const BinQuery& o, BinResult& out, Scratch& s) {
  const int64_t B = ix.bins;
  if (B == 0 || o.k == 0 || o.max_bins == 0) return;
  const int m = ix.mih_groups;
  if (m < 2 || m > kMihMaxGroups || !ix.mih_offsets || !ix.mih_codes || !ix.mih_bins)
    throw Error("E_NATIVE", "binsSearch: the mih strategy needs the MIH tables");
  const int q = ix.q;
  const uint64_t top_level = level_mask(q);
  MihGroup g[kMihMaxGroups];
  int dim = ix.n;
  const uint32_t* off = ix.mih_offsets;
  for (int t = 0; t < m; ++t) {
    MihGroup& G = g[t];
    G.dims = ix.mih_dims[t];
    dim -= G.dims;
    G.shift = dim * q;
    G.bits = G.dims * q;
    G.mask = static_cast<uint32_t>((uint64_t{1} << G.bits) - 1);
    G.qv = (query >> G.shift) & G.mask;
    G.off = off;
    off += (size_t{1} << G.bits) + 1;
    G.codes = t == 0 ? ix.codes : ix.mih_codes + static_cast<size_t>(t - 1) * static_cast<size_t>(B);
    G.bins = t == 0 ? nullptr : ix.mih_bins + static_cast<size_t>(t - 1) * static_cast<size_t>(B);
    if (q == 1) {
      G.reach = static_cast<uint64_t>(G.bits);
    } else {
      G.reach = 0;
      for (int i = 0; i < G.dims; ++i) {
        const uint64_t a = (G.qv >> (i * q)) & top_level;
        G.reach += std::max(a, top_level - a);
      }
    }
  }
  const uint64_t maxd = std::min<uint64_t>(max_layout_distance(ix.n, q), o.max_distance);
  uint64_t tau = maxd;
  const bool can_prune = o.k != UINT64_MAX || o.max_bins != UINT64_MAX;
  std::vector<uint64_t>& pool = s.pool;  // the bins taken (kMihDistShift ...)
  pool.clear();
  size_t pruned_size = 0;
  size_t limit = 256 + 4 * static_cast<size_t>(std::min<uint64_t>({o.k, o.max_bins, uint64_t{1} << 20}));
  // tau from the bins taken so far; drops the bins beyond it.
  auto prune = [&]() {
    std::sort(pool.begin(), pool.end());
    uint64_t faces = 0, bins = 0;
    for (size_t i = 0; i < pool.size(); ++i) {
      uint64_t f = pool[i] & kMihFacesCap;
      if (f == 0) {  // not looked up yet (a random access: only for the bins this walk reaches)
        const uint32_t b = static_cast<uint32_t>(pool[i] >> kMihBinShift);
        f = std::min<uint64_t>(ix.start[b + 1] - ix.start[b], kMihFacesCap);
        pool[i] |= f;
      }
      faces += f;
      ++bins;
      if (faces >= o.k || bins >= o.max_bins) {
        tau = std::min<uint64_t>(tau, pool[i] >> kMihDistShift);
        size_t j = i + 1;
        while (j < pool.size() && (pool[j] >> kMihDistShift) <= tau) ++j;
        pool.resize(j);
        break;
      }
    }
    pruned_size = pool.size();
    limit = std::max(limit, 2 * pool.size());
  };
  std::vector<uint32_t>& vals = s.hits;  // the group values of one step
  std::vector<uint64_t>& pend = s.ready;  // (distance << 32) | table position, bin index not read yet
  pend.clear();
  std::vector<uint32_t>& sel = s.cand;   // filter output: offsets, then distances
  if (sel.size() < static_cast<size_t>(2 * kMihChunk)) sel.resize(2 * kMihChunk);
  uint32_t* sel_at = sel.data();
  uint32_t* sel_d = sel.data() + kMihChunk;
  const bool popcnt = has_popcnt();
  GroupSink sink{vals};
  int64_t level[kMihMaxGroups];
  for (int t = 0; t < m; ++t) level[t] = -1;
  uint32_t lo[kBatch], hi[kBatch];
  for (uint64_t lev = 0;; ++lev) {
    for (int t = 0; t < m; ++t) {
      const MihGroup& G = g[t];
      vals.clear();
      if (q == 1) {
        for_each_flip(G.qv, G.bits, lev, [&](uint32_t value) { vals.push_back(value); });
      } else {
        L1Enumerator<GroupSink> e{G.dims, q, top_level, {}, {}, sink};
        e.cap[G.dims] = 0;
        for (int i = 0; i < G.dims; ++i) e.level[i] = (G.qv >> (i * q)) & top_level;
        for (int i = G.dims - 1; i >= 0; --i) e.cap[i] = e.cap[i + 1] + std::max(e.level[i], top_level - e.level[i]);
        if (lev <= e.cap[0]) e.run(0, lev, 0);
      }
      out.stats.enumerated += static_cast<int64_t>(vals.size());
      // The buckets, kBatch at a time: their offsets (prefetched), then their codes.
      for (size_t base = 0; base < vals.size(); base += kBatch) {
        const int c = static_cast<int>(std::min<size_t>(kBatch, vals.size() - base));
        const uint32_t* v = vals.data() + base;
        for (int i = 0; i < c; ++i) __builtin_prefetch(G.off + v[i]);
        for (int i = 0; i < c; ++i) {
          lo[i] = G.off[v[i]];
          hi[i] = G.off[v[i] + 1];
        }
        // Whole buckets (up to 16 cache lines each) kMihAhead buckets ahead.
        auto fetch = [&](int i) {
          const uint32_t* p = G.codes + lo[i];
          const uint32_t* e = G.codes + hi[i];
          for (int line = 0; line < 16 && p < e; ++line, p += 16) __builtin_prefetch(p);
        };
        for (int i = 0; i < std::min(c, kMihAhead); ++i) fetch(i);
        for (int i = 0; i < c; ++i) {
          if (i + kMihAhead < c) fetch(i + kMihAhead);
          for (int64_t a64 = lo[i]; a64 < hi[i]; a64 += kMihChunk) {
            const uint32_t a = static_cast<uint32_t>(a64);
            const int64_t len = std::min<int64_t>(kMihChunk, hi[i] - a64);
            const uint32_t* codes = G.codes + a;
            out.stats.probed += len;
            int64_t found;
            if (q == 1)
              found = popcnt ? filter_hamming_popcnt(codes, len, query, static_cast<uint32_t>(tau), sel_at, sel_d)
                             : filter_hamming_plain(codes, len, query, static_cast<uint32_t>(tau), sel_at, sel_d);
            else
              found = filter_l1(codes, len, query, tau, ix.n, q, sel_at, sel_d);
            for (int64_t f = 0; f < found; ++f) {
              const uint32_t at = a + sel_at[f];
              const uint64_t d = sel_d[f];
              // Taken at an earlier step? (m = 2: the other group's distance is d - lev.)
              bool seen = false;
              if (m == 2) {
                const uint64_t gj = d - lev;
                seen = gj < lev || (gj == lev && t == 1);
              } else {
                const uint32_t code = G.codes[at];
                for (int j = 0; j < m && !seen; ++j) {
                  if (j == t) continue;
                  const MihGroup& H = g[j];
                  const uint64_t gj = distance((code >> H.shift) & H.mask, H.qv, H.dims, q);
                  seen = gj < lev || (gj == lev && j < t);
                }
              }
              if (seen) continue;
              if (G.bins) {
                pend.push_back((d << 32) | at);  // its bin index is read after the batch
              } else {
                pool.push_back((d << kMihDistShift) | (static_cast<uint64_t>(at) << kMihBinShift));
              }
            }
            if (can_prune && pool.size() > limit) prune();
          }
        }
        // The bin indices of the batch's new bins: random reads, issued together.
        if (!pend.empty()) {
          for (uint64_t e : pend) __builtin_prefetch(G.bins + static_cast<uint32_t>(e));
          for (uint64_t e : pend)
            pool.push_back(((e >> 32) << kMihDistShift) | (static_cast<uint64_t>(G.bins[static_cast<uint32_t>(e)]) << kMihBinShift));
          pend.clear();
          if (can_prune && pool.size() > limit) prune();
        }
      }
      level[t] = static_cast<int64_t>(lev);
      if (can_prune && pool.size() != pruned_size) prune();
      uint64_t bound = 0;
      for (int j = 0; j < m; ++j) bound += static_cast<uint64_t>(level[j] + 1);
      if (lev >= G.reach || bound - 1 >= tau) goto done;  // every bin, or every bin within tau, seen
    }
  }
done:
  std::sort(pool.begin(), pool.end());
  Visitor v{ix, o, out};
  for (uint64_t e : pool) {
    if ((e >> kMihDistShift) > maxd) break;
    if (v.visit(static_cast<uint32_t>(e >> kMihBinShift), static_cast<uint32_t>(e >> kMihDistShift))) return;
  }
}

void search_one(const BinIndexView& ix, uint32_t query, const BinQuery& o, BinResult& out, Scratch& s) {
  out.positions.clear();
  out.distances.clear();
  out.stats = BinStats{};
  if (o.strategy == BinStrategy::enumerate)
    search_enumerate(ix, query, o, out, s);
  else if (o.strategy == BinStrategy::prefix)
    search_prefix(ix, query, o, out, s);
  else if (o.strategy == BinStrategy::mih)
    search_mih(ix, query, o, out, s);
  else
    search_rank(ix, query, o, out, s);
}

void advise_huge_pages(void* p, size_t bytes) {
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  const uintptr_t huge = uintptr_t{1} << 21;
  const uintptr_t begin = (reinterpret_cast<uintptr_t>(p) + huge - 1) & ~(huge - 1);
  const uintptr_t end = (reinterpret_cast<uintptr_t>(p) + bytes) & ~(huge - 1);
  if (end > begin) madvise(reinterpret_cast<void*>(begin), end - begin, MADV_HUGEPAGE);  // best effort
#else
  (void)p;
  (void)bytes;
#endif
}

}  // namespace

void bins_argsort_u32(int64_t count, const uint32_t* keys, uint32_t* order) {
  if (count <= 0) return;
  std::vector<uint32_t> tmp(static_cast<size_t>(count));
  std::vector<uint32_t> hist(65536);
  // Pass 1: low 16 bits, from the identity.
  for (int64_t i = 0; i < count; ++i) ++hist[keys[i] & 0xFFFF];
  uint32_t sum = 0;
  for (auto& h : hist) {
    const uint32_t c = h;
    h = sum;
    sum += c;
  }
  for (int64_t i = 0; i < count; ++i) tmp[hist[keys[i] & 0xFFFF]++] = static_cast<uint32_t>(i);
  // Pass 2: high 16 bits, stable.
  std::fill(hist.begin(), hist.end(), 0);
  for (int64_t i = 0; i < count; ++i) ++hist[keys[i] >> 16];
  sum = 0;
  for (auto& h : hist) {
    const uint32_t c = h;
    h = sum;
    sum += c;
  }
  for (int64_t i = 0; i < count; ++i) {
    const uint32_t j = tmp[i];
    order[hist[keys[j] >> 16]++] = j;
  }
}

void bins_argsort_f64(int64_t count, const double* keys, uint32_t* order) {
  for (int64_t i = 0; i < count; ++i) order[i] = static_cast<uint32_t>(i);
  std::stable_sort(order, order + count, [keys](uint32_t a, uint32_t b) { return keys[a] < keys[b]; });
}

int64_t bins_group(int64_t count, const uint32_t* sorted, uint32_t* codes_out, uint32_t* start_out) {
  int64_t b = 0;
  for (int64_t i = 0; i < count; ++i) {
    if (i == 0 || sorted[i] != sorted[i - 1]) {
      codes_out[b] = sorted[i];
      start_out[b] = static_cast<uint32_t>(i);
      ++b;
    }
  }
  start_out[b] = static_cast<uint32_t>(count);
  return b;
}

void bins_build_prefix(int64_t bins, const uint32_t* codes, int n, int q, int prefix_dims, uint32_t* dir) {
  const int low_bits = (n - prefix_dims) * q;
  const uint64_t size = uint64_t{1} << (prefix_dims * q);
  uint64_t b = 0;
  for (uint64_t p = 0; p <= size; ++p) {
    while (b < static_cast<uint64_t>(bins) && (static_cast<uint64_t>(codes[b]) >> low_bits) < p) ++b;
    dir[p] = static_cast<uint32_t>(b);
  }
}

int64_t bins_mih_offsets_size(int n, int q, int groups, const int* dims) {
  (void)n;
  int64_t total = 0;
  for (int t = 0; t < groups; ++t) total += (int64_t{1} << (dims[t] * q)) + 1;
  return total;
}

void bins_build_mih(int64_t bins, const uint32_t* codes, int n, int q, int groups, const int* dims,
                    uint32_t* offsets, uint32_t* mcodes, uint32_t* mbins) {
  int dim = n;
  uint32_t* off = offsets;
  std::vector<uint32_t> fill;
  for (int t = 0; t < groups; ++t) {
    dim -= dims[t];
    const int shift = dim * q, bits = dims[t] * q;
    const uint32_t mask = static_cast<uint32_t>((uint64_t{1} << bits) - 1);
    const size_t size = size_t{1} << bits;
    // Counting sort by group value (stable: ascending code within a value).
    std::memset(off, 0, (size + 1) * 4);
    for (int64_t b = 0; b < bins; ++b) ++off[((codes[b] >> shift) & mask) + 1];
    for (size_t v = 0; v < size; ++v) off[v + 1] += off[v];
    if (t > 0) {
      uint32_t* tc = mcodes + static_cast<size_t>(t - 1) * static_cast<size_t>(bins);
      uint32_t* tb = mbins + static_cast<size_t>(t - 1) * static_cast<size_t>(bins);
      fill.assign(off, off + size);
      for (int64_t b = 0; b < bins; ++b) {
        const uint32_t at = fill[(codes[b] >> shift) & mask]++;
        tc[at] = codes[b];
        tb[at] = static_cast<uint32_t>(b);
      }
    }
    off += size + 1;
  }
}

int64_t bins_hash_slots(int64_t bins) {
  int64_t s = 16;
  while (s * 7 < bins * 10) s *= 2;
  return s;
}

int64_t bins_build_hash(int64_t bins, const uint32_t* codes, int64_t slots, uint32_t* keys, uint32_t* vals) {
  advise_huge_pages(keys, static_cast<size_t>(slots) * 4);
  advise_huge_pages(vals, static_cast<size_t>(slots) * 4);
  std::memset(keys, 0xFF, static_cast<size_t>(slots) * 4);
  std::memset(vals, 0xFF, static_cast<size_t>(slots) * 4);
  const int shift = 32 - log2_exact(slots);
  const uint64_t mask = static_cast<uint64_t>(slots) - 1;
  int64_t all_ones = -1;
  for (int64_t b = 0; b < bins; ++b) {
    const uint32_t code = codes[b];
    if (code == kEmpty) {
      all_ones = b;
      continue;
    }
    uint64_t s = slot_of(code, shift);
    while (keys[s] != kEmpty) s = (s + 1) & mask;
    keys[s] = code;
    vals[s] = static_cast<uint32_t>(b);
  }
  return all_ones;
}

void bins_search(const BinIndexView& index, uint32_t query, const BinQuery& options, BinResult& out) {
  // Kept per thread between calls: the rank strategy's B distances (4 bytes a bin).
  thread_local Scratch s;
  search_one(index, query, options, out, s);
}

void bins_search_batch(const BinIndexView& index, int64_t count, const uint32_t* queries,
                       const BinQuery& options, BinResult* out) {
  if (count <= 0) return;
  // Dynamic distribution: one region chunk per pool thread, each taking blocks of queries from a
  // shared counter until none is left (query costs vary by orders of magnitude, and on a busy
  // machine a thread may start late: fixed chunks left one thread doing most of the work).
  const int64_t threads = std::max<int64_t>(1, std::min<int64_t>(thread_count(), count));
  const int64_t block = std::max<int64_t>(1, std::min<int64_t>(16, count / (threads * 16)));
  std::atomic<int64_t> next{0};
  parallel_for(threads, [&](int64_t, int64_t, int) {
    Scratch s;
    for (;;) {
      const int64_t begin = next.fetch_add(block, std::memory_order_relaxed);
      if (begin >= count) break;
      const int64_t end = std::min(count, begin + block);
      for (int64_t i = begin; i < end; ++i) search_one(index, queries[i], options, out[i], s);
    }
  });
}

}  // namespace dcl
