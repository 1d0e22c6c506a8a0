/*
 * pins_admin: what `clampd tools list|approve|revoke` do to the pin store.
 * These run in their own process while proxies may be using the same file.
 */
#include "engine/engine-int.h"

#include <stdlib.h>
#include <string.h>

static int open_existing(const char *state_dir, sqlite3 **db, char **errmsg)
{
    char *path = engine__path(state_dir, "pins.db");
    struct engine__pins p;
    int rc;

    if (!path)
        return ERR_NOMEM;
    /* Creating here is harmless and gives a clear empty listing on a fresh state dir. */
    rc = engine__pins_open(&p, path, true, errmsg);
    free(path);
    if (rc)
        return rc;
    sqlite3_finalize(p.get);
    sqlite3_finalize(p.insert);
    sqlite3_finalize(p.update_seen);
    sqlite3_finalize(p.mark);
    *db = p.db;
    return 0;
}

static const char *col(sqlite3_stmt *st, int i)
{
    return (const char *)sqlite3_column_text(st, i);
}

int engine_pins_each(const char *state_dir, engine_pin_fn fn, void *ctx, char **errmsg)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    int rc = open_existing(state_dir, &db, errmsg);

    if (rc)
        return rc;
    rc = ERR_DB;
    if (sqlite3_prepare_v2(db,
                           "SELECT command, server, kind, name, hash, pending_hash, status,"
                           " first_seen, last_seen FROM pins ORDER BY server, kind, name, command",
                           -1, &st, NULL) != SQLITE_OK)
        goto out;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        struct engine_pin pin = {
            .command = col(st, 0),
            .server = col(st, 1),
            .kind = col(st, 2),
            .name = col(st, 3),
            .hash = col(st, 4),
            .pending_hash = col(st, 5),
            .status = col(st, 6),
            .first_seen_ms = sqlite3_column_int64(st, 7),
            .last_seen_ms = sqlite3_column_int64(st, 8),
        };
        rc = fn(ctx, &pin);
        if (rc)
            goto out;
    }
    rc = rc == SQLITE_DONE ? 0 : ERR_DB;
out:
    if (rc == ERR_DB)
        *errmsg = strdup(sqlite3_errmsg(db));
    sqlite3_finalize(st);
    sqlite3_close(db);
    return rc;
}

static int exec_change(const char *state_dir, const char *sql, const char *server, const char *name,
                       const char *extra, char **errmsg)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    int rc = open_existing(state_dir, &db, errmsg);

    if (rc)
        return rc;
    rc = ERR_DB;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
        goto out;
    sqlite3_bind_text(st, 1, server, -1, SQLITE_STATIC);
    if (name)
        sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, 2);
    if (extra)
        sqlite3_bind_text(st, 3, extra, -1, SQLITE_STATIC);
    if (sqlite3_step(st) != SQLITE_DONE)
        goto out;
    rc = sqlite3_changes(db);
out:
    if (rc == ERR_DB)
        *errmsg = strdup(sqlite3_errmsg(db));
    sqlite3_finalize(st);
    sqlite3_close(db);
    return rc;
}

int engine_pins_approve(const char *state_dir, const struct engine_approval *a, char **errmsg)
{
    /* Each row is approved only if its own pending hash starts with one of the given
     * prefixes: SECURITY: what is approved is the change that was reviewed, not whatever
     * is pending when this runs, nor another command's change under the same server name. */
    static const char sql[] =
        "UPDATE pins SET hash=pending_hash, pending_hash=NULL, status='pinned'"
        " WHERE server=?1 AND name=?2 AND pending_hash IS NOT NULL"
        " AND (?3 IS NULL OR command=?3)"
        " AND (?4 IS NULL OR substr(pending_hash, 1, length(?4)) = lower(?4)"
        "  OR substr(pending_hash, 1, length(?5)) = lower(?5)"
        "  OR substr(pending_hash, 1, length(?6)) = lower(?6)"
        "  OR substr(pending_hash, 1, length(?7)) = lower(?7))";
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    int rc;

    if (a->n_hashes > ENGINE_APPROVE_MAX_HASHES)
        return ERR_INVAL;
    rc = open_existing(state_dir, &db, errmsg);
    if (rc)
        return rc;
    rc = ERR_DB;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
        goto out;
    sqlite3_bind_text(st, 1, a->server, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, a->name, -1, SQLITE_STATIC);
    if (a->command)
        sqlite3_bind_text(st, 3, a->command, -1, SQLITE_STATIC);
    for (size_t i = 0; i < a->n_hashes; i++)
        sqlite3_bind_text(st, 4 + (int)i, a->hashes[i], -1, SQLITE_STATIC);
    if (sqlite3_step(st) != SQLITE_DONE)
        goto out;
    rc = sqlite3_changes(db);
out:
    if (rc == ERR_DB)
        *errmsg = strdup(sqlite3_errmsg(db));
    sqlite3_finalize(st);
    sqlite3_close(db);
    return rc;
}

int engine_pins_revoke(const char *state_dir, const char *server, const char *name, char **errmsg)
{
    return exec_change(state_dir, "DELETE FROM pins WHERE server=?1 AND (?2 IS NULL OR name=?2)",
                       server, name, NULL, errmsg);
}
