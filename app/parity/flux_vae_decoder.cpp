#include "app/parity/runners.h"

namespace app::parity {

rt::Result<ParityOutputs> run_flux_vae_decoder(const rt::Context& ctx, const ParityFixture& f) {
  return rt::Status::error(f.path + ": module 'flux_vae_decoder' is not implemented yet");
}

}  // namespace app::parity
