// flux_transformer parity: weights through the same layout map as a real checkpoint, config from
// the fixture's diffusers config cross-checked against the one inferred from tensor shapes.
#include "app/parity/flux_common.h"
#include "app/parity/runners.h"
#include "dit/flux/names.h"

namespace app::parity {

rt::Result<dit::flux::FluxTransformer> load_flux_fixture_model(const rt::Context& ctx, const ParityFixture& f,
                                                               const nlohmann::json& config) {
  const dit::flux::Layout layout = f.weights_format == "bfl" ? dit::flux::Layout::BFL : dit::flux::Layout::Diffusers;
  if (dit::flux::detect_flux_layout(f.weights) != layout)
    return rt::Status::error(f.path + ": weights_format is '" + f.weights_format + "' but the weight names look like '" +
                             dit::flux::layout_name(dit::flux::detect_flux_layout(f.weights)) + "'");
  RT_ASSIGN(auto store, dit::flux::map_flux_checkpoint(f.weights, layout));
  RT_ASSIGN(const dit::flux::Config cfg, dit::flux::Config::from_diffusers_json(config));
  RT_ASSIGN(const dit::flux::Config inferred, dit::flux::Config::from_checkpoint(*store, &config));
  if (inferred.str() != cfg.str() || inferred.qkv_bias != cfg.qkv_bias)
    return rt::Status::error(f.path + ": config from JSON (" + cfg.str() + ") differs from the one inferred from shapes (" +
                             inferred.str() + ")");
  return dit::flux::FluxTransformer::load(weights::WeightLoader(store, "flux transformer").place(ctx), cfg);
}

rt::Result<ParityOutputs> run_flux_transformer(const rt::Context& ctx, const ParityFixture& f) {
  RT_ASSIGN(const dit::flux::FluxTransformer model, load_flux_fixture_model(ctx, f, f.config));
  RT_ASSIGN(const rt::Tensor hidden_states, fixture_input(f, "hidden_states"));
  RT_ASSIGN(const rt::Tensor encoder_hidden_states, fixture_input(f, "encoder_hidden_states"));
  RT_ASSIGN(const rt::Tensor pooled_projections, fixture_input(f, "pooled_projections"));
  RT_ASSIGN(const rt::Tensor timestep, fixture_input(f, "timestep"));
  RT_ASSIGN(const rt::Tensor img_ids, fixture_input(f, "img_ids"));
  RT_ASSIGN(const rt::Tensor txt_ids, fixture_input(f, "txt_ids"));
  rt::Tensor guidance;
  if (model.config().guidance_embed) {
    RT_ASSIGN(guidance, fixture_input(f, "guidance"));
  }
  ParityOutputs out;
  out["sample"] = model.forward(ctx, hidden_states, img_ids, encoder_hidden_states, txt_ids, timestep,
                                pooled_projections, guidance);
  return out;
}

}  // namespace app::parity
