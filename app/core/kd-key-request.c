/* kd-key-request: KdGraphFido2Options → KdKeyCredentialRequest, KdGraphMethodPolicy → KdKeyPolicy.
 */
#include "core/kd-key-request.h"

#include <fido.h>

static gboolean
offers_es256(const KdGraphFido2Options *options)
{
    /* No list at all: WebAuthn's default is ES256 and RS256. */
    if (options->algorithms == NULL || options->algorithms->len == 0)
        return TRUE;
    for (guint i = 0; i < options->algorithms->len; i++)
        if (g_array_index(options->algorithms, gint, i) == COSE_ES256)
            return TRUE;
    return FALSE;
}

KdKeyCredentialRequest *
kd_key_request_from_fido2_options(const KdGraphFido2Options *options)
{
    KdKeyCredentialRequest *request;

    g_return_val_if_fail(options != NULL, NULL);
    if (options->rp_id == NULL || *options->rp_id == '\0' || options->user_id == NULL ||
        g_bytes_get_size(options->user_id) == 0 || options->challenge == NULL ||
        !offers_es256(options))
        return NULL;
    request = kd_key_credential_request_new();
    request->rp_id = g_strdup(options->rp_id);
    request->rp_name = g_strdup(options->rp_name != NULL ? options->rp_name : options->rp_id);
    request->user_id = g_bytes_ref(options->user_id);
    request->user_name = g_strdup(options->user_name);
    request->user_display_name = g_strdup(options->user_display_name);
    request->client_data_json = kd_graph_fido2_client_data(options);
    request->exclude_ids = g_ptr_array_new_with_free_func((GDestroyNotify)g_bytes_unref);
    if (options->exclude_ids != NULL)
        for (guint i = 0; i < options->exclude_ids->len; i++)
            g_ptr_array_add(request->exclude_ids, g_bytes_ref(options->exclude_ids->pdata[i]));
    request->resident_key = options->require_resident_key;
    /* "required" and "preferred" both get the PIN: Entra sends "required", and a kiosk that has
     * the PIN anyway should not make a weaker credential. */
    request->uv_required = g_strcmp0(options->user_verification, "discouraged") != 0;
    request->hmac_secret = options->hmac_create_secret;
    request->cred_protect = CLAMP(options->cred_protect, 0, 3);
    request->enforce_cred_protect = options->enforce_cred_protect;
    request->timeout_ms = options->timeout_ms;
    return request;
}

KdKeyPolicy *
kd_key_request_policy_from_graph(const KdGraphMethodPolicy *policy)
{
    KdKeyPolicy *out;

    g_return_val_if_fail(policy != NULL, NULL);
    if (policy->kind != KD_GRAPH_POLICY_FIDO2)
        return NULL;
    out = g_new0(KdKeyPolicy, 1);
    out->enabled = policy->enabled;
    out->self_service_allowed = policy->is_self_service_registration_allowed;
    out->attestation_enforced = policy->is_attestation_enforced;
    out->restrictions_enforced = policy->key_restrictions_enforced;
    if (g_strcmp0(policy->key_restrictions_type, "allow") == 0)
        out->restriction = KD_KEY_RESTRICTION_ALLOW;
    else if (g_strcmp0(policy->key_restrictions_type, "block") == 0)
        out->restriction = KD_KEY_RESTRICTION_BLOCK;
    else
        out->restriction = KD_KEY_RESTRICTION_NONE;
    out->aaguids = g_strdupv(policy->key_restrictions_aaguids);
    return out;
}
