"""Access tokens: minting, validation, revocation (and, in this module, the identity platform's
token, device-code and discovery endpoints).

Access tokens are RS256 JWTs signed with the emulator's own key, shaped like Entra's v1 Graph
tokens (aud https://graph.microsoft.com, iss https://sts.windows.net/{tid}/, appid, tid, oid,
roles for application permissions or scp for delegated scopes, uti). Clients must treat them
as opaque (reference §1.5); the emulator validates signature, audience, tenant and lifetime,
and honours revocation and revokeSignInSessions.
"""

import base64
import json
import os
import threading
import time

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.exceptions import InvalidSignature

from .core import GraphError, Principal, Response, control_route, new_id

GRAPH_AUDIENCE = "https://graph.microsoft.com"


def b64url(data):
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def b64url_decode(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def unauthenticated(message):
    return GraphError(401, "InvalidAuthenticationToken", message,
                      {"WWW-Authenticate": 'Bearer realm="", authorization_uri='
                                          '"https://login.microsoftonline.com/common/oauth2/'
                                          'authorize", client_id="00000003-0000-0000-c000-'
                                          '000000000000"'})


class Auth:
    def __init__(self, emu):
        self.emu = emu
        self.lock = threading.Lock()
        self.key = self._signing_key(emu.state_dir)
        self.kid = b64url(hashes.Hash(hashes.SHA1()).finalize())[:27]
        digest = hashes.Hash(hashes.SHA256())
        digest.update(self.key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo))
        self.kid = b64url(digest.finalize())[:27]
        self.revoked = set()          # uti of revoked access tokens
        self.app_valid_from = {}      # appId (lower) → tokens issued before this are revoked

    @staticmethod
    def _signing_key(state_dir):
        path = os.path.join(state_dir, "token-signing.key")
        if os.path.exists(path):
            with open(path, "rb") as f:
                return serialization.load_pem_private_key(f.read(), None)
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(key.private_bytes(serialization.Encoding.PEM,
                                      serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption()))
        return key

    # --- JWT ----------------------------------------------------------------------------

    def sign(self, claims, typ="JWT"):
        header = {"typ": typ, "alg": "RS256", "kid": self.kid, "x5t": self.kid}
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
            return json.loads(b64url_decode(body))
        except (ValueError, InvalidSignature):
            return None

    def mint_access_token(self, app_id, user_id=None, scopes=(), lifetime=None):
        """An access token for app @app_id; with @user_id a delegated token carrying @scopes
        (delegated scopes), else an app token carrying the app's application permissions."""
        t = self.emu.tenant
        app = t.app(app_id)
        if app is None:
            raise ValueError(f"no app {app_id} in the tenant")
        now = int(time.time())
        lifetime = lifetime or int(t.settings["accessTokenLifetimeSeconds"])
        claims = {"aud": GRAPH_AUDIENCE, "iss": f"https://sts.windows.net/{t.id}/",
                  "iat": now, "nbf": now, "exp": now + lifetime, "appid": app["appId"],
                  "app_displayname": app["displayName"], "tid": t.id, "uti": new_id(),
                  "ver": "1.0", "idtyp": "user" if user_id else "app"}
        if user_id:
            user = t.users[user_id]
            claims.update({"oid": user_id, "upn": user["userPrincipalName"],
                           "name": user.get("displayName"), "scp": " ".join(sorted(scopes))})
        else:
            claims.update({"oid": new_id(), "roles": sorted(app["applicationPermissions"])})
        return self.sign(claims), lifetime

    # --- validation (every Graph request) -------------------------------------------------

    def authenticate(self, req):
        header = req.headers.get("authorization") or ""
        if not header:
            raise unauthenticated("Access token is empty.")
        if not header.lower().startswith("bearer "):
            raise unauthenticated("Access token validation failure. Invalid audience.")
        token = header[7:].strip()
        claims = self.verify(token)
        if claims is None:
            raise unauthenticated("IDX14100: JWT is not well formed, there are no dots (.).\n"
                                  if "." not in token else
                                  "Access token validation failure.")
        t = self.emu.tenant
        if claims.get("aud") != GRAPH_AUDIENCE:
            raise unauthenticated("Access token validation failure. Invalid audience.")
        if claims.get("tid") != t.id:
            raise unauthenticated("Access token validation failure. Invalid issuer.")
        if claims.get("exp", 0) <= time.time():
            raise unauthenticated("Lifetime validation failed, the token is expired.")
        with self.lock:
            if claims.get("uti") in self.revoked or \
                    claims.get("iat", 0) < self.app_valid_from.get(claims.get("appid", "").lower(), 0):
                raise unauthenticated("Access token has been revoked.")
        user_id = claims.get("oid") if claims.get("idtyp") == "user" else None
        if user_id:
            user = t.users.get(user_id)
            if user is None or not user.get("accountEnabled", True):
                raise unauthenticated("Access token validation failure. User not found or "
                                      "disabled.")
            valid_from = user.get("_signInSessionsValidFromTs")
            if valid_from and claims["iat"] < valid_from:
                raise unauthenticated("Access token has been revoked.")
            return Principal("delegated", claims["appid"], frozenset(claims["scp"].split()),
                             user_id, frozenset(user["_roles"]), claims["uti"])
        app = t.app(claims.get("appid"))
        if app is None:
            raise unauthenticated("Access token validation failure. Application not found.")
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
        token, lifetime = auth.mint_access_token(body["appId"], user_id, body.get("scopes", []),
                                                 body.get("lifetime"))
    except (KeyError, ValueError) as e:
        raise GraphError(400, "BadRequest", f"cannot mint: {e}") from None
    return Response(200, {"token_type": "Bearer", "expires_in": lifetime, "access_token": token})


@control_route("POST", r"/_emulator/tokens/revoke")
def revoke_all(req):
    """Revoke every token issued so far to {"appId"}, or to {"user"} (any app)."""
    body = req.json()
    auth = req.emu.auth
    # iat has whole seconds: a token minted in this same second counts as revoked too.
    cutoff = int(time.time()) + 1
    if body.get("appId"):
        with auth.lock:
            auth.app_valid_from[body["appId"].lower()] = cutoff
    if body.get("user"):
        req.emu.tenant.user(body["user"])["_signInSessionsValidFromTs"] = cutoff
    return Response(204, None)
