#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Summarise the KTAP results of one or more guest logs.

The guest log holds the guest test script's KTAP document and a dmesg dump
with the boot-time KUnit KTAP.  Every top-level KTAP document is parsed
recursively; leaf test cases are counted.  The plan may come before the
results or after them (the guest suite streams its results and prints the
plan last).  The run fails (exit 1) when a case failed, when a plan does
not match the results seen or is missing (a guest that died or hung
half-way must not pass; the results it printed are still shown), or when
there were no tests at all.

Arguments: PATH or PREFIX=PATH (the prefix, e.g. the build flavour, is put
before every case name).  Output: one line per case, then
"N passed, N failed, N skipped".
"""

import re
import sys

TS = re.compile(r"^\[\s*\d+\.\d+\]\s?")
RESULT = re.compile(r"^(ok|not ok) (\d+)(?: -)? ?([^#]*?)\s*(?:#\s*(.*))?$")
PLAN = re.compile(r"^1\.\.(\d+)")
VERSION = re.compile(r"^(KTAP|TAP) version \d+")


class Doc:
    def __init__(self, indent):
        self.indent = indent
        self.plan = None
        self.trailing = False  # the plan came after the results
        self.late = 0          # results after a trailing plan
        self.results = []      # (ok, num, name, directive, child Doc or None)
        self.pending = None    # subtest document opened before its result line


def parse_lines(lines):
    """Return the top-level documents, tolerating unrelated log lines."""
    docs = []
    stack = []
    for raw in lines:
        line = TS.sub("", raw.rstrip("\n").replace("\r", ""))
        if not line.strip():
            continue
        indent = len(line) - len(line.lstrip(" "))
        body = line.strip()
        if VERSION.match(body):
            if indent == 0:
                stack = [Doc(0)]
                docs.append(stack[0])
                continue
            while stack and stack[-1].indent >= indent:
                stack.pop()
            if not stack:
                continue
            child = Doc(indent)
            stack[-1].pending = child
            stack.append(child)
            continue
        if not stack:
            continue
        # Unrelated log lines (kernel messages, diagnostics) change nothing.
        if not (PLAN.match(body) or RESULT.match(body)):
            continue
        # Close documents deeper than this line.
        while len(stack) > 1 and indent < stack[-1].indent:
            stack.pop()
        doc = stack[-1]
        if indent != doc.indent:
            # A subtest without a version line ("# Subtest:" style).
            if indent > doc.indent:
                child = Doc(indent)
                doc.pending = child
                stack.append(child)
                doc = child
            else:
                continue
        m = PLAN.match(body)
        if m:
            if doc.plan is None:
                doc.plan = int(m.group(1))
                doc.trailing = bool(doc.results)
            continue
        m = RESULT.match(body)
        if m:
            if doc.trailing:
                doc.late += 1
            child, doc.pending = doc.pending, None
            doc.results.append((m.group(1) == "ok", int(m.group(2)),
                                m.group(3).strip(), (m.group(4) or "").strip(), child))
    return docs


def walk(doc, prefix, cases, problems):
    where = prefix or "top"
    if doc.plan is None:
        if doc.results:
            ok, num, name = doc.results[-1][:3]
            last = f"{'ok' if ok else 'not ok'} {num} {name}"
            problems.append(f"{where}: no plan, the output ends after {len(doc.results)}"
                            f" results at '{last}' (died, hung or timed out)")
        else:
            problems.append(f"{where}: KTAP version line but no plan and no results")
    elif doc.plan != len(doc.results):
        problems.append(f"{where}: plan 1..{doc.plan} but {len(doc.results)} results")
    if doc.late:
        problems.append(f"{where}: {doc.late} results after the trailing plan")
    for ok, num, name, directive, child in doc.results:
        full = f"{prefix}.{name}" if prefix else name
        skip = directive.upper().startswith("SKIP")
        if child is not None and child.results:
            walk(child, full, cases, problems)
            if not ok and not skip and not any(not c[0] for c in child.results):
                cases.append((full, "fail", directive))
        else:
            if child is not None and child.plan:
                problems.append(f"{full}: plan 1..{child.plan} but no results")
            state = "skip" if skip else ("pass" if ok else "fail")
            cases.append((full, state, directive))
    if doc.pending is not None:
        # A subtest that started but never reported: the guest died in it.
        name = f"{prefix}.(unfinished)" if prefix else "(unfinished)"
        problems.append(f"{name}: subtest without a result line (output truncated)")
        walk(doc.pending, name, cases, problems)


def main():
    cases, problems = [], []
    # Arguments are PATH or PREFIX=PATH; a prefix names the flavour.
    for arg in sys.argv[1:]:
        prefix, _, path = arg.rpartition("=")
        try:
            with open(path, errors="replace") as f:
                docs = parse_lines(f)
        except OSError as e:
            problems.append(f"{path}: {e.strerror}")
            continue
        if not docs:
            problems.append(f"{path}: no KTAP document")
        for doc in docs:
            walk(doc, prefix, cases, problems)
    for name, state, directive in cases:
        tag = {"pass": "PASS", "fail": "FAIL", "skip": "SKIP"}[state]
        extra = f"  # {directive}" if directive and state != "pass" else ""
        print(f"  [{tag}] {name}{extra}")
    for p in problems:
        print(f"  [FAIL] KTAP structure: {p}")
    passed = sum(1 for c in cases if c[1] == "pass")
    failed = sum(1 for c in cases if c[1] == "fail") + len(problems)
    skipped = sum(1 for c in cases if c[1] == "skip")
    if not cases:
        print("  [FAIL] no KTAP test results found")
        failed += 1
    line = f"{passed} passed, {failed} failed"
    if skipped:
        line += f", {skipped} skipped"
    print(line)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
