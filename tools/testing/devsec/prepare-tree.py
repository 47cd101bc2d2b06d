#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Build the prepared kernel tree: pristine + patches/series + overlay files.

The prepared tree is updated by content: a file is rewritten only when its
bytes change, so make's mtime-based dependency tracking rebuilds exactly
what the change affects.  Files that an earlier run patched or copied in and
that are no longer part of the overlay are restored from the pristine tree
(or removed), so a dropped patch or file never lingers.

Patches are applied in a scratch directory holding only the files they
touch; a patch that does not apply stops the run before the prepared tree is
modified, naming the patch and printing the rejected hunks.
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile

# Top-level directories of the repository that hold files at kernel paths.
OVERLAY_DIRS = ("arch", "drivers", "include", "rust", "samples", "Documentation",
                "tools", "lib", "kernel", "scripts")
SKIP_SUFFIXES = ("~", ".orig", ".rej", ".swp")
STATE = ".coco-overlay.json"


def die(msg):
    print(f"\nerror: {msg}", file=sys.stderr)
    sys.exit(1)


def touched_by(patch):
    """Files a unified diff creates, modifies or deletes."""
    files = set()
    with open(patch, encoding="utf-8", errors="replace") as f:
        for line in f:
            for tag, pfx in (("+++ ", "b/"), ("--- ", "a/")):
                if line.startswith(tag):
                    path = line[4:].split("\t")[0].strip()
                    if path.startswith(pfx):
                        files.add(path[2:])
    return files


def overlay_files(overlay):
    out = {}
    for top in OVERLAY_DIRS:
        root = os.path.join(overlay, top)
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames[:] = [d for d in dirnames if not d.startswith(".")
                           and d != "__pycache__"]
            for name in filenames:
                if name.endswith(SKIP_SUFFIXES):
                    continue
                full = os.path.join(dirpath, name)
                out[os.path.relpath(full, overlay)] = full
    return out


def same(a, b):
    try:
        if os.path.getsize(a) != os.path.getsize(b):
            return False
    except OSError:
        return False
    with open(a, "rb") as fa, open(b, "rb") as fb:
        return fa.read() == fb.read()


def install(src, dst):
    """Atomically replace dst with a copy of src (never writes in place)."""
    os.makedirs(os.path.dirname(dst), exist_ok=True)
    tmp = dst + ".coco-tmp"
    shutil.copyfile(src, tmp)
    shutil.copymode(src, tmp)
    os.replace(tmp, dst)


def main():
    overlay, pristine, ksrc = sys.argv[1:4]
    if not os.path.isfile(os.path.join(pristine, ".complete")):
        die(f"pristine tree {pristine} is incomplete; run fetch-kernel.sh")

    if not os.path.isfile(os.path.join(ksrc, ".coco-prepared")):
        print(f"==> creating prepared tree {ksrc}", file=sys.stderr)
        tmp = ksrc + ".tmp"
        for old_tree in (tmp, ksrc):
            if os.path.islink(old_tree):
                os.remove(old_tree)
            shutil.rmtree(old_tree, ignore_errors=True)
        os.makedirs(tmp)
        # Copy the contents: the pristine path may be a symlink to a shared
        # tree, which must never be modified through the copy.
        if subprocess.run(["cp", "-a", os.path.join(os.path.realpath(pristine), "."),
                           tmp]).returncode:
            shutil.rmtree(tmp, ignore_errors=True)
            die(f"copying {pristine} failed (disk full?)")
        os.remove(os.path.join(tmp, ".complete"))
        os.replace(tmp, ksrc)
        open(os.path.join(ksrc, ".coco-prepared"), "w").close()

    state_path = os.path.join(ksrc, STATE)
    try:
        with open(state_path) as f:
            old = set(json.load(f))
    except (OSError, ValueError):
        old = set()

    series_file = os.path.join(overlay, "patches", "series")
    series = []
    if os.path.exists(series_file):
        with open(series_file) as f:
            series = [l.split("#")[0].strip() for l in f]
        series = [s for s in series if s]

    overlay_map = overlay_files(overlay)
    with tempfile.TemporaryDirectory(prefix="coco-stage.") as stage:
        touched = set()
        for name in series:
            patch = os.path.join(overlay, "patches", name)
            if not os.path.isfile(patch):
                die(f"patches/series names {name}, which does not exist")
            files = touched_by(patch)
            for p in files - touched:
                src = os.path.join(pristine, p)
                if os.path.isfile(src):
                    os.makedirs(os.path.dirname(os.path.join(stage, p)), exist_ok=True)
                    shutil.copy2(src, os.path.join(stage, p))
            touched |= files
            rej = os.path.join(stage, ".rej")
            r = subprocess.run(["patch", "-p1", "-d", stage, "-s", "-f", "-F0",
                                "--no-backup-if-mismatch", "-r", rej, "-i", patch],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True)
            if r.returncode != 0:
                msg = r.stdout
                if os.path.exists(rej):
                    with open(rej, errors="replace") as f:
                        msg += "\nrejected hunks:\n" + f.read()
                print(msg, file=sys.stderr)
                die(f"patches/{name} does not apply to linux-{os.path.basename(pristine)}; "
                    "the prepared tree was left unchanged")

        clash = touched & set(overlay_map)
        if clash:
            die("both patched and shipped as overlay files: " + ", ".join(sorted(clash)))
        for rel, full in overlay_map.items():
            install(full, os.path.join(stage, rel))

        wanted = touched | set(overlay_map)
        changed = 0
        for rel in sorted(wanted | old):
            dst = os.path.join(ksrc, rel)
            staged = os.path.join(stage, rel)
            if rel in wanted and os.path.isfile(staged):
                src = staged
            elif rel not in wanted and os.path.isfile(os.path.join(pristine, rel)):
                src = os.path.join(pristine, rel)
            else:
                src = None
            if src is None:
                if os.path.lexists(dst):
                    os.remove(dst)
                    changed += 1
            elif not same(src, dst):
                install(src, dst)
                changed += 1

    tmp = state_path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(sorted(wanted), f, indent=0)
    os.replace(tmp, state_path)
    print(f"==> prepared tree: {len(series)} patches, {len(overlay_map)} overlay files, "
          f"{changed} files updated", file=sys.stderr)


if __name__ == "__main__":
    main()
