#include "sparse_attention/attention.h"

#include "sparse_attention/reference/dense_cpu.h"

namespace sattn {

rt::Tensor attention(const rt::Context& ctx, const AttentionParams& p) {
  CHECK(p.q.defined() && p.k.defined() && p.v.defined(), "attention: q, k and v are required");
  CHECK(p.q.dim() == 4 && p.k.dim() == 4 && p.v.dim() == 4, "attention: q ", p.q.str(), ", k ", p.k.str(), ", v ",
        p.v.str(), " must all be [B, L, H, D]");
  CHECK(p.q.size(0) == p.k.size(0) && p.k.size(0) == p.v.size(0), "attention: batch differs: q ", p.q.str(), " k ",
        p.k.str(), " v ", p.v.str());
  CHECK(p.q.size(2) == p.k.size(2) && p.k.size(2) == p.v.size(2), "attention: heads differ: q ", p.q.str(), " k ",
        p.k.str(), " v ", p.v.str());
  CHECK(p.q.size(3) == p.k.size(3), "attention: q ", p.q.str(), " and k ", p.k.str(), " head dims differ");
  CHECK(p.k.size(1) == p.v.size(1), "attention: k ", p.k.str(), " and v ", p.v.str(), " lengths differ");
  if (p.bias.defined()) {
    const rt::Shape tail{p.q.size(2), p.q.size(1), p.k.size(1)};
    const bool ok = (p.bias.dim() == 3 && p.bias.shape() == tail) ||
                    (p.bias.dim() == 4 && p.bias.size(0) == p.q.size(0) && rt::Shape(p.bias.shape().begin() + 1, p.bias.shape().end()) == tail);
    CHECK(ok, "attention: bias ", p.bias.str(), " must be [H, Lq, Lk] = ", rt::shape_str(tail), " or [B, H, Lq, Lk]");
  }
  for (const rt::Tensor* t : {&p.q, &p.k, &p.v})
    CHECK(t->dtype() == rt::DType::F32 && t->device().is_cpu(), "attention: ", t->str(), " on ",
          rt::device_str(t->device()), ": only the float32 CPU path exists so far");
  return reference::dense_attention_cpu(ctx, p);
}

}  // namespace sattn
