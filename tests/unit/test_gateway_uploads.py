"""Request bodies at the gateway: size limits before reading, type by magic bytes."""

import io
import json

import pytest
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request

from services.gateway.errors import ApiError
from services.gateway.uploads import (
    JPEG,
    PDF,
    decode_text,
    nesting_depth,
    read_body,
    read_files,
    read_json,
    read_text_file,
    sniff,
)

JPEG_BYTES = b"\xff\xd8\xff\xe0" + b"\x10JFIF" + b"\0" * 2000
PDF_BYTES = b"%PDF-1.7\n" + b"1 0 obj\n" * 100 + b"%%EOF\n"
PNG_BYTES = b"\x89PNG\r\n\x1a\n" + b"\0" * 100


def request(data=None, content_type=None, headers=None, query=None, method="POST"):
    env = EnvironBuilder(method=method, data=data, content_type=content_type,
                         headers=headers, query_string=query).get_environ()
    return Request(env)


class Untouchable(io.RawIOBase):
    """A body that must not be read."""

    def readinto(self, b):
        raise AssertionError("the body was read")


def test_sniff():
    assert sniff(JPEG_BYTES) == JPEG and sniff(PDF_BYTES) == PDF
    assert sniff(PNG_BYTES) is None and sniff(b"") is None and sniff(b"%PDF") is None


def test_declared_length_over_the_limit_is_refused_before_reading():
    env = EnvironBuilder(method="PUT", content_type="image/jpeg").get_environ()
    env["CONTENT_LENGTH"] = str(100 * 1024 * 1024)
    env["wsgi.input"] = Untouchable()
    req = Request(env)
    with pytest.raises(ApiError) as exc:
        read_body(req, 1024, "photo")
    assert exc.value.status == 413 and "1 KiB" in exc.value.message
    with pytest.raises(ApiError) as exc:
        read_files(req, field="photo", allowed=(JPEG,), max_file=1024, max_files=1,
                   what="photo", default_name="p.jpg")
    assert exc.value.status == 413


def test_a_stream_without_length_is_capped():
    env = EnvironBuilder(method="PUT", content_type="image/jpeg").get_environ()
    env.pop("CONTENT_LENGTH", None)
    env["wsgi.input"] = io.BytesIO(b"x" * 10_000)
    env["wsgi.input_terminated"] = True  # a chunked body, as the server hands it over
    with pytest.raises(ApiError) as exc:
        read_body(Request(env), 4096, "photo")
    assert exc.value.status == 413
    env["wsgi.input"] = io.BytesIO(b"y" * 100)
    assert read_body(Request(env), 4096) == b"y" * 100


def test_raw_uploads_by_magic_bytes_not_by_declared_type():
    [got] = read_files(request(JPEG_BYTES, "image/jpeg"), field="photo", allowed=(JPEG,),
                       max_file=10_000, max_files=1, what="photo", default_name="photo.jpg")
    assert (got.name, got.content_type, got.data) == ("photo.jpg", JPEG, JPEG_BYTES)
    with pytest.raises(ApiError) as exc:  # says JPEG, is a PNG
        read_files(request(PNG_BYTES, "image/jpeg"), field="photo", allowed=(JPEG,),
                   max_file=10_000, max_files=1, what="photo", default_name="p")
    assert exc.value.status == 415
    with pytest.raises(ApiError) as exc:  # a type not accepted at all
        read_files(request(PNG_BYTES, "image/png"), field="photo", allowed=(JPEG,),
                   max_file=10_000, max_files=1, what="photo", default_name="p")
    assert exc.value.status == 415
    with pytest.raises(ApiError) as exc:
        read_files(request(b"", "image/jpeg"), field="photo", allowed=(JPEG,),
                   max_file=10_000, max_files=1, what="photo", default_name="p")
    assert exc.value.status == 400


def test_raw_upload_name_from_query_or_disposition():
    [a] = read_files(request(PDF_BYTES, "application/pdf", query={"filename": "../../etc/工作证明.pdf"}),
                     field="files", allowed=(PDF, JPEG), max_file=10_000, max_files=5,
                     what="proof", default_name="proof")
    assert a.name == "工作证明.pdf" and a.content_type == PDF
    [b] = read_files(request(PDF_BYTES, "application/pdf",
                             headers={"Content-Disposition": 'attachment; filename="学历.pdf"'}),
                     field="files", allowed=(PDF, JPEG), max_file=10_000, max_files=5,
                     what="proof", default_name="proof")
    assert b.name == "学历.pdf"


def test_multipart_files():
    data = {"files": [(io.BytesIO(PDF_BYTES), "a.pdf"), (io.BytesIO(JPEG_BYTES), "b.jpg")]}
    req = request(data, "multipart/form-data")
    got = read_files(req, field="files", allowed=(PDF, JPEG), max_file=10_000, max_files=5,
                     what="proof", default_name="proof")
    assert [(f.name, f.content_type) for f in got] == [("a.pdf", PDF), ("b.jpg", JPEG)]

    too_many = {"files": [(io.BytesIO(PDF_BYTES), f"{i}.pdf") for i in range(3)]}
    with pytest.raises(ApiError) as exc:
        read_files(request(too_many, "multipart/form-data"), field="files", allowed=(PDF,),
                   max_file=10_000, max_files=2, what="proof", default_name="proof")
    assert exc.value.status == 400 and "files" in exc.value.fields
    big = {"files": [(io.BytesIO(PDF_BYTES + b"x" * 20_000), "big.pdf")]}
    with pytest.raises(ApiError) as exc:
        read_files(request(big, "multipart/form-data"), field="files", allowed=(PDF,),
                   max_file=10_000, max_files=5, what="proof", default_name="proof")
    assert exc.value.status == 413
    with pytest.raises(ApiError) as exc:
        read_files(request({"other": (io.BytesIO(PDF_BYTES), "a.pdf")}, "multipart/form-data"),
                   field="files", allowed=(PDF,), max_file=10_000, max_files=5, what="proof",
                   default_name="proof")
    assert exc.value.status == 400 and exc.value.fields == {"files": "missing"}


def test_json_bodies():
    assert read_json(request(b'{"a": 1}', "application/json")) == {"a": 1}
    assert read_json(request(b'{"a": 1}', "application/merge-patch+json")) == {"a": 1}
    for body, ctype, status in [(b"{", "application/json", 400), (b"[1]", "application/json", 400),
                                (b"\xff\xfe", "application/json", 400),
                                (b'{"a": 1}', "text/plain", 415), (b'{"a": 1}', None, 415)]:
        with pytest.raises(ApiError) as exc:
            read_json(request(body, ctype))
        assert exc.value.status == status, (body, ctype)
    with pytest.raises(ApiError) as exc:
        read_json(request(b'{"a": "' + b"x" * 2000 + b'"}', "application/json"), limit=1000)
    assert exc.value.status == 413


@pytest.mark.parametrize("body", [
    b'{"a": ' + b"[" * 1000 + b"]" * 1000 + b"}",  # past the parser's recursion
    b'{"a": ' + b'{"b": ' * 100_000 + b"1" + b"}" * 100_001,
    b'{"a": ' + b"[" * 40 + b"]" * 40 + b"}",  # parses, but deeper than any input of ours
])
def test_deeply_nested_json_is_a_field_refusal(body):
    with pytest.raises(ApiError) as exc:
        read_json(request(body, "application/json"), limit=10 * 1024 * 1024)
    assert exc.value.code == "validation_failed"
    assert "nested more than 32 levels" in exc.value.fields["_body"]


def test_json_nested_to_the_bound_is_read():
    assert nesting_depth({"a": [{"b": [1]}], "c": 2}) == 4 and nesting_depth(3) == 0
    body = {"a": [[[]]]}
    for _ in range(28):
        body = {"a": body}
    assert nesting_depth(body) == 32
    assert read_json(request(json.dumps(body).encode(), "application/json")) == body


def test_text_files():
    name, text = read_text_file(request("\ufeffticket_number,subject,score\n".encode(), "text/csv",
                                        query={"filename": "2026.csv"}),
                                field="file", kinds=("text/csv",), limit=1000, what="score file",
                                default_name="scores.csv")
    assert (name, text) == ("2026.csv", "ticket_number,subject,score\n")
    xlsx = b"PK\x03\x04" + b"\0" * 100
    for data in (xlsx, PDF_BYTES, b"a,b\x00c", "成绩".encode("gbk")):
        with pytest.raises(ApiError) as exc:
            decode_text(data, "score file")
        assert exc.value.status == 415
    with pytest.raises(ApiError) as exc:
        read_text_file(request(b"a,b", "application/vnd.ms-excel"), field="file",
                       kinds=("text/csv",), limit=1000, what="score file", default_name="s.csv")
    assert exc.value.status == 415
    form = {"file": (io.BytesIO(b"t,s,1\n"), "marks.csv")}
    assert read_text_file(request(form, "multipart/form-data"), field="file", kinds=("text/csv",),
                          limit=1000, what="score file", default_name="s.csv") == ("marks.csv",
                                                                                   "t,s,1\n")
