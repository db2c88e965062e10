/* softkey-model.c: softkey_new_from_model(): a soft key that presents a recorded key model.
 *
 * Input: one record of ../shared/reference/keys/getinfo/{mds,device}/NAME.json (fields in
 * getinfo/INDEX.json "_meta"). The key answers getInfo with what the record declares and
 * nothing else ("unknown members absent"), and behaves accordingly: a CTAP 2.0 record without
 * credProtect ignores that extension, pinUvAuthProtocols limits the PIN protocols, options
 * switch features (rk, pinUvAuthToken → 0x09, authnrCfg, setMinPINLength, alwaysUv,
 * makeCredUvNotRqd, uv = built-in UV simulated by a touch).
 *
 * Some records are partial (captures cut off by a tool, CTAP2-test-tool summaries). The rules
 * for them, in order:
 *  - versions: only the four CTAP tokens are kept (annotated strings are dropped); absent →
 *    FIDO_2_0 (+ FIDO_2_1 when "ctap" starts with 2.1). No FIDO_2_* version → u2f-only: CBOR
 *    requests get CTAPHID_ERROR invalid command, U2F runs over CTAPHID_MSG.
 *  - extensions: a truncated name ("credProte…") is completed when its prefix names exactly
 *    one known extension; "…(missing)" is dropped. A record whose "credProtect" field is true
 *    gets the extension even if the list lost it.
 *  - options: boolean values as recorded; a non-boolean value (Trezor's "rk" note) and the
 *    "…" marker are dropped; "option_names_present" (value not recorded) → plat and clientPin
 *    false, the others true.
 *  - clientPinState "set…" → the key starts with the PIN SOFTKEY_MODEL_PIN; "unsupported…" →
 *    no clientPin option; otherwise a record without clientPin gets clientPin false.
 *  - pinUvAuthProtocols absent while a PIN is supported → [1] (the CTAP 2.0 protocol).
 *  - aaguid null → 16 zero bytes (as U2F and some CTAP 2.0 keys report).
 *  - CTAPHID capabilities from "ctaphid"/"usb" when recorded; else CBOR + WINK, and NMSG unless
 *    U2F_V2 is listed.
 */
#include <string.h>

#include <json-glib/json-glib.h>

#include "softkey-private.h"

static const char *const sk_versions[] = {"U2F_V2", "FIDO_2_0", "FIDO_2_1_PRE", "FIDO_2_1"};
static const char *const sk_known_exts[] = {"credProtect",  "hmac-secret",  "credBlob",
                                            "largeBlobKey", "minPinLength", "uvm",
                                            "txAuthSimple"};

static JsonNode *
sk_member(JsonObject *o, const char *name)
{
    JsonNode *n;

    if (o == NULL || !json_object_has_member(o, name))
        return NULL;
    n = json_object_get_member(o, name);
    return JSON_NODE_HOLDS_NULL(n) ? NULL : n;
}

static int64_t
sk_member_int(JsonObject *o, const char *name)
{
    JsonNode *n = sk_member(o, name);

    if (n == NULL || !JSON_NODE_HOLDS_VALUE(n) || json_node_get_value_type(n) != G_TYPE_INT64)
        return -1;
    return json_node_get_int(n);
}

static const char *
sk_member_str(JsonObject *o, const char *name)
{
    JsonNode *n = sk_member(o, name);

    if (n == NULL || !JSON_NODE_HOLDS_VALUE(n) || json_node_get_value_type(n) != G_TYPE_STRING)
        return NULL;
    return json_node_get_string(n);
}

static JsonArray *
sk_member_array(JsonObject *o, const char *name)
{
    JsonNode *n = sk_member(o, name);

    return n != NULL && JSON_NODE_HOLDS_ARRAY(n) ? json_node_get_array(n) : NULL;
}

static bool
sk_parse_aaguid(const char *s, uint8_t out[16])
{
    size_t n = 0;

    for (; *s != '\0' && n < 32; s++) {
        int v = g_ascii_xdigit_value(*s);
        if (*s == '-')
            continue;
        if (v < 0)
            return false;
        if (n % 2 == 0)
            out[n / 2] = (uint8_t)(v << 4);
        else
            out[n / 2] |= (uint8_t)v;
        n++;
    }
    return n == 32 && *s == '\0';
}

static void
sk_add_ext(SkModel *m, const char *name)
{
    for (guint i = 0; i < m->extensions->len; i++) {
        if (strcmp(g_ptr_array_index(m->extensions, i), name) == 0)
            return;
    }
    g_ptr_array_add(m->extensions, g_strdup(name));
}

static void
sk_set_option(SkModel *m, const char *name, bool value)
{
    SkOption o;

    for (guint i = 0; i < m->options->len; i++) {
        SkOption *p = &g_array_index(m->options, SkOption, i);
        if (strcmp(p->name, name) == 0) {
            p->value = value;
            return;
        }
    }
    o.name = g_strdup(name);
    o.value = value;
    g_array_append_val(m->options, o);
}

static void
sk_remove_option(SkModel *m, const char *name)
{
    for (guint i = 0; i < m->options->len; i++) {
        if (strcmp(g_array_index(m->options, SkOption, i).name, name) == 0) {
            g_array_remove_index(m->options, i);
            return;
        }
    }
}

static bool
sk_model_has_option(SkModel *m, const char *name, bool *value)
{
    for (guint i = 0; i < m->options->len; i++) {
        SkOption *p = &g_array_index(m->options, SkOption, i);
        if (strcmp(p->name, name) == 0) {
            if (value != NULL)
                *value = p->value;
            return true;
        }
    }
    return false;
}

static void
sk_option_clear(gpointer p)
{
    g_free(((SkOption *)p)->name);
}

/* "0x05 (wink, cbor, msg)" or {"cbor": true, "msg": true, "wink": true}. */
static int
sk_model_caps(JsonObject *root)
{
    JsonObject *hid = NULL, *usb = NULL;
    JsonNode *n;
    const char *s = NULL;

    if ((n = sk_member(root, "ctaphid")) != NULL && JSON_NODE_HOLDS_OBJECT(n))
        hid = json_node_get_object(n);
    if ((n = sk_member(root, "usb")) != NULL && JSON_NODE_HOLDS_OBJECT(n))
        usb = json_node_get_object(n);
    if (hid != NULL && (s = sk_member_str(hid, "caps")) == NULL && sk_member(hid, "cbor")) {
        int caps = 0;
        if (json_object_get_boolean_member_with_default(hid, "wink", FALSE))
            caps |= SK_CAP_WINK;
        if (json_object_get_boolean_member_with_default(hid, "cbor", FALSE))
            caps |= SK_CAP_CBOR;
        if (!json_object_get_boolean_member_with_default(hid, "msg", TRUE))
            caps |= SK_CAP_NMSG;
        return caps;
    }
    if (s == NULL && usb != NULL)
        s = sk_member_str(usb, "ctaphid_caps");
    if (s != NULL && g_str_has_prefix(s, "0x"))
        return (int)g_ascii_strtoull(s + 2, NULL, 16) & 0xff;
    return -1;
}

static bool
sk_model_load(JsonObject *root, SkModel *m, bool *pin_set, GError **error)
{
    const char *ctap = sk_member_str(root, "ctap");
    const char *state = sk_member_str(root, "clientPinState");
    const char *aaguid = sk_member_str(root, "aaguid");
    JsonArray *a;
    JsonNode *n;
    bool fido2 = false, u2f = false, pin_supported, v;
    int64_t i64;
    int caps;

    if (sk_member_str(root, "model") == NULL || ctap == NULL || state == NULL ||
        !json_object_has_member(root, "extensions")) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                    "not a getinfo record (model, ctap, clientPinState, extensions)");
        return false;
    }
    memset(m, 0, sizeof(*m));
    m->versions = g_ptr_array_new_with_free_func(g_free);
    m->extensions = g_ptr_array_new_with_free_func(g_free);
    m->options = g_array_new(FALSE, FALSE, sizeof(SkOption));
    g_array_set_clear_func(m->options, sk_option_clear);

    if ((a = sk_member_array(root, "versions")) != NULL) {
        for (guint i = 0; i < json_array_get_length(a); i++) {
            const char *s = json_array_get_string_element(a, i);
            for (size_t k = 0; s != NULL && k < G_N_ELEMENTS(sk_versions); k++) {
                if (strcmp(s, sk_versions[k]) == 0)
                    g_ptr_array_add(m->versions, g_strdup(s));
            }
            if (s != NULL && g_str_has_prefix(s, "U2F_V2"))
                u2f = true;
        }
    } else {
        g_ptr_array_add(m->versions, g_strdup("FIDO_2_0"));
        if (g_str_has_prefix(ctap, "2.1"))
            g_ptr_array_add(m->versions, g_strdup("FIDO_2_1"));
    }
    for (guint i = 0; i < m->versions->len; i++) {
        fido2 |= g_str_has_prefix(g_ptr_array_index(m->versions, i), "FIDO_2");
        u2f |= strcmp(g_ptr_array_index(m->versions, i), "U2F_V2") == 0;
    }
    m->u2f_only = !fido2;
    if (m->u2f_only && m->versions->len == 0)
        g_ptr_array_add(m->versions, g_strdup("U2F_V2"));

    if ((a = sk_member_array(root, "extensions")) != NULL) {
        for (guint i = 0; i < json_array_get_length(a); i++) {
            const char *s = json_array_get_string_element(a, i), *cut;
            const char *match = NULL;
            int matches = 0;

            if (s == NULL)
                continue;
            if ((cut = strstr(s, "\xe2\x80\xa6")) == NULL) { /* "…" */
                sk_add_ext(m, s);
                continue;
            }
            for (size_t k = 0; cut > s && k < G_N_ELEMENTS(sk_known_exts); k++) {
                if (strncmp(sk_known_exts[k], s, (size_t)(cut - s)) == 0) {
                    match = sk_known_exts[k];
                    matches++;
                }
            }
            if (matches == 1)
                sk_add_ext(m, match);
        }
    }
    if ((n = sk_member(root, "credProtect")) != NULL && JSON_NODE_HOLDS_VALUE(n) &&
        json_node_get_boolean(n))
        sk_add_ext(m, "credProtect");

    if (aaguid != NULL && !sk_parse_aaguid(aaguid, m->aaguid)) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA, "bad aaguid %s", aaguid);
        sk_model_clear(m);
        return false;
    }

    if ((n = sk_member(root, "options")) != NULL && JSON_NODE_HOLDS_OBJECT(n)) {
        JsonObject *o = json_node_get_object(n);
        GList *names = json_object_get_members(o);
        for (GList *l = names; l != NULL; l = l->next) {
            JsonNode *val = json_object_get_member(o, l->data);
            if (JSON_NODE_HOLDS_VALUE(val) && json_node_get_value_type(val) == G_TYPE_BOOLEAN)
                sk_set_option(m, l->data, json_node_get_boolean(val));
        }
        g_list_free(names);
    } else if ((a = sk_member_array(root, "option_names_present")) != NULL) {
        for (guint i = 0; i < json_array_get_length(a); i++) {
            const char *s = json_array_get_string_element(a, i);
            if (s != NULL)
                sk_set_option(m, s, strcmp(s, "plat") != 0 && strcmp(s, "clientPin") != 0);
        }
    }
    *pin_set = g_str_has_prefix(state, "set");
    if (g_str_has_prefix(state, "unsupported")) {
        sk_remove_option(m, "clientPin");
    } else if (!m->u2f_only) {
        if (!sk_model_has_option(m, "clientPin", &v))
            sk_set_option(m, "clientPin", false);
        else if (v && !g_str_has_prefix(state, "not-set"))
            *pin_set = true;
    }
    if (m->u2f_only)
        g_array_set_size(m->options, 0);
    pin_supported = sk_model_has_option(m, "clientPin", NULL);
    m->factory_always_uv = sk_model_has_option(m, "alwaysUv", &v) && v;

    if ((a = sk_member_array(root, "pinUvAuthProtocols")) != NULL) {
        m->protocols = g_array_new(FALSE, FALSE, sizeof(guint8));
        for (guint i = 0; i < json_array_get_length(a); i++) {
            guint8 p = (guint8)json_array_get_int_element(a, i);
            g_array_append_val(m->protocols, p);
        }
    } else if (pin_supported) {
        guint8 p = 1;
        m->protocols = g_array_new(FALSE, FALSE, sizeof(guint8));
        g_array_append_val(m->protocols, p);
    }
    m->max_msg_size = sk_member_int(root, "maxMsgSize");
    m->max_cred_count_in_list = sk_member_int(root, "maxCredentialCountInList");
    m->max_cred_id_len = sk_member_int(root, "maxCredentialIdLength");
    m->max_large_blob = sk_member_int(root, "maxSerializedLargeBlobArray");
    m->min_pin_length = sk_member_int(root, "minPINLength");
    m->fw_version = sk_member_int(root, "firmwareVersion");
    m->max_cred_blob_len = sk_member_int(root, "maxCredBlobLength");
    m->max_rpids_min_pin = sk_member_int(root, "maxRPIDsForSetMinPINLength");
    m->advertise_force_pin_change = sk_member(root, "forcePINChange") != NULL;
    if ((i64 = sk_member_int(root, "remainingDiscoverableCredentials")) >= 0) {
        m->rk_capacity = i64;
        m->advertise_rk_remaining = true;
    } else {
        m->rk_capacity = 25;
    }
    if ((a = sk_member_array(root, "transports")) != NULL) {
        m->transports = g_ptr_array_new_with_free_func(g_free);
        for (guint i = 0; i < json_array_get_length(a); i++) {
            const char *s = json_array_get_string_element(a, i);
            if (s != NULL)
                g_ptr_array_add(m->transports, g_strdup(s));
        }
    }
    if ((a = sk_member_array(root, "algorithms")) != NULL) {
        static const struct {
            const char *name;
            gint cose;
        } algs[] = {{"es256", -7}, {"eddsa", -8}, {"es384", -35}, {"rs256", -257}};
        m->algorithms = g_array_new(FALSE, FALSE, sizeof(gint));
        for (guint i = 0; i < json_array_get_length(a); i++) {
            const char *s = json_array_get_string_element(a, i);
            for (size_t k = 0; s != NULL && k < G_N_ELEMENTS(algs); k++) {
                if (strcmp(s, algs[k].name) == 0)
                    g_array_append_val(m->algorithms, algs[k].cose);
            }
        }
    }
    if ((caps = sk_model_caps(root)) >= 0)
        m->caps = (uint8_t)caps;
    else
        m->caps =
            (uint8_t)(SK_CAP_WINK | (m->u2f_only ? 0 : SK_CAP_CBOR) | (u2f ? 0 : SK_CAP_NMSG));
    if (m->fw_version > 0xffff) {
        m->dev_version[0] = (uint8_t)(m->fw_version >> 16);
        m->dev_version[1] = (uint8_t)(m->fw_version >> 8);
        m->dev_version[2] = (uint8_t)m->fw_version;
    } else {
        m->dev_version[0] = 1;
    }
    return true;
}

SoftKey *
softkey_new_from_model(const char *json_path, GError **error)
{
    JsonParser *parser = json_parser_new();
    JsonNode *root;
    SoftKey *key = NULL;
    SkModel m;
    bool pin_set = false;

    if (!json_parser_load_from_file(parser, json_path, error))
        goto out;
    root = json_parser_get_root(parser);
    if (root == NULL || !JSON_NODE_HOLDS_OBJECT(root)) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA, "%s: not a JSON object", json_path);
        goto out;
    }
    if (!sk_model_load(json_node_get_object(root), &m, &pin_set, error)) {
        g_prefix_error(error, "%s: ", json_path);
        goto out;
    }
    key = sk_new_with_model(&m);
    if (pin_set) {
        key->model_pin = g_strdup(SOFTKEY_MODEL_PIN);
        softkey_set_pin(key, SOFTKEY_MODEL_PIN);
    }
out:
    g_object_unref(parser);
    return key;
}
