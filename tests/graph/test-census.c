/* test-census: the registration census against the emulator: the report and the $batch path give
 * the same rows and totals, the free licence falls back to $batch, throttling is honoured,
 * cancellation stops it, and a generated tenant comes out the same both ways. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "graph/kd-graph-census.h"
#include "kd-emulator.h"

/* The kiosk app may also read role assignments (who is an admin) in these tenants. */
#define ROLES_PERMISSION \
    "t['apps'][0]['applicationPermissions'].append('RoleManagement.Read.Directory')\n"

#define FRANK "3b1c2d4e-0000-4000-8000-0000000000f1"
#define ERIN  "3b1c2d4e-0000-4000-8000-0000000000f2"
#define HANK  "3b1c2d4e-0000-4000-8000-0000000000f3"
#define ALMA  "3b1c2d4e-0000-4000-8000-0000000000f4"
#define PAUL  "3b1c2d4e-0000-4000-8000-0000000000f5"
#define GUS   "3b1c2d4e-0000-4000-8000-0000000000f6"

/* One person in each state the census tells apart, and a methods policy that targets a group
 * (FIDO2) and excludes a user (Authenticator), so MFA-capable differs from registered. */
static const char *const rich_tenant = ROLES_PERMISSION
    "d = 'contoso.onmicrosoft.com'\n"
    "def user(uid, nick, methods, **kw):\n"
    "    u = {'id': uid, 'userPrincipalName': nick + '@' + d, 'displayName': nick.title(),\n"
    "         'methods': [{'type': 'password'}] + methods}\n"
    "    u.update(kw)\n"
    "    t['users'].append(u)\n"
    "user('" FRANK "', 'frank', [{'type': 'fido2', 'displayName': 'Key', 'aaGuid': "
    "'ee882879-721c-4913-9775-3dfcce97072a', 'model': 'YubiKey 5', "
    "'attestationCertificates': [], 'attestationLevel': 'attested', 'passkeyType': "
    "'deviceBound'}])\n"
    "user('" ERIN "', 'erin', [{'type': 'microsoftAuthenticator', 'displayName': 'Old phone', "
    "'default': True}], accountEnabled=False)\n"
    "user('" HANK "', 'hank', [{'type': 'hardwareOath', 'displayName': 'Token', 'default': "
    "True}])\n"
    "user('" ALMA "', 'alma', [{'type': 'phone', 'phoneNumber': '+1 2065550111', 'phoneType': "
    "'mobile', 'default': True}, {'type': 'phone', 'phoneNumber': '+1 2065550112', "
    "'phoneType': 'alternateMobile'}, {'type': 'email', 'emailAddress': 'alma@example.com'}])\n"
    "user('" PAUL "', 'paul', [{'type': 'microsoftAuthenticator', 'displayName': 'Pixel', "
    "'default': True}, {'type': 'fido2', 'displayName': 'Authenticator passkey', 'aaGuid': "
    "'de1e552d-db1d-4423-a619-566b625cdc84', 'attestationCertificates': [], "
    "'attestationLevel': 'notAttested', 'passkeyType': 'deviceBound'}, {'type': "
    "'windowsHelloForBusiness', 'displayName': 'DESKTOP-1', 'keyStrength': 'normal'}])\n"
    "user('" GUS "', 'gus', [], directoryRoles=['Global Reader'])\n"
    "user('3b1c2d4e-0000-4000-8000-0000000000f7', 'pia', [{'type': 'platformCredential', "
    "'displayName': 'Mac', 'keyStrength': 'normal'}])\n"
    "user('3b1c2d4e-0000-4000-8000-0000000000f8', 'emma', [{'type': 'email', 'emailAddress': "
    "'emma@example.com'}])\n"
    "user('3b1c2d4e-0000-4000-8000-0000000000f9', 'tess', [{'type': 'temporaryAccessPass', "
    "'lifetimeInMinutes': 60, 'isUsableOnce': True}])\n"
    "user('3b1c2d4e-0000-4000-8000-0000000000fa', 'otis', [{'type': 'softwareOath', "
    "'default': True}])\n"
    "t['groups'][0]['members'] = ['" KD_EMU_USER_CAROL "']\n"
    "t['policies']['fido2'] = {'includeTargets': [{'targetType': 'group', 'id': '" KD_EMU_GROUP
    "', 'isRegistrationRequired': False}]}\n"
    "t['policies']['microsoftAuthenticator'] = {'excludeTargets': [{'targetType': 'user', 'id': "
    "'" KD_EMU_USER_BOB "'}]}\n"
    "t['settings']['reportLagSeconds'] = 0\n";

static KdEmulator *emu;

/* --- helpers ---------------------------------------------------------------------------------- */

static void
control(KdEmulator *e, const char *method, const char *path, const char *body)
{
    guint status = 0;
    JsonNode *node = kd_emulator_call(e, method, path, body, &status);

    if (status < 200 || status > 299)
        fprintf(stderr, "control %s %s → %u\n", method, path, status);
    assert_true(status >= 200 && status <= 299);
    g_clear_pointer(&node, json_node_unref);
}

static KdGraphClient *
new_client(KdEmulator *e)
{
    const char *port = strrchr(e->host_port, ':') + 1;
    g_autofree char *graph = g_strdup_printf("graph.microsoft.com:443:127.0.0.1:%s", port);
    g_autofree char *login = g_strdup_printf("login.microsoftonline.com:443:127.0.0.1:%s", port);
    const char *connect_to[] = {graph, login, NULL};
    KdSecret *secret = kd_secret_new_from(KD_EMU_KIOSK_SECRET, strlen(KD_EMU_KIOSK_SECRET));
    KdGraphOptions options = {
        .graph_url = "https://graph.microsoft.com",
        .login_url = "https://login.microsoftonline.com",
        .tenant = KD_EMU_TENANT_ID,
        .client_id = KD_EMU_KIOSK_APP,
        .client_secret = secret,
        .ca_file = e->ca_file,
        .connect_to = connect_to,
    };
    g_autoptr(GError) error = NULL;
    KdGraphClient *client = kd_graph_client_new(&options, &error);

    kd_secret_unref(secret);
    if (client == NULL)
        fprintf(stderr, "kd_graph_client_new: %s\n", error->message);
    assert_non_null(client);
    kd_graph_client_set_random_seed(client, 7);
    return client;
}

typedef struct {
    gboolean done;
    KdGraphCensusResult *result;
    GError *error;
    GHashTable *rows; /* id → "upn|name|enabled|guest|admin|methods|registered|capable|default" */
    guint cancel_after;
    GCancellable *cancellable;
    gint64 cancelled_at; /* wall clock, µs */
} Run;

static void
on_row(const KdGraphCensusRow *row, gpointer data)
{
    Run *run = data;
    char *line =
        g_strdup_printf("%s|%s|%d|%d|%d|%x|%d|%d|%s", row->user_principal_name, row->display_name,
                        row->enabled, row->guest, row->admin, row->methods, row->mfa_registered,
                        row->mfa_capable, kd_graph_census_default_name(row->default_method));

    /* Every user exactly once. */
    assert_false(g_hash_table_contains(run->rows, row->id));
    g_hash_table_insert(run->rows, g_strdup(row->id), line);
    if (run->cancel_after > 0 && g_hash_table_size(run->rows) == run->cancel_after) {
        run->cancelled_at = g_get_real_time();
        g_cancellable_cancel(run->cancellable);
    }
}

static void
on_census(GObject *source, GAsyncResult *res, gpointer data)
{
    Run *run = data;

    run->result = kd_graph_census_finish(KD_GRAPH_CLIENT(source), res, &run->error);
    run->done = TRUE;
}

static void
run_init(Run *run)
{
    memset(run, 0, sizeof(*run));
    run->rows = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
}

static void
run_clear(Run *run)
{
    g_clear_pointer(&run->result, kd_graph_census_result_free);
    g_clear_error(&run->error);
    g_clear_pointer(&run->rows, g_hash_table_unref);
    g_clear_object(&run->cancellable);
}

static void
census(KdGraphClient *client, KdGraphCensusMode mode, KdGraphCensusFlags flags, Run *run,
       guint timeout_ms)
{
    KdGraphCensusOptions options = {.mode = mode, .flags = flags};

    run_init(run);
    if (run->cancellable == NULL)
        run->cancellable = g_cancellable_new();
    kd_graph_census_async(client, &options, on_row, run, run->cancellable, on_census, run);
    assert_true(kd_test_run_until(&run->done, timeout_ms));
    if (run->error != NULL)
        fprintf(stderr, "census: %s\n", run->error->message);
}

static void
print_result(const char *what, const KdGraphCensusResult *r)
{
    fprintf(stderr,
            "%s: mode %d users %u enabled %u disabled %u members %u guests %u registered %u "
            "capable %u not capable %u password only %u admins %u admins without MFA %u | "
            "%.2f s, %u requests, %u items, %u throttled, %u RU, peak %u in flight, refill "
            "%.1f RU/s\n",
            what, r->mode, r->users, r->enabled, r->disabled, r->members, r->guests,
            r->mfa_registered, r->mfa_capable, r->not_mfa_capable, r->password_only, r->admins,
            r->admins_without_mfa, r->seconds, r->requests, r->batch_items, r->throttled_items,
            r->resource_units, r->peak_in_flight, r->refill_estimate);
}

/* Same totals (mode and statistics of the run aside) and the same row for every user. */
static void
assert_same(const Run *a, const Run *b)
{
    const KdGraphCensusResult *x = a->result, *y = b->result;
    GHashTableIter it;
    gpointer key, value;

    assert_int_equal(x->users, y->users);
    assert_int_equal(x->enabled, y->enabled);
    assert_int_equal(x->disabled, y->disabled);
    assert_int_equal(x->members, y->members);
    assert_int_equal(x->guests, y->guests);
    assert_int_equal(x->mfa_registered, y->mfa_registered);
    assert_int_equal(x->mfa_capable, y->mfa_capable);
    assert_int_equal(x->not_mfa_capable, y->not_mfa_capable);
    assert_int_equal(x->password_only, y->password_only);
    assert_int_equal(x->admins, y->admins);
    assert_int_equal(x->admins_without_mfa, y->admins_without_mfa);
    assert_memory_equal(x->by_method, y->by_method, sizeof(x->by_method));
    assert_true(x->admins_known && y->admins_known);
    assert_int_equal(g_hash_table_size(a->rows), x->users);
    assert_int_equal(g_hash_table_size(a->rows), g_hash_table_size(b->rows));
    g_hash_table_iter_init(&it, a->rows);
    while (g_hash_table_iter_next(&it, &key, &value)) {
        const char *other = g_hash_table_lookup(b->rows, key);
        if (g_strcmp0(value, other) != 0)
            fprintf(stderr, "row %s: %s vs %s\n", (const char *)key, (const char *)value,
                    other != NULL ? other : "(missing)");
        assert_string_equal(value, other != NULL ? other : "(missing)");
    }
}

static int
kind_count(const KdGraphCensusResult *r, KdGraphCensusMethod kind)
{
    return (int)r->by_method[kd_graph_census_method_index(kind)];
}

/* --- method-kind mapping ---------------------------------------------------------------------- */

static void
test_method_kinds(void **state)
{
    /* §6.1's report names and §5.1's method types land on the same kinds. */
    static const struct {
        const char *report, *odata;
        KdGraphCensusMethod kind;
    } pairs[] = {
        {"microsoftAuthenticatorPush",
         "#microsoft.graph.microsoftAuthenticatorAuthenticationMethod",
         KD_GRAPH_CENSUS_AUTHENTICATOR},
        {"microsoftAuthenticatorPasswordless",
         "#microsoft.graph.passwordlessMicrosoftAuthenticatorAuthenticationMethod",
         KD_GRAPH_CENSUS_AUTHENTICATOR},
        {"passKeyDeviceBound", "#microsoft.graph.fido2AuthenticationMethod", KD_GRAPH_CENSUS_FIDO2},
        {"fido2SecurityKey", "microsoft.graph.fido2AuthenticationMethod", KD_GRAPH_CENSUS_FIDO2},
        {"passKeyDeviceBoundAuthenticator", "fido2AuthenticationMethod", KD_GRAPH_CENSUS_FIDO2},
        {"softwareOneTimePasscode", "#microsoft.graph.softwareOathAuthenticationMethod",
         KD_GRAPH_CENSUS_SOFTWARE_OATH},
        {"hardwareOneTimePasscode", "#microsoft.graph.hardwareOathAuthenticationMethod",
         KD_GRAPH_CENSUS_HARDWARE_OATH},
        {"mobilePhone", "#microsoft.graph.phoneAuthenticationMethod", KD_GRAPH_CENSUS_PHONE},
        {"officePhone", "#microsoft.graph.phoneAuthenticationMethod", KD_GRAPH_CENSUS_PHONE},
        {"windowsHelloForBusiness", "#microsoft.graph.windowsHelloForBusinessAuthenticationMethod",
         KD_GRAPH_CENSUS_WINDOWS_HELLO},
        {"macOsSecureEnclaveKey", "#microsoft.graph.platformCredentialAuthenticationMethod",
         KD_GRAPH_CENSUS_PLATFORM_CREDENTIAL},
        {"email", "#microsoft.graph.emailAuthenticationMethod", KD_GRAPH_CENSUS_EMAIL},
        {"temporaryAccessPass", "#microsoft.graph.temporaryAccessPassAuthenticationMethod",
         KD_GRAPH_CENSUS_TAP},
        {"somethingNew", "#microsoft.graph.qrCodePinAuthenticationMethod", KD_GRAPH_CENSUS_OTHER},
    };

    for (gsize i = 0; i < G_N_ELEMENTS(pairs); i++) {
        assert_int_equal(kd_graph_census_method_from_report(pairs[i].report), pairs[i].kind);
        assert_int_equal(kd_graph_census_method_from_odata_type(pairs[i].odata), pairs[i].kind);
    }
    assert_int_equal(kd_graph_census_method_from_report("fido2"), KD_GRAPH_CENSUS_FIDO2);
    assert_int_equal(kd_graph_census_method_from_report("securityQuestion"),
                     KD_GRAPH_CENSUS_SECURITY_QUESTION);
    assert_int_equal(
        kd_graph_census_method_from_odata_type("#microsoft.graph.passwordAuthenticationMethod"), 0);
    assert_int_equal(kd_graph_census_method_from_odata_type(NULL), 0);
    assert_int_equal(kd_graph_census_method_index(KD_GRAPH_CENSUS_FIDO2), 2);
    assert_int_equal(kd_graph_census_method_index(KD_GRAPH_CENSUS_FIDO2 | KD_GRAPH_CENSUS_PHONE),
                     -1);
    assert_string_equal(kd_graph_census_method_name(KD_GRAPH_CENSUS_SOFTWARE_OATH), "softwareOath");
    assert_string_equal(kd_graph_census_default_name(KD_GRAPH_CENSUS_DEFAULT_VOICE_OFFICE),
                        "voiceOffice");
}

/* --- P1 tenant: report and batch agree -------------------------------------------------------- */

static void
test_report_and_batch_agree(void **state)
{
    KdGraphClient *client = new_client(emu);
    Run report, batch, automatic;
    const char *line;

    census(client, KD_GRAPH_CENSUS_REPORT, 0, &report, 30000);
    assert_null(report.error);
    print_result("report", report.result);
    assert_int_equal(report.result->mode, KD_GRAPH_CENSUS_REPORT);

    census(client, KD_GRAPH_CENSUS_BATCH, KD_GRAPH_CENSUS_RESOLVE_DEFAULT, &batch, 30000);
    assert_null(batch.error);
    print_result("batch", batch.result);
    assert_int_equal(batch.result->mode, KD_GRAPH_CENSUS_BATCH);
    assert_same(&report, &batch);

    /* What the tenant holds (tests/graph-emulator/tests/emutest.py + rich_tenant). */
    assert_int_equal(report.result->users, 17);
    assert_int_equal(report.result->disabled, 1);
    assert_int_equal(report.result->guests, 1);
    assert_int_equal(report.result->admins, 2);
    assert_int_equal(report.result->admins_without_mfa, 1); /* gus */
    assert_int_equal(kind_count(report.result, KD_GRAPH_CENSUS_HARDWARE_OATH), 1);
    assert_int_equal(kind_count(report.result, KD_GRAPH_CENSUS_FIDO2), 3);
    /* Registered but kept out by the policy: frank (FIDO2, not in the group) and bob
     * (Authenticator, excluded). */
    line = g_hash_table_lookup(report.rows, FRANK);
    assert_string_equal(line, "frank@contoso.onmicrosoft.com|Frank|1|0|0|4|1|0|none");
    line = g_hash_table_lookup(report.rows, KD_EMU_USER_BOB);
    assert_string_equal(line, "bob@contoso.onmicrosoft.com|Bob Builder|1|0|0|1|1|0|push");
    line = g_hash_table_lookup(report.rows, ERIN);
    assert_string_equal(line, "erin@contoso.onmicrosoft.com|Erin|0|0|0|0|0|0|none");
    line = g_hash_table_lookup(report.rows, ALMA);
    assert_string_equal(line, "alma@contoso.onmicrosoft.com|Alma|1|0|0|82|1|1|sms");
    line = g_hash_table_lookup(report.rows, GUS);
    assert_string_equal(line, "gus@contoso.onmicrosoft.com|Gus|1|0|1|0|0|0|none");

    /* Without RESOLVE_DEFAULT the batch path does not ask, and says so for the ambiguous ones
     * (dave: Authenticator + phone; alma: two phones); everything else is the same. */
    run_clear(&batch);
    census(client, KD_GRAPH_CENSUS_BATCH, 0, &batch, 30000);
    assert_null(batch.error);
    line = g_hash_table_lookup(batch.rows, ALMA);
    assert_string_equal(line, "alma@contoso.onmicrosoft.com|Alma|1|0|0|82|1|1|unknown");
    line = g_hash_table_lookup(batch.rows, KD_EMU_USER_DAVE);
    assert_true(g_str_has_suffix(line, "|unknown"));
    g_hash_table_remove(batch.rows, ALMA);
    g_hash_table_remove(batch.rows, KD_EMU_USER_DAVE);
    g_hash_table_remove(report.rows, ALMA);
    g_hash_table_remove(report.rows, KD_EMU_USER_DAVE);
    report.result->users -= 2;
    batch.result->users -= 2;
    assert_same(&report, &batch);

    /* AUTO on a P1 tenant takes the report. */
    census(client, KD_GRAPH_CENSUS_AUTO, 0, &automatic, 30000);
    assert_null(automatic.error);
    assert_int_equal(automatic.result->mode, KD_GRAPH_CENSUS_REPORT);
    assert_true(automatic.result->requests <= 4);

    run_clear(&report);
    run_clear(&batch);
    run_clear(&automatic);
    g_object_unref(client);
}

/* --- free tenant: AUTO falls back to $batch --------------------------------------------------- */

static void
test_free_tenant_falls_back(void **state)
{
    KdGraphClient *client = new_client(emu);
    Run report, automatic, forced;

    census(client, KD_GRAPH_CENSUS_REPORT, 0, &report, 30000);
    assert_null(report.error);
    control(emu, "PATCH", "/_emulator/settings", "{\"license\": \"free\"}");

    census(client, KD_GRAPH_CENSUS_AUTO, KD_GRAPH_CENSUS_RESOLVE_DEFAULT, &automatic, 30000);
    assert_null(automatic.error);
    assert_int_equal(automatic.result->mode, KD_GRAPH_CENSUS_BATCH);
    assert_same(&report, &automatic);

    /* Forcing the report on a free tenant says why it cannot. */
    census(client, KD_GRAPH_CENSUS_REPORT, 0, &forced, 30000);
    assert_true(g_error_matches(forced.error, KD_GRAPH_ERROR, KD_GRAPH_ERROR_FORBIDDEN));
    assert_non_null(strstr(forced.error->message, "P1 or P2"));
    assert_int_equal(g_hash_table_size(forced.rows), 0);

    control(emu, "PATCH", "/_emulator/settings", "{\"license\": \"P1\"}");
    run_clear(&report);
    run_clear(&automatic);
    run_clear(&forced);
    g_object_unref(client);
}

/* Without RoleManagement.Read.Directory the batch path still counts, and says admins are not
 * known; without UserAuthenticationMethod.Read.All it fails and names the permission. */
static void
test_missing_permissions(void **state)
{
    KdEmulator *e = kd_emulator_start("t['tenant']['license'] = 'free'\n"
                                      "p = t['apps'][0]['applicationPermissions']\n"
                                      "p.remove('UserAuthenticationMethod.Read.All')\n",
                                      NULL);
    KdGraphClient *client = new_client(e);
    Run run;

    census(client, KD_GRAPH_CENSUS_AUTO, 0, &run, 30000);
    assert_true(g_error_matches(run.error, KD_GRAPH_ERROR, KD_GRAPH_ERROR_FORBIDDEN));
    assert_non_null(strstr(run.error->message, "UserAuthenticationMethod.Read.All"));
    run_clear(&run);
    g_object_unref(client);
    kd_emulator_stop(&e);

    e = kd_emulator_start("t['tenant']['license'] = 'free'\n", NULL);
    client = new_client(e);
    census(client, KD_GRAPH_CENSUS_AUTO, 0, &run, 30000);
    assert_null(run.error);
    assert_int_equal(run.result->mode, KD_GRAPH_CENSUS_BATCH);
    assert_false(run.result->admins_known);
    assert_int_equal(run.result->admins, 0);
    assert_int_equal(run.result->users, 7);
    run_clear(&run);
    g_object_unref(client);
    kd_emulator_stop(&e);
}

/* --- generated tenants ------------------------------------------------------------------------ */

/* A tweak that replaces the tenant with make-tenant's output. */
static char *
generated_tenant(guint users, const char *extra)
{
    return g_strdup_printf(
        "import subprocess, tempfile, os\n"
        "out = os.path.join(tempfile.mkdtemp(prefix='census-'), 'tenant.json')\n"
        "subprocess.run([sys.executable, '%s/tests/graph-emulator/make-tenant', '--users', '%u', "
        "'--seed', '1', '--license', 'P1', '--out', out], check=True)\n"
        "t.clear(); t.update(json.load(open(out)))\n"
        "os.remove(out); os.rmdir(os.path.dirname(out))\n"
        "t.setdefault('settings', {})['reportLagSeconds'] = 0\n" ROLES_PERMISSION "%s\n",
        KD_SOURCE_DIR, users, extra != NULL ? extra : "");
}

static void
test_generated_tenant(void **state)
{
    g_autofree char *tweak = generated_tenant(300, NULL);
    KdEmulator *e = kd_emulator_start(tweak, NULL);
    KdGraphClient *client = new_client(e);
    Run report, batch;

    census(client, KD_GRAPH_CENSUS_REPORT, 0, &report, 60000);
    assert_null(report.error);
    print_result("report 300", report.result);
    census(client, KD_GRAPH_CENSUS_BATCH, KD_GRAPH_CENSUS_RESOLVE_DEFAULT, &batch, 120000);
    assert_null(batch.error);
    print_result("batch 300", batch.result);
    assert_same(&report, &batch);
    assert_int_equal(report.result->users, 300);
    /* The generator's mix (graphemu/generator.py): about a third only have a password. */
    assert_true(report.result->password_only > 60 && report.result->password_only < 140);
    assert_true(report.result->mfa_capable > 150);
    /* 20 users per $batch item list; the enabled ones only. */
    assert_true(batch.result->batch_items >= report.result->enabled);
    assert_true(batch.result->requests < report.result->enabled / 10);

    run_clear(&report);
    run_clear(&batch);
    g_object_unref(client);
    kd_emulator_stop(&e);
}

/* Tiny limits: 60 RU per 10 s. The census is still complete and right, it never sent an item
 * again before that item's Retry-After had passed, and it sent no $batch between an answer that
 * carried a 429 and the end of that answer's Retry-After. */
static void
test_throttled(void **state)
{
    g_autofree char *tweak = generated_tenant(100, NULL);
    KdEmulator *e = kd_emulator_start(tweak, NULL);
    KdGraphClient *client = new_client(e);
    g_autoptr(GHashTable) item_until =
        g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    g_autoptr(GHashTable) batch_ra = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    g_autoptr(GArray) pauses = g_array_new(FALSE, FALSE, sizeof(double));
    JsonNode *log;
    JsonArray *entries;
    Run report, batch;
    guint throttled = 0, retried = 0, batches = 0;

    census(client, KD_GRAPH_CENSUS_REPORT, 0, &report, 60000);
    assert_null(report.error);
    control(e, "PATCH", "/_emulator/settings",
            "{\"throttle\": {\"enabled\": true, \"ruPer10s\": 60, \"writesPer150s\": 3000}}");
    control(e, "DELETE", "/_emulator/throttle", NULL);
    control(e, "DELETE", "/_emulator/requests", NULL);

    census(client, KD_GRAPH_CENSUS_BATCH, KD_GRAPH_CENSUS_RESOLVE_DEFAULT, &batch, 240000);
    assert_null(batch.error);
    print_result("batch, 60 RU/10 s", batch.result);
    assert_same(&report, &batch);
    assert_true(batch.result->throttled_items > 0);
    /* The pacing found the refill rate (6 RU/s) within a factor of two or so. */
    assert_true(batch.result->refill_estimate > 3 && batch.result->refill_estimate < 12);

    g_usleep(300 * 1000); /* the emulator logs a request just after answering it */
    log = kd_emulator_requests(e, -1);
    entries = json_node_get_array(log);
    /* Pass 1, in log order: items. The log has items as they ran; "ts" is when each ran. */
    for (guint i = 0; i < json_array_get_length(entries); i++) {
        JsonObject *o = json_array_get_object_element(entries, i);
        const char *path = json_object_get_string_member_with_default(o, "path", "");
        const char *in_batch = json_object_get_string_member_with_default(o, "batch", NULL);
        gint64 status = json_object_get_int_member_with_default(o, "status", 0);
        double ts = json_object_get_double_member_with_default(o, "ts", 0);
        const char *ra = json_object_get_string_member_with_default(o, "retryAfter", NULL);
        double *until = g_hash_table_lookup(item_until, path);

        if (until != NULL) {
            if (ts + 0.01 < *until)
                fprintf(stderr, "%s sent again %.3f s before its Retry-After\n", path, *until - ts);
            assert_true(ts + 0.01 >= *until);
            g_hash_table_remove(item_until, path);
            retried++;
        }
        if (status == 429) {
            double secs = ra != NULL ? g_ascii_strtod(ra, NULL) : 0;
            double *t = g_new(double, 1);
            double *max_ra = in_batch != NULL ? g_hash_table_lookup(batch_ra, in_batch) : NULL;

            assert_non_null(ra);
            *t = ts + secs;
            g_hash_table_insert(item_until, g_strdup(path), t);
            if (in_batch != NULL && max_ra == NULL) {
                max_ra = g_new0(double, 1);
                g_hash_table_insert(batch_ra, g_strdup(in_batch), max_ra);
            }
            if (max_ra != NULL)
                *max_ra = MAX(*max_ra, secs);
            throttled++;
        }
    }
    /* Pass 2: each $batch that carried a 429 opens a pause from its answer to its Retry-After. */
    for (guint i = 0; i < json_array_get_length(entries); i++) {
        JsonObject *o = json_array_get_object_element(entries, i);
        const char *path = json_object_get_string_member_with_default(o, "path", "");
        const char *rid = json_object_get_string_member_with_default(o, "requestId", "");
        double *ra = g_hash_table_lookup(batch_ra, rid);

        if (g_str_has_suffix(path, "/$batch") && ra != NULL) {
            double answered = json_object_get_double_member_with_default(o, "ts", 0) +
                              json_object_get_double_member_with_default(o, "ms", 0) / 1000;
            double span[2] = {answered, answered + *ra};
            g_array_append_vals(pauses, span, 2);
        }
    }
    for (guint i = 0; i < json_array_get_length(entries); i++) {
        JsonObject *o = json_array_get_object_element(entries, i);
        const char *path = json_object_get_string_member_with_default(o, "path", "");
        double ts = json_object_get_double_member_with_default(o, "ts", 0);

        if (!g_str_has_suffix(path, "/$batch"))
            continue;
        batches++;
        for (guint k = 0; k + 1 < pauses->len; k += 2) {
            double from = g_array_index(pauses, double, k),
                   to = g_array_index(pauses, double, k + 1);
            /* 0.1 s of slack at the start: a batch already on its way when the 429 arrived. */
            if (ts > from + kd_test_slack(0.1) && ts + 0.01 < to)
                fprintf(stderr, "$batch at +%.3f s inside a %.3f s Retry-After pause\n", ts - from,
                        to - from);
            assert_false(ts > from + kd_test_slack(0.1) && ts + 0.01 < to);
        }
    }
    fprintf(stderr, "throttled: %u items answered 429, %u sent again, %u $batch calls, %u pauses\n",
            throttled, retried, batches, pauses->len / 2);
    assert_true(throttled > 0 && retried > 0);
    assert_int_equal(throttled, batch.result->throttled_items);
    json_node_unref(log);
    run_clear(&report);
    run_clear(&batch);
    g_object_unref(client);
    kd_emulator_stop(&e);
}

/* Cancelled half-way (from the row callback): the census ends with G_IO_ERROR_CANCELLED, rows
 * stop, and nothing more is sent. */
static void
test_cancel(void **state)
{
    g_autofree char *tweak = generated_tenant(300, NULL);
    KdEmulator *e = kd_emulator_start(
        tweak, "{\"rules\": [{\"name\": \"slow\", \"path\": \"/\\\\$batch$\", \"kind\": "
               "\"latency\", \"ms\": 100}]}");
    KdGraphClient *client = new_client(e);
    JsonNode *log;
    JsonArray *entries;
    guint sent = 0;
    Run run;

    run_init(&run);
    run.cancellable = g_cancellable_new();
    run.cancel_after = 50;
    {
        KdGraphCensusOptions options = {.mode = KD_GRAPH_CENSUS_BATCH};
        kd_graph_census_async(client, &options, on_row, &run, run.cancellable, on_census, &run);
        assert_true(kd_test_run_until(&run.done, 60000));
    }
    assert_true(g_error_matches(run.error, G_IO_ERROR, G_IO_ERROR_CANCELLED));
    assert_null(run.result);
    /* No row after the cancel, and no request sent after it (the emulator logs a request's
     * arrival time; items of a $batch already on its way still run there). */
    assert_int_equal(g_hash_table_size(run.rows), 50);
    g_usleep(500 * 1000);
    log = kd_emulator_requests(e, -1);
    entries = json_node_get_array(log);
    for (guint i = 0; i < json_array_get_length(entries); i++) {
        JsonObject *o = json_array_get_object_element(entries, i);
        double ts = json_object_get_double_member_with_default(o, "ts", 0);

        if (json_object_has_member(o, "batch"))
            continue;
        sent++;
        if (ts > (double)run.cancelled_at / G_USEC_PER_SEC + kd_test_slack(0.05))
            fprintf(stderr, "%s sent %.3f s after the cancel\n",
                    json_object_get_string_member_with_default(o, "path", ""),
                    ts - (double)run.cancelled_at / G_USEC_PER_SEC);
        assert_true(ts <= (double)run.cancelled_at / G_USEC_PER_SEC + kd_test_slack(0.05));
    }
    assert_true(sent > 3);
    json_node_unref(log);

    /* Cancelled before it starts: fails at once, no row. */
    run_clear(&run);
    run_init(&run);
    run.cancellable = g_cancellable_new();
    g_cancellable_cancel(run.cancellable);
    kd_graph_census_async(client, NULL, on_row, &run, run.cancellable, on_census, &run);
    assert_true(kd_test_run_until(&run.done, 5000));
    assert_true(g_error_matches(run.error, G_IO_ERROR, G_IO_ERROR_CANCELLED));
    assert_int_equal(g_hash_table_size(run.rows), 0);
    run_clear(&run);
    g_object_unref(client);
    kd_emulator_stop(&e);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_method_kinds),
        cmocka_unit_test(test_report_and_batch_agree),
        cmocka_unit_test(test_free_tenant_falls_back),
        cmocka_unit_test(test_missing_permissions),
        cmocka_unit_test(test_generated_tenant),
        cmocka_unit_test(test_throttled),
        cmocka_unit_test(test_cancel),
    };
    int status;

    g_unsetenv("https_proxy");
    g_unsetenv("HTTPS_PROXY");
    g_unsetenv("all_proxy");
    g_unsetenv("ALL_PROXY");
    emu = kd_emulator_start(rich_tenant, NULL);
    status = cmocka_run_group_tests(tests, NULL, NULL);
    kd_emulator_stop(&emu);
    return status;
}
