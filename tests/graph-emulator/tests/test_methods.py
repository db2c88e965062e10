#!/usr/bin/python3
"""Authentication methods (reference §4, §5): the generic methods collection, every typed
collection (list, get, delete), phone methods, the default-method rule, beta
signInPreferences, output shapes against the v1.0 schema, and authorization."""

import json
import os
import sys

import emutest
import fido2util
from emutest import USERS

D = "contoso.onmicrosoft.com"
GINA = "3b1c2d4e-0000-4000-8000-0000000000a1"     # Global Administrator
PAT = "3b1c2d4e-0000-4000-8000-0000000000a2"      # Privileged Authentication Administrator
HANK = "3b1c2d4e-0000-4000-8000-0000000000b1"     # one method of every type
DORA = "3b1c2d4e-0000-4000-8000-0000000000b2"     # Authenticator (default) + SMS + OATH
PHIL = "3b1c2d4e-0000-4000-8000-0000000000b3"     # password only, for phone methods
MOBILE_ID = "3179e48a-750b-4051-897c-87b9720928f7"
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from graphemu import schema  # noqa: E402

SCHEMA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "..",
                      "shared", "reference", "graph-metadata", "v1.0-entity-types.json")
DEFAULT_MSG = ("Cannot delete default method with other methods configured. Please change "
               "default method before deletion.")


def tenant():
    t = emutest.tenant()
    t["users"] += [
        {"id": GINA, "userPrincipalName": f"gina@{D}", "displayName": "Gina Global",
         "directoryRoles": ["Global Administrator"],
         "methods": [{"type": "password"},
                     {"type": "microsoftAuthenticator", "displayName": "Gina's phone",
                      "default": True}]},
        {"id": PAT, "userPrincipalName": f"pat@{D}", "displayName": "Pat Privileged",
         "directoryRoles": ["Privileged Authentication Administrator"],
         "methods": [{"type": "password"}]},
        {"id": HANK, "userPrincipalName": f"hank@{D}", "displayName": "Hank Everything",
         "methods": [{"type": "password"},
                     {"type": "email", "emailAddress": "hank@fabrikam.com"},
                     {"type": "phone", "id": MOBILE_ID, "phoneNumber": "+1 2065550123",
                      "phoneType": "mobile", "smsSignInState": "notEnabled",
                      "default": True},
                     {"type": "softwareOath"},
                     {"type": "microsoftAuthenticator", "displayName": "Pixel 9",
                      "deviceTag": "SoftwareTokenActivated", "phoneAppVersion": "6.2401.0119",
                      "clientAppName": "microsoftAuthenticator"},
                     {"type": "windowsHelloForBusiness", "displayName": "HANK-LAPTOP",
                      "keyStrength": "normal"},
                     {"type": "platformCredential", "displayName": "Hank's Mac",
                      "keyStrength": "normal", "platform": "macOS"},
                     {"type": "hardwareOath"}]},
        {"id": DORA, "userPrincipalName": f"dora@{D}", "displayName": "Dora Default",
         "methods": [{"type": "password"},
                     {"type": "microsoftAuthenticator", "displayName": "Old phone",
                      "default": True},
                     {"type": "phone", "id": MOBILE_ID, "phoneNumber": "+1 2065550199",
                      "phoneType": "mobile", "smsSignInState": "notEnabled"},
                     {"type": "softwareOath"}]},
        {"id": PHIL, "userPrincipalName": f"phil@{D}", "displayName": "Phil Phone",
         "methods": [{"type": "password"}]},
    ]
    return t


class MethodsTest(emutest.EmulatorTestCase):
    TENANT = tenant()

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.app = cls.emu.token()
        cls.admin = cls.emu.token(emutest.DELEGATED_APP, user=f"admin@{D}")   # Auth Admin

    def get(self, path, **kw):
        kw.setdefault("token", self.app)
        return self.emu.get(path, **kw)

    def ok(self, path, **kw):
        status, _, body = self.get(path, **kw)
        self.assertEqual(status, 200, body)
        return body

    def methods(self, user, version="v1.0"):
        return self.ok(f"/{version}/users/{user}/authentication/methods")["value"]

    def assertNoPrivate(self, obj):
        text = json.dumps(obj)
        self.assertNotIn('"_', text)
        self.assertNotIn("publicKeyCredential", text)

    # --- the generic collection ------------------------------------------------------------

    def test_list_methods_v1(self):
        body = self.ok(f"/v1.0/users/{HANK}/authentication/methods")
        self.assertEqual(body["@odata.context"],
                         "https://graph.microsoft.com/v1.0/$metadata#users('%s')/authentication/"
                         "methods" % HANK)
        types = [m["@odata.type"] for m in body["value"]]
        self.assertNotIn("#microsoft.graph.hardwareOathAuthenticationMethod", types)
        self.assertEqual(len(types), 7)
        self.assertIn("#microsoft.graph.platformCredentialAuthenticationMethod", types)
        self.assertNoPrivate(body)
        for m in body["value"]:
            self.assertNotIn("lastUsedDateTime", m)
            if m["@odata.type"].endswith("passwordAuthenticationMethod"):
                self.assertIsNone(m["password"])
                self.assertEqual(m["id"], "28c10230-6103-485e-b985-444c60001490")
            if m["@odata.type"].endswith("softwareOathAuthenticationMethod"):
                self.assertIsNone(m["secretKey"])
            if m["@odata.type"].endswith("microsoftAuthenticatorAuthenticationMethod"):
                self.assertNotIn("clientAppName", m)                # beta only

    def test_list_methods_beta(self):
        types = [m["@odata.type"] for m in self.methods(HANK, "beta")]
        self.assertIn("#microsoft.graph.hardwareOathAuthenticationMethod", types)
        for m in self.methods(HANK, "beta"):
            self.assertIn("lastUsedDateTime", m)
            if m["@odata.type"].endswith("microsoftAuthenticatorAuthenticationMethod"):
                self.assertEqual(m["clientAppName"], "microsoftAuthenticator")

    def test_shapes_match_v1_schema(self):
        if not os.path.exists(SCHEMA):
            self.skipTest("reference schema not present")
        with open(SCHEMA) as f:
            types = json.load(f)["microsoft.graph"]
        for m in self.methods(HANK) + self.methods(USERS["carol"]):
            name = m["@odata.type"].rsplit(".", 1)[1]
            allowed = set(types[name]["properties"]) | {"id", "createdDateTime",
                                                        "@odata.type"}
            allowed.discard("publicKeyCredential")
            self.assertLessEqual(set(m), allowed, name)
            self.assertEqual(set(m), allowed, name)             # and nothing is missing

    def test_responses_conform_to_csdl(self):
        try:
            schema.model()
        except FileNotFoundError:
            self.skipTest("v1.0 CSDL not present")
        t = self.emu.token()
        for uid in list(USERS.values()) + [HANK, GINA]:
            for v in ("v1.0", "beta"):
                body = self.ok(f"/{v}/users/{uid}/authentication/methods")
                self.assertEqual(schema.check_response(body, "authenticationMethod",
                                                       version=v), [], (uid, v))
        for seg, typ in (("phoneMethods", "phoneAuthenticationMethod"),
                         ("emailMethods", "emailAuthenticationMethod"),
                         ("passwordMethods", "passwordAuthenticationMethod"),
                         ("softwareOathMethods", "softwareOathAuthenticationMethod"),
                         ("microsoftAuthenticatorMethods",
                          "microsoftAuthenticatorAuthenticationMethod"),
                         ("windowsHelloForBusinessMethods",
                          "windowsHelloForBusinessAuthenticationMethod")):
            body = self.ok(f"/v1.0/users/{HANK}/authentication/{seg}")
            self.assertEqual(schema.check_response(body, typ), [], seg)
            one = self.ok(f"/v1.0/users/{HANK}/authentication/{seg}/{body['value'][0]['id']}")
            self.assertEqual(schema.check_response(one, typ), [], seg)
        opts = self.ok(f"/v1.0/users/{PHIL}/authentication/fido2Methods/creationOptions")
        self.assertEqual(schema.check_response(opts, "webauthnCredentialCreationOptions"), [])
        cred = fido2util.make_credential(opts)
        self.assertEqual(schema.check_request("fido2.register_fido2", cred.body), [])
        status, _, key = self.emu.post(f"/v1.0/users/{PHIL}/authentication/fido2Methods",
                                       cred.body, token=t)
        self.assertEqual(status, 201, key)
        self.assertEqual(schema.check_response(key, "fido2AuthenticationMethod"), [])
        status, _, tap = self.emu.post(f"/v1.0/users/{PHIL}/authentication/"
                                       "temporaryAccessPassMethods", {}, token=t)
        self.assertEqual(status, 201, tap)
        self.assertEqual(schema.check_response(tap, "temporaryAccessPassAuthenticationMethod"),
                         [])
        self.assertEqual(schema.check_response(
            self.ok("/v1.0/users?$top=5&$select=id,accountEnabled,userType,"
                    "signInSessionsValidFromDateTime"), "user"), [])

    def test_no_query_options(self):
        for q in ("$top=1", "$select=id", "$filter=id%20eq%20'x'", "$count=true"):
            self.assertGraphError(self.get(
                f"/v1.0/users/{HANK}/authentication/methods?{q}"), 400)
            self.assertGraphError(self.get(
                f"/v1.0/users/{HANK}/authentication/phoneMethods?{q}"), 400)

    def test_get_one(self):
        body = self.ok(f"/v1.0/users/{HANK}/authentication/methods/{MOBILE_ID}")
        self.assertEqual(body["@odata.type"], "#microsoft.graph.phoneAuthenticationMethod")
        self.assertEqual(body["phoneType"], "mobile")
        self.assertTrue(body["@odata.context"].endswith("/authentication/methods/$entity"))
        self.assertGraphError(self.get(
            f"/v1.0/users/{HANK}/authentication/methods/00000000-0000-0000-0000-000000000000"),
            404, "itemNotFound")
        hw = [m["id"] for m in self.methods(HANK, "beta")
              if m["@odata.type"].endswith("hardwareOathAuthenticationMethod")][0]
        self.assertGraphError(self.get(f"/v1.0/users/{HANK}/authentication/methods/{hw}"), 404)
        self.ok(f"/beta/users/{HANK}/authentication/methods/{hw}")

    def test_generic_delete_is_delegated_only(self):
        m = [m for m in self.methods(USERS["carol"])
             if m["@odata.type"].endswith("fido2AuthenticationMethod")][0]
        path = f"/v1.0/users/{USERS['carol']}/authentication/methods/{m['id']}"
        self.assertGraphError(self.emu.delete(path, token=self.app), 403,
                              "Authorization_RequestDenied")
        self.assertEqual(self.emu.delete(path, token=self.admin)[0], 204)
        self.assertGraphError(self.get(path), 404)

    # --- typed collections ------------------------------------------------------------------

    def test_typed_collections(self):
        for seg, key in (("passwordMethods", "password"), ("emailMethods", "emailAddress"),
                         ("phoneMethods", "phoneNumber"), ("softwareOathMethods", "secretKey"),
                         ("microsoftAuthenticatorMethods", "phoneAppVersion"),
                         ("windowsHelloForBusinessMethods", "keyStrength")):
            body = self.ok(f"/v1.0/users/{HANK}/authentication/{seg}")
            self.assertTrue(body["@odata.context"].endswith(f"/authentication/{seg}"), seg)
            self.assertEqual(len(body["value"]), 1, seg)
            item = body["value"][0]
            self.assertNotIn("@odata.type", item)
            self.assertIn(key, item)
            self.assertNoPrivate(body)
            one = self.ok(f"/v1.0/users/{HANK}/authentication/{seg}/{item['id']}")
            self.assertEqual(one["id"], item["id"])
            self.assertGraphError(self.get(f"/v1.0/users/{HANK}/authentication/{seg}/nope"),
                                  404, "itemNotFound")
        self.assertEqual(self.ok(f"/v1.0/users/{HANK}/authentication/emailMethods")
                         ["value"][0]["emailAddress"], "hank@fabrikam.com")

    def test_platform_credentials_are_delegated_only(self):
        path = f"/v1.0/users/{HANK}/authentication/platformCredentialMethods"
        self.assertGraphError(self.get(path), 403, "Authorization_RequestDenied")
        body = self.ok(path, token=self.admin)
        self.assertEqual(body["value"][0]["platform"], "macOS")

    def test_hardware_oath_is_beta_only(self):
        self.assertEqual(len(self.ok(f"/beta/users/{HANK}/authentication/hardwareOathMethods")
                             ["value"]), 1)
        err = self.assertGraphError(self.get(
            f"/v1.0/users/{HANK}/authentication/hardwareOathMethods"), 400, "BadRequest")
        self.assertIn("hardwareOathMethods", err["message"])

    def test_unknown_and_unserved_segments(self):
        err = self.assertGraphError(self.get(f"/v1.0/users/{HANK}/authentication/fooMethods"),
                                    400)
        self.assertIn("fooMethods", err["message"])
        self.assertGraphError(self.get(
            f"/v1.0/users/{HANK}/authentication/externalAuthenticationMethods"), 501)

    def test_no_create_for_authenticator_and_oath(self):
        for seg in ("microsoftAuthenticatorMethods", "softwareOathMethods"):
            self.assertGraphError(self.emu.post(f"/v1.0/users/{USERS['ada']}/authentication/"
                                                f"{seg}", {"displayName": "x"},
                                                token=self.app), 405, "methodNotAllowed")

    def test_password_cannot_be_deleted(self):
        self.assertGraphError(self.emu.delete(
            f"/v1.0/users/{USERS['bob']}/authentication/passwordMethods/"
            "28c10230-6103-485e-b985-444c60001490", token=self.admin), 400)

    # --- the default method ------------------------------------------------------------------

    def test_default_method_rule(self):
        auth = [m for m in self.methods(DORA)
                if m["@odata.type"].endswith("microsoftAuthenticatorAuthenticationMethod")][0]
        path = f"/v1.0/users/{DORA}/authentication/microsoftAuthenticatorMethods/{auth['id']}"
        err = self.assertGraphError(self.emu.delete(path, token=self.app), 400)
        self.assertEqual(err["message"], DEFAULT_MSG)
        self.assertEqual(len(self.methods(DORA)), 4)                 # unchanged
        # change the default (beta signInPreferences), then the delete works
        prefs = f"/beta/users/{DORA}/authentication/signInPreferences"
        self.assertEqual(self.ok(prefs)["userPreferredMethodForSecondaryAuthentication"], "push")
        # the kiosk's granular permissions do not cover signInPreferences
        self.assertGraphError(self.emu.patch(prefs, {
            "userPreferredMethodForSecondaryAuthentication": "sms"}, token=self.app), 403)
        self.assertGraphError(self.emu.patch(prefs, {
            "userPreferredMethodForSecondaryAuthentication": "voiceOffice"}, token=self.admin),
            400)
        status, _, body = self.emu.patch(prefs, {
            "userPreferredMethodForSecondaryAuthentication": "sms"}, token=self.admin)
        self.assertEqual((status, body["userPreferredMethodForSecondaryAuthentication"]),
                         (200, "sms"))
        self.assertEqual(self.emu.delete(path, token=self.app)[0], 204)
        state = {m["type"]: m["default"] for m in self.emu.user_state(DORA)["methods"]}
        self.assertTrue(state["phone"])
        # the phone is now the default while OATH remains: refused; OATH first, then phone
        self.assertGraphError(self.emu.delete(
            f"/v1.0/users/{DORA}/authentication/phoneMethods/{MOBILE_ID}", token=self.app), 400)
        oath = self.ok(f"/v1.0/users/{DORA}/authentication/softwareOathMethods")["value"][0]
        self.assertEqual(self.emu.delete(f"/v1.0/users/{DORA}/authentication/"
                                         f"softwareOathMethods/{oath['id']}",
                                         token=self.app)[0], 204)
        self.assertEqual(self.emu.delete(f"/v1.0/users/{DORA}/authentication/phoneMethods/"
                                         f"{MOBILE_ID}", token=self.app)[0], 204)
        self.assertEqual([m["type"] for m in self.emu.user_state(DORA)["methods"]],
                         ["password"])
        self.assertGraphError(self.get(f"/v1.0/users/{DORA}/authentication/signInPreferences"),
                              400)

    def test_last_default_goes_and_a_new_default_is_picked(self):
        # bob: Authenticator (default) is his only MFA method: deletable
        auth = self.ok(f"/v1.0/users/{USERS['bob']}/authentication/"
                       "microsoftAuthenticatorMethods")["value"][0]
        self.assertEqual(self.emu.delete(f"/v1.0/users/{USERS['bob']}/authentication/"
                                         f"microsoftAuthenticatorMethods/{auth['id']}",
                                         token=self.app)[0], 204)
        # a phone added later becomes the default
        status, _, body = self.emu.post(f"/v1.0/users/{USERS['bob']}/authentication/"
                                        "phoneMethods",
                                        {"phoneNumber": "+44 7700900123", "phoneType": "mobile"},
                                        token=self.app)
        self.assertEqual(status, 201, body)
        self.assertTrue([m for m in self.emu.user_state(USERS["bob"])["methods"]
                         if m["type"] == "phone"][0]["default"])

    # --- phone methods --------------------------------------------------------------------------

    def test_phone_methods(self):
        path = f"/v1.0/users/{PHIL}/authentication/phoneMethods"
        self.assertGraphError(self.emu.post(path, {"phoneNumber": "+1 2065550111",
                                                   "phoneType": "alternateMobile"},
                                            token=self.app), 400)
        self.assertGraphError(self.emu.post(path, {"phoneNumber": "2065550111",
                                                   "phoneType": "mobile"}, token=self.app), 400)
        self.assertGraphError(self.emu.post(path, {"phoneNumber": "+1 2065550111",
                                                   "phoneType": "pager"}, token=self.app), 400)
        self.assertGraphError(self.emu.post(path, {"phoneNumber": "+1 2065550111",
                                                   "phoneType": "mobile", "x": 1},
                                            token=self.app), 400)
        status, headers, body = self.emu.post(path, {"phoneNumber": "+1 2065550111",
                                                     "phoneType": "mobile"}, token=self.app)
        self.assertEqual(status, 201, body)
        self.assertEqual(body["id"], MOBILE_ID)
        self.assertEqual(body["@odata.type"], "#microsoft.graph.phoneAuthenticationMethod")
        self.assertEqual(body["smsSignInState"], "notEnabled")
        self.assertTrue(headers["location"].endswith(f"/phoneMethods/{MOBILE_ID}"))
        self.assertGraphError(self.emu.post(path, {"phoneNumber": "+1 2065550112",
                                                   "phoneType": "mobile"}, token=self.app), 400)
        status, _, alt = self.emu.post(path, {"phoneNumber": "+1 2065550113",
                                              "phoneType": "alternateMobile"}, token=self.app)
        self.assertEqual(status, 201, alt)
        # the mobile (also the default) cannot go while the alternate exists
        self.assertGraphError(self.emu.delete(f"{path}/{MOBILE_ID}", token=self.app), 400)
        self.assertEqual(len(self.ok(path)["value"]), 2)

    # --- authorization ------------------------------------------------------------------------

    def test_authorization(self):
        path = f"/v1.0/users/{USERS['bob']}/authentication/methods"
        self.assertGraphError(self.get(path, token=self.emu.token(emutest.READER_APP)), 403,
                              "Authorization_RequestDenied")
        ada = self.emu.token(emutest.DELEGATED_APP, user=f"ada@{D}")       # no role
        self.assertGraphError(self.get(path, token=ada), 403, "Authorization_RequestDenied")
        self.ok("/v1.0/me/authentication/methods", token=ada)             # self: fine
        self.ok(f"/v1.0/users/{USERS['ada']}/authentication/methods", token=ada)
        self.ok(path, token=self.admin)
        # a self-only scope (no .All) does not reach other users
        narrow = self.emu.token(emutest.DELEGATED_APP, user=f"admin@{D}",
                                scopes=["UserAuthenticationMethod.Read"])
        self.assertGraphError(self.get(path, token=narrow), 403)
        self.ok("/v1.0/me/authentication/methods", token=narrow)
        self.assertGraphError(self.get("/v1.0/me/authentication/methods"), 400)  # app on /me

    def test_admin_targets_need_privileged_auth_admin(self):
        auth = self.ok(f"/v1.0/users/{GINA}/authentication/microsoftAuthenticatorMethods",
                       token=self.admin)["value"][0]                      # reading is fine
        path = f"/v1.0/users/{GINA}/authentication/microsoftAuthenticatorMethods/{auth['id']}"
        self.assertGraphError(self.emu.delete(path, token=self.admin), 403,
                              "Authorization_RequestDenied")
        pat = self.emu.token(emutest.DELEGATED_APP, user=f"pat@{D}")
        self.assertEqual(self.emu.delete(path, token=pat)[0], 204)

    def test_granular_permissions(self):
        # an app with only UserAuthMethod-Phone.Read.All reads phones but not the whole list
        t = self.emu.token()
        self.assertEqual(self.get(f"/v1.0/users/{HANK}/authentication/phoneMethods",
                                  token=t)[0], 200)
        reader = self.emu.token(emutest.READER_APP)
        self.assertGraphError(self.get(f"/v1.0/users/{HANK}/authentication/phoneMethods",
                                       token=reader), 403)


class GranularAppTest(emutest.EmulatorTestCase):
    """An app holding only UserAuthMethod-Phone.Read.All."""
    PHONE_APP = "6b7c8d9e-0f1a-4b2c-8d3e-4f5a6b7c8d9e"

    @classmethod
    def setUpClass(cls):
        t = tenant()
        t["apps"].append({"appId": cls.PHONE_APP, "displayName": "phones",
                          "secrets": [{"value": "x"}],
                          "applicationPermissions": ["UserAuthMethod-Phone.Read.All"]})
        cls.TENANT = t
        super().setUpClass()

    def test_phone_only(self):
        tok = self.emu.token(self.PHONE_APP)
        self.assertEqual(self.emu.get(f"/v1.0/users/{HANK}/authentication/phoneMethods",
                                      token=tok)[0], 200)
        for path in ("methods", "fido2Methods", "temporaryAccessPassMethods"):
            self.assertGraphError(self.emu.get(f"/v1.0/users/{HANK}/authentication/{path}",
                                               token=tok), 403, "Authorization_RequestDenied")
        self.assertGraphError(self.emu.delete(
            f"/v1.0/users/{HANK}/authentication/phoneMethods/{MOBILE_ID}", token=tok), 403)


if __name__ == "__main__":
    emutest.main()
