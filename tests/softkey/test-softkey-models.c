/* test-softkey-models.c: every recorded key model (getinfo/{mds,device}/NAME.json) loads as a
 * soft key, and libfido2 reads back what the record declares: FIDO2 or U2F, versions, AAGUID,
 * extensions, options, PIN state, minPINLength, protocols, maxMsgSize, firmware. Each model then
 * makes a credential the way the kiosk would (with the model PIN when it has one), and a few
 * models check the behaviour their scenario is about (SCENARIOS.md §1, §3, §5, §6, §7).
 *
 * The expectations are read here from the record's clean, declared values only; members the
 * record does not state are checked to be absent (libfido2's defaults: 0, -1, false).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <inttypes.h>
#include <string.h>

#include <json-glib/json-glib.h>

#include "softkey.h"

#define GETINFO_DIR KD_SOFTKEY_KEYS_DIR "/getinfo"

static JsonObject *
load_record(const char *path, JsonParser **parser)
{
    GError *error = NULL;

    *parser = json_parser_new();
    if (!json_parser_load_from_file(*parser, path, &error))
        fail_msg("%s: %s", path, error->message);
    return json_node_get_object(json_parser_get_root(*parser));
}

static bool
is_null(JsonObject *o, const char *name)
{
    return !json_object_has_member(o, name) || json_object_get_null_member(o, name);
}

static const char *
str_member(JsonObject *o, const char *name)
{
    return is_null(o, name) ? NULL : json_object_get_string_member(o, name);
}

static int64_t
int_member(JsonObject *o, const char *name, int64_t absent)
{
    return is_null(o, name) ? absent : json_object_get_int_member(o, name);
}

static int
option_value(const fido_cbor_info_t *ci, const char *name)
{
    char **names = fido_cbor_info_options_name_ptr(ci);
    const bool *values = fido_cbor_info_options_value_ptr(ci);

    for (size_t i = 0; i < fido_cbor_info_options_len(ci); i++) {
        if (strcmp(names[i], name) == 0)
            return values[i];
    }
    return -1;
}

static bool
has_string(char **list, size_t n, const char *s)
{
    for (size_t i = 0; i < n; i++) {
        if (strcmp(list[i], s) == 0)
            return true;
    }
    return false;
}

static bool
is_ctap_version(const char *s)
{
    return strcmp(s, "U2F_V2") == 0 || strcmp(s, "FIDO_2_0") == 0 ||
           strcmp(s, "FIDO_2_1_PRE") == 0 || strcmp(s, "FIDO_2_1") == 0;
}

static int
make_cred(fido_dev_t *dev, const char *pin, int prot, fido_cred_t **out)
{
    static const unsigned char cdh[32] = {0x44};
    static const unsigned char uid[] = {7, 7, 7};
    fido_cred_t *cred = fido_cred_new();
    int r;

    fido_cred_set_type(cred, COSE_ES256);
    fido_cred_set_clientdata_hash(cred, cdh, sizeof(cdh));
    fido_cred_set_rp(cred, "login.microsoft.com", "Microsoft");
    fido_cred_set_user(cred, uid, sizeof(uid), "alice", "Alice", NULL);
    if (prot != 0)
        fido_cred_set_prot(cred, prot);
    r = fido_dev_make_cred(dev, cred, pin);
    *out = cred;
    return r;
}

/* Checks one record against the key libfido2 sees. */
static void
check_record(const char *path)
{
    JsonParser *parser;
    JsonObject *rec = load_record(path, &parser);
    const char *ctap = str_member(rec, "ctap");
    const char *state = str_member(rec, "clientPinState");
    const char *aaguid_s = str_member(rec, "aaguid");
    JsonArray *versions =
        is_null(rec, "versions") ? NULL : json_object_get_array_member(rec, "versions");
    GError *error = NULL;
    SoftKey *key = softkey_new_from_model(path, &error);
    fido_dev_t *dev;
    fido_cbor_info_t *ci;
    fido_cred_t *cred = NULL;
    bool fido2 = false;
    uint8_t aaguid[16] = {0};
    int r;

    if (key == NULL)
        fail_msg("%s: %s", path, error->message);
    if (versions != NULL) {
        for (guint i = 0; i < json_array_get_length(versions); i++)
            fido2 |= g_str_has_prefix(json_array_get_string_element(versions, i), "FIDO_2");
    } else {
        fido2 = g_str_has_prefix(ctap, "2.");
    }
    dev = fido_dev_new();
    fido_dev_set_io_functions(dev, softkey_io());
    assert_int_equal(fido_dev_open(dev, softkey_get_path(key)), FIDO_OK);
    if (fido_dev_is_fido2(dev) != fido2)
        fail_msg("%s: is_fido2 %d, record says %d", path, fido_dev_is_fido2(dev), fido2);

    if (!fido2) {
        /* SCENARIOS §7: libfido2 falls back to U2F; the credential is fido-u2f. */
        assert_false(fido_dev_supports_pin(dev));
        assert_int_equal(make_cred(dev, NULL, 0, &cred), FIDO_OK);
        assert_string_equal(fido_cred_fmt(cred), "fido-u2f");
        assert_int_equal(fido_cred_verify(cred), FIDO_OK);
        goto out;
    }

    ci = fido_cbor_info_new();
    if ((r = fido_dev_get_cbor_info(dev, ci)) != FIDO_OK)
        fail_msg("%s: fido_dev_get_cbor_info %s", path, fido_strerr(r));
    /* versions */
    if (versions != NULL) {
        for (guint i = 0; i < json_array_get_length(versions); i++) {
            const char *v = json_array_get_string_element(versions, i);
            if (is_ctap_version(v) &&
                !has_string(fido_cbor_info_versions_ptr(ci), fido_cbor_info_versions_len(ci), v))
                fail_msg("%s: version %s missing", path, v);
        }
        if (json_array_get_length(versions) < fido_cbor_info_versions_len(ci))
            fail_msg("%s: more versions than recorded", path);
    }
    /* AAGUID (absent in the record: zeros) */
    if (aaguid_s != NULL) {
        char *hex = g_strdup(aaguid_s);
        size_t n = 0;
        for (char *p = hex; *p; p++) {
            if (*p != '-') {
                aaguid[n / 2] |= (uint8_t)(g_ascii_xdigit_value(*p) << (n % 2 ? 0 : 4));
                n++;
            }
        }
        g_free(hex);
        assert_int_equal(n, 32);
    }
    assert_int_equal(fido_cbor_info_aaguid_len(ci), 16);
    if (memcmp(fido_cbor_info_aaguid_ptr(ci), aaguid, 16) != 0)
        fail_msg("%s: AAGUID differs", path);
    /* extensions: every complete one recorded is there; credProtect exactly as recorded */
    {
        JsonArray *exts = json_object_get_array_member(rec, "extensions");
        for (guint i = 0; i < json_array_get_length(exts); i++) {
            const char *e = json_array_get_string_element(exts, i);
            if (strstr(e, "\xe2\x80\xa6") == NULL &&
                !has_string(fido_cbor_info_extensions_ptr(ci), fido_cbor_info_extensions_len(ci),
                            e))
                fail_msg("%s: extension %s missing", path, e);
        }
        if (!is_null(rec, "credProtect") &&
            fido_dev_supports_cred_prot(dev) != json_object_get_boolean_member(rec, "credProtect"))
            fail_msg("%s: credProtect support differs", path);
    }
    /* options with recorded boolean values */
    if (!is_null(rec, "options")) {
        JsonObject *o = json_object_get_object_member(rec, "options");
        GList *names = json_object_get_members(o);
        for (GList *l = names; l != NULL; l = l->next) {
            JsonNode *v = json_object_get_member(o, l->data);
            if (strcmp(l->data, "clientPin") == 0 || !JSON_NODE_HOLDS_VALUE(v) ||
                json_node_get_value_type(v) != G_TYPE_BOOLEAN)
                continue;
            if (option_value(ci, l->data) != json_node_get_boolean(v))
                fail_msg("%s: option %s is %d", path, (const char *)l->data,
                         option_value(ci, l->data));
        }
        g_list_free(names);
    } else if (!is_null(rec, "option_names_present")) {
        JsonArray *a = json_object_get_array_member(rec, "option_names_present");
        for (guint i = 0; i < json_array_get_length(a); i++) {
            if (option_value(ci, json_array_get_string_element(a, i)) < 0)
                fail_msg("%s: option %s missing", path, json_array_get_string_element(a, i));
        }
    }
    /* PIN state */
    if (g_str_has_prefix(state, "unsupported")) {
        assert_false(fido_dev_supports_pin(dev));
    } else {
        assert_true(fido_dev_supports_pin(dev));
        assert_int_equal(fido_dev_has_pin(dev), g_str_has_prefix(state, "set"));
        assert_int_equal(softkey_get_model_pin(key) != NULL, g_str_has_prefix(state, "set"));
    }
    /* numbers: recorded value, or libfido2's "absent" */
    if ((int64_t)fido_cbor_info_minpinlen(ci) != int_member(rec, "minPINLength", 0))
        fail_msg("%s: minpinlen %zu", path, fido_cbor_info_minpinlen(ci));
    if ((int64_t)fido_cbor_info_maxmsgsiz(ci) != int_member(rec, "maxMsgSize", 0))
        fail_msg("%s: maxmsgsiz %" PRIu64, path, fido_cbor_info_maxmsgsiz(ci));
    if ((int64_t)fido_cbor_info_fwversion(ci) != int_member(rec, "firmwareVersion", 0))
        fail_msg("%s: fwversion %" PRIu64, path, fido_cbor_info_fwversion(ci));
    if (fido_cbor_info_rk_remaining(ci) != int_member(rec, "remainingDiscoverableCredentials", -1))
        fail_msg("%s: rk_remaining %" PRId64, path, fido_cbor_info_rk_remaining(ci));
    if ((int64_t)fido_cbor_info_maxcredcntlst(ci) != int_member(rec, "maxCredentialCountInList", 0))
        fail_msg("%s: maxcredcntlst", path);
    if ((int64_t)fido_cbor_info_maxcredidlen(ci) != int_member(rec, "maxCredentialIdLength", 0))
        fail_msg("%s: maxcredidlen", path);
    assert_false(fido_cbor_info_new_pin_required(ci));
    if (!is_null(rec, "pinUvAuthProtocols")) {
        JsonArray *a = json_object_get_array_member(rec, "pinUvAuthProtocols");
        assert_int_equal(fido_cbor_info_protocols_len(ci), json_array_get_length(a));
        for (guint i = 0; i < json_array_get_length(a); i++)
            assert_int_equal(fido_cbor_info_protocols_ptr(ci)[i], json_array_get_int_element(a, i));
    }
    if (!is_null(rec, "algorithms"))
        assert_int_equal(fido_cbor_info_algorithm_count(ci),
                         json_array_get_length(json_object_get_array_member(rec, "algorithms")));
    fido_cbor_info_free(&ci);

    /* A credential as the kiosk makes it: with the PIN where the key has one. With alwaysUv
     * and no PIN (and no built-in UV), the key demands a PIN first. */
    r = make_cred(dev, softkey_get_model_pin(key), 0, &cred);
    if (r == FIDO_ERR_PIN_NOT_SET && softkey_get_always_uv(key)) {
        fido_cred_free(&cred);
        goto out;
    }
    if (r != FIDO_OK)
        fail_msg("%s: make_cred %s", path, fido_strerr(r));
    assert_int_equal(fido_cred_verify(cred), FIDO_OK);
    assert_true((fido_cred_flags(cred) & 0x04) != 0 || softkey_get_model_pin(key) == NULL);
out:
    fido_cred_free(&cred);
    fido_dev_close(dev);
    fido_dev_free(&dev);
    softkey_free(key);
    g_object_unref(parser);
}

static void
test_all_records(void **state)
{
    const char *kinds[] = {"mds", "device"};
    unsigned count = 0;

    for (size_t k = 0; k < G_N_ELEMENTS(kinds); k++) {
        char *dir = g_build_filename(GETINFO_DIR, kinds[k], NULL);
        GDir *d = g_dir_open(dir, 0, NULL);
        const char *name;

        assert_non_null(d);
        while ((name = g_dir_read_name(d)) != NULL) {
            char *path;
            if (!g_str_has_suffix(name, ".json"))
                continue;
            path = g_build_filename(dir, name, NULL);
            check_record(path);
            g_free(path);
            count++;
        }
        g_dir_close(d);
        g_free(dir);
    }
    /* INDEX.json lists 137 MDS and 30 device records */
    assert_int_equal(count, 167);
}

static SoftKey *
model(const char *rel)
{
    char *path = g_build_filename(GETINFO_DIR, rel, NULL);
    GError *error = NULL;
    SoftKey *key = softkey_new_from_model(path, &error);

    if (key == NULL)
        fail_msg("%s", error->message);
    g_free(path);
    return key;
}

static fido_dev_t *
open_dev(SoftKey *key)
{
    fido_dev_t *dev = fido_dev_new();

    fido_dev_set_io_functions(dev, softkey_io());
    assert_int_equal(fido_dev_open(dev, softkey_get_path(key)), FIDO_OK);
    return dev;
}

/* SCENARIOS §5: a CTAP 2.0 key without credProtect ignores the extension, so libfido2's
 * verification (which wants the output it asked for) fails; without it, all is well. PIN
 * protocol 1 and the CTAP 2.0 getPinToken (0x05) carry the PIN. */
static void
test_ctap20_no_cred_protect(void **state)
{
    SoftKey *key = model("device/security-key-by-yubico-fw5.1__f8a011f3.json");
    fido_dev_t *dev = open_dev(key);
    fido_cred_t *cred;

    assert_false(fido_dev_supports_cred_prot(dev));
    assert_false(fido_dev_supports_permissions(dev));
    assert_int_equal(make_cred(dev, NULL, FIDO_CRED_PROT_UV_OPTIONAL_WITH_ID, &cred), FIDO_OK);
    assert_int_equal(fido_cred_verify(cred), FIDO_ERR_INVALID_PARAM);
    fido_cred_free(&cred);
    assert_int_equal(fido_dev_set_pin(dev, "1234", NULL), FIDO_OK);
    assert_int_equal(make_cred(dev, "1234", 0, &cred), FIDO_OK);
    assert_int_equal(fido_cred_verify(cred), FIDO_OK);
    assert_int_equal(fido_cred_flags(cred) & 0x04, 0x04);
    fido_cred_free(&cred);
    /* no authenticatorConfig on a 2.0 key */
    assert_int_equal(softkey_get_min_pin_length(key), 4);
    fido_dev_close(dev);
    fido_dev_free(&dev);
    softkey_free(key);
}

/* SCENARIOS §3: minimum PIN length 6 (Token2 PIN+): a 4-digit PIN is refused by the key. */
static void
test_min_pin_6(void **state)
{
    SoftKey *key = model("mds/token2-pin-plus-security-key-series__eabb46cc.json");
    fido_dev_t *dev = open_dev(key);
    fido_cbor_info_t *ci = fido_cbor_info_new();

    assert_int_equal(fido_dev_get_cbor_info(dev, ci), FIDO_OK);
    assert_int_equal(fido_cbor_info_minpinlen(ci), 6);
    if (!fido_dev_has_pin(dev)) {
        assert_int_equal(fido_dev_set_pin(dev, "1234", NULL), FIDO_ERR_PIN_POLICY_VIOLATION);
        assert_int_equal(fido_dev_set_pin(dev, "482915", NULL), FIDO_OK);
    }
    fido_cbor_info_free(&ci);
    fido_dev_close(dev);
    fido_dev_free(&dev);
    softkey_free(key);
}

/* SCENARIOS §6: alwaysUv true with a PIN set (Excelsecu a3975549): no credential without it. */
static void
test_always_uv_model(void **state)
{
    SoftKey *key = model("device/excelsecu-esecu-fido2-nfc-ctap21__a3975549.json");
    fido_dev_t *dev = open_dev(key);
    fido_cred_t *cred;

    assert_true(fido_dev_has_pin(dev));
    assert_true(softkey_get_always_uv(key));
    assert_int_equal(make_cred(dev, NULL, 0, &cred), FIDO_ERR_PIN_REQUIRED);
    fido_cred_free(&cred);
    assert_int_equal(make_cred(dev, SOFTKEY_MODEL_PIN, 0, &cred), FIDO_OK);
    fido_cred_free(&cred);
    fido_dev_close(dev);
    fido_dev_free(&dev);
    softkey_free(key);
}

static void
test_bad_records(void **state)
{
    GError *error = NULL;
    char *path = g_build_filename(GETINFO_DIR, "INDEX.json", NULL);

    assert_null(softkey_new_from_model("/nonexistent/key.json", &error));
    assert_non_null(error);
    g_clear_error(&error);
    assert_null(softkey_new_from_model(path, &error)); /* JSON, but not a record */
    assert_non_null(error);
    g_clear_error(&error);
    g_free(path);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_all_records), cmocka_unit_test(test_ctap20_no_cred_protect),
        cmocka_unit_test(test_min_pin_6),   cmocka_unit_test(test_always_uv_model),
        cmocka_unit_test(test_bad_records),
    };

    /* U2F fallback stays on: the u2f-only record relies on it. */
    fido_init(0);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
