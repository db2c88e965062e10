/* test-softkey-hidraw.c: the soft key as a USB FIDO key under umockdev, reached the way
 * production reaches a real key: libfido2's fido_dev_info_manifest (libudev enumeration, report
 * descriptor check) and its hidraw backend on /dev/hidrawN. Run under umockdev-wrapper.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "softkey-hidraw.h"

typedef struct {
    UMockdevTestbed *testbed;
    SoftKey *key;
    SoftKeyHidraw *hidraw;
} Fixture;

static int
setup(void **state)
{
    Fixture *f = g_new0(Fixture, 1);
    GError *error = NULL;

    f->testbed = umockdev_testbed_new();
    f->key = softkey_new();
    f->hidraw = softkey_hidraw_attach(f->key, f->testbed, 1, NULL, &error);
    if (f->hidraw == NULL)
        fail_msg("attach: %s", error->message);
    *state = f;
    return 0;
}

static int
teardown(void **state)
{
    Fixture *f = *state;

    softkey_hidraw_free(f->hidraw);
    softkey_free(f->key);
    g_object_unref(f->testbed);
    g_free(f);
    return 0;
}

/* The FIDO devices libfido2 finds: their count; the first one's info in @out (if any). */
static size_t
manifest(char **path, char **manufacturer, char **product, int16_t *vid, int16_t *pid)
{
    fido_dev_info_t *list = fido_dev_info_new(8);
    size_t n = 0;

    assert_int_equal(fido_dev_info_manifest(list, 8, &n), FIDO_OK);
    if (n > 0 && path != NULL) {
        const fido_dev_info_t *di = fido_dev_info_ptr(list, 0);
        *path = g_strdup(fido_dev_info_path(di));
        *manufacturer = g_strdup(fido_dev_info_manufacturer_string(di));
        *product = g_strdup(fido_dev_info_product_string(di));
        *vid = fido_dev_info_vendor(di);
        *pid = fido_dev_info_product(di);
    }
    fido_dev_info_free(&list, 8);
    return n;
}

static fido_dev_t *
open_path(const char *path)
{
    fido_dev_t *dev = fido_dev_new();
    int r = fido_dev_open(dev, path);

    if (r != FIDO_OK)
        fail_msg("fido_dev_open(%s): %s", path, fido_strerr(r));
    return dev;
}

static int
make_cred(fido_dev_t *dev, const char *pin, fido_cred_t **out)
{
    static const unsigned char cdh[32] = {0x55};
    static const unsigned char uid[] = {9, 9};
    fido_cred_t *cred = fido_cred_new();
    int r;

    fido_cred_set_type(cred, COSE_ES256);
    fido_cred_set_clientdata_hash(cred, cdh, sizeof(cdh));
    fido_cred_set_rp(cred, "login.microsoft.com", "Microsoft");
    fido_cred_set_user(cred, uid, sizeof(uid), "alice", "Alice", NULL);
    fido_cred_set_rk(cred, FIDO_OPT_TRUE);
    fido_cred_set_prot(cred, FIDO_CRED_PROT_UV_OPTIONAL_WITH_ID);
    r = fido_dev_make_cred(dev, cred, pin);
    if (out != NULL)
        *out = cred;
    else
        fido_cred_free(&cred);
    return r;
}

static void
test_manifest_and_make_cred(void **state)
{
    Fixture *f = *state;
    char *path = NULL, *manufacturer = NULL, *product = NULL;
    int16_t vid = 0, pid = 0;
    fido_dev_t *dev;
    fido_cred_t *cred;

    assert_int_equal(manifest(&path, &manufacturer, &product, &vid, &pid), 1);
    assert_string_equal(path, softkey_hidraw_get_devnode(f->hidraw));
    assert_string_equal(manufacturer, "Yubico");
    assert_string_equal(product, "YubiKey OTP+FIDO+CCID");
    assert_int_equal(vid, 0x1050);
    assert_int_equal(pid, 0x0407);

    dev = open_path(path);
    assert_true(fido_dev_is_fido2(dev));
    assert_false(fido_dev_has_pin(dev));
    assert_int_equal(fido_dev_set_pin(dev, "482915", NULL), FIDO_OK);
    assert_int_equal(make_cred(dev, "482915", &cred), FIDO_OK);
    assert_int_equal(fido_cred_verify(cred), FIDO_OK);
    assert_int_equal(fido_cred_flags(cred) & 0x45, 0x45);
    assert_int_equal(softkey_get_credential_count(f->key), 1);
    fido_cred_free(&cred);
    fido_dev_close(dev);
    fido_dev_free(&dev);

    /* a fresh open sees the PIN (getInfo clientPin true) */
    dev = open_path(path);
    assert_true(fido_dev_has_pin(dev));
    fido_dev_close(dev);
    fido_dev_free(&dev);
    g_free(path);
    g_free(manufacturer);
    g_free(product);
}

typedef struct {
    fido_dev_t *dev;
    int result;
} Job;

static gpointer
make_cred_thread(gpointer data)
{
    Job *job = data;

    job->result = make_cred(job->dev, NULL, NULL);
    return NULL;
}

static void
test_unplug_mid_operation(void **state)
{
    Fixture *f = *state;
    Job job = {0};
    GThread *t;
    gint64 t0;
    GError *error = NULL;
    char *path = NULL, *m = NULL, *p = NULL;
    int16_t vid, pid;

    softkey_set_touch(f->key, SOFTKEY_TOUCH_MANUAL, 0);
    job.dev = open_path(softkey_hidraw_get_devnode(f->hidraw));
    t = g_thread_new("mc", make_cred_thread, &job);
    for (int i = 0; i < 1000 && !softkey_is_waiting_for_touch(f->key); i++)
        g_usleep(2000);
    assert_true(softkey_is_waiting_for_touch(f->key));
    g_usleep(200 * 1000); /* KEEPALIVE UPNEEDED flow through the hidraw node meanwhile */
    t0 = g_get_monotonic_time();
    softkey_hidraw_unplug(f->hidraw);
    g_thread_join(t);
    assert_int_equal(job.result, FIDO_ERR_RX);
    assert_true(g_get_monotonic_time() - t0 < 2 * G_USEC_PER_SEC); /* an error, not a hang */
    fido_dev_close(job.dev);
    fido_dev_free(&job.dev);
    assert_int_equal(manifest(NULL, NULL, NULL, NULL, NULL), 0);

    /* plugged back in: found and usable again */
    assert_true(softkey_hidraw_replug(f->hidraw, &error));
    softkey_set_touch(f->key, SOFTKEY_TOUCH_AUTO, 0);
    assert_int_equal(manifest(&path, &m, &p, &vid, &pid), 1);
    job.dev = open_path(path);
    assert_int_equal(make_cred(job.dev, NULL, NULL), FIDO_OK);
    fido_dev_close(job.dev);
    fido_dev_free(&job.dev);
    g_free(path);
    g_free(m);
    g_free(p);
}

static void
test_two_keys(void **state)
{
    Fixture *f = *state;
    SoftKeyHidrawInfo info = {0x20a0, 0x42b1, "Nitrokey", "Nitrokey 3", "N3"};
    SoftKey *key2 = softkey_new();
    GError *error = NULL;
    SoftKeyHidraw *h2 = softkey_hidraw_attach(key2, f->testbed, 2, &info, &error);
    fido_dev_info_t *list = fido_dev_info_new(8);
    size_t n = 0;
    bool seen = false;

    assert_non_null(h2);
    assert_string_not_equal(softkey_hidraw_get_devnode(h2), softkey_hidraw_get_devnode(f->hidraw));
    assert_int_equal(fido_dev_info_manifest(list, 8, &n), FIDO_OK);
    assert_int_equal(n, 2);
    for (size_t i = 0; i < n; i++) {
        const fido_dev_info_t *di = fido_dev_info_ptr(list, i);
        if (strcmp(fido_dev_info_path(di), softkey_hidraw_get_devnode(h2)) == 0) {
            assert_string_equal(fido_dev_info_manufacturer_string(di), "Nitrokey");
            assert_int_equal((uint16_t)fido_dev_info_vendor(di), 0x20a0);
            seen = true;
        }
    }
    assert_true(seen);
    fido_dev_info_free(&list, 8);
    {
        fido_dev_t *dev = open_path(softkey_hidraw_get_devnode(h2));
        assert_int_equal(make_cred(dev, NULL, NULL), FIDO_OK);
        fido_dev_close(dev);
        fido_dev_free(&dev);
    }
    assert_int_equal(softkey_get_credential_count(key2), 1);
    assert_int_equal(softkey_get_credential_count(f->key), 0);
    softkey_hidraw_free(h2);
    softkey_free(key2);
}

/* Faults reach libfido2's hidraw backend too: slow answers arrive late, garbled ones fail. */
static void
test_faults(void **state)
{
    Fixture *f = *state;
    fido_cbor_info_t *ci = fido_cbor_info_new();
    fido_dev_t *dev;
    gint64 t0;

    softkey_set_fault(f->key, SOFTKEY_FAULT_SLOW, 150);
    t0 = g_get_monotonic_time();
    dev = open_path(softkey_hidraw_get_devnode(f->hidraw)); /* INIT and getInfo, 150 ms each */
    assert_true(g_get_monotonic_time() - t0 >= 300 * 1000);
    softkey_set_fault(f->key, SOFTKEY_FAULT_GARBLED, 0);
    assert_int_equal(fido_dev_get_cbor_info(dev, ci), FIDO_ERR_RX);
    fido_dev_close(dev);
    fido_dev_free(&dev);
    dev = open_path(softkey_hidraw_get_devnode(f->hidraw));
    assert_int_equal(fido_dev_get_cbor_info(dev, ci), FIDO_OK);
    fido_dev_close(dev);
    fido_dev_free(&dev);
    fido_cbor_info_free(&ci);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_manifest_and_make_cred, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unplug_mid_operation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_two_keys, setup, teardown),
        cmocka_unit_test_setup_teardown(test_faults, setup, teardown),
    };

    fido_init(FIDO_DISABLE_U2F_FALLBACK);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
