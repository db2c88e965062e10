/* kd-config-text: the text side of checking keydesk.conf (see kd-config-text.h). */
#include "core/kd-config-text.h"

#include <stdint.h>
#include <string.h>
#include <sys/stat.h>

/* Enough to recognise a value without one bad key flooding the journal. */
#define KD_SHOWN_MAX_CHARS 200
/* Typos are a letter or two; a looser match suggests nonsense. */
#define KD_SUGGEST_MAX_EDITS 2

/*
 * Problems end up in a terminal or the journal, so a value is never printed raw: control
 * characters could forge extra lines, and bidi/format characters could make it read as
 * something else.
 */
char *
kd_cfg_printable(const char *s)
{
    GString *out = g_string_new(NULL);
    const char *p = s;
    guint chars = 0;

    while (*p != '\0') {
        guchar b = (guchar)*p;

        if (chars == KD_SHOWN_MAX_CHARS) {
            g_string_append(out, "…");
            break;
        }
        chars++;
        if (b < 0x80) {
            if (b == '\n')
                g_string_append(out, "\\n");
            else if (b == '\t')
                g_string_append(out, "\\t");
            else if (b == '\r')
                g_string_append(out, "\\r");
            else if (b < 0x20 || b == 0x7f)
                g_string_append_printf(out, "\\x%02x", b);
            else
                g_string_append_c(out, (char)b);
            p++;
            continue;
        }

        gunichar ch = g_utf8_get_char_validated(p, -1);
        if (ch == (gunichar)-1 || ch == (gunichar)-2) {
            g_string_append_printf(out, "\\x%02x", b);
            p++;
            continue;
        }
        const char *next = p + g_utf8_skip[b];
        GUnicodeType type = g_unichar_type(ch);
        if (type == G_UNICODE_CONTROL || type == G_UNICODE_FORMAT ||
            type == G_UNICODE_LINE_SEPARATOR || type == G_UNICODE_PARAGRAPH_SEPARATOR)
            g_string_append_printf(out, "\\u%04x", ch);
        else
            g_string_append_len(out, p, next - p);
        p = next;
    }

    return g_string_free(out, FALSE);
}

/* A proxy URL may carry a password; the config file is the only place it should appear. */
char *
kd_cfg_printable_url(const char *url)
{
    const char *sep = strstr(url, "://");
    const char *auth, *auth_end, *at, *colon;
    char *masked, *shown;

    if (sep == NULL)
        return kd_cfg_printable(url);
    auth = sep + 3;
    auth_end = auth + strcspn(auth, "/?#");
    at = g_strrstr_len(auth, auth_end - auth, "@");
    if (at == NULL)
        return kd_cfg_printable(url);
    colon = memchr(auth, ':', (size_t)(at - auth));
    if (colon == NULL)
        return kd_cfg_printable(url);

    masked = g_strdup_printf("%.*s:****%s", (int)(colon - url), url, at);
    shown = kd_cfg_printable(masked);
    g_free(masked);

    return shown;
}

/* Folding case and '_' lets "Idle_Timeout" find "idle-timeout" as easily as "idle-timout". */
static void
fold_name(const char *in, char *out, gsize outlen)
{
    gsize i;

    for (i = 0; in[i] != '\0' && i + 1 < outlen; i++)
        out[i] = in[i] == '_' ? '-' : g_ascii_tolower(in[i]);
    out[i] = '\0';
}

static guint
edit_distance(const char *a, const char *b)
{
    guint row[65];
    gsize la = strlen(a), lb = strlen(b);

    if (la >= G_N_ELEMENTS(row) || lb >= G_N_ELEMENTS(row))
        return G_MAXUINT;
    for (gsize j = 0; j <= lb; j++)
        row[j] = (guint)j;
    for (gsize i = 1; i <= la; i++) {
        guint diag = row[0];
        row[0] = (guint)i;
        for (gsize j = 1; j <= lb; j++) {
            guint up = row[j];
            guint best = MIN(row[j] + 1, row[j - 1] + 1);
            row[j] = MIN(best, diag + (a[i - 1] != b[j - 1]));
            diag = up;
        }
    }

    return row[lb];
}

/* The candidate closest to @word, or NULL when none is a plausible typo of it. */
const char *
kd_cfg_closest(const char *word, const char *const *candidates)
{
    char fw[65], fc[65];
    const char *best = NULL;
    guint best_d = KD_SUGGEST_MAX_EDITS + 1;

    if (strlen(word) >= sizeof(fw))
        return NULL;
    fold_name(word, fw, sizeof(fw));
    for (gsize i = 0; candidates[i] != NULL; i++) {
        fold_name(candidates[i], fc, sizeof(fc));
        guint d = edit_distance(fw, fc);
        if (d < best_d) {
            best = candidates[i];
            best_d = d;
        }
    }

    return best;
}

/* " (did you mean 'x'?)" or "" — ready to paste into a problem. */
char *
kd_cfg_suggestion(const char *word, const char *const *candidates)
{
    const char *near = kd_cfg_closest(word, candidates);

    return near != NULL ? g_strdup_printf(" (did you mean '%s'?)", near) : g_strdup("");
}

/* An inline '#' is part of the value in a key file; say so when it is the likely cause. */
const char *
kd_cfg_comment_hint(const char *text)
{
    return strchr(text, '#') != NULL ? " (a '#' comment must be on a line of its own)" : "";
}

gboolean
kd_cfg_strv_has(const char *const *v, const char *s)
{
    for (gsize i = 0; v[i] != NULL; i++)
        if (strcmp(v[i], s) == 0)
            return TRUE;
    return FALSE;
}

char *
kd_cfg_join_strv(const char *const *v, const char *prefix, const char *suffix)
{
    GString *s = g_string_new(NULL);

    for (gsize i = 0; v[i] != NULL; i++)
        g_string_append_printf(s, "%s%s%s%s", i > 0 ? ", " : "", prefix, v[i], suffix);
    return g_string_free(s, FALSE);
}

gboolean
kd_cfg_has_control(const char *s)
{
    for (; *s != '\0'; s++)
        if ((guchar)*s < 0x20 || *s == 0x7f)
            return TRUE;
    return FALSE;
}

gboolean
kd_cfg_is_guid(const char *s)
{
    if (strlen(s) != 36)
        return FALSE;
    for (int i = 0; i < 36; i++) {
        gboolean dash = i == 8 || i == 13 || i == 18 || i == 23;
        if (dash ? s[i] != '-' : !g_ascii_isxdigit(s[i]))
            return FALSE;
    }
    return TRUE;
}

gboolean
kd_cfg_is_nil_guid(const char *s)
{
    return strcmp(s, "00000000-0000-0000-0000-000000000000") == 0;
}

/* RFC 1123 host name. The last label may not be all digits, or "1.2.3" would pass as a name. */
gboolean
kd_cfg_is_dns_name(const char *s, gboolean need_dot)
{
    const char *label = s;
    guint n_labels = 0;
    gboolean all_digits = FALSE;

    if (*s == '\0' || strlen(s) > 253)
        return FALSE;
    for (;;) {
        const char *dot = strchr(label, '.');
        gsize len = dot != NULL ? (gsize)(dot - label) : strlen(label);

        if (len == 0 || len > 63 || label[0] == '-' || label[len - 1] == '-')
            return FALSE;
        all_digits = TRUE;
        for (gsize i = 0; i < len; i++) {
            if (!g_ascii_isalnum(label[i]) && label[i] != '-')
                return FALSE;
            if (!g_ascii_isdigit(label[i]))
                all_digits = FALSE;
        }
        n_labels++;
        if (dot == NULL)
            break;
        label = dot + 1;
    }

    return !all_digits && (!need_dot || n_labels >= 2);
}

/*
 * Splits "host[:port]" or "[IPv6][:port]". Returns NULL on success, with *host lower-case
 * (IPv6 keeps its brackets) and *port 0 when none was given; otherwise why it is wrong.
 */
char *
kd_cfg_parse_host_port(const char *s, char **host, guint *port)
{
    char *name = NULL, *why = NULL, *shown = NULL;
    const char *port_str = NULL;

    *host = NULL;
    *port = 0;
    if (s[0] == '[') {
        const char *close = strchr(s, ']');
        if (close == NULL) {
            why = g_strdup("'[' without a closing ']'");
            goto out;
        }
        name = g_strndup(s + 1, (gsize)(close - s - 1));
        if (strchr(name, ':') == NULL || strchr(name, '%') != NULL ||
            !g_hostname_is_ip_address(name)) {
            shown = kd_cfg_printable(name);
            why = g_strdup_printf("host '[%s]' is not a valid IPv6 address", shown);
            goto out;
        }
        if (close[1] == ':')
            port_str = close + 2;
        else if (close[1] != '\0') {
            why = g_strdup("unexpected text after ']'");
            goto out;
        }
        *host = g_strdup_printf("[%s]", name);
    } else {
        const char *colon = strchr(s, ':');
        if (colon != NULL && strchr(colon + 1, ':') != NULL) {
            why = g_strdup("an IPv6 address must be written in brackets, such as [2001:db8::1]");
            goto out;
        }
        name = colon != NULL ? g_strndup(s, (gsize)(colon - s)) : g_strdup(s);
        port_str = colon != NULL ? colon + 1 : NULL;
        if (name[0] == '\0') {
            why = g_strdup("no host name");
            goto out;
        }
        gboolean numeric = strspn(name, "0123456789.") == strlen(name);
        if (numeric ? !g_hostname_is_ip_address(name) : !kd_cfg_is_dns_name(name, FALSE)) {
            shown = kd_cfg_printable(name);
            why = g_strdup_printf("host '%s' is not a valid DNS name or IP address", shown);
            goto out;
        }
        *host = g_strdup(name);
    }

    if (port_str != NULL) {
        shown = kd_cfg_printable(port_str);
        if (port_str[0] == '\0') {
            why = g_strdup("':' without a port number after it");
            goto out;
        }
        if (strspn(port_str, "0123456789") != strlen(port_str)) {
            why = g_strdup_printf("port '%s' is not a number", shown);
            goto out;
        }
        guint64 n = strlen(port_str) > 5 ? G_MAXUINT64 : g_ascii_strtoull(port_str, NULL, 10);
        if (n < 1 || n > 65535) {
            why = g_strdup_printf("port '%s' is out of range 1 to 65535", shown);
            goto out;
        }
        *port = (guint)n;
    }

    char *lower = g_ascii_strdown(*host, -1);
    g_free(*host);
    *host = lower;
out:
    if (why != NULL)
        g_clear_pointer(host, g_free);
    g_free(name);
    g_free(shown);
    return why;
}

/* "/" alone is what a browser adds; anything longer is a path keydesk would silently drop. */
const char *
kd_cfg_url_tail(const char *rest)
{
    const char *tail = rest + strcspn(rest, "/?#");

    return (*tail == '\0' || strcmp(tail, "/") == 0) ? NULL : tail;
}

gboolean
kd_cfg_is_extension_name(const char *s)
{
    if (!g_str_has_prefix(s, "extension_"))
        return FALSE;
    s += strlen("extension_");
    for (int i = 0; i < 32; i++)
        if (!g_ascii_isdigit(s[i]) && !(s[i] >= 'a' && s[i] <= 'f'))
            return FALSE;
    s += 32;
    if (*s++ != '_' || *s == '\0')
        return FALSE;
    for (; *s != '\0'; s++)
        if (!g_ascii_isalnum(*s) && *s != '_')
            return FALSE;
    return TRUE;
}

const char *
kd_cfg_file_type_name(mode_t mode)
{
    if (S_ISDIR(mode))
        return "a directory";
    if (S_ISFIFO(mode))
        return "a FIFO";
    if (S_ISSOCK(mode))
        return "a socket";
    if (S_ISCHR(mode))
        return "a character device";
    if (S_ISBLK(mode))
        return "a block device";
    return "a special file";
}

/* Quote for a shell only when needed, so the common case reads as plain "chmod 600 /path". */
char *
kd_cfg_shell_arg(const char *path)
{
    char *quoted, *shown;

    if (strspn(path, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789/._+-@%:,=") ==
        strlen(path))
        return g_strdup(path);
    quoted = g_shell_quote(path);
    shown = kd_cfg_printable(quoted);
    g_free(quoted);
    return shown;
}
