// CLIP text tower forward. Ref: transformers 5.24.0 models/clip/modeling_clip.py (CLIPTextEmbeddings,
// CLIPAttention, CLIPMLP, CLIPEncoderLayer, CLIPTextModel); models.md §1.8.
// B batch, T tokens, C hidden, H heads, Dh head dim, F mlp.
#include "text_encoder/clip/model.h"

#include "sparse_attention/attention.h"

namespace te::clip {

static rt::nn::Linear linear(const weights::WeightLoader& w, const std::string& name, int64_t out, int64_t in) {
  return {w.get(name + ".weight", {out, in}), w.get(name + ".bias", {out})};
}

static rt::nn::LayerNorm layer_norm(const weights::WeightLoader& w, const std::string& name, int64_t c, float eps) {
  return {w.get(name + ".weight", {c}), w.get(name + ".bias", {c}), eps};
}

rt::Result<ClipTextEncoder> ClipTextEncoder::load(const weights::WeightLoader& w, const Config& cfg) {
  RT_TRY(cfg.validate());
  ClipTextEncoder m;
  m.cfg_ = cfg;
  RT_ASSIGN(m.act_, cfg.activation());
  const int64_t C = cfg.hidden_size, F = cfg.intermediate_size;
  const float eps = cfg.layer_norm_eps;
  m.token_embedding = w.get("embeddings.token_embedding.weight", {cfg.vocab_size, C});
  m.position_embedding = w.get("embeddings.position_embedding.weight", {cfg.max_position_embeddings, C});
  for (int64_t i = 0; i < cfg.num_hidden_layers; ++i) {
    const weights::WeightLoader l = w.pp("encoder.layers", int(i));
    ClipEncoderLayer layer;
    layer.layer_norm1 = layer_norm(l, "layer_norm1", C, eps);
    layer.self_attn.q_proj = linear(l, "self_attn.q_proj", C, C);
    layer.self_attn.k_proj = linear(l, "self_attn.k_proj", C, C);
    layer.self_attn.v_proj = linear(l, "self_attn.v_proj", C, C);
    layer.self_attn.out_proj = linear(l, "self_attn.out_proj", C, C);
    layer.layer_norm2 = layer_norm(l, "layer_norm2", C, eps);
    layer.mlp.fc1 = linear(l, "mlp.fc1", F, C);
    layer.mlp.fc2 = linear(l, "mlp.fc2", C, F);
    m.layers.push_back(std::move(layer));
  }
  m.final_layer_norm = layer_norm(w, "final_layer_norm", C, eps);
  RT_TRY(w.finish());
  return m;
}

rt::Result<ClipTextEncoder> ClipTextEncoder::from_store(weights::TensorStore store, std::optional<Config> cfg,
                                            const rt::Context* place) {
  const weights::NameMap map = name_map(store);
  RT_ASSIGN(std::shared_ptr<weights::MappedStore> mapped, weights::MappedStore::create(std::move(store), map));
  if (!cfg) {
    RT_ASSIGN(Config inferred, Config::from_checkpoint(*mapped));
    cfg = inferred;
  }
  weights::WeightLoader w(mapped, "clip_text_encoder");
  if (place) w.place(*place);
  return load(w, *cfg);
}

rt::Tensor ClipTextEncoder::layer_forward(const rt::Context& ctx, const ClipEncoderLayer& l, const rt::Tensor& x,
                                          int index) const {
  const int64_t B = x.size(0), T = x.size(1), H = cfg_.num_attention_heads, Dh = cfg_.head_dim();
  const rt::Tensor h = l.layer_norm1(ctx, x);  // [B, T, C]
  sattn::AttentionParams p;
  p.q = l.self_attn.q_proj(ctx, h).view({B, T, H, Dh});
  p.k = l.self_attn.k_proj(ctx, h).view({B, T, H, Dh});
  p.v = l.self_attn.v_proj(ctx, h).view({B, T, H, Dh});
  p.scale = 0.f;  // Dh^-0.5, as CLIPAttention
  p.mask = sattn::MaskKind::Causal;
  p.layer_index = index;
  const rt::Tensor attn = sattn::attention(ctx, p).view({B, T, H * Dh});  // [B, T, C]
  const rt::Tensor x1 = rt::add(ctx, x, l.self_attn.out_proj(ctx, attn));
  rt::Tensor m = l.mlp.fc1(ctx, l.layer_norm2(ctx, x1));  // [B, T, F]
  if (act_ == Activation::QuickGelu) m = rt::quick_gelu(ctx, m);
  else if (act_ == Activation::GeluErf) m = rt::gelu_erf(ctx, m);
  else m = rt::gelu_tanh(ctx, m);
  return rt::add(ctx, x1, l.mlp.fc2(ctx, m));  // [B, T, C]
}

std::vector<int64_t> ClipTextEncoder::eos_positions(const rt::Tensor& input_ids) const {
  const int64_t B = input_ids.size(0), T = input_ids.size(1);
  const std::vector<int64_t> ids = input_ids.to_vector_i64();
  std::vector<int64_t> pos(size_t(B), 0);
  for (int64_t b = 0; b < B; ++b) {
    const int64_t* row = ids.data() + b * T;
    for (int64_t t = 1; t < T; ++t) {
      // The first maximum / the first match, as torch.argmax returns the first of equal values.
      const bool better = cfg_.eos_token_id == 2 ? row[t] > row[pos[size_t(b)]]
                                                 : (row[t] == cfg_.eos_token_id && row[pos[size_t(b)]] != cfg_.eos_token_id);
      if (better) pos[size_t(b)] = t;
    }
  }
  return pos;
}

ClipTextOutput ClipTextEncoder::forward(const rt::Context& ctx, const rt::Tensor& input_ids) const {
  CHECK(input_ids.dtype() == rt::DType::I64 && input_ids.dim() == 2, "CLIP input_ids must be int64 [B, T], got ",
        input_ids.str());
  const int64_t B = input_ids.size(0), T = input_ids.size(1);
  CHECK(T <= cfg_.max_position_embeddings, "CLIP input of ", T, " tokens exceeds max_position_embeddings ",
        cfg_.max_position_embeddings);
  rt::Tensor x = rt::add(ctx, rt::embedding(ctx, rt::to_ctx(ctx, input_ids), token_embedding),  // [B, T, C]
                         position_embedding.slice(0, 0, T));                    // [T, C], positions 0..T-1
  for (size_t i = 0; i < layers.size(); ++i) x = layer_forward(ctx, layers[i], x, int(i));
  ClipTextOutput out;
  out.last_hidden_state = final_layer_norm(ctx, x);  // [B, T, C]
  const std::vector<int64_t> pos = eos_positions(rt::to_host(ctx, input_ids));
  std::vector<rt::Tensor> rows;
  for (int64_t b = 0; b < B; ++b)
    rows.push_back(out.last_hidden_state.select(0, b).slice(0, pos[size_t(b)], pos[size_t(b)] + 1));  // [1, C]
  out.pooler_output = rt::concat(ctx, rows, 0);  // [B, C]
  return out;
}

}  // namespace te::clip
