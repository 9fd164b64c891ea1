// Dense masked attention on the CPU: the oracle every other attention path is tested against.
#pragma once
#include "sparse_attention/attention.h"

namespace sattn::reference {

rt::Tensor dense_attention_cpu(const rt::Context& ctx, const AttentionParams& p);

}  // namespace sattn::reference
