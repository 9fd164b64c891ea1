#include "sparse_attention/methods/tiled_plan.h"

#include <algorithm>

#include "base/check.h"
#include "sparse_attention/methods/plan.h"

namespace sattn {

namespace {

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

Segment box_segment(const int64_t idx[3], const int64_t box[3], const int64_t grid[3]) {
  Segment s;
  for (int a = 0; a < 3; ++a) {
    s.box.lo[a] = idx[a] * box[a];
    s.box.hi[a] = std::min(s.box.lo[a] + box[a], grid[a]);
  }
  s.size = s.box.volume();
  return s;
}

// The sub-boxes of the row-major positions [r0, r1) of box b (at most five).
void split_range(const Box& b, int64_t r0, int64_t r1, std::vector<Box>* out) {
  const int64_t e1 = b.hi[1] - b.lo[1], e2 = b.hi[2] - b.lo[2];
  while (r0 < r1) {
    const int64_t c0 = r0 / (e1 * e2), c1 = (r0 / e2) % e1, c2 = r0 % e2, left = r1 - r0;
    Box p = b;
    int64_t n;
    if (c2 != 0 || left < e2) {  // part of one row
      n = std::min(e2 - c2, left);
      p.lo[0] = b.lo[0] + c0, p.hi[0] = p.lo[0] + 1;
      p.lo[1] = b.lo[1] + c1, p.hi[1] = p.lo[1] + 1;
      p.lo[2] = b.lo[2] + c2, p.hi[2] = p.lo[2] + n;
    } else if (c1 != 0 || left < e1 * e2) {  // whole rows of one plane
      const int64_t rows = std::min(e1 - c1, left / e2);
      n = rows * e2;
      p.lo[0] = b.lo[0] + c0, p.hi[0] = p.lo[0] + 1;
      p.lo[1] = b.lo[1] + c1, p.hi[1] = p.lo[1] + rows;
    } else {  // whole planes
      const int64_t planes = left / (e1 * e2);
      n = planes * e1 * e2;
      p.lo[0] = b.lo[0] + c0, p.hi[0] = p.lo[0] + planes;
    }
    out->push_back(p);
    r0 += n;
  }
}

// A tile as the grid boxes and text token runs it is made of.
struct TilePart {
  bool text = false;
  Box box;
  int64_t text_valid = 0;  // text: how many of its tokens are real keys
  int64_t size = 0;
};

std::vector<TilePart> tile_parts(const Relayout& re, const TokenLayout& t, int64_t p0, int64_t p1) {
  std::vector<TilePart> parts;
  auto it = std::upper_bound(re.segments.begin(), re.segments.end(), p0,
                             [](int64_t p, const Segment& s) { return p < s.start; });
  std::vector<Box> boxes;
  for (--it; it != re.segments.end() && it->start < p1; ++it) {
    const int64_t a = std::max(p0, it->start) - it->start, b = std::min(p1, it->start + it->size) - it->start;
    if (a >= b) continue;
    if (it->text) {
      TilePart part;
      part.text = true;
      part.size = b - a;
      const int64_t first = t.text_index(it->text_first + a);
      part.text_valid = std::clamp(t.valid_text() - first, int64_t(0), b - a);
      parts.push_back(part);
      continue;
    }
    boxes.clear();
    split_range(it->box, a, b, &boxes);
    for (const Box& bx : boxes) {
      TilePart part;
      part.box = bx;
      part.size = bx.volume();
      parts.push_back(part);
    }
  }
  return parts;
}

// Query part x key part: {any allowed, all allowed}.
std::pair<bool, bool> classify(const TilePart& q, const TilePart& k, const GridMethod& m) {
  if (k.text) return {k.text_valid > 0, k.text_valid == k.size};
  if (q.text) return {true, true};
  return {m.any(q.box, k.box), m.all(q.box, k.box)};
}

}  // namespace

Relayout relayout_boxes(const TokenLayout& t, const int64_t box_in[3], bool natural_order) {
  Relayout re;
  const int64_t* grid = t.grid;
  const bool has_grid = t.grid_tokens() > 0;
  for (int a = 0; a < 3; ++a) {
    re.box[a] = has_grid ? std::clamp(box_in[a], int64_t(1), grid[a]) : 1;
    re.box_grid[a] = has_grid ? ceil_div(grid[a], re.box[a]) : 0;
  }
  if (natural_order)
    CHECK(!has_grid || (re.box_grid[0] == 1 && re.box_grid[1] == 1 && re.box_grid[2] == 1),
          "relayout_boxes: natural order needs one box over the whole grid");
  std::vector<Segment> full, border;
  const int64_t nboxes = re.box_grid[0] * re.box_grid[1] * re.box_grid[2];
  for (int64_t i = 0; i < nboxes; ++i) {
    const int64_t idx[3] = {i / (re.box_grid[1] * re.box_grid[2]), (i / re.box_grid[2]) % re.box_grid[1], i % re.box_grid[2]};
    Segment s = box_segment(idx, re.box, grid);
    (s.size == re.box[0] * re.box[1] * re.box[2] ? full : border).push_back(s);
  }
  Segment text;
  text.text = true;
  text.size = t.text_len;
  text.text_first = t.text_before ? 0 : t.grid_tokens();
  if (natural_order && t.text_before && text.size) re.segments.push_back(text);
  for (auto* list : {&full, &border})
    for (const Segment& s : *list) re.segments.push_back(s);
  if (text.size && !(natural_order && t.text_before)) re.segments.push_back(text);
  int64_t pos = 0;
  re.box_segment.assign(size_t(nboxes), -1);
  for (size_t i = 0; i < re.segments.size(); ++i) {
    Segment& s = re.segments[i];
    s.start = pos;
    pos += s.size;
    if (s.text) continue;
    const int64_t bi = ((s.box.lo[0] / re.box[0]) * re.box_grid[1] + s.box.lo[1] / re.box[1]) * re.box_grid[2] + s.box.lo[2] / re.box[2];
    re.box_segment[size_t(bi)] = int32_t(i);
  }
  if (natural_order) return re;
  re.perm.reserve(size_t(pos));
  for (const Segment& s : re.segments) {
    if (s.text) {
      for (int64_t i = 0; i < s.size; ++i) re.perm.push_back(int32_t(s.text_first + i));
      continue;
    }
    for (int64_t c0 = s.box.lo[0]; c0 < s.box.hi[0]; ++c0)
      for (int64_t c1 = s.box.lo[1]; c1 < s.box.hi[1]; ++c1)
        for (int64_t c2 = s.box.lo[2]; c2 < s.box.hi[2]; ++c2)
          re.perm.push_back(int32_t(t.grid_begin() + (c0 * grid[1] + c1) * grid[2] + c2));
  }
  return re;
}

BlockLayout plan_tiled(const MaskRule& rule, int64_t q_tile, int64_t kv_tile, const Relayout& re,
                       const GridMethod& method) {
  CHECK(q_tile > 0 && kv_tile > 0, "plan: tile sizes ", q_tile, ", ", kv_tile, " must be positive");
  const TokenLayout& t = rule.tokens;
  BlockLayout l;
  l.q_tile = q_tile;
  l.kv_tile = kv_tile;
  l.seq_len = t.seq_len();
  l.perm = re.perm;
  l.rule = rule;
  l.full_offsets = {0};
  l.partial_offsets = {0};
  const int64_t nq = l.num_q_tiles(), nkv = l.num_kv_tiles();
  std::vector<std::vector<TilePart>> kv_parts(static_cast<size_t>(nkv));
  for (int64_t kt = 0; kt < nkv; ++kt) kv_parts[size_t(kt)] = tile_parts(re, t, kt * kv_tile, kt * kv_tile + l.tile_tokens(kt, kv_tile));
  // Key tiles of each segment, for turning key regions into candidate tiles.
  auto add_segment_tiles = [&](const Segment& s, std::vector<int32_t>* out) {
    for (int64_t kt = s.start / kv_tile; kt <= (s.start + s.size - 1) / kv_tile; ++kt) out->push_back(int32_t(kt));
  };
  std::vector<int32_t> candidates, full, partial;
  std::vector<Box> regions;
  for (int64_t qt = 0; qt < nq; ++qt) {
    const std::vector<TilePart> qparts = tile_parts(re, t, qt * q_tile, qt * q_tile + l.tile_tokens(qt, q_tile));
    candidates.clear();
    bool every_tile = false;
    for (const TilePart& qp : qparts) {
      if (qp.text) {
        every_tile = true;  // text queries attend every valid key
        break;
      }
      regions.clear();
      method.key_regions(qp.box, &regions);
      for (const Box& r : regions) {
        int64_t b0[3], b1[3];
        for (int a = 0; a < 3; ++a) {
          const int64_t lo = std::max<int64_t>(r.lo[a], 0), hi = std::min(r.hi[a], t.grid[a]);
          b0[a] = lo / re.box[a];
          b1[a] = hi <= lo ? b0[a] - 1 : (hi - 1) / re.box[a];
        }
        for (int64_t i0 = b0[0]; i0 <= b1[0]; ++i0)
          for (int64_t i1 = b0[1]; i1 <= b1[1]; ++i1)
            for (int64_t i2 = b0[2]; i2 <= b1[2]; ++i2)
              add_segment_tiles(re.segments[size_t(re.box_segment[size_t((i0 * re.box_grid[1] + i1) * re.box_grid[2] + i2)])],
                                &candidates);
      }
    }
    if (every_tile) {
      candidates.resize(size_t(nkv));
      for (int64_t kt = 0; kt < nkv; ++kt) candidates[size_t(kt)] = int32_t(kt);
    } else {
      for (const Segment& s : re.segments)
        if (s.text && s.size) add_segment_tiles(s, &candidates);
      std::sort(candidates.begin(), candidates.end());
      candidates.erase(std::unique(candidates.begin(), candidates.end()), candidates.end());
    }
    full.clear();
    partial.clear();
    for (int32_t kt : candidates) {
      bool any = false, all = true;
      for (const TilePart& qp : qparts)
        for (const TilePart& kp : kv_parts[size_t(kt)]) {
          const auto [a, b] = classify(qp, kp, method);
          any = any || a;
          all = all && b;
        }
      if (all)
        full.push_back(kt);
      else if (any)
        partial.push_back(kt);
    }
    append_entry(l, full, partial);
  }
  return l;
}

}  // namespace sattn
