"""The docs hold together: the book (`docs/`, an mdBook) lists every chapter in its
SUMMARY and nothing else, every relative link of the book and the README leads to a file
that exists and to a heading that exists in it, every JSON example parses, the README fits
on a screen, and nothing refers to files outside the repository."""

import json
import re
from pathlib import Path

from conftest import ROOT

BOOK = ROOT / "docs" / "src"
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def chapters():
    return sorted(BOOK.glob("*.md"))


def prose(text: str) -> str:
    """The text outside fenced code blocks."""
    out, fence = [], False
    for line in text.splitlines():
        if line.startswith("```"):
            fence = not fence
            continue
        if not fence:
            out.append(line)
    return "\n".join(out)


def anchor(heading: str) -> str:
    """The id mdBook (and GitHub) give a heading: lower case, punctuation dropped,
    spaces as dashes."""
    text = re.sub(r"[`*_]|\[([^\]]*)\]\([^)]*\)", lambda m: m.group(1) or "", heading.strip()).lower()
    return "".join(c for c in text.replace(" ", "-") if c.isalnum() or c in "-_")


def anchors(path: Path) -> set:
    found = set()
    for line in prose(path.read_text()).splitlines():
        m = re.match(r"^#{1,6} (.*)$", line)
        if m:
            found.add(anchor(m.group(1)))
    return found


def code_blocks(text: str, language: str):
    blocks, current, fence = [], None, None
    for line in text.splitlines():
        if fence is None and line.startswith("```"):
            fence = line[3:].strip()
            current = []
        elif fence is not None and line.startswith("```"):
            if fence == language:
                blocks.append("\n".join(current))
            fence = None
        elif fence is not None:
            current.append(line)
    return blocks


def test_the_summary_lists_every_chapter_and_nothing_else():
    summary = (BOOK / "SUMMARY.md").read_text()
    listed = {target for target in LINK.findall(summary)}
    assert listed == {p.name for p in chapters() if p.name != "SUMMARY.md"}, listed
    assert (ROOT / "docs" / "book.toml").exists()


def test_every_relative_link_leads_somewhere():
    broken = []
    for page in [ROOT / "README.md", *chapters()]:
        for target in LINK.findall(prose(page.read_text())):
            if re.match(r"^[a-z]+:", target):
                continue
            file, _, fragment = target.partition("#")
            dest = (page.parent / file).resolve() if file else page
            if not dest.exists():
                broken.append(f"{page.relative_to(ROOT)}: {target} (no such file)")
            elif fragment and dest.suffix == ".md" and fragment not in anchors(dest):
                broken.append(f"{page.relative_to(ROOT)}: {target} (no such heading)")
    assert not broken, "\n".join(broken)


def test_every_json_example_parses():
    """```json blocks are whole JSON documents; abridged ones (with `...`) say ```jsonc."""
    bad = []
    for page in [ROOT / "README.md", *chapters()]:
        for block in code_blocks(page.read_text(), "json"):
            try:
                json.loads(block)
            except ValueError as err:
                bad.append(f"{page.relative_to(ROOT)}: {err}: {block[:80]!r}")
    assert not bad, "\n".join(bad)


def test_the_readme_fits_on_a_screen_and_nothing_points_outside():
    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) <= 160, len(readme.splitlines())
    for page in [ROOT / "README.md", *chapters()]:
        text = page.read_text()
        assert "../shared" not in text and "ARCHITECTURE.md" not in text, page


def test_every_setting_the_code_reads_is_documented():
    """The configuration reference cannot drift from the code: every environment variable
    the config and the command line read is in the Operating chapter's table (or, for the
    limits, the Security model's), and every `[limits]` key has its row."""
    sources = [*sorted((ROOT / "host" / "src" / "config").glob("*.rs")), ROOT / "host" / "src" / "main.rs",
               *sorted((ROOT / "host" / "src" / "cli").glob("*.rs"))]
    code = "\n".join(p.read_text() for p in sources)
    # A limit's variable is COPRA_LIMITS_<KEY>, as the docs say once: its key has a row below.
    variables = {v for v in re.findall(r'"(COPRA_[A-Z0-9_]+)"', code) if not v.startswith("COPRA_LIMITS")}
    documented = (BOOK / "operating.md").read_text() + (BOOK / "security.md").read_text()
    missing = sorted(v for v in variables if f"`{v}`" not in documented)
    assert not missing, f"settings the code reads that the docs do not name: {missing}"
    limits = re.findall(r'\("([a-z_]+)", "COPRA_LIMITS_[A-Z_]+"\)', code)
    assert len(limits) >= 20, limits
    security = (BOOK / "security.md").read_text()
    undocumented = [key for key in limits if f"| `{key}` |" not in security]
    assert not undocumented, f"[limits] keys without a row in the Security model's table: {undocumented}"


MARK = "<!-- runs in test_docs.py -->"


def marked_examples():
    """The shell blocks that follow MARK, by page: examples that need nothing but a
    server and a video file, run as they are written."""
    found = []
    for page in [ROOT / "README.md", *chapters()]:
        lines = page.read_text().splitlines()
        for i, line in enumerate(lines):
            if line.strip() == MARK:
                assert lines[i + 1].startswith("```sh"), f"{page}: {MARK} must precede a ```sh block"
                end = lines.index("```", i + 2)
                found.append((page.relative_to(ROOT), "\n".join(lines[i + 2:end])))
    return found


def test_the_marked_shell_examples_run_against_a_real_server(copra, tmp_path):
    import os
    import subprocess

    from conftest import COPRA_BIN, KEY_A, make_video
    examples = marked_examples()
    assert len(examples) >= 2, examples
    # The reader's directory: a video, and the key `scripts/run.sh` would have written.
    reader = tmp_path / "reader"
    (reader / "data").mkdir(parents=True)
    (reader / "data" / "api-key").write_text(KEY_A)
    make_video(reader / "video.mp4", size="320x240", duration=2)
    # Every request must succeed: curl fails on an HTTP error, as a reader would notice.
    prelude = "set -euo pipefail\ncurl() { command curl --fail-with-body \"$@\"; }\n"
    for page, block in examples:
        script = block.replace("http://127.0.0.1:8080", copra.url).replace("target/release/copra", str(COPRA_BIN))
        env = dict(os.environ, COPRA_SERVER=copra.url, KEY=KEY_A, XDG_CACHE_HOME=str(tmp_path / "cache"))
        done = subprocess.run(["bash", "-c", prelude + script], cwd=reader, env=env, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, f"{page}:\n{block}\n--- stdout\n{done.stdout[-2000:]}\n--- stderr\n{done.stderr[-2000:]}"
    # The first job's `--download out/`: the MP4 and the whole HLS package (its playlists
    # and every segment they name), playable.
    out = reader / "out"
    assert (out / "mp4_720p.mp4").stat().st_size > 0, list(out.rglob("*"))
    masters = list(out.rglob("master.m3u8"))
    assert masters and list(out.rglob("*.m4s")) + list(out.rglob("*.ts")), list(out.rglob("*"))
    from conftest import ffprobe
    assert any(s["codec_type"] == "video" for s in ffprobe(masters[0])["streams"])
