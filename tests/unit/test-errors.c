/* test-errors: kd_errors_describe() gives the visitor the key layer's own sentences. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include <fido.h>
#include <gio/gio.h>

#include "hw/kd-key-error.h"
#include "kd-errors.h"

static void
test_key_errors(void **state)
{
    g_autoptr(GError) wrong =
        kd_key_error_from_fido(FIDO_ERR_PIN_INVALID, KD_KEY_OP_MAKE_CREDENTIAL, 3, 0);
    g_autoptr(GError) removed = kd_key_error_from_fido(FIDO_ERR_RX, KD_KEY_OP_INFO, -1, 0);
    g_autoptr(GError) cancelled = kd_key_error_new(KD_KEY_ERROR_CANCELLED, NULL, NULL);
    g_autofree char *a = kd_errors_describe(wrong);
    g_autofree char *b = kd_errors_describe(removed);
    g_autofree char *c = kd_errors_describe(cancelled);

    /* The precise sentence, with the tries left, reaches the screen. */
    assert_non_null(strstr(a, "3 tries are left"));
    assert_string_equal(b, kd_key_error_sentence(KD_KEY_ERROR_REMOVED));
    assert_string_equal(c, "Stopped. Nothing was changed.");
}

static void
test_other_domains(void **state)
{
    g_autoptr(GError) io = g_error_new_literal(G_IO_ERROR, G_IO_ERROR_TIMED_OUT, "t");
    g_autoptr(GError) other = g_error_new_literal(G_FILE_ERROR, G_FILE_ERROR_NOENT, "n");
    g_autofree char *a = kd_errors_describe(io);
    g_autofree char *b = kd_errors_describe(other);
    g_autofree char *c = kd_errors_describe(NULL);

    assert_non_null(strstr(a, "taking longer"));
    assert_non_null(strstr(b, "Nothing was lost"));
    assert_non_null(strstr(c, "Something went wrong"));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_key_errors),
        cmocka_unit_test(test_other_domains),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
