// What `ditrun batch` tells people and scripts: one live progress line on stderr (images done/total,
// the current group, images per minute, ETA; redrawn in place on a terminal, one line per image
// otherwise), notes and errors on stderr, and with --log-json one JSON event per line on stdout:
//   start, stage, image_done, image_error, group_done, finished (with totals and per-group rates).
// A stage event marks each pass's progress (encode, every denoise step, decode) with the seconds since
// the start and since the pass began, so a piped or killed run shows where its time went; without a
// terminal, stderr gets the same as lines for each group's first pass and whenever 10 s went by quietly.
#pragma once
#include <cstdio>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "app/batch/jobs.h"

namespace app {

struct BatchTotals {
  int images = 0;      // jobs (distinct images) in the prompts file
  int to_run = 0;      // of which this run generates
  int skipped = 0;     // already done (resume)
  int bad_lines = 0;   // prompts-file lines that make no image
  int duplicates = 0;  // jobs merged into identical earlier ones
  int groups = 0;
};

class BatchReporter {
 public:
  // quiet: no progress or notes (errors still go to stderr); json: events on `out`; tty: redraw in place.
  BatchReporter(bool quiet, bool json, bool tty, std::FILE* out = stdout, std::FILE* err = stderr);

  void start(const BatchTotals& totals, const std::string& out_dir);
  void group_start(int group, const JobSettings& settings, int images);
  // A batched pass of `images` images begins (one call of the pipeline).
  void pass_start(int images);
  // Progress of the current pass: stage "encode", "denoise" or "decode", i of n done.
  void stage(const std::string& name, int i, int n);
  void image_done(const Job& job, const std::string& path, const std::string& sha256, double seconds);
  void image_error(int line, const Job* job, const std::string& message);
  void group_done();
  // A line for people on stderr (not with quiet).
  void note(const std::string& message);
  // The summary (stderr) and the finished event; returns nothing, the caller picks the exit code.
  void finished(bool interrupted, const std::string& stopped_because, int exit_code);

  int generated() const { return generated_; }
  int errors() const { return errors_; }

 private:
  struct Group {
    std::string label;
    int images = 0, done = 0, errors = 0;
    double seconds = 0;
  };
  double now() const;
  void clear_line();
  void draw();
  void emit(const nlohmann::json& event);

  bool quiet_, json_, tty_;
  std::FILE* out_;
  std::FILE* err_;
  BatchTotals totals_;
  double start_ = 0, group_start_ = 0, pass_start_ = 0, last_stage_line_ = 0;
  int generated_ = 0, errors_ = 0, step_ = 0, steps_ = 0;
  int passes_ = 0, group_passes_ = 0, pass_images_ = 0;
  std::vector<Group> groups_;
  bool line_shown_ = false;
};

// "1m05s", "12s", "2h03m".
std::string format_duration(double seconds);

}  // namespace app
