/* kd-usb-watch: security keys arriving and leaving, from libusb hotplug on the GLib main loop. */
#include "hw/kd-usb-watch.h"

#include <libusb.h>
#include <string.h>

#include "hw/kd-hid-descriptor.h"
#include "hw/kd-fido-ids.h"

/*
 * How a device becomes a "key-added" (everything runs on the watch's main context; the only
 * threads are libusb's own, which wake us through its event fd):
 *
 *   hotplug ARRIVED (queued; handled once libusb has returned)
 *     ─▶ sysfs: the report descriptor of each HID interface (no I/O to the device)
 *        ├─ FIDO (usage page 0xF1D0) ─▶ its hidraw node ─▶ open ─▶ strings ─▶ "key-added"
 *        ├─ keyboard, mouse, no HID interface at all ─▶ forgotten, never opened
 *        ├─ the kernel's children not there yet ─▶ look again (backoff) until the settle time
 *        └─ still none then ─▶ open ─▶ HID GET_DESCRIPTOR(report) ─▶ FIDO, or else the vendor
 *                              list (kd-fido-ids) ─▶ strings ─▶ "key-added"
 *
 * The kernel creates the usb_device first and binds usbhid, the hid device and its hidraw node
 * a few milliseconds later, so the sysfs children may be missing when libusb reports the
 * arrival. We look again on the main loop with a doubling delay (1 ms … 100 ms) up to the
 * settle time (SYSFS_WAIT_MS unless kd_usb_watch_set_settle_time() says otherwise); that is a
 * bounded retry of one stat()/readdir() per try, chosen over a udev monitor to avoid a libudev
 * dependency (libudev-dev is not in the build) and a second event source. A key whose hidraw node
 * never appears is reported with fido_path NULL.
 *
 * Control transfers (string descriptors, the fallback report descriptor) are asynchronous and
 * completed by the same main-loop source, each bounded by CONTROL_TIMEOUT_MS. A device that does
 * not answer therefore delays its own "key-added" by at most about that much and never blocks the
 * loop; after its first timeout no further strings are asked. A string the device does not give
 * us is taken from sysfs (the kernel's cached copy), else left NULL.
 *
 * Signals are never emitted from inside libusb (a handler may stop the watch, which would call
 * libusb_exit() under libusb's feet): libusb callbacks only queue work, drained after
 * libusb_handle_events_timeout_completed() returns.
 */

#define CONTROL_TIMEOUT_MS 250  /* per control transfer */
#define SYSFS_WAIT_MS      2000 /* default settle time: for the kernel's hid/hidraw children */
#define SYSFS_RETRY_MAX_MS 100
#define STRING_MAX         255 /* a string descriptor's bLength is one byte */
#define RDESC_MAX          4096
#define STOP_DRAIN_MS      2000 /* stop(): how long cancelled transfers may take to come back */

#define SYSFS_USB_DEVICES "/sys/bus/usb/devices"

enum { SIGNAL_KEY_ADDED, SIGNAL_KEY_REMOVED, N_SIGNALS };
static guint signals[N_SIGNALS];

typedef enum {
    STEP_RDESC,   /* HID GET_DESCRIPTOR(report) for interfaces sysfs had no descriptor for */
    STEP_LANGID,  /* string descriptor 0: the first language id */
    STEP_STRINGS, /* iManufacturer, iProduct, iSerialNumber */
    STEP_DONE,
} Step;

typedef struct {
    guint8 number;
    guint16 rdesc_len; /* from the interface's HID class descriptor, 0 if unknown */
} HidInterface;

typedef struct {
    KdUsbWatch *watch; /* not a reference: the watch outlives its entries */
    libusb_device *dev;
    char *port; /* "1-1.2", also the key's id */
    struct libusb_device_descriptor desc;
    guint8 config;
    GArray *hid; /* HidInterface still without a report descriptor */
    gboolean fido;
    gboolean unreadable; /* a HID interface whose report descriptor we could not get */
    KdKeyDetection detection;
    char *fido_hid_dir; /* sysfs dir of the FIDO hid device, to find its hidraw child */
    char *fido_path;
    gint64 deadline; /* monotonic µs: stop waiting for the sysfs children */
    guint retry_ms;
    GSource *retry;
    libusb_device_handle *handle;
    struct libusb_transfer *transfer; /* in flight, or NULL */
    Step step;
    guint string_index; /* 0..2 in STEP_STRINGS; interface index in STEP_RDESC */
    guint16 langid;
    char *strings[3]; /* manufacturer, product, serial */
    gboolean queued;  /* on watch->ready */
    gboolean gone;    /* left before it was reported */
    KdKeyDevice *key; /* once reported */
} Entry;

typedef struct {
    GSource source;
    KdUsbWatch *watch;
} UsbSource;

typedef struct {
    libusb_device *dev;
    libusb_hotplug_event event;
} HotplugEvent;

struct _KdUsbWatch {
    GObject parent_instance;

    GMainContext *context;
    libusb_context *usb;
    GSource *source;     /* libusb's fds and timeouts */
    GHashTable *fd_tags; /* fd → tag from g_source_add_unix_fd */
    libusb_hotplug_callback_handle hotplug;
    gboolean hotplug_registered;
    GQueue events;       /* HotplugEvent *, from the hotplug callback */
    GQueue ready;        /* Entry * whose next step runs outside libusb */
    GSource *idle;       /* drains both queues when libusb is not running */
    GHashTable *entries; /* libusb_device * → Entry *, pending and reported */
    GPtrArray *keys;     /* KdKeyDevice *, arrival order (USB and virtual) */
    guint settle_ms;
};

G_DEFINE_TYPE(KdUsbWatch, kd_usb_watch, G_TYPE_OBJECT)

static void entry_inspect(Entry *e);
static void entry_advance(Entry *e);
static void watch_drain(KdUsbWatch *watch);

/* ---- keys and signals -------------------------------------------------------------------- */

static void
watch_emit_added(KdUsbWatch *watch, KdKeyDevice *key)
{
    g_ptr_array_add(watch->keys, kd_key_device_ref(key));
    g_signal_emit(watch, signals[SIGNAL_KEY_ADDED], 0, key);
}

/* Takes @key out of the list; FALSE when it was not there. */
static gboolean
watch_emit_removed(KdUsbWatch *watch, KdKeyDevice *key)
{
    guint i;

    if (!g_ptr_array_find(watch->keys, key, &i))
        return FALSE;
    kd_key_device_ref(key);
    g_ptr_array_remove_index(watch->keys, i);
    g_signal_emit(watch, signals[SIGNAL_KEY_REMOVED], 0, key);
    kd_key_device_unref(key);
    return TRUE;
}

void
kd_usb_watch_add_virtual(KdUsbWatch *watch, KdKeyDevice *device)
{
    g_return_if_fail(KD_IS_USB_WATCH(watch));
    g_return_if_fail(device != NULL);

    if (g_ptr_array_find(watch->keys, device, NULL))
        return;
    watch_emit_added(watch, device);
}

void
kd_usb_watch_remove_virtual(KdUsbWatch *watch, KdKeyDevice *device)
{
    g_return_if_fail(KD_IS_USB_WATCH(watch));
    g_return_if_fail(device != NULL);

    watch_emit_removed(watch, device);
}

GPtrArray *
kd_usb_watch_list(KdUsbWatch *watch)
{
    GPtrArray *list;

    g_return_val_if_fail(KD_IS_USB_WATCH(watch), NULL);
    list = g_ptr_array_new_full(watch->keys->len, (GDestroyNotify)kd_key_device_unref);
    for (guint i = 0; i < watch->keys->len; i++)
        g_ptr_array_add(list, kd_key_device_ref(g_ptr_array_index(watch->keys, i)));
    return list;
}

/* ---- libusb's file descriptors on the main loop ------------------------------------------ */

static gboolean
usb_source_prepare(GSource *source, gint *timeout)
{
    KdUsbWatch *watch = ((UsbSource *)source)->watch;
    struct timeval tv;
    gint64 ms;

    *timeout = -1;
    /* 0: libusb has no timeout of its own to run (Linux uses a timerfd, which is one of the
     * fds); 1: it wants to be called back after tv. */
    if (libusb_get_next_timeout(watch->usb, &tv) != 1)
        return FALSE;
    ms = (gint64)tv.tv_sec * 1000 + (tv.tv_usec + 999) / 1000;
    if (ms <= 0)
        return TRUE;
    *timeout = (gint)MIN(ms, G_MAXINT);
    return FALSE;
}

static gboolean
usb_source_check(GSource *source)
{
    KdUsbWatch *watch = ((UsbSource *)source)->watch;
    GHashTableIter it;
    gpointer tag;
    struct timeval tv;

    g_hash_table_iter_init(&it, watch->fd_tags);
    while (g_hash_table_iter_next(&it, NULL, &tag))
        if (g_source_query_unix_fd(source, tag) != 0)
            return TRUE;
    return libusb_get_next_timeout(watch->usb, &tv) == 1 && tv.tv_sec == 0 && tv.tv_usec == 0;
}

static gboolean
usb_source_dispatch(GSource *source, GSourceFunc callback, gpointer user_data)
{
    KdUsbWatch *watch = g_object_ref(((UsbSource *)source)->watch);
    struct timeval zero = {0, 0};

    /* Runs hotplug and transfer callbacks, which only queue work; handlers run after. */
    libusb_handle_events_timeout_completed(watch->usb, &zero, NULL);
    watch_drain(watch);
    g_object_unref(watch);
    return G_SOURCE_CONTINUE;
}

static GSourceFuncs usb_source_funcs = {
    .prepare = usb_source_prepare,
    .check = usb_source_check,
    .dispatch = usb_source_dispatch,
};

static void
pollfd_added(int fd, short events, void *user_data)
{
    KdUsbWatch *watch = user_data;
    gpointer tag;

    if ((tag = g_hash_table_lookup(watch->fd_tags, GINT_TO_POINTER(fd))) != NULL) {
        g_source_modify_unix_fd(watch->source, tag, (GIOCondition)events);
        return;
    }
    /* poll()'s POLLIN/POLLOUT are GLib's G_IO_IN/G_IO_OUT on every system GLib supports. */
    tag = g_source_add_unix_fd(watch->source, fd, (GIOCondition)events);
    g_hash_table_insert(watch->fd_tags, GINT_TO_POINTER(fd), tag);
}

static void
pollfd_removed(int fd, void *user_data)
{
    KdUsbWatch *watch = user_data;
    gpointer tag;

    if ((tag = g_hash_table_lookup(watch->fd_tags, GINT_TO_POINTER(fd))) == NULL)
        return;
    g_source_remove_unix_fd(watch->source, tag);
    g_hash_table_remove(watch->fd_tags, GINT_TO_POINTER(fd));
}

/* ---- entries: one per USB device that may be a key ---------------------------------------- */

static void
entry_free(Entry *e)
{
    /* Callers make sure no transfer is in flight (libusb would write into freed memory). */
    g_assert(e->transfer == NULL);
    if (e->retry != NULL) {
        g_source_destroy(e->retry);
        g_source_unref(e->retry);
    }
    if (e->handle != NULL)
        libusb_close(e->handle);
    if (e->queued)
        g_queue_remove(&e->watch->ready, e);
    libusb_unref_device(e->dev);
    if (e->hid != NULL)
        g_array_unref(e->hid);
    g_free(e->port);
    g_free(e->fido_hid_dir);
    g_free(e->fido_path);
    for (guint i = 0; i < G_N_ELEMENTS(e->strings); i++)
        g_free(e->strings[i]);
    kd_key_device_unref(e->key);
    g_free(e);
}

/* Forgets @e (not a key, or gone before it was reported). */
static void
entry_drop(Entry *e)
{
    g_hash_table_remove(e->watch->entries, e->dev); /* frees it */
}

/* Runs entry_advance(@e) once libusb has returned (from a transfer callback). */
static void
entry_queue(Entry *e)
{
    if (!e->queued) {
        e->queued = TRUE;
        g_queue_push_tail(&e->watch->ready, e);
    }
}

static char *
read_sysfs_string(const char *dir, const char *name)
{
    g_autofree char *path = g_build_filename(dir, name, NULL);
    char *s = NULL;

    if (!g_file_get_contents(path, &s, NULL, NULL))
        return NULL;
    g_strstrip(s);
    if (*s == '\0' || !g_utf8_validate(s, -1, NULL))
        g_clear_pointer(&s, g_free);
    return s;
}

/* "<hid>/hidraw/hidrawN" → "/dev/hidrawN", when the node exists too. */
static char *
find_hidraw(const char *hid_dir)
{
    g_autofree char *dir = g_build_filename(hid_dir, "hidraw", NULL);
    g_autoptr(GDir) d = g_dir_open(dir, 0, NULL);
    const char *name;

    if (d == NULL)
        return NULL;
    while ((name = g_dir_read_name(d)) != NULL) {
        if (g_str_has_prefix(name, "hidraw")) {
            char *node = g_build_filename("/dev", name, NULL);
            if (g_file_test(node, G_FILE_TEST_EXISTS))
                return node;
            g_free(node);
        }
    }
    return NULL;
}

/* Whether @name is a hid device's sysfs name: "0003:1050:0407.0001". */
static gboolean
is_hid_name(const char *name)
{
    return strlen(name) == 19 && name[4] == ':' && name[9] == ':' && name[14] == '.' &&
           g_ascii_isxdigit(name[0]) && g_ascii_isxdigit(name[18]);
}

typedef enum { SYSFS_ABSENT, SYSFS_NOT_FIDO, SYSFS_FIDO } SysfsAnswer;

/* Looks for interface @number's hid child and its report descriptor in sysfs. */
static SysfsAnswer
inspect_sysfs_interface(Entry *e, guint8 number)
{
    g_autofree char *ifname = g_strdup_printf("%s:%u.%u", e->port, e->config, number);
    g_autofree char *ifdir = g_build_filename(SYSFS_USB_DEVICES, e->port, ifname, NULL);
    g_autoptr(GDir) d = g_dir_open(ifdir, 0, NULL);
    SysfsAnswer answer = SYSFS_ABSENT;
    const char *name;

    if (d == NULL)
        return SYSFS_ABSENT;
    while ((name = g_dir_read_name(d)) != NULL) {
        g_autofree char *hid_dir = NULL, *path = NULL, *data = NULL;
        gsize len;
        KdHidInfo info;

        if (!is_hid_name(name))
            continue;
        hid_dir = g_build_filename(ifdir, name, NULL);
        path = g_build_filename(hid_dir, "report_descriptor", NULL);
        if (!g_file_get_contents(path, &data, &len, NULL) || len == 0)
            continue;
        if (!kd_hid_descriptor_parse((const guint8 *)data, len, &info)) {
            g_debug("usb %s: interface %u: malformed report descriptor", e->port, number);
            continue;
        }
        if (!info.fido) {
            answer = SYSFS_NOT_FIDO;
            continue;
        }
        e->fido_hid_dir = g_steal_pointer(&hid_dir);
        return SYSFS_FIDO;
    }
    return answer;
}

/* The wDescriptorLength of the report descriptor in a HID class descriptor (HID 1.11 §6.2.1). */
static guint16
hid_report_length(const struct libusb_interface_descriptor *alt)
{
    const unsigned char *x = alt->extra;
    int left = alt->extra_length;

    while (left >= 2 && x[0] >= 2 && x[0] <= left) {
        if (x[1] == 0x21 && x[0] >= 9) {
            for (int k = 0; k < x[5] && 6 + 3 * k + 2 < x[0]; k++)
                if (x[6 + 3 * k] == 0x22)
                    return (guint16)(x[7 + 3 * k] | x[8 + 3 * k] << 8);
        }
        left -= x[0];
        x += x[0];
    }
    return 0;
}

/* The HID interfaces of @e's active configuration, from libusb's cached descriptors (no I/O). */
static gboolean
entry_read_config(Entry *e)
{
    struct libusb_config_descriptor *config = NULL;

    if (libusb_get_active_config_descriptor(e->dev, &config) != 0 &&
        libusb_get_config_descriptor(e->dev, 0, &config) != 0)
        return FALSE;
    e->config = config->bConfigurationValue;
    e->hid = g_array_new(FALSE, FALSE, sizeof(HidInterface));
    for (int i = 0; i < config->bNumInterfaces; i++) {
        const struct libusb_interface *intf = &config->interface[i];

        if (intf->num_altsetting < 1 || intf->altsetting[0].bInterfaceClass != LIBUSB_CLASS_HID)
            continue;
        HidInterface h = {
            .number = intf->altsetting[0].bInterfaceNumber,
            .rdesc_len = hid_report_length(&intf->altsetting[0]),
        };
        g_array_append_val(e->hid, h);
    }
    libusb_free_config_descriptor(config);
    return e->hid->len > 0;
}

static gboolean
entry_retry_cb(gpointer data)
{
    Entry *e = data;
    KdUsbWatch *watch = g_object_ref(e->watch); /* a handler may drop the last reference */

    g_clear_pointer(&e->retry, g_source_unref);
    entry_inspect(e);
    g_object_unref(watch);
    return G_SOURCE_REMOVE;
}

static void
entry_retry(Entry *e)
{
    e->retry_ms = e->retry_ms == 0 ? 1 : MIN(e->retry_ms * 2, SYSFS_RETRY_MAX_MS);
    e->retry = g_timeout_source_new(e->retry_ms);
    g_source_set_callback(e->retry, entry_retry_cb, e, NULL);
    g_source_attach(e->retry, e->watch->context);
}

/* Decides from sysfs; waits for the kernel's children; else falls back to the device. */
static void
entry_inspect(Entry *e)
{
    gboolean waiting = FALSE;

    for (guint i = 0; i < e->hid->len;) {
        HidInterface *h = &g_array_index(e->hid, HidInterface, i);

        switch (inspect_sysfs_interface(e, h->number)) {
        case SYSFS_FIDO:
            e->fido = TRUE;
            e->detection = KD_KEY_DETECTED_DESCRIPTOR;
            g_array_remove_index(e->hid, i);
            break;
        case SYSFS_NOT_FIDO:
            g_array_remove_index(e->hid, i);
            break;
        case SYSFS_ABSENT:
            i++;
            break;
        }
        if (e->fido)
            break;
    }
    if (e->fido && e->fido_hid_dir != NULL && e->fido_path == NULL)
        e->fido_path = find_hidraw(e->fido_hid_dir);
    if (e->fido)
        waiting = e->fido_path == NULL;
    else
        waiting = e->hid->len > 0;
    if (waiting && g_get_monotonic_time() < e->deadline) {
        entry_retry(e);
        return;
    }
    if (!e->fido && e->hid->len == 0) {
        g_debug("usb %s %04x:%04x: HID, not a FIDO key", e->port, e->desc.idVendor,
                e->desc.idProduct);
        entry_drop(e);
        return;
    }
    if (e->fido)
        g_array_set_size(e->hid, 0);
    e->step = STEP_RDESC;
    e->string_index = 0;
    entry_advance(e);
}

/* ---- control transfers ------------------------------------------------------------------ */

static void LIBUSB_CALL
transfer_done(struct libusb_transfer *t)
{
    Entry *e = t->user_data;
    const guint8 *data = libusb_control_transfer_get_data(t);
    int n = t->status == LIBUSB_TRANSFER_COMPLETED ? t->actual_length : -1;

    e->transfer = NULL;
    if (t->status == LIBUSB_TRANSFER_NO_DEVICE)
        e->gone = TRUE; /* unplugged; libusb's LEFT event will find nothing to remove */
    if (e->gone) {
        e->step = STEP_DONE;
    } else if (e->step == STEP_RDESC) {
        KdHidInfo info;

        if (n > 0 && kd_hid_descriptor_parse(data, (gsize)n, &info)) {
            if (info.fido) {
                e->fido = TRUE;
                e->detection = KD_KEY_DETECTED_DESCRIPTOR;
            }
        } else {
            e->unreadable = TRUE;
        }
        e->string_index++;
    } else if (e->step == STEP_LANGID) {
        if (n >= 4 && data[1] == LIBUSB_DT_STRING) {
            e->langid = (guint16)(data[2] | data[3] << 8);
            e->step = STEP_STRINGS;
            e->string_index = 0;
        } else {
            e->step = STEP_DONE; /* no strings, or the device does not answer */
        }
    } else if (e->step == STEP_STRINGS) {
        if (n >= 2 && data[0] >= 2 && data[1] == LIBUSB_DT_STRING && data[0] <= n) {
            gunichar2 utf16[STRING_MAX / 2];
            glong units = (data[0] - 2) / 2;

            for (glong k = 0; k < units; k++)
                utf16[k] = (gunichar2)(data[2 + 2 * k] | data[3 + 2 * k] << 8);
            e->strings[e->string_index] = g_utf16_to_utf8(utf16, units, NULL, NULL, NULL);
            if (e->strings[e->string_index] != NULL)
                g_strstrip(e->strings[e->string_index]);
        }
        e->string_index++;
        if (t->status == LIBUSB_TRANSFER_TIMED_OUT)
            e->step = STEP_DONE;
    }
    g_free(t->buffer);
    libusb_free_transfer(t);
    entry_queue(e);
}

static gboolean
entry_submit(Entry *e, guint8 request_type, guint16 value, guint16 index, guint16 length)
{
    struct libusb_transfer *t = libusb_alloc_transfer(0);
    guint8 *buf = g_malloc0(LIBUSB_CONTROL_SETUP_SIZE + length);

    libusb_fill_control_setup(buf, request_type, LIBUSB_REQUEST_GET_DESCRIPTOR, value, index,
                              length);
    libusb_fill_control_transfer(t, e->handle, buf, transfer_done, e, CONTROL_TIMEOUT_MS);
    if (libusb_submit_transfer(t) != 0) {
        g_free(buf);
        libusb_free_transfer(t);
        return FALSE;
    }
    e->transfer = t;
    return TRUE;
}

/* A HID interface's report descriptor could be read neither from sysfs nor from the device,
 * and the vendor list knows the VID:PID as a FIDO key. */
static gboolean
entry_on_vendor_list(const Entry *e)
{
    return e->unreadable && kd_fido_ids_lookup(e->desc.idVendor, e->desc.idProduct, NULL);
}

/* The string descriptor index for string slot @i. */
static guint8
string_slot_index(const Entry *e, guint i)
{
    const guint8 idx[] = {e->desc.iManufacturer, e->desc.iProduct, e->desc.iSerialNumber};
    return idx[i];
}

static void
entry_report(Entry *e)
{
    static const char *const attrs[] = {"manufacturer", "product", "serial"};
    g_autofree char *sysdir = g_build_filename(SYSFS_USB_DEVICES, e->port, NULL);
    KdKeyDevice *key;

    if (e->handle != NULL)
        g_clear_pointer(&e->handle, libusb_close);
    g_clear_pointer(&e->hid, g_array_unref);

    if (!e->fido && entry_on_vendor_list(e)) {
        e->fido = TRUE;
        e->detection = KD_KEY_DETECTED_VENDOR_LIST;
    }
    if (!e->fido) {
        g_debug("usb %s %04x:%04x: not a FIDO key", e->port, e->desc.idVendor, e->desc.idProduct);
        entry_drop(e);
        return;
    }
    for (guint i = 0; i < G_N_ELEMENTS(e->strings); i++)
        if (e->strings[i] == NULL && string_slot_index(e, i) != 0)
            e->strings[i] = read_sysfs_string(sysdir, attrs[i]);

    key = kd_key_device_new();
    key->id = g_strdup(e->port);
    key->vendor_id = e->desc.idVendor;
    key->product_id = e->desc.idProduct;
    key->manufacturer = g_steal_pointer(&e->strings[0]);
    key->product = g_steal_pointer(&e->strings[1]);
    key->serial = g_steal_pointer(&e->strings[2]);
    key->busnum = libusb_get_bus_number(e->dev);
    key->devnum = libusb_get_device_address(e->dev);
    key->fido_path = g_steal_pointer(&e->fido_path);
    key->detection = e->detection;
    e->key = key;
    g_debug("usb %s %04x:%04x: FIDO key at %s", e->port, key->vendor_id, key->product_id,
            key->fido_path != NULL ? key->fido_path : "(no hidraw yet)");
    watch_emit_added(e->watch, key);
}

/* Submits @e's next control transfer, or reports it. Runs outside libusb's event handling. */
static void
entry_advance(Entry *e)
{
    if (e->gone) {
        entry_drop(e);
        return;
    }
    if (e->handle == NULL && e->step != STEP_DONE) {
        int r = libusb_open(e->dev, &e->handle);
        if (r != 0) {
            g_debug("usb %s: cannot open: %s", e->port, libusb_error_name(r));
            e->handle = NULL;
            if (!e->fido && e->hid != NULL && e->hid->len > 0)
                e->unreadable = TRUE; /* neither sysfs nor the device gave a descriptor */
            e->step = STEP_DONE;
        }
    }
    while (e->step != STEP_DONE) {
        if (e->step == STEP_RDESC) {
            if (e->fido || e->string_index >= e->hid->len) {
                /* Not FIDO by descriptor and not on the vendor list: no strings to read. */
                e->step = e->fido || entry_on_vendor_list(e) ? STEP_LANGID : STEP_DONE;
                continue;
            }
            HidInterface *h = &g_array_index(e->hid, HidInterface, e->string_index);
            guint16 len = h->rdesc_len != 0 ? MIN(h->rdesc_len, RDESC_MAX) : RDESC_MAX;
            if (entry_submit(e, LIBUSB_ENDPOINT_IN | LIBUSB_RECIPIENT_INTERFACE,
                             LIBUSB_DT_REPORT << 8, h->number, len))
                return;
            e->unreadable = TRUE;
            e->string_index++;
        } else if (e->step == STEP_LANGID) {
            if (entry_submit(e, LIBUSB_ENDPOINT_IN, LIBUSB_DT_STRING << 8, 0, STRING_MAX))
                return;
            e->step = STEP_DONE;
        } else if (e->step == STEP_STRINGS) {
            if (e->string_index >= G_N_ELEMENTS(e->strings)) {
                e->step = STEP_DONE;
                continue;
            }
            guint8 idx = string_slot_index(e, e->string_index);
            if (idx != 0 &&
                entry_submit(e, LIBUSB_ENDPOINT_IN, (guint16)(LIBUSB_DT_STRING << 8 | idx),
                             e->langid, STRING_MAX))
                return;
            e->string_index++;
        }
    }
    entry_report(e);
}

/* ---- hotplug ---------------------------------------------------------------------------- */

static int LIBUSB_CALL
hotplug_cb(libusb_context *ctx, libusb_device *dev, libusb_hotplug_event event, void *user_data)
{
    KdUsbWatch *watch = user_data;
    HotplugEvent *ev = g_new(HotplugEvent, 1);

    ev->dev = libusb_ref_device(dev);
    ev->event = event;
    g_queue_push_tail(&watch->events, ev);
    return 0;
}

static void
watch_arrived(KdUsbWatch *watch, libusb_device *dev)
{
    Entry *e;
    guint8 ports[8];
    int n;
    GString *port;

    if (g_hash_table_contains(watch->entries, dev))
        return;
    n = libusb_get_port_numbers(dev, ports, sizeof(ports));
    if (n <= 0)
        return; /* a root hub */
    e = g_new0(Entry, 1);
    e->watch = watch;
    e->dev = libusb_ref_device(dev);
    port = g_string_new(NULL);
    g_string_printf(port, "%u-%u", libusb_get_bus_number(dev), ports[0]);
    for (int i = 1; i < n; i++)
        g_string_append_printf(port, ".%u", ports[i]);
    e->port = g_string_free(port, FALSE);
    g_hash_table_insert(watch->entries, dev, e);
    if (libusb_get_device_descriptor(dev, &e->desc) != 0 || !entry_read_config(e)) {
        entry_drop(e); /* no HID interface: not a key */
        return;
    }
    e->deadline = g_get_monotonic_time() + watch->settle_ms * G_TIME_SPAN_MILLISECOND;
    entry_inspect(e);
}

static void
watch_left(KdUsbWatch *watch, libusb_device *dev)
{
    Entry *e = g_hash_table_lookup(watch->entries, dev);
    KdKeyDevice *key;

    if (e == NULL)
        return;
    if (e->key == NULL) {
        /* Not reported yet: stop whatever it was waiting for. */
        e->gone = TRUE;
        if (e->transfer != NULL)
            libusb_cancel_transfer(e->transfer); /* its callback queues the drop */
        else if (!e->queued)
            entry_drop(e);
        return;
    }
    key = kd_key_device_ref(e->key);
    entry_drop(e);
    watch_emit_removed(watch, key);
    kd_key_device_unref(key);
}

/* Runs what libusb's callbacks queued. Handlers may stop the watch: re-check after each. */
static void
watch_drain(KdUsbWatch *watch)
{
    for (;;) {
        HotplugEvent *ev;
        Entry *e;

        /* Hotplug first: a device that left while its last transfer came back is dropped
         * instead of being reported and removed at once. */
        if ((ev = g_queue_pop_head(&watch->events)) != NULL) {
            if (watch->usb != NULL) {
                if (ev->event == LIBUSB_HOTPLUG_EVENT_DEVICE_ARRIVED)
                    watch_arrived(watch, ev->dev);
                else
                    watch_left(watch, ev->dev);
            }
            libusb_unref_device(ev->dev);
            g_free(ev);
        } else if ((e = g_queue_pop_head(&watch->ready)) != NULL) {
            e->queued = FALSE;
            entry_advance(e);
        } else {
            break;
        }
    }
}

static gboolean
watch_idle_cb(gpointer data)
{
    KdUsbWatch *watch = g_object_ref(data);

    g_clear_pointer(&watch->idle, g_source_unref);
    watch_drain(watch);
    g_object_unref(watch);
    return G_SOURCE_REMOVE;
}

void
kd_usb_watch_set_settle_time(KdUsbWatch *watch, guint ms)
{
    g_return_if_fail(KD_IS_USB_WATCH(watch));
    watch->settle_ms = ms;
}

/* ---- start and stop ----------------------------------------------------------------------- */

KdUsbWatch *
kd_usb_watch_new(void)
{
    return g_object_new(KD_TYPE_USB_WATCH, NULL);
}

gboolean
kd_usb_watch_start(KdUsbWatch *watch, GError **error)
{
    const struct libusb_pollfd **fds;
    int r;

    g_return_val_if_fail(KD_IS_USB_WATCH(watch), FALSE);
    if (watch->usb != NULL)
        return TRUE;
    if ((r = libusb_init(&watch->usb)) != 0) {
        watch->usb = NULL;
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED, "libusb: %s", libusb_strerror(r));
        return FALSE;
    }
    if (!libusb_has_capability(LIBUSB_CAP_HAS_HOTPLUG)) {
        g_clear_pointer(&watch->usb, libusb_exit);
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED,
                    "libusb has no hotplug support on this system");
        return FALSE;
    }
    watch->context = g_main_context_ref_thread_default();
    watch->source = g_source_new(&usb_source_funcs, sizeof(UsbSource));
    ((UsbSource *)watch->source)->watch = watch;
    g_source_set_name(watch->source, "keydesk libusb");
    fds = libusb_get_pollfds(watch->usb);
    for (int i = 0; fds != NULL && fds[i] != NULL; i++)
        pollfd_added(fds[i]->fd, fds[i]->events, watch);
    libusb_free_pollfds(fds);
    libusb_set_pollfd_notifiers(watch->usb, pollfd_added, pollfd_removed, watch);
    g_source_attach(watch->source, watch->context);

    /* ENUMERATE: the devices already present come through the callback now, as arrivals. */
    r = libusb_hotplug_register_callback(
        watch->usb, LIBUSB_HOTPLUG_EVENT_DEVICE_ARRIVED | LIBUSB_HOTPLUG_EVENT_DEVICE_LEFT,
        LIBUSB_HOTPLUG_ENUMERATE, LIBUSB_HOTPLUG_MATCH_ANY, LIBUSB_HOTPLUG_MATCH_ANY,
        LIBUSB_HOTPLUG_MATCH_ANY, hotplug_cb, watch, &watch->hotplug);
    if (r != LIBUSB_SUCCESS) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED, "libusb hotplug: %s", libusb_strerror(r));
        kd_usb_watch_stop(watch);
        return FALSE;
    }
    watch->hotplug_registered = TRUE;
    /* Report them from the main loop, so the caller can connect its handlers first. */
    watch->idle = g_idle_source_new();
    g_source_set_priority(watch->idle, G_PRIORITY_DEFAULT);
    g_source_set_callback(watch->idle, watch_idle_cb, watch, NULL);
    g_source_attach(watch->idle, watch->context);
    return TRUE;
}

static void
watch_stop(KdUsbWatch *watch, gboolean emit)
{
    GHashTableIter it;
    gpointer value;
    gint64 until;
    gboolean busy;
    HotplugEvent *ev;
    g_autoptr(GPtrArray) removed = NULL;

    if (watch->usb == NULL)
        return;
    if (watch->hotplug_registered)
        libusb_hotplug_deregister_callback(watch->usb, watch->hotplug);
    watch->hotplug_registered = FALSE;

    /* Transfers in flight must come back before their entries (and libusb) go away. */
    until = g_get_monotonic_time() + STOP_DRAIN_MS * G_TIME_SPAN_MILLISECOND;
    do {
        struct timeval tv = {0, 50000};

        busy = FALSE;
        g_hash_table_iter_init(&it, watch->entries);
        while (g_hash_table_iter_next(&it, NULL, &value)) {
            Entry *e = value;
            if (e->transfer != NULL) {
                e->gone = TRUE;
                libusb_cancel_transfer(e->transfer);
                busy = TRUE;
            }
        }
        if (busy)
            libusb_handle_events_timeout_completed(watch->usb, &tv, NULL);
    } while (busy && g_get_monotonic_time() < until);

    while ((ev = g_queue_pop_head(&watch->events)) != NULL) {
        libusb_unref_device(ev->dev);
        g_free(ev);
    }
    removed = g_ptr_array_new_with_free_func((GDestroyNotify)kd_key_device_unref);
    g_hash_table_iter_init(&it, watch->entries);
    while (g_hash_table_iter_next(&it, NULL, &value)) {
        Entry *e = value;
        if (e->transfer != NULL) {
            /* libusb never gave it back: leak it rather than let libusb write into freed
             * memory later. */
            g_warning("usb %s: a control transfer did not come back", e->port);
            e->transfer = NULL;
            e->handle = NULL;
        }
        if (e->key != NULL)
            g_ptr_array_add(removed, kd_key_device_ref(e->key));
        g_hash_table_iter_remove(&it);
    }
    g_queue_clear(&watch->ready);

    libusb_set_pollfd_notifiers(watch->usb, NULL, NULL, NULL);
    g_hash_table_remove_all(watch->fd_tags);
    if (watch->idle != NULL) {
        g_source_destroy(watch->idle);
        g_clear_pointer(&watch->idle, g_source_unref);
    }
    g_source_destroy(watch->source);
    g_clear_pointer(&watch->source, g_source_unref);
    g_clear_pointer(&watch->usb, libusb_exit);
    g_clear_pointer(&watch->context, g_main_context_unref);

    /* The keys on USB are gone as far as the caller can know; virtual keys stay. */
    for (guint i = 0; i < removed->len; i++) {
        KdKeyDevice *key = g_ptr_array_index(removed, i);
        if (emit)
            watch_emit_removed(watch, key);
        else
            g_ptr_array_remove(watch->keys, key);
    }
}

void
kd_usb_watch_stop(KdUsbWatch *watch)
{
    g_return_if_fail(KD_IS_USB_WATCH(watch));
    watch_stop(watch, TRUE);
}

/* ---- GObject ---------------------------------------------------------------------------- */

static void
kd_usb_watch_dispose(GObject *object)
{
    KdUsbWatch *watch = KD_USB_WATCH(object);

    watch_stop(watch, FALSE);
    G_OBJECT_CLASS(kd_usb_watch_parent_class)->dispose(object);
}

static void
kd_usb_watch_finalize(GObject *object)
{
    KdUsbWatch *watch = KD_USB_WATCH(object);

    g_hash_table_unref(watch->entries);
    g_hash_table_unref(watch->fd_tags);
    g_ptr_array_unref(watch->keys);
    G_OBJECT_CLASS(kd_usb_watch_parent_class)->finalize(object);
}

static void
kd_usb_watch_class_init(KdUsbWatchClass *klass)
{
    GObjectClass *object_class = G_OBJECT_CLASS(klass);

    object_class->dispose = kd_usb_watch_dispose;
    object_class->finalize = kd_usb_watch_finalize;
    signals[SIGNAL_KEY_ADDED] =
        g_signal_new("key-added", G_TYPE_FROM_CLASS(klass), G_SIGNAL_RUN_LAST, 0, NULL, NULL, NULL,
                     G_TYPE_NONE, 1, KD_TYPE_KEY_DEVICE | G_SIGNAL_TYPE_STATIC_SCOPE);
    signals[SIGNAL_KEY_REMOVED] =
        g_signal_new("key-removed", G_TYPE_FROM_CLASS(klass), G_SIGNAL_RUN_LAST, 0, NULL, NULL,
                     NULL, G_TYPE_NONE, 1, KD_TYPE_KEY_DEVICE | G_SIGNAL_TYPE_STATIC_SCOPE);
}

static void
kd_usb_watch_init(KdUsbWatch *watch)
{
    watch->entries =
        g_hash_table_new_full(g_direct_hash, g_direct_equal, NULL, (GDestroyNotify)entry_free);
    watch->fd_tags = g_hash_table_new(g_direct_hash, g_direct_equal);
    watch->keys = g_ptr_array_new_with_free_func((GDestroyNotify)kd_key_device_unref);
    g_queue_init(&watch->events);
    g_queue_init(&watch->ready);
    watch->settle_ms = SYSFS_WAIT_MS;
}
