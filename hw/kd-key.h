/* kd-key: operations on one security key (libfido2 in a GTask worker thread): info, PIN, the
 * Entra credential, guided reset, touch to choose, CTAP 2.1 PIN settings. */
#pragma once

#include <gio/gio.h>

#include "base/kd-secret.h"
#include "hw/kd-key-credential.h"
#include "hw/kd-key-device.h"
#include "hw/kd-key-error.h"
#include "hw/kd-key-policy.h"
#include "hw/kd-usb-watch.h"

G_BEGIN_DECLS

/*
 * Every operation is asynchronous: it runs libfido2 in a worker thread and calls @callback on
 * the thread-default main context of the caller. One operation at a time per key: a second one
 * fails at once with KD_KEY_ERROR_BUSY (the kiosk never queues touches). Each operation opens
 * the key, works, and closes it again, so a key that was pulled out and plugged back in just
 * works on the next operation.
 *
 * Cancelling @cancellable sends CTAPHID_CANCEL (fido_dev_cancel) and the operation fails with
 * KD_KEY_ERROR_CANCELLED. Every operation has a time budget (kd_key_set_timeouts): after it the
 * key is cancelled the same way and the operation fails with KD_KEY_ERROR_NO_TOUCH when it was
 * waiting for a touch, KD_KEY_ERROR_TIMEOUT otherwise. All errors are KD_KEY_ERROR.
 *
 * PINs are KdSecret: the operation holds a reference while it runs; libfido2's copy is on the
 * worker's stack and in libfido2's own buffers, which it wipes.
 */

#define KD_TYPE_KEY (kd_key_get_type())
G_DECLARE_FINAL_TYPE(KdKey, kd_key, KD, KEY, GObject)

KdKey *kd_key_new(KdKeyDevice *device);
/* The device now (after a guided reset it is the one that came back). Not a new reference. */
KdKeyDevice *kd_key_get_device(KdKey *key);
gboolean kd_key_is_busy(KdKey *key);
/* Budgets in ms: @answer_ms for exchanges without a touch (default 5000), @touch_ms for
 * operations that wait for a touch (default 30000; make-credential uses the request's
 * timeout_ms when set). 0 leaves a value unchanged. */
void kd_key_set_timeouts(KdKey *key, guint answer_ms, guint touch_ms);

/* --- info ------------------------------------------------------------------------------------- */

typedef enum {
    KD_KEY_CTAP_U2F,     /* no CTAP2 at all: cannot hold a passkey */
    KD_KEY_CTAP_2_0,     /* FIDO_2_0 */
    KD_KEY_CTAP_2_1_PRE, /* FIDO_2_1_PRE */
    KD_KEY_CTAP_2_1,     /* FIDO_2_1 (or later) */
} KdKeyCtap;

typedef enum {
    KD_KEY_OPTION_ABSENT, /* the key does not list the option: not supported */
    KD_KEY_OPTION_FALSE,  /* supported, currently off (clientPin: no PIN set yet) */
    KD_KEY_OPTION_TRUE,
} KdKeyOption;

typedef struct {
    gboolean fido2; /* FALSE: U2F only (the rest is mostly empty) */
    KdKeyCtap ctap;
    char **versions;   /* getInfo versions, NULL-terminated, never NULL */
    char **extensions; /* getInfo extensions, NULL-terminated, never NULL */
    guint8 aaguid[16];
    char *aaguid_string;
    char *model;                  /* from the catalogue: "YubiKey 5 Series with NFC", or NULL */
    char *vendor;                 /* from the catalogue, or NULL */
    KdKeyAttestation attestation; /* what the catalogue says it can prove */
    KdKeyOption client_pin;       /* TRUE: a PIN is set; FALSE: PIN supported, not set */
    KdKeyOption uv;               /* built-in user verification (fingerprint) */
    KdKeyOption rk;
    KdKeyOption cred_mgmt;
    KdKeyOption always_uv;
    KdKeyOption set_min_pin_length;
    KdKeyOption pin_uv_auth_token;
    KdKeyOption authnr_cfg;
    KdKeyOption make_cred_uv_not_rqd;
    gboolean cred_protect; /* the credProtect extension */
    gboolean hmac_secret;
    guint min_pin_length;          /* the key's minimum, 4 when getInfo does not say */
    gboolean min_pin_length_known; /* getInfo had minPINLength */
    guint64 firmware_version;      /* getInfo firmwareVersion, 0 when absent */
    char *firmware;                /* "5.4.3" (YubiKey-style bytes) or the number; NULL if absent */
    gint64 remaining_credentials;  /* remainingDiscoverableCredentials, -1 when not reported */
    guint64 max_msg_size;
    gboolean pin_set;
    int pin_retries;           /* -1 when unknown (no PIN support) */
    int uv_retries;            /* -1 when unknown (no built-in UV, or the key would not say) */
    gboolean force_pin_change; /* forcePINChange: the PIN must be changed before use */
    /* CTAPHID INIT: device version and capabilities. */
    guint8 device_major, device_minor, device_build, capabilities;
} KdKeyInfo;

void kd_key_info_free(KdKeyInfo *info);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(KdKeyInfo, kd_key_info_free)

void kd_key_get_info_async(KdKey *key, GCancellable *cancellable, GAsyncReadyCallback callback,
                           gpointer user_data);
KdKeyInfo *kd_key_get_info_finish(KdKey *key, GAsyncResult *result, GError **error);

/* --- PIN -------------------------------------------------------------------------------------- */

/* Sets the first PIN of a key that has none. @pin is checked first (kd-pin-rules.h) against
 * the key's minimum length: a bad PIN never reaches the key (KD_KEY_ERROR_PIN_POLICY). A key
 * with a PIN already: KD_KEY_ERROR_PIN_ALREADY_SET. */
void kd_key_set_pin_async(KdKey *key, KdSecret *pin, GCancellable *cancellable,
                          GAsyncReadyCallback callback, gpointer user_data);
gboolean kd_key_set_pin_finish(KdKey *key, GAsyncResult *result, GError **error);

/* Changes the PIN (also what a forced PIN change needs). @new_pin is checked as above; a wrong
 * @old_pin is KD_KEY_ERROR_PIN_INVALID with the tries left in the error info. */
void kd_key_change_pin_async(KdKey *key, KdSecret *old_pin, KdSecret *new_pin,
                             GCancellable *cancellable, GAsyncReadyCallback callback,
                             gpointer user_data);
gboolean kd_key_change_pin_finish(KdKey *key, GAsyncResult *result, GError **error);

/* --- the Entra credential --------------------------------------------------------------------- */

/*
 * Makes the credential of @request (copied) with @pin (may be NULL for a key without PIN
 * support that verifies the user itself). Before anything is sent: a U2F-only key is
 * KD_KEY_ERROR_NOT_FIDO2, a key with forcePINChange is KD_KEY_ERROR_PIN_CHANGE_REQUIRED, a
 * PIN-capable key without a PIN is KD_KEY_ERROR_PIN_NOT_SET when @request needs UV, a key with
 * a PIN and no @pin is KD_KEY_ERROR_PIN_REQUIRED. The key waits for a touch (timeout_ms of the
 * request, else the touch budget). A key already registered for this person (excludeCredentials)
 * is KD_KEY_ERROR_ALREADY_REGISTERED.
 */
void kd_key_make_credential_async(KdKey *key, const KdKeyCredentialRequest *request, KdSecret *pin,
                                  GCancellable *cancellable, GAsyncReadyCallback callback,
                                  gpointer user_data);
KdKeyCredentialResult *kd_key_make_credential_finish(KdKey *key, GAsyncResult *result,
                                                     GError **error);

/* --- guided reset ----------------------------------------------------------------------------- */

typedef enum {
    KD_KEY_RESET_REMOVE, /* "Remove the key." */
    KD_KEY_RESET_INSERT, /* "Insert it again." */
    KD_KEY_RESET_TOUCH,  /* "Touch it now." (the reset request has been sent) */
} KdKeyResetState;

/* "Remove the key now.", "Insert the key again.", "Touch the key now." */
const char *kd_key_reset_state_sentence(KdKeyResetState state);

typedef void (*KdKeyResetProgress)(KdKey *key, KdKeyResetState state, gpointer user_data);

/*
 * Resets the key (erases its credentials and PIN). Keys accept a reset only within seconds of
 * being plugged in, so: reports KD_KEY_RESET_REMOVE, waits for @watch's "key-removed" of this
 * key, reports KD_KEY_RESET_INSERT, waits for "key-added" of the same key (same port id, or
 * same vendor/product/serial), adopts that device (kd_key_get_device), reports
 * KD_KEY_RESET_TOUCH and sends the reset at once. @progress runs on the caller's context. The
 * wait for removal and re-insertion is bounded by @replug_timeout_ms (0 = 60 s):
 * KD_KEY_ERROR_TIMEOUT. A key that refuses (too late): KD_KEY_ERROR_RESET_NOT_ALLOWED.
 */
void kd_key_reset_async(KdKey *key, KdUsbWatch *watch, guint replug_timeout_ms,
                        KdKeyResetProgress progress, gpointer progress_data,
                        GCancellable *cancellable, GAsyncReadyCallback callback,
                        gpointer user_data);
gboolean kd_key_reset_finish(KdKey *key, GAsyncResult *result, GError **error);

/* --- touch to choose -------------------------------------------------------------------------- */

/*
 * Asks every key of @keys (KdKey, at least one) to blink and returns the one that is touched
 * first (a new reference); the others are cancelled. Keys that cannot be opened are skipped;
 * none left: KD_KEY_ERROR_REMOVED. All of @keys are busy meanwhile. The touch budget of the first
 * key applies (KD_KEY_ERROR_NO_TOUCH).
 */
void kd_key_choose_async(GPtrArray *keys, GCancellable *cancellable, GAsyncReadyCallback callback,
                         gpointer user_data);
KdKey *kd_key_choose_finish(GAsyncResult *result, GError **error);

/* --- CTAP 2.1 settings (authenticatorConfig) -------------------------------------------------- */

/* Raises the key's minimum PIN length (keys never lower it: KD_KEY_ERROR_PIN_POLICY). A key
 * without setMinPINLength: KD_KEY_ERROR_UNSUPPORTED. @pin may be NULL on a key without a PIN. */
void kd_key_set_min_pin_length_async(KdKey *key, guint min_length, KdSecret *pin,
                                     GCancellable *cancellable, GAsyncReadyCallback callback,
                                     gpointer user_data);
gboolean kd_key_set_min_pin_length_finish(KdKey *key, GAsyncResult *result, GError **error);

/* Makes the key demand a new PIN before its next use (forcePINChange). */
void kd_key_force_pin_change_async(KdKey *key, KdSecret *pin, GCancellable *cancellable,
                                   GAsyncReadyCallback callback, gpointer user_data);
gboolean kd_key_force_pin_change_finish(KdKey *key, GAsyncResult *result, GError **error);

G_END_DECLS
