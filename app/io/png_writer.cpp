#include "app/io/png_writer.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <fstream>
#include <iterator>

#include <stb/stb_image.h>
#include <stb/stb_image_write.h>

namespace app {
namespace {

constexpr uint8_t kPngSignature[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};

std::string os_error(const std::string& what, const std::string& path, int err) {
  return what + " " + path + ": " + std::strerror(err);
}

// CRC-32 as PNG specifies it (ISO 3309 polynomial, reflected, init and final xor 0xffffffff).
uint32_t crc32_update(uint32_t crc, const uint8_t* data, size_t n) {
  static constexpr std::array<uint32_t, 256> kTable = [] {
    std::array<uint32_t, 256> t{};
    for (uint32_t i = 0; i < 256; ++i) {
      uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xedb88320u ^ (c >> 1) : c >> 1;
      t[i] = c;
    }
    return t;
  }();
  for (size_t i = 0; i < n; ++i) crc = kTable[(crc ^ data[i]) & 0xff] ^ (crc >> 8);
  return crc;
}

void put_u32be(std::vector<uint8_t>& out, uint32_t v) {
  for (int s = 24; s >= 0; s -= 8) out.push_back(uint8_t(v >> s));
}
uint32_t get_u32be(const uint8_t* p) {
  return (uint32_t(p[0]) << 24) | (uint32_t(p[1]) << 16) | (uint32_t(p[2]) << 8) | uint32_t(p[3]);
}

// Appends a complete chunk: length, type, data, CRC over type + data.
void append_chunk(std::vector<uint8_t>& out, const char type[4], const std::vector<uint8_t>& data) {
  put_u32be(out, uint32_t(data.size()));
  const size_t type_at = out.size();
  out.insert(out.end(), type, type + 4);
  out.insert(out.end(), data.begin(), data.end());
  put_u32be(out, crc32_update(0xffffffffu, out.data() + type_at, 4 + data.size()) ^ 0xffffffffu);
}

bool is_ascii(const std::string& s) {
  for (unsigned char c : s) {
    if (c >= 0x80) return false;
  }
  return true;
}

// PNG keywords: 1-79 bytes of printable Latin-1, no leading/trailing or doubled spaces.
rt::Status check_keyword(const std::string& key) {
  bool ok = !key.empty() && key.size() <= 79 && key.front() != ' ' && key.back() != ' ' &&
            key.find("  ") == std::string::npos;
  for (unsigned char c : key) ok = ok && ((c >= 32 && c <= 126) || c >= 161);
  if (!ok) {
    return rt::Status::error("PNG text key '" + key +
                             "' is not a valid keyword (1-79 printable Latin-1 characters, no leading, "
                             "trailing or consecutive spaces)");
  }
  return rt::Status::ok();
}

std::vector<uint8_t> text_chunk_data(const std::string& key, const std::string& value, bool* itxt) {
  std::vector<uint8_t> d(key.begin(), key.end());
  d.push_back(0);
  *itxt = !is_ascii(value);
  if (*itxt) {
    // compression flag 0, method 0, empty language tag, empty translated keyword.
    d.insert(d.end(), {0, 0, 0, 0});
  }
  d.insert(d.end(), value.begin(), value.end());
  return d;
}

void append_bytes(void* context, void* data, int size) {
  auto* out = static_cast<std::vector<uint8_t>*>(context);
  const auto* p = static_cast<const uint8_t*>(data);
  out->insert(out->end(), p, p + size);
}

std::string parent_dir(const std::string& path) {
  const size_t slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

// Writes all bytes to a fresh temp file, fsyncs it and renames it over `path`. Removes the temp file
// on any failure so an interrupted or failed write leaves nothing behind.
rt::Status write_atomically(const std::string& path, const std::vector<uint8_t>& bytes) {
  const std::string tmp = path + ".tmp-" + std::to_string(::getpid());
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return rt::Status::error(os_error("cannot create", tmp, errno));
  auto fail = [&](const std::string& what, int err) {
    ::close(fd);
    ::unlink(tmp.c_str());
    return rt::Status::error(os_error(what, path, err) + " (temporary file removed)");
  };
  size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      return fail("cannot write", errno);
    }
    done += size_t(n);
  }
  if (::fsync(fd) != 0) return fail("cannot flush", errno);
  if (::close(fd) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    return rt::Status::error(os_error("cannot write", path, err));
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    return rt::Status::error(os_error("cannot rename temporary file onto", path, err));
  }
  // Make the rename itself durable; failure here does not un-write the image, so it is not an error.
  const int dfd = ::open(parent_dir(path).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
  return rt::Status::ok();
}

rt::Result<std::vector<uint8_t>> read_file_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return rt::Status::error(os_error("cannot open", path, errno));
  std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) return rt::Status::error(os_error("cannot read", path, errno));
  return bytes;
}

}  // namespace

rt::Status check_output_path(const std::string& path, bool overwrite) {
  const size_t dot = path.find_last_of('.');
  std::string ext = dot == std::string::npos ? "" : path.substr(dot);
  for (char& c : ext) c = char(std::tolower(static_cast<unsigned char>(c)));
  if (ext != ".png" || path.back() == '/') {
    return rt::Status::error("output file " + path + " must end in .png");
  }
  const std::string dir = parent_dir(path);
  struct stat st {};
  if (::stat(dir.c_str(), &st) != 0) {
    return rt::Status::error(os_error("output directory for " + path + " is not usable:", dir, errno));
  }
  if (!S_ISDIR(st.st_mode)) {
    return rt::Status::error("output directory " + dir + " for " + path + " is not a directory");
  }
  if (::access(dir.c_str(), W_OK | X_OK) != 0) {
    return rt::Status::error(os_error("output directory is not writable:", dir, errno));
  }
  if (::stat(path.c_str(), &st) == 0) {
    if (S_ISDIR(st.st_mode)) return rt::Status::error("output path " + path + " is a directory");
    if (!overwrite) {
      return rt::Status::error("output file " + path +
                               " exists; pass --overwrite to replace it or choose another --out");
    }
  }
  return rt::Status::ok();
}

std::vector<uint8_t> to_rgb8(const rt::Tensor& image) {
  CHECK(image.dim() == 3 && image.size(0) == 3, "to_rgb8 expects a [3, H, W] image, got ", image.str());
  const rt::Tensor img = image.to(rt::DType::F32);  // contiguous f32 (no copy if it already is)
  const int64_t h = img.size(1), w = img.size(2), plane = h * w;
  const float* src = img.data<float>();
  std::vector<uint8_t> out(size_t(plane * 3));
  for (int64_t c = 0; c < 3; ++c) {
    for (int64_t i = 0; i < plane; ++i) {
      // Same float32 steps as diffusers: (x * 0.5 + 0.5).clamp(0, 1) in torch, then
      // (v * 255).round() in numpy, whose round is half-to-even (std::nearbyint in the default mode).
      float v = src[c * plane + i] * 0.5f + 0.5f;
      v = v < 0.0f ? 0.0f : (v > 1.0f ? 1.0f : v);
      const float scaled = std::nearbyint(v * 255.0f);
      out[size_t(i * 3 + c)] = std::isnan(scaled) ? 0 : uint8_t(scaled);
    }
  }
  return out;
}

rt::Status write_png(const std::string& path, const rt::Tensor& image, const PngText& text_chunks,
                     bool overwrite) {
  RT_TRY(check_output_path(path, overwrite));
  for (const auto& [key, value] : text_chunks) RT_TRY(check_keyword(key));
  if (image.dim() != 3 || image.size(0) != 3 || image.size(1) < 1 || image.size(2) < 1) {
    return rt::Status::error("cannot write " + path + ": expected a [3, H, W] image, got " + image.str());
  }
  const int w = int(image.size(2)), h = int(image.size(1));
  const std::vector<uint8_t> rgb = to_rgb8(image);

  std::vector<uint8_t> encoded;
  if (stbi_write_png_to_func(append_bytes, &encoded, w, h, 3, rgb.data(), w * 3) == 0) {
    return rt::Status::error("cannot encode " + path + " as PNG (stb_image_write failed)");
  }
  // Signature (8 bytes), then IHDR: length 13 + type + data + CRC = 25 bytes.
  constexpr size_t kIhdrEnd = 8 + 25;
  CHECK(encoded.size() > kIhdrEnd && std::memcmp(encoded.data() + 12, "IHDR", 4) == 0,
        "stb_image_write produced an unexpected PNG layout");

  std::vector<uint8_t> out(encoded.begin(), encoded.begin() + kIhdrEnd);
  for (const auto& [key, value] : text_chunks) {
    bool itxt = false;
    const std::vector<uint8_t> data = text_chunk_data(key, value, &itxt);
    append_chunk(out, itxt ? "iTXt" : "tEXt", data);
  }
  out.insert(out.end(), encoded.begin() + kIhdrEnd, encoded.end());
  return write_atomically(path, out);
}

rt::Result<std::vector<uint8_t>> read_png_rgb8(const std::string& path, int* w, int* h) {
  RT_ASSIGN(const std::vector<uint8_t> bytes, read_file_bytes(path));
  int comp = 0;
  stbi_uc* pixels = stbi_load_from_memory(bytes.data(), int(bytes.size()), w, h, &comp, 3);
  if (pixels == nullptr) {
    return rt::Status::error("cannot decode " + path + ": " + stbi_failure_reason());
  }
  std::vector<uint8_t> out(pixels, pixels + size_t(*w) * size_t(*h) * 3);
  stbi_image_free(pixels);
  return out;
}

rt::Result<PngText> read_png_text(const std::string& path) {
  RT_ASSIGN(const std::vector<uint8_t> bytes, read_file_bytes(path));
  if (bytes.size() < 8 || std::memcmp(bytes.data(), kPngSignature, 8) != 0) {
    return rt::Status::error(path + " is not a PNG file (bad signature)");
  }
  PngText text;
  size_t pos = 8;
  while (pos < bytes.size()) {
    if (bytes.size() - pos < 12) return rt::Status::error(path + ": truncated chunk header");
    const uint32_t len = get_u32be(bytes.data() + pos);
    if (len > bytes.size() - pos - 12) return rt::Status::error(path + ": truncated chunk");
    const std::string type(reinterpret_cast<const char*>(bytes.data() + pos + 4), 4);
    const uint8_t* data = bytes.data() + pos + 8;
    const uint32_t crc = crc32_update(0xffffffffu, bytes.data() + pos + 4, 4 + len) ^ 0xffffffffu;
    if (crc != get_u32be(data + len)) {
      return rt::Status::error(path + ": CRC mismatch in " + type + " chunk at byte " + std::to_string(pos));
    }
    const std::string body(reinterpret_cast<const char*>(data), len);
    const size_t nul = body.find('\0');
    if (type == "tEXt" && nul != std::string::npos) {
      text.emplace_back(body.substr(0, nul), body.substr(nul + 1));
    } else if (type == "iTXt" && nul != std::string::npos && nul + 2 < body.size() && body[nul + 1] == 0) {
      // keyword \0 flag method language \0 translated \0 text; compressed iTXt (flag 1) is skipped.
      const size_t lang_end = body.find('\0', nul + 3);
      const size_t trans_end = lang_end == std::string::npos ? lang_end : body.find('\0', lang_end + 1);
      if (trans_end != std::string::npos) text.emplace_back(body.substr(0, nul), body.substr(trans_end + 1));
    }
    pos += 12 + size_t(len);
    if (type == "IEND") break;
  }
  return text;
}

}  // namespace app
