/* test-key-rules: PIN rules (kd-pin-rules) and the KdKeyError table (kd-key-error). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <fido.h>

#include "hw/kd-key-error.h"
#include "hw/kd-pin-rules.h"

static KdPinVerdict
judge(const char *pin, guint min)
{
    return kd_pin_rules_judge(pin, strlen(pin), min);
}

static void
test_length_in_code_points(void **state)
{
    /* Four characters, eight bytes: long enough for a minimum of 4 ("é" is two bytes). */
    assert_int_equal(judge("\xc3\xa9t\xc3\xa9s", 4), KD_PIN_OK);
    assert_int_equal(judge("\xc3\xa9t\xc3\xa9", 4), KD_PIN_TOO_SHORT);
    assert_int_equal(judge("4829", 0), KD_PIN_OK); /* 0 = default 4 */
    assert_int_equal(judge("482", 0), KD_PIN_TOO_SHORT);
    assert_int_equal(judge("48293", 6), KD_PIN_TOO_SHORT);
    assert_int_equal(judge("482937", 6), KD_PIN_OK);
    assert_int_equal(judge("4829371", 8), KD_PIN_TOO_SHORT);
    assert_int_equal(judge("48293715", 8), KD_PIN_OK);
    assert_int_equal(judge("", 4), KD_PIN_TOO_SHORT);
}

static void
test_63_bytes(void **state)
{
    char pin[80];

    /* 63 bytes pass, 64 do not; 32 two-byte characters are 64 bytes. */
    for (int i = 0; i < 63; i++)
        pin[i] = (char)('a' + (i * 7) % 26);
    pin[63] = '\0';
    assert_int_equal(judge(pin, 4), KD_PIN_OK);
    pin[63] = 'q';
    pin[64] = '\0';
    assert_int_equal(judge(pin, 4), KD_PIN_TOO_LONG);
    pin[0] = '\0';
    for (int i = 0; i < 32; i++)
        strcat(pin, i % 2 ? "\xc3\xa9" : "\xc3\xbc");
    assert_int_equal(judge(pin, 4), KD_PIN_TOO_LONG);
}

static void
test_invalid(void **state)
{
    assert_int_equal(kd_pin_rules_judge("48\xff"
                                        "29",
                                        5, 4),
                     KD_PIN_INVALID);
    assert_int_equal(kd_pin_rules_judge("48\0"
                                        "293",
                                        6, 4),
                     KD_PIN_INVALID);
    assert_int_equal(judge("4829\n", 4), KD_PIN_INVALID);
}

static void
test_trivial(void **state)
{
    const char *trivial[] = {"1111",   "0000",   "999999",   "aaaa",     "1234",   "123456",
                             "4321",   "654321", "9876",     "7890",     "0987",   "12345678",
                             "abcd",   "DCBA",   "password", "Passw0rd", "123123", "112233",
                             "121212", "159753", "qwerty",   "1212"};
    const char *fine[] = {"4829",     "1357",          "2468", "192837",
                          "73918264", "correct horse", "1243", "abce"};

    for (gsize i = 0; i < G_N_ELEMENTS(trivial); i++) {
        if (judge(trivial[i], 4) != KD_PIN_TRIVIAL)
            fail_msg("%s should be trivial", trivial[i]);
    }
    for (gsize i = 0; i < G_N_ELEMENTS(fine); i++) {
        if (judge(fine[i], 4) != KD_PIN_OK)
            fail_msg("%s should pass", fine[i]);
    }
}

static void
test_sentences(void **state)
{
    g_autofree char *d4 = kd_pin_rules_describe(0);
    g_autofree char *d6 = kd_pin_rules_describe(6);
    g_autofree char *short8 = kd_pin_rules_explain(KD_PIN_TOO_SHORT, 8);
    g_autofree char *trivial6 = kd_pin_rules_explain(KD_PIN_TRIVIAL, 6);
    g_autofree char *too_long = kd_pin_rules_explain(KD_PIN_TOO_LONG, 4);

    assert_non_null(strstr(d4, "at least 4 characters"));
    assert_non_null(strstr(d4, "1234"));
    assert_non_null(strstr(d6, "at least 6 characters"));
    assert_non_null(strstr(d6, "123456"));
    assert_non_null(strstr(short8, "at least 8 characters"));
    assert_non_null(strstr(trivial6, "at least 6 characters"));
    assert_non_null(strstr(trivial6, "too easy to guess"));
    assert_non_null(strstr(too_long, "63"));
}

static void
test_check_error(void **state)
{
    g_autoptr(KdSecret) bad = kd_secret_new_from("2580", 4);
    g_autoptr(KdSecret) good = kd_secret_new_from("482937", 6);
    g_autoptr(GError) error = NULL;
    const KdKeyErrorInfo *info;

    assert_true(kd_pin_rules_check(good, 6, NULL));
    assert_false(kd_pin_rules_check(bad, 6, &error));
    assert_true(g_error_matches(error, KD_KEY_ERROR, KD_KEY_ERROR_PIN_POLICY));
    assert_non_null(strstr(error->message, "at least 6 characters"));
    /* The rejected PIN itself is never quoted (messages may be logged). */
    assert_null(strstr(error->message, "2580"));
    info = kd_key_error_get_info(error);
    assert_non_null(info);
    assert_int_equal(info->min_pin_length, 6);
    g_clear_error(&error);
    /* "2580" is common even though long enough for 4. */
    assert_false(kd_pin_rules_check(bad, 4, &error));
    assert_non_null(strstr(error->message, "too easy to guess"));
}

static void
test_error_table(void **state)
{
    for (int c = 0; c < KD_KEY_ERROR_N_CODES; c++) {
        const char *s = kd_key_error_sentence((KdKeyErrorCode)c);

        assert_non_null(s);
        assert_true(strlen(s) > 8);
        assert_true(g_str_has_suffix(s, "."));
        assert_string_not_equal(kd_key_error_code_name((KdKeyErrorCode)c), "unknown");
        for (int d = 0; d < c; d++)
            assert_string_not_equal(kd_key_error_code_name((KdKeyErrorCode)c),
                                    kd_key_error_code_name((KdKeyErrorCode)d));
    }
}

static void
test_fido_mapping(void **state)
{
    static const struct {
        int fido;
        KdKeyOp op;
        KdKeyErrorCode code;
    } cases[] = {
        {FIDO_ERR_PIN_INVALID, KD_KEY_OP_CHANGE_PIN, KD_KEY_ERROR_PIN_INVALID},
        {FIDO_ERR_PIN_AUTH_BLOCKED, KD_KEY_OP_MAKE_CREDENTIAL, KD_KEY_ERROR_PIN_AUTH_BLOCKED},
        {FIDO_ERR_PIN_BLOCKED, KD_KEY_OP_MAKE_CREDENTIAL, KD_KEY_ERROR_PIN_BLOCKED},
        {FIDO_ERR_PIN_POLICY_VIOLATION, KD_KEY_OP_SET_PIN, KD_KEY_ERROR_PIN_POLICY},
        {FIDO_ERR_PIN_POLICY_VIOLATION, KD_KEY_OP_MAKE_CREDENTIAL,
         KD_KEY_ERROR_PIN_CHANGE_REQUIRED},
        {FIDO_ERR_PIN_NOT_SET, KD_KEY_OP_CHANGE_PIN, KD_KEY_ERROR_PIN_NOT_SET},
        {FIDO_ERR_PIN_REQUIRED, KD_KEY_OP_MAKE_CREDENTIAL, KD_KEY_ERROR_PIN_REQUIRED},
        /* Feitian/HyperFIDO answer MISSING_PARAMETER where PIN_REQUIRED is due. */
        {FIDO_ERR_MISSING_PARAMETER, KD_KEY_OP_MAKE_CREDENTIAL, KD_KEY_ERROR_PIN_REQUIRED},
        {FIDO_ERR_PIN_AUTH_INVALID, KD_KEY_OP_SET_PIN, KD_KEY_ERROR_PIN_ALREADY_SET},
        {FIDO_ERR_PIN_AUTH_INVALID, KD_KEY_OP_MAKE_CREDENTIAL, KD_KEY_ERROR_PROTOCOL},
        {FIDO_ERR_CREDENTIAL_EXCLUDED, KD_KEY_OP_MAKE_CREDENTIAL, KD_KEY_ERROR_ALREADY_REGISTERED},
        {FIDO_ERR_USER_ACTION_TIMEOUT, KD_KEY_OP_MAKE_CREDENTIAL, KD_KEY_ERROR_NO_TOUCH},
        {FIDO_ERR_OPERATION_DENIED, KD_KEY_OP_MAKE_CREDENTIAL, KD_KEY_ERROR_NO_TOUCH},
        {FIDO_ERR_ACTION_TIMEOUT, KD_KEY_OP_RESET, KD_KEY_ERROR_NO_TOUCH},
        {FIDO_ERR_RX, KD_KEY_OP_INFO, KD_KEY_ERROR_REMOVED},
        {FIDO_ERR_TX, KD_KEY_OP_MAKE_CREDENTIAL, KD_KEY_ERROR_REMOVED},
        {FIDO_ERR_KEEPALIVE_CANCEL, KD_KEY_OP_MAKE_CREDENTIAL, KD_KEY_ERROR_CANCELLED},
        {FIDO_ERR_NOT_ALLOWED, KD_KEY_OP_RESET, KD_KEY_ERROR_RESET_NOT_ALLOWED},
        {FIDO_ERR_UNSUPPORTED_OPTION, KD_KEY_OP_MAKE_CREDENTIAL, KD_KEY_ERROR_UNSUPPORTED},
        {FIDO_ERR_UNSUPPORTED_EXTENSION, KD_KEY_OP_MAKE_CREDENTIAL, KD_KEY_ERROR_UNSUPPORTED},
        {FIDO_ERR_KEY_STORE_FULL, KD_KEY_OP_MAKE_CREDENTIAL, KD_KEY_ERROR_KEY_FULL},
        {FIDO_ERR_CHANNEL_BUSY, KD_KEY_OP_INFO, KD_KEY_ERROR_BUSY},
        {FIDO_ERR_INVALID_COMMAND, KD_KEY_OP_MAKE_CREDENTIAL, KD_KEY_ERROR_NOT_FIDO2},
        {FIDO_ERR_INVALID_CBOR, KD_KEY_OP_INFO, KD_KEY_ERROR_PROTOCOL},
        {FIDO_ERR_INTERNAL, KD_KEY_OP_INFO, KD_KEY_ERROR_FAILED},
    };

    for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
        KdKeyErrorCode got = kd_key_error_code_from_fido(cases[i].fido, cases[i].op);

        if (got != cases[i].code)
            fail_msg("%s in op %d: %s, expected %s", fido_strerr(cases[i].fido), cases[i].op,
                     kd_key_error_code_name(got), kd_key_error_code_name(cases[i].code));
    }
}

static void
test_from_fido_sentences(void **state)
{
    g_autoptr(GError) e3 = kd_key_error_from_fido(FIDO_ERR_PIN_INVALID, KD_KEY_OP_CHANGE_PIN, 5, 0);
    g_autoptr(GError) e1 = kd_key_error_from_fido(FIDO_ERR_PIN_INVALID, KD_KEY_OP_CHANGE_PIN, 1, 0);
    g_autoptr(GError) blocked =
        kd_key_error_from_fido(FIDO_ERR_PIN_BLOCKED, KD_KEY_OP_MAKE_CREDENTIAL, -1, 0);
    g_autoptr(GError) policy =
        kd_key_error_from_fido(FIDO_ERR_PIN_POLICY_VIOLATION, KD_KEY_OP_SET_PIN, -1, 6);

    assert_non_null(strstr(e3->message, "5 tries are left"));
    assert_int_equal(kd_key_error_get_info(e3)->pin_retries, 5);
    assert_int_equal(kd_key_error_get_info(e3)->fido_code, FIDO_ERR_PIN_INVALID);
    assert_non_null(strstr(e1->message, "One try is left"));
    assert_int_equal(kd_key_error_get_info(blocked)->pin_retries, 0);
    assert_non_null(strstr(blocked->message, "reset"));
    assert_non_null(strstr(policy->message, "at least 6 characters"));
    assert_int_equal(kd_key_error_get_info(policy)->min_pin_length, 6);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_length_in_code_points),
        cmocka_unit_test(test_63_bytes),
        cmocka_unit_test(test_invalid),
        cmocka_unit_test(test_trivial),
        cmocka_unit_test(test_sentences),
        cmocka_unit_test(test_check_error),
        cmocka_unit_test(test_error_table),
        cmocka_unit_test(test_fido_mapping),
        cmocka_unit_test(test_from_fido_sentences),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
