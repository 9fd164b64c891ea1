// TensorStore: one checkpoint component from a file, a sharded index, or a directory.
// Index format (transformers/diffusers): {"metadata": {...}, "weight_map": {tensor name: shard file name}}.
#include "weights/store.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

namespace weights {

namespace fs = std::filesystem;
using rt::Status;
using json = nlohmann::json;

static constexpr size_t kListMax = 5;  // names quoted per error message; the rest are counted

static std::string list_some(const std::vector<std::string>& names) {
  std::string s;
  for (size_t i = 0; i < names.size() && i < kListMax; ++i) s += (i ? ", " : "") + names[i];
  if (names.size() > kListMax) s += ", ... (" + std::to_string(names.size() - kListMax) + " more)";
  return s;
}

static bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

static rt::Result<TensorStore> open_index(const std::string& path) {
  std::ifstream in(path);
  if (!in) return Status::error(path + ": cannot open index file");
  json root;
  try {
    root = json::parse(in);
  } catch (const std::exception& e) {
    return Status::error(path + ": index is not valid JSON: " + e.what());
  }
  const auto wm = root.is_object() ? root.find("weight_map") : root.end();
  if (!root.is_object() || wm == root.end() || !wm->is_object()) {
    return Status::error(path + ": index has no \"weight_map\" object (expected {\"weight_map\": {name: shard}})");
  }
  std::map<std::string, std::vector<std::string>> names_by_shard;
  for (const auto& [name, shard] : wm->items()) {
    if (!shard.is_string()) return Status::error(path + ": weight_map entry '" + name + "' is not a file name string");
    names_by_shard[shard.get<std::string>()].push_back(name);
  }
  if (names_by_shard.empty()) return Status::error(path + ": weight_map is empty");

  // Shard names are relative to the index; each shard is opened once. The shards' headers are the
  // truth for what exists, but a name the index promises must really be in its shard.
  const fs::path dir = fs::path(path).parent_path();
  std::vector<std::shared_ptr<SafetensorsFile>> files;
  std::vector<std::string> missing;
  for (const auto& [shard, names] : names_by_shard) {
    RT_ASSIGN(auto file, SafetensorsFile::open((dir / shard).string()));
    std::set<std::string> present;
    for (const auto& t : file->header().tensors) present.insert(t.name);
    for (const auto& n : names) {
      if (!present.count(n)) missing.push_back(n + " (in " + shard + ")");
    }
    files.push_back(std::move(file));
  }
  if (!missing.empty()) {
    return Status::error(path + ": the index names " + std::to_string(missing.size()) +
                         " tensors its shards do not contain: " + list_some(missing) +
                         "\n  hint: the shards and the index come from different downloads or revisions");
  }
  RT_ASSIGN(TensorStore store, TensorStore::from_files(std::move(files)));
  return store;
}

static rt::Result<TensorStore> open_directory(const std::string& path) {
  std::vector<std::string> indexes, shards;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(path, ec)) {
    const std::string name = e.path().filename().string();
    if (ends_with(name, ".safetensors.index.json")) indexes.push_back(e.path().string());
    else if (ends_with(name, ".safetensors") && e.is_regular_file(ec)) shards.push_back(e.path().string());
  }
  if (ec) return Status::error(path + ": cannot list directory: " + ec.message());
  std::sort(indexes.begin(), indexes.end());
  std::sort(shards.begin(), shards.end());
  if (indexes.size() > 1) {
    return Status::error(path + ": directory holds " + std::to_string(indexes.size()) +
                         " index files (" + list_some(indexes) + "); pass the one to use");
  }
  if (indexes.size() == 1) return open_index(indexes[0]);
  if (shards.empty()) {
    return Status::error(path + ": directory holds no *.safetensors file and no *.safetensors.index.json"
                                "\n  hint: pass the component's folder (e.g. .../transformer) or the file itself");
  }
  std::vector<std::shared_ptr<SafetensorsFile>> files;
  for (const auto& s : shards) {
    RT_ASSIGN(auto f, SafetensorsFile::open(s));
    files.push_back(std::move(f));
  }
  return TensorStore::from_files(std::move(files));
}

rt::Result<TensorStore> TensorStore::open(const std::string& path) {
  std::error_code ec;
  const auto st = fs::status(path, ec);
  if (ec || !fs::exists(st)) return Status::error(path + ": no such file or directory");
  rt::Result<TensorStore> r = Status::error("unreachable");
  if (fs::is_directory(st)) {
    r = open_directory(path);
  } else if (ends_with(path, ".json")) {
    r = open_index(path);
  } else {
    auto f = SafetensorsFile::open(path);
    if (!f.is_ok()) return f.status();
    r = from_files({std::move(f).value()});
  }
  if (!r.is_ok()) return r;
  TensorStore s = std::move(r).value();
  s.source_ = path;
  return s;
}

rt::Result<TensorStore> TensorStore::from_files(std::vector<std::shared_ptr<SafetensorsFile>> files) {
  TensorStore s;
  std::vector<std::string> dups;
  for (const auto& f : files) {
    CHECK(f != nullptr, "from_files(): null file");
    for (const auto& t : f->header().tensors) {
      auto [it, inserted] = s.index_.emplace(t.name, Entry{f, &t});
      if (!inserted) dups.push_back(t.name + " (" + it->second.file->path() + " and " + f->path() + ")");
    }
    // First file wins on metadata keys; shards of one checkpoint carry the same values.
    for (const auto& [k, v] : f->header().metadata) s.metadata_.emplace(k, v);
    s.source_ += (s.source_.empty() ? "" : ", ") + f->path();
  }
  if (!dups.empty()) {
    return Status::error(std::to_string(dups.size()) + " tensor names appear in more than one file: " + list_some(dups) +
                         "\n  hint: the folder mixes two checkpoints (e.g. a full and a pruned copy); keep one");
  }
  return s;
}

TensorStore TensorStore::with_prefix(const std::string& prefix) const {
  TensorStore s;
  s.metadata_ = metadata_;
  s.source_ = source_ + " [" + prefix + "*]";
  for (const auto& [name, e] : index_) {
    if (name.compare(0, prefix.size(), prefix) == 0) s.index_.emplace(name.substr(prefix.size()), e);
  }
  return s;
}

std::vector<std::string> TensorStore::names() const {
  std::vector<std::string> out;
  out.reserve(index_.size());
  for (const auto& kv : index_) out.push_back(kv.first);
  return out;
}

const TensorInfo& TensorStore::info(const std::string& name) const {
  auto it = index_.find(name);
  CHECK(it != index_.end(), "TensorStore::info(): no tensor '", name, "' in ", source_);
  return *it->second.info;
}

rt::Tensor TensorStore::load(const std::string& name) const {
  auto it = index_.find(name);
  CHECK(it != index_.end(), "TensorStore::load(): no tensor '", name, "' in ", source_);
  return it->second.file->view(*it->second.info);
}

rt::Tensor TensorStore::load_f32(const std::string& name) const {
  const rt::Tensor t = load(name);
  // Always an owned copy: an f32 view would alias the read-only mapping, and writing to it would crash.
  return t.dtype() == rt::DType::F32 ? t.clone() : t.to(rt::DType::F32);
}

}  // namespace weights
