/* kd-usb-testbed: see kd-usb-testbed.h. The usbfs emulation follows testinfra §1c: libusb sends
 * control transfers as asynchronous URBs (SUBMITURB, then REAPURBNDELAY once the fd polls
 * writable), so the handler answers at submit time and hands the URB back at the next reap. */
#include "kd-usb-testbed.h"

#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <sys/ioctl.h> /* before linux/usbdevice_fs.h, or the USBDEVFS_* case labels fail */
#include <linux/usbdevice_fs.h>

#include <glib/gstdio.h>

#define USB_ROOT "/devices/pci0000:00/0000:00:14.0/usb1"

const guint8 kd_usb_testbed_fido_rdesc[] = {
    0x06, 0xd0, 0xf1, /* Usage Page (FIDO Alliance) */
    0x09, 0x01,       /* Usage (U2F Authenticator Device) */
    0xa1, 0x01,       /* Collection (Application) */
    0x09, 0x20,       /*   Usage (Input Report Data) */
    0x15, 0x00,       /*   Logical Minimum (0) */
    0x26, 0xff, 0x00, /*   Logical Maximum (255) */
    0x75, 0x08,       /*   Report Size (8) */
    0x95, 0x40,       /*   Report Count (64) */
    0x81, 0x02,       /*   Input (Data, Var, Abs) */
    0x09, 0x21,       /*   Usage (Output Report Data) */
    0x15, 0x00,       /*   Logical Minimum (0) */
    0x26, 0xff, 0x00, /*   Logical Maximum (255) */
    0x75, 0x08,       /*   Report Size (8) */
    0x95, 0x40,       /*   Report Count (64) */
    0x91, 0x02,       /*   Output (Data, Var, Abs) */
    0xc0,             /* End Collection */
};
const gsize kd_usb_testbed_fido_rdesc_len = sizeof(kd_usb_testbed_fido_rdesc);

/* The boot keyboard from HID 1.11 appendix E.6. */
const guint8 kd_usb_testbed_keyboard_rdesc[] = {
    0x05, 0x01, 0x09, 0x06, 0xa1, 0x01, 0x05, 0x07, 0x19, 0xe0, 0x29, 0xe7, 0x15, 0x00, 0x25, 0x01,
    0x75, 0x01, 0x95, 0x08, 0x81, 0x02, 0x95, 0x01, 0x75, 0x08, 0x81, 0x01, 0x95, 0x05, 0x75, 0x01,
    0x05, 0x08, 0x19, 0x01, 0x29, 0x05, 0x91, 0x02, 0x95, 0x01, 0x75, 0x03, 0x91, 0x01, 0x95, 0x06,
    0x75, 0x08, 0x15, 0x00, 0x25, 0x65, 0x05, 0x07, 0x19, 0x00, 0x29, 0x65, 0x81, 0x00, 0xc0,
};
const gsize kd_usb_testbed_keyboard_rdesc_len = sizeof(kd_usb_testbed_keyboard_rdesc);

/* One fake device. The ioctl handler runs on umockdev's worker thread: everything it touches
 * after kd_usb_testbed_add() is either immutable or under the lock. */
typedef struct {
    guint port;
    char *syspath;
    char *hid_path;
    char *devnode;
    char *strings[3];
    GBytes *rdesc;
    gboolean silent;
    gboolean rdesc_stall;
    gboolean unplugged;
    gboolean has_hidraw;
    gboolean composite;
    char *kbd_hid_path; /* the composite key's keyboard interface */
    guint hidraw;       /* N of /dev/hidrawN */
    UMockdevIoctlBase *handler;
    GMutex lock;
    GQueue done;  /* UMockdevIoctlData * of answered URBs, waiting to be reaped */
    GQueue stuck; /* URBs a silent device never answers (until discarded) */
    guint controls;
} TestDev;

struct _KdUsbTestbed {
    UMockdevTestbed *testbed;
    guint next_hidraw;    /* for ports used a second time */
    GHashTable *devices;  /* port → TestDev * */
    GPtrArray *unplugged; /* TestDev *: their handlers stay attached until the end */
};

static void
test_dev_free(gpointer data)
{
    TestDev *d = data;

    g_free(d->syspath);
    g_free(d->hid_path);
    g_free(d->kbd_hid_path);
    g_free(d->devnode);
    for (guint i = 0; i < G_N_ELEMENTS(d->strings); i++)
        g_free(d->strings[i]);
    g_bytes_unref(d->rdesc);
    g_queue_clear_full(&d->done, g_object_unref);
    g_queue_clear_full(&d->stuck, g_object_unref);
    g_clear_object(&d->handler);
    g_mutex_clear(&d->lock);
    g_free(d);
}

KdUsbTestbed *
kd_usb_testbed_new(void)
{
    KdUsbTestbed *tb = g_new0(KdUsbTestbed, 1);

    tb->testbed = umockdev_testbed_new();
    tb->next_hidraw = 100;
    tb->devices = g_hash_table_new_full(g_direct_hash, g_direct_equal, NULL, test_dev_free);
    tb->unplugged = g_ptr_array_new_with_free_func(test_dev_free);
    return tb;
}

void
kd_usb_testbed_free(KdUsbTestbed *tb)
{
    if (tb == NULL)
        return;
    /* Detach the handlers first: their worker thread must not run into freed devices. */
    GHashTableIter it;
    gpointer value;
    g_hash_table_iter_init(&it, tb->devices);
    while (g_hash_table_iter_next(&it, NULL, &value)) {
        TestDev *d = value;
        if (d->handler != NULL)
            umockdev_testbed_detach_ioctl(tb->testbed, d->devnode, NULL);
    }
    for (guint i = 0; i < tb->unplugged->len; i++) {
        TestDev *d = g_ptr_array_index(tb->unplugged, i);
        if (d->handler != NULL)
            umockdev_testbed_detach_ioctl(tb->testbed, d->devnode, NULL);
    }
    g_object_unref(tb->testbed);
    g_hash_table_unref(tb->devices);
    g_ptr_array_unref(tb->unplugged);
    g_free(tb);
}

UMockdevTestbed *
kd_usb_testbed_get_testbed(KdUsbTestbed *tb)
{
    return tb->testbed;
}

static TestDev *
lookup(KdUsbTestbed *tb, guint port)
{
    TestDev *d = g_hash_table_lookup(tb->devices, GUINT_TO_POINTER(port));

    g_assert_nonnull(d);
    return d;
}

/* Builds a string descriptor (UTF-16LE) into @out; returns its length. */
static int
string_descriptor(const char *s, guint8 *out, gsize max)
{
    glong n = 0;
    g_autofree gunichar2 *u = g_utf8_to_utf16(s, -1, NULL, &n, NULL);
    gsize len = MIN(2 + 2 * (gsize)n, MIN(max, 254));

    if (len < 2)
        return (int)len;
    out[0] = (guint8)MIN(2 + 2 * (gsize)n, 254);
    out[1] = 3;
    for (gsize k = 2; k + 1 < len; k += 2) {
        out[k] = (guint8)(u[(k - 2) / 2] & 0xff);
        out[k + 1] = (guint8)(u[(k - 2) / 2] >> 8);
    }
    return (int)len;
}

/* Answers one control request: the data stage length, or -1 for a stall. */
static int
answer_control(TestDev *d, const guint8 *setup, guint8 *out, gsize max)
{
    guint8 type = setup[0], request = setup[1], dindex = setup[2], dtype = setup[3];

    if (type == 0x80 && request == 6 && dtype == 3) {
        if (dindex == 0) {
            const guint8 langids[] = {4, 3, 0x09, 0x04}; /* en-US */
            gsize n = MIN(sizeof(langids), max);
            memcpy(out, langids, n);
            return (int)n;
        }
        if (dindex >= 1 && dindex <= 3 && d->strings[dindex - 1] != NULL)
            return string_descriptor(d->strings[dindex - 1], out, max);
        return -1;
    }
    if (type == 0x81 && request == 6 && dtype == 0x22) {
        gboolean kbd = d->composite && setup[4] == 0; /* wIndex: the interface */

        if (!kbd && d->rdesc_stall)
            return -1;
        gsize n = MIN(kbd ? kd_usb_testbed_keyboard_rdesc_len : g_bytes_get_size(d->rdesc), max);
        memcpy(out, kbd ? kd_usb_testbed_keyboard_rdesc : g_bytes_get_data(d->rdesc, NULL), n);
        return (int)n;
    }
    return -1;
}

static gboolean
handle_ioctl(UMockdevIoctlBase *base, UMockdevIoctlClient *client, gpointer user_data)
{
    TestDev *d = user_data;
    gulong request = umockdev_ioctl_client_get_request(client);
    UMockdevIoctlData *arg = umockdev_ioctl_client_get_arg(client);
    g_autoptr(GError) error = NULL;

    switch (request) {
    case USBDEVFS_SUBMITURB: {
        g_autoptr(UMockdevIoctlData) data =
            umockdev_ioctl_data_resolve(arg, 0, _IOC_SIZE(request), &error);
        g_autoptr(UMockdevIoctlData) buf = NULL;
        struct usbdevfs_urb *urb;
        int n;

        if (data == NULL) {
            umockdev_ioctl_client_complete(client, -1, EFAULT);
            return TRUE;
        }
        urb = (struct usbdevfs_urb *)data->data;
        if (urb->type != USBDEVFS_URB_TYPE_CONTROL || urb->buffer_length < 8) {
            umockdev_ioctl_client_complete(client, -1, EINVAL);
            return TRUE;
        }
        buf = umockdev_ioctl_data_resolve(data, offsetof(struct usbdevfs_urb, buffer),
                                          (gsize)urb->buffer_length, &error);
        if (buf == NULL) {
            umockdev_ioctl_client_complete(client, -1, EFAULT);
            return TRUE;
        }
        g_mutex_lock(&d->lock);
        if (d->unplugged) {
            g_mutex_unlock(&d->lock);
            umockdev_ioctl_client_complete(client, -1, ENODEV);
            return TRUE;
        }
        d->controls++;
        if (d->silent) {
            urb->status = 0;
            urb->actual_length = 0;
            g_queue_push_tail(&d->stuck, g_object_ref(data));
        } else {
            guint16 wlength = (guint16)(buf->data[6] | buf->data[7] << 8);
            n = answer_control(d, buf->data, buf->data + 8,
                               MIN((gsize)wlength, (gsize)urb->buffer_length - 8));
            urb->status = n < 0 ? -EPIPE : 0;
            urb->actual_length = n < 0 ? 0 : n;
            g_queue_push_tail(&d->done, g_object_ref(data));
        }
        g_mutex_unlock(&d->lock);
        umockdev_ioctl_client_complete(client, 0, 0);
        return TRUE;
    }
    case USBDEVFS_DISCARDURB: {
        /* One transfer at a time in these tests: the oldest stuck URB is the one. libusb
         * treats a cancelled URB as cancelled whatever its status says. */
        UMockdevIoctlData *u;

        g_mutex_lock(&d->lock);
        u = g_queue_pop_head(&d->stuck);
        if (u != NULL)
            g_queue_push_tail(&d->done, u);
        g_mutex_unlock(&d->lock);
        umockdev_ioctl_client_complete(client, u != NULL ? 0 : -1, u != NULL ? 0 : EINVAL);
        return TRUE;
    }
    case USBDEVFS_REAPURBNDELAY:
    case USBDEVFS_REAPURB: {
        g_autoptr(UMockdevIoctlData) u = NULL, out = NULL;

        g_mutex_lock(&d->lock);
        u = g_queue_pop_head(&d->done);
        g_mutex_unlock(&d->lock);
        if (u == NULL) {
            umockdev_ioctl_client_complete(client, -1, EAGAIN);
            return TRUE;
        }
        /* *(struct usbdevfs_urb **)arg = that URB */
        out = umockdev_ioctl_data_resolve(arg, 0, _IOC_SIZE(request), &error);
        if (out == NULL || !umockdev_ioctl_data_set_ptr(out, 0, u)) {
            umockdev_ioctl_client_complete(client, -1, EFAULT);
            return TRUE;
        }
        umockdev_ioctl_client_complete(client, 0, 0);
        return TRUE;
    }
    default:
        umockdev_ioctl_client_complete(client, -1, ENOTTY);
        return TRUE;
    }
}

static void G_GNUC_PRINTF(2, 3) remove_root_file(KdUsbTestbed *tb, const char *format, ...);

static void
add_record(KdUsbTestbed *tb, const char *record)
{
    g_autoptr(GError) error = NULL;

    if (!umockdev_testbed_add_from_string(tb->testbed, record, &error))
        g_error("umockdev: %s\n%s", error->message, record);
}

static char *
hex(const guint8 *data, gsize len)
{
    GString *s = g_string_sized_new(len * 2);

    for (gsize i = 0; i < len; i++)
        g_string_append_printf(s, "%02x", data[i]);
    return g_string_free(s, FALSE);
}

static char *
hidraw_record(const char *hid_path, guint n)
{
    return g_strdup_printf("P: %s/hidraw/hidraw%u\n"
                           "N: hidraw%u\n"
                           "E: DEVNAME=/dev/hidraw%u\n"
                           "E: SUBSYSTEM=hidraw\n"
                           "E: MAJOR=243\n"
                           "E: MINOR=%u\n"
                           "A: dev=243:%u\n",
                           hid_path, n, n, n, n, n);
}

/* HID interface @number of the device on @port with @rdesc, and (unless no_hid_child) its hid
 * child "0003:VVVV:PPPP.NNNN" at @hid_path. */
static void
add_hid_interface(KdUsbTestbed *tb, const KdUsbTestDevice *dev, guint port, guint number,
                  const char *hid_path, const guint8 *rdesc, gsize rdesc_len)
{
    g_autofree char *record = NULL, *child = NULL, *rdesc_hex = NULL;

    record = g_strdup_printf("P: " USB_ROOT "/1-%u/1-%u:1.%u\n"
                             "E: DEVTYPE=usb_interface\n"
                             "E: DRIVER=usbhid\n"
                             "E: INTERFACE=3/0/0\n"
                             "E: SUBSYSTEM=usb\n"
                             "A: bInterfaceClass=03\n"
                             "A: bInterfaceSubClass=00\n"
                             "A: bInterfaceProtocol=00\n"
                             "A: bInterfaceNumber=%02u\n"
                             "A: bAlternateSetting= 0\n"
                             "A: bNumEndpoints=02\n",
                             port, port, number, number);
    add_record(tb, record);
    if (dev->no_hid_child)
        return;
    rdesc_hex = hex(rdesc, rdesc_len);
    child = g_strdup_printf("P: %s\n"
                            "E: DRIVER=hid-generic\n"
                            "E: HID_ID=0003:%08X:%08X\n"
                            "E: SUBSYSTEM=hid\n"
                            "H: report_descriptor=%s\n",
                            hid_path, dev->vendor_id, dev->product_id, rdesc_hex);
    add_record(tb, child);
}

/* Appends an interface descriptor, its HID class descriptor and endpoints @in / @out (0: none). */
static void
append_hid_interface(GByteArray *a, guint8 number, gsize rdesc_len, guint8 in, guint8 out)
{
    const guint8 intf[] = {0x09, 0x04, number, 0x00, out != 0 ? 2 : 1, 0x03, 0x00, 0x00, 0x00};
    const guint8 hid[] = {
        0x09, 0x21, 0x11, 0x01, 0x00, 0x01, 0x22, rdesc_len & 0xff, (rdesc_len >> 8) & 0xff};
    /* interrupt, 64 bytes, every 5 ms */
    const guint8 ep_in[] = {0x07, 0x05, in, 0x03, 0x40, 0x00, 0x05};
    const guint8 ep_out[] = {0x07, 0x05, out, 0x03, 0x40, 0x00, 0x05};

    g_byte_array_append(a, intf, sizeof(intf));
    g_byte_array_append(a, hid, sizeof(hid));
    if (out != 0)
        g_byte_array_append(a, ep_out, sizeof(ep_out));
    g_byte_array_append(a, ep_in, sizeof(ep_in));
}

void
kd_usb_testbed_add(KdUsbTestbed *tb, guint port, const KdUsbTestDevice *dev)
{
    TestDev *d = g_new0(TestDev, 1);
    const guint8 *rdesc = dev->keyboard ? kd_usb_testbed_keyboard_rdesc : kd_usb_testbed_fido_rdesc;
    gsize rdesc_len =
        dev->keyboard ? kd_usb_testbed_keyboard_rdesc_len : kd_usb_testbed_fido_rdesc_len;
    guint devnum = port + 1;
    const char *strings[3] = {dev->manufacturer, dev->product, dev->serial};
    static const char *const attrs[3] = {"manufacturer", "product", "serial"};
    g_autofree char *desc_hex = NULL, *rdesc_hex = NULL, *record = NULL, *node = NULL;
    g_autoptr(GString) sysfs_strings = g_string_new(NULL);

    if (dev->rdesc != NULL) {
        rdesc = dev->rdesc;
        rdesc_len = dev->rdesc_len;
    }
    g_assert_cmpuint(port, >=, 1);
    g_assert_cmpuint(port, <=, 99);
    g_assert_false(g_hash_table_contains(tb->devices, GUINT_TO_POINTER(port)));
    /* A device unplugged from this port before: its usbfs node can go now. */
    d->hidraw = port;
    for (guint i = 0; i < tb->unplugged->len; i++) {
        TestDev *old = g_ptr_array_index(tb->unplugged, i);
        if (old->port == port) {
            /* umockdev keeps a removed node's pty: the name cannot be made again. */
            d->hidraw = tb->next_hidraw++;
            if (old->handler != NULL)
                umockdev_testbed_detach_ioctl(tb->testbed, old->devnode, NULL);
            remove_root_file(tb, "dev/bus/usb/001/%03u", port + 1);
            g_ptr_array_remove_index_fast(tb->unplugged, i);
            break;
        }
    }
    d->port = port;
    d->syspath = g_strdup_printf("/sys" USB_ROOT "/1-%u", port);
    d->composite = dev->composite;
    d->hid_path = g_strdup_printf(USB_ROOT "/1-%u/1-%u:1.%u/0003:%04X:%04X.%04X", port, port,
                                  dev->composite ? 1 : 0, dev->vendor_id, dev->product_id, port);
    d->kbd_hid_path = g_strdup_printf(USB_ROOT "/1-%u/1-%u:1.0/0003:%04X:%04X.%04X", port, port,
                                      dev->vendor_id, dev->product_id, port + 200);
    d->devnode = g_strdup_printf("/dev/bus/usb/001/%03u", devnum);
    for (guint i = 0; i < 3; i++) {
        d->strings[i] = g_strdup(strings[i]);
        if (dev->sysfs_strings && strings[i] != NULL)
            g_string_append_printf(sysfs_strings, "A: %s=%s\n", attrs[i], strings[i]);
    }
    d->rdesc = g_bytes_new(rdesc, rdesc_len);
    d->silent = dev->silent;
    d->rdesc_stall = dev->rdesc_stall;
    g_mutex_init(&d->lock);
    g_queue_init(&d->done);
    g_queue_init(&d->stuck);
    g_hash_table_insert(tb->devices, GUINT_TO_POINTER(port), d);

    /* Device (18), configuration (9), then per HID interface: interface (9), HID class (9),
     * interrupt endpoints (7 each); as a full-speed key presents them. A composite key has its
     * OTP keyboard first, as a YubiKey does. */
    const guint8 device[] = {0x12,
                             0x01,
                             0x00,
                             0x02,
                             0x00,
                             0x00,
                             0x00,
                             0x40,
                             dev->vendor_id & 0xff,
                             dev->vendor_id >> 8,
                             dev->product_id & 0xff,
                             dev->product_id >> 8,
                             0x26,
                             0x05,
                             dev->manufacturer != NULL ? 1 : 0,
                             dev->product != NULL ? 2 : 0,
                             dev->serial != NULL ? 3 : 0,
                             0x01};
    const guint8 config[] = {0x09, 0x02, 0x00, 0x00, dev->composite ? 2 : 1,
                             0x01, 0x00, 0x80, 0x0f};
    g_autoptr(GByteArray) descriptors = g_byte_array_new();
    gsize total;

    g_byte_array_append(descriptors, device, sizeof(device));
    g_byte_array_append(descriptors, config, sizeof(config));
    if (dev->composite) {
        append_hid_interface(descriptors, 0, kd_usb_testbed_keyboard_rdesc_len, 0x81, 0);
        append_hid_interface(descriptors, 1, rdesc_len, 0x82, 0x02);
    } else {
        append_hid_interface(descriptors, 0, rdesc_len, 0x84, 0x04);
    }
    total = descriptors->len - sizeof(device);
    descriptors->data[sizeof(device) + 2] = total & 0xff;
    descriptors->data[sizeof(device) + 3] = (total >> 8) & 0xff;
    desc_hex = hex(descriptors->data, descriptors->len);
    node = dev->no_node ? g_strdup("") : g_strdup_printf("N: bus/usb/001/%03u\n", devnum);

    record = g_strdup_printf("P: " USB_ROOT "/1-%u\n"
                             "%s"
                             "E: DEVNAME=%s\n"
                             "E: DEVTYPE=usb_device\n"
                             "E: DRIVER=usb\n"
                             "E: PRODUCT=%x/%x/526\n"
                             "E: TYPE=0/0/0\n"
                             "E: BUSNUM=001\n"
                             "E: DEVNUM=%03u\n"
                             "E: MAJOR=189\n"
                             "E: MINOR=%u\n"
                             "E: SUBSYSTEM=usb\n"
                             "A: busnum=1\n"
                             "A: devnum=%u\n"
                             "A: idVendor=%04x\n"
                             "A: idProduct=%04x\n"
                             "A: bcdDevice=0526\n"
                             "A: bConfigurationValue=1\n"
                             "A: bNumConfigurations=1\n"
                             "A: bNumInterfaces= %u\n"
                             "A: speed=12\n"
                             "A: version= 2.00\n"
                             "A: dev=189:%u\n"
                             "%s"
                             "H: descriptors=%s\n",
                             port, node, d->devnode, dev->vendor_id, dev->product_id, devnum,
                             devnum - 1, devnum, dev->vendor_id, dev->product_id,
                             dev->composite ? 2 : 1, devnum - 1, sysfs_strings->str, desc_hex);
    add_record(tb, record);
    g_clear_pointer(&record, g_free);

    if (dev->composite) {
        add_hid_interface(tb, dev, port, 0, d->kbd_hid_path, kd_usb_testbed_keyboard_rdesc,
                          kd_usb_testbed_keyboard_rdesc_len);
        if (!dev->no_hid_child) {
            g_autofree char *kbd_hidraw = hidraw_record(d->kbd_hid_path, d->hidraw + 50);
            add_record(tb, kbd_hidraw);
        }
    }
    add_hid_interface(tb, dev, port, dev->composite ? 1 : 0, d->hid_path, rdesc, rdesc_len);
    if (!dev->no_hid_child && !dev->no_hidraw)
        kd_usb_testbed_add_hidraw(tb, port);

    if (!dev->no_node) {
        g_autoptr(GError) error = NULL;

        d->handler = umockdev_ioctl_base_new();
        g_signal_connect(d->handler, "handle-ioctl", G_CALLBACK(handle_ioctl), d);
        if (!umockdev_testbed_attach_ioctl(tb->testbed, d->devnode, d->handler, &error))
            g_error("umockdev_testbed_attach_ioctl(%s): %s", d->devnode, error->message);
    }
}

void
kd_usb_testbed_add_hidraw(KdUsbTestbed *tb, guint port)
{
    TestDev *d = lookup(tb, port);
    g_autofree char *record = hidraw_record(d->hid_path, d->hidraw);

    add_record(tb, record);
    d->has_hidraw = TRUE;
}

void
kd_usb_testbed_plug(KdUsbTestbed *tb, guint port)
{
    umockdev_testbed_uevent(tb->testbed, lookup(tb, port)->syspath, "add");
}

static void G_GNUC_PRINTF(2, 3) remove_root_file(KdUsbTestbed *tb, const char *format, ...)
{
    g_autofree char *root = umockdev_testbed_get_root_dir(tb->testbed);
    g_autofree char *name = NULL, *path = NULL;
    va_list ap;

    va_start(ap, format);
    name = g_strdup_vprintf(format, ap);
    va_end(ap);
    path = g_build_filename(root, name, NULL);
    g_unlink(path);
}

/* umockdev_testbed_remove_device() leaves the bus/class links of the children behind, so the
 * same names could not be added again: drop every link that points nowhere now. */
static void
remove_dangling_links(KdUsbTestbed *tb)
{
    static const char *const dirs[] = {"bus/usb/devices", "bus/hid/devices", "class/hidraw"};
    g_autofree char *sys = umockdev_testbed_get_sys_dir(tb->testbed);

    for (guint i = 0; i < G_N_ELEMENTS(dirs); i++) {
        g_autofree char *dir = g_build_filename(sys, dirs[i], NULL);
        g_autoptr(GDir) d = g_dir_open(dir, 0, NULL);
        const char *name;

        while (d != NULL && (name = g_dir_read_name(d)) != NULL) {
            g_autofree char *link = g_build_filename(dir, name, NULL);
            if (g_file_test(link, G_FILE_TEST_IS_SYMLINK) && !g_file_test(link, G_FILE_TEST_EXISTS))
                g_unlink(link);
        }
    }
}

void
kd_usb_testbed_unplug(KdUsbTestbed *tb, guint port)
{
    TestDev *d = lookup(tb, port);

    /* As the kernel does on disconnect: URBs still pending come back (-ENODEV), new ones
     * fail. The handler stays attached for an open file that is reaping them. */
    g_mutex_lock(&d->lock);
    d->unplugged = TRUE;
    while (!g_queue_is_empty(&d->stuck)) {
        UMockdevIoctlData *u = g_queue_pop_head(&d->stuck);
        g_queue_push_tail(&d->done, u);
    }
    g_mutex_unlock(&d->lock);
    g_hash_table_steal(tb->devices, GUINT_TO_POINTER(port));
    g_ptr_array_add(tb->unplugged, d);
    /* The uevent first, while the device still exists (testinfra §1b). */
    umockdev_testbed_uevent(tb->testbed, d->syspath, "remove");
    /* Children first: umockdev forgets a node's pty only when its own device is removed. */
    if (d->has_hidraw) {
        g_autofree char *hidraw = g_strdup_printf("/sys%s/hidraw/hidraw%u", d->hid_path, d->hidraw);
        umockdev_testbed_remove_device(tb->testbed, hidraw);
    }
    if (d->composite) {
        g_autofree char *kbd =
            g_strdup_printf("%s/hidraw/hidraw%u", d->kbd_hid_path, d->hidraw + 50);
        g_autofree char *sys = umockdev_testbed_get_sys_dir(tb->testbed);
        g_autofree char *real = g_build_filename(sys, kbd, NULL);
        g_autofree char *syspath = g_strconcat("/sys", kbd, NULL);

        if (g_file_test(real, G_FILE_TEST_IS_DIR))
            umockdev_testbed_remove_device(tb->testbed, syspath);
    }
    umockdev_testbed_remove_device(tb->testbed, d->syspath);
    remove_dangling_links(tb);
    /* …and the device nodes with their major:minor notes (except the usbfs node, whose
     * emulation stays until the port is reused). */
    remove_root_file(tb, "dev/.node/bus_usb_001_%03u", d->port + 1);
    remove_root_file(tb, "dev/.node/hidraw%u", d->hidraw);
    remove_root_file(tb, "dev/hidraw%u", d->hidraw);
}

guint
kd_usb_testbed_control_count(KdUsbTestbed *tb, guint port)
{
    TestDev *d = lookup(tb, port);
    guint n;

    g_mutex_lock(&d->lock);
    n = d->controls;
    g_mutex_unlock(&d->lock);
    return n;
}

const char *
kd_usb_testbed_syspath(KdUsbTestbed *tb, guint port)
{
    return lookup(tb, port)->syspath;
}
