/* kd-http: libcurl's multi interface driven by a GLib main context; no call here ever blocks. */
#include "graph/kd-http.h"

#include <curl/curl.h>
#include <malloc.h>
#include <stdlib.h>
#include <string.h>

/* A Graph answer is a page of JSON (tens of kilobytes); anything near this is an attack or a
 * bug, and must not grow the kiosk's memory without bound (curl decompresses gzip for us). */
#define KD_HTTP_MAX_BODY (64 * 1024 * 1024)

/* One GSource per engine watches every socket curl asks for (g_source_add_unix_fd, one tag per
 * socket) and carries curl's single timer as its ready time. One source rather than one per
 * socket: curl changes a socket's interest (write, then read) on every request, and
 * g_source_modify_unix_fd does that without allocating and re-attaching sources. */
typedef struct {
    GSource source;
    KdHttp *http;
} KdHttpSource;

typedef struct {
    curl_socket_t fd;
    gpointer tag; /* from g_source_add_unix_fd */
} KdHttpSocket;

struct _KdHttp {
    GMainContext *context;
    GSource *source;
    CURLM *multi;
    CURLSH *share;
    GPtrArray *sockets; /* KdHttpSocket *, owned */
    GQueue transfers;   /* KdHttpTransfer * in flight */
    char *ca_file;
    char *proxy;
    char *user_agent;
    long connect_timeout_s;
    long request_timeout_s;
    struct curl_slist *connect_to; /* curl keeps a pointer, so it lives as long as the engine */
};

struct _KdHttpRequest {
    char *method;
    char *url;
    /* "Name: value" strings, copied by curl_slist_append. Some are secret (Authorization), so
     * every one is wiped before the list is freed: cheaper than remembering which. */
    struct curl_slist *headers;
    GBytes *body;
    KdSecret *secret_body;
    int idempotent; /* -1: decided by the method */
};

struct _KdHttpResponse {
    guint status;
    GHashTable *headers; /* lower-cased name -> value */
    GBytes *body;
    double seconds;
    gboolean reused;
};

typedef struct {
    KdHttp *http;
    GList link; /* in http->transfers; data points back here */
    CURL *easy;
    KdHttpRequest *request;
    GTask *task;
    GSource *cancel_source;
    GHashTable *headers;
    GByteArray *body;
    gsize body_capacity; /* bytes reserved in body (grown by on_body, never by realloc) */
    gboolean too_large;
    char *log_url;     /* no query string: Graph puts user names and filters there */
    char *proxy_label; /* the proxy this request goes through (no credentials), or NULL */
    char errbuf[CURL_ERROR_SIZE];
} KdHttpTransfer;

/* What a finished transfer hands to its GTask, once curl no longer looks at it. */
typedef struct {
    GTask *task;
    KdHttpResponse *response;
    GError *error;
} KdHttpOutcome;

static void transfer_complete(KdHttpTransfer *t, CURLcode code, GPtrArray *outcomes);

/* --- small helpers ------------------------------------------------------------------------ */

static guint
header_hash(gconstpointer key)
{
    const char *p;
    guint h = 5381;

    for (p = key; *p != '\0'; p++)
        h = h * 33 + (guint)g_ascii_tolower(*p);
    return h;
}

static gboolean
header_equal(gconstpointer a, gconstpointer b)
{
    return g_ascii_strcasecmp(a, b) == 0;
}

static GHashTable *
header_table_new(void)
{
    return g_hash_table_new_full(header_hash, header_equal, g_free, g_free);
}

static char *
url_without_query(const char *url)
{
    return g_strndup(url, strcspn(url, "?#"));
}

/* "scheme://host:port" of a proxy URL, without user name and password, for messages and logs. */
static char *
proxy_label_new(const char *proxy)
{
    g_autofree char *with_scheme = NULL;
    g_autoptr(GUri) uri = NULL;
    const char *text = proxy;

    if (strstr(proxy, "://") == NULL)
        text = with_scheme = g_strconcat("http://", proxy, NULL); /* curl's default too */
    uri = g_uri_parse(text, G_URI_FLAGS_NONE, NULL);
    if (uri == NULL || g_uri_get_host(uri) == NULL)
        return g_strdup("(unparsable proxy URL)");
    return g_uri_join(G_URI_FLAGS_NONE, g_uri_get_scheme(uri), NULL, g_uri_get_host(uri),
                      g_uri_get_port(uri), "", NULL, NULL);
}

/* Whether @host is listed in a no_proxy value, by the rules of curl 7.88's Curl_check_noproxy:
 * "*" alone matches all; entries are separated by commas or spaces; a name matches itself and
 * its subdomains (a leading dot is ignored); an IP address matches exactly or by CIDR. */
static gboolean
noproxy_matches(const char *no_proxy, const char *host)
{
    g_autoptr(GInetAddress) address = NULL;
    g_auto(GStrv) entries = NULL;
    g_autofree char *bare = NULL, *trimmed = g_strstrip(g_strdup(no_proxy));
    size_t host_len;

    if (strcmp(trimmed, "*") == 0)
        return TRUE;
    bare = host[0] == '[' ? g_strndup(host + 1, strcspn(host + 1, "]")) : g_strdup(host);
    host_len = strlen(bare);
    address = g_inet_address_new_from_string(bare);
    entries = g_strsplit_set(no_proxy, ", ", -1);
    for (char **e = entries; *e != NULL; e++) {
        const char *entry = *e;
        size_t len;

        if (entry[0] == '\0')
            continue;
        if (address != NULL) {
            g_autoptr(GInetAddressMask) mask = NULL;

            if (strchr(entry, '/') == NULL) {
                if (g_ascii_strcasecmp(entry, bare) == 0)
                    return TRUE;
                continue;
            }
            mask = g_inet_address_mask_new_from_string(entry, NULL);
            if (mask != NULL && g_inet_address_mask_matches(mask, address))
                return TRUE;
            continue;
        }
        if (entry[0] == '.')
            entry++;
        len = strlen(entry);
        if (len == host_len && g_ascii_strcasecmp(entry, bare) == 0)
            return TRUE;
        if (len > 0 && len < host_len && bare[host_len - len - 1] == '.' &&
            g_ascii_strcasecmp(entry, bare + host_len - len) == 0)
            return TRUE;
    }
    return FALSE;
}

/* As curl_getenv: an empty variable counts as unset. */
static const char *
getenv_nonempty(const char *name)
{
    const char *value = g_getenv(name);

    return value != NULL && value[0] != '\0' ? value : NULL;
}

/*
 * The proxy curl will use for @url, or NULL. Without options.proxy curl reads the environment
 * itself; this repeats its rules (curl 7.88 url.c: no_proxy, then NO_PROXY, which also override
 * CURLOPT_PROXY; then https_proxy, HTTPS_PROXY, all_proxy, ALL_PROXY) only so that a failure
 * can say it was the proxy that failed. The decision stays curl's.
 */
static char *
proxy_for_url(const KdHttp *http, const char *url)
{
    static const char *const proxy_vars[] = {"https_proxy", "HTTPS_PROXY", "all_proxy",
                                             "ALL_PROXY"};
    g_autoptr(GUri) uri = g_uri_parse(url, G_URI_FLAGS_NONE, NULL);
    const char *proxy = http->proxy, *no_proxy = getenv_nonempty("no_proxy");

    if (no_proxy == NULL)
        no_proxy = getenv_nonempty("NO_PROXY");
    if (no_proxy != NULL && uri != NULL && g_uri_get_host(uri) != NULL &&
        noproxy_matches(no_proxy, g_uri_get_host(uri)))
        return NULL;
    for (guint i = 0; i < G_N_ELEMENTS(proxy_vars) && proxy == NULL; i++)
        proxy = getenv_nonempty(proxy_vars[i]);
    if (proxy == NULL || proxy[0] == '\0')
        return NULL;
    return proxy_label_new(proxy);
}

/* --- requests ------------------------------------------------------------------------------ */

KdHttpRequest *
kd_http_request_new(const char *method, const char *url)
{
    KdHttpRequest *request;

    g_return_val_if_fail(method != NULL && method[0] != '\0', NULL);
    g_return_val_if_fail(url != NULL, NULL);
    request = g_new0(KdHttpRequest, 1);
    request->method = g_ascii_strup(method, -1);
    request->url = g_strdup(url);
    request->idempotent = -1;
    return request;
}

static void
headers_wipe_free(struct curl_slist **headers)
{
    for (struct curl_slist *h = *headers; h != NULL; h = h->next)
        explicit_bzero(h->data, strlen(h->data));
    curl_slist_free_all(*headers);
    *headers = NULL;
}

void
kd_http_request_free(KdHttpRequest **requestp)
{
    KdHttpRequest *request;

    if (requestp == NULL || (request = *requestp) == NULL)
        return;
    headers_wipe_free(&request->headers);
    g_clear_pointer(&request->body, g_bytes_unref);
    /* The last reference wipes it; the caller may hold another for a retry. */
    g_clear_pointer(&request->secret_body, kd_secret_unref);
    g_free(request->method);
    g_free(request->url);
    g_free(request);
    *requestp = NULL;
}

static gboolean
header_text_is_valid(const char *text)
{
    return text != NULL && strpbrk(text, "\r\n") == NULL;
}

/* Builds "Name: value" in locked memory, so the only other copy is curl_slist_append's, which
 * headers_wipe_free wipes. curl sends "Name:" as "remove this header" and "Name;" as an empty
 * one, hence the special case. */
static void
request_append_header(KdHttpRequest *request, const char *name, const char *value)
{
    gsize len = strlen(name) + 2 + strlen(value);
    KdSecret *line = kd_secret_new(len);
    struct curl_slist *headers;

    kd_secret_append(line, name, strlen(name));
    if (value[0] == '\0') {
        kd_secret_append(line, ";", 1);
    } else {
        kd_secret_append(line, ": ", 2);
        kd_secret_append(line, value, strlen(value));
    }
    headers = curl_slist_append(request->headers, kd_secret_get_string(line));
    kd_secret_unref(line);
    if (headers == NULL)
        g_error("kd-http: out of memory adding a header"); /* as g_malloc would */
    request->headers = headers;
}

void
kd_http_request_add_header(KdHttpRequest *request, const char *name, const char *value)
{
    g_return_if_fail(request != NULL);
    g_return_if_fail(header_text_is_valid(name) && name[0] != '\0' && strchr(name, ':') == NULL);
    g_return_if_fail(header_text_is_valid(value));
    request_append_header(request, name, value);
}

void
kd_http_request_add_secret_header(KdHttpRequest *request, const char *name, const char *value)
{
    /* Every header is wiped on free; this entry point exists so callers say what they mean. */
    kd_http_request_add_header(request, name, value);
}

void
kd_http_request_set_body(KdHttpRequest *request, GBytes *body, const char *content_type)
{
    g_return_if_fail(request != NULL && body != NULL);
    g_return_if_fail(request->body == NULL && request->secret_body == NULL);
    request->body = g_bytes_ref(body);
    if (content_type != NULL)
        kd_http_request_add_header(request, "Content-Type", content_type);
}

void
kd_http_request_set_secret_body(KdHttpRequest *request, KdSecret *body, const char *content_type)
{
    g_return_if_fail(request != NULL && body != NULL);
    g_return_if_fail(request->body == NULL && request->secret_body == NULL);
    request->secret_body = kd_secret_ref(body);
    if (content_type != NULL)
        kd_http_request_add_header(request, "Content-Type", content_type);
}

void
kd_http_request_set_idempotent(KdHttpRequest *request, gboolean idempotent)
{
    g_return_if_fail(request != NULL);
    request->idempotent = idempotent ? 1 : 0;
}

static gboolean
request_is_idempotent(const KdHttpRequest *request)
{
    static const char *const safe[] = {"GET", "HEAD", "PUT", "DELETE", "OPTIONS"};

    if (request->idempotent >= 0)
        return request->idempotent == 1;
    for (guint i = 0; i < G_N_ELEMENTS(safe); i++)
        if (strcmp(request->method, safe[i]) == 0)
            return TRUE;
    return FALSE;
}

/* --- responses ----------------------------------------------------------------------------- */

guint
kd_http_response_get_status(const KdHttpResponse *response)
{
    g_return_val_if_fail(response != NULL, 0);
    return response->status;
}

const char *
kd_http_response_get_header(const KdHttpResponse *response, const char *name)
{
    g_return_val_if_fail(response != NULL && name != NULL, NULL);
    return g_hash_table_lookup(response->headers, name);
}

GBytes *
kd_http_response_get_body(const KdHttpResponse *response)
{
    g_return_val_if_fail(response != NULL, NULL);
    return response->body;
}

double
kd_http_response_get_seconds(const KdHttpResponse *response)
{
    g_return_val_if_fail(response != NULL, 0.0);
    return response->seconds;
}

GHashTable *
kd_http_response_get_headers(const KdHttpResponse *response)
{
    g_return_val_if_fail(response != NULL, NULL);
    return response->headers;
}

gboolean
kd_http_response_get_reused_connection(const KdHttpResponse *response)
{
    g_return_val_if_fail(response != NULL, FALSE);
    return response->reused;
}

void
kd_http_response_free(KdHttpResponse **responsep)
{
    KdHttpResponse *response;

    if (responsep == NULL || (response = *responsep) == NULL)
        return;
    g_hash_table_unref(response->headers);
    g_bytes_unref(response->body);
    g_free(response);
    *responsep = NULL;
}

static void
response_destroy(gpointer data)
{
    KdHttpResponse *response = data;

    kd_http_response_free(&response);
}

/* --- curl callbacks for one transfer --------------------------------------------------------- */

static size_t
on_header(char *buf, size_t size, size_t nmemb, void *data)
{
    KdHttpTransfer *t = data;
    size_t len = size * nmemb, name_len;
    const char *colon;
    char *name, *value;

    /* A status line starts a new response (1xx, a proxy's CONNECT answer): keep only the
     * headers of the last one. */
    if (len >= 5 && g_ascii_strncasecmp(buf, "HTTP/", 5) == 0) {
        g_hash_table_remove_all(t->headers);
        return len;
    }
    /* The blank line that ends the headers, and obsolete folded continuation lines. */
    if (len == 0 || buf[0] == ' ' || buf[0] == '\t' || (colon = memchr(buf, ':', len)) == NULL)
        return len;
    name_len = (size_t)(colon - buf);
    if (name_len == 0)
        return len;
    name = g_ascii_strdown(buf, (gssize)name_len);
    value = g_strstrip(g_strndup(colon + 1, len - name_len - 1));
    g_hash_table_replace(t->headers, name, value);
    return len;
}

static size_t
on_body(char *buf, size_t size, size_t nmemb, void *data)
{
    KdHttpTransfer *t = data;
    size_t len = size * nmemb;

    if (len > KD_HTTP_MAX_BODY - t->body->len) {
        t->too_large = TRUE;
        return 0; /* CURLE_WRITE_ERROR */
    }
    /* A body may hold a new Temporary Access Pass or a token: grow it by copying into a larger
     * array and wiping the old one, never by realloc, which would leave a copy in freed heap. */
    if (t->body->len + len > t->body_capacity) {
        gsize capacity = MAX(t->body_capacity * 2, t->body->len + len);
        GByteArray *bigger = g_byte_array_sized_new((guint)capacity);

        g_byte_array_append(bigger, t->body->data, t->body->len);
        explicit_bzero(t->body->data, t->body->len);
        g_byte_array_unref(t->body);
        t->body = bigger;
        t->body_capacity = capacity;
    }
    g_byte_array_append(t->body, (const guint8 *)buf, (guint)len);
    return len;
}

static void
wipe_byte_array(gpointer data)
{
    GByteArray *array = data;

    explicit_bzero(array->data, array->len);
    g_byte_array_unref(array);
}

/* --- outcomes ----------------------------------------------------------------------------- */

static void
outcome_free(gpointer data)
{
    KdHttpOutcome *o = data;

    if (o == NULL)
        return;
    g_clear_object(&o->task);
    kd_http_response_free(&o->response);
    g_clear_error(&o->error);
    g_free(o);
}

/* May run the caller's callback before it returns (GTask does when it can). */
static void
outcome_return(KdHttpOutcome *o)
{
    if (o->error != NULL)
        g_task_return_error(o->task, g_steal_pointer(&o->error));
    else
        g_task_return_pointer(o->task, g_steal_pointer(&o->response), response_destroy);
    outcome_free(o);
}

static gboolean
return_orphans(gpointer data)
{
    GPtrArray *orphans = data;

    for (guint i = 0; i < orphans->len; i++)
        outcome_return(g_steal_pointer(&orphans->pdata[i]));
    return G_SOURCE_REMOVE;
}

/* --- the engine's GSource -------------------------------------------------------------------- */

static gboolean
source_dispatch(GSource *source, GSourceFunc callback, gpointer user_data)
{
    KdHttp *http = ((KdHttpSource *)source)->http;
    g_autoptr(GArray) ready = g_array_new(FALSE, FALSE, sizeof(int) * 2);
    g_autoptr(GPtrArray) outcomes = g_ptr_array_new_with_free_func(outcome_free);
    gint64 deadline = g_source_get_ready_time(source);
    int running = 0, pending;
    CURLMsg *msg;

    /* Collect first: curl_multi_socket_action may remove sockets (and their tags) as it goes. */
    for (guint i = 0; i < http->sockets->len; i++) {
        KdHttpSocket *sock = g_ptr_array_index(http->sockets, i);
        GIOCondition cond = g_source_query_unix_fd(source, sock->tag);
        int pair[2] = {sock->fd, 0};

        if (cond & (G_IO_IN | G_IO_HUP))
            pair[1] |= CURL_CSELECT_IN;
        if (cond & G_IO_OUT)
            pair[1] |= CURL_CSELECT_OUT;
        if (cond & (G_IO_ERR | G_IO_NVAL))
            pair[1] |= CURL_CSELECT_ERR;
        if (pair[1] != 0)
            g_array_append_vals(ready, pair, 1);
    }
    if (deadline != -1 && deadline <= g_source_get_time(source)) {
        /* Cleared before the call, which may set a new one through on_timer. */
        g_source_set_ready_time(source, -1);
        curl_multi_socket_action(http->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    }
    for (guint i = 0; i < ready->len; i++) {
        const int *pair = &g_array_index(ready, int, i * 2);

        curl_multi_socket_action(http->multi, pair[0], pair[1], &running);
    }

    while ((msg = curl_multi_info_read(http->multi, &pending)) != NULL) {
        KdHttpTransfer *t = NULL;

        if (msg->msg != CURLMSG_DONE)
            continue;
        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&t);
        transfer_complete(t, msg->data.result, outcomes);
    }

    /* Last, and touching nothing of @http: a callback may free the engine. */
    for (guint i = 0; i < outcomes->len; i++)
        outcome_return(g_steal_pointer(&outcomes->pdata[i]));
    return G_SOURCE_CONTINUE;
}

static GSourceFuncs source_funcs = {
    .dispatch = source_dispatch,
};

static int
on_socket(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
    KdHttp *http = userp;
    KdHttpSocket *sock = socketp;
    GIOCondition cond = 0;

    if (what == CURL_POLL_REMOVE) {
        if (sock != NULL) {
            g_source_remove_unix_fd(http->source, sock->tag);
            curl_multi_assign(http->multi, fd, NULL);
            g_ptr_array_remove_fast(http->sockets, sock);
        }
        return 0;
    }
    if (what & CURL_POLL_IN)
        cond |= G_IO_IN | G_IO_HUP | G_IO_ERR;
    if (what & CURL_POLL_OUT)
        cond |= G_IO_OUT | G_IO_ERR;
    if (sock == NULL) {
        sock = g_new0(KdHttpSocket, 1);
        sock->fd = fd;
        sock->tag = g_source_add_unix_fd(http->source, fd, cond);
        g_ptr_array_add(http->sockets, sock);
        curl_multi_assign(http->multi, fd, sock);
    } else {
        g_source_modify_unix_fd(http->source, sock->tag, cond);
    }
    return 0;
}

/* curl forbids calling it back from here; the ready time makes the source dispatch later. */
static int
on_timer(CURLM *multi, long timeout_ms, void *userp)
{
    KdHttp *http = userp;

    if (timeout_ms < 0)
        g_source_set_ready_time(http->source, -1);
    else
        g_source_set_ready_time(http->source, g_get_monotonic_time() + (gint64)timeout_ms * 1000);
    return 0;
}

/* --- the engine ---------------------------------------------------------------------------- */

/*
 * libcurl copies what it sends into buffers of its own (the request head with the
 * Authorization header, and small POST bodies appended to it) and frees them without wiping.
 * Its allocator is replaceable: these wrappers wipe every block before it goes back to malloc,
 * so a token or client secret is not left in freed heap memory.
 */
static void
wiped_free(void *p)
{
    if (p == NULL)
        return;
    explicit_bzero(p, malloc_usable_size(p));
    free(p);
}

static void *
wiped_realloc(void *p, size_t size)
{
    void *q;
    size_t old;

    if (p == NULL)
        return malloc(size);
    if (size == 0) {
        wiped_free(p);
        return NULL;
    }
    /* Never realloc in place: a moved block would be freed unwiped. */
    if ((q = malloc(size)) == NULL)
        return NULL;
    old = malloc_usable_size(p);
    memcpy(q, p, old < size ? old : size);
    wiped_free(p);
    return q;
}

static void
curl_init_once(void)
{
    static gsize done = 0;

    /* For the life of the process: curl_global_cleanup would race with other users of curl.
     * If something else in the process initialised curl first, curl keeps its own allocator
     * (and this still succeeds): the kiosk's only user of curl is this file. */
    if (g_once_init_enter(&done)) {
        if (curl_global_init_mem(CURL_GLOBAL_DEFAULT, malloc, wiped_free, wiped_realloc, strdup,
                                 calloc) != CURLE_OK)
            g_error("kd-http: curl_global_init failed");
        g_once_init_leave(&done, 1);
    }
}

KdHttp *
kd_http_new(const KdHttpOptions *options, GMainContext *context)
{
    KdHttp *http = NULL;

    g_return_val_if_fail(options != NULL, NULL);
    curl_init_once();

    http = g_new0(KdHttp, 1);
    http->context =
        context != NULL ? g_main_context_ref(context) : g_main_context_ref_thread_default();
    http->sockets = g_ptr_array_new_with_free_func(g_free);
    g_queue_init(&http->transfers);
    http->ca_file = g_strdup(options->ca_file);
    http->proxy = g_strdup(options->proxy);
    http->user_agent = g_strdup(options->user_agent != NULL ? options->user_agent : "keydesk");
    http->connect_timeout_s = options->connect_timeout_s != 0 ? options->connect_timeout_s : 10;
    http->request_timeout_s = options->request_timeout_s != 0 ? options->request_timeout_s : 60;
    for (const char *const *c = options->connect_to; c != NULL && *c != NULL; c++) {
        struct curl_slist *list = curl_slist_append(http->connect_to, *c);

        if (list == NULL)
            g_error("kd-http: out of memory");
        http->connect_to = list;
    }

    http->source = g_source_new(&source_funcs, sizeof(KdHttpSource));
    ((KdHttpSource *)http->source)->http = http;
    g_source_set_static_name(http->source, "kd-http");
    g_source_attach(http->source, http->context);

    /* Connections, TLS sessions and DNS answers shared by every request of this engine: one
     * engine lives on one main context, so no lock functions are needed. */
    http->share = curl_share_init();
    http->multi = curl_multi_init();
    if (http->share == NULL || http->multi == NULL ||
        curl_share_setopt(http->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_CONNECT) != CURLSHE_OK ||
        curl_share_setopt(http->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION) != CURLSHE_OK ||
        curl_share_setopt(http->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS) != CURLSHE_OK ||
        curl_multi_setopt(http->multi, CURLMOPT_SOCKETFUNCTION, on_socket) != CURLM_OK ||
        curl_multi_setopt(http->multi, CURLMOPT_SOCKETDATA, http) != CURLM_OK ||
        curl_multi_setopt(http->multi, CURLMOPT_TIMERFUNCTION, on_timer) != CURLM_OK ||
        curl_multi_setopt(http->multi, CURLMOPT_TIMERDATA, http) != CURLM_OK)
        g_error("kd-http: cannot set up libcurl"); /* only out of memory gets here */

    if (http->proxy != NULL) {
        g_autofree char *label = proxy_label_new(http->proxy);
        g_debug("kd-http: proxy %s", label);
    }
    return http;
}

/* Takes @t out of curl and the engine. After this nothing of curl refers to it. */
static void
transfer_detach(KdHttpTransfer *t)
{
    KdHttp *http = t->http;

    g_queue_unlink(&http->transfers, &t->link);
    if (t->cancel_source != NULL) {
        g_source_destroy(t->cancel_source);
        g_clear_pointer(&t->cancel_source, g_source_unref);
    }
    if (t->easy != NULL) {
        curl_multi_remove_handle(http->multi, t->easy);
        curl_easy_cleanup(t->easy);
        t->easy = NULL;
    }
    /* Wipe the request's secrets now, not whenever the caller drops the result. */
    kd_http_request_free(&t->request);
}

static void
transfer_free(KdHttpTransfer *t)
{
    if (t == NULL)
        return;
    kd_http_request_free(&t->request);
    g_clear_pointer(&t->headers, g_hash_table_unref);
    if (t->body != NULL)
        wipe_byte_array(t->body);
    g_free(t->log_url);
    g_free(t->proxy_label);
    g_clear_object(&t->task);
    g_free(t);
}

void
kd_http_free(KdHttp **httpp)
{
    KdHttp *http;
    GPtrArray *orphans;
    KdHttpTransfer *t;

    if (httpp == NULL || (http = *httpp) == NULL)
        return;
    *httpp = NULL;

    orphans = g_ptr_array_new_with_free_func(outcome_free);
    while ((t = g_queue_peek_head(&http->transfers)) != NULL) {
        KdHttpOutcome *o = g_new0(KdHttpOutcome, 1);

        o->error = g_error_new(G_IO_ERROR, G_IO_ERROR_CANCELLED,
                               "%s %s: cancelled: the HTTP engine was freed", t->request->method,
                               t->log_url);
        g_debug("kd-http: %s", o->error->message);
        transfer_detach(t);
        o->task = g_steal_pointer(&t->task);
        g_ptr_array_add(orphans, o);
        transfer_free(t);
    }
    /* Sockets curl still watches get CURL_POLL_REMOVE here, while the source can take it. */
    curl_multi_cleanup(http->multi);
    curl_share_cleanup(http->share);
    g_source_destroy(http->source);
    g_source_unref(http->source);
    g_ptr_array_unref(http->sockets);
    curl_slist_free_all(http->connect_to);
    g_free(http->ca_file);
    g_free(http->proxy);
    g_free(http->user_agent);

    /* Never run a callback from inside kd_http_free: the caller is usually half-way through
     * tearing itself down. */
    if (orphans->len > 0) {
        GSource *idle = g_idle_source_new();

        g_source_set_callback(idle, return_orphans, orphans, (GDestroyNotify)g_ptr_array_unref);
        g_source_set_static_name(idle, "kd-http orphans");
        g_source_attach(idle, http->context);
        g_source_unref(idle);
    } else {
        g_ptr_array_unref(orphans);
    }
    g_main_context_unref(http->context);
    g_free(http);
}

/* --- transfers ----------------------------------------------------------------------------- */

static GError *
error_from_curl(KdHttpTransfer *t, CURLcode code)
{
    const char *detail = t->errbuf[0] != '\0' ? t->errbuf : curl_easy_strerror(code);
    g_autofree char *via = NULL;
    GQuark domain = G_IO_ERROR;
    int error_code = G_IO_ERROR_FAILED;
    long connect_code = 0;

    curl_easy_getinfo(t->easy, CURLINFO_HTTP_CONNECTCODE, &connect_code);
    if (t->proxy_label != NULL)
        via = g_strdup_printf(" (through proxy %s)", t->proxy_label);

    switch (code) {
    case CURLE_OPERATION_TIMEDOUT:
        error_code = G_IO_ERROR_TIMED_OUT;
        break;
    case CURLE_COULDNT_RESOLVE_HOST:
        error_code = G_IO_ERROR_HOST_NOT_FOUND;
        break;
    case CURLE_COULDNT_CONNECT:
        /* Through a proxy, the only connection curl makes is to the proxy (a target the proxy
         * cannot reach shows as the CONNECT answer's status). */
        error_code =
            t->proxy_label != NULL ? G_IO_ERROR_PROXY_FAILED : G_IO_ERROR_CONNECTION_REFUSED;
        break;
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_PROXY:
        error_code = G_IO_ERROR_PROXY_FAILED;
        break;
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
        error_code = G_IO_ERROR_CONNECTION_CLOSED;
        break;
    case CURLE_PEER_FAILED_VERIFICATION: /* also CURLE_SSL_CACERT */
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_CRL_BADFILE:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_INVALIDCERTSTATUS:
        domain = G_TLS_ERROR;
        error_code = G_TLS_ERROR_BAD_CERTIFICATE;
        break;
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_SSL_ENGINE_NOTFOUND:
    case CURLE_SSL_ENGINE_SETFAILED:
    case CURLE_SSL_ENGINE_INITFAILED:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_SHUTDOWN_FAILED:
    case CURLE_SSL_CLIENTCERT:
    case CURLE_USE_SSL_FAILED:
        domain = G_TLS_ERROR;
        error_code = G_TLS_ERROR_HANDSHAKE;
        break;
    case CURLE_WRITE_ERROR:
    case CURLE_FILESIZE_EXCEEDED:
        if (t->too_large || code == CURLE_FILESIZE_EXCEEDED)
            detail = "the response is larger than the 64 MiB a Graph answer may be";
        break;
    case CURLE_UNSUPPORTED_PROTOCOL:
        detail = "only https:// URLs are allowed";
        break;
    default:
        break;
    }
    /* A proxy that refused the tunnel (403, 407, 502…) is the proxy's failure, whatever the
     * code curl reports it with. */
    if (domain == G_IO_ERROR && connect_code != 0 && connect_code / 100 != 2)
        error_code = G_IO_ERROR_PROXY_FAILED;

    return g_error_new(domain, error_code, "%s %s: %s%s", t->request->method, t->log_url, detail,
                       via != NULL ? via : "");
}

/* Takes @t out of curl and the engine and queues what its task is to return. */
static void
transfer_complete(KdHttpTransfer *t, CURLcode code, GPtrArray *outcomes)
{
    KdHttpOutcome *o = g_new0(KdHttpOutcome, 1);

    if (code == CURLE_OK && !t->too_large) {
        KdHttpResponse *r = g_new0(KdHttpResponse, 1);
        long status = 0, connects = 0;
        curl_off_t total_us = 0;

        curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &status);
        curl_easy_getinfo(t->easy, CURLINFO_NUM_CONNECTS, &connects);
        curl_easy_getinfo(t->easy, CURLINFO_TOTAL_TIME_T, &total_us);
        r->status = (guint)status;
        r->reused = connects == 0;
        r->seconds = (double)total_us / 1e6;
        r->headers = g_steal_pointer(&t->headers);
        /* The caller's GBytes wipes the body when its last reference goes. */
        r->body = g_bytes_new_with_free_func(t->body->data, t->body->len, wipe_byte_array, t->body);
        t->body = NULL;
        g_debug("kd-http: %s %s: HTTP %u in %.3f s, %s connection%s%s", t->request->method,
                t->log_url, r->status, r->seconds, r->reused ? "reused" : "new",
                t->proxy_label != NULL ? ", through proxy " : "",
                t->proxy_label != NULL ? t->proxy_label : "");
        o->response = r;
    } else {
        o->error = error_from_curl(t, code == CURLE_OK ? CURLE_WRITE_ERROR : code);
        g_debug("kd-http: %s (curl %d)", o->error->message, (int)code);
    }
    transfer_detach(t);
    o->task = g_steal_pointer(&t->task);
    g_ptr_array_add(outcomes, o);
    transfer_free(t);
}

static gboolean
on_cancelled(GCancellable *cancellable, gpointer data)
{
    KdHttpTransfer *t = data;
    KdHttpOutcome *o = g_new0(KdHttpOutcome, 1);

    g_debug("kd-http: %s %s: cancelled", t->request->method, t->log_url);
    /* Here, on the engine's context and outside the cancellable's signal handler, removing
     * the handle from curl and disconnecting from the cancellable are both safe. */
    transfer_detach(t);
    o->task = g_steal_pointer(&t->task);
    if (!g_cancellable_set_error_if_cancelled(cancellable, &o->error))
        o->error = g_error_new_literal(G_IO_ERROR, G_IO_ERROR_CANCELLED, "Operation was cancelled");
    transfer_free(t);
    /* GTask completes a cancelled task from an idle, so no callback runs from here. */
    outcome_return(o);
    return G_SOURCE_REMOVE;
}

static CURLcode
transfer_setup(KdHttpTransfer *t)
{
    KdHttp *http = t->http;
    KdHttpRequest *req = t->request;
    CURL *e = t->easy;
    const char *method = req->method;
    const void *body = NULL;
    gsize body_len = 0;
    gboolean has_body = req->body != NULL || req->secret_body != NULL;
    struct curl_slist *headers;
    CURLcode r = CURLE_OK;

#define SETOPT(opt, value)                                     \
    do {                                                       \
        if ((r = curl_easy_setopt(e, opt, value)) != CURLE_OK) \
            goto fail;                                         \
    } while (0)

    SETOPT(CURLOPT_PRIVATE, t);
    SETOPT(CURLOPT_ERRORBUFFER, t->errbuf);
    SETOPT(CURLOPT_SHARE, http->share);
    SETOPT(CURLOPT_NOSIGNAL, 1L);
    SETOPT(CURLOPT_URL, req->url);
    /* Graph and the login host speak https only; a proxy may still be http:// (the tunnel
     * inside it is TLS end to end), which CURLOPT_PROTOCOLS_STR does not restrict. */
    SETOPT(CURLOPT_PROTOCOLS_STR, "https");
    SETOPT(CURLOPT_REDIR_PROTOCOLS_STR, "https");
    SETOPT(CURLOPT_FOLLOWLOCATION, 0L);
    /* Verification is on by curl's default already; said again so no option, environment or
     * future default can turn it off. There is deliberately no way to set these to 0. */
    SETOPT(CURLOPT_SSL_VERIFYPEER, 1L);
    SETOPT(CURLOPT_SSL_VERIFYHOST, 2L);
    SETOPT(CURLOPT_PROXY_SSL_VERIFYPEER, 1L);
    SETOPT(CURLOPT_PROXY_SSL_VERIFYHOST, 2L);
    SETOPT(CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
    if (http->ca_file != NULL) {
        SETOPT(CURLOPT_CAINFO, http->ca_file);
        /* Debian's curl also trusts /etc/ssl/certs through CAPATH: "replacing the system CAs"
         * means dropping that too. */
        SETOPT(CURLOPT_CAPATH, NULL);
    }
    if (http->proxy != NULL)
        SETOPT(CURLOPT_PROXY, http->proxy);
    SETOPT(CURLOPT_SUPPRESS_CONNECT_HEADERS, 1L);
    SETOPT(CURLOPT_CONNECTTIMEOUT, http->connect_timeout_s);
    SETOPT(CURLOPT_TIMEOUT, http->request_timeout_s);
    if (http->connect_to != NULL)
        SETOPT(CURLOPT_CONNECT_TO, http->connect_to);
    SETOPT(CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
    SETOPT(CURLOPT_TCP_KEEPALIVE, 1L);
    SETOPT(CURLOPT_ACCEPT_ENCODING, "");
    SETOPT(CURLOPT_USERAGENT, http->user_agent);
    SETOPT(CURLOPT_HEADERFUNCTION, on_header);
    SETOPT(CURLOPT_HEADERDATA, t);
    SETOPT(CURLOPT_WRITEFUNCTION, on_body);
    SETOPT(CURLOPT_WRITEDATA, t);
    SETOPT(CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)KD_HTTP_MAX_BODY);
    /* curl silently sends a request again on a fresh connection when a reused one dies before
     * any answer byte: harmless for a GET, a duplicate write for a POST whose answer was lost.
     * A request that must not be repeated never rides a reused connection. */
    if (!request_is_idempotent(req))
        SETOPT(CURLOPT_FRESH_CONNECT, 1L);

    /* curl sends "Expect: 100-continue" for large bodies and waits up to a second for it. */
    if ((headers = curl_slist_append(req->headers, "Expect:")) == NULL) {
        r = CURLE_OUT_OF_MEMORY;
        goto fail;
    }
    req->headers = headers;
    SETOPT(CURLOPT_HTTPHEADER, req->headers);

    if (req->secret_body != NULL) {
        body = kd_secret_get_data(req->secret_body);
        body_len = kd_secret_get_length(req->secret_body);
    } else if (req->body != NULL) {
        body = g_bytes_get_data(req->body, &body_len);
    }
    if (has_body || strcmp(method, "POST") == 0 || strcmp(method, "PUT") == 0 ||
        strcmp(method, "PATCH") == 0) {
        /* Always a Content-Length, even 0: Graph answers 411 to a bodiless POST without one.
         * POSTFIELDS does not copy: the request (and its secret) outlives the transfer. */
        SETOPT(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len);
        SETOPT(CURLOPT_POSTFIELDS, body != NULL ? body : "");
        if (strcmp(method, "POST") != 0)
            SETOPT(CURLOPT_CUSTOMREQUEST, method);
    } else if (strcmp(method, "GET") == 0) {
        SETOPT(CURLOPT_HTTPGET, 1L);
    } else if (strcmp(method, "HEAD") == 0) {
        SETOPT(CURLOPT_NOBODY, 1L);
    } else {
        SETOPT(CURLOPT_CUSTOMREQUEST, method);
    }
#undef SETOPT
fail:
    return r;
}

/* The task's context is the engine's, whatever the caller's thread-default context is. */
static GTask *
task_new(KdHttp *http, GCancellable *cancellable, GAsyncReadyCallback callback, gpointer user_data)
{
    GMainContext *current = g_main_context_ref_thread_default();
    gboolean push = current != http->context;
    GTask *task;

    if (push)
        g_main_context_push_thread_default(http->context);
    task = g_task_new(NULL, cancellable, callback, user_data);
    if (push)
        g_main_context_pop_thread_default(http->context);
    g_main_context_unref(current);
    g_task_set_source_tag(task, kd_http_send_async);
    return task;
}

void
kd_http_send_async(KdHttp *http, KdHttpRequest *request, GCancellable *cancellable,
                   GAsyncReadyCallback callback, gpointer user_data)
{
    KdHttpTransfer *t = NULL;
    GTask *task;
    CURLcode code = CURLE_OK;
    CURLMcode mcode = CURLM_OK;

    g_return_if_fail(http != NULL);
    g_return_if_fail(request != NULL);

    task = task_new(http, cancellable, callback, user_data);
    if (g_task_return_error_if_cancelled(task)) {
        kd_http_request_free(&request);
        g_object_unref(task);
        return;
    }

    t = g_new0(KdHttpTransfer, 1);
    t->http = http;
    t->link.data = t;
    t->request = request;
    t->task = task;
    t->headers = header_table_new();
    t->body_capacity = 16384;
    t->body = g_byte_array_sized_new((guint)t->body_capacity);
    t->log_url = url_without_query(request->url);
    t->proxy_label = proxy_for_url(http, request->url);
    if ((t->easy = curl_easy_init()) == NULL) {
        code = CURLE_OUT_OF_MEMORY;
        goto fail;
    }
    if ((code = transfer_setup(t)) != CURLE_OK)
        goto fail;
    /* curl starts it from its timer (set to 0 now), on the engine's next dispatch. */
    if ((mcode = curl_multi_add_handle(http->multi, t->easy)) != CURLM_OK)
        goto fail;
    g_queue_push_tail_link(&http->transfers, &t->link);
    if (cancellable != NULL) {
        t->cancel_source = g_cancellable_source_new(cancellable);
        g_source_set_callback(t->cancel_source, G_SOURCE_FUNC(on_cancelled), t, NULL);
        g_source_set_static_name(t->cancel_source, "kd-http cancel");
        g_source_attach(t->cancel_source, http->context);
    }
    return;

fail:
    g_task_return_new_error(
        task, G_IO_ERROR, G_IO_ERROR_FAILED, "%s %s: cannot set up: %s", request->method,
        t->log_url, mcode != CURLM_OK ? curl_multi_strerror(mcode) : curl_easy_strerror(code));
    if (t->easy != NULL)
        curl_easy_cleanup(t->easy);
    transfer_free(t);
}

KdHttpResponse *
kd_http_send_finish(KdHttp *http, GAsyncResult *result, GError **error)
{
    /* @http is not looked at: it may be gone already (freed engines complete their requests
     * with CANCELLED afterwards). */
    g_return_val_if_fail(g_task_is_valid(result, NULL), NULL);
    g_return_val_if_fail(g_task_get_source_tag(G_TASK(result)) == kd_http_send_async, NULL);
    return g_task_propagate_pointer(G_TASK(result), error);
}
