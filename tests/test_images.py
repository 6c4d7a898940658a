"""The image step on real and crafted images: checks, normalisation, store, resume."""

from __future__ import annotations

import hashlib
import io
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from PIL import Image

from cmisc_model.config import load_section
from cmisc_model.corpus import images
from cmisc_model.corpus.images import (
    ImagesConfig,
    commons_url,
    resolve_local,
    store_images,
    store_images_rows,
)
from cmisc_model.errors import CmiscError
from cmisc_model.schemas import PAIRS, from_rows, make_pair_id, read_table, write_table
from cmisc_model.sources.http import PoliteSession
from tests.conftest import SHARED

COCO = SHARED / "realdata" / "coco" / "coco-mini"
TRUNCATED = SHARED / "realdata" / "images" / "truncated.jpg"
UA = "cmisc-tests/0.1 (https://example.org/cmisc; tests@example.org)"


def row(ref: str | None = None, title: str | None = None, key: str | None = None, **kw) -> dict:
    key = key or ref or title or "none"
    r = {
        "pair_id": make_pair_id("test", "doc", key),
        "source": "test",
        "doc_id": "doc",
        "position": "lead",
        "section_path": [],
        "text_blocks": [{"titles": ["T"], "sentences": ["A sentence."]}],
        "image_url": ref,
        "image_title": title,
        "image_status": "missing",
    }
    r.update(kw)
    return r


def png_bytes(im: Image.Image, fmt: str = "PNG", **kw) -> bytes:
    buf = io.BytesIO()
    im.save(buf, format=fmt, **kw)
    return buf.getvalue()


def run(rows, store, cfg=None, **kw):
    kw.setdefault("progress", False)
    return store_images_rows(rows, store, cfg or ImagesConfig(workers=1), **kw)


def stored(store: Path, r: dict) -> Image.Image:
    path = store / r["image_path"]
    assert hashlib.sha256(path.read_bytes()).hexdigest() == r["image_sha256"]
    im = Image.open(path)
    im.load()
    return im


# --------------------------------------------------------------------------- real images


def test_real_coco_images_and_a_truncated_jpeg_in_one_run(tmp_path):
    store = tmp_path / "store"
    rows = [
        row("http://images.cocodataset.org/val2017/000000205401.jpg"),  # 640×408, via the mirror
        row(str(COCO / "val2017" / "000000126107.jpg")),  # 640×480, a plain path
        row((COCO / "val2017" / "000000165518.jpg").as_uri()),  # 612×612, a file:// URL
        row(str(TRUNCATED)),
    ]
    out, summary = run(rows, store, local_roots=[COCO])
    assert [r["image_status"] for r in out] == ["ok", "ok", "ok", "rejected:decode-error"]
    sizes = [(r["image_width"], r["image_height"]) for r in out[:3]]
    assert sizes == [(543, 346), (461, 346), (346, 346)]  # shorter side 346, aspect kept
    for r in out[:3]:
        im = stored(store, r)
        assert (
            im.format == "JPEG"
            and im.mode == "RGB"
            and im.size == (r["image_width"], r["image_height"])
        )
        assert (
            r["image_format"] == "JPEG"
            and r["image_path"].endswith(f"{r['image_sha256'][:2]}/{r['image_sha256']}.jpg")
        )
    bad = out[3]
    assert bad["image_sha256"] is None and bad["image_path"] is None
    assert (
        summary["ok"] == 3
        and summary["rejected"] == {"decode-error": 1}
        and summary["written"] == 3
    )
    # the broken image cost nothing already written
    assert len(list(store.glob("*/*.jpg"))) == 3


def test_table_wrapper_keeps_schema_and_other_columns(tmp_path):
    table = from_rows([row(str(COCO / "val2017" / "000000205401.jpg"), caption="c")], PAIRS)
    out, _ = store_images(table, tmp_path / "s", ImagesConfig(workers=1), progress=False)
    assert out.schema.equals(table.schema)
    r = out.to_pylist()[0]
    assert (
        r["image_status"] == "ok"
        and r["caption"] == "c"
        and r["text_blocks"] == table.to_pylist()[0]["text_blocks"]
    )


# --------------------------------------------------------------------------- normalisation


def test_png_alpha_is_composited_on_white(tmp_path):
    im = Image.new("RGBA", (100, 50), (0, 0, 0, 0))  # transparent black left half
    im.paste((255, 0, 0, 255), (50, 0, 100, 50))  # opaque red right half
    src = tmp_path / "alpha.png"
    src.write_bytes(png_bytes(im))
    (r,), _ = run([row(str(src))], tmp_path / "s")
    out = stored(tmp_path / "s", r)
    assert r["image_format"] == "PNG" and out.mode == "RGB"
    left, right = out.getpixel((10, 25)), out.getpixel((90, 25))
    assert min(left) >= 250  # white, not black
    assert right[0] > 240 and right[1] < 20 and right[2] < 20


def test_palette_png_with_transparency(tmp_path):
    im = Image.new("P", (40, 40), 0)
    im.putpalette([0, 0, 0, 0, 0, 255] + [0] * 762)
    im.paste(1, (20, 0, 40, 40))
    src = tmp_path / "p.png"
    src.write_bytes(png_bytes(im, transparency=0))
    (r,), _ = run([row(str(src))], tmp_path / "s")
    out = stored(tmp_path / "s", r)
    assert min(out.getpixel((5, 5))) >= 250 and out.getpixel((35, 5))[2] > 240


def test_animated_gif_keeps_its_first_frame(tmp_path):
    red = Image.new("RGB", (60, 40), (255, 0, 0))
    blue = Image.new("RGB", (60, 40), (0, 0, 255))
    src = tmp_path / "anim.gif"
    red.save(src, save_all=True, append_images=[blue], duration=100, loop=0)
    assert Image.open(src).n_frames == 2
    (r,), _ = run([row(str(src))], tmp_path / "s")
    px = stored(tmp_path / "s", r).getpixel((30, 20))
    assert r["image_format"] == "GIF" and px[0] > 230 and px[2] < 30


def test_exif_orientation_is_applied(tmp_path):
    im = Image.new("RGB", (200, 100), (0, 128, 0))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise to display
    src = tmp_path / "rot.jpg"
    src.write_bytes(png_bytes(im, "JPEG", exif=exif))
    (r,), _ = run([row(str(src))], tmp_path / "s")
    assert (r["image_width"], r["image_height"]) == (100, 200)


def test_shorter_side_bound_shrinks_only(tmp_path):
    big = tmp_path / "big.png"
    Image.new("RGB", (1000, 2000), (10, 20, 30)).save(big)
    small = tmp_path / "small.png"
    Image.new("RGB", (120, 80), (10, 20, 30)).save(small)
    out, _ = run([row(str(big)), row(str(small))], tmp_path / "s")
    assert (out[0]["image_width"], out[0]["image_height"]) == (346, 692)
    assert (out[1]["image_width"], out[1]["image_height"]) == (120, 80)
    cfg = ImagesConfig(workers=1, max_short_side=100)
    out, _ = run([row(str(big))], tmp_path / "s2", cfg)
    assert (out[0]["image_width"], out[0]["image_height"]) == (100, 200)


def test_huge_pixel_count_is_rejected_without_decoding(tmp_path):
    src = tmp_path / "bomb.png"
    Image.new("1", (10_000, 10_001)).save(src)  # 100 M pixels in a few kB
    assert src.stat().st_size < 100_000
    (r,), s = run([row(str(src))], tmp_path / "s")
    assert r["image_status"] == "rejected:too-many-pixels" and r["image_format"] == "PNG"
    assert s["rejected"] == {"too-many-pixels": 1}


def test_byte_cap_not_an_image_and_unsupported_format(tmp_path):
    big = tmp_path / "big.png"
    Image.new("RGB", (300, 300)).save(big)
    text = tmp_path / "notes.jpg"
    text.write_text("this is not an image at all\n")
    pdf = tmp_path / "doc.pdf"
    pdf.write_bytes(b"%PDF-1.4\n%...\n")
    cfg = ImagesConfig(workers=1, max_bytes=big.stat().st_size - 1)
    out, _ = run([row(str(big)), row(str(text)), row(str(pdf))], tmp_path / "s", cfg)
    assert [r["image_status"] for r in out] == [
        "rejected:too-large-bytes",
        "rejected:not-an-image",
        "rejected:unsupported-format",
    ]


SVG = b"""<?xml version="1.0" encoding="UTF-8"?>
<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 200 100">
  <rect width="100" height="100" fill="#ff0000"/>
</svg>"""


def test_svg_is_rasterised_at_the_bound_or_rejected(tmp_path):
    src = tmp_path / "logo.svg"
    src.write_bytes(SVG)
    (r,), _ = run([row(str(src))], tmp_path / "s")
    assert r["image_status"] == "ok" and r["image_format"] == "SVG"
    assert (r["image_width"], r["image_height"]) == (692, 346)
    out = stored(tmp_path / "s", r)
    assert out.getpixel((100, 170))[0] > 240 and min(out.getpixel((600, 170))) >= 250  # red, white

    cfg = ImagesConfig(workers=1, svg="reject")
    (r,), _ = run([row(str(src))], tmp_path / "s2", cfg)
    assert r["image_status"] == "rejected:svg-unsupported" and r["image_format"] == "SVG"

    # an SVG that would paint a local file into the store
    sneaky = tmp_path / "sneaky.svg"
    target = COCO / "val2017" / "000000205401.jpg"
    sneaky.write_text(
        '<?xml version="1.0"?><!DOCTYPE svg [<!ENTITY p "' + str(target) + '">]>'
        '<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" '
        'width="10" height="10"><image width="10" height="10" xlink:href="&p;"/></svg>'
    )
    (r,), _ = run([row(str(sneaky))], tmp_path / "s4")
    assert r["image_status"] == "rejected:svg-external-reference"

    broken = tmp_path / "broken.svg"
    broken.write_bytes(SVG[:120])
    (r,), _ = run([row(str(broken))], tmp_path / "s3")
    assert r["image_status"] == "rejected:decode-error"


# --------------------------------------------------------------------------- store


def test_dedup_stores_identical_content_once(tmp_path):
    a = tmp_path / "a.jpg"
    a.write_bytes((COCO / "val2017" / "000000205401.jpg").read_bytes())
    b = tmp_path / "b.jpg"
    b.write_bytes(a.read_bytes())
    rows = [row(str(a)), row(str(b)), row(str(a), key="second use")]
    out, s = run(rows, tmp_path / "s", ImagesConfig(workers=2))
    assert len({r["image_sha256"] for r in out}) == 1
    assert len(list((tmp_path / "s").glob("*/*.jpg"))) == 1
    assert s["processed"] == 2 and s["written"] == 1 and s["ok"] == 3


def test_resume_reuses_and_corruption_is_detected_and_fetched_again(tmp_path):
    store = tmp_path / "s"
    src = [row(str(COCO / "val2017" / f"{n}.jpg")) for n in ("000000205401", "000000126107")]
    first, s1 = run(src, store)
    assert s1["written"] == 2
    again, s2 = run(first, store)
    assert s2["reused"] == 2 and s2["processed"] == 0 and again == first

    victim = store / first[0]["image_path"]
    data = bytearray(victim.read_bytes())
    data[len(data) // 2] ^= 0xFF
    victim.write_bytes(bytes(data))
    fixed, s3 = run(first, store)
    assert s3["refetched"] == 1 and s3["reused"] == 1 and s3["written"] == 1
    assert hashlib.sha256(victim.read_bytes()).hexdigest() == first[0]["image_sha256"]
    assert fixed == first


def test_rows_from_bbc_and_coco_sources_use_their_image_path(tmp_path):
    # bbc.py / coco.py mark a file they found "ok" with its path, before this step
    path = COCO / "val2017" / "000000126107.jpg"
    src = row(
        "http://images.cocodataset.org/val2017/000000126107.jpg",
        image_path=str(path),
        image_status="ok",
    )
    (r,), s = run([src], tmp_path / "s")
    assert (
        r["image_status"] == "ok"
        and r["image_path"].endswith(f"{r['image_sha256'][:2]}/{r['image_sha256']}.jpg")
    )
    assert s["refetched"] == 0 and s["written"] == 1
    gone = row(
        "file:///nonexistent/4008264.jpg",
        title="4008264.jpg",
        image_path="/nonexistent/4008264.jpg",
        image_status="ok",
    )
    # its bare title must not be taken for a Commons file, even with a mirror
    name = "4008264.jpg"
    h = hashlib.md5(name.encode()).hexdigest()
    decoy = tmp_path / "mirror" / "commons" / h[0] / h[:2] / name
    decoy.parent.mkdir(parents=True)
    decoy.write_bytes(path.read_bytes())
    (r,), _ = run([gone], tmp_path / "s", local_roots=[tmp_path / "mirror"])
    assert r["image_status"] == "missing" and r["image_path"] is None


def test_missing_local_file_and_no_reference(tmp_path):
    rows = [
        row(str(tmp_path / "nope.jpg")),
        row("https://upload.wikimedia.org/wikipedia/commons/a/ab/X.jpg"),
        row(None, key="no image"),
    ]
    out, s = run(rows, tmp_path / "s")
    assert [r["image_status"] for r in out] == ["missing"] * 3 and s["missing"] == 3


def test_rejections_are_kept_on_resume_unless_retried(tmp_path):
    src = tmp_path / "x.png"
    (r,), _ = run([row(str(src))], tmp_path / "s")
    assert r["image_status"] == "missing"
    src.write_text("not an image")
    (r,), _ = run([r], tmp_path / "s")
    assert r["image_status"] == "rejected:not-an-image"
    Image.new("RGB", (10, 10)).save(src, format="PNG")
    (kept,), _ = run([r], tmp_path / "s")
    assert kept["image_status"] == "rejected:not-an-image"
    (retried,), _ = run([r], tmp_path / "s", ImagesConfig(workers=1, retry_rejected=True))
    assert retried["image_status"] == "ok"
    transient = dict(r, image_status="rejected:http-503")
    (again,), _ = run([transient], tmp_path / "s")
    assert again["image_status"] == "ok"


# --------------------------------------------------------------------------- resolution


def test_resolve_local_wikimedia_layout(tmp_path):
    name = "Colorful_spring_garden.jpg"
    url = commons_url("File:Colorful spring garden.jpg")
    h = hashlib.md5(name.encode()).hexdigest()
    assert url == f"https://upload.wikimedia.org/wikipedia/commons/{h[0]}/{h[:2]}/{name}"
    assert commons_url("Albert Einstein Head.jpg").endswith("/d/d3/Albert_Einstein_Head.jpg")
    f = tmp_path / "commons" / h[0] / h[:2] / name
    f.parent.mkdir(parents=True)
    f.write_bytes(b"x")
    local = tmp_path / "simple" / "0" / "0a" / "Local.png"
    local.parent.mkdir(parents=True)
    local.write_bytes(b"x")
    assert resolve_local(url, [tmp_path]) == f.resolve()
    assert (
        resolve_local(
            f"https://upload.wikimedia.org/wikipedia/commons/thumb/{h[0]}/{h[:2]}/{name}/330px-{name}",
            [tmp_path],
        )
        == f.resolve()
    )
    assert resolve_local("File:Colorful spring garden.jpg", [tmp_path]) == f.resolve()
    assert (
        resolve_local("https://upload.wikimedia.org/wikipedia/simple/0/0a/Local.png", [tmp_path])
        == local.resolve()
    )
    assert (
        resolve_local(
            "https://upload.wikimedia.org/wikipedia/commons/../../../etc/passwd", [tmp_path]
        )
        is None
    )
    assert (
        resolve_local(
            "https://upload.wikimedia.org/wikipedia/commons/a/ab/%2E%2E/%2E%2E/x", [tmp_path]
        )
        is None
    )
    assert resolve_local("", [tmp_path]) is None


def test_title_only_rows_resolve_in_a_sample_world_layout(tmp_path):
    root = tmp_path / "simplewiki" / "images"
    name = "Red_square.png"
    h = hashlib.md5(name.encode()).hexdigest()
    f = root / "commons" / h[0] / h[:2] / name
    f.parent.mkdir(parents=True)
    Image.new("RGB", (50, 50), (255, 0, 0)).save(f)
    (r,), _ = run([row(None, title="File:Red square.png")], tmp_path / "s", local_roots=[root])
    assert r["image_status"] == "ok" and r["image_format"] == "PNG"


# --------------------------------------------------------------------------- network


class ImageHandler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_GET(self):
        body = self.server.files.get(self.path)
        self.send_response(200 if body is not None else 404)
        self.send_header("Content-Length", str(len(body or b"")))
        self.end_headers()
        self.wfile.write(body or b"")


@pytest.fixture
def image_server(monkeypatch):
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(var, raising=False)
    srv = ThreadingHTTPServer(("127.0.0.1", 0), ImageHandler)
    srv.files = {
        "/img/coco.jpg": (COCO / "val2017" / "000000165518.jpg").read_bytes(),
        "/img/broken.jpg": TRUNCATED.read_bytes(),
    }
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield srv
    srv.shutdown()
    srv.server_close()


def test_fetch_over_http_with_polite_session(tmp_path, image_server):
    base = f"http://127.0.0.1:{image_server.server_port}"
    session = PoliteSession(UA, ["127.0.0.1"], rate_per_s=1000, sleep=lambda s: None)
    rows = [
        row(base + "/img/coco.jpg"),
        row(base + "/img/broken.jpg"),
        row(base + "/img/gone.jpg"),
        row(f"http://localhost:{image_server.server_port}/img/coco.jpg"),
    ]
    out, _ = run(rows, tmp_path / "s", fetch=True, session=session)
    assert [r["image_status"] for r in out] == [
        "ok",
        "rejected:decode-error",
        "rejected:http-404",
        "rejected:host-not-allowed",
    ]
    assert (out[0]["image_width"], out[0]["image_height"]) == (346, 346)
    # without --fetch the same URLs are simply missing
    out, _ = run(rows[:1], tmp_path / "s2")
    assert out[0]["image_status"] == "missing"


def test_fetch_without_user_agent_is_refused(tmp_path):
    with pytest.raises(CmiscError, match="user_agent"):
        run([row("https://upload.wikimedia.org/x.jpg")], tmp_path / "s", fetch=True)


# --------------------------------------------------------------------------- params and CLI


def test_params_section_equals_dataclass_defaults():
    params = Path(__file__).resolve().parents[1] / "params.yaml"
    assert load_section(ImagesConfig, "images", params) == ImagesConfig()


def test_cli_round_trip(tmp_path, capsys):
    pairs = tmp_path / "pairs.parquet"
    write_table(
        from_rows(
            [row("http://images.cocodataset.org/val2017/000000205401.jpg"), row(str(TRUNCATED))],
            PAIRS,
        ),
        pairs,
        PAIRS,
        metadata={"cmisc.source": "test"},
    )
    out = tmp_path / "out.parquet"
    rc = images.cli_main(
        [
            "--pairs",
            str(pairs),
            "--out",
            str(out),
            "--store",
            str(tmp_path / "store"),
            "--local-root",
            str(COCO),
            "--no-progress",
        ]
    )
    assert rc == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["ok"] == 1 and summary["rejected"] == {"decode-error": 1}
    table = read_table(out, PAIRS)
    assert table.column("image_status").to_pylist() == ["ok", "rejected:decode-error"]
    from cmisc_model.schemas import file_metadata

    assert file_metadata(out)["cmisc.source"] == "test"
