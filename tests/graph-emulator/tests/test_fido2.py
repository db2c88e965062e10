#!/usr/bin/python3
"""FIDO2 provisioning (reference §2): creationOptions, registration with real WebAuthn
credentials made by python3-fido2 (packed self, packed x5c, none), every refusal, list, get,
delete, policies and authorization."""

import base64
import datetime
import hashlib
import json
import re

import emutest
import fido2util
from emutest import USERS

D = "contoso.onmicrosoft.com"
GINA = "3b1c2d4e-0000-4000-8000-0000000000a1"     # Global Administrator (an admin target)
PAT = "3b1c2d4e-0000-4000-8000-0000000000a2"      # Privileged Authentication Administrator
OPTS = "/authentication/fido2Methods/creationOptions"
BLOCKED = "de1e552d-db1d-4423-a619-566b625cdc84"


def tenant(fido2_policy=None):
    t = emutest.tenant()
    t["users"] += [
        {"id": GINA, "userPrincipalName": f"gina@{D}", "displayName": "Gina Global",
         "directoryRoles": ["Global Administrator"], "methods": [{"type": "password"}]},
        {"id": PAT, "userPrincipalName": f"pat@{D}", "displayName": "Pat Privileged",
         "directoryRoles": ["Privileged Authentication Administrator"],
         "methods": [{"type": "password"}]},
    ]
    if fido2_policy:
        t["policies"]["fido2"] = fido2_policy
    return t


class Fido2Base(emutest.EmulatorTestCase):
    TENANT = tenant()

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.app = cls.emu.token()

    def options(self, user, version="v1.0", suffix="", token=None):
        status, headers, body = self.emu.get(f"/{version}/users/{user}{OPTS}{suffix}",
                                             token=token or self.app)
        self.assertEqual(status, 200, body)
        return body

    def register(self, user, cred, version="v1.0", token=None):
        return self.emu.post(f"/{version}/users/{user}/authentication/fido2Methods", cred.body,
                             token=token or self.app)

    def fido2_state(self, user):
        return [m for m in self.emu.user_state(user)["methods"] if m["type"] == "fido2"]

    def refused(self, user, cred, words, version="v1.0"):
        """The registration is a 400 badRequest naming @words and changes nothing."""
        before = self.fido2_state(user)
        err = self.assertGraphError(self.register(user, cred, version), 400, "badRequest")
        for w in words if isinstance(words, (list, tuple)) else [words]:
            self.assertIn(w.lower(), err["message"].lower(), err)
        self.assertEqual(self.fido2_state(user), before)
        return err

    def settings(self, **kw):
        status, _, body = self.emu.patch("/_emulator/settings", kw)
        self.assertEqual(status, 200, body)


def b64d(text):
    return fido2util.b64_decode(text)


class CreationOptionsTest(Fido2Base):
    def test_shape(self):
        body = self.options(USERS["ada"])
        self.assertEqual(set(body), {"@odata.context", "challengeTimeoutDateTime", "publicKey"})
        self.assertTrue(body["@odata.context"].endswith(
            "$metadata#microsoft.graph.webauthnCredentialCreationOptions"))
        pk = body["publicKey"]
        self.assertEqual(set(pk), {"rp", "user", "challenge", "pubKeyCredParams", "timeout",
                                   "excludeCredentials", "authenticatorSelection",
                                   "attestation", "extensions"})
        self.assertEqual(pk["rp"], {"id": "login.microsoft.com", "name": "Microsoft"})
        self.assertEqual(pk["user"]["name"], f"ada@{D}")
        self.assertEqual(pk["user"]["displayName"], "Ada Lovelace")
        self.assertRegex(pk["user"]["id"], r"^[A-Za-z0-9_-]+$")
        self.assertTrue(b64d(pk["user"]["id"]).startswith(b"OF:"))
        self.assertRegex(pk["challenge"], r"^[A-Za-z0-9_-]+$")      # base64url, no padding
        raw = b64d(pk["challenge"])
        self.assertGreaterEqual(len(raw), 1024)
        self.assertEqual(raw.count(b"."), 4)                       # compact JWE look
        header = json.loads(base64.urlsafe_b64decode(raw.split(b".")[0] + b"=="))
        self.assertEqual(header["alg"], "RSA-OAEP-256")
        self.assertEqual(pk["pubKeyCredParams"], [{"type": "public-key", "alg": -7},
                                                  {"type": "public-key", "alg": -257}])
        self.assertEqual(pk["timeout"], 60000)
        self.assertEqual(pk["excludeCredentials"], [])
        self.assertEqual(pk["authenticatorSelection"],
                         {"authenticatorAttachment": "cross-platform", "requireResidentKey": True,
                          "userVerification": "required"})
        self.assertEqual(pk["attestation"], "direct")
        self.assertEqual(pk["extensions"], {"hmacCreateSecret": True,
                                            "enforceCredentialProtectionPolicy": True,
                                            "credentialProtectionPolicy":
                                                "userVerificationOptional"})

    def test_timeout_five_minutes_and_fresh_challenges(self):
        a = self.options(USERS["ada"])
        b = self.options(f"ada@{D}")                               # UPN works too
        self.assertNotEqual(a["publicKey"]["challenge"], b["publicKey"]["challenge"])
        self.assertEqual(a["publicKey"]["user"]["id"], b["publicKey"]["user"]["id"])  # stable
        self.assertNotEqual(a["publicKey"]["user"]["id"],
                            self.options(USERS["bob"])["publicKey"]["user"]["id"])
        expiry = datetime.datetime.strptime(a["challengeTimeoutDateTime"], "%Y-%m-%dT%H:%M:%SZ")
        left = (expiry - datetime.datetime.utcnow()).total_seconds()
        self.assertTrue(290 <= left <= 301, left)

    def test_beta_custom_timeout(self):
        body = self.options(USERS["ada"], "beta", "(challengeTimeoutInMinutes=60)")
        expiry = datetime.datetime.strptime(body["challengeTimeoutDateTime"],
                                            "%Y-%m-%dT%H:%M:%SZ")
        left = (expiry - datetime.datetime.utcnow()).total_seconds()
        self.assertTrue(3590 <= left <= 3601, left)
        self.options(USERS["ada"], "beta", "(challengeTimeoutInMinutes=43200)")
        self.options(USERS["ada"], "beta")                          # default 5

    def test_beta_timeout_out_of_range(self):
        for n in (4, 43201, 0):
            self.assertGraphError(self.emu.get(
                f"/beta/users/{USERS['ada']}{OPTS}(challengeTimeoutInMinutes={n})",
                token=self.app), 400)

    def test_v1_rejects_the_parameter(self):
        self.assertGraphError(self.emu.get(
            f"/v1.0/users/{USERS['ada']}{OPTS}(challengeTimeoutInMinutes=10)", token=self.app),
            400)

    def test_query_string_form_is_405(self):
        for v in ("beta", "v1.0"):
            self.assertGraphError(self.emu.get(
                f"/{v}/users/{USERS['ada']}{OPTS}?challengeTimeoutInMinutes=5", token=self.app),
                405, "methodNotAllowed")

    def test_self_is_405(self):
        tok = self.emu.token(emutest.DELEGATED_APP, user=f"admin@{D}")
        self.assertGraphError(self.emu.get(f"/v1.0/me{OPTS}", token=tok), 405,
                              "methodNotAllowed")
        self.assertGraphError(self.emu.get(f"/v1.0/users/{USERS['admin']}{OPTS}", token=tok),
                              405, "methodNotAllowed")

    def test_exclude_credentials_encodings(self):
        uid = USERS["carol"]
        old = b"carol-existing-key-id"
        body = self.options(uid)
        self.assertEqual(body["publicKey"]["excludeCredentials"],
                         [{"type": "public-key", "id": fido2util.b64url(old), "transports": []}])
        new = b"\xfb\xff\xbf" * 10 + b"\xfe\xef"        # '+', '/' and '=' in standard base64
        cred = fido2util.make_credential(body, credential_id=new)
        self.assertEqual(self.emu.post(f"/v1.0/users/{uid}/authentication/fido2Methods",
                                       cred.body, token=self.app)[0], 201)
        try:
            self.settings(fido2ExcludeIdEncoding="base64")
            ids = [c["id"] for c in self.options(uid)["publicKey"]["excludeCredentials"]]
            self.assertEqual(ids, [base64.b64encode(old).decode(),
                                   base64.b64encode(new).decode()])
            self.assertTrue(re.search(r"[+/]", ids[1]) and ids[1].endswith("="), ids)
            self.settings(fido2ExcludeIdEncoding="mixed")
            ids = [c["id"] for c in self.options(uid)["publicKey"]["excludeCredentials"]]
            self.assertEqual(ids, [base64.b64encode(old).decode(), fido2util.b64url(new)])
            self.assertEqual([b64d(i) for i in ids], [old, new])
            self.settings(fido2ExcludeIdEncoding="corrupt")       # issue #28: stray characters
            ids = [c["id"] for c in self.options(uid)["publicKey"]["excludeCredentials"]]
            self.assertEqual(ids, [base64.b64encode(old).decode() + "!", fido2util.b64url(new)])
        finally:
            self.settings(fido2ExcludeIdEncoding="base64url")

    def test_authorization(self):
        reader = self.emu.token(emutest.READER_APP)
        self.assertGraphError(self.emu.get(f"/v1.0/users/{USERS['ada']}{OPTS}", token=reader),
                              403, "Authorization_RequestDenied")
        bob = self.emu.token(emutest.DELEGATED_APP, user=f"bob@{D}")    # no role
        self.assertGraphError(self.emu.get(f"/v1.0/users/{USERS['ada']}{OPTS}", token=bob),
                              403, "Authorization_RequestDenied")
        admin = self.emu.token(emutest.DELEGATED_APP, user=f"admin@{D}")  # Auth Admin
        self.assertEqual(self.emu.get(f"/v1.0/users/{USERS['ada']}{OPTS}", token=admin)[0], 200)
        self.assertGraphError(self.emu.get(f"/v1.0/users/{GINA}{OPTS}", token=admin), 403,
                              "Authorization_RequestDenied")
        pat = self.emu.token(emutest.DELEGATED_APP, user=f"pat@{D}")
        self.assertEqual(self.emu.get(f"/v1.0/users/{GINA}{OPTS}", token=pat)[0], 200)

    def test_unknown_user(self):
        self.assertGraphError(self.emu.get(f"/v1.0/users/nobody@{D}{OPTS}", token=self.app),
                              404, "Request_ResourceNotFound")


class RegisterTest(Fido2Base):
    def test_packed_self_attestation(self):
        uid = USERS["ada"]
        opts = self.options(uid)
        cred = fido2util.make_credential(opts, display_name="YubiKey 5 NFC 1234")
        status, headers, body = self.register(uid, cred)
        self.assertEqual(status, 201, body)
        self.assertEqual(body["@odata.type"], "#microsoft.graph.fido2AuthenticationMethod")
        self.assertEqual(set(body) - {"@odata.context", "@odata.type"},
                         {"id", "displayName", "createdDateTime", "aaGuid", "model",
                          "attestationCertificates", "attestationLevel", "passkeyType"})
        self.assertEqual(body["displayName"], "YubiKey 5 NFC 1234")
        self.assertEqual(body["aaGuid"], "cb69481e-8ff7-4039-93ec-0a2729a154a8")
        self.assertTrue(body["model"] and "YubiKey" in body["model"], body["model"])
        self.assertEqual(body["attestationCertificates"], [])
        self.assertEqual(body["attestationLevel"], "notAttested")
        self.assertEqual(body["passkeyType"], "deviceBound")
        self.assertRegex(body["createdDateTime"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
        # stored and listed; the key goes into excludeCredentials next time
        status, _, listed = self.emu.get(f"/v1.0/users/{uid}/authentication/fido2Methods",
                                         token=self.app)
        self.assertEqual(status, 200)
        self.assertIn(body["id"], [m["id"] for m in listed["value"]])
        for m in listed["value"]:
            self.assertFalse([k for k in m if k.startswith("_") or k == "publicKeyCredential"])
        status, _, one = self.emu.get(
            f"/v1.0/users/{uid}/authentication/fido2Methods/{body['id']}", token=self.app)
        self.assertEqual(status, 200)
        self.assertEqual(one["aaGuid"], body["aaGuid"])
        excl = self.options(uid)["publicKey"]["excludeCredentials"]
        self.assertIn(cred.credential_id, [b64d(c["id"]) for c in excl])
        # the same challenge cannot be used twice
        again = fido2util.make_credential(opts)
        self.refused(uid, again, "already been used")

    def test_packed_x5c_attestation_standard_base64(self):
        uid = USERS["bob"]
        ca = fido2util.AttestationCA()
        cred = fido2util.make_credential(self.options(uid), attestation="x5c", ca=ca,
                                         aaguid=fido2util.SECURITY_KEY_NFC, encoding="base64")
        self.assertIn("=", cred.body["publicKeyCredential"]["response"]["attestationObject"] +
                      cred.body["publicKeyCredential"]["response"]["clientDataJSON"] + "=")
        status, _, body = self.register(uid, cred)
        self.assertEqual(status, 201, body)
        self.assertEqual(body["attestationLevel"], "attested")
        self.assertEqual(body["attestationCertificates"],
                         [hashlib.sha1(cred.x5c[0]).hexdigest()])
        self.assertEqual(body["aaGuid"], "a4e9fc6d-4cbe-4758-b8ba-37598bb5bbaa")
        self.assertIn("Security Key", body["model"])

    def test_none_attestation_and_rs256_and_beta(self):
        uid = USERS["dave"]
        cred = fido2util.make_credential(self.options(uid, "beta"), attestation="none",
                                         aaguid=bytes(16))
        status, _, body = self.register(uid, cred, "beta")
        self.assertEqual(status, 201, body)
        self.assertEqual(body["attestationLevel"], "notAttested")
        self.assertEqual(body["aaGuid"], "00000000-0000-0000-0000-000000000000")
        self.assertIsNone(body["model"])
        cred = fido2util.make_credential(self.options(uid), alg=-257)
        self.assertEqual(self.register(uid, cred)[0], 201)

    def test_upn_and_null_extension_results(self):
        cred = fido2util.make_credential(self.options(USERS["dollar"]),
                                         client_extension_results=None)
        cred.body["publicKeyCredential"]["clientExtensionResults"] = None
        status, _, body = self.emu.post(
            f"/v1.0/users('$ops@{D}')/authentication/fido2Methods", cred.body, token=self.app)
        self.assertEqual(status, 201, body)

    def test_tampered_signature(self):
        cred = fido2util.make_credential(self.options(USERS["carol"]), tamper_signature=True)
        self.refused(USERS["carol"], cred, ["attestation", "signature"])
        ca = fido2util.AttestationCA()
        cred = fido2util.make_credential(self.options(USERS["carol"]), attestation="x5c", ca=ca,
                                         tamper_signature=True)
        self.refused(USERS["carol"], cred, ["attestation", "signature"])

    def test_wrong_rp_id(self):
        cred = fido2util.make_credential(self.options(USERS["carol"]),
                                         rp_id="login.microsoftonline.com")
        self.refused(USERS["carol"], cred, "rp id hash")

    def test_wrong_origin(self):
        for origin in ("https://login.microsoftonline.com", "https://evil.example",
                       "http://login.microsoft.com"):
            cred = fido2util.make_credential(self.options(USERS["carol"]), origin=origin)
            self.refused(USERS["carol"], cred, "origin")

    def test_allowed_origins_setting(self):
        try:
            self.settings(fido2AllowedOrigins=["https://login.microsoft.com",
                                               "https://login.microsoftonline.com"])
            cred = fido2util.make_credential(self.options(USERS["dave"]),
                                             origin="https://login.microsoftonline.com")
            self.assertEqual(self.register(USERS["dave"], cred)[0], 201)
        finally:
            self.settings(fido2AllowedOrigins=["https://login.microsoft.com"])

    def test_client_data_type_and_cross_origin(self):
        cred = fido2util.make_credential(self.options(USERS["carol"]),
                                         client_data={"type": "webauthn.get"})
        self.refused(USERS["carol"], cred, "webauthn.create")
        cred = fido2util.make_credential(self.options(USERS["carol"]),
                                         client_data={"crossOrigin": True})
        self.refused(USERS["carol"], cred, "crossOrigin")

    def test_challenge_not_issued_or_padded(self):
        cred = fido2util.make_credential(self.options(USERS["carol"]),
                                         challenge=fido2util.b64url(b"x" * 1500))
        self.refused(USERS["carol"], cred, "not issued")
        opts = self.options(USERS["carol"])
        padded = base64.b64encode(b64d(opts["publicKey"]["challenge"])).decode()
        if "=" not in padded:
            padded += "=="
        cred = fido2util.make_credential(opts, challenge=padded)
        self.refused(USERS["carol"], cred, "base64url")

    def test_another_users_challenge(self):
        cred = fido2util.make_credential(self.options(USERS["bob"]))
        self.refused(USERS["carol"], cred, "different user")

    def test_expired_challenge(self):
        opts = self.options(USERS["carol"])
        cred = fido2util.make_credential(opts)
        try:
            self.settings(clockOffsetSeconds=301)
            self.refused(USERS["carol"], cred, "expired")
        finally:
            self.settings(clockOffsetSeconds=0)
        # beta with a long timeout survives the same delay
        opts = self.options(USERS["carol"], "beta", "(challengeTimeoutInMinutes=10)")
        cred = fido2util.make_credential(opts)
        try:
            self.settings(clockOffsetSeconds=301)
            self.assertEqual(self.register(USERS["carol"], cred, "beta")[0], 201)
        finally:
            self.settings(clockOffsetSeconds=0)

    def test_missing_uv_up_at_flags(self):
        F = fido2util
        for flags, words in ((F.FLAG_UP | F.FLAG_AT | F.FLAG_ED, "user verified (UV)"),
                             (F.FLAG_UV | F.FLAG_AT | F.FLAG_ED, "user present (UP)")):
            cred = F.make_credential(self.options(USERS["carol"]), flags=flags)
            self.refused(USERS["carol"], cred, words)

    def test_credential_id_mismatch(self):
        cred = fido2util.make_credential(self.options(USERS["carol"]), body_id=b"another-id")
        self.refused(USERS["carol"], cred, "credential id")

    def test_unsupported_algorithm_and_format(self):
        cred = fido2util.make_credential(self.options(USERS["carol"]), alg=-8)
        self.refused(USERS["carol"], cred, "algorithm")
        cred = fido2util.make_credential(self.options(USERS["carol"]), fmt="fido-u2f")
        self.refused(USERS["carol"], cred, "format 'fido-u2f'")

    def test_attestation_object_must_be_webauthn_shaped(self):
        from fido2 import cbor
        cred = fido2util.make_credential(self.options(USERS["carol"]))
        ctap_style = cbor.encode({1: "packed", 2: cred.auth_data, 3: {}})   # integer keys
        cred.body["publicKeyCredential"]["response"]["attestationObject"] = \
            fido2util.b64url(ctap_style)
        self.refused(USERS["carol"], cred, "text keys")
        cred.body["publicKeyCredential"]["response"]["attestationObject"] = "not*base64"
        self.refused(USERS["carol"], cred, "attestationObject")

    def test_display_name(self):
        opts = self.options(USERS["carol"])
        for name in ("x" * 31, "", "   "):
            cred = fido2util.make_credential(opts, display_name=name)
            self.refused(USERS["carol"], cred, "displayName")
        cred = fido2util.make_credential(opts)
        del cred.body["displayName"]
        self.refused(USERS["carol"], cred, "missing a fido2AuthenticationMethod")
        cred = fido2util.make_credential(opts, display_name="x" * 30)
        self.assertEqual(self.register(USERS["carol"], cred)[0], 201)

    def test_odata_type_and_unknown_properties(self):
        opts = self.options(USERS["carol"])
        cred = fido2util.make_credential(opts)
        cred.body["@odata.type"] = "#microsoft.graph.fido2AuthenticationMethod"
        self.refused(USERS["carol"], cred, "@odata.type")
        cred = fido2util.make_credential(opts)
        cred.body["publicKeyCredential"]["response"]["@odata.type"] = \
            "#microsoft.graph.webauthnAuthenticatorAttestationResponse"
        self.refused(USERS["carol"], cred, "@odata.type")
        for where in ("top", "pkc", "resp"):
            cred = fido2util.make_credential(opts)
            target = {"top": cred.body, "pkc": cred.body["publicKeyCredential"],
                      "resp": cred.body["publicKeyCredential"]["response"]}[where]
            target["rawId"] = "abc"
            before = self.fido2_state(USERS["carol"])
            err = self.assertGraphError(self.register(USERS["carol"], cred), 400, "BadRequest")
            self.assertIn("'rawId' does not exist", err["message"])
            self.assertEqual(self.fido2_state(USERS["carol"]), before)
        cred = fido2util.make_credential(opts)
        cred.body["aaGuid"] = "cb69481e-8ff7-4039-93ec-0a2729a154a8"
        self.assertGraphError(self.register(USERS["carol"], cred), 400, "BadRequest")

    def test_duplicate_credential(self):
        uid = USERS["carol"]
        # carol's existing key (from the tenant file) ...
        cred = fido2util.make_credential(self.options(uid),
                                         credential_id=b"carol-existing-key-id")
        self.refused(uid, cred, "already registered")
        # ... and one registered here
        cid = b"\x01" * 32
        self.assertEqual(self.register(uid, fido2util.make_credential(
            self.options(uid), credential_id=cid))[0], 201)
        self.refused(uid, fido2util.make_credential(self.options(uid), credential_id=cid),
                     "already registered")

    def test_self_registration_is_405(self):
        tok = self.emu.token(emutest.DELEGATED_APP, user=f"admin@{D}")
        cred = fido2util.make_credential(self.options(USERS["admin"]))
        self.assertGraphError(self.emu.post("/v1.0/me/authentication/fido2Methods", cred.body,
                                            token=tok), 405, "methodNotAllowed")

    def test_authorization(self):
        uid = USERS["ada"]
        cred = fido2util.make_credential(self.options(uid))
        for tok in (self.emu.token(emutest.READER_APP),
                    self.emu.token(emutest.DELEGATED_APP, user=f"bob@{D}")):
            self.assertGraphError(self.register(uid, cred, token=tok), 403,
                                  "Authorization_RequestDenied")
        admin = self.emu.token(emutest.DELEGATED_APP, user=f"admin@{D}")
        cred = fido2util.make_credential(self.options(GINA))
        self.assertGraphError(self.register(GINA, cred, token=admin), 403,
                              "Authorization_RequestDenied")
        pat = self.emu.token(emutest.DELEGATED_APP, user=f"pat@{D}")
        self.assertEqual(self.register(GINA, cred, token=pat)[0], 201)
        cred = fido2util.make_credential(self.options(uid))
        self.assertEqual(self.register(uid, cred, token=admin)[0], 201)

    def test_delete(self):
        uid = USERS["guest"]
        path = f"/v1.0/users/gail_fabrikam.com%23EXT%23@{D}/authentication/fido2Methods"
        cred = fido2util.make_credential(self.options(uid))
        status, _, body = self.emu.post(path, cred.body, token=self.app)
        self.assertEqual(status, 201, body)
        reader = self.emu.token(emutest.READER_APP)
        self.assertGraphError(self.emu.delete(f"{path}/{body['id']}", token=reader), 403)
        self.assertEqual(self.emu.delete(f"{path}/{body['id']}", token=self.app)[0], 204)
        self.assertGraphError(self.emu.get(f"{path}/{body['id']}", token=self.app), 404,
                              "itemNotFound")
        self.assertGraphError(self.emu.delete(f"{path}/{body['id']}", token=self.app), 404)

    def test_list_takes_no_query_options(self):
        self.assertGraphError(self.emu.get(
            f"/v1.0/users/{USERS['carol']}/authentication/fido2Methods?$top=1", token=self.app),
            400)


class AttestationPolicyTest(Fido2Base):
    """isAttestationEnforced plus a block list."""
    TENANT = tenant({"isAttestationEnforced": True,
                     "keyRestrictions": {"isEnforced": True, "enforcementType": "block",
                                         "aaGuids": [BLOCKED.upper()]}})

    def test_self_and_none_refused_x5c_accepted(self):
        uid = USERS["ada"]
        self.refused(uid, fido2util.make_credential(self.options(uid)),
                     ["enforces attestation", "self attestation"])
        self.refused(uid, fido2util.make_credential(self.options(uid), attestation="none"),
                     ["enforces attestation", "none"])
        cred = fido2util.make_credential(self.options(uid), attestation="x5c")
        status, _, body = self.register(uid, cred)
        self.assertEqual(status, 201, body)
        self.assertEqual(body["attestationLevel"], "attested")

    def test_trusted_roots(self):
        uid = USERS["bob"]
        trusted, other = fido2util.AttestationCA(), fido2util.AttestationCA("other root")
        try:
            self.settings(fido2AttestationRoots=[trusted.pem])
            self.refused(uid, fido2util.make_credential(self.options(uid), attestation="x5c",
                                                        ca=other), "untrusted")
            cred = fido2util.make_credential(self.options(uid), attestation="x5c", ca=trusted)
            self.assertEqual(self.register(uid, cred)[0], 201)
        finally:
            self.settings(fido2AttestationRoots=[])

    def test_blocked_aaguid(self):
        cred = fido2util.make_credential(self.options(USERS["dave"]), attestation="x5c",
                                         aaguid=bytes.fromhex(BLOCKED.replace("-", "")))
        self.refused(USERS["dave"], cred, ["blocked", BLOCKED])


class AllowListPolicyTest(Fido2Base):
    TENANT = tenant({"keyRestrictions": {"isEnforced": True, "enforcementType": "allow",
                                         "aaGuids": ["cb69481e-8ff7-4039-93ec-0a2729a154a8"]}})

    def test_allow_list(self):
        uid = USERS["ada"]
        cred = fido2util.make_credential(self.options(uid), aaguid=fido2util.SECURITY_KEY_NFC)
        self.refused(uid, cred, ["not in", "allowed"])
        cred = fido2util.make_credential(self.options(uid), aaguid=fido2util.YUBIKEY_5_NFC)
        self.assertEqual(self.register(uid, cred)[0], 201)


class SelfServiceOffTest(Fido2Base):
    TENANT = tenant({"isSelfServiceRegistrationAllowed": False})

    def test_provisioning_needs_self_service(self):
        err = self.assertGraphError(self.emu.get(f"/v1.0/users/{USERS['ada']}{OPTS}",
                                                 token=self.app), 400, "badRequest")
        self.assertIn("isSelfServiceRegistrationAllowed", err["message"])


class DisabledPolicyTest(Fido2Base):
    TENANT = tenant({"state": "disabled"})

    def test_disabled(self):
        err = self.assertGraphError(self.emu.get(f"/v1.0/users/{USERS['ada']}{OPTS}",
                                                 token=self.app), 400, "badRequest")
        self.assertIn("disabled", err["message"])


if __name__ == "__main__":
    emutest.main()
