#include "staged_upload.h"

#include <chrono>

#include "base/check.h"

#if DITRUN_WITH_CUDA
#include "cuda/staging.h"
#endif

namespace rt {

#if !DITRUN_WITH_CUDA
namespace cuda {
class PinnedStaging {};  // never made without the CUDA backend; complete so unique_ptr can delete it
}  // namespace cuda
#endif

StagedUpload::StagedUpload(const Context& ctx, size_t buffer_bytes) : ctx_(&ctx) {
#if DITRUN_WITH_CUDA
  if (ctx.device().is_cuda()) staging_ = std::make_unique<cuda::PinnedStaging>(ctx, buffer_bytes);
#else
  (void)buffer_bytes;
#endif
}

StagedUpload::~StagedUpload() = default;

void StagedUpload::write(const Tensor& dst, const ProduceFn& produce) {
  CHECK(dst.defined() && dst.is_contiguous() && dst.device() == ctx_->device(), "StagedUpload::write: ", dst.str(),
        " must be contiguous on ", device_str(ctx_->device()));
  stats_.bytes += dst.nbytes();
  if (dst.nbytes() == 0) return;
#if DITRUN_WITH_CUDA
  if (staging_) {
    staging_->write(dst, produce, &stats_);
    return;
  }
#endif
  const auto t0 = std::chrono::steady_clock::now();
  produce(dst.raw_data(), 0, dst.nbytes());
  stats_.produce_seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace rt
