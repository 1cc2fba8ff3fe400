#!/usr/bin/python3
# SPDX-License-Identifier: AGPL-3.0-or-later
"""Writes the seed corpora of fuzz_reader_msg (tests/fuzz/corpus/reader_msg/): datagrams a
reader worker may send (struct reader_msg, version 2) and commands the daemon sends it
(struct reader_cmd), well formed and broken one field at a time; and of fuzz_reader_worker
(tests/fuzz/corpus/reader_worker/): what a worker receives from its parent, in order, each
datagram behind a length byte, the first one its KEYS. Run it again after a change of
hw/reader_proto.h; the layouts below must follow it."""

import os
import struct

MSG = "<BBBBHBBI10s48sBBBBI96s"         # struct reader_msg
CMD = "<BBBBII16s16sB16sB16s"           # struct reader_cmd
V = 2
HELLO, ARRIVED, LEFT, ERROR, HEARTBEAT, DONE = 1, 2, 3, 4, 5, 6
AUTH_NONE, AUTH_OK, AUTH_NOT_DESFIRE, AUTH_NO_APP, AUTH_FAILED, AUTH_REMOVED = range(6)
KEYS, PROVISION, DEPROVISION, CANCEL = 1, 2, 3, 4
HERE = os.path.dirname(os.path.abspath(__file__))
DIR = os.path.join(HERE, "corpus", "reader_msg")
WORKER_DIR = os.path.join(HERE, "corpus", "reader_worker")


def msg(typ, version=V, uid=b"", uid_len=None, sak=0, atqa=0, ats=b"", ats_len=None, targets=0,
        seq=1, auth=0, app=0, key_version=0, status=0, request=0, text=b""):
    return struct.pack(MSG, version, typ, len(uid) if uid_len is None else uid_len, sak, atqa,
                       len(ats) if ats_len is None else ats_len, targets, seq, uid, ats, auth,
                       app, key_version, status, request, text)


def cmd(typ, version=V, flags=0, picc=0, request=0, timeout=0, key=b"", gen=0, old=b"", old_gen=0,
        picc_key=b""):
    return struct.pack(CMD, version, typ, flags, picc, request, timeout, key, key, gen, old,
                       old_gen, picc_key)


U4, U7, U10 = b"\x04\xa1\xb2\xc3", b"\x04\xa1\xb2\xc3\xd4\xe5\xf6", bytes(range(1, 11))
ATS = b"\x75\x77\x81\x02\x80"
SEEDS = {
    "empty": b"",
    "hello": msg(HELLO, text=b"pn532_uart:/dev/serial0"),
    "hello-long-name": msg(HELLO, text=b"x" * 95),
    "hello-uid-len-ignored": msg(HELLO, uid_len=9, text=b"dev"),
    "heartbeat": msg(HEARTBEAT),
    "error": msg(ERROR, text=b"reader not answering: Timeout"),
    "arrived-4": msg(ARRIVED, uid=U4, sak=0x08, atqa=0x0004, targets=1),
    "arrived-7": msg(ARRIVED, uid=U7, atqa=0x0044, targets=1),
    "arrived-10": msg(ARRIVED, uid=U10, atqa=0x0044, targets=1),
    "arrived-ats": msg(ARRIVED, uid=U7, sak=0x20, atqa=0x0344, ats=ATS, targets=1),
    "arrived-2-targets": msg(ARRIVED, uid=U4, sak=0x08, targets=2),
    "left-4": msg(LEFT, uid=U4, targets=1),
    "left-2-targets": msg(LEFT, uid=U4, targets=2),
    # DESFire authentication results
    "arrived-auth-ok-site": msg(ARRIVED, uid=U7, sak=0x20, ats=ATS, targets=1, auth=AUTH_OK, app=1,
                                key_version=1),
    "arrived-auth-ok-consortium": msg(ARRIVED, uid=U7, sak=0x20, ats=ATS, targets=1, auth=AUTH_OK,
                                      app=2, key_version=7),
    "arrived-auth-ok-random-uid-real": msg(ARRIVED, uid=U7, sak=0x20, ats=ATS, targets=1,
                                           auth=AUTH_OK, app=1, key_version=1),
    "arrived-auth-failed": msg(ARRIVED, uid=U7, sak=0x20, ats=ATS, targets=1, auth=AUTH_FAILED,
                               text=b"tap key: wrong key"),
    "arrived-auth-removed": msg(ARRIVED, uid=b"\x08\x12\x34\x56", sak=0x20, ats=ATS, targets=1,
                                auth=AUTH_REMOVED, text=b"the card stopped answering"),
    "arrived-not-desfire": msg(ARRIVED, uid=U7, targets=1, auth=AUTH_NOT_DESFIRE,
                               text=b"not a DESFire card"),
    "arrived-no-app": msg(ARRIVED, uid=U7, sak=0x20, ats=ATS, targets=1, auth=AUTH_NO_APP),
    "done-ok": msg(DONE, uid=U7, status=0, request=1, text=b"site application ready"),
    "done-timeout": msg(DONE, status=1, request=9, text=b"no card was presented in time"),
    "done-foreign": msg(DONE, status=4, request=0xFFFFFFFF, text=b"keys this site does not know"),
    # broken
    "bad-version": msg(HEARTBEAT, version=1),
    "bad-type-0": msg(0),
    "bad-type-7": msg(7),
    "bad-uid-len-5": msg(ARRIVED, uid=U4 + b"\x00", targets=1),
    "bad-uid-len-255": msg(ARRIVED, uid=U4, uid_len=255, targets=1),
    "bad-ats-len-49": msg(ARRIVED, uid=U4, ats=ATS, ats_len=49, targets=1),
    "bad-targets-0": msg(ARRIVED, uid=U4, targets=0),
    "bad-targets-3": msg(ARRIVED, uid=U4, targets=3),
    "bad-targets-255-left": msg(LEFT, uid=U4, targets=255),
    "bad-auth-6": msg(ARRIVED, uid=U7, targets=1, auth=6),
    "bad-auth-on-left": msg(LEFT, uid=U7, targets=1, auth=AUTH_FAILED),
    "bad-auth-ok-without-app": msg(ARRIVED, uid=U7, targets=1, auth=AUTH_OK),
    "bad-app-without-auth": msg(ARRIVED, uid=U7, targets=1, app=1),
    "bad-app-3": msg(ARRIVED, uid=U7, targets=1, auth=AUTH_OK, app=3),
    "bad-auth-ok-uid-4": msg(ARRIVED, uid=U4, targets=1, auth=AUTH_OK, app=1),
    "bad-done-no-request": msg(DONE, uid=U7, status=0),
    "bad-done-ok-no-uid": msg(DONE, status=0, request=3),
    "bad-done-failed-with-uid": msg(DONE, uid=U7, status=4, request=3),
    "bad-done-status-10": msg(DONE, status=10, request=3),
    "bad-request-on-heartbeat": msg(HEARTBEAT, request=5),
    "unterminated-text": msg(ERROR, text=b"x" * 96),
    "short": msg(HEARTBEAT)[:-1],
    "long": msg(HEARTBEAT) + b"\x00",
    # commands from the daemon (reader_cmd_check)
    "cmd-keys-none": cmd(KEYS),
    "cmd-keys-site": cmd(KEYS, flags=1, key=bytes(range(16))),
    "cmd-keys-consortium": cmd(KEYS, flags=7, key=bytes(range(16)), gen=3, old=bytes(16), old_gen=2),
    "cmd-provision": cmd(PROVISION, flags=1, picc=3, request=1, timeout=60000, picc_key=bytes(16)),
    "cmd-deprovision": cmd(DEPROVISION, request=2, timeout=1),
    "cmd-cancel": cmd(CANCEL, request=2),
    "cmd-bad-old-without-current": cmd(KEYS, flags=5),
    "cmd-bad-flags": cmd(KEYS, flags=8),
    "cmd-bad-picc-type": cmd(PROVISION, picc=4, request=1, timeout=1),
    "cmd-bad-timeout-0": cmd(PROVISION, request=1, timeout=0),
    "cmd-bad-timeout-long": cmd(PROVISION, request=1, timeout=600001),
    "cmd-bad-no-request": cmd(CANCEL),
    "cmd-bad-type": cmd(9, request=1),
    "cmd-bad-version": cmd(KEYS, version=1),
    "cmd-short": cmd(KEYS)[:-1],
}


def stream(*datagrams):
    """What a worker reads from its socket, for fuzz_reader_worker: each datagram after its
    length (at most 255 bytes)."""
    return b"".join(bytes([len(d)]) + d for d in datagrams)


KEYS_NONE = cmd(KEYS)
KEYS_SITE = cmd(KEYS, flags=1, key=bytes(range(16)))
KEYS_ALL = cmd(KEYS, flags=7, key=bytes(range(16)), gen=3, old=bytes(16), old_gen=2)
PROV = cmd(PROVISION, flags=1, picc=3, request=1, timeout=60000, picc_key=bytes(16))
DEPROV = cmd(DEPROVISION, request=2, timeout=1)
WORKER_SEEDS = {
    "keys-none": stream(KEYS_NONE),
    "keys-site": stream(KEYS_SITE),
    "keys-consortium-old": stream(KEYS_ALL),
    "keys-consortium-without-site": stream(cmd(KEYS, flags=2, key=bytes(16), gen=1)),
    "provision": stream(KEYS_SITE, PROV),
    "provision-then-cancel": stream(KEYS_SITE, PROV, cmd(CANCEL, request=1)),
    "cancel-another-request": stream(KEYS_SITE, PROV, cmd(CANCEL, request=7)),
    "provision-replaced": stream(KEYS_SITE, PROV, DEPROV, cmd(PROVISION, picc=1, request=3,
                                                                 timeout=600000, picc_key=bytes(8) + bytes(8))),
    "deprovision-without-keys": stream(KEYS_NONE, DEPROV),
    "cancel-nothing": stream(KEYS_SITE, cmd(CANCEL, request=1)),
    "request-max": stream(KEYS_SITE, cmd(PROVISION, request=0xFFFFFFFF, timeout=600000)),
    "keys-twice": stream(KEYS_SITE, PROV, KEYS_SITE, DEPROV),
    "bad-command-stops": stream(KEYS_SITE, PROV, cmd(9, request=1), DEPROV),
    "bad-timeout": stream(KEYS_SITE, cmd(PROVISION, request=1, timeout=0)),
    "short-command": stream(KEYS_SITE, PROV[:-1]),
    "long-command": stream(KEYS_SITE, PROV + b"\x00"),
    "empty-datagram": stream(KEYS_SITE, b"", PROV),
    "keys-short": stream(KEYS_SITE[:-1]),
    "keys-bad-flags": stream(cmd(KEYS, flags=8)),
    "keys-old-version": stream(cmd(KEYS, version=1, flags=1)),
    "first-not-keys": stream(PROV, KEYS_SITE),
    "nothing-but-a-length": b"\x05",
}


def write_all(directory, seeds):
    os.makedirs(directory, exist_ok=True)
    for name in os.listdir(directory):
        os.unlink(os.path.join(directory, name))
    for name, data in seeds.items():
        with open(os.path.join(directory, name), "wb") as f:
            f.write(data)
    print("wrote %d seeds to %s" % (len(seeds), directory))


def main():
    write_all(DIR, SEEDS)
    write_all(WORKER_DIR, WORKER_SEEDS)


if __name__ == "__main__":
    main()
