/* kd-session: all about one visitor at the desk; destroyed, secrets wiped, when they leave. */
#pragma once

#include <glib-object.h>

#include "base/kd-secret.h"

G_BEGIN_DECLS

typedef enum {
    KD_SESSION_END_DONE,      /* the visitor finished */
    KD_SESSION_END_CANCELLED, /* the visitor or staff pressed Cancel */
    KD_SESSION_END_IDLE,      /* nobody answered "Still there?" */
    KD_SESSION_END_SHUTDOWN,  /* keydesk is stopping */
} KdSessionEndReason;

#define KD_TYPE_SESSION (kd_session_get_type())
G_DECLARE_FINAL_TYPE(KdSession, kd_session, KD, SESSION, GObject)

KdSession *kd_session_new(void);

/* A random id for this visit, for logs: it names the visit, never the visitor. */
const char *kd_session_get_id(KdSession *session);
gboolean kd_session_is_active(KdSession *session);
/* Seconds since the session started (monotonic). */
double kd_session_get_age(KdSession *session);

/* Who the visitor is, once identified (object id in Entra, UPN, display name). */
void kd_session_set_visitor(KdSession *session, const char *object_id, const char *upn,
                            const char *display_name);
const char *kd_session_get_visitor_id(KdSession *session);
const char *kd_session_get_visitor_upn(KdSession *session);
const char *kd_session_get_visitor_name(KdSession *session);

/* Secrets (PIN buffers, a Temporary Access Pass, tokens) held under a name. The session takes
 * a reference; replacing a secret wipes the old one. */
void kd_session_set_secret(KdSession *session, const char *name, KdSecret *secret);
KdSecret *kd_session_get_secret(KdSession *session, const char *name);
void kd_session_wipe_secret(KdSession *session, const char *name);

/* Ends the visit: wipes every secret, forgets the visitor, and emits "ended" once.
 * Calling it again does nothing. Disposing an active session ends it with SHUTDOWN. */
void kd_session_end(KdSession *session, KdSessionEndReason reason);

const char *kd_session_end_reason_to_string(KdSessionEndReason reason);

G_END_DECLS
