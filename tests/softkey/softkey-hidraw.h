/* softkey-hidraw: a SoftKey behind an emulated USB FIDO key in a umockdev testbed, so that
 * libfido2's own enumeration (fido_dev_info_manifest) and hidraw backend reach it.
 *
 * The process must run under umockdev's preload (umockdev-wrapper, or LD_PRELOAD with
 * libumockdev-preload.so.0; ASan builds preload libasan first, testinfra.md §6), and create
 * the testbed before anything (libudev, libfido2) looks at /sys or /dev.
 *
 * The node is built from tests/softkey/data/fido-key.umockdev.in (usb_device → usb_interface →
 * hid → hidraw, FIDO report descriptor, usage page 0xF1D0) with the three tricks of
 * testinfra.md §2b: "N: hidrawN" without contents makes umockdev create a pty (passes
 * libfido2's S_ISCHR check); a UMockdevIoctlBase answers HIDIOCGRDESCSIZE/HIDIOCGRDESC/
 * HIDIOCGRAWINFO and routes read()/write() to the key; a byte written to the pty keeps it
 * readable for libfido2's ppoll(). Reads block until the key answers (KEEPALIVEs included)
 * and fail with ENODEV once the key is unplugged or removed.
 */
#pragma once

#include <umockdev.h>

#include "softkey.h"

G_BEGIN_DECLS

typedef struct SoftKeyHidraw SoftKeyHidraw;

/* How the emulated USB device introduces itself; NULL members take the defaults
 * (1050:0407 "Yubico" "YubiKey OTP+FIDO+CCID" serial "0012345678"). */
typedef struct {
    uint16_t vendor_id;
    uint16_t product_id;
    const char *manufacturer;
    const char *product;
    const char *serial;
} SoftKeyHidrawInfo;

/* Plugs @key into @testbed as a USB FIDO key on root port @port (1..15) with the next free
 * /dev/hidrawN, and sends the "add" uevents. Holds references to both. */
SoftKeyHidraw *softkey_hidraw_attach(SoftKey *key, UMockdevTestbed *testbed, unsigned port,
                                     const SoftKeyHidrawInfo *info, GError **error);
/* "/dev/hidrawN": the path libfido2 gives to fido_dev_open(). */
const char *softkey_hidraw_get_devnode(SoftKeyHidraw *hidraw);
/* The sysfs path of the USB device (for umockdev_testbed_uevent()). */
const char *softkey_hidraw_get_sysfs_path(SoftKeyHidraw *hidraw);
/* Pulls the key out: softkey_unplug(), pending reads fail, "remove" uevents, the sysfs
 * devices go. softkey_hidraw_replug() puts it back (power-up: softkey_plug()). */
void softkey_hidraw_unplug(SoftKeyHidraw *hidraw);
gboolean softkey_hidraw_replug(SoftKeyHidraw *hidraw, GError **error);
/* Unplugs (if still plugged) and frees. */
void softkey_hidraw_free(SoftKeyHidraw *hidraw);

G_END_DECLS
