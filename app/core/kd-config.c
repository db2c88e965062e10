/* kd-config: reads keydesk.conf and turns every mistake in it into a line a person can act on. */
#include "core/kd-config.h"
#include "core/kd-config-text.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* A kiosk config is a page of text; anything bigger is a wrong path, not a config. */
#define KD_CONFIG_MAX_SIZE (1024 * 1024)
/* Past this many broken lines the file is not a keydesk config, and more lines help nobody. */
#define KD_MAX_SYNTAX_ERRORS 20

#define KD_GUID_SHAPE "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx, hexadecimal"

static const char *const kd_kiosk_keys[] = {"name",           "site",       "idle-timeout",
                                            "idle-countdown", "touch-only", NULL};
static const char *const kd_tenant_keys[] = {"tenant-id",
                                             "client-id",
                                             "certificate-file",
                                             "private-key-file",
                                             "client-secret-file",
                                             "graph-host",
                                             "login-host",
                                             "ca-file",
                                             "proxy",
                                             NULL};
static const char *const kd_enrolment_keys[] = {"identity-mode", "flows", "tap-lifetime", NULL};
static const char *const kd_tracking_keys[] = {"group-id", "extension-attribute", "state-dir",
                                               NULL};

typedef struct {
    const char *name;
    const char *const *keys;
} KdGroupDef;

static const KdGroupDef kd_groups[] = {
    {"kiosk", kd_kiosk_keys},
    {"tenant", kd_tenant_keys},
    {"enrolment", kd_enrolment_keys},
    {"tracking", kd_tracking_keys},
};

static const char *const kd_group_names[] = {"kiosk", "tenant", "enrolment", "tracking", NULL};
static const char *const kd_mode_names[] = {"operator", "self", NULL};
static const char *const kd_flow_names[] = {"security-key", "authenticator", "lost-device", NULL};
static const KdFlow kd_flow_values[] = {KD_FLOW_SECURITY_KEY, KD_FLOW_AUTHENTICATOR,
                                        KD_FLOW_LOST_DEVICE};

static const char *const kd_proxy_schemes[] = {"http", "https", "socks5", "socks5h", NULL};

#define KD_ALLOWED_NAME "a short name for this desk, shown on every page, such as 'Front desk'"
#define KD_ALLOWED_SITE "one line of text saying where the desk is"
#define KD_ALLOWED_BOOL "true or false"
#define KD_ALLOWED_TENANT \
    "the tenant's GUID (" KD_GUID_SHAPE ") or a domain name such as contoso.onmicrosoft.com"
#define KD_ALLOWED_CLIENT \
    "the app registration's Application (client) ID, a GUID (" KD_GUID_SHAPE ")"
#define KD_ALLOWED_GROUP  "the group's Object ID, a GUID (" KD_GUID_SHAPE ")"
#define KD_ALLOWED_HOST   "https://host[:port] or host[:port]"
#define KD_ALLOWED_PROXY  "http://, https://, socks5:// or socks5h:// followed by host[:port]"
#define KD_ALLOWED_CERT   "an existing, readable PEM certificate file"
#define KD_ALLOWED_CA     "an existing, readable PEM file of CA certificates"
#define KD_ALLOWED_SECRET "an existing regular file that only its owner can read (chmod 600 or 400)"
#define KD_ALLOWED_MODE   "operator or self"
#define KD_ALLOWED_FLOWS  "security-key, authenticator and/or lost-device, separated by ';'"
#define KD_ALLOWED_EXT                                                                     \
    "extension_<application id without dashes: 32 lower-case hex digits>_<name>, such as " \
    "extension_0123456789abcdef0123456789abcdef_mfaRegistered"
#define KD_ALLOWED_STATE \
    "an absolute path, or a path relative to the configuration file's directory"
#define KD_ALLOWED_SYNTAX "'[group]' lines, 'key = value' lines and '# comment' lines"

typedef struct {
    char *source; /* printable, used at the start of every problem */
    char *base_dir;
    GKeyFile *kf;
    GPtrArray *problems;
    guint n_problems;
} KdCheck;

typedef enum {
    KD_VALUE_ABSENT,
    KD_VALUE_PRESENT,
    KD_VALUE_UNUSABLE, /* present but undecodable; already reported */
} KdPresence;

typedef struct {
    KdPresence presence;
    char *text;  /* decoded and trimmed; NULL unless KD_VALUE_PRESENT */
    char *shown; /* as written, safe to print; NULL when absent */
} KdValue;

typedef enum {
    KD_FILE_PUBLIC,     /* a certificate: only has to be there */
    KD_FILE_TRUST,      /* replaces the system CAs: nobody else may change it */
    KD_FILE_CREDENTIAL, /* a private key or secret: nobody else may even read it */
} KdFileKind;

static void add_problem(KdCheck *c, const char *group, const char *key, const char *shown,
                        const char *allowed, const char *fmt, ...) G_GNUC_PRINTF(6, 7);

static void
add_problem(KdCheck *c, const char *group, const char *key, const char *shown, const char *allowed,
            const char *fmt, ...)
{
    GString *s = g_string_new(NULL);
    char *what;
    va_list ap;

    va_start(ap, fmt);
    what = g_strdup_vprintf(fmt, ap);
    va_end(ap);

    g_string_append_printf(s, "%s: ", c->source);
    if (group != NULL) {
        g_string_append_printf(s, "[%s]", group);
        if (key != NULL)
            g_string_append_printf(s, " %s", key);
        if (key != NULL && shown != NULL)
            g_string_append_printf(s, " = '%s'", shown);
        g_string_append(s, ": ");
    }
    g_string_append(s, what);
    if (allowed != NULL)
        g_string_append_printf(s, "; allowed: %s", allowed);

    g_ptr_array_add(c->problems, g_string_free(s, FALSE));
    c->n_problems++;
    g_free(what);
}

static const KdGroupDef *
find_group(const char *name)
{
    for (gsize i = 0; i < G_N_ELEMENTS(kd_groups); i++)
        if (strcmp(kd_groups[i].name, name) == 0)
            return &kd_groups[i];
    return NULL;
}

static void
value_clear(KdValue *v)
{
    g_clear_pointer(&v->text, g_free);
    g_clear_pointer(&v->shown, g_free);
}

static void
get_value(KdCheck *c, const char *group, const char *key, gboolean is_url, KdValue *v)
{
    GError *error = NULL;
    char *raw;

    memset(v, 0, sizeof(*v));
    raw = g_key_file_get_value(c->kf, group, key, NULL);
    if (raw == NULL) {
        v->presence = KD_VALUE_ABSENT;
        return;
    }
    v->shown = is_url ? kd_cfg_printable_url(raw) : kd_cfg_printable(raw);
    /* On a bad escape GKeyFile sets the error yet still returns a string: trust the error. */
    v->text = g_key_file_get_string(c->kf, group, key, &error);
    if (error != NULL || v->text == NULL) {
        v->presence = KD_VALUE_UNUSABLE;
        g_clear_pointer(&v->text, g_free);
        if (g_error_matches(error, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_UNKNOWN_ENCODING))
            add_problem(c, group, key, v->shown, "UTF-8 text", "not valid UTF-8 text");
        else
            add_problem(c, group, key, v->shown, "the escapes \\s, \\n, \\t, \\r and \\\\",
                        "contains a backslash escape that cannot be decoded");
        goto out;
    }
    g_strstrip(v->text);
    v->presence = KD_VALUE_PRESENT;
out:
    g_clear_error(&error);
    g_free(raw);
}

/* Free text; NULL when unset. An empty optional value means "not set". */
static char *
get_text(KdCheck *c, const char *group, const char *key, gboolean required, const char *allowed)
{
    KdValue v;
    char *result = NULL;

    get_value(c, group, key, FALSE, &v);
    if (v.presence == KD_VALUE_ABSENT && required)
        add_problem(c, group, key, NULL, allowed, "required, but not set");
    if (v.presence != KD_VALUE_PRESENT)
        goto out;
    if (v.text[0] == '\0') {
        if (required)
            add_problem(c, group, key, v.shown, allowed, "empty");
        goto out;
    }
    if (kd_cfg_has_control(v.text)) {
        add_problem(c, group, key, v.shown, allowed,
                    "contains a line break or another control character");
        goto out;
    }
    result = g_steal_pointer(&v.text);
out:
    value_clear(&v);
    return result;
}

/* TRUE when *out holds a usable value (the default stays when the key is absent). */
static gboolean
get_uint(KdCheck *c, const char *group, const char *key, guint min, guint max, const char *unit,
         guint *out, gboolean *given)
{
    KdValue v;
    char *allowed = g_strdup_printf("%u to %u %s", min, max, unit);
    const char *p;
    gboolean negative = FALSE, ok = FALSE;
    guint64 n;

    get_value(c, group, key, FALSE, &v);
    *given = v.presence != KD_VALUE_ABSENT;
    if (v.presence == KD_VALUE_ABSENT) {
        ok = TRUE;
        goto out;
    }
    if (v.presence != KD_VALUE_PRESENT)
        goto out;

    p = v.text;
    if (*p == '+' || *p == '-')
        negative = *p++ == '-';
    if (*p == '\0' || strspn(p, "0123456789") != strlen(p)) {
        add_problem(c, group, key, v.shown, allowed, "not a whole number%s",
                    kd_cfg_comment_hint(v.text));
        goto out;
    }
    while (*p == '0' && p[1] != '\0')
        p++;
    /* Ten digits already overflow every range here; strtoull would just wrap bigger ones. */
    n = strlen(p) > 10 ? G_MAXUINT64 : g_ascii_strtoull(p, NULL, 10);
    if ((negative && n != 0) || n < min || n > max) {
        add_problem(c, group, key, v.shown, allowed, "out of range");
        goto out;
    }
    *out = (guint)n;
    ok = TRUE;
out:
    value_clear(&v);
    g_free(allowed);
    return ok;
}

static void
get_bool(KdCheck *c, const char *group, const char *key, gboolean *out)
{
    KdValue v;

    get_value(c, group, key, FALSE, &v);
    if (v.presence != KD_VALUE_PRESENT)
        goto out;
    if (strcmp(v.text, "true") == 0)
        *out = TRUE;
    else if (strcmp(v.text, "false") == 0)
        *out = FALSE;
    else
        add_problem(c, group, key, v.shown, KD_ALLOWED_BOOL, "not a boolean%s",
                    kd_cfg_comment_hint(v.text));
out:
    value_clear(&v);
}

/* A GUID key; the result is lower-case so later comparisons need not care. */
static char *
get_guid(KdCheck *c, const char *group, const char *key, gboolean required, const char *allowed)
{
    KdValue v;
    char *result = NULL;

    get_value(c, group, key, FALSE, &v);
    if (v.presence == KD_VALUE_ABSENT && required)
        add_problem(c, group, key, NULL, allowed, "required, but not set");
    if (v.presence != KD_VALUE_PRESENT)
        goto out;
    if (v.text[0] == '\0') {
        if (required)
            add_problem(c, group, key, v.shown, allowed, "empty");
        goto out;
    }
    if (!kd_cfg_is_guid(v.text)) {
        add_problem(c, group, key, v.shown, allowed, "not a GUID%s", kd_cfg_comment_hint(v.text));
        goto out;
    }
    if (kd_cfg_is_nil_guid(v.text)) {
        add_problem(c, group, key, v.shown, allowed, "the all-zero GUID is a placeholder");
        goto out;
    }
    result = g_ascii_strdown(v.text, -1);
out:
    value_clear(&v);
    return result;
}

static char *
get_tenant(KdCheck *c)
{
    KdValue v;
    char *result = NULL;

    get_value(c, "tenant", "tenant-id", FALSE, &v);
    if (v.presence == KD_VALUE_ABSENT)
        add_problem(c, "tenant", "tenant-id", NULL, KD_ALLOWED_TENANT, "required, but not set");
    if (v.presence != KD_VALUE_PRESENT)
        goto out;
    if (v.text[0] == '\0') {
        add_problem(c, "tenant", "tenant-id", v.shown, KD_ALLOWED_TENANT, "empty");
        goto out;
    }
    if (kd_cfg_is_nil_guid(v.text)) {
        add_problem(c, "tenant", "tenant-id", v.shown, KD_ALLOWED_TENANT,
                    "the all-zero GUID is a placeholder");
        goto out;
    }
    if (!kd_cfg_is_guid(v.text) && !kd_cfg_is_dns_name(v.text, TRUE)) {
        add_problem(c, "tenant", "tenant-id", v.shown, KD_ALLOWED_TENANT,
                    "not a GUID or a domain name%s", kd_cfg_comment_hint(v.text));
        goto out;
    }
    result = g_ascii_strdown(v.text, -1);
out:
    value_clear(&v);
    return result;
}

/* graph-host / login-host: stored as https://host[:port] whatever way it was written. */
static char *
get_https_host(KdCheck *c, const char *key, const char *dflt)
{
    KdValue v;
    char *result = NULL, *scheme = NULL, *authority = NULL, *host = NULL, *why = NULL;
    char *shown = NULL;
    const char *sep, *rest, *tail;
    guint port;

    get_value(c, "tenant", key, FALSE, &v);
    if (v.presence == KD_VALUE_ABSENT) {
        result = g_strdup(dflt);
        goto out;
    }
    if (v.presence != KD_VALUE_PRESENT)
        goto out;
    if (v.text[0] == '\0') {
        add_problem(c, "tenant", key, v.shown, KD_ALLOWED_HOST, "empty");
        goto out;
    }

    sep = strstr(v.text, "://");
    rest = v.text;
    if (sep != NULL) {
        scheme = g_strndup(v.text, (gsize)(sep - v.text));
        if (g_ascii_strcasecmp(scheme, "https") != 0) {
            shown = kd_cfg_printable(scheme);
            add_problem(c, "tenant", key, v.shown, KD_ALLOWED_HOST,
                        "scheme '%s' refused: keydesk only talks to Microsoft over HTTPS", shown);
            goto out;
        }
        rest = sep + 3;
    }
    tail = kd_cfg_url_tail(rest);
    if (tail != NULL) {
        shown = kd_cfg_printable(tail);
        add_problem(c, "tenant", key, v.shown, KD_ALLOWED_HOST,
                    "has a path, query or fragment ('%s')", shown);
        goto out;
    }
    authority = g_strndup(rest, strcspn(rest, "/"));
    if (strchr(authority, '@') != NULL) {
        add_problem(c, "tenant", key, v.shown, KD_ALLOWED_HOST, "contains a user name before '@'");
        goto out;
    }
    why = kd_cfg_parse_host_port(authority, &host, &port);
    if (why != NULL) {
        add_problem(c, "tenant", key, v.shown, KD_ALLOWED_HOST, "%s", why);
        goto out;
    }
    result = port != 0 ? g_strdup_printf("https://%s:%u", host, port)
                       : g_strdup_printf("https://%s", host);
out:
    value_clear(&v);
    g_free(scheme);
    g_free(authority);
    g_free(host);
    g_free(why);
    g_free(shown);
    return result;
}

static char *
get_proxy(KdCheck *c)
{
    KdValue v;
    char *result = NULL, *scheme = NULL, *authority = NULL, *userinfo = NULL, *host = NULL;
    char *why = NULL, *shown = NULL;
    const char *sep, *rest, *tail, *at, *hostport;
    guint port;

    get_value(c, "tenant", "proxy", TRUE, &v);
    if (v.presence != KD_VALUE_PRESENT || v.text[0] == '\0')
        goto out;

    sep = strstr(v.text, "://");
    if (sep == NULL) {
        add_problem(c, "tenant", "proxy", v.shown, KD_ALLOWED_PROXY, "no scheme");
        goto out;
    }
    scheme = g_ascii_strdown(v.text, sep - v.text);
    if (!kd_cfg_strv_has(kd_proxy_schemes, scheme)) {
        shown = kd_cfg_printable(scheme);
        add_problem(c, "tenant", "proxy", v.shown, KD_ALLOWED_PROXY, "scheme '%s' is not supported",
                    shown);
        goto out;
    }
    rest = sep + 3;
    tail = kd_cfg_url_tail(rest);
    if (tail != NULL) {
        shown = kd_cfg_printable(tail);
        add_problem(c, "tenant", "proxy", v.shown, KD_ALLOWED_PROXY,
                    "has a path, query or fragment ('%s')", shown);
        goto out;
    }
    authority = g_strndup(rest, strcspn(rest, "/"));
    at = strrchr(authority, '@');
    hostport = at != NULL ? at + 1 : authority;
    if (at != NULL)
        userinfo = g_strndup(authority, (gsize)(at - authority));
    if (hostport[0] == '\0') {
        add_problem(c, "tenant", "proxy", v.shown, KD_ALLOWED_PROXY, "no host name");
        goto out;
    }
    why = kd_cfg_parse_host_port(hostport, &host, &port);
    if (why != NULL) {
        add_problem(c, "tenant", "proxy", v.shown, KD_ALLOWED_PROXY, "%s", why);
        goto out;
    }
    result = g_strdup_printf("%s://%s%s%s%s", scheme, userinfo != NULL ? userinfo : "",
                             userinfo != NULL ? "@" : "", host, port != 0 ? ":" : "");
    if (port != 0) {
        char *with_port = g_strdup_printf("%s%u", result, port);
        g_free(result);
        result = with_port;
    }
out:
    value_clear(&v);
    g_free(scheme);
    g_free(authority);
    g_free(userinfo);
    g_free(host);
    g_free(why);
    g_free(shown);
    return result;
}

static void
get_identity_mode(KdCheck *c, KdIdentityMode *out, gboolean *valid)
{
    KdValue v;
    char *hint = NULL;

    *valid = TRUE;
    get_value(c, "enrolment", "identity-mode", FALSE, &v);
    if (v.presence == KD_VALUE_ABSENT)
        goto out;
    *valid = FALSE;
    if (v.presence != KD_VALUE_PRESENT)
        goto out;
    if (strcmp(v.text, "operator") == 0) {
        *out = KD_IDENTITY_OPERATOR;
        *valid = TRUE;
    } else if (strcmp(v.text, "self") == 0) {
        *out = KD_IDENTITY_SELF;
        *valid = TRUE;
    } else {
        hint = kd_cfg_suggestion(v.text, kd_mode_names);
        add_problem(c, "enrolment", "identity-mode", v.shown, KD_ALLOWED_MODE,
                    "unknown identity mode%s%s", hint,
                    hint[0] == '\0' ? kd_cfg_comment_hint(v.text) : "");
    }
out:
    value_clear(&v);
    g_free(hint);
}

static void
get_flows(KdCheck *c, guint *out)
{
    KdValue v;
    char **entries = NULL;
    guint flows = 0, n_given = 0;
    gboolean bad = FALSE;

    get_value(c, "enrolment", "flows", FALSE, &v);
    if (v.presence != KD_VALUE_PRESENT)
        goto out;
    /* ';' is the key-file list separator; ',' is what people type anyway. */
    entries = g_strsplit_set(v.text, ";,", -1);
    for (gsize i = 0; entries[i] != NULL; i++) {
        const char *e = g_strstrip(entries[i]);
        gsize j;

        if (e[0] == '\0')
            continue;
        n_given++;
        for (j = 0; kd_flow_names[j] != NULL; j++)
            if (strcmp(e, kd_flow_names[j]) == 0)
                break;
        if (kd_flow_names[j] != NULL) {
            flows |= kd_flow_values[j];
            continue;
        }
        char *hint = kd_cfg_suggestion(e, kd_flow_names);
        char *shown = kd_cfg_printable(e);
        add_problem(c, "enrolment", "flows", v.shown, KD_ALLOWED_FLOWS, "unknown flow '%s'%s",
                    shown, hint[0] != '\0' ? hint : kd_cfg_comment_hint(e));
        g_free(hint);
        g_free(shown);
        bad = TRUE;
    }
    if (n_given == 0) {
        add_problem(c, "enrolment", "flows", v.shown, KD_ALLOWED_FLOWS, "no flow given");
        bad = TRUE;
    }
    if (!bad)
        *out = flows;
out:
    g_strfreev(entries);
    value_clear(&v);
}

static char *
get_extension(KdCheck *c)
{
    KdValue v;
    char *result = NULL;

    get_value(c, "tracking", "extension-attribute", FALSE, &v);
    if (v.presence != KD_VALUE_PRESENT || v.text[0] == '\0')
        goto out;
    if (!kd_cfg_is_extension_name(v.text)) {
        add_problem(c, "tracking", "extension-attribute", v.shown, KD_ALLOWED_EXT,
                    "not a directory extension name%s", kd_cfg_comment_hint(v.text));
        goto out;
    }
    result = g_steal_pointer(&v.text);
out:
    value_clear(&v);
    return result;
}

/*
 * A path key, made absolute. Returns NULL when unset, empty or unusable; @v keeps what was
 * written so the caller can quote it. Resolution is textual: symlinks are followed only when
 * the file is opened, so the message shows the path the admin would type.
 */
static char *
get_path(KdCheck *c, const char *group, const char *key, const char *allowed, KdValue *v)
{
    get_value(c, group, key, FALSE, v);
    if (v->presence != KD_VALUE_PRESENT || v->text[0] == '\0')
        return NULL;
    if (kd_cfg_has_control(v->text)) {
        add_problem(c, group, key, v->shown, allowed,
                    "contains a line break or another control character");
        return NULL;
    }
    if (v->text[0] == '~') {
        add_problem(c, group, key, v->shown, allowed, "starts with '~', which is not expanded");
        return NULL;
    }
    if (g_path_is_absolute(v->text))
        return g_canonicalize_filename(v->text, NULL);
    if (c->base_dir == NULL) {
        add_problem(c, group, key, v->shown, allowed,
                    "a relative path, and there is no configuration file directory to resolve "
                    "it against");
        return NULL;
    }
    return g_canonicalize_filename(v->text, c->base_dir);
}

/*
 * Only metadata: a credential is never read here (reading it is the Graph client's job, with
 * its own wiping). The descriptor from open() is what fstat() checks, so the answer is about
 * the file that was actually opened, and O_NONBLOCK stops a FIFO at the path from hanging us.
 */
static void
check_file(KdCheck *c, const char *group, const char *key, const KdValue *v, const char *path,
           KdFileKind kind, const char *allowed)
{
    char *where = kd_cfg_printable(path), *fix = NULL;
    struct stat st;
    int fd, err;

    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0) {
        err = errno;
        add_problem(c, group, key, v->shown, allowed, "cannot open %s: %s", where, g_strerror(err));
        goto out;
    }
    if (fstat(fd, &st) != 0) {
        err = errno;
        add_problem(c, group, key, v->shown, allowed, "cannot check %s: %s", where,
                    g_strerror(err));
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        add_problem(c, group, key, v->shown, allowed, "%s is %s, not a regular file", where,
                    kd_cfg_file_type_name(st.st_mode));
        goto out;
    }
    if (kind == KD_FILE_CREDENTIAL && (st.st_mode & 077) != 0) {
        const char *how = (st.st_mode & 044) != 0   ? "readable"
                          : (st.st_mode & 022) != 0 ? "writable"
                                                    : "accessible";
        fix = kd_cfg_shell_arg(path);
        add_problem(c, group, key, v->shown, NULL,
                    "%s by group or others (mode %04o); keydesk refuses to start with an "
                    "exposed credential. Fix: chmod 600 %s",
                    how, (unsigned)(st.st_mode & 07777), fix);
        goto out;
    }
    if (kind == KD_FILE_TRUST && (st.st_mode & S_IWOTH) != 0) {
        fix = kd_cfg_shell_arg(path);
        add_problem(c, group, key, v->shown, NULL,
                    "writable by anyone (mode %04o); keydesk refuses a CA file that anyone can "
                    "change. Fix: chmod o-w %s",
                    (unsigned)(st.st_mode & 07777), fix);
        goto out;
    }
    if (st.st_size == 0)
        add_problem(c, group, key, v->shown, allowed, "%s is empty", where);
out:
    if (fd >= 0)
        close(fd);
    g_free(where);
    g_free(fix);
}

/* A file key: absolute path when given (problems about it already reported), else NULL. */
static char *
get_file(KdCheck *c, const char *key, KdFileKind kind, const char *allowed, gboolean *given)
{
    KdValue v;
    char *path;

    path = get_path(c, "tenant", key, allowed, &v);
    *given =
        v.presence != KD_VALUE_ABSENT && !(v.presence == KD_VALUE_PRESENT && v.text[0] == '\0');
    if (path != NULL)
        check_file(c, "tenant", key, &v, path, kind, allowed);
    value_clear(&v);
    return path;
}

static char *
get_state_dir(KdCheck *c)
{
    KdValue v;
    char *path;

    path = get_path(c, "tracking", "state-dir", KD_ALLOWED_STATE, &v);
    if (v.presence == KD_VALUE_ABSENT)
        path = g_strdup(KD_CONFIG_DEFAULT_STATE_DIR);
    else if (v.presence == KD_VALUE_PRESENT && v.text[0] == '\0')
        add_problem(c, "tracking", "state-dir", v.shown, KD_ALLOWED_STATE, "empty");
    value_clear(&v);
    return path;
}

static void
check_names(KdCheck *c)
{
    char **groups = g_key_file_get_groups(c->kf, NULL);
    char *group_list = kd_cfg_join_strv(kd_group_names, "[", "]");

    for (gsize i = 0; groups[i] != NULL; i++) {
        const KdGroupDef *def = find_group(groups[i]);
        char *gshown = kd_cfg_printable(groups[i]);

        if (def == NULL) {
            const char *near = kd_cfg_closest(groups[i], kd_group_names);
            char *hint = near != NULL ? g_strdup_printf(" (did you mean [%s]?)", near) : NULL;
            add_problem(c, gshown, NULL, NULL, group_list, "unknown group%s",
                        hint != NULL ? hint : "");
            g_free(hint);
            g_free(gshown);
            continue;
        }

        char **keys = g_key_file_get_keys(c->kf, groups[i], NULL, NULL);
        char *key_list = kd_cfg_join_strv(def->keys, "", "");
        for (gsize k = 0; keys != NULL && keys[k] != NULL; k++) {
            const KdGroupDef *home = NULL;
            char *hint = NULL, *kshown, *vshown, *raw;

            if (kd_cfg_strv_has(def->keys, keys[k]))
                continue;
            for (gsize g = 0; g < G_N_ELEMENTS(kd_groups); g++)
                if (kd_cfg_strv_has(kd_groups[g].keys, keys[k]))
                    home = &kd_groups[g];
            if (home != NULL)
                hint = g_strdup_printf(" (it belongs in [%s])", home->name);
            else
                hint = kd_cfg_suggestion(keys[k], def->keys);
            raw = g_key_file_get_value(c->kf, groups[i], keys[k], NULL);
            kshown = kd_cfg_printable(keys[k]);
            vshown = kd_cfg_printable(raw != NULL ? raw : "");
            add_problem(c, gshown, kshown, vshown, key_list, "unknown key%s", hint);
            g_free(hint);
            g_free(raw);
            g_free(kshown);
            g_free(vshown);
        }
        g_strfreev(keys);
        g_free(key_list);
        g_free(gshown);
    }

    g_strfreev(groups);
    g_free(group_list);
}

/*
 * GKeyFile keeps the last of two equal keys without a word, so an admin who appends a line
 * and misses an earlier one gets a setting they never see. This walks the lines the way
 * GKeyFile does (after syntax errors were blanked) to find repeats of known keys.
 */
static void
check_duplicates(KdCheck *c, char **lines)
{
    GHashTable *seen = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    char *group = NULL;

    for (gsize i = 0; lines[i] != NULL; i++) {
        const char *p = lines[i];
        const char *eq;
        gsize len;

        while (g_ascii_isspace(*p))
            p++;
        if (*p == '#' || *p == '\0')
            continue;
        if (*p == '[') {
            g_free(group);
            group = g_strndup(p + 1, strcspn(p + 1, "]"));
            continue;
        }
        eq = strchr(p, '=');
        if (group == NULL || eq == NULL || eq == p || find_group(group) == NULL)
            continue;
        len = (gsize)(eq - p);
        while (len > 0 && g_ascii_isspace(p[len - 1]))
            len--;

        char *key = g_strndup(p, len);
        char *id = g_strdup_printf("%s\n%s", group, key);
        gpointer first = g_hash_table_lookup(seen, id);
        if (kd_cfg_strv_has(find_group(group)->keys, key) && first != NULL) {
            char *raw = g_strstrip(g_strdup(eq + 1));
            char *shown =
                strcmp(key, "proxy") == 0 ? kd_cfg_printable_url(raw) : kd_cfg_printable(raw);
            add_problem(c, group, key, shown, "each key once",
                        "set again on line %zu (first set on line %u)", i + 1,
                        GPOINTER_TO_UINT(first));
            g_free(raw);
            g_free(shown);
            g_free(id);
        } else if (first == NULL) {
            g_hash_table_insert(seen, id, GUINT_TO_POINTER((guint)(i + 1)));
        } else {
            g_free(id);
        }
        g_free(key);
    }

    g_free(group);
    g_hash_table_destroy(seen);
}

static gboolean
parses(GKeyFile *kf, char **lines, gsize n, GError **error)
{
    char *saved = NULL, *text;
    gboolean ok;

    if (lines[n] != NULL) {
        saved = lines[n];
        lines[n] = NULL;
    }
    text = g_strjoinv("\n", lines);
    if (saved != NULL)
        lines[n] = saved;
    ok = g_key_file_load_from_data(kf, text, (gsize)-1, G_KEY_FILE_KEEP_TRANSLATIONS, error);
    g_free(text);
    return ok;
}

/*
 * GKeyFile stops at the first bad line and does not say which line it was. Parsing ever
 * shorter prefixes finds it, blanking it lets the rest of the file be checked too, so one
 * stray line does not hide every other mistake.
 */
static GKeyFile *
parse_lines(KdCheck *c, char **lines)
{
    GKeyFile *kf = g_key_file_new();
    GError *error = NULL;
    gsize n = g_strv_length(lines);
    guint n_syntax = 0;
    char *msg = NULL;

    while (!parses(kf, lines, n, NULL)) {
        gsize lo = 1, hi = n;

        if (n_syntax == KD_MAX_SYNTAX_ERRORS) {
            add_problem(c, NULL, NULL, NULL, NULL, "more than %d syntax errors; stopped looking",
                        KD_MAX_SYNTAX_ERRORS);
            goto fail;
        }
        while (lo < hi) {
            gsize mid = lo + (hi - lo) / 2;
            if (parses(kf, lines, mid, NULL))
                lo = mid + 1;
            else
                hi = mid;
        }
        g_clear_error(&error);
        if (parses(kf, lines, lo, &error) || lines[lo - 1][0] == '\0') {
            /* GKeyFile disagrees with itself on a prefix; say what it said, without a line. */
            g_clear_error(&error);
            parses(kf, lines, n, &error);
            msg = kd_cfg_printable(error != NULL ? error->message : "cannot be parsed");
            add_problem(c, NULL, NULL, NULL, KD_ALLOWED_SYNTAX, "syntax error: %s", msg);
            goto fail;
        }
        msg = kd_cfg_printable(error->message);
        add_problem(c, NULL, NULL, NULL, KD_ALLOWED_SYNTAX, "line %zu: syntax error: %s", lo, msg);
        g_clear_pointer(&msg, g_free);
        g_free(lines[lo - 1]);
        lines[lo - 1] = g_strdup("");
        n_syntax++;
    }
    goto out;
fail:
    g_clear_pointer(&kf, g_key_file_free);
out:
    g_clear_error(&error);
    g_free(msg);
    return kf;
}

static KdConfig *
config_new_defaults(const char *source)
{
    KdConfig *cfg = g_new0(KdConfig, 1);

    cfg->source = g_strdup(source);
    cfg->idle_timeout_s = KD_CONFIG_DEFAULT_IDLE_TIMEOUT;
    cfg->idle_countdown_s = KD_CONFIG_DEFAULT_IDLE_COUNTDOWN;
    cfg->touch_only = FALSE;
    cfg->graph_url = g_strdup(KD_CONFIG_DEFAULT_GRAPH_URL);
    cfg->login_url = g_strdup(KD_CONFIG_DEFAULT_LOGIN_URL);
    cfg->identity_mode = KD_IDENTITY_OPERATOR;
    cfg->flows = KD_FLOW_ALL;
    cfg->tap_lifetime_min = KD_CONFIG_DEFAULT_TAP_LIFETIME;
    cfg->state_dir = g_strdup(KD_CONFIG_DEFAULT_STATE_DIR);
    return cfg;
}

static void
check_idle(KdCheck *c, KdConfig *cfg)
{
    guint timeout = cfg->idle_timeout_s, countdown = cfg->idle_countdown_s;
    gboolean timeout_ok, countdown_ok, timeout_given, countdown_given;
    KdValue v;

    timeout_ok =
        get_uint(c, "kiosk", "idle-timeout", 10, 3600, "seconds", &timeout, &timeout_given);
    countdown_ok =
        get_uint(c, "kiosk", "idle-countdown", 5, 60, "seconds", &countdown, &countdown_given);
    if (timeout_ok)
        cfg->idle_timeout_s = timeout;
    if (countdown_ok)
        cfg->idle_countdown_s = countdown;
    /* The countdown runs inside the idle time; one as long as the timeout never lets it idle. */
    if (!timeout_ok || !countdown_ok || countdown < timeout)
        return;
    if (countdown_given) {
        get_value(c, "kiosk", "idle-countdown", FALSE, &v);
        add_problem(c, "kiosk", "idle-countdown", v.shown,
                    "5 to 60 seconds, and less than idle-timeout",
                    "not shorter than idle-timeout (%u seconds)", timeout);
    } else {
        get_value(c, "kiosk", "idle-timeout", FALSE, &v);
        add_problem(c, "kiosk", "idle-timeout", v.shown,
                    "10 to 3600 seconds, and more than idle-countdown",
                    "not longer than idle-countdown (%u seconds by default)", countdown);
    }
    value_clear(&v);
}

static void
check_tenant(KdCheck *c, KdConfig *cfg, gboolean *has_credential)
{
    gboolean cert, key, secret, ca;
    KdValue v;

    cfg->tenant_id = get_tenant(c);
    cfg->client_id = get_guid(c, "tenant", "client-id", TRUE, KD_ALLOWED_CLIENT);
    cfg->certificate_file = get_file(c, "certificate-file", KD_FILE_PUBLIC, KD_ALLOWED_CERT, &cert);
    cfg->private_key_file =
        get_file(c, "private-key-file", KD_FILE_CREDENTIAL, KD_ALLOWED_SECRET, &key);
    cfg->client_secret_file =
        get_file(c, "client-secret-file", KD_FILE_CREDENTIAL, KD_ALLOWED_SECRET, &secret);
    g_free(cfg->graph_url);
    cfg->graph_url = get_https_host(c, "graph-host", KD_CONFIG_DEFAULT_GRAPH_URL);
    g_free(cfg->login_url);
    cfg->login_url = get_https_host(c, "login-host", KD_CONFIG_DEFAULT_LOGIN_URL);
    cfg->ca_file = get_file(c, "ca-file", KD_FILE_TRUST, KD_ALLOWED_CA, &ca);
    cfg->proxy = get_proxy(c);

    if (cert && !key) {
        get_value(c, "tenant", "certificate-file", FALSE, &v);
        add_problem(c, "tenant", "certificate-file", v.shown,
                    "certificate-file and private-key-file together",
                    "given without private-key-file");
        value_clear(&v);
    }
    if (key && !cert) {
        get_value(c, "tenant", "private-key-file", FALSE, &v);
        add_problem(c, "tenant", "private-key-file", v.shown,
                    "certificate-file and private-key-file together",
                    "given without certificate-file");
        value_clear(&v);
    }
    if (secret && (cert || key)) {
        get_value(c, "tenant", "client-secret-file", FALSE, &v);
        add_problem(c, "tenant", "client-secret-file", v.shown,
                    "either certificate-file with private-key-file, or client-secret-file",
                    "given together with %s", cert ? "certificate-file" : "private-key-file");
        value_clear(&v);
    }
    *has_credential = cert || key || secret;
}

static KdConfig *
check_all(KdCheck *c)
{
    KdConfig *cfg = config_new_defaults(c->source);
    gboolean has_credential, mode_ok, tap_given;
    KdValue v;

    check_names(c);

    cfg->name = get_text(c, "kiosk", "name", TRUE, KD_ALLOWED_NAME);
    cfg->site = get_text(c, "kiosk", "site", FALSE, KD_ALLOWED_SITE);
    check_idle(c, cfg);
    get_bool(c, "kiosk", "touch-only", &cfg->touch_only);

    check_tenant(c, cfg, &has_credential);

    get_identity_mode(c, &cfg->identity_mode, &mode_ok);
    get_flows(c, &cfg->flows);
    get_uint(c, "enrolment", "tap-lifetime", 10, 43200, "minutes", &cfg->tap_lifetime_min,
             &tap_given);
    /* In self mode the write is done with the kiosk's own token; without one it cannot act. */
    if (mode_ok && cfg->identity_mode == KD_IDENTITY_SELF && !has_credential) {
        get_value(c, "enrolment", "identity-mode", FALSE, &v);
        add_problem(c, "enrolment", "identity-mode", v.shown,
                    "operator, or self with certificate-file and private-key-file (or "
                    "client-secret-file) in [tenant]",
                    "needs an app credential, and [tenant] has none");
        value_clear(&v);
    }

    cfg->group_id = get_guid(c, "tracking", "group-id", FALSE, KD_ALLOWED_GROUP);
    cfg->extension_attribute = get_extension(c);
    g_free(cfg->state_dir);
    cfg->state_dir = get_state_dir(c);

    if (c->n_problems > 0)
        kd_config_free(&cfg);
    return cfg;
}

static KdConfig *
load_text(KdCheck *c, const char *data, gsize len)
{
    KdConfig *cfg = NULL;
    char *text = NULL, **lines = NULL;
    const char *nul;

    /* GKeyFile would stop at a NUL without saying so, hiding everything after it. */
    nul = memchr(data, '\0', len);
    if (nul != NULL) {
        guint line = 1;
        for (const char *p = data; p < nul; p++)
            line += *p == '\n';
        add_problem(c, NULL, NULL, NULL, "text", "line %u: contains a NUL byte", line);
        goto out;
    }
    text = g_strndup(data, len);
    lines = g_strsplit(text, "\n", -1);
    c->kf = parse_lines(c, lines);
    if (c->kf == NULL)
        goto out;
    check_duplicates(c, lines);
    cfg = check_all(c);
out:
    g_clear_pointer(&c->kf, g_key_file_free);
    g_strfreev(lines);
    g_free(text);
    return cfg;
}

static void
check_init(KdCheck *c, const char *source, GPtrArray *problems)
{
    memset(c, 0, sizeof(*c));
    c->source = kd_cfg_printable(source != NULL ? source : "configuration");
    c->problems = problems != NULL ? problems : g_ptr_array_new_with_free_func(g_free);
}

static void
check_clear(KdCheck *c, GPtrArray *problems)
{
    if (c->problems != problems)
        g_ptr_array_unref(c->problems);
    g_free(c->source);
    g_free(c->base_dir);
}

KdConfig *
kd_config_load_data(const char *data, gsize len, const char *source, const char *base_dir,
                    GPtrArray *problems)
{
    KdCheck c;
    KdConfig *cfg;

    g_return_val_if_fail(data != NULL, NULL);

    check_init(&c, source, problems);
    if (len == (gsize)-1)
        len = strlen(data);
    if (base_dir != NULL)
        c.base_dir = g_canonicalize_filename(base_dir, NULL);
    cfg = load_text(&c, data, len);
    if (cfg != NULL) {
        g_free(cfg->source);
        cfg->source = g_strdup(source != NULL ? source : "configuration");
    }
    check_clear(&c, problems);
    return cfg;
}

KdConfig *
kd_config_load(const char *path, GPtrArray *problems)
{
    KdCheck c;
    KdConfig *cfg = NULL;
    GString *data = NULL;
    struct stat st;
    char *abs = NULL, buf[4096];
    int fd = -1, err;

    g_return_val_if_fail(path != NULL, NULL);

    check_init(&c, path, problems);
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0) {
        err = errno;
        add_problem(&c, NULL, NULL, NULL, NULL, "cannot open the configuration file: %s",
                    g_strerror(err));
        goto out;
    }
    if (fstat(fd, &st) != 0) {
        err = errno;
        add_problem(&c, NULL, NULL, NULL, NULL, "cannot check the configuration file: %s",
                    g_strerror(err));
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        add_problem(&c, NULL, NULL, NULL, "a configuration file", "is %s, not a regular file",
                    kd_cfg_file_type_name(st.st_mode));
        goto out;
    }
    if (st.st_size > KD_CONFIG_MAX_SIZE) {
        add_problem(&c, NULL, NULL, NULL, "up to 1048576 bytes", "too large (%jd bytes)",
                    (intmax_t)st.st_size);
        goto out;
    }
    /* Anyone who can edit it can point login-host at their own server. Keep checking, though. */
    if ((st.st_mode & S_IWOTH) != 0) {
        char *fix = kd_cfg_shell_arg(path);
        add_problem(&c, NULL, NULL, NULL, NULL,
                    "writable by anyone (mode %04o); keydesk refuses a configuration that anyone "
                    "can change. Fix: chmod o-w %s",
                    (unsigned)(st.st_mode & 07777), fix);
        g_free(fix);
    }

    data = g_string_sized_new((gsize)st.st_size + 1);
    for (;;) {
        ssize_t n = read(fd, buf, sizeof(buf));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            err = errno;
            add_problem(&c, NULL, NULL, NULL, NULL, "cannot read the configuration file: %s",
                        g_strerror(err));
            goto out;
        }
        if (n == 0)
            break;
        if (data->len + (gsize)n > KD_CONFIG_MAX_SIZE) {
            add_problem(&c, NULL, NULL, NULL, "up to 1048576 bytes", "too large (grew while read)");
            goto out;
        }
        g_string_append_len(data, buf, n);
    }

    abs = g_canonicalize_filename(path, NULL);
    c.base_dir = g_path_get_dirname(abs);
    /* A problem found above (mode) already counts, so load_text returns NULL for it too. */
    cfg = load_text(&c, data->str, data->len);
    if (cfg != NULL) {
        g_free(cfg->source);
        cfg->source = g_strdup(abs);
    }
out:
    if (fd >= 0)
        close(fd);
    if (data != NULL)
        g_string_free(data, TRUE);
    g_free(abs);
    check_clear(&c, problems);
    return cfg;
}

KdConfig *
kd_config_new_demo(void)
{
    KdConfig *cfg = config_new_defaults(KD_CONFIG_DEMO_SOURCE);

    cfg->demo = TRUE;
    cfg->name = g_strdup("keydesk demo desk");
    cfg->site = g_strdup("Practice tenant: nothing here is real");
    cfg->tenant_id = g_strdup(KD_CONFIG_DEMO_TENANT_ID);
    cfg->client_id = g_strdup(KD_CONFIG_DEMO_CLIENT_ID);
    g_free(cfg->state_dir);
    cfg->state_dir = g_build_filename(g_get_user_state_dir(), "keydesk-demo", NULL);
    return cfg;
}

void
kd_config_free(KdConfig **cfgp)
{
    KdConfig *cfg;

    if (cfgp == NULL || *cfgp == NULL)
        return;
    cfg = *cfgp;
    g_free(cfg->source);
    g_free(cfg->name);
    g_free(cfg->site);
    g_free(cfg->tenant_id);
    g_free(cfg->client_id);
    g_free(cfg->certificate_file);
    g_free(cfg->private_key_file);
    g_free(cfg->client_secret_file);
    g_free(cfg->graph_url);
    g_free(cfg->login_url);
    g_free(cfg->ca_file);
    g_free(cfg->proxy);
    g_free(cfg->group_id);
    g_free(cfg->extension_attribute);
    g_free(cfg->state_dir);
    g_free(cfg);
    *cfgp = NULL;
}

const char *
kd_identity_mode_to_string(KdIdentityMode mode)
{
    switch (mode) {
    case KD_IDENTITY_OPERATOR:
        return "operator";
    case KD_IDENTITY_SELF:
        return "self";
    }
    return NULL;
}

const char *
kd_flow_to_string(KdFlow flow)
{
    for (gsize i = 0; i < G_N_ELEMENTS(kd_flow_values); i++)
        if (kd_flow_values[i] == flow)
            return kd_flow_names[i];
    return NULL;
}
