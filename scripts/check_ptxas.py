#!/usr/bin/env python3
"""Fails when ptxas serializes the wgmma pipeline of a Hopper kernel.

ptxas reports "(C7511) Potential Performance Loss: wgmma.mma_async instructions are serialized due to
insufficient register resources" as an info line that nothing fails on: the build succeeds and every
wgmma then waits for the one before. Session 17 measured such a variant as 16% slower and dropped the
idea behind it (docs/performance.md, session 20). This check recompiles the Hopper kernel sources with
the build's own commands (compile_commands.json) for sm_90a only and fails on that report, naming the
kernels. It also prints each kernel's spills, for information.

Usage: scripts/check_ptxas.py BUILD_DIR   (a CUDA build configured with sm_90a code)
"""
import json
import os
import re
import shlex
import subprocess
import sys
import tempfile

TARGET_DIR = "ditrun_sparse_attention_sm90.dir"  # sparse_attention/CMakeLists.txt's Hopper object target


def main() -> int:
    if len(sys.argv) != 2:
        print(__doc__)
        return 2
    db_path = os.path.join(sys.argv[1], "compile_commands.json")
    try:
        with open(db_path) as f:
            entries = [e for e in json.load(f) if TARGET_DIR in e.get("output", e.get("command", ""))]
    except OSError as err:
        print(f"check_ptxas: cannot read {db_path}: {err}; configure the build first (cmake -S . -B BUILD_DIR)")
        return 2
    if not entries:
        print(f"check_ptxas: no {TARGET_DIR} sources in {db_path}: is the CUDA backend with sm_90a code configured?")
        return 2
    failed = []
    with tempfile.TemporaryDirectory() as tmp:
        for e in entries:
            args = e["arguments"] if "arguments" in e else shlex.split(e["command"])
            out = os.path.join(tmp, os.path.basename(e["file"]) + ".o")
            cmd, skip = [], False
            for a in args:
                if skip:
                    skip = False
                    continue
                if a == "-o":
                    skip = True
                    continue
                if a.startswith("--generate-code=") or a.startswith("-gencode"):
                    continue
                cmd.append(a)
            cmd += ["--generate-code=arch=compute_90a,code=[sm_90a]", "-Xptxas", "-v", "-o", out]
            run = subprocess.run(cmd, cwd=e["directory"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            name = os.path.relpath(e["file"], os.path.dirname(os.path.abspath(__file__)) + "/..")
            if run.returncode != 0:
                print(f"{name}: the compile failed (exit {run.returncode}):\n{run.stdout[-4000:]}")
                failed.append(name)
                continue
            serialized = re.findall(r"C7511\).*?function '([^']+)'", run.stdout)
            spills, fn = [], None
            for line in run.stdout.splitlines():
                m = re.search(r"Compiling entry function '([^']+)'", line)
                if m:
                    fn = m.group(1)
                m = re.search(r"(\d+) bytes spill stores", line)
                if m and fn is not None:
                    spills.append((fn, m.group(1)))
                    fn = None
            print(f"{name}: {len(spills)} kernels, {len(serialized)} with serialized wgmma")
            for fn, n in spills:
                if n != "0":
                    print(f"  {n} bytes spilled: {fn}")
            for fn in serialized:
                print(f"  SERIALIZED wgmma (C7511): {fn}")
            if serialized:
                failed.append(name)
    if failed:
        print("check_ptxas: ptxas serialized the wgmma pipeline (or the compile failed) in: " + ", ".join(failed) +
              ". Keep accumulator registers in place across wgmmas (read and write them inside one asm statement, "
              "or only after a wait), or give the kernel registers back; see docs/performance.md, session 20.")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
