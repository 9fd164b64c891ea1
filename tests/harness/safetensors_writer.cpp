#include "harness/safetensors_writer.h"

#include <atomic>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <unistd.h>

namespace test {

template <typename T>
static std::vector<uint8_t> to_bytes(const std::vector<T>& v) {
  std::vector<uint8_t> b(v.size() * sizeof(T));
  if (!v.empty()) std::memcpy(b.data(), v.data(), b.size());
  return b;
}

StTensor st_f32(const std::string& name, const rt::Shape& shape, const std::vector<float>& values) {
  return {name, "F32", shape, to_bytes(values)};
}

StTensor st_bf16(const std::string& name, const rt::Shape& shape, const std::vector<float>& values) {
  std::vector<uint16_t> h;
  for (float f : values) h.push_back(rt::f32_to_bf16(f));
  return {name, "BF16", shape, to_bytes(h)};
}

StTensor st_f16(const std::string& name, const rt::Shape& shape, const std::vector<float>& values) {
  std::vector<uint16_t> h;
  for (float f : values) h.push_back(rt::f32_to_f16(f));
  return {name, "F16", shape, to_bytes(h)};
}

StTensor st_i64(const std::string& name, const rt::Shape& shape, const std::vector<int64_t>& values) {
  return {name, "I64", shape, to_bytes(values)};
}

StTensor st_raw(const std::string& name, const std::string& dtype, const rt::Shape& shape, std::vector<uint8_t> bytes) {
  return {name, dtype, shape, std::move(bytes)};
}

StTensor st_from_tensor(const std::string& name, const rt::Tensor& t) {
  static const std::map<rt::DType, std::string> kNames = {{rt::DType::F32, "F32"}, {rt::DType::F16, "F16"},
                                                          {rt::DType::BF16, "BF16"}, {rt::DType::I64, "I64"},
                                                          {rt::DType::F8E4M3, "F8_E4M3"}};
  const rt::Tensor c = t.contiguous();
  const auto* p = static_cast<const uint8_t*>(c.raw_data());
  return {name, kNames.at(c.dtype()), c.shape(), std::vector<uint8_t>(p, p + c.nbytes())};
}

std::string safetensors_image(const std::string& header_json, const std::string& data) {
  std::string out(8, '\0');
  uint64_t n = header_json.size();
  for (int i = 0; i < 8; ++i) out[size_t(i)] = char((n >> (8 * i)) & 0xff);
  return out + header_json + data;
}

std::string serialize_safetensors(const std::vector<StTensor>& tensors, const std::map<std::string, std::string>& metadata) {
  nlohmann::json h = nlohmann::json::object();
  if (!metadata.empty()) h["__metadata__"] = metadata;
  std::string data;
  for (const auto& t : tensors) {
    const uint64_t begin = data.size();
    data.append(reinterpret_cast<const char*>(t.bytes.data()), t.bytes.size());
    h[t.name] = {{"dtype", t.dtype}, {"shape", t.shape}, {"data_offsets", {begin, uint64_t(data.size())}}};
  }
  std::string text = h.dump();
  while (text.size() % 8 != 0) text += ' ';
  return safetensors_image(text, data);
}

void write_file(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  CHECK(out.good(), "cannot write ", path);
  out.write(bytes.data(), std::streamsize(bytes.size()));
  CHECK(out.good(), "short write to ", path);
}

void write_safetensors(const std::string& path, const std::vector<StTensor>& tensors,
                       const std::map<std::string, std::string>& metadata) {
  write_file(path, serialize_safetensors(tensors, metadata));
}

std::string make_temp_dir(const std::string& tag) {
  static std::atomic<int> counter{0};
  namespace fs = std::filesystem;
  const fs::path dir = fs::temp_directory_path() /
                       ("ditrun_" + tag + "_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir.string();
}

}  // namespace test
