// The cuDNN frontend (header-only graph API), as every ditrun file must include it. Host code of CUDA builds.
// CUDNN_FRONTEND_SKIP_JSON_LIB leaves out the frontend's JSON serialization: unused here, and a second
// nlohmann copy in the binary. Every file that includes the frontend must agree on that macro: it changes the
// classes' layout (virtual serialize methods), and two layouts of one inline class in one binary break the
// one-definition rule; hence this one header. The frontend's headers also define helpers a file may not call.
#pragma once

#define CUDNN_FRONTEND_SKIP_JSON_LIB
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#include <cudnn_frontend.h>
#pragma GCC diagnostic pop
