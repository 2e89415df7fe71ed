"""`python -m emulator --port 8700 --profile ideal ...`: the emulator without the nemo-batch CLI."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from emulator.config import EmulatorConfig, build_config

MB = 1024 * 1024


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m emulator", description=__doc__)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8700)
    p.add_argument("--profile", default="ideal", help="ideal | realistic | hostile | FILE.json")
    p.add_argument("--time-scale", type=float, default=1.0, help="multiplies every delay")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--data-dir", type=Path, default=Path(".emulator-data"))
    p.add_argument("--token", action="append", default=[], help="a registered token (repeatable)")
    p.add_argument("--registered-credits", type=int, default=1_000_000)
    p.add_argument("--anon-credits", type=int, default=100)
    p.add_argument("--anon-token-ttl", type=float, default=7 * 24 * 3600.0, help="seconds")
    p.add_argument("--generation-cost", type=int, default=100)
    p.add_argument("--edit-cost", type=int, default=50)
    p.add_argument("--max-upload-mb", type=float, default=200.0)
    p.add_argument("--allow-url-host", action="append", default=[], help='or "*" for any')
    p.add_argument("--event-shape", choices=["adk", "vendor"], default="adk")
    p.add_argument("--render-scale", type=float, default=1.0)
    p.add_argument("--render-workers", type=int, default=2)
    p.add_argument("--keepalive", type=float, default=5.0, help="seconds between keep-alives")
    p.add_argument("--public-url", default=None, help="base of cdn/output URLs")
    p.add_argument("--log-level", default="warning")
    p.add_argument("--rate-limit-rps", type=float, default=None)
    p.add_argument("--rate-limit-burst", type=int, default=None)
    p.add_argument("--no-text-rate", type=float, default=None)
    p.add_argument("--render-failure-rate", type=float, default=None)
    p.add_argument(
        "--variant",
        action="append",
        default=[],
        help="serve a backend variant (repeatable; `all`): see emulator/variants.py",
    )
    p.add_argument("--variant-rate", type=float, default=None)
    return p


def config_from_args(argv: list[str] | None = None) -> EmulatorConfig:
    args = parser().parse_args(argv)
    return build_config(
        data_dir=args.data_dir,
        profile=args.profile,
        profile_overrides={
            "rate_limit_rps": args.rate_limit_rps,
            "rate_limit_burst": args.rate_limit_burst,
            "no_text_rate": args.no_text_rate,
            "render_failure_rate": args.render_failure_rate,
            "variant_rate": args.variant_rate,
        },
        variants=args.variant,
        host=args.host,
        port=args.port,
        time_scale=args.time_scale,
        seed=args.seed,
        tokens=args.token,
        registered_credits=args.registered_credits,
        anon_credits=args.anon_credits,
        anon_token_ttl_s=args.anon_token_ttl,
        generation_cost=args.generation_cost,
        edit_cost=args.edit_cost,
        max_upload_bytes=int(args.max_upload_mb * MB),
        allow_url_hosts=args.allow_url_host,
        event_shape=args.event_shape,
        render_scale=args.render_scale,
        render_workers=args.render_workers,
        keepalive_s=args.keepalive,
        public_url=args.public_url,
        log_level=args.log_level,
    )


def main(argv: list[str] | None = None) -> None:
    try:
        config = config_from_args(argv)
    except ValueError as exc:
        sys.exit(f"emulator: {exc}")
    from emulator.server import serve

    serve(config)


if __name__ == "__main__":
    main()
