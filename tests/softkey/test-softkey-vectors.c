/* test-softkey-vectors.c: the soft key's PIN/UV auth protocols one and two against the worked
 * test vectors of ctap2.md §4.8 (fixed authenticator and platform keys, PIN "1234", token
 * 32 × 0x33, clientDataHash 32 × 0x44). Drives the key's clientPIN handler directly with the
 * vector's bytes, so a wrong KDF, IV handling, padding or MAC length fails here even if
 * libfido2 and the key were wrong the same way.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include <openssl/core_names.h>
#include <openssl/hmac.h>
#include <openssl/param_build.h>

#include "softkey-private.h"

#define AUTH_SK  "1111111111111111111111111111111111111111111111111111111111111111"
#define AUTH_X   "0217e617f0b6443928278f96999e69a23a4f2c152bdf6d6cdf66e5b80282d4ed"
#define AUTH_Y   "194a7debcb97712d2dda3ca85aa8765a56f45fc758599652f2897c65306e5794"
#define PLAT_X   "d65a93977caa3d1b081852ff57a79e465f1660577304baead505dd3a48589cf3"
#define PLAT_Y   "50185e895372df6221ea3a137557e473fddb6755f05bd507c3c533fce9c91285"
#define PIN_HASH "03ac674216f3e15c761ee1a5e255f067"

static GByteArray *
unhex(const char *s)
{
    GByteArray *a = g_byte_array_new();

    for (; s[0] != '\0' && s[1] != '\0'; s += 2) {
        guint8 b = (guint8)(g_ascii_xdigit_value(s[0]) << 4 | g_ascii_xdigit_value(s[1]));
        g_byte_array_append(a, &b, 1);
    }
    return a;
}

static cbor_item_t *
bstr(const char *hex)
{
    GByteArray *a = unhex(hex);
    cbor_item_t *i = cbor_build_bytestring(a->data, a->len);

    g_byte_array_unref(a);
    return i;
}

/* The authenticator key of the vectors (scalar 32 × 0x11). */
static EVP_PKEY *
vector_key(void)
{
    OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
    GByteArray *sk = unhex(AUTH_SK), *x = unhex(AUTH_X), *y = unhex(AUTH_Y);
    BIGNUM *priv = BN_bin2bn(sk->data, (int)sk->len, NULL);
    uint8_t pub[65] = {0x04};
    OSSL_PARAM *params;
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
    EVP_PKEY *pkey = NULL;

    memcpy(pub + 1, x->data, 32);
    memcpy(pub + 33, y->data, 32);
    assert_true(OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, "P-256", 0));
    assert_true(OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_PRIV_KEY, priv));
    assert_true(OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, pub, sizeof(pub)));
    params = OSSL_PARAM_BLD_to_param(bld);
    assert_true(EVP_PKEY_fromdata_init(ctx) > 0);
    assert_true(EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_KEYPAIR, params) > 0);
    OSSL_PARAM_free(params);
    OSSL_PARAM_BLD_free(bld);
    EVP_PKEY_CTX_free(ctx);
    BN_free(priv);
    g_byte_array_unref(sk);
    g_byte_array_unref(x);
    g_byte_array_unref(y);
    return pkey;
}

static cbor_item_t *
platform_cose(void)
{
    cbor_item_t *m = cbor_new_definite_map(5);

    sk_cbor_put(m, sk_cbor_uint(1), sk_cbor_uint(2));
    sk_cbor_put(m, sk_cbor_uint(3), sk_cbor_int(-25));
    sk_cbor_put(m, sk_cbor_int(-1), sk_cbor_uint(1));
    sk_cbor_put(m, sk_cbor_int(-2), bstr(PLAT_X));
    sk_cbor_put(m, sk_cbor_int(-3), bstr(PLAT_Y));
    return m;
}

/* Runs clientPIN subcommand @sub with the vector's platform key and the given fields. */
static int
client_pin(SoftKey *key, unsigned proto, unsigned sub, const char *auth, const char *new_pin,
           const char *pin_hash)
{
    cbor_item_t *req = cbor_new_definite_map(6), *reply = NULL;
    int r;

    sk_cbor_put(req, sk_cbor_uint(1), sk_cbor_uint(proto));
    sk_cbor_put(req, sk_cbor_uint(2), sk_cbor_uint(sub));
    sk_cbor_put(req, sk_cbor_uint(3), platform_cose());
    sk_cbor_put(req, sk_cbor_uint(4), bstr(auth));
    sk_cbor_put(req, sk_cbor_uint(5), bstr(new_pin));
    if (pin_hash != NULL)
        sk_cbor_put(req, sk_cbor_uint(6), bstr(pin_hash));
    g_mutex_lock(&key->lock);
    EVP_PKEY_free(key->ka_key);
    key->ka_key = vector_key();
    r = sk_client_pin(key, req, &reply);
    g_mutex_unlock(&key->lock);
    if (reply != NULL)
        cbor_decref(&reply);
    cbor_decref(&req);
    return r;
}

static void
assert_pin_1234(SoftKey *key)
{
    GByteArray *h = unhex(PIN_HASH);

    assert_true(key->pin_set);
    assert_memory_equal(key->pin_hash, h->data, 16);
    assert_int_equal(key->pin_cp_len, 4);
    g_byte_array_unref(h);
}

static void
test_protocol1_pin(void **state)
{
    static const char new_pin[] =
        "7858799531c5bcddb8336a2238214a1efea3e02503372bf8d507f8f458407601"
        "aff98a85c41aa25e9777ca5c31f01d24fb4192edd6bf94a09a0966467100e11c";
    SoftKey *key = softkey_new();

    /* a MAC one bit off is refused, and no PIN is set */
    assert_int_equal(client_pin(key, 1, 3, "193f811cf4c9875dd8c2cc2bb7c8af12", new_pin, NULL),
                     SK_ERR_PIN_AUTH_INVALID);
    assert_false(key->pin_set);
    assert_int_equal(client_pin(key, 1, 3, "193f811cf4c9875dd8c2cc2bb7c8af13", new_pin, NULL),
                     SK_OK);
    assert_pin_1234(key);
    /* changePIN "1234" → "1234" with pinHashEnc */
    assert_int_equal(client_pin(key, 1, 4, "0bf7eed015065149c39cd252f88b2f1a", new_pin,
                                "cd782dd78eb3517e6279ff687e577f00"),
                     SK_OK);
    assert_pin_1234(key);
    assert_int_equal(key->pin_retries, 8);
    softkey_free(key);
}

static void
test_protocol2_pin(void **state)
{
    static const char new_pin[] =
        "55555555555555555555555555555555"
        "abbe3339f97dd010bb3235ddd454467436921d332385b29f3ef16da43c7c45d9"
        "541941fc64f5dbb5d02c47bee2012319744a95b060145ac0aa3aa3624efa04e3";
    SoftKey *key = softkey_new();

    /* protocol two needs the whole 32-byte MAC */
    assert_int_equal(client_pin(key, 2, 3, "df02f337fa148b8b01e1060f7c2d7dae", new_pin, NULL),
                     SK_ERR_PIN_AUTH_INVALID);
    assert_int_equal(client_pin(key, 2, 3,
                                "df02f337fa148b8b01e1060f7c2d7daebf109cf1c9381e8d3739773ccc6b0ea4",
                                new_pin, NULL),
                     SK_OK);
    assert_pin_1234(key);
    assert_int_equal(
        client_pin(key, 2, 4, "bc5fdd58628fb21c8ffa14cda1db102b3fa59efd1f56cd98bd4a412b4cfaa388",
                   new_pin, "5555555555555555555555555555555579299cda72f862f0c03051b42acada0d"),
        SK_OK);
    assert_pin_1234(key);
    softkey_free(key);
}

/* setPIN (protocol one, the vector's shared secret) of @len bytes of '7' padded to @padded. */
static int
set_pin_of_length(SoftKey *key, size_t len, size_t padded)
{
    GByteArray *ss = unhex("98f5bf15dbc72627acd9a8ab61ce21349ea3496d79136adf08ad381cc9c0fa25");
    static const uint8_t iv[16] = {0};
    uint8_t pin[96] = {0}, enc[96], mac[32];
    unsigned mac_len = 0;
    int n = 0, m = 0;
    char *enc_hex, *mac_hex;
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    int r;

    memset(pin, '7', len);
    assert_true(EVP_EncryptInit_ex(ctx, EVP_aes_256_cbc(), NULL, ss->data, iv) > 0);
    EVP_CIPHER_CTX_set_padding(ctx, 0);
    assert_true(EVP_EncryptUpdate(ctx, enc, &n, pin, (int)padded) > 0);
    assert_true(EVP_EncryptFinal_ex(ctx, enc + n, &m) > 0);
    assert_non_null(HMAC(EVP_sha256(), ss->data, 32, enc, padded, mac, &mac_len));
    enc_hex = g_strnfill(padded * 2, '0');
    mac_hex = g_strnfill(32, '0');
    for (size_t i = 0; i < padded; i++)
        g_snprintf(enc_hex + 2 * i, 3, "%02x", enc[i]);
    for (size_t i = 0; i < 16; i++)
        g_snprintf(mac_hex + 2 * i, 3, "%02x", mac[i]);
    r = client_pin(key, 1, 3, mac_hex, enc_hex, NULL);
    g_free(enc_hex);
    g_free(mac_hex);
    EVP_CIPHER_CTX_free(ctx);
    g_byte_array_unref(ss);
    return r;
}

/* The key's own PIN rules (libfido2 refuses > 63 bytes before sending, so only a direct
 * request reaches them): 64 bytes without a terminator, padding other than 64 bytes. */
static void
test_pin_length_rules(void **state)
{
    SoftKey *key = softkey_new();

    assert_int_equal(set_pin_of_length(key, 64, 64), SK_ERR_PIN_POLICY);
    assert_int_equal(set_pin_of_length(key, 3, 64), SK_ERR_PIN_POLICY);
    assert_int_equal(set_pin_of_length(key, 8, 48), SK_ERR_INVALID_PARAMETER);
    assert_int_equal(set_pin_of_length(key, 8, 80), SK_ERR_INVALID_PARAMETER);
    assert_false(key->pin_set);
    assert_int_equal(set_pin_of_length(key, 63, 64), SK_OK);
    assert_int_equal(key->pin_cp_len, 63);
    softkey_free(key);
}

/* makeCredential and authenticatorConfig MACs with the token 32 × 0x33. */
static void
test_token_macs(void **state)
{
    SoftKey *key = softkey_new();
    uint8_t cdh[32], cfg[37];
    GByteArray *mc1 = unhex("182aa520f4de9e1351b8dea4facbe1e2");
    GByteArray *mc2 = unhex("182aa520f4de9e1351b8dea4facbe1e2369fa4ca0262ac9bc41c27d55903a695");
    GByteArray *cf1 = unhex("fd33e32903888983bba8c59ecae8e831");
    GByteArray *cf2 = unhex("fd33e32903888983bba8c59ecae8e831517e307f387cc1be048e157332156e2b");

    memset(cdh, 0x44, sizeof(cdh));
    memset(cfg, 0xff, 32);
    memcpy(cfg + 32, "\x0d\x03\xa1\x01\x06", 5);
    g_mutex_lock(&key->lock);
    memset(key->token, 0x33, sizeof(key->token));
    key->token_in_use = true;
    key->token_perms = SK_PERM_MC | SK_PERM_ACFG;
    key->token_start = sk_now(key);
    assert_true(sk_token_verify(key, 1, cdh, 32, mc1->data, mc1->len, SK_PERM_MC, NULL));
    assert_true(sk_token_verify(key, 2, cdh, 32, mc2->data, mc2->len, SK_PERM_MC, NULL));
    /* protocol one's 16 bytes are not a protocol-two MAC */
    assert_false(sk_token_verify(key, 2, cdh, 32, mc1->data, mc1->len, SK_PERM_MC, NULL));
    assert_true(sk_token_verify(key, 1, cfg, sizeof(cfg), cf1->data, cf1->len, SK_PERM_ACFG, NULL));
    assert_true(sk_token_verify(key, 2, cfg, sizeof(cfg), cf2->data, cf2->len, SK_PERM_ACFG, NULL));
    /* permissions and lifetime */
    key->token_perms = SK_PERM_MC;
    assert_false(
        sk_token_verify(key, 2, cfg, sizeof(cfg), cf2->data, cf2->len, SK_PERM_ACFG, NULL));
    key->clock_offset_us += 31 * G_USEC_PER_SEC;
    assert_false(sk_token_verify(key, 2, cdh, 32, mc2->data, mc2->len, SK_PERM_MC, NULL));
    g_mutex_unlock(&key->lock);
    g_byte_array_unref(mc1);
    g_byte_array_unref(mc2);
    g_byte_array_unref(cf1);
    g_byte_array_unref(cf2);
    softkey_free(key);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_protocol1_pin),
        cmocka_unit_test(test_protocol2_pin),
        cmocka_unit_test(test_token_macs),
        cmocka_unit_test(test_pin_length_rules),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
