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
 * A USB device that is not a FIDO key (a keyboard, a mouse) never reaches either signal, and
 * one that leaves before it was reported reaches neither. "key-added" comes once the key's
 * strings are read (about 2 ms; at most one 250 ms control timeout for a key that does not
 * answer). A key pulled out and plugged back in is a new object with the same id (its USB
 * port, "1-1.2") and serial: the guided reset can match on those.
 */
KdUsbWatch *kd_usb_watch_new(void);

/* Initialises libusb, reports the keys already present as "key-added" (from the main loop,
 * after this returns, so handlers may be connected either side of it), then follows hotplug.
 * Starting a started watch does nothing. Errors: G_IO_ERROR_NOT_SUPPORTED when libusb has no
 * hotplug on this system, G_IO_ERROR_FAILED when libusb cannot start. */
gboolean kd_usb_watch_start(KdUsbWatch *watch, GError **error);
/* Stops following hotplug and frees libusb. The USB keys it reported get "key-removed" (a later
 * start reports them again as arrivals); virtual keys stay. */
void kd_usb_watch_stop(KdUsbWatch *watch);

/* How long a new HID device may take to show its report descriptor and hidraw node in sysfs
 * (the kernel binds usbhid a few ms after the USB device appears) before the watch asks the
 * device itself / reports the key without a fido_path. Default 2000 ms; tests shorten it. */
void kd_usb_watch_set_settle_time(KdUsbWatch *watch, guint ms);

/* The keys present now, in arrival order (a new array of new references). */
GPtrArray *kd_usb_watch_list(KdUsbWatch *watch);

/* Adds or removes a key that is not on USB (the soft key in demo mode): it is reported through
 * the same signals, so the rest of keydesk cannot tell it apart. Works whether or not the watch
 * is started, and virtual keys survive kd_usb_watch_stop(). Adding a key already present, or
 * removing one that is not, does nothing. The watch keeps its own reference. */
void kd_usb_watch_add_virtual(KdUsbWatch *watch, KdKeyDevice *device);
void kd_usb_watch_remove_virtual(KdUsbWatch *watch, KdKeyDevice *device);

G_END_DECLS
