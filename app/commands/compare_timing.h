// Attention time of one method on a model's token layout, for `ditrun compare`: the time of a whole
// generation mixes in the text encoders, the VAE and one-time setup, so the attention call is also timed
// alone, on random q, k, v of the transformer's shape, in the context's device and dtype.
#pragma once
#include <cstdint>

#include "context.h"
#include "sparse_attention/mask_rule.h"
#include "sparse_attention/methods/method_spec.h"

namespace app::compare {

// Mean milliseconds of one sattn::attention call over `tokens` (batch 1, `heads` x `head_dim`) with
// `method`, after one untimed call (planning, layout upload, kernel selection), over `repeat` calls.
double attention_call_ms(const rt::Context& ctx, const sattn::MethodSpec& method, const sattn::TokenLayout& tokens,
                         int64_t heads, int64_t head_dim, int repeat = 5);

}  // namespace app::compare
