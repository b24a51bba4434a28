"""The bench run: seed both backends, measure (a)-(d), print the table, write results/latest.json."""

from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import psycopg

from bench import api_purchase, checkout
from bench.floor_app import prepare as prepare_floor
from bench.seed import Scale, SeedInfo, check_books, seed

PROJECT_ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results"
FULL = Scale(merchants=1_000, customers=100_000, purchases=1_000_000)
QUICK = Scale(merchants=100, customers=10_000, purchases=100_000)
SMALL_PURCHASES = 10_000
PG_ADMIN_URL = os.environ.get("NEIGHBOURLY_BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("NEIGHBOURLY_BENCH_REDIS_URL", "redis://127.0.0.1:6379/13")
PG_DATABASES = {"large": "neighbourly_bench", "small": "neighbourly_bench_small"}
GOALS = {"checkout": 0.5, "service": 0.5, "pages": 0.5, "growth": 1.5, "seed_seconds": 180, "expiry_seconds": 60}
BACKEND_TITLES = {"postgres": "PostgreSQL", "sqlite": "SQLite"}


def echo(message: str = "") -> None:
    print(message, flush=True)


def postgres_available() -> bool:
    try:
        with psycopg.connect(PG_ADMIN_URL, connect_timeout=3):
            return True
    except psycopg.Error:
        return False


def redis_available() -> bool:
    try:
        import redis

        return bool(redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping())
    except Exception:
        return False


def fresh_database(backend: str, size: str, workdir: Path) -> str:
    """An empty database for one data set: its own PostgreSQL database or SQLite file."""
    if backend == "postgres":
        name = PG_DATABASES[size]
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            connection.execute(f'CREATE DATABASE "{name}"')
        return "postgresql+psycopg://" + PG_ADMIN_URL.split("://", 1)[1].rsplit("/", 1)[0] + "/" + name
    path = workdir / f"{size}.db"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    return f"sqlite:///{path}"


def drop_databases(workdir: Path, backends: list[str]) -> None:
    if "postgres" in backends:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as connection:
            for name in PG_DATABASES.values():
                connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    # The work folder also holds this process's own task store, which must outlive the cleanup
    # of each data set; it goes last, with everything else.
    for path in workdir.glob("*.db*"):
        path.unlink(missing_ok=True)


def queue_environment(backend: str, workdir: Path, use_redis: bool) -> dict[str, str]:
    """Where the app under test queues after-commit work: Redis for PostgreSQL (the scale-out
    setup) when it is running, else a SQLite task store in the bench's work folder."""
    if backend == "postgres" and use_redis:
        return {"NEIGHBOURLY_REDIS_URL": REDIS_URL}
    return {"NEIGHBOURLY_TASKS_DB": str(workdir / f"tasks-{backend}.db")}


def flush_queue(env: dict[str, str]) -> None:
    """Drop the tasks the measured purchases queued (no worker runs during the bench)."""
    if "NEIGHBOURLY_REDIS_URL" in env:
        from huey import RedisHuey

        RedisHuey("neighbourly", url=env["NEIGHBOURLY_REDIS_URL"]).flush()


def in_process(large: Path, small: Path, env: dict[str, str], rounds: int, seconds: float) -> dict:
    child_env = {**os.environ, **env}
    if "NEIGHBOURLY_REDIS_URL" not in env:
        child_env.pop("NEIGHBOURLY_REDIS_URL", None)
    completed = subprocess.run(
        [sys.executable, "-m", "bench.inprocess", str(large), str(small),
         "--rounds", str(rounds), "--seconds", str(seconds)],
        cwd=PROJECT_ROOT, env=child_env, stdout=subprocess.PIPE, text=True, check=True,
    )
    return json.loads(completed.stdout.strip().splitlines()[-1])


def run_backend(backend: str, large: Scale, small: Scale, workdir: Path, args, use_redis: bool) -> dict:
    echo(f"== {BACKEND_TITLES[backend]}")
    infos: dict[str, Path] = {}
    report: dict = {"seed_seconds": {}, "books_balanced": {}}
    for size, scale in (("small", small), ("large", large)):
        url = fresh_database(backend, size, workdir)
        echo(f"  seeding {size}: {scale.label()}")
        info = seed(url, backend, scale, echo)
        echo(f"  seeded in {info.seconds:.1f} s")
        books = check_books(url)
        if not all(books.values()):
            raise RuntimeError(f"{backend} {size}: the seeded books do not balance: {books}")
        report["seed_seconds"][size] = info.seconds
        report["books_balanced"][size] = True
        infos[size] = workdir / f"{backend}-{size}.json"
        info.save(infos[size])
    prepare_floor(SeedInfo.load(infos["large"]).database_url)
    env = queue_environment(backend, workdir, use_redis)
    echo("  measuring in process (service, pages, dashboard growth)")
    report["in_process"] = in_process(infos["large"], infos["small"], env, args.rounds, args.seconds)
    flush_queue(env)
    echo("  measuring checkout under gunicorn")
    report["checkout"] = checkout.measure(SeedInfo.load(infos["large"]), env, args.rounds, args.seconds * 2)
    flush_queue(env)
    echo("  measuring POST /api/v1/purchases under gunicorn")
    report["api_purchase"] = api_purchase.measure(SeedInfo.load(infos["large"]), env, args.rounds, args.seconds * 2)
    flush_queue(env)
    # Last: the nightly expiry task writes to every card with points due.
    echo("  measuring the nightly points expiry task")
    report["expiry"] = points_expiry(infos["large"], env)
    return report


def points_expiry(info: Path, env: dict[str, str]) -> dict:
    child_env = {**os.environ, **env}
    completed = subprocess.run(
        [sys.executable, "-m", "bench.points_expiry", str(info)],
        cwd=PROJECT_ROOT, env=child_env, stdout=subprocess.PIPE, text=True, check=True,
    )
    return json.loads(completed.stdout.strip().splitlines()[-1])


def plugin_benches(quick: bool) -> tuple[dict, dict[str, str]]:
    """Benchmarks plugins ship as ``bench/plugin_<name>.py`` with ``run(results)``.

    Each adds its own keys (prefixed with the plugin's name) to the results; one that fails is
    reported and the others still run.
    """
    if quick:
        os.environ.setdefault("BENCH_LETTERS", "100")
    results: dict = {}
    errors: dict[str, str] = {}
    for path in sorted(Path(__file__).parent.glob("plugin_*.py")):
        echo(f"== {path.stem}")
        try:
            importlib.import_module(f"bench.{path.stem}").run(results)
        except Exception as error:  # one plugin's bench must not lose the others' figures
            errors[path.stem] = f"{type(error).__name__}: {error}"
            echo(f"  failed: {errors[path.stem]}")
    return results, errors


def summarise(
    reports: dict[str, dict], large: Scale, small: Scale, mode: str, started: float, load_before: float
) -> dict:
    """latest.json: the issue's keys (worst backend where one figure is asked for) and details."""
    pages = ("dashboard", "customers", "wallet")
    first = next(iter(reports.values()))
    primary = reports.get("postgres", first)["in_process"]
    result: dict = {
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "mode": mode,
        "scale": {"large": large.__dict__, "small": small.__dict__},
        "machine": {
            "cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform(),
            # Other work on the machine shifts absolute rates; the ratios compare like with like.
            "load_average_before": load_before, "load_average_after": round(os.getloadavg()[0], 2),
        },
        "checkout_vs_floor_postgres": reports["postgres"]["checkout"]["ratio"] if "postgres" in reports else None,
        "checkout_vs_floor_sqlite": reports["sqlite"]["checkout"]["ratio"] if "sqlite" in reports else None,
        # The POS API's sale against the same floor; the goal is the till's own checkout ratio.
        "api_purchase_vs_floor": min(r["api_purchase"]["ratio"] for r in reports.values()),
        "api_purchase_vs_floor_by_backend": {b: r["api_purchase"]["ratio"] for b, r in reports.items()},
        "service_vs_floor": min(r["in_process"]["service_vs_floor"] for r in reports.values()),
        "pages_vs_floor": {
            page: min(r["in_process"]["pages_vs_floor"][page] for r in reports.values()) for page in pages
        },
        "queries_per_page": primary["queries_per_page"]["large"],
        # record_purchase in process, every plugin on: the worse of a plain sale and one spending points.
        "statements_per_sale": {backend: r["in_process"]["statements_per_sale"] for backend, r in reports.items()},
        "queries_independent_of_size": all(r["in_process"]["queries_independent_of_size"] for r in reports.values()),
        "dashboard_growth_10k_to_1m": max(r["in_process"]["dashboard_growth"] for r in reports.values()),
        # The nightly expiry task over the large set (the 1,000,000-purchase one in a full run).
        "expiry_run_1m_seconds": max(r["expiry"]["seconds"] for r in reports.values()),
        "goals": {
            "checkout_vs_floor": f">= {GOALS['checkout']}",
            "api_purchase_vs_floor": ">= the same backend's checkout_vs_floor",
            "service_vs_floor": f">= {GOALS['service']}",
            "pages_vs_floor": f">= {GOALS['pages']}", "dashboard_growth_10k_to_1m": f"<= {GOALS['growth']}",
            "seed_seconds": f"< {GOALS['seed_seconds']}",
            "expiry_run_1m_seconds": f"< {GOALS['expiry_seconds']}",
        },
        "by_backend": reports,
        "total_seconds": round(time.perf_counter() - started, 1),
    }
    if mode == "quick":
        result["note"] = (
            f"quick run: dashboard growth is {small.purchases:,} -> {large.purchases:,} purchases, "
            f"not 10k -> 1M; expiry_run_1m_seconds is over {large.purchases:,} purchases"
        )
    return result


def table(result: dict) -> str:
    reports = result["by_backend"]
    backends = list(reports)
    width = 36

    def row(label: str, values: list[str], goal: str = "") -> str:
        return f"{label:<{width}}" + "".join(f"{value:>16}" for value in values) + f"   {goal}"

    def ratio(value: float) -> str:
        return f"{value:.2f}x"

    large = result["scale"]["large"]
    lines = [
        f"Neighbourly bench ({result['mode']}): {large['merchants']:,} merchants, {large['customers']:,} "
        f"customers, {large['purchases']:,} purchases; small set {result['scale']['small']['purchases']:,} purchases",
        row("", [BACKEND_TITLES[b] for b in backends], "goal"),
        row("seeder, large set (s)", [f"{reports[b]['seed_seconds']['large']:.0f}" for b in backends], "< 180"),
        row("(a) checkout POST vs bare insert", [ratio(reports[b]["checkout"]["ratio"]) for b in backends], ">= 0.5x"),
        row("    checkout / floor req/s", [
            f"{reports[b]['checkout']['checkout_rate']:.0f} / {reports[b]['checkout']['floor_rate']:.0f}" for b in backends
        ]),
        row("    SQL statements per checkout POST", [str(reports[b]["in_process"]["queries_per_checkout"]) for b in backends]),
        row("    API POST /purchases vs bare insert", [ratio(reports[b]["api_purchase"]["ratio"]) for b in backends],
            ">= checkout"),
        row("    API / floor req/s", [
            f"{reports[b]['api_purchase']['api_rate']:.0f} / {reports[b]['api_purchase']['floor_rate']:.0f}" for b in backends
        ]),
        row("    SQL statements per sale (service)", [
            " / ".join(str(n) for n in reports[b]["in_process"]["statements_per_sale_by_kind"].values()) for b in backends
        ], "plain / points, <= 10"),
        row("(b) purchase service vs ORM insert", [ratio(reports[b]["in_process"]["service_vs_floor"]) for b in backends], ">= 0.5x"),
        row("    service / insert per s", [
            f"{reports[b]['in_process']['service_rates']['service']:.0f} / "
            f"{reports[b]['in_process']['service_rates']['floor_insert']:.0f}" for b in backends
        ]),
    ]
    for page in ("dashboard", "customers", "wallet"):
        lines.append(row(f"(c) {page} vs 50-row page",
                         [ratio(reports[b]["in_process"]["pages_vs_floor"][page]) for b in backends], ">= 0.5x"))
    lines.append(row("    50-row floor page req/s", [f"{reports[b]['in_process']['page_rates']['floor_page']:.0f}" for b in backends]))
    for page in ("dashboard", "customers", "wallet"):
        lines.append(row(f"    SQL statements: {page} (small/large)", [
            f"{reports[b]['in_process']['queries_per_page']['small'][page]} / "
            f"{reports[b]['in_process']['queries_per_page']['large'][page]}" for b in backends
        ], "equal"))
    lines.append(row("    SQL statements: wallet by cards held", [
        ", ".join(f"{cards}: {count}" for cards, count in reports[b]["in_process"]["wallet_queries_by_cards"].items())
        for b in backends
    ]))
    lines.append(row("(d) dashboard time, large / small", [ratio(reports[b]["in_process"]["dashboard_growth"]) for b in backends], "<= 1.5x"))
    lines.append(row("    median ms, large / small", [
        f"{reports[b]['in_process']['dashboard_latency_ms']['large']:.1f} / "
        f"{reports[b]['in_process']['dashboard_latency_ms']['small']:.1f}" for b in backends
    ]))
    if all(reports[b]["in_process"].get("core_figures_growth") for b in backends):
        lines.append(row("    core figures alone, large / small",
                         [ratio(reports[b]["in_process"]["core_figures_growth"]) for b in backends]))
    lines.append(row("(e) nightly points expiry (s)", [f"{reports[b]['expiry']['seconds']:.1f}" for b in backends], "< 60"))
    lines.append(row("    cards / points expired", [
        f"{reports[b]['expiry']['cards_expired']:,} / {reports[b]['expiry']['points_expired']:,}" for b in backends
    ]))
    machine = result["machine"]
    lines.append(f"load average before / after: {machine['load_average_before']} / {machine['load_average_after']} "
                 f"on {machine['cpus']} CPUs")
    lines.append(f"plugins enabled for the measured merchant: {', '.join(next(iter(reports.values()))['in_process']['plugins_enabled']) or 'none installed'}")
    return "\n".join(lines)


def main(workdir: Path) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description="Neighbourly's scale bench.")
    parser.add_argument("--quick", action="store_true", help="100 merchants, 10k customers, 100k purchases")
    parser.add_argument("--backends", default="postgres,sqlite", help="comma-separated: postgres,sqlite")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds per measurement")
    parser.add_argument("--seconds", type=float, default=2.0, help="length of one in-process round")
    parser.add_argument("--keep", action="store_true", help="keep the bench databases afterwards")
    parser.add_argument("--skip-plugins", action="store_true", help="skip the benches plugins ship (bench/plugin_*.py)")
    parser.add_argument(
        "--output", type=Path, default=None,
        help="where to write the figures (default: results/latest.json, results/latest-quick.json for --quick)",
    )
    args = parser.parse_args()
    started = time.perf_counter()
    load_before = round(os.getloadavg()[0], 2)
    large = QUICK if args.quick else FULL
    small = Scale(large.merchants, large.customers, SMALL_PURCHASES)
    backends = [name.strip() for name in args.backends.split(",") if name.strip()]
    if "postgres" in backends and not postgres_available():
        echo(f"PostgreSQL is not reachable at {PG_ADMIN_URL}; measuring SQLite only.")
        backends.remove("postgres")
    if not backends:
        echo("No backend to measure.")
        return 1
    use_redis = redis_available()
    reports: dict[str, dict] = {}
    try:
        for backend in backends:
            reports[backend] = run_backend(backend, large, small, workdir, args, use_redis)
        plugin_results, plugin_errors = ({}, {}) if args.skip_plugins else plugin_benches(args.quick)
        echo("== street_search")
        try:
            from bench import street_search

            street_search.run(plugin_results, backends, quick=args.quick, echo=echo)
        except Exception as error:  # its failure must not lose the other figures
            plugin_errors["street_search"] = f"{type(error).__name__}: {error}"
            echo(f"  failed: {plugin_errors['street_search']}")
        echo("== import_customers")
        try:
            from bench import import_customers

            import_customers.run(plugin_results, backends, echo=echo)
        except Exception as error:  # its failure must not lose the other figures
            plugin_errors["import_customers"] = f"{type(error).__name__}: {error}"
            echo(f"  failed: {plugin_errors['import_customers']}")
    finally:
        if not args.keep:
            drop_databases(workdir, backends)
    result = summarise(reports, large, small, "quick" if args.quick else "full", started, load_before)
    result.update(plugin_results)
    if plugin_errors:
        result["plugin_bench_errors"] = plugin_errors
    output = args.output or RESULTS / ("latest-quick.json" if args.quick else "latest.json")
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(result, indent=2) + "\n")
    echo()
    echo(table(result))
    for key, value in plugin_results.items():
        if isinstance(value, int | float):
            echo(f"{key}: {value}")
    echo(f"\nwritten to {output} in {result['total_seconds']:.0f} s")
    return 0
