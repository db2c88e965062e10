#!/usr/bin/python3
"""The tenant generator (make-tenant) and the demo tenant: counts and mix, determinism, the
100,000-user tenant generating and loading, and tenants/demo.json as scripts/demo uses it."""

import collections
import json
import os
import subprocess
import sys
import tempfile
import time
import unittest

import emutest

ROOT = os.path.dirname(emutest.HERE)
sys.path.insert(0, ROOT)
from graphemu import generator  # noqa: E402
from graphemu.tenant import Tenant  # noqa: E402

MAKE_TENANT = os.path.join(ROOT, "make-tenant")
DEMO = os.path.join(ROOT, "tenants", "demo.json")


def state_of(u):
    """The registration state a generated user was given (see generator.MIX)."""
    types = collections.Counter(m["type"] for m in u.get("methods", []))
    if types["fido2"]:
        return "fido2"
    if types["windowsHelloForBusiness"]:
        return "whfb"
    if types["softwareOath"]:
        return "softwareOath"
    if types["temporaryAccessPass"]:
        return "tap"
    if types["microsoftAuthenticator"] and types["phone"]:
        return "authenticator+phone"
    if types["microsoftAuthenticator"]:
        return "authenticator"
    if types["phone"]:
        return "phone"
    if types["email"]:
        return "email"
    return "password"


class GeneratorTest(unittest.TestCase):
    N = 20000

    @classmethod
    def setUpClass(cls):
        cls.data = generator.generate(cls.N, seed=7)

    def test_counts_and_mix(self):
        users = self.data["users"]
        self.assertEqual(len(users), self.N)
        self.assertEqual(len({u["id"] for u in users}), self.N)
        self.assertEqual(len({u["userPrincipalName"].lower() for u in users}), self.N)
        guests = [u for u in users if u.get("userType") == "Guest"]
        members = [u for u in users if u.get("userType") != "Guest"]
        disabled = [u for u in members if u.get("accountEnabled") is False]
        self.assertAlmostEqual(len(guests) / self.N, 0.03, delta=0.006)
        self.assertAlmostEqual(len(disabled) / self.N, 0.02, delta=0.005)
        self.assertTrue(all(not u.get("methods") for u in guests))
        states = collections.Counter(state_of(u) for u in members)
        share = {s: n / len(members) for s, n in states.items()}
        expected = {"password": 0.35, "authenticator": 0.35, "authenticator+phone": 0.10,
                    "phone": 0.08, "fido2": 0.05, "softwareOath": 0.04, "whfb": 0.01,
                    "tap": 0.01, "email": 0.01}
        for s, want in expected.items():
            with self.subTest(state=s):
                self.assertAlmostEqual(share[s], want, delta=max(0.02, want * 0.25))
        for u in members:
            defaults = [m for m in u["methods"] if m.get("default")]
            self.assertLessEqual(len(defaults), 1, u)

    def test_admins_and_operator(self):
        users = self.data["users"]
        self.assertEqual(users[0]["directoryRoles"], ["Global Administrator"])
        self.assertEqual(users[1]["directoryRoles"], ["Authentication Administrator"])
        self.assertEqual(users[1]["userPrincipalName"], "operator@contoso.onmicrosoft.com")
        admins = [u for u in users if u.get("directoryRoles")]
        self.assertGreaterEqual(len(admins), 2)
        self.assertLess(len(admins), self.N * 0.01)
        # Admins are all registered for MFA.
        self.assertTrue(all(state_of(u) not in ("password", "email", "tap") for u in admins))

    def test_sign_ins_include_legacy_clients(self):
        clients = collections.Counter(s["clientAppUsed"] for s in self.data["signIns"])
        legacy = sum(n for c, n in clients.items() if c in generator.LEGACY_CLIENTS)
        self.assertGreater(legacy, 0)
        self.assertGreater(clients["Browser"], legacy)
        legacy_users = {s["userId"] for s in self.data["signIns"]
                        if s["clientAppUsed"] in generator.LEGACY_CLIENTS}
        self.assertAlmostEqual(len(legacy_users) / self.N, 0.04, delta=0.015)
        self.assertTrue(all(0 < s["minutesAgo"] < 30 * 24 * 60 for s in self.data["signIns"]))

    def test_apps_groups_extension(self):
        apps = {a["appId"]: a for a in self.data["apps"]}
        self.assertEqual(apps[generator.KIOSK_APP]["applicationPermissions"],
                         emutest.KIOSK_PERMISSIONS)
        self.assertEqual(generator.KIOSK_APP, emutest.KIOSK_APP)
        self.assertEqual(generator.READER_APP, emutest.READER_APP)
        self.assertEqual(generator.OPERATOR_APP, emutest.DELEGATED_APP)
        self.assertEqual(generator.OPERATOR_SCOPES, emutest.DELEGATED_SCOPES)
        self.assertTrue(apps[generator.OPERATOR_APP]["publicClient"])
        groups = {g["id"]: g for g in self.data["groups"]}
        self.assertIn(generator.TRACKING_GROUP, groups)
        tracked = set(groups[generator.TRACKING_GROUP]["members"])
        self.assertTrue(tracked)
        with_ext = {u["id"] for u in self.data["users"] if u.get("extensions")}
        self.assertEqual(tracked, with_ext)
        t = Tenant(json.loads(json.dumps(self.data)))
        self.assertEqual(t.extension_types[generator.EXTENSION], "DateTime")
        self.assertEqual(len(t.users), self.N)

    def test_deterministic(self):
        again = generator.generate(self.N, seed=7)
        self.assertEqual(json.dumps(again), json.dumps(self.data))
        other = generator.generate(self.N, seed=8)
        self.assertNotEqual(other["users"][5]["id"], self.data["users"][5]["id"])


class MakeTenantTest(unittest.TestCase):
    def test_command_line(self):
        with tempfile.TemporaryDirectory() as d:
            out = os.path.join(d, "t.json")
            r = subprocess.run([MAKE_TENANT, "--users", "300", "--license", "free", "--seed", "3",
                                "--security-defaults", "on", "--out", out],
                               capture_output=True, text=True, timeout=60)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertIn("300 users", r.stderr)
            t = Tenant.from_file(out)
            self.assertEqual((len(t.users), t.license), (300, "free"))
            self.assertTrue(t.policies["securityDefaults"]["isEnabled"])
            r = subprocess.run([MAKE_TENANT, "--users", "1", "--out", out],
                               capture_output=True, text=True, timeout=60)
            self.assertNotEqual(r.returncode, 0)

    def test_100k_generates_and_loads(self):
        """The scale the dashboard is tested at. The bound is a tripwire for a pathological
        regression, not a speed claim (measured on a laptop: ~2.5 s + ~2.5 s)."""
        with tempfile.TemporaryDirectory() as d:
            out = os.path.join(d, "t.json")
            t0 = time.monotonic()
            r = subprocess.run([MAKE_TENANT, "--users", "100000", "--out", out],
                               capture_output=True, text=True, timeout=120)
            t1 = time.monotonic()
            self.assertEqual(r.returncode, 0, r.stderr)
            t = Tenant.from_file(out)
            t2 = time.monotonic()
            print(f"\n  make-tenant --users 100000: {t1 - t0:.2f} s; Tenant.from_file: "
                  f"{t2 - t1:.2f} s ({os.path.getsize(out) / 1e6:.0f} MB)", file=sys.stderr)
            self.assertEqual(len(t.users), 100000)
            self.assertLess(t1 - t0, 60)
            self.assertLess(t2 - t1, 60)


class GeneratedTenantServesTest(emutest.EmulatorTestCase):
    """A generated tenant runs in the emulator: report, sign-ins, tracking group."""
    TENANT = generator.generate(500, seed=1)

    def test_report_and_sign_ins(self):
        kiosk = self.emu.token()
        status, _, body = self.emu.get("/v1.0/reports/authenticationMethods/usersRegisteredByMethod"
                                       "(includedUserTypes='all',includedUserRoles='all')",
                                       token=kiosk)
        self.assertEqual(status, 200, body)
        enabled = sum(1 for u in self.TENANT["users"] if u.get("accountEnabled", True))
        self.assertEqual(body["totalUserCount"], enabled)
        status, _, body = self.emu.get("/v1.0/auditLogs/signIns?$top=5", token=kiosk)
        self.assertEqual(status, 200, body)
        self.assertTrue(body["value"][0]["userPrincipalName"])
        status, _, body = self.emu.get(f"/v1.0/groups/{generator.TRACKING_GROUP}/members",
                                       token=kiosk)
        self.assertEqual(status, 200, body)


with open(DEMO, encoding="utf-8") as _f:
    DEMO_DATA = json.load(_f)


class DemoTenantTest(emutest.EmulatorTestCase):
    """tenants/demo.json: what scripts/demo starts the emulator with."""
    TENANT = DEMO_DATA
    D = "contoso.onmicrosoft.com"

    def user(self, name):
        return self.emu.user_state(f"{name}@{self.D}")

    def test_people_in_each_state(self):
        types = lambda u: sorted(m["type"] for m in u["methods"])   # noqa: E731
        self.assertEqual(types(self.user("ada")), ["password"])
        self.assertEqual(types(self.user("bob")), ["microsoftAuthenticator", "password"])
        dave = self.user("dave")
        self.assertEqual(types(dave), ["microsoftAuthenticator", "password", "phone"])
        self.assertEqual([m["type"] for m in dave["methods"] if m["default"]],
                         ["microsoftAuthenticator"])
        self.assertIn("fido2", types(self.user("carol")))
        otto = self.user("otto")
        self.assertEqual(otto["directoryRoles"], ["Authentication Administrator"])
        gail = self.emu.user_state(f"gail_fabrikam.com#EXT#@{self.D}")
        self.assertEqual(gail["userType"], "Guest")

    def test_tenant_settings(self):
        st = self.emu.get("/_emulator/state")[2]
        self.assertEqual(st["tenant"]["license"], "free")
        self.assertEqual(st["settings"]["deviceCodeInterval"], 2)
        self.assertFalse(st["policies"]["securityDefaults"]["isEnabled"])
        apps = {a["displayName"]: a for a in DEMO_DATA["apps"]}
        self.assertEqual(apps["keydesk"]["applicationPermissions"], emutest.KIOSK_PERMISSIONS)
        self.assertTrue(apps["keydesk"]["secrets"])
        self.assertTrue(apps["keydesk operator"]["publicClient"])
        self.assertEqual(len(DEMO_DATA["extensionProperties"]), 1)

    def test_kiosk_works_against_it(self):
        kiosk = self.emu.token(emutest.KIOSK_APP)
        sd = self.emu.get("/v1.0/policies/identitySecurityDefaultsEnforcementPolicy",
                          token=kiosk)[2]
        self.assertIs(sd["isEnabled"], False)
        group = DEMO_DATA["groups"][0]["id"]
        ada = self.user("ada")["id"]
        status, _, body = self.emu.post(f"/v1.0/groups/{group}/members/$ref",
                                        {"@odata.id": "https://graph.microsoft.com/v1.0/"
                                                      f"directoryObjects/{ada}"}, token=kiosk)
        self.assertEqual(status, 204, body)
        ext = DEMO_DATA["extensionProperties"][0]["name"]
        self.assertEqual(self.emu.patch(f"/v1.0/users/{ada}", {ext: "2026-04-20T10:15:30Z"},
                                        token=kiosk)[0], 204)
        # Free licence: the report is refused, as in most small tenants.
        self.assertGraphError(self.emu.get("/v1.0/reports/authenticationMethods/"
                                           "userRegistrationDetails", token=kiosk), 403)
        # The operator owns the tracking group, so delegated tracking works too.
        op = self.emu.token(emutest.DELEGATED_APP, user=f"otto@{self.D}",
                            scopes=["GroupMember.ReadWrite.All"])
        bob = self.user("bob")["id"]
        self.assertEqual(self.emu.post(f"/v1.0/groups/{group}/members/$ref",
                                       {"@odata.id": "https://graph.microsoft.com/v1.0/"
                                                     f"directoryObjects/{bob}"}, token=op)[0], 204)


if __name__ == "__main__":
    emutest.main()
