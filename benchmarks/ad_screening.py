"""Precision, recall and false-positive rate of ad screening on the labelled corpus.

The corpus (tests/cloud/internet/ad_corpus.toml) holds lawful and unlawful ad sentences written for this
project and labelled by hand with the rules they break. Scored per (sentence, rule) pair: a hit on a rule the
sentence breaks is a true positive, a hit on any other rule a false positive; the false-positive rate is the
share of LAWFUL sentences that get any hit. Baseline in the same run: the same term lists with no exceptions
and no goods scoping (a plain keyword filter, what a naive monitoring script does).

    .venv/bin/python benchmarks/ad_screening.py [--show]
"""

from __future__ import annotations

import argparse
import sys
import tomllib
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from cloud.internet.rules import AdRule, fold, screening_rules  # noqa: E402
from cloud.internet.screening import screen_ad  # noqa: E402

CORPUS = ROOT / "tests" / "cloud" / "internet" / "ad_corpus.toml"


def load_corpus() -> list[dict[str, object]]:
    return list(tomllib.loads(CORPUS.read_text(encoding="utf-8"))["sentences"])


def engine(text: str, goods: str) -> set[str]:
    return {h.rule_id for h in screen_ad(text, goods)}


def keyword_baseline(text: str, goods: str) -> set[str]:
    folded = fold(text)
    out: set[str] = set()
    for rule in screening_rules().ad_rules:
        if isinstance(rule, AdRule) and rule.type == "terms" and rule.term_re.search(folded):
            out.add(rule.id)
    return out


def score(corpus: list[dict[str, object]], fn: Callable[[str, str], set[str]]) -> dict[str, float | int]:
    tp = fp = fn_ = lawful = lawful_flagged = 0
    for s in corpus:
        expect = set(s["expect"])  # type: ignore[call-overload]
        got = fn(str(s["text"]), str(s.get("goods", "ordinary")))
        tp += len(got & expect)
        fp += len(got - expect)
        fn_ += len(expect - got)
        if not expect:
            lawful += 1
            lawful_flagged += bool(got)
    precision = tp / (tp + fp) if tp + fp else 1.0
    recall = tp / (tp + fn_) if tp + fn_ else 1.0
    return {
        "tp": tp,
        "fp": fp,
        "fn": fn_,
        "precision": precision,
        "recall": recall,
        "lawful": lawful,
        "lawful_flagged": lawful_flagged,
        "fpr": lawful_flagged / lawful if lawful else 0.0,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--show", action="store_true", help="print every sentence the engine gets wrong")
    args = parser.parse_args()
    corpus = load_corpus()
    unlawful = sum(1 for s in corpus if s["expect"])
    print(
        f"corpus: {len(corpus)} sentences ({unlawful} unlawful, {len(corpus) - unlawful} lawful); rules {screening_rules().version}"
    )
    results = {
        "engine (rules + exceptions)": score(corpus, engine),
        "baseline (keywords only)": score(corpus, keyword_baseline),
    }
    print(f"{'':30} {'precision':>9} {'recall':>7} {'FP rate (lawful flagged)':>26}")
    for name, r in results.items():
        print(
            f"{name:30} {r['precision']:9.3f} {r['recall']:7.3f} {r['fpr']:8.3f} ({r['lawful_flagged']}/{r['lawful']})"
        )
    e, b = results["engine (rules + exceptions)"], results["baseline (keywords only)"]
    if b["fpr"]:
        print(f"false-positive rate vs baseline: {e['fpr'] / b['fpr']:.2f}×")
    if args.show:
        for s in corpus:
            got = engine(str(s["text"]), str(s.get("goods", "ordinary")))
            if got != set(s["expect"]):  # type: ignore[call-overload]
                print(f"  {s['text']}  expected {sorted(s['expect'])} got {sorted(got)}")  # type: ignore[call-overload]


if __name__ == "__main__":
    main()
