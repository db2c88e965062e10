/* test-key-hidraw: the full stack. The soft key is a USB FIDO key in a umockdev testbed
 * (tests/softkey/softkey-hidraw.h); libfido2 finds it with its own enumeration and talks to it
 * through its own hidraw backend, exactly as with a real key. KdKey does info, set PIN and the
 * Entra credential on /dev/hidrawN, and the credential is re-verified with python3-fido2.
 * Runs under umockdev's preload (umockdev-wrapper). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "softkey-hidraw.h"
#include "test-key-util.h"

#define PIN       "482937"
#define CHALLENGE "ZnVsbC1zdGFjay1oaWRyYXctY2hhbGxlbmdl"

static void
test_full_stack(void **state)
{
    g_autoptr(UMockdevTestbed) testbed = umockdev_testbed_new(); /* before libfido2 looks */
    SoftKey *sk = softkey_new();
    g_autoptr(GError) error = NULL;
    SoftKeyHidraw *hidraw = softkey_hidraw_attach(sk, testbed, 1, NULL, &error);
    fido_dev_info_t *list = fido_dev_info_new(8);
    g_autoptr(KdKeyDevice) device = kd_key_device_new();
    g_autoptr(KdKey) key = NULL;
    g_autoptr(KdKeyInfo) info = NULL;
    g_autoptr(KdKeyCredentialRequest) req = kt_request(CHALLENGE);
    g_autoptr(KdKeyCredentialResult) res = NULL;
    g_autofree char *root = g_dir_make_tmp("hw-key-hidraw-XXXXXX", NULL);
    g_autoptr(GPtrArray) dirs = g_ptr_array_new_with_free_func(g_free);
    size_t n = 0;

    if (hidraw == NULL)
        fail_msg("attach: %s", error->message);
    /* libfido2's own enumeration finds the node, as kd-usb-watch links it in production. */
    assert_int_equal(fido_dev_info_manifest(list, 8, &n), FIDO_OK);
    assert_int_equal(n, 1);
    assert_string_equal(fido_dev_info_path(fido_dev_info_ptr(list, 0)),
                        softkey_hidraw_get_devnode(hidraw));
    fido_dev_info_free(&list, 8);

    device->id = g_strdup("1-1");
    device->vendor_id = 0x1050;
    device->product_id = 0x0407;
    device->fido_path = g_strdup(softkey_hidraw_get_devnode(hidraw));
    device->detection = KD_KEY_DETECTED_DESCRIPTOR;
    device->io = NULL; /* libfido2's hidraw backend */
    key = kd_key_new(device);
    kd_key_set_timeouts(key, 3000, 5000);

    info = kt_info(key, &error);
    assert_no_error(error);
    assert_true(info->fido2);
    assert_false(info->pin_set);
    assert_int_equal(info->pin_retries, 8);
    assert_true(kt_set_pin(key, PIN, &error));
    assert_no_error(error);
    assert_true(softkey_has_pin(sk));
    res = kt_make_credential(key, req, PIN, &error);
    assert_no_error(error);
    assert_non_null(res);
    assert_false(res->self_attested);
    g_ptr_array_add(dirs, kt_verify_prepare(root, "hidraw", res, CHALLENGE, TRUE));
    kt_verify_run(root, dirs);

    /* Pulled out: the hidraw node goes away; keydesk says so. */
    softkey_hidraw_unplug(hidraw);
    g_clear_pointer(&info, kd_key_info_free);
    info = kt_info(key, &error);
    assert_null(info);
    assert_true(g_error_matches(error, KD_KEY_ERROR, KD_KEY_ERROR_REMOVED));

    softkey_hidraw_free(hidraw);
    softkey_free(sk);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_full_stack),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
