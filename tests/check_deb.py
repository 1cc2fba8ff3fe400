# SPDX-License-Identifier: AGPL-3.0-or-later
"""Check Portier's .deb packages: every file where Debian and the FHS want it, with the
right mode, the binaries built for the package's architecture, the units pointing at
programs the package ships, the conffile, the dependencies dpkg-shlibdeps cannot see, and
maintainer scripts that create the users before the directories, restart on upgrade only
and never delete data except on purge.

Usage: check_deb.py ARCH portier_VERSION_ARCH.deb portier-custodian_VERSION_ARCH.deb
Exits 1 with one line per problem."""

import os
import re
import shutil
import subprocess
import sys
import tempfile

ELF_MACHINE = {"amd64": "Advanced Micro Devices X86-64", "arm64": "AArch64", "armhf": "ARM"}

# path: (mode, kind) — kind "elf" is checked for the architecture.
PORTIER_FILES = {
    "/usr/sbin/portierd": ("-rwxr-xr-x", "elf"),
    "/usr/sbin/portier-backup": ("-rwxr-xr-x", "script"),
    "/usr/libexec/portier/portier-reader": ("-rwxr-xr-x", "elf"),
    "/usr/bin/portierctl": ("-rwxr-xr-x", "elf"),
    "/lib/systemd/system/portier.service": ("-rw-r--r--", "unit"),
    "/lib/systemd/system/portier-backup.service": ("-rw-r--r--", "unit"),
    "/lib/systemd/system/portier-backup.timer": ("-rw-r--r--", "unit"),
    "/usr/lib/sysusers.d/portier.conf": ("-rw-r--r--", ""),
    "/usr/lib/tmpfiles.d/portier.conf": ("-rw-r--r--", ""),
    "/etc/portier/portier.conf": ("-rw-r-----", "conffile"),
    "/usr/share/bash-completion/completions/portierctl": ("-rw-r--r--", ""),
    "/usr/share/man/man8/portierd.8.gz": ("-rw-r--r--", "man"),
    "/usr/share/man/man8/portier-reader.8.gz": ("-rw-r--r--", "man"),
    "/usr/share/man/man8/portier-backup.8.gz": ("-rw-r--r--", "man"),
    "/usr/share/man/man5/portier.conf.5.gz": ("-rw-r--r--", "man"),
    "/usr/share/man/man1/portierctl.1.gz": ("-rw-r--r--", "man"),
    "/usr/share/doc/portier/copyright": ("-rw-r--r--", ""),
    "/usr/share/doc/portier/install-raspberry-pi.md.gz": ("-rw-r--r--", ""),
}
CUSTODIAN_FILES = {
    "/usr/bin/portier-custodian": ("-rwxr-xr-x", "elf"),
    "/lib/systemd/system/portier-custodian.service": ("-rw-r--r--", "unit"),
    "/usr/lib/sysusers.d/portier-custodian.conf": ("-rw-r--r--", ""),
    "/usr/lib/tmpfiles.d/portier-custodian.conf": ("-rw-r--r--", ""),
    "/etc/default/portier-custodian": ("-rw-r--r--", "conffile"),
    "/usr/share/man/man1/portier-custodian.1.gz": ("-rw-r--r--", "man"),
    "/usr/share/doc/portier-custodian/copyright": ("-rw-r--r--", ""),
}
# Programs that must never be shipped (test doubles, benchmarks) or never be in bin/.
FORBIDDEN = re.compile(r"(pn532-emu|portier-sitesim|portier-benchgen|/test_|/replay_|"
                       r"^/usr/local/|^/var/lib/|^/run/|^/usr/bin/portierd$|"
                       r"^/usr/bin/portier-reader$|^/usr/sbin/portierctl$)")

problems = []


def problem(msg):
    problems.append(msg)


def run(*args):
    return subprocess.run(args, capture_output=True, text=True, check=True).stdout


def contents(deb):
    """{path: mode} of the package's regular files and symlinks."""
    files = {}
    for line in run("dpkg-deb", "-c", deb).splitlines():
        fields = line.split(None, 5)
        mode, path = fields[0], fields[5].split(" -> ")[0]
        path = path[1:] if path.startswith(".") else path
        if mode.startswith("d"):
            continue
        files[path] = mode
    return files


def check_package(deb, arch, expected, name, extra=None):
    files = contents(deb)
    with tempfile.TemporaryDirectory() as root, tempfile.TemporaryDirectory() as ctrl:
        run("dpkg-deb", "-x", deb, root)
        run("dpkg-deb", "-e", deb, ctrl)
        for path, (mode, kind) in expected.items():
            if path not in files:
                problem("%s: %s is missing" % (name, path))
                continue
            if files[path] != mode:
                problem("%s: %s has mode %s, expected %s" % (name, path, files[path], mode))
            full = root + path
            if kind == "elf":
                header = run("readelf", "-h", full)
                if ELF_MACHINE[arch] not in header.split("Machine:")[1].splitlines()[0]:
                    problem("%s: %s is not built for %s" % (name, path, arch))
            if kind == "unit":
                check_unit(name, path, full, files)
            if kind == "conffile":
                conffiles = open(os.path.join(ctrl, "conffiles")).read().split()
                if path not in conffiles:
                    problem("%s: %s is not a conffile" % (name, path))
        for path in files:
            if FORBIDDEN.search(path):
                problem("%s: ships %s, which belongs in no package or elsewhere" % (name, path))
        control = open(os.path.join(ctrl, "control")).read()
        check_scripts(name, ctrl)
        if extra:
            extra(root, control)


def check_unit(name, path, full, files):
    text = open(full).read()
    if "Documentation=" not in text and path.endswith(".service"):
        problem("%s: %s has no Documentation=" % (name, path))
    for page in re.findall(r"man:([\w.-]+)\((\d)\)", text):
        if page[0].startswith("systemd"):
            continue
        if "/usr/share/man/man%s/%s.%s.gz" % (page[1], page[0], page[1]) not in files:
            problem("%s: %s names man:%s(%s), which the package lacks" % (name, path, *page))
    for line in text.splitlines():
        m = re.match(r"Exec\w*=[-@+!:]*(\S+)", line)
        if m and not m.group(1).startswith("/bin/"):
            if m.group(1) not in files:
                problem("%s: %s runs %s, which the package does not ship" % (name, path, m.group(1)))


def script(ctrl, which):
    p = os.path.join(ctrl, which)
    return open(p).read() if os.path.exists(p) else ""


def check_scripts(name, ctrl):
    unit = name + ".service"
    # An upgrade must not stop the service for the whole unpack: the postinst restarts it.
    for which in ("preinst", "prerm"):
        if re.search(r"upgrade.*\n\s*deb-systemd-invoke stop '?%s" % re.escape(unit), script(ctrl, which)):
            problem("%s: %s stops %s on upgrade" % (name, which, unit))
    if not re.search(r"remove.*\n\s*deb-systemd-invoke stop '?%s" % re.escape(unit), script(ctrl, "prerm")):
        problem("%s: prerm does not stop %s on removal" % (name, unit))
    for which in ("preinst", "postinst", "prerm", "postrm"):
        text = script(ctrl, which)
        if not text:
            continue
        r = subprocess.run(["sh", "-n", os.path.join(ctrl, which)], capture_output=True, text=True)
        if r.returncode != 0:
            problem("%s: %s does not parse: %s" % (name, which, r.stderr.strip()))
        if "set -e" not in text:
            problem("%s: %s lacks set -e" % (name, which))
    postinst = script(ctrl, "postinst")
    # The user must exist before tmpfiles chowns the directories to it.
    sysusers, tmpfiles = postinst.find("systemd-sysusers"), postinst.find("systemd-tmpfiles")
    if sysusers < 0:
        problem("%s: postinst does not create the system user (systemd-sysusers)" % name)
    elif tmpfiles < 0 or tmpfiles < sysusers:
        problem("%s: postinst must run systemd-sysusers before systemd-tmpfiles" % name)
    if name == "portier":
        # The per-site secret: created on a first install only, never over a file.
        key = re.search(r'if \[ -z "\$2" \] && \[ ! -e "\$key" \].*?\n\s*fi', postinst, re.S)
        if "key=/var/lib/portier/desfire-master.key" not in postinst or not key:
            problem("portier: postinst does not create the DESFire master key on a first install "
                    "only, without overwriting")
        elif "chmod 0600" not in key.group(0) or "chown portier:portier" not in key.group(0):
            problem("portier: postinst leaves the DESFire master key readable by others")
    if "try-restart" not in postinst:
        problem("%s: postinst does not restart a running service on upgrade" % name)
    # Never delete or overwrite data outside purge.
    for which in ("preinst", "postinst", "prerm"):
        if re.search(r"\brm\s+-[a-z]*r|\brm\b[^\n]*/var/lib/", script(ctrl, which)):
            problem("%s: %s removes files" % (name, which))
    postrm = script(ctrl, "postrm")
    purge = postrm.split("purge)", 1)
    if len(purge) < 2 or "/var/lib/" not in purge[1].split(";;", 1)[0]:
        problem("%s: postrm purge does not remove the state directory" % name)
    if re.search(r"\brm\b[^\n]*/var/backups", postrm):
        problem("%s: postrm must keep the backups in /var/backups/portier" % name)


def check_units(portier_deb, custodian_deb):
    """systemd-analyze verify on the packaged units (as installed, with this system's
    targets), and their exposure: the custodian's and the backup's sandboxes are at least
    as tight as portierd's, which is at most 2.5 ("OK")."""
    units = ["portier.service", "portier-backup.service", "portier-backup.timer",
             "portier-custodian.service"]
    with tempfile.TemporaryDirectory() as root:
        run("dpkg-deb", "-x", portier_deb, root)
        run("dpkg-deb", "-x", custodian_deb, root)
        unitdir = root + "/lib/systemd/system"
        for f in os.listdir("/lib/systemd/system"):
            if f.endswith((".target", ".slice", ".socket")) and not os.path.exists(
                    os.path.join(unitdir, f)):
                try:
                    shutil.copyfile(os.path.join("/lib/systemd/system", f), os.path.join(unitdir, f))
                except OSError:
                    pass            # a dangling link of this system
        p = subprocess.run(["systemd-analyze", "verify", "--man=no", "--root=" + root] +
                           [os.path.join(unitdir, u) for u in units],
                           capture_output=True, text=True)
        if p.returncode != 0 or p.stdout.strip() or p.stderr.strip():
            problem("systemd-analyze verify: %s" % (p.stdout + p.stderr).strip())
        exposure = {}
        for u in units:
            if not u.endswith(".service"):
                continue
            p = subprocess.run(["systemd-analyze", "security", "--offline=true", "--root=" + root,
                                os.path.join(unitdir, u)], capture_output=True, text=True)
            m = re.search(r"Overall exposure level for %s: ([0-9.]+)" % re.escape(u), p.stdout)
            if not m:
                problem("systemd-analyze security %s: %s" % (u, (p.stdout + p.stderr)[-300:]))
                continue
            exposure[u] = float(m.group(1))
        if exposure.get("portier.service", 10) > 2.5:
            problem("portier.service: exposure %s, more than 2.5" % exposure.get("portier.service"))
        for u in ("portier-custodian.service", "portier-backup.service"):
            if u in exposure and exposure[u] > exposure.get("portier.service", 0):
                problem("%s: exposure %.1f, looser than portier.service's %.1f"
                        % (u, exposure[u], exposure["portier.service"]))
        return exposure


def main():
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    arch, portier_deb, custodian_deb = sys.argv[1:]
    check_package(portier_deb, arch, PORTIER_FILES, "portier", check_portier)
    check_package(custodian_deb, arch, CUSTODIAN_FILES, "portier-custodian")
    exposure = check_units(portier_deb, custodian_deb)
    for p in problems:
        print("check_deb: " + p)
    if problems:
        sys.exit(1)
    print("check_deb: portier and portier-custodian for %s: files, modes, architecture, "
          "units, dependencies and maintainer scripts ok; exposure %s" % (arch, ", ".join(
              "%s %.1f" % (u, e) for u, e in sorted(exposure.items()))))


def check_portier(root, control):
    # libmosquitto is dlopen()ed: dpkg-shlibdeps cannot see it, so control must say it.
    if not re.search(r"^Recommends:.*\blibmosquitto1\b", control, re.M):
        problem("portier: libmosquitto1 is not in Recommends")
    if re.search(r"^Depends:.*\blibmosquitto", control, re.M):
        problem("portier: Depends on libmosquitto, which only MQTT sites need")
    needed = run("readelf", "-d", root + "/usr/sbin/portierd")
    if "libmosquitto" in needed:
        problem("portier: portierd links libmosquitto instead of loading it")
    # libcurl likewise (e-mail and webhooks): the OpenSSL build, which transport.c tries first.
    if not re.search(r"^Recommends:.*\blibcurl4\b", control, re.M):
        problem("portier: libcurl4 is not in Recommends")
    if "libcurl" in needed:
        problem("portier: portierd links libcurl instead of loading it")
    for lib in ("libsqlite3-0", "libsystemd0", "libgpiod2", "libmicrohttpd12", "libsodium23",
                "libjansson4", "libinih1", "libc6"):
        if not re.search(r"^Depends:.*\b%s\b" % re.escape(lib), control, re.M):
            problem("portier: Depends lacks %s (dpkg-shlibdeps)" % lib)
    if not re.search(r"^Depends:.*\bsqlite3\b", control, re.M):
        problem("portier: Depends lacks sqlite3 (portier-backup)")
    if not re.search(r"^Depends:.*\blibnfc6\b", control, re.M):
        problem("portier: Depends lacks libnfc6 (portier-reader)")
    # The unit runs the daemon from where the package puts it.
    unit = open(root + "/lib/systemd/system/portier.service").read()
    if "ExecStart=/usr/sbin/portierd -c /etc/portier/portier.conf" not in unit:
        problem("portier: portier.service does not run /usr/sbin/portierd")


if __name__ == "__main__":
    main()
