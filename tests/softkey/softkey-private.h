/* softkey-private.h: the soft key's state and the functions its source files share.
 *
 * Locking: one mutex per key (SoftKey.lock) guards everything below. The key's worker thread
 * holds it while it executes a CTAP command and releases it only while it waits for a touch
 * (g_cond_wait_until), so the transport side (write/read from libfido2's threads) and the
 * settings functions always see a consistent key.
 */
#pragma once

#include <cbor.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "softkey.h"

/* CTAPHID (ctap2.md §1). */
#define SK_REPORT_LEN    64
#define SK_INIT_DATA     57
#define SK_CONT_DATA     59
#define SK_MAX_MSG       (SK_INIT_DATA + 128 * SK_CONT_DATA) /* 7609 */
#define SK_CID_BCAST     0xffffffffu
#define SK_HID_PING      0x01
#define SK_HID_MSG       0x03
#define SK_HID_LOCK      0x04
#define SK_HID_INIT      0x06
#define SK_HID_WINK      0x08
#define SK_HID_CBOR      0x10
#define SK_HID_CANCEL    0x11
#define SK_HID_KEEPALIVE 0x3b
#define SK_HID_ERROR     0x3f
#define SK_CAP_WINK      0x01
#define SK_CAP_CBOR      0x04
#define SK_CAP_NMSG      0x08

/* CTAP2 status codes used by the key (ctap2.md §2.1). */
#define SK_OK                      0x00
#define SK_ERR_INVALID_COMMAND     0x01
#define SK_ERR_INVALID_PARAMETER   0x02
#define SK_ERR_INVALID_LENGTH      0x03
#define SK_ERR_CBOR_UNEXPECTED     0x11
#define SK_ERR_INVALID_CBOR        0x12
#define SK_ERR_MISSING_PARAMETER   0x14
#define SK_ERR_CREDENTIAL_EXCLUDED 0x19
#define SK_ERR_UNSUPPORTED_ALG     0x26
#define SK_ERR_OPERATION_DENIED    0x27
#define SK_ERR_KEY_STORE_FULL      0x28
#define SK_ERR_UNSUPPORTED_OPTION  0x2b
#define SK_ERR_INVALID_OPTION      0x2c
#define SK_ERR_KEEPALIVE_CANCEL    0x2d
#define SK_ERR_USER_ACTION_TIMEOUT 0x2f
#define SK_ERR_NOT_ALLOWED         0x30
#define SK_ERR_PIN_INVALID         0x31
#define SK_ERR_PIN_BLOCKED         0x32
#define SK_ERR_PIN_AUTH_INVALID    0x33
#define SK_ERR_PIN_AUTH_BLOCKED    0x34
#define SK_ERR_PIN_NOT_SET         0x35
#define SK_ERR_PUAT_REQUIRED       0x36
#define SK_ERR_PIN_POLICY          0x37
#define SK_ERR_REQUEST_TOO_LARGE   0x39
#define SK_ERR_INVALID_SUBCOMMAND  0x3e
#define SK_ERR_UNAUTHORIZED_PERM   0x40
#define SK_ERR_OTHER               0x7f
/* Not a CTAP status: the key was unplugged while it worked, nothing is answered. */
#define SK_NO_REPLY (-1)

/* pinUvAuthToken permissions (ctap2.md §4.7). */
#define SK_PERM_MC   0x01
#define SK_PERM_GA   0x02
#define SK_PERM_CM   0x04
#define SK_PERM_BE   0x08
#define SK_PERM_LBW  0x10
#define SK_PERM_ACFG 0x20

#define SK_PIN_RETRIES_MAX   8
#define SK_TOKEN_LIFETIME_US (30 * G_USEC_PER_SEC)

typedef struct {
    char *name;
    bool value;
} SkOption;

/* What getInfo advertises and which features exist (factory state of a model). Optional
 * integer members are -1 when the model does not send them. */
typedef struct {
    GPtrArray *versions;   /* char * */
    GPtrArray *extensions; /* char * */
    GArray *options;       /* SkOption; clientPin and alwaysUv values come from the state */
    uint8_t aaguid[16];
    int64_t max_msg_size;
    GArray *protocols; /* guint8; NULL = member absent */
    int64_t max_cred_count_in_list;
    int64_t max_cred_id_len;
    GPtrArray *transports; /* NULL = absent */
    GArray *algorithms;    /* gint (COSE); NULL = absent */
    int64_t max_large_blob;
    bool advertise_force_pin_change;
    int64_t min_pin_length; /* factory minimum; -1 = member absent (the key still enforces 4) */
    int64_t fw_version;
    int64_t max_cred_blob_len;
    int64_t max_rpids_min_pin;
    int64_t rk_capacity;         /* how many discoverable credentials fit */
    bool advertise_rk_remaining; /* member 0x14 */
    bool factory_always_uv;
    bool u2f_only; /* answers CTAPHID_ERROR to CBOR; U2F over CTAPHID_MSG */
    uint8_t caps;  /* CTAPHID INIT capabilities */
    uint8_t dev_version[3];
} SkModel;

typedef struct {
    uint8_t id[64];
    size_t id_len;
    char *rp_id;
    uint8_t app_hash[32]; /* SHA-256(rp_id), or the U2F application parameter */
    uint8_t *user_id;
    size_t user_id_len;
    uint8_t cred_protect; /* 0 = none */
    bool rk;
    EVP_PKEY *pkey;
} SkCredential;

typedef struct {
    uint8_t data[SK_REPORT_LEN];
    gint64 ready_at; /* monotonic µs; SOFTKEY_FAULT_SLOW delays whole messages */
} SkFrame;

/* One open "file" of the key: like hidraw, every reader gets its own copy of every report
 * queued while it is open (libfido2 picks its own by CID). */
typedef struct {
    GQueue out; /* SkFrame * */
} SkReader;

typedef void (*SkNotifyFunc)(SoftKey *key, gpointer user_data);

struct SoftKey {
    gatomicrefcount ref;
    GMutex lock;
    GCond cond;
    GThread *worker;
    bool quit;
    unsigned serial;
    char path[32];
    SkModel m;

    /* Settings. */
    SoftKeyTouch touch_mode;
    unsigned touch_delay_ms;
    unsigned up_timeout_ms;
    uint8_t up_timeout_status;
    bool touched; /* SOFTKEY_TOUCH_MANUAL: a touch not yet consumed */
    bool waiting_touch;
    bool self_attestation;
    unsigned reset_window_ms;
    gint64 clock_offset_us;
    SoftKeyFault fault;
    int fault_arg;
    int removal_countdown; /* reports until SOFTKEY_FAULT_REMOVED strikes; -1 = none */
    bool garble_next;
    int status_fault;         /* -1 = none */
    uint8_t status_fault_cmd; /* 0 = any CBOR command */
    char *model_pin;

    /* Power and transport. */
    bool plugged;
    bool removed;
    gint64 powerup_us; /* on the key's clock */
    uint32_t next_cid;
    bool rx_active;
    uint32_t rx_cid;
    uint8_t rx_cmd;
    size_t rx_len, rx_have;
    uint8_t rx_seq;
    gint64 rx_last; /* when the last frame of the message being received came */
    uint8_t rx_buf[SK_MAX_MSG];
    bool req_pending;
    uint32_t req_cid;
    uint8_t req_cmd;
    GBytes *req;
    bool busy;
    uint32_t busy_cid;
    bool cancel;
    guint64 generation;
    GPtrArray *readers; /* SkReader * (owned by the transports) */
    SkNotifyFunc notify;
    gpointer notify_data;

    /* CTAP state. */
    bool pin_set;
    uint8_t pin_hash[16];
    unsigned pin_cp_len;
    unsigned pin_retries;
    unsigned pin_fails_since_powerup;
    unsigned min_pin_len;
    bool force_pin_change;
    bool always_uv;
    EVP_PKEY *ka_key;
    uint8_t token[32];
    bool token_in_use;
    uint8_t token_perms;
    char *token_rp_id;
    gint64 token_start;
    GPtrArray *creds; /* SkCredential * */
    uint32_t sign_count;
    X509 *att_cert;
    uint8_t att_cert_aaguid[16];
    guint64 busy_us;
    guint64 wait_us;
};

/* softkey.c */
/* Creates a key around @m (taken over) in its factory state, plugged in. */
SoftKey *sk_new_with_model(SkModel *m);
gint64 sk_now(SoftKey *key);
bool sk_option(SoftKey *key, const char *name);         /* present and true */
bool sk_option_present(SoftKey *key, const char *name); /* present */
bool sk_has_extension(SoftKey *key, const char *name);
bool sk_has_version(SoftKey *key, const char *prefix);
/* Waits for the (simulated) user: 0 when touched, else the CTAP status to answer (or
 * SK_NO_REPLY when unplugged). Sends KEEPALIVE UPNEEDED every 100 ms meanwhile. */
int sk_wait_touch(SoftKey *key, uint32_t cid);
void sk_emit(SoftKey *key, uint32_t cid, uint8_t cmd, const uint8_t *data, size_t len);
void sk_model_init_default(SkModel *m);
void sk_model_clear(SkModel *m);
void sk_power_up(SoftKey *key);
SoftKey *sk_ref(SoftKey *key);
void sk_unref(SoftKey *key);
/* Transport entry points (softkey-io.c and softkey-hidraw.c): one 64-byte report in each
 * direction. write: 0 or -1 (removed). read: 64, 0 (nothing within timeout_ms; -1 = wait for
 * ever) or -1 (removed). */
int sk_hid_write(SoftKey *key, const uint8_t frame[SK_REPORT_LEN]);
SkReader *sk_reader_open(SoftKey *key);
void sk_reader_close(SoftKey *key, SkReader *reader);
int sk_hid_read(SoftKey *key, SkReader *reader, uint8_t frame[SK_REPORT_LEN], int timeout_ms);
/* µs until the next queued report may be read (0: now), or -1 when none is queued. */
gint64 sk_hid_next_report_in(SoftKey *key, SkReader *reader);
void sk_set_notify(SoftKey *key, SkNotifyFunc func, gpointer user_data);

/* softkey-io.c: the registry that maps softkey_get_path() to keys. */
void sk_register_key(SoftKey *key);
void sk_unregister_key(SoftKey *key);

/* softkey-cbor.c: small CBOR helpers (canonical encodings, ctap2.md §2.2). */
cbor_item_t *sk_cbor_uint(uint64_t v);
cbor_item_t *sk_cbor_int(int64_t v);
bool sk_cbor_put(cbor_item_t *map, cbor_item_t *k, cbor_item_t *v);
cbor_item_t *sk_cbor_get(const cbor_item_t *map, uint64_t key);
cbor_item_t *sk_cbor_get_str(const cbor_item_t *map, const char *key);
bool sk_cbor_get_u64(const cbor_item_t *item, uint64_t *v);
bool sk_cbor_get_i64(const cbor_item_t *item, int64_t *v);
/* A definite text string as a new NUL-terminated string, or NULL. */
char *sk_cbor_strdup(const cbor_item_t *item);
/* Serialises @status followed by @map (may be NULL) into a new GByteArray. */
GByteArray *sk_cbor_reply(uint8_t status, cbor_item_t *map);

/* softkey-pin.c */
int sk_client_pin(SoftKey *key, const cbor_item_t *req, cbor_item_t **reply);
int sk_config(SoftKey *key, const cbor_item_t *req);
void sk_pin_regenerate(SoftKey *key);
void sk_token_invalidate(SoftKey *key);
bool sk_protocol_supported(SoftKey *key, uint64_t proto);
/* Verifies pinUvAuthParam over @msg with the current token; checks in-use, lifetime and
 * @perm (and the RP ID binding when @rp_id is not NULL). */
bool sk_token_verify(SoftKey *key, uint64_t proto, const uint8_t *msg, size_t msg_len,
                     const uint8_t *mac, size_t mac_len, uint8_t perm, const char *rp_id);
void sk_pin_store(SoftKey *key, const char *pin);

/* softkey-cred.c */
int sk_make_credential(SoftKey *key, uint32_t cid, const cbor_item_t *req, cbor_item_t **reply);
int sk_cred_mgmt(SoftKey *key, const cbor_item_t *req, cbor_item_t **reply);
void sk_credential_free(gpointer p);
const char *sk_attestation_ca_pem(void);
/* U2F over CTAPHID_MSG (u2f-only models): the APDU reply including the status word. */
GByteArray *sk_u2f_msg(SoftKey *key, uint32_t cid, const uint8_t *apdu, size_t len);
