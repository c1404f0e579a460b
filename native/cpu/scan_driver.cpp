// Exhaustive scans over packed codes: the ISA-independent driver of the SIMD paths (scan.h).
// Plain C++ (no ISA flags): it owns threads, work units, allocation, the nibble tables of the
// queries, merging and sorting; the ISA files supply the inner loops only.
//
// Work: queries in groups of up to kGroup, the database in blocks of kScanBlock codes, and (when
// there are too few query groups to keep every thread busy) in `chunks` contiguous runs of whole
// blocks. A work unit is one query group over one chunk; threads take units from a shared counter
// (a busy core just takes fewer). Per unit and block the ISA prepares the block once (it stays in
// L1) and runs each query of the group over it, so the database streams from memory once per
// query group and the per-pair work is compute bound.
//
// k nearest: each (query, chunk) keeps the min(k, chunk length) smallest keys (distance << 32 |
// index) of its chunk in a bounded max-heap; the ISA loops reject a code with one compare of its
// distance against the worst kept one (candidates are rare once the heap is full). The chunks'
// heaps of a query are merged by sorting their keys. Keys are unique (one per index), so the
// result is the exact k smallest (distance, index) pairs however the work was split: it does not
// depend on the thread count or on the ISA.
// Range: each (query, chunk) collects its hits in index order; the chunks are concatenated.
#include <algorithm>
#include <atomic>
#include <cpuid.h>
#include <string>
#include <vector>

#include "dcl/parallel.h"
#include "ops.h"
#include "scan.h"

namespace dcl {
namespace {

// Queries that share one pass over a block: enough to amortize the block's transposition.
constexpr int64_t kGroup = 64;
// Above this many bytes of per-chunk heaps, fewer chunks are used.
constexpr int64_t kMaxHeapBytes = int64_t(256) << 20;

uint32_t popcount32(uint32_t x) {
  x = x - ((x >> 1) & 0x55555555u);
  x = (x & 0x33333333u) + ((x >> 2) & 0x33333333u);
  x = (x + (x >> 4)) & 0x0f0f0f0fu;
  return (x * 0x01010101u) >> 24;
}

struct Plan {
  int64_t group = 1, groups = 0, blocks = 0, chunks = 1;
  int64_t chunk_begin(int64_t c) const { return c * blocks / chunks; }  // in blocks
};

Plan make_plan(int64_t count, int64_t queries, int threads) {
  Plan p;
  p.group = scan_group_queries(queries);
  p.groups = (queries + p.group - 1) / p.group;
  p.blocks = (count + kScanBlock - 1) / kScanBlock;
  // Enough units for every thread (about 4 each) when there are few query groups.
  if (p.groups < 2 * static_cast<int64_t>(threads))
    p.chunks = std::max<int64_t>(1, std::min<int64_t>(p.blocks, (4 * threads + p.groups - 1) / p.groups));
  return p;
}

std::vector<uint8_t> prepare_queries(const ScanSpec& spec, const int32_t* queries, int64_t count) {
  std::vector<uint8_t> out(static_cast<size_t>(count) * kScanQueryBytes);
  for (int64_t i = 0; i < count; ++i)
    scan_prepare_query(spec, static_cast<uint32_t>(queries[i]), out.data() + i * kScanQueryBytes);
  return out;
}

}  // namespace

int64_t scan_group_queries(int64_t queries) { return std::max<int64_t>(1, std::min<int64_t>(queries, kGroup)); }

void scan_topk_compact(TopK* t) {
  if (t->size > t->cap) {
    std::nth_element(t->keys, t->keys + (t->cap - 1), t->keys + t->size);
    t->size = t->cap;
  }
  if (t->size == t->cap) t->limit = *std::max_element(t->keys, t->keys + t->size);
}

bool cpu_has_avx512_vpopcntdq() {
  static const bool has = [] {
    unsigned a, b, c, d;
    if (__get_cpuid_max(0, nullptr) < 7) return false;
    __cpuid_count(7, 0, a, b, c, d);
    return (c & (1u << 14)) != 0;
  }();
  return has;
}

ScanSpec scan_spec(int n, int q, bool hamming) {
  ScanSpec s;
  s.n = n;
  s.q = q;
  s.hamming = hamming || q == 1;
  s.mask = n * q >= 32 ? 0xffffffffu : (1u << (n * q)) - 1u;
  const uint64_t field = q >= 32 ? 0xffffffffull : (1ull << q) - 1;
  s.max_distance = s.hamming ? static_cast<uint32_t>(n * q) : static_cast<uint32_t>(static_cast<uint64_t>(n) * field);
  s.planes = (n * q + 3) / 4;
  return s;
}

void scan_prepare_query(const ScanSpec& s, uint32_t code, uint8_t* out) {
  for (int i = 0; i < kScanQueryBytes; ++i) out[i] = 0;
  code &= s.mask;
  if (s.path != kScanNibble) {
    for (int i = 0; i < 4; ++i) out[i] = static_cast<uint8_t>(code >> (8 * i));
    return;
  }
  // Table j, entry v: the distance nibble value v at bits [4j, 4j + 4) adds. Every field lies
  // inside one nibble (Hamming: bits; L1: q = 2 or 4), fields past n add nothing.
  for (int j = 0; j < s.planes; ++j) {
    const uint32_t bits = (s.mask >> (4 * j)) & 15u, qn = (code >> (4 * j)) & 15u;
    for (uint32_t v = 0; v < 16; ++v) {
      uint32_t d = 0;
      if (s.hamming) {
        d = popcount32((v ^ qn) & bits);
      } else {
        const uint32_t f = (1u << s.q) - 1u;
        for (int t = 0; t < 4 / s.q; ++t) {
          if (j * (4 / s.q) + t >= s.n) break;
          const uint32_t a = (v >> (t * s.q)) & f, b = (qn >> (t * s.q)) & f;
          d += a > b ? a - b : b - a;
        }
      }
      out[16 * j + v] = static_cast<uint8_t>(d);
    }
  }
}

void scan_knn_drive(const CodeScanShape& shape, const int32_t* database, const int32_t* queries, int64_t k,
                    int32_t* indices, uint32_t* distances, const ScanSpec& spec, const ScanInner& inner) {
  const int64_t count = shape.count, nq = shape.queries;
  if (nq <= 0) return;
  if (count <= 0) {
    for (int64_t i = 0; i < nq * k; ++i) {
      indices[i] = -1;
      distances[i] = 0xffffffffu;
    }
    return;
  }
  const int threads = thread_count();
  Plan plan = make_plan(count, nq, threads);
  auto heap_cap = [&](const Plan& p) {
    const int64_t longest = ((p.blocks + p.chunks - 1) / p.chunks) * kScanBlock;
    return std::min<int64_t>(k, std::min<int64_t>(longest, count));
  };
  // More chunks mean more keys kept in all: not past kMaxHeapBytes, and a chunk at least 8 k long.
  while (plan.chunks > 1 && (nq * plan.chunks * heap_cap(plan) * 16 > kMaxHeapBytes ||
                             (plan.blocks / plan.chunks) * kScanBlock < 8 * k))
    --plan.chunks;
  const int64_t cap = heap_cap(plan);
  std::vector<uint64_t> keys(static_cast<size_t>(nq * plan.chunks * cap * 2));
  std::vector<int64_t> sizes(static_cast<size_t>(nq * plan.chunks), 0);
  const std::vector<uint8_t> prepared_queries = prepare_queries(spec, queries, nq);
  const int64_t units = plan.groups * plan.chunks;
  std::atomic<int64_t> next{0};

  parallel_for(threads, [&](int64_t, int64_t, int) {
    AlignedBuffer block(static_cast<size_t>(kScanBlock * inner.prepared_bytes_per_code / 4 + 16));
    uint8_t* prepared = reinterpret_cast<uint8_t*>(block.data());
    std::vector<TopK> heaps(static_cast<size_t>(plan.group));
    for (int64_t u = next.fetch_add(1); u < units; u = next.fetch_add(1)) {
      const int64_t g = u / plan.chunks, c = u % plan.chunks;
      const int64_t q0 = g * plan.group, q1 = std::min(nq, q0 + plan.group);
      const int64_t b0 = plan.chunk_begin(c), b1 = plan.chunk_begin(c + 1);
      const int64_t length = std::min(count, b1 * kScanBlock) - b0 * kScanBlock;
      for (int64_t qi = q0; qi < q1; ++qi) {
        TopK& h = heaps[qi - q0];
        h.keys = keys.data() + (qi * plan.chunks + c) * cap * 2;
        h.size = 0;
        h.cap = std::min(cap, length);
        h.limit = ~uint64_t(0);
      }
      for (int64_t b = b0; b < b1; ++b) {
        const int64_t base = b * kScanBlock, n = std::min(kScanBlock, count - base);
        const uint8_t* data = reinterpret_cast<const uint8_t*>(database + base);
        if (!inner.direct || n < kScanBlock) {
          inner.prepare(spec, database + base, n, prepared);
          data = prepared;
        }
        for (int64_t qi = q0; qi < q1; ++qi) {
          TopK& h = heaps[qi - q0];
          if ((h.limit >> 32) == 0) continue;  // nothing can get closer
          inner.knn(spec, data, n, base, prepared_queries.data() + qi * kScanQueryBytes, &h);
        }
      }
      for (int64_t qi = q0; qi < q1; ++qi) {
        scan_topk_compact(&heaps[qi - q0]);
        sizes[qi * plan.chunks + c] = heaps[qi - q0].size;
      }
    }
  });

  parallel_for(nq, [&](int64_t q0, int64_t q1, int) {
    std::vector<uint64_t> merged;
    for (int64_t qi = q0; qi < q1; ++qi) {
      merged.clear();
      for (int64_t c = 0; c < plan.chunks; ++c) {
        const uint64_t* h = keys.data() + (qi * plan.chunks + c) * cap * 2;
        merged.insert(merged.end(), h, h + sizes[qi * plan.chunks + c]);
      }
      const int64_t keep = std::min<int64_t>(k, static_cast<int64_t>(merged.size()));
      if (keep < static_cast<int64_t>(merged.size())) std::nth_element(merged.begin(), merged.begin() + keep, merged.end());
      std::sort(merged.begin(), merged.begin() + keep);
      for (int64_t j = 0; j < k; ++j) {
        const bool real = j < keep;
        indices[qi * k + j] = real ? static_cast<int32_t>(merged[j] & 0xffffffffu) : -1;
        distances[qi * k + j] = real ? static_cast<uint32_t>(merged[j] >> 32) : 0xffffffffu;
      }
    }
  });
}

void scan_range_drive(const CodeScanShape& shape, const int32_t* database, const int32_t* queries, uint32_t radius,
                      const CodeRangeOutput& out, const ScanSpec& spec, const ScanInner& inner) {
  const int64_t count = shape.count, nq = shape.queries;
  out.offsets[0] = 0;
  if (nq <= 0 || count <= 0) {
    for (int64_t i = 0; i < nq; ++i) out.offsets[i + 1] = 0;
    int32_t* idx = nullptr;
    uint32_t* dst = nullptr;
    out.allocate(out.context, 0, &idx, &dst);
    return;
  }
  const int threads = thread_count();
  const Plan plan = make_plan(count, nq, threads);
  struct Hits {
    std::vector<int32_t> index;
    std::vector<uint32_t> distance;
  };
  std::vector<Hits> hits(static_cast<size_t>(nq * plan.chunks));
  const std::vector<uint8_t> prepared_queries = prepare_queries(spec, queries, nq);
  const int64_t units = plan.groups * plan.chunks;
  std::atomic<int64_t> next{0};

  parallel_for(threads, [&](int64_t, int64_t, int) {
    AlignedBuffer block(static_cast<size_t>(kScanBlock * inner.prepared_bytes_per_code / 4 + 16));
    uint8_t* prepared = reinterpret_cast<uint8_t*>(block.data());
    std::vector<uint32_t> offs(kScanBlock), dist(kScanBlock);
    for (int64_t u = next.fetch_add(1); u < units; u = next.fetch_add(1)) {
      const int64_t g = u / plan.chunks, c = u % plan.chunks;
      const int64_t q0 = g * plan.group, q1 = std::min(nq, q0 + plan.group);
      for (int64_t b = plan.chunk_begin(c); b < plan.chunk_begin(c + 1); ++b) {
        const int64_t base = b * kScanBlock, n = std::min(kScanBlock, count - base);
        const uint8_t* data = reinterpret_cast<const uint8_t*>(database + base);
        if (!inner.direct || n < kScanBlock) {
          inner.prepare(spec, database + base, n, prepared);
          data = prepared;
        }
        for (int64_t qi = q0; qi < q1; ++qi) {
          const int64_t found = inner.range(spec, data, n, prepared_queries.data() + qi * kScanQueryBytes, radius,
                                            offs.data(), dist.data());
          Hits& h = hits[qi * plan.chunks + c];
          for (int64_t i = 0; i < found; ++i) {
            h.index.push_back(static_cast<int32_t>(base + offs[i]));
            h.distance.push_back(dist[i]);
          }
        }
      }
    }
  });

  for (int64_t qi = 0; qi < nq; ++qi) {
    int64_t n = 0;
    for (int64_t c = 0; c < plan.chunks; ++c) n += static_cast<int64_t>(hits[qi * plan.chunks + c].index.size());
    out.offsets[qi + 1] = out.offsets[qi] + n;
  }
  const int64_t total = out.offsets[nq];
  if (total > INT32_MAX)
    throw Error("E_ARG", "range scan found " + std::to_string(total) + " results, more than 2^31 - 1: use a smaller radius or fewer queries");
  int32_t* idx = nullptr;
  uint32_t* dst = nullptr;
  out.allocate(out.context, total, &idx, &dst);
  parallel_for(nq, [&](int64_t q0, int64_t q1, int) {
    for (int64_t qi = q0; qi < q1; ++qi) {
      int64_t at = out.offsets[qi];
      for (int64_t c = 0; c < plan.chunks; ++c) {
        Hits& h = hits[qi * plan.chunks + c];
        std::copy(h.index.begin(), h.index.end(), idx + at);
        std::copy(h.distance.begin(), h.distance.end(), dst + at);
        at += static_cast<int64_t>(h.index.size());
        std::vector<int32_t>().swap(h.index);
        std::vector<uint32_t>().swap(h.distance);
      }
    }
  });
}

}  // namespace dcl
