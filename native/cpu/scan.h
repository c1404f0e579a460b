// Exhaustive scans over packed codes (k nearest, range): what the ISA files and the shared driver
// (scan_driver.cpp) exchange. See kernels.h (CodeKnnFn, CodeRangeFn) for the public contract.
//
// The driver (plain C++: threads, work units, allocation, merging, sorting) cuts the database into
// blocks of kScanBlock codes and the queries into groups; a work unit is one query group over one
// contiguous chunk of blocks. For each block it asks the ISA to `prepare` it once (a transposed
// copy that stays in L1), then runs every query of the group over it with the ISA's `knn` or
// `range` inner loop. The ISA files supply only those three loops (no library code: see
// dcl/parallel.h on why ISA-flagged files must not instantiate shared inline or template code).
//
// Two inner-loop families ("paths"):
// - nibble: the block is stored as nibble planes (plane j, byte p = bits [4j, 4j + 4) of code p of
//   a group of `group` codes); the query becomes one 16-entry table per plane, table_j[v] = the
//   distance contributed by nibble value v at plane j; a distance is the byte sum of `planes`
//   table lookups (vpshufb). Works whenever every field lies inside one nibble: Hamming on any
//   layout (popcount tables) and L1 for q = 1, 2, 4. Distances <= 120 fit a byte.
// - lanes: the block is a plain copy of the codes (zero-padded), `group` codes per 32-bit vector;
//   kind popcount (Hamming with VPOPCNTDQ), bytes (L1 for q = 8: per-byte |a - b| summed) or fields
//   (generic L1 over n q-bit fields, any q up to 32).
#pragma once

#include <cstdint>

#include "dcl/kernels.h"

namespace dcl {

// Codes per database block: the nibble planes of a block (8 bytes a code) fill 16 KiB of L1.
constexpr int64_t kScanBlock = 2048;
// Bytes of one prepared query (nibble: up to 8 tables of 16 bytes; lanes: the code).
constexpr int kScanQueryBytes = 128;

enum ScanPath : int { kScanNibble = 0, kScanLanes = 1 };
enum ScanLaneKind : int { kLanePopcount = 0, kLaneBytes = 1, kLaneFields = 2 };

struct ScanSpec {
  int n = 0, q = 0;
  bool hamming = false;     // the metric: Hamming over the n q bits (also q = 1), else L1
  uint32_t mask = 0;        // the layout's n q bits
  uint32_t max_distance = 0;  // n q (Hamming) or n (2^q - 1) (L1)
  int path = kScanNibble;
  int planes = 0;           // nibble: ceil(n q / 4)
  int kind = kLaneFields;   // lanes
};

// The k best (distance, index) pairs seen so far, as keys (distance << 32 | index: one integer
// compare orders by distance, then index) in an unordered buffer of up to 2 cap keys: a key
// enters when it is below `limit`; when the buffer is full, scan_topk_compact keeps the cap
// smallest and lowers `limit` to the largest of them (amortized O(1) per key for any k).
// The database is offered in index order, so a new code enters iff its distance is below
// limit >> 32 (scan_bound): one compare rejects a code.
struct TopK {
  uint64_t* keys = nullptr;  // [2 cap]
  int64_t size = 0;
  int64_t cap = 0;  // >= 1
  uint64_t limit = ~uint64_t(0);
};
// Keeps the cap smallest keys (when more are held) and sets limit to the largest of them.
void scan_topk_compact(TopK* t);

struct ScanInner {
  int group = 0;                     // codes per prepared group (vector width)
  // The inner loops can read a whole block (kScanBlock codes) of the database in place, unaligned:
  // prepare is needed only for the last, partial block.
  bool direct = false;
  int64_t prepared_bytes_per_code = 0;
  // codes[0, count) (count <= kScanBlock) -> the prepared block at out (64-byte aligned,
  // kScanBlock * prepared_bytes_per_code bytes), tails padded to whole groups.
  void (*prepare)(const ScanSpec&, const int32_t* codes, int64_t count, uint8_t* out);
  // Offers every code of the block (database indices base .. base + count - 1, in that order of
  // precedence) to the heap: the result is as if each key were inserted one by one.
  void (*knn)(const ScanSpec&, const uint8_t* block, int64_t count, int64_t base, const uint8_t* query,
              TopK* heap);
  // Writes the block offsets (ascending) and distances of the codes within `radius`; returns how
  // many (<= count).
  int64_t (*range)(const ScanSpec&, const uint8_t* block, int64_t count, const uint8_t* query, uint32_t radius,
                   uint32_t* offsets, uint32_t* distances);
};

// Queries per group for Q queries (the ISA chooses its loops by it).
int64_t scan_group_queries(int64_t queries);
// The spec of a layout / metric (path and planes still to be chosen by the ISA).
ScanSpec scan_spec(int n, int q, bool hamming);
// The prepared query: nibble tables or the masked code (driver side, plain C++).
void scan_prepare_query(const ScanSpec& spec, uint32_t code, uint8_t* out);

void scan_knn_drive(const CodeScanShape& shape, const int32_t* database, const int32_t* queries, int64_t k,
                    int32_t* indices, uint32_t* distances, const ScanSpec& spec, const ScanInner& inner);
void scan_range_drive(const CodeScanShape& shape, const int32_t* database, const int32_t* queries, uint32_t radius,
                      const CodeRangeOutput& out, const ScanSpec& spec, const ScanInner& inner);

// cpuid: AVX-512 VPOPCNTDQ (the avx512 table is only used where the AVX-512 state is enabled).
bool cpu_has_avx512_vpopcntdq();

namespace avx512vpopcnt {
// The AVX-512 inner loops built with -mavx512vpopcntdq (scan_avx512vpopcnt.cpp): Hamming by
// vpopcntd on 16 codes per vector. Chooses spec.path / kind and fills inner.
void scan_select(ScanSpec& spec, ScanInner& inner, int64_t group_queries);
}  // namespace avx512vpopcnt

}  // namespace dcl
