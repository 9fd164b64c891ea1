#include "text_encoder/tokenizer/clip_tokenizer.h"

#include <climits>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "text_encoder/tokenizer/clip_text.h"

namespace te {
namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

// Built with += rather than "'" + path.string(): GCC 12 warns falsely (-Wrestrict) on the latter.
std::string in_quotes(const fs::path& p) {
  std::string s(1, '\'');
  s += p.string();
  s += '\'';
  return s;
}

rt::Status fail(const std::string& msg) { return rt::Status::error("CLIP tokenizer: " + msg); }

rt::Result<json> read_json(const fs::path& path) {
  std::ifstream f(path);
  if (!f) return fail("cannot open " + in_quotes(path));
  try {
    return json::parse(f);
  } catch (const json::exception& e) {
    return fail(in_quotes(path) + " is not valid JSON: " + e.what());
  }
}

// Special tokens are written either as plain strings or as AddedToken objects {"content": ...}.
std::string token_text(const json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_object() && v.contains("content") && v["content"].is_string()) return v["content"].get<std::string>();
  return "";
}

rt::Status parse_merge_line(const std::string& line, const std::string& where,
                            std::vector<std::pair<std::string, std::string>>& merges) {
  const size_t sp = line.find(' ');
  if (sp == std::string::npos || sp == 0 || sp + 1 >= line.size() || line.find(' ', sp + 1) != std::string::npos) {
    return fail(where + ": merge '" + line + "' is not two tokens separated by one space");
  }
  merges.emplace_back(line.substr(0, sp), line.substr(sp + 1));
  return rt::Status::ok();
}

struct Files {
  std::unordered_map<std::string, int64_t> vocab;
  std::vector<std::pair<std::string, std::string>> merges;
  std::vector<std::pair<std::string, int64_t>> added;
};

rt::Result<Files> load_tokenizer_json(const fs::path& path) {
  RT_ASSIGN(const json j, read_json(path));
  const std::string where = in_quotes(path);
  if (!j.contains("model") || !j["model"].is_object()) return fail(where + " has no \"model\" object");
  const json& model = j["model"];
  if (model.contains("type") && model["type"] != "BPE") {
    return fail(where + " holds a " + model["type"].dump() + " model; CLIP needs \"BPE\"");
  }
  // CLIP marks word ends with "</w>"; a GPT-2 style BPE without it would tokenise differently.
  if (!model.contains("end_of_word_suffix") || model["end_of_word_suffix"] != "</w>") {
    return fail(where + ": model.end_of_word_suffix is not \"</w>\"; this is not a CLIP tokenizer");
  }
  if (!model.contains("vocab") || !model["vocab"].is_object() || !model.contains("merges") ||
      !model["merges"].is_array()) {
    return fail(where + ": model needs a \"vocab\" object and a \"merges\" array");
  }
  Files files;
  for (const auto& [tok, id] : model["vocab"].items()) {
    if (!id.is_number_integer()) return fail(where + ": vocab entry '" + tok + "' has a non-integer id");
    files.vocab[tok] = id.get<int64_t>();
  }
  // tokenizers writes merges either as "a b" strings (older files) or as [a, b] pairs.
  for (const json& m : model["merges"]) {
    if (m.is_string()) {
      RT_TRY(parse_merge_line(m.get<std::string>(), where, files.merges));
    } else if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string()) {
      files.merges.emplace_back(m[0].get<std::string>(), m[1].get<std::string>());
    } else {
      return fail(where + ": merge " + m.dump() + " is neither \"a b\" nor [\"a\", \"b\"]");
    }
  }
  if (j.contains("added_tokens") && j["added_tokens"].is_array()) {
    for (const json& t : j["added_tokens"]) {
      if (!t.contains("content") || !t.contains("id")) return fail(where + ": malformed added token " + t.dump());
      files.added.emplace_back(t["content"].get<std::string>(), t["id"].get<int64_t>());
    }
  }
  return files;
}

rt::Result<Files> load_vocab_and_merges(const fs::path& vocab_path, const fs::path& merges_path) {
  RT_ASSIGN(const json v, read_json(vocab_path));
  if (!v.is_object()) return fail(in_quotes(vocab_path) + " must be a JSON object {token: id}");
  Files files;
  for (const auto& [tok, id] : v.items()) {
    if (!id.is_number_integer()) return fail(in_quotes(vocab_path) + ": token '" + tok + "' has a non-integer id");
    files.vocab[tok] = id.get<int64_t>();
  }
  std::ifstream f(merges_path);
  if (!f) return fail("cannot open " + in_quotes(merges_path));
  std::string line;
  bool first = true;
  while (std::getline(f, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    // Like transformers: a "#version" header line is skipped, and so are blank lines.
    const bool header = first && line.rfind("#version", 0) == 0;
    first = false;
    if (header || line.empty()) continue;
    RT_TRY(parse_merge_line(line, in_quotes(merges_path), files.merges));
  }
  return files;
}

}  // namespace

rt::Result<ClipTokenizer> ClipTokenizer::load(const std::string& dir) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) {
    return fail(in_quotes(dir) + " is not a folder; pass the folder holding tokenizer.json or vocab.json + merges.txt");
  }
  const fs::path root(dir);
  Files files;
  if (fs::exists(root / "tokenizer.json", ec)) {
    RT_ASSIGN(files, load_tokenizer_json(root / "tokenizer.json"));
  } else if (fs::exists(root / "vocab.json", ec) && fs::exists(root / "merges.txt", ec)) {
    RT_ASSIGN(files, load_vocab_and_merges(root / "vocab.json", root / "merges.txt"));
  } else {
    return fail("folder '" + dir + "' has neither tokenizer.json nor vocab.json + merges.txt (for FLUX.1 this is "
                "the tokenizer/ folder of the model repository)");
  }

  ClipTokenizer t;
  t.vocab_ = std::move(files.vocab);
  for (auto& [tok, id] : files.added) {
    t.vocab_[tok] = id;
    t.specials_.emplace_back(tok, id);
  }
  for (size_t i = 0; i < files.merges.size(); ++i) {
    const auto& [a, b] = files.merges[i];
    for (const std::string& tok : {a, b, a + b}) {
      if (!t.vocab_.count(tok)) {
        return fail("merge #" + std::to_string(i + 1) + " '" + a + " " + b + "' uses token '" + tok +
                    "' that is not in the vocabulary (vocab and merges files do not belong together)");
      }
    }
    // A duplicated merge takes its last rank, as both tokenizers and openai's dict() build do.
    t.merge_rank_[a + " " + b] = static_cast<int>(i);
  }
  RT_TRY(t.finish_setup(dir));
  return t;
}

rt::Status ClipTokenizer::finish_setup(const std::string& dir) {
  std::unordered_map<std::string, std::string> names = {{"bos_token", "<|startoftext|>"},
                                                        {"eos_token", "<|endoftext|>"},
                                                        {"pad_token", "<|endoftext|>"},
                                                        {"unk_token", "<|endoftext|>"}};
  std::error_code ec;
  for (const char* file : {"tokenizer_config.json", "special_tokens_map.json"}) {
    const fs::path path = fs::path(dir) / file;
    if (!fs::exists(path, ec)) continue;
    RT_ASSIGN(const json cfg, read_json(path));
    for (auto& [key, value] : names) {
      if (cfg.is_object() && cfg.contains(key)) {
        const std::string text = token_text(cfg[key]);
        if (!text.empty()) value = text;
      }
    }
  }
  auto id_of = [&](const std::string& key, int64_t& out) -> rt::Status {
    const auto it = vocab_.find(names[key]);
    if (it == vocab_.end()) {
      return fail(key + " '" + names[key] + "' is not in the vocabulary of " + in_quotes(dir));
    }
    out = it->second;
    bool listed = false;
    for (const auto& s : specials_) listed |= s.first == it->first;
    // transformers registers the named special tokens as added tokens, so they match in raw text.
    if (!listed) specials_.emplace_back(it->first, it->second);
    return rt::Status::ok();
  };
  RT_TRY(id_of("bos_token", bos_id_));
  RT_TRY(id_of("eos_token", eos_id_));
  RT_TRY(id_of("pad_token", pad_id_));
  RT_TRY(id_of("unk_token", unk_id_));
  for (const auto& [tok, id] : vocab_) vocab_size_ = std::max(vocab_size_, id + 1);
  return rt::Status::ok();
}

void ClipTokenizer::bpe(const std::string& piece, std::vector<int64_t>& out) const {
  const auto& sym = clip_text::byte_symbols();
  std::vector<std::string> word;
  for (unsigned char b : piece) word.push_back(sym[b]);
  if (word.empty()) return;
  word.back() += "</w>";

  // Classic BPE: merge every occurrence of the lowest-ranked adjacent pair, left to right, until no
  // pair is in the merge table. Same result as tokenizers' priority queue for a trained merge list.
  while (word.size() > 1) {
    int best = INT_MAX;
    size_t best_i = 0;
    for (size_t i = 0; i + 1 < word.size(); ++i) {
      const auto it = merge_rank_.find(word[i] + " " + word[i + 1]);
      if (it != merge_rank_.end() && it->second < best) {
        best = it->second;
        best_i = i;
      }
    }
    if (best == INT_MAX) break;
    const std::string first = word[best_i], second = word[best_i + 1];
    std::vector<std::string> merged;
    for (size_t i = 0; i < word.size();) {
      if (i + 1 < word.size() && word[i] == first && word[i + 1] == second) {
        merged.push_back(first + second);
        i += 2;
      } else {
        merged.push_back(word[i]);
        ++i;
      }
    }
    word = std::move(merged);
  }
  for (const std::string& s : word) {
    const auto it = vocab_.find(s);
    out.push_back(it == vocab_.end() ? unk_id_ : it->second);
  }
}

std::vector<int64_t> ClipTokenizer::tokenize(const std::string& text) const {
  std::vector<int64_t> ids;
  auto encode_segment = [&](size_t begin, size_t end) {
    if (begin >= end) return;
    for (const std::string& piece : clip_text::pre_tokenize(clip_text::normalize(text.substr(begin, end - begin)))) {
      bpe(piece, ids);
    }
  };
  // Special tokens are cut out of the raw text first (leftmost, then longest match), like tokenizers'
  // added vocabulary; the text between them is normalised and tokenised on its own.
  size_t start = 0;
  for (size_t pos = 0; pos < text.size();) {
    size_t best_len = 0;
    int64_t best_id = -1;
    for (const auto& [tok, id] : specials_) {
      if (tok.size() > best_len && text.compare(pos, tok.size(), tok) == 0) {
        best_len = tok.size();
        best_id = id;
      }
    }
    if (best_len == 0) {
      ++pos;
      continue;
    }
    encode_segment(start, pos);
    ids.push_back(best_id);
    pos += best_len;
    start = pos;
  }
  encode_segment(start, text.size());
  return ids;
}

std::vector<int64_t> ClipTokenizer::encode(const std::string& text, int max_length) const {
  CHECK(max_length >= 2, "CLIP max_length must be at least 2 (BOS and EOS), got ", max_length);
  std::vector<int64_t> tokens = tokenize(text);
  if (tokens.size() > static_cast<size_t>(max_length - 2)) tokens.resize(max_length - 2);
  std::vector<int64_t> ids;
  ids.reserve(max_length);
  ids.push_back(bos_id_);
  ids.insert(ids.end(), tokens.begin(), tokens.end());
  ids.push_back(eos_id_);
  ids.resize(max_length, pad_id_);
  return ids;
}

}  // namespace te
