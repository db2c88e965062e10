"""FIDO2 security keys provisioned on behalf of a user (reference §2): creationOptions,
registration with a WebAuthn attestation verified as Entra does, list, get, delete.

Every refusal of a registration is a 400 badRequest whose message says which check failed,
and leaves the tenant unchanged (the challenge stays unused).
"""

import base64
import binascii
import datetime
import hashlib
import json
import os
import re
import uuid

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from fido2 import cbor
from fido2.attestation import InvalidData, InvalidSignature, PackedAttestation
from fido2.attestation.base import verify_x509_chain
from fido2.ctap2 import AuthenticatorData

from ..core import GraphError, Response, bad_request, method_not_allowed
from .methods import (context, is_self, iso_ts, method_perms,
                      method_view, no_query_options, now_ts, policy_targets_user, target_user,
                      user_route)

RP_ID = "login.microsoft.com"
RP_NAME = "Microsoft"
DEFAULT_ORIGINS = ["https://login.microsoft.com"]
FIDO2_READ = method_perms("fido2", False)
FIDO2_WRITE = method_perms("fido2", True)
SEG = "fido2Methods"

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_AAGUIDS_FILE = os.path.normpath(os.path.join(
    HERE, "..", "..", "..", "..", "..", "shared", "reference", "keys", "aaguids.json"))
# Used when the AAGUID table file is not there.
BUILTIN_MODELS = {
    "cb69481e-8ff7-4039-93ec-0a2729a154a8": "YubiKey 5 Series",
    "ee882879-721c-4913-9775-3dfcce97072a": "YubiKey 5 Series",
    "fa2b99dc-9e39-4257-8f92-4a30d23c4118": "YubiKey 5 Series with NFC",
    "2fc0579f-8113-47ea-b116-bb5a8db9202a": "YubiKey 5 Series with NFC",
    "a4e9fc6d-4cbe-4758-b8ba-37598bb5bbaa": "Security Key NFC by Yubico",
    "149a2021-8ef6-4133-96b8-81f8d5b7f1f5": "Security Key by Yubico with NFC",
    "f8a011f3-8c0a-4d15-8006-17111f9edc7d": "Security Key by Yubico",
}
_model_cache = {}


def _fail(message):
    return GraphError(400, "badRequest", message)


def b64url(data):
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def b64_lenient(text):
    """base64url or standard base64, padding optional (Graph accepted powershellYK's standard
    base64); None if it is neither."""
    if not isinstance(text, str) or not re.fullmatch(r"[A-Za-z0-9+/_-]*={0,2}", text):
        return None
    s = text.rstrip("=").replace("-", "+").replace("_", "/")
    if len(s) % 4 == 1:
        return None
    try:
        return base64.b64decode(s + "=" * (-len(s) % 4), validate=True)
    except (binascii.Error, ValueError):
        return None


def _encode_id(raw, how, index):
    std = base64.b64encode(raw).decode()
    if how == "base64":
        return std
    if how == "mixed":
        return std if index % 2 == 0 else b64url(raw)
    if how == "corrupt":          # issue #28: ids with stray trailing characters
        return std + "!" if index % 2 == 0 else b64url(raw)
    return b64url(raw)


def model_for(emu, aaguid):
    path = emu.tenant.settings.get("aaguidsFile") or DEFAULT_AAGUIDS_FILE
    if path not in _model_cache:
        table = {}
        try:
            with open(path, encoding="utf-8") as f:
                data = json.load(f)
            for k, v in data.get("aaguids", {}).items():
                if isinstance(v, dict) and v.get("name"):
                    table[k.lower()] = v["name"].strip()
        except (OSError, ValueError, AttributeError):
            table = dict(BUILTIN_MODELS)
        _model_cache[path] = table
    return _model_cache[path].get(aaguid.lower())


def _challenges(emu):
    """challenge string → {user, expires, used}: every challenge issued, server-side."""
    st = emu.__dict__.setdefault("_fido2_challenges", {})
    if len(st) > 5000:
        cutoff = now_ts(emu) - 86400
        for k in [k for k, v in st.items() if v["used"] or v["expires"] < cutoff]:
            del st[k]
    return st


def _new_challenge():
    """A long opaque challenge like Entra's: base64url of the ASCII text of a compact JWE
    (header with an x5c, encrypted key, IV, ciphertext, tag), about 3 KB decoded."""
    header = {"alg": "RSA-OAEP-256", "enc": "A256GCM",
              "x5c": [base64.b64encode(os.urandom(700)).decode()]}
    parts = [b64url(json.dumps(header, separators=(",", ":")).encode()),
             b64url(os.urandom(256)), b64url(os.urandom(12)), b64url(os.urandom(900)),
             b64url(os.urandom(16))]
    return b64url(".".join(parts).encode("ascii"))


def _user_handle(user):
    if "_fido2UserHandle" not in user:
        user["_fido2UserHandle"] = b64url(b"OF:" + os.urandom(45))
    return user["_fido2UserHandle"]


def _check_policy(req, user):
    """The FIDO2 method policy must target the user and allow self-service setup
    (reference §2.6). Refusals are 400 badRequest (documented choice)."""
    t = req.emu.tenant
    pol = t.policies["fido2"]
    if pol.get("state") != "enabled":
        raise _fail("The FIDO2 security key (passkey) authentication method is disabled in "
                    "the tenant's authentication methods policy.")
    if not policy_targets_user(t, pol, user):
        raise _fail("The FIDO2 security key (passkey) authentication method is not enabled "
                    "for this user by the authentication methods policy.")
    if not pol.get("isSelfServiceRegistrationAllowed", False):
        raise _fail("FIDO2 provisioning requires 'Allow self-service set up' "
                    "(isSelfServiceRegistrationAllowed) in the FIDO2 method policy.")


def _credential_ids(tenant, users=None):
    ids = set()
    for u in (users if users is not None else tenant.users.values()):
        for m in u["_methods"]:
            if m["_type"] == "fido2" and m.get("_credentialId"):
                raw = b64_lenient(m["_credentialId"])
                if raw is not None:
                    ids.add(raw)
    return ids


# --- creationOptions -----------------------------------------------------------------------

@user_route("GET", rf"/authentication/{SEG}/creationOptions(?:\((?P<fnargs>[^)]*)\))?",
            perms=FIDO2_WRITE)
def creation_options(req):
    user = target_user(req, FIDO2_WRITE, write=True)
    # Reported behaviour (reference §2.1): the query-string form and calls on oneself are 405.
    if any(k.lower() == "challengetimeoutinminutes" for k in req.query):
        raise method_not_allowed()
    if is_self(req, user):
        raise method_not_allowed()
    no_query_options(req)
    t = req.emu.tenant
    minutes = int(t.settings.get("fido2ChallengeTimeoutMinutes", 5) or 5)
    args = (req.params.get("fnargs") or "").strip()
    if args:
        if req.version == "v1.0":
            raise bad_request("The function 'microsoft.graph.creationOptions' has no parameter "
                              "'challengeTimeoutInMinutes' in v1.0: the challenge timeout is "
                              "fixed at 5 minutes. Use beta for a custom timeout.", "BadRequest")
        m = re.fullmatch(r"challengeTimeoutInMinutes=(-?\d+)", args)
        if not m:
            raise bad_request(f"Invalid function parameters '{args}' for "
                              "'microsoft.graph.creationOptions'; expected "
                              "challengeTimeoutInMinutes={{n}}.", "BadRequest")
        minutes = int(m.group(1))
        if not 5 <= minutes <= 43200:
            raise bad_request("challengeTimeoutInMinutes must be between 5 and 43200.",
                              "badRequest")
    _check_policy(req, user)
    challenge = _new_challenge()
    expires = now_ts(req.emu) + 60 * minutes
    _challenges(req.emu)[challenge] = {"user": user["id"], "expires": expires, "used": False}
    how = t.settings.get("fido2ExcludeIdEncoding", "base64url")
    exclude = []
    for i, m in enumerate(x for x in user["_methods"] if x["_type"] == "fido2"):
        raw = b64_lenient(m.get("_credentialId") or "")
        if raw:
            exclude.append({"type": "public-key", "id": _encode_id(raw, how, i),
                            "transports": list(m.get("_transports", []))})
    return {
        "@odata.context": context(req, "microsoft.graph.webauthnCredentialCreationOptions"),
        "challengeTimeoutDateTime": iso_ts(expires),
        "publicKey": {
            "rp": {"id": RP_ID, "name": RP_NAME},
            "user": {"id": _user_handle(user), "name": user["userPrincipalName"],
                     "displayName": user.get("displayName")},
            "challenge": challenge,
            "pubKeyCredParams": [{"type": "public-key", "alg": -7},
                                 {"type": "public-key", "alg": -257}],
            "timeout": 60000,
            "excludeCredentials": exclude,
            "authenticatorSelection": {"authenticatorAttachment": "cross-platform",
                                       "requireResidentKey": True,
                                       "userVerification": "required"},
            "attestation": "direct",
            "extensions": {"hmacCreateSecret": True, "enforceCredentialProtectionPolicy": True,
                           "credentialProtectionPolicy": "userVerificationOptional"},
        },
    }


# List, get and delete are the generic typed-collection routes in methods.py.


# --- registration ------------------------------------------------------------------------------

READ_ONLY = {"id", "aaGuid", "model", "attestationCertificates", "attestationLevel",
             "passkeyType", "createdDateTime", "lastUsedDateTime"}


def _unknown_property(name, typ):
    return bad_request(f"The property '{name}' does not exist on type 'microsoft.graph.{typ}'. "
                       "Make sure to only use property names that are defined by the type or "
                       "mark the type as open type.", "BadRequest")


def _has_odata_type(obj):
    if isinstance(obj, dict):
        return any(k == "@odata.type" or _has_odata_type(v) for k, v in obj.items())
    if isinstance(obj, list):
        return any(_has_odata_type(v) for v in obj)
    return False


MISSING = ("The request is missing a fido2AuthenticationMethod entity with a displayName and "
           "publicKeyCredential.")


def _parse_body(body):
    """(displayName, id bytes, clientDataJSON bytes, attestationObject bytes) or 400."""
    if not isinstance(body, dict):
        raise _fail(MISSING)
    if _has_odata_type(body):
        raise _fail(MISSING + " '@odata.type' annotations are not accepted in the body.")
    for k in body:
        if k in READ_ONLY:
            raise bad_request(f"The property '{k}' is read-only and cannot be set.",
                              "BadRequest")
        if k not in ("displayName", "publicKeyCredential"):
            raise _unknown_property(k, "fido2AuthenticationMethod")
    name, pkc = body.get("displayName"), body.get("publicKeyCredential")
    if name is None or not isinstance(pkc, dict):
        raise _fail(MISSING)
    if not isinstance(name, str) or not 1 <= len(name) <= 30 or not name.strip():
        raise _fail("Invalid displayName: it must be 1 to 30 characters long.")
    for k in pkc:
        if k not in ("id", "response", "clientExtensionResults"):
            raise _unknown_property(k, "webauthnPublicKeyCredential")
    resp = pkc.get("response")
    if not isinstance(pkc.get("id"), str) or not isinstance(resp, dict):
        raise _fail("publicKeyCredential must have an 'id' string and a 'response' object.")
    for k in resp:
        if k not in ("clientDataJSON", "attestationObject"):
            raise _unknown_property(k, "webauthnAuthenticatorAttestationResponse")
    out = []
    for label, text in (("publicKeyCredential.id", pkc["id"]),
                        ("response.clientDataJSON", resp.get("clientDataJSON")),
                        ("response.attestationObject", resp.get("attestationObject"))):
        raw = b64_lenient(text)
        if not raw:
            raise _fail(f"{label} is missing or is not base64url (or base64) encoded.")
        out.append(raw)
    return name, out[0], out[1], out[2]


def _check_client_data(req, user, raw):
    try:
        cd = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        cd = None
    if not isinstance(cd, dict):
        raise _fail("clientDataJSON is not a JSON object.")
    if cd.get("type") != "webauthn.create":
        raise _fail(f"clientDataJSON.type is '{cd.get('type')}', expected 'webauthn.create'.")
    ch = cd.get("challenge")
    if not isinstance(ch, str) or not re.fullmatch(r"[A-Za-z0-9_-]+", ch):
        raise _fail("clientDataJSON.challenge is missing or not base64url without padding.")
    origins = req.emu.tenant.settings.get("fido2AllowedOrigins") or DEFAULT_ORIGINS
    if cd.get("origin") not in origins:
        raise _fail(f"clientDataJSON.origin '{cd.get('origin')}' is not allowed; expected "
                    f"{' or '.join(origins)}.")
    if "crossOrigin" in cd and cd["crossOrigin"] is not False:
        raise _fail("clientDataJSON.crossOrigin must be false.")
    entry = _challenges(req.emu).get(ch)
    if entry is None:
        raise _fail("The challenge in clientDataJSON was not issued by this service.")
    if entry["user"] != user["id"]:
        raise _fail("The challenge in clientDataJSON was issued for a different user.")
    if entry["used"]:
        raise _fail("The challenge in clientDataJSON has already been used.")
    if now_ts(req.emu) >= entry["expires"]:
        raise _fail("The challenge in clientDataJSON has expired (challengeTimeoutDateTime "
                    f"{iso_ts(entry['expires'])}).")
    return entry


def _parse_attestation(raw):
    try:
        obj = cbor.decode(raw)
    except Exception:  # fido2.cbor raises assorted errors on garbage
        raise _fail("attestationObject is not valid CBOR.") from None
    if not isinstance(obj, dict) or set(obj) != {"fmt", "attStmt", "authData"}:
        raise _fail("attestationObject must be a CBOR map with exactly the text keys 'fmt', "
                    "'attStmt' and 'authData'.")
    fmt, stmt, ad = obj["fmt"], obj["attStmt"], obj["authData"]
    if not isinstance(fmt, str) or not isinstance(stmt, dict) or not isinstance(ad, bytes):
        raise _fail("attestationObject has a fmt, attStmt or authData of the wrong type.")
    try:
        auth_data = AuthenticatorData(ad)
    except Exception:
        raise _fail("attestationObject.authData is malformed.") from None
    return fmt, stmt, auth_data


def _check_public_key(cose):
    alg = cose.get(3)
    if alg not in (-7, -257) or getattr(cose, "ALGORITHM", None) != alg:
        raise _fail(f"The credential public key algorithm {cose.get(3)} is not supported; "
                    "use ES256 (-7) or RS256 (-257).")
    try:
        if alg == -7:
            if cose.get(1) != 2 or cose.get(-1) != 1:
                raise ValueError("not an EC2 P-256 key")
            ec.EllipticCurvePublicNumbers(int.from_bytes(cose[-2], "big"),
                                          int.from_bytes(cose[-3], "big"),
                                          ec.SECP256R1()).public_key()
        else:
            if cose.get(1) != 3:
                raise ValueError("not an RSA key")
            rsa.RSAPublicNumbers(int.from_bytes(cose[-2], "big"),
                                 int.from_bytes(cose[-1], "big")).public_key()
    except (KeyError, TypeError, ValueError) as e:
        raise _fail(f"The credential public key is invalid: {e}.") from None


def _x5c_trusted(req, x5c):
    """Whether the x5c chain is trusted. With settings.fido2AttestationRoots (PEM list) the
    chain must lead to one of them; without, the emulator has no FIDO MDS and trusts any
    chain whose leaf is currently valid."""
    try:
        leaf = x509.load_der_x509_certificate(x5c[0])
    except ValueError:
        return False
    now = datetime.datetime.utcfromtimestamp(now_ts(req.emu))
    if not leaf.not_valid_before <= now <= leaf.not_valid_after:
        return False
    roots = req.emu.tenant.settings.get("fido2AttestationRoots") or []
    if not roots:
        return True
    for pem in roots:
        try:
            root = x509.load_pem_x509_certificate(pem.encode())
            der = root.public_bytes(serialization.Encoding.DER)
            chain = list(x5c) if x5c[-1] == der else list(x5c) + [der]
            verify_x509_chain(chain)
            return True
        except Exception:
            continue
    return False


@user_route("POST", rf"/authentication/{SEG}", perms=FIDO2_WRITE)
def register_fido2(req):
    user = target_user(req, FIDO2_WRITE, write=True)
    if is_self(req, user):
        raise method_not_allowed()
    t = req.emu.tenant
    name, cred_id, cdj, att_raw = _parse_body(req.json())
    _check_policy(req, user)
    entry = _check_client_data(req, user, cdj)
    fmt, stmt, auth_data = _parse_attestation(att_raw)
    if auth_data.rp_id_hash != hashlib.sha256(RP_ID.encode()).digest():
        raise _fail(f"The RP ID hash in authenticator data does not match '{RP_ID}'.")
    if not auth_data.is_user_present():
        raise _fail("The user present (UP) flag is not set in authenticator data.")
    if not auth_data.is_user_verified():
        raise _fail("The user verified (UV) flag is not set in authenticator data; user "
                    "verification is required.")
    if not auth_data.is_attested() or auth_data.credential_data is None:
        raise _fail("Authenticator data has no attested credential data (AT flag not set).")
    acd = auth_data.credential_data
    if acd.credential_id != cred_id:
        raise _fail("publicKeyCredential.id does not match the credential ID in "
                    "authenticator data.")
    _check_public_key(acd.public_key)
    cdh = hashlib.sha256(cdj).digest()
    x5c = []
    if fmt == "packed":
        try:
            result = PackedAttestation().verify(stmt, auth_data, cdh)
        except InvalidSignature:
            raise _fail("The packed attestation signature is invalid.") from None
        except (InvalidData, NotImplementedError) as e:
            raise _fail(f"The packed attestation statement is invalid: {e}") from None
        x5c = list(result.trust_path or [])
    elif fmt == "none":
        if stmt != {}:
            raise _fail("A 'none' attestation must have an empty attStmt.")
    else:
        raise _fail(f"Attestation format '{fmt}' is not supported; only 'packed' and 'none' "
                    "are accepted.")
    attested = bool(x5c) and _x5c_trusted(req, x5c)
    pol = t.policies["fido2"]
    if pol.get("isAttestationEnforced") and not attested:
        kind = ("an untrusted attestation certificate chain" if x5c else
                "self attestation" if fmt == "packed" else "no attestation ('none')")
        raise _fail(f"The FIDO2 policy enforces attestation, but the credential has {kind}.")
    aaguid = str(uuid.UUID(bytes=bytes(acd.aaguid)))
    kr = pol.get("keyRestrictions") or {}
    if kr.get("isEnforced"):
        listed = aaguid in {str(a).lower() for a in kr.get("aaGuids") or []}
        if kr.get("enforcementType") == "allow" and not listed:
            raise _fail(f"The security key model (AAGUID {aaguid}) is not in the FIDO2 "
                        "policy's list of allowed keys.")
        if kr.get("enforcementType") == "block" and listed:
            raise _fail(f"The security key model (AAGUID {aaguid}) is blocked by the FIDO2 "
                        "policy's key restrictions.")
    if cred_id in _credential_ids(t):
        raise _fail("This credential is already registered as a FIDO2 security key.")
    m = t.add_method(user, {
        "type": "fido2", "displayName": name, "aaGuid": aaguid,
        "model": model_for(req.emu, aaguid),
        "attestationCertificates": [hashlib.sha1(c).hexdigest() for c in x5c],
        "attestationLevel": "attested" if attested else "notAttested",
        "passkeyType": "deviceBound",
        "_credentialId": b64url(cred_id),
        "_publicKey": b64url(cbor.encode(dict(acd.public_key))),
        "_signCount": auth_data.counter,
        "_attestationFormat": fmt,
        "_transports": [],
    })
    entry["used"] = True
    body = dict({"@odata.context": context(
        req, f"users('{user['id']}')/authentication/{SEG}/$entity")},
        **method_view(req, user, m, with_type=True))
    return Response(201, body, {"Location": f"{req.base_url()}/users/{user['id']}/"
                                            f"authentication/{SEG}/{m['id']}"})


__all__ = ["b64_lenient", "b64url", "model_for", "RP_ID"]
