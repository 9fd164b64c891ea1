// Quantized attention numerics (issue 5; sparse-attention.md §3.2 PARO, §4.6 SageAttention), orthogonal to
// the method: any BlockLayout runs with any of them. Every mode accumulates in f32 (the integer products
// exactly in int32 first) and keeps the online softmax in f32. Shared by all modes:
//   K smoothing: k -= mean of k over the sequence, per (batch, head, channel): a constant shift of every
//     score of a row, so the softmax is unchanged, and k's common offset no longer eats the INT8 range.
//   Q: symmetric, one scale per 32 consecutive positions in layout order (one warp's rows of the kernel's
//     128-row query tile, PARO's per-warp granularity); K: one scale per 64-position key tile; scale =
//     max|x| / 127 (INT8) or / 7 (INT4); S = (int Q)·(int K)ᵀ exactly in integers, times
//     q_scale·k_scale·softmax scale.
//   V: symmetric, one scale per (batch, head, channel) over the whole sequence (Sage's per-channel V), for
//     both P·V types: the scale then factors out of the sum over keys and is applied once at the end.
// The modes differ in the Q/K width and in how P and V enter the P·V product:
//   Int8      "int8":       INT8 Q/K; P·V in integers (PARO style): P = exp(s - running max) in [0, 1]
//                           as u8 round(255·P), V as s8 (max|v| -> 127); exact int32 products per tile.
//   Int8Fp8Pv "int8-fp8pv": INT8 Q/K; P·V in FP8 e4m3 (SageAttention2): P scaled into [0, 448] (e4m3's
//                           largest value; Hopper's sm90ws kernel takes its code from log2 P, see
//                           kQuantCodeOffset), V per channel scaled to max|v| -> 448; f32 products per tile.
//   Int4      "int4":       INT4 Q/K (scale max|x| / 7, values in [-7, 7]) with Int8's integer P·V (no
//                           conversion to FP8 in the inner loop). On the GPU the 4-bit values are held in
//                           s8 and multiplied by the INT8 kernel: Hopper (sm_90) has no INT4 tensor-core MMA,
//                           so int4 gives INT4's numerics at INT8's speed and memory.
// P is unsigned (u8 with 255 levels, not s8 with 127) because it is never negative: half the rounding step
// at the same width (mma.sync takes u8 x s8 operands).
#pragma once
#include <string>
#include <string_view>

namespace sattn {

enum class AttnQuant { None, Int8, Int8Fp8Pv, Int4 };

inline const char* attn_quant_name(AttnQuant q) {
  switch (q) {
    case AttnQuant::None: return "none";
    case AttnQuant::Int8: return "int8";
    case AttnQuant::Int8Fp8Pv: return "int8-fp8pv";
    case AttnQuant::Int4: return "int4";
  }
  return "?";
}

// "none" | "int8" | "int8-fp8pv" | "int4" -> the mode; false (out untouched) for anything else.
inline bool parse_attn_quant(std::string_view text, AttnQuant* out) {
  for (AttnQuant q : {AttnQuant::None, AttnQuant::Int8, AttnQuant::Int8Fp8Pv, AttnQuant::Int4})
    if (text == attn_quant_name(q)) {
      *out = q;
      return true;
    }
  return false;
}

// The spellings, for help texts and error messages.
inline std::string attn_quant_choices() { return "none | int8 | int8-fp8pv | int4"; }

// Largest quantized magnitude of Q/K (127 or 7) and of V, and the factor P in [0, 1] is scaled by.
inline float quant_qk_max(AttnQuant q) { return q == AttnQuant::Int4 ? 7.f : 127.f; }
inline bool quant_pv_fp8(AttnQuant q) { return q == AttnQuant::Int8Fp8Pv; }
inline float quant_v_max(AttnQuant q) { return quant_pv_fp8(q) ? 448.f : 127.f; }
inline float quant_p_scale(AttnQuant q) { return quant_pv_fp8(q) ? 448.f : 255.f; }

// P's e4m3 code from log2 P without an exponential (quant_p_codes in kernels/sparse/block_sparse_quant.h;
// the CPU reference's e4m3_from_log2): e4m3's code 8e + k means 2^(e-7)·(1 + k/8), so round(8·log2 P + 56)
// is the code of the chord between the powers of two around P, Mitchell's approximation of 2^x: at most
// 6.2% above P, never below. Adding kQuantCodeOffset before the rounding centres that bias on the
// rounding's half step (swept in simulation: -0.25 to -0.35 gave the least error, session 24).
inline constexpr float kQuantCodeOffset = -0.35f;

// Positions per Q scale block and per K scale block (layout order).
inline constexpr int kQuantQBlock = 32;
inline constexpr int kQuantKBlock = 64;

}  // namespace sattn
