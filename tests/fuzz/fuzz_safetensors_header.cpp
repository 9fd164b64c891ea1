// libFuzzer target for weights::parse_safetensors_header, the one parser that reads untrusted bytes.
// Input byte 0 picks the mode: odd = the rest is a whole file image (exercises the length prefix);
// even = the rest is the JSON header, wrapped with a correct prefix and a 256-byte data section, so
// mutations spend their time inside the JSON validation instead of on the prefix.
#include <cstdint>
#include <cstdlib>
#include <string>

#include "weights/safetensors.h"

static void check_invariants(const weights::SafetensorsHeader& h, size_t file_size) {
  if (h.data_start > file_size) std::abort();
  const uint64_t data_size = file_size - h.data_start;
  for (const auto& t : h.tensors) {
    if (t.offset > data_size || t.nbytes > data_size - t.offset) std::abort();
    for (int64_t d : t.shape) {
      if (d < 0) std::abort();
    }
  }
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  if (data[0] & 1) {
    auto r = weights::parse_safetensors_header(data + 1, size - 1);
    if (r.is_ok()) check_invariants(*r, size - 1);
    return 0;
  }
  const uint64_t n = size - 1;
  std::string image(8, '\0');
  for (int i = 0; i < 8; ++i) image[size_t(i)] = char((n >> (8 * i)) & 0xff);
  image.append(reinterpret_cast<const char*>(data + 1), n);
  image.append(256, '\x5a');
  auto r = weights::parse_safetensors_header(reinterpret_cast<const uint8_t*>(image.data()), image.size());
  if (r.is_ok()) check_invariants(*r, image.size());
  return 0;
}
