/* test-usb-watch: kd-usb-watch against fake USB keys in a umockdev testbed (run under
 * umockdev-wrapper). libusb, its hotplug thread and its usbfs backend are the real ones. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "hw/kd-usb-watch.h"
#include "kd-usb-testbed.h"
#include "hw/kd-fido-ids.h"

#define WAIT_MS   3000 /* generous: ASan and valgrind runs are slow */
#define SETTLE_MS 150

typedef struct {
    KdUsbTestbed *tb;
    KdUsbWatch *watch;
    GPtrArray *added; /* KdKeyDevice *, in signal order */
    GPtrArray *removed;
} Fixture;

static const KdUsbTestDevice yubikey = {
    .vendor_id = 0x1050,
    .product_id = 0x0407,
    .manufacturer = "Yubico",
    .product = "YubiKey OTP+FIDO+CCID",
    .serial = "0012345678",
};

static const KdUsbTestDevice solokey = {
    .vendor_id = 0x0483,
    .product_id = 0xa2ca,
    .manufacturer = "SoloKeys",
    .product = "Solo 4.1.5",
    .serial = "2053379C4D50",
};

static const KdUsbTestDevice keyboard = {
    .vendor_id = 0x046d,
    .product_id = 0xc31c,
    .manufacturer = "Logitech",
    .product = "USB Keyboard",
    .keyboard = TRUE,
};

static void
on_added(KdUsbWatch *watch, KdKeyDevice *key, Fixture *f)
{
    g_ptr_array_add(f->added, kd_key_device_ref(key));
}

static void
on_removed(KdUsbWatch *watch, KdKeyDevice *key, Fixture *f)
{
    g_ptr_array_add(f->removed, kd_key_device_ref(key));
}

static int
setup(void **state)
{
    Fixture *f = g_new0(Fixture, 1);

    /* The testbed comes first: libusb must see umockdev's /sys from its first look. */
    f->tb = kd_usb_testbed_new();
    f->watch = kd_usb_watch_new();
    kd_usb_watch_set_settle_time(f->watch, SETTLE_MS);
    f->added = g_ptr_array_new_with_free_func((GDestroyNotify)kd_key_device_unref);
    f->removed = g_ptr_array_new_with_free_func((GDestroyNotify)kd_key_device_unref);
    g_signal_connect(f->watch, "key-added", G_CALLBACK(on_added), f);
    g_signal_connect(f->watch, "key-removed", G_CALLBACK(on_removed), f);
    *state = f;
    return 0;
}

static int
teardown(void **state)
{
    Fixture *f = *state;

    g_object_unref(f->watch);
    g_ptr_array_unref(f->added);
    g_ptr_array_unref(f->removed);
    kd_usb_testbed_free(f->tb);
    /* Whatever the watch left on the main context would run into freed memory next test. */
    while (g_main_context_iteration(NULL, FALSE))
        ;
    g_free(f);
    return 0;
}

static gboolean
timed_out_cb(gpointer data)
{
    *(gboolean *)data = TRUE;
    return G_SOURCE_REMOVE;
}

/* Runs the main loop until @array holds @n items; FALSE after @ms without. */
static gboolean
wait_len(GPtrArray *array, guint n, guint ms)
{
    gboolean timed_out = FALSE;
    guint id = g_timeout_add(ms, timed_out_cb, &timed_out);

    while (array->len < n && !timed_out)
        g_main_context_iteration(NULL, TRUE);
    if (!timed_out)
        g_source_remove(id);
    return array->len >= n;
}

/* Runs the main loop for @ms (to show that nothing happens). */
static void
spin(guint ms)
{
    gboolean timed_out = FALSE;

    g_timeout_add(ms, timed_out_cb, &timed_out);
    while (!timed_out)
        g_main_context_iteration(NULL, TRUE);
}

static void
start(Fixture *f)
{
    g_autoptr(GError) error = NULL;

    assert_true(kd_usb_watch_start(f->watch, &error));
    assert_null(error);
}

static KdKeyDevice *
added(Fixture *f, guint i)
{
    return g_ptr_array_index(f->added, i);
}

static void
test_arrival(void **state)
{
    Fixture *f = *state;
    g_autoptr(GPtrArray) list = NULL;
    KdKeyDevice *key;

    start(f);
    spin(20);
    assert_int_equal(f->added->len, 0);

    kd_usb_testbed_add(f->tb, 1, &yubikey);
    kd_usb_testbed_plug(f->tb, 1);
    assert_true(wait_len(f->added, 1, WAIT_MS));
    key = added(f, 0);
    assert_string_equal(key->id, "1-1");
    assert_int_equal(key->vendor_id, 0x1050);
    assert_int_equal(key->product_id, 0x0407);
    assert_int_equal(key->busnum, 1);
    assert_int_equal(key->devnum, 2);
    assert_int_equal(key->detection, KD_KEY_DETECTED_DESCRIPTOR);
    assert_string_equal(key->fido_path, "/dev/hidraw1");
    assert_string_equal(key->product, "YubiKey OTP+FIDO+CCID");
    assert_null(key->io);

    list = kd_usb_watch_list(f->watch);
    assert_int_equal(list->len, 1);
    assert_ptr_equal(g_ptr_array_index(list, 0), key);
    assert_int_equal(f->removed->len, 0);
}

static void
test_removal(void **state)
{
    Fixture *f = *state;
    g_autoptr(GPtrArray) list = NULL;

    start(f);
    kd_usb_testbed_add(f->tb, 1, &yubikey);
    kd_usb_testbed_plug(f->tb, 1);
    assert_true(wait_len(f->added, 1, WAIT_MS));

    kd_usb_testbed_unplug(f->tb, 1);
    assert_true(wait_len(f->removed, 1, WAIT_MS));
    /* The very object that was added, so a page can compare pointers. */
    assert_ptr_equal(g_ptr_array_index(f->removed, 0), added(f, 0));
    list = kd_usb_watch_list(f->watch);
    assert_int_equal(list->len, 0);
    spin(30);
    assert_int_equal(f->added->len, 1);
    assert_int_equal(f->removed->len, 1);
}

static void
test_present_at_start(void **state)
{
    Fixture *f = *state;

    kd_usb_testbed_add(f->tb, 3, &yubikey); /* no uevent: it was there before keydesk */
    start(f);
    /* Reported from the main loop, so handlers connected after start() still see it. */
    assert_int_equal(f->added->len, 0);
    assert_true(wait_len(f->added, 1, WAIT_MS));
    assert_string_equal(added(f, 0)->id, "1-3");
    assert_string_equal(added(f, 0)->fido_path, "/dev/hidraw3");
    spin(30);
    assert_int_equal(f->added->len, 1);
}

static void
test_two_keys(void **state)
{
    Fixture *f = *state;
    g_autoptr(GPtrArray) list = NULL;
    KdKeyDevice *yk, *solo;

    start(f);
    kd_usb_testbed_add(f->tb, 1, &yubikey);
    kd_usb_testbed_add(f->tb, 2, &solokey);
    kd_usb_testbed_plug(f->tb, 1);
    kd_usb_testbed_plug(f->tb, 2);
    assert_true(wait_len(f->added, 2, WAIT_MS));
    yk = added(f, 0)->vendor_id == 0x1050 ? added(f, 0) : added(f, 1);
    solo = added(f, 0)->vendor_id == 0x1050 ? added(f, 1) : added(f, 0);
    assert_string_equal(yk->id, "1-1");
    assert_string_equal(yk->fido_path, "/dev/hidraw1");
    assert_string_equal(yk->serial, "0012345678");
    assert_string_equal(solo->id, "1-2");
    assert_string_equal(solo->fido_path, "/dev/hidraw2");
    assert_string_equal(solo->serial, "2053379C4D50");
    assert_int_equal(solo->devnum, 3);

    kd_usb_testbed_unplug(f->tb, 1);
    assert_true(wait_len(f->removed, 1, WAIT_MS));
    assert_ptr_equal(g_ptr_array_index(f->removed, 0), yk);
    list = kd_usb_watch_list(f->watch);
    assert_int_equal(list->len, 1);
    assert_ptr_equal(g_ptr_array_index(list, 0), solo);
}

static void
test_keyboard_ignored(void **state)
{
    Fixture *f = *state;

    start(f);
    kd_usb_testbed_add(f->tb, 1, &keyboard);
    kd_usb_testbed_plug(f->tb, 1);
    kd_usb_testbed_add(f->tb, 2, &yubikey);
    kd_usb_testbed_plug(f->tb, 2); /* after the keyboard: its event is the barrier */
    assert_true(wait_len(f->added, 1, WAIT_MS));
    spin(SETTLE_MS + 50);
    assert_int_equal(f->added->len, 1);
    assert_int_equal(added(f, 0)->vendor_id, 0x1050);
    /* Decided from sysfs: the keyboard was never even opened. */
    assert_int_equal(kd_usb_testbed_control_count(f->tb, 1), 0);

    kd_usb_testbed_unplug(f->tb, 1);
    kd_usb_testbed_unplug(f->tb, 2);
    assert_true(wait_len(f->removed, 1, WAIT_MS));
    spin(30);
    assert_int_equal(f->removed->len, 1);
    assert_ptr_equal(g_ptr_array_index(f->removed, 0), added(f, 0));
}

static void
test_strings(void **state)
{
    Fixture *f = *state;
    KdUsbTestDevice bare = yubikey, unopenable = solokey;
    g_autofree char *described = NULL;

    bare.manufacturer = bare.product = bare.serial = NULL;
    bare.product_id = 0x0120;
    unopenable.no_node = TRUE;       /* no usbfs node: libusb_open fails */
    unopenable.sysfs_strings = TRUE; /* but the kernel's cached copies are readable */
    start(f);
    kd_usb_testbed_add(f->tb, 1, &yubikey);
    kd_usb_testbed_plug(f->tb, 1);
    assert_true(wait_len(f->added, 1, WAIT_MS));
    /* From the string descriptors over the (emulated) control pipe, not from sysfs: the
     * testbed has no sysfs copies for this device. */
    assert_string_equal(added(f, 0)->manufacturer, "Yubico");
    assert_string_equal(added(f, 0)->product, "YubiKey OTP+FIDO+CCID");
    assert_string_equal(added(f, 0)->serial, "0012345678");
    assert_true(kd_usb_testbed_control_count(f->tb, 1) >= 4); /* LANGID + 3 strings */
    described = kd_key_device_describe(added(f, 0));
    assert_string_equal(described, "Yubico YubiKey OTP+FIDO+CCID");

    kd_usb_testbed_add(f->tb, 2, &bare);
    kd_usb_testbed_plug(f->tb, 2);
    assert_true(wait_len(f->added, 2, WAIT_MS));
    assert_null(added(f, 1)->manufacturer);
    assert_null(added(f, 1)->product);
    assert_null(added(f, 1)->serial);
    g_free(described);
    described = kd_key_device_describe(added(f, 1));
    assert_string_equal(described, "Security key 1050:0120");

    kd_usb_testbed_add(f->tb, 3, &unopenable);
    kd_usb_testbed_plug(f->tb, 3);
    assert_true(wait_len(f->added, 3, WAIT_MS));
    assert_string_equal(added(f, 2)->manufacturer, "SoloKeys");
    assert_string_equal(added(f, 2)->serial, "2053379C4D50");
    assert_string_equal(added(f, 2)->fido_path, "/dev/hidraw3");
}

static gboolean
add_hidraw_cb(gpointer data)
{
    Fixture *f = data;

    kd_usb_testbed_add_hidraw(f->tb, 1);
    return G_SOURCE_REMOVE;
}

static void
test_fido_path(void **state)
{
    Fixture *f = *state;
    KdUsbTestDevice late = yubikey, never = solokey;

    late.no_hidraw = TRUE;
    never.no_hidraw = TRUE;
    kd_usb_watch_set_settle_time(f->watch, 1000);
    start(f);
    /* The hidraw node comes 40 ms after the USB device, as the kernel's would. */
    kd_usb_testbed_add(f->tb, 1, &late);
    kd_usb_testbed_plug(f->tb, 1);
    g_timeout_add(40, add_hidraw_cb, f);
    assert_true(wait_len(f->added, 1, WAIT_MS));
    assert_string_equal(added(f, 0)->fido_path, "/dev/hidraw1");

    /* A node that never comes: reported at the end of the settle time, without a path. */
    kd_usb_watch_set_settle_time(f->watch, 100);
    kd_usb_testbed_add(f->tb, 2, &never);
    kd_usb_testbed_plug(f->tb, 2);
    assert_true(wait_len(f->added, 2, WAIT_MS));
    assert_string_equal(added(f, 1)->id, "1-2");
    assert_null(added(f, 1)->fido_path);
    assert_int_equal(added(f, 1)->detection, KD_KEY_DETECTED_DESCRIPTOR);
}

/* No hid driver bound (no sysfs report_descriptor): the watch asks the device itself. */
static void
test_descriptor_from_device(void **state)
{
    Fixture *f = *state;
    KdUsbTestDevice key = yubikey, kbd = keyboard;

    key.no_hid_child = TRUE;
    kbd.no_hid_child = TRUE;
    start(f);
    kd_usb_testbed_add(f->tb, 1, &kbd);
    kd_usb_testbed_plug(f->tb, 1);
    kd_usb_testbed_add(f->tb, 2, &key);
    kd_usb_testbed_plug(f->tb, 2);
    assert_true(wait_len(f->added, 1, WAIT_MS));
    spin(100);
    assert_int_equal(f->added->len, 1);
    assert_string_equal(added(f, 0)->id, "1-2");
    assert_int_equal(added(f, 0)->detection, KD_KEY_DETECTED_DESCRIPTOR);
    assert_string_equal(added(f, 0)->product, "YubiKey OTP+FIDO+CCID");
    assert_null(added(f, 0)->fido_path);
    /* The keyboard was asked for its report descriptor only, never for strings. */
    assert_int_equal(kd_usb_testbed_control_count(f->tb, 1), 1);
}

/* A YubiKey-like composite device: an OTP keyboard on interface 0, CTAPHID on interface 1. */
static void
test_composite(void **state)
{
    Fixture *f = *state;
    KdUsbTestDevice key = yubikey, unbound = solokey;

    key.composite = TRUE;
    unbound.composite = TRUE;
    unbound.no_hid_child = TRUE;
    start(f);
    kd_usb_testbed_add(f->tb, 1, &key);
    kd_usb_testbed_plug(f->tb, 1);
    assert_true(wait_len(f->added, 1, WAIT_MS));
    /* The FIDO interface's node, not the keyboard's /dev/hidraw51. */
    assert_string_equal(added(f, 0)->fido_path, "/dev/hidraw1");
    assert_int_equal(added(f, 0)->detection, KD_KEY_DETECTED_DESCRIPTOR);
    assert_int_equal(kd_usb_testbed_control_count(f->tb, 1), 4); /* LANGID + 3 strings */

    /* Without sysfs: both interfaces asked; the keyboard's answer does not end the search. */
    kd_usb_testbed_add(f->tb, 2, &unbound);
    kd_usb_testbed_plug(f->tb, 2);
    assert_true(wait_len(f->added, 2, WAIT_MS));
    assert_string_equal(added(f, 1)->id, "1-2");
    assert_int_equal(added(f, 1)->detection, KD_KEY_DETECTED_DESCRIPTOR);
    assert_string_equal(added(f, 1)->serial, "2053379C4D50");
    assert_int_equal(kd_usb_testbed_control_count(f->tb, 2), 6);

    kd_usb_testbed_unplug(f->tb, 1);
    assert_true(wait_len(f->removed, 1, WAIT_MS));
    assert_ptr_equal(g_ptr_array_index(f->removed, 0), added(f, 0));
}

static void
test_vendor_list(void **state)
{
    Fixture *f = *state;
    KdUsbTestDevice key = yubikey, other = yubikey, composite = yubikey, closed = yubikey;

    /* Preconditions on the generated list: Yubico is on it, 1234:5678 is not. */
    assert_true(kd_fido_ids_lookup(0x1050, 0x0407, NULL));
    assert_false(kd_fido_ids_lookup(0x1234, 0x5678, NULL));
    key.no_hid_child = TRUE;
    key.rdesc_stall = TRUE; /* and the device will not give it either */
    other.vendor_id = 0x1234;
    other.product_id = 0x5678;
    other.no_hid_child = TRUE;
    other.rdesc_stall = TRUE;
    start(f);
    kd_usb_testbed_add(f->tb, 1, &other);
    kd_usb_testbed_plug(f->tb, 1);
    kd_usb_testbed_add(f->tb, 2, &key);
    kd_usb_testbed_plug(f->tb, 2);
    assert_true(wait_len(f->added, 1, WAIT_MS));
    spin(100);
    assert_int_equal(f->added->len, 1);
    assert_int_equal(added(f, 0)->vendor_id, 0x1050);
    assert_int_equal(added(f, 0)->detection, KD_KEY_DETECTED_VENDOR_LIST);
    assert_string_equal(added(f, 0)->serial, "0012345678");

    /* The OTP keyboard's descriptor is readable, the key's is not: still the list decides. */
    composite.composite = TRUE;
    composite.no_hid_child = TRUE;
    composite.rdesc_stall = TRUE;
    kd_usb_testbed_add(f->tb, 3, &composite);
    kd_usb_testbed_plug(f->tb, 3);
    assert_true(wait_len(f->added, 2, WAIT_MS));
    assert_string_equal(added(f, 1)->id, "1-3");
    assert_int_equal(added(f, 1)->detection, KD_KEY_DETECTED_VENDOR_LIST);

    /* Cannot be opened at all (no usbfs access): reported from the list, without strings. */
    closed.no_hid_child = TRUE;
    closed.no_node = TRUE;
    kd_usb_testbed_add(f->tb, 4, &closed);
    kd_usb_testbed_plug(f->tb, 4);
    assert_true(wait_len(f->added, 3, WAIT_MS));
    assert_string_equal(added(f, 2)->id, "1-4");
    assert_int_equal(added(f, 2)->detection, KD_KEY_DETECTED_VENDOR_LIST);
    assert_null(added(f, 2)->manufacturer);
    assert_null(added(f, 2)->product);
    assert_null(added(f, 2)->serial);
    assert_null(added(f, 2)->fido_path);
}

static gboolean
tick_cb(gpointer data)
{
    gint64 *ticks = data, now = g_get_monotonic_time();

    if (ticks[0] != 0)
        ticks[1] = MAX(ticks[1], now - ticks[0]);
    ticks[0] = now;
    return G_SOURCE_CONTINUE;
}

/* A key that accepts control transfers and never answers them. */
static void
test_silent_device(void **state)
{
    Fixture *f = *state;
    KdUsbTestDevice silent = yubikey;
    gint64 ticks[2] = {0, 0}, t0;
    guint tick;

    silent.silent = TRUE;
    start(f);
    tick = g_timeout_add(5, tick_cb, ticks);
    t0 = g_get_monotonic_time();
    kd_usb_testbed_add(f->tb, 1, &silent);
    kd_usb_testbed_plug(f->tb, 1);
    assert_true(wait_len(f->added, 1, WAIT_MS));
    g_source_remove(tick);
    /* Reported anyway, after one bounded timeout, without its strings. */
    assert_null(added(f, 0)->manufacturer);
    assert_null(added(f, 0)->serial);
    assert_string_equal(added(f, 0)->fido_path, "/dev/hidraw1");
    assert_true(g_get_monotonic_time() - t0 < 2 * G_USEC_PER_SEC);
    assert_int_equal(kd_usb_testbed_control_count(f->tb, 1), 1); /* gave up after LANGID */
    /* The main loop kept running meanwhile: a 5 ms timer never waited as long as one control
     * timeout (250 ms; a synchronous libusb string read would block for 1 s). */
    assert_true(ticks[1] < 200 * G_TIME_SPAN_MILLISECOND);
}

/* Unplugged while the watch waits for the device: neither signal. */
static void
test_unplug_while_pending(void **state)
{
    Fixture *f = *state;
    KdUsbTestDevice silent = yubikey, late = solokey;

    silent.silent = TRUE;
    late.no_hidraw = TRUE;
    kd_usb_watch_set_settle_time(f->watch, 2000);
    start(f);
    kd_usb_testbed_add(f->tb, 1, &silent);
    kd_usb_testbed_plug(f->tb, 1);
    kd_usb_testbed_add(f->tb, 2, &late);
    kd_usb_testbed_plug(f->tb, 2);
    spin(60); /* 1: LANGID in flight; 2: waiting for its hidraw node */
    kd_usb_testbed_unplug(f->tb, 1);
    kd_usb_testbed_unplug(f->tb, 2);
    spin(400);
    assert_int_equal(f->added->len, 0);
    assert_int_equal(f->removed->len, 0);
}

static void
test_virtual(void **state)
{
    Fixture *f = *state;
    KdKeyDevice *soft = kd_key_device_new();
    g_autoptr(GPtrArray) list = NULL;

    soft->id = g_strdup("virtual-1");
    soft->product = g_strdup("keydesk soft key");
    soft->detection = KD_KEY_DETECTED_VIRTUAL;

    /* Works without start() (demo mode on a machine without libusb hotplug). */
    kd_usb_watch_add_virtual(f->watch, soft);
    assert_int_equal(f->added->len, 1);
    assert_ptr_equal(added(f, 0), soft);
    kd_usb_watch_add_virtual(f->watch, soft); /* twice: still one key */
    assert_int_equal(f->added->len, 1);

    start(f);
    kd_usb_testbed_add(f->tb, 1, &yubikey);
    kd_usb_testbed_plug(f->tb, 1);
    assert_true(wait_len(f->added, 2, WAIT_MS));
    list = kd_usb_watch_list(f->watch);
    assert_int_equal(list->len, 2);
    assert_ptr_equal(g_ptr_array_index(list, 0), soft); /* arrival order */

    kd_usb_watch_remove_virtual(f->watch, soft);
    assert_int_equal(f->removed->len, 1);
    assert_ptr_equal(g_ptr_array_index(f->removed, 0), soft);
    kd_usb_watch_remove_virtual(f->watch, soft); /* not there any more: nothing */
    assert_int_equal(f->removed->len, 1);
    kd_key_device_unref(soft);

    /* A virtual key survives stop(); the USB one is reported gone. */
    soft = kd_key_device_new();
    soft->id = g_strdup("virtual-2");
    kd_usb_watch_add_virtual(f->watch, soft);
    kd_usb_watch_stop(f->watch);
    assert_int_equal(f->removed->len, 2);
    assert_int_equal(((KdKeyDevice *)g_ptr_array_index(f->removed, 1))->vendor_id, 0x1050);
    g_ptr_array_unref(list);
    list = kd_usb_watch_list(f->watch);
    assert_int_equal(list->len, 1);
    assert_ptr_equal(g_ptr_array_index(list, 0), soft);
    kd_key_device_unref(soft);
}

static void
test_stop_start(void **state)
{
    Fixture *f = *state;
    KdUsbTestDevice silent = solokey;
    g_autoptr(GPtrArray) list = NULL;

    silent.silent = TRUE;
    kd_usb_testbed_add(f->tb, 1, &yubikey);
    start(f);
    assert_true(wait_len(f->added, 1, WAIT_MS));
    kd_usb_watch_stop(f->watch);
    assert_int_equal(f->removed->len, 1);
    assert_ptr_equal(g_ptr_array_index(f->removed, 0), added(f, 0));
    kd_usb_watch_stop(f->watch); /* twice is harmless */

    /* Restarted: the key still plugged in is an arrival again (a new object). */
    start(f);
    assert_true(wait_len(f->added, 2, WAIT_MS));
    assert_string_equal(added(f, 1)->id, "1-1");
    assert_ptr_not_equal(added(f, 1), added(f, 0));
    list = kd_usb_watch_list(f->watch);
    assert_int_equal(list->len, 1);

    /* Stopped while a control transfer is in flight: cancelled and freed, nothing emitted. */
    kd_usb_testbed_add(f->tb, 2, &silent);
    kd_usb_testbed_plug(f->tb, 2);
    spin(40);
    assert_int_equal(kd_usb_testbed_control_count(f->tb, 2), 1);
    kd_usb_watch_stop(f->watch);
    assert_int_equal(f->added->len, 2);
    assert_int_equal(f->removed->len, 2);
    spin(20);

    /* And once more, hotplug still works after a restart. */
    start(f);
    assert_true(wait_len(f->added, 3, WAIT_MS)); /* 1-1 again (1-2 is silent: later) */
    kd_usb_testbed_add(f->tb, 3, &yubikey);
    kd_usb_testbed_plug(f->tb, 3);
    assert_true(wait_len(f->added, 5, WAIT_MS));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_arrival, setup, teardown),
        cmocka_unit_test_setup_teardown(test_removal, setup, teardown),
        cmocka_unit_test_setup_teardown(test_present_at_start, setup, teardown),
        cmocka_unit_test_setup_teardown(test_two_keys, setup, teardown),
        cmocka_unit_test_setup_teardown(test_keyboard_ignored, setup, teardown),
        cmocka_unit_test_setup_teardown(test_strings, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fido_path, setup, teardown),
        cmocka_unit_test_setup_teardown(test_descriptor_from_device, setup, teardown),
        cmocka_unit_test_setup_teardown(test_composite, setup, teardown),
        cmocka_unit_test_setup_teardown(test_vendor_list, setup, teardown),
        cmocka_unit_test_setup_teardown(test_silent_device, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unplug_while_pending, setup, teardown),
        cmocka_unit_test_setup_teardown(test_virtual, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stop_start, setup, teardown),
    };

    if (g_getenv("KD_TEST_FILTER") != NULL) /* e.g. KD_TEST_FILTER=test_strings */
        cmocka_set_test_filter(g_getenv("KD_TEST_FILTER"));
    return cmocka_run_group_tests(tests, NULL, NULL);
}
