/* kd-key-roster: see kd-key-roster.h. */
#include "core/kd-key-roster.h"

#include <glib/gi18n.h>

#include "softkey.h"

struct _KdKeyRoster {
    GObject parent_instance;

    KdUsbWatch *watch;
    GError *watch_error;
    GPtrArray *entries; /* KdRosterEntry */
    GCancellable *cancellable;

    SoftKey *softkey;            /* created on first insertion, kept until finalize */
    KdKeyDevice *virtual_device; /* while the virtual key is "plugged in" */
};

G_DEFINE_FINAL_TYPE(KdKeyRoster, kd_key_roster, G_TYPE_OBJECT)

enum { SIGNAL_CHANGED, N_SIGNALS };
static guint signals[N_SIGNALS];

static void
entry_free(gpointer data)
{
    KdRosterEntry *entry = data;

    g_clear_pointer(&entry->info, kd_key_info_free);
    g_clear_error(&entry->error);
    g_clear_object(&entry->key);
    kd_key_device_unref(entry->device);
    g_free(entry);
}

static KdRosterEntry *
find_entry(KdKeyRoster *self, KdKeyDevice *device, guint *index)
{
    for (guint i = 0; i < self->entries->len; i++) {
        KdRosterEntry *entry = g_ptr_array_index(self->entries, i);
        if (entry->device == device) {
            if (index != NULL)
                *index = i;
            return entry;
        }
    }
    return NULL;
}

typedef struct {
    GWeakRef roster; /* the roster may go while a key is being read */
    KdKeyDevice *device;
} InfoRead;

static void
on_info(GObject *source, GAsyncResult *result, gpointer data)
{
    InfoRead *read = data;
    g_autoptr(GError) error = NULL;
    KdKeyInfo *info = kd_key_get_info_finish(KD_KEY(source), result, &error);
    g_autoptr(KdKeyRoster) roster = g_weak_ref_get(&read->roster);
    KdRosterEntry *entry;

    if (roster == NULL || g_error_matches(error, KD_KEY_ERROR, KD_KEY_ERROR_CANCELLED)) {
        g_clear_pointer(&info, kd_key_info_free);
        goto out;
    }
    entry = find_entry(roster, read->device, NULL);
    if (entry == NULL) { /* removed meanwhile */
        g_clear_pointer(&info, kd_key_info_free);
        goto out;
    }
    entry->reading = FALSE;
    entry->info = info;
    entry->error = g_steal_pointer(&error);
    if (entry->error != NULL)
        g_message("keys: could not read %s: %s", entry->device->id, entry->error->message);
    g_signal_emit(roster, signals[SIGNAL_CHANGED], 0);
out:
    g_weak_ref_clear(&read->roster);
    kd_key_device_unref(read->device);
    g_free(read);
}

static void
on_key_added(KdUsbWatch *watch, KdKeyDevice *device, gpointer data)
{
    KdKeyRoster *self = data;
    KdRosterEntry *entry;
    InfoRead *read;
    g_autofree char *name = kd_key_device_describe(device);

    if (find_entry(self, device, NULL) != NULL)
        return;
    g_info("keys: %s arrived (%s, %s)", name, device->id,
           device->fido_path != NULL ? device->fido_path : "no FIDO path yet");
    entry = g_new0(KdRosterEntry, 1);
    entry->device = kd_key_device_ref(device);
    entry->key = kd_key_new(device);
    entry->reading = TRUE;
    g_ptr_array_add(self->entries, entry);
    read = g_new0(InfoRead, 1);
    g_weak_ref_init(&read->roster, self);
    read->device = kd_key_device_ref(device);
    kd_key_get_info_async(entry->key, self->cancellable, on_info, read);
    g_signal_emit(self, signals[SIGNAL_CHANGED], 0);
}

static void
on_key_removed(KdUsbWatch *watch, KdKeyDevice *device, gpointer data)
{
    KdKeyRoster *self = data;
    guint index;

    if (find_entry(self, device, &index) == NULL)
        return;
    g_info("keys: %s left", device->id);
    g_ptr_array_remove_index(self->entries, index);
    g_signal_emit(self, signals[SIGNAL_CHANGED], 0);
}

KdKeyRoster *
kd_key_roster_new(void)
{
    return g_object_new(KD_TYPE_KEY_ROSTER, NULL);
}

gboolean
kd_key_roster_start(KdKeyRoster *self, GError **error)
{
    g_return_val_if_fail(KD_IS_KEY_ROSTER(self), FALSE);
    g_clear_error(&self->watch_error);
    if (!kd_usb_watch_start(self->watch, &self->watch_error)) {
        g_message("keys: not watching USB: %s", self->watch_error->message);
        if (error != NULL)
            *error = g_error_copy(self->watch_error);
        g_signal_emit(self, signals[SIGNAL_CHANGED], 0);
        return FALSE;
    }
    return TRUE;
}

const GError *
kd_key_roster_get_watch_error(KdKeyRoster *self)
{
    g_return_val_if_fail(KD_IS_KEY_ROSTER(self), NULL);
    return self->watch_error;
}

KdUsbWatch *
kd_key_roster_get_watch(KdKeyRoster *self)
{
    g_return_val_if_fail(KD_IS_KEY_ROSTER(self), NULL);
    return self->watch;
}

GPtrArray *
kd_key_roster_get_entries(KdKeyRoster *self)
{
    g_return_val_if_fail(KD_IS_KEY_ROSTER(self), NULL);
    return self->entries;
}

void
kd_key_roster_insert_virtual(KdKeyRoster *self)
{
    KdKeyDevice *device;

    g_return_if_fail(KD_IS_KEY_ROSTER(self));
    if (self->virtual_device != NULL)
        return;
    if (self->softkey == NULL)
        self->softkey = softkey_new();
    else
        softkey_plug(self->softkey); /* power-up, as a real key that is plugged in again */
    device = kd_key_device_new();
    device->id = g_strdup("virtual-1");
    device->manufacturer = g_strdup("keydesk");
    device->product = g_strdup(_("Virtual security key"));
    device->fido_path = g_strdup(softkey_get_path(self->softkey));
    device->detection = KD_KEY_DETECTED_VIRTUAL;
    device->io = softkey_io();
    self->virtual_device = device;
    kd_usb_watch_add_virtual(self->watch, device);
}

void
kd_key_roster_remove_virtual(KdKeyRoster *self)
{
    g_return_if_fail(KD_IS_KEY_ROSTER(self));
    if (self->virtual_device == NULL)
        return;
    /* Pulled out: whatever was talking to it fails as with a real key. Forgotten before the
     * watch reports it gone, so "changed" handlers already see no virtual key. */
    g_autoptr(KdKeyDevice) device = g_steal_pointer(&self->virtual_device);
    softkey_unplug(self->softkey);
    kd_usb_watch_remove_virtual(self->watch, device);
}

gboolean
kd_key_roster_has_virtual(KdKeyRoster *self)
{
    g_return_val_if_fail(KD_IS_KEY_ROSTER(self), FALSE);
    return self->virtual_device != NULL;
}

static const char *
ctap_name(KdKeyCtap ctap)
{
    switch (ctap) {
    case KD_KEY_CTAP_U2F:
        return _("U2F only (cannot hold a passkey)");
    case KD_KEY_CTAP_2_0:
        return "CTAP 2.0";
    case KD_KEY_CTAP_2_1_PRE:
        return "CTAP 2.1 (preview)";
    case KD_KEY_CTAP_2_1:
        return "CTAP 2.1";
    }
    return "?";
}

char *
kd_key_roster_describe(const KdRosterEntry *entry)
{
    g_autofree char *name = kd_key_device_describe(entry->device);
    const KdKeyInfo *info = entry->info;
    g_autoptr(GString) out = g_string_new(name);

    if (entry->device->detection == KD_KEY_DETECTED_VIRTUAL)
        g_string_append(out, _(" (demo)"));
    g_string_append(out, ": ");
    if (entry->reading) {
        g_string_append(out, _("reading the key…"));
        return g_string_free(g_steal_pointer(&out), FALSE);
    }
    if (info == NULL) {
        g_string_append(out, entry->error != NULL ? entry->error->message : _("unreadable"));
        return g_string_free(g_steal_pointer(&out), FALSE);
    }
    if (info->model != NULL)
        g_string_append_printf(out, "%s, ", info->model);
    g_string_append(out, ctap_name(info->ctap));
    if (info->fido2) {
        if (info->client_pin == KD_KEY_OPTION_ABSENT)
            g_string_append(out, _(", no PIN support"));
        else if (!info->pin_set)
            g_string_append(out, _(", no PIN set yet"));
        else if (info->pin_retries >= 0)
            g_string_append_printf(out,
                                   ngettext(", PIN set (%d try left)", ", PIN set (%d tries left)",
                                            (gulong)info->pin_retries),
                                   info->pin_retries);
        else
            g_string_append(out, _(", PIN set"));
        if (info->force_pin_change)
            g_string_append(out, _(", PIN must be changed"));
        g_string_append_printf(out, _(", minimum PIN length %u"), info->min_pin_length);
    }
    if (info->firmware != NULL)
        g_string_append_printf(out, _(", firmware %s"), info->firmware);
    return g_string_free(g_steal_pointer(&out), FALSE);
}

static void
kd_key_roster_dispose(GObject *object)
{
    KdKeyRoster *self = KD_KEY_ROSTER(object);

    g_cancellable_cancel(self->cancellable);
    if (self->watch != NULL) {
        g_signal_handlers_disconnect_by_data(self->watch, self);
        kd_usb_watch_stop(self->watch);
    }
    G_OBJECT_CLASS(kd_key_roster_parent_class)->dispose(object);
}

static void
kd_key_roster_finalize(GObject *object)
{
    KdKeyRoster *self = KD_KEY_ROSTER(object);
    gboolean busy = FALSE;

    for (guint i = 0; i < self->entries->len; i++)
        busy |= kd_key_is_busy(((KdRosterEntry *)g_ptr_array_index(self->entries, i))->key);
    g_ptr_array_unref(self->entries);
    g_clear_pointer(&self->virtual_device, kd_key_device_unref);
    g_clear_object(&self->watch);
    g_clear_object(&self->cancellable);
    g_clear_error(&self->watch_error);
    if (self->softkey != NULL) {
        softkey_unplug(self->softkey);
        /* A worker thread still inside the key would use it after free: leave it then (the
         * process is ending; this happens only when keydesk stops mid-operation). */
        if (!busy)
            softkey_free(self->softkey);
    }
    G_OBJECT_CLASS(kd_key_roster_parent_class)->finalize(object);
}

static void
kd_key_roster_class_init(KdKeyRosterClass *klass)
{
    GObjectClass *object_class = G_OBJECT_CLASS(klass);

    object_class->dispose = kd_key_roster_dispose;
    object_class->finalize = kd_key_roster_finalize;
    signals[SIGNAL_CHANGED] = g_signal_new("changed", G_TYPE_FROM_CLASS(klass), G_SIGNAL_RUN_LAST,
                                           0, NULL, NULL, NULL, G_TYPE_NONE, 0);
}

static void
kd_key_roster_init(KdKeyRoster *self)
{
    self->entries = g_ptr_array_new_with_free_func(entry_free);
    self->cancellable = g_cancellable_new();
    self->watch = kd_usb_watch_new();
    g_signal_connect(self->watch, "key-added", G_CALLBACK(on_key_added), self);
    g_signal_connect(self->watch, "key-removed", G_CALLBACK(on_key_removed), self);
}
