// Kiln's own direct convolutions for layers with few channels, where oneDNN 2.6's kernels fill a
// 16-lane (AVX-512) register with 6 channels and leave the rest idle. LeNet-5's layers are the
// case that made them (1 -> 6 and 6 -> 16 channels, 5x5): oneDNN ran the first forward at ~13 G
// multiply-adds a second and the second's input gradient at ~21, a third of its rate on wider
// layers. Here the few (<= 8) channels sit in the lanes of one 8-float vector (all of an AVX2
// register, half of an AVX-512 one; the CPUs measured issue two such FMAs a cycle), and the other
// dimension the loops run over is taps or pixels:
//   forward:          y[pixel][co]  = Σ_taps x[pixel + tap][ci] · w[tap][ci][co], a block of a row's
//                     pixels at a time;
//   input gradient:   dx[pixel + tap][ci] += Σ_co dy[pixel][co] · w[tap][ci][co] (a scatter from each
//                     dy pixel, so padding costs nothing);
//   filter gradient:  dw[tap][ci][co] = Σ_pixels x[pixel + tap][ci] · dy[pixel][co].
// Which convolutions they take is measured, not assumed (forForward() and the rest below). Any
// stride, dilation and padding. Images run in parallel on oneDNN's OpenMP pool (kiln_dnnl.cc's
// ThreadScope keeps calls under 1 M multiply-adds on one thread), the filter gradient summing each
// thread's share in thread order, so a given thread count always gives the same bits. Included by
// kiln_dnnl.cc inside its anonymous namespace; the loops (kiln_small_conv_kernels.inc) are compiled
// for AVX-512, AVX2 and plain x86-64, and ownIsa() picks one, as for kiln_winograd.h.

#pragma GCC push_options
#pragma GCC optimize("O3")

#pragma GCC push_options
#pragma GCC target("avx512f,avx512dq,avx512bw,avx512vl,avx2,fma")
namespace smallconv::avx512 {
#define KILN_SMALL_FMA(a, b, c) __builtin_ia32_vfmaddps256((a), (b), (c))
#define KILN_SMALL_PIX 16
#include "kiln_small_conv_kernels.inc"
#undef KILN_SMALL_FMA
#undef KILN_SMALL_PIX
}  // namespace smallconv::avx512
#pragma GCC pop_options
#pragma GCC push_options
#pragma GCC target("avx2,fma")
namespace smallconv::avx2 {
#define KILN_SMALL_FMA(a, b, c) __builtin_ia32_vfmaddps256((a), (b), (c))
#define KILN_SMALL_PIX 12
#include "kiln_small_conv_kernels.inc"
#undef KILN_SMALL_FMA
#undef KILN_SMALL_PIX
}  // namespace smallconv::avx2
#pragma GCC pop_options
namespace smallconv::baseline {
#define KILN_SMALL_FMA(a, b, c) ((a) * (b) + (c))
#define KILN_SMALL_PIX 6
#include "kiln_small_conv_kernels.inc"
#undef KILN_SMALL_FMA
#undef KILN_SMALL_PIX
}  // namespace smallconv::baseline

namespace smallconv {

using V8 = baseline::V8;
constexpr int64_t kLanes = 8;

// Which passes of a convolution these kernels run, from LeNet-5's layers and a sweep of other few-
// channel shapes against oneDNN 2.6 (docs/benchmarks.md, "Round 17"; 1 thread): they win where
// oneDNN leaves most of its vector lanes idle (16 lanes with AVX-512, 8 below) and lose where its
// blocking does better: more channels, 1x1 filters (matrix products to oneDNN), and for the filter
// gradient more than a few input channels (their transposition into planes costs more than the
// lanes save) or, below AVX-512, a full 8-lane vector of output channels:
//   forward:          <= 8 output channels, a filter wider than 1x1 (LeNet-5's first layer 0.69 ->
//                     0.49 ms with AVX-512, 0.58 -> 0.44 with AVX2; 3x3 32 -> 8 at 28x28 4.7 -> 3.4,
//                     4.8 -> 4.0; 1x1 192 -> 8 would be 7.0 -> 13.6);
//   input gradient:   <= 8 input and >= 16 output channels, wider than 1x1 (LeNet-5's second layer
//                     0.74 -> 0.57 ms, 0.60 -> 0.55; 3x3 8 -> 64 at 28x28 9.4 -> 7.2, 8.9 -> 5.9;
//                     3x3 16 -> 8 would be 1.0 -> 2.6);
//   filter gradient:  <= 8 output and <= 4 input channels with AVX-512 (LeNet-5's first layer 0.38 ->
//                     0.32 ms, 3x3 3 -> 8 at 32x32 0.59 -> 0.47), one input channel and <= 7 output
//                     channels below it (LeNet-5's 0.36 -> 0.31-0.35; 3x3 3 -> 8 would be 0.35 ->
//                     0.50), wider than 1x1.
// KILN_DNNL_SMALL=0 leaves every convolution to oneDNN.
bool off() {
  static const bool o = [] {
    const char *e = std::getenv("KILN_DNNL_SMALL");
    return e && e[0] == '0';
  }();
  return o;
}
bool forForward(const Geometry &g) { return !off() && g.CO <= kLanes && g.KH * g.KW > 1; }
bool forInputGradient(const Geometry &g) { return !off() && g.CI <= kLanes && g.CO >= 2 * kLanes && g.KH * g.KW > 1; }
bool forFilterGradient(const Geometry &g) {
  const bool lanesIdle = ownIsa() == OwnIsa::avx512 ? g.CO <= kLanes && g.CI <= 4 : g.CO < kLanes && g.CI == 1;
  return !off() && lanesIdle && g.KH * g.KW > 1;
}

// The loops of one instruction set.
struct Loops {
  void (*padPlanes)(const float *, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, float *);
  void (*packLanes)(const float *, int64_t, int64_t, V8 *);
  int64_t (*forwardWidth)(int64_t);
  void (*forwardImage)(const Geometry &, const float *, int64_t, int64_t, const V8 *, const V8 *, bool, float *);
  void (*backwardDataImage)(const Geometry &, const float *, const V8 *, int64_t, int64_t, V8 *, float *);
  void (*backwardFilterImage)(const Geometry &, const float *, int64_t, int64_t, const V8 *, V8 *);
};

#define KILN_SMALL_LOOPS(ns) \
  Loops { ns::padPlanes, ns::packLanes, ns::forwardWidth, ns::forwardImage, ns::backwardDataImage, ns::backwardFilterImage }

// The loops of ownIsa()'s instruction set.
const Loops &loops() {
  static const Loops chosen = ownIsa() == OwnIsa::avx512 ? KILN_SMALL_LOOPS(avx512) : ownIsa() == OwnIsa::avx2 ? KILN_SMALL_LOOPS(avx2) : KILN_SMALL_LOOPS(baseline);
  return chosen;
}

// Per-thread scratch (a padded image, a padded input gradient, dy in lanes), and the calls' own
// (filters and sums in lanes; callers hold cacheLock). 8-float vectors need 32-byte alignment,
// which std::vector<V8> does not give (the vector type's alignment is lost as a template argument).
thread_local AlignedScratch padScratch, gradientScratch, laneScratch;
AlignedScratch laneFilter, laneSums;

// `count` zeroed 8-float vectors from `scratch`.
V8 *zeroedLanes(AlignedScratch &scratch, size_t count) {
  V8 *v = reinterpret_cast<V8 *>(scratch.get(count * kLanes));
  std::memset(v, 0, count * sizeof(V8));
  return v;
}

// The padded input planes (one per channel) a forward pass or filter gradient reads: rows and
// columns enough for the taps of `outWidth` output pixels a row (the forward pass computes whole
// blocks of pixels, which may run past the output's width).
struct Plane {
  int64_t PH, PW;
  Plane(const Geometry &g, int64_t outWidth) : PH((g.OH - 1) * g.SH + (g.KH - 1) * g.DH + 1), PW((outWidth - 1) * g.SW + (g.KW - 1) * g.DW + 1) {}
  size_t floats(const Geometry &g) const { return size_t(PH * PW * g.CI); }
};

// y = conv(x, w) (+ bias, ReLU): x NHWC, w HWIO, y NHWC (forForward()).
void forward(const Geometry &g, const float *x, const float *w, const float *bias, bool relu, float *y) {
  const int64_t taps = g.KH * g.KW * g.CI;
  V8 *w8 = zeroedLanes(laneFilter, taps);
  for (int64_t t = 0; t < taps; t++)
    for (int64_t co = 0; co < g.CO; co++) w8[t][co] = w[t * g.CO + co];
  V8 b{};
  for (int64_t co = 0; co < g.CO && bias; co++) b[co] = bias[co];
  const Loops &l = loops();
  const Plane plane(g, l.forwardWidth(g.OW));
#pragma omp parallel for schedule(static)
  for (int64_t n = 0; n < g.N; n++) {
    float *pad = padScratch.get(plane.floats(g));
    l.padPlanes(x, n, g.IH, g.IW, g.CI, plane.PH, plane.PW, g.PT, g.PL, pad);
    l.forwardImage(g, pad, plane.PH, plane.PW, w8, &b, relu, y + n * g.OH * g.OW * g.CO);
  }
}

// dx = the input gradient, from dy NHWC and w HWIO (forInputGradient()).
void backwardData(const Geometry &g, const float *dy, const float *w, float *dx) {
  const int64_t taps = g.KH * g.KW;
  V8 *wt = zeroedLanes(laneFilter, taps * g.CO);
  for (int64_t t = 0; t < taps; t++)
    for (int64_t ci = 0; ci < g.CI; ci++)
      for (int64_t co = 0; co < g.CO; co++) wt[co * taps + t][ci] = w[(t * g.CI + ci) * g.CO + co];
  // The gradient of the padded input: every tap of every dy pixel lands inside it.
  const int64_t BH = std::max((g.OH - 1) * g.SH + (g.KH - 1) * g.DH + 1, g.PT + g.IH);
  const int64_t BW = std::max((g.OW - 1) * g.SW + (g.KW - 1) * g.DW + 1, g.PL + g.IW);
  const Loops &l = loops();
#pragma omp parallel for schedule(static)
  for (int64_t n = 0; n < g.N; n++) {
    V8 *buf = reinterpret_cast<V8 *>(gradientScratch.get(size_t(BH * BW * kLanes)));
    l.backwardDataImage(g, dy + n * g.OH * g.OW * g.CO, wt, BH, BW, buf, dx + n * g.IH * g.IW * g.CI);
  }
}

// dw = the filter gradient (HWIO), from x and dy NHWC (forFilterGradient()).
void backwardFilter(const Geometry &g, const float *x, const float *dy, float *dw) {
  const int64_t taps = g.KH * g.KW * g.CI, pixels = g.OH * g.OW;
  const Plane plane(g, g.OW);
  const Loops &l = loops();
  const int threads = std::max(1, std::min<int>(omp_get_max_threads(), int(g.N)));
  V8 *sums = zeroedLanes(laneSums, size_t(threads) * taps);
#pragma omp parallel num_threads(threads)
  {
    const int me = omp_get_thread_num();
    V8 *mine = sums + size_t(me) * taps;
    float *pad = padScratch.get(plane.floats(g));
    V8 *dy8 = reinterpret_cast<V8 *>(laneScratch.get(size_t(pixels * kLanes)));
#pragma omp for schedule(static)
    for (int64_t n = 0; n < g.N; n++) {
      l.padPlanes(x, n, g.IH, g.IW, g.CI, plane.PH, plane.PW, g.PT, g.PL, pad);
      l.packLanes(dy + n * pixels * g.CO, pixels, g.CO, dy8);
      l.backwardFilterImage(g, pad, plane.PH, plane.PW, dy8, mine);
    }
  }
  // Each thread's share added in thread order: the same bits for the same thread count.
  for (int64_t t = 0; t < taps; t++) {
    V8 total = sums[t];
    for (int i = 1; i < threads; i++) total += sums[size_t(i) * taps + t];
    for (int64_t co = 0; co < g.CO; co++) dw[t * g.CO + co] = total[co];
  }
}

}  // namespace smallconv

#pragma GCC pop_options
