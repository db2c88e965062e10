/* test-presence-hid: the HID report-descriptor parser kd-usb-watch decides "is FIDO" with. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "hw/kd-hid-descriptor.h"

/* What a YubiKey 5 and libfido2's regress tests present (testinfra §2b). */
static const guint8 fido[] = {0x06, 0xd0, 0xf1, 0x09, 0x01, 0xa1, 0x01, 0x09, 0x20,
                              0x15, 0x00, 0x26, 0xff, 0x00, 0x75, 0x08, 0x95, 0x40,
                              0x81, 0x02, 0x09, 0x21, 0x15, 0x00, 0x26, 0xff, 0x00,
                              0x75, 0x08, 0x95, 0x40, 0x91, 0x02, 0xc0};

/* Boot keyboard, HID 1.11 appendix E.6. */
static const guint8 keyboard[] = {
    0x05, 0x01, 0x09, 0x06, 0xa1, 0x01, 0x05, 0x07, 0x19, 0xe0, 0x29, 0xe7, 0x15, 0x00, 0x25, 0x01,
    0x75, 0x01, 0x95, 0x08, 0x81, 0x02, 0x95, 0x01, 0x75, 0x08, 0x81, 0x01, 0x95, 0x05, 0x75, 0x01,
    0x05, 0x08, 0x19, 0x01, 0x29, 0x05, 0x91, 0x02, 0x95, 0x01, 0x75, 0x03, 0x91, 0x01, 0x95, 0x06,
    0x75, 0x08, 0x15, 0x00, 0x25, 0x65, 0x05, 0x07, 0x19, 0x00, 0x29, 0x65, 0x81, 0x00, 0xc0};

static void
test_fido(void **state)
{
    KdHidInfo info;

    assert_true(kd_hid_descriptor_parse(fido, sizeof(fido), &info));
    assert_true(info.fido);
    assert_int_equal(info.in_report_len, 64);
    assert_int_equal(info.out_report_len, 64);
}

static void
test_keyboard(void **state)
{
    KdHidInfo info;

    assert_true(kd_hid_descriptor_parse(keyboard, sizeof(keyboard), &info));
    assert_false(info.fido);
    assert_int_equal(info.in_report_len, 0);
}

/* A composite device (an OTP keyboard and CTAPHID, as on several keys) in one descriptor. */
static void
test_second_collection(void **state)
{
    g_autoptr(GByteArray) both = g_byte_array_new();
    KdHidInfo info;

    g_byte_array_append(both, keyboard, sizeof(keyboard));
    g_byte_array_append(both, fido, sizeof(fido));
    assert_true(kd_hid_descriptor_parse(both->data, both->len, &info));
    assert_true(info.fido);
    assert_int_equal(info.in_report_len, 64);
    assert_int_equal(info.out_report_len, 64);
}

static void
test_usages(void **state)
{
    /* A 4-byte usage carries its page: FIDO although the global page is Generic Desktop. */
    const guint8 extended[] = {0x05, 0x01, 0x0b, 0x01, 0x00, 0xd0, 0xf1, 0xa1,
                               0x01, 0x75, 0x08, 0x95, 0x20, 0x81, 0x02, 0xc0};
    /* Page 0xF1D0 but usage 2: not the CTAPHID device. */
    const guint8 usage2[] = {0x06, 0xd0, 0xf1, 0x09, 0x02, 0xa1, 0x01, 0xc0};
    /* The FIDO usage on a nested collection only: not a top-level FIDO collection. */
    const guint8 nested[] = {0x05, 0x01, 0x09, 0x06, 0xa1, 0x01, 0x06, 0xd0,
                             0xf1, 0x09, 0x01, 0xa1, 0x02, 0xc0, 0xc0};
    /* Push / Pop restore the FIDO page; a long item is skipped. */
    const guint8 pushpop[] = {0x06, 0xd0, 0xf1, 0xa4, 0x05, 0x01, 0xb4, 0xfe,
                              0x02, 0x10, 0xaa, 0xbb, 0x09, 0x01, 0xa1, 0x01,
                              0x75, 0x08, 0x95, 0x40, 0x91, 0x02, 0xc0};
    KdHidInfo info;

    assert_true(kd_hid_descriptor_parse(extended, sizeof(extended), &info));
    assert_true(info.fido);
    assert_int_equal(info.in_report_len, 32);
    assert_int_equal(info.out_report_len, 0);
    assert_true(kd_hid_descriptor_parse(usage2, sizeof(usage2), &info));
    assert_false(info.fido);
    assert_true(kd_hid_descriptor_parse(nested, sizeof(nested), &info));
    assert_false(info.fido);
    assert_true(kd_hid_descriptor_parse(pushpop, sizeof(pushpop), &info));
    assert_true(info.fido);
    assert_int_equal(info.out_report_len, 64);
}

static void
test_malformed(void **state)
{
    const guint8 end_only[] = {0xc0};
    const guint8 pop_only[] = {0xb4};
    const guint8 long_cut[] = {0xfe, 0x08, 0x10, 0x00};
    guint8 deep[2 * 40];
    KdHidInfo info;

    /* Every cut of the FIDO descriptor: never FIDO; a cut inside a collection or an item is
     * malformed. */
    for (gsize n = 0; n < sizeof(fido); n++) {
        gboolean ok = kd_hid_descriptor_parse(fido, n, &info);
        assert_false(info.fido);
        if (n > 5)
            assert_false(ok);
    }
    assert_true(kd_hid_descriptor_parse(fido, 0, &info)); /* empty is merely not FIDO */
    assert_false(kd_hid_descriptor_parse(end_only, sizeof(end_only), &info));
    assert_false(kd_hid_descriptor_parse(pop_only, sizeof(pop_only), &info));
    assert_false(kd_hid_descriptor_parse(long_cut, sizeof(long_cut), &info));
    for (gsize i = 0; i < sizeof(deep); i += 2) {
        deep[i] = 0xa1;
        deep[i + 1] = 0x00;
    }
    assert_false(kd_hid_descriptor_parse(deep, sizeof(deep), &info));
    assert_false(info.fido);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fido),
        cmocka_unit_test(test_keyboard),
        cmocka_unit_test(test_second_collection),
        cmocka_unit_test(test_usages),
        cmocka_unit_test(test_malformed),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
