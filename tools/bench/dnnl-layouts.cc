// How much Kiln's choice of activation layout costs oneDNN on ResNet-18's convolutions (batch 64,
// 28x28 input, small-input stem): each convolution's forward, input gradient and filter gradient
// timed with
//   nhwc     activations in tfjs's NHWC, as Kiln's addon hands them over (with AVX-512 always);
//   blocked  activations in the layout oneDNN prefers (format `any`: nChw16c with AVX-512, nChw8c
//            with AVX2), as they would be if kept in that layout between oneDNN ops;
//   blocked+reorders  the same, plus reordering NHWC in and out at every call (what a per-call
//            conversion without keeping the layout would cost).
// Build and run: g++ -O2 -std=c++17 tools/bench/dnnl-layouts.cc -ldnnl -o dnnl-layouts &&
// OMP_NUM_THREADS=1 ./dnnl-layouts [reps]. Times are the process's CPU time (so that other load on
// a shared machine does not count), medians of `reps` executions (default 3); with more than one
// thread they add the threads' time up. ONEDNN_MAX_CPU_ISA / DNNL_MAX_CPU_ISA cap the ISA.
#include <dnnl.hpp>

#include <algorithm>
#include <array>
#include <ctime>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <vector>

using namespace dnnl;
using tag = memory::format_tag;
using dt = memory::data_type;

struct Conv {
  int64_t ci, co, hw, stride, k;
};

static double cpuMs() {
  timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static double medianMs(const std::function<void()> &f, int reps) {
  std::vector<double> t;
  f();
  for (int i = 0; i < reps; i++) {
    const double t0 = cpuMs();
    f();
    t.push_back(cpuMs() - t0);
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

int main(int argc, char **argv) {
  const int reps = argc > 1 ? std::atoi(argv[1]) : 3;
  const int64_t N = 64;
  std::vector<Conv> convs = {{1, 64, 28, 1, 3}, {64, 64, 28, 1, 3}, {64, 64, 28, 1, 3}, {64, 64, 28, 1, 3}, {64, 64, 28, 1, 3}};
  for (auto [ci, co, hw] : std::vector<std::array<int64_t, 3>>{{64, 128, 28}, {128, 256, 14}, {256, 512, 7}}) {
    int64_t o = (hw + 1) / 2;
    convs.push_back({ci, co, hw, 2, 3});
    convs.push_back({co, co, o, 1, 3});
    convs.push_back({ci, co, hw, 2, 1});
    convs.push_back({co, co, o, 1, 3});
    convs.push_back({co, co, o, 1, 3});
  }
  engine eng(engine::kind::cpu, 0);
  stream s(eng);
  double total[3] = {0, 0, 0};
  std::printf("%-26s %10s %10s %18s\n", "conv (ci>co, HW, s, k)", "nhwc ms", "blocked", "blocked+reorders");
  for (const Conv &c : convs) {
    const int64_t oh = (c.hw + 2 * (c.k / 2) - c.k) / c.stride + 1;
    memory::dims src = {N, c.ci, c.hw, c.hw}, wei = {c.co, c.ci, c.k, c.k}, dst = {N, c.co, oh, oh};
    memory::dims strides = {c.stride, c.stride}, pad = {c.k / 2, c.k / 2};
    memory::dims padR = {(oh - 1) * c.stride + c.k - c.hw - c.k / 2, (oh - 1) * c.stride + c.k - c.hw - c.k / 2};
    double ms[3];
    for (int mode = 0; mode < 2; mode++) {
      tag act = mode == 0 ? tag::nhwc : tag::any;
      memory::desc srcD(src, dt::f32, act), dstD(dst, dt::f32, act), weiD(wei, dt::f32, tag::any);
      auto fd = convolution_forward::desc(prop_kind::forward_training, algorithm::convolution_direct, srcD, weiD, dstD, strides, pad, padR);
      auto fpd = convolution_forward::primitive_desc(fd, eng);
      auto dd = convolution_backward_data::desc(algorithm::convolution_direct, srcD, weiD, dstD, strides, pad, padR);
      auto dpd = convolution_backward_data::primitive_desc(dd, eng, fpd);
      auto wd = convolution_backward_weights::desc(algorithm::convolution_direct, srcD, weiD, dstD, strides, pad, padR);
      auto wpd = convolution_backward_weights::primitive_desc(wd, eng, fpd);
      memory x(fpd.src_desc(), eng), w(fpd.weights_desc(), eng), y(fpd.dst_desc(), eng);
      memory dy(dpd.diff_dst_desc(), eng), dx(dpd.diff_src_desc(), eng), wb(dpd.weights_desc(), eng), dw(wpd.diff_weights_desc(), eng);
      memory xw(wpd.src_desc(), eng), dyw(wpd.diff_dst_desc(), eng);
      for (memory *m : {&x, &w, &dy, &wb, &xw, &dyw}) {
        float *p = static_cast<float *>(m->get_data_handle());
        std::fill(p, p + m->get_desc().get_size() / sizeof(float), 0.01f);
      }
      convolution_forward fwd(fpd);
      convolution_backward_data bwdData(dpd);
      convolution_backward_weights bwdWeights(wpd);
      auto step = [&] {
        fwd.execute(s, {{DNNL_ARG_SRC, x}, {DNNL_ARG_WEIGHTS, w}, {DNNL_ARG_DST, y}});
        bwdData.execute(s, {{DNNL_ARG_DIFF_DST, dy}, {DNNL_ARG_WEIGHTS, wb}, {DNNL_ARG_DIFF_SRC, dx}});
        bwdWeights.execute(s, {{DNNL_ARG_SRC, xw}, {DNNL_ARG_DIFF_DST, dyw}, {DNNL_ARG_DIFF_WEIGHTS, dw}});
        s.wait();
      };
      ms[mode] = medianMs(step, reps);
      if (mode == 1) {
        // The NHWC <-> blocked conversions a per-call scheme would add: x and dy in (twice: forward
        // and the two gradients), y and dx out.
        memory::desc nx(src, dt::f32, tag::nhwc), ny(dst, dt::f32, tag::nhwc);
        memory xn(nx, eng), yn(ny, eng), dyn(ny, eng), dxn(nx, eng);
        reorder toX(xn, x), toDy(dyn, dy), fromY(y, yn), fromDx(dx, dxn), toXw(xn, xw), toDyw(dyn, dyw);
        auto conversions = [&] {
          toX.execute(s, xn, x);
          toDy.execute(s, dyn, dy);
          fromY.execute(s, y, yn);
          fromDx.execute(s, dx, dxn);
          toXw.execute(s, xn, xw);
          toDyw.execute(s, dyn, dyw);
          s.wait();
        };
        ms[2] = ms[1] + medianMs(conversions, reps);
      }
    }
    for (int i = 0; i < 3; i++) total[i] += ms[i];
    char name[64];
    std::snprintf(name, sizeof name, "%ld>%ld, %ld, s%ld, %ldx%ld", long(c.ci), long(c.co), long(c.hw), long(c.stride), long(c.k), long(c.k));
    std::printf("%-26s %10.2f %10.2f %18.2f\n", name, ms[0], ms[1], ms[2]);
  }
  std::printf("%-26s %10.1f %10.1f %18.1f\n", "total (20 convolutions)", total[0], total[1], total[2]);
  return 0;
}
