/* kd-secret: fixed-size, unswappable buffers for PINs, passes and tokens, wiped when done. */
#include "base/kd-secret.h"

#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

struct _KdSecret {
    gatomicrefcount ref;
    gsize len;
    gsize capacity; /* usable bytes; one more is allocated for the NUL terminator */
    gboolean locked;
    guint8 *data;
};

KdSecret *
kd_secret_new(gsize capacity)
{
    KdSecret *s = g_new0(KdSecret, 1);

    g_atomic_ref_count_init(&s->ref);
    s->capacity = capacity;
    s->data = g_malloc0(capacity + 1);
    /* Best effort: without CAP_IPC_LOCK or a high enough RLIMIT_MEMLOCK this fails, and the
     * secret is still wiped on release. Core dumps never contain it either way. */
    s->locked = mlock(s->data, capacity + 1) == 0;
#ifdef MADV_DONTDUMP
    (void)madvise((void *)((guintptr)s->data & ~(guintptr)(sysconf(_SC_PAGESIZE) - 1)),
                  capacity + 1, MADV_DONTDUMP);
#endif
    return s;
}

KdSecret *
kd_secret_new_from(const void *data, gsize len)
{
    KdSecret *s = kd_secret_new(len);

    if (len > 0)
        memcpy(s->data, data, len);
    s->len = len;
    return s;
}

KdSecret *
kd_secret_ref(KdSecret *secret)
{
    g_return_val_if_fail(secret != NULL, NULL);
    g_atomic_ref_count_inc(&secret->ref);
    return secret;
}

void
kd_secret_unref(KdSecret *secret)
{
    if (secret == NULL)
        return;
    if (!g_atomic_ref_count_dec(&secret->ref))
        return;
    explicit_bzero(secret->data, secret->capacity + 1);
    if (secret->locked)
        munlock(secret->data, secret->capacity + 1);
    g_free(secret->data);
    g_free(secret);
}

void
kd_secret_wipe(KdSecret *secret)
{
    g_return_if_fail(secret != NULL);
    explicit_bzero(secret->data, secret->capacity + 1);
    secret->len = 0;
}

gboolean
kd_secret_append(KdSecret *secret, const void *data, gsize len)
{
    g_return_val_if_fail(secret != NULL, FALSE);
    if (len > secret->capacity - secret->len)
        return FALSE;
    memcpy(secret->data + secret->len, data, len);
    secret->len += len;
    return TRUE;
}

void
kd_secret_backspace(KdSecret *secret)
{
    g_return_if_fail(secret != NULL);
    /* Step back over UTF-8 continuation bytes so a multi-byte character goes as one. */
    while (secret->len > 0) {
        guint8 c = secret->data[--secret->len];
        secret->data[secret->len] = 0;
        if ((c & 0xC0) != 0x80)
            break;
    }
}

const guint8 *
kd_secret_get_data(const KdSecret *secret)
{
    g_return_val_if_fail(secret != NULL, NULL);
    return secret->data;
}

gsize
kd_secret_get_length(const KdSecret *secret)
{
    g_return_val_if_fail(secret != NULL, 0);
    return secret->len;
}

gsize
kd_secret_get_capacity(const KdSecret *secret)
{
    g_return_val_if_fail(secret != NULL, 0);
    return secret->capacity;
}

const char *
kd_secret_get_string(const KdSecret *secret)
{
    g_return_val_if_fail(secret != NULL, NULL);
    return (const char *)secret->data;
}
