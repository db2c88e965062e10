"""A private test CA and a server certificate for the emulator's host names.

Made once per state directory and reused while valid, so a client configured with the CA file
keeps working across emulator restarts. TLS verification stays on everywhere: clients trust
this CA explicitly, they never skip the check.
"""

import datetime
import ipaddress
import os

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

SERVER_NAMES = ["localhost", "graph.microsoft.com", "login.microsoftonline.com",
                "login.microsoft.com"]
SERVER_IPS = ["127.0.0.1", "::1"]
VALID_DAYS = 30
RENEW_BEFORE_DAYS = 2


def _write_private(path, data):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)


def _still_valid(cert_path):
    try:
        with open(cert_path, "rb") as f:
            cert = x509.load_pem_x509_certificate(f.read())
    except (OSError, ValueError):
        return False
    left = cert.not_valid_after - datetime.datetime.utcnow()
    return left > datetime.timedelta(days=RENEW_BEFORE_DAYS)


def ensure(state_dir):
    """Returns (ca_pem_path, server_cert_path, server_key_path), creating them if needed."""
    ca_path = os.path.join(state_dir, "ca.pem")
    ca_key_path = os.path.join(state_dir, "ca.key")
    cert_path = os.path.join(state_dir, "server.pem")
    key_path = os.path.join(state_dir, "server.key")
    if all(os.path.exists(p) for p in (ca_path, ca_key_path, cert_path, key_path)) \
            and _still_valid(ca_path) and _still_valid(cert_path):
        return ca_path, cert_path, key_path

    now = datetime.datetime.utcnow() - datetime.timedelta(minutes=5)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "keydesk Graph emulator test CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now).not_valid_after(now + datetime.timedelta(days=VALID_DAYS))
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False,
                                       key_encipherment=False, data_encipherment=False,
                                       key_agreement=False, key_cert_sign=True, crl_sign=True,
                                       encipher_only=False, decipher_only=False), critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()),
                         critical=False)
          .sign(ca_key, hashes.SHA256()))

    key = ec.generate_private_key(ec.SECP256R1())
    sans = [x509.DNSName(n) for n in SERVER_NAMES] + \
           [x509.IPAddress(ipaddress.ip_address(a)) for a in SERVER_IPS]
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
            .issuer_name(ca_name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now).not_valid_after(now + datetime.timedelta(days=VALID_DAYS))
            .add_extension(x509.SubjectAlternativeName(sans), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                           critical=False)
            .sign(ca_key, hashes.SHA256()))

    pem = serialization.Encoding.PEM
    pkcs8 = serialization.PrivateFormat.PKCS8
    nocrypt = serialization.NoEncryption()
    _write_private(ca_key_path, ca_key.private_bytes(pem, pkcs8, nocrypt))
    _write_private(key_path, key.private_bytes(pem, pkcs8, nocrypt))
    with open(ca_path, "wb") as f:
        f.write(ca.public_bytes(pem))
    with open(cert_path, "wb") as f:
        f.write(cert.public_bytes(pem))
    return ca_path, cert_path, key_path
