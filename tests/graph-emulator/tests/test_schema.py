#!/usr/bin/python3
"""The v1.0 schema checker itself (graphemu/schema.py): known-good Graph objects from the
reference pass; wrong types, unknown properties and bad enum values fail."""

import os
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from graphemu import schema  # noqa: E402

# Examples quoted in shared/reference/graph-api.md (§2.5, §3, §6.1, §9).
FIDO2 = {"@odata.type": "#microsoft.graph.fido2AuthenticationMethod",
         "id": "73e4b2c6-5b8a-4a2f-9d3e-1c2b3a4d5e6f", "displayName": "My security key",
         "createdDateTime": "2026-04-20T10:15:30Z",
         "aaGuid": "de1e552d-db1d-4423-a619-566b625cdc84",
         "model": "Security Key NFC by Yubico", "attestationCertificates": [],
         "attestationLevel": "attested", "passkeyType": "deviceBound"}
TAP = {"@odata.type": "#microsoft.graph.temporaryAccessPassAuthenticationMethod",
       "id": "6f1f7fe3-4e4a-4a5a-8b4a-62e0a6b1c7d1", "temporaryAccessPass": "+drkzqAD",
       "createdDateTime": "2026-04-20T10:15:30.1234567Z",
       "startDateTime": "2026-04-20T10:15:30Z", "lifetimeInMinutes": 60,
       "isUsableOnce": False, "isUsable": False, "methodUsabilityReason": "NotYetValid"}
USER = {"@odata.context": "https://graph.microsoft.com/v1.0/$metadata#users/$entity",
        "id": "3b1c2d4e-0000-4000-8000-000000000002", "displayName": "Ada Lovelace",
        "userPrincipalName": "ada@contoso.onmicrosoft.com", "accountEnabled": True,
        "userType": "Member", "mail": None, "businessPhones": [],
        "createdDateTime": "2026-01-01T00:00:00Z",
        "signInSessionsValidFromDateTime": "2026-04-20T10:15:30Z"}
CREATION_OPTIONS = {
    "challengeTimeoutDateTime": "2026-04-20T10:20:30Z",
    "publicKey": {
        "challenge": "Y2hhbGxlbmdl", "timeout": 300000, "attestation": "direct",
        "rp": {"id": "login.microsoft.com", "name": "Microsoft"},
        "user": {"id": "dXNlcg", "displayName": "Ada Lovelace",
                 "name": "ada@contoso.onmicrosoft.com"},
        "pubKeyCredParams": [{"type": "public-key", "alg": -7},
                             {"type": "public-key", "alg": -257}],
        "excludeCredentials": [{"type": "public-key", "id": "Y2Fyb2w", "transports": []}],
        "authenticatorSelection": {"authenticatorAttachment": "cross-platform",
                                   "requireResidentKey": True, "userVerification": "required"},
        "extensions": {"hmacCreateSecret": True, "enforceCredentialProtectionPolicy": True,
                       "credentialProtectionPolicy": "userVerificationOptional"}}}
REGISTRATION = {
    "@odata.type": "#microsoft.graph.userRegistrationDetails",
    "id": "3b1c2d4e-0000-4000-8000-000000000002", "userPrincipalName": "ada@contoso.com",
    "userDisplayName": "Ada", "userType": "member", "isAdmin": False,
    "isSsprRegistered": False, "isSsprEnabled": False, "isSsprCapable": False,
    "isMfaRegistered": True, "isMfaCapable": True, "isPasswordlessCapable": False,
    "methodsRegistered": ["fido2"], "isSystemPreferredAuthenticationMethodEnabled": False,
    "systemPreferredAuthenticationMethods": [], "userPreferredMethodForSecondaryAuthentication":
    "none", "lastUpdatedDateTime": "2026-04-20T10:15:30Z"}


class ModelTest(unittest.TestCase):
    def test_parses_fast_and_finds_types(self):
        t0 = time.monotonic()
        m = schema.Model(schema.metadata_path())
        self.assertLess(time.monotonic() - t0, 2.0)
        fido2 = m.type("fido2AuthenticationMethod")
        self.assertEqual(fido2.base, "microsoft.graph.authenticationMethod")
        self.assertIn("createdDateTime", m.all_props(fido2))      # from authenticationMethod
        self.assertIn("id", m.all_props(fido2))                   # from entity
        self.assertTrue(m.type("authenticationMethod").abstract)
        self.assertTrue(m.type("user").open)
        self.assertEqual(m.type("#microsoft.graph.passkeyType").members,
                         ["deviceBound", "synced", "unknownFutureValue"])

    def test_alias_resolution_across_namespaces(self):
        m = schema.model()
        self.assertEqual(m.resolve("graph.user"), "microsoft.graph.user")
        self.assertEqual(m.resolve("self.alert"), "microsoft.graph.security.alert")
        self.assertIn("microsoft.graph.security.user", m.types)

    def test_documented_exceptions(self):
        m = schema.model()
        # The CSDL says Insertable=false; the documentation (v1.0 GA) wins.
        self.assertTrue(m.insertable("microsoft.graph.authentication/fido2Methods"))
        self.assertFalse(m.insertable(
            "microsoft.graph.authentication/microsoftAuthenticatorMethods"))
        self.assertEqual(m.operation("creationOptions").params, {})
        self.assertIn("challengeTimeoutInMinutes",
                      m.operation("creationOptions", version="beta").params)
        self.assertEqual(m.operation("creationOptions").returns,
                         ("microsoft.graph.webauthnCredentialCreationOptions", False))
        self.assertEqual(m.operation("revokeSignInSessions", "user").returns,
                         ("Edm.Boolean", False))

    def test_metadata_path_from_environment(self):
        path = schema.metadata_path()
        old = os.environ.get("KEYDESK_GRAPH_METADATA")
        try:
            os.environ["KEYDESK_GRAPH_METADATA"] = os.path.dirname(path)
            self.assertEqual(schema.metadata_path(), path)
        finally:
            if old is None:
                os.environ.pop("KEYDESK_GRAPH_METADATA")
            else:
                os.environ["KEYDESK_GRAPH_METADATA"] = old


class CheckTest(unittest.TestCase):
    def test_reference_examples_pass(self):
        self.assertEqual(schema.check(FIDO2, "fido2AuthenticationMethod"), [])
        self.assertEqual(schema.check(FIDO2, "authenticationMethod"), [])   # via @odata.type
        self.assertEqual(schema.check(TAP, "authenticationMethod"), [])
        self.assertEqual(schema.check(USER, "user"), [])
        self.assertEqual(schema.check(CREATION_OPTIONS, "webauthnCredentialCreationOptions"), [])
        self.assertEqual(schema.check(REGISTRATION, "userRegistrationDetails"), [])

    def test_wrong_json_types(self):
        bad = dict(TAP, lifetimeInMinutes="60", isUsableOnce="false", startDateTime=1)
        problems = schema.check(bad, "temporaryAccessPassAuthenticationMethod")
        self.assertEqual(len(problems), 3, problems)
        self.assertTrue(any("$.lifetimeInMinutes" in p and "integer" in p for p in problems))
        self.assertTrue(any("$.isUsableOnce" in p for p in problems))
        self.assertTrue(any("$.startDateTime" in p for p in problems))
        self.assertTrue(schema.check(dict(FIDO2, attestationCertificates="x"),
                                     "fido2AuthenticationMethod"))
        self.assertTrue(schema.check(dict(USER, accountEnabled=1), "user"))   # not a boolean
        self.assertTrue(schema.check(dict(USER, id=None), "user"))            # id not nullable
        self.assertTrue(schema.check(dict(FIDO2, createdDateTime="2026-04-20 10:15:30"),
                                     "fido2AuthenticationMethod"))           # no T, no zone
        self.assertTrue(schema.check([FIDO2], "fido2AuthenticationMethod"))

    def test_unknown_property(self):
        problems = schema.check(dict(FIDO2, credentialId="abc"), "fido2AuthenticationMethod")
        self.assertEqual(problems, ["$.credentialId: microsoft.graph.fido2AuthenticationMethod "
                                    "has no property 'credentialId'"])
        # Leaked private keys of the emulator would show the same way.
        self.assertTrue(schema.check(dict(FIDO2, _credentialId="x"), "authenticationMethod"))

    def test_annotations_and_open_types_are_allowed(self):
        self.assertEqual(schema.check(dict(USER, **{"@odata.etag": "W/1",
                                                     "manager@odata.navigationLink": "x",
                                                     "extension_abc_badge": "42"}), "user"), [])
        self.assertEqual(schema.check(
            {"hmacCreateSecret": True, "anything": 1},
            "webauthnAuthenticationExtensionsClientOutputs"), [])          # OpenType

    def test_enum_values(self):
        self.assertTrue(schema.check(dict(FIDO2, passkeyType="roaming"),
                                     "fido2AuthenticationMethod"))
        self.assertEqual(schema.check(dict(FIDO2, passkeyType="unknownFutureValue"),
                                      "fido2AuthenticationMethod"), [])
        self.assertTrue(schema.check(dict(FIDO2, attestationLevel=1), "fido2AuthenticationMethod"))

    def test_flags_enum(self):
        # includedUserTypes is not flags; authenticationMethodModes is.
        self.assertEqual(schema.check("password,voice", "authenticationMethodModes"), [])
        self.assertTrue(schema.check("password,nonsense", "authenticationMethodModes"))

    def test_nested_complex_types(self):
        bad = {"publicKey": {
            "rp": {"id": "login.microsoft.com", "nme": "Microsoft"},
            "pubKeyCredParams": [{"type": "public-key", "alg": "-7"}]}}
        problems = schema.check(bad, "webauthnCredentialCreationOptions")
        self.assertIn("$.publicKey.rp.nme: "
                      "microsoft.graph.webauthnPublicKeyCredentialRpEntity has no property 'nme'",
                      problems)
        self.assertTrue(any(p.startswith("$.publicKey."
                                          "pubKeyCredParams[0].alg") for p in problems), problems)

    def test_derived_types(self):
        self.assertEqual(schema.check(TAP, "authenticationMethod"), [])
        # Abstract without @odata.type: Graph always names the concrete type.
        plain = {k: v for k, v in FIDO2.items() if k != "@odata.type"}
        self.assertTrue(schema.check(plain, "authenticationMethod"))
        self.assertEqual(schema.check(plain, "fido2AuthenticationMethod"), [])
        # A type that is not derived from the expected one.
        self.assertTrue(schema.check(dict(FIDO2, **{"@odata.type": "#microsoft.graph.user"}),
                                     "authenticationMethod"))
        self.assertTrue(schema.check(dict(FIDO2, **{"@odata.type": "#microsoft.graph.nope"}),
                                     "authenticationMethod"))
        # Derived properties only count once @odata.type says so.
        self.assertTrue(schema.check(
            {"@odata.type": "#microsoft.graph.passwordAuthenticationMethod",
             "id": "28c10230-6103-485e-b985-444c60001490", "aaGuid": "x"},
            "authenticationMethod"))

    def test_contained_navigation_properties(self):
        policy = {"@odata.type": "#microsoft.graph.fido2AuthenticationMethodConfiguration",
                  "id": "Fido2", "state": "enabled", "isAttestationEnforced": False,
                  "isSelfServiceRegistrationAllowed": True,
                  "keyRestrictions": {"isEnforced": False, "enforcementType": "block",
                                      "aaGuids": []},
                  "includeTargets": [{"id": "all_users", "targetType": "group",
                                      "isRegistrationRequired": False}],
                  "excludeTargets": []}
        self.assertEqual(schema.check(policy, "authenticationMethodConfiguration"), [])
        bad = dict(policy, keyRestrictions={"enforcementType": "deny"})
        self.assertTrue(schema.check(bad, "authenticationMethodConfiguration"))

    def test_collection_responses(self):
        body = {"@odata.context": "https://graph.microsoft.com/v1.0/$metadata#users",
                "@odata.nextLink": "https://graph.microsoft.com/v1.0/users?$skiptoken=x",
                "value": [USER, dict(USER, id="3b1c2d4e-0000-4000-8000-000000000003")]}
        self.assertEqual(schema.check_response(body, "user"), [])
        self.assertTrue(schema.check_response(dict(body, count=2), "user"))
        self.assertTrue(schema.check_response({"value": [dict(USER, accountEnabled="yes")]},
                                              "user"))
        self.assertEqual(schema.check_response(
            {"@odata.context": "https://graph.microsoft.com/v1.0/$metadata#Edm.Boolean",
             "value": True}, "Edm.Boolean"), [])
        self.assertTrue(schema.check_response({"value": "true"}, "Edm.Boolean"))
        self.assertEqual(schema.check_response({"value": [FIDO2, TAP]}, "authenticationMethod"),
                         [])

    def test_beta_names(self):
        beta = dict(REGISTRATION, defaultMfaMethod="none")
        self.assertTrue(schema.check(beta, "userRegistrationDetails"))        # not in v1.0
        self.assertEqual(schema.check(beta, "userRegistrationDetails", version="beta"), [])
        hw = {"@odata.type": "#microsoft.graph.hardwareOathAuthenticationMethod",
              "id": "aad49556-0000-4000-8000-000000000001", "device": {}}
        self.assertTrue(schema.check(hw, "authenticationMethod"))             # beta only
        self.assertEqual(schema.check(hw, "authenticationMethod", version="beta"), [])
        self.assertTrue(schema.check(dict(hw, serial="1"), "authenticationMethod",
                                     version="beta"))
        self.assertTrue(schema.check(dict(beta, isAdmin="no"), "userRegistrationDetails",
                                     version="beta"))                        # still typed

    def test_primitive_formats(self):
        ok = [("2026-04-20T10:15:30Z", "Edm.DateTimeOffset"),
              ("2026-04-20T10:15:30.1234567+02:00", "Edm.DateTimeOffset"),
              ("2026-04-20", "Edm.Date"), ("PT5M", "Edm.Duration"), ("P1DT2H", "Edm.Duration"),
              ("de1e552d-db1d-4423-a619-566b625cdc84", "Edm.Guid"),
              ("Y2hhbGxlbmdl", "Edm.Binary"), ("q83v-_A==", "Edm.Binary"),
              (2**40, "Edm.Int64"), (1.5, "Edm.Double"), ("NaN", "Edm.Double"),
              ({"any": ["thing"]}, "Edm.Untyped")]
        for value, edm in ok:
            self.assertEqual(schema.check(value, edm), [], (value, edm))
        bad = [("2026-04-20T10:15:30", "Edm.DateTimeOffset"), ("20.4.2026", "Edm.Date"),
               ("5 minutes", "Edm.Duration"), ("not-a-guid", "Edm.Guid"),
               ("a b", "Edm.Binary"), (2**40, "Edm.Int32"), (True, "Edm.Int32"),
               (1.5, "Edm.Int32"), ("1", "Edm.Double"), (0, "Edm.Boolean")]
        for value, edm in bad:
            self.assertTrue(schema.check(value, edm), (value, edm))


class RequestTest(unittest.TestCase):
    CRED = {"id": "Y3JlZA", "response": {"clientDataJSON": "eyJ0eXBlIjoid2ViYXV0aG4uY3JlYXRlIn0",
                                         "attestationObject": "o2NmbXRkbm9uZQ"},
            "clientExtensionResults": {}}

    def test_fido2_registration_body(self):
        good = {"displayName": "YubiKey 5 NFC 12345678", "publicKeyCredential": self.CRED}
        for target in ("POST /v1.0/users/ada@contoso.com/authentication/fido2Methods",
                       "POST /beta/users/x/authentication/fido2Methods",
                       "POST /users/x/authentication/fido2Methods"):
            self.assertEqual(schema.check_request(target, good), [], target)
        self.assertEqual(schema.check_request("/users/x/authentication/fido2Methods", good,
                                              method="POST"), [])
        # Yubico sends authenticator extension outputs: the type is open.
        yubico = dict(good, publicKeyCredential=dict(
            self.CRED, clientExtensionResults={"hmac-secret": True, "credProtect": 1}))
        self.assertEqual(schema.check_request("POST /users/x/authentication/fido2Methods",
                                              yubico), [])
        t = "POST /v1.0/users/x/authentication/fido2Methods"
        self.assertTrue(schema.check_request(t, {"displayName": "k"}))
        self.assertTrue(schema.check_request(t, dict(good, displayName="x" * 31)))
        self.assertTrue(schema.check_request(t, dict(good, **{
            "@odata.type": "#microsoft.graph.fido2AuthenticationMethod"})))
        self.assertTrue(schema.check_request(t, dict(good, publicKeyCredential=dict(
            self.CRED, rawId="Y3JlZA"))))                    # not in webauthnPublicKeyCredential
        self.assertTrue(schema.check_request(t, dict(good, publicKeyCredential={
            "id": "Y3JlZA", "response": {"clientDataJSON": "x"}})))
        no_name = {"publicKeyCredential": self.CRED}
        self.assertEqual(schema.check_request(t, no_name), [])
        self.assertTrue(schema.check_request("POST /beta/users/x/authentication/fido2Methods",
                                             no_name))

    def test_tap_body(self):
        t = "POST /v1.0/users/x/authentication/temporaryAccessPassMethods"
        self.assertEqual(schema.check_request(t, {}), [])
        self.assertEqual(schema.check_request(t, {"startDateTime": "2026-04-20T10:15:30Z",
                                                  "lifetimeInMinutes": 60,
                                                  "isUsableOnce": True}), [])
        self.assertTrue(schema.check_request(t, {"lifetimeInMinutes": 5}))
        self.assertTrue(schema.check_request(t, {"lifetimeInMinutes": "60"}))
        self.assertTrue(schema.check_request(t, {"temporaryAccessPass": "abc"}))
        self.assertTrue(schema.check_request(t, {"isUsableOnce": True, "usableOnce": True}))

    def test_user_patch_body(self):
        t = "PATCH /v1.0/users/ada@contoso.com"
        self.assertEqual(schema.check_request(t, {"employeeId": "42", "accountEnabled": False}),
                         [])
        ext = "extension_3f2a6c1e8d4b4e579a0f2b7c1d9e4f60_keydeskEnrolledAt"
        self.assertTrue(schema.check_request(t, {ext: "2026-04-20T10:15:30Z"}))
        self.assertEqual(schema.check_request(t, {ext: "2026-04-20T10:15:30Z"},
                                              extra_props=[ext]), [])
        self.assertTrue(schema.check_request(t, {"accountEnabled": "false"}))
        self.assertTrue(schema.check_request(t, {"employeeID": "42"}))     # case matters

    def test_members_ref_body(self):
        t = "POST /v1.0/groups/7d7e7f80-1111-4222-8333-444455556666/members/$ref"
        good = {"@odata.id": "https://graph.microsoft.com/v1.0/directoryObjects/"
                             "3b1c2d4e-0000-4000-8000-000000000002"}
        self.assertEqual(schema.check_request(t, good), [])
        self.assertTrue(schema.check_request(t, {"id": "3b1c2d4e"}))
        self.assertTrue(schema.check_request(t, dict(good, extra=1)))
        self.assertTrue(schema.check_request(t, {"@odata.id": "3b1c2d4e"}))

    def test_unknown_route(self):
        with self.assertRaises(KeyError):
            schema.check_request("DELETE /v1.0/users/x", {})


if __name__ == "__main__":
    unittest.main(verbosity=2)
