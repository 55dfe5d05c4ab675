import hashlib
import io
import random

import pytest
from PIL import Image, ImageDraw

from services.account.photo import PhotoPolicy, check_photo
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
