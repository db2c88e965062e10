#!/usr/bin/python3
"""verify-credential: re-verifies a credential keydesk made, independently, with python3-fido2
(0.9.1, the Debian package; run it with /usr/bin/python3), the way Entra would.

  verify-credential.py DIR [DIR ...]

DIR holds what keydesk would POST to Graph plus what the test expects:
  attestation_object.bin   the attestationObject bytes (CBOR)
  client_data.json         the clientDataJSON bytes
  credential_id.bin        the credential id keydesk reported
  meta.json                {"rp_id", "challenge" (base64url), "origin", "attestation": "full"|"self",
                            "aaguid" (dashed hex), "ca_pem" (path, for "full"), "uv": true|false}

Checks, each explicit (testinfra.md §3 pitfall: Fido2Server alone does NOT check attestation):
  - Fido2Server.register_complete: clientDataJSON type, challenge and origin, rp id hash, UP (and UV
    when required), with verify_attestation= a callback that runs PackedAttestation().verify;
  - attestation type BASIC with an x5c chain that ends at the test CA ("full"), or SELF ("self");
  - AAGUID and credential id in authData are the ones keydesk reported.
Then the tampered cases must all be REFUSED: a flipped signature byte, a wrong rp id, a wrong
challenge, a wrong origin, and ("full") a chain checked against another CA.
Prints one line per check; exit status 0 only when everything holds.
"""

import json
import os
import sys

from cryptography import x509
from cryptography.hazmat.backends import default_backend
from cryptography.hazmat.primitives.asymmetric import ec

from fido2 import cbor
from fido2.attestation import AttestationType, PackedAttestation
from fido2.client import ClientData
from fido2.ctap2 import AttestationObject
from fido2.server import Fido2Server
from fido2.utils import websafe_decode
from fido2.webauthn import PublicKeyCredentialRpEntity


def load(path, mode="rb"):
    with open(path, mode) as f:
        return f.read()


def verify_chain(x5c, ca_pem):
    """Each certificate signed by the next, the last by the CA; all valid now."""
    certs = [x509.load_der_x509_certificate(c, default_backend()) for c in x5c]
    ca = x509.load_pem_x509_certificate(ca_pem, default_backend())
    chain = certs + [ca]
    for cert, issuer in zip(chain, chain[1:]):
        if cert.issuer != issuer.subject:
            raise ValueError("issuer name does not match: %s" % cert.issuer.rfc4514_string())
        issuer.public_key().verify(cert.signature, cert.tbs_certificate_bytes,
                                   ec.ECDSA(cert.signature_hash_algorithm))
    ca.public_key().verify(ca.signature, ca.tbs_certificate_bytes,
                           ec.ECDSA(ca.signature_hash_algorithm))


def register(att_obj, client_data_bytes, meta, rp_id=None, challenge=None, ca_pem=None,
             any_origin=False):
    """Fido2Server.register_complete with an explicit attestation check; returns auth_data."""
    expected_type = AttestationType.BASIC if meta["attestation"] == "full" else AttestationType.SELF
    seen = {}

    def verifier(attestation_object, client_data_hash):
        if attestation_object.fmt != "packed":
            raise ValueError("fmt is %r, not packed" % attestation_object.fmt)
        result = PackedAttestation().verify(attestation_object.att_statement,
                                            attestation_object.auth_data, client_data_hash)
        if result.attestation_type != expected_type:
            raise ValueError("attestation type %s, expected %s"
                             % (result.attestation_type, expected_type))
        if expected_type == AttestationType.BASIC:
            verify_chain(attestation_object.att_statement["x5c"], ca_pem)
        seen["type"] = result.attestation_type

    rp = PublicKeyCredentialRpEntity(rp_id or meta["rp_id"], "Microsoft")
    server = Fido2Server(rp, attestation="direct", verify_attestation=verifier,
                         verify_origin=(lambda origin: True) if any_origin else None)
    user = {"id": b"OF:ada-object-id", "name": "ada@contoso.com", "displayName": "Ada Lovelace"}
    _, state = server.register_begin(
        user, challenge=challenge or websafe_decode(meta["challenge"]),
        user_verification="required" if meta.get("uv", True) else "discouraged")
    client_data = ClientData(client_data_bytes)
    auth_data = server.register_complete(state, client_data, att_obj)
    if "type" not in seen:
        raise ValueError("the attestation callback did not run")
    return auth_data


def refused(name, fn):
    try:
        fn()
    except Exception as e:  # noqa: BLE001 - any refusal counts, the point is that it is refused
        print("REFUSED as it must be: %s (%s: %s)" % (name, type(e).__name__, e))
        return True
    print("FAIL: tampered case accepted: %s" % name)
    return False


def main(argv):
    if len(argv) < 2:
        sys.stderr.write(__doc__)
        return 2
    failed = [d for d in argv[1:] if verify_dir(d) != 0]
    print("verify-credential: %s (%d credential(s), %d failed)"
          % ("PASS" if not failed else "FAIL", len(argv) - 1, len(failed)))
    return 1 if failed else 0


def verify_dir(d):
    print("== %s" % d)
    meta = json.loads(load(os.path.join(d, "meta.json"), "r"))
    raw = load(os.path.join(d, "attestation_object.bin"))
    cdj = load(os.path.join(d, "client_data.json"))
    cred_id = load(os.path.join(d, "credential_id.bin"))
    ca_pem = load(meta["ca_pem"]) if meta["attestation"] == "full" else None
    ok = True

    # The attestationObject is exactly one CBOR map {"fmt", "attStmt", "authData"}, in that order.
    decoded, rest = cbor.decode_from(raw)
    if rest or list(decoded.keys()) != ["fmt", "attStmt", "authData"]:
        print("FAIL: attestationObject is not {fmt, attStmt, authData}: %r" % list(decoded.keys()))
        return 1
    att = AttestationObject(raw)
    cd = json.loads(cdj)
    if list(cd.keys()) != ["type", "challenge", "origin", "crossOrigin"]:
        print("FAIL: clientDataJSON member order %r" % list(cd.keys()))
        return 1
    if cd["origin"] != meta["origin"] or cd["crossOrigin"] is not False:
        print("FAIL: clientDataJSON origin %r" % cd["origin"])
        return 1

    auth_data = register(att, cdj, meta, ca_pem=ca_pem)
    cred = auth_data.credential_data
    if cred.credential_id != cred_id:
        print("FAIL: credential id in authData differs from the one keydesk reported")
        return 1
    aaguid = cred.aaguid.hex()
    aaguid = "-".join([aaguid[:8], aaguid[8:12], aaguid[12:16], aaguid[16:20], aaguid[20:]])
    if aaguid != meta["aaguid"]:
        print("FAIL: AAGUID %s, keydesk said %s" % (aaguid, meta["aaguid"]))
        return 1
    flags = auth_data.flags
    print("OK: %s attestation verified; rp id hash, challenge, origin, flags 0x%02x, AAGUID %s"
          % (meta["attestation"], flags, aaguid))

    # Tampered cases.
    def flipped_signature():
        stmt = dict(att.att_statement)
        sig = bytearray(stmt["sig"])
        sig[len(sig) // 2] ^= 0x01
        stmt["sig"] = bytes(sig)
        register(AttestationObject.create(att.fmt, att.auth_data, stmt), cdj, meta, ca_pem=ca_pem)

    def flipped_authdata():
        ad = bytearray(att.auth_data)
        ad[33] ^= 0x01  # the signature counter
        register(AttestationObject.create(att.fmt, bytes(ad), att.att_statement), cdj, meta,
                 ca_pem=ca_pem)

    ok &= refused("flipped signature byte", flipped_signature)
    ok &= refused("flipped authData byte", flipped_authdata)
    # Any origin accepted here, so that it is the rp id hash in authData that refuses.
    ok &= refused("wrong rp id", lambda: register(att, cdj, meta, rp_id="login.evil.example",
                                                  ca_pem=ca_pem, any_origin=True))
    ok &= refused("wrong challenge", lambda: register(att, cdj, meta, challenge=os.urandom(32),
                                                      ca_pem=ca_pem))
    wrong_origin = cdj.replace(meta["origin"].encode(), b"https://evil.example")
    ok &= refused("wrong origin", lambda: register(att, wrong_origin, meta, ca_pem=ca_pem))
    if meta["attestation"] == "full":
        from cryptography.hazmat.primitives import hashes, serialization
        import datetime
        key = ec.generate_private_key(ec.SECP256R1(), default_backend())
        name = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "Other CA")])
        now = datetime.datetime.utcnow()
        other = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
                 .public_key(key.public_key()).serial_number(1)
                 .not_valid_before(now - datetime.timedelta(days=1))
                 .not_valid_after(now + datetime.timedelta(days=1))
                 .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                 .sign(key, hashes.SHA256(), default_backend()))
        other_pem = other.public_bytes(serialization.Encoding.PEM)
        ok &= refused("chain checked against another CA",
                      lambda: register(att, cdj, meta, ca_pem=other_pem))
    else:
        # A self-attested credential must not pass as full attestation.
        full_meta = dict(meta, attestation="full")
        ok &= refused("self attestation presented as full",
                      lambda: register(att, cdj, full_meta, ca_pem=b""))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
