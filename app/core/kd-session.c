/* kd-session: all about one visitor at the desk; destroyed, secrets wiped, when they leave. */
#include "core/kd-session.h"

#include <string.h>

struct _KdSession {
    GObject parent_instance;

    char *id;
    gint64 started_us;
    gboolean active;

    char *visitor_id;
    char *visitor_upn;
    char *visitor_name;

    GHashTable *secrets; /* name → KdSecret */
};

enum { SIGNAL_ENDED, N_SIGNALS };
static guint signals[N_SIGNALS];

G_DEFINE_FINAL_TYPE(KdSession, kd_session, G_TYPE_OBJECT)

static void
wipe_string(char **s)
{
    /* Identity is not a secret like a PIN, but it must not outlive the visit either. */
    if (*s != NULL)
        explicit_bzero(*s, strlen(*s));
    g_clear_pointer(s, g_free);
}

static void
wipe_and_unref_secret(gpointer data)
{
    KdSecret *secret = data;

    kd_secret_wipe(secret);
    kd_secret_unref(secret);
}

static void
kd_session_dispose(GObject *object)
{
    KdSession *self = KD_SESSION(object);

    kd_session_end(self, KD_SESSION_END_SHUTDOWN);
    G_OBJECT_CLASS(kd_session_parent_class)->dispose(object);
}

static void
kd_session_finalize(GObject *object)
{
    KdSession *self = KD_SESSION(object);

    g_hash_table_destroy(self->secrets);
    g_free(self->id);
    G_OBJECT_CLASS(kd_session_parent_class)->finalize(object);
}

static void
kd_session_class_init(KdSessionClass *klass)
{
    GObjectClass *object_class = G_OBJECT_CLASS(klass);

    object_class->dispose = kd_session_dispose;
    object_class->finalize = kd_session_finalize;

    /**
     * KdSession::ended:
     * @reason: a #KdSessionEndReason
     *
     * Emitted once, after the secrets have been wiped.
     */
    signals[SIGNAL_ENDED] = g_signal_new("ended", G_TYPE_FROM_CLASS(klass), G_SIGNAL_RUN_LAST, 0,
                                         NULL, NULL, NULL, G_TYPE_NONE, 1, G_TYPE_INT);
}

static void
kd_session_init(KdSession *self)
{
    self->id = g_uuid_string_random();
    self->started_us = g_get_monotonic_time();
    self->active = TRUE;
    self->secrets = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, wipe_and_unref_secret);
}

KdSession *
kd_session_new(void)
{
    KdSession *self = g_object_new(KD_TYPE_SESSION, NULL);

    g_debug("session %s started", self->id);
    return self;
}

const char *
kd_session_get_id(KdSession *session)
{
    g_return_val_if_fail(KD_IS_SESSION(session), NULL);
    return session->id;
}

gboolean
kd_session_is_active(KdSession *session)
{
    g_return_val_if_fail(KD_IS_SESSION(session), FALSE);
    return session->active;
}

double
kd_session_get_age(KdSession *session)
{
    g_return_val_if_fail(KD_IS_SESSION(session), 0);
    return (double)(g_get_monotonic_time() - session->started_us) / G_USEC_PER_SEC;
}

void
kd_session_set_visitor(KdSession *session, const char *object_id, const char *upn,
                       const char *display_name)
{
    g_return_if_fail(KD_IS_SESSION(session));
    g_return_if_fail(session->active);
    wipe_string(&session->visitor_id);
    wipe_string(&session->visitor_upn);
    wipe_string(&session->visitor_name);
    session->visitor_id = g_strdup(object_id);
    session->visitor_upn = g_strdup(upn);
    session->visitor_name = g_strdup(display_name);
}

const char *
kd_session_get_visitor_id(KdSession *session)
{
    g_return_val_if_fail(KD_IS_SESSION(session), NULL);
    return session->visitor_id;
}

const char *
kd_session_get_visitor_upn(KdSession *session)
{
    g_return_val_if_fail(KD_IS_SESSION(session), NULL);
    return session->visitor_upn;
}

const char *
kd_session_get_visitor_name(KdSession *session)
{
    g_return_val_if_fail(KD_IS_SESSION(session), NULL);
    return session->visitor_name;
}

void
kd_session_set_secret(KdSession *session, const char *name, KdSecret *secret)
{
    g_return_if_fail(KD_IS_SESSION(session));
    g_return_if_fail(name != NULL && secret != NULL);
    g_return_if_fail(session->active);
    /* g_hash_table_insert would free the new key; replace keeps one allocation per name and
     * runs the value destructor (wipe) on the old secret. */
    g_hash_table_replace(session->secrets, g_strdup(name), kd_secret_ref(secret));
}

KdSecret *
kd_session_get_secret(KdSession *session, const char *name)
{
    g_return_val_if_fail(KD_IS_SESSION(session), NULL);
    return g_hash_table_lookup(session->secrets, name);
}

void
kd_session_wipe_secret(KdSession *session, const char *name)
{
    g_return_if_fail(KD_IS_SESSION(session));
    g_hash_table_remove(session->secrets, name);
}

void
kd_session_end(KdSession *session, KdSessionEndReason reason)
{
    g_return_if_fail(KD_IS_SESSION(session));
    if (!session->active)
        return;
    session->active = FALSE;
    g_hash_table_remove_all(session->secrets);
    wipe_string(&session->visitor_id);
    wipe_string(&session->visitor_upn);
    wipe_string(&session->visitor_name);
    g_info("session %s ended (%s) after %.0f s", session->id,
           kd_session_end_reason_to_string(reason), kd_session_get_age(session));
    g_signal_emit(session, signals[SIGNAL_ENDED], 0, (int)reason);
}

const char *
kd_session_end_reason_to_string(KdSessionEndReason reason)
{
    switch (reason) {
    case KD_SESSION_END_DONE:
        return "done";
    case KD_SESSION_END_CANCELLED:
        return "cancelled";
    case KD_SESSION_END_IDLE:
        return "idle timeout";
    case KD_SESSION_END_SHUTDOWN:
        return "shutdown";
    }
    return "unknown";
}
