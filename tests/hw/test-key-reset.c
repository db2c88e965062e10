/* test-key-reset: the guided reset (remove, insert again, touch) through a KdUsbWatch with the
 * soft key added and removed as a virtual key, and touch-to-choose among two soft keys. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "test-key-util.h"

#define PIN "482937"

typedef struct {
    SoftKey *sk;
    KdKeyDevice *device;
    KdKey *key;
    KdUsbWatch *watch;
    GArray *states;     /* KdKeyResetState reported, in order */
    gboolean replug;    /* the "visitor" follows the instructions */
    gboolean late;      /* the key's reset window closes before it is plugged back in */
    gboolean other_key; /* another key arrives before this one comes back */
    KdKeyDevice *other;
} Fixture;

static int
setup(void **state)
{
    Fixture *f = g_new0(Fixture, 1);

    f->sk = softkey_new();
    f->device = kt_soft_device(f->sk, "virtual-1");
    f->key = kd_key_new(f->device);
    kd_key_set_timeouts(f->key, 2000, 3000);
    f->watch = kd_usb_watch_new();
    kd_usb_watch_add_virtual(f->watch, f->device);
    f->states = g_array_new(FALSE, FALSE, sizeof(KdKeyResetState));
    f->replug = TRUE;
    *state = f;
    return 0;
}

static int
teardown(void **state)
{
    Fixture *f = *state;

    g_object_unref(f->key);
    g_object_unref(f->watch);
    kd_key_device_unref(f->device);
    kd_key_device_unref(f->other);
    g_array_unref(f->states);
    softkey_free(f->sk);
    g_free(f);
    return 0;
}

/* The visitor, one step per instruction, a little later (as on the main loop). */
static gboolean
visitor_remove(gpointer data)
{
    Fixture *f = data;

    softkey_unplug(f->sk);
    kd_usb_watch_remove_virtual(f->watch, f->device);
    return G_SOURCE_REMOVE;
}

static gboolean
visitor_insert(gpointer data)
{
    Fixture *f = data;
    /* A new device object, as the watch reports a re-plugged key: same port id and serial. */
    KdKeyDevice *again = kt_soft_device(f->sk, "virtual-1");

    if (f->other_key) {
        f->other = kt_soft_device(f->sk, "virtual-2");
        g_free(f->other->serial);
        f->other->serial = g_strdup("someone-else");
        kd_usb_watch_add_virtual(f->watch, f->other);
    }
    if (f->late)
        softkey_set_reset_window(f->sk, 0);
    softkey_plug(f->sk);
    kd_usb_watch_add_virtual(f->watch, again);
    kd_key_device_unref(again);
    return G_SOURCE_REMOVE;
}

static void
on_progress(KdKey *key, KdKeyResetState state, gpointer data)
{
    Fixture *f = data;

    g_array_append_val(f->states, state);
    if (!f->replug)
        return;
    if (state == KD_KEY_RESET_REMOVE)
        g_timeout_add(20, visitor_remove, f);
    else if (state == KD_KEY_RESET_INSERT)
        g_timeout_add(20, visitor_insert, f);
}

static gboolean
run_reset(Fixture *f, guint replug_ms, GCancellable *cancellable, GError **error)
{
    KtWait w;
    gboolean ok;

    kt_wait_init(&w);
    kd_key_reset_async(f->key, f->watch, replug_ms, on_progress, f, cancellable, kt_done, &w);
    kt_wait_run(&w);
    ok = kd_key_reset_finish(f->key, w.result, error);
    kt_wait_clear(&w);
    return ok;
}

static void
assert_error(GError *error, KdKeyErrorCode code)
{
    if (error == NULL)
        fail_msg("expected %s, got success", kd_key_error_code_name(code));
    if (!g_error_matches(error, KD_KEY_ERROR, (gint)code))
        fail_msg("expected %s, got %s", kd_key_error_code_name(code), error->message);
}

static void
test_reset(void **state)
{
    Fixture *f = *state;
    g_autoptr(GError) error = NULL;
    g_autoptr(KdKeyCredentialRequest) req = kt_request("cmVzZXQtdGVzdC1jaGFsbGVuZ2U");
    g_autoptr(KdKeyCredentialResult) res = NULL;
    g_autoptr(KdKeyInfo) info = NULL;

    softkey_set_pin(f->sk, PIN);
    res = kt_make_credential(f->key, req, PIN, &error);
    assert_no_error(error);
    assert_int_equal(softkey_get_credential_count(f->sk), 1);
    f->other_key = TRUE; /* someone else's key arriving meanwhile must not be taken */
    assert_true(run_reset(f, 3000, NULL, &error));
    assert_no_error(error);
    assert_int_equal(f->states->len, 3);
    assert_int_equal(g_array_index(f->states, KdKeyResetState, 0), KD_KEY_RESET_REMOVE);
    assert_int_equal(g_array_index(f->states, KdKeyResetState, 1), KD_KEY_RESET_INSERT);
    assert_int_equal(g_array_index(f->states, KdKeyResetState, 2), KD_KEY_RESET_TOUCH);
    /* The key adopted the device that came back. */
    assert_ptr_not_equal(kd_key_get_device(f->key), f->device);
    assert_string_equal(kd_key_get_device(f->key)->id, "virtual-1");
    assert_false(softkey_has_pin(f->sk));
    assert_int_equal(softkey_get_credential_count(f->sk), 0);
    info = kt_info(f->key, &error);
    assert_false(info->pin_set);
    assert_int_equal(info->pin_retries, 8);
    assert_string_equal(kd_key_reset_state_sentence(KD_KEY_RESET_TOUCH), "Touch the key now.");
}

static void
test_reset_too_late(void **state)
{
    Fixture *f = *state;
    g_autoptr(GError) error = NULL;

    softkey_set_pin(f->sk, PIN);
    f->late = TRUE;
    assert_false(run_reset(f, 3000, NULL, &error));
    assert_error(error, KD_KEY_ERROR_RESET_NOT_ALLOWED);
    assert_non_null(strstr(error->message, "plugged in"));
    assert_true(softkey_has_pin(f->sk));
    assert_false(kd_key_is_busy(f->key));
}

static void
test_reset_no_touch(void **state)
{
    Fixture *f = *state;
    g_autoptr(GError) error = NULL;

    softkey_set_pin(f->sk, PIN);
    softkey_set_touch(f->sk, SOFTKEY_TOUCH_NEVER, 0);
    softkey_set_touch_timeout(f->sk, 150, 0);
    assert_false(run_reset(f, 3000, NULL, &error));
    assert_error(error, KD_KEY_ERROR_NO_TOUCH);
    assert_true(softkey_has_pin(f->sk));
}

static void
test_reset_not_replugged(void **state)
{
    Fixture *f = *state;
    g_autoptr(GError) error = NULL;

    f->replug = FALSE;
    assert_false(run_reset(f, 150, NULL, &error));
    assert_error(error, KD_KEY_ERROR_TIMEOUT);
    assert_non_null(strstr(error->message, "not removed"));
    assert_int_equal(f->states->len, 1);
    assert_false(kd_key_is_busy(f->key));
}

static gboolean
cancel_now(gpointer data)
{
    g_cancellable_cancel(data);
    return G_SOURCE_REMOVE;
}

static void
test_reset_cancel(void **state)
{
    Fixture *f = *state;
    g_autoptr(GError) error = NULL;
    g_autoptr(GCancellable) cancellable = g_cancellable_new();

    f->replug = FALSE;
    g_timeout_add(30, cancel_now, cancellable);
    assert_false(run_reset(f, 5000, cancellable, &error));
    assert_error(error, KD_KEY_ERROR_CANCELLED);
    assert_false(kd_key_is_busy(f->key));
    /* Nothing is left connected to the watch: a later removal reaches no dead operation. */
    visitor_remove(f);
}

/* --- touch to choose -------------------------------------------------------------------------- */

static gboolean
both_waiting(gpointer data)
{
    SoftKey **sks = data;

    return softkey_is_waiting_for_touch(sks[0]) && softkey_is_waiting_for_touch(sks[1]);
}

static void
test_choose(void **state)
{
    SoftKey *sks[2] = {softkey_new(), softkey_new()};
    KdKeyDevice *d1 = kt_soft_device(sks[0], "virtual-1"),
                *d2 = kt_soft_device(sks[1], "virtual-2");
    g_autoptr(GPtrArray) keys = g_ptr_array_new_with_free_func(g_object_unref);
    g_autoptr(GError) error = NULL;
    g_autoptr(KdKey) chosen = NULL;
    KtWait w;

    g_ptr_array_add(keys, kd_key_new(d1));
    g_ptr_array_add(keys, kd_key_new(d2));
    softkey_set_pin(sks[1], PIN); /* a key with a PIN blinks too (PIN_INVALID counts as touch) */
    for (int i = 0; i < 2; i++)
        softkey_set_touch(sks[i], SOFTKEY_TOUCH_MANUAL, 0);
    kt_wait_init(&w);
    kd_key_choose_async(keys, NULL, kt_done, &w);
    assert_true(kd_key_is_busy(keys->pdata[0]) && kd_key_is_busy(keys->pdata[1]));
    assert_true(kt_spin_until(both_waiting, sks, 3000));
    softkey_touch(sks[1]);
    kt_wait_run(&w);
    chosen = kd_key_choose_finish(w.result, &error);
    kt_wait_clear(&w);
    assert_no_error(error);
    assert_ptr_equal(chosen, keys->pdata[1]);
    /* The other key was told to stop blinking. */
    for (int i = 0; i < 100 && softkey_is_waiting_for_touch(sks[0]); i++)
        g_usleep(10000);
    assert_false(softkey_is_waiting_for_touch(sks[0]));
    assert_false(kd_key_is_busy(keys->pdata[0]) || kd_key_is_busy(keys->pdata[1]));
    /* Nobody touches: the budget ends it. */
    kd_key_set_timeouts(keys->pdata[0], 0, 800);
    kt_wait_init(&w);
    kd_key_choose_async(keys, NULL, kt_done, &w);
    kt_wait_run(&w);
    g_clear_object(&chosen);
    chosen = kd_key_choose_finish(w.result, &error);
    kt_wait_clear(&w);
    assert_null(chosen);
    assert_error(error, KD_KEY_ERROR_NO_TOUCH);
    g_clear_error(&error);
    /* A key that is gone is skipped; none left: removed. */
    softkey_unplug(sks[0]);
    softkey_unplug(sks[1]);
    kt_wait_init(&w);
    kd_key_choose_async(keys, NULL, kt_done, &w);
    kt_wait_run(&w);
    chosen = kd_key_choose_finish(w.result, &error);
    kt_wait_clear(&w);
    assert_null(chosen);
    assert_error(error, KD_KEY_ERROR_REMOVED);
    g_ptr_array_set_size(keys, 0);
    kd_key_device_unref(d1);
    kd_key_device_unref(d2);
    softkey_free(sks[0]);
    softkey_free(sks[1]);
}

static void
test_choose_cancel(void **state)
{
    SoftKey *sks[2] = {softkey_new(), softkey_new()};
    KdKeyDevice *d1 = kt_soft_device(sks[0], "virtual-1"),
                *d2 = kt_soft_device(sks[1], "virtual-2");
    g_autoptr(GPtrArray) keys = g_ptr_array_new_with_free_func(g_object_unref);
    g_autoptr(GCancellable) cancellable = g_cancellable_new();
    g_autoptr(GError) error = NULL;
    KdKey *chosen;
    KtWait w;

    g_ptr_array_add(keys, kd_key_new(d1));
    g_ptr_array_add(keys, kd_key_new(d2));
    for (int i = 0; i < 2; i++)
        softkey_set_touch(sks[i], SOFTKEY_TOUCH_MANUAL, 0);
    kt_wait_init(&w);
    kd_key_choose_async(keys, cancellable, kt_done, &w);
    assert_true(kt_spin_until(both_waiting, sks, 3000));
    g_cancellable_cancel(cancellable);
    kt_wait_run(&w);
    chosen = kd_key_choose_finish(w.result, &error);
    kt_wait_clear(&w);
    assert_null(chosen);
    assert_error(error, KD_KEY_ERROR_CANCELLED);
    g_ptr_array_set_size(keys, 0);
    kd_key_device_unref(d1);
    kd_key_device_unref(d2);
    softkey_free(sks[0]);
    softkey_free(sks[1]);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_reset, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reset_too_late, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reset_no_touch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reset_not_replugged, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reset_cancel, setup, teardown),
        cmocka_unit_test(test_choose),
        cmocka_unit_test(test_choose_cancel),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
