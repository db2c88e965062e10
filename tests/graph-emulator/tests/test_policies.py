#!/usr/bin/python3
"""Policies: the authentication methods policy and its method configurations (reference §2.8,
§3), Security Defaults (§7.1): shapes, validation, least-privilege permissions and roles."""

import emutest

POLICY_APP = "6c1d2e3f-4a5b-4c6d-8e7f-8091a2b3c4d5"      # may write method policies
SD_APP = "7d2e3f4a-5b6c-4d7e-9f80-91a2b3c4d5e6"          # SecurityDefaults write + Policy.Read.All
SD_NO_READ_APP = "8e3f4a5b-6c7d-4e8f-a091-a2b3c4d5e6f7"  # SecurityDefaults write only
GLOBAL_READER = "3b1c2d4e-0000-4000-8000-0000000000a1"
SECURITY_ADMIN = "3b1c2d4e-0000-4000-8000-0000000000a2"
CFG = "/v1.0/policies/authenticationMethodsPolicy/authenticationMethodConfigurations/"
SD = "/v1.0/policies/identitySecurityDefaultsEnforcementPolicy"


def tenant():
    t = emutest.tenant()
    t["apps"] += [
        {"appId": POLICY_APP, "displayName": "policy admin", "secrets": [{"value": "p"}],
         "applicationPermissions": ["Policy.ReadWrite.AuthenticationMethod"]},
        {"appId": SD_APP, "displayName": "sd admin", "secrets": [{"value": "s"}],
         "applicationPermissions": ["Policy.ReadWrite.SecurityDefaults", "Policy.Read.All"]},
        {"appId": SD_NO_READ_APP, "displayName": "sd half", "secrets": [{"value": "h"}],
         "applicationPermissions": ["Policy.ReadWrite.SecurityDefaults"]},
    ]
    d = "contoso.onmicrosoft.com"
    t["users"] += [
        {"id": GLOBAL_READER, "userPrincipalName": f"reader@{d}", "displayName": "Gus Reader",
         "directoryRoles": ["Global Reader"], "methods": [{"type": "password"}]},
        {"id": SECURITY_ADMIN, "userPrincipalName": f"secadmin@{d}", "displayName": "Sue Sec",
         "directoryRoles": ["Security Administrator"], "methods": [{"type": "password"}]},
    ]
    return t


class MethodsPolicyTest(emutest.EmulatorTestCase):
    TENANT = tenant()

    def setUp(self):
        self.kiosk = self.emu.token()
        self.admin = self.emu.token(POLICY_APP)

    def get_cfg(self, cid, token=None):
        return self.emu.get(CFG + cid, token=token or self.kiosk)

    def test_whole_policy_embeds_configurations(self):
        status, _, body = self.emu.get("/v1.0/policies/authenticationMethodsPolicy",
                                       token=self.kiosk)
        self.assertEqual(status, 200, body)
        self.assertEqual(body["id"], "authenticationMethodsPolicy")
        self.assertTrue(body["@odata.context"].startswith(
            "https://graph.microsoft.com/v1.0/$metadata#policies/authenticationMethodsPolicy"))
        for k in ("displayName", "description", "lastModifiedDateTime", "policyVersion",
                  "reconfirmationInDays", "registrationEnforcement", "policyMigrationState"):
            self.assertIn(k, body)
        configs = {c["id"]: c for c in body["authenticationMethodConfigurations"]}
        for cid, odata in (("Fido2", "fido2"), ("TemporaryAccessPass", "temporaryAccessPass"),
                           ("MicrosoftAuthenticator", "microsoftAuthenticator"),
                           ("SoftwareOath", "softwareOath")):
            self.assertEqual(configs[cid]["@odata.type"],
                             f"#microsoft.graph.{odata}AuthenticationMethodConfiguration")
            self.assertIn(configs[cid]["state"], ("enabled", "disabled"))
            self.assertIsInstance(configs[cid]["excludeTargets"], list)
        self.assertIn("Sms", configs)                      # Graph lists every method
        self.assertEqual(configs["TemporaryAccessPass"]["defaultLifetimeInMinutes"], 60)

    def test_configuration_ids_are_case_insensitive(self):
        for cid in ("Fido2", "fido2", "FIDO2"):
            status, _, body = self.get_cfg(cid)
            self.assertEqual(status, 200, body)
            self.assertEqual(body["id"], "Fido2")
            self.assertEqual(body["keyRestrictions"]["enforcementType"], "block")
        status, _, body = self.get_cfg("temporaryaccesspass")
        self.assertEqual((status, body["defaultLength"]), (200, 8))
        self.assertEqual(self.get_cfg("microsoftAuthenticator")[0], 200)
        self.assertEqual(self.get_cfg("softwareOath")[2]["@odata.type"],
                         "#microsoft.graph.softwareOathAuthenticationMethodConfiguration")

    def test_unknown_configuration_is_404(self):
        self.assertGraphError(self.get_cfg("Carrier-Pigeon"), 404)

    def test_tap_patch_then_read_back(self):
        body = {"@odata.type":
                "#microsoft.graph.temporaryAccessPassAuthenticationMethodConfiguration",
                "minimumLifetimeInMinutes": 10, "defaultLifetimeInMinutes": 30,
                "maximumLifetimeInMinutes": 120, "defaultLength": 12, "isUsableOnce": True}
        status, _, resp = self.emu.patch(CFG + "TemporaryAccessPass", body, token=self.admin)
        self.assertEqual(status, 204, resp)
        self.assertIsNone(resp)
        got = self.get_cfg("TemporaryAccessPass")[2]
        for k, v in body.items():
            if k != "@odata.type":
                self.assertEqual(got[k], v)
        restore = {"minimumLifetimeInMinutes": 60, "defaultLifetimeInMinutes": 60,
                   "maximumLifetimeInMinutes": 480, "defaultLength": 8, "isUsableOnce": False}
        self.assertEqual(self.emu.patch(CFG + "TemporaryAccessPass", restore,
                                        token=self.admin)[0], 204)

    def test_tap_patch_validation(self):
        before = self.get_cfg("TemporaryAccessPass")[2]
        bad = [{"defaultLifetimeInMinutes": 9}, {"maximumLifetimeInMinutes": 43201},
               {"minimumLifetimeInMinutes": 5},
               {"defaultLifetimeInMinutes": 30},                   # below the minimum of 60
               {"minimumLifetimeInMinutes": 100, "defaultLifetimeInMinutes": 90,
                "maximumLifetimeInMinutes": 480},
               {"defaultLength": 7}, {"defaultLength": 49}, {"defaultLength": "8"},
               {"defaultLifetimeInMinutes": True}, {"isUsableOnce": "yes"},
               {"state": "on"}, {"unknownSetting": 1}, {"id": "Fido2"},
               {"@odata.type": "#microsoft.graph.fido2AuthenticationMethodConfiguration"}]
        for body in bad:
            with self.subTest(body=body):
                self.assertGraphError(self.emu.patch(CFG + "TemporaryAccessPass", body,
                                                     token=self.admin), 400)
        self.assertGraphError(self.emu.patch(CFG + "TemporaryAccessPass", None,
                                             token=self.admin, raw=b"[1]",
                                             headers={"Content-Type": "application/json"}), 400)
        after = self.get_cfg("TemporaryAccessPass")[2]
        self.assertEqual(before, after)                    # nothing half-applied

    def test_fido2_patch(self):
        aaguid = "2fc0579f-8113-47ea-b116-bb5a8db9202a"
        body = {"isAttestationEnforced": True,
                "keyRestrictions": {"isEnforced": True, "enforcementType": "allow",
                                    "aaGuids": [aaguid]}}
        self.assertEqual(self.emu.patch(CFG + "fido2", body, token=self.admin)[0], 204)
        got = self.get_cfg("Fido2")[2]
        self.assertEqual(got["keyRestrictions"], body["keyRestrictions"])
        self.assertTrue(got["isAttestationEnforced"])
        for bad in ({"keyRestrictions": {"enforcementType": "deny"}},
                    {"keyRestrictions": {"aaGuids": ["not-a-guid"]}},
                    {"keyRestrictions": {"isEnforced": True, "colour": "blue"}},
                    {"isSelfServiceRegistrationAllowed": 1},
                    {"includeTargets": [{"targetType": "group", "id": "everyone"}]},
                    {"includeTargets": "all_users"}):
            with self.subTest(body=bad):
                self.assertGraphError(self.emu.patch(CFG + "fido2", bad, token=self.admin), 400)
        restore = {"isAttestationEnforced": False,
                   "keyRestrictions": {"isEnforced": False, "enforcementType": "block",
                                       "aaGuids": []}}
        self.assertEqual(self.emu.patch(CFG + "fido2", restore, token=self.admin)[0], 204)

    def test_authenticator_and_state_patch(self):
        body = {"state": "disabled",
                "featureSettings": {"displayAppInformationRequiredState": {
                    "state": "enabled",
                    "includeTarget": {"targetType": "group", "id": "all_users"}}},
                "includeTargets": [{"targetType": "group", "id": "all_users",
                                    "isRegistrationRequired": False,
                                    "authenticationMode": "push"}]}
        self.assertEqual(self.emu.patch(CFG + "MicrosoftAuthenticator", body,
                                        token=self.admin)[0], 204)
        got = self.get_cfg("MicrosoftAuthenticator")[2]
        self.assertEqual(got["state"], "disabled")
        self.assertEqual(got["includeTargets"][0]["authenticationMode"], "push")
        self.assertEqual(self.emu.patch(CFG + "MicrosoftAuthenticator", {"state": "enabled"},
                                        token=self.admin)[0], 204)

    def test_write_needs_write_permission(self):
        # The kiosk holds Policy.Read.AuthenticationMethod only: least privilege, no writes.
        self.assertGraphError(self.emu.patch(CFG + "fido2", {"state": "enabled"},
                                             token=self.kiosk), 403, "Authorization_RequestDenied")

    def test_reader_app_cannot_read_policies(self):
        reader = self.emu.token(emutest.READER_APP)
        self.assertGraphError(self.get_cfg("fido2", token=reader), 403,
                              "Authorization_RequestDenied")
        self.assertGraphError(self.emu.get("/v1.0/policies/authenticationMethodsPolicy",
                                           token=reader), 403)

    def test_delegated_read_needs_a_policy_role(self):
        # The operator is an Authentication Administrator: that role does not read policies.
        op = self.emu.token(emutest.DELEGATED_APP, user="admin@contoso.onmicrosoft.com",
                            scopes=["Policy.Read.AuthenticationMethod"])
        self.assertGraphError(self.get_cfg("fido2", token=op), 403)
        gr = self.emu.token(emutest.DELEGATED_APP, user="reader@contoso.onmicrosoft.com",
                            scopes=["Policy.Read.AuthenticationMethod"])
        self.assertEqual(self.get_cfg("fido2", token=gr)[0], 200)
        # ... and a role without the scope is not enough.
        gr_noscope = self.emu.token(emutest.DELEGATED_APP, user="reader@contoso.onmicrosoft.com",
                                    scopes=["User.Read.All"])
        self.assertGraphError(self.get_cfg("fido2", token=gr_noscope), 403)


class SecurityDefaultsTest(emutest.EmulatorTestCase):
    TENANT = tenant()

    def test_get_shape(self):
        status, _, body = self.emu.get(SD, token=self.emu.token())
        self.assertEqual(status, 200, body)
        self.assertEqual(set(body) - {"@odata.context"},
                         {"id", "displayName", "description", "isEnabled"})
        self.assertIs(body["isEnabled"], False)

    def test_patch_toggles(self):
        token = self.emu.token(SD_APP)
        status, _, body = self.emu.patch(SD, {"isEnabled": True}, token=token)
        self.assertEqual(status, 204, body)
        self.assertIs(self.emu.get(SD, token=token)[2]["isEnabled"], True)
        self.assertEqual(self.emu.patch(SD, {"isEnabled": False}, token=token)[0], 204)
        self.assertIs(self.emu.get(SD, token=token)[2]["isEnabled"], False)

    def test_write_also_requires_policy_read_all(self):
        # Policy.ReadWrite.SecurityDefaults alone is not enough (reference §7.1 AlsoRequires).
        token = self.emu.token(SD_NO_READ_APP)
        self.assertGraphError(self.emu.patch(SD, {"isEnabled": True}, token=token), 403,
                              "Authorization_RequestDenied")
        # The kiosk reads but may not write.
        self.assertGraphError(self.emu.patch(SD, {"isEnabled": True},
                                             token=self.emu.token()), 403)
        self.assertGraphError(self.emu.get(SD, token=self.emu.token(emutest.READER_APP)), 403)

    def test_patch_validation(self):
        token = self.emu.token(SD_APP)
        for body in ({"isEnabled": "true"}, {"isEnabled": None}, {},
                     {"isEnabled": True, "displayName": "mine"}, {"description": "x"}):
            with self.subTest(body=body):
                self.assertGraphError(self.emu.patch(SD, body, token=token), 400)
        self.assertIs(self.emu.get(SD, token=token)[2]["isEnabled"], False)

    def test_delegated_roles(self):
        scopes = ["Policy.ReadWrite.SecurityDefaults", "Policy.Read.All"]
        op = self.emu.token(emutest.DELEGATED_APP, user="admin@contoso.onmicrosoft.com",
                            scopes=scopes)
        self.assertGraphError(self.emu.patch(SD, {"isEnabled": False}, token=op), 403)
        sec = self.emu.token(emutest.DELEGATED_APP, user="secadmin@contoso.onmicrosoft.com",
                             scopes=scopes)
        self.assertEqual(self.emu.patch(SD, {"isEnabled": False}, token=sec)[0], 204)
        sec_half = self.emu.token(emutest.DELEGATED_APP, user="secadmin@contoso.onmicrosoft.com",
                                  scopes=["Policy.ReadWrite.SecurityDefaults"])
        self.assertGraphError(self.emu.patch(SD, {"isEnabled": False}, token=sec_half), 403)


if __name__ == "__main__":
    emutest.main()
