"""The identity platform: access tokens (mint, validate, revoke) and the login host's token,
device-code and discovery endpoints.

Access tokens are RS256 JWTs signed with the emulator's own key, shaped like Entra's v1 Graph
tokens (aud https://graph.microsoft.com, iss https://sts.windows.net/{tid}/, appid, tid, oid,
roles for application permissions or scp for delegated scopes, uti). Clients must treat them
as opaque (reference §1.5); the emulator validates signature, audience, tenant and lifetime,
and honours revocation and revokeSignInSessions. id_tokens are v2.0 JWTs signed with the same
key; the key's self-signed certificate is published in the JWKS, kid = x5t = its SHA-1
thumbprint, as Entra does.

Where Entra's behaviour is unknown the emulator picks the stricter reading; every such choice
is listed in README.md, "Identity platform".
"""

import base64
import datetime
import hashlib
import hmac
import json
import os
import re
import secrets
import threading
import time
from urllib.parse import parse_qsl, unquote_plus

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from cryptography.x509.oid import NameOID

from .core import (GraphError, IdentityError, Principal, Response, control_route,
                   identity_route, new_id)

GRAPH_AUDIENCE = "https://graph.microsoft.com"
GRAPH_APP_ID = "00000003-0000-0000-c000-000000000000"
GRAPH_DEFAULT_SCOPES = ("https://graph.microsoft.com/.default", GRAPH_APP_ID + "/.default")
GRAPH_SCOPE_PREFIXES = ("https://graph.microsoft.com/", GRAPH_APP_ID + "/")
LOGIN_HOST = "login.microsoftonline.com"
OIDC_SCOPES = ("openid", "profile", "email", "offline_access")
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
DEVICE_CODE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
VERIFICATION_URI = "https://microsoft.com/devicelogin"
USER_CODE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"   # no 0/O, 1/I/L
USER_CODE_LENGTH = 9
ASSERTION_NBF_SKEW = 60          # s an assertion's nbf may lie in the future (clock skew)
POLL_TOLERANCE = 0.2             # s of slack on the device-code polling interval
REFRESH_TOKEN_LIFETIME = 90 * 24 * 3600
CERT_DOC = "https://learn.microsoft.com/entra/identity-platform/certificate-credentials"
JSON_UTF8 = "application/json; charset=utf-8"
B64URL = re.compile(r"[A-Za-z0-9_-]+")


def b64url(data):
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def b64url_decode(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _int_bytes(n):
    return n.to_bytes((n.bit_length() + 7) // 8 or 1, "big")


def _iso7(ts):
    """Entra's timestamp form inside AADSTS700024: 2024-10-02T22:05:03.6755165Z."""
    dt = datetime.datetime.fromtimestamp(ts, datetime.timezone.utc)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond:06d}0Z"


def _parse_iso(text):
    if not text:
        return None
    try:
        dt = datetime.datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    except ValueError:
        return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=datetime.timezone.utc)
    return dt.timestamp()


def unauthenticated(message):
    return GraphError(401, "InvalidAuthenticationToken", message,
                      {"WWW-Authenticate": 'Bearer realm="", authorization_uri='
                                          '"https://login.microsoftonline.com/common/oauth2/'
                                          'authorize", client_id="00000003-0000-0000-c000-'
                                          '000000000000"'})


class AuthError(IdentityError):
    """An identity-platform error with optional extra body fields (suberror, claims)."""

    def __init__(self, status, error, aadsts, description, extra=None, headers=None):
        super().__init__(status, error, aadsts, description, headers)
        self.extra = extra or {}


def missing_param(name):
    return AuthError(400, "invalid_request", 900144,
                     f"The request body must contain the following parameter: '{name}'.")


def malformed(why):
    return AuthError(400, "invalid_request", 9002313,
                     f"Invalid request. Request is malformed or invalid. {why}")


def _invalid_client(aadsts, text):
    return AuthError(401, "invalid_client", aadsts, text)


def user_valid_from(user):
    """The time before which the user's tokens and grants are revoked (revokeSignInSessions or
    /_emulator/tokens/revoke), as a Unix timestamp, or 0."""
    if user.get("_signInSessionsValidFromTs"):
        return user["_signInSessionsValidFromTs"]
    iso_ts = _parse_iso(user.get("_signInSessionsValidFrom"))
    return iso_ts + 1 if iso_ts else 0   # whole seconds only: that second counts as revoked


class Auth:
    def __init__(self, emu):
        self.emu = emu
        self.lock = threading.Lock()
        self.key, self.cert = self._signing_material(emu.state_dir)
        der = self.cert.public_bytes(serialization.Encoding.DER)
        # Entra publishes kid == x5t == base64url SHA-1 thumbprint of the signing certificate.
        self.kid = b64url(hashlib.sha1(der).digest())
        self.cert_der = der
        self.revoked = set()          # uti of revoked access tokens
        self.app_valid_from = {}      # appId (lower) → tokens issued before this are revoked
        self.issued = {}              # uti → (exact issue time, exp): revocation is exact, not
                                      # to the whole second of the JWT's iat
        self.device_codes = {}        # device_code → DeviceCode
        self.user_codes = {}          # user_code → device_code
        self.refresh_tokens = {}      # refresh token → grant dict
        self.redeemed_refresh = set()  # sha256 of rotated-out refresh tokens
        self.seen_jti = {}            # (appId lower, jti) → exp

    @staticmethod
    def _signing_material(state_dir):
        """The token-signing key and its self-signed certificate, made once per state dir."""
        key_path = os.path.join(state_dir, "token-signing.key")
        cert_path = os.path.join(state_dir, "token-signing.pem")
        key = None
        if os.path.exists(key_path):
            with open(key_path, "rb") as f:
                key = serialization.load_pem_private_key(f.read(), None)
        if key is None:
            key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(key.private_bytes(serialization.Encoding.PEM,
                                          serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()))
        cert = None
        if os.path.exists(cert_path):
            with open(cert_path, "rb") as f:
                try:
                    cert = x509.load_pem_x509_certificate(f.read())
                except ValueError:
                    cert = None
            if cert is not None and cert.public_key().public_numbers() != \
                    key.public_key().public_numbers():
                cert = None
        if cert is None:
            now = datetime.datetime.utcnow() - datetime.timedelta(days=1)
            name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME,
                                                 "accounts.accesscontrol.windows.net "
                                                 "(graph-emulator token signing)")])
            cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
                    .public_key(key.public_key()).serial_number(x509.random_serial_number())
                    .not_valid_before(now).not_valid_after(now + datetime.timedelta(days=3650))
                    .sign(key, hashes.SHA256()))
            with open(cert_path, "wb") as f:
                f.write(cert.public_bytes(serialization.Encoding.PEM))
        return key, cert

    # --- JWT ----------------------------------------------------------------------------

    def sign(self, claims, typ="JWT", x5t=True):
        header = {"typ": typ, "alg": "RS256", "kid": self.kid}
        if x5t:
            header["x5t"] = self.kid
        signing_input = (b64url(json.dumps(header, separators=(",", ":")).encode()) + "." +
                         b64url(json.dumps(claims, separators=(",", ":")).encode()))
        sig = self.key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
        return signing_input + "." + b64url(sig)

    def verify(self, token):
        """The claims of a token this emulator signed, or None."""
        try:
            head, body, sig = token.split(".")
            self.key.public_key().verify(b64url_decode(sig), f"{head}.{body}".encode(),
                                         padding.PKCS1v15(), hashes.SHA256())
            claims = json.loads(b64url_decode(body))
            return claims if isinstance(claims, dict) else None
        except (ValueError, InvalidSignature, TypeError):
            return None

    def jwk(self, issuer):
        pub = self.key.public_key().public_numbers()
        return {"kty": "RSA", "use": "sig", "kid": self.kid, "x5t": self.kid,
                "n": b64url(_int_bytes(pub.n)), "e": b64url(_int_bytes(pub.e)),
                "x5c": [base64.b64encode(self.cert_der).decode()],
                "cloud_instance_name": "microsoftonline.com", "issuer": issuer}

    def mint_access_token(self, app_id, user_id=None, scopes=(), lifetime=None):
        """An access token for app @app_id; with @user_id a delegated token carrying @scopes
        (delegated scopes), else an app token carrying the app's application permissions."""
        t = self.emu.tenant
        app = t.app(app_id)
        if app is None:
            raise ValueError(f"no app {app_id} in the tenant")
        now = int(time.time())
        lifetime = int(lifetime or t.settings["accessTokenLifetimeSeconds"])
        claims = {"aud": GRAPH_AUDIENCE, "iss": f"https://sts.windows.net/{t.id}/",
                  "iat": now, "nbf": now, "exp": now + lifetime, "appid": app["appId"],
                  "app_displayname": app["displayName"], "tid": t.id, "uti": new_id(),
                  "ver": "1.0", "idtyp": "user" if user_id else "app"}
        with self.lock:
            if len(self.issued) > 20000:
                self.issued = {k: v for k, v in self.issued.items() if v[1] > now}
            self.issued[claims["uti"]] = (time.time(), claims["exp"])
        if user_id:
            user = t.users[user_id]
            claims.update({"oid": user_id, "upn": user["userPrincipalName"],
                           "name": user.get("displayName"), "scp": " ".join(sorted(scopes))})
        else:
            claims.update({"oid": app.get("servicePrincipalId") or _stable_id(t.id, app["appId"]),
                           "roles": sorted(app["applicationPermissions"])})
        return self.sign(claims), lifetime

    def id_token(self, app, user, oidc_scopes):
        """A v2.0 id_token for @user signed in to @app (openid was requested)."""
        t = self.emu.tenant
        now = int(time.time())
        claims = {"aud": app["appId"], "iss": issuer_v2(t.id), "iat": now, "nbf": now,
                  "exp": now + int(t.settings["idTokenLifetimeSeconds"])}
        if "profile" in oidc_scopes:
            claims["name"] = user.get("displayName")
            claims["preferred_username"] = user["userPrincipalName"]
        if "email" in oidc_scopes and user.get("mail"):
            claims["email"] = user["mail"]
        claims.update({"oid": user["id"], "sub": pairwise_sub(t.id, app["appId"], user["id"]),
                       "tid": t.id, "uti": b64url(secrets.token_bytes(16)), "ver": "2.0"})
        return self.sign(claims, x5t=False)

    # --- validation (every Graph request) -------------------------------------------------

    def authenticate(self, req):
        header = req.headers.get("authorization") or ""
        if not header:
            raise unauthenticated("Access token is empty.")
        if not header.lower().startswith("bearer "):
            raise unauthenticated("Access token validation failure. Invalid audience.")
        token = header[7:].strip()
        if not token:
            raise unauthenticated("Access token is empty.")
        claims = self.verify(token)
        if claims is None:
            raise unauthenticated("IDX14100: JWT is not well formed, there are no dots (.).\n"
                                  if "." not in token else
                                  "Access token validation failure.")
        t = self.emu.tenant
        if claims.get("aud") != GRAPH_AUDIENCE:
            raise unauthenticated("Access token validation failure. Invalid audience.")
        if claims.get("tid") != t.id or claims.get("iss") != f"https://sts.windows.net/{t.id}/":
            raise unauthenticated("Access token validation failure. Invalid issuer.")
        now = time.time()
        if not isinstance(claims.get("exp"), int) or claims["exp"] <= now:
            raise unauthenticated("Lifetime validation failed, the token is expired.")
        if claims.get("nbf", 0) > now + 300:
            raise unauthenticated("Lifetime validation failed, the token is not yet valid.")
        with self.lock:
            app_from = self.app_valid_from.get(str(claims.get("appid", "")).lower(), 0)
            issued = self.issued.get(claims.get("uti"), (claims.get("iat", 0), 0))[0]
            if claims.get("uti") in self.revoked or issued < app_from:
                raise unauthenticated("Access token has been revoked.")
        user_id = claims.get("oid") if claims.get("idtyp") == "user" else None
        app = t.app(claims.get("appid"))
        if app is None:
            raise unauthenticated("Access token validation failure. Application not found.")
        if user_id:
            user = t.users.get(user_id)
            if user is None or not user.get("accountEnabled", True):
                raise unauthenticated("Access token validation failure. User not found or "
                                      "disabled.")
            if issued < user_valid_from(user):
                raise unauthenticated("Access token has been revoked.")
            return Principal("delegated", claims["appid"], frozenset(claims["scp"].split()),
                             user_id, frozenset(user["_roles"]), claims["uti"])
        return Principal("app", claims["appid"], frozenset(claims.get("roles", [])), None,
                         frozenset(), claims["uti"])

    def revoke_bearer(self, req):
        """Fault 'revoke-token': the token on this request stops working, as when an admin
        revokes the app's or user's sessions mid-flow."""
        header = req.headers.get("authorization") or ""
        claims = self.verify(header[7:].strip()) if header.lower().startswith("bearer ") else None
        if claims:
            with self.lock:
                self.revoked.add(claims.get("uti"))

    # --- client authentication (token endpoint) --------------------------------------------

    def check_secret(self, app, secret):
        now = time.time()
        for s in app.get("secrets", []):
            value = s.get("value") if isinstance(s, dict) else s
            if value is None or not hmac.compare_digest(str(value).encode(), secret.encode()):
                continue
            end = _parse_iso(s.get("endDateTime")) if isinstance(s, dict) else None
            start = _parse_iso(s.get("startDateTime")) if isinstance(s, dict) else None
            if end is not None and end <= now:
                raise _invalid_client(
                    7000222, f"The provided client secret keys for app '{app['appId']}' are "
                             "expired. Visit the Azure portal to create new keys for your app: "
                             "https://aka.ms/NewClientSecret, or consider using certificate "
                             "credentials for added security: https://aka.ms/certCreds.")
            if start is not None and start > now:
                break
            return
        raise _invalid_client(
            7000215, "Invalid client secret provided. Ensure the secret being sent in the "
                     "request is the client secret value, not the client secret ID, for a "
                     f"secret added to app '{app['appId']}'.")

    def app_certificates(self, app):
        """[(certificate, sha1 b64url, sha256 b64url, entry)] registered for @app."""
        out = []
        source = self.emu.tenant.source or "<memory>"
        base = os.getcwd() if source.startswith("<") else os.path.dirname(os.path.abspath(source))
        for entry in app.get("certificates", []):
            if isinstance(entry, str):
                entry = {"pem": entry}
            try:
                if entry.get("pem"):
                    cert = x509.load_pem_x509_certificate(entry["pem"].encode())
                elif entry.get("path"):
                    with open(os.path.join(base, entry["path"]), "rb") as f:
                        data = f.read()
                    cert = (x509.load_pem_x509_certificate(data) if b"-----BEGIN" in data
                            else x509.load_der_x509_certificate(data))
                elif entry.get("key"):           # keyCredentials form: base64 DER
                    cert = x509.load_der_x509_certificate(base64.b64decode(entry["key"]))
                else:
                    continue
            except (OSError, ValueError) as e:
                raise AuthError(500, "server_error", 50000,
                                f"emulator: unusable certificate for app '{app['appId']}': "
                                f"{e}") from None
            der = cert.public_bytes(serialization.Encoding.DER)
            out.append((cert, b64url(hashlib.sha1(der).digest()),
                        b64url(hashlib.sha256(der).digest()), entry))
        return out

    def check_assertion(self, req, app, assertion, tenant_seg):
        """Verify a private_key_jwt client assertion for @app (reference §1.3)."""
        t = self.emu.tenant
        app_id = app["appId"]
        parts = assertion.split(".")
        if len(parts) != 3 or not all(B64URL.fullmatch(p) for p in parts):
            raise AuthError(400, "invalid_request", 50027,
                            "Invalid JWT token. The client assertion is not a JWS in compact "
                            "serialization (header.payload.signature, base64url without "
                            "padding).")
        try:
            header = json.loads(b64url_decode(parts[0]))
            claims = json.loads(b64url_decode(parts[1]))
            sig = b64url_decode(parts[2])
        except ValueError:
            header = claims = None
        if not isinstance(header, dict) or not isinstance(claims, dict):
            raise AuthError(400, "invalid_request", 50027,
                            "Invalid JWT token. The client assertion's header or payload is "
                            "not a base64url-encoded JSON object.")
        alg = header.get("alg")
        if alg not in ("PS256", "RS256", "ES256"):
            raise _invalid_client(700027, "Client assertion failed signature validation. "
                                          f"[Reason - Unsupported signing algorithm '{alg}'; "
                                          "use PS256 (x5t#S256) or RS256 (x5t).]")
        if "typ" in header and str(header["typ"]).upper() != "JWT":
            raise AuthError(400, "invalid_request", 50027,
                            f"Invalid JWT token. Unexpected JWT header typ '{header['typ']}'.")
        if "crit" in header:
            raise AuthError(400, "invalid_request", 50027,
                            "Invalid JWT token. Unsupported critical header parameters.")
        need = "x5t" if alg == "RS256" else "x5t#S256"
        if not isinstance(header.get(need), str):
            raise _invalid_client(
                700027, "Client assertion contains an invalid signature. [Reason - The key was "
                        f"not found., alg {alg} requires the '{need}' header (base64url "
                        f"{'SHA-1' if need == 'x5t' else 'SHA-256'} thumbprint of the "
                        "certificate's DER encoding).]")
        certs = self.app_certificates(app)
        idx = 1 if need == "x5t" else 2
        match = [c for c in certs if c[idx] == header[need]]
        other = "x5t#S256" if need == "x5t" else "x5t"
        if match and other in header and header[other] != match[0][3 - idx]:
            match = []                     # the two thumbprints name different certificates
        if not match:
            try:
                thumb = b64url_decode(header[need]).hex().upper()
            except ValueError:
                thumb = header[need]
            raise _invalid_client(
                700027, "Client assertion contains an invalid signature. [Reason - The key was "
                        f"not found., Thumbprint of key used by client: '{thumb}', Please visit "
                        "the Azure Portal, Graph Explorer or directly use MS Graph to see "
                        f"configured keys for app Id '{app_id}'.]")
        cert, _, _, entry = match[0]
        start = cert.not_valid_before.replace(tzinfo=datetime.timezone.utc).timestamp()
        end = cert.not_valid_after.replace(tzinfo=datetime.timezone.utc).timestamp()
        end = min(end, _parse_iso(entry.get("endDateTime")) or end)
        found = (f"Found key 'Start={_fmt_us(start)}, End={_fmt_us(end)}'")
        now = time.time()
        if not start <= now < end:
            raise _invalid_client(
                700027, "Client assertion contains an invalid signature. [Reason - The key used "
                        f"is expired or not yet valid., {found}]")
        pub = cert.public_key()
        signing_input = f"{parts[0]}.{parts[1]}".encode()
        bad = _invalid_client(
            700027, "Client assertion contains an invalid signature. [Reason - The provided "
                    "signature value did not match the expected signature value., Thumbprint "
                    f"of key used by client: '{cert.fingerprint(hashes.SHA1()).hex().upper()}', "
                    f"{found}]")
        try:
            if alg in ("PS256", "RS256"):
                if not isinstance(pub, rsa.RSAPublicKey):
                    raise bad
                if pub.key_size < 2048:
                    raise _invalid_client(50032, "WeakRsaKey - the certificate's RSA key is "
                                                 f"{pub.key_size} bits; at least 2048 needed.")
                pad = (padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32)
                       if alg == "PS256" else padding.PKCS1v15())
                pub.verify(sig, signing_input, pad, hashes.SHA256())
            else:
                if not isinstance(pub, ec.EllipticCurvePublicKey) or \
                        pub.curve.name != "secp256r1" or len(sig) != 64:
                    raise bad
                der_sig = encode_dss_signature(int.from_bytes(sig[:32], "big"),
                                               int.from_bytes(sig[32:], "big"))
                pub.verify(der_sig, signing_input, ec.ECDSA(hashes.SHA256()))
        except InvalidSignature:
            raise bad from None

        for name, kind in (("aud", str), ("iss", str), ("sub", str), ("jti", str),
                           ("exp", (int, float)), ("nbf", (int, float))):
            if name not in claims:
                raise AuthError(400, "invalid_request", 90014,
                                f"The required field '{name}' is missing from the credential. "
                                "Ensure that you have all the necessary parameters for the "
                                "login request.")
            if not isinstance(claims[name], kind) or isinstance(claims[name], bool) or \
                    (kind is str and not claims[name]):
                raise AuthError(400, "invalid_request", 50027,
                                f"Invalid JWT token. Claim '{name}' has the wrong type.")
        if claims["iss"] != claims["sub"]:
            raise _invalid_client(50048, "Subject mismatches Issuer claim in the client "
                                         "assertion. Contact the tenant admin.")
        if claims["iss"].lower() != app_id.lower():
            raise _invalid_client(700021, "Client assertion application identifier doesn't "
                                          "match 'client_id' parameter. Review the "
                                          f"documentation at {CERT_DOC} .")
        hosts = {LOGIN_HOST, (req.headers.get("host") or "").lower()}
        tenants = {t.id.lower(), t.domain.lower(), tenant_seg.lower()}
        auds = {f"https://{h}/{tn}/oauth2/v2.0/token" for h in hosts if h for tn in tenants}
        if claims["aud"].lower() not in auds:
            raise _invalid_client(700023, "Client assertion audience claim does not match Realm "
                                          f"issuer. Review the documentation at {CERT_DOC} .")
        if claims["nbf"] > now + ASSERTION_NBF_SKEW or claims["exp"] <= now:
            raise _invalid_client(700024, "Client assertion is not within its valid time range. "
                                          f"Current time: {_iso7(now)}, assertion valid from "
                                          f"{_iso7(claims['nbf'])}, expiry time of assertion "
                                          f"{_iso7(claims['exp'])}. Review the documentation "
                                          f"at {CERT_DOC} .")
        with self.lock:
            for k in [k for k, exp in self.seen_jti.items() if exp <= now]:
                del self.seen_jti[k]
            key = (app_id.lower(), claims["jti"])
            if key in self.seen_jti:
                raise _invalid_client(50013, "Assertion is invalid: the client assertion's jti "
                                             f"'{claims['jti']}' has already been used. Sign a "
                                             "new assertion, with a new jti, for every token "
                                             "request.")
            self.seen_jti[key] = claims["exp"]

    # --- device codes ----------------------------------------------------------------------

    def new_device_code(self, app, graph_scopes, oidc_scopes, tenant_seg):
        t = self.emu.tenant
        while True:
            user_code = "".join(secrets.choice(USER_CODE_ALPHABET)
                                for _ in range(USER_CODE_LENGTH))
            if user_code not in self.user_codes:
                break
        device_code = "DAQABIQEAAAD" + secrets.token_urlsafe(96)
        now = time.time()
        dc = {"device_code": device_code, "user_code": user_code, "app_id": app["appId"],
              "graph": list(graph_scopes), "oidc": list(oidc_scopes), "tenant": tenant_seg,
              "issued": now, "expires": now + float(t.settings["deviceCodeExpiresIn"]),
              "interval": float(t.settings["deviceCodeInterval"]), "last_poll": None,
              "status": "pending", "user_id": None}
        self.device_codes[device_code] = dc
        self.user_codes[user_code] = device_code
        return dc

    def find_user_code(self, user_code):
        code = (user_code or "").strip().upper().replace("-", "")
        dc = self.device_codes.get(self.user_codes.get(code, ""))
        if dc is None:
            raise GraphError(400, "BadRequest",
                             f"No device code with user_code '{user_code}'. "
                             "GET /_emulator/devicecodes lists the pending ones.")
        if time.time() >= dc["expires"]:
            raise GraphError(400, "BadRequest",
                             f"user_code '{user_code}' expired at "
                             f"{_iso7(dc['expires'])} (AADSTS70019: code expired).")
        if dc["status"] != "pending":
            raise GraphError(400, "BadRequest",
                             f"user_code '{user_code}' was already {dc['status']} "
                             "(AADSTS90120: the request was already authorized or declined).")
        return dc

    # --- refresh tokens --------------------------------------------------------------------

    def new_refresh_token(self, app, user, graph_scopes, oidc_scopes):
        token = "1.AQEA" + secrets.token_urlsafe(96)
        now = time.time()
        life = float(self.emu.tenant.settings.get("refreshTokenLifetimeSeconds",
                                                  REFRESH_TOKEN_LIFETIME))
        self.refresh_tokens[token] = {"app_id": app["appId"], "user_id": user["id"],
                                      "graph": list(graph_scopes), "oidc": list(oidc_scopes),
                                      "iat": now, "exp": now + life}
        return token

    def delegated_response(self, app, user, graph_scopes, oidc_scopes):
        """The token response of a delegated grant (device code, refresh token)."""
        token, lifetime = self.mint_access_token(app["appId"], user["id"], graph_scopes)
        scope = list(graph_scopes) + [s for s in oidc_scopes if s != "offline_access"]
        body = {"token_type": "Bearer", "scope": " ".join(scope), "expires_in": lifetime,
                "ext_expires_in": lifetime, "access_token": token}
        if "offline_access" in oidc_scopes:
            body["refresh_token"] = self.new_refresh_token(app, user, graph_scopes, oidc_scopes)
        if "openid" in oidc_scopes:
            body["id_token"] = self.id_token(app, user, oidc_scopes)
        return token_response(body)


def _fmt_us(ts):
    return datetime.datetime.fromtimestamp(ts, datetime.timezone.utc).strftime(
        "%m/%d/%Y %H:%M:%S")


def _stable_id(*parts):
    h = hashlib.sha256("|".join(p.lower() for p in parts).encode()).hexdigest()
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-a{h[17:20]}-{h[20:32]}"


def pairwise_sub(tid, app_id, user_id):
    """A stable, app-specific subject, as Entra's pairwise `sub` (43 base64url chars)."""
    return b64url(hashlib.sha256(f"{tid}|{app_id.lower()}|{user_id}".encode()).digest())[:43]


def issuer_v2(tid):
    return f"https://login.microsoftonline.com/{tid}/v2.0"


def token_response(body):
    return Response(200, body, {"Cache-Control": "no-store, no-cache", "Pragma": "no-cache"},
                    content_type=JSON_UTF8)


# --- request helpers ---------------------------------------------------------------------------

def resolve_tenant(req, allow_multi=False):
    """(segment, multi) for the {tenant} path segment: the tenant id or domain (multi False),
    or organizations/common where @allow_multi (multi True). Else AADSTS90002 and friends."""
    seg = req.params["tenant"]
    t = req.emu.tenant
    low = seg.lower()
    if low in (t.id.lower(), t.domain.lower()):
        return seg, False
    if low in ("organizations", "common"):
        if allow_multi:
            return low, True
        if low == "common":
            raise AuthError(400, "invalid_request", 9001023,
                            "The grant type isn't supported over the /common or /consumers "
                            "endpoints. Please use the /organizations or tenant-specific "
                            "endpoint.")
        raise AuthError(400, "invalid_request", 9001023,
                        "The grant type isn't supported over the /organizations endpoint "
                        "(emulator: app-only tokens need the tenant-specific endpoint). "
                        "Please use the tenant-specific endpoint.")
    if low == "consumers":
        raise AuthError(400, "invalid_request", 9002332,
                        "Application is configured for use by Microsoft Entra users only. "
                        "Please do not use the /consumers endpoint to serve this request.")
    raise AuthError(400, "invalid_request", 90002,
                    f"Tenant '{seg}' not found. Check to make sure you have the correct tenant "
                    "ID and are signing into the correct cloud. Check with your subscription "
                    "administrator, this may happen if there are no active subscriptions for "
                    "the tenant.")


def check_multi_tenant_endpoint(app):
    """Single-tenant apps (Entra's default signInAudience) can't use /organizations, /common."""
    if app.get("signInAudience", "AzureADMyOrg") == "AzureADMyOrg":
        raise AuthError(400, "invalid_request", 50194,
                        f"Application '{app['appId']}'({app['displayName']}) is not configured "
                        "as a multi-tenant application. Usage of the /common endpoint is not "
                        "supported for such applications created after '10/15/2018'. Use a "
                        "tenant-specific endpoint or configure the application to be "
                        "multi-tenant.")


QUERY_SECRETS = {"client_secret", "client_assertion", "refresh_token", "device_code", "code",
                 "password", "assertion"}


def read_form(req, first_param):
    """The form-encoded body as a dict. Entra reads nothing else: another content type looks
    like a body without parameters. Repeated parameters are refused (RFC 6749 §3.2)."""
    if QUERY_SECRETS & set(req.query):
        raise malformed("Credentials must be sent in the request body, never in the URL "
                        "(RFC 6749 §2.3.1).")
    ctype = (req.headers.get("content-type") or "").split(";")[0].strip().lower()
    if ctype != "application/x-www-form-urlencoded":
        raise missing_param(first_param)
    try:
        text = req.body.decode("utf-8")
    except UnicodeDecodeError:
        raise malformed("The body is not UTF-8.") from None
    form = {}
    for k, v in parse_qsl(text, keep_blank_values=True):
        if k in form:
            raise malformed(f"Parameter '{k}' appears more than once (RFC 6749 §3.2).")
        form[k] = v
    return {k: v for k, v in form.items() if v != ""}


def client_auth(req, form):
    """(client_id, method, credential) from the form and an HTTP Basic header. method is
    None, "secret" or "assertion"; at most one may be used (RFC 6749 §2.3)."""
    methods = []
    client_id = form.get("client_id")
    header = req.headers.get("authorization")
    if header:
        scheme, _, value = header.strip().partition(" ")
        if scheme.lower() != "basic":
            raise malformed(f"Unsupported Authorization scheme '{scheme}' at the token "
                            "endpoint; only Basic client authentication is accepted.")
        try:
            raw = base64.b64decode(value.strip(), validate=True).decode("utf-8")
            bid, sep, bsecret = raw.partition(":")
            if not sep:
                raise ValueError
        except ValueError:
            raise _invalid_client(7000215, "Invalid client secret provided: malformed HTTP "
                                           "Basic credentials.") from None
        bid, bsecret = unquote_plus(bid), unquote_plus(bsecret)   # RFC 6749 §2.3.1
        if client_id is not None and client_id.lower() != bid.lower():
            raise malformed("client_id in the body does not match the HTTP Basic user name.")
        client_id = bid
        methods.append(("secret", bsecret))
    if "client_secret" in form:
        methods.append(("secret", form["client_secret"]))
    if "client_assertion" in form or "client_assertion_type" in form:
        if "client_assertion_type" not in form:
            raise missing_param("client_assertion_type")
        if "client_assertion" not in form:
            raise missing_param("client_assertion")
        if form["client_assertion_type"] != ASSERTION_TYPE:
            raise malformed(f"client_assertion_type must be '{ASSERTION_TYPE}'.")
        methods.append(("assertion", form["client_assertion"]))
    if len(methods) > 1:
        raise malformed("More than one client authentication method was used (RFC 6749 "
                        "§2.3): send exactly one of HTTP Basic, client_secret or "
                        "client_assertion.")
    if not client_id:
        raise missing_param("client_id")
    method, cred = methods[0] if methods else (None, None)
    return client_id, method, cred


def find_app(req, client_id):
    t = req.emu.tenant
    app = t.app(client_id)
    if app is None:
        raise AuthError(400, "unauthorized_client", 700016,
                        f"Application with identifier '{client_id}' was not found in the "
                        f"directory '{t.display_name}'. This can happen if the application has "
                        "not been installed by the administrator of the tenant or consented to "
                        "by any user in the tenant. You may have sent your authentication "
                        "request to the wrong tenant.")
    if app.get("disabled") or app.get("accountEnabled") is False:
        raise AuthError(400, "unauthorized_client", 7000112,
                        f"Application '{app['appId']}'({app['displayName']}) is disabled.")
    return app


def login_host(req):
    return req.headers.get("host") or req.emu.url.split("://", 1)[1]


def parse_delegated_scopes(req, app, scope):
    """Split a delegated scope string into (Graph scopes, OIDC scopes), canonical names, after
    checking the app holds consent for each (AADSTS65001 otherwise)."""
    t = req.emu.tenant
    items = scope.split()
    if not items:
        raise missing_param("scope")
    graph, oidc, other, default = [], [], [], False
    for it in items:
        low = it.lower()
        if low in OIDC_SCOPES:
            oidc.append(low)
        elif low in GRAPH_DEFAULT_SCOPES:
            default = True
        elif low.startswith(GRAPH_SCOPE_PREFIXES):
            graph.append(it.split("/")[-1])
        elif "/" in it or ":" in it:
            other.append(it)
        else:
            graph.append(it)
    if other:
        if graph or default:
            raise AuthError(400, "invalid_scope", 700022,
                            "The provided value for the input parameter scope is not valid "
                            f"because it contains more than one resource. Scope {scope} is not "
                            "valid.")
        resource = other[0].rsplit("/", 1)[0]
        raise AuthError(400, "invalid_resource", 500011,
                        f"The resource principal named {resource} was not found in the tenant "
                        f"named {t.display_name}. This can happen if the application has not "
                        "been installed by the administrator of the tenant or consented to by "
                        "any user in the tenant. You might have sent your authentication "
                        "request to the wrong tenant.")
    if default and graph:
        raise AuthError(400, "invalid_scope", 70011,
                        "The provided value for the input parameter 'scope' is not valid. The "
                        f"scope '{scope}' is not valid. static scope limit exceeded.")
    granted = {s.lower(): s for s in app.get("delegatedScopes", [])}
    missing = [s for s in graph + oidc if s.lower() not in granted]
    if missing:
        raise AuthError(400, "invalid_grant", 65001,
                        "The user or administrator has not consented to use the application "
                        f"with ID '{app['appId']}' named '{app['displayName']}'. Send an "
                        "interactive authorization request for this user and resource. "
                        f"(Not consented: {' '.join(missing)}.)",
                        extra={"suberror": "consent_required"})
    if default:
        graph = [s for s in app.get("delegatedScopes", []) if s.lower() not in OIDC_SCOPES]
    else:
        graph = [granted[s.lower()] for s in graph]
    return list(dict.fromkeys(graph)), list(dict.fromkeys(oidc))


# --- the login host: token endpoint ------------------------------------------------------------

TENANT = r"/(?P<tenant>[^/]+)"


@identity_route("POST", TENANT + r"/oauth2/v2\.0/token")
def token(req):
    seg, multi = resolve_tenant(req, allow_multi=True)
    form = read_form(req, "grant_type")
    grant = form.get("grant_type")
    if not grant:
        raise missing_param("grant_type")
    handler = GRANTS.get(grant)
    if handler is None:
        raise AuthError(400, "unsupported_grant_type", 70003,
                        f"The app requested an unsupported grant type '{grant}'.")
    client_id, method, cred = client_auth(req, form)
    app = find_app(req, client_id)
    return handler(req, form, app, method, cred, seg, multi)


def _client_credentials(req, form, app, method, cred, seg, multi):
    auth = req.emu.auth
    if multi:
        resolve_tenant(req, allow_multi=False)        # raises the /common error
    if method is None:
        raise _invalid_client(7000218, "The request body must contain the following "
                                       "parameter: 'client_assertion' or 'client_secret'.")
    if method == "secret":
        auth.check_secret(app, cred)
    else:
        auth.check_assertion(req, app, cred, seg)
    scope = form.get("scope")
    if not scope:
        raise missing_param("scope")
    items = scope.split()
    for it in items:
        if not it.endswith("/.default"):
            raise AuthError(400, "invalid_scope", 1002012,
                            f"The provided value for scope {it} is not valid. Client credential "
                            "flows must have a scope value with /.default suffixed to the "
                            "resource identifier (application ID URI).")
    if len(items) != 1:
        raise AuthError(400, "invalid_scope", 70011,
                        "The provided value for the input parameter 'scope' is not valid. The "
                        f"scope {scope} is not valid. A client credentials request takes "
                        "exactly one resource's /.default scope.")
    if items[0].lower() not in GRAPH_DEFAULT_SCOPES:
        resource = items[0][: -len("/.default")]
        raise AuthError(400, "invalid_resource", 500011,
                        f"The resource principal named {resource} was not found in the tenant "
                        f"named {req.emu.tenant.display_name}. This can happen if the "
                        "application has not been installed by the administrator of the tenant "
                        "or consented to by any user in the tenant. You might have sent your "
                        "authentication request to the wrong tenant.")
    token_value, lifetime = auth.mint_access_token(app["appId"])
    return token_response({"token_type": "Bearer", "expires_in": lifetime,
                           "ext_expires_in": lifetime, "access_token": token_value})


def _public_client_credentials(req, app, method, cred, seg):
    """Public clients must not authenticate; confidential ones must (refresh grants)."""
    if app.get("publicClient"):
        if method is not None:
            raise _invalid_client(700025, "Client is public so neither 'client_assertion' nor "
                                          "'client_secret' should be presented.")
        return
    if method is None:
        raise _invalid_client(7000218, "The request body must contain the following "
                                       "parameter: 'client_assertion' or 'client_secret'.")
    if method == "secret":
        req.emu.auth.check_secret(app, cred)
    else:
        req.emu.auth.check_assertion(req, app, cred, seg)


def _device_code_grant(req, form, app, method, cred, seg, multi):
    auth = req.emu.auth
    t = req.emu.tenant
    if multi:
        check_multi_tenant_endpoint(app)
    _public_client_credentials(req, app, method, cred, seg)
    code = form.get("device_code")
    if not code:
        raise missing_param("device_code")
    dc = auth.device_codes.get(code)
    if dc is None or dc["app_id"].lower() != app["appId"].lower():
        raise AuthError(400, "bad_verification_code", 70018,
                        "The provided value for the input parameter 'device_code' is not "
                        "valid.")
    if dc["status"] == "redeemed":
        raise AuthError(400, "invalid_grant", 70000,
                        "The provided value for the input parameter 'device_code' is not valid. "
                        "This device code has already been redeemed.")
    now = time.time()
    if now >= dc["expires"]:
        raise AuthError(400, "expired_token", 70020,
                        "The provided value for the input parameter 'device_code' is not valid. "
                        "This device code has expired.")
    if dc["status"] == "declined":
        raise AuthError(400, "authorization_declined", 65004,
                        "The user declined the sign-in request (UserDeclinedConsent).")
    prev, dc["last_poll"] = dc["last_poll"], now
    if prev is not None and now - prev < dc["interval"] - POLL_TOLERANCE:
        dc["interval"] += float(t.settings.get("deviceCodeSlowDownSeconds", 5))
        raise AuthError(400, "slow_down", 70016,
                        f"OAuth 2.0 device flow error. Polled {now - prev:.2f} s after the "
                        "previous poll: slow down, wait the interval plus 5 seconds between "
                        "polls from now on (RFC 8628 §3.5).")
    if dc["status"] == "pending":
        raise AuthError(400, "authorization_pending", 70016,
                        "OAuth 2.0 device flow error. Authorization is pending. Continue "
                        "polling.")
    user = t.users.get(dc["user_id"])
    if user is None or not user.get("accountEnabled", True):
        raise AuthError(400, "invalid_grant", 50057,
                        "The user account is disabled.")
    dc["status"] = "redeemed"
    return auth.delegated_response(app, user, dc["graph"], dc["oidc"])


def _refresh_token_grant(req, form, app, method, cred, seg, multi):
    auth = req.emu.auth
    t = req.emu.tenant
    if multi:
        check_multi_tenant_endpoint(app)
    _public_client_credentials(req, app, method, cred, seg)
    rt = form.get("refresh_token")
    if not rt:
        raise missing_param("refresh_token")
    grant = auth.refresh_tokens.get(rt)
    if grant is None:
        if hashlib.sha256(rt.encode()).hexdigest() in auth.redeemed_refresh:
            raise AuthError(400, "invalid_grant", 70000,
                            "The provided value for the input parameter 'refresh_token' or "
                            "'assertion' is not valid. This refresh token was already redeemed "
                            "(the emulator rotates refresh tokens: use the newest one).")
        raise AuthError(400, "invalid_grant", 9002313,
                        "Invalid request. Request is malformed or invalid.")
    if grant["app_id"].lower() != app["appId"].lower():
        raise AuthError(400, "invalid_grant", 70000,
                        "The provided value for the input parameter 'refresh_token' or "
                        "'assertion' is not valid. The refresh token was issued to a different "
                        "client.")
    now = time.time()
    if now >= grant["exp"]:
        raise AuthError(400, "invalid_grant", 700082,
                        "The refresh token has expired due to inactivity. The token was issued "
                        f"on {_iso7(grant['iat'])} and was inactive for "
                        f"{int(now - grant['iat'])} seconds.")
    user = t.users.get(grant["user_id"])
    if user is None or not user.get("accountEnabled", True):
        raise AuthError(400, "invalid_grant", 50057, "The user account is disabled.")
    with auth.lock:
        app_from = auth.app_valid_from.get(app["appId"].lower(), 0)
    valid_from = max(user_valid_from(user), app_from)
    if grant["iat"] < valid_from:
        raise AuthError(400, "invalid_grant", 50173,
                        "The provided grant has expired due to it being revoked, a fresh auth "
                        "token is needed. The user might have changed or reset their password. "
                        f"The grant was issued on '{_iso7(grant['iat'])}' and the "
                        "TokensValidFrom date (before which tokens are not valid) for this "
                        f"user is '{_iso7(valid_from)}'.")
    graph, oidc = grant["graph"], grant["oidc"]
    if form.get("scope"):
        graph, oidc = parse_delegated_scopes(req, app, form["scope"])
        if "offline_access" not in oidc:
            oidc.append("offline_access")          # the grant itself is an offline grant
    del auth.refresh_tokens[rt]
    auth.redeemed_refresh.add(hashlib.sha256(rt.encode()).hexdigest())
    return auth.delegated_response(app, user, graph, oidc)


GRANTS = {"client_credentials": _client_credentials,
          DEVICE_CODE_GRANT: _device_code_grant,
          "refresh_token": _refresh_token_grant}


# --- the login host: device authorization ------------------------------------------------------

@identity_route("POST", TENANT + r"/oauth2/v2\.0/devicecode")
def devicecode(req):
    seg, multi = resolve_tenant(req, allow_multi=True)
    form = read_form(req, "client_id")
    client_id = form.get("client_id")
    if not client_id:
        raise missing_param("client_id")
    app = find_app(req, client_id)
    if multi:
        check_multi_tenant_endpoint(app)
    if not app.get("publicClient"):
        raise AuthError(400, "invalid_client", 7000218,
                        "The request body must contain the following parameter: "
                        "'client_assertion' or 'client_secret'.")
    if "client_secret" in form or "client_assertion" in form or \
            req.headers.get("authorization"):
        raise _invalid_client(700025, "Client is public so neither 'client_assertion' nor "
                                      "'client_secret' should be presented.")
    scope = form.get("scope")
    if not scope:
        raise missing_param("scope")
    graph, oidc = parse_delegated_scopes(req, app, scope)
    dc = req.emu.auth.new_device_code(app, graph, oidc, seg)
    return Response(200, {
        "user_code": dc["user_code"], "device_code": dc["device_code"],
        "verification_uri": VERIFICATION_URI,
        "expires_in": int(req.emu.tenant.settings["deviceCodeExpiresIn"]),
        "interval": int(req.emu.tenant.settings["deviceCodeInterval"]),
        "message": f"To sign in, use a web browser to open the page {VERIFICATION_URI} and "
                   f"enter the code {dc['user_code']} to authenticate."},
        {"Cache-Control": "no-store, no-cache", "Pragma": "no-cache"}, content_type=JSON_UTF8)


@identity_route("GET", TENANT + r"/oauth2/v2\.0/(?:token|devicecode)")
def post_only(req):
    raise AuthError(400, "invalid_request", 900561,
                    "The endpoint only accepts POST, OPTIONS requests. Received a GET request.")


# --- the login host: OpenID Connect discovery ----------------------------------------------------

@identity_route("GET", TENANT + r"/v2\.0/\.well-known/openid-configuration")
def openid_configuration(req):
    seg, multi = resolve_tenant(req, allow_multi=True)
    t = req.emu.tenant
    tseg = seg if multi else t.id
    base = f"https://{login_host(req)}/{tseg}"
    return Response(200, {
        "token_endpoint": f"{base}/oauth2/v2.0/token",
        "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt",
                                                  "client_secret_basic"],
        "jwks_uri": f"{base}/discovery/v2.0/keys",
        "response_modes_supported": ["query", "fragment", "form_post"],
        "subject_types_supported": ["pairwise"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
        "scopes_supported": ["openid", "profile", "email", "offline_access"],
        "issuer": issuer_v2("{tenantid}" if multi else t.id),
        "request_uri_parameter_supported": False,
        "userinfo_endpoint": "https://graph.microsoft.com/oidc/userinfo",
        "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
        "device_authorization_endpoint": f"{base}/oauth2/v2.0/devicecode",
        "http_logout_supported": True,
        "frontchannel_logout_supported": True,
        "end_session_endpoint": f"{base}/oauth2/v2.0/logout",
        "claims_supported": ["sub", "iss", "cloud_instance_name", "cloud_instance_host_name",
                             "cloud_graph_host_name", "msgraph_host", "aud", "exp", "iat",
                             "auth_time", "acr", "nonce", "preferred_username", "name", "tid",
                             "ver", "at_hash", "c_hash", "email"],
        "kerberos_endpoint": f"{base}/kerberos",
        "tenant_region_scope": None if multi else "EU",
        "cloud_instance_name": "microsoftonline.com",
        "cloud_graph_host_name": "graph.windows.net",
        "msgraph_host": "graph.microsoft.com",
        "rbac_url": "https://pas.windows.net"}, {"Cache-Control": "max-age=86400, private"},
        content_type=JSON_UTF8)


@identity_route("GET", TENANT + r"/discovery/v2\.0/keys")
def jwks(req):
    seg, multi = resolve_tenant(req, allow_multi=True)
    issuer = issuer_v2("{tenantid}" if multi else req.emu.tenant.id)
    return Response(200, {"keys": [req.emu.auth.jwk(issuer)]},
                    {"Cache-Control": "max-age=86400, private"}, content_type=JSON_UTF8)


# --- control: tokens for tests that are not about OAuth ---------------------------------------

@control_route("POST", r"/_emulator/tokens")
def mint(req):
    """{"appId": "...", "user": "upn-or-id"?, "scopes": [...]?, "lifetime": s?} → a token,
    as if the OAuth dance had happened. For tests of Graph routes, not of OAuth."""
    body = req.json()
    auth = req.emu.auth
    user_id = None
    if body.get("user"):
        user_id = req.emu.tenant.user(body["user"])["id"]
    try:
        token_value, lifetime = auth.mint_access_token(body["appId"], user_id,
                                                       body.get("scopes", []),
                                                       body.get("lifetime"))
    except (KeyError, ValueError) as e:
        raise GraphError(400, "BadRequest", f"cannot mint: {e}") from None
    return Response(200, {"token_type": "Bearer", "expires_in": lifetime,
                          "access_token": token_value})


@control_route("POST", r"/_emulator/tokens/revoke")
def revoke_all(req):
    """Revoke every token issued so far to {"appId"}, or to {"user"} (any app), including
    refresh tokens."""
    body = req.json()
    auth = req.emu.auth
    cutoff = time.time()               # compared with exact issue times, not the JWT's iat
    if body.get("appId"):
        with auth.lock:
            auth.app_valid_from[body["appId"].lower()] = cutoff
    if body.get("user"):
        req.emu.tenant.user(body["user"])["_signInSessionsValidFromTs"] = cutoff
    return Response(204, None)


@control_route("POST", r"/_emulator/tokens/check")
def check_token(req):
    """Validate the request's own Authorization: Bearer token exactly as a Graph call would:
    200 with what the token speaks for, or Graph's 401."""
    p = req.emu.auth.authenticate(req)
    return {"kind": p.kind, "appId": p.app_id, "userId": p.user_id,
            "scopes": sorted(p.scopes), "roles": sorted(p.roles), "tokenId": p.token_id}


# --- control: the person on the other side of the device-code flow -----------------------------

@control_route("POST", r"/_emulator/devicecode/approve")
def approve_device_code(req):
    """{"user_code", "user": UPN or id}: that user signed in on their phone and approved."""
    body = req.json()
    auth = req.emu.auth
    dc = auth.find_user_code(body.get("user_code"))
    key = body.get("user") or ""
    try:
        user = req.emu.tenant.user(key)
    except GraphError:
        raise GraphError(400, "BadRequest", f"No user '{key}' in the tenant.") from None
    if not user.get("accountEnabled", True):
        raise GraphError(400, "BadRequest",
                         f"User '{user['userPrincipalName']}' is disabled (accountEnabled "
                         "false): Entra refuses the sign-in (AADSTS50057).")
    dc["status"] = "approved"
    dc["user_id"] = user["id"]
    return {"user_code": dc["user_code"], "status": "approved", "userId": user["id"],
            "userPrincipalName": user["userPrincipalName"]}


@control_route("POST", r"/_emulator/devicecode/decline")
def decline_device_code(req):
    """{"user_code"}: the person pressed Cancel ("No, it's not me")."""
    dc = req.emu.auth.find_user_code(req.json().get("user_code"))
    dc["status"] = "declined"
    return {"user_code": dc["user_code"], "status": "declined"}


@control_route("GET", r"/_emulator/devicecodes")
def list_device_codes(req):
    """Pending, unexpired device codes (no device_code secrets); ?all=true for every one."""
    everything = req.query.get("all", "").lower() in ("1", "true", "yes")
    now = time.time()
    out = []
    for dc in req.emu.auth.device_codes.values():
        expired = now >= dc["expires"]
        if not everything and (expired or dc["status"] != "pending"):
            continue
        out.append({"user_code": dc["user_code"], "clientId": dc["app_id"],
                    "scope": " ".join(dc["graph"] + dc["oidc"]),
                    "status": "expired" if expired and dc["status"] == "pending"
                    else dc["status"],
                    "expiresDateTime": _iso7(dc["expires"]), "interval": dc["interval"],
                    "tenant": dc["tenant"], "userId": dc["user_id"]})
    return {"value": out}
