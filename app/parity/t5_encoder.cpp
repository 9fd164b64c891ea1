#include "app/parity/runners.h"

namespace app::parity {

rt::Result<ParityOutputs> run_t5_encoder(const rt::Context& ctx, const ParityFixture& f) {
  return rt::Status::error(f.path + ": module 't5_encoder' is not implemented yet");
}

}  // namespace app::parity
