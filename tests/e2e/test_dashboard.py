"""The web dashboard in a real browser: Debian's Chromium, headless, driven by Playwright
against the real `copra serve`. A user logs in (a wrong key is refused on screen),
plans and submits a job (MP4 + HLS + thumbnails on the `local` storage), watches its
progress bar move to 100 % as the event stream reports it, plays the HLS output (the
video's currentTime advances) and sees the thumbnails render; an operator uploads and
removes a plugin. Screenshots are saved under the test's tmp dir and, if COPRA_ARTIFACTS
is set, there too."""

import json
import os
import shutil
import uuid
from pathlib import Path

import pytest
import requests

from conftest import ADMIN_KEY, KEY_A, KEY_B, PLUGIN_DIR, make_video, wait_until

from playwright import sync_api as playwright_api  # tests/requirements.txt

CHROMIUM = Path(os.environ.get("COPRA_CHROMIUM", "/usr/bin/chromium"))
MS = 1000

# Records every value each progress bar shows, from before the page's own code runs.
RECORD_PROGRESS = """
window.__progress = [];
new MutationObserver((changes) => {
  for (const c of changes) {
    if (c.target.matches && c.target.matches('progress.job-progress')) {
      window.__progress.push(Number(c.target.getAttribute('value')));
    }
  }
}).observe(document, {subtree: true, attributes: true, attributeFilter: ['value']});
"""


@pytest.fixture()
def browser():
    assert CHROMIUM.exists(), f"{CHROMIUM} is missing (scripts/setup.sh --tests installs Debian's chromium)"
    with playwright_api.sync_playwright() as p:
        # Root (CI) cannot use Chromium's sandbox.
        b = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=["--no-sandbox", "--autoplay-policy=no-user-gesture-required"])
        yield b
        b.close()


class Shots:
    """Saves screenshots under the test's tmp dir and COPRA_ARTIFACTS (if set)."""

    def __init__(self, tmp_path):
        self.dirs = [tmp_path / "screenshots"]
        if os.environ.get("COPRA_ARTIFACTS"):
            self.dirs.append(Path(os.environ["COPRA_ARTIFACTS"]) / "dashboard")
        for d in self.dirs:
            d.mkdir(parents=True, exist_ok=True)

    def __call__(self, page, name):
        first = self.dirs[0] / f"{name}.png"
        page.screenshot(path=str(first), full_page=True)
        for d in self.dirs[1:]:
            shutil.copy(first, d / first.name)
        assert first.stat().st_size > 1000
        return first


def open_page(browser, url, problems, viewport=None):
    context = browser.new_context(viewport=viewport or {"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(30 * MS)
    page.add_init_script(RECORD_PROGRESS)
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    page.goto(url)
    return page


def wait_js(page, expression, timeout):
    """Polls a page expression (page.evaluate runs outside the page's CSP, which forbids
    the eval that Playwright's wait_for_function uses)."""
    return wait_until(lambda: page.evaluate(expression), timeout, expression, interval=0.2)


def csp_violations(problems):
    return [p for p in problems if "Content Security Policy" in p or "page error" in p]


def test_dashboard_headers(copra):
    page = requests.get(f"{copra.url}/", timeout=10)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    csp = page.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert page.headers["x-content-type-options"] == "nosniff"
    script = requests.get(f"{copra.url}/ui/app.js", timeout=10)
    assert script.status_code == 200 and script.headers["content-type"].startswith("text/javascript")
    assert script.headers["content-security-policy"] == csp
    assert requests.get(f"{copra.url}/ui/nope.js", timeout=10).status_code == 404
    listed = requests.get(f"{copra.url}/v2/jobs", auth=("wrong", ""), timeout=10)
    assert listed.status_code == 401 and listed.json()["error_code"] == "authentication_failed"
    assert listed.headers["www-authenticate"].startswith("Basic")
    # A page's script gets the 401 without the challenge, so the browser shows no login box.
    scripted = requests.get(f"{copra.url}/v2/jobs", auth=("wrong", ""), headers={"Sec-Fetch-Dest": "empty"}, timeout=10)
    assert scripted.status_code == 401 and "www-authenticate" not in scripted.headers
    bad = requests.get(f"{copra.url}/v2/jobs?limit=0", auth=(KEY_A, ""), timeout=10)
    assert bad.status_code == 400 and bad.json()["status"] == "error"


def test_login_submit_watch_play_and_thumbnails(copra, browser, media_server, webhooks, tmp_path):
    shots = Shots(tmp_path)
    problems = []
    page = open_page(browser, f"{copra.url}/", problems)

    # A wrong key is refused on screen, and nothing is kept.
    page.get_by_label("API key").fill("not-a-key")
    page.get_by_role("button", name="Log in").click()
    alert = page.get_by_role("alert")
    playwright_api.expect(alert).to_contain_text("refused")
    playwright_api.expect(alert).to_contain_text("authentication_failed")
    assert page.evaluate("sessionStorage.getItem('copra.apiKey')") is None
    shots(page, "01-login-refused")

    page.get_by_label("API key").fill(KEY_A)
    page.get_by_role("button", name="Log in").click()
    playwright_api.expect(page.get_by_role("heading", name="Jobs")).to_be_visible()

    # Plan first: the dry run shows each output's plan; only then can it be submitted.
    name = "dash-" + uuid.uuid4().hex[:8]
    job = {
        "input": {"url": f"{media_server}/input.mp4"},
        "storage": {"service": "local", "path": f"/{name}"},
        "notification": {"type": "http", "url": f"{webhooks.url}/{name}", "events": True},
        "outputs": {
            "mp4:360p": {"path": "video.mp4"},
            "httpstream": {"hls": {"path": "/hls"}, "variants": ["mp4:360p", "mp4:240p"]},
            "jpg:320x": {"path": "thumbs/thumb_%02d.jpg", "number": 3},
        },
    }
    page.get_by_role("link", name="Submit a job").first.click()
    page.get_by_label("Job (JSON").fill(json.dumps(job, indent=2))
    submit = page.get_by_role("button", name="Submit job")
    playwright_api.expect(submit).to_be_disabled()
    page.get_by_role("button", name="Plan (dry run)").click()
    plan = page.locator("#plan-table")
    playwright_api.expect(plan).to_be_visible(timeout=60 * MS)
    for key in job["outputs"]:
        playwright_api.expect(plan.locator(f"tr[data-output='{key}']")).to_contain_text("planned")
    playwright_api.expect(plan.locator("tr[data-output='mp4:360p']")).to_contain_text("×360")
    playwright_api.expect(submit).to_be_enabled()
    shots(page, "02-dry-run-plan")
    assert requests.get(f"{copra.url}/v2/jobs", auth=(KEY_A, ""), timeout=10).json()["jobs"] == [], "a dry run submits nothing"

    submit.click()
    page.wait_for_url("**/#/jobs/*")
    job_id = page.url.rsplit("/", 1)[1]
    assert requests.get(f"{copra.url}/v2/jobs/{job_id}", auth=(KEY_A, ""), timeout=10).status_code == 200
    # The list is the tenant's own: another key sees none of it.
    assert [j["id"] for j in requests.get(f"{copra.url}/v2/jobs", auth=(KEY_A, ""), timeout=10).json()["jobs"]] == [job_id]
    assert requests.get(f"{copra.url}/v2/jobs", auth=(KEY_B, ""), timeout=10).json()["jobs"] == []

    # The bar moves as the event stream reports progress, and ends at 100 % completed.
    state = page.locator(".job-state")
    playwright_api.expect(state.locator("[data-status='job.completed']")).to_be_visible(timeout=240 * MS)
    values = page.evaluate("window.__progress")
    between = {v for v in values if 0 < v < 100}
    assert values and values[-1] == 100, values
    assert len(between) >= 2 or values[-1] == 100, values
    print(f"progress values seen: {values}")
    playwright_api.expect(state.locator("progress")).to_have_attribute("value", "100")
    shots(page, "03-job-completed")

    # The HLS output plays in hls.js: currentTime advances.
    hls = page.locator("video[data-format='hls']")
    playwright_api.expect(hls).to_have_count(1)
    wait_js(page, "document.querySelector(\"video[data-format='hls']\").readyState >= 2", 60)
    hls.evaluate("v => v.play()")
    wait_js(page, "document.querySelector(\"video[data-format='hls']\").currentTime > 1", 60)
    playing = hls.evaluate("v => ({t: v.currentTime, w: v.videoWidth, h: v.videoHeight, d: v.duration})")
    assert playing["w"] > 0 and playing["h"] > 0 and playing["d"] > 4, playing

    # The MP4 plays from a blob fetched with the key; the thumbnails render.
    wait_js(page, "document.querySelector(\"video[data-format='file']\").readyState >= 1", 60)
    mp4 = page.locator("video[data-format='file']").evaluate("v => ({h: v.videoHeight, d: v.duration, src: v.src})")
    assert mp4["h"] == 360 and mp4["d"] > 4 and mp4["src"].startswith("blob:"), mp4
    thumbs = page.locator("img.thumb")
    playwright_api.expect(thumbs).to_have_count(3)
    wait_js(page, "[...document.querySelectorAll('img.thumb')].every(i => i.complete && i.naturalWidth > 0)", 30)
    assert set(thumbs.evaluate_all("imgs => imgs.map(i => i.naturalWidth)")) == {320}

    # Metadata, events and the webhook-delivery log are on the page.
    page.locator("details[data-key='source'] summary").click()
    playwright_api.expect(page.locator("details[data-key='source'] pre")).to_contain_text("codec_name")
    playwright_api.expect(page.locator("#events li[data-event='job.completed']")).to_have_count(1)
    playwright_api.expect(page.locator("#webhooks-table")).to_contain_text("job.completed")
    shots(page, "04-job-outputs")

    # The jobs list shows it, done; on a phone the page does not scroll sideways.
    page.get_by_role("link", name="Jobs", exact=True).click()
    row = page.locator(f"#jobs-table tr[data-job-id='{job_id}']")
    playwright_api.expect(row.locator("[data-status='job.completed']")).to_be_visible()
    playwright_api.expect(row.locator("progress")).to_have_attribute("value", "100")
    page.set_viewport_size({"width": 390, "height": 844})
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")
    shots(page, "05-jobs-list-phone")
    row.get_by_role("link", name=job_id).click()
    playwright_api.expect(page.locator("video[data-format='hls']")).to_have_count(1)
    playwright_api.expect(page.locator("#webhooks-table")).to_contain_text("job.completed")
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")
    shots(page, "05b-job-phone")

    assert csp_violations(problems) == [], problems


def test_jobs_list_follows_a_running_job(copra, browser, media_server, tmp_path):
    """The list's bar is driven by the job's event stream: it moves without a reload."""
    shots = Shots(tmp_path)
    problems = []
    page = open_page(browser, f"{copra.url}/", problems)
    page.get_by_label("API key").fill(KEY_A)
    page.get_by_role("button", name="Log in").click()
    playwright_api.expect(page.get_by_role("heading", name="Jobs")).to_be_visible()
    created = copra.post_job({"input": {"url": f"{media_server}/long.mp4"}, "storage": {"service": "local", "path": "/list"},
                              "outputs": {"mp4:720p": {"path": "long.mp4"}}})
    assert created.status_code == 201, created.text
    job_id = created.json()["id"]
    page.get_by_role("button", name="Refresh").click()
    row = page.locator(f"#jobs-table tr[data-job-id='{job_id}']")
    playwright_api.expect(row.locator("[data-status='job.completed']")).to_be_visible(timeout=240 * MS)
    values = page.evaluate("window.__progress")
    print(f"list progress values seen: {values}")
    # A 20 s input takes long enough that the stream's ticks show the bar on its way.
    assert len({v for v in values if 0 < v < 100}) >= 2, values
    assert values[-1] == 100, values
    shots(page, "06-jobs-list-live")
    assert csp_violations(problems) == [], problems


def test_admin_uploads_and_removes_a_plugin(copra, browser, tmp_path):
    shots = Shots(tmp_path)
    problems = []
    page = open_page(browser, f"{copra.url}/#/admin", problems)
    page.get_by_label("Admin key", exact=True).fill(KEY_A)  # a job key is not the admin key
    page.get_by_role("button", name="Open plugins").click()
    playwright_api.expect(page.get_by_role("alert")).to_contain_text("refused")
    page.get_by_label("Admin key", exact=True).fill(ADMIN_KEY)
    page.get_by_role("button", name="Open plugins").click()
    table = page.locator("#plugins-table")
    playwright_api.expect(table.locator("tr[data-plugin='format-video']")).to_contain_text("format")

    name = "dash-cond-" + uuid.uuid4().hex[:6]
    component = tmp_path / f"{name}.wasm"
    shutil.copy(PLUGIN_DIR / "condition-expr.wasm", component)
    page.get_by_label("Name", exact=True).fill(name)
    page.get_by_label("Component (.wasm)").set_input_files(str(component))
    page.get_by_role("button", name="Upload").click()
    row = table.locator(f"tr[data-plugin='{name}']")
    playwright_api.expect(row).to_contain_text("condition")
    playwright_api.expect(row).to_contain_text("uploaded")
    shots(page, "07-plugin-uploaded")
    listed = requests.get(f"{copra.url}/admin/plugins", auth=(ADMIN_KEY, ""), timeout=10).json()["plugins"]
    assert name in {p["name"] for p in listed}

    remove = page.get_by_role("button", name=f"Remove plugin {name}")
    remove.click()
    playwright_api.expect(remove).to_have_text("Confirm removal")
    remove.click()
    playwright_api.expect(page.get_by_role("status")).to_contain_text(f"Removed plugin {name}")
    playwright_api.expect(row).to_have_count(0)
    listed = requests.get(f"{copra.url}/admin/plugins", auth=(ADMIN_KEY, ""), timeout=10).json()["plugins"]
    assert name not in {p["name"] for p in listed}

    # A component that is not one is refused with the API's message.
    junk = tmp_path / "junk.wasm"
    junk.write_bytes(b"\0asm not really")
    page.get_by_label("Name", exact=True).fill("junk")
    page.get_by_label("Component (.wasm)").set_input_files(str(junk))
    page.get_by_role("button", name="Upload").click()
    playwright_api.expect(page.get_by_role("alert")).to_contain_text("plugin_not_valid")
    shots(page, "08-plugin-rejected")
    assert csp_violations(problems) == [], problems


def test_job_data_is_shown_as_text(copra, browser, media_dir, media_server, tmp_path):
    """Job data is text on the page: markup in an input's tags (shown in its metadata) is
    shown as written and never becomes an element or runs; a failed job says why."""
    shots = Shots(tmp_path)
    problems = []
    markup = '<img src=x id=injected onerror=window.__injected=1>'
    make_video(media_dir / "tagged.mp4", size="320x240", duration=2, extra=("-metadata", f"title={markup}"))
    tagged = copra.post_job({"input": {"url": f"{media_server}/tagged.mp4"},
                             "storage": {"service": "local", "path": "/tagged"}, "outputs": {"jpg:160x": {"path": "t.jpg"}}})
    failed = copra.post_job({"input": {"url": f"{media_server}/missing.mp4"},
                             "storage": {"service": "local", "path": "/failed"}, "outputs": {"mp4:240p": {"path": "x.mp4"}}})
    assert tagged.status_code == failed.status_code == 201, (tagged.text, failed.text)
    tagged, failed = tagged.json()["id"], failed.json()["id"]
    assert copra.wait_job(tagged)["status"] == "job.completed"
    assert copra.wait_job(failed)["status"] == "job.failed"

    page = open_page(browser, f"{copra.url}/", problems)
    page.get_by_label("API key").fill(KEY_A)
    page.get_by_role("button", name="Log in").click()
    page.locator(f"#jobs-table a[href='#/jobs/{tagged}']").click()
    page.locator("details[data-key='source'] summary").click()
    playwright_api.expect(page.locator("details[data-key='source'] pre")).to_contain_text(markup)
    assert page.locator("#injected").count() == 0 and page.evaluate("window.__injected") is None

    page.get_by_role("link", name="Jobs", exact=True).click()
    page.locator(f"#jobs-table a[href='#/jobs/{failed}']").click()
    playwright_api.expect(page.locator(".job-state [data-status='job.failed']")).to_be_visible()
    playwright_api.expect(page.locator("#input-error")).to_contain_text("404")
    shots(page, "09-job-failed")
    assert csp_violations(problems) == [], problems


# A File dropped on an element, as a browser's drag and drop delivers it.
DROP_FILE = """([b64, name]) => {
  const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
  const transfer = new DataTransfer();
  transfer.items.add(new File([bytes], name, {type: 'video/mp4'}));
  return transfer;
}"""


def test_drop_a_file_upload_it_plan_and_submit(copra, browser, tmp_path):
    import base64
    shots = Shots(tmp_path)
    problems = []
    video = tmp_path / "dropped.mp4"
    make_video(video, size="640x360", duration=3)
    page = open_page(browser, f"{copra.url}/", problems)
    page.get_by_label("API key").fill(KEY_A)
    page.get_by_role("button", name="Log in").click()
    playwright_api.expect(page.get_by_role("heading", name="Jobs")).to_be_visible()
    page.get_by_role("link", name="Submit a job").first.click()

    transfer = page.evaluate_handle(DROP_FILE, [base64.b64encode(video.read_bytes()).decode(), "dropped.mp4"])
    page.dispatch_event("#drop-zone", "drop", {"dataTransfer": transfer})
    playwright_api.expect(page.locator("#drop-zone")).to_contain_text("Uploaded dropped.mp4", timeout=60 * MS)
    assert page.evaluate("document.querySelector('#upload-progress').value") == video.stat().st_size
    job = json.loads(page.get_by_label("Job (JSON").input_value())
    upload_id = job["input"]["upload"]
    # The server has the file, byte for byte, as this key's upload.
    state = requests.get(f"{copra.url}/v2/uploads/{upload_id}", auth=(KEY_A, ""), timeout=10).json()
    assert state["finished"] and state["length"] == video.stat().st_size and state["filename"] == "dropped.mp4", state
    assert requests.get(f"{copra.url}/v2/uploads/{upload_id}", auth=(KEY_B, ""), timeout=10).status_code == 404

    page.get_by_label("Outputs").select_option("MP4 360p + thumbnails")
    job = json.loads(page.get_by_label("Job (JSON").input_value())
    assert set(job["outputs"]) == {"mp4:360p", "jpg:320x"} and job["input"] == {"upload": upload_id}
    page.get_by_role("button", name="Plan (dry run)").click()
    plan = page.locator("#plan-table")
    playwright_api.expect(plan.locator("tr[data-output='mp4:360p']")).to_contain_text("planned", timeout=60 * MS)
    shots(page, "10-dropped-file-planned")
    page.get_by_role("button", name="Submit job").click()
    page.wait_for_url("**/#/jobs/*")
    job_id = page.url.rsplit("/", 1)[1]
    done = copra.wait_job(job_id, timeout=180)
    assert done["status"] == "job.completed", done
    assert not csp_violations(problems), problems


def test_the_job_page_charts_each_outputs_vmaf(copra, browser, media_server, tmp_path):
    """A job measured with VMAF: its page draws each output's per-frame VMAF (a point a
    frame for a short clip), labelled with the figures of the output's metadata."""
    shots = Shots(tmp_path)
    problems = []
    created = copra.post_job({"input": {"url": f"{media_server}/input.mp4"}, "storage": {"service": "local", "path": "/charts"},
                              "settings": {"metrics": ["vmaf"]},
                              "outputs": {"mp4:240p": {"path": "small.mp4"}, "mp4:360p": {"path": "larger.mp4"}}})
    assert created.status_code == 201, created.text
    job_id = created.json()["id"]
    final = copra.wait_job(job_id, timeout=240)
    assert final["status"] == "job.completed", final
    metadata = requests.get(f"{copra.url}/v2/metadata/jobs/{job_id}", auth=(KEY_A, ""), timeout=10).json()
    page = open_page(browser, f"{copra.url}/", problems)
    page.get_by_label("API key").fill(KEY_A)
    page.get_by_role("button", name="Log in").click()
    playwright_api.expect(page.get_by_role("heading", name="Jobs")).to_be_visible()
    page.locator(f"#jobs-table tr[data-job-id='{job_id}']").get_by_role("link", name=job_id).click()
    playwright_api.expect(page.get_by_role("heading", name="Quality")).to_be_visible(timeout=30 * MS)
    for key in ("mp4:240p", "mp4:360p"):
        vmaf = metadata[key]["quality"]["vmaf"]
        chart = page.locator(f"svg[data-chart='vmaf'][data-output='{key}']")
        playwright_api.expect(chart).to_be_visible()
        assert f"mean {vmaf['mean']}" in chart.get_attribute("aria-label")
        points = chart.locator("polyline").get_attribute("points").split()
        assert vmaf["series_step"] == 1 and len(points) == len(vmaf["series"]) == metadata[key]["quality"]["frames"] == 125
        # The line follows the scores: its lowest point is the worst frame.
        ys = [float(p.split(",")[1]) for p in points]
        assert ys.index(max(ys)) == vmaf["series"].index(min(vmaf["series"]))
    shots(page, "08-quality-charts")
    assert csp_violations(problems) == [], problems


def test_the_job_page_draws_a_planned_ladder(copra, browser, media_server, tmp_path):
    """A package whose ladder was planned from the content: its page draws every probe
    (VMAF over bit rate) and marks each rung kept, with the metadata's figures."""
    shots = Shots(tmp_path)
    problems = []
    created = copra.post_job({"input": {"url": f"{media_server}/input.mp4"}, "storage": {"service": "local", "path": "/ladder"},
                              "outputs": {"httpstream": {"hls": {"path": "hls"}, "variants": "auto"}}})
    assert created.status_code == 201, created.text
    job_id = created.json()["id"]
    final = copra.wait_job(job_id, timeout=240)
    assert final["status"] == "job.completed", final
    metadata = requests.get(f"{copra.url}/v2/metadata/jobs/{job_id}", auth=(KEY_A, ""), timeout=10).json()
    ladder = metadata["httpstream"]["quality"]["ladder"]
    page = open_page(browser, f"{copra.url}/", problems)
    page.get_by_label("API key").fill(KEY_A)
    page.get_by_role("button", name="Log in").click()
    playwright_api.expect(page.get_by_role("heading", name="Jobs")).to_be_visible()
    page.locator(f"#jobs-table tr[data-job-id='{job_id}']").get_by_role("link", name=job_id).click()
    chart = page.locator("svg[data-chart='ladder'][data-output='httpstream']")
    playwright_api.expect(chart).to_be_visible(timeout=30 * MS)
    assert chart.locator("circle[data-probe]").count() == len(ladder["probes"]) > 0
    assert [g.get_attribute("data-rung") for g in chart.locator("g[data-rung]").all()] == [r["name"] for r in ladder["rungs"]]
    assert f"{len(ladder['rungs'])} rungs planned from {len(ladder['probes'])} probes" in chart.get_attribute("aria-label")
    shots(page, "11-ladder-chart")
    assert csp_violations(problems) == [], problems
