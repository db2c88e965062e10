/* kd-secret: fixed-size, unswappable buffers for PINs, passes and tokens, wiped when done. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef struct _KdSecret KdSecret;

/* An empty secret that can hold up to @capacity bytes. The buffer never moves or grows, so no
 * stale copy is left behind by a reallocation. */
KdSecret *kd_secret_new(gsize capacity);
/* A secret holding a copy of @data; the caller wipes its own copy. */
KdSecret *kd_secret_new_from(const void *data, gsize len);

KdSecret *kd_secret_ref(KdSecret *secret);
/* Drops a reference; the last one wipes the buffer before freeing it. */
void kd_secret_unref(KdSecret *secret);

/* Zeroes the whole buffer and sets the length to 0. Holders of other references see an empty
 * secret from now on: that is the point, a session that ends takes its secrets with it. */
void kd_secret_wipe(KdSecret *secret);

/* Appends @len bytes; FALSE (and no change) when it would not fit. */
gboolean kd_secret_append(KdSecret *secret, const void *data, gsize len);
/* Removes the last character of UTF-8 text (for a keypad's backspace). */
void kd_secret_backspace(KdSecret *secret);

const guint8 *kd_secret_get_data(const KdSecret *secret);
gsize kd_secret_get_length(const KdSecret *secret);
gsize kd_secret_get_capacity(const KdSecret *secret);
/* The data as a NUL-terminated string (there is always room for the terminator). */
const char *kd_secret_get_string(const KdSecret *secret);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(KdSecret, kd_secret_unref)

G_END_DECLS
