import hashlib
import io
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image, ImageDraw

from services.account.photo import PhotoPolicy, _background_is_white, _border, check_photo
from shared.errors import ValidationFailed


def portrait(size=(295, 413), background=(255, 255, 255)):
    """A passport-style picture: plain background, a dark body and a face in the middle."""
    img = Image.new("RGB", size, background)
    draw = ImageDraw.Draw(img)
    w, h = size
    draw.rectangle((w // 4, h * 3 // 10, w * 3 // 4, h), fill=(40, 40, 60))
    draw.ellipse((w // 3, h // 10, w * 2 // 3, h * 4 // 10), fill=(200, 160, 130))
    return img


def encode(img, fmt="JPEG", **kwargs):
    out = io.BytesIO()
    img.save(out, fmt, **kwargs)
    return out.getvalue()


def noise(size=(295, 413), seed=0):
    return Image.frombytes("RGB", size, random.Random(seed).randbytes(size[0] * size[1] * 3))


def refusal(data, policy=PhotoPolicy()):
    with pytest.raises(ValidationFailed) as exc:
        check_photo(data, policy)
    assert set(exc.value.fields) == {"photo"}
    return exc.value.fields["photo"]


def test_a_good_photo_is_accepted_and_described_not_copied():
    data = encode(portrait(), quality=90)
    info = check_photo(data)
    assert info == {
        "sha256": hashlib.sha256(data).hexdigest(),
        "width": 295,
        "height": 413,
        "size": len(data),
    }


def test_wrong_dimensions():
    assert "must be 295×413" in refusal(encode(portrait((300, 400)), quality=90))
    assert "413×295" in refusal(encode(portrait((413, 295)), quality=90))


def test_png_is_not_a_jpeg():
    img = portrait()
    img.paste(noise((100, 100)), (100, 200))  # enough detail to pass the size floor
    data = encode(img, "PNG")
    assert len(data) >= 1024
    assert "not a JPEG" in refusal(data)


def test_garbage_is_not_a_jpeg():
    assert "not a JPEG" in refusal(random.Random(1).randbytes(4096))


def test_grey_background_is_refused():
    assert "not white" in refusal(encode(portrait(background=(200, 200, 200)), quality=90))


def test_light_blue_background_is_refused():
    # bright overall, but the red channel gives it away
    assert "not white" in refusal(encode(portrait(background=(150, 200, 255)), quality=90))


def test_a_dark_stripe_along_the_top_is_refused():
    img = portrait()
    ImageDraw.Draw(img).rectangle((0, 0, 295, 3), fill=(0, 0, 0))
    assert "not white" in refusal(encode(img, quality=90))


def test_too_large():
    data = encode(noise(), quality=100)
    assert len(data) > 200 * 1024
    assert "too large" in refusal(data)


def test_too_small():
    assert "too small" in refusal(encode(portrait(), quality=90)[:1000])


def test_truncated_jpeg_is_refused():
    data = encode(portrait(), quality=90)
    assert "damaged" in refusal(data[: len(data) // 2])


def _with_declared_size(data, width, height):
    # rewrite the SOF0 header's dimensions; the pixel data stays small
    at = data.index(b"\xff\xc0")
    return data[: at + 5] + height.to_bytes(2, "big") + width.to_bytes(2, "big") + data[at + 9 :]


def test_declared_size_is_checked_before_decoding():
    data = encode(portrait(), quality=90)
    assert check_photo(_with_declared_size(data, 295, 413))["width"] == 295
    assert "must be 295×413" in refusal(_with_declared_size(data, 1000, 1000))


def test_decompression_bomb_is_refused_without_decoding():
    data = _with_declared_size(encode(portrait(), quality=90), 30000, 30000)
    assert "far too large" in refusal(data)


def test_policy_is_configurable():
    data = encode(portrait((100, 140)), quality=95)
    policy = PhotoPolicy(width=100, height=140, min_bytes=100)
    assert check_photo(data, policy)["height"] == 140


# --- the background check against the per-pixel reference --------------------------


def reference_background_is_white(img, policy) -> bool:
    """The check as it was written first, one pixel at a time in Python: the definition."""
    strips = _border(img, policy)
    pixels = [px for strip in strips for px in strip.get_flattened_data()]
    means = [sum(px[band] for px in pixels) / len(pixels) for band in range(3)]
    near_white = sum(1 for px in pixels if min(px) >= policy.near_white)
    return min(means) >= policy.min_mean and near_white >= policy.min_near_white_share * len(pixels)


def _strip_pixels(policy, size=(295, 413)):
    """Every (x, y) of the border strips, in the order the strips are cut."""
    w, h, s = *size, policy.strip_px
    third = h // 3
    return (
        [(x, y) for y in range(0, s) for x in range(0, w)]
        + [(x, y) for y in range(s, third) for x in range(0, s)]
        + [(x, y) for y in range(s, third) for x in range(w - s, w)]
    )


def test_border_pixels_are_the_strips():
    policy = PhotoPolicy()
    assert sum(len(strip.get_flattened_data()) for strip in _border(portrait(), policy)) == len(
        _strip_pixels(policy)
    )


@pytest.mark.parametrize("level, white", [(234, False), (235, True), (236, True)])
def test_mean_exactly_at_the_threshold(level, white):
    img = portrait(background=(255, 255, 255))
    policy = PhotoPolicy()
    pixels = _strip_pixels(policy)
    # one channel of every strip pixel at `level`: its mean is exactly `level`
    for xy in pixels:
        img.putpixel(xy, (255, level, 255))
    assert _background_is_white(img, policy) is white
    assert reference_background_is_white(img, policy) is white


@pytest.mark.parametrize("extra_dark, white", [(-1, True), (0, True), (1, False)])
def test_near_white_share_exactly_at_the_threshold(extra_dark, white):
    # strips of 70 pixels (50×33, strip 1: 50 along the top, 10 down each side), so
    # that 90 % is a whole count of pixels
    policy = PhotoPolicy(width=50, height=33, strip_px=1, min_mean=0.0)
    img = Image.new("RGB", (50, 33), (255, 255, 255))
    pixels = _strip_pixels(policy, (50, 33))
    assert len(pixels) == 70
    dark = 7 + extra_dark  # 7 dark of 70 leaves exactly 90 % near-white
    for xy in pixels[:dark]:
        img.putpixel(xy, (255, 255, policy.near_white - 1))  # one channel just below
    for xy in pixels[dark:]:
        img.putpixel(xy, (policy.near_white,) * 3)  # exactly at near-white counts
    assert _background_is_white(img, policy) is white
    assert reference_background_is_white(img, policy) is white


# channel values at and around every threshold the default policy has, and the ends
_LEVELS = [0, 1, 100, 219, 220, 221, 234, 235, 236, 254, 255]


@st.composite
def strip_images(draw):
    strip = draw(st.integers(1, 6))
    width = draw(st.integers(2 * strip, 40))
    height = draw(st.integers(3 * strip + 3, 60))  # the side strips are never empty
    policy = PhotoPolicy(
        width=width,
        height=height,
        strip_px=strip,
        min_mean=draw(st.sampled_from([0.0, 200.0, 234.5, 235.0, 235.25, 250.0, 255.0])),
        near_white=draw(st.sampled_from([0, 1, 200, 220, 221, 255, 256])),
        min_near_white_share=draw(st.sampled_from([0.0, 0.5, 0.9, 0.95, 1.0])),
    )
    palette = draw(
        st.lists(st.tuples(*[st.sampled_from(_LEVELS)] * 3), min_size=1, max_size=4, unique=True)
    )
    # mostly one background colour, so the shares land near the thresholds
    weights = [draw(st.integers(1, 20)) for _ in palette]
    rng = random.Random(draw(st.integers(0, 2**32)))
    data = b"".join(bytes(px) for px in rng.choices(palette, weights=weights, k=width * height))
    return Image.frombytes("RGB", (width, height), data), policy


@settings(max_examples=400, deadline=None)
@given(strip_images())
def test_background_check_agrees_with_the_per_pixel_reference(case):
    img, policy = case
    assert _background_is_white(img, policy) == reference_background_is_white(img, policy)


@pytest.mark.parametrize(
    "img",
    [
        portrait(),
        portrait(background=(236, 236, 236)),
        portrait(background=(235, 240, 250)),
        portrait(background=(200, 200, 200)),
        noise(),
        Image.new("RGB", (295, 413), (255, 255, 255)),
    ],
)
@pytest.mark.parametrize("quality", [None, 60, 95])
def test_background_check_agrees_with_the_reference_on_photos(img, quality):
    if quality is not None:  # through JPEG, as a candidate's photo comes
        img = Image.open(io.BytesIO(encode(img, quality=quality))).convert("RGB")
    policy = PhotoPolicy()
    assert _background_is_white(img, policy) == reference_background_is_white(img, policy)
