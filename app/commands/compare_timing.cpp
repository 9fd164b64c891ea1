#include "app/commands/compare_timing.h"

#include <chrono>

#include "ops.h"
#include "rng.h"
#include "sparse_attention/attention.h"

namespace app::compare {

double attention_call_ms(const rt::Context& ctx, const sattn::MethodSpec& method, const sattn::TokenLayout& tokens,
                         int64_t heads, int64_t head_dim, int repeat) {
  const rt::Shape shape = {1, tokens.seq_len(), heads, head_dim};
  rt::TorchGenerator gen(1234);
  sattn::AttentionParams p;
  p.q = rt::to_ctx(ctx, gen.randn(shape));
  p.k = rt::to_ctx(ctx, gen.randn(shape));
  p.v = rt::to_ctx(ctx, gen.randn(shape));
  p.tokens = tokens;
  p.method = method;
  sattn::attention(ctx, p);
  rt::synchronize(ctx);
  const auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < repeat; ++i) sattn::attention(ctx, p);
  rt::synchronize(ctx);
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count() / repeat;
}

}  // namespace app::compare
