/* Unit tests: the structured SSRF check. Hosts in every form a URL parser accepts, read
 * the way WHATWG/inet_aton read them, and the texts that name them. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "inspect/inspect.h"

struct want {
    const char *host;
    enum insp_host_class cls;
    bool obfuscated;
};

static void test_classify(void **state)
{
    static const struct want cases[] = {
        /* IPv4, plain and in every radix and part count */
        {"127.0.0.1", INSP_HOST_LOOPBACK, false},
        {"127.1", INSP_HOST_LOOPBACK, true},
        {"2130706433", INSP_HOST_LOOPBACK, true},
        {"0x7f000001", INSP_HOST_LOOPBACK, true},
        {"0X7F.0.0.1", INSP_HOST_LOOPBACK, true},
        {"017700000001", INSP_HOST_LOOPBACK, true},
        {"0177.0.0.01", INSP_HOST_LOOPBACK, true},
        {"127.0.0.1.", INSP_HOST_LOOPBACK, true},
        {"0", INSP_HOST_LOOPBACK, true},
        {"0.0.0.0", INSP_HOST_LOOPBACK, false},
        {"169.254.169.254", INSP_HOST_METADATA, false},
        {"2852039166", INSP_HOST_METADATA, true},
        {"0xa9.0xfe.0xa9.0xfe", INSP_HOST_METADATA, true},
        {"169.254.43518", INSP_HOST_METADATA, true},
        {"169.254.170.2", INSP_HOST_METADATA, false},
        {"100.100.100.200", INSP_HOST_METADATA, false},
        {"169.254.1.7", INSP_HOST_LINK_LOCAL, false},
        {"10.0.0.1", INSP_HOST_PRIVATE, false},
        {"012.0.0.1", INSP_HOST_PRIVATE, true},
        {"172.16.5.4", INSP_HOST_PRIVATE, false},
        {"172.31.255.255", INSP_HOST_PRIVATE, false},
        {"192.168.0.1", INSP_HOST_PRIVATE, false},
        {"3232235521", INSP_HOST_PRIVATE, true},
        {"100.64.0.1", INSP_HOST_PRIVATE, false},
        {"172.32.0.1", INSP_HOST_PUBLIC, false},
        {"8.8.8.8", INSP_HOST_PUBLIC, false},
        {"134744072", INSP_HOST_PUBLIC, false},
        {"1.1.1.1", INSP_HOST_PUBLIC, false},
        /* not IPv4: a part too big, a bad octal digit, five parts: names, public */
        {"256.0.0.1", INSP_HOST_PUBLIC, false},
        {"08.0.0.1", INSP_HOST_PUBLIC, false},
        {"1.2.3.4.5", INSP_HOST_PUBLIC, false},
        {"4294967296", INSP_HOST_PUBLIC, false},
        /* IPv6 */
        {"[::1]", INSP_HOST_LOOPBACK, false},
        {"[::]", INSP_HOST_LOOPBACK, false},
        {"[0:0:0:0:0:0:0:1]", INSP_HOST_LOOPBACK, false},
        {"[::ffff:127.0.0.1]", INSP_HOST_LOOPBACK, true},
        {"[::ffff:7f00:1]", INSP_HOST_LOOPBACK, true},
        {"[::ffff:a9fe:a9fe]", INSP_HOST_METADATA, true},
        {"[::127.0.0.1]", INSP_HOST_LOOPBACK, true},
        {"[64:ff9b::10.0.0.1]", INSP_HOST_PRIVATE, true},
        {"[2002:a9fe:a9fe::1]", INSP_HOST_METADATA, true},
        {"[fd00:ec2::254]", INSP_HOST_METADATA, false},
        {"[fe80::1%25eth0]", INSP_HOST_LINK_LOCAL, false},
        {"[fc00::5]", INSP_HOST_PRIVATE, false},
        {"[2606:4700::1111]", INSP_HOST_PUBLIC, false},
        {"[::ffff:8.8.8.8]", INSP_HOST_PUBLIC, false},
        /* names */
        {"localhost", INSP_HOST_LOOPBACK, false},
        {"LOCALHOST.", INSP_HOST_LOOPBACK, false},
        {"api.localhost", INSP_HOST_LOOPBACK, false},
        {"metadata.google.internal", INSP_HOST_METADATA, false},
        {"db.internal", INSP_HOST_PRIVATE, false},
        {"printer.local", INSP_HOST_PRIVATE, false},
        {"127.0.0.1.nip.io", INSP_HOST_LOOPBACK, true},
        {"app.169.254.169.254.nip.io", INSP_HOST_METADATA, true},
        {"10-0-0-1.sslip.io", INSP_HOST_PRIVATE, true},
        {"www-7f000001.nip.io", INSP_HOST_LOOPBACK, true},
        {"1.1.1.1.nip.io", INSP_HOST_PUBLIC, false},
        {"anything.localtest.me", INSP_HOST_LOOPBACK, true},
        {"lvh.me", INSP_HOST_LOOPBACK, true},
        {"localhost.example.com", INSP_HOST_PUBLIC, false},
        {"notlvh.me", INSP_HOST_PUBLIC, false},
        {"example.com", INSP_HOST_PUBLIC, false},
    };
    (void)state;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct insp_host h;
        int rc = insp_host_classify(cases[i].host, strlen(cases[i].host), &h);
        if (rc || h.cls != cases[i].cls || h.obfuscated != cases[i].obfuscated)
            fail_msg("%s: rc %d class %d obfuscated %d, want class %d obfuscated %d", cases[i].host,
                     rc, h.cls, h.obfuscated, cases[i].cls, cases[i].obfuscated);
    }
    struct insp_host h;
    assert_int_equal(insp_host_classify("[not:v6:at:all::x]", 18, &h), ERR_PARSE);
    assert_int_equal(insp_host_classify("", 0, &h), ERR_PARSE);
}

#define LOOP (1u << INSP_HOST_LOOPBACK)
#define META (1u << INSP_HOST_METADATA)
#define PRIV (1u << INSP_HOST_PRIVATE)
#define LINK (1u << INSP_HOST_LINK_LOCAL)
#define OBF INSP_HOSTS_OBFUSCATED

struct text_want {
    const char *text;
    unsigned found;
};

static void test_find(void **state)
{
    static const struct text_want cases[] = {
        {"http://127.0.0.1/", LOOP},
        {"fetch https://2130706433:8443/admin please", LOOP | OBF},
        /* parser differentials: every reading counts */
        {"http://google.com@127.0.0.1/", LOOP},
        {"http://127.0.0.1:80\\@google.com/", LOOP},
        {"http://google.com#@10.1.2.3/", PRIV},
        {"http://a@b@169.254.169.254/latest", META},
        {"http:\\\\\\\\127.0.0.1\\\\x", LOOP},
        {"http:/127.0.0.1/", LOOP},
        {"gopher://[::1]:6379/_INFO", LOOP},
        {"dict://0x7f.1:11211/stat", LOOP | OBF},
        {"file://localhost/etc/passwd", LOOP},
        {"\\\\\\\\10.0.0.8\\\\share\\\\x", PRIV},
        {"redirect=https%3A//x", 0},
        {"https://example.com/?next=http://169.254.169.254/", META},
        /* bare literals */
        {"ping 10.0.0.5 and 8.8.8.8", PRIV},
        {"connect to localhost:5432", LOOP},
        {"localhost", LOOP},
        {"fe80::1", LINK},
        {"curl 0x7f000001:8080", LOOP | OBF},
        /* benign: prose, versions, public hosts, addresses in a URL's path */
        {"the localhost concept is explained in chapter 3", 0},
        {"release 10.01.02.03 is out", PRIV},
        {"https://example.com/lookup/127.0.0.1", 0},
        {"version 10.5/2 and 3.14", 0},
        {"https://api.github.com/repos/o/r/issues?state=open", 0},
        {"meeting at 12:30:45 on 2024-05-01", 0},
        {"git@github.com:org/repo.git", 0},
        {"see file.local for details", 0},
        /* what WHATWG parsers repair: tabs and newlines in a URL, ideographic dots */
        {"http://local\thost:8080/admin", LOOP},
        {"http://meta\ndata.google.internal/", META},
        {"http://metadata\xe3\x80\x82google\xe3\x80\x82internal/", META},
        {"http://169\xef\xbc\x8e"
         "254.169.254/",
         META},
        /* numbers, decimals and times are not hosts, bare */
        {"0.5", 0},
        {"2", 0},
        {"2130706433", 0},
        {"meeting at 10:30, room 0x1f", 0},
        {"10:30", 0},
        {"127.1:80", LOOP | OBF},
        {"2130706433:6379", LOOP | OBF},
    };
    (void)state;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        unsigned got = insp_hosts_find(cases[i].text, strlen(cases[i].text));
        if (got != cases[i].found)
            fail_msg("[%s]: found %#x, want %#x", cases[i].text, got, cases[i].found);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_classify),
        cmocka_unit_test(test_find),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
