// Shared by the flux_transformer and flux_denoise parity runners.
#pragma once
#include "app/parity/fixture.h"
#include "dit/flux/model.h"

namespace app::parity {

// The fixture's weights mapped by its weights_format (which must agree with the names), the config
// from `config` (diffusers JSON), cross-checked against Config::from_checkpoint.
rt::Result<dit::flux::FluxTransformer> load_flux_fixture_model(const rt::Context& ctx, const ParityFixture& f,
                                                               const nlohmann::json& config);

}  // namespace app::parity
