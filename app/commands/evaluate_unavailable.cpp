// `ditrun evaluate` in a build without OpenCV (DITRUN_OPENCV=OFF): app/evaluate is not compiled, so the
// command only takes whatever flags it is given and says how to get the real one.
#include <cstdio>

#include "app/commands/commands.h"
#include "app/commands/exit_codes.h"

namespace app {

Command add_evaluate_command(CLI::App& root) {
  CLI::App* cmd = root.add_subcommand("evaluate", "Score images of the shapes world (unavailable: built without OpenCV)");
  cmd->allow_extras();
  return {cmd, [] {
            std::fprintf(stderr, "ditrun evaluate: this ditrun was built without OpenCV; install "
                                 "libopencv-core-dev, libopencv-imgproc-dev and libopencv-imgcodecs-dev and rebuild "
                                 "(cmake -DDITRUN_OPENCV=ON)\n");
            return kExitFailure;
          }};
}

}  // namespace app
