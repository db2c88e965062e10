/* kd-key-policy: the FIDO2 policy pre-flight. */
#include "hw/kd-key-policy.h"

#include <glib/gi18n.h>
#include <string.h>

#include "hw/kd-aaguid-catalogue.h"

KdKeyAttestation
kd_key_attestation_guess(const guint8 aaguid[16])
{
    const KdAaguidEntry *e;

    if (aaguid == NULL || kd_aaguid_is_zero(aaguid))
        return KD_KEY_ATTESTATION_SELF;
    e = kd_aaguid_catalogue_lookup(aaguid);
    if (e != NULL && e->in_mds)
        return KD_KEY_ATTESTATION_CERTIFIED;
    return KD_KEY_ATTESTATION_UNKNOWN;
}

static gboolean
listed(const KdKeyPolicy *policy, const guint8 aaguid[16])
{
    guint8 other[16];

    if (policy->aaguids == NULL || aaguid == NULL)
        return FALSE;
    for (char **p = policy->aaguids; *p != NULL; p++)
        if (kd_aaguid_parse(*p, other) && memcmp(other, aaguid, 16) == 0)
            return TRUE;
    return FALSE;
}

/* "YubiKey 5 Series" or "this model". */
static char *
model_name(const guint8 aaguid[16])
{
    char *name = aaguid != NULL ? kd_aaguid_catalogue_describe(aaguid) : NULL;

    return name != NULL ? name : g_strdup(_("this model"));
}

static KdKeyPolicyVerdict
verdict(KdKeyPolicyVerdict v, const guint8 aaguid[16], char **sentence)
{
    g_autofree char *model = NULL;

    if (sentence == NULL)
        return v;
    model = model_name(aaguid);
    switch (v) {
    case KD_KEY_POLICY_ALLOWED:
        *sentence = g_strdup(_("This key can be registered."));
        break;
    case KD_KEY_POLICY_DISABLED:
        *sentence = g_strdup(_("Your organisation does not use security keys for sign-in yet. "
                               "Please ask a staff member."));
        break;
    case KD_KEY_POLICY_SELF_SERVICE_OFF:
        *sentence = g_strdup(_("Your organisation's settings do not let this kiosk register "
                               "security keys yet. Please ask a staff member."));
        break;
    case KD_KEY_POLICY_BLOCKED:
        *sentence = g_strdup_printf(_("Your organisation does not allow security keys of this "
                                      "model (%s). Please use a different key."),
                                    model);
        break;
    case KD_KEY_POLICY_NOT_ALLOWED:
        *sentence = g_strdup_printf(_("Your organisation only allows certain security key models, "
                                      "and this one (%s) is not among them. Please use a different "
                                      "key."),
                                    model);
        break;
    case KD_KEY_POLICY_ATTESTATION_REQUIRED:
        *sentence = g_strdup_printf(_("Your organisation only accepts security keys that can prove "
                                      "their make and model, and this key (%s) cannot. Please use "
                                      "a different key."),
                                    model);
        break;
    }
    return v;
}

KdKeyPolicyVerdict
kd_key_policy_check(const KdKeyPolicy *policy, const guint8 aaguid[16],
                    KdKeyAttestation attestation, char **sentence)
{
    if (policy == NULL)
        return verdict(KD_KEY_POLICY_ALLOWED, aaguid, sentence);
    if (!policy->enabled)
        return verdict(KD_KEY_POLICY_DISABLED, aaguid, sentence);
    if (!policy->self_service_allowed)
        return verdict(KD_KEY_POLICY_SELF_SERVICE_OFF, aaguid, sentence);
    if (policy->restrictions_enforced) {
        if (policy->restriction == KD_KEY_RESTRICTION_BLOCK && listed(policy, aaguid))
            return verdict(KD_KEY_POLICY_BLOCKED, aaguid, sentence);
        if (policy->restriction == KD_KEY_RESTRICTION_ALLOW && !listed(policy, aaguid))
            return verdict(KD_KEY_POLICY_NOT_ALLOWED, aaguid, sentence);
    }
    if (policy->attestation_enforced && attestation == KD_KEY_ATTESTATION_SELF)
        return verdict(KD_KEY_POLICY_ATTESTATION_REQUIRED, aaguid, sentence);
    return verdict(KD_KEY_POLICY_ALLOWED, aaguid, sentence);
}

KdKeyPolicyVerdict
kd_key_policy_check_attestation(const KdKeyPolicy *policy, const guint8 aaguid[16],
                                gboolean self_attested, char **sentence)
{
    if (policy != NULL && policy->attestation_enforced && self_attested)
        return verdict(KD_KEY_POLICY_ATTESTATION_REQUIRED, aaguid, sentence);
    return verdict(KD_KEY_POLICY_ALLOWED, aaguid, sentence);
}

const char *
kd_key_policy_verdict_name(KdKeyPolicyVerdict v)
{
    switch (v) {
    case KD_KEY_POLICY_ALLOWED:
        return "allowed";
    case KD_KEY_POLICY_DISABLED:
        return "disabled";
    case KD_KEY_POLICY_SELF_SERVICE_OFF:
        return "self-service-off";
    case KD_KEY_POLICY_BLOCKED:
        return "blocked";
    case KD_KEY_POLICY_NOT_ALLOWED:
        return "not-allowed";
    case KD_KEY_POLICY_ATTESTATION_REQUIRED:
        return "attestation-required";
    }
    return "unknown";
}

void
kd_key_policy_clear(KdKeyPolicy *policy)
{
    if (policy == NULL)
        return;
    g_clear_pointer(&policy->aaguids, g_strfreev);
}

void
kd_key_policy_free(KdKeyPolicy *policy)
{
    kd_key_policy_clear(policy);
    g_free(policy);
}
