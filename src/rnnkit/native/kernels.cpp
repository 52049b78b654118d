// rnnkit's native sequence kernels: the whole time loop of a cell family, forward and backward, in one call.
//
// Each family runs its recurrent products through ATen (MKL / oneDNN GEMMs), its transcendental functions through
// ATen's vectorised sigmoid/tanh, and the rest of the pointwise gate math fused into one pass per step. The
// backward pass keeps only the products that depend on the step inside the loop (dh_{t-1} = dA_t W); the weight
// gradients are one large product over all steps after the loop, dW = Σ_t dA_tᵀ h_{t-1} (as haste and cuDNN do).
//
// Layout: the kernels step through px, states and gradients step-major (T, B, ·); the outputs ys are written, and
// their gradients dys read, batch-major (B, T, ·) contiguous, as the sequence layer returns them (no transposed copy).
//
// Padded batches: ``valid`` (T, B) holds 1 where a row's step is real and 0 past its end; a finished row keeps
// its state and outputs zero (rnnkit's padding rule, layers/recurrent.py), and gets no gradient at those steps.
// An undefined (empty) ``valid`` means every step is real.
#include <torch/extension.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <limits>
#include <type_traits>
#include <string>
#include <vector>

#include <ATen/Parallel.h>

#if defined(__AVX512F__) || (defined(__AVX2__) && defined(__FMA__))
#include <immintrin.h>
#endif

using torch::Tensor;

namespace {

// Step t of a step-major buffer (T, B, ...) as a raw pointer: no view per step (a select or narrow goes through
// the dispatcher and allocates, which weighs on a small step's few microseconds of gate math)
template <typename scalar_t>
inline scalar_t* at_step(const Tensor& x, int64_t t) { return x.data_ptr<scalar_t>() + t * x.stride(0); }

// step t's row of ``valid`` (T, B), or nullptr when every step is real
template <typename scalar_t>
inline const scalar_t* mask_rows(const Tensor& valid, int64_t t) {
  return valid.defined() && valid.numel() ? at_step<scalar_t>(valid, t) : nullptr;
}

// rows per task so that a step's pointwise work splits over the threads but no task is tiny
inline int64_t row_grain(int64_t H) { return std::max<int64_t>(1, 2048 / std::max<int64_t>(H, 1)); }

template <typename scalar_t>
inline scalar_t mask_at(const scalar_t* m, int64_t b) { return m ? m[b] : scalar_t(1); }

// A gradient that a backward pass reads step by step: the outputs' dys (B, T, N) batch-major, or the carried states'
// (T, B, N) step-major, contiguous — or absent (an empty tensor: autograd passes None for an output nobody used, and
// is not asked to fill zeros), read as zeros (one zero row with a row stride of 0).
struct StepGrad {
  Tensor g, zero;
  bool batch_major;
  int64_t T, B, N;
  StepGrad(const Tensor& grad, bool batch_major_, int64_t T_, int64_t B_, int64_t N_, const at::TensorOptions& o)
      : g(grad), batch_major(batch_major_), T(T_), B(B_), N(N_) {
    if (!present()) zero = torch::zeros({batch_major ? N : B * N}, o);
  }
  bool present() const { return g.defined() && g.numel(); }
  // step t's first row, and the stride between rows
  template <typename scalar_t>
  const scalar_t* rows(int64_t t) const {
    if (!present()) return zero.data_ptr<scalar_t>();
    return g.data_ptr<scalar_t>() + (batch_major ? t * N : t * B * N);
  }
  int64_t ld() const { return !present() ? (batch_major ? 0 : N) : (batch_major ? T * N : N); }
};

// ---- LSTM family: i, f, g, o gates with optional diagonal peepholes (Gers & Schmidhuber 2000) ----------------
//   a = px_t + W_hh h_{t-1};  i = σ(a_i + p_i c_{t-1});  f = σ(a_f + p_f c_{t-1});  g = tanh(a_g)
//   c_t = f c_{t-1} + i g;  o = σ(a_o + p_o c_t);  h_t = o tanh(c_t)

// The exponentials' arguments are clamped below overflow: under -ffast-math the vectorised exp (libmvec) does not
// return +inf for an overflowing argument, and tanh / sigmoid came out NaN from |pre-activation| of ~44 / ~88 on
// (test_saturated_gates_stay_finite). The clamp changes no float result: tanh(20) and 1 - sigmoid(-80) round to 1,
// and sigmoid(-80) ~ 2e-35 stands for anything smaller.
template <typename scalar_t>
constexpr scalar_t kExpArgMax = std::is_same_v<scalar_t, float> ? scalar_t(80) : scalar_t(700);

template <typename scalar_t>
inline scalar_t sigmoid(scalar_t v) {
  return scalar_t(1) / (scalar_t(1) + std::exp(std::min(-v, kExpArgMax<scalar_t>)));
}

template <typename scalar_t>
inline scalar_t tanh_(scalar_t v) {
  return scalar_t(1) - scalar_t(2) / (std::exp(std::min(scalar_t(2) * v, scalar_t(40))) + scalar_t(1));
}

// One step's gate math after the recurrent product, rows [b0, b1): a (B, 4H) holds the pre-activations on entry
// and i, f, g, o on exit.
template <typename scalar_t>
void lstm_step_forward(scalar_t* a, const scalar_t* h_prev, const scalar_t* c_prev, const scalar_t* p,
                       const scalar_t* m, scalar_t* c_new, scalar_t* tanh_c, scalar_t* y, int64_t ld_y, scalar_t* h,
                       scalar_t* c, int64_t b0, int64_t b1, int64_t H) {
  for (int64_t b = b0; b < b1; ++b) {
    scalar_t* ai = a + b * 4 * H;
    scalar_t* af = ai + H;
    scalar_t* ag = ai + 2 * H;
    scalar_t* ao = ai + 3 * H;
    const scalar_t keep = mask_at(m, b);
    const int64_t r = b * H;
#pragma omp simd
    for (int64_t j = 0; j < H; ++j) {
      const scalar_t cp = c_prev[r + j];
      const scalar_t i = sigmoid(ai[j] + (p ? p[j] * cp : scalar_t(0)));
      const scalar_t f = sigmoid(af[j] + (p ? p[H + j] * cp : scalar_t(0)));
      const scalar_t g = tanh_(ag[j]);
      const scalar_t cv = f * cp + i * g;
      const scalar_t o = sigmoid(ao[j] + (p ? p[2 * H + j] * cv : scalar_t(0)));
      const scalar_t tc = tanh_(cv);
      const scalar_t hv = o * tc;
      ai[j] = i;
      af[j] = f;
      ag[j] = g;
      ao[j] = o;
      c_new[r + j] = cv;
      tanh_c[r + j] = tc;
      y[b * ld_y + j] = keep != scalar_t(0) ? hv : scalar_t(0);
      h[r + j] = keep != scalar_t(0) ? hv : h_prev[r + j];
      c[r + j] = keep != scalar_t(0) ? cv : cp;
    }
  }
}

template <typename scalar_t>
void lstm_step_backward(const scalar_t* dy, int64_t ld_y, const scalar_t* dh_in, const scalar_t* dc_in, scalar_t* dh, scalar_t* dc,
                        const scalar_t* m, const scalar_t* a,
                        const scalar_t* c_prev, const scalar_t* c_new, const scalar_t* tanh_c, const scalar_t* p,
                        scalar_t* da, int64_t b0, int64_t b1, int64_t H) {
  for (int64_t b = b0; b < b1; ++b) {
    const scalar_t mb = mask_at(m, b);
    const scalar_t* g4 = a + b * 4 * H;
    scalar_t* d4 = da + b * 4 * H;
#pragma omp simd
    for (int64_t j = 0; j < H; ++j) {
      const int64_t k = b * H + j;
      const scalar_t i = g4[j], f = g4[H + j], g = g4[2 * H + j], o = g4[3 * H + j], tc = tanh_c[k];
      const scalar_t dht = dh[k] + dh_in[k], dct = dc[k] + dc_in[k];
      const scalar_t dhc = mb * (dy[b * ld_y + j] + dht);
      scalar_t dcc = mb * dct + dhc * o * (scalar_t(1) - tc * tc);
      const scalar_t dao = dhc * tc * o * (scalar_t(1) - o);
      if (p) dcc += dao * p[2 * H + j];
      const scalar_t dai = dcc * g * i * (scalar_t(1) - i);
      const scalar_t daf = dcc * c_prev[k] * f * (scalar_t(1) - f);
      const scalar_t dag = dcc * i * (scalar_t(1) - g * g);
      scalar_t dcp = dcc * f + (scalar_t(1) - mb) * dct;
      if (p) dcp += dai * p[j] + daf * p[H + j];
      d4[j] = dai;
      d4[H + j] = daf;
      d4[2 * H + j] = dag;
      d4[3 * H + j] = dao;
      dc[k] = dcp;
      dh[k] = (scalar_t(1) - mb) * dht;  // the part that passes a padded step; dA W is added after
    }
  }
}

template <typename scalar_t>
const scalar_t* ptr_or_null(const Tensor& t) { return t.defined() && t.numel() ? t.data_ptr<scalar_t>() : nullptr; }

// ---- The matrix products, in the state's precision or (mixed precision) in bfloat16 -------------------------
// With ``low`` (bf16 autocast) every product of a kernel takes bfloat16 operands (AMX / AVX-512-BF16, float32
// accumulation), while the carried state, the gate math and every sum of products stay float32.
//
// Every step multiplies the same recurrent weight, so a kernel prepares it once per call (``StepWeight``) in the
// form the per-step products run fastest with on this machine:
// * float32: MKL's packed GEMM (``cblas_sgemm_pack`` once, ``cblas_sgemm_compute`` per step) — measured 1.22-1.37x
//   ATen's addmm at (32 x 256) · (256 x 256 ... 1024) and (64 x 512) · (512 x 512 ... 2048) on an AMX Xeon
//   (benchmarks/bench_step_products.py), since an unpacked GEMM repacks the weight at every call;
// * bf16 products: MKL's bfloat16 x bfloat16 -> float32 GEMM, which adds into the float32 state in place (no
//   rounding of the product to bfloat16, no widening pass) — 1.36-2.29x oneDNN's bf16 mm plus the widening add;
// * otherwise (float64, or a torch built without MKL): ATen's addmm, in bfloat16 then widened for ``low``.
// The MKL entry points are weak references into torch's own MKL: a torch without them takes the ATen route.

extern "C" {
size_t cblas_sgemm_pack_get_size(int identifier, int m, int n, int k) __attribute__((weak));
void cblas_sgemm_pack(int layout, int identifier, int trans, int m, int n, int k, float alpha, const float* src,
                      int ld, float* dest) __attribute__((weak));
void cblas_sgemm_compute(int layout, int transa, int transb, int m, int n, int k, const float* a, int lda,
                         const float* b, int ldb, float beta, float* c, int ldc) __attribute__((weak));
void cblas_gemm_bf16bf16f32(int layout, int transa, int transb, int m, int n, int k, float alpha, const uint16_t* a,
                            int lda, const uint16_t* b, int ldb, float beta, float* c, int ldc) __attribute__((weak));
void cblas_sgemm(int layout, int transa, int transb, int m, int n, int k, float alpha, const float* a, int lda,
                 const float* b, int ldb, float beta, float* c, int ldc) __attribute__((weak));
}
constexpr int kRowMajor = 101, kNoTrans = 111, kTrans = 112, kPacked = 151, kBMatrix = 162;

// RNNKIT_MKL_STEP=0 turns the MKL routes off (the ATen route everywhere), to compare them
bool mkl_step_allowed() {
  static const bool allowed = [] {
    const char* v = std::getenv("RNNKIT_MKL_STEP");
    return !(v && std::string(v) == "0");
  }();
  return allowed;
}

bool mkl_float_packed() { return mkl_step_allowed() && cblas_sgemm_pack_get_size && cblas_sgemm_pack && cblas_sgemm_compute; }
bool mkl_bf16() { return mkl_step_allowed() && cblas_gemm_bf16bf16f32; }

// out = base + p, or out += p when base is undefined and ``accumulate``; out float32 (R, N) with unit column
// stride, base float32 (R, N) or a (N) row broadcast, p bfloat16 (R, N) contiguous.
void add_widened(Tensor& out, const Tensor& base, const Tensor& p, bool accumulate) {
  TORCH_CHECK(out.scalar_type() == at::kFloat && out.stride(1) == 1, "mixed precision needs a float32 state");
  const int64_t R = out.size(0), N = out.size(1), lo = out.stride(0);
  float* o = out.data_ptr<float>();
  const bool with_base = base.defined() && base.numel();
  const float* s = with_base ? base.data_ptr<float>() : (accumulate ? o : nullptr);
  const int64_t ls = with_base ? (base.dim() == 1 ? 0 : base.stride(0)) : lo;
  const uint16_t* q = reinterpret_cast<const uint16_t*>(p.data_ptr<at::BFloat16>());
  at::parallel_for(0, R, row_grain(N), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      float* o_r = o + r * lo;
      const float* s_r = s ? s + r * ls : nullptr;
      const uint16_t* q_r = q + r * N;
#pragma omp simd
      for (int64_t j = 0; j < N; ++j) {
        const uint32_t bits = static_cast<uint32_t>(q_r[j]) << 16;  // bfloat16 is the upper half of a float32
        float v;
        std::memcpy(&v, &bits, sizeof v);
        o_r[j] = (s_r ? s_r[j] : 0.f) + v;
      }
    }
  });
}

// dst (R, K) bfloat16 contiguous = s (R, K) float32 with row stride ls and unit column stride, rounded to nearest even; on the
// calling thread (a step's operand is small: an ATen copy's parallel region measured several times slower here)
void to_bf16(const float* s, int64_t ls, int64_t R, int64_t K, const Tensor& dst) {
  uint16_t* d = reinterpret_cast<uint16_t*>(dst.data_ptr<at::BFloat16>());
  for (int64_t r = 0; r < R; ++r) {
    const float* s_r = s + r * ls;
    uint16_t* d_r = d + r * K;
#pragma omp simd
    for (int64_t j = 0; j < K; ++j) {
      uint32_t bits;
      std::memcpy(&bits, s_r + j, sizeof bits);
      d_r[j] = static_cast<uint16_t>((bits + 0x7FFFu + ((bits >> 16) & 1u)) >> 16);  // finite values: the state
    }
  }
}

// A weight W (K, N) that the left operands of every step, (rows, K), multiply; see above for the routes.
struct StepWeight {
  Tensor w;         // (K, N) in the product's dtype: row-major for the bf16 and ATen routes, any strides beside `packed`
  Tensor packed;    // float32 route: MKL's packed W (bytes)
  Tensor lhs_bf16;  // bf16 route: (rows, K) scratch for the left operand
  int64_t rows = 0, K = 0, N = 0;
  bool dot = false;  // dot_rows over the rows of the (N, K) weight that `w` transposes
};

// Up to this many rows, a float32 product whose W is the transpose of a row-major (N, K) weight (the forward
// passes, W_hhᵀ as a view) runs as dot products over W's rows (dot_rows): a generation step reads W once, where
// MKL's packing (or an unpacked product at one row) cost several times the dot products
// (benchmarks/bench_generation.py --cells)
constexpr int64_t kDotRows = 4;

template <typename w_t>
void dot_rows(const w_t* w, int64_t N, int64_t ld_w, const float* bias, const float* x, int64_t ld_x, float* out,
              int64_t ld_o, int64_t B, int64_t K, bool accumulate);

// w_kn: W as (K, N), any strides; rows: the left operands' row count (the batch)
StepWeight step_weight(const Tensor& w_kn, bool low, int64_t rows) {
  StepWeight s;
  s.rows = rows;
  s.K = w_kn.size(0);
  s.N = w_kn.size(1);
  const bool fits = rows > 0 && s.K > 0 && s.N > 0 && rows < INT32_MAX && s.K < INT32_MAX && s.N < INT32_MAX;
  if (low) {
    s.w = w_kn.to(at::kBFloat16).contiguous();
    if (fits && mkl_bf16()) s.lhs_bf16 = torch::empty({rows, s.K}, w_kn.options().dtype(at::kBFloat16));
    return s;
  }
  if (!low && rows <= kDotRows && w_kn.scalar_type() == at::kFloat && w_kn.stride(0) == 1) {
    s.w = w_kn;  // read as rows of the (N, K) weight
    s.dot = true;
    return s;
  }
  if (fits && w_kn.scalar_type() == at::kFloat && mkl_float_packed()) {
    // MKL packs W as it is laid out: row-major (K, N), or the transpose of a row-major (N, K) weight (the forward
    // passes W_hhᵀ as a view), so no contiguous copy is made first
    const bool transposed = w_kn.stride(0) == 1 && w_kn.stride(1) >= s.K;
    const auto src = transposed || w_kn.stride(1) == 1 ? w_kn : w_kn.contiguous();
    const auto bytes = cblas_sgemm_pack_get_size(kBMatrix, rows, s.N, s.K);
    s.packed = torch::empty({static_cast<int64_t>(bytes / sizeof(float)) + 16}, src.options());
    cblas_sgemm_pack(kRowMajor, kBMatrix, transposed ? kTrans : kNoTrans, rows, s.N, s.K, 1.f, src.data_ptr<float>(),
                     transposed ? src.stride(1) : src.stride(0), s.packed.data_ptr<float>());
    s.w = w_kn;  // (a view: only a fallback product reads it)
    return s;
  }
  // a transposed view as it is (the product reads either layout): no copy of W per call
  s.w = w_kn.stride(0) == 1 || w_kn.stride(1) == 1 ? w_kn : w_kn.contiguous();
  return s;
}

// Rows (rows, cols) of a buffer with row stride ld and unit column stride, at an element offset from its data
// pointer: a step's operand without a view (see at_step); the buffer outlives it
struct Rows {
  const Tensor* owner;
  int64_t offset, rows, cols, ld;
  template <typename T>
  T* ptr() const { return owner->data_ptr<T>() + offset; }
  Tensor view() const { return owner->as_strided({rows, cols}, {ld, 1}, owner->storage_offset() + offset); }
  Rows columns(int64_t first, int64_t n) const { return {owner, offset + first, rows, n, ld}; }
};

// step t of x (T, B, N) with unit stride along N; all rows of x (R, N)
inline Rows step_rows(const Tensor& x, int64_t t) { return {&x, t * x.stride(0), x.size(1), x.size(2), x.stride(1)}; }
inline Rows all_rows(const Tensor& x) { return {&x, 0, x.size(0), x.size(1), x.stride(0)}; }

// out = beta · out + lhs · W (beta 0 or 1): MKL takes the pointers; the ATen route a view
void product_step(const Rows& out, const Rows& lhs, const StepWeight& w, float beta) {
  const bool mkl = out.owner->scalar_type() == at::kFloat && lhs.owner->scalar_type() == at::kFloat &&
                   lhs.rows == w.rows && out.rows == w.rows;
  if (mkl && w.dot) {
    dot_rows(w.w.data_ptr<float>(), w.N, w.w.stride(1), nullptr, lhs.ptr<float>(), lhs.ld, out.ptr<float>(), out.ld,
             w.rows, w.K, beta != 0.f);
  } else if (mkl && w.packed.defined()) {
    cblas_sgemm_compute(kRowMajor, kNoTrans, kPacked, w.rows, w.N, w.K, lhs.ptr<float>(), lhs.ld,
                        w.packed.data_ptr<float>(), w.N, beta, out.ptr<float>(), out.ld);
  } else if (mkl && w.lhs_bf16.defined()) {
    to_bf16(lhs.ptr<float>(), lhs.ld, lhs.rows, lhs.cols, w.lhs_bf16);
    cblas_gemm_bf16bf16f32(kRowMajor, kNoTrans, kNoTrans, w.rows, w.N, w.K, 1.f,
                           reinterpret_cast<const uint16_t*>(w.lhs_bf16.data_ptr<at::BFloat16>()), w.K,
                           reinterpret_cast<const uint16_t*>(w.w.data_ptr<at::BFloat16>()), w.N, beta,
                           out.ptr<float>(), out.ld);
  } else {
    Tensor o = out.view();
    if (w.w.scalar_type() == o.scalar_type()) {
      if (beta == 0.f) at::mm_out(o, lhs.view(), w.w); else o.addmm_(lhs.view(), w.w);
    } else {
      add_widened(o, Tensor(), at::mm(lhs.view().to(w.w.scalar_type()), w.w), beta != 0.f);
    }
  }
}

// out += lhs · W
void product_add(const Rows& out, const Rows& lhs, const StepWeight& w) { product_step(out, lhs, w, 1.f); }

// out = base + lhs · W (base undefined: out = lhs · W; base (N) is a row broadcast)
void product_into(const Rows& out, const Tensor& base, const Rows& lhs, const StepWeight& w) {
  const bool with_base = base.defined() && base.numel();
  if (with_base && out.owner->scalar_type() == at::kFloat && base.scalar_type() == at::kFloat &&
      base.dim() == 1 && base.is_contiguous()) {
    // the bias row into each output row in place: a copy_ through the dispatcher (and a view) cost ~15 µs per step
    float* o = out.ptr<float>();
    const float* b = base.data_ptr<float>();
    for (int64_t r = 0; r < out.rows; ++r) std::memcpy(o + r * out.ld, b, out.cols * sizeof(float));
  } else if (with_base) {
    out.view().copy_(base);
  }
  product_step(out, lhs, w, with_base ? 1.f : 0.f);
}

// lhsᵀ · rhs over all steps (the weight gradients), in bfloat16 operands with ``low``; returned in lhs's dtype
Tensor product_over_steps(const Tensor& lhs, const Tensor& rhs, bool low) {
  if (!low) return lhs.t().mm(rhs);
  return lhs.to(at::kBFloat16).t().mm(rhs.to(at::kBFloat16)).to(lhs.scalar_type());
}

}  // namespace

// px (T, B, 4H) input projection with bias; w_hh (4H, H); peep (3, H) = [p_i; p_f; p_o] or empty; h0, c0 (B, H).
// Returns ys (B, T, H), hs (T+1, B, H) carried h (hs[0] = h0), cs (T+1, B, H), c_new (T, B, H), tanh_c (T, B, H),
// gates (T, B, 4H) after their nonlinearities.
std::vector<Tensor> lstm_forward(const Tensor& px, const Tensor& w_hh, const Tensor& peep, const Tensor& h0,
                                 const Tensor& c0, const Tensor& valid, bool low) {
  const int64_t T = px.size(0), B = px.size(1), H = px.size(2) / 4;
  auto gates = px.clone(at::MemoryFormat::Contiguous);  // each step adds its recurrent product in place
  auto hs = torch::empty({T + 1, B, H}, px.options());
  auto cs = torch::empty({T + 1, B, H}, px.options());
  auto c_new = torch::empty({T, B, H}, px.options());
  auto tanh_c = torch::empty({T, B, H}, px.options());
  auto ys = torch::empty({B, T, H}, px.options());  // batch-major, as the layer returns it
  hs[0].copy_(h0);
  cs[0].copy_(c0);
  const auto wt = step_weight(w_hh.t(), low, B);
  for (int64_t t = 0; t < T; ++t) {
    product_add(step_rows(gates, t), step_rows(hs, t), wt);
    AT_DISPATCH_FLOATING_TYPES(px.scalar_type(), "lstm_forward", [&] {
      scalar_t* a_ = at_step<scalar_t>(gates, t);
      const scalar_t* p = ptr_or_null<scalar_t>(peep);
      const scalar_t* m_ = mask_rows<scalar_t>(valid, t);
      const scalar_t *hp = at_step<scalar_t>(hs, t), *cp = at_step<scalar_t>(cs, t);
      scalar_t *cn = at_step<scalar_t>(c_new, t), *tc = at_step<scalar_t>(tanh_c, t);
      scalar_t* y = ys.data_ptr<scalar_t>() + t * H;
      scalar_t *h = at_step<scalar_t>(hs, t + 1), *c = at_step<scalar_t>(cs, t + 1);
      at::parallel_for(0, B, row_grain(H), [&](int64_t b0, int64_t b1) {
        lstm_step_forward<scalar_t>(a_, hp, cp, p, m_, cn, tc, y, T * H, h, c, b0, b1, H);
      });
    });
  }
  return {ys, hs, cs, c_new, tanh_c, gates};
}

// Gradients of lstm_forward, given those of ys and of the carried states after every step, dhs and dcs (T, B, H):
// returns d px (T, B, 4H), d w_hh, d peep (3, H) (empty without peepholes), d h0, d c0.
std::vector<Tensor> lstm_backward(const Tensor& dys, const Tensor& dhs, const Tensor& dcs, const Tensor& w_hh,
                                  const Tensor& peep, const Tensor& valid, const Tensor& hs, const Tensor& cs,
                                  const Tensor& c_new, const Tensor& tanh_c, const Tensor& gates, bool low) {
  const int64_t T = gates.size(0), B = gates.size(1), H = gates.size(2) / 4;
  const auto w = step_weight(w_hh, low, B);
  const StepGrad gy(dys, true, T, B, H, gates.options()), gh(dhs, false, T, B, H, gates.options()),
      gc(dcs, false, T, B, H, gates.options());
  auto da = torch::empty_like(gates);
  auto dh = torch::zeros({B, H}, gates.options());
  auto dc = torch::zeros({B, H}, gates.options());
  for (int64_t t = T - 1; t >= 0; --t) {
    AT_DISPATCH_FLOATING_TYPES(gates.scalar_type(), "lstm_backward", [&] {
      const scalar_t *dy = gy.rows<scalar_t>(t), *m_ = mask_rows<scalar_t>(valid, t);
      const scalar_t *dhi = gh.rows<scalar_t>(t), *dci = gc.rows<scalar_t>(t);
      const scalar_t *g = at_step<scalar_t>(gates, t), *cp = at_step<scalar_t>(cs, t);
      const scalar_t *cn = at_step<scalar_t>(c_new, t), *tc = at_step<scalar_t>(tanh_c, t);
      const scalar_t* p = ptr_or_null<scalar_t>(peep);
      scalar_t *dh_ = dh.data_ptr<scalar_t>(), *dc_ = dc.data_ptr<scalar_t>(), *da_ = at_step<scalar_t>(da, t);
      at::parallel_for(0, B, row_grain(H), [&](int64_t b0, int64_t b1) {
        lstm_step_backward<scalar_t>(dy, gy.ld(), dhi, dci, dh_, dc_, m_, g, cp, cn, tc, p, da_, b0, b1, H);
      });
    });
    product_add(all_rows(dh), step_rows(da, t), w);
  }
  const auto flat = da.view({T * B, 4 * H});
  auto dw = product_over_steps(flat, hs.narrow(0, 0, T).reshape({T * B, H}), low);
  Tensor dpeep;
  if (peep.defined() && peep.numel()) {
    auto c_prev = cs.narrow(0, 0, T);
    dpeep = torch::stack({(da.narrow(2, 0, H) * c_prev).sum({0, 1}), (da.narrow(2, H, H) * c_prev).sum({0, 1}),
                          (da.narrow(2, 3 * H, H) * c_new).sum({0, 1})});
  }
  return {da, dw, dpeep, dh, dc};
}

// ---- Gated-update family: GRU in Cho et al.'s form (reset before the product) and MUT1-3 ----------------------
//   z = σ(a_z), r = σ(a_r)  with  [a_z, a_r] = px_t + W_h h_{t-1} on the gate blocks W_h reads (+ W_t tanh(h_{t-1})
//   on the z block for MUT3; MUT1's W_h reads the r block only, its z is σ of the input term alone)
//   n = tanh(px_c + W_c (r ⊙ h_{t-1}))
//   h_t = z h_{t-1} + (1 - z) n   (GRU, ``z_keeps`` true)   or   z n + (1 - z) h_{t-1}   (MUT1-3)
// px (T, B, 3H) holds the blocks z, r, candidate at z_block, r_block = 1 - z_block, 2.

struct GatedSpec {
  int64_t z_block;     // 0 or 1: which of px's first two H-blocks is z (r is the other)
  int64_t h_col;       // first column of the gate pre-activations that W_h h_{t-1} adds to
  bool z_keeps;        // h_t = z h_{t-1} + (1 - z) n  (else z n + (1 - z) h_{t-1})
};

// The spec with its switch as a compile-time constant (it hides the base's): the gate loops compiled per cell
// form, as with_activation does for the Elman family (a runtime switch in these loops measured slower)
template <bool keeps>
struct GatedForm : GatedSpec {
  static constexpr bool z_keeps = keeps;
};

template <typename F>
void with_form(const GatedSpec& s, F&& body) {
  if (s.z_keeps) body(GatedForm<true>{s}); else body(GatedForm<false>{s});
}

template <typename scalar_t, typename Spec>
void gated_gates_forward(scalar_t* a, const scalar_t* h_prev, scalar_t* rh, const Spec& s, int64_t b0,
                         int64_t b1, int64_t H) {
  for (int64_t b = b0; b < b1; ++b) {
    scalar_t* az = a + b * 3 * H + s.z_block * H;
    scalar_t* ar = a + b * 3 * H + (1 - s.z_block) * H;
    const scalar_t* hp = h_prev + b * H;
    scalar_t* rh_ = rh + b * H;
#pragma omp simd
    for (int64_t j = 0; j < H; ++j) {
      az[j] = sigmoid(az[j]);
      const scalar_t r = sigmoid(ar[j]);
      ar[j] = r;
      rh_[j] = r * hp[j];
    }
  }
}

template <typename scalar_t, typename Spec>
void gated_update_forward(scalar_t* a, const scalar_t* h_prev, const scalar_t* m, scalar_t* y, int64_t ld_y,
                          scalar_t* h, const Spec& s, int64_t b0, int64_t b1, int64_t H) {
  for (int64_t b = b0; b < b1; ++b) {
    const scalar_t* z = a + b * 3 * H + s.z_block * H;
    scalar_t* an = a + b * 3 * H + 2 * H;
    const bool real = mask_at(m, b) != scalar_t(0);
    const int64_t r = b * H;
#pragma omp simd
    for (int64_t j = 0; j < H; ++j) {
      const scalar_t n = tanh_(an[j]);
      an[j] = n;
      const scalar_t hp = h_prev[r + j];
      const scalar_t hv = s.z_keeps ? n + z[j] * (hp - n) : hp + z[j] * (n - hp);
      y[b * ld_y + j] = real ? hv : scalar_t(0);
      h[r + j] = real ? hv : hp;
    }
  }
}

// Backward, first half: from dh (B, H) and dy, the candidate's pre-activation gradient into da's candidate block,
// dz into da's z block (before the gate derivative), and dh's direct part.
template <typename scalar_t, typename Spec>
void gated_update_backward(const scalar_t* dy, int64_t ld_y, const scalar_t* dh_in, scalar_t* dh, const scalar_t* m, const scalar_t* a,
                           const scalar_t* h_prev, scalar_t* da, const Spec& s, int64_t b0, int64_t b1,
                           int64_t H) {
  for (int64_t b = b0; b < b1; ++b) {
    const scalar_t mb = mask_at(m, b);
    const scalar_t* z = a + b * 3 * H + s.z_block * H;
    const scalar_t* n = a + b * 3 * H + 2 * H;
    scalar_t* dz = da + b * 3 * H + s.z_block * H;
    scalar_t* dn = da + b * 3 * H + 2 * H;
    const int64_t r = b * H;
#pragma omp simd
    for (int64_t j = 0; j < H; ++j) {
      const scalar_t dht = dh[r + j] + dh_in[r + j];
      const scalar_t d = mb * (dy[b * ld_y + j] + dht);
      const scalar_t hp = h_prev[r + j];
      const scalar_t zj = z[j], nj = n[j];
      const scalar_t dnj = s.z_keeps ? d * (scalar_t(1) - zj) : d * zj;
      dz[j] = s.z_keeps ? d * (hp - nj) : d * (nj - hp);
      dn[j] = dnj * (scalar_t(1) - nj * nj);
      dh[r + j] = (scalar_t(1) - mb) * dht + (s.z_keeps ? d * zj : d * (scalar_t(1) - zj));
    }
  }
}

// Backward, second half: drh = dn W_c (B, H) given; the gate pre-activation gradients and dh's r ⊙ h part.
template <typename scalar_t, typename Spec>
void gated_gates_backward(const scalar_t* drh, scalar_t* dh, const scalar_t* a, const scalar_t* h_prev,
                          scalar_t* da, const Spec& s, int64_t b0, int64_t b1, int64_t H) {
  for (int64_t b = b0; b < b1; ++b) {
    const scalar_t* z = a + b * 3 * H + s.z_block * H;
    const scalar_t* rr = a + b * 3 * H + (1 - s.z_block) * H;
    scalar_t* dz = da + b * 3 * H + s.z_block * H;
    scalar_t* dr = da + b * 3 * H + (1 - s.z_block) * H;
    const int64_t k = b * H;
#pragma omp simd
    for (int64_t j = 0; j < H; ++j) {
      const scalar_t rj = rr[j], zj = z[j];
      dr[j] = drh[k + j] * h_prev[k + j] * rj * (scalar_t(1) - rj);
      dz[j] = dz[j] * zj * (scalar_t(1) - zj);
      dh[k + j] += drh[k + j] * rj;
    }
  }
}

template <typename scalar_t>
void tanh_into(const scalar_t* x, scalar_t* y, int64_t n) {
#pragma omp simd
  for (int64_t j = 0; j < n; ++j) y[j] = tanh_(x[j]);
}

GatedSpec gated_spec(int64_t z_block, int64_t h_col, bool z_keeps) {
  TORCH_CHECK(z_block == 0 || z_block == 1, "z_block must be 0 or 1");
  return GatedSpec{z_block, h_col, z_keeps};
}

// px (T, B, 3H); w_h (k·H, H) added to columns [h_col, h_col + k·H) of the gates; w_t (H, H) on tanh(h) into the
// z block, or empty; w_c (H, H). Returns ys, hs (T+1, B, H), gates (T, B, 3H) after their nonlinearities,
// rh (T, B, H) = r ⊙ h_{t-1}, th (T, B, H) = tanh(h_{t-1}) (empty without w_t).
std::vector<Tensor> gated_forward(const Tensor& px, const Tensor& w_h, const Tensor& w_t, const Tensor& w_c,
                                  const Tensor& h0, const Tensor& valid, int64_t z_block, int64_t h_col,
                                  bool z_keeps, bool low) {
  const auto s = gated_spec(z_block, h_col, z_keeps);
  const int64_t T = px.size(0), B = px.size(1), H = px.size(2) / 3, kH = w_h.size(0);
  const bool with_t = w_t.defined() && w_t.numel();
  auto gates = px.clone();
  auto hs = torch::empty({T + 1, B, H}, px.options());
  auto ys = torch::empty({B, T, H}, px.options());  // batch-major, as the layer returns it
  auto rh = torch::empty({T, B, H}, px.options());
  auto th = with_t ? torch::empty({T, B, H}, px.options()) : Tensor();
  hs[0].copy_(h0);
  const auto wht = step_weight(w_h.t(), low, B), wct = step_weight(w_c.t(), low, B);
  const auto wtt = with_t ? step_weight(w_t.t(), low, B) : StepWeight();
  for (int64_t t = 0; t < T; ++t) {
    const Rows a = step_rows(gates, t), h_prev = step_rows(hs, t);
    product_add(a.columns(h_col, kH), h_prev, wht);
    if (with_t) {
      const Rows th_t = step_rows(th, t);
      AT_DISPATCH_FLOATING_TYPES(px.scalar_type(), "gated_tanh", [&] {
        tanh_into<scalar_t>(h_prev.ptr<scalar_t>(), th_t.ptr<scalar_t>(), B * H);
      });
      product_add(a.columns(z_block * H, H), th_t, wtt);
    }
    const Rows rh_t = step_rows(rh, t);
    AT_DISPATCH_FLOATING_TYPES(px.scalar_type(), "gated_gates", [&] {
      scalar_t *a_ = a.ptr<scalar_t>(), *r_ = rh_t.ptr<scalar_t>();
      const scalar_t* hp = h_prev.ptr<scalar_t>();
      with_form(s, [&](const auto& form) {
        at::parallel_for(0, B, row_grain(H), [&](int64_t b0, int64_t b1) {
          gated_gates_forward<scalar_t>(a_, hp, r_, form, b0, b1, H);
        });
      });
    });
    product_add(a.columns(2 * H, H), rh_t, wct);
    AT_DISPATCH_FLOATING_TYPES(px.scalar_type(), "gated_update", [&] {
      scalar_t *a_ = a.ptr<scalar_t>(), *y = ys.data_ptr<scalar_t>() + t * H, *h = at_step<scalar_t>(hs, t + 1);
      const scalar_t *hp = h_prev.ptr<scalar_t>(), *m_ = mask_rows<scalar_t>(valid, t);
      with_form(s, [&](const auto& form) {
        at::parallel_for(0, B, row_grain(H), [&](int64_t b0, int64_t b1) {
          gated_update_forward<scalar_t>(a_, hp, m_, y, T * H, h, form, b0, b1, H);
        });
      });
    });
  }
  return {ys, hs, gates, rh, th};
}

// Gradients of gated_forward, given those of ys and of the carried states dhs (T, B, H): d px (T, B, 3H), d w_h,
// d w_t (empty without it), d w_c, d h0.
std::vector<Tensor> gated_backward(const Tensor& dys, const Tensor& dhs, const Tensor& w_h, const Tensor& w_t,
                                   const Tensor& w_c, const Tensor& valid, const Tensor& hs, const Tensor& gates,
                                   const Tensor& rh, const Tensor& th, int64_t z_block, int64_t h_col,
                                   bool z_keeps, bool low) {
  const auto s = gated_spec(z_block, h_col, z_keeps);
  const int64_t T = gates.size(0), B = gates.size(1), H = gates.size(2) / 3, kH = w_h.size(0);
  const bool with_t = w_t.defined() && w_t.numel();
  const StepGrad gy(dys, true, T, B, H, gates.options()), gh(dhs, false, T, B, H, gates.options());
  auto da = torch::empty_like(gates);  // every block written at every step (z, n below; r in the second half)
  auto dh = torch::zeros({B, H}, gates.options());
  auto drh = torch::empty({B, H}, gates.options());
  auto dth = with_t ? torch::empty({B, H}, gates.options()) : Tensor();
  const auto wh = step_weight(w_h, low, B), wc = step_weight(w_c, low, B);
  const auto wtl = with_t ? step_weight(w_t, low, B) : StepWeight();
  for (int64_t t = T - 1; t >= 0; --t) {
    const Rows da_t = step_rows(da, t), a = step_rows(gates, t), h_prev = step_rows(hs, t);
    AT_DISPATCH_FLOATING_TYPES(gates.scalar_type(), "gated_update_backward", [&] {
      const scalar_t *dy = gy.rows<scalar_t>(t), *dhi = gh.rows<scalar_t>(t);
      const scalar_t *m_ = mask_rows<scalar_t>(valid, t), *a_ = a.ptr<scalar_t>(), *hp = h_prev.ptr<scalar_t>();
      scalar_t *dh_ = dh.data_ptr<scalar_t>(), *da_ = da_t.ptr<scalar_t>();
      with_form(s, [&](const auto& form) {
        at::parallel_for(0, B, row_grain(H), [&](int64_t b0, int64_t b1) {
          gated_update_backward<scalar_t>(dy, gy.ld(), dhi, dh_, m_, a_, hp, da_, form, b0, b1, H);
        });
      });
    });
    product_into(all_rows(drh), Tensor(), da_t.columns(2 * H, H), wc);
    AT_DISPATCH_FLOATING_TYPES(gates.scalar_type(), "gated_gates_backward", [&] {
      const scalar_t *d_ = drh.data_ptr<scalar_t>(), *a_ = a.ptr<scalar_t>(), *hp = h_prev.ptr<scalar_t>();
      scalar_t *dh_ = dh.data_ptr<scalar_t>(), *da_ = da_t.ptr<scalar_t>();
      with_form(s, [&](const auto& form) {
        at::parallel_for(0, B, row_grain(H), [&](int64_t b0, int64_t b1) {
          gated_gates_backward<scalar_t>(d_, dh_, a_, hp, da_, form, b0, b1, H);
        });
      });
    });
    product_add(all_rows(dh), da_t.columns(h_col, kH), wh);
    if (with_t) {
      product_into(all_rows(dth), Tensor(), da_t.columns(z_block * H, H), wtl);
      dh.addcmul_(dth, 1 - th[t] * th[t]);
    }
  }
  const auto flat = da.view({T * B, 3 * H});
  auto dw_h = product_over_steps(flat.narrow(1, h_col, kH), hs.narrow(0, 0, T).reshape({T * B, H}), low);
  auto dw_c = product_over_steps(flat.narrow(1, 2 * H, H), rh.view({T * B, H}), low);
  Tensor dw_t;
  if (with_t) dw_t = product_over_steps(flat.narrow(1, z_block * H, H), th.view({T * B, H}), low);
  return {da, dw_h, dw_t, dw_c, dh};
}

// ---- Elman family with leak rates: Elman's RNN and leaky-integrator units (seed 003, "Leaky units") ----------
//   u_t = σ(px_t + W h_{t-1});  h_t = h_{t-1} + a ⊙ (u_t - h_{t-1})   (a = 1/τ per unit; without a: h_t = u_t)
// σ: 0 tanh, 1 relu, 2 sigmoid, 3 identity.

template <typename scalar_t>
inline scalar_t activate(scalar_t v, int64_t kind) {
  switch (kind) {
    case 0: return tanh_(v);
    case 1: return v > scalar_t(0) ? v : scalar_t(0);
    case 2: return sigmoid(v);
    default: return v;
  }
}

template <typename scalar_t>
inline scalar_t activation_slope(scalar_t u, int64_t kind) {  // σ'(pre) from u = σ(pre)
  switch (kind) {
    case 0: return scalar_t(1) - u * u;
    case 1: return u > scalar_t(0) ? scalar_t(1) : scalar_t(0);
    case 2: return u * (scalar_t(1) - u);
    default: return scalar_t(1);
  }
}

// Calls body(kind) with the activation kind as a compile-time constant (std::integral_constant), so that every gate
// loop is compiled once per activation: with a switch on a runtime kind inside the vectorised loop the leaky cell's
// pointwise pass was markedly slower (docs/benchmarks.md has the training speed before and after).
template <typename F>
void with_activation(int64_t kind, F&& body) {
  switch (kind) {
    case 0: body(std::integral_constant<int64_t, 0>{}); break;
    case 1: body(std::integral_constant<int64_t, 1>{}); break;
    case 2: body(std::integral_constant<int64_t, 2>{}); break;
    default: body(std::integral_constant<int64_t, 3>{}); break;
  }
}

template <typename scalar_t, typename Kind>
void leaky_step_forward(scalar_t* u, const scalar_t* h_prev, const scalar_t* rate, const scalar_t* m, scalar_t* y,
                        int64_t ld_y, scalar_t* h, Kind kind, int64_t b0, int64_t b1, int64_t H) {
  for (int64_t b = b0; b < b1; ++b) {
    const bool real = mask_at(m, b) != scalar_t(0);
    const int64_t r = b * H;
#pragma omp simd
    for (int64_t j = 0; j < H; ++j) {
      const scalar_t uj = activate(u[r + j], Kind::value);
      u[r + j] = uj;
      const scalar_t hp = h_prev[r + j];
      const scalar_t hv = rate ? hp + rate[j] * (uj - hp) : uj;
      y[b * ld_y + j] = real ? hv : scalar_t(0);
      h[r + j] = real ? hv : hp;
    }
  }
}

template <typename scalar_t, typename Kind>
void leaky_step_backward(const scalar_t* dy, int64_t ld_y, const scalar_t* dh_in, scalar_t* dh, const scalar_t* m,
                         const scalar_t* u, const scalar_t* h_prev, const scalar_t* rate, scalar_t* da, scalar_t* dr,
                         Kind kind, int64_t b0, int64_t b1, int64_t H) {
  for (int64_t b = b0; b < b1; ++b) {
    const scalar_t mb = mask_at(m, b);
    const int64_t r = b * H;
#pragma omp simd
    for (int64_t j = 0; j < H; ++j) {
      const scalar_t dht = dh[r + j] + dh_in[r + j];
      const scalar_t d = mb * (dy[b * ld_y + j] + dht);
      const scalar_t a = rate ? rate[j] : scalar_t(1);
      da[r + j] = d * a * activation_slope(u[r + j], Kind::value);
      if (dr) dr[r + j] = d * (u[r + j] - h_prev[r + j]);  // ∂h_t/∂a = u_t - h_{t-1}
      dh[r + j] = (scalar_t(1) - mb) * dht + d * (scalar_t(1) - a);
    }
  }
}

// px (T, B, H); w_hh (H, H); rate (H) or empty. Returns ys, hs (T+1, B, H), us (T, B, H) = σ(pre-activations).
std::vector<Tensor> leaky_forward(const Tensor& px, const Tensor& w_hh, const Tensor& rate, const Tensor& h0,
                                  const Tensor& valid, int64_t kind, bool low) {
  const int64_t T = px.size(0), B = px.size(1), H = px.size(2);
  auto us = px.clone(at::MemoryFormat::Contiguous);  // each step adds its recurrent product in place
  auto hs = torch::empty({T + 1, B, H}, px.options());
  auto ys = torch::empty({B, T, H}, px.options());  // batch-major, as the layer returns it
  hs[0].copy_(h0);
  const auto wt = step_weight(w_hh.t(), low, B);
  for (int64_t t = 0; t < T; ++t) {
    product_add(step_rows(us, t), step_rows(hs, t), wt);
    AT_DISPATCH_FLOATING_TYPES(px.scalar_type(), "leaky_forward", [&] {
      scalar_t *u_ = at_step<scalar_t>(us, t), *y = ys.data_ptr<scalar_t>() + t * H, *h = at_step<scalar_t>(hs, t + 1);
      const scalar_t *hp = at_step<scalar_t>(hs, t), *a = ptr_or_null<scalar_t>(rate);
      const scalar_t* m_ = mask_rows<scalar_t>(valid, t);
      with_activation(kind, [&](auto k) {
        at::parallel_for(0, B, row_grain(H), [&](int64_t b0, int64_t b1) {
          leaky_step_forward<scalar_t>(u_, hp, a, m_, y, T * H, h, k, b0, b1, H);
        });
      });
    });
  }
  return {ys, hs, us};
}

// Gradients of leaky_forward given those of ys and of the carried states dhs: d px, d w_hh, d rate (empty
// without), d h0.
std::vector<Tensor> leaky_backward(const Tensor& dys, const Tensor& dhs, const Tensor& w_hh, const Tensor& rate,
                                   const Tensor& valid, const Tensor& hs, const Tensor& us, int64_t kind, bool low) {
  const int64_t T = us.size(0), B = us.size(1), H = us.size(2);
  const auto w = step_weight(w_hh, low, B);
  const bool with_rate = rate.defined() && rate.numel();
  const StepGrad gy(dys, true, T, B, H, us.options()), gh(dhs, false, T, B, H, us.options());
  auto da = torch::empty_like(us);
  auto dr = with_rate ? torch::empty_like(us) : Tensor();
  auto dh = torch::zeros({B, H}, us.options());
  for (int64_t t = T - 1; t >= 0; --t) {

    AT_DISPATCH_FLOATING_TYPES(us.scalar_type(), "leaky_backward", [&] {
      const scalar_t *dy = gy.rows<scalar_t>(t), *dhi = gh.rows<scalar_t>(t);
      const scalar_t *m_ = mask_rows<scalar_t>(valid, t), *u = at_step<scalar_t>(us, t);
      const scalar_t* a = ptr_or_null<scalar_t>(rate);
      const scalar_t* hp = at_step<scalar_t>(hs, t);
      scalar_t *dh_ = dh.data_ptr<scalar_t>(), *da_ = at_step<scalar_t>(da, t);
      scalar_t* dr_ = with_rate ? at_step<scalar_t>(dr, t) : nullptr;
      with_activation(kind, [&](auto k) {
        at::parallel_for(0, B, row_grain(H), [&](int64_t b0, int64_t b1) {
          leaky_step_backward<scalar_t>(dy, gy.ld(), dhi, dh_, m_, u, hp, a, da_, dr_, k, b0, b1, H);
        });
      });
    });
    product_add(all_rows(dh), step_rows(da, t), w);
  }
  const auto h_prev = hs.narrow(0, 0, T);
  auto dw = product_over_steps(da.view({T * B, H}), h_prev.reshape({T * B, H}), low);
  Tensor drate = with_rate ? dr.sum({0, 1}) : Tensor();
  return {da, dw, drate, dh};
}

// ---- Elman step with several delay paths (seed 003 "Multiple delay paths"; Lin et al. 1996) ------------------
//   h_t = φ(px_t + Σ_{d ∈ delays} W_d h_{t-d}),  w_hh = [W_{d1} | W_{d2} | ...] (H, n·H)
// hs (M + T, B, H) holds h_{-M+1} ... h_0 (the initial history, M the largest delay) and then every h_t; each step
// gathers its delayed states into one (B, n·H) operand, so the recurrent part is one product. A padded step copies
// the previous h (its row has ended; the caller reads each row's states up to its last real step).

// dst (B, N) with row stride ld_d: = src (B, N) with row stride ld_s, or += with ``add``; on the calling thread (a
// step's rows are small)
template <typename scalar_t>
void move_rows(scalar_t* dst, int64_t ld_d, const scalar_t* src, int64_t ld_s, int64_t B, int64_t N, bool add) {
  for (int64_t b = 0; b < B; ++b) {
    scalar_t* d = dst + b * ld_d;
    const scalar_t* x = src + b * ld_s;
    if (add) {
#pragma omp simd
      for (int64_t j = 0; j < N; ++j) d[j] += x[j];
    } else {
      std::memcpy(d, x, N * sizeof(scalar_t));
    }
  }
}

// px (T, B, H); w_hh (H, n·H); h_init (M, B, H). Returns ys (B, T, H), hs (M + T, B, H), us (T, B, H) = φ(·).
std::vector<Tensor> delay_forward(const Tensor& px, const Tensor& w_hh, const std::vector<int64_t>& delays,
                                  const Tensor& h_init, const Tensor& valid, int64_t kind, bool low) {
  const int64_t T = px.size(0), B = px.size(1), H = px.size(2), M = h_init.size(0);
  const int64_t n = static_cast<int64_t>(delays.size());
  auto us = px.clone(at::MemoryFormat::Contiguous);  // each step adds its recurrent product in place
  auto hs = torch::empty({M + T, B, H}, px.options());
  auto ys = torch::empty({B, T, H}, px.options());  // batch-major, as the layer returns it
  auto delayed = torch::empty({B, n * H}, px.options());
  hs.narrow(0, 0, M).copy_(h_init);
  const auto wt = step_weight(w_hh.t(), low, B);
  for (int64_t t = 0; t < T; ++t) {
    const int64_t p = M + t;
    AT_DISPATCH_FLOATING_TYPES(px.scalar_type(), "delay_gather", [&] {  // [h_{t-d_1}, h_{t-d_2}, ...] (B, n·H)
      for (int64_t i = 0; i < n; ++i)
        move_rows(delayed.data_ptr<scalar_t>() + i * H, n * H, at_step<scalar_t>(hs, p - delays[i]), H, B, H, false);
    });
    product_add(step_rows(us, t), all_rows(delayed), wt);
    AT_DISPATCH_FLOATING_TYPES(px.scalar_type(), "delay_forward", [&] {
      scalar_t *u_ = at_step<scalar_t>(us, t), *y = ys.data_ptr<scalar_t>() + t * H, *h = at_step<scalar_t>(hs, p);
      const scalar_t* hp = at_step<scalar_t>(hs, p - 1);
      const scalar_t* m_ = mask_rows<scalar_t>(valid, t);
      with_activation(kind, [&](auto k) {
        at::parallel_for(0, B, row_grain(H), [&](int64_t b0, int64_t b1) {
          leaky_step_forward<scalar_t>(u_, hp, nullptr, m_, y, T * H, h, k, b0, b1, H);
        });
      });
    });
  }
  return {ys, hs, us};
}

// Gradients of delay_forward given those of ys and of every entry of hs (dhs, M + T rows): d px, d w_hh, d h_init.
std::vector<Tensor> delay_backward(const Tensor& dys, const Tensor& dhs, const Tensor& w_hh,
                                   const std::vector<int64_t>& delays, const Tensor& valid, const Tensor& hs,
                                   const Tensor& us, int64_t kind, bool low) {
  const int64_t T = us.size(0), B = us.size(1), H = us.size(2), M = hs.size(0) - T;
  const int64_t n = static_cast<int64_t>(delays.size());
  const auto w = step_weight(w_hh, low, B);
  auto d_delayed = torch::empty({B, n * H}, us.options());
  const bool masked = valid.defined() && valid.numel();
  auto da = torch::empty_like(us);
  const StepGrad gy(dys, true, T, B, H, us.options());
  // g[p]: the gradient reaching h at position p, filled in as the loop goes back
  auto g = dhs.defined() && dhs.numel() ? dhs.clone() : torch::zeros({M + T, B, H}, us.options());
  const auto none = torch::zeros({B, H}, us.options());
  for (int64_t t = T - 1; t >= 0; --t) {
    const int64_t p = M + t;
    AT_DISPATCH_FLOATING_TYPES(us.scalar_type(), "delay_backward", [&] {
      const scalar_t *dy = gy.rows<scalar_t>(t), *dhi = none.data_ptr<scalar_t>();
      const scalar_t *m_ = mask_rows<scalar_t>(valid, t), *u = at_step<scalar_t>(us, t);
      const scalar_t* hp = at_step<scalar_t>(hs, p - 1);
      scalar_t *gp = at_step<scalar_t>(g, p), *da_ = at_step<scalar_t>(da, t);
      with_activation(kind, [&](auto k) {
        at::parallel_for(0, B, row_grain(H), [&](int64_t b0, int64_t b1) {
          leaky_step_backward<scalar_t>(dy, gy.ld(), dhi, gp, m_, u, hp, nullptr, da_, nullptr, k, b0, b1, H);
        });
      });
    });
    product_into(all_rows(d_delayed), Tensor(), step_rows(da, t), w);
    AT_DISPATCH_FLOATING_TYPES(us.scalar_type(), "delay_scatter", [&] {
      if (masked)  // what passes a padded step (its copy of h_{t-1})
        move_rows(at_step<scalar_t>(g, p - 1), H, at_step<scalar_t>(g, p), H, B, H, true);
      for (int64_t i = 0; i < n; ++i)
        move_rows(at_step<scalar_t>(g, p - delays[i]), H, d_delayed.data_ptr<scalar_t>() + i * H, n * H, B, H, true);
    });
  }
  auto dw = torch::empty_like(w_hh);
  const auto flat = da.view({T * B, H});
  for (int64_t i = 0; i < n; ++i)
    dw.narrow(1, i * H, H).copy_(product_over_steps(flat, hs.narrow(0, M - delays[i], T).reshape({T * B, H}), low));
  return {da, dw, g.narrow(0, 0, M).clone()};
}

// ---- Jordan network: the recurrence reads the previous output (Jordan 1997; seed 004 "Jordan network") -------
//   h_t = σ_h(px_t + U y_{t-1});  y_t = σ_y(W_y h_t + b_y)
// The state is y_{t-1}; a padded step keeps it and outputs zero.

namespace {

template <typename scalar_t>
void activate_rows(scalar_t* v, int64_t kind, int64_t B, int64_t N) {
  with_activation(kind, [&](auto c) {
    at::parallel_for(0, B, row_grain(N), [&](int64_t b0, int64_t b1) {
#pragma omp simd
      for (int64_t k = b0 * N; k < b1 * N; ++k) v[k] = activate(v[k], c.value);
    });
  });
}

}  // namespace

// px (T, B, H); w_hh = U (H, O); w_hy = W_y (O, H); b_hy (O) or empty; y0 (B, O). Returns ys (B, T, O), carried
// (T + 1, B, O) with carried[0] = y0, hs (T, B, H) = σ_h(·), zs (T, B, O) = σ_y(·) before masking.
std::vector<Tensor> jordan_forward(const Tensor& px, const Tensor& w_hh, const Tensor& w_hy, const Tensor& b_hy,
                                   const Tensor& y0, const Tensor& valid, int64_t hidden_kind, int64_t output_kind,
                                   bool low) {
  const int64_t T = px.size(0), B = px.size(1), H = px.size(2), O = w_hy.size(0);
  auto hs = px.clone(at::MemoryFormat::Contiguous);  // each step adds its recurrent product in place
  auto zs = torch::empty({T, B, O}, px.options());
  auto carried = torch::empty({T + 1, B, O}, px.options());
  auto ys = torch::empty({B, T, O}, px.options());  // batch-major, as the layer returns it
  carried[0].copy_(y0);
  const auto ut = step_weight(w_hh.t(), low, B), wt = step_weight(w_hy.t(), low, B);
  const bool bias = b_hy.defined() && b_hy.numel();
  for (int64_t t = 0; t < T; ++t) {
    const Rows h = step_rows(hs, t), z = step_rows(zs, t);
    product_add(h, step_rows(carried, t), ut);
    AT_DISPATCH_FLOATING_TYPES(px.scalar_type(), "jordan_forward", [&] {
      activate_rows(h.ptr<scalar_t>(), hidden_kind, B, H);
      product_into(z, bias ? b_hy : Tensor(), h, wt);
      scalar_t* z_ = z.ptr<scalar_t>();
      const scalar_t *m_ = mask_rows<scalar_t>(valid, t), *yp = at_step<scalar_t>(carried, t);
      scalar_t *y = ys.data_ptr<scalar_t>() + t * O, *yc = at_step<scalar_t>(carried, t + 1);
      with_activation(output_kind, [&](auto c) {  // σ_y, the output, the carried y: one pass
        at::parallel_for(0, B, row_grain(O), [&](int64_t b0, int64_t b1) {
          for (int64_t b = b0; b < b1; ++b) {
            const bool real = mask_at(m_, b) != scalar_t(0);
            scalar_t* yb = y + b * T * O;
_Pragma("omp simd")  // (a pragma inside the dispatch macro)
            for (int64_t j = 0; j < O; ++j) {
              const int64_t k = b * O + j;
              const scalar_t zv = activate(z_[k], c.value);
              z_[k] = zv;
              yb[j] = real ? zv : scalar_t(0);
              yc[k] = real ? zv : yp[k];
            }
          }
        });
      });
    });
  }
  return {ys, carried, hs, zs};
}

// Gradients of jordan_forward given those of ys and of the carried states after every step (dcs (T, B, O)):
// d px, d w_hh, d w_hy, d b_hy (empty without), d y0.
std::vector<Tensor> jordan_backward(const Tensor& dys, const Tensor& dcs, const Tensor& w_hh, const Tensor& w_hy,
                                    const Tensor& b_hy, const Tensor& valid, const Tensor& carried, const Tensor& hs,
                                    const Tensor& zs, int64_t hidden_kind, int64_t output_kind, bool low) {
  const int64_t T = hs.size(0), B = hs.size(1), H = hs.size(2), O = w_hy.size(0);
  const auto u = step_weight(w_hh, low, B), wy = step_weight(w_hy, low, B);
  const StepGrad gy(dys, true, T, B, O, hs.options()), gc(dcs, false, T, B, O, hs.options());
  auto da = torch::empty_like(hs);
  auto dz = torch::empty_like(zs);
  auto g = torch::zeros({B, O}, hs.options());  // the gradient reaching the carried y after the step
  auto dh = torch::empty({B, H}, hs.options());
  for (int64_t t = T - 1; t >= 0; --t) {
    const Rows dz_t = step_rows(dz, t), da_t = step_rows(da, t);
    AT_DISPATCH_FLOATING_TYPES(hs.scalar_type(), "jordan_backward", [&] {
      const scalar_t *dy = gy.rows<scalar_t>(t), *dc = gc.rows<scalar_t>(t);
      const int64_t ld_y = gy.ld();
      const scalar_t *m_ = mask_rows<scalar_t>(valid, t), *z = at_step<scalar_t>(zs, t);
      scalar_t *g_ = g.data_ptr<scalar_t>(), *dz_ = dz_t.ptr<scalar_t>();
      with_activation(output_kind, [&](auto kind) {
        at::parallel_for(0, B, row_grain(O), [&](int64_t b0, int64_t b1) {
          for (int64_t b = b0; b < b1; ++b) {
            const scalar_t mb = mask_at(m_, b);
_Pragma("omp simd")  // (a pragma inside the dispatch macro)
            for (int64_t j = 0; j < O; ++j) {
              const int64_t k = b * O + j;
              const scalar_t gt = g_[k] + dc[k];
              dz_[k] = mb * (dy[b * ld_y + j] + gt) * activation_slope(z[k], kind.value);
              g_[k] = (scalar_t(1) - mb) * gt;  // what passes a padded step; dA U is added below
            }
          }
        });
      });
      product_into(all_rows(dh), Tensor(), dz_t, wy);
      const scalar_t *h = at_step<scalar_t>(hs, t), *dh_ = dh.data_ptr<scalar_t>();
      scalar_t* da_ = da_t.ptr<scalar_t>();
      with_activation(hidden_kind, [&](auto kind) {
        at::parallel_for(0, B, row_grain(H), [&](int64_t b0, int64_t b1) {
_Pragma("omp simd")  // (a pragma inside the dispatch macro)
          for (int64_t k = b0 * H; k < b1 * H; ++k) da_[k] = dh_[k] * activation_slope(h[k], kind.value);
        });
      });
    });
    product_add(all_rows(g), da_t, u);
  }
  auto dw_hh = product_over_steps(da.view({T * B, H}), carried.narrow(0, 0, T).reshape({T * B, O}), low);
  auto dw_hy = product_over_steps(dz.view({T * B, O}), hs.view({T * B, H}), low);
  Tensor db = b_hy.defined() && b_hy.numel() ? dz.view({T * B, O}).sum(0) : Tensor();
  return {da, dw_hh, dw_hy, db, g};
}

// ---- GRU in torch's / cuDNN's form (reset after the recurrent product) ---------------------------------------
//   [g_r, g_z, g_n] = W_hh h_{t-1} + b_hh;  r = σ(px_r + g_r);  z = σ(px_z + g_z);  n = tanh(px_n + r ⊙ g_n)
//   h_t = z h_{t-1} + (1 - z) n

template <typename scalar_t>
void gru_step_forward(const scalar_t* px, const scalar_t* gh, const scalar_t* bh, scalar_t* a, scalar_t* ghn,
                      const scalar_t* h_prev, const scalar_t* m, scalar_t* y, int64_t ld_y, scalar_t* h, int64_t b0, int64_t b1,
                      int64_t H) {
  for (int64_t b = b0; b < b1; ++b) {
    const scalar_t* p = px + b * 3 * H;
    const scalar_t* g = gh + b * 3 * H;
    scalar_t* a3 = a + b * 3 * H;
    const bool real = mask_at(m, b) != scalar_t(0);
    const int64_t r = b * H;
#pragma omp simd
    for (int64_t j = 0; j < H; ++j) {
      const scalar_t gn = g[2 * H + j] + bh[2 * H + j];
      const scalar_t rr = sigmoid(p[j] + g[j] + bh[j]);
      const scalar_t z = sigmoid(p[H + j] + g[H + j] + bh[H + j]);
      const scalar_t n = tanh_(p[2 * H + j] + rr * gn);
      a3[j] = rr;
      a3[H + j] = z;
      a3[2 * H + j] = n;
      ghn[r + j] = gn;
      const scalar_t hp = h_prev[r + j];
      const scalar_t hv = n + z * (hp - n);
      y[b * ld_y + j] = real ? hv : scalar_t(0);
      h[r + j] = real ? hv : hp;
    }
  }
}

template <typename scalar_t>
void gru_step_backward(const scalar_t* dy, int64_t ld_y, const scalar_t* dh_in, scalar_t* dh, const scalar_t* m, const scalar_t* a,
                       const scalar_t* ghn, const scalar_t* h_prev, scalar_t* dpx, scalar_t* dgh, int64_t b0,
                       int64_t b1, int64_t H) {
  for (int64_t b = b0; b < b1; ++b) {
    const scalar_t mb = mask_at(m, b);
    const scalar_t* a3 = a + b * 3 * H;
    scalar_t* dp = dpx + b * 3 * H;
    scalar_t* dg = dgh + b * 3 * H;
    const int64_t r = b * H;
#pragma omp simd
    for (int64_t j = 0; j < H; ++j) {
      const scalar_t rr = a3[j], z = a3[H + j], n = a3[2 * H + j], hp = h_prev[r + j];
      const scalar_t dht = dh[r + j] + dh_in[r + j];
      const scalar_t d = mb * (dy[b * ld_y + j] + dht);
      const scalar_t dan = d * (scalar_t(1) - z) * (scalar_t(1) - n * n);
      const scalar_t dar = dan * ghn[r + j] * rr * (scalar_t(1) - rr);
      const scalar_t daz = d * (hp - n) * z * (scalar_t(1) - z);
      dp[j] = dar;
      dp[H + j] = daz;
      dp[2 * H + j] = dan;
      dg[j] = dar;
      dg[H + j] = daz;
      dg[2 * H + j] = dan * rr;
      dh[r + j] = (scalar_t(1) - mb) * dht + d * z;
    }
  }
}

// px (T, B, 3H) = [r, z, n] input projections with b_ih; w_hh (3H, H); b_hh (3H) or empty. Returns ys, hs (T+1, B, H),
// gates (T, B, 3H) = r, z, n after their nonlinearities, ghn (T, B, H) = W_hn h_{t-1} + b_hn.
std::vector<Tensor> gru_forward(const Tensor& px, const Tensor& w_hh, const Tensor& b_hh, const Tensor& h0,
                                const Tensor& valid, bool low) {
  const int64_t T = px.size(0), B = px.size(1), H = px.size(2) / 3;
  auto gates = torch::empty_like(px);
  auto ghn = torch::empty({T, B, H}, px.options());
  auto hs = torch::empty({T + 1, B, H}, px.options());
  auto ys = torch::empty({B, T, H}, px.options());  // batch-major, as the layer returns it
  auto gh = torch::empty({B, 3 * H}, px.options());  // W_hh h_{t-1}; b_hh is added in the gate pass
  hs[0].copy_(h0);
  const auto bias = b_hh.defined() && b_hh.numel() ? b_hh.contiguous() : torch::zeros({3 * H}, px.options());
  const auto wt = step_weight(w_hh.t(), low, B);
  for (int64_t t = 0; t < T; ++t) {
    product_into(all_rows(gh), Tensor(), step_rows(hs, t), wt);
    AT_DISPATCH_FLOATING_TYPES(px.scalar_type(), "gru_forward", [&] {
      const scalar_t *p = at_step<scalar_t>(px, t), *g = gh.data_ptr<scalar_t>(), *hp = at_step<scalar_t>(hs, t);
      const scalar_t* bh = bias.data_ptr<scalar_t>();
      const scalar_t* m_ = mask_rows<scalar_t>(valid, t);
      scalar_t *a = at_step<scalar_t>(gates, t), *n = at_step<scalar_t>(ghn, t);
      scalar_t *y = ys.data_ptr<scalar_t>() + t * H, *h = at_step<scalar_t>(hs, t + 1);
      at::parallel_for(0, B, row_grain(H), [&](int64_t b0, int64_t b1) {
        gru_step_forward<scalar_t>(p, g, bh, a, n, hp, m_, y, T * H, h, b0, b1, H);
      });
    });
  }
  return {ys, hs, gates, ghn};
}

// Gradients of gru_forward given those of ys and of the carried states dhs: d px, d w_hh, d b_hh (empty without),
// d h0.
std::vector<Tensor> gru_backward(const Tensor& dys, const Tensor& dhs, const Tensor& w_hh, const Tensor& b_hh,
                                 const Tensor& valid, const Tensor& hs, const Tensor& gates, const Tensor& ghn,
                                 bool low) {
  const int64_t T = gates.size(0), B = gates.size(1), H = gates.size(2) / 3;
  const auto w = step_weight(w_hh, low, B);
  const StepGrad gy(dys, true, T, B, H, gates.options()), gh(dhs, false, T, B, H, gates.options());
  auto dpx = torch::empty_like(gates);
  auto dgh = torch::empty_like(gates);
  auto dh = torch::zeros({B, H}, gates.options());
  for (int64_t t = T - 1; t >= 0; --t) {

    AT_DISPATCH_FLOATING_TYPES(gates.scalar_type(), "gru_backward", [&] {
      const scalar_t *dy = gy.rows<scalar_t>(t), *dhi = gh.rows<scalar_t>(t);
      const scalar_t *m_ = mask_rows<scalar_t>(valid, t), *a = at_step<scalar_t>(gates, t);
      const scalar_t *n = at_step<scalar_t>(ghn, t), *hp = at_step<scalar_t>(hs, t);
      scalar_t *dh_ = dh.data_ptr<scalar_t>(), *dp = at_step<scalar_t>(dpx, t), *dg = at_step<scalar_t>(dgh, t);
      at::parallel_for(0, B, row_grain(H), [&](int64_t b0, int64_t b1) {
        gru_step_backward<scalar_t>(dy, gy.ld(), dhi, dh_, m_, a, n, hp, dp, dg, b0, b1, H);
      });
    });
    product_add(all_rows(dh), step_rows(dgh, t), w);
  }
  const auto flat = dgh.view({T * B, 3 * H});
  auto dw = product_over_steps(flat, hs.narrow(0, 0, T).reshape({T * B, H}), low);
  Tensor db = b_hh.defined() && b_hh.numel() ? flat.sum(0) : Tensor();
  return {dpx, dw, db, dh};
}

// ---- One LSTM step at a few rows, without autograd: the generation hot path ---------------------------------
// At batch 1 a step is a matrix-vector product per layer, bound by reading the weights, so each thread takes a
// range of units j and reads the four gate rows of each (i, f, g, o: rows j, H + j, 2H + j, 3H + j) once for all
// rows of the batch, then applies the gate math to them, sixteen units at a time in one vectorised pass (seed 000's
// LSTM; a scalar exp and tanh per unit took 1.2-1.4x as long per layer: benchmarks/ab_kernels.py):
//   a = base + W v;  c_t = σ(a_f) c_{t-1} + σ(a_i) tanh(a_g);  h_t = σ(a_o) tanh(c_t)
// The weights may be float32 or bfloat16 (read as float32: half the memory traffic); v, base and the state are
// float32 and the sums are accumulated in float32.

namespace {

inline float to_float(float v) { return v; }
inline float to_float(at::BFloat16 v) { return static_cast<float>(v); }

#if defined(__AVX512F__)
inline __m512 load16(const float* p) { return _mm512_loadu_ps(p); }
inline __m512 load16(const at::BFloat16* p) {  // bfloat16 is the upper half of a float32
  const __m256i bits = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
  return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(bits), 16));
}
#elif defined(__AVX2__) && defined(__FMA__)  // AVX2 CPUs (AMD Zen 2/3, older Xeons): eight lanes
inline __m256 load8(const float* p) { return _mm256_loadu_ps(p); }
inline __m256 load8(const at::BFloat16* p) {
  const __m128i bits = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
  return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(bits), 16));
}
inline float sum8(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  return _mm_cvtss_f32(_mm_add_ss(s, _mm_movehdup_ps(s)));
}
#endif

// s[g] = Σ_k w_g[k] v[k] for the R rows w_g (vectorised by hand: a compiler keeps a float sum in order, scalar)
template <int R, typename w_t>
inline void dotr(const w_t* const* w, const float* v, int64_t K, float* s) {
  int64_t k = 0;
  for (int g = 0; g < R; ++g) s[g] = 0.f;
#if defined(__AVX512F__)
  __m512 a[R];
  for (auto& r : a) r = _mm512_setzero_ps();
  for (; k + 16 <= K; k += 16) {
    const __m512 x = _mm512_loadu_ps(v + k);
    for (int g = 0; g < R; ++g) a[g] = _mm512_fmadd_ps(load16(w[g] + k), x, a[g]);
  }
  for (int g = 0; g < R; ++g) s[g] = _mm512_reduce_add_ps(a[g]);
#elif defined(__AVX2__) && defined(__FMA__)
  __m256 a[2 * R];  // two accumulators per row: 2R independent FMA chains cover the FMA latency
  for (auto& r : a) r = _mm256_setzero_ps();
  for (; k + 16 <= K; k += 16) {
    const __m256 x0 = _mm256_loadu_ps(v + k), x1 = _mm256_loadu_ps(v + k + 8);
    for (int g = 0; g < R; ++g) {
      a[g] = _mm256_fmadd_ps(load8(w[g] + k), x0, a[g]);
      a[R + g] = _mm256_fmadd_ps(load8(w[g] + k + 8), x1, a[R + g]);
    }
  }
  for (; k + 8 <= K; k += 8) {
    const __m256 x0 = _mm256_loadu_ps(v + k);
    for (int g = 0; g < R; ++g) a[g] = _mm256_fmadd_ps(load8(w[g] + k), x0, a[g]);
  }
  for (int g = 0; g < R; ++g) s[g] = sum8(_mm256_add_ps(a[g], a[R + g]));
#endif
  for (; k < K; ++k)
    for (int g = 0; g < R; ++g) s[g] += to_float(w[g][k]) * v[k];
}

template <typename w_t>
inline void dot4(const w_t* const* w, const float* v, int64_t K, float* s) { dotr<4>(w, v, K, s); }

// Units whose dot products a few-row step kernel gathers before their gate math runs as one vectorised pass
constexpr int64_t kStepUnits = 16;

// The loop of the few-row step kernels: each thread takes a range of the H units, kStepUnits at a time, and for each
// row b of the batch calls body(u0, n, b), which gathers units [u0, u0 + n)'s dot products (the weight rows stay in
// cache across the rows) and applies the gate math to them
template <typename F>
void for_unit_blocks(int64_t H, int64_t B, F&& body) {
  at::parallel_for(0, H, kStepUnits, [&](int64_t j0, int64_t j1) {
    for (int64_t u0 = j0; u0 < j1; u0 += kStepUnits) {
      const int64_t n = std::min(kStepUnits, j1 - u0);
      for (int64_t b = 0; b < B; ++b) body(u0, n, b);
    }
  });
}

// The gate math of units [u0, u0 + n) of one row from their pre-activations a[g][u] (bias or input term added),
// c_prev, peep, c and h pointing at unit u0:
//   c_t = σ(a_f + p_f c_{t-1}) c_{t-1} + σ(a_i + p_i c_{t-1}) tanh(a_g),  h_t = σ(a_o + p_o c_t) tanh(c_t)
// with the diagonal peepholes p = (p_i, p_f, p_o) at peep, peep + H, peep + 2H (Gers & Schmidhuber 2000), or none
// (peep null: seed 000's LSTM)
template <int64_t kUnits>
inline void lstm_units(const float (&a)[4][kUnits], const float* cp, const float* peep, int64_t H, float* c, float* h,
                       int64_t n) {
  if (peep) {
#pragma omp simd
    for (int64_t u = 0; u < n; ++u) {
      const float i = sigmoid(a[0][u] + peep[u] * cp[u]), f = sigmoid(a[1][u] + peep[H + u] * cp[u]);
      const float cv = f * cp[u] + i * tanh_(a[2][u]);
      c[u] = cv;
      h[u] = sigmoid(a[3][u] + peep[2 * H + u] * cv) * tanh_(cv);
    }
    return;
  }
#pragma omp simd
  for (int64_t u = 0; u < n; ++u) {
    const float i = sigmoid(a[0][u]), f = sigmoid(a[1][u]), g = tanh_(a[2][u]), o = sigmoid(a[3][u]);
    const float cv = f * cp[u] + i * g;
    c[u] = cv;
    h[u] = o * tanh_(cv);
  }
}

template <typename w_t>
void lstm_rows_step(const w_t* w, int64_t ld, const float* v, const float* base, int64_t base_stride,
                    const float* c_prev, const float* peep, float* h, float* c, int64_t B, int64_t H, int64_t K) {
  for_unit_blocks(H, B, [&](int64_t u0, int64_t n, int64_t b) {
    float a[4][kStepUnits];
    const float* base_b = base + b * base_stride;
    for (int64_t u = 0; u < n; ++u) {
      const int64_t j = u0 + u;
      const w_t* rows[4] = {w + j * ld, w + (H + j) * ld, w + (2 * H + j) * ld, w + (3 * H + j) * ld};
      float s[4];
      dot4(rows, v + b * K, K, s);
      for (int g = 0; g < 4; ++g) a[g][u] = s[g] + base_b[g * H + j];
    }
    lstm_units<kStepUnits>(a, c_prev + b * H + u0, peep ? peep + u0 : nullptr, H, c + b * H + u0, h + b * H + u0, n);
  });
}

}  // namespace

namespace {

// body(w) with ``weight``'s data as the type a step reads it in: float32, or bfloat16 (bf16 autocast: half the
// memory traffic, every sum in float32)
template <typename F>
void with_weight_data(const Tensor& weight, const char* name, F&& body) {
  if (weight.scalar_type() == at::kBFloat16) {
    body(weight.data_ptr<at::BFloat16>());
  } else {
    TORCH_CHECK(weight.scalar_type() == at::kFloat, name, ": weights must be float32 or bfloat16, got ",
                weight.scalar_type());
    body(weight.data_ptr<float>());
  }
}

// lstm_rows_step on ``weight`` (4H, K) float32 or bfloat16 with unit stride along K; v (B, K), base rows of stride
// base_stride (0: one row for all), c_prev (B, H), the peepholes (3, H) or null, h and c out (B, H): raw float32 rows
void lstm_rows(const Tensor& weight, const float* v, const float* base, int64_t base_stride, const float* c_prev,
               const float* peep, float* h, float* c, int64_t B, int64_t H, int64_t K) {
  TORCH_CHECK(weight.dim() == 2 && weight.stride(1) == 1 && weight.size(0) == 4 * H && weight.size(1) == K,
              "lstm_step: weight must be (4H, K) with rows contiguous");
  with_weight_data(weight, "lstm_step", [&](const auto* w) {
    lstm_rows_step(w, weight.stride(0), v, base, base_stride, c_prev, peep, h, c, B, H, K);
  });
}

// out (B, N) (row stride ld_o) = x (B, K) (row stride ld_x) Wᵀ (+ bias) (+ out with ``accumulate``) for W (N, K)
// with rows of stride ld_w, float32 or bfloat16 (read as float32): a few rows' product as dot products, four rows of
// W at a time through dot4 (a GEMM call at one row costs more than the products). The output layer of a generation
// step, the products of a few-row stack step, and the recurrent product of the sequence kernels at a few rows
// (StepWeight::dot).
template <typename w_t>
void dot_rows(const w_t* w, int64_t N, int64_t ld_w, const float* bias, const float* x, int64_t ld_x, float* out,
              int64_t ld_o, int64_t B, int64_t K, bool accumulate) {
  const int64_t quads = (N + 3) / 4;
  // a thread's share is at least ~128K multiply-adds (a character vocabulary's head runs on one thread)
  at::parallel_for(0, quads, std::max<int64_t>(1, 32768 / std::max<int64_t>(K, 1)), [&](int64_t q0, int64_t q1) {
    for (int64_t q = q0; q < q1; ++q) {
      const int64_t v0 = 4 * q, n = std::min<int64_t>(4, N - v0);
      const w_t* rows[4];
      for (int64_t g = 0; g < 4; ++g) rows[g] = w + (v0 + std::min(g, n - 1)) * ld_w;  // a last quad repeats a row
      for (int64_t b = 0; b < B; ++b) {
        float s[4];
        dot4(rows, x + b * ld_x, K, s);
        float* o = out + b * ld_o + v0;
        for (int64_t g = 0; g < n; ++g) o[g] = s[g] + (bias ? bias[v0 + g] : 0.f) + (accumulate ? o[g] : 0.f);
      }
    }
  });
}

// out (B, V) = h (B, K) Wᵀ + bias for W (V, K) with rows of stride ld: the output layer of a few-row step
void head_rows(const float* w, int64_t V, int64_t ld, const float* bias, const float* h, float* out, int64_t B,
               int64_t K) {
  dot_rows(w, V, ld, bias, h, K, out, V, B, K, false);
}

void check_float(const Tensor& t, const char* what) {
  TORCH_CHECK(t.scalar_type() == at::kFloat && t.is_contiguous(), "lstm_step: ", what, " must be contiguous float32");
}

}  // namespace

// weight (4H, K) float32 or bfloat16 with unit stride along K (rows may be a slice of a wider matrix); inputs (B, K),
// base (B, 4H) or (4H) (the bias, or rows of a precomputed input term), c_prev (B, H): all float32. Returns h, c.
std::vector<Tensor> lstm_step(const Tensor& weight, const Tensor& inputs, const Tensor& base, const Tensor& c_prev) {
  const auto v = inputs.contiguous(), bs = base.contiguous(), cp = c_prev.contiguous();
  check_float(v, "inputs");
  check_float(bs, "base");
  check_float(cp, "the state");
  const int64_t B = v.size(0), K = v.size(1), H = cp.size(1);
  auto h = torch::empty({B, H}, cp.options());
  auto c = torch::empty({B, H}, cp.options());
  lstm_rows(weight, v.data_ptr<float>(), bs.data_ptr<float>(), bs.dim() == 2 ? 4 * H : 0, cp.data_ptr<float>(), nullptr,
            h.data_ptr<float>(), c.data_ptr<float>(), B, H, K);
  return {h, c};
}

namespace {

// The gate math of a step after its product: pre (B, 4H) holds each row's gate rows in the (i, f, g, o) order; base
// rows (stride base_stride, 0: one row for all) add the input term or the bias. c_prev (B, H) and the peepholes
// (3, H) (or null) in; h, c (B, H) out. Sixteen units at a time, as lstm_rows_step: gathered, then lstm_units.
void lstm_gates(const float* pre, const float* base, int64_t base_stride, const float* c_prev, const float* peep,
                float* h, float* c, int64_t B, int64_t H) {
  at::parallel_for(0, B, row_grain(H), [&](int64_t b0, int64_t b1) {
    float a[4][kStepUnits];
    for (int64_t b = b0; b < b1; ++b) {
      const float *base_b = base + b * base_stride, *pre_b = pre + b * 4 * H;
      for (int64_t u0 = 0; u0 < H; u0 += kStepUnits) {
        const int64_t n = std::min(kStepUnits, H - u0);
        for (int64_t g = 0; g < 4; ++g)
          for (int64_t u = 0; u < n; ++u) a[g][u] = pre_b[g * H + u0 + u] + base_b[g * H + u0 + u];
        lstm_units<kStepUnits>(a, c_prev + b * H + u0, peep ? peep + u0 : nullptr, H, c + b * H + u0, h + b * H + u0, n);
      }
    }
  });
}

// Scratch buffers of a stack step, kept across the steps of a token loop
struct StackScratch {
  std::vector<float> v;    // [x_k, h_{t-1}] rows for the LSTM and the Elman step; the gated family's terms
  std::vector<float> c;    // the gated family's W_hh (r ⊙ h)
  std::vector<float> pre;  // the LSTM's product, for its GEMM route
  std::vector<float> gi, gh;  // the GRU's input and recurrent terms, for its GEMM route
  Tensor low;            // a GEMM's left operand in bfloat16 (bf16 weights beyond a few rows)
  int64_t max_rows = 8;  // up to this many rows the few-row kernels (dot products); beyond, GEMMs
  int64_t parts = 1;     // a GEMM's blocks of the weight's rows, one per thread
};

// out (B, N) (row stride ld_o) = x (B, K) (row stride ld_x) Wᵀ (+ bias) (+ out with ``accumulate``) for W (N, K)
// with rows of stride ld_w, float32 or bfloat16: up to ``max_rows`` rows dot_rows (each weight row read once per
// row of the batch); beyond, W's rows split into ``parts`` blocks, one per thread, each block's product a GEMM of its
// own (each thread streams its share of the weight: the fastest layout measured at a step's few dozen rows,
// benchmarks/bench_generation.py and ab_kernels.py): MKL's sgemm in float32; for bfloat16 weights x rounded to
// bfloat16 once (in ``low``) and MKL's bf16 x bf16 -> float32 GEMM, which adds into out; ATen's product of the
// block where torch has no MKL.
template <typename w_t>
void product_rows(const w_t* w, int64_t N, int64_t ld_w, const float* bias, const float* x, int64_t ld_x, float* out,
                  int64_t ld_o, int64_t B, int64_t K, bool accumulate, StackScratch& scratch) {
  if (B <= scratch.max_rows) {
    dot_rows(w, N, ld_w, bias, x, ld_x, out, ld_o, B, K, accumulate);
    return;
  }
  constexpr bool kLow = std::is_same_v<w_t, at::BFloat16>;
  if (bias && !accumulate) {  // the bias first, the product added to it
    for (int64_t b = 0; b < B; ++b) std::memcpy(out + b * ld_o, bias, N * sizeof(float));
  }
  const float beta = accumulate || bias ? 1.f : 0.f;
  const auto options = torch::TensorOptions().dtype(at::kFloat);
  if constexpr (kLow) {
    Tensor& low = scratch.low;
    low = low.defined() ? low : torch::empty({0}, options.dtype(at::kBFloat16));
    low.resize_({B, K});
    to_bf16(x, ld_x, B, K, low);
  }
  const bool mkl = kLow ? mkl_bf16() : mkl_step_allowed() && cblas_sgemm;
  // blocks of whole multiples of 16 rows of W, at least 64 rows each
  const int64_t p = std::max<int64_t>(1, std::min(scratch.parts, N / 64));
  const auto row_of = [&](int64_t q) { return q == p ? N : (N * q / p) / 16 * 16; };
  at::parallel_for(0, p, 1, [&](int64_t q0, int64_t q1) {
    for (int64_t q = q0; q < q1; ++q) {
      const int64_t n0 = row_of(q), n = row_of(q + 1) - n0;
      if (n <= 0) continue;
      if constexpr (kLow) {
        const auto* lhs = scratch.low.data_ptr<at::BFloat16>();
        if (mkl) {
          cblas_gemm_bf16bf16f32(kRowMajor, kNoTrans, kTrans, B, n, K, 1.f, reinterpret_cast<const uint16_t*>(lhs), K,
                                 reinterpret_cast<const uint16_t*>(w + n0 * ld_w), ld_w, beta, out + n0, ld_o);
        } else {
          Tensor o = torch::from_blob(out + n0, {B, n}, {ld_o, 1}, options);
          const Tensor wt = torch::from_blob(const_cast<w_t*>(w + n0 * ld_w), {K, n}, {1, ld_w},
                                             options.dtype(at::kBFloat16));
          add_widened(o, Tensor(), at::mm(scratch.low, wt), beta != 0.f);
        }
      } else if (mkl) {
        cblas_sgemm(kRowMajor, kNoTrans, kTrans, B, n, K, 1.f, x, ld_x, w + n0 * ld_w, ld_w, beta, out + n0, ld_o);
      } else {
        Tensor o = torch::from_blob(out + n0, {B, n}, {ld_o, 1}, options);
        const Tensor lhs = torch::from_blob(const_cast<float*>(x), {B, K}, {ld_x, 1}, options);
        const Tensor wt = torch::from_blob(const_cast<float*>(w + n0 * ld_w), {K, n}, {1, ld_w}, options);
        if (beta != 0.f) o.addmm_(lhs, wt); else at::mm_out(o, lhs, wt);
      }
    }
  });
  if (bias && accumulate) {
    for (int64_t b = 0; b < B; ++b)
      for (int64_t j = 0; j < N; ++j) out[b * ld_o + j] += bias[j];
  }
}

// The cell families a generation stack step runs: the LSTM (seed 000), the LSTM with diagonal peepholes (Gers &
// Schmidhuber 2000), the GRU in torch's form, the gated-update cells (Cho GRU, MUT1-3) and the Elman network with
// tanh or ReLU (seed 000)
enum class Family { kLSTM, kPeephole, kGRU, kChoGRU, kMUT1, kMUT2, kMUT3, kElmanTanh, kElmanRelu };

Family family_of(const std::string& name) {
  if (name == "lstm") return Family::kLSTM;
  if (name == "peephole-lstm") return Family::kPeephole;
  if (name == "gru") return Family::kGRU;
  if (name == "gru-cho") return Family::kChoGRU;
  if (name == "mut1") return Family::kMUT1;
  if (name == "mut2") return Family::kMUT2;
  if (name == "mut3") return Family::kMUT3;
  if (name == "rnn-tanh") return Family::kElmanTanh;
  TORCH_CHECK(name == "rnn-relu", "stack step: the family must be \"lstm\", \"peephole-lstm\", \"gru\", ",
              "\"gru-cho\", \"mut1\", \"mut2\", \"mut3\", \"rnn-tanh\" or \"rnn-relu\", got \"", name, "\"");
  return Family::kElmanRelu;
}

inline bool is_lstm(Family f) { return f == Family::kLSTM || f == Family::kPeephole; }
inline bool is_elman(Family f) { return f == Family::kElmanTanh || f == Family::kElmanRelu; }
inline bool is_gated(Family f) {
  return f == Family::kChoGRU || f == Family::kMUT1 || f == Family::kMUT2 || f == Family::kMUT3;
}
inline int64_t gates_of(Family f) { return is_lstm(f) ? 4 : is_elman(f) ? 1 : 3; }

// One LSTM layer of a stack step (see stack_rows): x (B, D) its input (the input term (B, 4H) with ``input_term``,
// then only W_hh is read); hp, cp (B, H) in; hn, cn (B, H) out; the peepholes (3, H) or null. Up to
// ``scratch.max_rows`` rows lstm_rows (the weights read once per row, bound by memory); beyond, the product as GEMMs
// in row blocks (product_rows), then lstm_gates.
void lstm_layer_step(const Tensor& weight, const Tensor& bias, const float* peep, const float* x, int64_t D,
                     const float* hp, const float* cp, float* hn, float* cn, int64_t B, int64_t H, bool input_term,
                     StackScratch& scratch) {
  const int64_t K = input_term ? H : D + H;
  const float* rows = hp;
  if (!input_term) {  // [x_k, h_{t-1}] for the fused weight
    scratch.v.resize(static_cast<size_t>(B * K));
    for (int64_t b = 0; b < B; ++b) {
      std::memcpy(scratch.v.data() + b * K, x + b * D, D * sizeof(float));
      std::memcpy(scratch.v.data() + b * K + D, hp + b * H, H * sizeof(float));
    }
    rows = scratch.v.data();
  }
  const float* base = input_term ? x : bias.data_ptr<float>();
  const int64_t base_stride = input_term ? 4 * H : 0;
  if (B <= scratch.max_rows) {
    lstm_rows(weight, rows, base, base_stride, cp, peep, hn, cn, B, H, K);
    return;
  }
  TORCH_CHECK(weight.dim() == 2 && weight.stride(1) == 1 && weight.size(0) == 4 * H && weight.size(1) == K,
              "stack step: an LSTM layer's weight must be (4H, K) with rows contiguous");
  scratch.pre.resize(static_cast<size_t>(B * 4 * H));
  with_weight_data(weight, "stack step", [&](const auto* w) {
    product_rows(w, 4 * H, weight.stride(0), nullptr, rows, K, scratch.pre.data(), 4 * H, B, K, false, scratch);
  });
  lstm_gates(scratch.pre.data(), base, base_stride, cp, peep, hn, cn, B, H);
}

// ---- One GRU step (torch's form) at B rows without autograd: generation, as the LSTM's above -----------------
//   gi = W_i x + b_i (or a precomputed input term),  gh = W_h h_{t-1} + b_h
//   r = σ(gi_r + gh_r),  z = σ(gi_z + gh_z),  n = tanh(gi_n + r ⊙ gh_n),  h_t = n + z ⊙ (h_{t-1} − n)
// (torch.nn.GRU; the reset gate multiplies the recurrent term after its product, so W_i x and W_h h stay apart.)

// The gate math of units [u0, u0 + n) of one row, from gi and gh gathered per gate (kUnits wide) or read in place
template <int64_t kUnits>
inline void gru_units(const float (&gi)[3][kUnits], const float (&gh)[3][kUnits], const float* hp, float* h,
                      int64_t n) {
#pragma omp simd
  for (int64_t u = 0; u < n; ++u) {
    const float r = sigmoid(gi[0][u] + gh[0][u]), z = sigmoid(gi[1][u] + gh[1][u]);
    const float nv = tanh_(gi[2][u] + r * gh[2][u]);
    h[u] = nv + z * (hp[u] - nv);
  }
}

// A few rows: each thread takes a range of units j and reads rows j, H + j, 2H + j of W_i (when given; else the
// input term is the base) and of W_h once for all rows. wi and wh share the row stride ld (the fused [W_i | W_h]).
// base: b_i (base_stride 0) or the rows of the input term; b_h may be null.
template <typename w_t>
void gru_rows_step(const w_t* wi, const w_t* wh, int64_t ld, const float* x, int64_t D, const float* base,
                   int64_t base_stride, const float* b_h, const float* h_prev, float* h, int64_t B, int64_t H) {
  for_unit_blocks(H, B, [&](int64_t u0, int64_t n, int64_t b) {
    float gi[3][kStepUnits], gh[3][kStepUnits];
    const float* base_b = base + b * base_stride;
    for (int64_t u = 0; u < n; ++u) {
      const int64_t j = u0 + u;
      float s[3] = {0.f, 0.f, 0.f};
      if (wi) {
        const w_t* rows[3] = {wi + j * ld, wi + (H + j) * ld, wi + (2 * H + j) * ld};
        dotr<3>(rows, x + b * D, D, s);
      }
      for (int g = 0; g < 3; ++g) gi[g][u] = s[g] + base_b[g * H + j];
      const w_t* rows[3] = {wh + j * ld, wh + (H + j) * ld, wh + (2 * H + j) * ld};
      dotr<3>(rows, h_prev + b * H, H, s);
      for (int g = 0; g < 3; ++g) gh[g][u] = s[g] + (b_h ? b_h[g * H + j] : 0.f);
    }
    gru_units<kStepUnits>(gi, gh, h_prev + b * H + u0, h + b * H + u0, n);
  });
}

// The gate math over B rows of gi (row stride ld_i) and gh (B, 3H), after the GEMM route's products
void gru_gates(const float* gi, int64_t ld_i, const float* gh, const float* hp, float* h, int64_t B, int64_t H) {
  at::parallel_for(0, B, row_grain(H), [&](int64_t b0, int64_t b1) {
    float a[3][kStepUnits], c[3][kStepUnits];
    for (int64_t b = b0; b < b1; ++b) {
      for (int64_t u0 = 0; u0 < H; u0 += kStepUnits) {
        const int64_t n = std::min(kStepUnits, H - u0);
        for (int g = 0; g < 3; ++g) {
          std::memcpy(a[g], gi + b * ld_i + g * H + u0, n * sizeof(float));
          std::memcpy(c[g], gh + b * 3 * H + g * H + u0, n * sizeof(float));
        }
        gru_units<kStepUnits>(a, c, hp + b * H + u0, h + b * H + u0, n);
      }
    }
  });
}

// One GRU layer of a stack step: weight the fused [W_i | W_h] (3H, D + H) (with ``input_term`` W_h's columns alone,
// (3H, H), x then being the input term W_i x + b_i (B, 3H)); bias [b_i | b_h] (6H). Up to ``max_rows`` rows
// gru_rows_step; beyond, W_i x + b_i and W_h h + b_h as two GEMMs (product_rows), then gru_gates. Weights float32 or
// bfloat16.
void gru_layer_step(const Tensor& weight, const Tensor& bias, const float* x, int64_t D, const float* hp, float* hn,
                    int64_t B, int64_t H, bool input_term, StackScratch& scratch) {
  const int64_t K = input_term ? H : D + H;
  TORCH_CHECK(weight.dim() == 2 && weight.stride(1) == 1 && weight.size(0) == 3 * H && weight.size(1) == K,
              "stack step: a GRU layer's weight must be (3H, K) with rows contiguous");
  const float* b_i = bias.data_ptr<float>();
  const float* b_h = b_i + 3 * H;
  const int64_t ld = weight.stride(0);
  with_weight_data(weight, "stack step", [&](const auto* w) {
    const auto* wh = input_term ? w : w + D;
    if (B <= scratch.max_rows) {
      gru_rows_step(input_term ? nullptr : w, wh, ld, x, D, input_term ? x : b_i, input_term ? 3 * H : 0, b_h, hp,
                    hn, B, H);
      return;
    }
    const float* gi = x;
    if (!input_term) {
      scratch.gi.resize(static_cast<size_t>(B * 3 * H));
      product_rows(w, 3 * H, ld, b_i, x, D, scratch.gi.data(), 3 * H, B, D, false, scratch);
      gi = scratch.gi.data();
    }
    scratch.gh.resize(static_cast<size_t>(B * 3 * H));
    product_rows(wh, 3 * H, ld, b_h, hp, H, scratch.gh.data(), 3 * H, B, H, false, scratch);
    gru_gates(gi, 3 * H, scratch.gh.data(), hp, hn, B, H);
  });
}

// ---- One step of the gated-update family at B rows without autograd: the Cho GRU and MUT1-3 (seed 000) ---------
//   Cho GRU, blocks [r, z, h̃]:  r = σ(W_xr x + W_hr h + b_r),  z = σ(W_xz x + W_hz h + b_z)
//                               h̃ = tanh(W_xh x + W_hh (r ⊙ h) + b_h),  h_t = z ⊙ h + (1 − z) ⊙ h̃
//   MUT1, blocks [z, r, h̃]:     z = σ(W_xz x + b_z),  r as above,  h̃ = tanh(W_hh (r ⊙ h) + tanh(x) + b_h),
//                               h_t = z ⊙ h̃ + (1 − z) ⊙ h
//   MUT2, blocks [z, r, h̃]:     z as the Cho GRU's,  r = σ(x + W_hr h + b_r),  h̃ as the Cho GRU's,  h_t as MUT1's
//   MUT3, blocks [z, r, h̃]:     z = σ(W_xz x + W_hz tanh(h) + b_z),  r and h̃ as above,  h_t as MUT1's
// weight the fused [W_x | W_h] (3H, D + H), the rows of each block side by side (with ``input_term`` W_h's columns
// alone, x then being the whole input term); bias b (3H). MUT1's and MUT2's raw-input terms are products too: their
// W_x block is the identity (or the learned map P where the sizes differ; rnnkit.cells.mut), and MUT1's W_hz block
// is not read. W_hh needs the whole of r ⊙ h, so a step is two rounds of products (product_rows) with the gate math
// between. Weights float32 or bfloat16.
struct GatedStep {
  int64_t z_block;      // which of the first two blocks is z (r is the other)
  bool z_reads_tanh;    // z's recurrent term is W_hz tanh(h) (MUT3), else W_hz h
  bool z_keeps;         // h_t = z h + (1 − z) h̃ (Cho), else z h̃ + (1 − z) h
  bool z_recurrent;     // z has a recurrent term (all but MUT1)
  bool squashed_input;  // h̃'s input term is tanh(W_xh x) + b_h (MUT1), else W_xh x + b_h
};

template <typename w_t>
void gated_rows_step(const w_t* w, int64_t ld, const float* bias, const GatedStep& spec, const float* x, int64_t D,
                     const float* hp, float* hn, int64_t B, int64_t H, bool input_term, StackScratch& scratch) {
  const int64_t K = input_term ? H : D + H;
  const w_t* wh = w + (K - H);  // W_h's columns
  const int64_t zb = spec.z_block, rb = 1 - zb;
  scratch.v.resize(static_cast<size_t>(B * 7 * H));
  float* gi = scratch.v.data();  // (B, 3H): the input term
  float* gh = gi + B * 3 * H;    // (B, 2H): the first two blocks' recurrent terms, then z in its block
  float* rh = gh + B * 2 * H;    // (B, H): r ⊙ h
  float* th = rh + B * H;        // (B, H): tanh(h) (MUT3)
  if (input_term) {
    std::memcpy(gi, x, B * 3 * H * sizeof(float));
  } else if (spec.squashed_input) {
    product_rows(w, 2 * H, ld, bias, x, D, gi, 3 * H, B, D, false, scratch);
    product_rows(w + 2 * H * ld, H, ld, nullptr, x, D, gi + 2 * H, 3 * H, B, D, false, scratch);
    for (int64_t b = 0; b < B; ++b) {
      float* g = gi + b * 3 * H + 2 * H;
      const float* b_h = bias + 2 * H;
#pragma omp simd
      for (int64_t j = 0; j < H; ++j) g[j] = tanh_(g[j]) + b_h[j];
    }
  } else {
    product_rows(w, 3 * H, ld, bias, x, D, gi, 3 * H, B, D, false, scratch);
  }
  if (!spec.z_recurrent) {
    product_rows(wh + rb * H * ld, H, ld, nullptr, hp, H, gh + rb * H, 2 * H, B, H, false, scratch);
    for (int64_t b = 0; b < B; ++b) std::memset(gh + b * 2 * H + zb * H, 0, H * sizeof(float));
  } else if (spec.z_reads_tanh) {
    std::memcpy(th, hp, B * H * sizeof(float));
    activate_rows(th, 0, B, H);
    product_rows(wh + rb * H * ld, H, ld, nullptr, hp, H, gh + rb * H, 2 * H, B, H, false, scratch);
    product_rows(wh + zb * H * ld, H, ld, nullptr, th, H, gh + zb * H, 2 * H, B, H, false, scratch);
  } else {
    product_rows(wh, 2 * H, ld, nullptr, hp, H, gh, 2 * H, B, H, false, scratch);
  }
  at::parallel_for(0, B, row_grain(H), [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; ++b) {
      const float *gi_b = gi + b * 3 * H, *hp_b = hp + b * H;
      float *gh_b = gh + b * 2 * H, *rh_b = rh + b * H;
#pragma omp simd
      for (int64_t j = 0; j < H; ++j) {
        rh_b[j] = sigmoid(gi_b[rb * H + j] + gh_b[rb * H + j]) * hp_b[j];
        gh_b[zb * H + j] = sigmoid(gi_b[zb * H + j] + gh_b[zb * H + j]);
      }
    }
  });
  scratch.c.resize(static_cast<size_t>(B * H));
  float* c = scratch.c.data();
  product_rows(wh + 2 * H * ld, H, ld, nullptr, rh, H, c, H, B, H, false, scratch);
  at::parallel_for(0, B, row_grain(H), [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; ++b) {
      const float *gi_b = gi + b * 3 * H + 2 * H, *z = gh + b * 2 * H + zb * H, *c_b = c + b * H;
      const float* hp_b = hp + b * H;
      float* h_b = hn + b * H;
      if (spec.z_keeps) {
#pragma omp simd
        for (int64_t j = 0; j < H; ++j) {
          const float n = tanh_(gi_b[j] + c_b[j]);
          h_b[j] = n + z[j] * (hp_b[j] - n);
        }
      } else {
#pragma omp simd
        for (int64_t j = 0; j < H; ++j) {
          const float n = tanh_(gi_b[j] + c_b[j]);
          h_b[j] = hp_b[j] + z[j] * (n - hp_b[j]);
        }
      }
    }
  });
}

void gated_layer_step(const Tensor& weight, const Tensor& bias, const GatedStep& spec, const float* x, int64_t D,
                      const float* hp, float* hn, int64_t B, int64_t H, bool input_term, StackScratch& scratch) {
  const int64_t K = input_term ? H : D + H;
  TORCH_CHECK(weight.dim() == 2 && weight.stride(1) == 1 && weight.size(0) == 3 * H && weight.size(1) == K,
              "stack step: a gated-update layer's weight must be (3H, K) with rows contiguous");
  with_weight_data(weight, "stack step", [&](const auto* w) {
    gated_rows_step(w, weight.stride(0), input_term ? nullptr : bias.data_ptr<float>(), spec, x, D, hp, hn, B, H,
                    input_term, scratch);
  });
}

// The gated-update cells' specifications, as the comment above writes their equations
GatedStep gated_step_of(Family family) {
  switch (family) {
    case Family::kChoGRU: return {1, false, true, true, false};
    case Family::kMUT1: return {0, false, false, false, true};
    case Family::kMUT2: return {0, false, false, true, false};
    default: return {0, true, false, true, false};  // MUT3
  }
}

// ---- One Elman step at B rows without autograd: h_t = φ(W [x, h_{t-1}] + b), φ = tanh or ReLU (seed 000) ---------
// weight the fused [W_xh | W_hh] (H, D + H) (with ``input_term`` W_hh's columns alone, x then being W_xh x + b),
// float32 or bfloat16; bias (H). Up to ``max_rows`` rows the products are dot_rows (each weight row read once per
// row); beyond, a GEMM.
void elman_layer_step(const Tensor& weight, const Tensor& bias, Family family, const float* x, int64_t D,
                      const float* hp, float* hn, int64_t B, int64_t H, bool input_term, StackScratch& scratch) {
  const int64_t K = input_term ? H : D + H;
  TORCH_CHECK(weight.dim() == 2 && weight.stride(1) == 1 && weight.size(0) == H && weight.size(1) == K,
              "stack step: an Elman layer's weight must be (H, K) with rows contiguous");
  const float* v = hp;
  if (!input_term) {  // [x_k, h_{t-1}] for the fused weight
    scratch.v.resize(static_cast<size_t>(B * K));
    for (int64_t b = 0; b < B; ++b) {
      std::memcpy(scratch.v.data() + b * K, x + b * D, D * sizeof(float));
      std::memcpy(scratch.v.data() + b * K + D, hp + b * H, H * sizeof(float));
    }
    v = scratch.v.data();
  } else {
    std::memcpy(hn, x, B * H * sizeof(float));  // the input term, to which the recurrent product adds
  }
  with_weight_data(weight, "stack step", [&](const auto* w) {
    product_rows(w, H, weight.stride(0), input_term ? nullptr : bias.data_ptr<float>(), v, K, hn, H, B, K, input_term,
                 scratch);
  });
  activate_rows(hn, family == Family::kElmanTanh ? 0 : 1, B, H);
}

// One step of a unidirectional stack of one family at B rows (see stack_step): x (B, ·) layer 0's input (its input
// term with ``projected``); hp (L, B, H) in, hn (L, B, H) out, and for the LSTMs cp, cn likewise (null for the GRU).
void stack_rows(Family family, const std::vector<Tensor>& weights, const std::vector<Tensor>& biases, const float* x,
                int64_t D, const float* hp, const float* cp, float* hn, float* cn, int64_t L, int64_t B, int64_t H,
                bool projected, int64_t max_rows, int64_t parts, StackScratch& scratch) {
  scratch.max_rows = max_rows;
  scratch.parts = std::max<int64_t>(1, parts);
  const float* layer_in = x;
  for (int64_t k = 0; k < L; ++k) {
    const int64_t at = k * B * H;
    const bool input_term = projected && k == 0;  // the input term is given; only W_hh is read
    if (family == Family::kGRU) {
      gru_layer_step(weights[k], biases[k], layer_in, D, hp + at, hn + at, B, H, input_term, scratch);
    } else if (is_gated(family)) {
      gated_layer_step(weights[k], biases[k], gated_step_of(family), layer_in, D, hp + at, hn + at, B, H, input_term,
                       scratch);
    } else if (is_elman(family)) {
      elman_layer_step(weights[k], biases[k], family, layer_in, D, hp + at, hn + at, B, H, input_term, scratch);
    } else {  // a peephole LSTM's bias row holds [b | p_i | p_f | p_o]
      const float* peep = family == Family::kPeephole ? biases[k].data_ptr<float>() + 4 * H : nullptr;
      lstm_layer_step(weights[k], biases[k], peep, layer_in, D, hp + at, cp + at, hn + at, cn + at, B, H, input_term,
                      scratch);
    }
    layer_in = hn + at;
    D = H;
  }
}

// The output layer on B rows, out (B, V) = h (B, K) Wᵀ + bias: head_rows up to ``max_rows`` rows, a GEMM beyond
void head_step(const Tensor& head_w, const float* bias, const float* h, float* out, int64_t B, int64_t K,
               int64_t max_rows) {
  const int64_t V = head_w.size(0);
  if (B <= max_rows) {
    head_rows(head_w.data_ptr<float>(), V, head_w.stride(0), bias, h, out, B, K);
    return;
  }
  const auto options = torch::TensorOptions().dtype(at::kFloat);
  Tensor result = torch::from_blob(out, {B, V}, options);
  const Tensor lhs = torch::from_blob(const_cast<float*>(h), {B, K}, options);
  if (bias) {
    at::addmm_out(result, torch::from_blob(const_cast<float*>(bias), {V}, options), lhs, head_w.t());
  } else {
    at::mm_out(result, lhs, head_w.t());
  }
}

// The checks that stack_step and stack_sample share: the state (h, and c for the LSTMs; c empty for the GRU), one
// weight and bias per layer (an LSTM's b (4H), unused for a projected layer 0; a peephole LSTM's [b | p_i | p_f |
// p_o] (7H); a GRU's [b_i | b_h] (6H)), and the output layer (when given; returns whether it has a bias)
bool check_stack(Family family, const std::vector<Tensor>& weights, const std::vector<Tensor>& biases,
                 const Tensor& h, const Tensor& c, bool projected, const Tensor& head_w, const Tensor& head_b,
                 const char* name) {
  const bool lstm = is_lstm(family);
  TORCH_CHECK(h.dim() == 3 && static_cast<int64_t>(weights.size()) == h.size(0) && biases.size() == weights.size(),
              name, ": one weight and bias per layer of h (L, B, H)");
  check_float(h, "h");
  if (lstm) {
    TORCH_CHECK(c.sizes() == h.sizes(), name, ": an LSTM stack's c must be (L, B, H) as h");
    check_float(c, "c");
  } else {
    TORCH_CHECK(!c.defined() || c.numel() == 0, name, ": a GRU or Elman stack carries h alone (c empty)");
  }
  const int64_t H = h.size(2);
  const int64_t entries = family == Family::kLSTM ? 4 * H : family == Family::kPeephole ? 7 * H
                          : family == Family::kGRU ? 6 * H : is_gated(family) ? 3 * H : H;
  // the input term holds layer 0's bias
  const bool unused_at_0 = family == Family::kLSTM || is_gated(family) || is_elman(family);
  for (size_t k = unused_at_0 && projected ? 1 : 0; k < biases.size(); ++k) {
    check_float(biases[k], "a bias");
    TORCH_CHECK(biases[k].numel() == entries, name, ": layer ", k, "'s bias must have ", entries, " entries");
  }
  if (!(head_w.defined() && head_w.numel())) return false;
  TORCH_CHECK(head_w.dim() == 2 && head_w.size(1) == h.size(2) && head_w.stride(1) == 1 &&
              head_w.scalar_type() == at::kFloat,
              name, ": the output layer's weight must be (V, H) float32 with rows contiguous");
  const bool with_bias = head_b.defined() && head_b.numel();
  if (with_bias) check_float(head_b, "the output layer's bias");
  return with_bias;
}

// NaN and ±inf are told apart by their bits: the kernels are compiled with -ffast-math, under which std::isnan and
// comparisons with an infinity may be folded away
inline uint32_t float_bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, sizeof u);
  return u;
}

// x / t rounded as IEEE division (as torch divides), not as x times a rounded 1 / t, which -ffast-math allows
#pragma GCC push_options
#pragma GCC optimize("no-reciprocal-math")
__attribute__((noinline)) void divide_row(const float* x, float t, float* out, int64_t V) {
  for (int64_t v = 0; v < V; ++v) out[v] = x[v] / t;
}
#pragma GCC pop_options

// What a draw keeps of a row (rnnkit.generation.sampling.choose_next's order): top_k > 0 keeps the logits at least
// the k-th largest (ties at the k-th all kept; torch.topk), top_p < 1 then the nucleus, the smallest prefix of the
// logits sorted in descending order whose softmax sums to top_p (a logit is dropped when the probability before it
// reaches top_p; Holtzman et al. 2020). Dropped logits become −inf.
struct Keep {
  int64_t top_k = 0;
  float top_p = 1.f;
  bool active() const { return top_k > 0 || top_p < 1.f; }
};

// Scratch rows of a draw, kept across the draws of a token loop
struct DrawScratch {
  std::vector<float> scaled, sorted, e;
  std::vector<int64_t> order;
};

inline float minus_inf() {
  constexpr uint32_t bits = 0xff800000u;
  float f;
  std::memcpy(&f, &bits, sizeof f);
  return f;
}

// s (V) finite or ±inf (no NaN): apply ``keep`` in place (see Keep). The softmax of the nucleus is taken as torch
// does (max, exp(s - max), one sum, times its reciprocal; the running sum in double, as torch's cumsum on the CPU):
// the set kept is torch's except where a running sum falls within float rounding of top_p, or ties straddle its end
// (torch's sort orders ties as it likes, this one by id).
void keep_row(float* s, int64_t V, const Keep& keep, DrawScratch& d) {
  constexpr uint32_t kPlusInf = 0x7f800000u, kMinusInf = 0xff800000u;
  const float drop = minus_inf();
  if (keep.top_k > 0 && keep.top_k < V) {
    d.sorted.assign(s, s + V);
    std::nth_element(d.sorted.begin(), d.sorted.begin() + (keep.top_k - 1), d.sorted.end(), std::greater<float>());
    const float kth = d.sorted[keep.top_k - 1];
    for (int64_t v = 0; v < V; ++v)
      if (s[v] < kth) s[v] = drop;
  }
  if (!(keep.top_p < 1.f)) return;
  d.order.resize(V);
  for (int64_t v = 0; v < V; ++v) d.order[v] = v;
  std::stable_sort(d.order.begin(), d.order.end(), [s](int64_t a, int64_t b) { return s[a] > s[b]; });
  const float top = s[d.order[0]];
  const uint32_t top_bits = float_bits(top);
  if (top_bits == kPlusInf || top_bits == kMinusInf) return;  // torch's softmax is NaN there: nothing is dropped
  d.e.resize(V);
  float sum = 0.f;
  for (int64_t i = 0; i < V; ++i) {
    const float v = s[d.order[i]];
    const float a = v - top;  // exp of anything below -kExpArgMax is taken as 0 (e^-80 ~ 2e-35)
    d.e[i] = float_bits(v) == kMinusInf || a < -kExpArgMax<float> ? 0.f : std::exp(a);
    sum += d.e[i];
  }
  const float inv = 1.f / sum;
  double running = 0.0;
  int64_t i = 0;
  for (; i < V; ++i) {
    const float p_i = d.e[i] * inv;
    running += p_i;
    if (static_cast<float>(running) - p_i >= keep.top_p) break;  // the nucleus was complete before token i
  }
  for (; i < V; ++i) s[d.order[i]] = drop;
}

// One draw per row: id_b = argmax_v (x_bv / temperature + g_bv) (g = 0 without noise: the argmax), a NaN term read
// as −inf and +∞ as the largest float, as choose_next's guard; ties go to the first index, as torch.argmax. A term
// that is −inf (a NaN or −inf logit, −inf noise, or an id marked in ``banned`` (V) when given) never beats another;
// a row of them all gives index 0. With ``keep`` active, the row is first guarded and banned, divided by the
// temperature and restricted (keep_row), as choose_next does.
void draw_rows(const float* logits, int64_t ld_x, const float* noise, int64_t ld_g, int64_t B, int64_t V,
               float temperature, const uint8_t* banned, int64_t* out, DrawScratch& d, const Keep& keep = Keep()) {
  constexpr uint32_t kPlusInf = 0x7f800000u, kMinusInf = 0xff800000u;
  for (int64_t b = 0; b < B; ++b) {
    const float* xb = logits + b * ld_x;
    if (keep.active()) {
      d.scaled.resize(V);
      for (int64_t v = 0; v < V; ++v) {
        const uint32_t lx = float_bits(xb[v]);
        const bool nan = (lx & 0x7fffffffu) > kPlusInf;
        d.scaled[v] = nan || (banned && banned[v]) ? minus_inf()
                      : lx == kPlusInf ? std::numeric_limits<float>::max() : xb[v];
      }
      if (temperature != 1.f) divide_row(d.scaled.data(), temperature, d.scaled.data(), V);
      keep_row(d.scaled.data(), V, keep, d);
      xb = d.scaled.data();
    } else if (temperature != 1.f) {
      d.scaled.resize(V);
      divide_row(xb, temperature, d.scaled.data(), V);
      xb = d.scaled.data();
    }
    const float* gb = noise ? noise + b * ld_g : nullptr;
    int64_t best_v = 0;
    float best = 0.f;
    bool found = false;
    for (int64_t v = 0; v < V; ++v) {
      const uint32_t lx = float_bits(xb[v]);
      if (((lx & 0x7fffffffu) >= kPlusInf && lx != kPlusInf) || (gb && float_bits(gb[v]) == kMinusInf) ||
          (banned && banned[v]))
        continue;
      const float s = (lx == kPlusInf ? std::numeric_limits<float>::max() : xb[v]) + (gb ? gb[v] : 0.f);
      if (!found || s > best) best = s, best_v = v, found = true;
    }
    out[b] = best_v;
  }
}

}  // namespace

namespace {

// The options of a draw, checked: temperature > 0, top_k >= 0, top_p in (0, 1]
Keep draw_options(double temperature, int64_t top_k, double top_p, const char* name) {
  TORCH_CHECK(temperature > 0 && top_k >= 0 && top_p > 0 && top_p <= 1, name,
              ": temperature > 0, top_k >= 0 and top_p in (0, 1]");
  Keep keep;
  keep.top_k = top_k;
  keep.top_p = static_cast<float>(top_p);  // as torch compares a float32 tensor with a Python float
  return keep;
}

// (V) 1 for an id in ``banned`` (a 1-D int64 tensor, may be empty: then an empty mask)
std::vector<uint8_t> banned_mask(const Tensor& banned, int64_t V, const char* name) {
  std::vector<uint8_t> mask;
  if (!(banned.defined() && banned.numel())) return mask;
  TORCH_CHECK(banned.scalar_type() == at::kLong && banned.dim() == 1 && banned.is_contiguous(), name,
              ": banned must be a 1-D int64 tensor of ids");
  mask.assign(V, 0);
  for (int64_t i = 0; i < banned.numel(); ++i) {
    const int64_t id = banned.data_ptr<int64_t>()[i];
    TORCH_CHECK(id >= 0 && id < V, name, ": banned id ", id, " is not in [0, ", V, ")");
    mask[id] = 1;
  }
  return mask;
}

}  // namespace

// One step of a unidirectional stack of one family (``family``: "lstm", "peephole-lstm", "gru", "gru-cho", "mut1",
// "mut2", "mut3", "rnn-tanh", "rnn-relu") and, with ``head_w``, its output layer: a whole generation step in one call
// (stack_rows: up to ``max_rows`` rows the weights are read once per row; beyond, each layer's products are GEMMs in
// ``parts`` blocks of the weight's rows, one per thread, product_rows). weights[k] (G·H, K_k) float32 or bfloat16
// with unit stride along K (G = 4 for the LSTMs, 3 for the GRUs and MUT1-3, 1 for the Elman network): layer k's
// fused [W_ih | W_hh], or with ``projected`` layer 0's W_hh columns alone, x then being layer 0's input term
// W_ih x + b_ih (B, G·H); biases[k] float32, the LSTM's b (4H) (unused for a projected layer 0, as the gated cells'
// b (3H) and the Elman network's b (H)), the peephole LSTM's [b | p_i | p_f | p_o] (7H), the GRU's [b_ih | b_hh]
// (6H); x, h (L, B, H), and the LSTMs' c (L, B, H) (the others' empty) float32; head_w (V, H) and head_b (V)
// float32 (head_b may be empty). Returns {the last layer's h_t (B, H), or the logits (B, V) with head_w; h_n
// (L, B, H); c_n (L, B, H), empty but for the LSTMs}.
std::vector<Tensor> stack_step(const std::string& family_name, const std::vector<Tensor>& weights,
                               const std::vector<Tensor>& biases, const Tensor& x, const Tensor& h, const Tensor& c,
                               bool projected, const Tensor& head_w, const Tensor& head_b, int64_t max_rows,
                               int64_t parts) {
  c10::impl::ExcludeDispatchKeyGuard no_autocast(c10::autocast_dispatch_keyset);  // float32 here, as asked
  const Family family = family_of(family_name);
  const bool with_bias = check_stack(family, weights, biases, h, c, projected, head_w, head_b, "stack_step");
  check_float(x, "x");
  const int64_t L = h.size(0), B = h.size(1), H = h.size(2);
  const bool lstm = is_lstm(family);
  auto h_n = torch::empty({L, B, H}, h.options());
  auto c_n = lstm ? torch::empty({L, B, H}, h.options()) : torch::empty({0}, h.options());
  StackScratch scratch;
  stack_rows(family, weights, biases, x.data_ptr<float>(), x.size(1), h.data_ptr<float>(),
             lstm ? c.data_ptr<float>() : nullptr, h_n.data_ptr<float>(), lstm ? c_n.data_ptr<float>() : nullptr, L,
             B, H, projected, max_rows, parts, scratch);
  if (!(head_w.defined() && head_w.numel())) return {h_n[L - 1], h_n, c_n};
  auto logits = torch::empty({B, head_w.size(0)}, h_n.options());
  head_step(head_w, with_bias ? head_b.data_ptr<float>() : nullptr, h_n.data_ptr<float>() + (L - 1) * B * H,
            logits.data_ptr<float>(), B, H, max_rows);
  return {logits, h_n, c_n};
}

// The token loop of generation from a language model whose stack stack_step runs, ``draws`` tokens in one call: draw a token per
// row from the logits (draw_rows: noise[i] (B, V), or the argmax with an empty ``noise``; top_k (0: all) and top_p
// (1: all) as keep_row; an id in ``banned`` (int64, may be empty) never), look up its row of ``table`` (V_in, N):
// with ``projected`` layer 0's input term for every token (N = G·H, W_ih E + b_ih), else the embedding (N = D); step
// the stack (stack_step) and its output layer, and again. After the last draw the stack steps only with
// ``step_after_last``. With stop_id >= 0 a row whose draw is stop_id is marked in ``done`` (B) (bool, in and out),
// and the loop ends once every row is. logits (B, V) float32 are the first draw's. Returns {ids (m, B) of the m <=
// draws tokens drawn, the logits after the last step, h_n, c_n (empty for the GRU)}. The other arguments as
// stack_step's.
std::vector<Tensor> stack_sample(const std::string& family_name, const std::vector<Tensor>& weights,
                                 const std::vector<Tensor>& biases, const Tensor& table, bool projected,
                                 const Tensor& h, const Tensor& c, const Tensor& head_w, const Tensor& head_b,
                                 const Tensor& logits, const Tensor& noise, int64_t draws, double temperature,
                                 int64_t top_k, double top_p, const Tensor& banned, int64_t stop_id, const Tensor& done,
                                 bool step_after_last, int64_t max_rows, int64_t parts) {
  c10::impl::ExcludeDispatchKeyGuard no_autocast(c10::autocast_dispatch_keyset);
  const Family family = family_of(family_name);
  TORCH_CHECK(head_w.defined() && head_w.numel(), "stack_sample: the output layer's weight is required");
  const bool with_bias = check_stack(family, weights, biases, h, c, projected, head_w, head_b, "stack_sample");
  const bool lstm = is_lstm(family);
  const int64_t L = h.size(0), B = h.size(1), H = h.size(2), V = head_w.size(0), G = gates_of(family);
  check_float(table, "the input table");
  check_float(logits, "the logits");
  const int64_t N = table.dim() == 2 ? table.size(1) : -1;
  TORCH_CHECK(table.dim() == 2 && table.size(0) >= V && N == (projected ? G * H : weights[0].size(1) - H),
              "stack_sample: the table must be (V_in, ", G, "H) (projected) or (V_in, D) (the embedding), with a row ",
              "for each of the V outputs");
  TORCH_CHECK(logits.dim() == 2 && logits.size(0) == B && logits.size(1) == V, "stack_sample: logits (B, V)");
  const bool noisy = noise.defined() && noise.numel();
  if (noisy) {
    check_float(noise, "the noise");
    TORCH_CHECK(noise.dim() == 3 && noise.size(0) >= draws && noise.size(1) == B && noise.size(2) == V,
                "stack_sample: noise (draws, B, V)");
  }
  const bool stops = stop_id >= 0;
  TORCH_CHECK(!stops || (done.scalar_type() == at::kBool && done.numel() == B && done.is_contiguous()),
              "stack_sample: done must be a (B) bool tensor");
  TORCH_CHECK(draws >= 0, "stack_sample: draws >= 0");
  const Keep keep = draw_options(temperature, top_k, top_p, "stack_sample");
  const std::vector<uint8_t> banned_ids = banned_mask(banned, V, "stack_sample");
  const uint8_t* banned_ptr = banned_ids.empty() ? nullptr : banned_ids.data();
  auto ids = torch::empty({draws, B}, logits.options().dtype(at::kLong));
  auto x = torch::empty({B, N}, h.options());
  auto cur = logits.clone();
  const auto c_like = [&] { return lstm ? torch::empty_like(h) : torch::empty({0}, h.options()); };
  Tensor state[2][2] = {{h.clone(), lstm ? c.clone() : c_like()}, {torch::empty_like(h), c_like()}};
  const auto c_ptr = [&](const Tensor& t) { return lstm ? t.data_ptr<float>() : nullptr; };
  DrawScratch drawing;
  StackScratch scratch;
  bool* finished = stops ? done.data_ptr<bool>() : nullptr;
  int64_t m = 0, now = 0;
  for (; m < draws;) {
    int64_t* row_ids = ids.data_ptr<int64_t>() + m * B;
    draw_rows(cur.data_ptr<float>(), V, noisy ? noise.data_ptr<float>() + m * B * V : nullptr, V, B, V,
              static_cast<float>(temperature), banned_ptr, row_ids, drawing, keep);
    ++m;
    if (stops) {
      bool all = true;
      for (int64_t b = 0; b < B; ++b) all = (finished[b] = finished[b] || row_ids[b] == stop_id) && all;
      if (all) break;
    }
    if (m == draws && !step_after_last) break;
    for (int64_t b = 0; b < B; ++b)
      std::memcpy(x.data_ptr<float>() + b * N, table.data_ptr<float>() + row_ids[b] * N, N * sizeof(float));
    const Tensor *in = state[now], *out = state[1 - now];
    stack_rows(family, weights, biases, x.data_ptr<float>(), N, in[0].data_ptr<float>(), c_ptr(in[1]),
               out[0].data_ptr<float>(), c_ptr(out[1]), L, B, H, projected, max_rows, parts, scratch);
    head_step(head_w, with_bias ? head_b.data_ptr<float>() : nullptr, out[0].data_ptr<float>() + (L - 1) * B * H,
              cur.data_ptr<float>(), B, H, max_rows);
    now = 1 - now;
  }
  return {ids.narrow(0, 0, m), cur, state[now][0], state[now][1]};
}

// ---- A few rows through a linear layer: x (R, K) Wᵀ + bias, W (N, K) ----------------------------------------------
//   dot_rows: a generation step's input projections, where ATen's product at one row ran 1.6-3x slower (a
//   matrix-vector product that does not stream W at the rate the dot products do; benchmarks/bench_generation.py).
Tensor linear_rows(const Tensor& x, const Tensor& w, const Tensor& bias) {
  TORCH_CHECK(x.dim() == 2 && x.scalar_type() == at::kFloat && x.is_contiguous(),
              "linear_rows: x must be (R, K) float32, contiguous");
  TORCH_CHECK(w.dim() == 2 && w.scalar_type() == at::kFloat && w.stride(1) == 1 && w.size(1) == x.size(1),
              "linear_rows: the weight must be (N, K) float32 with rows contiguous");
  const bool with_bias = bias.defined() && bias.numel();
  if (with_bias)
    TORCH_CHECK(bias.dim() == 1 && bias.size(0) == w.size(0) && bias.scalar_type() == at::kFloat &&
                bias.is_contiguous(), "linear_rows: the bias must be (N) float32");
  const int64_t R = x.size(0), K = x.size(1), N = w.size(0);
  auto out = torch::empty({R, N}, x.options());
  dot_rows(w.data_ptr<float>(), N, w.stride(0), with_bias ? bias.data_ptr<float>() : nullptr, x.data_ptr<float>(), K,
           out.data_ptr<float>(), N, R, K, false);
  return out;
}

// ---- One draw per row by the Gumbel-max trick (generation's sampler, rnnkit.generation.sampling) ----------------
//   id_b = argmax_v (x_bv / temperature + g_bv) over the ids that top_k / top_p keep and ``banned`` (int64, may be
//   empty) does not name (draw_rows, keep_row): choose_next's draw in one pass instead of its tensor operations.
Tensor gumbel_argmax(const Tensor& logits, const Tensor& noise, double temperature, int64_t top_k, double top_p,
                     const Tensor& banned) {
  TORCH_CHECK(logits.dim() == 2 && logits.scalar_type() == at::kFloat && logits.stride(1) == 1,
              "gumbel_argmax: logits must be (B, V) float32 with unit stride along V");
  TORCH_CHECK(noise.sizes() == logits.sizes() && noise.scalar_type() == at::kFloat && noise.stride(1) == 1,
              "gumbel_argmax: noise must be float32 of the logits' shape");
  const int64_t B = logits.size(0), V = logits.size(1);
  const Keep keep = draw_options(temperature, top_k, top_p, "gumbel_argmax");
  const std::vector<uint8_t> banned_ids = banned_mask(banned, V, "gumbel_argmax");
  auto ids = torch::empty({B}, logits.options().dtype(at::kLong));
  DrawScratch drawing;
  draw_rows(logits.data_ptr<float>(), logits.stride(0), noise.data_ptr<float>(), noise.stride(0), B, V,
            static_cast<float>(temperature), banned_ids.empty() ? nullptr : banned_ids.data(),
            ids.data_ptr<int64_t>(), drawing, keep);
  return ids;
}

// ---- Cross-entropy over a vocabulary: loss and gradient in one call -----------------------------------------------
//   loss_i = logsumexp_v(x_iv) − x_{i,t_i};  L = (1/n) Σ_i loss_i over the n rows whose target is not ignore_index
//   ∂L/∂x_iv = (softmax(x_i)_v − [v = t_i]) / n
// Each row is read into a float (double for float64) scratch row once: its max, its sum of exponentials, the loss
// and the gradient come from there, and the gradient is written in the logits' dtype (bf16 under autocast, where
// torch's path widens the logits to fp32 and makes four more passes over them). Sums are in float or double.
namespace {

template <typename scalar_t, typename acc_t>
void cross_entropy_rows(const scalar_t* x, const int64_t* targets, scalar_t* grad, double* losses, int64_t r0,
                        int64_t r1, int64_t V, int64_t ignore_index, acc_t scale) {
  std::vector<acc_t> row(V);
  for (int64_t i = r0; i < r1; ++i) {
    const scalar_t* xi = x + i * V;
    scalar_t* gi = grad + i * V;
    const int64_t t = targets[i];
    if (t == ignore_index) {
      std::fill(gi, gi + V, scalar_t(0));
      losses[i] = 0.0;
      continue;
    }
    acc_t m = -std::numeric_limits<acc_t>::infinity();
    for (int64_t v = 0; v < V; ++v) {
      row[v] = static_cast<acc_t>(xi[v]);
      m = std::max(m, row[v]);
    }
    acc_t sum = 0;
    for (int64_t v = 0; v < V; ++v) {
      row[v] = std::exp(row[v] - m);
      sum += row[v];
    }
    const acc_t inv = scale / sum;
    losses[i] = static_cast<double>(m + std::log(sum) - static_cast<acc_t>(xi[t]));
    for (int64_t v = 0; v < V; ++v) gi[v] = static_cast<scalar_t>(row[v] * inv);
    gi[t] = static_cast<scalar_t>(row[t] * inv - scale);
  }
}

}  // namespace

// logits (N, V) contiguous float / double / bfloat16, targets (N,) int64 -> [mean loss (float64 scalar), gradient of
// the mean (N, V) in the logits' dtype]. A target outside [0, V) other than ignore_index is an error.
std::vector<Tensor> cross_entropy_forward(const Tensor& logits, const Tensor& targets, int64_t ignore_index) {
  TORCH_CHECK(logits.dim() == 2 && logits.is_contiguous(), "cross_entropy_forward: contiguous (N, V) logits");
  TORCH_CHECK(targets.dim() == 1 && targets.size(0) == logits.size(0) && targets.scalar_type() == at::kLong,
              "cross_entropy_forward: (N,) int64 targets");
  const int64_t N = logits.size(0), V = logits.size(1);
  const Tensor t = targets.contiguous();
  const int64_t* tp = t.data_ptr<int64_t>();
  int64_t n = 0;
  for (int64_t i = 0; i < N; ++i) {
    if (tp[i] == ignore_index) continue;
    TORCH_CHECK(tp[i] >= 0 && tp[i] < V, "Target ", tp[i], " is out of bounds.");
    ++n;
  }
  Tensor grad = at::empty_like(logits);
  Tensor losses = at::empty({N}, logits.options().dtype(at::kDouble));
  double* lp = losses.data_ptr<double>();
  const int64_t grain = std::max<int64_t>(1, 16384 / std::max<int64_t>(V, 1));
  AT_DISPATCH_FLOATING_TYPES_AND(at::kBFloat16, logits.scalar_type(), "cross_entropy_forward", [&] {
    using acc_t = std::conditional_t<std::is_same_v<scalar_t, double>, double, float>;
    const acc_t scale = n ? acc_t(1) / acc_t(n) : acc_t(0);
    const scalar_t* xp = logits.data_ptr<scalar_t>();
    scalar_t* gp = grad.data_ptr<scalar_t>();
    at::parallel_for(0, N, grain, [&](int64_t r0, int64_t r1) {
      cross_entropy_rows<scalar_t, acc_t>(xp, tp, gp, lp, r0, r1, V, ignore_index, scale);
    });
  });
  const double total = losses.sum().item<double>();
  return {at::scalar_tensor(n ? total / double(n) : std::nan(""), logits.options().dtype(at::kDouble)), grad};
}

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("lstm_forward", &lstm_forward, "LSTM-family sequence, forward");
  m.def("lstm_backward", &lstm_backward, "LSTM-family sequence, backward");
  m.def("gated_forward", &gated_forward, "gated-update (Cho GRU, MUT1-3) sequence, forward");
  m.def("gated_backward", &gated_backward, "gated-update (Cho GRU, MUT1-3) sequence, backward");
  m.def("leaky_forward", &leaky_forward, "Elman / leaky-unit sequence, forward");
  m.def("leaky_backward", &leaky_backward, "Elman / leaky-unit sequence, backward");
  m.def("gru_forward", &gru_forward, "GRU (torch's form) sequence, forward");
  m.def("gru_backward", &gru_backward, "GRU (torch's form) sequence, backward");
  m.def("delay_forward", &delay_forward, "Elman with delay paths, sequence, forward");
  m.def("delay_backward", &delay_backward, "Elman with delay paths, sequence, backward");
  m.def("jordan_forward", &jordan_forward, "Jordan network sequence, forward");
  m.def("jordan_backward", &jordan_backward, "Jordan network sequence, backward");
  m.def("lstm_step", &lstm_step, "one LSTM step at a few rows without autograd (generation)");
  m.def("cross_entropy_forward", &cross_entropy_forward, "mean cross-entropy over a vocabulary and its gradient");
  m.def("linear_rows", &linear_rows, "a few rows through a linear layer as dot products (generation steps)");
  m.def("gumbel_argmax", &gumbel_argmax, "one Gumbel-max draw per row of (B, V) logits (generation)");
  m.def("stack_step", &stack_step, "one step of a recurrent stack of one family and its output layer (generation)");
  m.def("stack_sample", &stack_sample, "generation's token loop: draw, look up, step the stack and its head");
}
