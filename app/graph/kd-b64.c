/* kd-b64: base64 and base64url for WebAuthn and Graph, with the lenient decoder Graph's ids need.
 */
#include "graph/kd-b64.h"

#include <string.h>

static const char std_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
static const char url_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static char *
encode(const void *data, gsize len, const char *alphabet, gboolean pad)
{
    const guint8 *in = data;
    gsize full = len / 3, rest = len % 3;
    char *out = g_malloc(4 * (full + 1) + 1);
    char *p = out;

    for (gsize i = 0; i < full; i++, in += 3) {
        guint32 v = (guint32)in[0] << 16 | (guint32)in[1] << 8 | in[2];
        *p++ = alphabet[v >> 18 & 0x3f];
        *p++ = alphabet[v >> 12 & 0x3f];
        *p++ = alphabet[v >> 6 & 0x3f];
        *p++ = alphabet[v & 0x3f];
    }
    if (rest > 0) {
        guint32 v = (guint32)in[0] << 16 | (rest == 2 ? (guint32)in[1] << 8 : 0);
        *p++ = alphabet[v >> 18 & 0x3f];
        *p++ = alphabet[v >> 12 & 0x3f];
        if (rest == 2)
            *p++ = alphabet[v >> 6 & 0x3f];
        else if (pad)
            *p++ = '=';
        if (pad)
            *p++ = '=';
    }
    *p = '\0';
    return out;
}

char *
kd_b64_encode(const void *data, gsize len)
{
    return encode(data, len, std_alphabet, TRUE);
}

char *
kd_b64url_encode(const void *data, gsize len)
{
    return encode(data, len, url_alphabet, FALSE);
}

/* The 6-bit value of a base64 or base64url character, or -1. */
static int
value_of(char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+' || c == '-')
        return 62;
    if (c == '/' || c == '_')
        return 63;
    return -1;
}

static gboolean
is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f' || c == '\v';
}

gboolean
kd_b64_decode(const char *text, gssize len, guint8 **out, gsize *out_len)
{
    gsize n = 0, npad = 0, ulen;
    guint8 *buf = NULL, *p;
    guint32 acc = 0;
    guint bits = 0;

    if (text == NULL)
        return FALSE;
    ulen = len < 0 ? strlen(text) : (gsize)len;

    /* First pass: validate and count, so nothing is allocated for garbage. */
    for (gsize i = 0; i < ulen; i++) {
        char c = text[i];
        if (is_space(c))
            continue;
        if (c == '=') {
            npad++;
            continue;
        }
        if (value_of(c) < 0 || npad > 0) /* a stray character, or data after padding */
            return FALSE;
        n++;
    }
    if (n % 4 == 1 || (n % 4 == 0 && npad > 0) || (n % 4 == 2 && npad > 2) ||
        (n % 4 == 3 && npad > 1))
        return FALSE;

    if (out != NULL) {
        buf = p = g_malloc(n / 4 * 3 + 3 + 1);
        for (gsize i = 0; i < ulen; i++) {
            int v = value_of(text[i]);
            if (v < 0)
                continue; /* whitespace or padding: validated above */
            acc = acc << 6 | (guint32)v;
            bits += 6;
            if (bits >= 8) {
                bits -= 8;
                *p++ = (guint8)(acc >> bits);
            }
        }
        *p = '\0';
        *out = buf;
    }
    if (out_len != NULL)
        *out_len = n / 4 * 3 + (n % 4 == 0 ? 0 : n % 4 - 1);
    return TRUE;
}

GBytes *
kd_b64_decode_bytes(const char *text)
{
    guint8 *data = NULL;
    gsize len = 0;

    if (!kd_b64_decode(text, -1, &data, &len))
        return NULL;
    return g_bytes_new_take(data, len);
}
