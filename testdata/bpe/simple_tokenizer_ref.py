#!/usr/bin/env python3
"""OpenAI CLIP's simple_tokenizer.py (MIT), minus ftfy, reading the Hugging
Face vocab.json/merges.txt layout. Used only to generate edge_golden.jsonl;
needs the `regex` module and ../shared/clip.

  python3 simple_tokenizer_ref.py ../../../shared/clip > edge_golden.jsonl
"""
import html
import json
import os
import sys

import regex as re


def bytes_to_unicode():
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(2**8):
        if b not in bs:
            bs.append(b)
            cs.append(2**8 + n)
            n += 1
    return dict(zip(bs, [chr(c) for c in cs]))


def get_pairs(word):
    return set(zip(word[:-1], word[1:]))


def basic_clean(text):
    text = html.unescape(html.unescape(text))
    return text.strip()


def whitespace_clean(text):
    text = re.sub(r"\s+", " ", text)
    return text.strip()


class SimpleTokenizer:
    def __init__(self, d):
        self.byte_encoder = bytes_to_unicode()
        self.encoder = json.load(open(os.path.join(d, "vocab.json"), encoding="utf-8"))
        merges = open(os.path.join(d, "merges.txt"), encoding="utf-8").read().strip().split("\n")[1:]
        merges = [tuple(m.split()) for m in merges]
        self.bpe_ranks = dict(zip(merges, range(len(merges))))
        self.cache = {"<|startoftext|>": "<|startoftext|>", "<|endoftext|>": "<|endoftext|>"}
        self.pat = re.compile(r"""<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+""", re.IGNORECASE)

    def bpe(self, token):
        if token in self.cache:
            return self.cache[token]
        word = tuple(token[:-1]) + (token[-1] + "</w>",)
        pairs = get_pairs(word)
        if not pairs:
            return token + "</w>"
        while True:
            bigram = min(pairs, key=lambda pair: self.bpe_ranks.get(pair, float("inf")))
            if bigram not in self.bpe_ranks:
                break
            first, second = bigram
            new_word = []
            i = 0
            while i < len(word):
                try:
                    j = word.index(first, i)
                    new_word.extend(word[i:j])
                    i = j
                except ValueError:
                    new_word.extend(word[i:])
                    break
                if word[i] == first and i < len(word) - 1 and word[i + 1] == second:
                    new_word.append(first + second)
                    i += 2
                else:
                    new_word.append(word[i])
                    i += 1
            word = tuple(new_word)
            if len(word) == 1:
                break
            pairs = get_pairs(word)
        word = " ".join(word)
        self.cache[token] = word
        return word

    def encode(self, text):
        out = []
        text = whitespace_clean(basic_clean(text)).lower()
        for token in re.findall(self.pat, text):
            token = "".join(self.byte_encoder[b] for b in token.encode("utf-8"))
            out.extend(self.encoder[t] for t in self.bpe(token).split(" "))
        return out

    def tokenize(self, text, context_length=77):
        sot, eot = self.encoder["<|startoftext|>"], self.encoder["<|endoftext|>"]
        tokens = [sot] + self.encode(text) + [eot]
        if len(tokens) > context_length:
            tokens = tokens[:context_length]
            tokens[-1] = eot
        return tokens + [0] * (context_length - len(tokens))


# Texts that exercise where Python's semantics differ from Go's standard
# library: entities (with and without semicolons, numeric, invalid), strip()
# versus \s, full lowercasing and final sigma, IGNORECASE quirks of the
# pattern (long s, U+0345), apostrophes inside punctuation runs, special
# tokens written in the text, scripts without spaces, truncation.
TEXTS = [
    "fish &amp chips &ampx &amp;amp; &lt;b&gt; &copy2024 &notit; &notin; &hellip &hellip; &#39;s",
    "&#65;&#x42;&#X43; &#0; &#128; &#x80; &#150; &#xD800; &#1114112; &#99999999999999999999; &#1; &#x7f; &#xFFFE; &#13;",
    "&#; &#x; &; & a &a &ab; &eacutex; &Eacute;cole &AMP; &AMP &lt3 &lt;3",
    "\x1c leading info separators \x1f",
    "mid \x1c separator\u00a0nbsp\u2003em\u3000ideographic\u0085nel\u2028ls",
    "ΟΔΟΣ ΟΔΟΣ. Σ ΑΣ' ΑΣΑ ΣΑ aΣ",
    "İstanbul DİYARBAKIR ǅemal ǈ K Å ẞ",
    "it'ſ <|ſtartoftext|> a<|endoftext|>b <|startoftext|> <|ENDOFTEXT|>",
    "aͅb ͅ x ͅ!",
    "what?!'s up... 'sam 'll'd 'rex 'vex '' ' s",
    "日本語のテキスト、句読点。한국어 텍스트 ภาษาไทย العربية עברית",
    "१२३ ٤٥٦ ½ ⅷ ² x²",
    "mixed\ttabs\nnewlines\r\ncarriage \v vt \f ff",
    "tab\x0bvt\x0cff end   ",
    "emoji 👩‍👩‍👧 🏳️‍🌈 flags 🇫🇷",
    "control\x00null\x07bell",
    " ".join(["word"] * 80),
    "supercalifragilisticexpialidocious pneumonoultramicroscopicsilicovolcanoconiosis",
    "\u00e9\u0301 e\u0301 combining",
    "",
    "   ",
]


def main():
    tok = SimpleTokenizer(sys.argv[1])
    for t in TEXTS:
        print(json.dumps({"text": t, "ids": tok.tokenize(t)}, ensure_ascii=True))


if __name__ == "__main__":
    main()
