/* test-b64: base64/base64url encoding and the lenient decoder (reference §2.2, §12.3). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "graph/kd-b64.h"

static void
assert_decodes_to(const char *text, const void *want, gsize want_len)
{
    guint8 *out = NULL;
    gsize len = 0;

    if (!kd_b64_decode(text, -1, &out, &len))
        fail_msg("\"%s\" did not decode", text);
    assert_int_equal(len, want_len);
    assert_memory_equal(out, want, want_len);
    assert_int_equal(out[len], 0); /* always terminated */
    g_free(out);
}

static void
assert_refused(const char *text)
{
    guint8 *out = (guint8 *)&out; /* must stay untouched */
    gsize len = 12345;

    if (kd_b64_decode(text, -1, &out, &len))
        fail_msg("\"%s\" decoded but should not", text);
    assert_ptr_equal(out, (guint8 *)&out);
    assert_int_equal(len, 12345);
}

static void
test_rfc4648_vectors(void **state)
{
    static const struct {
        const char *plain, *std, *url;
    } v[] = {
        {"", "", ""},
        {"f", "Zg==", "Zg"},
        {"fo", "Zm8=", "Zm8"},
        {"foo", "Zm9v", "Zm9v"},
        {"foob", "Zm9vYg==", "Zm9vYg"},
        {"fooba", "Zm9vYmE=", "Zm9vYmE"},
        {"foobar", "Zm9vYmFy", "Zm9vYmFy"},
    };

    for (gsize i = 0; i < G_N_ELEMENTS(v); i++) {
        g_autofree char *std = kd_b64_encode(v[i].plain, strlen(v[i].plain));
        g_autofree char *url = kd_b64url_encode(v[i].plain, strlen(v[i].plain));
        assert_string_equal(std, v[i].std);
        assert_string_equal(url, v[i].url);
        assert_decodes_to(v[i].std, v[i].plain, strlen(v[i].plain));
        assert_decodes_to(v[i].url, v[i].plain, strlen(v[i].plain));
    }
}

static void
test_alphabets(void **state)
{
    static const guint8 bytes[] = {0xfb, 0xff, 0xbf, 0xfe};
    g_autofree char *std = kd_b64_encode(bytes, sizeof(bytes));
    g_autofree char *url = kd_b64url_encode(bytes, sizeof(bytes));

    assert_string_equal(std, "+/+//g==");
    assert_string_equal(url, "-_-__g");
    assert_decodes_to(std, bytes, sizeof(bytes));
    assert_decodes_to(url, bytes, sizeof(bytes));
    assert_decodes_to("-/+_/g=", bytes, sizeof(bytes)); /* mixed alphabets, partial padding */
}

/* Every length 0..300, random bytes, both encodings, and the variants Graph has sent. */
static void
test_round_trip_random(void **state)
{
    GRand *rand = g_rand_new_with_seed(20260420);

    for (gsize len = 0; len <= 300; len++) {
        guint8 *data = g_malloc(len + 1);
        for (gsize i = 0; i < len; i++)
            data[i] = (guint8)g_rand_int_range(rand, 0, 256);

        g_autofree char *std = kd_b64_encode(data, len);
        g_autofree char *url = kd_b64url_encode(data, len);
        g_autofree char *glib = g_base64_encode(data, len);
        assert_string_equal(std, glib);
        assert_int_equal(strlen(std) % 4, 0);
        assert_null(strchr(url, '='));
        assert_null(strpbrk(url, "+/"));
        assert_null(strpbrk(std, "-_"));
        assert_decodes_to(std, data, len);
        assert_decodes_to(url, data, len);

        /* standard alphabet without padding; url alphabet with padding */
        g_autofree char *std_nopad = g_strdup(std);
        g_strdelimit(std_nopad, "=", '\0');
        assert_decodes_to(std_nopad, data, len);
        g_autofree char *url_pad = g_strconcat(url,
                                               len % 3 == 1   ? "=="
                                               : len % 3 == 2 ? "="
                                                              : "",
                                               NULL);
        assert_decodes_to(url_pad, data, len);

        /* whitespace anywhere, as a wrapped PEM-style body would have */
        GString *spaced = g_string_new(" ");
        for (const char *p = std; *p != '\0'; p++) {
            g_string_append_c(spaced, *p);
            if ((p - std) % 7 == 3)
                g_string_append(spaced, (p - std) % 2 ? "\r\n" : " \t");
        }
        g_string_append(spaced, "\n");
        assert_decodes_to(spaced->str, data, len);
        g_string_free(spaced, TRUE);

        /* a stray character at the end (issue #28) is refused, never half-decoded */
        g_autofree char *corrupt = g_strconcat(std, "!", NULL);
        assert_refused(corrupt);
        g_free(data);
    }
    g_rand_free(rand);
}

static void
test_padding_variants(void **state)
{
    assert_decodes_to("Zg", "f", 1);
    assert_decodes_to("Zg=", "f", 1);
    assert_decodes_to("Zg==", "f", 1);
    assert_decodes_to("Zg= =\n", "f", 1);
    assert_decodes_to("Zm8", "fo", 2);
    assert_decodes_to("Zm8=", "fo", 2);
    assert_decodes_to("", "", 0);
    assert_decodes_to("  \n", "", 0);

    assert_refused("Zg===");
    assert_refused("Zm8==");
    assert_refused("Zm9v=");
    assert_refused("Zm9v==");
    assert_refused("=");
    assert_refused("==");
    assert_refused("Z");
    assert_refused("Zm9vY");
    assert_refused("Zm9vY=");
    assert_refused("Zg==Zg=="); /* data after padding */
    assert_refused("Z=g=");
}

static void
test_refuses_other_characters(void **state)
{
    static const char *const bad[] = {
        "Zm9v!",       "!Zm9v",   "Zm.9v",
        "Zm9v*",       "Zm9v%3D", "Zm9v\"",
        "Zm9\xc3\xa9", "Zm9v\\n", "Y2Fyb2wtZXhpc3Rpbmcta2V5LWlk!",
    };
    guint8 *out = NULL;
    gsize len = 0;

    for (gsize i = 0; i < G_N_ELEMENTS(bad); i++)
        assert_refused(bad[i]);
    assert_false(kd_b64_decode(NULL, -1, &out, &len));
    assert_null(out);
    /* An explicit length: an embedded NUL is a stray character, a shorter length is fine. */
    assert_false(kd_b64_decode("Zm\0v", 4, &out, &len));
    assert_true(kd_b64_decode("Zm9vYmFy!!!", 8, &out, &len));
    assert_int_equal(len, 6);
    assert_memory_equal(out, "foobar", 6);
    g_free(out);
}

/* The shapes of excludeCredentials ids from the reference (§2.2) and from the emulator. */
static void
test_graph_ids(void **state)
{
    g_autoptr(GBytes) a = kd_b64_decode_bytes("TZ2KrDEawbrIGQsnheGZ/BG9Nfnb7blSGwQYMGyJIhM=");
    g_autoptr(GBytes) b = kd_b64_decode_bytes("GshyINLMaOOwqt1LNUi0gQ==");
    g_autoptr(GBytes) carol = kd_b64_decode_bytes("Y2Fyb2wtZXhpc3Rpbmcta2V5LWlk");
    g_autoptr(GBytes) carol_std = kd_b64_decode_bytes("Y2Fyb2wtZXhpc3Rpbmcta2V5LWlk");
    gsize n = 0;

    assert_non_null(a);
    assert_int_equal(g_bytes_get_size(a), 32);
    assert_non_null(b);
    assert_int_equal(g_bytes_get_size(b), 16);
    assert_non_null(carol);
    assert_memory_equal(g_bytes_get_data(carol, &n), "carol-existing-key-id", 21);
    assert_int_equal(n, 21);
    assert_true(g_bytes_equal(carol, carol_std));
    assert_null(kd_b64_decode_bytes("Y2Fyb2wtZXhpc3Rpbmcta2V5LWlk!"));
    assert_null(kd_b64_decode_bytes(NULL));

    /* Validation without output. */
    assert_true(kd_b64_decode("GshyINLMaOOwqt1LNUi0gQ", -1, NULL, &n));
    assert_int_equal(n, 16);
    assert_false(kd_b64_decode("GshyINLMaOOwqt1LNUi0gQ!", -1, NULL, NULL));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rfc4648_vectors),          cmocka_unit_test(test_alphabets),
        cmocka_unit_test(test_round_trip_random),        cmocka_unit_test(test_padding_variants),
        cmocka_unit_test(test_refuses_other_characters), cmocka_unit_test(test_graph_ids),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
