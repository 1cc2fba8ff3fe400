# SPDX-License-Identifier: AGPL-3.0-or-later
"""Roles through every way in: the command table decides, whether the request comes from
portierctl, the web API or MQTT. A trainer grants only the trainings they are named for and
enrols cards only at those trainings' machines; members act for themselves only; nobody
gets a right by leaving a field out. Run with /usr/bin/python3."""

import os
import sys
import threading

sys.path.insert(0, os.path.dirname(__file__))
from portier_harness import main, wait_until  # noqa: E402
from test_http import HttpBase  # noqa: E402


class TrainerTest(HttpBase):
    def setUp(self):
        super().setUp()
        ok = self.d.ok
        ok({"cmd": "training.add", "name": "laser-safety"})
        ok({"cmd": "training.add", "name": "cnc"})
        ok({"cmd": "machine.set", "machine": "laser", "training": "laser-safety"})
        # Carol is named trainer for the laser; her own training is the laser's too.
        ok({"cmd": "training.grant", "member": "Carol", "training": "laser-safety"})
        ok({"cmd": "training.appoint", "member": "Carol", "training": "laser-safety"})

    def quals(self, member):
        return [q["training"] for q in
                self.d.ok({"cmd": "training.show", "member": member})["qualifications"]
                if not q["revoked_at"]]

    def test_trainer_grants_and_revokes_their_training_only(self):
        carol = self.api("carol")
        r = self.api_call(carol, "/api/v1/trainings/grant", "POST",
                          {"member": "Alice", "training": "laser-safety"})
        self.assertEqual(r.status, 200, r)
        self.assertIn("laser-safety", self.quals("Alice"))
        granted = self.q("SELECT granted_by FROM qualifications q JOIN members m ON m.id = q.member_id "
                         "WHERE m.name = 'Alice'")
        self.assertEqual(granted, [("trainer:%d" % self.carol,)])
        # Not named for cnc: refused, and nothing granted.
        body = self.assert_api_error(self.api_call(carol, "/api/v1/trainings/grant", "POST",
                                                   {"member": "Alice", "training": "cnc"}),
                                     403, "forbidden")
        self.assertIn("not named trainer for cnc", body["error"])
        self.assertNotIn("cnc", self.quals("Alice"))
        # Never their own.
        self.assert_api_error(self.api_call(carol, "/api/v1/trainings/grant", "POST",
                                            {"member": "Carol", "training": "laser-safety"}),
                              403, "forbidden")
        # A plain member grants nothing.
        alice = self.api("alice")
        body = self.assert_api_error(self.api_call(alice, "/api/v1/trainings/grant", "POST",
                                                   {"member": "Bob", "training": "laser-safety"}),
                                     403, "forbidden")
        self.assertIn("training.grant", body["error"])
        # Dismissed: the trainer is a member again.
        self.d.ok({"cmd": "training.dismiss", "member": "Carol", "training": "laser-safety"})
        self.assert_api_error(self.api_call(carol, "/api/v1/trainings/grant", "POST",
                                            {"member": "Bob", "training": "laser-safety"}),
                              403, "forbidden")
        trainers = [t for t in self.d.ok({"cmd": "training.list"})["trainings"]
                    if t["name"] == "laser-safety"][0]["trainers"]
        self.assertEqual(trainers, [])

    def test_trainer_whose_own_training_lapsed_grants_nothing(self):
        """The rules of training at the machine hold on the web too (one place: fablab.c)."""
        carol = self.api("carol")
        self.d.ok({"cmd": "training.revoke", "member": "Carol", "training": "laser-safety"})
        body = self.assert_api_error(self.api_call(carol, "/api/v1/trainings/grant", "POST",
                                                   {"member": "Alice", "training": "laser-safety"}),
                                     409, "trainer_training_lapsed")
        self.assertIn("your own laser-safety training", body["error"])
        self.assertNotIn("laser-safety", self.quals("Alice"))
        # Back in order: granted; a suspended member is refused.
        self.d.ok({"cmd": "training.grant", "member": "Carol", "training": "laser-safety"})
        self.d.ok({"cmd": "member.suspend", "member": "Bob"})
        self.assert_api_error(self.api_call(carol, "/api/v1/trainings/grant", "POST",
                                            {"member": "Bob", "training": "laser-safety"}),
                              409, "member_inactive")
        r = self.api_call(carol, "/api/v1/trainings/grant", "POST",
                          {"member": "Alice", "training": "laser-safety"})
        self.assertEqual(r.status, 200, r)

    def test_trainer_enrols_at_their_machine_only(self):
        carol = self.api("carol")
        # At the front door's reader: refused at once.
        body = self.assert_api_error(self.api_call(carol, "/api/v1/cards/enroll", "POST",
                                                   {"member": "Bob", "reader": "front"}),
                                     403, "forbidden")
        self.assertIn("reader front", body["error"])
        # At the laser's reader: waits for the card, then binds it to Bob.
        result = {}

        def enrol():
            result["r"] = self.api_call(carol, "/api/v1/cards/enroll", "POST",
                                        {"member": "Bob", "reader": "laser", "timeout": 20})
        t = threading.Thread(target=enrol)
        t.start()
        wait_until(lambda: self.d.ok({"cmd": "sim.tap", "reader": "laser", "uid": "04BEEF01"})
                   .get("enrolment"), what="the enrolment waiting at the laser")
        t.join()
        self.assertEqual(result["r"].status, 201, result["r"])
        cards = self.d.ok({"cmd": "card.list", "member": "Bob"})["cards"]
        self.assertEqual(len(cards), 2)         # his own from the seed, and the new one


class PrivilegeTest(HttpBase):
    def test_member_acts_for_themselves_whatever_they_send(self):
        alice = self.api("alice")
        # Asking to book for Bob: the command books for Alice (the API does not pass it on),
        # and Bob has nothing.
        r = self.api_call(alice, "/api/v1/bookings", "POST",
                          {"machine": "laser", "start": self.at(11), "end": self.at(12),
                           "member": self.bob})
        self.assertEqual(r.status, 201, r)
        self.assertEqual(self.q("SELECT member_id, created_by FROM bookings"),
                         [(self.alice, "member:%d" % self.alice)])
        # Cancelling Bob's booking: not hers, not even named.
        bid = self.book(str(self.bob), self.at(14), self.at(15))
        body = self.assert_api_error(self.api_call(alice, "/api/v1/bookings/%d/cancel" % bid,
                                                   "POST", {}), 404, "not_found")
        self.assertIn("of yours", body["error"])
        self.assertEqual(self.booking_row(bid)[4], 0)      # not cancelled
        # The override a manager may use is no right of hers.
        self.d.ok({"cmd": "machine.set", "machine": "laser", "cancel_deadline_minutes": 600})
        mine = self.d.ok({"cmd": "booking.list", "member": "Alice"})["bookings"][0]["id"]
        self.assert_api_error(self.api_call(alice, "/api/v1/bookings/%d/cancel" % mine, "POST",
                                            {"override": True}), 409, "deadline_passed")

    def test_custodian_reads_but_changes_nothing(self):
        keeper = self.api("keeper")
        r = self.api_call(keeper, "/api/v1/periods")
        self.assertEqual(r.status, 200, r)
        self.assert_api_error(self.api_call(keeper, "/api/v1/doors/front/unlock", "POST",
                                            {"seconds": 5}), 403, "forbidden")
        self.assertFalse(self.d.relay_file("front"))
        self.assert_api_error(self.api_call(keeper, "/api/v1/members", "POST", {"name": "Mallory"}),
                              403, "forbidden")


class PrintableTest(HttpBase):
    def test_names_with_control_characters_are_refused_and_never_printed_raw(self):
        r = self.d.request({"cmd": "member.add", "name": "Eve\x1b[2J"})
        self.assertEqual((r["ok"], r["code"]), (False, "bad_request"), r)
        # One stored before the daemon refused them (written behind its back here).
        db = self.d.db()
        db.execute("UPDATE members SET name = 'Mallory\x1b]0;owned\x07' WHERE name = 'Bob'")
        db.commit()
        db.close()
        out = self.d.ctl("member", "list")[1]
        self.assertIn("Mallory?]0;owned?", out)
        self.assertNotIn("\x1b", out)


if __name__ == "__main__":
    main()
