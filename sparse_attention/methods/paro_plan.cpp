#include "sparse_attention/methods/paro_plan.h"

#include <cstdio>
#include <fstream>
#include <sstream>
#include <sys/stat.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

namespace sattn {

namespace {

using json = nlohmann::json;

constexpr const char* kMagic = "ditrun-paro";
constexpr const char* kBucketRule = "min(buckets - 1, int((step + 1) / num_steps * buckets))";

template <typename... Args>
std::string say(Args&&... args) {
  std::ostringstream os;
  (os << ... << args);
  return os.str();
}

std::string grid_str(const TokenLayout& t) {
  return t.grid[0] == 1 ? say(t.grid[1], "x", t.grid[2]) : say(t.grid[0], "x", t.grid[1], "x", t.grid[2]);
}

uint64_t fnv1a(const std::string& bytes) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : bytes) h = (h ^ c) * 1099511628211ull;
  return h;
}

int64_t row_bytes(const ParoPlan& p) { return (p.mask_rows() * p.mask_cols() + 7) / 8; }

}  // namespace

std::vector<AxisOrder> axis_orders(const int64_t grid[3]) {
  if (grid[0] == 1) return {{{0, 1, 2}, "HW"}, {{0, 2, 1}, "WH"}};
  return {{{0, 1, 2}, "THW"}, {{0, 2, 1}, "TWH"}, {{1, 0, 2}, "HTW"},
          {{1, 2, 0}, "HWT"}, {{2, 0, 1}, "WTH"}, {{2, 1, 0}, "WHT"}};
}

std::vector<int32_t> axis_order_perm(const TokenLayout& t, const AxisOrder& o) {
  std::vector<int32_t> perm(static_cast<size_t>(t.seq_len()));
  for (size_t i = 0; i < perm.size(); ++i) perm[i] = int32_t(i);
  int64_t pos = t.grid_begin(), c[3];
  const int a0 = o.axes[0], a1 = o.axes[1], a2 = o.axes[2];
  for (c[a0] = 0; c[a0] < t.grid[a0]; ++c[a0])
    for (c[a1] = 0; c[a1] < t.grid[a1]; ++c[a1])
      for (c[a2] = 0; c[a2] < t.grid[a2]; ++c[a2])
        perm[size_t(pos++)] = int32_t(t.grid_begin() + (c[0] * t.grid[1] + c[1]) * t.grid[2] + c[2]);
  return perm;
}

TileRange image_tiles(const TokenLayout& t, int64_t tile) {
  TileRange r;
  if (tile <= 0 || t.grid_tokens() == 0) return r;
  const int64_t g0 = t.grid_begin(), g1 = g0 + t.grid_tokens(), len = t.seq_len();
  r.begin = (g0 + tile - 1) / tile;
  // A tile ending at the sequence end may be short; it is an image tile when the grid reaches the end.
  r.end = g1 == len ? (len + tile - 1) / tile : g1 / tile;
  return r;
}

int paro_bucket(int step, int num_steps, int buckets) {
  if (step < 0 || num_steps <= 0 || buckets <= 0) return 0;
  const int b = int(double(step + 1) / double(num_steps) * double(buckets));
  return b < 0 ? 0 : b >= buckets ? buckets - 1 : b;
}

double ParoPlan::image_density() const {
  const TileRange qr = image_tiles(tokens, q_tile), kr = image_tiles(tokens, kv_tile);
  const int64_t len = tokens.seq_len();
  auto tokens_of = [&](int64_t t, int64_t tile) { return std::min(len, (t + 1) * tile) - t * tile; };
  double kept = 0, all = 0;
  for (int64_t r = 0; r < records(); ++r)
    for (int64_t i = 0; i < qr.size(); ++i)
      for (int64_t j = 0; j < kr.size(); ++j) {
        const double n = double(tokens_of(qr.begin + i, q_tile)) * double(tokens_of(kr.begin + j, kv_tile));
        all += n;
        if (mask(r)[i * kr.size() + j]) kept += n;
      }
  return all == 0 ? 0 : kept / all;
}

std::string ParoPlan::describe() const {
  return say(heads, " heads x ", head_dim, " over ", layers, " layers, ", grid_str(tokens), " grid + ", tokens.text_len,
             " text tokens ", tokens.text_before ? "before" : "after", " it, tiles ", q_tile, "x", kv_tile, ", ",
             buckets, " buckets");
}

std::string validate(const ParoPlan& p) {
  if (p.layers < 1 || p.heads < 1 || p.head_dim < 1)
    return say("layers ", p.layers, ", heads ", p.heads, " and head_dim ", p.head_dim, " must be >= 1");
  if (p.tokens.grid[0] < 1 || p.tokens.grid[1] < 1 || p.tokens.grid[2] < 1)
    return say("grid ", p.tokens.grid[0], "x", p.tokens.grid[1], "x", p.tokens.grid[2], " must be positive on every axis");
  if (p.tokens.text_len < 0) return say("text_len ", p.tokens.text_len, " must be >= 0");
  if (p.q_tile < 1 || p.kv_tile < 1) return say("tiles ", p.q_tile, "x", p.kv_tile, " must be positive");
  if (p.buckets < 1 || p.buckets > 1000) return say("buckets ", p.buckets, " must be in [1, 1000]");
  if (p.mask_rows() == 0 || p.mask_cols() == 0)
    return say("the ", grid_str(p.tokens), " grid holds no whole ", p.q_tile, "-token query tile or ", p.kv_tile,
               "-token key tile; nothing to plan");
  if (int64_t(p.order.size()) != p.records())
    return say(p.order.size(), " axis orders, expected buckets x layers x heads = ", p.records());
  if (int64_t(p.keep.size()) != p.records() * p.mask_rows() * p.mask_cols())
    return say(p.keep.size(), " mask entries, expected ", p.records(), " records x ", p.mask_rows(), " x ", p.mask_cols());
  const size_t orders = axis_orders(p.tokens.grid).size();
  for (int64_t r = 0; r < p.records(); ++r) {
    const int64_t bucket = r / (p.layers * p.heads), layer = (r / p.heads) % p.layers, head = r % p.heads;
    if (p.order[size_t(r)] >= orders)
      return say("bucket ", bucket, " layer ", layer, " head ", head, ": axis order ", int(p.order[size_t(r)]),
                 " is not one of the grid's ", orders);
    for (int64_t i = 0; i < p.mask_rows(); ++i) {
      bool any = false;
      for (int64_t j = 0; j < p.mask_cols(); ++j) {
        const uint8_t v = p.mask(r)[i * p.mask_cols() + j];
        if (v > 1) return say("bucket ", bucket, " layer ", layer, " head ", head, ": mask value ", int(v), " is not 0 or 1");
        any = any || v == 1;
      }
      if (!any) return say("bucket ", bucket, " layer ", layer, " head ", head, ": image query tile ", i, " keeps no key tile");
    }
  }
  return "";
}

rt::Status write_paro_plan(const ParoPlan& p, const std::string& path, bool overwrite) {
  if (const std::string bad = validate(p); !bad.empty()) return rt::Status::error("paro plan " + path + ": " + bad);
  struct stat st;
  if (!overwrite && ::stat(path.c_str(), &st) == 0)
    return rt::Status::error(path + " exists; pass --overwrite to replace it");
  std::string payload;
  const int64_t n = p.mask_rows() * p.mask_cols();
  for (int64_t r = 0; r < p.records(); ++r) {
    payload.push_back(char(p.order[size_t(r)]));
    std::string bits(static_cast<size_t>(row_bytes(p)), '\0');
    for (int64_t i = 0; i < n; ++i)
      if (p.mask(r)[i]) bits[size_t(i / 8)] = char(uint8_t(bits[size_t(i / 8)]) | uint8_t(1u << (i % 8)));
    payload += bits;
  }
  json orders = json::array();
  for (const AxisOrder& o : axis_orders(p.tokens.grid)) orders.push_back(o.name);
  char sum[20];
  std::snprintf(sum, sizeof sum, "%016llx", (unsigned long long)fnv1a(payload));
  const json h = {{"layers", p.layers},
                  {"heads", p.heads},
                  {"head_dim", p.head_dim},
                  {"grid", {p.tokens.grid[0], p.tokens.grid[1], p.tokens.grid[2]}},
                  {"text_len", p.tokens.text_len},
                  {"text_before", p.tokens.text_before},
                  {"q_tile", p.q_tile},
                  {"kv_tile", p.kv_tile},
                  {"buckets", p.buckets},
                  {"bucket_rule", kBucketRule},
                  {"orders", orders},
                  {"mask_rows", p.mask_rows()},
                  {"mask_cols", p.mask_cols()},
                  {"density", p.density},
                  {"steps", p.steps},
                  {"prompts", p.prompts},
                  {"payload_bytes", payload.size()},
                  {"fnv1a64", sum}};
  const std::string tmp = path + ".tmp." + std::to_string(::getpid());
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) return rt::Status::error("cannot write " + tmp);
    out << kMagic << " " << kParoFormatVersion << "\n" << h.dump() << "\n";
    out.write(payload.data(), std::streamsize(payload.size()));
    out.flush();
    if (!out) {
      std::remove(tmp.c_str());
      return rt::Status::error("writing " + tmp + " failed (disk full?)");
    }
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::remove(tmp.c_str());
    return rt::Status::error("cannot rename " + tmp + " to " + path);
  }
  return rt::Status::ok();
}

rt::Result<ParoPlan> read_paro_plan(const std::string& path) {
  auto fail = [&](const std::string& why) { return rt::Status::error("paro plan " + path + ": " + why); };
  std::ifstream in(path, std::ios::binary);
  if (!in) return fail("cannot open the file (write one with `ditrun calibrate`)");
  std::string magic_line, header_line;
  std::getline(in, magic_line);
  std::istringstream ml(magic_line);
  std::string magic;
  int version = 0;
  ml >> magic >> version;
  if (magic != kMagic) return fail("not a ditrun PARO plan (the first line is not '" + std::string(kMagic) + " N')");
  if (version != kParoFormatVersion)
    return fail(say("format version ", version, ", this build reads version ", kParoFormatVersion, "; recalibrate"));
  std::getline(in, header_line);
  json h;
  try {
    h = json::parse(header_line);
  } catch (const std::exception& e) {
    return fail(std::string("the header is not JSON: ") + e.what());
  }
  ParoPlan p;
  try {
    p.layers = h.at("layers").get<int64_t>();
    p.heads = h.at("heads").get<int64_t>();
    p.head_dim = h.at("head_dim").get<int64_t>();
    const auto grid = h.at("grid").get<std::vector<int64_t>>();
    if (grid.size() != 3) return fail(say("grid has ", grid.size(), " axes, expected 3 (T, H, W)"));
    for (int a = 0; a < 3; ++a) p.tokens.grid[a] = grid[size_t(a)];
    p.tokens.text_len = h.at("text_len").get<int64_t>();
    p.tokens.text_before = h.at("text_before").get<bool>();
    p.q_tile = h.at("q_tile").get<int64_t>();
    p.kv_tile = h.at("kv_tile").get<int64_t>();
    p.buckets = h.at("buckets").get<int>();
    p.density = h.at("density").get<double>();
    p.steps = h.at("steps").get<int>();
    p.prompts = h.at("prompts").get<int>();
    if (h.at("bucket_rule").get<std::string>() != kBucketRule)
      return fail("bucket_rule '" + h.at("bucket_rule").get<std::string>() + "' is not this build's '" + kBucketRule + "'");
    json orders = json::array();
    if (p.tokens.grid[0] >= 1)
      for (const AxisOrder& o : axis_orders(p.tokens.grid)) orders.push_back(o.name);
    if (h.at("orders") != orders) return fail("orders " + h.at("orders").dump() + ", expected " + orders.dump() + " for this grid");
    if (h.at("mask_rows").get<int64_t>() != p.mask_rows() || h.at("mask_cols").get<int64_t>() != p.mask_cols())
      return fail(say("masks of ", h.at("mask_rows").dump(), "x", h.at("mask_cols").dump(), " image tiles, expected ",
                      p.mask_rows(), "x", p.mask_cols(), " for this grid, text and tiles"));
  } catch (const json::exception& e) {
    return fail(std::string("header: ") + e.what());
  }
  if (p.layers < 1 || p.heads < 1 || p.buckets < 1 || p.layers * p.heads * p.buckets > (int64_t(1) << 32))
    return fail(say("layers ", p.layers, ", heads ", p.heads, ", buckets ", p.buckets, " out of range"));
  const std::string payload((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const int64_t expect = p.records() * (1 + row_bytes(p));
  if (int64_t(payload.size()) != expect || h.value("payload_bytes", int64_t(-1)) != expect)
    return fail(say("payload of ", payload.size(), " bytes (header says ", h.value("payload_bytes", int64_t(-1)),
                    "), expected ", expect, ": truncated or not written by this format"));
  char sum[20];
  std::snprintf(sum, sizeof sum, "%016llx", (unsigned long long)fnv1a(payload));
  if (h.value("fnv1a64", std::string()) != sum) return fail("checksum mismatch: the file is corrupt");
  const int64_t n = p.mask_rows() * p.mask_cols();
  p.order.resize(size_t(p.records()));
  p.keep.resize(size_t(p.records() * n));
  size_t at = 0;
  for (int64_t r = 0; r < p.records(); ++r) {
    p.order[size_t(r)] = uint8_t(payload[at++]);
    for (int64_t i = 0; i < n; ++i) p.keep[size_t(r * n + i)] = (uint8_t(payload[at + size_t(i / 8)]) >> (i % 8)) & 1u;
    at += size_t(row_bytes(p));
  }
  if (const std::string bad = validate(p); !bad.empty()) return fail(bad);
  return p;
}

std::string paro_tokens_error(const ParoPlan& p, const TokenLayout& t) {
  const bool same_grid = t.grid[0] == p.tokens.grid[0] && t.grid[1] == p.tokens.grid[1] && t.grid[2] == p.tokens.grid[2];
  if (!same_grid)
    return say("plan calibrated for a ", grid_str(p.tokens), " grid, this run has ", grid_str(t),
               ": run ditrun calibrate at this size");
  if (t.text_len != p.tokens.text_len || t.text_before != p.tokens.text_before)
    return say("plan calibrated for ", p.tokens.text_len, " text tokens ", p.tokens.text_before ? "before" : "after",
               " the grid, this run has ", t.text_len, " ", t.text_before ? "before" : "after",
               " it: run ditrun calibrate with this text length (--max-sequence-length)");
  return "";
}

std::string paro_model_error(const ParoPlan& p, int64_t layers, int64_t heads, int64_t head_dim) {
  if (layers == p.layers && heads == p.heads && head_dim == p.head_dim) return "";
  return say("plan calibrated for a model with ", p.layers, " layers, ", p.heads, " heads of ", p.head_dim,
             ", this model has ", layers, " layers, ", heads, " heads of ", head_dim, ": run ditrun calibrate on this model");
}

}  // namespace sattn
