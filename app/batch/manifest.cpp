#include "app/batch/manifest.h"

#include <cerrno>
#include <chrono>
#include <cstring>
#include <ctime>
#include <fcntl.h>
#include <sys/file.h>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <unistd.h>

#include "app/batch/sha256.h"

namespace app {

namespace fs = std::filesystem;

static std::string os_error(const std::string& what, const std::string& path, int err) {
  return what + " " + path + ": " + std::strerror(err);
}

rt::Result<Manifest> Manifest::open(const std::string& path) {
  Manifest m;
  m.path_ = path;
  std::string text;
  if (std::ifstream in(path, std::ios::binary); in) {
    std::ostringstream ss;
    ss << in.rdbuf();
    if (in.bad()) return rt::Status::error(os_error("cannot read", path, errno));
    text = ss.str();
  }
  std::istringstream lines(text);
  for (std::string line; std::getline(lines, line);) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    nlohmann::json j = nlohmann::json::parse(line, nullptr, false);
    if (j.is_discarded() || !j.is_object()) {
      ++m.unreadable_;
      continue;
    }
    if (j.value("status", "") == "ok" && j.contains("output") && j["output"].is_string())
      m.latest_ok_[j["output"].get<std::string>()] = j;
    else if (j.value("status", "") == "error" && !j.contains("output") && j["line"].is_number_integer() &&
             j["error"].is_string())
      m.line_errors_.insert({j["line"].get<int>(), j["error"].get<std::string>()});
  }
  m.fd_ = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (m.fd_ < 0) return rt::Status::error(os_error("cannot open manifest", path, errno));
  // Two runs on one directory would generate the same images and interleave their records.
  if (::flock(m.fd_, LOCK_EX | LOCK_NB) != 0)
    return rt::Status::error(errno == EWOULDBLOCK ? "another ditrun batch is using " + path + " (it is locked); wait for it or use another --out-dir"
                                                  : os_error("cannot lock manifest", path, errno));
  if (!text.empty() && text.back() != '\n') {
    // A torn last line (a crash mid-append): end it so the next record starts on a line of its own.
    if (::write(m.fd_, "\n", 1) != 1) return rt::Status::error(os_error("cannot write manifest", path, errno));
  }
  return m;
}

Manifest::Manifest(Manifest&& o) noexcept
    : path_(std::move(o.path_)),
      fd_(o.fd_),
      unreadable_(o.unreadable_),
      latest_ok_(std::move(o.latest_ok_)),
      line_errors_(std::move(o.line_errors_)) {
  o.fd_ = -1;
}

Manifest::~Manifest() {
  if (fd_ >= 0) ::close(fd_);
}

const nlohmann::json* Manifest::latest_ok(const std::string& output) const {
  const auto it = latest_ok_.find(output);
  return it == latest_ok_.end() ? nullptr : &it->second;
}

bool Manifest::has_line_error(int line, const std::string& message) const {
  return line_errors_.count({line, message}) > 0;
}

rt::Status Manifest::append(const nlohmann::json& record) {
  const std::string line = record.dump() + "\n";
  // O_APPEND makes the one write land whole at the end; a short write (full disk) is undone so the
  // file never holds half a record followed by the next one.
  const off_t before = ::lseek(fd_, 0, SEEK_END);
  const ssize_t n = ::write(fd_, line.data(), line.size());
  if (n != ssize_t(line.size())) {
    const int err = n < 0 ? errno : ENOSPC;
    if (before >= 0 && ::ftruncate(fd_, before) != 0) {
      // The torn line stays; reading skips it and the next open ends it with a newline.
    }
    return rt::Status::error(os_error("cannot append to manifest", path_, err));
  }
  if (::fsync(fd_) != 0) return rt::Status::error(os_error("cannot flush manifest", path_, errno));
  if (record.value("status", "") == "ok") latest_ok_[record["output"].get<std::string>()] = record;
  return rt::Status::ok();
}

ResumeDecision decide_resume(const Job& job, const std::string& out_dir, const Manifest& manifest, bool overwrite) {
  const std::string path = (fs::path(out_dir) / job.output).string();
  const nlohmann::json* rec = manifest.latest_ok(job.output);
  const bool same_params = rec && rec->contains("params") && (*rec)["params"] == job.params();
  std::error_code ec;
  if (!fs::exists(path, ec)) {
    if (same_params) return {ResumeAction::Regenerate, job.output + " is recorded in the manifest but missing"};
    return {ResumeAction::Generate, ""};
  }
  if (same_params) {
    auto sum = sha256_file(path);
    if (sum && *sum == rec->value("sha256", "")) return {ResumeAction::Skip, ""};
    return {ResumeAction::Regenerate, job.output + (sum ? " differs from its manifest checksum" : ": " + sum.status().message())};
  }
  if (overwrite) return {ResumeAction::Replace, ""};
  return {ResumeAction::Conflict,
          path + (rec ? " exists and was made with other parameters (see the manifest)"
                      : " exists and is not recorded in the manifest") +
              "; pass --overwrite to replace it, or give the item another \"name\""};
}

static std::string utc_now() {
  const std::time_t t = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

nlohmann::json ok_record(const Job& job, const std::string& sha256, double seconds, int batch_size) {
  return {{"status", "ok"},         {"line", job.line},       {"duplicates", job.duplicates},
          {"seed", job.seed},       {"output", job.output},   {"sha256", sha256},
          {"params", job.params()}, {"seconds", seconds},     {"batch_size", batch_size},
          {"time", utc_now()}};
}

nlohmann::json error_record(int line, const std::string& message, const Job* job) {
  nlohmann::json j = {{"status", "error"}, {"line", line}, {"error", message}, {"time", utc_now()}};
  if (job) {
    j["seed"] = job->seed;
    j["output"] = job->output;
    j["params"] = job->params();
  }
  return j;
}

}  // namespace app
