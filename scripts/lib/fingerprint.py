"""probity-item-v1 fingerprints of labelled exchanges (Sources/ProbityFeatures/ItemFingerprint.swift).

The SHA-256 (hex) of the turns, each `role U+001F text`, joined by U+001E; a turn's text has its
runs of Unicode White_Space collapsed to one space and is trimmed. The judged reply is the last
turn with role `assistant`; a raw-text prompt is one turn with role `text`.
"""
import hashlib
import re

SCHEME = "probity-item-v1"

# Unicode's White_Space property (what Swift's Unicode.Scalar.Properties.isWhitespace reads).
_WHITE = re.compile("[\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+")


def normalized(text):
    return " ".join(part for part in _WHITE.split(text) if part)


def of_turns(turns):
    joined = "\x1e".join(role + "\x1f" + normalized(text) for role, text in turns)
    return hashlib.sha256(joined.encode("utf-8")).hexdigest()


def of_item(messages, response=None):
    """messages: [{"role", "content"}]; response: the judged assistant reply, or None."""
    turns = [(m["role"], m["content"]) for m in messages]
    if response is not None:
        turns.append(("assistant", response))
    return of_turns(turns)


def of_text(text):
    return of_turns([("text", text)])
