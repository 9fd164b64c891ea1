// `ditrun parity FILE...`: the contract of ../shared/docs/parity-fixtures.md. One line per output:
// file, output, relative L2 error, max abs error, tolerance, PASS/FAIL.
#include <cmath>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "app/commands/commands.h"
#include "app/commands/device_options.h"
#include "app/commands/exit_codes.h"
#include "app/parity/fixture.h"
#include "ops.h"

#include <nlohmann/json.hpp>

namespace app {

namespace {

struct ParityOptions {
  std::vector<std::string> files;
  DeviceOptions device;
  double tolerance = -1;  // < 0: the fixture's own (default 1e-4), at least kLowPrecisionTolerance in bf16/f16
};

// Fixtures are made in float32; a bf16/f16 run is held to the 1e-2 relative L2 instead.
constexpr double kLowPrecisionTolerance = 1e-2;

struct ErrorStats {
  double rel_l2 = 0, max_abs = 0;
  bool shape_ok = true, finite_ok = true;
};

ErrorStats measure(const rt::Tensor& got, const rt::Tensor& want) {
  ErrorStats s;
  if (got.shape() != want.shape()) {
    s.shape_ok = false;
    return s;
  }
  const auto a = got.to_vector(), b = want.to_vector();
  double num = 0, den = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::isfinite(a[i]) != std::isfinite(b[i])) s.finite_ok = false;
    const double e = double(a[i]) - double(b[i]);
    num += e * e;
    den += double(b[i]) * double(b[i]);
    s.max_abs = std::max(s.max_abs, std::fabs(e));
  }
  s.rel_l2 = den > 0 ? std::sqrt(num / den) : std::sqrt(num);
  return s;
}

int run_parity(const ParityOptions& o) {
  DeviceOptions dev = o.device;
  if (dev.dtype.empty()) dev.dtype = "f32";  // parity defaults to the fixtures' precision on every device
  auto made = make_context(dev, rt::LogLevel::Info);
  if (!made) {
    std::fprintf(stderr, "ditrun parity: %s\n", made.status().message().c_str());
    return kExitUsage;
  }
  const rt::Context& ctx = made.value();
  int failures = 0, errors = 0;
  for (const std::string& path : o.files) {
    auto fixture = load_parity_fixture(path);
    if (!fixture) {
      std::fprintf(stderr, "ditrun parity: %s\n", fixture.status().message().c_str());
      ++errors;
      continue;
    }
    ParityFixture& f = fixture.value();
    // Inputs go to the device in f32; models cast to the compute dtype where their reference does.
    for (auto& [name, t] : f.inputs)
      t = rt::to_device(ctx, t, ctx.device(), rt::dtype_is_float(t.dtype()) ? rt::DType::F32 : t.dtype());
    const ParityRunner* runner = find_parity_runner(f.module);
    if (!runner) {
      std::fprintf(stderr, "ditrun parity: %s: unknown module '%s' (known: %s)\n", path.c_str(), f.module.c_str(),
                   known_parity_modules().c_str());
      ++errors;
      continue;
    }
    // A fixture's config is data from outside: a value of the wrong JSON type is a malformed file.
    rt::Result<ParityOutputs> outputs = rt::Status::error("");
    try {
      outputs = (*runner)(ctx, f);
    } catch (const nlohmann::json::exception& e) {
      outputs = rt::Status::error(path + ": metadata 'config' has a value of the wrong type: " + e.what());
    }
    if (!outputs) {
      std::fprintf(stderr, "ditrun parity: %s\n", outputs.status().message().c_str());
      ++errors;
      continue;
    }
    const double tol = o.tolerance >= 0 ? o.tolerance
                                        : (ctx.dtype() == rt::DType::F32 ? f.tolerance : std::max(f.tolerance, kLowPrecisionTolerance));
    for (const auto& [name, want] : f.expected) {
      auto it = outputs->find(name);
      if (it == outputs->end()) {
        std::printf("%s  %s  missing output  FAIL\n", path.c_str(), name.c_str());
        ++failures;
        continue;
      }
      const ErrorStats s = measure(rt::to_host(ctx, it->second), want);
      if (!s.shape_ok) {
        std::printf("%s  %s  shape %s, expected %s  FAIL\n", path.c_str(), name.c_str(), it->second.str().c_str(),
                    want.str().c_str());
        ++failures;
        continue;
      }
      const bool pass = s.finite_ok && s.rel_l2 <= tol;
      std::printf("%s  %s  rel_l2=%.3e  max_abs=%.3e  tol=%.1e  %s\n", path.c_str(), name.c_str(), s.rel_l2, s.max_abs,
                  tol, pass ? "PASS" : (s.finite_ok ? "FAIL" : "FAIL (NaN/Inf mismatch)"));
      if (!pass) ++failures;
    }
  }
  std::fflush(stdout);
  if (errors) return kExitModel;
  return failures ? kExitParity : kExitOk;
}

}  // namespace

Command add_parity_command(CLI::App& root) {
  auto opts = std::make_shared<ParityOptions>();
  CLI::App* cmd = root.add_subcommand("parity", "Run parity fixtures (module weights, inputs and reference outputs) and compare");
  cmd->add_option("files", opts->files, "Fixture .safetensors files")->required()->check(CLI::ExistingFile);
  cmd->add_option("--tolerance", opts->tolerance, "Relative L2 tolerance overriding the fixture's (default: the fixture's, 1e-2 in bf16/f16)");
  add_device_options(*cmd, opts->device);
  return {cmd, [opts] { return run_parity(*opts); }};
}

}  // namespace app
