// flux_denoise parity: FluxPipeline's loop (schedule from the scheduler config and image_seq_len,
// embedded guidance, Euler steps) over the fixture's transformer.
#include "app/parity/flux_common.h"
#include "app/parity/runners.h"
#include "app/pipeline/denoise.h"

namespace app::parity {

rt::Result<ParityOutputs> run_flux_denoise(const rt::Context& ctx, const ParityFixture& f) {
  for (const char* key : {"transformer", "scheduler", "num_inference_steps", "guidance_scale", "image_seq_len"}) {
    if (!f.config.contains(key)) return rt::Status::error(f.path + ": flux_denoise config has no '" + key + "'");
  }
  RT_ASSIGN(const dit::flux::FluxTransformer model, load_flux_fixture_model(ctx, f, f.config["transformer"]));
  RT_ASSIGN(const dit::sampling::SchedulerConfig sched,
            dit::sampling::SchedulerConfig::from_json(f.config["scheduler"]));
  RT_ASSIGN(const rt::Tensor latents, fixture_input(f, "latents"));
  FluxCond cond;
  RT_ASSIGN(cond.txt, fixture_input(f, "encoder_hidden_states"));
  RT_ASSIGN(cond.y, fixture_input(f, "pooled_projections"));
  RT_ASSIGN(cond.txt_ids, fixture_input(f, "txt_ids"));
  RT_ASSIGN(const rt::Tensor img_ids, fixture_input(f, "img_ids"));

  const int steps = f.config["num_inference_steps"].get<int>();
  const int64_t seq = f.config["image_seq_len"].get<int64_t>();
  if (steps < 1) return rt::Status::error(f.path + ": num_inference_steps must be >= 1");
  if (seq != latents.size(1))
    return rt::Status::error(f.path + ": image_seq_len " + std::to_string(seq) + " != latent tokens " +
                             std::to_string(latents.size(1)));
  const dit::sampling::Schedule schedule = dit::sampling::flux_schedule(steps, seq, sched);
  DenoiseOptions opts;
  opts.guidance = f.config["guidance_scale"].get<float>();
  ParityOutputs out;
  out["latents"] = denoise(ctx, model, latents, cond, img_ids, schedule, opts);
  return out;
}

}  // namespace app::parity
