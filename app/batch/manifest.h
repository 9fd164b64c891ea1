// out/manifest.jsonl: one JSON object per line, one line per image (or per line of the prompts file
// that made none), appended as each image is written:
//   {"status":"ok","line":3,"duplicates":[],"seed":42,"output":"a-red-circle_L3_s42.png",
//    "sha256":"<of the PNG file>","params":{...},"seconds":1.9,"batch_size":4,"time":"..."}
//   {"status":"error","line":5,"error":"invalid JSON: ..."}
// Each line is one write() of the whole line followed by fsync, so a crash leaves whole lines and at
// most one torn last line, which reading skips (and appending first ends with a newline). Later lines
// win: a re-run appends; the latest "ok" record of an output file is the one resume checks.
#pragma once
#include <map>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "app/batch/jobs.h"
#include "base/status.h"

namespace app {

class Manifest {
 public:
  // Reads `path` if it exists (lines that are not JSON objects are counted, not fatal) and opens it
  // for appending, creating it, with an exclusive lock (flock) held until destruction: a second run on
  // the same directory is refused.
  static rt::Result<Manifest> open(const std::string& path);
  Manifest(Manifest&& other) noexcept;
  Manifest& operator=(Manifest&&) = delete;
  ~Manifest();

  // The latest "ok" record of `output`, or null.
  const nlohmann::json* latest_ok(const std::string& output) const;
  // Whether a record of this bad prompts-file line (no image) with this message is already there: a re-run
  // reports it again but does not append it again.
  bool has_line_error(int line, const std::string& message) const;
  int unreadable_lines() const { return unreadable_; }
  const std::string& path() const { return path_; }

  // Appends one line (record.dump()) atomically and durably; an error names the file and the reason
  // (e.g. "No space left on device").
  rt::Status append(const nlohmann::json& record);

 private:
  Manifest() = default;
  std::string path_;
  int fd_ = -1;
  int unreadable_ = 0;
  std::map<std::string, nlohmann::json> latest_ok_;
  std::set<std::pair<int, std::string>> line_errors_;
};

// What a re-run does with one job, given the manifest and what is on disk.
enum class ResumeAction {
  Skip,        // the file is there with the recorded checksum and the same params: done
  Generate,    // no file yet
  Regenerate,  // recorded with the same params, but the file is gone or its bytes differ
  Replace,     // a file that is not this job's recorded result, and --overwrite was given
  Conflict,    // such a file without --overwrite: the job fails, the file stays
};

struct ResumeDecision {
  ResumeAction action = ResumeAction::Generate;
  std::string why;  // for Regenerate and Conflict: what was found
};

ResumeDecision decide_resume(const Job& job, const std::string& out_dir, const Manifest& manifest, bool overwrite);

// The manifest record of a written image.
nlohmann::json ok_record(const Job& job, const std::string& sha256, double seconds, int batch_size);
// The record of a job or a prompts-file line that made no image.
nlohmann::json error_record(int line, const std::string& message, const Job* job = nullptr);

}  // namespace app
