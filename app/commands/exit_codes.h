// Process exit codes, documented in the README. Scripts rely on them: keep them stable.
#pragma once

namespace app {

enum ExitCode : int {
  kExitOk = 0,
  kExitFailure = 1,      // the run failed (I/O error, out of memory, internal error)
  kExitUsage = 2,        // bad command line: unknown flag, invalid value, invalid size, empty prompt
  kExitModel = 3,        // model files missing, malformed, of another family, or not matching
  kExitOutput = 4,       // output exists (without --overwrite) or cannot be written
  kExitParity = 5,       // parity: an output exceeded its tolerance
};

}  // namespace app
