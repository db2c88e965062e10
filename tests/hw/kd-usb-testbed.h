/* kd-usb-testbed: fake USB security keys (and keyboards) in a umockdev testbed, complete enough
 * for kd-usb-watch: descriptors, sysfs attributes, a usbfs that answers string and HID report
 * descriptor requests, the hid child with its report_descriptor and the /dev/hidrawN node.
 * Run the program under umockdev-wrapper; create the testbed before libusb_init. */
#pragma once

#include <glib.h>
#include <umockdev.h>

G_BEGIN_DECLS

extern const guint8 kd_usb_testbed_fido_rdesc[]; /* usage page 0xF1D0, 64-byte reports */
extern const gsize kd_usb_testbed_fido_rdesc_len;
extern const guint8 kd_usb_testbed_keyboard_rdesc[]; /* a boot keyboard */
extern const gsize kd_usb_testbed_keyboard_rdesc_len;

typedef struct {
    guint16 vendor_id;
    guint16 product_id;
    const char *manufacturer; /* string descriptors 1, 2, 3; NULL: index 0 (none) */
    const char *product;
    const char *serial;
    const guint8 *rdesc; /* report descriptor; NULL: the FIDO one, or the keyboard's */
    gsize rdesc_len;
    gboolean keyboard;      /* a boot keyboard (kd_usb_testbed_keyboard_rdesc), not a key */
    gboolean composite;     /* interface 0 an OTP keyboard (with /dev/hidraw<port + 50>), the
                             * key on interface 1, as on a YubiKey */
    gboolean no_hid_child;  /* no hid driver bound: no sysfs report_descriptor, no hidraw */
    gboolean no_hidraw;     /* the hid child has no hidraw node (add it later) */
    gboolean no_node;       /* no /dev/bus/usb node: libusb_open fails */
    gboolean silent;        /* control transfers are accepted and never answered */
    gboolean rdesc_stall;   /* GET_DESCRIPTOR(report) of the key's interface stalls */
    gboolean sysfs_strings; /* also the kernel's cached manufacturer/product/serial attributes */
} KdUsbTestDevice;

typedef struct _KdUsbTestbed KdUsbTestbed;

KdUsbTestbed *kd_usb_testbed_new(void);
void kd_usb_testbed_free(KdUsbTestbed *tb); /* unrefs the UMockdevTestbed too */
UMockdevTestbed *kd_usb_testbed_get_testbed(KdUsbTestbed *tb);

/* Adds @dev on root port @port (1..99) of bus 1, without a uevent: sysfs "1-<port>",
 * /dev/bus/usb/001/<port + 1>, /dev/hidraw<port> (on a port used before: /dev/hidraw100 and
 * up, as umockdev cannot make a removed node's name again). Aborts the test on failure. */
void kd_usb_testbed_add(KdUsbTestbed *tb, guint port, const KdUsbTestDevice *dev);
/* The "add" uevent for the device on @port (what makes libusb report it). */
void kd_usb_testbed_plug(KdUsbTestbed *tb, guint port);
/* The "remove" uevent, then the device and its children leave sysfs and /dev. Its emulated
 * usbfs stays until the port is used again (or the testbed is freed), for a program that still
 * has it open; so close it before adding another device on the same port. */
void kd_usb_testbed_unplug(KdUsbTestbed *tb, guint port);
/* Adds the hidraw node a device added with no_hidraw did not have. */
void kd_usb_testbed_add_hidraw(KdUsbTestbed *tb, guint port);
/* How many control transfers the device on @port was sent. */
guint kd_usb_testbed_control_count(KdUsbTestbed *tb, guint port);
/* The sysfs path of the device on @port ("/sys/devices/…/usb1/1-<port>"). */
const char *kd_usb_testbed_syspath(KdUsbTestbed *tb, guint port);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(KdUsbTestbed, kd_usb_testbed_free)

G_END_DECLS
