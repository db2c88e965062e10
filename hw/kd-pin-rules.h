/* kd-pin-rules: a new PIN is checked here, before it reaches the key, and the rule is said in
 * words: the key's minimum length (in characters), CTAP's 63-byte ceiling, no trivial PINs. */
#pragma once

#include <glib.h>

#include "base/kd-secret.h"

G_BEGIN_DECLS

#define KD_PIN_DEFAULT_MIN_LENGTH 4  /* CTAP's minimum when getInfo has no minPINLength */
#define KD_PIN_MAX_BYTES          63 /* CTAP's ceiling, in UTF-8 bytes */

typedef enum {
    KD_PIN_OK,
    KD_PIN_TOO_SHORT, /* fewer Unicode characters than the key's minimum */
    KD_PIN_TOO_LONG,  /* more than 63 UTF-8 bytes */
    KD_PIN_INVALID,   /* not UTF-8, or contains a NUL or a control character */
    KD_PIN_TRIVIAL,   /* one character repeated, a run (1234, 9876, abcd), or a common PIN */
} KdPinVerdict;

/* The rule of a key with minimum length @min_length (0 = the default 4), in one sentence:
 * "Your key needs a PIN of at least 6 characters. Digits, letters or both; avoid PINs that are
 * easy to guess, like 111111 or 123456." The numbers in the examples have the key's length. */
char *kd_pin_rules_describe(guint min_length);

/* Judges @pin (UTF-8, @len bytes) without touching any key. */
KdPinVerdict kd_pin_rules_judge(const char *pin, gsize len, guint min_length);

/* kd_pin_rules_judge() on a secret; anything but KD_PIN_OK is KD_KEY_ERROR_PIN_POLICY whose
 * message explains the rule (never quoting the PIN) and whose info carries @min_length. */
gboolean kd_pin_rules_check(const KdSecret *pin, guint min_length, GError **error);

/* The sentence for a verdict (the same text kd_pin_rules_check() puts in its error). */
char *kd_pin_rules_explain(KdPinVerdict verdict, guint min_length);

G_END_DECLS
