#include "app/evaluate/frames.h"

#include <algorithm>
#include <filesystem>

#include "app/evaluate/analyze.h"

namespace app::eval {

namespace fs = std::filesystem;

rt::Result<std::unique_ptr<FrameSource>> PngFolderSource::open(const std::string& dir) {
  auto src = std::make_unique<PngFolderSource>();
  src->dir_ = dir;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    std::string ext = e.path().extension().string();
    std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return char(std::tolower(c)); });
    if (e.is_regular_file() && ext == ".png") src->files_.push_back(e.path().string());
  }
  if (ec) return rt::Status::error("video " + dir + ": cannot list it (" + ec.message() + ")");
  std::sort(src->files_.begin(), src->files_.end());
  if (src->files_.size() < 2)
    return rt::Status::error("video " + dir + ": " + std::to_string(src->files_.size()) +
                             " PNG frames, need at least 2\n  hint: a video is a folder of frames 0000.png, 0001.png, ...");
  return std::unique_ptr<FrameSource>(std::move(src));
}

rt::Result<cv::Mat> PngFolderSource::frame(int i) {
  DITRUN_CHECK(i >= 0 && i < frame_count(), "frame ", i, " out of range");
  return load_rgb(files_[size_t(i)]);
}

rt::Result<std::unique_ptr<FrameSource>> open_video(const std::string& path) {
  if (fs::is_directory(path)) return PngFolderSource::open(path);
  if (fs::exists(path))
    return rt::Status::error("video " + path + ": not a folder of PNG frames (video files such as MP4 are not read yet)");
  return rt::Status::error("video " + path + ": no such folder");
}

rt::Result<std::vector<cv::Mat>> read_all_frames(FrameSource& source) {
  std::vector<cv::Mat> out;
  for (int i = 0; i < source.frame_count(); ++i) {
    auto f = source.frame(i);
    if (!f) return f.status();
    if (!out.empty() && f->size() != out[0].size())
      return rt::Status::error("video " + source.describe() + ": frame " + std::to_string(i) + " is " +
                               std::to_string(f->cols) + "x" + std::to_string(f->rows) + ", frame 0 is " +
                               std::to_string(out[0].cols) + "x" + std::to_string(out[0].rows));
    out.push_back(std::move(f).value());
  }
  return out;
}

}  // namespace app::eval
