#include "dcl/parallel.h"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <exception>
#include <cstdlib>
#include <mutex>
#include <new>
#include <thread>
#include <vector>

#include "dcl/kernels.h"

namespace dcl {
namespace {

struct Task {
  void (*run)(void* context, int thread) = nullptr;
  void* context = nullptr;
  int threads = 0;
  // Pinned: pool thread t runs task t (parallel_run_raw: the FMA peak needs its threads at once).
  // Otherwise any thread claims any task (parallel_for): tasks are fixed ranges with a fixed index,
  // so the results do not depend on which OS thread runs which, and a caller whose workers are
  // slow to wake (a loaded machine) runs the tasks itself instead of waiting for them.
  bool pinned = false;
};

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}

// How long a worker spins waiting for the next region (and the caller for the workers) before
// sleeping on a condition variable. A training step or a batch-1 forward pass runs many short
// parallel regions separated by a little JavaScript (tens of microseconds), and waking a sleeping
// thread costs 20-100 microseconds in a VM, more than many of those regions take. The spin is
// bounded in time, not in PAUSE instructions, whose latency varies from a few cycles (AMD Zen) to
// about 140 (Intel Skylake).
constexpr std::chrono::microseconds kSpinTime{300};

// Spins until done() or kSpinTime has passed; true when done() became true.
template <class Done>
bool spin_until(Done done) {
  const auto deadline = std::chrono::steady_clock::now() + kSpinTime;
  for (;;) {
    for (int i = 0; i < 64; ++i) {
      if (done()) return true;
      cpu_relax();
    }
    // On an oversubscribed machine (other processes, or several of ours) a spinning thread would
    // hold a core that a runnable thread needs; yielding gives it away and costs about a
    // microsecond when nothing else wants to run.
    std::this_thread::yield();
    if (std::chrono::steady_clock::now() >= deadline) return done();
  }
}

class ThreadPool {
 public:
  explicit ThreadPool(int threads) { resize(threads); }
  ~ThreadPool() { stop_workers(); }

  // Lock-free: kernels call it while planning their work, possibly while another JS thread holds
  // the pool.
  int size() const { return threads_.load(std::memory_order_relaxed); }

  void resize(int threads) {
    std::lock_guard<std::mutex> lock(region_mutex_);
    stop_workers();
    threads_.store(threads < 1 ? 1 : threads);
    stopping_.store(false);
    // A worker must start from the generation current now (no region is in flight: we hold
    // region_mutex_), not the one it reads once scheduled, which may already be the first task's.
    const uint64_t start = generation_.load();
    for (int t = 1; t < threads_.load(); ++t) workers_.emplace_back([this, t, start] { worker_loop(t, start); });
  }

  // Runs fn for tasks 0..threads-1 (see Task::pinned); the caller takes part.
  void run(int threads, void (*fn)(void*, int), void* context, bool pinned) {
    std::unique_lock<std::mutex> region(region_mutex_, std::try_to_lock);
    if (!region.owns_lock() || threads <= 1) {
      // Busy (another JS thread or a nested region) or nothing to share: run on the caller.
      for (int t = 0; t < threads; ++t) fn(context, t);
      return;
    }
    if (threads > size()) threads = size();
    uint64_t gen;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      task_.run = fn;
      task_.context = context;
      task_.threads = threads;
      task_.pinned = pinned;
      gen = generation_.load() + 1;
      claim_.store(gen << 16, std::memory_order_relaxed);
      finished_.store(0, std::memory_order_relaxed);
      generation_.store(gen, std::memory_order_release);
    }
    wake_.notify_all();
    if (pinned) {
      run_task(fn, context, 0, threads);
    } else {
      int t;
      while (claim(gen, threads, t)) run_task(fn, context, t, threads);
    }
    spin_until([&] { return finished_.load(std::memory_order_acquire) == threads; });
    std::unique_lock<std::mutex> lock(mutex_);
    done_.wait(lock, [&] { return finished_.load() == threads; });
    // An exception must never escape a worker thread (that would terminate the process): it is
    // carried back here and rethrown on the caller, which turns it into a JS error.
    std::exception_ptr error = error_;
    error_ = nullptr;
    lock.unlock();
    if (error) std::rethrow_exception(error);
  }

 private:
  // Takes the next unclaimed task of region `gen`; false when none is left (or the region is over).
  bool claim(uint64_t gen, int threads, int& t) {
    uint64_t v = claim_.load(std::memory_order_acquire);
    for (;;) {
      if ((v >> 16) != gen || static_cast<int>(v & 0xffff) >= threads) return false;
      if (claim_.compare_exchange_weak(v, v + 1, std::memory_order_acq_rel)) {
        t = static_cast<int>(v & 0xffff);
        return true;
      }
    }
  }

  void run_task(void (*fn)(void*, int), void* context, int t, int threads) {
    try {
      fn(context, t);
    } catch (...) {
      std::lock_guard<std::mutex> lock(mutex_);
      if (!error_) error_ = std::current_exception();
    }
    if (finished_.fetch_add(1, std::memory_order_acq_rel) + 1 == threads) {
      std::lock_guard<std::mutex> lock(mutex_);
      done_.notify_one();
    }
  }

  void worker_loop(int index, uint64_t seen) {
    for (;;) {
      spin_until([&] { return generation_.load(std::memory_order_acquire) != seen || stopping_.load(); });
      Task task;
      {
        std::unique_lock<std::mutex> lock(mutex_);
        wake_.wait(lock, [&] { return stopping_.load() || generation_.load() != seen; });
        if (stopping_.load()) return;
        seen = generation_.load();
        task = task_;
      }
      if (task.pinned) {
        if (index < task.threads) run_task(task.run, task.context, index, task.threads);
      } else {
        int t;
        while (claim(seen, task.threads, t)) run_task(task.run, task.context, t, task.threads);
      }
    }
  }

  void stop_workers() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stopping_.store(true);
    }
    wake_.notify_all();
    for (auto& w : workers_) w.join();
    workers_.clear();
  }

  std::mutex region_mutex_;
  std::mutex mutex_;
  std::condition_variable wake_, done_;
  std::vector<std::thread> workers_;
  Task task_;
  std::exception_ptr error_;
  std::atomic<uint64_t> generation_{0};
  std::atomic<uint64_t> claim_{0};  // (generation << 16) | next unclaimed task
  std::atomic<int> finished_{0};
  std::atomic<bool> stopping_{false};
  std::atomic<int> threads_{1};
};

ThreadPool& pool() {
  static ThreadPool instance(hardware_threads());
  return instance;
}

constexpr int kMaxThreads = 256;
constexpr int kScratchSlots = 4;

struct Scratch {
  float* data = nullptr;
  size_t floats = 0;
  ~Scratch() { std::free(data); }
};
thread_local Scratch t_scratch[kScratchSlots];

float* aligned_floats(size_t floats) {
  void* p = std::aligned_alloc(64, ((floats * sizeof(float) + 63) / 64) * 64 + 64);
  if (!p) throw Error("E_NATIVE", "out of memory allocating " + std::to_string(floats * 4) + " bytes");
  return static_cast<float*>(p);
}

}  // namespace

int hardware_threads() {
  unsigned n = std::thread::hardware_concurrency();
  return n == 0 ? 1 : static_cast<int>(n);
}

int thread_count() { return pool().size(); }

void set_thread_count(int n) {
  if (n < 1 || n > kMaxThreads) throw Error("E_ARG", "thread count must be in 1.." + std::to_string(kMaxThreads));
  pool().resize(n);
}

void parallel_run_raw(int threads, void (*fn)(void*, int), void* context) {
  pool().run(threads, fn, context, true);
}

void parallel_for_raw(int64_t n, RangeFn fn, void* context) {
  if (n <= 0) return;
  int threads = thread_count();
  if (threads > n) threads = static_cast<int>(n);
  struct Split {
    int64_t n;
    int threads;
    RangeFn fn;
    void* context;
  } split{n, threads, fn, context};
  pool().run(
      threads,
      [](void* ctx, int t) {
        auto* s = static_cast<Split*>(ctx);
        int64_t begin = s->n * t / s->threads;
        int64_t end = s->n * (t + 1) / s->threads;
        if (begin < end) s->fn(s->context, begin, end, t);
      },
      &split, false);
}

float* thread_scratch(int slot, size_t floats) {
  if (slot < 0 || slot >= kScratchSlots) throw Error("E_NATIVE", "scratch slot out of range");
  Scratch& s = t_scratch[slot];
  if (s.floats < floats) {
    std::free(s.data);
    s.data = nullptr;
    s.floats = 0;
    s.data = aligned_floats(floats);
    s.floats = floats;
  }
  return s.data;
}

AlignedBuffer::AlignedBuffer(size_t floats) : data_(aligned_floats(floats)) {}
AlignedBuffer::~AlignedBuffer() { std::free(data_); }

}  // namespace dcl
