/* test-softkey-ctap.c: the soft key driven in-process through libfido2's own CTAP code:
 * getInfo, clientPIN protocols 1 and 2, retry counters, makeCredential (attestation, rk,
 * credProtect, hmac-secret, excludeList), touch modes, cancel, reset, authenticatorConfig,
 * alwaysUv, PIN policy, and transport faults. Nothing here sleeps for the real 10 s / 30 s.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <fido/config.h>
#include <fido/credman.h>

#include "softkey.h"

#define RP  "login.microsoft.com"
#define PIN "1234"

static fido_dev_t *
open_dev(SoftKey *key)
{
    fido_dev_t *dev = fido_dev_new();

    assert_non_null(dev);
    assert_int_equal(fido_dev_set_io_functions(dev, softkey_io()), FIDO_OK);
    assert_int_equal(fido_dev_open(dev, softkey_get_path(key)), FIDO_OK);
    return dev;
}

static void
close_dev(fido_dev_t **dev)
{
    fido_dev_close(*dev);
    fido_dev_free(dev);
}

static fido_cbor_info_t *
get_info(fido_dev_t *dev)
{
    fido_cbor_info_t *ci = fido_cbor_info_new();

    assert_int_equal(fido_dev_get_cbor_info(dev, ci), FIDO_OK);
    return ci;
}

static int
info_option(const fido_cbor_info_t *ci, const char *name)
{
    char **names = fido_cbor_info_options_name_ptr(ci);
    const bool *values = fido_cbor_info_options_value_ptr(ci);

    for (size_t i = 0; i < fido_cbor_info_options_len(ci); i++) {
        if (strcmp(names[i], name) == 0)
            return values[i];
    }
    return -1;
}

typedef struct {
    bool rk;
    int prot;
    bool hmac;
    const unsigned char *exclude;
    size_t exclude_len;
    const char *user;
} CredOpts;

static fido_cred_t *
new_cred(const CredOpts *o)
{
    static const char cdj[] = "{\"type\":\"webauthn.create\",\"challenge\":\"AAAA\"}";
    static const unsigned char uid[] = {1, 2, 3, 4};
    const char *user = o != NULL && o->user != NULL ? o->user : NULL;
    fido_cred_t *cred = fido_cred_new();

    assert_int_equal(fido_cred_set_type(cred, COSE_ES256), FIDO_OK);
    assert_int_equal(fido_cred_set_clientdata(cred, (const unsigned char *)cdj, strlen(cdj)),
                     FIDO_OK);
    assert_int_equal(fido_cred_set_rp(cred, RP, "Microsoft"), FIDO_OK);
    /* the user handle is the name's bytes when a name is given */
    if (user != NULL)
        assert_int_equal(
            fido_cred_set_user(cred, (const unsigned char *)user, strlen(user), user, user, NULL),
            FIDO_OK);
    else
        assert_int_equal(fido_cred_set_user(cred, uid, sizeof(uid), "alice", "Alice", NULL),
                         FIDO_OK);
    if (o != NULL && o->rk)
        assert_int_equal(fido_cred_set_rk(cred, FIDO_OPT_TRUE), FIDO_OK);
    if (o != NULL && o->prot)
        assert_int_equal(fido_cred_set_prot(cred, o->prot), FIDO_OK);
    if (o != NULL && o->hmac)
        assert_int_equal(fido_cred_set_extensions(cred, FIDO_EXT_HMAC_SECRET), FIDO_OK);
    if (o != NULL && o->exclude)
        assert_int_equal(fido_cred_exclude(cred, o->exclude, o->exclude_len), FIDO_OK);
    return cred;
}

static int
make_cred(fido_dev_t *dev, const char *pin, const CredOpts *o, fido_cred_t **out)
{
    fido_cred_t *cred = new_cred(o);
    int r = fido_dev_make_cred(dev, cred, pin);

    if (out != NULL)
        *out = cred;
    else
        fido_cred_free(&cred);
    return r;
}

/* --- getInfo ------------------------------------------------------------------------------ */

static void
test_get_info(void **state)
{
    SoftKey *key = softkey_new();
    fido_dev_t *dev = open_dev(key);
    fido_cbor_info_t *ci = get_info(dev);
    uint8_t aaguid[16];
    bool v21 = false;

    assert_true(fido_dev_is_fido2(dev));
    assert_true(fido_dev_supports_pin(dev));
    assert_false(fido_dev_has_pin(dev));
    assert_true(fido_dev_supports_cred_prot(dev));
    assert_true(fido_dev_supports_permissions(dev));
    for (size_t i = 0; i < fido_cbor_info_versions_len(ci); i++)
        v21 |= strcmp(fido_cbor_info_versions_ptr(ci)[i], "FIDO_2_1") == 0;
    assert_true(v21);
    softkey_get_aaguid(key, aaguid);
    assert_int_equal(fido_cbor_info_aaguid_len(ci), 16);
    assert_memory_equal(fido_cbor_info_aaguid_ptr(ci), aaguid, 16);
    assert_int_equal(info_option(ci, "clientPin"), 0);
    assert_int_equal(info_option(ci, "pinUvAuthToken"), 1);
    assert_int_equal(info_option(ci, "setMinPINLength"), 1);
    assert_int_equal(info_option(ci, "alwaysUv"), 0);
    assert_int_equal(fido_cbor_info_protocols_len(ci), 2);
    assert_int_equal(fido_cbor_info_protocols_ptr(ci)[0], 2);
    assert_int_equal(fido_cbor_info_minpinlen(ci), 4);
    assert_int_equal(fido_cbor_info_maxmsgsiz(ci), 1200);
    assert_int_equal(fido_cbor_info_rk_remaining(ci), 25);
    assert_false(fido_cbor_info_new_pin_required(ci));
    assert_int_equal(fido_cbor_info_algorithm_cose(ci, 0), COSE_ES256);
    fido_cbor_info_free(&ci);
    close_dev(&dev);
    softkey_free(key);
}

/* --- clientPIN ---------------------------------------------------------------------------- */

static void
check_pin_lifecycle(SoftKey *key)
{
    fido_dev_t *dev = open_dev(key);
    int retries = -1;

    assert_int_equal(fido_dev_get_retry_count(dev, &retries), FIDO_OK);
    assert_int_equal(retries, 8);
    /* changePIN without a PIN */
    assert_int_equal(fido_dev_set_pin(dev, "5678", PIN), FIDO_ERR_PIN_NOT_SET);
    assert_int_equal(fido_dev_set_pin(dev, PIN, NULL), FIDO_OK);
    assert_true(softkey_has_pin(key));
    /* setPIN when a PIN exists */
    assert_int_equal(fido_dev_set_pin(dev, "9999", NULL), FIDO_ERR_PIN_AUTH_INVALID);
    close_dev(&dev);

    dev = open_dev(key);
    assert_true(fido_dev_has_pin(dev));
    assert_int_equal(fido_dev_set_pin(dev, "5678", "0000"), FIDO_ERR_PIN_INVALID);
    assert_int_equal(fido_dev_get_retry_count(dev, &retries), FIDO_OK);
    assert_int_equal(retries, 7);
    assert_int_equal(fido_dev_set_pin(dev, "5678", PIN), FIDO_OK);
    assert_int_equal(fido_dev_get_retry_count(dev, &retries), FIDO_OK);
    assert_int_equal(retries, 8);
    assert_int_equal(make_cred(dev, "5678", NULL, NULL), FIDO_OK);
    assert_int_equal(make_cred(dev, PIN, NULL, NULL), FIDO_ERR_PIN_INVALID);
    close_dev(&dev);
}

static void
test_pin_protocol2(void **state)
{
    SoftKey *key = softkey_new();

    check_pin_lifecycle(key);
    softkey_free(key);
}

static void
test_pin_protocol1(void **state)
{
    static const uint8_t p1[] = {1};
    SoftKey *key = softkey_new();
    fido_dev_t *dev;
    fido_cbor_info_t *ci;

    softkey_set_pin_protocols(key, p1, 1);
    dev = open_dev(key);
    ci = get_info(dev);
    assert_int_equal(fido_cbor_info_protocols_len(ci), 1);
    assert_int_equal(fido_cbor_info_protocols_ptr(ci)[0], 1);
    fido_cbor_info_free(&ci);
    close_dev(&dev);
    check_pin_lifecycle(key);
    /* authenticatorConfig with a protocol-one token (16-byte MACs) */
    dev = open_dev(key);
    assert_int_equal(fido_dev_set_pin_minlen(dev, 5, "5678"), FIDO_OK);
    assert_int_equal(softkey_get_min_pin_length(key), 5);
    close_dev(&dev);
    softkey_free(key);
}

/* A key that lists only protocol 2 refuses protocol-1 key agreement; libfido2 picks 2. */
static void
test_pin_protocol2_only(void **state)
{
    static const uint8_t p2[] = {2};
    SoftKey *key = softkey_new();
    fido_dev_t *dev;

    softkey_set_pin_protocols(key, p2, 1);
    dev = open_dev(key);
    assert_int_equal(fido_dev_set_pin(dev, PIN, NULL), FIDO_OK);
    assert_int_equal(make_cred(dev, PIN, NULL, NULL), FIDO_OK);
    close_dev(&dev);
    softkey_free(key);
}

static void
test_pin_retries(void **state)
{
    SoftKey *key = softkey_new();
    fido_dev_t *dev;
    int retries;

    softkey_set_pin(key, PIN);
    dev = open_dev(key);
    assert_int_equal(make_cred(dev, "1111", NULL, NULL), FIDO_ERR_PIN_INVALID);
    assert_int_equal(make_cred(dev, "1111", NULL, NULL), FIDO_ERR_PIN_INVALID);
    assert_int_equal(make_cred(dev, "1111", NULL, NULL), FIDO_ERR_PIN_AUTH_BLOCKED);
    /* blocked until power cycle: even the right PIN, and no retry is spent */
    assert_int_equal(make_cred(dev, PIN, NULL, NULL), FIDO_ERR_PIN_AUTH_BLOCKED);
    assert_int_equal(fido_dev_set_pin(dev, "5678", PIN), FIDO_ERR_PIN_AUTH_BLOCKED);
    assert_int_equal(fido_dev_get_retry_count(dev, &retries), FIDO_OK);
    assert_int_equal(retries, 5);
    close_dev(&dev);

    softkey_unplug(key);
    softkey_plug(key);
    dev = open_dev(key);
    assert_int_equal(make_cred(dev, "1111", NULL, NULL), FIDO_ERR_PIN_INVALID);
    assert_int_equal(make_cred(dev, "2222", NULL, NULL), FIDO_ERR_PIN_INVALID);
    assert_int_equal(make_cred(dev, "3333", NULL, NULL), FIDO_ERR_PIN_AUTH_BLOCKED);
    close_dev(&dev);
    assert_int_equal(softkey_get_pin_retries(key), 2);

    softkey_unplug(key);
    softkey_plug(key);
    dev = open_dev(key);
    assert_int_equal(make_cred(dev, "1111", NULL, NULL), FIDO_ERR_PIN_INVALID);
    assert_int_equal(make_cred(dev, "1111", NULL, NULL), FIDO_ERR_PIN_BLOCKED); /* 8th */
    assert_int_equal(fido_dev_get_retry_count(dev, &retries), FIDO_OK);
    assert_int_equal(retries, 0);
    close_dev(&dev);

    /* blocked for good: a power cycle does not help, only reset */
    softkey_unplug(key);
    softkey_plug(key);
    dev = open_dev(key);
    assert_int_equal(make_cred(dev, PIN, NULL, NULL), FIDO_ERR_PIN_BLOCKED);
    assert_int_equal(fido_dev_set_pin(dev, "5678", PIN), FIDO_ERR_PIN_BLOCKED);
    assert_int_equal(fido_dev_reset(dev), FIDO_OK);
    assert_int_equal(fido_dev_get_retry_count(dev, &retries), FIDO_OK);
    assert_int_equal(retries, 8);
    close_dev(&dev);
    softkey_free(key);
}

/* A correct PIN between two wrong ones resets the consecutive count. */
static void
test_pin_retries_interleaved(void **state)
{
    SoftKey *key = softkey_new();
    fido_dev_t *dev;

    softkey_set_pin(key, PIN);
    dev = open_dev(key);
    assert_int_equal(make_cred(dev, "1111", NULL, NULL), FIDO_ERR_PIN_INVALID);
    assert_int_equal(make_cred(dev, "1111", NULL, NULL), FIDO_ERR_PIN_INVALID);
    assert_int_equal(make_cred(dev, PIN, NULL, NULL), FIDO_OK);
    assert_int_equal(make_cred(dev, "1111", NULL, NULL), FIDO_ERR_PIN_INVALID);
    assert_int_equal(make_cred(dev, "1111", NULL, NULL), FIDO_ERR_PIN_INVALID);
    assert_int_equal(softkey_get_pin_retries(key), 6);
    close_dev(&dev);
    softkey_free(key);
}

static void
test_pin_policy(void **state)
{
    SoftKey *key = softkey_new();
    fido_dev_t *dev = open_dev(key);
    char pin64[65];

    /* 4 bytes but 2 code points: libfido2 passes it on, the key counts code points */
    assert_int_equal(fido_dev_set_pin(dev, "\xc3\xa9\xc3\xa9", NULL),
                     FIDO_ERR_PIN_POLICY_VIOLATION);
    softkey_set_min_pin_length(key, 6);
    assert_int_equal(fido_dev_set_pin(dev, "12345", NULL), FIDO_ERR_PIN_POLICY_VIOLATION);
    /* more than 63 bytes: refused before it reaches any key */
    memset(pin64, '7', 64);
    pin64[64] = 0;
    assert_int_equal(fido_dev_set_pin(dev, pin64, NULL), FIDO_ERR_PIN_POLICY_VIOLATION);
    assert_false(softkey_has_pin(key));
    /* 63 bytes is the longest PIN; 6 code points with multi-byte characters count as 6 */
    pin64[63] = 0;
    assert_int_equal(fido_dev_set_pin(dev, pin64, NULL), FIDO_OK);
    assert_int_equal(
        fido_dev_set_pin(dev, "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9", pin64), FIDO_OK);
    close_dev(&dev);
    softkey_free(key);
}

/* --- makeCredential ----------------------------------------------------------------------- */

static void
check_x5c(const fido_cred_t *cred, const uint8_t aaguid[16])
{
    const unsigned char *p = fido_cred_x5c_ptr(cred);
    const char *pem = softkey_attestation_ca_pem();
    BIO *bio = BIO_new_mem_buf(pem, -1);
    X509 *ca = PEM_read_bio_X509(bio, NULL, NULL, NULL);
    X509 *leaf = d2i_X509(NULL, &p, (long)fido_cred_x5c_len(cred));
    ASN1_OBJECT *obj = OBJ_txt2obj("1.3.6.1.4.1.45724.1.1.4", 1);
    const ASN1_OCTET_STRING *os;
    int idx;

    assert_non_null(ca);
    assert_non_null(leaf);
    assert_int_equal(X509_verify(leaf, X509_get0_pubkey(ca)), 1);
    assert_int_equal(X509_check_issued(ca, leaf), X509_V_OK);
    idx = X509_get_ext_by_OBJ(leaf, obj, -1);
    assert_true(idx >= 0);
    os = X509_EXTENSION_get_data(X509_get_ext(leaf, idx));
    assert_int_equal(ASN1_STRING_length(os), 18);
    assert_memory_equal(ASN1_STRING_get0_data(os) + 2, aaguid, 16);
    ASN1_OBJECT_free(obj);
    X509_free(leaf);
    X509_free(ca);
    BIO_free(bio);
}

static void
test_make_cred_full(void **state)
{
    SoftKey *key = softkey_new();
    fido_dev_t *dev;
    fido_cred_t *cred;
    CredOpts o = {.rk = true, .prot = FIDO_CRED_PROT_UV_OPTIONAL_WITH_ID, .hmac = true};
    uint8_t aaguid[16];

    softkey_set_pin(key, PIN);
    dev = open_dev(key);
    assert_int_equal(make_cred(dev, PIN, &o, &cred), FIDO_OK);
    assert_string_equal(fido_cred_fmt(cred), "packed");
    assert_int_equal(fido_cred_verify(cred), FIDO_OK);
    assert_int_equal(fido_cred_verify_self(cred), FIDO_ERR_INVALID_ARGUMENT);
    assert_int_equal(fido_cred_flags(cred) & 0x45, 0x45); /* UP | UV | AT */
    assert_int_equal(fido_cred_prot(cred), FIDO_CRED_PROT_UV_OPTIONAL_WITH_ID);
    assert_int_equal(fido_cred_aaguid_len(cred), 16);
    softkey_get_aaguid(key, aaguid);
    assert_memory_equal(fido_cred_aaguid_ptr(cred), aaguid, 16);
    check_x5c(cred, aaguid);
    assert_int_equal(softkey_get_credential_count(key), 1);
    fido_cred_free(&cred);

    /* same user again: replaces the discoverable credential */
    assert_int_equal(make_cred(dev, PIN, &o, NULL), FIDO_OK);
    assert_int_equal(softkey_get_credential_count(key), 1);
    o.user = "bob";
    assert_int_equal(make_cred(dev, PIN, &o, NULL), FIDO_OK);
    assert_int_equal(softkey_get_credential_count(key), 2);
    /* credential management metadata (credMgmt) sees the two */
    {
        fido_credman_metadata_t *meta = fido_credman_metadata_new();
        assert_int_equal(fido_credman_get_dev_metadata(dev, meta, "0000"), FIDO_ERR_PIN_INVALID);
        assert_int_equal(fido_credman_get_dev_metadata(dev, meta, PIN), FIDO_OK);
        assert_int_equal(fido_credman_rk_existing(meta), 2);
        assert_int_equal(fido_credman_rk_remaining(meta), 23);
        fido_credman_metadata_free(&meta);
    }

    close_dev(&dev);

    /* another AAGUID gets its own attestation certificate */
    memset(aaguid, 0xab, 16);
    softkey_set_aaguid(key, aaguid);
    dev = open_dev(key);
    assert_int_equal(make_cred(dev, PIN, NULL, &cred), FIDO_OK);
    assert_int_equal(fido_cred_verify(cred), FIDO_OK);
    check_x5c(cred, aaguid);
    fido_cred_free(&cred);
    close_dev(&dev);
    softkey_free(key);
}

static void
test_make_cred_self(void **state)
{
    SoftKey *key = softkey_new();
    fido_dev_t *dev = open_dev(key);
    fido_cred_t *cred;
    CredOpts o = {.prot = FIDO_CRED_PROT_UV_REQUIRED};

    softkey_set_self_attestation(key, true);
    assert_int_equal(make_cred(dev, NULL, &o, &cred), FIDO_OK);
    assert_int_equal(fido_cred_verify_self(cred), FIDO_OK);
    assert_int_equal(fido_cred_verify(cred), FIDO_ERR_INVALID_ARGUMENT);
    assert_int_equal(fido_cred_flags(cred) & 0x05, 0x01); /* no PIN: UP only */
    assert_int_equal(fido_cred_prot(cred), FIDO_CRED_PROT_UV_REQUIRED);
    fido_cred_free(&cred);
    close_dev(&dev);
    softkey_free(key);
}

static void
test_make_cred_pin_required(void **state)
{
    SoftKey *key = softkey_new();
    fido_dev_t *dev;
    CredOpts rk = {.rk = true};

    softkey_set_pin(key, PIN);
    dev = open_dev(key);
    /* makeCredUvNotRqd: a non-discoverable credential without UV is allowed ... */
    assert_int_equal(make_cred(dev, NULL, NULL, NULL), FIDO_OK);
    /* ... a discoverable one is not */
    assert_int_equal(make_cred(dev, NULL, &rk, NULL), FIDO_ERR_PIN_REQUIRED);
    close_dev(&dev);
    softkey_free(key);
}

static void
test_make_cred_excluded(void **state)
{
    SoftKey *key = softkey_new();
    fido_dev_t *dev = open_dev(key);
    fido_cred_t *cred;
    CredOpts o = {0};
    unsigned char other[32] = {0};

    assert_int_equal(make_cred(dev, NULL, NULL, &cred), FIDO_OK);
    o.exclude = other;
    o.exclude_len = sizeof(other);
    assert_int_equal(make_cred(dev, NULL, &o, NULL), FIDO_OK);
    o.exclude = fido_cred_id_ptr(cred);
    o.exclude_len = fido_cred_id_len(cred);
    assert_int_equal(make_cred(dev, NULL, &o, NULL), FIDO_ERR_CREDENTIAL_EXCLUDED);
    /* also when nobody touches: the answer is the same */
    softkey_set_touch(key, SOFTKEY_TOUCH_NEVER, 0);
    softkey_set_touch_timeout(key, 100, 0);
    assert_int_equal(make_cred(dev, NULL, &o, NULL), FIDO_ERR_CREDENTIAL_EXCLUDED);
    fido_cred_free(&cred);
    close_dev(&dev);
    softkey_free(key);
}

/* --- touch, keepalive, cancel ------------------------------------------------------------- */

typedef struct {
    fido_dev_t *dev;
    const char *pin;
    int result;
} MakeJob;

static gpointer
make_cred_thread(gpointer data)
{
    MakeJob *job = data;

    job->result = make_cred(job->dev, job->pin, NULL, NULL);
    return NULL;
}

static void
wait_for_touch_request(SoftKey *key)
{
    for (int i = 0; i < 500 && !softkey_is_waiting_for_touch(key); i++)
        g_usleep(2000);
    assert_true(softkey_is_waiting_for_touch(key));
}

/* softkey_io() with a count of the KEEPALIVE frames libfido2 reads (and skips). */
static gint keepalives;

static int
counting_read(void *handle, unsigned char *buf, size_t len, int ms)
{
    int r = softkey_io()->read(handle, buf, len, ms);

    if (r == 64 && buf[4] == (0x80 | 0x3b) && buf[7] == 0x02) /* KEEPALIVE UPNEEDED */
        g_atomic_int_inc(&keepalives);
    return r;
}

static void
test_touch_manual(void **state)
{
    SoftKey *key = softkey_new();
    MakeJob job = {0};
    fido_dev_io_t io = *softkey_io();
    GThread *t;

    io.read = counting_read;
    softkey_set_touch(key, SOFTKEY_TOUCH_MANUAL, 0);
    job.dev = fido_dev_new();
    assert_int_equal(fido_dev_set_io_functions(job.dev, &io), FIDO_OK);
    assert_int_equal(fido_dev_open(job.dev, softkey_get_path(key)), FIDO_OK);
    t = g_thread_new("mc", make_cred_thread, &job);
    wait_for_touch_request(key);
    g_usleep(250 * 1000); /* KEEPALIVE UPNEEDED every 100 ms meanwhile */
    softkey_touch(key);
    g_thread_join(t);
    assert_int_equal(job.result, FIDO_OK);
    assert_true(g_atomic_int_get(&keepalives) >= 3);
    close_dev(&job.dev);
    softkey_free(key);
}

static void
test_touch_delay(void **state)
{
    SoftKey *key = softkey_new();
    fido_dev_t *dev = open_dev(key);
    gint64 t0 = g_get_monotonic_time();

    softkey_set_touch(key, SOFTKEY_TOUCH_AUTO, 300);
    assert_int_equal(make_cred(dev, NULL, NULL, NULL), FIDO_OK);
    assert_true(g_get_monotonic_time() - t0 >= 300 * 1000);
    close_dev(&dev);
    softkey_free(key);
}

static void
test_touch_never(void **state)
{
    SoftKey *key = softkey_new();
    fido_dev_t *dev = open_dev(key);

    softkey_set_touch(key, SOFTKEY_TOUCH_NEVER, 0);
    softkey_set_touch_timeout(key, 200, 0);
    assert_int_equal(make_cred(dev, NULL, NULL, NULL), FIDO_ERR_USER_ACTION_TIMEOUT);
    softkey_set_touch_timeout(key, 200, FIDO_ERR_OPERATION_DENIED);
    assert_int_equal(make_cred(dev, NULL, NULL, NULL), FIDO_ERR_OPERATION_DENIED);
    /* libfido2's own budget: the key keeps sending KEEPALIVE, libfido2 gives up */
    softkey_set_touch_timeout(key, 30000, 0);
    assert_int_equal(fido_dev_set_timeout(dev, 300), FIDO_OK);
    assert_int_equal(make_cred(dev, NULL, NULL, NULL), FIDO_ERR_RX);
    close_dev(&dev);
    softkey_free(key);
}

static void
test_cancel(void **state)
{
    SoftKey *key = softkey_new();
    MakeJob job = {0};
    GThread *t;

    softkey_set_touch(key, SOFTKEY_TOUCH_MANUAL, 0);
    job.dev = open_dev(key);
    t = g_thread_new("mc", make_cred_thread, &job);
    wait_for_touch_request(key);
    assert_int_equal(fido_dev_cancel(job.dev), FIDO_OK);
    g_thread_join(t);
    assert_int_equal(job.result, FIDO_ERR_KEEPALIVE_CANCEL);
    /* the channel still works */
    softkey_touch(key);
    assert_int_equal(make_cred(job.dev, NULL, NULL, NULL), FIDO_OK);
    close_dev(&job.dev);
    softkey_free(key);
}

static void
test_touch_probe(void **state)
{
    SoftKey *key = softkey_new();
    fido_dev_t *dev = open_dev(key);
    int touched = 0;

    softkey_set_touch(key, SOFTKEY_TOUCH_MANUAL, 0);
    assert_int_equal(fido_dev_get_touch_begin(dev), FIDO_OK);
    assert_int_equal(fido_dev_get_touch_status(dev, &touched, 50), FIDO_OK);
    assert_int_equal(touched, 0);
    softkey_touch(key);
    for (int i = 0; i < 50 && !touched; i++)
        assert_int_equal(fido_dev_get_touch_status(dev, &touched, 50), FIDO_OK);
    assert_int_equal(touched, 1);
    close_dev(&dev);
    softkey_free(key);
}

/* --- reset -------------------------------------------------------------------------------- */

static void
test_reset(void **state)
{
    SoftKey *key = softkey_new();
    fido_dev_t *dev;
    CredOpts rk = {.rk = true};

    softkey_set_pin(key, PIN);
    dev = open_dev(key);
    assert_int_equal(make_cred(dev, PIN, &rk, NULL), FIDO_OK);
    assert_int_equal(fido_dev_set_pin_minlen(dev, 6, PIN), FIDO_OK);
    /* 11 s after power-up */
    softkey_advance_clock(key, 11000);
    assert_int_equal(fido_dev_reset(dev), FIDO_ERR_NOT_ALLOWED);
    close_dev(&dev);
    assert_int_equal(softkey_get_credential_count(key), 1);

    /* re-plugged, but nobody touches */
    softkey_unplug(key);
    softkey_plug(key);
    softkey_set_touch(key, SOFTKEY_TOUCH_NEVER, 0);
    softkey_set_touch_timeout(key, 150, 0);
    dev = open_dev(key);
    assert_int_equal(fido_dev_reset(dev), FIDO_ERR_USER_ACTION_TIMEOUT);
    softkey_set_touch(key, SOFTKEY_TOUCH_AUTO, 20);
    assert_int_equal(fido_dev_reset(dev), FIDO_OK);
    close_dev(&dev);
    assert_int_equal(softkey_get_credential_count(key), 0);
    assert_false(softkey_has_pin(key));
    assert_int_equal(softkey_get_min_pin_length(key), 4);
    dev = open_dev(key);
    assert_false(fido_dev_has_pin(dev));
    close_dev(&dev);
    softkey_free(key);
}

/* --- authenticatorConfig ------------------------------------------------------------------ */

static void
test_config_min_pin_length(void **state)
{
    SoftKey *key = softkey_new();
    fido_dev_t *dev;
    fido_cbor_info_t *ci;

    softkey_set_pin(key, PIN);
    dev = open_dev(key);
    /* with a PIN set, config needs a token */
    assert_int_equal(fido_dev_set_pin_minlen(dev, 6, NULL), FIDO_ERR_PIN_REQUIRED);
    assert_int_equal(fido_dev_set_pin_minlen(dev, 6, "0000"), FIDO_ERR_PIN_INVALID);
    assert_int_equal(fido_dev_set_pin_minlen(dev, 6, PIN), FIDO_OK);
    ci = get_info(dev);
    assert_int_equal(fido_cbor_info_minpinlen(ci), 6);
    assert_true(fido_cbor_info_new_pin_required(ci)); /* the 4-digit PIN is now too short */
    fido_cbor_info_free(&ci);
    /* every token request fails until the PIN is changed */
    assert_int_equal(make_cred(dev, PIN, NULL, NULL), FIDO_ERR_PIN_POLICY_VIOLATION);
    assert_int_equal(fido_dev_set_pin(dev, "12345", PIN), FIDO_ERR_PIN_POLICY_VIOLATION);
    assert_int_equal(fido_dev_set_pin(dev, "567890", PIN), FIDO_OK);
    assert_false(softkey_get_force_pin_change(key));
    assert_int_equal(make_cred(dev, "567890", NULL, NULL), FIDO_OK);
    /* the minimum never goes down */
    assert_int_equal(fido_dev_set_pin_minlen(dev, 4, "567890"), FIDO_ERR_PIN_POLICY_VIOLATION);
    close_dev(&dev);
    softkey_free(key);
}

static void
test_config_force_pin_change(void **state)
{
    SoftKey *key = softkey_new();
    fido_dev_t *dev = open_dev(key);
    fido_cbor_info_t *ci;

    /* no PIN: forceChangePin has nothing to act on */
    assert_int_equal(fido_dev_force_pin_change(dev, NULL), FIDO_ERR_PIN_NOT_SET);
    assert_int_equal(fido_dev_set_pin(dev, PIN, NULL), FIDO_OK);
    assert_int_equal(fido_dev_force_pin_change(dev, PIN), FIDO_OK);
    ci = get_info(dev);
    assert_true(fido_cbor_info_new_pin_required(ci));
    fido_cbor_info_free(&ci);
    assert_int_equal(make_cred(dev, PIN, NULL, NULL), FIDO_ERR_PIN_POLICY_VIOLATION);
    assert_int_equal(fido_dev_set_pin(dev, PIN, PIN), FIDO_ERR_PIN_POLICY_VIOLATION);
    assert_int_equal(fido_dev_set_pin(dev, "4321", PIN), FIDO_OK);
    ci = get_info(dev);
    assert_false(fido_cbor_info_new_pin_required(ci));
    fido_cbor_info_free(&ci);
    assert_int_equal(make_cred(dev, "4321", NULL, NULL), FIDO_OK);
    close_dev(&dev);
    softkey_free(key);
}

static void
test_config_always_uv(void **state)
{
    SoftKey *key = softkey_new();
    fido_dev_t *dev;
    fido_cbor_info_t *ci;

    dev = open_dev(key);
    /* no PIN yet: alwaysUv can be switched on without one, then a PIN is demanded */
    assert_int_equal(fido_dev_toggle_always_uv(dev, NULL), FIDO_OK);
    assert_true(softkey_get_always_uv(key));
    assert_int_equal(make_cred(dev, NULL, NULL, NULL), FIDO_ERR_PIN_NOT_SET);
    assert_int_equal(fido_dev_set_pin(dev, PIN, NULL), FIDO_OK);
    close_dev(&dev);

    dev = open_dev(key);
    ci = get_info(dev);
    assert_int_equal(info_option(ci, "alwaysUv"), 1);
    fido_cbor_info_free(&ci);
    /* makeCredUvNotRqd no longer helps */
    assert_int_equal(make_cred(dev, NULL, NULL, NULL), FIDO_ERR_PIN_REQUIRED);
    assert_int_equal(make_cred(dev, PIN, NULL, NULL), FIDO_OK);
    assert_int_equal(fido_dev_toggle_always_uv(dev, PIN), FIDO_OK);
    assert_false(softkey_get_always_uv(key));
    assert_int_equal(make_cred(dev, NULL, NULL, NULL), FIDO_OK);
    close_dev(&dev);
    softkey_free(key);
}

/* --- transport faults --------------------------------------------------------------------- */

static void
test_fault_removed(void **state)
{
    SoftKey *key = softkey_new();
    fido_dev_t *dev = open_dev(key);
    fido_cbor_info_t *ci = fido_cbor_info_new();
    int r;

    /* gone after two more reports: in the middle of makeCredential's request */
    softkey_set_fault(key, SOFTKEY_FAULT_REMOVED, 2);
    r = make_cred(dev, NULL, NULL, NULL);
    assert_true(r == FIDO_ERR_TX || r == FIDO_ERR_RX);
    assert_int_equal(fido_dev_get_cbor_info(dev, ci), FIDO_ERR_TX);
    close_dev(&dev);
    /* plugged back in: works again */
    softkey_plug(key);
    dev = open_dev(key);
    assert_int_equal(fido_dev_get_cbor_info(dev, ci), FIDO_OK);
    close_dev(&dev);

    /* unplugged while waiting for a touch: the blocked read fails at once */
    softkey_set_touch(key, SOFTKEY_TOUCH_MANUAL, 0);
    {
        MakeJob job = {open_dev(key), NULL, 0};
        GThread *t = g_thread_new("mc", make_cred_thread, &job);
        wait_for_touch_request(key);
        softkey_unplug(key);
        g_thread_join(t);
        assert_int_equal(job.result, FIDO_ERR_RX);
        close_dev(&job.dev);
    }
    /* an unplugged key cannot be opened */
    dev = fido_dev_new();
    fido_dev_set_io_functions(dev, softkey_io());
    assert_int_not_equal(fido_dev_open(dev, softkey_get_path(key)), FIDO_OK);
    fido_dev_free(&dev);
    fido_cbor_info_free(&ci);
    softkey_free(key);
}

/* A host that stops in the middle of a message blocks the key only briefly (500 ms). */
static void
test_abandoned_message(void **state)
{
    SoftKey *key = softkey_new();
    const fido_dev_io_t *io = softkey_io();
    void *h = io->open(softkey_get_path(key));
    unsigned char out[65] = {0}, in[64];
    fido_dev_t *dev;

    assert_non_null(h);
    memset(out + 1, 0xff, 4); /* INIT on the broadcast channel */
    out[5] = 0x86;
    out[7] = 8;
    assert_int_equal(io->write(h, out, sizeof(out)), 65);
    assert_int_equal(io->read(h, in, sizeof(in), 1000), 64);
    memcpy(out + 1, in + 15, 4); /* the allocated CID */
    out[5] = 0x90;               /* CBOR, 100 bytes announced, one frame sent */
    out[6] = 0;
    out[7] = 100;
    assert_int_equal(io->write(h, out, sizeof(out)), 65);
    /* meanwhile another host's request is refused: channel busy */
    dev = fido_dev_new();
    fido_dev_set_io_functions(dev, softkey_io());
    assert_int_not_equal(fido_dev_open(dev, softkey_get_path(key)), FIDO_OK);
    fido_dev_free(&dev);
    g_usleep(600 * 1000);
    dev = open_dev(key);
    close_dev(&dev);
    /* the abandoned channel was told (every open handle sees every report, as on hidraw) */
    do {
        assert_int_equal(io->read(h, in, sizeof(in), 1000), 64);
    } while (memcmp(in, out + 1, 4) != 0);
    assert_int_equal(in[4], 0x80 | 0x3f);
    assert_int_equal(in[7], 0x05);
    io->close(h);
    softkey_free(key);
}

/* Two hosts with the key open at once, like two processes on one hidraw node. */
static void
test_two_handles(void **state)
{
    SoftKey *key = softkey_new();
    fido_dev_t *a = open_dev(key), *b = open_dev(key);
    fido_cbor_info_t *ci = fido_cbor_info_new();
    int retries;

    for (int i = 0; i < 3; i++) {
        assert_int_equal(fido_dev_get_cbor_info(a, ci), FIDO_OK);
        assert_int_equal(fido_dev_get_retry_count(b, &retries), FIDO_OK);
    }
    assert_int_equal(make_cred(b, NULL, NULL, NULL), FIDO_OK);
    assert_int_equal(make_cred(a, NULL, NULL, NULL), FIDO_OK);
    fido_cbor_info_free(&ci);
    close_dev(&a);
    close_dev(&b);
    softkey_free(key);
}

static void
test_fault_garbled(void **state)
{
    SoftKey *key = softkey_new();
    fido_dev_t *dev = open_dev(key);
    fido_cbor_info_t *ci = fido_cbor_info_new();
    int retries;

    /* a multi-frame reply with a bad sequence number */
    softkey_set_fault(key, SOFTKEY_FAULT_GARBLED, 0);
    assert_int_equal(fido_dev_get_cbor_info(dev, ci), FIDO_ERR_RX);
    close_dev(&dev);
    /* a single-frame reply with a command nobody sent */
    dev = open_dev(key);
    softkey_set_fault(key, SOFTKEY_FAULT_GARBLED, 0);
    assert_int_equal(fido_dev_get_retry_count(dev, &retries), FIDO_ERR_RX);
    /* one answer only */
    assert_int_equal(fido_dev_get_retry_count(dev, &retries), FIDO_OK);
    assert_int_equal(fido_dev_get_cbor_info(dev, ci), FIDO_OK);
    fido_cbor_info_free(&ci);
    close_dev(&dev);
    softkey_free(key);
}

static void
test_fault_slow(void **state)
{
    SoftKey *key = softkey_new();
    fido_dev_t *dev = open_dev(key);
    fido_cbor_info_t *ci = fido_cbor_info_new();
    gint64 t0;

    softkey_set_fault(key, SOFTKEY_FAULT_SLOW, 200);
    t0 = g_get_monotonic_time();
    assert_int_equal(fido_dev_get_cbor_info(dev, ci), FIDO_OK);
    assert_true(g_get_monotonic_time() - t0 >= 200 * 1000);
    assert_int_equal(fido_dev_set_timeout(dev, 50), FIDO_OK);
    assert_int_equal(fido_dev_get_cbor_info(dev, ci), FIDO_ERR_RX);
    fido_cbor_info_free(&ci);
    close_dev(&dev);
    softkey_free(key);
}

static void
test_fault_status(void **state)
{
    SoftKey *key = softkey_new();
    fido_dev_t *dev = open_dev(key);
    int retries;

    softkey_set_status_fault(key, 0x01, FIDO_ERR_KEY_STORE_FULL);
    assert_int_equal(make_cred(dev, NULL, NULL, NULL), FIDO_ERR_KEY_STORE_FULL);
    assert_int_equal(make_cred(dev, NULL, NULL, NULL), FIDO_OK); /* one shot */
    softkey_set_fault(key, SOFTKEY_FAULT_CTAP_STATUS, FIDO_ERR_ERR_OTHER);
    assert_int_equal(fido_dev_get_retry_count(dev, &retries), FIDO_ERR_ERR_OTHER);
    assert_int_equal(fido_dev_get_retry_count(dev, &retries), FIDO_OK);
    close_dev(&dev);
    softkey_free(key);
}

static void
test_busy_time(void **state)
{
    SoftKey *key = softkey_new();
    fido_dev_t *dev = open_dev(key);

    softkey_set_touch(key, SOFTKEY_TOUCH_AUTO, 100);
    softkey_reset_busy_us(key);
    assert_int_equal(make_cred(dev, NULL, NULL, NULL), FIDO_OK);
    /* the key's own work, without the 100 ms touch */
    assert_true(softkey_get_busy_us(key) > 0);
    assert_true(softkey_get_busy_us(key) < 100 * 1000);
    close_dev(&dev);
    softkey_free(key);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_get_info),
        cmocka_unit_test(test_pin_protocol2),
        cmocka_unit_test(test_pin_protocol1),
        cmocka_unit_test(test_pin_protocol2_only),
        cmocka_unit_test(test_pin_retries),
        cmocka_unit_test(test_pin_retries_interleaved),
        cmocka_unit_test(test_pin_policy),
        cmocka_unit_test(test_make_cred_full),
        cmocka_unit_test(test_make_cred_self),
        cmocka_unit_test(test_make_cred_pin_required),
        cmocka_unit_test(test_make_cred_excluded),
        cmocka_unit_test(test_touch_manual),
        cmocka_unit_test(test_touch_delay),
        cmocka_unit_test(test_touch_never),
        cmocka_unit_test(test_cancel),
        cmocka_unit_test(test_touch_probe),
        cmocka_unit_test(test_reset),
        cmocka_unit_test(test_config_min_pin_length),
        cmocka_unit_test(test_config_force_pin_change),
        cmocka_unit_test(test_config_always_uv),
        cmocka_unit_test(test_fault_removed),
        cmocka_unit_test(test_abandoned_message),
        cmocka_unit_test(test_two_handles),
        cmocka_unit_test(test_fault_garbled),
        cmocka_unit_test(test_fault_slow),
        cmocka_unit_test(test_fault_status),
        cmocka_unit_test(test_busy_time),
    };

    fido_init(FIDO_DISABLE_U2F_FALLBACK);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
