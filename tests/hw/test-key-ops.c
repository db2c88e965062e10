/* test-key-ops: every KdKey operation against the soft key in-process (real libfido2 code paths
 * through fido_dev_set_io_functions), including each KdKeyError a visitor can meet. Every
 * credential is re-verified by tests/hw/verify-credential.py with python3-fido2. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>
#include <glib/gstdio.h>

#include "test-key-util.h"

#define PIN   "482937"
#define PIN2  "735190"
#define WRONG "999111"

typedef struct {
    SoftKey *sk;
    KdKey *key;
} Fixture;

static int
setup(void **state)
{
    Fixture *f = g_new0(Fixture, 1);

    f->sk = softkey_new();
    f->key = kt_soft_key(f->sk);
    /* Short budgets, so an error path never takes seconds. */
    kd_key_set_timeouts(f->key, 2000, 3000);
    *state = f;
    return 0;
}

static int
teardown(void **state)
{
    Fixture *f = *state;

    g_object_unref(f->key);
    softkey_free(f->sk);
    g_free(f);
    return 0;
}

static void
assert_error(GError *error, KdKeyErrorCode code)
{
    if (error == NULL)
        fail_msg("expected %s, got success", kd_key_error_code_name(code));
    if (!g_error_matches(error, KD_KEY_ERROR, (gint)code))
        fail_msg("expected %s, got %s (fido %d: %s)", kd_key_error_code_name(code),
                 error->domain == KD_KEY_ERROR ? kd_key_error_code_name((KdKeyErrorCode)error->code)
                                               : g_quark_to_string(error->domain),
                 kd_key_error_get_info(error) ? kd_key_error_get_info(error)->fido_code : 0,
                 error->message);
}

/* Runs verify-credential.py on @result; @full: x5c chain to the soft key's CA expected. */
static void
verify_with_python(const KdKeyCredentialResult *result, const char *challenge, gboolean full)
{
    g_autofree char *root = g_dir_make_tmp("hw-key-verify-XXXXXX", NULL);
    g_autoptr(GPtrArray) dirs = g_ptr_array_new_with_free_func(g_free);

    g_ptr_array_add(dirs, kt_verify_prepare(root, "c1", result, challenge, full));
    kt_verify_run(root, dirs);
}

/* --- info ------------------------------------------------------------------------------------- */

static void
test_info(void **state)
{
    Fixture *f = *state;
    g_autoptr(GError) error = NULL;
    g_autoptr(KdKeyInfo) info = kt_info(f->key, &error);
    guint8 aaguid[16];

    assert_no_error(error);
    assert_non_null(info);
    assert_true(info->fido2);
    assert_int_equal(info->ctap, KD_KEY_CTAP_2_1);
    assert_true(g_strv_contains((const char *const *)info->versions, "FIDO_2_0"));
    assert_true(info->cred_protect);
    assert_true(info->hmac_secret);
    softkey_get_aaguid(f->sk, aaguid);
    assert_memory_equal(info->aaguid, aaguid, 16);
    assert_int_equal(strlen(info->aaguid_string), 36);
    assert_null(info->model); /* the soft key is not in the catalogue */
    assert_int_equal(info->attestation, KD_KEY_ATTESTATION_UNKNOWN);
    assert_int_equal(info->client_pin, KD_KEY_OPTION_FALSE);
    assert_false(info->pin_set);
    assert_int_equal(info->rk, KD_KEY_OPTION_TRUE);
    assert_int_equal(info->cred_mgmt, KD_KEY_OPTION_TRUE);
    assert_int_equal(info->set_min_pin_length, KD_KEY_OPTION_TRUE);
    assert_int_not_equal(info->always_uv, KD_KEY_OPTION_TRUE);
    assert_int_equal(info->uv, KD_KEY_OPTION_ABSENT);
    assert_int_equal(info->min_pin_length, 4);
    assert_int_equal(info->pin_retries, 8);
    assert_int_equal(info->uv_retries, -1);
    assert_false(info->force_pin_change);
    assert_true(info->remaining_credentials > 0);
    assert_true(info->capabilities & 0x04); /* CBOR */
}

/* --- PIN -------------------------------------------------------------------------------------- */

static void
test_set_pin(void **state)
{
    Fixture *f = *state;
    g_autoptr(GError) error = NULL;
    g_autoptr(KdKeyInfo) info = NULL;

    assert_true(kt_set_pin(f->key, PIN, &error));
    assert_true(softkey_has_pin(f->sk));
    info = kt_info(f->key, &error);
    assert_true(info->pin_set);
    assert_int_equal(info->client_pin, KD_KEY_OPTION_TRUE);
    assert_int_equal(info->pin_retries, 8);
    /* A key with a PIN: "set" is refused before anything is sent. */
    assert_false(kt_set_pin(f->key, PIN2, &error));
    assert_error(error, KD_KEY_ERROR_PIN_ALREADY_SET);
}

static void
test_set_pin_rules_first(void **state)
{
    Fixture *f = *state;
    g_autoptr(GError) error = NULL;
    const KdKeyErrorInfo *ei;

    softkey_set_min_pin_length(f->sk, 6);
    assert_false(kt_set_pin(f->key, "4829", &error));
    assert_error(error, KD_KEY_ERROR_PIN_POLICY);
    assert_non_null(strstr(error->message, "at least 6 characters"));
    ei = kd_key_error_get_info(error);
    assert_int_equal(ei->min_pin_length, 6);
    assert_int_equal(ei->fido_code, FIDO_OK); /* refused by keydesk: the key never saw it */
    assert_false(softkey_has_pin(f->sk));
    g_clear_error(&error);
    assert_false(kt_set_pin(f->key, "123456", &error));
    assert_error(error, KD_KEY_ERROR_PIN_POLICY);
    assert_non_null(strstr(error->message, "too easy to guess"));
    assert_false(softkey_has_pin(f->sk));
    g_clear_error(&error);
    assert_true(kt_set_pin(f->key, PIN, &error));
    assert_true(softkey_has_pin(f->sk));
}

static void
test_change_pin(void **state)
{
    Fixture *f = *state;
    g_autoptr(GError) error = NULL;

    assert_false(kt_change_pin(f->key, PIN, PIN2, &error));
    assert_error(error, KD_KEY_ERROR_PIN_NOT_SET);
    g_clear_error(&error);
    softkey_set_pin(f->sk, PIN);
    assert_false(kt_change_pin(f->key, WRONG, PIN2, &error));
    assert_error(error, KD_KEY_ERROR_PIN_INVALID);
    assert_int_equal(kd_key_error_get_info(error)->pin_retries, 7);
    assert_non_null(strstr(error->message, "7 tries are left"));
    g_clear_error(&error);
    assert_false(kt_change_pin(f->key, PIN, "0000", &error));
    assert_error(error, KD_KEY_ERROR_PIN_POLICY);
    g_clear_error(&error);
    assert_true(kt_change_pin(f->key, PIN, PIN2, &error));
    assert_int_equal(softkey_get_pin_retries(f->sk), 8);
    /* The new PIN works, the old does not. */
    assert_true(kt_change_pin(f->key, PIN2, PIN, &error));
}

static void
test_pin_blocked(void **state)
{
    Fixture *f = *state;
    g_autoptr(GError) error = NULL;
    g_autoptr(KdKeyCredentialRequest) req = kt_request("AQIDBA");
    g_autoptr(KdKeyCredentialResult) res = NULL;
    int wrong = 0;

    softkey_set_pin(f->sk, PIN);
    /* Two wrong PINs: tries counted down; the third in a row blocks until re-plugged. */
    for (int i = 0; i < 2; i++, wrong++) {
        assert_false(kt_change_pin(f->key, WRONG, PIN2, &error));
        assert_error(error, KD_KEY_ERROR_PIN_INVALID);
        g_clear_error(&error);
    }
    assert_false(kt_change_pin(f->key, WRONG, PIN2, &error));
    wrong++;
    assert_error(error, KD_KEY_ERROR_PIN_AUTH_BLOCKED);
    assert_non_null(strstr(error->message, "Unplug it"));
    g_clear_error(&error);
    /* Even the right PIN is refused until the key is re-plugged. */
    res = kt_make_credential(f->key, req, PIN, &error);
    assert_null(res);
    assert_error(error, KD_KEY_ERROR_PIN_AUTH_BLOCKED);
    g_clear_error(&error);
    softkey_unplug(f->sk);
    softkey_plug(f->sk);
    /* Down to none: blocked for good. */
    while (wrong < 8) {
        if (wrong % 3 == 0) {
            softkey_unplug(f->sk);
            softkey_plug(f->sk);
        }
        assert_false(kt_change_pin(f->key, WRONG, PIN2, &error));
        wrong++;
        g_clear_error(&error);
    }
    assert_int_equal(softkey_get_pin_retries(f->sk), 0);
    softkey_unplug(f->sk);
    softkey_plug(f->sk);
    res = kt_make_credential(f->key, req, PIN, &error);
    assert_null(res);
    assert_error(error, KD_KEY_ERROR_PIN_BLOCKED);
    assert_int_equal(kd_key_error_get_info(error)->pin_retries, 0);
    assert_non_null(strstr(error->message, "reset"));
}

/* --- the Entra credential --------------------------------------------------------------------- */

static void
test_make_credential(void **state)
{
    Fixture *f = *state;
    g_autoptr(GError) error = NULL;
    g_autoptr(KdKeyCredentialRequest) req = kt_request("Y2hhbGxlbmdlLWZyb20tZ3JhcGg");
    g_autoptr(KdKeyCredentialResult) res = NULL;
    guint8 aaguid[16];

    softkey_set_pin(f->sk, PIN);
    res = kt_make_credential(f->key, req, PIN, &error);
    assert_no_error(error);
    assert_non_null(res);
    assert_string_equal(res->fmt, "packed");
    assert_false(res->self_attested);
    assert_int_equal(res->cred_protect, 1);
    assert_true(res->hmac_secret);
    assert_true(res->resident_key);
    assert_true(g_bytes_equal(res->client_data_json, req->client_data_json));
    softkey_get_aaguid(f->sk, aaguid);
    assert_memory_equal(res->aaguid, aaguid, 16);
    assert_int_equal(softkey_get_credential_count(f->sk), 1);
    verify_with_python(res, "Y2hhbGxlbmdlLWZyb20tZ3JhcGg", TRUE);
}

static void
test_make_credential_self(void **state)
{
    Fixture *f = *state;
    g_autoptr(GError) error = NULL;
    g_autoptr(KdKeyCredentialRequest) req = kt_request("c2VsZi1hdHRlc3RlZC1jaGFsbGVuZ2U");
    g_autoptr(KdKeyCredentialResult) res = NULL;
    KdKeyPolicy policy = {
        .enabled = TRUE, .self_service_allowed = TRUE, .attestation_enforced = TRUE};

    softkey_set_pin(f->sk, PIN);
    softkey_set_self_attestation(f->sk, true);
    req->cred_protect = 2;
    res = kt_make_credential(f->key, req, PIN, &error);
    assert_no_error(error);
    assert_true(res->self_attested);
    assert_int_equal(res->cred_protect, 2);
    /* Checked before the POST: a self-attested credential cannot pass enforced attestation. */
    assert_int_equal(
        kd_key_policy_check_attestation(&policy, res->aaguid, res->self_attested, NULL),
        KD_KEY_POLICY_ATTESTATION_REQUIRED);
    verify_with_python(res, "c2VsZi1hdHRlc3RlZC1jaGFsbGVuZ2U", FALSE);
}

static void
test_make_credential_pin_errors(void **state)
{
    Fixture *f = *state;
    g_autoptr(GError) error = NULL;
    g_autoptr(KdKeyCredentialRequest) req = kt_request("AQIDBA");
    KdKeyCredentialResult *res;

    /* No PIN on the key yet, and Entra wants UV: set one first. */
    res = kt_make_credential(f->key, req, NULL, &error);
    assert_null(res);
    assert_error(error, KD_KEY_ERROR_PIN_NOT_SET);
    g_clear_error(&error);
    res = kt_make_credential(f->key, req, PIN, &error);
    assert_null(res);
    assert_error(error, KD_KEY_ERROR_PIN_NOT_SET);
    g_clear_error(&error);
    softkey_set_pin(f->sk, PIN);
    res = kt_make_credential(f->key, req, NULL, &error);
    assert_null(res);
    assert_error(error, KD_KEY_ERROR_PIN_REQUIRED);
    g_clear_error(&error);
    res = kt_make_credential(f->key, req, WRONG, &error);
    assert_null(res);
    assert_error(error, KD_KEY_ERROR_PIN_INVALID);
    assert_int_equal(kd_key_error_get_info(error)->pin_retries, 7);
    assert_int_equal(softkey_get_credential_count(f->sk), 0);
}

static void
test_excluded(void **state)
{
    Fixture *f = *state;
    g_autoptr(GError) error = NULL;
    g_autoptr(KdKeyCredentialRequest) req = kt_request("Zmlyc3Q");
    g_autoptr(KdKeyCredentialRequest) again = kt_request("c2Vjb25k");
    g_autoptr(KdKeyCredentialResult) first = NULL;
    KdKeyCredentialResult *second;

    softkey_set_pin(f->sk, PIN);
    first = kt_make_credential(f->key, req, PIN, &error);
    assert_no_error(error);
    /* Graph's excludeCredentials lists the person's existing keys (an unknown id first). */
    g_ptr_array_add(again->exclude_ids, g_bytes_new("\x01\x02\x03", 3));
    g_ptr_array_add(again->exclude_ids, g_bytes_ref(first->credential_id));
    second = kt_make_credential(f->key, again, PIN, &error);
    assert_null(second);
    assert_error(error, KD_KEY_ERROR_ALREADY_REGISTERED);
    assert_non_null(strstr(error->message, "already registered"));
    assert_int_equal(softkey_get_credential_count(f->sk), 1);
}

static void
test_no_touch(void **state)
{
    Fixture *f = *state;
    g_autoptr(GError) error = NULL;
    g_autoptr(KdKeyCredentialRequest) req = kt_request("AQIDBA");
    KdKeyCredentialResult *res;
    static const guint8 statuses[] = {0x2f, 0x27, 0x3a};

    softkey_set_pin(f->sk, PIN);
    /* The key gives up itself, with the codes real keys use for it. */
    softkey_set_touch(f->sk, SOFTKEY_TOUCH_NEVER, 0);
    for (gsize i = 0; i < G_N_ELEMENTS(statuses); i++) {
        softkey_set_touch_timeout(f->sk, 150, statuses[i]);
        res = kt_make_credential(f->key, req, PIN, &error);
        assert_null(res);
        assert_error(error, KD_KEY_ERROR_NO_TOUCH);
        assert_int_equal(kd_key_error_get_info(error)->fido_code, statuses[i]);
        g_clear_error(&error);
    }
    /* The key would wait for ever: keydesk's own budget ends the wait (fido_dev_cancel). */
    softkey_set_touch_timeout(f->sk, 60000, 0);
    softkey_set_touch(f->sk, SOFTKEY_TOUCH_MANUAL, 0);
    kd_key_set_timeouts(f->key, 500, 500);
    res = kt_make_credential(f->key, req, PIN, &error);
    assert_null(res);
    assert_error(error, KD_KEY_ERROR_NO_TOUCH);
    assert_false(kd_key_is_busy(f->key));
}

static gboolean
waiting_for_touch(gpointer data)
{
    return softkey_is_waiting_for_touch(data);
}

static void
test_cancel(void **state)
{
    Fixture *f = *state;
    g_autoptr(GError) error = NULL;
    g_autoptr(KdKeyCredentialRequest) req = kt_request("AQIDBA");
    g_autoptr(GCancellable) cancellable = g_cancellable_new();
    KdKeyCredentialResult *res;
    KtWait w;

    softkey_set_pin(f->sk, PIN);
    softkey_set_touch(f->sk, SOFTKEY_TOUCH_MANUAL, 0);
    kt_make_credential_start(f->key, req, PIN, cancellable, &w);
    assert_true(kt_spin_until(waiting_for_touch, f->sk, 3000));
    g_cancellable_cancel(cancellable);
    kt_wait_run(&w);
    res = kd_key_make_credential_finish(f->key, w.result, &error);
    kt_wait_clear(&w);
    assert_null(res);
    assert_error(error, KD_KEY_ERROR_CANCELLED);
    assert_false(softkey_is_waiting_for_touch(f->sk));
    assert_int_equal(softkey_get_credential_count(f->sk), 0);
}

static void
test_busy(void **state)
{
    Fixture *f = *state;
    g_autoptr(GError) error = NULL;
    g_autoptr(KdKeyCredentialRequest) req = kt_request("AQIDBA");
    g_autoptr(KdKeyCredentialResult) res = NULL;
    KdKeyInfo *info;
    KtWait w;

    softkey_set_pin(f->sk, PIN);
    softkey_set_touch(f->sk, SOFTKEY_TOUCH_MANUAL, 0);
    kt_make_credential_start(f->key, req, PIN, NULL, &w);
    assert_true(kd_key_is_busy(f->key));
    /* A second operation while the key waits for a touch fails at once, clearly. */
    info = kt_info(f->key, &error);
    assert_null(info);
    assert_error(error, KD_KEY_ERROR_BUSY);
    assert_true(kt_spin_until(waiting_for_touch, f->sk, 3000));
    softkey_touch(f->sk);
    kt_wait_run(&w);
    res = kd_key_make_credential_finish(f->key, w.result, NULL);
    kt_wait_clear(&w);
    assert_non_null(res);
    assert_false(kd_key_is_busy(f->key));
}

static void
test_removed(void **state)
{
    Fixture *f = *state;
    g_autoptr(GError) error = NULL;
    g_autoptr(KdKeyCredentialRequest) req = kt_request("AQIDBA");
    KdKeyCredentialResult *res;
    KdKeyInfo *info;

    softkey_set_pin(f->sk, PIN);
    softkey_unplug(f->sk);
    info = kt_info(f->key, &error);
    assert_null(info);
    assert_error(error, KD_KEY_ERROR_REMOVED);
    g_clear_error(&error);
    softkey_plug(f->sk);
    info = kt_info(f->key, &error);
    assert_non_null(info);
    kd_key_info_free(info);
    /* Pulled out mid-message, at every point of the exchange (open, getInfo, key agreement,
     * PIN token, makeCredential): always "removed", never "too old" (libfido2's silent U2F
     * fallback) nor "something went wrong" (its FIDO_ERR_INTERNAL). */
    for (int n = 1; n <= 40; n++) {
        softkey_set_fault(f->sk, SOFTKEY_FAULT_REMOVED, n);
        res = kt_make_credential(f->key, req, PIN, &error);
        if (res != NULL) { /* the exchange was shorter than n reports */
            kd_key_credential_result_free(res);
            assert_true(n > 20);
            break;
        }
        if (!g_error_matches(error, KD_KEY_ERROR, KD_KEY_ERROR_REMOVED))
            fail_msg("removed after %d reports: %s", n, error->message);
        g_clear_error(&error);
        /* Plugged in again: a power cycle (what was in progress inside the key is gone). */
        softkey_set_fault(f->sk, SOFTKEY_FAULT_NONE, 0);
        softkey_unplug(f->sk);
        softkey_plug(f->sk);
    }
    /* Pulled out while waiting for the touch. */
    softkey_set_fault(f->sk, SOFTKEY_FAULT_NONE, 0);
    softkey_plug(f->sk);
    softkey_set_touch(f->sk, SOFTKEY_TOUCH_MANUAL, 0);
    {
        KtWait w;

        kt_make_credential_start(f->key, req, PIN, NULL, &w);
        assert_true(kt_spin_until(waiting_for_touch, f->sk, 3000));
        softkey_unplug(f->sk);
        kt_wait_run(&w);
        res = kd_key_make_credential_finish(f->key, w.result, &error);
        kt_wait_clear(&w);
    }
    assert_null(res);
    /* The key stops answering: libfido2 notices at its deadline; either way not "no touch"
     * from the key itself but removed/timeout. */
    assert_true(g_error_matches(error, KD_KEY_ERROR, KD_KEY_ERROR_REMOVED) ||
                g_error_matches(error, KD_KEY_ERROR, KD_KEY_ERROR_NO_TOUCH));
}

static void
test_garbled(void **state)
{
    Fixture *f = *state;
    g_autoptr(GError) error = NULL;
    KdKeyInfo *info;

    softkey_set_fault(f->sk, SOFTKEY_FAULT_GARBLED, 0);
    info = kt_info(f->key, &error);
    if (info != NULL) {
        /* The garbled answer was INIT's or open's getInfo, which libfido2 retries: then the
         * next exchange must be clean. */
        kd_key_info_free(info);
        return;
    }
    assert_true(g_error_matches(error, KD_KEY_ERROR, KD_KEY_ERROR_REMOVED) ||
                g_error_matches(error, KD_KEY_ERROR, KD_KEY_ERROR_PROTOCOL));
    g_clear_error(&error);
    info = kt_info(f->key, &error);
    assert_no_error(error);
    kd_key_info_free(info);
}

static void
test_odd_status_codes(void **state)
{
    Fixture *f = *state;
    g_autoptr(KdKeyCredentialRequest) req = kt_request("AQIDBA");
    static const struct {
        guint8 status;
        KdKeyErrorCode code;
    } cases[] = {
        {0x14, KD_KEY_ERROR_PIN_REQUIRED}, /* Feitian/HyperFIDO's MISSING_PARAMETER */
        {0x36, KD_KEY_ERROR_PIN_REQUIRED},
        {0x28, KD_KEY_ERROR_KEY_FULL},
        {0x2b, KD_KEY_ERROR_UNSUPPORTED},
        {0x2c, KD_KEY_ERROR_UNSUPPORTED},
        {0x34, KD_KEY_ERROR_PIN_AUTH_BLOCKED},
        {0x32, KD_KEY_ERROR_PIN_BLOCKED},
        {0x37, KD_KEY_ERROR_PIN_CHANGE_REQUIRED},
        {0x33, KD_KEY_ERROR_PROTOCOL},
        {0x7f, KD_KEY_ERROR_PROTOCOL},
    };

    softkey_set_pin(f->sk, PIN);
    for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
        g_autoptr(GError) error = NULL;
        KdKeyCredentialResult *res;

        softkey_set_status_fault(f->sk, 0x01, cases[i].status);
        res = kt_make_credential(f->key, req, PIN, &error);
        assert_null(res);
        assert_error(error, cases[i].code);
        assert_int_equal(kd_key_error_get_info(error)->fido_code, cases[i].status);
    }
}

/* --- CTAP 2.1 settings ------------------------------------------------------------------------ */

static gboolean
run_config(KdKey *key, guint min_length, const char *pin, GError **error)
{
    KdSecret *s = pin != NULL ? kd_secret_new_from(pin, strlen(pin)) : NULL;
    KtWait w;
    gboolean ok;

    kt_wait_init(&w);
    if (min_length > 0)
        kd_key_set_min_pin_length_async(key, min_length, s, NULL, kt_done, &w);
    else
        kd_key_force_pin_change_async(key, s, NULL, kt_done, &w);
    kd_secret_unref(s);
    kt_wait_run(&w);
    ok = min_length > 0 ? kd_key_set_min_pin_length_finish(key, w.result, error)
                        : kd_key_force_pin_change_finish(key, w.result, error);
    kt_wait_clear(&w);
    return ok;
}

static void
test_force_pin_change(void **state)
{
    Fixture *f = *state;
    g_autoptr(GError) error = NULL;
    g_autoptr(KdKeyCredentialRequest) req = kt_request("AQIDBA");
    g_autoptr(KdKeyInfo) info = NULL;
    g_autoptr(KdKeyCredentialResult) res = NULL;

    assert_false(run_config(f->key, 0, NULL, &error));
    assert_error(error, KD_KEY_ERROR_PIN_NOT_SET);
    g_clear_error(&error);
    softkey_set_pin(f->sk, PIN);
    assert_false(run_config(f->key, 0, NULL, &error));
    assert_error(error, KD_KEY_ERROR_PIN_REQUIRED);
    g_clear_error(&error);
    assert_true(run_config(f->key, 0, PIN, &error));
    info = kt_info(f->key, &error);
    assert_true(info->force_pin_change);
    res = kt_make_credential(f->key, req, PIN, &error);
    assert_null(res);
    assert_error(error, KD_KEY_ERROR_PIN_CHANGE_REQUIRED);
    g_clear_error(&error);
    assert_true(kt_change_pin(f->key, PIN, PIN2, &error));
    res = kt_make_credential(f->key, req, PIN2, &error);
    assert_no_error(error);
    assert_non_null(res);
}

static void
test_min_pin_length(void **state)
{
    Fixture *f = *state;
    g_autoptr(GError) error = NULL;
    g_autoptr(KdKeyInfo) info = NULL;
    g_autoptr(KdKeyCredentialRequest) req = kt_request("AQIDBA");
    KdKeyCredentialResult *res;

    softkey_set_pin(f->sk, "4829");
    assert_true(run_config(f->key, 6, "4829", &error));
    info = kt_info(f->key, &error);
    assert_int_equal(info->min_pin_length, 6);
    assert_true(info->min_pin_length_known);
    /* The PIN is now shorter than the minimum: the key demands a new one. */
    assert_true(info->force_pin_change);
    res = kt_make_credential(f->key, req, "4829", &error);
    assert_null(res);
    assert_error(error, KD_KEY_ERROR_PIN_CHANGE_REQUIRED);
    g_clear_error(&error);
    assert_false(kt_change_pin(f->key, "4829", "73519", &error));
    assert_error(error, KD_KEY_ERROR_PIN_POLICY);
    assert_non_null(strstr(error->message, "at least 6"));
    g_clear_error(&error);
    assert_true(kt_change_pin(f->key, "4829", PIN2, &error));
    /* A key never lowers its minimum. */
    assert_false(run_config(f->key, 4, PIN2, &error));
    assert_error(error, KD_KEY_ERROR_PIN_POLICY);
    assert_int_equal(softkey_get_min_pin_length(f->sk), 6);
}

/* --- awkward models (SCENARIOS.md §5, §7) ----------------------------------------------------- */

static SoftKey *
model(const char *name)
{
    g_autofree char *path = g_build_filename(KD_KEYS_REFERENCE, "getinfo", "device", name, NULL);
    g_autoptr(GError) error = NULL;
    SoftKey *sk = softkey_new_from_model(path, &error);

    if (sk == NULL)
        fail_msg("%s: %s", name, error->message);
    return sk;
}

static void
test_u2f_only(void **state)
{
    SoftKey *sk = model("u2f-only-key-ctaphid-4.4.5__no-aaguid.json");
    g_autoptr(KdKey) key = kt_soft_key(sk);
    g_autoptr(GError) error = NULL;
    g_autoptr(KdKeyInfo) info = kt_info(key, &error);
    g_autoptr(KdKeyCredentialRequest) req = kt_request("dTJmLW9ubHktY2hhbGxlbmdl");
    KdKeyCredentialResult *res;

    assert_no_error(error);
    assert_false(info->fido2);
    assert_int_equal(info->ctap, KD_KEY_CTAP_U2F);
    assert_int_equal(info->attestation, KD_KEY_ATTESTATION_SELF);
    res = kt_make_credential(key, req, NULL, &error);
    assert_null(res);
    assert_error(error, KD_KEY_ERROR_NOT_FIDO2);
    assert_non_null(strstr(error->message, "U2F"));
    g_clear_error(&error);
    assert_false(kt_set_pin(key, PIN, &error));
    assert_error(error, KD_KEY_ERROR_NOT_FIDO2);
    g_clear_object(&key);
    softkey_free(sk);
}

static void
test_ctap20_without_cred_protect(void **state)
{
    SoftKey *sk = model("security-key-by-yubico-fw5.1__f8a011f3.json");
    g_autoptr(KdKey) key = kt_soft_key(sk);
    g_autoptr(GError) error = NULL;
    g_autoptr(KdKeyInfo) info = kt_info(key, &error);
    g_autoptr(KdKeyCredentialRequest) req = kt_request("Y3RhcDIwLWNoYWxsZW5nZS1ieXRlcw");
    g_autoptr(KdKeyCredentialResult) res = NULL;
    KtWait w;

    assert_no_error(error);
    assert_int_equal(info->ctap, KD_KEY_CTAP_2_0);
    assert_false(info->cred_protect);
    assert_string_equal(info->model, "Security Key by Yubico");
    /* No authenticatorConfig on a CTAP 2.0 key. */
    kt_wait_init(&w);
    kd_key_set_min_pin_length_async(key, 6, NULL, NULL, kt_done, &w);
    kt_wait_run(&w);
    assert_false(kd_key_set_min_pin_length_finish(key, w.result, &error));
    kt_wait_clear(&w);
    assert_error(error, KD_KEY_ERROR_UNSUPPORTED);
    g_clear_error(&error);
    if (!info->pin_set)
        assert_true(kt_set_pin(key, PIN, &error));
    /* credProtect 2 enforced: refused clearly before the key is asked. */
    req->cred_protect = 2;
    res = kt_make_credential(key, req, PIN, &error);
    assert_null(res);
    assert_error(error, KD_KEY_ERROR_UNSUPPORTED);
    assert_non_null(strstr(error->message, "credential protection"));
    g_clear_error(&error);
    /* Entra's usual level 1 (enforced) is made without the extension. */
    req->cred_protect = 1;
    res = kt_make_credential(key, req, PIN, &error);
    assert_no_error(error);
    assert_int_equal(res->cred_protect, 0);
    verify_with_python(res, "Y3RhcDIwLWNoYWxsZW5nZS1ieXRlcw", !res->self_attested);
    g_clear_object(&key);
    softkey_free(sk);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_info, setup, teardown),
        cmocka_unit_test_setup_teardown(test_set_pin, setup, teardown),
        cmocka_unit_test_setup_teardown(test_set_pin_rules_first, setup, teardown),
        cmocka_unit_test_setup_teardown(test_change_pin, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pin_blocked, setup, teardown),
        cmocka_unit_test_setup_teardown(test_make_credential, setup, teardown),
        cmocka_unit_test_setup_teardown(test_make_credential_self, setup, teardown),
        cmocka_unit_test_setup_teardown(test_make_credential_pin_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_excluded, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_touch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cancel, setup, teardown),
        cmocka_unit_test_setup_teardown(test_busy, setup, teardown),
        cmocka_unit_test_setup_teardown(test_removed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_garbled, setup, teardown),
        cmocka_unit_test_setup_teardown(test_odd_status_codes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_force_pin_change, setup, teardown),
        cmocka_unit_test_setup_teardown(test_min_pin_length, setup, teardown),
        cmocka_unit_test(test_u2f_only),
        cmocka_unit_test(test_ctap20_without_cred_protect),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
