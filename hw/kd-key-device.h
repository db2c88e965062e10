/* kd-key-device: one security key as the presence watcher (kd-usb-watch.h) reports it and as the
 * key operations (kd-key.h) open it. Immutable once reported; reference-counted. */
#pragma once

#include <fido.h>
#include <glib-object.h>

G_BEGIN_DECLS

typedef enum {
    KD_KEY_DETECTED_DESCRIPTOR,  /* a HID interface whose report descriptor has usage page 0xF1D0 */
    KD_KEY_DETECTED_VENDOR_LIST, /* descriptor unreadable: VID/PID is on the FIDO vendor list */
    KD_KEY_DETECTED_VIRTUAL,     /* the software key (demo mode, tests) */
} KdKeyDetection;

typedef struct {
    char *id; /* stable while plugged in: the USB port path ("1-1.2"), or "virtual-N" */
    guint16 vendor_id;
    guint16 product_id;
    char *manufacturer; /* USB string descriptors; NULL when absent or unreadable */
    char *product;
    char *serial;
    guint8 busnum;
    guint8 devnum;
    char *fido_path; /* what libfido2 opens ("/dev/hidraw3"), or NULL while not known yet */
    KdKeyDetection detection;
    /* For an in-process key (the soft key): libfido2 talks to it through these I/O functions
     * instead of its own hidraw backend. NULL for real keys. Not owned. */
    const fido_dev_io_t *io;
} KdKeyDevice;

#define KD_TYPE_KEY_DEVICE (kd_key_device_get_type())
GType kd_key_device_get_type(void) G_GNUC_CONST;

/* All strings NULL, ids 0; fill it in, then hand it out (it is not changed afterwards). */
KdKeyDevice *kd_key_device_new(void);
KdKeyDevice *kd_key_device_ref(KdKeyDevice *device);
void kd_key_device_unref(KdKeyDevice *device);
/* "Yubico YubiKey 5 NFC", else the product, else "Security key 1050:0407". Free with g_free. */
char *kd_key_device_describe(const KdKeyDevice *device);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(KdKeyDevice, kd_key_device_unref)

G_END_DECLS
