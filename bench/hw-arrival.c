/* hw-arrival: how long from a USB "add" uevent to kd-usb-watch's "key-added" (main loop
 * running, report descriptor from sysfs, string descriptors over the emulated usbfs), against a
 * baseline in the same process: the same uevent reaching a bare libusb hotplug callback pumped
 * by libusb_handle_events (no GLib, no descriptors). Run under umockdev-wrapper:
 *
 *   umockdev-wrapper build/bench/hw-arrival [-n ARRIVALS]
 *
 * Prints "figure: arrival_latency_ms <median> ms", "figure: arrival_latency_p90_ms <p90> ms",
 * "figure: arrival_latency_baseline_ms <median> ms", "figure: arrival_latency_baseline_p90_ms".
 */
#include <libusb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hw/kd-usb-watch.h"
#include "kd-usb-testbed.h"

#define PORT       1
#define TIMEOUT_US (5 * G_USEC_PER_SEC)

static const KdUsbTestDevice key = {
    .vendor_id = 0x1050,
    .product_id = 0x0407,
    .manufacturer = "Yubico",
    .product = "YubiKey OTP+FIDO+CCID",
    .serial = "0012345678",
};

typedef struct {
    gint64 t_event; /* monotonic µs when the event reached us, 0 until then */
    guint removed;
} Probe;

static int
cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double
percentile(double *v, guint n, double p)
{
    qsort(v, n, sizeof(*v), cmp_double);
    return v[MIN(n - 1, (guint)(p * (n - 1) + 0.5))];
}

static int LIBUSB_CALL
baseline_cb(libusb_context *ctx, libusb_device *dev, libusb_hotplug_event event, void *data)
{
    Probe *probe = data;

    if (event == LIBUSB_HOTPLUG_EVENT_DEVICE_ARRIVED)
        probe->t_event = g_get_monotonic_time();
    else
        probe->removed++;
    return 0;
}

/* A bare libusb hotplug callback; @ms gets one latency per arrival. */
static gboolean
run_baseline(KdUsbTestbed *tb, guint n, double *ms)
{
    libusb_context *ctx = NULL;
    libusb_hotplug_callback_handle handle;
    Probe probe = {0};
    gboolean ok = TRUE;

    if (libusb_init(&ctx) != 0 ||
        libusb_hotplug_register_callback(
            ctx, LIBUSB_HOTPLUG_EVENT_DEVICE_ARRIVED | LIBUSB_HOTPLUG_EVENT_DEVICE_LEFT, 0,
            LIBUSB_HOTPLUG_MATCH_ANY, LIBUSB_HOTPLUG_MATCH_ANY, LIBUSB_HOTPLUG_MATCH_ANY,
            baseline_cb, &probe, &handle) != 0) {
        fprintf(stderr, "hw-arrival: libusb hotplug unavailable\n");
        return FALSE;
    }
    for (guint i = 0; i < n && ok; i++) {
        gint64 t0, deadline;
        guint removed = probe.removed;

        kd_usb_testbed_add(tb, PORT, &key);
        probe.t_event = 0;
        t0 = g_get_monotonic_time();
        kd_usb_testbed_plug(tb, PORT);
        deadline = t0 + TIMEOUT_US;
        while (probe.t_event == 0 && g_get_monotonic_time() < deadline) {
            struct timeval tv = {0, 100000};
            libusb_handle_events_timeout_completed(ctx, &tv, NULL);
        }
        if (probe.t_event == 0) {
            fprintf(stderr, "hw-arrival: baseline arrival %u never came\n", i);
            ok = FALSE;
            break;
        }
        ms[i] = (double)(probe.t_event - t0) / 1000.0;
        kd_usb_testbed_unplug(tb, PORT);
        while (probe.removed == removed && g_get_monotonic_time() < deadline) {
            struct timeval tv = {0, 100000};
            libusb_handle_events_timeout_completed(ctx, &tv, NULL);
        }
    }
    libusb_hotplug_deregister_callback(ctx, handle);
    libusb_exit(ctx);
    return ok;
}

static void
on_added(KdUsbWatch *watch, KdKeyDevice *device, Probe *probe)
{
    probe->t_event = g_get_monotonic_time();
}

static void
on_removed(KdUsbWatch *watch, KdKeyDevice *device, Probe *probe)
{
    probe->removed++;
}

/* kd-usb-watch on the GLib main loop; @ms gets one latency per arrival. */
static gboolean
run_watch(KdUsbTestbed *tb, guint n, double *ms)
{
    g_autoptr(KdUsbWatch) watch = kd_usb_watch_new();
    g_autoptr(GError) error = NULL;
    Probe probe = {0};
    gboolean ok = TRUE;

    g_signal_connect(watch, "key-added", G_CALLBACK(on_added), &probe);
    g_signal_connect(watch, "key-removed", G_CALLBACK(on_removed), &probe);
    if (!kd_usb_watch_start(watch, &error)) {
        fprintf(stderr, "hw-arrival: %s\n", error->message);
        return FALSE;
    }
    while (g_main_context_iteration(NULL, FALSE))
        ;
    for (guint i = 0; i < n; i++) {
        gint64 t0, deadline;
        guint removed = probe.removed;

        kd_usb_testbed_add(tb, PORT, &key);
        probe.t_event = 0;
        t0 = g_get_monotonic_time();
        kd_usb_testbed_plug(tb, PORT);
        deadline = t0 + TIMEOUT_US;
        /* The main loop blocks in poll() on libusb's fds, as in keydesk. */
        while (probe.t_event == 0 && g_get_monotonic_time() < deadline)
            g_main_context_iteration(NULL, TRUE);
        if (probe.t_event == 0) {
            fprintf(stderr, "hw-arrival: key-added %u never came\n", i);
            ok = FALSE;
            break;
        }
        ms[i] = (double)(probe.t_event - t0) / 1000.0;
        kd_usb_testbed_unplug(tb, PORT);
        while (probe.removed == removed && g_get_monotonic_time() < deadline)
            g_main_context_iteration(NULL, TRUE);
    }
    kd_usb_watch_stop(watch);
    return ok;
}

int
main(int argc, char **argv)
{
    guint n = 100;
    g_autofree double *base = NULL, *lat = NULL;
    KdUsbTestbed *tb;
    const char *preload;
    gboolean ok;

    if (argc == 3 && g_str_equal(argv[1], "-n"))
        n = (guint)MAX(1, atoi(argv[2]));
    else if (argc != 1) {
        fprintf(stderr, "usage: umockdev-wrapper %s [-n ARRIVALS]\n", argv[0]);
        return 2;
    }
    preload = g_getenv("LD_PRELOAD");
    if (preload == NULL || strstr(preload, "umockdev") == NULL) {
        fprintf(stderr, "hw-arrival: run it under umockdev-wrapper (no event arrives without)\n");
        return 2;
    }
    base = g_new0(double, n);
    lat = g_new0(double, n);
    tb = kd_usb_testbed_new(); /* before any libusb_init */
    ok = run_baseline(tb, n, base) && run_watch(tb, n, lat);
    kd_usb_testbed_free(tb);
    if (!ok)
        return 1;
    printf("arrivals: %u (umockdev uevent \"add\" -> event)\n", n);
    printf("figure: arrival_latency_ms %.3f ms\n", percentile(lat, n, 0.5));
    printf("figure: arrival_latency_p90_ms %.3f ms\n", percentile(lat, n, 0.9));
    printf("figure: arrival_latency_baseline_ms %.3f ms\n", percentile(base, n, 0.5));
    printf("figure: arrival_latency_baseline_p90_ms %.3f ms\n", percentile(base, n, 0.9));
    return 0;
}
