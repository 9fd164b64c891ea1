#include <cstring>

#include "cpu/cpu_ops.h"

namespace rt::cpu {

Tensor concat(const Context& ctx, const std::vector<Tensor>& xs, int64_t dim) {
  Shape s = xs[0].shape();
  int64_t total = 0;
  for (const Tensor& t : xs) total += t.size(dim);
  s[size_t(dim)] = total;
  Tensor out = Tensor::empty(s, xs[0].dtype());
  const size_t es = dtype_size(xs[0].dtype());
  int64_t outer = 1;
  for (int64_t d = 0; d < dim; ++d) outer *= s[size_t(d)];
  const int64_t out_row = out.numel() / std::max<int64_t>(outer, 1);
  char* o = static_cast<char*>(out.raw_data());
  int64_t col = 0;
  for (const Tensor& t_in : xs) {
    const Tensor t = t_in.contiguous();
    const int64_t row = outer ? t.numel() / outer : 0;
    const char* p = static_cast<const char*>(t.raw_data());
    for (int64_t i = 0; i < outer; ++i) std::memcpy(o + (i * out_row + col) * int64_t(es), p + i * row * int64_t(es), size_t(row) * es);
    col += row;
  }
  return out;
}

Tensor embedding(const Context& ctx, const Tensor& ids_in, const Tensor& table_in) {
  const Tensor ids = ids_in.contiguous();
  const Tensor table = table_in.contiguous();
  const int64_t v = table.size(0), d = table.size(1);
  Shape s = ids.shape();
  s.push_back(d);
  Tensor out = Tensor::empty(s);
  const int64_t* ip = ids.data<int64_t>();
  for (int64_t i = 0; i < ids.numel(); ++i) {
    CHECK(ip[i] >= 0 && ip[i] < v, "embedding: id ", ip[i], " at position ", i, " outside the table of ", v, " rows");
    std::memcpy(out.data<float>() + i * d, table.data<float>() + ip[i] * d, size_t(d) * 4);
  }
  return out;
}

Tensor rope(const Context& ctx, const Tensor& x_in, const Tensor& cos_in, const Tensor& sin_in) {
  const Tensor x = x_in.contiguous();
  const Tensor cs = cos_in.contiguous();
  const Tensor sn = sin_in.contiguous();
  const int64_t b = x.size(0), l = x.size(1), h = x.size(2), d = x.size(3), half = d / 2;
  Tensor out = Tensor::empty(x.shape());
  const float* p = x.data<float>();
  float* o = out.data<float>();
  ctx.parallel_for(b * l, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const int64_t pos = r % l;
      const float* c = cs.data<float>() + pos * half;
      const float* s = sn.data<float>() + pos * half;
      for (int64_t hh = 0; hh < h; ++hh) {
        const float* xi = p + (r * h + hh) * d;
        float* oi = o + (r * h + hh) * d;
        for (int64_t q = 0; q < half; ++q) {
          const float x0 = xi[2 * q], x1 = xi[2 * q + 1];
          oi[2 * q] = x0 * c[q] - x1 * s[q];
          oi[2 * q + 1] = x0 * s[q] + x1 * c[q];
        }
      }
    }
  }, 64);
  return out;
}

}  // namespace rt::cpu
