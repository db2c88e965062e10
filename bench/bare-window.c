/* bare-window: the floor for bench/startup, a plain GTK 3 window that reports its first frame. */
#include <glib-unix.h>
#include <gtk/gtk.h>
#include <stdio.h>

/*
 * Printed exactly like keydesk's --first-frame-marker, so bench/startup times both programs
 * from spawn to the same event: the frame clock's first "after-paint".
 */
static void
on_after_paint(GdkFrameClock *clock, gpointer user_data)
{
    gulong *handler = user_data;

    puts("FIRST_FRAME");
    fflush(stdout);
    g_signal_handler_disconnect(clock, *handler);
    *handler = 0;
}

/* The frame clock exists only once the window is realized. */
static void
on_realize(GtkWidget *win, gpointer user_data)
{
    gulong *handler = user_data;

    *handler = g_signal_connect(gtk_widget_get_frame_clock(win), "after-paint",
                                G_CALLBACK(on_after_paint), handler);
}

/* The harness stops every program with SIGTERM and checks for a clean exit code. */
static gboolean
on_sigterm(gpointer user_data)
{
    gtk_main_quit();
    return G_SOURCE_REMOVE;
}

int
main(int argc, char **argv)
{
    static gulong handler;
    GtkWidget *win;
    GtkWidget *label;

    gtk_init(&argc, &argv);

    win = gtk_window_new(GTK_WINDOW_TOPLEVEL);
    gtk_window_set_title(GTK_WINDOW(win), "bare-window");
    gtk_window_set_default_size(GTK_WINDOW(win), 1280, 800);
    label = gtk_label_new("bare-window");
    gtk_container_add(GTK_CONTAINER(win), label);

    g_signal_connect(win, "realize", G_CALLBACK(on_realize), &handler);
    g_signal_connect(win, "destroy", G_CALLBACK(gtk_main_quit), NULL);
    g_unix_signal_add(SIGTERM, on_sigterm, NULL);

    gtk_widget_show_all(win);
    gtk_main();
    return 0;
}
