// Exhaustive scans over packed codes, serial reference (plain C++, kept obviously correct; the
// SIMD paths share scan_driver.cpp instead). Threads over queries only; each query walks the
// whole database in index order.
//
// k nearest: every code's key (distance << 32 | index) is offered to a bounded max-heap of the k
// smallest keys (a code replaces the worst kept one when its key is smaller), then the heap is
// sorted: the k smallest (distance, index) pairs, ties broken by the smaller index.
// Range: every code with distance <= radius, in index order.
#include <algorithm>
#include <vector>

#include "dcl/parallel.h"
#include "ops.h"

namespace dcl {
namespace serial {
namespace {

uint32_t popcount32(uint32_t x) {
  x = x - ((x >> 1) & 0x55555555u);
  x = (x & 0x33333333u) + ((x >> 2) & 0x33333333u);
  x = (x + (x >> 4)) & 0x0f0f0f0fu;
  return (x * 0x01010101u) >> 24;
}

// The distance of code_distances (quantize_serial.cpp).
struct Metric {
  int n, q;
  bool hamming;
  uint32_t mask, field;
  Metric(const CodeScanShape& s)
      : n(s.n), q(s.q), hamming(s.hamming || s.q == 1),
        mask(s.n * s.q >= 32 ? 0xffffffffu : (1u << (s.n * s.q)) - 1u),
        field(s.q >= 32 ? 0xffffffffu : (1u << s.q) - 1u) {}
  uint32_t operator()(int32_t a, int32_t b) const {
    const uint32_t x = static_cast<uint32_t>(a), y = static_cast<uint32_t>(b);
    if (hamming) return popcount32((x ^ y) & mask);
    uint32_t s = 0;
    for (int i = 0; i < n; ++i) {
      const uint32_t u = (x >> (i * q)) & field, v = (y >> (i * q)) & field;
      s += u > v ? u - v : v - u;
    }
    return s;
  }
};

}  // namespace

void code_knn(const CodeScanShape& s, const int32_t* database, const int32_t* queries, int64_t k,
              int32_t* indices, uint32_t* distances) {
  const Metric dist(s);
  const int64_t keep = std::min<int64_t>(k, s.count);
  parallel_for(s.queries, [&](int64_t q0, int64_t q1, int) {
    std::vector<uint64_t> heap;  // max-heap of keys
    heap.reserve(static_cast<size_t>(keep));
    for (int64_t qi = q0; qi < q1; ++qi) {
      heap.clear();
      for (int64_t x = 0; x < s.count; ++x) {
        const uint64_t key = (static_cast<uint64_t>(dist(database[x], queries[qi])) << 32) | static_cast<uint64_t>(x);
        if (static_cast<int64_t>(heap.size()) < keep) {
          heap.push_back(key);
          std::push_heap(heap.begin(), heap.end());
        } else if (keep > 0 && key < heap.front()) {
          std::pop_heap(heap.begin(), heap.end());
          heap.back() = key;
          std::push_heap(heap.begin(), heap.end());
        }
      }
      std::sort(heap.begin(), heap.end());
      for (int64_t j = 0; j < k; ++j) {
        const bool real = j < static_cast<int64_t>(heap.size());
        indices[qi * k + j] = real ? static_cast<int32_t>(heap[j] & 0xffffffffu) : -1;
        distances[qi * k + j] = real ? static_cast<uint32_t>(heap[j] >> 32) : 0xffffffffu;
      }
    }
  });
}

void code_range(const CodeScanShape& s, const int32_t* database, const int32_t* queries, uint32_t radius,
                const CodeRangeOutput& out) {
  const Metric dist(s);
  std::vector<std::vector<uint64_t>> hits(static_cast<size_t>(s.queries));  // (index, distance)
  parallel_for(s.queries, [&](int64_t q0, int64_t q1, int) {
    for (int64_t qi = q0; qi < q1; ++qi)
      for (int64_t x = 0; x < s.count; ++x) {
        const uint32_t d = dist(database[x], queries[qi]);
        if (d <= radius) hits[qi].push_back((static_cast<uint64_t>(x) << 32) | d);
      }
  });
  out.offsets[0] = 0;
  for (int64_t qi = 0; qi < s.queries; ++qi) out.offsets[qi + 1] = out.offsets[qi] + static_cast<int64_t>(hits[qi].size());
  const int64_t total = out.offsets[s.queries];
  if (total > INT32_MAX)
    throw Error("E_ARG", "range scan found " + std::to_string(total) + " results, more than 2^31 - 1: use a smaller radius or fewer queries");
  int32_t* idx = nullptr;
  uint32_t* dst = nullptr;
  out.allocate(out.context, total, &idx, &dst);
  for (int64_t qi = 0; qi < s.queries; ++qi)
    for (size_t j = 0; j < hits[qi].size(); ++j) {
      idx[out.offsets[qi] + static_cast<int64_t>(j)] = static_cast<int32_t>(hits[qi][j] >> 32);
      dst[out.offsets[qi] + static_cast<int64_t>(j)] = static_cast<uint32_t>(hits[qi][j] & 0xffffffffu);
    }
}

}  // namespace serial
}  // namespace dcl
