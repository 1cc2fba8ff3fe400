#!/usr/bin/python3
# SPDX-License-Identifier: AGPL-3.0-or-later
"""Portier is built with a 64-bit time_t and 64-bit file offsets everywhere
(_TIME_BITS=64, _FILE_OFFSET_BITS=64), also on Debian 12 armhf, whose libraries were built
with a 32-bit time_t and, many of them, 32-bit off_t. Any library function that takes or
returns such a type, or a struct holding one, would then be called with the wrong layout.

This test finds those functions in the headers of every library Portier links (after the
preprocessor, so only the library's own declarations count), and fails if a Portier
program or library imports one. A library added to CMakeLists.txt must be given its
headers below, or the test fails too.

Usage: check_time_abi.py --cc CC [--sysroot DIR] --cmakelists FILE --nm NM FILE...
(the libraries are the pkg_check_modules() of the top CMakeLists.txt)."""

import argparse
import os
import re
import subprocess
import sys

# pkg-config module -> headers that declare its API (as included by Portier's sources).
HEADERS = {
    "libsystemd": ["systemd/sd-event.h", "systemd/sd-daemon.h", "systemd/sd-journal.h"],
    "sqlite3": ["sqlite3.h"],
    "libgpiod": ["gpiod.h"],
    "libnfc": ["nfc/nfc.h"],
    "libmosquitto": ["mosquitto.h"],
    "libmicrohttpd": ["microhttpd.h"],
    "inih": ["ini.h"],
    "jansson": ["jansson.h"],
    "libsodium": ["sodium.h"],
    "cmocka": ["stdarg.h", "stddef.h", "stdint.h", "setjmp.h", "cmocka.h"],
    "libseccomp": ["seccomp.h"],
    "libfreefare": ["freefare.h"],
    "nettle": ["nettle/aes.h", "nettle/cmac.h"],
    "libcurl": ["curl/curl.h"],
}
# Types whose size depends on _TIME_BITS or _FILE_OFFSET_BITS (not glibc's own __time_t or
# __off_t, which keep their size: FILE and the like do not change).
SEED = {"time_t", "off_t", "ino_t", "blkcnt_t", "fsblkcnt_t", "fsfilcnt_t", "rlim_t",
        "struct timespec", "struct timeval", "struct tm", "struct itimerspec", "struct stat",
        "struct timex", "struct rusage", "struct utimbuf", "struct dirent"}


def preprocess(cc, sysroot, header):
    """Declarations of header (and of the library's own headers it includes), one string each."""
    cmd = [cc, "-E", "-D_GNU_SOURCE", "-x", "c", "-"]
    if sysroot:
        cmd.insert(1, "--sysroot=" + sysroot)
    src = "#include <%s>\n" % header
    out = subprocess.run(cmd, input=src, capture_output=True, text=True)
    if out.returncode != 0:
        return None, None
    own_dir = os.path.dirname(header)
    keep, current_own = [], False
    everything = []
    for line in out.stdout.splitlines():
        m = re.match(r'# \d+ "([^"]+)"', line)
        if m:
            path = m.group(1)
            current_own = path.endswith("/" + header) or (
                own_dir and ("/" + own_dir + "/") in path and "/bits/" not in path)
            continue
        everything.append(line)
        if current_own:
            keep.append(line)
    return "\n".join(keep), "\n".join(everything)


def declarations(text):
    """Split C text into top-level declarations (at ';' or a closing '}' at depth 0)."""
    decls, depth, cur = [], 0, []
    for ch in text:
        cur.append(ch)
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
        elif ch == ";" and depth == 0:
            decls.append(" ".join("".join(cur).split()))
            cur = []
    return decls


def time_types(all_decls):
    """Seed types plus structs, unions and typedefs that contain one, to a fixpoint."""
    types = set(SEED)
    changed = True
    while changed:
        changed = False
        for d in all_decls:
            uses = any(re.search(r"(?<![\w])%s(?![\w])" % re.escape(t), d) for t in types)
            if not uses:
                continue
            for m in re.finditer(r"\b(struct|union)\s+(\w+)\s*\{", d):
                name = "%s %s" % (m.group(1), m.group(2))
                if name not in types:
                    types.add(name)
                    changed = True
            m = re.match(r"typedef\s.*?(\w+)\s*(\[[^\]]*\])?;$", d)
            if m and "(" not in d and m.group(1) not in types:
                types.add(m.group(1))
                changed = True
    return types


def strip_attributes(d):
    """d without __attribute__((...)) and __asm__(...) parts (balanced parentheses)."""
    out, i = [], 0
    while i < len(d):
        m = re.compile(r"__attribute__|__asm__|__asm|__extension__").match(d, i)
        if not m:
            out.append(d[i])
            i += 1
            continue
        i = m.end()
        while i < len(d) and d[i] == " ":
            i += 1
        if i < len(d) and d[i] == "(":
            depth = 0
            while i < len(d):
                depth += d[i] == "("
                depth -= d[i] == ")"
                i += 1
                if depth == 0:
                    break
    return "".join(out)


def functions_using(own_decls, types):
    """Names of functions declared in own_decls whose signature mentions one of types."""
    found = {}
    for d in map(strip_attributes, own_decls):
        if "(" not in d or d.startswith("typedef") or "{" in d.split("(")[0]:
            continue
        m = re.search(r"(\w+)\s*\(", d)
        if not m:
            continue
        for t in types:
            if re.search(r"(?<![\w])%s(?![\w])" % re.escape(t), d):
                found[m.group(1)] = t
                break
    return found


def imported(nm, path):
    out = subprocess.run([nm, "-u", path], capture_output=True, text=True)
    syms = set()
    for line in out.stdout.splitlines():
        parts = line.split()
        if parts:
            syms.add(parts[-1].split("@")[0])
    return syms


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cc", required=True)
    ap.add_argument("--sysroot", default="")
    ap.add_argument("--cmakelists", required=True)
    ap.add_argument("--nm", default="nm")
    ap.add_argument("files", nargs="+")
    args = ap.parse_args()

    problems = []
    hazards = {}
    text = open(args.cmakelists).read()
    modules = [m.group(1) for m in re.finditer(
        r"pkg_check_modules\(\s*\w+(?:\s+(?:REQUIRED|QUIET|IMPORTED_TARGET))*\s+([\w.+-]+)", text)]
    if not modules:
        problems.append("no pkg_check_modules() in %s" % args.cmakelists)
    for module in modules:
        if module not in HEADERS:
            problems.append("library %s has no entry in check_time_abi.py's HEADERS: name the "
                            "headers of its API there" % module)
            continue
        for header in HEADERS[module]:
            own, everything = preprocess(args.cc, args.sysroot, header)
            if own is None:
                continue            # a header of a library this build does not have
            types = time_types(declarations(everything))
            for fn, t in functions_using(declarations(own), types).items():
                hazards[fn] = (module, header, t)
    for f in args.files:
        for sym in sorted(imported(args.nm, f) & set(hazards)):
            module, header, t = hazards[sym]
            problems.append("%s calls %s() of %s (<%s>), whose signature carries %s: its "
                            "layout differs between a 32-bit-time_t library and Portier"
                            % (os.path.basename(f), sym, module, header, t))
    if os.environ.get("VERBOSE"):
        for fn, (module, header, t) in sorted(hazards.items()):
            print("  %s: %s() carries %s" % (module, fn, t))
    for p in problems:
        print("check_time_abi: " + p)
    if problems:
        sys.exit(1)
    print("check_time_abi: %d library functions carry time_t/off_t; %d files call none of them"
          % (len(hazards), len(args.files)))


if __name__ == "__main__":
    main()
