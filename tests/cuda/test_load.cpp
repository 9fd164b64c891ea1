// Checkpoint loading onto the GPU (rt::StagedUpload, WeightLoader::place): every byte that reaches the
// device equals the CPU load converted to the device dtype, for tensors that span staging buffers, for
// the name maps' transforms (concatenated q/k/v, swapped halves, reshapes) and for stored f32 and bf16.
// Loading is a copy, so all comparisons are exact (memcmp of the bf16 bytes), not toleranced.
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "app/pipeline/flux_pipeline.h"
#include "app/pipeline/model_paths.h"
#include "dit/flux/names.h"
#include "harness/gpu.h"
#include "harness/safetensors_writer.h"
#include "ops.h"
#include "rng.h"
#include "staged_upload.h"
#include "text_encoder/clip/config.h"
#include "text_encoder/t5/config.h"
#include "vae/flux/names.h"
#include "weights/name_map.h"

#include <catch2/catch.hpp>

using rt::DType;
using rt::Tensor;

static const std::string kTiny = std::string(DITRUN_FIXTURES_DIR) + "/e2e/tiny-flux";

// The device tensor's bytes on the host, in its own dtype (no conversion on the way back).
static Tensor device_bytes(const rt::Context& ctx, const Tensor& t) {
  return rt::to_device(ctx, t, rt::Device::cpu(), t.dtype());
}

static bool same_bytes(const Tensor& a, const Tensor& b) {
  return a.dtype() == b.dtype() && a.nbytes() == b.nbytes() && std::memcmp(a.raw_data(), b.raw_data(), a.nbytes()) == 0;
}

static bool finite(const Tensor& t) {
  for (float v : t.to_vector())
    if (!std::isfinite(v)) return false;
  return true;
}

TEST_CASE("load.staged_upload_spans_buffers_bitwise", "[cuda]") {
  DITRUN_GPU_OR_SKIP(ctx, DType::BF16);
  // Odd sizes: tensors smaller than a buffer share one, larger ones span several; with 8 KiB buffers
  // nearly every tensor crosses a boundary, with the default 64 MiB the 40 M-element one does.
  const std::vector<int64_t> sizes = {1, 3, 1000, 4099, 300001, 40'000'003, 17, 5'000'001};
  std::vector<Tensor> host;
  for (size_t i = 0; i < sizes.size(); ++i) host.push_back(rt::TorchGenerator(100 + i).randn({sizes[i]}).to(DType::BF16));
  for (size_t buffer : {size_t(8) << 10, rt::StagedUpload::kDefaultBufferBytes}) {
    INFO("buffer bytes " << buffer);
    std::vector<Tensor> dev;
    {
      rt::StagedUpload up(ctx, buffer);
      for (const Tensor& h : host) {
        dev.push_back(rt::empty(ctx, h.shape(), DType::BF16));
        up.write(dev.back(), [&](void* out, size_t offset, size_t n) {
          REQUIRE(offset + n <= h.nbytes());
          std::memcpy(out, static_cast<const char*>(h.raw_data()) + offset, n);
        });
      }
      CHECK(up.stats().bytes == size_t(2 * (1 + 3 + 1000 + 4099 + 300001 + 40'000'003 + 17 + 5'000'001)));
    }  // the destructor waits for the copies; the context's stream orders the reads below after them
    for (size_t i = 0; i < host.size(); ++i) {
      INFO("tensor " << i << " of " << sizes[i] << " elements");
      CHECK(same_bytes(device_bytes(ctx, dev[i]), host[i]));
    }
  }
}

// Every canonical tensor of `ms`, placed on ctx (bf16), against the CPU f32 load rounded to bf16 there.
static void check_every_weight(const rt::Context& ctx, const std::shared_ptr<weights::MappedStore>& ms) {
  weights::WeightLoader gpu(ms, "gpu"), cpu(ms, "cpu");
  gpu.place(ctx);
  size_t n = 0;
  for (const std::string& name : ms->names()) {
    INFO(ms->source().source() << ": " << name);
    const rt::Shape shape = ms->shape(name);
    const Tensor on_device = gpu.get(name, shape);
    REQUIRE(on_device.device() == ctx.device());
    REQUIRE(on_device.dtype() == DType::BF16);
    REQUIRE(on_device.shape() == shape);
    const Tensor want = cpu.get(name, shape).to(DType::BF16);
    const Tensor got = device_bytes(ctx, on_device);
    CHECK(same_bytes(got, want));
    CHECK(finite(got));
    ++n;
  }
  CHECK(n == ms->names().size());
  CHECK(gpu.loaded_bytes() == cpu.loaded_bytes() / 2);
  CHECK(gpu.load_stats().source_bytes == cpu.load_stats().source_bytes);
}

static weights::TensorStore open_store(const std::string& path) {
  auto r = weights::TensorStore::open(path);
  INFO(r.status().message());
  REQUIRE(r.is_ok());
  return std::move(r).value();
}

template <class R>
static std::shared_ptr<weights::MappedStore> value_of(R r) {
  INFO(r.status().message());
  REQUIRE(r.is_ok());
  return std::move(r).value();
}

// A copy of `store` with every tensor stored in bf16, as a fresh file.
static weights::TensorStore as_bf16(const weights::TensorStore& store) {
  std::vector<test::StTensor> tensors;
  for (const std::string& name : store.names()) tensors.push_back(test::st_from_tensor(name, store.load_f32(name).to(DType::BF16)));
  const std::string path = test::make_temp_dir("load_bf16") + "/m.safetensors";
  test::write_safetensors(path, tensors);
  return open_store(path);
}

TEST_CASE("load.every_weight_equals_cpu_load_bf16", "[cuda]") {
  DITRUN_GPU_OR_SKIP(ctx, DType::BF16);
  // The tiny Flux folder stores f32 (converted on the host while staging); its bf16 copy is byte-copied.
  for (bool bf16 : {false, true}) {
    INFO((bf16 ? "stored bf16" : "stored f32"));
    auto stored = [&](const std::string& dir) {
      weights::TensorStore s = open_store(kTiny + "/" + dir);
      return bf16 ? as_bf16(s) : s;
    };
    check_every_weight(ctx, value_of(dit::flux::map_flux_checkpoint(stored("transformer"))));
    check_every_weight(ctx, value_of(vae::flux::map_vae_store(stored("vae"))));
    const weights::TensorStore t5 = stored("text_encoder_2"), clip = stored("text_encoder");
    check_every_weight(ctx, value_of(weights::MappedStore::create(t5, te::t5::name_map(t5))));
    check_every_weight(ctx, value_of(weights::MappedStore::create(clip, te::clip::name_map(clip))));
  }
}

TEST_CASE("load.pipeline_reports_each_component", "[cuda]") {
  DITRUN_GPU_OR_SKIP(ctx, DType::BF16);
  auto paths = app::resolve_model_paths({kTiny, "", "", "", ""});
  INFO(paths.status().message());
  REQUIRE(paths.is_ok());
  auto pipe = app::FluxPipeline::load(ctx, paths.value());
  INFO(pipe.status().message());
  REQUIRE(pipe.is_ok());
  const app::LoadReport& report = pipe.value()->load_report();
  REQUIRE(report.components.size() == 4);
  for (const app::ComponentLoad& c : report.components) {
    INFO(c.name);
    CHECK(c.device == ctx.device());
    CHECK(c.bytes == size_t(c.params) * 2);
    CHECK(c.read_bytes == size_t(c.params) * 4);  // the fixture stores f32
    CHECK(c.host_seconds > 0);
    CHECK(c.host_seconds + c.wait_seconds <= c.seconds);
  }
}
