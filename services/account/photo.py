"""The candidate photo (报名照片) check: JPEG, 295×413 px, 1–200 KiB, white background.

Pure: decodes the bytes in memory and answers the facts the profile keeps (digest and
dimensions), never the image itself. Every refusal is ``ValidationFailed`` on "photo".
"""

import hashlib
import io
import operator
from dataclasses import dataclass

from PIL import Image, ImageChops, UnidentifiedImageError

from shared.errors import ValidationFailed


@dataclass(frozen=True)
class PhotoPolicy:
    width: int = 295
    height: int = 413
    min_bytes: int = 1024
    max_bytes: int = 200 * 1024
    # background: a strip along the top and down both sides of the top third (beside the
    # head, where a portrait has only background) must be bright and mostly near-white
    strip_px: int = 6
    min_mean: float = 235.0  # mean of each RGB channel over the strip
    near_white: int = 220  # a pixel is near-white when each channel is at least this
    min_near_white_share: float = 0.9


def _refuse(reason):
    raise ValidationFailed(reason, {"photo": reason})


def _border(img, policy):
    w, h, s = img.width, img.height, policy.strip_px
    third = h // 3
    return [img.crop((0, 0, w, s)), img.crop((0, s, s, third)), img.crop((w - s, s, w, third))]


def _background_is_white(img, policy) -> bool:
    # histograms and ImageChops run in C; a per-pixel Python loop over the strips cost
    # more than the rest of the check. The decisions are the same: integer sums over the
    # same pixels, the same float comparisons.
    strips = _border(img, policy)
    n = sum(strip.width * strip.height for strip in strips)
    sums = [0, 0, 0]
    near_white = 0
    for strip in strips:
        hist = strip.histogram()  # 256 counts per band, R then G then B
        for band in range(3):
            sums[band] += sum(map(operator.mul, range(256), hist[band * 256 : band * 256 + 256]))
        # a pixel is near-white when its darkest channel is
        r, g, b = strip.split()
        darkest = ImageChops.darker(ImageChops.darker(r, g), b).histogram()
        near_white += sum(count for v, count in enumerate(darkest) if v >= policy.near_white)
    means = [total / n for total in sums]
    return min(means) >= policy.min_mean and near_white >= policy.min_near_white_share * n


def check_photo(data: bytes, policy: PhotoPolicy = PhotoPolicy()) -> dict:
    """``{"sha256", "width", "height", "size"}`` of an acceptable photo; refuses otherwise."""
    if len(data) > policy.max_bytes:
        _refuse(
            f"the photo is too large: {len(data) // 1024} KiB, at most {policy.max_bytes // 1024} KiB"
        )
    if len(data) < policy.min_bytes:
        _refuse(
            f"the photo is too small: {len(data)} bytes, at least {policy.min_bytes // 1024} KiB"
        )
    try:
        img = Image.open(io.BytesIO(data))  # reads the header only
    except Image.DecompressionBombError:  # a huge declared size, refused before decoding
        _refuse(
            f"the photo is far too large in pixels; it must be {policy.width}×{policy.height} px"
        )
    except (UnidentifiedImageError, OSError):
        _refuse("the photo is not a JPEG image")
    with img:
        if img.format not in ("JPEG", "MPO"):  # MPO: a camera JPEG with extra frames
            _refuse("the photo is not a JPEG image")
        # checked on the header, before load(): a wrong size is never decoded
        if img.size != (policy.width, policy.height):
            _refuse(
                f"the photo is {img.width}×{img.height} px; it must be "
                f"{policy.width}×{policy.height} px"
            )
        try:
            rgb = img.convert("RGB")
        except OSError:
            _refuse("the photo file is damaged or truncated")
    if not _background_is_white(rgb, policy):
        _refuse("the photo background is not white")
    return {
        "sha256": hashlib.sha256(data).hexdigest(),
        "width": rgb.width,
        "height": rgb.height,
        "size": len(data),
    }
