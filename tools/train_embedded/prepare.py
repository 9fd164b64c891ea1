"""train.py's `prepare` command (CPU): tokenizers trained on the world's captions (a SentencePiece model for T5,
a byte-level BPE for CLIP), every component's config, the scheduler, model_index.json and ditrun_defaults.json,
no weights; and the architecture those configs describe (ARCH, SCHEDULER), which the train command records."""
import json
import math
import os
import random
import shutil
import sys

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "tools", "world"))

import world  # noqa: E402
from recipe import log  # noqa: E402

# ------------------------------------------------------------------------------------------ architecture
# Sized for ditrun's float32 CPU engine (a 512x512, 20-step image in about 10 s on 2 cores) and for a
# float16 folder well under 25 MB. Changing these means rerunning `prepare`.
ARCH = {
    "transformer": dict(patch_size=1, in_channels=64, out_channels=None, num_layers=2, num_single_layers=4,
                        attention_head_dim=64, num_attention_heads=4, joint_attention_dim=128,
                        pooled_projection_dim=128, guidance_embeds=False, axes_dims_rope=(8, 28, 28)),
    "vae": dict(in_channels=3, out_channels=3, down_block_types=["DownEncoderBlock2D"] * 4,
                up_block_types=["UpDecoderBlock2D"] * 4, block_out_channels=[32, 64, 64, 64], layers_per_block=1,
                latent_channels=16, norm_num_groups=16, sample_size=256, scaling_factor=1.0, shift_factor=0.0,
                use_quant_conv=False, use_post_quant_conv=False, mid_block_add_attention=True, force_upcast=False),
    "t5": dict(d_model=128, d_kv=32, d_ff=256, num_layers=3, num_heads=4, relative_attention_num_buckets=32,
               relative_attention_max_distance=128, dropout_rate=0.0, feed_forward_proj="gated-gelu",
               is_encoder_decoder=False, use_cache=False, tie_word_embeddings=False),
    "clip": dict(hidden_size=128, intermediate_size=256, num_hidden_layers=2, num_attention_heads=2,
                 max_position_embeddings=77, hidden_act="quick_gelu", projection_dim=128),
}
SCHEDULER = dict(num_train_timesteps=1000, shift=3.0, use_dynamic_shifting=True, base_shift=0.5, max_shift=1.15,
                 base_image_seq_len=256, max_image_seq_len=4096)
DEFAULT_STEPS = 20
# 512²: small objects are ~4.8 tokens wide there, and the model follows shape on 99% of the held-out prompts
# against 88% at 256² (docs/quality.md, session 8); about 10 s on 2 cores.
DEFAULT_SIZE = 512
SPM_VOCAB = 512
CLIP_MERGES = 1000
PREPARE_SEED = 20240601



def world_captions(spec, n, split, seed):
    rng = np.random.default_rng(seed)
    return [world.caption(world.sample_scene(rng, spec, split), spec) for _ in range(n)]


def longest_captions(spec):
    """The longest captions the grammar allows (two objects, the longest words, a textured background)."""
    words = lambda xs: sorted(xs, key=len, reverse=True)  # noqa: E731
    out = []
    for c1 in words(spec["colors"])[:3]:
        for s1 in words(spec["shape_order"])[:3]:
            for p in words([p["phrase"] for p in spec["positions"]])[:3]:
                for tex in ("striped ", "dotted "):
                    for bg in words(spec["backgrounds"]["colors"])[:3]:
                        out.append("a medium %s %s %s and a medium %s %s %s on a %s%s background"
                                   % (c1, s1, p, c1, s1, p, tex, bg))
    return out


def add_word_pieces(spm_path, words):
    """Makes every world word a single piece of the unigram model.

    SentencePiece's unigram trainer splits even the most frequent caption words on this very repetitive
    corpus ("medium" -> "me" "dium"), which doubles the T5 sequence. A word piece scored like the best normal
    piece always wins the Viterbi search (any split sums at least two scores, each no higher), so the model
    stays an ordinary unigram spiece.model that sentencepiece, transformers and ditrun segment alike.
    """
    from sentencepiece import sentencepiece_model_pb2 as spm_pb2
    proto = spm_pb2.ModelProto()
    with open(spm_path, "rb") as f:
        proto.ParseFromString(f.read())
    have = {p.piece for p in proto.pieces}
    best = max(p.score for p in proto.pieces if p.type == spm_pb2.ModelProto.SentencePiece.NORMAL)
    added = 0
    for w in words:
        piece = "\u2581" + w
        if piece not in have:
            proto.pieces.add(piece=piece, score=best, type=spm_pb2.ModelProto.SentencePiece.NORMAL)
            added += 1
    with open(spm_path, "wb") as f:
        f.write(proto.SerializeToString())
    return added


def cmd_prepare(args):
    import sentencepiece as spm
    import transformers
    from diffusers import (AutoencoderKL, FlowMatchEulerDiscreteScheduler, FluxPipeline,
                           FluxTransformer2DModel)
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer, T5Config, T5EncoderModel

    import make_tokenizer_fixtures as mtf  # SentencePiece + CLIP-BPE trainers shared with the fixtures

    spec = world.load_spec()
    out = os.path.abspath(args.out)
    if os.path.exists(out):
        shutil.rmtree(out)
    os.makedirs(out)
    # Tokenizer corpus: world captions (train and held-out scenes: the vocabulary must cover every caption the
    # evaluator can ask for), video captions (future video models share the vocabulary), and the generic
    # English corpus of the tokenizer fixtures so that other prompts do not fall apart into single bytes.
    corpus = world_captions(spec, 12000, "train", PREPARE_SEED) + world_captions(spec, 3000, "heldout", PREPARE_SEED + 1)
    rng = np.random.default_rng(PREPARE_SEED + 2)
    corpus += [world.video_caption(world.sample_video(rng, spec), spec) for _ in range(2000)]
    world_lines = list(corpus)
    corpus += mtf.make_corpus()
    random.Random(PREPARE_SEED).shuffle(corpus)

    # ---- T5 (tokenizer_2): SentencePiece unigram, T5 ids pad=0 eos=1 unk=2
    tok2 = os.path.join(out, "tokenizer_2")
    spm_path = mtf.train_spm(corpus, tok2)  # vocab 512 (mtf's setting)
    add_word_pieces(spm_path, sorted({w for line in world_lines for w in line.split()}))
    sp = spm.SentencePieceProcessor(model_file=spm_path)
    t5_tok = mtf.t5_fast_from_spm(spm_path)
    t5_tok.model_max_length = 512
    t5_tok.save_pretrained(tok2)
    assert os.path.exists(spm_path)
    # ---- CLIP (tokenizer): byte-level BPE in openai's layout
    tok1 = os.path.join(out, "tokenizer")
    mtf.train_clip_bpe(corpus, CLIP_MERGES, tok1)
    os.remove(os.path.join(tok1, "tokenizer.json"))
    clip_tok = CLIPTokenizer(vocab=os.path.join(tok1, "vocab.json"), merges=os.path.join(tok1, "merges.txt"),
                             model_max_length=77)
    clip_tok.save_pretrained(tok1)
    stm = os.path.join(tok1, "special_tokens_map.json")
    if not os.path.exists(stm):
        with open(stm, "w") as f:
            json.dump({"bos_token": clip_tok.bos_token, "eos_token": clip_tok.eos_token,
                       "pad_token": clip_tok.pad_token, "unk_token": clip_tok.unk_token}, f, indent=2)

    # ---- verification: reload as diffusers will and compare with sentencepiece (docs/parity-fixtures.md pitfall)
    from transformers import AutoTokenizer
    t5_re = AutoTokenizer.from_pretrained(tok2)
    clip_re = CLIPTokenizer.from_pretrained(tok1)
    assert clip_re.model_max_length == 77, clip_re.model_max_length
    test = world_captions(spec, 300, "heldout", 7) + world_captions(spec, 300, "train", 8) + longest_captions(spec)
    max_t5 = max(len(sp.encode(t)) + 1 for t in test + world_lines)
    L = int(math.ceil(max_t5 / 8.0) * 8)
    for t in test:
        ref = mtf.t5_reference(sp, t, L)
        got = t5_re(t, padding="max_length", max_length=L, truncation=True)["input_ids"]
        assert got == ref, (t, got, ref)
        assert sp.unk_id() not in ref, t
        c = clip_re(t, padding="max_length", max_length=77, truncation=True)["input_ids"]
        assert c[0] == clip_re.bos_token_id and clip_re.unk_token_id not in c[1:c.index(clip_re.eos_token_id)], t
    words = sorted({w for t in test for w in t.split()})
    multi = [w for w in words if len(sp.encode(w)) > 1]
    log("t5: %d pieces, longest caption %d tokens -> max_sequence_length %d; world words split into >1 piece: %s"
        % (sp.get_piece_size(), max_t5, L, multi or "none"))
    log("clip: %d tokens; pad=%r eos=%d" % (len(clip_re), clip_re.pad_token, clip_re.eos_token_id))

    # ---- configs: build the pipeline with random weights, save it, keep only the configs
    torch.manual_seed(0)
    transformer = FluxTransformer2DModel(**ARCH["transformer"])
    vae = AutoencoderKL(**ARCH["vae"])
    t5 = T5EncoderModel(T5Config(vocab_size=sp.get_piece_size(), pad_token_id=0, eos_token_id=1,
                                 decoder_start_token_id=0, **ARCH["t5"]))
    clip = CLIPTextModel(CLIPTextConfig(vocab_size=len(clip_re), bos_token_id=clip_re.bos_token_id,
                                        eos_token_id=clip_re.eos_token_id, pad_token_id=clip_re.pad_token_id,
                                        **ARCH["clip"]))
    sched = FlowMatchEulerDiscreteScheduler(**SCHEDULER)
    pipe = FluxPipeline(scheduler=sched, vae=vae, text_encoder=clip, tokenizer=clip_re, text_encoder_2=t5,
                        tokenizer_2=t5_re, transformer=transformer)
    tmp = out + ".tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    pipe.save_pretrained(tmp)
    for comp in ("transformer", "vae", "text_encoder", "text_encoder_2", "scheduler"):
        os.makedirs(os.path.join(out, comp), exist_ok=True)
        for name in os.listdir(os.path.join(tmp, comp)):
            if name.endswith(".json"):
                shutil.copy(os.path.join(tmp, comp, name), os.path.join(out, comp, name))
    shutil.copy(os.path.join(tmp, "model_index.json"), os.path.join(out, "model_index.json"))
    shutil.rmtree(tmp)  # its tokenizer folders lack vocab.json/merges.txt/spiece.model: keep the verified ones

    counts = {k: sum(p.numel() for p in m.parameters()) for k, m in
              (("transformer", transformer), ("vae", vae), ("text_encoder", clip), ("text_encoder_2", t5))}
    with open(os.path.join(out, "ditrun_defaults.json"), "w") as f:
        json.dump({"width": DEFAULT_SIZE, "height": DEFAULT_SIZE, "steps": DEFAULT_STEPS, "max_sequence_length": L, "guidance": 0}, f,
                  indent=1)
        f.write("\n")
    with open(os.path.join(out, "prepare_config.json"), "w") as f:
        json.dump({"generator": "tools/train_embedded/train.py prepare", "seed": PREPARE_SEED,
                   "corpus_lines": len(corpus), "spm_vocab": sp.get_piece_size(), "clip_merges": CLIP_MERGES,
                   "longest_caption_t5_tokens": max_t5, "max_sequence_length": L, "arch": ARCH,
                   "scheduler": SCHEDULER, "parameters": counts, "world_spec_version": spec["version"],
                   "versions": {"torch": torch.__version__, "transformers": transformers.__version__,
                                "sentencepiece": spm.__version__}}, f, indent=1)
        f.write("\n")
    log("parameters: %s; total %.2fM (%.1f MB in float16)"
        % (counts, sum(counts.values()) / 1e6, 2 * sum(counts.values()) / 2 ** 20))
    log("wrote", out)

