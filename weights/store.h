// TensorStore: every tensor of one checkpoint component (a single .safetensors file, a sharded
// set described by *.safetensors.index.json, or a directory holding either), by its source name.
#pragma once
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "safetensors.h"

namespace weights {

class TensorStore {
 public:
  // `path` is a .safetensors file, a *.safetensors.index.json, or a directory containing exactly one
  // of: an index json, or one or more *.safetensors files (all are read). Errors say what was found.
  static rt::Result<TensorStore> open(const std::string& path);
  // Builds a store from already opened files (names must not collide across files).
  static rt::Result<TensorStore> from_files(std::vector<std::shared_ptr<SafetensorsFile>> files);

  // The subset of names starting with `prefix`, with the prefix removed (fixtures use "weight.").
  TensorStore with_prefix(const std::string& prefix) const;

  std::vector<std::string> names() const;  // sorted
  bool has(const std::string& name) const { return index_.count(name) != 0; }
  const TensorInfo& info(const std::string& name) const;  // CHECKs presence; .name is the name in the file
  rt::Tensor load(const std::string& name) const;         // stored dtype, zero-copy
  rt::Tensor load_f32(const std::string& name) const;     // converted to float32 (bf16/f16/f8_e4m3/f32)
  // Merged __metadata__ of all files.
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  const std::string& source() const { return source_; }  // path given to open(), for messages
  size_t size() const { return index_.size(); }

 private:
  struct Entry {
    std::shared_ptr<SafetensorsFile> file;
    const TensorInfo* info;
  };
  std::map<std::string, Entry> index_;
  std::map<std::string, std::string> metadata_;
  std::string source_;
};

}  // namespace weights
