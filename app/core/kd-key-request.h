/* kd-key-request: Graph's FIDO2 types onto hw/'s plain ones (hw/ never includes graph/): the
 * creation options onto the credential request, the FIDO2 method policy onto the pre-flight. */
#pragma once

#include <glib.h>

#include "graph/kd-graph-ops.h"
#include "hw/kd-key-credential.h"
#include "hw/kd-key-policy.h"

G_BEGIN_DECLS

/* The request for @options: rp, user handle bytes, the clientDataJSON of
 * kd_graph_fido2_client_data() (graph-api.md §2.4), excluded ids, resident key, UV, hmac-secret,
 * credProtect + enforcement, and the WebAuthn timeout hint. NULL when @options lacks what a
 * credential needs (rp id, user id, challenge) or offers no algorithm keydesk can use (ES256). */
KdKeyCredentialRequest *kd_key_request_from_fido2_options(const KdGraphFido2Options *options);

/* The pre-flight policy of a FIDO2 method policy (KD_GRAPH_POLICY_FIDO2). NULL for another kind. */
KdKeyPolicy *kd_key_request_policy_from_graph(const KdGraphMethodPolicy *policy);

G_END_DECLS
