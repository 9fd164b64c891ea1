// `ditrun backends`: for a model, an image size and an attention policy, which method and kernel each
// transformer layer's attention would run and why the others cannot: the policy's method per layer
// (after the dense warm-up steps), the layout's tile and FLOP density, the automatic dense fallback's
// decision and describe_attention's line (the executor, with the reason the faster one was passed over).
// Nothing runs: the model is only checked (its configs read, no weights placed) and the calls are
// described from tensors of the real shape (on the CPU, broadcast views of one row, so no memory).
#include <algorithm>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "app/commands/commands.h"
#include "app/commands/device_options.h"
#include "app/commands/exit_codes.h"
#include "app/pipeline/attention_config.h"
#include "app/pipeline/flux_pipeline.h"
#include "ops.h"
#include "sparse_attention/attention.h"
#include "sparse_attention/methods/paro.h"
#include "sparse_attention/methods/structured.h"

namespace app {

namespace {

struct BackendsOptions {
  ModelPathArgs paths;
  int64_t width = 0, height = 0;
  int max_sequence_length = 0;
  std::string attention = "dense";
  std::string attention_config;
  int dense_steps = -1;  // -1: the config's (0 without one)
  bool no_fallback = false;
  DeviceOptions device;
};

int usage_error(const std::string& msg) {
  std::fprintf(stderr, "ditrun backends: %s\n", msg.c_str());
  return kExitUsage;
}

// What one distinct method does on the model's token layout.
struct MethodRow {
  std::string method;    // method_str
  double tile = 1, flop = 1;
  std::string fallback;  // why it runs dense instead ("" = it runs)
  std::string runs;      // the method and the executor that runs it
};

std::string fixed(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.3f", v);
  return buf;
}

// q = k = v of one Flux attention call: [1, L, H, D] in the context's dtype (f32 on the CPU, where a
// broadcast view of one token is enough to describe the call).
rt::Tensor call_tensor(const rt::Context& ctx, int64_t len, int64_t heads, int64_t head_dim) {
  if (!ctx.is_cuda()) return rt::Tensor::empty({1, 1, heads, head_dim}).expand({1, len, heads, head_dim});
  return rt::empty(ctx, {1, len, heads, head_dim}, ctx.dtype());
}

// `layer` and `step` of `num_steps` matter to PARO only: its layouts differ per (timestep bucket, layer).
MethodRow describe_method(const rt::Context& ctx, const sattn::MethodSpec& m, const sattn::TokenLayout& tokens,
                          const rt::Tensor& qkv, bool fallback, int layer, int step, int num_steps) {
  sattn::AttentionParams p;
  p.q = p.k = p.v = qkv;
  p.method = m;
  p.layer_index = layer;
  p.step_index = step;
  p.num_steps = num_steps;
  MethodRow row;
  row.method = sattn::method_str(m);
  if (!m.is_dense()) {
    p.tokens = tokens;
    const std::shared_ptr<const sattn::BlockLayout> layout = sattn::structured_layout(ctx, p);
    row.tile = layout->tile_density();
    row.flop = layout->flop_density();
    row.fallback = dit::flux::dense_fallback_reason(ctx, p);
    if (fallback && !row.fallback.empty()) p.method = sattn::MethodSpec{};
  }
  // describe_attention names the method of structured calls, not of plain dense ones.
  row.runs = sattn::describe_attention(ctx, p);
  if (p.method.is_dense()) row.runs = (m.is_dense() ? "dense: " : row.method + " -> dense: ") + row.runs;
  return row;
}

int run_backends(BackendsOptions o) {
  if (o.paths.model == "default") o.paths.model.clear();
  dit::flux::AttentionPolicy policy;
  std::vector<LabeledMethod> methods;
  if (!o.attention_config.empty()) {
    auto config = load_attention_config(o.attention_config);
    if (!config) return usage_error("--attention-config " + config.status().message());
    policy = config->policy;
    methods.push_back({o.attention_config + ": \"method\"", policy.method});
    for (const auto& [layer, m] : policy.layer_methods)
      methods.push_back({o.attention_config + ": \"layers\" \"" + std::to_string(layer) + "\"", m});
  } else {
    auto method = sattn::parse_method(o.attention);
    if (!method) return usage_error("--attention " + o.attention + ": " + method.status().message());
    policy.method = *method;
    methods.push_back({"--attention " + o.attention, policy.method});
  }
  if (o.dense_steps >= 0) policy.dense_steps = o.dense_steps;
  policy.fallback = !o.no_fallback;
  for (auto [name, v] : {std::pair{"width", o.width}, std::pair{"height", o.height}})
    if (v != 0 && (v < 16 || v > 8192 || v % 16 != 0))
      return usage_error(std::string("--") + name + " " + std::to_string(v) + ": use 16..8192 in steps of 16");

  auto paths = resolve_model_paths(o.paths);
  if (!paths) {
    std::fprintf(stderr, "ditrun backends: %s\n", paths.status().message().c_str());
    return kExitModel;
  }
  auto made = make_context(o.device, rt::LogLevel::Quiet);
  if (!made) return usage_error("--device " + o.device.device + ": " + made.status().message());
  const rt::Context& ctx = made.value();
  LoadOptions load;
  load.offload = true;  // check the components and read their configs; place nothing
  auto pipe = FluxPipeline::load(ctx, *paths, load);
  if (!pipe) {
    std::fprintf(stderr, "ditrun backends: %s\n", pipe.status().message().c_str());
    return kExitModel;
  }
  GenerateParams gp;
  gp.width = o.width;
  gp.height = o.height;
  gp.max_sequence_length = o.max_sequence_length;
  gp = (*pipe)->with_defaults(gp);
  const dit::flux::Config& cfg = (*pipe)->transformer_config();
  const int layers = int(cfg.depth + cfg.depth_single);
  if (std::string why = attention_fit_errors(methods, gp.width, gp.height, gp.max_sequence_length); !why.empty())
    return usage_error(why);
  if (std::string why = policy.layer_error(layers); !why.empty())
    return usage_error((o.attention_config.empty() ? std::string("--attention") : o.attention_config) + ": " + why);

  const sattn::TokenLayout tokens = dit::flux::joint_tokens(gp.max_sequence_length, gp.height / 16, gp.width / 16);
  const rt::Tensor qkv = call_tensor(ctx, tokens.seq_len(), cfg.num_heads, cfg.head_dim);
  std::printf("%s\n%lldx%lld: %lldx%lld token grid + %lld text tokens = %lld tokens, %lld heads x %lld, %s %s\n",
              (*pipe)->describe().c_str(), (long long)gp.width, (long long)gp.height, (long long)tokens.grid[1],
              (long long)tokens.grid[2], (long long)tokens.text_len, (long long)tokens.seq_len(),
              (long long)cfg.num_heads, (long long)cfg.head_dim, rt::device_str(qkv.device()).c_str(),
              rt::dtype_name(qkv.dtype()));
  std::printf("attention: %s%s\n", policy.describe().c_str(), policy.fallback ? "" : " (dense fallback off)");
  if (policy.dense_steps > 0)
    std::printf("%s: every layer dense (warm-up); from step %d:\n",
                policy.dense_steps == 1 ? "step 0" : ("steps 0-" + std::to_string(policy.dense_steps - 1)).c_str(),
                policy.dense_steps);

  std::vector<MethodRow> rows;
  std::vector<int> row_of(static_cast<size_t>(layers));
  std::vector<std::string> keys;  // a row per distinct method; PARO's per layer
  for (int l = 0; l < layers; ++l) {
    const sattn::MethodSpec m = policy.method_for(policy.dense_steps, l);
    const std::string key = sattn::method_str(m) + (m.paro ? "#" + std::to_string(l) : "");
    size_t r = 0;
    while (r < keys.size() && keys[r] != key) ++r;
    if (r == keys.size()) {
      keys.push_back(key);
      rows.push_back(describe_method(ctx, m, tokens, qkv, policy.fallback, l, policy.dense_steps, gp.steps));
    }
    row_of[size_t(l)] = int(r);
  }
  if (policy.method.paro)
    std::printf("paro: the layouts of step %d of %d (timestep bucket %d)\n", policy.dense_steps, gp.steps,
                policy.method.paro->bucket(policy.dense_steps, gp.steps));
  std::printf("%-8s %-12s %-6s %-6s %-9s %s\n", "layers", "blocks", "tile", "flop", "fallback", "method: executor");
  for (int begin = 0; begin < layers;) {
    const bool single = begin >= cfg.depth;
    int end = begin + 1;
    while (end < layers && row_of[size_t(end)] == row_of[size_t(begin)] && (end >= cfg.depth) == single) ++end;
    const MethodRow& r = rows[size_t(row_of[size_t(begin)])];
    const int first = single ? begin - int(cfg.depth) : begin, last = first + (end - begin) - 1;
    const std::string span = end - begin == 1 ? std::to_string(begin) : std::to_string(begin) + "-" + std::to_string(end - 1);
    const std::string blocks = std::string(single ? "single " : "double ") + std::to_string(first) +
                               (last > first ? "-" + std::to_string(last) : "");
    const std::string fb = r.fallback.empty() ? "-" : policy.fallback ? "dense" : "off";
    std::printf("%-8s %-12s %-6s %-6s %-9s %s\n", span.c_str(), blocks.c_str(), fixed(r.tile).c_str(),
                fixed(r.flop).c_str(), fb.c_str(), r.runs.c_str());
    begin = end;
  }
  std::vector<std::string> said;  // PARO has a row per layer, and one line per method is enough
  for (const MethodRow& r : rows) {
    if (r.fallback.empty() || std::find(said.begin(), said.end(), r.method) != said.end()) continue;
    said.push_back(r.method);
    std::printf("fallback: %s %s: %s\n", r.method.c_str(), policy.fallback ? "runs dense" : "would run dense",
                r.fallback.c_str());
  }
  return kExitOk;
}

}  // namespace

Command add_backends_command(CLI::App& root) {
  auto o = std::make_shared<BackendsOptions>();
  CLI::App* c = root.add_subcommand(
      "backends", "Which attention method and kernel each transformer layer runs for a model and image size, and why");
  c->add_option("--model", o->paths.model, "diffusers Flux folder, or \"default\" (the embedded model; also when left out)");
  c->add_option("--transformer", o->paths.transformer, "Flux transformer weights; overrides --model's");
  c->add_option("-W,--width", o->width, "Image width in pixels, multiple of 16 (default: the model's)");
  c->add_option("-H,--height", o->height, "Image height in pixels, multiple of 16 (default: the model's)");
  c->add_option("--max-sequence-length", o->max_sequence_length, "T5 tokens (default: the model's)");
  CLI::Option* attention = c->add_option("--attention", o->attention, "Attention method, as for generate")->capture_default_str();
  c->add_option("--attention-config", o->attention_config, "JSON attention policy, as for generate")->excludes(attention);
  c->add_option("--dense-steps", o->dense_steps, "Dense warm-up steps (the table shows the steps after them)");
  c->add_flag("--no-attention-fallback", o->no_fallback, "Show what runs without the automatic dense fallback");
  add_device_options(*c, o->device);
  return {c, [o] { return run_backends(*o); }};
}

}  // namespace app
