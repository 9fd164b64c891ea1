// Mirrors diffusers' FluxPipeline.__call__ (pipeline_flux.py): encode_prompt (CLIP pooled + T5),
// prepare_latents (randn on a CPU generator, then 2x2 packing), the flow-matching schedule with the
// resolution-dependent shift, the denoising loop, unpacking, z/scaling + shift, VAE decode.
#include "app/pipeline/flux_pipeline.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <map>
#include <sstream>

#include <nlohmann/json.hpp>

#include "app/pipeline/batch_generate.h"
#include "app/pipeline/components.h"
#include "app/pipeline/denoise.h"
#include "app/pipeline/detect.h"
#include "dit/flux/names.h"
#include "dit/sampling/flow_match.h"
#include "ops.h"
#include "rng.h"
#include "text_encoder/clip/model.h"
#include "text_encoder/t5/model.h"
#include "text_encoder/tokenizer/clip_tokenizer.h"
#include "text_encoder/tokenizer/t5_tokenizer.h"
#include "vae/flux/decoder.h"
#include "vae/flux/names.h"
#include "vae/flux/tiled_decode.h"

namespace app {

struct FluxPipeline::Impl {
  ComponentPaths paths;
  bool offload = false;
  dit::flux::Config transformer_config;
  vae::flux::Config vae_config;
  te::t5::Config t5_config;
  te::clip::Config clip_config;
  // Resident components; all empty with offload, where generate() loads each for its stage.
  std::optional<dit::flux::FluxTransformer> transformer;
  std::optional<vae::flux::Decoder> vae;
  std::optional<te::t5::T5Encoder> t5;
  std::optional<te::clip::ClipTextEncoder> clip;
  std::optional<te::T5Tokenizer> t5_tokenizer;
  std::optional<te::ClipTokenizer> clip_tokenizer;
  dit::sampling::SchedulerConfig scheduler;
  int clip_max_length = 77;
  ModelDefaults defaults;
  LoadReport report;
};

FluxPipeline::FluxPipeline() : impl_(std::make_unique<Impl>()) {}
FluxPipeline::~FluxPipeline() = default;

using Clock = std::chrono::steady_clock;
using Mapped = std::shared_ptr<weights::MappedStore>;

static double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

// Opens a component's weights and checks they belong to the expected family before mapping names.
static rt::Result<weights::TensorStore> open_component(const std::string& path, Family family, const std::string& flag) {
  RT_ASSIGN(weights::TensorStore store, weights::TensorStore::open(path));
  RT_TRY(expect_family(store, family, flag));
  return store;
}

static rt::Result<Mapped> map_transformer(const ComponentPaths& p) {
  RT_ASSIGN(weights::TensorStore store, open_component(p.transformer, Family::FluxTransformer, "--transformer"));
  return dit::flux::map_flux_checkpoint(std::move(store));
}

static rt::Result<Mapped> map_vae(const ComponentPaths& p) {
  RT_ASSIGN(weights::TensorStore store, open_component(p.vae, Family::FluxVAE, "--vae"));
  return vae::flux::map_vae_store(std::move(store));
}

static rt::Result<Mapped> map_t5(const ComponentPaths& p) {
  RT_ASSIGN(weights::TensorStore store, open_component(p.t5, Family::T5Encoder, "--t5"));
  return weights::MappedStore::create(store, te::t5::name_map(store));
}

static rt::Result<Mapped> map_clip(const ComponentPaths& p) {
  RT_ASSIGN(weights::TensorStore store, open_component(p.clip, Family::ClipTextEncoder, "--clip"));
  return weights::MappedStore::create(store, te::clip::name_map(store));
}

// What each model's load() checks of its config before reading any tensor, so a folder that would
// fail there fails in load() with offload too.
static rt::Status check_config(const dit::flux::Config& c) { return c.validate(); }
static rt::Status check_config(const vae::flux::Config& c) { return c.validate(); }
static rt::Status check_config(const te::t5::Config& c) {
  RT_TRY(c.validate());
  return c.activation().status();
}
static rt::Status check_config(const te::clip::Config& c) {
  RT_TRY(c.validate());
  return c.activation().status();
}

// Builds the model from `mapped` on ctx's device; `report` gets what was placed and the time since
// `start` with the device's queue drained (uploads and casts run asynchronously).
template <class Model, class Config>
static rt::Result<Model> place(const rt::Context& ctx, const Mapped& mapped, const char* name, const Config& cfg,
                               Clock::time_point start, ComponentLoad* report) {
  weights::WeightLoader w(mapped, name);
  w.place(ctx);
  RT_ASSIGN(Model model, Model::load(w, cfg));
  rt::synchronize(ctx);
  *report = {name, w.loaded_numel(), w.loaded_bytes(), ctx.dtype(), ctx.device(), seconds_since(start)};
  const weights::WeightLoader::LoadStats s = w.load_stats();
  report->read_bytes = s.source_bytes;
  report->host_seconds = s.host_seconds;
  report->wait_seconds = s.wait_seconds;
  return model;
}

// load(): opens the component and builds and checks its config; places it unless offloading.
template <class Model, class Config>
static rt::Status open_and_place(const rt::Context& ctx, FluxPipeline::Impl& m, const char* name,
                                 rt::Result<Mapped> (*map)(const ComponentPaths&),
                                 rt::Result<Config> (*configure)(const weights::MappedStore&, const std::string&),
                                 const std::string& config_json, Config* cfg, std::optional<Model>* resident) {
  const auto start = Clock::now();
  RT_ASSIGN(Mapped mapped, map(m.paths));
  RT_ASSIGN(*cfg, configure(*mapped, config_json));
  RT_TRY(check_config(*cfg));
  if (m.offload) return rt::Status::ok();
  ComponentLoad r;
  RT_ASSIGN(*resident, place<Model>(ctx, mapped, name, *cfg, start, &r));
  m.report.components.push_back(std::move(r));
  return rt::Status::ok();
}

// generate() with offload: the component for one stage, loaded from the paths load() checked.
template <class Model, class Config>
static rt::Result<Model> load_for_stage(const rt::Context& ctx, const FluxPipeline::Impl& m, const char* name,
                                        rt::Result<Mapped> (*map)(const ComponentPaths&), const Config& cfg,
                                        const LoadFn& on_load) {
  const auto start = Clock::now();
  RT_ASSIGN(Mapped mapped, map(m.paths));
  ComponentLoad r;
  RT_ASSIGN(Model model, place<Model>(ctx, mapped, name, cfg, start, &r));
  if (on_load) on_load(r);
  return model;
}

template <class T>
static const T& resident_or(const std::optional<T>& resident, const std::optional<T>& loaded) {
  return loaded ? *loaded : *resident;
}

template <class T>
static rt::Status read_number(const std::string& path, const nlohmann::json& j, const char* key, T* out) {
  const auto it = j.find(key);
  if (it == j.end()) return rt::Status::ok();
  if (!it->is_number()) return rt::Status::error(path + ": \"" + key + "\" must be a number, not " + it->dump());
  *out = it->get<T>();
  return rt::Status::ok();
}

static rt::Status read_defaults(const std::string& path, ModelDefaults* d) {
  RT_ASSIGN(nlohmann::json j, read_json(path));
  if (!j.is_object()) return rt::Status::error(path + ": expected a JSON object of defaults, not " + j.dump());
  RT_TRY(read_number(path, j, "width", &d->width));
  RT_TRY(read_number(path, j, "height", &d->height));
  RT_TRY(read_number(path, j, "steps", &d->steps));
  RT_TRY(read_number(path, j, "max_sequence_length", &d->max_sequence_length));
  RT_TRY(read_number(path, j, "guidance", &d->guidance));
  RT_TRY(read_number(path, j, "true_cfg", &d->true_cfg));
  if (!(d->true_cfg >= 1.f && std::isfinite(d->true_cfg)))
    return rt::Status::error(path + ": \"true_cfg\" " + j["true_cfg"].dump() + " must be >= 1 (1 disables true CFG)");
  if (const auto it = j.find("negative_prompt"); it != j.end() && !it->is_null()) {
    if (!it->is_string())
      return rt::Status::error(path + ": \"negative_prompt\" must be a string (\"\" for the unconditional branch) or null, not " +
                               it->dump());
    d->negative_prompt = it->get<std::string>();
  }
  return rt::Status::ok();
}

rt::Result<std::shared_ptr<FluxPipeline>> FluxPipeline::load(const rt::Context& ctx, const ComponentPaths& paths,
                                                             const LoadOptions& options) {
  const auto start = Clock::now();
  std::shared_ptr<FluxPipeline> pipe(new FluxPipeline());
  Impl& m = *pipe->impl_;
  m.paths = paths;
  m.offload = options.offload;
  RT_TRY((open_and_place<dit::flux::FluxTransformer>(ctx, m, "transformer", map_transformer, flux_transformer_config,
                                                     paths.transformer_config, &m.transformer_config, &m.transformer)));
  RT_TRY((open_and_place<vae::flux::Decoder>(ctx, m, "vae", map_vae, flux_vae_config, paths.vae_config, &m.vae_config, &m.vae)));
  RT_TRY((open_and_place<te::t5::T5Encoder>(ctx, m, "t5_encoder", map_t5, t5_config, paths.t5_config, &m.t5_config, &m.t5)));
  RT_TRY((open_and_place<te::clip::ClipTextEncoder>(ctx, m, "clip_text_encoder", map_clip, clip_config, paths.clip_config,
                                                    &m.clip_config, &m.clip)));
  m.clip_max_length = int(m.clip_config.max_position_embeddings);
  RT_ASSIGN(m.t5_tokenizer, te::T5Tokenizer::load(paths.t5_tokenizer));
  RT_ASSIGN(m.clip_tokenizer, te::ClipTokenizer::load(paths.clip_tokenizer));
  if (!paths.scheduler_config.empty()) {
    RT_ASSIGN(nlohmann::json json, read_json(paths.scheduler_config));
    RT_ASSIGN(m.scheduler, dit::sampling::SchedulerConfig::from_json(json));
  } else {
    m.scheduler = pipe->has_guidance() ? dit::sampling::SchedulerConfig::flux_dev() : dit::sampling::SchedulerConfig::flux_schnell();
  }
  if (!pipe->has_guidance()) {
    m.defaults.steps = 4;
    m.defaults.max_sequence_length = 256;
  }
  if (!paths.defaults.empty()) RT_TRY(read_defaults(paths.defaults, &m.defaults));
  const int64_t txt_dim = m.transformer_config.context_dim;
  if (m.t5_config.d_model != txt_dim)
    return rt::Status::error("T5 encoder width " + std::to_string(m.t5_config.d_model) +
                             " does not match the transformer's context width " + std::to_string(txt_dim) +
                             "; the --t5 weights belong to another model");
  const int64_t pooled_dim = m.transformer_config.pooled_dim;
  if (m.clip_config.hidden_size != pooled_dim)
    return rt::Status::error("CLIP width " + std::to_string(m.clip_config.hidden_size) +
                             " does not match the transformer's pooled width " + std::to_string(pooled_dim) +
                             "; the --clip weights belong to another model");
  if (m.vae_config.latent_channels * 4 != m.transformer_config.in_channels)
    return rt::Status::error("VAE latent channels " + std::to_string(m.vae_config.latent_channels) +
                             " do not match the transformer's input (" + std::to_string(m.transformer_config.in_channels) +
                             " = 4 x latent channels expected); the --vae weights belong to another model");
  m.report.seconds = seconds_since(start);
  return pipe;
}

// "loaded transformer: 11.90 B params, 23.80 GB bf16 on cuda:0 in 1.20 s, 19.83 GB/s (host reads and
// converts 23.80 GB in 0.95 s, 25.05 GB/s; waits for copies 0.15 s)"
std::string describe_load(const ComponentLoad& c) {
  char buf[512];
  const double params = double(c.params), bytes = double(c.bytes);
  auto gbps = [](double b, double s) { return s > 0 ? b / s / 1e9 : 0.0; };
  int n = std::snprintf(buf, sizeof buf, "loaded %s: %.*f %s params, %.*f %s %s on %s in %.2f s, %.2f GB/s", c.name.c_str(),
                        params >= 1e9 ? 2 : 1, params >= 1e9 ? params / 1e9 : params / 1e6, params >= 1e9 ? "B" : "M",
                        bytes >= 1e9 ? 2 : 1, bytes >= 1e9 ? bytes / 1e9 : bytes / 1e6, bytes >= 1e9 ? "GB" : "MB",
                        rt::dtype_name(c.dtype), rt::device_str(c.device).c_str(), c.seconds, gbps(bytes, c.seconds));
  if (c.read_bytes > 0 && n > 0 && size_t(n) < sizeof buf) {
    n += std::snprintf(buf + n, sizeof buf - size_t(n), " (host reads and converts %.2f GB in %.2f s, %.2f GB/s",
                       double(c.read_bytes) / 1e9, c.host_seconds, gbps(double(c.read_bytes), c.host_seconds));
    if (c.device.is_cuda() && size_t(n) < sizeof buf)
      n += std::snprintf(buf + n, sizeof buf - size_t(n), "; waits for copies %.2f s", c.wait_seconds);
    if (size_t(n) < sizeof buf) std::snprintf(buf + n, sizeof buf - size_t(n), ")");
  }
  return buf;
}

bool FluxPipeline::has_guidance() const { return impl_->transformer_config.guidance_embed; }

const ModelDefaults& FluxPipeline::defaults() const { return impl_->defaults; }

const LoadReport& FluxPipeline::load_report() const { return impl_->report; }

bool FluxPipeline::offload() const { return impl_->offload; }

GenerateParams FluxPipeline::with_defaults(GenerateParams p) const {
  const ModelDefaults& d = impl_->defaults;
  if (p.width <= 0) p.width = d.width;
  if (p.height <= 0) p.height = d.height;
  if (p.steps <= 0) p.steps = d.steps;
  if (p.max_sequence_length <= 0) p.max_sequence_length = d.max_sequence_length;
  if (p.guidance < 0) p.guidance = d.guidance;
  // Each of the pair falls back on its own: --negative-prompt alone takes the model's scale, --true-cfg
  // alone the model's negative prompt, and --true-cfg 1 turns CFG off whatever the model says.
  if (!p.true_cfg) p.true_cfg = d.true_cfg;
  if (!p.negative_prompt) p.negative_prompt = d.negative_prompt;
  return p;
}

std::string FluxPipeline::describe() const {
  std::ostringstream os;
  os << "Flux " << (has_guidance() ? "(guidance-distilled, dev-like)" : "(no guidance embedding, schnell-like)") << ": "
     << impl_->transformer_config.str();
  return os.str();
}

const dit::flux::Config& FluxPipeline::transformer_config() const { return impl_->transformer_config; }

// With offload, the stage's component was a local of the stage's scope and is gone: wait for the
// device so its memory is back in the pool before the next component loads.
static void after_stage(const rt::Context& ctx, const FluxPipeline::Impl& m) {
  if (m.offload) rt::synchronize(ctx);
}

// One image is a batch of one: the same encode, noise, denoise and decode as generate_batch (no text cache).
rt::Result<rt::Tensor> FluxPipeline::generate(const rt::Context& ctx, const GenerateParams& p, const ProgressFn& progress,
                                              const LoadFn& on_load) const {
  RT_ASSIGN(std::vector<rt::Tensor> images, generate_batch(ctx, p, {BatchImage{p.prompt, p.seed}}, nullptr, progress, on_load));
  return images.front();
}

}  // namespace app

namespace app {

// The conditionings of `texts` from one forward of each encoder on all of them ([k, T] token ids).
static std::vector<FluxCond> encode_prompts(const rt::Context& ctx, const FluxPipeline::Impl& m, const te::t5::T5Encoder& t5,
                                            const te::clip::ClipTextEncoder& clip, const std::vector<std::string>& texts,
                                            int max_seq) {
  const int64_t k = int64_t(texts.size());
  std::vector<int64_t> clip_ids, t5_ids;
  for (const std::string& t : texts) {
    const std::vector<int64_t> c = m.clip_tokenizer->encode(t, m.clip_max_length), f = m.t5_tokenizer->encode(t, max_seq);
    clip_ids.insert(clip_ids.end(), c.begin(), c.end());
    t5_ids.insert(t5_ids.end(), f.begin(), f.end());
  }
  const rt::Tensor y = clip.forward(ctx, rt::Tensor::from_vector_i64(clip_ids, {k, int64_t(m.clip_max_length)})).pooler_output;
  const rt::Tensor txt = t5.forward(ctx, rt::Tensor::from_vector_i64(t5_ids, {k, int64_t(max_seq)}));
  std::vector<FluxCond> rows(texts.size());
  for (int64_t i = 0; i < k; ++i) {
    rows[size_t(i)].y = rt::contiguous(ctx, y.slice(0, i, i + 1));
    rows[size_t(i)].txt = rt::contiguous(ctx, txt.slice(0, i, i + 1));
    rows[size_t(i)].txt_ids = text_ids(txt.size(1));
  }
  return rows;
}

// The rows of `conds` stacked along the batch dimension.
static FluxCond stack_conds(const rt::Context& ctx, const std::vector<const FluxCond*>& conds) {
  std::vector<rt::Tensor> txt, y;
  for (const FluxCond* c : conds) {
    txt.push_back(c->txt);
    y.push_back(c->y);
  }
  return {rt::concat(ctx, txt, 0), rt::concat(ctx, y, 0), conds.front()->txt_ids};
}

rt::Result<std::vector<rt::Tensor>> FluxPipeline::generate_batch(const rt::Context& ctx, const GenerateParams& p,
                                                                 const std::vector<BatchImage>& images,
                                                                 TextEmbeddingCache* cache, const ProgressFn& progress,
                                                                 const LoadFn& on_load) const {
  CHECK(!images.empty(), "generate_batch: no images");
  const Impl& m = *impl_;
  const int64_t B = int64_t(images.size());
  const int64_t factor = int64_t(1) << (m.vae_config.num_up_blocks() - 1);
  const int64_t lh = 2 * (p.height / (factor * 2)), lw = 2 * (p.width / (factor * 2));
  if (lh == 0 || lw == 0)
    return rt::Status::error("image " + std::to_string(p.width) + "x" + std::to_string(p.height) + " is too small for this model (minimum " +
                             std::to_string(factor * 2) + " pixels per side)");
  const bool true_cfg = p.runs_true_cfg();
  TextEmbeddingCache no_cache(0);
  TextEmbeddingCache& texts = cache ? *cache : no_cache;

  progress("encode", 0, 1);
  std::map<std::string, FluxCond> conds;  // every text of this pass, so the cache may drop entries meanwhile
  std::vector<std::string> missing;
  auto want = [&](const std::string& t) {
    if (conds.count(t) || std::find(missing.begin(), missing.end(), t) != missing.end()) return;
    if (auto hit = texts.find(t, p.max_sequence_length)) conds[t] = *hit;
    else missing.push_back(t);
  };
  for (const BatchImage& im : images) want(im.prompt);
  if (true_cfg) want(*p.negative_prompt);
  if (!missing.empty()) {
    std::optional<te::t5::T5Encoder> t5;
    std::optional<te::clip::ClipTextEncoder> clip;
    if (m.offload) {
      RT_ASSIGN(t5, (load_for_stage<te::t5::T5Encoder>(ctx, m, "t5_encoder", map_t5, m.t5_config, on_load)));
      RT_ASSIGN(clip, (load_for_stage<te::clip::ClipTextEncoder>(ctx, m, "clip_text_encoder", map_clip, m.clip_config, on_load)));
    }
    std::vector<FluxCond> rows =
        encode_prompts(ctx, m, resident_or(m.t5, t5), resident_or(m.clip, clip), missing, p.max_sequence_length);
    for (size_t i = 0; i < missing.size(); ++i) {
      texts.put(missing[i], p.max_sequence_length, rows[i]);
      conds[missing[i]] = std::move(rows[i]);
    }
  }
  after_stage(ctx, m);
  progress("encode", 1, 1);
  std::vector<const FluxCond*> pos_rows, neg_rows;
  for (const BatchImage& im : images) {
    pos_rows.push_back(&conds.at(im.prompt));
    if (true_cfg) neg_rows.push_back(&conds.at(*p.negative_prompt));
  }
  FluxCond cond = stack_conds(ctx, pos_rows), neg;
  if (true_cfg) neg = stack_conds(ctx, neg_rows);
  conds.clear();

  // Each image's noise from its own generator: the noise of that seed alone ([1, C, h, w]).
  const int64_t c = m.transformer_config.in_channels / 4;
  std::vector<rt::Tensor> noise;
  for (const BatchImage& im : images)
    noise.push_back(rt::to_device(ctx, rt::TorchGenerator(im.seed).randn({1, c, lh, lw}), ctx.device(), rt::DType::F32));
  rt::Tensor latents = pack_latents(ctx, B == 1 ? noise[0] : rt::concat(ctx, noise, 0));  // [B, N, 4C] f32
  noise.clear();
  const rt::Tensor img_ids = latent_image_ids(lh / 2, lw / 2);
  {
    std::optional<dit::flux::FluxTransformer> transformer;
    if (m.offload) {
      RT_ASSIGN(transformer, (load_for_stage<dit::flux::FluxTransformer>(ctx, m, "transformer", map_transformer,
                                                                         m.transformer_config, on_load)));
    }
    const auto schedule = dit::sampling::flux_schedule(p.steps, latents.size(1), m.scheduler);
    DenoiseOptions opt;
    opt.cuda_graph = p.cuda_graph;
    opt.attention = p.attention;
    if (has_guidance()) opt.guidance = p.guidance;
    if (true_cfg) {
      opt.negative = &neg;
      opt.true_cfg_scale = *p.true_cfg;
    }
    progress("denoise", 0, schedule.steps());
    opt.progress = [&](int i, int n) { progress("denoise", i, n); };
    latents = denoise(ctx, resident_or(m.transformer, transformer), latents, cond, img_ids, schedule, opt);
  }
  cond = neg = FluxCond();
  after_stage(ctx, m);

  progress("decode", 0, 1);
  std::optional<vae::flux::Decoder> vae;
  if (m.offload) {
    RT_ASSIGN(vae, (load_for_stage<vae::flux::Decoder>(ctx, m, "vae", map_vae, m.vae_config, on_load)));
  }
  const auto& decoder = resident_or(m.vae, vae);
  const rt::Tensor z = vae::flux::unscale_latents(ctx, unpack_latents(ctx, latents, lh, lw), m.vae_config);
  const rt::Tensor decoded = rt::to_host(ctx, p.vae_tile > 0 ? vae::flux::decode_tiled(ctx, decoder, z, p.vae_tile)
                                                             : decoder.forward(ctx, z));  // [B, 3, H, W] f32
  progress("decode", 1, 1);
  std::vector<rt::Tensor> out;
  for (int64_t i = 0; i < B; ++i) out.push_back(decoded.select(0, i).contiguous());
  return out;
}

}  // namespace app
