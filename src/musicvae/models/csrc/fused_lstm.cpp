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
// Types: S is the state type (float or double; gates, cells, bias); M is the GEMM type (S, or
// bfloat16 with S = float, where the caller wants bf16 matmuls). Chunks are fixed by the shapes,
// never the thread count, and the bias gradient sums them in order: a run repeats bit for bit.
//
// Registered as torch.ops.musicvae_lstm.{forward, backward, cell, cell_backward}; the Python side
// (musicvae/models/fused_lstm.py) wraps them in autograd Functions.

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <c10/core/impl/LocalDispatchKeySet.h>
#include <torch/library.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <tuple>
#include <vector>

namespace {

using at::Tensor;

// -- activations ---------------------------------------------------------------------------------

inline float from_bits(int32_t i) {
  float f;
  std::memcpy(&f, &i, sizeof f);
  return f;
}

inline int32_t to_bits(float f) {
  int32_t i;
  std::memcpy(&i, &f, sizeof i);
  return i;
}

// e^x as 2^n e^r, |r| <= ln2 / 2, with Cephes' polynomial: within 2 ulp on [-87, 88], and plain
// arithmetic that the compiler vectorizes (no libm call, no branch).
inline float exp_approx(float x) {
  x = std::min(std::max(x, -87.0f), 88.0f);
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

template <typename S>
inline S to_s(S v) {
  return v;
}
inline float to_s(at::BFloat16 v) { return static_cast<float>(v); }

template <typename M, typename S>
inline M to_m(S v) {
  return static_cast<M>(v);
}

// Pre-activation gates (B, 4H) in place -> activated (i, f, g, o).
template <typename S>
inline void activate(S* a, int64_t h) {
  for (int64_t j = 0; j < 2 * h; ++j) a[j] = sigmoid(a[j]);
  for (int64_t j = 2 * h; j < 3 * h; ++j) a[j] = tanh_(a[j]);
  for (int64_t j = 3 * h; j < 4 * h; ++j) a[j] = sigmoid(a[j]);
}

// One row's step forward: a = activated gates; c is updated in place; h written to hs and y.
template <typename S, typename M>
inline void row_forward(int64_t h, const M* gx, const M* gr, const S* bias, S* a, S* c, M* hs,
                        M* y, S* cs) {
  for (int64_t j = 0; j < 4 * h; ++j) a[j] = to_s(gx[j]) + to_s(gr[j]) + bias[j];
  activate(a, h);
  for (int64_t j = 0; j < h; ++j) {
    const S cn = a[h + j] * c[j] + a[j] * a[2 * h + j];
    c[j] = cn;
    const M out = to_m<M>(a[3 * h + j] * tanh_(cn));
    hs[j] = out;
    y[j] = out;
  }
  if (cs != nullptr) std::memcpy(cs, c, h * sizeof(S));
}

// One row's step backward. a: activated gates; c, cp: this step's and the previous cell;
// dha (+ dy, may be null): dL/dh; dc: dL/dc from later steps, updated in place to dL/dc_prev.
template <typename S, typename M>
inline void row_backward(int64_t h, const S* a, const S* c, const S* cp, const M* dha,
                         const M* dy, S* dc, M* dg, S* db) {
  for (int64_t j = 0; j < h; ++j) {
    const S i = a[j], f = a[h + j], g = a[2 * h + j], o = a[3 * h + j];
    const S tc = tanh_(c[j]);
    const S dh = to_s(dha[j]) + (dy != nullptr ? to_s(dy[j]) : S(0));
    const S dct = dc[j] + dh * o * (S(1) - tc * tc);
    const S di = dct * g * i * (S(1) - i);
    const S df = dct * cp[j] * f * (S(1) - f);
    const S dgg = dct * i * (S(1) - g * g);
    const S d_o = dh * tc * o * (S(1) - o);
    dc[j] = dct * f;
    dg[j] = to_m<M>(di);
    dg[h + j] = to_m<M>(df);
    dg[2 * h + j] = to_m<M>(dgg);
    dg[3 * h + j] = to_m<M>(d_o);
    db[j] += di;
    db[h + j] += df;
    db[2 * h + j] += dgg;
    db[3 * h + j] += d_o;
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

// Runs f(direction, chunk rows) for every task, in parallel.
template <typename F>
void for_tasks(int64_t dirs, int64_t batch, int64_t rows, F f) {
  const int64_t chunks = (batch + rows - 1) / rows;
  at::parallel_for(0, dirs * chunks, 1, [&](int64_t begin, int64_t end) {
    for (int64_t task = begin; task < end; ++task) f(task / chunks, task % chunks);
  });
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

// -- layer forward -------------------------------------------------------------------------------

template <typename S, typename M>
void forward_loop(const Tensor& gx, const std::vector<Tensor>& w_hh,
                  const std::vector<Tensor>& bias, const int64_t* len, Tensor& y, Tensor& hs,
                  Tensor& cs, Tensor& gates, Tensor& cells, bool save) {
  const int64_t batch = y.size(0), steps = y.size(1), dh = y.size(2);
  const int64_t dirs = hs.size(0), h = hs.size(2), g = 4 * h;
  const int64_t rows = chunk_rows(batch, g);
  const M* gx_p = gx.data_ptr<M>();
  M* y_p = y.data_ptr<M>();
  M* hs_p = hs.data_ptr<M>();
  S* cs_p = cs.data_ptr<S>();
  S* gates_p = save ? gates.data_ptr<S>() : nullptr;
  S* cells_p = save ? cells.data_ptr<S>() : nullptr;
  for_tasks(dirs, batch, rows, [&](int64_t d, int64_t c) {
    const Rows r = chunk_of(c, rows, batch, len, steps);
    const S* b_p = bias[d].data_ptr<S>();
    Tensor tmp = at::empty({r.n, g}, gx.options());
    Tensor h_rows = hs.select(0, d).narrow(0, r.r0, r.n);
    Tensor w_t = w_hh[d].t();
    std::vector<S> scratch(save ? 0 : g);
    const M* tmp_p = tmp.data_ptr<M>();
    for (int64_t s = 0; s < r.steps; ++s) {
      at::mm_out(tmp, h_rows, w_t);
      for (int64_t b = r.r0; b < r.r0 + r.n; ++b) {
        const int64_t l = row_len(len, b, steps);
        if (s >= l) continue;
        const int64_t t = time_of(d == 1, l, s);
        const int64_t bt = b * steps + t;
        S* a = save ? gates_p + ((d * batch * steps) + bt) * g : scratch.data();
        S* cell = save ? cells_p + ((d * batch * steps) + bt) * h : nullptr;
        row_forward<S, M>(h, gx_p + bt * dirs * g + d * g, tmp_p + (b - r.r0) * g, b_p, a,
                          cs_p + (d * batch + b) * h, hs_p + (d * batch + b) * h,
                          y_p + bt * dh + d * h, cell);
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
  const int64_t* len = lengths_ptr(lengths, batch, steps);
  const bool padded = len != nullptr && std::any_of(len, len + batch, [&](int64_t l) {
    return l < steps;
  });
  Tensor w_cat = dirs == 1 ? w_ih[0] : at::cat(w_ih, 0);
  Tensor gx = at::mm(x.view({batch * steps, in}), w_cat.t());  // (B * T, D * 4H)
  Tensor y = padded ? at::zeros({batch, steps, dirs * h}, x.options())
                    : at::empty({batch, steps, dirs * h}, x.options());
  Tensor hs = h0.to(x.scalar_type()).contiguous().clone();
  Tensor cs = c0.contiguous().clone();
  Tensor gates = save ? at::empty({dirs, batch, steps, g}, c0.options()) : Tensor();
  Tensor cells = save ? at::empty({dirs, batch, steps, h}, c0.options()) : Tensor();
  if (x.scalar_type() == at::kBFloat16) {
    TORCH_CHECK(c0.scalar_type() == at::kFloat, "bf16 GEMMs keep a float state");
    forward_loop<float, at::BFloat16>(gx, w_hh, bias, len, y, hs, cs, gates, cells, save);
  } else if (x.scalar_type() == at::kFloat) {
    forward_loop<float, float>(gx, w_hh, bias, len, y, hs, cs, gates, cells, save);
  } else {
    TORCH_CHECK(x.scalar_type() == at::kDouble, "float, double or bfloat16 inputs");
    forward_loop<double, double>(gx, w_hh, bias, len, y, hs, cs, gates, cells, save);
  }
  return {y, hs, cs, gates, cells};
}

// -- layer backward ------------------------------------------------------------------------------

template <typename S, typename M>
void backward_loop(const Tensor& h0, const Tensor& c0, const std::vector<Tensor>& w_hh,
                   const Tensor& y, const Tensor& gates, const Tensor& cells, const int64_t* len,
                   const Tensor& dy, const Tensor& dhn, Tensor& dc, Tensor& dgates,
                   Tensor& hprev, Tensor& dh0, Tensor& db_chunks) {
  const int64_t batch = y.size(0), steps = y.size(1), dh = y.size(2);
  const int64_t dirs = h0.size(0), h = h0.size(2), g = 4 * h;
  const int64_t rows = chunk_rows(batch, g);
  const int64_t chunks = (batch + rows - 1) / rows;
  const M* h0_p = h0.data_ptr<M>();
  const S* c0_p = c0.data_ptr<S>();
  const M* y_p = y.data_ptr<M>();
  const S* gates_p = gates.data_ptr<S>();
  const S* cells_p = cells.data_ptr<S>();
  const M* dy_p = dy.defined() ? dy.data_ptr<M>() : nullptr;
  const M* dhn_p = dhn.defined() ? dhn.data_ptr<M>() : nullptr;
  S* dc_p = dc.data_ptr<S>();
  M* dg_p = dgates.data_ptr<M>();
  M* hp_p = hprev.data_ptr<M>();
  M* dh0_p = dh0.data_ptr<M>();
  S* db_p = db_chunks.data_ptr<S>();
  for_tasks(dirs, batch, rows, [&](int64_t d, int64_t c) {
    const Rows r = chunk_of(c, rows, batch, len, steps);
    Tensor rec = at::zeros({r.n, h}, y.options());  // dL/dh from the step after
    Tensor dg_rows = r.uniform ? Tensor() : at::zeros({r.n, g}, y.options());
    std::vector<M> zeros(h, M(0));
    const M* rec_p = rec.data_ptr<M>();
    S* db = db_p + (d * chunks + c) * g;
    const int64_t ds = d * batch * steps;  // this direction's offset in (D, B, T, .) tensors
    for (int64_t s = r.steps - 1; s >= 0; --s) {
      for (int64_t b = r.r0; b < r.r0 + r.n; ++b) {
        const int64_t l = row_len(len, b, steps);
        if (s >= l) continue;
        const int64_t t = time_of(d == 1, l, s);
        const int64_t tp = d == 1 ? t + 1 : t - 1;  // the step before, in time
        const int64_t bt = b * steps + t;
        const M* dha = s == l - 1 ? (dhn_p != nullptr ? dhn_p + (d * batch + b) * h : zeros.data())
                                  : rec_p + (b - r.r0) * h;
        const S* cp = s == 0 ? c0_p + (d * batch + b) * h : cells_p + (ds + b * steps + tp) * h;
        M* dg = dg_p + bt * dirs * g + d * g;
        row_backward<S, M>(h, gates_p + (ds + bt) * g, cells_p + (ds + bt) * h, cp,
                           dha, dy_p != nullptr ? dy_p + bt * dh + d * h : nullptr,
                           dc_p + (d * batch + b) * h, dg, db);
        if (!r.uniform) std::memcpy(dg_rows.data_ptr<M>() + (b - r.r0) * g, dg, g * sizeof(M));
        const M* hp = s == 0 ? h0_p + (d * batch + b) * h : y_p + (b * steps + tp) * dh + d * h;
        std::memcpy(hp_p + bt * dirs * h + d * h, hp, h * sizeof(M));
      }
      Tensor a = r.uniform ? dgates.select(1, time_of(d == 1, r.steps, s))
                                 .narrow(0, r.r0, r.n)
                                 .narrow(1, d * g, g)
                           : dg_rows;
      at::mm_out(rec, a, w_hh[d]);
    }
    for (int64_t b = r.r0; b < r.r0 + r.n; ++b) {
      const bool ran = row_len(len, b, steps) > 0;
      const M* src = ran ? rec_p + (b - r.r0) * h
                         : (dhn_p != nullptr ? dhn_p + (d * batch + b) * h : zeros.data());
      std::memcpy(dh0_p + (d * batch + b) * h, src, h * sizeof(M));
    }
  });
}

std::tuple<Tensor, Tensor, Tensor, std::vector<Tensor>, std::vector<Tensor>, std::vector<Tensor>>
layer_backward(const Tensor& x, const Tensor& h0, const Tensor& c0, std::vector<Tensor> w_ih,
               std::vector<Tensor> w_hh, const Tensor& y, const Tensor& gates,
               const Tensor& cells, const std::optional<Tensor>& lengths,
               const std::optional<Tensor>& dy, const std::optional<Tensor>& dhn,
               const std::optional<Tensor>& dcn, bool need_dx) {
  Below guard;
  const int64_t dirs = h0.size(0), batch = x.size(0), steps = x.size(1), in = x.size(2);
  const int64_t h = h0.size(2), g = 4 * h;
  check_dirs(w_ih, dirs, "w_ih");
  check_dirs(w_hh, dirs, "w_hh");
  const int64_t* len = lengths_ptr(lengths, batch, steps);
  const bool padded = len != nullptr && std::any_of(len, len + batch, [&](int64_t l) {
    return l < steps;
  });
  const auto m_opts = x.options();
  Tensor h0m = h0.to(x.scalar_type()).contiguous();
  Tensor c0s = c0.contiguous();
  Tensor dy_t = dy.has_value() && dy->defined() ? dy->to(x.scalar_type()).contiguous() : Tensor();
  Tensor dhn_t =
      dhn.has_value() && dhn->defined() ? dhn->to(x.scalar_type()).contiguous() : Tensor();
  Tensor dc = dcn.has_value() && dcn->defined() ? dcn->to(c0.scalar_type()).contiguous().clone()
                                                : at::zeros_like(c0s);
  Tensor dgates = padded ? at::zeros({batch, steps, dirs * g}, m_opts)
                         : at::empty({batch, steps, dirs * g}, m_opts);
  Tensor hprev = padded ? at::zeros({batch, steps, dirs * h}, m_opts)
                        : at::empty({batch, steps, dirs * h}, m_opts);
  Tensor dh0 = at::empty({dirs, batch, h}, m_opts);
  const int64_t rows = chunk_rows(batch, g);
  const int64_t chunks = (batch + rows - 1) / rows;
  Tensor db_chunks = at::zeros({dirs, chunks, g}, c0.options());
  if (x.scalar_type() == at::kBFloat16) {
    backward_loop<float, at::BFloat16>(h0m, c0s, w_hh, y, gates, cells, len, dy_t, dhn_t, dc,
                                       dgates, hprev, dh0, db_chunks);
  } else if (x.scalar_type() == at::kFloat) {
    backward_loop<float, float>(h0m, c0s, w_hh, y, gates, cells, len, dy_t, dhn_t, dc, dgates,
                                hprev, dh0, db_chunks);
  } else {
    backward_loop<double, double>(h0m, c0s, w_hh, y, gates, cells, len, dy_t, dhn_t, dc, dgates,
                                  hprev, dh0, db_chunks);
  }
  Tensor dg_flat = dgates.view({batch * steps, dirs * g});
  Tensor w_cat = dirs == 1 ? w_ih[0] : at::cat(w_ih, 0);
  Tensor dx = need_dx ? at::mm(dg_flat, w_cat).view({batch, steps, in}) : Tensor();
  Tensor dw_cat = at::mm(dg_flat.t(), x.view({batch * steps, in}));
  Tensor hp_flat = hprev.view({batch * steps, dirs * h});
  std::vector<Tensor> dw_ih, dw_hh, db;
  for (int64_t d = 0; d < dirs; ++d) {
    dw_ih.push_back(dw_cat.narrow(0, d * g, g));
    dw_hh.push_back(at::mm(dg_flat.narrow(1, d * g, g).t(), hp_flat.narrow(1, d * h, h)));
    // The chunks' bias gradients, summed in chunk order.
    Tensor sum = db_chunks[d][0].clone();
    for (int64_t c = 1; c < chunks; ++c) sum.add_(db_chunks[d][c]);
    db.push_back(sum);
  }
  return {dx, dh0, dc, dw_ih, dw_hh, db};
}

// -- one cell step (the sampling and scheduled-sampling loops) -----------------------------------

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
      for (int64_t j = 0; j < h; ++j) {
        const S v = a[h + j] * c_p[b * h + j] + a[j] * a[2 * h + j];
        cn_p[b * h + j] = v;
        h_p[b * h + j] = a[3 * h + j] * tanh_(v);
      }
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

}  // namespace

TORCH_LIBRARY(musicvae_lstm, m) {
  m.def(
      "forward(Tensor x, Tensor h0, Tensor c0, Tensor[] w_ih, Tensor[] w_hh, Tensor[] bias, "
      "Tensor? lengths, bool save) -> (Tensor, Tensor, Tensor, Tensor, Tensor)");
  m.def(
      "backward(Tensor x, Tensor h0, Tensor c0, Tensor[] w_ih, Tensor[] w_hh, Tensor y, "
      "Tensor gates, Tensor cells, Tensor? lengths, Tensor? dy, Tensor? dhn, Tensor? dcn, "
      "bool need_dx) -> (Tensor, Tensor, Tensor, Tensor[], Tensor[], Tensor[])");
  m.def("cell(Tensor gates, Tensor c) -> (Tensor, Tensor, Tensor)");
  m.def(
      "cell_backward(Tensor act, Tensor c_prev, Tensor c_new, Tensor? dh, Tensor? dc) -> "
      "(Tensor, Tensor)");
}

TORCH_LIBRARY_IMPL(musicvae_lstm, CPU, m) {
  m.impl("forward", &layer_forward);
  m.impl("backward", &layer_backward);
  m.impl("cell", &cell);
  m.impl("cell_backward", &cell_backward);
}
