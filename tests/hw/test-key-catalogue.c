/* test-key-catalogue: the generated AAGUID catalogue (checked against hw/data/aaguids.tsv read
 * independently here) and the FIDO2 policy pre-flight. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "hw/kd-aaguid-catalogue.h"
#include "hw/kd-key-policy.h"

#define YUBIKEY_5_NFC    "2fc0579f-8113-47ea-b116-bb5a8db9202a"
#define SECURITY_KEY_NFC "149a2021-8ef6-4133-96b8-81f8d5b7f1f5"

static void
test_tsv_roundtrip(void **state)
{
    g_autofree char *text = NULL;
    g_auto(GStrv) lines = NULL;
    gsize n_entries = 0, rows = 0;
    const KdAaguidEntry *entries = kd_aaguid_catalogue_entries(&n_entries);

    assert_true(g_file_get_contents(KD_AAGUID_TSV, &text, NULL, NULL));
    lines = g_strsplit(text, "\n", -1);
    for (char **l = lines; *l != NULL; l++) {
        g_auto(GStrv) cols = NULL;
        const KdAaguidEntry *e;

        if (**l == '#' || **l == '\0')
            continue;
        cols = g_strsplit(*l, "\t", -1);
        assert_int_equal(g_strv_length(cols), 5);
        e = kd_aaguid_catalogue_lookup_string(cols[0]);
        if (e == NULL)
            fail_msg("%s not found", cols[0]);
        assert_string_equal(e->aaguid_string, cols[0]);
        assert_string_equal(e->name, cols[4]);
        if (*cols[3] == '\0')
            assert_null(e->vendor);
        else
            assert_string_equal(e->vendor, cols[3]);
        assert_int_equal(e->in_mds, strcmp(cols[2], "-") != 0);
        assert_int_equal(e->fido_certified, strcmp(cols[2], "FIDO_CERTIFIED") == 0);
        rows++;
    }
    assert_int_equal(rows, n_entries);
    assert_true(n_entries > 250);
    for (gsize i = 1; i < n_entries; i++)
        assert_true(memcmp(entries[i - 1].aaguid, entries[i].aaguid, 16) < 0);
}

static void
test_lookups(void **state)
{
    const KdAaguidEntry *e = kd_aaguid_catalogue_lookup_string(YUBIKEY_5_NFC);
    guint8 raw[16], zero[16] = {0};
    g_autofree char *text = NULL, *described = NULL;

    assert_non_null(e);
    assert_string_equal(e->vendor, "Yubico");
    assert_int_equal(e->kind, KD_AAGUID_KIND_SECURITY_KEY);
    assert_true(e->in_mds);
    /* Upper case and without dashes work too. */
    assert_ptr_equal(kd_aaguid_catalogue_lookup_string("2FC0579F811347EAB116BB5A8DB9202A"), e);
    assert_true(kd_aaguid_parse(YUBIKEY_5_NFC, raw));
    assert_ptr_equal(kd_aaguid_catalogue_lookup(raw), e);
    text = kd_aaguid_to_string(raw);
    assert_string_equal(text, YUBIKEY_5_NFC);
    /* "Security Key NFC by Yubico" names its vendor already: no "Yubico …" prefix. */
    assert_true(kd_aaguid_parse(SECURITY_KEY_NFC, raw));
    described = kd_aaguid_catalogue_describe(raw);
    assert_string_equal(described, "Security Key by Yubico with NFC");
    /* Not catalogued, malformed. */
    assert_null(kd_aaguid_catalogue_lookup(zero));
    assert_true(kd_aaguid_is_zero(zero));
    assert_null(kd_aaguid_catalogue_lookup_string("2fc0579f-8113-47ea-b116-bb5a8db9202"));
    assert_null(kd_aaguid_catalogue_lookup_string("2fc0579f+8113-47ea-b116-bb5a8db9202a"));
    assert_null(kd_aaguid_catalogue_lookup_string("zfc0579f-8113-47ea-b116-bb5a8db9202a"));
    assert_null(kd_aaguid_catalogue_lookup_string(NULL));
    assert_non_null(strstr(kd_aaguid_catalogue_sources(), "aaguids.json"));
}

static KdKeyPolicy
policy_with(KdKeyRestriction restriction, const char *aaguid)
{
    KdKeyPolicy p = {
        .enabled = TRUE,
        .self_service_allowed = TRUE,
        .restrictions_enforced = restriction != KD_KEY_RESTRICTION_NONE,
        .restriction = restriction,
    };
    if (aaguid != NULL) {
        p.aaguids = g_new0(char *, 2);
        p.aaguids[0] = g_strdup(aaguid);
    }
    return p;
}

static void
test_preflight(void **state)
{
    const char *list = "2FC0579F-8113-47EA-B116-BB5A8DB9202A";
    guint8 yk[16], other[16], zero[16] = {0};
    KdKeyPolicy allow = policy_with(KD_KEY_RESTRICTION_ALLOW, list);
    KdKeyPolicy block = policy_with(KD_KEY_RESTRICTION_BLOCK, list);
    KdKeyPolicy open = policy_with(KD_KEY_RESTRICTION_NONE, NULL);
    g_autofree char *s1 = NULL, *s2 = NULL, *s3 = NULL, *s4 = NULL, *s5 = NULL;

    kd_aaguid_parse(YUBIKEY_5_NFC, yk);
    kd_aaguid_parse(SECURITY_KEY_NFC, other);
    assert_int_equal(kd_key_policy_check(&allow, yk, KD_KEY_ATTESTATION_CERTIFIED, &s1),
                     KD_KEY_POLICY_ALLOWED);
    assert_string_equal(s1, "This key can be registered.");
    assert_int_equal(kd_key_policy_check(&allow, other, KD_KEY_ATTESTATION_CERTIFIED, &s2),
                     KD_KEY_POLICY_NOT_ALLOWED);
    assert_non_null(strstr(s2, "Security Key by Yubico with NFC"));
    assert_int_equal(kd_key_policy_check(&block, yk, KD_KEY_ATTESTATION_CERTIFIED, &s3),
                     KD_KEY_POLICY_BLOCKED);
    assert_non_null(strstr(s3, "YubiKey 5"));
    assert_int_equal(kd_key_policy_check(&block, other, KD_KEY_ATTESTATION_CERTIFIED, NULL),
                     KD_KEY_POLICY_ALLOWED);
    assert_int_equal(kd_key_policy_check(&open, zero, KD_KEY_ATTESTATION_SELF, NULL),
                     KD_KEY_POLICY_ALLOWED);
    /* A list that is not enforced is not judged. */
    block.restrictions_enforced = FALSE;
    assert_int_equal(kd_key_policy_check(&block, yk, KD_KEY_ATTESTATION_CERTIFIED, NULL),
                     KD_KEY_POLICY_ALLOWED);
    /* Attestation enforced: a key that only self-attests is refused, an unknown one passes
     * (checked after the credential is made). */
    open.attestation_enforced = TRUE;
    assert_int_equal(kd_key_policy_check(&open, zero, kd_key_attestation_guess(zero), &s4),
                     KD_KEY_POLICY_ATTESTATION_REQUIRED);
    assert_non_null(strstr(s4, "prove"));
    assert_int_equal(kd_key_policy_check(&open, yk, kd_key_attestation_guess(yk), NULL),
                     KD_KEY_POLICY_ALLOWED);
    assert_int_equal(kd_key_attestation_guess(yk), KD_KEY_ATTESTATION_CERTIFIED);
    assert_int_equal(kd_key_policy_check_attestation(&open, yk, TRUE, NULL),
                     KD_KEY_POLICY_ATTESTATION_REQUIRED);
    assert_int_equal(kd_key_policy_check_attestation(&open, yk, FALSE, NULL),
                     KD_KEY_POLICY_ALLOWED);
    /* Disabled and self-service off come first, whatever the lists say. */
    allow.self_service_allowed = FALSE;
    assert_int_equal(kd_key_policy_check(&allow, yk, KD_KEY_ATTESTATION_CERTIFIED, &s5),
                     KD_KEY_POLICY_SELF_SERVICE_OFF);
    allow.enabled = FALSE;
    assert_int_equal(kd_key_policy_check(&allow, yk, KD_KEY_ATTESTATION_CERTIFIED, NULL),
                     KD_KEY_POLICY_DISABLED);
    assert_int_equal(kd_key_policy_check(NULL, yk, KD_KEY_ATTESTATION_SELF, NULL),
                     KD_KEY_POLICY_ALLOWED);
    assert_string_equal(kd_key_policy_verdict_name(KD_KEY_POLICY_BLOCKED), "blocked");
    kd_key_policy_clear(&allow);
    kd_key_policy_clear(&block);
    kd_key_policy_clear(&open);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tsv_roundtrip),
        cmocka_unit_test(test_lookups),
        cmocka_unit_test(test_preflight),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
