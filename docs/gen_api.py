#!/usr/bin/env python3
"""Regenerate docs/api.md from the public headers' doc comments.

Every public function is declared in include/gencache/*.h with a comment
that says who owns what, what it returns on each error, and from which
threads it may be called.  This script lays those comments out as the API
reference, so the reference cannot drift from the headers.  Run it after
changing a header:  python3 docs/gen_api.py
"""
import os
import re

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HEADERS = [
    ("version.h", "Version"),
    ("actor.h", "Processes (`actor_`)"),
    ("cache.h", "Caches (`cache_`)"),
    ("sup.h", "Supervisors (`sup_`)"),
]


def clean_comment(text):
    lines = []
    for line in text.strip().splitlines():
        line = line.strip()
        line = re.sub(r"^/\*+\s?", "", line)
        line = re.sub(r"\s?\*+/$", "", line)
        line = re.sub(r"^\*\s?", "", line)
        lines.append(line)
    while lines and not lines[0]:
        lines.pop(0)
    while lines and not lines[-1]:
        lines.pop()
    return "\n".join(lines)


def blocks(src):
    """Yield (comment, code) pairs: a comment and the declarations after it."""
    # Doc comments start in column 0; field comments inside structs do not.
    pattern = re.compile(r"^(/\*.*?\*/)", re.S | re.M)
    parts = pattern.split(src)
    for i in range(1, len(parts) - 1, 2):
        yield clean_comment(parts[i]), parts[i + 1]


def main():
    out = ["# gencache API reference", "",
           "Generated from the public headers by `docs/gen_api.py`; the headers",
           "are the source of truth. Conventions for every function: it returns 0",
           "(or a documented non-negative value) on success and a negative errno on",
           "failure; `*_strerror` turns any result into text; bad input returns",
           "`-EINVAL` and changes nothing; functions may be called from any thread",
           "unless the entry says otherwise. Read [design.md](design.md) for the",
           "model behind them.", ""]
    for name, title in HEADERS:
        path = os.path.join(ROOT, "include", "gencache", name)
        if not os.path.exists(path):
            continue
        src = open(path).read()
        out += ["## %s — `<gencache/%s>`" % (title, name), ""]
        first = True
        for comment, code in blocks(src):
            if first:
                out += [comment, ""]
                first = False
                continue
            keep = []
            for line in code.splitlines():
                if re.match(r"\s*(#ifndef|#ifdef|#endif|#else|#if |#include|extern \"C\"|}$)", line):
                    continue
                if re.match(r"#define GENCACHE_\w+_H\b", line):
                    continue
                keep.append(line.replace("GC_EXPORT ", ""))
            text = "\n".join(keep).strip()
            if not text:
                continue
            names = re.findall(r"^\w[\w \*]*?\b((?:actor|cache|sup|gencache)_\w+)\s*\(", text, re.M)
            if names:
                out += ["### " + ", ".join("`%s`" % n for n in names), ""]
            out += ["```c", text, "```", "", comment, ""]
    # Types with bodies (structs, enums) are best read in the header itself.
    out += ["## Types", "",
            "Option and record structs (`actor_opts_t`, `actor_behaviour_t`,",
            "`cache_opts_t`, `cache_op_t`, `cache_stats_t`, `cache_record_t`, and the",
            "supervisor's spec types) are documented field by field in the headers.",
            ""]
    with open(os.path.join(ROOT, "docs", "api.md"), "w") as f:
        f.write("\n".join(out))


if __name__ == "__main__":
    main()
