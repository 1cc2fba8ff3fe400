# SPDX-License-Identifier: AGPL-3.0-or-later
"""`cmake --install` must give a coherent tree for the prefix the build was configured with:
programs where Debian and the FHS put them, a unit that runs the installed portierd, the
reader worker where the installed portierd looks for it, man pages, completion, sysusers
and tmpfiles files in directories systemd reads.

Usage: check_install_tree.py BUILD_DIR PREFIX. Installs into a temporary DESTDIR."""

import os
import re
import subprocess
import sys
import tempfile

build, prefix = sys.argv[1], sys.argv[2]
problems = []

with tempfile.TemporaryDirectory() as dest:
    env = dict(os.environ, DESTDIR=dest)
    subprocess.run(["cmake", "--install", build], env=env, check=True, capture_output=True)
    root = dest + prefix

    def need(path, executable=False):
        full = dest + path
        if not os.path.exists(full):
            problems.append("%s is not installed" % path)
        elif executable and not os.access(full, os.X_OK):
            problems.append("%s is not executable" % path)

    for p in ("/sbin/portierd", "/sbin/portier-backup", "/bin/portierctl",
              "/bin/portier-custodian", "/libexec/portier/portier-reader"):
        need(prefix + p, executable=True)
    for p in ("/share/man/man8/portierd.8", "/share/man/man5/portier.conf.5",
              "/share/man/man1/portierctl.1", "/share/man/man1/portier-custodian.1",
              "/share/man/man8/portier-reader.8", "/share/man/man8/portier-backup.8",
              "/share/bash-completion/completions/portierctl"):
        need(prefix + p)
    for wrong in ("/bin/portierd", "/bin/portier-reader", "/sbin/portierctl"):
        if os.path.exists(root + wrong):
            problems.append("%s%s: installed in the wrong directory" % (prefix, wrong))

    units = {}
    for d, _, files in os.walk(dest):
        for f in files:
            units.setdefault(f, []).append(os.path.join(d, f)[len(dest):])
    for unit in ("portier.service", "portier-custodian.service", "portier-backup.service",
                 "portier-backup.timer"):
        paths = units.get(unit, [])
        if len(paths) != 1 or not re.search(r"/lib/systemd/system/%s$" % re.escape(unit), paths[0]):
            problems.append("%s: installed at %s, not in a systemd unit directory" % (unit, paths))
            continue
        text = open(dest + paths[0]).read()
        for m in re.finditer(r"^Exec\w*=[-@+!:]*(/\S+)", text, re.M):
            if m.group(1).startswith("/bin/"):
                continue
            if not os.path.exists(dest + m.group(1)):
                problems.append("%s runs %s, which is not in the installed tree"
                                % (unit, m.group(1)))
    for conf in ("sysusers.d", "tmpfiles.d"):
        found = [p for p in units.get("portier.conf", []) if "/%s/" % conf in p]
        if not found or not found[0].startswith(prefix if prefix != "/usr" else "/usr/lib"):
            problems.append("portier.conf of %s: %s" % (conf, found or "not installed"))

    # The installed portierd runs the reader worker from where it was installed.
    reader = prefix + "/libexec/portier/portier-reader"
    help_text = subprocess.run([dest + prefix + "/sbin/portierd", "--help"], capture_output=True,
                               text=True, check=True).stdout
    if "reader is %s\n" % reader not in help_text:
        problems.append("portierd does not look for its reader worker at %s" % reader)

for p in problems:
    print("check_install_tree: " + p)
if problems:
    sys.exit(1)
print("check_install_tree: the tree installed for %s is coherent" % prefix)
