// Face search over the bins of a code layout (paper section 3.2): every code is a bin, a query
// visits the occupied bins in ascending distance (Hamming for q = 1, L1 over the n q-bit
// dimensions otherwise), ties among bins at one distance in ascending code (as uint32), and
// collects their faces in insertion order.
//
// The index is a set of plain arrays owned by the caller (lib/bin-index.ts keeps them in typed
// arrays, so nothing here outlives a call):
// - codes[B]: the occupied bins' codes, ascending (as uint32);
// - start[B + 1]: bin b holds the faces at positions [start[b], start[b + 1]);
// - keys[S], vals[S] (S a power of two): an open-addressing hash table (linear probing,
//   multiplicative hash) from a bin's code to its index b; an empty slot has key 0xFFFFFFFF and
//   val 0xFFFFFFFF. The code 0xFFFFFFFF itself (only possible with n q = 32) is not put in the
//   table: `all_ones_bin` holds its index, or -1.
// A search returns face positions (indices into the caller's per-face arrays) and distances.
#pragma once

#include <cstdint>
#include <vector>

namespace dcl {

// Stable ascending argsort (LSD radix over 2 x 16 bits): order[i] = index of the i-th smallest.
void bins_argsort_u32(int64_t count, const uint32_t* keys, uint32_t* order);
// Stable ascending argsort of non-negative float64 keys (ids above 2^32).
void bins_argsort_f64(int64_t count, const double* keys, uint32_t* order);
// Groups sorted codes into bins: writes codes_out[B], start_out[B + 1] (both sized count + 1 by
// the caller), returns B.
int64_t bins_group(int64_t count, const uint32_t* sorted, uint32_t* codes_out, uint32_t* start_out);
// Hash table size for B bins: a power of two with load at most 0.7 (at least 16 slots).
int64_t bins_hash_slots(int64_t bins);
// Fills keys/vals (S slots each, S from bins_hash_slots); returns all_ones_bin (or -1).
int64_t bins_build_hash(int64_t bins, const uint32_t* codes, int64_t slots, uint32_t* keys, uint32_t* vals);

// The prefix directory over the top prefix_dims dimensions (t = prefix_dims q <= 24 bits):
// dir[p] = the first bin whose code >> ((n - prefix_dims) q) is >= p, for p = 0 .. 2^t (2^t + 1 entries).
void bins_build_prefix(int64_t bins, const uint32_t* codes, int n, int q, int prefix_dims, uint32_t* dir);

// Multi-index hashing (MIH) tables: the n dimensions split into `groups` contiguous groups, group 0
// the top dims[0] dimensions, group 1 the next dims[1], ... (group t covers bits [shift_t, shift_t +
// dims[t] q)). Table t lists, for every group value v, the occupied bins whose group t equals v:
// entries [off_t[v], off_t[v + 1]) of its arrays, ascending code. Table 0's order is the bins' own
// order (the codes are ascending), so it is only its offsets; tables 1 .. groups - 1 hold each
// entry's full code and bin index. `offsets` concatenates the tables' offsets (2^(dims[t] q) + 1
// each), `codes` / `bins` tables 1 .. groups - 1 (B entries each).
constexpr int kMihMaxGroups = 8;
constexpr int kMihMaxGroupBits = 20;
// Offsets entries of all tables together.
int64_t bins_mih_offsets_size(int n, int q, int groups, const int* dims);
// Fills the tables (offsets sized by bins_mih_offsets_size, codes / bins (groups - 1) B each).
void bins_build_mih(int64_t bins, const uint32_t* codes, int n, int q, int groups, const int* dims,
                    uint32_t* offsets, uint32_t* mcodes, uint32_t* mbins);

struct BinIndexView {
  int n = 0, q = 0;
  int64_t bins = 0;
  const uint32_t* codes = nullptr;
  const uint32_t* start = nullptr;
  int64_t slots = 0;  // 0: no hash table (rank strategy only)
  const uint32_t* keys = nullptr;
  const uint32_t* vals = nullptr;
  int64_t all_ones_bin = -1;
  int prefix_dims = 0;            // 0: no prefix directory
  const uint32_t* dir = nullptr;  // [2^(prefix_dims q) + 1]
  int mih_groups = 0;             // 0: no MIH tables
  int mih_dims[kMihMaxGroups] = {};
  const uint32_t* mih_offsets = nullptr;
  const uint32_t* mih_codes = nullptr;
  const uint32_t* mih_bins = nullptr;
};

enum class BinStrategy { rank = 0, enumerate = 1, prefix = 2, mih = 3 };

struct BinQuery {
  uint64_t k = UINT64_MAX;             // faces to return at most
  uint64_t max_bins = UINT64_MAX;      // occupied bins to visit at most
  uint64_t max_distance = UINT64_MAX;  // bins beyond this distance are not visited
  BinStrategy strategy = BinStrategy::rank;
};

struct BinStats {
  int64_t enumerated = 0;  // neighbouring codes (enumerate), prefixes (prefix) or group values (mih) generated
  int64_t probed = 0;      // hash slots read (enumerate), bins whose distance was computed (rank, prefix, mih)
  int64_t visited = 0;     // occupied bins whose faces were collected
};

struct BinResult {
  std::vector<uint32_t> positions;
  std::vector<uint32_t> distances;
  BinStats stats;
};

// One query. Stops after max_bins visited bins, after k faces, or beyond max_distance; a k-search
// is exact (the k first faces of the full visiting order). All strategies give identical results.
void bins_search(const BinIndexView& index, uint32_t query, const BinQuery& options, BinResult& out);
// Many queries on the thread pool (one BinResult per query); the threads take blocks of queries
// from a shared counter, so a slow or late thread does not hold the batch up.
void bins_search_batch(const BinIndexView& index, int64_t count, const uint32_t* queries,
                       const BinQuery& options, BinResult* out);

}  // namespace dcl
