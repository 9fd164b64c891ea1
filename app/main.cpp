// ditrun: text-to-image with diffusion transformers. A thin CLI over app/commands.
#include <vector>

#include "app/commands/commands.h"
#include "app/commands/exit_codes.h"

int main(int argc, char** argv) {
  CLI::App root{"ditrun: diffusion transformers (Flux) from a prompt to an image", "ditrun"};
  root.require_subcommand(1);
  root.set_version_flag("--version", "ditrun 0.1.0");
  const std::vector<app::Command> commands = {
      app::add_generate_command(root),
      app::add_parity_command(root),
      app::add_inspect_command(root),
      app::add_evaluate_command(root),
      app::add_bench_command(root),
      app::add_bench_attention_command(root),
      app::add_compare_command(root),
      app::add_batch_command(root),
      app::add_backends_command(root),
      app::add_calibrate_command(root),
  };
  try {
    root.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int code = root.exit(e);  // prints help/version or the parse error
    return code == 0 ? app::kExitOk : app::kExitUsage;
  }
  for (const app::Command& c : commands)
    if (c.cli->parsed()) return c.run();
  return app::kExitUsage;
}
