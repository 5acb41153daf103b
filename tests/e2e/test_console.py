"""The web console in a real headless Chromium (Debian's chromium + chromedriver, driven by Selenium),
against a real `python -m emulator serve` of the synthesized template: the training machine's graph
has a node per state; an execution started from the page runs and its states turn colour while it
runs; a failed execution shows the failing state red with its error and cause, and an error cause
with HTML in it as text; the endpoint's variants and its invocation metrics, the registry's packages
with their evaluation, reports as they land in S3; a model approved on the registry page lets the
execution waiting on it deploy; a cross-site form or fetch cannot start anything.

Screenshots of each page go to tests/output/console/ (looked at by a person: they must be readable);
CONSOLE_README_SCREENSHOT=1 also refreshes docs/console/execution.png, the README's.

The browser is Debian's, never downloaded: `make test` installs it in CI; without it the tests skip
locally and fail in CI (CI=true).
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import boto3
import pytest

from e2e.test_approvals import ENDPOINT, SETTINGS, Deployment

PROJECT_ROOT = Path(__file__).resolve().parents[2]
SHOTS = PROJECT_ROOT / "tests" / "output" / "console"
README_SHOT = PROJECT_ROOT / "docs" / "console" / "execution.png"
CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")


def _need_browser() -> None:
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.exists()]
    if not missing:
        return
    why = (f"{', '.join(missing)} missing: the console's browser tests need Debian's chromium and chromium-driver "
           "(`apt-get install -y chromium chromium-driver`, which `make test` runs as root)")
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"CI: {why}")
    pytest.skip(why)


@pytest.fixture(scope="module")
def browser():
    _need_browser()
    os.environ["SE_OFFLINE"] = "true"  # Selenium Manager must not fetch a browser or driver
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    options.binary_location = str(CHROMIUM)
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                     "--window-size=1600,1000", "--lang=en-US"):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    driver.set_script_timeout(30)
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def world(assembly, tmp_path_factory):
    deployment = Deployment(assembly, tmp_path_factory.mktemp("console"))
    deployment.console = deployment.serve.urls["Console"]
    yield deployment
    deployment.serve.stop()


def wait_for(driver, script: str, timeout: float = 30, what: str = ""):
    """Polls a JavaScript expression until it is truthy; returns its value."""
    deadline = time.monotonic() + timeout
    while True:
        value = driver.execute_script("return " + script)
        if value:
            return value
        if time.monotonic() > deadline:
            errors = driver.execute_script("const e = document.getElementById('page-error'); return e && e.textContent")
            raise AssertionError(f"timed out waiting for {what or script} (page error: {errors})")
        time.sleep(0.1)


def screenshot(driver, name: str, *, full_graph: bool = False) -> Path:
    """The page as a PNG in tests/output/console/ (the whole graph when ``full_graph``)."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / name
    if full_graph:
        driver.execute_script("document.querySelectorAll('.graph-wrap').forEach(e => e.classList.add('full'))")
        width, height = driver.execute_script(
            "const s = document.getElementById('graph'); const r = s.getBoundingClientRect();"
            "return [Math.max(document.documentElement.scrollWidth, r.right + 40), document.documentElement.scrollHeight]")
        shot = driver.execute_cdp_cmd("Page.captureScreenshot", {
            "format": "png", "captureBeyondViewport": True,
            "clip": {"x": 0, "y": 0, "width": width, "height": height, "scale": 0.5}})
        path.write_bytes(base64.b64decode(shot["data"]))
        driver.execute_script("document.querySelectorAll('.graph-wrap').forEach(e => e.classList.remove('full'))")
    else:
        driver.save_screenshot(str(path))
    return path


def states_of(definition: dict) -> set[str]:
    names = set()
    for name, state in definition["States"].items():
        names.add(name)
        for branch in state.get("Branches", []):
            names |= states_of(branch)
        inner = state.get("ItemProcessor") or state.get("Iterator")
        if inner:
            names |= states_of(inner)
    return names


def definition_of(world) -> dict:
    return json.loads(world.serve.sfn.describe_state_machine(stateMachineArn=world.machine)["definition"])


def open_page(driver, world, fragment: str) -> None:
    driver.get("about:blank")  # a fresh page load each time, even for the URL already shown
    driver.get(world.console + "#/" + fragment)
    wait_for(driver, f"document.body.dataset.shown === {json.dumps('#/' + fragment)}", what=f"page {fragment}")
    errors = driver.find_elements("id", "page-error")
    assert not errors, f"page {fragment}: {errors[0].text}"


# -- the tests -------------------------------------------------------------------------------------
def test_the_training_machine_is_drawn_with_a_node_per_state(world, browser):
    open_page(browser, world, "")
    assert browser.find_element("css selector", "[data-machine] a").text == world.machine.split(":")[-1]
    screenshot(browser, "state-machines.png")
    open_page(browser, world, "machine/" + world.machine)
    wait_for(browser, "document.querySelectorAll('#graph .node[data-state]').length > 0", what="the graph")
    drawn = set(browser.execute_script(
        "return [...document.querySelectorAll('#graph .node[data-state]')].map(n => n.getAttribute('data-state'))"))
    assert drawn == states_of(definition_of(world))
    kinds = browser.execute_script("return [...new Set([...document.querySelectorAll('#graph .edge')].map(e => e.getAttribute('class')))]")
    assert {"edge next", "edge catch", "edge choice", "edge default"} <= set(kinds)
    assert browser.find_elements("css selector", "#graph .cluster")  # the Parallel state's branches
    screenshot(browser, "state-machine.png")
    screenshot(browser, "state-machine-graph.png", full_graph=True)
    browser.find_element("id", "zoom-fit").click()  # the whole graph at once, scaled to the page
    assert browser.execute_script("return Number(document.getElementById('graph').getAttribute('width')) <= "
                                  "document.getElementById('graph-box').clientWidth")
    screenshot(browser, "state-machine-whole.png")


def test_an_execution_started_from_the_page_runs_live_and_is_approved_on_the_registry_page(world, browser):
    open_page(browser, world, "machine/" + world.machine)
    browser.find_element("id", "start-execution").click()
    editor = browser.find_element("id", "execution-input")
    prefilled = json.loads(editor.get_property("value"))
    assert "input_s3_uri" in prefilled  # the machine's configured defaults, with the input it needs
    # approval_mode manual: the execution waits for a person, who approves on the registry page
    browser.execute_script("arguments[0].value = arguments[1]", editor, json.dumps(
        {"input_s3_uri": world.data, **SETTINGS, "approval_mode": "manual", "approval_timeout_seconds": 600}, indent=2))
    browser.find_element("id", "execution-name").send_keys("from-the-console")
    browser.find_element("id", "start-submit").click()
    wait_for(browser, "location.hash.startsWith('#/execution/')", what="the execution page")
    wait_for(browser, "document.querySelector('#execution-status [data-badge]') !== null")
    # live: while the badge still says RUNNING, states already show what happened to them
    seen_live = wait_for(browser, """(() => {
        const badge = document.querySelector('#execution-status [data-badge]');
        const done = document.querySelectorAll('#graph .node[data-status=succeeded]').length;
        const running = document.querySelectorAll('#graph .node[data-status=running]').length;
        return badge && badge.dataset.badge === 'RUNNING' && done >= 3 && running >= 1 ? [done, running] : null;
    })()""", timeout=120, what="succeeded and running states while the execution runs")
    assert seen_live[0] >= 3
    screenshot(browser, "execution-running.png")
    arn = world.serve.sfn.list_executions(stateMachineArn=world.machine)["executions"][0]["executionArn"]
    assert world.serve.sfn.describe_execution(executionArn=arn)["name"] == "from-the-console"
    world.wait_for_approval_request(arn)
    approval = next(name for name, state in _all_states(definition_of(world)).items()
                    if state.get("Resource", "").endswith(".waitForTaskToken"))
    wait_for(browser, f"document.querySelector('#graph .node[data-state={json.dumps(approval)}]').dataset.status === 'running'",
             what=f"{approval}, running while it waits")
    screenshot(browser, "execution-waiting-for-approval.png")

    # the registry page approves the package the execution waits on (UpdateModelPackage)
    package = world.package(arn)["ModelPackageArn"]
    open_page(browser, world, "registry")
    row = browser.find_element("css selector", f"[data-decide='{package}']")
    row.find_element("css selector", "input.reason").send_keys("good on <b>old</b> shells")
    screenshot(browser, "registry-pending.png")
    row.find_element("css selector", "[data-action=approve]").click()
    wait_for(browser, f"!document.querySelector('[data-decide=\"{package}\"]')", what="the package approved")
    assert world.package(arn)["ModelApprovalStatus"] == "Approved"
    assert world.package(arn)["ApprovalDescription"] == "good on <b>old</b> shells"

    open_page(browser, world, "execution/" + arn)
    wait_for(browser, "document.querySelector('#execution-status [data-badge]').dataset.badge !== 'RUNNING'",
             timeout=300, what="the execution's end")
    described = world.serve.sfn.describe_execution(executionArn=arn)
    history = world.serve.sfn.get_execution_history(executionArn=arn, maxResults=1000)["events"]
    assert any(e["type"].endswith("StateExited") and e["stateExitedEventDetails"]["name"] == approval for e in history)
    assert browser.find_element("css selector", "#execution-status [data-badge]").text == described["status"] == "SUCCEEDED"
    statuses = browser.execute_script(
        "return Object.fromEntries([...document.querySelectorAll('#graph .node[data-state]')].map(n => [n.dataset.state, n.dataset.status]))")
    entered = {e["stateEnteredEventDetails"]["name"] for e in history if "stateEnteredEventDetails" in e}
    assert {name for name, status in statuses.items() if status != "notrun"} == entered
    assert "failed" not in statuses.values() and "running" not in statuses.values()
    rows = browser.find_elements("css selector", "#events-table tbody tr")
    assert len(rows) == len(history)
    # a SageMaker training job's state: its Describe output beside the state's input and output
    trainer = next(name for name, state in _all_states(definition_of(world)).items()
                   if "createTrainingJob" in state.get("Resource", "") and statuses.get(name) == "succeeded")
    browser.execute_script(f"document.querySelector('#graph .node[data-state=\"{trainer}\"]').dispatchEvent(new Event('click'))")
    wait_for(browser, "document.querySelector('#job-detail h2') !== null", what="the training job's Describe output")
    assert "Completed" in browser.find_element("id", "job-detail").text
    # its log tail, read through the CloudWatch Logs API as `aws logs get-log-events` reads it
    job = json.loads(browser.find_element("id", "job-describe").get_property("textContent"))["TrainingJobName"]
    logs = boto3.client("logs", endpoint_url=world.serve.urls["CloudWatch Logs"], region_name="us-east-1",
                        aws_access_key_id="local", aws_secret_access_key="local")
    tail = logs.get_log_events(logGroupName="/aws/sagemaker/TrainingJobs", logStreamName=f"{job}/algo-1", limit=60)["events"]
    assert tail
    shown = wait_for(browser, f"(document.querySelector('pre[data-log=\"{job}/algo-1\"]') || {{}}).textContent",
                     what="the training job's log tail: " + browser.find_element("id", "job-detail").text)
    assert shown.splitlines() == [event["message"] for event in tail]
    assert json.loads(browser.find_element("id", "detail-output").text)
    screenshot(browser, "execution.png")
    if os.environ.get("CONSOLE_README_SCREENSHOT"):  # the README's, at 3/4 size to stay small
        README_SHOT.parent.mkdir(parents=True, exist_ok=True)
        width, height = browser.execute_script("return [window.innerWidth, window.innerHeight]")
        shot = browser.execute_cdp_cmd("Page.captureScreenshot", {
            "format": "png", "clip": {"x": 0, "y": 0, "width": width, "height": height, "scale": 0.75}})
        README_SHOT.write_bytes(base64.b64decode(shot["data"]))


def _all_states(definition: dict) -> dict:
    found = {}
    for name, state in definition["States"].items():
        found[name] = state
        for branch in state.get("Branches", []):
            found.update(_all_states(branch))
        inner = state.get("ItemProcessor") or state.get("Iterator")
        if inner:
            found.update(_all_states(inner))
    return found


def test_a_failed_execution_shows_the_failing_state_red_with_its_error_and_cause_as_text(world, browser):
    bucket = world.data.split("/")[2]
    # a key with markup in it: the cause that names it must show as text, not as an element
    arn = world.start("html-in-the-cause", input_s3_uri=f"s3://{bucket}/raw/<img src=x id=injected>missing.csv")
    described = world.wait_for_end(arn)
    assert described["status"] == "FAILED"
    open_page(browser, world, "execution/" + arn)
    failed = wait_for(browser, "[...document.querySelectorAll('#graph .node[data-status=failed]')].map(n => n.dataset.state)",
                      what="a failed state")
    assert len(failed) == 1
    wait_for(browser, "document.getElementById('detail-cause') !== null", what="the failed state's detail")
    assert browser.find_element("id", "detail-name").text == failed[0]
    assert browser.find_element("id", "detail-error").get_property("textContent") == described["error"]
    assert browser.find_element("id", "detail-cause").get_property("textContent") == described["cause"]
    # the state whose error was caught (and sent to the failure handler) is told apart from it
    caught = browser.execute_script("return [...document.querySelectorAll('#graph .node[data-status=caught]')].map(n => n.dataset.state)")
    assert caught
    browser.execute_script(f"document.querySelector('#graph .node[data-state=\"{caught[0]}\"]').dispatchEvent(new Event('click'))")
    wait_for(browser, f"document.getElementById('detail-name').textContent === {json.dumps(caught[0])}")
    cause = browser.find_element("id", "detail-cause").get_property("textContent")
    assert "<img src=x id=injected>" in cause
    assert browser.find_elements("id", "injected") == []  # text, never markup
    screenshot(browser, "execution-failed.png")

    # Redrive (RedriveExecution): it runs again from the state that failed, and fails again the same way
    browser.find_element("id", "redrive-execution").click()
    wait_for(browser, "document.querySelector('#execution-status [data-badge]').dataset.badge === 'FAILED' && "
                      "[...document.querySelectorAll('.kv dd')].some(d => d.textContent === '1')", timeout=120,
             what="the redriven execution, failed again")
    assert world.serve.sfn.describe_execution(executionArn=arn)["redriveCount"] == 1


def test_stop_from_the_page_aborts_a_running_execution(world, browser):
    arn = world.start("to-be-stopped")
    open_page(browser, world, "execution/" + arn)
    browser.find_element("id", "stop-execution").click()
    wait_for(browser, "document.querySelector('#execution-status [data-badge]').dataset.badge === 'ABORTED'", timeout=60,
             what="the execution, aborted")
    described = world.serve.sfn.describe_execution(executionArn=arn)
    assert (described["status"], described.get("error")) == ("ABORTED", "Console.Stopped")


def test_the_endpoint_shows_its_variants_and_invocation_metrics(world, browser):
    runtime = boto3.client("sagemaker-runtime", endpoint_url=world.serve.urls["SageMaker runtime"], region_name="us-east-1",
                           aws_access_key_id="local", aws_secret_access_key="local")
    row = (PROJECT_ROOT / "data" / "abalone.csv").read_text().splitlines()[1].rsplit(",", 1)[0]  # without rings
    for _ in range(4):
        assert float(runtime.invoke_endpoint(EndpointName=ENDPOINT, ContentType="text/csv", Body=row)["Body"].read())
    # the same datapoints through the served CloudWatch API, as any boto3 user reads them
    cloudwatch = boto3.client("cloudwatch", endpoint_url=world.serve.urls["CloudWatch"], region_name="us-east-1",
                              aws_access_key_id="local", aws_secret_access_key="local")
    variant = world.serve.sagemaker.describe_endpoint(EndpointName=ENDPOINT)["ProductionVariants"][0]["VariantName"]
    now = dt.datetime.now(dt.UTC)
    answer = cloudwatch.get_metric_data(
        MetricDataQueries=[{"Id": "calls", "MetricStat": {"Metric": {
            "Namespace": "AWS/SageMaker", "MetricName": "Invocations",
            "Dimensions": [{"Name": "EndpointName", "Value": ENDPOINT}, {"Name": "VariantName", "Value": variant}]},
            "Period": 60, "Stat": "Sum"}}], StartTime=now - dt.timedelta(hours=1), EndTime=now + dt.timedelta(minutes=1))
    assert sum(answer["MetricDataResults"][0]["Values"]) == 4
    open_page(browser, world, "endpoints")
    card = browser.find_element("css selector", f"[data-endpoint='{ENDPOINT}']")
    assert "InService" in card.text and variant in card.text
    charts = card.find_elements("css selector", ".chart")
    assert charts[0].find_elements("css selector", "polyline")  # invocations over time, drawn
    screenshot(browser, "endpoints.png")


def test_the_registry_shows_packages_with_their_evaluation(world, browser):
    open_page(browser, world, "registry")
    groups = world.serve.sagemaker.list_model_package_groups()["ModelPackageGroupSummaryList"]
    group = browser.find_element("css selector", f"[data-group='{groups[0]['ModelPackageGroupName']}']")
    packages = world.serve.sagemaker.list_model_packages(ModelPackageGroupName=groups[0]["ModelPackageGroupName"])
    rows = group.find_elements("css selector", "tbody tr")
    assert len(rows) == len(packages["ModelPackageSummaryList"])
    assert "Approved" in rows[0].text and "evaluation.json" in rows[0].text
    screenshot(browser, "registry.png")


def test_reports_show_up_as_they_land_in_s3(world, browser):
    s3 = boto3.client("s3", endpoint_url=world.serve.urls["S3"], region_name="us-east-1",
                      aws_access_key_id="local", aws_secret_access_key="local")
    bucket = world.data.split("/")[2]
    open_page(browser, world, "reports")
    assert browser.find_elements("css selector", "[data-report]") == []
    picture = (SHOTS / "endpoints.png").read_bytes() if (SHOTS / "endpoints.png").exists() else _png()
    s3.put_object(Bucket=bucket, Key="reports/capture/run-1/report.png", Body=picture, ContentType="image/png")
    s3.put_object(Bucket=bucket, Key="reports/capture/run-1/report.html", Body=b"<h1>capture</h1>", ContentType="text/html")
    s3.put_object(Bucket=bucket, Key="monitoring/drift-1/report.html", ContentType="text/html",
                  Body=b"<h1 id=drift>drift</h1><script>parent.document.title='owned'</script>")
    s3.put_object(Bucket=bucket, Key="monitoring/drift-1/drift_summary.json", Body=b'{"drifted": ["length"]}')
    open_page(browser, world, "reports")
    wait_for(browser, "document.querySelectorAll('[data-report]').length === 2", what="both reports")
    wait_for(browser, "document.querySelector('[data-report=\"capture:run-1\"] img').naturalWidth > 0", what="the PNG")
    drift = browser.find_element("css selector", "[data-report='drift:drift-1']")
    assert "drifted" in drift.get_property("textContent")
    assert drift.find_element("css selector", "iframe").get_attribute("sandbox") == ""
    time.sleep(0.5)
    assert browser.title == "Local console"  # the report's script did not run
    query = urllib.parse.urlencode({"bucket": bucket, "key": "monitoring/drift-1/report.html"})
    with urllib.request.urlopen(f"{world.console}api/object?{query}", timeout=30) as answer:
        assert answer.headers["Content-Security-Policy"].startswith("sandbox")
    screenshot(browser, "reports.png")


def _png() -> bytes:
    return base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR4nGNgYGD4DwABBAEAwS2OUAAAAABJRU5ErkJggg==")


class _Attacker(BaseHTTPRequestHandler):
    page = b""

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(self.page)))
        self.end_headers()
        self.wfile.write(self.page)

    def log_message(self, *_: object) -> None:
        pass


def test_a_cross_site_form_or_fetch_cannot_start_an_execution(world, browser):
    start = world.console + "api/start"
    before = len(world.serve.sfn.list_executions(stateMachineArn=world.machine)["executions"])
    body = {"stateMachineArn": world.machine, "input": json.dumps({"input_s3_uri": world.data})}
    # another site's page, served from another origin, posting a form and a fetch at the console
    page = f"""<html><body><form id=f method=POST action="{start}" enctype="text/plain">
      <input name='{{"stateMachineArn":"{world.machine}","input":"{{}}","x":"' value='"}}'></form>
      <script>
        fetch("{start}", {{method: "POST", mode: "no-cors", body: {json.dumps(json.dumps(body))}}})
          .finally(() => document.getElementById("f").submit());
      </script></body></html>"""
    handler = type("Attacker", (_Attacker,), {"page": page.encode()})
    attacker = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=attacker.serve_forever, daemon=True).start()
    try:
        browser.get(f"http://127.0.0.1:{attacker.server_address[1]}/")
        wait_for(browser, "location.href.includes('/api/start')", what="the form's submission")
        assert "Forbidden" in browser.find_element("tag name", "body").text
    finally:
        attacker.shutdown()
        attacker.server_close()
    time.sleep(0.5)
    assert len(world.serve.sfn.list_executions(stateMachineArn=world.machine)["executions"]) == before

    def post(headers: dict) -> int:
        request = urllib.request.Request(start, data=json.dumps(body).encode(), method="POST",
                                         headers={"Content-Type": "application/json", **headers})
        try:
            with urllib.request.urlopen(request, timeout=30) as answer:
                return answer.status
        except urllib.error.HTTPError as error:
            return error.code

    token = world.serve_token = _token(world)
    assert post({}) == 403  # no token
    assert post({"X-Console-Token": "x" * len(token)}) == 403  # a wrong one
    assert post({"X-Console-Token": token, "Origin": "http://evil.example"}) == 403  # the right one, from elsewhere
    assert post({"X-Console-Token": token, "Host": "evil.example"}) == 403  # a DNS-rebound name
    assert len(world.serve.sfn.list_executions(stateMachineArn=world.machine)["executions"]) == before


def _token(world) -> str:
    with urllib.request.urlopen(world.console, timeout=30) as answer:
        page = answer.read().decode()
    return page.split('name="console-token" content="', 1)[1].split('"', 1)[0]
