// Mirrors scheduling_flow_match_euler_discrete.py (diffusers 0.42). The sigmas are cast to float32
// numpy right after linspace, and every later numpy step (time shift, static shift, terminal
// stretch) runs in float32 with Python floats rounded to float32 first; we do the same.
#include "dit/sampling/flow_match.h"

#include <cmath>

#include "ops.h"

namespace dit::sampling {

using rt::Status;

SchedulerConfig SchedulerConfig::flux_dev() {
  SchedulerConfig c;
  c.use_dynamic_shifting = true;
  c.shift = 3.0;  // present in the dev config, unused under dynamic shifting
  return c;
}

SchedulerConfig SchedulerConfig::flux_schnell() { return SchedulerConfig{}; }

static bool json_flag(const nlohmann::json& j, const char* key) {
  return j.contains(key) && j[key].is_boolean() && j[key].get<bool>();
}

rt::Result<SchedulerConfig> SchedulerConfig::from_json(const nlohmann::json& j) {
  if (!j.is_object()) return Status::error("scheduler config: expected a JSON object, got " + j.dump());
  SchedulerConfig c;
  try {
    auto num = [&](const char* key, auto& out) {
      if (j.contains(key) && !j[key].is_null()) out = j[key].get<std::decay_t<decltype(out)>>();
    };
    num("num_train_timesteps", c.num_train_timesteps);
    num("shift", c.shift);
    num("use_dynamic_shifting", c.use_dynamic_shifting);
    num("base_shift", c.base_shift);
    num("max_shift", c.max_shift);
    num("base_image_seq_len", c.base_image_seq_len);
    num("max_image_seq_len", c.max_image_seq_len);
    num("invert_sigmas", c.invert_sigmas);
    num("time_shift_type", c.time_shift_type);
    if (j.contains("shift_terminal") && !j["shift_terminal"].is_null()) c.shift_terminal = j["shift_terminal"].get<double>();
  } catch (const std::exception& e) {
    return Status::error(std::string("scheduler config: a value has the wrong type: ") + e.what());
  }
  for (const char* key : {"use_karras_sigmas", "use_exponential_sigmas", "use_beta_sigmas", "stochastic_sampling"}) {
    if (json_flag(j, key))
      return Status::error(std::string("scheduler config: '") + key + "' is true, which ditrun does not implement " +
                           "(only the deterministic Euler flow-matching schedule)");
  }
  if (c.time_shift_type != "exponential" && c.time_shift_type != "linear")
    return Status::error("scheduler config: time_shift_type '" + c.time_shift_type +
                         "' is unknown (expected exponential or linear)");
  if (c.num_train_timesteps <= 0) return Status::error("scheduler config: num_train_timesteps must be positive");
  return c;
}

double calculate_shift(int64_t image_seq_len, int64_t base_seq_len, int64_t max_seq_len, double base_shift,
                       double max_shift) {
  const double m = (max_shift - base_shift) / double(max_seq_len - base_seq_len);
  const double b = base_shift - m * double(base_seq_len);
  return double(image_seq_len) * m + b;
}

Schedule flux_schedule(int num_steps, int64_t image_seq_len, const SchedulerConfig& cfg) {
  CHECK(num_steps >= 1, "flux_schedule: need at least one step, got ", num_steps);
  const int n = num_steps;
  // np.linspace(1.0, 1/N, N) in float64 (start + i·step, the last point set exactly), then float32.
  std::vector<float> s(n);
  const double start = 1.0, stop = 1.0 / n;
  const double step = n > 1 ? (stop - start) / double(n - 1) : 0.0;
  for (int i = 0; i < n; ++i) s[i] = float(i == n - 1 && n > 1 ? stop : start + double(i) * step);

  if (cfg.use_dynamic_shifting) {
    const double mu = calculate_shift(image_seq_len, cfg.base_image_seq_len, cfg.max_image_seq_len, cfg.base_shift,
                                      cfg.max_shift);
    // time_shift(mu, 1.0, t): (1/t − 1) ** 1.0 is exact, so it is left out.
    const float e = cfg.time_shift_type == "exponential" ? float(std::exp(mu)) : float(mu);
    for (float& t : s) t = e / (e + (1.f / t - 1.f));
  } else {
    const float shift = float(cfg.shift), shift_m1 = float(cfg.shift - 1.0);
    for (float& t : s) t = shift * t / (1.f + shift_m1 * t);
  }
  if (cfg.shift_terminal && *cfg.shift_terminal != 0.0) {
    const float scale_factor = (1.f - s.back()) / float(1.0 - *cfg.shift_terminal);
    for (float& t : s) t = 1.f - (1.f - t) / scale_factor;
  }

  Schedule out;
  const float train = float(cfg.num_train_timesteps);
  for (float& t : s) {
    if (cfg.invert_sigmas) t = 1.f - t;
    out.timesteps.push_back(t * train);
  }
  out.sigmas = s;
  out.sigmas.push_back(cfg.invert_sigmas ? 1.f : 0.f);
  return out;
}

rt::Tensor euler_step(const rt::Context& ctx, const rt::Tensor& x, const rt::Tensor& v, float sigma, float sigma_next) {
  const float dt = sigma_next - sigma;
  return rt::add(ctx, x, rt::affine(ctx, v, dt, 0.f));
}

rt::Tensor true_cfg(const rt::Context& ctx, const rt::Tensor& v_pos, const rt::Tensor& v_neg, float scale) {
  return rt::add(ctx, v_neg, rt::affine(ctx, rt::sub(ctx, v_pos, v_neg), scale, 0.f));
}

}  // namespace dit::sampling
