/* softkey-hidraw.c: a SoftKey as /dev/hidrawN of a umockdev testbed (see softkey-hidraw.h).
 *
 * umockdev calls our UMockdevIoctlBase handlers on its worker thread (its own GMainContext).
 * Writes go straight to the key. A read is parked until the key has a report: the key's
 * notify hook (called from whatever thread queued the report, possibly holding the key's lock)
 * only attaches an idle source to umockdev's context, where sk_pump() completes the parked
 * reads. An unplugged key completes them with ENODEV, so libfido2 fails instead of hanging.
 */
#include <errno.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <linux/hidraw.h>

#include "softkey-hidraw.h"
#include "softkey-private.h"

static const uint8_t sk_fido_rdesc[] = {0x06, 0xd0, 0xf1, 0x09, 0x01, 0xa1, 0x01, 0x09, 0x20,
                                        0x15, 0x00, 0x26, 0xff, 0x00, 0x75, 0x08, 0x95, 0x40,
                                        0x81, 0x02, 0x09, 0x21, 0x15, 0x00, 0x26, 0xff, 0x00,
                                        0x75, 0x08, 0x95, 0x40, 0x91, 0x02, 0xc0};

struct SoftKeyHidraw {
    SoftKey *key;
    SkReader *reader; /* all clients of the node share it */
    UMockdevTestbed *testbed;
    UMockdevIoctlBase *handler;
    SoftKeyHidrawInfo info;
    char *manufacturer, *product, *serial;
    unsigned port;
    unsigned n;
    char *devnode;
    char *usb_path;
    char *hidraw_path;
    bool plugged;
    bool node_made;    /* the pty exists and has our handler */
    char *node_target; /* where the testbed's /dev node links (the pty) */
    GMutex lock;
    GQueue reads;      /* UMockdevIoctlClient * (ref) waiting for a report */
    GMainContext *ctx; /* umockdev's worker context (set once, atomically) */
    gint pump_queued;  /* atomic */
};

static void
sk_complete_reads(SoftKeyHidraw *h, long res, int err)
{
    UMockdevIoctlClient *c;

    while ((c = g_queue_pop_head(&h->reads)) != NULL) {
        if (umockdev_ioctl_client_get_connected(c))
            umockdev_ioctl_client_complete(c, res, err);
        g_object_unref(c);
    }
}

/* On umockdev's context: hands queued reports to parked reads. */
static gboolean
sk_pump(gpointer data)
{
    SoftKeyHidraw *h = data;
    uint8_t frame[SK_REPORT_LEN];

    g_atomic_int_set(&h->pump_queued, 0);
    g_mutex_lock(&h->lock);
    for (;;) {
        UMockdevIoctlClient *c = g_queue_peek_head(&h->reads);
        UMockdevIoctlData *arg;
        int r;

        if (c == NULL)
            break;
        if (!umockdev_ioctl_client_get_connected(c)) {
            g_object_unref(g_queue_pop_head(&h->reads));
            continue;
        }
        r = sk_hid_read(h->key, h->reader, frame, 0);
        if (r < 0) {
            sk_complete_reads(h, -1, ENODEV);
            break;
        }
        if (r == 0) {
            /* a report held back (SOFTKEY_FAULT_SLOW): come back when it is due */
            gint64 due = sk_hid_next_report_in(h->key, h->reader);
            if (due >= 0 && g_atomic_int_compare_and_exchange(&h->pump_queued, 0, 1)) {
                GSource *src = g_timeout_source_new((guint)(due / 1000 + 1));
                g_source_set_callback(src, sk_pump, h, NULL);
                g_source_attach(src, h->ctx);
                g_source_unref(src);
            }
            break;
        }
        g_queue_pop_head(&h->reads);
        arg = umockdev_ioctl_client_get_arg(c);
        umockdev_ioctl_data_update(arg, 0, frame, MIN(arg->data_len, SK_REPORT_LEN));
        umockdev_ioctl_client_complete(c, MIN(arg->data_len, SK_REPORT_LEN), 0);
        g_object_unref(c);
    }
    g_mutex_unlock(&h->lock);
    return G_SOURCE_REMOVE;
}

/* Lock-free: the key may call this holding its own lock, while sk_pump() holds h->lock and
 * waits for the key's. */
static void
sk_schedule_pump(SoftKeyHidraw *h)
{
    GMainContext *ctx = g_atomic_pointer_get(&h->ctx);
    GSource *src;

    if (ctx == NULL || !g_atomic_int_compare_and_exchange(&h->pump_queued, 0, 1))
        return;
    src = g_idle_source_new();
    g_source_set_callback(src, sk_pump, h, NULL);
    g_source_attach(src, ctx);
    g_source_unref(src);
}

/* The key queued a report or changed state (any thread, maybe holding the key's lock). */
static void
sk_notify(SoftKey *key, gpointer data)
{
    sk_schedule_pump(data);
}

static void
sk_remember_ctx(SoftKeyHidraw *h)
{
    GMainContext *ctx = g_main_context_get_thread_default();

    if (g_atomic_pointer_get(&h->ctx) == NULL &&
        g_atomic_pointer_compare_and_exchange(&h->ctx, NULL, ctx))
        g_main_context_ref(ctx);
}

static gboolean
sk_handle_read(UMockdevIoctlBase *handler, UMockdevIoctlClient *client, gpointer data)
{
    SoftKeyHidraw *h = data;

    sk_remember_ctx(h);
    g_mutex_lock(&h->lock);
    g_queue_push_tail(&h->reads, g_object_ref(client));
    g_mutex_unlock(&h->lock);
    sk_pump(h);
    return TRUE;
}

static gboolean
sk_handle_write(UMockdevIoctlBase *handler, UMockdevIoctlClient *client, gpointer data)
{
    SoftKeyHidraw *h = data;
    UMockdevIoctlData *arg = umockdev_ioctl_client_get_arg(client);
    uint8_t frame[SK_REPORT_LEN] = {0};

    sk_remember_ctx(h);
    /* hidraw: byte 0 is the report number (0: the FIDO descriptor has no report IDs) */
    if (arg->data_len < 2 || arg->data_len > SK_REPORT_LEN + 1 || arg->data[0] != 0) {
        umockdev_ioctl_client_complete(client, -1, EINVAL);
        return TRUE;
    }
    memcpy(frame, arg->data + 1, (size_t)arg->data_len - 1);
    if (sk_hid_write(h->key, frame) != 0)
        umockdev_ioctl_client_complete(client, -1, ENODEV);
    else
        umockdev_ioctl_client_complete(client, arg->data_len, 0);
    return TRUE;
}

static gboolean
sk_handle_ioctl(UMockdevIoctlBase *handler, UMockdevIoctlClient *client, gpointer data)
{
    SoftKeyHidraw *h = data;
    gulong req = umockdev_ioctl_client_get_request(client);
    UMockdevIoctlData *arg = umockdev_ioctl_client_get_arg(client), *d;
    GError *error = NULL;

    sk_remember_ctx(h);
    if (!softkey_is_plugged(h->key)) {
        umockdev_ioctl_client_complete(client, -1, ENODEV);
        return TRUE;
    }
    switch (req) {
    case HIDIOCGRDESCSIZE: {
        int size = sizeof(sk_fido_rdesc);
        if ((d = umockdev_ioctl_data_resolve(arg, 0, sizeof(int), &error)) == NULL)
            break;
        umockdev_ioctl_data_update(d, 0, (guint8 *)&size, sizeof(size));
        umockdev_ioctl_client_complete(client, 0, 0);
        g_object_unref(d); /* resolve() returns a reference */
        return TRUE;
    }
    case HIDIOCGRDESC: {
        struct hidraw_report_descriptor rd = {0};
        rd.size = sizeof(sk_fido_rdesc);
        memcpy(rd.value, sk_fido_rdesc, sizeof(sk_fido_rdesc));
        if ((d = umockdev_ioctl_data_resolve(arg, 0, sizeof(rd), &error)) == NULL)
            break;
        umockdev_ioctl_data_update(d, 0, (guint8 *)&rd, sizeof(rd));
        umockdev_ioctl_client_complete(client, 0, 0);
        g_object_unref(d); /* resolve() returns a reference */
        return TRUE;
    }
    case HIDIOCGRAWINFO: {
        struct hidraw_devinfo di = {.bustype = 3 /* BUS_USB */,
                                    .vendor = (__s16)h->info.vendor_id,
                                    .product = (__s16)h->info.product_id};
        if ((d = umockdev_ioctl_data_resolve(arg, 0, sizeof(di), &error)) == NULL)
            break;
        umockdev_ioctl_data_update(d, 0, (guint8 *)&di, sizeof(di));
        umockdev_ioctl_client_complete(client, 0, 0);
        g_object_unref(d); /* resolve() returns a reference */
        return TRUE;
    }
    default:
        umockdev_ioctl_client_complete(client, -1, ENOTTY);
        return TRUE;
    }
    g_clear_error(&error);
    umockdev_ioctl_client_complete(client, -1, EFAULT);
    return TRUE;
}

/* --- the sysfs tree ----------------------------------------------------------------------- */

static char *
sk_fill_template(SoftKeyHidraw *h, const char *tmpl)
{
    char *vals[11];
    const char *keys[] = {"@PORT@",         "@DEVNUM@",  "@N@",      "@HIDNUM@",
                          "@VID@",          "@PID@",     "@VID_LE@", "@PID_LE@",
                          "@MANUFACTURER@", "@PRODUCT@", "@SERIAL@"};
    GString *s = g_string_new(tmpl);

    vals[0] = g_strdup_printf("%u", h->port);
    vals[1] = g_strdup_printf("%03u", h->port + 1);
    vals[2] = g_strdup_printf("%u", h->n);
    vals[3] = g_strdup_printf("%04X", h->n + 1);
    vals[4] = g_strdup_printf("%04X", h->info.vendor_id);
    vals[5] = g_strdup_printf("%04X", h->info.product_id);
    vals[6] = g_strdup_printf("%02X%02X", h->info.vendor_id & 0xff, h->info.vendor_id >> 8);
    vals[7] = g_strdup_printf("%02X%02X", h->info.product_id & 0xff, h->info.product_id >> 8);
    vals[8] = g_strdup(h->manufacturer);
    vals[9] = g_strdup(h->product);
    vals[10] = g_strdup(h->serial);
    /* longest placeholders first: @VID_LE@ before @VID@ is not needed (distinct), but keep
     * the order deterministic */
    for (size_t i = 0; i < G_N_ELEMENTS(keys); i++) {
        g_string_replace(s, keys[i], vals[i], 0);
        g_free(vals[i]);
    }
    return g_string_free(s, FALSE);
}

static gboolean
sk_add_tree(SoftKeyHidraw *h, GError **error)
{
    char *path = g_build_filename(SOFTKEY_DATA_DIR, "fido-key.umockdev.in", NULL);
    char *tmpl = NULL, *text = NULL, **blocks = NULL;
    GString *clean = g_string_new(NULL);
    char *root = umockdev_testbed_get_root_dir(h->testbed);
    char *node = g_strconcat(root, h->devnode, NULL);
    gboolean ok = FALSE;
    int fd;

    if (!g_file_get_contents(path, &tmpl, NULL, error))
        goto out;
    text = sk_fill_template(h, tmpl);
    /* drop the comment lines, then add one record at a time, parents first */
    blocks = g_strsplit(text, "\n", -1);
    for (char **l = blocks; *l != NULL; l++) {
        /* umockdev keeps a removed device's pty: a re-plugged key reuses its node */
        if ((*l)[0] == '#' || (h->node_made && g_str_has_prefix(*l, "N: hidraw")))
            continue;
        g_string_append_printf(clean, "%s\n", *l);
    }
    g_strfreev(blocks);
    blocks = g_strsplit(clean->str, "\n\n", -1);
    for (char **b = blocks; *b != NULL; b++) {
        if (g_strstrip(*b)[0] == '\0')
            continue;
        if (!umockdev_testbed_add_from_string(h->testbed, *b, error))
            goto out;
    }
    if (!h->node_made) {
        if (!umockdev_testbed_attach_ioctl(h->testbed, h->devnode, h->handler, error))
            goto out;
        /* trick 3: libfido2 ppoll()s the pty before each read(); keep it readable */
        fd = umockdev_testbed_get_dev_fd(h->testbed, h->devnode);
        if (fd < 0 || write(fd, "x\n", 2) != 2) {
            g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED, "%s: no pty", h->devnode);
            goto out;
        }
        h->node_made = true;
        g_free(h->node_target);
        h->node_target = g_file_read_link(node, NULL);
    } else if (h->node_target != NULL && !g_file_test(node, G_FILE_TEST_EXISTS) &&
               symlink(h->node_target, node) != 0) {
        /* remove_device() took the node (a link to the pty) but umockdev kept the pty */
        g_set_error(error, G_IO_ERROR, g_io_error_from_errno(errno), "%s: %s", node,
                    g_strerror(errno));
        goto out;
    }
    umockdev_testbed_uevent(h->testbed, h->usb_path, "add");
    umockdev_testbed_uevent(h->testbed, h->hidraw_path, "add");
    ok = TRUE;
out:
    g_strfreev(blocks);
    g_string_free(clean, TRUE);
    g_free(text);
    g_free(tmpl);
    g_free(path);
    g_free(node);
    g_free(root);
    return ok;
}

SoftKeyHidraw *
softkey_hidraw_attach(SoftKey *key, UMockdevTestbed *testbed, unsigned port,
                      const SoftKeyHidrawInfo *info, GError **error)
{
    SoftKeyHidraw *h = g_new0(SoftKeyHidraw, 1);
    char *root = umockdev_testbed_get_root_dir(testbed);
    char *hid_dir;

    h->key = sk_ref(key);
    h->reader = sk_reader_open(key);
    h->testbed = g_object_ref(testbed);
    h->port = port;
    h->info.vendor_id = info != NULL && info->vendor_id != 0 ? info->vendor_id : 0x1050;
    h->info.product_id = info != NULL && info->product_id != 0 ? info->product_id : 0x0407;
    h->manufacturer = g_strdup(info != NULL && info->manufacturer ? info->manufacturer : "Yubico");
    h->product = g_strdup(info != NULL && info->product ? info->product : "YubiKey OTP+FIDO+CCID");
    h->serial = g_strdup(info != NULL && info->serial ? info->serial : "0012345678");
    g_mutex_init(&h->lock);
    g_queue_init(&h->reads);
    /* the first hidraw number nobody uses in this testbed */
    for (h->n = 0;; h->n++) {
        char *p = g_strdup_printf("%s/dev/hidraw%u", root, h->n);
        gboolean used = g_file_test(p, G_FILE_TEST_EXISTS);
        g_free(p);
        if (!used)
            break;
    }
    g_free(root);
    h->devnode = g_strdup_printf("/dev/hidraw%u", h->n);
    h->usb_path = g_strdup_printf("/sys/devices/pci0000:00/0000:00:14.0/usb1/1-%u", port);
    hid_dir = g_strdup_printf("%s/1-%u:1.0/0003:%04X:%04X.%04X", h->usb_path, port,
                              h->info.vendor_id, h->info.product_id, h->n + 1);
    h->hidraw_path = g_strdup_printf("%s/hidraw/hidraw%u", hid_dir, h->n);
    g_free(hid_dir);
    h->handler = umockdev_ioctl_base_new();
    g_signal_connect(h->handler, "handle-ioctl", G_CALLBACK(sk_handle_ioctl), h);
    g_signal_connect(h->handler, "handle-read", G_CALLBACK(sk_handle_read), h);
    g_signal_connect(h->handler, "handle-write", G_CALLBACK(sk_handle_write), h);
    sk_set_notify(key, sk_notify, h);
    if (!sk_add_tree(h, error)) {
        softkey_hidraw_free(h);
        return NULL;
    }
    h->plugged = true;
    return h;
}

const char *
softkey_hidraw_get_devnode(SoftKeyHidraw *h)
{
    return h->devnode;
}

const char *
softkey_hidraw_get_sysfs_path(SoftKeyHidraw *h)
{
    return h->usb_path;
}

void
softkey_hidraw_unplug(SoftKeyHidraw *h)
{
    if (!h->plugged)
        return;
    h->plugged = false;
    softkey_unplug(h->key);
    sk_schedule_pump(h);
    umockdev_testbed_uevent(h->testbed, h->hidraw_path, "remove");
    umockdev_testbed_uevent(h->testbed, h->usb_path, "remove");
    /* children first: removing a device leaves its children's bus and class links behind */
    {
        char *hid = g_path_get_dirname(h->hidraw_path); /* …/hidraw */
        char *hid_dev = g_path_get_dirname(hid);        /* …/0003:VVVV:PPPP.NNNN */
        char *intf = g_path_get_dirname(hid_dev);       /* …/1-P:1.0 */

        umockdev_testbed_remove_device(h->testbed, h->hidraw_path);
        umockdev_testbed_remove_device(h->testbed, hid_dev);
        umockdev_testbed_remove_device(h->testbed, intf);
        umockdev_testbed_remove_device(h->testbed, h->usb_path);
        g_free(intf);
        g_free(hid_dev);
        g_free(hid);
    }
}

gboolean
softkey_hidraw_replug(SoftKeyHidraw *h, GError **error)
{
    if (h->plugged)
        return TRUE;
    softkey_plug(h->key);
    if (!sk_add_tree(h, error))
        return FALSE;
    h->plugged = true;
    return TRUE;
}

void
softkey_hidraw_free(SoftKeyHidraw *h)
{
    if (h == NULL)
        return;
    softkey_hidraw_unplug(h);
    sk_set_notify(h->key, NULL, NULL);
    g_mutex_lock(&h->lock);
    sk_complete_reads(h, -1, ENODEV);
    g_mutex_unlock(&h->lock);
    /* a pump may still be queued on umockdev's context: let it run first */
    if (h->ctx != NULL) {
        for (int i = 0; i < 2000 && g_atomic_int_get(&h->pump_queued); i++)
            g_usleep(1000);
        g_main_context_unref(h->ctx);
    }
    g_object_unref(h->handler);
    g_object_unref(h->testbed);
    sk_reader_close(h->key, h->reader);
    sk_unref(h->key);
    g_free(h->manufacturer);
    g_free(h->product);
    g_free(h->serial);
    g_free(h->devnode);
    g_free(h->usb_path);
    g_free(h->hidraw_path);
    g_free(h->node_target);
    g_mutex_clear(&h->lock);
    g_free(h);
}
