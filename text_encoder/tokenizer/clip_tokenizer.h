// CLIP tokenizer (byte-level BPE with the "</w>" word-end suffix, models.md §1.8), matching
// transformers 5's CLIPTokenizer. Text preparation is in clip_text.h.
#pragma once
#include <cstdint>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "base/status.h"

namespace te {

class ClipTokenizer {
 public:
  // `dir` holds tokenizer.json (preferred, as transformers does) or vocab.json + merges.txt.
  // Special tokens come from tokenizer_config.json / special_tokens_map.json when present
  // (special_tokens_map.json wins), else the openai defaults: bos <|startoftext|>, eos and pad
  // <|endoftext|>.
  static rt::Result<ClipTokenizer> load(const std::string& dir);

  // BOS + tokens (cut to max_length - 2) + EOS, padded with pad_id() to max_length (>= 2).
  std::vector<int64_t> encode(const std::string& text, int max_length = 77) const;
  // Token ids of `text` alone: no BOS/EOS, no truncation, no padding.
  std::vector<int64_t> tokenize(const std::string& text) const;

  // One past the largest id (vocab plus added tokens).
  int64_t vocab_size() const { return vocab_size_; }
  int64_t bos_id() const { return bos_id_; }
  int64_t eos_id() const { return eos_id_; }
  int64_t pad_id() const { return pad_id_; }

 private:
  void bpe(const std::string& piece, std::vector<int64_t>& out) const;
  rt::Status finish_setup(const std::string& dir);

  std::unordered_map<std::string, int64_t> vocab_;
  std::unordered_map<std::string, int> merge_rank_;  // key "left right", as in merges.txt
  // Tokens matched verbatim in the raw text before normalisation (tokenizers' added vocabulary).
  std::vector<std::pair<std::string, int64_t>> specials_;
  int64_t vocab_size_ = 0;
  int64_t bos_id_ = -1;
  int64_t eos_id_ = -1;
  int64_t pad_id_ = -1;
  int64_t unk_id_ = -1;
};

}  // namespace te
