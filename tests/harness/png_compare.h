// Compares two 8-bit RGB PNGs value by value (the end-to-end contract with diffusers' images: mean |diff|
// <= 0.5 of a level and >= 99% of values within 2 levels).
#pragma once
#include <string>

namespace test {

struct PngDiff {
  bool ok = false;         // both files read as RGB8 and have the same size
  std::string error;       // why not, when !ok
  int width = 0, height = 0;
  double mean_abs = 0;     // mean |a - b| over all values (levels)
  double within2 = 0;      // fraction of values with |a - b| <= 2
  int worst = 0;           // max |a - b|
};

PngDiff compare_png(const std::string& a, const std::string& b);

// Catch2 assertions of the contract: `got` reads, is width x height, mean |diff| <= 0.5, >= 99% within 2.
void check_png_matches(const std::string& got, const std::string& want, int width, int height);

}  // namespace test
