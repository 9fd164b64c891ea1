// Dense masked attention on the CPU: the oracle every other attention path is tested against.
#pragma once
#include "sparse_attention/attention.h"

namespace sattn::reference {

rt::Tensor dense_attention_cpu(const rt::Context& ctx, const AttentionParams& p);

// One row of scores in place -> softmax probabilities: max-subtracted exp in f32, the sum in double; a row
// whose every score is -inf (nothing attended) becomes zeros.
void softmax_row_cpu(float* row, int64_t n);

}  // namespace sattn::reference
