#include "app/pipeline/batch_generate.h"

namespace app {

std::optional<FluxCond> TextEmbeddingCache::find(const std::string& text, int max_sequence_length) {
  const auto it = entries_.find({text, max_sequence_length});
  if (it == entries_.end()) {
    ++misses_;
    return std::nullopt;
  }
  ++hits_;
  order_.splice(order_.begin(), order_, it->second.second);
  return it->second.first;
}

void TextEmbeddingCache::put(const std::string& text, int max_sequence_length, FluxCond cond) {
  if (capacity_ == 0) return;
  const Key key{text, max_sequence_length};
  if (auto it = entries_.find(key); it != entries_.end()) {
    it->second.first = std::move(cond);
    order_.splice(order_.begin(), order_, it->second.second);
    return;
  }
  order_.push_front(key);
  entries_.emplace(key, std::make_pair(std::move(cond), order_.begin()));
  while (entries_.size() > capacity_) {
    entries_.erase(order_.back());
    order_.pop_back();
  }
}

}  // namespace app
