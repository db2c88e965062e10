/* test-window: the page framework in a real GTK window (under Xvfb): flows, async apply with
 * spinner and Cancel, errors, Back, session wiping, declined pages, and kiosk-mode closing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <gtk/gtk.h>

#include "kd-page.h"
#include "kd-ui.h"
#include "kd-window.h"
#include "pages/status/kd-status-page.h"
#include "pages/welcome/kd-welcome-page.h"

/* --- test pages ---------------------------------------------------------------------------- */

typedef enum { APPLY_SYNC, APPLY_ASYNC_OK, APPLY_ASYNC_ERROR } ApplyMode;

static ApplyMode apply_mode;
static int applies_started;

#define TEST_TYPE_PAGE (test_page_get_type())
G_DECLARE_FINAL_TYPE(TestPage, test_page, TEST, PAGE, KdPage)
struct _TestPage {
    KdPage parent_instance;
    guint timeout;
    GCancellable *cancellable;
    gulong cancelled_id;
};
G_DEFINE_FINAL_TYPE(TestPage, test_page, KD_TYPE_PAGE)

static void
finish_apply(TestPage *self, const GError *error)
{
    g_clear_handle_id(&self->timeout, g_source_remove);
    if (self->cancellable != NULL) {
        g_cancellable_disconnect(self->cancellable, self->cancelled_id);
        g_clear_object(&self->cancellable);
    }
    kd_page_apply_complete(KD_PAGE(self), error);
}

static gboolean
apply_timeout(gpointer data)
{
    TestPage *self = data;
    g_autoptr(GError) error = NULL;

    self->timeout = 0;
    if (apply_mode == APPLY_ASYNC_ERROR)
        error = g_error_new_literal(G_IO_ERROR, G_IO_ERROR_TIMED_OUT, "graph took too long");
    finish_apply(self, error);
    return G_SOURCE_REMOVE;
}

static gboolean
apply_cancelled_idle(gpointer data)
{
    g_autoptr(GError) error = g_error_new_literal(G_IO_ERROR, G_IO_ERROR_CANCELLED, "cancelled");

    finish_apply(TEST_PAGE(data), error);
    return G_SOURCE_REMOVE;
}

static void
on_cancelled(GCancellable *cancellable, TestPage *self)
{
    /* Never complete from inside the cancelled handler (g_cancellable_disconnect would
     * deadlock): go through the main loop like real async work does. */
    g_idle_add(apply_cancelled_idle, self);
}

static gboolean
test_page_apply(KdPage *page, GCancellable *cancellable)
{
    TestPage *self = TEST_PAGE(page);

    applies_started++;
    if (apply_mode == APPLY_SYNC)
        return FALSE;
    self->cancellable = g_object_ref(cancellable);
    self->cancelled_id = g_cancellable_connect(cancellable, G_CALLBACK(on_cancelled), self, NULL);
    self->timeout = g_timeout_add(200, apply_timeout, self);
    return TRUE;
}

static void
test_page_class_init(TestPageClass *klass)
{
    KD_PAGE_CLASS(klass)->apply = test_page_apply;
}

static void
test_page_init(TestPage *self)
{
    gtk_container_add(GTK_CONTAINER(self), gtk_label_new("a test page"));
    kd_page_set_complete(KD_PAGE(self), TRUE);
}

#define TEST_TYPE_DECLINING_PAGE (test_declining_page_get_type())
G_DECLARE_FINAL_TYPE(TestDecliningPage, test_declining_page, TEST, DECLINING_PAGE, KdPage)
struct _TestDecliningPage {
    KdPage parent_instance;
};
G_DEFINE_FINAL_TYPE(TestDecliningPage, test_declining_page, KD_TYPE_PAGE)

static gboolean
declining_available(KdPageClass *klass, const KdConfig *config)
{
    return config->identity_mode == KD_IDENTITY_SELF;
}

static void
test_declining_page_class_init(TestDecliningPageClass *klass)
{
    KD_PAGE_CLASS(klass)->available = declining_available;
}

static void
test_declining_page_init(TestDecliningPage *self)
{
}

static const KdPageEntry test_pages[] = {
    {KD_PAGE_WELCOME, kd_welcome_page_get_type},
    {KD_PAGE_STATUS, kd_status_page_get_type},
    {"first", test_page_get_type},
    {"declined", test_declining_page_get_type},
    {"second", test_page_get_type},
};
static const char *const enrol_pages[] = {"first", "declined", "second", NULL};
static const char *const disabled_pages[] = {"first", NULL};
static const char *const declined_pages[] = {"declined", "first", NULL};
static const KdFlowEntry test_flows[] = {
    {"enrol", KD_FLOW_SECURITY_KEY, "Security key", "Register a key", "security-high-symbolic",
     enrol_pages},
    {"disabled", KD_FLOW_LOST_DEVICE, "Lost device", "Not enabled here", "edit-delete-symbolic",
     disabled_pages},
    {"declined", KD_FLOW_AUTHENTICATOR, "App", "First page declines", "phone-symbolic",
     declined_pages},
};
static const KdPageTable test_table = {test_pages, G_N_ELEMENTS(test_pages), test_flows,
                                       G_N_ELEMENTS(test_flows)};

/* --- helpers ------------------------------------------------------------------------------- */

typedef struct {
    KdConfig *config;
    KdWindow *window;
} Fixture;

static GtkWidget *
find_button(GtkWidget *root, const char *label)
{
    if (GTK_IS_BUTTON(root) && g_strcmp0(gtk_button_get_label(GTK_BUTTON(root)), label) == 0)
        return root;
    if (GTK_IS_CONTAINER(root)) {
        g_autoptr(GList) children = gtk_container_get_children(GTK_CONTAINER(root));
        for (GList *l = children; l != NULL; l = l->next) {
            GtkWidget *found = find_button(l->data, label);
            if (found != NULL)
                return found;
        }
    }
    return NULL;
}

static GtkWidget *
button(Fixture *f, const char *label)
{
    GtkWidget *b = find_button(GTK_WIDGET(f->window), label);
    assert_non_null(b);
    return b;
}

static gboolean
shown(GtkWidget *w)
{
    return gtk_widget_is_visible(w);
}

static void
iterate(void)
{
    while (gtk_events_pending())
        gtk_main_iteration();
}

static void
run_for(guint ms)
{
    gint64 deadline = g_get_monotonic_time() + (gint64)ms * 1000;

    while (g_get_monotonic_time() < deadline) {
        g_main_context_iteration(NULL, FALSE);
        g_usleep(1000);
    }
}

static int
setup(void **state)
{
    Fixture *f = g_new0(Fixture, 1);

    f->config = kd_config_new_demo();
    f->config->flows = KD_FLOW_SECURITY_KEY | KD_FLOW_AUTHENTICATOR; /* not lost-device */
    f->config->identity_mode = KD_IDENTITY_OPERATOR;                 /* "declined" declines */
    f->window = kd_window_new(NULL, f->config, &test_table, 0);
    gtk_widget_show(GTK_WIDGET(f->window));
    iterate();
    apply_mode = APPLY_SYNC;
    applies_started = 0;
    *state = f;
    return 0;
}

static int
teardown(void **state)
{
    Fixture *f = *state;

    gtk_widget_destroy(GTK_WIDGET(f->window));
    iterate();
    kd_config_free(&f->config);
    g_free(f);
    return 0;
}

/* --- tests --------------------------------------------------------------------------------- */

static void
test_welcome_offers_enabled_flows(void **state)
{
    Fixture *f = *state;
    g_autoptr(GArray) flows = kd_window_get_flows(f->window);

    assert_string_equal(kd_window_get_current_page(f->window), KD_PAGE_WELCOME);
    assert_null(kd_window_get_session(f->window));
    /* "disabled" is off in the config; "declined" starts with a page that declined. */
    assert_int_equal(flows->len, 1);
    assert_string_equal(g_array_index(flows, const KdFlowEntry *, 0)->id, "enrol");
    assert_false(kd_window_start_flow(f->window, "disabled"));
    assert_false(kd_window_start_flow(f->window, "declined"));
    assert_false(kd_window_start_flow(f->window, "no-such-flow"));
    /* The welcome page shows a tile for it, named for assistive technology. */
    assert_true(shown(button(f, "Staff")));
    assert_false(shown(button(f, "Back")));
    assert_false(shown(button(f, "Continue")));
}

static void
test_flow_runs_to_done_and_wipes(void **state)
{
    Fixture *f = *state;
    KdSession *session;
    KdSecret *pin = kd_secret_new_from("246813", 6);

    assert_true(kd_window_start_flow(f->window, "enrol"));
    session = g_object_ref(kd_window_get_session(f->window));
    assert_non_null(session);
    kd_session_set_secret(session, "pin", pin);
    assert_string_equal(kd_window_get_current_page(f->window), "first");
    assert_true(shown(button(f, "Continue")));
    assert_true(shown(button(f, "Cancel")));
    assert_true(shown(button(f, "Back")));

    gtk_button_clicked(GTK_BUTTON(button(f, "Continue")));
    /* "declined" is skipped: it declined to appear with this configuration. */
    assert_string_equal(kd_window_get_current_page(f->window), "second");
    assert_ptr_equal(kd_window_get_session(f->window), session);

    apply_mode = APPLY_ASYNC_OK;
    gtk_button_clicked(GTK_BUTTON(button(f, "Continue")));
    iterate();
    /* Busy: spinner on, Continue off, Back hidden, Cancel available. */
    assert_false(gtk_widget_is_sensitive(button(f, "Continue")));
    assert_false(shown(button(f, "Back")));
    assert_true(shown(button(f, "Cancel")));
    /* A second press while busy does not start the work twice. */
    gtk_button_clicked(GTK_BUTTON(button(f, "Continue")));
    assert_int_equal(applies_started, 2);

    run_for(400);
    assert_string_equal(kd_window_get_current_page(f->window), KD_PAGE_WELCOME);
    assert_null(kd_window_get_session(f->window));
    assert_false(kd_session_is_active(session));
    assert_int_equal(kd_secret_get_length(pin), 0);
    assert_int_equal(kd_secret_get_data(pin)[0], 0);
    kd_secret_unref(pin);
    g_object_unref(session);
}

static void
test_error_keeps_page(void **state)
{
    Fixture *f = *state;
    GtkWidget *dismiss;

    kd_window_start_flow(f->window, "enrol");
    gtk_button_clicked(GTK_BUTTON(button(f, "Continue")));
    apply_mode = APPLY_ASYNC_ERROR;
    gtk_button_clicked(GTK_BUTTON(button(f, "Continue")));
    run_for(400);
    assert_string_equal(kd_window_get_current_page(f->window), "second");
    assert_non_null(kd_window_get_session(f->window));
    dismiss = button(f, "Dismiss");
    assert_true(gtk_revealer_get_reveal_child(
        GTK_REVEALER(gtk_widget_get_ancestor(dismiss, GTK_TYPE_REVEALER))));
    assert_true(gtk_widget_is_sensitive(button(f, "Continue")));
    gtk_button_clicked(GTK_BUTTON(dismiss));
    assert_false(gtk_revealer_get_reveal_child(
        GTK_REVEALER(gtk_widget_get_ancestor(dismiss, GTK_TYPE_REVEALER))));
}

static void
test_cancel_stops_work_then_leaves(void **state)
{
    Fixture *f = *state;
    KdSession *session;
    GtkWidget *dismiss;

    kd_window_start_flow(f->window, "enrol");
    session = g_object_ref(kd_window_get_session(f->window));
    gtk_button_clicked(GTK_BUTTON(button(f, "Continue")));
    apply_mode = APPLY_ASYNC_OK;
    gtk_button_clicked(GTK_BUTTON(button(f, "Continue")));
    iterate();
    gtk_button_clicked(GTK_BUTTON(button(f, "Cancel")));
    run_for(400);
    /* The work stopped; the visitor stays, and cancelling shows no error. */
    assert_string_equal(kd_window_get_current_page(f->window), "second");
    assert_true(kd_session_is_active(session));
    dismiss = button(f, "Dismiss");
    assert_false(gtk_revealer_get_reveal_child(
        GTK_REVEALER(gtk_widget_get_ancestor(dismiss, GTK_TYPE_REVEALER))));
    assert_true(gtk_widget_is_sensitive(button(f, "Continue")));

    gtk_button_clicked(GTK_BUTTON(button(f, "Cancel")));
    assert_string_equal(kd_window_get_current_page(f->window), KD_PAGE_WELCOME);
    assert_false(kd_session_is_active(session));
    g_object_unref(session);
}

static void
test_back_navigation(void **state)
{
    Fixture *f = *state;
    KdSession *session;

    kd_window_start_flow(f->window, "enrol");
    session = g_object_ref(kd_window_get_session(f->window));
    gtk_button_clicked(GTK_BUTTON(button(f, "Continue")));
    assert_string_equal(kd_window_get_current_page(f->window), "second");
    gtk_button_clicked(GTK_BUTTON(button(f, "Back")));
    assert_string_equal(kd_window_get_current_page(f->window), "first");
    assert_true(kd_session_is_active(session));
    /* Back out of the first page: the visit is over. */
    gtk_button_clicked(GTK_BUTTON(button(f, "Back")));
    assert_string_equal(kd_window_get_current_page(f->window), KD_PAGE_WELCOME);
    assert_false(kd_session_is_active(session));
    g_object_unref(session);
}

static void
test_staff_status_page(void **state)
{
    Fixture *f = *state;

    gtk_button_clicked(GTK_BUTTON(button(f, "Staff")));
    assert_string_equal(kd_window_get_current_page(f->window), KD_PAGE_STATUS);
    assert_null(kd_window_get_session(f->window)); /* staff pages are not a visit */
    assert_true(shown(button(f, "Back")));
    assert_false(shown(button(f, "Cancel")));
    assert_false(shown(button(f, "Continue")));
    gtk_button_clicked(GTK_BUTTON(button(f, "Back")));
    assert_string_equal(kd_window_get_current_page(f->window), KD_PAGE_WELCOME);
}

static gboolean destroyed;

static void
on_destroy(GtkWidget *w, gpointer data)
{
    destroyed = TRUE;
}

static void
test_kiosk_window_cannot_be_closed(void **state)
{
    KdConfig *config = kd_config_new_demo();
    KdWindow *kiosk = kd_window_new(NULL, config, &test_table, KD_WINDOW_KIOSK);
    KdWindow *windowed = kd_window_new(NULL, config, &test_table, 0);
    int w = 0, h = 0;

    gtk_widget_show(GTK_WIDGET(kiosk));
    gtk_widget_show(GTK_WIDGET(windowed));
    run_for(200);
    /* No window manager under Xvfb: keydesk sizes itself to the monitor anyway. */
    gtk_window_get_size(GTK_WINDOW(kiosk), &w, &h);
    assert_int_equal(w, 1280);
    assert_int_equal(h, 800);
    assert_false(gtk_window_get_decorated(GTK_WINDOW(kiosk)));

    destroyed = FALSE;
    g_signal_connect(kiosk, "destroy", G_CALLBACK(on_destroy), NULL);
    gtk_window_close(GTK_WINDOW(kiosk));
    run_for(100);
    assert_false(destroyed);

    g_signal_connect(windowed, "destroy", G_CALLBACK(on_destroy), NULL);
    gtk_window_close(GTK_WINDOW(windowed));
    run_for(100);
    assert_true(destroyed);

    gtk_widget_destroy(GTK_WIDGET(kiosk));
    iterate();
    kd_config_free(&config);
}

static void
test_touch_only_hides_pointer(void **state)
{
    KdConfig *config = kd_config_new_demo();
    KdConfig *touch_config = kd_config_new_demo();
    KdWindow *mouse, *touch;

    touch_config->touch_only = TRUE;
    mouse = kd_window_new(NULL, config, &test_table, 0);
    touch = kd_window_new(NULL, touch_config, &test_table, 0);
    gtk_widget_show(GTK_WIDGET(mouse));
    gtk_widget_show(GTK_WIDGET(touch));
    run_for(100);
    assert_null(gdk_window_get_cursor(gtk_widget_get_window(GTK_WIDGET(mouse))));
    assert_non_null(gdk_window_get_cursor(gtk_widget_get_window(GTK_WIDGET(touch))));
    gtk_widget_destroy(GTK_WIDGET(mouse));
    gtk_widget_destroy(GTK_WIDGET(touch));
    iterate();
    kd_config_free(&config);
    kd_config_free(&touch_config);
}

int
main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_welcome_offers_enabled_flows, setup, teardown),
        cmocka_unit_test_setup_teardown(test_flow_runs_to_done_and_wipes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_error_keeps_page, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cancel_stops_work_then_leaves, setup, teardown),
        cmocka_unit_test_setup_teardown(test_back_navigation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_staff_status_page, setup, teardown),
        cmocka_unit_test(test_kiosk_window_cannot_be_closed),
        cmocka_unit_test(test_touch_only_hides_pointer),
    };

    gtk_init(&argc, &argv);
    kd_ui_init();
    return cmocka_run_group_tests(tests, NULL, NULL);
}
