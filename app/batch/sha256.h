// SHA-256 (FIPS 180-4) of a byte string, for the batch manifest's image checksums: users can check them
// with `sha256sum`. Written here because the project has no crypto dependency (OpenSSL is not among the
// Debian packages scripts/install_deps.sh installs); tests compare with the FIPS 180-2 example digests.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>

#include "base/status.h"

namespace app {

// Lowercase hex digest, 64 characters.
std::string sha256_hex(std::string_view bytes);
// The digest of a whole file; an unreadable file is an error naming it.
rt::Result<std::string> sha256_file(const std::string& path);

}  // namespace app
