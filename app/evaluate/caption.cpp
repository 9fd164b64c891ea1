#include "app/evaluate/caption.h"

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
    std::string list;
    for (size_t k = 0; k < expected.size(); ++k) list += (k ? ", " : "") + expected[k];
    const std::string got = done() ? "the end of the prompt" : "unknown word '" + w_[i_] + "'";
    return rt::Status::error("prompt \"" + prompt_ + "\": " + got + " at word " + std::to_string(i_ + 1) +
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

  Reader r(split_words(normalize(prompt, spec)), prompt);
  ExpectedScene scene;
  for (;;) {
    if (!r.take("a") && !r.take("an")) return r.error("an article", {"a", "an"});
    ExpectedObject o;
    int k = r.take_longest(size_p);
    if (k < 0) return r.error("a size", sizes);
    o.size = sizes[k];
    if ((k = r.take_longest(color_p)) < 0) return r.error("a colour", colors);
    o.color = colors[k];
    if ((k = r.take_longest(shape_p)) < 0) return r.error("a shape", shapes);
    o.shape = shapes[k];
    if ((k = r.take_longest(pos_p)) < 0) return r.error("a position phrase", phrases);
    o.position = spec.positions[k].name;
    scene.objects.push_back(o);
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
