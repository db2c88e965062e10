/* softkey-cred.c: authenticatorMakeCredential (ES256, packed attestation), the credential
 * store, the test attestation CA, and U2F REGISTER for u2f-only models.
 *
 * Processing order and error codes follow ctap2.md §5.2; authData §5.3; extension outputs §5.4
 * (exactly the requested, supported ones); attestation §5.5/§5.6. The attestation CA and one
 * attestation key are made in-process at first use (one per process) and never written to
 * disk; each key gets a leaf certificate carrying its AAGUID (id-fido-gen-ce-aaguid).
 */
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <openssl/x509v3.h>

#include "softkey-private.h"

/* --- test attestation CA ------------------------------------------------------------------ */

static GMutex sk_ca_lock;
static EVP_PKEY *sk_ca_key;
static X509 *sk_ca_cert;
static char *sk_ca_pem;
static EVP_PKEY *sk_att_key;

static bool
sk_x509_name(X509_NAME *n, const char *ou, const char *cn)
{
    return X509_NAME_add_entry_by_txt(n, "C", MBSTRING_ASC, (const unsigned char *)"US", -1, -1,
                                      0) &&
           X509_NAME_add_entry_by_txt(n, "O", MBSTRING_UTF8,
                                      (const unsigned char *)"Keydesk Soft Key Test", -1, -1, 0) &&
           (ou == NULL || X509_NAME_add_entry_by_txt(n, "OU", MBSTRING_UTF8,
                                                     (const unsigned char *)ou, -1, -1, 0)) &&
           X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_UTF8, (const unsigned char *)cn, -1, -1, 0);
}

static bool
sk_x509_ext(X509 *issuer, X509 *x, int nid, const char *value)
{
    X509V3_CTX ctx;
    X509_EXTENSION *ext;
    bool ok;

    X509V3_set_ctx(&ctx, issuer, x, NULL, NULL, 0);
    if ((ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value)) == NULL)
        return false;
    ok = X509_add_ext(x, ext, -1) == 1;
    X509_EXTENSION_free(ext);
    return ok;
}

static X509 *
sk_x509_new(EVP_PKEY *pub, long serial)
{
    X509 *x = X509_new();

    if (x == NULL || !X509_set_version(x, 2) ||
        !ASN1_INTEGER_set(X509_get_serialNumber(x), serial) ||
        X509_gmtime_adj(X509_getm_notBefore(x), -24 * 3600) == NULL ||
        X509_gmtime_adj(X509_getm_notAfter(x), 10L * 365 * 24 * 3600) == NULL ||
        !X509_set_pubkey(x, pub)) {
        X509_free(x);
        return NULL;
    }
    return x;
}

/* Makes the CA and the attestation key once per process. Caller holds sk_ca_lock. */
static bool
sk_ca_init_locked(void)
{
    BIO *bio = NULL;
    BUF_MEM *mem;
    bool ok = false;

    if (sk_ca_cert != NULL)
        return true;
    if ((sk_ca_key = EVP_EC_gen("P-256")) == NULL || (sk_att_key = EVP_EC_gen("P-256")) == NULL)
        goto fail;
    if ((sk_ca_cert = sk_x509_new(sk_ca_key, 1)) == NULL ||
        !sk_x509_name(X509_get_subject_name(sk_ca_cert), NULL, "Soft Key Test Root CA") ||
        !X509_set_issuer_name(sk_ca_cert, X509_get_subject_name(sk_ca_cert)) ||
        !sk_x509_ext(sk_ca_cert, sk_ca_cert, NID_basic_constraints, "critical,CA:TRUE") ||
        !sk_x509_ext(sk_ca_cert, sk_ca_cert, NID_key_usage, "critical,keyCertSign,cRLSign") ||
        !sk_x509_ext(sk_ca_cert, sk_ca_cert, NID_subject_key_identifier, "hash") ||
        X509_sign(sk_ca_cert, sk_ca_key, EVP_sha256()) <= 0)
        goto fail;
    if ((bio = BIO_new(BIO_s_mem())) == NULL || !PEM_write_bio_X509(bio, sk_ca_cert))
        goto fail;
    BIO_get_mem_ptr(bio, &mem);
    sk_ca_pem = g_strndup(mem->data, mem->length);
    ok = true;
fail:
    BIO_free(bio);
    if (!ok) {
        g_clear_pointer(&sk_ca_cert, X509_free);
        g_clear_pointer(&sk_ca_key, EVP_PKEY_free);
        g_clear_pointer(&sk_att_key, EVP_PKEY_free);
    }
    return ok;
}

const char *
sk_attestation_ca_pem(void)
{
    const char *pem;

    g_mutex_lock(&sk_ca_lock);
    sk_ca_init_locked();
    pem = sk_ca_pem;
    g_mutex_unlock(&sk_ca_lock);
    return pem;
}

/* The leaf certificate for @aaguid (cached per key until the AAGUID changes). */
static X509 *
sk_att_cert(SoftKey *key)
{
    static long serial = 1000;
    ASN1_OBJECT *obj = NULL;
    ASN1_OCTET_STRING *os = NULL;
    X509_EXTENSION *ext = NULL;
    uint8_t der[18];
    X509 *x = NULL;

    if (key->att_cert != NULL && memcmp(key->att_cert_aaguid, key->m.aaguid, 16) == 0)
        return key->att_cert;
    g_mutex_lock(&sk_ca_lock);
    if (!sk_ca_init_locked())
        goto fail;
    der[0] = 0x04; /* OCTET STRING (16 bytes) inside the extension's OCTET STRING */
    der[1] = 16;
    memcpy(der + 2, key->m.aaguid, 16);
    if ((x = sk_x509_new(sk_att_key, ++serial)) == NULL ||
        !sk_x509_name(X509_get_subject_name(x), "Authenticator Attestation", "Soft Key") ||
        !X509_set_issuer_name(x, X509_get_subject_name(sk_ca_cert)) ||
        !sk_x509_ext(sk_ca_cert, x, NID_basic_constraints, "critical,CA:FALSE") ||
        !sk_x509_ext(sk_ca_cert, x, NID_authority_key_identifier, "keyid:always") ||
        (obj = OBJ_txt2obj("1.3.6.1.4.1.45724.1.1.4", 1)) == NULL ||
        (os = ASN1_OCTET_STRING_new()) == NULL || !ASN1_OCTET_STRING_set(os, der, sizeof(der)) ||
        (ext = X509_EXTENSION_create_by_OBJ(NULL, obj, 0, os)) == NULL ||
        X509_add_ext(x, ext, -1) != 1 || X509_sign(x, sk_ca_key, EVP_sha256()) <= 0) {
        g_clear_pointer(&x, X509_free);
        goto fail;
    }
    X509_free(key->att_cert);
    key->att_cert = x;
    memcpy(key->att_cert_aaguid, key->m.aaguid, 16);
fail:
    g_mutex_unlock(&sk_ca_lock);
    ASN1_OBJECT_free(obj);
    ASN1_OCTET_STRING_free(os);
    X509_EXTENSION_free(ext);
    return x;
}

/* --- credentials -------------------------------------------------------------------------- */

void
sk_credential_free(gpointer p)
{
    SkCredential *c = p;

    EVP_PKEY_free(c->pkey);
    g_free(c->rp_id);
    g_free(c->user_id);
    explicit_bzero(c, sizeof(*c));
    g_free(c);
}

static SkCredential *
sk_find_credential(SoftKey *key, const char *rp_id, const uint8_t *id, size_t id_len)
{
    for (guint i = 0; i < key->creds->len; i++) {
        SkCredential *c = g_ptr_array_index(key->creds, i);
        if (c->id_len == id_len && memcmp(c->id, id, id_len) == 0 &&
            (rp_id == NULL || strcmp(c->rp_id, rp_id) == 0))
            return c;
    }
    return NULL;
}

static bool
sk_ec_point(EVP_PKEY *pkey, uint8_t pub[65])
{
    size_t len = 0;

    return EVP_PKEY_get_octet_string_param(pkey, OSSL_PKEY_PARAM_PUB_KEY, pub, 65, &len) &&
           len == 65 && pub[0] == 0x04;
}

static GByteArray *
sk_sign(EVP_PKEY *pkey, const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    GByteArray *sig = NULL;
    size_t len = 0;

    if (ctx == NULL || EVP_DigestSignInit(ctx, NULL, EVP_sha256(), NULL, pkey) <= 0 ||
        EVP_DigestSignUpdate(ctx, a, alen) <= 0 || EVP_DigestSignUpdate(ctx, b, blen) <= 0 ||
        EVP_DigestSignFinal(ctx, NULL, &len) <= 0)
        goto out;
    sig = g_byte_array_sized_new((guint)len);
    g_byte_array_set_size(sig, (guint)len);
    if (EVP_DigestSignFinal(ctx, sig->data, &len) <= 0) {
        g_clear_pointer(&sig, g_byte_array_unref);
        goto out;
    }
    g_byte_array_set_size(sig, (guint)len);
out:
    EVP_MD_CTX_free(ctx);
    return sig;
}

/* --- authenticatorMakeCredential (0x01) --------------------------------------------------- */

typedef struct {
    const cbor_item_t *cdh;
    char *rp_id;
    const cbor_item_t *user_id;
    const cbor_item_t *algs;
    const cbor_item_t *exclude;
    const cbor_item_t *exts;
    const cbor_item_t *opts;
    const cbor_item_t *auth;
    uint64_t proto;
    bool has_proto;
} SkMcReq;

static int
sk_mc_parse(const cbor_item_t *req, SkMcReq *q)
{
    cbor_item_t *rp, *user, *i;

    q->cdh = sk_cbor_get(req, 1);
    rp = sk_cbor_get(req, 2);
    user = sk_cbor_get(req, 3);
    q->algs = sk_cbor_get(req, 4);
    if (q->cdh == NULL || rp == NULL || user == NULL || q->algs == NULL)
        return SK_ERR_MISSING_PARAMETER;
    if (!cbor_isa_bytestring(q->cdh) || cbor_bytestring_length(q->cdh) != 32 || !cbor_isa_map(rp) ||
        !cbor_isa_map(user) || !cbor_isa_array(q->algs))
        return SK_ERR_CBOR_UNEXPECTED;
    if ((q->rp_id = sk_cbor_strdup(sk_cbor_get_str(rp, "id"))) == NULL)
        return SK_ERR_MISSING_PARAMETER;
    q->user_id = sk_cbor_get_str(user, "id");
    if (q->user_id == NULL)
        return SK_ERR_MISSING_PARAMETER;
    if (!cbor_isa_bytestring(q->user_id) || cbor_bytestring_length(q->user_id) > 64)
        return SK_ERR_CBOR_UNEXPECTED;
    q->exclude = sk_cbor_get(req, 5);
    q->exts = sk_cbor_get(req, 6);
    q->opts = sk_cbor_get(req, 7);
    q->auth = sk_cbor_get(req, 8);
    if ((q->exclude != NULL && !cbor_isa_array(q->exclude)) ||
        (q->exts != NULL && !cbor_isa_map(q->exts)) ||
        (q->opts != NULL && !cbor_isa_map(q->opts)) ||
        (q->auth != NULL && !cbor_isa_bytestring(q->auth)))
        return SK_ERR_CBOR_UNEXPECTED;
    if ((i = sk_cbor_get(req, 9)) != NULL) {
        if (!sk_cbor_get_u64(i, &q->proto))
            return SK_ERR_CBOR_UNEXPECTED;
        q->has_proto = true;
    }
    return SK_OK;
}

static int
sk_mc_option(const cbor_item_t *opts, const char *name)
{
    cbor_item_t *v = sk_cbor_get_str(opts, name);

    if (v == NULL)
        return -1;
    if (!cbor_isa_float_ctrl(v) || !cbor_float_ctrl_is_ctrl(v) ||
        (cbor_ctrl_value(v) != CBOR_CTRL_TRUE && cbor_ctrl_value(v) != CBOR_CTRL_FALSE))
        return -2;
    return cbor_get_bool(v) ? 1 : 0;
}

static bool
sk_alg_supported(const cbor_item_t *algs)
{
    for (size_t i = 0; i < cbor_array_size(algs); i++) {
        cbor_item_t *e = cbor_array_handle(algs)[i];
        int64_t alg;
        char *type;
        bool ok;

        if (!cbor_isa_map(e))
            continue;
        type = sk_cbor_strdup(sk_cbor_get_str(e, "type"));
        ok = type != NULL && strcmp(type, "public-key") == 0 &&
             sk_cbor_get_i64(sk_cbor_get_str(e, "alg"), &alg) && alg == -7;
        g_free(type);
        if (ok)
            return true;
    }
    return false;
}

static bool
sk_excluded(SoftKey *key, const SkMcReq *q, bool uv)
{
    for (size_t i = 0; i < cbor_array_size(q->exclude); i++) {
        cbor_item_t *e = cbor_array_handle(q->exclude)[i], *id;
        SkCredential *c;

        if (!cbor_isa_map(e) || (id = sk_cbor_get_str(e, "id")) == NULL || !cbor_isa_bytestring(id))
            continue;
        c = sk_find_credential(key, q->rp_id, cbor_bytestring_handle(id),
                               cbor_bytestring_length(id));
        if (c != NULL && (c->cred_protect != 3 || uv))
            return true;
    }
    return false;
}

static void
sk_mc_free(SkMcReq *q)
{
    g_free(q->rp_id);
}

int
sk_make_credential(SoftKey *key, uint32_t cid, const cbor_item_t *req, cbor_item_t **reply)
{
    SkMcReq q = {0};
    SkCredential *cred = NULL;
    GByteArray *ad = NULL, *sig = NULL;
    cbor_item_t *extout = NULL, *att;
    uint8_t flags = 0, pub[65], hash[32], cnt[4];
    uint8_t cred_protect = 0;
    bool hmac_secret = false, uv = false, rk = false, up_done = false;
    int r, o;

    if ((r = sk_mc_parse(req, &q)) != SK_OK)
        goto out;
    /* 1. Touch probe (fido_dev_get_touch_begin): zero-length pinUvAuthParam. */
    if (q.auth != NULL && cbor_bytestring_length(q.auth) == 0) {
        if ((r = sk_wait_touch(key, cid)) != 0)
            goto out;
        r = key->pin_set ? SK_ERR_PIN_INVALID : SK_ERR_PIN_NOT_SET;
        goto out;
    }
    /* 2. Protocol. */
    if (q.auth != NULL) {
        if (!q.has_proto) {
            r = SK_ERR_MISSING_PARAMETER;
            goto out;
        }
        if (!sk_protocol_supported(key, q.proto)) {
            r = SK_ERR_INVALID_PARAMETER;
            goto out;
        }
    }
    /* 3. Algorithm. */
    if (!sk_alg_supported(q.algs)) {
        r = SK_ERR_UNSUPPORTED_ALG;
        goto out;
    }
    /* 5. Options. */
    if ((o = sk_mc_option(q.opts, "rk")) == -2 || (o == 1 && !sk_option(key, "rk"))) {
        r = o == -2 ? SK_ERR_CBOR_UNEXPECTED : SK_ERR_UNSUPPORTED_OPTION;
        goto out;
    }
    rk = o == 1;
    if ((o = sk_mc_option(q.opts, "uv")) == -2) {
        r = SK_ERR_CBOR_UNEXPECTED;
        goto out;
    }
    uv = o == 1 && q.auth == NULL;
    if (uv && !sk_option(key, "uv")) {
        r = SK_ERR_INVALID_OPTION;
        goto out;
    }
    if (sk_mc_option(q.opts, "up") == 0) {
        r = SK_ERR_INVALID_OPTION;
        goto out;
    }
    /* 6. alwaysUv. */
    if (key->always_uv && q.auth == NULL && !uv) {
        if (sk_option(key, "uv")) {
            uv = true;
        } else {
            r = key->pin_set ? SK_ERR_PUAT_REQUIRED : SK_ERR_PIN_NOT_SET;
            goto out;
        }
    }
    /* 7. A PIN is set: UV is required (unless makeCredUvNotRqd and not rk). */
    if (key->pin_set && !uv && q.auth == NULL &&
        (!sk_option(key, "makeCredUvNotRqd") || rk || key->always_uv)) {
        r = SK_ERR_PUAT_REQUIRED;
        goto out;
    }
    /* 8. Verify the token; or built-in UV (a touch stands for the fingerprint). */
    if (q.auth != NULL) {
        if (!key->pin_set ||
            !sk_token_verify(key, q.proto, cbor_bytestring_handle(q.cdh), 32,
                             cbor_bytestring_handle(q.auth), cbor_bytestring_length(q.auth),
                             SK_PERM_MC, q.rp_id)) {
            r = SK_ERR_PIN_AUTH_INVALID;
            goto out;
        }
        flags |= 0x04;
    } else if (uv) {
        if ((r = sk_wait_touch(key, cid)) != 0)
            goto out;
        up_done = true;
        flags |= 0x04;
    }
    /* 9. excludeList: touch first, then always CREDENTIAL_EXCLUDED. */
    if (q.exclude != NULL && sk_excluded(key, &q, (flags & 0x04) != 0)) {
        if (!up_done && (r = sk_wait_touch(key, cid)) != 0 && r != key->up_timeout_status)
            goto out;
        r = SK_ERR_CREDENTIAL_EXCLUDED;
        goto out;
    }
    /* 10. User presence; the token serves one request. */
    if (!up_done && (r = sk_wait_touch(key, cid)) != 0)
        goto out;
    flags |= 0x01;
    if (q.auth != NULL)
        key->token_perms &= SK_PERM_LBW;
    /* 11. Extensions: only the requested ones this model supports. */
    if (q.exts != NULL) {
        cbor_item_t *v;
        uint64_t level;

        if ((v = sk_cbor_get_str(q.exts, "credProtect")) != NULL &&
            sk_has_extension(key, "credProtect") && sk_cbor_get_u64(v, &level) && level >= 1 &&
            level <= 3)
            cred_protect = (uint8_t)level;
        if ((v = sk_cbor_get_str(q.exts, "hmac-secret")) != NULL &&
            sk_has_extension(key, "hmac-secret") && cbor_isa_float_ctrl(v) &&
            cbor_float_ctrl_is_ctrl(v) && cbor_get_bool(v))
            hmac_secret = true;
    }
    if (rk) {
        unsigned used = 0;
        for (guint i = 0; i < key->creds->len; i++) {
            SkCredential *c = g_ptr_array_index(key->creds, i);
            /* A new discoverable credential replaces the same user's on this RP. */
            if (c->rk && strcmp(c->rp_id, q.rp_id) == 0 &&
                c->user_id_len == cbor_bytestring_length(q.user_id) &&
                memcmp(c->user_id, cbor_bytestring_handle(q.user_id), c->user_id_len) == 0) {
                g_ptr_array_remove_index(key->creds, i);
                i--;
                continue;
            }
            if (c->rk)
                used++;
        }
        if (key->m.rk_capacity >= 0 && used >= (unsigned)key->m.rk_capacity) {
            r = SK_ERR_KEY_STORE_FULL;
            goto out;
        }
    }
    /* 12. The credential. */
    cred = g_new0(SkCredential, 1);
    cred->id_len = 32;
    if (key->m.max_cred_id_len >= 16 && key->m.max_cred_id_len < 32)
        cred->id_len = (size_t)key->m.max_cred_id_len;
    if (RAND_bytes(cred->id, (int)cred->id_len) != 1 ||
        (cred->pkey = EVP_EC_gen("P-256")) == NULL || !sk_ec_point(cred->pkey, pub)) {
        r = SK_ERR_OTHER;
        goto out;
    }
    cred->rp_id = g_strdup(q.rp_id);
    SHA256((const uint8_t *)q.rp_id, strlen(q.rp_id), cred->app_hash);
    cred->user_id = g_memdup2(cbor_bytestring_handle(q.user_id), cbor_bytestring_length(q.user_id));
    cred->user_id_len = cbor_bytestring_length(q.user_id);
    cred->cred_protect = cred_protect;
    cred->rk = rk;

    ad = g_byte_array_new();
    SHA256((const uint8_t *)q.rp_id, strlen(q.rp_id), hash);
    g_byte_array_append(ad, hash, 32);
    if (cred_protect != 0 || hmac_secret)
        flags |= 0x80;
    flags |= 0x40;
    g_byte_array_append(ad, &flags, 1);
    key->sign_count++;
    cnt[0] = (uint8_t)(key->sign_count >> 24);
    cnt[1] = (uint8_t)(key->sign_count >> 16);
    cnt[2] = (uint8_t)(key->sign_count >> 8);
    cnt[3] = (uint8_t)key->sign_count;
    g_byte_array_append(ad, cnt, 4);
    g_byte_array_append(ad, key->m.aaguid, 16);
    {
        uint8_t l[2] = {(uint8_t)(cred->id_len >> 8), (uint8_t)cred->id_len};
        uint8_t cose[77] = {0xa5, 0x01, 0x02, 0x03, 0x26, 0x20, 0x01, 0x21, 0x58, 0x20};

        g_byte_array_append(ad, l, 2);
        g_byte_array_append(ad, cred->id, (guint)cred->id_len);
        memcpy(cose + 10, pub + 1, 32);
        cose[42] = 0x22;
        cose[43] = 0x58;
        cose[44] = 0x20;
        memcpy(cose + 45, pub + 33, 32);
        g_byte_array_append(ad, cose, sizeof(cose));
    }
    if (flags & 0x80) {
        unsigned char *buf = NULL;
        size_t alloc = 0, len;

        extout = cbor_new_definite_map(2);
        if (cred_protect != 0)
            sk_cbor_put(extout, cbor_build_string("credProtect"), sk_cbor_uint(cred_protect));
        if (hmac_secret)
            sk_cbor_put(extout, cbor_build_string("hmac-secret"), cbor_build_bool(true));
        len = cbor_serialize_alloc(extout, &buf, &alloc);
        g_byte_array_append(ad, buf, (guint)len);
        free(buf);
    }

    att = cbor_new_definite_map(3);
    if (key->self_attestation) {
        sig = sk_sign(cred->pkey, ad->data, ad->len, cbor_bytestring_handle(q.cdh), 32);
    } else {
        X509 *x = sk_att_cert(key);
        if (x != NULL)
            sig = sk_sign(sk_att_key, ad->data, ad->len, cbor_bytestring_handle(q.cdh), 32);
    }
    if (sig == NULL) {
        cbor_decref(&att);
        r = SK_ERR_OTHER;
        goto out;
    }
    sk_cbor_put(att, cbor_build_string("alg"), sk_cbor_int(-7));
    sk_cbor_put(att, cbor_build_string("sig"), cbor_build_bytestring(sig->data, sig->len));
    if (!key->self_attestation) {
        unsigned char *der = NULL;
        int len = i2d_X509(key->att_cert, &der);
        cbor_item_t *x5c = cbor_new_definite_array(1), *c;

        c = cbor_build_bytestring(der, len > 0 ? (size_t)len : 0);
        cbor_array_push(x5c, c);
        cbor_decref(&c);
        OPENSSL_free(der);
        sk_cbor_put(att, cbor_build_string("x5c"), x5c);
    }
    *reply = cbor_new_definite_map(3);
    sk_cbor_put(*reply, sk_cbor_uint(1), cbor_build_string("packed"));
    sk_cbor_put(*reply, sk_cbor_uint(2), cbor_build_bytestring(ad->data, ad->len));
    sk_cbor_put(*reply, sk_cbor_uint(3), att);
    g_ptr_array_add(key->creds, g_steal_pointer(&cred));
    r = SK_OK;
out:
    if (cred != NULL)
        sk_credential_free(cred);
    if (ad != NULL)
        g_byte_array_unref(ad);
    if (sig != NULL)
        g_byte_array_unref(sig);
    if (extout != NULL)
        cbor_decref(&extout);
    sk_mc_free(&q);
    return r;
}

/* --- authenticatorCredentialManagement (0x0a, preview 0x41): metadata only ---------------- */

int
sk_cred_mgmt(SoftKey *key, const cbor_item_t *req, cbor_item_t **reply)
{
    cbor_item_t *params = sk_cbor_get(req, 2), *auth = sk_cbor_get(req, 4);
    uint64_t sub, proto;
    GByteArray *msg;
    unsigned used = 0;
    uint8_t b;
    bool ok;

    if (!sk_cbor_get_u64(sk_cbor_get(req, 1), &sub))
        return SK_ERR_MISSING_PARAMETER;
    if (auth == NULL)
        return SK_ERR_PUAT_REQUIRED;
    if (!cbor_isa_bytestring(auth))
        return SK_ERR_CBOR_UNEXPECTED;
    if (!sk_cbor_get_u64(sk_cbor_get(req, 3), &proto))
        return SK_ERR_MISSING_PARAMETER;
    if (!sk_protocol_supported(key, proto))
        return SK_ERR_INVALID_PARAMETER;
    /* pinUvAuthParam = authenticate(token, subCommand || subCommandParams) */
    msg = g_byte_array_new();
    b = (uint8_t)sub;
    g_byte_array_append(msg, &b, 1);
    if (params != NULL) {
        unsigned char *buf = NULL;
        size_t alloc = 0, len = cbor_serialize_alloc(params, &buf, &alloc);
        g_byte_array_append(msg, buf, (guint)len);
        free(buf);
    }
    ok = key->pin_set &&
         sk_token_verify(key, proto, msg->data, msg->len, cbor_bytestring_handle(auth),
                         cbor_bytestring_length(auth), SK_PERM_CM, NULL);
    g_byte_array_unref(msg);
    if (!ok)
        return SK_ERR_PIN_AUTH_INVALID;
    if (sub != 0x01) /* getCredsMetadata; enumeration and deletion are not implemented */
        return SK_ERR_INVALID_SUBCOMMAND;
    for (guint i = 0; i < key->creds->len; i++) {
        if (((SkCredential *)g_ptr_array_index(key->creds, i))->rk)
            used++;
    }
    *reply = cbor_new_definite_map(2);
    sk_cbor_put(*reply, sk_cbor_uint(1), sk_cbor_uint(used));
    sk_cbor_put(*reply, sk_cbor_uint(2),
                sk_cbor_uint(key->m.rk_capacity > used ? (uint64_t)key->m.rk_capacity - used : 0));
    return SK_OK;
}

/* --- U2F (CTAPHID_MSG) for u2f-only models ------------------------------------------------ */

static GByteArray *
sk_u2f_sw(GByteArray *out, uint16_t sw)
{
    uint8_t b[2] = {(uint8_t)(sw >> 8), (uint8_t)sw};

    if (out == NULL)
        out = g_byte_array_new();
    g_byte_array_append(out, b, 2);
    return out;
}

/* REGISTER (0x01), AUTHENTICATE check-only (0x02/P1 0x07) and VERSION (0x03). A request that
 * needs presence answers SW_CONDITIONS_NOT_SATISFIED (6985) until the key is "touched": the
 * host polls, as with real U2F keys. */
GByteArray *
sk_u2f_msg(SoftKey *key, uint32_t cid, const uint8_t *apdu, size_t len)
{
    const uint8_t *data;
    size_t lc;
    uint8_t ins, p1;

    if (len < 4)
        return sk_u2f_sw(NULL, 0x6700);
    ins = apdu[1];
    p1 = apdu[2];
    if (apdu[0] != 0)
        return sk_u2f_sw(NULL, 0x6e00);
    if (len >= 7 && apdu[4] == 0) { /* extended length */
        lc = (size_t)apdu[5] << 8 | apdu[6];
        data = apdu + 7;
        if (7 + lc > len)
            return sk_u2f_sw(NULL, 0x6700);
    } else {
        lc = 0;
        data = apdu + 4;
    }
    switch (ins) {
    case 0x03: {
        GByteArray *out = g_byte_array_new();
        g_byte_array_append(out, (const guint8 *)"U2F_V2", 6);
        return sk_u2f_sw(out, 0x9000);
    }
    case 0x02: { /* AUTHENTICATE: only check-only is needed for excludeList */
        size_t khl;
        if (lc < 65)
            return sk_u2f_sw(NULL, 0x6700);
        khl = data[64];
        if (65 + khl > lc)
            return sk_u2f_sw(NULL, 0x6700);
        for (guint i = 0; i < key->creds->len; i++) {
            SkCredential *c = g_ptr_array_index(key->creds, i);
            if (c->id_len == khl && memcmp(c->id, data + 65, khl) == 0 &&
                memcmp(c->app_hash, data + 32, 32) == 0)
                return sk_u2f_sw(NULL, 0x6985); /* known: "touch needed" (check-only) */
        }
        (void)p1;
        return sk_u2f_sw(NULL, 0x6a80);
    }
    case 0x01: { /* REGISTER: challenge(32) | application(32) */
        SkCredential *cred;
        GByteArray *out, *sig, *msg;
        unsigned char *der = NULL;
        uint8_t pub[65], zero = 0, khl;
        X509 *x;
        int dlen, r;

        if (lc != 64)
            return sk_u2f_sw(NULL, 0x6700);
        if ((r = sk_wait_touch(key, cid)) == SK_NO_REPLY)
            return NULL;
        if (r != 0)
            return sk_u2f_sw(NULL, 0x6985);
        if ((x = sk_att_cert(key)) == NULL)
            return sk_u2f_sw(NULL, 0x6f00);
        cred = g_new0(SkCredential, 1);
        cred->id_len = 64;
        if (RAND_bytes(cred->id, 64) != 1 || (cred->pkey = EVP_EC_gen("P-256")) == NULL ||
            !sk_ec_point(cred->pkey, pub)) {
            sk_credential_free(cred);
            return sk_u2f_sw(NULL, 0x6f00);
        }
        /* U2F knows only the application parameter. */
        cred->rp_id = g_strdup("");
        memcpy(cred->app_hash, data + 32, 32);
        khl = (uint8_t)cred->id_len;
        msg = g_byte_array_new();
        g_byte_array_append(msg, &zero, 1);
        g_byte_array_append(msg, data + 32, 32);
        g_byte_array_append(msg, data, 32);
        g_byte_array_append(msg, cred->id, khl);
        g_byte_array_append(msg, pub, 65);
        sig = sk_sign(sk_att_key, msg->data, msg->len, NULL, 0);
        g_byte_array_unref(msg);
        dlen = i2d_X509(x, &der);
        if (sig == NULL || dlen <= 0) {
            OPENSSL_free(der);
            if (sig != NULL)
                g_byte_array_unref(sig);
            sk_credential_free(cred);
            return sk_u2f_sw(NULL, 0x6f00);
        }
        out = g_byte_array_new();
        g_byte_array_append(out, (const guint8 *)"\x05", 1);
        g_byte_array_append(out, pub, 65);
        g_byte_array_append(out, &khl, 1);
        g_byte_array_append(out, cred->id, khl);
        g_byte_array_append(out, der, (guint)dlen);
        g_byte_array_append(out, sig->data, sig->len);
        OPENSSL_free(der);
        g_byte_array_unref(sig);
        g_ptr_array_add(key->creds, cred);
        return sk_u2f_sw(out, 0x9000);
    }
    default:
        return sk_u2f_sw(NULL, 0x6d00);
    }
}
