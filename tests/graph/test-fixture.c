/* test-fixture: the emulator fixture itself: it starts, answers over verified TLS, logs. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "kd-emulator.h"

static void
test_start_call_log(void **state)
{
    KdEmulator *emu = kd_emulator_start("t['tenant']['license'] = 'free'", NULL);
    guint status = 0;
    JsonNode *health, *log;

    assert_true(g_str_has_prefix(emu->url, "https://127.0.0.1:"));
    health = kd_emulator_call(emu, "GET", "/_emulator/health", NULL, &status);
    assert_int_equal(status, 200);
    assert_string_equal(json_object_get_string_member(json_node_get_object(health), "tenant"),
                        KD_EMU_TENANT_ID);
    log = kd_emulator_requests(emu, -1);
    assert_true(json_array_get_length(json_node_get_array(log)) >= 1);
    json_node_unref(health);
    json_node_unref(log);
    kd_emulator_stop(&emu);
    assert_null(emu);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_start_call_log),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
