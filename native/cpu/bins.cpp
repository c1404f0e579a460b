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
// Plain serial C++ (no ISA flags): the only machine-specific piece is the popcount of the rank
// scan, compiled for the popcnt instruction behind a run-time check.
#include "dcl/bins.h"

#include <algorithm>
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
      const uint64_t limit = uint64_t{1} << ix.n;
      if (r == 0) {
        prober.add(query);
      } else {
        uint64_t mask = (uint64_t{1} << r) - 1;
        while (mask < limit) {
          prober.add(query ^ static_cast<uint32_t>(mask));
          // Gosper's hack: the next larger mask of the same weight (the division by c = 2^ctz is a shift).
          const uint64_t c = mask & (~mask + 1), rr = mask + c;
          mask = (((rr ^ mask) >> 2) >> __builtin_ctzll(c)) | rr;
        }
      }
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
        const uint64_t limit = uint64_t{1} << m;
        if (j == 0) {
          prober.add(qprefix);
        } else {
          uint64_t mask = (uint64_t{1} << j) - 1;
          while (mask < limit) {
            prober.add(qprefix ^ static_cast<uint32_t>(mask));
            const uint64_t c = mask & (~mask + 1), rr = mask + c;
            mask = (((rr ^ mask) >> 2) >> __builtin_ctzll(c)) | rr;
          }
        }
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

void search_one(const BinIndexView& ix, uint32_t query, const BinQuery& o, BinResult& out, Scratch& s) {
  out.positions.clear();
  out.distances.clear();
  out.stats = BinStats{};
  if (o.strategy == BinStrategy::enumerate)
    search_enumerate(ix, query, o, out, s);
  else if (o.strategy == BinStrategy::prefix)
    search_prefix(ix, query, o, out, s);
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
  parallel_for(count, [&](int64_t begin, int64_t end, int) {
    Scratch s;
    for (int64_t i = begin; i < end; ++i) search_one(index, queries[i], options, out[i], s);
  });
}

}  // namespace dcl
