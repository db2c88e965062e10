#!/usr/bin/python3
"""The identity platform: token endpoint (client secret, Basic, certificate assertions, device
code, refresh tokens), device authorization, OIDC discovery and JWKS, id_tokens, access-token
validation and revocation, and request-log hygiene."""

import base64
import datetime
import hashlib
import json
import os
import shutil
import tempfile
import time
import uuid
from urllib.parse import quote_plus, urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509.oid import NameOID

import emutest

T = emutest.TENANT_ID
DOMAIN = "contoso.onmicrosoft.com"
CERT_APP = "6c1d2e3f-4a5b-4c6d-8e7f-9a0b1c2d3e4f"
EXPIRED_APP = "7d2e3f4a-5b6c-4d7e-8f9a-0b1c2d3e4f5a"
MULTI_APP = "8e3f4a5b-6c7d-4e8f-9a0b-1c2d3e4f5a6b"
REVOKE_APP = "9f4a5b6c-7d8e-4f9a-8b1c-2d3e4f5a6b7c"
ODD_SECRET_APP = "a05b6c7d-8e9f-4a0b-9c2d-3e4f5a6b7c8d"
ODD_SECRET = "p+s/w=rd:x%y&z"
DORA = "3b1c2d4e-0000-4000-8000-0000000000d0"       # disabled
POLICY_READER = "3b1c2d4e-0000-4000-8000-0000000000e0"
GRAPH_DEFAULT = "https://graph.microsoft.com/.default"
DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


def b64url(data):
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def b64url_decode(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def jwt_parts(token):
    h, p, s = token.split(".")
    return json.loads(b64url_decode(h)), json.loads(b64url_decode(p)), b64url_decode(s)


def make_cert(key, cn, days=30, start_days_ago=1):
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    now = datetime.datetime.utcnow()
    return (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=start_days_ago))
            .not_valid_after(now + datetime.timedelta(days=days))
            .sign(key, hashes.SHA256()))


def pem(cert):
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def der(cert):
    return cert.public_bytes(serialization.Encoding.DER)


RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
RSA_CERT = make_cert(RSA_KEY, "keydesk kiosk")
EC_KEY = ec.generate_private_key(ec.SECP256R1())
EC_CERT = make_cert(EC_KEY, "keydesk kiosk ec")
OTHER_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
OTHER_CERT = make_cert(OTHER_KEY, "not registered")
OLD_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
OLD_CERT = make_cert(OLD_KEY, "expired", days=-1, start_days_ago=30)
CERT_DIR = tempfile.mkdtemp(prefix="test-auth-")
EC_PATH = os.path.join(CERT_DIR, "kiosk-ec.pem")
with open(EC_PATH, "w") as _f:
    _f.write(pem(EC_CERT))


def tenant():
    t = emutest.tenant()
    t["settings"].update({"deviceCodeInterval": 1, "deviceCodeSlowDownSeconds": 1})
    for app in t["apps"]:
        if app["appId"] == emutest.DELEGATED_APP:
            app["delegatedScopes"] = app["delegatedScopes"] + ["email"]
    t["apps"] += [
        {"appId": CERT_APP, "displayName": "keydesk (certificate)",
         "certificates": [{"pem": pem(RSA_CERT)}, {"path": EC_PATH}, {"pem": pem(OLD_CERT)}],
         "applicationPermissions": ["User.Read.All", "Policy.Read.AuthenticationMethod"]},
        {"appId": EXPIRED_APP, "displayName": "old", "applicationPermissions": ["User.Read.All"],
         "secrets": [{"value": "expired-secret", "endDateTime": "2020-01-01T00:00:00Z"}]},
        {"appId": MULTI_APP, "displayName": "multi-tenant operator", "publicClient": True,
         "signInAudience": "AzureADMultipleOrgs",
         "delegatedScopes": list(emutest.DELEGATED_SCOPES)},
        {"appId": REVOKE_APP, "displayName": "revoked later", "secrets": [{"value": "rv"}],
         "applicationPermissions": ["User.Read.All"]},
        {"appId": ODD_SECRET_APP, "displayName": "odd secret", "secrets": [{"value": ODD_SECRET}],
         "applicationPermissions": ["User.Read.All"]},
    ]
    t["users"] += [
        {"id": DORA, "userPrincipalName": f"dora@{DOMAIN}", "displayName": "Dora Disabled",
         "accountEnabled": False, "methods": [{"type": "password"}]},
        {"id": POLICY_READER, "userPrincipalName": f"pat@{DOMAIN}", "displayName": "Pat Policy",
         "mail": f"pat@{DOMAIN}", "directoryRoles": ["Authentication Policy Administrator"],
         "methods": [{"type": "password"}]},
    ]
    return t


class IdentityTestCase(emutest.EmulatorTestCase):
    TENANT = tenant()

    # --- helpers ---------------------------------------------------------------------------

    def assertion(self, alg="PS256", key=RSA_KEY, cert=RSA_CERT, header=None, claims=None,
                  drop=(), salt=32):
        now = int(time.time())
        h = {"alg": alg, "typ": "JWT"}
        if alg == "RS256":
            h["x5t"] = b64url(hashlib.sha1(der(cert)).digest())
        else:
            h["x5t#S256"] = b64url(hashlib.sha256(der(cert)).digest())
        h.update(header or {})
        c = {"aud": f"https://login.microsoftonline.com/{T}/oauth2/v2.0/token",
             "iss": CERT_APP, "sub": CERT_APP, "jti": str(uuid.uuid4()), "nbf": now,
             "iat": now, "exp": now + 600}
        c.update(claims or {})
        for k in drop:
            h.pop(k, None)
            c.pop(k, None)
        h = {k: v for k, v in h.items() if v is not None}
        signing_input = (b64url(json.dumps(h).encode()) + "." + b64url(json.dumps(c).encode()))
        data = signing_input.encode()
        if alg == "PS256":
            sig = key.sign(data, padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=salt),
                           hashes.SHA256())
        elif alg == "RS256":
            sig = key.sign(data, padding.PKCS1v15(), hashes.SHA256())
        elif alg == "ES256":
            r, s = decode_dss_signature(key.sign(data, ec.ECDSA(hashes.SHA256())))
            sig = r.to_bytes(32, "big") + s.to_bytes(32, "big")
        else:
            sig = bytes(32)
        return signing_input + "." + b64url(sig)

    def assertion_req(self, assertion, tenant=T, client_id=CERT_APP, headers=None):
        return self.token_req({"grant_type": "client_credentials", "client_id": client_id,
                               "scope": GRAPH_DEFAULT, "client_assertion_type": ASSERTION_TYPE,
                               "client_assertion": assertion}, tenant=tenant, headers=headers)

    def token_req(self, form, tenant=T, headers=None):
        return self.emu.post(f"/{tenant}/oauth2/v2.0/token", form=form, headers=headers)

    def devicecode(self, client_id=emutest.DELEGATED_APP, scope="openid profile offline_access "
                   "User.Read.All", tenant=T):
        return self.emu.post(f"/{tenant}/oauth2/v2.0/devicecode",
                             form={"client_id": client_id, "scope": scope})

    def poll(self, device_code, client_id=emutest.DELEGATED_APP, tenant=T):
        return self.token_req({"grant_type": DEVICE_GRANT, "client_id": client_id,
                               "device_code": device_code}, tenant=tenant)

    def device_flow(self, user=f"admin@{DOMAIN}", scope="openid profile offline_access "
                    "User.Read.All", client_id=emutest.DELEGATED_APP):
        status, _, dc = self.devicecode(client_id, scope)
        self.assertEqual(status, 200, dc)
        status, _, body = self.emu.post("/_emulator/devicecode/approve",
                                        {"user_code": dc["user_code"], "user": user})
        self.assertEqual(status, 200, body)
        status, headers, tok = self.poll(dc["device_code"], client_id)
        self.assertEqual(status, 200, tok)
        return tok

    def check(self, token):
        return self.emu.post("/_emulator/tokens/check", token=token)

    def assertIdentityError(self, result, status, error, code):
        got, headers, body = result
        self.assertEqual(got, status, body)
        self.assertIsInstance(body, dict, body)
        self.assertEqual(body.get("error"), error, body)
        self.assertEqual(body.get("error_codes"), [code], body)
        desc = body["error_description"]
        self.assertTrue(desc.startswith(f"AADSTS{code}: "), desc)
        self.assertIn(f"\r\nTrace ID: {body['trace_id']}\r\nCorrelation ID: "
                      f"{body['correlation_id']}\r\nTimestamp: {body['timestamp']}", desc)
        self.assertRegex(body["timestamp"], r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ$")
        uuid.UUID(body["trace_id"])
        self.assertEqual(body["error_uri"], f"https://login.microsoftonline.com/error?code={code}")
        self.assertTrue(headers["content-type"].startswith("application/json"))
        return body


# --- client credentials: secret and Basic -----------------------------------------------------

class ClientSecretTest(IdentityTestCase):
    def secret_form(self, **kw):
        form = {"grant_type": "client_credentials", "client_id": emutest.KIOSK_APP,
                "client_secret": emutest.KIOSK_SECRET, "scope": GRAPH_DEFAULT}
        form.update(kw)
        return {k: v for k, v in form.items() if v is not None}

    def test_secret_success_shape(self):
        status, headers, body = self.token_req(self.secret_form())
        self.assertEqual(status, 200, body)
        self.assertEqual(set(body), {"token_type", "expires_in", "ext_expires_in",
                                     "access_token"})
        self.assertEqual(body["token_type"], "Bearer")
        self.assertEqual(body["expires_in"], 3600)
        self.assertEqual(body["ext_expires_in"], 3600)
        self.assertIn("no-store", headers["cache-control"])
        self.assertEqual(headers["pragma"], "no-cache")
        status, _, who = self.check(body["access_token"])
        self.assertEqual(status, 200, who)
        self.assertEqual(who["kind"], "app")
        self.assertEqual(who["appId"], emutest.KIOSK_APP)
        self.assertEqual(set(who["scopes"]), set(emutest.KIOSK_PERMISSIONS))

    def test_tenant_by_domain_and_graph_app_id_scope(self):
        status, _, body = self.token_req(
            self.secret_form(scope="00000003-0000-0000-c000-000000000000/.default"),
            tenant=DOMAIN)
        self.assertEqual(status, 200, body)

    def test_basic_auth(self):
        cred = base64.b64encode(f"{quote_plus(ODD_SECRET_APP)}:{quote_plus(ODD_SECRET)}"
                                .encode()).decode()
        form = {"grant_type": "client_credentials", "scope": GRAPH_DEFAULT}
        status, _, body = self.token_req(form, headers={"Authorization": f"Basic {cred}"})
        self.assertEqual(status, 200, body)
        self.assertNotIn("refresh_token", body)
        # client_id may also be in the body, if it is the same
        status, _, body = self.token_req(dict(form, client_id=ODD_SECRET_APP),
                                         headers={"Authorization": f"Basic {cred}"})
        self.assertEqual(status, 200, body)
        # RFC 6749 §2.3.1: the secret is form-encoded before base64; '+' unencoded is a space
        raw = base64.b64encode(f"{ODD_SECRET_APP}:{ODD_SECRET}".encode()).decode()
        self.assertIdentityError(self.token_req(form, headers={"Authorization": f"Basic {raw}"}),
                                 401, "invalid_client", 7000215)

    def test_two_client_authentication_methods(self):
        cred = base64.b64encode(f"{emutest.KIOSK_APP}:{quote_plus(emutest.KIOSK_SECRET)}"
                                .encode()).decode()
        self.assertIdentityError(
            self.token_req(self.secret_form(), headers={"Authorization": f"Basic {cred}"}),
            400, "invalid_request", 9002313)

    def test_basic_client_id_mismatch(self):
        cred = base64.b64encode(f"{emutest.KIOSK_APP}:{quote_plus(emutest.KIOSK_SECRET)}"
                                .encode()).decode()
        self.assertIdentityError(
            self.token_req(self.secret_form(client_id=emutest.READER_APP, client_secret=None),
                           headers={"Authorization": f"Basic {cred}"}),
            400, "invalid_request", 9002313)

    def test_wrong_secret(self):
        body = self.assertIdentityError(self.token_req(self.secret_form(client_secret="nope")),
                                        401, "invalid_client", 7000215)
        self.assertNotIn("nope", body["error_description"])

    def test_expired_secret(self):
        self.assertIdentityError(
            self.token_req(self.secret_form(client_id=EXPIRED_APP,
                                            client_secret="expired-secret")),
            401, "invalid_client", 7000222)

    def test_unknown_client(self):
        self.assertIdentityError(
            self.token_req(self.secret_form(client_id=str(uuid.uuid4()))),
            400, "unauthorized_client", 700016)

    def test_missing_client_id_and_credentials(self):
        self.assertIdentityError(self.token_req(self.secret_form(client_id=None)),
                                 400, "invalid_request", 900144)
        self.assertIdentityError(self.token_req(self.secret_form(client_secret=None)),
                                 401, "invalid_client", 7000218)

    def test_scopes(self):
        self.assertIdentityError(self.token_req(self.secret_form(scope=None)),
                                 400, "invalid_request", 900144)
        for bad in ("https://graph.microsoft.com/User.Read.All", "User.Read.All",
                    f"{GRAPH_DEFAULT} openid"):
            self.assertIdentityError(self.token_req(self.secret_form(scope=bad)),
                                     400, "invalid_scope", 1002012)
        self.assertIdentityError(
            self.token_req(self.secret_form(scope=f"{GRAPH_DEFAULT} "
                                                  "https://management.azure.com/.default")),
            400, "invalid_scope", 70011)
        self.assertIdentityError(
            self.token_req(self.secret_form(scope="https://management.azure.com/.default")),
            400, "invalid_resource", 500011)

    def test_form_encoding_required(self):
        body = json.dumps(self.secret_form()).encode()
        self.assertIdentityError(
            self.emu.post(f"/{T}/oauth2/v2.0/token", raw=body,
                          headers={"Content-Type": "application/json"}),
            400, "invalid_request", 900144)

    def test_grant_type(self):
        self.assertIdentityError(self.token_req(self.secret_form(grant_type=None)),
                                 400, "invalid_request", 900144)
        self.assertIdentityError(self.token_req(self.secret_form(grant_type="password")),
                                 400, "unsupported_grant_type", 70003)

    def test_tenant_segment(self):
        self.assertIdentityError(self.token_req(self.secret_form(), tenant="fabrikam.com"),
                                 400, "invalid_request", 90002)
        self.assertIdentityError(self.token_req(self.secret_form(), tenant=str(uuid.uuid4())),
                                 400, "invalid_request", 90002)
        for multi in ("common", "organizations"):
            self.assertIdentityError(self.token_req(self.secret_form(), tenant=multi),
                                     400, "invalid_request", 9001023)

    def test_get_is_refused(self):
        self.assertIdentityError(self.emu.get(f"/{T}/oauth2/v2.0/token"),
                                 400, "invalid_request", 900561)

    def test_repeated_parameter(self):
        raw = (f"grant_type=client_credentials&client_id={emutest.KIOSK_APP}&scope="
               f"{quote_plus(GRAPH_DEFAULT)}&scope={quote_plus(GRAPH_DEFAULT)}&client_secret="
               f"{quote_plus(emutest.KIOSK_SECRET)}").encode()
        self.assertIdentityError(
            self.emu.post(f"/{T}/oauth2/v2.0/token", raw=raw,
                          headers={"Content-Type": "application/x-www-form-urlencoded"}),
            400, "invalid_request", 9002313)

    def test_secret_in_query_is_refused(self):
        path = f"/{T}/oauth2/v2.0/token?client_secret={quote_plus(emutest.KIOSK_SECRET)}"
        self.assertIdentityError(self.emu.post(path, form=self.secret_form(client_secret=None)),
                                 400, "invalid_request", 9002313)
        logged = [e["path"] for e in self.emu.log() if "oauth2" in (e.get("path") or "")]
        self.assertTrue(any("client_secret=<" in p for p in logged), logged)
        self.assertFalse(any(emutest.KIOSK_SECRET in p or quote_plus(emutest.KIOSK_SECRET) in p
                             for p in logged))

    def test_correlation_id_is_client_request_id(self):
        cid = str(uuid.uuid4())
        body = self.assertIdentityError(
            self.token_req(self.secret_form(client_secret="x"),
                           headers={"client-request-id": cid}),
            401, "invalid_client", 7000215)
        self.assertEqual(body["correlation_id"], cid)


# --- client credentials: certificate assertions -------------------------------------------------

class AssertionTest(IdentityTestCase):
    def assertOk(self, result):
        status, _, body = result
        self.assertEqual(status, 200, body)
        self.assertEqual(set(body), {"token_type", "expires_in", "ext_expires_in",
                                     "access_token"})
        status, _, who = self.check(body["access_token"])
        self.assertEqual((status, who["kind"], who["appId"]), (200, "app", CERT_APP))
        return body

    def test_ps256_x5t_s256(self):
        self.assertOk(self.assertion_req(self.assertion("PS256")))

    def test_rs256_x5t(self):
        self.assertOk(self.assertion_req(self.assertion("RS256")))

    def test_es256_certificate_from_path(self):
        self.assertOk(self.assertion_req(self.assertion("ES256", EC_KEY, EC_CERT)))

    def test_both_thumbprints(self):
        x5t = b64url(hashlib.sha1(der(RSA_CERT)).digest())
        self.assertOk(self.assertion_req(self.assertion("PS256", header={"x5t": x5t})))
        other = b64url(hashlib.sha1(der(OTHER_CERT)).digest())
        self.assertIdentityError(self.assertion_req(self.assertion("PS256",
                                                                   header={"x5t": other})),
                                 401, "invalid_client", 700027)

    def test_algorithm_and_thumbprint_must_pair(self):
        x5t = b64url(hashlib.sha1(der(RSA_CERT)).digest())
        x5t256 = b64url(hashlib.sha256(der(RSA_CERT)).digest())
        self.assertIdentityError(
            self.assertion_req(self.assertion("PS256", header={"x5t#S256": None, "x5t": x5t})),
            401, "invalid_client", 700027)
        self.assertIdentityError(
            self.assertion_req(self.assertion("RS256", header={"x5t": None, "x5t#S256": x5t256})),
            401, "invalid_client", 700027)

    def test_unsupported_algorithms(self):
        for alg in ("none", "HS256"):
            self.assertIdentityError(self.assertion_req(self.assertion(alg)),
                                     401, "invalid_client", 700027)

    def test_jti_replay(self):
        a = self.assertion()
        self.assertOk(self.assertion_req(a))
        body = self.assertIdentityError(self.assertion_req(a), 401, "invalid_client", 50013)
        self.assertIn("jti", body["error_description"])

    def test_missing_claims(self):
        for claim in ("jti", "exp", "nbf", "aud"):
            self.assertIdentityError(self.assertion_req(self.assertion(drop=(claim,))),
                                     400, "invalid_request", 90014)

    def test_wrong_aud(self):
        for aud in (f"https://login.microsoftonline.com/{T}/oauth2/token",        # v1
                    "https://login.microsoftonline.com/common/oauth2/v2.0/token",
                    f"https://login.example.com/{T}/oauth2/v2.0/token",
                    f"https://login.microsoftonline.com/{uuid.uuid4()}/oauth2/v2.0/token"):
            self.assertIdentityError(self.assertion_req(self.assertion(claims={"aud": aud})),
                                     401, "invalid_client", 700023)

    def test_aud_variants_accepted(self):
        host = f"{self.emu.host}:{self.emu.port}"
        for aud in (f"https://{host}/{T}/oauth2/v2.0/token",
                    f"https://login.microsoftonline.com/{DOMAIN}/oauth2/v2.0/token"):
            self.assertOk(self.assertion_req(self.assertion(claims={"aud": aud})))
        # A client reaching the emulator under the production name (CURLOPT_CONNECT_TO)
        self.assertOk(self.assertion_req(self.assertion(), tenant=DOMAIN,
                                         headers={"Host": "login.microsoftonline.com"}))

    def test_wrong_iss(self):
        other = str(uuid.uuid4())
        self.assertIdentityError(
            self.assertion_req(self.assertion(claims={"iss": other, "sub": other})),
            401, "invalid_client", 700021)
        self.assertIdentityError(self.assertion_req(self.assertion(claims={"sub": other})),
                                 401, "invalid_client", 50048)

    def test_unknown_thumbprint(self):
        body = self.assertIdentityError(
            self.assertion_req(self.assertion(key=OTHER_KEY, cert=OTHER_CERT)),
            401, "invalid_client", 700027)
        self.assertIn("The key was not found", body["error_description"])
        self.assertIn(OTHER_CERT.fingerprint(hashes.SHA256()).hex().upper(),
                      body["error_description"])

    def test_expired_certificate(self):
        self.assertIdentityError(self.assertion_req(self.assertion(key=OLD_KEY, cert=OLD_CERT)),
                                 401, "invalid_client", 700027)

    def test_tampered_signature(self):
        a = self.assertion()
        head, payload, sig = a.split(".")
        raw = bytearray(b64url_decode(sig))
        raw[10] ^= 1
        body = self.assertIdentityError(
            self.assertion_req(f"{head}.{payload}.{b64url(bytes(raw))}"),
            401, "invalid_client", 700027)
        self.assertIn("did not match", body["error_description"])
        claims = json.loads(b64url_decode(payload))
        claims["exp"] += 3600
        forged = f"{head}.{b64url(json.dumps(claims).encode())}.{sig}"
        self.assertIdentityError(self.assertion_req(forged), 401, "invalid_client", 700027)
        # signed by another key while naming the registered certificate
        self.assertIdentityError(self.assertion_req(self.assertion(key=OTHER_KEY)),
                                 401, "invalid_client", 700027)

    def test_pss_salt_length_is_digest_length(self):
        self.assertIdentityError(
            self.assertion_req(self.assertion(salt=padding.PSS.MAX_LENGTH)),
            401, "invalid_client", 700027)

    def test_time_range(self):
        now = int(time.time())
        self.assertIdentityError(
            self.assertion_req(self.assertion(claims={"nbf": now - 1200, "exp": now - 600})),
            401, "invalid_client", 700024)
        self.assertIdentityError(
            self.assertion_req(self.assertion(claims={"nbf": now + 600, "exp": now + 1200})),
            401, "invalid_client", 700024)

    def test_malformed(self):
        for bad in ("not-a-jwt", "a.b", "e30.e30.", "eyJhbGciOiJQUzI1NiJ9=.e30.AAAA"):
            self.assertIdentityError(self.assertion_req(bad), 400, "invalid_request", 50027)

    def test_assertion_type(self):
        form = {"grant_type": "client_credentials", "client_id": CERT_APP,
                "scope": GRAPH_DEFAULT, "client_assertion": self.assertion(),
                "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:saml2-bearer"}
        self.assertIdentityError(self.token_req(form), 400, "invalid_request", 9002313)
        del form["client_assertion_type"]
        self.assertIdentityError(self.token_req(form), 400, "invalid_request", 900144)


# --- device code, refresh tokens, id_token, discovery --------------------------------------------

class DeviceCodeTest(IdentityTestCase):
    def test_devicecode_response_shape(self):
        status, headers, dc = self.devicecode()
        self.assertEqual(status, 200, dc)
        self.assertEqual(set(dc), {"user_code", "device_code", "verification_uri", "expires_in",
                                   "interval", "message"})
        self.assertRegex(dc["user_code"], r"^[A-HJKMNP-Z2-9]{9}$")
        self.assertGreater(len(dc["device_code"]), 64)
        self.assertEqual(dc["verification_uri"], "https://microsoft.com/devicelogin")
        self.assertEqual((dc["expires_in"], dc["interval"]), (900, 1))
        self.assertEqual(dc["message"], "To sign in, use a web browser to open the page "
                                        "https://microsoft.com/devicelogin and enter the code "
                                        f"{dc['user_code']} to authenticate.")
        self.assertIn("no-store", headers["cache-control"])

    def test_devicecode_errors(self):
        self.assertIdentityError(self.devicecode(emutest.KIOSK_APP), 400, "invalid_client",
                                 7000218)
        self.assertIdentityError(self.devicecode(str(uuid.uuid4())), 400,
                                 "unauthorized_client", 700016)
        body = self.assertIdentityError(self.devicecode(scope="openid Directory.ReadWrite.All"),
                                        400, "invalid_grant", 65001)
        self.assertEqual(body["suberror"], "consent_required")
        self.assertIdentityError(self.devicecode(scope=""), 400, "invalid_request", 900144)
        self.assertIdentityError(
            self.devicecode(scope="https://management.azure.com/user_impersonation"), 400,
            "invalid_resource", 500011)
        self.assertIdentityError(self.devicecode(scope=f"{GRAPH_DEFAULT} User.Read.All"),
                                 400, "invalid_scope", 70011)
        self.assertIdentityError(self.devicecode(tenant="nowhere.example"), 400,
                                 "invalid_request", 90002)
        status, _, _ = self.emu.post(f"/{T}/oauth2/v2.0/devicecode",
                                     form={"client_id": emutest.DELEGATED_APP,
                                           "scope": "openid", "client_secret": "x"})
        self.assertEqual(status, 401)
        self.assertIdentityError(self.emu.get(f"/{T}/oauth2/v2.0/devicecode"),
                                 400, "invalid_request", 900561)

    def test_multi_tenant_endpoints(self):
        # Single-tenant apps (Entra's default) can't use /organizations or /common.
        for seg in ("organizations", "common"):
            self.assertIdentityError(self.devicecode(tenant=seg), 400, "invalid_request", 50194)
        status, _, dc = self.devicecode(MULTI_APP, "openid profile", tenant="organizations")
        self.assertEqual(status, 200, dc)
        self.emu.post("/_emulator/devicecode/approve",
                      {"user_code": dc["user_code"], "user": f"bob@{DOMAIN}"})
        status, _, tok = self.poll(dc["device_code"], MULTI_APP, tenant="organizations")
        self.assertEqual(status, 200, tok)
        self.assertIdentityError(self.devicecode(tenant="consumers"), 400, "invalid_request",
                                 9002332)

    def test_end_to_end(self):
        scope = ("openid profile offline_access https://graph.microsoft.com/User.Read.All "
                 "policy.read.authenticationmethod")
        status, _, dc = self.devicecode(scope=scope)
        self.assertEqual(status, 200, dc)
        self.assertIdentityError(self.poll(dc["device_code"]), 400, "authorization_pending",
                                 70016)
        self.assertIdentityError(self.poll(dc["device_code"]), 400, "slow_down", 70016)
        # the code is listed for the demo / the test, without the device_code secret
        status, _, listed = self.emu.get("/_emulator/devicecodes")
        mine = [c for c in listed["value"] if c["user_code"] == dc["user_code"]]
        self.assertEqual(len(mine), 1, listed)
        self.assertNotIn(dc["device_code"], json.dumps(listed))
        self.assertEqual(mine[0]["status"], "pending")
        # slow_down added a second to the interval (deviceCodeSlowDownSeconds): 1 s is too soon
        time.sleep(1.1)
        self.assertIdentityError(self.poll(dc["device_code"]), 400, "slow_down", 70016)
        time.sleep(3.1)                                   # interval now 3 s
        self.assertIdentityError(self.poll(dc["device_code"]), 400, "authorization_pending",
                                 70016)
        status, _, ok = self.emu.post("/_emulator/devicecode/approve",
                                      {"user_code": dc["user_code"].lower(),
                                       "user": f"pat@{DOMAIN}"})
        self.assertEqual(status, 200, ok)
        self.assertEqual(ok["userId"], POLICY_READER)
        time.sleep(3.1)
        status, headers, tok = self.poll(dc["device_code"])
        self.assertEqual(status, 200, tok)
        self.assertIn("no-store", headers["cache-control"])
        self.assertEqual(set(tok), {"token_type", "scope", "expires_in", "ext_expires_in",
                                    "access_token", "refresh_token", "id_token"})
        self.assertEqual(tok["token_type"], "Bearer")
        self.assertEqual(tok["scope"].split(), ["User.Read.All",
                                                "Policy.Read.AuthenticationMethod",
                                                "openid", "profile"])
        # the access token: delegated, for Pat, with the granted Graph scopes only
        status, _, who = self.check(tok["access_token"])
        self.assertEqual(status, 200, who)
        self.assertEqual((who["kind"], who["userId"], who["appId"]),
                         ("delegated", POLICY_READER, emutest.DELEGATED_APP))
        self.assertEqual(set(who["scopes"]), {"User.Read.All",
                                              "Policy.Read.AuthenticationMethod"})
        self.assertEqual(who["roles"], ["Authentication Policy Administrator"])
        # ... and Graph takes it (and refuses a broken one)
        path = "/v1.0/policies/authenticationMethodsPolicy"
        status, _, body = self.emu.get(path, token=tok["access_token"])
        if status == 400 and "Resource not found" in json.dumps(body):
            self.skipTest("no Graph route to call yet")
        self.assertEqual(status, 200, body)
        self.assertGraphError(self.emu.get(path, token=tok["access_token"][:-4] + "AAAA"),
                              401, "InvalidAuthenticationToken")
        # the id_token, verified against the published JWKS
        claims = self.verify_id_token(tok["id_token"])
        self.assertEqual(claims["oid"], POLICY_READER)
        self.assertEqual(claims["preferred_username"], f"pat@{DOMAIN}")
        self.assertEqual(claims["name"], "Pat Policy")
        self.assertNotIn("email", claims)                   # not requested
        # the device code is single use
        self.assertIdentityError(self.poll(dc["device_code"]), 400, "invalid_grant", 70000)
        status, _, listed = self.emu.get("/_emulator/devicecodes")
        self.assertFalse([c for c in listed["value"] if c["user_code"] == dc["user_code"]])

    def verify_id_token(self, id_token, client_id=emutest.DELEGATED_APP):
        status, _, conf = self.emu.get(f"/{T}/v2.0/.well-known/openid-configuration")
        self.assertEqual(status, 200, conf)
        status, _, jwks = self.emu.get(urlsplit(conf["jwks_uri"]).path)
        self.assertEqual(status, 200, jwks)
        header, claims, sig = jwt_parts(id_token)
        self.assertEqual(header["alg"], "RS256")
        keys = [k for k in jwks["keys"] if k["kid"] == header["kid"]]
        self.assertEqual(len(keys), 1, (header, jwks))
        k = keys[0]
        n = int.from_bytes(b64url_decode(k["n"]), "big")
        e = int.from_bytes(b64url_decode(k["e"]), "big")
        pub = rsa.RSAPublicNumbers(e, n).public_key()
        signing_input = id_token.rsplit(".", 1)[0].encode()
        pub.verify(sig, signing_input, padding.PKCS1v15(), hashes.SHA256())
        cert_der = base64.b64decode(k["x5c"][0])
        cert = x509.load_der_x509_certificate(cert_der)
        self.assertEqual(cert.public_key().public_numbers().n, n)
        self.assertEqual(k["x5t"], b64url(hashlib.sha1(cert_der).digest()))
        self.assertEqual(k["kid"], k["x5t"])
        self.assertEqual((k["kty"], k["use"]), ("RSA", "sig"))
        self.assertEqual(claims["iss"], conf["issuer"])
        self.assertEqual(claims["iss"], f"https://login.microsoftonline.com/{T}/v2.0")
        self.assertEqual(claims["aud"], client_id)
        self.assertEqual(claims["tid"], T)
        self.assertEqual(claims["ver"], "2.0")
        self.assertEqual(claims["exp"] - claims["iat"], 3600)
        self.assertLessEqual(claims["nbf"], time.time() + 1)
        self.assertTrue(claims["uti"])
        self.assertRegex(claims["sub"], r"^[A-Za-z0-9_-]{43}$")
        return claims

    def test_access_token_kid_is_in_jwks(self):
        token = self.emu.token()
        header, _, _ = jwt_parts(token)
        status, _, jwks = self.emu.get(f"/{T}/discovery/v2.0/keys")
        self.assertIn(header["kid"], [k["kid"] for k in jwks["keys"]])

    def test_identity_proofing_scope(self):
        tok = self.device_flow(user=f"ada@{DOMAIN}", scope="openid profile email")
        self.assertEqual(set(tok), {"token_type", "scope", "expires_in", "ext_expires_in",
                                    "access_token", "id_token"})       # no offline_access
        self.assertEqual(tok["scope"], "openid profile email")
        claims = self.verify_id_token(tok["id_token"])
        self.assertEqual(claims["oid"], emutest.USERS["ada"])
        self.assertEqual(claims["email"], f"ada@{DOMAIN}")
        status, _, who = self.check(tok["access_token"])
        self.assertEqual((status, who["scopes"]), (200, []))
        # sub is pairwise: stable for the user and app, different for another app
        again = self.device_flow(user=f"ada@{DOMAIN}", scope="openid")
        self.assertNotIn("preferred_username", jwt_parts(again["id_token"])[1])   # no profile
        self.assertEqual(jwt_parts(again["id_token"])[1]["sub"], claims["sub"])
        other = self.device_flow(user=f"ada@{DOMAIN}", scope="openid", client_id=MULTI_APP)
        self.assertNotEqual(jwt_parts(other["id_token"])[1]["sub"], claims["sub"])

    def test_decline(self):
        status, _, dc = self.devicecode()
        status, _, body = self.emu.post("/_emulator/devicecode/decline",
                                        {"user_code": dc["user_code"]})
        self.assertEqual(status, 200, body)
        self.assertIdentityError(self.poll(dc["device_code"]), 400, "authorization_declined",
                                 65004)
        self.assertGraphError(self.emu.post("/_emulator/devicecode/approve",
                                            {"user_code": dc["user_code"],
                                             "user": f"admin@{DOMAIN}"}), 400)

    def test_expiry(self):
        self.emu.patch("/_emulator/settings", {"deviceCodeExpiresIn": 1})
        try:
            status, _, dc = self.devicecode()
        finally:
            self.emu.patch("/_emulator/settings", {"deviceCodeExpiresIn": 900})
        self.assertEqual(dc["expires_in"], 1)
        time.sleep(1.2)
        self.assertIdentityError(self.poll(dc["device_code"]), 400, "expired_token", 70020)
        err = self.assertGraphError(self.emu.post("/_emulator/devicecode/approve",
                                                  {"user_code": dc["user_code"],
                                                   "user": f"admin@{DOMAIN}"}), 400)
        self.assertIn("expired", err["message"])

    def test_bad_device_code(self):
        self.assertIdentityError(self.poll("DAQABIQEAAAD-no-such-code"), 400,
                                 "bad_verification_code", 70018)
        status, _, dc = self.devicecode()
        self.assertIdentityError(self.poll(dc["device_code"], client_id=MULTI_APP), 400,
                                 "bad_verification_code", 70018)
        self.assertIdentityError(
            self.token_req({"grant_type": DEVICE_GRANT, "client_id": emutest.DELEGATED_APP}),
            400, "invalid_request", 900144)

    def test_public_client_must_not_authenticate(self):
        status, _, dc = self.devicecode()
        self.assertIdentityError(
            self.token_req({"grant_type": DEVICE_GRANT, "client_id": emutest.DELEGATED_APP,
                            "device_code": dc["device_code"], "client_secret": "s"}),
            401, "invalid_client", 700025)

    def test_approve_refusals(self):
        self.assertGraphError(self.emu.post("/_emulator/devicecode/approve",
                                            {"user_code": "ZZZZZZZZZ", "user": "admin"}), 400)
        status, _, dc = self.devicecode()
        err = self.assertGraphError(self.emu.post("/_emulator/devicecode/approve",
                                                  {"user_code": dc["user_code"],
                                                   "user": f"dora@{DOMAIN}"}), 400)
        self.assertIn("disabled", err["message"])
        self.assertGraphError(self.emu.post("/_emulator/devicecode/approve",
                                            {"user_code": dc["user_code"],
                                             "user": f"nobody@{DOMAIN}"}), 400)
        # still pending after the refusals
        self.assertIdentityError(self.poll(dc["device_code"]), 400, "authorization_pending",
                                 70016)

    def test_refresh_token_rotation(self):
        tok = self.device_flow(user=f"admin@{DOMAIN}")
        rt1 = tok["refresh_token"]
        form = {"grant_type": "refresh_token", "client_id": emutest.DELEGATED_APP,
                "refresh_token": rt1}
        status, _, tok2 = self.token_req(dict(form, scope="openid offline_access User.Read.All"))
        self.assertEqual(status, 200, tok2)
        self.assertEqual(set(tok2), {"token_type", "scope", "expires_in", "ext_expires_in",
                                     "access_token", "refresh_token", "id_token"})
        self.assertNotEqual(tok2["refresh_token"], rt1)
        status, _, who = self.check(tok2["access_token"])
        self.assertEqual((status, who["userId"]), (200, emutest.USERS["admin"]))
        # the old one was rotated out
        self.assertIdentityError(self.token_req(form), 400, "invalid_grant", 70000)
        # unknown
        self.assertIdentityError(self.token_req(dict(form, refresh_token="1.AQEAnope")),
                                 400, "invalid_grant", 9002313)
        # another client can't redeem it
        self.assertIdentityError(
            self.token_req(dict(form, refresh_token=tok2["refresh_token"], client_id=MULTI_APP)),
            400, "invalid_grant", 70000)
        # without scope: the original grant again
        status, _, tok3 = self.token_req(dict(form, refresh_token=tok2["refresh_token"]))
        self.assertEqual(status, 200, tok3)
        self.assertEqual(tok3["scope"].split(), ["User.Read.All", "openid"])
        # scopes beyond consent
        self.assertIdentityError(
            self.token_req(dict(form, refresh_token=tok3["refresh_token"],
                                scope="Directory.ReadWrite.All")),
            400, "invalid_grant", 65001)

    def test_refresh_token_dies_with_revocation(self):
        tok = self.device_flow(user=f"dave@{DOMAIN}", scope="offline_access User.Read.All")
        self.assertNotIn("id_token", tok)
        status, _, _ = self.emu.post("/_emulator/tokens/revoke", {"user": f"dave@{DOMAIN}"})
        self.assertEqual(status, 204)
        self.assertIdentityError(
            self.token_req({"grant_type": "refresh_token", "client_id": emutest.DELEGATED_APP,
                            "refresh_token": tok["refresh_token"]}),
            400, "invalid_grant", 50173)
        self.assertGraphError(self.check(tok["access_token"]), 401, "InvalidAuthenticationToken")

    def test_discovery(self):
        status, headers, conf = self.emu.get(f"/{DOMAIN}/v2.0/.well-known/openid-configuration")
        self.assertEqual(status, 200, conf)
        base = f"https://{self.emu.host}:{self.emu.port}/{T}"
        self.assertEqual(conf["issuer"], f"https://login.microsoftonline.com/{T}/v2.0")
        self.assertEqual(conf["token_endpoint"], f"{base}/oauth2/v2.0/token")
        self.assertEqual(conf["device_authorization_endpoint"], f"{base}/oauth2/v2.0/devicecode")
        self.assertEqual(conf["jwks_uri"], f"{base}/discovery/v2.0/keys")
        self.assertEqual(conf["id_token_signing_alg_values_supported"], ["RS256"])
        self.assertIn("private_key_jwt", conf["token_endpoint_auth_methods_supported"])
        # addressed under the production name, it points there
        status, _, conf = self.emu.get(f"/{T}/v2.0/.well-known/openid-configuration",
                                       headers={"Host": "login.microsoftonline.com"})
        self.assertEqual(conf["jwks_uri"],
                         f"https://login.microsoftonline.com/{T}/discovery/v2.0/keys")
        status, _, conf = self.emu.get("/organizations/v2.0/.well-known/openid-configuration")
        self.assertEqual(conf["issuer"], "https://login.microsoftonline.com/{tenantid}/v2.0")
        self.assertIdentityError(self.emu.get("/nowhere.example/v2.0/.well-known/"
                                              "openid-configuration"),
                                 400, "invalid_request", 90002)
        status, _, jwks = self.emu.get(f"/{T}/discovery/v2.0/keys")
        self.assertEqual(status, 200)
        self.assertEqual(jwks["keys"][0]["issuer"], f"https://login.microsoftonline.com/{T}/v2.0")


# --- access-token validation ---------------------------------------------------------------------

class AccessTokenTest(IdentityTestCase):
    def signing_key(self):
        with open(os.path.join(self.emu.dir, "state", "token-signing.key"), "rb") as f:
            return serialization.load_pem_private_key(f.read(), None)

    def forge(self, **changes):
        """A token signed with the emulator's own key but with claims changed."""
        header, claims, _ = jwt_parts(self.emu.token())
        claims.update(changes)
        signing_input = (b64url(json.dumps(header).encode()) + "." +
                         b64url(json.dumps(claims).encode()))
        sig = self.signing_key().sign(signing_input.encode(), padding.PKCS1v15(),
                                      hashes.SHA256())
        return signing_input + "." + b64url(sig)

    def assert401(self, token, fragment):
        err = self.assertGraphError(self.check(token), 401, "InvalidAuthenticationToken")
        self.assertIn(fragment, err["message"])

    def test_failures(self):
        self.assertGraphError(self.emu.post("/_emulator/tokens/check"), 401,
                              "InvalidAuthenticationToken")
        self.assert401("garbage", "IDX14100")
        self.assert401("a.b.c", "validation failure")
        self.assert401(self.forge(aud="https://management.azure.com"), "Invalid audience")
        self.assert401(self.forge(tid=str(uuid.uuid4())), "Invalid issuer")
        self.assert401(self.forge(exp=int(time.time()) - 5), "expired")
        self.assert401(self.forge(appid=str(uuid.uuid4())), "Application not found")
        status, headers, _ = self.check("garbage")
        self.assertIn("Bearer", headers["www-authenticate"])
        self.assertEqual(self.check(self.forge())[0], 200)   # the forging itself is sound

    def test_lifetime_from_settings(self):
        self.emu.patch("/_emulator/settings", {"accessTokenLifetimeSeconds": 2})
        try:
            status, _, tok = self.token_req({"grant_type": "client_credentials",
                                             "client_id": emutest.READER_APP,
                                             "client_secret": "reader",
                                             "scope": GRAPH_DEFAULT})
        finally:
            self.emu.patch("/_emulator/settings", {"accessTokenLifetimeSeconds": 3600})
        self.assertEqual((status, tok["expires_in"]), (200, 2), tok)
        self.assertEqual(self.check(tok["access_token"])[0], 200)
        time.sleep(2.1)
        self.assert401(tok["access_token"], "expired")

    def test_disabled_user(self):
        self.assert401(self.emu.token(emutest.DELEGATED_APP, user=DORA), "disabled")

    def test_revocation(self):
        status, _, tok = self.token_req({"grant_type": "client_credentials",
                                         "client_id": REVOKE_APP, "client_secret": "rv",
                                         "scope": GRAPH_DEFAULT})
        user_token = self.emu.token(emutest.DELEGATED_APP, user=f"carol@{DOMAIN}")
        other_user = self.emu.token(emutest.DELEGATED_APP, user=f"bob@{DOMAIN}")
        self.assertEqual(self.check(tok["access_token"])[0], 200)
        self.emu.post("/_emulator/tokens/revoke", {"appId": REVOKE_APP})
        self.emu.post("/_emulator/tokens/revoke", {"user": f"carol@{DOMAIN}"})
        self.assert401(tok["access_token"], "revoked")
        self.assert401(user_token, "revoked")
        self.assertEqual(self.check(other_user)[0], 200)
        # a token fetched right after the revocation (same second) works: a client that
        # drops its token on 401 and fetches a new one recovers at once
        status, _, fresh = self.token_req({"grant_type": "client_credentials",
                                           "client_id": REVOKE_APP, "client_secret": "rv",
                                           "scope": GRAPH_DEFAULT})
        self.assertEqual(self.check(fresh["access_token"])[0], 200)
        fresh_user = self.emu.token(emutest.DELEGATED_APP, user=f"carol@{DOMAIN}")
        self.assertEqual(self.check(fresh_user)[0], 200)


# --- request-log hygiene -------------------------------------------------------------------------

class LogHygieneTest(IdentityTestCase):
    def test_secrets_never_logged(self):
        secrets_seen = [emutest.KIOSK_SECRET, quote_plus(emutest.KIOSK_SECRET)]
        # client secret in the form, and over Basic
        self.token_req({"grant_type": "client_credentials", "client_id": emutest.KIOSK_APP,
                        "client_secret": emutest.KIOSK_SECRET, "scope": GRAPH_DEFAULT})
        basic = base64.b64encode(f"{emutest.KIOSK_APP}:{quote_plus(emutest.KIOSK_SECRET)}"
                                 .encode()).decode()
        secrets_seen.append(basic)
        self.token_req({"grant_type": "client_credentials", "scope": GRAPH_DEFAULT},
                       headers={"Authorization": f"Basic {basic}"})
        # a client assertion
        assertion = self.assertion()
        secrets_seen.append(assertion)
        status, _, _ = self.assertion_req(assertion)
        self.assertEqual(status, 200)
        # device code and refresh token
        status, _, dc = self.devicecode()
        secrets_seen.append(dc["device_code"])
        self.poll(dc["device_code"])
        tok = self.device_flow()
        secrets_seen += [tok["refresh_token"], tok["access_token"]]
        status, _, tok2 = self.token_req({"grant_type": "refresh_token",
                                          "client_id": emutest.DELEGATED_APP,
                                          "refresh_token": tok["refresh_token"]})
        self.assertEqual(status, 200, tok2)
        # a secret sent the wrong way: JSON body, and in the query string
        self.emu.post(f"/{T}/oauth2/v2.0/token",
                      body={"grant_type": "client_credentials", "client_secret":
                            emutest.KIOSK_SECRET})
        self.emu.post(f"/{T}/oauth2/v2.0/token?client_secret="
                      f"{quote_plus(emutest.KIOSK_SECRET)}", raw=b"x",
                      headers={"Content-Type": "text/plain"})
        with open(os.path.join(self.emu.dir, "state", "requests.jsonl")) as f:
            log = f.read()
        self.assertIn("oauth2/v2.0/token", log)
        for s in secrets_seen:
            self.assertNotIn(s, log)
        entries = [json.loads(line) for line in log.splitlines()]
        self.assertFalse([e for e in entries if (e.get("status") or 0) >= 500], entries)
        form = [e for e in entries if isinstance(e.get("body"), dict)
                and e["body"].get("client_secret")]
        self.assertTrue(form)
        self.assertTrue(all(e["body"]["client_secret"].startswith("<") for e in form))
        self.assertFalse([e for e in entries if "authorization" in json.dumps(e).lower()
                          and "Basic" in json.dumps(e)])


def tearDownModule():
    shutil.rmtree(CERT_DIR, ignore_errors=True)


if __name__ == "__main__":
    emutest.main()
