/*
 * pins: the SQLite store of contract hashes, shared by every clampd on the machine.
 *
 * One row per (command, kind, name): the downstream command line the user configured is
 * the identity. The server's own serverInfo.name is kept beside it, for display and for
 * `clampd tools approve SERVER`, but is not part of the key: SECURITY: a server could
 * otherwise escape its pins by reporting a new name. status "pinned" means hash is approved;
 * "changed" means the server now offers pending_hash (a rug pull until `clampd tools
 * approve`); "pending" means a new item held back in strict mode. WAL and a busy timeout
 * let several proxies (one per client window) share the file.
 */
#include "engine/engine-int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PINS_SCHEMA                                                                                \
    "CREATE TABLE IF NOT EXISTS pins ("                                                            \
    " command TEXT NOT NULL, server TEXT NOT NULL, kind TEXT NOT NULL, name TEXT NOT NULL,"        \
    " hash TEXT NOT NULL, pending_hash TEXT, status TEXT NOT NULL DEFAULT 'pinned',"               \
    " first_seen INTEGER NOT NULL, last_seen INTEGER NOT NULL,"                                    \
    " PRIMARY KEY (command, kind, name));"

static char *db_message(sqlite3 *db, const char *what, const char *path)
{
    char buf[1024];
    snprintf(buf, sizeof(buf), "%s %s: %s", what, path, db ? sqlite3_errmsg(db) : "out of memory");
    return strdup(buf);
}

char *engine__path(const char *dir, const char *file)
{
    size_t n = strlen(dir) + strlen(file) + 2;
    char *p = malloc(n);
    if (p)
        snprintf(p, n, "%s/%s", dir, file);
    return p;
}

static int prepare_all(struct engine__pins *p)
{
    static const char *const sql[] = {
        "SELECT hash, pending_hash, status, server FROM pins"
        " WHERE command=?1 AND kind=?3 AND name=?4",
        "INSERT INTO pins (command, server, kind, name, hash, pending_hash, status, first_seen,"
        " last_seen) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8)"
        " ON CONFLICT (command, kind, name) DO NOTHING",
        "UPDATE pins SET last_seen=?5, server=?2 WHERE command=?1 AND kind=?3 AND name=?4",
        "UPDATE pins SET pending_hash=?5, status=?6, last_seen=?7, server=?2"
        " WHERE command=?1 AND kind=?3 AND name=?4",
    };
    sqlite3_stmt **out[] = {&p->get, &p->insert, &p->update_seen, &p->mark};

    for (size_t i = 0; i < sizeof(sql) / sizeof(sql[0]); i++)
        if (sqlite3_prepare_v2(p->db, sql[i], -1, out[i], NULL) != SQLITE_OK)
            return ERR_DB;
    return 0;
}

int engine__pins_open(struct engine__pins *p, const char *path, bool create, char **errmsg)
{
    int flags = SQLITE_OPEN_READWRITE | (create ? SQLITE_OPEN_CREATE : 0);
    int rc = ERR_DB;

    memset(p, 0, sizeof(*p));
    if (sqlite3_open_v2(path, &p->db, flags, NULL) != SQLITE_OK) {
        *errmsg = db_message(p->db, "cannot open pin store", path);
        goto out;
    }
    sqlite3_busy_timeout(p->db, 5000);
    if (sqlite3_exec(p->db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;" PINS_SCHEMA, NULL,
                     NULL, NULL) != SQLITE_OK ||
        prepare_all(p)) {
        *errmsg = db_message(p->db, "cannot initialise pin store", path);
        goto out;
    }
    rc = 0;
out:
    if (rc)
        engine__pins_close(p);
    return rc;
}

void engine__pins_close(struct engine__pins *p)
{
    sqlite3_finalize(p->get);
    sqlite3_finalize(p->insert);
    sqlite3_finalize(p->update_seen);
    sqlite3_finalize(p->mark);
    sqlite3_close(p->db);
    memset(p, 0, sizeof(*p));
}

int engine__pins_server_known(struct engine__pins *p, const char *command, const char *server,
                              const char *kind, bool *known)
{
    sqlite3_stmt *st = NULL;
    int rc = ERR_DB;

    if (!p->db)
        return ERR_STATE;
    if (sqlite3_prepare_v2(
            p->db, "SELECT 1 FROM pins WHERE command=?1 AND kind=?3 AND ?2 IS NOT NULL LIMIT 1", -1,
            &st, NULL) != SQLITE_OK)
        goto out;
    sqlite3_bind_text(st, 1, command, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, server, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, kind, -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
        rc = ERR_DB;
        goto out;
    }
    *known = rc == SQLITE_ROW;
    rc = 0;
out:
    sqlite3_finalize(st);
    return rc;
}

static void bind_key(sqlite3_stmt *st, const char *command, const char *server, const char *kind,
                     const char *name)
{
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    sqlite3_bind_text(st, 1, command, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, server, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, kind, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, name, -1, SQLITE_STATIC);
}

static int step_done(sqlite3_stmt *st)
{
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? 0 : ERR_DB;
}

static int pin_insert(struct engine__pins *p, const char *key[4], const char *hash, bool held)
{
    bind_key(p->insert, key[0], key[1], key[2], key[3]);
    /* A held item has no approved hash yet: its hash column is "" until approval. */
    sqlite3_bind_text(p->insert, 5, held ? "" : hash, -1, SQLITE_STATIC);
    if (held)
        sqlite3_bind_text(p->insert, 6, hash, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(p->insert, 6);
    sqlite3_bind_text(p->insert, 7, held ? "pending" : "pinned", -1, SQLITE_STATIC);
    sqlite3_bind_int64(p->insert, 8, clampd_wall_ms());
    if (step_done(p->insert))
        return ERR_DB;
    /* Another proxy pinned it between our read and this write: the caller reads again. */
    return sqlite3_changes(p->db) == 1 ? 0 : ERR_AGAIN;
}

static int pin_mark(struct engine__pins *p, const char *key[4], const char *pending,
                    const char *status)
{
    bind_key(p->mark, key[0], key[1], key[2], key[3]);
    if (pending)
        sqlite3_bind_text(p->mark, 5, pending, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(p->mark, 5);
    sqlite3_bind_text(p->mark, 6, status, -1, SQLITE_STATIC);
    sqlite3_bind_int64(p->mark, 7, clampd_wall_ms());
    return step_done(p->mark);
}

/* Compares an existing row with hash and records what changed. */
static int pin_compare(struct engine__pins *p, const char *key[4], const char *hash,
                       const char *pinned_hash, const char *status, enum pin_outcome *out)
{
    bool held = strcmp(status, "pending") == 0;

    if (!held && strcmp(pinned_hash, hash) == 0) {
        *out = PIN_OUT_MATCH;
        if (strcmp(status, "pinned") != 0)
            return pin_mark(p, key, NULL, "pinned"); /* changed back to the approved form */
        bind_key(p->update_seen, key[0], key[1], key[2], key[3]);
        sqlite3_bind_int64(p->update_seen, 5, clampd_wall_ms());
        return step_done(p->update_seen);
    }
    *out = held ? PIN_OUT_NEW_HELD : PIN_OUT_CHANGED;
    return pin_mark(p, key, hash, held ? "pending" : "changed");
}

/* One read-compare-write; ERR_AGAIN when a concurrent proxy inserted the row first. */
static int check_once(struct engine__pins *p, const char *key[4], const char *hash, bool hold_new,
                      enum pin_outcome *out, char pinned[CJSON_HEX_LEN + 1])
{
    int rc;

    pinned[0] = '\0';
    bind_key(p->get, key[0], key[1], key[2], key[3]);
    rc = sqlite3_step(p->get);
    if (rc == SQLITE_ROW) {
        const char *h = (const char *)sqlite3_column_text(p->get, 0);
        const char *st = (const char *)sqlite3_column_text(p->get, 2);
        const char *srv = (const char *)sqlite3_column_text(p->get, 3);
        char status[16];
        if (srv && strcmp(srv, key[1]) != 0)
            clog_warn("the server of this command now calls itself '%.64s' (was '%.64s');"
                      " its pins still apply",
                      key[1], srv);
        snprintf(pinned, CJSON_HEX_LEN + 1, "%s", h ? h : "");
        snprintf(status, sizeof(status), "%s", st ? st : "changed");
        sqlite3_reset(p->get);
        return pin_compare(p, key, hash, pinned, status, out);
    }
    sqlite3_reset(p->get);
    if (rc != SQLITE_DONE)
        return ERR_DB;
    *out = hold_new ? PIN_OUT_NEW_HELD : PIN_OUT_NEW;
    if (!hold_new)
        snprintf(pinned, CJSON_HEX_LEN + 1, "%s", hash);
    return pin_insert(p, key, hash, hold_new);
}

int engine__pins_check(struct engine__pins *p, const char *command, const char *server,
                       const char *kind, const char *name, const char *hash, bool hold_new,
                       enum pin_outcome *out, char pinned[CJSON_HEX_LEN + 1])
{
    const char *key[4] = {command, server, kind, name};
    int rc;

    if (!p->db)
        return ERR_STATE; /* an engine for offline inspection has no pins */
    rc = check_once(p, key, hash, hold_new, out, pinned);

    if (rc == ERR_AGAIN)
        rc = check_once(p, key, hash, hold_new, out, pinned);
    return rc == ERR_AGAIN ? ERR_DB : rc;
}

int engine__pins_status(struct engine__pins *p, const char *command, const char *kind,
                        const char *name, bool *withheld)
{
    int rc;

    *withheld = false;
    if (!p->db)
        return ERR_STATE;
    bind_key(p->get, command, "", kind, name);
    rc = sqlite3_step(p->get);
    if (rc == SQLITE_ROW) {
        const char *st = (const char *)sqlite3_column_text(p->get, 2);
        *withheld = !st || strcmp(st, "pinned") != 0;
    }
    sqlite3_reset(p->get);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : ERR_DB;
}

int engine__pins_lookup(struct engine__pins *p, const char *command, const char *kind,
                        const char *name, bool *found, char pinned[CJSON_HEX_LEN + 1],
                        bool *withheld)
{
    int rc;

    *found = *withheld = false;
    pinned[0] = '\0';
    if (!p->db)
        return ERR_STATE;
    bind_key(p->get, command, "", kind, name);
    rc = sqlite3_step(p->get);
    if (rc == SQLITE_ROW) {
        const char *h = (const char *)sqlite3_column_text(p->get, 0);
        const char *st = (const char *)sqlite3_column_text(p->get, 2);
        *found = true;
        *withheld = !st || strcmp(st, "pinned") != 0;
        snprintf(pinned, CJSON_HEX_LEN + 1, "%s", h ? h : "");
    }
    sqlite3_reset(p->get);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : ERR_DB;
}
