/* kd-aaguid-catalogue: AAGUID → vendor and model of common authenticators. The table is generated
 * at build time from hw/data/aaguids.tsv by scripts/gen-aaguid-catalogue, which derives that file
 * from ../shared/reference/keys/aaguids.json (sources in its header); never edit the C by hand. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef enum {
    KD_AAGUID_KIND_UNKNOWN,
    KD_AAGUID_KIND_SECURITY_KEY,     /* roaming authenticator (a key, or a phone acting as one) */
    KD_AAGUID_KIND_PLATFORM,         /* built into a computer */
    KD_AAGUID_KIND_PASSKEY_PROVIDER, /* a password manager or platform passkey provider */
} KdAaguidKind;

typedef struct {
    guint8 aaguid[16];
    const char *aaguid_string; /* lower case, dashed: "cb69481e-8ff7-4039-93ec-0a2729a154a8" */
    KdAaguidKind kind;
    gboolean in_mds;         /* has a FIDO MDS3 metadata statement (what attestation checks use) */
    gboolean fido_certified; /* its MDS status is FIDO_CERTIFIED */
    const char *vendor;      /* "Yubico", or NULL when no source names one */
    const char *name;        /* "YubiKey 5 Series with NFC" */
} KdAaguidEntry;

/* The entry for @aaguid, or NULL when the model is not in the catalogue. */
const KdAaguidEntry *kd_aaguid_catalogue_lookup(const guint8 aaguid[16]);
/* The same from text: dashed or not, either case. NULL also when @text is not an AAGUID. */
const KdAaguidEntry *kd_aaguid_catalogue_lookup_string(const char *text);

/* All entries, sorted by AAGUID: for tests and a diagnostics page. */
const KdAaguidEntry *kd_aaguid_catalogue_entries(gsize *n_entries);
/* Where the data comes from (the SOURCES.md row it was derived with), for an about page. */
const char *kd_aaguid_catalogue_sources(void);

/* "cb69481e-8ff7-4039-93ec-0a2729a154a8" (free with g_free). */
char *kd_aaguid_to_string(const guint8 aaguid[16]);
/* Parses 32 hex digits, with or without the four dashes, either case. */
gboolean kd_aaguid_parse(const char *text, guint8 aaguid[16]);
/* Whether an AAGUID is all zeros (U2F keys, and keys that hide their model). */
gboolean kd_aaguid_is_zero(const guint8 aaguid[16]);

/* "Yubico YubiKey 5 Series" style display name: the catalogue's name (prefixed with the vendor
 * when the name does not already start with it), or NULL when not catalogued. */
char *kd_aaguid_catalogue_describe(const guint8 aaguid[16]);

G_END_DECLS
