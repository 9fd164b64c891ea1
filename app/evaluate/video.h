// Video analysis and scoring for the procedural shapes world (world.py sample_video / render_video).
//
// analyze_video runs analyze_image on every frame, then tracks each object of frame 0 through the
// frames: per frame, the (track, detection) pairs are taken cheapest first, the cost being the centroid
// distance (fractions of the image side) plus a small colour term (RGB distance / 441 * kColorWeight), so a
// track follows the nearest centroid and colour breaks ties; a detection farther than kMaxStep per frame
// since the track was last seen is not taken (the track skips that frame). From a track:
//   travel      centroid of the last frame seen minus that of the first, fractions of width/height
//   area ratio  filled-outline area last / first
//   rotation    the outline's orientation from the phase of its k-th radial harmonic (k = 3 triangle,
//               4 square and cross, 5 star; circles and rings have none), frame-to-frame steps wrapped
//               into +-180/k degrees and summed, so a 90 degree turn of a square (which looks the same at
//               both ends) is still seen
//   colours     the spec colour names of the first and last frames seen
// and one motion, the first rule that holds: travel >= kMinTravel -> move_left/right/up/down by the larger
// axis (y down); area ratio >= kGrowRatio -> grow, <= 1/kGrowRatio -> shrink; colour names differ ->
// recolor; |rotation| >= kMinSpinDeg -> spin; else still. The motion is reported as its label: the spec
// motion name, plus " to <size>" for grow/shrink and " to <colour>" for recolor (the end state is part of
// the prompt), so "grow to large" against "grow to medium" is wrong.
//
// score_video: background, texture and count from frame 0; per expected object (matched to a track as
// score_image matches objects, by agreement of colour, shape, size and motion, motion counting double)
// color, shape and size on frame 0 (the start colour / start size of recolor / grow / shrink objects) and
// motion. Video prompts have no position phrase, so position is not scored.
#pragma once
#include <string>
#include <vector>

#include "app/evaluate/score.h"

namespace app::eval {

struct Track {
  std::vector<int> det;  // per frame: index into that frame's Analysis::objects, or -1 (not seen)
};

struct MotionMeasure {
  double dx = 0, dy = 0;    // travel, fractions of width / height (y down)
  double area_ratio = 1;    // last / first filled area
  double rotation_deg = 0;  // summed orientation steps; 0 without a symmetry
  int symmetry = 0;         // k of the harmonic used for the rotation, 0 for none
  int frames_seen = 0;
  std::string first_color, last_color, first_size, last_size;
  std::string label;        // "move_right", "grow to large", "recolor to red", "spin", "still", ...
};

struct VideoAnalysis {
  std::vector<Analysis> frames;
  std::vector<Track> tracks;           // one per object of frame 0 (largest first)
  std::vector<MotionMeasure> motions;  // per track
};

VideoAnalysis analyze_video(const std::vector<cv::Mat>& rgb_frames, const WorldSpec& spec);

// The label an expected object's motion should be detected as ("" for an image object).
std::string expected_motion_label(const ExpectedObject& e);

// match: per expected object, the index of its track or -1.
ImageScore score_video(const ExpectedScene& expected, const VideoAnalysis& detected, const WorldSpec& spec);

}  // namespace app::eval
