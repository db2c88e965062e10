"""emutest: start a graph-emulator for a test and talk to it like a client would.

    class MyTest(emutest.EmulatorTestCase):
        def test_x(self):
            token = self.emu.token(emutest.KIOSK_APP)            # app token via /_emulator
            status, headers, body = self.emu.get("/v1.0/users", token=token)

Each test class gets its own emulator process (tenant from tenant() unless the class sets
TENANT), a private state directory, and an HTTPS client that verifies the emulator's test CA
(verification is never turned off). Run with Debian's /usr/bin/python3.
"""

import copy
import http.client
import json
import os
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
import time
import unittest
from urllib.parse import urlsplit

HERE = os.path.dirname(os.path.abspath(__file__))
EMULATOR = os.path.join(os.path.dirname(HERE), "graph-emulator")

TENANT_ID = "9188040d-6c67-4c5b-b112-36a304b66dad"
KIOSK_APP = "3f2a6c1e-8d4b-4e57-9a0f-2b7c1d9e4f60"      # every permission the kiosk needs
READER_APP = "0b7f5a1e-2c3d-4e5f-8a9b-0c1d2e3f4a5b"     # User.Read.All only
DELEGATED_APP = "5a6b7c8d-9e0f-4a1b-8c2d-3e4f5a6b7c8d"   # public client for device code
KIOSK_SECRET = "kiosk~secret.value-for-tests-0123456789"

KIOSK_PERMISSIONS = [
    "User.Read.All", "UserAuthMethod-Passkey.ReadWrite.All", "UserAuthMethod-TAP.ReadWrite.All",
    "UserAuthenticationMethod.Read.All", "UserAuthMethod-MicrosoftAuthApp.ReadWrite.All",
    "UserAuthMethod-SoftwareOATH.ReadWrite.All", "UserAuthMethod-Phone.ReadWrite.All",
    "User.RevokeSessions.All", "Policy.Read.AuthenticationMethod", "Policy.Read.All",
    "AuditLog.Read.All", "GroupMember.ReadWrite.All", "User.ReadWrite.All",
]
DELEGATED_SCOPES = ["openid", "profile", "offline_access", "User.Read.All",
                    "UserAuthenticationMethod.ReadWrite.All", "User.RevokeSessions.All",
                    "Policy.Read.AuthenticationMethod", "GroupMember.ReadWrite.All"]

USERS = {
    "admin": "3b1c2d4e-0000-4000-8000-000000000001",
    "ada": "3b1c2d4e-0000-4000-8000-000000000002",     # password only: never registered
    "bob": "3b1c2d4e-0000-4000-8000-000000000003",     # Microsoft Authenticator (default)
    "carol": "3b1c2d4e-0000-4000-8000-000000000004",   # a FIDO2 key
    "dave": "3b1c2d4e-0000-4000-8000-000000000005",    # lost phone: Authenticator + SMS
    "dollar": "3b1c2d4e-0000-4000-8000-000000000006",  # UPN starts with $
    "guest": "3b1c2d4e-0000-4000-8000-000000000007",   # B2B guest, UPN has #
}
GROUP_ID = "7d7e7f80-1111-4222-8333-444455556666"


def tenant(license="P1"):
    """A small tenant with one person in each state keydesk meets."""
    d = "contoso.onmicrosoft.com"
    return {
        "tenant": {"id": TENANT_ID, "domain": d, "displayName": "Contoso", "license": license},
        "settings": {"deviceCodeInterval": 1},
        "apps": [
            {"appId": KIOSK_APP, "displayName": "keydesk", "secrets": [{"value": KIOSK_SECRET}],
             "certificates": [], "applicationPermissions": KIOSK_PERMISSIONS},
            {"appId": READER_APP, "displayName": "reader", "secrets": [{"value": "reader"}],
             "applicationPermissions": ["User.Read.All"]},
            {"appId": DELEGATED_APP, "displayName": "keydesk operator", "publicClient": True,
             "delegatedScopes": DELEGATED_SCOPES},
        ],
        "users": [
            {"id": USERS["admin"], "userPrincipalName": f"admin@{d}", "displayName": "Ines Admin",
             "directoryRoles": ["Authentication Administrator"],
             "methods": [{"type": "password"},
                         {"type": "microsoftAuthenticator", "displayName": "Pixel 8",
                          "default": True}]},
            {"id": USERS["ada"], "userPrincipalName": f"ada@{d}", "displayName": "Ada Lovelace",
             "mail": f"ada@{d}", "methods": [{"type": "password"}]},
            {"id": USERS["bob"], "userPrincipalName": f"bob@{d}", "displayName": "Bob Builder",
             "methods": [{"type": "password"},
                         {"type": "microsoftAuthenticator", "displayName": "iPhone 15",
                          "deviceTag": "SoftwareTokenActivated", "phoneAppVersion": "6.8.7",
                          "default": True}]},
            {"id": USERS["carol"], "userPrincipalName": f"carol@{d}",
             "displayName": "Carol Keyholder",
             "methods": [{"type": "password"},
                         {"type": "fido2", "displayName": "YubiKey 5 NFC",
                          "aaGuid": "cb69481e-8ff7-4039-93ec-0a2729a154a8",
                          "model": "YubiKey 5 Series with NFC", "attestationCertificates": [],
                          "attestationLevel": "attested", "passkeyType": "deviceBound",
                          "_credentialId": "Y2Fyb2wtZXhpc3Rpbmcta2V5LWlk"}]},
            {"id": USERS["dave"], "userPrincipalName": f"dave@{d}", "displayName": "Dave Lost",
             "methods": [{"type": "password"},
                         {"type": "microsoftAuthenticator", "displayName": "Lost phone",
                          "default": True},
                         {"type": "phone", "phoneNumber": "+1 2065550100", "phoneType": "mobile",
                          "smsSignInState": "notEnabled"}]},
            {"id": USERS["dollar"], "userPrincipalName": f"$ops@{d}", "displayName": "Ops",
             "methods": [{"type": "password"}]},
            {"id": USERS["guest"], "userPrincipalName": f"gail_fabrikam.com#EXT#@{d}",
             "displayName": "Gail Guest", "userType": "Guest", "mail": "gail@fabrikam.com",
             "methods": [{"type": "password"}]},
        ],
        "groups": [{"id": GROUP_ID, "displayName": "MFA registered at keydesk", "members": []}],
        "policies": {"securityDefaults": {"isEnabled": False}},
    }


class Emulator:
    """A running graph-emulator process and a keep-alive HTTPS client for it."""

    def __init__(self, tenant_data, faults=None, seed=0, extra_args=()):
        self.dir = tempfile.mkdtemp(prefix="emutest-")
        self.tenant_path = os.path.join(self.dir, "tenant.json")
        with open(self.tenant_path, "w") as f:
            json.dump(tenant_data, f)
        args = [sys.executable, EMULATOR, "--tenant", self.tenant_path, "--state-dir",
                os.path.join(self.dir, "state"), "--seed", str(seed), *extra_args]
        if faults is not None:
            fpath = os.path.join(self.dir, "faults.json")
            with open(fpath, "w") as f:
                json.dump(faults, f)
            args += ["--faults", fpath]
        self.stderr = open(os.path.join(self.dir, "stderr.log"), "w+")
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=self.stderr, text=True)
        line = self._ready_line()
        _, self.url, ca = line.split()
        self.ca = ca.split("=", 1)[1]
        u = urlsplit(self.url)
        self.host, self.port = u.hostname, u.port
        self.ssl = ssl.create_default_context(cafile=self.ca)   # verifies peer and host name
        self.conn = None

    def _ready_line(self):
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if line.startswith("READY "):
                return line.strip()
            if not line and self.proc.poll() is not None:
                break
        self.stderr.seek(0)
        raise RuntimeError(f"graph-emulator did not start: {self.stderr.read()[-2000:]}")

    def close(self):
        if self.conn:
            self.conn.close()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.proc.stdout.close()
        self.stderr.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    # --- raw HTTP ---------------------------------------------------------------------------

    def request(self, method, path, body=None, token=None, headers=None, form=None, raw=None,
                new_connection=False):
        """(status, headers dict lower-case, parsed JSON body or None)."""
        h = {"User-Agent": "emutest/1"}
        if token:
            h["Authorization"] = f"Bearer {token}"
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            h["Content-Type"] = "application/json"
        elif form is not None:
            from urllib.parse import urlencode
            data = urlencode(form).encode()
            h["Content-Type"] = "application/x-www-form-urlencoded"
        elif raw is not None:
            data = raw
        h.update(headers or {})
        for attempt in (0, 1):
            if self.conn is None or new_connection:
                self.conn = http.client.HTTPSConnection(self.host, self.port, context=self.ssl,
                                                        timeout=30)
            try:
                self.conn.request(method, path, body=data, headers=h)
                resp = self.conn.getresponse()
                payload = resp.read()
                break
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                self.conn.close()
                self.conn = None
                if attempt:
                    raise
        hdrs = {k.lower(): v for k, v in resp.getheaders()}
        parsed = None
        if payload:
            try:
                parsed = json.loads(payload)
            except ValueError:
                parsed = payload
        return resp.status, hdrs, parsed

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def post(self, path, body=None, **kw):
        return self.request("POST", path, body=body, **kw)

    def patch(self, path, body=None, **kw):
        return self.request("PATCH", path, body=body, **kw)

    def delete(self, path, **kw):
        return self.request("DELETE", path, **kw)

    # --- control ------------------------------------------------------------------------------

    def token(self, app_id=KIOSK_APP, user=None, scopes=None, lifetime=None):
        body = {"appId": app_id}
        if user:
            body["user"] = user
            body["scopes"] = DELEGATED_SCOPES if scopes is None else scopes
        if lifetime:
            body["lifetime"] = lifetime
        status, _, resp = self.post("/_emulator/tokens", body)
        assert status == 200, resp
        return resp["access_token"]

    def log(self, since=-1):
        return self.get(f"/_emulator/requests?since={since}")[2]["value"]

    def user_state(self, user):
        from urllib.parse import quote
        return self.get(f"/_emulator/users/{quote(user, safe='')}")[2]


class EmulatorTestCase(unittest.TestCase):
    """One emulator per test class. Set TENANT (a dict) or FAULTS on the class to change them."""

    TENANT = None
    FAULTS = None
    SEED = 0

    @classmethod
    def setUpClass(cls):
        cls.emu = Emulator(copy.deepcopy(cls.TENANT or tenant()), cls.FAULTS, cls.SEED)

    @classmethod
    def tearDownClass(cls):
        cls.emu.close()

    def assertGraphError(self, result, status, code=None):
        """@result is (status, headers, body) and must be Graph's error shape."""
        got_status, headers, body = result
        self.assertEqual(got_status, status, body)
        self.assertIsInstance(body, dict, body)
        err = body.get("error")
        self.assertIsInstance(err, dict, body)
        self.assertIsInstance(err.get("code"), str)
        self.assertIsInstance(err.get("message"), str)
        inner = err.get("innerError")
        self.assertIsInstance(inner, dict, body)
        self.assertIn("request-id", inner)
        self.assertIn("client-request-id", inner)
        self.assertIn("date", inner)
        self.assertEqual(headers.get("request-id"), inner["request-id"])
        if code is not None:
            self.assertEqual(err["code"], code, body)
        return err


def main():
    unittest.main(verbosity=2)
