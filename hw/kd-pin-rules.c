/* kd-pin-rules: validation of a new PIN before it reaches the key. */
#include "hw/kd-pin-rules.h"

#include <glib/gi18n.h>
#include <string.h>

#include "hw/kd-key-error.h"

/* PINs people pick first, compared case-insensitively. Runs and repeats are found by rule, so
 * they are not listed; these are the ones no rule catches (Yubico's bulk-enrolment script
 * refuses 123123 112233 121212 520520 123654 159753 123321 for the same reason). */
static const char *const common_pins[] = {
    "123123",  "112233",   "121212",   "123321",   "520520",  "123654",   "159753",    "147258",
    "1212",    "1122",     "2580",     "1379",     "0852",    "789456",   "696969",    "131313",
    "102030",  "1004",     "password", "passw0rd", "pass",    "secret",   "qwerty",    "qwertz",
    "azerty",  "asdf",     "letmein",  "admin",    "welcome", "iloveyou", "abc123",    "pin",
    "pincode", "changeme", "default",  "yubikey",  "fido",    "security", "microsoft", "login",
};

static guint
effective_min(guint min_length)
{
    return min_length == 0 ? KD_PIN_DEFAULT_MIN_LENGTH : min_length;
}

/* The same character throughout ("1111", "aaaa"). */
static gboolean
is_repeated(const char *pin)
{
    gunichar first = g_utf8_get_char(pin);

    for (const char *p = pin; *p != '\0'; p = g_utf8_next_char(p))
        if (g_utf8_get_char(p) != first)
            return FALSE;
    return TRUE;
}

/* Digits or letters each one up (or each one down) from the last: "1234", "7890", "9876",
 * "abcd". 0 follows 9 (a keypad's bottom row), as people type it. */
static gboolean
is_run(const char *pin, gsize n)
{
    int dir = 0;

    if (n < 3)
        return FALSE;
    for (gsize i = 1; i < n; i++) {
        int a = g_ascii_tolower(pin[i - 1]), b = g_ascii_tolower(pin[i]), step;

        if (g_ascii_isdigit(a) && g_ascii_isdigit(b)) {
            step = (b - a + 10) % 10;
            step = step == 1 ? 1 : step == 9 ? -1 : 0;
        } else if (g_ascii_isalpha(a) && g_ascii_isalpha(b)) {
            step = b - a;
            step = step == 1 || step == -1 ? step : 0;
        } else {
            return FALSE;
        }
        if (step == 0 || (dir != 0 && step != dir))
            return FALSE;
        dir = step;
    }
    return TRUE;
}

static gboolean
is_common(const char *pin)
{
    for (gsize i = 0; i < G_N_ELEMENTS(common_pins); i++)
        if (g_ascii_strcasecmp(pin, common_pins[i]) == 0)
            return TRUE;
    return FALSE;
}

KdPinVerdict
kd_pin_rules_judge(const char *pin, gsize len, guint min_length)
{
    glong chars;

    if (pin == NULL || len == 0)
        return KD_PIN_TOO_SHORT;
    if (!g_utf8_validate(pin, (gssize)len, NULL) || memchr(pin, '\0', len) != NULL)
        return KD_PIN_INVALID;
    for (const char *p = pin; p < pin + len; p = g_utf8_next_char(p))
        if (g_unichar_iscntrl(g_utf8_get_char(p)))
            return KD_PIN_INVALID;
    chars = g_utf8_strlen(pin, (gssize)len);
    if ((guint)chars < effective_min(min_length))
        return KD_PIN_TOO_SHORT;
    if (len > KD_PIN_MAX_BYTES)
        return KD_PIN_TOO_LONG;
    if (is_repeated(pin) || is_run(pin, len) || is_common(pin))
        return KD_PIN_TRIVIAL;
    return KD_PIN_OK;
}

/* "111111" and "123456" with the key's length, for the examples. */
static void
examples(guint min_length, char repeated[16], char run[16])
{
    guint n = CLAMP(effective_min(min_length), 4, 10);

    for (guint i = 0; i < n; i++) {
        repeated[i] = '1';
        run[i] = (char)('0' + (i + 1) % 10);
    }
    repeated[n] = run[n] = '\0';
}

char *
kd_pin_rules_describe(guint min_length)
{
    char repeated[16], run[16];

    examples(min_length, repeated, run);
    return g_strdup_printf(_("Your key needs a PIN of at least %u characters. Digits, letters or "
                             "both; avoid PINs that are easy to guess, like %s or %s."),
                           effective_min(min_length), repeated, run);
}

char *
kd_pin_rules_explain(KdPinVerdict verdict, guint min_length)
{
    char repeated[16], run[16];
    guint min = effective_min(min_length);

    examples(min_length, repeated, run);
    switch (verdict) {
    case KD_PIN_OK:
        return kd_pin_rules_describe(min_length);
    case KD_PIN_TOO_SHORT:
        return g_strdup_printf(_("Your key needs a PIN of at least %u characters. This one is "
                                 "shorter: please choose a longer PIN."),
                               min);
    case KD_PIN_TOO_LONG:
        return g_strdup_printf(_("This PIN is too long: a security key takes at most %u "
                                 "characters (fewer with accented letters or symbols)."),
                               KD_PIN_MAX_BYTES);
    case KD_PIN_INVALID:
        return g_strdup(_("This PIN contains a character a security key cannot take. Use "
                          "digits, letters and ordinary symbols."));
    case KD_PIN_TRIVIAL:
    default:
        return g_strdup_printf(_("Your key needs a PIN of at least %u characters. This PIN is too "
                                 "easy to guess: avoid one digit repeated (%s), digits in a row "
                                 "(%s, or backwards) and common PINs like 123123 or 'password'."),
                               min, repeated, run);
    }
}

gboolean
kd_pin_rules_check(const KdSecret *pin, guint min_length, GError **error)
{
    KdPinVerdict verdict;
    g_autofree char *why = NULL;
    KdKeyErrorInfo info = {0, -1, (int)effective_min(min_length)};

    g_return_val_if_fail(pin != NULL, FALSE);
    verdict = kd_pin_rules_judge(kd_secret_get_string(pin), kd_secret_get_length(pin), min_length);
    if (verdict == KD_PIN_OK)
        return TRUE;
    why = kd_pin_rules_explain(verdict, min_length);
    g_propagate_error(error, kd_key_error_new(KD_KEY_ERROR_PIN_POLICY, &info, "%s", why));
    return FALSE;
}
