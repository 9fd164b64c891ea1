// Text preparation of the CLIP tokenizer up to (not including) BPE, as transformers 5's
// CLIPTokenizer (tokenizers backend) does it; the slow python tokenizer with ftfy/html-unescape no
// longer exists there, so there is no ftfy step and "&amp;" stays as typed.
//   normalise:      NFC, every run of Unicode White_Space -> " ", per-code-point lowercase
//   pre-tokenise:   the CLIP regex
//                     <\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+
//                   (whitespace between matches dropped), then inside each match the GPT-2 regex of
//                   the ByteLevel pre-tokeniser, then each UTF-8 byte -> its byte-level symbol.
// Unicode properties come from ICU; tests/tokenizer checks them against the tokenizers library for
// every assigned code point (tests/fixtures/tokenizers/unicode_tables.json).
#pragma once
#include <array>
#include <string>
#include <vector>

namespace te::clip_text {

// Character classes of the regexes (Rust `onig` \s, \p{L}, \p{N}).
bool is_space(char32_t c);
bool is_letter(char32_t c);
bool is_number(char32_t c);
// Per-code-point lowercase as Rust's char::to_lowercase (may yield two code points: U+0130).
std::u32string to_lower(char32_t c);

// The normaliser; invalid UTF-8 becomes U+FFFD.
std::u32string normalize(const std::string& utf8);
// Pre-tokens of normalised text, as UTF-8.
std::vector<std::string> pre_tokenize(const std::u32string& text);
// GPT-2's bytes_to_unicode: symbol (UTF-8) standing for each byte value.
const std::array<std::string, 256>& byte_symbols();

std::string to_utf8(const std::u32string& s);

}  // namespace te::clip_text
