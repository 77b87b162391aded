"""CLI: ``python -m aistrata.testing.fake_upstream --port 9100 [knobs]``.

Runs the fake under uvicorn (httptools, uvloop, no access log) for
benchmarks and manual poking. ``--fault knob=value`` sets any `Faults` knob.
"""

from __future__ import annotations

import argparse

import uvicorn

from .app import FakeApp
from .faults import Faults, parse_profile


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m aistrata.testing.fake_upstream", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9100)
    parser.add_argument("--api-key", default=None, help="require exactly this key (default: any non-empty key)")
    parser.add_argument("--delay-ms", type=float, default=0.0, help="delay before response headers")
    parser.add_argument("--chunk-delay-ms", type=float, default=0.0, help="delay between stream frames")
    parser.add_argument("--reply-words", type=int, default=20)
    parser.add_argument("--fault", action="append", default=[], metavar="KNOB=VALUE",
                        help="any Faults knob, repeatable (e.g. --fault keepalive=1)")
    args = parser.parse_args(argv)
    faults = Faults(delay_ms=args.delay_ms, chunk_delay_ms=args.chunk_delay_ms, reply_words=args.reply_words)
    for name, value in parse_profile(",".join(args.fault)):
        setattr(faults, name, value)
    uvicorn.run(FakeApp(api_key=args.api_key, faults=faults), host=args.host, port=args.port, http="httptools",
                loop="uvloop", lifespan="off", access_log=False, log_level="warning")


if __name__ == "__main__":
    main()
