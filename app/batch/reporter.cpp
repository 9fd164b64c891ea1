#include "app/batch/reporter.h"

#include <algorithm>
#include <chrono>
#include <cmath>

namespace app {

std::string format_duration(double seconds) {
  const long s = long(std::lround(std::max(0.0, seconds)));
  char buf[32];
  if (s >= 3600) std::snprintf(buf, sizeof buf, "%ldh%02ldm", s / 3600, s / 60 % 60);
  else if (s >= 60) std::snprintf(buf, sizeof buf, "%ldm%02lds", s / 60, s % 60);
  else std::snprintf(buf, sizeof buf, "%lds", s);
  return buf;
}

static double millis(double seconds) { return std::round(seconds * 1000.0) / 1000.0; }

static double per_minute(int images, double seconds) { return seconds > 0 ? images * 60.0 / seconds : 0.0; }

static std::string group_label(const JobSettings& s) {
  std::string label = std::to_string(s.width) + "x" + std::to_string(s.height) + ", " + std::to_string(s.steps) + " steps";
  if (s.negative_prompt) label += ", true CFG";
  if (s.attention != "dense") label += ", " + s.attention;
  return label;
}

BatchReporter::BatchReporter(bool quiet, bool json, bool tty, std::FILE* out, std::FILE* err)
    : quiet_(quiet), json_(json), tty_(tty && !quiet), out_(out), err_(err) {
  start_ = now();
}

double BatchReporter::now() const {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

void BatchReporter::emit(const nlohmann::json& event) {
  if (!json_) return;
  std::fprintf(out_, "%s\n", event.dump().c_str());
  std::fflush(out_);
}

void BatchReporter::clear_line() {
  if (tty_ && line_shown_) std::fprintf(err_, "\r\033[K");
  line_shown_ = false;
}

void BatchReporter::draw() {
  if (quiet_) return;
  const int done = generated_ + errors_;
  const double el = now() - start_, rate = per_minute(generated_, el);
  std::string line = "ditrun batch: " + std::to_string(done) + "/" + std::to_string(totals_.to_run) + " images";
  if (!groups_.empty())
    line += " | group " + std::to_string(groups_.size()) + "/" + std::to_string(totals_.groups) + " (" + groups_.back().label + ")";
  if (tty_ && steps_ > 0) line += " | step " + std::to_string(step_) + "/" + std::to_string(steps_);
  char buf[64];
  std::snprintf(buf, sizeof buf, " | %.1f img/min", rate);
  line += buf;
  if (generated_ > 0 && done < totals_.to_run) line += " | ETA " + format_duration(el / done * (totals_.to_run - done));
  if (tty_) {
    std::fprintf(err_, "\r\033[K%s", line.c_str());
    line_shown_ = true;
  } else {
    std::fprintf(err_, "%s\n", line.c_str());
  }
  std::fflush(err_);
}

void BatchReporter::start(const BatchTotals& totals, const std::string& out_dir) {
  totals_ = totals;
  start_ = now();
  emit({{"event", "start"},         {"images", totals.images},         {"to_generate", totals.to_run},
        {"skipped", totals.skipped}, {"bad_lines", totals.bad_lines},   {"duplicates", totals.duplicates},
        {"groups", totals.groups},   {"out_dir", out_dir}});
  if (quiet_) return;
  std::fprintf(err_, "ditrun batch: %d images (%d to generate, %d already done", totals.images, totals.to_run, totals.skipped);
  if (totals.duplicates) std::fprintf(err_, ", %d duplicates merged", totals.duplicates);
  if (totals.bad_lines) std::fprintf(err_, ", %d bad line%s", totals.bad_lines, totals.bad_lines == 1 ? "" : "s");
  std::fprintf(err_, ") in %d group%s -> %s\n", totals.groups, totals.groups == 1 ? "" : "s", out_dir.c_str());
}

void BatchReporter::group_start(int group, const JobSettings& settings, int images) {
  (void)group;
  groups_.push_back({group_label(settings), images, 0, 0, 0});
  group_start_ = now();
  steps_ = step_ = 0;
  group_passes_ = 0;
}

void BatchReporter::pass_start(int images) {
  ++passes_;
  ++group_passes_;
  pass_images_ = images;
  pass_start_ = now();
}

// Without a terminal, a line per stage of a group's first pass (where plans are built and a slow or stuck
// first call shows), later ones only after kQuietSeconds without one.
static constexpr double kQuietSeconds = 10.0;

void BatchReporter::stage(const std::string& name, int i, int n) {
  if (name == "denoise") {
    step_ = i;
    steps_ = n;
  }
  const double t = now();
  // Flushed like every event (a step takes milliseconds at least), so a stalled or killed run shows the
  // stage it was in.
  emit({{"event", "stage"}, {"stage", name},          {"done", i},
        {"of", n},          {"pass", passes_},         {"images", pass_images_},
        {"seconds", millis(t - start_)}, {"pass_seconds", millis(t - pass_start_)}});
  if (quiet_) return;
  if (tty_) {
    if (name == "denoise") draw();
    return;
  }
  if (group_passes_ > 1 && t - last_stage_line_ < kQuietSeconds) return;
  last_stage_line_ = t;
  std::fprintf(err_, "ditrun batch: pass %d (%d image%s): %s %d/%d at %.1f s (pass %.1f s)\n", passes_, pass_images_,
               pass_images_ == 1 ? "" : "s", name.c_str(), i, n, t - start_, t - pass_start_);
  std::fflush(err_);
}

void BatchReporter::image_done(const Job& job, const std::string& path, const std::string& sha256, double seconds) {
  ++generated_;
  if (!groups_.empty()) ++groups_.back().done;
  steps_ = 0;
  emit({{"event", "image_done"}, {"line", job.line},   {"seed", job.seed},     {"output", path},
        {"sha256", sha256},      {"seconds", seconds}, {"group", groups_.size()}, {"done", generated_ + errors_},
        {"total", totals_.to_run}});
  if (!json_) {
    clear_line();
    std::fprintf(out_, "%s\n", path.c_str());
    std::fflush(out_);
  }
  draw();
}

void BatchReporter::image_error(int line, const Job* job, const std::string& message) {
  nlohmann::json e = {{"event", "image_error"}, {"line", line}, {"error", message}};
  if (job) {
    ++errors_;
    if (!groups_.empty()) ++groups_.back().errors;
    e["seed"] = job->seed;
    e["output"] = job->output;
  }
  emit(e);
  clear_line();
  std::fprintf(err_, "ditrun batch: line %d%s: %s\n", line,
               job ? (" seed " + std::to_string(job->seed)).c_str() : "", message.c_str());
  if (job) draw();
}

void BatchReporter::group_done() {
  if (groups_.empty()) return;
  Group& g = groups_.back();
  g.seconds = now() - group_start_;
  emit({{"event", "group_done"},  {"group", groups_.size()}, {"settings", g.label},
        {"images", g.done},       {"errors", g.errors},      {"seconds", g.seconds},
        {"images_per_minute", per_minute(g.done, g.seconds)}});
}

void BatchReporter::note(const std::string& message) {
  if (quiet_) return;
  clear_line();
  std::fprintf(err_, "ditrun batch: %s\n", message.c_str());
}

void BatchReporter::finished(bool interrupted, const std::string& stopped_because, int exit_code) {
  const double el = now() - start_;
  nlohmann::json groups = nlohmann::json::array();
  for (const Group& g : groups_)
    groups.push_back({{"settings", g.label}, {"images", g.done}, {"errors", g.errors}, {"seconds", g.seconds},
                      {"images_per_minute", per_minute(g.done, g.seconds)}});
  const int not_run = totals_.to_run - generated_ - errors_;
  emit({{"event", "finished"},          {"generated", generated_},     {"skipped", totals_.skipped},
        {"errors", errors_},            {"bad_lines", totals_.bad_lines}, {"not_run", not_run},
        {"interrupted", interrupted},   {"stopped", stopped_because},  {"seconds", el},
        {"images_per_minute", per_minute(generated_, el)}, {"groups", groups}, {"exit_code", exit_code}});
  clear_line();
  if (quiet_) return;
  std::fprintf(err_, "ditrun batch: %d generated in %s (%.1f images/min), %d already done, %d failed, %d bad line%s",
               generated_, format_duration(el).c_str(), per_minute(generated_, el), totals_.skipped, errors_,
               totals_.bad_lines, totals_.bad_lines == 1 ? "" : "s");
  if (not_run > 0) std::fprintf(err_, ", %d not run", not_run);
  std::fprintf(err_, "\n");
  if (!stopped_because.empty()) std::fprintf(err_, "ditrun batch: stopped: %s\n", stopped_because.c_str());
  for (size_t i = 0; i < groups_.size(); ++i)
    std::fprintf(err_, "ditrun batch:   group %zu (%s): %d images in %s, %.1f images/min\n", i + 1,
                 groups_[i].label.c_str(), groups_[i].done, format_duration(groups_[i].seconds).c_str(),
                 per_minute(groups_[i].done, groups_[i].seconds));
  if (interrupted) std::fprintf(err_, "ditrun batch: interrupted; run the same command again to continue\n");
}

}  // namespace app
