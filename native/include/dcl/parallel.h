// A small persistent thread pool for the CPU kernels.
//
// parallel_for splits [0, n) into contiguous chunks, one per pool thread, numbered 0..threads-1
// (the `thread` argument is that chunk number, fixed by the split), and runs them on the pool's
// workers plus the calling thread: each thread claims the next unrun chunk, so a caller whose
// workers are slow to wake (a loaded machine) runs the chunks itself instead of waiting. A chunk
// runs on exactly one OS thread, but which one is not fixed: per-chunk state belongs in arrays
// indexed by the chunk number, per-OS-thread scratch in thread_scratch. The pool runs one
// parallel region at a time; a call made while another region is running (from a second JS
// worker thread, or from inside a region) runs serially on the caller instead of waiting, so it
// can never deadlock.
//
// Kernels compiled with ISA flags (-mavx2, -mavx512f) must not instantiate shared inline or
// template code (std::function, std::vector, std::max ...): the linker may keep the AVX-512 copy
// and hand it to the serial path. So the pool's entry point takes a plain function pointer, and
// the template below is instantiated once per lambda type, which is unique to its translation unit.
#pragma once

#include <cstddef>
#include <cstdint>
#include <type_traits>

namespace dcl {

using RangeFn = void (*)(void* context, int64_t begin, int64_t end, int thread);

// Threads the pool uses (the caller included); at least 1.
int thread_count();
// Resizes the pool; n >= 1.
void set_thread_count(int n);
// Number of cores the OS reports.
int hardware_threads();

void parallel_for_raw(int64_t n, RangeFn fn, void* context);
// Runs fn(thread) once on each of `threads` threads (threads <= thread_count()), pool thread t
// running fn(t), all at the same time (the FMA peak measurement needs that).
void parallel_run_raw(int threads, void (*fn)(void* context, int thread), void* context);

template <class F>
inline void parallel_for(int64_t n, F&& f) {
  using Fn = typename std::remove_reference<F>::type;
  parallel_for_raw(
      n,
      [](void* ctx, int64_t begin, int64_t end, int thread) {
        (*static_cast<Fn*>(ctx))(begin, end, thread);
      },
      const_cast<void*>(static_cast<const void*>(&f)));
}

// 64-byte aligned scratch memory owned by the calling OS thread, slot `slot` (0..3), kept between
// calls so a training step does not allocate. Grows as needed; contents are not preserved.
float* thread_scratch(int slot, size_t floats);

// 64-byte aligned buffer freed when it goes out of scope.
class AlignedBuffer {
 public:
  explicit AlignedBuffer(size_t floats);
  ~AlignedBuffer();
  AlignedBuffer(const AlignedBuffer&) = delete;
  AlignedBuffer& operator=(const AlignedBuffer&) = delete;
  float* data() { return data_; }

 private:
  float* data_;
};

}  // namespace dcl
