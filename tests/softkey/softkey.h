/* softkey: a software CTAP 2.1 authenticator (libcbor + OpenSSL) for tests and demo mode.
 *
 * It speaks CTAPHID in 64-byte reports, so libfido2 reaches it two ways:
 *   - in-process: fido_dev_set_io_functions(dev, softkey_io()) and fido_dev_open(dev, path) with
 *     the path softkey_get_path() returns ("softkey://N");
 *   - full stack: as a hidraw node under umockdev (softkey-hidraw.h), so libfido2's own
 *     enumeration and hidraw backend run.
 * One SoftKey is one physical key: its state (PIN, retries, credentials, power-up time) lives
 * across opens until softkey_free(). Thread-safe: libfido2 may drive it from a worker thread
 * while the test thread changes its settings.
 */
#pragma once

#include <fido.h>
#include <glib.h>
#include <stdbool.h>
#include <stdint.h>

G_BEGIN_DECLS

typedef struct SoftKey SoftKey;

/* How the key answers a request that needs user presence. */
typedef enum {
    SOFTKEY_TOUCH_AUTO,  /* touched after touch_delay_ms (KEEPALIVE UPNEEDED while waiting) */
    SOFTKEY_TOUCH_NEVER, /* nobody touches: times out (CTAP2_ERR_USER_ACTION_TIMEOUT) */
    SOFTKEY_TOUCH_MANUAL /* waits for softkey_touch() */
} SoftKeyTouch;

typedef enum {
    SOFTKEY_FAULT_NONE,
    /* every read/write fails from now on, as if unplugged mid-message; with argument N > 0, only
     * after N more reports (either direction) went through; softkey_plug() or FAULT_NONE ends it */
    SOFTKEY_FAULT_REMOVED,
    /* the next answer is corrupted: a single-frame answer gets an unknown command byte, a longer
     * one a wrong continuation sequence number (libfido2: FIDO_ERR_RX) */
    SOFTKEY_FAULT_GARBLED,
    SOFTKEY_FAULT_SLOW,        /* every answer is delayed by the fault's argument (ms) */
    SOFTKEY_FAULT_CTAP_STATUS, /* the next CBOR command answers with status = argument */
} SoftKeyFault;

/* A default CTAP 2.1 key: versions U2F_V2 FIDO_2_0 FIDO_2_1 (no U2F over MSG: caps NMSG);
 * AAGUID "softkey-test-001"; options rk, up, plat false, alwaysUv (off, toggleable), credMgmt
 * (getCredsMetadata only), authnrCfg, clientPin (not set), pinUvAuthToken, setMinPINLength,
 * makeCredUvNotRqd; extensions credProtect hmac-secret; PIN protocols 2 and 1; minPINLength 4;
 * maxMsgSize 1200; 25 discoverable credentials (getInfo 0x14); packed attestation with an x5c
 * chain from the test attestation CA (softkey_attestation_ca_pem()); touch after 0 ms, a touch
 * wait gives up after 30 s (softkey_set_touch_timeout()); reset within 10 s of power-up. */
SoftKey *softkey_new(void);

/* A key that answers getInfo as a recorded model does: a record of
 * ../shared/reference/keys/getinfo/{mds,device}/NAME.json (versions, extensions, AAGUID, options,
 * minPINLength, forcePINChange, pinUvAuthProtocols, maxMsgSize, firmware, ...), members the
 * record does not state absent, and behaves like it (no credProtect on a 2.0 key, getPinToken
 * 0x05 without pinUvAuthToken, ...). clientPinState "set" → the key starts with the PIN
 * SOFTKEY_MODEL_PIN (softkey_get_model_pin()). A record without a FIDO_2_* version (u2f-only)
 * gives a key that answers CTAPHID_ERROR to CBOR commands and U2F REGISTER over CTAPHID_MSG, so
 * libfido2 falls back to U2F. The rules for partial records are at the top of softkey-model.c.
 * NULL with @error when the file cannot be read or is not such a record. */
SoftKey *softkey_new_from_model(const char *json_path, GError **error);

void softkey_free(SoftKey *key);

/* Settings; may be called at any time. */
void softkey_set_aaguid(SoftKey *key, const uint8_t aaguid[16]);
/* The minimum PIN length (floor 4) now and after reset, as a key configured so at the factory;
 * a PIN already set that is shorter makes forcePINChange true. */
void softkey_set_min_pin_length(SoftKey *key, unsigned len);
void softkey_set_touch(SoftKey *key, SoftKeyTouch mode, unsigned touch_delay_ms);
/* For SOFTKEY_TOUCH_MANUAL: a touch given while nothing waits counts for the next wait. */
void softkey_touch(SoftKey *key);
void softkey_set_fault(SoftKey *key, SoftKeyFault fault, int argument);
void softkey_set_self_attestation(SoftKey *key, bool self); /* packed without x5c */

/* State, as if the owner had used the key before: sets the PIN directly (NULL clears it). */
void softkey_set_pin(SoftKey *key, const char *pin);
/* Retry counters as getPINRetries reports them (8 fresh; 0 = blocked for good). */
unsigned softkey_get_pin_retries(SoftKey *key);
/* Unplug (reads/writes fail as if removed) and plug in again (power-up: clears the
 * three-wrong-PINs block, and opens the 10-second window in which reset is allowed). Plugging
 * in is a full power cycle even without an unplug first: a request in progress is dropped
 * and never answered. */
void softkey_unplug(SoftKey *key);
void softkey_plug(SoftKey *key);
/* Number of discoverable credentials stored. */
unsigned softkey_get_credential_count(SoftKey *key);

/* --- Added for tests (all thread-safe) ------------------------------------------------------ */

/* The PIN a model key starts with when its record says clientPinState "set" (NULL otherwise,
 * and for softkey_new()). It is always SOFTKEY_MODEL_PIN: 8 digits, so it satisfies every
 * recorded minPINLength (4, 6 or 8) and no trivial-PIN rule (no run, no repeat). */
#define SOFTKEY_MODEL_PIN "73918264"
const char *softkey_get_model_pin(SoftKey *key);
/* How long the key waits for a touch before it gives up (default 30000 ms) and the CTAP status
 * it then answers (0 = CTAP2_ERR_USER_ACTION_TIMEOUT 0x2f, libfido2 FIDO_ERR_USER_ACTION_TIMEOUT;
 * real keys also answer 0x27 OPERATION_DENIED or 0x3a ACTION_TIMEOUT). */
void softkey_set_touch_timeout(SoftKey *key, unsigned timeout_ms, uint8_t status);
/* True while a request waits for a touch (KEEPALIVE UPNEEDED is being sent). */
bool softkey_is_waiting_for_touch(SoftKey *key);
/* The next CBOR request with command byte @ctap_cmd (0 = any, e.g. 0x01 makeCredential,
 * 0x06 clientPIN) answers only @status (one shot; SOFTKEY_FAULT_CTAP_STATUS is ctap_cmd 0). */
void softkey_set_status_fault(SoftKey *key, uint8_t ctap_cmd, uint8_t status);
/* The key's clock: time-dependent rules (reset only within the reset window after power-up,
 * pinUvAuthToken lifetime 30 s) see the clock moved forward by @ms, so no test sleeps. */
void softkey_advance_clock(SoftKey *key, unsigned ms);
/* The reset window after power-up (default 10000 ms). */
void softkey_set_reset_window(SoftKey *key, unsigned ms);
/* True between softkey_plug() (or creation) and softkey_unplug() or a REMOVED fault. */
bool softkey_is_plugged(SoftKey *key);
/* The PIN/UV auth protocols getInfo lists (e.g. {1} for a CTAP 2.0-style key). */
void softkey_set_pin_protocols(SoftKey *key, const uint8_t *protocols, size_t n);
/* State as getInfo reports it. */
bool softkey_has_pin(SoftKey *key);
bool softkey_get_force_pin_change(SoftKey *key);
bool softkey_get_always_uv(SoftKey *key);
unsigned softkey_get_min_pin_length(SoftKey *key);

/* In-process transport: the path libfido2 must be given to fido_dev_open() for this key, and
 * the I/O functions that route it here. */
const char *softkey_get_path(SoftKey *key);
const fido_dev_io_t *softkey_io(void);

/* The PEM of the test attestation root CA (for verifiers), and the key's current AAGUID. */
const char *softkey_attestation_ca_pem(void);
void softkey_get_aaguid(SoftKey *key, uint8_t aaguid[16]);

/* Time spent computing inside the key (crypto, CBOR) since the last reset of the counter, in
 * microseconds: lets bench/hw subtract the key's own work from a make-credential. */
uint64_t softkey_get_busy_us(SoftKey *key);
void softkey_reset_busy_us(SoftKey *key);

G_END_DECLS
