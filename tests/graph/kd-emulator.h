/* kd-emulator: a test fixture that runs tests/graph-emulator for a C test and talks to its
 * control API (blocking calls are fine here: this is test code, not the kiosk). */
#pragma once

#include <glib.h>
#include <json-glib/json-glib.h>

G_BEGIN_DECLS

typedef struct {
    char *url;       /* "https://127.0.0.1:PORT" */
    char *host_port; /* "127.0.0.1:PORT" */
    char *ca_file;   /* the emulator's test CA */
    char *dir;       /* temp dir: tenant.json, state/ */
    GPid pid;
} KdEmulator;

/*
 * Starts an emulator on the test tenant of tests/graph-emulator/tests/emutest.py. @tweak, if
 * not NULL, is Python run on that tenant dict `t` before it is written, e.g.
 * "t['tenant']['license'] = 'free'" or "t['settings']['accessTokenLifetimeSeconds'] = 2".
 * @faults_json, if not NULL, is a faults file body ({"rules": [...]}). Aborts the test (fail())
 * when the emulator does not print READY within 20 s.
 */
KdEmulator *kd_emulator_start(const char *tweak, const char *faults_json);
void kd_emulator_stop(KdEmulator **emu);

/* A blocking HTTPS call to the emulator (verified against its CA). Returns the parsed JSON
 * body (NULL if none) and stores the status in @status. For control calls and checks. */
JsonNode *kd_emulator_call(KdEmulator *emu, const char *method, const char *path,
                           const char *json_body, guint *status);

/* The request log (GET /_emulator/requests?since=SEQ) as a JSON array node; free with
 * json_node_unref. */
JsonNode *kd_emulator_requests(KdEmulator *emu, gint64 since);

/* Constants of the emutest tenant. */
#define KD_EMU_TENANT_ID     "9188040d-6c67-4c5b-b112-36a304b66dad"
#define KD_EMU_KIOSK_APP     "3f2a6c1e-8d4b-4e57-9a0f-2b7c1d9e4f60"
#define KD_EMU_KIOSK_SECRET  "kiosk~secret.value-for-tests-0123456789"
#define KD_EMU_READER_APP    "0b7f5a1e-2c3d-4e5f-8a9b-0c1d2e3f4a5b"
#define KD_EMU_DELEGATED_APP "5a6b7c8d-9e0f-4a1b-8c2d-3e4f5a6b7c8d"
#define KD_EMU_DOMAIN        "contoso.onmicrosoft.com"
#define KD_EMU_USER_ADMIN    "3b1c2d4e-0000-4000-8000-000000000001"
#define KD_EMU_USER_ADA      "3b1c2d4e-0000-4000-8000-000000000002"
#define KD_EMU_USER_BOB      "3b1c2d4e-0000-4000-8000-000000000003"
#define KD_EMU_USER_CAROL    "3b1c2d4e-0000-4000-8000-000000000004"
#define KD_EMU_USER_DAVE     "3b1c2d4e-0000-4000-8000-000000000005"
#define KD_EMU_GROUP         "7d7e7f80-1111-4222-8333-444455556666"

/* Slack for a timing check: @seconds, or ten times that when the test runs under valgrind
 * (KD_TEST_SLOW is set), where everything the client does is some 20× slower. */
double kd_test_slack(double seconds);

/* Runs the default main context until @done is TRUE or @timeout_ms pass; FALSE on timeout. */
gboolean kd_test_run_until(const gboolean *done, guint timeout_ms);

G_END_DECLS
