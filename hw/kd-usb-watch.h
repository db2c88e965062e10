/* kd-usb-watch: security keys arriving and leaving, from libusb's hotplug events driven by the
 * GLib main loop (libusb's own file descriptors; no polling loop). */
#pragma once

#include <gio/gio.h>

#include "hw/kd-key-device.h"

G_BEGIN_DECLS

#define KD_TYPE_USB_WATCH (kd_usb_watch_get_type())
G_DECLARE_FINAL_TYPE(KdUsbWatch, kd_usb_watch, KD, USB_WATCH, GObject)

/*
 * Signals (emitted on the main context the watch was started on):
 *   "key-added"   (KdKeyDevice *device)  a FIDO key arrived (keys present at start count too)
 *   "key-removed" (KdKeyDevice *device)  the same device object that was added
 * A USB device that is not a FIDO key (a keyboard, a mouse) never reaches either signal.
 */
KdUsbWatch *kd_usb_watch_new(void);

/* Initialises libusb, reports the keys already present as "key-added", then follows hotplug.
 * Errors: G_IO_ERROR_NOT_SUPPORTED when libusb has no hotplug on this system, G_IO_ERROR_FAILED
 * when libusb cannot start. */
gboolean kd_usb_watch_start(KdUsbWatch *watch, GError **error);
void kd_usb_watch_stop(KdUsbWatch *watch);

/* The keys present now, in arrival order (a new array of new references). */
GPtrArray *kd_usb_watch_list(KdUsbWatch *watch);

/* Adds or removes a key that is not on USB (the soft key in demo mode): it is reported through
 * the same signals, so the rest of keydesk cannot tell it apart. */
void kd_usb_watch_add_virtual(KdUsbWatch *watch, KdKeyDevice *device);
void kd_usb_watch_remove_virtual(KdUsbWatch *watch, KdKeyDevice *device);

G_END_DECLS
