"""Pure image helpers: format sniffing, reference-image validation and fitting under upload limits.

Nothing here knows about Discord or the network. Everything is synchronous; :func:`fit_image` and
:func:`check_reference` decode images and can take a second or more on large inputs, so async callers
should run them through :func:`asyncio.to_thread`.
"""

from __future__ import annotations

import io
import math
import struct
from dataclasses import dataclass
from enum import StrEnum
from pathlib import PurePosixPath
from typing import Final

from PIL import Image, ImageOps

__all__ = [
    "ALLOWED_REFERENCE_KINDS",
    "DEFAULT_MAX_PIXELS",
    "FittedImage",
    "ImageKind",
    "ReferenceCheck",
    "ReferenceProblem",
    "check_declared",
    "check_reference",
    "fit_image",
    "image_size",
    "sniff",
]


class ImageKind(StrEnum):
    PNG = "png"
    JPEG = "jpeg"
    WEBP = "webp"
    HEIF = "heif"
    GIF = "gif"


ALLOWED_REFERENCE_KINDS: Final[frozenset[ImageKind]] = frozenset(
    {ImageKind.PNG, ImageKind.JPEG, ImageKind.WEBP, ImageKind.HEIF}
)

DEFAULT_MAX_PIXELS: Final = 64_000_000
"""Images with more pixels than this are refused before their pixel data is decoded."""

_CONTENT_TYPES: Final[dict[ImageKind, str]] = {
    ImageKind.PNG: "image/png",
    ImageKind.JPEG: "image/jpeg",
    ImageKind.WEBP: "image/webp",
    ImageKind.HEIF: "image/heif",
    ImageKind.GIF: "image/gif",
}
_EXTENSIONS: Final[dict[ImageKind, str]] = {
    ImageKind.PNG: "png",
    ImageKind.JPEG: "jpg",
    ImageKind.WEBP: "webp",
    ImageKind.HEIF: "heif",
    ImageKind.GIF: "gif",
}
# Pillow plugin names used to restrict Image.open to the sniffed format (HEIF has no plain-Pillow plugin).
_PIL_FORMATS: Final[dict[ImageKind, str]] = {
    ImageKind.PNG: "PNG",
    ImageKind.JPEG: "JPEG",
    ImageKind.WEBP: "WEBP",
    ImageKind.GIF: "GIF",
}


# --------------------------------------------------------------------------------------------- sniffing

_PNG_SIGNATURE: Final = b"\x89PNG\r\n\x1a\n"
_JPEG_SIGNATURE: Final = b"\xff\xd8\xff"
_GIF_SIGNATURES: Final = (b"GIF87a", b"GIF89a")
# Brands that identify HEIF/HEIC when they are the major brand.
_HEIF_BRANDS: Final = frozenset({b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"hevm", b"hevs"})
# Generic HEIF-family brands; also used by AVIF, which is told apart by its own brands.
_HEIF_GENERIC_BRANDS: Final = frozenset({b"mif1", b"msf1", b"heif"})
_AVIF_BRANDS: Final = frozenset({b"avif", b"avis"})


def _ftyp_brands(data: bytes) -> tuple[bytes, list[bytes]] | None:
    """Return (major brand, compatible brands) of a well-formed leading ISO-BMFF ``ftyp`` box."""
    if len(data) < 16 or data[4:8] != b"ftyp":
        return None
    (box_size,) = struct.unpack(">I", data[0:4])
    if box_size < 16 or box_size > len(data) or (box_size - 16) % 4 != 0 or box_size > 4096:
        return None
    compatible = [data[i : i + 4] for i in range(16, box_size, 4)]
    return data[8:12], compatible


def _is_heif_ftyp(data: bytes) -> bool:
    brands = _ftyp_brands(data)
    if brands is None:
        return False
    major, compatible = brands
    if major in _HEIF_BRANDS:
        return True
    if major in _HEIF_GENERIC_BRANDS:
        return not _AVIF_BRANDS.intersection(compatible)
    return False


def sniff(data: bytes) -> ImageKind | None:
    """Identify an image format from its magic bytes only (no decoding)."""
    if data.startswith(_PNG_SIGNATURE):
        return ImageKind.PNG
    if data.startswith(_JPEG_SIGNATURE):
        return ImageKind.JPEG
    if len(data) >= 12 and data[0:4] == b"RIFF" and data[8:12] == b"WEBP":
        return ImageKind.WEBP
    if data.startswith(_GIF_SIGNATURES):
        return ImageKind.GIF
    if _is_heif_ftyp(data):
        return ImageKind.HEIF
    return None


def _heif_structure_ok(data: bytes) -> bool:
    """Walk the top-level ISO-BMFF boxes: they must tile the file exactly and include a ``meta`` box.

    This is a structural sanity check only; plain Pillow cannot decode HEIF pixel data.
    """
    if not _is_heif_ftyp(data):
        return False
    offset = 0
    seen_meta = False
    end = len(data)
    while offset < end:
        if end - offset < 8:
            return False
        size, box_type = struct.unpack(">I4s", data[offset : offset + 8])
        header = 8
        if size == 1:  # 64-bit "largesize" follows the type
            if end - offset < 16:
                return False
            (size,) = struct.unpack(">Q", data[offset + 8 : offset + 16])
            header = 16
        elif size == 0:  # box extends to the end of the file
            size = end - offset
        if size < header or offset + size > end:
            return False
        if not all(0x20 <= c < 0x7F for c in box_type):
            return False
        seen_meta = seen_meta or box_type == b"meta"
        offset += size
    return seen_meta


# ------------------------------------------------------------------------------ declared metadata check


class ReferenceProblem(StrEnum):
    NOT_AN_IMAGE = "not_an_image"
    UNSUPPORTED_TYPE = "unsupported_type"
    TOO_LARGE = "too_large"
    CORRUPT = "corrupt"


_ALLOWED_CONTENT_TYPES: Final = frozenset(
    {
        "image/png",
        "image/x-png",
        "image/apng",
        "image/jpeg",
        "image/jpg",
        "image/pjpeg",
        "image/webp",
        "image/heic",
        "image/heif",
        "image/heic-sequence",
        "image/heif-sequence",
    }
)
# Content types that say nothing about the payload; treated like a missing content type.
_GENERIC_CONTENT_TYPES: Final = frozenset({"application/octet-stream", "binary/octet-stream"})
_ALLOWED_EXTENSIONS: Final = frozenset({".png", ".jpg", ".jpeg", ".jpe", ".jfif", ".webp", ".heic", ".heif"})
_UNSUPPORTED_IMAGE_EXTENSIONS: Final = frozenset(
    {".gif", ".bmp", ".tif", ".tiff", ".svg", ".svgz", ".ico", ".avif", ".jxl", ".psd", ".tga", ".dng"}
)
_NON_IMAGE_EXTENSIONS: Final = frozenset(
    {
        # text and documents
        ".txt", ".md", ".rtf", ".csv", ".tsv", ".json", ".xml", ".yaml", ".yml", ".toml", ".ini", ".log",
        ".html", ".htm", ".pdf", ".doc", ".docx", ".odt", ".xls", ".xlsx", ".ods", ".ppt", ".pptx", ".odp",
        ".epub",
        # archives and binaries
        ".zip", ".rar", ".7z", ".tar", ".gz", ".tgz", ".bz2", ".xz", ".zst", ".exe", ".dll", ".msi",
        ".apk", ".dmg", ".iso", ".bin", ".jar",
        # code
        ".py", ".js", ".ts", ".c", ".cpp", ".h", ".java", ".rs", ".go", ".sh", ".bat", ".ps1",
        # audio and video
        ".mp3", ".wav", ".ogg", ".oga", ".flac", ".m4a", ".aac", ".opus",
        ".mp4", ".m4v", ".mov", ".webm", ".mkv", ".avi", ".wmv",
    }
)  # fmt: skip


def check_declared(content_type: str | None, filename: str, size: int, max_bytes: int) -> ReferenceProblem | None:
    """Cheap pre-download check of an attachment's declared metadata.

    Returns the problem, or ``None`` when nothing is known to be wrong (the bytes are still checked by
    :func:`check_reference` after downloading). A missing or generic (``application/octet-stream``)
    content type falls back to the filename extension; an unknown extension yields ``None``.
    """
    if size > max_bytes:
        return ReferenceProblem.TOO_LARGE
    mime = (content_type or "").split(";", 1)[0].strip().lower()
    if mime and mime not in _GENERIC_CONTENT_TYPES:
        if not mime.startswith("image/"):
            return ReferenceProblem.NOT_AN_IMAGE
        if mime not in _ALLOWED_CONTENT_TYPES:
            return ReferenceProblem.UNSUPPORTED_TYPE
        return None
    suffix = PurePosixPath(filename.replace("\\", "/")).suffix.lower()
    if suffix in _ALLOWED_EXTENSIONS:
        return None
    if suffix in _UNSUPPORTED_IMAGE_EXTENSIONS:
        return ReferenceProblem.UNSUPPORTED_TYPE
    if suffix in _NON_IMAGE_EXTENSIONS:
        return ReferenceProblem.NOT_AN_IMAGE
    return None


# ------------------------------------------------------------------------------------- decoding helpers


def _open_decoded(data: bytes, kind: ImageKind, max_pixels: int, *, load: bool = True) -> Image.Image:
    """Verify and fully decode ``data`` as ``kind``; raise ValueError on anything wrong. With
    ``load=False`` the pixels are not decoded: the file's structure is verified (for PNG, every
    chunk's checksum through to the end) and its size read, which is enough to pass it on unchanged.

    Pillow raises a zoo of exception types on malformed input (OSError, SyntaxError, struct.error,
    IndexError, DecompressionBombError, ...), so every ``Exception`` from decoding is mapped to ValueError.
    """
    pil_format = _PIL_FORMATS.get(kind)
    if pil_format is None:
        raise ValueError(f"{kind} images cannot be decoded")
    try:
        with Image.open(io.BytesIO(data), formats=[pil_format]) as probe:
            probe.verify()
        image = Image.open(io.BytesIO(data), formats=[pil_format])
    except Exception as exc:
        raise ValueError(f"cannot decode {kind} image: {exc}") from exc
    try:
        width, height = image.size
        if width <= 0 or height <= 0:
            raise ValueError("image has no pixels")
        if width * height > max_pixels:
            raise ValueError(f"image has too many pixels ({width}x{height} > {max_pixels})")
        if load:
            image.load()
    except Exception as exc:
        image.close()
        if isinstance(exc, ValueError):
            raise
        raise ValueError(f"cannot decode {kind} image: {exc}") from exc
    return image


# ------------------------------------------------------------------------------ reference image check


@dataclass(frozen=True, slots=True)
class ReferenceCheck:
    ok: bool
    kind: ImageKind | None
    problem: ReferenceProblem | None
    width: int | None
    height: int | None


def _problem(problem: ReferenceProblem, kind: ImageKind | None = None) -> ReferenceCheck:
    return ReferenceCheck(ok=False, kind=kind, problem=problem, width=None, height=None)


def check_reference(data: bytes, max_bytes: int, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> ReferenceCheck:
    """Validate downloaded reference-image bytes.

    PNG/JPEG/WebP are fully decoded (verify, then load). HEIF cannot be decoded by plain Pillow, so it is
    accepted when its ISO-BMFF box structure is sound (``ftyp`` with a HEIF brand, a ``meta`` box, no
    truncated boxes); its width/height are reported as ``None``. Images above ``max_pixels`` (and
    Pillow decompression bombs) are reported as CORRUPT.
    """
    if len(data) > max_bytes:
        return _problem(ReferenceProblem.TOO_LARGE, sniff(data))
    kind = sniff(data)
    if kind is None:
        return _problem(ReferenceProblem.NOT_AN_IMAGE)
    if kind not in ALLOWED_REFERENCE_KINDS:
        return _problem(ReferenceProblem.UNSUPPORTED_TYPE, kind)
    if kind is ImageKind.HEIF:
        if not _heif_structure_ok(data):
            return _problem(ReferenceProblem.CORRUPT, kind)
        return ReferenceCheck(ok=True, kind=kind, problem=None, width=None, height=None)
    try:
        with _open_decoded(data, kind, max_pixels) as image:
            width, height = image.size
    except ValueError:
        return _problem(ReferenceProblem.CORRUPT, kind)
    return ReferenceCheck(ok=True, kind=kind, problem=None, width=width, height=height)


def image_size(data: bytes) -> tuple[int, int]:
    """Return ``(width, height)`` read from the image header; ValueError if it is not a readable image.

    Only PNG/JPEG/WebP/GIF are understood (HEIF raises ValueError). The pixel data is not decoded.
    """
    kind = sniff(data)
    pil_format = _PIL_FORMATS.get(kind) if kind is not None else None
    if pil_format is None:
        raise ValueError("not a supported image")
    try:
        with Image.open(io.BytesIO(data), formats=[pil_format]) as image:
            width, height = image.size
    except Exception as exc:
        raise ValueError(f"cannot read image size: {exc}") from exc
    return width, height


# ----------------------------------------------------------------------------------------- fit_image


@dataclass(frozen=True, slots=True)
class FittedImage:
    data: bytes
    filename: str
    content_type: str
    width: int
    height: int
    reencoded: bool
    downscaled: bool
    original_size: int


_WEBP_MAX_DIMENSION: Final = 16383
_HIGH_QUALITY: Final = 90
_REDUCED_QUALITY: Final = 80
_LAST_RESORT_QUALITY: Final = 50
_MIN_LONG_SIDE: Final = 64
_MAX_STEP_FACTOR: Final = 0.85  # each downscale step shrinks each side by at least this factor
_STEP_SAFETY: Final = 0.95  # applied to the sqrt(limit / size) estimate of the next scale
_QUALITY_DROP_GAIN: Final = 0.6  # skip the 90 -> 80 step at full size when it cannot plausibly fit
_QUALITY_DROP_TYPICAL: Final = 0.75  # typical size ratio of quality 80 to quality 90
# WebP is tried only when it is predicted to fit: its expected size is the JPEG size times this ratio,
# which starts optimistic and is replaced by the ratio actually observed for the image being fitted.
_INITIAL_WEBP_TO_JPEG: Final = 0.6
_WEBP_RATIO_MARGIN: Final = 0.95  # stay a little optimistic about WebP after observing it
_WEBP_FAST_METHOD_PIXELS: Final = 8_000_000  # above this, use a faster WebP method


def _prepare(image: Image.Image) -> Image.Image:
    """Apply EXIF orientation and normalise to RGB, or RGBA when the alpha channel is actually used."""
    oriented = ImageOps.exif_transpose(image)
    if oriented.mode == "I" or oriented.mode.startswith("I;16"):
        # 16-bit greyscale (e.g. PNG): a plain convert() would clip everything above 255 to white.
        oriented = oriented.convert("I").point(lambda value: value / 256).convert("L")
    if oriented.has_transparency_data:
        rgba = oriented.convert("RGBA")
        alpha_min, _ = rgba.getchannel("A").getextrema()
        if isinstance(alpha_min, (int, float)) and alpha_min < 255:
            return rgba
        return rgba.convert("RGB")
    return oriented if oriented.mode == "RGB" else oriented.convert("RGB")


def _flatten(image: Image.Image) -> Image.Image:
    if image.mode == "RGB":
        return image
    background = Image.new("RGB", image.size, (255, 255, 255))
    background.paste(image, mask=image.getchannel("A"))
    return background


def _encode(image: Image.Image, kind: ImageKind, quality: int, icc_profile: bytes | None) -> bytes | None:
    """Encode as WebP or JPEG; ``None`` if the encoder gives up (e.g. libwebp partition overflow)."""
    buffer = io.BytesIO()
    extra: dict[str, object] = {"icc_profile": icc_profile} if icc_profile else {}
    try:
        if kind is ImageKind.WEBP:
            method = 2 if image.width * image.height > _WEBP_FAST_METHOD_PIXELS else 4
            image.save(buffer, "WEBP", quality=quality, method=method, **extra)
        else:
            _flatten(image).save(buffer, "JPEG", quality=quality, **extra)
    except (OSError, ValueError):
        return None
    return buffer.getvalue()


@dataclass(slots=True)
class _Fitter:
    """Per-call state for one fit_image run (local object, never shared)."""

    limit: int
    icc_profile: bytes | None
    keep_alpha: bool
    webp_to_jpeg: float = _INITIAL_WEBP_TO_JPEG

    def attempt(self, image: Image.Image, quality: int) -> tuple[bytes | None, ImageKind, int | None]:
        """Encode ``image`` at ``quality``, preferring WebP.

        Returns ``(data, kind, smallest)`` where ``data`` is a fitting encoding or ``None``, and
        ``smallest`` is the smallest encoded size seen (``None`` if every encoder failed).
        """
        webp_possible = max(image.size) <= _WEBP_MAX_DIMENSION
        jpeg: bytes | None = None
        # JPEG is cheap (~20x faster than WebP on big images): use it as a size probe, and as the
        # fallback, unless the alpha channel must be kept and WebP can do it.
        if not (self.keep_alpha and webp_possible):
            jpeg = _encode(image, ImageKind.JPEG, quality, self.icc_profile)
        sizes = [len(jpeg)] if jpeg is not None else []
        if webp_possible and (jpeg is None or len(jpeg) * self.webp_to_jpeg <= self.limit):
            webp = _encode(image, ImageKind.WEBP, quality, self.icc_profile)
            if webp is not None:
                sizes.append(len(webp))
                if jpeg is not None:  # learn how WebP compares with JPEG on this very image
                    self.webp_to_jpeg = len(webp) / len(jpeg) * _WEBP_RATIO_MARGIN
                if len(webp) <= self.limit:
                    return webp, ImageKind.WEBP, len(webp)
            elif jpeg is None:  # WebP failed and alpha was to be kept: fall back to a flattened JPEG
                jpeg = _encode(image, ImageKind.JPEG, quality, self.icc_profile)
                sizes = [len(jpeg)] if jpeg is not None else []
        smallest = min(sizes) if sizes else None
        if jpeg is not None and len(jpeg) <= self.limit:
            return jpeg, ImageKind.JPEG, smallest
        return None, ImageKind.JPEG, smallest


def _fitted(
    data: bytes, kind: ImageKind, base_name: str, size: tuple[int, int], original_size: int, *, scaled: bool
) -> FittedImage:
    return FittedImage(
        data=data,
        filename=f"{base_name}.{_EXTENSIONS[kind]}",
        content_type=_CONTENT_TYPES[kind],
        width=size[0],
        height=size[1],
        reencoded=True,
        downscaled=scaled,
        original_size=original_size,
    )


def fit_image(
    data: bytes, limit: int, *, base_name: str = "image", max_pixels: int = DEFAULT_MAX_PIXELS
) -> FittedImage:
    """Return ``data`` as an image of at most ``limit`` bytes.

    A PNG/JPEG/WebP/GIF that already fits and decodes is returned unchanged. Otherwise it is re-encoded
    (EXIF orientation applied, first frame only): WebP then JPEG at quality 90, then quality 80, then
    downscaled with LANCZOS (each side by at most 0.85 per step, more when the size estimate says so)
    until it fits. Images with a meaningful alpha channel stay WebP (flattened onto white only when WebP
    cannot encode them). CPU-heavy and synchronous: run it in a thread from async code.

    Raises ValueError if ``data`` is not a decodable PNG/JPEG/WebP/GIF (HEIF included), has more than
    ``max_pixels`` pixels, or if even a 64-pixel-wide version cannot fit in ``limit``.
    """
    if limit <= 0:
        raise ValueError("limit must be positive")
    kind = sniff(data)
    if kind is None:
        raise ValueError("not a recognised image")
    # A PNG that fits is passed on as it is: checking every chunk's checksum (verify) is enough,
    # decoding every pixel (about 9 ms for 1024×1024) is not needed. Pillow's verify checks little
    # of the other formats, so they are still decoded in full.
    fits = len(data) <= limit
    decoded = _open_decoded(data, kind, max_pixels, load=not (fits and kind == "png"))
    with decoded:
        if fits:
            return FittedImage(
                data=data,
                filename=f"{base_name}.{_EXTENSIONS[kind]}",
                content_type=_CONTENT_TYPES[kind],
                width=decoded.width,
                height=decoded.height,
                reencoded=False,
                downscaled=False,
                original_size=len(data),
            )
        icc = decoded.info.get("icc_profile")
        source = _prepare(decoded)
    fitter = _Fitter(
        limit=limit,
        # Only an RGB profile still describes the RGB(A) pixels we encode (not e.g. a CMYK or grey one).
        icc_profile=icc if isinstance(icc, bytes) and icc[16:20] == b"RGB " else None,
        keep_alpha=source.mode == "RGBA",
    )
    original_size = len(data)

    encoded, out_kind, smallest = fitter.attempt(source, _HIGH_QUALITY)
    if encoded is not None:
        return _fitted(encoded, out_kind, base_name, source.size, original_size, scaled=False)
    if smallest is None or smallest * _QUALITY_DROP_GAIN <= limit:
        encoded, out_kind, reduced = fitter.attempt(source, _REDUCED_QUALITY)
        if encoded is not None:
            return _fitted(encoded, out_kind, base_name, source.size, original_size, scaled=False)
        smallest = reduced if reduced is not None else smallest
    elif smallest is not None:  # the downscale steps run at quality 80: estimate from its typical size
        smallest = round(smallest * _QUALITY_DROP_TYPICAL)

    width, height = source.size
    scale = 1.0
    while True:
        estimate = math.sqrt(limit / smallest) * _STEP_SAFETY if smallest else _MAX_STEP_FACTOR
        scale *= min(_MAX_STEP_FACTOR, estimate)
        at_floor = max(width, height) * scale <= _MIN_LONG_SIDE
        if at_floor:  # never upscale an image that is already tiny
            scale = min(1.0, _MIN_LONG_SIDE / max(width, height))
        new_size = (max(1, round(width * scale)), max(1, round(height * scale)))
        resized = source.resize(new_size, Image.Resampling.LANCZOS, reducing_gap=3.0)
        encoded, out_kind, step_smallest = fitter.attempt(resized, _REDUCED_QUALITY)
        if encoded is None and at_floor:  # last resort: lower quality, and give up on alpha if need be
            encoded, out_kind, step_smallest = fitter.attempt(resized, _LAST_RESORT_QUALITY)
            if encoded is None and fitter.keep_alpha:
                fitter.keep_alpha = False
                encoded, out_kind, step_smallest = fitter.attempt(_flatten(resized), _LAST_RESORT_QUALITY)
        if encoded is not None:
            scaled = new_size != source.size
            return _fitted(encoded, out_kind, base_name, new_size, original_size, scaled=scaled)
        if at_floor:
            raise ValueError(f"cannot fit the image in {limit} bytes even at {new_size[0]}x{new_size[1]}")
        smallest = step_smallest
