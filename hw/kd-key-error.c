/* kd-key-error: libfido2 codes → KdKeyErrorCode, and the sentence a visitor reads for each. */
#include "hw/kd-key-error.h"

#include <fido.h>
#include <glib/gi18n.h>
#include <stdarg.h>
#include <string.h>

typedef KdKeyErrorInfo KdKeyErrorPrivate;

static void
kd_key_error_private_init(KdKeyErrorPrivate *priv)
{
    priv->fido_code = FIDO_OK;
    priv->pin_retries = -1;
    priv->min_pin_length = 0;
}

static void
kd_key_error_private_copy(const KdKeyErrorPrivate *src, KdKeyErrorPrivate *dest)
{
    *dest = *src;
}

static void
kd_key_error_private_clear(KdKeyErrorPrivate *priv)
{
    (void)priv;
}

/* Defines kd_key_error_quark() and kd_key_error_get_private(). */
G_DEFINE_EXTENDED_ERROR(KdKeyError, kd_key_error)

/* One table: code, name, sentence. The sentences say what happened and what to do now, in the
 * words of someone standing at the kiosk with the key in hand. */
static const struct {
    const char *name;
    const char *sentence;
} codes[KD_KEY_ERROR_N_CODES] = {
    [KD_KEY_ERROR_FAILED] = {"failed", N_("Something went wrong with the security key. Unplug it, "
                                          "plug it back in, and try again.")},
    [KD_KEY_ERROR_PIN_INVALID] = {"pin-invalid", N_("That PIN is not right. Please try again.")},
    [KD_KEY_ERROR_PIN_AUTH_BLOCKED] =
        {"pin-auth-blocked", N_("This key is locked after too many wrong PINs. Unplug it, "
                                "plug it back in, and try again.")},
    [KD_KEY_ERROR_PIN_BLOCKED] = {"pin-blocked",
                                  N_("This key's PIN is blocked: it was entered wrong too many "
                                     "times. The key must be reset before it can be used again, "
                                     "which erases everything on it. Ask a staff member.")},
    [KD_KEY_ERROR_PIN_POLICY] = {"pin-policy", N_("Your key does not accept this PIN. Choose a "
                                                  "longer one that is harder to guess.")},
    [KD_KEY_ERROR_PIN_NOT_SET] = {"pin-not-set",
                                  N_("This key has no PIN yet. Choose a PIN for it first.")},
    [KD_KEY_ERROR_PIN_REQUIRED] = {"pin-required",
                                   N_("This key is protected by a PIN. Enter the key's PIN.")},
    [KD_KEY_ERROR_PIN_ALREADY_SET] = {"pin-already-set",
                                      N_("This key already has a PIN. Enter it, or change it.")},
    [KD_KEY_ERROR_PIN_CHANGE_REQUIRED] = {"pin-change-required",
                                          N_("This key asks for a new PIN before it can be used. "
                                             "Enter the current PIN and choose a new one.")},
    [KD_KEY_ERROR_ALREADY_REGISTERED] = {"already-registered",
                                         N_("This key is already registered for you. You can "
                                            "keep using it, or use a different key.")},
    [KD_KEY_ERROR_NOT_FIDO2] = {"not-fido2",
                                N_("This key is too old for passwordless sign-in (it only "
                                   "supports U2F). Please use a FIDO2 security key.")},
    [KD_KEY_ERROR_NO_TOUCH] = {"no-touch", N_("The key was not touched in time. Touch the metal "
                                              "contact or button on the key when it blinks.")},
    [KD_KEY_ERROR_REMOVED] = {"removed", N_("The key stopped answering; it may have been pulled "
                                            "out. Plug it in again and try once more.")},
    [KD_KEY_ERROR_CANCELLED] = {"cancelled", N_("Cancelled.")},
    [KD_KEY_ERROR_TIMEOUT] = {"timeout", N_("The key did not answer in time. Unplug it, plug it "
                                            "back in, and try again.")},
    [KD_KEY_ERROR_RESET_NOT_ALLOWED] =
        {"reset-not-allowed", N_("The key only allows a reset within a few seconds of "
                                 "being plugged in. Unplug it, plug it back in, and touch "
                                 "it right away.")},
    [KD_KEY_ERROR_UNSUPPORTED] = {"unsupported",
                                  N_("This key model lacks a feature your organisation requires. "
                                     "Please use a different security key.")},
    [KD_KEY_ERROR_KEY_FULL] = {"key-full", N_("This key has no room left for another sign-in. "
                                              "Please use a different security key.")},
    [KD_KEY_ERROR_BUSY] = {"busy", N_("The key is still busy with the previous step. Wait a "
                                      "moment and try again.")},
    [KD_KEY_ERROR_PROTOCOL] = {"protocol",
                               N_("The key gave an answer keydesk does not understand. Unplug it, "
                                  "plug it back in, and try again; if it happens again, this key "
                                  "model may not work here.")},
};

const KdKeyErrorInfo *
kd_key_error_get_info(const GError *error)
{
    if (error == NULL || error->domain != KD_KEY_ERROR)
        return NULL;
    return kd_key_error_get_private(error);
}

const char *
kd_key_error_sentence(KdKeyErrorCode code)
{
    if ((unsigned)code >= KD_KEY_ERROR_N_CODES)
        code = KD_KEY_ERROR_FAILED;
    return _(codes[code].sentence);
}

const char *
kd_key_error_code_name(KdKeyErrorCode code)
{
    if ((unsigned)code >= KD_KEY_ERROR_N_CODES)
        return "unknown";
    return codes[code].name;
}

GError *
kd_key_error_new(KdKeyErrorCode code, const KdKeyErrorInfo *info, const char *format, ...)
{
    GError *error;
    va_list ap;

    if (format == NULL) {
        error = g_error_new_literal(KD_KEY_ERROR, (int)code, kd_key_error_sentence(code));
    } else {
        va_start(ap, format);
        error = g_error_new_valist(KD_KEY_ERROR, (int)code, format, ap);
        va_end(ap);
    }
    if (info != NULL)
        kd_key_error_private_copy(info, kd_key_error_get_private(error));
    return error;
}

/*
 * Real keys do not all answer the same situation with the same code (SCENARIOS.md "Other real
 * quirks"): Feitian and HyperFIDO answer MISSING_PARAMETER where PIN_REQUIRED is due; U2F
 * devices answer CBOR with CTAPHID ERROR (FIDO_ERR_RX / INVALID_COMMAND); some keys report a
 * declined or timed-out touch as OPERATION_DENIED, others as USER_ACTION_TIMEOUT or
 * ACTION_TIMEOUT; libfido2 itself turns any framing problem into FIDO_ERR_RX. So the mapping
 * is per operation and errs on the side of the sentence that helps.
 */
KdKeyErrorCode
kd_key_error_code_from_fido(int r, KdKeyOp op)
{
    switch (r) {
    case FIDO_ERR_PIN_INVALID:
        return KD_KEY_ERROR_PIN_INVALID;
    case FIDO_ERR_PIN_AUTH_BLOCKED:
        return KD_KEY_ERROR_PIN_AUTH_BLOCKED;
    case FIDO_ERR_PIN_BLOCKED:
        return KD_KEY_ERROR_PIN_BLOCKED;
    case FIDO_ERR_PIN_POLICY_VIOLATION:
        /* From makeCredential (getPinUvAuthToken), 0x37 means forcePINChange is set, or the
         * minimum was raised above the current PIN (ctap2.md §9.5). */
        if (op == KD_KEY_OP_MAKE_CREDENTIAL)
            return KD_KEY_ERROR_PIN_CHANGE_REQUIRED;
        return KD_KEY_ERROR_PIN_POLICY;
    case FIDO_ERR_PIN_NOT_SET:
        return KD_KEY_ERROR_PIN_NOT_SET;
    case FIDO_ERR_PIN_REQUIRED:
    case FIDO_ERR_UV_BLOCKED:
    case FIDO_ERR_UV_INVALID:
        return KD_KEY_ERROR_PIN_REQUIRED;
    case FIDO_ERR_MISSING_PARAMETER:
        /* Feitian BioPass/ePass, HyperFIDO: makeCredential without pinAuth on a key with a PIN. */
        if (op == KD_KEY_OP_MAKE_CREDENTIAL)
            return KD_KEY_ERROR_PIN_REQUIRED;
        return KD_KEY_ERROR_PROTOCOL;
    case FIDO_ERR_PIN_AUTH_INVALID:
        /* setPIN on a key that has a PIN answers 0x33 (ctap2.md §9.16). Elsewhere it means the
         * key refused keydesk's proof of the PIN (Token2 with protocol 2): not the PIN's fault. */
        if (op == KD_KEY_OP_SET_PIN)
            return KD_KEY_ERROR_PIN_ALREADY_SET;
        return KD_KEY_ERROR_PROTOCOL;
    case FIDO_ERR_PIN_TOKEN_EXPIRED:
        return KD_KEY_ERROR_TIMEOUT;
    case FIDO_ERR_CREDENTIAL_EXCLUDED:
        return KD_KEY_ERROR_ALREADY_REGISTERED;
    case FIDO_ERR_USER_ACTION_TIMEOUT:
    case FIDO_ERR_ACTION_TIMEOUT:
    case FIDO_ERR_OPERATION_DENIED:
    case FIDO_ERR_UP_REQUIRED:
    case FIDO_ERR_USER_PRESENCE_REQUIRED:
        return KD_KEY_ERROR_NO_TOUCH;
    case FIDO_ERR_KEEPALIVE_CANCEL:
        return KD_KEY_ERROR_CANCELLED;
    case FIDO_ERR_NOT_ALLOWED:
        if (op == KD_KEY_OP_RESET)
            return KD_KEY_ERROR_RESET_NOT_ALLOWED;
        return KD_KEY_ERROR_PROTOCOL;
    case FIDO_ERR_TX:
    case FIDO_ERR_RX:
    case FIDO_ERR_INVALID_CHANNEL:
    case FIDO_ERR_NOTFOUND:
        return KD_KEY_ERROR_REMOVED;
    case FIDO_ERR_INVALID_COMMAND:
        /* A U2F device answering a CTAP2 command. */
        if (op == KD_KEY_OP_MAKE_CREDENTIAL || op == KD_KEY_OP_SET_PIN ||
            op == KD_KEY_OP_CHANGE_PIN || op == KD_KEY_OP_INFO)
            return KD_KEY_ERROR_NOT_FIDO2;
        return KD_KEY_ERROR_PROTOCOL;
    case FIDO_ERR_UNSUPPORTED_OPTION:
    case FIDO_ERR_UNSUPPORTED_EXTENSION:
    case FIDO_ERR_INVALID_OPTION:
    case FIDO_ERR_UNSUPPORTED_ALGORITHM:
        return KD_KEY_ERROR_UNSUPPORTED;
    case FIDO_ERR_KEY_STORE_FULL:
    case FIDO_ERR_LIMIT_EXCEEDED:
        return KD_KEY_ERROR_KEY_FULL;
    case FIDO_ERR_CHANNEL_BUSY:
    case FIDO_ERR_USER_ACTION_PENDING:
    case FIDO_ERR_OPERATION_PENDING:
        return KD_KEY_ERROR_BUSY;
    case FIDO_ERR_TIMEOUT:
        return KD_KEY_ERROR_TIMEOUT;
    case FIDO_ERR_INVALID_PARAMETER:
    case FIDO_ERR_INVALID_LENGTH:
    case FIDO_ERR_INVALID_SEQ:
    case FIDO_ERR_CBOR_UNEXPECTED_TYPE:
    case FIDO_ERR_INVALID_CBOR:
    case FIDO_ERR_RX_NOT_CBOR:
    case FIDO_ERR_RX_INVALID_CBOR:
    case FIDO_ERR_INVALID_PARAM:
    case FIDO_ERR_INVALID_SIG:
    case FIDO_ERR_REQUEST_TOO_LARGE:
    case FIDO_ERR_ERR_OTHER:
        return KD_KEY_ERROR_PROTOCOL;
    default:
        return KD_KEY_ERROR_FAILED;
    }
}

GError *
kd_key_error_from_fido(int fido_code, KdKeyOp op, int pin_retries, int min_pin_length)
{
    KdKeyErrorCode code = kd_key_error_code_from_fido(fido_code, op);
    KdKeyErrorInfo info = {fido_code, pin_retries, min_pin_length};

    switch (code) {
    case KD_KEY_ERROR_PIN_INVALID:
        if (pin_retries == 1)
            return kd_key_error_new(code, &info,
                                    _("That PIN is not right. One try is left: after one more "
                                      "wrong PIN the key is blocked and must be reset."));
        if (pin_retries > 1)
            return kd_key_error_new(code, &info,
                                    _("That PIN is not right. %d tries are left before the key is "
                                      "blocked."),
                                    pin_retries);
        break;
    case KD_KEY_ERROR_PIN_BLOCKED:
        info.pin_retries = 0;
        break;
    case KD_KEY_ERROR_PIN_POLICY:
        if (min_pin_length > 0)
            return kd_key_error_new(code, &info,
                                    _("Your key does not accept this PIN. It needs a PIN of at "
                                      "least %d characters that is not too easy to guess."),
                                    min_pin_length);
        break;
    default:
        break;
    }
    return kd_key_error_new(code, &info, NULL);
}
