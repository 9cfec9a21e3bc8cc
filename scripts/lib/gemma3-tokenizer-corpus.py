"""llama.cpp's token ids for Gemma 3's vocabulary on a corpus of texts, as a committed fixture
(Tests/Fixtures/gemma3/tokenizer-corpus.json).

    gemma3-tokenizer-corpus.py MODEL.gguf CHITCHAT.json AUSTEN.txt SOURCES_DIR OUT.json

Run by scripts/gemma3-reference. The texts: chitchat turns (MIT), paragraphs of Jane Austen's
novels (public domain), chunks of this repository's Swift sources, and hand-written edge cases
(whitespace runs, scripts, emoji, byte fallback, Gemma's control tokens in text). ShareGPT is left
out: its package declares no licence and its text must not be redistributed. Each text is
tokenized with llama.cpp's `tokenize(add_bos=True, special=True)`; the edge cases also with
special=False (control tokens stay text).
"""
import json
import os
import sys

import llama_cpp

model_path, chitchat_path, austen_path, sources_dir, out_path = sys.argv[1:6]
vocab = llama_cpp.Llama(model_path=model_path, vocab_only=True, verbose=False)

cases = []


def add(source, text, special=True):
    ids = vocab.tokenize(text.encode("utf-8"), add_bos=True, special=special)
    cases.append({"source": source, "text": text, "special": special, "ids": [int(i) for i in ids]})


# Chitchat: every 6th turn of every 4th conversation, in key order, up to 1,200 turns.
with open(chitchat_path, encoding="utf-8") as f:
    chats = json.load(f)
turns = []
for i, key in enumerate(sorted(chats)):
    if i % 4:
        continue
    for j, part in enumerate(chats[key]["messages"]):
        for m in part:
            if j % 6 == 0 and m["text"].strip():
                turns.append(m["text"])
for t in turns[:1200]:
    add("chitchat", t)

# Austen: every 25th paragraph (blank-line separated) of at least 40 characters, up to 500.
with open(austen_path, encoding="utf-8") as f:
    paragraphs = [p.strip("\n") for p in f.read().split("\n\n")]
paragraphs = [p for p in paragraphs if len(p) >= 40]
for p in paragraphs[::25][:500]:
    add("austen", p)

# Code: this repository's Swift sources, in path order, cut into chunks of 12 lines, every 7th
# chunk, up to 250.
chunks = []
for root, _, files in sorted(os.walk(sources_dir)):
    for name in sorted(files):
        if not name.endswith(".swift"):
            continue
        with open(os.path.join(root, name), encoding="utf-8") as f:
            lines = f.read().split("\n")
        for k in range(0, len(lines), 12):
            chunk = "\n".join(lines[k:k + 12])
            if chunk.strip():
                chunks.append(chunk)
for c in chunks[::7][:250]:
    add("code", c)

# Edge cases, each with specials parsed and as plain text.
EDGE = [
    "", " ", "  ", "   ", "\t", "\n", "\n\n", " \n", "\n ", "a", " a", "a ", "  a  b   c    ",
    "Hello world", " Hello world", "Hello  world", "Hello\tworld", "Hello\nworld", "Hello\r\nworld",
    "▁", "▁▁", "▁Hello", "a▁b", "<0x41>", "<0xFF>", "<unk>", "<pad>", "<bos>", "<eos>", "<mask>",
    "<start_of_turn>", "<end_of_turn>", "<start_of_turn>user\nHi<end_of_turn>\n<start_of_turn>model\n",
    "text<start_of_turn>text", " <end_of_turn> ", "<start_of_image>", "<unused0>", "<unused99>",
    "<bos>Hello", "Hello<eos>", "<b>bold</b> and <i>italic</i>", "[multimodal]", "<start_of_turn",
    "Café naïve résumé façade", "Ünïcödé", "ÆØÅ æøå", "Straße", "İstanbul ıi", "ǅ ǈ ǋ",
    "東京タワーは高い。", "北京欢迎你", "서울특별시", "ภาษาไทย", "हिन्दी भाषा", "العربية لغة", "עברית",
    "Ελληνικά", "Русский язык", "Українська", "ქართული", "Հայերեն", "አማርኛ", "ᚠᚢᚦᚨᚱᚲ",
    "😀", "😀😀😀", "👍🏽", "👨‍👩‍👧‍👦", "🇫🇷🇯🇵", "❤️", "☃", "♪♫", "∑∫√∞≈≠", "½ ¾ ⅓", "℃ ℉", "™ © ®",
    "e\u0301", "a\u0308\u0304", "\u200b", "a\u200bb", "\u200d", "\ufeffBOM", "\u00a0nbsp\u00a0",
    "\u2028line\u2029para", "\u3000ideographic space", "tab\tand\u000bvertical\u000cform",
    "\u0000null", "\u001bescape", "\u007fdel", "𠀀𠀁", "𝔘𝔫𝔦𝔠𝔬𝔡𝔢", "𝟘𝟙𝟚", "\U0010fffd",
    "1234567890", "3.14159265358979", "1,000,000", "0x1F 0b1010 0o17", "2024-12-05T08:00:00Z",
    "https://example.com/path?query=1&b=2#frag", "user@example.com", "C:\\Windows\\System32",
    "    def f(x):\n        return x * 2\n", "if (a && b) { return c; }", "#include <stdio.h>",
    "SELECT * FROM t WHERE id = 1;", "<div class=\"x\">y</div>", "$\\frac{a}{b}$", "a_b-c.d/e\\f",
    "!!!???...", "—–-", "“”‘’«»‹›", "…", "((()))[[]]{{}}", "@#$%^&*", "~`|", "\\n\\t",
    "ALL CAPS TEXT", "MiXeD cAsE", "snake_case_name", "camelCaseName", "kebab-case-name",
    "word" * 50, "ab " * 100, " " * 40 + "x", "\n" * 10, "a\n\n\nb", "end.   ",
]
for text in EDGE:
    add("edge", text, special=True)
    add("edge", text, special=False)

with open(out_path, "w", encoding="utf-8") as f:
    meta = {"llama_cpp_python": llama_cpp.__version__,
            "tokenize": "llama.cpp tokenize(add_bos=True, special=<case's special>)",
            "counts": {s: sum(1 for c in cases if c["source"] == s) for s in ["chitchat", "austen", "code", "edge"]}}
    # ASCII escapes: Foundation's JSON reader on Linux drops a raw U+FEFF inside a string.
    json.dump({"meta": meta, "cases": cases}, f, ensure_ascii=True, separators=(",", ":"))
    f.write("\n")
print(f"{len(cases)} cases, {sum(len(c['ids']) for c in cases)} tokens: {meta['counts']}", file=sys.stderr)
