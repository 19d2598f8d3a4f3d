#!/usr/bin/env python3
"""Browser tests of the admin console (/ui/) in headless Chromium, driven by Selenium.

Starts the demo backend and a gateway (built-in issuer, admin listener, access log) from the
debug build, then, as an operator would: signs in, creates a client and reads its secret once,
gets a token with it over curl, watches the request appear in the live log, rotates with a grace
period, disables the client and sees the refusal appear; checks that a request from another
origin is refused and that a client name holding <script> is shown as text.

  Tests/Browser/console_browser_test.py [--binary .build/debug/portcullis] [--screenshots docs/console] [--require]

Without chromium, chromedriver or python3-selenium it says what is missing and exits 0, or 1
with --require (CI installs them).
"""
import argparse
import hashlib
import http.server
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

ADMIN_TOKEN = "browser-test-admin-token-0123456789"
FIRST_SECRET = "psa-sync-secret-0123456789abcdef"
EVIL_NAME = '<script>document.title="pwned"</script> Ticket sync'
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def missing_tools():
    missing = []
    for tool in ("chromium", "chromedriver"):
        if shutil.which(tool) is None:
            missing.append(tool)
    try:
        import selenium  # noqa: F401
    except ImportError:
        missing.append("python3-selenium")
    return missing


class Processes:
    def __init__(self):
        self.children = []
        self.work = tempfile.mkdtemp(prefix="portcullis-browser-")

    def start(self, args, ready_file, name):
        log = open(os.path.join(self.work, name + ".out"), "wb")
        env = dict(os.environ, PORTCULLIS_THREADS="2")
        child = subprocess.Popen(args + ["--ready-file", ready_file], stdout=log, stderr=subprocess.STDOUT, env=env)
        self.children.append(child)
        deadline = time.time() + 60
        while not os.path.exists(ready_file):
            if child.poll() is not None or time.time() > deadline:
                raise RuntimeError(name + " did not start: " + open(log.name, errors="replace").read())
            time.sleep(0.1)
        return [line.split() for line in open(ready_file).read().splitlines() if line.strip()]

    def stop(self):
        for child in self.children:
            child.terminate()
        for child in self.children:
            try:
                child.wait(timeout=20)
            except subprocess.TimeoutExpired:
                child.kill()
        shutil.rmtree(self.work, ignore_errors=True)


def start_system(binary, processes):
    backend = processes.start([binary, "demo-backend", "--listen", "127.0.0.1:0"], os.path.join(processes.work, "backend.ready"), "backend")
    config = os.path.join(processes.work, "config")
    os.mkdir(config)
    shutil.copy(os.path.join(ROOT, "policies/demo/demo-signing.pem"), os.path.join(config, "signing.pem"))
    with open(os.path.join(config, "admin-token"), "w") as f:
        f.write(ADMIN_TOKEN + "\n")
    with open(os.path.join(config, "portcullis.yaml"), "w") as f:
        f.write(f"""
listen:
  - address: "127.0.0.1:0"
upstream:
  url: "{backend[0][0]}"
admin:
  address: "127.0.0.1:0"
  token_file: admin-token
logging:
  level: warning
  access_log: "{os.path.join(processes.work, 'access.log')}"
issuers:
  - name: local
    builtin: true
    signing_key_file: signing.pem
    token_lifetime: 15m
roles:
  reader:
    description: "reads the demo backend"
    allow:
      - {{ methods: [GET], paths: ["/demo/**"] }}
  auditor:
    description: "reads the echo only"
    allow:
      - {{ methods: [GET], paths: ["/demo/echo"] }}
    deny:
      - {{ paths: ["/demo/admin/**"] }}
clients:
  - id: "psa-sync"
    name: "PSA ticket sync"
    issuer: "local"
    roles: ["reader"]
    allowed_ips: ["127.0.0.1/32", "10.20.0.0/16"]
    secret_sha256: "{hashlib.sha256(FIRST_SECRET.encode()).hexdigest()}"
""")
    lines = processes.start([binary, "serve", "--config", config], os.path.join(processes.work, "gateway.ready"), "gateway")
    gateway = next(line[0] for line in lines if len(line) == 1)
    admin = next(line[1] for line in lines if len(line) == 2 and line[0] == "admin")
    return gateway, admin


def curl(*args):
    """curl, as an operator would: returns (status, body)."""
    out = subprocess.run(["curl", "-s", "-o", "-", "-w", "\n%{http_code}"] + list(args), capture_output=True, text=True, timeout=30).stdout
    body, _, status = out.rpartition("\n")
    return int(status), body


def token(gateway, client_id, secret):
    status, body = curl("-X", "POST", gateway + "/oauth/token", "-d", "grant_type=client_credentials",
                        "--data-urlencode", "client_id=" + client_id, "--data-urlencode", "client_secret=" + secret)
    return status, (json.loads(body).get("access_token") if status == 200 else body)


def admin_api(admin, method, path):
    request = urllib.request.Request(admin + "/api/v1" + path, method=method, headers={"Authorization": "Bearer " + ADMIN_TOKEN})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")


class Check:
    def __init__(self):
        self.failures = []
        self.passed = 0

    def __call__(self, condition, what):
        if condition:
            self.passed += 1
            print("  ok   " + what)
        else:
            self.failures.append(what)
            print("  FAIL " + what)


def run(binary, screenshots):
    from selenium import webdriver
    from selenium.common.exceptions import NoAlertPresentException, StaleElementReferenceException, TimeoutException
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as EC
    from selenium.webdriver.support.ui import Select, WebDriverWait

    check = Check()
    processes = Processes()
    attacker = None
    driver = None
    try:
        gateway, admin = start_system(binary, processes)
        print(f"gateway {gateway}, admin {admin}")
        options = webdriver.ChromeOptions()
        options.binary_location = shutil.which("chromium")
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--window-size=1280,800",
                         "--force-device-scale-factor=1", "--lang=en-US"):
            options.add_argument(argument)
        driver = webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=options)
        # The pages re-render after each change: an element found a moment ago may be gone.
        wait = WebDriverWait(driver, 20, ignored_exceptions=[StaleElementReferenceException])

        def desktop():
            driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {"width": 1280, "height": 800, "deviceScaleFactor": 1, "mobile": False})

        def phone():
            driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {"width": 390, "height": 844, "deviceScaleFactor": 1, "mobile": True})

        def shoot(name, ready=None):
            if not screenshots:
                return
            for width, size in (("1280", desktop), ("390", phone)):
                size()
                time.sleep(0.4)
                if ready:
                    ready()
                driver.save_screenshot(os.path.join(screenshots, f"{name}-{width}.png"))
            desktop()

        def go(hash_, ready_css):
            driver.get(admin + "/ui/" + hash_)
            return wait.until(EC.visibility_of_element_located((By.CSS_SELECTOR, ready_css)))

        def status_text():
            return driver.find_element(By.ID, "status").text

        # Headers: a strict CSP and friends on every console page.
        request = urllib.request.Request(admin + "/ui/")
        with urllib.request.urlopen(request, timeout=10) as response:
            csp = response.headers.get("Content-Security-Policy", "")
            check("script-src 'self'" in csp and "default-src 'none'" in csp and "frame-ancestors 'none'" in csp, "the console page carries a strict CSP")
            check(response.headers.get("X-Content-Type-Options") == "nosniff", "nosniff")
            check(response.headers.get("Referrer-Policy") == "no-referrer", "no referrer")

        # Sign in.
        desktop()
        driver.get(admin + "/ui/")
        wait.until(EC.visibility_of_element_located((By.ID, "token")))
        shoot("signin")
        driver.find_element(By.ID, "token").send_keys("not-the-admin-token-000000")
        driver.find_element(By.ID, "signin").click()
        wait.until(lambda d: "refused" in status_text())
        check(True, "a wrong admin token is refused")
        driver.find_element(By.ID, "token").send_keys(ADMIN_TOKEN)
        driver.find_element(By.ID, "signin").click()
        wait.until(EC.visibility_of_element_located((By.ID, "clients")))
        check("Signed in as admin" in driver.find_element(By.ID, "who").text, "signed in, named 'admin'")
        cookie = driver.get_cookie("portcullis_console")
        check(cookie is not None and cookie.get("httpOnly") and cookie.get("sameSite") == "Strict", "the session cookie is HttpOnly and SameSite=Strict")

        # The dialogs work from the keyboard: Enter opens, Escape closes, focus goes inside.
        from selenium.webdriver.common.action_chains import ActionChains
        from selenium.webdriver.common.keys import Keys
        driver.find_element(By.ID, "new-client").send_keys(Keys.ENTER)
        wait.until(EC.visibility_of_element_located((By.ID, "nc-id")))
        check(driver.switch_to.active_element.get_attribute("id") == "nc-id", "the new-client dialog opens from the keyboard with focus inside")
        ActionChains(driver).send_keys(Keys.ESCAPE).perform()
        wait.until(EC.invisibility_of_element_located((By.ID, "nc-id")))
        check(True, "Escape closes it")

        # Create a client whose name holds a script; read its secret once.
        driver.find_element(By.ID, "new-client").click()
        wait.until(EC.visibility_of_element_located((By.ID, "nc-id"))).send_keys("ticket-sync")
        driver.find_element(By.ID, "nc-name").send_keys(EVIL_NAME)
        driver.find_element(By.CSS_SELECTOR, 'input[name="nc-role"][value="reader"]').click()
        driver.find_element(By.ID, "nc-create").click()
        secret = wait.until(EC.visibility_of_element_located((By.ID, "secret-value"))).text
        check(len(secret) >= 32, "the new client's secret is shown")
        check("shown only once" in driver.find_element(By.ID, "secret-panel").text, "with the warning that it is shown once")
        check(driver.find_element(By.ID, "copy-secret").is_displayed(), "and a copy button")
        row = driver.find_element(By.CSS_SELECTOR, 'tr[data-client="ticket-sync"]')
        check(EVIL_NAME in row.find_element(By.CLASS_NAME, "client-name").text, "a name holding <script> is shown as text")
        check(driver.title == "Portcullis console", "and its script did not run")
        try:
            driver.switch_to.alert
            check(False, "no alert")
        except NoAlertPresentException:
            pass
        shoot("new-client-secret")
        driver.refresh()
        wait.until(EC.visibility_of_element_located((By.ID, "clients")))
        check(not driver.find_elements(By.ID, "secret-value"), "the secret is not shown again")

        # A token with it over curl; watch the request appear in the live log.
        status, access = token(gateway, "ticket-sync", secret)
        check(status == 200, f"curl gets a token with the new secret ({status})")
        go("#/clients/ticket-sync", "#live-log")
        wait.until(lambda d: "Live" in d.find_element(By.ID, "live-status").text)
        status, _ = curl(gateway + "/demo/echo", "-H", "Authorization: Bearer " + access)
        check(status == 200, "the token calls the backend")
        try:
            wait.until(lambda d: any("GET /demo/echo" in li.text for li in d.find_elements(By.CSS_SELECTOR, '#live-log li[data-status="200"]')))
            check(True, "the request appears in the live log")
        except TimeoutException:
            check(False, "the request appears in the live log: " + driver.find_element(By.ID, "live-log").text[:500] + " / " + driver.find_element(By.ID, "live-status").text)
            print(driver.get_log("browser"))
        curl("-X", "POST", gateway + "/demo/echo", "-H", "Authorization: Bearer " + access)
        wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, '#live-log li[data-status="403"]')))
        driver.refresh()
        wait.until(EC.visibility_of_element_located((By.CSS_SELECTOR, "svg.chart rect")))
        legend = " ".join(driver.find_element(By.CLASS_NAME, "legend").text.split())
        check("4xx 1" in legend and "2xx 0" not in legend, "the chart counts the requests by status: " + legend)
        check("not available" in driver.find_element(By.ID, "client-audit").text or driver.find_elements(By.CSS_SELECTOR, "#client-audit table"),
              "the client's audit history, or that there is none here")
        wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, '#live-log li[data-status="403"]')))
        shoot("client")

        # Rotate with a grace period.
        driver.find_element(By.CSS_SELECTOR, 'button[data-action="rotate"]').click()
        Select(wait.until(EC.visibility_of_element_located((By.ID, "rotate-grace")))).select_by_value("1h")
        driver.find_element(By.ID, "rotate-confirm").click()
        new_secret = wait.until(EC.visibility_of_element_located((By.ID, "secret-value"))).text
        check(new_secret and new_secret != secret, "rotation shows a new secret")
        status, access = token(gateway, "ticket-sync", new_secret)
        check(status == 200, "the new secret gets a token")
        status, _ = token(gateway, "ticket-sync", secret)
        graced = "previous secret works" in status_text()
        check(status == (200 if graced else 401), f"the old secret {'works for the grace period' if graced else 'is refused (this gateway keeps no grace)'} ({status})")

        # Disable; the refusal appears in the live log.
        driver.find_element(By.CSS_SELECTOR, 'button[data-action="disable"]').click()
        wait.until(lambda d: "Disabled" in d.find_element(By.CSS_SELECTOR, "dl.facts").text)
        wait.until(lambda d: "Live" in d.find_element(By.ID, "live-status").text)
        deadline = time.time() + 10
        status = 0
        while time.time() < deadline:
            status, _ = curl(gateway + "/demo/echo", "-H", "Authorization: Bearer " + access)
            if status == 401:
                break
            time.sleep(0.2)
        check(status == 401, f"a disabled client's token is refused ({status})")
        try:
            refusal = wait.until(lambda d: next((li for li in d.find_elements(By.CSS_SELECTOR, '#live-log li[data-status="401"]') if "GET /demo/echo" in li.text), None))
            check("DENIED client_disabled" in refusal.text, "the refusal appears in the live log: " + refusal.text[:100])
        except TimeoutException:
            check(False, "the refusal appears in the live log")

        # Requests from another origin are refused, cookie or not.
        session_id = driver.get_cookie("portcullis_console")["value"]
        csrf = driver.execute_script("return fetch('/ui/session').then(r => r.json()).then(j => j.csrf_token)")
        jar = "Cookie: portcullis_console=" + session_id
        host = admin.split("//")[1]
        status, _ = curl("-X", "POST", admin + "/ui/api/v1/clients/ticket-sync/enable", "-H", jar, "-H", "Origin: http://evil.example",
                         "-H", "X-CSRF-Token: " + csrf)
        check(status == 403, f"a change from another Origin is refused even with the CSRF token ({status})")
        status, _ = curl("-X", "POST", admin + "/ui/api/v1/clients/ticket-sync/enable", "-H", jar, "-H", "Origin: http://" + host)
        check(status == 403, f"a change without the CSRF token is refused ({status})")
        status, _ = curl(admin + "/ui/api/v1/clients", "-H", jar, "-H", "Sec-Fetch-Site: cross-site")
        check(status == 403, f"a cross-site read with the cookie is refused ({status})")

        class Attacker(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                page = f"""<!doctype html><title>attacker</title><body>
<form id=f method=POST action="{admin}/ui/api/v1/clients/ticket-sync/enable" enctype="text/plain"><input name='{{"a":"' value='"}}'></form>
<script>
fetch("{admin}/ui/api/v1/clients", {{method: "POST", mode: "no-cors", credentials: "include",
  headers: {{"Content-Type": "text/plain"}}, body: JSON.stringify({{id: "evil", roles: ["reader"]}})}})
  .finally(() => {{ document.title = "sent"; document.getElementById("f").submit(); }});
</script></body>""".encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/html")
                self.send_header("Content-Length", str(len(page)))
                self.end_headers()
                self.wfile.write(page)

            def log_message(self, *args):
                pass

        attacker = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Attacker)
        threading.Thread(target=attacker.serve_forever, daemon=True).start()
        driver.get(f"http://127.0.0.1:{attacker.server_address[1]}/")
        wait.until(lambda d: "cross_site_request" in d.page_source or "csrf" in d.page_source)
        check(admin_api(admin, "GET", "/clients/evil")[0] == 404, "a cross-origin fetch with the cookie created nothing")
        check(admin_api(admin, "GET", "/clients/ticket-sync")[1].get("enabled") is False, "a cross-origin form post changed nothing")

        # The other pages, and their screenshots.
        go("#/clients", "#clients")
        shoot("clients")
        go("#/roles", "section[data-role]")
        check("ticket-sync" in driver.find_element(By.CSS_SELECTOR, 'section[data-role="reader"]').text, "the roles page names the clients holding each role")
        shoot("roles")
        go("#/explain", "#explain-form")
        driver.find_element(By.ID, "ex-client").clear()
        driver.find_element(By.ID, "ex-client").send_keys("psa-sync")
        driver.find_element(By.ID, "ex-path").clear()
        driver.find_element(By.ID, "ex-path").send_keys("/demo/echo")
        driver.find_element(By.ID, "ex-ip").send_keys("10.20.3.4")
        driver.find_element(By.ID, "ex-submit").click()
        decision = wait.until(EC.visibility_of_element_located((By.ID, "explain-decision")))
        check("ALLOW" in decision.text and "reader" in driver.find_element(By.ID, "explain-rule").text, "explain allows psa-sync GET /demo/echo by the reader rule")
        shoot("explain")
        Select(driver.find_element(By.ID, "ex-method")).select_by_value("DELETE")
        driver.find_element(By.ID, "ex-submit").click()
        wait.until(EC.text_to_be_present_in_element((By.ID, "explain-decision"), "DENY"))
        check("role_denied" in driver.find_element(By.ID, "explain-decision").text, "explain denies DELETE (role_denied)")
        go("#/audit", "#audit-form")
        wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, "#audit-result > *")))
        shoot("audit")

        # Sign out ends the session on the server.
        driver.find_element(By.ID, "signout").click()
        wait.until(EC.visibility_of_element_located((By.ID, "token")))
        status, _ = curl(admin + "/ui/api/v1/clients", "-H", jar)
        check(status == 401, f"the session is gone after sign-out ({status})")
    finally:
        if driver is not None:
            driver.quit()
        if attacker is not None:
            attacker.shutdown()
        processes.stop()
    print(f"{check.passed} checks passed, {len(check.failures)} failed")
    for failure in check.failures:
        print("FAILED: " + failure)
    return 1 if check.failures else 0


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--binary", default=os.path.join(ROOT, ".build/debug/portcullis"))
    parser.add_argument("--screenshots", help="write a PNG of each page at 1280 and 390 px wide here")
    parser.add_argument("--require", action="store_true", help="fail (instead of skipping) when the browser tools are missing")
    args = parser.parse_args()
    missing = missing_tools()
    if missing:
        print("SKIP console browser tests: missing " + ", ".join(missing) + " (apt-get install chromium chromium-driver python3-selenium)")
        return 1 if args.require else 0
    if not os.access(args.binary, os.X_OK):
        print("cannot run " + args.binary + ": build it first (swift build)")
        return 1
    if args.screenshots:
        os.makedirs(args.screenshots, exist_ok=True)
    return run(args.binary, args.screenshots)


if __name__ == "__main__":
    sys.exit(main())
