/*
 * validate: exact checks that run after a rule's pattern matched a span, so that a
 * 16-digit order number is not a card and a random string is not an IBAN. One function and
 * one table row per validator (after Suricata's detect-template.c).
 */
#include "inspect/inspect-int.h"

#include <string.h>

/* Luhn over the digits of the span (separators ' ' and '-' skipped); 13..19 digits. */
static bool valid_luhn(const char *s, size_t n)
{
    int sum = 0, digits = 0;

    for (size_t i = n; i-- > 0;) {
        int d;
        if (s[i] == ' ' || s[i] == '-')
            continue;
        if (s[i] < '0' || s[i] > '9')
            return false;
        d = s[i] - '0';
        if (digits++ % 2 == 1) {
            d *= 2;
            if (d > 9)
                d -= 9;
        }
        sum += d;
    }
    return digits >= 13 && digits <= 19 && sum % 10 == 0;
}

/* IBAN (ISO 13616): country letters, check digits, mod 97 == 1 over the rearranged
 * number; spaces skipped; 15..34 characters. */
static bool valid_iban(const char *s, size_t n)
{
    char c[40];
    size_t k = 0;
    unsigned rem = 0;

    for (size_t i = 0; i < n; i++) {
        if (s[i] == ' ')
            continue;
        if (k >= sizeof(c))
            return false;
        c[k++] = (char)(s[i] >= 'a' && s[i] <= 'z' ? s[i] - 32 : s[i]);
    }
    if (k < 15 || k > 34 || c[0] < 'A' || c[0] > 'Z' || c[1] < 'A' || c[1] > 'Z')
        return false;
    for (size_t i = 0; i < k; i++) {
        char ch = c[(i + 4) % k]; /* the first four characters move to the end */
        if (ch >= '0' && ch <= '9')
            rem = (rem * 10 + (unsigned)(ch - '0')) % 97;
        else if (ch >= 'A' && ch <= 'Z')
            rem = (rem * 100 + (unsigned)(ch - 'A' + 10)) % 97;
        else
            return false;
    }
    return rem == 1;
}

/* US SSN AAA-GG-SSSS: area not 000, 666 or 900-999; group not 00; serial not 0000. */
static bool valid_ssn(const char *s, size_t n)
{
    int v[9], k = 0, area, group, serial;

    for (size_t i = 0; i < n; i++) {
        if (s[i] == '-' || s[i] == ' ')
            continue;
        if (s[i] < '0' || s[i] > '9' || k >= 9)
            return false;
        v[k++] = s[i] - '0';
    }
    if (k != 9)
        return false;
    area = v[0] * 100 + v[1] * 10 + v[2];
    group = v[3] * 10 + v[4];
    serial = v[5] * 1000 + v[6] * 100 + v[7] * 10 + v[8];
    return area != 0 && area != 666 && area < 900 && group != 0 && serial != 0;
}

static const struct {
    const char *name;
    bool (*fn)(const char *s, size_t n);
} validators[] = {
    {"luhn", valid_luhn},
    {"iban", valid_iban},
    {"ssn", valid_ssn},
};

int insp__validator_index(const char *name)
{
    for (size_t i = 0; i < sizeof(validators) / sizeof(validators[0]); i++)
        if (strcmp(validators[i].name, name) == 0)
            return (int)i + 1;
    return -1;
}

bool insp__validate(int validator, const char *s, size_t n)
{
    if (validator <= 0)
        return true;
    return validators[validator - 1].fn(s, n);
}

bool insp_validate(const char *validator, const char *s, size_t n)
{
    int v = insp__validator_index(validator);
    return v > 0 && insp__validate(v, s, n);
}
