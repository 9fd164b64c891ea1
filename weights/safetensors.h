// safetensors reader: mmap'ed, header validated before any tensor is touched.
// Format: u64 little-endian header length N, N bytes of JSON {name: {dtype, shape, data_offsets:[b,e]},
// "__metadata__": {str: str}}, then the data section. Offsets are relative to the data section.
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "base/status.h"
#include "tensor.h"

namespace weights {

struct TensorInfo {
  std::string name;
  rt::DType dtype = rt::DType::F32;
  rt::Shape shape;
  uint64_t offset = 0;  // byte offset inside the data section
  uint64_t nbytes = 0;
};

struct SafetensorsHeader {
  std::vector<TensorInfo> tensors;  // sorted by name
  std::map<std::string, std::string> metadata;
  uint64_t data_start = 0;          // 8 + header length
};

// Header length above this is refused (the format's reference implementation uses 100 MB).
inline constexpr uint64_t kMaxHeaderBytes = 100ull << 20;

// Validates a whole file image: length prefix within bounds and the file, JSON well-formed, known
// dtypes, non-negative shapes, offsets inside the data section, size == numel * dtype size, no two
// tensors overlapping. `file_size` is the size of the buffer at `data`. Errors name the offending key.
rt::Result<SafetensorsHeader> parse_safetensors_header(const uint8_t* data, size_t file_size);

class SafetensorsFile {
 public:
  static rt::Result<std::shared_ptr<SafetensorsFile>> open(const std::string& path);
  ~SafetensorsFile();
  SafetensorsFile(const SafetensorsFile&) = delete;
  SafetensorsFile& operator=(const SafetensorsFile&) = delete;

  const std::string& path() const { return path_; }
  const SafetensorsHeader& header() const { return header_; }
  // Zero-copy view in the stored dtype; keeps the mapping alive.
  rt::Tensor view(const TensorInfo& info) const;

 private:
  SafetensorsFile() = default;
  std::string path_;
  SafetensorsHeader header_;
  std::shared_ptr<void> mapping_;  // munmap on release
  const uint8_t* base_ = nullptr;
  size_t size_ = 0;  // bytes mapped (the whole file)
};

}  // namespace weights
