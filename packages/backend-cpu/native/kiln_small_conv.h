// Kiln's own direct convolutions for layers with few channels on one side, where oneDNN 2.6's
// kernels fill a 16-lane (AVX-512) register with 6 channels and leave the rest idle: the forward
// pass with <= 16 output channels, the input gradient with <= 16 input channels and the filter
// gradient with <= 8 output channels (<= 16 where the call splits over threads;
// forFilterGradient()). LeNet-5's layers are the case that made them (1 -> 6 and 6 -> 16 channels,
// 5x5): oneDNN ran the first forward at ~13 G multiply-adds a second and the second's input
// gradient at ~21, a third of its rate on wider layers. Here the few channels sit in the lanes of one
// or two 8-float vectors (all of an AVX2 register, half of an AVX-512 one; the CPUs measured issue
// two such FMAs a cycle), and the other dimension the loops run over is taps or pixels:
//   forward:          y[pixel][co]  = Σ_taps x[pixel + tap][ci] · w[tap][ci][co], a block of a row's
//                     pixels at a time;
//   input gradient:   dx[pixel + tap][ci] += Σ_co dy[pixel][co] · w[tap][ci][co] (a scatter from each
//                     dy pixel, so padding costs nothing);
//   filter gradient:  dw[tap][ci][co] = Σ_pixels x[pixel + tap][ci] · dy[pixel][co].
// Any stride, dilation and padding. Images run in parallel on oneDNN's OpenMP pool (kiln_dnnl.cc's
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
constexpr int64_t kMostChannels = 2 * kLanes;

// Whether these kernels run a convolution's forward pass / filter gradient (few output channels)
// and its input gradient (few input channels). KILN_DNNL_SMALL=0 leaves every convolution to oneDNN.
bool off() {
  static const bool o = [] {
    const char *e = std::getenv("KILN_DNNL_SMALL");
    return e && e[0] == '0';
  }();
  return o;
}
bool forOutput(const Geometry &g) { return !off() && g.CO <= kMostChannels; }
// The filter gradient: up to 8 output channels always; 9-16 only when the call splits over threads
// (`split`), because on one thread oneDNN's is faster there (LeNet-5's second layer, 16 channels:
// 0.32 ms against 0.41 with AVX-512, even with AVX2), while its small calls stay on one thread.
bool forFilterGradient(const Geometry &g, bool split) { return !off() && (g.CO <= kLanes || (g.CO <= kMostChannels && split)); }
bool forInputGradient(const Geometry &g) { return !off() && g.CI <= kMostChannels; }

// Vectors per pixel for `channels` channels.
int vectorsFor(int64_t channels) { return channels > kLanes ? 2 : 1; }

// The loops of one instruction set, for 1 and 2 vectors per pixel ([NV - 1]).
struct Loops {
  void (*padPlanes)(const float *, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, float *);
  void (*packLanes[2])(const float *, int64_t, int64_t, V8 *);
  int64_t (*forwardWidth[2])(int64_t);
  void (*forwardImage[2])(const Geometry &, const float *, int64_t, int64_t, const V8 *, const V8 *, bool, float *);
  void (*backwardDataImage[2])(const Geometry &, const float *, const V8 *, int64_t, int64_t, V8 *, float *);
  void (*backwardFilterImage[2])(const Geometry &, const float *, int64_t, int64_t, const V8 *, V8 *);
};

#define KILN_SMALL_LOOPS(ns)                                                                                     \
  Loops {                                                                                                        \
    ns::padPlanes, {ns::packLanes<1>, ns::packLanes<2>}, {ns::forwardWidth<1>, ns::forwardWidth<2>}, {ns::forwardImage<1>, ns::forwardImage<2>},   \
        {ns::backwardDataImage<1>, ns::backwardDataImage<2>}, {ns::backwardFilterImage<1>, ns::backwardFilterImage<2>} \
  }

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

// y = conv(x, w) (+ bias, ReLU) for CO <= 16: x NHWC, w HWIO, y NHWC.
void forward(const Geometry &g, const float *x, const float *w, const float *bias, bool relu, float *y) {
  const int nv = vectorsFor(g.CO);
  const int64_t taps = g.KH * g.KW * g.CI;
  float *w8 = reinterpret_cast<float *>(zeroedLanes(laneFilter, taps * nv));
  for (int64_t t = 0; t < taps; t++)
    for (int64_t co = 0; co < g.CO; co++) w8[t * nv * kLanes + co] = w[t * g.CO + co];
  V8 b[2] = {};
  for (int64_t co = 0; co < g.CO && bias; co++) b[co / kLanes][co % kLanes] = bias[co];
  const Loops &l = loops();
  const Plane plane(g, l.forwardWidth[nv - 1](g.OW));
#pragma omp parallel for schedule(static)
  for (int64_t n = 0; n < g.N; n++) {
    float *pad = padScratch.get(plane.floats(g));
    l.padPlanes(x, n, g.IH, g.IW, g.CI, plane.PH, plane.PW, g.PT, g.PL, pad);
    l.forwardImage[nv - 1](g, pad, plane.PH, plane.PW, reinterpret_cast<V8 *>(w8), b, relu, y + n * g.OH * g.OW * g.CO);
  }
}

// dx = the input gradient for CI <= 16, from dy NHWC and w HWIO.
void backwardData(const Geometry &g, const float *dy, const float *w, float *dx) {
  const int nv = vectorsFor(g.CI);
  const int64_t taps = g.KH * g.KW;
  float *wt = reinterpret_cast<float *>(zeroedLanes(laneFilter, taps * g.CO * nv));
  for (int64_t t = 0; t < taps; t++)
    for (int64_t ci = 0; ci < g.CI; ci++)
      for (int64_t co = 0; co < g.CO; co++) wt[(co * taps + t) * nv * kLanes + ci] = w[(t * g.CI + ci) * g.CO + co];
  // The gradient of the padded input: every tap of every dy pixel lands inside it.
  const int64_t BH = std::max((g.OH - 1) * g.SH + (g.KH - 1) * g.DH + 1, g.PT + g.IH);
  const int64_t BW = std::max((g.OW - 1) * g.SW + (g.KW - 1) * g.DW + 1, g.PL + g.IW);
  const Loops &l = loops();
#pragma omp parallel for schedule(static)
  for (int64_t n = 0; n < g.N; n++) {
    V8 *buf = reinterpret_cast<V8 *>(gradientScratch.get(size_t(BH * BW * nv * kLanes)));
    l.backwardDataImage[nv - 1](g, dy + n * g.OH * g.OW * g.CO, reinterpret_cast<V8 *>(wt), BH, BW, buf, dx + n * g.IH * g.IW * g.CI);
  }
}

// dw = the filter gradient (HWIO) for CO <= 16, from x and dy NHWC (see forFilterGradient()).
void backwardFilter(const Geometry &g, const float *x, const float *dy, float *dw) {
  const int nv = vectorsFor(g.CO);
  const int64_t taps = g.KH * g.KW * g.CI, pixels = g.OH * g.OW;
  const Plane plane(g, g.OW);
  const Loops &l = loops();
  const int threads = std::max(1, std::min<int>(omp_get_max_threads(), int(g.N)));
  V8 *sums = zeroedLanes(laneSums, size_t(threads) * taps * nv);
#pragma omp parallel num_threads(threads)
  {
    const int me = omp_get_thread_num();
    V8 *mine = sums + size_t(me) * taps * nv;
    float *pad = padScratch.get(plane.floats(g));
    V8 *dy8 = reinterpret_cast<V8 *>(laneScratch.get(size_t(pixels * nv * kLanes)));
#pragma omp for schedule(static)
    for (int64_t n = 0; n < g.N; n++) {
      l.padPlanes(x, n, g.IH, g.IW, g.CI, plane.PH, plane.PW, g.PT, g.PL, pad);
      l.packLanes[nv - 1](dy + n * pixels * g.CO, pixels, g.CO, dy8);
      l.backwardFilterImage[nv - 1](g, pad, plane.PH, plane.PW, dy8, mine);
    }
  }
  // Each thread's share added in thread order: the same bits for the same thread count.
  for (int64_t t = 0; t < taps * nv; t++) {
    V8 total = sums[t];
    for (int i = 1; i < threads; i++) total += sums[size_t(i) * taps * nv + t];
    const int64_t c0 = (t % nv) * kLanes;
    for (int64_t co = c0; co < std::min(g.CO, c0 + kLanes); co++) dw[(t / nv) * g.CO + co] = total[co - c0];
  }
}

}  // namespace smallconv

#pragma GCC pop_options
