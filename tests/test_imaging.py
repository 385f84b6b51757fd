from __future__ import annotations

import io
import os
import struct
from collections.abc import Callable
from typing import Any

import pytest
from PIL import Image, ImageCms, ImageStat

from bot.imaging import (
    ALLOWED_REFERENCE_KINDS,
    FittedImage,
    ImageKind,
    ReferenceCheck,
    ReferenceProblem,
    check_declared,
    check_reference,
    fit_image,
    image_size,
    sniff,
)

MIB = 1024 * 1024
BIG_W, BIG_H = 5504, 3072


def encode(image: Image.Image, fmt: str, **params: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **params)
    return buffer.getvalue()


def noise_image(width: int, height: int, mode: str = "RGB") -> Image.Image:
    return Image.frombytes(mode, (width, height), os.urandom(width * height * len(mode)))


def gradient_image(width: int, height: int) -> Image.Image:
    gradient = Image.linear_gradient("L").resize((width, height))
    return Image.merge("RGB", (gradient, gradient.transpose(Image.Transpose.FLIP_LEFT_RIGHT), gradient))


def box(box_type: bytes, payload: bytes) -> bytes:
    return struct.pack(">I4s", 8 + len(payload), box_type) + payload


def ftyp(major: bytes, *compatible: bytes) -> bytes:
    return box(b"ftyp", major + b"\x00\x00\x00\x00" + b"".join(compatible))


def heif_file(major: bytes = b"heic", *compatible: bytes) -> bytes:
    meta = box(b"meta", b"\x00\x00\x00\x00" + box(b"hdlr", b"\x00" * 8 + b"pict" + b"\x00" * 13))
    return ftyp(major, b"mif1", b"heic", *compatible) + meta + box(b"mdat", os.urandom(64))


@pytest.fixture(scope="module")
def big_noisy_png() -> bytes:
    """A 5504x3072 PNG of ~30 MB: one channel of full noise, one of 4-bit noise, one gradient."""
    red = noise_image(BIG_W, BIG_H, "L")
    green = noise_image(BIG_W, BIG_H, "L").point(lambda v: 112 + (v >> 4))
    blue = Image.linear_gradient("L").resize((BIG_W, BIG_H))
    data = encode(Image.merge("RGB", (red, green, blue)), "PNG", compress_level=1)
    assert len(data) > 10 * MIB
    return data


# ----------------------------------------------------------------------------------------------- sniff


@pytest.mark.parametrize(
    ("fmt", "kind"),
    [("PNG", ImageKind.PNG), ("JPEG", ImageKind.JPEG), ("WEBP", ImageKind.WEBP), ("GIF", ImageKind.GIF)],
)
def test_sniff_pillow_formats(fmt: str, kind: ImageKind) -> None:
    assert sniff(encode(gradient_image(32, 24), fmt)) is kind


@pytest.mark.parametrize("major", [b"heic", b"heix", b"hevc", b"hevx", b"mif1", b"msf1", b"heif"])
def test_sniff_heif_brands(major: bytes) -> None:
    assert sniff(ftyp(major, b"mif1")) is ImageKind.HEIF
    assert sniff(heif_file(major)) is ImageKind.HEIF


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"hello world, definitely not an image",
        b"\x89PNG\r\n",  # truncated signature
        b"RIFF\x00\x00\x00\x00WAVEfmt ",
        ftyp(b"avif", b"mif1", b"miaf"),  # AVIF is not HEIF
        ftyp(b"mif1", b"avif"),
        ftyp(b"isom", b"mp41"),  # MP4 video
        b"\x00\x00\x00\x0cftypheic",  # ftyp box shorter than its mandatory fields
        b"\x00\x00\x01\x00ftypheic\x00\x00\x00\x00",  # box size past the end of the data
        b"%PDF-1.7\n",
    ],
)
def test_sniff_rejects_non_images(data: bytes) -> None:
    assert sniff(data) is None


def test_allowed_reference_kinds() -> None:
    expected = {ImageKind.PNG, ImageKind.JPEG, ImageKind.WEBP, ImageKind.HEIF}
    assert frozenset(expected) == ALLOWED_REFERENCE_KINDS
    assert ImageKind.GIF not in ALLOWED_REFERENCE_KINDS


# ------------------------------------------------------------------------------------------ check_declared

CAP = 7_000_000


@pytest.mark.parametrize(
    ("content_type", "filename", "size", "expected"),
    [
        ("image/png", "a.png", 1000, None),
        ("image/jpeg", "a.jpg", 1000, None),
        ("image/webp", "a.webp", 1000, None),
        ("image/heic", "a.heic", 1000, None),
        ("image/heif", "a.heif", 1000, None),
        ("IMAGE/PNG; charset=binary", "a.png", 1000, None),
        ("image/png", "a.png", CAP, None),
        ("image/png", "a.png", CAP + 1, ReferenceProblem.TOO_LARGE),
        ("text/plain", "a.txt", CAP + 1, ReferenceProblem.TOO_LARGE),  # size is checked first
        ("text/plain", "notes.txt", 10, ReferenceProblem.NOT_AN_IMAGE),
        ("text/plain", "sneaky.png", 10, ReferenceProblem.NOT_AN_IMAGE),
        ("application/pdf", "doc.pdf", 10, ReferenceProblem.NOT_AN_IMAGE),
        ("video/mp4", "clip.mp4", 10, ReferenceProblem.NOT_AN_IMAGE),
        ("image/gif", "anim.gif", 10, ReferenceProblem.UNSUPPORTED_TYPE),
        ("image/svg+xml", "a.svg", 10, ReferenceProblem.UNSUPPORTED_TYPE),
        ("image/avif", "a.avif", 10, ReferenceProblem.UNSUPPORTED_TYPE),
        (None, "notes.txt", 10, ReferenceProblem.NOT_AN_IMAGE),
        (None, "doc.PDF", 10, ReferenceProblem.NOT_AN_IMAGE),
        (None, "archive.zip", 10, ReferenceProblem.NOT_AN_IMAGE),
        (None, "photo.png", 10, None),
        (None, "photo.JPEG", 10, None),
        (None, "photo.heic", 10, None),
        (None, "anim.gif", 10, ReferenceProblem.UNSUPPORTED_TYPE),
        (None, "mystery.xyz", 10, None),
        (None, "no_extension", 10, None),
        ("", "notes.txt", 10, ReferenceProblem.NOT_AN_IMAGE),
        ("application/octet-stream", "photo.png", 10, None),
        ("application/octet-stream", "notes.txt", 10, ReferenceProblem.NOT_AN_IMAGE),
        (None, "photo.png", CAP + 1, ReferenceProblem.TOO_LARGE),
    ],
)
def test_check_declared(content_type: str | None, filename: str, size: int, expected: ReferenceProblem | None) -> None:
    assert check_declared(content_type, filename, size, CAP) is expected


# ----------------------------------------------------------------------------------------- check_reference


@pytest.mark.parametrize(("fmt", "kind"), [("PNG", ImageKind.PNG), ("JPEG", ImageKind.JPEG), ("WEBP", ImageKind.WEBP)])
def test_check_reference_accepts_real_images(fmt: str, kind: ImageKind) -> None:
    data = encode(gradient_image(120, 80), fmt)
    assert check_reference(data, CAP) == ReferenceCheck(ok=True, kind=kind, problem=None, width=120, height=80)


def test_check_reference_accepts_structurally_valid_heif() -> None:
    result = check_reference(heif_file(), CAP)
    assert result == ReferenceCheck(ok=True, kind=ImageKind.HEIF, problem=None, width=None, height=None)


@pytest.mark.parametrize(
    "data",
    [
        heif_file()[:-10],  # mdat box runs past the end of the file
        ftyp(b"heic", b"mif1"),  # no meta box at all
        heif_file() + b"\x00\x00\x00",  # trailing bytes that are not a box
    ],
)
def test_check_reference_rejects_broken_heif(data: bytes) -> None:
    result = check_reference(data, CAP)
    assert (result.ok, result.kind, result.problem) == (False, ImageKind.HEIF, ReferenceProblem.CORRUPT)


def test_check_reference_text_is_not_an_image() -> None:
    result = check_reference(b"just some text\n" * 10, CAP)
    assert result == ReferenceCheck(ok=False, kind=None, problem=ReferenceProblem.NOT_AN_IMAGE, width=None, height=None)


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP"])
def test_check_reference_truncated_is_corrupt(fmt: str) -> None:
    data = encode(noise_image(200, 150), fmt)
    result = check_reference(data[: len(data) // 2], CAP)
    assert not result.ok
    assert result.problem is ReferenceProblem.CORRUPT


def test_check_reference_corrupted_png_crc_is_corrupt() -> None:
    data = bytearray(encode(noise_image(64, 64), "PNG"))
    data[60] ^= 0xFF  # inside the IDAT payload: its CRC no longer matches
    assert check_reference(bytes(data), CAP).problem is ReferenceProblem.CORRUPT


def test_check_reference_gif_is_unsupported() -> None:
    result = check_reference(encode(gradient_image(20, 20), "GIF"), CAP)
    assert (result.ok, result.kind, result.problem) == (False, ImageKind.GIF, ReferenceProblem.UNSUPPORTED_TYPE)


def test_check_reference_over_cap_is_too_large() -> None:
    data = encode(noise_image(100, 100), "PNG")
    result = check_reference(data, len(data) - 1)
    assert (result.ok, result.problem) == (False, ReferenceProblem.TOO_LARGE)
    assert check_reference(data, len(data)).ok


def test_check_reference_too_many_pixels_is_corrupt() -> None:
    data = encode(Image.new("RGB", (4000, 4000)), "PNG")  # tiny file, 16 MP
    assert check_reference(data, CAP, max_pixels=1_000_000).problem is ReferenceProblem.CORRUPT
    assert check_reference(data, CAP).ok


# ---------------------------------------------------------------------------------------------- image_size


def test_image_size() -> None:
    assert image_size(encode(gradient_image(33, 17), "WEBP")) == (33, 17)
    with pytest.raises(ValueError):
        image_size(b"not an image")
    with pytest.raises(ValueError):
        image_size(heif_file())


# ----------------------------------------------------------------------------------------------- fit_image


def decoded(fitted: FittedImage) -> Image.Image:
    image = Image.open(io.BytesIO(fitted.data))
    image.load()
    assert image.size == (fitted.width, fitted.height)
    return image


@pytest.mark.parametrize(
    ("fmt", "filename", "content_type"),
    [
        ("PNG", "image.png", "image/png"),
        ("JPEG", "image.jpg", "image/jpeg"),
        ("WEBP", "image.webp", "image/webp"),
        ("GIF", "image.gif", "image/gif"),
    ],
)
def test_fit_image_small_image_is_unchanged(fmt: str, filename: str, content_type: str) -> None:
    data = encode(gradient_image(64, 48), fmt)
    fitted = fit_image(data, len(data))
    assert fitted == FittedImage(
        data=data,
        filename=filename,
        content_type=content_type,
        width=64,
        height=48,
        reencoded=False,
        downscaled=False,
        original_size=len(data),
    )


def test_fit_image_uses_base_name() -> None:
    data = encode(noise_image(300, 200), "PNG")
    assert fit_image(data, 10 * MIB, base_name="result_1").filename == "result_1.png"
    assert fit_image(data, len(data) // 2, base_name="result_1").filename.startswith("result_1.")


def test_fit_image_big_noisy_png_fits_under_10_mib(big_noisy_png: bytes) -> None:
    limit = 10 * MIB
    fitted = fit_image(big_noisy_png, limit)
    assert len(fitted.data) < limit
    assert fitted.reencoded
    assert fitted.original_size == len(big_noisy_png)
    assert sniff(fitted.data) in {ImageKind.WEBP, ImageKind.JPEG}
    assert fitted.filename in {"image.webp", "image.jpg"}
    width, height = decoded(fitted).size
    assert width / height == pytest.approx(BIG_W / BIG_H, rel=0.01)


def test_fit_image_tiny_limit_downscales() -> None:
    data = encode(noise_image(800, 600), "PNG")
    limit = 20_000
    fitted = fit_image(data, limit)
    assert len(fitted.data) <= limit
    assert fitted.reencoded
    assert fitted.downscaled
    assert fitted.width < 800
    assert fitted.height < 600
    assert fitted.width / fitted.height == pytest.approx(800 / 600, rel=0.01)
    decoded(fitted)


def test_fit_image_reencodes_when_too_big_without_downscaling() -> None:
    data = encode(gradient_image(1200, 800), "PNG", compress_level=0)
    fitted = fit_image(data, len(data) // 4)
    assert (fitted.reencoded, fitted.downscaled) == (True, False)
    assert (fitted.width, fitted.height) == (1200, 800)
    assert fitted.filename == "image.webp"
    assert fitted.content_type == "image/webp"
    assert decoded(fitted).format == "WEBP"


def test_fit_image_keeps_meaningful_alpha() -> None:
    image = noise_image(400, 300, "RGBA")
    data = encode(image, "PNG")
    fitted = fit_image(data, len(data) // 3)
    assert len(fitted.data) <= len(data) // 3
    assert fitted.content_type == "image/webp"
    assert decoded(fitted).mode == "RGBA"


def test_fit_image_applies_exif_orientation() -> None:
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise when displayed
    data = encode(noise_image(300, 200), "JPEG", quality=100, exif=exif.tobytes())
    fitted = fit_image(data, len(data) // 2)
    assert (fitted.width, fitted.height) == (200, 300)


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"plain text, not an image",
        heif_file(),  # cannot be decoded by plain Pillow
        encode(noise_image(64, 64), "PNG")[:200],  # truncated
    ],
)
def test_fit_image_rejects_non_images(data: bytes) -> None:
    with pytest.raises(ValueError):
        fit_image(data, 10 * MIB)


def test_fit_image_rejects_too_many_pixels() -> None:
    data = encode(Image.new("RGB", (3000, 3000)), "PNG")
    with pytest.raises(ValueError):
        fit_image(data, 10 * MIB, max_pixels=1_000_000)


@pytest.mark.parametrize("limit", [0, 50])
def test_fit_image_impossible_limit_raises(limit: int) -> None:
    with pytest.raises(ValueError):
        fit_image(encode(noise_image(200, 200), "PNG"), limit)


def test_fit_image_16_bit_greyscale_is_scaled_not_clipped() -> None:
    gradient = Image.linear_gradient("L").resize((256, 256)).convert("I").point(lambda v: v * 257)
    data = encode(gradient.convert("I;16"), "PNG", compress_level=0)
    fitted = fit_image(data, len(data) // 2)
    mean = ImageStat.Stat(decoded(fitted).convert("L")).mean[0]
    assert 110 < mean < 145  # clipping would make it nearly all white


def test_fit_image_wider_than_webp_allows_falls_back_to_jpeg() -> None:
    data = encode(noise_image(17_000, 40), "PNG")
    fitted = fit_image(data, len(data) // 2)
    assert len(fitted.data) <= len(data) // 2
    assert fitted.filename == "image.jpg"
    assert decoded(fitted).size == (17_000, 40)


def test_fit_image_gives_up_alpha_as_a_last_resort() -> None:
    data = encode(noise_image(300, 300, "LA"), "PNG")  # random alpha barely compresses
    fitted = fit_image(data, 3000)
    assert len(fitted.data) <= 3000
    assert fitted.downscaled


def test_fit_image_keeps_rgb_icc_profile_only() -> None:
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    data = encode(noise_image(300, 200), "PNG", icc_profile=srgb)
    assert decoded(fit_image(data, len(data) // 2)).info.get("icc_profile") == srgb
    cmyk = encode(noise_image(300, 200, "CMYK"), "JPEG", quality=100, icc_profile=srgb[:16] + b"CMYK" + srgb[20:])
    assert decoded(fit_image(cmyk, len(cmyk) // 2)).info.get("icc_profile") is None


def _png(size: int = 256) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (size, size), (10, 120, 200)).save(out, "PNG")
    return out.getvalue()


@pytest.mark.parametrize(
    "damage",
    [
        lambda d: d[: len(d) // 2],  # cut short
        lambda d: d[:-12],  # no end chunk
        lambda d: d[:60] + bytes(20) + d[80:],  # pixel data overwritten (its checksum no longer matches)
    ],
)
def test_a_damaged_png_that_fits_is_refused_without_decoding(damage: Callable[[bytes], bytes]) -> None:
    with pytest.raises(ValueError):
        fit_image(damage(_png()), 10 * 1024 * 1024)


def test_a_png_that_fits_is_passed_on_without_decoding_its_pixels(monkeypatch: pytest.MonkeyPatch) -> None:
    from PIL import ImageFile

    loads: list[object] = []
    original = ImageFile.ImageFile.load

    def counting(self: ImageFile.ImageFile) -> Any:
        loads.append(self)
        return original(self)

    monkeypatch.setattr(ImageFile.ImageFile, "load", counting)
    data = _png()
    fitted = fit_image(data, 10 * 1024 * 1024)
    assert fitted.data == data and (fitted.width, fitted.height) == (256, 256) and not fitted.reencoded
    assert loads == []
