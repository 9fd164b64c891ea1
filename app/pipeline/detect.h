// Which model family and weight layout a checkpoint holds, from its tensor names alone (the shapes
// then give the dimensions). Used by `inspect` and to refuse a checkpoint given for the wrong role.
#pragma once
#include <string>

#include "weights/store.h"

namespace app {

enum class Family { Unknown, FluxTransformer, FluxVAE, T5Encoder, ClipTextEncoder };

struct Detected {
  Family family = Family::Unknown;
  std::string layout;  // "bfl", "diffusers", "transformers", "bfl (model.diffusion_model. prefix)", ...
};

Detected detect_family(const weights::TensorStore& store);
const char* family_name(Family f);  // "Flux transformer", ...

// Error unless `store` holds `want`; the message says what it holds instead and which flag takes it.
rt::Status expect_family(const weights::TensorStore& store, Family want, const std::string& flag);

}  // namespace app
