/* kd-key-policy: the tenant's FIDO2 policy compared with a key BEFORE any challenge is spent, so
 * a visitor hears "this key model is not allowed here" instead of a late Graph 400. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef enum {
    KD_KEY_RESTRICTION_NONE,  /* no list (or a type keydesk does not know, see below) */
    KD_KEY_RESTRICTION_ALLOW, /* only the listed AAGUIDs may register */
    KD_KEY_RESTRICTION_BLOCK, /* the listed AAGUIDs may not register */
} KdKeyRestriction;

/* The FIDO2 authentication-method policy (graph-api.md §2.8) as plain data; core/ fills it in
 * from Graph's policy (core/kd-key-request.h). */
typedef struct {
    gboolean enabled;               /* state == "enabled" */
    gboolean self_service_allowed;  /* isSelfServiceRegistrationAllowed: the provisioning API
                                     * fails without it (graph-api.md §2.6) */
    gboolean attestation_enforced;  /* isAttestationEnforced */
    gboolean restrictions_enforced; /* keyRestrictions.isEnforced */
    KdKeyRestriction restriction;   /* keyRestrictions.enforcementType */
    char **aaguids;                 /* keyRestrictions.aaGuids, any case, dashed; may be NULL */
} KdKeyPolicy;

/* What the key can prove about its model. Entra's attestation enforcement accepts a key only
 * with an attestation chain to a root in the FIDO metadata service. */
typedef enum {
    KD_KEY_ATTESTATION_UNKNOWN,   /* not catalogued: Graph will decide (checked after the key
                                   * has made the credential, kd_key_policy_check_attestation) */
    KD_KEY_ATTESTATION_CERTIFIED, /* the model has an MDS metadata statement */
    KD_KEY_ATTESTATION_SELF,      /* self attestation only (zero AAGUID, U2F, or no x5c) */
} KdKeyAttestation;

typedef enum {
    KD_KEY_POLICY_ALLOWED,
    KD_KEY_POLICY_DISABLED,             /* security keys are turned off in this organisation */
    KD_KEY_POLICY_SELF_SERVICE_OFF,     /* "Allow self-service setup" is off: provisioning fails */
    KD_KEY_POLICY_BLOCKED,              /* the model is on the block list */
    KD_KEY_POLICY_NOT_ALLOWED,          /* there is an allow list and the model is not on it */
    KD_KEY_POLICY_ATTESTATION_REQUIRED, /* attestation enforced, the key only self-attests */
} KdKeyPolicyVerdict;

/* The attestation ability the catalogue and the AAGUID tell before any credential is made. */
KdKeyAttestation kd_key_attestation_guess(const guint8 aaguid[16]);

/*
 * The pre-flight: @policy against a key of @aaguid that can prove @attestation. The checks run
 * in this order: disabled, self-service off, block/allow list, attestation. *@sentence (may be
 * NULL) gets a sentence for the visitor (with the model's name when the catalogue knows it),
 * also for ALLOWED ("This key can be registered."). A @policy of NULL allows everything.
 * An enforced restriction of a type keydesk does not know (KD_KEY_RESTRICTION_NONE while
 * restrictions_enforced) is not judged: Graph decides.
 */
KdKeyPolicyVerdict kd_key_policy_check(const KdKeyPolicy *policy, const guint8 aaguid[16],
                                       KdKeyAttestation attestation, char **sentence);

/* After the key made the credential and before it is sent to Graph: when attestation is
 * enforced and the credential is self-attested (@self_attested), the verdict is
 * ATTESTATION_REQUIRED; else ALLOWED. */
KdKeyPolicyVerdict kd_key_policy_check_attestation(const KdKeyPolicy *policy,
                                                   const guint8 aaguid[16], gboolean self_attested,
                                                   char **sentence);

/* Short fixed name ("blocked"), for logs and tests. */
const char *kd_key_policy_verdict_name(KdKeyPolicyVerdict verdict);

void kd_key_policy_clear(KdKeyPolicy *policy);
void kd_key_policy_free(KdKeyPolicy *policy);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(KdKeyPolicy, kd_key_policy_free)

G_END_DECLS
