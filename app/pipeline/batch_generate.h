// Batched generation (`ditrun batch`): several images of one setting (size, steps, guidance, negative
// prompt, attention) that differ only in prompt and seed run as one pass with batch dimension B through
// the text encoders, the transformer's denoising steps and the VAE (FluxPipeline::generate_batch), and
// text conditionings are kept across passes so a prompt repeated over seeds or groups encodes once.
#pragma once
#include <cstdint>
#include <list>
#include <map>
#include <optional>
#include <string>
#include <utility>

#include "app/pipeline/denoise.h"

namespace app {

// One image of a batched pass.
struct BatchImage {
  std::string prompt;
  uint64_t seed = 0;
};

// Conditionings ([1, T, D] T5 sequence and [1, D_pool] CLIP vector) by (text, T5 length), on the
// device they were computed on; beyond `capacity` entries the least recently used one is dropped
// (a Flux-dev T5 sequence is 4 MiB in bf16, so thousands of prompts cannot all stay).
class TextEmbeddingCache {
 public:
  explicit TextEmbeddingCache(size_t capacity = 64) : capacity_(capacity) {}

  std::optional<FluxCond> find(const std::string& text, int max_sequence_length);
  void put(const std::string& text, int max_sequence_length, FluxCond cond);

  size_t size() const { return entries_.size(); }
  int64_t hits() const { return hits_; }
  int64_t misses() const { return misses_; }

 private:
  using Key = std::pair<std::string, int>;
  size_t capacity_;
  std::list<Key> order_;  // most recently used first
  std::map<Key, std::pair<FluxCond, std::list<Key>::iterator>> entries_;
  int64_t hits_ = 0, misses_ = 0;
};

}  // namespace app
