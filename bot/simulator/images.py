"""Image sizing and PNG rendering for the upstream simulator.

Everything here is synchronous and CPU-bound: the simulator calls :func:`render_image` through
``asyncio.to_thread`` so the event loop keeps answering while a (possibly 4K) PNG is encoded.
"""

from __future__ import annotations

import hashlib
import io
import math
import os
import struct
import zlib
from types import MappingProxyType
from typing import Final

from PIL import Image, UnidentifiedImageError

#: Output pixel size at the 1K tier, per aspect ratio (matches the provider). 2K is 2x, 4K is 4x.
SIZES_1K: Final = MappingProxyType(
    {
        "1:1": (1024, 1024),
        "2:3": (848, 1264),
        "3:2": (1264, 848),
        "3:4": (896, 1200),
        "4:3": (1200, 896),
        "4:5": (928, 1152),
        "5:4": (1152, 928),
        "9:16": (768, 1376),
        "16:9": (1376, 768),
        "21:9": (1584, 672),
    }
)
ASPECT_RATIOS: Final = tuple(SIZES_1K)
TIER_SCALE: Final = MappingProxyType({"1K": 1, "2K": 2, "4K": 4})
TIERS: Final = tuple(TIER_SCALE)
DEFAULT_ASPECT_RATIO: Final = "1:1"
DEFAULT_TIER: Final = "1K"

# Noise bytes take one of 16 evenly spread values: deflate then needs ~4-5 bits per byte, which puts a
# 4K 16:9 RGB image at about 30 MB (measured: ~29.6 MB), the size the provider's 4K PNGs can reach.
_NOISE_TABLE: Final = bytes((i & 15) * 17 for i in range(256))
_PNG_SIGNATURE: Final = b"\x89PNG\r\n\x1a\n"


def output_size(aspect_ratio: str, tier: str) -> tuple[int, int]:
    """Pixel ``(width, height)`` of an output image for an aspect ratio and a size tier."""
    width, height = SIZES_1K[aspect_ratio]
    scale = TIER_SCALE[tier]
    return width * scale, height * scale


def nearest_aspect_ratio(width: int, height: int) -> str:
    """The supported aspect ratio closest (in log space) to ``width:height``."""
    if width <= 0 or height <= 0:
        return DEFAULT_ASPECT_RATIO
    target = math.log(width / height)
    return min(ASPECT_RATIOS, key=lambda ar: abs(math.log(SIZES_1K[ar][0] / SIZES_1K[ar][1]) - target))


def reference_aspect_ratio(data: bytes) -> str | None:
    """Nearest supported aspect ratio of an encoded reference image, or None if it cannot be decoded."""
    try:
        with Image.open(io.BytesIO(data)) as img:
            width, height = img.size
    except (UnidentifiedImageError, OSError, ValueError):
        return None
    return nearest_aspect_ratio(width, height)


def _seed_colors(seed: str) -> tuple[tuple[int, int, int], ...]:
    digest = hashlib.sha256(seed.encode("utf-8", "replace")).digest()
    return tuple((digest[i], digest[i + 1], digest[i + 2]) for i in range(0, 12, 3))


def _blend(weights: tuple[float, ...], corners: tuple[tuple[int, int, int], ...]) -> tuple[int, int, int]:
    r = g = b = 0.0
    for weight, (cr, cg, cb) in zip(weights, corners, strict=True):
        r += weight * cr
        g += weight * cg
        b += weight * cb
    return round(r), round(g), round(b)


def _smooth_png(width: int, height: int, seed: str) -> bytes:
    """A cheap four-corner gradient: built at a tiny size, scaled up, compressed well."""
    corners = _seed_colors(seed)
    small_w = 16
    small_h = max(2, round(small_w * height / width))
    pixels: list[tuple[int, int, int]] = []
    for y in range(small_h):
        fy = y / (small_h - 1)
        for x in range(small_w):
            fx = x / (small_w - 1)
            pixels.append(_blend(((1 - fx) * (1 - fy), fx * (1 - fy), (1 - fx) * fy, fx * fy), corners))
    small = Image.new("RGB", (small_w, small_h))
    small.putdata(pixels)
    img = small.resize((width, height), Image.Resampling.BILINEAR)
    out = io.BytesIO()
    img.save(out, "PNG", compress_level=1)
    return out.getvalue()


def _png_chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def _noisy_png(width: int, height: int) -> bytes:
    """Random RGB noise, encoded directly (filter None, zlib level 1).

    Pillow's encoder tries five filters per row, which makes a 4K noise image take ~3 s; writing the
    three chunks by hand produces an equally valid PNG in about a third of that time.
    """
    stride = width * 3
    raw = os.urandom(stride * height).translate(_NOISE_TABLE)
    compressor = zlib.compressobj(1)
    parts: list[bytes] = []
    for row in range(height):
        parts.append(compressor.compress(b"\x00" + raw[row * stride : (row + 1) * stride]))
    parts.append(compressor.flush())
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"".join(
        (_PNG_SIGNATURE, _png_chunk(b"IHDR", ihdr), _png_chunk(b"IDAT", b"".join(parts)), _png_chunk(b"IEND", b""))
    )


def render_png(width: int, height: int, *, seed: str = "", noisy: bool = False) -> bytes:
    """A real PNG of ``width`` x ``height`` pixels (RGB, 8 bit).

    ``noisy=False``: a smooth gradient whose colours depend on ``seed`` (small and fast even at 4K).
    ``noisy=True``: random noise, about 30 MB at 4K 16:9 (to exercise big downloads).
    """
    if noisy:
        return _noisy_png(width, height)
    return _smooth_png(width, height, seed)


def render_image(
    aspect_ratio: str | None,
    tier: str,
    reference: bytes | None,
    *,
    seed: str = "",
    noisy: bool = False,
) -> tuple[bytes, int, int]:
    """Pick the output size like the provider and render it: returns ``(png, width, height)``.

    Without ``aspect_ratio`` the output follows the first reference image (nearest supported ratio),
    else it is 1:1.
    """
    ratio = aspect_ratio
    if ratio is None and reference is not None:
        ratio = reference_aspect_ratio(reference)
    width, height = output_size(ratio or DEFAULT_ASPECT_RATIO, tier)
    return render_png(width, height, seed=seed, noisy=noisy), width, height
