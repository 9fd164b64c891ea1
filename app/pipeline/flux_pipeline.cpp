// Mirrors diffusers' FluxPipeline.__call__ (pipeline_flux.py): encode_prompt (CLIP pooled + T5),
// prepare_latents (randn on a CPU generator, then 2x2 packing), the flow-matching schedule with the
// resolution-dependent shift, the denoising loop, unpacking, z/scaling + shift, VAE decode.
#include "app/pipeline/flux_pipeline.h"

#include <sstream>

#include <nlohmann/json.hpp>

#include "app/pipeline/components.h"
#include "app/pipeline/denoise.h"
#include "app/pipeline/detect.h"
#include "dit/flux/names.h"
#include "dit/sampling/flow_match.h"
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
  std::optional<dit::flux::FluxTransformer> transformer;
  std::optional<vae::flux::Decoder> vae;
  vae::flux::Config vae_config;
  std::optional<te::t5::T5Encoder> t5;
  std::optional<te::clip::ClipTextEncoder> clip;
  std::optional<te::T5Tokenizer> t5_tokenizer;
  std::optional<te::ClipTokenizer> clip_tokenizer;
  dit::sampling::SchedulerConfig scheduler;
  int clip_max_length = 77;
  ModelDefaults defaults;
};

FluxPipeline::FluxPipeline() : impl_(std::make_unique<Impl>()) {}
FluxPipeline::~FluxPipeline() = default;

// Opens a component's weights and checks they belong to the expected family before mapping names.
static rt::Result<weights::TensorStore> open_component(const std::string& path, Family family, const std::string& flag) {
  RT_ASSIGN(weights::TensorStore store, weights::TensorStore::open(path));
  RT_TRY(expect_family(store, family, flag));
  return store;
}

static rt::Status load_transformer(const rt::Context& ctx, FluxPipeline::Impl& m, const ComponentPaths& p) {
  RT_ASSIGN(weights::TensorStore store, open_component(p.transformer, Family::FluxTransformer, "--transformer"));
  RT_ASSIGN(auto mapped, dit::flux::map_flux_checkpoint(std::move(store)));
  RT_ASSIGN(dit::flux::Config cfg, flux_transformer_config(*mapped, p.transformer_config));
  RT_ASSIGN(m.transformer, dit::flux::FluxTransformer::load(weights::WeightLoader(mapped, "transformer").place(ctx), cfg));
  return rt::Status::ok();
}

static rt::Status load_vae(const rt::Context& ctx, FluxPipeline::Impl& m, const ComponentPaths& p) {
  RT_ASSIGN(weights::TensorStore store, open_component(p.vae, Family::FluxVAE, "--vae"));
  RT_ASSIGN(auto mapped, vae::flux::map_vae_store(std::move(store)));
  RT_ASSIGN(m.vae_config, flux_vae_config(*mapped, p.vae_config));
  RT_ASSIGN(m.vae, vae::flux::Decoder::load(weights::WeightLoader(mapped, "vae").place(ctx), m.vae_config));
  return rt::Status::ok();
}

static rt::Status load_text_encoders(const rt::Context& ctx, FluxPipeline::Impl& m, const ComponentPaths& p) {
  {
    RT_ASSIGN(weights::TensorStore store, open_component(p.t5, Family::T5Encoder, "--t5"));
    RT_ASSIGN(auto mapped, weights::MappedStore::create(store, te::t5::name_map(store)));
    RT_ASSIGN(te::t5::Config cfg, t5_config(*mapped, p.t5_config));
    RT_ASSIGN(m.t5, te::t5::T5Encoder::load(weights::WeightLoader(mapped, "t5_encoder").place(ctx), cfg));
  }
  {
    RT_ASSIGN(weights::TensorStore store, open_component(p.clip, Family::ClipTextEncoder, "--clip"));
    RT_ASSIGN(auto mapped, weights::MappedStore::create(store, te::clip::name_map(store)));
    RT_ASSIGN(te::clip::Config cfg, clip_config(*mapped, p.clip_config));
    RT_ASSIGN(m.clip, te::clip::ClipTextEncoder::load(weights::WeightLoader(mapped, "clip_text_encoder").place(ctx), cfg));
    m.clip_max_length = int(cfg.max_position_embeddings);
  }
  RT_ASSIGN(m.t5_tokenizer, te::T5Tokenizer::load(p.t5_tokenizer));
  RT_ASSIGN(m.clip_tokenizer, te::ClipTokenizer::load(p.clip_tokenizer));
  return rt::Status::ok();
}

static rt::Status read_defaults(const std::string& path, ModelDefaults* d) {
  RT_ASSIGN(nlohmann::json j, read_json(path));
  try {
    d->width = j.value("width", d->width);
    d->height = j.value("height", d->height);
    d->steps = j.value("steps", d->steps);
    d->max_sequence_length = j.value("max_sequence_length", d->max_sequence_length);
    d->guidance = j.value("guidance", d->guidance);
  } catch (const std::exception& e) {
    return rt::Status::error(path + ": " + e.what() + " (expected numbers for width, height, steps, max_sequence_length, guidance)");
  }
  return rt::Status::ok();
}

rt::Result<std::shared_ptr<FluxPipeline>> FluxPipeline::load(const rt::Context& ctx, const ComponentPaths& paths) {
  std::shared_ptr<FluxPipeline> pipe(new FluxPipeline());
  Impl& m = *pipe->impl_;
  RT_TRY(load_transformer(ctx, m, paths));
  RT_TRY(load_vae(ctx, m, paths));
  RT_TRY(load_text_encoders(ctx, m, paths));
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
  const int64_t txt_dim = m.transformer->config().context_dim;
  if (m.t5->config().d_model != txt_dim)
    return rt::Status::error("T5 encoder width " + std::to_string(m.t5->config().d_model) +
                             " does not match the transformer's context width " + std::to_string(txt_dim) +
                             "; the --t5 weights belong to another model");
  const int64_t pooled_dim = m.transformer->config().pooled_dim;
  if (m.clip->config().hidden_size != pooled_dim)
    return rt::Status::error("CLIP width " + std::to_string(m.clip->config().hidden_size) +
                             " does not match the transformer's pooled width " + std::to_string(pooled_dim) +
                             "; the --clip weights belong to another model");
  if (m.vae_config.latent_channels * 4 != m.transformer->config().in_channels)
    return rt::Status::error("VAE latent channels " + std::to_string(m.vae_config.latent_channels) +
                             " do not match the transformer's input (" + std::to_string(m.transformer->config().in_channels) +
                             " = 4 x latent channels expected); the --vae weights belong to another model");
  return pipe;
}

bool FluxPipeline::has_guidance() const { return impl_->transformer->config().guidance_embed; }

const ModelDefaults& FluxPipeline::defaults() const { return impl_->defaults; }

GenerateParams FluxPipeline::with_defaults(GenerateParams p) const {
  const ModelDefaults& d = impl_->defaults;
  if (p.width <= 0) p.width = d.width;
  if (p.height <= 0) p.height = d.height;
  if (p.steps <= 0) p.steps = d.steps;
  if (p.max_sequence_length <= 0) p.max_sequence_length = d.max_sequence_length;
  if (p.guidance < 0) p.guidance = d.guidance;
  return p;
}

std::string FluxPipeline::describe() const {
  std::ostringstream os;
  os << "Flux " << (has_guidance() ? "(guidance-distilled, dev-like)" : "(no guidance embedding, schnell-like)") << ": "
     << impl_->transformer->config().str();
  return os.str();
}

static rt::Tensor ids_tensor(const std::vector<int64_t>& ids) {
  return rt::Tensor::from_vector_i64(ids, {1, int64_t(ids.size())});
}

static FluxCond encode_prompt(const rt::Context& ctx, const FluxPipeline::Impl& m, const std::string& prompt, int max_seq) {
  FluxCond c;
  c.y = m.clip->forward(ctx, ids_tensor(m.clip_tokenizer->encode(prompt, m.clip_max_length))).pooler_output;
  c.txt = m.t5->forward(ctx, ids_tensor(m.t5_tokenizer->encode(prompt, max_seq)));
  c.txt_ids = text_ids(c.txt.size(1));
  return c;
}

rt::Result<rt::Tensor> FluxPipeline::generate(const rt::Context& ctx, const GenerateParams& p, const ProgressFn& progress) const {
  const Impl& m = *impl_;
  // diffusers: vae_scale_factor = 2^(len(block_out_channels) - 1); latents are 2·⌊H / (2·factor)⌋ high.
  const int64_t factor = int64_t(1) << (m.vae_config.num_up_blocks() - 1);
  const int64_t lh = 2 * (p.height / (factor * 2)), lw = 2 * (p.width / (factor * 2));
  if (lh == 0 || lw == 0)
    return rt::Status::error("image " + std::to_string(p.width) + "x" + std::to_string(p.height) + " is too small for this model (minimum " +
                             std::to_string(factor * 2) + " pixels per side)");
  progress("encode", 0, 1);
  const FluxCond cond = encode_prompt(ctx, m, p.prompt, p.max_sequence_length);
  const bool true_cfg = p.true_cfg > 1.f && !p.negative_prompt.empty();
  FluxCond neg;
  if (true_cfg) neg = encode_prompt(ctx, m, p.negative_prompt, p.max_sequence_length);
  progress("encode", 1, 1);

  const int64_t c = m.transformer->config().in_channels / 4;
  rt::TorchGenerator gen(p.seed);
  const rt::Tensor noise = gen.randn({1, c, lh, lw});
  rt::Tensor latents = pack_latents(ctx, rt::to_device(ctx, noise, ctx.device(), rt::DType::F32));  // f32 between steps
  const rt::Tensor img_ids = latent_image_ids(lh / 2, lw / 2);
  const auto schedule = dit::sampling::flux_schedule(p.steps, latents.size(1), m.scheduler);

  DenoiseOptions opt;
  if (has_guidance()) opt.guidance = p.guidance;
  if (true_cfg) {
    opt.negative = &neg;
    opt.true_cfg_scale = p.true_cfg;
  }
  progress("denoise", 0, schedule.steps());
  opt.progress = [&](int i, int n) { progress("denoise", i, n); };
  latents = denoise(ctx, *m.transformer, latents, cond, img_ids, schedule, opt);

  progress("decode", 0, 1);
  const rt::Tensor z = vae::flux::unscale_latents(ctx, unpack_latents(ctx, latents, lh, lw), m.vae_config);
  const rt::Tensor decoded = p.vae_tile > 0 ? vae::flux::decode_tiled(ctx, *m.vae, z, p.vae_tile) : m.vae->forward(ctx, z);
  const rt::Tensor image = rt::to_host(ctx, decoded);  // [1, 3, H, W] f32 on the host
  progress("decode", 1, 1);
  return image.select(0, 0).contiguous();
}

}  // namespace app
