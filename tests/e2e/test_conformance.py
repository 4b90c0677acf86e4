"""`copra plugins test FILE.wasm`, the plugin conformance kit, run as a plugin author runs
it (no server): every first-party and example plugin passes; plugins that break the
contract (the hostile test plugins) fail it, on the rows that name what they broke."""

import subprocess

import pytest

from conftest import COPRA_BIN, PLUGIN_DIR, ROOT

TEST_PLUGINS = ROOT / "tests" / "plugins" / "dist"
FIRST_PARTY = sorted(PLUGIN_DIR.glob("*.wasm"))
EXAMPLES = sorted(p for p in TEST_PLUGINS.glob("*.wasm") if not p.name.startswith("hostile-"))


def kit(path, *args, config=None, cwd=None):
    command = [str(COPRA_BIN), *(["--config", str(config)] if config else []), "plugins", "test", str(path), *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=cwd)


def rows(out: str) -> dict:
    """CHECK -> (ok?, detail) from the kit's table."""
    table = {}
    for line in out.splitlines()[1:]:
        for mark in ("  ok  ", "  FAIL  "):
            if mark in line:
                check, rest = line.split(mark, 1)
                table[check.strip()] = (mark.strip() == "ok", rest.strip())
                break
    return table


def test_the_kit_covers_what_it_says():
    assert FIRST_PARTY and EXAMPLES, "plugins are built (scripts/build-plugins.sh, scripts/build-test-plugins.sh)"


@pytest.mark.parametrize("path", FIRST_PARTY + EXAMPLES, ids=lambda p: p.stem)
def test_first_party_and_example_plugins_pass(path, tmp_path):
    done = kit(path, cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    table = rows(done.stdout)
    assert table["loads"][0] and table["describe"][0], done.stdout
    assert len(table) >= 5 and all(ok for ok, _ in table.values()), done.stdout
    assert not (tmp_path / "data").exists(), "the kit needs no data directory"


def test_format_video_is_planned_for_every_fixture():
    table = rows(kit(PLUGIN_DIR / "format-video.wasm").stdout)
    for fixture in ("sd", "hd", "4k", "rotated", "hdr", "audio-only"):
        assert table[f"plan mp4 for {fixture}"][0], fixture
    assert "format_not_valid" in table["check mp4:zz_not_a_part_zz"][1]
    # A package planned from the content: its ladder is planned against stand-in
    # measurements and settles on rungs the host's plan check accepts.
    auto = {check: row for check, row in table.items() if check.startswith('plan httpstream {"hls"') and "plan-ladder" in check}
    settled = [row for check, row in auto.items() if "for hd:" in check and "settled on" in row[1]]
    assert settled and all(ok for ok, _ in auto.values()), auto


def test_hostile_searches_run_within_the_hosts_bounds():
    """The kit runs a plan's target-quality search against stand-in measurements: the
    hostile plugin's endless search passes 4 rounds, each within bounds, then is refused."""
    table = rows(kit(TEST_PLUGINS / "hostile-format.wasm").stdout)
    for round in range(1, 5):
        assert table[f"plan endlessprobes for hd: search-quality round {round}"][0], round
    assert "more than 4 rounds" in table["plan endlessprobes for hd: search-quality round 5"][1]
    assert "10000 settings" in table["plan manyprobes for hd: search-quality round 1"][1]
    assert "10000 probes" in table["plan manyladderprobes for hd: plan-ladder round 1"][1]
    assert not table["plan manyladderrungs for hd: plan-ladder round 2"][0]
    assert "1000 variants" in table["plan manyladderrungs for hd: plan-ladder round 2"][1]
    # A refusal with a code only the host answers with is a failure, saying why.
    assert not table["check forge"][0] and "does not pass on" in table["check forge"][1], table["check forge"]


@pytest.mark.parametrize("plugin,broken", [
    ("hostile-condition", ["check '(((' (malformed)"]),
    ("hostile-format", ["plan giant for hd: host's plan check", "check fine:zz_not_a_part_zz",
                        # Refused with a code only the host answers with.
                        "check forge",
                        # Target-quality searches: 10,000 probes at once, and one that never settles.
                        "plan manyprobes for hd: search-quality round 1", "plan endlessprobes for hd: search-quality round 5"]),
    ("hostile-storage", ["object-key climb", "object-key longkey"]),
])
def test_plugins_that_break_the_contract_fail(plugin, broken):
    done = kit(TEST_PLUGINS / f"{plugin}.wasm")
    assert done.returncode != 0, done.stdout
    table = rows(done.stdout)
    for check in broken:
        assert table[check][0] is False, (check, done.stdout)
    assert "failed" in done.stderr, done.stderr


def test_the_grants_of_config_apply_and_a_plugin_past_them_fails(tmp_path):
    """The kit runs under the default grants, or those of --config: the JavaScript
    condition (a whole engine in WebAssembly) passes with the defaults and fails, saying
    why, under a 2 MiB memory grant."""
    wasm = tmp_path / "js-condition.wasm"
    subprocess.run([str(ROOT / "examples" / "plugins" / "js-condition" / "build.sh"), str(wasm)], check=True)
    roomy = kit(wasm)
    assert roomy.returncode == 0, roomy.stdout + roomy.stderr
    assert rows(roomy.stdout)["check 'landscape and hd'"][0]
    config = tmp_path / "copra.toml"
    config.write_text("[plugins.js-condition]\nmemory_mib = 2\n")
    tight = kit(wasm, config=config)
    assert tight.returncode != 0, tight.stdout
    assert "memory" in (tight.stdout + tight.stderr).lower(), tight.stdout + tight.stderr
