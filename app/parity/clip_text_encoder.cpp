// Parity runner for `clip_text_encoder`: transformers CLIPTextModel, config = its CLIPTextConfig dict,
// weights in transformers names (with or without the "text_model." prefix).
#include "app/parity/runners.h"
#include "text_encoder/clip/model.h"

namespace app::parity {

rt::Result<ParityOutputs> run_clip_text_encoder(const rt::Context& ctx, const ParityFixture& f) {
  RT_ASSIGN(te::clip::Config cfg, te::clip::Config::from_transformers_json(f.config));
  RT_ASSIGN(rt::Tensor ids, fixture_input(f, "input_ids"));
  RT_ASSIGN(te::clip::ClipTextEncoder model, te::clip::ClipTextEncoder::from_store(f.weights, cfg, &ctx));
  te::clip::ClipTextOutput out = model.forward(ctx, ids);
  return ParityOutputs{{"last_hidden_state", out.last_hidden_state}, {"pooler_output", out.pooler_output}};
}

}  // namespace app::parity
