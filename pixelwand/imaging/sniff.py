"""Magic-byte checks: does a file's head match the mime type the client declared?"""

from __future__ import annotations

IMAGE_MIME_TYPES = frozenset(
    {"image/jpeg", "image/png", "image/webp", "image/gif", "image/avif", "image/tiff"}
)
VIDEO_MIME_TYPES = frozenset({"video/mp4", "video/quicktime", "video/webm"})
ACCEPTED_MIME_TYPES = IMAGE_MIME_TYPES | VIDEO_MIME_TYPES

# How many leading bytes `matches` needs to decide.
SNIFF_BYTES = 64

_QUICKTIME_ATOMS = {b"moov", b"mdat", b"wide", b"free", b"skip", b"pnot"}
_IMAGE_BRANDS = {b"avif", b"avis", b"heic", b"heix", b"heim", b"heis", b"mif1", b"msf1"}


def _ftyp_brands(head: bytes) -> set[bytes]:
    if len(head) < 12 or head[4:8] != b"ftyp":
        return set()
    box_len = int.from_bytes(head[0:4], "big")
    end = min(len(head), box_len if box_len >= 16 else 16)
    brands = {head[8:12]}
    brands.update(head[i : i + 4] for i in range(16, end - 3, 4))
    return brands


def matches(mime_type: str, head: bytes) -> bool:
    """True when `head` (the file's first SNIFF_BYTES bytes) is a `mime_type` file."""
    if mime_type == "image/jpeg":
        return head[:3] == b"\xff\xd8\xff"
    if mime_type == "image/png":
        return head[:8] == b"\x89PNG\r\n\x1a\n"
    if mime_type == "image/gif":
        return head[:6] in (b"GIF87a", b"GIF89a")
    if mime_type == "image/webp":
        return head[:4] == b"RIFF" and head[8:12] == b"WEBP"
    if mime_type == "image/tiff":
        return head[:4] in (b"II*\x00", b"MM\x00*")
    if mime_type == "image/avif":
        brands = _ftyp_brands(head)
        return bool(brands & {b"avif", b"avis"})
    if mime_type == "video/webm":
        return head[:4] == b"\x1a\x45\xdf\xa3"
    if mime_type == "video/mp4":
        brands = _ftyp_brands(head)
        return bool(brands) and head[8:12] not in _IMAGE_BRANDS and head[8:12] != b"qt  "
    if mime_type == "video/quicktime":
        brands = _ftyp_brands(head)
        if brands:
            return head[8:12] == b"qt  " or b"qt  " in brands
        return head[4:8] in _QUICKTIME_ATOMS
    return False
