/* test-session: a visitor's session wipes every secret and forgets the visitor when it ends. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "base/kd-secret.h"
#include "core/kd-session.h"

static gboolean
all_zero(const guint8 *p, gsize n)
{
    for (gsize i = 0; i < n; i++)
        if (p[i] != 0)
            return FALSE;
    return TRUE;
}

static void
on_ended(KdSession *session, int reason, gpointer user_data)
{
    int *seen = user_data;

    /* By the time anyone hears of the end, the secrets are already gone. */
    assert_null(kd_session_get_visitor_upn(session));
    *seen = reason;
}

static void
test_end_wipes_secrets(void **state)
{
    KdSession *session = kd_session_new();
    KdSecret *pin = kd_secret_new(63);
    KdSecret *tap = kd_secret_new_from("+drkzqAD", 8);
    int ended = -1;

    assert_true(kd_secret_append(pin, "135790", 6));
    kd_session_set_secret(session, "pin", pin);
    kd_session_set_secret(session, "tap", tap);
    kd_session_set_visitor(session, "0d3c1b2a-1111-4222-8333-944445555666", "ada@contoso.com",
                           "Ada Lovelace");
    g_signal_connect(session, "ended", G_CALLBACK(on_ended), &ended);

    assert_ptr_equal(kd_session_get_secret(session, "pin"), pin);
    assert_string_equal(kd_secret_get_string(tap), "+drkzqAD");
    assert_true(kd_session_is_active(session));

    kd_session_end(session, KD_SESSION_END_IDLE);

    assert_int_equal(ended, KD_SESSION_END_IDLE);
    assert_false(kd_session_is_active(session));
    /* We still hold our own references: the bytes must already be zero. */
    assert_int_equal(kd_secret_get_length(pin), 0);
    assert_true(all_zero(kd_secret_get_data(pin), kd_secret_get_capacity(pin)));
    assert_int_equal(kd_secret_get_length(tap), 0);
    assert_true(all_zero(kd_secret_get_data(tap), 8));
    assert_null(kd_session_get_secret(session, "pin"));
    assert_null(kd_session_get_visitor_id(session));
    assert_null(kd_session_get_visitor_name(session));

    /* Ending twice is harmless and does not signal again. */
    ended = -1;
    kd_session_end(session, KD_SESSION_END_DONE);
    assert_int_equal(ended, -1);

    kd_secret_unref(pin);
    kd_secret_unref(tap);
    g_object_unref(session);
}

static void
test_dispose_ends_session(void **state)
{
    KdSession *session = kd_session_new();
    KdSecret *token = kd_secret_new_from("eyJ0eXAiOiJKV1Qi", 16);
    int ended = -1;

    kd_session_set_secret(session, "token", token);
    g_signal_connect(session, "ended", G_CALLBACK(on_ended), &ended);
    g_object_unref(session);
    assert_int_equal(ended, KD_SESSION_END_SHUTDOWN);
    assert_true(all_zero(kd_secret_get_data(token), 16));
    kd_secret_unref(token);
}

static void
test_replacing_secret_wipes_old_one(void **state)
{
    KdSession *session = kd_session_new();
    KdSecret *first = kd_secret_new_from("1111", 4);
    KdSecret *second = kd_secret_new_from("2222", 4);

    kd_session_set_secret(session, "pin", first);
    kd_session_set_secret(session, "pin", second);
    assert_true(all_zero(kd_secret_get_data(first), 4));
    assert_string_equal(kd_secret_get_string(second), "2222");
    kd_session_wipe_secret(session, "pin");
    assert_true(all_zero(kd_secret_get_data(second), 4));
    assert_null(kd_session_get_secret(session, "pin"));

    kd_secret_unref(first);
    kd_secret_unref(second);
    g_object_unref(session);
}

static void
test_session_ids_are_unique(void **state)
{
    KdSession *a = kd_session_new();
    KdSession *b = kd_session_new();

    assert_true(g_uuid_string_is_valid(kd_session_get_id(a)));
    assert_string_not_equal(kd_session_get_id(a), kd_session_get_id(b));
    assert_true(kd_session_get_age(a) >= 0);
    g_object_unref(a);
    g_object_unref(b);
}

static void
test_secret_buffer(void **state)
{
    g_autoptr(KdSecret) s = kd_secret_new(4);

    assert_true(kd_secret_append(s, "12", 2));
    assert_true(kd_secret_append(s, "34", 2));
    assert_false(kd_secret_append(s, "5", 1)); /* full: refused, unchanged */
    assert_string_equal(kd_secret_get_string(s), "1234");
    kd_secret_backspace(s);
    assert_string_equal(kd_secret_get_string(s), "123");

    kd_secret_wipe(s);
    /* "é" is two bytes in UTF-8: backspace removes the whole character. */
    assert_true(kd_secret_append(s, "a\xc3\xa9", 3));
    kd_secret_backspace(s);
    assert_string_equal(kd_secret_get_string(s), "a");
    kd_secret_backspace(s);
    kd_secret_backspace(s);
    assert_int_equal(kd_secret_get_length(s), 0);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_end_wipes_secrets),
        cmocka_unit_test(test_dispose_ends_session),
        cmocka_unit_test(test_replacing_secret_wipes_old_one),
        cmocka_unit_test(test_session_ids_are_unique),
        cmocka_unit_test(test_secret_buffer),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
