/* kd-key-error: the one error domain of the key operations, one code per situation a visitor
 * meets with a key in hand, each with a sentence they can act on. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

#define KD_KEY_ERROR (kd_key_error_quark())

typedef enum {
    KD_KEY_ERROR_FAILED,           /* something else went wrong (fido code in the info) */
    KD_KEY_ERROR_PIN_INVALID,      /* wrong PIN; info->pin_retries says how many tries are left */
    KD_KEY_ERROR_PIN_AUTH_BLOCKED, /* three wrong PINs in a row: unplug and plug in again */
    KD_KEY_ERROR_PIN_BLOCKED,      /* no tries left: only a reset helps (credentials are lost) */
    KD_KEY_ERROR_PIN_POLICY,       /* the new PIN breaks the key's rule (info->min_pin_length) */
    KD_KEY_ERROR_PIN_NOT_SET,      /* the key has no PIN yet: set one first */
    KD_KEY_ERROR_PIN_REQUIRED,     /* the key has a PIN and the operation needs it */
    KD_KEY_ERROR_PIN_ALREADY_SET,  /* "set PIN" on a key that has one: use "change PIN" */
    KD_KEY_ERROR_PIN_CHANGE_REQUIRED, /* forcePINChange: the PIN must be changed before use */
    KD_KEY_ERROR_ALREADY_REGISTERED,  /* CREDENTIAL_EXCLUDED: this key is already this person's */
    KD_KEY_ERROR_NOT_FIDO2,           /* U2F-only key: cannot hold a passkey for Entra */
    KD_KEY_ERROR_NO_TOUCH,            /* nobody touched the key in time */
    KD_KEY_ERROR_REMOVED,             /* the key was pulled out (or stopped answering) */
    KD_KEY_ERROR_CANCELLED,           /* the operation was cancelled (GCancellable) */
    KD_KEY_ERROR_TIMEOUT,             /* the key did not answer within the operation's budget */
    KD_KEY_ERROR_RESET_NOT_ALLOWED,   /* reset came too late after plug-in */
    KD_KEY_ERROR_UNSUPPORTED,         /* an option or extension the key does not have */
    KD_KEY_ERROR_KEY_FULL,            /* no room for another discoverable credential */
    KD_KEY_ERROR_BUSY,                /* another operation is running on this key */
    KD_KEY_ERROR_PROTOCOL,            /* the key answered something unexpected */
} KdKeyErrorCode;

#define KD_KEY_ERROR_N_CODES (KD_KEY_ERROR_PROTOCOL + 1)

/* What every KD_KEY_ERROR carries besides its message (GLib extended error private data). */
typedef struct {
    int fido_code;      /* the libfido2 return code it came from (FIDO_OK when none) */
    int pin_retries;    /* PIN tries left when known (PIN_INVALID, PIN_BLOCKED: 0), else -1 */
    int min_pin_length; /* the key's minimum PIN length (PIN_POLICY), else 0 */
} KdKeyErrorInfo;

GQuark kd_key_error_quark(void);

/* The extra information of a KD_KEY_ERROR, or NULL for errors of other domains. */
const KdKeyErrorInfo *kd_key_error_get_info(const GError *error);

/* The visitor sentence for a code in its general form ("Nobody touched the key in time. …").
 * The message of an error made by kd_key_error_new() is this sentence unless a more precise
 * one (with the number of tries left, the key's rule) was given. Never NULL. */
const char *kd_key_error_sentence(KdKeyErrorCode code);

/* Short fixed name of a code ("pin-invalid"), for logs and tests. */
const char *kd_key_error_code_name(KdKeyErrorCode code);

/* A new KD_KEY_ERROR; @info may be NULL (fido_code FIDO_OK, retries -1); @format NULL means the
 * code's sentence. */
GError *kd_key_error_new(KdKeyErrorCode code, const KdKeyErrorInfo *info, const char *format, ...)
    G_GNUC_PRINTF(3, 4);

/* The operation a libfido2 code came from: the same code means different things in different
 * places (PIN_POLICY_VIOLATION from makeCredential is a forced PIN change; NOT_ALLOWED is a
 * late reset; real keys answer odd codes, see kd-key-error.c). */
typedef enum {
    KD_KEY_OP_OPEN,
    KD_KEY_OP_INFO,
    KD_KEY_OP_SET_PIN,
    KD_KEY_OP_CHANGE_PIN,
    KD_KEY_OP_MAKE_CREDENTIAL,
    KD_KEY_OP_RESET,
    KD_KEY_OP_TOUCH,
    KD_KEY_OP_CONFIG,
} KdKeyOp;

/* Maps a libfido2 return code (not FIDO_OK) met during @op onto one KdKeyErrorCode. */
KdKeyErrorCode kd_key_error_code_from_fido(int fido_code, KdKeyOp op);

/* kd_key_error_code_from_fido() + kd_key_error_new(): @pin_retries (-1 unknown) and
 * @min_pin_length (0 unknown) complete the sentence where they matter. */
GError *kd_key_error_from_fido(int fido_code, KdKeyOp op, int pin_retries, int min_pin_length);

G_END_DECLS
