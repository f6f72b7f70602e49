"""``python -m benchmarks.perf.epoch_cost METHOD[VARIANT][:EPOCHS] ... [--dataset D] [--preset P]``: wall seconds per
training epoch of one LOSO fold, to size a preset's epoch cuts (the cost of a table is about folds x trainings x
epochs x this). Each method runs once for two epochs first (views, caches, warm-up), then ``EPOCHS`` (default 2)
under the ``oracle`` policy (a test evaluation per epoch, as ``last`` + ``oracle`` and ``val`` runs have). One
torch thread unless ``--threads``: a sweep worker's setting.
"""

from __future__ import annotations

import argparse
import sys
import time

from benchmarks.cli_args import CliError, fail, positive_int, report


def parse_item(text: str) -> tuple[str, str | None, int]:
    """``name``, ``name[variant]`` or either with ``:epochs``."""
    body, _, ep = text.partition(":")
    name, _, variant = body.partition("[")
    try:
        epochs = int(ep) if ep else 2
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: epochs after ':' must be an integer") from None
    if not name or epochs < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: expected METHOD[VARIANT][:EPOCHS] with EPOCHS >= 1")
    return name, variant.rstrip("]") or None, epochs


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.perf.epoch_cost", description=__doc__.splitlines()[0])
    ap.add_argument("methods", nargs="+", type=parse_item, metavar="METHOD[VARIANT][:EPOCHS]")
    ap.add_argument("--dataset", default="megc2019-public")
    ap.add_argument("--preset", default="default", help="whose overrides apply (its epochs are replaced)")
    ap.add_argument("--fold", type=int, default=0)
    ap.add_argument("--threads", type=positive_int, default=1)
    a = ap.parse_args(argv)
    try:
        return _run(a)
    except CliError as e:
        return report(e)


def _run(a: argparse.Namespace) -> int:
    import torch

    from benchmarks import evaluate
    from benchmarks.data.registry import load_dataset
    from benchmarks.presets import get_preset
    from benchmarks.registry import get_method

    torch.set_num_threads(a.threads)
    try:
        preset = get_preset(a.preset)
        specs = [get_method(name) for name, _, _ in a.methods]
        ds = load_dataset(a.dataset)
    except KeyError as e:
        fail(str(e.args[0]))
    for spec, (name, variant, epochs) in zip(specs, a.methods):
        overrides = preset.overrides_for(name, spec.family)
        kw = dict(variant=variant, folds=[a.fold], device="cpu")
        evaluate.run_loso(name, ds, overrides={**overrides, "epochs": 2}, **kw)
        t0 = time.perf_counter()
        evaluate.run_loso(name, ds, overrides={**overrides, "epochs": epochs}, epoch_policy="oracle", **kw)
        per_epoch = (time.perf_counter() - t0) / epochs
        print(f"{name}{f'[{variant}]' if variant else ''} on {ds.name} fold {a.fold}, preset {a.preset} "
              f"({overrides or 'registered defaults'}): {per_epoch:.2f} s per epoch, {a.threads} thread(s)",
              flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
