#include "text_encoder/tokenizer/clip_text.h"

#include <unicode/normalizer2.h>
#include <unicode/uchar.h>
#include <unicode/unistr.h>

#include "base/check.h"

namespace te::clip_text {

bool is_space(char32_t c) { return u_hasBinaryProperty(static_cast<UChar32>(c), UCHAR_WHITE_SPACE); }
bool is_letter(char32_t c) { return (U_GET_GC_MASK(static_cast<UChar32>(c)) & U_GC_L_MASK) != 0; }
bool is_number(char32_t c) { return (U_GET_GC_MASK(static_cast<UChar32>(c)) & U_GC_N_MASK) != 0; }

std::u32string to_lower(char32_t c) {
  // The one unconditional multi-code-point lowercase mapping in SpecialCasing.txt; ICU's simple
  // u_tolower gives plain 'i', Rust (and so tokenizers) gives 'i' + COMBINING DOT ABOVE.
  if (c == 0x130) return U"i\u0307";
  return std::u32string(1, static_cast<char32_t>(u_tolower(static_cast<UChar32>(c))));
}

std::string to_utf8(const std::u32string& s) {
  std::string out;
  for (char32_t c : s) {
    if (c < 0x80) {
      out += static_cast<char>(c);
    } else if (c < 0x800) {
      out += static_cast<char>(0xC0 | (c >> 6));
      out += static_cast<char>(0x80 | (c & 0x3F));
    } else if (c < 0x10000) {
      out += static_cast<char>(0xE0 | (c >> 12));
      out += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (c & 0x3F));
    } else {
      out += static_cast<char>(0xF0 | (c >> 18));
      out += static_cast<char>(0x80 | ((c >> 12) & 0x3F));
      out += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (c & 0x3F));
    }
  }
  return out;
}

std::u32string normalize(const std::string& utf8) {
  UErrorCode err = U_ZERO_ERROR;
  const icu::Normalizer2* nfc = icu::Normalizer2::getNFCInstance(err);
  CHECK(U_SUCCESS(err), "ICU NFC normaliser unavailable: ", u_errorName(err));
  const icu::UnicodeString composed = nfc->normalize(icu::UnicodeString::fromUTF8(utf8), err);
  CHECK(U_SUCCESS(err), "ICU NFC normalisation failed: ", u_errorName(err));

  std::u32string out;
  bool in_space = false;
  for (int32_t i = 0; i < composed.length();) {
    const UChar32 c = composed.char32At(i);
    i += U16_LENGTH(c);
    if (is_space(c)) {
      if (!in_space) out += U' ';
      in_space = true;
      continue;
    }
    in_space = false;
    out += to_lower(static_cast<char32_t>(c));
  }
  return out;
}

namespace {

bool starts_with(const std::u32string& s, size_t pos, std::u32string_view prefix) {
  return s.compare(pos, prefix.size(), prefix) == 0;
}

bool is_other(char32_t c) { return !is_space(c) && !is_letter(c) && !is_number(c); }

// Length of the English-contraction alternative ('s|'t|'re|'ve|'m|'ll|'d) at pos, or 0.
size_t contraction_at(const std::u32string& s, size_t pos) {
  static constexpr std::u32string_view kForms[] = {U"'s", U"'t", U"'re", U"'ve", U"'m", U"'ll", U"'d"};
  for (auto form : kForms) {
    if (starts_with(s, pos, form)) return form.size();
  }
  return 0;
}

template <typename Pred>
size_t run_length(const std::u32string& s, size_t pos, Pred pred) {
  size_t end = pos;
  while (end < s.size() && pred(s[end])) ++end;
  return end - pos;
}

// GPT-2's regex ('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+) applied
// to one CLIP match, which never holds whitespace, so the space alternatives cannot fire. It only
// splits anything for the special-token alternatives: "<|startoftext|>" -> "<|", "startoftext", "|>".
void gpt2_split(const std::u32string& piece, std::vector<std::string>& out) {
  size_t pos = 0;
  while (pos < piece.size()) {
    const char32_t c = piece[pos];
    size_t len = contraction_at(piece, pos);
    if (len == 0) {
      if (is_letter(c)) len = run_length(piece, pos, is_letter);
      else if (is_number(c)) len = run_length(piece, pos, is_number);
      else len = run_length(piece, pos, is_other);
    }
    out.push_back(to_utf8(piece.substr(pos, len)));
    pos += len;
  }
}

}  // namespace

std::vector<std::string> pre_tokenize(const std::u32string& text) {
  std::vector<std::string> out;
  size_t pos = 0;
  while (pos < text.size()) {
    const char32_t c = text[pos];
    if (is_space(c)) {  // the Split is "removed"/inverted: text between matches is dropped
      ++pos;
      continue;
    }
    // Regex alternation is ordered, not longest-match: the first alternative that matches wins.
    size_t len = 0;
    if (starts_with(text, pos, U"<|startoftext|>")) len = 15;
    else if (starts_with(text, pos, U"<|endoftext|>")) len = 13;
    else if ((len = contraction_at(text, pos)) != 0) {}
    else if (is_letter(c)) len = run_length(text, pos, is_letter);
    else if (is_number(c)) len = 1;
    else len = run_length(text, pos, is_other);
    gpt2_split(text.substr(pos, len), out);
    pos += len;
  }
  return out;
}

const std::array<std::string, 256>& byte_symbols() {
  static const std::array<std::string, 256> table = [] {
    // Printable Latin-1 bytes stand for themselves; the rest are shifted to U+0100.. in byte order.
    std::array<std::string, 256> t;
    char32_t next = 256;
    for (int b = 0; b < 256; ++b) {
      const bool printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
      t[b] = to_utf8(std::u32string(1, printable ? static_cast<char32_t>(b) : next++));
    }
    return t;
  }();
  return table;
}

}  // namespace te::clip_text
