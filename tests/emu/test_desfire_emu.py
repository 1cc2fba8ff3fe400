#!/usr/bin/python3
# SPDX-License-Identifier: AGPL-3.0-or-later
"""pn532-emu's DESFire EV1 card.

usage: test_desfire_emu.py PN532_EMU DESFIRE_CLIENT

Two independent readers check the card:
- real libfreefare 0.4.0 through real libnfc (desfire_client, a C program): if an IV, a CMAC,
  a CRC or a frame length were wrong, libfreefare's own checks would fail;
- a reader written here on the `cryptography` package's AES, which plays a whole AES
  session byte for byte with chosen random numbers (`desfire-rnd`, `desfire-apdu`), so every
  byte the card sends is predicted from first principles.
Plus the emulator's DESFire controls: faults, forged applications, random UIDs, card images
that survive a restart and travel between emulators (--cards)."""

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import unittest

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

EMU = CLIENT = None
WAIT = 20


def aes_ecb(key, block, encrypt=True):
    c = Cipher(algorithms.AES(key), modes.ECB())
    op = c.encryptor() if encrypt else c.decryptor()
    return op.update(block) + op.finalize()


def cbc_encrypt(key, iv, data):
    out, prev = b"", iv
    for i in range(0, len(data), 16):
        prev = aes_ecb(key, bytes(a ^ b for a, b in zip(data[i:i + 16], prev)))
        out += prev
    return out, prev


def cbc_decrypt(key, iv, data):
    out, prev = b"", iv
    for i in range(0, len(data), 16):
        block = data[i:i + 16]
        out += bytes(a ^ b for a, b in zip(aes_ecb(key, block, False), prev))
        prev = block
    return out, prev


def dbl(b):
    n = int.from_bytes(b, "big") << 1
    if n >> 128:
        n ^= 0x87
    return (n & ((1 << 128) - 1)).to_bytes(16, "big")


def cmac(key, iv, data):
    """CMAC with DESFire's running IV: returns the full MAC, which is the next IV."""
    k1 = dbl(aes_ecb(key, bytes(16)))
    k2 = dbl(k1)
    if data and len(data) % 16 == 0:
        last = bytes(a ^ b for a, b in zip(data[-16:], k1))
        data = data[:-16] + last
    else:
        padded = data + b"\x80" + bytes(15 - len(data) % 16)
        data = padded[:-16] + bytes(a ^ b for a, b in zip(padded[-16:], k2))
    return cbc_encrypt(key, iv, data)[1]


def crc32_desfire(data):
    import binascii
    return (binascii.crc32(data) ^ 0xFFFFFFFF).to_bytes(4, "little")


def rol(b):
    return b[1:] + b[:1]


class Emu:
    def __init__(self, workdir, name, cards=None):
        self.link = os.path.join(workdir, name + ".tty")
        self.ctl = os.path.join(workdir, name + ".ctl")
        self.log = open(os.path.join(workdir, name + ".log"), "wb")
        argv = [EMU, "--link", self.link, "--control", self.ctl, "-v"]
        if cards:
            argv += ["--cards", cards]
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=self.log, text=True)
        self.proc.stdout.readline()

    def cmd(self, line, ok=True):
        s = socket.socket(socket.AF_UNIX)
        s.settimeout(WAIT)
        s.connect(self.ctl)
        s.sendall((line + "\n").encode())
        reply = b""
        while not reply.endswith(b"\n"):
            chunk = s.recv(4096)
            if not chunk:
                break
            reply += chunk
        s.close()
        reply = reply.decode().strip()
        if ok and not reply.startswith("ok"):
            raise AssertionError("emulator: %s -> %s" % (line, reply))
        return reply

    def apdu(self, uid, hexdata):
        return bytes.fromhex(self.cmd("desfire-apdu uid=%s %s" % (uid, hexdata)).split()[1])

    def status(self):
        return dict(kv.split("=", 1) for kv in self.cmd("status").split()[1:])

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=WAIT)
        self.proc.stdout.close()
        self.log.close()


def client(emu, scenario, *args):
    p = subprocess.run([CLIENT, "pn532_uart:" + emu.link, scenario, *args], capture_output=True,
                       text=True, timeout=60,
                       env=dict(os.environ, LIBNFC_AUTO_SCAN="false", LIBNFC_LOG_LEVEL="0"))
    return p.returncode, p.stdout


class DesfireEmuTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="portier-desfire-emu-")
        self.emu = Emu(self.dir, "r")

    def tearDown(self):
        self.emu.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def run_client(self, scenario, *args):
        code, out = client(self.emu, scenario, *args)
        self.assertEqual(code, 0, out)
        self.assertTrue(out.rstrip().endswith("done"), out)
        return out

    # ---- real libfreefare ----

    def test_info_without_authentication(self):
        self.emu.cmd("insert uid=04A1B2C3D4E5F6 desfire")
        out = self.run_client("info")
        self.assertIn("version hw=1.0 sw=1.4 storage=18 uid=04A1B2C3D4E5F6", out)
        self.assertIn("settings=0f max_keys=1", out)
        self.assertIn("free=4096", out)

    def test_application_keys_files_and_uid(self):
        self.emu.cmd("insert uid=04A1B2C3D4E5F6 desfire")
        out = self.run_client("provision", "04a1b2c3d4e5f6")
        for step in ("picc-auth-legacy", "create-application", "card-uid-legacy", "auth-aes-default",
                     "change-other-keys", "write-enciphered", "change-master-key", "auth-new-key",
                     "card-uid-aes", "read-enciphered", "read-free-file-cmac", "key-version-cmac",
                     "wrong-permission", "delete-with-amk"):
            self.assertIn("ok " + step + "\n", out)
        self.assertIn("uid=04a1b2c3d4e5f6", out)

    def test_aes_picc_key_multiframe_and_format(self):
        self.emu.cmd("insert uid=04A1B2C3D4E5F6 desfire")
        out = self.run_client("picc-aes")
        self.assertIn("ok list-applications-two-frames", out)
        self.assertIn("ok long-files", out)
        self.assertIn("ok change-key-settings-aes", out)
        self.assertIn("ok change-key-settings-des", out)
        self.assertEqual(self.emu.cmd("desfire uid=04A1B2C3D4E5F6"), "ok aids=- random_uid=0 picc=3des")

    def test_wrong_key_is_an_authentication_error(self):
        self.emu.cmd("desfire-forge uid=04A1B2C3D4E5F6 aid=F52701 key=101112131415161718191A1B1C1D1E1F")
        self.emu.cmd("insert uid=04A1B2C3D4E5F6 desfire")
        self.run_client("wrong-key")
        self.run_client("auth-only")

    def test_random_uid_mode(self):
        uid = "04A1B2C3D4E5F6"
        self.emu.cmd("insert uid=%s desfire" % uid)
        self.run_client("random-uid")
        self.assertIn("random_uid=1", self.emu.cmd("desfire uid=" + uid))
        seen = set()
        for _ in range(3):              # a new UID at every power-up
            self.emu.cmd("insert uid=%s desfire" % uid)
            card = self.emu.status()["card"]
            self.assertEqual((len(card), card[:2]), (8, "08"), card)
            seen.add(card)
            self.run_client("real-uid", uid)
        self.assertGreater(len(seen), 1)

    def test_card_removed_mid_authentication(self):
        self.emu.cmd("desfire-forge uid=04A1B2C3D4E5F6 aid=F52701 key=101112131415161718191A1B1C1D1E1F")
        self.emu.cmd("insert uid=04A1B2C3D4E5F6 desfire")
        self.emu.cmd("fault remove-after AA")
        code, out = client(self.emu, "auth-only")
        self.assertEqual(code, 1, out)
        self.assertIn("FAIL auth-key1: authenticate (picc error 00, errno 5)", out)
        self.assertEqual(self.emu.status()["cards"], "0")

    def test_images_survive_a_restart_and_travel(self):
        cards = os.path.join(self.dir, "cards")
        os.mkdir(cards)
        self.emu.stop()
        self.emu = Emu(self.dir, "r", cards)
        self.emu.cmd("desfire-forge uid=04A1B2C3D4E5F6 aid=F52701 key=101112131415161718191A1B1C1D1E1F")
        self.assertTrue(os.path.exists(os.path.join(cards, "04A1B2C3D4E5F6.desfire")))
        other = Emu(self.dir, "other", cards)        # another site's reader, the same card
        try:
            other.cmd("insert uid=04A1B2C3D4E5F6 desfire")
            code, out = client(other, "auth-only")
            self.assertEqual(code, 0, out)
        finally:
            other.stop()
        self.emu.stop()
        self.emu = Emu(self.dir, "r", cards)
        self.assertIn("aids=F52701", self.emu.cmd("desfire uid=04A1B2C3D4E5F6"))

    # ---- an independent reader, byte for byte ----

    def test_aes_session_byte_for_byte(self):
        uid = "04A1B2C3D4E5F6"
        key = bytes(range(0x10, 0x20))
        rnd_b = bytes.fromhex("B0B1B2B3B4B5B6B7B8B9BABBBCBDBEBF")
        rnd_a = bytes.fromhex("A0A1A2A3A4A5A6A7A8A9AAABACADAEAF")
        self.emu.cmd("desfire-forge uid=%s aid=F52701 key=%s" % (uid, key.hex()))
        self.assertEqual(self.emu.apdu(uid, "905A00000301 27F500".replace(" ", "")), b"\x91\x00")
        self.emu.cmd("desfire-rnd uid=%s %s" % (uid, rnd_b.hex()))

        # 1. AA 01 -> E(RndB) from a zero IV, status AF.
        ans = self.emu.apdu(uid, "90AA0000010100")
        e_rnd_b, iv = cbc_encrypt(key, bytes(16), rnd_b)
        self.assertEqual(ans, e_rnd_b + b"\x91\xAF")
        # 2. AF E(RndA || rol(RndB)) -> E(rol(RndA)), the IV running on.
        token, iv = cbc_encrypt(key, iv, rnd_a + rol(rnd_b))
        ans = self.emu.apdu(uid, "90AF000020" + token.hex() + "00")
        self.assertEqual(ans[-2:], b"\x91\x00")
        self.assertEqual(ans[:16], cbc_encrypt(key, iv, rol(rnd_a))[0])
        session = rnd_a[:4] + rnd_b[:4] + rnd_a[12:] + rnd_b[12:]
        iv = bytes(16)

        # 3. GetKeyVersion 01, plain: the command goes into the IV, the answer carries
        #    CMAC(version || status).
        iv = cmac(session, iv, b"\x64\x01")
        ans = self.emu.apdu(uid, "9064000001" + "01" + "00")
        iv = cmac(session, iv, b"\x00" + b"\x00")
        self.assertEqual(ans, b"\x00" + iv[:8] + b"\x91\x00")

        # 4. GetCardUID: enciphered UID || CRC32(UID || status) || padding.
        iv = cmac(session, iv, b"\x51")
        ans = self.emu.apdu(uid, "9051000000")
        self.assertEqual(ans[-2:], b"\x91\x00")
        plain, iv = cbc_decrypt(session, iv, ans[:-2])
        real = bytes.fromhex(uid)
        self.assertEqual(plain, real + crc32_desfire(real + b"\x00") + bytes(5))

        # 5. Any error ends the session: after a read of a missing file, GetCardUID is refused.
        self.assertEqual(self.emu.apdu(uid, "90BD0000070900000000000000"), b"\x91\xF0")
        self.assertEqual(self.emu.apdu(uid, "9051000000"), b"\x91\xAE")


def main():
    global EMU, CLIENT
    if len(sys.argv) < 3:
        print(__doc__)
        return 2
    EMU, CLIENT = sys.argv[1], sys.argv[2]
    prog = unittest.main(argv=sys.argv[:1] + sys.argv[3:], exit=False, verbosity=2)
    return 0 if prog.result.wasSuccessful() else 1


if __name__ == "__main__":
    sys.exit(main())
