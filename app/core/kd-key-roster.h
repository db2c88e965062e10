/* kd-key-roster: the security keys at this desk right now, each with what it said about itself
 * (KdKeyInfo), kept current from the USB watch. In demo mode it can also plug in a virtual key:
 * the software CTAP 2.1 authenticator of tests/softkey, reached through libfido2's custom I/O,
 * so the whole key path (libfido2's CTAP code included) runs without hardware. */
#pragma once

#include <gio/gio.h>

#include "hw/kd-key.h"

G_BEGIN_DECLS

typedef struct {
    KdKeyDevice *device;
    KdKey *key;
    KdKeyInfo *info; /* NULL while it is being read, or when reading failed (error) */
    GError *error;
    gboolean reading;
} KdRosterEntry;

#define KD_TYPE_KEY_ROSTER (kd_key_roster_get_type())
G_DECLARE_FINAL_TYPE(KdKeyRoster, kd_key_roster, KD, KEY_ROSTER, GObject)

/* Signal "changed" (no arguments): a key came or went, or its information arrived. */
KdKeyRoster *kd_key_roster_new(void);

/* Starts watching USB. Without USB hotplug (a container, a VM without USB) it fails with the
 * watch's error and the roster still works for a virtual key. */
gboolean kd_key_roster_start(KdKeyRoster *roster, GError **error);
/* Why watching USB failed, or NULL while it works (or before start). */
const GError *kd_key_roster_get_watch_error(KdKeyRoster *roster);
KdUsbWatch *kd_key_roster_get_watch(KdKeyRoster *roster);

/* The keys present, in arrival order (owned by the roster; valid until the next "changed"). */
GPtrArray *kd_key_roster_get_entries(KdKeyRoster *roster);

/* The virtual key (demo mode): plugging it in again finds it as it was left (its PIN and
 * credentials survive, as a real key's do). */
void kd_key_roster_insert_virtual(KdKeyRoster *roster);
void kd_key_roster_remove_virtual(KdKeyRoster *roster);
gboolean kd_key_roster_has_virtual(KdKeyRoster *roster);

/* One line for staff: "Yubico YubiKey 5 NFC: YubiKey 5 Series, CTAP 2.1, PIN set (8 tries
 * left), minimum PIN length 4, firmware 5.4.3", "… reading the key…", or what went wrong. */
char *kd_key_roster_describe(const KdRosterEntry *entry);

G_END_DECLS
