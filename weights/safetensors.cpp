// safetensors header validation and the mmap'ed file. Format reference:
// https://github.com/huggingface/safetensors (safetensors/src/tensor.rs, Metadata::validate).
// The parser sees untrusted bytes (a fuzzer runs it): it must return an error, never throw or abort.
#include "weights/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <nlohmann/json.hpp>

namespace weights {

using rt::Status;
using json = nlohmann::json;

// Names come from the file; cap what goes into a message so a hostile header cannot make it huge.
static std::string quoted(const std::string& s) {
  constexpr size_t kMax = 120;
  std::string out = "'";
  out.append(s, 0, kMax);
  if (s.size() <= kMax) return out += "'";
  return out += "...' (" + std::to_string(s.size()) + " chars)";
}

static Status tensor_error(const std::string& name, const std::string& what) {
  return Status::error("tensor " + quoted(name) + ": " + what);
}

// safetensors dtype spellings we read, and the other spellings the format defines (so their error
// can say "unsupported" instead of "unknown").
static bool map_dtype(const std::string& s, rt::DType* out) {
  static const std::pair<const char*, rt::DType> kRead[] = {
      {"F32", rt::DType::F32}, {"F16", rt::DType::F16}, {"BF16", rt::DType::BF16},
      {"I64", rt::DType::I64}, {"F8_E4M3", rt::DType::F8E4M3}};
  for (const auto& [name, dt] : kRead) {
    if (s == name) {
      *out = dt;
      return true;
    }
  }
  return false;
}

static bool is_known_safetensors_dtype(const std::string& s) {
  static const char* kOther[] = {"BOOL", "U8", "I8", "I16", "U16", "I32", "U32", "U64", "F64",
                                 "F8_E5M2", "F8_E8M0", "F4", "F6_E2M3", "F6_E3M2", "C64"};
  for (const char* k : kOther) {
    if (s == k) return true;
  }
  return false;
}

// A JSON integer >= 0 that fits in uint64 (nlohmann stores those as unsigned or as non-negative signed).
static bool as_u64(const json& v, uint64_t* out) {
  if (v.is_number_unsigned()) {
    *out = v.get<uint64_t>();
    return true;
  }
  if (v.is_number_integer()) {
    const int64_t i = v.get<int64_t>();
    if (i < 0) return false;
    *out = uint64_t(i);
    return true;
  }
  return false;
}

static Status parse_entry(const std::string& name, const json& v, uint64_t data_size, TensorInfo* info) {
  if (!v.is_object()) return tensor_error(name, std::string("expected a JSON object, got ") + v.type_name());
  info->name = name;

  const auto dt = v.find("dtype");
  if (dt == v.end() || !dt->is_string()) return tensor_error(name, "missing or non-string \"dtype\"");
  const std::string dts = dt->get<std::string>();
  if (!map_dtype(dts, &info->dtype)) {
    if (is_known_safetensors_dtype(dts)) {
      return Status::error("unsupported dtype " + dts + " for tensor " + quoted(name) +
                           "; ditrun reads F32, F16, BF16, F8_E4M3, I64");
    }
    return tensor_error(name, "unknown dtype " + quoted(dts) + "; ditrun reads F32, F16, BF16, F8_E4M3, I64");
  }

  const auto sh = v.find("shape");
  if (sh == v.end() || !sh->is_array()) return tensor_error(name, "missing or non-array \"shape\"");
  // Element count and byte size computed with overflow checks: the header is untrusted.
  uint64_t numel = 1;
  info->shape.clear();
  for (const json& d : *sh) {
    uint64_t n = 0;
    if (!as_u64(d, &n)) {
      // No dump() of `d`: it may be a deeply nested value from a hostile file.
      const std::string got = d.is_number_integer() ? std::to_string(d.get<int64_t>()) : d.type_name();
      return tensor_error(name, "shape entries must be non-negative integers, got " + got);
    }
    if (n > uint64_t(INT64_MAX) || __builtin_mul_overflow(numel, n, &numel)) {
      return tensor_error(name, "shape overflows 64-bit element count");
    }
    info->shape.push_back(int64_t(n));
  }
  uint64_t nbytes = 0;
  if (numel > uint64_t(INT64_MAX) || __builtin_mul_overflow(numel, uint64_t(rt::dtype_size(info->dtype)), &nbytes)) {
    return tensor_error(name, "shape overflows 64-bit byte size");
  }

  const auto off = v.find("data_offsets");
  uint64_t begin = 0, end = 0;
  if (off == v.end() || !off->is_array() || off->size() != 2 || !as_u64((*off)[0], &begin) ||
      !as_u64((*off)[1], &end)) {
    return tensor_error(name, "\"data_offsets\" must be [begin, end] with non-negative integers");
  }
  if (begin > end) {
    return tensor_error(name, "data_offsets begin " + std::to_string(begin) + " > end " + std::to_string(end));
  }
  if (end - begin != nbytes) {
    return tensor_error(name, "data_offsets span " + std::to_string(end - begin) + " bytes, but " +
                                  std::string(rt::dtype_name(info->dtype)) + rt::shape_str(info->shape) + " needs " +
                                  std::to_string(nbytes));
  }
  if (end > data_size) {
    return Status::error("header claims " + std::to_string(end) + " bytes of tensor data but the file has only " +
                         std::to_string(data_size) + " after the header (tensor " + quoted(name) +
                         " ends there; truncated download?)");
  }
  info->offset = begin;
  info->nbytes = nbytes;
  return Status::ok();
}

static Status parse_metadata(const json& v, std::map<std::string, std::string>* out) {
  if (!v.is_object()) return Status::error(std::string("\"__metadata__\" must be an object, got ") + v.type_name());
  for (const auto& [k, val] : v.items()) {
    if (!val.is_string()) {
      return Status::error("\"__metadata__\" values must be strings; " + quoted(k) + " is " + val.type_name());
    }
    (*out)[k] = val.get<std::string>();
  }
  return Status::ok();
}

// Zero-sized tensors occupy no bytes and may sit anywhere, so they are left out of the overlap check.
static Status check_overlaps(const std::vector<TensorInfo>& tensors) {
  std::vector<const TensorInfo*> by_offset;
  for (const auto& t : tensors) {
    if (t.nbytes > 0) by_offset.push_back(&t);
  }
  std::sort(by_offset.begin(), by_offset.end(),
            [](const TensorInfo* a, const TensorInfo* b) { return a->offset < b->offset; });
  for (size_t i = 1; i < by_offset.size(); ++i) {
    const TensorInfo& a = *by_offset[i - 1];
    const TensorInfo& b = *by_offset[i];
    if (b.offset < a.offset + a.nbytes) {
      return Status::error("tensors " + quoted(a.name) + " (bytes " + std::to_string(a.offset) + ".." +
                           std::to_string(a.offset + a.nbytes) + ") and " + quoted(b.name) + " (bytes " +
                           std::to_string(b.offset) + ".." + std::to_string(b.offset + b.nbytes) + ") overlap");
    }
  }
  return Status::ok();
}

static rt::Result<SafetensorsHeader> parse_json_header(const uint8_t* text, uint64_t n, uint64_t data_size) {
  json root;
  try {
    root = json::parse(text, text + n);
  } catch (const std::exception& e) {
    return Status::error(std::string("header is not valid JSON: ") + e.what());
  }
  if (!root.is_object()) return Status::error(std::string("header must be a JSON object, got ") + root.type_name());

  SafetensorsHeader h;
  for (const auto& [key, v] : root.items()) {
    if (key == "__metadata__") {
      RT_TRY(parse_metadata(v, &h.metadata));
      continue;
    }
    TensorInfo info;
    RT_TRY(parse_entry(key, v, data_size, &info));
    h.tensors.push_back(std::move(info));
  }
  RT_TRY(check_overlaps(h.tensors));
  std::sort(h.tensors.begin(), h.tensors.end(), [](const TensorInfo& a, const TensorInfo& b) { return a.name < b.name; });
  return h;
}

rt::Result<SafetensorsHeader> parse_safetensors_header(const uint8_t* data, size_t file_size) {
  if (file_size < 8) {
    return Status::error("file is " + std::to_string(file_size) +
                         " bytes, too small for the 8-byte header length (not a safetensors file?)");
  }
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | data[i];  // little-endian regardless of host
  const uint64_t after_prefix = uint64_t(file_size) - 8;
  if (n < 2) return Status::error("header length is " + std::to_string(n) + " bytes; a JSON object needs at least 2");
  if (n > kMaxHeaderBytes) {
    return Status::error("header length " + std::to_string(n) + " exceeds the " + std::to_string(kMaxHeaderBytes) +
                         "-byte limit (not a safetensors file, or corrupted)");
  }
  if (n > after_prefix) {
    return Status::error("header length prefix says " + std::to_string(n) + " bytes of JSON but the file has only " +
                         std::to_string(after_prefix) + " after the prefix (truncated download, or not a safetensors file?)");
  }
  try {
    RT_ASSIGN(SafetensorsHeader h, parse_json_header(data + 8, n, after_prefix - n));
    h.data_start = 8 + n;
    return h;
  } catch (const std::exception& e) {  // e.g. bad_alloc on a hostile header; never let it escape
    return Status::error(std::string("cannot parse header: ") + e.what());
  }
}

rt::Result<std::shared_ptr<SafetensorsFile>> SafetensorsFile::open(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Status::error(path + ": cannot open: " + std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    const int err = errno;
    ::close(fd);
    return Status::error(path + ": cannot stat: " + std::strerror(err));
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    return Status::error(path + ": not a regular file");
  }
  const size_t size = size_t(st.st_size);
  if (size < 8) {
    ::close(fd);
    return Status::error(path + ": file is " + std::to_string(size) +
                         " bytes, too small for a safetensors header (truncated download?)");
  }
  void* p = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
  const int map_err = errno;
  ::close(fd);  // the mapping keeps its own reference to the file
  if (p == MAP_FAILED) return Status::error(path + ": mmap of " + std::to_string(size) + " bytes failed: " + std::strerror(map_err));

  std::shared_ptr<SafetensorsFile> f(new SafetensorsFile());
  f->path_ = path;
  f->mapping_ = std::shared_ptr<void>(p, [size](void* q) { ::munmap(q, size); });
  f->base_ = static_cast<const uint8_t*>(p);
  f->size_ = size;
  auto header = parse_safetensors_header(f->base_, size);
  if (!header.is_ok()) return header.status().with_context(path + ": ");
  f->header_ = std::move(header).value();
  return f;
}

SafetensorsFile::~SafetensorsFile() = default;

rt::Tensor SafetensorsFile::view(const TensorInfo& info) const {
  CHECK(header_.data_start + info.offset + info.nbytes <= size_, "view(): ", quoted(info.name), " bytes ", info.offset,
        "+", info.nbytes, " outside ", path_, " (a TensorInfo from another file?)");
  // The mapping is PROT_READ: the returned tensor must not be written to.
  auto* p = const_cast<uint8_t*>(base_ + header_.data_start + info.offset);
  return rt::Tensor::wrap(p, info.shape, info.dtype, mapping_);
}

}  // namespace weights
