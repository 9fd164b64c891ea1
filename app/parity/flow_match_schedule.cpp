#include "app/parity/runners.h"

namespace app::parity {

rt::Result<ParityOutputs> run_flow_match_schedule(const rt::Context& ctx, const ParityFixture& f) {
  return rt::Status::error(f.path + ": module 'flow_match_schedule' is not implemented yet");
}

}  // namespace app::parity
