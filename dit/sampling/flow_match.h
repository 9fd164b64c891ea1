// Flow-matching sampler math (model-agnostic): diffusers' FlowMatchEulerDiscreteScheduler schedule
// as FluxPipeline sets it up, the Euler step, and true classifier-free guidance.
#pragma once
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/status.h"
#include "context.h"
#include "tensor.h"

namespace dit::sampling {

// The subset of FlowMatchEulerDiscreteScheduler's config that deterministic Euler sampling reads.
struct SchedulerConfig {
  int num_train_timesteps = 1000;
  double shift = 1.0;                  // static shift (use_dynamic_shifting = false)
  bool use_dynamic_shifting = false;   // resolution-dependent shift with mu (Flux dev)
  double base_shift = 0.5, max_shift = 1.15;
  int64_t base_image_seq_len = 256, max_image_seq_len = 4096;
  bool invert_sigmas = false;
  std::optional<double> shift_terminal;
  std::string time_shift_type = "exponential";  // or "linear"

  static SchedulerConfig flux_dev();      // dynamic shifting, base 0.5, max 1.15
  static SchedulerConfig flux_schnell();  // static shift 1 (no shift)
  // diffusers scheduler_config.json; missing keys take diffusers' defaults. Karras / exponential /
  // beta sigmas and stochastic sampling are refused (not implemented) with an error naming the key.
  static rt::Result<SchedulerConfig> from_json(const nlohmann::json& j);
};

struct Schedule {
  std::vector<float> sigmas;     // N + 1, the last 0 (1 with invert_sigmas)
  std::vector<float> timesteps;  // N, sigma · num_train_timesteps
  int steps() const { return int(timesteps.size()); }
};

// FluxPipeline's calculate_shift: mu linear in the image token count (not clamped).
double calculate_shift(int64_t image_seq_len, int64_t base_seq_len = 256, int64_t max_seq_len = 4096,
                       double base_shift = 0.5, double max_shift = 1.15);

// set_timesteps(sigmas = linspace(1, 1/N, N), mu = calculate_shift(image_seq_len, <config>)), with
// the scheduler's float32 arithmetic. N >= 1.
Schedule flux_schedule(int num_steps, int64_t image_seq_len, const SchedulerConfig& config);

// Euler step in float32: x + (sigma_next − sigma)·v.
rt::Tensor euler_step(const rt::Context& ctx, const rt::Tensor& x, const rt::Tensor& v, float sigma, float sigma_next);

// True classifier-free guidance: v_neg + scale·(v_pos − v_neg).
rt::Tensor true_cfg(const rt::Context& ctx, const rt::Tensor& v_pos, const rt::Tensor& v_neg, float scale);

}  // namespace dit::sampling
