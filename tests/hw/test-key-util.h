/* test-key-util: synchronous wrappers around the KdKey operations for the hw-key-* tests (each
 * runs a main loop until the operation's callback), and soft-key devices. Header-only. */
#pragma once

#include <glib.h>
#include <glib/gstdio.h>
#include <string.h>

#include "hw/kd-key.h"
#include "softkey.h"

#define assert_no_error(e)                                  \
    do {                                                    \
        if ((e) != NULL)                                    \
            fail_msg("unexpected error: %s", (e)->message); \
    } while (0)

typedef struct {
    GMainLoop *loop;
    GAsyncResult *result;
} KtWait;

static inline void
kt_done(GObject *source, GAsyncResult *result, gpointer data)
{
    KtWait *w = data;

    w->result = g_object_ref(result);
    g_main_loop_quit(w->loop);
}

static inline void
kt_wait_init(KtWait *w)
{
    w->loop = g_main_loop_new(NULL, FALSE);
    w->result = NULL;
}

/* Runs the loop until the callback; the result is then w->result. */
static inline void
kt_wait_run(KtWait *w)
{
    if (w->result == NULL)
        g_main_loop_run(w->loop);
}

static inline void
kt_wait_clear(KtWait *w)
{
    g_clear_object(&w->result);
    g_clear_pointer(&w->loop, g_main_loop_unref);
}

/* A KdKeyDevice for a soft key, as demo mode would report it. */
static inline KdKeyDevice *
kt_soft_device(SoftKey *sk, const char *id)
{
    KdKeyDevice *d = kd_key_device_new();

    d->id = g_strdup(id);
    d->vendor_id = 0x1209;
    d->product_id = 0x000a;
    d->manufacturer = g_strdup("keydesk");
    d->product = g_strdup("Virtual security key");
    d->serial = g_strdup(id);
    d->fido_path = g_strdup(softkey_get_path(sk));
    d->detection = KD_KEY_DETECTED_VIRTUAL;
    d->io = softkey_io();
    return d;
}

static inline KdKey *
kt_soft_key(SoftKey *sk)
{
    KdKeyDevice *d = kt_soft_device(sk, "virtual-1");
    KdKey *key = kd_key_new(d);

    kd_key_device_unref(d);
    return key;
}

static inline KdKeyInfo *
kt_info(KdKey *key, GError **error)
{
    KtWait w;
    KdKeyInfo *info;

    kt_wait_init(&w);
    kd_key_get_info_async(key, NULL, kt_done, &w);
    kt_wait_run(&w);
    info = kd_key_get_info_finish(key, w.result, error);
    kt_wait_clear(&w);
    return info;
}

static inline gboolean
kt_set_pin(KdKey *key, const char *pin, GError **error)
{
    KdSecret *s = kd_secret_new_from(pin, strlen(pin));
    KtWait w;
    gboolean ok;

    kt_wait_init(&w);
    kd_key_set_pin_async(key, s, NULL, kt_done, &w);
    kd_secret_unref(s);
    kt_wait_run(&w);
    ok = kd_key_set_pin_finish(key, w.result, error);
    kt_wait_clear(&w);
    return ok;
}

static inline gboolean
kt_change_pin(KdKey *key, const char *old_pin, const char *new_pin, GError **error)
{
    KdSecret *o = kd_secret_new_from(old_pin, strlen(old_pin));
    KdSecret *n = kd_secret_new_from(new_pin, strlen(new_pin));
    KtWait w;
    gboolean ok;

    kt_wait_init(&w);
    kd_key_change_pin_async(key, o, n, NULL, kt_done, &w);
    kd_secret_unref(o);
    kd_secret_unref(n);
    kt_wait_run(&w);
    ok = kd_key_change_pin_finish(key, w.result, error);
    kt_wait_clear(&w);
    return ok;
}

/* The request Entra's creation options give (graph-api.md §2.2), with @challenge. */
static inline KdKeyCredentialRequest *
kt_request(const char *challenge_b64url)
{
    KdKeyCredentialRequest *r = kd_key_credential_request_new();
    g_autofree char *cdj =
        g_strdup_printf("{\"type\":\"webauthn.create\",\"challenge\":\"%s\",\"origin\":"
                        "\"https://login.microsoft.com\",\"crossOrigin\":false}",
                        challenge_b64url);

    r->rp_id = g_strdup("login.microsoft.com");
    r->rp_name = g_strdup("Microsoft");
    r->user_id = g_bytes_new("OF:ada-object-id", 16);
    r->user_name = g_strdup("ada@contoso.com");
    r->user_display_name = g_strdup("Ada Lovelace");
    r->client_data_json = g_bytes_new(cdj, strlen(cdj));
    r->exclude_ids = g_ptr_array_new_with_free_func((GDestroyNotify)g_bytes_unref);
    r->resident_key = TRUE;
    r->uv_required = TRUE;
    r->hmac_secret = TRUE;
    r->cred_protect = 1;
    r->enforce_cred_protect = TRUE;
    return r;
}

/* Starts a make-credential; finish with kt_wait_run() + kd_key_make_credential_finish(). */
static inline void
kt_make_credential_start(KdKey *key, const KdKeyCredentialRequest *request, const char *pin,
                         GCancellable *cancellable, KtWait *w)
{
    KdSecret *s = pin != NULL ? kd_secret_new_from(pin, strlen(pin)) : NULL;

    kt_wait_init(w);
    kd_key_make_credential_async(key, request, s, cancellable, kt_done, w);
    kd_secret_unref(s);
}

static inline KdKeyCredentialResult *
kt_make_credential(KdKey *key, const KdKeyCredentialRequest *request, const char *pin,
                   GError **error)
{
    KdSecret *s = pin != NULL ? kd_secret_new_from(pin, strlen(pin)) : NULL;
    KdKeyCredentialResult *result;
    KtWait w;

    kt_wait_init(&w);
    kd_key_make_credential_async(key, request, s, NULL, kt_done, &w);
    kd_secret_unref(s);
    kt_wait_run(&w);
    result = kd_key_make_credential_finish(key, w.result, error);
    kt_wait_clear(&w);
    return result;
}

/* Runs the default main context until @cond(@data) or @ms pass; whether it became true. */
static inline gboolean
kt_spin_until(gboolean (*cond)(gpointer), gpointer data, guint ms)
{
    gint64 end = g_get_monotonic_time() + (gint64)ms * 1000;

    while (!cond(data)) {
        if (g_get_monotonic_time() > end)
            return FALSE;
        g_main_context_iteration(NULL, FALSE);
        g_usleep(1000);
    }
    return TRUE;
}

/* --- python3-fido2 re-verification (tests/hw/verify-credential.py) ---------------------------- */

static inline void
kt_write_bytes(const char *dir, const char *name, GBytes *bytes)
{
    g_autofree char *path = g_build_filename(dir, name, NULL);

    if (!g_file_set_contents(path, g_bytes_get_data(bytes, NULL), (gssize)g_bytes_get_size(bytes),
                             NULL))
        fail_msg("cannot write %s", path);
}

/* Writes what keydesk would POST (and what the verifier must expect) to @root/@name; returns
 * that directory. @full: an x5c chain to the soft key's CA is expected, else self attestation. */
static inline char *
kt_verify_prepare(const char *root, const char *name, const KdKeyCredentialResult *result,
                  const char *challenge, gboolean full)
{
    char *dir = g_build_filename(root, name, NULL);
    g_autofree char *ca = g_build_filename(root, "ca.pem", NULL);
    g_autofree char *meta_path = g_build_filename(dir, "meta.json", NULL);
    g_autofree char *meta = NULL;

    g_mkdir_with_parents(dir, 0700);
    kt_write_bytes(dir, "attestation_object.bin", result->attestation_object);
    kt_write_bytes(dir, "client_data.json", result->client_data_json);
    kt_write_bytes(dir, "credential_id.bin", result->credential_id);
    if (!g_file_set_contents(ca, softkey_attestation_ca_pem(), -1, NULL))
        fail_msg("cannot write %s", ca);
    meta = g_strdup_printf("{\"rp_id\": \"login.microsoft.com\", \"challenge\": \"%s\", "
                           "\"origin\": \"https://login.microsoft.com\", \"attestation\": \"%s\", "
                           "\"aaguid\": \"%s\", \"ca_pem\": \"%s\", \"uv\": true}",
                           challenge, full ? "full" : "self", result->aaguid_string, ca);
    if (!g_file_set_contents(meta_path, meta, -1, NULL))
        fail_msg("cannot write %s", meta_path);
    return dir;
}

static inline void
kt_remove_tree(const char *path)
{
    g_autoptr(GDir) d = g_dir_open(path, 0, NULL);
    const char *name;

    while (d != NULL && (name = g_dir_read_name(d)) != NULL) {
        g_autofree char *child = g_build_filename(path, name, NULL);

        if (g_file_test(child, G_FILE_TEST_IS_DIR))
            kt_remove_tree(child);
        else
            g_unlink(child);
    }
    g_rmdir(path);
}

/* Runs the verifier on @dirs (paths from kt_verify_prepare); fails the test unless every
 * credential verifies and every tampered case is refused. Removes @root afterwards. */
static inline void
kt_verify_run(const char *root, GPtrArray *dirs)
{
    g_autoptr(GPtrArray) argv = g_ptr_array_new();
    g_autofree char *python = g_strdup(KD_PYTHON), *script = g_strdup(KD_VERIFY_SCRIPT);
    g_autofree char *out = NULL, *err = NULL, *pass = NULL;
    g_auto(GStrv) envp = NULL;
    int status = -1;
    guint refused = 0;

    g_ptr_array_add(argv, python);
    g_ptr_array_add(argv, script);
    for (guint i = 0; i < dirs->len; i++)
        g_ptr_array_add(argv, dirs->pdata[i]);
    g_ptr_array_add(argv, NULL);
    /* The interpreter is not ours to sanitize: no preloaded ASan runtime or umockdev in it. */
    envp = g_environ_unsetenv(g_get_environ(), "LD_PRELOAD");
    if (!g_spawn_sync(NULL, (char **)argv->pdata, envp, G_SPAWN_DEFAULT, NULL, NULL, &out, &err,
                      &status, NULL))
        fail_msg("cannot run %s", KD_PYTHON);
    if (!g_spawn_check_wait_status(status, NULL))
        fail_msg("verify-credential.py refused a credential:\n%s%s", out, err);
    pass = g_strdup_printf("verify-credential: PASS (%u credential(s), 0 failed)", dirs->len);
    if (strstr(out, pass) == NULL)
        fail_msg("verify-credential.py did not pass:\n%s%s", out, err);
    /* Every tampered case ran and was refused, for every credential. */
    for (const char *p = out; (p = strstr(p, "REFUSED as it must be: wrong challenge")) != NULL;
         p++)
        refused++;
    if (refused != dirs->len)
        fail_msg("tampered cases missing:\n%s", out);
    kt_remove_tree(root);
}
