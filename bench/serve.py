"""Review desk page load times with 100,000 statement lines, against the same pages on 1,000 lines.

    .venv/bin/python bench/serve.py [LINES] [--reuse STORE]

``--reuse`` copies (SQLite backup API) a store built earlier by ``tests.web.seeding.seed_volume`` instead of
building one (about nine minutes for 100,000 lines on the shared 2-core machine); pass its LINES too.

Builds a store the way production does (``tests.web.seeding.seed_volume``: LINES bank lines against as many
open invoices from the reconciliation benchmark's realistic generator, imported as a camt.053 by the real
importer and matched by the real engine; about one line in nine waits for review), serves the desk on a free
loopback port with werkzeug (as `cessio serve` does), logs in, and fetches each page over real HTTP.
Prints, per page, the median and worst of 15 loads for the small baseline store and the large one, their
ratio (paginated, indexed queries keep it near 1) and the first, cold load. Target: every page under 200 ms
at 100,000 lines. The dashboard's KPIs (``compute_kpis``, the report's code) are cached for 5 minutes and
computed in the background when ``cessio serve`` starts; its "first" column is that computation.
"""

from __future__ import annotations

import re
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from werkzeug.serving import make_server

from connector.store import Store
from connector.web.app import create_app
from connector.web.auth import create_user
from tests.web.seeding import Seeded, seed_volume

PAGES = ["/queue", "/queue?page=LAST", "/log", "/log?status=suggested&debtor=DEBTOR&amount_min=100",
         "/log?page=2000", "/assignments", "/quarantine", "/audit", "/dashboard"]
RUNS = 15
PASSWORD = "bench-password-long"


def measure(lines: int, folder: Path, first: dict[str, float], *, reuse: Path | None = None) -> dict[str, list[float]]:
    db = folder / f"desk-{lines}.db"
    started = time.perf_counter()
    if reuse is not None:  # a store seed_volume built earlier (seeding 100,000 lines takes minutes)
        with Store(reuse, actor="bench", migrate=False) as built:
            built.backup_to(db)
    with Store(db, actor="bench") as store:
        if reuse is not None:
            seeded = Seeded(lines=[r["id"] for r in store.statement_line_rows(statuses=("open", "suggested"))])
            seeded.summary = {"auto": sum(r["match_status"] == "matched" for r in store.statement_line_rows())}
        else:
            seeded = seed_volume(store, lines)
        create_user(store, "bench", "reviewer", PASSWORD)
        waiting = len(seeded.lines)
        names = [a["buyer_name"] for a in store.desk_line_allocations(seeded.lines[:50]) if a["buyer_name"]]
        debtor = names[0] if names else "SARL"
        print(f"seeded {lines:,} lines ({waiting:,} waiting for review, {seeded.summary['auto']:,} auto) in "
              f"{time.perf_counter() - started:.1f}s", file=sys.stderr)
    last = str(max(1, -(-waiting // 50)))
    debtor = debtor.split()[0]
    server = make_server("127.0.0.1", 0, create_app(db), threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_port}"
    try:
        session = requests.Session()
        token = re.search(r'name="csrf_token" value="([^"]+)"', session.get(f"{url}/login", timeout=30).text)[1]
        session.post(f"{url}/login", data={"csrf_token": token, "username": "bench", "password": PASSWORD},
                     timeout=30).raise_for_status()
        times: dict[str, list[float]] = {}
        for page in PAGES:
            path = page.replace("LAST", last).replace("DEBTOR", requests.utils.quote(debtor))
            started = time.perf_counter()
            session.get(url + path, timeout=120).raise_for_status()  # first load: cold caches (dashboard: KPIs)
            first[page] = (time.perf_counter() - started) * 1000
            samples = []
            for _ in range(RUNS):
                started = time.perf_counter()
                response = session.get(url + path, timeout=60)
                samples.append((time.perf_counter() - started) * 1000)
                response.raise_for_status()
            times[page] = samples
        return times
    finally:
        server.shutdown()
        server.server_close()


def main() -> None:
    import logging

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per request would drown the table
    args = sys.argv[1:]
    reuse = Path(args[args.index("--reuse") + 1]) if "--reuse" in args else None
    numbers = [a for a in args if a.isdigit()]
    lines = int(numbers[0]) if numbers else 100_000
    with tempfile.TemporaryDirectory() as folder:
        small = measure(1_000, Path(folder), {})
        first: dict[str, float] = {}
        large = measure(lines, Path(folder), first, reuse=reuse)
    print(f"{'page':58} {'1,000: median':>14} {f'{lines:,}: median':>16} {'worst':>8} {'ratio':>6} {'first':>8}")
    worst_median = 0.0
    for page in PAGES:
        base, big = statistics.median(small[page]), statistics.median(large[page])
        worst_median = max(worst_median, big)
        print(f"{page:58} {base:11.1f} ms {big:13.1f} ms {max(large[page]):5.0f} ms {big / base:6.2f} "
              f"{first[page]:5.0f} ms")
    verdict = "OK" if worst_median < 200 else "OVER"
    print(f"slowest page median at {lines:,} lines: {worst_median:.1f} ms (target < 200 ms: {verdict})")


if __name__ == "__main__":
    main()
