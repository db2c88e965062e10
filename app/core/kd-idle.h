/* kd-idle: when to ask "Still there?" and when to give up on a visitor, on an injectable clock. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef enum {
    KD_IDLE_DISARMED, /* nothing to time out (the welcome page) */
    KD_IDLE_ACTIVE,   /* a visitor is here and was seen recently */
    KD_IDLE_WARNING,  /* "Still there?" with a countdown */
    KD_IDLE_EXPIRED,  /* countdown ran out: end the session */
} KdIdleState;

/* Returns a monotonic time in microseconds. */
typedef gint64 (*KdClockFunc)(gpointer user_data);

typedef struct _KdIdle KdIdle;

/* @clock NULL means g_get_monotonic_time(). Starts disarmed. */
KdIdle *kd_idle_new(guint timeout_s, guint countdown_s, KdClockFunc clock, gpointer clock_data);
void kd_idle_free(KdIdle **idlep);

/* Start timing from now (a visitor left the welcome page). */
void kd_idle_arm(KdIdle *idle);
/* Stop timing (back on the welcome page). */
void kd_idle_disarm(KdIdle *idle);
/* The visitor touched something. Returns TRUE if that cancelled a running countdown. */
gboolean kd_idle_activity(KdIdle *idle);

/* The state now. In KD_IDLE_WARNING, @seconds_left (may be NULL) gets the whole seconds left
 * on the countdown, rounded up so the display never shows 0 before the end. */
KdIdleState kd_idle_poll(KdIdle *idle, guint *seconds_left);

/* Microseconds until kd_idle_poll() can next give a different answer (state or seconds left),
 * or -1 when nothing will change on its own (disarmed or expired). */
gint64 kd_idle_next_change_us(KdIdle *idle);

G_END_DECLS
