#!/usr/bin/python3
"""The emulator's backbone: READY line, TLS with its own CA, error shape, headers, request log."""

import http.client
import socket
import ssl

import emutest


class CoreTest(emutest.EmulatorTestCase):
    def test_health_over_verified_tls(self):
        status, headers, body = self.emu.get("/_emulator/health")
        self.assertEqual(status, 200)
        self.assertEqual(body["tenant"], emutest.TENANT_ID)
        self.assertTrue(headers["request-id"])

    def test_refuses_client_without_the_ca(self):
        ctx = ssl.create_default_context()          # system CAs only: must fail
        conn = http.client.HTTPSConnection(self.emu.host, self.emu.port, context=ctx, timeout=10)
        with self.assertRaises(ssl.SSLCertVerificationError):
            conn.request("GET", "/_emulator/health")
        conn.close()

    def test_certificate_names(self):
        # graph.microsoft.com and login.microsoftonline.com are in the certificate, so a client
        # that keeps production host names and connects to loopback still verifies the host.
        for name in ("localhost", "graph.microsoft.com", "login.microsoftonline.com"):
            raw = socket.create_connection((self.emu.host, self.emu.port), timeout=10)
            with self.emu.ssl.wrap_socket(raw, server_hostname=name) as tls:
                self.assertTrue(tls.getpeercert())
        raw = socket.create_connection((self.emu.host, self.emu.port), timeout=10)
        with self.assertRaises(ssl.SSLCertVerificationError):
            self.emu.ssl.wrap_socket(raw, server_hostname="graph.example.org")
        raw.close()

    def test_unknown_segment_is_graph_400(self):
        err = self.assertGraphError(self.emu.get("/v1.0/nonsense"), 400, "BadRequest")
        self.assertIn("nonsense", err["message"])

    def test_client_request_id_is_echoed(self):
        cid = "0f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0"
        status, headers, body = self.emu.get("/v1.0/nonsense",
                                             headers={"client-request-id": cid})
        self.assertEqual(headers["client-request-id"], cid)
        self.assertEqual(body["error"]["innerError"]["client-request-id"], cid)

    def test_request_log_records_requests(self):
        self.emu.get("/v1.0/nonsense", headers={"x-ms-throttle-priority": "High"})
        entries = self.emu.log()
        last = [e for e in entries if e["path"] == "/v1.0/nonsense"][-1]
        self.assertEqual(last["status"], 400)
        self.assertEqual(last["throttlePriority"], "High")
        self.assertEqual(last["version"], "v1.0")

    def test_keep_alive(self):
        conn = http.client.HTTPSConnection(self.emu.host, self.emu.port, context=self.emu.ssl)
        for _ in range(3):
            conn.request("GET", "/_emulator/health")
            resp = conn.getresponse()
            resp.read()
            self.assertEqual(resp.status, 200)
        sock = conn.sock
        conn.request("GET", "/_emulator/health")
        conn.getresponse().read()
        self.assertIs(conn.sock, sock)               # same TLS connection all along
        conn.close()


if __name__ == "__main__":
    emutest.main()
