// One parity runner per module of the fixture contract; each lives in its own file next to this one.
#pragma once
#include "app/parity/fixture.h"

namespace app::parity {

rt::Result<ParityOutputs> run_flux_transformer(const rt::Context& ctx, const ParityFixture& f);
rt::Result<ParityOutputs> run_t5_encoder(const rt::Context& ctx, const ParityFixture& f);
rt::Result<ParityOutputs> run_clip_text_encoder(const rt::Context& ctx, const ParityFixture& f);
rt::Result<ParityOutputs> run_flux_vae_decoder(const rt::Context& ctx, const ParityFixture& f);
rt::Result<ParityOutputs> run_flow_match_schedule(const rt::Context& ctx, const ParityFixture& f);
rt::Result<ParityOutputs> run_flux_denoise(const rt::Context& ctx, const ParityFixture& f);
rt::Result<ParityOutputs> run_attention(const rt::Context& ctx, const ParityFixture& f);

}  // namespace app::parity
