// Kiln's own Winograd convolution, F(4x4, 3x3) (Lavin & Gray, "Fast Algorithms for Convolutional
// Neural Networks", 2016), for 3x3 stride-1 convolutions on CPUs where oneDNN 2.6 has no Winograd
// kernel of its own (it has one for AVX-512 only). Included by kiln_dnnl.cc inside its anonymous
// namespace, after the matrix-product helpers it uses.
//
// A 4x4 block of outputs is computed from the 6x6 block of inputs around it as
//   Y = Aᵀ [ (G g Gᵀ) ⊙ (Bᵀ d B) ] A,
// 36 products per input/output channel pair instead of the direct algorithm's 144. Summed over
// input channels, each of the 36 products of every tile is one matrix product:
//   M[e] (tiles × CO) = V[e] (tiles × CI) · U[e] (CI × CO),   e = 0 … 35,
// which oneDNN's matmul runs (as one batched product); the transforms around it work on blocks of
// 16 channels, contiguous in NHWC (kiln_winograd_transforms.inc, built for AVX-512, AVX2 and
// plain x86-64; the level oneDNN runs at picks one).
//
// The gradients use the same transforms:
//   input gradient:  the same convolution of dy with the filter turned 180° and its channel axes
//                    swapped, padded 2 − pad (stride 1);
//   filter gradient: dU[e] (CI × CO) = V[e]ᵀ · Ŷ[e], Ŷ = A dY Aᵀ for each 4x4 block of dy, then
//                    dW = Gᵀ dU G — the exact gradient of the forward above.
// Tiles past the output's edge read zeros and write nothing, so any output size works.

#pragma GCC push_options
#pragma GCC optimize("O3")

namespace winograd {

constexpr int kTile = 4;      // output tile side
constexpr int kBlock = 16;    // channels transformed together (one AVX-512 register, two AVX2)

// The shape of one Winograd convolution: input [N, H, W, C], output [N, OH, OW, K], the input
// read from row −PT and column −PL on (zeros outside).
struct Shape {
  int64_t N, H, W, C, OH, OW, K, PT, PL;
  int64_t tilesH() const { return (OH + kTile - 1) / kTile; }
  int64_t tilesW() const { return (OW + kTile - 1) / kTile; }
  int64_t tiles() const { return N * tilesH() * tilesW(); }
};

}  // namespace winograd

#pragma GCC push_options
#pragma GCC target("avx512f,avx512dq,avx512bw,avx512vl,avx2,fma")
namespace winograd::avx512 {
#include "kiln_winograd_transforms.inc"
}
#pragma GCC pop_options
#pragma GCC push_options
#pragma GCC target("avx2,fma")
namespace winograd::avx2 {
#include "kiln_winograd_transforms.inc"
}
#pragma GCC pop_options
namespace winograd::baseline {
#include "kiln_winograd_transforms.inc"
}

namespace winograd {

// The transforms of one instruction set.
struct Transforms {
  void (*input)(const Shape &, int64_t, int64_t, const float *, float *);
  void (*filter)(int64_t, int64_t, const float *, float *);
  void (*output)(const Shape &, int64_t, int64_t, const float *, const float *, bool, float *);
  void (*outputGradient)(const Shape &, int64_t, int64_t, const float *, float *);
  void (*filterGradient)(int64_t, int64_t, const float *, float *);
};

#define KILN_WINOGRAD_TRANSFORMS(ns) \
  Transforms { ns::inputTransform, ns::filterTransform, ns::outputTransform, ns::outputGradientTransform, ns::filterGradientTransform }

// The transforms of ownIsa()'s instruction set.
const Transforms &transforms() {
  static const Transforms chosen = ownIsa() == OwnIsa::avx512 ? KILN_WINOGRAD_TRANSFORMS(avx512) : ownIsa() == OwnIsa::avx2 ? KILN_WINOGRAD_TRANSFORMS(avx2) : KILN_WINOGRAD_TRANSFORMS(baseline);
  return chosen;
}

// Scratch of the transforms, shared by every Winograd call (callers hold cacheLock).
AlignedScratch transformedInput, transformedFilter, products, flippedFilter;

// The 36 products as one batched oneDNN matmul: C[e] (+)= op(A[e]) · B[e], op(A) = Aᵀ when
// `transposeA` (A stored [36][K][M]), adding to C when `accumulate`. Cached by shape.
void batchedProducts(int64_t M, int64_t K, int64_t N, bool transposeA, bool accumulate, const float *a, const float *b, float *c) {
  MatMulGeometry g{36, 36, M, K, N, transposeA ? 1 : 0, 0};
  // Keys of their own beside the layers' products. A primitive made under kiln_dnnl.cc's one-thread
  // scope (for a small convolution) may later serve a larger convolution's chunk of the same shape:
  // correct at any size of the thread pool, at worst on fewer threads.
  dnnl::matmul *mm = &cached(matmuls, "wino:" + g.key() + (accumulate ? "+" : ""), [&] {
    dnnl::primitive_attr attr;
    if (accumulate) {
      dnnl::post_ops ops;
      ops.append_sum(1.f);
      attr.set_post_ops(ops);
    }
    return dnnl::matmul(dnnl::matmul::primitive_desc(dnnl::matmul::desc(g.a(), g.b(), g.c()), attr, cpu()));
  });
  mm->execute(strm(), {{DNNL_ARG_SRC, memory(g.a(), cpu(), const_cast<float *>(a))},
                       {DNNL_ARG_WEIGHTS, memory(g.b(), cpu(), const_cast<float *>(b))},
                       {DNNL_ARG_DST, memory(g.c(), cpu(), c)}});
  strm().wait();
}

// Tiles per chunk: each convolution runs over its tiles in chunks whose transformed blocks (36 per
// tile and channel) take about 4 MiB, so that they are still in cache when the products read them
// and the scratch stays small (the whole image set at once would take 29 MiB per buffer for
// ResNet-18's first stage at batch 64).
int64_t chunkTiles(const Shape &s) {
  const int64_t perTile = 36 * std::max(s.C, s.K);
  return std::max<int64_t>(16, (int64_t(1) << 20) / perTile);
}

// y = conv(x, w) (+ bias, ReLU): x [N, H, W, C], w HWIO [3, 3, C, K], y [N, OH, OW, K].
void forward(const Shape &s, const float *x, const float *w, const float *bias, bool relu, float *y) {
  const int64_t T = s.tiles(), chunk = std::min(T, chunkTiles(s));
  float *V = transformedInput.get(36 * chunk * s.C);
  float *U = transformedFilter.get(36 * s.C * s.K);
  float *M = products.get(36 * chunk * s.K);
  transforms().filter(s.C, s.K, w, U);
  for (int64_t first = 0; first < T; first += chunk) {
    const int64_t count = std::min(chunk, T - first);
    transforms().input(s, first, count, x, V);
    batchedProducts(count, s.C, s.K, false, false, V, U, M);
    transforms().output(s, first, count, M, bias, relu, y);
  }
}

// The input gradient of the convolution `s` describes: the forward pass of dy [N, OH, OW, K] with
// the filter turned 180° and its channel axes swapped, padded 2 − PT / 2 − PL, into dx [N, H, W, C].
void backwardData(const Shape &s, const float *dy, const float *w, float *dx) {
  float *flipped = flippedFilter.get(9 * s.C * s.K);
  for (int64_t i = 0; i < 3; i++)
    for (int64_t j = 0; j < 3; j++)
      for (int64_t c = 0; c < s.C; c++)
        for (int64_t k = 0; k < s.K; k++) flipped[((i * 3 + j) * s.K + k) * s.C + c] = w[(((2 - i) * 3 + (2 - j)) * s.C + c) * s.K + k];
  const Shape back{s.N, s.OH, s.OW, s.K, s.H, s.W, s.C, 2 - s.PT, 2 - s.PL};
  forward(back, dy, flipped, nullptr, false, dx);
}

// The filter gradient: dU[e] = Σ over tiles V[e]ᵀ Ŷ[e] (each chunk's product added to the last),
// then dW = Gᵀ dU G.
void backwardFilter(const Shape &s, const float *x, const float *dy, float *dw) {
  const int64_t T = s.tiles(), chunk = std::min(T, chunkTiles(s));
  float *V = transformedInput.get(36 * chunk * s.C);
  float *Yhat = products.get(36 * chunk * s.K);
  float *dU = transformedFilter.get(36 * s.C * s.K);
  for (int64_t first = 0; first < T; first += chunk) {
    const int64_t count = std::min(chunk, T - first);
    transforms().input(s, first, count, x, V);
    transforms().outputGradient(s, first, count, dy, Yhat);
    batchedProducts(s.C, count, s.K, true, first > 0, V, Yhat, dU);
  }
  transforms().filterGradient(s.C, s.K, dU, dw);
}

}  // namespace winograd

#pragma GCC pop_options
