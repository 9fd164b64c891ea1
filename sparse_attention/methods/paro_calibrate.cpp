#include "sparse_attention/methods/paro_calibrate.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "base/check.h"
#include "ops.h"

namespace sattn {

namespace {

// pos[o][token]: the layout position of each natural token in candidate order o.
std::vector<std::vector<int32_t>> order_positions(const TokenLayout& t, const std::vector<AxisOrder>& orders) {
  const int64_t L = t.seq_len();
  std::vector<std::vector<int32_t>> pos(orders.size(), std::vector<int32_t>(size_t(L), 0));
  for (size_t o = 0; o < orders.size(); ++o) {
    const std::vector<int32_t> perm = axis_order_perm(t, orders[o]);
    for (int64_t p = 0; p < L; ++p) pos[o][size_t(perm[size_t(p)])] = int32_t(p);
  }
  return pos;
}

// [image tokens, orders · tiles] 0/1: image token i (natural order) lies in image tile c of `range` in order o
// (column o · tiles + c), the positions of order o being pos[o].
rt::Tensor tile_membership(const TokenLayout& t, const std::vector<std::vector<int32_t>>& pos, TileRange range,
                           int64_t tile) {
  const int64_t g0 = t.grid_begin(), n = t.grid_tokens(), tiles = range.size(), cols = int64_t(pos.size()) * tiles;
  std::vector<float> m(size_t(n * cols), 0.f);
  for (size_t o = 0; o < pos.size(); ++o)
    for (int64_t i = 0; i < n; ++i) {
      const int64_t c = pos[o][size_t(g0 + i)] / tile - range.begin;
      if (c >= 0 && c < tiles) m[size_t(i * cols + int64_t(o) * tiles + c)] = 1.f;
    }
  return rt::Tensor::from_vector(m, {n, cols});
}

}  // namespace

void paro_block_sums_matmul(const rt::Context& ctx, const rt::Tensor& q, const rt::Tensor& k, float scale,
                            const TokenLayout& t, int64_t q_tile, int64_t kv_tile, std::vector<double>& acc,
                            int64_t rows_per_chunk) {
  const int64_t B = q.size(0), L = q.size(1), H = q.size(2), D = q.size(3);
  CHECK(L == t.seq_len() && k.size(1) == L && k.size(3) == D, "paro_block_sums: q ", q.str(), " k ", k.str(), " for ",
        t.seq_len(), " tokens");
  const std::vector<AxisOrder> orders = axis_orders(t.grid);
  const TileRange qr = image_tiles(t, q_tile), kr = image_tiles(t, kv_tile);
  const int64_t rows = qr.size(), cols = kr.size(), O = int64_t(orders.size());
  acc.resize(size_t(O * H * rows * cols), 0.0);
  const std::vector<std::vector<int32_t>> pos = order_positions(t, orders);
  // Per order the block sums of P over image rows and columns are Aᵀ · P_img · B, with A and B the tokens'
  // query- and key-tile memberships: two small products per order instead of a scatter over L² entries. The
  // orders' B sit side by side, so P (the large operand) is read once for all of them.
  // In f32 whatever the context's dtype: a matmul runs in its first operand's dtype, and Aᵀ in bf16 would round
  // P·B to 8 bits (0.4% off the block sums on the GPU).
  const rt::Tensor a_all = rt::to_device(ctx, tile_membership(t, pos, qr, q_tile), ctx.device(), rt::DType::F32);
  const rt::Tensor b_all = rt::to_device(ctx, tile_membership(t, pos, kr, kv_tile), ctx.device(), rt::DType::F32);
  const int64_t g0 = t.grid_begin(), g1 = g0 + t.grid_tokens();
  const rt::Tensor q32 = rt::cast(ctx, q, rt::DType::F32), k32 = rt::cast(ctx, k, rt::DType::F32);
  for (int64_t bi = 0; bi < B; ++bi)
    for (int64_t h = 0; h < H; ++h) {
      const rt::Tensor kh = rt::reshape(ctx, k32.slice(0, bi, bi + 1).slice(2, h, h + 1), {L, D});
      // One head and at most `chunk` query rows at a time: P is [chunk, L] in f32 (1 GiB at most; a whole
      // head at HunyuanVideo 720p would be 57 GB).
      const int64_t chunk = rows_per_chunk > 0 ? rows_per_chunk : std::max<int64_t>(1, (int64_t(1) << 28) / L);
      for (int64_t r0 = g0; r0 < g1; r0 += chunk) {
        const int64_t r1 = std::min(g1, r0 + chunk);
        const rt::Tensor qh = rt::reshape(ctx, q32.slice(0, bi, bi + 1).slice(1, r0, r1).slice(2, h, h + 1), {r1 - r0, D});
        const rt::Tensor p = rt::softmax(ctx, rt::affine(ctx, rt::matmul(ctx, qh, kh.transpose(0, 1)), scale, 0.f));
        const rt::Tensor pb = rt::matmul(ctx, p.slice(1, g0, g1), b_all);  // [chunk rows, orders · key tiles]
        for (int64_t o = 0; o < O; ++o) {
          // [q tiles, this chunk's rows] of order o
          const rt::Tensor a_rows = a_all.slice(0, r0 - g0, r1 - g0).slice(1, o * rows, (o + 1) * rows).transpose(0, 1);
          const rt::Tensor sums = rt::to_host(ctx, rt::matmul(ctx, a_rows, pb.slice(1, o * cols, (o + 1) * cols)));
          const float* v = sums.contiguous().data<float>();
          double* out = acc.data() + (o * H + h) * rows * cols;
          for (int64_t i = 0; i < rows * cols; ++i) out[i] += double(v[i]);
        }
      }
    }
}

void paro_block_sums(const rt::Context& ctx, const rt::Tensor& q_in, const rt::Tensor& k_in, float scale,
                     const TokenLayout& t, int64_t q_tile, int64_t kv_tile, std::vector<double>& acc) {
  if (!q_in.device().is_cpu()) return paro_block_sums_matmul(ctx, q_in, k_in, scale, t, q_tile, kv_tile, acc);
  CHECK(q_in.dtype() == rt::DType::F32 && k_in.dtype() == rt::DType::F32,
        "paro_block_sums: host f32 q and k, got ", q_in.str(), " ", k_in.str());
  const rt::Tensor q = q_in.contiguous(), k = k_in.contiguous();
  const int64_t B = q.size(0), L = q.size(1), H = q.size(2), D = q.size(3);
  CHECK(L == t.seq_len() && k.size(1) == L, "paro_block_sums: q ", q.str(), " k ", k.str(), " for ", t.seq_len(), " tokens");
  const std::vector<AxisOrder> orders = axis_orders(t.grid);
  const TileRange qr = image_tiles(t, q_tile), kr = image_tiles(t, kv_tile);
  const int64_t rows = qr.size(), cols = kr.size(), O = int64_t(orders.size());
  acc.resize(size_t(O * H * rows * cols), 0.0);
  const std::vector<std::vector<int32_t>> pos = order_positions(t, orders);
  const int64_t g0 = t.grid_begin(), g1 = g0 + t.grid_tokens();
  // One (batch, head) per task, each with its own partial sums, merged at the end in a fixed order.
  std::vector<std::vector<double>> part(size_t(B * H), std::vector<double>{});
  ctx.parallel_for(B * H, [&](int64_t i0, int64_t i1) {
    std::vector<float> s(static_cast<size_t>(L));
    for (int64_t i = i0; i < i1; ++i) {
      const int64_t b = i / H, h = i % H;
      std::vector<double>& mine = part[size_t(i)];
      mine.assign(size_t(O * rows * cols), 0.0);
      for (int64_t qi = g0; qi < g1; ++qi) {
        const float* qv = q.data<float>() + ((b * L + qi) * H + h) * D;
        float mx = -INFINITY;
        for (int64_t j = 0; j < L; ++j) {
          const float* kvp = k.data<float>() + ((b * L + j) * H + h) * D;
          float dot = 0.f;
          for (int64_t c = 0; c < D; ++c) dot += qv[c] * kvp[c];
          s[size_t(j)] = scale * dot;
          mx = std::max(mx, s[size_t(j)]);
        }
        double sum = 0;
        for (float& x : s) sum += (x = std::exp(x - mx));
        const double inv = 1.0 / sum;
        for (int64_t o = 0; o < O; ++o) {
          const int64_t qt = pos[size_t(o)][size_t(qi)] / q_tile - qr.begin;
          if (qt < 0 || qt >= rows) continue;
          double* row = mine.data() + (o * rows + qt) * cols;
          for (int64_t j = g0; j < g1; ++j) {
            const int64_t kt = pos[size_t(o)][size_t(j)] / kv_tile - kr.begin;
            if (kt >= 0 && kt < cols) row[kt] += double(s[size_t(j)]) * inv;
          }
        }
      }
    }
  }, 1);
  for (int64_t i = 0; i < B * H; ++i) {
    const int64_t h = i % H;
    for (int64_t o = 0; o < O; ++o)
      for (int64_t r = 0; r < rows * cols; ++r)
        acc[size_t((o * H + h) * rows * cols + r)] += part[size_t(i)][size_t(o * rows * cols + r)];
  }
}

std::vector<uint8_t> paro_keep(const std::vector<double>& sums, int64_t rows, int64_t cols, double density,
                               const TokenLayout& t, int64_t q_tile, int64_t kv_tile) {
  const TileRange qr = image_tiles(t, q_tile), kr = image_tiles(t, kv_tile);
  const int64_t len = t.seq_len();
  const int64_t k = std::clamp<int64_t>(int64_t(std::lround(density * double(cols))), 1, cols);
  std::vector<uint8_t> keep(static_cast<size_t>(rows * cols), 0);
  std::vector<int64_t> idx(static_cast<size_t>(cols));
  for (int64_t r = 0; r < rows; ++r) {
    const double* row = sums.data() + r * cols;
    auto larger = [&](int64_t a, int64_t b) { return row[a] > row[b] || (row[a] == row[b] && a < b); };
    // Diagonal: the image key tiles overlapping this query tile's positions; keep the heaviest.
    const int64_t p0 = (qr.begin + r) * q_tile, p1 = std::min(len, p0 + q_tile);
    int64_t diag = -1;
    for (int64_t c = std::max<int64_t>(0, p0 / kv_tile - kr.begin); c < cols && (kr.begin + c) * kv_tile < p1; ++c)
      if (diag < 0 || larger(c, diag)) diag = c;
    int64_t kept = 0;
    if (diag >= 0) keep[size_t(r * cols + diag)] = 1, ++kept;
    std::iota(idx.begin(), idx.end(), 0);
    std::sort(idx.begin(), idx.end(), larger);
    for (int64_t c : idx) {
      if (kept >= k) break;
      if (!keep[size_t(r * cols + c)]) keep[size_t(r * cols + c)] = 1, ++kept;
    }
  }
  return keep;
}

ParoCalibrator::ParoCalibrator(int64_t layers, int num_steps, int buckets, int64_t q_tile, int64_t kv_tile)
    : layers_(layers), num_steps_(num_steps), buckets_(buckets), q_tile_(q_tile), kv_tile_(kv_tile),
      sums_(size_t(int64_t(buckets) * layers)), counts_(size_t(int64_t(buckets) * layers), 0) {
  CHECK(layers > 0 && num_steps > 0 && buckets > 0, "ParoCalibrator: layers ", layers, ", steps ", num_steps,
        ", buckets ", buckets, " must be positive");
}

void ParoCalibrator::observe(const rt::Context& ctx, const AttentionParams& p) {
  if (p.tokens.grid_tokens() == 0 || p.layer_index < 0 || p.layer_index >= layers_) return;  // not a DiT call
  CHECK(p.step_index >= 0, "paro calibration: an attention call without a step index");
  if (calls_ == 0) {
    tokens_ = p.tokens;
    tokens_.text_valid = -1;
    heads_ = p.q.size(2), head_dim_ = p.q.size(3);
  }
  CHECK(p.tokens.seq_len() == tokens_.seq_len() && p.q.size(2) == heads_, "paro calibration: calls of different shapes");
  const float scale = p.scale != 0.f ? p.scale : 1.f / std::sqrt(float(p.q.size(3)));
  const int bucket = paro_bucket(p.step_index, num_steps_, buckets_);
  const size_t slot = size_t(int64_t(bucket) * layers_ + p.layer_index);
  paro_block_sums(ctx, p.q, p.k, scale, tokens_, q_tile_, kv_tile_, sums_[slot]);
  counts_[slot] += p.q.size(0);
  ++calls_;
}

ParoPlan ParoCalibrator::plan(double density, int prompts) const {
  CHECK(calls_ > 0, "paro calibration: no attention call was observed");
  ParoPlan plan;
  plan.layers = layers_, plan.heads = heads_, plan.head_dim = head_dim_, plan.tokens = tokens_;
  plan.q_tile = q_tile_, plan.kv_tile = kv_tile_, plan.buckets = buckets_;
  plan.density = density, plan.steps = num_steps_, plan.prompts = prompts;
  const int64_t rows = plan.mask_rows(), cols = plan.mask_cols(), O = int64_t(axis_orders(tokens_.grid).size());
  plan.order.assign(size_t(plan.records()), 0);
  plan.keep.assign(size_t(plan.records() * rows * cols), 0);
  for (int b = 0; b < buckets_; ++b)
    for (int64_t l = 0; l < layers_; ++l) {
      // The statistics of this bucket, or of the nearest calibrated bucket (below first).
      int src = -1;
      for (int d = 0; d < buckets_ && src < 0; ++d)
        for (int c : {b - d, b + d})
          if (src < 0 && c >= 0 && c < buckets_ && counts_[size_t(int64_t(c) * layers_ + l)] > 0) src = c;
      CHECK(src >= 0, "paro calibration: layer ", l, " was never observed");
      const std::vector<double>& s = sums_[size_t(int64_t(src) * layers_ + l)];
      for (int64_t h = 0; h < heads_; ++h) {
        double best_share = -1;
        for (int64_t o = 0; o < O; ++o) {
          const std::vector<double> block(s.begin() + (o * heads_ + h) * rows * cols,
                                          s.begin() + (o * heads_ + h + 1) * rows * cols);
          const std::vector<uint8_t> keep = paro_keep(block, rows, cols, density, tokens_, q_tile_, kv_tile_);
          double kept = 0, all = 0;
          for (int64_t i = 0; i < rows * cols; ++i) all += block[size_t(i)], kept += keep[size_t(i)] ? block[size_t(i)] : 0;
          const double share = all > 0 ? kept / all : 0;
          if (share > best_share + 1e-12) {
            best_share = share;
            const int64_t r = plan.record(b, l, h);
            plan.order[size_t(r)] = uint8_t(o);
            std::copy(keep.begin(), keep.end(), plan.keep.begin() + r * rows * cols);
          }
        }
      }
    }
  return plan;
}

}  // namespace sattn
