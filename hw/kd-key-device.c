/* kd-key-device: see kd-key-device.h. */
#include "hw/kd-key-device.h"

G_DEFINE_BOXED_TYPE(KdKeyDevice, kd_key_device, kd_key_device_ref, kd_key_device_unref)

static void
key_device_clear(gpointer data)
{
    KdKeyDevice *device = data;

    g_free(device->id);
    g_free(device->manufacturer);
    g_free(device->product);
    g_free(device->serial);
    g_free(device->fido_path);
}

KdKeyDevice *
kd_key_device_new(void)
{
    return g_atomic_rc_box_new0(KdKeyDevice);
}

KdKeyDevice *
kd_key_device_ref(KdKeyDevice *device)
{
    g_return_val_if_fail(device != NULL, NULL);
    return g_atomic_rc_box_acquire(device);
}

void
kd_key_device_unref(KdKeyDevice *device)
{
    if (device != NULL)
        g_atomic_rc_box_release_full(device, key_device_clear);
}

char *
kd_key_device_describe(const KdKeyDevice *device)
{
    const char *m = device->manufacturer, *p = device->product;

    if (p != NULL && *p != '\0') {
        /* "Yubico YubiKey OTP+FIDO+CCID", but not "Yubico Yubico Security Key". */
        if (m != NULL && *m != '\0' && !g_str_has_prefix(p, m))
            return g_strdup_printf("%s %s", m, p);
        return g_strdup(p);
    }
    return g_strdup_printf("Security key %04x:%04x", device->vendor_id, device->product_id);
}
