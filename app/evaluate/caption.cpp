#include "app/evaluate/caption.h"

#include <algorithm>
#include <cctype>
#include <sstream>

namespace app::eval {

namespace {

std::vector<std::string> split_words(const std::string& s) {
  std::vector<std::string> out;
  std::istringstream in(s);
  for (std::string w; in >> w;) out.push_back(w);
  return out;
}

// A left-to-right reader over the prompt's words that builds the "unknown word" errors.
class Reader {
 public:
  Reader(std::vector<std::string> words, std::string prompt) : w_(std::move(words)), prompt_(std::move(prompt)) {}

  bool done() const { return i_ >= w_.size(); }
  size_t pos() const { return i_; }
  void seek(size_t i) { i_ = i; }
  const std::string& peek() const { return w_[i_]; }

  // Takes the longest candidate (multi-word phrases such as "at the top left") that matches here.
  int take_longest(const std::vector<std::vector<std::string>>& candidates) {
    int best = -1;
    size_t best_len = 0;
    for (size_t c = 0; c < candidates.size(); ++c) {
      const auto& cw = candidates[c];
      if (cw.size() <= best_len || i_ + cw.size() > w_.size()) continue;
      bool match = true;
      for (size_t k = 0; k < cw.size() && match; ++k) match = w_[i_ + k] == cw[k];
      if (match) best = int(c), best_len = cw.size();
    }
    i_ += best_len;
    return best;
  }

  bool take(const std::string& word) {
    if (done() || w_[i_] != word) return false;
    ++i_;
    return true;
  }

  rt::Status error(const std::string& what, const std::vector<std::string>& expected) const {
    return error_at(i_, what, expected);
  }

  rt::Status error_at(size_t i, const std::string& what, const std::vector<std::string>& expected) const {
    std::string list;
    for (size_t k = 0; k < expected.size(); ++k) list += (k ? ", " : "") + expected[k];
    const std::string got = i >= w_.size() ? "the end of the prompt" : "unknown word '" + w_[i] + "'";
    return rt::Status::error("prompt \"" + prompt_ + "\": " + got + " at word " + std::to_string(i + 1) +
                             ", expected " + what + (list.empty() ? "" : " (" + list + ")") + "\n  hint: prompts follow the world's caption "
                             "grammar, e.g. 'a small red circle at the top left on a blue background'");
  }

 private:
  std::vector<std::string> w_;
  std::string prompt_;
  size_t i_ = 0;
};

std::vector<std::vector<std::string>> as_phrases(const std::vector<std::string>& names) {
  std::vector<std::vector<std::string>> out;
  for (const std::string& n : names) out.push_back(split_words(n));
  return out;
}

std::string normalize(const std::string& prompt, const WorldSpec& spec) {
  std::string t;
  for (char c : prompt) t += char(std::tolower(static_cast<unsigned char>(c)));
  while (!t.empty() && (std::isspace(static_cast<unsigned char>(t.back())) || t.back() == '.')) t.pop_back();
  std::string out;
  for (const std::string& w : split_words(t)) {
    const auto a = spec.color_aliases.find(w);
    out += (out.empty() ? "" : " ") + (a == spec.color_aliases.end() ? w : a->second);
  }
  return out;
}

}  // namespace

rt::Result<ExpectedScene> parse_caption(const std::string& prompt, const WorldSpec& spec) {
  std::vector<std::string> colors, shapes, sizes, phrases, textures;
  for (const NamedColor& c : spec.colors) colors.push_back(c.name);
  for (const ShapeSpec& s : spec.shapes) shapes.push_back(s.name);
  for (const SizeSpec& s : spec.sizes) sizes.push_back(s.name);
  for (const PositionSpec& p : spec.positions) phrases.push_back(p.phrase);
  std::vector<std::string> texture_names;
  for (const auto& [name, word] : spec.texture_words)
    if (!word.empty()) textures.push_back(word), texture_names.push_back(name);
  const auto color_p = as_phrases(colors), shape_p = as_phrases(shapes), size_p = as_phrases(sizes),
             pos_p = as_phrases(phrases), tex_p = as_phrases(textures);

  // Object templates after the article: the image one, then the spec's video motions.
  std::vector<std::pair<std::string, std::vector<std::string>>> templates = {
      {"", {"{size}", "{color}", "{shape}", "{position}"}}};
  for (const auto& [motion, t] : spec.motion_templates) templates.emplace_back(motion, split_words(t));

  Reader r(split_words(normalize(prompt, spec)), prompt);
  ExpectedScene scene;
  for (;;) {
    if (!r.take("a") && !r.take("an")) return r.error("an article", {"a", "an"});
    // Every template is tried; the longest match wins. When none matches, the error is the one of the
    // template(s) that got furthest, with what each of them expected there.
    const size_t start = r.pos();
    size_t best_end = 0, fail_at = 0;
    ExpectedObject best;
    bool found = false;
    std::vector<std::string> fail_what, fail_list;
    for (const auto& [motion, tokens] : templates) {
      r.seek(start);
      ExpectedObject o;
      o.motion = motion;
      std::string what;
      std::vector<std::string> list;
      for (size_t ti = 0; ti < tokens.size(); ++ti) {
        const std::string& tok = tokens[ti];
        const bool size = tok.rfind("{size", 0) == 0, color = tok.rfind("{color", 0) == 0;
        const bool end = tok.size() > 2 && tok[tok.size() - 2] == '1';  // {size1}, {color1}
        int k = -1;
        if (size) {
          if ((k = r.take_longest(size_p)) >= 0) (end ? o.end_size : o.size) = sizes[k];
          else what = "a size", list = sizes;
        } else if (color) {
          if ((k = r.take_longest(color_p)) >= 0) (end ? o.end_color : o.color) = colors[k];
          else what = "a colour", list = colors;
        } else if (tok == "{shape}") {
          if ((k = r.take_longest(shape_p)) >= 0) o.shape = shapes[k];
          else what = "a shape", list = shapes;
        } else if (tok == "{position}") {
          if ((k = r.take_longest(pos_p)) >= 0) o.position = spec.positions[k].name;
          else what = "a position phrase", list = phrases;
        } else if (r.take(tok)) {
          k = 0;
        } else {
          // A motion's words ("moving to the right", "growing from") are listed whole.
          size_t a = ti, b = ti + 1;
          while (a > 0 && tokens[a - 1][0] != '{') --a;
          while (b < tokens.size() && tokens[b][0] != '{') ++b;
          std::string words;
          for (size_t q = a; q < b; ++q) words += (q > a ? " " : "") + tokens[q];
          what = motion.empty() ? "'" + tok + "'" : "a motion phrase", list = {words};
        }
        if (k < 0) break;
      }
      if (what.empty()) {
        if (!found || r.pos() > best_end) best = o, best_end = r.pos(), found = true;
        continue;
      }
      if (r.pos() > fail_at) fail_at = r.pos(), fail_what.clear(), fail_list.clear();
      if (r.pos() < fail_at) continue;
      if (std::find(fail_what.begin(), fail_what.end(), what) == fail_what.end()) fail_what.push_back(what);
      for (const std::string& w : list)
        if (std::find(fail_list.begin(), fail_list.end(), w) == fail_list.end()) fail_list.push_back(w);
    }
    if (!found) {
      std::string what;
      for (size_t k = 0; k < fail_what.size(); ++k) what += (k ? " or " : "") + fail_what[k];
      return r.error_at(fail_at, what, fail_list);
    }
    r.seek(best_end);
    if (!scene.objects.empty() && scene.video != !best.motion.empty())
      return r.error_at(start - 1, "objects all with a position (an image) or all with a motion (a video)", {});
    scene.video = !best.motion.empty();
    scene.objects.push_back(best);
    if (r.take("and")) continue;
    if (r.take("on")) break;
    return r.error("'and' or the background phrase", {"and", "on"});
  }
  if (!r.take("a") && !r.take("an")) return r.error("an article", {"a", "an"});
  if (const int t = r.take_longest(tex_p); t >= 0) scene.texture = texture_names[t];
  const int c = r.take_longest(color_p);
  if (c < 0) return r.error(textures.empty() ? "a colour" : "a texture or a colour", [&] {
      std::vector<std::string> all = textures;
      all.insert(all.end(), colors.begin(), colors.end());
      return all;
    }());
  scene.background = colors[c];
  if (!r.take("background")) return r.error("the word 'background'", {"background"});
  if (!r.done()) return r.error("the end of the prompt", {});
  return scene;
}

}  // namespace app::eval
