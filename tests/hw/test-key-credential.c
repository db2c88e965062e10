/* test-key-credential: the attestationObject assembly, the request → fido_cred_t mapping, and
 * core/kd-key-request (Graph's options and policy onto hw/'s structs). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cbor.h>
#include <cmocka.h>
#include <fido.h>

#include "core/kd-key-request.h"
#include "hw/kd-key-credential.h"
#include "hw/kd-key-error.h"

static GBytes *
encode(cbor_item_t *item)
{
    unsigned char *buf = NULL;
    size_t len = 0, n = cbor_serialize_alloc(item, &buf, &len);
    GBytes *b = g_bytes_new(buf, n);

    free(buf);
    cbor_decref(&item);
    return b;
}

static GBytes *
packed_stmt(void)
{
    cbor_item_t *m = cbor_new_definite_map(2);
    static const guint8 sig[] = {0x30, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0x02};

    cbor_map_add(m, (struct cbor_pair){cbor_move(cbor_build_string("alg")),
                                       cbor_move(cbor_build_negint8(6))});
    cbor_map_add(m, (struct cbor_pair){cbor_move(cbor_build_string("sig")),
                                       cbor_move(cbor_build_bytestring(sig, sizeof(sig)))});
    return encode(m);
}

static void
test_attestation_object(void **state)
{
    g_autoptr(GBytes) stmt = packed_stmt();
    g_autoptr(GBytes) obj = NULL;
    guint8 authdata[77];
    gsize len;
    const guint8 *p;
    struct cbor_load_result res;
    cbor_item_t *item;
    struct cbor_pair *pairs;
    const char *keys[] = {"fmt", "attStmt", "authData"};

    for (gsize i = 0; i < sizeof(authdata); i++)
        authdata[i] = (guint8)(i * 31);
    obj = kd_key_credential_attestation_object("packed", g_bytes_get_data(stmt, NULL),
                                               g_bytes_get_size(stmt), authdata, sizeof(authdata));
    assert_non_null(obj);
    p = g_bytes_get_data(obj, &len);
    /* A definite map of 3: 0xa3, then "fmt" first. */
    assert_int_equal(p[0], 0xa3);
    assert_int_equal(p[1], 0x63);
    assert_memory_equal(p + 2, "fmt", 3);
    item = cbor_load(p, len, &res);
    assert_non_null(item);
    assert_int_equal(res.read, len);
    assert_true(cbor_isa_map(item));
    assert_int_equal(cbor_map_size(item), 3);
    pairs = cbor_map_handle(item);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(cbor_string_length(pairs[i].key), strlen(keys[i]));
        assert_memory_equal(cbor_string_handle(pairs[i].key), keys[i], strlen(keys[i]));
    }
    assert_memory_equal(cbor_string_handle(pairs[0].value), "packed", 6);
    assert_true(cbor_isa_map(pairs[1].value));
    assert_int_equal(cbor_map_size(pairs[1].value), 2);
    /* authData is a byte string of exactly the raw bytes (not wrapped twice). */
    assert_true(cbor_isa_bytestring(pairs[2].value));
    assert_int_equal(cbor_bytestring_length(pairs[2].value), sizeof(authdata));
    assert_memory_equal(cbor_bytestring_handle(pairs[2].value), authdata, sizeof(authdata));
    cbor_decref(&item);
}

static void
test_attestation_object_refuses(void **state)
{
    g_autoptr(GBytes) stmt = packed_stmt();
    const guint8 *s = g_bytes_get_data(stmt, NULL);
    gsize n = g_bytes_get_size(stmt);
    guint8 authdata[40] = {1};
    guint8 trailing[64], not_a_map[] = {0x43, 1, 2, 3};

    memcpy(trailing, s, n);
    trailing[n] = 0x00;
    assert_null(kd_key_credential_attestation_object("packed", trailing, n + 1, authdata, 40));
    assert_null(kd_key_credential_attestation_object("packed", s, n - 1, authdata, 40));
    assert_null(kd_key_credential_attestation_object("packed", not_a_map, 4, authdata, 40));
    assert_null(kd_key_credential_attestation_object(NULL, s, n, authdata, 40));
    assert_null(kd_key_credential_attestation_object("packed", s, n, authdata, 0));
}

static KdKeyCredentialRequest *
request(void)
{
    KdKeyCredentialRequest *r = kd_key_credential_request_new();
    static const char cdj[] = "{\"type\":\"webauthn.create\",\"challenge\":\"AQID\","
                              "\"origin\":\"https://login.microsoft.com\",\"crossOrigin\":false}";

    r->rp_id = g_strdup("login.microsoft.com");
    r->rp_name = g_strdup("Microsoft");
    r->user_id = g_bytes_new("OF:\x01\x02", 5);
    r->user_name = g_strdup("ada@contoso.com");
    r->user_display_name = g_strdup("Ada Lovelace");
    r->client_data_json = g_bytes_new(cdj, strlen(cdj));
    r->exclude_ids = g_ptr_array_new_with_free_func((GDestroyNotify)g_bytes_unref);
    g_ptr_array_add(r->exclude_ids, g_bytes_new("\x01\x02\x03\x04", 4));
    r->resident_key = TRUE;
    r->uv_required = TRUE;
    r->hmac_secret = TRUE;
    r->cred_protect = 1;
    r->enforce_cred_protect = TRUE;
    return r;
}

static void
test_prepare(void **state)
{
    g_autoptr(KdKeyCredentialRequest) r = request();
    g_autoptr(KdKeyCredentialRequest) copy = kd_key_credential_request_copy(r);
    const char *const with_hmac[] = {"credProtect", "hmac-secret", NULL};
    fido_cred_t *cred = fido_cred_new();
    fido_dev_t *dev = fido_dev_new(); /* not opened: supports nothing (a CTAP 2.0-like key) */
    g_autoptr(GError) error = NULL;

    assert_ptr_not_equal(copy->exclude_ids, r->exclude_ids);
    assert_int_equal(copy->exclude_ids->len, 1);
    /* Level 1 "enforced" passes on a key without credProtect: every key does level 1. */
    assert_true(kd_key_credential_prepare(cred, dev, copy, with_hmac, &error));
    assert_string_equal(fido_cred_rp_id(cred), "login.microsoft.com");
    assert_string_equal(fido_cred_rp_name(cred), "Microsoft");
    assert_int_equal(fido_cred_user_id_len(cred), 5);
    assert_memory_equal(fido_cred_user_id_ptr(cred), "OF:\x01\x02", 5);
    assert_string_equal(fido_cred_user_name(cred), "ada@contoso.com");
    assert_string_equal(fido_cred_display_name(cred), "Ada Lovelace");
    assert_int_equal(fido_cred_type(cred), COSE_ES256);
    assert_int_equal(fido_cred_clientdata_hash_len(cred), 32);
    assert_int_equal(fido_cred_prot(cred), 0); /* not asked from a key without credProtect */
    fido_cred_free(&cred);
    /* Level 2 enforced: refused clearly before anything is sent. */
    cred = fido_cred_new();
    copy->cred_protect = 2;
    assert_false(kd_key_credential_prepare(cred, dev, copy, with_hmac, &error));
    assert_true(g_error_matches(error, KD_KEY_ERROR, KD_KEY_ERROR_UNSUPPORTED));
    assert_non_null(strstr(error->message, "credential protection"));
    g_clear_error(&error);
    /* Level 2 not enforced: made without it. */
    fido_cred_free(&cred);
    cred = fido_cred_new();
    copy->enforce_cred_protect = FALSE;
    assert_true(kd_key_credential_prepare(cred, dev, copy, NULL, &error));
    fido_cred_free(&cred);
    fido_dev_free(&dev);
}

static KdGraphFido2Options *
graph_options(void)
{
    KdGraphFido2Options *o = g_new0(KdGraphFido2Options, 1);
    gint algs[] = {-7, -257};

    o->rp_id = g_strdup("login.microsoft.com");
    o->rp_name = g_strdup("Microsoft");
    o->user_id = g_bytes_new("OF:\xfe\x01", 5);
    o->user_name = g_strdup("ada@contoso.com");
    o->user_display_name = g_strdup("Ada");
    o->challenge = g_bytes_new("\x01\x02\x03\xff", 4);
    o->challenge_text = g_strdup("AQID_w");
    o->timeout_ms = 60000;
    o->exclude_ids = g_ptr_array_new_with_free_func((GDestroyNotify)g_bytes_unref);
    g_ptr_array_add(o->exclude_ids, g_bytes_new("\x09\x08", 2));
    o->algorithms = g_array_new(FALSE, FALSE, sizeof(gint));
    g_array_append_vals(o->algorithms, algs, 2);
    o->attestation = g_strdup("direct");
    o->require_resident_key = TRUE;
    o->user_verification = g_strdup("required");
    o->hmac_create_secret = TRUE;
    o->enforce_cred_protect = TRUE;
    o->cred_protect = 1;
    return o;
}

static void
test_request_from_graph(void **state)
{
    g_autoptr(KdGraphFido2Options) o = graph_options();
    g_autoptr(KdKeyCredentialRequest) r = kd_key_request_from_fido2_options(o);
    g_autoptr(KdKeyCredentialRequest) no_es256 = NULL;
    g_autoptr(GBytes) expected = kd_graph_fido2_client_data(o);
    gint rs256[] = {-257};

    assert_non_null(r);
    assert_string_equal(r->rp_id, "login.microsoft.com");
    assert_string_equal(r->rp_name, "Microsoft");
    assert_true(g_bytes_equal(r->user_id, o->user_id));
    assert_string_equal(r->user_name, "ada@contoso.com");
    assert_string_equal(r->user_display_name, "Ada");
    assert_true(g_bytes_equal(r->client_data_json, expected));
    assert_non_null(g_strstr_len(g_bytes_get_data(r->client_data_json, NULL),
                                 (gssize)g_bytes_get_size(r->client_data_json),
                                 "\"challenge\":\"AQID_w\""));
    assert_int_equal(r->exclude_ids->len, 1);
    assert_true(r->resident_key);
    assert_true(r->uv_required);
    assert_true(r->hmac_secret);
    assert_int_equal(r->cred_protect, 1);
    assert_true(r->enforce_cred_protect);
    assert_int_equal(r->timeout_ms, 60000);
    g_array_set_size(o->algorithms, 0);
    g_array_append_vals(o->algorithms, rs256, 1);
    no_es256 = kd_key_request_from_fido2_options(o);
    assert_null(no_es256);
}

static void
test_policy_from_graph(void **state)
{
    KdGraphMethodPolicy g = {0};
    g_auto(GStrv) aaguids = g_new0(char *, 2);
    g_autoptr(KdKeyPolicy) p = NULL;
    g_autoptr(KdKeyPolicy) none = NULL;
    g_autofree char *type = g_strdup("block");

    aaguids[0] = g_strdup("2fc0579f-8113-47ea-b116-bb5a8db9202a");
    g.kind = KD_GRAPH_POLICY_FIDO2;
    g.enabled = TRUE;
    g.is_self_service_registration_allowed = TRUE;
    g.is_attestation_enforced = TRUE;
    g.key_restrictions_enforced = TRUE;
    g.key_restrictions_type = type;
    g.key_restrictions_aaguids = aaguids;
    p = kd_key_request_policy_from_graph(&g);
    assert_true(p->enabled && p->self_service_allowed && p->attestation_enforced &&
                p->restrictions_enforced);
    assert_int_equal(p->restriction, KD_KEY_RESTRICTION_BLOCK);
    assert_string_equal(p->aaguids[0], aaguids[0]);
    assert_ptr_not_equal(p->aaguids, aaguids);
    g.kind = KD_GRAPH_POLICY_TEMPORARY_ACCESS_PASS;
    none = kd_key_request_policy_from_graph(&g);
    assert_null(none);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_attestation_object),
        cmocka_unit_test(test_attestation_object_refuses),
        cmocka_unit_test(test_prepare),
        cmocka_unit_test(test_request_from_graph),
        cmocka_unit_test(test_policy_from_graph),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
