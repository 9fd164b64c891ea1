// Video input for the evaluator: a FrameSource hands out a video's frames in order as RGB images. The one
// reader today is a folder of frames (NNNN.png, ordered by file name: there is no video writer in ditrun
// yet, so frames-as-PNG is the exchange format); an MP4 reader would be one more FrameSource that
// open_video picks for a regular file, with nothing above it changing.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include <opencv2/core.hpp>

#include "base/status.h"

namespace app::eval {

class FrameSource {
 public:
  virtual ~FrameSource() = default;
  virtual int frame_count() const = 0;
  // Frame i (0 <= i < frame_count()) as CV_8UC3 RGB; an error names the frame.
  virtual rt::Result<cv::Mat> frame(int i) = 0;
  virtual std::string describe() const = 0;  // for messages: the folder or file
};

// A folder of *.png frames, in file-name order (0000.png, 0001.png, ...); at least two frames.
class PngFolderSource : public FrameSource {
 public:
  static rt::Result<std::unique_ptr<FrameSource>> open(const std::string& dir);
  int frame_count() const override { return int(files_.size()); }
  rt::Result<cv::Mat> frame(int i) override;
  std::string describe() const override { return dir_; }

 private:
  std::string dir_;
  std::vector<std::string> files_;
};

// Opens a video by path: a folder of PNG frames (the only format so far); errors name the path.
rt::Result<std::unique_ptr<FrameSource>> open_video(const std::string& path);

// Every frame of a source, in order.
rt::Result<std::vector<cv::Mat>> read_all_frames(FrameSource& source);

}  // namespace app::eval
