// T5 tokenizer: a SentencePiece unigram model (spiece.model) plus T5's id conventions
// (models.md §1.7). Ids are what the slow, sentencepiece-based transformers T5Tokenizer produced
// (BFL's choice): sentencepiece ids, then </s>, truncated so the total including </s> fits
// max_length, padded with <pad> to exactly max_length. No BOS, no attention mask (Flux passes none).
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "base/status.h"

namespace sentencepiece {
class SentencePieceProcessor;
}

namespace te {

class T5Tokenizer {
 public:
  // `path` is spiece.model itself or a directory holding it. A directory with only tokenizer.json is
  // refused: the normaliser we need (the precompiled charsmap) ships in spiece.model.
  static rt::Result<T5Tokenizer> load(const std::string& path);

  // Ids of `text` + </s>, padded with pad_id() to max_length (>= 1). Text that is too long is cut so
  // that </s> is always the last real token, as transformers does with truncation=True.
  std::vector<int64_t> encode(const std::string& text, int max_length) const;

  // Pieces in the SentencePiece model; the T5 embedding can be larger (real T5 adds 100 sentinels).
  int vocab_size() const;
  int64_t pad_id() const { return pad_id_; }
  int64_t eos_id() const { return eos_id_; }
  int64_t unk_id() const { return unk_id_; }

 private:
  // Shared so the tokenizer stays cheap to copy; the processor is immutable after loading.
  std::shared_ptr<const sentencepiece::SentencePieceProcessor> sp_;
  int64_t pad_id_ = 0;
  int64_t eos_id_ = 1;
  int64_t unk_id_ = 2;
};

}  // namespace te
