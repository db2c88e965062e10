#!/usr/bin/python3
"""JSON batching (reference §8.4): limits and whole-batch 400s, per-item results and errors,
dependsOn with 424 for failed dependencies, per-item authorization and throttling."""

import emutest

U = emutest.USERS
G = emutest.GROUP_ID
REF = "https://graph.microsoft.com/v1.0/directoryObjects/"
SD = "/policies/identitySecurityDefaultsEnforcementPolicy"
JSON = {"Content-Type": "application/json"}


class BatchTest(emutest.EmulatorTestCase):
    def setUp(self):
        self.kiosk = self.emu.token()

    def batch(self, requests, token=None, version="v1.0"):
        return self.emu.post(f"/{version}/$batch", {"requests": requests},
                             token=token or self.kiosk)

    def ok_batch(self, requests, **kw):
        status, _, body = self.batch(requests, **kw)
        self.assertEqual(status, 200, body)
        self.assertEqual(set(body), {"responses"})
        by_id = {r["id"]: r for r in body["responses"]}
        self.assertEqual(set(by_id), {r["id"] for r in requests})
        for r in body["responses"]:
            self.assertIsInstance(r["status"], int)
            self.assertIsInstance(r["headers"], dict)
        return by_id

    def test_items_run_and_answer(self):
        got = self.ok_batch([
            {"id": "1", "method": "GET", "url": SD},
            {"id": "2", "method": "GET", "url": "groups?$select=id,displayName"},
            {"id": "3", "method": "GET",
             "url": "/policies/authenticationMethodsPolicy/authenticationMethodConfigurations/"
                    "fido2"},
        ])
        self.assertEqual(got["1"]["status"], 200)
        self.assertIs(got["1"]["body"]["isEnabled"], False)
        self.assertTrue(got["1"]["headers"]["Content-Type"].startswith("application/json"))
        self.assertEqual(got["2"]["body"]["value"][0]["id"], G)
        self.assertEqual(got["3"]["body"]["id"], "Fido2")

    def test_beta_batch(self):
        got = self.ok_batch([{"id": "a", "method": "GET", "url": SD}], version="beta")
        self.assertEqual(got["a"]["status"], 200)
        self.assertIn("/beta/", got["a"]["body"]["@odata.context"])

    def test_writes_and_204_items(self):
        got = self.ok_batch([
            {"id": "add", "method": "POST", "url": f"/groups/{G}/members/$ref",
             "headers": JSON, "body": {"@odata.id": REF + U["bob"]}},
            {"id": "again", "method": "POST", "url": f"/groups/{G}/members/$ref",
             "headers": JSON, "body": {"@odata.id": REF + U["bob"]}, "dependsOn": ["add"]},
            {"id": "list", "method": "GET", "url": f"/groups/{G}/members?$select=id",
             "dependsOn": ["add"]},
            {"id": "del", "method": "DELETE", "url": f"/groups/{G}/members/{U['bob']}/$ref",
             "dependsOn": ["list"]},
        ])
        self.assertEqual(got["add"]["status"], 204)
        self.assertNotIn("body", got["add"])
        self.assertEqual(got["again"]["status"], 400)
        self.assertEqual(got["again"]["body"]["error"]["code"], "Request_BadRequest")
        self.assertIn(U["bob"], [m["id"] for m in got["list"]["body"]["value"]])
        self.assertEqual(got["del"]["status"], 204)

    def test_failed_dependency_is_424(self):
        got = self.ok_batch([
            {"id": "1", "method": "POST", "url": f"/groups/{G}/members/$ref", "headers": JSON,
             "body": {"@odata.id": REF + "3b1c2d4e-0000-4000-8000-0000000000ff"}},
            {"id": "2", "method": "GET", "url": SD, "dependsOn": ["1"]},
            {"id": "3", "method": "GET", "url": SD, "dependsOn": ["2"]},
            {"id": "4", "method": "GET", "url": SD},
        ])
        self.assertEqual(got["1"]["status"], 404)
        self.assertEqual(got["1"]["body"]["error"]["code"], "Request_ResourceNotFound")
        for rid in ("2", "3"):
            self.assertEqual(got[rid]["status"], 424)
            self.assertIn("error", got[rid]["body"])
        self.assertEqual(got["4"]["status"], 200)

    def test_per_item_errors_and_authorization(self):
        got = self.ok_batch([
            {"id": "missing", "method": "GET",
             "url": "/groups/3b1c2d4e-0000-4000-8000-0000000000ff"},
            {"id": "nonsense", "method": "GET", "url": "/nonsense"},
            {"id": "method", "method": "DELETE", "url": SD},
            {"id": "fine", "method": "GET", "url": SD},
            {"id": "nested", "method": "POST", "url": "/$batch", "headers": JSON,
             "body": {"requests": []}},
        ])
        self.assertEqual(got["missing"]["status"], 404)
        self.assertEqual(got["nonsense"]["status"], 400)
        self.assertEqual(got["method"]["status"], 405)
        self.assertEqual(got["fine"]["status"], 200)
        self.assertEqual(got["nested"]["status"], 400)
        # Items are authorized one by one with the batch's token.
        reader = self.emu.token(emutest.READER_APP)
        got = self.ok_batch([{"id": "1", "method": "GET", "url": SD}], token=reader)
        self.assertEqual(got["1"]["status"], 403)
        self.assertEqual(got["1"]["body"]["error"]["code"], "Authorization_RequestDenied")

    def test_unauthenticated_batch(self):
        status, _, body = self.emu.post("/v1.0/$batch", {"requests": [
            {"id": "1", "method": "GET", "url": SD}]})
        self.assertEqual(status, 401, body)

    def test_whole_batch_refusals(self):
        get = {"method": "GET", "url": SD}
        cases = {
            "21 requests": [dict(get, id=str(i)) for i in range(21)],
            "duplicate ids": [dict(get, id="1"), dict(get, id="1")],
            "body without Content-Type": [
                {"id": "1", "method": "PATCH", "url": SD, "body": {"isEnabled": True}}],
            "write without body": [{"id": "1", "method": "POST",
                                    "url": f"/groups/{G}/members/$ref", "headers": JSON}],
            "absolute url": [dict(get, id="1",
                                  url="https://graph.microsoft.com/v1.0" + SD)],
            "unknown dependency": [dict(get, id="1", dependsOn=["9"])],
            "self dependency": [dict(get, id="1", dependsOn=["1"])],
            "cycle": [dict(get, id="1", dependsOn=["2"]), dict(get, id="2", dependsOn=["1"])],
            "numeric id": [dict(get, id=1)],
            "no url": [{"id": "1", "method": "GET"}],
            "bad method": [{"id": "1", "method": "FETCH", "url": SD}],
            "empty": [],
        }
        for name, requests in cases.items():
            with self.subTest(name):
                self.assertGraphError(self.batch(requests), 400)
        self.assertGraphError(self.emu.post("/v1.0/$batch", {"reqs": []}, token=self.kiosk), 400)
        self.assertGraphError(self.emu.request("GET", "/v1.0/$batch", token=self.kiosk), 405)

    def test_twenty_is_allowed(self):
        got = self.ok_batch([{"id": str(i), "method": "GET", "url": SD} for i in range(20)])
        self.assertTrue(all(r["status"] == 200 for r in got.values()))

    def test_items_are_logged(self):
        since = self.emu.log()[-1]["seq"]
        self.ok_batch([{"id": "x", "method": "GET", "url": SD}])
        entries = [e for e in self.emu.log(since) if e.get("batchItem") == "x"]
        self.assertEqual(len(entries), 1)
        self.assertEqual(entries[0]["status"], 200)
        self.assertEqual(entries[0]["route"], "policies.get_security_defaults")


class BatchThrottleTest(emutest.EmulatorTestCase):
    def test_items_throttled_one_by_one(self):
        if self.emu.get("/_emulator/throttle")[0] == 404:
            self.skipTest("no throttling module")
        kiosk = self.emu.token()
        self.emu.patch("/_emulator/settings", {"throttle": {"ruPer10s": 5}})
        self.emu.delete("/_emulator/throttle")
        try:
            status, _, body = self.emu.post("/v1.0/$batch", {"requests": [
                {"id": str(i), "method": "GET", "url": SD} for i in range(10)]}, token=kiosk)
            self.assertEqual(status, 200, body)
            codes = sorted(r["status"] for r in body["responses"])
            self.assertEqual(codes.count(200), 5)
            self.assertEqual(codes.count(429), 5)
            for r in body["responses"]:
                if r["status"] == 429:
                    self.assertGreaterEqual(int(r["headers"]["Retry-After"]), 1)
                    self.assertEqual(r["body"]["error"]["code"], "TooManyRequests")
        finally:
            self.emu.patch("/_emulator/settings", {"throttle": {}})
            self.emu.delete("/_emulator/throttle")


if __name__ == "__main__":
    emutest.main()
