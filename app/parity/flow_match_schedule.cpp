#include "app/parity/runners.h"
#include "dit/sampling/flow_match.h"

namespace app::parity {

rt::Result<ParityOutputs> run_flow_match_schedule(const rt::Context& ctx, const ParityFixture& f) {
  RT_ASSIGN(const dit::sampling::SchedulerConfig cfg, dit::sampling::SchedulerConfig::from_json(f.config));
  if (!f.config.contains("num_inference_steps") || !f.config.contains("image_seq_len"))
    return rt::Status::error(f.path + ": flow_match_schedule config needs 'num_inference_steps' and 'image_seq_len'");
  const int steps = f.config["num_inference_steps"].get<int>();
  const int64_t seq = f.config["image_seq_len"].get<int64_t>();
  if (steps < 1) return rt::Status::error(f.path + ": num_inference_steps must be >= 1");
  const dit::sampling::Schedule s = dit::sampling::flux_schedule(steps, seq, cfg);
  ParityOutputs out;
  out["sigmas"] = rt::Tensor::from_vector(s.sigmas, {int64_t(s.sigmas.size())});
  out["timesteps"] = rt::Tensor::from_vector(s.timesteps, {int64_t(s.timesteps.size())});
  return out;
}

}  // namespace app::parity
