// The subcommands of the ditrun CLI. Each registers its flags on a CLI11 subcommand and returns the
// function that runs it (the process exit code), so main.cpp stays a thin dispatcher.
#pragma once
#include <functional>

#include <CLI/CLI.hpp>

namespace app {

// A subcommand and the function that runs it once its flags are parsed; returns the exit code.
struct Command {
  CLI::App* cli = nullptr;
  std::function<int()> run;
};

Command add_generate_command(CLI::App& root);
Command add_parity_command(CLI::App& root);
Command add_inspect_command(CLI::App& root);
Command add_evaluate_command(CLI::App& root);
Command add_bench_command(CLI::App& root);
Command add_bench_attention_command(CLI::App& root);
Command add_compare_command(CLI::App& root);
Command add_batch_command(CLI::App& root);
Command add_backends_command(CLI::App& root);
Command add_calibrate_command(CLI::App& root);

}  // namespace app
