#!/usr/bin/env python3
"""Makes the tokenizer fixtures under tests/fixtures/tokenizers/ (deterministic; rerun to regenerate).

1. t5/spiece.model: a small SentencePiece unigram model (512 pieces, T5 ids pad=0 eos=1 unk=2, no bos,
   nmt_nfkc normalisation) trained on a generated caption corpus.
2. clip/vocab.json + merges.txt (openai CLIP layout) and tokenizer.json: a byte-level BPE with ~1000 merges
   learned from the same corpus by the small trainer below, pre-tokenised exactly as transformers'
   CLIPTokenizer does.
3. cases.json: texts and the reference ids from transformers (T5 at max_length 32 and 16, CLIP at 77).
4. unicode_tables.json: per-code-point behaviour of CLIP's normaliser and regex classes (see unicode_tables).

T5 reference: raw `sentencepiece` ids + `</s>`, truncated to max_length and padded with 0. This is what the
slow sentencepiece-based T5Tokenizer did (BFL) and what the C++ matches. transformers 5 only has the
tokenizers-backed T5Tokenizer; we build it explicitly from the model's pieces and precompiled charsmap
and record where it disagrees (`t5_fast_*` fields). With transformers 5.24 it agrees on every case here
(its WhitespaceSplit pre-tokeniser drops the trailing "▁" that older fast tokenizers kept).
Pitfall, still present in 5.24: T5Tokenizer(vocab_file="spiece.model") ignores the file and knows only
the special tokens ("a large red circle" -> [3, 2, 3, 2, ...]); never use it for references.

CLIP reference: transformers 5 only has the tokenizers-backed CLIPTokenizer (NFC, whitespace runs -> " ",
lowercase; no ftfy, no HTML unescaping, unlike openai's original and transformers 4's slow class).

Usage: /work/pyenv/bin/python tools/make_tokenizer_fixtures.py [--out tests/fixtures/tokenizers]
"""
import argparse
import collections
import json
import os
import random
import tempfile
import unicodedata

import sentencepiece as spm
import tokenizers
import transformers
from sentencepiece import sentencepiece_model_pb2 as spm_pb2
from tokenizers import Regex, normalizers, pre_tokenizers
from transformers import CLIPTokenizer, T5Tokenizer

SEED = 1234

# ----------------------------------------------------------------------------------------------- corpus
SIZES = ["small", "large", "tiny", "huge", "medium", "big"]
COLORS = ["red", "green", "blue", "yellow", "purple", "orange", "black", "white", "gray", "pink", "brown", "cyan"]
SHAPES = ["circle", "square", "triangle", "star", "hexagon", "rectangle", "ellipse", "diamond", "cross", "heart"]
POSITIONS = ["at the left", "at the right", "at the top", "at the bottom", "in the center",
             "in the top left corner", "in the bottom right corner", "near the edge", "above the middle"]
BACKGROUNDS = ["a blue background", "a white background", "a dark background", "a striped background",
               "a gradient background", "a checkered background", "a wooden table", "green grass"]
SUBJECTS = ["the cat", "a dog", "my friend", "the teacher", "our neighbour", "a little girl", "the old man",
            "the children", "a painter", "the robot", "she", "he", "they", "we", "the café owner", "a student"]
VERBS = ["walks", "paints", "looks at", "finds", "carries", "draws", "remembers", "builds", "opens", "watches",
         "likes", "sees", "moves", "holds", "photographs", "describes"]
OBJECTS = ["a bright lamp", "the wooden door", "an old photograph", "the river", "a quiet street", "the mountains",
           "a red balloon", "the garden", "a glass of water", "the morning light", "a small boat", "the city",
           "an empty room", "the yellow house", "a heavy book", "the über modern building"]
ADVERBS = ["slowly", "quickly", "carefully", "happily", "quietly", "today", "again", "every morning",
           "at night", "in the rain", "with a smile", "without a word"]
CONNECT = ["and", "but", "because", "while", "so", "although", "when", "after"]
STYLES = ["photo of", "painting of", "drawing of", "sketch of", "render of", "illustration of", "picture of"]
NOUNS = ("apple window forest ocean bridge castle engine garden island kitchen ladder market mirror needle "
         "orchard pencil rabbit saddle tunnel umbrella valley wagon yard zebra anchor basket candle desert "
         "feather glacier harbor jacket kettle lantern meadow notebook pillow quilt ribbon shelter tower violin "
         "whistle blanket compass dragon elephant fountain guitar helmet igloo jungle kingdom lighthouse "
         "mountain nest owl piano queen rocket sailor tiger unicorn village wizard bicycle carpet dolphin "
         "planet telescope volcano butterfly penguin statue cathedral stadium airport library museum "
         "giraffe squirrel hamburger sandwich keyboard monitor scissors hammer pyramid waterfall canyon "
         "parrot spaceship submarine tractor helicopter chocolate strawberry pumpkin cucumber mushroom "
         "snowflake thunderstorm rainbow sunflower cactus lizard octopus jellyfish skyscraper backpack").split()
ADJECTIVES = ("ancient bright calm dusty elegant fancy gentle hollow icy jolly kind lonely misty noisy odd "
              "pale quick rusty shiny tall ugly vivid warm young zealous brave clever dark eager fierce golden "
              "happy itchy lazy magic narrow orange proud rough silent tender velvet wild crisp frozen glossy "
              "heavy lucky polished curious sleepy stormy sunny translucent metallic fluffy wrinkled "
              "enormous delicate mysterious colorful transparent geometric symmetrical cheerful").split()
VERBS2 = ("climbs jumps sings reads writes cooks swims flies sleeps dances whispers shouts travels explores "
          "repairs collects imagines discovers follows crosses visits celebrates").split()
EXTRA = ["It's a sunny day.", "We'll meet at 10:30.", "They're here!", "I've seen 3 cats.", "Don't worry, be happy.",
         "The price is $25.99 (with tax).", "Call me at 555-0123.", "She said: \"hello\".", "Room 42, floor 7.",
         "Wait... what?", "Yes; no; maybe.", "An A+ grade & a gold star.", "The year 2024 was long.",
         "I'd like 2 coffees, please.", "You're right, it isn't.", "He'll be there at 5 pm."]


def caption(rng):
    parts = []
    if rng.random() < 0.3:
        parts.append("a " + rng.choice(STYLES))
    parts.append("a %s %s %s %s" % (rng.choice(SIZES), rng.choice(COLORS), rng.choice(SHAPES), rng.choice(POSITIONS)))
    parts.append("on " + rng.choice(BACKGROUNDS))
    if rng.random() < 0.4:
        parts.append("next to a %s %s" % (rng.choice(COLORS), rng.choice(SHAPES)))
    text = " ".join(parts)
    if rng.random() < 0.2:
        text = text.capitalize() + "."
    return text


def sentence(rng):
    def clause():
        s = "%s %s %s" % (rng.choice(SUBJECTS), rng.choice(VERBS), rng.choice(OBJECTS))
        if rng.random() < 0.5:
            s += " " + rng.choice(ADVERBS)
        return s
    s = clause()
    if rng.random() < 0.4:
        s += ", %s %s" % (rng.choice(CONNECT), clause())
    s = s[0].upper() + s[1:] + rng.choice([".", ".", "!", "?"])
    if rng.random() < 0.15:
        s += " " + rng.choice(EXTRA)
    return s


def generic(rng):
    """Procedural English with a wider vocabulary (so 512 unigram pieces are reachable)."""
    a, b = rng.sample(ADJECTIVES, 2)
    n1, n2 = rng.sample(NOUNS, 2)
    s = "The %s %s %s near the %s %s" % (a, n1, rng.choice(VERBS2), b, n2)
    if rng.random() < 0.3:
        s += " %d times" % rng.randint(2, 2000)
    return s + rng.choice([".", "!", "?", "..."])


def make_corpus():
    rng = random.Random(SEED)
    lines = [caption(rng) for _ in range(1500)] + [sentence(rng) for _ in range(600)]
    lines += [generic(rng) for _ in range(900)] + EXTRA * 5
    rng.shuffle(lines)
    return lines


# ------------------------------------------------------------------------------------------------- T5
def train_spm(corpus, out_dir):
    os.makedirs(out_dir, exist_ok=True)
    # Relative paths inside a temp dir: the trainer records them in the model, which must stay byte-stable.
    cwd = os.getcwd()
    with tempfile.TemporaryDirectory() as tmp:
        os.chdir(tmp)
        with open("corpus.txt", "w", encoding="utf-8") as f:
            f.write("\n".join(corpus) + "\n")
        spm.SentencePieceTrainer.train(
            input="corpus.txt", model_prefix="spiece", model_type="unigram", vocab_size=512,
            pad_id=0, eos_id=1, unk_id=2, bos_id=-1, normalization_rule_name="nmt_nfkc",
            character_coverage=1.0, num_threads=1, shuffle_input_sentence=False, seed_sentencepiece_size=100000,
            minloglevel=2)
        with open("spiece.model", "rb") as f:
            data = f.read()
        os.chdir(cwd)
    with open(os.path.join(out_dir, "spiece.model"), "wb") as f:
        f.write(data)
    return os.path.join(out_dir, "spiece.model")


def t5_fast_from_spm(model_path):
    """Builds transformers' (tokenizers-backed) T5Tokenizer from the model's own pieces and charsmap."""
    proto = spm_pb2.ModelProto()
    with open(model_path, "rb") as f:
        proto.ParseFromString(f.read())
    vocab = [(p.piece, p.score) for p in proto.pieces]
    return T5Tokenizer(vocab=vocab, _spm_precompiled_charsmap=proto.normalizer_spec.precompiled_charsmap,
                       extra_ids=0)


def t5_reference(sp, text, max_length):
    ids = sp.encode(text)[: max_length - 1] + [sp.eos_id()]
    return ids + [sp.pad_id()] * (max_length - len(ids))


# ----------------------------------------------------------------------------------------------- CLIP
def bytes_to_unicode():
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, [chr(c) for c in cs]))


def clip_pretokenize():
    """The normaliser + pre-tokeniser of transformers' CLIPTokenizer (so training sees what encoding sees)."""
    norm = normalizers.Sequence([normalizers.NFC(), normalizers.Replace(Regex(r"\s+"), " "), normalizers.Lowercase()])
    pre = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(r"""<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+"""),
                             behavior="removed", invert=True),
        pre_tokenizers.ByteLevel(add_prefix_space=False)])
    return lambda text: [w for w, _ in pre.pre_tokenize_str(norm.normalize_str(text))]


def train_clip_bpe(corpus, num_merges, out_dir):
    """Classic BPE training: repeatedly merge the most frequent adjacent pair (ties: smallest pair)."""
    split = clip_pretokenize()
    counts = collections.Counter(w for line in corpus for w in split(line))
    words = [[*w[:-1], w[-1] + "</w>"] for w in counts]
    freqs = [counts[w] for w in counts]
    byte_chars = list(bytes_to_unicode().values())
    vocab = byte_chars + [c + "</w>" for c in byte_chars]
    known = set(vocab)
    merges, banned = [], set()
    while len(merges) < num_merges:
        pairs = collections.Counter()
        for w, f in zip(words, freqs):
            for a, b in zip(w, w[1:]):
                pairs[(a, b)] += f
        candidates = [(-c, p) for p, c in pairs.items() if p not in banned]
        if not candidates:
            break
        _, best = min(candidates)
        merged = best[0] + best[1]
        if merged in known:  # the same string from another split would give vocab.json a duplicate key
            banned.add(best)
            continue
        merges.append(best)
        vocab.append(merged)
        known.add(merged)
        for w in words:
            i = 0
            while i < len(w) - 1:
                if (w[i], w[i + 1]) == best:
                    w[i:i + 2] = [merged]
                i += 1
    vocab += ["<|startoftext|>", "<|endoftext|>"]
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "vocab.json"), "w", encoding="utf-8") as f:
        json.dump({t: i for i, t in enumerate(vocab)}, f, ensure_ascii=False)
    with open(os.path.join(out_dir, "merges.txt"), "w", encoding="utf-8") as f:
        f.write("#version: 0.2\n" + "".join("%s %s\n" % m for m in merges))
    stale = os.path.join(out_dir, "tokenizer.json")
    if os.path.exists(stale):  # from_pretrained would prefer it over the new vocab.json/merges.txt
        os.remove(stale)
    tok = CLIPTokenizer.from_pretrained(out_dir)
    tok.backend_tokenizer.save(os.path.join(out_dir, "tokenizer.json"))
    return tok, len(vocab), len(merges)


# ------------------------------------------------------------------------------------ unicode tables
def unicode_tables():
    """What the CLIP normaliser and regex do to every code point, probed through the tokenizers library.

    The C++ takes these properties from ICU; its test compares them code point by code point. Only code
    points assigned in Python's Unicode database are meant to be compared: a newer Unicode version in
    tokenizers (Rust) may know characters that the system ICU does not.
    """
    split = pre_tokenizers.Split(Regex(r"[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+"), behavior="removed", invert=True)
    low, nfc = normalizers.Lowercase(), normalizers.NFC()
    kind, lower, composed = {}, [], []
    for cp in range(0x110000):
        if 0xD800 <= cp <= 0xDFFF:
            continue
        c = chr(cp)
        # c+"a": a letter joins the letter run; whitespace vanishes. c+c: a number is one match per char.
        first = [w for w, _ in split.pre_tokenize_str(c + "a")]
        if first == ["a"]:
            kind[cp] = "space"
        elif first == [c + "a"]:
            kind[cp] = "letter"
        elif len(split.pre_tokenize_str(c + c)) == 2:
            kind[cp] = "number"
        if low.normalize_str(c) != c:
            lower.append([cp] + [ord(x) for x in low.normalize_str(c)])
        if nfc.normalize_str(c) != c:
            composed.append([cp] + [ord(x) for x in nfc.normalize_str(c)])

    def ranges(pred):
        out, start = [], None
        for cp in range(0x110001):
            if cp < 0x110000 and pred(cp):
                start = cp if start is None else start
            elif start is not None:
                out.append([start, cp - 1])
                start = None
        return out

    assigned = ranges(lambda cp: not 0xD800 <= cp <= 0xDFFF and unicodedata.category(chr(cp)) != "Cn")
    return {"note": "tokenizers %s normaliser/regex behaviour per code point; compare only inside 'assigned' "
                    "(Unicode %s, Python's unicodedata)" % (tokenizers.__version__, unicodedata.unidata_version),
            "assigned": assigned,
            "letter": ranges(lambda cp: kind.get(cp) == "letter"),
            "number": ranges(lambda cp: kind.get(cp) == "number"),
            "space": ranges(lambda cp: kind.get(cp) == "space"),
            "lower": lower, "nfc": composed}


# ---------------------------------------------------------------------------------------------- cases
LONG = ("a highly detailed photograph of a large red circle at the left on a blue background, next to a small "
        "green triangle in the top left corner, with soft morning light, a wooden table, an old photograph, a "
        "glass of water and a tiny purple star near the edge, painted slowly and carefully by a painter who "
        "remembers the river, the mountains and the quiet street of the city at night in the rain")

TEXTS = [
    "a large red circle at the left on a blue background",
    "A photo of a cat",
    "The children paint a yellow house happily.",
    "",
    " ",
    "hello world",
    "  leading spaces",
    "trailing spaces   ",
    "  both sides  ",
    "many     spaces    between   words",
    "tabs\tand\nnewlines\r\nhere",
    "\tleading tab and trailing newline\n",
    "UPPERCASE TEXT WITH A RED SQUARE",
    "MiXeD CaSe Words",
    "It's a sunny day, we'll go out; they're happy and I've seen it. Don't!",
    "IT'S LOUD, WE'LL SEE",
    "Numbers: 0 1 2 3 42 2024 3.14159 1,000,000 and 10:30",
    "punctuation!!! ??? ... --- ;;; (brackets) [square] {curly} <angle> \"quotes\" 'single'",
    "symbols @#$%^&*_+=|\\/~`",
    "café über naïve résumé",
    "Crème brûlée à la carte",
    "emoji 😀🎨 rocket 🚀 and a ❤️ heart",
    "CJK: 日本語のテキスト 中文 한국어",
    "ﬁne ligature ﬂow",
    "Ｆｕｌｌ－ｗｉｄｔｈ　ｃｈａｒｓ １２３",
    "fish &amp; chips &lt;b&gt; &quot;x&quot;",
    "combining: e\u0301 and n\u0303 vs é ñ",
    "Greek ΣΟΦΙΑ σοφία and Cyrillic Москва",
    "Turkish İstanbul",
    "arabic مرحبا and hebrew שלום",
    "superscripts x² and ½ fraction and ⅷ roman",
    "non-breaking\u00a0space and\u2003em space and\u200bzero width",
    "control\u0007char and soft\u00adhyphen",
    "a<|endoftext|>b <|startoftext|> c",
    "<|STARTOFTEXT|>! upper-case special text is not special: A<|EndOfText|>.",
    "quotes ''s and 'S, rock'n'roll, o'clock, ’curly’ apostrophes’s",
    "don't stop-believing, it's 'quoted' stuff",
    "the über modern building in the top left corner",
    LONG,
    (LONG + " ") * 3,
    "word " * 80,
    "x" * 300,
]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "..", "tests", "fixtures", "tokenizers"))
    args = ap.parse_args()
    out = os.path.abspath(args.out)
    corpus = make_corpus()

    t5_path = train_spm(corpus, os.path.join(out, "t5"))
    sp = spm.SentencePieceProcessor(model_file=t5_path)
    t5_fast = t5_fast_from_spm(t5_path)
    clip_dir = os.path.join(out, "clip")
    clip, clip_vocab_size, clip_merges = train_clip_bpe(corpus, 1000, clip_dir)
    # The direct-file constructor must agree with from_pretrained (the loader the brief names).
    clip_files = CLIPTokenizer(vocab=os.path.join(clip_dir, "vocab.json"), merges=os.path.join(clip_dir, "merges.txt"))

    cases = []
    for text in TEXTS:
        case = {"text": text}
        for n in (32, 16):
            ref = t5_reference(sp, text, n)
            fast = t5_fast(text, padding="max_length", max_length=n, truncation=True)["input_ids"]
            case["t5_%d" % n] = ref
            if fast != ref:
                case["t5_fast_%d" % n] = fast
        if "t5_fast_32" in case or "t5_fast_16" in case:
            case["note"] = ("transformers' tokenizers-backed T5Tokenizer differs from sentencepiece here; "
                            "we match sentencepiece (t5_*), t5_fast_* is recorded for reference")
        clip_ids = clip(text, padding="max_length", max_length=77, truncation=True)["input_ids"]
        other = clip_files(text, padding="max_length", max_length=77, truncation=True)["input_ids"]
        assert other == clip_ids, text
        case["clip_77"] = clip_ids
        cases.append(case)

    # Guard against the pitfall in docs/parity-fixtures.md: a tokenizer that only knows special tokens.
    assert cases[0]["t5_32"].count(sp.unk_id()) == 0 and len(set(cases[0]["t5_32"])) > 5
    assert max(cases[0]["clip_77"]) < clip_vocab_size and len(set(cases[0]["clip_77"])) > 5

    doc = {
        "generator": "tools/make_tokenizer_fixtures.py",
        "versions": {"transformers": transformers.__version__, "tokenizers": tokenizers.__version__,
                     "sentencepiece": spm.__version__},
        "t5": {
            "model": "t5/spiece.model", "vocab_size": sp.get_piece_size(), "pad_id": sp.pad_id(),
            "eos_id": sp.eos_id(), "unk_id": sp.unk_id(),
            "reference": "sentencepiece.SentencePieceProcessor.encode(text)[:max_length-1] + [eos], padded with "
                         "pad_id to max_length (= the slow T5Tokenizer with padding='max_length', truncation=True)",
            "cross_check": "transformers.T5Tokenizer (tokenizers backend) built from the model's pieces and "
                           "precompiled charsmap, extra_ids=0; recorded as t5_fast_<n> only where it differs",
            "pitfall": "T5Tokenizer(vocab_file=spiece.model) in transformers 5 knows only the special tokens "
                       "(every word -> <unk>); not used",
        },
        "clip": {
            "dir": "clip", "vocab_size": clip_vocab_size, "merges": clip_merges,
            "bos_id": clip.bos_token_id, "eos_id": clip.eos_token_id, "pad_id": clip.pad_token_id,
            "reference": "transformers.CLIPTokenizer.from_pretrained(clip/) (tokenizers backend; the only CLIP "
                         "tokenizer in transformers 5, ftfy not used), padding='max_length', max_length=77, "
                         "truncation=True; same ids from CLIPTokenizer(vocab=vocab.json, merges=merges.txt)",
        },
        "cases": cases,
    }
    with open(os.path.join(out, "cases.json"), "w", encoding="utf-8") as f:
        json.dump(doc, f, ensure_ascii=False, indent=1)
        f.write("\n")
    with open(os.path.join(out, "unicode_tables.json"), "w", encoding="utf-8") as f:
        json.dump(unicode_tables(), f, separators=(",", ":"))
        f.write("\n")
    differ = sum(1 for c in cases if "note" in c)
    print("t5: %d pieces; clip: %d tokens, %d merges; %d cases (%d where fast T5 differs)"
          % (sp.get_piece_size(), clip_vocab_size, clip_merges, len(cases), differ))


if __name__ == "__main__":
    main()
