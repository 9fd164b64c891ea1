// Parity runner for `t5_encoder`: transformers T5EncoderModel, config = its T5Config dict, weights in
// transformers names (the embedding as shared.weight or encoder.embed_tokens.weight).
#include "app/parity/runners.h"
#include "text_encoder/t5/model.h"

namespace app::parity {

rt::Result<ParityOutputs> run_t5_encoder(const rt::Context& ctx, const ParityFixture& f) {
  RT_ASSIGN(te::t5::Config cfg, te::t5::Config::from_transformers_json(f.config));
  RT_ASSIGN(rt::Tensor ids, fixture_input(f, "input_ids"));
  RT_ASSIGN(te::t5::T5Encoder model, te::t5::T5Encoder::from_store(f.weights, cfg, &ctx));
  return ParityOutputs{{"last_hidden_state", model.forward(ctx, ids)}};
}

}  // namespace app::parity
