/* kd-key-credential: Graph's creation options → fido_cred_t, and fido_cred_t → attestationObject.
 */
#include "hw/kd-key-credential.h"

#include <cbor.h>
#include <glib/gi18n.h>
#include <string.h>

#include "hw/kd-key-error.h"

KdKeyCredentialRequest *
kd_key_credential_request_new(void)
{
    return g_new0(KdKeyCredentialRequest, 1);
}

KdKeyCredentialRequest *
kd_key_credential_request_copy(const KdKeyCredentialRequest *request)
{
    KdKeyCredentialRequest *copy;

    g_return_val_if_fail(request != NULL, NULL);
    copy = g_memdup2(request, sizeof(*request));
    copy->rp_id = g_strdup(request->rp_id);
    copy->rp_name = g_strdup(request->rp_name);
    copy->user_id = request->user_id != NULL ? g_bytes_ref(request->user_id) : NULL;
    copy->user_name = g_strdup(request->user_name);
    copy->user_display_name = g_strdup(request->user_display_name);
    copy->client_data_json =
        request->client_data_json != NULL ? g_bytes_ref(request->client_data_json) : NULL;
    copy->exclude_ids = g_ptr_array_new_with_free_func((GDestroyNotify)g_bytes_unref);
    if (request->exclude_ids != NULL)
        for (guint i = 0; i < request->exclude_ids->len; i++)
            g_ptr_array_add(copy->exclude_ids, g_bytes_ref(request->exclude_ids->pdata[i]));
    return copy;
}

void
kd_key_credential_request_free(KdKeyCredentialRequest *request)
{
    if (request == NULL)
        return;
    g_free(request->rp_id);
    g_free(request->rp_name);
    g_clear_pointer(&request->user_id, g_bytes_unref);
    g_free(request->user_name);
    g_free(request->user_display_name);
    g_clear_pointer(&request->client_data_json, g_bytes_unref);
    g_clear_pointer(&request->exclude_ids, g_ptr_array_unref);
    g_free(request);
}

void
kd_key_credential_result_free(KdKeyCredentialResult *result)
{
    if (result == NULL)
        return;
    g_clear_pointer(&result->credential_id, g_bytes_unref);
    g_clear_pointer(&result->attestation_object, g_bytes_unref);
    g_clear_pointer(&result->client_data_json, g_bytes_unref);
    g_free(result->aaguid_string);
    g_free(result->fmt);
    g_free(result);
}

static gboolean
fail(GError **error, KdKeyErrorCode code, int r, const char *what)
{
    KdKeyErrorInfo info = {r, -1, 0};

    g_debug("kd-key-credential: %s: %s", what, fido_strerr(r));
    g_propagate_error(error, kd_key_error_new(code, &info, NULL));
    return FALSE;
}

gboolean
kd_key_credential_prepare(fido_cred_t *cred, fido_dev_t *dev, const KdKeyCredentialRequest *request,
                          const char *const *extensions, GError **error)
{
    const guint8 *data;
    gsize len = 0;
    int r;

    g_return_val_if_fail(request != NULL && request->rp_id != NULL, FALSE);
    g_return_val_if_fail(request->user_id != NULL && request->client_data_json != NULL, FALSE);

    if ((r = fido_cred_set_type(cred, COSE_ES256)) != FIDO_OK)
        return fail(error, KD_KEY_ERROR_FAILED, r, "fido_cred_set_type");
    if ((r = fido_cred_set_rp(cred, request->rp_id, request->rp_name)) != FIDO_OK)
        return fail(error, KD_KEY_ERROR_FAILED, r, "fido_cred_set_rp");
    data = g_bytes_get_data(request->user_id, &len);
    if ((r = fido_cred_set_user(cred, data, len, request->user_name, request->user_display_name,
                                NULL)) != FIDO_OK)
        return fail(error, KD_KEY_ERROR_FAILED, r, "fido_cred_set_user");
    data = g_bytes_get_data(request->client_data_json, &len);
    if ((r = fido_cred_set_clientdata(cred, data, len)) != FIDO_OK)
        return fail(error, KD_KEY_ERROR_FAILED, r, "fido_cred_set_clientdata");
    if ((r = fido_cred_set_rk(cred, request->resident_key ? FIDO_OPT_TRUE : FIDO_OPT_OMIT)) !=
        FIDO_OK)
        return fail(error, KD_KEY_ERROR_FAILED, r, "fido_cred_set_rk");
    if (request->exclude_ids != NULL)
        for (guint i = 0; i < request->exclude_ids->len; i++) {
            data = g_bytes_get_data(request->exclude_ids->pdata[i], &len);
            if (len == 0)
                continue;
            if ((r = fido_cred_exclude(cred, data, len)) != FIDO_OK)
                return fail(error, KD_KEY_ERROR_FAILED, r, "fido_cred_exclude");
        }
    /* CTAP says unknown extensions are ignored, but some keys refuse them (SCENARIOS.md §5):
     * ask for hmac-secret only from a key that lists it; Entra does not insist on it. */
    if (request->hmac_secret && extensions != NULL &&
        g_strv_contains((const char *const *)extensions, "hmac-secret")) {
        if ((r = fido_cred_set_extensions(cred, FIDO_EXT_HMAC_SECRET)) != FIDO_OK)
            return fail(error, KD_KEY_ERROR_FAILED, r, "fido_cred_set_extensions");
    }
    if (request->cred_protect > 0) {
        if (request->cred_protect > FIDO_CRED_PROT_UV_REQUIRED) {
            g_propagate_error(error, kd_key_error_new(KD_KEY_ERROR_UNSUPPORTED, NULL, NULL));
            return FALSE;
        }
        if (fido_dev_supports_cred_prot(dev)) {
            /* fido_cred_set_prot() adds FIDO_EXT_CRED_PROTECT to the extensions itself. */
            if ((r = fido_cred_set_prot(cred, request->cred_protect)) != FIDO_OK)
                return fail(error, KD_KEY_ERROR_FAILED, r, "fido_cred_set_prot");
        } else if (request->enforce_cred_protect && request->cred_protect >= 2) {
            g_propagate_error(error,
                              kd_key_error_new(KD_KEY_ERROR_UNSUPPORTED, NULL,
                                               _("This key model cannot protect a sign-in the way "
                                                 "your organisation requires (credential "
                                                 "protection). Please use a different security "
                                                 "key.")));
            return FALSE;
        }
    }
    return TRUE;
}

GBytes *
kd_key_credential_attestation_object(const char *fmt, const guint8 *attstmt, gsize attstmt_len,
                                     const guint8 *authdata_raw, gsize authdata_len)
{
    cbor_item_t *map = NULL, *stmt = NULL, *tmp = NULL;
    struct cbor_load_result res;
    unsigned char *buf = NULL;
    size_t buf_len = 0, n;
    GBytes *out = NULL;

    if (fmt == NULL || attstmt == NULL || attstmt_len == 0 || authdata_raw == NULL ||
        authdata_len == 0)
        return NULL;
    stmt = cbor_load(attstmt, attstmt_len, &res);
    if (stmt == NULL || res.error.code != CBOR_ERR_NONE || res.read != attstmt_len ||
        !cbor_isa_map(stmt))
        goto fail;
    if ((map = cbor_new_definite_map(3)) == NULL)
        goto fail;
    /* Keys in CTAP canonical order (shorter first): "fmt", "attStmt", "authData". */
    if ((tmp = cbor_build_string(fmt)) == NULL ||
        !cbor_map_add(map, (struct cbor_pair){.key = cbor_move(cbor_build_string("fmt")),
                                              .value = cbor_move(tmp)}))
        goto fail;
    tmp = NULL;
    if (!cbor_map_add(
            map, (struct cbor_pair){.key = cbor_move(cbor_build_string("attStmt")), .value = stmt}))
        goto fail;
    if ((tmp = cbor_build_bytestring(authdata_raw, authdata_len)) == NULL ||
        !cbor_map_add(map, (struct cbor_pair){.key = cbor_move(cbor_build_string("authData")),
                                              .value = cbor_move(tmp)}))
        goto fail;
    tmp = NULL;
    if ((n = cbor_serialize_alloc(map, &buf, &buf_len)) == 0)
        goto fail;
    out = g_bytes_new(buf, n);
fail:
    free(buf);
    if (tmp != NULL)
        cbor_decref(&tmp);
    if (stmt != NULL)
        cbor_decref(&stmt);
    if (map != NULL)
        cbor_decref(&map);
    return out;
}

/* The extension outputs the key put in authData: credProtect level and hmac-secret. */
static void
read_extensions(const guint8 *ad, gsize len, KdKeyCredentialResult *result)
{
    struct cbor_load_result res;
    cbor_item_t *item = NULL;
    gsize off = 37, id_len;

    if (len < 37 || (ad[32] & 0x80) == 0) /* ED flag: extensions present */
        return;
    if (ad[32] & 0x40) { /* AT flag: skip aaguid, credential id and the COSE key */
        if (len < off + 18)
            return;
        id_len = (gsize)ad[off + 16] << 8 | ad[off + 17];
        off += 18 + id_len;
        if (off >= len)
            return;
        item = cbor_load(ad + off, len - off, &res);
        if (item == NULL)
            return;
        cbor_decref(&item);
        off += res.read;
    }
    if (off >= len || (item = cbor_load(ad + off, len - off, &res)) == NULL)
        return;
    if (cbor_isa_map(item)) {
        struct cbor_pair *pairs = cbor_map_handle(item);

        for (size_t i = 0; i < cbor_map_size(item); i++) {
            const cbor_item_t *k = pairs[i].key, *v = pairs[i].value;
            gsize klen;

            if (!cbor_isa_string(k) || !cbor_string_is_definite(k))
                continue;
            klen = cbor_string_length(k);
            if (klen == 11 && memcmp(cbor_string_handle(k), "credProtect", 11) == 0 &&
                cbor_isa_uint(v))
                result->cred_protect = (int)cbor_get_int(v);
            else if (klen == 11 && memcmp(cbor_string_handle(k), "hmac-secret", 11) == 0 &&
                     cbor_is_bool(v))
                result->hmac_secret = cbor_get_bool(v);
        }
    }
    cbor_decref(&item);
}

KdKeyCredentialResult *
kd_key_credential_result_new(const fido_cred_t *cred, GBytes *client_data_json, GError **error)
{
    g_autoptr(KdKeyCredentialResult) result = g_new0(KdKeyCredentialResult, 1);
    const char *fmt = fido_cred_fmt(cred);
    int r;

    if (fmt == NULL || fido_cred_id_len(cred) == 0 || fido_cred_aaguid_len(cred) != 16) {
        fail(error, KD_KEY_ERROR_PROTOCOL, FIDO_ERR_INVALID_PARAM, "incomplete credential");
        return NULL;
    }
    result->self_attested = fido_cred_x5c_len(cred) == 0;
    /* libfido2 checked the authData against the request; the signature is checked here, so a
     * key that signs wrongly is caught before Graph refuses the registration. */
    if (strcmp(fmt, "none") != 0) {
        r = result->self_attested ? fido_cred_verify_self(cred) : fido_cred_verify(cred);
        if (r != FIDO_OK) {
            fail(error, KD_KEY_ERROR_PROTOCOL, r, "attestation signature");
            return NULL;
        }
    }
    result->attestation_object = kd_key_credential_attestation_object(
        fmt, fido_cred_attstmt_ptr(cred), fido_cred_attstmt_len(cred),
        fido_cred_authdata_raw_ptr(cred), fido_cred_authdata_raw_len(cred));
    if (result->attestation_object == NULL) {
        fail(error, KD_KEY_ERROR_PROTOCOL, FIDO_ERR_INVALID_CBOR, "attestationObject");
        return NULL;
    }
    result->fmt = g_strdup(fmt);
    result->credential_id = g_bytes_new(fido_cred_id_ptr(cred), fido_cred_id_len(cred));
    result->client_data_json = g_bytes_ref(client_data_json);
    memcpy(result->aaguid, fido_cred_aaguid_ptr(cred), 16);
    result->aaguid_string = kd_aaguid_to_string(result->aaguid);
    read_extensions(fido_cred_authdata_raw_ptr(cred), fido_cred_authdata_raw_len(cred), result);
    return g_steal_pointer(&result);
}
