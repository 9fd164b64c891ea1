// Writes small safetensors files for tests: well-formed ones from tensors, and raw images for the
// malformed-file cases. Files go under a per-test temporary directory.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "tensor.h"

namespace test {

struct StTensor {
  std::string name;
  std::string dtype;  // safetensors spelling: "F32", "BF16", "F16", "I64", "F8_E4M3", or anything for error cases
  rt::Shape shape;
  std::vector<uint8_t> bytes;
};

StTensor st_f32(const std::string& name, const rt::Shape& shape, const std::vector<float>& values);
StTensor st_bf16(const std::string& name, const rt::Shape& shape, const std::vector<float>& values);  // rounded
StTensor st_f16(const std::string& name, const rt::Shape& shape, const std::vector<float>& values);   // rounded
StTensor st_i64(const std::string& name, const rt::Shape& shape, const std::vector<int64_t>& values);
StTensor st_raw(const std::string& name, const std::string& dtype, const rt::Shape& shape, std::vector<uint8_t> bytes);
// Any CPU tensor of a dtype safetensors can hold, in row-major order.
StTensor st_from_tensor(const std::string& name, const rt::Tensor& t);

// The file image: length prefix, JSON header padded with spaces to 8 bytes (as the reference writer
// does), then the tensors' bytes back to back in the order given.
std::string serialize_safetensors(const std::vector<StTensor>& tensors,
                                  const std::map<std::string, std::string>& metadata = {});
// Prefix + `header_json` verbatim + `data`: for hand-written (possibly invalid) headers.
std::string safetensors_image(const std::string& header_json, const std::string& data = "");

void write_file(const std::string& path, const std::string& bytes);
void write_safetensors(const std::string& path, const std::vector<StTensor>& tensors,
                       const std::map<std::string, std::string>& metadata = {});

// A fresh empty directory under the system temp dir, unique per call.
std::string make_temp_dir(const std::string& tag);

}  // namespace test
