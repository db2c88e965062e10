/* kd-window: the kiosk's one window: navigation, the visitor's session, busy and errors. */
#include "kd-window.h"

#include <glib/gi18n.h>
#include <stdio.h>

#include "core/kd-idle.h"
#include "core/kd-service.h"
#include "kd-errors.h"
#include "kd-idle-overlay.h"
#include "kd-page.h"

struct _KdWindow {
    GtkApplicationWindow parent_instance;

    /* template children */
    GtkLabel *kiosk_name_label;
    GtkLabel *site_label;
    GtkWidget *demo_badge;
    GtkRevealer *error_revealer;
    GtkLabel *error_label;
    GtkStack *stack;
    GtkWidget *footer;
    GtkWidget *back_button;
    GtkWidget *cancel_button;
    GtkWidget *continue_button;
    GtkWidget *busy_box;
    GtkSpinner *spinner;
    KdIdleOverlay *idle_overlay;

    const KdConfig *config;
    const KdPageTable *table;
    KdWindowFlags flags;

    KdSession *session;
    const KdFlowEntry *flow;
    GPtrArray *history; /* page ids, owned */
    GCancellable *apply_cancellable;

    KdKeyRoster *keys;

    KdIdle *idle;
    guint idle_source;
    gulong after_paint_handler;
    guint watchdog_source;
};

G_DEFINE_FINAL_TYPE(KdWindow, kd_window, GTK_TYPE_APPLICATION_WINDOW)

/* gdk_event_handler_set() is process-wide; keydesk has one window. */
static KdWindow *event_hook_window;

static void update_footer(KdWindow *self);
static void page_state_changed(KdPage *page, GParamSpec *pspec, KdWindow *self);
static void idle_reschedule(KdWindow *self);

static KdPage *
current_page(KdWindow *self)
{
    GtkWidget *child = gtk_stack_get_visible_child(self->stack);
    return child != NULL ? KD_PAGE(child) : NULL;
}

static KdPage *
find_page(KdWindow *self, const char *id)
{
    GtkWidget *child = gtk_stack_get_child_by_name(self->stack, id);
    return child != NULL ? KD_PAGE(child) : NULL;
}

static gboolean
page_available(KdWindow *self, const char *id)
{
    const KdPageEntry *entry = kd_page_table_find_page(self->table, id);

    return entry != NULL && kd_page_type_available(entry->get_type(), self->config);
}

/* Pages are built the first time they are shown: a kiosk that starts fast builds and measures
 * only the welcome page (bench/startup). */
static KdPage *
ensure_page(KdWindow *self, const char *id)
{
    const KdPageEntry *entry;
    KdPage *page = find_page(self, id);

    if (page != NULL)
        return page;
    if (!page_available(self, id)) {
        g_warning("page %s is not available with this configuration", id);
        return NULL;
    }
    entry = kd_page_table_find_page(self->table, id);
    page = g_object_new(entry->get_type(), NULL);
    kd_page_set_window(page, self);
    g_signal_connect(page, "notify::complete", G_CALLBACK(page_state_changed), self);
    g_signal_connect(page, "notify::has-continue", G_CALLBACK(page_state_changed), self);
    g_signal_connect(page, "notify::applying", G_CALLBACK(page_state_changed), self);
    gtk_widget_show(GTK_WIDGET(page));
    gtk_stack_add_named(self->stack, GTK_WIDGET(page), entry->id);
    return page;
}

const char *
kd_window_get_current_page(KdWindow *window)
{
    g_return_val_if_fail(KD_IS_WINDOW(window), NULL);
    return gtk_stack_get_visible_child_name(window->stack);
}

const KdConfig *
kd_window_get_config(KdWindow *window)
{
    g_return_val_if_fail(KD_IS_WINDOW(window), NULL);
    return window->config;
}

KdSession *
kd_window_get_session(KdWindow *window)
{
    g_return_val_if_fail(KD_IS_WINDOW(window), NULL);
    return window->session;
}

/* --- idle reset -------------------------------------------------------------------------- */

static void
hide_idle_overlay(KdWindow *self)
{
    gtk_widget_hide(GTK_WIDGET(self->idle_overlay));
}

static gboolean
idle_tick(gpointer user_data)
{
    KdWindow *self = user_data;
    guint seconds = 0;

    self->idle_source = 0;
    switch (kd_idle_poll(self->idle, &seconds)) {
    case KD_IDLE_DISARMED:
    case KD_IDLE_ACTIVE:
        hide_idle_overlay(self);
        break;
    case KD_IDLE_WARNING:
        kd_idle_overlay_set_seconds(self->idle_overlay, seconds);
        if (!gtk_widget_get_visible(GTK_WIDGET(self->idle_overlay))) {
            g_debug("idle: asking whether the visitor is still there");
            gtk_widget_show(GTK_WIDGET(self->idle_overlay));
        }
        break;
    case KD_IDLE_EXPIRED:
        g_info("idle: nobody answered, back to the start");
        kd_window_go_home(self, KD_SESSION_END_IDLE);
        return G_SOURCE_REMOVE;
    }
    idle_reschedule(self);
    return G_SOURCE_REMOVE;
}

static void
idle_reschedule(KdWindow *self)
{
    gint64 us;

    g_clear_handle_id(&self->idle_source, g_source_remove);
    us = kd_idle_next_change_us(self->idle);
    if (us < 0)
        return;
    self->idle_source = g_timeout_add((guint)((us + 999) / 1000), idle_tick, self);
}

static void
note_activity(KdWindow *self)
{
    if (kd_idle_activity(self->idle)) {
        hide_idle_overlay(self);
        idle_reschedule(self);
    }
}

static void
still_here(KdWindow *self)
{
    /* A click through the accessibility layer makes no input event; count it explicitly. */
    note_activity(self);
    hide_idle_overlay(self);
    idle_reschedule(self);
}

static void
default_event_handler(GdkEvent *event, gpointer data)
{
    gtk_main_do_event(event);
}

static void
event_hook(GdkEvent *event, gpointer data)
{
    if (event_hook_window != NULL) {
        switch (event->type) {
        case GDK_KEY_PRESS:
        case GDK_BUTTON_PRESS:
        case GDK_TOUCH_BEGIN:
        case GDK_TOUCH_UPDATE:
        case GDK_MOTION_NOTIFY:
        case GDK_SCROLL:
            note_activity(event_hook_window);
            break;
        default:
            break;
        }
    }
    gtk_main_do_event(event);
}

/* --- navigation -------------------------------------------------------------------------- */

static void
hide_error(KdWindow *self)
{
    gtk_revealer_set_reveal_child(self->error_revealer, FALSE);
}

static void
show_page(KdWindow *self, const char *id, gboolean push)
{
    const char *current = kd_window_get_current_page(self);
    KdPage *page = ensure_page(self, id);

    g_return_if_fail(page != NULL);
    if (push && current != NULL && g_strcmp0(current, id) != 0)
        g_ptr_array_add(self->history, g_strdup(current));
    hide_error(self);
    gtk_stack_set_visible_child_name(self->stack, id);
    g_debug("page: %s", id);

    /* Every page but welcome has someone in front of it who may walk away. */
    if (g_str_equal(id, KD_PAGE_WELCOME))
        kd_idle_disarm(self->idle);
    else
        kd_idle_arm(self->idle);
    hide_idle_overlay(self);
    idle_reschedule(self);

    update_footer(self);
    kd_page_shown(page);
}

void
kd_window_show_page(KdWindow *window, const char *page_id)
{
    g_return_if_fail(KD_IS_WINDOW(window));
    show_page(window, page_id, TRUE);
}

void
kd_window_go_home(KdWindow *window, KdSessionEndReason reason)
{
    g_return_if_fail(KD_IS_WINDOW(window));
    if (window->apply_cancellable != NULL)
        g_cancellable_cancel(window->apply_cancellable);
    if (window->session != NULL) {
        kd_session_end(window->session, reason);
        g_clear_object(&window->session);
    }
    window->flow = NULL;
    g_ptr_array_set_size(window->history, 0);
    show_page(window, KD_PAGE_WELCOME, FALSE);
}

void
kd_window_go_back(KdWindow *window)
{
    g_autofree char *previous = NULL;

    g_return_if_fail(KD_IS_WINDOW(window));
    if (window->history->len == 0)
        return;
    previous = g_ptr_array_steal_index(window->history, window->history->len - 1);
    /* Backing out of a visit to the start is the same as cancelling it. */
    if (g_str_equal(previous, KD_PAGE_WELCOME))
        kd_window_go_home(window, KD_SESSION_END_CANCELLED);
    else
        show_page(window, previous, FALSE);
}

static gboolean
flow_is_offered(KdWindow *self, const KdFlowEntry *flow)
{
    if ((self->config->flows & flow->flow) == 0)
        return FALSE;
    /* A flow whose first page declined to appear (say, it needs operator mode) is not offered. */
    return flow->pages[0] != NULL && page_available(self, flow->pages[0]);
}

GArray *
kd_window_get_flows(KdWindow *window)
{
    GArray *flows = g_array_new(FALSE, FALSE, sizeof(const KdFlowEntry *));

    g_return_val_if_fail(KD_IS_WINDOW(window), flows);
    for (gsize i = 0; i < window->table->n_flows; i++) {
        const KdFlowEntry *flow = &window->table->flows[i];
        if (flow_is_offered(window, flow))
            g_array_append_val(flows, flow);
    }
    return flows;
}

static const char *
next_flow_page(KdWindow *self, const char *after)
{
    gboolean seen = after == NULL;

    for (const char *const *p = self->flow->pages; *p != NULL; p++) {
        if (seen && page_available(self, *p))
            return *p;
        if (after != NULL && g_str_equal(*p, after))
            seen = TRUE;
    }
    return NULL;
}

gboolean
kd_window_start_flow(KdWindow *window, const char *flow_id)
{
    const KdFlowEntry *flow;
    const char *first;

    g_return_val_if_fail(KD_IS_WINDOW(window), FALSE);
    flow = kd_page_table_find_flow(window->table, flow_id);
    if (flow == NULL || !flow_is_offered(window, flow)) {
        g_warning("flow '%s' is not offered at this desk", flow_id);
        return FALSE;
    }
    g_clear_object(&window->session);
    window->session = kd_session_new();
    window->flow = flow;
    first = next_flow_page(window, NULL);
    g_info("session %s: %s flow", kd_session_get_id(window->session), flow->id);
    show_page(window, first, TRUE);
    return TRUE;
}

static void
apply_done(KdPage *page, const GError *error, gpointer user_data)
{
    KdWindow *self = user_data;
    const char *next;

    g_clear_object(&self->apply_cancellable);
    update_footer(self);
    if (error != NULL) {
        kd_window_show_error(self, error);
        return;
    }
    if (page != current_page(self) || self->flow == NULL)
        return;
    next = next_flow_page(self, kd_window_get_current_page(self));
    if (next != NULL)
        show_page(self, next, TRUE);
    else
        kd_window_go_home(self, KD_SESSION_END_DONE);
}

static void
continue_clicked(KdWindow *self)
{
    KdPage *page = current_page(self);

    if (page == NULL || kd_page_get_applying(page) || !kd_page_get_complete(page))
        return;
    hide_error(self);
    self->apply_cancellable = g_cancellable_new();
    kd_page_apply_begin(page, self->apply_cancellable, apply_done, self);
    update_footer(self);
}

static void
cancel_clicked(KdWindow *self)
{
    /* While work runs, Cancel stops the work and leaves the visitor where they are; pressed
     * again it ends the visit. */
    if (self->apply_cancellable != NULL) {
        g_cancellable_cancel(self->apply_cancellable);
        return;
    }
    kd_window_go_home(self, KD_SESSION_END_CANCELLED);
}

static void
back_clicked(KdWindow *self)
{
    kd_window_go_back(self);
}

static void
error_close_clicked(KdWindow *self)
{
    hide_error(self);
}

void
kd_window_show_error(KdWindow *window, const GError *error)
{
    g_autofree char *sentence = NULL;

    g_return_if_fail(KD_IS_WINDOW(window));
    if (error == NULL || g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
        return;
    kd_errors_log(kd_window_get_current_page(window), error);
    sentence = kd_errors_describe(error);
    gtk_label_set_text(window->error_label, sentence);
    gtk_revealer_set_reveal_child(window->error_revealer, TRUE);
}

static void
update_footer(KdWindow *self)
{
    KdPage *page = current_page(self);
    gboolean applying = page != NULL && kd_page_get_applying(page);
    gboolean in_flow = self->flow != NULL;
    gboolean on_welcome = g_strcmp0(kd_window_get_current_page(self), KD_PAGE_WELCOME) == 0;

    gtk_widget_set_visible(self->footer, !on_welcome);
    gtk_widget_set_visible(self->back_button, self->history->len > 0 && !applying);
    gtk_widget_set_visible(self->cancel_button, in_flow);
    gtk_widget_set_visible(self->continue_button,
                           in_flow && page != NULL && kd_page_get_has_continue(page));
    gtk_widget_set_sensitive(self->continue_button,
                             page != NULL && kd_page_get_complete(page) && !applying);
    gtk_widget_set_visible(self->busy_box, applying);
    if (applying)
        gtk_spinner_start(self->spinner);
    else
        gtk_spinner_stop(self->spinner);
}

static void
page_state_changed(KdPage *page, GParamSpec *pspec, KdWindow *self)
{
    if (page == current_page(self))
        update_footer(self);
}

/* --- window life ------------------------------------------------------------------------- */

static void
after_paint(GdkFrameClock *clock, KdWindow *self)
{
    g_clear_signal_handler(&self->after_paint_handler, clock);
    if (self->flags & KD_WINDOW_FIRST_FRAME_MARKER) {
        fputs("FIRST_FRAME\n", stdout);
        fflush(stdout);
    }
    kd_service_notify_ready("Showing the welcome page");
    self->watchdog_source = kd_service_watchdog_start();
    /* libusb starts after the first frame: a visitor sees the kiosk before keys are read. */
    kd_key_roster_start(self->keys, NULL);
}

static void
kd_window_realize(GtkWidget *widget)
{
    KdWindow *self = KD_WINDOW(widget);
    GdkWindow *gdk_window;

    GTK_WIDGET_CLASS(kd_window_parent_class)->realize(widget);
    gdk_window = gtk_widget_get_window(widget);
    self->after_paint_handler = g_signal_connect(gtk_widget_get_frame_clock(widget), "after-paint",
                                                 G_CALLBACK(after_paint), self);
    if (self->config->touch_only) {
        g_autoptr(GdkCursor) none =
            gdk_cursor_new_from_name(gdk_window_get_display(gdk_window), "none");
        gdk_window_set_cursor(gdk_window, none);
    }
}

static gboolean
kd_window_delete_event(GtkWidget *widget, GdkEventAny *event)
{
    KdWindow *self = KD_WINDOW(widget);

    if (self->flags & KD_WINDOW_KIOSK) {
        /* Alt+F4 or a compositor's close: a walk-up desk is never closed by a visitor. */
        g_debug("refusing to close the kiosk window");
        return GDK_EVENT_STOP;
    }
    return GDK_EVENT_PROPAGATE;
}

static void
enter_kiosk_mode(KdWindow *self)
{
    GdkDisplay *display = gtk_widget_get_display(GTK_WIDGET(self));
    GdkMonitor *monitor = gdk_display_get_primary_monitor(display);
    GdkRectangle geometry;

    if (monitor == NULL)
        monitor = gdk_display_get_monitor(display, 0);
    gtk_window_set_decorated(GTK_WINDOW(self), FALSE);
    gtk_window_set_deletable(GTK_WINDOW(self), FALSE);
    /* Without a window manager (a bare X server), fullscreen is only a hint: size the window
     * to the monitor as well, so the desk never shows anything behind keydesk. */
    if (monitor != NULL) {
        gdk_monitor_get_geometry(monitor, &geometry);
        gtk_window_set_default_size(GTK_WINDOW(self), geometry.width, geometry.height);
        gtk_window_move(GTK_WINDOW(self), geometry.x, geometry.y);
    }
    gtk_window_fullscreen(GTK_WINDOW(self));
}

static void
kd_window_dispose(GObject *object)
{
    KdWindow *self = KD_WINDOW(object);

    if (self->apply_cancellable != NULL)
        g_cancellable_cancel(self->apply_cancellable);
    g_clear_object(&self->apply_cancellable);
    if (self->session != NULL) {
        kd_session_end(self->session, KD_SESSION_END_SHUTDOWN);
        g_clear_object(&self->session);
    }
    g_clear_handle_id(&self->idle_source, g_source_remove);
    g_clear_handle_id(&self->watchdog_source, g_source_remove);
    if (event_hook_window == self) {
        event_hook_window = NULL;
        gdk_event_handler_set(default_event_handler, NULL, NULL);
    }
    G_OBJECT_CLASS(kd_window_parent_class)->dispose(object);
}

static void
kd_window_finalize(GObject *object)
{
    KdWindow *self = KD_WINDOW(object);

    kd_idle_free(&self->idle);
    g_ptr_array_unref(self->history);
    g_clear_object(&self->keys);
    G_OBJECT_CLASS(kd_window_parent_class)->finalize(object);
}

static void
kd_window_class_init(KdWindowClass *klass)
{
    GObjectClass *object_class = G_OBJECT_CLASS(klass);
    GtkWidgetClass *widget_class = GTK_WIDGET_CLASS(klass);

    object_class->dispose = kd_window_dispose;
    object_class->finalize = kd_window_finalize;
    widget_class->realize = kd_window_realize;
    widget_class->delete_event = kd_window_delete_event;

    g_type_ensure(KD_TYPE_IDLE_OVERLAY);
    gtk_widget_class_set_template_from_resource(widget_class, "/org/keydesk/Keydesk/kd-window.ui");
    gtk_widget_class_bind_template_child(widget_class, KdWindow, kiosk_name_label);
    gtk_widget_class_bind_template_child(widget_class, KdWindow, site_label);
    gtk_widget_class_bind_template_child(widget_class, KdWindow, demo_badge);
    gtk_widget_class_bind_template_child(widget_class, KdWindow, error_revealer);
    gtk_widget_class_bind_template_child(widget_class, KdWindow, error_label);
    gtk_widget_class_bind_template_child(widget_class, KdWindow, stack);
    gtk_widget_class_bind_template_child(widget_class, KdWindow, footer);
    gtk_widget_class_bind_template_child(widget_class, KdWindow, back_button);
    gtk_widget_class_bind_template_child(widget_class, KdWindow, cancel_button);
    gtk_widget_class_bind_template_child(widget_class, KdWindow, continue_button);
    gtk_widget_class_bind_template_child(widget_class, KdWindow, busy_box);
    gtk_widget_class_bind_template_child(widget_class, KdWindow, spinner);
    gtk_widget_class_bind_template_child(widget_class, KdWindow, idle_overlay);
    gtk_widget_class_bind_template_callback(widget_class, back_clicked);
    gtk_widget_class_bind_template_callback(widget_class, cancel_clicked);
    gtk_widget_class_bind_template_callback(widget_class, continue_clicked);
    gtk_widget_class_bind_template_callback(widget_class, error_close_clicked);
    gtk_widget_class_bind_template_callback(widget_class, still_here);
}

static void
kd_window_init(KdWindow *self)
{
    gtk_widget_init_template(GTK_WIDGET(self));
    self->history = g_ptr_array_new_with_free_func(g_free);
    self->keys = kd_key_roster_new();
}

KdKeyRoster *
kd_window_get_keys(KdWindow *self)
{
    g_return_val_if_fail(KD_IS_WINDOW(self), NULL);
    return self->keys;
}

KdWindow *
kd_window_new(GtkApplication *app, const KdConfig *config, const KdPageTable *table,
              KdWindowFlags flags)
{
    KdWindow *self = g_object_new(KD_TYPE_WINDOW, "application", app, NULL);

    self->config = config;
    self->table = table;
    self->flags = flags;
    self->idle = kd_idle_new(config->idle_timeout_s, config->idle_countdown_s, NULL, NULL);

    gtk_label_set_text(self->kiosk_name_label, config->name);
    gtk_label_set_text(self->site_label, config->site != NULL ? config->site : "");
    gtk_widget_set_visible(GTK_WIDGET(self->site_label), config->site != NULL);
    gtk_widget_set_visible(self->demo_badge, config->demo);

    event_hook_window = self;
    gdk_event_handler_set(event_hook, NULL, NULL);

    if (flags & KD_WINDOW_KIOSK)
        enter_kiosk_mode(self);
    else
        gtk_window_set_default_size(GTK_WINDOW(self), 1280, 800);

    show_page(self, KD_PAGE_WELCOME, FALSE);
    return self;
}
