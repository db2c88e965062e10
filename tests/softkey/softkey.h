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
    SOFTKEY_FAULT_REMOVED,     /* every read/write fails from now on, as if unplugged mid-message */
    SOFTKEY_FAULT_GARBLED,     /* the next answer's frames are corrupted (wrong CID / sequence) */
    SOFTKEY_FAULT_SLOW,        /* every answer is delayed by the fault's argument (ms) */
    SOFTKEY_FAULT_CTAP_STATUS, /* the next CBOR command answers with status = argument */
} SoftKeyFault;

/* A default CTAP 2.1 key: versions U2F_V2 FIDO_2_0 FIDO_2_1, clientPin (not set), rk, up,
 * credMgmt, setMinPINLength, pinUvAuthToken, makeCredUvNotRqd, authnrCfg; extensions
 * credProtect hmac-secret; PIN protocols 2 and 1; minPINLength 4; packed attestation with an
 * x5c chain from the test attestation CA (softkey_attestation_ca_pem()); touch after 0 ms. */
SoftKey *softkey_new(void);

/* A key that answers getInfo as a recorded model does: a record of
 * ../shared/reference/keys/getinfo/{mds,device}/*.json (versions, extensions, AAGUID, options,
 * minPINLength, forcePINChange, pinUvAuthProtocols, maxMsgSize, firmware, ...). A "u2f-only"
 * record gives a key that answers CTAPHID_ERROR to CBOR commands. NULL with @error when the
 * file cannot be read or is not such a record. */
SoftKey *softkey_new_from_model(const char *json_path, GError **error);

void softkey_free(SoftKey *key);

/* Settings; may be called at any time. */
void softkey_set_aaguid(SoftKey *key, const uint8_t aaguid[16]);
void softkey_set_min_pin_length(SoftKey *key, unsigned len);
void softkey_set_touch(SoftKey *key, SoftKeyTouch mode, unsigned touch_delay_ms);
void softkey_touch(SoftKey *key); /* for SOFTKEY_TOUCH_MANUAL */
void softkey_set_fault(SoftKey *key, SoftKeyFault fault, int argument);
void softkey_set_self_attestation(SoftKey *key, bool self); /* packed without x5c */

/* State, as if the owner had used the key before: sets the PIN directly (NULL clears it). */
void softkey_set_pin(SoftKey *key, const char *pin);
/* Retry counters as getPINRetries reports them (8 fresh; 0 = blocked for good). */
unsigned softkey_get_pin_retries(SoftKey *key);
/* Unplug (reads/writes fail as if removed) and plug in again (power-up: clears the
 * three-wrong-PINs block, and opens the 10-second window in which reset is allowed). */
void softkey_unplug(SoftKey *key);
void softkey_plug(SoftKey *key);
/* Number of discoverable credentials stored. */
unsigned softkey_get_credential_count(SoftKey *key);

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
