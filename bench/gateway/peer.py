"""LiteLLM 1.110.2 as a benchmark peer.

`pip install 'litellm[proxy]==1.110.2'` does not resolve (the `proxy` extra pins
`litellm-proxy==1.110.2`, which the index does not carry). So this module:

1. downloads the litellm 1.110.2 wheel (``pip download --no-deps``),
2. reads the requirements its METADATA lists under ``extra == 'proxy'``,
   drops ``litellm-proxy``, strips the extra clause from each marker (pip
   still evaluates the rest, e.g. ``python_full_version < '3.15'``),
3. installs the wheel plus those requirements into ``bench/.peer/litellm-venv``
   (a venv of its own), relaxing the exact pins on ``litellm-enterprise`` and
   ``litellm-proxy-extras`` if those releases are not on the index.

It also writes a LiteLLM ``config.yaml`` pointing ``bench-model`` at a fake
upstream and starts ``litellm --num_workers 1`` with telemetry and callbacks
off. Health: ``GET /health/liveliness``.

    python bench/gateway/peer.py install          # create / reuse the venv
    python bench/gateway/peer.py smoke --fake-port 8900   # one chat completion
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path

VERSION = "1.110.2"
BENCH_DIR = Path(__file__).resolve().parents[1]
PEER_DIR = BENCH_DIR / ".peer"
VENV = PEER_DIR / "litellm-venv"
WHEELS = PEER_DIR / "wheels"
MODEL = "bench-model"


def venv_python() -> Path:
    return VENV / "bin" / "python"


def installed_versions(names=("litellm", "litellm-enterprise", "litellm-proxy-extras")) -> dict:
    """{distribution: version or None} in the peer venv."""
    if not venv_python().exists():
        return {n: None for n in names}
    code = ("import importlib.metadata as m, json, sys\n"
            "def v(n):\n try: return m.version(n)\n except m.PackageNotFoundError: return None\n"
            "print(json.dumps({n: v(n) for n in sys.argv[1:]}))")
    out = subprocess.run([str(venv_python()), "-c", code, *names], capture_output=True, text=True)
    return json.loads(out.stdout) if out.returncode == 0 else {n: None for n in names}


def installed_version() -> str | None:
    """The litellm version in the peer venv, or None."""
    return installed_versions(("litellm",))["litellm"]


def download_wheel() -> Path:
    WHEELS.mkdir(parents=True, exist_ok=True)
    found = sorted(WHEELS.glob(f"litellm-{VERSION}-*.whl"))
    if not found:
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps",
             f"litellm=={VERSION}", "-d", str(WHEELS)],
            check=True,
        )
        found = sorted(WHEELS.glob(f"litellm-{VERSION}-*.whl"))
    return found[0]


def proxy_requirements(wheel: Path) -> list[str]:
    """Requirement strings listed under ``extra == 'proxy'`` in the wheel METADATA."""
    with zipfile.ZipFile(wheel) as zf:
        name = next(n for n in zf.namelist() if n.endswith(".dist-info/METADATA"))
        metadata = zf.read(name).decode()
    reqs = []
    extra_clause = re.compile(r"""\s*(and\s+)?extra\s*==\s*['"]proxy['"]\s*(and\s+)?""")
    for line in metadata.splitlines():
        if not line.startswith("Requires-Dist:"):
            continue
        spec = line.split(":", 1)[1].strip()
        req, _, marker = spec.partition(";")
        if not re.search(r"""extra\s*==\s*['"]proxy['"]""", marker):
            continue
        if re.match(r"litellm-proxy\b(?!-)", req.strip()):
            continue  # not on the index; the proxy code ships inside litellm itself
        marker = extra_clause.sub(" ", marker).strip()
        marker = re.sub(r"\s+and\s*$", "", marker)
        reqs.append(f"{req.strip()} ; {marker}" if marker else req.strip())
    return reqs


# Companion packages pinned exactly by the proxy extra; their exact releases may be
# missing from the index, so they are retried unpinned.
RELAXABLE = ("litellm-enterprise", "litellm-proxy-extras")


def relax(req: str) -> str:
    """``litellm-enterprise==X ; m`` -> ``litellm-enterprise ; m``."""
    name, _, marker = req.partition(";")
    name = re.split(r"[=<>!~ ]", name.strip(), maxsplit=1)[0]
    return f"{name} ; {marker.strip()}" if marker.strip() else name


def install() -> None:
    """Create (or reuse) bench/.peer/litellm-venv with litellm VERSION and its proxy deps."""
    if installed_version() == VERSION:
        print(f"peer: reusing {VENV} (litellm {VERSION})")
        return
    PEER_DIR.mkdir(parents=True, exist_ok=True)
    if not venv_python().exists():
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    wheel = download_wheel()
    reqs = proxy_requirements(wheel)
    pip = [str(venv_python()), "-m", "pip", "install", str(wheel)]
    print("peer: installing", wheel.name, "with", len(reqs), "proxy requirements")
    if subprocess.run(pip + reqs).returncode != 0:
        reqs = [relax(r) if r.startswith(RELAXABLE) else r for r in reqs]
        print("peer: retrying with the pins on", ", ".join(RELAXABLE), "relaxed")
        subprocess.run(pip + reqs, check=True)
    if installed_version() != VERSION:
        raise SystemExit(f"peer: litellm {VERSION} not importable in {VENV}")


def write_config(path: Path, fake_port: int) -> Path:
    """A LiteLLM config sending ``bench-model`` to the fake upstream, callbacks off."""
    config = {
        "model_list": [{
            "model_name": MODEL,
            "litellm_params": {
                "model": f"openai/{MODEL}",
                "api_base": f"http://127.0.0.1:{fake_port}/v1",
                "api_key": "fake-key",
            },
        }],
        "litellm_settings": {
            "telemetry": False,
            "callbacks": [],
            "success_callback": [],
            "failure_callback": [],
            "set_verbose": False,
            "json_logs": False,
        },
        "general_settings": {},
    }
    # JSON is valid YAML, and keeps this module free of a yaml dependency.
    path.write_text(json.dumps(config, indent=2))
    return path


def env() -> dict[str, str]:
    e = dict(os.environ)
    e.update({
        "LITELLM_DANGEROUSLY_PERMIT_WEAK_OR_UNSET_MASTER_KEY": "true",
        "LITELLM_TELEMETRY": "False",
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",  # no fetch of the cost map from the internet
        "LITELLM_LOG": "ERROR",
        "LITELLM_MODE": "PRODUCTION",  # do not load a .env file
        "DISABLE_ADMIN_UI": "True",
        "NO_PROXY": "127.0.0.1,localhost",
        "no_proxy": "127.0.0.1,localhost",
    })
    for k in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY", "all_proxy"):
        e.pop(k, None)
    return e


def command(config: Path, port: int) -> list[str]:
    return [str(VENV / "bin" / "litellm"), "--config", str(config),
            "--host", "127.0.0.1", "--port", str(port), "--num_workers", "1"]


HEALTH_PATH = "/health/liveliness"


def smoke(fake_port: int, port: int) -> None:
    """Start LiteLLM against a running fake upstream and send one chat completion."""
    import tempfile
    import time
    import urllib.request

    work = Path(tempfile.mkdtemp(prefix="litellm-smoke-"))
    cfg = write_config(work / "config.yaml", fake_port)
    log = open(work / "litellm.log", "wb")
    proc = subprocess.Popen(command(cfg, port), env=env(), cwd=work, stdout=log, stderr=subprocess.STDOUT)
    try:
        t0 = time.monotonic()
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}{HEALTH_PATH}", timeout=1) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() - t0 > 120:
                raise SystemExit(f"litellm did not come up; see {work / 'litellm.log'}")
            time.sleep(0.1)
        print(f"healthy after {time.monotonic() - t0:.2f}s")
        body = json.dumps({"model": MODEL, "messages": [{"role": "user", "content": "Say hello"}]}).encode()
        req = urllib.request.Request(f"http://127.0.0.1:{port}/v1/chat/completions", data=body,
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=30) as r:
            print(r.status, r.read().decode()[:400])
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("install")
    sub.add_parser("requirements", help="print the proxy requirements read from the wheel")
    s = sub.add_parser("smoke")
    s.add_argument("--fake-port", type=int, required=True)
    s.add_argument("--port", type=int, default=8911)
    args = ap.parse_args()
    if args.cmd == "install":
        install()
    elif args.cmd == "requirements":
        print("\n".join(proxy_requirements(download_wheel())))
    else:
        smoke(args.fake_port, args.port)


if __name__ == "__main__":
    main()
