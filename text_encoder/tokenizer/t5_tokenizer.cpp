#include "text_encoder/tokenizer/t5_tokenizer.h"

#include <sentencepiece_processor.h>

#include <filesystem>

namespace te {
namespace fs = std::filesystem;

namespace {

rt::Result<std::string> find_model_file(const std::string& path) {
  std::error_code ec;
  if (!fs::exists(path, ec)) {
    return rt::Status::error("T5 tokenizer: '" + path +
                             "' does not exist; pass spiece.model or the folder that holds it");
  }
  if (!fs::is_directory(path, ec)) return path;
  const fs::path model = fs::path(path) / "spiece.model";
  if (fs::exists(model, ec)) return model.string();
  if (fs::exists(fs::path(path) / "tokenizer.json", ec)) {
    return rt::Status::error("T5 tokenizer: folder '" + path +
                             "' has tokenizer.json but no spiece.model; ditrun reads the SentencePiece "
                             "model (it carries the normaliser). Download spiece.model from the same "
                             "repository (e.g. the tokenizer_2/ folder of FLUX.1) into this folder");
  }
  return rt::Status::error("T5 tokenizer: no spiece.model in folder '" + path + "'");
}

}  // namespace

rt::Result<T5Tokenizer> T5Tokenizer::load(const std::string& path) {
  RT_ASSIGN(const std::string file, find_model_file(path));
  auto sp = std::make_shared<sentencepiece::SentencePieceProcessor>();
  const auto st = sp->Load(file);
  if (!st.ok()) {
    return rt::Status::error("T5 tokenizer: cannot load SentencePiece model '" + file + "': " +
                             st.ToString() + " (expected a spiece.model protobuf file)");
  }
  T5Tokenizer t;
  t.pad_id_ = sp->pad_id();
  t.eos_id_ = sp->eos_id();
  t.unk_id_ = sp->unk_id();
  // T5 models need both; a model trained without them would silently produce unusable ids.
  if (t.pad_id_ < 0 || t.eos_id_ < 0) {
    return rt::Status::error("T5 tokenizer: '" + file + "' defines no pad or eos piece (pad_id=" +
                             std::to_string(t.pad_id_) + ", eos_id=" + std::to_string(t.eos_id_) +
                             "); T5 models expect <pad>=0 and </s>=1");
  }
  t.sp_ = std::move(sp);
  return t;
}

std::vector<int64_t> T5Tokenizer::encode(const std::string& text, int max_length) const {
  CHECK(max_length >= 1, "T5 max_length must be at least 1 (room for </s>), got ", max_length);
  std::vector<int> pieces;
  const auto st = sp_->Encode(text, &pieces);
  // Encode only fails on an unloaded model, which load() rules out.
  CHECK(st.ok(), "sentencepiece Encode failed: ", st.ToString());
  const size_t keep = std::min(pieces.size(), static_cast<size_t>(max_length - 1));
  std::vector<int64_t> ids(pieces.begin(), pieces.begin() + keep);
  ids.push_back(eos_id_);
  ids.resize(max_length, pad_id_);
  return ids;
}

int T5Tokenizer::vocab_size() const { return sp_->GetPieceSize(); }

}  // namespace te
