// Fused LSTM layers for the CPU: nn.LSTM's cell (gates i, f, g, o; one summed bias), forward
// and backward, one or two directions per call, with per-row lengths (packed semantics: the
// forward direction stops after a row's last valid step, the reverse one starts there).
//
// The input projection of every step is one GEMM. The recurrence then runs in chunks of batch
// rows, one task per (direction, chunk), in parallel: rows never interact, so each task runs all
// its steps without a barrier. Each step is one small GEMM (the chunk's h times W_hh^T) and the
// gate math on its output while it is still in cache. The backward mirrors it (one GEMM per step
// for dh) and then does the weight and input gradients as three large GEMMs over all steps.
//
// Types: S is the state type (float or double): gates, cells, bias, and every GEMM's output. M is
// the GEMM inputs' type: S, or bfloat16 with S = float where the caller wants bf16 matmuls (then
// h and the gate gradients are rounded to bf16 for the GEMMs, as autocast would). Chunks are
// fixed by the shapes, never the thread count, and the bias gradient sums them in order: a run
// repeats bit for bit.
//
// Registered as torch.ops.musicvae_lstm.{forward, backward, cell, cell_backward}; the Python side
// (musicvae/models/fused_lstm.py) wraps them in autograd Functions.

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <ATen/ThreadLocalState.h>
#include <c10/core/impl/LocalDispatchKeySet.h>
#include <dlfcn.h>
#include <torch/library.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <mutex>
#include <optional>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

namespace {

using at::Tensor;

// -- activations ---------------------------------------------------------------------------------

inline float from_bits(int32_t i) { return __builtin_bit_cast(float, i); }
inline int32_t to_bits(float f) { return __builtin_bit_cast(int32_t, f); }

// e^x as 2^n e^r, |r| <= ln2 / 2, with Cephes' polynomial: within 2 ulp on [-87, 88], and plain
// arithmetic that the compiler vectorizes (no libm call, no branch; with -fno-trapping-math).
inline float exp_approx(float x) {
  x = x < -87.0f ? -87.0f : x;
  x = x > 88.0f ? 88.0f : x;
  const float magic = 12582912.0f;  // 1.5 * 2^23: adding it rounds to an integer
  const float kf = x * 1.44269504088896341f + magic;
  const int32_t k = to_bits(kf) - to_bits(magic);
  const float n = kf - magic;
  float r = x - n * 0.693359375f;
  r = r + n * 2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  return p * from_bits((k + 127) << 23);
}

inline float sigmoid(float x) { return 1.0f / (1.0f + exp_approx(-x)); }
inline float tanh_(float x) { return 1.0f - 2.0f / (1.0f + exp_approx(2.0f * x)); }
inline double sigmoid(double x) { return 1.0 / (1.0 + std::exp(-x)); }
inline double tanh_(double x) { return std::tanh(x); }

// Loads and stores of the GEMM type; bf16 through its bits (round to nearest even), so that
// the loops stay vectorizable.
inline float load(const float* p, int64_t j) { return p[j]; }
inline double load(const double* p, int64_t j) { return p[j]; }
inline float load(const at::BFloat16* p, int64_t j) {
  const uint32_t bits = reinterpret_cast<const uint16_t*>(p)[j];
  return from_bits(static_cast<int32_t>(bits << 16));
}
inline void store(float* p, int64_t j, float v) { p[j] = v; }
inline void store(double* p, int64_t j, double v) { p[j] = v; }
inline void store(at::BFloat16* p, int64_t j, float v) {
  const uint32_t u = static_cast<uint32_t>(to_bits(v));
  const uint32_t rounded = (u + 0x7fffu + ((u >> 16) & 1u)) >> 16;
  reinterpret_cast<uint16_t*>(p)[j] = static_cast<uint16_t>(v != v ? 0x7fc0u : rounded);
}

// Pre-activation gates (B, 4H) in place -> activated (i, f, g, o).
template <typename S>
inline void activate(S* __restrict a, int64_t h) {
  for (int64_t j = 0; j < 2 * h; ++j) a[j] = sigmoid(a[j]);
  for (int64_t j = 2 * h; j < 3 * h; ++j) a[j] = tanh_(a[j]);
  for (int64_t j = 3 * h; j < 4 * h; ++j) a[j] = sigmoid(a[j]);
}

// One row's step forward: a holds the input projection and becomes the activated gates; c is
// updated in place; h is written to hs (the next step's GEMM input) and y.
template <typename S, typename M>
inline void row_forward(int64_t h, S* __restrict a, const S* __restrict rec,
                        const S* __restrict bias, S* __restrict c, M* __restrict hs,
                        M* __restrict y, S* __restrict cs) {
  for (int64_t j = 0; j < 4 * h; ++j) a[j] += rec[j] + bias[j];
  activate(a, h);
  for (int64_t j = 0; j < h; ++j) {
    const S cn = a[h + j] * c[j] + a[j] * a[2 * h + j];
    c[j] = cn;
    const S out = a[3 * h + j] * tanh_(cn);
    store(hs, j, out);
    store(y, j, out);
  }
  if (cs != nullptr) std::memcpy(cs, c, h * sizeof(S));
}

// One row's step backward, each gate's slice its own pointer (so the compiler sees they do not
// overlap and vectorizes). a*: activated gates; c, cp: this step's and the previous cell; dha
// (+ dy where kDy): dL/dh; dc: dL/dc from later steps, updated in place to dL/dc_prev; g*: the
// pre-activation gates' gradients; b*: their running sums (the bias gradient).
// The gradients may overwrite the gates they come from (gi == ai, ...: the backward in place):
// each index is read before it is written, so those pointers are not restrict, and ivdep tells
// the compiler that no iteration depends on another's stores. Without it the loop is vectorized
// behind a runtime overlap check, which the in-place backward fails: it ran scalar, at 10 cycles
// a gate.
template <bool kDy, typename S, typename M>
inline void row_backward_(int64_t h, const S* ai, const S* af, const S* ag, const S* ao,
                          const S* __restrict c, const S* __restrict cp,
                          const S* __restrict dha, const M* __restrict dy, S* __restrict dc,
                          M* gi, M* gf, M* gg, M* go, S* __restrict bi, S* __restrict bf,
                          S* __restrict bg, S* __restrict bo) {
#if defined(__clang__)
#pragma clang loop vectorize(assume_safety)
#elif defined(__GNUC__)
#pragma GCC ivdep
#endif
  for (int64_t j = 0; j < h; ++j) {
    const S i = ai[j], f = af[j], g = ag[j], o = ao[j];
    const S tc = tanh_(c[j]);
    S dh = dha[j];
    if constexpr (kDy) dh += load(dy, j);
    const S dct = dc[j] + dh * o * (S(1) - tc * tc);
    const S di = dct * g * i * (S(1) - i);
    const S df = dct * cp[j] * f * (S(1) - f);
    const S dgg = dct * i * (S(1) - g * g);
    const S d_o = dh * tc * o * (S(1) - o);
    dc[j] = dct * f;
    store(gi, j, di);
    store(gf, j, df);
    store(gg, j, dgg);
    store(go, j, d_o);
    bi[j] += di;
    bf[j] += df;
    bg[j] += dgg;
    bo[j] += d_o;
  }
}

template <typename S, typename M>
inline void row_backward(int64_t h, const S* a, const S* c, const S* cp, const S* dha,
                         const M* dy, S* dc, M* dg, S* db) {
  if (dy != nullptr) {
    row_backward_<true>(h, a, a + h, a + 2 * h, a + 3 * h, c, cp, dha, dy, dc, dg, dg + h,
                        dg + 2 * h, dg + 3 * h, db, db + h, db + 2 * h, db + 3 * h);
  } else {
    row_backward_<false>(h, a, a + h, a + 2 * h, a + 3 * h, c, cp, dha, dy, dc, dg, dg + h,
                         dg + 2 * h, dg + 3 * h, db, db + h, db + 2 * h, db + 3 * h);
  }
}

// -- chunking ------------------------------------------------------------------------------------

// Rows per task: enough for an efficient GEMM, few enough that a chunk's gates stay in L2.
// Fixed by the shapes alone, never the thread count.
int64_t chunk_rows(int64_t batch, int64_t gates) {
  int64_t rows = gates <= 1024 ? 64 : 32;
  if (const char* env = std::getenv("MUSICVAE_LSTM_CHUNK")) {
    const long v = std::strtol(env, nullptr, 10);
    if (v > 0) rows = v;
  }
  return std::max<int64_t>(1, std::min(rows, batch));
}

struct Rows {
  int64_t r0, n, steps;  // first row, row count, steps of the longest row
  bool uniform;          // every row has the same length
};

Rows chunk_of(int64_t c, int64_t rows, int64_t batch, const int64_t* len, int64_t t) {
  Rows r{c * rows, std::min(rows, batch - c * rows), t, true};
  if (len != nullptr) {
    int64_t lo = t, hi = 0;
    for (int64_t b = r.r0; b < r.r0 + r.n; ++b) {
      lo = std::min(lo, len[b]);
      hi = std::max(hi, len[b]);
    }
    r.steps = hi;
    r.uniform = lo == hi;
  }
  return r;
}

inline int64_t row_len(const int64_t* len, int64_t b, int64_t t) {
  return len == nullptr ? t : len[b];
}

// Time index of step s of a row of length l (reverse: from the row's last valid step).
inline int64_t time_of(bool reverse, int64_t l, int64_t s) { return reverse ? l - 1 - s : s; }

const int64_t* lengths_ptr(const std::optional<Tensor>& lengths, int64_t batch, int64_t steps) {
  if (!lengths.has_value() || !lengths->defined()) return nullptr;
  TORCH_CHECK(lengths->dtype() == at::kLong && lengths->dim() == 1 && lengths->size(0) == batch,
              "lengths must be int64 of shape (B,)");
  TORCH_CHECK(lengths->is_contiguous(), "lengths must be contiguous");
  const int64_t* p = lengths->data_ptr<int64_t>();
  for (int64_t b = 0; b < batch; ++b)
    TORCH_CHECK(p[b] >= 0 && p[b] <= steps, "lengths must lie in [0, T]");
  return p;
}

int mkl_local_threads(int n);  // below: MKL's thread-local thread count

// Runs f(direction, chunk) for every task, in parallel. Threads take the next task as they
// finish one, so a thread slowed by another program takes fewer. Inside, MKL runs one thread
// per task: torch leaves OpenMP's nesting open, and MKL's own team per GEMM would oversubscribe
// the cores (ten times slower on 2 cores). The caller's thread-local state (no autograd, no
// autocast: see Below) goes with each thread, for the ATen ops some tasks call.
template <typename F>
void for_tasks(int64_t dirs, int64_t batch, int64_t rows, F f) {
  const int64_t chunks = (batch + rows - 1) / rows, tasks = dirs * chunks;
  std::atomic<int64_t> next{0};
  const int64_t threads = std::min<int64_t>(at::get_num_threads(), tasks);
  const at::ThreadLocalState state;
  at::parallel_for(0, threads, 1, [&](int64_t, int64_t) {
    const at::ThreadLocalStateGuard tls(state);
    const int before = mkl_local_threads(1);
    for (int64_t task = next++; task < tasks; task = next++) f(task / chunks, task % chunks);
    mkl_local_threads(before);
  });
}

// How many threads the tasks' parallel region runs on: torch's thread count where the build has
// OpenMP, 1 where at::parallel_for compiled to a plain loop (a build without -fopenmp).
int64_t task_threads() {
  std::atomic<int64_t> entered{0};
  at::parallel_for(0, at::get_num_threads(), 1, [&](int64_t, int64_t) { ++entered; });
  return entered.load();
}

// Guards for a kernel body: no autograd or autocast below this point.
struct Below {
  at::AutoDispatchBelowADInplaceOrView below_autograd;
  c10::impl::ExcludeDispatchKeyGuard no_autocast{c10::autocast_dispatch_keyset};
};

void check_dirs(const std::vector<Tensor>& w, int64_t dirs, const char* name) {
  TORCH_CHECK(static_cast<int64_t>(w.size()) == dirs, name, ": one tensor per direction");
  for (const auto& t : w) TORCH_CHECK(t.is_contiguous(), name, " must be contiguous");
}

// -- large buffers -------------------------------------------------------------------------------

// The kernel's large tensors (a layer's gates, cells and outputs, the backward's gate gradients)
// come from a cache of blocks rather than a fresh mapping at every call: glibc maps every
// allocation over 32 MiB anew, and the OS zeroes each page on first touch (9% of a groovae_4bar
// training step's CPU time at batch 512, by perf). A step asks for the same sizes every time, so
// blocks are reused by exact size. Free blocks over kCacheBytes go back to the system, oldest
// first. MUSICVAE_LSTM_CACHE=0 turns the cache off (for comparisons).
class BlockCache {
 public:
  static constexpr size_t kMinBytes = size_t(16) << 20;
  static constexpr size_t kAlign = size_t(64) << 10;
  static constexpr size_t kCacheBytes = size_t(2) << 30;

  static BlockCache& get() {
    static BlockCache* cache = new BlockCache();  // never destroyed: tensors may outlive statics
    return *cache;
  }

  // An uninitialised tensor, from the cache where it is large enough to matter.
  Tensor empty(at::IntArrayRef sizes, const at::TensorOptions& opts) {
    const size_t bytes = static_cast<size_t>(c10::multiply_integers(sizes)) *
                         c10::elementSize(c10::typeMetaToScalarType(opts.dtype()));
    if (!on_ || bytes < kMinBytes) return at::empty(sizes, opts);
    const size_t size = (bytes + kAlign - 1) / kAlign * kAlign;
    void* p = take(size);
    if (p == nullptr) return at::empty(sizes, opts);
    return at::from_blob(p, sizes, [size](void* q) { BlockCache::get().give(q, size); }, opts);
  }

 private:
  BlockCache() {
    const char* env = std::getenv("MUSICVAE_LSTM_CACHE");
    on_ = env == nullptr || std::strcmp(env, "0") != 0;
  }

  void* take(size_t size) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      for (auto it = free_.rbegin(); it != free_.rend(); ++it) {
        if (it->first == size) {
          void* p = it->second;
          free_.erase(std::next(it).base());
          free_bytes_ -= size;
          return p;
        }
      }
    }
    void* p = nullptr;
    if (posix_memalign(&p, kAlign, size) != 0) return nullptr;
    return p;
  }

  void give(void* p, size_t size) {
    std::vector<void*> release;
    {
      std::lock_guard<std::mutex> lock(mu_);
      free_.emplace_back(size, p);
      free_bytes_ += size;
      while (free_bytes_ > kCacheBytes) {
        release.push_back(free_.front().second);
        free_bytes_ -= free_.front().first;
        free_.erase(free_.begin());
      }
    }
    for (void* q : release) std::free(q);
  }

  bool on_ = true;
  std::mutex mu_;
  std::vector<std::pair<size_t, void*>> free_;  // oldest first
  size_t free_bytes_ = 0;
};

Tensor big_empty(at::IntArrayRef sizes, const at::TensorOptions& opts) {
  return BlockCache::get().empty(sizes, opts);
}

Tensor big_zeros(at::IntArrayRef sizes, const at::TensorOptions& opts) {
  Tensor t = big_empty(sizes, opts);
  t.zero_();
  return t;
}

// -- GEMMs ---------------------------------------------------------------------------------------

// The panel GEMM. The products read the weights as panels of 16 columns, (N / 16, K, 16) (N
// padded to a multiple of 16 with zeros), so that each streams through memory in order, in
// register blocks of up to 6 rows: for the few rows of a sampling call, and the tens of rows of a
// training step's chunk, they run near the cores' FMA rate, where a library GEMM spends its time
// in calls and packing (MKL's packed API packs its B operand again at every call on AMD CPUs:
// a third of a 32-row product's time). A row's result never depends on the rows beside it or on
// the thread count.

constexpr int64_t kPanel = 16;

using v8 = float __attribute__((vector_size(32)));

inline v8 vload(const float* p) {
  v8 v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
inline void vstore(float* p, v8 v) { std::memcpy(p, &v, sizeof v); }
inline v8 splat(float x) { return v8{x, x, x, x, x, x, x, x}; }

// One 16-column tile: c (R rows, stride ldc, 16 columns) += a (R rows, stride lda, k columns)
// times b (k, 16), one panel's rows (c = the product where not load).
template <int R>
void gemm_tile(const float* a, int64_t lda, const float* b, int64_t k, float* c, int64_t ldc,
               bool load) {
  v8 lo[R], hi[R];
  for (int r = 0; r < R; ++r) {
    lo[r] = load ? vload(c + r * ldc) : splat(0.0f);
    hi[r] = load ? vload(c + r * ldc + 8) : splat(0.0f);
  }
  for (int64_t p = 0; p < k; ++p, b += kPanel) {
    const v8 b0 = vload(b), b1 = vload(b + 8);
    for (int r = 0; r < R; ++r) {
      const v8 x = splat(a[r * lda + p]);
      lo[r] += x * b0;
      hi[r] += x * b1;
    }
  }
  for (int r = 0; r < R; ++r) {
    vstore(c + r * ldc, lo[r]);
    vstore(c + r * ldc + 8, hi[r]);
  }
}

// c (m rows) += a (m rows, k columns) times the panels b (n / 16, k, 16) (c = the product with
// accumulate false): 16-column tiles in blocks of up to 6 rows. Many rows go through k in chunks
// that stay in the cache with a panel's slice (each sum still adds its terms in order).
void gemm_acc(const float* a, int64_t lda, int64_t m, const float* b, int64_t k, int64_t n,
              float* c, int64_t ldc, bool accumulate = true) {
  const int64_t chunk = m > 6 ? 256 : k;
  for (int64_t k0 = 0; k0 < k; k0 += chunk) {
    const int64_t kn = std::min(chunk, k - k0);
    for (int64_t j = 0; j < n; j += kPanel) {
      const float* bj = b + j * k + k0 * kPanel;
      for (int64_t r = 0, rows = 0; r < m; r += rows) {
        // Blocks of 6 rows; the last 7 or 8 as two blocks of 4 or 3, not 6 and a block of 1
        // or 2 whose few sums cannot hide the FMA latency (half the rate).
        const int64_t left = m - r;
        rows = left == 7 || left == 8 ? 4 : std::min<int64_t>(6, left);
        const float* ar = a + r * lda + k0;
        float* cr = c + r * ldc + j;
        const bool load = accumulate || k0 > 0;
        switch (rows) {
          case 6: gemm_tile<6>(ar, lda, bj, kn, cr, ldc, load); break;
          case 5: gemm_tile<5>(ar, lda, bj, kn, cr, ldc, load); break;
          case 4: gemm_tile<4>(ar, lda, bj, kn, cr, ldc, load); break;
          case 3: gemm_tile<3>(ar, lda, bj, kn, cr, ldc, load); break;
          case 2: gemm_tile<2>(ar, lda, bj, kn, cr, ldc, load); break;
          default: gemm_tile<1>(ar, lda, bj, kn, cr, ldc, load); break;
        }
      }
    }
  }
}

inline int64_t padded(int64_t n) { return (n + kPanel - 1) / kPanel * kPanel; }

// w (n, k) (trans: op(w) = w^T) or (k, n) as panels of op(w) (k, n): (n / 16, k, 16); n a
// multiple of 16.
Tensor panels_of(const Tensor& w, bool trans) {
  const Tensor op = trans ? w.t() : w;
  const int64_t k = op.size(0), n = op.size(1);
  return op.reshape({k, n / kPanel, kPanel}).transpose(0, 1).contiguous();
}

// MKL's packed sgemm (the fp32 per-step GEMMs where the panel GEMM does not apply: a width not a
// multiple of 16, or MUSICVAE_LSTM_PANELS=0) and its bf16 GEMM with fp32 output, looked up in the
// loaded torch library.
// Torch builds without MKL lack them: at::mm runs instead. MUSICVAE_LSTM_MKL=0 turns them off
// (for comparisons).
struct Mkl {
  enum { kRowMajor = 101, kNoTrans = 111, kTrans = 112, kPacked = 151, kBMatrix = 162 };
  using PackSize = size_t (*)(int, int, int, int);
  using Pack = void (*)(int, int, int, int, int, int, float, const float*, int, float*);
  using Compute = void (*)(int, int, int, int, int, int, const float*, int, const float*, int,
                           float, float*, int);
  using Bf16 = void (*)(int, int, int, int, int, int, float, const void*, int, const void*, int,
                        float, float*, int);
  PackSize pack_size = nullptr;
  Pack pack = nullptr;
  Compute compute = nullptr;
  Bf16 bf16 = nullptr;
  int (*local_threads)(int) = nullptr;  // mkl_set_num_threads_local (C interface): the old one

  Mkl() {
    void* lib = dlopen("libtorch_cpu.so", RTLD_LAZY | RTLD_NOLOAD);
    void* h = lib != nullptr ? lib : RTLD_DEFAULT;
    local_threads = reinterpret_cast<int (*)(int)>(dlsym(h, "MKL_Set_Num_Threads_Local"));
    const char* env = std::getenv("MUSICVAE_LSTM_MKL");
    if (env != nullptr && std::strcmp(env, "0") == 0) return;
    pack_size = reinterpret_cast<PackSize>(dlsym(h, "cblas_sgemm_pack_get_size"));
    pack = reinterpret_cast<Pack>(dlsym(h, "cblas_sgemm_pack"));
    compute = reinterpret_cast<Compute>(dlsym(h, "cblas_sgemm_compute"));
    bf16 = reinterpret_cast<Bf16>(dlsym(h, "cblas_gemm_bf16bf16f32"));
    if (pack_size == nullptr || pack == nullptr || compute == nullptr) {
      pack_size = nullptr;
      pack = nullptr;
      compute = nullptr;
    }
  }
};

const Mkl& mkl() {
  static const Mkl m;
  return m;
}

int mkl_local_threads(int n) { return mkl().local_threads != nullptr ? mkl().local_threads(n) : 0; }

// (m, k) row-major with leading dimension ld, as a tensor (no copy).
template <typename T>
Tensor view_of(const T* p, int64_t m, int64_t k, int64_t ld) {
  return at::from_blob(const_cast<T*>(p), {m, k}, {ld, 1},
                       at::TensorOptions().dtype(c10::CppTypeToScalarType<T>::value));
}

// x (m, k) times w^T, w (n, k): float output (bf16 inputs: MKL's bf16 GEMM where it exists).
Tensor mm_t_float(const Tensor& x, const Tensor& w) {
  const int64_t m = x.size(0), k = x.size(1), n = w.size(0);
  if (x.scalar_type() != at::kBFloat16) {
    Tensor out = big_empty({m, n}, x.options());
    at::mm_out(out, x, w.t());
    return out;
  }
  if (mkl().bf16 != nullptr && m < INT32_MAX) {
    Tensor out = big_empty({m, n}, x.options().dtype(at::kFloat));
    mkl().bf16(Mkl::kRowMajor, Mkl::kNoTrans, Mkl::kTrans, m, n, k, 1.0f, x.data_ptr(), k,
               w.data_ptr(), k, 0.0f, out.data_ptr<float>(), n);
    return out;
  }
  return at::mm(x, w.t()).to(at::kFloat);
}

// Whether fp32 per-step products run on the panel GEMM (MUSICVAE_LSTM_PANELS=0: on MKL, for
// comparisons). Read at every layer call.
bool panel_steps() {
  const char* env = std::getenv("MUSICVAE_LSTM_PANELS");
  return env == nullptr || std::strcmp(env, "0") != 0;
}

// op(W_hh) of one direction for the per-step GEMMs, C (m, n) = A (m, k) op(W): forward
// op(W) = W^T (n = 4H, k = H), backward op(W) = W (n = H, k = 4H). In fp32 laid out once per
// call as panels for the panel GEMM (n a multiple of 16), or packed by MKL for each row count
// the chunks use.
struct StepWeight {
  Tensor w;
  bool trans;
  int64_t n, k;
  Tensor panels;
  std::vector<std::pair<int64_t, Tensor>> packed;

  StepWeight(const Tensor& w_hh, bool transposed, std::vector<int64_t> ms)
      : w(w_hh), trans(transposed) {
    n = trans ? w.size(0) : w.size(1);
    k = trans ? w.size(1) : w.size(0);
    if (w.scalar_type() == at::kFloat && n % kPanel == 0 && panel_steps()) {
      panels = panels_of(w, trans);
      return;
    }
    const Mkl& lib = mkl();
    if (w.scalar_type() != at::kFloat || lib.pack == nullptr || n >= INT32_MAX) return;
    for (int64_t m : ms) {
      if (m <= 0 || m >= INT32_MAX) continue;
      const size_t bytes = lib.pack_size(Mkl::kBMatrix, m, n, k);
      Tensor buf = at::empty({static_cast<int64_t>(bytes / sizeof(float)) + 16}, w.options());
      lib.pack(Mkl::kRowMajor, Mkl::kBMatrix, trans ? Mkl::kTrans : Mkl::kNoTrans, m, n, k, 1.0f,
               w.data_ptr<float>(), w.size(1), buf.data_ptr<float>());
      packed.emplace_back(m, buf);
    }
  }

  Tensor op() const { return trans ? w.t() : w; }

  template <typename S, typename M>
  void run(const M* a, int64_t lda, int64_t m, S* c) const {
    if constexpr (std::is_same_v<M, float>) {
      if (panels.defined()) {
        gemm_acc(a, lda, m, panels.data_ptr<float>(), k, n, c, n, false);
        return;
      }
      for (const auto& [rows, buf] : packed) {
        if (rows == m) {
          mkl().compute(Mkl::kRowMajor, Mkl::kNoTrans, Mkl::kPacked, m, n, k, a, lda,
                        static_cast<const float*>(buf.data_ptr()), n, 0.0f, c, n);
          return;
        }
      }
    }
    if constexpr (std::is_same_v<M, at::BFloat16>) {
      if (mkl().bf16 != nullptr) {
        mkl().bf16(Mkl::kRowMajor, Mkl::kNoTrans, trans ? Mkl::kTrans : Mkl::kNoTrans, m, n, k,
                   1.0f, a, lda, w.data_ptr(), w.size(1), 0.0f, c, n);
        return;
      }
    }
    Tensor out = view_of(c, m, n, n);
    if constexpr (std::is_same_v<S, M>) {
      at::mm_out(out, view_of(a, m, k, lda), op());
    } else {
      out.copy_(at::mm(view_of(a, m, k, lda), op()));
    }
  }
};

std::vector<StepWeight> step_weights(const std::vector<Tensor>& w_hh, bool trans, int64_t batch,
                                     int64_t rows) {
  std::vector<int64_t> ms{rows};
  if (batch % rows != 0) ms.push_back(batch % rows);
  std::vector<StepWeight> out;
  for (const auto& w : w_hh) out.emplace_back(w, trans, ms);
  return out;
}

// -- layer forward -------------------------------------------------------------------------------

// gx (B, T, D * 4H): the input projections, turned in place into the activated gates.
template <typename S, typename M>
void forward_loop(Tensor& gx, const std::vector<Tensor>& w_hh, const std::vector<Tensor>& bias,
                  const int64_t* len, Tensor& y, Tensor& hs, Tensor& cs, Tensor& cells,
                  bool save) {
  const int64_t batch = y.size(0), steps = y.size(1);
  const int64_t dirs = hs.size(0), h = hs.size(2), g = 4 * h;
  const int64_t rows = chunk_rows(batch, g);
  const std::vector<StepWeight> weights = step_weights(w_hh, true, batch, rows);
  S* gx_p = gx.data_ptr<S>();
  M* y_p = y.data_ptr<M>();
  M* hs_p = hs.data_ptr<M>();
  S* cs_p = cs.data_ptr<S>();
  S* cells_p = save ? cells.data_ptr<S>() : nullptr;
  for_tasks(dirs, batch, rows, [&](int64_t d, int64_t c) {
    const Rows r = chunk_of(c, rows, batch, len, steps);
    const S* b_p = bias[d].data_ptr<S>();
    std::vector<S> rec(r.n * g);  // this step's h times W_hh^T
    const M* h_rows = hs_p + (d * batch + r.r0) * h;
    for (int64_t s = 0; s < r.steps; ++s) {
      weights[d].run<S, M>(h_rows, h, r.n, rec.data());
      for (int64_t b = r.r0; b < r.r0 + r.n; ++b) {
        const int64_t l = row_len(len, b, steps);
        if (s >= l) continue;
        const int64_t bt = b * steps + time_of(d == 1, l, s);
        row_forward<S, M>(h, gx_p + bt * dirs * g + d * g, rec.data() + (b - r.r0) * g, b_p,
                          cs_p + (d * batch + b) * h, hs_p + (d * batch + b) * h,
                          y_p + (bt * dirs + d) * h,
                          save ? cells_p + (bt * dirs + d) * h : nullptr);
      }
    }
  });
}

std::tuple<Tensor, Tensor, Tensor, Tensor, Tensor> layer_forward(
    const Tensor& x, const Tensor& h0, const Tensor& c0, std::vector<Tensor> w_ih,
    std::vector<Tensor> w_hh, std::vector<Tensor> bias, const std::optional<Tensor>& lengths,
    bool save) {
  Below guard;
  TORCH_CHECK(x.dim() == 3 && x.is_contiguous(), "x must be a contiguous (B, T, I) tensor");
  TORCH_CHECK(h0.dim() == 3 && c0.dim() == 3, "h0 and c0 must be (D, B, H)");
  const int64_t dirs = h0.size(0), batch = x.size(0), steps = x.size(1), in = x.size(2);
  const int64_t h = h0.size(2), g = 4 * h;
  check_dirs(w_ih, dirs, "w_ih");
  check_dirs(w_hh, dirs, "w_hh");
  check_dirs(bias, dirs, "bias");
  TORCH_CHECK(dirs == 1 || dirs == 2, "one or two directions");
  TORCH_CHECK(h0.size(1) == batch && c0.sizes() == h0.sizes(), "state shapes");
  TORCH_CHECK(w_ih[0].size(0) == g && w_ih[0].size(1) == in && w_hh[0].size(1) == h,
              "weight shapes");
  const at::ScalarType m_type = x.scalar_type();
  TORCH_CHECK(m_type == at::kFloat || m_type == at::kDouble || m_type == at::kBFloat16,
              "float, double or bfloat16 inputs");
  TORCH_CHECK(c0.scalar_type() == (m_type == at::kDouble ? at::kDouble : at::kFloat),
              "the state is float (double for double inputs)");
  const int64_t* len = lengths_ptr(lengths, batch, steps);
  const bool padded = len != nullptr && std::any_of(len, len + batch, [&](int64_t l) {
    return l < steps;
  });
  Tensor w_cat = dirs == 1 ? w_ih[0] : at::cat(w_ih, 0);
  // (B * T, D * 4H) in the state type; becomes the saved gates.
  Tensor gx = mm_t_float(x.view({batch * steps, in}), w_cat).view({batch, steps, dirs * g});
  Tensor y = padded ? big_zeros({batch, steps, dirs * h}, x.options())
                    : big_empty({batch, steps, dirs * h}, x.options());
  Tensor hs = h0.to(m_type).contiguous().clone();
  Tensor cs = c0.contiguous().clone();
  Tensor cells = save ? big_empty({batch, steps, dirs * h}, c0.options()) : Tensor();
  if (m_type == at::kBFloat16) {
    forward_loop<float, at::BFloat16>(gx, w_hh, bias, len, y, hs, cs, cells, save);
  } else if (m_type == at::kFloat) {
    forward_loop<float, float>(gx, w_hh, bias, len, y, hs, cs, cells, save);
  } else {
    forward_loop<double, double>(gx, w_hh, bias, len, y, hs, cs, cells, save);
  }
  return {y, hs, cs, save ? gx : Tensor(), cells};
}

// -- layer backward ------------------------------------------------------------------------------

template <typename S, typename M>
void backward_loop(const Tensor& h0, const Tensor& c0, const std::vector<Tensor>& w_hh,
                   const Tensor& y, const Tensor& gates, const Tensor& cells, const int64_t* len,
                   const Tensor& dy, const Tensor& dhn, Tensor& dc, Tensor& dgates,
                   Tensor& hprev, Tensor& dh0, Tensor& db_chunks) {
  const int64_t batch = y.size(0), steps = y.size(1);
  const int64_t dirs = h0.size(0), h = h0.size(2), g = 4 * h;
  const int64_t rows = chunk_rows(batch, g);
  const int64_t chunks = (batch + rows - 1) / rows;
  const std::vector<StepWeight> weights = step_weights(w_hh, false, batch, rows);
  const M* h0_p = h0.data_ptr<M>();
  const S* c0_p = c0.data_ptr<S>();
  const M* y_p = y.data_ptr<M>();
  const S* gates_p = gates.data_ptr<S>();
  const S* cells_p = cells.data_ptr<S>();
  const M* dy_p = dy.defined() ? dy.data_ptr<M>() : nullptr;
  const S* dhn_p = dhn.defined() ? dhn.data_ptr<S>() : nullptr;
  S* dc_p = dc.data_ptr<S>();
  M* dg_p = dgates.data_ptr<M>();
  M* hp_p = hprev.defined() ? hprev.data_ptr<M>() : nullptr;
  M* dh0_p = dh0.data_ptr<M>();
  S* db_p = db_chunks.data_ptr<S>();
  for_tasks(dirs, batch, rows, [&](int64_t d, int64_t c) {
    const Rows r = chunk_of(c, rows, batch, len, steps);
    std::vector<S> rec(r.n * h, S(0));  // dL/dh from the step after
    std::vector<M> dg_rows(r.uniform ? 0 : r.n * g, M(0));
    const std::vector<S> zeros(h, S(0));
    S* db = db_p + (d * chunks + c) * g;
    for (int64_t s = r.steps - 1; s >= 0; --s) {
      for (int64_t b = r.r0; b < r.r0 + r.n; ++b) {
        const int64_t l = row_len(len, b, steps);
        if (s >= l) continue;
        const int64_t t = time_of(d == 1, l, s);
        const int64_t tp = d == 1 ? t + 1 : t - 1;  // the step before, in time
        const int64_t bt = b * steps + t, btp = b * steps + tp;
        const S* dha = s == l - 1 ? (dhn_p != nullptr ? dhn_p + (d * batch + b) * h : zeros.data())
                                  : rec.data() + (b - r.r0) * h;
        const S* cp = s == 0 ? c0_p + (d * batch + b) * h : cells_p + (btp * dirs + d) * h;
        M* dg = dg_p + (bt * dirs + d) * g;
        row_backward<S, M>(h, gates_p + (bt * dirs + d) * g, cells_p + (bt * dirs + d) * h, cp,
                           dha, dy_p != nullptr ? dy_p + (bt * dirs + d) * h : nullptr,
                           dc_p + (d * batch + b) * h, dg, db);
        if (!r.uniform) std::memcpy(dg_rows.data() + (b - r.r0) * g, dg, g * sizeof(M));
        if (hp_p != nullptr) {
          const M* hp = s == 0 ? h0_p + (d * batch + b) * h : y_p + (btp * dirs + d) * h;
          std::memcpy(hp_p + (bt * dirs + d) * h, hp, h * sizeof(M));
        }
      }
      if (r.uniform) {
        const int64_t t = time_of(d == 1, r.steps, s);
        weights[d].run<S, M>(dg_p + ((r.r0 * steps + t) * dirs + d) * g, steps * dirs * g, r.n,
                             rec.data());
      } else {
        weights[d].run<S, M>(dg_rows.data(), g, r.n, rec.data());
      }
    }
    for (int64_t b = r.r0; b < r.r0 + r.n; ++b) {
      const S* src = row_len(len, b, steps) > 0
                         ? rec.data() + (b - r.r0) * h
                         : (dhn_p != nullptr ? dhn_p + (d * batch + b) * h : zeros.data());
      for (int64_t j = 0; j < h; ++j) store(dh0_p + (d * batch + b) * h, j, src[j]);
    }
  });
}

// dW_hh = sum over rows and steps of dg^T h_prev, where every row runs all T steps, straight from
// y: flat rows (b, t) of dg against the rows next to them in y ((b, t - 1) forward, (b, t + 1) in
// reverse) is one GEMM, and it pairs each row's first step with the row before's last, terms
// taken out again and replaced by the first step's h0. dg (B T, 4H) and y (B T, H) are flat
// strided views of one direction, h0 (B, H).
Tensor dw_hh_full(const Tensor& dg, const Tensor& y, const Tensor& h0, int64_t batch,
                  int64_t steps, bool reverse) {
  const int64_t n = batch * steps;
  Tensor dw = reverse ? at::mm(dg.narrow(0, 0, n - 1).t(), y.narrow(0, 1, n - 1))
                      : at::mm(dg.narrow(0, 1, n - 1).t(), y.narrow(0, 0, n - 1));
  const int64_t first = reverse ? steps - 1 : 0, last = reverse ? 0 : steps - 1;
  const Tensor dg_first = dg.view({batch, steps, dg.size(1)}).select(1, first);
  const Tensor y_last = y.view({batch, steps, y.size(1)}).select(1, last);
  if (batch > 1) {
    // Forward, row b's first step met row b-1's last; in reverse, row b's met row b+1's.
    const Tensor wrong = reverse ? at::mm(dg_first.narrow(0, 0, batch - 1).t(),
                                          y_last.narrow(0, 1, batch - 1))
                                 : at::mm(dg_first.narrow(0, 1, batch - 1).t(),
                                          y_last.narrow(0, 0, batch - 1));
    dw.sub_(wrong);
  }
  return dw.addmm_(dg_first.t(), h0);
}

std::tuple<Tensor, Tensor, Tensor, std::vector<Tensor>, std::vector<Tensor>, std::vector<Tensor>>
layer_backward(const Tensor& x, const Tensor& h0, const Tensor& c0, std::vector<Tensor> w_ih,
               std::vector<Tensor> w_hh, const Tensor& y, const Tensor& gates,
               const Tensor& cells, const std::optional<Tensor>& lengths,
               const std::optional<Tensor>& dy, const std::optional<Tensor>& dhn,
               const std::optional<Tensor>& dcn, bool need_dx, bool reuse_gates) {
  Below guard;
  const int64_t dirs = h0.size(0), batch = x.size(0), steps = x.size(1), in = x.size(2);
  const int64_t h = h0.size(2), g = 4 * h;
  check_dirs(w_ih, dirs, "w_ih");
  check_dirs(w_hh, dirs, "w_hh");
  const int64_t* len = lengths_ptr(lengths, batch, steps);
  const bool padded = len != nullptr && std::any_of(len, len + batch, [&](int64_t l) {
    return l < steps;
  });
  const at::ScalarType m_type = x.scalar_type(), s_type = c0.scalar_type();
  const auto m_opts = x.options();
  Tensor h0m = h0.to(m_type).contiguous();
  Tensor c0s = c0.contiguous();
  Tensor dy_t = dy.has_value() && dy->defined() ? dy->to(m_type).contiguous() : Tensor();
  Tensor dhn_t = dhn.has_value() && dhn->defined() ? dhn->to(s_type).contiguous() : Tensor();
  Tensor dc = dcn.has_value() && dcn->defined() ? dcn->to(s_type).contiguous().clone()
                                                : at::zeros_like(c0s);
  // reuse_gates: the caller will not read the saved gates again (autograd keeps no graph), so
  // their gradients overwrite them; padded steps' gates are never written, as their gradients
  // must be zeros.
  Tensor dgates = reuse_gates && !padded && m_type == s_type && gates.is_contiguous()
                      ? gates
                  : padded ? big_zeros({batch, steps, dirs * g}, m_opts)
                           : big_empty({batch, steps, dirs * g}, m_opts);
  // Each step's previous h for the weight gradient; where every row has full length, the fp32
  // and fp64 weight gradients read it from y instead (dw_hh_full: bf16 would round its terms).
  Tensor hprev = padded             ? big_zeros({batch, steps, dirs * h}, m_opts)
                 : m_type != s_type ? big_empty({batch, steps, dirs * h}, m_opts)
                                    : Tensor();
  Tensor dh0 = at::empty({dirs, batch, h}, m_opts);
  const int64_t rows = chunk_rows(batch, g);
  const int64_t chunks = (batch + rows - 1) / rows;
  Tensor db_chunks = at::zeros({dirs, chunks, g}, c0.options());
  if (m_type == at::kBFloat16) {
    backward_loop<float, at::BFloat16>(h0m, c0s, w_hh, y, gates, cells, len, dy_t, dhn_t, dc,
                                       dgates, hprev, dh0, db_chunks);
  } else if (m_type == at::kFloat) {
    backward_loop<float, float>(h0m, c0s, w_hh, y, gates, cells, len, dy_t, dhn_t, dc, dgates,
                                hprev, dh0, db_chunks);
  } else {
    backward_loop<double, double>(h0m, c0s, w_hh, y, gates, cells, len, dy_t, dhn_t, dc, dgates,
                                  hprev, dh0, db_chunks);
  }
  Tensor dg_flat = dgates.view({batch * steps, dirs * g});
  Tensor w_cat = dirs == 1 ? w_ih[0] : at::cat(w_ih, 0);
  Tensor dx;
  if (need_dx) {
    Tensor dx_flat = big_empty({batch * steps, in}, m_opts);
    at::mm_out(dx_flat, dg_flat, w_cat);
    dx = dx_flat.view({batch, steps, in});
  }
  Tensor dw_cat = at::mm(dg_flat.t(), x.view({batch * steps, in}));
  std::vector<Tensor> dw_ih, dw_hh, db;
  for (int64_t d = 0; d < dirs; ++d) {
    dw_ih.push_back(dw_cat.narrow(0, d * g, g));
    const Tensor dg_d = dg_flat.narrow(1, d * g, g);
    if (hprev.defined()) {
      dw_hh.push_back(at::mm(dg_d.t(), hprev.view({batch * steps, dirs * h}).narrow(1, d * h, h)));
    } else {
      dw_hh.push_back(dw_hh_full(dg_d, y.view({batch * steps, dirs * h}).narrow(1, d * h, h),
                                 h0m[d], batch, steps, d == 1));
    }
    // The chunks' bias gradients, summed in chunk order.
    Tensor sum = db_chunks[d][0].clone();
    for (int64_t c = 1; c < chunks; ++c) sum.add_(db_chunks[d][c]);
    db.push_back(sum);
  }
  return {dx, dh0, dc, dw_ih, dw_hh, db};
}

// -- one cell step (the sampling and scheduled-sampling loops) -----------------------------------

// One row's cell from its activated gates a (i, f, g, o): c_new = f c + i g, h = o tanh(c_new).
// c and c_new may be the same row (an update in place).
template <typename S>
inline void cell_update(int64_t h, const S* __restrict a, const S* c, S* c_new,
                        S* __restrict h_out) {
  for (int64_t j = 0; j < h; ++j) {
    const S v = a[h + j] * c[j] + a[j] * a[2 * h + j];
    c_new[j] = v;
    h_out[j] = a[3 * h + j] * tanh_(v);
  }
}

template <typename S>
void cell_loop(const Tensor& pre, const Tensor& c, Tensor& hn, Tensor& cn, Tensor& act) {
  const int64_t batch = pre.size(0), h = c.size(1), g = 4 * h;
  const S* pre_p = pre.data_ptr<S>();
  const S* c_p = c.data_ptr<S>();
  S* h_p = hn.data_ptr<S>();
  S* cn_p = cn.data_ptr<S>();
  S* a_p = act.data_ptr<S>();
  at::parallel_for(0, batch, std::max<int64_t>(1, 16384 / g), [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; ++b) {
      S* a = a_p + b * g;
      std::memcpy(a, pre_p + b * g, g * sizeof(S));
      activate(a, h);
      cell_update(h, a, c_p + b * h, cn_p + b * h, h_p + b * h);
    }
  });
}

std::tuple<Tensor, Tensor, Tensor> cell(const Tensor& pre, const Tensor& c) {
  Below guard;
  TORCH_CHECK(pre.dim() == 2 && c.dim() == 2 && pre.size(0) == c.size(0) &&
                  pre.size(1) == 4 * c.size(1),
              "cell: gates (B, 4H) and c (B, H)");
  TORCH_CHECK(pre.scalar_type() == c.scalar_type(), "cell: one dtype");
  Tensor p = pre.contiguous(), cc = c.contiguous();
  Tensor hn = at::empty_like(cc), cn = at::empty_like(cc), act = at::empty_like(p);
  if (p.scalar_type() == at::kFloat) {
    cell_loop<float>(p, cc, hn, cn, act);
  } else {
    TORCH_CHECK(p.scalar_type() == at::kDouble, "cell: float or double");
    cell_loop<double>(p, cc, hn, cn, act);
  }
  return {hn, cn, act};
}

template <typename S>
void cell_backward_loop(const Tensor& act, const Tensor& cp, const Tensor& cn, const Tensor& dh,
                        Tensor& dc, Tensor& dg) {
  const int64_t batch = act.size(0), h = cp.size(1), g = 4 * h;
  const S* a_p = act.data_ptr<S>();
  const S* cp_p = cp.data_ptr<S>();
  const S* cn_p = cn.data_ptr<S>();
  const S* dh_p = dh.data_ptr<S>();
  S* dc_p = dc.data_ptr<S>();
  S* dg_p = dg.data_ptr<S>();
  at::parallel_for(0, batch, std::max<int64_t>(1, 16384 / g), [&](int64_t b0, int64_t b1) {
    std::vector<S> db(g);  // unused: the caller sums dgates for the bias
    for (int64_t b = b0; b < b1; ++b) {
      row_backward<S, S>(h, a_p + b * g, cn_p + b * h, cp_p + b * h, dh_p + b * h, nullptr,
                         dc_p + b * h, dg_p + b * g, db.data());
    }
  });
}

std::tuple<Tensor, Tensor> cell_backward(const Tensor& act, const Tensor& c_prev,
                                         const Tensor& c_new, const std::optional<Tensor>& dh,
                                         const std::optional<Tensor>& dc) {
  Below guard;
  Tensor a = act.contiguous(), cp = c_prev.contiguous(), cn = c_new.contiguous();
  Tensor dh_t = dh.has_value() && dh->defined() ? dh->to(cp.scalar_type()).contiguous()
                                                : at::zeros_like(cp);
  Tensor dc_t = dc.has_value() && dc->defined() ? dc->to(cp.scalar_type()).contiguous().clone()
                                                : at::zeros_like(cp);
  Tensor dg = at::empty_like(a);
  if (a.scalar_type() == at::kFloat) {
    cell_backward_loop<float>(a, cp, cn, dh_t, dc_t, dg);
  } else {
    cell_backward_loop<double>(a, cp, cn, dh_t, dc_t, dg);
  }
  return {dg, dc_t};
}


// -- a whole decode (free-running sampling) -------------------------------------------------------

// A decoder's sampling loop in one call: per step the LSTM stack, the output projection and the
// step's draws, fed back as the next step's input (its nonzero entries times rows of W_ih^T: a
// one-hot class is one row). Categorical decoders draw one class per one-hot part, GrooVAE's
// Bernoulli hits with sigmoid velocities and tanh offsets. Rows never interact, so each task runs
// every step of its rows without a barrier; the random draws of a window of steps are made before
// it, in the order the per-step draws of the Python loop make them (a groove decode's are all
// drawn by the caller). The products run on the panel GEMM (above).

// The first index of the largest of x[0, n), or of its first NaN (torch.argmax's choice).
inline int64_t argmax_of(const float* x, int64_t n) {
  int64_t best = 0;
  for (int64_t j = 0; j < n; ++j) {
    if (x[j] != x[j]) return j;
    if (x[j] > x[best]) best = j;
  }
  return best;
}

// One part's class from its logits: the argmax at temperature 0, else torch.multinomial's draw
// from softmax(logits / temperature), which is argmax(p / q) for q ~ Exp(1) (one per class).
// e: scratch of n floats.
int64_t draw_class(const float* logits, int64_t n, float temperature, const float* q,
                   float* __restrict e) {
  if (temperature == 0.0f) return argmax_of(logits, n);
  float top = -std::numeric_limits<float>::infinity();
  for (int64_t j = 0; j < n; ++j) {
    e[j] = logits[j] / temperature;
    top = std::max(top, e[j]);
  }
  float sum = 0.0f;
  for (int64_t j = 0; j < n; ++j) {
    const float x = e[j] - top;
    e[j] = x < -87.0f ? 0.0f : exp_approx(x);  // below e^-87 the draw is the same
    sum += e[j];
  }
  TORCH_CHECK(sum > 0.0f && sum <= std::numeric_limits<float>::max() && top == top,
              "probability tensor contains either `inf`, `nan` or element < 0");
  for (int64_t j = 0; j < n; ++j) e[j] = e[j] / sum / q[j];
  return argmax_of(e, n);
}

// torch.clamp's: NaN stays NaN.
inline float clamp_to(float x, float lo, float hi) { return x < lo ? lo : (x > hi ? hi : x); }

struct Sampler {
  // Inputs (see categorical_sample and groove_sample).
  const float* static_p = nullptr;  // (B, ns, G)
  const float* init_p = nullptr;    // (ni, B, 2 L H)
  const float* first_p = nullptr;   // (B, D)
  const float* wx_p = nullptr;      // (D, G)
  std::vector<const float*> rec;    // panels: layer 0 (G / 16, H, 16); layer k (G / 16, 2H, 16)
  std::vector<const float*> bias;   // layers 1..: (G)
  const float* wout_p = nullptr;    // panels (D / 16, H, 16)
  const float* bout_p = nullptr;    // (D)
  int64_t batch = 0, steps = 0, d = 0, h = 0, g = 0, layers = 0, ns = 1, ni = 1;
  int64_t gp = 0, dp = 0;  // G and D padded to whole panels: the strides of gates and logits
  float temperature = 1.0f;
  float* out_p = nullptr;  // (B, T, D)
  // Categorical parts (empty for a groove decode).
  std::vector<int64_t> depths, offsets;
  // A groove decode's draws, each (T, B, N): uniforms for the hits, and the spread's velocity
  // factors and offset shifts (null without a spread).
  const float* uniform_p = nullptr;
  const float* factor_p = nullptr;
  const float* shift_p = nullptr;
  bool hit_conditioned = false;
  // A plain run of the stack (stack_run): no output, no feedback; out_p gets the top h (B, T, H).
  bool hidden = false;

  // One task's rows and everything they carry from step to step.
  struct Task {
    int64_t r0 = 0, n = 0;
    std::vector<std::vector<float>> in;    // per layer: (n, K) = [input h | own h] (0: own h)
    std::vector<std::vector<float>> cell;  // per layer: (n, H)
    std::vector<float> gates, logits, scratch;
  };

  int64_t k_of(int64_t layer) const { return layer == 0 ? h : 2 * h; }
  // Where layer k keeps its own h (its recurrent input) in its input row.
  int64_t own_of(int64_t layer) const { return layer == 0 ? 0 : h; }

  void setup(Task& r, int64_t r0, int64_t n) const {
    r.r0 = r0;
    r.n = n;
    r.in.assign(layers, {});
    r.cell.assign(layers, {});
    for (int64_t k = 0; k < layers; ++k) {
      r.in[k].assign(n * k_of(k), 0.0f);
      r.cell[k].assign(n * h, 0.0f);
    }
    r.gates.assign(n * gp, 0.0f);
    r.logits.assign(n * dp, 0.0f);
    r.scratch.assign(d, 0.0f);
  }

  // Row b's sample at step t from its logits into y (D); q: the window's exponential draws at
  // step t (categorical, temperature > 0).
  void draw(const float* logits, int64_t b, int64_t t, const float* q, float* scratch,
            float* __restrict y) const {
    if (!depths.empty()) {
      std::fill(y, y + d, 0.0f);
      for (int64_t p = 0; p < static_cast<int64_t>(depths.size()); ++p) {
        const int64_t width = depths[p], off = offsets[p];
        const float* qp = q == nullptr ? nullptr : q + batch * off + b * width;
        y[off + draw_class(logits + off, width, temperature, qp, scratch)] = 1.0f;
      }
      return;
    }
    const int64_t n = d / 3, at = (t * batch + b) * n;
    for (int64_t j = 0; j < n; ++j) {
      const float hit = uniform_p[at + j] < sigmoid(logits[j] / temperature) ? 1.0f : 0.0f;
      float vel = sigmoid(logits[n + j]), off = tanh_(logits[2 * n + j]);
      if (factor_p != nullptr) {
        vel = clamp_to(vel * factor_p[at + j], 0.0f, 1.0f);
        off = clamp_to(off + shift_p[at + j], -1.0f, 1.0f);
      }
      if (hit_conditioned) {
        vel *= hit;
        off *= hit;
      }
      y[j] = hit;
      y[n + j] = vel;
      y[2 * n + j] = off;
    }
  }

  // Steps [t0, t1) of r's rows; q: the window's exponential draws (t1 - t0, B * D), or null.
  void run(Task& r, int64_t t0, int64_t t1, const float* q) const {
    const int64_t n = r.n, per_static = steps / ns, per_init = steps / ni, top = layers - 1;
    for (int64_t t = t0; t < t1; ++t) {
      if (t % per_init == 0) {  // a segment starts from its own state
        const float* src = init_p + (t / per_init) * batch * 2 * layers * h;
        for (int64_t i = 0; i < n; ++i) {
          const float* st = src + (r.r0 + i) * 2 * layers * h;
          for (int64_t k = 0; k < layers; ++k) {
            std::memcpy(r.cell[k].data() + i * h, st + 2 * k * h, h * sizeof(float));
            std::memcpy(r.in[k].data() + i * k_of(k) + own_of(k), st + (2 * k + 1) * h,
                        h * sizeof(float));
          }
        }
      }
      // Layer 0: the z / controls part, the previous output's (its nonzero entries' rows of
      // W_ih^T), then W_hh.
      for (int64_t i = 0; i < n; ++i) {
        const int64_t b = r.r0 + i;
        float* __restrict a = r.gates.data() + i * gp;
        std::memcpy(a, static_p + (b * ns + t / per_static) * g, g * sizeof(float));
        const float* x = t == 0 ? first_p + b * d : out_p + (b * steps + t - 1) * d;
        for (int64_t k = 0; k < d; ++k) {
          if (x[k] == 0.0f) continue;
          const float xk = x[k];
          const float* __restrict w = wx_p + k * g;
          for (int64_t j = 0; j < g; ++j) a[j] += xk * w[j];
        }
      }
      for (int64_t k = 0; k < layers; ++k) {
        if (k > 0) {
          for (int64_t i = 0; i < n; ++i)
            std::memcpy(r.gates.data() + i * gp, bias[k - 1], g * sizeof(float));
        }
        gemm_acc(r.in[k].data(), k_of(k), n, rec[k], k_of(k), gp, r.gates.data(), gp);
        for (int64_t i = 0; i < n; ++i) {
          float* a = r.gates.data() + i * gp;
          float* c = r.cell[k].data() + i * h;
          float* own = r.in[k].data() + i * k_of(k) + own_of(k);
          activate(a, h);
          cell_update(h, a, c, c, own);
          if (k < top) std::memcpy(r.in[k + 1].data() + i * 2 * h, own, h * sizeof(float));
        }
      }
      if (hidden) {
        for (int64_t i = 0; i < n; ++i) {
          std::memcpy(out_p + ((r.r0 + i) * steps + t) * h,
                      r.in[top].data() + i * k_of(top) + own_of(top), h * sizeof(float));
        }
        continue;
      }
      // The output projection of the top layer's h, and the draws.
      for (int64_t i = 0; i < n; ++i)
        std::memcpy(r.logits.data() + i * dp, bout_p, d * sizeof(float));
      gemm_acc(r.in[top].data() + own_of(top), k_of(top), n, wout_p, h, dp, r.logits.data(), dp);
      for (int64_t i = 0; i < n; ++i) {
        const int64_t b = r.r0 + i;
        const float* qt = q == nullptr ? nullptr : q + (t - t0) * batch * d;
        draw(r.logits.data() + i * dp, b, t, qt, r.scratch.data(), out_p + (b * steps + t) * d);
      }
    }
  }

  // Runs every step, the rows in tasks on the threads; exponential: the categorical parts' draws,
  // made from generator window by window (up to 2^20 numbers each) before the window's steps.
  void run_all(bool exponential, const std::optional<at::Generator>& generator) {
    // One task per thread, with as few rows as that leaves, but at least one register block (a
    // task streams all the weights every step: fewer rows gain little, and a thread that waits
    // for a busy core holds the others up) and at most 64 (for the cache).
    const int64_t threads = std::max<int64_t>(1, at::get_num_threads());
    const int64_t rows = std::clamp<int64_t>((batch + threads - 1) / threads, 6, 64);
    const int64_t chunks = (batch + rows - 1) / rows;
    std::vector<Task> tasks(chunks);
    for (int64_t c = 0; c < chunks; ++c) {
      setup(tasks[c], c * rows, std::min(rows, batch - c * rows));
    }
    const int64_t per_step = batch * d;
    const int64_t window =
        exponential ? std::max<int64_t>(1, std::min<int64_t>(steps, (1 << 20) / per_step)) : steps;
    for (int64_t t0 = 0; t0 < steps; t0 += window) {
      const int64_t t1 = std::min(steps, t0 + window);
      Tensor q;
      if (exponential) {
        q = at::empty({t1 - t0, per_step}, at::TensorOptions().dtype(at::kFloat));
        q.exponential_(1.0, generator);
      }
      const float* q_p = q.defined() ? q.data_ptr<float>() : nullptr;
      for_tasks(1, chunks, 1, [&](int64_t, int64_t c) { run(tasks[c], t0, t1, q_p); });
    }
  }
};

const float* float_data(const Tensor& t, const char* name) {
  TORCH_CHECK(t.scalar_type() == at::kFloat && t.is_contiguous() && t.device().is_cpu(), name,
              " must be a contiguous float32 CPU tensor");
  return t.data_ptr<float>();
}

void check_panels(const Tensor& w, int64_t k, int64_t n, const char* name) {
  TORCH_CHECK(w.dim() == 3 && w.size(0) == padded(n) / kPanel && w.size(1) == k &&
                  w.size(2) == kPanel,
              name, " must be panels (", padded(n) / kPanel, ", ", k, ", ", kPanel, ")");
}

// The stack's weights (see sampler_inputs).
void stack_weights(Sampler& s, const std::vector<Tensor>& w_rec, const std::vector<Tensor>& bias) {
  s.layers = static_cast<int64_t>(w_rec.size());
  TORCH_CHECK(s.layers > 0 && static_cast<int64_t>(bias.size()) == s.layers - 1,
              "one bias per layer above 0");
  for (int64_t k = 0; k < s.layers; ++k) {
    check_panels(w_rec[k], k == 0 ? s.h : 2 * s.h, s.g, "w_rec");
    s.rec.push_back(float_data(w_rec[k], "w_rec"));
    if (k > 0) {
      TORCH_CHECK(bias[k - 1].numel() == s.g, "bias shapes: (G)");
      s.bias.push_back(float_data(bias[k - 1], "bias"));
    }
  }
}

// The inputs both decodes share: static_gates (B, ns, G): layer 0's gates from z and controls,
// both biases included (step t reads row t / (T / ns)); init (ni, B, 2 L H): flat states [c0, h0,
// c1, h1, ...], one per segment of T / ni steps (each segment starts from its own); first (B, D):
// the first step's input; w_x (D, G): the rows of W_ih0^T that read the previous output; w_rec:
// panels of W_hh0^T (H, G), then per layer of [W_ih^T; W_hh^T] (2H, G); bias: the layers above
// 0's (G); w_out: panels of W_out^T (H, D), b_out (D). The samples (B, T, D) are returned.
Tensor sampler_inputs(Sampler& s, const Tensor& static_gates, const Tensor& init,
                      const Tensor& first, const Tensor& w_x, const std::vector<Tensor>& w_rec,
                      const std::vector<Tensor>& bias, const Tensor& w_out, const Tensor& b_out,
                      int64_t steps, double temperature) {
  TORCH_CHECK(static_gates.dim() == 3 && init.dim() == 3 && first.dim() == 2 && w_x.dim() == 2,
              "sample: static gates (B, n, G), init (n, B, S), first (B, D), w_x (D, G)");
  s.batch = static_gates.size(0);
  s.ns = static_gates.size(1);
  s.g = static_gates.size(2);
  s.h = s.g / 4;
  s.layers = static_cast<int64_t>(w_rec.size());
  s.ni = init.size(0);
  s.d = w_x.size(0);
  s.gp = padded(s.g);
  s.dp = padded(s.d);
  s.steps = steps;
  s.temperature = static_cast<float>(temperature);
  TORCH_CHECK(s.batch > 0 && steps > 0 && s.layers > 0 && s.g == 4 * s.h && s.h > 0 && s.d > 0,
              "sample: empty shapes");
  TORCH_CHECK(s.ns > 0 && steps % s.ns == 0 && s.ni > 0 && steps % s.ni == 0,
              "sample: static gates and states must divide the steps");
  TORCH_CHECK(init.size(1) == s.batch && init.size(2) == 2 * s.layers * s.h &&
                  first.size(0) == s.batch && first.size(1) == s.d && w_x.size(1) == s.g,
              "sample: state shapes");
  TORCH_CHECK(b_out.numel() == s.d, "b_out must be (D)");
  TORCH_CHECK(temperature >= 0.0, "temperature must be non-negative");
  s.static_p = float_data(static_gates, "static_gates");
  s.init_p = float_data(init, "init");
  s.first_p = float_data(first, "first");
  s.wx_p = float_data(w_x, "w_x");
  stack_weights(s, w_rec, bias);
  check_panels(w_out, s.h, s.d, "w_out");
  s.wout_p = float_data(w_out, "w_out");
  s.bout_p = float_data(b_out, "b_out");
  // Every step's row is written by its task (at::zeros would wake the thread pool).
  Tensor out = at::empty({s.batch, steps, s.d}, static_gates.options());
  s.out_p = out.data_ptr<float>();
  return out;
}

// The stack over a whole sequence from its layer-0 gates (B, T, G) (the inputs times W_ih0^T, both
// biases included) and flat state init (B, 2 L H), as sampler_inputs' -> the top h (B, T, H).
// For the few rows of a conductor, where the layer kernel's library GEMMs cost most.
Tensor stack_run(const Tensor& gates, const Tensor& init, std::vector<Tensor> w_rec,
                 std::vector<Tensor> bias) {
  Below guard;
  Sampler s;
  TORCH_CHECK(gates.dim() == 3 && init.dim() == 2 && init.size(0) == gates.size(0),
              "stack_run: gates (B, T, G) and init (B, S)");
  s.batch = gates.size(0);
  s.steps = gates.size(1);
  s.ns = s.steps;
  s.ni = 1;
  s.g = gates.size(2);
  s.h = s.g / 4;
  s.gp = padded(s.g);
  TORCH_CHECK(s.batch > 0 && s.steps > 0 && s.h > 0 && s.g == 4 * s.h, "stack_run: shapes");
  stack_weights(s, w_rec, bias);
  TORCH_CHECK(init.size(1) == 2 * s.layers * s.h, "stack_run: init must be (B, 2 L H)");
  s.static_p = float_data(gates, "gates");
  s.init_p = float_data(init, "init");
  s.hidden = true;
  Tensor out = at::empty({s.batch, s.steps, s.h}, gates.options());
  s.out_p = out.data_ptr<float>();
  s.run_all(false, std::nullopt);
  return out;
}

// A categorical decode (see sampler_inputs): one class per part of depths (summing to D) and
// step, drawn as torch.multinomial draws them (the argmax at temperature 0) -> one-hot (B, T, D).
Tensor categorical_sample(const Tensor& static_gates, const Tensor& init, const Tensor& first,
                          const Tensor& w_x, std::vector<Tensor> w_rec, std::vector<Tensor> bias,
                          const Tensor& w_out, const Tensor& b_out, std::vector<int64_t> depths,
                          int64_t steps, double temperature,
                          std::optional<at::Generator> generator) {
  Below guard;
  Sampler s;
  Tensor out = sampler_inputs(s, static_gates, init, first, w_x, w_rec, bias, w_out, b_out,
                              steps, temperature);
  int64_t total = 0;
  for (int64_t width : depths) {
    TORCH_CHECK(width > 0, "part depths must be positive");
    s.offsets.push_back(total);
    total += width;
  }
  TORCH_CHECK(!depths.empty() && total == s.d, "part depths must add up to D");
  s.depths = std::move(depths);
  s.run_all(s.temperature != 0.0f, generator);
  return out;
}

// A GrooVAE decode (see sampler_inputs; D = 3N): per step and class a hit where uniforms (T, B,
// N) is below sigmoid(logit / temperature) (torch.bernoulli's draw), the sigmoid velocity and
// tanh offset, drawn around by factor and shift (T, B, N; the spread, optional), zero without a
// hit when hit_conditioned -> (B, T, 3N).
Tensor groove_sample(const Tensor& static_gates, const Tensor& init, const Tensor& first,
                     const Tensor& w_x, std::vector<Tensor> w_rec, std::vector<Tensor> bias,
                     const Tensor& w_out, const Tensor& b_out, int64_t steps, double temperature,
                     const Tensor& uniforms, const std::optional<Tensor>& factor,
                     const std::optional<Tensor>& shift, bool hit_conditioned) {
  Below guard;
  Sampler s;
  Tensor out = sampler_inputs(s, static_gates, init, first, w_x, w_rec, bias, w_out, b_out,
                              steps, temperature);
  TORCH_CHECK(s.d % 3 == 0 && temperature > 0.0, "groove_sample: D = 3N, temperature > 0");
  const std::vector<int64_t> draws{steps, s.batch, s.d / 3};
  TORCH_CHECK(uniforms.sizes() == draws, "uniforms must be (T, B, N)");
  s.uniform_p = float_data(uniforms, "uniforms");
  const bool spread = factor.has_value() && factor->defined();
  TORCH_CHECK(spread == (shift.has_value() && shift->defined()), "factor and shift go together");
  if (spread) {
    TORCH_CHECK(factor->sizes() == draws && shift->sizes() == draws,
                "factor and shift must be (T, B, N)");
    s.factor_p = float_data(*factor, "factor");
    s.shift_p = float_data(*shift, "shift");
  }
  s.hit_conditioned = hit_conditioned;
  s.run_all(false, std::nullopt);
  return out;
}

}  // namespace

TORCH_LIBRARY(musicvae_lstm, m) {
  m.def(
      "forward(Tensor x, Tensor h0, Tensor c0, Tensor[] w_ih, Tensor[] w_hh, Tensor[] bias, "
      "Tensor? lengths, bool save) -> (Tensor, Tensor, Tensor, Tensor, Tensor)");
  m.def(
      "backward(Tensor x, Tensor h0, Tensor c0, Tensor[] w_ih, Tensor[] w_hh, Tensor y, "
      "Tensor gates, Tensor cells, Tensor? lengths, Tensor? dy, Tensor? dhn, Tensor? dcn, "
      "bool need_dx, bool reuse_gates) -> (Tensor, Tensor, Tensor, Tensor[], Tensor[], "
      "Tensor[])");
  m.def("cell(Tensor gates, Tensor c) -> (Tensor, Tensor, Tensor)");
  m.def(
      "cell_backward(Tensor act, Tensor c_prev, Tensor c_new, Tensor? dh, Tensor? dc) -> "
      "(Tensor, Tensor)");
  m.def(
      "categorical_sample(Tensor static_gates, Tensor init, Tensor first, Tensor w_x, "
      "Tensor[] w_rec, Tensor[] bias, Tensor w_out, Tensor b_out, int[] depths, int steps, "
      "float temperature, Generator? generator) -> Tensor");
  m.def("stack_run(Tensor gates, Tensor init, Tensor[] w_rec, Tensor[] bias) -> Tensor");
  m.def("task_threads() -> int", &task_threads);
  m.def(
      "groove_sample(Tensor static_gates, Tensor init, Tensor first, Tensor w_x, "
      "Tensor[] w_rec, Tensor[] bias, Tensor w_out, Tensor b_out, int steps, float temperature, "
      "Tensor uniforms, Tensor? factor, Tensor? shift, bool hit_conditioned) -> Tensor");
}

TORCH_LIBRARY_IMPL(musicvae_lstm, CPU, m) {
  m.impl("forward", &layer_forward);
  m.impl("backward", &layer_backward);
  m.impl("cell", &cell);
  m.impl("cell_backward", &cell_backward);
  m.impl("categorical_sample", &categorical_sample);
  m.impl("groove_sample", &groove_sample);
  m.impl("stack_run", &stack_run);
}
