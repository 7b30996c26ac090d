// Kiln's oneDNN kernels for the WASM backend in Node: 2-D convolution forward, input gradient and
// filter gradient, computed by oneDNN (the library PyTorch's CPU convolutions use) straight on the
// tensors' bytes in the WebAssembly heap, and its matrix products (with a fused bias and ReLU),
// max-pool gradients and batch norm. Beside them, plain loops oneDNN has no primitive for, which
// replace many small WASM kernels each: the Adam and SGD updates of one parameter, the sum over
// leading axes (bias gradients), the gradients of a bias and ReLU, and max pooling that keeps its
// argmax, with the scatter that is its gradient. Two families of convolutions run Kiln's own loops
// instead of oneDNN's: Winograd F(4x4, 3x3) where oneDNN has none (kiln_winograd.h) and
// convolutions with few channels (kiln_small_conv.h).
//
// Layouts are tfjs's: activations NHWC, filters HWIO ([KH, KW, CI, CO]). Activations are handed to
// oneDNN in that layout (its AVX2/AVX-512 kernels have channels-last paths), except where its
// blocked layout pays even with a conversion at each call (preferBlocked()); filters are reordered
// to whatever blocked layout the chosen primitive prefers, which costs little since filters are
// small. Primitives are created once per shape and cached.
//
// Every entry point takes Float32Arrays (views of the heap) and an Int32Array of geometry:
//   [N, IH, IW, CI, OH, OW, CO, KH, KW, SH, SW, DH, DW, PT, PL]
// with tfjs's conventions: dilation 1 means none, PT/PL the top/left padding.

#include <node_api.h>
#include <omp.h>
#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include <dnnl.hpp>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>
#include <set>
#include <unordered_map>
#include <algorithm>
#include <array>
#include <utility>
#include <cmath>
#include <vector>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace {

using dnnl::algorithm;
using dnnl::convolution_backward_data;
using dnnl::convolution_backward_weights;
using dnnl::convolution_forward;
using dnnl::engine;
using dnnl::memory;
using dnnl::prop_kind;
using dnnl::reorder;
using dnnl::stream;
using tag = memory::format_tag;
using dt = memory::data_type;

// Loops over fewer elements than this run on the calling thread: below it, waking oneDNN's OpenMP
// threads (they wait passively) costs more than they save. Measured on LeNet-5's loops (max pool
// with argmax over 301 k values, Adam over 62 k parameters): at 2^15 the second thread made each
// of them 1.5-4x slower and the step 4.6 -> 5.9 ms of wall time; at 2^20 they stay on one thread
// and ResNet-18's (activations of 0.8-3.2 M values, 11 M parameters) still split.
constexpr int64_t kParallelFrom = 1 << 20;

struct Geometry {
  int64_t N, IH, IW, CI, OH, OW, CO, KH, KW, SH, SW, DH, DW, PT, PL;

  memory::dims src() const { return {N, CI, IH, IW}; }
  memory::dims dst() const { return {N, CO, OH, OW}; }
  memory::dims wei() const { return {CO, CI, KH, KW}; }
  size_t srcSize() const { return N * IH * IW * CI; }
  size_t dstSize() const { return N * OH * OW * CO; }
  size_t weiSize() const { return KH * KW * CI * CO; }
  memory::dims strides() const { return {SH, SW}; }
  // oneDNN counts dilation from 0 (no gaps), tfjs from 1.
  memory::dims dilates() const { return {DH - 1, DW - 1}; }
  memory::dims padL() const { return {PT, PL}; }
  // The right/bottom padding that makes the output size come out exactly as tfjs computed it.
  memory::dims padR() const {
    return {(OH - 1) * SH + (KH - 1) * DH + 1 - IH - PT, (OW - 1) * SW + (KW - 1) * DW + 1 - IW - PL};
  }
  std::string key() const {
    std::string k;
    for (int64_t v : {N, IH, IW, CI, OH, OW, CO, KH, KW, SH, SW, DH, DW, PT, PL}) k += std::to_string(v) + ",";
    return k;
  }
};

engine &cpu() {
  static engine e(engine::kind::cpu, 0);
  return e;
}

stream &strm() {
  static stream s(cpu());
  return s;
}

memory::desc plain(const memory::dims &d, tag t) { return memory::desc(d, dt::f32, t); }
memory::desc anyLayout(const memory::dims &d) { return memory::desc(d, dt::f32, tag::any); }

// Activations NHWC, or (`blocked`) in whatever layout oneDNN prefers for this convolution, which
// the calls below convert to and from NHWC around the primitive. See preferBlocked() and
// winogradCandidate() for the choice of layout and algorithm.
convolution_forward::primitive_desc forwardPd(const Geometry &g, bool bias, bool relu, bool blocked, algorithm alg = algorithm::convolution_direct) {
  const tag act = blocked ? tag::any : tag::nhwc;
  const memory::desc src(g.src(), dt::f32, act), dst(g.dst(), dt::f32, act);
  auto desc = bias ? convolution_forward::desc(prop_kind::forward_training, alg, src, anyLayout(g.wei()),
                                               plain({g.CO}, tag::x), dst, g.strides(), g.dilates(), g.padL(), g.padR())
                   : convolution_forward::desc(prop_kind::forward_training, alg, src, anyLayout(g.wei()), dst,
                                               g.strides(), g.dilates(), g.padL(), g.padR());
  dnnl::primitive_attr attr;
  if (relu) {
    dnnl::post_ops ops;
    ops.append_eltwise(1.f, algorithm::eltwise_relu, 0.f, 0.f);
    attr.set_post_ops(ops);
  }
  return convolution_forward::primitive_desc(desc, attr, cpu());
}

// Whether a convolution's activations go to oneDNN in its preferred (blocked, nChw8c/nChw16c)
// layout, converted from and to NHWC at each call, instead of as NHWC. Measured on ResNet-18's
// convolutions (tools/bench/dnnl-layouts.cc, docs/benchmarks.md): with AVX2 the blocked kernels
// are 14% faster than the NHWC ones over the network, 10% with the conversions paid at every call,
// gained on the 3x3 convolutions with 64 channels or more and lost on 1x1 and the 1-channel stem;
// with AVX-512 the two layouts are within 6% and the conversions eat the difference. So: blocked
// below AVX-512 for 3x3-and-larger filters over >= 64 channels. KILN_DNNL_BLOCKED=1/0 forces
// either way (for measuring).
bool preferBlocked(const Geometry &g) {
  static const int forced = [] {
    const char *e = std::getenv("KILN_DNNL_BLOCKED");
    return e && (e[0] == '0' || e[0] == '1') ? e[0] - '0' : -1;
  }();
  if (forced >= 0) return forced == 1;
  // avx512_core and every later AVX-512 level carry all of avx512_core's bits (avx2_vnni does not).
  const int core = static_cast<int>(dnnl::cpu_isa::avx512_core);
  const bool avx512 = (static_cast<int>(dnnl::get_effective_cpu_isa()) & core) == core;
  return !avx512 && g.KH * g.KW > 1 && g.CI >= 64;
}

// Whether a convolution runs as a Winograd F(4x4, 3x3) convolution (2.25x fewer multiplications
// than the direct algorithm for a 3x3 filter at stride 1): oneDNN's (`jit_wino_4x3:avx512_core`,
// forward and both gradients, blocked activations) where it has one, which in 2.6 is with AVX-512
// only, else Kiln's own (kiln_winograd.h; ownWinograd()). On ResNet-18's 3x3 convolutions over
// 64-512 channels, forward and both gradients took 52-54% of the direct algorithm's time with
// oneDNN's, the outputs within ~1e-6 (RMS, relative) of it; the 1-channel stem was slower, hence
// the 64-channel floor (docs/benchmarks.md, "Winograd convolutions"). KILN_DNNL_WINOGRAD=0 keeps
// every convolution direct.
bool winogradCandidate(const Geometry &g) {
  static const bool off = [] {
    const char *e = std::getenv("KILN_DNNL_WINOGRAD");
    return e && e[0] == '0';
  }();
  return !off && g.KH == 3 && g.KW == 3 && g.SH == 1 && g.SW == 1 && g.DH == 1 && g.DW == 1 && g.CI >= 64 && g.CO >= 64;
}

// The forward primitive: Winograd where winogradCandidate() and oneDNN agree, else direct.
convolution_forward::primitive_desc forwardPlan(const Geometry &g, bool bias, bool relu) {
  if (winogradCandidate(g)) {
    try {
      return forwardPd(g, bias, relu, true, algorithm::convolution_winograd);
    } catch (const dnnl::error &) {
      // No Winograd implementation for this CPU or shape: the direct algorithm below.
    }
  }
  return forwardPd(g, bias, relu, preferBlocked(g));
}

// Whether oneDNN has a Winograd kernel on this CPU (at the ISA level it runs at): tried once on a
// small convolution.
bool oneDnnHasWinograd() {
  static const bool has = [] {
    Geometry probe{1, 8, 8, 64, 8, 8, 64, 3, 3, 1, 1, 1, 1, 1, 1};
    try {
      forwardPd(probe, false, false, true, algorithm::convolution_winograd);
      return true;
    } catch (const dnnl::error &) {
      return false;
    }
  }();
  return has;
}

// Whether Kiln's own Winograd (kiln_winograd.h) runs this convolution: a Winograd candidate where
// oneDNN has none, padded as a 3x3 'same' or 'valid' convolution is (top/left 0-2, which the
// input gradient's 2 − pad needs). KILN_DNNL_WINOGRAD=0 turns it off with oneDNN's.
bool ownWinograd(const Geometry &g) {
  return winogradCandidate(g) && !oneDnnHasWinograd() && g.PT <= 2 && g.PL <= 2;
}

// A gradient primitive of the same algorithm as the forward: `make(alg, blocked, hint)` builds it;
// Winograd first where it applies, the direct algorithm when oneDNN has no Winograd for it.
template <typename Pd, typename Make>
Pd gradientPlan(const Geometry &g, Make make) {
  if (winogradCandidate(g)) {
    try {
      return make(algorithm::convolution_winograd, true, forwardPd(g, false, false, true, algorithm::convolution_winograd));
    } catch (const dnnl::error &) {
      // As in forwardPlan().
    }
  }
  const bool blocked = preferBlocked(g);
  return make(algorithm::convolution_direct, blocked, forwardPd(g, false, false, blocked));
}

// A growable float buffer whose data starts on a 64-byte boundary, for memory Kiln converts into
// a primitive's preferred layout: oneDNN's Winograd kernels load and store such memory with aligned
// vector instructions, and std::vector only promises 16 bytes.
struct AlignedScratch {
  std::vector<float> raw;
  float *get(size_t floats) {
    raw.resize(std::max(raw.size(), floats + 16));
    return reinterpret_cast<float *>((reinterpret_cast<uintptr_t>(raw.data()) + 63) & ~uintptr_t(63));
  }
};

// Scratch for converted activations, shared by every convolution (calls hold cacheLock, and one
// call converts at most two tensors: slot 0 and slot 1), so it costs the two largest activations
// once, not a copy per cached primitive.
AlignedScratch activationScratch[2];

// An activation tensor handed over as NHWC and given to the primitive in the layout `want`: the
// reorder between them when they differ, and which scratch slot holds the converted copy.
struct Activation {
  memory::desc nhwc, want;
  std::unique_ptr<reorder> convert;
  int slot;
  Activation(const memory::desc &nhwcDesc, const memory::desc &wantDesc, bool in, int scratchSlot) : nhwc(nhwcDesc), want(wantDesc), slot(scratchSlot) {
    if (want != nhwc)
      convert = std::make_unique<reorder>(in ? reorder::primitive_desc(cpu(), nhwc, cpu(), want) : reorder::primitive_desc(cpu(), want, cpu(), nhwc));
  }
  // The memory the primitive reads or writes: the caller's NHWC bytes, or the scratch copy.
  memory bind(float *data) {
    if (!convert) return memory(nhwc, cpu(), data);
    return memory(want, cpu(), activationScratch[slot].get(want.get_size() / sizeof(float)));
  }
  void toPrimitive(float *data, memory &bound) {
    if (convert) convert->execute(strm(), {{DNNL_ARG_FROM, memory(nhwc, cpu(), data)}, {DNNL_ARG_TO, bound}});
  }
  void fromPrimitive(memory &bound, float *data) {
    if (convert) convert->execute(strm(), {{DNNL_ARG_FROM, bound}, {DNNL_ARG_TO, memory(nhwc, cpu(), data)}});
  }
};

// A filter in tfjs's HWIO layout, reordered into the layout `want` when that differs. The reorder
// primitive is cached with the convolution that needs it.
struct FilterIn {
  memory::desc want;
  bool needsReorder;
  std::unique_ptr<reorder> toWant;
  FilterIn(const Geometry &g, const memory::desc &w) : want(w), needsReorder(w != plain(g.wei(), tag::hwio)) {
    if (needsReorder) toWant = std::make_unique<reorder>(reorder::primitive_desc(cpu(), plain(g.wei(), tag::hwio), cpu(), w));
  }
};

struct Forward {
  convolution_forward prim;
  std::string impl;  // oneDNN's name of the implementation it chose, for convolutionImplementations()
  FilterIn filter;
  Activation x, y;
  Forward(const Geometry &g, bool bias, bool relu) : Forward(forwardPlan(g, bias, relu), g) {}
  Forward(const convolution_forward::primitive_desc &pd, const Geometry &g)
      : prim(pd), impl(pd.impl_info_str()), filter(g, pd.weights_desc()), x(plain(g.src(), tag::nhwc), pd.src_desc(), true, 0), y(plain(g.dst(), tag::nhwc), pd.dst_desc(), false, 1) {}
};

struct BackwardData {
  convolution_backward_data prim;
  std::string impl;
  FilterIn filter;
  Activation dy, dx;
  explicit BackwardData(const convolution_backward_data::primitive_desc &pd, const Geometry &g)
      : prim(pd), impl(pd.impl_info_str()), filter(g, pd.weights_desc()), dy(plain(g.dst(), tag::nhwc), pd.diff_dst_desc(), true, 0), dx(plain(g.src(), tag::nhwc), pd.diff_src_desc(), false, 1) {}
  static BackwardData make(const Geometry &g) {
    using Pd = convolution_backward_data::primitive_desc;
    return BackwardData(gradientPlan<Pd>(g, [&](algorithm alg, bool blocked, const convolution_forward::primitive_desc &hint) {
      const tag act = blocked ? tag::any : tag::nhwc;
      auto desc = convolution_backward_data::desc(alg, memory::desc(g.src(), dt::f32, act), anyLayout(g.wei()),
                                                  memory::desc(g.dst(), dt::f32, act), g.strides(), g.dilates(), g.padL(), g.padR());
      return Pd(desc, cpu(), hint);
    }), g);
  }
};

struct BackwardWeights {
  convolution_backward_weights prim;
  std::string impl;
  memory::desc got;
  std::unique_ptr<reorder> toHwio;  // null when the primitive writes HWIO itself
  Activation x, dy;
  BackwardWeights(const convolution_backward_weights::primitive_desc &pd, const Geometry &g)
      : prim(pd), impl(pd.impl_info_str()), got(pd.diff_weights_desc()), x(plain(g.src(), tag::nhwc), pd.src_desc(), true, 0), dy(plain(g.dst(), tag::nhwc), pd.diff_dst_desc(), true, 1) {
    if (got != plain(g.wei(), tag::hwio)) toHwio = std::make_unique<reorder>(reorder::primitive_desc(cpu(), got, cpu(), plain(g.wei(), tag::hwio)));
  }
  static BackwardWeights make(const Geometry &g) {
    using Pd = convolution_backward_weights::primitive_desc;
    return BackwardWeights(gradientPlan<Pd>(g, [&](algorithm alg, bool blocked, const convolution_forward::primitive_desc &hint) {
      const tag act = blocked ? tag::any : tag::nhwc;
      auto desc = convolution_backward_weights::desc(alg, memory::desc(g.src(), dt::f32, act), anyLayout(g.wei()),
                                                     memory::desc(g.dst(), dt::f32, act), g.strides(), g.dilates(), g.padL(), g.padR());
      return Pd(desc, cpu(), hint);
    }), g);
  }
};

// ---- max pooling gradient ----------------------------------------------------------------------
// Geometry: [N, IH, IW, C, OH, OW, KH, KW, SH, SW, PT, PL]. tfjs hands MaxPoolGrad the input and the
// output gradient; the argmax oneDNN needs (its "workspace") is recomputed by a forward pass. Kiln's
// layers avoid this in training (MAX_POOL_ARGMAX_KERNEL below keeps the argmax); tfjs's own maxPool
// and its gradient still come here.
struct PoolGeometry {
  int64_t N, IH, IW, C, OH, OW, KH, KW, SH, SW, PT, PL;
  memory::dims src() const { return {N, C, IH, IW}; }
  memory::dims dst() const { return {N, C, OH, OW}; }
  memory::dims padR() const { return {(OH - 1) * SH + KH - IH - PT, (OW - 1) * SW + KW - IW - PL}; }
  std::string key() const {
    std::string k = "pool:";
    for (int64_t v : {N, IH, IW, C, OH, OW, KH, KW, SH, SW, PT, PL}) k += std::to_string(v) + ",";
    return k;
  }
};

struct MaxPoolBackward {
  dnnl::pooling_forward fwd;
  dnnl::pooling_backward bwd;
  memory::desc workspace;
  static MaxPoolBackward make(const PoolGeometry &g) {
    auto fdesc = dnnl::pooling_forward::desc(prop_kind::forward_training, algorithm::pooling_max, plain(g.src(), tag::nhwc),
                                             plain(g.dst(), tag::nhwc), {g.SH, g.SW}, {g.KH, g.KW}, {g.PT, g.PL}, g.padR());
    auto fpd = dnnl::pooling_forward::primitive_desc(fdesc, cpu());
    auto bdesc = dnnl::pooling_backward::desc(algorithm::pooling_max, plain(g.src(), tag::nhwc), plain(g.dst(), tag::nhwc),
                                              {g.SH, g.SW}, {g.KH, g.KW}, {g.PT, g.PL}, g.padR());
    auto bpd = dnnl::pooling_backward::primitive_desc(bdesc, cpu(), fpd);
    return MaxPoolBackward{dnnl::pooling_forward(fpd), dnnl::pooling_backward(bpd), fpd.workspace_desc()};
  }
};

// ---- matrix products -----------------------------------------------------------------------------
// Geometry: [batchA, batchB, M, K, N, transposeA, transposeB]; a batch of 1 broadcasts.
struct MatMulGeometry {
  int64_t BA, BB, M, K, N, TA, TB;
  memory::desc a() const { return memory::desc({BA, M, K}, dt::f32, TA ? memory::dims{M * K, 1, M} : memory::dims{M * K, K, 1}); }
  memory::desc b() const { return memory::desc({BB, K, N}, dt::f32, TB ? memory::dims{K * N, 1, K} : memory::dims{K * N, N, 1}); }
  memory::desc c() const { return memory::desc({std::max(BA, BB), M, N}, dt::f32, memory::dims{M * N, N, 1}); }
  // One bias value per output column, broadcast over the batch and the rows.
  memory::desc bias() const { return memory::desc({1, 1, N}, dt::f32, memory::dims{N, N, 1}); }
  std::string key() const {
    std::string k = "mm:";
    for (int64_t v : {BA, BB, M, K, N, TA, TB}) k += std::to_string(v) + ",";
    return k;
  }
};

// ---- batch normalization (training) ------------------------------------------------------------
// Geometry: [N, H, W, C] (NHWC activations; [N, C] is [N, 1, 1, C]). Batch statistics: the mean and
// the biased variance over N, H, W, as the forward pass normalises with.
struct NormGeometry {
  int64_t N, H, W, C;
  memory::desc data() const { return plain({N, C, H, W}, tag::nhwc); }
  memory::desc channels() const { return plain({C}, tag::x); }
  size_t size() const { return N * H * W * C; }
  std::string key(float eps) const { return "bn:" + std::to_string(N) + "," + std::to_string(H) + "," + std::to_string(W) + "," + std::to_string(C) + "," + std::to_string(eps); }
};

const dnnl::normalization_flags kScaleShift = dnnl::normalization_flags::use_scale | dnnl::normalization_flags::use_shift;

struct BatchNorm {
  dnnl::batch_normalization_forward fwd;
  dnnl::batch_normalization_backward bwd;
  static BatchNorm make(const NormGeometry &g, float eps) {
    auto fpd = dnnl::batch_normalization_forward::primitive_desc(
        dnnl::batch_normalization_forward::desc(prop_kind::forward_training, g.data(), eps, kScaleShift), cpu());
    auto bpd = dnnl::batch_normalization_backward::primitive_desc(
        dnnl::batch_normalization_backward::desc(prop_kind::backward, g.data(), g.data(), eps, kScaleShift), cpu(), fpd);
    return BatchNorm{dnnl::batch_normalization_forward(fpd), dnnl::batch_normalization_backward(bpd)};
  }
};

// Inference: normalises with given (running) statistics, so one primitive with no backward.
dnnl::batch_normalization_forward makeBatchNormInference(const NormGeometry &g, float eps) {
  auto flags = kScaleShift | dnnl::normalization_flags::use_global_stats;
  return dnnl::batch_normalization_forward(dnnl::batch_normalization_forward::primitive_desc(
      dnnl::batch_normalization_forward::desc(prop_kind::forward_inference, g.data(), eps, flags), cpu()));
}

std::mutex cacheLock;
std::unordered_map<std::string, std::unique_ptr<BatchNorm>> batchNorms;
std::unordered_map<std::string, std::unique_ptr<dnnl::batch_normalization_forward>> batchNormInferences;
std::unordered_map<std::string, std::unique_ptr<MaxPoolBackward>> maxPoolBackwards;
std::unordered_map<std::string, std::unique_ptr<dnnl::matmul>> matmuls;
std::unordered_map<std::string, std::unique_ptr<Forward>> forwards;
std::unordered_map<std::string, std::unique_ptr<BackwardData>> backwardDatas;
std::unordered_map<std::string, std::unique_ptr<BackwardWeights>> backwardWeights;

// ---- N-API plumbing ----------------------------------------------------------------------------

struct JsError {
  std::string message;
};

#define NAPI_OK(call)                                          \
  do {                                                         \
    if ((call) != napi_ok) throw JsError{"N-API call failed: " #call}; \
  } while (0)

// The elements and length of `v` when it is a typed array of type `want`; otherwise throws
// "<what>: expected <expected>". Every argument check of the addon goes through here.
template <typename T>
T *typedArray(napi_env env, napi_value v, napi_typedarray_type want, size_t *length, const char *what, const std::string &expected) {
  bool is = false;
  NAPI_OK(napi_is_typedarray(env, v, &is));
  napi_typedarray_type type = napi_int8_array;
  size_t len = 0;
  void *data = nullptr;
  if (is) NAPI_OK(napi_get_typedarray_info(env, v, &type, &len, &data, nullptr, nullptr));
  if (!is || type != want) throw JsError{std::string(what) + ": expected " + expected};
  *length = len;
  return static_cast<T *>(data);
}

float *floats(napi_env env, napi_value v, size_t need, const char *what) {
  size_t length = 0;
  float *data = typedArray<float>(env, v, napi_float32_array, &length, what, "a Float32Array");
  if (length != need) throw JsError{std::string(what) + ": expected " + std::to_string(need) + " floats, got " + std::to_string(length)};
  return data;
}

size_t floatsLength(napi_env env, napi_value v, const char *what) {
  size_t length = 0;
  typedArray<float>(env, v, napi_float32_array, &length, what, "a Float32Array");
  return length;
}

// The n values of a typed array of element type `From` (`arrayType`, named `typeName` in the
// error), widened to `To`: geometry (Int32Array → int64) and hyper-parameters (Float64Array).
template <typename To, typename From>
std::vector<To> values(napi_env env, napi_value v, size_t n, const char *what, napi_typedarray_type arrayType, const char *typeName) {
  const std::string expected = std::string("an ") + typeName + " of " + std::to_string(n) + " values";
  size_t length = 0;
  const From *p = typedArray<From>(env, v, arrayType, &length, what, expected);
  if (length != n) throw JsError{std::string(what) + ": expected " + expected};
  return std::vector<To>(p, p + n);
}

std::vector<int64_t> ints(napi_env env, napi_value v, size_t n, const char *what) {
  return values<int64_t, int32_t>(env, v, n, what, napi_int32_array, "Int32Array");
}

std::vector<double> doubles(napi_env env, napi_value v, size_t n, const char *what) {
  return values<double, double>(env, v, n, what, napi_float64_array, "Float64Array");
}

// A count argument: a positive integer of at most `most`, else "<what>: expected a positive integer".
int64_t positiveInteger(napi_env env, napi_value v, const char *what, int64_t most = INT64_MAX) {
  int64_t n = 0;
  if (napi_get_value_int64(env, v, &n) != napi_ok || n < 1 || n > most) throw JsError{std::string(what) + ": expected a positive integer"};
  return n;
}

// A boolean argument.
bool boolean(napi_env env, napi_value v, const char *what) {
  bool b = false;
  if (napi_get_value_bool(env, v, &b) != napi_ok) throw JsError{std::string(what) + ": expected a boolean"};
  return b;
}

Geometry geometry(napi_env env, napi_value v) {
  auto p = ints(env, v, 15, "geometry");
  for (int i = 0; i < 13; i++)
    if (p[i] < 1) throw JsError{"geometry: sizes, strides and dilations must be positive"};
  return Geometry{p[0], p[1], p[2], p[3], p[4], p[5], p[6], p[7], p[8], p[9], p[10], p[11], p[12], p[13], p[14]};
}

// The cached primitive for `key`, made by `make()` the first time. Callers hold cacheLock.
template <typename T, typename Make>
T &cached(std::unordered_map<std::string, std::unique_ptr<T>> &cache, const std::string &key, Make make) {
  auto &slot = cache[key];
  if (!slot) slot = std::make_unique<T>(make());
  return *slot;
}

std::vector<napi_value> args(napi_env env, napi_callback_info info, size_t want) {
  std::vector<napi_value> argv(want);
  size_t argc = want;
  NAPI_OK(napi_get_cb_info(env, info, &argc, argv.data(), nullptr, nullptr));
  if (argc < want) throw JsError{"expected " + std::to_string(want) + " arguments"};
  return argv;
}

bool isNullish(napi_env env, napi_value v) {
  napi_valuetype t;
  NAPI_OK(napi_typeof(env, v, &t));
  return t == napi_null || t == napi_undefined;
}

template <typename F>
napi_value guarded(napi_env env, F &&body) {
  try {
    return body();
  } catch (const JsError &e) {
    napi_throw_error(env, "E_KILN_DNNL", e.message.c_str());
  } catch (const dnnl::error &e) {
    napi_throw_error(env, "E_KILN_DNNL", (std::string("oneDNN: ") + e.what()).c_str());
  } catch (const std::exception &e) {
    napi_throw_error(env, "E_KILN_DNNL", e.what());
  }
  return nullptr;
}

napi_value undefinedValue(napi_env env) {
  napi_value u;
  napi_get_undefined(env, &u);
  return u;
}

// Scratch for filters in the primitive's preferred layout; reused across calls.
AlignedScratch filterScratch;

float *filterFor(FilterIn &f, float *hwio, const Geometry &g) {
  if (!f.needsReorder) return hwio;
  float *want = filterScratch.get(f.want.get_size() / sizeof(float));
  memory src(plain(g.wei(), tag::hwio), cpu(), hwio);
  memory dst(f.want, cpu(), want);
  f.toWant->execute(strm(), src, dst);
  return want;
}

// The filter gradient in the primitive's layout, before its reorder to HWIO; kept between calls
// (a 512x512 3x3 filter is 9 MiB, which a fresh buffer per call would map and fault in each time).
AlignedScratch filterGradientScratch;

// The bias of a convolution, copied to aligned memory (its CO floats cost nothing to copy) for the
// kernels that load it with aligned instructions.
AlignedScratch biasScratch;

// The instruction set of Kiln's own loops (kiln_winograd.h, kiln_small_conv.h, each compiled for
// the three): the one matching the level oneDNN dispatches to (which ONEDNN_MAX_CPU_ISA caps), so a
// capped run is capped throughout, and never above what the CPU has.
enum class OwnIsa { avx512, avx2, baseline };
OwnIsa ownIsa() {
  static const OwnIsa chosen = [] {
    const int isa = static_cast<int>(dnnl::get_effective_cpu_isa());
    const auto has = [isa](dnnl::cpu_isa level) { return (isa & static_cast<int>(level)) == static_cast<int>(level); };
    if (has(dnnl::cpu_isa::avx512_core) && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl")) return OwnIsa::avx512;
    if (has(dnnl::cpu_isa::avx2) && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return OwnIsa::avx2;
    return OwnIsa::baseline;
  }();
  return chosen;
}

#include "kiln_winograd.h"

// The shape of a convolution for kiln_winograd.h.
winograd::Shape winogradShape(const Geometry &g) { return {g.N, g.IH, g.IW, g.CI, g.OH, g.OW, g.CO, g.PT, g.PL}; }

#include "kiln_small_conv.h"

// What ran through Kiln's own convolutions (kiln_winograd.h, kiln_small_conv.h), as
// convolutionImplementations() lines (callers hold cacheLock).
std::set<std::string> ownKernelRuns;

// Small convolutions and products run on one thread: below 20 M multiply-adds per call (LeNet-5's
// layers at batch 64; ResNet-18's smallest, the stem, has 29 M) waking the second OpenMP thread
// costs more than it saves. The primitive is created and run inside the scope, so oneDNN fixes its
// thread split at one for it; the pool's size is restored after the call.
constexpr double kOneThreadBelow = 20e6;
// Kiln's few-channel convolutions (kiln_small_conv.h) split images between threads with nothing to
// share but the end of the loop, so they take the second thread from 1 M multiply-adds: with
// LeNet-5's (7.5 M and 15 M) split, its step's main thread went from 3.2 to 2.8 ms of CPU.
constexpr double kOwnOneThreadBelow = 1e6;
struct ThreadScope {
  int previous;
  bool active;
  explicit ThreadScope(double multiplyAdds, double below = kOneThreadBelow) : previous(omp_get_max_threads()), active(multiplyAdds < below && previous > 1) {
    if (active) omp_set_num_threads(1);
  }
  ~ThreadScope() {
    if (active) omp_set_num_threads(previous);
  }
};
double convolutionWork(const Geometry &g) { return double(g.N) * g.OH * g.OW * g.CO * g.KH * g.KW * g.CI; }

// conv2dForward(geometry, x, w, bias | null, y, relu)
napi_value Conv2dForward(napi_env env, napi_callback_info info) {
  return guarded(env, [&] {
    auto a = args(env, info, 6);
    Geometry g = geometry(env, a[0]);
    float *x = floats(env, a[1], g.srcSize(), "x");
    float *w = floats(env, a[2], g.weiSize(), "filter");
    float *b = isNullish(env, a[3]) ? nullptr : floats(env, a[3], g.CO, "bias");
    float *y = floats(env, a[4], g.dstSize(), "y");
    const bool relu = boolean(env, a[5], "relu");
    std::lock_guard<std::mutex> lock(cacheLock);
    ThreadScope threads(convolutionWork(g), smallconv::forForward(g) ? kOwnOneThreadBelow : kOneThreadBelow);
    std::string key = g.key() + (b ? "b" : "") + (relu ? "r" : "");
    if (ownWinograd(g)) {
      ownKernelRuns.insert("forward " + key + ": kiln_winograd_4x3");
      winograd::forward(winogradShape(g), x, w, b, relu, y);
      return undefinedValue(env);
    }
    if (smallconv::forForward(g)) {
      ownKernelRuns.insert("forward " + key + ": kiln_small_direct");
      smallconv::forward(g, x, w, b, relu, y);
      return undefinedValue(env);
    }
    Forward *slot = &cached(forwards, key, [&] { return Forward(g, b != nullptr, relu); });
    float *wIn = filterFor(slot->filter, w, g);
    memory xm = slot->x.bind(x), ym = slot->y.bind(y);
    slot->x.toPrimitive(x, xm);
    std::unordered_map<int, memory> io{{DNNL_ARG_SRC, xm}, {DNNL_ARG_WEIGHTS, memory(slot->filter.want, cpu(), wIn)}, {DNNL_ARG_DST, ym}};
    if (b) {
      float *aligned = biasScratch.get(g.CO);
      std::memcpy(aligned, b, g.CO * sizeof(float));
      io.emplace(DNNL_ARG_BIAS, memory(plain({g.CO}, tag::x), cpu(), aligned));
    }
    slot->prim.execute(strm(), io);
    slot->y.fromPrimitive(ym, y);
    strm().wait();
    return undefinedValue(env);
  });
}

// conv2dBackwardData(geometry, dy, w, dx)
napi_value Conv2dBackwardData(napi_env env, napi_callback_info info) {
  return guarded(env, [&] {
    auto a = args(env, info, 4);
    Geometry g = geometry(env, a[0]);
    float *dy = floats(env, a[1], g.dstSize(), "dy");
    float *w = floats(env, a[2], g.weiSize(), "filter");
    float *dx = floats(env, a[3], g.srcSize(), "dx");
    std::lock_guard<std::mutex> lock(cacheLock);
    ThreadScope threads(convolutionWork(g), smallconv::forInputGradient(g) ? kOwnOneThreadBelow : kOneThreadBelow);
    if (ownWinograd(g)) {
      ownKernelRuns.insert("backward_data " + g.key() + ": kiln_winograd_4x3");
      winograd::backwardData(winogradShape(g), dy, w, dx);
      return undefinedValue(env);
    }
    if (smallconv::forInputGradient(g)) {
      ownKernelRuns.insert("backward_data " + g.key() + ": kiln_small_direct");
      smallconv::backwardData(g, dy, w, dx);
      return undefinedValue(env);
    }
    BackwardData *slot = &cached(backwardDatas, g.key(), [&] { return BackwardData::make(g); });
    float *wIn = filterFor(slot->filter, w, g);
    memory dym = slot->dy.bind(dy), dxm = slot->dx.bind(dx);
    slot->dy.toPrimitive(dy, dym);
    slot->prim.execute(strm(), {{DNNL_ARG_DIFF_DST, dym}, {DNNL_ARG_WEIGHTS, memory(slot->filter.want, cpu(), wIn)}, {DNNL_ARG_DIFF_SRC, dxm}});
    slot->dx.fromPrimitive(dxm, dx);
    strm().wait();
    return undefinedValue(env);
  });
}

// conv2dBackwardFilter(geometry, x, dy, dw)
napi_value Conv2dBackwardFilter(napi_env env, napi_callback_info info) {
  return guarded(env, [&] {
    auto a = args(env, info, 4);
    Geometry g = geometry(env, a[0]);
    float *x = floats(env, a[1], g.srcSize(), "x");
    float *dy = floats(env, a[2], g.dstSize(), "dy");
    float *dw = floats(env, a[3], g.weiSize(), "dw");
    std::lock_guard<std::mutex> lock(cacheLock);
    const bool own = smallconv::forFilterGradient(g);
    ThreadScope threads(convolutionWork(g), own ? kOwnOneThreadBelow : kOneThreadBelow);
    if (ownWinograd(g)) {
      ownKernelRuns.insert("backward_weights " + g.key() + ": kiln_winograd_4x3");
      winograd::backwardFilter(winogradShape(g), x, dy, dw);
      return undefinedValue(env);
    }
    if (own) {
      ownKernelRuns.insert("backward_weights " + g.key() + ": kiln_small_direct");
      smallconv::backwardFilter(g, x, dy, dw);
      return undefinedValue(env);
    }
    BackwardWeights *slot = &cached(backwardWeights, g.key(), [&] { return BackwardWeights::make(g); });
    float *out = slot->toHwio ? filterGradientScratch.get(slot->got.get_size() / sizeof(float)) : dw;
    memory xm = slot->x.bind(x), dym = slot->dy.bind(dy);
    slot->x.toPrimitive(x, xm);
    slot->dy.toPrimitive(dy, dym);
    slot->prim.execute(strm(), {{DNNL_ARG_SRC, xm}, {DNNL_ARG_DIFF_DST, dym}, {DNNL_ARG_DIFF_WEIGHTS, memory(slot->got, cpu(), out)}});
    if (slot->toHwio) {
      memory from(slot->got, cpu(), out);
      memory to(plain(g.wei(), tag::hwio), cpu(), dw);
      slot->toHwio->execute(strm(), from, to);
    }
    strm().wait();
    return undefinedValue(env);
  });
}

// maxPoolBackward(geometry, x, dy, dx)
napi_value MaxPoolBackwardJs(napi_env env, napi_callback_info info) {
  return guarded(env, [&] {
    auto a = args(env, info, 4);
    auto p = ints(env, a[0], 12, "geometry");
    PoolGeometry g{p[0], p[1], p[2], p[3], p[4], p[5], p[6], p[7], p[8], p[9], p[10], p[11]};
    for (int i = 0; i < 10; i++)
      if (p[i] < 1) throw JsError{"geometry: sizes and strides must be positive"};
    float *x = floats(env, a[1], g.N * g.IH * g.IW * g.C, "x");
    float *dy = floats(env, a[2], g.N * g.OH * g.OW * g.C, "dy");
    float *dx = floats(env, a[3], g.N * g.IH * g.IW * g.C, "dx");
    std::lock_guard<std::mutex> lock(cacheLock);
    MaxPoolBackward *slot = &cached(maxPoolBackwards, g.key(), [&] { return MaxPoolBackward::make(g); });
    // The recomputed output and workspace go to scratch kept between calls (they only grow).
    static std::vector<float> y;
    static std::vector<uint8_t> ws;
    y.resize(std::max<size_t>(y.size(), g.N * g.OH * g.OW * g.C));
    ws.resize(std::max<size_t>(ws.size(), slot->workspace.get_size()));
    memory wsMem(slot->workspace, cpu(), ws.data());
    slot->fwd.execute(strm(), {{DNNL_ARG_SRC, memory(plain(g.src(), tag::nhwc), cpu(), x)},
                               {DNNL_ARG_DST, memory(plain(g.dst(), tag::nhwc), cpu(), y.data())},
                               {DNNL_ARG_WORKSPACE, wsMem}});
    slot->bwd.execute(strm(), {{DNNL_ARG_DIFF_DST, memory(plain(g.dst(), tag::nhwc), cpu(), dy)},
                               {DNNL_ARG_DIFF_SRC, memory(plain(g.src(), tag::nhwc), cpu(), dx)},
                               {DNNL_ARG_WORKSPACE, wsMem}});
    strm().wait();
    return undefinedValue(env);
  });
}

// ---- max pooling that keeps its argmax (@kiln/core's MAX_POOL_ARGMAX_KERNEL) -------------------
// Plain loops, the same as src/kernels/max-pool-argmax.ts's (which runs without the addon), so both
// give the same y and argmax: the first maximum in row-major window order, compared with `>`.
// Images are independent, so large batches split between threads by image.

int32_t *int32s(napi_env env, napi_value v, size_t need, const char *what) {
  size_t length = 0;
  int32_t *data = typedArray<int32_t>(env, v, napi_int32_array, &length, what, "an Int32Array");
  if (length != need) throw JsError{std::string(what) + ": expected " + std::to_string(need) + " ints, got " + std::to_string(length)};
  return data;
}

// a / b rounded down (b > 0); C++'s division rounds toward zero.
inline int64_t floorDiv(int64_t a, int64_t b) { return a >= 0 ? a / b : -((-a + b - 1) / b); }

// One image, a row of output pixels at a time. The row's running maxima and indices start at -inf
// and the first cell of each window, then take every window cell in row-major order (kh, then kw)
// as one pass over the row per cell: consecutive updates are to different pixels, so they overlap
// in the CPU (pixel by pixel through memory, each update waited for the previous one: 3x slower).
// `kC` > 0 is the channel count known at compile time, so that the loop over a few channels is
// unrolled; 0 means `g.C`.
template <int kC>
void maxPoolArgmaxImage(const PoolGeometry &g, const float *x, float *y, int32_t *argmax) {
  const int64_t C = kC > 0 ? kC : g.C;
  for (int64_t oh = 0; oh < g.OH; oh++) {
    const int64_t ih0 = oh * g.SH - g.PT, ihLo = std::max<int64_t>(0, ih0), ihHi = std::min(g.IH, ih0 + g.KH);
    float *yr = y + oh * g.OW * C;
    int32_t *ar = argmax + oh * g.OW * C;
    for (int64_t ow = 0; ow < g.OW; ow++) {
      const int32_t first = int32_t((ihLo * g.IW + std::max<int64_t>(0, ow * g.SW - g.PL)) * C);
      for (int64_t c = 0; c < C; c++) {
        yr[ow * C + c] = -INFINITY;
        ar[ow * C + c] = first + int32_t(c);
      }
    }
    for (int64_t ih = ihLo; ih < ihHi; ih++) {
      for (int64_t kw = 0; kw < g.KW; kw++) {
        // The pixels whose window has column ow·SW − PL + kw inside the input.
        const int64_t owLo = std::max<int64_t>(0, -floorDiv(kw - g.PL, g.SW));
        const int64_t owHi = std::min(g.OW, floorDiv(g.IW - 1 + g.PL - kw, g.SW) + 1);
        for (int64_t ow = owLo; ow < owHi; ow++) {
          const int32_t at = int32_t((ih * g.IW + ow * g.SW - g.PL + kw) * C);
          const float *xi = x + at;
          float *best = yr + ow * C;
          int32_t *where = ar + ow * C;
          // Masks, not branches: on activations the comparison goes either way at random.
#pragma omp simd
          for (int64_t c = 0; c < C; c++) {
            const float v = xi[c], b = best[c];
            const int32_t more = -int32_t(v > b);
            best[c] = b < v ? v : b;
            where[c] = (where[c] & ~more) | ((at + int32_t(c)) & more);
          }
        }
      }
    }
    // Nothing above -inf (NaN or -inf throughout): the first cell's value, so y is x at argmax.
    for (int64_t i = 0; i < g.OW * C; i++)
      if (!(yr[i] > -INFINITY)) yr[i] = x[ar[i]];
  }
}

#if defined(__SSE2__)
// 4 to 16 channels (LeNet-5's 6 and 16), pixel by pixel with each pixel's maxima and indices in
// kVec SSE registers across its window: 4 channels a vector, the last vector overlapping the one
// before when C is not a multiple of 4 (both compute the shared channels alike, so storing both
// is harmless). Row by row through memory, as above, a vector of 4 plus a scalar remainder of 2
// per cell cost 2.5x this on LeNet-5's first pool.
template <int kVec>
void maxPoolArgmaxImageSse(const PoolGeometry &g, const float *x, float *y, int32_t *argmax) {
  const int64_t C = g.C;
  int32_t off[kVec];
  for (int i = 0; i < kVec; i++) off[i] = int32_t(std::min<int64_t>(4 * i, C - 4));
  const __m128i lane = _mm_setr_epi32(0, 1, 2, 3);
  for (int64_t oh = 0; oh < g.OH; oh++) {
    const int64_t ih0 = oh * g.SH - g.PT, ihLo = std::max<int64_t>(0, ih0), ihHi = std::min(g.IH, ih0 + g.KH);
    for (int64_t ow = 0; ow < g.OW; ow++) {
      const int64_t iw0 = ow * g.SW - g.PL, iwLo = std::max<int64_t>(0, iw0), iwHi = std::min(g.IW, iw0 + g.KW);
      const int32_t first = int32_t((ihLo * g.IW + iwLo) * C);
      __m128 best[kVec];
      __m128i where[kVec];
#pragma GCC unroll 4
      for (int i = 0; i < kVec; i++) {
        best[i] = _mm_set1_ps(-INFINITY);
        where[i] = _mm_add_epi32(_mm_set1_epi32(first + off[i]), lane);
      }
      for (int64_t ih = ihLo; ih < ihHi; ih++) {
        for (int64_t iw = iwLo; iw < iwHi; iw++) {
          const int32_t at = int32_t((ih * g.IW + iw) * C);
#pragma GCC unroll 4
          for (int i = 0; i < kVec; i++) {
            const __m128 v = _mm_loadu_ps(x + at + off[i]);
            const __m128 more = _mm_cmpgt_ps(v, best[i]);  // false for NaN
            const __m128i mask = _mm_castps_si128(more);
            best[i] = _mm_or_ps(_mm_and_ps(more, v), _mm_andnot_ps(more, best[i]));
            where[i] = _mm_or_si128(_mm_and_si128(mask, _mm_add_epi32(_mm_set1_epi32(at + off[i]), lane)), _mm_andnot_si128(mask, where[i]));
          }
        }
      }
      float *yo = y + (oh * g.OW + ow) * C;
      int32_t *ao = argmax + (oh * g.OW + ow) * C;
#pragma GCC unroll 4
      for (int i = 0; i < kVec; i++) {
        _mm_storeu_ps(yo + off[i], best[i]);
        _mm_storeu_si128(reinterpret_cast<__m128i *>(ao + off[i]), where[i]);
      }
      // Nothing above -inf (NaN or -inf throughout): the first cell's value, so y is x at argmax.
      for (int64_t c = 0; c < C; c++)
        if (!(yo[c] > -INFINITY)) yo[c] = x[ao[c]];
    }
  }
}
#endif

PoolGeometry poolGeometry(napi_env env, napi_value v) {
  auto p = ints(env, v, 12, "geometry");
  for (int i = 0; i < 10; i++)
    if (p[i] < 1) throw JsError{"geometry: sizes and strides must be positive"};
  PoolGeometry g{p[0], p[1], p[2], p[3], p[4], p[5], p[6], p[7], p[8], p[9], p[10], p[11]};
  if (g.PT < 0 || g.PL < 0 || g.PT >= g.KH || g.PL >= g.KW || (g.OH - 1) * g.SH - g.PT >= g.IH || (g.OW - 1) * g.SW - g.PL >= g.IW)
    throw JsError{"geometry: every window must overlap the input"};
  return g;
}

// maxPoolArgmax(geometry, x, y, argmax); geometry [N, IH, IW, C, OH, OW, KH, KW, SH, SW, PT, PL]
napi_value MaxPoolArgmaxJs(napi_env env, napi_callback_info info) {
  return guarded(env, [&] {
    auto a = args(env, info, 4);
    PoolGeometry g = poolGeometry(env, a[0]);
    const int64_t in = g.IH * g.IW * g.C, out = g.OH * g.OW * g.C;
    const float *x = floats(env, a[1], g.N * in, "x");
    float *y = floats(env, a[2], g.N * out, "y");
    int32_t *argmax = int32s(env, a[3], g.N * out, "argmax");
    using Image = void (*)(const PoolGeometry &, const float *, float *, int32_t *);
    Image image = g.C == 1 ? maxPoolArgmaxImage<1> : g.C == 2 ? maxPoolArgmaxImage<2> : g.C == 3 ? maxPoolArgmaxImage<3> : maxPoolArgmaxImage<0>;
#if defined(__SSE2__)
    static constexpr Image sse[] = {maxPoolArgmaxImageSse<1>, maxPoolArgmaxImageSse<2>, maxPoolArgmaxImageSse<3>, maxPoolArgmaxImageSse<4>};
    if (g.C >= 4 && g.C <= 16) image = sse[(g.C + 3) / 4 - 1];
#endif
#pragma omp parallel for if (g.N * in >= kParallelFrom) schedule(static)
    for (int64_t n = 0; n < g.N; n++) image(g, x + n * in, y + n * out, argmax + n * out);
    return undefinedValue(env);
  });
}

// maxPoolArgmaxGrad(N, dy, argmax, dx): dx = 0, then each image's dy added at its argmax. An index
// outside its image fails the call (it can only come from elsewhere than maxPoolArgmax).
napi_value MaxPoolArgmaxGradJs(napi_env env, napi_callback_info info) {
  return guarded(env, [&] {
    auto a = args(env, info, 4);
    const int64_t N = positiveInteger(env, a[0], "N");
    const size_t outSize = floatsLength(env, a[1], "dy"), inSize = floatsLength(env, a[3], "dx");
    if (outSize % N != 0 || inSize % N != 0) throw JsError{"N: expected the batch size of dy and dx"};
    const float *dy = floats(env, a[1], outSize, "dy");
    const int32_t *argmax = int32s(env, a[2], outSize, "argmax");
    float *dx = floats(env, a[3], inSize, "dx");
    const int64_t in = int64_t(inSize) / N, out = int64_t(outSize) / N;
    bool outside = false;
#pragma omp parallel for if (int64_t(inSize) >= kParallelFrom) schedule(static) reduction(|| : outside)
    for (int64_t n = 0; n < N; n++) {
      float *d = dx + n * in;
      std::memset(d, 0, sizeof(float) * in);
      const float *g = dy + n * out;
      const int32_t *w = argmax + n * out;
      for (int64_t i = 0; i < out; i++) {
        const uint32_t k = uint32_t(w[i]);
        if (k >= uint64_t(in)) {
          outside = true;
          continue;
        }
        d[k] += g[i];
      }
    }
    if (outside) throw JsError{"argmax: an index outside its image"};
    return undefinedValue(env);
  });
}

// matMul(geometry, a, b, bias | null, c, relu): c = a·b (+ bias) (then ReLU), the bias and the
// ReLU applied by the primitive as it writes c (tfjs's _FusedMatMul, Kiln's dense layer).
dnnl::matmul makeMatMul(const MatMulGeometry &g, bool bias, bool relu) {
  dnnl::primitive_attr attr;
  if (relu) {
    dnnl::post_ops ops;
    ops.append_eltwise(1.f, algorithm::eltwise_relu, 0.f, 0.f);
    attr.set_post_ops(ops);
  }
  auto desc = bias ? dnnl::matmul::desc(g.a(), g.b(), g.bias(), g.c()) : dnnl::matmul::desc(g.a(), g.b(), g.c());
  return dnnl::matmul(dnnl::matmul::primitive_desc(desc, attr, cpu()));
}

napi_value MatMulJs(napi_env env, napi_callback_info info) {
  return guarded(env, [&] {
    auto a = args(env, info, 6);
    auto p = ints(env, a[0], 7, "geometry");
    MatMulGeometry g{p[0], p[1], p[2], p[3], p[4], p[5], p[6]};
    for (int i = 0; i < 5; i++)
      if (p[i] < 1) throw JsError{"geometry: sizes must be positive"};
    if (g.BA != g.BB && g.BA != 1 && g.BB != 1) throw JsError{"geometry: batches must match or be 1"};
    float *A = floats(env, a[1], g.BA * g.M * g.K, "a");
    float *B = floats(env, a[2], g.BB * g.K * g.N, "b");
    float *bias = isNullish(env, a[3]) ? nullptr : floats(env, a[3], g.N, "bias");
    float *C = floats(env, a[4], std::max(g.BA, g.BB) * g.M * g.N, "c");
    const bool relu = boolean(env, a[5], "relu");
    std::lock_guard<std::mutex> lock(cacheLock);
    ThreadScope threads(double(std::max(g.BA, g.BB)) * g.M * g.K * g.N);
    const std::string key = g.key() + (bias ? "b" : "") + (relu ? "r" : "");
    dnnl::matmul *slot = &cached(matmuls, key, [&] { return makeMatMul(g, bias != nullptr, relu); });
    std::unordered_map<int, memory> io{{DNNL_ARG_SRC, memory(g.a(), cpu(), A)}, {DNNL_ARG_WEIGHTS, memory(g.b(), cpu(), B)}, {DNNL_ARG_DST, memory(g.c(), cpu(), C)}};
    if (bias) io.emplace(DNNL_ARG_BIAS, memory(g.bias(), cpu(), bias));
    slot->execute(strm(), io);
    strm().wait();
    return undefinedValue(env);
  });
}

NormGeometry normGeometry(napi_env env, napi_value v) {
  auto p = ints(env, v, 4, "geometry");
  for (int64_t d : p)
    if (d < 1) throw JsError{"geometry: sizes must be positive"};
  return NormGeometry{p[0], p[1], p[2], p[3]};
}

float epsilonOf(napi_env env, napi_value v) {
  double eps = 0;
  NAPI_OK(napi_get_value_double(env, v, &eps));
  if (!(eps > 0)) throw JsError{"epsilon: expected a number > 0"};
  return static_cast<float>(eps);
}

// batchNormForward(geometry, eps, x, gamma, beta, y, mean, variance)
napi_value BatchNormForwardJs(napi_env env, napi_callback_info info) {
  return guarded(env, [&] {
    auto a = args(env, info, 8);
    NormGeometry g = normGeometry(env, a[0]);
    float eps = epsilonOf(env, a[1]);
    float *x = floats(env, a[2], g.size(), "x");
    float *gamma = floats(env, a[3], g.C, "gamma");
    float *beta = floats(env, a[4], g.C, "beta");
    float *y = floats(env, a[5], g.size(), "y");
    float *mean = floats(env, a[6], g.C, "mean");
    float *variance = floats(env, a[7], g.C, "variance");
    std::lock_guard<std::mutex> lock(cacheLock);
    BatchNorm *bn = &cached(batchNorms, g.key(eps), [&] { return BatchNorm::make(g, eps); });
    bn->fwd.execute(strm(), {{DNNL_ARG_SRC, memory(g.data(), cpu(), x)},
                             {DNNL_ARG_SCALE, memory(g.channels(), cpu(), gamma)},
                             {DNNL_ARG_SHIFT, memory(g.channels(), cpu(), beta)},
                             {DNNL_ARG_DST, memory(g.data(), cpu(), y)},
                             {DNNL_ARG_MEAN, memory(g.channels(), cpu(), mean)},
                             {DNNL_ARG_VARIANCE, memory(g.channels(), cpu(), variance)}});
    strm().wait();
    return undefinedValue(env);
  });
}

// batchNormInference(geometry, eps, x, mean, variance, gamma, beta, y)
napi_value BatchNormInferenceJs(napi_env env, napi_callback_info info) {
  return guarded(env, [&] {
    auto a = args(env, info, 8);
    NormGeometry g = normGeometry(env, a[0]);
    float eps = epsilonOf(env, a[1]);
    float *x = floats(env, a[2], g.size(), "x");
    float *mean = floats(env, a[3], g.C, "mean");
    float *variance = floats(env, a[4], g.C, "variance");
    float *gamma = floats(env, a[5], g.C, "gamma");
    float *beta = floats(env, a[6], g.C, "beta");
    float *y = floats(env, a[7], g.size(), "y");
    std::lock_guard<std::mutex> lock(cacheLock);
    auto *bn = &cached(batchNormInferences, "i" + g.key(eps), [&] { return makeBatchNormInference(g, eps); });
    bn->execute(strm(), {{DNNL_ARG_SRC, memory(g.data(), cpu(), x)},
                         {DNNL_ARG_MEAN, memory(g.channels(), cpu(), mean)},
                         {DNNL_ARG_VARIANCE, memory(g.channels(), cpu(), variance)},
                         {DNNL_ARG_SCALE, memory(g.channels(), cpu(), gamma)},
                         {DNNL_ARG_SHIFT, memory(g.channels(), cpu(), beta)},
                         {DNNL_ARG_DST, memory(g.data(), cpu(), y)}});
    strm().wait();
    return undefinedValue(env);
  });
}

// batchNormBackward(geometry, eps, x, dy, mean, variance, gamma, dx, dgamma, dbeta)
napi_value BatchNormBackwardJs(napi_env env, napi_callback_info info) {
  return guarded(env, [&] {
    auto a = args(env, info, 10);
    NormGeometry g = normGeometry(env, a[0]);
    float eps = epsilonOf(env, a[1]);
    float *x = floats(env, a[2], g.size(), "x");
    float *dy = floats(env, a[3], g.size(), "dy");
    float *mean = floats(env, a[4], g.C, "mean");
    float *variance = floats(env, a[5], g.C, "variance");
    float *gamma = floats(env, a[6], g.C, "gamma");
    float *dx = floats(env, a[7], g.size(), "dx");
    float *dgamma = floats(env, a[8], g.C, "dgamma");
    float *dbeta = floats(env, a[9], g.C, "dbeta");
    std::lock_guard<std::mutex> lock(cacheLock);
    BatchNorm *bn = &cached(batchNorms, g.key(eps), [&] { return BatchNorm::make(g, eps); });
    // oneDNN 2.6's backward asks for the shift too, though the gradient does not depend on it.
    std::vector<float> shift(g.C, 0.f);
    bn->bwd.execute(strm(), {{DNNL_ARG_SRC, memory(g.data(), cpu(), x)},
                             {DNNL_ARG_SHIFT, memory(g.channels(), cpu(), shift.data())},
                             {DNNL_ARG_DIFF_DST, memory(g.data(), cpu(), dy)},
                             {DNNL_ARG_MEAN, memory(g.channels(), cpu(), mean)},
                             {DNNL_ARG_VARIANCE, memory(g.channels(), cpu(), variance)},
                             {DNNL_ARG_SCALE, memory(g.channels(), cpu(), gamma)},
                             {DNNL_ARG_DIFF_SRC, memory(g.data(), cpu(), dx)},
                             {DNNL_ARG_DIFF_SCALE, memory(g.channels(), cpu(), dgamma)},
                             {DNNL_ARG_DIFF_SHIFT, memory(g.channels(), cpu(), dbeta)}});
    strm().wait();
    return undefinedValue(env);
  });
}

// ---- element-wise loops ----------------------------------------------------------------------------
// Written in float32, one operation at a time in the order @kiln/optim's composite updates apply
// them (each tfjs op rounds to float32, and so does each line here; the build contracts nothing
// into FMAs), so the fused update gives the composite's numbers. Large tensors are split between
// oneDNN's OpenMP threads; each element is independent, so the result does not depend on the split.
// The loops say `if (parallel : …)`: a bare `if` clause on `parallel for simd` turns off the simd
// part with the threads (OpenMP 5), which left every update under kParallelFrom elements scalar —
// all of LeNet-5's: Adam took 0.42 ms a step instead of 0.12.

// One Adam update of n elements. The weight-decay mode and AMSGrad are template arguments, so each
// variant's loop has no branch in it and vectorises (with a branch per element and the pointer
// tests it did not, and cost ~3.5 ns per element: 0.2 ms a step for LeNet-5's 61,706 parameters).
// Vector and scalar float operations round alike and nothing is contracted, so the results are
// the same either way.
template <int kMode, bool kAms>
__attribute__((target_clones("avx2", "default"))) void adamLoop(int64_t n, const float *p, const float *g, const float *m, const float *v, const float *vMax, float *pOut, float *mOut, float *vOut, float *vMaxOut,
              const float step, const float b1, const float omb1, const float b2, const float omb2, const float sqrtBc2, const float eps, const float decay) {
#pragma omp parallel for simd if (parallel : n >= kParallelFrom) schedule(static)
  for (int64_t i = 0; i < n; i++) {
    float pi = p[i], gi = g[i];
    if constexpr (kMode == 1) gi = gi + pi * decay;
    if constexpr (kMode == 2) pi = pi * decay;
    const float mi = m[i] * b1 + gi * omb1;
    const float vi = v[i] * b2 + (gi * gi) * omb2;
    float vHat = vi;
    if constexpr (kAms) {
      vHat = std::max(vMax[i], vi);
      vMaxOut[i] = vHat;
    }
    const float denom = std::sqrt(vHat) / sqrtBc2 + eps;
    pOut[i] = pi - (mi / denom) * step;
    mOut[i] = mi;
    vOut[i] = vi;
  }
}

// adamUpdate(hyper, p, g, m, v, vMax | null, pOut, mOut, vOut, vMaxOut | null)
// hyper (Float64Array): [lr / (1 − β₁ᵗ), β₁, 1 − β₁, β₂, 1 − β₂, √(1 − β₂ᵗ), ε, decay, mode]
// mode 0: no weight decay; 1: L2 (g + decay·p); 2: decoupled (p·decay first, decay = 1 − η·λ).
napi_value AdamUpdate(napi_env env, napi_callback_info info) {
  return guarded(env, [&] {
    auto a = args(env, info, 10);
    auto h = doubles(env, a[0], 9, "hyper");
    size_t n = floatsLength(env, a[1], "param");
    const float *p = floats(env, a[1], n, "param");
    const float *g = floats(env, a[2], n, "grad");
    const float *m = floats(env, a[3], n, "expAvg");
    const float *v = floats(env, a[4], n, "expAvgSq");
    bool ams = !isNullish(env, a[5]);
    const float *vMax = ams ? floats(env, a[5], n, "maxExpAvgSq") : nullptr;
    float *pOut = floats(env, a[6], n, "paramOut");
    float *mOut = floats(env, a[7], n, "expAvgOut");
    float *vOut = floats(env, a[8], n, "expAvgSqOut");
    float *vMaxOut = ams ? floats(env, a[9], n, "maxExpAvgSqOut") : nullptr;
    const int mode = int(h[8]);
    if (mode < 0 || mode > 2) throw JsError{"hyper: mode must be 0, 1 or 2"};
    using Loop = decltype(&adamLoop<0, false>);
    static constexpr Loop loops[3][2] = {{adamLoop<0, false>, adamLoop<0, true>}, {adamLoop<1, false>, adamLoop<1, true>}, {adamLoop<2, false>, adamLoop<2, true>}};
    loops[mode][ams](int64_t(n), p, g, m, v, vMax, pOut, mOut, vOut, vMaxOut, float(h[0]), float(h[1]), float(h[2]), float(h[3]), float(h[4]), float(h[5]), float(h[6]), float(h[7]));
    return undefinedValue(env);
  });
}

// sgdUpdate(hyper, p, g, buf | null, pOut, bufOut | null)
// hyper (Float64Array): [lr, weightDecay, momentum, 1 − dampening, nesterov, first step]
napi_value SgdUpdate(napi_env env, napi_callback_info info) {
  return guarded(env, [&] {
    auto a = args(env, info, 6);
    auto h = doubles(env, a[0], 6, "hyper");
    size_t n = floatsLength(env, a[1], "param");
    const float *p = floats(env, a[1], n, "param");
    const float *g = floats(env, a[2], n, "grad");
    bool withBuffer = !isNullish(env, a[3]);
    const float *b = withBuffer ? floats(env, a[3], n, "momentumBuffer") : nullptr;
    float *pOut = floats(env, a[4], n, "paramOut");
    float *bOut = withBuffer ? floats(env, a[5], n, "momentumBufferOut") : nullptr;
    const float lr = float(h[0]), wd = float(h[1]), mu = float(h[2]), omd = float(h[3]);
    const bool nesterov = h[4] != 0, first = h[5] != 0;
#pragma omp parallel for simd if (parallel : int64_t(n) >= kParallelFrom) schedule(static)
    for (int64_t i = 0; i < int64_t(n); i++) {
      const float pi = p[i];
      float gi = g[i];
      if (wd != 0.f) gi = gi + pi * wd;
      if (b) {
        const float bi = first ? gi : b[i] * mu + gi * omd;
        bOut[i] = bi;
        gi = nesterov ? gi + bi * mu : bi;
      }
      pOut[i] = pi - gi * lr;
    }
    return undefinedValue(env);
  });
}

// out[c] = Σ_r x[r·C + c] (÷ rows when mean) for a [rows, C] row-major x, each column accumulated in
// double precision in row order — the order the JavaScript sum over leading axes uses, so the
// native and JavaScript kernels agree. Column blocks go to separate threads when the work is large;
// each column's sum keeps its row order whatever the split, so the result does not depend on it.
// A few columns (LeNet-5's 6 and 16 channels) go through sumRowsFew instead: the same sums.
template <int kC>
void sumRowsFew(const float *x, int64_t rows, float *out, bool mean) {
  // kC accumulators in registers, one dependency chain per column that the CPU runs side by side;
  // the general loop below costs a loop set-up per row, 4x slower on [50176, 6].
  double acc[kC] = {0};
  for (int64_t r = 0; r < rows; r++) {
#pragma GCC unroll 16
    for (int c = 0; c < kC; c++) acc[c] += x[r * kC + c];
  }
  for (int c = 0; c < kC; c++) out[c] = float(mean ? acc[c] / double(rows) : acc[c]);
}

void sumRows(const float *x, int64_t rows, int64_t C, float *out, bool mean) {
  using Few = void (*)(const float *, int64_t, float *, bool);
  static constexpr Few few[] = {nullptr, sumRowsFew<1>, sumRowsFew<2>, sumRowsFew<3>, sumRowsFew<4>, sumRowsFew<5>, sumRowsFew<6>, sumRowsFew<7>, sumRowsFew<8>,
                                sumRowsFew<9>, sumRowsFew<10>, sumRowsFew<11>, sumRowsFew<12>, sumRowsFew<13>, sumRowsFew<14>, sumRowsFew<15>, sumRowsFew<16>};
  if (C <= 16) return few[C](x, rows, out, mean);
  const int64_t block = 256;
#pragma omp parallel for if (rows * C >= kParallelFrom && C >= 2 * block) schedule(static)
  for (int64_t c0 = 0; c0 < C; c0 += block) {
    const int64_t c1 = std::min(C, c0 + block);
    double acc[block] = {0};
    for (int64_t r = 0; r < rows; r++) {
      const float *row = x + r * C;
#pragma omp simd
      for (int64_t c = c0; c < c1; c++) acc[c - c0] += row[c];
    }
    for (int64_t c = c0; c < c1; c++) out[c] = float(mean ? acc[c - c0] / double(rows) : acc[c - c0]);
  }
}

// biasReluGrad(dy, y, dz, db): the gradients of y = relu(z + b) — dz = dy where y > 0, else 0, and
// db[c] = Σ_r dz[r·C + c] (C = db.length, summed by sumRows, as sumLeading sums) — in one call where
// tfjs runs four kernels (cast, step, multiply, sum).
napi_value BiasReluGrad(napi_env env, napi_callback_info info) {
  return guarded(env, [&] {
    auto a = args(env, info, 4);
    size_t n = floatsLength(env, a[0], "dy");
    const int64_t C = int64_t(floatsLength(env, a[3], "db"));
    if (C < 1 || int64_t(n) % C != 0) throw JsError{"db: expected the length of dy's last axis"};
    const float *dy = floats(env, a[0], n, "dy");
    const float *y = floats(env, a[1], n, "y");
    float *dz = floats(env, a[2], n, "dz");
    float *db = floats(env, a[3], C, "db");
    // Two passes over dz (the second reads it back from cache): fused into one, the loop-carried
    // sums kept the select from vectorising and measured four times slower.
    // dy is read whatever the sign, so the select compiles to a blend: a branch on the sign of
    // activations mispredicts half the time (measured 20x slower on LeNet-5's first layer).
#pragma omp parallel for simd if (parallel : int64_t(n) >= kParallelFrom) schedule(static)
    for (int64_t i = 0; i < int64_t(n); i++) {
      const float g = dy[i];
      dz[i] = y[i] > 0.f ? g : 0.f;
    }
    sumRows(dz, int64_t(n) / C, C, db, false);
    return undefinedValue(env);
  });
}

// sumLeading(rows, x, out, mean): out[c] = Σ_r x[r·C + c] (÷ rows when mean), C = out.length (sumRows).
napi_value SumLeading(napi_env env, napi_callback_info info) {
  return guarded(env, [&] {
    auto a = args(env, info, 4);
    const int64_t rows = positiveInteger(env, a[0], "rows");
    size_t inner = floatsLength(env, a[2], "out");
    const float *x = floats(env, a[1], rows * inner, "x");
    float *out = floats(env, a[2], inner, "out");
    sumRows(x, rows, int64_t(inner), out, boolean(env, a[3], "mean"));
    return undefinedValue(env);
  });
}

// setNumThreads(n): the size of oneDNN's OpenMP pool.
napi_value SetNumThreads(napi_env env, napi_callback_info info) {
  return guarded(env, [&] {
    auto a = args(env, info, 1);
    omp_set_num_threads(int(positiveInteger(env, a[0], "setNumThreads", INT32_MAX)));
    return undefinedValue(env);
  });
}

// convolutionImplementations(): one string per cached convolution primitive,
// "<forward|backward_data|backward_weights> <geometry key>: <oneDNN implementation>", so that tests
// and the benchmark tools can tell which algorithm (direct, Winograd) and kernels ran.
napi_value ConvolutionImplementations(napi_env env, napi_callback_info) {
  return guarded(env, [&] {
    std::vector<std::string> lines;
    {
      std::lock_guard<std::mutex> lock(cacheLock);
      for (const auto &[key, p] : forwards) lines.push_back("forward " + key + ": " + p->impl);
      for (const auto &[key, p] : backwardDatas) lines.push_back("backward_data " + key + ": " + p->impl);
      for (const auto &[key, p] : backwardWeights) lines.push_back("backward_weights " + key + ": " + p->impl);
      lines.insert(lines.end(), ownKernelRuns.begin(), ownKernelRuns.end());
    }
    napi_value out;
    NAPI_OK(napi_create_array_with_length(env, lines.size(), &out));
    for (size_t i = 0; i < lines.size(); i++) {
      napi_value s;
      NAPI_OK(napi_create_string_utf8(env, lines[i].c_str(), NAPI_AUTO_LENGTH, &s));
      NAPI_OK(napi_set_element(env, out, uint32_t(i), s));
    }
    return out;
  });
}

// info(): { version, cpuIsa, maxThreads }
napi_value Info(napi_env env, napi_callback_info) {
  return guarded(env, [&] {
    const dnnl_version_t *v = dnnl_version();
    std::string version = std::to_string(v->major) + "." + std::to_string(v->minor) + "." + std::to_string(v->patch);
    const char *isa = "unknown";
    switch (dnnl::get_effective_cpu_isa()) {
      case dnnl::cpu_isa::sse41: isa = "sse4.1"; break;
      case dnnl::cpu_isa::avx: isa = "avx"; break;
      case dnnl::cpu_isa::avx2: isa = "avx2"; break;
      case dnnl::cpu_isa::avx512_core: isa = "avx512"; break;
      case dnnl::cpu_isa::avx512_core_vnni: isa = "avx512-vnni"; break;
      case dnnl::cpu_isa::avx512_core_bf16: isa = "avx512-bf16"; break;
      case dnnl::cpu_isa::avx512_core_amx: isa = "avx512-amx"; break;
      default: break;
    }
    napi_value out, s, i, t;
    NAPI_OK(napi_create_object(env, &out));
    NAPI_OK(napi_create_string_utf8(env, version.c_str(), NAPI_AUTO_LENGTH, &s));
    NAPI_OK(napi_create_string_utf8(env, isa, NAPI_AUTO_LENGTH, &i));
    NAPI_OK(napi_create_int32(env, omp_get_max_threads(), &t));
    NAPI_OK(napi_set_named_property(env, out, "version", s));
    NAPI_OK(napi_set_named_property(env, out, "cpuIsa", i));
    NAPI_OK(napi_set_named_property(env, out, "maxThreads", t));
    return out;
  });
}

// glibc raises its mmap threshold to the largest mmap-backed block freed so far (up to 32 MiB), so
// after the first large tensors are freed, later multi-MiB blocks of other threads land in their
// arenas and stay there when freed: RSS of a long run steps up and never comes back
// (docs/reliability.md, the soak). A fixed threshold keeps every block of 128 KiB or more on mmap,
// returned to the system when freed. A user's own MALLOC_MMAP_THRESHOLD_ wins.
void fixMmapThreshold() {
#if defined(__GLIBC__)
  if (std::getenv("MALLOC_MMAP_THRESHOLD_") == nullptr && std::getenv("KILN_MALLOC_DEFAULTS") == nullptr) mallopt(M_MMAP_THRESHOLD, 128 * 1024);
#endif
}

napi_value Init(napi_env env, napi_value exports) {
  fixMmapThreshold();
  napi_property_descriptor props[] = {
      {"conv2dForward", nullptr, Conv2dForward, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"conv2dBackwardData", nullptr, Conv2dBackwardData, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"conv2dBackwardFilter", nullptr, Conv2dBackwardFilter, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"maxPoolBackward", nullptr, MaxPoolBackwardJs, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"maxPoolArgmax", nullptr, MaxPoolArgmaxJs, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"maxPoolArgmaxGrad", nullptr, MaxPoolArgmaxGradJs, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"matMul", nullptr, MatMulJs, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"batchNormForward", nullptr, BatchNormForwardJs, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"batchNormInference", nullptr, BatchNormInferenceJs, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"batchNormBackward", nullptr, BatchNormBackwardJs, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"adamUpdate", nullptr, AdamUpdate, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"sgdUpdate", nullptr, SgdUpdate, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"biasReluGrad", nullptr, BiasReluGrad, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"sumLeading", nullptr, SumLeading, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"setNumThreads", nullptr, SetNumThreads, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"info", nullptr, Info, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"convolutionImplementations", nullptr, ConvolutionImplementations, nullptr, nullptr, nullptr, napi_default, nullptr},
  };
  napi_define_properties(env, exports, sizeof(props) / sizeof(props[0]), props);
  return exports;
}

}  // namespace

NAPI_MODULE(NODE_GYP_MODULE_NAME, Init)
