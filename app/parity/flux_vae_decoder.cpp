// Parity runner for `flux_vae_decoder`: diffusers AutoencoderKL.decode(latent).sample, config from the
// fixture's AutoencoderKL config.json, weights in the layout the fixture names.
#include "app/parity/runners.h"
#include "vae/flux/decoder.h"
#include "vae/flux/names.h"

namespace app::parity {

rt::Result<ParityOutputs> run_flux_vae_decoder(const rt::Context& ctx, const ParityFixture& f) {
  RT_ASSIGN(const vae::flux::Config cfg, vae::flux::Config::from_diffusers_json(f.config));
  RT_ASSIGN(const vae::flux::Layout layout, vae::flux::parse_layout(f.weights_format));
  RT_ASSIGN(auto store, vae::flux::map_vae_store(f.weights, layout));
  RT_ASSIGN(const vae::flux::Decoder decoder,
            vae::flux::Decoder::load(weights::WeightLoader(store, "flux_vae_decoder").place(ctx), cfg));
  RT_ASSIGN(const rt::Tensor latent, fixture_input(f, "latent"));
  return ParityOutputs{{"sample", decoder.forward(ctx, latent)}};
}

}  // namespace app::parity
