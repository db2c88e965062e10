#!/usr/bin/python3
"""Reports (reference §6.1) and sign-in logs (§7.2): shapes computed from the directory,
filters, ordering, paging followed verbatim, the P1/P2 licence gate, permissions and roles,
and the report's lag."""

import copy
import datetime
import os
import sys
import unittest
from urllib.parse import quote, urlsplit

import emutest

sys.path.insert(0, os.path.dirname(emutest.HERE))
from graphemu.routes import reports  # noqa: E402
from graphemu.tenant import Tenant  # noqa: E402

U = emutest.USERS
D = "contoso.onmicrosoft.com"
REPORT = "/v1.0/reports/authenticationMethods/userRegistrationDetails"
BY_METHOD = "/v1.0/reports/authenticationMethods/usersRegisteredByMethod"
BY_FEATURE = "/v1.0/reports/authenticationMethods/usersRegisteredByFeature"
SIGNINS = "/v1.0/auditLogs/signIns"
POLICY_APP = "6c1d2e3f-4a5b-4c6d-8e7f-8091a2b3c4d5"
REPORTS_READER = "3b1c2d4e-0000-4000-8000-0000000000b1"
ERIN = "3b1c2d4e-0000-4000-8000-0000000000b2"          # disabled account
SAM = "3b1c2d4e-0000-4000-8000-0000000000b3"           # phone only, legacy IMAP sign-ins

# Every property of v1.0 userRegistrationDetails (CSDL) and signIn.
REPORT_PROPS = {"id", "userPrincipalName", "userDisplayName", "userType", "isAdmin",
                "isMfaRegistered", "isMfaCapable", "isPasswordlessCapable", "isSsprRegistered",
                "isSsprEnabled", "isSsprCapable", "isSystemPreferredAuthenticationMethodEnabled",
                "systemPreferredAuthenticationMethods",
                "userPreferredMethodForSecondaryAuthentication", "methodsRegistered",
                "lastUpdatedDateTime"}
SIGNIN_PROPS = {"id", "appDisplayName", "appId", "appliedConditionalAccessPolicies",
                "authenticationAppDeviceDetails", "clientAppUsed", "conditionalAccessStatus",
                "correlationId", "createdDateTime", "deviceDetail", "homeTenantId", "ipAddress",
                "isInteractive", "location", "resourceDisplayName", "resourceId",
                "resourceTenantId", "riskDetail", "riskEventTypes", "riskEventTypes_v2",
                "riskLevelAggregated", "riskLevelDuringSignIn", "riskState",
                "servicePrincipalId", "servicePrincipalName", "status", "userAgent",
                "userDisplayName", "userId", "userPrincipalName"}


def tenant(license="P1"):
    t = emutest.tenant(license)
    t["apps"].append({"appId": POLICY_APP, "displayName": "policy admin",
                      "secrets": [{"value": "p"}],
                      "applicationPermissions": ["Policy.ReadWrite.AuthenticationMethod"]})
    t["users"] += [
        {"id": REPORTS_READER, "userPrincipalName": f"rita@{D}", "displayName": "Rita Reports",
         "directoryRoles": ["Reports Reader"], "methods": [{"type": "password"}]},
        {"id": ERIN, "userPrincipalName": f"erin@{D}", "displayName": "Erin Leaver",
         "accountEnabled": False, "methods": [{"type": "password"}]},
        {"id": SAM, "userPrincipalName": f"sam@{D}", "displayName": "Sam Legacy",
         "methods": [{"type": "password"},
                     {"type": "phone", "phoneNumber": "+1 2065550142", "phoneType": "mobile",
                      "default": True},
                     {"type": "email", "emailAddress": "sam@example.org"}]},
    ]
    t["signIns"] = [
        {"minutesAgo": 10, "userId": SAM, "clientAppUsed": "IMAP4"},
        {"minutesAgo": 20, "userId": U["bob"], "clientAppUsed": "Browser"},
        {"minutesAgo": 30, "userId": SAM, "clientAppUsed": "POP3"},
        {"minutesAgo": 40, "userId": U["dave"], "clientAppUsed": "Mobile apps and desktop clients"},
        {"minutesAgo": 50, "userId": SAM, "clientAppUsed": "Authenticated SMTP",
         "status": {"errorCode": 50126}},
        {"minutesAgo": 60 * 24 * 31, "userId": SAM, "clientAppUsed": "IMAP4"},  # past retention
        {"createdDateTime": "2020-01-01T00:00:00Z", "userId": U["ada"],
         "clientAppUsed": "Browser"},                                            # ditto
    ] + [{"minutesAgo": 100 + i, "userId": U["ada"], "clientAppUsed": "Browser"}
         for i in range(1100)]
    return t


def follow(case, path, token, limit=50):
    """Every item of a collection, following @odata.nextLink exactly as given."""
    items, pages = [], 0
    while path:
        status, _, body = case.emu.get(path, token=token)
        case.assertEqual(status, 200, body)
        items += body["value"]
        pages += 1
        case.assertLess(pages, limit)
        link = body.get("@odata.nextLink")
        if link:
            u = urlsplit(link)
            case.assertEqual(u.scheme, "https")
            case.assertEqual(u.port, case.emu.port)          # points at us, not at Microsoft
            path = u.path + "?" + u.query
        else:
            path = None
    return items, pages


class RegistrationDetailsTest(emutest.EmulatorTestCase):
    TENANT = tenant()

    def setUp(self):
        self.kiosk = self.emu.token()

    def rows(self, query="", token=None):
        status, _, body = self.emu.get(REPORT + query, token=token or self.kiosk)
        self.assertEqual(status, 200, body)
        return {r["id"]: r for r in body["value"]}

    def test_rows_computed_from_methods(self):
        rows = self.rows()
        for r in rows.values():
            self.assertEqual(set(r), REPORT_PROPS)
        ada, bob, carol, dave = (rows[U[n]] for n in ("ada", "bob", "carol", "dave"))
        self.assertEqual(ada["methodsRegistered"], [])
        self.assertFalse(ada["isMfaRegistered"] or ada["isMfaCapable"])
        self.assertEqual(ada["userPreferredMethodForSecondaryAuthentication"], "none")
        self.assertEqual(bob["methodsRegistered"], ["microsoftAuthenticatorPush"])
        self.assertTrue(bob["isMfaRegistered"] and bob["isMfaCapable"])
        self.assertEqual(bob["userPreferredMethodForSecondaryAuthentication"], "push")
        self.assertEqual(bob["systemPreferredAuthenticationMethods"], ["push"])
        self.assertFalse(bob["isPasswordlessCapable"])
        self.assertEqual(carol["methodsRegistered"], ["passKeyDeviceBound"])
        self.assertTrue(carol["isPasswordlessCapable"] and carol["isMfaCapable"])
        self.assertEqual(sorted(dave["methodsRegistered"]),
                         ["microsoftAuthenticatorPush", "mobilePhone"])
        self.assertTrue(dave["isSsprRegistered"])              # phone + app
        self.assertFalse(dave["isSsprEnabled"])                # SSPR off in this tenant
        sam = rows[SAM]
        self.assertEqual(sam["methodsRegistered"], ["email", "mobilePhone"])
        self.assertEqual(sam["userPreferredMethodForSecondaryAuthentication"], "sms")
        admin = rows[U["admin"]]
        self.assertTrue(admin["isAdmin"] and admin["isSsprEnabled"])
        self.assertFalse(bob["isAdmin"])
        self.assertEqual(rows[U["guest"]]["userType"], "guest")
        self.assertEqual(bob["userType"], "member")
        self.assertNotIn(ERIN, rows)                            # disabled: not reported
        self.assertTrue(bob["lastUpdatedDateTime"].endswith("Z"))

    def test_get_one(self):
        status, _, body = self.emu.get(f"{REPORT}/{U['carol']}", token=self.kiosk)
        self.assertEqual(status, 200, body)
        self.assertEqual(body["userPrincipalName"], f"carol@{D}")
        self.assertTrue(body["@odata.context"].endswith("userRegistrationDetails/$entity"))
        self.assertGraphError(self.emu.get(f"{REPORT}/{ERIN}", token=self.kiosk), 404)
        self.assertGraphError(self.emu.get(f"{REPORT}/3b1c2d4e-0000-4000-8000-0000000000ff",
                                           token=self.kiosk), 404)

    def test_filters(self):
        q = lambda f: "?$filter=" + quote(f)                  # noqa: E731
        self.assertEqual(set(self.rows(q("isMfaRegistered eq false"))),
                         {U["ada"], U["dollar"], U["guest"], REPORTS_READER})
        self.assertEqual(set(self.rows(q("methodsRegistered/any(m:m eq 'passKeyDeviceBound')"))),
                         {U["carol"]})
        self.assertEqual(set(self.rows(q("startswith(userPrincipalName,'B')"))), {U["bob"]})
        self.assertEqual(set(self.rows(q("userDisplayName eq 'Ada Lovelace'"))), {U["ada"]})
        self.assertEqual(set(self.rows(q("isAdmin eq true and isMfaCapable eq true"))),
                         {U["admin"], REPORTS_READER} - {REPORTS_READER})
        self.assertEqual(set(self.rows(q("userType eq 'guest' or isPasswordlessCapable eq true"))),
                         {U["guest"], U["carol"]})
        for bad in ("isMfaRegistered ne true", "not(isMfaRegistered eq true)",
                    "isMfaRegistered eq 'true'", "startswith(isAdmin,'t')",
                    "lastUpdatedDateTime eq 2026-01-01T00:00:00Z", "favouriteColour eq 'red'",
                    "methodsRegistered eq 'email'", "isAdmin eq"):
            with self.subTest(filter=bad):
                self.assertGraphError(self.emu.get(REPORT + q(bad), token=self.kiosk), 400)

    def test_orderby(self):
        status, _, body = self.emu.get(REPORT + "?$orderby=userPrincipalName%20desc",
                                       token=self.kiosk)
        upns = [r["userPrincipalName"].lower() for r in body["value"]]
        self.assertEqual(upns, sorted(upns, reverse=True))
        self.assertGraphError(self.emu.get(REPORT + "?$orderby=isAdmin", token=self.kiosk), 400)

    def test_paging_followed_verbatim(self):
        everything = self.rows()
        items, pages = follow(self, REPORT + "?$top=2&$filter=" + quote("isAdmin eq false"),
                              self.kiosk)
        self.assertEqual(len(items), len([r for r in everything.values() if not r["isAdmin"]]))
        self.assertEqual(len({r["id"] for r in items}), len(items))
        self.assertGreater(pages, 2)
        self.assertGraphError(self.emu.get(REPORT + "?$top=1000", token=self.kiosk), 400)
        self.assertGraphError(self.emu.get(REPORT + "?$top=0", token=self.kiosk), 400)
        self.assertGraphError(self.emu.get(REPORT + "?$skiptoken=garbage", token=self.kiosk), 400)

    def test_unsupported_query_options(self):
        for opt in ("$select=id", "$count=true", "$search=%22ada%22", "$expand=x", "$skip=1"):
            with self.subTest(opt=opt):
                self.assertGraphError(self.emu.get(REPORT + "?" + opt, token=self.kiosk), 400)

    def test_policy_decides_capable_not_registered(self):
        admin = self.emu.token(POLICY_APP)
        cfg = "/v1.0/policies/authenticationMethodsPolicy/authenticationMethodConfigurations/Fido2"
        self.assertEqual(self.emu.patch(cfg, {"state": "disabled"}, token=admin)[0], 204)
        try:
            carol = self.rows()[U["carol"]]
            self.assertTrue(carol["isMfaRegistered"])
            self.assertFalse(carol["isMfaCapable"])
            self.assertFalse(carol["isPasswordlessCapable"])
            # Excluding bob's group (here: bob himself) from Authenticator works the same way.
        finally:
            self.assertEqual(self.emu.patch(cfg, {"state": "enabled"}, token=admin)[0], 204)
        self.assertTrue(self.rows()[U["carol"]]["isMfaCapable"])

    def test_permissions_and_roles(self):
        reader = self.emu.token(emutest.READER_APP)             # User.Read.All only
        self.assertGraphError(self.emu.get(REPORT, token=reader), 403,
                              "Authorization_RequestDenied")
        # An Authentication Administrator is not a reports role.
        op = self.emu.token(emutest.DELEGATED_APP, user=f"admin@{D}", scopes=["AuditLog.Read.All"])
        self.assertGraphError(self.emu.get(REPORT, token=op), 403)
        rita = self.emu.token(emutest.DELEGATED_APP, user=f"rita@{D}",
                              scopes=["AuditLog.Read.All"])
        self.assertEqual(self.emu.get(REPORT, token=rita)[0], 200)
        rita_noscope = self.emu.token(emutest.DELEGATED_APP, user=f"rita@{D}",
                                      scopes=["User.Read.All"])
        self.assertGraphError(self.emu.get(REPORT, token=rita_noscope), 403)

    def test_users_registered_by_method(self):
        path = BY_METHOD + "(includedUserTypes='all',includedUserRoles='all')"
        status, _, body = self.emu.get(path, token=self.kiosk)
        self.assertEqual(status, 200, body)
        self.assertEqual(body["@odata.type"], "#microsoft.graph.userRegistrationMethodSummary")
        self.assertEqual((body["userTypes"], body["userRoles"]), ("all", "all"))
        counts = {c["authenticationMethod"]: c["userCount"]
                  for c in body["userRegistrationMethodCounts"]}
        enabled = len(self.rows())
        self.assertEqual(body["totalUserCount"], enabled)
        self.assertEqual(counts["passKeyDeviceBound"], 1)
        self.assertEqual(counts["microsoftAuthenticatorPush"], 3)     # admin, bob, dave
        self.assertEqual(counts["mobilePhone"], 2)                    # dave, sam
        self.assertEqual(counts["softwareOneTimePasscode"], 0)        # listed though unused
        self.assertEqual(counts["password"], enabled)
        admins = self.emu.get(BY_METHOD + "(includedUserTypes='member',includedUserRoles='admin')",
                              token=self.kiosk)[2]
        self.assertEqual(admins["totalUserCount"], 2)                 # admin, rita
        priv = self.emu.get(BY_METHOD + "(includedUserTypes='all',includedUserRoles="
                                        "'privilegedAdmin')", token=self.kiosk)[2]
        self.assertEqual(priv["totalUserCount"], 1)                   # Authentication Admin
        guests = self.emu.get(BY_METHOD + "(includedUserTypes='guest',includedUserRoles='user')",
                              token=self.kiosk)[2]
        self.assertEqual(guests["totalUserCount"], 1)
        self.assertEqual(self.emu.get(BY_METHOD, token=self.kiosk)[2]["totalUserCount"], enabled)
        for bad in ("(includedUserTypes='everyone',includedUserRoles='all')",
                    "(includedUserTypes='all',includedUserRoles='root')",
                    "(includedUserKinds='all')", "(includedUserTypes=all)",
                    "(includedUserTypes='all',includedUserTypes='all')"):
            with self.subTest(args=bad):
                self.assertGraphError(self.emu.get(BY_METHOD + quote(bad, safe="()=',"),
                                                   token=self.kiosk), 400)

    def test_users_registered_by_feature(self):
        status, _, body = self.emu.get(
            BY_FEATURE + "(includedUserTypes='all',includedUserRoles='all')", token=self.kiosk)
        self.assertEqual(status, 200, body)
        counts = {c["feature"]: c["userCount"] for c in body["userRegistrationFeatureCounts"]}
        self.assertEqual(counts["passwordlessCapable"], 1)
        self.assertEqual(counts["mfaCapable"], 5)          # admin, bob, carol, dave, sam

    def test_lag(self):
        """The report shows the directory as it was reportLagSeconds ago."""
        bob = f"{REPORT}/{U['bob']}"
        self.assertEqual(self.emu.get(bob, token=self.kiosk)[2]["userDisplayName"], "Bob Builder")
        self.emu.patch("/_emulator/settings", {"reportLagSeconds": 600})
        try:
            first = self.emu.get(bob, token=self.kiosk)[2]
            status, _, body = self.emu.patch(f"/v1.0/users/{U['bob']}",
                                             {"displayName": "Robert Builder"}, token=self.kiosk)
            self.assertEqual(status, 204, body)
            again = self.emu.get(bob, token=self.kiosk)[2]
            self.assertEqual(again["userDisplayName"], "Bob Builder")       # not yet
            self.assertEqual(again["lastUpdatedDateTime"], first["lastUpdatedDateTime"])
            self.emu.patch("/_emulator/settings", {"clockOffsetSeconds": 601})
            later = self.emu.get(bob, token=self.kiosk)[2]
            self.assertEqual(later["userDisplayName"], "Robert Builder")
            self.assertGreater(later["lastUpdatedDateTime"], first["lastUpdatedDateTime"])
        finally:
            self.emu.patch("/_emulator/settings", {"reportLagSeconds": 0, "clockOffsetSeconds": 0})
            self.emu.patch(f"/v1.0/users/{U['bob']}", {"displayName": "Bob Builder"},
                           token=self.kiosk)


class _Emu:
    """Enough of an Emulator for reports.snapshot()."""

    def __init__(self, tenant):
        self.tenant = tenant


class RegistrationLagTest(unittest.TestCase):
    """A registration made now stays out of the report until the lag has passed (in-process:
    the method is added the way the method routes add it, Tenant.add_method)."""

    def test_new_registration_waits_for_the_lag(self):
        t = Tenant(copy.deepcopy(emutest.tenant()))
        emu = _Emu(t)
        t.settings["reportLagSeconds"] = 300
        ada = t.users[U["ada"]]

        def row():
            return reports.snapshot(emu).rows[ada["id"]][1]

        self.assertEqual(row()["methodsRegistered"], [])      # first snapshot: as loaded
        t.add_method(ada, {"type": "microsoftAuthenticator", "displayName": "Pixel",
                           "default": True})
        self.assertEqual(row()["methodsRegistered"], [])      # the snapshot is still fresh
        t.settings["clockOffsetSeconds"] = 301                # stale, and the change is old
        self.assertEqual(row()["methodsRegistered"], ["microsoftAuthenticatorPush"])
        self.assertTrue(row()["isMfaRegistered"])

    def test_refresh_keeps_recent_changes_out(self):
        t = Tenant(copy.deepcopy(emutest.tenant()))
        emu = _Emu(t)
        t.settings["reportLagSeconds"] = 300
        ada, bob = t.users[U["ada"]], t.users[U["bob"]]
        reports.snapshot(emu)
        emu._report_snapshot.at -= 1000                       # the next call refreshes ...
        t.add_method(ada, {"type": "phone", "phoneNumber": "+1 2065550199",
                           "phoneType": "mobile"})
        bob["displayName"] = "Robert Builder"
        snap = reports.snapshot(emu)
        self.assertGreater(snap.at, emu._report_snapshot.at - 1)
        # ... yet ada's registration, seconds old, stays out; bob's rename (no registration
        # change) is in the refreshed snapshot.
        self.assertEqual(snap.rows[ada["id"]][1]["methodsRegistered"], [])
        self.assertEqual(snap.rows[bob["id"]][1]["userDisplayName"], "Robert Builder")
        t.settings["clockOffsetSeconds"] = 301
        self.assertEqual(reports.snapshot(emu).rows[ada["id"]][1]["methodsRegistered"],
                         ["mobilePhone"])

    def test_new_user_appears_after_the_lag(self):
        t = Tenant(copy.deepcopy(emutest.tenant()))
        emu = _Emu(t)
        t.settings["reportLagSeconds"] = 300
        reports.snapshot(emu)
        new = t.add_user({"userPrincipalName": f"new@{D}", "createdDateTime": reports.iso(),
                          "methods": [{"type": "password"}]})
        emu._report_snapshot.at -= 1000
        self.assertNotIn(new["id"], reports.snapshot(emu).rows)
        t.settings["clockOffsetSeconds"] = 301
        self.assertIn(new["id"], reports.snapshot(emu).rows)


class LicenceTest(emutest.EmulatorTestCase):
    """Reports and sign-ins need P1/P2; a free tenant gets Graph's 403."""
    TENANT = tenant("free")

    def test_free_tenant_refused_then_allowed(self):
        kiosk = self.emu.token()
        for path in (REPORT, f"{REPORT}/{U['bob']}", BY_METHOD, SIGNINS):
            with self.subTest(path=path):
                err = self.assertGraphError(self.emu.get(path, token=kiosk), 403,
                                            "Authentication_RequestFromNonPremiumTenantOrB2CTenant")
                self.assertEqual(err["message"],
                                 "Neither tenant is B2C or tenant doesn't have premium license")
        self.emu.patch("/_emulator/settings", {"license": "P2"})
        try:
            self.assertEqual(self.emu.get(REPORT, token=kiosk)[0], 200)
            self.assertEqual(self.emu.get(SIGNINS, token=kiosk)[0], 200)
        finally:
            self.emu.patch("/_emulator/settings", {"license": "free"})
        self.assertGraphError(self.emu.get(REPORT, token=kiosk), 403)


class SignInsTest(emutest.EmulatorTestCase):
    TENANT = tenant()

    def setUp(self):
        self.kiosk = self.emu.token()

    def get(self, query=""):
        status, _, body = self.emu.get(SIGNINS + query, token=self.kiosk)
        self.assertEqual(status, 200, body)
        return body

    def test_shape_and_order(self):
        body = self.get("?$top=10")
        self.assertTrue(body["@odata.context"].endswith("$metadata#auditLogs/signIns"))
        rows = body["value"]
        self.assertEqual(len(rows), 10)
        for r in rows:
            self.assertEqual(set(r), SIGNIN_PROPS)
            self.assertEqual(set(r["status"]), {"errorCode", "failureReason", "additionalDetails"})
        stamps = [r["createdDateTime"] for r in rows]
        self.assertEqual(stamps, sorted(stamps, reverse=True))     # newest first
        first = rows[0]
        self.assertEqual((first["userId"], first["userPrincipalName"], first["clientAppUsed"]),
                         (SAM, f"sam@{D}", "IMAP4"))
        self.assertEqual(first["userDisplayName"], "Sam Legacy")
        self.assertIs(first["isInteractive"], False)

    def test_client_app_filter(self):
        q = "?$filter=" + quote("clientAppUsed eq 'IMAP4' or clientAppUsed eq 'POP3' or "
                                "clientAppUsed eq 'Authenticated SMTP'")
        rows = self.get(q)["value"]
        self.assertEqual([r["clientAppUsed"] for r in rows],
                         ["IMAP4", "POP3", "Authenticated SMTP"])
        self.assertEqual(rows[2]["status"]["errorCode"], 50126)
        for bad in ("clientAppUsed ne 'Browser'", "startswith(clientAppUsed,'IMAP')",
                    "not(clientAppUsed eq 'Browser')", "clientAppUsed eq 4",
                    "riskState eq 'none'"):
            with self.subTest(filter=bad):
                self.assertGraphError(self.emu.get(SIGNINS + "?$filter=" + quote(bad),
                                                   token=self.kiosk), 400)

    def test_user_and_time_filters(self):
        rows = self.get("?$filter=" + quote(f"userId eq '{SAM}'"))["value"]
        self.assertEqual(len(rows), 3)                       # the 31-day-old one is gone
        rows = self.get("?$filter=" + quote(f"userPrincipalName eq 'bob@{D}'"))["value"]
        self.assertEqual([r["clientAppUsed"] for r in rows], ["Browser"])
        since = (datetime.datetime.now(datetime.timezone.utc) -
                 datetime.timedelta(minutes=45)).strftime("%Y-%m-%dT%H:%M:%SZ")
        rows = self.get("?$filter=" + quote(f"createdDateTime ge {since}"))["value"]
        self.assertEqual(len(rows), 4)
        rows = self.get("?$filter=" + quote(f"createdDateTime ge {since} and "
                                            "clientAppUsed eq 'POP3'"))["value"]
        self.assertEqual(len(rows), 1)

    def test_default_page_is_1000_and_paging(self):
        body = self.get()
        self.assertEqual(len(body["value"]), 1000)
        self.assertIn("@odata.nextLink", body)
        items, pages = follow(self, SIGNINS + "?$top=300", self.kiosk)
        self.assertEqual(len(items), 1105)                   # retention drops two
        self.assertEqual(pages, 4)
        self.assertEqual(len({r["id"] for r in items}), 1105)
        self.assertGraphError(self.emu.get(SIGNINS + "?$top=1001", token=self.kiosk), 400)

    def test_unsupported_query_options(self):
        for opt in ("$select=id", "$orderby=createdDateTime", "$count=true", "$skip=5"):
            with self.subTest(opt=opt):
                self.assertGraphError(self.emu.get(SIGNINS + "?" + opt, token=self.kiosk), 400)

    def test_permissions(self):
        self.assertGraphError(self.emu.get(SIGNINS, token=self.emu.token(emutest.READER_APP)),
                              403, "Authorization_RequestDenied")
        op = self.emu.token(emutest.DELEGATED_APP, user=f"admin@{D}", scopes=["AuditLog.Read.All"])
        self.assertGraphError(self.emu.get(SIGNINS, token=op), 403)
        rita = self.emu.token(emutest.DELEGATED_APP, user=f"rita@{D}",
                              scopes=["AuditLog.Read.All"])
        self.assertEqual(self.emu.get(SIGNINS + "?$top=1", token=rita)[0], 200)


if __name__ == "__main__":
    emutest.main()
