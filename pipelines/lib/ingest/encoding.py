"""Encoding detection and transcoding of delimited exports: which declared encoding a file
decodes in, whether DuckDB can read it in place (UTF-8, or Latin-1 without C1 bytes), and the
streaming transcoding to UTF-8, line by line when a file mixes encodings (undecodable lines are
quarantined with their line number, never silently replaced).
"""

from __future__ import annotations

import codecs
import re
from pathlib import Path

from pipelines.lib.ingest.identity import CHUNK


def _decodes(path: Path, encoding: str) -> bool:
    dec = codecs.getincrementaldecoder(encoding)(errors="strict")
    try:
        with path.open("rb") as fh:
            for chunk in iter(lambda: fh.read(CHUNK), b""):
                dec.decode(chunk)
            dec.decode(b"", final=True)
    except UnicodeDecodeError:
        return False
    return True


def _transcode(src: Path, encoding: str, dst: Path, errors: str = "strict") -> None:
    dec = codecs.getincrementaldecoder(encoding)(errors=errors)
    with src.open("rb") as fin, dst.open("w", encoding="utf-8", newline="") as fout:
        for chunk in iter(lambda: fin.read(CHUNK), b""):
            fout.write(dec.decode(chunk))
        fout.write(dec.decode(b"", final=True))


def _choose_encoding(path: Path, candidates: list[str]) -> tuple[str, bool]:
    """First candidate that decodes the whole file strictly; else the one that fits most.

    A byte-order mark names the encoding whatever the candidates: UTF-8, or UTF-16 (Excel's
    "Unicode text" save), which would otherwise decode as garbage in a one-byte encoding.
    """
    with path.open("rb") as fh:
        head = fh.read(4)
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8", not _decodes(path, "utf-8-sig")
    if head[:2] in (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE) and head[:4] != codecs.BOM_UTF32_LE:
        return "utf-16", not _decodes(path, "utf-16")
    for enc in candidates:
        if _decodes(path, enc):
            return enc, False
    # None fits the whole file: take the one that fits most of it; the lines with
    # undecodable bytes are quarantined by the caller.
    return min(candidates, key=lambda enc: _count_undecodable(path, enc)), True


def _count_undecodable(path: Path, encoding: str) -> int:
    dec = codecs.getincrementaldecoder(encoding)(errors="replace")
    bad = 0
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(CHUNK), b""):
            bad += dec.decode(chunk).count("\ufffd")
    return bad


# Bytes by UTF-8 role: lead of 2 (a), 3 (b), 4 (c) bytes, continuation (C), other (.).
# A line holding none of aC, bCC, cCCC cannot be UTF-8 beyond ASCII.
_UTF8_ROLES = bytes(
    ord("a") if 0xC2 <= i <= 0xDF
    else ord("b") if 0xE0 <= i <= 0xEF
    else ord("c") if 0xF0 <= i <= 0xF4
    else ord("C") if 0x80 <= i <= 0xBF
    else ord(".")
    for i in range(256)
)  # fmt: skip


def _utf8_like(block: bytes) -> list[int]:
    """Offsets in `block` where a multi-byte UTF-8 sequence may start (a superset)."""
    roles = block.translate(_UTF8_ROLES)
    found = []
    for pattern in (b"aC", b"bCC", b"cCCC"):
        i = roles.find(pattern)
        while i != -1:
            found.append(i)
            i = roles.find(pattern, i + 1)
    return sorted(found)


# DuckDB's latin-1 reader rejects the C1 range that Python's latin-1 maps to U+0080..U+009F.
_C1_BYTES = re.compile(rb"[\x80-\x9f]")


def _ascii_compatible(encoding: str) -> bool:
    try:
        return 'a;,\n\r"'.encode(encoding) == b'a;,\n\r"'
    except LookupError:
        return False


def _has_c1_bytes(path: Path) -> bool:
    with path.open("rb") as fh:
        return any(_C1_BYTES.search(chunk) for chunk in iter(lambda: fh.read(CHUNK), b""))


def _decode_block(block: bytes, candidates: list[str]) -> tuple[str, set[str], int]:
    """Decode whole lines: each line by the first candidate that decodes it strictly.

    Returns the text, the encodings used and the number of lines no candidate decodes
    (written with U+FFFD where the bytes are invalid, so that they are quarantined).
    """
    first = candidates[0]
    try:
        return block.decode(first), ({first} if not block.isascii() else set()), 0
    except UnicodeDecodeError:
        pass
    if len(candidates) > 1 and codecs.lookup(first).name == "utf-8":
        second = candidates[1]
        try:
            whole = block.decode(second)
        except UnicodeDecodeError:
            whole = None
        if whole is not None:
            # Every line decodes as the second candidate; only lines that may be UTF-8
            # need trying first (a fast path for a single-byte export with a UTF-8 line).
            starts = _utf8_like(block)
            if not starts:
                return whole, {second}, 0
            parts: list[str] = []
            used_here = {second}
            cursor = 0
            for pos in starts:
                if pos < cursor:
                    continue
                begin = block.rfind(b"\n", 0, pos) + 1
                end = block.find(b"\n", pos)
                end = len(block) if end == -1 else end + 1
                parts.append(block[cursor:begin].decode(second))
                line = block[begin:end]
                try:
                    parts.append(line.decode(first))
                    used_here.add(first)
                except UnicodeDecodeError:
                    parts.append(line.decode(second))
                cursor = end
            parts.append(block[cursor:].decode(second))
            return "".join(parts), used_here, 0
    out: list[str] = []
    used: set[str] = set()
    bad = 0
    for line in block.splitlines(keepends=True):
        if line.isascii():
            out.append(line.decode("ascii"))
            continue
        for enc in candidates:
            try:
                out.append(line.decode(enc))
            except UnicodeDecodeError:
                continue
            used.add(enc)
            break
        else:  # shown as the candidate that reads most of it, U+FFFD where none does
            text = min(
                (line.decode(enc, errors="replace") for enc in candidates),
                key=lambda t: t.count("\ufffd"),
            )
            out.append(text if "\ufffd" in text else text + "\ufffd")
            bad += 1
    return "".join(out), used, bad


def _transcode_by_line(src: Path, candidates: list[str], dst: Path) -> tuple[list[str], int]:
    """Write `src` as UTF-8, decoding line by line through the candidates (see
    `_decode_block`). Returns the encodings used (in candidate order) and undecodable lines."""
    used: set[str] = set()
    bad = 0
    rest = b""
    with src.open("rb") as fin, dst.open("w", encoding="utf-8", newline="") as fout:
        while True:
            chunk = fin.read(CHUNK)
            data = rest + chunk
            if chunk:
                cut = data.rfind(b"\n") + 1
                if cut == 0:
                    rest = data
                    continue
                block, rest = data[:cut], data[cut:]
            else:
                block, rest = data, b""
            if block:
                text, u, b = _decode_block(block, candidates)
                fout.write(text)
                used |= u
                bad += b
            if not chunk:
                break
    return [e for e in candidates if e in used], bad


def _readable(
    path: Path, candidates: list[str], workdir: Path
) -> tuple[Path, str, str, bool, tuple[str, ...]]:
    """A version of the file that DuckDB's CSV reader can scan.

    Returns (file, its encoding for DuckDB, the export's encoding, whether some lines have
    bytes no declared encoding decodes, the encodings tried). A file the first declared
    encoding decodes whole is read in place when DuckDB can (UTF-8; Latin-1 without C1
    bytes) and transcoded otherwise; any other file is decoded line by line through the
    declared encodings, the first that decodes a line strictly winning for that line.
    """
    out = workdir / (path.name + ".utf8.csv")
    with path.open("rb") as fh:
        head = fh.read(4)
    bom = head.startswith(codecs.BOM_UTF8) or (
        head[:2] in (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE) and head[:4] != codecs.BOM_UTF32_LE
    )
    if bom or not all(_ascii_compatible(e) for e in candidates):
        enc, invalid = _choose_encoding(path, candidates)
        if codecs.lookup(enc).name == "utf-8" and not invalid:
            return path, "utf-8", enc, False, (enc,)
        _transcode(path, enc, out, errors="replace" if invalid else "strict")
        return out, "utf-8", enc, invalid, (enc,)
    first = candidates[0]
    if _decodes(path, first):
        norm = codecs.lookup(first).name
        if norm == "utf-8":
            return path, "utf-8", first, False, tuple(candidates)
        if norm == "iso8859-1" and not _has_c1_bytes(path):
            return path, "latin-1", first, False, tuple(candidates)
        _transcode(path, first, out)
        return out, "utf-8", first, False, tuple(candidates)
    used, bad = _transcode_by_line(path, candidates, out)
    return out, "utf-8", ", ".join(used) or first, bad > 0, tuple(candidates)
