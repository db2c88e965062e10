/* kd-key: operations on one security key, libfido2 in GTask worker threads. */
#include "hw/kd-key.h"

#include <fido/config.h>
#include <string.h>
#include <glib/gi18n.h>

#include "hw/kd-aaguid-catalogue.h"
#include "hw/kd-pin-rules.h"

#define DEFAULT_ANSWER_MS 5000
#define DEFAULT_TOUCH_MS  30000
#define DEFAULT_REPLUG_MS 60000
/* libfido2's own deadline comes this long after ours, so ours decides (and names the cause);
 * libfido2's still ends the wait when the main loop that runs ours is stuck. */
#define FIDO_GRACE_MS 1000
/* How long one touch-status poll of one key lasts while several keys are asked to blink. */
#define TOUCH_POLL_MS 30
/* Before a second open of a key that answered as U2F-only (see op_open). */
#define U2F_RETRY_US 50000

struct _KdKey {
    GObject parent_instance;
    GMutex lock; /* device, busy */
    KdKeyDevice *device;
    gboolean busy;
    guint answer_ms;
    guint touch_ms;
};

G_DEFINE_TYPE(KdKey, kd_key, G_TYPE_OBJECT)

static void
kd_key_finalize(GObject *object)
{
    KdKey *key = KD_KEY(object);

    kd_key_device_unref(key->device);
    g_mutex_clear(&key->lock);
    G_OBJECT_CLASS(kd_key_parent_class)->finalize(object);
}

static void
kd_key_class_init(KdKeyClass *klass)
{
    G_OBJECT_CLASS(klass)->finalize = kd_key_finalize;
    /* libfido2's debug log prints every frame, PIN-derived data included (encrypted, but a
     * secret's material all the same): only on request, and only in a debug build (no NDEBUG),
     * never in what a desk runs. */
#ifndef NDEBUG
    fido_init(g_getenv("KEYDESK_FIDO_DEBUG") != NULL ? FIDO_DEBUG : 0);
#else
    fido_init(0);
#endif
}

static void
kd_key_init(KdKey *key)
{
    g_mutex_init(&key->lock);
    key->answer_ms = DEFAULT_ANSWER_MS;
    key->touch_ms = DEFAULT_TOUCH_MS;
}

KdKey *
kd_key_new(KdKeyDevice *device)
{
    KdKey *key;

    g_return_val_if_fail(device != NULL, NULL);
    key = g_object_new(KD_TYPE_KEY, NULL);
    key->device = kd_key_device_ref(device);
    return key;
}

KdKeyDevice *
kd_key_get_device(KdKey *key)
{
    KdKeyDevice *device;

    g_return_val_if_fail(KD_IS_KEY(key), NULL);
    g_mutex_lock(&key->lock);
    device = key->device;
    g_mutex_unlock(&key->lock);
    return device;
}

gboolean
kd_key_is_busy(KdKey *key)
{
    gboolean busy;

    g_return_val_if_fail(KD_IS_KEY(key), FALSE);
    g_mutex_lock(&key->lock);
    busy = key->busy;
    g_mutex_unlock(&key->lock);
    return busy;
}

void
kd_key_set_timeouts(KdKey *key, guint answer_ms, guint touch_ms)
{
    g_return_if_fail(KD_IS_KEY(key));
    if (answer_ms > 0)
        key->answer_ms = answer_ms;
    if (touch_ms > 0)
        key->touch_ms = touch_ms;
}

/* --- one operation ---------------------------------------------------------------------------- */

typedef struct {
    KdKeyOp kind;
    GPtrArray *keys;        /* KdKey: the keys this operation holds busy */
    KdKeyDevice *device;    /* single-key operations: the device when the operation started */
    guint budget_ms;        /* for the worker's part */
    GMutex lock;            /* devs and the flags below: the cancel handler runs on any thread */
    GPtrArray *devs;        /* fido_dev_t that are open now (owned by the worker) */
    gboolean cancelled;     /* the caller cancelled */
    gboolean timed_out;     /* the budget ran out */
    gboolean waiting_touch; /* the key is waiting for a touch (a timeout is "no touch") */
    gboolean finished;
    gint64 started_us;
    GCancellable *cancellable;
    gulong cancel_id;
    GSource *timer;
    GMainContext *context;
    /* Arguments. */
    KdSecret *pin;
    KdSecret *new_pin;
    KdKeyCredentialRequest *request;
    guint min_length;
    /* Guided reset. */
    GTask *task; /* weak: the reset's task while it waits for the key to come back */
    GObject *watch;
    gulong added_id, removed_id;
    KdKeyResetState reset_state;
    KdKeyDevice *removed;
    GSource *replug_timer;
    KdKeyResetProgress progress;
    gpointer progress_data;
} Op;

static void
op_free(Op *op)
{
    if (op->keys != NULL)
        g_ptr_array_unref(op->keys);
    kd_key_device_unref(op->device);
    kd_key_device_unref(op->removed);
    g_ptr_array_unref(op->devs);
    g_mutex_clear(&op->lock);
    g_clear_object(&op->cancellable);
    g_clear_pointer(&op->context, g_main_context_unref);
    kd_secret_unref(op->pin);
    kd_secret_unref(op->new_pin);
    kd_key_credential_request_free(op->request);
    g_clear_object(&op->watch);
    g_free(op);
}

/* Marks every key of @keys busy, or none when one already is. */
static gboolean
claim(GPtrArray *keys)
{
    guint i;

    for (i = 0; i < keys->len; i++) {
        KdKey *key = keys->pdata[i];
        gboolean was_busy;

        g_mutex_lock(&key->lock);
        was_busy = key->busy;
        key->busy = TRUE;
        g_mutex_unlock(&key->lock);
        if (was_busy)
            break;
    }
    if (i == keys->len)
        return TRUE;
    for (guint j = 0; j < i; j++) {
        KdKey *key = keys->pdata[j];

        g_mutex_lock(&key->lock);
        key->busy = FALSE;
        g_mutex_unlock(&key->lock);
    }
    return FALSE;
}

static void
release(GPtrArray *keys)
{
    for (guint i = 0; i < keys->len; i++) {
        KdKey *key = keys->pdata[i];

        g_mutex_lock(&key->lock);
        key->busy = FALSE;
        g_mutex_unlock(&key->lock);
    }
}

/* Under op->lock: CTAPHID_CANCEL to every open device, so a wait for a touch ends now. */
static void
op_cancel_devs_locked(Op *op)
{
    for (guint i = 0; i < op->devs->len; i++)
        (void)fido_dev_cancel(op->devs->pdata[i]);
}

static gboolean reset_fail_idle(gpointer data);

static void
on_cancelled(GCancellable *cancellable, gpointer data)
{
    Op *op = data;

    g_mutex_lock(&op->lock);
    if (!op->finished) {
        op->cancelled = TRUE;
        op_cancel_devs_locked(op);
        /* A reset waiting for the key to come back has no worker to notice. */
        if (op->task != NULL) {
            GSource *idle = g_idle_source_new();

            g_source_set_callback(idle, reset_fail_idle, g_object_ref(op->task), g_object_unref);
            g_source_attach(idle, op->context);
            g_source_unref(idle);
        }
    }
    g_mutex_unlock(&op->lock);
}

static gboolean
on_budget(gpointer data)
{
    Op *op = data;

    g_mutex_lock(&op->lock);
    if (!op->finished) {
        op->timed_out = TRUE;
        op_cancel_devs_locked(op);
    }
    g_mutex_unlock(&op->lock);
    return G_SOURCE_REMOVE;
}

/* Starts the clock of the worker's part. */
static void
op_arm(Op *op, guint budget_ms)
{
    op->budget_ms = budget_ms;
    op->started_us = g_get_monotonic_time();
    op->timer = g_timeout_source_new(budget_ms);
    g_source_set_callback(op->timer, on_budget, op, NULL);
    g_source_attach(op->timer, op->context);
}

static gboolean
op_stopped(Op *op)
{
    gboolean stopped;

    g_mutex_lock(&op->lock);
    stopped = op->cancelled || op->timed_out;
    g_mutex_unlock(&op->lock);
    return stopped;
}

static void
op_set_waiting_touch(Op *op, gboolean waiting)
{
    g_mutex_lock(&op->lock);
    op->waiting_touch = waiting;
    g_mutex_unlock(&op->lock);
}

/* Ends the operation's hold on its keys, its timer and its cancellable: called in the worker
 * (or on the main context for a reset that never reached the worker) right before the task
 * returns. */
static void
op_finish(Op *op)
{
    g_mutex_lock(&op->lock);
    op->finished = TRUE;
    op->task = NULL;
    g_mutex_unlock(&op->lock);
    if (op->cancel_id != 0) {
        g_cancellable_disconnect(op->cancellable, op->cancel_id);
        op->cancel_id = 0;
    }
    if (op->timer != NULL) {
        g_source_destroy(op->timer);
        g_clear_pointer(&op->timer, g_source_unref);
    }
    if (op->replug_timer != NULL) {
        g_source_destroy(op->replug_timer);
        g_clear_pointer(&op->replug_timer, g_source_unref);
    }
    if (op->watch != NULL) {
        g_clear_signal_handler(&op->added_id, op->watch);
        g_clear_signal_handler(&op->removed_id, op->watch);
    }
    release(op->keys);
}

/* The error of a failed libfido2 call, in the light of why it may have failed: we cancelled it
 * (caller or budget) or the key did. */
static GError *
op_error(Op *op, int r, int pin_retries, int min_pin_length)
{
    gboolean cancelled, timed_out, touch;
    gint64 elapsed_ms = (g_get_monotonic_time() - op->started_us) / 1000;

    g_mutex_lock(&op->lock);
    cancelled = op->cancelled;
    timed_out = op->timed_out;
    touch = op->waiting_touch;
    g_mutex_unlock(&op->lock);
    /* libfido2's own deadline (FIDO_ERR_RX after the budget) when our timer could not run. */
    if (!cancelled && !timed_out && r == FIDO_ERR_RX && op->budget_ms > 0 &&
        elapsed_ms >= op->budget_ms)
        timed_out = TRUE;
    if (cancelled)
        return kd_key_error_new(KD_KEY_ERROR_CANCELLED, &(KdKeyErrorInfo){r, -1, 0}, NULL);
    if (timed_out)
        return kd_key_error_new(touch ? KD_KEY_ERROR_NO_TOUCH : KD_KEY_ERROR_TIMEOUT,
                                &(KdKeyErrorInfo){r, -1, 0}, NULL);
    return kd_key_error_from_fido(r, op->kind, pin_retries, min_pin_length);
}

static Op *
op_new(KdKeyOp kind, GPtrArray *keys, GCancellable *cancellable)
{
    Op *op = g_new0(Op, 1);

    op->kind = kind;
    op->keys = keys;
    op->devs = g_ptr_array_new();
    g_mutex_init(&op->lock);
    op->cancellable = cancellable != NULL ? g_object_ref(cancellable) : NULL;
    op->context = g_main_context_ref_thread_default();
    if (keys->len > 0)
        op->device = kd_key_get_device(keys->pdata[0]) != NULL
                         ? kd_key_device_ref(kd_key_get_device(keys->pdata[0]))
                         : NULL;
    return op;
}

/*
 * A task for @keys, or NULL when one of them is busy (the callback then gets KD_KEY_ERROR_BUSY).
 * @keys is taken.
 */
static GTask *
op_task_new(gpointer source, KdKeyOp kind, GPtrArray *keys, GCancellable *cancellable,
            GAsyncReadyCallback callback, gpointer user_data, gpointer tag, Op **out)
{
    GTask *task = g_task_new(source, cancellable, callback, user_data);
    Op *op;

    g_task_set_source_tag(task, tag);
    /* Cancellation is reported as KD_KEY_ERROR_CANCELLED by the operation itself. */
    g_task_set_check_cancellable(task, FALSE);
    if (!claim(keys)) {
        g_ptr_array_unref(keys);
        g_task_return_error(task, kd_key_error_new(KD_KEY_ERROR_BUSY, NULL, NULL));
        g_object_unref(task);
        return NULL;
    }
    op = op_new(kind, keys, cancellable);
    g_task_set_task_data(task, op, (GDestroyNotify)op_free);
    if (cancellable != NULL)
        op->cancel_id = g_cancellable_connect(cancellable, G_CALLBACK(on_cancelled), op, NULL);
    *out = op;
    return task;
}

static GPtrArray *
one_key(KdKey *key)
{
    GPtrArray *keys = g_ptr_array_new_with_free_func(g_object_unref);

    g_ptr_array_add(keys, g_object_ref(key));
    return keys;
}

static int
open_once(Op *op, KdKeyDevice *device, fido_dev_t **out)
{
    fido_dev_t *dev;
    int r;

    if ((dev = fido_dev_new()) == NULL)
        return FIDO_ERR_INTERNAL;
    if (device->io != NULL && (r = fido_dev_set_io_functions(dev, device->io)) != FIDO_OK)
        goto fail;
    if ((r = fido_dev_set_timeout(dev, (int)(op->budget_ms + FIDO_GRACE_MS))) != FIDO_OK)
        goto fail;
    /* A device node (or soft key) that cannot be opened is reported as FIDO_ERR_INTERNAL: for
     * the visitor the key is not there. */
    if ((r = fido_dev_open(dev, device->fido_path)) != FIDO_OK) {
        if (r == FIDO_ERR_INTERNAL)
            r = FIDO_ERR_NOTFOUND;
        goto fail;
    }
    *out = dev;
    return FIDO_OK;
fail:
    fido_dev_free(&dev);
    return r;
}

/* Opens @device for the worker and registers it for cancellation. */
static int
op_open(Op *op, KdKeyDevice *device, fido_dev_t **out)
{
    fido_dev_t *dev = NULL;
    int r;

    *out = NULL;
    if (device == NULL || device->fido_path == NULL)
        return FIDO_ERR_NOTFOUND;
    if ((r = open_once(op, device, &dev)) != FIDO_OK)
        return r;
    /* libfido2 falls back to U2F without a word when getInfo fails during the open (ctap2.md
     * §9.1), also when the key was pulled out right then, and forgets that the key said it
     * speaks CBOR. So a U2F answer gets one more open: a real U2F-only key is U2F again, a key
     * that is gone fails now. */
    if (!fido_dev_is_fido2(dev)) {
        (void)fido_dev_close(dev);
        fido_dev_free(&dev);
        /* A key still busy on another channel answers CHANNEL_BUSY to getInfo: give it a
         * moment. */
        g_usleep(U2F_RETRY_US);
        if ((r = open_once(op, device, &dev)) != FIDO_OK)
            return r;
    }
    g_mutex_lock(&op->lock);
    g_ptr_array_add(op->devs, dev);
    /* Cancelled while opening: the cancel handler did not see this device. */
    if (op->cancelled || op->timed_out)
        r = FIDO_ERR_KEEPALIVE_CANCEL;
    g_mutex_unlock(&op->lock);
    *out = dev;
    return r;
}

static void
op_close(Op *op, fido_dev_t **dev)
{
    if (*dev == NULL)
        return;
    g_mutex_lock(&op->lock);
    g_ptr_array_remove(op->devs, *dev);
    g_mutex_unlock(&op->lock);
    (void)fido_dev_close(*dev);
    fido_dev_free(dev);
}

static const char *
pin_string(KdSecret *pin)
{
    if (pin == NULL || kd_secret_get_length(pin) == 0)
        return NULL;
    return kd_secret_get_string(pin);
}

/* --- info ------------------------------------------------------------------------------------- */

void
kd_key_info_free(KdKeyInfo *info)
{
    if (info == NULL)
        return;
    g_strfreev(info->versions);
    g_strfreev(info->extensions);
    g_free(info->aaguid_string);
    g_free(info->model);
    g_free(info->vendor);
    g_free(info->firmware);
    g_free(info);
}

static char **
strv_copy_n(char **v, size_t n)
{
    char **copy = g_new0(char *, n + 1);

    for (size_t i = 0; i < n; i++)
        copy[i] = g_strdup(v[i]);
    return copy;
}

static KdKeyOption
option(const fido_cbor_info_t *ci, const char *name)
{
    char **names = fido_cbor_info_options_name_ptr(ci);
    const bool *values = fido_cbor_info_options_value_ptr(ci);
    size_t n = fido_cbor_info_options_len(ci);

    for (size_t i = 0; i < n; i++)
        if (strcmp(names[i], name) == 0)
            return values[i] ? KD_KEY_OPTION_TRUE : KD_KEY_OPTION_FALSE;
    return KD_KEY_OPTION_ABSENT;
}

/* YubiKeys report 5.4.3 as 0x050403; others a plain number. */
static char *
firmware_text(guint64 v)
{
    if (v == 0)
        return NULL;
    if (v >= 0x10000 && v <= 0xffffff)
        return g_strdup_printf("%u.%u.%u", (guint)(v >> 16), (guint)(v >> 8) & 0xff,
                               (guint)v & 0xff);
    return g_strdup_printf("%" G_GUINT64_FORMAT, v);
}

/* Fills @info from an open device (getInfo is read again: fido_dev_open's copy is private). */
static int
read_info(fido_dev_t *dev, KdKeyInfo *info)
{
    fido_cbor_info_t *ci = NULL;
    size_t n;
    int r;

    info->pin_retries = info->uv_retries = -1;
    info->remaining_credentials = -1;
    info->min_pin_length = KD_PIN_DEFAULT_MIN_LENGTH;
    info->device_major = fido_dev_major(dev);
    info->device_minor = fido_dev_minor(dev);
    info->device_build = fido_dev_build(dev);
    info->capabilities = fido_dev_flags(dev);
    info->fido2 = fido_dev_is_fido2(dev);
    if (!info->fido2) {
        info->ctap = KD_KEY_CTAP_U2F;
        info->versions = g_new0(char *, 1);
        info->extensions = g_new0(char *, 1);
        info->aaguid_string = kd_aaguid_to_string(info->aaguid);
        info->attestation = KD_KEY_ATTESTATION_SELF;
        return FIDO_OK;
    }
    if ((ci = fido_cbor_info_new()) == NULL)
        return FIDO_ERR_INTERNAL;
    if ((r = fido_dev_get_cbor_info(dev, ci)) != FIDO_OK)
        goto fail;
    info->versions = strv_copy_n(fido_cbor_info_versions_ptr(ci), fido_cbor_info_versions_len(ci));
    info->extensions =
        strv_copy_n(fido_cbor_info_extensions_ptr(ci), fido_cbor_info_extensions_len(ci));
    info->ctap = KD_KEY_CTAP_2_0;
    if (g_strv_contains((const char *const *)info->versions, "FIDO_2_1_PRE"))
        info->ctap = KD_KEY_CTAP_2_1_PRE;
    for (char **v = info->versions; *v != NULL; v++)
        if (g_str_has_prefix(*v, "FIDO_2_") && strcmp(*v, "FIDO_2_0") != 0 &&
            strcmp(*v, "FIDO_2_1_PRE") != 0)
            info->ctap = KD_KEY_CTAP_2_1;
    if ((n = fido_cbor_info_aaguid_len(ci)) == 16)
        memcpy(info->aaguid, fido_cbor_info_aaguid_ptr(ci), 16);
    info->aaguid_string = kd_aaguid_to_string(info->aaguid);
    {
        const KdAaguidEntry *e = kd_aaguid_catalogue_lookup(info->aaguid);

        if (e != NULL) {
            info->model = g_strdup(e->name);
            info->vendor = g_strdup(e->vendor);
        }
    }
    info->attestation = kd_key_attestation_guess(info->aaguid);
    info->client_pin = option(ci, "clientPin");
    info->uv = option(ci, "uv");
    info->rk = option(ci, "rk");
    info->cred_mgmt = option(ci, "credMgmt");
    if (info->cred_mgmt == KD_KEY_OPTION_ABSENT)
        info->cred_mgmt = option(ci, "credentialMgmtPreview");
    info->always_uv = option(ci, "alwaysUv");
    info->set_min_pin_length = option(ci, "setMinPINLength");
    info->pin_uv_auth_token = option(ci, "pinUvAuthToken");
    info->authnr_cfg = option(ci, "authnrCfg");
    info->make_cred_uv_not_rqd = option(ci, "makeCredUvNotRqd");
    info->cred_protect = g_strv_contains((const char *const *)info->extensions, "credProtect");
    info->hmac_secret = g_strv_contains((const char *const *)info->extensions, "hmac-secret");
    if (fido_cbor_info_minpinlen(ci) > 0) {
        info->min_pin_length = (guint)MIN(fido_cbor_info_minpinlen(ci), G_MAXUINT);
        info->min_pin_length_known = TRUE;
    }
    info->firmware_version = fido_cbor_info_fwversion(ci);
    info->firmware = firmware_text(info->firmware_version);
    info->remaining_credentials = fido_cbor_info_rk_remaining(ci);
    info->max_msg_size = fido_cbor_info_maxmsgsiz(ci);
    info->force_pin_change = fido_cbor_info_new_pin_required(ci);
    info->pin_set = info->client_pin == KD_KEY_OPTION_TRUE;
    r = FIDO_OK;
fail:
    fido_cbor_info_free(&ci);
    return r;
}

/* The retry counters; a key that will not say keeps -1, a key that is gone is an error. */
static int
read_retries(fido_dev_t *dev, KdKeyInfo *info)
{
    int n, r;

    if (info->client_pin != KD_KEY_OPTION_ABSENT) {
        r = fido_dev_get_retry_count(dev, &n);
        if (r == FIDO_ERR_RX || r == FIDO_ERR_TX)
            return r;
        if (r == FIDO_OK)
            info->pin_retries = n;
    }
    if (info->uv == KD_KEY_OPTION_TRUE) {
        /* Feitian ePass answers getUVRetries with 0x02 (SCENARIOS.md): left at -1. */
        r = fido_dev_get_uv_retry_count(dev, &n);
        if (r == FIDO_ERR_RX || r == FIDO_ERR_TX)
            return r;
        if (r == FIDO_OK)
            info->uv_retries = n;
    }
    return FIDO_OK;
}

static void
info_worker(GTask *task, gpointer source, gpointer data, GCancellable *cancellable)
{
    Op *op = data;
    g_autoptr(KdKeyInfo) info = g_new0(KdKeyInfo, 1);
    fido_dev_t *dev = NULL;
    GError *error = NULL;
    int r;

    if ((r = op_open(op, op->device, &dev)) != FIDO_OK || (r = read_info(dev, info)) != FIDO_OK ||
        (r = read_retries(dev, info)) != FIDO_OK)
        error = op_error(op, r, -1, 0);
    op_close(op, &dev);
    op_finish(op);
    if (error != NULL)
        g_task_return_error(task, error);
    else
        g_task_return_pointer(task, g_steal_pointer(&info), (GDestroyNotify)kd_key_info_free);
}

void
kd_key_get_info_async(KdKey *key, GCancellable *cancellable, GAsyncReadyCallback callback,
                      gpointer user_data)
{
    GTask *task;
    Op *op;

    g_return_if_fail(KD_IS_KEY(key));
    task = op_task_new(key, KD_KEY_OP_INFO, one_key(key), cancellable, callback, user_data,
                       kd_key_get_info_async, &op);
    if (task == NULL)
        return;
    op_arm(op, key->answer_ms);
    g_task_run_in_thread(task, info_worker);
    g_object_unref(task);
}

KdKeyInfo *
kd_key_get_info_finish(KdKey *key, GAsyncResult *result, GError **error)
{
    g_return_val_if_fail(g_task_is_valid(result, key), NULL);
    return g_task_propagate_pointer(G_TASK(result), error);
}

/* --- PIN -------------------------------------------------------------------------------------- */

/* Opens the key and reads what a PIN operation needs to know first. */
static int
open_fido2(Op *op, fido_dev_t **dev, KdKeyInfo *info, GError **error)
{
    int r;

    if ((r = op_open(op, op->device, dev)) != FIDO_OK || (r = read_info(*dev, info)) != FIDO_OK) {
        *error = op_error(op, r, -1, 0);
        return r;
    }
    if (!info->fido2) {
        *error = kd_key_error_new(KD_KEY_ERROR_NOT_FIDO2, NULL, NULL);
        return FIDO_ERR_UNSUPPORTED_OPTION;
    }
    return FIDO_OK;
}

/* libfido2 reports some failures in the middle of an exchange (the key gone between the key
 * agreement and the PIN token) as FIDO_ERR_INTERNAL. Asking the key something cheap tells a
 * removed key from a real internal error. */
static int
probe_removed(Op *op, fido_dev_t *dev, int r)
{
    fido_cbor_info_t *ci;
    int p;

    if (r != FIDO_ERR_INTERNAL || dev == NULL || op_stopped(op) ||
        (ci = fido_cbor_info_new()) == NULL)
        return r;
    (void)fido_dev_set_timeout(dev, 500);
    p = fido_dev_get_cbor_info(dev, ci);
    fido_cbor_info_free(&ci);
    return p == FIDO_ERR_RX || p == FIDO_ERR_TX ? p : r;
}

/* A PIN the key refused as wrong: the error says how many tries are left. */
static GError *
pin_error(Op *op, fido_dev_t *dev, int r, guint min_length)
{
    int retries = -1;

    r = probe_removed(op, dev, r);
    if (r == FIDO_ERR_PIN_INVALID && !op_stopped(op) &&
        fido_dev_get_retry_count(dev, &retries) != FIDO_OK)
        retries = -1;
    if (r == FIDO_ERR_PIN_BLOCKED)
        retries = 0;
    return op_error(op, r, retries, (int)min_length);
}

static void
pin_worker(GTask *task, gpointer source, gpointer data, GCancellable *cancellable)
{
    Op *op = data;
    g_autoptr(KdKeyInfo) info = g_new0(KdKeyInfo, 1);
    fido_dev_t *dev = NULL;
    GError *error = NULL;
    int r;

    if (open_fido2(op, &dev, info, &error) != FIDO_OK)
        goto out;
    if (info->client_pin == KD_KEY_OPTION_ABSENT) {
        error = kd_key_error_new(KD_KEY_ERROR_UNSUPPORTED, NULL,
                                 _("This key cannot be protected with a PIN. Please use a "
                                   "different security key."));
        goto out;
    }
    if (op->kind == KD_KEY_OP_SET_PIN && info->pin_set) {
        error = kd_key_error_new(KD_KEY_ERROR_PIN_ALREADY_SET, NULL, NULL);
        goto out;
    }
    if (op->kind == KD_KEY_OP_CHANGE_PIN && !info->pin_set) {
        error = kd_key_error_new(KD_KEY_ERROR_PIN_NOT_SET, NULL, NULL);
        goto out;
    }
    /* The rule is checked here, against this key's minimum, before the PIN is sent. */
    if (!kd_pin_rules_check(op->new_pin, info->min_pin_length, &error))
        goto out;
    r = fido_dev_set_pin(dev, kd_secret_get_string(op->new_pin), pin_string(op->pin));
    if (r != FIDO_OK)
        error = pin_error(op, dev, r, info->min_pin_length);
out:
    op_close(op, &dev);
    op_finish(op);
    if (error != NULL)
        g_task_return_error(task, error);
    else
        g_task_return_boolean(task, TRUE);
}

static void
pin_async(KdKey *key, KdKeyOp kind, KdSecret *old_pin, KdSecret *new_pin, GCancellable *cancellable,
          GAsyncReadyCallback callback, gpointer user_data, gpointer tag)
{
    GTask *task;
    Op *op;

    task = op_task_new(key, kind, one_key(key), cancellable, callback, user_data, tag, &op);
    if (task == NULL)
        return;
    op->pin = old_pin != NULL ? kd_secret_ref(old_pin) : NULL;
    op->new_pin = kd_secret_ref(new_pin);
    op_arm(op, key->answer_ms);
    g_task_run_in_thread(task, pin_worker);
    g_object_unref(task);
}

void
kd_key_set_pin_async(KdKey *key, KdSecret *pin, GCancellable *cancellable,
                     GAsyncReadyCallback callback, gpointer user_data)
{
    g_return_if_fail(KD_IS_KEY(key) && pin != NULL);
    pin_async(key, KD_KEY_OP_SET_PIN, NULL, pin, cancellable, callback, user_data,
              kd_key_set_pin_async);
}

gboolean
kd_key_set_pin_finish(KdKey *key, GAsyncResult *result, GError **error)
{
    g_return_val_if_fail(g_task_is_valid(result, key), FALSE);
    return g_task_propagate_boolean(G_TASK(result), error);
}

void
kd_key_change_pin_async(KdKey *key, KdSecret *old_pin, KdSecret *new_pin, GCancellable *cancellable,
                        GAsyncReadyCallback callback, gpointer user_data)
{
    g_return_if_fail(KD_IS_KEY(key) && old_pin != NULL && new_pin != NULL);
    pin_async(key, KD_KEY_OP_CHANGE_PIN, old_pin, new_pin, cancellable, callback, user_data,
              kd_key_change_pin_async);
}

gboolean
kd_key_change_pin_finish(KdKey *key, GAsyncResult *result, GError **error)
{
    g_return_val_if_fail(g_task_is_valid(result, key), FALSE);
    return g_task_propagate_boolean(G_TASK(result), error);
}

/* --- the Entra credential --------------------------------------------------------------------- */

static void
make_credential_worker(GTask *task, gpointer source, gpointer data, GCancellable *cancellable)
{
    Op *op = data;
    const KdKeyCredentialRequest *req = op->request;
    g_autoptr(KdKeyInfo) info = g_new0(KdKeyInfo, 1);
    KdKeyCredentialResult *result = NULL;
    fido_cred_t *cred = NULL;
    fido_dev_t *dev = NULL;
    const char *pin = pin_string(op->pin);
    GError *error = NULL;
    int r;

    if (open_fido2(op, &dev, info, &error) != FIDO_OK)
        goto out;
    if (info->force_pin_change) {
        error = kd_key_error_new(KD_KEY_ERROR_PIN_CHANGE_REQUIRED, NULL, NULL);
        goto out;
    }
    if (req->resident_key && info->rk != KD_KEY_OPTION_TRUE) {
        error = kd_key_error_new(KD_KEY_ERROR_UNSUPPORTED, NULL,
                                 _("This key cannot store a passkey (it has no room for "
                                   "discoverable sign-ins). Please use a different security key."));
        goto out;
    }
    if ((cred = fido_cred_new()) == NULL) {
        error = kd_key_error_new(KD_KEY_ERROR_FAILED, NULL, NULL);
        goto out;
    }
    if (pin != NULL && !info->pin_set) {
        error =
            kd_key_error_new(info->client_pin == KD_KEY_OPTION_ABSENT ? KD_KEY_ERROR_UNSUPPORTED
                                                                      : KD_KEY_ERROR_PIN_NOT_SET,
                             NULL, NULL);
        goto out;
    }
    if (pin == NULL && info->pin_set) {
        error = kd_key_error_new(KD_KEY_ERROR_PIN_REQUIRED, NULL, NULL);
        goto out;
    }
    if (pin == NULL && req->uv_required) {
        /* A key that verifies the user itself (fingerprint, or a PIN entered on the device). */
        if (info->uv == KD_KEY_OPTION_TRUE) {
            (void)fido_cred_set_uv(cred, FIDO_OPT_TRUE);
        } else {
            error = kd_key_error_new(info->client_pin == KD_KEY_OPTION_ABSENT
                                         ? KD_KEY_ERROR_UNSUPPORTED
                                         : KD_KEY_ERROR_PIN_NOT_SET,
                                     NULL, NULL);
            goto out;
        }
    }
    if (!kd_key_credential_prepare(cred, dev, req, (const char *const *)info->extensions, &error))
        goto out;
    op_set_waiting_touch(op, TRUE);
    r = fido_dev_make_cred(dev, cred, pin);
    if (r != FIDO_OK) {
        /* A budget that ran out now ran out waiting for the touch (op_error). */
        error = pin_error(op, dev, r, info->min_pin_length);
        goto out;
    }
    op_set_waiting_touch(op, FALSE);
    if ((result = kd_key_credential_result_new(cred, req->client_data_json, &error)) != NULL)
        result->resident_key = req->resident_key;
out:
    fido_cred_free(&cred);
    op_close(op, &dev);
    op_finish(op);
    if (error != NULL)
        g_task_return_error(task, error);
    else
        g_task_return_pointer(task, result, (GDestroyNotify)kd_key_credential_result_free);
}

void
kd_key_make_credential_async(KdKey *key, const KdKeyCredentialRequest *request, KdSecret *pin,
                             GCancellable *cancellable, GAsyncReadyCallback callback,
                             gpointer user_data)
{
    GTask *task;
    Op *op;

    g_return_if_fail(KD_IS_KEY(key) && request != NULL);
    task = op_task_new(key, KD_KEY_OP_MAKE_CREDENTIAL, one_key(key), cancellable, callback,
                       user_data, kd_key_make_credential_async, &op);
    if (task == NULL)
        return;
    op->request = kd_key_credential_request_copy(request);
    op->pin = pin != NULL ? kd_secret_ref(pin) : NULL;
    /* The PIN exchange, then the wait for the touch. */
    op_arm(op, key->answer_ms + (request->timeout_ms > 0 ? request->timeout_ms : key->touch_ms));
    g_task_run_in_thread(task, make_credential_worker);
    g_object_unref(task);
}

KdKeyCredentialResult *
kd_key_make_credential_finish(KdKey *key, GAsyncResult *result, GError **error)
{
    g_return_val_if_fail(g_task_is_valid(result, key), NULL);
    return g_task_propagate_pointer(G_TASK(result), error);
}

/* --- CTAP 2.1 settings ------------------------------------------------------------------------ */

static void
config_worker(GTask *task, gpointer source, gpointer data, GCancellable *cancellable)
{
    Op *op = data;
    g_autoptr(KdKeyInfo) info = g_new0(KdKeyInfo, 1);
    fido_dev_t *dev = NULL;
    GError *error = NULL;
    int r;

    if (open_fido2(op, &dev, info, &error) != FIDO_OK)
        goto out;
    if (info->set_min_pin_length != KD_KEY_OPTION_TRUE ||
        info->authnr_cfg == KD_KEY_OPTION_ABSENT) {
        error = kd_key_error_new(KD_KEY_ERROR_UNSUPPORTED, NULL,
                                 _("This key does not let keydesk change its PIN settings."));
        goto out;
    }
    if (pin_string(op->pin) == NULL && info->pin_set) {
        error = kd_key_error_new(KD_KEY_ERROR_PIN_REQUIRED, NULL, NULL);
        goto out;
    }
    if (op->min_length > 0) {
        if (op->min_length < info->min_pin_length) {
            error = kd_key_error_new(KD_KEY_ERROR_PIN_POLICY,
                                     &(KdKeyErrorInfo){0, -1, (int)info->min_pin_length},
                                     _("This key already needs PINs of at least %u characters, "
                                       "and a key never lowers its minimum."),
                                     info->min_pin_length);
            goto out;
        }
        r = fido_dev_set_pin_minlen(dev, op->min_length, pin_string(op->pin));
    } else {
        if (!info->pin_set) {
            error = kd_key_error_new(KD_KEY_ERROR_PIN_NOT_SET, NULL, NULL);
            goto out;
        }
        r = fido_dev_force_pin_change(dev, pin_string(op->pin));
    }
    if (r != FIDO_OK)
        error = pin_error(op, dev, r, info->min_pin_length);
out:
    op_close(op, &dev);
    op_finish(op);
    if (error != NULL)
        g_task_return_error(task, error);
    else
        g_task_return_boolean(task, TRUE);
}

static void
config_async(KdKey *key, guint min_length, KdSecret *pin, GCancellable *cancellable,
             GAsyncReadyCallback callback, gpointer user_data, gpointer tag)
{
    GTask *task;
    Op *op;

    task = op_task_new(key, KD_KEY_OP_CONFIG, one_key(key), cancellable, callback, user_data, tag,
                       &op);
    if (task == NULL)
        return;
    op->pin = pin != NULL ? kd_secret_ref(pin) : NULL;
    op->min_length = min_length;
    op_arm(op, key->answer_ms);
    g_task_run_in_thread(task, config_worker);
    g_object_unref(task);
}

void
kd_key_set_min_pin_length_async(KdKey *key, guint min_length, KdSecret *pin,
                                GCancellable *cancellable, GAsyncReadyCallback callback,
                                gpointer user_data)
{
    g_return_if_fail(KD_IS_KEY(key) && min_length >= KD_PIN_DEFAULT_MIN_LENGTH &&
                     min_length <= KD_PIN_MAX_BYTES);
    config_async(key, min_length, pin, cancellable, callback, user_data,
                 kd_key_set_min_pin_length_async);
}

gboolean
kd_key_set_min_pin_length_finish(KdKey *key, GAsyncResult *result, GError **error)
{
    g_return_val_if_fail(g_task_is_valid(result, key), FALSE);
    return g_task_propagate_boolean(G_TASK(result), error);
}

void
kd_key_force_pin_change_async(KdKey *key, KdSecret *pin, GCancellable *cancellable,
                              GAsyncReadyCallback callback, gpointer user_data)
{
    g_return_if_fail(KD_IS_KEY(key));
    config_async(key, 0, pin, cancellable, callback, user_data, kd_key_force_pin_change_async);
}

gboolean
kd_key_force_pin_change_finish(KdKey *key, GAsyncResult *result, GError **error)
{
    g_return_val_if_fail(g_task_is_valid(result, key), FALSE);
    return g_task_propagate_boolean(G_TASK(result), error);
}

/* --- guided reset ----------------------------------------------------------------------------- */

const char *
kd_key_reset_state_sentence(KdKeyResetState state)
{
    switch (state) {
    case KD_KEY_RESET_REMOVE:
        return _("Remove the key now.");
    case KD_KEY_RESET_INSERT:
        return _("Insert the key again.");
    case KD_KEY_RESET_TOUCH:
        return _("Touch the key now.");
    }
    return "";
}

/* The same physical key: the same port, or the same vendor, product and serial number. */
static gboolean
same_key(const KdKeyDevice *a, const KdKeyDevice *b)
{
    if (a == NULL || b == NULL)
        return FALSE;
    if (a == b)
        return TRUE;
    if (a->id != NULL && b->id != NULL && strcmp(a->id, b->id) == 0)
        return TRUE;
    return a->vendor_id == b->vendor_id && a->product_id == b->product_id && a->serial != NULL &&
           b->serial != NULL && *a->serial != '\0' && strcmp(a->serial, b->serial) == 0;
}

static void
reset_progress(Op *op, KdKey *key, KdKeyResetState state)
{
    op->reset_state = state;
    if (op->progress != NULL)
        op->progress(key, state, op->progress_data);
}

static void
reset_worker(GTask *task, gpointer source, gpointer data, GCancellable *cancellable)
{
    Op *op = data;
    fido_dev_t *dev = NULL;
    GError *error = NULL;
    int r;

    if ((r = op_open(op, op->device, &dev)) != FIDO_OK) {
        error = op_error(op, r, -1, 0);
        goto out;
    }
    if (!fido_dev_is_fido2(dev)) {
        error = kd_key_error_new(KD_KEY_ERROR_NOT_FIDO2, NULL, NULL);
        goto out;
    }
    op_set_waiting_touch(op, TRUE);
    if ((r = fido_dev_reset(dev)) != FIDO_OK)
        error = op_error(op, r, -1, 0);
out:
    op_close(op, &dev);
    op_finish(op);
    if (error != NULL)
        g_task_return_error(task, error);
    else
        g_task_return_boolean(task, TRUE);
}

/* Ends a reset that is still waiting for the key (main context). */
static void
reset_fail(GTask *task, GError *error)
{
    Op *op = g_task_get_task_data(task);

    if (op->task == NULL) { /* already ended, or the worker runs */
        g_error_free(error);
        return;
    }
    op_finish(op);
    g_task_return_error(task, error);
    g_object_unref(task); /* the reference the wait held */
}

static gboolean
reset_fail_idle(gpointer data)
{
    reset_fail(data, kd_key_error_new(KD_KEY_ERROR_CANCELLED, NULL, NULL));
    return G_SOURCE_REMOVE;
}

static gboolean
on_replug_timeout(gpointer data)
{
    GTask *task = data;
    Op *op = g_task_get_task_data(task);

    g_clear_pointer(&op->replug_timer, g_source_unref);
    reset_fail(task, kd_key_error_new(KD_KEY_ERROR_TIMEOUT, NULL,
                                      op->reset_state == KD_KEY_RESET_REMOVE
                                          ? _("The key was not removed in time. Start the reset "
                                              "again when you are ready.")
                                          : _("The key was not plugged back in in time. Start "
                                              "the reset again when you are ready.")));
    return G_SOURCE_REMOVE;
}

static void
on_reset_key_removed(GObject *watch, KdKeyDevice *device, gpointer data)
{
    GTask *task = data;
    Op *op = g_task_get_task_data(task);
    KdKey *key = g_task_get_source_object(task);

    if (op->task == NULL || op->reset_state != KD_KEY_RESET_REMOVE || !same_key(device, op->device))
        return;
    op->removed = kd_key_device_ref(device);
    reset_progress(op, key, KD_KEY_RESET_INSERT);
}

static void
on_reset_key_added(GObject *watch, KdKeyDevice *device, gpointer data)
{
    GTask *task = data;
    Op *op = g_task_get_task_data(task);
    KdKey *key = g_task_get_source_object(task);

    if (op->task == NULL || op->reset_state != KD_KEY_RESET_INSERT ||
        !same_key(device, op->removed))
        return;
    /* From here the worker owns the operation: no more waiting, no more signals. */
    g_mutex_lock(&op->lock);
    op->task = NULL;
    g_mutex_unlock(&op->lock);
    g_clear_signal_handler(&op->added_id, op->watch);
    g_clear_signal_handler(&op->removed_id, op->watch);
    if (op->replug_timer != NULL) {
        g_source_destroy(op->replug_timer);
        g_clear_pointer(&op->replug_timer, g_source_unref);
    }
    g_mutex_lock(&key->lock);
    kd_key_device_unref(key->device);
    key->device = kd_key_device_ref(device);
    g_mutex_unlock(&key->lock);
    kd_key_device_unref(op->device);
    op->device = kd_key_device_ref(device);
    /* The key counts its reset window from power-up: send the reset first, then say "touch". */
    op_arm(op, key->touch_ms);
    g_task_run_in_thread(task, reset_worker);
    reset_progress(op, key, KD_KEY_RESET_TOUCH);
    g_object_unref(task); /* the reference the wait held */
}

void
kd_key_reset_async(KdKey *key, KdUsbWatch *watch, guint replug_timeout_ms,
                   KdKeyResetProgress progress, gpointer progress_data, GCancellable *cancellable,
                   GAsyncReadyCallback callback, gpointer user_data)
{
    GTask *task;
    Op *op;

    g_return_if_fail(KD_IS_KEY(key) && G_IS_OBJECT(watch));
    task = op_task_new(key, KD_KEY_OP_RESET, one_key(key), cancellable, callback, user_data,
                       kd_key_reset_async, &op);
    if (task == NULL)
        return;
    op->progress = progress;
    op->progress_data = progress_data;
    op->watch = g_object_ref(G_OBJECT(watch));
    /* The signals and the timer hold no reference; the task stays alive through the reference
     * this wait owns, dropped when the worker takes over or the wait fails. */
    op->removed_id =
        g_signal_connect(op->watch, "key-removed", G_CALLBACK(on_reset_key_removed), task);
    op->added_id = g_signal_connect(op->watch, "key-added", G_CALLBACK(on_reset_key_added), task);
    op->replug_timer =
        g_timeout_source_new(replug_timeout_ms > 0 ? replug_timeout_ms : DEFAULT_REPLUG_MS);
    g_source_set_callback(op->replug_timer, on_replug_timeout, task, NULL);
    g_source_attach(op->replug_timer, op->context);
    g_mutex_lock(&op->lock);
    op->task = task;
    g_mutex_unlock(&op->lock);
    reset_progress(op, key, KD_KEY_RESET_REMOVE);
}

gboolean
kd_key_reset_finish(KdKey *key, GAsyncResult *result, GError **error)
{
    g_return_val_if_fail(g_task_is_valid(result, key), FALSE);
    return g_task_propagate_boolean(G_TASK(result), error);
}

/* --- touch to choose -------------------------------------------------------------------------- */

static void
choose_worker(GTask *task, gpointer source, gpointer data, GCancellable *cancellable)
{
    Op *op = data;
    guint n = op->keys->len;
    g_autofree fido_dev_t **devs = g_new0(fido_dev_t *, n);
    KdKey *winner = NULL;
    GError *error = NULL;
    guint open = 0;
    int r = FIDO_ERR_NOTFOUND;

    for (guint i = 0; i < n; i++) {
        if ((r = op_open(op, kd_key_get_device(op->keys->pdata[i]), &devs[i])) != FIDO_OK ||
            (r = fido_dev_get_touch_begin(devs[i])) != FIDO_OK) {
            op_close(op, &devs[i]);
            if (r == FIDO_ERR_KEEPALIVE_CANCEL)
                break;
            continue;
        }
        open++;
    }
    op_set_waiting_touch(op, TRUE);
    while (winner == NULL && open > 0 && !op_stopped(op)) {
        for (guint i = 0; i < n && winner == NULL; i++) {
            int touched = 0;

            if (devs[i] == NULL)
                continue;
            r = fido_dev_get_touch_status(devs[i], &touched, TOUCH_POLL_MS);
            if (r != FIDO_OK) {
                /* A key that gave up (its own touch timeout) or went away. */
                op_close(op, &devs[i]);
                open--;
            } else if (touched) {
                winner = g_object_ref(op->keys->pdata[i]);
            }
        }
    }
    for (guint i = 0; i < n; i++) {
        if (devs[i] != NULL && (winner == NULL || winner != op->keys->pdata[i]))
            (void)fido_dev_cancel(devs[i]);
        op_close(op, &devs[i]);
    }
    if (winner == NULL)
        error = op_stopped(op) || r == FIDO_OK ? op_error(op, FIDO_ERR_RX, -1, 0)
                                               : op_error(op, r, -1, 0);
    op_finish(op);
    if (error != NULL)
        g_task_return_error(task, error);
    else
        g_task_return_pointer(task, winner, g_object_unref);
}

void
kd_key_choose_async(GPtrArray *keys, GCancellable *cancellable, GAsyncReadyCallback callback,
                    gpointer user_data)
{
    GPtrArray *held;
    GTask *task;
    Op *op;

    g_return_if_fail(keys != NULL && keys->len > 0);
    held = g_ptr_array_new_with_free_func(g_object_unref);
    for (guint i = 0; i < keys->len; i++)
        g_ptr_array_add(held, g_object_ref(keys->pdata[i]));
    task = op_task_new(NULL, KD_KEY_OP_TOUCH, held, cancellable, callback, user_data,
                       kd_key_choose_async, &op);
    if (task == NULL)
        return;
    op_arm(op, KD_KEY(keys->pdata[0])->touch_ms);
    g_task_run_in_thread(task, choose_worker);
    g_object_unref(task);
}

KdKey *
kd_key_choose_finish(GAsyncResult *result, GError **error)
{
    g_return_val_if_fail(g_task_is_valid(result, NULL), NULL);
    return g_task_propagate_pointer(G_TASK(result), error);
}
