/* test-key-entra: a security key registered in Entra the way the kiosk will do it, end to end:
 * the soft key behind libfido2 (KdKey), Graph's creationOptions from the emulator over TLS,
 * core/kd-key-request's mapping, the credential, POST …/fido2Methods, and the emulator checking
 * the attestation with python3-fido2 as Entra does; then the tenant's FIDO2 policy read from
 * Graph and judged by the pre-flight before any challenge is spent. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "core/kd-key-request.h"
#include "graph/kd-graph-ops.h"
#include "kd-emulator.h"
#include "test-key-util.h"

#define ADA "ada@" KD_EMU_DOMAIN
#define PIN "246813579"

typedef struct {
    KdEmulator *emu;
    KdGraphClient *client;
    KdSecret *secret;
    SoftKey *sk;
    KdKey *key;
    char *ca_path;
} Fx;

static Fx *
fx_new(const char *tweak, gboolean self_attestation)
{
    Fx *fx = g_new0(Fx, 1);
    g_autoptr(GError) error = NULL;
    g_autofree char *port = NULL, *graph = NULL, *login = NULL;
    const char *connect_to[3];
    KdGraphOptions options = {0};

    fx->emu = kd_emulator_start(tweak, NULL);
    port = g_strdup(strrchr(fx->emu->host_port, ':') + 1);
    graph = g_strdup_printf("graph.microsoft.com:443:127.0.0.1:%s", port);
    login = g_strdup_printf("login.microsoftonline.com:443:127.0.0.1:%s", port);
    connect_to[0] = graph;
    connect_to[1] = login;
    connect_to[2] = NULL;
    fx->secret = kd_secret_new_from(KD_EMU_KIOSK_SECRET, strlen(KD_EMU_KIOSK_SECRET));
    options.graph_url = "https://graph.microsoft.com";
    options.login_url = "https://login.microsoftonline.com";
    options.tenant = KD_EMU_TENANT_ID;
    options.client_id = KD_EMU_KIOSK_APP;
    options.client_secret = fx->secret;
    options.ca_file = fx->emu->ca_file;
    options.connect_to = connect_to;
    fx->client = kd_graph_client_new(&options, &error);
    assert_no_error(error);

    fx->sk = softkey_new();
    softkey_set_self_attestation(fx->sk, self_attestation);
    fx->key = kt_soft_key(fx->sk);
    assert_true(kt_set_pin(fx->key, PIN, &error));
    assert_no_error(error);
    return fx;
}

static void
fx_free(Fx *fx)
{
    g_clear_object(&fx->key);
    softkey_free(fx->sk);
    g_clear_object(&fx->client);
    kd_secret_unref(fx->secret);
    kd_emulator_stop(&fx->emu);
    if (fx->ca_path != NULL) {
        g_unlink(fx->ca_path);
        g_free(fx->ca_path);
    }
    while (g_main_context_iteration(NULL, FALSE))
        ;
    g_free(fx);
}

static KdGraphFido2Options *
get_options(Fx *fx, GError **error)
{
    KtWait w;
    KdGraphFido2Options *o;

    kt_wait_init(&w);
    kd_graph_get_fido2_options_async(fx->client, ADA, 0, KD_GRAPH_CALL_INTERACTIVE, NULL, kt_done,
                                     &w);
    kt_wait_run(&w);
    o = kd_graph_get_fido2_options_finish(fx->client, w.result, error);
    kt_wait_clear(&w);
    return o;
}

static KdGraphMethod *
register_key(Fx *fx, const KdKeyCredentialResult *cred, GError **error)
{
    KdGraphFido2Registration reg = {0};
    KtWait w;
    KdGraphMethod *m;

    reg.display_name = "Virtual key (test)";
    reg.credential_id = cred->credential_id;
    reg.client_data_json = cred->client_data_json;
    reg.attestation_object = cred->attestation_object;
    reg.aaguid = cred->aaguid_string;
    kt_wait_init(&w);
    kd_graph_register_fido2_async(fx->client, ADA, &reg, KD_GRAPH_CALL_INTERACTIVE, NULL, kt_done,
                                  &w);
    kt_wait_run(&w);
    m = kd_graph_register_fido2_finish(fx->client, w.result, NULL, error);
    kt_wait_clear(&w);
    return m;
}

static KdKeyPolicy *
read_policy(Fx *fx)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(KdGraphMethodPolicy) policy = NULL;
    KtWait w;

    kt_wait_init(&w);
    kd_graph_get_method_policy_async(fx->client, KD_GRAPH_POLICY_FIDO2, 0, NULL, kt_done, &w);
    kt_wait_run(&w);
    policy = kd_graph_get_method_policy_finish(fx->client, w.result, &error);
    kt_wait_clear(&w);
    assert_no_error(error);
    return kd_key_request_policy_from_graph(policy);
}

/* How many creationOptions requests the emulator saw. */
static guint
options_requests(Fx *fx)
{
    g_autoptr(JsonNode) log = kd_emulator_requests(fx->emu, -1);
    JsonArray *a = json_node_get_array(log);
    guint n = 0;

    for (guint i = 0; i < json_array_get_length(a); i++) {
        const char *p = json_object_get_string_member_with_default(
            json_array_get_object_element(a, i), "path", "");
        n += strstr(p, "/fido2Methods/creationOptions") != NULL;
    }
    return n;
}

static void
test_register_then_excluded(void **state)
{
    Fx *fx = fx_new(NULL, FALSE);
    g_autoptr(GError) error = NULL;
    g_autoptr(KdGraphFido2Options) options = get_options(fx, &error);
    g_autoptr(KdKeyCredentialRequest) request = NULL;
    g_autoptr(KdKeyCredentialResult) cred = NULL;
    g_autoptr(KdGraphMethod) method = NULL;
    g_autoptr(KdGraphFido2Options) again = NULL;
    g_autoptr(KdKeyCredentialRequest) request2 = NULL;
    g_autoptr(KdKeyCredentialResult) cred2 = NULL;
    g_autoptr(KdKeyPolicy) policy = read_policy(fx);
    g_autoptr(KdKeyInfo) info = kt_info(fx->key, &error);
    g_autofree char *sentence = NULL;

    assert_no_error(error);
    /* The pre-flight with the tenant's real policy: allowed. */
    assert_int_equal(kd_key_policy_check(policy, info->aaguid,
                                         kd_key_attestation_guess(info->aaguid), &sentence),
                     KD_KEY_POLICY_ALLOWED);

    request = kd_key_request_from_fido2_options(options);
    assert_non_null(request);
    assert_string_equal(request->rp_id, "login.microsoft.com");
    cred = kt_make_credential(fx->key, request, PIN, &error);
    assert_no_error(error);
    assert_false(cred->self_attested);
    assert_int_equal(
        kd_key_policy_check_attestation(policy, cred->aaguid, cred->self_attested, NULL),
        KD_KEY_POLICY_ALLOWED);

    /* Entra's checks (as the emulator runs them with python3-fido2) accept what keydesk made. */
    method = register_key(fx, cred, &error);
    assert_no_error(error);
    assert_int_equal(method->kind, KD_GRAPH_METHOD_FIDO2);
    assert_string_equal(method->aaguid, cred->aaguid_string);
    assert_string_equal(method->attestation_level, "attested");
    assert_string_equal(method->display_name, "Virtual key (test)");

    /* The next creationOptions exclude this key: the key itself says it is already hers. */
    again = get_options(fx, &error);
    assert_no_error(error);
    assert_true(again->exclude_ids->len >= 1);
    request2 = kd_key_request_from_fido2_options(again);
    cred2 = kt_make_credential(fx->key, request2, PIN, &error);
    assert_null(cred2);
    assert_true(g_error_matches(error, KD_KEY_ERROR, KD_KEY_ERROR_ALREADY_REGISTERED));
    fx_free(fx);
}

/* A tenant that enforces attestation and trusts only the soft key's test CA: a key with full
 * attestation registers as attested; a self-attesting one is stopped by keydesk before the
 * POST (and Graph would refuse it too). */
static void
test_attestation_enforced(void **state)
{
    g_autofree char *dir = g_dir_make_tmp("kd-entra-XXXXXX", NULL);
    g_autofree char *ca = g_build_filename(dir, "ca.pem", NULL);
    g_autofree char *tweak = NULL;
    Fx *fx;
    g_autoptr(GError) error = NULL;
    g_autoptr(KdGraphFido2Options) options = NULL;
    g_autoptr(KdKeyCredentialRequest) request = NULL;
    g_autoptr(KdKeyCredentialResult) cred = NULL;
    g_autoptr(KdGraphMethod) method = NULL;
    g_autoptr(KdKeyPolicy) policy = NULL;

    assert_true(g_file_set_contents(ca, softkey_attestation_ca_pem(), -1, NULL));
    tweak = g_strdup_printf("t.setdefault('policies', {})['fido2'] = "
                            "{'isAttestationEnforced': True}; "
                            "t['settings']['fido2AttestationRoots'] = [open('%s').read()]",
                            ca);

    /* Full attestation to a trusted root. */
    fx = fx_new(tweak, FALSE);
    policy = read_policy(fx);
    assert_true(policy->attestation_enforced);
    options = get_options(fx, &error);
    assert_no_error(error);
    request = kd_key_request_from_fido2_options(options);
    cred = kt_make_credential(fx->key, request, PIN, &error);
    assert_no_error(error);
    method = register_key(fx, cred, &error);
    assert_no_error(error);
    assert_string_equal(method->attestation_level, "attested");
    fx_free(fx);
    g_clear_pointer(&options, kd_graph_fido2_options_free);
    g_clear_pointer(&request, kd_key_credential_request_free);
    g_clear_pointer(&cred, kd_key_credential_result_free);
    g_clear_pointer(&method, kd_graph_method_free);

    /* Self attestation: keydesk refuses it before the POST; sent anyway, Graph refuses it. */
    fx = fx_new(tweak, TRUE);
    options = get_options(fx, &error);
    assert_no_error(error);
    request = kd_key_request_from_fido2_options(options);
    cred = kt_make_credential(fx->key, request, PIN, &error);
    assert_no_error(error);
    assert_true(cred->self_attested);
    assert_int_equal(
        kd_key_policy_check_attestation(policy, cred->aaguid, cred->self_attested, NULL),
        KD_KEY_POLICY_ATTESTATION_REQUIRED);
    method = register_key(fx, cred, &error);
    assert_null(method);
    assert_true(g_error_matches(error, KD_GRAPH_ERROR, KD_GRAPH_ERROR_BAD_REQUEST));
    fx_free(fx);
    g_unlink(ca);
    g_rmdir(dir);
}

/* A block list naming the key's model: the pre-flight says no before a challenge is spent. */
static void
test_blocked_before_any_challenge(void **state)
{
    SoftKey *probe = softkey_new();
    guint8 aaguid[16];
    g_autofree char *aaguid_text = NULL, *tweak = NULL, *sentence = NULL;
    Fx *fx;
    g_autoptr(KdKeyPolicy) policy = NULL;
    g_autoptr(KdKeyInfo) info = NULL;
    g_autoptr(GError) error = NULL;

    softkey_get_aaguid(probe, aaguid);
    softkey_free(probe);
    aaguid_text = g_strdup_printf("%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x"
                                  "%02x",
                                  aaguid[0], aaguid[1], aaguid[2], aaguid[3], aaguid[4], aaguid[5],
                                  aaguid[6], aaguid[7], aaguid[8], aaguid[9], aaguid[10],
                                  aaguid[11], aaguid[12], aaguid[13], aaguid[14], aaguid[15]);
    tweak = g_strdup_printf("t.setdefault('policies', {})['fido2'] = {'keyRestrictions': "
                            "{'isEnforced': True, 'enforcementType': 'block', "
                            "'aaGuids': ['%s']}}",
                            aaguid_text);
    fx = fx_new(tweak, FALSE);
    policy = read_policy(fx);
    info = kt_info(fx->key, &error);
    assert_no_error(error);
    assert_int_equal(kd_key_policy_check(policy, info->aaguid,
                                         kd_key_attestation_guess(info->aaguid), &sentence),
                     KD_KEY_POLICY_BLOCKED);
    assert_non_null(strstr(sentence, "does not allow"));
    assert_int_equal(options_requests(fx), 0);
    fx_free(fx);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_register_then_excluded),
        cmocka_unit_test(test_attestation_enforced),
        cmocka_unit_test(test_blocked_before_any_challenge),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
