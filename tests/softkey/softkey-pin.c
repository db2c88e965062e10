/* softkey-pin.c: authenticatorClientPIN (PIN/UV auth protocols one and two), pinUvAuthTokens
 * with permissions, the PIN retry counters, and authenticatorConfig.
 *
 * Follows ctap2.md §4 (encodings, algorithms, test vectors) and §7 (config). Counters: the
 * persistent pinRetries (8, 0 = blocked for good: CTAP2_ERR_PIN_BLOCKED) and the volatile count
 * of mismatches since power-up (3 → CTAP2_ERR_PIN_AUTH_BLOCKED until softkey_plug()).
 */
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/hmac.h>
#include <openssl/kdf.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include "softkey-private.h"

/* --- crypto primitives -------------------------------------------------------------------- */

void
sk_pin_regenerate(SoftKey *key)
{
    EVP_PKEY_free(key->ka_key);
    key->ka_key = EVP_EC_gen("P-256");
}

void
sk_token_invalidate(SoftKey *key)
{
    RAND_bytes(key->token, sizeof(key->token));
    key->token_in_use = false;
    key->token_perms = 0;
    g_clear_pointer(&key->token_rp_id, g_free);
}

bool
sk_protocol_supported(SoftKey *key, uint64_t proto)
{
    if (key->m.protocols == NULL)
        return false;
    for (guint i = 0; i < key->m.protocols->len; i++) {
        if (g_array_index(key->m.protocols, guint8, i) == proto)
            return true;
    }
    return false;
}

/* COSE_Key {1: 2, 3: -25, -1: 1, -2: x, -3: y} of the key-agreement key. */
static cbor_item_t *
sk_ka_cose(SoftKey *key)
{
    uint8_t pub[65];
    size_t len = 0;
    cbor_item_t *m;

    if (!EVP_PKEY_get_octet_string_param(key->ka_key, OSSL_PKEY_PARAM_PUB_KEY, pub, sizeof(pub),
                                         &len) ||
        len != 65)
        return NULL;
    m = cbor_new_definite_map(5);
    sk_cbor_put(m, sk_cbor_uint(1), sk_cbor_uint(2));
    sk_cbor_put(m, sk_cbor_uint(3), sk_cbor_int(-25));
    sk_cbor_put(m, sk_cbor_int(-1), sk_cbor_uint(1));
    sk_cbor_put(m, sk_cbor_int(-2), cbor_build_bytestring(pub + 1, 32));
    sk_cbor_put(m, sk_cbor_int(-3), cbor_build_bytestring(pub + 33, 32));
    return m;
}

static cbor_item_t *
sk_cbor_get_neg(const cbor_item_t *map, int64_t k)
{
    struct cbor_pair *p = cbor_map_handle(map);

    for (size_t i = 0; i < cbor_map_size(map); i++) {
        int64_t v;
        if (sk_cbor_get_i64(p[i].key, &v) && v == k)
            return p[i].value;
    }
    return NULL;
}

static bool
sk_hkdf(const uint8_t *z, const char *info, uint8_t out[32])
{
    static const uint8_t salt[32] = {0};
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_id(EVP_PKEY_HKDF, NULL);
    size_t len = 32;
    bool ok;

    ok = ctx != NULL && EVP_PKEY_derive_init(ctx) > 0 &&
         EVP_PKEY_CTX_set_hkdf_md(ctx, EVP_sha256()) > 0 &&
         EVP_PKEY_CTX_set1_hkdf_salt(ctx, salt, sizeof(salt)) > 0 &&
         EVP_PKEY_CTX_set1_hkdf_key(ctx, z, 32) > 0 &&
         EVP_PKEY_CTX_add1_hkdf_info(ctx, (const unsigned char *)info, (int)strlen(info)) > 0 &&
         EVP_PKEY_derive(ctx, out, &len) > 0 && len == 32;
    EVP_PKEY_CTX_free(ctx);
    return ok;
}

/* ECDH with the platform's COSE key, then the protocol's KDF: ss is 32 (P1) or 64 (P2) bytes. */
static int
sk_decapsulate(SoftKey *key, uint64_t proto, const cbor_item_t *cose, uint8_t ss[64])
{
    cbor_item_t *x, *y;
    uint8_t pub[65], z[32];
    size_t zlen = sizeof(z);
    EVP_PKEY *peer = NULL;
    EVP_PKEY_CTX *pctx = NULL, *dctx = NULL;
    OSSL_PARAM params[3];
    char group[] = "P-256";
    int r = SK_ERR_INVALID_PARAMETER;

    if (cose == NULL || !cbor_isa_map(cose))
        return SK_ERR_MISSING_PARAMETER;
    x = sk_cbor_get_neg(cose, -2);
    y = sk_cbor_get_neg(cose, -3);
    if (x == NULL || y == NULL || !cbor_isa_bytestring(x) || !cbor_isa_bytestring(y) ||
        cbor_bytestring_length(x) != 32 || cbor_bytestring_length(y) != 32)
        return SK_ERR_INVALID_PARAMETER;
    pub[0] = 0x04;
    memcpy(pub + 1, cbor_bytestring_handle(x), 32);
    memcpy(pub + 33, cbor_bytestring_handle(y), 32);
    params[0] = OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, group, 0);
    params[1] = OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, pub, sizeof(pub));
    params[2] = OSSL_PARAM_construct_end();
    if ((pctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL)) == NULL ||
        EVP_PKEY_fromdata_init(pctx) <= 0 ||
        EVP_PKEY_fromdata(pctx, &peer, EVP_PKEY_PUBLIC_KEY, params) <= 0)
        goto fail;
    if ((dctx = EVP_PKEY_CTX_new(key->ka_key, NULL)) == NULL || EVP_PKEY_derive_init(dctx) <= 0 ||
        EVP_PKEY_derive_set_peer(dctx, peer) <= 0 || EVP_PKEY_derive(dctx, z, &zlen) <= 0 ||
        zlen != 32)
        goto fail;
    if (proto == 1) {
        SHA256(z, 32, ss);
    } else if (!sk_hkdf(z, "CTAP2 HMAC key", ss) || !sk_hkdf(z, "CTAP2 AES key", ss + 32)) {
        goto fail;
    }
    r = SK_OK;
fail:
    explicit_bzero(z, sizeof(z));
    EVP_PKEY_free(peer);
    EVP_PKEY_CTX_free(pctx);
    EVP_PKEY_CTX_free(dctx);
    return r;
}

static bool
sk_aes(bool enc, const uint8_t key[32], const uint8_t iv[16], const uint8_t *in, size_t len,
       uint8_t *out)
{
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    int n = 0, m = 0;
    bool ok;

    ok = ctx != NULL && len % 16 == 0 && len <= INT_MAX &&
         EVP_CipherInit_ex(ctx, EVP_aes_256_cbc(), NULL, key, iv, enc ? 1 : 0) > 0 &&
         EVP_CIPHER_CTX_set_padding(ctx, 0) > 0 &&
         EVP_CipherUpdate(ctx, out, &n, in, (int)len) > 0 &&
         EVP_CipherFinal_ex(ctx, out + n, &m) > 0 && (size_t)(n + m) == len;
    EVP_CIPHER_CTX_free(ctx);
    return ok;
}

/* decrypt(ss, ct) of the protocol; @out gets at most len bytes. */
static bool
sk_decrypt(uint64_t proto, const uint8_t *ss, const uint8_t *ct, size_t len, uint8_t *out,
           size_t *out_len)
{
    static const uint8_t zero_iv[16] = {0};

    if (proto == 1) {
        if (len == 0 || len % 16 != 0 || !sk_aes(false, ss, zero_iv, ct, len, out))
            return false;
        *out_len = len;
        return true;
    }
    if (len < 32 || len % 16 != 0 || !sk_aes(false, ss + 32, ct, ct + 16, len - 16, out))
        return false;
    *out_len = len - 16;
    return true;
}

/* encrypt(ss, pt): P2 prepends a fresh random IV. @out has room for len + 16 bytes. */
static bool
sk_encrypt(uint64_t proto, const uint8_t *ss, const uint8_t *pt, size_t len, uint8_t *out,
           size_t *out_len)
{
    static const uint8_t zero_iv[16] = {0};

    if (proto == 1) {
        *out_len = len;
        return sk_aes(true, ss, zero_iv, pt, len, out);
    }
    if (RAND_bytes(out, 16) != 1)
        return false;
    *out_len = len + 16;
    return sk_aes(true, ss + 32, out, pt, len, out + 16);
}

/* verify(key, msg, sig): HMAC-SHA-256 with a 32-byte key, 16 bytes (P1) or 32 (P2). */
static bool
sk_verify(uint64_t proto, const uint8_t key[32], const uint8_t *msg, size_t msg_len,
          const uint8_t *mac, size_t mac_len)
{
    uint8_t md[32];
    unsigned md_len = 0;
    bool ok;

    if (mac_len != (proto == 1 ? 16u : 32u))
        return false;
    if (HMAC(EVP_sha256(), key, 32, msg, msg_len, md, &md_len) == NULL || md_len != 32)
        return false;
    ok = CRYPTO_memcmp(md, mac, mac_len) == 0;
    explicit_bzero(md, sizeof(md));
    return ok;
}

bool
sk_token_verify(SoftKey *key, uint64_t proto, const uint8_t *msg, size_t msg_len,
                const uint8_t *mac, size_t mac_len, uint8_t perm, const char *rp_id)
{
    if (!key->token_in_use || sk_now(key) - key->token_start > SK_TOKEN_LIFETIME_US) {
        key->token_in_use = false;
        return false;
    }
    if (!sk_verify(proto, key->token, msg, msg_len, mac, mac_len))
        return false;
    if ((key->token_perms & perm) != perm)
        return false;
    if (rp_id != NULL) {
        if (key->token_rp_id == NULL)
            key->token_rp_id = g_strdup(rp_id); /* getPinToken tokens bind on first use */
        else if (strcmp(key->token_rp_id, rp_id) != 0)
            return false;
    }
    return true;
}

/* --- PIN storage and checks --------------------------------------------------------------- */

static unsigned
sk_code_points(const uint8_t *s, size_t len)
{
    unsigned n = 0;

    for (size_t i = 0; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80)
            n++;
    }
    return n;
}

void
sk_pin_store(SoftKey *key, const char *pin)
{
    uint8_t md[32];

    SHA256((const uint8_t *)pin, strlen(pin), md);
    memcpy(key->pin_hash, md, 16);
    explicit_bzero(md, sizeof(md));
    key->pin_cp_len = sk_code_points((const uint8_t *)pin, strlen(pin));
    key->pin_set = true;
}

/* Decrypts and checks paddedNewPin (ctap2.md §4.5); on success the hash and length. */
static int
sk_new_pin(SoftKey *key, uint64_t proto, const uint8_t *ss, const cbor_item_t *enc,
           uint8_t hash[16], unsigned *cp_len)
{
    uint8_t pin[96], md[32];
    size_t len = 0, n;
    int r = SK_ERR_PIN_POLICY;

    if (!sk_decrypt(proto, ss, cbor_bytestring_handle(enc), cbor_bytestring_length(enc), pin,
                    &len) ||
        len > sizeof(pin)) {
        r = SK_ERR_PIN_AUTH_INVALID;
        goto out;
    }
    if (len != 64) {
        r = SK_ERR_INVALID_PARAMETER;
        goto out;
    }
    for (n = 64; n > 0 && pin[n - 1] == 0; n--)
        ;
    if (n == 64 || n == 0) /* longer than 63 bytes, or empty */
        goto out;
    *cp_len = sk_code_points(pin, n);
    if (*cp_len < key->min_pin_len)
        goto out;
    SHA256(pin, n, md);
    memcpy(hash, md, 16);
    r = SK_OK;
out:
    explicit_bzero(pin, sizeof(pin));
    explicit_bzero(md, sizeof(md));
    return r;
}

/* Checks pinHashEnc against the stored PIN, spending a retry (ctap2.md §4.6). */
static int
sk_check_pin_hash(SoftKey *key, uint64_t proto, const uint8_t *ss, const cbor_item_t *enc)
{
    uint8_t hash[32];
    size_t len = 0;
    bool ok;

    if (key->pin_retries == 0)
        return SK_ERR_PIN_BLOCKED;
    if (key->pin_fails_since_powerup >= 3)
        return SK_ERR_PIN_AUTH_BLOCKED;
    key->pin_retries--;
    ok = cbor_bytestring_length(enc) <= 48 &&
         sk_decrypt(proto, ss, cbor_bytestring_handle(enc), cbor_bytestring_length(enc), hash,
                    &len) &&
         len == 16 && CRYPTO_memcmp(hash, key->pin_hash, 16) == 0;
    explicit_bzero(hash, sizeof(hash));
    if (!ok) {
        sk_pin_regenerate(key);
        key->pin_fails_since_powerup++;
        if (key->pin_retries == 0)
            return SK_ERR_PIN_BLOCKED;
        if (key->pin_fails_since_powerup >= 3)
            return SK_ERR_PIN_AUTH_BLOCKED;
        return SK_ERR_PIN_INVALID;
    }
    key->pin_retries = SK_PIN_RETRIES_MAX;
    key->pin_fails_since_powerup = 0;
    return SK_OK;
}

/* --- authenticatorClientPIN (0x06) -------------------------------------------------------- */

typedef struct {
    uint64_t proto;
    bool has_proto;
    uint64_t sub;
    const cbor_item_t *ka;
    const cbor_item_t *auth;
    const cbor_item_t *new_pin;
    const cbor_item_t *pin_hash;
    uint64_t perms;
    bool has_perms;
    char *rp_id;
} SkPinReq;

static bool
sk_is_bstr(const cbor_item_t *i)
{
    return i != NULL && cbor_isa_bytestring(i) && cbor_bytestring_is_definite(i);
}

static int
sk_pin_set_pin(SoftKey *key, SkPinReq *q)
{
    uint8_t ss[64], hash[16];
    unsigned cp = 0;
    int r;

    if (!q->has_proto || q->ka == NULL || q->auth == NULL || q->new_pin == NULL)
        return SK_ERR_MISSING_PARAMETER;
    if (!sk_protocol_supported(key, q->proto))
        return SK_ERR_INVALID_PARAMETER;
    if (key->pin_set)
        return SK_ERR_PIN_AUTH_INVALID;
    if ((r = sk_decapsulate(key, q->proto, q->ka, ss)) != SK_OK)
        goto out;
    if (!sk_verify(q->proto, ss, cbor_bytestring_handle(q->new_pin),
                   cbor_bytestring_length(q->new_pin), cbor_bytestring_handle(q->auth),
                   cbor_bytestring_length(q->auth))) {
        r = SK_ERR_PIN_AUTH_INVALID;
        goto out;
    }
    if ((r = sk_new_pin(key, q->proto, ss, q->new_pin, hash, &cp)) != SK_OK)
        goto out;
    memcpy(key->pin_hash, hash, 16);
    key->pin_cp_len = cp;
    key->pin_set = true;
    key->pin_retries = SK_PIN_RETRIES_MAX;
    key->pin_fails_since_powerup = 0;
out:
    explicit_bzero(ss, sizeof(ss));
    explicit_bzero(hash, sizeof(hash));
    return r;
}

static int
sk_pin_change_pin(SoftKey *key, SkPinReq *q)
{
    uint8_t ss[64], hash[16];
    GByteArray *msg = NULL;
    unsigned cp = 0;
    int r;

    if (!q->has_proto || q->ka == NULL || q->auth == NULL || q->new_pin == NULL ||
        q->pin_hash == NULL)
        return SK_ERR_MISSING_PARAMETER;
    if (!sk_protocol_supported(key, q->proto))
        return SK_ERR_INVALID_PARAMETER;
    if (key->pin_retries == 0)
        return SK_ERR_PIN_BLOCKED;
    if (!key->pin_set)
        return SK_ERR_PIN_NOT_SET;
    if ((r = sk_decapsulate(key, q->proto, q->ka, ss)) != SK_OK)
        goto out;
    msg = g_byte_array_new();
    g_byte_array_append(msg, cbor_bytestring_handle(q->new_pin),
                        (guint)cbor_bytestring_length(q->new_pin));
    g_byte_array_append(msg, cbor_bytestring_handle(q->pin_hash),
                        (guint)cbor_bytestring_length(q->pin_hash));
    if (!sk_verify(q->proto, ss, msg->data, msg->len, cbor_bytestring_handle(q->auth),
                   cbor_bytestring_length(q->auth))) {
        r = SK_ERR_PIN_AUTH_INVALID;
        goto out;
    }
    if ((r = sk_check_pin_hash(key, q->proto, ss, q->pin_hash)) != SK_OK)
        goto out;
    if ((r = sk_new_pin(key, q->proto, ss, q->new_pin, hash, &cp)) != SK_OK)
        goto out;
    if (key->force_pin_change && CRYPTO_memcmp(hash, key->pin_hash, 16) == 0) {
        r = SK_ERR_PIN_POLICY;
        goto out;
    }
    memcpy(key->pin_hash, hash, 16);
    key->pin_cp_len = cp;
    key->force_pin_change = false;
    sk_token_invalidate(key);
out:
    if (msg != NULL)
        g_byte_array_unref(msg);
    explicit_bzero(ss, sizeof(ss));
    explicit_bzero(hash, sizeof(hash));
    return r;
}

/* getPinToken (0x05), getPinUvAuthTokenUsingPinWithPermissions (0x09) and, for models with
 * built-in UV, getPinUvAuthTokenUsingUvWithPermissions (0x06: the "fingerprint" is a touch). */
static int
sk_pin_get_token(SoftKey *key, SkPinReq *q, uint32_t cid, cbor_item_t **reply)
{
    uint8_t ss[64], enc[64];
    size_t enc_len = 0;
    uint8_t perms;
    int r;

    if (!q->has_proto || q->ka == NULL || (q->sub != 0x06 && q->pin_hash == NULL))
        return SK_ERR_MISSING_PARAMETER;
    if (q->sub != 0x05 && !q->has_perms)
        return SK_ERR_MISSING_PARAMETER;
    if (!sk_protocol_supported(key, q->proto))
        return SK_ERR_INVALID_PARAMETER;
    if (q->sub == 0x05) {
        if (q->has_perms || q->rp_id != NULL)
            return SK_ERR_INVALID_PARAMETER;
        perms = SK_PERM_MC | SK_PERM_GA;
    } else {
        if (q->perms == 0 || q->perms > 0xff)
            return SK_ERR_INVALID_PARAMETER;
        perms = (uint8_t)q->perms;
        if (((perms & SK_PERM_CM) && !sk_option(key, "credMgmt") &&
             !sk_option(key, "credentialMgmtPreview")) ||
            ((perms & SK_PERM_BE) && !sk_option_present(key, "bioEnroll")) ||
            ((perms & SK_PERM_LBW) && !sk_option(key, "largeBlobs")) ||
            ((perms & SK_PERM_ACFG) && !sk_option(key, "authnrCfg")) ||
            ((perms & (SK_PERM_MC | SK_PERM_GA)) &&
             sk_option(key, "noMcGaPermissionsWithClientPin") && q->sub == 0x09))
            return SK_ERR_UNAUTHORIZED_PERM;
        if ((perms & (SK_PERM_MC | SK_PERM_GA)) && q->rp_id == NULL)
            return SK_ERR_INVALID_PARAMETER;
    }
    if (q->sub == 0x06) {
        if ((r = sk_decapsulate(key, q->proto, q->ka, ss)) != SK_OK)
            goto out;
        if ((r = sk_wait_touch(key, cid)) != 0)
            goto out;
    } else {
        if (key->pin_retries == 0)
            return SK_ERR_PIN_BLOCKED;
        if (!key->pin_set)
            return SK_ERR_PIN_NOT_SET;
        if ((r = sk_decapsulate(key, q->proto, q->ka, ss)) != SK_OK)
            goto out;
        if ((r = sk_check_pin_hash(key, q->proto, ss, q->pin_hash)) != SK_OK)
            goto out;
        if (key->force_pin_change) {
            r = q->sub == 0x05 ? SK_ERR_PIN_INVALID : SK_ERR_PIN_POLICY;
            goto out;
        }
    }
    sk_token_invalidate(key);
    key->token_in_use = true;
    key->token_perms = perms;
    key->token_rp_id = g_strdup(q->rp_id);
    key->token_start = sk_now(key);
    if (!sk_encrypt(q->proto, ss, key->token, sizeof(key->token), enc, &enc_len)) {
        r = SK_ERR_OTHER;
        goto out;
    }
    *reply = cbor_new_definite_map(1);
    sk_cbor_put(*reply, sk_cbor_uint(2), cbor_build_bytestring(enc, enc_len));
    r = SK_OK;
out:
    explicit_bzero(ss, sizeof(ss));
    explicit_bzero(enc, sizeof(enc));
    return r;
}

/* The cid is needed for built-in UV's touch; sk_client_pin() gets it from the worker. */
static uint32_t
sk_current_cid(SoftKey *key)
{
    return key->busy_cid;
}

int
sk_client_pin(SoftKey *key, const cbor_item_t *req, cbor_item_t **reply)
{
    SkPinReq q = {0};
    cbor_item_t *i;
    int r;

    if ((i = sk_cbor_get(req, 1)) != NULL) {
        if (!sk_cbor_get_u64(i, &q.proto))
            return SK_ERR_CBOR_UNEXPECTED;
        q.has_proto = true;
    }
    if (!sk_cbor_get_u64(sk_cbor_get(req, 2), &q.sub))
        return SK_ERR_MISSING_PARAMETER;
    q.ka = sk_cbor_get(req, 3);
    q.auth = sk_cbor_get(req, 4);
    q.new_pin = sk_cbor_get(req, 5);
    q.pin_hash = sk_cbor_get(req, 6);
    if ((q.auth != NULL && !sk_is_bstr(q.auth)) || (q.new_pin != NULL && !sk_is_bstr(q.new_pin)) ||
        (q.pin_hash != NULL && !sk_is_bstr(q.pin_hash)) || (q.ka != NULL && !cbor_isa_map(q.ka)))
        return SK_ERR_CBOR_UNEXPECTED;
    if ((i = sk_cbor_get(req, 9)) != NULL) {
        if (!sk_cbor_get_u64(i, &q.perms))
            return SK_ERR_CBOR_UNEXPECTED;
        q.has_perms = true;
    }
    if ((i = sk_cbor_get(req, 10)) != NULL && (q.rp_id = sk_cbor_strdup(i)) == NULL)
        return SK_ERR_CBOR_UNEXPECTED;

    switch (q.sub) {
    case 0x01: /* getPINRetries: any protocol, libfido2 always sends 1 */
        *reply = cbor_new_definite_map(2);
        sk_cbor_put(*reply, sk_cbor_uint(3), sk_cbor_uint(key->pin_retries));
        if (key->pin_fails_since_powerup >= 3 && sk_has_version(key, "FIDO_2_1"))
            sk_cbor_put(*reply, sk_cbor_uint(4), cbor_build_bool(true));
        r = SK_OK;
        break;
    case 0x02: /* getKeyAgreement */
        if (!q.has_proto) {
            r = SK_ERR_MISSING_PARAMETER;
        } else if (!sk_protocol_supported(key, q.proto)) {
            r = SK_ERR_INVALID_PARAMETER;
        } else {
            cbor_item_t *cose = sk_ka_cose(key);
            if (cose == NULL) {
                r = SK_ERR_OTHER;
                break;
            }
            *reply = cbor_new_definite_map(1);
            sk_cbor_put(*reply, sk_cbor_uint(1), cose);
            r = SK_OK;
        }
        break;
    case 0x03:
        r = sk_pin_set_pin(key, &q);
        break;
    case 0x04:
        r = sk_pin_change_pin(key, &q);
        break;
    case 0x05:
        r = sk_pin_get_token(key, &q, sk_current_cid(key), reply);
        break;
    case 0x06:
        if (!sk_option(key, "uv") || !sk_option(key, "pinUvAuthToken"))
            r = SK_ERR_INVALID_SUBCOMMAND;
        else
            r = sk_pin_get_token(key, &q, sk_current_cid(key), reply);
        break;
    case 0x07: /* getUVRetries */
        if (!sk_option_present(key, "uv")) {
            r = SK_ERR_INVALID_SUBCOMMAND;
        } else {
            *reply = cbor_new_definite_map(1);
            sk_cbor_put(*reply, sk_cbor_uint(5), sk_cbor_uint(8));
            r = SK_OK;
        }
        break;
    case 0x09:
        if (!sk_option(key, "pinUvAuthToken"))
            r = SK_ERR_INVALID_SUBCOMMAND;
        else
            r = sk_pin_get_token(key, &q, sk_current_cid(key), reply);
        break;
    default:
        r = SK_ERR_INVALID_SUBCOMMAND;
        break;
    }
    g_free(q.rp_id);
    return r;
}

/* --- authenticatorConfig (0x0d) ----------------------------------------------------------- */

/* subCommandParams as bytes for the MAC: re-serialising the decoded item gives back the bytes
 * that were sent, because libfido2 sends canonical CBOR (ctap2.md §4.4). */
static GByteArray *
sk_serialize(const cbor_item_t *item)
{
    GByteArray *out = g_byte_array_new();
    unsigned char *buf = NULL;
    size_t alloc = 0, len;

    len = cbor_serialize_alloc((cbor_item_t *)(uintptr_t)item, &buf, &alloc);
    g_byte_array_append(out, buf, (guint)len);
    free(buf);
    return out;
}

int
sk_config(SoftKey *key, const cbor_item_t *req)
{
    uint64_t sub, proto = 0, v;
    cbor_item_t *params = sk_cbor_get(req, 2), *auth = sk_cbor_get(req, 4), *i;
    bool has_proto;

    if (!sk_cbor_get_u64(sk_cbor_get(req, 1), &sub))
        return SK_ERR_MISSING_PARAMETER;
    has_proto = sk_cbor_get_u64(sk_cbor_get(req, 3), &proto);
    if (params != NULL && !cbor_isa_map(params))
        return SK_ERR_CBOR_UNEXPECTED;
    if (key->pin_set || (key->always_uv && sub != 0x02)) {
        GByteArray *msg;
        uint8_t pre[34];
        bool ok;

        if (auth == NULL)
            return SK_ERR_PUAT_REQUIRED;
        if (!sk_is_bstr(auth))
            return SK_ERR_CBOR_UNEXPECTED;
        if (!has_proto)
            return SK_ERR_MISSING_PARAMETER;
        if (!sk_protocol_supported(key, proto))
            return SK_ERR_INVALID_PARAMETER;
        memset(pre, 0xff, 32);
        pre[32] = 0x0d;
        pre[33] = (uint8_t)sub;
        msg = g_byte_array_new();
        g_byte_array_append(msg, pre, sizeof(pre));
        if (params != NULL) {
            GByteArray *p = sk_serialize(params);
            g_byte_array_append(msg, p->data, p->len);
            g_byte_array_unref(p);
        }
        ok = sk_token_verify(key, proto, msg->data, msg->len, cbor_bytestring_handle(auth),
                             cbor_bytestring_length(auth), SK_PERM_ACFG, NULL);
        g_byte_array_unref(msg);
        if (!ok)
            return SK_ERR_PIN_AUTH_INVALID;
    }
    switch (sub) {
    case 0x02: /* toggleAlwaysUv */
        if (!sk_option_present(key, "alwaysUv"))
            return SK_ERR_INVALID_PARAMETER;
        key->always_uv = !key->always_uv;
        return SK_OK;
    case 0x03: { /* setMinPINLength */
        unsigned newmin = key->min_pin_len;
        bool force = false;

        if (!sk_option(key, "setMinPINLength"))
            return SK_ERR_INVALID_PARAMETER;
        if ((i = sk_cbor_get(params, 1)) != NULL) {
            if (!sk_cbor_get_u64(i, &v))
                return SK_ERR_CBOR_UNEXPECTED;
            if (v > 63)
                return SK_ERR_PIN_POLICY;
            newmin = (unsigned)v;
        }
        if ((i = sk_cbor_get(params, 3)) != NULL) {
            if (!cbor_isa_float_ctrl(i) || !cbor_float_ctrl_is_ctrl(i))
                return SK_ERR_CBOR_UNEXPECTED;
            force = cbor_get_bool(i);
        }
        if (newmin < key->min_pin_len)
            return SK_ERR_PIN_POLICY;
        if (force && !key->pin_set)
            return SK_ERR_PIN_NOT_SET;
        if (force || (key->pin_set && newmin > key->pin_cp_len))
            key->force_pin_change = true;
        key->min_pin_len = newmin;
        return SK_OK;
    }
    default: /* enableEnterpriseAttestation, vendorPrototype: not implemented */
        return SK_ERR_INVALID_PARAMETER;
    }
}
