/* test-key-models: the soft key presents each of the 167 recorded key models
 * (../shared/reference/keys/getinfo/{mds,device}/NAME.json); for every one, keydesk's info must
 * match the record, the PIN rule sentence must state its minimum length, the pre-flight against
 * allow/block lists with and without its AAGUID must decide right, and (for FIDO2 models with a
 * PIN) the Entra credential must be made. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>
#include <json-glib/json-glib.h>

#include "hw/kd-aaguid-catalogue.h"
#include "hw/kd-pin-rules.h"
#include "test-key-util.h"

#define OTHER_AAGUID "00112233-4455-6677-8899-aabbccddeeff"

static JsonObject *
load_record(const char *path)
{
    g_autoptr(JsonParser) parser = json_parser_new();
    g_autoptr(GError) error = NULL;

    if (!json_parser_load_from_file(parser, path, &error))
        fail_msg("%s: %s", path, error->message);
    return json_object_ref(json_node_get_object(json_parser_get_root(parser)));
}

static const char *
member_string(JsonObject *o, const char *name)
{
    JsonNode *n = json_object_get_member(o, name);

    return n != NULL && JSON_NODE_HOLDS_VALUE(n) && json_node_get_value_type(n) == G_TYPE_STRING
               ? json_node_get_string(n)
               : NULL;
}

static gboolean
member_int(JsonObject *o, const char *name, gint64 *value)
{
    JsonNode *n = json_object_get_member(o, name);

    if (n == NULL || !JSON_NODE_HOLDS_VALUE(n) || json_node_get_value_type(n) != G_TYPE_INT64)
        return FALSE;
    *value = json_node_get_int(n);
    return TRUE;
}

/* -1 absent, else the boolean. */
static int
option(JsonObject *record, const char *name)
{
    JsonNode *n = json_object_get_member(record, "options");
    JsonNode *v;

    if (n == NULL || !JSON_NODE_HOLDS_OBJECT(n))
        return -1;
    v = json_object_get_member(json_node_get_object(n), name);
    if (v == NULL || !JSON_NODE_HOLDS_VALUE(v) || json_node_get_value_type(v) != G_TYPE_BOOLEAN)
        return -1;
    return json_node_get_boolean(v);
}

static gboolean
lists_version(JsonObject *record, const char *version, gboolean *any_fido2)
{
    JsonNode *n = json_object_get_member(record, "versions");
    gboolean found = FALSE;

    if (n == NULL || !JSON_NODE_HOLDS_ARRAY(n))
        return FALSE;
    for (guint i = 0; i < json_array_get_length(json_node_get_array(n)); i++) {
        const char *v = json_array_get_string_element(json_node_get_array(n), i);

        if (v == NULL)
            continue;
        if (g_str_has_prefix(v, "FIDO_2_"))
            *any_fido2 = TRUE;
        if (strcmp(v, version) == 0)
            found = TRUE;
    }
    return found;
}

static KdKeyCtap
expected_ctap(JsonObject *record)
{
    gboolean any = FALSE;
    const char *ctap = member_string(record, "ctap");

    if (lists_version(record, "FIDO_2_1", &any) || lists_version(record, "FIDO_2_2", &any))
        return KD_KEY_CTAP_2_1;
    if (lists_version(record, "FIDO_2_1_PRE", &any))
        return KD_KEY_CTAP_2_1_PRE;
    if (any)
        return KD_KEY_CTAP_2_0;
    /* No versions member recovered: the record's own summary. */
    if (ctap != NULL && g_str_has_prefix(ctap, "2.1-pre"))
        return KD_KEY_CTAP_2_1_PRE;
    if (ctap != NULL && g_str_has_prefix(ctap, "2.1"))
        return KD_KEY_CTAP_2_1;
    return KD_KEY_CTAP_2_0;
}

/* Whether the record has the complete options map (some captures only name the options, or
 * were truncated): then an option it lacks must read as absent. */
static gboolean
options_complete(JsonObject *record)
{
    JsonNode *n = json_object_get_member(record, "options");

    return n != NULL && JSON_NODE_HOLDS_OBJECT(n) &&
           !json_object_has_member(json_node_get_object(n), "\u2026");
}

static gboolean complete_options;

static void
check_option(const char *file, const char *name, int recorded, KdKeyOption got)
{
    KdKeyOption want;

    if (recorded < 0 && !complete_options)
        return;
    want = recorded < 0 ? KD_KEY_OPTION_ABSENT
           : recorded   ? KD_KEY_OPTION_TRUE
                        : KD_KEY_OPTION_FALSE;

    if (want != got)
        fail_msg("%s: option %s: recorded %d, keydesk read %d", file, name, recorded, got);
}

static void
check_preflight(const char *file, const KdKeyInfo *info)
{
    KdKeyPolicy policy = {
        .enabled = TRUE, .self_service_allowed = TRUE, .restrictions_enforced = TRUE};
    g_autofree char *upper = g_ascii_strup(info->aaguid_string, -1);
    char other[] = OTHER_AAGUID;
    char *with[] = {other, upper, NULL};
    char *without[] = {other, NULL};
    g_autofree char *sentence = NULL;
    KdKeyPolicyVerdict v;

    policy.restriction = KD_KEY_RESTRICTION_ALLOW;
    policy.aaguids = with;
    if ((v = kd_key_policy_check(&policy, info->aaguid, info->attestation, NULL)) !=
        KD_KEY_POLICY_ALLOWED)
        fail_msg("%s: allow list with its AAGUID: %s", file, kd_key_policy_verdict_name(v));
    policy.aaguids = without;
    if ((v = kd_key_policy_check(&policy, info->aaguid, info->attestation, &sentence)) !=
        KD_KEY_POLICY_NOT_ALLOWED)
        fail_msg("%s: allow list without its AAGUID: %s", file, kd_key_policy_verdict_name(v));
    if (info->model != NULL && strstr(sentence, info->model) == NULL)
        fail_msg("%s: the sentence does not name the model: %s", file, sentence);
    policy.restriction = KD_KEY_RESTRICTION_BLOCK;
    policy.aaguids = with;
    if ((v = kd_key_policy_check(&policy, info->aaguid, info->attestation, NULL)) !=
        KD_KEY_POLICY_BLOCKED)
        fail_msg("%s: block list with its AAGUID: %s", file, kd_key_policy_verdict_name(v));
    policy.aaguids = without;
    if ((v = kd_key_policy_check(&policy, info->aaguid, info->attestation, NULL)) !=
        KD_KEY_POLICY_ALLOWED)
        fail_msg("%s: block list without its AAGUID: %s", file, kd_key_policy_verdict_name(v));
    /* Attestation enforced: refused before any challenge exactly when the key cannot attest. */
    policy.restrictions_enforced = FALSE;
    policy.attestation_enforced = TRUE;
    v = kd_key_policy_check(&policy, info->aaguid, info->attestation, NULL);
    if ((v == KD_KEY_POLICY_ATTESTATION_REQUIRED) !=
        (kd_aaguid_is_zero(info->aaguid) || !info->fido2))
        fail_msg("%s: attestation enforced: %s", file, kd_key_policy_verdict_name(v));
}

static guint n_models, n_credentials, n_no_rk;
static char *verify_root;
static GPtrArray *verify_dirs;

/* The Entra credential on a FIDO2 model: set the PIN if the key has none, then make it. */
static void
check_credential(const char *file, KdKey *key, const KdKeyInfo *info)
{
    g_autoptr(KdKeyCredentialRequest) req = kt_request("bW9kZWwtY2hhbGxlbmdlLWZvci1lbnRyYQ");
    g_autoptr(KdKeyCredentialResult) res = NULL;
    g_autoptr(GError) error = NULL;

    if (!info->pin_set && !kt_set_pin(key, SOFTKEY_MODEL_PIN, &error))
        fail_msg("%s: set PIN: %s", file, error->message);
    res = kt_make_credential(key, req, SOFTKEY_MODEL_PIN, &error);
    if (info->rk != KD_KEY_OPTION_TRUE) {
        /* Entra needs a discoverable credential: refused before the touch. */
        if (!g_error_matches(error, KD_KEY_ERROR, KD_KEY_ERROR_UNSUPPORTED))
            fail_msg("%s: a key without rk: %s", file, error ? error->message : "made");
        n_no_rk++;
        return;
    }
    if (res == NULL)
        fail_msg("%s: make credential: %s", file, error->message);
    assert_memory_equal(res->aaguid, info->aaguid, 16);
    if (info->cred_protect && res->cred_protect != 1)
        fail_msg("%s: credProtect %d", file, res->cred_protect);
    g_ptr_array_add(verify_dirs,
                    kt_verify_prepare(verify_root, file, res, "bW9kZWwtY2hhbGxlbmdlLWZvci1lbnRyYQ",
                                      !res->self_attested));
}

static void
check_model(const char *path)
{
    g_autofree char *file = g_path_get_basename(path);
    g_autoptr(JsonObject) record = load_record(path);
    g_autoptr(GError) error = NULL;
    g_autoptr(KdKeyInfo) info = NULL;
    g_autoptr(KdKey) key = NULL;
    g_autofree char *rule = NULL, *at_least = NULL;
    const char *aaguid = member_string(record, "aaguid");
    const char *pin_state = member_string(record, "clientPinState");
    const char *ctap = member_string(record, "ctap");
    gboolean u2f = ctap != NULL && strcmp(ctap, "unknown") == 0 && strstr(file, "u2f-only");
    SoftKey *sk = softkey_new_from_model(path, &error);
    gint64 v;

    if (sk == NULL)
        fail_msg("%s: the soft key cannot present it: %s", file, error->message);
    key = kt_soft_key(sk);
    info = kt_info(key, &error);
    if (info == NULL)
        fail_msg("%s: info: %s", file, error->message);
    n_models++;
    if (u2f) {
        assert_false(info->fido2);
        assert_int_equal(info->ctap, KD_KEY_CTAP_U2F);
    } else {
        if (!info->fido2)
            fail_msg("%s: read as U2F-only", file);
        if (info->ctap != expected_ctap(record))
            fail_msg("%s: CTAP level %d, expected %d", file, info->ctap, expected_ctap(record));
        if (aaguid != NULL && g_ascii_strcasecmp(aaguid, info->aaguid_string) != 0)
            fail_msg("%s: AAGUID %s, recorded %s", file, info->aaguid_string, aaguid);
        if (aaguid != NULL && kd_aaguid_catalogue_lookup(info->aaguid) != NULL &&
            info->model == NULL)
            fail_msg("%s: catalogued model without a name", file);
        complete_options = options_complete(record);
        check_option(file, "alwaysUv", option(record, "alwaysUv"), info->always_uv);
        check_option(file, "rk", option(record, "rk"), info->rk);
        check_option(file, "uv", option(record, "uv"), info->uv);
        check_option(file, "setMinPINLength", option(record, "setMinPINLength"),
                     info->set_min_pin_length);
        if (member_int(record, "minPINLength", &v)) {
            if (info->min_pin_length != (guint)v || !info->min_pin_length_known)
                fail_msg("%s: minPINLength %u, recorded %" G_GINT64_FORMAT, file,
                         info->min_pin_length, v);
        } else if (info->min_pin_length != 4) {
            fail_msg("%s: no minPINLength recorded, keydesk says %u", file, info->min_pin_length);
        }
        if (member_int(record, "firmwareVersion", &v) && info->firmware_version != (guint64)v)
            fail_msg("%s: firmware %" G_GUINT64_FORMAT ", recorded %" G_GINT64_FORMAT, file,
                     info->firmware_version, v);
        if (pin_state != NULL && strcmp(pin_state, "set") == 0) {
            if (!info->pin_set || info->pin_retries != 8)
                fail_msg("%s: PIN set: keydesk %d, retries %d", file, info->pin_set,
                         info->pin_retries);
        } else if (pin_state != NULL && g_str_has_prefix(pin_state, "not-set")) {
            if (info->pin_set || info->client_pin != KD_KEY_OPTION_FALSE)
                fail_msg("%s: PIN not set: keydesk %d", file, info->client_pin);
        } else if (pin_state != NULL && g_str_has_prefix(pin_state, "unsupported")) {
            if (info->client_pin != KD_KEY_OPTION_ABSENT)
                fail_msg("%s: no PIN support: keydesk %d", file, info->client_pin);
        }
    }
    rule = kd_pin_rules_describe(info->min_pin_length);
    at_least = g_strdup_printf("at least %u characters", info->min_pin_length);
    if (strstr(rule, at_least) == NULL)
        fail_msg("%s: rule without its minimum: %s", file, rule);
    check_preflight(file, info);
    if (info->fido2 && info->client_pin != KD_KEY_OPTION_ABSENT && !info->force_pin_change) {
        check_credential(file, key, info);
        n_credentials++;
    }
    g_clear_object(&key);
    softkey_free(sk);
}

static void
check_folder(const char *folder)
{
    g_autofree char *dir = g_build_filename(KD_KEYS_REFERENCE, "getinfo", folder, NULL);
    g_autoptr(GDir) d = g_dir_open(dir, 0, NULL);
    g_autoptr(GPtrArray) files = g_ptr_array_new_with_free_func(g_free);
    const char *name;

    assert_non_null(d);
    while ((name = g_dir_read_name(d)) != NULL)
        if (g_str_has_suffix(name, ".json"))
            g_ptr_array_add(files, g_build_filename(dir, name, NULL));
    assert_true(files->len > 0);
    for (guint i = 0; i < files->len; i++)
        check_model(files->pdata[i]);
}

static void
test_models(void **state)
{
    verify_root = g_dir_make_tmp("hw-key-models-XXXXXX", NULL);
    verify_dirs = g_ptr_array_new_with_free_func(g_free);
    check_folder("mds");
    check_folder("device");
    /* Every credential made, re-verified by python3-fido2 in one run. */
    kt_verify_run(verify_root, verify_dirs);
    g_ptr_array_unref(verify_dirs);
    g_free(verify_root);
    printf("# %u models checked, %u credentials made, %u refused for lack of rk\n", n_models,
           n_credentials - n_no_rk, n_no_rk);
    assert_int_equal(n_models, 167);
    assert_true(n_credentials > 100);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_models),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
