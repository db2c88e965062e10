/* kd-json-lex: see kd-json-lex.h. */
#include "graph/kd-json-lex.h"

#include <stdint.h>
#include <string.h>

void
kd_json_lex_ws(KdJsonLexer *lx)
{
    while (lx->p < lx->end && (*lx->p == ' ' || *lx->p == '\t' || *lx->p == '\n' || *lx->p == '\r'))
        lx->p++;
}

gboolean
kd_json_lex_char(KdJsonLexer *lx, char c)
{
    kd_json_lex_ws(lx);
    if (lx->p >= lx->end || *lx->p != c)
        return FALSE;
    lx->p++;
    return TRUE;
}

/* At an opening quote: finds the closing one and checks the shape of every escape. */
gboolean
kd_json_lex_string(KdJsonLexer *lx, const char **raw, gsize *raw_len)
{
    const char *q;

    if (lx->p >= lx->end || *lx->p != '"')
        return FALSE;
    q = lx->p + 1;
    while (q < lx->end) {
        guint8 c = (guint8)*q;
        if (c == '"') {
            *raw = lx->p + 1;
            *raw_len = (gsize)(q - *raw);
            lx->p = q + 1;
            return TRUE;
        }
        if (c < 0x20)
            return FALSE;
        if (c != '\\') {
            q++;
            continue;
        }
        if (lx->end - q < 2)
            return FALSE;
        switch (q[1]) {
        case '"':
        case '\\':
        case '/':
        case 'b':
        case 'f':
        case 'n':
        case 'r':
        case 't':
            q += 2;
            break;
        case 'u':
            if (lx->end - q < 6)
                return FALSE;
            for (int k = 2; k < 6; k++)
                if (!g_ascii_isxdigit(q[k]))
                    return FALSE;
            q += 6;
            break;
        default:
            return FALSE;
        }
    }
    return FALSE;
}

static gboolean
kd_json_sink_put(KdJsonSink *sink, const void *data, gsize n)
{
    if (sink->secret != NULL) {
        if (!kd_secret_append(sink->secret, data, n))
            return FALSE;
    } else {
        memcpy(sink->buf + sink->len, data, n);
    }
    sink->len += n;
    return TRUE;
}

static guint
kd_json_hex4(const char *p)
{
    guint v = 0;

    for (int k = 0; k < 4; k++)
        v = v << 4 | (guint)g_ascii_xdigit_value(p[k]);
    return v;
}

/* Decodes a string kd_json_lex_string() accepted; never longer than the raw text. */
gboolean
kd_json_unescape(const char *raw, gsize n, KdJsonSink *sink)
{
    char u[8];
    gsize i = 0;
    gboolean ok = FALSE;

    while (i < n) {
        gsize run = i;
        gunichar cp;

        while (i < n && raw[i] != '\\')
            i++;
        if (i > run && !kd_json_sink_put(sink, raw + run, i - run))
            goto fail;
        if (i >= n)
            break;
        switch (raw[i + 1]) {
        case 'b':
            cp = '\b';
            break;
        case 'f':
            cp = '\f';
            break;
        case 'n':
            cp = '\n';
            break;
        case 'r':
            cp = '\r';
            break;
        case 't':
            cp = '\t';
            break;
        case 'u':
            cp = kd_json_hex4(raw + i + 2);
            if (cp >= 0xDC00 && cp <= 0xDFFF)
                goto fail;
            if (cp >= 0xD800 && cp <= 0xDBFF) {
                guint lo;
                if (n - i < 12 || raw[i + 6] != '\\' || raw[i + 7] != 'u')
                    goto fail;
                lo = kd_json_hex4(raw + i + 8);
                if (lo < 0xDC00 || lo > 0xDFFF)
                    goto fail;
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                i += 6;
            }
            if (cp == 0)
                goto fail; /* no NUL inside a C string */
            i += 4;
            break;
        default: /* '"', '\\', '/' */
            cp = (gunichar)raw[i + 1];
            break;
        }
        i += 2;
        if (!kd_json_sink_put(sink, u, (gsize)g_unichar_to_utf8(cp, u)))
            goto fail;
    }
    ok = TRUE;
fail:
    explicit_bzero(u, sizeof(u));
    return ok;
}

gboolean
kd_json_lex_word(KdJsonLexer *lx, const char *word)
{
    gsize n = strlen(word);

    if ((gsize)(lx->end - lx->p) < n || memcmp(lx->p, word, n) != 0)
        return FALSE;
    lx->p += n;
    return TRUE;
}

/* A JSON number; *@integral and *@value when it is an integer that fits in 64 bits. */
gboolean
kd_json_lex_number(KdJsonLexer *lx, gint64 *value, gboolean *integral)
{
    const char *s = lx->p, *q = lx->p;
    char digits[24];

    *integral = TRUE;
    if (q < lx->end && *q == '-')
        q++;
    if (q >= lx->end || !g_ascii_isdigit(*q))
        return FALSE;
    if (*q == '0')
        q++;
    else
        while (q < lx->end && g_ascii_isdigit(*q))
            q++;
    if (q < lx->end && *q == '.') {
        *integral = FALSE;
        if (++q >= lx->end || !g_ascii_isdigit(*q))
            return FALSE;
        while (q < lx->end && g_ascii_isdigit(*q))
            q++;
    }
    if (q < lx->end && (*q == 'e' || *q == 'E')) {
        *integral = FALSE;
        if (++q < lx->end && (*q == '+' || *q == '-'))
            q++;
        if (q >= lx->end || !g_ascii_isdigit(*q))
            return FALSE;
        while (q < lx->end && g_ascii_isdigit(*q))
            q++;
    }
    lx->p = q;
    if (*integral) {
        if ((gsize)(q - s) >= sizeof(digits)) {
            *integral = FALSE;
        } else {
            memcpy(digits, s, (gsize)(q - s));
            digits[q - s] = '\0';
            *integral = g_ascii_string_to_signed(digits, 10, G_MININT64, G_MAXINT64, value, NULL);
        }
    }
    return TRUE;
}

gboolean
kd_json_lex_skip(KdJsonLexer *lx, int depth)
{
    const char *raw;
    gsize raw_len;
    gint64 v;
    gboolean integral;

    kd_json_lex_ws(lx);
    if (lx->p >= lx->end)
        return FALSE;
    switch (*lx->p) {
    case '"':
        return kd_json_lex_string(lx, &raw, &raw_len);
    case 't':
        return kd_json_lex_word(lx, "true");
    case 'f':
        return kd_json_lex_word(lx, "false");
    case 'n':
        return kd_json_lex_word(lx, "null");
    case '{':
    case '[': {
        gboolean object = *lx->p == '{';
        char close = object ? '}' : ']';

        if (depth >= KD_JSON_MAX_DEPTH)
            return FALSE;
        lx->p++;
        kd_json_lex_ws(lx);
        if (lx->p < lx->end && *lx->p == close) {
            lx->p++;
            return TRUE;
        }
        for (;;) {
            if (object) {
                kd_json_lex_ws(lx);
                if (!kd_json_lex_string(lx, &raw, &raw_len) || !kd_json_lex_char(lx, ':'))
                    return FALSE;
            }
            if (!kd_json_lex_skip(lx, depth + 1))
                return FALSE;
            kd_json_lex_ws(lx);
            if (lx->p >= lx->end)
                return FALSE;
            if (*lx->p == ',') {
                lx->p++;
                continue;
            }
            if (*lx->p != close)
                return FALSE;
            lx->p++;
            return TRUE;
        }
    }
    default:
        return kd_json_lex_number(lx, &v, &integral);
    }
}

gboolean
kd_json_take_secret(char *data, gsize len, const char *name, KdSecret **secret)
{
    KdJsonLexer lx = {data, data + len};
    gsize name_len = strlen(name);
    char *value = NULL; /* the opening quote of the member's value */
    gsize value_len = 0;

    *secret = NULL;
    if (data == NULL || !kd_json_lex_char(&lx, '{'))
        return FALSE;
    kd_json_lex_ws(&lx);
    if (lx.p < lx.end && *lx.p == '}') {
        lx.p++;
    } else {
        for (;;) {
            const char *member, *raw;
            gsize member_len, raw_len;
            gboolean ours;

            kd_json_lex_ws(&lx);
            if (!kd_json_lex_string(&lx, &member, &member_len) || !kd_json_lex_char(&lx, ':'))
                return FALSE;
            ours = member_len == name_len && memcmp(member, name, name_len) == 0;
            if (ours && value != NULL)
                return FALSE; /* repeated: which one would count? */
            kd_json_lex_ws(&lx);
            if (ours && lx.p < lx.end && *lx.p == '"') {
                if (!kd_json_lex_string(&lx, &raw, &raw_len))
                    return FALSE;
                value = (char *)(uintptr_t)(raw - 1);
                value_len = raw_len + 2;
            } else if (!kd_json_lex_skip(&lx, 1)) {
                return FALSE;
            } else if (ours) {
                value = (char *)(uintptr_t)lx.p; /* not a string: remembered as seen only */
                value_len = 0;
            }
            kd_json_lex_ws(&lx);
            if (lx.p < lx.end && *lx.p == ',') {
                lx.p++;
                continue;
            }
            if (!kd_json_lex_char(&lx, '}'))
                return FALSE;
            break;
        }
    }
    kd_json_lex_ws(&lx);
    if (lx.p != lx.end)
        return FALSE;
    if (value == NULL || value_len == 0)
        return TRUE;

    {
        KdJsonSink sink = {0};
        sink.secret = kd_secret_new(value_len);
        if (!kd_json_unescape(value + 1, value_len - 2, &sink)) {
            kd_secret_unref(sink.secret);
            return FALSE;
        }
        *secret = sink.secret;
    }
    value[0] = '"';
    value[1] = '"';
    memset(value + 2, ' ', value_len - 2);
    return TRUE;
}
