#include "app/parity/runners.h"

namespace app::parity {

rt::Result<ParityOutputs> run_flux_transformer(const rt::Context& ctx, const ParityFixture& f) {
  return rt::Status::error(f.path + ": module 'flux_transformer' is not implemented yet");
}

}  // namespace app::parity
