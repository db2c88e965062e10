/* kd-idle: when to ask "Still there?" and when to give up on a visitor, on an injectable clock. */
#include "core/kd-idle.h"

struct _KdIdle {
    gint64 timeout_us;
    gint64 countdown_us;
    KdClockFunc clock;
    gpointer clock_data;
    gboolean armed;
    gint64 last_activity_us;
};

static gint64
monotonic_clock(gpointer user_data)
{
    return g_get_monotonic_time();
}

KdIdle *
kd_idle_new(guint timeout_s, guint countdown_s, KdClockFunc clock, gpointer clock_data)
{
    KdIdle *idle = g_new0(KdIdle, 1);

    idle->timeout_us = (gint64)timeout_s * G_USEC_PER_SEC;
    idle->countdown_us = (gint64)countdown_s * G_USEC_PER_SEC;
    idle->clock = clock != NULL ? clock : monotonic_clock;
    idle->clock_data = clock_data;
    return idle;
}

void
kd_idle_free(KdIdle **idlep)
{
    g_clear_pointer(idlep, g_free);
}

static gint64
now(KdIdle *idle)
{
    return idle->clock(idle->clock_data);
}

void
kd_idle_arm(KdIdle *idle)
{
    idle->armed = TRUE;
    idle->last_activity_us = now(idle);
}

void
kd_idle_disarm(KdIdle *idle)
{
    idle->armed = FALSE;
}

gboolean
kd_idle_activity(KdIdle *idle)
{
    gboolean was_warning;

    if (!idle->armed)
        return FALSE;
    /* Once expired, the session is over: a late touch must not bring it back. */
    if (kd_idle_poll(idle, NULL) == KD_IDLE_EXPIRED)
        return FALSE;
    was_warning = kd_idle_poll(idle, NULL) == KD_IDLE_WARNING;
    idle->last_activity_us = now(idle);
    return was_warning;
}

KdIdleState
kd_idle_poll(KdIdle *idle, guint *seconds_left)
{
    gint64 quiet, left;

    if (!idle->armed)
        return KD_IDLE_DISARMED;
    quiet = now(idle) - idle->last_activity_us;
    if (quiet < idle->timeout_us)
        return KD_IDLE_ACTIVE;
    left = idle->timeout_us + idle->countdown_us - quiet;
    if (left <= 0)
        return KD_IDLE_EXPIRED;
    if (seconds_left != NULL)
        *seconds_left = (guint)((left + G_USEC_PER_SEC - 1) / G_USEC_PER_SEC);
    return KD_IDLE_WARNING;
}

gint64
kd_idle_next_change_us(KdIdle *idle)
{
    gint64 quiet, left;

    switch (kd_idle_poll(idle, NULL)) {
    case KD_IDLE_DISARMED:
    case KD_IDLE_EXPIRED:
        return -1;
    case KD_IDLE_ACTIVE:
        return idle->timeout_us - (now(idle) - idle->last_activity_us);
    case KD_IDLE_WARNING:
        quiet = now(idle) - idle->last_activity_us;
        left = idle->timeout_us + idle->countdown_us - quiet;
        /* The displayed seconds change when `left` crosses the next whole second. */
        return left % G_USEC_PER_SEC == 0 ? G_USEC_PER_SEC : left % G_USEC_PER_SEC;
    }
    return -1;
}
