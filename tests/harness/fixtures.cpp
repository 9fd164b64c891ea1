// Harness sources keep the runtime's DITRUN_CHECK; Catch2 owns CHECK. Must precede every include.
#define DITRUN_NO_SHORT_CHECK
#include "harness/fixtures.h"

#include <algorithm>
#include <filesystem>

#include "harness/compare.h"

#include <catch2/catch.hpp>

namespace fs = std::filesystem;

namespace test {

#if DITRUN_WITH_OPENCV
const app::eval::WorldSpec& world_spec() {
  static const app::eval::WorldSpec s = [] {
    auto r = app::eval::load_world_spec(std::string(DITRUN_SOURCE_DIR) + "/tools/world/spec.json");
    INFO(r.status().message());
    REQUIRE(r.is_ok());
    return std::move(r).value();
  }();
  return s;
}
#endif

std::vector<std::string> parity_fixtures(const std::string& module) {
  std::vector<std::string> out;
  const fs::path dir = fs::path(DITRUN_FIXTURES_DIR) / "parity";
  if (!fs::exists(dir)) return out;
  for (const auto& e : fs::directory_iterator(dir)) {
    const std::string name = e.path().filename().string();
    if (name.rfind(module + "_", 0) == 0 && e.path().extension() == ".safetensors") out.push_back(e.path().string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

app::ParityFixture load_fixture(const std::string& path) {
  auto f = app::load_parity_fixture(path);
  INFO(path << ": " << f.status().message());
  REQUIRE(f.is_ok());
  return std::move(f).value();
}

void check_outputs_match(const app::ParityFixture& f, const app::ParityOutputs& got) {
  for (const auto& [name, want] : f.expected) {
    INFO(f.path << " output " << name);
    REQUIRE(got.count(name) == 1);
    const Diff d = compare(got.at(name), want);
    INFO(d.str());
    CHECK(!d.nan_mismatch);
    CHECK(d.rel_l2 <= f.tolerance);
  }
}

void check_parity_fixtures(const std::string& module) {
  const auto files = parity_fixtures(module);
  INFO("module " << module);
  REQUIRE(!files.empty());
  rt::Context ctx;
  for (const auto& path : files) {
    INFO(path);
    const app::ParityFixture f = load_fixture(path);
    REQUIRE(f.module == module);
    const app::ParityRunner* runner = app::find_parity_runner(f.module);
    REQUIRE(runner != nullptr);
    auto out = (*runner)(ctx, f);
    INFO((out.is_ok() ? std::string() : out.status().message()));
    REQUIRE(out.is_ok());
    check_outputs_match(f, *out);
  }
}

weights::TensorStore rewritten(const weights::TensorStore& src, const TensorEdit& edit, const std::string& prefix) {
  std::vector<StTensor> ts;
  for (const auto& n : src.names()) ts.push_back(st_from_tensor(prefix + n, src.load_f32(n)));
  if (edit) edit(ts);
  const std::string path = make_temp_dir("rewritten") + "/model.safetensors";
  write_safetensors(path, ts);
  auto store = weights::TensorStore::open(path);
  INFO(path << ": " << store.status().message());
  REQUIRE(store.is_ok());
  return std::move(store).value();
}

weights::TensorStore rewritten(const weights::TensorStore& src, const std::string& drop,
                               const std::vector<StTensor>& extra, const std::string& prefix) {
  return rewritten(
      src,
      [&](std::vector<StTensor>& ts) {
        if (!drop.empty()) std::erase_if(ts, [&](const StTensor& t) { return t.name == prefix + drop; });
        ts.insert(ts.end(), extra.begin(), extra.end());
      },
      prefix);
}

}  // namespace test
