"""fido2util: make real WebAuthn registration responses for the Graph emulator's FIDO2
provisioning API (POST /users/{id}/authentication/fido2Methods), the way keydesk does with
libfido2, using python3-fido2 0.9.1 and cryptography (Debian's /usr/bin/python3).

    status, _, options = emu.get(f"/v1.0/users/{uid}/authentication/fido2Methods/creationOptions",
                                 token=token)
    cred = fido2util.make_credential(options)                      # packed self attestation
    ca = fido2util.AttestationCA()
    cred = fido2util.make_credential(options, attestation="x5c", ca=ca)   # packed with x5c
    emu.post(f"/v1.0/users/{uid}/authentication/fido2Methods", cred.body, token=token)

Knobs for negative tests: rp_id, origin, challenge, client_data (extra/overriding clientDataJSON
members), flags, tamper_signature, alg (-7 ES256, -257 RS256, -8 EdDSA), credential_id,
body_id (a different publicKeyCredential.id), encoding ("base64url" or "base64"), fmt.
"""

import base64
import datetime
import hashlib
import json
import os
from dataclasses import dataclass, field

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import NameOID

from fido2 import cbor
from fido2.cose import ES256, RS256
from fido2.ctap2 import AttestedCredentialData, AuthenticatorData

RP_ID = "login.microsoft.com"
ORIGIN = "https://login.microsoft.com"
YUBIKEY_5_NFC = bytes.fromhex("cb69481e8ff7403993ec0a2729a154a8")      # YubiKey 5 Series
SECURITY_KEY_NFC = bytes.fromhex("a4e9fc6d4cbe4758b8ba37598bb5bbaa")   # Security Key NFC
FLAG_UP, FLAG_UV, FLAG_AT, FLAG_ED = 0x01, 0x04, 0x40, 0x80
OID_AAGUID = x509.ObjectIdentifier("1.3.6.1.4.1.45724.1.1.4")


def b64url(data):
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def b64_decode(text):
    """Lenient: base64url or standard base64, padding optional (as keydesk must decode
    excludeCredentials ids). Raises ValueError for anything else."""
    s = text.strip().rstrip("=").replace("-", "+").replace("_", "/")
    return base64.b64decode(s + "=" * (-len(s) % 4), validate=True)


def _name(cn, ou=None):
    attrs = [x509.NameAttribute(NameOID.COUNTRY_NAME, "US"),
             x509.NameAttribute(NameOID.ORGANIZATION_NAME, "keydesk test")]
    if ou:
        attrs.append(x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, ou))
    attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, cn))
    return x509.Name(attrs)


class AttestationCA:
    """A test attestation root; issue() makes packed-conformant attestation certificates
    (C, O, OU "Authenticator Attestation", CN; CA:false; the AAGUID extension)."""

    def __init__(self, cn="keydesk test attestation root"):
        self.key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.utcnow()
        self.cert = (x509.CertificateBuilder()
                     .subject_name(_name(cn)).issuer_name(_name(cn))
                     .public_key(self.key.public_key())
                     .serial_number(x509.random_serial_number())
                     .not_valid_before(now - datetime.timedelta(days=1))
                     .not_valid_after(now + datetime.timedelta(days=3650))
                     .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
                     .sign(self.key, hashes.SHA256()))

    @property
    def pem(self):
        return self.cert.public_bytes(serialization.Encoding.PEM).decode()

    @property
    def der(self):
        return self.cert.public_bytes(serialization.Encoding.DER)

    def issue(self, aaguid, cn="keydesk test authenticator", days=3650):
        """(private key, DER certificate) for an authenticator model @aaguid."""
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.utcnow()
        cert = (x509.CertificateBuilder()
                .subject_name(_name(cn, "Authenticator Attestation"))
                .issuer_name(self.cert.subject)
                .public_key(key.public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(now - datetime.timedelta(days=1))
                .not_valid_after(now + datetime.timedelta(days=days))
                .add_extension(x509.BasicConstraints(ca=False, path_length=None), True)
                .add_extension(x509.UnrecognizedExtension(OID_AAGUID, b"\x04\x10" + aaguid),
                               False)
                .sign(self.key, hashes.SHA256()))
        return key, cert.public_bytes(serialization.Encoding.DER)


@dataclass
class Credential:
    body: dict                     # the POST …/fido2Methods request body
    credential_id: bytes
    private_key: object            # the credential's private key (cryptography)
    client_data_json: bytes
    attestation_object: bytes
    auth_data: bytes
    aaguid: bytes
    x5c: list = field(default_factory=list)

    @property
    def aaguid_str(self):
        h = self.aaguid.hex()
        return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def _sign(key, data):
    if isinstance(key, rsa.RSAPrivateKey):
        return key.sign(data, padding.PKCS1v15(), hashes.SHA256())
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return key.sign(data, ec.ECDSA(hashes.SHA256()))
    return key.sign(data)                      # Ed25519


def make_credential(options, *, attestation="self", ca=None, aaguid=YUBIKEY_5_NFC, alg=-7,
                    credential_id=None, body_id=None, rp_id=None, origin=ORIGIN,
                    challenge=None, client_data=None, flags=None, tamper_signature=False,
                    display_name="YubiKey 5 NFC", encoding="base64url", fmt=None,
                    extensions=None, client_extension_results=None, counter=1):
    """A registration for @options (the creationOptions response, or its publicKey member).

    attestation: "self" (packed, signed by the credential key), "x5c" (packed, signed by an
    attestation key that @ca certifies; a CA is made if none is given) or "none"."""
    pk = options.get("publicKey", options)
    rp_id = rp_id or pk["rp"]["id"]
    if challenge is None:
        challenge = b64url(b64_decode(pk["challenge"]))
    cd = {"type": "webauthn.create", "challenge": challenge, "origin": origin,
          "crossOrigin": False}
    cd.update(client_data or {})
    cd = {k: v for k, v in cd.items() if v is not None}
    cdj = json.dumps(cd, separators=(",", ":")).encode()
    cdh = hashlib.sha256(cdj).digest()

    if alg == -7:
        key = ec.generate_private_key(ec.SECP256R1())
        cose = ES256.from_cryptography_key(key.public_key())
    elif alg == -257:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        cose = RS256.from_cryptography_key(key.public_key())
    elif alg == -8:
        from cryptography.hazmat.primitives.asymmetric import ed25519
        from fido2.cose import EdDSA
        key = ed25519.Ed25519PrivateKey.generate()
        cose = EdDSA.from_cryptography_key(key.public_key())
    else:
        raise ValueError(f"unsupported alg {alg}")
    cred_id = credential_id if credential_id is not None else os.urandom(48)
    acd = AttestedCredentialData.create(aaguid, cred_id, cose)
    if extensions is None:
        extensions = {"credProtect": 1, "hmac-secret": True}
    if flags is None:
        flags = FLAG_UP | FLAG_UV | FLAG_AT | (FLAG_ED if extensions else 0)
    ad = bytes(AuthenticatorData.create(hashlib.sha256(rp_id.encode()).digest(), flags,
                                        counter, acd,
                                        extensions if flags & FLAG_ED else None))
    x5c = []
    if attestation == "none":
        stmt = {}
        fmt = fmt or "none"
    elif attestation == "self":
        stmt = {"alg": alg, "sig": _sign(key, ad + cdh)}
        fmt = fmt or "packed"
    elif attestation == "x5c":
        ca = ca or AttestationCA()
        att_key, att_der = ca.issue(aaguid)
        x5c = [att_der]
        stmt = {"alg": -7, "sig": _sign(att_key, ad + cdh), "x5c": x5c}
        fmt = fmt or "packed"
    else:
        raise ValueError(f"unknown attestation {attestation!r}")
    if tamper_signature and "sig" in stmt:
        stmt["sig"] = stmt["sig"][:-1] + bytes([stmt["sig"][-1] ^ 0x01])
    att_obj = cbor.encode({"fmt": fmt, "attStmt": stmt, "authData": ad})

    def enc(b):
        return base64.b64encode(b).decode() if encoding == "base64" else b64url(b)
    body = {"displayName": display_name,
            "publicKeyCredential": {
                "id": enc(body_id if body_id is not None else cred_id),
                "response": {"clientDataJSON": enc(cdj), "attestationObject": enc(att_obj)},
                "clientExtensionResults": ({} if client_extension_results is None
                                           else client_extension_results)}}
    return Credential(body, cred_id, key, cdj, att_obj, ad, aaguid, x5c)
