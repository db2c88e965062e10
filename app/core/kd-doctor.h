/* kd-doctor: `keydesk doctor`: checks, read-only, that the tenant is set up for what this desk's
 * configuration enables, and says exactly what to change in Entra where it is not. */
#pragma once

#include <gio/gio.h>
#include <stdio.h>

#include "core/kd-config.h"

G_BEGIN_DECLS

typedef enum {
    KD_DOCTOR_PASS,
    KD_DOCTOR_WARN, /* works, with a limit the installer should know about */
    KD_DOCTOR_FAIL, /* something the configuration enables will not work */
    KD_DOCTOR_SKIP, /* could not be checked from here (and why) */
} KdDoctorStatus;

typedef struct {
    KdDoctorStatus status;
    char *name; /* "FIDO2 policy" */
    char *text; /* one sentence: what is wrong, why it matters, what to change where */
} KdDoctorCheck;

typedef struct {
    GPtrArray *checks;    /* KdDoctorCheck, in the order they ran */
    gboolean unreachable; /* Graph or the identity platform could not be reached (network, TLS) */
} KdDoctorReport;

void kd_doctor_report_free(KdDoctorReport *report);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(KdDoctorReport, kd_doctor_report_free)

/*
 * Runs every check for @config. Never writes anything to the tenant: it gets a token with the
 * app credential (if one is configured), reads what the enabled features need and reads the
 * policies they depend on. BLOCKING (it iterates a private main context): for the command line,
 * never for the kiosk's own main loop.
 */
KdDoctorReport *kd_doctor_run(const KdConfig *config, GCancellable *cancellable);

/* 0 when every check passed or only warned/skipped, 1 when one failed, EX_UNAVAILABLE (69) when
 * Graph or the identity platform could not be reached at all. */
int kd_doctor_report_exit_status(const KdDoctorReport *report);

/* "PASS  Name: text" lines, then a one-line summary. */
void kd_doctor_report_print(const KdDoctorReport *report, FILE *out);

const char *kd_doctor_status_name(KdDoctorStatus status);

/* `keydesk doctor --config FILE`: loads @config_path (problems to @err and EX_CONFIG, 78, when it
 * is invalid), runs the checks and prints them to @out. Returns the exit status. */
int kd_doctor_main(const char *config_path, FILE *out, FILE *err);

G_END_DECLS
