/* test-doctor: `keydesk doctor` against the emulator, one misconfiguration at a time: each gives
 * its exact checklist line and exit status, and nothing is ever written to the tenant. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sysexits.h>

#include "core/kd-doctor.h"
#include "kd-emulator.h"

#define APP   KD_EMU_KIOSK_APP
#define PERMS "p = t['apps'][0]['applicationPermissions']\n"
/* The dashboard's optional permissions, so a healthy tenant has no WARN line. */
#define ALL_PERMS PERMS "p.append('RoleManagement.Read.Directory')\n"

typedef struct {
    KdEmulator *emu;
    char *dir;
    char *config;
    char *output;
    int status;
} Doctor;

/* A keydesk.conf for the emulator: self mode with the kiosk app's secret in a 0600 file (or
 * operator mode without a credential). */
static char *
write_config(const char *dir, const char *secret, const char *ca_file, const char *extra_enrolment,
             const char *tracking, gboolean operator_mode, const char *host_port)
{
    g_autofree char *secret_path = g_build_filename(dir, "client.secret", NULL);
    g_autofree char *secret_line = g_strdup_printf("%s\n", secret);
    char *path = g_build_filename(dir, "keydesk.conf", NULL);
    g_autofree char *credential =
        operator_mode ? g_strdup("") : g_strdup_printf("client-secret-file = %s\n", secret_path);
    g_autofree char *text = g_strdup_printf(
        "[kiosk]\n"
        "name = Doctor test desk\n"
        "[tenant]\n"
        "tenant-id = " KD_EMU_TENANT_ID "\n"
        "client-id = " APP "\n"
        "%s"
        "graph-host = https://%s\n"
        "login-host = https://%s\n"
        "ca-file = %s\n"
        "[enrolment]\n"
        "identity-mode = %s\n"
        "flows = security-key;authenticator;lost-device\n"
        "%s"
        "[tracking]\n"
        "%s"
        "state-dir = %s\n",
        credential, host_port, host_port, ca_file, operator_mode ? "operator" : "self",
        extra_enrolment != NULL ? extra_enrolment : "",
        tracking != NULL ? tracking : "group-id = " KD_EMU_GROUP "\n", dir);

    assert_true(g_file_set_contents(secret_path, secret_line, -1, NULL));
    assert_int_equal(chmod(secret_path, 0600), 0);
    assert_true(g_file_set_contents(path, text, -1, NULL));
    return path;
}

typedef struct {
    const char *tweak;      /* Python on the emulator tenant */
    const char *secret;     /* NULL = the right one */
    gboolean wrong_ca;      /* ca-file = a CA that did not sign the emulator's certificate */
    const char *enrolment;  /* extra [enrolment] lines */
    const char *tracking;   /* [tracking] lines (NULL = group-id = the emulator's group) */
    gboolean operator_mode; /* identity-mode = operator, no app credential */
    const char *host_port;  /* graph-host and login-host (NULL = the emulator) */
} Setup;

static void
run_doctor(Doctor *d, const Setup *s)
{
    g_autoptr(GError) error = NULL;
    g_autofree char *ca = NULL;
    char *buf = NULL;
    size_t len = 0;
    FILE *out;
    guint status = 0;
    JsonNode *log;
    JsonArray *entries;

    memset(d, 0, sizeof(*d));
    d->emu = kd_emulator_start(s->tweak, NULL);
    d->dir = g_dir_make_tmp("kd-doctor-XXXXXX", &error);
    assert_non_null(d->dir);
    if (s->wrong_ca) {
        /* A real CA certificate that did not sign the emulator's server certificate. */
        g_autofree char *pem = NULL;
        ca = g_build_filename(d->dir, "other-ca.pem", NULL);
        assert_true(
            g_file_get_contents(KD_SOURCE_DIR "/tests/data/config/kiosk.pem", &pem, NULL, NULL));
        assert_true(g_file_set_contents(ca, pem, -1, NULL));
    }
    d->config =
        write_config(d->dir, s->secret != NULL ? s->secret : KD_EMU_KIOSK_SECRET,
                     ca != NULL ? ca : d->emu->ca_file, s->enrolment, s->tracking, s->operator_mode,
                     s->host_port != NULL ? s->host_port : d->emu->host_port);
    kd_emulator_call(d->emu, "DELETE", "/_emulator/requests", NULL, &status);

    out = open_memstream(&buf, &len);
    d->status = kd_doctor_main(d->config, out, stderr);
    fclose(out);
    d->output = buf;
    fprintf(stderr, "--- doctor exit %d\n%s", d->status, d->output);

    /* Read-only: every Graph request the doctor made was a GET (token requests are POSTs to
     * the login host, which has no /v1.0 or /beta). */
    g_usleep(100 * 1000);
    log = kd_emulator_requests(d->emu, -1);
    entries = json_node_get_array(log);
    for (guint i = 0; i < json_array_get_length(entries); i++) {
        JsonObject *o = json_array_get_object_element(entries, i);
        const char *version = json_object_get_string_member_with_default(o, "version", "");
        const char *method = json_object_get_string_member_with_default(o, "method", "");
        if (version != NULL && *version != '\0')
            assert_string_equal(method, "GET");
    }
    json_node_unref(log);
}

static void
doctor_clear(Doctor *d)
{
    g_autofree char *rm = g_strdup_printf("rm -rf '%s'", d->dir);

    kd_emulator_stop(&d->emu);
    assert_int_equal(system(rm), 0);
    g_free(d->dir);
    g_free(d->config);
    free(d->output);
}

/* The output holds @line as a whole line. */
static void
assert_line(const Doctor *d, const char *line)
{
    g_autofree char *needle = g_strdup_printf("\n%s\n", line);
    g_autofree char *hay = g_strdup_printf("\n%s", d->output);

    if (strstr(hay, needle) == NULL)
        fprintf(stderr, "missing line:\n%s\n", line);
    assert_non_null(strstr(hay, needle));
}

static guint
count_status(const Doctor *d, const char *status)
{
    g_autofree char *hay = g_strdup_printf("\n%s", d->output);
    g_autofree char *needle = g_strdup_printf("\n%s  ", status);
    guint n = 0;

    for (const char *p = strstr(hay, needle); p != NULL; p = strstr(p + 1, needle))
        n++;
    return n;
}

/* --- tests ------------------------------------------------------------------------------------ */

static void
test_healthy_free_tenant(void **state)
{
    Setup s = {.tweak = ALL_PERMS "t['tenant']['license'] = 'free'\n"};
    Doctor d;

    run_doctor(&d, &s);
    assert_int_equal(d.status, 0);
    assert_int_equal(count_status(&d, "FAIL"), 0);
    assert_line(&d, "PASS  FIDO2 policy: enabled for all users, self-service set up allowed, "
                    "attestation not enforced, no key restrictions.");
    assert_line(&d, "PASS  TAP policy: enabled for all users; tap-lifetime = 60 minutes is within "
                    "the policy's 60–480 minutes; passes are one-time (keydesk asks for it).");
    assert_line(&d, "PASS  Tracking group: 'MFA registered at keydesk' exists, is assigned (not "
                    "dynamic), is not role-assignable, and its members can be read.");
    /* The free licence is a note, not a failure. */
    assert_line(&d, "WARN  Registration report: the tenant has no Entra ID P1 or P2 licence, so "
                    "Graph refuses the report; the dashboard's census lists users and reads their "
                    "methods through $batch instead (nothing to change; slower for large "
                    "tenants).");
    assert_line(&d, "SKIP  Sign-in logs: Graph serves them only to Entra ID P1 or P2 tenants, so "
                    "the dashboard shows no legacy sign-ins (nothing to change).");
    doctor_clear(&d);
}

static void
test_healthy_p1_tenant(void **state)
{
    Setup s = {.tweak = ALL_PERMS};
    Doctor d;

    run_doctor(&d, &s);
    assert_int_equal(d.status, 0);
    assert_int_equal(count_status(&d, "FAIL"), 0);
    assert_int_equal(count_status(&d, "WARN"), 0);
    assert_line(&d, "PASS  Registration report: readable (Entra ID P1 or P2), so the dashboard's "
                    "census reads it in a few requests.");
    assert_line(&d, "PASS  Permissions: app " APP " has every application permission the enabled "
                    "features need (User.Read.All, UserAuthMethod-Passkey.ReadWrite.All, "
                    "UserAuthMethod-TAP.ReadWrite.All, UserAuthenticationMethod.Read.All, "
                    "Policy.Read.AuthenticationMethod, GroupMember.ReadWrite.All, "
                    "AuditLog.Read.All, Policy.Read.All, RoleManagement.Read.Directory).");
    doctor_clear(&d);
}

static void
test_missing_permission(void **state)
{
    Setup s = {.tweak = ALL_PERMS "p.remove('UserAuthMethod-Passkey.ReadWrite.All')\n"};
    Doctor d;

    run_doctor(&d, &s);
    assert_int_equal(d.status, 1);
    assert_line(&d,
                "FAIL  Permission: UserAuthMethod-Passkey.ReadWrite.All is not granted to app " APP
                ", and the security-key flow registers FIDO2 keys with it: Entra admin center → "
                "Applications → App registrations → " APP " → API permissions → Add a permission → "
                "Microsoft Graph → Application permissions → UserAuthMethod-Passkey.ReadWrite.All, "
                "then Grant admin consent.");
    doctor_clear(&d);
}

static void
test_fido2_disabled(void **state)
{
    Setup s = {.tweak = ALL_PERMS "t['policies']['fido2'] = {'state': 'disabled'}\n"};
    Doctor d;

    run_doctor(&d, &s);
    assert_int_equal(d.status, 1);
    assert_line(&d, "FAIL  FIDO2 policy: the Passkey (FIDO2) method is disabled, so Graph refuses "
                    "every key the desk registers: Entra admin center → Protection → "
                    "Authentication methods → Passkey (FIDO2) → Enable and target → Enable: Yes.");
    doctor_clear(&d);
}

static void
test_fido2_self_service_off(void **state)
{
    Setup s = {.tweak = ALL_PERMS
               "t['policies']['fido2'] = {'isSelfServiceRegistrationAllowed': False}\n"};
    Doctor d;

    run_doctor(&d, &s);
    assert_int_equal(d.status, 1);
    assert_line(&d, "FAIL  FIDO2 policy: 'Allow self-service set up' is off. Graph's FIDO2 "
                    "provisioning API fails without it: Entra admin center → Protection → "
                    "Authentication methods → Passkey (FIDO2) → Configure → Allow self-service "
                    "set up: Yes.");
    doctor_clear(&d);
}

static void
test_fido2_attestation_allow_list(void **state)
{
    Setup s = {.tweak = ALL_PERMS
               "t['policies']['fido2'] = {'isAttestationEnforced': True, 'keyRestrictions': "
               "{'isEnforced': True, 'enforcementType': 'allow', 'aaGuids': "
               "['cb69481e-8ff7-4039-93ec-0a2729a154a8', 'ee882879-721c-4913-9775-3dfcce97072a']}, "
               "'includeTargets': [{'targetType': 'group', 'id': '" KD_EMU_GROUP
               "', 'isRegistrationRequired': False}]}\n"};
    Doctor d;

    run_doctor(&d, &s);
    /* Keys of the listed models still work: warnings, exit 0. */
    assert_int_equal(d.status, 0);
    assert_line(&d, "WARN  FIDO2 policy: 'Enforce attestation' is on, so only keys whose "
                    "attestation Entra can verify are accepted: hand out keys listed in the FIDO "
                    "Alliance Metadata Service (YubiKey 5, for example), or set Enforce "
                    "attestation: No under Entra admin center → Protection → Authentication "
                    "methods → Passkey (FIDO2) → Configure.");
    assert_line(&d, "WARN  FIDO2 policy: key restrictions allow only 2 key models (AAGUID "
                    "cb69481e-8ff7-4039-93ec-0a2729a154a8, …), and the desk refuses any other key "
                    "before touching it: hand out only those models, or edit Restrict specific "
                    "keys under Entra admin center → Protection → Authentication methods → "
                    "Passkey (FIDO2) → Configure.");
    assert_line(&d, "WARN  FIDO2 policy: only group " KD_EMU_GROUP " may register keys, not All "
                    "users, and Graph refuses a key for anyone else: make sure visitors are in "
                    "it, or target All users under Entra admin center → Protection → "
                    "Authentication methods → Passkey (FIDO2) → Enable and target.");
    doctor_clear(&d);
}

static void
test_tap_lifetime(void **state)
{
    Setup s = {.tweak = ALL_PERMS, .enrolment = "tap-lifetime = 30\n"};
    Doctor d;

    run_doctor(&d, &s);
    assert_int_equal(d.status, 1);
    {
        g_autofree char *line = g_strdup_printf(
            "FAIL  TAP policy: tap-lifetime = 30 minutes is outside the policy's 60–480 minutes, "
            "so Graph refuses every pass the desk asks for: set tap-lifetime between 60 and 480 "
            "in %s, or change Minimum/Maximum lifetime under Entra admin center → Protection → "
            "Authentication methods → Temporary Access Pass → Configure.",
            d.config);
        assert_line(&d, line);
    }
    doctor_clear(&d);
}

static void
test_group_missing(void **state)
{
    Setup s = {.tweak = ALL_PERMS "t['groups'] = []\n"};
    Doctor d;

    run_doctor(&d, &s);
    assert_int_equal(d.status, 1);
    assert_line(&d, "FAIL  Tracking group: group-id " KD_EMU_GROUP " does not exist in the "
                    "tenant, so no registration can be recorded: create a security group (Entra "
                    "admin center → Groups → New group, membership type Assigned, not "
                    "role-assignable) and put its Object ID in group-id.");
    doctor_clear(&d);
}

static void
test_group_role_assignable(void **state)
{
    Setup s = {.tweak = ALL_PERMS "t['groups'][0]['isAssignableToRole'] = True\n"};
    Doctor d;

    run_doctor(&d, &s);
    assert_int_equal(d.status, 1);
    assert_line(&d, "FAIL  Tracking group: 'MFA registered at keydesk' is role-assignable, and "
                    "adding members to such a group also needs RoleManagement.ReadWrite.Directory, "
                    "which app " APP " does not have (and should not: it could then make anyone "
                    "an admin): use a group that is not role-assignable.");
    doctor_clear(&d);
}

#define EXTENSION "extension_3f2a6c1e8d4b4e579a0f2b7c1d9e4f60_mfaKioskEnrolled"

static void
test_extension_attribute(void **state)
{
    Setup undeclared = {.tweak = ALL_PERMS,
                        .tracking =
                            "group-id = " KD_EMU_GROUP "\nextension-attribute = " EXTENSION "\n"};
    Setup declared = undeclared;
    Doctor d;

    run_doctor(&d, &undeclared);
    assert_int_equal(d.status, 1);
    assert_non_null(strstr(d.output, "\nFAIL  Extension attribute: " EXTENSION
                                     " is not a directory extension the tenant knows ("));
    doctor_clear(&d);

    declared.tweak = ALL_PERMS "t['extensionProperties'] = [{'name': '" EXTENSION
                               "', 'dataType': 'DateTime', 'targetObjects': ['User']}]\n";
    run_doctor(&d, &declared);
    assert_int_equal(d.status, 0);
    assert_line(&d, "PASS  Extension attribute: " EXTENSION " is a directory extension of the "
                    "tenant.");
    doctor_clear(&d);
}

static void
test_wrong_secret(void **state)
{
    Setup s = {.tweak = ALL_PERMS, .secret = "not-the-secret"};
    Doctor d;

    run_doctor(&d, &s);
    assert_int_equal(d.status, 1);
    {
        g_autofree char *file = g_build_filename(d.dir, "client.secret", NULL);
        g_autofree char *line = g_strdup_printf(
            "FAIL  App credential: Entra refused the client secret (AADSTS7000215, invalid client "
            "secret): %s does not hold a current secret of app " APP "; create one under Entra "
            "admin center → Applications → App registrations → " APP " → Certificates & secrets "
            "→ New client secret and put its Value (not its Secret ID) in %s.",
            file, file);
        assert_line(&d, line);
    }
    assert_line(&d, "SKIP  FIDO2 policy: not checked: there is no token without a working app "
                    "credential.");
    doctor_clear(&d);
}

static void
test_wrong_ca(void **state)
{
    Setup s = {.tweak = ALL_PERMS, .wrong_ca = TRUE};
    Doctor d;
    g_autofree char *prefix = NULL;

    run_doctor(&d, &s);
    assert_int_equal(d.status, EX_UNAVAILABLE);
    prefix = g_strdup_printf("FAIL  Connection: the TLS certificate of https://%s is not trusted (",
                             d.emu->host_port);
    assert_non_null(strstr(d.output, prefix));
    assert_non_null(strstr(d.output, "does not contain the CA that signed it, so keydesk refuses "
                                     "the connection;"));
    assert_line(&d, "doctor: Microsoft Graph or the identity platform cannot be reached from this "
                    "desk, so nothing else was checked.");
    doctor_clear(&d);
}

static void
test_operator_mode(void **state)
{
    Setup s = {.tweak = ALL_PERMS, .operator_mode = TRUE};
    Doctor d;

    run_doctor(&d, &s);
    assert_int_equal(d.status, 0);
    assert_line(&d, "SKIP  App credential: none configured (identity-mode operator): every change "
                    "is made with the signed-in staff member's token, so the permission and "
                    "policy checks below need a staff sign-in; sign in at the desk as an "
                    "Authentication Administrator to check them there.");
    assert_line(&d, "SKIP  FIDO2 policy: needs a staff sign-in (no app credential configured).");
    assert_int_equal(count_status(&d, "PASS"), 2); /* configuration, connection */
    doctor_clear(&d);
}

static void
test_unreachable(void **state)
{
    /* Port 9 (discard) on loopback: nothing listens, the connection is refused. */
    Setup s = {.tweak = ALL_PERMS, .host_port = "127.0.0.1:9"};
    Doctor d;

    run_doctor(&d, &s);
    assert_int_equal(d.status, EX_UNAVAILABLE);
    assert_non_null(strstr(d.output, "FAIL  Connection: cannot reach https://127.0.0.1:9 ("));
    assert_non_null(strstr(d.output, "): the desk needs outbound HTTPS to https://127.0.0.1:9 and "
                                     "https://127.0.0.1:9; check DNS, the firewall and the proxy "
                                     "setting in keydesk.conf.\n"));
    doctor_clear(&d);
}

static void
test_invalid_config(void **state)
{
    g_autoptr(GError) error = NULL;
    g_autofree char *dir = g_dir_make_tmp("kd-doctor-XXXXXX", &error);
    g_autofree char *path = g_build_filename(dir, "bad.conf", NULL);
    g_autofree char *rm = g_strdup_printf("rm -rf '%s'", dir);
    char *buf = NULL;
    size_t len = 0;
    FILE *err;
    int status;

    assert_true(g_file_set_contents(path, "[kiosk]\nname = x\nidle-timeout = banana\n", -1, NULL));
    err = open_memstream(&buf, &len);
    status = kd_doctor_main(path, stdout, err);
    fclose(err);
    assert_int_equal(status, EX_CONFIG);
    assert_non_null(strstr(buf, "FAIL  Configuration: "));
    free(buf);
    assert_int_equal(system(rm), 0);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_healthy_free_tenant),
        cmocka_unit_test(test_healthy_p1_tenant),
        cmocka_unit_test(test_missing_permission),
        cmocka_unit_test(test_fido2_disabled),
        cmocka_unit_test(test_fido2_self_service_off),
        cmocka_unit_test(test_fido2_attestation_allow_list),
        cmocka_unit_test(test_tap_lifetime),
        cmocka_unit_test(test_group_missing),
        cmocka_unit_test(test_group_role_assignable),
        cmocka_unit_test(test_extension_attribute),
        cmocka_unit_test(test_wrong_secret),
        cmocka_unit_test(test_wrong_ca),
        cmocka_unit_test(test_operator_mode),
        cmocka_unit_test(test_unreachable),
        cmocka_unit_test(test_invalid_config),
    };

    g_unsetenv("https_proxy");
    g_unsetenv("HTTPS_PROXY");
    g_unsetenv("all_proxy");
    g_unsetenv("ALL_PROXY");
    return cmocka_run_group_tests(tests, NULL, NULL);
}
