"""The image step: fetch, check, normalise and store the image of every pair.

For each row of a pairs table the image is found (a local copy first: a dump's
image mirror, the sample world, BBC/COCO folders; the network only with
``fetch=True``), checked (byte and pixel caps, a full decode), normalised and
stored once, content-addressed::

    STORE/{sha[:2]}/{sha}.jpg

**Which hash.** ``sha`` and the row's ``image_sha256`` are the sha256 of the
*stored, normalised* JPEG bytes, not of the original download. So re-hashing
the stored file tells whether it is intact (a corrupted file is detected and
fetched again on the next run), and two originals that normalise to the same
bytes are stored once. The original's hash is not recorded (the pairs schema
has no column for it; the original is not kept).

**Normalisation** (2017: ``preprocessImages.py``, reference/original_impl.md §1):
decode fully (``Image.load()``; a lazy open is not proof of a good file),
apply the EXIF orientation, take the first frame of an animation, composite
any transparency on white, convert to 8-bit RGB, shrink so that the shorter
side is at most ``max_short_side`` keeping the aspect ratio (bicubic), and
re-encode as JPEG. SVG is rasterised with resvg (``resvg-py``, a self-contained
wheel: no system library) straight to the bounded size, or rejected.

Every row keeps its place: ``image_status`` is ``ok``, ``missing`` (no local
copy and no fetch) or ``rejected:<reason>`` (``too-large-bytes``,
``too-many-pixels``, ``decode-error``, ``not-an-image``,
``unsupported-format``, ``svg-unsupported``, ``svg-external-reference``, ``http-404``, ``timeout``,
``network-error``, ``host-not-allowed``, ...). ``image_width``/``image_height``
are those of the stored image; ``image_format`` is the original's format
(``JPEG``, ``PNG``, ``GIF``, ``SVG``, ...).

Where the image is looked for, in order: the source's own file (BBC and COCO
rows arrive with ``image_path`` set to the file they found and no
``image_sha256``), then ``image_url`` (else ``image_title``), each first under
the local roots (``resolve_local``), then, with ``fetch=True``, downloaded.

Resume: a row whose stored file exists and re-hashes to its ``image_sha256``
is reused untouched; rows already rejected keep their reason unless
``retry_rejected`` is set, except transient network failures (``timeout``,
``network-error``, ``http-429``, ``http-5xx``), which are always tried again.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import io
import json
import logging
import os
import sys
import threading
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal
from urllib.parse import unquote, urlsplit

import pyarrow as pa
from PIL import Image, ImageOps

from cmisc_model.errors import CmiscError
from cmisc_model.schemas import atomic_path, normalise_file_title
from cmisc_model.sources.http import FetchError, PoliteSession

log = logging.getLogger(__name__)

try:  # a self-contained Rust wheel; optional so that a missing wheel only rejects SVGs
    import resvg_py
except ImportError:  # pragma: no cover - depends on the environment
    resvg_py = None


@dataclass
class ImagesConfig:
    """The ``images`` section of params.yaml."""

    max_bytes: int = 20_000_000  # original file, bytes
    max_pixels: int = 50_000_000  # original width × height; also PIL's decompression-bomb guard
    # Departure from 2017: they resized every image to a 346 px shorter side,
    # upscaling small ones, and the model then squashed it to 346×346. Here the
    # shorter side is only bounded (small images keep their size, vectors are
    # rendered at the bound) and the aspect ratio is always kept.
    max_short_side: int = 346
    jpeg_quality: int = 90
    svg: Literal["rasterise", "reject"] = "rasterise"
    # Departure from 2017: they accepted jpg/png/gif/svg only; WebP, TIFF and
    # BMP decode just as well. Only these decoders are ever tried (never, e.g.,
    # EPS, which would run Ghostscript).
    formats: list[str] = field(
        default_factory=lambda: ["JPEG", "PNG", "GIF", "WEBP", "TIFF", "BMP"]
    )
    allowed_hosts: list[str] = field(
        default_factory=lambda: [
            "upload.wikimedia.org",
            "commons.wikimedia.org",
            "simple.wikipedia.org",
            "images.cocodataset.org",
        ]
    )
    workers: int = 2  # threads; Wikimedia's robot policy asks for ≤ 2 concurrent downloads
    # Empty: refuse to use the network. Wikimedia requires a descriptive agent
    # with a contact, e.g. "cmisc/0.1 (https://example.org; you@example.org)".
    user_agent: str = ""
    rate_per_s: float = 1.0  # requests started per second, per process
    max_retries: int = 5
    timeout_s: float = 30.0
    retry_rejected: bool = False


# Reasons worth trying again on the next run: the image may well be fine.
TRANSIENT_REASONS = ("timeout", "network-error", "http-429", "http-5")

# Signatures of the raster formats we decode: a file that starts like one but
# does not decode is broken (decode-error), anything else is not-an-image.
_RASTER_MAGIC = {
    b"\xff\xd8\xff": "JPEG",
    b"\x89PNG\r\n\x1a\n": "PNG",
    b"GIF87a": "GIF",
    b"GIF89a": "GIF",
    b"II*\x00": "TIFF",
    b"MM\x00*": "TIFF",
    b"BM": "BMP",
}
# Files that are documents or media, not images (Commons has many).
_OTHER_MAGIC = {b"%PDF": "PDF", b"AT&TFORM": "DJVU", b"OggS": "OGG", b"\x1aE\xdf\xa3": "WEBM"}


class ImageRejected(Exception):
    """An image that cannot be stored; ``reason`` goes into ``rejected:<reason>``."""

    def __init__(self, reason: str, detail: str = "", fmt: str | None = None):
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.fmt = fmt


@dataclass
class Normalised:
    data: bytes  # the JPEG to store
    width: int
    height: int
    fmt: str  # the original's format


# --------------------------------------------------------------------------- resolution


def commons_url(title: str) -> str:
    """Original-file URL on Commons for a file title (data_sources.md §3.3)."""
    name = normalise_file_title(title)
    h = hashlib.md5(name.encode("utf-8")).hexdigest()
    return f"https://upload.wikimedia.org/wikipedia/commons/{h[0]}/{h[:2]}/{name}"


def _inside(root: Path, rel: str) -> Path | None:
    """``root/rel`` if it stays inside ``root`` (no ``..`` tricks in a URL)."""
    if not rel or "\x00" in rel:
        return None
    candidate = (root / rel).resolve()
    try:
        candidate.relative_to(root.resolve())
    except ValueError:
        return None
    return candidate


def _url_candidates(url: str) -> list[str]:
    """Root-relative paths where a local mirror may keep the file of ``url``."""
    parts = urlsplit(url)
    segs = [unquote(s) for s in parts.path.split("/") if s]
    out: list[str] = []
    if parts.hostname == "upload.wikimedia.org" and len(segs) >= 5 and segs[0] == "wikipedia":
        # /wikipedia/<project>/[thumb/]h/hh/Name[/NNNpx-Name] -> <project>/h/hh/Name
        project, rest = segs[1], segs[2:]
        if rest[0] == "thumb" and len(rest) >= 4:
            rest = rest[1:4]
        out.append("/".join([project, *rest[:3]]))
    path = "/".join(segs)
    out += [path, f"{parts.hostname}/{path}"]
    return out


def _scheme(ref: str) -> str | None:
    """``http``, ``https`` or ``file`` for URLs; None for paths and titles
    (``File:Name.jpg`` is a title, not a ``file:`` URL)."""
    low = ref.lower()
    for scheme in ("http", "https", "file"):
        if low.startswith(scheme + "://"):
            return scheme
    return None


def resolve_local(image_url_or_title: str, roots: Sequence[str | os.PathLike] = ()) -> Path | None:
    """The local file for an image URL, ``file://`` URL, path or file title, or None.

    - ``https://upload.wikimedia.org/wikipedia/commons/a/ab/Name.jpg`` (or a
      ``thumb/`` URL of it) -> ``ROOT/commons/a/ab/Name.jpg``; local uploads
      ``/wikipedia/simple/...`` -> ``ROOT/simple/...``. This is the layout the
      2017 crawler and the sample world write.
    - any other http(s) URL -> ``ROOT/<path>`` or ``ROOT/<host>/<path>``
      (``images.cocodataset.org/val2017/x.jpg`` -> ``ROOT/val2017/x.jpg``).
    - ``file://`` URLs and plain paths are read directly (then tried relative
      to each root).
    - a bare file title (``File:Name.jpg``) -> its Commons URL, as above.

    Only existing files are returned; nothing outside a root is reached through
    a URL.
    """
    ref = (image_url_or_title or "").strip()
    if not ref:
        return None
    roots = [Path(r) for r in roots]
    scheme = _scheme(ref)
    if scheme == "file":
        p = Path(unquote(urlsplit(ref).path))
        return p if p.is_file() else None
    if scheme is None:
        p = Path(ref)
        if p.is_file():
            return p
        for root in roots:
            c = _inside(root, ref)
            if c is not None and c.is_file():
                return c
        if "/" in ref or os.sep in ref:
            return None
        ref = commons_url(ref)  # a file title
    for root in roots:
        for rel in _url_candidates(ref):
            c = _inside(root, rel)
            if c is not None and c.is_file():
                return c
    return None


def remote_url(image_url_or_title: str) -> str | None:
    """What to download for a row: its URL, or the Commons URL of a bare title."""
    ref = (image_url_or_title or "").strip()
    scheme = _scheme(ref)
    if scheme in ("http", "https"):
        return ref
    if ref and scheme is None and "/" not in ref and os.sep not in ref:
        return commons_url(ref)
    return None


# --------------------------------------------------------------------------- normalisation


def _sniff(data: bytes) -> str | None:
    head = data[:16]
    for magic, fmt in _RASTER_MAGIC.items():
        if head.startswith(magic):
            return fmt
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WEBP"
    for magic, fmt in _OTHER_MAGIC.items():
        if head.startswith(magic):
            return fmt
    text = data[:4096].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if b"<svg" in text and text.startswith((b"<?xml", b"<svg", b"<!")):
        return "SVG"
    return None


def _to_rgb(im: Image.Image) -> Image.Image:
    """Any PIL mode -> 8-bit RGB, transparency composited on white."""
    if im.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        # 16-bit and float greyscale: scale to 8 bits instead of clipping.
        lo, hi = im.getextrema()
        scale = 255.0 / (hi - lo) if hi > lo else 0.0
        im = im.convert("F").point(lambda v: (v - lo) * scale).convert("L")
    has_alpha = im.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in im.info
    if has_alpha:
        rgba = im.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    return im.convert("RGB")


def _bounded_size(w: int, h: int, max_short: int) -> tuple[int, int]:
    short = min(w, h)
    if short <= max_short:
        return w, h
    s = max_short / short
    # the shorter side lands exactly on the bound; the other keeps the ratio
    return (max_short, max(1, round(h * s))) if w <= h else (max(1, round(w * s)), max_short)


def _encode(im: Image.Image, quality: int) -> bytes:
    buf = io.BytesIO()
    im.save(buf, format="JPEG", quality=quality)
    return buf.getvalue()


def _svg_external_ref(data: bytes) -> str | None:
    """The first ``href`` that is neither ``#fragment`` nor ``data:``, else None.

    resvg renders ``<image href="/any/local/file.png">``, so an SVG from the
    network could otherwise copy a local file into the store. The check runs on
    the parsed tree (expat expands entities and applies DTD attribute defaults),
    not on the raw text, so escaping tricks do not hide a reference.
    """
    try:
        root = ET.fromstring(data)
    except ET.ParseError:
        return None  # unparsable: resvg rejects it as a decode error
    for el in root.iter():
        for name, value in el.attrib.items():
            if name.rsplit("}", 1)[-1] == "href" and not value.strip().startswith(("#", "data:")):
                return value
    return None


def _normalise_svg(data: bytes, cfg: ImagesConfig) -> Normalised:
    if cfg.svg != "rasterise" or resvg_py is None:
        raise ImageRejected(
            "svg-unsupported", "SVG rasterising is off or resvg-py is missing", "SVG"
        )
    try:
        svg = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ImageRejected("decode-error", f"SVG is not UTF-8 ({e})", "SVG") from e
    bad = _svg_external_ref(data)
    if bad is not None:
        raise ImageRejected("svg-external-reference", f"SVG refers to {bad[:80]!r}", "SVG")
    box = cfg.max_short_side
    try:
        # resvg fits the drawing into a width×height box keeping its aspect
        # ratio. A small probe gives the ratio without ever rendering at the
        # SVG's own (possibly absurd) size; then render with the shorter side
        # on the bound.
        probe = Image.open(
            io.BytesIO(bytes(resvg_py.svg_to_bytes(svg_string=svg, width=box, height=box)))
        )
        pw, ph = probe.size
        w, h = (
            (box, max(1, round(box * ph / pw))) if pw <= ph else (max(1, round(box * pw / ph)), box)
        )
        if w * h > cfg.max_pixels:
            raise ImageRejected("too-many-pixels", f"SVG would render at {w}×{h}", "SVG")
        png = bytes(resvg_py.svg_to_bytes(svg_string=svg, width=w, height=h))
        im = Image.open(io.BytesIO(png))
        im.load()
    except ImageRejected:
        raise
    except Exception as e:  # resvg raises ValueError and friends on bad SVG
        raise ImageRejected("decode-error", f"SVG does not render ({e})", "SVG") from e
    im = _to_rgb(im)
    return Normalised(_encode(im, cfg.jpeg_quality), im.width, im.height, "SVG")


def normalise_image(data: bytes, cfg: ImagesConfig) -> Normalised:
    """Decode, check and normalise one image; raises ``ImageRejected`` with a reason."""
    if len(data) > cfg.max_bytes:
        raise ImageRejected("too-large-bytes", f"{len(data)} bytes > {cfg.max_bytes}")
    sniffed = _sniff(data)
    if sniffed == "SVG":
        return _normalise_svg(data, cfg)
    if sniffed is None:
        raise ImageRejected("not-an-image", "no known image signature")
    if sniffed not in cfg.formats:
        raise ImageRejected("unsupported-format", f"{sniffed} is not in images.formats", sniffed)
    try:
        im = Image.open(io.BytesIO(data), formats=list(cfg.formats))
        fmt = im.format or sniffed
        w, h = im.size
        if w * h > cfg.max_pixels:
            raise ImageRejected("too-many-pixels", f"{w}×{h} > {cfg.max_pixels} pixels", fmt)
        if fmt == "JPEG":
            # Let the JPEG decoder downscale by 1/2..1/8 while decoding: much
            # faster for big photos, and the result is resized again below.
            im.draft("RGB", _bounded_size(w, h, cfg.max_short_side))
        im.seek(0)  # first frame of an animation (2017: GIF first frame)
        im.load()  # the full decode: a truncated file fails here, not at open()
    except ImageRejected:
        raise
    except Image.DecompressionBombError as e:
        raise ImageRejected("too-many-pixels", str(e), sniffed) from e
    except Exception as e:  # PIL raises OSError, SyntaxError, ValueError, EOFError... on bad files
        raise ImageRejected("decode-error", f"{type(e).__name__}: {e}", sniffed) from e
    try:
        im = ImageOps.exif_transpose(im)
    except Exception:  # noqa: BLE001 - a broken EXIF block must not cost the image
        log.debug("ignoring unreadable EXIF orientation")
    try:
        im = _to_rgb(im)
    except Exception as e:  # an exotic mode PIL cannot convert (e.g. LAB)
        raise ImageRejected("decode-error", f"{im.mode} image cannot become RGB ({e})", fmt) from e
    size = _bounded_size(im.width, im.height, cfg.max_short_side)
    if size != im.size:
        im = im.resize(size, Image.Resampling.BICUBIC)  # 2017 resized bicubic too
    return Normalised(_encode(im, cfg.jpeg_quality), im.width, im.height, fmt)


# --------------------------------------------------------------------------- store


def store_relpath(sha: str) -> str:
    return f"{sha[:2]}/{sha}.jpg"


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def stored_ok(store: Path, sha: str | None) -> bool:
    """True when ``STORE/{sha[:2]}/{sha}.jpg`` exists and re-hashes to ``sha``."""
    if not sha:
        return False
    path = store / store_relpath(sha)
    return path.is_file() and sha256_file(path) == sha


_put_lock = threading.Lock()


def put(store: Path, data: bytes) -> tuple[str, bool]:
    """Store ``data`` once; returns (sha256, written). Atomic; a corrupted copy is replaced.

    Threads of one process check-and-write under a lock (files are small), so
    ``written`` counts each new file once; other processes sharing the store
    may write the same file twice, harmlessly (same bytes, atomic rename).
    """
    sha = hashlib.sha256(data).hexdigest()
    path = store / store_relpath(sha)
    with _put_lock:
        if stored_ok(store, sha):
            return sha, False
        with atomic_path(path) as tmp:
            tmp.write_bytes(data)
    return sha, True


# --------------------------------------------------------------------------- rows


def _image_refs(row: dict) -> tuple[str, ...]:
    """Where a row's image may be found, best first.

    Before this step, a source that found the file itself (BBC, COCO) puts its
    path in ``image_path`` (with no ``image_sha256``); after it, ``image_path``
    is the stored file (``STORE/ab/ab….jpg``, relative when STORE is) and
    only the URL and title remain.
    """
    refs = []
    if not row.get("image_sha256") and row.get("image_path"):
        refs.append(row["image_path"])
    # A title stands for a Commons file only when there is no URL: BBC and
    # COCO titles are bare file names that must never be looked up on Commons.
    refs.append(row.get("image_url") or row.get("image_title"))
    return tuple(dict.fromkeys(r.strip() for r in refs if r and r.strip()))


def _should_process(row: dict, cfg: ImagesConfig) -> bool:
    status = row.get("image_status") or "missing"
    if status.startswith("rejected:"):
        reason = status[len("rejected:") :]
        return cfg.retry_rejected or reason.startswith(TRANSIENT_REASONS)
    return True  # "missing" (also the state a source writes) and broken "ok"


@dataclass
class _Outcome:
    status: str
    fmt: str | None = None
    sha: str | None = None
    width: int | None = None
    height: int | None = None
    written: bool = False


def _read_local(path: Path, cfg: ImagesConfig) -> bytes:
    size = path.stat().st_size
    if size > cfg.max_bytes:
        raise ImageRejected("too-large-bytes", f"{path}: {size} bytes > {cfg.max_bytes}")
    return path.read_bytes()


def _process(
    refs: tuple[str, ...], store: Path, cfg: ImagesConfig, roots, session: PoliteSession | None
) -> _Outcome:
    """Find (a local copy first), check, normalise and store the image of one row."""
    ref = refs[0]
    try:
        local = next((p for p in (resolve_local(r, roots) for r in refs) if p is not None), None)
        if local is not None:
            data = _read_local(local, cfg)
        else:
            url = next((u for u in map(remote_url, refs) if u is not None), None)
            if session is None or url is None:
                return _Outcome("missing")
            data = session.download(url, cfg.max_bytes)
        norm = normalise_image(data, cfg)
    except ImageRejected as e:
        log.info("image %s rejected: %s", ref, e)
        return _Outcome(f"rejected:{e.reason}", fmt=e.fmt)
    except FetchError as e:
        log.info("image %s not fetched: %s", ref, e)
        return _Outcome(f"rejected:{e.reason}")
    sha, written = put(store, norm.data)
    return _Outcome("ok", norm.fmt, sha, norm.width, norm.height, written)


def make_session(cfg: ImagesConfig, before_request=None) -> PoliteSession:
    """The network client the image step uses; raises if no User-Agent is set."""
    if not cfg.user_agent:
        raise CmiscError(
            "images.user_agent is empty, so the network is off: set a descriptive "
            "User-Agent with a contact in params.yaml (Wikimedia policy) to use --fetch"
        )
    return PoliteSession(
        cfg.user_agent,
        cfg.allowed_hosts,
        rate_per_s=cfg.rate_per_s,
        max_retries=cfg.max_retries,
        timeout=cfg.timeout_s,
        max_bytes=cfg.max_bytes,
        before_request=before_request,
    )


def store_images_rows(
    rows: list[dict],
    store: str | os.PathLike,
    cfg: ImagesConfig | None = None,
    *,
    local_roots: Iterable[str | os.PathLike] = (),
    fetch: bool = False,
    progress: bool = True,
    session: PoliteSession | None = None,
) -> tuple[list[dict], dict]:
    """Fill the image columns of ``rows`` (dicts with the pairs columns).

    Returns new row dicts (same order, other columns untouched) and a summary:
    ``rows``, ``ok``, ``missing``, ``rejected`` ({reason: count}), ``reused``
    (verified, not touched), ``refetched`` (was ``ok`` but its stored file was
    missing or corrupt), ``written`` (new files in the store), ``processed``
    (distinct images looked at this run). Works on any slice of a table, so a
    flow can map it over shards; shards may share one store (writes are atomic
    and content-addressed).

    ``fetch=True`` allows downloads (needs ``cfg.user_agent``); a local copy
    under ``local_roots`` is always preferred.
    """
    cfg = cfg or ImagesConfig()
    store = Path(store)
    store.mkdir(parents=True, exist_ok=True)
    roots = _checked_roots(local_roots)
    # PIL's own guard (warns above the limit, raises above twice it) matches ours.
    Image.MAX_IMAGE_PIXELS = cfg.max_pixels
    own_session = None
    if fetch and session is None:
        session = own_session = make_session(cfg)

    run = _Run([dict(r) for r in rows], store)
    todo = _plan(run, cfg)
    missing_ref = todo.pop((), None)
    if missing_ref:
        run.apply(missing_ref, _Outcome("missing"))
    try:
        _process_all(run, todo, cfg, roots, session, progress)
    finally:
        if own_session is not None:
            own_session.close()
    _count_statuses(run)
    return run.out, run.summary


def _checked_roots(local_roots: Iterable[str | os.PathLike]) -> list[Path]:
    roots = [Path(r) for r in local_roots]
    for r in roots:
        if not r.is_dir():
            raise CmiscError(f"local image root {r} is not a folder")
    return roots


def _empty_summary(n_rows: int) -> dict:
    return {
        "rows": n_rows,
        "ok": 0,
        "missing": 0,
        "rejected": {},
        "reused": 0,
        "refetched": 0,
        "written": 0,
        "processed": 0,
    }


@dataclass
class _Run:
    """The rows being filled in and the running summary of one ``store_images_rows`` call."""

    out: list[dict]
    store: Path
    summary: dict = field(init=False)

    def __post_init__(self):
        self.summary = _empty_summary(len(self.out))

    def apply(self, indices: list[int], o: _Outcome) -> None:
        """Write one image's outcome into every row that shows it."""
        for i in indices:
            self.out[i].update(
                image_status=o.status,
                image_sha256=o.sha,
                image_path=str(self.store / store_relpath(o.sha)) if o.sha else None,
                image_width=o.width,
                image_height=o.height,
                image_format=o.fmt,
            )


def _plan(run: _Run, cfg: ImagesConfig) -> dict[tuple[str, ...], list[int]]:
    """The images to process: image references -> their rows (each image once).

    Rows whose stored file is intact are counted as reused and left out, and so
    are rejected rows that are not to be tried again.
    """
    todo: dict[tuple[str, ...], list[int]] = {}
    verified: dict[str, bool] = {}  # sha -> intact? (many rows may share one file)
    for i, row in enumerate(run.out):
        if row.get("image_status") == "ok":
            sha = row.get("image_sha256") or ""
            if sha not in verified:
                verified[sha] = stored_ok(run.store, sha)
            if verified[sha]:
                run.summary["reused"] += 1
                continue
            if sha:  # stored by an earlier run, now gone or damaged
                log.warning(
                    "pair %s: stored image %s missing or corrupt; fetching it again",
                    row.get("pair_id"),
                    row.get("image_path"),
                )
                run.summary["refetched"] += 1
            # else: a source marked its local file "ok"; not stored yet
        elif not _should_process(row, cfg):
            continue
        todo.setdefault(_image_refs(row), []).append(i)
    return todo


def _process_all(
    run: _Run,
    todo: dict[tuple[str, ...], list[int]],
    cfg: ImagesConfig,
    roots: list[Path],
    session: PoliteSession | None,
    progress: bool,
) -> None:
    """Process every planned image, on ``cfg.workers`` threads, and apply the outcomes."""
    bar = _progress(len(todo), progress)
    lock = threading.Lock()

    def work(item: tuple[tuple[str, ...], list[int]]) -> None:
        refs, indices = item
        o = _process(refs, run.store, cfg, roots, session)
        with lock:
            run.apply(indices, o)
            run.summary["processed"] += 1
            run.summary["written"] += int(o.written)
            if bar is not None:
                bar.update(1)

    try:
        if cfg.workers <= 1:
            for item in todo.items():
                work(item)
        else:
            with ThreadPoolExecutor(cfg.workers) as pool:
                list(pool.map(work, todo.items()))
    finally:
        if bar is not None:
            bar.close()


def _count_statuses(run: _Run) -> None:
    """Set every row's final status (no status is ``missing``) and count them in the summary."""
    summary = run.summary
    for row in run.out:
        status = row.get("image_status") or "missing"
        row["image_status"] = status
        if status == "ok":
            summary["ok"] += 1
        elif status == "missing":
            summary["missing"] += 1
        else:
            reason = status[len("rejected:") :]
            summary["rejected"][reason] = summary["rejected"].get(reason, 0) + 1


def _progress(total: int, enabled: bool):
    if not enabled or total == 0:
        return None
    from tqdm import tqdm

    return tqdm(total=total, unit="img", desc="images", file=sys.stderr)


def store_images(
    pairs: pa.Table,
    store: str | os.PathLike,
    cfg: ImagesConfig | None = None,
    *,
    local_roots: Iterable[str | os.PathLike] = (),
    fetch: bool = False,
    progress: bool = True,
    session: PoliteSession | None = None,
) -> tuple[pa.Table, dict]:
    """``store_images_rows`` over a whole table; the table keeps its schema."""
    rows, summary = store_images_rows(
        pairs.to_pylist(),
        store,
        cfg,
        local_roots=local_roots,
        fetch=fetch,
        progress=progress,
        session=session,
    )
    return pa.Table.from_pylist(rows, schema=pairs.schema), summary


def merge_summaries(summaries: Iterable[dict]) -> dict:
    """Add up the summaries of several shards."""
    total: dict = {"rejected": {}}
    for s in summaries:
        for k, v in s.items():
            if k == "rejected":
                for reason, n in v.items():
                    total["rejected"][reason] = total["rejected"].get(reason, 0) + n
            else:
                total[k] = total.get(k, 0) + v
    return total


# --------------------------------------------------------------------------- CLI


def cli_main(argv: list[str]) -> int:
    from cmisc_model.config import DEFAULT_PARAMS, load_section
    from cmisc_model.schemas import PAIRS, file_metadata, read_table, write_table

    p = argparse.ArgumentParser(prog="cmisc images", description=__doc__.split("\n\n")[0])
    p.add_argument("--pairs", required=True, help="input pairs Parquet")
    p.add_argument("--out", required=True, help="output pairs Parquet (may equal --pairs)")
    p.add_argument("--store", required=True, help="image store folder (STORE/ab/abcd….jpg)")
    p.add_argument(
        "--local-root",
        action="append",
        default=[],
        metavar="DIR",
        help="folder laid out like upload.wikimedia.org (ROOT/commons/a/ab/Name.jpg), "
        "or holding the files of relative paths; repeatable",
    )
    p.add_argument(
        "--fetch",
        action="store_true",
        help="download what is not found locally (needs images.user_agent)",
    )
    p.add_argument("--retry-rejected", action="store_true", help="try rejected rows again")
    p.add_argument(
        "--params",
        default=str(DEFAULT_PARAMS),
        help="params file with an images section (built-in defaults when it does not exist)",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    args = p.parse_args(argv)

    cfg = (
        load_section(ImagesConfig, "images", args.params)
        if Path(args.params).exists()
        else ImagesConfig()
    )
    if args.retry_rejected:
        cfg = dataclasses.replace(cfg, retry_rejected=True)
    pairs = read_table(args.pairs, PAIRS)
    # keep the input's provenance metadata (the schema tag is written anyway)
    meta = {k: v for k, v in file_metadata(args.pairs).items() if k != "cmisc.schema"}
    table, summary = store_images(
        pairs,
        args.store,
        cfg,
        local_roots=args.local_root,
        fetch=args.fetch,
        progress=not args.no_progress,
    )
    write_table(table, args.out, PAIRS, metadata=meta)
    print(json.dumps(summary, sort_keys=True))
    return 0
