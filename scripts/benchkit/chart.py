"""The PNG: one panel per section (matplotlib, Agg backend, no display needed)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
from matplotlib.axes import Axes

from benchkit.cli_startup import LABELS, TARGETS_MS

ALGS = ("ES256", "EdDSA", "RS256", "HS256")


def _micro(ax: Axes, section: dict[str, Any]) -> None:
    width = 0.2
    series = (
        ("raw", "raw crypto"),
        ("pyjwt", "PyJWT decode"),
        ("miss", "bearer_grpc miss"),
        ("hit", "bearer_grpc hit"),
    )
    for offset, (key, label) in enumerate(series):
        xs = [i + (offset - 1.5) * width for i in range(len(ALGS))]
        ys = [section[alg].get(f"{key}_us", 0.0) for alg in ALGS]
        ax.bar(xs, ys, width, label=label)
    ax.set_xticks(range(len(ALGS)), ALGS)
    ax.set_yscale("log")
    ax.set_ylabel("µs per call (log)")
    ax.set_title("micro: verify one token")
    ax.legend(fontsize=7)


def _echo(ax: Axes, section: dict[str, Any]) -> None:
    variants = ("naive", "bearer", "bearer_fresh")
    labels = ("naive PyJWT", "bearer_grpc reused", f"fresh / {section['settings']['fresh_every']}")
    width = 0.35
    for offset, flavour in enumerate(("sync", "aio")):
        xs = [i + (offset - 0.5) * width for i in range(len(variants))]
        ys = [section[flavour][v]["ratio_to_bare"] for v in variants]
        ax.bar(xs, ys, width, label=flavour)
    ax.axhline(0.9, color="red", linestyle="--", linewidth=1, label="target 0.90x")
    ax.axhline(1.0, color="grey", linewidth=0.8)
    ax.set_xticks(range(len(variants)), labels, fontsize=8)
    ax.set_ylabel("throughput / bare (same round)")
    ax.set_title(f"echo: N={section['settings']['concurrency']} in flight")
    ax.legend(fontsize=7)


def _echo_cpu(ax: Axes, section: dict[str, Any]) -> None:
    variants = ("bare", "naive", "bearer", "bearer_fresh")
    labels = ("bare", "naive", "reused", "fresh")
    width = 0.35
    for offset, flavour in enumerate(("sync", "aio")):
        xs = [i + (offset - 0.5) * width for i in range(len(variants))]
        ys = [section[flavour][v]["server_cpu_us"] for v in variants]
        ax.bar(xs, ys, width, label=flavour)
    ax.set_xticks(range(len(variants)), labels)
    ax.set_ylabel("server CPU µs per call")
    ax.set_title("echo: server CPU per call")
    ax.legend(fontsize=7)


def _service(ax: Axes, section: dict[str, Any]) -> None:
    names = [n for n in ("echo", "verify", "issue_sqlite", "issue_postgresql") if n in section]
    short = {
        "echo": "bare echo",
        "verify": "VerifyToken",
        "issue_sqlite": "Issue SQLite",
        "issue_postgresql": "Issue PG",
    }
    ax.bar([short[n] for n in names], [section[n]["calls_per_s"] for n in names])
    ax.set_ylabel("calls/s")
    ax.set_title("service: TokenService RPCs")
    ax.tick_params(axis="x", labelsize=8)


def _grants(ax: Axes, section: dict[str, Any]) -> None:
    keys = [k for k in section if k.startswith("in_flight_")]
    xs = list(range(len(keys)))
    width = 0.38
    for offset, name in ((-width / 2, "thread"), (width / 2, "loop")):
        ys = [section[k][name]["wall_us"] for k in keys]
        ax.bar([x + offset for x in xs], ys, width, label=section[keys[0]][name]["label"])
    ax.set_xticks(xs, [f"{k.removeprefix('in_flight_')} in flight" for k in keys])
    ax.set_ylabel("wall µs per token")
    ax.set_title("grants: client credentials in process")
    ax.legend(fontsize=7)


def _revocation(ax: Axes, section: dict[str, Any]) -> None:
    names = [n for n in ("single", "cross_replica") if n in section]
    labels = {"single": "same replica", "cross_replica": "across replicas"}
    width = 0.35
    for offset, key in enumerate(("p50_ms", "p99_ms")):
        xs = [i + (offset - 0.5) * width for i in range(len(names))]
        ax.bar(xs, [section[n][key] for n in names], width, label=key.replace("_ms", ""))
    ax.axhline(100, color="red", linestyle="--", linewidth=1, label="target p99 100 ms")
    ax.set_xticks(range(len(names)), [labels[n] for n in names])
    ax.set_ylabel("ms from RevokeToken ack")
    ax.set_title("revocation propagation")
    ax.legend(fontsize=7)


def _memory(ax: Axes, section: dict[str, Any]) -> None:
    sizes = section["sizes"]
    ax.bar(
        [f"{s['tokens']:,}" for s in sizes],
        [s["bytes_per_token"] for s in sizes],
    )
    ax.axhline(1024, color="red", linestyle="--", linewidth=1, label="target 1 KiB")
    ax.set_xlabel("distinct tokens cached")
    ax.set_ylabel("bytes per cached token")
    ax.set_title("memory: TokenCache")
    ax.legend(fontsize=7)


def _http(ax: Axes, section: dict[str, Any]) -> None:
    ratios = {
        "HTTP / gRPC\nIssueToken": ("http_over_grpc", 0.9),
        "HTTP / oidc-\nprovider": ("http_over_oidc_provider", 0.5),
        "JWKS / bare\naiohttp": ("jwks_over_bare", 0.8),
    }
    present = {label: v for label, v in ratios.items() if v[0] in section}
    xs = range(len(present))
    ax.bar(xs, [section[key]["median"] for key, _ in present.values()])
    for x, (_, target) in zip(xs, present.values(), strict=True):
        ax.hlines(target, x - 0.4, x + 0.4, color="red", linestyle="--", linewidth=1)
    ax.set_xticks(list(xs), list(present))
    ax.set_ylabel("ratio (median of rounds); red: target")
    ax.set_title("http: the HTTP face")
    ax.tick_params(axis="x", labelsize=8)


def _cli(ax: Axes, section: dict[str, Any]) -> None:
    names = [name for name in LABELS if name in section]
    xs = range(len(names))
    ax.bar(xs, [section[name]["median_ms"] for name in names], label="median")
    ax.scatter(xs, [section[name]["min_ms"] for name in names], color="black", s=12, label="min")
    for x, name in zip(xs, names, strict=True):
        if name in TARGETS_MS:
            limit = TARGETS_MS[name]
            ax.hlines(limit, x - 0.4, x + 0.4, color="red", linestyle="--", linewidth=1)
    short = {"floor": "python\n-c pass", "version": "--version", "help": "--help"}
    ax.set_xticks(list(xs), [short.get(name, "token\nverify") for name in names])
    ax.set_ylabel("ms per process; red: target")
    ax.set_title(f"cli: whole process, {section['runs']} runs")
    ax.legend(fontsize=7, loc="upper left")


PANELS = {
    "micro": _micro,
    "echo": _echo,
    "echo_cpu": _echo_cpu,
    "service": _service,
    "grants": _grants,
    "revocation": _revocation,
    "memory": _memory,
    "http": _http,
    "cli": _cli,
}


def write(document: dict[str, Any], path: Path) -> None:
    """Draw every section present in ``document`` into ``path``."""
    present = [name for name in PANELS if name.split("_")[0] in document]
    columns = min(3, max(1, len(present)))
    rows = (len(present) + columns - 1) // columns
    fig, axes = plt.subplots(rows, columns, figsize=(5.2 * columns, 4 * rows), squeeze=False)
    flat = [ax for row in axes for ax in row]
    for ax, name in zip(flat, present, strict=False):
        PANELS[name](ax, document[name.split("_")[0]])
    for ax in flat[len(present) :]:
        ax.axis("off")
    env = document.get("environment", {})
    fig.suptitle(
        f"bearer_grpc bench ({'quick' if document['settings']['quick'] else 'full'}): "
        f"Python {env.get('python')}, grpcio {env.get('grpcio')}, {env.get('nproc')} CPUs",
        fontsize=10,
    )
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
