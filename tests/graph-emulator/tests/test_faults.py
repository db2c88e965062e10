#!/usr/bin/python3
"""Fault injection (graphemu/faults.py and the server's application of faults), seen from a
plain Python HTTPS client: latency, error statuses with Retry-After, connection resets,
truncated and malformed bodies, extra fields, revoked tokens, trickled bodies; count, after
and seeded probability; the control calls; a faults file given at start."""

import http.client
import json
import time

import emutest

POLICY = "/v1.0/policies/authenticationMethodsPolicy"
POLICY_RE = "^/v1.0/policies/authenticationMethodsPolicy$"
TAP_CONFIG = POLICY + "/authenticationMethodConfigurations/TemporaryAccessPass"
TOKEN = f"/{emutest.TENANT_ID}/oauth2/v2.0/token"
WRITER_APP = "9e8d7c6b-5a49-4382-9170-6f5e4d3c2b1a"


def tenant():
    t = emutest.tenant()
    t["settings"]["throttle"] = {"enabled": False}
    t["apps"].append({"appId": WRITER_APP, "displayName": "policy writer",
                      "secrets": [{"value": "writer"}],
                      "applicationPermissions": ["Policy.ReadWrite.AuthenticationMethod",
                                                 "Policy.Read.All"]})
    return t


class FaultCase(emutest.EmulatorTestCase):
    TENANT = tenant()

    def setUp(self):
        self.emu.delete("/_emulator/faults")
        self.token = self.emu.token(emutest.KIOSK_APP)

    def add(self, *rules):
        status, _, body = self.emu.post("/_emulator/faults", {"rules": list(rules)})
        self.assertEqual(status, 201, body)
        return body

    def raw(self, method, path, token=None, body=None, headers=None):
        """One request on a fresh connection: (response, payload bytes) or an exception."""
        conn = http.client.HTTPSConnection(self.emu.host, self.emu.port, context=self.emu.ssl,
                                           timeout=20)
        self.addCleanup(conn.close)
        h = dict(headers or {})
        if token:
            h["Authorization"] = f"Bearer {token}"
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            h["Content-Type"] = "application/json"
        conn.request(method, path, body=data, headers=h)
        resp = conn.getresponse()
        return resp, resp.read()

    def policy_ok(self, **kw):
        status, _, body = self.emu.get(POLICY, token=self.token, **kw)
        self.assertEqual(status, 200, body)
        return body


class KindsTest(FaultCase):
    def test_latency(self):
        self.add({"path": POLICY_RE, "kind": "latency", "ms": 400, "count": 1})
        t0 = time.monotonic()
        self.policy_ok()
        self.assertGreaterEqual(time.monotonic() - t0, 0.4)
        t0 = time.monotonic()
        self.policy_ok()
        self.assertLess(time.monotonic() - t0, 0.3)

    def test_error_statuses_with_retry_after(self):
        for status, code in ((429, "TooManyRequests"), (500, "generalException"),
                             (503, "serviceNotAvailable"), (504, "GatewayTimeout")):
            with self.subTest(status=status):
                self.emu.delete("/_emulator/faults")
                self.add({"path": POLICY_RE, "kind": "status", "status": status,
                          "retryAfter": 7, "count": 1})
                result = self.emu.get(POLICY, token=self.token)
                err = self.assertGraphError(result, status, code)
                self.assertEqual(result[1]["retry-after"], "7")
                self.assertTrue(err["message"])
                self.policy_ok()                          # count 1: next one goes through

    def test_status_defaults(self):
        self.add({"path": POLICY_RE, "kind": "status", "count": 1},
                 {"path": POLICY_RE, "kind": "status", "status": 429, "count": 1},
                 {"path": POLICY_RE, "kind": "status", "status": 503, "retryAfter": None,
                  "count": 1, "code": "UnknownError", "message": "Nope."})
        status, headers, _ = self.emu.get(POLICY, token=self.token)
        self.assertEqual(status, 503)                    # default status, no Retry-After
        self.assertNotIn("retry-after", headers)
        status, headers, _ = self.emu.get(POLICY, token=self.token)
        self.assertEqual((status, headers.get("retry-after")), (429, "1"))  # 429 always has one
        err = self.assertGraphError(self.emu.get(POLICY, token=self.token), 503, "UnknownError")
        self.assertEqual(err["message"], "Nope.")

    def test_status_on_token_endpoint_has_identity_shape(self):
        self.add({"path": "/oauth2/v2.0/token$", "kind": "status", "status": 503,
                  "retryAfter": 3, "count": 1},
                 {"path": "/oauth2/v2.0/token$", "kind": "status", "status": 500, "count": 1},
                 {"path": "/oauth2/v2.0/token$", "kind": "status", "status": 429, "count": 1})
        form = {"grant_type": "client_credentials", "client_id": emutest.KIOSK_APP,
                "client_secret": emutest.KIOSK_SECRET,
                "scope": "https://graph.microsoft.com/.default"}
        expect = [(503, "temporarily_unavailable", "3"), (500, "server_error", None),
                  (429, "temporarily_unavailable", "1")]
        for status, error, retry in expect:
            got, headers, body = self.emu.post(TOKEN, form=form)
            self.assertEqual(got, status, body)
            self.assertEqual(body["error"], error)
            self.assertTrue(body["error_description"].startswith("AADSTS"))
            self.assertIsInstance(body["error_codes"], list)
            self.assertIn("correlation_id", body)
            self.assertNotIn("innerError", json.dumps(body))
            self.assertTrue(headers["content-type"].startswith("application/json"))
            self.assertEqual(headers.get("retry-after"), retry)

    def test_reset_before_the_request_runs(self):
        self.add({"name": "drop", "path": POLICY_RE, "kind": "reset", "count": 1})
        with self.assertRaises((http.client.RemoteDisconnected, ConnectionResetError)):
            self.raw("GET", POLICY, self.token)
        self.policy_ok()
        last = [e for e in self.emu.log() if e.get("fault") == "drop"]
        self.assertEqual(len(last), 1)
        self.assertIsNone(last[0]["status"])

    def test_reset_after_the_request_ran(self):
        # The write happens; the client never hears. A client must re-read before retrying.
        writer = self.emu.token(WRITER_APP)
        self.add({"name": "lost-answer", "method": "PATCH", "path": "TemporaryAccessPass$",
                  "kind": "reset", "phase": "response", "count": 1})
        body = {"@odata.type":
                "#microsoft.graph.temporaryAccessPassAuthenticationMethodConfiguration",
                "defaultLifetimeInMinutes": 120}
        with self.assertRaises((http.client.RemoteDisconnected, ConnectionResetError)):
            self.raw("PATCH", TAP_CONFIG, writer, body)
        status, _, cfg = self.emu.get(TAP_CONFIG, token=writer)
        self.assertEqual(status, 200, cfg)
        self.assertEqual(cfg["defaultLifetimeInMinutes"], 120)
        entry = [e for e in self.emu.log() if e.get("fault") == "lost-answer"][-1]
        self.assertEqual(entry["status"], 204)

    def test_truncated_body(self):
        self.add({"path": POLICY_RE, "kind": "truncate", "count": 1})
        with self.assertRaises(http.client.IncompleteRead) as cm:
            self.raw("GET", POLICY, self.token)
        self.assertGreater(len(cm.exception.partial), 0)
        self.assertGreater(cm.exception.expected, 0)
        self.policy_ok()
        entry = [e for e in self.emu.log() if e.get("fault") == "truncate"][-1]
        self.assertTrue(entry["truncated"])
        self.assertEqual(entry["status"], 200)

    def test_malformed_body(self):
        self.add({"path": POLICY_RE, "kind": "malformed", "count": 1})
        resp, data = self.raw("GET", POLICY, self.token)
        self.assertEqual(resp.status, 200)
        self.assertEqual(int(resp.getheader("Content-Length")), len(data))
        self.assertIn(b"<html>", data)
        with self.assertRaises(ValueError):
            json.loads(data)

    def test_extra_fields(self):
        self.add({"path": POLICY_RE, "kind": "extra-fields", "count": 1})
        body = self.policy_ok()
        self.assertIn("emulatorUnexpectedField", body)
        self.assertIn("emulatorUnexpectedField",
                      body["authenticationMethodConfigurations"][0])
        self.assertNotIn("emulatorUnexpectedField", self.policy_ok())

    def test_revoke_token(self):
        self.add({"path": POLICY_RE, "kind": "revoke-token", "count": 1})
        err = self.assertGraphError(self.emu.get(POLICY, token=self.token), 401,
                                    "InvalidAuthenticationToken")
        self.assertIn("revoked", err["message"])
        self.assertGraphError(self.emu.get(POLICY, token=self.token), 401)   # stays revoked
        self.token = self.emu.token(emutest.KIOSK_APP)                       # a new one works
        self.policy_ok()

    def test_trickle(self):
        plain = self.policy_ok()
        size = len(json.dumps(plain, separators=(",", ":")))
        self.add({"path": POLICY_RE, "kind": "trickle", "bytes": 256, "ms": 20, "count": 1})
        t0 = time.monotonic()
        resp, data = self.raw("GET", POLICY, self.token)
        took = time.monotonic() - t0
        self.assertEqual(resp.status, 200)
        self.assertEqual(json.loads(data)["id"], plain["id"])
        chunks = -(-size // 256)
        self.assertGreaterEqual(took, 0.02 * (chunks - 1))

    def test_faults_do_not_touch_control_calls(self):
        self.add({"path": ".*", "kind": "status", "status": 500})
        status, _, body = self.emu.get("/_emulator/health")
        self.assertEqual(status, 200, body)
        self.emu.delete("/_emulator/faults")


class MatchingTest(FaultCase):
    def statuses(self, n, path=POLICY):
        return [self.emu.get(path, token=self.token)[0] for _ in range(n)]

    def test_count_and_after(self):
        self.add({"path": POLICY_RE, "kind": "status", "status": 500, "after": 2, "count": 2})
        self.assertEqual(self.statuses(6), [200, 200, 500, 500, 200, 200])
        rule = self.emu.get("/_emulator/faults")[2]["rules"][0]
        self.assertEqual((rule["remaining"], rule["hits"]), (0, 2))

    def test_method_and_path_forms(self):
        self.add({"method": "post", "path": POLICY_RE, "kind": "status", "status": 500},
                 {"path": "/policies/authenticationMethodsPolicy$", "kind": "status",
                  "status": 502, "count": 1},                # matches the version-less path
                 {"path": "^/v1.0/policies/authenticationMethodsPolicy$", "kind": "status",
                  "status": 504, "count": 1})
        self.assertEqual(self.statuses(3), [502, 504, 200])

    def test_first_matching_rule_wins(self):
        self.add({"name": "a", "path": "policies", "kind": "status", "status": 503, "count": 1},
                 {"name": "b", "path": "policies", "kind": "status", "status": 500, "count": 1})
        self.assertEqual(self.statuses(3), [503, 500, 200])
        names = [e.get("fault") for e in self.emu.log() if e["path"] == POLICY][-3:]
        self.assertEqual(names, ["a", "b", None])

    def test_probability_is_deterministic_with_the_seed(self):
        rule = {"path": POLICY_RE, "kind": "status", "status": 503, "probability": 0.5}
        self.add(rule)
        first = self.statuses(30)
        self.emu.delete("/_emulator/faults")             # clearing restarts the draws
        self.add(rule)
        second = self.statuses(30)
        self.assertEqual(first, second)
        self.assertIn(503, first)
        self.assertIn(200, first)
        other = emutest.Emulator(tenant(), seed=self.SEED + 1)
        try:
            tok = other.token(emutest.KIOSK_APP)
            other.post("/_emulator/faults", rule)
            third = [other.get(POLICY, token=tok)[0] for _ in range(30)]
        finally:
            other.close()
        self.assertNotEqual(first, third)
        self.assertEqual(self.statuses(0), [])

    def test_probability_zero_and_one(self):
        self.add({"path": POLICY_RE, "kind": "status", "status": 500, "probability": 0},
                 {"path": POLICY_RE, "kind": "status", "status": 503, "probability": 1,
                  "count": 2})
        self.assertEqual(self.statuses(3), [503, 503, 200])


class ControlTest(FaultCase):
    def test_list_add_clear(self):
        body = self.add({"name": "one", "path": "x", "kind": "latency", "ms": 1})
        self.assertEqual(body["rules"][0]["name"], "one")
        status, _, body = self.emu.post("/_emulator/faults",
                                        {"name": "two", "path": "y", "kind": "malformed",
                                         "count": 3})
        self.assertEqual(status, 201)
        rules = self.emu.get("/_emulator/faults")[2]["rules"]
        self.assertEqual([r["name"] for r in rules], ["one", "two"])
        self.assertEqual(rules[1]["remaining"], 3)
        self.assertEqual(rules[1]["hits"], 0)
        self.assertIsNone(rules[0]["remaining"])
        status, _, _ = self.emu.delete("/_emulator/faults")
        self.assertEqual(status, 204)
        self.assertEqual(self.emu.get("/_emulator/faults")[2]["rules"], [])

    def test_bad_rules_are_refused(self):
        bad = [{"path": "x", "kind": "explode"},
               {"kind": "latency"},
               {"path": "(", "kind": "latency"},
               {"path": "x", "kind": "latency", "status": 500},      # option of another kind
               {"path": "x", "kind": "status", "probability": 2},
               {"path": "x", "kind": "status", "count": -1},
               {"path": "x", "kind": "reset", "phase": "later"},
               {"rules": [{"path": "x", "kind": "latency"}], "extra": 1},
               "latency"]
        for rule in bad:
            with self.subTest(rule=rule):
                self.assertGraphError(self.emu.post("/_emulator/faults", rule), 400, "BadRequest")
        self.assertEqual(self.emu.get("/_emulator/faults")[2]["rules"], [])

    def test_request_log_names_the_fault(self):
        self.add({"name": "slow-policy", "path": POLICY_RE, "kind": "latency", "ms": 1,
                  "count": 1})
        self.policy_ok()
        entry = [e for e in self.emu.log() if e["path"] == POLICY][-1]
        self.assertEqual(entry["fault"], "slow-policy")


class FileTest(emutest.EmulatorTestCase):
    TENANT = tenant()
    FAULTS = {"rules": [{"name": "boot-503", "path": POLICY_RE, "kind": "status",
                         "status": 503, "retryAfter": 2, "count": 1}]}

    def test_rules_from_the_faults_file(self):
        token = self.emu.token(emutest.KIOSK_APP)
        status, headers, _ = self.emu.get(POLICY, token=token)
        self.assertEqual((status, headers.get("retry-after")), (503, "2"))
        self.assertEqual(self.emu.get(POLICY, token=token)[0], 200)
        rules = self.emu.get("/_emulator/faults")[2]["rules"]
        self.assertEqual(rules[0]["name"], "boot-503")
        self.assertEqual(rules[0]["hits"], 1)


class BareListFileTest(emutest.EmulatorTestCase):
    TENANT = tenant()
    FAULTS = [{"path": "^/_emulator/never$", "kind": "latency", "ms": 1},
              {"path": POLICY_RE, "kind": "extra-fields"}]

    def test_bare_list(self):
        token = self.emu.token(emutest.KIOSK_APP)
        self.assertIn("emulatorUnexpectedField", self.emu.get(POLICY, token=token)[2])
        self.assertEqual(len(self.emu.get("/_emulator/faults")[2]["rules"]), 2)

    def test_bad_faults_file_stops_the_start(self):
        with self.assertRaises(RuntimeError) as cm:
            emutest.Emulator(tenant(), faults={"rules": [{"path": "x", "kind": "nope"}]})
        self.assertIn("bad faults file", str(cm.exception))


if __name__ == "__main__":
    emutest.main()
