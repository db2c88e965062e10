/* softkey.c: the soft key's core: lifecycle and settings, CTAPHID framing, the worker thread
 * that executes CTAP commands, user presence (touch) with KEEPALIVE, getInfo and reset.
 *
 * Data flow: a transport (softkey-io.c in-process, softkey-hidraw.c under umockdev) hands each
 * 64-byte output report to sk_hid_write(). INIT, CANCEL, PING and errors are answered at once;
 * a complete CBOR (or U2F MSG) request is queued for the worker thread, which runs it and
 * queues the reply frames for every open reader (SkReader, one per open "file", as hidraw
 * does). sk_hid_read() hands a reader its queued frames, one report at a time.
 * Everything follows ctap2.md (CTAPHID §1, getInfo §3, reset §6).
 */
#include <string.h>

#include <openssl/rand.h>

#include "softkey-private.h"

#define SK_KEEPALIVE_US   (100 * 1000)
#define SK_MSG_TIMEOUT_US (500 * 1000)

static unsigned sk_serial_counter;

gint64
sk_now(SoftKey *key)
{
    return g_get_monotonic_time() + key->clock_offset_us;
}

/* --- model helpers ------------------------------------------------------------------------ */

static void
sk_option_clear(gpointer p)
{
    g_free(((SkOption *)p)->name);
}

void
sk_model_clear(SkModel *m)
{
    g_clear_pointer(&m->versions, g_ptr_array_unref);
    g_clear_pointer(&m->extensions, g_ptr_array_unref);
    g_clear_pointer(&m->options, g_array_unref);
    g_clear_pointer(&m->protocols, g_array_unref);
    g_clear_pointer(&m->transports, g_ptr_array_unref);
    g_clear_pointer(&m->algorithms, g_array_unref);
}

static void
sk_model_add_option(SkModel *m, const char *name, bool value)
{
    SkOption o = {g_strdup(name), value};

    g_array_append_val(m->options, o);
}

void
sk_model_init_default(SkModel *m)
{
    static const uint8_t aaguid[16] = "softkey-test-001";
    static const char *const versions[] = {"U2F_V2", "FIDO_2_0", "FIDO_2_1"};
    static const char *const exts[] = {"credProtect", "hmac-secret"};
    guint8 protos[] = {2, 1};
    gint alg = -7;

    memset(m, 0, sizeof(*m));
    m->versions = g_ptr_array_new_with_free_func(g_free);
    for (size_t i = 0; i < G_N_ELEMENTS(versions); i++)
        g_ptr_array_add(m->versions, g_strdup(versions[i]));
    m->extensions = g_ptr_array_new_with_free_func(g_free);
    for (size_t i = 0; i < G_N_ELEMENTS(exts); i++)
        g_ptr_array_add(m->extensions, g_strdup(exts[i]));
    m->options = g_array_new(FALSE, FALSE, sizeof(SkOption));
    g_array_set_clear_func(m->options, sk_option_clear);
    sk_model_add_option(m, "rk", true);
    sk_model_add_option(m, "up", true);
    sk_model_add_option(m, "plat", false);
    sk_model_add_option(m, "alwaysUv", false);
    sk_model_add_option(m, "credMgmt", true);
    sk_model_add_option(m, "authnrCfg", true);
    sk_model_add_option(m, "clientPin", false);
    sk_model_add_option(m, "pinUvAuthToken", true);
    sk_model_add_option(m, "setMinPINLength", true);
    sk_model_add_option(m, "makeCredUvNotRqd", true);
    memcpy(m->aaguid, aaguid, 16);
    m->max_msg_size = 1200;
    m->protocols = g_array_new(FALSE, FALSE, sizeof(guint8));
    g_array_append_vals(m->protocols, protos, G_N_ELEMENTS(protos));
    m->max_cred_count_in_list = 8;
    m->max_cred_id_len = 128;
    m->transports = g_ptr_array_new_with_free_func(g_free);
    g_ptr_array_add(m->transports, g_strdup("usb"));
    m->algorithms = g_array_new(FALSE, FALSE, sizeof(gint));
    g_array_append_val(m->algorithms, alg);
    m->max_large_blob = -1;
    m->advertise_force_pin_change = true;
    m->min_pin_length = 4;
    m->fw_version = 0x010000;
    m->max_cred_blob_len = -1;
    m->max_rpids_min_pin = -1;
    m->rk_capacity = 25;
    m->advertise_rk_remaining = true;
    m->factory_always_uv = false;
    m->u2f_only = false;
    m->caps = SK_CAP_WINK | SK_CAP_CBOR | SK_CAP_NMSG;
    m->dev_version[0] = 1;
    m->dev_version[1] = 0;
    m->dev_version[2] = 0;
}

bool
sk_option_present(SoftKey *key, const char *name)
{
    for (guint i = 0; i < key->m.options->len; i++) {
        if (strcmp(g_array_index(key->m.options, SkOption, i).name, name) == 0)
            return true;
    }
    return false;
}

bool
sk_option(SoftKey *key, const char *name)
{
    for (guint i = 0; i < key->m.options->len; i++) {
        SkOption *o = &g_array_index(key->m.options, SkOption, i);
        if (strcmp(o->name, name) == 0)
            return o->value;
    }
    return false;
}

bool
sk_has_extension(SoftKey *key, const char *name)
{
    for (guint i = 0; i < key->m.extensions->len; i++) {
        if (strcmp(g_ptr_array_index(key->m.extensions, i), name) == 0)
            return true;
    }
    return false;
}

bool
sk_has_version(SoftKey *key, const char *prefix)
{
    for (guint i = 0; i < key->m.versions->len; i++) {
        if (g_str_has_prefix(g_ptr_array_index(key->m.versions, i), prefix))
            return true;
    }
    return false;
}

/* --- lifecycle ---------------------------------------------------------------------------- */

static void sk_factory_reset(SoftKey *key);
static void sk_clear_reports(SoftKey *key);
static gpointer sk_worker(gpointer data);

void
sk_power_up(SoftKey *key)
{
    key->powerup_us = sk_now(key);
    key->pin_fails_since_powerup = 0;
    key->rx_active = false;
    sk_pin_regenerate(key);
    sk_token_invalidate(key);
}

static void
sk_factory_reset(SoftKey *key)
{
    g_ptr_array_set_size(key->creds, 0);
    key->pin_set = false;
    explicit_bzero(key->pin_hash, sizeof(key->pin_hash));
    key->pin_cp_len = 0;
    key->pin_retries = SK_PIN_RETRIES_MAX;
    key->pin_fails_since_powerup = 0;
    key->min_pin_len = key->m.min_pin_length > 4 ? (unsigned)key->m.min_pin_length : 4;
    key->force_pin_change = false;
    key->always_uv = key->m.factory_always_uv;
    sk_pin_regenerate(key);
    sk_token_invalidate(key);
}

SoftKey *
sk_new_with_model(SkModel *m)
{
    SoftKey *key = g_new0(SoftKey, 1);

    g_atomic_ref_count_init(&key->ref);
    g_mutex_init(&key->lock);
    g_cond_init(&key->cond);
    key->m = *m;
    key->serial = g_atomic_int_add(&sk_serial_counter, 1);
    g_snprintf(key->path, sizeof(key->path), "softkey://%u", key->serial);
    key->touch_mode = SOFTKEY_TOUCH_AUTO;
    key->up_timeout_ms = 30000;
    key->up_timeout_status = SK_ERR_USER_ACTION_TIMEOUT;
    key->reset_window_ms = 10000;
    key->removal_countdown = -1;
    key->status_fault = -1;
    key->next_cid = 1;
    key->readers = g_ptr_array_new();
    key->creds = g_ptr_array_new_with_free_func(sk_credential_free);
    key->plugged = true;
    sk_factory_reset(key);
    sk_power_up(key);
    key->worker = g_thread_new("softkey", sk_worker, key);
    sk_register_key(key);
    return key;
}

SoftKey *
softkey_new(void)
{
    SkModel m;

    sk_model_init_default(&m);
    return sk_new_with_model(&m);
}

SoftKey *
sk_ref(SoftKey *key)
{
    g_atomic_ref_count_inc(&key->ref);
    return key;
}

void
sk_unref(SoftKey *key)
{
    if (!g_atomic_ref_count_dec(&key->ref))
        return;
    g_mutex_lock(&key->lock);
    key->quit = true;
    key->cancel = true;
    g_cond_broadcast(&key->cond);
    g_mutex_unlock(&key->lock);
    g_thread_join(key->worker);
    g_ptr_array_unref(key->readers);
    g_clear_pointer(&key->req, g_bytes_unref);
    g_ptr_array_unref(key->creds);
    EVP_PKEY_free(key->ka_key);
    X509_free(key->att_cert);
    explicit_bzero(key->pin_hash, sizeof(key->pin_hash));
    explicit_bzero(key->token, sizeof(key->token));
    g_free(key->token_rp_id);
    g_free(key->model_pin);
    sk_model_clear(&key->m);
    g_mutex_clear(&key->lock);
    g_cond_clear(&key->cond);
    explicit_bzero(key, sizeof(*key));
    g_free(key);
}

void
softkey_free(SoftKey *key)
{
    if (key == NULL)
        return;
    sk_unregister_key(key);
    softkey_unplug(key);
    sk_unref(key);
}

/* --- settings ----------------------------------------------------------------------------- */

void
softkey_set_aaguid(SoftKey *key, const uint8_t aaguid[16])
{
    g_mutex_lock(&key->lock);
    memcpy(key->m.aaguid, aaguid, 16);
    g_mutex_unlock(&key->lock);
}

void
softkey_get_aaguid(SoftKey *key, uint8_t aaguid[16])
{
    g_mutex_lock(&key->lock);
    memcpy(aaguid, key->m.aaguid, 16);
    g_mutex_unlock(&key->lock);
}

void
softkey_set_min_pin_length(SoftKey *key, unsigned len)
{
    g_mutex_lock(&key->lock);
    key->min_pin_len = len < 4 ? 4 : len;
    key->m.min_pin_length = key->min_pin_len;
    if (key->pin_set && key->pin_cp_len < key->min_pin_len)
        key->force_pin_change = true;
    g_mutex_unlock(&key->lock);
}

void
softkey_set_touch(SoftKey *key, SoftKeyTouch mode, unsigned touch_delay_ms)
{
    g_mutex_lock(&key->lock);
    key->touch_mode = mode;
    key->touch_delay_ms = touch_delay_ms;
    key->touched = false;
    g_cond_broadcast(&key->cond);
    g_mutex_unlock(&key->lock);
}

void
softkey_set_touch_timeout(SoftKey *key, unsigned timeout_ms, uint8_t status)
{
    g_mutex_lock(&key->lock);
    key->up_timeout_ms = timeout_ms;
    key->up_timeout_status = status != 0 ? status : SK_ERR_USER_ACTION_TIMEOUT;
    g_cond_broadcast(&key->cond);
    g_mutex_unlock(&key->lock);
}

void
softkey_touch(SoftKey *key)
{
    g_mutex_lock(&key->lock);
    key->touched = true;
    g_cond_broadcast(&key->cond);
    g_mutex_unlock(&key->lock);
}

bool
softkey_is_waiting_for_touch(SoftKey *key)
{
    bool r;

    g_mutex_lock(&key->lock);
    r = key->waiting_touch;
    g_mutex_unlock(&key->lock);
    return r;
}

void
softkey_set_fault(SoftKey *key, SoftKeyFault fault, int argument)
{
    g_mutex_lock(&key->lock);
    key->fault = fault;
    key->fault_arg = argument;
    key->garble_next = false;
    key->status_fault = -1;
    key->removal_countdown = -1;
    switch (fault) {
    case SOFTKEY_FAULT_NONE:
        key->removed = false;
        break;
    case SOFTKEY_FAULT_REMOVED:
        if (argument <= 0) {
            key->removed = true;
            key->cancel = true;
            key->generation++;
        } else {
            key->removal_countdown = argument;
        }
        break;
    case SOFTKEY_FAULT_GARBLED:
        key->garble_next = true;
        break;
    case SOFTKEY_FAULT_SLOW:
        break;
    case SOFTKEY_FAULT_CTAP_STATUS:
        key->status_fault = argument & 0xff;
        key->status_fault_cmd = 0;
        break;
    }
    g_cond_broadcast(&key->cond);
    g_mutex_unlock(&key->lock);
    if (key->notify != NULL)
        key->notify(key, key->notify_data);
}

void
softkey_set_status_fault(SoftKey *key, uint8_t ctap_cmd, uint8_t status)
{
    g_mutex_lock(&key->lock);
    key->status_fault = status;
    key->status_fault_cmd = ctap_cmd;
    g_mutex_unlock(&key->lock);
}

void
softkey_set_self_attestation(SoftKey *key, bool self)
{
    g_mutex_lock(&key->lock);
    key->self_attestation = self;
    g_mutex_unlock(&key->lock);
}

void
softkey_set_pin(SoftKey *key, const char *pin)
{
    g_mutex_lock(&key->lock);
    if (pin == NULL) {
        key->pin_set = false;
        explicit_bzero(key->pin_hash, sizeof(key->pin_hash));
        key->pin_cp_len = 0;
    } else {
        sk_pin_store(key, pin);
    }
    key->pin_retries = SK_PIN_RETRIES_MAX;
    key->pin_fails_since_powerup = 0;
    sk_token_invalidate(key);
    g_mutex_unlock(&key->lock);
}

unsigned
softkey_get_pin_retries(SoftKey *key)
{
    unsigned r;

    g_mutex_lock(&key->lock);
    r = key->pin_retries;
    g_mutex_unlock(&key->lock);
    return r;
}

bool
softkey_get_force_pin_change(SoftKey *key)
{
    bool r;

    g_mutex_lock(&key->lock);
    r = key->force_pin_change;
    g_mutex_unlock(&key->lock);
    return r;
}

bool
softkey_get_always_uv(SoftKey *key)
{
    bool r;

    g_mutex_lock(&key->lock);
    r = key->always_uv;
    g_mutex_unlock(&key->lock);
    return r;
}

unsigned
softkey_get_min_pin_length(SoftKey *key)
{
    unsigned r;

    g_mutex_lock(&key->lock);
    r = key->min_pin_len;
    g_mutex_unlock(&key->lock);
    return r;
}

bool
softkey_has_pin(SoftKey *key)
{
    bool r;

    g_mutex_lock(&key->lock);
    r = key->pin_set;
    g_mutex_unlock(&key->lock);
    return r;
}

const char *
softkey_get_model_pin(SoftKey *key)
{
    return key->model_pin;
}

void
softkey_unplug(SoftKey *key)
{
    g_mutex_lock(&key->lock);
    key->plugged = false;
    key->cancel = true;
    key->generation++;
    key->rx_active = false;
    key->req_pending = false;
    sk_clear_reports(key);
    g_cond_broadcast(&key->cond);
    g_mutex_unlock(&key->lock);
    if (key->notify != NULL)
        key->notify(key, key->notify_data);
}

void
softkey_plug(SoftKey *key)
{
    g_mutex_lock(&key->lock);
    /* A power cycle even when the key was never unplugged: whatever it was doing stops and its
     * answer is never sent, as when a real key loses power. */
    key->cancel = true;
    key->generation++;
    key->rx_active = false;
    key->req_pending = false;
    key->plugged = true;
    key->removed = false;
    key->removal_countdown = -1;
    if (key->fault == SOFTKEY_FAULT_REMOVED)
        key->fault = SOFTKEY_FAULT_NONE;
    sk_clear_reports(key);
    sk_power_up(key);
    g_cond_broadcast(&key->cond);
    g_mutex_unlock(&key->lock);
}

bool
softkey_is_plugged(SoftKey *key)
{
    bool r;

    g_mutex_lock(&key->lock);
    r = key->plugged && !key->removed;
    g_mutex_unlock(&key->lock);
    return r;
}

void
softkey_advance_clock(SoftKey *key, unsigned ms)
{
    g_mutex_lock(&key->lock);
    key->clock_offset_us += (gint64)ms * 1000;
    g_mutex_unlock(&key->lock);
}

void
softkey_set_pin_protocols(SoftKey *key, const uint8_t *protocols, size_t n)
{
    g_mutex_lock(&key->lock);
    if (key->m.protocols == NULL)
        key->m.protocols = g_array_new(FALSE, FALSE, sizeof(guint8));
    g_array_set_size(key->m.protocols, 0);
    g_array_append_vals(key->m.protocols, protocols, (guint)n);
    g_mutex_unlock(&key->lock);
}

void
softkey_set_reset_window(SoftKey *key, unsigned ms)
{
    g_mutex_lock(&key->lock);
    key->reset_window_ms = ms;
    g_mutex_unlock(&key->lock);
}

unsigned
softkey_get_credential_count(SoftKey *key)
{
    unsigned n = 0;

    g_mutex_lock(&key->lock);
    for (guint i = 0; i < key->creds->len; i++) {
        if (((SkCredential *)g_ptr_array_index(key->creds, i))->rk)
            n++;
    }
    g_mutex_unlock(&key->lock);
    return n;
}

const char *
softkey_get_path(SoftKey *key)
{
    return key->path;
}

const char *
softkey_attestation_ca_pem(void)
{
    return sk_attestation_ca_pem();
}

uint64_t
softkey_get_busy_us(SoftKey *key)
{
    uint64_t r;

    g_mutex_lock(&key->lock);
    r = key->busy_us;
    g_mutex_unlock(&key->lock);
    return r;
}

void
softkey_reset_busy_us(SoftKey *key)
{
    g_mutex_lock(&key->lock);
    key->busy_us = 0;
    g_mutex_unlock(&key->lock);
}

/* --- CTAPHID output ----------------------------------------------------------------------- */

/* Gives every open reader a copy of @f (taken over); with no reader the report is lost, as it
 * is when no process has the hidraw node open. */
static void
sk_queue_report(SoftKey *key, SkFrame *f)
{
    for (guint i = 0; i < key->readers->len; i++) {
        SkReader *r = g_ptr_array_index(key->readers, i);
        g_queue_push_tail(&r->out, i + 1 < key->readers->len ? g_memdup2(f, sizeof(*f)) : f);
    }
    if (key->readers->len == 0)
        g_free(f);
}

static void
sk_clear_reports(SoftKey *key)
{
    for (guint i = 0; i < key->readers->len; i++)
        g_queue_clear_full(&((SkReader *)g_ptr_array_index(key->readers, i))->out, g_free);
}

SkReader *
sk_reader_open(SoftKey *key)
{
    SkReader *r = g_new0(SkReader, 1);

    g_queue_init(&r->out);
    g_mutex_lock(&key->lock);
    g_ptr_array_add(key->readers, r);
    g_mutex_unlock(&key->lock);
    return r;
}

void
sk_reader_close(SoftKey *key, SkReader *r)
{
    if (r == NULL)
        return;
    g_mutex_lock(&key->lock);
    g_ptr_array_remove(key->readers, r);
    g_mutex_unlock(&key->lock);
    g_queue_clear_full(&r->out, g_free);
    g_free(r);
}

/* Queues one whole message as frames (never interleaved with others: the lock is held). */
void
sk_emit(SoftKey *key, uint32_t cid, uint8_t cmd, const uint8_t *data, size_t len)
{
    gint64 ready = g_get_monotonic_time();
    size_t off = 0;
    uint8_t seq = 0;
    bool garble = key->garble_next;

    if (!key->plugged || key->removed)
        return;
    if (key->fault == SOFTKEY_FAULT_SLOW && key->fault_arg > 0)
        ready += (gint64)key->fault_arg * 1000;
    key->garble_next = false;
    do {
        SkFrame *f = g_new0(SkFrame, 1);
        size_t n;

        f->ready_at = ready;
        f->data[0] = (uint8_t)(cid >> 24);
        f->data[1] = (uint8_t)(cid >> 16);
        f->data[2] = (uint8_t)(cid >> 8);
        f->data[3] = (uint8_t)cid;
        if (off == 0) {
            f->data[4] = 0x80 | cmd;
            f->data[5] = (uint8_t)(len >> 8);
            f->data[6] = (uint8_t)len;
            n = MIN(len, (size_t)SK_INIT_DATA);
            if (n > 0)
                memcpy(f->data + 7, data, n);
            /* A garbled single-frame message carries a command nobody asked for. */
            if (garble && len <= SK_INIT_DATA)
                f->data[4] = 0x80 | 0x3e;
        } else {
            f->data[4] = seq++;
            n = MIN(len - off, (size_t)SK_CONT_DATA);
            memcpy(f->data + 5, data + off, n);
            /* A garbled multi-frame message skips a sequence number. */
            if (garble && seq == 1)
                f->data[4] = 0x05;
        }
        off += n;
        sk_queue_report(key, f);
    } while (off < len);
    g_cond_broadcast(&key->cond);
    if (key->notify != NULL)
        key->notify(key, key->notify_data);
}

static void
sk_emit_error(SoftKey *key, uint32_t cid, uint8_t code)
{
    sk_emit(key, cid, SK_HID_ERROR, &code, 1);
}

static void
sk_emit_keepalive(SoftKey *key, uint32_t cid, uint8_t status)
{
    SkFrame *f;

    if (!key->plugged || key->removed)
        return;
    f = g_new0(SkFrame, 1);
    f->ready_at = g_get_monotonic_time();
    f->data[0] = (uint8_t)(cid >> 24);
    f->data[1] = (uint8_t)(cid >> 16);
    f->data[2] = (uint8_t)(cid >> 8);
    f->data[3] = (uint8_t)cid;
    f->data[4] = 0x80 | SK_HID_KEEPALIVE;
    f->data[6] = 1;
    f->data[7] = status;
    sk_queue_report(key, f);
    g_cond_broadcast(&key->cond);
    if (key->notify != NULL)
        key->notify(key, key->notify_data);
}

/* --- user presence ------------------------------------------------------------------------ */

int
sk_wait_touch(SoftKey *key, uint32_t cid)
{
    gint64 start = g_get_monotonic_time(), next_ka = start, now;
    int r;

    if (key->touch_mode == SOFTKEY_TOUCH_AUTO && key->touch_delay_ms == 0)
        return 0;
    key->waiting_touch = true;
    for (;;) {
        gint64 wake, touch_at = G_MAXINT64;

        now = g_get_monotonic_time();
        if (!key->plugged || key->removed || key->quit) {
            r = SK_NO_REPLY;
            break;
        }
        if (key->cancel) {
            r = SK_ERR_KEEPALIVE_CANCEL;
            break;
        }
        if (key->touch_mode == SOFTKEY_TOUCH_AUTO)
            touch_at = start + (gint64)key->touch_delay_ms * 1000;
        if ((key->touch_mode == SOFTKEY_TOUCH_MANUAL && key->touched) || now >= touch_at) {
            key->touched = false;
            r = 0;
            break;
        }
        if (now - start >= (gint64)key->up_timeout_ms * 1000) {
            r = key->up_timeout_status;
            break;
        }
        if (now >= next_ka) {
            sk_emit_keepalive(key, cid, 0x02); /* UPNEEDED */
            next_ka = now + SK_KEEPALIVE_US;
        }
        wake = MIN(next_ka, start + (gint64)key->up_timeout_ms * 1000);
        wake = MIN(wake, touch_at);
        g_cond_wait_until(&key->cond, &key->lock, wake);
    }
    key->waiting_touch = false;
    key->wait_us += (guint64)(g_get_monotonic_time() - start);
    return r;
}

/* --- CTAP commands handled here: getInfo, reset ------------------------------------------- */

static int
sk_option_cmp(gconstpointer a, gconstpointer b)
{
    const SkOption *x = a, *y = b;
    size_t lx = strlen(x->name), ly = strlen(y->name);

    if (lx != ly)
        return lx < ly ? -1 : 1;
    return memcmp(x->name, y->name, lx);
}

static cbor_item_t *
sk_str_array(GPtrArray *a)
{
    cbor_item_t *arr = cbor_new_definite_array(a->len);

    for (guint i = 0; i < a->len; i++) {
        cbor_item_t *s = cbor_build_string(g_ptr_array_index(a, i));
        cbor_array_push(arr, s);
        cbor_decref(&s);
    }
    return arr;
}

static unsigned
sk_rk_count(SoftKey *key)
{
    unsigned n = 0;

    for (guint i = 0; i < key->creds->len; i++) {
        if (((SkCredential *)g_ptr_array_index(key->creds, i))->rk)
            n++;
    }
    return n;
}

static cbor_item_t *
sk_get_info(SoftKey *key)
{
    SkModel *m = &key->m;
    cbor_item_t *map = cbor_new_definite_map(24);
    GArray *opts;

    sk_cbor_put(map, sk_cbor_uint(1), sk_str_array(m->versions));
    if (m->extensions->len > 0)
        sk_cbor_put(map, sk_cbor_uint(2), sk_str_array(m->extensions));
    sk_cbor_put(map, sk_cbor_uint(3), cbor_build_bytestring(m->aaguid, 16));

    opts = g_array_sized_new(FALSE, FALSE, sizeof(SkOption), m->options->len);
    for (guint i = 0; i < m->options->len; i++) {
        SkOption o = g_array_index(m->options, SkOption, i);
        if (strcmp(o.name, "clientPin") == 0)
            o.value = key->pin_set;
        else if (strcmp(o.name, "alwaysUv") == 0)
            o.value = key->always_uv;
        g_array_append_val(opts, o);
    }
    g_array_sort(opts, sk_option_cmp);
    if (opts->len > 0) {
        cbor_item_t *om = cbor_new_definite_map(opts->len);
        for (guint i = 0; i < opts->len; i++) {
            SkOption *o = &g_array_index(opts, SkOption, i);
            sk_cbor_put(om, cbor_build_string(o->name), cbor_build_bool(o->value));
        }
        sk_cbor_put(map, sk_cbor_uint(4), om);
    }
    g_array_unref(opts);

    if (m->max_msg_size >= 0)
        sk_cbor_put(map, sk_cbor_uint(5), sk_cbor_uint((uint64_t)m->max_msg_size));
    if (m->protocols != NULL) {
        cbor_item_t *arr = cbor_new_definite_array(m->protocols->len);
        for (guint i = 0; i < m->protocols->len; i++) {
            cbor_item_t *v = sk_cbor_uint(g_array_index(m->protocols, guint8, i));
            cbor_array_push(arr, v);
            cbor_decref(&v);
        }
        sk_cbor_put(map, sk_cbor_uint(6), arr);
    }
    if (m->max_cred_count_in_list >= 0)
        sk_cbor_put(map, sk_cbor_uint(7), sk_cbor_uint((uint64_t)m->max_cred_count_in_list));
    if (m->max_cred_id_len >= 0)
        sk_cbor_put(map, sk_cbor_uint(8), sk_cbor_uint((uint64_t)m->max_cred_id_len));
    if (m->transports != NULL)
        sk_cbor_put(map, sk_cbor_uint(9), sk_str_array(m->transports));
    if (m->algorithms != NULL) {
        cbor_item_t *arr = cbor_new_definite_array(m->algorithms->len);
        for (guint i = 0; i < m->algorithms->len; i++) {
            cbor_item_t *e = cbor_new_definite_map(2);
            sk_cbor_put(e, cbor_build_string("alg"),
                        sk_cbor_int(g_array_index(m->algorithms, gint, i)));
            sk_cbor_put(e, cbor_build_string("type"), cbor_build_string("public-key"));
            cbor_array_push(arr, e);
            cbor_decref(&e);
        }
        sk_cbor_put(map, sk_cbor_uint(10), arr);
    }
    if (m->max_large_blob >= 0)
        sk_cbor_put(map, sk_cbor_uint(11), sk_cbor_uint((uint64_t)m->max_large_blob));
    if (m->advertise_force_pin_change || key->force_pin_change)
        sk_cbor_put(map, sk_cbor_uint(12), cbor_build_bool(key->force_pin_change));
    if (m->min_pin_length >= 0 || key->min_pin_len != 4)
        sk_cbor_put(map, sk_cbor_uint(13), sk_cbor_uint(key->min_pin_len));
    if (m->fw_version >= 0)
        sk_cbor_put(map, sk_cbor_uint(14), sk_cbor_uint((uint64_t)m->fw_version));
    if (m->max_cred_blob_len >= 0)
        sk_cbor_put(map, sk_cbor_uint(15), sk_cbor_uint((uint64_t)m->max_cred_blob_len));
    if (m->max_rpids_min_pin >= 0)
        sk_cbor_put(map, sk_cbor_uint(16), sk_cbor_uint((uint64_t)m->max_rpids_min_pin));
    if (m->advertise_rk_remaining) {
        unsigned used = sk_rk_count(key);
        uint64_t cap = m->rk_capacity > 0 ? (uint64_t)m->rk_capacity : 0;
        sk_cbor_put(map, sk_cbor_uint(20), sk_cbor_uint(cap > used ? cap - used : 0));
    }
    return map;
}

static int
sk_reset(SoftKey *key, uint32_t cid)
{
    int r;

    if (sk_now(key) - key->powerup_us > (gint64)key->reset_window_ms * 1000)
        return SK_ERR_NOT_ALLOWED;
    if ((r = sk_wait_touch(key, cid)) != 0)
        return r;
    sk_factory_reset(key);
    return SK_OK;
}

/* Executes one CTAP2 request (command byte + CBOR). Returns the reply or NULL (no reply). */
static GByteArray *
sk_ctap(SoftKey *key, uint32_t cid, const uint8_t *msg, size_t len)
{
    cbor_item_t *req = NULL, *reply = NULL;
    struct cbor_load_result res;
    GByteArray *out = NULL;
    uint8_t cmd = msg[0];
    int r;

    if (key->status_fault >= 0 && (key->status_fault_cmd == 0 || key->status_fault_cmd == cmd)) {
        uint8_t st = (uint8_t)key->status_fault;
        key->status_fault = -1;
        return sk_cbor_reply(st, NULL);
    }
    if (len > 1) {
        req = cbor_load(msg + 1, len - 1, &res);
        if (req == NULL || res.error.code != CBOR_ERR_NONE || res.read != len - 1) {
            r = SK_ERR_INVALID_CBOR;
            goto out;
        }
        if (!cbor_isa_map(req)) {
            r = SK_ERR_CBOR_UNEXPECTED;
            goto out;
        }
    }
    switch (cmd) {
    case 0x04: /* authenticatorGetInfo */
        reply = sk_get_info(key);
        r = SK_OK;
        break;
    case 0x01: /* authenticatorMakeCredential */
        r = req == NULL ? SK_ERR_MISSING_PARAMETER : sk_make_credential(key, cid, req, &reply);
        break;
    case 0x06: /* authenticatorClientPIN */
        if (!sk_option_present(key, "clientPin"))
            r = SK_ERR_INVALID_COMMAND;
        else
            r = req == NULL ? SK_ERR_MISSING_PARAMETER : sk_client_pin(key, req, &reply);
        break;
    case 0x07: /* authenticatorReset */
        r = sk_reset(key, cid);
        break;
    case 0x0a: /* authenticatorCredentialManagement */
    case 0x41: /* ... its CTAP 2.1-pre name */
        /* libfido2 1.12 sends 0x41 even to CTAP 2.1 keys; real 2.1 keys answer both */
        if (!sk_option(key, "credMgmt") && !sk_option(key, "credentialMgmtPreview"))
            r = SK_ERR_INVALID_COMMAND;
        else
            r = req == NULL ? SK_ERR_MISSING_PARAMETER : sk_cred_mgmt(key, req, &reply);
        break;
    case 0x0d: /* authenticatorConfig */
        if (!sk_option(key, "authnrCfg"))
            r = SK_ERR_INVALID_COMMAND;
        else
            r = req == NULL ? SK_ERR_MISSING_PARAMETER : sk_config(key, req);
        break;
    default:
        r = SK_ERR_INVALID_COMMAND;
        break;
    }
out:
    if (r != SK_NO_REPLY)
        out = sk_cbor_reply((uint8_t)r, r == SK_OK ? reply : NULL);
    if (req != NULL)
        cbor_decref(&req);
    if (reply != NULL)
        cbor_decref(&reply);
    return out;
}

static gpointer
sk_worker(gpointer data)
{
    SoftKey *key = data;

    g_mutex_lock(&key->lock);
    while (!key->quit) {
        GBytes *req;
        GByteArray *out = NULL;
        uint32_t cid;
        uint8_t hidcmd;
        guint64 gen;
        gint64 t0;
        gsize len;
        const uint8_t *msg;

        if (!key->req_pending) {
            g_cond_wait(&key->cond, &key->lock);
            continue;
        }
        req = g_steal_pointer(&key->req);
        key->req_pending = false;
        cid = key->req_cid;
        hidcmd = key->req_cmd;
        key->busy = true;
        key->busy_cid = cid;
        key->cancel = false;
        gen = key->generation;
        t0 = g_get_monotonic_time();
        key->wait_us = 0;
        msg = g_bytes_get_data(req, &len);
        if (hidcmd == SK_HID_MSG)
            out = sk_u2f_msg(key, cid, msg, len);
        else
            out = sk_ctap(key, cid, msg, len);
        key->busy_us += (guint64)(g_get_monotonic_time() - t0) - key->wait_us;
        if (out != NULL && gen == key->generation)
            sk_emit(key, cid, hidcmd, out->data, out->len);
        if (out != NULL) {
            explicit_bzero(out->data, out->len);
            g_byte_array_unref(out);
        }
        g_bytes_unref(req);
        key->busy = false;
        key->cancel = false;
    }
    g_mutex_unlock(&key->lock);
    return NULL;
}

/* --- CTAPHID input ------------------------------------------------------------------------ */

static void
sk_dispatch(SoftKey *key, uint32_t cid, uint8_t cmd, const uint8_t *data, size_t len)
{
    switch (cmd) {
    case SK_HID_PING:
        sk_emit(key, cid, SK_HID_PING, data, len);
        break;
    case SK_HID_WINK:
        if (key->m.caps & SK_CAP_WINK)
            sk_emit(key, cid, SK_HID_WINK, NULL, 0);
        else
            sk_emit_error(key, cid, 0x01);
        break;
    case SK_HID_CBOR:
    case SK_HID_MSG:
        /* MSG (U2F) exists unless the key says NMSG; a u2f-only model rejects CBOR although
         * its INIT reply may set the CBOR bit (SCENARIOS.md §7). */
        if ((cmd == SK_HID_CBOR && (key->m.u2f_only || !(key->m.caps & SK_CAP_CBOR))) ||
            (cmd == SK_HID_MSG && (key->m.caps & SK_CAP_NMSG))) {
            sk_emit_error(key, cid, 0x01); /* ERR_INVALID_CMD */
            break;
        }
        if (len == 0) {
            sk_emit_error(key, cid, 0x03);
            break;
        }
        g_clear_pointer(&key->req, g_bytes_unref);
        key->req = g_bytes_new(data, len);
        key->req_cid = cid;
        key->req_cmd = cmd;
        key->req_pending = true;
        g_cond_broadcast(&key->cond);
        break;
    default:
        sk_emit_error(key, cid, 0x01);
        break;
    }
}

/* A message whose next frame does not come within SK_MSG_TIMEOUT_US is dropped (ERR_MSG_TIMEOUT
 * to its channel), so a host that died mid-message does not block the key for good. */
static void
sk_rx_expire(SoftKey *key)
{
    if (key->rx_active && g_get_monotonic_time() - key->rx_last > SK_MSG_TIMEOUT_US) {
        key->rx_active = false;
        sk_emit_error(key, key->rx_cid, 0x05);
    }
}

static void
sk_handle_init(SoftKey *key, uint32_t cid, const uint8_t *f, size_t bcnt)
{
    uint8_t reply[17];
    uint32_t ncid;

    if (bcnt != 8) {
        sk_emit_error(key, cid, 0x03);
        return;
    }
    if (cid == SK_CID_BCAST) {
        ncid = key->next_cid++;
        if (key->next_cid == SK_CID_BCAST)
            key->next_cid = 1;
    } else {
        ncid = cid;
        /* INIT on an allocated channel aborts its transaction. */
        if (key->rx_active && key->rx_cid == cid)
            key->rx_active = false;
        if (key->req_pending && key->req_cid == cid)
            key->req_pending = false;
        if (key->busy && key->busy_cid == cid) {
            key->cancel = true;
            key->generation++;
        }
    }
    memcpy(reply, f + 7, 8);
    reply[8] = (uint8_t)(ncid >> 24);
    reply[9] = (uint8_t)(ncid >> 16);
    reply[10] = (uint8_t)(ncid >> 8);
    reply[11] = (uint8_t)ncid;
    reply[12] = 2;
    reply[13] = key->m.dev_version[0];
    reply[14] = key->m.dev_version[1];
    reply[15] = key->m.dev_version[2];
    reply[16] = key->m.caps;
    sk_emit(key, cid, SK_HID_INIT, reply, sizeof(reply));
}

static void
sk_handle_frame(SoftKey *key, const uint8_t *f)
{
    uint32_t cid = (uint32_t)f[0] << 24 | (uint32_t)f[1] << 16 | (uint32_t)f[2] << 8 | f[3];
    size_t n;

    if (f[4] & 0x80) {
        uint8_t cmd = f[4] & 0x7f;
        size_t bcnt = (size_t)f[5] << 8 | f[6];

        if (cid == 0) {
            sk_emit_error(key, cid, 0x0b);
            return;
        }
        if (cmd == SK_HID_INIT) {
            if (cid != SK_CID_BCAST && cid >= key->next_cid) {
                sk_emit_error(key, cid, 0x0b);
                return;
            }
            sk_handle_init(key, cid, f, bcnt);
            return;
        }
        if (cid == SK_CID_BCAST || cid >= key->next_cid) {
            sk_emit_error(key, cid, 0x0b);
            return;
        }
        if (cmd == SK_HID_CANCEL) {
            /* Never answered; the cancelled request answers KEEPALIVE_CANCEL. */
            if (key->busy && key->busy_cid == cid) {
                key->cancel = true;
                g_cond_broadcast(&key->cond);
            } else if (key->req_pending && key->req_cid == cid) {
                uint8_t st = SK_ERR_KEEPALIVE_CANCEL;
                key->req_pending = false;
                sk_emit(key, cid, key->req_cmd, &st, 1);
            }
            return;
        }
        sk_rx_expire(key);
        if ((key->rx_active && key->rx_cid != cid) ||
            ((key->busy || key->req_pending) &&
             (key->busy ? key->busy_cid : key->req_cid) != cid)) {
            sk_emit_error(key, cid, 0x06); /* ERR_CHANNEL_BUSY */
            return;
        }
        if (key->busy || key->req_pending) {
            sk_emit_error(key, cid, 0x06);
            return;
        }
        if (bcnt > SK_MAX_MSG) {
            sk_emit_error(key, cid, 0x03);
            return;
        }
        key->rx_cid = cid;
        key->rx_cmd = cmd;
        key->rx_len = bcnt;
        key->rx_seq = 0;
        n = MIN(bcnt, (size_t)SK_INIT_DATA);
        memcpy(key->rx_buf, f + 7, n);
        key->rx_have = n;
        key->rx_last = g_get_monotonic_time();
        key->rx_active = key->rx_have < key->rx_len;
        if (!key->rx_active)
            sk_dispatch(key, cid, cmd, key->rx_buf, key->rx_len);
        return;
    }
    /* Continuation frame: ignored unless it continues the message being received. */
    sk_rx_expire(key);
    if (!key->rx_active || cid != key->rx_cid)
        return;
    key->rx_last = g_get_monotonic_time();
    if (f[4] != key->rx_seq) {
        key->rx_active = false;
        sk_emit_error(key, cid, 0x04); /* ERR_INVALID_SEQ */
        return;
    }
    key->rx_seq++;
    n = MIN(key->rx_len - key->rx_have, (size_t)SK_CONT_DATA);
    memcpy(key->rx_buf + key->rx_have, f + 5, n);
    key->rx_have += n;
    if (key->rx_have >= key->rx_len) {
        key->rx_active = false;
        sk_dispatch(key, cid, key->rx_cmd, key->rx_buf, key->rx_len);
    }
}

/* Counts one report against a pending "removed after N reports" fault. */
static void
sk_count_report(SoftKey *key)
{
    if (key->removal_countdown > 0 && --key->removal_countdown == 0) {
        key->removed = true;
        key->cancel = true;
        key->generation++;
        sk_clear_reports(key);
        g_cond_broadcast(&key->cond);
    }
}

int
sk_hid_write(SoftKey *key, const uint8_t frame[SK_REPORT_LEN])
{
    g_mutex_lock(&key->lock);
    if (!key->plugged || key->removed) {
        g_mutex_unlock(&key->lock);
        return -1;
    }
    sk_handle_frame(key, frame);
    sk_count_report(key);
    g_mutex_unlock(&key->lock);
    return 0;
}

int
sk_hid_read(SoftKey *key, SkReader *reader, uint8_t frame[SK_REPORT_LEN], int timeout_ms)
{
    gint64 deadline =
        timeout_ms < 0 ? G_MAXINT64 : g_get_monotonic_time() + (gint64)timeout_ms * 1000;
    int r;

    g_mutex_lock(&key->lock);
    for (;;) {
        SkFrame *f;
        gint64 now = g_get_monotonic_time(), wake = deadline;

        if (!key->plugged || key->removed || key->quit) {
            r = -1;
            break;
        }
        f = g_queue_peek_head(&reader->out);
        if (f != NULL && f->ready_at <= now) {
            g_queue_pop_head(&reader->out);
            memcpy(frame, f->data, SK_REPORT_LEN);
            g_free(f);
            sk_count_report(key);
            r = SK_REPORT_LEN;
            break;
        }
        if (now >= deadline) {
            r = 0;
            break;
        }
        if (f != NULL)
            wake = MIN(wake, f->ready_at);
        if (wake == G_MAXINT64)
            g_cond_wait(&key->cond, &key->lock);
        else
            g_cond_wait_until(&key->cond, &key->lock, wake);
    }
    g_mutex_unlock(&key->lock);
    return r;
}

gint64
sk_hid_next_report_in(SoftKey *key, SkReader *reader)
{
    SkFrame *f;
    gint64 r = -1;

    g_mutex_lock(&key->lock);
    f = g_queue_peek_head(&reader->out);
    if (f != NULL)
        r = MAX(f->ready_at - g_get_monotonic_time(), 0);
    g_mutex_unlock(&key->lock);
    return r;
}

void
sk_set_notify(SoftKey *key, SkNotifyFunc func, gpointer user_data)
{
    g_mutex_lock(&key->lock);
    key->notify = func;
    key->notify_data = user_data;
    g_mutex_unlock(&key->lock);
}
