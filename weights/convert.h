// Host-side conversion of stored tensor bytes into the dtype a model is placed in, for loading: element
// runs of a checkpoint (mmap'ed, any stored dtype) written to a destination buffer, a range at a time, on
// several threads when the range is large. The destination is a final CPU tensor or a pinned staging
// chunk on its way to the device (rt::StagedUpload), so a range may start and end anywhere.
#pragma once
#include <cstdint>
#include <vector>

#include "dtype.h"

namespace weights {

// A run of contiguous elements in a stored dtype (a tensor of an mmap'ed file, or a part of one).
struct Piece {
  const void* data = nullptr;
  rt::DType dtype = rt::DType::F32;
  int64_t numel = 0;
};

int64_t pieces_numel(const std::vector<Piece>& pieces);

// Elements [begin, end) of the concatenation of `pieces`, converted to `dst_dtype`, written to `dst`
// (dst holds element `begin` first). Each element converts as Tensor::to does (through f32: bf16 and
// f16 round to nearest even); a piece already in `dst_dtype` is copied byte for byte. Up to `threads`
// std::threads share a range of more than a few MiB; smaller ones run on the caller's thread.
void convert_range(const std::vector<Piece>& pieces, rt::DType dst_dtype, void* dst, int64_t begin, int64_t end,
                   int threads);

}  // namespace weights
