/* kd-config: the kiosk's config file (GKeyFile), validated with messages a person can act on. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

#define KD_CONFIG_DEFAULT_PATH "/etc/keydesk/keydesk.conf"

/* Defaults for keys the file leaves out (kiosk/keydesk.conf.example documents each). */
#define KD_CONFIG_DEFAULT_IDLE_TIMEOUT   90
#define KD_CONFIG_DEFAULT_IDLE_COUNTDOWN 10
#define KD_CONFIG_DEFAULT_TAP_LIFETIME   60
#define KD_CONFIG_DEFAULT_GRAPH_URL      "https://graph.microsoft.com"
#define KD_CONFIG_DEFAULT_LOGIN_URL      "https://login.microsoftonline.com"
#define KD_CONFIG_DEFAULT_STATE_DIR      "/var/lib/keydesk"

/* What kd_config_new_demo() uses, so the Graph emulator can recognise the demo desk. */
#define KD_CONFIG_DEMO_SOURCE    "built-in demo configuration"
#define KD_CONFIG_DEMO_TENANT_ID "contoso-demo.onmicrosoft.com"
#define KD_CONFIG_DEMO_CLIENT_ID "6b657964-6573-4b00-8000-64656d6f6465"

typedef enum {
    KD_IDENTITY_OPERATOR = 0, /* staff sign in (device code), pick the visitor */
    KD_IDENTITY_SELF = 1,     /* the visitor signs in on their own phone */
} KdIdentityMode;

/* Enrolment flows a desk may offer ([enrolment] flows). */
typedef enum {
    KD_FLOW_SECURITY_KEY = 1 << 0,
    KD_FLOW_AUTHENTICATOR = 1 << 1,
    KD_FLOW_LOST_DEVICE = 1 << 2,
} KdFlow;

#define KD_FLOW_ALL (KD_FLOW_SECURITY_KEY | KD_FLOW_AUTHENTICATOR | KD_FLOW_LOST_DEVICE)

/*
 * A loaded, fully validated configuration. Every field has a value (defaults filled in);
 * strings that are optional are NULL when not set. Paths are absolute (relative paths in
 * the file are resolved against the file's directory).
 */
typedef struct {
    char *source;  /* the file it came from, or "built-in demo configuration" */
    gboolean demo; /* TRUE for kd_config_new_demo() */

    /* [kiosk] */
    char *name;             /* name = Front desk (shown on every page), required outside demo */
    char *site;             /* site = Building 2, ground floor (optional) */
    guint idle_timeout_s;   /* idle-timeout = 90, 10..3600 seconds */
    guint idle_countdown_s; /* idle-countdown = 10, 5..60 seconds */
    gboolean touch_only;    /* touch-only = false: hide the pointer */

    /* [tenant] */
    char *tenant_id;          /* GUID or a domain name such as contoso.onmicrosoft.com */
    char *client_id;          /* GUID of the app registration */
    char *certificate_file;   /* PEM certificate for the client assertion */
    char *private_key_file;   /* PEM private key for it: a credential, must be 0600/0400 */
    char *client_secret_file; /* file holding a client secret: a credential, 0600/0400 */
    char *graph_url;          /* graph-host: "https://graph.microsoft.com" (no trailing slash) */
    char *login_url;          /* login-host: "https://login.microsoftonline.com" */
    char *ca_file;            /* ca-file: PEM bundle that replaces the system CAs */
    char *proxy;              /* proxy: http://, https://, socks5:// or socks5h:// URL */

    /* [enrolment] */
    KdIdentityMode identity_mode; /* identity-mode = operator | self */
    guint flows;                  /* flows = security-key;authenticator;lost-device (KdFlow) */
    guint tap_lifetime_min;       /* tap-lifetime = 60, 10..43200 minutes */

    /* [tracking] */
    char *group_id;            /* group-id: GUID of the group registered users join */
    char *extension_attribute; /* extension-attribute: extension_<appid-no-dashes>_<name> */
    char *state_dir;           /* state-dir = /var/lib/keydesk (the outbox database) */
} KdConfig;

/*
 * Load and validate @path. Every problem found is appended to @problems as a newly
 * allocated string (free with g_free) that names the file, the group, the key, the
 * offending value and what is allowed. Returns NULL when there was at least one problem;
 * otherwise the config (free with kd_config_free()).
 */
KdConfig *kd_config_load(const char *path, GPtrArray *problems);

/* The same, from text already in memory; @source names it in messages; relative paths are
 * resolved against @base_dir (a relative path in the text is a problem when @base_dir is NULL).
 * @len may be (gsize)-1 when @data is NUL-terminated. @problems may be NULL. */
KdConfig *kd_config_load_data(const char *data, gsize len, const char *source, const char *base_dir,
                              GPtrArray *problems);

/* The built-in demo configuration: no tenant, every flow, operator mode. Never fails. */
KdConfig *kd_config_new_demo(void);

/* Frees *cfgp and sets it to NULL. */
void kd_config_free(KdConfig **cfgp);

/* "operator" / "self"; NULL for a value outside the enum. */
const char *kd_identity_mode_to_string(KdIdentityMode mode);
/* The config-file name of one flow: "security-key", "authenticator", "lost-device";
 * NULL unless @flow is exactly one flow. */
const char *kd_flow_to_string(KdFlow flow);

G_END_DECLS
