// Exhaustive scans over packed codes: the inner loops shared by scan_avx2.cpp,
// scan_avx512.cpp and scan_avx512vpopcnt.cpp (see scan.h for the two paths). Not compiled on its
// own: each of those files first defines, in an anonymous namespace,
//   byte vectors (nibble path): kW (bytes = codes per group), VB, BM (bit mask of kW bits),
//     b_table (a 16-byte table in every 128-bit lane), b_load / b_store (aligned), b_lookup
//     (vpshufb), b_add (bytes), b_set1, b_lt (mask of d < bound, byte values < 128) and
//     nib_prepare_group<P> (kW codes -> P nibble planes, natural order: plane j byte p is
//     nibble j of code p);
//   32-bit vectors (lanes path): kL, VD, d_load (unaligned), d_store (aligned), d_set1, d_xor, d_and, d_add,
//     d_le (mask of unsigned d <= limit), d_bytes_l1 (sum over the 4 bytes of |x_b - y_b|),
//     d_field_absdiff (|field of x - field of y| at a shift), d_popcount; DCL_SCAN_HAS_POPCOUNT
//     says whether d_popcount is one instruction (then Hamming always takes the lanes path);
// then includes this file inside its own namespace. Everything here has internal linkage.

namespace {

// ---- the k best keys (scan.h, TopK) -------------------------------------------------------------

// Codes with a distance below the returned bound can still enter: 2^32 (everything) until the
// first compaction, then the distance of the k-th best key (0: nothing can enter).
inline uint64_t heap_bound(const TopK* h) { return h->limit == ~uint64_t(0) ? (uint64_t(1) << 32) : h->limit >> 32; }

inline void heap_offer(TopK* h, uint64_t key) {
  if (key >= h->limit) return;
  h->keys[h->size++] = key;
  if (h->size == 2 * h->cap) scan_topk_compact(h);
}

inline int lowest_bit(uint64_t m) { return __builtin_ctzll(m); }

// ---- nibble path --------------------------------------------------------------------------------

template <int P>
void nib_prepare(const ScanSpec&, const int32_t* codes, int64_t count, uint8_t* out) {
  const int64_t whole = count / kW;
  for (int64_t g = 0; g < whole; ++g) nib_prepare_group<P>(codes + g * kW, out + g * P * kW);
  const int64_t rest = count - whole * kW;
  if (rest > 0) {
    alignas(64) int32_t tail[kW];
    for (int64_t i = 0; i < kW; ++i) tail[i] = i < rest ? codes[whole * kW + i] : 0;
    nib_prepare_group<P>(tail, out + whole * P * kW);
  }
}

// Bits [0, rest) of a group mask (rest < kW).
inline BM first_bits(int64_t rest) { return (BM(1) << rest) - 1; }

template <int P>
inline VB nib_distances(const VB* table, const uint8_t* planes) {
  VB d = b_lookup(table[0], b_load(planes));
  for (int j = 1; j < P; ++j) d = b_add(d, b_lookup(table[j], b_load(planes + j * kW)));
  return d;
}

template <int P>
void nib_knn(const ScanSpec& s, const uint8_t* block, int64_t count, int64_t base, const uint8_t* query, TopK* heap) {
  VB table[P];
  for (int j = 0; j < P; ++j) table[j] = b_table(query + 16 * j);
  const uint64_t all = uint64_t(s.max_distance) + 1;  // <= 121
  uint64_t bound = heap_bound(heap);
  if (bound == 0) return;
  VB limit = b_set1(static_cast<uint32_t>(bound < all ? bound : all));
  const int64_t groups = (count + kW - 1) / kW;
  for (int64_t g = 0; g < groups; ++g) {
    const VB d = nib_distances<P>(table, block + g * P * kW);
    BM m = b_lt(d, limit);
    if (m == 0) continue;
    if (count - g * kW < kW) m &= first_bits(count - g * kW);
    if (m == 0) continue;
    alignas(64) uint8_t dist[kW];
    b_store(dist, d);
    const uint64_t first = static_cast<uint64_t>(base + g * kW);
    do {
      const int p = lowest_bit(m);
      m &= m - 1;
      heap_offer(heap, (uint64_t(dist[p]) << 32) | (first + static_cast<uint64_t>(p)));
    } while (m != 0);
    bound = heap_bound(heap);
    if (bound == 0) return;
    limit = b_set1(static_cast<uint32_t>(bound < all ? bound : all));
  }
}

template <int P>
int64_t nib_range(const ScanSpec& s, const uint8_t* block, int64_t count, const uint8_t* query, uint32_t radius,
                  uint32_t* offsets, uint32_t* distances) {
  VB table[P];
  for (int j = 0; j < P; ++j) table[j] = b_table(query + 16 * j);
  const uint32_t r = radius < s.max_distance ? radius : s.max_distance;
  const VB limit = b_set1(r + 1);  // <= 121
  const int64_t groups = (count + kW - 1) / kW;
  int64_t found = 0;
  for (int64_t g = 0; g < groups; ++g) {
    const VB d = nib_distances<P>(table, block + g * P * kW);
    BM m = b_lt(d, limit);
    if (m == 0) continue;
    if (count - g * kW < kW) m &= first_bits(count - g * kW);
    if (m == 0) continue;
    alignas(64) uint8_t dist[kW];
    b_store(dist, d);
    do {
      const int p = lowest_bit(m);
      m &= m - 1;
      offsets[found] = static_cast<uint32_t>(g * kW + p);
      distances[found++] = dist[p];
    } while (m != 0);
  }
  return found;
}

// ---- lanes path ---------------------------------------------------------------------------------

void lanes_prepare(const ScanSpec&, const int32_t* codes, int64_t count, uint8_t* out) {
  uint32_t* o = reinterpret_cast<uint32_t*>(out);
  for (int64_t i = 0; i < count; ++i) o[i] = static_cast<uint32_t>(codes[i]);
  const int64_t padded = (count + kL - 1) / kL * kL;
  for (int64_t i = count; i < padded; ++i) o[i] = 0;
}

inline uint32_t query_code(const uint8_t* q) {
  return uint32_t(q[0]) | uint32_t(q[1]) << 8 | uint32_t(q[2]) << 16 | uint32_t(q[3]) << 24;
}

template <int Kind>
inline VD lane_distances(const ScanSpec& s, VD x, VD qv, VD mask, VD field) {
  if constexpr (Kind == kLanePopcount) {
    (void)s; (void)field;
    return d_popcount(d_and(d_xor(x, qv), mask));
  } else if constexpr (Kind == kLaneBytes) {
    (void)s; (void)field;
    return d_bytes_l1(d_and(x, mask), qv);
  } else {
    (void)mask;
    VD sum = d_field_absdiff(x, qv, 0, field);
    for (int i = 1; i < s.n; ++i) sum = d_add(sum, d_field_absdiff(x, qv, i * s.q, field));
    return sum;
  }
}

template <int Kind>
void lanes_knn(const ScanSpec& s, const uint8_t* block, int64_t count, int64_t base, const uint8_t* query, TopK* heap) {
  const uint32_t* codes = reinterpret_cast<const uint32_t*>(block);
  const VD qv = d_set1(query_code(query));
  const VD mask = d_set1(s.mask);
  const VD field = d_set1(s.q >= 32 ? 0xffffffffu : (1u << s.q) - 1u);
  uint64_t bound = heap_bound(heap);
  if (bound == 0) return;
  VD limit = d_set1(static_cast<uint32_t>(bound - 1));  // d < bound <=> d <= bound - 1
  for (int64_t g = 0; g * kL < count; ++g) {
    const VD d = lane_distances<Kind>(s, d_load(codes + g * kL), qv, mask, field);
    uint32_t m = d_le(d, limit);
    if (m == 0) continue;
    if (count - g * kL < kL) m &= (1u << (count - g * kL)) - 1u;
    if (m == 0) continue;
    alignas(64) uint32_t dist[kL];
    d_store(dist, d);
    const uint64_t first = static_cast<uint64_t>(base + g * kL);
    do {
      const int p = lowest_bit(m);
      m &= m - 1;
      heap_offer(heap, (uint64_t(dist[p]) << 32) | (first + static_cast<uint64_t>(p)));
    } while (m != 0);
    bound = heap_bound(heap);
    if (bound == 0) return;
    limit = d_set1(static_cast<uint32_t>(bound - 1));
  }
}

template <int Kind>
int64_t lanes_range(const ScanSpec& s, const uint8_t* block, int64_t count, const uint8_t* query, uint32_t radius,
                    uint32_t* offsets, uint32_t* distances) {
  const uint32_t* codes = reinterpret_cast<const uint32_t*>(block);
  const VD qv = d_set1(query_code(query));
  const VD mask = d_set1(s.mask);
  const VD field = d_set1(s.q >= 32 ? 0xffffffffu : (1u << s.q) - 1u);
  const VD limit = d_set1(radius);
  int64_t found = 0;
  for (int64_t g = 0; g * kL < count; ++g) {
    const VD d = lane_distances<Kind>(s, d_load(codes + g * kL), qv, mask, field);
    uint32_t m = d_le(d, limit);
    if (m == 0) continue;
    if (count - g * kL < kL) m &= (1u << (count - g * kL)) - 1u;
    if (m == 0) continue;
    alignas(64) uint32_t dist[kL];
    d_store(dist, d);
    do {
      const int p = lowest_bit(m);
      m &= m - 1;
      offsets[found] = static_cast<uint32_t>(g * kL + p);
      distances[found++] = dist[p];
    } while (m != 0);
  }
  return found;
}

// ---- selection ----------------------------------------------------------------------------------

template <int P>
void use_nibbles(ScanInner& in) {
  in.prepare = nib_prepare<P>;
  in.knn = nib_knn<P>;
  in.range = nib_range<P>;
}

template <int Kind>
void use_lanes(ScanInner& in) {
  in.knn = lanes_knn<Kind>;
  in.range = lanes_range<Kind>;
}

// Hamming: vpopcntd where the file has it, else the nibble tables (vpshufb), except for groups
// of fewer than 4 queries, which do not pay back the transposition of each block (then a vpshufb
// popcount per lane); L1 q = 2, 4: nibble tables (same rule); q = 8: byte differences; any other
// q: field by field.
void select_inner(ScanSpec& s, ScanInner& in, int64_t group_queries) {
  const bool few = group_queries < 4;
  const bool nibble = s.hamming ? !(DCL_SCAN_HAS_POPCOUNT || few) : ((s.q == 2 || s.q == 4) && !few);
  if (nibble) {
    s.path = kScanNibble;
    s.planes = (s.n * s.q + 3) / 4;
    in.group = kW;
    in.prepared_bytes_per_code = s.planes;
    switch (s.planes) {
      case 1: use_nibbles<1>(in); break;
      case 2: use_nibbles<2>(in); break;
      case 3: use_nibbles<3>(in); break;
      case 4: use_nibbles<4>(in); break;
      case 5: use_nibbles<5>(in); break;
      case 6: use_nibbles<6>(in); break;
      case 7: use_nibbles<7>(in); break;
      default: use_nibbles<8>(in); break;
    }
    return;
  }
  s.path = kScanLanes;
  in.direct = true;
  in.group = kL;
  in.prepared_bytes_per_code = 4;
  in.prepare = lanes_prepare;
  if (s.hamming) {
    s.kind = kLanePopcount;
    use_lanes<kLanePopcount>(in);
  } else if (s.q == 8) {
    s.kind = kLaneBytes;
    use_lanes<kLaneBytes>(in);
  } else {
    s.kind = kLaneFields;
    use_lanes<kLaneFields>(in);
  }
}

}  // namespace
