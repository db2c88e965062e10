/* test-idle: the "Still there?" timing, driven by a fake clock so no test waits for real time. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "core/kd-idle.h"

#define S(x) ((gint64)(x)*G_USEC_PER_SEC)

static gint64 fake_now;

static gint64
fake_clock(gpointer user_data)
{
    return fake_now;
}

static KdIdle *
new_idle(void)
{
    fake_now = S(1000);
    return kd_idle_new(90, 10, fake_clock, NULL);
}

static void
test_starts_disarmed(void **state)
{
    KdIdle *idle = new_idle();

    assert_int_equal(kd_idle_poll(idle, NULL), KD_IDLE_DISARMED);
    assert_true(kd_idle_next_change_us(idle) < 0);
    fake_now += S(10000);
    assert_int_equal(kd_idle_poll(idle, NULL), KD_IDLE_DISARMED);
    assert_false(kd_idle_activity(idle));
    kd_idle_free(&idle);
    assert_null(idle);
}

static void
test_warning_then_expiry(void **state)
{
    KdIdle *idle = new_idle();
    guint left = 0;

    kd_idle_arm(idle);
    assert_int_equal(kd_idle_poll(idle, NULL), KD_IDLE_ACTIVE);
    assert_int_equal(kd_idle_next_change_us(idle), S(90));

    fake_now += S(90) - 1;
    assert_int_equal(kd_idle_poll(idle, NULL), KD_IDLE_ACTIVE);
    assert_int_equal(kd_idle_next_change_us(idle), 1);

    fake_now += 1;
    assert_int_equal(kd_idle_poll(idle, &left), KD_IDLE_WARNING);
    assert_int_equal(left, 10);
    assert_int_equal(kd_idle_next_change_us(idle), S(1));

    /* The countdown shows whole seconds, rounded up: never "0 seconds" while still waiting. */
    fake_now += S(1) / 2;
    assert_int_equal(kd_idle_poll(idle, &left), KD_IDLE_WARNING);
    assert_int_equal(left, 10);
    assert_int_equal(kd_idle_next_change_us(idle), S(1) / 2);
    fake_now += S(9);
    assert_int_equal(kd_idle_poll(idle, &left), KD_IDLE_WARNING);
    assert_int_equal(left, 1);

    fake_now += S(1) / 2;
    assert_int_equal(kd_idle_poll(idle, &left), KD_IDLE_EXPIRED);
    assert_true(kd_idle_next_change_us(idle) < 0);
    kd_idle_free(&idle);
}

static void
test_activity_restarts_timer(void **state)
{
    KdIdle *idle = new_idle();

    kd_idle_arm(idle);
    fake_now += S(60);
    assert_false(kd_idle_activity(idle)); /* no countdown was running */
    fake_now += S(60);
    assert_int_equal(kd_idle_poll(idle, NULL), KD_IDLE_ACTIVE);
    assert_int_equal(kd_idle_next_change_us(idle), S(30));
    kd_idle_free(&idle);
}

static void
test_activity_cancels_countdown(void **state)
{
    KdIdle *idle = new_idle();
    guint left = 0;

    kd_idle_arm(idle);
    fake_now += S(95);
    assert_int_equal(kd_idle_poll(idle, &left), KD_IDLE_WARNING);
    assert_int_equal(left, 5);
    assert_true(kd_idle_activity(idle)); /* "I'm still here" */
    assert_int_equal(kd_idle_poll(idle, NULL), KD_IDLE_ACTIVE);
    assert_int_equal(kd_idle_next_change_us(idle), S(90));
    kd_idle_free(&idle);
}

static void
test_no_revival_after_expiry(void **state)
{
    KdIdle *idle = new_idle();

    kd_idle_arm(idle);
    fake_now += S(100);
    assert_int_equal(kd_idle_poll(idle, NULL), KD_IDLE_EXPIRED);
    /* A touch that arrives after the countdown ran out must not resurrect the old visit. */
    assert_false(kd_idle_activity(idle));
    assert_int_equal(kd_idle_poll(idle, NULL), KD_IDLE_EXPIRED);
    kd_idle_disarm(idle);
    assert_int_equal(kd_idle_poll(idle, NULL), KD_IDLE_DISARMED);
    kd_idle_arm(idle);
    assert_int_equal(kd_idle_poll(idle, NULL), KD_IDLE_ACTIVE);
    kd_idle_free(&idle);
}

static void
test_disarm_stops_countdown(void **state)
{
    KdIdle *idle = new_idle();

    kd_idle_arm(idle);
    fake_now += S(92);
    assert_int_equal(kd_idle_poll(idle, NULL), KD_IDLE_WARNING);
    kd_idle_disarm(idle);
    fake_now += S(100);
    assert_int_equal(kd_idle_poll(idle, NULL), KD_IDLE_DISARMED);
    kd_idle_free(&idle);
}

static void
test_real_clock(void **state)
{
    KdIdle *idle = kd_idle_new(10, 10, NULL, NULL);

    kd_idle_arm(idle);
    assert_int_equal(kd_idle_poll(idle, NULL), KD_IDLE_ACTIVE);
    assert_true(kd_idle_next_change_us(idle) > S(9));
    kd_idle_free(&idle);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_starts_disarmed),
        cmocka_unit_test(test_warning_then_expiry),
        cmocka_unit_test(test_activity_restarts_timer),
        cmocka_unit_test(test_activity_cancels_countdown),
        cmocka_unit_test(test_no_revival_after_expiry),
        cmocka_unit_test(test_disarm_stops_countdown),
        cmocka_unit_test(test_real_clock),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
