"""Benchmark: extraction + normalisation + matching of post texts against tracked outputs.

A realistic mix: most posts carry no identifier, some a DOI (bare, doi:, doi.org URL), a
publisher or news URL, a tracked briefing URL, an arXiv or PubMed link. Prints texts per
second and peak memory. Usage: ``python bench/matching.py [TEXTS] [OUTPUTS]``.
"""

from __future__ import annotations

import random
import resource
import sys
import time

from reachmeter.matching.match import Matcher, OutputIndex

WORDS = (
    "the",
    "new",
    "study",
    "shows",
    "that",
    "open",
    "access",
    "research",
    "matters",
    "for",
    "our",
    "library",
    "and",
    "its",
    "users",
    "read",
    "this",
    "thread",
    "about",
    "impact",
    "climate",
    "health",
    "policy",
    "data",
    "science",
    "results",
    "today",
    "wow",
)


def _outputs(count: int) -> list[tuple[int, str, str]]:
    rows: list[tuple[int, str, str]] = []
    for number in range(count):
        rows.append((number, "doi", f"10.{5000 + number % 400}/journal.{number:07d}"))
        if number % 10 == 0:
            rows.append((number, "url", f"https://law.example/briefings/{number}"))
    return rows


def _texts(count: int, outputs: int, rng: random.Random) -> list[str]:
    texts = []
    for number in range(count):
        words = " ".join(rng.choice(WORDS) for _ in range(rng.randint(8, 30)))
        kind = rng.random()
        target = rng.randrange(outputs * 2)
        doi = f"10.{5000 + target % 400}/journal.{target:07d}"
        if kind < 0.70:
            texts.append(words)
        elif kind < 0.78:
            texts.append(f"{words} https://doi.org/{doi}")
        elif kind < 0.83:
            texts.append(f"{words} doi:{doi}.")
        elif kind < 0.90:
            texts.append(f"{words} https://news.example/{number}/story?utm_source=tw")
        elif kind < 0.93:
            texts.append(f"{words} https://law.example/briefings/{target - target % 10}/")
        elif kind < 0.96:
            texts.append(f"{words} https://www.tandfonline.com/doi/full/{doi}?src=recsys")
        elif kind < 0.98:
            texts.append(
                f"{words} https://arxiv.org/abs/2101.{number % 99999:05d}v2 PMID: {number}"
            )
        else:
            texts.append(f"{words} https://t.co/{number:x} and https://doi.org/{doi} {doi}")
    return texts


def main() -> None:
    total = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    outputs = int(sys.argv[2]) if len(sys.argv) > 2 else 100_000
    rng = random.Random(42)
    started = time.perf_counter()
    index = OutputIndex(_outputs(outputs))
    print(
        f"index of {outputs:,} outputs ({len(index):,} identifiers) in "
        f"{time.perf_counter() - started:.1f} s"
    )
    matcher = Matcher(index)
    chunk = 100_000
    matched = 0
    elapsed = 0.0
    for start in range(0, total, chunk):
        texts = _texts(min(chunk, total - start), outputs, rng)
        began = time.perf_counter()
        for text in texts:
            matched += len(matcher.match_text(text))
        elapsed += time.perf_counter() - began
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(
            f"  {start + len(texts):>9,} texts  {(start + len(texts)) / elapsed:>9,.0f} texts/s"
            f"  peak RSS {peak:,.0f} MiB"
        )
    print(
        f"{total:,} texts in {elapsed:.1f} s: {total / elapsed:,.0f} texts/s, {matched:,} matches"
    )


if __name__ == "__main__":
    main()
