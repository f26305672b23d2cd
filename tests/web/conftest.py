"""Review-desk fixtures: a seeded store, desk users, the real desk on a free loopback port, headless Chromium."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from connector.store import Store
from connector.web.auth import create_user
from tests.web.seeding import Seeded, seed_desk

PASSWORDS = {"alice": "alice-reviews-payments", "victor": "victor-only-looks", "ada": "ada-administers-it"}
ROLES = {"alice": "reviewer", "victor": "viewer", "ada": "admin"}
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
SHOTS = Path(__file__).resolve().parent / "screenshots"  # git-ignored by its own .gitignore


@dataclass
class Desk:
    url: str
    db: Path
    seeded: Seeded

    def store(self) -> Store:
        return Store(self.db, actor="test", migrate=False)


@pytest.fixture(scope="session")
def desk_template(tmp_path_factory) -> tuple[Path, Seeded]:
    """One seeded store with the three users per worker (argon2 hashing is deliberately slow)."""
    db = tmp_path_factory.mktemp("desk-template") / "cessio.db"
    with Store(db, actor="test") as store:
        seeded = seed_desk(store)  # a real statement through the real importer and matching engine
        for name, password in PASSWORDS.items():
            create_user(store, name, ROLES[name], password)
    return db, seeded


@contextlib.contextmanager
def serve_desk(db: Path, seeded: Seeded | None = None) -> Iterator[Desk]:
    """The desk served by werkzeug on 127.0.0.1 (free port) over ``db``, as `cessio serve` serves it."""
    from werkzeug.serving import make_server

    from connector.web.app import create_app

    server = make_server("127.0.0.1", 0, create_app(db), threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="desk", daemon=True)
    thread.start()
    try:
        yield Desk(f"http://127.0.0.1:{server.server_port}", db, seeded or Seeded())
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@pytest.fixture
def desk(tmp_path: Path, desk_template):
    """The desk over a copy of the seeded store."""
    template, seeded = desk_template
    db = tmp_path / "cessio.db"
    with Store(template, actor="test", migrate=False) as store:
        store.backup_to(db)  # SQLite's backup API: a consistent copy, never a copy of the live file
    with serve_desk(db, seeded) as served:
        yield served


@pytest.fixture(scope="session")
def chromium():
    """Headless Debian Chromium driven by Playwright; skipped with the reason when either is missing."""
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is absent (apt-get install -y chromium)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install playwright)")
    SHOTS.mkdir(exist_ok=True)
    (SHOTS / ".gitignore").write_text("*\n")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(chromium):
    context = chromium.new_context(viewport={"width": 1280, "height": 900}, locale="en-GB")
    tab = context.new_page()
    tab.set_default_timeout(10_000)
    yield tab
    context.close()


def login(page, desk: Desk, name: str) -> None:
    page.goto(f"{desk.url}/login")
    page.fill("input[name=username]", name)
    page.fill("input[name=password]", PASSWORDS[name])
    page.click("form.login button[type=submit]")
    page.wait_for_url(f"{desk.url}/queue")


def shot(page, name: str) -> Path:
    path = SHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


__all__ = ["Desk", "login", "serve_desk", "shot"]
