#!/usr/bin/python3
"""Trains the SentencePiece test models and writes the golden ids that
internal/spm and internal/texttok test against.

Run from the repository root (Debian bookworm: sentencepiece 0.1.97 for
spm_train, python3-sentencepiece 0.1.97 with its protobuf module):

    /usr/bin/python3 internal/spm/testdata/gen.py

corpus.txt is committed: 960 captions of clipline's synthetic domains
(`prepare synthetic --domain general|scenes --images 400 --jsonl DIR`, the
train split's unique captions, shuffled with seed 15) and 13 lines written
for it (accents, CJK, Cyrillic, Greek, emoji, full-width forms, digits),
three times each. Never the CLIP vocabulary.

Models (both unigram, as SigLIP's spiece.model is):
  unigram.model   SigLIP's layout: pad 0, eos 1, unk 2, no bos; the default
                  nmt_nfkc normaliser, dummy prefix, whitespace removal.
  small.model     SigLIP's layout in under 256 pieces with the identity
                  normaliser (so it is small), for tiny test models
                  (clip's SigLIP test); no goldens of its own.
  flags.model     the other code paths: identity normalisation, no dummy
                  prefix, whitespace kept, byte fallback, split digits, a
                  user-defined symbol; default ids (unk 0, bos 1, eos 2).

Rerunning gives the same pieces and ids; the .model bytes differ only in
the trainer_spec's recorded input and model_prefix paths (a temporary
directory).

Goldens:
  spm_golden.jsonl     {"model", "text", "ids"}: SentencePieceProcessor.encode
                       (the model as it is) for edge cases and captions.
  siglip_golden.jsonl  {"text", "ids", "length", "pad"}: the row of ids (without
                       its trailing padding: pad up to length) of unigram.model
                       through transformers'
                       SiglipTokenizer and SiglipProcessor(padding="max_length",
                       truncation=True, max_length=64), reimplemented below
                       from transformers v4.47.0 (tokenization_siglip.py,
                       tokenization_utils.py PreTrainedTokenizer.tokenize,
                       tokenization_utils_base prepare_for_model), since
                       transformers is not installed here.
"""

import json
import os
import random
import re
import string
import subprocess
import tempfile

import sentencepiece as spm
from sentencepiece import sentencepiece_model_pb2 as model_pb2

HERE = os.path.dirname(os.path.abspath(__file__))
SPIECE_UNDERLINE = "\u2581"
MAX_LENGTH = 64  # google/siglip-base-patch16-224's text max_position_embeddings


def train():
    common = {"input": os.path.join(HERE, "corpus.txt"), "model_type": "unigram",
              "num_threads": 1, "random_seed": 15, "minloglevel": 2}
    models = {
        "unigram": {"vocab_size": 320, "hard_vocab_limit": "false", "pad_id": 0, "eos_id": 1, "unk_id": 2, "bos_id": -1},
        "small": {"vocab_size": 200, "hard_vocab_limit": "false", "normalization_rule_name": "identity",
                  "pad_id": 0, "eos_id": 1, "unk_id": 2, "bos_id": -1},
        "flags": {"vocab_size": 500, "hard_vocab_limit": "false", "normalization_rule_name": "identity", "add_dummy_prefix": "false",
                  "remove_extra_whitespaces": "false", "byte_fallback": "true", "split_digits": "true",
                  "user_defined_symbols": "<sep>"},
    }
    with tempfile.TemporaryDirectory() as tmp:
        for name, flags in models.items():
            flags = {**common, **flags, "model_prefix": os.path.join(tmp, name)}
            subprocess.run(["spm_train", *[f"--{k}={v}" for k, v in flags.items()]], check=True)
            os.replace(os.path.join(tmp, name + ".model"), os.path.join(HERE, name + ".model"))


EDGE = [
    "", " ", "   ", "\t\n", "a", "A", "A photo of a cat.",
    "  leading and trailing spaces  ", "multiple   internal \t\n  whitespace runs",
    "tabs\tand\nnewlines\r\nand carriage returns",
    "Café naïve résumé crème brûlée", "e\u0301 combining acute, o\u0308 diaeresis",
    "ＦＵＬＬＷＩＤＴＨ ｔｅｘｔ １２３", "ﬁ ligature ﬂ and ½ fraction ² superscript",
    "日本の猫が窓辺で寝ている", "一只小狗在公园里玩", "한국어 문장", "Большая собака",
    "Ελληνικά ΣΊΣΥΦΟΣ final sigma ς", "İstanbul DİYARBAKIR", "ǅungla title-case ǅ",
    "party 🎉 cats 🐱🐱 dogs 🐶", "unknown chars ☃ ∮ ꙮ ⌘ and more ☃☃☃", "ꙮꙮ", "☃",
    "don't stop!!! (really?) \"quoted\"", "punctuation: #$%&'()*+,-./:;<=>?@[\\]^_`{|}~",
    "\u2581 literal underline \u2581\u2581 x\u2581y", "</s> special inside </s> end</s>",
    "<unk> text <unk>", "<pad> and <s>", "</S> upper special", "<sep> user symbol<sep>x",
    "numbers 12345 3.14 2026-12-07", "zero\u200bwidth\u200cjoiner\u200d",
    "\u00a0nbsp\u3000ideographic\u2003em space\u2028line sep", "\ufeffbom at start",
    "control \x01\x02\x7f chars", "\x1c\x1d\x1e\x1f info separators", "x" * 300,
    "a red circle " * 40,
]


def captions(n):
    lines = [l.rstrip("\n") for l in open(os.path.join(HERE, "corpus.txt"), encoding="utf-8")]
    rng = random.Random(7)
    out = []
    for _ in range(n):
        words = rng.choice(lines).split(" ")
        # Some mutations: case, punctuation and spacing the corpus lacks.
        if rng.random() < 0.3:
            words = [w.upper() if rng.random() < 0.3 else w for w in words]
        if rng.random() < 0.3:
            words.insert(rng.randrange(len(words) + 1), rng.choice([",", ".", "!", "--", "'s", "\u2603"]))
        sep = rng.choice([" ", " ", " ", "  ", " \t"])
        out.append(sep.join(words))
    return out


# --- transformers' SiglipTokenizer (v4.47.0), on top of sentencepiece ------

class Siglip:
    def __init__(self, path):
        # get_spm_processor: the model with add_dummy_prefix switched off.
        m = model_pb2.ModelProto()
        m.ParseFromString(open(path, "rb").read())
        ns = model_pb2.NormalizerSpec()
        ns.add_dummy_prefix = False
        m.normalizer_spec.MergeFrom(ns)
        self.sp = spm.SentencePieceProcessor()
        self.sp.LoadFromSerializedProto(m.SerializeToString())
        self.eos, self.unk, self.pad = "</s>", "<unk>", "</s>"
        self.special = [self.eos, self.unk]  # all_special_tokens (pad is eos)
        self.unk_len = len(self.sp.encode(self.unk))

    def canonicalize_text(self, text):
        text = text.translate(str.maketrans("", "", string.punctuation))
        text = re.sub(r"\s+", " ", text)
        return text.strip()

    def _tokenize(self, text):
        text = self.canonicalize_text(text)
        tokens = self.sp.encode(self.unk + text, out_type=str)
        return tokens[self.unk_len:] if len(tokens) >= self.unk_len else tokens

    def tokenize(self, text):
        # SiglipTokenizer.tokenize
        text = SPIECE_UNDERLINE + text.replace(SPIECE_UNDERLINE, " ")
        # PreTrainedTokenizer.tokenize: lowercase outside special tokens
        # (do_lower_case=True), one character at a time as its regex does.
        pattern = r"(" + r"|".join(re.escape(s) for s in self.special) + r")|" + r"(.+?)"
        text = re.sub(pattern, lambda m: m.groups()[0] or m.groups()[1].lower(), text)
        # tokens_trie.split on the added tokens, which strip whitespace on
        # both sides (AddedToken lstrip=rstrip=True).
        parts = [p for p in re.split("(" + "|".join(re.escape(s) for s in self.special) + ")", text)]
        for i, p in enumerate(parts):
            if p in self.special:
                if i + 1 < len(parts) and parts[i + 1]:
                    parts[i + 1] = parts[i + 1].lstrip()
                if i > 0 and parts[i - 1]:
                    parts[i - 1] = parts[i - 1].rstrip()
        tokens = []
        for p in parts:
            if not p:
                continue
            if p in self.special:
                tokens.append(p)
            else:
                tokens.extend(self._tokenize(p))
        if len(tokens) > 1 and tokens[0] == SPIECE_UNDERLINE and tokens[1] in self.special:
            tokens = tokens[1:]
        return tokens

    def __call__(self, text):
        ids = [self.sp.piece_to_id(t) for t in self.tokenize(text)]
        eos = self.sp.piece_to_id(self.eos)
        # prepare_for_model: truncation (longest_first) leaves room for the eos
        # that build_inputs_with_special_tokens adds unless already last.
        if len(ids) + 1 > MAX_LENGTH:
            ids = ids[:MAX_LENGTH - 1]
        if not (ids and ids[-1] == eos):
            ids = ids + [eos]
        return ids + [self.sp.piece_to_id(self.pad)] * (MAX_LENGTH - len(ids))


def main():
    train()
    texts = EDGE + captions(200)
    with open(os.path.join(HERE, "spm_golden.jsonl"), "w", encoding="utf-8") as f:
        for name in ["unigram", "flags"]:
            sp = spm.SentencePieceProcessor(model_file=os.path.join(HERE, name + ".model"))
            for t in texts:
                f.write(json.dumps({"model": name, "text": t, "ids": sp.encode(t)}, ensure_ascii=False) + "\n")
    sig = Siglip(os.path.join(HERE, "unigram.model"))
    pad = sig.sp.piece_to_id(sig.pad)
    with open(os.path.join(HERE, "siglip_golden.jsonl"), "w", encoding="utf-8") as f:
        for t in texts:
            ids = sig(t)
            # Trailing padding is left out: the test pads to "length" with "pad".
            n = len(ids)
            while n > 1 and ids[n - 1] == pad and ids[n - 2] == pad:
                n -= 1
            rec = {"text": t, "ids": ids[:n], "length": len(ids), "pad": pad}
            f.write(json.dumps(rec, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
