#include "app/parity/runners.h"

namespace app::parity {

rt::Result<ParityOutputs> run_clip_text_encoder(const rt::Context& ctx, const ParityFixture& f) {
  return rt::Status::error(f.path + ": module 'clip_text_encoder' is not implemented yet");
}

}  // namespace app::parity
