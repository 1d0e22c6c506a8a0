/*
 * validate: exact checks that run after a rule's pattern matched a span, so that a
 * 16-digit order number is not a card and a random string is not an IBAN. One function and
 * one table row per validator (after Suricata's detect-template.c).
 */
#include "inspect/inspect-int.h"

#include <ctype.h>
#include <string.h>

/* ---- helpers ---- */

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}
static bool is_upper(char c)
{
    return c >= 'A' && c <= 'Z';
}
static bool is_lower(char c)
{
    return c >= 'a' && c <= 'z';
}
static bool is_alnum(char c)
{
    return is_digit(c) || is_upper(c) || is_lower(c);
}
static char to_upper(char c)
{
    return is_lower(c) ? (char)(c - 32) : c;
}
/* c is one of the characters of set (never true for NUL). */
static bool in_set(char c, const char *set)
{
    return c && strchr(set, c);
}

/* The digits of a span into d[0..max). With skip_label, whatever comes before the first
 * digit (a label such as "BSN: ") is skipped; after that only digits and the separators
 * ' ', '-', '.' and '/' may appear. Returns the number of digits, or -1 on another
 * character or more than max digits. */
static int span_digits(const char *s, size_t n, bool skip_label, int *d, int max)
{
    int k = 0;
    size_t i = 0;

    if (skip_label)
        while (i < n && !is_digit(s[i]))
            i++;
    for (; i < n; i++) {
        if (s[i] == ' ' || s[i] == '-' || s[i] == '.' || s[i] == '/')
            continue;
        if (!is_digit(s[i]) || k >= max)
            return -1;
        d[k++] = s[i] - '0';
    }
    return k;
}

/* The alphanumerics of a span, upper-cased, into c[0..max); spaces skipped. Returns the
 * count, or -1 on another character or more than max of them. */
static int span_alnum(const char *s, size_t n, char *c, int max)
{
    int k = 0;

    for (size_t i = 0; i < n; i++) {
        if (s[i] == ' ')
            continue;
        if (!is_alnum(s[i]) || k >= max)
            return -1;
        c[k++] = to_upper(s[i]);
    }
    return k;
}

static bool all_same(const int *d, int n)
{
    for (int i = 1; i < n; i++)
        if (d[i] != d[0])
            return false;
    return true;
}

/* Luhn (ISO/IEC 7812-1) over d[0..n): from the right, every second digit doubled. */
static bool luhn_ok(const int *d, int n)
{
    int sum = 0;

    for (int i = 0; i < n; i++) {
        int v = d[n - 1 - i];
        if (i % 2 == 1 && (v *= 2) > 9)
            v -= 9;
        sum += v;
    }
    return sum % 10 == 0;
}

/* ---- payment and bank ---- */

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

/* ---- contact details ---- */

/* Email address: one '@'; a local part of 1..64 characters from A-Z a-z 0-9 . _ % + -,
 * not starting or ending with '.' and without ".."; a domain of 2..8 dot-separated labels
 * of 1..63 letters, digits and '-' (not at either end of a label), 253 characters at most,
 * whose last label (the TLD) is 2..24 letters and neither an image file extension (the asset
 * name "logo@2x.png") nor a systemd unit type (the template unit "getty@tty1.service"); the
 * local part "git" (the SSH remote git@github.com) is not a person's address. */
static bool valid_email(const char *s, size_t n)
{
    static const char *const not_tld[] = {
        "png",       "jpg",  "jpeg",  "gif",     "svg",    "webp",  "bmp",    "ico",
        "tif",       "tiff", "avif",  "service", "socket", "timer", "target", "mount",
        "automount", "path", "slice", "scope",   "device", "swap",  NULL};
    const char *at = memchr(s, '@', n);
    size_t local, labels = 0, label = 0, tld = 0;

    if (!at || memchr(at + 1, '@', n - (size_t)(at - s) - 1))
        return false;
    local = (size_t)(at - s);
    if (local < 1 || local > 64 || s[0] == '.' || s[local - 1] == '.')
        return false;
    if (local == 3 && memcmp(s, "git", 3) == 0)
        return false;
    for (size_t i = 0; i < local; i++) {
        char c = s[i];
        if (!is_alnum(c) && !in_set(c, "._%+-"))
            return false;
        if (c == '.' && s[i + 1] == '.')
            return false;
    }
    if (n - local - 1 > 253)
        return false;
    for (size_t i = local + 1; i <= n; i++) {
        if (i == n || s[i] == '.') {
            if (label < 1 || label > 63 || s[i - 1] == '-' || s[i - label] == '-')
                return false;
            labels++;
            tld = label;
            label = 0;
            continue;
        }
        if (!is_alnum(s[i]) && s[i] != '-')
            return false;
        label++;
    }
    if (labels < 2 || labels > 8 || tld < 2 || tld > 24)
        return false;
    for (size_t i = n - tld; i < n; i++)
        if (!is_upper(s[i]) && !is_lower(s[i]))
            return false;
    for (size_t k = 0; not_tld[k]; k++) {
        size_t m = strlen(not_tld[k]);
        bool same = m == tld;
        for (size_t i = 0; same && i < m; i++)
            same = (s[n - tld + i] | 0x20) == not_tld[k][i];
        if (same)
            return false;
    }
    return true;
}

/* Phone number, after any label ("Tel: ", "mobile "): an optional '+', then digits with the
 * separators ' ', '-', '.', '/' and one pair of parentheses; 8..15 digits (E.164's maximum);
 * not one digit repeated, not only 0s and 1s (a binary literal) and not a straight ascending
 * or descending run (0123456789, 98765432), which are placeholders and counters rather than
 * numbers. With '+', the country
 * code does not start with 0, and a +1 number (the North American plan) has exactly 11
 * digits. */
static bool valid_phone(const char *s, size_t n)
{
    int d[16], k = 0, parens = 0;
    bool up = true, down = true, plus = false, binary = true;
    size_t i = 0;

    while (i < n && !is_digit(s[i]) && s[i] != '+' && s[i] != '(')
        i++;
    if (i < n && s[i] == '+')
        plus = true, i++;
    for (; i < n; i++) {
        char c = s[i];
        if (c == '(' || c == ')') {
            if (++parens > 2)
                return false;
            continue;
        }
        if (c == ' ' || c == '-' || c == '.' || c == '/')
            continue;
        if (!is_digit(c) || k >= 15)
            return false;
        d[k++] = c - '0';
    }
    if (k < 8 || all_same(d, k) || (plus && (d[0] == 0 || (d[0] == 1 && k != 11))))
        return false;
    for (int j = 0; j < k && binary; j++)
        binary = d[j] <= 1;
    if (binary)
        return false;
    for (int j = 1; j < k; j++) {
        up = up && d[j] == (d[j - 1] + 1) % 10;
        down = down && d[j] == (d[j - 1] + 9) % 10;
    }
    return !up && !down;
}

/* ---- national identifiers ---- */

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

/* Spanish DNI (8 digits and a letter) or NIE (X, Y or Z, 7 digits and a letter; X, Y, Z
 * count as 0, 1, 2): the letter is "TRWAGMYFPDXBNJZSQVHLCKE"[number mod 23]. A '-' or
 * ' ' may stand before the letter. */
static bool valid_es_dni(const char *s, size_t n)
{
    static const char letters[] = "TRWAGMYFPDXBNJZSQVHLCKE";
    char c[9];
    int k = 0;
    long num = 0;

    for (size_t i = 0; i < n; i++) {
        if (s[i] == ' ' || s[i] == '-')
            continue;
        if (!is_alnum(s[i]) || k >= 9)
            return false;
        c[k++] = to_upper(s[i]);
    }
    if (k != 9)
        return false;
    for (int i = 0; i < 8; i++) {
        int v;
        if (i == 0 && in_set(c[0], "XYZ"))
            v = c[0] - 'X';
        else if (is_digit(c[i]))
            v = c[i] - '0';
        else
            return false;
        num = num * 10 + v;
    }
    return c[8] == letters[num % 23];
}

/* Dutch BSN (burgerservicenummer), after any label: 9 digits passing the "11-proef":
 * 9*d1 + 8*d2 + ... + 2*d8 - d9 is a multiple of 11, and not all zero. */
static bool valid_nl_bsn(const char *s, size_t n)
{
    int d[9], sum = 0;

    if (span_digits(s, n, true, d, 9) != 9 || all_same(d, 9))
        return false;
    for (int i = 0; i < 8; i++)
        sum += (9 - i) * d[i];
    sum -= d[8];
    return sum % 11 == 0;
}

/* French NIR (numéro de sécurité sociale): sex digit 1, 2, 3, 4, 7 or 8, then 12
 * characters (the department may be 2A or 2B, counted as 19 and 18) and a 2-digit key
 * equal to 97 - (the first 13 digits mod 97). Spaces skipped. */
static bool valid_fr_nir(const char *s, size_t n)
{
    char c[16];
    unsigned long long num = 0;
    int key;

    if (span_alnum(s, n, c, 16) != 15 || !in_set(c[0], "123478"))
        return false;
    if (c[5] == '2' && (c[6] == 'A' || c[6] == 'B')) {
        c[6] = c[6] == 'A' ? '9' : '8';
        c[5] = '1';
    }
    for (int i = 0; i < 15; i++)
        if (!is_digit(c[i]))
            return false;
    for (int i = 0; i < 13; i++)
        num = num * 10 + (unsigned)(c[i] - '0');
    key = (c[13] - '0') * 10 + (c[14] - '0');
    return key == (int)(97 - num % 97);
}

/* Verhoeff (dihedral group D5) over d[0..n): valid when the running check is 0. */
static bool verhoeff_ok(const int *d, int n)
{
    static const unsigned char mul[10][10] = {
        {0, 1, 2, 3, 4, 5, 6, 7, 8, 9}, {1, 2, 3, 4, 0, 6, 7, 8, 9, 5},
        {2, 3, 4, 0, 1, 7, 8, 9, 5, 6}, {3, 4, 0, 1, 2, 8, 9, 5, 6, 7},
        {4, 0, 1, 2, 3, 9, 5, 6, 7, 8}, {5, 9, 8, 7, 6, 0, 4, 3, 2, 1},
        {6, 5, 9, 8, 7, 1, 0, 4, 3, 2}, {7, 6, 5, 9, 8, 2, 1, 0, 4, 3},
        {8, 7, 6, 5, 9, 3, 2, 1, 0, 4}, {9, 8, 7, 6, 5, 4, 3, 2, 1, 0}};
    static const unsigned char perm[8][10] = {
        {0, 1, 2, 3, 4, 5, 6, 7, 8, 9}, {1, 5, 7, 6, 2, 8, 3, 0, 9, 4},
        {5, 8, 0, 3, 7, 9, 6, 1, 4, 2}, {8, 9, 1, 6, 0, 4, 3, 5, 2, 7},
        {9, 4, 5, 3, 1, 2, 6, 8, 7, 0}, {4, 2, 8, 6, 5, 7, 3, 9, 0, 1},
        {2, 7, 9, 3, 8, 0, 6, 4, 1, 5}, {7, 0, 4, 6, 9, 1, 3, 2, 5, 8}};
    int c = 0;

    for (int i = 0; i < n; i++)
        c = mul[c][perm[i % 8][d[n - 1 - i]]];
    return c == 0;
}

/* Indian Aadhaar, after any label: 12 digits, the first 2-9, not all one digit, passing
 * the Verhoeff check. */
static bool valid_aadhaar(const char *s, size_t n)
{
    int d[12];

    return span_digits(s, n, true, d, 12) == 12 && d[0] >= 2 && !all_same(d, 12) &&
           verhoeff_ok(d, 12);
}

/* Canadian SIN, after any label: 9 digits passing Luhn whose first digit is a region
 * in use (1-7, or 9 for temporary residents; 0 and 8 are not issued). */
static bool valid_ca_sin(const char *s, size_t n)
{
    int d[9];

    return span_digits(s, n, true, d, 9) == 9 && d[0] != 0 && d[0] != 8 && luhn_ok(d, 9);
}

/* Brazilian CPF, after any label: 11 digits, not all one digit; the 10th and 11th are
 * mod-11 check digits over the 9 (weights 10..2) and 10 (weights 11..2) before them:
 * (sum * 10 mod 11) mod 10. */
static bool valid_br_cpf(const char *s, size_t n)
{
    int d[11];

    if (span_digits(s, n, true, d, 11) != 11 || all_same(d, 11))
        return false;
    for (int len = 9; len <= 10; len++) {
        int sum = 0;
        for (int i = 0; i < len; i++)
            sum += d[i] * (len + 1 - i);
        if (sum * 10 % 11 % 10 != d[len])
            return false;
    }
    return true;
}

/* Days in a month of a Gregorian year; 0 for a month outside 1..12. */
static int month_days(int year, int month)
{
    static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    bool leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);

    if (month < 1 || month > 12)
        return 0;
    return days[month - 1] + (month == 2 && leap);
}

/* Chinese resident identity card number (GB 11643-1999): a province code (11-15, 21-23,
 * 31-37, 41-46, 50-54, 61-65, 71, 81-83), four more region digits, a birth date
 * YYYYMMDD (a real date, 1900-2099), a 3-digit sequence and an ISO 7064 MOD 11-2 check character
 * (weights 2^(17-i) mod 11; a value of 10 is written X). */
static bool valid_cn_rid(const char *s, size_t n)
{
    static const int weight[17] = {7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2};
    static const char province[] = " 11 12 13 14 15 21 22 23 31 32 33 34 35 36 37 41 42 43 44 "
                                   "45 46 50 51 52 53 54 61 62 63 64 65 71 81 82 83 ";
    char pc[5] = {' ', 0, 0, ' ', 0};
    int sum = 0, year, month, day, check;

    if (n != 18)
        return false;
    pc[1] = s[0], pc[2] = s[1];
    if (!strstr(province, pc))
        return false;
    for (int i = 0; i < 17; i++) {
        if (!is_digit(s[i]))
            return false;
        sum += (s[i] - '0') * weight[i];
    }
    year = (s[6] - '0') * 1000 + (s[7] - '0') * 100 + (s[8] - '0') * 10 + (s[9] - '0');
    month = (s[10] - '0') * 10 + (s[11] - '0');
    day = (s[12] - '0') * 10 + (s[13] - '0');
    if (year < 1900 || year > 2099 || day < 1 || day > month_days(year, month))
        return false;
    check = (12 - sum % 11) % 11;
    return check == 10 ? (s[17] == 'X' || s[17] == 'x') : s[17] == '0' + check;
}

/* Italian codice fiscale: 6 letters, 2 year digits, a month letter (ABCDEHLMPRST), 2 day
 * digits (a day of that month, plus 40 for women), a letter and 3 digits (digits may be
 * replaced by LMNPQRSTUV, "omocodia"), and a check letter: the characters in odd positions are
 * mapped through the odd table, those in even positions to 0..25 (digit d and letter 'A'+d alike),
 * the sum mod 26 is the check letter. */
static bool valid_it_cf(const char *s, size_t n)
{
    /* odd-position values of 0-9 / A-Z (a digit d counts as the letter 'A' + d) */
    static const int odd[26] = {1,  0,  5, 7, 9, 13, 15, 17, 19, 21, 2,  4,  18,
                                20, 11, 3, 6, 8, 12, 14, 16, 10, 22, 25, 24, 23};
    static const char digit_pos[] = {6, 7, 9, 10, 12, 13, 14};
    static const char omo[] = "LMNPQRSTUV", months[] = "ABCDEHLMPRST";
    char c[17], yd[11];
    int sum = 0, year, day;

    if (span_alnum(s, n, c, 17) != 16)
        return false;
    for (int i = 0; i < 16; i++) {
        bool dpos = memchr(digit_pos, i, sizeof(digit_pos)) != NULL;
        if (dpos ? !(is_digit(c[i]) || in_set(c[i], omo)) : !is_upper(c[i]))
            return false;
    }
    if (!in_set(c[8], months))
        return false;
    for (int i = 6; i < 11; i++) /* year and day digits, "omocodia" letters undone */
        if (!is_digit(c[i]) && i != 8)
            yd[i] = (char)('0' + (strchr(omo, c[i]) - omo));
        else
            yd[i] = c[i];
    year = 2000 + (yd[6] - '0') * 10 + (yd[7] - '0'); /* only its leapness counts */
    day = ((yd[9] - '0') * 10 + (yd[10] - '0')) % 40; /* women: day + 40 */
    if (day < 1 || day > month_days(year, (int)(strchr(months, c[8]) - months) + 1))
        return false;
    for (int i = 0; i < 15; i++) {
        int v = is_digit(c[i]) ? c[i] - '0' : c[i] - 'A';
        sum += i % 2 == 0 ? odd[v] : v;
    }
    return c[15] == 'A' + sum % 26;
}

/* UK National Insurance number: two prefix letters, 6 digits, a suffix A-D (spaces
 * skipped). The first letter is not D, F, I, Q, U or V; the second not D, F, I, O, Q, U
 * or V; the prefixes BG, GB, KN, NK, NT, TN and ZZ are not allocated. */
static bool valid_uk_nino(const char *s, size_t n)
{
    char c[10];

    if (span_alnum(s, n, c, 10) != 9 || !is_upper(c[0]) || !is_upper(c[1]))
        return false;
    for (int i = 2; i < 8; i++)
        if (!is_digit(c[i]))
            return false;
    if (c[8] < 'A' || c[8] > 'D' || in_set(c[0], "DFIQUV") || in_set(c[1], "DFIOQUV"))
        return false;
    for (const char *p = "BGGBKNNKNTTNZZ"; *p; p += 2)
        if (c[0] == p[0] && c[1] == p[1])
            return false;
    return true;
}

/* UK NHS number, after any label: 10 digits; the check digit is 11 - (sum of the first
 * nine weighted 10..2) mod 11, 11 meaning 0 and 10 never issued. */
static bool valid_uk_nhs(const char *s, size_t n)
{
    int d[10], sum = 0, check;

    if (span_digits(s, n, true, d, 10) != 10 || all_same(d, 10))
        return false;
    for (int i = 0; i < 9; i++)
        sum += d[i] * (10 - i);
    check = 11 - sum % 11;
    if (check == 11)
        check = 0;
    return check != 10 && check == d[9];
}

/* Polish PESEL, after any label: 11 digits, a real birth date YYMMDD whose month carries the
 * century (+80 1800s, +0 1900s, +20 2000s, +40 2100s, +60 2200s), and a check digit
 * (10 - weighted sum mod 10) mod 10 with weights 1 3 7 9 1 3 7 9 1 3. */
static bool valid_pl_pesel(const char *s, size_t n)
{
    static const int weight[10] = {1, 3, 7, 9, 1, 3, 7, 9, 1, 3};
    static const int century[5] = {1900, 2000, 2100, 2200, 1800};
    int d[11], sum = 0, year, month, day;

    if (span_digits(s, n, true, d, 11) != 11)
        return false;
    month = d[2] * 10 + d[3];
    year = century[month / 20] + d[0] * 10 + d[1];
    month %= 20;
    day = d[4] * 10 + d[5];
    if (day < 1 || day > month_days(year, month))
        return false;
    for (int i = 0; i < 10; i++)
        sum += d[i] * weight[i];
    return (10 - sum % 10) % 10 == d[10];
}

/* German tax identification number (Steuer-IdNr), after any label: 11 digits, the first
 * not 0; in the first ten, exactly one digit occurs two or three times (three times not
 * in a row) and every other at most once; the last is the ISO 7064 MOD 11,10 check
 * digit. */
static bool valid_de_taxid(const char *s, size_t n)
{
    int d[11], count[10] = {0}, repeated = 0, product = 10, check;

    if (span_digits(s, n, true, d, 11) != 11 || d[0] == 0)
        return false;
    for (int i = 0; i < 10; i++)
        count[d[i]]++;
    for (int v = 0; v < 10; v++) {
        if (count[v] > 3)
            return false;
        if (count[v] >= 2)
            repeated++;
    }
    if (repeated != 1)
        return false;
    for (int i = 2; i < 10; i++)
        if (d[i] == d[i - 1] && d[i] == d[i - 2])
            return false;
    for (int i = 0; i < 10; i++) {
        int sum = (d[i] + product) % 10;
        if (sum == 0)
            sum = 10;
        product = sum * 2 % 11;
    }
    check = 11 - product;
    return (check == 10 ? 0 : check) == d[10];
}

/* Swedish personnummer or samordningsnummer, after any label: YYMMDD or YYYYMMDD, '-' or '+' (aged
 * 100 or more), then 4 digits; the date is real (a coordination number adds 60 to the day) and the
 * last 10 digits pass Luhn. */
static bool valid_se_pnr(const char *s, size_t n)
{
    int d[12], k = 0, year, month, day;
    bool sep = false;
    size_t i = 0;

    while (i < n && !is_digit(s[i])) /* a label */
        i++;
    for (; i < n; i++) {
        if (s[i] == '-' || s[i] == '+') {
            if (n - i != 5)
                return false;
            sep = true;
            continue;
        }
        if (!is_digit(s[i]) || k >= 12)
            return false;
        d[k++] = s[i] - '0';
    }
    if (!sep || (k != 10 && k != 12))
        return false;
    year = k == 12 ? d[0] * 1000 + d[1] * 100 + d[2] * 10 + d[3] : 2000 + d[0] * 10 + d[1];
    month = d[k - 8] * 10 + d[k - 7];
    day = d[k - 6] * 10 + d[k - 5];
    if (day > 60)
        day -= 60;
    if (day < 1 || day > month_days(year, month))
        return false;
    return luhn_ok(d + k - 10, 10);
}

/* Finnish henkilötunnus: DDMMYY, a century sign (+ 1800s; - Y X W V U 1900s; A-F 2000s), a
 * 3-digit individual number 002-899 and a check character
 * "0123456789ABCDEFHJKLMNPRSTUVWXY"[DDMMYYNNN mod 31]; the date is real. */
static bool valid_fi_hetu(const char *s, size_t n)
{
    static const char check[] = "0123456789ABCDEFHJKLMNPRSTUVWXY";
    long num = 0;
    int year, individual;
    char sign, last;

    if (n != 11)
        return false;
    for (int i = 0; i < 10; i++)
        if (i != 6 && !is_digit(s[i]))
            return false;
    sign = to_upper(s[6]);
    last = to_upper(s[10]);
    if (sign == '+')
        year = 1800;
    else if (in_set(sign, "-YXWVU"))
        year = 1900;
    else if (sign >= 'A' && sign <= 'F')
        year = 2000;
    else
        return false;
    year += (s[4] - '0') * 10 + (s[5] - '0');
    individual = (s[7] - '0') * 100 + (s[8] - '0') * 10 + (s[9] - '0');
    if (individual < 2 || individual > 899)
        return false;
    if ((s[0] - '0') * 10 + (s[1] - '0') < 1 ||
        (s[0] - '0') * 10 + (s[1] - '0') > month_days(year, (s[2] - '0') * 10 + (s[3] - '0')))
        return false;
    for (int i = 0; i < 10; i++)
        if (i != 6)
            num = num * 10 + (s[i] - '0');
    return last == check[num % 31];
}

/* Australian tax file number, after any label: 9 digits whose weighted sum (weights 1 4 3 7
 * 5 8 6 9 10) is a multiple of 11. */
static bool valid_au_tfn(const char *s, size_t n)
{
    static const int weight[9] = {1, 4, 3, 7, 5, 8, 6, 9, 10};
    int d[9], sum = 0;

    if (span_digits(s, n, true, d, 9) != 9 || all_same(d, 9))
        return false;
    for (int i = 0; i < 9; i++)
        sum += d[i] * weight[i];
    return sum % 11 == 0;
}

/* ICAO 9303 check digit over s[0..n): values 0-9, A-Z = 10..35, '<' = 0, weights 7 3 1. */
static int mrz_check(const char *s, size_t n)
{
    static const int weight[3] = {7, 3, 1};
    int sum = 0;

    for (size_t i = 0; i < n; i++) {
        int v = is_digit(s[i]) ? s[i] - '0' : is_upper(s[i]) ? s[i] - 'A' + 10 : 0;
        sum += v * weight[i % 3];
    }
    return sum % 10;
}

/* Passport machine-readable zone (ICAO 9303 TD3), second line of 44 characters: the
 * check digits of the document number (1-9 -> 10), birth date (14-19 -> 20), expiry
 * (22-27 -> 28), personal number (29-42 -> 43; '<' allowed when it is empty) and the
 * composite (1-10, 14-20, 22-43 -> 44) all agree. */
static bool valid_mrz_td3(const char *s, size_t n)
{
    char comp[39];

    if (n != 44)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!is_digit(s[i]) && !is_upper(s[i]) && s[i] != '<')
            return false;
    if (s[9] - '0' != mrz_check(s, 9) || s[19] - '0' != mrz_check(s + 13, 6) ||
        s[27] - '0' != mrz_check(s + 21, 6))
        return false;
    if (s[42] == '<') { /* no personal number: the field is all filler */
        for (int i = 28; i < 42; i++)
            if (s[i] != '<')
                return false;
    } else if (s[42] - '0' != mrz_check(s + 28, 14)) {
        return false;
    }
    memcpy(comp, s, 10);
    memcpy(comp + 10, s + 13, 7);
    memcpy(comp + 17, s + 21, 22);
    return s[43] - '0' == mrz_check(comp, 39);
}

/* ---- secrets ---- */

/* CRC-32 (IEEE 802.3, reflected, polynomial 0xEDB88320) of s[0..n). */
static unsigned long crc32_of(const char *s, size_t n)
{
    unsigned long crc = 0xFFFFFFFFul;

    for (size_t i = 0; i < n; i++) {
        crc ^= (unsigned char)s[i];
        for (int b = 0; b < 8; b++)
            crc = crc & 1 ? (crc >> 1) ^ 0xEDB88320ul : crc >> 1;
    }
    return crc ^ 0xFFFFFFFFul;
}

/* GitHub (ghp_, gho_, ghu_, ghs_, ghr_) and npm (npm_) tokens: the prefix, 30 base62
 * characters, then the CRC-32 of those 30 characters in base62 (alphabet 0-9 A-Z a-z),
 * left-padded with '0' to 6 characters. */
static bool valid_token_crc32(const char *s, size_t n)
{
    static const char b62[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    unsigned long crc;
    char sum[6];

    if (n != 40 || s[3] != '_' ||
        !((s[0] == 'g' && s[1] == 'h' && in_set(s[2], "pousr")) ||
          (s[0] == 'n' && s[1] == 'p' && s[2] == 'm')))
        return false;
    for (size_t i = 4; i < n; i++)
        if (!is_alnum(s[i]))
            return false;
    crc = crc32_of(s + 4, 30);
    for (int i = 5; i >= 0; i--) {
        sum[i] = b62[crc % 62];
        crc /= 62;
    }
    return memcmp(sum, s + 34, 6) == 0;
}

/* Value of a base64url character, or -1. */
static int b64url(char c)
{
    if (is_upper(c))
        return c - 'A';
    if (is_lower(c))
        return c - 'a' + 26;
    if (is_digit(c))
        return c - '0' + 52;
    return c == '-' ? 62 : c == '_' ? 63 : -1;
}

/* JSON Web Token: three '.'-separated base64url segments whose first (the header, at most
 * 1024 characters) decodes to a JSON object, '{' ... '}' around printable text, with an
 * "alg" member whose value is a string. */
static bool valid_jwt(const char *s, size_t n)
{
    const char *dot = memchr(s, '.', n);
    char h[768];
    size_t hn = 0, len, i, j;
    unsigned acc = 0;
    int bits = 0;

    if (!dot || (len = (size_t)(dot - s)) < 4 || len > 1024 || len % 4 == 1)
        return false;
    if (!memchr(dot + 1, '.', n - len - 1))
        return false;
    for (i = 0; i < len; i++) {
        int v = b64url(s[i]);
        if (v < 0)
            return false;
        acc = acc << 6 | (unsigned)v;
        if ((bits += 6) >= 8) {
            bits -= 8;
            h[hn++] = (char)(acc >> bits & 0xFF);
        }
    }
    for (i = 0; i < hn && in_set(h[i], " \t\r\n"); i++)
        ;
    for (j = hn; j > i && in_set(h[j - 1], " \t\r\n"); j--)
        ;
    if (j - i < 2 || h[i] != '{' || h[j - 1] != '}')
        return false;
    for (size_t k = i; k < j; k++)
        if ((unsigned char)h[k] < 0x20 && !in_set(h[k], "\t\r\n"))
            return false;
    for (size_t k = i + 1; k + 5 <= j; k++) {
        size_t m;
        if (memcmp(h + k, "\"alg\"", 5) != 0)
            continue;
        for (m = k + 5; m < j && in_set(h[m], " \t\r\n"); m++)
            ;
        if (m >= j || h[m] != ':')
            continue;
        for (m++; m < j && in_set(h[m], " \t\r\n"); m++)
            ;
        if (m < j && h[m] == '"')
            return true;
    }
    return false;
}

static const struct {
    const char *name;
    bool (*fn)(const char *s, size_t n);
} validators[] = {
    {"luhn", valid_luhn},         {"iban", valid_iban},
    {"ssn", valid_ssn},           {"email", valid_email},
    {"phone", valid_phone},       {"es_dni", valid_es_dni},
    {"nl_bsn", valid_nl_bsn},     {"fr_nir", valid_fr_nir},
    {"aadhaar", valid_aadhaar},   {"ca_sin", valid_ca_sin},
    {"br_cpf", valid_br_cpf},     {"cn_rid", valid_cn_rid},
    {"it_cf", valid_it_cf},       {"uk_nino", valid_uk_nino},
    {"uk_nhs", valid_uk_nhs},     {"pl_pesel", valid_pl_pesel},
    {"de_taxid", valid_de_taxid}, {"se_pnr", valid_se_pnr},
    {"fi_hetu", valid_fi_hetu},   {"au_tfn", valid_au_tfn},
    {"mrz_td3", valid_mrz_td3},   {"token_crc32", valid_token_crc32},
    {"jwt", valid_jwt},
};

/* The email rule's pattern matches from the last character of the local part ("x@domain.tld":
 * a literal '@' Hyperscan finds fast, where a leading [A-Za-z0-9._%+-]* makes start-of-match
 * tracking crawl through every word); the local part is then taken leftwards: at most 64
 * characters of A-Z a-z 0-9 . _ % + -, starting at a letter or digit. Longer: not an
 * address. */
static bool email_span(const char *text, size_t *from)
{
    size_t s = *from;

    while (s > 0 && *from - s < 65 &&
           ((text[s - 1] >= 'a' && text[s - 1] <= 'z') ||
            (text[s - 1] >= 'A' && text[s - 1] <= 'Z') ||
            (text[s - 1] >= '0' && text[s - 1] <= '9') || strchr("._%+-", text[s - 1])))
        s--;
    if (*from - s >= 64)
        return false;
    while (s <= *from &&
           !((text[s] >= 'a' && text[s] <= 'z') || (text[s] >= 'A' && text[s] <= 'Z') ||
             (text[s] >= '0' && text[s] <= '9')))
        s++;
    if (s > *from)
        return false;
    *from = s;
    return true;
}

/* The MRZ rule matches the line's distinctive middle, characters 10-28 (document number check
 * digit, nationality, birth date, sex, expiry): a run of digits around M/F/X/< that Hyperscan
 * finds fast, where the whole 44-character line (a class run with no literal) costs a
 * scan of every uppercase word. The span is the whole line around it, not preceded by a
 * character the line could continue. */
static bool mrz_span(const char *text, size_t len, size_t *from, size_t *to)
{
    if (*from < 9 || *from + 35 > len)
        return false;
    size_t s = *from - 9;
    if (s > 0 && (isalnum((unsigned char)text[s - 1]) || text[s - 1] == '<'))
        return false;
    *from = s;
    *to = s + 44;
    return true;
}

bool insp__validator_span(int validator, const char *text, size_t len, size_t *from, size_t *to)
{
    static int email = 0, mrz = 0;

    if (!email) {
        email = insp__validator_index("email");
        mrz = insp__validator_index("mrz_td3");
    }
    if (validator == email)
        return email_span(text, from);
    if (validator == mrz)
        return mrz_span(text, len, from, to);
    return true;
}

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
