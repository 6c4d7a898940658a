"""Build ``offline.html``: DVC's plots page with Vega, Vega-Lite and Vega-Embed inlined.

``dvc plots show`` writes a page that loads these three scripts from a CDN, so
it is blank without internet. ``.dvc/config`` points ``plots.html_template`` at
``offline.html``, which carries the scripts itself and leaves out DVC's
``{scripts}`` placeholder (the CDN tags). The versions are the ones dvc-render
1.0 asks the CDN for, so the Vega-Lite specs DVC writes render the same.

The built file is committed, so a fresh clone renders offline without npm.
To rebuild it (needs ``npm`` and the npm registry):

    python .dvc/plots/build_template.py
"""

from __future__ import annotations

import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

# package -> the UMD bundle inside its npm tarball
PACKAGES = {
    "vega@5.20.2": "package/build/vega.min.js",
    "vega-lite@5.2.0": "package/build/vega-lite.min.js",
    "vega-embed@6.18.2": "package/build/vega-embed.min.js",
}
OUT = Path(__file__).with_name("offline.html")

PAGE = """<!DOCTYPE html>
<html>
<head>
    {{refresh_tag}}
    <meta charset="utf-8">
    <title>DVC Plot</title>
    <!-- {packages}, inlined by .dvc/plots/build_template.py (BSD-3-Clause,
         University of Washington Interactive Data Lab) so the page renders offline -->
{scripts}
    <style>
        table {{
            border-spacing: 15px;
        }}
    </style>
</head>
<body>
    {{plot_divs}}
</body>
</html>
"""


def bundle(package: str, member: str, workdir: Path) -> str:
    out = subprocess.run(["npm", "pack", "--silent", package], cwd=workdir, check=True,
                         capture_output=True, text=True).stdout.split()[-1]
    with tarfile.open(workdir / out) as tar:
        js = tar.extractfile(member).read().decode("utf-8")
    # an inline script ends at the first "</script"; the bundles have none, and must not
    if "</script" in js.lower() or "{plot_divs}" in js or "{scripts}" in js:
        raise SystemExit(f"{package}: {member} cannot be inlined as it is")
    return js


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        scripts = "\n".join(f"    <script>/* {p} */\n{bundle(p, m, Path(tmp))}\n    </script>"
                            for p, m in PACKAGES.items())
    OUT.write_text(PAGE.format(packages=", ".join(PACKAGES), scripts=scripts), encoding="utf-8")
    print(f"{OUT}: {OUT.stat().st_size // 1024} KiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
