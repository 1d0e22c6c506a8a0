/*
 * sessions: the gateway's engine sessions, one per (agent, server, session_id), bounded.
 *
 *   key "agent \x1f server \x1f session_id" ──index (jansson object)──▶ slot ──▶ engine session
 *   slots form a list, most recently used first: past GW_MAX_SESSIONS the last one goes,
 *   and a lookup drops the idle ones at the end (GW_SESSION_IDLE_S).
 *
 * A session's pin identity (its "command") is `clampd-gateway --agent A --server S`, each
 * name a quoted shell word, so `clampd tools list` shows whose pins they are and two
 * agents' claims on one server never mix. Used only under the gateway lock.
 */
#include "gateway/gateway-int.h"
#include "policy/policy.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct slot {
    char *key;
    struct engine_session *s;
    int64_t last_ms;
    struct slot *prev, *next;
};

struct gw__sessions {
    struct engine *engine;
    json_t *index; /* key -> integer (struct slot *) */
    struct slot *head, *tail;
    size_t n;
};

struct gw__sessions *gw__sessions_new(struct engine *e)
{
    struct gw__sessions *t = calloc(1, sizeof(*t));

    if (t && !(t->index = json_object())) {
        free(t);
        return NULL;
    }
    if (t)
        t->engine = e;
    return t;
}

static void unlink_slot(struct gw__sessions *t, struct slot *sl)
{
    if (sl->prev)
        sl->prev->next = sl->next;
    else
        t->head = sl->next;
    if (sl->next)
        sl->next->prev = sl->prev;
    else
        t->tail = sl->prev;
    sl->prev = sl->next = NULL;
}

static void push_front(struct gw__sessions *t, struct slot *sl)
{
    sl->next = t->head;
    if (t->head)
        t->head->prev = sl;
    t->head = sl;
    if (!t->tail)
        t->tail = sl;
}

static void drop(struct gw__sessions *t, struct slot *sl)
{
    unlink_slot(t, sl);
    json_object_del(t->index, sl->key);
    engine_session_free(sl->s);
    free(sl->key);
    free(sl);
    t->n--;
}

void gw__sessions_free(struct gw__sessions *t)
{
    if (!t)
        return;
    while (t->head)
        drop(t, t->head);
    json_decref(t->index);
    free(t);
}

size_t gw__sessions_count(const struct gw__sessions *t)
{
    return t->n;
}

static struct engine_session *open_session(struct engine *e, const char *agent, const char *server)
{
    struct engine_session *s = NULL;
    struct dbuf cmd;

    dbuf_init(&cmd, 4 * (GW_ID_MAX + POL_NAME_MAX) + 64);
    if (dbuf_adds(&cmd, "clampd-gateway --agent ") || gw__shell_word(&cmd, agent) ||
        dbuf_adds(&cmd, " --server ") || gw__shell_word(&cmd, server))
        goto out;
    s = engine_session_new_shared(e, cmd.ptr);
    if (s && engine_session_set_agent(s, agent)) {
        engine_session_free(s);
        s = NULL;
    }
    if (s)
        engine_session_set_server(s, server);
out:
    dbuf_free(&cmd);
    return s;
}

struct engine_session *gw__sessions_get(struct gw__sessions *t, const char *agent,
                                        const char *server, const char *session_id, int64_t now_ms)
{
    struct slot *sl = NULL;
    struct dbuf key;
    json_t *hit;

    /* idle sessions go first, oldest at the tail */
    while (t->tail && now_ms - t->tail->last_ms > (int64_t)GW_SESSION_IDLE_S * 1000)
        drop(t, t->tail);
    dbuf_init(&key, 3 * GW_ID_MAX + 2 * POL_NAME_MAX);
    if (dbuf_adds(&key, agent) || dbuf_addc(&key, '\x1f') || dbuf_adds(&key, server) ||
        dbuf_addc(&key, '\x1f') || dbuf_adds(&key, session_id))
        goto out;
    hit = json_object_get(t->index, key.ptr);
    if (hit) {
        sl = (struct slot *)(intptr_t)json_integer_value(hit);
        unlink_slot(t, sl);
        goto found;
    }
    if (t->n >= GW_MAX_SESSIONS)
        drop(t, t->tail); /* SECURITY: bounded; the least recently used one goes */
    if (!(sl = calloc(1, sizeof(*sl))) || !(sl->s = open_session(t->engine, agent, server)) ||
        json_object_set_new(t->index, key.ptr, json_integer((json_int_t)(intptr_t)sl))) {
        if (sl)
            engine_session_free(sl->s);
        free(sl);
        sl = NULL;
        goto out;
    }
    sl->key = dbuf_take(&key, NULL);
    t->n++;
found:
    sl->last_ms = now_ms;
    push_front(t, sl);
out:
    dbuf_free(&key);
    return sl ? sl->s : NULL;
}
