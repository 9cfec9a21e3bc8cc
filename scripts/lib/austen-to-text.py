#!/usr/bin/env python3
"""Converts the novels of the janeaustenr R package to a plain-text corpus, without R.

Usage: austen-to-text.py DATA_DIR OUT

DATA_DIR is the package's data/ directory (Rdata.rdx and Rdata.rdb, R's lazy-load database).
The .rdx is a gzip file (as saveRDS writes) of one serialized R list: $variables maps each
object's name to an integer pair (offset, length) in the .rdb, and $compressed says how each blob
is compressed. A blob is a 4-byte big-endian uncompressed length followed by a zlib stream of the
object's serialization. Serializations are in R's XDR format (header "X\\n", version 2 or 3).
Each novel is a character vector of lines.

OUT gets UTF-8 text with one paragraph per block (a run of non-blank lines joined by single
spaces, each run of whitespace made one space), blocks separated by a blank line: the novels in
publication order, each preceded by its title. The same package gives the same bytes. Anything
outside the small part of the format this reads is an error.
"""
import gzip
import struct
import sys
import zlib

# Object name in the package, title; in publication order.
BOOKS = [
    ("sensesensibility", "Sense and Sensibility"),
    ("prideprejudice", "Pride and Prejudice"),
    ("mansfieldpark", "Mansfield Park"),
    ("emma", "Emma"),
    ("northangerabbey", "Northanger Abbey"),
    ("persuasion", "Persuasion"),
]

# SEXP types (R Internals, "Serialization Formats").
NILSXP, SYMSXP, LISTSXP, CHARSXP, LGLSXP, INTSXP, REALSXP, STRSXP, VECSXP = 0, 1, 2, 9, 10, 13, 14, 16, 19
REFSXP, NILVALUE_SXP = 255, 254
NA_INTEGER = -(1 << 31)
# CHARSXP encoding bits (in the flags' "levels" field).
BYTES_MASK, LATIN1_MASK, UTF8_MASK, ASCII_MASK = 1 << 1, 1 << 2, 1 << 3, 1 << 6


class FormatError(Exception):
    pass


class Reader:
    """Reads one R XDR serialization: the subset of types a character vector or a named list of
    integer and logical vectors needs."""

    def __init__(self, data, what):
        self.data, self.pos, self.what, self.refs = data, 0, what, []
        if self.take(2) != b"X\n":
            self.fail("not an XDR serialization (expected the header X\\n)")
        version = self.int()
        self.int()  # the writing R's version
        self.int()  # the oldest R that can read it
        if version == 3:
            self.native = self.take(self.int()).decode("ascii")
        elif version == 2:
            self.native = None
        else:
            self.fail(f"serialization version {version}, expected 2 or 3")

    def fail(self, message):
        raise FormatError(f"{self.what}: {message} (at byte {self.pos})")

    def take(self, n):
        if n < 0 or self.pos + n > len(self.data):
            self.fail(f"truncated: wanted {n} bytes")
        chunk = self.data[self.pos:self.pos + n]
        self.pos += n
        return chunk

    def int(self):
        return struct.unpack(">i", self.take(4))[0]

    def length(self):
        n = self.int()
        if n == -1:  # long vector: two more words
            hi, lo = struct.unpack(">II", self.take(8))
            n = (hi << 32) | lo
        elif n < 0:
            self.fail(f"negative length {n}")
        return n

    def item(self):
        flags = self.int()
        kind, levels = flags & 0xFF, flags >> 12
        has_attr, has_tag = bool(flags & (1 << 9)), bool(flags & (1 << 10))
        if kind == NILVALUE_SXP:
            return None
        if kind == REFSXP:
            index = flags >> 8 or self.int()
            if not 1 <= index <= len(self.refs):
                self.fail(f"reference {index} to an unknown object")
            return self.refs[index - 1]
        if kind == SYMSXP:
            name = self.item()
            if not isinstance(name, str):
                self.fail("symbol without a name")
            symbol = Symbol(name)
            self.refs.append(symbol)
            return symbol
        if kind == LISTSXP:  # pairlist: returned as [(tag, value)]
            pairs = []
            while True:
                attr = self.item() if has_attr else None
                if attr is not None:
                    self.fail("pairlist cell with attributes")
                tag = self.item() if has_tag else None
                pairs.append((tag.name if isinstance(tag, Symbol) else None, self.item()))
                flags = self.int()
                kind, has_attr, has_tag = flags & 0xFF, bool(flags & (1 << 9)), bool(flags & (1 << 10))
                if kind == NILVALUE_SXP:
                    return pairs
                if kind != LISTSXP:
                    self.fail(f"pairlist ends in type {kind}")
        if kind == CHARSXP:
            n = self.int()
            if n == -1:
                return NA
            raw = self.take(n)
            if levels & BYTES_MASK:
                self.fail("string marked as bytes")
            if levels & LATIN1_MASK:
                return raw.decode("latin-1")
            if levels & (UTF8_MASK | ASCII_MASK) or self.native in ("UTF-8", "utf8"):
                try:
                    return raw.decode("utf-8")
                except UnicodeDecodeError:
                    self.fail("string marked UTF-8 is not UTF-8")
            try:
                return raw.decode("ascii")
            except UnicodeDecodeError:
                self.fail(f"non-ASCII string in the native encoding {self.native!r}")
        if kind == STRSXP:
            value = [self.item() for _ in range(self.length())]
            if not all(isinstance(s, str) or s is NA for s in value):
                self.fail("character vector holds something other than strings")
        elif kind == VECSXP:
            value = [self.item() for _ in range(self.length())]
        elif kind in (INTSXP, LGLSXP):
            n = self.length()
            value = [None if v == NA_INTEGER else v for v in struct.unpack(f">{n}i", self.take(4 * n))]
        elif kind == REALSXP:
            n = self.length()
            value = list(struct.unpack(f">{n}d", self.take(8 * n)))
        else:
            self.fail(f"unsupported object type {kind}")
        attributes = dict(self.item()) if has_attr else {}
        return Vector(kind, value, attributes)

    def read(self):
        value = self.item()
        if self.pos != len(self.data):
            self.fail(f"{len(self.data) - self.pos} bytes after the object")
        return value


class Symbol:
    def __init__(self, name):
        self.name = name


class Vector:
    def __init__(self, kind, value, attributes):
        self.kind, self.value, self.attributes = kind, value, attributes


NA = object()  # R's NA_character_


def unpack(blob, what):
    """A lazy-load blob: 4-byte big-endian uncompressed length, then a zlib stream."""
    if len(blob) < 4:
        raise FormatError(f"{what}: blob of {len(blob)} bytes")
    size = struct.unpack(">I", blob[:4])[0]
    try:
        data = zlib.decompress(blob[4:])
    except zlib.error as e:
        raise FormatError(f"{what}: not a zlib stream ({e})")
    if len(data) != size:
        raise FormatError(f"{what}: {len(data)} bytes uncompressed, the header says {size}")
    return data


def named(vector, what):
    if not isinstance(vector, Vector) or vector.kind != VECSXP:
        raise FormatError(f"{what}: expected a list")
    names = vector.attributes.get("names")
    if not isinstance(names, Vector) or names.kind != STRSXP or len(names.value) != len(vector.value):
        raise FormatError(f"{what}: expected a list with names")
    return dict(zip(names.value, vector.value))


def main():
    if len(sys.argv) != 3:
        raise SystemExit("usage: austen-to-text.py DATA_DIR OUT")
    data_dir, out = sys.argv[1:]
    try:
        with gzip.open(f"{data_dir}/Rdata.rdx", "rb") as f:
            rdx = f.read()
    except (gzip.BadGzipFile, EOFError, zlib.error) as e:
        raise FormatError(f"Rdata.rdx: not a gzip file ({e})")
    index = named(Reader(rdx, "Rdata.rdx").read(), "Rdata.rdx")
    compressed = index.get("compressed")
    if not (isinstance(compressed, Vector) and compressed.kind == LGLSXP and compressed.value == [1]):
        raise FormatError("Rdata.rdx: only zlib-compressed databases (compressed = TRUE) are read")
    variables = named(index.get("variables"), "Rdata.rdx $variables")
    with open(f"{data_dir}/Rdata.rdb", "rb") as f:
        rdb = f.read()
    blocks = []
    for name, title in BOOKS:
        entry = variables.get(name)
        if not (isinstance(entry, Vector) and entry.kind == INTSXP and len(entry.value) == 2):
            raise FormatError(f"Rdata.rdx: no (offset, length) entry for {name}")
        offset, size = entry.value
        if offset is None or size is None or offset < 0 or size < 0 or offset + size > len(rdb):
            raise FormatError(f"Rdata.rdx: entry for {name} lies outside Rdata.rdb")
        book = Reader(unpack(rdb[offset:offset + size], name), name).read()
        if not (isinstance(book, Vector) and book.kind == STRSXP):
            raise FormatError(f"{name}: expected a character vector")
        blocks.append(title)
        paragraph = []
        for line in book.value + [""]:
            line = "" if line is NA else " ".join(line.split())
            if line:
                paragraph.append(line)
            elif paragraph:
                blocks.append(" ".join(paragraph))
                paragraph = []
    with open(out, "w", encoding="utf-8", newline="\n") as f:
        f.write("\n\n".join(blocks) + "\n")


if __name__ == "__main__":
    try:
        main()
    except (FormatError, OSError) as e:
        raise SystemExit(f"austen-to-text: {e}")
