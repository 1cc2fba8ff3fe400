#!/usr/bin/python3
# SPDX-License-Identifier: AGPL-3.0-or-later
"""The layers of docs/architecture.md, checked on the built libraries with nm.

Each static library may only call what its own objects define, what the libraries below
it define, and the system libraries it is allowed. In particular:

- the pure core (policy, schedules, booking rules, wire formats, card ids) calls nothing
  but libc and libsodium: no SQL, no loop, no hardware, no JSON library;
- nothing but the store (and the custodian's own database module) calls sqlite3_*;
- hw calls neither the store nor the daemon's services;
- the DESFire key derivation (the reader worker's) calls only libc and nettle.

Usage: check_layers.py BUILD_DIR. Exits 1 and names each offending symbol and object."""

import os
import subprocess
import sys

# library -> (libraries below it, system libraries it may call)
LAYERS = {
    "portier-core": ([], ["c", "sodium"]),
    # AN10922 for the reader worker: nettle's AES-CMAC, nothing else.
    "portier-desfire-kdf": ([], ["c", "nettle"]),
    "portier-wire": (["portier-core"], ["c", "sodium", "jansson"]),
    "portier-base": (["portier-core"], ["c", "systemd"]),
    "portier-hw": (["portier-base", "portier-core"], ["c", "systemd", "gpiod"]),
    "portier-store": (["portier-core"], ["c", "sodium", "sqlite3"]),
    "portier-services": (["portier-store", "portier-hw", "portier-base", "portier-wire",
                          "portier-core"],
                         ["c", "sodium", "systemd", "jansson", "inih", "gpiod"]),
    "portier-web": (["portier-services", "portier-store", "portier-hw", "portier-base",
                     "portier-wire", "portier-core"],
                    ["c", "sodium", "systemd", "jansson", "microhttpd"]),
}
# The only objects outside the store allowed to speak SQL: the custodian's own database.
SQL_ALLOWED = {"portier-store", "portier-custodian-core:custodian_db.c.o"}
# Symbols the toolchain itself provides.
TOOLCHAIN = {"_GLOBAL_OFFSET_TABLE_", "__stack_chk_fail", "__gmon_start__"}


def nm(path, *flags):
    out = subprocess.run(["nm", "-P", *flags, path], capture_output=True, text=True, check=True)
    return out.stdout.splitlines()


def archive_symbols(path):
    """{object: (defined, undefined)} of a static library."""
    objs, current = {}, None
    for line in nm(path, "-A"):
        # "lib.a[obj.o]: name type [value size]"
        head, _, rest = line.partition(": ")
        obj = head[head.index("[") + 1:-1] if "[" in head else head
        fields = rest.split()
        if not fields:
            continue
        name, kind = fields[0], fields[1]
        d, u = objs.setdefault(obj, (set(), set()))
        if kind in ("U", "w", "v"):
            if kind == "U":
                u.add(name)
        else:
            d.add(name)
    return objs


def shared_library(name):
    out = subprocess.run(["/sbin/ldconfig", "-p"], capture_output=True, text=True).stdout
    for line in out.splitlines():
        line = line.strip()
        if line.startswith("lib%s.so." % name) and "x86-64" in line or \
                line.startswith("lib%s.so." % name) and "=>" in line:
            path = line.split("=>")[-1].strip()
            if os.path.exists(path):
                return path
    return None


def system_symbols(name):
    path = shared_library(name)
    if not path:
        raise SystemExit("check_layers: cannot find lib%s.so" % name)
    syms = set()
    for line in nm(path, "-D", "--defined-only"):
        fields = line.split()
        if fields:
            syms.add(fields[0].split("@")[0])
    return syms


def main():
    build = sys.argv[1]
    libs = {}
    for name in list(LAYERS) + ["portier-custodian-core"]:
        path = os.path.join(build, "lib%s.a" % name)
        if not os.path.exists(path):
            raise SystemExit("check_layers: %s is not built" % path)
        libs[name] = archive_symbols(path)
    defined = {name: set().union(*(d for d, u in objs.values())) for name, objs in libs.items()}
    sysdefs = {}
    problems = []

    for name, (below, system) in LAYERS.items():
        allowed = set(defined[name]) | TOOLCHAIN
        for b in below:
            allowed |= defined[b]
        for s in system:
            if s not in sysdefs:
                sysdefs[s] = system_symbols(s)
            allowed |= sysdefs[s]
        for obj, (d, u) in sorted(libs[name].items()):
            for sym in sorted(u - allowed):
                problems.append("%s: %s calls %s, which is not in its layer or below" %
                                (name, obj, sym))

    for name, objs in libs.items():
        for obj, (d, u) in sorted(objs.items()):
            if name in SQL_ALLOWED or "%s:%s" % (name, obj) in SQL_ALLOWED:
                continue
            for sym in sorted(s for s in u if s.startswith("sqlite3_")):
                problems.append("%s: %s calls %s: only the store speaks SQL" % (name, obj, sym))

    for p in problems:
        print(p)
    if problems:
        print("%d layer violation(s)" % len(problems))
        return 1
    print("layers ok: %s" % ", ".join(LAYERS))
    return 0


if __name__ == "__main__":
    sys.exit(main())
