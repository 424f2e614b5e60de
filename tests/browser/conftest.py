import os
from pathlib import Path

import pytest

SCREENSHOTS = Path(__file__).resolve().parent.parent.parent / "test-screenshots"


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    path = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
    if not Path(path).exists():
        pytest.fail(
            f"Chromium not found at {path}: run `make chromium` (apt-get install chromium) or set CHROMIUM_PATH."
        )
    return {
        **browser_type_launch_args,
        "executable_path": path,
        "headless": True,
        "args": [
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--disable-quic",
        ],
    }


@pytest.fixture
def shot(page):
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    def take(name: str) -> None:
        page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)

    return take


@pytest.fixture
def sign_in(page, live_server):
    def do(username: str, password: str = "demo"):
        page.goto(f"{live_server.url}/accounts/login/")
        page.get_by_label("Login").fill(username)
        page.locator("#id_password").fill(password)
        page.locator("#id_password").press("Enter")  # forms submit with Enter
        page.wait_for_url(f"{live_server.url}/")

    return do
