/* softkey-io.c: the in-process transport: libfido2's fido_dev_io_t over the soft key.
 *
 * fido_dev_set_io_functions(dev, softkey_io()) + fido_dev_open(dev, softkey_get_path(key)).
 * As testinfra.md §2a observed for libfido2 1.12: write() gets 65 bytes (report ID 0 + one
 * frame) and must return 65; read() is asked for 64 and must return 64; a read that gets no
 * frame within its `ms` budget returns -1 so fido_dev_set_timeout() works; an unplugged key
 * fails every read and write (FIDO_ERR_RX / FIDO_ERR_TX), also a read already blocked.
 * Do not use fido_dev_new_with_info() without calling fido_dev_set_io_functions() again.
 */
#include <string.h>

#include "softkey-private.h"

typedef struct {
    SoftKey *key;
    SkReader *reader;
} SkHandle;

static GMutex sk_registry_lock;
static GHashTable *sk_registry; /* path → SoftKey * (weak) */

void
sk_register_key(SoftKey *key)
{
    g_mutex_lock(&sk_registry_lock);
    if (sk_registry == NULL)
        sk_registry = g_hash_table_new(g_str_hash, g_str_equal);
    g_hash_table_insert(sk_registry, key->path, key);
    g_mutex_unlock(&sk_registry_lock);
}

void
sk_unregister_key(SoftKey *key)
{
    g_mutex_lock(&sk_registry_lock);
    if (sk_registry != NULL)
        g_hash_table_remove(sk_registry, key->path);
    g_mutex_unlock(&sk_registry_lock);
}

static void *
sk_io_open(const char *path)
{
    SkHandle *h = NULL;
    SoftKey *key;

    g_mutex_lock(&sk_registry_lock);
    key = sk_registry != NULL ? g_hash_table_lookup(sk_registry, path) : NULL;
    if (key != NULL && softkey_is_plugged(key)) {
        h = g_new0(SkHandle, 1);
        h->key = sk_ref(key);
        h->reader = sk_reader_open(key);
    }
    g_mutex_unlock(&sk_registry_lock);
    return h;
}

static void
sk_io_close(void *handle)
{
    SkHandle *h = handle;

    if (h == NULL)
        return;
    sk_reader_close(h->key, h->reader);
    sk_unref(h->key);
    g_free(h);
}

static int
sk_io_read(void *handle, unsigned char *buf, size_t len, int ms)
{
    SkHandle *h = handle;
    uint8_t frame[SK_REPORT_LEN];
    int r;

    if (h == NULL || len < SK_REPORT_LEN)
        return -1;
    r = sk_hid_read(h->key, h->reader, frame, ms);
    if (r != SK_REPORT_LEN)
        return -1;
    memcpy(buf, frame, SK_REPORT_LEN);
    return SK_REPORT_LEN;
}

static int
sk_io_write(void *handle, const unsigned char *buf, size_t len)
{
    SkHandle *h = handle;
    uint8_t frame[SK_REPORT_LEN] = {0};

    if (h == NULL || len < 2 || len > SK_REPORT_LEN + 1 || buf[0] != 0)
        return -1;
    memcpy(frame, buf + 1, len - 1);
    if (sk_hid_write(h->key, frame) != 0)
        return -1;
    return (int)len;
}

static const fido_dev_io_t sk_io = {
    .open = sk_io_open,
    .close = sk_io_close,
    .read = sk_io_read,
    .write = sk_io_write,
};

const fido_dev_io_t *
softkey_io(void)
{
    return &sk_io;
}
