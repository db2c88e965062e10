/* hw-make-cred: keydesk's own time in a make-credential, without the soft key's computation.
 *
 * For each run: the wall time of the whole KdKey make-credential operation (thread hop, open,
 * getInfo, PIN token, makeCredential, signature check, attestationObject) minus the time the
 * soft key spent computing (softkey_get_busy_us). The baseline, in the same process on the same
 * soft key: a bare fido_dev_make_cred with the same PIN and request on a device opened once,
 * minus the same. Prints medians as "figure:" lines (stdout) and raw samples (stderr).
 *
 *   hw-make-cred [-n RUNS]   (default 100, at least 50)
 */
#include <fido.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hw/kd-key.h"
#include "softkey.h"

#define PIN       "482937"
#define CHALLENGE "YmVuY2htYXJrLWNoYWxsZW5nZS1mb3ItbWFrZS1jcmVkZW50aWFs"

static KdKeyCredentialRequest *
bench_request(void)
{
    KdKeyCredentialRequest *r = kd_key_credential_request_new();
    const char *cdj = "{\"type\":\"webauthn.create\",\"challenge\":\"" CHALLENGE "\","
                      "\"origin\":\"https://login.microsoft.com\",\"crossOrigin\":false}";

    r->rp_id = g_strdup("login.microsoft.com");
    r->rp_name = g_strdup("Microsoft");
    /* One user: the key replaces the person's discoverable credential each run, so it never
     * fills up. */
    r->user_id = g_bytes_new("OF:bench-user", 13);
    r->user_name = g_strdup("bench@contoso.com");
    r->user_display_name = g_strdup("Bench");
    r->client_data_json = g_bytes_new(cdj, strlen(cdj));
    r->resident_key = TRUE;
    r->uv_required = TRUE;
    r->hmac_secret = TRUE;
    r->cred_protect = 1;
    r->enforce_cred_protect = TRUE;
    return r;
}

typedef struct {
    GMainLoop *loop;
    KdKeyCredentialResult *result;
    GError *error;
} Wait;

static void
done(GObject *source, GAsyncResult *res, gpointer data)
{
    Wait *w = data;

    w->result = kd_key_make_credential_finish(KD_KEY(source), res, &w->error);
    g_main_loop_quit(w->loop);
}

static int
compare(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return x < y ? -1 : x > y;
}

static double
median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof(*v), compare);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* One KdKey make-credential; the overhead in ms. */
static double
run_keydesk(KdKey *key, SoftKey *sk, const KdKeyCredentialRequest *req, KdSecret *pin,
            GMainLoop *loop)
{
    Wait w = {loop, NULL, NULL};
    gint64 t0, t1;

    softkey_reset_busy_us(sk);
    t0 = g_get_monotonic_time();
    kd_key_make_credential_async(key, req, pin, NULL, done, &w);
    g_main_loop_run(loop);
    t1 = g_get_monotonic_time();
    if (w.result == NULL) {
        fprintf(stderr, "hw-make-cred: keydesk: %s\n", w.error->message);
        exit(1);
    }
    kd_key_credential_result_free(w.result);
    return (double)((t1 - t0) - (gint64)softkey_get_busy_us(sk)) / 1000.0;
}

/* One bare fido_dev_make_cred on an open device; the overhead in ms. */
static double
run_bare(fido_dev_t *dev, SoftKey *sk, const KdKeyCredentialRequest *req)
{
    fido_cred_t *cred = fido_cred_new();
    gsize cdj_len, uid_len;
    const guint8 *cdj = g_bytes_get_data(req->client_data_json, &cdj_len);
    const guint8 *uid = g_bytes_get_data(req->user_id, &uid_len);
    gint64 t0, t1;
    int r;

    softkey_reset_busy_us(sk);
    t0 = g_get_monotonic_time();
    if (fido_cred_set_type(cred, COSE_ES256) != FIDO_OK ||
        fido_cred_set_rp(cred, req->rp_id, req->rp_name) != FIDO_OK ||
        fido_cred_set_user(cred, uid, uid_len, req->user_name, req->user_display_name, NULL) !=
            FIDO_OK ||
        fido_cred_set_clientdata(cred, cdj, cdj_len) != FIDO_OK ||
        fido_cred_set_rk(cred, FIDO_OPT_TRUE) != FIDO_OK ||
        fido_cred_set_extensions(cred, FIDO_EXT_HMAC_SECRET) != FIDO_OK ||
        fido_cred_set_prot(cred, FIDO_CRED_PROT_UV_OPTIONAL) != FIDO_OK) {
        fprintf(stderr, "hw-make-cred: fido_cred_set_*\n");
        exit(1);
    }
    r = fido_dev_make_cred(dev, cred, PIN);
    t1 = g_get_monotonic_time();
    if (r != FIDO_OK) {
        fprintf(stderr, "hw-make-cred: bare: %s\n", fido_strerr(r));
        exit(1);
    }
    fido_cred_free(&cred);
    return (double)((t1 - t0) - (gint64)softkey_get_busy_us(sk)) / 1000.0;
}

int
main(int argc, char **argv)
{
    int runs = 100;
    SoftKey *sk;
    KdKeyDevice *device;
    KdKey *key;
    KdKeyCredentialRequest *req;
    KdSecret *pin;
    GMainLoop *loop;
    fido_dev_t *dev;
    double *ours, *bare;

    if (argc == 3 && strcmp(argv[1], "-n") == 0)
        runs = atoi(argv[2]);
    if (runs < 50) {
        fprintf(stderr, "usage: hw-make-cred [-n RUNS]   (RUNS >= 50)\n");
        return 2;
    }
    fido_init(0);
    sk = softkey_new();
    softkey_set_pin(sk, PIN);
    device = kd_key_device_new();
    device->id = g_strdup("virtual-bench");
    device->fido_path = g_strdup(softkey_get_path(sk));
    device->io = softkey_io();
    device->detection = KD_KEY_DETECTED_VIRTUAL;
    key = kd_key_new(device);
    req = bench_request();
    pin = kd_secret_new_from(PIN, strlen(PIN));
    loop = g_main_loop_new(NULL, FALSE);
    dev = fido_dev_new();
    if (fido_dev_set_io_functions(dev, softkey_io()) != FIDO_OK ||
        fido_dev_open(dev, softkey_get_path(sk)) != FIDO_OK) {
        fprintf(stderr, "hw-make-cred: cannot open the soft key\n");
        return 1;
    }
    ours = g_new(double, runs);
    bare = g_new(double, runs);
    /* Warm-up (first use of OpenSSL, the thread pool), not counted. */
    run_keydesk(key, sk, req, pin, loop);
    run_bare(dev, sk, req);
    /* Alternate, so drift of the machine touches both alike. */
    for (int i = 0; i < runs; i++) {
        ours[i] = run_keydesk(key, sk, req, pin, loop);
        bare[i] = run_bare(dev, sk, req);
        fprintf(stderr, "run %d keydesk %.3f ms bare %.3f ms\n", i, ours[i], bare[i]);
    }
    fprintf(stderr, "discoverable credentials on the key: %u\n", softkey_get_credential_count(sk));
    printf("figure: make_cred_overhead_ms %.3f ms\n", median(ours, runs));
    printf("figure: make_cred_baseline_overhead_ms %.3f ms\n", median(bare, runs));
    g_free(ours);
    g_free(bare);
    fido_dev_close(dev);
    fido_dev_free(&dev);
    g_main_loop_unref(loop);
    kd_secret_unref(pin);
    kd_key_credential_request_free(req);
    g_object_unref(key);
    kd_key_device_unref(device);
    softkey_free(sk);
    return 0;
}
